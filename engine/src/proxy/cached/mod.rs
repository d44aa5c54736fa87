//! The cache on the request path of a route that caches (RFC 9111 as a
//! shared cache, RFC 5861, RFC 9211).
//!
//! GET: look the key up in the store every worker shares; a fresh (or
//! acceptably stale) response is answered from memory, with 304 when the
//! client's validators match. Otherwise one request per key fetches from
//! the origin (others wait for it, up to `lock-timeout`), conditionally
//! when a stored response has validators (`fill`); a 304 refreshes the
//! stored response, a full response is streamed to the client and, when
//! storable, kept.
//! Stale responses may be served while one background revalidation runs
//! (`stale-while-revalidate`, `background`) or when the origin fails
//! (`stale-if-error`, or the route's `serve-stale-on-error`). HEAD is
//! answered from a stored GET and otherwise forwarded. A GET with Range is
//! answered from a stored 200 (`range`); on a miss the whole
//! representation is fetched when it fits `range-fetch-max`. Interim (1xx)
//! responses reach the client and are never stored. Unsafe methods are
//! forwarded and, when they succeed, invalidate the target's stored
//! responses on every worker.
//!
//! Every answer carries `Cache-Status`.

mod background;
mod fill;
mod range;

use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::cache::conditional;
use crate::cache::directives::RequestDirectives;
use crate::cache::entry::{unix_now, Entry};
use crate::cache::freshness::{usable, Use};
use crate::cache::response::{
    is_conditional, may_serve_while_revalidating, preconditions, request_values, ttl,
};
use crate::cache::store::Identity;
use crate::error::{Error, Kind};
use crate::http::head::{BodyKind, Method, RequestHead};
use crate::http::write;
use crate::proxy::answer::{end_head, write_out, write_out_with, BodyOut};
use crate::proxy::conn::Next;
use crate::proxy::ctx::{CacheUse, Ctx};
use crate::proxy::filter;
use crate::proxy::forward::{self, COALESCE_MAX};
use crate::rt::io::Transport;
use crate::worker::conn::Conn;
use crate::worker::{Generation, Worker};
use fill::FetchFor;

/// What a look in the store found.
enum Looked {
    /// A fresh hit, laid out.
    Laid(Laid),
    /// Any other stored response, with its age and use.
    Entry(Arc<Entry>, u64, Use),
}

/// The piece of a stored body a filter takes at a time (64 KiB: well
/// under a millisecond of gzip at level 6 between two writes).
const FILTER_PIECE: usize = 64 << 10;

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

impl Served {
    fn cache_use(self) -> CacheUse {
        match self {
            Served::Hit { .. } => CacheUse::Hit,
            Served::Stale | Served::StaleWhileRevalidate | Served::StaleIfError(_) => {
                CacheUse::Stale
            }
            Served::Revalidated => CacheUse::Revalidated,
        }
    }
}

/// Answers a request on a caching route.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    g: &Rc<Generation>,
    index: usize,
    group: usize,
) -> Next {
    let mut key = g.cache.take_key();
    let next = serve_keyed(conn, io, ctx, head, g, index, group, &mut key).await;
    g.cache.put_key(key);
    next
}

