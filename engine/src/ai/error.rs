//! Errors the AI front answers with: OpenAI's error envelope (and
//! Anthropic's, for the `/v1/messages` front), and the mapping of a
//! provider's error response to what the client gets.
//!
//! A provider's error is the gateway's problem more often than the
//! client's: a refused key (401/403) is the gateway's configuration, so the
//! client gets 502 `upstream_auth_error`, never the provider's words about
//! a key it never saw. Errors the client can act on (429, a bad request,
//! an unknown model) keep their status and the provider's message.
//! Anthropic's `overloaded_error` (HTTP 529, a status no OpenAI client
//! knows) becomes 503.

use serde::Serialize;
use serde_json::Value;

use super::{Invalid, Wire};

#[derive(Serialize)]
struct Body<'a> {
    error: Fields<'a>,
}

/// Field order as OpenAI writes it.
#[derive(Serialize)]
struct Fields<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// OpenAI error envelope: `{"error":{"message","type","param","code"}}`
/// (param/code null when None).
pub(crate) fn envelope(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Vec<u8> {
    let body = Body {
        error: Fields {
            message,
            kind,
            param,
            code,
        },
    };
    serde_json::to_vec(&body).expect("a struct of strings always serializes")
}

/// 400 body for a refused request: type `invalid_request_error`, param =
/// `inv.param` (null when the request as a whole is at fault).
pub(crate) fn invalid(inv: &Invalid) -> Vec<u8> {
    let param = (!inv.param.is_empty()).then_some(inv.param.as_str());
    envelope(&inv.message, "invalid_request_error", param, None)
}

/// Anthropic error body: `{"type":"error","error":{"type","message"}}`.
pub(crate) fn anthropic_envelope(message: &str, kind: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Inner<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Outer<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error: Inner<'a>,
    }
    let body = Outer {
        kind: "error",
        error: Inner { kind, message },
    };
    serde_json::to_vec(&body).expect("a struct of strings always serializes")
}

/// A provider's error response, for the client: status and OpenAI envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderError {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) kind: String,
    pub(crate) message: String,
}

/// What a provider's error JSON says, whichever wire.
#[derive(Debug, Default, PartialEq, Eq)]
struct Said {
    kind: Option<String>,
    message: Option<String>,
    code: Option<String>,
    param: Option<String>,
}

/// Reads OpenAI `{"error":{message,type,param,code}}`, Anthropic
/// `{"type":"error","error":{type,message}}` and Gemini
/// `{"error":{code,message,status}}` (also when Gemini wraps it in an
/// array, as its streaming endpoint does). The three share the `error`
/// object, so the wire only decides which name carries the kind.
fn said(wire: Wire, body: &[u8]) -> Said {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return Said::default();
    };
    if let Value::Array(items) = &mut v {
        v = items.first().cloned().unwrap_or(Value::Null);
    }
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    match v.get("error") {
        Some(Value::Object(e)) => {
            let kind = match wire {
                // Gemini's `status` ("RESOURCE_EXHAUSTED") is its kind; its
                // `code` is the HTTP status again.
                Wire::Gemini => text(e.get("status")).or_else(|| text(e.get("type"))),
                Wire::OpenAi | Wire::Anthropic => {
                    text(e.get("type")).or_else(|| text(e.get("status")))
                }
            };
            Said {
                kind,
                message: text(e.get("message")),
                code: text(e.get("code")),
                param: text(e.get("param")),
            }
        }
        // Some OpenAI-compatible servers answer `{"error":"text"}`.
        Some(Value::String(s)) => Said {
            message: Some(s.clone()),
            ..Said::default()
        },
        _ => Said {
            message: text(v.get("message")),
            ..Said::default()
        },
    }
}

