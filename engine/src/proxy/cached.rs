//! The cache on the request path of a route that caches (RFC 9111 as a
//! shared cache, RFC 5861, RFC 9211).
//!
//! GET: look the key up in the worker's shard; a fresh (or acceptably
//! stale) response is answered from memory, with 304 when the client's
//! validators match. Otherwise one request per key fetches from the origin
//! (others wait for it, up to `lock-timeout`), conditionally when a stored
//! response has validators; a 304 refreshes the stored response, a full
//! response is streamed to the client and, when storable, kept. Stale
//! responses may be served while one background revalidation runs
//! (`stale-while-revalidate`) or when the origin fails
//! (`stale-if-error`). HEAD is answered from a stored GET and otherwise
//! forwarded. Unsafe methods are forwarded and, when they succeed,
//! invalidate the target's stored responses on every worker.
//!
//! Every answer carries `Cache-Status`.

use std::fmt::Write as _;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use monoio::buf::{IoBuf, IoVecBuf};
use monoio::io::AsyncWriteRent;

use crate::cache::conditional::{self, Preconditions, Validators};
use crate::cache::directives::{RequestDirectives, ResponseDirectives};
use crate::cache::entry::{http_date, is_not_modified_field, unix_now, Entry, Parts};
use crate::cache::freshness::{usable, Use};
use crate::cache::key::vary_names;
use crate::cache::storable::{storable, Exchange};
use crate::cache::store::{Identity, Leading, RouteCache};
use crate::http::chunked::ChunkedDecoder;
use crate::http::head::{BodyKind, Class, Method, RequestHead, ResponseHead, Version};
use crate::http::write;
use crate::proxy::body::{Copy, CopyError, Discard, Framing, Output};
use crate::proxy::conn::{connection_line, Next};
use crate::proxy::forward::{self, Cond, Fetched, Rewrite};
use crate::rt::io::{write_all_buf, SendLimit, Transport};
use crate::worker::conn::Conn;
use crate::worker::generation::Generation;
use crate::worker::Worker;

/// Bodies up to this size ride in the same write as their head.
const COALESCE_MAX: usize = 8 * 1024;

/// How a stored response came to answer a request, for `Cache-Status`.
#[derive(Clone, Copy)]
enum Served {
    Hit {
        collapsed: bool,
    },
    /// Stale, within the staleness the request allows (`max-stale`).
    Stale,
    /// Stale while one background revalidation runs.
    StaleWhileRevalidate,
    /// Stale because the origin failed with this status.
    StaleIfError(u16),
    /// Refreshed by a 304 from the origin.
    Revalidated,
}

/// Answers a request on a caching route.
pub async fn serve<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: RequestHead,
    g: &Rc<Generation>,
    index: usize,
    group: usize,
    consumer: Option<usize>,
) -> Next {
    let mut key = g.cache.take_key();
    let next = serve_keyed(conn, io, head, g, index, group, consumer, &mut key).await;
    g.cache.put_key(key);
    next
}

