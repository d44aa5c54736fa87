//! Provider wire examples for the AI gateway's tests, and helpers that frame
//! them as server-sent-event streams the mock provider ([`super::llm`])
//! writes one event per chunk.
//!
//! Each fixture follows the example its provider publishes in its API
//! reference or guide (URL above it): the same ids, models, field order and
//! token counts where the page gives them, so a test failure points at a
//! wire detail a real provider sends. Where a page elides events ("...") or
//! omits a field a real answer carries (usage on a tool answer), the gap is
//! filled in the page's own style and the comment says so. Bodies are kept
//! as text, not `json!`, so byte-for-byte passthrough can be asserted.

// --------------------------------------------------------------- framing

/// An OpenAI stream event: `data: {json}\n\n`.
pub fn openai_event(json: &str) -> Vec<u8> {
    format!("data: {json}\n\n").into_bytes()
}

/// The end of an OpenAI stream.
pub const OPENAI_DONE: &[u8] = b"data: [DONE]\n\n";

/// An Anthropic stream event: `event: NAME\ndata: {json}\n\n`.
pub fn anthropic_event(name: &str, json: &str) -> Vec<u8> {
    format!("event: {name}\ndata: {json}\n\n").into_bytes()
}

/// A Gemini `alt=sse` event. Google's front ends separate events with
/// CRLF pairs (`data: {json}\r\n\r\n`), unlike OpenAI and Anthropic: a
/// parser that only splits on `\n\n` never sees an event end.
pub fn gemini_event(json: &str) -> Vec<u8> {
    format!("data: {json}\r\n\r\n").into_bytes()
}

/// The events of a stream as one byte string (what a client reading the
/// whole body gets).
pub fn joined(events: &[Vec<u8>]) -> Vec<u8> {
    events.concat()
}

/// The `data:` payloads of an SSE body, in order, `[DONE]` included
/// (LF or CRLF line ends; `event:` lines and comments skipped).
pub fn data_lines(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d).to_string())
        .collect()
}

/// The `event:` names of an SSE body, in order.
pub fn event_names(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("event:"))
        .map(|d| d.trim().to_string())
        .collect()
}

// --------------------------------------------------------------- OpenAI

// https://platform.openai.com/docs/api-reference/chat/create ("Default"
// example response).
pub const OPENAI_COMPLETION: &str = r#"{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default"
}"#;
pub const OPENAI_COMPLETION_TEXT: &str = "Hello! How can I assist you today?";
/// prompt, completion, total of [`OPENAI_COMPLETION`].
pub const OPENAI_COMPLETION_USAGE: (u64, u64, u64) = (19, 10, 29);

// https://platform.openai.com/docs/api-reference/chat/create ("Functions"
// example response).
pub const OPENAI_COMPLETION_TOOL_CALL: &str = r#"{
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "created": 1699896916,
  "model": "gpt-4o-mini",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": null,
        "tool_calls": [
          {
            "id": "call_abc123",
            "type": "function",
            "function": {
              "name": "get_current_weather",
              "arguments": "{\n\"location\": \"Boston, MA\"\n}"
            }
          }
        ]
      },
      "logprobs": null,
      "finish_reason": "tool_calls"
    }
  ],
  "usage": {
    "prompt_tokens": 82,
    "completion_tokens": 17,
    "total_tokens": 99,
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  }
}"#;

// A usage block with cached and reasoning tokens, in the shape of the
// reference's usage object (https://platform.openai.com/docs/api-reference/chat/object,
// `usage.prompt_tokens_details.cached_tokens`,
// `usage.completion_tokens_details.reasoning_tokens`); numbers ours.
pub const OPENAI_COMPLETION_CACHED: &str = r#"{"id":"chatcmpl-cached1","object":"chat.completion","created":1741569952,"model":"o3-mini-2025-01-31","choices":[{"index":0,"message":{"role":"assistant","content":"4","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":256,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"}"#;

// The chunk object example of https://platform.openai.com/docs/api-reference/chat-streaming/streaming
// (id chatcmpl-123, fingerprint fp_44709d6fcb, role chunk with content "",
// finish chunk with an empty delta); the page elides the middle chunks
// ("....") — these spell "Hello! How can I assist you today?".
const OPENAI_CHUNK_TEXT: [&str; 5] = ["Hello", "!", " How can I", " assist you", " today?"];
pub const OPENAI_STREAM_TEXT: &str = "Hello! How can I assist you today?";
/// The usage chunk's prompt, completion and total tokens.
pub const OPENAI_STREAM_USAGE: (u64, u64, u64) = (19, 10, 29);