#[allow(clippy::too_many_arguments)]
async fn serve_keyed<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    g: &Rc<Generation>,
    index: usize,
    group: usize,
    key: &mut Vec<u8>,
) -> Next {
    let rc = g
        .cache
        .route(index)
        .expect("serve is called for caching routes");
    let w = conn.w.clone();
    let bypass_reason = match head.method {
        // Unsafe methods invalidate after the answer (see `invalidate`).
        Method::Get | Method::Head if head.body != BodyKind::None => Some("body"),
        Method::Get | Method::Head => None,
        _ => Some("method"),
    };
    if let Some(why) = bypass_reason {
        bypass(conn, ctx, why);
        return forward::forward(conn, io, ctx, head, g, index, group).await;
    }
    let req_dir = RequestDirectives::parse(request_values(head, b"cache-control"));
    let consumer_name = ctx.consumer.map(|c| g.snap.policies.consumers[c].as_str());
    let tls = conn.tls.as_deref();
    let who = Identity {
        consumer: consumer_name,
        subject: tls.and_then(|t| t.client_subject.as_deref()),
    };
    rc.key(key, head, tls.is_some(), who);
    let mut collapsed = false;
    let mut rechecked = false;
    let mut stale;
    let (pass, leading) = loop {
        let now = unix_now();
        // A fresh hit is laid out while the store holds the entry, without
        // a reference of its own: the hit then writes nothing that other
        // workers read (no reference count bouncing between cores).
        let looked = rc.peek(&g.cache, key, head, |e| {
            let age = e.age(now);
            let fit = usable(e.lifetime, age, &req_dir, &e.stored.directives);
            if fit == Use::Fresh {
                let served = Served::Hit { collapsed };
                if let Prepared::Laid(laid) = lay_out(conn, ctx, head, e, age, served) {
                    return Looked::Laid(laid);
                }
            }
            Looked::Entry(e.clone(), age, fit)
        });
        match looked {
            None => stale = None,
            Some(Looked::Laid(laid)) => {
                w.stats.cache_hits.inc();
                return send_laid(conn, io, ctx, laid).await;
            }
            Some(Looked::Entry(e, age, fit)) => match fit {
                Use::Fresh => {
                    w.stats.cache_hits.inc();
                    let served = Served::Hit { collapsed };
                    return answer_stored(conn, io, ctx, head, &e, age, served).await;
                }
                Use::Stale => {
                    w.stats.cache_stale.inc();
                    return answer_stored(conn, io, ctx, head, &e, age, Served::Stale).await;
                }
                Use::Revalidate if may_serve_while_revalidating(&e, age, &req_dir) => {
                    // A HEAD could not refresh a GET's stored body.
                    if rc.pending(key).is_none() && !ctx.head_request {
                        background::revalidate(conn, ctx, g, index, group, key, head, &e);
                    }
                    w.stats.cache_stale.inc();
                    let served = Served::StaleWhileRevalidate;
                    return answer_stored(conn, io, ctx, head, &e, age, served).await;
                }
                Use::Revalidate => stale = Some(e),
            },
        }
        if req_dir.only_if_cached {
            // §5.2.1.7: nothing usable stored, and the client forbids
            // asking the origin.
            w.stats.cache_misses.inc();
            ctx.cache = Some(CacheUse::Miss);
            conn.extra
                .extend_from_slice(b"Cache-Status: ringway; fwd=miss; detail=only-if-cached\r\n");
            let e = Error::downstream(Kind::GatewayTimeout, "only-if-cached and nothing stored");
            let keep = head.keep_alive;
            return crate::proxy::answer::error(conn, io, ctx, e, keep).await;
        }
        if ctx.head_request {
            // A HEAD response has no body to store: the origin answers.
            w.stats.cache_misses.inc();
            ctx.cache = Some(CacheUse::Miss);
            let fwd = if stale.is_some() { "stale" } else { "miss" };
            let _ = write!(conn.extra, "Cache-Status: ringway; fwd={fwd}\r\n");
            return forward::forward(conn, io, ctx, head, g, index, group).await;
        }
        // Collapse with a fetch in flight for the same key on any worker:
        // wait for it, then look again (once). Not for a key whose last
        // response was not stored: that fetch could not answer this
        // request.
        if rc.passes(key, now) {
            break (true, None);
        }
        match rc.lead(key) {
            Ok(leading) => {
                // Another worker's fetch may have stored the key between
                // the look above and the lead (workers run at once): one
                // more look finds it, instead of a second fetch.
                let stored = rc.lookup(&g.cache, key, head);
                let newer =
                    stored.is_some_and(|e| stale.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &e)));
                if newer && !rechecked {
                    rechecked = true;
                    drop(leading);
                    continue;
                }
                break (false, Some(leading));
            }
            Err(fetching) if !collapsed && !rc.lock_timeout.is_zero() => {
                collapsed = true;
                w.stats.cache_collapsed.inc();
                let deadline = Instant::now() + rc.lock_timeout;
                let _ = w.deadlines.within(deadline, fetching.wait()).await;
            }
            // Waited once already (the fetch outlived `lock-timeout`), or
            // collapsing is off: to the origin, without leading.
            Err(_) => break (false, None),
        }
    };
    // A Range miss fetches the whole representation to store, unless the
    // route turned that off or the key is known not to be stored: then
    // the origin answers the range.
    let range = range::requested(head).is_some();
    let fetch_whole = rc_cfg_range_fetch(g, index) > 0;
    if range && (pass || !fetch_whole) {
        bypass(conn, ctx, "range");
        return forward::forward(conn, io, ctx, head, g, index, group).await;
    }
    w.stats.cache_misses.inc();
    let fetch = FetchFor {
        g,
        index,
        group,
        rc,
        key,
        req_dir,
        pass,
        _leading: leading,
        range,
    };
    fetch.run(conn, io, ctx, head, stale).await
}

/// After a successful unsafe request (RFC 9111 §4.4): drops the stored
/// responses of its URL, as every caching route keys it, for every consumer
/// and key-header value, once for every worker (the cache is one).
/// `keys` are [`LocalCache::url_keys`] of the request.
///
/// [`LocalCache::url_keys`]: crate::cache::store::LocalCache::url_keys
pub(crate) fn invalidate(w: &Worker, g: &Generation, keys: &[u8]) {
    for key in crate::cache::store::each_key(keys) {
        g.cache
            .shared
            .invalidate(crate::cache::store::url_hash(key));
    }
    w.stats.cache_invalidations.inc();
}

/// The route's `range-fetch-max` (0: Range misses go to the origin).
fn rc_cfg_range_fetch(g: &Generation, index: usize) -> usize {
    g.snap
        .route_config(index)
        .cache
        .as_ref()
        .map_or(0, |c| c.range_fetch_max)
}

