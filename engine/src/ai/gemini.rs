//! Gemini `generateContent`: an OpenAI chat request written for Gemini,
//! and Gemini's answers (whole, or the `streamGenerateContent?alt=sse`
//! stream) made OpenAI.
//!
//! Gemini has no tool call ids: a `functionResponse` names the function
//! instead. The request side keeps a `tool_call_id → name` map built from
//! the earlier assistant messages (the latest earlier call with an id
//! wins, so ids reused across turns still resolve); the answer side makes
//! ids up (`call_0`, `call_1`... in answer order), which is all an OpenAI
//! client needs to pair its tool results.
//!
//! Each event of Gemini's stream is a whole `GenerateContentResponse`: a
//! function call arrives whole, so it becomes one `tool_calls` chunk with
//! all its arguments (OpenAI clients concatenate fragments; one fragment is
//! a valid stream). `usageMetadata` is repeated on every event and
//! cumulative: the latest is kept, never summed. Thought parts
//! (`"thought": true`) are not content: their tokens are reported as
//! reasoning tokens only. Trade-off: the request body is rebuilt as a new
//! JSON tree (one walk over the messages), the price of a different wire.

use bytes::BytesMut;
use serde_json::{json, Map, Value};

use super::error;
use super::openai::{error_event, too_large_event, usage_json};
use super::sse::{self, Event, Parser};
use super::stream::Events;
use super::{note_dropped, Answer, Chat, Invalid, Outgoing, Unreadable, Usage, Wire};

/// Request fields that mean nothing to Gemini, under their OpenAI names
/// (the names are `&'static str` in [`Outgoing::dropped`]).
const KNOWN_DROPPED: &[&str] = &[
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "user",
    "parallel_tool_calls",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "web_search_options",
    "functions",
    "function_call",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
];

/// Where an OpenAI tool call carries Gemini's `thoughtSignature` (Google's
/// own OpenAI-compatible endpoint's place for it). Thinking models refuse
/// a function call replayed without its signature, so it makes the round
/// trip through the client.
const THOUGHT_SIGNATURE: &str = "/extra_content/google/thought_signature";

/// OpenAI chat → Gemini `generateContent` body (the model goes in the URL,
/// not the body).
pub(crate) fn to_gemini(chat: &Chat, max_tokens_default: Option<u32>) -> Result<Outgoing, Invalid> {
    let body = &chat.body;
    let mut out = Map::new();
    let mut dropped = Vec::new();
    let mut config = Map::new();

    let (contents, system) = contents(body.get("messages"))?;
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }

    let max = body
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| body.get("max_tokens").filter(|v| !v.is_null()))
        .cloned()
        .or_else(|| max_tokens_default.map(Value::from));
    if let Some(max) = max {
        config.insert("maxOutputTokens".into(), max);
    }
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        let name = match key.as_str() {
            "model"
            | "messages"
            | "stream"
            | "stream_options"
            | "max_tokens"
            | "max_completion_tokens" => continue,
            "stop" => {
                let stops = match value {
                    Value::String(_) => vec![value.clone()],
                    Value::Array(list) if list.iter().all(Value::is_string) => list.clone(),
                    _ => {
                        return Err(Invalid::new(
                            "stop",
                            "`stop` must be a string or an array of strings",
                        ))
                    }
                };
                config.insert("stopSequences".into(), Value::Array(stops));
                continue;
            }
            "temperature" => "temperature",
            "top_p" => "topP",
            "n" => "candidateCount",
            "presence_penalty" => "presencePenalty",
            "frequency_penalty" => "frequencyPenalty",
            "seed" => "seed",
            "response_format" => {
                response_format(value, &mut config)?;
                continue;
            }
            "tools" => {
                out.insert("tools".into(), tools(value));
                continue;
            }
            "tool_choice" => {
                out.insert("toolConfig".into(), tool_choice(value)?);
                continue;
            }
            other => {
                note_dropped(&mut dropped, KNOWN_DROPPED, other);
                continue;
            }
        };
        config.insert(name.into(), value.clone());
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Outgoing {
        body: serde_json::to_vec(&out).expect("a JSON map always serializes"),
        dropped,
    })
}

