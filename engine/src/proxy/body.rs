//! Streams a message body from one connection to another, re-framing it
//! when the receiver needs a different framing (RFC 9112 §6–§7).
//!
//! Bodies are never gathered: each read is written on before the next read,
//! so memory per transfer is one pooled buffer whatever the body size. A
//! validated chunked body is forwarded byte for byte; the only copies are on
//! the rare re-framing paths (de-chunking for HTTP/1.0 clients, chunking a
//! close-delimited upstream body for HTTP/1.1 clients).

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::http::chunked::{write_chunk_header, ChunkError, ChunkedDecoder};
use crate::rt::deadline::Deadlines;
use crate::rt::io::{read_more, write_all_buf, Pool, SendLimit};

/// How the incoming body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Framing {
    /// The framing of a body of this kind; `None` when there is no body.
    pub fn of(body: crate::http::head::BodyKind) -> Option<Framing> {
        use crate::http::head::BodyKind;
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
pub enum Output {
    /// Same framing as the input (chunked stays chunked, byte for byte).
    Same,
    /// Strip chunked framing; the receiver reads until close.
    Dechunk,
    /// Add chunked framing to a close-delimited input.
    Chunk,
    /// Read and drop (a body nobody will receive).
    Discard,
}

/// Why a copy stopped early.
#[derive(Debug)]
pub enum CopyError {
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

pub struct Copy<'a> {
    pub framing: Framing,
    pub output: Output,
    /// Payload limit (413 on requests).
    pub limit: u64,
    /// Longest wait for the next bytes from the source.
    pub idle: Duration,
    /// Scratch for re-framing; empty on the common paths.
    pub scratch: &'a mut BytesMut,
    /// The worker's deadlines, for the idle limit on each read.
    pub deadlines: &'a Deadlines,
    /// Longest wait for the destination to accept each write.
    pub send_limit: Duration,
    /// The worker's buffers: a head-sized source buffer is swapped for a
    /// body-sized one first.
    pub pool: &'a Pool,
}

impl Copy<'_> {
    /// Copies the body from `src` to `dst`. `buf` holds bytes already read
    /// from `src`; on return it holds whatever followed the body (the next
    /// pipelined message). Returns the payload bytes moved.
    pub async fn run<R, W>(
        self,
        src: &mut R,
        buf: &mut BytesMut,
        dst: &mut W,
    ) -> Result<u64, CopyError>
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
        } = self;
        let send_limit = SendLimit {
            deadlines,
            limit: send_limit,
        };
        pool.upsize(buf);
        let mut remaining = match framing {
            Framing::Length(n) => n,
            _ => u64::MAX,
        };
        let mut decoder = ChunkedDecoder::new();
        let mut total = 0u64;
        loop {
            let done = match framing {
                Framing::Length(_) => remaining == 0,
                Framing::Chunked => decoder.is_done(),
                Framing::UntilClose => false,
            };
            if done {
                break;
            }
            if buf.is_empty() {
                let n = match deadlines.within_for(idle, read_more(src, buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(CopyError::Source(e)),
                    Err(_) => return Err(CopyError::SourceTimeout),
                };
                if n == 0 {
                    if framing == Framing::UntilClose {
                        break;
                    }
                    return Err(CopyError::Source(io::ErrorKind::UnexpectedEof.into()));
                }
            }
            match framing {
                Framing::Length(_) => {
                    let take = remaining.min(buf.len() as u64) as usize;
                    remaining -= take as u64;
                    total += take as u64;
                    send(dst, buf, take, output, send_limit).await?;
                }
                Framing::Chunked => {
                    let progress = if output == Output::Dechunk {
                        let src_bytes = &buf[..];
                        decoder.decode(src_bytes, |r| scratch.extend_from_slice(&src_bytes[r]))
                    } else {
                        decoder.decode(&buf[..], |_| {})
                    }
                    .map_err(CopyError::Framing)?;
                    total = decoder.data_total();
                    if total > limit {
                        return Err(CopyError::TooLarge);
                    }
                    if output == Output::Dechunk {
                        let _ = buf.split_to(progress.consumed);
                        if !scratch.is_empty() {
                            write_all_buf(dst, scratch, send_limit)
                                .await
                                .map_err(CopyError::Sink)?;
                        }
                    } else {
                        send(dst, buf, progress.consumed, output, send_limit).await?;
                    }
                }
                Framing::UntilClose => {
                    total += buf.len() as u64;
                    if output == Output::Chunk {
                        write_chunk_header(scratch, buf.len());
                        scratch.extend_from_slice(buf);
                        scratch.extend_from_slice(b"\r\n");
                        buf.clear();
                        write_all_buf(dst, scratch, send_limit)
                            .await
                            .map_err(CopyError::Sink)?;
                    } else {
                        let n = buf.len();
                        send(dst, buf, n, output, send_limit).await?;
                    }
                }
            }
            if total > limit {
                return Err(CopyError::TooLarge);
            }
        }
        if output == Output::Chunk {
            scratch.extend_from_slice(b"0\r\n\r\n");
            write_all_buf(dst, scratch, send_limit)
                .await
                .map_err(CopyError::Sink)?;
        }
        Ok(total)
    }
}

/// Writes the first `n` bytes of `buf` to `dst` and removes them from
/// `buf`, without copying: the whole buffer goes to the kernel when it is
/// all body, a split-off front part otherwise.
async fn send<W: AsyncWriteRent>(
    dst: &mut W,
    buf: &mut BytesMut,
    n: usize,
    output: Output,
    send_limit: SendLimit<'_>,
) -> Result<(), CopyError> {
    if n == 0 {
        return Ok(());
    }
    if output == Output::Discard {
        let _ = buf.split_to(n);
        return Ok(());
    }
    if n == buf.len() {
        return write_all_buf(dst, buf, send_limit)
            .await
            .map_err(CopyError::Sink);
    }
    let mut front = buf.split_to(n);
    write_all_buf(dst, &mut front, send_limit)
        .await
        .map_err(CopyError::Sink)
}

/// A sink that drops everything, for reading away a body nobody receives.
pub struct Discard;

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
