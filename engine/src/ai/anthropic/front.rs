//! The Anthropic-compatible front (`POST /v1/messages`): a client that
//! speaks Anthropic Messages reaches any provider. Its request becomes a
//! [`Chat`] in OpenAI form ([`chat_from_messages`]), and the provider's
//! answer, once OpenAI (translated or not), becomes Anthropic's again
//! ([`answer_from_openai`], [`FromOpenAi`] for streams).
//!
//! What has no OpenAI place is left out: `thinking` blocks of earlier
//! turns, `top_k`, images inside tool results (an OpenAI tool message is
//! text). Anthropic's server tools (web search...) are refused: no other
//! provider runs them. The usage chunk is always asked for, since
//! `message_delta` must carry the output tokens.

use bytes::BytesMut;
use serde_json::{json, Map, Value};

use super::to_vec;
use crate::ai::error;
use crate::ai::sse::{self, Event, Parser};
use crate::ai::stream::Events;
use crate::ai::{Answer, Chat, Invalid, Unreadable, Usage};

/// Anthropic Messages request → [`Chat`] (OpenAI form), for the
/// Anthropic-compatible front. The usage chunk is always asked for:
/// `message_delta` must carry the output tokens.
pub(crate) fn chat_from_messages(body: &[u8]) -> Result<Chat, Invalid> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Invalid::new("", format!("the body is not JSON: {e}")))?;
    let Value::Object(req) = v else {
        return Err(Invalid::new("", "the body must be a JSON object"));
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Invalid::new("model", "`model` must be a non-empty string"))?
        .to_owned();
    let max_tokens = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .ok_or_else(|| Invalid::new("max_tokens", "`max_tokens` must be a positive integer"))?;
    let stream = match req.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Invalid::new("stream", "`stream` must be a boolean")),
    };
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Invalid::new("messages", "`messages` must be a non-empty array"))?;

    let mut chat_messages = Vec::with_capacity(messages.len() + 1);
    match req.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => {
            let text = blocks_text(system, "system")?;
            chat_messages.push(json!({ "role": "system", "content": text }));
        }
    }
    for (i, message) in messages.iter().enumerate() {
        message_from_anthropic(message, i, &mut chat_messages)?;
    }

    let mut out = Map::new();
    out.insert("model".into(), model.as_str().into());
    out.insert("messages".into(), chat_messages.into());
    out.insert("max_tokens".into(), max_tokens.into());
    if stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    match req.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            if !stops.is_empty() {
                out.insert("stop".into(), stops.clone().into());
            }
        }
        Some(_) => {
            return Err(Invalid::new(
                "stop_sequences",
                "`stop_sequences` must be an array of strings",
            ))
        }
    }
    for key in ["temperature", "top_p"] {
        match req.get(key) {
            None | Some(Value::Null) => {}
            Some(n) if n.is_number() => {
                out.insert(key.into(), n.clone());
            }
            Some(_) => return Err(Invalid::new(key, format!("`{key}` must be a number"))),
        }
    }
    if let Some(tools) = req.get("tools").filter(|t| !t.is_null()) {
        out.insert("tools".into(), tools_from_anthropic(tools)?.into());
    }
    if let Some(choice) = req.get("tool_choice").filter(|t| !t.is_null()) {
        let (choice, serial) = tool_choice_from_anthropic(choice)?;
        out.insert("tool_choice".into(), choice);
        if serial {
            out.insert("parallel_tool_calls".into(), false.into());
        }
    }
    if let Some(user) = req
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), user.into());
    }
    Ok(Chat {
        body: out,
        model,
        stream,
        include_usage: true,
    })
}

/// The text of a string or of an array of text blocks.
fn blocks_text(value: &Value, param: &str) -> Result<String, Invalid> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for (k, block) in blocks.iter().enumerate() {
                let t = block.get("text").and_then(Value::as_str).ok_or_else(|| {
                    Invalid::new(format!("{param}[{k}]"), "only text blocks are allowed here")
                })?;
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            Ok(text)
        }
        _ => Err(Invalid::new(
            param,
            "must be a string or an array of text blocks",
        )),
    }
}

