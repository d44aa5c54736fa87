//! Forwarding one request to an upstream and its response back (RFC 9110
//! §7.6, RFC 9112).
//!
//! The request head is rewritten, not copied: hop-by-hop fields go, framing
//! is written by us, and X-Forwarded-For/-Proto/-Host and Via are added.
//! Small bodies travel in the same write as their head (one syscall for a
//! typical request or response); larger ones stream through a pooled
//! buffer.
//!
//! A pooled upstream connection may have been closed by the upstream while
//! idle. If such a connection fails before any response byte arrives and
//! resending is safe (idempotent method, no body), the request is sent once
//! more on a fresh connection; otherwise the client gets 502.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use monoio::net::TcpStream;
use ringway_config::Route;

use crate::error::{Error, Kind, Side};
use crate::http::head::{self, BodyKind, Class, RequestHead, ResponseHead, Version};
use crate::http::write;
use crate::policy::RoutePolicy;
use crate::proxy::body::{Copy, CopyError, Framing, Output};
use crate::proxy::conn::{connection_line, Next};
use crate::rt::io::{read_more, write_all_buf, write_all_keep, Transport};
use crate::tls::client::UpConn;
use crate::tls::stream::TlsStream;
use crate::worker::conn::{Conn, TlsInfo};
use crate::worker::generation::Generation;
use crate::worker::Worker;

/// Bodies up to this size that are already buffered ride in the same write
/// as their head.
const COALESCE_MAX: usize = 8 * 1024;

/// The outcome of sending the request and reading the response head.
/// Returned by value once per request; boxing it would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Exchange {
    Ok {
        up: UpConn,
        server: usize,
        ubuf: BytesMut,
        resp: ResponseHead,
    },
    /// The client connection is unusable (already answered or gone).
    Done(Next),
}

/// Forwards `head` to upstream group `group` and relays the answer.
pub async fn forward<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: RequestHead,
    g: &Generation,
    index: usize,
    group: usize,
    consumer: Option<usize>,
) -> Next {
    conn.wbuf.clear();
    let route = &g.snap.config.routes[index];
    let rewrite = Rewrite::new(conn.tls.as_deref(), g, index, consumer);
    write_request_head(
        &mut conn.wbuf,
        conn.peer,
        &head,
        route,
        &rewrite,
        Cond::Pass,
    );
    // Coalesce a small, already-buffered body with the head.
    let mut body_pending = head.body;
    if let BodyKind::Length(n) = head.body {
        if n as usize <= COALESCE_MAX && conn.rbuf.len() as u64 >= n {
            conn.wbuf.extend_from_slice(&conn.rbuf[..n as usize]);
            let _ = conn.rbuf.split_to(n as usize);
            body_pending = BodyKind::None;
        }
    }
    let (mut up, server, mut ubuf, resp) =
        match exchange(conn, io, &head, g, route, group, body_pending).await {
            Exchange::Ok {
                up,
                server,
                ubuf,
                resp,
            } => (up, server, ubuf, resp),
            Exchange::Done(next) => return conn.finish(head, next),
        };

    // Response head to the client.
    let status = resp.status;
    conn.last_status = status;
    let client_11 = head.version == Version::Http11;
    let (output, mut keep) = match resp.body {
        BodyKind::Chunked if client_11 => (Output::Same, head.keep_alive),
        BodyKind::Chunked => (Output::Dechunk, false),
        BodyKind::UntilClose if client_11 => (Output::Chunk, head.keep_alive),
        BodyKind::UntilClose => (Output::Same, false),
        _ => (Output::Same, head.keep_alive),
    };
    keep &= !conn.listener.closing.is_fired();
    conn.wbuf.clear();
    write_response_head(&mut conn.wbuf, &resp, head.version, keep, output);
    if !conn.extra.is_empty() {
        // Policy header lines go before the blank line that ends the head.
        conn.wbuf.truncate(conn.wbuf.len() - 2);
        conn.wbuf.extend_from_slice(&conn.extra);
        conn.wbuf.extend_from_slice(b"\r\n");
    }
    let mut body_left = resp.body;
    if let BodyKind::Length(n) = resp.body {
        if n as usize <= COALESCE_MAX && ubuf.len() as u64 >= n {
            conn.wbuf.extend_from_slice(&ubuf[..n as usize]);
            let _ = ubuf.split_to(n as usize);
            body_left = BodyKind::None;
        }
    }
    let reusable = resp.reusable;
    conn.w.pool.put_headers(resp.into_headers());
    conn.w.stats.response(status);
    let w = conn.w.clone();
    if write_all_buf(io, &mut conn.wbuf, w.send_limit(g))
        .await
        .is_err()
    {
        conn.w.pool.put_buf(ubuf);
        return conn.finish(head, Next::Close);
    }

    // Response body.
    let framing = Framing::of(body_left);
    let mut body_ok = true;
    if let Some(framing) = framing {
        let copy = Copy {
            framing,
            output,
            limit: u64::MAX,
            idle: route.limits.response_head_timeout,
            scratch: &mut conn.scratch,
            deadlines: &conn.w.deadlines,
            send_limit: g.limits().send_timeout,
            pool: &conn.w.pool,
        };
        if let Err(e) = copy.run(&mut up, &mut ubuf, io).await {
            tracing::debug!(peer = %conn.peer, error = ?e, "response body aborted");
            body_ok = false;
            keep = false;
            if !matches!(e, CopyError::Sink(_)) {
                conn.w.stats.upstream_502.inc();
            }
        }
    }
    if reusable && body_ok && ubuf.is_empty() {
        g.upstreams.put_idle(server, up);
    }
    conn.w.pool.put_buf(ubuf);
    conn.finish(head, if keep { Next::KeepAlive } else { Next::Close })
}

