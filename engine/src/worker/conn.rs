//! One client connection's state, shared by the stages that answer its
//! requests: the worker and generation it runs on, its peer and TLS
//! session facts, and its pooled buffers (given back between requests).

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;

use crate::http::head::Header;
use crate::worker::{Generation, ListenerState, Worker};

/// What a TLS connection's handshake established.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsInfo {
    /// The verified client certificate's subject, when one was asked for
    /// and given.
    pub(crate) client_subject: Option<String>,
    /// The header the subject travels upstream in.
    pub(crate) subject_header: Option<String>,
    /// The negotiated protocol version, as logs name it (`TLSv1.3`).
    pub(crate) version: Option<&'static str>,
    /// The server name the client asked for (SNI); kept only when the
    /// access log, its one reader, is on.
    pub(crate) sni: Option<Box<str>>,
}

impl TlsInfo {
    /// What `conn`'s finished handshake established. `keep_sni`: copy the
    /// SNI (one small allocation per connection).
    pub(crate) fn of(
        conn: &rustls::ServerConnection,
        subject_header: Option<&str>,
        keep_sni: bool,
    ) -> TlsInfo {
        let client_subject = subject_header.and_then(|_| {
            let leaf = conn.peer_certificates()?.first()?;
            crate::tls::certs::describe(leaf).ok().map(|d| d.subject)
        });
        let version = conn.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        });
        TlsInfo {
            client_subject,
            subject_header: subject_header.map(str::to_string),
            version,
            sni: conn.server_name().filter(|_| keep_sni).map(Box::from),
        }
    }
}

/// State of one client connection.
pub(crate) struct Conn {
    /// Set on a TLS connection.
    pub(crate) tls: Option<Box<TlsInfo>>,
    pub(crate) w: Rc<Worker>,
    /// The config generation of the request being answered (or of the last
    /// one, between requests).
    pub(crate) g: Rc<Generation>,
    /// The listener the connection came from; it fires when the listener
    /// is removed or the worker drains.
    pub(crate) listener: Rc<ListenerState>,
    pub(crate) peer: SocketAddr,
    /// Bytes read from the client and not yet consumed.
    pub(crate) rbuf: BytesMut,
    /// Bytes being written to the client or an upstream.
    pub(crate) wbuf: BytesMut,
    /// Scratch for re-framing bodies; usually empty.
    pub(crate) scratch: BytesMut,
    /// Header lines the response stage adds to the request's answer,
    /// whatever answers it (RateLimit-*, Retry-After, WWW-Authenticate,
    /// HSTS, Cache-Status); usually empty.
    pub(crate) extra: BytesMut,
    pub(crate) headers: Vec<Header>,
    /// Bytes of the current head received so far (for 408 vs silent close).
    pub(crate) head_bytes: usize,
    /// Close lingering: unread request bytes may still be arriving.
    pub(crate) linger: bool,
}

impl Conn {
    pub(crate) fn new(
        w: Rc<Worker>,
        peer: SocketAddr,
        listener: Rc<ListenerState>,
        tls: Option<TlsInfo>,
    ) -> Conn {
        Conn {
            tls: tls.map(Box::new),
            g: w.current(),
            w,
            listener,
            peer,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            scratch: BytesMut::new(),
            extra: BytesMut::new(),
            headers: Vec::new(),
            head_bytes: 0,
            linger: false,
        }
    }

    /// Gives the buffers back to the worker's pool (the connection is
    /// going idle or closing).
    pub(crate) fn release(&mut self) {
        let pool = &self.w.pool;
        // `extra` stays: it is small, and only connections whose requests
        // carry policy lines have grown it.
        for b in [&mut self.rbuf, &mut self.wbuf, &mut self.scratch] {
            if b.capacity() > 0 {
                pool.put_buf(std::mem::take(b));
            }
        }
        if self.headers.capacity() > 0 {
            pool.put_headers(std::mem::take(&mut self.headers));
        }
    }
}
