//! The AI gateway over real sockets: an OpenAI-compatible client in front,
//! mock providers behind that speak OpenAI, Anthropic and Gemini wire
//! formats (the fixtures follow the providers' API reference examples),
//! checking both what the client gets and what each provider received.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{on_both_drivers, Reply, Response, Seen, TestGateway, TestUpstream};

/// Anthropic's Messages answer (API reference, "Create a Message").
const ANTHROPIC_MESSAGE: &str = r#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"output_tokens":503,"cache_read_input_tokens":100,"cache_creation_input_tokens":10}}"#;

/// OpenAI's chat completion object (API reference).
const OPENAI_COMPLETION: &str = r#"{"id":"chatcmpl-123","object":"chat.completion","created":1677652288,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how may I assist you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

/// Gemini's generateContent answer.
const GEMINI_RESPONSE: &str = r#"{"candidates":[{"content":{"parts":[{"text":"Hi there"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":3,"totalTokenCount":11},"modelVersion":"gemini-2.0-flash"}"#;

/// Anthropic's streaming example: text, then a tool call whose input
/// comes in pieces, ping in between, cumulative usage.
const ANTHROPIC_STREAM: &[(&str, &str)] = &[
    (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-3-5-haiku-20241022","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2,"cache_read_input_tokens":30}}}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ),
    ("ping", r#"{"type": "ping"}"#),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay, let me check"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the weather."}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#,
    ),
    (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}"#,
    ),
    (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
    ),
    ("message_stop", r#"{"type":"message_stop"}"#),
];

