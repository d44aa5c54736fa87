//! Anthropic's event stream → OpenAI chunks, as the bytes arrive (any
//! split): the state machine of `AI-GATEWAY.md`.
//!
//! State is a few integers and the opening every chunk shares
//! (`{"id":..,"object":..,"created":..,"model":..`), written once at
//! `message_start`; each chunk is written by hand into one reused buffer,
//! so a text delta costs one JSON parse of its event and one copy of the
//! text. A tool call's `partial_json` fragments pass through as OpenAI
//! `arguments` fragments, never gathered.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{finish_reason, put_json, to_vec, usage_json, Tokens};
use crate::ai::error;
use crate::ai::sse::{self, Event, Parser};
use crate::ai::stream::Events;
use crate::ai::Usage;

/// Anthropic stream → OpenAI chunks, as bytes arrive (see
/// [`Events`]). Usage: input from `message_start`, output from the latest
/// `message_delta` (cumulative: replaced, never summed).
pub(crate) struct ToOpenAi {
    parser: Parser,
    state: ToState,
}

struct ToState {
    include_usage: bool,
    created: u64,
    /// `{"id":..,"object":"chat.completion.chunk","created":..,"model":..`:
    /// the opening every chunk shares, written once at `message_start`.
    head: Vec<u8>,
    /// The chunk being written (reused).
    chunk: Vec<u8>,
    tokens: Tokens,
    /// Tool blocks seen so far: the next one's OpenAI `index`.
    tools: u64,
    /// The OpenAI index of the open tool block, when one is open.
    tool: Option<u64>,
    finish: Option<&'static str>,
    started: bool,
    done: bool,
}

impl ToOpenAi {
    pub(crate) fn new(include_usage: bool, created: u64) -> ToOpenAi {
        let mut state = ToState {
            include_usage,
            created,
            head: Vec::new(),
            chunk: Vec::new(),
            tokens: Tokens::default(),
            tools: 0,
            tool: None,
            finish: None,
            started: false,
            done: false,
        };
        state.set_head("", "");
        ToOpenAi {
            parser: Parser::new(),
            state,
        }
    }
}

impl Events for ToOpenAi {
    fn feed(&mut self, data: &[u8], out: &mut BytesMut) {
        if self.state.done {
            return;
        }
        let ToOpenAi { parser, state } = self;
        if parser.feed(data, |ev| state.on_event(ev, out)).is_err() {
            state.fail(out, sse::TOO_LARGE_MESSAGE);
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        let ToOpenAi { parser, state } = self;
        if !state.done {
            parser.finish(|ev| state.on_event(ev, out));
        }
        if state.done {
            return;
        }
        // message_stop never came. A stop reason means the answer was
        // whole but for that event: its usage chunk is still due.
        if state.finish.is_some() && state.include_usage {
            state.usage_chunk(out);
        }
        out.extend_from_slice(sse::DONE);
        state.done = true;
    }

    fn usage(&self) -> Usage {
        self.state.tokens.usage()
    }

    fn started(&self) -> bool {
        self.state.started
    }
}

/// A `content_block_delta` event's data, as far as it is read.
#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(borrow)]
    delta: Delta<'a>,
}

/// The `delta` of a `content_block_delta`: strings are borrowed from the
/// event unless they hold escapes.
#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
}

impl ToState {
    fn set_head(&mut self, id: &str, model: &str) {
        self.head.clear();
        self.head.extend_from_slice(b"{\"id\":");
        put_json(&mut self.head, id);
        self.head
            .extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        put_json(&mut self.head, &self.created);
        self.head.extend_from_slice(b",\"model\":");
        put_json(&mut self.head, model);
    }

