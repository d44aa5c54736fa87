//! The stages every request passes, in order (on the model of pingora's
//! `ProxyHttp` phases):
//!
//! 1. route: host, path and method pick a [`CompiledRoute`] (404, 405;
//!    a CORS preflight by the method it asks about);
//! 2. the CORS stage (`proxy::cors`, routes with `[routes.cors]`): a
//!    preflight is answered here, other requests get their CORS lines;
//!    then the request filters ([`request_filters`]): the body limit,
//!    HTTPS redirect and client-certificate rules, global and route IP
//!    rules, auth, rate and concurrency limits; a refusal is an [`Error`]
//!    like any other;
//! 3. the handler: the built-in responder, a redirect, a tunnel
//!    (`proxy::tunnel`, for a protocol upgrade the route passes), or
//!    upstream (through the cache when the route caches), whose request
//!    is rewritten by the upstream request stage (`proxy::rewrite`, with
//!    the route's path, query and request-header rules from
//!    `proxy::transform`) and whose response passes the upstream response
//!    stage (`proxy::cached` decides what to store);
//! 4. the response stage (`answer::end_head`) for every answer: proxied,
//!    cached, built-in, redirects and refusals, response-header rules
//!    last; the gateway's own error bodies follow `error-format`;
//! 5. the body filter stage (`proxy::filter`);
//! 6. the log stage ([`log`]), exactly once per request, whatever happened.

use std::net::IpAddr;
use std::time::Duration;

use crate::error::{Error, Kind, Side};
use crate::http::head::{BodyKind, RequestHead};
use crate::policy::auth::{self, Outcome, VerifyJob};
use crate::policy::limit::now_ns;
use crate::policy::{ip, rate_headers, Now, Pass};
use crate::proxy::body::{Copy, Discard, Framing, Output};
use crate::proxy::conn::Next;
use crate::proxy::ctx::{AiUse, Ctx};
use crate::proxy::transform::{self, ReqView, Vars};
use crate::proxy::{access, answer};
use crate::proxy::{cached, cors, forward, tunnel};
use crate::router::Match;
use crate::rt::io::Transport;
use crate::snapshot::{CompiledRoute, Handler};
use crate::stats::labeled::{class_index, RouteStats, METHODS, REFUSALS};
use crate::stats::WorkerStats;
use crate::worker::conn::Conn;
use crate::worker::{Generation, Logged};

/// Password checks a worker lets wait for the blocking pool at once.
const MAX_VERIFYING: u32 = 64;

