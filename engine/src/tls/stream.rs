//! A TLS stream over a monoio TCP stream, driving a rustls connection with
//! owned buffers.
//!
//! Written here rather than taken from monoio-rustls because the gateway
//! needs the session itself after the handshake (the SNI, the client's
//! certificate, whether it resumed) and must know whether decrypted bytes
//! are already waiting: a connection waits for its next request by polling
//! the socket without a buffer, which would hang on a request rustls has
//! already decrypted. The stream keeps the count rustls reports
//! (`plaintext_bytes_to_read`) and answers readiness from it.
//!
//! Ciphertext is read into `rx` and handed to rustls; what rustls produces
//! is gathered in `tx` and written whole. Both are kept while traffic
//! flows and given back when the connection goes idle ([`Transport::idle`]),
//! so an idle TLS client holds no record buffers.

use std::io::{self, BufRead, Read, Write};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::{ConnectionCommon, SideData};

use crate::rt::io::Transport;

/// Ciphertext read per socket read: one maximal TLS record and its header.
const RX_SIZE: usize = 16 * 1024 + 512;

/// A reader that has nothing yet.
struct WouldBlock;

impl Read for WouldBlock {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// A TLS connection (server or client side) over TCP.
pub(crate) struct TlsStream<C> {
    io: TcpStream,
    pub(crate) conn: C,
    rx: Vec<u8>,
    /// Bytes of `rx` already given to rustls.
    rx_pos: usize,
    tx: Vec<u8>,
    /// Decrypted bytes rustls holds for us.
    plaintext: usize,
    /// The socket reached EOF.
    eof: bool,
}

impl<C, S> TlsStream<C>
where
    C: std::ops::DerefMut<Target = ConnectionCommon<S>>,
    S: SideData,
{
    pub(crate) fn new(io: TcpStream, conn: C) -> TlsStream<C> {
        TlsStream {
            io,
            conn,
            rx: Vec::new(),
            rx_pos: 0,
            tx: Vec::new(),
            plaintext: 0,
            eof: false,
        }
    }

    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.io
    }

    /// Completes the handshake (and sends what follows it at once, such
    /// as TLS 1.3 session tickets).
    pub(crate) async fn handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            if self.conn.wants_write() {
                self.flush_tls().await?;
                continue;
            }
            if self.fill().await? == 0 && self.eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
        }
        self.flush_tls().await
    }

    /// Reads ciphertext (from what is buffered, else from the socket),
    /// gives it to rustls and processes it. Returns the bytes handed over;
    /// 0 with `eof` set at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.rx_pos == self.rx.len() {
            self.rx.clear();
            self.rx_pos = 0;
            if self.rx.capacity() == 0 {
                self.rx.reserve_exact(RX_SIZE);
            }
            let buf = std::mem::take(&mut self.rx);
            let (res, buf) = self.io.read(buf).await;
            self.rx = buf;
            if res? == 0 {
                self.eof = true;
                // Tells rustls the transport ended: a read then reports a
                // truncated stream unless close_notify came first.
                let _ = self.conn.read_tls(&mut io::empty());
                return Ok(0);
            }
        }
        let mut pending = &self.rx[self.rx_pos..];
        let n = self.conn.read_tls(&mut pending)?;
        self.rx_pos += n;
        match self.conn.process_new_packets() {
            Ok(state) => self.plaintext = state.plaintext_bytes_to_read(),
            Err(e) => {
                // Send the alert rustls queued, then fail.
                if super::certs::is_unknown_sni(&e) {
                    let _ = self.send_unrecognized_name().await;
                } else {
                    let _ = self.flush_tls().await;
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(n)
    }

    /// Writes everything rustls has queued.
    async fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.tx.clear();
            self.conn.write_tls(&mut self.tx)?;
            let buf = std::mem::take(&mut self.tx);
            let (res, buf) = self.io.write_all(buf).await;
            self.tx = buf;
            res?;
        }
        self.tx.clear();
        Ok(())
    }

    /// Refuses a ClientHello whose name matches no certificate with the
    /// `unrecognized_name` alert (RFC 6066 §3), where rustls would send
    /// `access_denied`. No keys exist before a ServerHello, so the alert
    /// rustls queued is a plaintext record and its description byte is
    /// rewritten; anything else rustls queued goes out unchanged.
    async fn send_unrecognized_name(&mut self) -> io::Result<()> {
        const ACCESS_DENIED: u8 = 49;
        const UNRECOGNIZED_NAME: u8 = 112;
        self.tx.clear();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tx)?;
        }
        // ContentType alert (21), a version, length 2, level fatal (2).
        if let [21, _, _, 0, 2, 2, description] = &mut self.tx[..] {
            if *description == ACCESS_DENIED {
                *description = UNRECOGNIZED_NAME;
            }
        }
        let buf = std::mem::take(&mut self.tx);
        let (res, mut buf) = self.io.write_all(buf).await;
        buf.clear();
        self.tx = buf;
        res.map(drop)
    }

    /// Bytes a read can return without touching the socket.
    pub(crate) fn buffered(&self) -> bool {
        self.plaintext > 0 || self.rx_pos < self.rx.len()
    }
}

