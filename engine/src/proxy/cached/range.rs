//! Range requests on a caching route (RFC 9110 §14): answered from a
//! stored complete response (206, `multipart/byteranges`, 416), and on a
//! miss by fetching the whole representation when it is small enough to
//! store (`range-fetch-max`), else by letting the origin answer the range.
//!
//! Only GET has range semantics (§14.2); a HEAD with Range is answered as
//! a plain HEAD, its Range ignored, as RFC 9110 and nginx both do. Only a
//! stored 200 is cut into ranges. `If-Range` that does not hold, a Range
//! that does not parse, or one that asks for too much (see
//! [`crate::cache::range`]) gets the whole 200.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::cache::entry::{http_date, Entry};
use crate::cache::range::{self, Plan, Span};
use crate::cache::response::{
    build_entry, exact, is_conditional, is_content_field, preconditions, request_values, vary_of,
    verdict,
};
use crate::cache::store::RouteCache;
use crate::error::Error;
use crate::http::head::{BodyKind, Method, RequestHead};
use crate::http::write;
use crate::proxy::answer::{end_head, put_body, write_out_with, BodyOut};
use crate::proxy::body::Capture;
use crate::proxy::conn::Next;
use crate::proxy::ctx::{CacheUse, Ctx};
use crate::proxy::exchange::Fetched;
use crate::proxy::forward::{self, COALESCE_MAX};
use crate::rt::io::Transport;
use crate::worker::conn::Conn;

use super::fill::FetchFor;

/// The Range header of a GET, when there is one.
pub(super) fn requested(head: &RequestHead) -> Option<&[u8]> {
    if head.method != Method::Get {
        return None;
    }
    request_values(head, b"range").next()
}

/// How a stored response answers `head`: `None` for the whole response
/// as usual (no Range, a HEAD, a status other than 200, If-Range not
/// holding, a Range ignored).
pub(super) fn plan_for(head: &RequestHead, e: &Entry) -> Option<Plan> {
    let value = requested(head)?;
    if e.status != 200 {
        return None;
    }
    if let Some(cond) = request_values(head, b"if-range").next() {
        let v = e.validators();
        let date = e.value(b"date").and_then(http_date);
        if !range::if_range(cond, v.etag, v.last_modified, date) {
            return None;
        }
    }
    match range::plan(value, e.body.len() as u64) {
        Plan::Whole => None,
        plan => Some(plan),
    }
}

