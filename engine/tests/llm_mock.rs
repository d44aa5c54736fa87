//! The mock LLM provider (`support::llm`) over a real socket, before any
//! gateway uses it: it records what it was sent, answers JSON and event
//! streams in the providers' framing, holds a stream until released, and
//! notices when its peer goes away mid-stream (what the gateway's
//! client-disconnect test relies on). The fixtures are checked too: each
//! parses, and the streamed pieces add up to the constants tests compare
//! against.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::llm::{run_sdk_script, sdk_python, LlmMock, LlmReply};
use support::llm_fixtures::*;
use support::TestClient;

fn post(path: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n\
         Authorization: Bearer sk-test\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads from `s` until `needle` has arrived; panics after 10 s.
fn read_until(s: &mut TcpStream, got: &mut Vec<u8>, needle: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut buf = [0u8; 16 << 10];
    while !got.windows(needle.len()).any(|w| w == needle) {
        assert!(
            Instant::now() < deadline,
            "no {:?} in {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(got)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before {:?}", String::from_utf8_lossy(needle)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
}

#[test]
fn records_the_request_and_answers_json_on_a_kept_connection() {
    let mock = LlmMock::start(|r| {
        if r.path() == "/v1/chat/completions" {
            LlmReply::ok(OPENAI_COMPLETION)
        } else {
            LlmReply::json_with(429, &[("retry-after", "7")], OPENAI_429)
        }
    });
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}"#;
    let mut c = TestClient::connect(mock.addr);
    c.send(&post("/v1/chat/completions?api-version=1", body, ""));
    let res = c.read_response(false).expect("response");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.body, OPENAI_COMPLETION.as_bytes());

    let seen = mock.last();
    assert_eq!(seen.seq, 0);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path(), "/v1/chat/completions");
    assert_eq!(seen.query(), "api-version=1");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(seen.at("/model"), "gpt-4o-mini");
    assert_eq!(seen.at("/messages/0/content"), "Hello!");
    assert!(!seen.wants_stream());

    // The same connection serves the next request.
    c.send(&post("/v1/other", "{}", ""));
    let res = c.read_response(false).expect("response");
    assert_eq!(res.status, 429);
    assert_eq!(res.header("retry-after"), Some("7"));
    let err: Value = serde_json::from_slice(&res.body).expect("json");
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    assert_eq!(mock.request_count(), 2);
    assert_eq!(mock.connection_count(), 1);
    assert_eq!(mock.last().seq, 1);
}

