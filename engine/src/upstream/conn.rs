//! A connection to an upstream server, and the count of connections in use
//! to each server over all workers (`max-connections`).
//!
//! The count is one atomic per server shared by the workers, touched twice
//! per request, and only for a server with a cap: a connection holds its
//! slot while a request uses it; idle pooled connections do not count (as
//! nginx's `max_conns`), so a connection idle in one worker's pool never
//! keeps another worker from the server.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::ClientConnection;

use crate::rt::io::Transport;
use crate::stats::labeled::ServerStats;
use crate::tls::stream::TlsStream;

/// Connections in use to one server, over all workers, and its cap.
#[derive(Debug)]
pub(crate) struct OpenCount {
    open: AtomicU32,
    /// `max-connections`; `u32::MAX` when there is none.
    max: AtomicU32,
}

impl OpenCount {
    pub(crate) fn new(max: Option<u32>) -> OpenCount {
        OpenCount {
            open: AtomicU32::new(0),
            max: AtomicU32::new(max.unwrap_or(u32::MAX)),
        }
    }

    /// A reload changed the cap: connections already open stay open.
    pub(crate) fn set_max(&self, max: Option<u32>) {
        self.max.store(max.unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// Whether the server has a cap at all.
    pub(crate) fn capped(&self) -> bool {
        self.max.load(Ordering::Relaxed) != u32::MAX
    }

    /// Takes a slot for a connection in use, unless the cap is reached.
    pub(crate) fn open(self: &Arc<Self>) -> Option<Slot> {
        let max = self.max.load(Ordering::Relaxed);
        let mut n = self.open.load(Ordering::Relaxed);
        loop {
            if n >= max {
                return None;
            }
            match self
                .open
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(Slot(self.clone())),
                Err(now) => n = now,
            }
        }
    }
}

/// One connection's place in its server's count while a request uses it;
/// given back when it goes idle or closes.
#[derive(Debug)]
pub(crate) struct Slot(Arc<OpenCount>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The transport of an upstream connection: plain TCP, or TLS over it.
pub(crate) enum Link {
    Plain(TcpStream),
    Tls(Box<TlsStream<ClientConnection>>),
}

/// A connection to an upstream server, holding its slot in the server's
/// count while in use, when the server has a cap.
pub(crate) struct UpConn {
    pub(crate) link: Link,
    pub(crate) slot: Option<Slot>,
    /// Counts the connection as open to its server until it is dropped.
    pub(crate) _open: OpenGauge,
}

/// One open connection in its server's `open` gauge (on the worker that
/// owns both, so a single-writer counter is enough).
pub(crate) struct OpenGauge(Arc<ServerStats>);

impl OpenGauge {
    pub(crate) fn new(stats: &Arc<ServerStats>) -> OpenGauge {
        stats.open.inc();
        OpenGauge(stats.clone())
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.open.dec();
    }
}

impl UpConn {
    /// The TCP stream underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match &self.link {
            Link::Plain(s) => s,
            Link::Tls(t) => t.tcp(),
        }
    }

    /// Whether bytes a read would return are already buffered (decrypted
    /// or undecrypted TLS data).
    pub(crate) fn buffered(&self) -> bool {
        match &self.link {
            Link::Plain(_) => false,
            Link::Tls(t) => t.buffered(),
        }
    }
}

impl AsyncReadRent for UpConn {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.link {
            Link::Plain(s) => s.read(buf).await,
            Link::Tls(t) => t.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.link {
            Link::Plain(s) => s.readv(buf).await,
            Link::Tls(t) => t.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for UpConn {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.link {
            Link::Plain(s) => s.write(buf).await,
            Link::Tls(t) => t.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.link {
            Link::Plain(s) => s.writev(buf).await,
            Link::Tls(t) => t.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match &mut self.link {
            Link::Plain(s) => s.flush().await,
            Link::Tls(t) => t.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.link {
            Link::Plain(s) => s.shutdown().await,
            Link::Tls(t) => t.shutdown().await,
        }
    }
}

/// A plain connection's two directions, apart: a request body is written
/// on one while the answer is read on the other (an upstream may answer
/// before it has read the whole body).
pub(crate) struct Halves {
    pub(crate) read: OwnedReadHalf<TcpStream>,
    pub(crate) write: OwnedWriteHalf<TcpStream>,
    slot: Option<Slot>,
    open: OpenGauge,
}

impl UpConn {
    /// Splits a plain connection (one small allocation, for the length of
    /// one body); a TLS one, whose two directions share one session, is
    /// given back whole.
    pub(crate) fn split(self) -> Result<Halves, UpConn> {
        match self.link {
            Link::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                Ok(Halves {
                    read,
                    write,
                    slot: self.slot,
                    open: self._open,
                })
            }
            link => Err(UpConn { link, ..self }),
        }
    }
}

impl Halves {
    /// The connection whole again.
    pub(crate) fn join(self) -> UpConn {
        let tcp = self
            .read
            .reunite(self.write)
            .expect("both halves come from one split");
        UpConn {
            link: Link::Plain(tcp),
            slot: self.slot,
            _open: self.open,
        }
    }
}

/// Waiting on an upstream connection without a buffer: a tunnel waits on
/// both of its ends at once.
impl Transport for UpConn {
    async fn wait_readable(&self) -> io::Result<()> {
        match &self.link {
            Link::Plain(s) => s.wait_readable().await,
            Link::Tls(t) => t.wait_readable().await,
        }
    }
}