/// Maps a provider error (its HTTP status and body, any wire) to the
/// client's answer: 429 stays 429 (`rate_limit_error`); Anthropic
/// `overloaded_error` (also HTTP 529) → 503; 400/404/413/422 keep their
/// status (`invalid_request_error` / `not_found_error`, the provider's
/// message kept); 401/403 → 502 `upstream_auth_error`; 500/502/503/504
/// keep; any other status → 502.
pub(crate) fn from_provider(wire: Wire, status: u16, body: &[u8]) -> ProviderError {
    let said = said(wire, body);
    let overloaded = status == 529 || said.kind.as_deref() == Some("overloaded_error");
    let provider_message = said
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("the provider answered HTTP {status}"));
    let (status, kind, message) = match status {
        _ if overloaded => (503, "overloaded_error".to_string(), provider_message),
        429 => (429, "rate_limit_error".to_string(), provider_message),
        400 | 413 | 422 => (
            status,
            "invalid_request_error".to_string(),
            provider_message,
        ),
        404 => (404, "not_found_error".to_string(), provider_message),
        // The client's key is not at fault, and the provider's words about
        // the gateway's key are not the client's business.
        401 | 403 => (
            502,
            "upstream_auth_error".to_string(),
            format!("the provider refused the gateway's credentials (HTTP {status})"),
        ),
        500 | 502 | 503 | 504 => (
            status,
            said.kind
                .clone()
                .unwrap_or_else(|| "server_error".to_string()),
            provider_message,
        ),
        _ => (
            502,
            said.kind
                .clone()
                .unwrap_or_else(|| "upstream_error".to_string()),
            provider_message,
        ),
    };
    // A provider's code and param only mean something on the errors whose
    // words are passed on.
    let passed = matches!(status, 400 | 404 | 413 | 422 | 429);
    let code = said.code.as_deref().filter(|_| passed);
    let param = said.param.as_deref().filter(|_| passed);
    let body = envelope(&message, &kind, param, code);
    ProviderError {
        status,
        body,
        kind,
        message,
    }
}

/// An error event that arrived inside a stream (Anthropic `error` event
/// data, OpenAI `{"error":..}` data, Gemini error object) → (kind, message).
pub(crate) fn stream_error(wire: Wire, data: &[u8]) -> (String, String) {
    let said = said(wire, data);
    (
        said.kind.unwrap_or_else(|| "server_error".to_string()),
        said.message
            .unwrap_or_else(|| "the provider's stream failed".to_string()),
    )
}

