//! One HTTP/1.1 response on a keep-alive connection: status line and
//! fields parsed with `httparse`, then the message body length decided as
//! RFC 9112 §6.3 says, in its order:
//!
//! 1. a response to HEAD, any 1xx, 204 and 304 has no body;
//! 2. `Transfer-Encoding` with `chunked` last is chunked; any other
//!    transfer coding is read until the server closes (and with both
//!    `Transfer-Encoding` and `Content-Length` the former wins and the
//!    connection is not reused);
//! 3. a valid `Content-Length` (repeated identical values allowed) gives
//!    the length; an invalid or conflicting one is malformed;
//! 4. otherwise the body runs until the server closes.
//!
//! Interim 1xx responses (except 101, which this client never asks for)
//! are skipped. The head must fit in 64 KiB.
//!
//! The parser also says when the body's first byte has been consumed (of
//! its content: chunk data, not chunked framing), so that the caller can
//! time it; that is one flag set per `feed`, nothing per byte.

use super::chunked::ChunkedDecoder;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Header fields parsed per response; more is malformed.
const MAX_HEADERS: usize = 100;

/// Why a response is not valid HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Where parsing stands after a call to [`ResponseParser::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Feed more bytes (or report EOF).
    NeedMore,
    /// The response is complete; `close` means the connection cannot carry
    /// another request.
    Done { status: u16, close: bool },
}

#[derive(Debug, Clone)]
enum State {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilEof,
}

/// Finds the end of one response.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    state: State,
    head_request: bool,
    status: u16,
    close: bool,
    /// A byte of the final response's body content has been consumed.
    body_started: bool,
}

impl ResponseParser {
    /// A parser for the response to one request; `head_request` when the
    /// request was HEAD.
    pub fn new(head_request: bool) -> ResponseParser {
        ResponseParser {
            state: State::Head,
            head_request,
            status: 0,
            close: false,
            body_started: false,
        }
    }

    /// Whether any final response head has been parsed yet (a reset before
    /// that and after it are both "reset", but callers may care).
    pub fn in_head(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// Whether a byte of the body has been consumed: for a chunked body a
    /// byte of chunk data, for the others any byte after the head. A
    /// response without a body (HEAD, 204, 304, an empty one) never
    /// starts one.
    pub fn body_started(&self) -> bool {
        self.body_started
    }

    /// Consumes bytes of this response from `buf` and returns how many it
    /// took. With `NeedMore` and fewer bytes taken than given, the rest is
    /// an incomplete head: keep it and append more. With `Done`, bytes not
    /// taken belong to whatever the server sent next.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Progress), Malformed> {
        let mut pos = 0;
        loop {
            match &mut self.state {
                State::Head => {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut resp = httparse::Response::new(&mut headers);
                    let n = match resp.parse(&buf[pos..]) {
                        Ok(httparse::Status::Complete(n)) => n,
                        Ok(httparse::Status::Partial) => {
                            if buf.len() - pos > MAX_HEAD {
                                return Err(Malformed("response head larger than 64 KiB"));
                            }
                            return Ok((pos, Progress::NeedMore));
                        }
                        Err(httparse::Error::TooManyHeaders) => {
                            return Err(Malformed("more than 100 header fields"))
                        }
                        Err(_) => return Err(Malformed("invalid status line or header field")),
                    };
                    let status = resp.code.ok_or(Malformed("no status code"))?;
                    pos += n;
                    if status == 101 {
                        return Err(Malformed(
                            "101 Switching Protocols without an upgrade request",
                        ));
                    }
                    if (100..200).contains(&status) {
                        // Interim response (RFC 9110 §15.2): the final one
                        // follows.
                        continue;
                    }
                    let framing = Framing::of(&resp)?;
                    self.status = status;
                    self.close = framing.close;
                    self.state = if self.head_request || status == 204 || status == 304 {
                        State::Length(0)
                    } else {
                        match framing.body {
                            Body::Chunked => State::Chunked(ChunkedDecoder::default()),
                            Body::Length(n) => State::Length(n),
                            Body::UntilEof => {
                                self.close = true;
                                State::UntilEof
                            }
                        }
                    };
                }
                State::Length(rem) => {
                    let take = (buf.len() - pos).min(usize::try_from(*rem).unwrap_or(usize::MAX));
                    pos += take;
                    *rem -= take as u64;
                    self.body_started |= take > 0;
                    let done = *rem == 0;
                    return Ok((pos, self.progress_if(done)));
                }
                State::Chunked(dec) => {
                    let (n, done) = dec.feed(&buf[pos..]).map_err(Malformed)?;
                    pos += n;
                    self.body_started = dec.has_data();
                    return Ok((pos, self.progress_if(done)));
                }
                State::UntilEof => {
                    self.body_started |= pos < buf.len();
                    return Ok((buf.len(), Progress::NeedMore));
                }
            }
        }
    }

