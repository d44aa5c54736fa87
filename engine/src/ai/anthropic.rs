//! Anthropic Messages, both ways: an OpenAI chat request written for an
//! Anthropic provider ([`to_anthropic`]) and its answer read back
//! ([`answer_to_openai`], [`ToOpenAi`] for streams); and the
//! Anthropic-compatible front, where a client speaks Messages to any
//! provider ([`chat_from_messages`], [`answer_from_openai`], [`FromOpenAi`]).
//!
//! The mappings are the tables of `AI-GATEWAY.md`. Choices that lose
//! something, made here once:
//! - `temperature` is clamped to 1.0 (OpenAI allows 0–2, Anthropic 0–1)
//!   rather than refused: a client tuned for OpenAI keeps working and gets
//!   the most random sampling Anthropic offers.
//! - OpenAI fields with no Anthropic meaning (`n`, `seed`, penalties,
//!   `logprobs`, `response_format`...) are left out and listed in
//!   [`Outgoing::dropped`]; a field set to `null` (or to its default: `n: 1`,
//!   `logprobs: false`) loses nothing and is not listed. `dropped` holds
//!   `&'static str`, so a field this module has never heard of is listed as
//!   `other`.
//! - Usage: OpenAI counts cached prompt tokens inside `prompt_tokens`,
//!   Anthropic reports cache reads and cache writes apart from
//!   `input_tokens`; `prompt_tokens` is their sum, so totals add up.
//!
//! Streams are translated event by event in `events` ([`ToOpenAi`]);
//! the front lives in `front`.

mod events;
mod front;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{note_dropped, Answer, Chat, Invalid, Outgoing, Unreadable, Usage};

pub(crate) use events::ToOpenAi;
pub(crate) use front::{answer_from_openai, chat_from_messages, FromOpenAi};

// ---------------------------------------------------------------------------
// OpenAI request → Anthropic request

/// OpenAI request fields Anthropic has no counterpart for, by name (the
/// names `Outgoing::dropped` can list).
const UNSUPPORTED: &[&str] = &[
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "metadata",
    "modalities",
    "n",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "store",
    "top_logprobs",
    "verbosity",
    "web_search_options",
];

/// OpenAI chat → Anthropic Messages request (see the module header for
/// what is clamped or dropped).
pub(crate) fn to_anthropic(
    chat: &Chat,
    model: &str,
    max_tokens_default: u32,
) -> Result<Outgoing, Invalid> {
    let body = &chat.body;
    let mut out = Map::new();
    let mut dropped = Vec::new();
    out.insert("model".into(), model.into());
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Invalid::new("messages", "`messages` must be an array"))?;
    let (system, messages) = messages_to_anthropic(messages)?;
    if let Some(system) = system {
        out.insert("system".into(), system.into());
    }
    out.insert("messages".into(), messages.into());
    out.insert(
        "max_tokens".into(),
        max_tokens(body, max_tokens_default)?.into(),
    );
    let mut has_tools = false;
    for (key, value) in body {
        match key.as_str() {
            // Handled above or below, or ours (`stream_options`).
            "model"
            | "messages"
            | "max_tokens"
            | "max_completion_tokens"
            | "stream_options"
            | "tool_choice"
            | "parallel_tool_calls" => {}
            _ if value.is_null() => {}
            "stream" => {
                if chat.stream {
                    out.insert("stream".into(), true.into());
                }
            }
            "stop" => {
                let stops = stop_sequences(value)?;
                if !stops.is_empty() {
                    out.insert("stop_sequences".into(), stops.into());
                }
            }
            "temperature" => {
                let t = value
                    .as_f64()
                    .ok_or_else(|| Invalid::new("temperature", "`temperature` must be a number"))?;
                out.insert("temperature".into(), t.clamp(0.0, 1.0).into());
            }
            "top_p" => {
                if !value.is_number() {
                    return Err(Invalid::new("top_p", "`top_p` must be a number"));
                }
                out.insert("top_p".into(), value.clone());
            }
            "tools" => {
                let tools = tools_to_anthropic(value)?;
                has_tools = !tools.is_empty();
                if has_tools {
                    out.insert("tools".into(), tools.into());
                }
            }
            "user" => {
                let user = value
                    .as_str()
                    .ok_or_else(|| Invalid::new("user", "`user` must be a string"))?;
                out.insert("metadata".into(), json!({ "user_id": user }));
            }
            // Defaults lose nothing.
            "n" if value.as_u64() == Some(1) => {}
            "logprobs" if value == &Value::Bool(false) => {}
            other => note_dropped(&mut dropped, UNSUPPORTED, other),
        }
    }
    // Anthropic refuses a tool_choice without tools: it only means
    // something next to them.
    if has_tools {
        if let Some(choice) = tool_choice_to_anthropic(body)? {
            out.insert("tool_choice".into(), choice);
        }
    }
    Ok(Outgoing {
        body: to_vec(&out),
        dropped,
    })
}