/// Longest a request waits for its password check on the blocking pool
/// (queueing included) before it gets 503.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes and answers one request (stages 1–5; the caller runs the log
/// stage).
pub(crate) async fn run<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
) -> Next {
    let g = conn.g.clone();
    if let Some(p) = &conn.w.hooks.panic_on_path {
        if head.path() == p.as_bytes() {
            panic!("panic requested by test hook");
        }
    }
    if g.snap.listener_transforms {
        keep_request(conn, ctx, head);
    }
    let m = match cors::preflight_route(&g.snap, head) {
        Some(i) => Match::Route(i),
        None => g
            .snap
            .router
            .route(head.authority(), head.path(), head.bytes(head.method_span)),
    };
    let index = match m {
        Match::Route(i) => i,
        Match::NotFound => {
            let e = Error::downstream(Kind::NotFound, "no route");
            return refuse(conn, io, ctx, head, e).await;
        }
        Match::MethodNotAllowed => {
            let e = Error::downstream(Kind::MethodNotAllowed, "method not allowed");
            return refuse(conn, io, ctx, head, e).await;
        }
    };
    ctx.route = Some(index);
    let route = &g.snap.routes[index];
    if route.transforms && ctx.req.is_none() {
        keep_request(conn, ctx, head);
    }
    if let Some(c) = &g.snap.route_config(index).compression {
        ctx.compress = crate::proxy::compress::negotiate(c, head, ctx.head_request);
    }
    if let (Some(port), None) = (route.redirect_https, &conn.tls) {
        redirect_https(conn, head, port);
        let has_body = head.body != BodyKind::None;
        conn.linger |= has_body;
        let keep = head.keep_alive && !has_body;
        return answer::status_only(conn, io, ctx, 308, keep).await;
    }
    if let Some(next) = cors::stage(conn, io, ctx, route, head).await {
        return next;
    }
    // Held until the answer is complete: a concurrency slot.
    let pass = match request_filters(conn, ctx, &g, route, head).await {
        Ok(pass) => pass,
        Err(e) => return refuse(conn, io, ctx, head, e).await,
    };
    // A protocol upgrade the route passes goes to the tunnel handler.
    if let (Handler::Upstream { group }, Some(t)) = (&route.handler, g.snap.tunnels.route(index)) {
        if let Some(protocol) = t.offered(head) {
            let next = tunnel::serve(conn, io, ctx, head, &g, index, *group, t, protocol).await;
            drop(pass);
            return next;
        }
    }
    let next = match &route.handler {
        Handler::Respond(pre) => match read_away_body(conn, io, head, route).await {
            Ok(keep) => answer::respond(conn, io, ctx, keep, pre).await,
            Err(e) => return answer::error(conn, io, ctx, e, false).await,
        },
        Handler::Upstream { group } => {
            // A successful unsafe request invalidates its URL in the
            // cache, whichever route it took (RFC 9111 §4.4).
            let invalidates = (!head.method.is_safe() && g.cache.caches()).then(|| {
                let mut keys = g.cache.take_key();
                g.cache.url_keys(&mut keys, head);
                keys
            });
            let next = if g.cache.route(index).is_some() {
                cached::serve(conn, io, ctx, head, &g, index, *group).await
            } else {
                forward::forward(conn, io, ctx, head, &g, index, *group).await
            };
            if let Some(keys) = invalidates {
                if (200..400).contains(&ctx.status) {
                    cached::invalidate(&conn.w, &g, &keys);
                }
                g.cache.put_key(keys);
            }
            next
        }
        Handler::Ai(ai) => crate::proxy::ai::serve(conn, io, ctx, head, &g, index, ai).await,
        Handler::Redirect(rd) => match read_away_body(conn, io, head, route).await {
            Ok(keep) => {
                location(conn, ctx, head, &g, index, rd);
                answer::status_only(conn, io, ctx, rd.status, keep).await
            }
            Err(e) => return answer::error(conn, io, ctx, e, false).await,
        },
    };
    drop(pass);
    next
}

/// Keeps what the route's (or listener's) values need of the request
/// once its head is gone: only where there are transforms.
fn keep_request(conn: &Conn, ctx: &mut Ctx, head: &RequestHead) {
    let snap = &conn.g.snap;
    let client = ip::client_ip(conn.peer.ip(), &snap.policies.trusted, head);
    let listener = transform::listener_index(snap, conn.listener.configured);
    ctx.req = Some(ReqView::of(head, client, listener));
}

/// Writes a redirect route's `Location` line into the answer's lines.
fn location(
    conn: &mut Conn,
    ctx: &Ctx,
    head: &RequestHead,
    g: &Generation,
    index: usize,
    rd: &ringway_config::Redirect,
) {
    let config = g.snap.route_config(index);
    let prefix_len = match &config.path {
        ringway_config::PathMatch::Prefix(p) => p.len(),
        ringway_config::PathMatch::Exact(_) => 0,
    };
    let vars = Vars {
        snap: &g.snap,
        ctx,
        tls: conn.tls.as_deref(),
        server: None,
        captures: None,
        target: None,
    };
    let extra = &mut conn.extra;
    extra.extend_from_slice(b"Location: ");
    transform::write_location(
        extra,
        &rd.location,
        head.origin(),
        head.path().len(),
        prefix_len,
        &config.transform,
        g.snap.routes[index].rewrite.as_ref(),
        &vars,
    );
    extra.extend_from_slice(b"\r\n");
}