/// One Anthropic message → OpenAI messages: a user message's
/// `tool_result` blocks become `role: tool` messages (in place, so order
/// is kept), its other blocks a user message; an assistant message's
/// `tool_use` blocks become `tool_calls`.
fn message_from_anthropic(message: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), Invalid> {
    let role = message.get("role").and_then(Value::as_str);
    let content = message.get("content").unwrap_or(&Value::Null);
    let role = match role {
        Some(r @ ("user" | "assistant")) => r,
        _ => {
            return Err(Invalid::new(
                format!("messages[{i}].role"),
                "role must be user or assistant",
            ))
        }
    };
    let blocks = match content {
        Value::String(_) => {
            out.push(json!({ "role": role, "content": content }));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(Invalid::new(
                format!("messages[{i}].content"),
                "content must be a string or an array of blocks",
            ))
        }
    };
    let mut parts: Vec<Value> = Vec::new();
    let mut text = String::new();
    let mut calls: Vec<Value> = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let param = |field: &str| format!("messages[{i}].content[{j}].{field}");
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        match (role, kind) {
            (_, "text") => {
                let t = block
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Invalid::new(param("text"), "text missing"))?;
                if role == "user" {
                    parts.push(json!({ "type": "text", "text": t }));
                } else {
                    text.push_str(t);
                }
            }
            ("user", "image") => {
                let source = block.get("source").unwrap_or(&Value::Null);
                let url = match source.get("type").and_then(Value::as_str) {
                    Some("base64") => {
                        let media = source.get("media_type").and_then(Value::as_str);
                        let data = source.get("data").and_then(Value::as_str);
                        match (media, data) {
                            (Some(m), Some(d)) => format!("data:{m};base64,{d}"),
                            _ => {
                                return Err(Invalid::new(
                                    param("source"),
                                    "a base64 source needs media_type and data",
                                ))
                            }
                        }
                    }
                    Some("url") => source
                        .get("url")
                        .and_then(Value::as_str)
                        .ok_or_else(|| Invalid::new(param("source.url"), "url missing"))?
                        .to_owned(),
                    _ => {
                        return Err(Invalid::new(
                            param("source.type"),
                            "an image source must be base64 or url",
                        ))
                    }
                };
                parts.push(json!({ "type": "image_url", "image_url": { "url": url } }));
            }
            ("user", "tool_result") => {
                if !parts.is_empty() {
                    out.push(json!({ "role": "user", "content": std::mem::take(&mut parts) }));
                }
                let id = block
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Invalid::new(param("tool_use_id"), "tool_use_id missing"))?;
                let result = match block.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    // Only the text of a result: an OpenAI tool message
                    // holds no images.
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Some(_) => {
                        return Err(Invalid::new(
                            param("content"),
                            "content must be a string or an array of blocks",
                        ))
                    }
                };
                out.push(json!({ "role": "tool", "tool_call_id": id, "content": result }));
            }
            ("assistant", "tool_use") => {
                let id = block
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Invalid::new(param("id"), "id missing"))?;
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Invalid::new(param("name"), "name missing"))?;
                let input = block
                    .get("input")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new()));
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": input.to_string() },
                }));
            }
            // Reasoning of earlier turns: no OpenAI place, and the
            // provider does not need it back.
            ("assistant", "thinking" | "redacted_thinking") => {}
            _ => {
                return Err(Invalid::new(
                    param("type"),
                    format!("`{kind}` blocks are not supported in a {role} message"),
                ))
            }
        }
    }
    if role == "user" {
        if !parts.is_empty() {
            out.push(json!({ "role": "user", "content": parts }));
        }
        return Ok(());
    }
    let mut m = Map::new();
    m.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        text.into()
    };
    m.insert("content".into(), content);
    if !calls.is_empty() {
        m.insert("tool_calls".into(), calls.into());
    }
    out.push(Value::Object(m));
    Ok(())
}

fn tools_from_anthropic(tools: &Value) -> Result<Vec<Value>, Invalid> {
    let tools = tools
        .as_array()
        .ok_or_else(|| Invalid::new("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (k, tool) in tools.iter().enumerate() {
        // Anthropic's server tools (web search, bash...) run at
        // Anthropic: no other provider has them.
        match tool.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(kind) => {
                return Err(Invalid::new(
                    format!("tools[{k}].type"),
                    format!("tool type `{kind}` is not supported"),
                ))
            }
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Invalid::new(format!("tools[{k}].name"), "a tool needs a name"))?;
        let mut function = Map::new();
        function.insert("name".into(), name.into());
        if let Some(d) = tool.get("description").filter(|d| d.is_string()) {
            function.insert("description".into(), d.clone());
        }
        let schema = tool.get("input_schema").ok_or_else(|| {
            Invalid::new(
                format!("tools[{k}].input_schema"),
                "a tool needs an input_schema",
            )
        })?;
        function.insert("parameters".into(), schema.clone());
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(out)
}

/// Anthropic `tool_choice` → OpenAI `tool_choice`, and whether parallel
/// tool calls are off.
fn tool_choice_from_anthropic(choice: &Value) -> Result<(Value, bool), Invalid> {
    let serial = choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true));
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                Invalid::new(
                    "tool_choice.name",
                    "a tool choice of type tool needs a name",
                )
            })?;
            json!({ "type": "function", "function": { "name": name } })
        }
        _ => {
            return Err(Invalid::new(
                "tool_choice.type",
                "`tool_choice.type` must be auto, any, tool or none",
            ))
        }
    };
    Ok((mapped, serial))
}