/// `max_tokens` is required by Anthropic: the client's
/// `max_completion_tokens` (the current name), else its `max_tokens`, else
/// the model's configured default.
fn max_tokens(body: &Map<String, Value>, default: u32) -> Result<u64, Invalid> {
    for key in ["max_completion_tokens", "max_tokens"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                return v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    Invalid::new(key, format!("`{key}` must be a positive integer"))
                });
            }
        }
    }
    Ok(u64::from(default))
}

fn stop_sequences(value: &Value) -> Result<Vec<Value>, Invalid> {
    match value {
        Value::String(s) => Ok(vec![s.as_str().into()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(k, s)| match s {
                Value::String(_) => Ok(s.clone()),
                _ => Err(Invalid::new(
                    format!("stop[{k}]"),
                    "a stop sequence must be a string",
                )),
            })
            .collect(),
        _ => Err(Invalid::new(
            "stop",
            "`stop` must be a string or an array of strings",
        )),
    }
}

/// The messages: system and developer ones joined into the top-level
/// `system`; consecutive tool messages grouped into one user message of
/// `tool_result` blocks (Anthropic wants every result of one assistant
/// turn in the next user turn).
fn messages_to_anthropic(messages: &[Value]) -> Result<(Option<String>, Vec<Value>), Invalid> {
    let mut system: Option<String> = None;
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    // Whether the last message of `out` is a group of tool results.
    let mut in_results = false;
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| Invalid::new(format!("messages[{i}].role"), "a message needs a role"))?;
        let content = message.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                let text = text_of(content, &format!("messages[{i}].content"))?;
                match &mut system {
                    Some(joined) => {
                        joined.push('\n');
                        joined.push_str(&text);
                    }
                    None => system = Some(text),
                }
                continue;
            }
            "user" => out.push(json!({ "role": "user", "content": user_content(content, i)? })),
            "assistant" => {
                if let Some(m) = assistant_to_anthropic(message, content, i)? {
                    out.push(m);
                }
            }
            "tool" => {
                let block = tool_result(message, content, i)?;
                if in_results {
                    if let Some(blocks) = out
                        .last_mut()
                        .and_then(|m| m.get_mut("content"))
                        .and_then(Value::as_array_mut)
                    {
                        blocks.push(block);
                        continue;
                    }
                }
                out.push(json!({ "role": "user", "content": [block] }));
                in_results = true;
                continue;
            }
            _ => {
                return Err(Invalid::new(
                    format!("messages[{i}].role"),
                    format!("unknown role `{role}`"),
                ))
            }
        }
        in_results = false;
    }
    Ok((system, out))
}