    fn on_event(&mut self, ev: Event<'_>, out: &mut BytesMut) {
        if self.done {
            return;
        }
        // Most of a stream is deltas: read into borrowed fields, not a
        // tree.
        if ev.name == b"content_block_delta" {
            if let Ok(d) = serde_json::from_slice::<BlockDelta<'_>>(ev.data) {
                self.block_delta(out, &d.delta);
                return;
            }
        }
        // Events Anthropic adds later, and data that is not JSON, are
        // skipped: its versioning policy asks clients to ignore them.
        let Ok(v) = serde_json::from_slice::<Value>(ev.data) else {
            return;
        };
        let kind = match v.get("type").and_then(Value::as_str) {
            Some(kind) => kind,
            None => std::str::from_utf8(ev.name).unwrap_or(""),
        };
        match kind {
            "message_start" => {
                let message = v.get("message").unwrap_or(&Value::Null);
                let id = message.get("id").and_then(Value::as_str).unwrap_or("");
                let model = message.get("model").and_then(Value::as_str).unwrap_or("");
                self.set_head(id, model);
                if let Some(u) = message.get("usage") {
                    self.tokens.update(u);
                }
                self.delta(out, None, |c| {
                    c.extend_from_slice(br#"{"role":"assistant","content":""}"#)
                });
            }
            "content_block_start" => {
                let block = v.get("content_block").unwrap_or(&Value::Null);
                self.tool = None;
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let index = self.tools;
                        self.tools += 1;
                        self.tool = Some(index);
                        self.started = true;
                        let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                        let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                        self.delta(out, None, |c| {
                            c.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                            put_json(c, &index);
                            c.extend_from_slice(b",\"id\":");
                            put_json(c, id);
                            c.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                            put_json(c, name);
                            c.extend_from_slice(b",\"arguments\":\"\"}}]}");
                        });
                    }
                    Some("text") => {
                        if let Some(text) = block.get("text").and_then(Value::as_str) {
                            self.text(out, text);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                if let Some(Ok(delta)) = v.get("delta").map(Delta::deserialize) {
                    self.block_delta(out, &delta);
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.tokens.update(u);
                }
                let stop = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                if let (Some(stop), None) = (stop, self.finish) {
                    let reason = finish_reason(stop);
                    self.finish = Some(reason);
                    self.delta(out, Some(reason), |c| c.extend_from_slice(b"{}"));
                }
            }
            "message_stop" => {
                if self.finish.is_none() {
                    self.finish = Some("stop");
                    self.delta(out, Some("stop"), |c| c.extend_from_slice(b"{}"));
                }
                if self.include_usage {
                    self.usage_chunk(out);
                }
                out.extend_from_slice(sse::DONE);
                self.done = true;
            }
            "error" => {
                let (kind, message) =
                    error::kind_and_message(v.get("error").unwrap_or(&Value::Null));
                self.error(out, kind, message);
            }
            // ping, content_block_stop, and events added later.
            _ => {}
        }
    }

    fn block_delta(&mut self, out: &mut BytesMut, delta: &Delta<'_>) {
        match &*delta.kind {
            "text_delta" => {
                if let Some(text) = &delta.text {
                    self.text(out, text);
                }
            }
            "input_json_delta" => {
                let partial = delta.partial_json.as_deref().unwrap_or("");
                if let (Some(index), false) = (self.tool, partial.is_empty()) {
                    self.delta(out, None, |c| {
                        c.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                        put_json(c, &index);
                        c.extend_from_slice(b",\"function\":{\"arguments\":");
                        put_json(c, partial);
                        c.extend_from_slice(b"}}]}");
                    });
                }
            }
            // thinking_delta, signature_delta, citations: no OpenAI place.
            _ => {}
        }
    }

    fn text(&mut self, out: &mut BytesMut, text: &str) {
        if text.is_empty() {
            return;
        }
        self.started = true;
        self.delta(out, None, |c| {
            c.extend_from_slice(b"{\"content\":");
            put_json(c, text);
            c.push(b'}');
        });
    }

    /// A chunk of one choice; `delta` writes the delta object.
    fn delta(
        &mut self,
        out: &mut BytesMut,
        finish: Option<&str>,
        delta: impl FnOnce(&mut Vec<u8>),
    ) {
        self.chunk.clear();
        self.chunk.extend_from_slice(&self.head);
        self.chunk
            .extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
        delta(&mut self.chunk);
        self.chunk
            .extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        put_json(&mut self.chunk, &finish);
        self.chunk.extend_from_slice(b"}]");
        // As OpenAI does: with include_usage, every other chunk says
        // `"usage": null`.
        if self.include_usage {
            self.chunk.extend_from_slice(b",\"usage\":null");
        }
        self.chunk.push(b'}');
        sse::write_data(out, &self.chunk);
    }

    fn usage_chunk(&mut self, out: &mut BytesMut) {
        self.chunk.clear();
        self.chunk.extend_from_slice(&self.head);
        self.chunk.extend_from_slice(b",\"choices\":[],\"usage\":");
        put_json(&mut self.chunk, &usage_json(&self.tokens.usage()));
        self.chunk.push(b'}');
        sse::write_data(out, &self.chunk);
    }

    /// An error inside the stream: OpenAI's error data event, then the end.
    fn error(&mut self, out: &mut BytesMut, kind: &str, message: &str) {
        let body = json!({ "error": { "message": message, "type": kind } });
        sse::write_data(out, &to_vec(&body));
        out.extend_from_slice(sse::DONE);
        self.done = true;
    }

    fn fail(&mut self, out: &mut BytesMut, message: &str) {
        if !self.done {
            self.error(out, "upstream_error", message);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    use crate::ai::anthropic::tests::json_of;

    // -- Anthropic stream → OpenAI stream ---------------------------------

    /// The "Streaming Messages" page's basic example.
    const STREAM: &str = r#"event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-1-20250805", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"#;

    /// The "Streaming Messages" page's tool use example.
    pub(in crate::ai::anthropic) const TOOL_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":","}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" let's check the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" Francisc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o,"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" CA\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"unit\": \"fah"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"#;

    /// Feeds `input` in pieces of `piece` bytes (all at once when 0), then
    /// finishes.
    pub(in crate::ai::anthropic) fn run(
        mut t: impl Events,
        input: &[u8],
        piece: usize,
    ) -> (String, Usage, bool) {
        let mut out = BytesMut::new();
        if piece == 0 {
            t.feed(input, &mut out);
        } else {
            for part in input.chunks(piece) {
                t.feed(part, &mut out);
            }
        }
        t.finish(&mut out);
        let text = String::from_utf8(out.to_vec()).expect("the output is UTF-8");
        (text, t.usage(), t.started())
    }

    /// Runs whole and in every piece size 1..=7; all must agree.
    pub(in crate::ai::anthropic) fn run_all(
        make: impl Fn() -> Box<dyn Events>,
        input: &str,
    ) -> (String, Usage, bool) {
        let whole = run(make(), input.as_bytes(), 0);
        for piece in 1..=7 {
            let split = run(make(), input.as_bytes(), piece);
            assert_eq!(split, whole, "pieces of {piece} bytes");
        }
        whole
    }

    impl Events for Box<dyn Events> {
        fn feed(&mut self, data: &[u8], out: &mut BytesMut) {
            (**self).feed(data, out)
        }
        fn finish(&mut self, out: &mut BytesMut) {
            (**self).finish(out)
        }
        fn usage(&self) -> Usage {
            (**self).usage()
        }
        fn started(&self) -> bool {
            (**self).started()
        }
    }

    /// The `data:` payloads of an OpenAI stream, JSON parsed (`[DONE]` as a
    /// string).
    fn chunks(out: &str) -> Vec<Value> {
        out.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let data = e
                    .strip_prefix("data: ")
                    .expect("OpenAI events are data only");
                if data == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    json_of(data.as_bytes())
                }
            })
            .collect()
    }

