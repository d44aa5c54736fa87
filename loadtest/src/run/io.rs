//! One request/response exchange on a connection, and how connections are
//! opened.
//!
//! monoio's I/O is completion based: a read takes ownership of its buffer
//! until the kernel is done with it. Each connection keeps one read buffer
//! (16 KiB, growing only while a response head is incomplete, and bounded
//! by the 64 KiB head limit) and parses in place; body bytes are skipped as
//! soon as the framing has accounted for them, so a 1 MiB body is read
//! through the same 16 KiB. Requests are written from their prebuilt
//! `Bytes` (a reference-count increment, no copy).
//!
//! Besides the end of the response, an exchange notes when the first byte
//! of its body arrived: the instant the read that delivered it completed,
//! taken right after that read is parsed. Most responses arrive in one
//! read, and then that instant is the response's end, which the caller
//! takes anyway: the clock is read only for a body that starts in a read
//! before the last, once per response.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::http::{Progress, ResponseParser};
use crate::plan::Request;

/// Bytes a read may fill at least; below this the buffer is compacted or
/// grown first.
const MIN_READ: usize = 4096;
/// Initial read buffer size per connection.
pub(crate) const READ_BUF: usize = 16 * 1024;

/// Opens connections to the target.
pub(crate) trait Connector {
    type Stream: AsyncReadRent + AsyncWriteRent;
    fn connect(&self) -> impl Future<Output = io::Result<Self::Stream>>;
}

/// Plain TCP.
#[derive(Debug, Clone)]
pub(crate) struct Plain {
    pub addr: SocketAddr,
}

impl Connector for Plain {
    type Stream = TcpStream;

    async fn connect(&self) -> io::Result<TcpStream> {
        let s = TcpStream::connect_addr(self.addr).await?;
        // Requests are small and written whole; Nagle would only delay them.
        s.set_nodelay(true)?;
        Ok(s)
    }
}

/// A connection's read buffer: unparsed bytes are `buf[pos..]`.
#[derive(Debug, Default)]
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    pos: usize,
    /// Bytes read since the owner last took the count.
    pub read: u64,
}

impl ReadBuf {
    pub fn new() -> ReadBuf {
        ReadBuf {
            buf: Vec::with_capacity(READ_BUF),
            pos: 0,
            read: 0,
        }
    }

    /// Forgets buffered bytes (the connection they came from is gone).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    fn make_room(&mut self) {
        if self.buf.capacity() - self.buf.len() >= MIN_READ {
            return;
        }
        if self.pos > 0 {
            // After a dropped (timed-out) read the buffer may be empty.
            let consumed = self.pos.min(self.buf.len());
            self.buf.drain(..consumed);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < MIN_READ {
            self.buf.reserve(READ_BUF.max(self.buf.len()));
        }
    }
}

/// A complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// The connection cannot be reused.
    pub close: bool,
    pub first_byte: FirstByte,
}

/// When the first byte of a response's body arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstByte {
    /// The body was empty, or there was none (HEAD, 204, 304).
    Never,
    /// In the read that also ended the response.
    AtEnd,
    /// In an earlier read, which completed at this instant.
    At(Instant),
}

impl FirstByte {
    /// The instant, given the one at which the response ended.
    pub fn instant(self, end: Instant) -> Option<Instant> {
        match self {
            FirstByte::Never => None,
            FirstByte::AtEnd => Some(end),
            FirstByte::At(t) => Some(t),
        }
    }
}

/// Why an exchange failed (timeouts are the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Write or read error, or EOF before the response ended.
    Reset,
    Malformed,
}

/// Writes `req` and reads its response. On `Err` the connection must be
/// dropped.
pub(crate) async fn exchange<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    req: &Request,
    rb: &mut ReadBuf,
) -> Result<Response, Failure> {
    let (res, _) = stream.write_all(req.wire.clone()).await;
    if res.is_err() {
        return Err(Failure::Reset);
    }
    let mut parser = ResponseParser::new(req.head);
    let mut first = None;
    let ended = |parser: &ResponseParser, first: Option<Instant>| match first {
        Some(t) => FirstByte::At(t),
        None if parser.body_started() => FirstByte::AtEnd,
        None => FirstByte::Never,
    };
    // Bounded: every pass either finishes, fails, or reads at least one
    // byte; and the parser rejects a head over 64 KiB.
    loop {
        if rb.pos < rb.buf.len() {
            match parser.feed(&rb.buf[rb.pos..]) {
                Err(_) => return Err(Failure::Malformed),
                Ok((n, Progress::Done { status, close })) => {
                    rb.consume(n);
                    return Ok(Response {
                        status,
                        close,
                        first_byte: ended(&parser, first),
                    });
                }
                Ok((n, Progress::NeedMore)) => {
                    rb.consume(n);
                    if first.is_none() && parser.body_started() {
                        first = Some(Instant::now());
                    }
                }
            }
        }
        rb.make_room();
        let buf = std::mem::take(&mut rb.buf);
        let len = buf.len();
        let (res, slice) = stream.read(buf.slice_mut(len..)).await;
        rb.buf = slice.into_inner();
        match res {
            Ok(0) => {
                return match parser.eof() {
                    Some(Progress::Done { status, .. }) => {
                        rb.reset();
                        Ok(Response {
                            status,
                            close: true,
                            first_byte: ended(&parser, first),
                        })
                    }
                    _ => Err(Failure::Reset),
                }
            }
            Ok(n) => rb.read += n as u64,
            Err(_) => return Err(Failure::Reset),
        }
    }
}
