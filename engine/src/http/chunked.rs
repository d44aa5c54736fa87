//! Chunked transfer coding (RFC 9112 §7.1), decoded incrementally as bytes
//! stream through the gateway.
//!
//! The decoder never copies: it walks the bytes it is shown, reports where
//! chunk data lies, where the trailer section starts and where the message
//! ends. The proxy forwards a validated chunked body verbatim (extensions
//! included), holding back only a trailer section that has fields, to
//! drop those that may not be trailers (RFC 9110 §6.5.1, at most
//! [`MAX_TRAILERS`] bytes); it de-chunks only when the receiver cannot
//! take chunked (HTTP/1.0 clients).
//!
//! It is strict on purpose, because lenient chunk parsing is a classic
//! request-smuggling hole: line endings must be CRLF, sizes are bare hex
//! with at most 16 digits, extensions and trailer fields may not contain
//! control bytes, and both are bounded so a peer cannot make us scan forever.

use std::ops::Range;

use crate::http::text::same_field;

/// Longest chunk-size line (size, extensions) we accept.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section we accept.
pub(crate) const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkError {
    BadSize,
    SizeOverflow,
    BadExtension,
    LineTooLong,
    MissingCrlf,
    BadTrailer,
    TrailersTooLarge,
}

impl ChunkError {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            ChunkError::BadSize => "invalid chunk size",
            ChunkError::SizeOverflow => "chunk size overflows",
            ChunkError::BadExtension => "invalid chunk extension",
            ChunkError::LineTooLong => "chunk size line too long",
            ChunkError::MissingCrlf => "chunk not terminated by CRLF",
            ChunkError::BadTrailer => "invalid trailer field",
            ChunkError::TrailersTooLarge => "trailer section too large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` counts them.
    Size {
        digits: u8,
    },
    /// After the size or an extension: BWS, then `;` or CR.
    AfterItem,
    /// After `;`: BWS, then an extension name.
    ExtNameStart,
    ExtName,
    /// After an extension name: BWS, then `=`, `;` or CR.
    AfterName,
    /// After `=`: BWS, then a token or a quoted string.
    ExtValueStart,
    ExtToken,
    ExtQuoted {
        escape: bool,
    },
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine {
        saw_colon: bool,
    },
    TrailerLf {
        last: bool,
    },
    Done,
}

/// Outcome of one `decode` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes of the input that belong to this body.
    pub(crate) consumed: usize,
    /// The terminating chunk and trailer section were seen.
    pub(crate) done: bool,
    /// Where the trailer section (its fields and the final CRLF) starts
    /// in the input: `consumed` when it was not reached, 0 when it had
    /// started before.
    pub(crate) trailers_at: usize,
}