/// The text of a string content or of an array of text parts (joined).
fn text_of(content: &Value, param: &str) -> Result<String, Invalid> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match part.get("text").and_then(Value::as_str) {
                    Some(t) => text.push_str(t),
                    None => {
                        return Err(Invalid::new(
                            format!("{param}[{j}]"),
                            "only text parts are allowed here",
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(Invalid::new(
            param,
            "content must be a string or an array of parts",
        )),
    }
}

fn user_content(content: &Value, i: usize) -> Result<Value, Invalid> {
    let parts = match content {
        Value::String(_) => return Ok(content.clone()),
        Value::Array(parts) => parts,
        _ => {
            return Err(Invalid::new(
                format!("messages[{i}].content"),
                "content must be a string or an array of parts",
            ))
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "text" => {
                let text = part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    Invalid::new(format!("messages[{i}].content[{j}].text"), "text missing")
                })?;
                blocks.push(json!({ "type": "text", "text": text }));
            }
            "image_url" => {
                let image = part.get("image_url").unwrap_or(&Value::Null);
                let url = image
                    .as_str()
                    .or_else(|| image.get("url").and_then(Value::as_str))
                    .ok_or_else(|| {
                        Invalid::new(
                            format!("messages[{i}].content[{j}].image_url.url"),
                            "image URL missing",
                        )
                    })?;
                blocks.push(image_block(url, i, j)?);
            }
            _ => {
                return Err(Invalid::new(
                    format!("messages[{i}].content[{j}].type"),
                    format!("content part type `{kind}` is not supported by this model's provider"),
                ))
            }
        }
    }
    Ok(blocks.into())
}

/// An image part: a `data:` URL becomes a base64 source, an http(s) URL a
/// url source (Anthropic fetches it).
fn image_block(url: &str, i: usize, j: usize) -> Result<Value, Invalid> {
    let param = || format!("messages[{i}].content[{j}].image_url.url");
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| Invalid::new(param(), "a data: URL needs a comma"))?;
        let Some(meta) = meta.strip_suffix(";base64") else {
            return Err(Invalid::new(
                param(),
                "only base64 data: URLs are supported",
            ));
        };
        let media_type = meta.split(';').next().unwrap_or(meta);
        return Ok(json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }));
    }
    Err(Invalid::new(
        param(),
        "an image URL must be a data: URL or an http(s) URL",
    ))
}

/// An assistant message: its text, then one `tool_use` block per tool
/// call with the arguments parsed (Anthropic wants the input object).
/// None when it says nothing at all (Anthropic refuses empty content).
fn assistant_to_anthropic(
    message: &Value,
    content: &Value,
    i: usize,
) -> Result<Option<Value>, Invalid> {
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(calls)) => calls.as_slice(),
        Some(_) => {
            return Err(Invalid::new(
                format!("messages[{i}].tool_calls"),
                "`tool_calls` must be an array",
            ))
        }
    };
    let text = match content {
        Value::Array(parts) => {
            // Text and refusal parts both read as text.
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                let t = part
                    .get("text")
                    .or_else(|| part.get("refusal"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Invalid::new(
                            format!("messages[{i}].content[{j}]"),
                            "only text parts are allowed in an assistant message",
                        )
                    })?;
                text.push_str(t);
            }
            text
        }
        other => text_of(other, &format!("messages[{i}].content"))?,
    };
    if calls.is_empty() {
        if text.is_empty() {
            return Ok(None);
        }
        return Ok(Some(json!({ "role": "assistant", "content": text })));
    }
    let mut blocks = Vec::with_capacity(calls.len() + 1);
    if !text.is_empty() {
        blocks.push(json!({ "type": "text", "text": text }));
    }
    for (j, call) in calls.iter().enumerate() {
        let param = |field: &str| format!("messages[{i}].tool_calls[{j}].{field}");
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Invalid::new(param("id"), "a tool call needs an id"))?;
        let function = call.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Invalid::new(param("function.name"), "a tool call needs a name"))?;
        let arguments = function
            .get("arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        // A function without parameters is often called with "".
        let input = if arguments.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            match serde_json::from_str::<Value>(arguments) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(Invalid::new(
                        param("function.arguments"),
                        "tool call arguments must be a JSON object",
                    ))
                }
            }
        };
        blocks.push(json!({ "type": "tool_use", "id": id, "name": name, "input": input }));
    }
    Ok(Some(json!({ "role": "assistant", "content": blocks })))
}