// ---------------------------------------------------------------------------
// OpenAI answer → Anthropic answer

fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Usage from an OpenAI `usage` object.
fn usage_from(u: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input: n(u.get("prompt_tokens")),
        output: n(u.get("completion_tokens")),
        cached: n(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        reasoning: n(u
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))),
    }
}

/// An Anthropic `usage` object for `u`: cache reads apart from
/// `input_tokens`, as Anthropic reports them.
fn anthropic_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input.saturating_sub(u.cached),
        "cache_read_input_tokens": u.cached,
        "output_tokens": u.output,
    })
}

/// OpenAI chat.completion → Anthropic message (the reverse of
/// [`answer_to_openai`]). Tool arguments that are not a JSON object (a
/// call cut by max tokens) become an empty input.
pub(crate) fn answer_from_openai(body: &[u8]) -> Result<Answer, Unreadable> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Unreadable(format!("the provider's answer is not JSON: {e}")))?;
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| Unreadable("the provider's answer has no choices".into()))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(text) = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({ "type": "text", "text": text }));
    }
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            let function = call.get("function").unwrap_or(&Value::Null);
            let arguments = function
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
            let input = match serde_json::from_str::<Value>(arguments) {
                Ok(v @ Value::Object(_)) => v,
                _ => Value::Object(Map::new()),
            };
            content.push(json!({
                "type": "tool_use",
                "id": call.get("id").and_then(Value::as_str).unwrap_or(""),
                "name": function.get("name").and_then(Value::as_str).unwrap_or(""),
                "input": input,
            }));
        }
    }
    let usage = v.get("usage").map(usage_from).unwrap_or_default();
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    let out = json!({
        "id": v.get("id").and_then(Value::as_str).unwrap_or(""),
        "type": "message",
        "role": "assistant",
        "model": v.get("model").and_then(Value::as_str).unwrap_or(""),
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": null,
        "usage": anthropic_usage(&usage),
    });
    Ok(Answer {
        body: to_vec(&out),
        usage,
    })
}

// ---------------------------------------------------------------------------
// OpenAI stream → Anthropic stream

/// OpenAI chunks → Anthropic events: `message_start` at the first chunk;
/// a content block opened at the first content of each kind (text, or one
/// per tool call index) and closed when the kind switches;
/// `message_delta` and `message_stop` when the usage chunk (after the
/// finish reason) or `[DONE]` arrives.
pub(crate) struct FromOpenAi {
    parser: Parser,
    state: FromState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    Text,
    /// A tool call, by its OpenAI index.
    Tool(u64),
}

struct FromState {
    model: String,
    opened: bool,
    block: Block,
    /// Content blocks opened so far: the next one's index.
    blocks: u64,
    stop: Option<&'static str>,
    usage: Option<Usage>,
    started: bool,
    done: bool,
}

impl FromOpenAi {
    pub(crate) fn new(model: &str) -> FromOpenAi {
        FromOpenAi {
            parser: Parser::new(),
            state: FromState {
                model: model.to_owned(),
                opened: false,
                block: Block::None,
                blocks: 0,
                stop: None,
                usage: None,
                started: false,
                done: false,
            },
        }
    }
}