/// Incremental, allocation-free chunked decoder.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    size: u64,
    line_len: usize,
    trailer_len: usize,
    data_total: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub(crate) const fn new() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_len: 0,
            data_total: 0,
        }
    }

    /// Total payload bytes seen so far (for body-size limits).
    pub(crate) fn data_total(&self) -> u64 {
        self.data_total
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Walks `buf`, calling `data` with the range of each run of chunk
    /// payload. Stops at the end of the body; bytes past `consumed` belong to
    /// whatever follows on the connection.
    pub(crate) fn decode(
        &mut self,
        buf: &[u8],
        mut data: impl FnMut(Range<usize>),
    ) -> Result<Progress, ChunkError> {
        let mut i = 0;
        let mut trailers_at = self.in_trailers().then_some(0);
        while i < buf.len() {
            match self.state {
                State::Data => {
                    let avail = (buf.len() - i) as u64;
                    let take = avail.min(self.size) as usize;
                    data(i..i + take);
                    i += take;
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Done => break,
                _ => {}
            }
            let b = buf[i];
            i += 1;
            self.step(b)?;
            if trailers_at.is_none() && self.state == State::TrailerStart {
                trailers_at = Some(i);
            }
            if self.state == State::Done {
                break;
            }
        }
        Ok(Progress {
            consumed: i,
            done: self.state == State::Done,
            trailers_at: trailers_at.unwrap_or(i),
        })
    }

    /// The last chunk was read: what comes is the trailer section.
    fn in_trailers(&self) -> bool {
        matches!(
            self.state,
            State::TrailerStart | State::TrailerLine { .. } | State::TrailerLf { .. }
        )
    }

    fn line_byte(&mut self) -> Result<(), ChunkError> {
        self.line_len += 1;
        if self.line_len > MAX_SIZE_LINE {
            return Err(ChunkError::LineTooLong);
        }
        Ok(())
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        match self.state {
            State::Size { digits } => {
                self.line_byte()?;
                if let Some(v) = hex_val(b) {
                    if digits >= 16 {
                        return Err(ChunkError::SizeOverflow);
                    }
                    self.size = (self.size << 4) | u64::from(v);
                    self.state = State::Size { digits: digits + 1 };
                } else if digits == 0 {
                    return Err(ChunkError::BadSize);
                } else {
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b';' => self.state = State::ExtNameStart,
                        b' ' | b'\t' => self.state = State::AfterItem,
                        _ => return Err(ChunkError::BadSize),
                    }
                }
            }
            // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
            State::AfterItem => {
                self.line_byte()?;
                self.state = match b {
                    b' ' | b'\t' => State::AfterItem,
                    b';' => State::ExtNameStart,
                    b'\r' => State::SizeLf,
                    _ => return Err(ChunkError::BadExtension),
                };
            }
            State::ExtNameStart => {
                self.line_byte()?;
                self.state = match b {
                    b' ' | b'\t' => State::ExtNameStart,
                    b if is_token_byte(b) => State::ExtName,
                    _ => return Err(ChunkError::BadExtension),
                };
            }
            State::ExtName => {
                self.line_byte()?;
                self.state = match b {
                    b if is_token_byte(b) => State::ExtName,
                    b'=' => State::ExtValueStart,
                    b' ' | b'\t' => State::AfterName,
                    b';' => State::ExtNameStart,
                    b'\r' => State::SizeLf,
                    _ => return Err(ChunkError::BadExtension),
                };
            }
            State::AfterName => {
                self.line_byte()?;
                self.state = match b {
                    b' ' | b'\t' => State::AfterName,
                    b'=' => State::ExtValueStart,
                    b';' => State::ExtNameStart,
                    b'\r' => State::SizeLf,
                    _ => return Err(ChunkError::BadExtension),
                };
            }
            State::ExtValueStart => {
                self.line_byte()?;
                self.state = match b {
                    b' ' | b'\t' => State::ExtValueStart,
                    b'"' => State::ExtQuoted { escape: false },
                    b if is_token_byte(b) => State::ExtToken,
                    _ => return Err(ChunkError::BadExtension),
                };
            }
            State::ExtToken => {
                self.line_byte()?;
                self.state = match b {
                    b if is_token_byte(b) => State::ExtToken,
                    b' ' | b'\t' => State::AfterItem,
                    b';' => State::ExtNameStart,
                    b'\r' => State::SizeLf,
                    _ => return Err(ChunkError::BadExtension),
                };
            }
            State::ExtQuoted { escape } => {
                self.line_byte()?;
                // qdtext and quoted-pair: field bytes other than controls.
                if !is_field_byte(b) {
                    return Err(ChunkError::BadExtension);
                }
                self.state = match (escape, b) {
                    (true, _) => State::ExtQuoted { escape: false },
                    (false, b'\\') => State::ExtQuoted { escape: true },
                    (false, b'"') => State::AfterItem,
                    _ => State::ExtQuoted { escape: false },
                };
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.line_len = 0;
                if self.size == 0 {
                    self.state = State::TrailerStart;
                } else {
                    self.data_total = self.data_total.saturating_add(self.size);
                    self.state = State::Data;
                }
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.state = State::Size { digits: 0 };
            }
            State::TrailerStart => {
                self.trailer_byte()?;
                if b == b'\r' {
                    self.state = State::TrailerLf { last: true };
                } else if is_token_byte(b) {
                    self.state = State::TrailerLine { saw_colon: false };
                } else {
                    // Includes SP/HTAB: obs-fold is not allowed.
                    return Err(ChunkError::BadTrailer);
                }
            }
            State::TrailerLine { saw_colon } => {
                self.trailer_byte()?;
                if b == b'\r' {
                    if !saw_colon {
                        return Err(ChunkError::BadTrailer);
                    }
                    self.state = State::TrailerLf { last: false };
                } else if saw_colon {
                    if !is_field_byte(b) {
                        return Err(ChunkError::BadTrailer);
                    }
                } else if b == b':' {
                    self.state = State::TrailerLine { saw_colon: true };
                } else if !is_token_byte(b) {
                    return Err(ChunkError::BadTrailer);
                }
            }
            State::TrailerLf { last } => {
                self.trailer_byte()?;
                if b != b'\n' {
                    return Err(ChunkError::MissingCrlf);
                }
                self.state = if last {
                    State::Done
                } else {
                    State::TrailerStart
                };
            }
            State::Data | State::Done => unreachable!("handled by decode"),
        }
        Ok(())
    }

    fn trailer_byte(&mut self) -> Result<(), ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(())
    }
}

