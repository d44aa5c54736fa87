//! Forwarding one request to an upstream (RFC 9110 §7.6, RFC 9112) and
//! relaying the response back: the one relay, used by plain forwarding and
//! by the cache (which may also keep a copy of the body, or answer the
//! client 304 while the body still comes in for storing).
//!
//! Small bodies travel in the same write as their head (one syscall for a
//! typical request or response); larger ones stream through a pooled
//! buffer, while the upstream's side is read for an early answer
//! (`duplex`). A chunked request body within `retry-buffer` is read and
//! checked whole before its head goes (RFC 9112 §7.1): a malformed one
//! never reaches the origin, at the cost of holding up to that much per
//! request (64 KiB by default) and one copy of it into the head's write.

use std::io;

use bytes::{Buf, BytesMut};

use crate::error::{Error, Kind};
use crate::http::chunked::{drop_disallowed_trailers, ChunkedDecoder};
use crate::http::head::{BodyKind, Class, RequestHead, ResponseHead, Version};
use crate::http::{date, write};
use crate::proxy::answer::{self, end_head, relay_framing, BodyOut};
use crate::proxy::body::{Capture, Copy, CopyError, Discard, Framing, Output};
use crate::proxy::conn::Next;
use crate::proxy::ctx::Ctx;
use crate::proxy::duplex::{self, Expectation};
use crate::proxy::exchange::{counted, exchange, Fetched, Peer, Sent, Target};
use crate::proxy::rewrite::{write_request_head, Cond, Rewrite};
use crate::rt::io::{read_more, write_all_buf, Transport};
use crate::stats::labeled::{BODY_TIMEOUT, SEND_TIMEOUT};
use crate::upstream::conn::Link;
use crate::upstream::UpConn;
use crate::worker::conn::Conn;
use crate::worker::Generation;

/// Bodies up to this size that are already buffered ride in the same write
/// as their head.
pub(crate) const COALESCE_MAX: usize = 8 * 1024;

/// Forwards `head` to upstream group `group` and relays the answer.
pub(crate) async fn forward<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    g: &Generation,
    index: usize,
    group: usize,
) -> Next {
    let route = g.snap.route_config(index);
    let rewrite = Rewrite::new(conn.tls.as_deref(), &g.snap, index, ctx);
    let mut req = std::mem::take(&mut conn.wbuf);
    req.clear();
    write_request_head(&mut req, conn.peer, head, route, &rewrite, Cond::Pass);
    // Coalesce a small, already-buffered body with the head; keep a body
    // within `retry-buffer` whole when the request may be sent again. A
    // client that waits for 100 first lets the upstream decide instead
    // (its expectation is forwarded).
    let mut body = head.body;
    let idempotent = head.method.is_idempotent();
    let expect = head.expect_continue && head.version == Version::Http11;
    let idle = route.limits.body_idle_timeout;
    if let BodyKind::Length(n) = head.body {
        let retry = &route.retry;
        let keep = retry.attempts > 1
            && (idempotent || retry.retry_non_idempotent)
            && !expect
            && n <= retry.retry_buffer
            && n <= route.limits.max_body_size;
        if keep && (conn.rbuf.len() as u64) < n {
            if let Err(e) = buffer_body(conn, io, n, idle).await {
                req.clear();
                conn.wbuf = req;
                return answer::error(conn, io, ctx, e, false).await;
            }
        }
        if (n as usize <= COALESCE_MAX || keep) && conn.rbuf.len() as u64 >= n {
            req.extend_from_slice(&conn.rbuf[..n as usize]);
            conn.rbuf.advance(n as usize);
            body = BodyKind::None;
        }
    }
    if head.body == BodyKind::Chunked && !expect && route.retry.retry_buffer > 0 {
        let limit = route.retry.retry_buffer.min(route.limits.max_body_size);
        match buffer_chunked(conn, io, limit, route.limits.max_body_size, idle).await {
            Ok(Some(whole)) => {
                // The trailer section loses the fields that may not be
                // trailers (RFC 9110 §6.5.1), as on a streamed body.
                req.extend_from_slice(&conn.rbuf[..whole.trailers_at]);
                conn.scratch.clear();
                conn.scratch
                    .extend_from_slice(&conn.rbuf[whole.trailers_at..whole.len]);
                let dropped = drop_disallowed_trailers(&mut conn.scratch);
                if dropped > 0 {
                    conn.w.stats.headers_dropped_trailer.add(u64::from(dropped));
                }
                req.extend_from_slice(&conn.scratch);
                conn.rbuf.advance(whole.len);
                body = BodyKind::None;
            }
            Ok(None) => {}
            Err(e) => {
                req.clear();
                conn.wbuf = req;
                return answer::error(conn, io, ctx, e, false).await;
            }
        }
    }
    let expect = expect && body != BodyKind::None;
    if expect {
        // The expectation goes on to the upstream (RFC 9110 §10.1.1): it
        // joins the end of the head just written.
        debug_assert!(req.ends_with(b"\r\n\r\n"), "the head alone is in req");
        req.truncate(req.len() - 2);
        req.extend_from_slice(b"Expect: 100-continue\r\n\r\n");
    }
    let target = Target {
        route,
        group,
        is_head: ctx.head_request,
        idempotent,
        resendable: body == BodyKind::None,
        key: request_key(conn, ctx, head, g, group),
        head_timeout: None,
        fallback: false,
    };
    ctx.upstream = Some(group);
    let w = conn.w.clone();
    let mut peer = ClientPeer {
        conn: &mut *conn,
        io: &mut *io,
        body,
        version: head.version,
        expect_continue: expect,
        limit: route.limits.max_body_size,
        idle,
        unread: false,
    };
    let fetched = exchange(&w, g, &target, &mut req, &mut peer, &mut ctx.timings).await;
    let unread = peer.unread;
    req.clear();
    conn.wbuf = req;
    if unread {
        // The upstream answered before the client's body was all read:
        // the connection closes after the answer, reading away a little
        // of what still comes so the close does not lose the answer.
        conn.linger = true;
    }
    match fetched {
        Ok(f) => {
            let keep = head.keep_alive && !unread;
            let w = conn.w.clone();
            // The targeted fields of a caching route (RFC 9213) are the
            // cache's, on the answers it lets through too.
            let cache = &g.snap.config.cache;
            let how = Relay {
                strip_targeted: (route.cache.is_some() && !cache.forward_targeted)
                    .then_some(cache.targeted_field.as_bytes()),
                ..Relay::default()
            };
            relay(conn, io, ctx, g, f, keep, how).await.done(&w)
        }
        Err(e) => answer::error(conn, io, ctx, e, false).await,
    }
}