fn openai_chunk(choices: &str, usage: bool) -> Vec<u8> {
    let usage = if usage { r#","usage":null"# } else { "" };
    openai_event(&format!(
        r#"{{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{choices}]{usage}}}"#
    ))
}

/// The usage-only chunk `stream_options: {"include_usage": true}` adds
/// before `[DONE]`: `choices` empty, `usage` set (the reference's
/// `stream_options.include_usage`:
/// https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options).
pub fn openai_usage_chunk(prompt: u64, completion: u64, cached: u64) -> Vec<u8> {
    openai_event(&format!(
        r#"{{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{cached},"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}}}"#,
        prompt + completion
    ))
}

/// A text answer as an OpenAI stream. With `include_usage`, every chunk
/// has `"usage":null` and a usage chunk precedes `[DONE]`, as OpenAI sends
/// when the request asked for it.
pub fn openai_text_stream(include_usage: bool) -> Vec<Vec<u8>> {
    let mut ev = vec![openai_chunk(
        r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#,
        include_usage,
    )];
    for t in OPENAI_CHUNK_TEXT {
        ev.push(openai_chunk(
            &format!(
                r#"{{"index":0,"delta":{{"content":"{t}"}},"logprobs":null,"finish_reason":null}}"#
            ),
            include_usage,
        ));
    }
    ev.push(openai_chunk(
        r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}"#,
        include_usage,
    ));
    if include_usage {
        let (p, c, _) = OPENAI_STREAM_USAGE;
        ev.push(openai_usage_chunk(p, c, 0));
    }
    ev.push(OPENAI_DONE.to_vec());
    ev
}

/// `n` content chunks of `word` between the role and finish chunks (for
/// streams of a given length, e.g. the 50-chunk bench body).
pub fn openai_long_stream(n: usize, word: &str, include_usage: bool) -> Vec<Vec<u8>> {
    let mut ev = vec![openai_chunk(
        r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#,
        include_usage,
    )];
    for _ in 0..n {
        ev.push(openai_chunk(
            &format!(
                r#"{{"index":0,"delta":{{"content":"{word}"}},"logprobs":null,"finish_reason":null}}"#
            ),
            include_usage,
        ));
    }
    ev.push(openai_chunk(
        r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}"#,
        include_usage,
    ));
    if include_usage {
        ev.push(openai_usage_chunk(10, n as u64, 0));
    }
    ev.push(OPENAI_DONE.to_vec());
    ev
}

// The streamed tool call of https://platform.openai.com/docs/guides/function-calling#streaming
// ("Output delta.tool_calls": the id and name once, then argument
// fragments with the same index), wrapped in chunks as the reference's
// chunk object; the last chunk's finish_reason is tool_calls.
pub const OPENAI_TOOL_CALL_ID: &str = "call_DdmO9pD3xa9XTPNJ32zg2hcA";
pub const OPENAI_TOOL_NAME: &str = "get_weather";
const OPENAI_TOOL_FRAGMENTS: [&str; 7] = [
    r#"{\""#, "location", r#"\":\""#, "Paris", ",", " France", r#"\"}"#,
];
/// The fragments concatenated (JSON text).
pub const OPENAI_TOOL_ARGUMENTS: &str = r#"{"location":"Paris, France"}"#;

/// A streamed tool call (the function-calling guide's `get_weather`).
pub fn openai_tool_stream(include_usage: bool) -> Vec<Vec<u8>> {
    let mut ev = vec![
        openai_chunk(
            r#"{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}"#,
            include_usage,
        ),
        openai_chunk(
            &format!(
                r#"{{"index":0,"delta":{{"tool_calls":[{{"index":0,"id":"{OPENAI_TOOL_CALL_ID}","type":"function","function":{{"name":"{OPENAI_TOOL_NAME}","arguments":""}}}}]}},"logprobs":null,"finish_reason":null}}"#
            ),
            include_usage,
        ),
    ];
    for f in OPENAI_TOOL_FRAGMENTS {
        ev.push(openai_chunk(
            &format!(
                r#"{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":"{f}"}}}}]}},"logprobs":null,"finish_reason":null}}"#
            ),
            include_usage,
        ));
    }
    ev.push(openai_chunk(
        r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}"#,
        include_usage,
    ));
    if include_usage {
        ev.push(openai_usage_chunk(66, 17, 0));
    }
    ev.push(OPENAI_DONE.to_vec());
    ev
}

// 429 body of https://platform.openai.com/docs/guides/error-codes#api-errors
// ("Rate limit reached for requests"), in the error object's shape
// (message, type, param, code) of the API reference.
pub const OPENAI_429: &str = r#"{
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-abc123 on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        "type": "requests",
        "param": null,
        "code": "rate_limit_exceeded"
    }
}"#;