    /// The server closed the connection: this ends a close-delimited body,
    /// and is an error anywhere else (the caller counts it as a reset).
    pub fn eof(&self) -> Option<Progress> {
        match self.state {
            State::UntilEof => Some(Progress::Done {
                status: self.status,
                close: true,
            }),
            _ => None,
        }
    }

    fn progress_if(&self, done: bool) -> Progress {
        if done {
            Progress::Done {
                status: self.status,
                close: self.close,
            }
        } else {
            Progress::NeedMore
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Chunked,
    Length(u64),
    UntilEof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Framing {
    body: Body,
    close: bool,
}

impl Framing {
    fn of(resp: &httparse::Response<'_, '_>) -> Result<Framing, Malformed> {
        let http10 = resp.version == Some(0);
        let mut close = false;
        let mut keep_alive = false;
        let mut te_seen = false;
        let mut chunked_last = false;
        let mut length: Option<u64> = None;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te_seen = true;
                // The final coding is the last list element of the last
                // field line (RFC 9110 §5.3).
                let last = h
                    .value
                    .split(|&b| b == b',')
                    .map(trim)
                    .rfind(|t| !t.is_empty());
                chunked_last = last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                for v in h.value.split(|&b| b == b',').map(trim) {
                    let n = parse_length(v)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(Malformed("conflicting Content-Length values"));
                    }
                    length = Some(n);
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                for t in h.value.split(|&b| b == b',').map(trim) {
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    }
                }
            }
        }
        if http10 && !keep_alive {
            close = true;
        }
        let body = if te_seen {
            // Transfer-Encoding beside Content-Length, or in an HTTP/1.0
            // message, is faulty framing: decode, then do not reuse.
            if length.is_some() || http10 {
                close = true;
            }
            if chunked_last {
                Body::Chunked
            } else {
                Body::UntilEof
            }
        } else if let Some(n) = length {
            Body::Length(n)
        } else {
            Body::UntilEof
        };
        Ok(Framing { body, close })
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn parse_length(v: &[u8]) -> Result<u64, Malformed> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Malformed("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Want {
        Done {
            len: usize,
            status: u16,
            close: bool,
        },
        /// Complete only once the server closes.
        AtEof {
            status: u16,
        },
        Malformed,
    }

    /// Runs the parser over `input` split at every position, as a reader
    /// appending to a buffer would.
    fn run(input: &[u8], head: bool) -> Vec<Want> {
        let mut outcomes = Vec::new();
        for cut in 0..=input.len() {
            outcomes.push(run_split(input, head, &[cut]));
        }
        outcomes.push(run_split(
            input,
            head,
            &(1..input.len()).collect::<Vec<_>>(),
        ));
        outcomes
    }

    fn run_split(input: &[u8], head: bool, cuts: &[usize]) -> Want {
        let mut p = ResponseParser::new(head);
        let mut buf: Vec<u8> = Vec::new();
        let mut taken_total = 0;
        let mut fed = 0;
        for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
            if end < fed {
                continue;
            }
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
            match p.feed(&buf) {
                Err(_) => return Want::Malformed,
                Ok((n, Progress::Done { status, close })) => {
                    return Want::Done {
                        len: taken_total + n,
                        status,
                        close,
                    }
                }
                Ok((n, Progress::NeedMore)) => {
                    taken_total += n;
                    buf.drain(..n);
                }
            }
        }
        match p.eof() {
            Some(Progress::Done { status, .. }) => Want::AtEof { status },
            _ => panic!("incomplete response {:?}", String::from_utf8_lossy(input)),
        }
    }