/// `messages` → (`contents`, `systemInstruction.parts`).
fn contents(messages: Option<&Value>) -> Result<(Vec<Value>, Vec<Value>), Invalid> {
    let Some(messages) = messages.and_then(Value::as_array) else {
        return Err(Invalid::new(
            "messages",
            "`messages` must be a non-empty array",
        ));
    };
    let mut contents: Vec<Value> = Vec::new();
    let mut system = Vec::new();
    // tool_call_id → function name, from the assistant messages so far.
    let mut names: Vec<(String, String)> = Vec::new();
    // The previous message was a tool result: the next one joins its turn.
    let mut in_tool_turn = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        let was_tool_turn = std::mem::replace(&mut in_tool_turn, false);
        match role {
            "system" | "developer" => {
                for text in texts(content, i)? {
                    system.push(json!({ "text": text }));
                }
            }
            "user" => {
                let parts = user_parts(content, i)?;
                contents.push(json!({"role": "user", "parts": parts}));
            }
            "assistant" => {
                let mut parts: Vec<Value> = texts(content, i)?
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .map(|t| json!({ "text": t }))
                    .collect();
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for (j, call) in calls.iter().enumerate() {
                        let path = format!("messages[{i}].tool_calls[{j}]");
                        let id = call.get("id").and_then(Value::as_str).unwrap_or("");
                        let name = call
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Invalid::new(
                                    format!("{path}.function.name"),
                                    "a tool call needs a name",
                                )
                            })?;
                        let args = call
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let args = if args.trim().is_empty() {
                            Value::Object(Map::new())
                        } else {
                            match serde_json::from_str::<Value>(args) {
                                Ok(v @ Value::Object(_)) => v,
                                _ => {
                                    return Err(Invalid::new(
                                        format!("{path}.function.arguments"),
                                        "`arguments` must be a JSON object",
                                    ))
                                }
                            }
                        };
                        names.push((id.to_string(), name.to_string()));
                        let mut part = json!({"functionCall": {"name": name, "args": args}});
                        if let Some(sig) = call.pointer(THOUGHT_SIGNATURE) {
                            part["thoughtSignature"] = sig.clone();
                        }
                        parts.push(part);
                    }
                }
                // Gemini refuses a turn without parts; an empty assistant
                // message says nothing.
                if !parts.is_empty() {
                    contents.push(json!({"role": "model", "parts": parts}));
                }
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let Some((_, name)) = names.iter().rev().find(|(known, _)| known == id) else {
                    return Err(Invalid::new(
                        format!("messages[{i}].tool_call_id"),
                        "no earlier assistant tool call has this id",
                    ));
                };
                let text = texts(content, i)?.concat();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({ "content": text }),
                };
                let part = json!({"functionResponse": {"name": name, "response": response}});
                match contents
                    .last_mut()
                    .and_then(|c| c.get_mut("parts"))
                    .and_then(Value::as_array_mut)
                {
                    Some(parts) if was_tool_turn => parts.push(part),
                    _ => contents.push(json!({"role": "user", "parts": [part]})),
                }
                in_tool_turn = true;
            }
            _ => return Err(Invalid::new(format!("messages[{i}].role"), "unknown role")),
        }
    }
    Ok((contents, system))
}

/// The text of a message's content: a string, or its text parts.
fn texts(content: &Value, i: usize) -> Result<Vec<String>, Invalid> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(text)) => out.push(text.to_string()),
                    // An assistant's refusal is not for the model to read again.
                    (Some("refusal"), _) => {}
                    _ => {
                        return Err(Invalid::new(
                            format!("messages[{i}].content[{j}]"),
                            "only text parts are allowed in this message",
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(Invalid::new(
            format!("messages[{i}].content"),
            "`content` must be a string or an array",
        )),
    }
}

fn user_parts(content: &Value, i: usize) -> Result<Vec<Value>, Invalid> {
    let parts = match content {
        Value::String(s) => return Ok(vec![json!({ "text": s })]),
        Value::Array(parts) => parts,
        _ => {
            return Err(Invalid::new(
                format!("messages[{i}].content"),
                "`content` must be a string or an array",
            ))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        let gemini = match kind {
            "text" => match part.get("text").and_then(Value::as_str) {
                Some(text) => json!({ "text": text }),
                None => {
                    return Err(Invalid::new(
                        format!("{path}.text"),
                        "`text` must be a string",
                    ))
                }
            },
            "image_url" => {
                let url = part
                    .get("image_url")
                    .and_then(|u| u.get("url").and_then(Value::as_str).or_else(|| u.as_str()))
                    .ok_or_else(|| {
                        Invalid::new(format!("{path}.image_url.url"), "`url` must be a string")
                    })?;
                media(url, &format!("{path}.image_url.url"))?
            }
            "input_audio" => {
                let data = part.pointer("/input_audio/data").and_then(Value::as_str);
                let format = part.pointer("/input_audio/format").and_then(Value::as_str);
                match (data, format) {
                    (Some(data), Some(format)) => {
                        json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}})
                    }
                    _ => {
                        return Err(Invalid::new(
                            format!("{path}.input_audio"),
                            "`input_audio` needs `data` and `format`",
                        ))
                    }
                }
            }
            "file" => match part.pointer("/file/file_data").and_then(Value::as_str) {
                Some(url) => media(url, &format!("{path}.file.file_data"))?,
                None => {
                    return Err(Invalid::new(
                        format!("{path}.file.file_data"),
                        "only inline files (`file_data`) can be sent to this model",
                    ))
                }
            },
            _ => {
                return Err(Invalid::new(
                    format!("{path}.type"),
                    format!("content part `{kind}` is not supported"),
                ))
            }
        };
        out.push(gemini);
    }
    Ok(out)
}