/// A stream's error object's `type` and `message` (the shape of
/// Anthropic's `error` event and of OpenAI's error chunk), with defaults
/// for what it leaves out.
pub(crate) fn kind_and_message(error: &Value) -> (&str, &str) {
    let text = |key| error.get(key).and_then(Value::as_str);
    (
        text("type").unwrap_or("api_error"),
        text("message").unwrap_or("the provider's stream failed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("our bodies are JSON")
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            envelope("no such model", "invalid_request_error", Some("model"), Some("model_not_found")),
            br#"{"error":{"message":"no such model","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#
        );
        assert_eq!(
            envelope("x", "server_error", None, None),
            br#"{"error":{"message":"x","type":"server_error","param":null,"code":null}}"#
        );
        assert_eq!(
            invalid(&Invalid::new("messages[1].role", "bad role")),
            br#"{"error":{"message":"bad role","type":"invalid_request_error","param":"messages[1].role","code":null}}"#
        );
        assert_eq!(
            json(&invalid(&Invalid::new("", "not JSON")))["error"]["param"],
            Value::Null
        );
        assert_eq!(
            anthropic_envelope("Overloaded", "overloaded_error"),
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        );
    }

    #[test]
    fn provider_errors() {
        // Bodies from the providers' error references.
        let openai_429 = br#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let openai_400 = br#"{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}"#;
        let openai_401 = br#"{"error":{"message":"Incorrect API key provided: sk-abc***","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let anthropic_529 =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let anthropic_404 =
            br#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}"#;
        let anthropic_500 =
            br#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#;
        let gemini_429 = br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
        let gemini_400 =
            br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
        let gemini_503 = br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#;
        #[rustfmt::skip]
        // (wire, status, body, client status, type, message, code)
        type Case<'a> = (Wire, u16, &'a [u8], u16, &'a str, &'a str, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (
                Wire::OpenAi,
                429,
                openai_429,
                429,
                "rate_limit_error",
                "Rate limit reached for gpt-4o",
                Some("rate_limit_exceeded"),
            ),
            (
                Wire::OpenAi,
                400,
                openai_400,
                400,
                "invalid_request_error",
                "Invalid value for 'temperature'",
                Some("invalid_value"),
            ),
            (
                Wire::OpenAi,
                401,
                openai_401,
                502,
                "upstream_auth_error",
                "the provider refused the gateway's credentials (HTTP 401)",
                None,
            ),
            (
                Wire::OpenAi,
                403,
                b"forbidden",
                502,
                "upstream_auth_error",
                "the provider refused the gateway's credentials (HTTP 403)",
                None,
            ),
            (
                Wire::Anthropic,
                529,
                anthropic_529,
                503,
                "overloaded_error",
                "Overloaded",
                None,
            ),
            (
                Wire::Anthropic,
                503,
                anthropic_529,
                503,
                "overloaded_error",
                "Overloaded",
                None,
            ),
            (
                Wire::Anthropic,
                404,
                anthropic_404,
                404,
                "not_found_error",
                "model: claude-x",
                None,
            ),
            (
                Wire::Anthropic,
                500,
                anthropic_500,
                500,
                "api_error",
                "Internal server error",
                None,
            ),
            (
                Wire::Gemini,
                429,
                gemini_429,
                429,
                "rate_limit_error",
                "Resource has been exhausted (e.g. check quota).",
                None,
            ),
            (
                Wire::Gemini,
                400,
                gemini_400,
                400,
                "invalid_request_error",
                "API key not valid.",
                None,
            ),
            (
                Wire::Gemini,
                503,
                gemini_503,
                503,
                "UNAVAILABLE",
                "The model is overloaded.",
                None,
            ),
            (
                Wire::OpenAi,
                413,
                b"",
                413,
                "invalid_request_error",
                "the provider answered HTTP 413",
                None,
            ),
            (
                Wire::OpenAi,
                422,
                br#"{"error":"bad field"}"#,
                422,
                "invalid_request_error",
                "bad field",
                None,
            ),
            (
                Wire::OpenAi,
                502,
                b"<html>bad gateway</html>",
                502,
                "server_error",
                "the provider answered HTTP 502",
                None,
            ),
            (
                Wire::OpenAi,
                504,
                b"",
                504,
                "server_error",
                "the provider answered HTTP 504",
                None,
            ),
            (
                Wire::OpenAi,
                507,
                b"",
                502,
                "upstream_error",
                "the provider answered HTTP 507",
                None,
            ),
            (
                Wire::OpenAi,
                402,
                br#"{"error":{"message":"billing","type":"insufficient_quota"}}"#,
                502,
                "insufficient_quota",
                "billing",
                None,
            ),
        ];
        for (wire, status, body, want_status, want_kind, want_message, want_code) in cases {
            let got = from_provider(*wire, *status, body);
            let what = format!("{wire:?} {status}");
            assert_eq!(got.status, *want_status, "{what}");
            assert_eq!(got.kind, *want_kind, "{what}");
            assert_eq!(got.message, *want_message, "{what}");
            let body = json(&got.body);
            assert_eq!(body["error"]["type"], *want_kind, "{what}");
            assert_eq!(body["error"]["message"], *want_message, "{what}");
            assert_eq!(body["error"]["code"].as_str(), *want_code, "{what}");
        }
        // The provider's param is passed on a bad request.
        let got = json(&from_provider(Wire::OpenAi, 400, openai_400).body);
        assert_eq!(got["error"]["param"], "temperature");
    }

    #[test]
    fn stream_errors() {
        #[rustfmt::skip]
        let cases: &[(Wire, &[u8], &str, &str)] = &[
            (Wire::Anthropic, br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, "overloaded_error", "Overloaded"),
            (Wire::OpenAi, br#"{"error":{"message":"The server had an error","type":"server_error"}}"#, "server_error", "The server had an error"),
            (Wire::Gemini, br#"{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}"#, "INTERNAL", "An internal error has occurred."),
            (Wire::Gemini, b"garbage", "server_error", "the provider's stream failed"),
        ];
        for (wire, data, kind, message) in cases {
            assert_eq!(
                stream_error(*wire, data),
                (kind.to_string(), message.to_string())
            );
        }
    }
}