/// Reads the rest of a `len`-byte request body into `conn.rbuf`, so that
/// it can be sent again.
async fn buffer_body<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    len: u64,
    idle: std::time::Duration,
) -> Result<(), Error> {
    conn.rbuf.reserve(len as usize - conn.rbuf.len());
    while (conn.rbuf.len() as u64) < len {
        read_body_more(conn, io, idle).await?;
    }
    Ok(())
}

/// Reads a chunked request body into `conn.rbuf` and checks its framing
/// before anything goes upstream, while it stays within `within` bytes as
/// received: a malformed one is refused (400) with the origin having seen
/// nothing, where a streamed one would already have reached it, head and
/// all (RFC 9112 §7.1). `Some` when it is whole; `None` when it grew
/// past `within` (it then streams, as a large body does).
async fn buffer_chunked<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    within: u64,
    max_body: u64,
    idle: std::time::Duration,
) -> Result<Option<WholeChunked>, Error> {
    let mut decoder = ChunkedDecoder::new();
    let mut checked = 0;
    let mut trailers_at = None;
    loop {
        let progress = decoder
            .decode(&conn.rbuf[checked..], |_| {})
            .map_err(|e| request_body_error(CopyError::Framing(e)))?;
        if trailers_at.is_none() && (progress.trailers_at < progress.consumed || progress.done) {
            trailers_at = Some(checked + progress.trailers_at);
        }
        checked += progress.consumed;
        if decoder.data_total() > max_body {
            return Err(request_body_error(CopyError::TooLarge));
        }
        if decoder.is_done() {
            return Ok(Some(WholeChunked {
                len: checked,
                trailers_at: trailers_at.unwrap_or(checked),
            }));
        }
        if conn.rbuf.len() as u64 >= within {
            return Ok(None);
        }
        read_body_more(conn, io, idle).await?;
    }
}

/// A chunked request body read whole into `conn.rbuf`.
struct WholeChunked {
    /// Its length, to the end of the trailer section.
    len: usize,
    /// Where its trailer section (fields and the final CRLF) starts.
    trailers_at: usize,
}