fn tool_result(message: &Value, content: &Value, i: usize) -> Result<Value, Invalid> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Invalid::new(
                format!("messages[{i}].tool_call_id"),
                "a tool message needs a tool_call_id",
            )
        })?;
    let mut block = json!({ "type": "tool_result", "tool_use_id": id });
    let content = match content {
        Value::Null => return Ok(block),
        Value::String(_) => content.clone(),
        Value::Array(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let text = part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    Invalid::new(
                        format!("messages[{i}].content[{j}]"),
                        "only text parts are allowed in a tool message",
                    )
                })?;
                blocks.push(json!({ "type": "text", "text": text }));
            }
            blocks.into()
        }
        _ => {
            return Err(Invalid::new(
                format!("messages[{i}].content"),
                "content must be a string or an array of parts",
            ))
        }
    };
    block["content"] = content;
    Ok(block)
}

fn tools_to_anthropic(tools: &Value) -> Result<Vec<Value>, Invalid> {
    let tools = tools
        .as_array()
        .ok_or_else(|| Invalid::new("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (k, tool) in tools.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(Invalid::new(
                format!("tools[{k}].type"),
                "only function tools are supported",
            ));
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Invalid::new(format!("tools[{k}].function.name"), "a tool needs a name")
            })?;
        let mut t = Map::new();
        t.insert("name".into(), name.into());
        if let Some(d) = function.get("description").filter(|d| d.is_string()) {
            t.insert("description".into(), d.clone());
        }
        // Anthropic requires a schema; a function without parameters
        // takes an empty object.
        let schema = match function.get("parameters") {
            None | Some(Value::Null) => json!({ "type": "object", "properties": {} }),
            Some(p) => p.clone(),
        };
        t.insert("input_schema".into(), schema);
        out.push(Value::Object(t));
    }
    Ok(out)
}

fn tool_choice_to_anthropic(body: &Map<String, Value>) -> Result<Option<Value>, Invalid> {
    let serial = body.get("parallel_tool_calls") == Some(&Value::Bool(false));
    let invalid = || {
        Invalid::new(
            "tool_choice",
            "`tool_choice` must be auto, required, none or a named function",
        )
    };
    let mut choice = match body.get("tool_choice") {
        None | Some(Value::Null) if serial => json!({ "type": "auto" }),
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            "none" => return Ok(Some(json!({ "type": "none" }))),
            _ => return Err(invalid()),
        },
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(invalid)?;
            json!({ "type": "tool", "name": name })
        }
    };
    if serial {
        choice["disable_parallel_tool_use"] = true.into();
    }
    Ok(Some(choice))
}

// ---------------------------------------------------------------------------
// Anthropic answer → OpenAI answer

/// Anthropic's token counts, kept apart as it reports them.
#[derive(Debug, Clone, Copy, Default)]
struct Tokens {
    input: u64,
    cache_read: u64,
    cache_creation: u64,
    output: u64,
}

impl Tokens {
    /// Updates from an Anthropic `usage` object: only the fields present
    /// (a `message_delta` may carry only `output_tokens`). Counts are
    /// cumulative, so each replaces the last, never adds to it.
    fn update(&mut self, usage: &Value) {
        let fields = [
            ("input_tokens", &mut self.input),
            ("cache_read_input_tokens", &mut self.cache_read),
            ("cache_creation_input_tokens", &mut self.cache_creation),
            ("output_tokens", &mut self.output),
        ];
        for (key, slot) in fields {
            if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                *slot = n;
            }
        }
    }

    fn usage(&self) -> Usage {
        Usage {
            input: self.input + self.cache_read + self.cache_creation,
            output: self.output,
            cached: self.cache_read,
            reasoning: 0,
        }
    }
}

/// An OpenAI `usage` object (total = prompt + completion).
fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.total(),
        "prompt_tokens_details": { "cached_tokens": u.cached },
        "completion_tokens_details": { "reasoning_tokens": u.reasoning },
    })
}

fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything newer.
        _ => "stop",
    }
}