impl Events for FromOpenAi {
    fn feed(&mut self, data: &[u8], out: &mut BytesMut) {
        if self.state.done {
            return;
        }
        let FromOpenAi { parser, state } = self;
        if parser.feed(data, |ev| state.on_event(ev, out)).is_err() {
            state.error(out, "api_error", sse::TOO_LARGE_MESSAGE);
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        let FromOpenAi { parser, state } = self;
        if !state.done {
            parser.finish(|ev| state.on_event(ev, out));
        }
        if state.done {
            return;
        }
        if state.stop.is_some() {
            state.end(out);
        } else {
            // Cut before a finish reason: ending the message cleanly would
            // pass a partial answer off as whole.
            state.error(
                out,
                "api_error",
                "the provider's stream ended before the answer was complete",
            );
        }
    }

    fn usage(&self) -> Usage {
        self.state.usage.unwrap_or_default()
    }

    fn started(&self) -> bool {
        self.state.started
    }
}

impl FromState {
    fn on_event(&mut self, ev: Event<'_>, out: &mut BytesMut) {
        if self.done {
            return;
        }
        if ev.data == b"[DONE]" {
            self.end(out);
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(ev.data) else {
            return;
        };
        if let Some(error) = v.get("error").filter(|e| e.is_object()) {
            let (kind, message) = error::kind_and_message(error);
            self.error(out, kind, message);
            return;
        }
        let usage = v.get("usage").filter(|u| u.is_object()).map(usage_from);
        if !self.opened {
            self.open(out, &v, usage);
        }
        // One choice: the front does not ask for more.
        if let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        {
            if let Some(delta) = choice.get("delta") {
                self.delta(out, delta);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.stop = Some(stop_reason(reason));
                self.close(out);
            }
        }
        if let Some(u) = usage {
            self.usage = Some(u);
            if self.stop.is_some() {
                self.end(out);
            }
        }
    }

    fn open(&mut self, out: &mut BytesMut, chunk: &Value, usage: Option<Usage>) {
        self.opened = true;
        let input = usage.map_or(0, |u| u.input.saturating_sub(u.cached));
        let event = json!({
            "type": "message_start",
            "message": {
                "id": chunk.get("id").and_then(Value::as_str).unwrap_or(""),
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": self.model,
                "stop_reason": null,
                "stop_sequence": null,
                "usage": { "input_tokens": input, "output_tokens": 0 },
            },
        });
        sse::write_event(out, "message_start", &to_vec(&event));
    }

    fn delta(&mut self, out: &mut BytesMut, delta: &Value) {
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            if self.block != Block::Text {
                self.close(out);
                self.start_block(out, json!({ "type": "text", "text": "" }), Block::Text);
            }
            self.started = true;
            self.block_delta(out, json!({ "type": "text_delta", "text": text }));
        }
        let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) else {
            return;
        };
        for call in calls {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = call.get("function").unwrap_or(&Value::Null);
            if self.block != Block::Tool(index) {
                self.close(out);
                let block = json!({
                    "type": "tool_use",
                    "id": call.get("id").and_then(Value::as_str).unwrap_or(""),
                    "name": function.get("name").and_then(Value::as_str).unwrap_or(""),
                    "input": {},
                });
                self.start_block(out, block, Block::Tool(index));
                self.started = true;
            }
            if let Some(arguments) = function
                .get("arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                self.block_delta(
                    out,
                    json!({ "type": "input_json_delta", "partial_json": arguments }),
                );
            }
        }
    }

    fn start_block(&mut self, out: &mut BytesMut, block: Value, kind: Block) {
        let event = json!({
            "type": "content_block_start",
            "index": self.blocks,
            "content_block": block,
        });
        sse::write_event(out, "content_block_start", &to_vec(&event));
        self.block = kind;
    }

    fn block_delta(&mut self, out: &mut BytesMut, delta: Value) {
        let event = json!({
            "type": "content_block_delta",
            "index": self.blocks,
            "delta": delta,
        });
        sse::write_event(out, "content_block_delta", &to_vec(&event));
    }

    /// Closes the open content block, if any.
    fn close(&mut self, out: &mut BytesMut) {
        if self.block == Block::None {
            return;
        }
        let event = json!({ "type": "content_block_stop", "index": self.blocks });
        sse::write_event(out, "content_block_stop", &to_vec(&event));
        self.blocks += 1;
        self.block = Block::None;
    }

    /// `message_delta` and `message_stop`: the message is whole.
    fn end(&mut self, out: &mut BytesMut) {
        if self.done {
            return;
        }
        if !self.opened {
            self.open(out, &Value::Null, None);
        }
        self.close(out);
        let usage = match &self.usage {
            Some(u) => anthropic_usage(u),
            None => json!({ "output_tokens": 0 }),
        };
        let event = json!({
            "type": "message_delta",
            "delta": { "stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null },
            "usage": usage,
        });
        sse::write_event(out, "message_delta", &to_vec(&event));
        sse::write_event(out, "message_stop", br#"{"type":"message_stop"}"#);
        self.done = true;
    }

    fn error(&mut self, out: &mut BytesMut, kind: &str, message: &str) {
        if self.done {
            return;
        }
        let event = json!({ "type": "error", "error": { "type": kind, "message": message } });
        sse::write_event(out, "error", &to_vec(&event));
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ai::anthropic::events::tests::{events, run_all, TOOL_STREAM};
    use crate::ai::anthropic::tests::{json_of, ANSWER, TOOL_ANSWER};
    use crate::ai::anthropic::{answer_to_openai, ToOpenAi};

    // -- The Anthropic front: request -------------------------------------

    #[test]
    fn messages_request_mapping() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "the API reference's basic request",
                json!({ "model": "claude-sonnet-4-5", "max_tokens": 1024,
                    "messages": [{ "role": "user", "content": "Hello, world" }] }),
                json!({ "model": "claude-sonnet-4-5", "max_tokens": 1024,
                    "messages": [{ "role": "user", "content": "Hello, world" }] }),
            ),
            (
                "system blocks, stop sequences, sampling, metadata, stream",
                json!({ "model": "m", "max_tokens": 10, "stream": true,
                    "system": [{ "type": "text", "text": "Be brief." }, { "type": "text", "text": "Be kind." }],
                    "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 5,
                    "metadata": { "user_id": "u-1" },
                    "messages": [{ "role": "user", "content": "Hi" }] }),
                json!({ "model": "m", "max_tokens": 10, "stream": true,
                    "stream_options": { "include_usage": true },
                    "stop": ["END"], "temperature": 0.5, "top_p": 0.9, "user": "u-1",
                    "messages": [
                        { "role": "system", "content": "Be brief.\nBe kind." },
                        { "role": "user", "content": "Hi" },
                    ] }),
            ),
            (
                "images, tool_use and tool_result blocks",
                json!({ "model": "m", "max_tokens": 10, "system": "S",
                    "messages": [
                        { "role": "user", "content": [
                            { "type": "text", "text": "Look" },
                            { "type": "image", "source": { "type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ" } },
                            { "type": "image", "source": { "type": "url", "url": "https://example.com/a.png" } },
                        ] },
                        { "role": "assistant", "content": [
                            { "type": "thinking", "thinking": "hmm", "signature": "x" },
                            { "type": "text", "text": "Checking." },
                            { "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": { "location": "Paris" } },
                            { "type": "tool_use", "id": "toolu_2", "name": "now", "input": {} },
                        ] },
                        { "role": "user", "content": [
                            { "type": "tool_result", "tool_use_id": "toolu_1", "content": "18C" },
                            { "type": "tool_result", "tool_use_id": "toolu_2", "content": [{ "type": "text", "text": "noon" }] },
                            { "type": "text", "text": "And tomorrow?" },
                        ] },
                        { "role": "assistant", "content": [
                            { "type": "tool_use", "id": "toolu_3", "name": "now", "input": {} },
                        ] },
                    ] }),
                json!({ "model": "m", "max_tokens": 10,
                    "messages": [
                        { "role": "system", "content": "S" },
                        { "role": "user", "content": [
                            { "type": "text", "text": "Look" },
                            { "type": "image_url", "image_url": { "url": "data:image/jpeg;base64,/9j/4AAQ" } },
                            { "type": "image_url", "image_url": { "url": "https://example.com/a.png" } },
                        ] },
                        { "role": "assistant", "content": "Checking.", "tool_calls": [
                            { "id": "toolu_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"location\":\"Paris\"}" } },
                            { "id": "toolu_2", "type": "function", "function": { "name": "now", "arguments": "{}" } },
                        ] },
                        { "role": "tool", "tool_call_id": "toolu_1", "content": "18C" },
                        { "role": "tool", "tool_call_id": "toolu_2", "content": "noon" },
                        { "role": "user", "content": [{ "type": "text", "text": "And tomorrow?" }] },
                        { "role": "assistant", "content": null, "tool_calls": [
                            { "id": "toolu_3", "type": "function", "function": { "name": "now", "arguments": "{}" } },
                        ] },
                    ] }),
            ),
            (
                "tools and tool_choice any without parallel use",
                json!({ "model": "m", "max_tokens": 10, "messages": [{ "role": "user", "content": "Hi" }],
                    "tools": [{ "name": "get_weather", "description": "Weather",
                        "input_schema": { "type": "object", "properties": { "location": { "type": "string" } } } }],
                    "tool_choice": { "type": "any", "disable_parallel_tool_use": true } }),
                json!({ "model": "m", "max_tokens": 10, "messages": [{ "role": "user", "content": "Hi" }],
                    "tools": [{ "type": "function", "function": { "name": "get_weather", "description": "Weather",
                        "parameters": { "type": "object", "properties": { "location": { "type": "string" } } } } }],
                    "tool_choice": "required", "parallel_tool_calls": false }),
            ),
            (
                "tool_choice tool",
                json!({ "model": "m", "max_tokens": 10, "messages": [{ "role": "user", "content": "Hi" }],
                    "tool_choice": { "type": "tool", "name": "f" } }),
                json!({ "model": "m", "max_tokens": 10, "messages": [{ "role": "user", "content": "Hi" }],
                    "tool_choice": { "type": "function", "function": { "name": "f" } } }),
            ),
        ];
        for (name, request, want) in cases {
            let chat = chat_from_messages(request.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{name}: refused: {e:?}"));
            assert_eq!(Value::Object(chat.body.clone()), want, "{name}");
            assert_eq!(chat.model, request["model"], "{name}");
            assert_eq!(chat.stream, request["stream"] == true, "{name}");
            assert!(chat.include_usage, "{name}");
        }
    }

    #[test]
    fn messages_request_refusals_name_the_field() {
        let user = json!({ "role": "user", "content": "Hi" });
        let cases: Vec<(Value, &str)> = vec![
            (json!({ "max_tokens": 1, "messages": [user] }), "model"),
            (json!({ "model": "m", "messages": [user] }), "max_tokens"),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [] }),
                "messages",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [{ "role": "system", "content": "x" }] }),
                "messages[0].role",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [{ "role": "user", "content": [
                    { "type": "text", "text": "x" }, { "type": "document", "source": {} }] }] }),
                "messages[0].content[1].type",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [{ "role": "user", "content": [
                    { "type": "image", "source": { "type": "file", "file_id": "f" } }] }] }),
                "messages[0].content[0].source.type",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [user], "stream": "yes" }),
                "stream",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [user], "system": 3 }),
                "system",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [user],
                    "tools": [{ "type": "web_search_20250305", "name": "web_search" }] }),
                "tools[0].type",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [user], "tools": [{ "name": "f" }] }),
                "tools[0].input_schema",
            ),
            (
                json!({ "model": "m", "max_tokens": 1, "messages": [user], "tool_choice": { "type": "tool" } }),
                "tool_choice.name",
            ),
        ];
        for (request, param) in cases {
            let err = chat_from_messages(request.to_string().as_bytes())
                .expect_err(&format!("refused: {request}"));
            assert_eq!(err.param, param, "{request}");
        }
        assert!(chat_from_messages(b"nope").is_err());
        assert!(chat_from_messages(b"[1]").is_err());
    }

    // -- The Anthropic front: answers -------------------------------------

    /// The OpenAI API reference's chat completion example, with a tool call.
    const OPENAI_ANSWER: &str = r#"{
      "id": "chatcmpl-abc123",
      "object": "chat.completion",
      "created": 1699896916,
      "model": "gpt-4o-mini",
      "choices": [{
        "index": 0,
        "message": {
          "role": "assistant",
          "content": null,
          "tool_calls": [{
            "id": "call_abc123",
            "type": "function",
            "function": { "name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}" }
          }]
        },
        "logprobs": null,
        "finish_reason": "tool_calls"
      }],
      "usage": { "prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
        "prompt_tokens_details": { "cached_tokens": 32 } }
    }"#;

    #[test]
    fn answer_from_openai_tool_call() {
        let answer = answer_from_openai(OPENAI_ANSWER.as_bytes()).expect("readable");
        assert_eq!(
            json_of(&answer.body),
            json!({
                "id": "chatcmpl-abc123",
                "type": "message",
                "role": "assistant",
                "model": "gpt-4o-mini",
                "content": [{ "type": "tool_use", "id": "call_abc123", "name": "get_current_weather",
                    "input": { "location": "Boston, MA" } }],
                "stop_reason": "tool_use",
                "stop_sequence": null,
                "usage": { "input_tokens": 50, "cache_read_input_tokens": 32, "output_tokens": 17 },
            })
        );
        assert_eq!(
            answer.usage,
            Usage {
                input: 82,
                output: 17,
                cached: 32,
                reasoning: 0
            }
        );
    }

    #[test]
    fn answer_round_trip() {
        for fixture in [ANSWER, TOOL_ANSWER] {
            let original = json_of(fixture.as_bytes());
            let openai = answer_to_openai(fixture.as_bytes(), 1).expect("readable");
            let back = answer_from_openai(&openai.body).expect("readable");
            let back = json_of(&back.body);
            for key in ["id", "model", "content", "stop_reason"] {
                assert_eq!(back[key], original[key], "{key}");
            }
            // Cache writes count as plain input on the way back: OpenAI has
            // no field for them.
            let u = &original["usage"];
            let n = |k: &str| u[k].as_u64().unwrap_or(0);
            assert_eq!(
                back["usage"]["input_tokens"].as_u64(),
                Some(n("input_tokens") + n("cache_creation_input_tokens"))
            );
            assert_eq!(
                back["usage"]["cache_read_input_tokens"].as_u64(),
                Some(n("cache_read_input_tokens"))
            );
            assert_eq!(back["usage"]["output_tokens"], u["output_tokens"]);
        }
    }

    // -- The Anthropic front: streams -------------------------------------

    /// OpenAI's streaming example (chat create, stream: true), with the
    /// usage chunk include_usage asks for.
    const OPENAI_STREAM: &str = r#"data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":4}}}