    fn expect(input: &str, head: bool, want: Want) {
        for got in run(input.as_bytes(), head) {
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn framing_table() {
        use Want::*;
        let cases: &[(&str, bool, Want)] = &[
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, Done { len: 43, status: 200, close: false }),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, Done { len: 38, status: 200, close: false }),
            ("HTTP/1.1 204 No Content\r\n\r\n", false, Done { len: 27, status: 204, close: false }),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, Done { len: 49, status: 304, close: false }),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, Done { len: 39, status: 200, close: false }),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, Done { len: 60, status: 200, close: false }),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\nT: 1\r\n\r\n", false, Done { len: 64, status: 200, close: false }),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", false, Done { len: 71, status: 200, close: true }),
            ("HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", false, Done { len: 59, status: 503, close: true }),
            ("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", false, Done { len: 42, status: 200, close: false }),
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", false, Done { len: 108, status: 201, close: false }),
            ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, Done { len: 40, status: 200, close: true }),
            ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false, Done { len: 64, status: 200, close: false }),
            ("HTTP/1.1 200 OK\r\n\r\nuntil the end", false, AtEof { status: 200 }),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", false, AtEof { status: 200 }),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok", false, Malformed),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, Malformed),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", false, Malformed),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, Malformed),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, Malformed),
            ("garbage\r\n\r\n", false, Malformed),
            ("HTTP/1.1 2000 OK\r\n\r\n", false, Malformed),
            ("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", false, Malformed),
        ];
        for (input, head, want) in cases {
            let want = match want {
                Done { status, close, .. } => Done {
                    len: input.len(),
                    status: *status,
                    close: *close,
                },
                AtEof { status } => AtEof { status: *status },
                Malformed => Malformed,
            };
            expect(input, *head, want);
        }
    }

    /// The body starts with its first content byte, whatever the splits:
    /// each case is a response and the part of it from that byte on.
    #[test]
    fn body_starts_at_its_first_content_byte() {
        let cases: &[(&str, bool, Option<&str>)] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                false,
                Some("hello"),
            ),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, None),
            ("HTTP/1.1 204 No Content\r\n\r\n", false, None),
            ("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, None),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\n\r\n",
                false,
                Some("abc\r\n0\r\n\r\n"),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n\r\n",
                false,
                None,
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
                false,
                Some("x"),
            ),
            (
                "HTTP/1.1 200 OK\r\n\r\nuntil the end",
                false,
                Some("until the end"),
            ),
        ];
        for &(input, head, rest) in cases {
            let first = rest.map(|r| input.len() - r.len());
            let bytes = input.as_bytes();
            let mut p = ResponseParser::new(head);
            let mut buf = Vec::new();
            for (fed, &b) in bytes.iter().enumerate() {
                buf.push(b);
                let (n, _) = p.feed(&buf).expect("valid response");
                buf.drain(..n);
                let want = first.is_some_and(|f| fed >= f);
                assert_eq!(p.body_started(), want, "{input:?} after {} bytes", fed + 1);
            }
            let mut whole = ResponseParser::new(head);
            let _ = whole.feed(bytes).expect("valid response");
            assert_eq!(
                whole.body_started(),
                first.is_some(),
                "{input:?} in one piece"
            );
        }
    }

    #[test]
    fn stops_at_the_end_of_the_response() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\n";
        let mut p = ResponseParser::new(false);
        assert_eq!(
            p.feed(two),
            Ok((
                40,
                Progress::Done {
                    status: 200,
                    close: false
                }
            ))
        );
    }

    #[test]
    fn oversized_head_is_malformed() {
        let mut head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', MAX_HEAD + 1));
        assert!(ResponseParser::new(false).feed(&head).is_err());
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(ResponseParser::new(false).feed(&many).is_err());
    }
}