#[allow(clippy::too_many_arguments)]
async fn serve_keyed<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: RequestHead,
    g: &Rc<Generation>,
    index: usize,
    group: usize,
    consumer: Option<usize>,
    key: &mut Vec<u8>,
) -> Next {
    let rc = g.cache.routes[index]
        .as_ref()
        .expect("serve is called for caching routes");
    let w = conn.w.clone();
    match head.method {
        Method::Get | Method::Head => {}
        _ => {
            // Unsafe methods invalidate after the answer (see `invalidate`).
            bypass(conn, "method");
            return forward::forward(conn, io, head, g, index, group, consumer).await;
        }
    }
    if head.body != BodyKind::None {
        bypass(conn, "body");
        return forward::forward(conn, io, head, g, index, group, consumer).await;
    }
    if request_values(&head, b"range").next().is_some() {
        // Ranges are not stored; the origin answers them.
        bypass(conn, "range");
        return forward::forward(conn, io, head, g, index, group, consumer).await;
    }
    let req_dir = RequestDirectives::parse(request_values(&head, b"cache-control"));
    let consumer_name = consumer.map(|c| g.snap.policies.consumers[c].as_str());
    let tls = conn.tls.as_deref();
    let who = Identity {
        consumer: consumer_name,
        subject: tls.and_then(|t| t.client_subject.as_deref()),
    };
    rc.key(key, &head, tls.is_some(), who);
    let is_head = head.method == Method::Head;
    let mut collapsed = false;
    let mut stale;
    loop {
        let now = unix_now();
        if let Some(e) = rc.lookup(&g.cache, key, &head) {
            let age = e.age(now);
            match usable(e.lifetime, age, &req_dir, &e.stored.directives) {
                Use::Fresh => {
                    w.stats.cache_hits.inc();
                    let served = Served::Hit { collapsed };
                    return answer_stored(conn, io, head, &e, age, served).await;
                }
                Use::Stale => {
                    w.stats.cache_stale.inc();
                    return answer_stored(conn, io, head, &e, age, Served::Stale).await;
                }
                Use::Revalidate if may_serve_while_revalidating(&e, age, &req_dir) => {
                    // A HEAD could not refresh a GET's stored body.
                    if rc.pending(key).is_none() && !is_head {
                        revalidate_in_background(conn, g, index, group, consumer, key, &head, &e);
                    }
                    w.stats.cache_stale.inc();
                    let served = Served::StaleWhileRevalidate;
                    return answer_stored(conn, io, head, &e, age, served).await;
                }
                Use::Revalidate => stale = Some(e),
            }
        } else {
            stale = None;
        }
        if req_dir.only_if_cached {
            // §5.2.1.7: nothing usable stored, and the client forbids
            // asking the origin.
            w.stats.cache_misses.inc();
            conn.extra
                .extend_from_slice(b"Cache-Status: ringway; fwd=miss; detail=only-if-cached\r\n");
            return conn.answer_status(io, head, 504).await;
        }
        if is_head {
            // A HEAD response has no body to store: the origin answers.
            w.stats.cache_misses.inc();
            let fwd = if stale.is_some() { "stale" } else { "miss" };
            let _ = write!(conn.extra, "Cache-Status: ringway; fwd={fwd}\r\n");
            return forward::forward(conn, io, head, g, index, group, consumer).await;
        }
        // Collapse with a fetch in flight for the same key: wait for it,
        // then look again (once). Not for a key whose last response was
        // not stored: that fetch could not answer this request.
        if rc.passes(key, now) {
            w.stats.cache_misses.inc();
            let fetch = FetchFor {
                g,
                index,
                group,
                consumer,
                rc,
                key,
                req_dir,
                pass: true,
                _leading: None,
            };
            return fetch.run(conn, io, head, stale).await;
        }
        match rc.pending(key) {
            Some(fetching) if !collapsed && !rc.lock_timeout.is_zero() => {
                collapsed = true;
                w.stats.cache_collapsed.inc();
                let deadline = Instant::now() + rc.lock_timeout;
                let _ = w.deadlines.within(deadline, fetching.wait()).await;
            }
            _ => break,
        }
    }
    // Lead the fetch unless another still runs (its wait timed out).
    let leading = rc.pending(key).is_none().then(|| rc.lead(key));
    w.stats.cache_misses.inc();
    let fetch = FetchFor {
        g,
        index,
        group,
        consumer,
        rc,
        key,
        req_dir,
        pass: false,
        _leading: leading,
    };
    fetch.run(conn, io, head, stale).await
}

/// After a successful unsafe request (RFC 9111 §4.4): drops the stored
/// responses of its URL, as every caching route keys it, for every consumer
/// and key-header value, on this worker and (through their queues) the
/// others. `keys` are [`LocalCache::url_keys`] of the request.
///
/// [`LocalCache::url_keys`]: crate::cache::store::LocalCache::url_keys
pub fn invalidate(w: &Worker, g: &Generation, keys: &[u8]) {
    for key in crate::cache::store::each_key(keys) {
        g.cache.invalidate(key);
        w.stats.cache_invalidations.inc();
        w.invalidate_elsewhere(key);
    }
    note_size(w, g);
}

/// Forwards past the cache, saying why.
fn bypass(conn: &mut Conn, why: &str) {
    conn.w.stats.cache_bypass.inc();
    let _ = write!(
        conn.extra,
        "Cache-Status: ringway; fwd=bypass; detail={why}\r\n"
    );
}

/// The values of request field `name` (lower-case), in order.
fn request_values<'a>(head: &'a RequestHead, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    head.headers
        .iter()
        .filter(move |h| head.bytes(h.name).eq_ignore_ascii_case(name))
        .map(|h| head.bytes(h.value))
}

