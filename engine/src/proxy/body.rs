//! Streams a message body from one connection to another, re-framing it
//! when the receiver needs a different framing (RFC 9112 §6–§7), and
//! running the body filter stage on response bodies.
//!
//! Bodies are never gathered: each read is written on before the next read,
//! so memory per transfer is one pooled buffer whatever the body size. A
//! validated chunked body is forwarded byte for byte, but for a trailer
//! section with fields, which is held (at most 16 KiB, the decoder's
//! bound) to drop the fields that may not be trailers (RFC 9110 §6.5.1);
//! the only other copies are on the re-framing paths (de-chunking for
//! HTTP/1.0 clients, chunking a close-delimited upstream body for HTTP/1.1
//! clients) and through a body filter.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::http::chunked::{
    drop_disallowed_trailers, write_chunk_header, ChunkError, ChunkedDecoder,
};
use crate::http::head::BodyKind;
use crate::proxy::filter::{self, BodyFilter};
use crate::rt::deadline::Deadlines;
use crate::rt::io::{read_more, write_all_buf, Pool, SendLimit};
use crate::stats::Counter;

/// How the incoming body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Framing {
    /// The framing of a body of this kind; `None` when there is no body.
    pub(crate) fn of(body: BodyKind) -> Option<Framing> {
        match body {
            BodyKind::None => None,
            BodyKind::Length(n) => Some(Framing::Length(n)),
            BodyKind::Chunked => Some(Framing::Chunked),
            BodyKind::UntilClose => Some(Framing::UntilClose),
        }
    }
}

/// How the outgoing body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Same framing as the input (chunked stays chunked, byte for byte).
    Same,
    /// Strip chunked framing; the receiver reads until close.
    Dechunk,
    /// Add chunked framing to a close-delimited input.
    Chunk,
    /// Read and drop (a body nobody will receive).
    Discard,
    /// Payload through the body filter, then chunked (or, false, raw until
    /// close).
    Filter { chunked: bool },
}

/// Why a copy stopped early.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Reading the source failed or it closed before the body ended.
    Source(io::Error),
    /// The source did not send anything within the idle timeout.
    SourceTimeout,
    /// The source's chunked framing is invalid.
    Framing(ChunkError),
    /// More payload than the limit allows.
    TooLarge,
    /// Writing to the destination failed.
    Sink(io::Error),
}

/// A copy of a body's payload the cache keeps while it streams: dropped
/// once it would pass `limit` (the body is then too large to store).
pub(crate) struct Capture {
    pub(crate) buf: Option<BytesMut>,
    pub(crate) limit: usize,
}

impl Capture {
    pub(crate) fn take(&mut self, data: &[u8]) {
        if let Some(c) = self.buf.as_mut() {
            if c.len() + data.len() > self.limit {
                self.buf = None;
            } else {
                c.extend_from_slice(data);
            }
        }
    }
}

pub(crate) struct Copy<'a> {
    pub(crate) framing: Framing,
    pub(crate) output: Output,
    /// Payload limit (413 on requests).
    pub(crate) limit: u64,
    /// Longest wait for the next bytes from the source
    /// (`body-idle-timeout`).
    pub(crate) idle: Duration,
    /// Scratch for re-framing; empty on the common paths.
    pub(crate) scratch: &'a mut BytesMut,
    /// The worker's deadlines, for the idle limit on each read.
    pub(crate) deadlines: &'a Deadlines,
    /// Longest wait for the destination to accept anything.
    pub(crate) send_limit: Duration,
    /// The worker's buffers: a head-sized source buffer is swapped for a
    /// body-sized one first.
    pub(crate) pool: &'a Pool,
    /// The body filter, with [`Output::Filter`].
    pub(crate) filter: Option<&'a mut BodyFilter>,
    /// Keeps the payload (decoded, before any filter) for the cache.
    pub(crate) capture: Option<&'a mut Capture>,
    /// With [`Output::Filter`]: bytes that go out in front of the body
    /// (a response head held back), in one write with the body's first
    /// output when that was already read, or on their own before the
    /// first wait for the source. Left empty.
    pub(crate) lead: Option<&'a mut BytesMut>,
    /// Counts the trailer fields dropped from a chunked body relayed
    /// with [`Output::Same`].
    pub(crate) trailers_dropped: Option<&'a Counter>,
}