/// May a field named `name` be sent as a trailer? Not those a recipient
/// must see before the content (RFC 9110 §6.5.1): framing, routing,
/// authentication and cookies, request modifiers (controls and
/// conditionals), response controls, the content's own metadata
/// (`Content-*`), and hop-by-hop fields (§7.6.1). Underscore spellings
/// count as the dash ones, as CGI-style servers read them.
pub(crate) fn allowed_in_trailer(name: &[u8]) -> bool {
    const NOT_TRAILERS: &[&[u8]] = &[
        // Framing and routing.
        b"transfer-encoding",
        b"content-length",
        b"host",
        // Hop-by-hop.
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        // Authentication and state.
        b"authorization",
        b"proxy-authorization",
        b"www-authenticate",
        b"proxy-authenticate",
        b"authentication-info",
        b"proxy-authentication-info",
        b"cookie",
        b"set-cookie",
        // Request modifiers: controls and conditionals.
        b"cache-control",
        b"expect",
        b"max-forwards",
        b"pragma",
        b"range",
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"if-range",
        // Response controls.
        b"age",
        b"expires",
        b"date",
        b"location",
        b"retry-after",
        b"vary",
        b"warning",
        // What the gateway writes on the way through.
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"forwarded",
        b"via",
        b"x-request-id",
    ];
    let content = b"content-";
    if name.len() > content.len() && same_field(&name[..content.len()], content) {
        return false;
    }
    !NOT_TRAILERS.iter().any(|n| same_field(name, n))
}

