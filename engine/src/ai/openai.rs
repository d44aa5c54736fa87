//! OpenAI chat completions: the clients' format, and the wire of every
//! OpenAI-compatible provider.
//!
//! A request is checked once ([`parse_chat`]) so a bad one is refused with
//! the field named, before any provider is paid for it. Toward an OpenAI
//! provider the request changes in two places only: `model` (the
//! provider's name for it) and, when streaming,
//! `stream_options.include_usage = true`, so every stream ends with its
//! usage even when the client did not ask (the gateway meters every
//! request); the usage-only chunk is then dropped toward that client.
//!
//! The passthrough stream ([`PassStream`]) re-emits each event's data as
//! it came; only chunks that carry a `"usage"` object are parsed as JSON
//! (one per stream, the last), so the common chunk costs a scan of its
//! bytes, not a parse. Without serde_json's `preserve_order` feature (not
//! enabled in this workspace) a rewritten request has its keys sorted:
//! JSON objects are unordered, and no provider cares.

use bytes::BytesMut;
use serde_json::{json, Map, Value};

use super::error;
use super::sse::{self, Event, Parser};
use super::stream::Events;
use super::{Chat, Invalid, Outgoing, Usage};

const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// Parses and checks a chat completions request. Err names the field
/// (`messages[1].role`); an empty param means the body as a whole.
pub(crate) fn parse_chat(body: &[u8]) -> Result<Chat, Invalid> {
    let body = object_body(body)?;
    let model = model_of(&body)?;
    check_messages(body.get("messages"))?;
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Invalid::new("stream", "`stream` must be a boolean")),
    };
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Invalid::new(
                    "stream_options.include_usage",
                    "`include_usage` must be a boolean",
                ))
            }
        },
        Some(_) => {
            return Err(Invalid::new(
                "stream_options",
                "`stream_options` must be an object",
            ))
        }
    };
    if let Some(tools) = body.get("tools").filter(|v| !v.is_null()) {
        check_tools(tools)?;
    }
    for key in ["max_tokens", "max_completion_tokens", "n"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_u64().is_some() => {}
            Some(_) => {
                return Err(Invalid::new(
                    key,
                    format!("`{key}` must be a non-negative integer"),
                ))
            }
        }
    }
    for key in [
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
    ] {
        match body.get(key) {
            None | Some(Value::Null) | Some(Value::Number(_)) => {}
            Some(_) => return Err(Invalid::new(key, format!("`{key}` must be a number"))),
        }
    }
    Ok(Chat {
        body,
        model,
        stream,
        include_usage,
    })
}

fn object_body(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Invalid::new("", "the request body must be a JSON object")),
        Err(e) => Err(Invalid::new(
            "",
            format!("the request body is not valid JSON: {e}"),
        )),
    }
}

fn model_of(body: &Map<String, Value>) -> Result<String, Invalid> {
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        _ => Err(Invalid::new("model", "`model` must be a non-empty string")),
    }
}