impl<C, S> AsyncReadRent for TlsStream<C>
where
    C: std::ops::DerefMut<Target = ConnectionCommon<S>>,
    S: SideData,
{
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        loop {
            // rustls hands out its decrypted bytes as a slice, which is
            // copied through raw pointers: the destination's tail is
            // uninitialised memory, over which no `&mut [u8]` may be made.
            let mut reader = self.conn.reader();
            match reader.fill_buf() {
                Ok(chunk) => {
                    let n = chunk.len().min(buf.bytes_total());
                    // SAFETY: `write_ptr()` is valid for `bytes_total()`
                    // bytes of writes and `n` is at most that; `chunk` is
                    // rustls's own buffer, which cannot overlap it.
                    unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), buf.write_ptr(), n) };
                    reader.consume(n);
                    // SAFETY: the first `n` bytes were just written.
                    unsafe { buf.set_init(n) };
                    self.plaintext = self.plaintext.saturating_sub(n);
                    return (Ok(n), buf);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify. Many do; HTTP
                // framing (or the lack of it) decides what that means, as
                // for a plain connection.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return (Ok(0), buf);
                }
                Err(e) => return (Err(e), buf),
            }
            if self.conn.wants_write() {
                if let Err(e) = self.flush_tls().await {
                    return (Err(e), buf);
                }
            }
            if let Err(e) = self.fill().await {
                return (Err(e), buf);
            }
        }
    }

    async fn readv<T: monoio::buf::IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }
}

impl<C, S> AsyncWriteRent for TlsStream<C>
where
    C: std::ops::DerefMut<Target = ConnectionCommon<S>>,
    S: SideData,
{
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: an `IoBuf` has `bytes_init()` initialised bytes at
        // `read_ptr()`, alive as long as `buf`.
        let slice = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let n = match self.conn.writer().write(slice) {
            Ok(n) => n,
            Err(e) => return (Err(e), buf),
        };
        match self.flush_tls().await {
            Ok(()) => (Ok(n), buf),
            Err(e) => (Err(e), buf),
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.flush_tls().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        let _ = self.flush_tls().await;
        self.io.shutdown().await
    }
}

impl<C, S> Transport for TlsStream<C>
where
    C: std::ops::DerefMut<Target = ConnectionCommon<S>>,
    S: SideData,
{
    async fn wait_readable(&self) -> io::Result<()> {
        if self.buffered() {
            return Ok(());
        }
        self.io.readable(false).await
    }

    fn idle(&mut self) {
        if !self.buffered() {
            self.rx = Vec::new();
            self.rx_pos = 0;
            self.tx = Vec::new();
            // rustls shrinks its own record buffer at the start of a read;
            // a reader with nothing to give triggers just that (WouldBlock
            // does not count as the end of the stream).
            let _ = self.conn.read_tls(&mut WouldBlock);
        }
    }
}