/// Anthropic Messages answer → OpenAI chat.completion. The id is
/// Anthropic's (the same in streams).
pub(crate) fn answer_to_openai(body: &[u8], created: u64) -> Result<Answer, Unreadable> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Unreadable(format!("the Anthropic answer is not JSON: {e}")))?;
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| Unreadable("the Anthropic answer has no content array".into()))?;
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let input = block.get("input").unwrap_or(&Value::Null);
                let arguments = if input.is_null() {
                    "{}".to_owned()
                } else {
                    input.to_string()
                };
                calls.push(json!({
                    "id": block.get("id").unwrap_or(&Value::Null),
                    "type": "function",
                    "function": { "name": block.get("name").unwrap_or(&Value::Null), "arguments": arguments },
                }));
            }
            // thinking and server-tool blocks have no OpenAI place.
            _ => {}
        }
    }
    let mut tokens = Tokens::default();
    if let Some(u) = v.get("usage") {
        tokens.update(u);
    }
    let usage = tokens.usage();
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let content = match text {
        Some(t) => Value::String(t),
        None if !calls.is_empty() => Value::Null,
        None => Value::String(String::new()),
    };
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), calls.into());
    }
    let stop = v.get("stop_reason").and_then(Value::as_str).unwrap_or("");
    let out = json!({
        "id": v.get("id").and_then(Value::as_str).unwrap_or(""),
        "object": "chat.completion",
        "created": created,
        "model": v.get("model").and_then(Value::as_str).unwrap_or(""),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(stop),
        }],
        "usage": usage_json(&usage),
    });
    Ok(Answer {
        body: to_vec(&out),
        usage,
    })
}

// ---------------------------------------------------------------------------
// JSON writing

fn put_json(buf: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    serde_json::to_writer(buf, value).expect("JSON values and strings serialize into a Vec");
}