fn check_messages(messages: Option<&Value>) -> Result<(), Invalid> {
    let messages = match messages {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => {
            return Err(Invalid::new(
                "messages",
                "`messages` must be a non-empty array",
            ))
        }
    };
    for (i, m) in messages.iter().enumerate() {
        let Some(m) = m.as_object() else {
            return Err(Invalid::new(
                format!("messages[{i}]"),
                "a message must be an object",
            ));
        };
        let role = match m.get("role").and_then(Value::as_str) {
            Some(r) if ROLES.contains(&r) => r,
            _ => {
                return Err(Invalid::new(
                    format!("messages[{i}].role"),
                    "`role` must be one of system, developer, user, assistant, tool",
                ))
            }
        };
        match m.get("content") {
            None | Some(Value::Null) if role == "assistant" => {}
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    if part.get("type").and_then(Value::as_str).is_none() {
                        return Err(Invalid::new(
                            format!("messages[{i}].content[{j}].type"),
                            "a content part must be an object with a string `type`",
                        ));
                    }
                }
            }
            _ => {
                return Err(Invalid::new(
                    format!("messages[{i}].content"),
                    "`content` must be a string or an array of content parts",
                ))
            }
        }
        if role == "tool" && !matches!(m.get("tool_call_id"), Some(Value::String(_))) {
            return Err(Invalid::new(
                format!("messages[{i}].tool_call_id"),
                "a tool message needs a string `tool_call_id`",
            ));
        }
        match m.get("tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(calls)) if role == "assistant" => {
                for (j, call) in calls.iter().enumerate() {
                    let path = format!("messages[{i}].tool_calls[{j}]");
                    if !matches!(call.get("id"), Some(Value::String(_))) {
                        return Err(Invalid::new(
                            format!("{path}.id"),
                            "a tool call needs a string `id`",
                        ));
                    }
                    let Some(f) = call.get("function").and_then(Value::as_object) else {
                        return Err(Invalid::new(
                            format!("{path}.function"),
                            "a tool call needs a `function` object",
                        ));
                    };
                    if !matches!(f.get("name"), Some(Value::String(n)) if !n.is_empty()) {
                        return Err(Invalid::new(
                            format!("{path}.function.name"),
                            "`name` must be a non-empty string",
                        ));
                    }
                    if !matches!(f.get("arguments"), Some(Value::String(_))) {
                        return Err(Invalid::new(
                            format!("{path}.function.arguments"),
                            "`arguments` must be a string (JSON text)",
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(Invalid::new(
                    format!("messages[{i}].tool_calls"),
                    "`tool_calls` must be an array on an assistant message",
                ))
            }
        }
    }
    Ok(())
}

fn check_tools(tools: &Value) -> Result<(), Invalid> {
    let Some(tools) = tools.as_array() else {
        return Err(Invalid::new("tools", "`tools` must be an array"));
    };
    for (i, tool) in tools.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(Invalid::new(
                format!("tools[{i}].type"),
                "a tool's `type` must be \"function\"",
            ));
        }
        let Some(f) = tool.get("function").and_then(Value::as_object) else {
            return Err(Invalid::new(
                format!("tools[{i}].function"),
                "a tool needs a `function` object",
            ));
        };
        if !matches!(f.get("name"), Some(Value::String(n)) if !n.is_empty()) {
            return Err(Invalid::new(
                format!("tools[{i}].function.name"),
                "`name` must be a non-empty string",
            ));
        }
    }
    Ok(())
}

/// The request for an OpenAI-format provider: `model` replaced by the
/// provider's; when streaming, `stream_options.include_usage = true`
/// forced (so usage is always known). Nothing dropped.
pub(crate) fn to_openai(chat: &Chat, model: &str) -> Outgoing {
    let mut body = chat.body.clone();
    body.insert("model".to_string(), Value::String(model.to_string()));
    if chat.stream {
        let options = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if !options.is_object() {
            *options = Value::Object(Map::new());
        }
        if let Value::Object(o) = options {
            o.insert("include_usage".to_string(), Value::Bool(true));
        }
    }
    Outgoing {
        body: serde_json::to_vec(&body).expect("a JSON map always serializes"),
        dropped: Vec::new(),
    }
}

/// An embeddings request (`POST /v1/embeddings`), checked.
#[derive(Debug, Clone)]
pub(crate) struct Embeddings {
    pub(crate) body: Map<String, Value>,
    /// The client's model name.
    pub(crate) model: String,
}

/// Checks `model` (a non-empty string) and `input` (a string, an array of
/// strings, an array of tokens or an array of token arrays, never empty).
pub(crate) fn parse_embeddings(body: &[u8]) -> Result<Embeddings, Invalid> {
    let body = object_body(body)?;
    let model = model_of(&body)?;
    let bad = |path: String| {
        Err(Invalid::new(
            path,
            "`input` must be a string, an array of strings or an array of token arrays",
        ))
    };
    match body.get("input") {
        Some(Value::String(_)) => {}
        Some(Value::Array(items)) if !items.is_empty() => {
            let tokens = |v: &Value| v.as_u64().is_some();
            let all_tokens = items.iter().all(tokens);
            if !all_tokens {
                for (i, item) in items.iter().enumerate() {
                    let ok = match item {
                        Value::String(_) => true,
                        Value::Array(t) => !t.is_empty() && t.iter().all(tokens),
                        _ => false,
                    };
                    if !ok {
                        return bad(format!("input[{i}]"));
                    }
                }
            }
        }
        _ => return bad("input".to_string()),
    }
    Ok(Embeddings { body, model })
}