// 401 of https://platform.openai.com/docs/guides/error-codes#api-errors
// ("Invalid Authentication").
pub const OPENAI_401: &str = r#"{
    "error": {
        "message": "Incorrect API key provided: sk-abc123. You can find your API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }
}"#;

// 500 of the same page ("The server had an error while processing your
// request").
pub const OPENAI_500: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;

// The embeddings response of https://platform.openai.com/docs/api-reference/embeddings/create
// (vector shortened to three numbers, as the page does with "...").
pub const OPENAI_EMBEDDINGS: &str = r#"{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "embedding": [
        0.0023064255,
        -0.009327292,
        -0.0028842222
      ],
      "index": 0
    }
  ],
  "model": "text-embedding-ada-002",
  "usage": {
    "prompt_tokens": 8,
    "total_tokens": 8
  }
}"#;

// --------------------------------------------------------------- Anthropic

// https://docs.anthropic.com/en/api/messages (example response).
pub const ANTHROPIC_MESSAGE: &str = r#"{
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "type": "message",
  "role": "assistant",
  "model": "claude-sonnet-4-20250514",
  "content": [
    {
      "type": "text",
      "text": "Hi! My name is Claude."
    }
  ],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {
    "input_tokens": 2095,
    "output_tokens": 503
  }
}"#;
pub const ANTHROPIC_MESSAGE_TEXT: &str = "Hi! My name is Claude.";

// The usage of a cache write and a cache read, as the prompt caching
// guide reports them (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching,
// "Tracking cache performance": input_tokens are the tokens after the last
// cache breakpoint only). The gateway's prompt_tokens must be
// 21 + 188086 + 0 here, and 21 + 0 + 188086 for the read.
pub const ANTHROPIC_MESSAGE_CACHE_WRITE: &str = r#"{"id":"msg_01cachewrite","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Pride and Prejudice is about..."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":21,"cache_creation_input_tokens":188086,"cache_read_input_tokens":0,"output_tokens":393}}"#;
pub const ANTHROPIC_MESSAGE_CACHE_READ: &str = r#"{"id":"msg_01cacheread","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Pride and Prejudice is about..."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":21,"cache_creation_input_tokens":0,"cache_read_input_tokens":188086,"output_tokens":393}}"#;

// https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview
// (the get_weather answer with stop_reason "tool_use"; the page omits
// usage, filled in with numbers of ours).
pub const ANTHROPIC_MESSAGE_TOOL_USE: &str = r#"{
  "id": "msg_01Aq9w938a90dw8q",
  "type": "message",
  "model": "claude-opus-4-1-20250805",
  "stop_reason": "tool_use",
  "stop_sequence": null,
  "role": "assistant",
  "content": [
    {
      "type": "text",
      "text": "I'll check the current weather in San Francisco for you."
    },
    {
      "type": "tool_use",
      "id": "toolu_01A09q90qw90lq917835lq9",
      "name": "get_weather",
      "input": {"location": "San Francisco, CA", "unit": "celsius"}
    }
  ],
  "usage": {
    "input_tokens": 384,
    "output_tokens": 76
  }
}"#;

// "Basic streaming request" of https://docs.anthropic.com/en/docs/build-with-claude/streaming
// (spacing as on the page).
pub fn anthropic_text_stream() -> Vec<Vec<u8>> {
    vec![
        anthropic_event(
            "message_start",
            r#"{"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-1-20250805", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}"#,
        ),
        anthropic_event(
            "content_block_start",
            r#"{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}"#,
        ),
        anthropic_event("ping", r#"{"type": "ping"}"#),
        anthropic_event(
            "content_block_delta",
            r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}"#,
        ),
        anthropic_event(
            "content_block_delta",
            r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}"#,
        ),
        anthropic_event(
            "content_block_stop",
            r#"{"type": "content_block_stop", "index": 0}"#,
        ),
        anthropic_event(
            "message_delta",
            r#"{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}"#,
        ),
        anthropic_event("message_stop", r#"{"type": "message_stop"}"#),
    ]
}
pub const ANTHROPIC_STREAM_TEXT: &str = "Hello!";
/// Input (message_start) and output (the last message_delta) tokens.
pub const ANTHROPIC_STREAM_USAGE: (u64, u64) = (25, 15);