/// A response head and body in one write.
fn json_reply(status: u16, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An event stream, chunked, one event per chunk.
fn sse_reply(events: &[String]) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for e in events {
        out.extend_from_slice(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn anthropic_events(events: &[(&str, &str)]) -> Vec<String> {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

/// A key file holding `key` (and a final newline, as editors write).
fn key_file(key: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ringway-ai-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("key");
    std::fs::write(&path, format!("{key}\n")).expect("write key");
    path.display().to_string()
}

/// A provider entry (and its upstream) of `kind` at `addr`.
fn provider(name: &str, kind: &str, addr: SocketAddr, keys: &str) -> String {
    format!(
        "[[upstreams]]\nname = \"{name}-up\"\nservers = [\"{addr}\"]\n\
         [[ai-providers]]\nname = \"{name}\"\ntype = \"{kind}\"\nupstream = \"{name}-up\"\nkeys = [{keys}]\n"
    )
}

/// The config of a gateway with `providers` and `models` and an AI route
/// at `/ai` (listeners and admin are the test support's).
fn gateway_toml(providers: &str, models: &str, route_extra: &str) -> String {
    format!(
        "workers = 1\n{providers}\n{models}\n[[routes]]\nname = \"llm\"\npath-prefix = \"/ai\"\n\
         {route_extra}\n[routes.ai]\nmessages = true\n"
    )
}

/// A gateway with `providers` and `models` and an AI route at `/ai`.
fn gateway(providers: &str, models: &str, route_extra: &str) -> TestGateway {
    TestGateway::start(
        &gateway_toml(providers, models, route_extra),
        support::driver(),
    )
}

fn post(gw: &TestGateway, path: &str, body: &Value, extra: &str) -> Response {
    let body = body.to_string();
    let mut c = gw.client();
    c.send(
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Authorization: Bearer client-secret\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    c.read_response(false).expect("response")
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn body_of(s: &Seen) -> Value {
    serde_json::from_slice(&s.body).expect("the provider got JSON")
}

/// The `data:` payloads of an event stream, `[DONE]` included.
fn data_events(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_string)
        .collect()
}

/// A sample of `/metrics` (0 when absent).
fn metric(gw: &TestGateway, name_and_labels: &str) -> f64 {
    let admin = gw.admin_addr();
    let mut s = TcpStream::connect(admin).expect("admin");
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until a sample of `/metrics` has a value (the log stage counts
/// a request just after its answer went out).
fn wait_metric(gw: &TestGateway, name_and_labels: &str, want: f64) {
    support::wait_until(&format!("{name_and_labels} = {want}"), || {
        metric(gw, name_and_labels) == want
    });
}

fn chat(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello"}
        ]
    })
}

#[test]
fn openai_requests_pass_through_with_the_pool_key() {
    on_both_drivers(openai_requests_pass_through_with_the_pool_key_body);
}

fn openai_requests_pass_through_with_the_pool_key_body() {
    let openai = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", OPENAI_COMPLETION)));
    let keys = format!("\"file:{}\"", key_file("sk-openai-1"));
    let gw = gateway(
        &provider("openai", "openai", openai.addr, &keys),
        "[[ai-models]]\nname = \"fast\"\ntargets = [{ provider = \"openai\", model = \"gpt-4o-mini\" }]",
        "",
    );
    let r = post(&gw, "/ai/v1/chat/completions", &chat("fast"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ringway-ai-provider"), Some("openai"));
    assert_eq!(r.header("x-ringway-ai-model"), Some("gpt-4o-mini"));
    assert_eq!(r.header("ringway-ai-dropped"), None);
    assert_eq!(
        json_of(&r),
        serde_json::from_str::<Value>(OPENAI_COMPLETION).expect("json")
    );
    let seen = openai.last();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(seen.header("authorization"), Some("Bearer sk-openai-1"));
    assert!(!seen
        .headers
        .iter()
        .any(|(_, v)| v.contains("client-secret")));
    let sent = body_of(&seen);
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["messages"], chat("fast")["messages"]);
    // Metered in the log stage, after the answer went out.
    for (kind, want) in [("input", 9.0), ("output", 12.0), ("cached", 4.0)] {
        wait_metric(
            &gw,
            &format!(
                "ringway_ai_tokens_total{{model=\"fast\",provider=\"openai\",type=\"{kind}\"}}"
            ),
            want,
        );
    }
}

#[test]
fn openai_chat_is_translated_to_anthropic_and_back() {
    on_both_drivers(openai_chat_is_translated_to_anthropic_and_back_body);
}

fn openai_chat_is_translated_to_anthropic_and_back_body() {
    let anthropic = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", ANTHROPIC_MESSAGE)));
    let gw = gateway(
        &provider("claude", "anthropic", anthropic.addr, "\"sk-ant-inline\""),
        "[[ai-models]]\nname = \"smart\"\nmax-tokens-default = 300\n\
         targets = [{ provider = \"claude\", model = \"claude-3-5-haiku-latest\" }]",
        "",
    );
    let mut req = chat("smart");
    req["seed"] = json!(7);
    let r = post(&gw, "/ai/v1/chat/completions", &req, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ringway-ai-dropped"), Some("seed"));
    let v = json_of(&r);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hi! My name is Claude."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // Cached tokens are inside the prompt's count, and the total adds up.
    assert_eq!(v["usage"]["prompt_tokens"], 2095 + 100 + 10);
    assert_eq!(v["usage"]["completion_tokens"], 503);
    assert_eq!(v["usage"]["total_tokens"], 2095 + 100 + 10 + 503);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 100);

    let seen = anthropic.last();
    assert_eq!(seen.target, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-inline"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);
    let sent = body_of(&seen);
    assert_eq!(sent["model"], "claude-3-5-haiku-latest");
    assert_eq!(sent["system"], "You are terse.");
    assert_eq!(sent["max_tokens"], 300);
    assert_eq!(sent["messages"][0]["role"], "user");
    assert!(sent.get("seed").is_none());
}

#[test]
fn anthropic_streams_become_openai_chunks_with_tool_calls() {
    on_both_drivers(anthropic_streams_become_openai_chunks_with_tool_calls_body);
}

fn anthropic_streams_become_openai_chunks_with_tool_calls_body() {
    let anthropic =
        TestUpstream::start(|_| Reply::Raw(sse_reply(&anthropic_events(ANTHROPIC_STREAM))));
    let gw = gateway(
        &provider("claude", "anthropic", anthropic.addr, "\"sk-ant\""),
        "[[ai-models]]\nname = \"smart\"\ntargets = [{ provider = \"claude\", model = \"claude-3-5-haiku-latest\" }]",
        "",
    );
    for include_usage in [false, true] {
        let mut req = chat("smart");
        req["stream"] = json!(true);
        if include_usage {
            req["stream_options"] = json!({"include_usage": true});
        }
        let r = post(&gw, "/ai/v1/chat/completions", &req, "");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        let events = data_events(&r.body);
        assert_eq!(
            events.last().map(String::as_str),
            Some("[DONE]"),
            "{events:?}"
        );
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).expect("chunk JSON"))
            .collect();
        assert!(chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Okay, let me check the weather.");
        let calls: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
            .flatten()
            .collect();
        assert_eq!(calls[0]["id"], "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let args: String = calls
            .iter()
            .filter_map(|c| c["function"]["arguments"].as_str())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).expect("arguments JSON"),
            json!({"location": "San Francisco, CA"})
        );
        let finish: Vec<&Value> = chunks
            .iter()
            .map(|c| &c["choices"][0]["finish_reason"])
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finish, [&json!("tool_calls")]);
        let usage: Vec<&Value> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
        if include_usage {
            assert_eq!(usage.len(), 1, "{chunks:?}");
            // The latest cumulative output count, never the sum.
            assert_eq!(usage[0]["usage"]["completion_tokens"], 89);
            assert_eq!(usage[0]["usage"]["prompt_tokens"], 472 + 30);
        } else {
            assert!(usage.is_empty(), "{chunks:?}");
        }
    }
    // Metered whether the client asked for usage or not (in the log
    // stage, after the stream's end went out).
    for (kind, want) in [("input", 2.0 * 502.0), ("output", 2.0 * 89.0)] {
        wait_metric(
            &gw,
            &format!(
                "ringway_ai_tokens_total{{model=\"smart\",provider=\"claude\",type=\"{kind}\"}}"
            ),
            want,
        );
    }
    assert_eq!(body_of(&anthropic.last())["stream"], true);
}

#[test]
fn openai_streams_are_metered_and_the_usage_chunk_kept_for_those_who_ask() {
    on_both_drivers(openai_streams_are_metered_body);
}

fn openai_streams_are_metered_body() {
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
        )
    };
    let events = vec![
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"content":"Hel"}"#, "null"),
        chunk(r#"{"content":"lo"}"#, "null"),
        chunk("{}", "\"stop\""),
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n".to_string(),
        "data: [DONE]\n\n".to_string(),
    ];
    let openai = TestUpstream::start(move |_| Reply::Raw(sse_reply(&events)));
    // The key file's directory is the test's own: the log goes beside it.
    let log = std::path::Path::new(&key_file("unused")).with_file_name("access.log");
    let gw = gateway(
        &format!(
            "{}\n[access-log]\nenabled = true\npath = '{}'\n",
            provider("openai", "openai", openai.addr, "\"sk-1\""),
            log.display()
        ),
        "[[ai-models]]\nname = \"fast\"\ntargets = [{ provider = \"openai\", model = \"gpt-4o-mini\" }]",
        "",
    );
    for include_usage in [false, true] {
        let mut req = chat("fast");
        req["stream"] = json!(true);
        if include_usage {
            req["stream_options"] = json!({"include_usage": true});
        }
        let r = post(&gw, "/ai/v1/chat/completions", &req, "");
        assert_eq!(r.status, 200, "{}", r.text());
        let events = data_events(&r.body);
        let with_usage = events
            .iter()
            .filter(|e| e.contains("\"prompt_tokens\""))
            .count();
        assert_eq!(with_usage, usize::from(include_usage), "{events:?}");
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        // The gateway asks for usage whatever the client did.
        assert_eq!(
            body_of(&openai.last())["stream_options"]["include_usage"],
            true
        );
    }
    wait_metric(
        &gw,
        "ringway_ai_tokens_total{model=\"fast\",provider=\"openai\",type=\"output\"}",
        4.0,
    );
    // Each stream's access log line names the model and the provider and
    // gives its tokens and time to first token.
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    support::wait_until("two access log lines", || lines().len() == 2);
    for line in lines() {
        assert_eq!(line["status"], 200, "{line}");
        assert_eq!(line["ai_model"], "fast", "{line}");
        assert_eq!(line["ai_provider"], "openai", "{line}");
        assert_eq!(
            (
                line["ai_tokens_in"].as_u64(),
                line["ai_tokens_out"].as_u64()
            ),
            (Some(9), Some(2)),
            "{line}"
        );
        assert_eq!(line["ai_tokens_cached"], 0, "{line}");
        let ttft = line["ai_ttft"].as_f64().expect("ai_ttft in seconds");
        let total = line["duration"].as_f64().expect("duration in seconds");
        assert!(ttft > 0.0 && ttft <= total, "{line}");
    }
}

#[test]
fn gemini_answers_are_translated() {
    on_both_drivers(gemini_answers_are_translated_body);
}

fn gemini_answers_are_translated_body() {
    let gemini = TestUpstream::start(|s| {
        if s.target.contains("streamGenerateContent") {
            let events = vec![
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":1,\"totalTokenCount\":9}}\r\n\r\n".to_string(),
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" there\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":3,\"totalTokenCount\":11}}\r\n\r\n".to_string(),
            ];
            Reply::Raw(sse_reply(&events))
        } else {
            Reply::Raw(json_reply(200, "", GEMINI_RESPONSE))
        }
    });
    let gw = gateway(
        &provider("gemini", "gemini", gemini.addr, "\"g-key\""),
        "[[ai-models]]\nname = \"flash\"\ntargets = [{ provider = \"gemini\", model = \"gemini-2.0-flash\" }]",
        "",
    );
    let r = post(&gw, "/ai/v1/chat/completions", &chat("flash"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json_of(&r);
    assert_eq!(v["choices"][0]["message"]["content"], "Hi there");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 11);
    let seen = gemini.last();
    assert_eq!(
        seen.target,
        "/v1beta/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(seen.header("x-goog-api-key"), Some("g-key"));
    let sent = body_of(&seen);
    assert_eq!(
        sent["systemInstruction"]["parts"][0]["text"],
        "You are terse."
    );
    assert_eq!(sent["contents"][0]["role"], "user");

    let mut req = chat("flash");
    req["stream"] = json!(true);
    let r = post(&gw, "/ai/v1/chat/completions", &req, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        gemini.last().target,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    let events = data_events(&r.body);
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "Hi there");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    // usageMetadata is cumulative: the stream counts its last one, once.
    for (kind, want) in [("input", 16.0), ("output", 6.0)] {
        wait_metric(
            &gw,
            &format!(
                "ringway_ai_tokens_total{{model=\"flash\",provider=\"gemini\",type=\"{kind}\"}}"
            ),
            want,
        );
    }
}

/// A model served by `claude` first, then `openai`.
const CHAT_MODEL: &str = "[[ai-models]]\nname = \"chat\"\ntargets = [\
     { provider = \"claude\", model = \"claude-3-5-haiku-latest\", priority = 0 },\
     { provider = \"openai\", model = \"gpt-4o-mini\", priority = 1 }]";

#[test]
fn a_rate_limited_key_rests_and_the_next_target_answers() {
    on_both_drivers(a_rate_limited_key_rests_body);
}

fn a_rate_limited_key_rests_body() {
    let limited = TestUpstream::start(|_| {
        Reply::Raw(json_reply(
            429,
            "Retry-After: 30\r\n",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
        ))
    });
    let backup = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", OPENAI_COMPLETION)));
    let providers = format!(
        "{}{}",
        provider("claude", "anthropic", limited.addr, "\"k1\", \"k2\""),
        provider("openai", "openai", backup.addr, "\"o1\"")
    );
    let gw = gateway(&providers, CHAT_MODEL, "");
    let r = post(&gw, "/ai/v1/chat/completions", &chat("chat"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ringway-ai-provider"), Some("openai"));
    // Both keys were tried once, then the next target.
    let keys: Vec<String> = limited
        .seen
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|s| s.header("x-api-key").map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_ne!(keys[0], keys[1]);
    // The keys rest for their Retry-After: the next request goes straight
    // to the next target.
    let r = post(&gw, "/ai/v1/chat/completions", &chat("chat"), "");
    assert_eq!(r.status, 200);
    assert_eq!(limited.request_count(), 2);
    assert_eq!(backup.request_count(), 2);
    wait_metric(
        &gw,
        "ringway_ai_provider_errors_total{provider=\"claude\",status=\"429\"}",
        2.0,
    );
    // Both requests left the first target: by 429s, then resting keys.
    wait_metric(
        &gw,
        "ringway_ai_fallbacks_total{model=\"chat\",provider=\"claude\"}",
        2.0,
    );
    // A reload keeps the rest of keys its providers still have.
    let toml = format!(
        "driver = \"{}\"\n{}\n[[listeners]]\naddress = \"127.0.0.1:0\"\n{}",
        support::driver(),
        gateway_toml(&providers, CHAT_MODEL, ""),
        support::process::ADMIN
    );
    gw.handle()
        .reload_source(&toml, ringway::Format::Toml)
        .expect("reload");
    let r = post(&gw, "/ai/v1/chat/completions", &chat("chat"), "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ringway-ai-provider"), Some("openai"));
    assert_eq!(limited.request_count(), 2, "a resting key was tried again");
}

#[test]
fn a_key_at_its_per_minute_limit_is_passed_over() {
    // The limit counts per minute of the gateway's clock: a run that
    // straddles a minute's end sees a third request let through, and runs
    // again (two ends within seconds cannot happen).
    for _ in 0..2 {
        if a_key_at_its_per_minute_limit_body() {
            return;
        }
    }
    panic!("a key took more requests a minute than its limit, twice");
}

/// Whether the run stayed within one minute.
fn a_key_at_its_per_minute_limit_body() -> bool {
    let limited = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", OPENAI_COMPLETION)));
    let other = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", OPENAI_COMPLETION)));
    let providers = format!(
        "{}{}",
        provider(
            "limited",
            "openai",
            limited.addr,
            "{ key = \"l1\", requests-per-minute = 2 }"
        ),
        provider("other", "openai", other.addr, "\"o1\"")
    );
    let gw = gateway(
        &providers,
        "[[ai-models]]\nname = \"chat\"\ntargets = [\
         { provider = \"limited\", model = \"m\", priority = 0 },\
         { provider = \"other\", model = \"m\", priority = 1 }]\n\
         [[ai-models]]\nname = \"only\"\ntargets = [{ provider = \"limited\", model = \"m\" }]",
        "",
    );
    let answered_by = |model: &str| {
        let r = post(&gw, "/ai/v1/chat/completions", &chat(model), "");
        (
            r.status,
            r.header("x-ringway-ai-provider").unwrap_or("").to_string(),
        )
    };
    let first: Vec<_> = (0..4).map(|_| answered_by("chat")).collect();
    let only = post(&gw, "/ai/v1/chat/completions", &chat("only"), "");
    if limited.request_count() > 2 {
        return false;
    }
    let want = |p: &str| (200, p.to_string());
    assert_eq!(
        first,
        [
            want("limited"),
            want("limited"),
            want("other"),
            want("other")
        ]
    );
    // With no other target, the client hears 429 in the OpenAI format.
    assert_eq!(only.status, 429, "{}", only.text());
    assert_eq!(json_of(&only)["error"]["type"], "rate_limit_error");
    true
}

#[test]
fn provider_errors_reach_the_client_in_the_openai_format() {
    on_both_drivers(provider_errors_reach_the_client_body);
}

fn provider_errors_reach_the_client_body() {
    let overloaded = TestUpstream::start(|s| {
        if body_of(s)["max_tokens"] == 1 {
            Reply::Raw(json_reply(
                400,
                "",
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too small"}}"#,
            ))
        } else {
            Reply::Raw(json_reply(
                529,
                "",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ))
        }
    });
    let gw = gateway(
        &provider("claude", "anthropic", overloaded.addr, "\"k\""),
        "[[ai-models]]\nname = \"smart\"\ntargets = [{ provider = \"claude\", model = \"c\" }]",
        "",
    );
    let r = post(&gw, "/ai/v1/chat/completions", &chat("smart"), "");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(json_of(&r)["error"]["message"], "Overloaded");
    // A request the provider refuses is not tried elsewhere.
    let mut req = chat("smart");
    req["max_tokens"] = json!(1);
    let before = overloaded.request_count();
    let r = post(&gw, "/ai/v1/chat/completions", &req, "");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(json_of(&r)["error"]["type"], "invalid_request_error");
    assert_eq!(overloaded.request_count(), before + 1);
}

#[test]
fn bad_requests_get_400_naming_the_field() {
    on_both_drivers(bad_requests_get_400_naming_the_field_body);
}

fn bad_requests_get_400_naming_the_field_body() {
    let openai = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", OPENAI_COMPLETION)));
    let gw = gateway(
        &provider("openai", "openai", openai.addr, "\"k\""),
        "[[ai-models]]\nname = \"fast\"\ntargets = [{ provider = \"openai\", model = \"m\" }]",
        "",
    );
    let mut c = gw.client();
    let bad = b"{\"model\": \"fast\", \"messages\": [";
    c.send(
        format!(
            "POST /ai/v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            bad.len()
        )
        .as_bytes(),
    );
    c.send(bad);
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 400);
    assert_eq!(json_of(&r)["error"]["type"], "invalid_request_error");
    // The connection stays usable.
    let r = {
        let body =
            json!({"model": "fast", "messages": [{"role": "wizard", "content": "x"}]}).to_string();
        c.send(
            format!(
                "POST /ai/v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        c.read_response(false).expect("response")
    };
    assert_eq!(r.status, 400);
    assert_eq!(json_of(&r)["error"]["param"], "messages[0].role");
    let r = post(&gw, "/ai/v1/chat/completions", &chat("nope"), "");
    assert_eq!(r.status, 404);
    assert_eq!(json_of(&r)["error"]["code"], "model_not_found");
    let r = post(&gw, "/ai/v1/nothing", &chat("fast"), "");
    assert_eq!(r.status, 404);
    assert_eq!(openai.request_count(), 0, "nothing reached the provider");
}

#[test]
fn models_are_listed_for_the_consumers_groups() {
    on_both_drivers(models_are_listed_for_the_consumers_groups_body);
}

fn models_are_listed_for_the_consumers_groups_body() {
    let openai = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", OPENAI_COMPLETION)));
    let toml = format!(
        "workers = 1\n{}\n\
         [[ai-models]]\nname = \"open\"\ntargets = [{{ provider = \"openai\", model = \"m\" }}]\n\
         [[ai-models]]\nname = \"premium\"\nallow-groups = [\"pro\"]\ntargets = [{{ provider = \"openai\", model = \"m2\" }}]\n\
         [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\n\
         [[consumers]]\nname = \"alice\"\ngroups = [\"pro\"]\napi-keys = [\"plain:alice-key-1\"]\n\
         [[consumers]]\nname = \"bob\"\napi-keys = [\"plain:bob-key-12\"]\n\
         [[routes]]\nname = \"llm\"\npath-prefix = \"/ai\"\nauth = [\"keys\"]\nconsumer-metrics = true\n[routes.ai]\n",
        provider("openai", "openai", openai.addr, "\"k\"")
    );
    let gw = TestGateway::start(&toml, support::driver());
    let list = |key: &str| {
        let mut c = gw.client();
        c.send(
            format!("GET /ai/v1/models HTTP/1.1\r\nHost: t\r\nX-Api-Key: {key}\r\n\r\n").as_bytes(),
        );
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 200, "{}", r.text());
        json_of(&r)["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(list("alice-key-1"), ["open", "premium"]);
    assert_eq!(list("bob-key-12"), ["open"]);
    let r = post(
        &gw,
        "/ai/v1/chat/completions",
        &chat("premium"),
        "X-Api-Key: bob-key-12\r\n",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // The client's credentials never reach the provider.
    let r = post(
        &gw,
        "/ai/v1/chat/completions",
        &chat("premium"),
        "X-Api-Key: alice-key-1\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = openai.last();
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.header("authorization"), Some("Bearer k"));
    // Tokens per consumer, on a route with consumer-metrics: alice's
    // answer, none for bob (refused).
    let tokens = |consumer: &str, kind: &str| {
        format!("ringway_ai_consumer_tokens_total{{route=\"llm\",consumer=\"{consumer}\",type=\"{kind}\"}}")
    };
    wait_metric(&gw, &tokens("alice", "input"), 9.0);
    wait_metric(&gw, &tokens("alice", "output"), 12.0);
    assert_eq!(metric(&gw, &tokens("bob", "input")), 0.0);
}

#[test]
fn the_anthropic_front_answers_in_anthropic_format() {
    on_both_drivers(the_anthropic_front_answers_in_anthropic_format_body);
}

fn the_anthropic_front_answers_in_anthropic_format_body() {
    let openai = TestUpstream::start(|_| Reply::Raw(json_reply(200, "", OPENAI_COMPLETION)));
    let gw = gateway(
        &provider("openai", "openai", openai.addr, "\"k\""),
        "[[ai-models]]\nname = \"fast\"\ntargets = [{ provider = \"openai\", model = \"gpt-4o-mini\" }]",
        "",
    );
    let req = json!({
        "model": "fast",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}]
    });
    let r = post(&gw, "/ai/v1/messages", &req, "");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json_of(&r);
    assert_eq!(v["type"], "message");
    assert_eq!(
        v["content"][0]["text"],
        "Hello there, how may I assist you today?"
    );
    assert_eq!(v["stop_reason"], "end_turn");
    let sent = body_of(&openai.last());
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], "Hello");
}

#[test]
fn an_error_after_the_first_byte_ends_the_stream_cleanly() {
    on_both_drivers(an_error_after_the_first_byte_body);
}

fn an_error_after_the_first_byte_body() {
    let mut events = anthropic_events(&ANTHROPIC_STREAM[..4]);
    events.push(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
            .to_string(),
    );
    let anthropic = TestUpstream::start(move |_| Reply::Raw(sse_reply(&events)));
    let gw = gateway(
        &provider("claude", "anthropic", anthropic.addr, "\"k\""),
        "[[ai-models]]\nname = \"smart\"\ntargets = [{ provider = \"claude\", model = \"c\" }]",
        "",
    );
    let mut req = chat("smart");
    req["stream"] = json!(true);
    let r = post(&gw, "/ai/v1/chat/completions", &req, "");
    assert_eq!(r.status, 200);
    let events = data_events(&r.body);
    assert!(
        events
            .iter()
            .any(|e| e.contains("\"error\"") && e.contains("Overloaded")),
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    // Framing that breaks in the provider's first write, with its head:
    // the client still gets a whole head, an error event and the end.
    let mut broken = sse_reply(&anthropic_events(&ANTHROPIC_STREAM[..2]));
    broken.truncate(broken.len() - b"0\r\n\r\n".len());
    broken.extend_from_slice(b"zz\r\n");
    let anthropic = TestUpstream::start(move |_| Reply::Raw(broken.clone()));
    let gw = gateway(
        &provider("claude", "anthropic", anthropic.addr, "\"k\""),
        "[[ai-models]]\nname = \"smart\"\ntargets = [{ provider = \"claude\", model = \"c\" }]",
        "",
    );
    let r = post(&gw, "/ai/v1/chat/completions", &req, "");
    assert_eq!(r.status, 200);
    let events = data_events(&r.body);
    assert!(events.iter().any(|e| e.contains("broke off")), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[test]
fn a_client_that_leaves_mid_stream_cancels_the_provider_request() {
    on_both_drivers(a_client_that_leaves_mid_stream_body);
}

fn a_client_that_leaves_mid_stream_body() {
    // The provider sends the first events, then goes on generating a
    // token every 10 ms (for at most 10 s) until its peer, the gateway,
    // drops the connection: a write then fails.
    let closed = Arc::new(AtomicUsize::new(0));
    let seen_close = closed.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 65536];
        let _ = s.read(&mut buf);
        let mut head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for e in anthropic_events(&ANTHROPIC_STREAM[..4]) {
            head.extend_from_slice(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
        }
        s.write_all(&head).expect("write");
        let token = anthropic_events(&[(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" more"}}"#,
        )])
        .remove(0);
        let chunk = format!("{:x}\r\n{token}\r\n", token.len());
        for _ in 0..1000 {
            std::thread::sleep(Duration::from_millis(10));
            if s.write_all(chunk.as_bytes()).is_err() {
                seen_close.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    });
    let gw = gateway(
        &provider("claude", "anthropic", addr, "\"k\""),
        "[[ai-models]]\nname = \"smart\"\ntargets = [{ provider = \"claude\", model = \"c\" }]",
        "",
    );
    let mut req = chat("smart");
    req["stream"] = json!(true);
    let body = req.to_string();
    let mut c = TcpStream::connect(gw.addr).expect("connect");
    c.write_all(
        format!(
            "POST /ai/v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .expect("send");
    // Read until the first text arrives, then leave.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    while !String::from_utf8_lossy(&got).contains("Okay, let me check") {
        let n = c.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    drop(c);
    support::wait_until("the provider connection closed", || {
        closed.load(Ordering::SeqCst) == 1
    });
    // The usage seen so far (message_start's input) is recorded.
    wait_metric(
        &gw,
        "ringway_ai_tokens_total{model=\"smart\",provider=\"claude\",type=\"input\"}",
        502.0,
    );
}

/// The official `openai` Python SDK (and Anthropic's, on the Anthropic
/// front) against the gateway in front of a mock Anthropic provider: chat,
/// streaming with and without usage, and tools, streamed and not.
#[test]
fn the_official_sdks_work_through_the_gateway() {
    use support::llm::{run_sdk_script, sdk_python, LlmMock};
    use support::llm_fixtures::*;
    let Some(python) = sdk_python() else {
        eprintln!("SKIPPED: no python3 with the openai package (scripts/test.sh installs it)");
        return;
    };
    let mock = LlmMock::fixtures();
    let gw = gateway(
        &provider("claude", "anthropic", mock.addr, "\"sk-ant-pool\""),
        "[[ai-models]]\nname = \"chat\"\ntargets = [{ provider = \"claude\", model = \"claude-sonnet-4-5\" }]",
        "",
    );
    let base = format!("http://{}/ai", gw.addr);
    let (out, code) = run_sdk_script(&python, &[format!("{base}/v1"), base.clone()]);
    assert_eq!(out["errors"], json!([]), "{out:#}");
    assert_eq!(code, 0);
    let o = &out["openai"];
    assert_eq!(o["chat"]["content"], ANTHROPIC_MESSAGE_TEXT);
    assert_eq!(o["chat"]["finish_reason"], "stop");
    let u = &o["chat"]["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(
            u["prompt_tokens"].as_u64().expect("prompt")
                + u["completion_tokens"].as_u64().expect("completion")
        )
    );
    assert_eq!(o["stream"]["content"], ANTHROPIC_STREAM_TEXT);
    assert_eq!(o["stream"]["usage"], Value::Null);
    assert_eq!(o["stream"]["usage_chunks"], 0);
    assert_eq!(o["stream_usage"]["content"], ANTHROPIC_STREAM_TEXT);
    assert_eq!(o["stream_usage"]["usage_chunks"], 1);
    assert_eq!(
        o["stream_usage"]["usage"]["prompt_tokens"],
        ANTHROPIC_STREAM_USAGE.0
    );
    assert_eq!(
        o["stream_usage"]["usage"]["completion_tokens"],
        ANTHROPIC_STREAM_USAGE.1
    );
    assert_eq!(o["tool"]["finish_reason"], "tool_calls");
    assert_eq!(o["tool"]["tool_calls"][0]["name"], "get_weather");
    assert_eq!(o["tool_stream"]["finish_reason"], "tool_calls");
    assert_eq!(o["tool_stream"]["tool_calls"][0]["id"], ANTHROPIC_TOOL_ID);
    assert_eq!(
        serde_json::from_str::<Value>(
            o["tool_stream"]["tool_calls"][0]["arguments"]
                .as_str()
                .expect("text")
        )
        .expect("arguments JSON"),
        serde_json::from_str::<Value>(ANTHROPIC_TOOL_ARGUMENTS).expect("fixture JSON")
    );
    // Every provider request carried the pool's key, never the SDK's.
    for r in mock.requests() {
        assert_eq!(
            r.header("x-api-key"),
            Some("sk-ant-pool"),
            "{:?}",
            r.headers
        );
        assert_eq!(r.header("authorization"), None);
    }
    let a = &out["anthropic"];
    if a.get("skipped").is_some() {
        eprintln!("anthropic part skipped: {}", a["skipped"]);
        return;
    }
    assert_eq!(a["message"]["text"], ANTHROPIC_MESSAGE_TEXT);
    assert_eq!(a["stream"]["text"], ANTHROPIC_STREAM_TEXT);
    assert_eq!(a["tool"]["stop_reason"], "tool_use");
    assert_eq!(a["tool_stream"]["stop_reason"], "tool_use");
}

#[test]
fn a_failing_provider_falls_back_and_embeddings_go_to_openai_format_providers() {
    on_both_drivers(a_failing_provider_falls_back_body);
}

fn a_failing_provider_falls_back_body() {
    let broken = TestUpstream::start(|_| {
        Reply::Raw(json_reply(
            500,
            "",
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        ))
    });
    let embeddings = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0093]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    let working = TestUpstream::start(move |s| {
        if s.target.ends_with("/embeddings") {
            Reply::Raw(json_reply(200, "", embeddings))
        } else {
            Reply::Raw(json_reply(200, "", OPENAI_COMPLETION))
        }
    });
    let providers = format!(
        "{}{}",
        provider("first", "openai", broken.addr, "\"k1\""),
        provider("second", "openai-compatible", working.addr, "")
    );
    let gw = gateway(
        &providers,
        "[[ai-models]]\nname = \"chat\"\ntargets = [\
         { provider = \"first\", model = \"m1\", priority = 0 },\
         { provider = \"second\", model = \"m2\", priority = 1 }]\n\
         [[ai-models]]\nname = \"embed\"\ntargets = [{ provider = \"second\", model = \"text-embedding-3-small\" }]",
        "",
    );
    let r = post(&gw, "/ai/v1/chat/completions", &chat("chat"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ringway-ai-provider"), Some("second"));
    assert_eq!(broken.request_count(), 1);
    // A provider without keys gets no credential at all.
    assert_eq!(working.last().header("authorization"), None);
    wait_metric(
        &gw,
        "ringway_ai_provider_errors_total{provider=\"first\",status=\"500\"}",
        1.0,
    );

    let r = post(
        &gw,
        "/ai/v1/embeddings",
        &json!({"model": "embed", "input": "The food was delicious"}),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_of(&r)["data"][0]["embedding"][0], 0.0023);
    let seen = working.last();
    assert_eq!(seen.target, "/v1/embeddings");
    assert_eq!(body_of(&seen)["model"], "text-embedding-3-small");
    wait_metric(
        &gw,
        "ringway_ai_tokens_total{model=\"embed\",provider=\"second\",type=\"input\"}",
        8.0,
    );
}

#[test]
fn ringway_ai_models_lists_targets_in_the_order_they_are_tried() {
    let dir = std::env::temp_dir().join(format!("ringway-ai-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("ai.toml");
    std::fs::write(
        &file,
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n\
         [[routes]]\nname = \"ai\"\npath-prefix = \"/ai/\"\n[routes.ai]\nmodels = [\"chat\"]\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"127.0.0.1:9\"]\n\
         [[ai-providers]]\nname = \"a\"\ntype = \"anthropic\"\nupstream = \"up\"\nkeys = [\"env:NOT_READ_HERE\"]\n\
         [[ai-providers]]\nname = \"o\"\ntype = \"openai\"\nupstream = \"up\"\nkeys = [\"env:NOT_READ_HERE\"]\n\
         [[ai-models]]\nname = \"chat\"\nallow-groups = []\ntargets = [\
         { provider = \"a\", model = \"claude\", priority = 2 }, { provider = \"o\", model = \"gpt\", priority = 1 }]\n",
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args(["ai", "models", "--json", "-c"])
        .arg(&file)
        .output()
        .expect("run ringway ai models");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let targets = &v["models"][0]["targets"];
    assert_eq!(v["models"][0]["name"], "chat");
    assert_eq!(targets[0]["provider"], "o");
    assert_eq!(targets[0]["model"], "gpt");
    assert_eq!(targets[1]["type"], "anthropic");
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args(["ai", "models", "-c"])
        .arg(&file)
        .output()
        .expect("run ringway ai models");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("chat  strategy=fallback"), "{text}");
}