fn to_vec(value: &(impl Serialize + ?Sized)) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialize into a Vec")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Chat {
        let Value::Object(body) = body else {
            panic!("a test request is an object");
        };
        Chat {
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            stream: body.get("stream") == Some(&Value::Bool(true)),
            include_usage: false,
            body,
        }
    }

    pub(super) fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("the output is JSON")
    }

    // -- OpenAI request → Anthropic request -------------------------------

    #[test]
    fn request_mapping() {
        let user = json!({ "role": "user", "content": "Hi" });
        let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
            (
                "system and developer joined, removed from messages",
                json!({ "model": "c", "messages": [
                    { "role": "system", "content": "Be brief." },
                    { "role": "developer", "content": [{ "type": "text", "text": "Use French." }] },
                    user,
                ] }),
                json!({ "model": "claude", "max_tokens": 1024, "system": "Be brief.\nUse French.",
                    "messages": [user] }),
                vec![],
            ),
            (
                "user parts: text, data: image, https image",
                json!({ "model": "c", "messages": [{ "role": "user", "content": [
                    { "type": "text", "text": "What is this?" },
                    { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgo=" } },
                    { "type": "image_url", "image_url": { "url": "https://example.com/cat.jpg", "detail": "high" } },
                ] }] }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [{ "role": "user", "content": [
                    { "type": "text", "text": "What is this?" },
                    { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo=" } },
                    { "type": "image", "source": { "type": "url", "url": "https://example.com/cat.jpg" } },
                ] }] }),
                vec![],
            ),
            (
                "assistant tool calls; consecutive tool messages make one user message",
                json!({ "model": "c", "messages": [
                    user,
                    { "role": "assistant", "content": "Let me check.", "tool_calls": [
                        { "id": "call_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"location\":\"Paris\"}" } },
                        { "id": "call_2", "type": "function", "function": { "name": "get_time", "arguments": "" } },
                    ] },
                    { "role": "tool", "tool_call_id": "call_1", "content": "18C" },
                    { "role": "tool", "tool_call_id": "call_2", "content": [{ "type": "text", "text": "noon" }] },
                    { "role": "user", "content": "Thanks" },
                    { "role": "assistant", "content": null, "tool_calls": [
                        { "id": "call_3", "type": "function", "function": { "name": "get_time", "arguments": "{}" } },
                    ] },
                    { "role": "tool", "tool_call_id": "call_3", "content": "one" },
                ] }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [
                    user,
                    { "role": "assistant", "content": [
                        { "type": "text", "text": "Let me check." },
                        { "type": "tool_use", "id": "call_1", "name": "get_weather", "input": { "location": "Paris" } },
                        { "type": "tool_use", "id": "call_2", "name": "get_time", "input": {} },
                    ] },
                    { "role": "user", "content": [
                        { "type": "tool_result", "tool_use_id": "call_1", "content": "18C" },
                        { "type": "tool_result", "tool_use_id": "call_2", "content": [{ "type": "text", "text": "noon" }] },
                    ] },
                    { "role": "user", "content": "Thanks" },
                    { "role": "assistant", "content": [
                        { "type": "tool_use", "id": "call_3", "name": "get_time", "input": {} },
                    ] },
                    { "role": "user", "content": [
                        { "type": "tool_result", "tool_use_id": "call_3", "content": "one" },
                    ] },
                ] }),
                vec![],
            ),
            (
                "max_completion_tokens wins over max_tokens",
                json!({ "model": "c", "messages": [user], "max_completion_tokens": 300, "max_tokens": 200 }),
                json!({ "model": "claude", "max_tokens": 300, "messages": [user] }),
                vec![],
            ),
            (
                "max_tokens alone",
                json!({ "model": "c", "messages": [user], "max_tokens": 200 }),
                json!({ "model": "claude", "max_tokens": 200, "messages": [user] }),
                vec![],
            ),
            (
                "stop string becomes a list; temperature clamped to 1; top_p kept",
                json!({ "model": "c", "messages": [user], "stop": "END", "temperature": 1.7, "top_p": 0.9 }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user],
                    "stop_sequences": ["END"], "temperature": 1.0, "top_p": 0.9 }),
                vec![],
            ),
            (
                "stop list; temperature under 1 kept",
                json!({ "model": "c", "messages": [user], "stop": ["a", "b"], "temperature": 0.25 }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user],
                    "stop_sequences": ["a", "b"], "temperature": 0.25 }),
                vec![],
            ),
            (
                "tools, tool_choice required, parallel_tool_calls false",
                json!({ "model": "c", "messages": [user], "tool_choice": "required", "parallel_tool_calls": false,
                    "tools": [
                        { "type": "function", "function": { "name": "get_weather", "description": "Weather",
                            "parameters": { "type": "object", "properties": { "location": { "type": "string" } }, "required": ["location"] } } },
                        { "type": "function", "function": { "name": "now" } },
                    ] }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user],
                    "tools": [
                        { "name": "get_weather", "description": "Weather",
                            "input_schema": { "type": "object", "properties": { "location": { "type": "string" } }, "required": ["location"] } },
                        { "name": "now", "input_schema": { "type": "object", "properties": {} } },
                    ],
                    "tool_choice": { "type": "any", "disable_parallel_tool_use": true } }),
                vec![],
            ),
            (
                "tool_choice named",
                json!({ "model": "c", "messages": [user], "tools": [{ "type": "function", "function": { "name": "now" } }],
                    "tool_choice": { "type": "function", "function": { "name": "now" } } }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user],
                    "tools": [{ "name": "now", "input_schema": { "type": "object", "properties": {} } }],
                    "tool_choice": { "type": "tool", "name": "now" } }),
                vec![],
            ),
            (
                "tool_choice auto and none",
                json!({ "model": "c", "messages": [user], "tools": [{ "type": "function", "function": { "name": "now" } }],
                    "tool_choice": "none", "parallel_tool_calls": false }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user],
                    "tools": [{ "name": "now", "input_schema": { "type": "object", "properties": {} } }],
                    "tool_choice": { "type": "none" } }),
                vec![],
            ),
            (
                "parallel_tool_calls false alone means auto without parallel use",
                json!({ "model": "c", "messages": [user], "tools": [{ "type": "function", "function": { "name": "now" } }],
                    "parallel_tool_calls": false }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user],
                    "tools": [{ "name": "now", "input_schema": { "type": "object", "properties": {} } }],
                    "tool_choice": { "type": "auto", "disable_parallel_tool_use": true } }),
                vec![],
            ),
            (
                "tool_choice without tools is left out",
                json!({ "model": "c", "messages": [user], "tool_choice": "auto" }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user] }),
                vec![],
            ),
            (
                "user becomes metadata.user_id; stream kept, stream_options ours",
                json!({ "model": "c", "messages": [user], "user": "u-42", "stream": true,
                    "stream_options": { "include_usage": true } }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user],
                    "metadata": { "user_id": "u-42" }, "stream": true }),
                vec![],
            ),
            (
                "unsupported fields dropped and listed; nulls and defaults are not",
                json!({ "model": "c", "messages": [user], "n": 2, "seed": 7, "logprobs": true,
                    "top_logprobs": 2, "presence_penalty": 0.5, "frequency_penalty": 0.5,
                    "response_format": { "type": "json_object" }, "logit_bias": {}, "service_tier": "auto",
                    "foo": 1, "bar": 2, "store": null }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user] }),
                vec![
                    "bar",
                    "foo",
                    "frequency_penalty",
                    "logit_bias",
                    "logprobs",
                    "n",
                    "presence_penalty",
                    "response_format",
                    "seed",
                    "service_tier",
                    "top_logprobs",
                ],
            ),
            (
                "n 1 and logprobs false lose nothing",
                json!({ "model": "c", "messages": [user], "n": 1, "logprobs": false }),
                json!({ "model": "claude", "max_tokens": 1024, "messages": [user] }),
                vec![],
            ),
        ];
        for (name, request, want, dropped) in cases {
            let out = to_anthropic(&chat(request), "claude", 1024)
                .unwrap_or_else(|e| panic!("{name}: refused: {e:?}"));
            assert_eq!(json_of(&out.body), want, "{name}");
            assert_eq!(out.dropped, dropped, "{name}");
        }
    }

    #[test]
    fn request_refusals_name_the_field() {
        let user = json!({ "role": "user", "content": "Hi" });
        let call = |args: &str| {
            json!({ "role": "assistant", "content": null, "tool_calls": [
                { "id": "a", "type": "function", "function": { "name": "f", "arguments": "{}" } },
                { "id": "b", "type": "function", "function": { "name": "f", "arguments": args } },
            ] })
        };
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({ "messages": [user, call("{\"a\":")] }),
                "messages[1].tool_calls[1].function.arguments",
            ),
            (
                json!({ "messages": [user, call("[1]")] }),
                "messages[1].tool_calls[1].function.arguments",
            ),
            (
                json!({ "messages": [{ "role": "user", "content": [
                    { "type": "text", "text": "x" },
                    { "type": "image_url", "image_url": { "url": "ftp://example.com/a.png" } },
                ] }] }),
                "messages[0].content[1].image_url.url",
            ),
            (
                json!({ "messages": [{ "role": "user", "content": [
                    { "type": "image_url", "image_url": { "url": "data:image/png,abc" } },
                ] }] }),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!({ "messages": [{ "role": "user", "content": [
                    { "type": "input_audio", "input_audio": { "data": "", "format": "wav" } },
                ] }] }),
                "messages[0].content[0].type",
            ),
            (
                json!({ "messages": [user, { "role": "tool", "content": "x" }] }),
                "messages[1].tool_call_id",
            ),
            (json!({ "messages": [user], "max_tokens": 0 }), "max_tokens"),
            (
                json!({ "messages": [user], "max_completion_tokens": "9" }),
                "max_completion_tokens",
            ),
            (
                json!({ "messages": [user], "temperature": "hot" }),
                "temperature",
            ),
            (json!({ "messages": [user], "stop": ["a", 1] }), "stop[1]"),
            (
                json!({ "messages": [user], "tools": [{ "type": "function", "function": { "name": "f" } }],
                    "tool_choice": "sometimes" }),
                "tool_choice",
            ),
            (
                json!({ "messages": [user], "tools": [{ "type": "code_interpreter" }] }),
                "tools[0].type",
            ),
            (json!({ "messages": [user], "user": 5 }), "user"),
        ];
        for (request, param) in cases {
            let err = to_anthropic(&chat(request.clone()), "claude", 1024)
                .expect_err(&format!("refused: {request}"));
            assert_eq!(err.param, param, "{request}");
        }
    }

    // -- Anthropic answer → OpenAI answer ---------------------------------

    /// The Messages API reference's example answer.
    pub(super) const ANSWER: &str = r#"{
      "content": [{"text": "Hi! My name is Claude.", "type": "text"}],
      "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
      "model": "claude-3-7-sonnet-20250219",
      "role": "assistant",
      "stop_reason": "end_turn",
      "stop_sequence": null,
      "type": "message",
      "usage": {"input_tokens": 2095, "output_tokens": 503}
    }"#;

    /// The tool use guide's example answer.
    pub(super) const TOOL_ANSWER: &str = r#"{
      "id": "msg_01Aq9w938a90dw8q",
      "model": "claude-3-5-sonnet-20241022",
      "stop_reason": "tool_use",
      "role": "assistant",
      "content": [
        {"type": "text", "text": "<thinking>I need to use the get_weather, and the user wants SF, which is likely San Francisco, CA.</thinking>"},
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA", "unit": "celsius"}}
      ],
      "usage": {"input_tokens": 100, "output_tokens": 40, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 300}
    }"#;

    #[test]
    fn answer_text() {
        let answer = answer_to_openai(ANSWER.as_bytes(), 1_700_000_000).expect("readable");
        assert_eq!(
            json_of(&answer.body),
            json!({
                "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "claude-3-7-sonnet-20250219",
                "choices": [{ "index": 0, "logprobs": null, "finish_reason": "stop",
                    "message": { "role": "assistant", "content": "Hi! My name is Claude." } }],
                "usage": { "prompt_tokens": 2095, "completion_tokens": 503, "total_tokens": 2598,
                    "prompt_tokens_details": { "cached_tokens": 0 },
                    "completion_tokens_details": { "reasoning_tokens": 0 } },
            })
        );
        assert_eq!(
            answer.usage,
            Usage {
                input: 2095,
                output: 503,
                cached: 0,
                reasoning: 0
            }
        );
    }

    #[test]
    fn answer_tool_use_and_cache_usage_adds_up() {
        let answer = answer_to_openai(TOOL_ANSWER.as_bytes(), 1).expect("readable");
        let body = json_of(&answer.body);
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        let arguments = call["function"]["arguments"]
            .as_str()
            .expect("arguments are text");
        assert_eq!(
            json_of(arguments.as_bytes()),
            json!({"location": "San Francisco, CA", "unit": "celsius"})
        );
        let usage = &body["usage"];
        // prompt = input + cache reads + cache writes.
        assert_eq!(usage["prompt_tokens"], 2400);
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2000);
        assert_eq!(usage["completion_tokens"], 40);
        assert_eq!(usage["total_tokens"], 2440);
        assert_eq!(
            answer.usage,
            Usage {
                input: 2400,
                output: 40,
                cached: 2000,
                reasoning: 0
            }
        );
        assert_eq!(answer.usage.total(), 2440);
    }

    #[test]
    fn answer_only_tool_calls_has_null_content() {
        let body = r#"{"id":"m","type":"message","role":"assistant","model":"c","stop_reason":"tool_use",
            "content":[{"type":"tool_use","id":"t","name":"f","input":{}}],"usage":{"input_tokens":1,"output_tokens":2}}"#;
        let answer = answer_to_openai(body.as_bytes(), 1).expect("readable");
        let v = json_of(&answer.body);
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
    }

    #[test]
    fn stop_reasons() {
        for (anthropic, openai) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("pause_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            let body = format!(
                r#"{{"id":"m","model":"c","content":[{{"type":"text","text":"x"}}],"stop_reason":"{anthropic}","usage":{{}}}}"#
            );
            let v = json_of(&answer_to_openai(body.as_bytes(), 1).expect("readable").body);
            assert_eq!(v["choices"][0]["finish_reason"], openai, "{anthropic}");
        }
    }

    #[test]
    fn unreadable_answers() {
        for body in ["", "not json", "[]", r#"{"id":"m"}"#, r#"{"content":{}}"#] {
            assert!(answer_to_openai(body.as_bytes(), 1).is_err(), "{body}");
        }
    }
}