// "Streaming request with tool use" of
// https://docs.anthropic.com/en/docs/build-with-claude/streaming: a text
// block, then a tool_use block whose input arrives as input_json_delta
// fragments (the first one empty), stop_reason tool_use.
const ANTHROPIC_TOOL_TEXT: [&str; 13] = [
    "Okay",
    ",",
    " let",
    "'s",
    " check",
    " the",
    " weather",
    " for",
    " San",
    " Francisco",
    ",",
    " CA",
    ":",
];
const ANTHROPIC_TOOL_FRAGMENTS: [&str; 9] = [
    "",
    r#"{\"location\":"#,
    r#" \"San"#,
    " Francisc",
    "o,",
    r#" CA\""#,
    ", ",
    r#"\"unit\": \"fah"#,
    r#"renheit\"}"#,
];
pub const ANTHROPIC_TOOL_STREAM_TEXT: &str = "Okay, let's check the weather for San Francisco, CA:";
pub const ANTHROPIC_TOOL_ID: &str = "toolu_01T1x1fJ34qAmk2tNTrN7Up6";
/// The input_json_delta fragments concatenated.
pub const ANTHROPIC_TOOL_ARGUMENTS: &str =
    r#"{"location": "San Francisco, CA", "unit": "fahrenheit"}"#;
pub const ANTHROPIC_TOOL_STREAM_USAGE: (u64, u64) = (472, 89);

pub fn anthropic_tool_stream() -> Vec<Vec<u8>> {
    let mut ev = vec![
        anthropic_event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}"#,
        ),
        anthropic_event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        anthropic_event("ping", r#"{"type": "ping"}"#),
    ];
    for t in ANTHROPIC_TOOL_TEXT {
        ev.push(anthropic_event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{t}"}}}}"#
            ),
        ));
    }
    ev.push(anthropic_event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ));
    ev.push(anthropic_event(
        "content_block_start",
        &format!(
            r#"{{"type":"content_block_start","index":1,"content_block":{{"type":"tool_use","id":"{ANTHROPIC_TOOL_ID}","name":"get_weather","input":{{}}}}}}"#
        ),
    ));
    for f in ANTHROPIC_TOOL_FRAGMENTS {
        ev.push(anthropic_event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":1,"delta":{{"type":"input_json_delta","partial_json":"{f}"}}}}"#
            ),
        ));
    }
    ev.push(anthropic_event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#,
    ));
    ev.push(anthropic_event(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
    ));
    ev.push(anthropic_event(
        "message_stop",
        r#"{"type":"message_stop"}"#,
    ));
    ev
}

/// `n` text deltas of `word` in one block (the bench's 50-chunk body).
pub fn anthropic_long_stream(n: usize, word: &str) -> Vec<Vec<u8>> {
    let mut ev = vec![
        anthropic_event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-20250514","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}"#,
        ),
        anthropic_event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
    ];
    for _ in 0..n {
        ev.push(anthropic_event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{word}"}}}}"#
            ),
        ));
    }
    ev.push(anthropic_event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ));
    ev.push(anthropic_event(
        "message_delta",
        &format!(
            r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{n}}}}}"#
        ),
    ));
    ev.push(anthropic_event(
        "message_stop",
        r#"{"type":"message_stop"}"#,
    ));
    ev
}

// The `error` event of https://docs.anthropic.com/en/docs/build-with-claude/streaming#error-events
// ("we may occasionally send errors in the event stream... an
// overloaded_error"), which arrives after the 200 status.
pub fn anthropic_overloaded_event() -> Vec<u8> {
    anthropic_event(
        "error",
        r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
    )
}

/// The basic stream cut by an overloaded error after its first text delta.
pub fn anthropic_stream_then_overloaded() -> Vec<Vec<u8>> {
    let mut ev: Vec<Vec<u8>> = anthropic_text_stream().into_iter().take(4).collect();
    ev.push(anthropic_overloaded_event());
    ev
}

// Error shapes of https://docs.anthropic.com/en/api/errors ("Error
// shapes": type error, error.type, error.message, request_id). 429
// rate_limit_error comes with a retry-after header
// (https://docs.anthropic.com/en/api/rate-limits#response-headers); 529
// is overloaded_error.
pub const ANTHROPIC_404: &str = r#"{
  "type": "error",
  "error": {
    "type": "not_found_error",
    "message": "The requested resource could not be found."
  },
  "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"
}"#;
pub const ANTHROPIC_429: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fz"}"#;
pub const ANTHROPIC_529: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7G0"}"#;
pub const ANTHROPIC_401: &str = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CSHoEeqs5C35K2UUqR7G1"}"#;

// --------------------------------------------------------------- Gemini