impl Copy<'_> {
    /// Copies the body from `src` to `dst`. `buf` holds bytes already read
    /// from `src`; on return it holds whatever followed the body (the next
    /// pipelined message).
    pub(crate) async fn run<R, W>(
        self,
        src: &mut R,
        buf: &mut BytesMut,
        dst: &mut W,
    ) -> Result<(), CopyError>
    where
        R: AsyncReadRent,
        W: AsyncWriteRent,
    {
        let Copy {
            framing,
            output,
            limit,
            idle,
            scratch,
            deadlines,
            send_limit,
            pool,
            mut filter,
            mut capture,
            lead,
            trailers_dropped,
        } = self;
        let send = SendLimit {
            deadlines,
            limit: send_limit,
        };
        pool.upsize(buf);
        // A filter writes its framed output here; pooled, so steady state
        // allocates nothing.
        let (mut framed, mut filtered) = match output {
            Output::Filter { .. } => (pool.buf(), pool.buf()),
            _ => (BytesMut::new(), BytesMut::new()),
        };
        if let Some(lead) = lead {
            framed.extend_from_slice(lead);
            lead.clear();
        }
        let mut remaining = match framing {
            Framing::Length(n) => n,
            _ => u64::MAX,
        };
        let mut decoder = ChunkedDecoder::new();
        let mut payload = 0u64;
        // A trailer section with fields is held in `scratch` (unused on
        // the verbatim path) until it is whole.
        let mut holding_trailers = false;
        let result = loop {
            let done = match framing {
                Framing::Length(_) => remaining == 0,
                Framing::Chunked => decoder.is_done(),
                Framing::UntilClose => false,
            };
            if done {
                break Ok(());
            }
            if buf.is_empty() {
                // What a filter held back (the lead) goes out before the
                // wait.
                if !framed.is_empty() {
                    if let Err(e) = write_all_buf(dst, &mut framed, send).await {
                        break Err(CopyError::Sink(e));
                    }
                }
                let n = match deadlines.within_for(idle, read_more(src, buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => break Err(CopyError::Source(e)),
                    Err(_) => break Err(CopyError::SourceTimeout),
                };
                if n == 0 {
                    if framing == Framing::UntilClose {
                        break Ok(());
                    }
                    break Err(CopyError::Source(io::ErrorKind::UnexpectedEof.into()));
                }
            }
            let step = match (framing, output) {
                (Framing::Chunked, Output::Dechunk | Output::Filter { .. }) => {
                    // Payload runs out of the framing, into `scratch`.
                    let src_bytes = &buf[..];
                    let progress = match decoder
                        .decode(src_bytes, |r| scratch.extend_from_slice(&src_bytes[r]))
                    {
                        Ok(p) => p,
                        Err(e) => break Err(CopyError::Framing(e)),
                    };
                    payload = decoder.data_total();
                    let _ = buf.split_to(progress.consumed);
                    if let Some(c) = capture.as_deref_mut() {
                        c.take(scratch);
                    }
                    let sent = match (output, filter.as_deref_mut()) {
                        (Output::Filter { chunked }, Some(f)) => {
                            filter::frame(f, scratch, chunked, &mut filtered, &mut framed);
                            scratch.clear();
                            // The last output goes with the filter's end.
                            if decoder.is_done() {
                                Ok(())
                            } else {
                                write_all_buf(dst, &mut framed, send).await
                            }
                        }
                        _ => write_all_buf(dst, scratch, send).await,
                    };
                    sent.map_err(CopyError::Sink)
                }
                (Framing::Chunked, _) => {
                    let src_bytes = &buf[..];
                    let progress = match decoder.decode(src_bytes, |r| {
                        if let Some(c) = capture.as_deref_mut() {
                            c.take(&src_bytes[r]);
                        }
                    }) {
                        Ok(p) => p,
                        Err(e) => break Err(CopyError::Framing(e)),
                    };
                    payload = decoder.data_total();
                    let section = &buf[progress.trailers_at..progress.consumed];
                    let plain_end = progress.done && !holding_trailers && section == b"\r\n";
                    if output != Output::Same
                        || progress.trailers_at == progress.consumed
                        || plain_end
                    {
                        send_front(dst, buf, progress.consumed, output, send).await
                    } else {
                        if !holding_trailers {
                            scratch.clear();
                            holding_trailers = true;
                        }
                        scratch.extend_from_slice(section);
                        let sent = send_front(dst, buf, progress.trailers_at, output, send).await;
                        bytes::Buf::advance(buf, progress.consumed - progress.trailers_at);
                        match sent {
                            Ok(()) if progress.done => {
                                let dropped = drop_disallowed_trailers(scratch);
                                if let Some(c) = trailers_dropped.filter(|_| dropped > 0) {
                                    c.add(u64::from(dropped));
                                }
                                write_all_buf(dst, scratch, send)
                                    .await
                                    .map_err(CopyError::Sink)
                            }
                            r => r,
                        }
                    }
                }
                (_, Output::Filter { chunked }) => {
                    let take = match framing {
                        Framing::Length(_) => remaining.min(buf.len() as u64) as usize,
                        _ => buf.len(),
                    };
                    remaining = remaining.saturating_sub(take as u64);
                    payload += take as u64;
                    if let Some(c) = capture.as_deref_mut() {
                        c.take(&buf[..take]);
                    }
                    if let Some(f) = filter.as_deref_mut() {
                        filter::frame(f, &buf[..take], chunked, &mut filtered, &mut framed);
                    }
                    bytes::Buf::advance(buf, take);
                    if remaining > 0 {
                        write_all_buf(dst, &mut framed, send)
                            .await
                            .map_err(CopyError::Sink)
                    } else {
                        // The last output goes with the filter's end.
                        Ok(())
                    }
                }
                (Framing::Length(_), _) => {
                    let take = remaining.min(buf.len() as u64) as usize;
                    remaining -= take as u64;
                    payload += take as u64;
                    if let Some(c) = capture.as_deref_mut() {
                        c.take(&buf[..take]);
                    }
                    send_front(dst, buf, take, output, send).await
                }
                (Framing::UntilClose, Output::Chunk) => {
                    payload += buf.len() as u64;
                    if let Some(c) = capture.as_deref_mut() {
                        c.take(buf);
                    }
                    write_chunk_header(scratch, buf.len());
                    scratch.extend_from_slice(buf);
                    scratch.extend_from_slice(b"\r\n");
                    buf.clear();
                    write_all_buf(dst, scratch, send)
                        .await
                        .map_err(CopyError::Sink)
                }
                (Framing::UntilClose, _) => {
                    let n = buf.len();
                    payload += n as u64;
                    if let Some(c) = capture.as_deref_mut() {
                        c.take(buf);
                    }
                    send_front(dst, buf, n, output, send).await
                }
            };
            if let Err(e) = step {
                break Err(e);
            }
            if payload > limit {
                break Err(CopyError::TooLarge);
            }
        };
        let ended = match (result, output) {
            (Ok(()), Output::Chunk) => {
                scratch.extend_from_slice(b"0\r\n\r\n");
                write_all_buf(dst, scratch, send)
                    .await
                    .map_err(CopyError::Sink)
            }
            (Ok(()), Output::Filter { chunked }) => {
                if let Some(f) = filter {
                    filter::end(f, chunked, &mut framed);
                }
                write_all_buf(dst, &mut framed, send)
                    .await
                    .map_err(CopyError::Sink)
            }
            (Err(e), Output::Filter { .. }) if !matches!(e, CopyError::Sink(_)) => {
                // The source failed: what was held back (the lead, or
                // output that was to go with the end) still goes out, so
                // the caller's closing words follow a whole head.
                if !framed.is_empty() {
                    let _ = write_all_buf(dst, &mut framed, send).await;
                }
                Err(e)
            }
            (r, _) => r,
        };
        for b in [framed, filtered] {
            if b.capacity() > 0 {
                pool.put_buf(b);
            }
        }
        ended
    }
}

/// Writes the first `n` bytes of `buf` to `dst` and removes them from
/// `buf`, without copying: the whole buffer goes to the kernel when it is
/// all body, a split-off front part otherwise.
async fn send_front<W: AsyncWriteRent>(
    dst: &mut W,
    buf: &mut BytesMut,
    n: usize,
    output: Output,
    send: SendLimit<'_>,
) -> Result<(), CopyError> {
    if n == 0 {
        return Ok(());
    }
    if output == Output::Discard {
        let _ = buf.split_to(n);
        return Ok(());
    }
    if n == buf.len() {
        return write_all_buf(dst, buf, send).await.map_err(CopyError::Sink);
    }
    let mut front = buf.split_to(n);
    write_all_buf(dst, &mut front, send)
        .await
        .map_err(CopyError::Sink)
}

/// A sink that drops everything, for reading away a body nobody receives.
pub(crate) struct Discard;

impl AsyncWriteRent for Discard {
    async fn write<T: monoio::buf::IoBuf>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        let n = buf.bytes_init();
        (Ok(n), buf)
    }

    async fn writev<T: monoio::buf::IoVecBuf>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}
