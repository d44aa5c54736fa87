//! The CORS stage of a route with `[routes.cors]`: run right after
//! routing, before the request filters, so that the lines it adds reach
//! every answer of the request (the gateway's own 401, 403 and 429 too:
//! a page can only read a refusal that carries them), and so that a
//! preflight is answered before auth and rate limits, which a browser's
//! preflight (sent without credentials) could never pass.
//!
//! A preflight still passes the global and the route's IP rules: they
//! are the network's boundary, not the API's, and a denied client
//! learns nothing from a 403. It is never forwarded: 204 with the
//! preflight's lines, or 403 without them when its origin or method is
//! not allowed (a clearer mark in logs and a browser's devtools than an
//! empty 204; browsers fail the preflight either way). An actual request
//! from an allowed origin gets its lines in `conn.extra`; from another
//! origin, none (counted), and it is served as usual: CORS is the
//! browser's rule for what a page may read, not an access control.
//!
//! A preflight is routed by the method it asks about, not by `OPTIONS`:
//! it asks whether the request the browser means to send may go, and
//! that request's route (say one with `methods = ["PUT"]`) is the one
//! whose CORS rules answer. When that route has none, the `OPTIONS`
//! request is routed as any other.

use std::net::IpAddr;

use crate::error::{Error, Kind};
use crate::http::date;
use crate::http::head::{BodyKind, Method, RequestHead};
use crate::http::text;
use crate::http::write;
use crate::policy::cors::{Verdict, PREFLIGHT_VARY};
use crate::policy::ip;
use crate::proxy::answer::{end_head, send, BodyOut};
use crate::proxy::conn::Next;
use crate::proxy::ctx::Ctx;
use crate::proxy::pipeline::refuse;
use crate::router::Match;
use crate::rt::io::Transport;
use crate::snapshot::{CompiledRoute, Snapshot};
use crate::worker::conn::Conn;

/// The CORS route a preflight asks about: the route of its requested
/// method, when that route has `[routes.cors]`. Costs one comparison for
/// any request but `OPTIONS`.
pub(crate) fn preflight_route(snap: &Snapshot, head: &RequestHead) -> Option<usize> {
    if head.method != Method::Options {
        return None;
    }
    let requested = head.values(b"access-control-request-method").next()?;
    head.values(b"origin").next()?;
    match snap
        .router
        .route(head.authority(), head.path(), text::trim(requested))
    {
        Match::Route(i) if snap.routes.get(i).is_some_and(|r| r.cors.is_some()) => Some(i),
        _ => None,
    }
}

/// Judges a request on a CORS route: `Some` when the stage answered it
/// (a preflight), `None` when the pipeline goes on (its answer's CORS
/// lines, if any, in `conn.extra`).
pub(crate) async fn stage<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    route: &CompiledRoute,
    head: &RequestHead,
) -> Option<Next> {
    let cors = route.cors.as_ref()?;
    let stats = &conn.w.stats;
    let mark = conn.extra.len();
    match cors.judge(head, &mut conn.extra) {
        Verdict::NoOrigin | Verdict::Allowed => None,
        Verdict::Refused { preflight: false } => {
            stats.cors_refused.inc();
            None
        }
        Verdict::Refused { preflight: true } => {
            stats.cors_refused.inc();
            let e = Error::downstream(Kind::Forbidden, "CORS preflight not allowed");
            Some(refuse(conn, io, ctx, head, e).await)
        }
        Verdict::Preflight => {
            if !ip_admits(conn, route, head) {
                conn.extra.truncate(mark);
                let e = Error::downstream(Kind::Forbidden, "refused by an IP rule");
                return Some(refuse(conn, io, ctx, head, e).await);
            }
            stats.cors_preflights.inc();
            if let (Some(hsts), Some(_)) = (&route.hsts, &conn.tls) {
                conn.extra.extend_from_slice(hsts);
            }
            Some(preflight(conn, io, ctx, head).await)
        }
    }
}

/// The global and the route's IP rules, as the request filters apply them.
fn ip_admits(conn: &Conn, route: &CompiledRoute, head: &RequestHead) -> bool {
    let policies = &conn.g.snap.policies;
    if route.policy.empty && policies.global.is_empty() {
        return true;
    }
    let client: IpAddr = ip::client_ip(conn.peer.ip(), &policies.trusted, head);
    policies.global.admits(client) && route.policy.ip.admits(client)
}

/// Answers an allowed preflight: 204, its lines (in `conn.extra`) and the
/// Vary line of a preflight.
async fn preflight<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
) -> Next {
    let has_body = head.body != BodyKind::None;
    conn.linger |= has_body;
    let keep = head.keep_alive && !has_body && !conn.listener.closing.is_fired();
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    write::status_line(&mut wbuf, 204, b"No Content");
    wbuf.extend_from_slice(b"Server: ringway\r\n");
    date::append_date_line(&mut wbuf);
    wbuf.extend_from_slice(PREFLIGHT_VARY);
    let (_, keep) = end_head(conn, ctx, &mut wbuf, 204, BodyOut::None, keep);
    conn.wbuf = wbuf;
    send(conn, io, ctx, keep).await
}