// The response body of https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse
// as the text generation guide's REST example prints it
// (https://ai.google.dev/gemini-api/docs/text-generation): candidates[0]
// content with role "model", finishReason, usageMetadata, modelVersion,
// responseId.
pub const GEMINI_RESPONSE: &str = r#"{
  "candidates": [
    {
      "content": {
        "parts": [
          {
            "text": "AI learns patterns from data to make predictions or decisions without being explicitly programmed.\n"
          }
        ],
        "role": "model"
      },
      "finishReason": "STOP",
      "avgLogprobs": -0.1245335
    }
  ],
  "usageMetadata": {
    "promptTokenCount": 8,
    "candidatesTokenCount": 17,
    "totalTokenCount": 25,
    "promptTokensDetails": [
      {
        "modality": "TEXT",
        "tokenCount": 8
      }
    ],
    "candidatesTokensDetails": [
      {
        "modality": "TEXT",
        "tokenCount": 17
      }
    ]
  },
  "modelVersion": "gemini-2.0-flash",
  "responseId": "rH2aaKLCGILvgLUP4NaGuQk"
}"#;
pub const GEMINI_RESPONSE_TEXT: &str =
    "AI learns patterns from data to make predictions or decisions without being explicitly programmed.\n";

// usageMetadata with thinking and cached tokens (fields of
// https://ai.google.dev/api/generate-content#UsageMetadata:
// thoughtsTokenCount, cachedContentTokenCount; totalTokenCount = prompt +
// candidates + thoughts). Numbers ours.
pub const GEMINI_RESPONSE_THOUGHTS: &str = r#"{"candidates":[{"content":{"parts":[{"text":"42"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1100,"candidatesTokenCount":2,"totalTokenCount":1402,"cachedContentTokenCount":1024,"thoughtsTokenCount":300},"modelVersion":"gemini-2.5-flash","responseId":"thoughts1"}"#;

// The function call answer of https://ai.google.dev/gemini-api/docs/function-calling
// (set_light_values with args brightness and color_temp); usage ours.
pub const GEMINI_FUNCTION_CALL: &str = r#"{
  "candidates": [
    {
      "content": {
        "parts": [
          {
            "functionCall": {
              "name": "set_light_values",
              "args": {
                "brightness": 25,
                "color_temp": "warm"
              }
            }
          }
        ],
        "role": "model"
      },
      "finishReason": "STOP",
      "index": 0
    }
  ],
  "usageMetadata": {
    "promptTokenCount": 86,
    "candidatesTokenCount": 9,
    "totalTokenCount": 95
  },
  "modelVersion": "gemini-2.0-flash"
}"#;

// `streamGenerateContent?alt=sse` of https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
// (the REST example streams "Write a story about a magic backpack."):
// every event is a whole GenerateContentResponse; the last carries
// finishReason and the final usageMetadata; there is no [DONE].
pub fn gemini_text_stream() -> Vec<Vec<u8>> {
    vec![
        gemini_event(
            r#"{"candidates": [{"content": {"parts": [{"text": "Elara"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8},"modelVersion": "gemini-2.0-flash"}"#,
        ),
        gemini_event(
            r#"{"candidates": [{"content": {"parts": [{"text": " found the backpack"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8},"modelVersion": "gemini-2.0-flash"}"#,
        ),
        gemini_event(
            r#"{"candidates": [{"content": {"parts": [{"text": " in the attic."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 9,"totalTokenCount": 17,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 8}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 9}]},"modelVersion": "gemini-2.0-flash"}"#,
        ),
    ]
}
pub const GEMINI_STREAM_TEXT: &str = "Elara found the backpack in the attic.";
pub const GEMINI_STREAM_USAGE: (u64, u64) = (8, 9);

/// A streamed function call: Gemini sends the whole call in one event.
pub fn gemini_function_call_stream() -> Vec<Vec<u8>> {
    vec![gemini_event(
        r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "set_light_values","args": {"brightness": 25,"color_temp": "warm"}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 86,"candidatesTokenCount": 9,"totalTokenCount": 95},"modelVersion": "gemini-2.0-flash"}"#,
    )]
}

// 429 of https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
// (RESOURCE_EXHAUSTED), in the google.rpc.Status shape every Gemini error
// has ({"error":{"code","message","status"}}).
pub const GEMINI_429: &str = r#"{
  "error": {
    "code": 429,
    "message": "Resource has been exhausted (e.g. check quota).",
    "status": "RESOURCE_EXHAUSTED"
  }
}"#;
// 400 INVALID_ARGUMENT and 503 UNAVAILABLE of the same table.
pub const GEMINI_400: &str = r#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"foo\": Cannot find field.","status":"INVALID_ARGUMENT"}}"#;
pub const GEMINI_503: &str = r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#;