/// The first value of response field `name` (lower-case).
fn response_value<'a>(resp: &'a ResponseHead, name: &[u8]) -> Option<&'a [u8]> {
    resp.headers
        .iter()
        .find(|h| resp.bytes(h.name).eq_ignore_ascii_case(name))
        .map(|h| resp.bytes(h.value))
}

/// The end-to-end field lines of a response, as a cache stores them:
/// no framing, no hop-by-hop fields, none its Connection lists.
fn end_to_end(resp: &ResponseHead) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
    resp.headers
        .iter()
        .filter(move |h| {
            !(h.class.is_hop_by_hop()
                || h.class == Class::ContentLength
                || h.class == Class::TransferEncoding
                || (h.class != Class::Via && resp.connection_lists(resp.bytes(h.name))))
        })
        .map(|h| (resp.bytes(h.name), resp.bytes(h.value)))
}

fn preconditions(head: &RequestHead) -> Preconditions<'_> {
    Preconditions {
        if_none_match: request_values(head, b"if-none-match").next(),
        if_modified_since: request_values(head, b"if-modified-since")
            .next()
            .and_then(http_date),
    }
}

fn is_conditional(pre: &Preconditions<'_>) -> bool {
    pre.if_none_match.is_some() || pre.if_modified_since.is_some()
}

/// Seconds of freshness left (negative once stale).
fn ttl(e: &Entry, age: u64) -> i64 {
    e.lifetime as i64 - age as i64
}

/// RFC 5861 §3: serve stale while revalidating, within the window the
/// response allows, unless a directive asks for a fresh or validated one.
fn may_serve_while_revalidating(e: &Entry, age: u64, req: &RequestDirectives) -> bool {
    let res = &e.stored.directives;
    let Some(window) = res.stale_while_revalidate else {
        return false;
    };
    let explicit_refusal = req.no_cache
        || req.max_age.is_some()
        || req.min_fresh.is_some()
        || res.no_cache
        || res.must_revalidate
        || res.proxy_revalidate;
    !explicit_refusal && age >= e.lifetime && age - e.lifetime <= window
}

/// RFC 5861 §4: serve stale when the origin fails, within the window.
fn may_serve_on_error(e: &Entry, now: u64) -> bool {
    let res = &e.stored.directives;
    let Some(window) = res.stale_if_error else {
        return false;
    };
    let age = e.age(now);
    !(res.must_revalidate || res.proxy_revalidate || res.no_cache)
        && age.saturating_sub(e.lifetime) <= window
}

fn write_cache_status(out: &mut BytesMut, served: Served, ttl: i64) {
    let _ = match served {
        Served::Hit { collapsed: false } => {
            out.extend_from_slice(b"Cache-Status: ringway; hit; ttl=");
            out.extend_from_slice(itoa::Buffer::new().format(ttl).as_bytes());
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Served::Hit { collapsed: true } => {
            write!(out, "Cache-Status: ringway; hit; ttl={ttl}; collapsed\r\n")
        }
        Served::Stale => write!(out, "Cache-Status: ringway; hit; ttl={ttl}\r\n"),
        Served::StaleWhileRevalidate => write!(
            out,
            "Cache-Status: ringway; hit; ttl={ttl}; detail=stale-while-revalidate\r\n"
        ),
        Served::StaleIfError(status) => write!(
            out,
            "Cache-Status: ringway; fwd=stale; fwd-status={status}; ttl={ttl}; detail=stale-if-error\r\n"
        ),
        Served::Revalidated => write!(
            out,
            "Cache-Status: ringway; fwd=stale; fwd-status=304; stored; ttl={ttl}\r\n"
        ),
    };
}

/// Answers from a stored response: 304 when the client's validators
/// match, else the whole response (its body handed to the kernel as the
/// stored `Bytes`, or in one write with the head when small).
async fn answer_stored<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: RequestHead,
    e: &Entry,
    age: u64,
    served: Served,
) -> Next {
    let pre = preconditions(&head);
    let not_modified =
        e.status == 200 && is_conditional(&pre) && conditional::not_modified(&pre, &e.validators());
    let keep = head.keep_alive && !conn.listener.closing.is_fired();
    let wbuf = &mut conn.wbuf;
    wbuf.clear();
    let status = if not_modified {
        write::status_line(wbuf, 304, b"Not Modified");
        e.write_not_modified_fields(wbuf);
        304
    } else {
        wbuf.extend_from_slice(&e.head);
        e.status
    };
    // Integers by itoa: a hit formats two per answer.
    let mut num = itoa::Buffer::new();
    wbuf.extend_from_slice(b"Age: ");
    wbuf.extend_from_slice(num.format(age).as_bytes());
    wbuf.extend_from_slice(b"\r\n");
    let bodiless_status = status == 304 || status == 204;
    if !bodiless_status {
        write::content_length(wbuf, e.body.len() as u64);
    }
    write_cache_status(wbuf, served, ttl(e, age));
    connection_line(wbuf, head.version, keep);
    wbuf.extend_from_slice(&conn.extra);
    wbuf.extend_from_slice(b"\r\n");
    let mut body = None;
    if !bodiless_status && head.method != Method::Head && !e.body.is_empty() {
        if e.body.len() <= COALESCE_MAX {
            wbuf.extend_from_slice(&e.body);
        } else {
            body = Some(e.body.clone());
        }
    }
    conn.last_status = status;
    conn.w.stats.response(status);
    let w = conn.w.clone();
    let limit = w.send_limit(&conn.g);
    let mut ok = write_all_buf(io, &mut conn.wbuf, limit).await.is_ok();
    if ok {
        if let Some(body) = body {
            ok = write_bytes(io, body, limit).await.is_ok();
        }
    }
    conn.finish(
        head,
        if ok && keep {
            Next::KeepAlive
        } else {
            Next::Close
        },
    )
}

