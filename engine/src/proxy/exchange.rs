//! One exchange with an upstream: pick a server, take a pooled connection
//! or open one, send the request, read the final response head. The one
//! retry loop, used by forwarding and by the cache's own fetches.
//!
//! A pooled connection may have been closed by the upstream while idle. If
//! it fails before any response byte arrives and resending is safe (an
//! idempotent method and no body, nothing relayed to the client yet), the
//! request is sent once more on a fresh connection; otherwise the error
//! goes back to the caller, which answers 502/503/504.

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use monoio::net::TcpStream;
use ringway_config::Route;

use crate::error::{Error, Kind, Retry};
use crate::http::head::ResponseHead;
use crate::http::parse;
use crate::proxy::ctx::Timings;
use crate::rt::io::{read_more, write_all_keep};
use crate::stats::labeled::{
    class_index, Failure, ServerStats, AT_MAX_CONNECTIONS, CLOSED_BEFORE_RESPONSE, CONNECT_FAILED,
    CONNECT_TIMEOUT, HEAD_TIMEOUT, SEND_TIMEOUT, TLS_HANDSHAKE, TLS_SESSION,
};
use crate::tls::stream::TlsStream;
use crate::upstream::conn::{Link, OpenGauge};
use crate::upstream::UpConn;
use crate::worker::{Generation, Worker};

/// A final response head from an upstream, with the connection it came on.
pub(crate) struct Fetched {
    pub(crate) up: UpConn,
    pub(crate) server: usize,
    /// Bytes read after the head (the start of the body).
    pub(crate) ubuf: BytesMut,
    pub(crate) resp: ResponseHead,
}

impl Fetched {
    /// Returns the connection to the pool when its body is done and it may
    /// be reused, else closes it; gives the buffers back.
    pub(crate) fn release(self, w: &Worker, g: &Generation, body_done: bool) {
        let reusable = body_done && self.resp.reusable && self.ubuf.is_empty();
        // The head first: it shares the buffer's memory, which can only go
        // back to the pool once nothing else holds it.
        w.pool.put_headers(self.resp.into_headers());
        w.pool.put_buf(self.ubuf);
        if reusable {
            g.upstreams.put_idle(self.server, self.up);
        }
    }
}

/// What the client side of an exchange does besides waiting: stream a
/// request body after the head, and relay interim (1xx) responses.
pub(crate) trait Peer {
    /// Sends the request body (if any) on `up`, after the head.
    async fn send_body(&mut self, up: &mut UpConn) -> Result<(), Error>;
    /// Relays an interim response head; `Ok(true)` when it reached the
    /// client (no retry may repeat it then).
    async fn interim(&mut self, resp: &ResponseHead) -> Result<bool, Error>;
}

/// An exchange nobody waits on (the cache's background fetch): no body,
/// interim responses skipped.
pub(crate) struct NoPeer;

impl Peer for NoPeer {
    async fn send_body(&mut self, _: &mut UpConn) -> Result<(), Error> {
        Ok(())
    }

    async fn interim(&mut self, _: &ResponseHead) -> Result<bool, Error> {
        Ok(false)
    }
}

/// Where an exchange goes and how it may be retried.
pub(crate) struct Target<'a> {
    pub(crate) route: &'a Route,
    pub(crate) group: usize,
    /// The request is HEAD (the response then has no body).
    pub(crate) is_head: bool,
    /// Safe to send again: idempotent and without a body.
    pub(crate) retry_safe: bool,
}

/// Sends `req` (the head, with any small body coalesced) and reads the
/// final response head. `req` is kept for a retry and left as sent.
pub(crate) async fn exchange<P: Peer>(
    w: &Worker,
    g: &Generation,
    t: &Target<'_>,
    req: &mut BytesMut,
    peer: &mut P,
    timings: &mut Timings,
) -> Result<Fetched, Error> {
    let mut attempt = 0;
    // A server that refused or did not take a connection: the request goes
    // once to another server of the group (nothing was sent yet, so this
    // is safe for any method; nginx's `proxy_next_upstream error timeout`).
    let mut unreachable: Option<usize> = None;
    loop {
        let ups = &g.upstreams;
        let server = match unreachable {
            Some(x) => ups.pick_other(t.group, x),
            None => ups.pick(t.group),
        };
        timings.server = Some(server);
        let stats = ups.stats(server);
        let Ok(slot) = ups.acquire(server) else {
            w.stats.upstream_connection_limit.inc();
            return Err(counted(
                stats,
                Error::upstream(Kind::Unavailable, AT_MAX_CONNECTIONS),
            ));
        };
        stats.requests.inc();
        let pooled = if attempt == 0 {
            ups.take_idle(server)
        } else {
            None
        };
        let reused = pooled.is_some();
        let mut up = match pooled {
            Some(up) => {
                w.stats.upstream_reuses.inc();
                up
            }
            None => {
                let began = Instant::now();
                let up = match connect(w, g, server, t.route).await {
                    Ok(up) => up,
                    Err(e) => {
                        let e = counted(stats, e);
                        let unreached = matches!(e.context, CONNECT_FAILED | CONNECT_TIMEOUT);
                        if unreached && unreachable.is_none() && ups.group_size(t.group) > 1 {
                            w.stats.upstream_next_server.inc();
                            unreachable = Some(server);
                            continue;
                        }
                        return Err(e);
                    }
                };
                let took = began.elapsed();
                stats.connect.observe(took);
                timings.upstream_connect = Some(took);
                up
            }
        };
        up.slot = slot;
        let may_retry = |e: &Error| attempt == 0 && t.retry_safe && e.may_retry(reused);
        let sent_at = Instant::now();
        if let Err(e) = write_all_keep(&mut up, req, w.send_limit(g)).await {
            let e = counted(stats, send_error(e));
            if may_retry(&e) {
                w.stats.upstream_retries.inc();
                attempt += 1;
                continue;
            }
            return Err(e);
        }
        peer.send_body(&mut up)
            .await
            .map_err(|e| counted(stats, e))?;

        // Response head, skipping or relaying interim responses. Once an
        // interim response reached the client, no retry may repeat it.
        let mut relayed = false;
        let mut ubuf = w.pool.buf();
        // One deadline for the final head, however many 1xx come first.
        let deadline = sent_at + t.route.limits.response_head_timeout;
        loop {
            let read = w
                .deadlines
                .within(
                    deadline,
                    read_response_head(w, g, &mut up, &mut ubuf, t.is_head),
                )
                .await;
            let resp = match read {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) => {
                    w.pool.put_buf(ubuf);
                    let e = counted(stats, e);
                    if !relayed && may_retry(&e) {
                        w.stats.upstream_retries.inc();
                        attempt += 1;
                        break;
                    }
                    return Err(e);
                }
                Err(_) => {
                    w.pool.put_buf(ubuf);
                    return Err(counted(
                        stats,
                        Error::upstream(Kind::GatewayTimeout, HEAD_TIMEOUT),
                    ));
                }
            };
            if !(100..200).contains(&resp.status) {
                let took = sent_at.elapsed();
                stats.head.observe(took);
                stats.responses[class_index(resp.status)].inc();
                timings.upstream_head = Some(took);
                return Ok(Fetched {
                    up,
                    server,
                    ubuf,
                    resp,
                });
            }
            let interim = match resp.status {
                101 => Err(Error::bad_gateway("upstream switched protocols unasked")),
                // 100 answers an Expect we did not forward.
                100 => Ok(false),
                _ => peer.interim(&resp).await,
            };
            w.pool.put_headers(resp.into_headers());
            match interim {
                Ok(sent) => relayed |= sent,
                Err(e) => {
                    w.pool.put_buf(ubuf);
                    return Err(counted(stats, e));
                }
            }
        }
    }
}

