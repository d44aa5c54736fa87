//! The body filter stage: what may change a response body on its way to
//! the client: an AI provider's event stream translated for the client,
//! or a body compressed (`proxy::compress`).
//!
//! A filter is an enum, not a boxed trait object, so choosing one costs no
//! allocation; `None`, the common case, is one branch (the AI translator,
//! a few hundred bytes of state, is boxed once per streamed answer). A
//! filter may have more to say when the body ends ([`end`]): the
//! translator's closing events. When a filter is
//! active the body's length is no longer known ahead: the answer goes out
//! chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use crate::ai::stream::{Events, Translator};
use crate::ai::{error as ai_error, sse, Usage};
use crate::http::chunked::write_chunk_header;
use crate::http::coding::Encoder;
use crate::worker::hooks::BodyHook;

/// What the body filter stage does to one response body.
#[derive(Default)]
pub(crate) enum BodyFilter {
    /// The body passes unchanged (and keeps its framing).
    #[default]
    None,
    /// A test hook rewrites each piece.
    Hook(Arc<BodyHook>),
    /// An AI provider's event stream, translated for the client.
    Ai(Box<AiStream>),
    /// A body compressed on its way out.
    Compress(Box<Encoder>),
}

/// An AI answer's stream on its way to the client: the translator, and
/// when the first token went out.
pub(crate) struct AiStream {
    translator: Translator,
    pub(crate) first_token: Option<Instant>,
}

impl AiStream {
    pub(crate) fn new(translator: Translator) -> AiStream {
        AiStream {
            translator,
            first_token: None,
        }
    }

    fn apply(&mut self, data: &[u8], out: &mut BytesMut) {
        self.translator.feed(data, out);
        if self.first_token.is_none() && self.translator.started() {
            self.first_token = Some(Instant::now());
        }
    }

    pub(crate) fn usage(&self) -> Usage {
        self.translator.usage()
    }

    /// The provider's stream broke off: an error event in the client's
    /// format, then the stream's end.
    pub(crate) fn broken(&mut self, anthropic: bool, out: &mut BytesMut) {
        let message = "the provider's stream broke off";
        if anthropic {
            let body = ai_error::anthropic_envelope(message, "api_error");
            sse::write_event(out, "error", &body);
        } else {
            sse::write_data(out, &ai_error::envelope(message, "api_error", None, None));
            self.translator.finish(out);
        }
    }
}

impl BodyFilter {
    pub(crate) fn is_active(&self) -> bool {
        !matches!(self, BodyFilter::None)
    }

    /// Appends the filtered form of `data`, a piece of payload, to `out`.
    pub(crate) fn apply(&mut self, data: &[u8], out: &mut BytesMut) {
        match self {
            BodyFilter::None => out.extend_from_slice(data),
            BodyFilter::Hook(f) => f(data, out),
            BodyFilter::Ai(s) => s.apply(data, out),
            BodyFilter::Compress(e) if !data.is_empty() => e.push(data, out),
            BodyFilter::Compress(_) => {}
        }
    }

    /// The body ended: what the filter still has to say.
    fn finish(&mut self, out: &mut BytesMut) {
        match std::mem::take(self) {
            BodyFilter::Ai(mut s) => {
                s.translator.finish(out);
                // The caller reads the usage and first token afterwards.
                *self = BodyFilter::Ai(s);
            }
            BodyFilter::Compress(e) => e.finish(out),
            other => *self = other,
        }
    }
}

/// Filters `data` and frames the result as one chunk (or raw bytes when
/// the client reads until close), appending to `out`. `filtered` holds the
/// filtered bytes between the two steps.
pub(crate) fn frame(
    filter: &mut BodyFilter,
    data: &[u8],
    chunked: bool,
    filtered: &mut BytesMut,
    out: &mut BytesMut,
) {
    filtered.clear();
    filter.apply(data, filtered);
    if filtered.is_empty() {
        return;
    }
    if chunked {
        write_chunk_header(out, filtered.len());
        out.extend_from_slice(filtered);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(filtered);
    }
    filtered.clear();
}

/// The end of a filtered body: what the filter still has (framed as
/// `frame` does), then the last chunk when chunked.
pub(crate) fn end(filter: &mut BodyFilter, chunked: bool, out: &mut BytesMut) {
    if matches!(filter, BodyFilter::Ai(_) | BodyFilter::Compress(_)) {
        let mut rest = BytesMut::new();
        filter.finish(&mut rest);
        if !rest.is_empty() {
            if chunked {
                write_chunk_header(out, rest.len());
                out.extend_from_slice(&rest);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(&rest);
            }
        }
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_filtered_pieces_as_chunks() {
        let upper: Arc<BodyHook> =
            Arc::new(|d: &[u8], out: &mut BytesMut| out.extend_from_slice(&d.to_ascii_uppercase()));
        let mut f = BodyFilter::Hook(upper);
        let (mut scratch, mut out) = (BytesMut::new(), BytesMut::new());
        frame(&mut f, b"hello", true, &mut scratch, &mut out);
        frame(&mut f, b"", true, &mut scratch, &mut out);
        end(&mut f, true, &mut out);
        assert_eq!(&out[..], b"5\r\nHELLO\r\n0\r\n\r\n");
        out.clear();
        frame(&mut f, b"abc", false, &mut scratch, &mut out);
        end(&mut f, false, &mut out);
        assert_eq!(&out[..], b"ABC");
    }
}