/// Writes a stored body as it is, without copying it.
async fn write_bytes<S: Transport>(io: &mut S, body: Bytes, send: SendLimit<'_>) -> io::Result<()> {
    use monoio::io::AsyncWriteRentExt;
    match send
        .deadlines
        .within_for(send.limit, io.write_all(body))
        .await
    {
        Ok((res, _)) => res.map(|_| ()),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// One fetch from the origin for a cache key.
struct FetchFor<'a> {
    g: &'a Rc<Generation>,
    index: usize,
    group: usize,
    consumer: Option<usize>,
    rc: &'a RouteCache,
    key: &'a [u8],
    req_dir: RequestDirectives,
    /// The key's last response was not stored: the client's preconditions
    /// go to the origin as they are.
    pass: bool,
    /// Requests for the same key wait until this is dropped.
    _leading: Option<Leading>,
}

impl FetchFor<'_> {
    /// Fetches (conditionally when `stale` has validators) and answers.
    async fn run<S: Transport>(
        self,
        conn: &mut Conn,
        io: &mut S,
        head: RequestHead,
        mut stale: Option<Rc<Entry>>,
    ) -> Next {
        loop {
            let g = self.g;
            let route = &g.snap.config.routes[self.index];
            let rewrite = Rewrite::new(conn.tls.as_deref(), g, self.index, self.consumer);
            let cond = match &stale {
                // A key known not to be stored: the origin answers the client's
                // preconditions itself.
                None if self.pass => Cond::Pass,
                s => revalidation(s.as_deref()),
            };
            conn.wbuf.clear();
            forward::write_request_head(&mut conn.wbuf, conn.peer, &head, route, &rewrite, cond);
            let request_time = unix_now();
            let w = conn.w.clone();
            let fetched = forward::fetch(&w, g, route, self.group, &mut conn.wbuf, false).await;
            conn.wbuf.clear();
            let now = unix_now();
            let f = match fetched {
                Ok(f) => f,
                Err(e) => {
                    if let Some(s) = stale.as_ref().filter(|s| may_serve_on_error(s, now)) {
                        w.stats.cache_stale.inc();
                        let served = Served::StaleIfError(e.status().unwrap_or(502));
                        return answer_stored(conn, io, head, s, s.age(now), served).await;
                    }
                    let next = forward::fail(conn, io, e).await;
                    return conn.finish(head, next);
                }
            };
            if let Some(s) = &stale {
                if f.resp.status == 304 && !same_etag(s, &f.resp) {
                    // The 304 is about another representation than the one
                    // stored (§4.3.4): nothing to update; fetch it whole.
                    release(&w, g, f, true);
                    self.rc.remove_entry(self.key, s);
                    stale = None;
                    continue;
                }
                if f.resp.status == 304 {
                    let fresh = s.refreshed(end_to_end(&f.resp), request_time, now);
                    release(&w, g, f, true);
                    let fresh = Rc::new(fresh);
                    self.store(&w, fresh.clone());
                    w.stats.cache_revalidated.inc();
                    let age = fresh.age(now);
                    return answer_stored(conn, io, head, &fresh, age, Served::Revalidated).await;
                }
                if f.resp.status >= 500 && may_serve_on_error(s, now) {
                    let status = f.resp.status;
                    release(&w, g, f, false);
                    w.stats.cache_stale.inc();
                    let served = Served::StaleIfError(status);
                    return answer_stored(conn, io, head, s, s.age(now), served).await;
                }
            }
            return self
                .relay(conn, io, head, f, stale.as_ref(), request_time, now)
                .await;
        }
    }

    /// Relays a full response to the client, storing it when allowed.
    #[allow(clippy::too_many_arguments)]
    async fn relay<S: Transport>(
        &self,
        conn: &mut Conn,
        io: &mut S,
        head: RequestHead,
        f: Fetched,
        stale: Option<&Rc<Entry>>,
        request_time: u64,
        response_time: u64,
    ) -> Next {
        let revalidating = stale.is_some();
        let g = self.g;
        let w = conn.w.clone();
        let route = &g.snap.config.routes[self.index];
        let Fetched {
            mut up,
            server,
            mut ubuf,
            resp,
        } = f;
        let authorization = request_values(&head, b"authorization").next().is_some();
        let verdict = verdict(&self.req_dir, authorization, &resp, self.rc.max_entry);
        // Not stored because of this request (its no-store or credentials)
        // says nothing about the next one: the stored response stays and
        // the key keeps collapsing.
        let request_caused = self.req_dir.no_store || verdict == Err("authorization");
        // The client's validators against this response: a match gets 304
        // while the body still comes in for the cache.
        let pre = preconditions(&head);
        let client_304 = resp.status == 200
            && is_conditional(&pre)
            && conditional::not_modified(
                &pre,
                &Validators {
                    etag: response_value(&resp, b"etag"),
                    last_modified: response_value(&resp, b"last-modified").and_then(http_date),
                },
            );
        let client_11 = head.version == Version::Http11;
        let (output, mut keep) = match resp.body {
            _ if client_304 => (Output::Same, head.keep_alive),
            BodyKind::Chunked if client_11 => (Output::Same, head.keep_alive),
            BodyKind::Chunked => (Output::Dechunk, false),
            BodyKind::UntilClose if client_11 => (Output::Chunk, head.keep_alive),
            BodyKind::UntilClose => (Output::Same, false),
            _ => (Output::Same, head.keep_alive),
        };
        keep &= !conn.listener.closing.is_fired();

        // Head.
        let wbuf = &mut conn.wbuf;
        wbuf.clear();
        let status = if client_304 {
            write::status_line(wbuf, 304, b"Not Modified");
            // Everything but the representation's own metadata, which a
            // 304 leaves out (RFC 9110 §15.4.5).
            for (name, value) in end_to_end(&resp) {
                let content = name.len() > 8 && name[..8].eq_ignore_ascii_case(b"content-");
                if !content || is_not_modified_field(name) {
                    write::header(wbuf, name, value);
                }
            }
            wbuf.extend_from_slice(b"Via: 1.1 ringway\r\n");
            connection_line(wbuf, head.version, keep);
            wbuf.extend_from_slice(b"\r\n");
            304
        } else {
            forward::write_response_head(wbuf, &resp, head.version, keep, output);
            resp.status
        };
        wbuf.truncate(wbuf.len() - 2);
        let fwd = if revalidating { "stale" } else { "miss" };
        let fwd_status = resp.status;
        let _ = match verdict {
            Ok(true) => write!(
                wbuf,
                "Cache-Status: ringway; fwd={fwd}; fwd-status={fwd_status}; stored\r\n"
            ),
            Ok(false) => write!(
                wbuf,
                "Cache-Status: ringway; fwd={fwd}; fwd-status={fwd_status}\r\n"
            ),
            Err(why) => write!(
                wbuf,
                "Cache-Status: ringway; fwd={fwd}; fwd-status={fwd_status}; detail={why}\r\n"
            ),
        };
        wbuf.extend_from_slice(&conn.extra);
        wbuf.extend_from_slice(b"\r\n");
        conn.last_status = status;
        w.stats.response(status);

        // Body: to the client (unless it got 304) and into the capture.
        let mut capture = verdict.is_ok().then(|| {
            let size = match resp.body {
                BodyKind::Length(n) => n as usize,
                _ => 4 * 1024,
            };
            BytesMut::with_capacity(size)
        });
        let to_client = !client_304;
        let mut framing = Framing::of(resp.body);
        if let BodyKind::Length(n) = resp.body {
            let n = n as usize;
            if n <= COALESCE_MAX && ubuf.len() >= n {
                let small = ubuf.split_to(n);
                if to_client {
                    conn.wbuf.extend_from_slice(&small);
                }
                if let Some(c) = capture.as_mut() {
                    c.extend_from_slice(&small);
                }
                framing = None;
            }
        }
        let limit = w.send_limit(g);
        if write_all_buf(io, &mut conn.wbuf, limit).await.is_err() {
            w.pool.put_buf(ubuf);
            w.pool.put_headers(resp.into_headers());
            return conn.finish(head, Next::Close);
        }
        let mut body_ok = true;
        if let Some(framing) = framing {
            let copy = Copy {
                framing,
                output,
                limit: u64::MAX,
                idle: route.limits.response_head_timeout,
                scratch: &mut conn.scratch,
                deadlines: &w.deadlines,
                send_limit: g.limits().send_timeout,
                pool: &w.pool,
            };
            let copied = if to_client {
                let mut tee = Tee {
                    inner: io,
                    capture: &mut capture,
                    limit: self.rc.max_entry,
                };
                copy.run(&mut up, &mut ubuf, &mut tee).await
            } else {
                let mut tee = Tee {
                    inner: &mut Discard,
                    capture: &mut capture,
                    limit: self.rc.max_entry,
                };
                copy.run(&mut up, &mut ubuf, &mut tee).await
            };
            if let Err(e) = copied {
                tracing::debug!(peer = %conn.peer, error = ?e, "response body aborted");
                body_ok = false;
                keep = false;
                if !matches!(e, CopyError::Sink(_)) {
                    w.stats.upstream_502.inc();
                }
            }
        }
        // Store what arrived whole.
        let chunked_out =
            output == Output::Chunk || (output == Output::Same && resp.body == BodyKind::Chunked);
        if body_ok && !request_caused {
            let stored = capture.is_some();
            self.rc.note_stored(self.key, stored, response_time);
        }
        match capture.filter(|_| body_ok) {
            Some(raw) => {
                let body = if chunked_out {
                    dechunk(&raw)
                } else {
                    exact(raw)
                };
                let secondary = RouteCache::secondary_of(&vary_of(&resp), &head);
                let entry = build_entry(&resp, secondary, body, request_time, response_time);
                self.store(&w, Rc::new(entry));
            }
            None if body_ok && !request_caused => {
                // Superseded by a response that is not kept.
                if let Some(s) = stale {
                    self.rc.remove_entry(self.key, s);
                    note_size(&w, g);
                }
            }
            None => {}
        }
        let reusable = resp.reusable;
        w.pool.put_headers(resp.into_headers());
        if reusable && body_ok && ubuf.is_empty() {
            g.upstreams.put_idle(server, up);
        }
        w.pool.put_buf(ubuf);
        conn.finish(head, if keep { Next::KeepAlive } else { Next::Close })
    }

    fn store(&self, w: &Worker, entry: Rc<Entry>) {
        if self.rc.insert(self.key, entry) {
            w.stats.cache_stored.inc();
        }
        note_size(w, self.g);
    }
}