data: [DONE]

"#;

    /// OpenAI's function calling stream shape: text, then two tool calls
    /// whose arguments come in fragments.
    const OPENAI_TOOL_STREAM: &str = r#"data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Sure."},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\":"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" \"Paris\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"now","arguments":"{}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":20,"total_tokens":50}}

data: [DONE]

"#;

    #[test]
    fn front_stream_text_exact() {
        let (out, usage, started) =
            run_all(|| Box::new(FromOpenAi::new("my-model")), OPENAI_STREAM);
        let want = concat!(
            "event: message_start\ndata: {\"message\":{\"content\":[],\"id\":\"chatcmpl-123\",\"model\":\"my-model\",\"role\":\"assistant\",\"stop_reason\":null,\"stop_sequence\":null,\"type\":\"message\",\"usage\":{\"input_tokens\":0,\"output_tokens\":0}},\"type\":\"message_start\"}\n\n",
            "event: content_block_start\ndata: {\"content_block\":{\"text\":\"\",\"type\":\"text\"},\"index\":0,\"type\":\"content_block_start\"}\n\n",
            "event: content_block_delta\ndata: {\"delta\":{\"text\":\"Hello\",\"type\":\"text_delta\"},\"index\":0,\"type\":\"content_block_delta\"}\n\n",
            "event: content_block_stop\ndata: {\"index\":0,\"type\":\"content_block_stop\"}\n\n",
            "event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"type\":\"message_delta\",\"usage\":{\"cache_read_input_tokens\":4,\"input_tokens\":5,\"output_tokens\":12}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        assert_eq!(out, want);
        assert_eq!(
            usage,
            Usage {
                input: 9,
                output: 12,
                cached: 4,
                reasoning: 0
            }
        );
        assert!(started);
    }

    #[test]
    fn front_stream_tool_calls() {
        let (out, usage, started) = run_all(|| Box::new(FromOpenAi::new("m")), OPENAI_TOOL_STREAM);
        assert!(started);
        assert_eq!(usage.total(), 50);
        let got_events = events(&out);
        let names: Vec<&str> = got_events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(
            got_events[1].1["content_block"],
            json!({ "type": "text", "text": "" })
        );
        assert_eq!(
            got_events[2].1["delta"],
            json!({ "type": "text_delta", "text": "Sure." })
        );
        assert_eq!(got_events[4].1["index"], 1);
        assert_eq!(
            got_events[4].1["content_block"],
            json!({ "type": "tool_use", "id": "call_a", "name": "get_weather", "input": {} })
        );
        let partial: String = got_events[5..7]
            .iter()
            .map(|(_, e)| {
                assert_eq!(e["index"], 1);
                assert_eq!(e["delta"]["type"], "input_json_delta");
                e["delta"]["partial_json"]
                    .as_str()
                    .expect("text")
                    .to_owned()
            })
            .collect();
        assert_eq!(json_of(partial.as_bytes()), json!({ "location": "Paris" }));
        assert_eq!(got_events[7].1["index"], 1);
        assert_eq!(got_events[8].1["index"], 2);
        assert_eq!(got_events[8].1["content_block"]["id"], "call_b");
        assert_eq!(got_events[9].1["delta"]["partial_json"], "{}");
        assert_eq!(got_events[10].1["index"], 2);
        assert_eq!(got_events[11].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(got_events[11].1["usage"]["output_tokens"], 20);
    }

    #[test]
    fn front_stream_stop_reasons_and_endings() {
        for (finish, stop) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
        ] {
            let input = OPENAI_STREAM.replace(
                "\"finish_reason\":\"stop\"",
                &format!("\"finish_reason\":\"{finish}\""),
            );
            let (out, _, _) = run_all(|| Box::new(FromOpenAi::new("m")), &input);
            let got_events = events(&out);
            assert_eq!(
                got_events[got_events.len() - 2].1["delta"]["stop_reason"],
                stop,
                "{finish}"
            );
        }

        // Without a usage chunk, [DONE] ends the message.
        let no_usage: String = OPENAI_STREAM
            .split("\n\n")
            .filter(|e| !e.contains("\"choices\":[]"))
            .map(|e| format!("{e}\n\n"))
            .collect();
        let (out, usage, _) = run_all(|| Box::new(FromOpenAi::new("m")), no_usage.trim_end());
        let got_events = events(&out);
        assert_eq!(got_events[got_events.len() - 1].0, "message_stop");
        assert_eq!(
            got_events[got_events.len() - 2].1["usage"],
            json!({ "output_tokens": 0 })
        );
        assert_eq!(usage, Usage::default());

        // Cut before a finish reason: an error event, not a whole message.
        let cut = OPENAI_STREAM
            .find("\"finish_reason\":\"stop\"")
            .expect("fixture");
        let cut = OPENAI_STREAM[..cut].rfind("data: ").expect("fixture");
        let (out, _, _) = run_all(|| Box::new(FromOpenAi::new("m")), &OPENAI_STREAM[..cut]);
        let got_events = events(&out);
        let (name, last) = &got_events[got_events.len() - 1];
        assert_eq!(name, "error");
        assert_eq!(last["error"]["type"], "api_error");
        assert!(!out.contains("message_stop"));

        // An error chunk mid-stream.
        let input = format!(
            "{}data: {{\"error\":{{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"}}}}\n\ndata: [DONE]\n\n",
            &OPENAI_STREAM[..cut]
        );
        let (out, _, _) = run_all(|| Box::new(FromOpenAi::new("m")), &input);
        let got_events = events(&out);
        assert_eq!(
            got_events[got_events.len() - 1].1,
            json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })
        );
    }

    /// Anthropic events → OpenAI chunks → Anthropic events: the text, the
    /// tool input, the stop reason and the usage survive.
    #[test]
    fn stream_round_trip() {
        struct Chain(ToOpenAi, FromOpenAi, BytesMut);
        impl Events for Chain {
            fn feed(&mut self, data: &[u8], out: &mut BytesMut) {
                self.2.clear();
                self.0.feed(data, &mut self.2);
                self.1.feed(&self.2, out);
            }
            fn finish(&mut self, out: &mut BytesMut) {
                self.2.clear();
                self.0.finish(&mut self.2);
                self.1.feed(&self.2, out);
                self.1.finish(out);
            }
            fn usage(&self) -> Usage {
                self.0.usage()
            }
            fn started(&self) -> bool {
                self.1.started()
            }
        }
        let (out, usage, started) = run_all(
            || {
                Box::new(Chain(
                    ToOpenAi::new(true, 1),
                    FromOpenAi::new("claude"),
                    BytesMut::new(),
                ))
            },
            TOOL_STREAM,
        );
        assert!(started);
        assert_eq!(usage.total(), 561);
        let got = events(&out);
        let want = events(TOOL_STREAM);
        // Same blocks in the same places, pings aside.
        let shape = |evs: &[(String, Value)]| -> Vec<(String, Value)> {
            evs.iter()
                .filter(|(n, _)| n != "ping")
                .map(|(n, e)| (n.clone(), e["index"].clone()))
                .collect()
        };
        let mut want_shape = shape(&want);
        // Anthropic's empty partial_json fragment is not carried.
        want_shape.remove(
            want.iter()
                .filter(|(n, _)| n != "ping")
                .position(|(_, e)| e["delta"]["partial_json"] == "")
                .expect("fixture has an empty fragment"),
        );
        assert_eq!(shape(&got), want_shape);
        let text = |evs: &[(String, Value)]| -> (String, String) {
            let mut text = String::new();
            let mut json = String::new();
            for (_, e) in evs {
                if let Some(t) = e["delta"]["text"].as_str() {
                    text.push_str(t);
                }
                if let Some(t) = e["delta"]["partial_json"].as_str() {
                    json.push_str(t);
                }
            }
            (text, json)
        };
        assert_eq!(text(&got), text(&want));
        assert_eq!(got[0].1["message"]["id"], "msg_014p7gG3wDgGV9EUtLvnow3U");
        let tool = got
            .iter()
            .find(|(_, e)| e["content_block"]["type"] == "tool_use")
            .expect("a tool block");
        assert_eq!(
            tool.1["content_block"]["id"],
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
        );
        assert_eq!(tool.1["content_block"]["name"], "get_weather");
        let delta = &got[got.len() - 2].1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(delta["usage"]["output_tokens"], 89);
        assert_eq!(delta["usage"]["input_tokens"], 472);
    }
}