/// Sends the request (retrying once on a fresh connection when safe) and
/// reads the final response head, relaying interim 1xx responses.
async fn exchange<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: &RequestHead,
    g: &Generation,
    route: &Route,
    group: usize,
    body: BodyKind,
) -> Exchange {
    let retry_safe = head.body == BodyKind::None && head.method.is_idempotent();
    let is_head = head.method == head::Method::Head;
    let mut attempt = 0;
    loop {
        let ups = &g.upstreams;
        let server = ups.pick(group);
        let pooled = if attempt == 0 {
            ups.take_idle(server)
        } else {
            None
        };
        let reused = pooled.is_some();
        let mut up = match pooled {
            Some(up) => {
                conn.w.stats.upstream_reuses.inc();
                up
            }
            None => match connect(&conn.w, g, server, route).await {
                Ok(up) => up,
                Err(e) => return Exchange::Done(fail(conn, io, e).await),
            },
        };
        let can_retry = reused && retry_safe && attempt == 0;

        // Head (and coalesced body). The buffer comes back for a retry.
        let w = conn.w.clone();
        let sent = write_all_keep(&mut up, &mut conn.wbuf, w.send_limit(g)).await;
        if let Err(e) = sent {
            if e.kind() == io::ErrorKind::TimedOut {
                let e = Error::new(
                    Kind::GatewayTimeout,
                    Side::Upstream,
                    "upstream send timeout",
                );
                return Exchange::Done(fail(conn, io, e).await);
            }
            if can_retry {
                conn.w.stats.upstream_retries.inc();
                attempt += 1;
                continue;
            }
            let e = Error::bad_gateway("upstream write failed");
            return Exchange::Done(fail(conn, io, e).await);
        }

        // Streamed body.
        if body != BodyKind::None {
            if head.expect_continue && head.version == Version::Http11 {
                let mut cont = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
                if write_all_buf(io, &mut cont, w.send_limit(g)).await.is_err() {
                    return Exchange::Done(Next::Close);
                }
            }
            let framing = match body {
                BodyKind::Length(n) => Framing::Length(n),
                _ => Framing::Chunked,
            };
            let copy = Copy {
                framing,
                output: Output::Same,
                limit: route.limits.max_body_size,
                idle: g.limits().header_read_timeout,
                scratch: &mut conn.scratch,
                deadlines: &conn.w.deadlines,
                send_limit: g.limits().send_timeout,
                pool: &conn.w.pool,
            };
            if let Err(e) = copy.run(io, &mut conn.rbuf, &mut up).await {
                let e = match e {
                    CopyError::TooLarge => {
                        Error::new(Kind::BodyTooLarge, Side::Downstream, "body over limit")
                    }
                    CopyError::Framing(f) => Error::bad_request(f.as_str()),
                    CopyError::Sink(e) if e.kind() == io::ErrorKind::TimedOut => Error::new(
                        Kind::GatewayTimeout,
                        Side::Upstream,
                        "upstream send timeout",
                    ),
                    CopyError::Sink(_) => Error::bad_gateway("upstream write failed"),
                    CopyError::Source(_) => Error::client_gone("client body read failed"),
                    CopyError::SourceTimeout => {
                        Error::new(Kind::HeadTimeout, Side::Downstream, "body read timeout")
                    }
                };
                return Exchange::Done(fail(conn, io, e).await);
            }
        }

        // Response head, skipping or relaying interim responses. Once an
        // interim response reached the client, no retry may repeat it.
        let mut relayed = false;
        let mut ubuf = conn.w.pool.buf();
        // One deadline for the final head, however many 1xx come first.
        let deadline = Instant::now() + route.limits.response_head_timeout;
        loop {
            let w = conn.w.clone();
            let read = w
                .deadlines
                .within(
                    deadline,
                    read_response_head(&w, g, &mut up, &mut ubuf, is_head),
                )
                .await;
            let resp = match read {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) => {
                    conn.w.pool.put_buf(ubuf);
                    if can_retry && !relayed && e.retryable {
                        conn.w.stats.upstream_retries.inc();
                        attempt += 1;
                        break;
                    }
                    return Exchange::Done(fail(conn, io, e).await);
                }
                Err(_) => {
                    let e = Error::new(
                        Kind::GatewayTimeout,
                        Side::Upstream,
                        "upstream response head timeout",
                    );
                    return Exchange::Done(fail(conn, io, e).await);
                }
            };
            if !(100..200).contains(&resp.status) {
                return Exchange::Ok {
                    up,
                    server,
                    ubuf,
                    resp,
                };
            }
            if resp.status == 101 {
                conn.w.pool.put_headers(resp.into_headers());
                let e = Error::bad_gateway("upstream switched protocols unasked");
                return Exchange::Done(fail(conn, io, e).await);
            }
            // 100 answers an Expect we did not forward; others (103) are
            // relayed to clients that understand them.
            if resp.status != 100 && head.version == Version::Http11 {
                conn.scratch.clear();
                write_response_head(
                    &mut conn.scratch,
                    &resp,
                    Version::Http11,
                    true,
                    Output::Same,
                );
                conn.w.stats.response(resp.status);
                relayed = true;
                let w = conn.w.clone();
                if write_all_buf(io, &mut conn.scratch, w.send_limit(g))
                    .await
                    .is_err()
                {
                    conn.w.pool.put_headers(resp.into_headers());
                    return Exchange::Done(Next::Close);
                }
            }
            conn.w.pool.put_headers(resp.into_headers());
        }
    }
}