/// Does a 304 describe the stored response? Its ETag, if it has one, must
/// be the stored one (compared weakly).
fn same_etag(stored: &Entry, resp: &ResponseHead) -> bool {
    let strip = |t: &[u8]| {
        let t = crate::http::head::trim(t);
        t.strip_prefix(b"W/").unwrap_or(t).to_vec()
    };
    match (response_value(resp, b"etag"), stored.value(b"etag")) {
        (Some(new), Some(old)) => strip(new) == strip(old),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The conditional request that revalidates `stale`, if it can be.
fn revalidation(stale: Option<&Entry>) -> Cond<'_> {
    match stale {
        Some(e) if e.has_validators() => Cond::Revalidate {
            etag: e.value(b"etag"),
            last_modified: e.value(b"last-modified"),
        },
        _ => Cond::Strip,
    }
}

/// May the response be stored? `Ok(true)`: yes, and its length is known to
/// fit; `Ok(false)`: yes if its body (of unknown length) turns out to fit;
/// `Err`: no, and why (RFC 9211 `detail`).
fn verdict(
    req: &RequestDirectives,
    authorization: bool,
    resp: &ResponseHead,
    max_entry: usize,
) -> Result<bool, &'static str> {
    let res = ResponseDirectives::parse(
        resp.headers
            .iter()
            .filter(|h| resp.bytes(h.name).eq_ignore_ascii_case(b"cache-control"))
            .map(|h| resp.bytes(h.value)),
    );
    let vary_any = resp
        .headers
        .iter()
        .filter(|h| resp.bytes(h.name).eq_ignore_ascii_case(b"vary"))
        .any(|h| vary_names(resp.bytes(h.value)).1);
    storable(&Exchange {
        method_get: true,
        request: req,
        authorization,
        status: resp.status,
        response: &res,
        expires: response_value(resp, b"expires").is_some(),
        vary_any,
    })
    .map_err(|why| why.detail())?;
    // Storable by default (a 200, say) but with neither an explicit
    // lifetime nor a Last-Modified to reckon one from or revalidate with:
    // stale at once and not revalidatable, so storing it gains nothing.
    let explicit = res.max_age.is_some()
        || res.s_maxage.is_some()
        || response_value(resp, b"expires").is_some();
    if !explicit && response_value(resp, b"last-modified").is_none() {
        return Err("no-lifetime");
    }
    // A cookie set for one client must not reach every client; nginx and
    // Varnish refuse these by default too.
    if response_value(resp, b"set-cookie").is_some() {
        return Err("set-cookie");
    }
    match resp.body {
        BodyKind::Length(n) if n > max_entry as u64 => Err("too-large"),
        BodyKind::Length(_) | BodyKind::None => Ok(true),
        _ => Ok(false),
    }
}