/// Answers `plan` (not [`Plan::Whole`]) from `e`: 206 with one range or a
/// multipart body, or 416. `cache_status` writes the Cache-Status line.
#[allow(clippy::too_many_arguments)]
pub(super) async fn answer<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    e: &Entry,
    age: u64,
    plan: Plan,
    cache_status: impl FnOnce(&mut BytesMut),
) -> Next {
    let keep = head.keep_alive && !conn.listener.closing.is_fired();
    let len = e.body.len() as u64;
    let cfg = &conn.g.snap.config.cache;
    let targeted = (!cfg.forward_targeted).then_some(cfg.targeted_field.as_bytes());
    let content_type = e.value(b"content-type");
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    let (status, body): (u16, Option<Bytes>) = match &plan {
        Plan::Partial(spans) if spans.as_slice().len() == 1 => {
            let s = spans.as_slice()[0];
            write::status_line(&mut wbuf, 206, b"Partial Content");
            write_fields(&mut wbuf, e, targeted, |_| false);
            range::write_content_range(&mut wbuf, &s, len);
            (206, Some(slice(e, &s)))
        }
        Plan::Partial(spans) => {
            let b = range::boundary(seed(e));
            write::status_line(&mut wbuf, 206, b"Partial Content");
            write_fields(&mut wbuf, e, targeted, |n| {
                n.eq_ignore_ascii_case(b"content-type")
            });
            wbuf.extend_from_slice(b"Content-Type: multipart/byteranges; boundary=");
            wbuf.extend_from_slice(&b);
            wbuf.extend_from_slice(b"\r\n");
            let spans = spans.as_slice();
            let total = range::multipart_len(spans, len, content_type, &b);
            let mut out = BytesMut::with_capacity(total as usize);
            for s in spans {
                range::write_part_head(&mut out, s, len, content_type, &b);
                out.extend_from_slice(&slice(e, s));
            }
            range::write_end(&mut out, &b);
            debug_assert_eq!(out.len() as u64, total);
            (206, Some(out.freeze()))
        }
        Plan::Unsatisfiable | Plan::Whole => {
            write::status_line(&mut wbuf, 416, b"Range Not Satisfiable");
            // No representation follows: its metadata stays out.
            write_fields(&mut wbuf, e, targeted, is_content_field);
            wbuf.extend_from_slice(b"Content-Range: bytes */");
            wbuf.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            wbuf.extend_from_slice(b"\r\n");
            (416, None)
        }
    };
    wbuf.extend_from_slice(b"Age: ");
    wbuf.extend_from_slice(itoa::Buffer::new().format(age).as_bytes());
    wbuf.extend_from_slice(b"\r\n");
    cache_status(&mut wbuf);
    let n = body.as_ref().map_or(0, |b| b.len() as u64);
    let (framing, keep) = end_head(conn, ctx, &mut wbuf, status, BodyOut::Length(n), keep);
    let mut large = None;
    if let Some(body) = body {
        match framing {
            BodyOut::Length(_) if body.len() <= COALESCE_MAX => wbuf.extend_from_slice(&body),
            BodyOut::Length(_) => large = Some(body),
            other => put_body(ctx, other, &body, &mut conn.scratch, &mut wbuf),
        }
    }
    conn.wbuf = wbuf;
    if write_out_with(conn, io, ctx, large).await && keep {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// The stored field lines, but those `skip` names and, when `targeted` is
/// set, `CDN-Cache-Control` and the targeted field (RFC 9213).
fn write_fields(
    out: &mut BytesMut,
    e: &Entry,
    targeted: Option<&[u8]>,
    skip: impl Fn(&[u8]) -> bool,
) {
    for (name, value) in e.fields() {
        let aimed = targeted.is_some_and(|t| {
            name.eq_ignore_ascii_case(crate::cache::directives::CDN_CACHE_CONTROL)
                || (!t.is_empty() && name.eq_ignore_ascii_case(t))
        });
        if !aimed && !skip(name) {
            write::header(out, name, value);
        }
    }
}

fn slice(e: &Entry, s: &Span) -> Bytes {
    e.body.slice(s.first as usize..=s.last as usize)
}

/// Varies the multipart boundary per response without a random source.
fn seed(e: &Entry) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (e.body.as_ptr() as u64).rotate_left(32) ^ e.body.len() as u64
}

/// A miss for a Range request, fetched whole (without Range). A 200 of
/// known length within `range-fetch-max` is read whole, kept when it may
/// be stored, and the range answered from it; a larger 200 (or one of
/// unknown length) is dropped and the request forwarded with its Range,
/// for the origin to answer. Any other status, or a request with
/// preconditions, is for the caller to relay: `Err` gives the response
/// back.
#[allow(clippy::too_many_arguments)]
pub(super) async fn miss<S: Transport>(
    fetch: &FetchFor<'_>,
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    f: Fetched,
    request_time: u64,
    response_time: u64,
) -> Result<Next, Fetched> {
    // A conditional request is answered by the relay, which evaluates the
    // preconditions first (304) and otherwise sends the whole 200, as
    // §14.2 allows.
    if f.resp.status != 200 || is_conditional(&preconditions(head)) {
        return Err(f);
    }
    let g = fetch.g;
    let w = conn.w.clone();
    let route = g.snap.route_config(fetch.index);
    let limit = route.cache.as_ref().map_or(0, |c| c.range_fetch_max);
    let n = match f.resp.body {
        BodyKind::Length(n) if n <= limit as u64 => n as usize,
        BodyKind::None => 0,
        _ => {
            // Too large to keep: the origin answers the range itself.
            f.release(&w, g, false);
            w.stats.cache_bypass_range.inc();
            ctx.cache = Some(CacheUse::Bypass);
            conn.extra.extend_from_slice(
                b"Cache-Status: ringway; fwd=bypass; detail=range-too-large\r\n",
            );
            return Ok(forward::forward(conn, io, ctx, head, g, fetch.index, fetch.group).await);
        }
    };
    let authorization = request_values(head, b"authorization").next().is_some();
    let targeted = g.snap.config.cache.targeted_field.as_bytes();
    let verdict = verdict(
        &fetch.req_dir,
        authorization,
        &f.resp,
        fetch.rc.max_entry,
        targeted,
    );
    let request_caused = fetch.req_dir.no_store || verdict == Err("authorization");
    let mut capture = Capture {
        buf: Some(BytesMut::with_capacity(n)),
        limit: n,
    };
    let mut fetched = f;
    let idle = route.limits.body_idle_timeout;
    let body_ok = fetched
        .capture_body(&w, g, idle, &mut conn.scratch, &mut capture)
        .await;
    let raw = capture.buf.take().filter(|_| body_ok);
    let Some(raw) = raw else {
        fetched.release(&w, g, false);
        let e = Error::bad_gateway("upstream body aborted");
        ctx.cache = Some(CacheUse::Miss);
        return Ok(crate::proxy::answer::error(conn, io, ctx, e, false).await);
    };
    let resp = &fetched.resp;
    let stored = verdict.is_ok();
    let secondary = RouteCache::secondary_of(&vary_of(resp), head);
    let entry = build_entry(
        resp,
        secondary,
        exact(raw),
        request_time,
        response_time,
        targeted,
    );
    fetched.release(&w, g, true);
    if !request_caused {
        fetch.rc.note_stored(fetch.key, stored, response_time);
    }
    let entry = std::sync::Arc::new(entry);
    if stored {
        fetch.store(&w, entry.clone());
    }
    ctx.cache = Some(CacheUse::Miss);
    let line = match verdict {
        Ok(_) => "Cache-Status: ringway; fwd=miss; fwd-status=200; stored\r\n".to_owned(),
        Err(why) => format!("Cache-Status: ringway; fwd=miss; fwd-status=200; detail={why}\r\n"),
    };
    let age = entry.age(response_time);
    let plan = plan_for(head, &entry).unwrap_or(Plan::Whole);
    if plan == Plan::Whole {
        return Ok(whole(conn, io, ctx, head, &entry, age, &line).await);
    }
    Ok(answer(conn, io, ctx, head, &entry, age, plan, |out| {
        out.extend_from_slice(line.as_bytes())
    })
    .await)
}

/// The whole fetched response, when the Range turned out to be ignored.
async fn whole<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    e: &Entry,
    age: u64,
    line: &str,
) -> Next {
    let keep = head.keep_alive && !conn.listener.closing.is_fired();
    let cfg = &conn.g.snap.config.cache;
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    e.write_head(
        &mut wbuf,
        cfg.forward_targeted,
        cfg.targeted_field.as_bytes(),
    );
    wbuf.extend_from_slice(b"Age: ");
    wbuf.extend_from_slice(itoa::Buffer::new().format(age).as_bytes());
    wbuf.extend_from_slice(b"\r\n");
    wbuf.extend_from_slice(line.as_bytes());
    let len = e.body.len() as u64;
    let (framing, keep) = end_head(conn, ctx, &mut wbuf, e.status, BodyOut::Length(len), keep);
    let mut large = None;
    match framing {
        BodyOut::Length(_) if e.body.len() > COALESCE_MAX => large = Some(e.body.clone()),
        other => put_body(ctx, other, &e.body, &mut conn.scratch, &mut wbuf),
    }
    conn.wbuf = wbuf;
    if write_out_with(conn, io, ctx, large).await && keep {
        Next::KeepAlive
    } else {
        Next::Close
    }
}