/// A `data:` URL → `inlineData`; an http(s) URL → `fileData`.
fn media(url: &str, path: &str) -> Result<Value, Invalid> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(Invalid::new(path, "a data: URL needs a comma"));
        };
        let Some(mime) = meta.strip_suffix(";base64") else {
            return Err(Invalid::new(path, "a data: URL must be base64"));
        };
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") || url.starts_with("gs://") {
        let mut file = Map::new();
        if let Some(mime) = mime_of(url) {
            file.insert("mimeType".into(), Value::from(mime));
        }
        file.insert("fileUri".into(), Value::from(url));
        return Ok(json!({ "fileData": file }));
    }
    Err(Invalid::new(path, "the URL must be a data: or http(s) URL"))
}

/// A media type from the URL's extension: Gemini wants one with `fileData`.
fn mime_of(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

fn response_format(value: &Value, config: &mut Map<String, Value>) -> Result<(), Invalid> {
    match value.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), "application/json".into());
            if let Some(schema) = value.pointer("/json_schema/schema") {
                config.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {
            return Err(Invalid::new(
                "response_format.type",
                "`type` must be text, json_object or json_schema",
            ))
        }
    }
    Ok(())
}

fn tools(value: &Value) -> Value {
    let declarations: Vec<Value> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool.get("function"))
        .map(|f| {
            let mut d = Map::new();
            for (from, to) in [
                ("name", "name"),
                ("description", "description"),
                ("parameters", "parameters"),
            ] {
                if let Some(v) = f.get(from).filter(|v| !v.is_null()) {
                    d.insert(to.into(), v.clone());
                }
            }
            Value::Object(d)
        })
        .collect();
    json!([{ "functionDeclarations": declarations }])
}

fn tool_choice(value: &Value) -> Result<Value, Invalid> {
    let config = match value {
        Value::String(s) => match s.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "none" => json!({"mode": "NONE"}),
            "required" => json!({"mode": "ANY"}),
            _ => {
                return Err(Invalid::new(
                    "tool_choice",
                    "`tool_choice` must be auto, none, required or a function",
                ))
            }
        },
        Value::Object(_) => match value.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            None => {
                return Err(Invalid::new(
                    "tool_choice.function.name",
                    "a named tool choice needs a name",
                ))
            }
        },
        _ => {
            return Err(Invalid::new(
                "tool_choice",
                "`tool_choice` must be a string or an object",
            ))
        }
    };
    Ok(json!({ "functionCallingConfig": config }))
}

/// Gemini `finishReason` → OpenAI `finish_reason`.
fn finish_reason(reason: &str, called: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// `usageMetadata` → usage: thoughts are completion tokens (Gemini counts
/// them apart from `candidatesTokenCount`); the prompt count already
/// includes cached content.
fn usage_from(meta: &Value) -> Usage {
    let n = |key: &str| meta.get(key).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        input: n("promptTokenCount"),
        output: n("candidatesTokenCount") + thoughts,
        cached: n("cachedContentTokenCount"),
        reasoning: thoughts,
    }
}

fn chat_id(response: &Value, created: u64) -> String {
    match response.get("responseId").and_then(Value::as_str) {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!("chatcmpl-gemini-{created}"),
    }
}

