//! Chunked transfer coding (RFC 9112 §7.1), decoded only to find its end.
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! ```
//!
//! The decoder is a byte-at-a-time state machine for the framing lines
//! and skips chunk data in one step, so a 1 MiB chunk costs the same as a
//! 1 byte one. Extension and trailer lines are bounded (4 KiB and 64 KiB)
//! so a hostile server cannot make the generator buffer without end; their
//! content is not interpreted. Lines must end in CRLF: a bare LF is
//! malformed, since tolerating it is how request-smuggling ambiguities
//! start (RFC 9112 §2.2).

/// Longest chunk extension accepted on one size line.
const MAX_EXT: usize = 4096;
/// Longest trailer section accepted.
const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` seen so far.
    Size {
        digits: u8,
    },
    /// After the digits: optional whitespace, then `;ext` or CR.
    Ext,
    /// After the size line's CR.
    SizeLf,
    /// Inside chunk data.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

/// Finds the end of one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    ext_len: usize,
    trailer_len: usize,
    /// Whether a byte of chunk data has been consumed: the body has
    /// content, not just framing.
    data: bool,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            ext_len: 0,
            trailer_len: 0,
            data: false,
        }
    }
}

impl ChunkedDecoder {
    /// Consumes framing and data from `buf`. Returns how many bytes belong
    /// to this body and whether it has ended; bytes after the end are not
    /// consumed.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, bool), &'static str> {
        let mut i = 0;
        while i < buf.len() {
            if self.state == State::Data {
                // A chunk in `Data` has a size of at least 1 and `i` is
                // short of the end: this takes at least one byte.
                self.data = true;
                let take = (buf.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = buf[i];
            i += 1;
            self.state = match self.state {
                State::Size { digits } => match hex(b) {
                    Some(v) => {
                        if digits >= 16 {
                            return Err("chunk size too large");
                        }
                        self.size = (self.size << 4) | u64::from(v);
                        State::Size { digits: digits + 1 }
                    }
                    None if digits == 0 => return Err("chunk size is not hex"),
                    None => self.after_size(b)?,
                },
                State::Ext => self.after_size(b)?,
                State::SizeLf => {
                    if b != b'\n' {
                        return Err("chunk size line without CRLF");
                    }
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    }
                }
                State::Data => unreachable!("handled above"),
                State::DataCr => {
                    if b != b'\r' {
                        return Err("chunk data longer than its size");
                    }
                    State::DataLf
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err("chunk data not followed by CRLF");
                    }
                    self.size = 0;
                    self.ext_len = 0;
                    State::Size { digits: 0 }
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        State::FinalLf
                    } else {
                        self.trailer(b)?
                    }
                }
                State::TrailerLine => self.trailer(b)?,
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err("trailer line without CRLF");
                    }
                    State::TrailerStart
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err("chunked body not ended by CRLF");
                    }
                    self.state = State::Done;
                    return Ok((i, true));
                }
                State::Done => return Ok((i - 1, true)),
            };
        }
        Ok((i, self.state == State::Done))
    }

    /// Whether any chunk data has been consumed (a body of only the last
    /// chunk and trailers has none).
    pub fn has_data(&self) -> bool {
        self.data
    }

    /// A byte after the size digits: whitespace or an extension until CR.
    fn after_size(&mut self, b: u8) -> Result<State, &'static str> {
        match b {
            b'\r' => Ok(State::SizeLf),
            b'\n' => Err("chunk size line without CRLF"),
            _ if b == b'\t' || b >= b' ' => {
                self.ext_len += 1;
                if self.ext_len > MAX_EXT {
                    return Err("chunk extension too long");
                }
                Ok(State::Ext)
            }
            _ => Err("control character in chunk size line"),
        }
    }

    fn trailer(&mut self, b: u8) -> Result<State, &'static str> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err("trailer section too long");
        }
        match b {
            b'\r' => Ok(State::TrailerLf),
            b'\n' => Err("trailer line without CRLF"),
            _ => Ok(State::TrailerLine),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at every position (and byte by byte), expecting
    /// the body to end after `want_len` bytes, or an error.
    fn check(input: &[u8], want: Result<usize, ()>) {
        let whole = ChunkedDecoder::default().feed(input);
        let splits: Vec<Vec<usize>> = (0..=input.len())
            .map(|k| vec![k])
            .chain(std::iter::once((1..input.len()).collect()))
            .collect();
        for cuts in splits {
            let mut d = ChunkedDecoder::default();
            let mut consumed = 0;
            let mut result: Result<Option<usize>, ()> = Ok(None);
            let mut start = 0;
            for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
                if end < start {
                    continue;
                }
                match d.feed(&input[start..end]) {
                    Ok((n, done)) => {
                        consumed += n;
                        if done {
                            result = Ok(Some(consumed));
                            break;
                        }
                        assert_eq!(n, end - start, "consumes all until done");
                    }
                    Err(_) => {
                        result = Err(());
                        break;
                    }
                }
                start = end;
            }
            match want {
                Ok(len) => assert_eq!(
                    result,
                    Ok(Some(len)),
                    "{:?} cuts {cuts:?}",
                    String::from_utf8_lossy(input)
                ),
                Err(()) => assert!(
                    result.is_err() || result == Ok(None),
                    "{:?} cuts {cuts:?}: {result:?}",
                    String::from_utf8_lossy(input)
                ),
            }
        }
        if want.is_err() {
            assert!(whole.is_err() || whole.map(|(_, d)| !d).unwrap_or(true));
        }
    }

    #[test]
    fn framing_table() {
        let ok: &[&[u8]] = &[
            b"0\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5;name=val\r\nhello\r\n000\r\n\r\n",
            b"A\r\n0123456789\r\n1\r\nx\r\n0\r\n\r\n",
            b"3 ; ext\r\nabc\r\n0\r\nExpires: never\r\nX-T: 1\r\n\r\n",
            b"1\r\n\r\r\n0;last\r\n\r\n",
        ];
        for input in ok {
            // With a following response glued on, it stops at the body end.
            let mut glued = input.to_vec();
            glued.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            check(&glued, Ok(input.len()));
        }
        let bad: &[&[u8]] = &[
            b"x\r\n",
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"2\r\nabc\r\n",
            b"2\r\nabXY",
            b"0\r\nTrailer: x\n\r\n",
            b"11111111111111111\r\n",
            b"0\r\n\rX",
            b"5\x01\r\n",
        ];
        for input in bad {
            check(input, Err(()));
        }
    }

    #[test]
    fn data_is_chunk_data_not_framing() {
        let cases: &[(&[u8], bool)] = &[
            (b"0\r\n\r\n", false),
            (b"0;ext\r\nTrailer: x\r\n\r\n", false),
            (b"5\r\n", false),
            (b"5\r\nh", true),
            (b"1\r\nx\r\n0\r\n\r\n", true),
        ];
        for &(input, want) in cases {
            let mut d = ChunkedDecoder::default();
            d.feed(input).expect("valid framing");
            assert_eq!(d.has_data(), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn big_chunks_skip_in_one_step() {
        let mut body = b"100000\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'z', 0x10_0000));
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        let mut d = ChunkedDecoder::default();
        assert_eq!(d.feed(&body), Ok((body.len(), true)));
    }

    #[test]
    fn bounded_extensions_and_trailers() {
        let mut long_ext = b"1;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'e', MAX_EXT + 1));
        assert!(ChunkedDecoder::default().feed(&long_ext).is_err());
        let mut long_trailer = b"0\r\n".to_vec();
        long_trailer.extend(std::iter::repeat_n(b't', MAX_TRAILERS + 1));
        assert!(ChunkedDecoder::default().feed(&long_trailer).is_err());
    }
}