/// Removes from a whole, validated trailer section (field lines, then the
/// final CRLF) the fields that may not be trailers
/// ([`allowed_in_trailer`]), in place. Returns how many were removed.
pub(crate) fn drop_disallowed_trailers(section: &mut bytes::BytesMut) -> u32 {
    let mut read = 0;
    let mut write = 0;
    let mut dropped = 0;
    while read < section.len() {
        let end = section[read..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(section.len(), |p| read + p + 1);
        let line = &section[read..end];
        let name = &line[..line.iter().position(|&b| b == b':').unwrap_or(0)];
        if !name.is_empty() && !allowed_in_trailer(name) {
            dropped += 1;
        } else {
            section.copy_within(read..end, write);
            write += end - read;
        }
        read = end;
    }
    section.truncate(write);
    dropped
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// tchar (RFC 9110 §5.6.2).
pub(crate) fn is_token_byte(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// field-vchar, SP or HTAB (RFC 9110 §5.5): anything but controls and DEL.
pub(crate) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// Writes the chunk-size line for `len` payload bytes into `out`.
pub(crate) fn write_chunk_header(out: &mut bytes::BytesMut, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 18];
    let mut n = len;
    let mut pos = tmp.len() - 2;
    tmp[16] = b'\r';
    tmp[17] = b'\n';
    loop {
        pos -= 1;
        tmp[pos] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[pos..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let p = d.decode(input, |r| out.extend_from_slice(&input[r]))?;
        if !p.done {
            return Err(ChunkError::MissingCrlf);
        }
        Ok((out, p.consumed))
    }

    #[test]
    fn table() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5;ext=1\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5;a=\"q;\\\"x\"\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5 ;a\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5 ; a = b ; c\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5;a=\"\"\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (
                b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: v\r\nY: w\r\n\r\n",
                b"abcde",
            ),
            (b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc"),
        ];
        for (input, want) in ok {
            let (got, used) = decode_all(input).expect("valid");
            assert_eq!(&got[..], *want, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(used, input.len());
        }
        let bad: &[(&[u8], ChunkError)] = &[
            (b"\r\n", ChunkError::BadSize),
            (b"-1\r\n", ChunkError::BadSize),
            (b"0x5\r\n", ChunkError::BadSize),
            (b"5\nhello\r\n", ChunkError::BadSize),
            (b"5\r\rhello", ChunkError::MissingCrlf),
            (b"5\r\nhelloX\r\n", ChunkError::MissingCrlf),
            (b"5\r\nhello\rX", ChunkError::MissingCrlf),
            (b"10000000000000000\r\n", ChunkError::SizeOverflow),
            (b"5;a\x00\r\n", ChunkError::BadExtension),
            (b"3 zz\r\nabc\r\n", ChunkError::BadExtension),
            (b"0;\r\n\r\n", ChunkError::BadExtension),
            (b"5;a=\r\nhello", ChunkError::BadExtension),
            (b"5;a=b c\r\nhello", ChunkError::BadExtension),
            (b"5;a=\"x\ny\"\r\n", ChunkError::BadExtension),
            (b"0\r\n bad: fold\r\n\r\n", ChunkError::BadTrailer),
            (b"0\r\nno-colon\r\n\r\n", ChunkError::BadTrailer),
            (b"0\r\nbad name: v\r\n\r\n", ChunkError::BadTrailer),
            (b"0\r\nX: a\x01\r\n\r\n", ChunkError::BadTrailer),
            (b"0\r\n\r\r", ChunkError::MissingCrlf),
        ];
        for (input, want) in bad {
            assert_eq!(
                decode_all(input).err(),
                Some(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// RFC 9110 §6.5.1: fields needed before the content never travel as
    /// trailers; others (checksums, timings, gRPC status) do.
    #[test]
    fn disallowed_trailer_fields_are_dropped() {
        let cases: &[(&[u8], &[u8], u32)] = &[
            (b"\r\n", b"\r\n", 0),
            (b"X-Checksum: abc\r\ngrpc-status: 0\r\n\r\n", b"X-Checksum: abc\r\ngrpc-status: 0\r\n\r\n", 0),
            (
                b"Content-Length: 5\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n\r\n",
                b"X-A: 1\r\n\r\n",
                3,
            ),
            (
                b"Content-Type: text/html\r\ncontent_encoding: gzip\r\nAuthorization: x\r\nSet-Cookie: a=b\r\nCache-Control: no-store\r\nConnection: close\r\nX_Forwarded_For: 1.2.3.4\r\nServer-Timing: db;dur=5\r\n\r\n",
                b"Server-Timing: db;dur=5\r\n\r\n",
                7,
            ),
        ];
        for (input, want, dropped) in cases {
            let mut section = bytes::BytesMut::from(*input);
            assert_eq!(drop_disallowed_trailers(&mut section), *dropped);
            assert_eq!(&section[..], *want, "{}", String::from_utf8_lossy(input));
        }
        assert!(allowed_in_trailer(b"Content"));
        assert!(!allowed_in_trailer(b"CONTENT-MD5"));
    }

    #[test]
    fn reports_where_the_trailer_section_starts() {
        let input = b"3\r\nabc\r\n0\r\nX: 1\r\n\r\n";
        let at = input.len() - b"X: 1\r\n\r\n".len();
        let mut d = ChunkedDecoder::new();
        let p = d.decode(input, |_| {}).expect("valid");
        assert_eq!((p.trailers_at, p.consumed, p.done), (at, input.len(), true));
        // Split inside the section: the second part is all trailers.
        let mut d = ChunkedDecoder::new();
        let first = d.decode(&input[..at + 2], |_| {}).expect("valid");
        assert_eq!((first.trailers_at, first.done), (at, false));
        let second = d.decode(&input[at + 2..], |_| {}).expect("valid");
        assert_eq!((second.trailers_at, second.done), (0, true));
        // Not reached yet.
        let mut d = ChunkedDecoder::new();
        let p = d.decode(b"3\r\nab", |_| {}).expect("valid");
        assert_eq!(p.trailers_at, p.consumed);
    }

    #[test]
    fn stops_at_end_of_body() {
        let input = b"2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let (got, used) = decode_all(input).expect("valid");
        assert_eq!(got, b"ab");
        assert_eq!(&input[used..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn long_size_line_is_bounded() {
        let mut input = b"5;".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_SIZE_LINE));
        assert_eq!(decode_all(&input).err(), Some(ChunkError::LineTooLong));
    }

    fn encode(chunks: &[Vec<u8>], trailers: &[(String, String)]) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            write_chunk_header(&mut out, c.len());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (k, v) in trailers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.to_vec()
    }

    proptest! {
        /// Whatever the chunking and however the bytes are split across
        /// reads, decoding returns the payload and ends exactly at the end.
        #[test]
        fn round_trip(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            trailers in proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[ -~]{0,20}"), 0..3),
            splits in proptest::collection::vec(1usize..64, 1..20),
            tail in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut wire = encode(&chunks, &trailers);
            let body_len = wire.len();
            wire.extend_from_slice(&tail);
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            let mut pos = 0;
            let mut s = splits.iter().cycle();
            while !d.is_done() {
                prop_assert!(pos < wire.len());
                let end = (pos + *s.next().expect("cycle")).min(wire.len());
                let piece = &wire[pos..end];
                let p = d.decode(piece, |r| out.extend_from_slice(&piece[r])).expect("valid");
                pos += p.consumed;
                if !p.done {
                    prop_assert_eq!(pos, end);
                }
            }
            prop_assert_eq!(pos, body_len);
            prop_assert_eq!(out, chunks.concat());
            prop_assert_eq!(d.data_total(), chunks.iter().map(|c| c.len() as u64).sum::<u64>());
        }

        /// Arbitrary bytes never panic and never claim more than they saw.
        #[test]
        fn arbitrary_input_is_bounded(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = ChunkedDecoder::new();
            if let Ok(p) = d.decode(&input, |r| assert!(r.end <= input.len())) {
                prop_assert!(p.consumed <= input.len());
            }
        }
    }
}