/// Text and function calls of one candidate's parts. `next_call` numbers
/// the generated ids.
fn read_parts(candidate: &Value, next_call: &mut usize) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(call) = part.get("functionCall") {
            let name = call.get("name").and_then(Value::as_str).unwrap_or("");
            let args = call
                .get("args")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            let mut tool_call = json!({
                "id": format!("call_{next_call}"),
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": serde_json::to_string(&args).expect("a JSON value always serializes"),
                },
            });
            if let Some(sig) = part.get("thoughtSignature") {
                tool_call["extra_content"] = json!({"google": {"thought_signature": sig}});
            }
            calls.push(tool_call);
            *next_call += 1;
        }
    }
    (text, calls)
}

/// Gemini answer → OpenAI `chat.completion`. `model` is the provider-side
/// model name (Gemini's `modelVersion` wins when present).
pub(crate) fn answer_to_openai(
    body: &[u8],
    model: &str,
    created: u64,
) -> Result<Answer, Unreadable> {
    let response: Value = serde_json::from_slice(body)
        .map_err(|e| Unreadable(format!("the Gemini answer is not JSON: {e}")))?;
    if !response.is_object() {
        return Err(Unreadable("the Gemini answer is not a JSON object".into()));
    }
    let usage = response
        .get("usageMetadata")
        .map(usage_from)
        .unwrap_or_default();
    let mut choices = Vec::new();
    let mut next_call = 0;
    let candidates = response.get("candidates").and_then(Value::as_array);
    for (position, candidate) in candidates.into_iter().flatten().enumerate() {
        let (text, calls) = read_parts(candidate, &mut next_call);
        let reason = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("STOP");
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        let content = if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        };
        message.insert("content".into(), content);
        let called = !calls.is_empty();
        if called {
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        choices.push(json!({
            "index": candidate.get("index").and_then(Value::as_u64).unwrap_or(position as u64),
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(reason, called),
        }));
    }
    if choices.is_empty() {
        // A prompt blocked before any candidate: the answer is the filter.
        let blocked = response.pointer("/promptFeedback/blockReason").is_some();
        choices.push(json!({
            "index": 0,
            "message": {"role": "assistant", "content": null},
            "logprobs": null,
            "finish_reason": if blocked { "content_filter" } else { "stop" },
        }));
    }
    let model = response
        .get("modelVersion")
        .and_then(Value::as_str)
        .unwrap_or(model);
    let body = json!({
        "id": chat_id(&response, created),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage_json(&usage),
    });
    Ok(Answer {
        body: serde_json::to_vec(&body).expect("a JSON value always serializes"),
        usage,
    })
}

/// Gemini SSE stream → OpenAI chunks: role chunk first, text deltas, one
/// `tool_calls` chunk per function call (whole arguments), finish chunk,
/// then in [`Events::finish`] the usage chunk (when the client asked) and
/// `[DONE]`.
#[derive(Debug)]
pub(crate) struct ToOpenAi {
    parser: Parser,
    state: State,
}

#[derive(Debug)]
struct State {
    model: String,
    /// Set from the first event (`responseId`, else made from `created`).
    id: Option<String>,
    include_usage: bool,
    created: u64,
    usage: Usage,
    /// Per choice index.
    choices: Vec<ChoiceState>,
    started: bool,
    done: bool,
}

/// Choices tracked apart in a stream (`candidateCount` is at most 8).
const MAX_CHOICES: usize = 16;

#[derive(Debug, Default, Clone)]
struct ChoiceState {
    role_sent: bool,
    calls: usize,
    finished: bool,
}

impl ToOpenAi {
    pub(crate) fn new(model: &str, include_usage: bool, created: u64) -> ToOpenAi {
        ToOpenAi {
            parser: Parser::new(),
            state: State {
                model: model.to_string(),
                id: None,
                include_usage,
                created,
                usage: Usage::default(),
                choices: Vec::new(),
                started: false,
                done: false,
            },
        }
    }
}

