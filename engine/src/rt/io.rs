//! Byte streams and the per-worker buffer pool.
//!
//! Connection code is generic over [`Transport`], so a TLS stream can stand
//! where a TCP stream stands today. Buffers come from a per-worker pool and
//! go back to it between requests: an idle keep-alive connection holds no
//! read buffer at all (it waits for readability first), which keeps the cost
//! of an idle client at a few hundred bytes instead of a 16 KiB buffer.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::BytesMut;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::http::head::Header;
use crate::rt::deadline::Deadlines;

/// A bidirectional byte stream a connection can run over.
pub trait Transport: AsyncReadRent + AsyncWriteRent {
    /// Resolves when a read would not block (data or EOF), without handing
    /// a buffer to the kernel. May wake spuriously.
    fn wait_readable(&self) -> impl Future<Output = io::Result<()>>;

    /// The connection is going idle: give back memory held for traffic
    /// (TLS record buffers), to take again when traffic resumes.
    fn idle(&mut self) {}
}

impl Transport for TcpStream {
    fn wait_readable(&self) -> impl Future<Output = io::Result<()>> {
        // Not relaxed: on epoll the cached readiness is still "readable"
        // after a read that emptied the socket, so a relaxed wait would
        // return at once and the idle connection would sit in a read
        // holding a buffer. io_uring ignores the flag (it is a PollAdd).
        self.readable(false)
    }
}

/// Size of a pooled body buffer: large enough for efficient body copies;
/// bodies stream through it piece by piece.
pub const BUF_SIZE: usize = 16 * 1024;
/// Size of the buffer a client connection reads its next head into. Most
/// heads fit; a larger one grows the buffer. Kept small because every
/// waking connection takes one before it knows whether a request or an EOF
/// is coming (10,000 clients closing at once cost 20 MiB, not 160 MiB).
pub const HEAD_BUF_SIZE: usize = 2 * 1024;
/// Buffers and header lists kept for reuse per worker; beyond this they
/// are freed, so a burst does not pin its peak memory forever.
const POOL_MAX: usize = 1024;

/// Per-worker pool of read/write buffers and header span lists.
#[derive(Default)]
pub struct Pool {
    bufs: RefCell<Vec<BytesMut>>,
    head_bufs: RefCell<Vec<BytesMut>>,
    headers: RefCell<Vec<Vec<Header>>>,
}

impl Pool {
    pub fn buf(&self) -> BytesMut {
        self.bufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
    }

    /// A small buffer for reading a request head.
    pub fn head_buf(&self) -> BytesMut {
        self.head_bufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(HEAD_BUF_SIZE))
    }

    /// Takes a buffer back, into the pool its size belongs to. Heads split
    /// off it may have shrunk its visible capacity; once they are dropped
    /// the whole allocation is reclaimed without allocating. A buffer still
    /// shared, or grown past 4× the body size by a large head, is freed.
    pub fn put_buf(&self, mut b: BytesMut) {
        b.clear();
        let pool = if b.try_reclaim(BUF_SIZE) {
            if b.capacity() > 4 * BUF_SIZE {
                return;
            }
            &self.bufs
        } else if b.try_reclaim(HEAD_BUF_SIZE) {
            &self.head_bufs
        } else {
            return;
        };
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(b);
        }
    }

    /// Makes `buf` a body-sized pooled buffer, keeping its contents, so a
    /// body does not stream through a head-sized one.
    pub fn upsize(&self, buf: &mut BytesMut) {
        if buf.capacity() >= BUF_SIZE {
            return;
        }
        let mut big = self.buf();
        big.extend_from_slice(buf);
        self.put_buf(std::mem::replace(buf, big));
    }

    pub fn headers(&self) -> Vec<Header> {
        self.headers.borrow_mut().pop().unwrap_or_default()
    }

    pub fn put_headers(&self, mut h: Vec<Header>) {
        if h.capacity() == 0 {
            // A list whose storage moved into a parsed head: nothing to keep.
            return;
        }
        h.clear();
        let mut pool = self.headers.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(h);
        }
    }
}

/// Reads more bytes onto the end of `buf`, growing it if it is nearly full
/// (a head buffer that is growing is carrying a body or a large head).
/// Returns the number of bytes read (0 at EOF).
pub async fn read_more<S: AsyncReadRent>(io: &mut S, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 512
        && !buf.try_reclaim(BUF_SIZE)
        && !buf.try_reclaim(HEAD_BUF_SIZE)
    {
        buf.reserve(BUF_SIZE);
    }
    let len = buf.len();
    let cap = buf.capacity();
    let owned = std::mem::take(buf);
    let (res, slice) = io.read(owned.slice_mut(len..cap)).await;
    *buf = slice.into_inner();
    res
}

/// How long a peer may take to accept what we write to it.
#[derive(Clone, Copy)]
pub struct SendLimit<'a> {
    pub deadlines: &'a Deadlines,
    pub limit: Duration,
}

/// Writes all of `buf` and clears it, keeping its allocation. A peer that
/// accepts nothing for `send.limit` gets `TimedOut` (and the buffer is
/// lost with the dropped write).
pub async fn write_all_buf<S: AsyncWriteRent>(
    io: &mut S,
    buf: &mut BytesMut,
    send: SendLimit<'_>,
) -> io::Result<()> {
    let written = write_all_keep(io, buf, send).await;
    buf.clear();
    written
}

/// Like [`write_all_buf`], but leaves the bytes in `buf` (for a resend).
pub async fn write_all_keep<S: AsyncWriteRent>(
    io: &mut S,
    buf: &mut BytesMut,
    send: SendLimit<'_>,
) -> io::Result<()> {
    let owned = std::mem::take(buf);
    match send
        .deadlines
        .within_for(send.limit, io.write_all(owned))
        .await
    {
        Ok((res, owned)) => {
            *buf = owned;
            res.map(|_| ())
        }
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}