/// Forwards past the cache, saying why.
fn bypass(conn: &mut Conn, ctx: &mut Ctx, why: &str) {
    let s = &conn.w.stats;
    match why {
        "body" => s.cache_bypass_body.inc(),
        "range" => s.cache_bypass_range.inc(),
        _ => s.cache_bypass_method.inc(),
    }
    ctx.cache = Some(CacheUse::Bypass);
    let _ = write!(
        conn.extra,
        "Cache-Status: ringway; fwd=bypass; detail={why}\r\n"
    );
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
/// stored `Bytes`, or in one write with the head when small), or the
/// ranges asked for.
async fn answer_stored<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    e: &Entry,
    age: u64,
    served: Served,
) -> Next {
    match lay_out(conn, ctx, head, e, age, served) {
        Prepared::Laid(laid) => send_laid(conn, io, ctx, laid).await,
        Prepared::Range(plan) => {
            let status = |out: &mut BytesMut| write_cache_status(out, served, ttl(e, age));
            range::answer(conn, io, ctx, head, e, age, plan, status).await
        }
    }
}

/// A stored response laid out for the client: its head, and a small body,
/// in the connection's write buffer. It holds no reference on the entry,
/// only the `Bytes` of a large body.
struct Laid {
    /// Written after the buffer, as it is.
    body: Option<Bytes>,
    /// Framed through the response filter (compression) piece by piece.
    filtered: Option<Bytes>,
    framing: BodyOut,
    keep: bool,
}

/// What [`lay_out`] made of a stored response.
enum Prepared {
    Laid(Laid),
    /// Ranges were asked for: answered from the entry by `range::answer`.
    Range(crate::cache::range::Plan),
}

/// The synchronous part of [`answer_stored`]: everything up to the writes.
fn lay_out(
    conn: &mut Conn,
    ctx: &mut Ctx,
    head: &RequestHead,
    e: &Entry,
    age: u64,
    served: Served,
) -> Prepared {
    ctx.cache = Some(served.cache_use());
    let pre = preconditions(head);
    let not_modified =
        e.status == 200 && is_conditional(&pre) && conditional::not_modified(&pre, &e.validators());
    if !not_modified {
        if let Some(plan) = range::plan_for(head, e) {
            return Prepared::Range(plan);
        }
    }
    let keep = head.keep_alive && !conn.listener.closing.is_fired();
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    let status = if not_modified {
        write::status_line(&mut wbuf, 304, b"Not Modified");
        e.write_not_modified_fields(&mut wbuf);
        304
    } else {
        let cfg = &conn.g.snap.config.cache;
        e.write_head(
            &mut wbuf,
            cfg.forward_targeted,
            cfg.targeted_field.as_bytes(),
        );
        e.status
    };
    // Integers by itoa: a hit formats two per answer.
    let mut num = itoa::Buffer::new();
    wbuf.extend_from_slice(b"Age: ");
    wbuf.extend_from_slice(num.format(age).as_bytes());
    wbuf.extend_from_slice(b"\r\n");
    write_cache_status(&mut wbuf, served, ttl(e, age));
    let framing = if status == 304 || status == 204 {
        BodyOut::None
    } else {
        BodyOut::Length(e.body.len() as u64)
    };
    let (framing, keep) = end_head(conn, ctx, &mut wbuf, status, framing, keep);
    let mut body: Option<Bytes> = None;
    let mut filtered: Option<Bytes> = None;
    if !ctx.head_request && !e.body.is_empty() {
        match framing {
            BodyOut::Length(_) if e.body.len() <= COALESCE_MAX => wbuf.extend_from_slice(&e.body),
            BodyOut::Length(_) => body = Some(e.body.clone()),
            // A large body through a filter (compression) goes piece by
            // piece, so one hit does not hold the worker for the whole.
            BodyOut::Chunked | BodyOut::Close if e.body.len() > FILTER_PIECE => {
                filtered = Some(e.body.clone());
            }
            BodyOut::Chunked | BodyOut::Close => {
                crate::proxy::answer::put_body(ctx, framing, &e.body, &mut conn.scratch, &mut wbuf)
            }
            BodyOut::None => {}
        }
    }
    conn.wbuf = wbuf;
    Prepared::Laid(Laid {
        body,
        filtered,
        framing,
        keep,
    })
}

/// The writes of [`answer_stored`].
async fn send_laid<S: Transport>(conn: &mut Conn, io: &mut S, ctx: &mut Ctx, laid: Laid) -> Next {
    let Laid {
        body,
        filtered,
        framing,
        keep,
    } = laid;
    if !write_out_with(conn, io, ctx, body).await {
        return Next::Close;
    }
    if let Some(body) = filtered {
        let chunked = framing == BodyOut::Chunked;
        let mut pieces = body.chunks(FILTER_PIECE).peekable();
        while let Some(piece) = pieces.next() {
            let mut wbuf = std::mem::take(&mut conn.wbuf);
            wbuf.clear();
            filter::frame(
                &mut ctx.filter,
                piece,
                chunked,
                &mut conn.scratch,
                &mut wbuf,
            );
            if pieces.peek().is_none() {
                filter::end(&mut ctx.filter, chunked, &mut wbuf);
            }
            conn.wbuf = wbuf;
            if !write_out(conn, io, ctx).await {
                return Next::Close;
            }
        }
    }
    if keep {
        Next::KeepAlive
    } else {
        Next::Close
    }
}