/// Reads more of a request body into `conn.rbuf`, within `idle`.
async fn read_body_more<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    idle: std::time::Duration,
) -> Result<(), Error> {
    let w = conn.w.clone();
    match w
        .deadlines
        .within_for(idle, read_more(io, &mut conn.rbuf))
        .await
    {
        Ok(Ok(0)) => Err(Error::client_gone("client closed during its body")),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::client_gone("client body read failed").because(e)),
        Err(_) => Err(Error::downstream(Kind::Timeout, "client body idle timeout")),
    }
}

/// Tells a client that waits (`Expect: 100-continue`) to send its body.
pub(crate) async fn send_continue<S: Transport>(conn: &mut Conn, io: &mut S) -> Result<(), Error> {
    let w = conn.w.clone();
    conn.scratch.clear();
    conn.scratch
        .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    write_all_buf(io, &mut conn.scratch, w.send_limit(&conn.g))
        .await
        .map_err(|e| Error::client_gone("client gone before its body").because(e))
}

/// The hash policy's key of a request to `group`: a hash of the client
/// IP, a header, a cookie, the consumer or the path; 0 when the group does
/// not hash (or the request lacks the field: all such requests then go
/// to one server).
pub(crate) fn request_key(
    conn: &Conn,
    ctx: &Ctx,
    head: &RequestHead,
    g: &Generation,
    group: usize,
) -> u64 {
    use crate::upstream::balance::hash_key;
    use ringway_config::HashKey;
    let Some(key) = g.upstreams.hash_key(group) else {
        return 0;
    };
    match key {
        HashKey::ClientIp => {
            let ip = crate::policy::ip::client_ip(conn.peer.ip(), &g.snap.policies.trusted, head);
            match ip {
                std::net::IpAddr::V4(v4) => hash_key(&v4.octets()),
                std::net::IpAddr::V6(v6) => hash_key(&v6.octets()),
            }
        }
        HashKey::Header(name) => head.values(name.as_bytes()).next().map_or(0, hash_key),
        HashKey::Cookie(name) => head
            .values(b"cookie")
            .flat_map(|v| v.split(|&b| b == b';'))
            .find_map(|pair| {
                let pair = pair.trim_ascii();
                let (n, v) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
                (n == name.as_bytes()).then(|| hash_key(&v[1..]))
            })
            .unwrap_or(0),
        HashKey::Consumer => ctx
            .consumer
            .and_then(|c| g.snap.config.consumers.get(c))
            .map_or(0, |c| hash_key(c.name.as_bytes())),
        HashKey::Path => hash_key(head.path()),
    }
}

/// The client's side of a forwarded exchange.
struct ClientPeer<'a, S> {
    conn: &'a mut Conn,
    io: &'a mut S,
    /// The part of the request body still to send.
    body: BodyKind,
    version: Version,
    /// The client waits for 100 before its body, and the upstream was
    /// asked the same.
    expect_continue: bool,
    limit: u64,
    idle: std::time::Duration,
    /// The upstream answered before the client's body was all read.
    unread: bool,
}

impl<S: Transport> ClientPeer<'_, S> {
    /// Copies the client's body to `dst` (the whole connection, or its
    /// write half).
    async fn copy<W: monoio::io::AsyncWriteRent>(
        &mut self,
        framing: Framing,
        dst: &mut W,
    ) -> Result<(), CopyError> {
        let conn = &mut *self.conn;
        let w = conn.w.clone();
        let copy = Copy {
            framing,
            output: Output::Same,
            limit: self.limit,
            idle: self.idle,
            scratch: &mut conn.scratch,
            deadlines: &w.deadlines,
            send_limit: w.send_limit(&conn.g).limit,
            pool: &w.pool,
            filter: None,
            capture: None,
            lead: None,
            trailers_dropped: Some(&w.stats.headers_dropped_trailer),
        };
        copy.run(self.io, &mut conn.rbuf, dst).await
    }
}