#[test]
fn streams_events_as_chunks_then_ends_the_body() {
    let mock = LlmMock::start(|r| {
        assert!(r.wants_stream());
        LlmReply::sse_paced(openai_text_stream(true), Duration::from_millis(5))
    });
    let mut c = TestClient::connect(mock.addr);
    c.send(&post(
        "/v1/chat/completions",
        r#"{"model":"m","stream":true,"messages":[]}"#,
        "",
    ));
    let res = c.read_response(false).expect("response");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.body, joined(&openai_text_stream(true)));

    // The body decodes to the text, the usage chunk and [DONE].
    let data = data_lines(&res.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk json"))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, OPENAI_STREAM_TEXT);
    let usage = &chunks.last().expect("usage chunk")["usage"];
    let (p, co, t) = OPENAI_STREAM_USAGE;
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(p), Some(co))
    );
    assert_eq!(usage["total_tokens"].as_u64(), Some(t));

    // Kept alive after the last chunk.
    c.send(&post("/v1/chat/completions", r#"{"stream":true}"#, ""));
    assert_eq!(c.read_response(false).expect("second").status, 200);
    assert_eq!(mock.connection_count(), 1);
}

#[test]
fn a_held_stream_delivers_its_first_events_then_ends_on_release() {
    let mock = LlmMock::start(|_| {
        LlmReply::hold(
            anthropic_text_stream()[..4].to_vec(),
            anthropic_text_stream()[4..].to_vec(),
        )
    });
    let mut s = TcpStream::connect(mock.addr).expect("connect");
    s.write_all(&post("/v1/messages", r#"{"stream":true}"#, ""))
        .expect("send");
    let mut got = Vec::new();
    // The first events arrive while the rest is still held: written as
    // they come, not buffered to the end.
    read_until(&mut s, &mut got, br#""text": "Hello"}}"#);
    mock.wait_holding(1);
    assert_eq!(mock.released(), 0);
    mock.release();
    read_until(&mut s, &mut got, b"\r\n0\r\n\r\n");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(
        event_names(text.as_bytes()),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(mock.released(), 1);
    assert_eq!(mock.holding(), 0);
    assert_eq!(mock.peer_closed(), 0);
}

#[test]
fn a_held_stream_reports_that_its_peer_closed() {
    let mock = LlmMock::start(|_| LlmReply::hold(openai_text_stream(false)[..2].to_vec(), vec![]));
    let mut s = TcpStream::connect(mock.addr).expect("connect");
    s.write_all(&post("/v1/chat/completions", r#"{"stream":true}"#, ""))
        .expect("send");
    let mut got = Vec::new();
    read_until(&mut s, &mut got, b"\"content\":\"Hello\"");
    mock.wait_holding(1);
    drop(s);
    mock.wait_peer_closed(1);
    assert_eq!(mock.holding(), 0);
    assert_eq!(mock.released(), 0);
    support::wait_until("the connection ended", || mock.closed_count() == 1);
}

#[test]
fn a_cut_stream_ends_without_its_last_chunk() {
    let mock = LlmMock::start(|_| LlmReply::hold(gemini_text_stream()[..1].to_vec(), vec![]));
    let mut c = TestClient::connect(mock.addr);
    c.send(&post(
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        "{}",
        "",
    ));
    mock.wait_holding(1);
    assert!(mock.last().wants_stream());
    mock.cut();
    // The chunked body never ends: the client sees the connection close.
    assert!(c.read_response(false).is_none());
    assert_eq!(mock.cut_count(), 1);
    assert_eq!(mock.peer_closed(), 0);
}

#[test]
fn close_and_delay_replies() {
    let mock = LlmMock::start(|r| match r.path() {
        "/close" => LlmReply::Close,
        _ => LlmReply::delayed(Duration::from_secs(15), LlmReply::ok(ANTHROPIC_MESSAGE)),
    });
    let mut c = TestClient::connect(mock.addr);
    c.send(&post("/close", "{}", ""));
    assert!(c.read_response(false).is_none());

    // A delayed answer comes when released, long before its delay.
    let mut c = TestClient::connect(mock.addr);
    let started = Instant::now();
    c.send(&post("/v1/messages", "{}", "Connection: close\r\n"));
    mock.wait_requests(2);
    mock.release();
    let res = c.read_response(false).expect("response");
    assert_eq!(res.body, ANTHROPIC_MESSAGE.as_bytes());
    assert!(started.elapsed() < Duration::from_secs(10));
    // Connection: close was honoured.
    assert!(c.is_closed());
}

#[test]
fn a_stopped_mock_refuses_connections() {
    let mock = LlmMock::always(OPENAI_COMPLETION);
    let addr = mock.addr;
    mock.stop();
    assert!(TcpStream::connect(addr).is_err());
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("fixture is not JSON ({e}): {s}"))
}

/// Each `data:` of a stream, parsed (skipping OpenAI's `[DONE]`).
fn datas(events: &[Vec<u8>]) -> Vec<Value> {
    data_lines(&joined(events))
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| json(d))
        .collect()
}

#[test]
fn fixtures_parse_and_add_up() {
    for body in [
        OPENAI_COMPLETION,
        OPENAI_COMPLETION_TOOL_CALL,
        OPENAI_COMPLETION_CACHED,
        OPENAI_429,
        OPENAI_401,
        OPENAI_500,
        OPENAI_EMBEDDINGS,
        ANTHROPIC_MESSAGE,
        ANTHROPIC_MESSAGE_CACHE_WRITE,
        ANTHROPIC_MESSAGE_CACHE_READ,
        ANTHROPIC_MESSAGE_TOOL_USE,
        ANTHROPIC_404,
        ANTHROPIC_429,
        ANTHROPIC_529,
        ANTHROPIC_401,
        GEMINI_RESPONSE,
        GEMINI_RESPONSE_THOUGHTS,
        GEMINI_FUNCTION_CALL,
        GEMINI_429,
        GEMINI_400,
        GEMINI_503,
    ] {
        json(body);
    }
    // Totals add up where the provider states one.
    for body in [
        OPENAI_COMPLETION,
        OPENAI_COMPLETION_TOOL_CALL,
        OPENAI_COMPLETION_CACHED,
    ] {
        let u = &json(body)["usage"];
        assert_eq!(
            u["prompt_tokens"].as_u64().expect("prompt")
                + u["completion_tokens"].as_u64().expect("completion"),
            u["total_tokens"].as_u64().expect("total")
        );
    }
    let u = &json(GEMINI_RESPONSE_THOUGHTS)["usageMetadata"];
    assert_eq!(
        u["promptTokenCount"].as_u64().expect("p")
            + u["candidatesTokenCount"].as_u64().expect("c")
            + u["thoughtsTokenCount"].as_u64().expect("t"),
        u["totalTokenCount"].as_u64().expect("total")
    );
    assert_eq!(
        json(OPENAI_COMPLETION)["choices"][0]["message"]["content"],
        OPENAI_COMPLETION_TEXT
    );
    assert_eq!(
        json(ANTHROPIC_MESSAGE)["content"][0]["text"],
        ANTHROPIC_MESSAGE_TEXT
    );
    assert_eq!(
        json(GEMINI_RESPONSE)["candidates"][0]["content"]["parts"][0]["text"],
        GEMINI_RESPONSE_TEXT
    );

    // OpenAI tool stream: the argument fragments join into the arguments.
    for usage in [false, true] {
        let chunks = datas(&openai_tool_stream(usage));
        let args: String = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, OPENAI_TOOL_ARGUMENTS);
        json(&args);
        assert_eq!(
            chunks[1]["choices"][0]["delta"]["tool_calls"][0]["id"],
            OPENAI_TOOL_CALL_ID
        );
        // include_usage: every chunk has "usage": null but the last, whose
        // choices are empty.
        let last = chunks.last().expect("chunks");
        assert_eq!(last["usage"].is_object(), usage);
        if usage {
            assert_eq!(last["choices"], Value::Array(vec![]));
            assert!(
                chunks[..chunks.len() - 1]
                    .iter()
                    .all(|c| c["usage"].is_null()
                        && c.as_object().expect("obj").contains_key("usage"))
            );
        }
    }
    // Without include_usage there is no usage key at all.
    assert!(datas(&openai_text_stream(false))
        .iter()
        .all(|c| !c.as_object().expect("obj").contains_key("usage")));
    assert_eq!(datas(&openai_long_stream(50, "x", true)).len(), 53);

    // Anthropic streams: text and tool input join; usage input from
    // message_start, output from the last message_delta.
    for (events, text, usage) in [
        (
            anthropic_text_stream(),
            ANTHROPIC_STREAM_TEXT,
            ANTHROPIC_STREAM_USAGE,
        ),
        (
            anthropic_tool_stream(),
            ANTHROPIC_TOOL_STREAM_TEXT,
            ANTHROPIC_TOOL_STREAM_USAGE,
        ),
    ] {
        let d = datas(&events);
        let names = event_names(&joined(&events));
        assert_eq!(names.len(), d.len());
        for (n, v) in names.iter().zip(&d) {
            assert_eq!(v["type"], n.as_str(), "event name matches its data type");
        }
        let got: String = d
            .iter()
            .filter_map(|v| v["delta"]["text"].as_str())
            .collect();
        assert_eq!(got, text);
        let input = d[0]["message"]["usage"]["input_tokens"].as_u64();
        let output = d
            .iter()
            .rev()
            .find(|v| v["type"] == "message_delta")
            .and_then(|v| v["usage"]["output_tokens"].as_u64());
        assert_eq!((input, output), (Some(usage.0), Some(usage.1)));
    }
    let tool: String = datas(&anthropic_tool_stream())
        .iter()
        .filter_map(|v| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(tool, ANTHROPIC_TOOL_ARGUMENTS);
    json(&tool);
    let cut = datas(&anthropic_stream_then_overloaded());
    assert_eq!(
        cut.last().expect("error")["error"]["type"],
        "overloaded_error"
    );
    assert_eq!(datas(&anthropic_long_stream(50, "x")).len(), 55);

    // Gemini: whole responses per event, CRLF framed, usage on the last.
    let g = gemini_text_stream();
    assert!(g.iter().all(|e| e.ends_with(b"\r\n\r\n")));
    let d = datas(&g);
    let text: String = d
        .iter()
        .filter_map(|v| v["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, GEMINI_STREAM_TEXT);
    let u = &d.last().expect("last")["usageMetadata"];
    assert_eq!(
        (
            u["promptTokenCount"].as_u64(),
            u["candidatesTokenCount"].as_u64()
        ),
        (Some(GEMINI_STREAM_USAGE.0), Some(GEMINI_STREAM_USAGE.1))
    );
    assert_eq!(
        datas(&gemini_function_call_stream())[0]["candidates"][0]["content"]["parts"][0]
            ["functionCall"]["name"],
        "set_light_values"
    );
}

/// The SDK script against the mock directly: proves the script and the
/// mock's wire formats agree with the official SDKs before a gateway sits
/// between them.
#[test]
fn the_official_sdks_read_the_mock() {
    let Some(python) = sdk_python() else {
        eprintln!("SKIPPED: no python3 with the openai package (scripts/test.sh installs it)");
        return;
    };
    let mock = LlmMock::fixtures();
    let (out, code) = run_sdk_script(&python, &[format!("{}/v1", mock.url()), mock.url()]);
    eprintln!("ai_sdk.py step times: {}", out["seconds"]);
    assert_eq!(out["errors"], Value::Array(vec![]), "{out:#}");
    assert_eq!(code, 0);

    let o = &out["openai"];
    assert_eq!(o["chat"]["content"], OPENAI_COMPLETION_TEXT);
    assert_eq!(o["chat"]["usage"]["total_tokens"], 29);
    assert_eq!(o["stream"]["content"], OPENAI_STREAM_TEXT);
    assert_eq!(o["stream"]["usage"], Value::Null);
    assert_eq!(o["stream_usage"]["content"], OPENAI_STREAM_TEXT);
    assert_eq!(o["stream_usage"]["usage_chunks"], 1);
    assert_eq!(
        o["stream_usage"]["usage"]["prompt_tokens"],
        OPENAI_STREAM_USAGE.0
    );
    assert_eq!(o["tool"]["finish_reason"], "tool_calls");
    assert_eq!(o["tool"]["tool_calls"][0]["name"], "get_current_weather");
    assert_eq!(o["tool_stream"]["finish_reason"], "tool_calls");
    assert_eq!(o["tool_stream"]["tool_calls"][0]["id"], OPENAI_TOOL_CALL_ID);
    assert_eq!(
        o["tool_stream"]["tool_calls"][0]["arguments"],
        OPENAI_TOOL_ARGUMENTS
    );

    // What the SDKs sent.
    let sent = mock.requests();
    let chat: Vec<_> = sent
        .iter()
        .filter(|r| r.path() == "/v1/chat/completions")
        .collect();
    assert_eq!(chat.len(), 5);
    assert!(chat
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer sk-sdk")));
    assert_eq!(chat[1].at("/stream"), true);
    assert_eq!(chat[1].at("/stream_options"), &Value::Null);
    assert_eq!(chat[2].at("/stream_options/include_usage"), true);

    let a = &out["anthropic"];
    if a.get("skipped").is_some() {
        eprintln!("anthropic part skipped: {}", a["skipped"]);
        return;
    }
    assert_eq!(a["message"]["text"], ANTHROPIC_MESSAGE_TEXT);
    assert_eq!(a["stream"]["text"], ANTHROPIC_STREAM_TEXT);
    assert_eq!(
        a["stream"]["usage"]["output_tokens"],
        ANTHROPIC_STREAM_USAGE.1
    );
    assert_eq!(a["tool"]["stop_reason"], "tool_use");
    assert_eq!(a["tool"]["tool_uses"][0]["input"]["unit"], "celsius");
    assert_eq!(a["tool_stream"]["partial_json"], ANTHROPIC_TOOL_ARGUMENTS);
    assert_eq!(
        a["tool_stream"]["tool_uses"][0]["input"]["unit"],
        "fahrenheit"
    );
    let messages: Vec<_> = sent.iter().filter(|r| r.path() == "/v1/messages").collect();
    assert_eq!(messages.len(), 4);
    // Anthropic's SDK sends x-api-key before 2.x and a Bearer token since.
    for r in messages {
        let key = r.header("x-api-key").or_else(|| {
            r.header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
        });
        assert_eq!(key, Some("sk-sdk"), "{:?}", r.headers);
        assert!(r.header("anthropic-version").is_some(), "{:?}", r.headers);
    }
}
