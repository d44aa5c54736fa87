//! Byte streams and the per-worker buffer pool.
//!
//! Connection code is generic over [`Transport`], so a TLS stream can stand
//! where a TCP stream stands today. Buffers come from a per-worker pool and
//! go back to it between requests: an idle keep-alive connection holds no
//! read buffer at all (it waits for readability first), which keeps the cost
//! of an idle client at a few hundred bytes instead of a 16 KiB buffer.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;

use crate::http::head::Header;
use crate::rt::deadline::Deadlines;

/// A bidirectional byte stream a connection can run over.
pub(crate) trait Transport: AsyncReadRent + AsyncWriteRent {
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
pub(crate) const BUF_SIZE: usize = 16 * 1024;
/// Size of the buffer a client connection reads its next head into. Most
/// heads fit; a larger one grows the buffer. Kept small because every
/// waking connection takes one before it knows whether a request or an EOF
/// is coming (10,000 clients closing at once cost 20 MiB, not 160 MiB).
pub(crate) const HEAD_BUF_SIZE: usize = 2 * 1024;
/// Buffers and header lists kept for reuse per worker; beyond this they
/// are freed, so a burst does not pin its peak memory forever.
const POOL_MAX: usize = 1024;
/// What a trim always leaves in each pool: enough for the requests a few
/// busy connections have in flight at once, so steady traffic never
/// allocates (8 body and 8 head buffers: 144 KiB per worker).
const POOL_FLOOR: usize = 8;

/// One kind of pooled thing, with the fewest it held since the last trim:
/// that many sat unused all along and can go.
struct Shelf<T> {
    items: RefCell<Vec<T>>,
    low: Cell<usize>,
}

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Shelf {
            items: RefCell::new(Vec::new()),
            low: Cell::new(0),
        }
    }
}

impl<T> Shelf<T> {
    fn take(&self) -> Option<T> {
        let mut items = self.items.borrow_mut();
        let item = items.pop();
        if items.len() < self.low.get() {
            self.low.set(items.len());
        }
        item
    }

    fn give(&self, item: T) {
        let mut items = self.items.borrow_mut();
        if items.len() < POOL_MAX {
            items.push(item);
        }
    }

    /// Frees what was not taken since the last trim, keeping `floor`.
    fn trim(&self, floor: usize) {
        let mut items = self.items.borrow_mut();
        let unused = self.low.get().min(items.len());
        let keep = (items.len() - unused).max(floor.min(items.len()));
        // The list's own storage stays (at most POOL_MAX pointers): growing
        // it again would allocate on the request path.
        items.truncate(keep);
        self.low.set(items.len());
    }
}

/// Per-worker pool of read/write buffers and header span lists.
///
/// Bounded at [`POOL_MAX`] of each, and trimmed by the worker every second
/// to what was in use during that second, so a burst of connections gives
/// its buffers back to the allocator once it is over.
#[derive(Default)]
pub(crate) struct Pool {
    bufs: Shelf<BytesMut>,
    head_bufs: Shelf<BytesMut>,
    headers: Shelf<Vec<Header>>,
}

impl Pool {
    pub(crate) fn buf(&self) -> BytesMut {
        self.bufs
            .take()
            .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
    }

    /// A small buffer for reading a request head.
    pub(crate) fn head_buf(&self) -> BytesMut {
        self.head_bufs
            .take()
            .unwrap_or_else(|| BytesMut::with_capacity(HEAD_BUF_SIZE))
    }

    /// Takes a buffer back, into the pool its size belongs to. Heads split
    /// off it may have shrunk its visible capacity; once they are dropped
    /// the whole allocation is reclaimed without allocating. A buffer still
    /// shared, or grown past 4× the body size by a large head, is freed.
    pub(crate) fn put_buf(&self, mut b: BytesMut) {
        b.clear();
        if b.try_reclaim(BUF_SIZE) {
            if b.capacity() <= 4 * BUF_SIZE {
                self.bufs.give(b);
            }
        } else if b.try_reclaim(HEAD_BUF_SIZE) {
            self.head_bufs.give(b);
        }
    }

    /// Makes `buf` a body-sized pooled buffer, keeping its contents, so a
    /// body does not stream through a head-sized one.
    pub(crate) fn upsize(&self, buf: &mut BytesMut) {
        if buf.capacity() >= BUF_SIZE {
            return;
        }
        let mut big = self.buf();
        big.extend_from_slice(buf);
        self.put_buf(std::mem::replace(buf, big));
    }

    pub(crate) fn headers(&self) -> Vec<Header> {
        self.headers.take().unwrap_or_default()
    }

    pub(crate) fn put_headers(&self, mut h: Vec<Header>) {
        if h.capacity() == 0 {
            // A list whose storage moved into a parsed head: nothing to keep.
            return;
        }
        h.clear();
        self.headers.give(h);
    }