impl<S: Transport> Peer for ClientPeer<'_, S> {
    async fn send_body(
        &mut self,
        mut up: UpConn,
        ubuf: &mut BytesMut,
    ) -> (UpConn, Result<Sent, Error>) {
        let framing = match self.body {
            BodyKind::Length(n) => Framing::Length(n),
            BodyKind::Chunked => Framing::Chunked,
            _ => return (up, Ok(Sent::Whole)),
        };
        let w = self.conn.w.clone();
        if self.expect_continue {
            // Asked once: a retry's upstream gets the body straight away.
            self.expect_continue = false;
            let max_head = self.conn.g.limits().max_head_size;
            // Over TLS a readable socket may hold no answer (a session
            // ticket), so the answer is not awaited there: the body goes
            // at once, as RFC 9110 §10.1.1 lets a client do.
            let asked = match up.link {
                Link::Tls(_) => Expectation::NotAwaited,
                Link::Plain(_) => {
                    duplex::await_continue(&w.deadlines, &mut up, ubuf, max_head).await
                }
            };
            match asked {
                Expectation::Answered => {
                    // Refused before the body (or gone): the client is
                    // told so and its body is never read.
                    self.unread = true;
                    return (up, Ok(Sent::Early));
                }
                Expectation::TimedOut => w.stats.upstream_expect_timeouts.inc(),
                Expectation::Continue | Expectation::NotAwaited => {}
            }
            if let Err(e) = send_continue(self.conn, self.io).await {
                return (up, Err(e));
            }
        }
        match up.split() {
            Ok(mut halves) => {
                let sent = {
                    let (read, write) = (&mut halves.read, &mut halves.write);
                    let send = self.copy(framing, write);
                    let gone =
                        |e: &CopyError| matches!(e, CopyError::Sink(e) if duplex::is_gone(e));
                    duplex::send_watching(read, ubuf, &w.deadlines, send, gone).await
                };
                let up = halves.join();
                match sent {
                    Ok(None) => (up, Ok(Sent::Whole)),
                    Ok(Some(_)) => {
                        // The copy stopped mid-way: what the client still
                        // sends is not read.
                        self.unread = true;
                        (up, Ok(Sent::Early))
                    }
                    Err(e) => (up, Err(request_body_error(e))),
                }
            }
            // TLS: the body first, then the answer; after a failed write,
            // an answer the upstream sent before it closed is still read.
            Err(mut up) => match self.copy(framing, &mut up).await {
                Ok(()) => (up, Ok(Sent::Whole)),
                Err(CopyError::Sink(e)) if duplex::is_gone(&e) => {
                    if duplex::answered_before_close(&w.deadlines, &mut up, ubuf).await {
                        self.unread = true;
                        (up, Ok(Sent::Early))
                    } else {
                        (up, Err(request_body_error(CopyError::Sink(e))))
                    }
                }
                Err(e) => (up, Err(request_body_error(e))),
            },
        }
    }

    async fn interim(&mut self, resp: &ResponseHead) -> Result<bool, Error> {
        relay_interim(self.conn, self.io, self.version, resp).await
    }
}

/// Relays an interim (1xx) response head to the client, when it speaks
/// HTTP/1.1 (RFC 9110 §15.2); `Ok(true)` when it went out.
async fn relay_interim<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    version: Version,
    resp: &ResponseHead,
) -> Result<bool, Error> {
    if version != Version::Http11 {
        return Ok(false);
    }
    conn.scratch.clear();
    write_response_fields(&mut conn.scratch, resp);
    conn.scratch.extend_from_slice(b"\r\n");
    conn.w.stats.response(resp.status);
    let w = conn.w.clone();
    write_all_buf(io, &mut conn.scratch, w.send_limit(&conn.g))
        .await
        .map_err(|e| Error::client_gone("client gone during an interim response").because(e))?;
    Ok(true)
}

/// The client's side of an exchange without a request body (the cache's
/// fetch for a GET): only interim responses reach it.
pub(crate) struct Interim<'a, S> {
    conn: &'a mut Conn,
    io: &'a mut S,
    version: Version,
}

impl<'a, S> Interim<'a, S> {
    pub(crate) fn new(conn: &'a mut Conn, io: &'a mut S, version: Version) -> Self {
        Interim { conn, io, version }
    }
}

impl<S: Transport> Peer for Interim<'_, S> {
    async fn send_body(&mut self, up: UpConn, _: &mut BytesMut) -> (UpConn, Result<Sent, Error>) {
        (up, Ok(Sent::Whole))
    }

    async fn interim(&mut self, resp: &ResponseHead) -> Result<bool, Error> {
        relay_interim(self.conn, self.io, self.version, resp).await
    }
}