/// Answers a refusal of a well-formed request. The connection stays open
/// when the request has no body (nothing unread is left behind).
pub(crate) async fn refuse<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    e: Error,
) -> Next {
    let has_body = head.body != BodyKind::None;
    conn.linger |= has_body;
    let keep = head.keep_alive && !has_body;
    answer::error(conn, io, ctx, e, keep).await
}

/// Before the gateway answers itself (a built-in answer, a redirect):
/// reads away a request body nobody needs. Whether the connection can
/// stay open: not when the client waits (`Expect: 100-continue`) before
/// sending a body.
async fn read_away_body<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: &RequestHead,
    route: &CompiledRoute,
) -> Result<bool, Error> {
    if head.body == BodyKind::None {
        return Ok(head.keep_alive);
    }
    if head.expect_continue {
        // The client waits before sending a body we do not need.
        conn.linger = true;
        return Ok(false);
    }
    discard_body(conn, io, head, route).await?;
    Ok(head.keep_alive)
}

/// Reads away a request body nobody needs (the built-in responder's).
async fn discard_body<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: &RequestHead,
    route: &CompiledRoute,
) -> Result<(), Error> {
    let framing = match head.body {
        BodyKind::Length(n) => Framing::Length(n),
        BodyKind::Chunked => Framing::Chunked,
        _ => return Ok(()),
    };
    let limits = &conn.g.snap.route_config(route.index).limits;
    let w = conn.w.clone();
    let copy = Copy {
        framing,
        output: Output::Discard,
        limit: limits.max_body_size,
        idle: limits.body_idle_timeout,
        scratch: &mut conn.scratch,
        deadlines: &w.deadlines,
        send_limit: conn.g.limits().send_timeout,
        pool: &w.pool,
        filter: None,
        capture: None,
        lead: None,
        trailers_dropped: None,
    };
    copy.run(io, &mut conn.rbuf, &mut Discard)
        .await
        .map_err(forward::request_body_error)
}

/// The request filters: what must hold before a route's handler runs.
/// Header lines for the answer (a refusal's challenges, RateLimit headers,
/// HSTS) go to `conn.extra`.
async fn request_filters(
    conn: &mut Conn,
    ctx: &mut Ctx,
    g: &Generation,
    route: &CompiledRoute,
    head: &RequestHead,
) -> Result<Pass, Error> {
    let limits = &g.snap.route_config(route.index).limits;
    if let BodyKind::Length(n) = head.body {
        if n > limits.max_body_size {
            return Err(Error::downstream(Kind::BodyTooLarge, "body over limit"));
        }
    }
    if route.require_client_cert
        && conn
            .tls
            .as_ref()
            .and_then(|t| t.client_subject.as_ref())
            .is_none()
    {
        return Err(Error::downstream(
            Kind::Forbidden,
            "client certificate required",
        ));
    }
    if let (Some(hsts), Some(_)) = (&route.hsts, &conn.tls) {
        conn.extra.extend_from_slice(hsts);
    }
    let policies = &g.snap.policies;
    let policy = &route.policy;
    if policy.empty && policies.global.is_empty() {
        return Ok(Pass::default());
    }
    let client: IpAddr = ip::client_ip(conn.peer.ip(), &policies.trusted, head);
    if !policies.global.admits(client) || !policy.ip.admits(client) {
        return Err(Error::downstream(Kind::Forbidden, "refused by an IP rule"));
    }
    let now = Now {
        mono: now_ns(),
        wall: std::time::SystemTime::now(),
    };
    let outcome = match policies.authenticate(&g.policies, policy, head, now) {
        None => None,
        Some(auth::Step::Done(outcome)) => Some(outcome),
        Some(auth::Step::Verify(job)) => Some(verify_off_worker(conn, g, job).await?),
    };
    let pass = policies.check(
        &g.policies,
        route.index,
        policy,
        head,
        client,
        now,
        outcome,
        &mut conn.extra,
    )?;
    if policy.headers {
        if let Some(v) = &pass.rate {
            rate_headers(&mut conn.extra, v);
        }
    }
    ctx.consumer = pass.consumer;
    Ok(pass)
}

