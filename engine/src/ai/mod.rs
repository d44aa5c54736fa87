//! The AI gateway's concepts: the wire formats of LLM providers and the
//! translation between them, as pure functions over bytes (no I/O, no
//! runtime), so each mapping is tested alone.
//!
//! Clients speak OpenAI's chat completions (`openai`), or Anthropic's
//! Messages on the optional Anthropic-compatible front; providers speak
//! OpenAI (passthrough: the body is rewritten only where it must be),
//! Anthropic Messages (`anthropic`) or Gemini `generateContent`
//! (`gemini`). A request is parsed once into [`Chat`] (an OpenAI chat
//! request as a JSON object) and written once in the provider's format;
//! a response is translated whole (non-streaming) or event by event as
//! its bytes arrive ([`stream::Translator`]), never gathered.
//!
//! Usage is always in OpenAI's terms ([`Usage`]): prompt tokens include
//! cached ones, whatever the provider reports apart.

pub(crate) mod anthropic;
pub(crate) mod error;
pub(crate) mod gemini;
pub(crate) mod openai;
pub(crate) mod provider;
pub(crate) mod sse;
pub(crate) mod stream;

use std::borrow::Cow;

use serde_json::{Map, Value};

/// A provider's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// OpenAI chat completions (OpenAI and every OpenAI-compatible server).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
}

/// Token usage of one request, in OpenAI's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Prompt tokens, cached ones included (`prompt_tokens`).
    pub(crate) input: u64,
    /// Completion tokens, reasoning ones included (`completion_tokens`).
    pub(crate) output: u64,
    /// Prompt tokens read from the provider's cache (`cached_tokens`).
    pub(crate) cached: u64,
    /// Completion tokens spent reasoning (`reasoning_tokens`).
    pub(crate) reasoning: u64,
}

impl Usage {
    pub(crate) fn total(&self) -> u64 {
        self.input + self.output
    }

    /// The counts in `TOKEN_TYPES` order (input, output, cached,
    /// reasoning), as the metrics keep them.
    pub(crate) fn counts(&self) -> [u64; 4] {
        [self.input, self.output, self.cached, self.reasoning]
    }
}

/// A client's chat request in OpenAI form, parsed once and checked
/// ([`openai::parse_chat`], or [`anthropic::chat_from_messages`] for the
/// Anthropic-compatible front).
#[derive(Debug, Clone)]
pub(crate) struct Chat {
    /// The whole request object, as the client sent it (OpenAI form).
    pub(crate) body: Map<String, Value>,
    /// `model`: the name the client asked for (a configured model name).
    pub(crate) model: String,
    /// `stream`: the answer is a stream of server-sent events.
    pub(crate) stream: bool,
    /// `stream_options.include_usage`: the client wants the usage chunk.
    pub(crate) include_usage: bool,
}

/// A request written for a provider.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    /// The JSON body to send.
    pub(crate) body: Vec<u8>,
    /// Request fields the provider does not support, left out (the
    /// client learns them in `ringway-ai-dropped`), in request order.
    pub(crate) dropped: Vec<Cow<'static, str>>,
}

/// Lists request field `name` among those left out, once: `known` names
/// as they are; another by its own name when it is a plain field name
/// (ASCII letters, digits, `_`, `-`, `.`; at most 64 bytes), else as
/// `other`, since the list goes in a header and a JSON key may hold any
/// character.
pub(crate) fn note_dropped(
    dropped: &mut Vec<Cow<'static, str>>,
    known: &[&'static str],
    name: &str,
) {
    if dropped.iter().any(|d| d == name) {
        return;
    }
    let plain = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    let listed = match known.iter().find(|k| **k == name) {
        Some(k) => Cow::Borrowed(*k),
        None if plain(name) => Cow::Owned(name.to_string()),
        None => Cow::Borrowed("other"),
    };
    if !dropped.contains(&listed) {
        dropped.push(listed);
    }
}

/// A client request the gateway refuses (400, OpenAI error envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// The offending field as a JSON path (`messages[2].tool_calls[0].function.arguments`).
    pub(crate) param: String,
    pub(crate) message: String,
}

impl Invalid {
    pub(crate) fn new(param: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// A provider response the gateway could not read (502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable(pub(crate) String);

/// A non-streaming answer translated for the client.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The JSON body for the client.
    pub(crate) body: Vec<u8>,
    pub(crate) usage: Usage,
}