    /// Frees what sat unused since the last call (called every second),
    /// keeping [`POOL_FLOOR`] of each while the worker has `connections`
    /// (for their steady traffic) and nothing once it has none.
    pub(crate) fn trim(&self, connections: u64) {
        let floor = if connections == 0 { 0 } else { POOL_FLOOR };
        self.bufs.trim(floor);
        self.head_bufs.trim(floor);
        self.headers.trim(floor);
    }
}

/// Reads more bytes onto the end of `buf`, growing it if it is nearly full
/// (a head buffer that is growing is carrying a body or a large head).
/// Returns the number of bytes read (0 at EOF).
pub(crate) async fn read_more<S: AsyncReadRent>(
    io: &mut S,
    buf: &mut BytesMut,
) -> io::Result<usize> {
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

/// How long a peer may take to accept what we write to it: the limit is
/// on making no progress at all (no byte accepted), not on the whole write,
/// so a slow reader that keeps taking bytes is never cut off.
#[derive(Clone, Copy)]
pub(crate) struct SendLimit<'a> {
    pub(crate) deadlines: &'a Deadlines,
    pub(crate) limit: Duration,
}

/// Writes all of `buf` and clears it, keeping its allocation. A peer that
/// accepts nothing for `send.limit` gets `TimedOut` (and the buffer is
/// lost with the dropped write).
pub(crate) async fn write_all_buf<S: AsyncWriteRent>(
    io: &mut S,
    buf: &mut BytesMut,
    send: SendLimit<'_>,
) -> io::Result<()> {
    let written = write_all_keep(io, buf, send).await;
    buf.clear();
    written
}

/// Like [`write_all_buf`], but leaves the bytes in `buf` (for a resend).
pub(crate) async fn write_all_keep<S: AsyncWriteRent>(
    io: &mut S,
    buf: &mut BytesMut,
    send: SendLimit<'_>,
) -> io::Result<()> {
    let (res, back) = write_all(io, std::mem::take(buf), send).await;
    if let Some(back) = back {
        *buf = back;
    }
    res
}

/// Writes all of `buf` (a stored body, say) without copying it.
pub(crate) async fn write_bytes<S: AsyncWriteRent>(
    io: &mut S,
    buf: Bytes,
    send: SendLimit<'_>,
) -> io::Result<()> {
    write_all(io, buf, send).await.0
}

/// Writes the initialised bytes of `buf`, each write bounded by
/// `send.limit` from when it started: the deadline moves with every byte
/// the peer accepts. Gives `buf` back unless a write timed out (the dropped
/// operation took it).
async fn write_all<S: AsyncWriteRent, B: IoBuf>(
    io: &mut S,
    buf: B,
    send: SendLimit<'_>,
) -> (io::Result<()>, Option<B>) {
    let len = buf.bytes_init();
    let mut written = 0;
    let mut buf = buf;
    while written < len {
        let writing = io.write(buf.slice(written..len));
        match send.deadlines.within_for(send.limit, writing).await {
            Ok((Ok(0), slice)) => {
                return (
                    Err(io::ErrorKind::WriteZero.into()),
                    Some(slice.into_inner()),
                )
            }
            Ok((Ok(n), slice)) => {
                // A writer reports at most what it was given.
                written += n.min(len - written);
                buf = slice.into_inner();
            }
            Ok((Err(e), slice)) => return (Err(e), Some(slice.into_inner())),
            Err(_) => return (Err(io::ErrorKind::TimedOut.into()), None),
        }
    }
    (Ok(()), Some(buf))
}

/// A transport that counts the bytes read from and written to it, for the
/// request's log record (`$bytes_sent`, `$request_length`).
pub(crate) struct Counted<S> {
    pub(crate) inner: S,
    /// Bytes read so far.
    pub(crate) read: u64,
    /// Bytes written so far.
    pub(crate) written: u64,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S) -> Counted<S> {
        Counted {
            inner,
            read: 0,
            written: 0,
        }
    }
}

impl<S: AsyncReadRent> AsyncReadRent for Counted<S> {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        let (res, buf) = self.inner.read(buf).await;
        if let Ok(n) = res {
            self.read += n as u64;
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        let (res, buf) = self.inner.readv(buf).await;
        if let Ok(n) = res {
            self.read += n as u64;
        }
        (res, buf)
    }
}

impl<S: AsyncWriteRent> AsyncWriteRent for Counted<S> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let (res, buf) = self.inner.write(buf).await;
        if let Ok(n) = res {
            self.written += n as u64;
        }
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let (res, buf) = self.inner.writev(buf).await;
        if let Ok(n) = res {
            self.written += n as u64;
        }
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }
}

impl<S: Transport> Transport for Counted<S> {
    fn wait_readable(&self) -> impl Future<Output = io::Result<()>> {
        self.inner.wait_readable()
    }

    fn idle(&mut self) {
        self.inner.idle();
    }
}