/// The field names a response's Vary lists, lower-case.
fn vary_of(resp: &ResponseHead) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    for h in &resp.headers {
        if resp.bytes(h.name).eq_ignore_ascii_case(b"vary") {
            names.extend(vary_names(resp.bytes(h.value)).0);
        }
    }
    names
}

fn build_entry(
    resp: &ResponseHead,
    secondary: Vec<u8>,
    body: Bytes,
    request_time: u64,
    response_time: u64,
) -> Entry {
    Entry::build(Parts {
        status: resp.status,
        reason: resp.bytes(resp.reason),
        fields: end_to_end(resp),
        body,
        request_time,
        response_time,
        secondary,
    })
}

/// The captured body as `Bytes` that hold no more memory than the shard
/// accounts for: a buffer grown by doubling (a body of unknown length) is
/// copied once into one of its exact size.
fn exact(raw: BytesMut) -> Bytes {
    if raw.capacity() - raw.len() > raw.len() / 16 {
        Bytes::copy_from_slice(&raw)
    } else {
        raw.freeze()
    }
}

/// The payload of a complete chunked body.
fn dechunk(raw: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(raw.len());
    let mut decoder = ChunkedDecoder::new();
    let _ = decoder.decode(raw, |r| out.extend_from_slice(&raw[r]));
    exact(out)
}