    /// The events of an Anthropic stream: (name, data).
    pub(in crate::ai::anthropic) fn events(out: &str) -> Vec<(String, Value)> {
        out.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').expect("event and data lines");
                let name = name.strip_prefix("event: ").expect("an event line");
                let data = data.strip_prefix("data: ").expect("a data line");
                let data = json_of(data.as_bytes());
                assert_eq!(data["type"], name, "the name matches the type");
                (name.to_owned(), data)
            })
            .collect()
    }

    #[test]
    fn stream_text_exact() {
        let (out, usage, started) =
            run_all(|| Box::new(ToOpenAi::new(true, 1_700_000_000)), STREAM);
        let head = r#"{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","object":"chat.completion.chunk","created":1700000000,"model":"claude-opus-4-1-20250805""#;
        let want = [
            format!(r#"{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#),
            format!(r#"{head},"choices":[{{"index":0,"delta":{{"content":"Hello"}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#),
            format!(r#"{head},"choices":[{{"index":0,"delta":{{"content":"!"}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#),
            format!(r#"{head},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}],"usage":null}}"#),
            format!(r#"{head},"choices":[],"usage":{{"completion_tokens":15,"completion_tokens_details":{{"reasoning_tokens":0}},"prompt_tokens":25,"prompt_tokens_details":{{"cached_tokens":0}},"total_tokens":40}}}}"#),
            "[DONE]".to_owned(),
        ]
        .iter()
        .map(|d| format!("data: {d}\n\n"))
        .collect::<String>();
        assert_eq!(out, want);
        assert_eq!(
            usage,
            Usage {
                input: 25,
                output: 15,
                cached: 0,
                reasoning: 0
            }
        );
        assert!(started);
    }

    #[test]
    fn stream_without_include_usage_has_no_usage_chunk() {
        let (out, usage, _) = run_all(|| Box::new(ToOpenAi::new(false, 1)), STREAM);
        let got = chunks(&out);
        assert_eq!(got.len(), 5, "role, two texts, finish, [DONE]");
        assert!(!out.contains("usage"), "{out}");
        assert_eq!(got[4], "[DONE]");
        // Usage is still metered.
        assert_eq!(usage.total(), 40);
    }

    #[test]
    fn stream_tool_use() {
        let (out, usage, started) = run_all(|| Box::new(ToOpenAi::new(true, 1)), TOOL_STREAM);
        let got = chunks(&out);
        for c in &got[..got.len() - 1] {
            assert_eq!(c["id"], "msg_014p7gG3wDgGV9EUtLvnow3U");
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "claude-opus-4-1-20250805");
            assert_eq!(c["created"], 1);
        }
        let deltas: Vec<&Value> = got
            .iter()
            .filter_map(|c| c["choices"].get(0))
            .map(|c| &c["delta"])
            .collect();
        assert_eq!(deltas[0], &json!({ "role": "assistant", "content": "" }));
        let text: String = deltas
            .iter()
            .filter_map(|d| d["content"].as_str())
            .collect();
        assert_eq!(text, "Okay, let's check the weather for San Francisco, CA:");
        let tool_chunks: Vec<&Value> = deltas.iter().filter_map(|d| d.get("tool_calls")).collect();
        assert_eq!(
            tool_chunks[0],
            &json!([{ "index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                "function": { "name": "get_weather", "arguments": "" } }])
        );
        // The empty partial_json is not sent; eight fragments are.
        assert_eq!(tool_chunks.len(), 9);
        let mut arguments = String::new();
        for c in &tool_chunks[1..] {
            assert_eq!(c[0]["index"], 0);
            assert!(c[0].get("id").is_none());
            arguments.push_str(c[0]["function"]["arguments"].as_str().expect("text"));
        }
        assert_eq!(
            json_of(arguments.as_bytes()),
            json!({ "location": "San Francisco, CA", "unit": "fahrenheit" })
        );
        let finish = &got[got.len() - 3];
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        let usage_chunk = &got[got.len() - 2];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 472);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 89);
        assert_eq!(usage_chunk["usage"]["total_tokens"], 561);
        assert_eq!(got[got.len() - 1], "[DONE]");
        assert_eq!(usage.total(), 561);
        assert!(started);
    }

    #[test]
    fn stream_tool_indexes_count_tool_blocks_only() {
        let input = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"a\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"b\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":1}\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let (out, _, started) = run_all(|| Box::new(ToOpenAi::new(false, 1)), input);
        assert!(started);
        let calls: Vec<Value> = chunks(&out)
            .iter()
            .filter_map(|c| c["choices"][0]["delta"].get("tool_calls").cloned())
            .collect();
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[0][0]["index"], 0);
        assert_eq!(calls[0][0]["id"], "t1");
        assert_eq!(
            calls[1][0],
            json!({ "index": 0, "function": { "arguments": "{}" } })
        );
        assert_eq!(calls[2][0]["index"], 1);
        assert_eq!(calls[2][0]["id"], "t2");
        assert_eq!(
            calls[3][0],
            json!({ "index": 1, "function": { "arguments": "{\"x\":1}" } })
        );
        assert!(!out.contains("hmm"), "thinking is not content");
    }

    /// message_delta usage is cumulative: the latest counts, never the sum;
    /// input fields it carries replace message_start's.
    #[test]
    fn stream_usage_is_cumulative() {
        let input = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":7}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"input_tokens\":12,\"output_tokens\":20}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let (out, usage, _) = run_all(|| Box::new(ToOpenAi::new(true, 1)), input);
        assert_eq!(
            usage,
            Usage {
                input: 12 + 100 + 5,
                output: 20,
                cached: 100,
                reasoning: 0
            }
        );
        let got = chunks(&out);
        let finishes = got
            .iter()
            .filter(|c| c["choices"][0]["finish_reason"].is_string())
            .count();
        assert_eq!(finishes, 1, "one finish chunk for two message_deltas");
        let u = &got[got.len() - 2]["usage"];
        assert_eq!(u["prompt_tokens"], 117);
        assert_eq!(u["completion_tokens"], 20);
        assert_eq!(u["total_tokens"], 137);
        assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 100);
        assert_eq!(
            u["total_tokens"].as_u64(),
            Some(
                u["prompt_tokens"].as_u64().unwrap_or(0)
                    + u["completion_tokens"].as_u64().unwrap_or(0)
            )
        );
    }

    #[test]
    fn stream_error_mid_stream() {
        let cut = STREAM
            .find("event: content_block_stop")
            .expect("the fixture has a block stop");
        let input = format!(
            "{}event: error\ndata: {{\"type\": \"error\", \"error\": {{\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}}}\n\n{}",
            &STREAM[..cut],
            &STREAM[cut..]
        );
        let (out, usage, started) = run_all(|| Box::new(ToOpenAi::new(true, 1)), &input);
        let got = chunks(&out);
        assert_eq!(got.len(), 5, "{out}");
        assert_eq!(
            got[3],
            json!({ "error": { "message": "Overloaded", "type": "overloaded_error" } })
        );
        assert_eq!(got[4], "[DONE]");
        assert!(
            !out.contains("finish_reason\":\"stop"),
            "nothing after the error"
        );
        assert!(started);
        assert_eq!(usage.input, 25);
    }

    #[test]
    fn stream_cut_before_message_stop() {
        // Cut after message_delta: the finish chunk came, the usage chunk
        // and [DONE] are still due.
        let cut = STREAM.find("event: message_stop").expect("fixture");
        let (out, _, _) = run_all(|| Box::new(ToOpenAi::new(true, 1)), &STREAM[..cut]);
        let got = chunks(&out);
        assert_eq!(got[got.len() - 3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(got[got.len() - 2]["usage"]["total_tokens"], 40);
        assert_eq!(got[got.len() - 1], "[DONE]");

        // Cut mid-text: no finish chunk, no usage chunk, [DONE].
        let cut = STREAM.find("event: content_block_stop").expect("fixture");
        let (out, _, started) = run_all(|| Box::new(ToOpenAi::new(true, 1)), &STREAM[..cut]);
        let got = chunks(&out);
        assert_eq!(got.len(), 4, "role, two texts, [DONE]: {out}");
        assert_eq!(got[3], "[DONE]");
        assert!(started);

        // message_stop without its blank line still ends the stream.
        let (out, _, _) = run_all(|| Box::new(ToOpenAi::new(false, 1)), STREAM.trim_end());
        assert_eq!(out.matches("[DONE]").count(), 1);
    }

    #[test]
    fn stream_not_started_before_content() {
        let cut = STREAM.find("event: content_block_delta").expect("fixture");
        let mut t = ToOpenAi::new(false, 1);
        let mut out = BytesMut::new();
        t.feed(&STREAM.as_bytes()[..cut], &mut out);
        assert!(!t.started(), "the role chunk is not content");
        assert!(!out.is_empty());
        t.feed(&STREAM.as_bytes()[cut..], &mut out);
        assert!(t.started());
    }
}