/// The embeddings request for the provider: its model name substituted.
pub(crate) fn embeddings_for(e: &Embeddings, model: &str) -> Vec<u8> {
    let mut body = e.body.clone();
    body.insert("model".to_string(), Value::String(model.to_string()));
    serde_json::to_vec(&body).expect("a JSON map always serializes")
}

/// Usage of a non-streaming OpenAI answer (chat or embeddings); zero when
/// absent or unreadable.
pub(crate) fn usage_of(body: &[u8]) -> Usage {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v.get("usage").map(usage_from).unwrap_or_default(),
        Err(_) => Usage::default(),
    }
}

/// Usage from an OpenAI `usage` object.
pub(crate) fn usage_from(v: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input: n(v.get("prompt_tokens")),
        output: n(v.get("completion_tokens")),
        cached: n(v.pointer("/prompt_tokens_details/cached_tokens")),
        reasoning: n(v.pointer("/completion_tokens_details/reasoning_tokens")),
    }
}

/// An OpenAI `usage` object for `u` (total = prompt + completion).
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.total(),
        "prompt_tokens_details": {"cached_tokens": u.cached},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

/// Whether some `key` (with its quotes) of a JSON text has a value that
/// `test` accepts; `test` gets the text from the value's first byte on.
/// A scan, not a parse: a key cannot hide inside a string value, where its
/// quotes are escaped; a key of a nested object counts too (callers parse
/// before trusting a hit).
pub(crate) fn any_value(json: &[u8], key: &[u8], test: impl Fn(&[u8]) -> bool) -> bool {
    let blank = |json: &[u8], mut i: usize| {
        while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut from = 0;
    while let Some(at) = find(&json[from..], key) {
        let i = blank(json, from + at + key.len());
        if json.get(i) == Some(&b':') && test(&json[blank(json, i + 1)..]) {
            return true;
        }
        from += at + 1;
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// An OpenAI error data event, for a stream that broke.
pub(crate) fn error_event(out: &mut BytesMut, kind: &str, message: &str) {
    sse::write_data(out, &error::envelope(message, kind, None, None));
}

/// The error chunk for a provider event past [`sse::MAX_EVENT`].
pub(crate) fn too_large_event(out: &mut BytesMut) {
    error_event(out, "server_error", sse::TOO_LARGE_MESSAGE);
}

/// Passthrough stream (OpenAI provider → OpenAI client): every event goes
/// through as it came, except the usage-only chunk toward a client that
/// did not ask for it. Usage is read from any chunk whose `usage` is an
/// object (the latest wins); `[DONE]` is added if the upstream ended
/// without one.
#[derive(Debug)]
pub(crate) struct PassStream {
    parser: Parser,
    state: PassState,
}

#[derive(Debug)]
struct PassState {
    include_usage: bool,
    usage: Usage,
    started: bool,
    done: bool,
}

impl PassStream {
    pub(crate) fn new(include_usage: bool) -> PassStream {
        PassStream {
            parser: Parser::new(),
            state: PassState {
                include_usage,
                usage: Usage::default(),
                started: false,
                done: false,
            },
        }
    }
}

impl PassState {
    fn on_event(&mut self, ev: Event<'_>, out: &mut BytesMut) {
        if self.done {
            return;
        }
        let data = ev.data;
        if data == b"[DONE]" {
            out.extend_from_slice(sse::DONE);
            self.done = true;
            return;
        }
        if any_value(data, b"\"usage\"", |v| v.first() == Some(&b'{')) {
            if let Ok(v) = serde_json::from_slice::<Value>(data) {
                if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
                    self.usage = usage_from(usage);
                    let no_choices = v
                        .get("choices")
                        .and_then(Value::as_array)
                        .is_none_or(|c| c.is_empty());
                    if no_choices && !self.include_usage {
                        return;
                    }
                }
            }
        }
        if !self.started && carries_content(data) {
            self.started = true;
        }
        sse::write_data(out, data);
    }
}

/// Whether a chunk carries a token: non-empty `content` (or
/// `reasoning_content`, which contains the key) or a `tool_calls` array.
fn carries_content(data: &[u8]) -> bool {
    any_value(data, b"content\"", |v| {
        v.len() > 1 && v[0] == b'"' && v[1] != b'"'
    }) || any_value(data, b"\"tool_calls\"", |v| v.first() == Some(&b'['))
}

impl Events for PassStream {
    fn feed(&mut self, data: &[u8], out: &mut BytesMut) {
        if self.state.done {
            return;
        }
        let PassStream { parser, state } = self;
        if parser.feed(data, |ev| state.on_event(ev, out)).is_err() {
            too_large_event(out);
            out.extend_from_slice(sse::DONE);
            state.done = true;
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        let state = &mut self.state;
        self.parser.finish(|ev| state.on_event(ev, out));
        if !self.state.done {
            out.extend_from_slice(sse::DONE);
            self.state.done = true;
        }
    }

    fn usage(&self) -> Usage {
        self.state.usage
    }

    fn started(&self) -> bool {
        self.state.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(v: Value) -> Chat {
        parse_chat(&serde_json::to_vec(&v).expect("json")).expect("valid")
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("json")
    }

    #[test]
    fn parse_chat_accepts_the_reference_request() {
        // OpenAI API reference, "Create chat completion" (default + tools).
        let c = chat(json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": "You are a helpful assistant."},
                {"role": "user", "content": [{"type": "text", "text": "What's in this image?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123", "type": "function",
                    "function": {"name": "get_current_weather", "arguments": "{\"location\":\"Boston, MA\"}"}}]},
                {"role": "tool", "tool_call_id": "call_abc123", "content": "{\"temp\":22}"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_current_weather",
                "description": "Get the current weather", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 100, "temperature": 0.2, "top_p": 1, "n": 1
        }));
        assert_eq!(c.model, "gpt-4o");
        assert!(c.stream);
        assert!(c.include_usage);
        let c = chat(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        assert!(!c.stream);
        assert!(!c.include_usage);
    }

    #[test]
    fn parse_chat_names_the_field() {
        let user = json!({"role": "user", "content": "hi"});
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("not json", b"{".to_vec(), ""),
            ("not an object", b"[]".to_vec(), ""),
            ("no model", serde_json::to_vec(&json!({"messages": [user]})).expect("json"), "model"),
            ("empty model", serde_json::to_vec(&json!({"model": "", "messages": [user]})).expect("json"), "model"),
            ("model a number", serde_json::to_vec(&json!({"model": 4, "messages": [user]})).expect("json"), "model"),
            ("no messages", serde_json::to_vec(&json!({"model": "m"})).expect("json"), "messages"),
            ("empty messages", serde_json::to_vec(&json!({"model": "m", "messages": []})).expect("json"), "messages"),
            ("message not object", serde_json::to_vec(&json!({"model": "m", "messages": [user, "hi"]})).expect("json"), "messages[1]"),
            ("bad role", serde_json::to_vec(&json!({"model": "m", "messages": [user, {"role": "robot", "content": "x"}]})).expect("json"), "messages[1].role"),
            ("no role", serde_json::to_vec(&json!({"model": "m", "messages": [{"content": "x"}]})).expect("json"), "messages[0].role"),
            ("user without content", serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "user"}]})).expect("json"), "messages[0].content"),
            ("content a number", serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "user", "content": 3}]})).expect("json"), "messages[0].content"),
            ("part without type", serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]})).expect("json"), "messages[0].content[0].type"),
            ("tool without id", serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})).expect("json"), "messages[0].tool_call_id"),
            ("tool call without name", serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]}]})).expect("json"), "messages[0].tool_calls[0].function.name"),
            ("tool call arguments an object", serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}]}]})).expect("json"), "messages[0].tool_calls[0].function.arguments"),
            ("tool call without id", serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]})).expect("json"), "messages[0].tool_calls[0].id"),
            ("stream a string", serde_json::to_vec(&json!({"model": "m", "messages": [user], "stream": "yes"})).expect("json"), "stream"),
            ("stream_options a list", serde_json::to_vec(&json!({"model": "m", "messages": [user], "stream_options": []})).expect("json"), "stream_options"),
            ("include_usage a string", serde_json::to_vec(&json!({"model": "m", "messages": [user], "stream_options": {"include_usage": "true"}})).expect("json"), "stream_options.include_usage"),
            ("tools an object", serde_json::to_vec(&json!({"model": "m", "messages": [user], "tools": {}})).expect("json"), "tools"),
            ("tool type", serde_json::to_vec(&json!({"model": "m", "messages": [user], "tools": [{"type": "code", "function": {"name": "f"}}]})).expect("json"), "tools[0].type"),
            ("tool function", serde_json::to_vec(&json!({"model": "m", "messages": [user], "tools": [{"type": "function"}]})).expect("json"), "tools[0].function"),
            ("tool name", serde_json::to_vec(&json!({"model": "m", "messages": [user], "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": ""}}]})).expect("json"), "tools[1].function.name"),
            ("max_tokens a string", serde_json::to_vec(&json!({"model": "m", "messages": [user], "max_tokens": "10"})).expect("json"), "max_tokens"),
            ("max_completion_tokens negative", serde_json::to_vec(&json!({"model": "m", "messages": [user], "max_completion_tokens": -1})).expect("json"), "max_completion_tokens"),
            ("n fractional", serde_json::to_vec(&json!({"model": "m", "messages": [user], "n": 1.5})).expect("json"), "n"),
            ("temperature a string", serde_json::to_vec(&json!({"model": "m", "messages": [user], "temperature": "hot"})).expect("json"), "temperature"),
            ("top_p a bool", serde_json::to_vec(&json!({"model": "m", "messages": [user], "top_p": true})).expect("json"), "top_p"),
        ];
        for (what, body, param) in cases {
            let got = parse_chat(&body).expect_err(what);
            assert_eq!(got.param, param, "{what}: {}", got.message);
        }
    }

    #[test]
    fn to_openai_substitutes_model_and_forces_usage() {
        #[rustfmt::skip]
        let cases: &[(&str, Value, Value)] = &[
            ("not streaming: only the model",
                json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5, "seed": 7}),
                json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5, "seed": 7})),
            ("streaming without options",
                json!({"model": "fast", "messages": [], "stream": true}),
                json!({"model": "gpt-4o-mini", "messages": [], "stream": true, "stream_options": {"include_usage": true}})),
            ("streaming, client said false",
                json!({"model": "fast", "messages": [], "stream": true, "stream_options": {"include_usage": false, "x": 1}}),
                json!({"model": "gpt-4o-mini", "messages": [], "stream": true, "stream_options": {"include_usage": true, "x": 1}})),
            ("streaming, options null",
                json!({"model": "fast", "messages": [], "stream": true, "stream_options": null}),
                json!({"model": "gpt-4o-mini", "messages": [], "stream": true, "stream_options": {"include_usage": true}})),
        ];
        for (what, input, want) in cases {
            let Value::Object(body) = input.clone() else {
                unreachable!()
            };
            let c = Chat {
                body,
                model: "fast".into(),
                stream: input["stream"] == true,
                include_usage: false,
            };
            let out = to_openai(&c, "gpt-4o-mini");
            assert_eq!(json(&out.body), *want, "{what}");
            assert!(out.dropped.is_empty());
        }
    }

    #[test]
    fn embeddings() {
        let e = parse_embeddings(
            br#"{"model":"embed","input":"The food was delicious","encoding_format":"float"}"#,
        )
        .expect("valid");
        assert_eq!(e.model, "embed");
        assert_eq!(
            json(&embeddings_for(&e, "text-embedding-3-small")),
            json!({"model": "text-embedding-3-small", "input": "The food was delicious", "encoding_format": "float"})
        );
        #[rustfmt::skip]
        let cases: &[(&str, &str, Result<(), &str>)] = &[
            ("strings", r#"{"model":"m","input":["a","b"]}"#, Ok(())),
            ("tokens", r#"{"model":"m","input":[1,2,3]}"#, Ok(())),
            ("token arrays", r#"{"model":"m","input":[[1,2],[3]]}"#, Ok(())),
            ("no input", r#"{"model":"m"}"#, Err("input")),
            ("empty array", r#"{"model":"m","input":[]}"#, Err("input")),
            ("input a number", r#"{"model":"m","input":3}"#, Err("input")),
            ("mixed", r#"{"model":"m","input":["a",{}]}"#, Err("input[1]")),
            ("empty token array", r#"{"model":"m","input":[[]]}"#, Err("input[0]")),
            ("no model", r#"{"input":"a"}"#, Err("model")),
            ("not json", r#"x"#, Err("")),
        ];
        for (what, body, want) in cases {
            let got = parse_embeddings(body.as_bytes())
                .map(|_| ())
                .map_err(|e| e.param);
            assert_eq!(got, want.map_err(str::to_string), "{what}");
        }
    }

    #[test]
    fn usage_of_answers() {
        // OpenAI API reference: chat completion object with details.
        let answer = br#"{"id":"chatcmpl-123","object":"chat.completion","created":1677652288,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how may I assist you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}}"#;
        let embeddings = br#"{"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292],"index":0}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        #[rustfmt::skip]
        let cases: &[(&[u8], Usage)] = &[
            (answer, Usage { input: 9, output: 12, cached: 2, reasoning: 3 }),
            (embeddings, Usage { input: 8, output: 0, cached: 0, reasoning: 0 }),
            (br#"{"choices":[]}"#, Usage::default()),
            (b"not json", Usage::default()),
        ];
        for (body, want) in cases {
            assert_eq!(usage_of(body), *want);
        }
        let u = usage_of(answer);
        let v = usage_json(&u);
        assert_eq!(v["total_tokens"], 21);
        assert_eq!(usage_from(&v), u);
        assert_eq!(u.total(), u.input + u.output);
    }

    #[test]
    fn any_value_finds_keys_not_strings() {
        #[rustfmt::skip]
        let cases: &[(&str, bool)] = &[
            (r#"{"usage":{"a":1}}"#, true),
            (r#"{"usage" : {"a":1}}"#, true),
            (r#"{"usage":null}"#, false),
            (r#"{"content":"say \"usage\":{ here"}"#, false),
            (r#"{"x":"usage","usage":{}}"#, true),
            (r#"{"a":{"usage":null},"usage":{}}"#, true),
            (r#"{}"#, false),
        ];
        for (json, want) in cases {
            let got = any_value(json.as_bytes(), b"\"usage\"", |v| v.first() == Some(&b'{'));
            assert_eq!(got, *want, "{json}");
        }
        #[rustfmt::skip]
        let content: &[(&str, bool)] = &[
            (r#"{"delta":{"role":"assistant","content":""}}"#, false),
            (r#"{"delta":{"content":"Hi"}}"#, true),
            (r#"{"delta":{"reasoning_content":null,"content":"Hi"}}"#, true),
            (r#"{"delta":{"reasoning_content":"hmm"}}"#, true),
            (r#"{"delta":{"tool_calls":[{"index":0}]}}"#, true),
            (r#"{"delta":{},"finish_reason":"stop"}"#, false),
        ];
        for (json, want) in content {
            assert_eq!(carries_content(json.as_bytes()), *want, "{json}");
        }
    }

    /// OpenAI API reference, streaming with `include_usage` (the chunk
    /// objects of "The chat completion chunk object"), as OpenAI frames
    /// them.
    const STREAM: &str = concat!(
        "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
        "data: [DONE]\n\n",
    );

    /// Tool call streaming, from the OpenAI function-calling guide.
    const TOOL_STREAM: &str = concat!(
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_DdmO9pD3xa9XTPNJ32zg2hcA\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"location\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":7,\"total_tokens\":27}}\n\n",
    );

    #[test]
    fn pass_stream() {
        let usage_chunk_at = STREAM.find("data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[]").expect("fixture");
        let without_usage_chunk = format!("{}data: [DONE]\n\n", &STREAM[..usage_chunk_at]);
        let no_done = &STREAM[..STREAM.len() - "data: [DONE]\n\n".len()];
        let crlf = STREAM.replace("\n", "\r\n");
        let with_comments = format!(": OPENROUTER PROCESSING\n\n{STREAM}");
        let tool_usage = Usage {
            input: 20,
            output: 7,
            cached: 0,
            reasoning: 0,
        };
        let text_usage = Usage {
            input: 9,
            output: 12,
            cached: 0,
            reasoning: 0,
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, bool, &str, String, Usage, bool)> = vec![
            ("asked for usage: byte for byte", true, STREAM, STREAM.to_string(), text_usage, true),
            ("did not ask: usage chunk dropped", false, STREAM, without_usage_chunk.clone(), text_usage, true),
            ("no [DONE] upstream: added", true, no_done, STREAM.to_string(), text_usage, true),
            ("crlf framing normalised", true, &crlf, STREAM.to_string(), text_usage, true),
            ("comments dropped", true, &with_comments, STREAM.to_string(), text_usage, true),
            ("choices and usage in one chunk pass", false, TOOL_STREAM, format!("{TOOL_STREAM}data: [DONE]\n\n"), tool_usage, true),
            ("empty stream", false, "", "data: [DONE]\n\n".to_string(), Usage::default(), false),
            ("error event passes", false, "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
                "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\ndata: [DONE]\n\n".to_string(), Usage::default(), false),
        ];
        for (what, include_usage, input, want, usage, started) in cases {
            let (out, got_usage, got_started) = crate::ai::stream::testing::run(
                &|| Box::new(PassStream::new(include_usage)),
                input.as_bytes(),
            );
            assert_eq!(out, want, "{what}");
            assert_eq!(got_usage, usage, "{what}");
            assert_eq!(got_usage.total(), usage.input + usage.output, "{what}");
            assert_eq!(got_started, started, "{what}");
        }
    }

    #[test]
    fn pass_stream_latest_usage_wins_and_role_chunk_is_not_content() {
        let input =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":0}}\n\n";
        let (_, usage, started) =
            crate::ai::stream::testing::run(&|| Box::new(PassStream::new(false)), input.as_bytes());
        assert_eq!(usage.input, 5);
        assert!(!started);
        let input = concat!(
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n",
            "data: {\"choices\":[],\"usage\": {\"prompt_tokens\":5,\"completion_tokens\":9}}\n\n",
        );
        let (out, usage, _) =
            crate::ai::stream::testing::run(&|| Box::new(PassStream::new(false)), input.as_bytes());
        assert_eq!(out, "data: [DONE]\n\n");
        assert_eq!(
            usage,
            Usage {
                input: 5,
                output: 9,
                cached: 0,
                reasoning: 0
            }
        );
    }

    #[test]
    fn pass_stream_event_over_the_bound() {
        let mut p = PassStream::new(false);
        let mut out = BytesMut::new();
        p.feed(b"data: ", &mut out);
        p.feed(&vec![b'x'; sse::MAX_EVENT + 1], &mut out);
        p.feed(b"\n\n", &mut out);
        p.finish(&mut out);
        let out = String::from_utf8(out.to_vec()).expect("utf-8");
        assert!(
            out.starts_with(
                "data: {\"error\":{\"message\":\"an event of the provider's stream passed 1 MiB\""
            ),
            "{out}"
        );
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert_eq!(out.matches("[DONE]").count(), 1);
    }
}
