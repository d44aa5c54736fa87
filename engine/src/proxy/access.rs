//! The log stage's access-log part: which requests get a line, and
//! copying a finished request's facts into a record for the writer.
//!
//! The request head is still held when the log stage runs (the connection
//! gives its span list back only afterwards), so the method, target, host,
//! user agent and referer are copied straight from its bytes into the
//! record: nothing is captured while the request runs, and a gateway
//! without an access log pays one branch here and nothing anywhere else.
//! Headers are found by one pass over the span list (~100 ns for a typical
//! head), only for requests that are logged.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::access_log::record::{AiRecord, Protocol, Record};
use crate::http::head::{RequestHead, Version};
use crate::policy::ip;
use crate::proxy::ctx::Ctx;
use crate::worker::conn::Conn;

/// Hands the writer a record of the request, when the access log is on,
/// the route logs, and the request is not left out by sampling. A full
/// queue drops the record and counts it.
#[inline]
pub(crate) fn record(conn: &Conn, ctx: &Ctx, head: Option<&RequestHead>) {
    let g = &conn.g;
    let Some(plan) = &g.snap.access_log else {
        return;
    };
    if let Some(i) = ctx.route {
        if !g.snap.route_config(i).access_log {
            return;
        }
    }
    let failed = ctx.status == 0 || ctx.status >= 400 || ctx.error.is_some();
    let w = conn.w.id;
    if !failed && !plan.sinks.sampled(w, plan.sample) {
        return;
    }
    let Some(mut r) = plan.sinks.take(w) else {
        conn.w.stats.access_log_dropped.inc();
        return;
    };
    fill(&mut r, conn, ctx, head, plan.query);
    plan.sinks.send(w, r);
}

/// Overwrites every field of `r` (a reused record holds the last
/// request's).
fn fill(r: &mut Record, conn: &Conn, ctx: &Ctx, head: Option<&RequestHead>, query: bool) {
    let g = &conn.g;
    r.time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    r.generation = g.number();
    r.request_id.set(ctx.request_id.as_bytes());
    r.trace_id = Some(ctx.trace.trace_id_hex());
    let peer = conn.peer;
    r.client_ip = match head {
        Some(h) => ip::client_ip(peer.ip(), &g.snap.policies.trusted, h),
        None => peer.ip(),
    };
    // The peer's port means nothing for a client a proxy spoke for.
    r.client_port = (canonical(r.client_ip) == canonical(peer.ip())).then_some(peer.port());
    r.listener = conn.listener.configured;
    match &conn.tls {
        Some(t) => {
            r.tls_version = t.version;
            r.tls_sni.set(t.sni.as_deref().unwrap_or("").as_bytes());
        }
        None => {
            r.tls_version = None;
            r.tls_sni.clear();
        }
    }
    request(r, head, query);
    r.status = ctx.status;
    r.bytes_in = ctx.bytes_in;
    r.bytes_out = ctx.bytes_out;
    r.duration = ctx.timings.total;
    r.upstream_connect = ctx.timings.upstream_connect;
    r.upstream_head = ctx.timings.upstream_head;
    r.first_byte = ctx.timings.first_byte;
    r.route = ctx.route.map(|i| i as u32);
    r.upstream = ctx.upstream.map(|i| i as u32);
    // The server that answered, else the one that failed.
    r.upstream_server = ctx.timings.server.map(|s| g.upstreams.address(s));
    r.upstream_tries = ctx.timings.tries;
    r.cache = ctx.cache.map(|c| c.as_str());
    r.consumer = ctx.consumer.map(|i| i as u32);
    r.error = ctx.error.as_ref().map(|e| (e.kind, e.side));
    r.ai = ctx.ai.map(|a| AiRecord {
        model: a.model,
        provider: a.provider,
        tokens_in: a.usage.input,
        tokens_out: a.usage.output,
        tokens_cached: a.usage.cached,
        ttft: a.ttft,
    });
}

/// The request line's parts and the two headers logged.
fn request(r: &mut Record, head: Option<&RequestHead>, query: bool) {
    r.user_agent.clear();
    r.referer.clear();
    let Some(h) = head else {
        r.protocol = None;
        r.method.clear();
        r.host.clear();
        r.path.clear();
        r.has_query = false;
        r.query.clear();
        return;
    };
    r.protocol = Some(match h.version {
        Version::Http10 => Protocol::Http10,
        Version::Http11 => Protocol::Http11,
    });
    r.method.set(h.bytes(h.method_span));
    r.host.set(h.authority());
    // As sent: the path before any decoding of encoded slashes.
    r.path.set(h.bytes(h.path_span));
    let target = h.bytes(h.target);
    let after_path = (h.path_span.end - h.target.start) as usize;
    match target.get(after_path..).and_then(|t| t.strip_prefix(b"?")) {
        Some(q) if query => {
            r.has_query = true;
            r.query.set(q);
        }
        _ => {
            r.has_query = false;
            r.query.clear();
        }
    }
    let (mut agent, mut referer) = (false, false);
    for header in &h.headers {
        let name = h.bytes(header.name);
        if !agent && name.eq_ignore_ascii_case(b"user-agent") {
            r.user_agent.set(h.bytes(header.value));
            agent = true;
        } else if !referer && name.eq_ignore_ascii_case(b"referer") {
            r.referer.set(h.bytes(header.value));
            referer = true;
        }
        if agent && referer {
            break;
        }
    }
}

/// An IPv4-mapped IPv6 address as IPv4, so the peer and a client address
/// compare equal however the socket reported them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