impl State {
    fn chunk(&self, out: &mut BytesMut, index: u64, delta: Value, finish: Option<&str>) {
        let mut chunk = json!({
            "id": self.id.as_deref().unwrap_or(""),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            // As OpenAI: every chunk but the last says `usage: null`.
            chunk["usage"] = Value::Null;
        }
        sse::write_data(
            out,
            &serde_json::to_vec(&chunk).expect("a JSON value always serializes"),
        );
    }

    fn choice(&mut self, index: u64, out: &mut BytesMut) -> usize {
        // `n` is small; a wild index shares the last slot rather than
        // growing the table.
        let at = usize::try_from(index).map_or(MAX_CHOICES - 1, |i| i.min(MAX_CHOICES - 1));
        if self.choices.len() <= at {
            self.choices.resize(at + 1, ChoiceState::default());
        }
        if !self.choices[at].role_sent {
            self.choices[at].role_sent = true;
            self.chunk(
                out,
                index,
                json!({"role": "assistant", "content": ""}),
                None,
            );
        }
        at
    }

    fn on_event(&mut self, ev: Event<'_>, out: &mut BytesMut) {
        if self.done || ev.data == b"[DONE]" {
            return;
        }
        let Ok(response) = serde_json::from_slice::<Value>(ev.data) else {
            error_event(
                out,
                "server_error",
                "the provider sent a stream event that is not JSON",
            );
            self.end(out, false);
            return;
        };
        if response.get("error").is_some() {
            let (kind, message) = error::stream_error(Wire::Gemini, ev.data);
            error_event(out, &kind, &message);
            self.end(out, false);
            return;
        }
        if self.id.is_none() {
            self.id = Some(chat_id(&response, self.created));
            if let Some(version) = response.get("modelVersion").and_then(Value::as_str) {
                self.model = version.to_string();
            }
        }
        if let Some(meta) = response.get("usageMetadata") {
            self.usage = usage_from(meta);
        }
        let candidates = response.get("candidates").and_then(Value::as_array);
        for (position, candidate) in candidates.into_iter().flatten().enumerate() {
            let index = candidate
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            let at = self.choice(index, out);
            let mut next_call = self.choices[at].calls;
            let (text, calls) = read_parts(candidate, &mut next_call);
            if !text.is_empty() {
                self.chunk(out, index, json!({ "content": text }), None);
                self.started = true;
            }
            for (k, mut call) in calls.into_iter().enumerate() {
                call["index"] = Value::from(self.choices[at].calls + k);
                self.chunk(out, index, json!({ "tool_calls": [call] }), None);
                self.started = true;
            }
            let called = next_call > 0;
            self.choices[at].calls = next_call;
            if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
                if !self.choices[at].finished {
                    self.choices[at].finished = true;
                    self.chunk(out, index, json!({}), Some(finish_reason(reason, called)));
                }
            }
        }
        if candidates.is_none_or(|c| c.is_empty())
            && response.pointer("/promptFeedback/blockReason").is_some()
        {
            let at = self.choice(0, out);
            if !self.choices[at].finished {
                self.choices[at].finished = true;
                self.chunk(out, 0, json!({}), Some("content_filter"));
            }
        }
    }

    /// Ends the client's stream: the usage chunk when asked (and known),
    /// then `[DONE]`.
    fn end(&mut self, out: &mut BytesMut, with_usage: bool) {
        if self.done {
            return;
        }
        self.done = true;
        if with_usage && self.include_usage && self.usage != Usage::default() {
            let chunk = json!({
                "id": self.id.as_deref().unwrap_or(""),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_json(&self.usage),
            });
            sse::write_data(
                out,
                &serde_json::to_vec(&chunk).expect("a JSON value always serializes"),
            );
        }
        out.extend_from_slice(sse::DONE);
    }
}

impl Events for ToOpenAi {
    fn feed(&mut self, data: &[u8], out: &mut BytesMut) {
        if self.state.done {
            return;
        }
        let ToOpenAi { parser, state } = self;
        if parser.feed(data, |ev| state.on_event(ev, out)).is_err() {
            too_large_event(out);
            state.end(out, false);
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        let state = &mut self.state;
        self.parser.finish(|ev| state.on_event(ev, out));
        self.state.end(out, true);
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
        let body = serde_json::to_vec(&v).expect("json");
        super::super::openai::parse_chat(&body).expect("valid chat")
    }

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("json")
    }