/// Why reading a request body (to send it upstream, or away) stopped.
pub(crate) fn request_body_error(e: CopyError) -> Error {
    match e {
        CopyError::TooLarge => Error::downstream(Kind::BodyTooLarge, "body over limit"),
        CopyError::Framing(f) => Error::bad_request(f.as_str()),
        CopyError::Sink(e) if e.kind() == io::ErrorKind::TimedOut => {
            Error::upstream(Kind::GatewayTimeout, SEND_TIMEOUT).because(e)
        }
        CopyError::Sink(e) => Error::bad_gateway("upstream write failed").because(e),
        CopyError::Source(e) => Error::client_gone("client body read failed").because(e),
        CopyError::SourceTimeout => Error::downstream(Kind::Timeout, "client body idle timeout"),
    }
}

/// Why relaying a response body stopped.
fn response_body_error(e: CopyError) -> Error {
    match e {
        CopyError::Sink(e) => Error::client_gone("client stopped reading the body").because(e),
        CopyError::SourceTimeout => Error::upstream(Kind::GatewayTimeout, BODY_TIMEOUT),
        CopyError::Source(e) => Error::bad_gateway("upstream body aborted").because(e),
        CopyError::Framing(f) => Error::bad_gateway(f.as_str()),
        CopyError::TooLarge => Error::bad_gateway("upstream body over limit"),
    }
}

/// How a response is relayed.
#[derive(Default)]
pub(crate) struct Relay<'a> {
    /// The client's validators matched: it gets 304 while the body comes in
    /// for `capture` only.
    pub(crate) client_304: bool,
    /// Where the cache keeps the body.
    pub(crate) capture: Option<&'a mut Capture>,
    /// On a caching route that keeps them to itself: leave out
    /// `CDN-Cache-Control` and the field of this name (RFC 9213).
    pub(crate) strip_targeted: Option<&'a [u8]>,
}

/// What a relay did.
pub(crate) struct Relayed {
    pub(crate) next: Next,
    /// The whole body arrived from the upstream.
    pub(crate) body_ok: bool,
    /// The response head, for the cache to store; [`Relayed::done`] gives
    /// it back to the pool.
    pub(crate) resp: ResponseHead,
    /// The buffer the head was read into: it goes back to the pool once
    /// the head (which shares its memory) is dropped.
    ubuf: BytesMut,
}

impl Relayed {
    /// Gives the head and its buffer back; what the connection does next.
    pub(crate) fn done(self, w: &crate::worker::Worker) -> Next {
        w.pool.put_headers(self.resp.into_headers());
        w.pool.put_buf(self.ubuf);
        self.next
    }
}