/// A response head from an upstream, with the connection it came on.
pub struct Fetched {
    pub up: UpConn,
    pub server: usize,
    /// Bytes read after the head (the start of the body).
    pub ubuf: BytesMut,
    pub resp: ResponseHead,
}

/// Sends the bodiless request in `req` to upstream group `group` and reads
/// the final response head, skipping interim ones. A pooled connection
/// that turns out dead before any response byte is replaced once by a
/// fresh one. Used by the cache, whose fetches have no client attached
/// (a background revalidation) or must not relay 1xx.
pub async fn fetch(
    w: &Worker,
    g: &Generation,
    route: &Route,
    group: usize,
    req: &mut BytesMut,
    is_head: bool,
) -> Result<Fetched, Error> {
    let mut attempt = 0;
    loop {
        let ups = &g.upstreams;
        let server = ups.pick(group);
        let pooled = if attempt == 0 {
            ups.take_idle(server)
        } else {
            None
        };
        let can_retry = pooled.is_some() && attempt == 0;
        let mut up = match pooled {
            Some(up) => {
                w.stats.upstream_reuses.inc();
                up
            }
            None => connect(w, g, server, route).await?,
        };
        if let Err(e) = write_all_keep(&mut up, req, w.send_limit(g)).await {
            if e.kind() == io::ErrorKind::TimedOut {
                return Err(Error::new(
                    Kind::GatewayTimeout,
                    Side::Upstream,
                    "upstream send timeout",
                ));
            }
            if can_retry {
                w.stats.upstream_retries.inc();
                attempt += 1;
                continue;
            }
            return Err(Error::bad_gateway("upstream write failed"));
        }
        let mut ubuf = w.pool.buf();
        let deadline = Instant::now() + route.limits.response_head_timeout;
        loop {
            let read = w
                .deadlines
                .within(
                    deadline,
                    read_response_head(w, g, &mut up, &mut ubuf, is_head),
                )
                .await;
            let resp = match read {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) => {
                    w.pool.put_buf(ubuf);
                    if can_retry && e.retryable {
                        w.stats.upstream_retries.inc();
                        attempt += 1;
                        break;
                    }
                    return Err(e);
                }
                Err(_) => {
                    w.pool.put_buf(ubuf);
                    return Err(Error::new(
                        Kind::GatewayTimeout,
                        Side::Upstream,
                        "upstream response head timeout",
                    ));
                }
            };
            if resp.status >= 200 {
                return Ok(Fetched {
                    up,
                    server,
                    ubuf,
                    resp,
                });
            }
            let switched = resp.status == 101;
            w.pool.put_headers(resp.into_headers());
            if switched {
                w.pool.put_buf(ubuf);
                return Err(Error::bad_gateway("upstream switched protocols unasked"));
            }
        }
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
    let timeout = || {
        Error::new(
            Kind::GatewayTimeout,
            Side::Upstream,
            "upstream connect timeout",
        )
    };
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
            tracing::debug!(upstream = %addr, error = %e, "upstream connect failed");
            return Err(Error::bad_gateway("upstream connect failed"));
        }
        Err(_) => return Err(timeout()),
    };
    let Some(tls) = g.upstreams.tls(server) else {
        return Ok(UpConn::Plain(tcp));
    };
    let session = rustls::ClientConnection::new(tls.config.clone(), tls.name_for(addr))
        .map_err(|_| Error::bad_gateway("upstream TLS session"))?;
    let mut stream = Box::new(TlsStream::new(tcp, session));
    match w.deadlines.within(deadline, stream.handshake()).await {
        Ok(Ok(())) => Ok(UpConn::Tls(stream)),
        Ok(Err(e)) => {
            w.stats.upstream_tls_failures.inc();
            tracing::debug!(upstream = %addr, error = %e, "upstream TLS handshake failed");
            Err(Error::bad_gateway("upstream TLS handshake failed"))
        }
        Err(_) => Err(timeout()),
    }
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
    loop {
        if !ubuf.is_empty() {
            match head::parse_response(ubuf, max, is_head, &mut headers) {
                Ok(Some(resp)) => {
                    w.pool.put_headers(headers);
                    return Ok(resp);
                }
                Ok(None) => {}
                Err(e) => {
                    w.pool.put_headers(headers);
                    return Err(e);
                }
            }
        }
        let nothing_yet = ubuf.is_empty();
        let n = match read_more(up, ubuf).await {
            Ok(n) => n,
            Err(e) => {
                w.pool.put_headers(headers);
                let err = Error::upstream_io(&e, "upstream read failed");
                return Err(if nothing_yet && is_reset(&e) {
                    err.retryable()
                } else {
                    err
                });
            }
        };
        if n == 0 {
            w.pool.put_headers(headers);
            let err = Error::bad_gateway("upstream closed before a response");
            return Err(if nothing_yet { err.retryable() } else { err });
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Answers an upstream-side or body failure; the connection closes.
pub async fn fail<S: Transport>(conn: &mut Conn, io: &mut S, e: Error) -> Next {
    if e.side == Side::Upstream {
        tracing::debug!(peer = %conn.peer, error = %e, "upstream failure");
    }
    conn.reject(io, e, None).await
}

/// What a route's policies and the client connection change in the
/// request sent upstream.
pub struct Rewrite<'a> {
    pub policy: &'a RoutePolicy,
    /// The authenticated consumer's name.
    pub consumer: Option<&'a str>,
    /// The client connection is TLS.
    pub secure: bool,
    /// The verified client certificate's subject, and the header that
    /// carries it.
    pub client_subject: Option<(&'a str, &'a str)>,
    /// Every listener's subject header: a client's own is never passed on.
    pub subject_headers: &'a [String],
}

impl<'a> Rewrite<'a> {
    pub fn new(
        tls: Option<&'a TlsInfo>,
        g: &'a Generation,
        index: usize,
        consumer: Option<usize>,
    ) -> Rewrite<'a> {
        let policies = &g.snap.policies;
        Rewrite {
            policy: &policies.routes[index],
            consumer: consumer.map(|c| policies.consumers[c].as_str()),
            secure: tls.is_some(),
            client_subject: tls
                .and_then(|t| Some((t.subject_header.as_deref()?, t.client_subject.as_deref()?))),
            subject_headers: &g.snap.subject_headers,
        }
    }
}