/// Counts an upstream failure against the server it happened with (a
/// failure of the client's side is not the server's).
pub(crate) fn counted(stats: &ServerStats, e: Error) -> Error {
    if let Some(f) = Failure::of(&e) {
        stats.failed(f, &e);
    }
    e
}

/// A failed write of the request head: a timeout is the upstream not
/// taking anything (504); a reset or broken pipe on a reused connection is
/// the upstream having closed it while idle.
fn send_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut => Error::upstream(Kind::GatewayTimeout, SEND_TIMEOUT).because(e),
        _ => Error::bad_gateway("upstream write failed")
            .with_retry(Retry::IfReused)
            .because(e),
    }
}

/// Connects to `server` (and, for a TLS upstream, completes the handshake)
/// within the route's connect timeout.
async fn connect(
    w: &Worker,
    g: &Generation,
    server: usize,
    route: &Route,
) -> Result<UpConn, Error> {
    w.stats.upstream_connects.inc();
    let addr = g.upstreams.address(server);
    let deadline = Instant::now() + route.limits.connect_timeout;
    let timeout = || Error::upstream(Kind::GatewayTimeout, CONNECT_TIMEOUT);
    let tcp = match w
        .deadlines
        .within(deadline, TcpStream::connect_addr(addr))
        .await
    {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            s
        }
        Ok(Err(e)) => {
            return Err(Error::bad_gateway(CONNECT_FAILED).because(e));
        }
        Err(_) => return Err(timeout()),
    };
    let link = match g.upstreams.tls(server) {
        None => Link::Plain(tcp),
        Some(tls) => {
            let session = rustls::ClientConnection::new(tls.config.clone(), tls.name_for(addr))
                .map_err(|_| Error::bad_gateway(TLS_SESSION))?;
            let mut stream = Box::new(TlsStream::new(tcp, session));
            match w.deadlines.within(deadline, stream.handshake()).await {
                Ok(Ok(())) => Link::Tls(stream),
                Ok(Err(e)) => {
                    w.stats.upstream_tls_failures.inc();
                    return Err(Error::bad_gateway(TLS_HANDSHAKE).because(e));
                }
                Err(_) => return Err(timeout()),
            }
        }
    };
    Ok(UpConn {
        link,
        slot: None,
        _open: OpenGauge::new(g.upstreams.stats(server)),
    })
}

async fn read_response_head(
    w: &Worker,
    g: &Generation,
    up: &mut UpConn,
    ubuf: &mut BytesMut,
    is_head: bool,
) -> Result<ResponseHead, Error> {
    let max = g.limits().max_head_size;
    let mut headers = w.pool.headers();
    let result = loop {
        if !ubuf.is_empty() {
            match parse::parse_response(ubuf, max, is_head, &mut headers) {
                Ok(Some(resp)) => break Ok(resp),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        }
        let nothing_yet = ubuf.is_empty();
        match read_more(up, ubuf).await {
            Ok(0) => {
                let e = Error::bad_gateway(CLOSED_BEFORE_RESPONSE);
                break Err(if nothing_yet {
                    e.with_retry(Retry::IfReused)
                } else {
                    e
                });
            }
            Ok(_) => {}
            Err(e) => {
                let reset = is_reset(&e);
                let err = Error::upstream_io(e, "upstream read failed");
                break Err(if nothing_yet && reset {
                    err.with_retry(Retry::IfReused)
                } else {
                    err
                });
            }
        }
    };
    w.pool.put_headers(headers);
    result
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}