/// Relays the response in `f` to the client (head through the response
/// stage, body through the body filter stage), keeping a copy when the
/// cache asks, and returns the upstream connection to its pool.
pub(crate) async fn relay<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    g: &Generation,
    f: Fetched,
    keep: bool,
    how: Relay<'_>,
) -> Relayed {
    let Fetched {
        mut up,
        server,
        mut ubuf,
        resp,
        flight: _flight,
    } = f;
    let w = conn.w.clone();
    let route = g.snap.route_config(ctx.route.unwrap_or(0));
    let keep = keep && !conn.listener.closing.is_fired();
    // A body in a transfer coding other than chunked (RFC 9112 §6.3) goes
    // out as it came, with its Transfer-Encoding, to the close; an HTTP/1.0
    // client may not be sent one (§6.1).
    let coded = resp.transfer_coded && !how.client_304;
    if coded && ctx.version != Version::Http11 {
        let e = Error::bad_gateway("transfer-coded response for an HTTP/1.0 client");
        let next = answer::error(conn, io, ctx, e, false).await;
        return Relayed {
            next,
            body_ok: false,
            resp,
            ubuf,
        };
    }
    let (mut output, body_out, keep) = if how.client_304 {
        (Output::Same, BodyOut::None, keep)
    } else if coded {
        // No filter may re-code it either.
        ctx.compress = crate::proxy::compress::Plan::Off;
        (Output::Same, BodyOut::Close, false)
    } else {
        relay_framing(resp.body, ctx.version, keep)
    };
    let mut capture = how.capture;

    // Head.
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    let status = if how.client_304 {
        write::status_line(&mut wbuf, 304, b"Not Modified");
        // Everything but the representation's own metadata, which a 304
        // leaves out (RFC 9110 §15.4.5).
        for (name, value) in crate::cache::response::end_to_end(&resp) {
            if how.strip_targeted.is_some_and(|t| targeted(name, t)) {
                continue;
            }
            if !crate::cache::response::is_content_field(name)
                || crate::cache::entry::is_not_modified_field(name)
            {
                write::header(&mut wbuf, name, value);
            }
        }
        wbuf.extend_from_slice(b"Via: 1.1 ringway\r\n");
        if !resp.headers.iter().any(|h| h.class == Class::Date) {
            date::append_date_line(&mut wbuf);
        }
        304
    } else {
        write_response_fields_except(&mut wbuf, &resp, how.strip_targeted);
        if coded {
            for h in resp.headers.iter() {
                if h.class == Class::TransferEncoding {
                    write::header(&mut wbuf, b"Transfer-Encoding", resp.bytes(h.value));
                }
            }
        }
        resp.status
    };
    let (body_out, mut keep) = end_head(conn, ctx, &mut wbuf, status, body_out, keep);
    if ctx.filter.is_active() {
        output = Output::Filter {
            chunked: body_out == BodyOut::Chunked,
        };
    }
    let mut framing = Framing::of(resp.body);
    if let BodyKind::Length(n) = resp.body {
        let n = n as usize;
        if n <= COALESCE_MAX && ubuf.len() >= n && !ctx.filter.is_active() {
            if !how.client_304 {
                wbuf.extend_from_slice(&ubuf[..n]);
            }
            if let Some(c) = capture.as_deref_mut() {
                c.take(&ubuf[..n]);
            }
            ubuf.advance(n);
            framing = None;
        }
    }
    let sent = write_all_buf(io, &mut wbuf, w.send_limit(&conn.g)).await;
    conn.wbuf = wbuf;
    if let Err(e) = sent {
        ctx.fail(Error::client_gone("client stopped reading the answer").because(e));
        return Relayed {
            next: Next::Close,
            body_ok: false,
            resp,
            ubuf,
        };
    }

    // Body.
    let mut body_ok = true;
    if let Some(framing) = framing {
        let copy = Copy {
            framing,
            output,
            limit: u64::MAX,
            idle: route.limits.body_idle_timeout,
            scratch: &mut conn.scratch,
            deadlines: &w.deadlines,
            send_limit: g.limits().send_timeout,
            pool: &w.pool,
            filter: Some(&mut ctx.filter),
            capture,
            lead: None,
            trailers_dropped: Some(&w.stats.headers_dropped_trailer),
        };
        let copied = if how.client_304 {
            copy.run(&mut up, &mut ubuf, &mut Discard).await
        } else {
            copy.run(&mut up, &mut ubuf, &mut *io).await
        };
        if let Err(e) = copied {
            let e = counted(g.upstreams.stats(server), response_body_error(e));
            tracing::debug!(peer = %conn.peer, error = %e, "response body aborted");
            body_ok = false;
            ctx.fail(e);
            keep = false;
        }
    }
    if body_ok && resp.reusable && ubuf.is_empty() {
        g.upstreams.put_idle(server, up);
    }
    Relayed {
        next: if keep { Next::KeepAlive } else { Next::Close },
        body_ok,
        resp,
        ubuf,
    }
}

/// Writes the status line and the end-to-end fields of an upstream's
/// response, with our Via hop and, on a final response that has none, our
/// Date (RFC 9110 §6.6.1: a recipient with a clock adds one to a response
/// it forwards); the response stage and framing follow.
pub(crate) fn write_response_fields(out: &mut BytesMut, resp: &ResponseHead) {
    write_response_fields_except(out, resp, None);
}

/// `CDN-Cache-Control` or the targeted field `name` (RFC 9213)?
fn targeted(field: &[u8], name: &[u8]) -> bool {
    field.eq_ignore_ascii_case(crate::cache::directives::CDN_CACHE_CONTROL)
        || (!name.is_empty() && field.eq_ignore_ascii_case(name))
}

/// [`write_response_fields`], leaving out the targeted fields when a
/// caching route keeps them (`strip_targeted`, see [`Relay`]).
fn write_response_fields_except(
    out: &mut BytesMut,
    resp: &ResponseHead,
    strip_targeted: Option<&[u8]>,
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
    let mut has_date = false;
    for (i, h) in resp.headers.iter().enumerate() {
        let value = resp.bytes(h.value);
        has_date |= h.class == Class::Date;
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
            // The response stage writes the request's own; of 1xx heads
            // only a 101 passes it (an interim answer is relayed as is).
            Class::XRequestId if !interim || resp.status == 101 => continue,
            _ => {}
        }
        let name = resp.bytes(h.name);
        if strip_targeted.is_some_and(|t| targeted(name, t)) {
            continue;
        }
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
    if !interim && !has_date {
        date::append_date_line(out);
    }
}