impl Rewrite<'_> {
    /// Is `name` a header this hop removes (a credential, or a client's
    /// own claim to be a consumer)?
    fn drops_header(&self, name: &[u8]) -> bool {
        // Our own X-Forwarded-Proto/-Host replace the client's, also when
        // it spells them with underscores.
        same_field(name, b"x-forwarded-proto")
            || same_field(name, b"x-forwarded-host")
            || self
                .client_subject
                .is_some_and(|(h, _)| same_field(name, h.as_bytes()))
            || self
                .policy
                .strip_headers
                .iter()
                .chain(self.subject_headers)
                .any(|h| same_field(name, h.as_bytes()))
    }

    fn drops_param(&self, name: &[u8]) -> bool {
        self.policy
            .strip_params
            .iter()
            .any(|q| name == q.as_bytes())
    }
}

/// Field names equal ignoring case and `_` against `-`: CGI-style servers
/// (PHP, Rack, WSGI) read `X_Consumer` and `X-Consumer` as one variable, so
/// a client must not get either past a strip.
fn same_field(a: &[u8], b: &[u8]) -> bool {
    let norm = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| norm(x) == norm(y))
}

/// Writes `target` (origin-form), leaving out query parameters `rw` drops.
fn write_target(out: &mut BytesMut, target: &[u8], rw: &Rewrite<'_>) {
    let Some(q) = target.iter().position(|&b| b == b'?') else {
        out.extend_from_slice(target);
        return;
    };
    let (path, query) = (&target[..q], &target[q + 1..]);
    if !query
        .split(|&b| b == b'&')
        .any(|p| rw.drops_param(param_name(p)))
    {
        out.extend_from_slice(target);
        return;
    }
    out.extend_from_slice(path);
    let mut first = true;
    for param in query.split(|&b| b == b'&') {
        if param.is_empty() || rw.drops_param(param_name(param)) {
            continue;
        }
        out.extend_from_slice(if first { b"?" } else { b"&" });
        out.extend_from_slice(param);
        first = false;
    }
}