/// Returns a fetched response's connection to the pool when its (empty)
/// body is done, or closes it.
fn release(w: &Worker, g: &Generation, f: Fetched, reuse: bool) {
    let reusable = reuse && f.resp.reusable && f.resp.body == BodyKind::None && f.ubuf.is_empty();
    w.pool.put_headers(f.resp.into_headers());
    w.pool.put_buf(f.ubuf);
    if reusable {
        g.upstreams.put_idle(f.server, f.up);
    }
}

/// Updates the worker's cache gauges.
fn note_size(w: &Worker, g: &Generation) {
    let (entries, bytes) = g.cache.totals();
    w.stats.cache_entries.set(entries as u64);
    w.stats.cache_bytes.set(bytes as u64);
}

/// Starts one revalidation of `stale` in the background; requests in the
/// meantime are answered from it.
#[allow(clippy::too_many_arguments)]
fn revalidate_in_background(
    conn: &Conn,
    g: &Rc<Generation>,
    index: usize,
    group: usize,
    consumer: Option<usize>,
    key: &[u8],
    head: &RequestHead,
    stale: &Rc<Entry>,
) {
    let Some(rc) = g.cache.routes[index].as_ref() else {
        return;
    };
    let leading = rc.lead(key);
    let route = &g.snap.config.routes[index];
    let rewrite = Rewrite::new(conn.tls.as_deref(), g, index, consumer);
    let mut req = BytesMut::with_capacity(1024);
    let cond = revalidation(Some(stale));
    forward::write_request_head(&mut req, conn.peer, head, route, &rewrite, cond);
    let authorization = request_values(head, b"authorization").next().is_some();
    let w = conn.w.clone();
    let g = g.clone();
    let key = key.to_vec();
    let stale = stale.clone();
    w.stats.cache_background.inc();
    let watcher = w.clone();
    let task = async move {
        let _leading = leading;
        let Some(rc) = g.cache.routes[index].as_ref() else {
            return;
        };
        let route = &g.snap.config.routes[index];
        let request_time = unix_now();
        let Ok(f) = forward::fetch(&w, &g, route, group, &mut req, false).await else {
            return;
        };
        let now = unix_now();
        if f.resp.status == 304 && !same_etag(&stale, &f.resp) {
            // About another representation: the stored one is outdated.
            release(&w, &g, f, true);
            rc.remove_entry(&key, &stale);
            note_size(&w, &g);
            return;
        }
        if f.resp.status == 304 {
            let fresh = stale.refreshed(end_to_end(&f.resp), request_time, now);
            release(&w, &g, f, true);
            if rc.insert(&key, Rc::new(fresh)) {
                w.stats.cache_revalidated.inc();
            }
            note_size(&w, &g);
            return;
        }
        if f.resp.status >= 500 {
            // Keep serving the stale response until it expires for good.
            release(&w, &g, f, false);
            return;
        }
        let Fetched {
            mut up,
            server,
            mut ubuf,
            resp,
        } = f;
        // The cache's own request: only the response (and whether the
        // request carried credentials) decides.
        let verdict = verdict(
            &RequestDirectives::default(),
            authorization,
            &resp,
            rc.max_entry,
        );
        let framing = Framing::of(resp.body);
        let mut capture = verdict.is_ok().then(BytesMut::new);
        let mut body_ok = true;
        if let Some(framing) = framing {
            let mut scratch = BytesMut::new();
            let copy = Copy {
                framing,
                output: Output::Same,
                limit: u64::MAX,
                idle: route.limits.response_head_timeout,
                scratch: &mut scratch,
                deadlines: &w.deadlines,
                send_limit: g.limits().send_timeout,
                pool: &w.pool,
            };
            let mut tee = Tee {
                inner: &mut Discard,
                capture: &mut capture,
                limit: rc.max_entry,
            };
            body_ok = copy.run(&mut up, &mut ubuf, &mut tee).await.is_ok();
        }
        match capture.filter(|_| body_ok) {
            Some(raw) => {
                let body = if resp.body == BodyKind::Chunked {
                    dechunk(&raw)
                } else {
                    exact(raw)
                };
                // Selected by the same request fields as the stale one, or
                // by others than the ones at hand: then the next miss
                // stores it instead.
                let secondary = if vary_of(&resp) == stale.vary {
                    stale.secondary.clone()
                } else {
                    Vec::from(&b"\x00unmatched"[..])
                };
                let entry = build_entry(&resp, secondary, body, request_time, now);
                if rc.insert(&key, Rc::new(entry)) {
                    w.stats.cache_stored.inc();
                }
            }
            None if body_ok && verdict != Err("authorization") => {
                // Superseded by a response that is not kept.
                rc.remove_entry(&key, &stale);
            }
            None => {}
        }
        note_size(&w, &g);
        let reusable = resp.reusable;
        w.pool.put_headers(resp.into_headers());
        if reusable && body_ok && ubuf.is_empty() {
            g.upstreams.put_idle(server, up);
        }
        w.pool.put_buf(ubuf);
    };
    monoio::spawn(async move {
        if crate::rt::panic::catch_unwind(task).await.is_err() {
            watcher.stats.panics.inc();
            tracing::error!(worker = watcher.id, "panic in a background revalidation");
        }
    });
}

/// A writer that also keeps a copy of what it writes, up to `limit` bytes
/// (past that the copy is dropped: the body is too large to store).
struct Tee<'a, W> {
    inner: &'a mut W,
    capture: &'a mut Option<BytesMut>,
    limit: usize,
}

impl<W: AsyncWriteRent> AsyncWriteRent for Tee<'_, W> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        let (res, buf) = self.inner.write(buf).await;
        if let (Ok(n), Some(c)) = (&res, self.capture.as_mut()) {
            if c.len() + n > self.limit {
                *self.capture = None;
            } else {
                // SAFETY: an `IoBuf` has `bytes_init()` initialised bytes
                // at `read_ptr()`, and a write reports at most that many.
                let written = unsafe { std::slice::from_raw_parts(buf.read_ptr(), *n) };
                c.extend_from_slice(written);
            }
        }
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }
}