/// Runs a password check on the blocking pool, so a slow hash (or a flood
/// of wrong passwords) does not stall this worker's other connections. At
/// most [`MAX_VERIFYING`] wait per worker, each at most [`VERIFY_TIMEOUT`];
/// past either the request gets 503.
async fn verify_off_worker(
    conn: &mut Conn,
    g: &Generation,
    job: VerifyJob,
) -> Result<Outcome, Error> {
    let w = conn.w.clone();
    let busy = || Error::internal(Kind::Unavailable, "password checks queue full or slow");
    if w.verifying.get() >= MAX_VERIFYING {
        conn.extra.extend_from_slice(b"Retry-After: 1\r\n");
        return Err(busy());
    }
    w.verifying.set(w.verifying.get() + 1);
    let mut running = monoio::spawn_blocking(move || job.run());
    let limit = w.hooks.verify_timeout.unwrap_or(VERIFY_TIMEOUT);
    let done = w.deadlines.within_for(limit, &mut running).await;
    match done {
        Ok(Ok(verified)) => {
            w.verifying.set(w.verifying.get() - 1);
            Ok(g.snap
                .policies
                .auth
                .finish(&g.policies.auth_cache, verified))
        }
        Ok(Err(_)) => {
            w.verifying.set(w.verifying.get() - 1);
            Err(busy())
        }
        Err(_) => {
            // The check still runs: it keeps its place in the count until
            // it ends, so a stuck pool cannot take more work.
            let waiter = w.clone();
            monoio::spawn(async move {
                let _ = running.await;
                waiter.verifying.set(waiter.verifying.get() - 1);
            });
            conn.extra.extend_from_slice(b"Retry-After: 1\r\n");
            Err(busy())
        }
    }
}

/// Writes the `Location` of a 308 to the same URL over HTTPS (on `port`,
/// else 443) into the answer's lines.
fn redirect_https(conn: &mut Conn, head: &RequestHead, port: Option<u16>) {
    let authority = head.authority();
    // The host without a port (an IPv6 literal keeps its brackets).
    let host = match authority.iter().rposition(|&b| b == b':') {
        Some(i) if !authority[i..].contains(&b']') => &authority[..i],
        _ => authority,
    };
    let origin = head.origin();
    let extra = &mut conn.extra;
    extra.extend_from_slice(b"Location: https://");
    extra.extend_from_slice(host);
    if let Some(p) = port {
        extra.extend_from_slice(b":");
        extra.extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
    }
    if origin.first() != Some(&b'/') {
        extra.extend_from_slice(b"/");
    }
    extra.extend_from_slice(origin);
    extra.extend_from_slice(b"\r\n");
}

/// The log stage: runs exactly once per request, whatever its outcome,
/// counts it (by status, by refusal or failure) and hands the access log
/// its record. `head` is the request's, when one was read.
pub(crate) fn log(conn: &Conn, ctx: &mut Ctx, head: Option<&RequestHead>) {
    ctx.timings.total = ctx.start.elapsed();
    let stats = &conn.w.stats;
    stats.requests.inc();
    if ctx.status != 0 {
        stats.response(ctx.status);
    }
    if let Some(e) = &ctx.error {
        count_error(stats, e);
    }
    if let Some(ai) = &ctx.ai {
        record_ai(&conn.g, ctx, ai);
    }
    if let Some(i) = ctx.route {
        if let Some(route) = conn.g.route_stats.get(i) {
            record_route(route, ctx);
        }
        if let (Some(Some(counts)), Some(c)) = (conn.g.consumer_stats.get(i), ctx.consumer) {
            // Past the cap, the last counter is `other`.
            let s = &counts[c.min(counts.len() - 1)];
            s.requests.inc();
            if let Some(ai) = ctx.ai.as_ref().filter(|a| a.answered) {
                let u = &ai.usage;
                for (c, n) in s.tokens.iter().zip(u.counts()) {
                    c.add(n);
                }
            }
        }
    }
    if let Some(hook) = &conn.w.hooks.on_log {
        hook(&Logged {
            request_id: String::from_utf8_lossy(ctx.request_id.as_bytes()).into_owned(),
            trace_id: String::from_utf8_lossy(&ctx.trace.trace_id_hex()).into_owned(),
            span_id: String::from_utf8_lossy(&ctx.trace.span_id_hex()).into_owned(),
            status: ctx.status,
            route: ctx.route.map(|i| conn.g.snap.route_config(i).name.clone()),
            bytes_in: ctx.bytes_in,
            bytes_out: ctx.bytes_out,
            cache: ctx.cache.map(|c| c.as_str()),
            error: ctx.error.as_ref().map(|e| (e.kind, e.side)),
            first_byte: ctx.timings.first_byte,
            total: ctx.timings.total,
        });
    }
    access::record(conn, ctx, head);
}