    #[test]
    fn request_mapping() {
        #[rustfmt::skip]
        // (what, request, max_tokens_default, Gemini body, dropped)
        type Case = (&'static str, Value, Option<u32>, Value, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "text, system and config",
                json!({"model": "g", "messages": [
                    {"role": "system", "content": "You are a cat."},
                    {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": "Meow"},
                    {"role": "user", "content": "Again"}],
                  "max_tokens": 50, "stop": "END", "temperature": 0.7, "top_p": 0.9, "n": 2,
                  "presence_penalty": 0.1, "frequency_penalty": 0.2, "seed": 42,
                  "response_format": {"type": "json_object"}, "stream": true,
                  "stream_options": {"include_usage": true}}),
                None,
                json!({
                    "systemInstruction": {"parts": [{"text": "You are a cat."}, {"text": "Be brief."}]},
                    "contents": [
                        {"role": "user", "parts": [{"text": "Hello"}]},
                        {"role": "model", "parts": [{"text": "Meow"}]},
                        {"role": "user", "parts": [{"text": "Again"}]}],
                    "generationConfig": {"maxOutputTokens": 50, "stopSequences": ["END"], "temperature": 0.7,
                        "topP": 0.9, "candidateCount": 2, "presencePenalty": 0.1, "frequencyPenalty": 0.2,
                        "seed": 42, "responseMimeType": "application/json"}}),
                vec![],
            ),
            (
                "max_completion_tokens wins, default otherwise unused",
                json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "max_completion_tokens": 9}),
                Some(100),
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 9}}),
                vec![],
            ),
            (
                "default max tokens",
                json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"]}),
                Some(100),
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 100, "stopSequences": ["a", "b"]}}),
                vec![],
            ),
            (
                "images: data URL inline, http URL as file",
                json!({"model": "g", "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.JPG?x=1", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/blob"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}]}]}),
                None,
                json!({"contents": [{"role": "user", "parts": [
                    {"text": "What is this?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?x=1"}},
                    {"fileData": {"fileUri": "https://example.com/blob"}},
                    {"inlineData": {"mimeType": "audio/wav", "data": "UklGR"}}]}]}),
                vec![],
            ),
            (
                "tool round trip: calls, grouped results, tools and choice",
                json!({"model": "g", "messages": [
                    {"role": "user", "content": "Weather in Paris and Rome?"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                         "extra_content": {"google": {"thought_signature": "c2ln"}}},
                        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
                    {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\":21}"},
                    {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
                    {"role": "user", "content": "Thanks"}],
                  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
                      {"type": "function", "function": {"name": "get_time"}}],
                  "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                  "parallel_tool_calls": true, "user": "u1", "logprobs": false, "top_logprobs": 2, "logit_bias": {"1": 2}, "foo": 1}),
                None,
                json!({
                    "contents": [
                        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
                        {"role": "model", "parts": [
                            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                            {"functionCall": {"name": "get_time", "args": {}}}]},
                        {"role": "user", "parts": [
                            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                            {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}]},
                        {"role": "user", "parts": [{"text": "Thanks"}]}],
                    "tools": [{"functionDeclarations": [
                        {"name": "get_weather", "description": "Weather of a city",
                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                        {"name": "get_time"}]}],
                    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}}),
                // Sorted keys: the map is a BTreeMap.
                vec![
                    "foo",
                    "logit_bias",
                    "logprobs",
                    "parallel_tool_calls",
                    "top_logprobs",
                    "user",
                ],
            ),
            (
                "tool choice strings and json schema",
                json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required",
                    "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}}),
                None,
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
                    "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}}),
                vec![],
            ),
            (
                "ids reused across turns resolve to the latest call",
                json!({"model": "g", "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_0", "content": "1"},
                    {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_0", "content": [{"type": "text", "text": "2"}]}],
                  "tool_choice": "none"}),
                None,
                json!({"contents": [
                    {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {"content": "1"}}}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "b", "args": {}}}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "b", "response": {"content": "2"}}}]}],
                  "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}),
                vec![],
            ),
        ];
        for (what, request, default, want, dropped) in cases {
            let out = to_gemini(&chat(request), default).expect(what);
            assert_eq!(json_of(&out.body), want, "{what}");
            assert_eq!(out.dropped, dropped, "{what}");
        }
    }

    #[test]
    fn request_errors_name_the_field() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, &str)> = vec![
            ("arguments not JSON", json!({"model": "g", "messages": [{"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
                "messages[0].tool_calls[0].function.arguments"),
            ("unknown tool_call_id", json!({"model": "g", "messages": [{"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "nope", "content": "x"}]}), "messages[1].tool_call_id"),
            ("image in a system message", json!({"model": "g", "messages": [{"role": "system", "content": [
                {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]}), "messages[0].content[0]"),
            ("data URL not base64", json!({"model": "g", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}), "messages[0].content[0].image_url.url"),
            ("ftp URL", json!({"model": "g", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}]}]}), "messages[0].content[0].image_url.url"),
            ("unknown part", json!({"model": "g", "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
                "messages[0].content[0].type"),
            ("stop a number", json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "stop": 3}), "stop"),
            ("tool_choice word", json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "tool_choice": "maybe"}), "tool_choice"),
            ("response_format type", json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "yaml"}}), "response_format.type"),
        ];
        for (what, request, param) in cases {
            let got = to_gemini(&chat(request), None).expect_err(what);
            assert_eq!(got.param, param, "{what}: {}", got.message);
        }
    }

    /// Gemini API reference, `models.generateContent` response (text).
    const TEXT_ANSWER: &str = r#"{
      "candidates": [{"content": {"parts": [{"text": "AI learns patterns from data"}, {"text": " to make predictions."}], "role": "model"},
        "finishReason": "STOP", "avgLogprobs": -0.2}],
      "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 20,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]},
      "modelVersion": "gemini-2.0-flash", "responseId": "rsp-1"}"#;

    /// Function calling guide: a functionCall answer, with thinking and a
    /// cache hit.
    const CALL_ANSWER: &str = r#"{
      "candidates": [{"content": {"parts": [
          {"text": "thinking about lights", "thought": true},
          {"functionCall": {"name": "set_light_values", "args": {"brightness": 25, "color_temp": "warm"}}, "thoughtSignature": "c2ln"},
          {"functionCall": {"name": "power", "args": {}}}], "role": "model"},
        "finishReason": "STOP", "index": 0}],
      "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 100, "totalTokenCount": 170}}"#;

    #[test]
    fn answers() {
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Value, Usage)> = vec![
            ("text", TEXT_ANSWER, json!({
                "id": "chatcmpl-rsp-1", "object": "chat.completion", "created": 1700, "model": "gemini-2.0-flash",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "AI learns patterns from data to make predictions."},
                    "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 8, "completion_tokens": 12, "total_tokens": 20,
                    "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}}),
                Usage { input: 8, output: 12, cached: 0, reasoning: 0 }),
            ("function calls", CALL_ANSWER, json!({
                "id": "chatcmpl-gemini-1700", "object": "chat.completion", "created": 1700, "model": "gemini-pro",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_0", "type": "function", "function": {"name": "set_light_values", "arguments": "{\"brightness\":25,\"color_temp\":\"warm\"}"},
                     "extra_content": {"google": {"thought_signature": "c2ln"}}},
                    {"id": "call_1", "type": "function", "function": {"name": "power", "arguments": "{}"}}]},
                    "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 50, "total_tokens": 170,
                    "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 30}}}),
                Usage { input: 120, output: 50, cached: 100, reasoning: 30 }),
            ("length and safety",
                r#"{"candidates": [{"content": {"parts": [{"text": "Once"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0},
                                  {"finishReason": "SAFETY", "index": 1}]}"#,
                json!({"id": "chatcmpl-gemini-1700", "object": "chat.completion", "created": 1700, "model": "gemini-pro",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "Once"}, "logprobs": null, "finish_reason": "length"},
                        {"index": 1, "message": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": "content_filter"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}}),
                Usage::default()),
            ("blocked prompt",
                r#"{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}}"#,
                json!({"id": "chatcmpl-gemini-1700", "object": "chat.completion", "created": 1700, "model": "gemini-pro",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": null}, "logprobs": null, "finish_reason": "content_filter"}],
                    "usage": {"prompt_tokens": 4, "completion_tokens": 0, "total_tokens": 4,
                        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}}),
                Usage { input: 4, output: 0, cached: 0, reasoning: 0 }),
        ];
        for (what, body, want, usage) in cases {
            let got = answer_to_openai(body.as_bytes(), "gemini-pro", 1700).expect(what);
            let v = json_of(&got.body);
            assert_eq!(v, want, "{what}");
            assert_eq!(got.usage, usage, "{what}");
            assert_eq!(
                v["usage"]["total_tokens"].as_u64(),
                Some(usage.input + usage.output),
                "{what}: total = prompt + completion"
            );
        }
        for bad in ["not json", "[1]"] {
            assert!(answer_to_openai(bad.as_bytes(), "m", 0).is_err());
        }
    }

    /// `streamGenerateContent?alt=sse`, framed as Gemini frames it
    /// (`data: ...\r\n\r\n`), from the API reference's streaming example.
    const TEXT_STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 10,\"totalTokenCount\": 10},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"r-9\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" sky is blue ✓\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 10,\"candidatesTokenCount\": 4,\"totalTokenCount\": 14},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"r-9\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \".\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 10,\"candidatesTokenCount\": 6,\"thoughtsTokenCount\": 2,\"cachedContentTokenCount\": 3,\"totalTokenCount\": 18},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"r-9\"}\r\n\r\n",
    );

    const CALL_STREAM: &str =
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}}},{\"functionCall\": {\"name\": \"get_time\",\"args\": {}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 30,\"candidatesTokenCount\": 10,\"totalTokenCount\": 40},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n";

    fn chunk(id: &str, model: &str, delta: Value, finish: Value, usage_null: bool) -> String {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": 5, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if usage_null {
            c["usage"] = Value::Null;
        }
        format!("data: {}\n\n", serde_json::to_string(&c).expect("json"))
    }

    fn usage_chunk(id: &str, model: &str, usage: Value) -> String {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": 5, "model": model, "choices": [], "usage": usage});
        format!("data: {}\n\n", serde_json::to_string(&c).expect("json"))
    }

    #[test]
    fn streams() {
        let (id, m) = ("chatcmpl-r-9", "gemini-2.0-flash");
        let text_usage = json!({"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}});
        let text_body = |u: bool| {
            [
                chunk(
                    id,
                    m,
                    json!({"role": "assistant", "content": ""}),
                    Value::Null,
                    u,
                ),
                chunk(id, m, json!({"content": "The"}), Value::Null, u),
                chunk(id, m, json!({"content": " sky is blue ✓"}), Value::Null, u),
                chunk(id, m, json!({"content": "."}), Value::Null, u),
                chunk(id, m, json!({}), json!("stop"), u),
            ]
            .concat()
        };
        let (cid, cm) = ("chatcmpl-gemini-5", "gemini-2.5-flash");
        let call_want = [
            chunk(
                cid,
                cm,
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                false,
            ),
            chunk(
                cid,
                cm,
                json!({"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
                Value::Null,
                false,
            ),
            chunk(
                cid,
                cm,
                json!({"tool_calls": [{"index": 1, "id": "call_1", "type": "function",
                "function": {"name": "get_time", "arguments": "{}"}}]}),
                Value::Null,
                false,
            ),
            chunk(cid, cm, json!({}), json!("tool_calls"), false),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        let cut = &TEXT_STREAM[..TEXT_STREAM
            .find("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \".\"}]")
            .expect("fixture")];
        let text_usage_u = Usage {
            input: 10,
            output: 8,
            cached: 3,
            reasoning: 2,
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, bool, &str, String, Usage, bool)> = vec![
            ("text, usage asked", true, TEXT_STREAM,
                format!("{}{}data: [DONE]\n\n", text_body(true), usage_chunk(id, m, text_usage.clone())), text_usage_u, true),
            ("text, usage not asked", false, TEXT_STREAM,
                format!("{}data: [DONE]\n\n", text_body(false)), text_usage_u, true),
            ("function calls", false, CALL_STREAM, call_want, Usage { input: 30, output: 10, cached: 0, reasoning: 0 }, true),
            ("interrupted: [DONE] still ends it", false, cut,
                [chunk(id, m, json!({"role": "assistant", "content": ""}), Value::Null, false),
                 chunk(id, m, json!({"content": "The"}), Value::Null, false),
                 chunk(id, m, json!({"content": " sky is blue ✓"}), Value::Null, false),
                 "data: [DONE]\n\n".to_string()].concat(),
                Usage { input: 10, output: 4, cached: 0, reasoning: 0 }, true),
            ("error mid-stream", false,
                "data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\ndata: {\"candidates\": []}\n\n",
                "data: {\"error\":{\"message\":\"The model is overloaded.\",\"type\":\"UNAVAILABLE\",\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n".to_string(),
                Usage::default(), false),
            ("empty", true, "", "data: [DONE]\n\n".to_string(), Usage::default(), false),
        ];
        for (what, include_usage, input, want, usage, started) in cases {
            let (out, got_usage, got_started) = crate::ai::stream::testing::run(
                &|| Box::new(ToOpenAi::new("gemini-pro", include_usage, 5)),
                input.as_bytes(),
            );
            assert_eq!(out, want, "{what}");
            assert_eq!(got_usage, usage, "{what}");
            assert_eq!(got_started, started, "{what}");
        }
    }

    #[test]
    fn stream_usage_is_the_latest_not_a_sum() {
        let mut t = ToOpenAi::new("g", true, 0);
        let mut out = BytesMut::new();
        t.feed(TEXT_STREAM.as_bytes(), &mut out);
        t.finish(&mut out);
        let usage = t.usage();
        assert_eq!(
            usage,
            Usage {
                input: 10,
                output: 8,
                cached: 3,
                reasoning: 2
            }
        );
        assert_eq!(usage.total(), 18);
        let text = String::from_utf8(out.to_vec()).expect("utf-8");
        assert_eq!(text.matches("[DONE]").count(), 1);
        assert_eq!(text.matches("\"usage\":{").count(), 1);
    }
}
