//! The body filter stage: what may change a response body on its way to
//! the client (compression and AI stream translation will live here).
//!
//! A filter is an enum, not a boxed trait object, so choosing one costs no
//! allocation; `None`, the common case, is one branch. When a filter is
//! active the body's length is no longer known ahead: the answer goes out
//! chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones.

use std::sync::Arc;

use bytes::BytesMut;

use crate::http::chunked::write_chunk_header;
use crate::worker::hooks::BodyHook;

/// What the body filter stage does to one response body.
#[derive(Default)]
pub(crate) enum BodyFilter {
    /// The body passes unchanged (and keeps its framing).
    #[default]
    None,
    /// A test hook rewrites each piece.
    Hook(Arc<BodyHook>),
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

/// The end of a filtered body: the last chunk when chunked.
pub(crate) fn end(chunked: bool, out: &mut BytesMut) {
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
        end(true, &mut out);
        assert_eq!(&out[..], b"5\r\nHELLO\r\n0\r\n\r\n");
        out.clear();
        frame(&mut f, b"abc", false, &mut scratch, &mut out);
        end(false, &mut out);
        assert_eq!(&out[..], b"ABC");
    }
}