fn param_name(param: &[u8]) -> &[u8] {
    param.split(|&b| b == b'=').next().unwrap_or(param)
}

/// What a request sent upstream says about validators.
#[derive(Clone, Copy)]
pub enum Cond<'a> {
    /// The client's preconditions go as they are.
    Pass,
    /// The client's If-None-Match and If-Modified-Since are left out: the
    /// cache fetches the whole response and answers them itself.
    Strip,
    /// Revalidation of a stored response: its validators replace the
    /// client's.
    Revalidate {
        etag: Option<&'a [u8]>,
        last_modified: Option<&'a [u8]>,
    },
}

/// Writes the request head sent upstream into `out`.
pub fn write_request_head(
    out: &mut BytesMut,
    peer: SocketAddr,
    head: &RequestHead,
    route: &Route,
    rw: &Rewrite<'_>,
    cond: Cond<'_>,
) {
    out.extend_from_slice(head.bytes(head.method_span));
    out.extend_from_slice(b" ");
    let target = head.bytes(head.target);
    let origin = if head.target_authority.is_some() {
        // Absolute-form becomes origin-form (RFC 9112 §3.2.2).
        let path_start = head.path.start as usize - head.target.start as usize;
        let origin = &target[path_start..];
        if origin.first() != Some(&b'/') {
            out.extend_from_slice(b"/");
        }
        origin
    } else {
        target
    };
    if !rw.policy.strip_params.is_empty() {
        write_target(out, origin, rw);
    } else {
        out.extend_from_slice(origin);
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let authority = head.authority();
    match &route.host_header {
        Some(h) => write::header(out, b"Host", h.as_bytes()),
        None => write::header(out, b"Host", authority),
    }
    // The peer joins the end of the last X-Forwarded-For line and our
    // hop the end of the last Via line, so each list stays in hop order.
    let last_of = |class| head.headers.iter().rposition(|h| h.class == class);
    let last_xff = last_of(Class::XForwardedFor);
    let last_via = last_of(Class::Via);
    let via_hop: &[u8] = if head.version == Version::Http10 {
        b"1.0 ringway"
    } else {
        b"1.1 ringway"
    };
    for (i, h) in head.headers.iter().enumerate() {
        match h.class {
            Class::Host | Class::Expect | Class::XForwardedProto | Class::XForwardedHost => {
                continue
            }
            c if c.is_hop_by_hop() => continue,
            _ => {}
        }
        let name = head.bytes(h.name);
        if rw.drops_header(name) {
            continue;
        }
        if !matches!(cond, Cond::Pass)
            && (name.eq_ignore_ascii_case(b"if-none-match")
                || name.eq_ignore_ascii_case(b"if-modified-since"))
        {
            continue;
        }
        // Connection may name hop-by-hop extensions, never the fields this
        // hop is bound to extend.
        let ours = matches!(h.class, Class::XForwardedFor | Class::Via);
        if !ours && head.has_connection_header && head.connection_lists(name) {
            continue;
        }
        if Some(i) == last_xff {
            out.extend_from_slice(b"X-Forwarded-For: ");
            out.extend_from_slice(head.bytes(h.value));
            let _ = write!(out, ", {}\r\n", peer.ip());
        } else if Some(i) == last_via {
            out.extend_from_slice(b"Via: ");
            out.extend_from_slice(head.bytes(h.value));
            out.extend_from_slice(b", ");
            out.extend_from_slice(via_hop);
            out.extend_from_slice(b"\r\n");
        } else {
            write::header(out, name, head.bytes(h.value));
        }
    }
    if last_xff.is_none() {
        let _ = write!(out, "X-Forwarded-For: {}\r\n", peer.ip());
    }
    out.extend_from_slice(if rw.secure {
        b"X-Forwarded-Proto: https\r\n"
    } else {
        b"X-Forwarded-Proto: http\r\n"
    });
    if let Some((name, subject)) = rw.client_subject {
        write::header(out, name.as_bytes(), subject.as_bytes());
    }
    write::header(out, b"X-Forwarded-Host", authority);
    if last_via.is_none() {
        write::header(out, b"Via", via_hop);
    }
    if let Some(name) = rw.consumer {
        write::header(out, rw.policy.consumer_header.as_bytes(), name.as_bytes());
    }
    if let Cond::Revalidate {
        etag,
        last_modified,
    } = cond
    {
        if let Some(etag) = etag {
            write::header(out, b"If-None-Match", etag);
        }
        if let Some(lm) = last_modified {
            write::header(out, b"If-Modified-Since", lm);
        }
    }
    match head.body {
        BodyKind::Length(n) => write::content_length(out, n),
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the response head sent to the client.
pub fn write_response_head(
    out: &mut BytesMut,
    resp: &ResponseHead,
    client: Version,
    keep: bool,
    output: Output,
) {
    let reason = resp.bytes(resp.reason);
    let reason = if reason.is_empty() {
        write::reason(resp.status).as_bytes()
    } else {
        reason
    };
    write::status_line(out, resp.status, reason);
    let interim = (100..200).contains(&resp.status);
    let last_via = resp.headers.iter().rposition(|h| h.class == Class::Via);
    for (i, h) in resp.headers.iter().enumerate() {
        let value = resp.bytes(h.value);
        match h.class {
            // A bodiless response keeps the length it announces (HEAD,
            // 304); 1xx and 204 must not carry one (RFC 9110 §8.6).
            Class::ContentLength
                if resp.body == BodyKind::None && !interim && resp.status != 204 =>
            {
                write::header(out, b"Content-Length", value);
                continue;
            }
            c if c.is_hop_by_hop() => continue,
            _ => {}
        }
        let name = resp.bytes(h.name);
        let ours = h.class == Class::Via;
        if !ours && resp.has_connection_header && resp.connection_lists(name) {
            continue;
        }
        if Some(i) == last_via {
            out.extend_from_slice(b"Via: ");
            out.extend_from_slice(value);
            out.extend_from_slice(b", 1.1 ringway\r\n");
        } else {
            write::header(out, name, value);
        }
    }
    if last_via.is_none() {
        out.extend_from_slice(b"Via: 1.1 ringway\r\n");
    }
    if !interim {
        match (resp.body, output) {
            (BodyKind::Length(n), _) => write::content_length(out, n),
            (BodyKind::Chunked, Output::Same) | (BodyKind::UntilClose, Output::Chunk) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
            }
            _ => {}
        }
        connection_line(out, client, keep);
    }
    out.extend_from_slice(b"\r\n");
}