/// Counts an AI request that a provider answered: its tokens, duration
/// and first token's time, against its model and provider.
fn record_ai(g: &Generation, ctx: &Ctx, ai: &AiUse) {
    let Some(provider) = ai.provider.filter(|_| ai.answered) else {
        return;
    };
    let Some(s) = g.ai_pair(ai.model as usize, provider as usize) else {
        return;
    };
    s.requests.inc();
    s.duration.observe(ctx.timings.total);
    if let Some(t) = ai.ttft {
        s.ttft.observe(t);
    }
    for (c, n) in s.tokens.iter().zip(ai.usage.counts()) {
        c.add(n);
    }
}

/// Counts a request in its route's metrics.
fn record_route(s: &RouteStats, ctx: &Ctx) {
    if ctx.status != 0 {
        s.by_class[class_index(ctx.status)].inc();
    }
    s.by_method[usize::from(ctx.method).min(METHODS.len() - 1)].inc();
    s.duration.observe(ctx.timings.total);
    s.bytes_in.add(ctx.bytes_in);
    s.bytes_out.add(ctx.bytes_out);
    // A policy's refusal is the client's side of an error with one of
    // the refusal statuses.
    let refused = ctx
        .error
        .as_ref()
        .filter(|e| e.side == Side::Downstream)
        .and_then(|e| e.status())
        .and_then(|status| REFUSALS.iter().position(|&r| r == status));
    if let Some(i) = refused {
        s.refused[i].inc();
    }
}

/// Counts a refusal or failure by its kind and side.
fn count_error(stats: &WorkerStats, e: &Error) {
    match (e.side, e.kind) {
        (_, Kind::ClientGone) => {}
        (Side::Internal, _) => stats.internal_errors.inc(),
        (Side::Upstream, Kind::BadGateway) => stats.upstream_502.inc(),
        (Side::Upstream, Kind::Unavailable) => stats.upstream_503.inc(),
        (Side::Upstream, Kind::GatewayTimeout) => stats.upstream_504.inc(),
        // A provider's 429 passed on: counted by the AI provider errors.
        (Side::Upstream, Kind::TooManyRequests) => {}
        (Side::Upstream, _) => stats.upstream_502.inc(),
        (Side::Downstream, Kind::Unauthorized) => stats.refused_401.inc(),
        (Side::Downstream, Kind::Forbidden) => stats.refused_403.inc(),
        (Side::Downstream, Kind::TooManyRequests) => stats.refused_429.inc(),
        (Side::Downstream, Kind::Unavailable) => stats.refused_503.inc(),
        (Side::Downstream, Kind::BadRequest) => stats.rejected_400.inc(),
        (Side::Downstream, Kind::NotFound) => stats.rejected_404.inc(),
        (Side::Downstream, Kind::MethodNotAllowed) => stats.rejected_405.inc(),
        (Side::Downstream, Kind::Timeout) => stats.rejected_408.inc(),
        (Side::Downstream, Kind::BodyTooLarge) => stats.rejected_413.inc(),
        (Side::Downstream, Kind::TargetTooLong) => stats.rejected_414.inc(),
        (Side::Downstream, Kind::HeadTooLarge) => stats.rejected_431.inc(),
        (Side::Downstream, Kind::NotImplemented) => stats.rejected_501.inc(),
        (Side::Downstream, _) => {}
    }
}
