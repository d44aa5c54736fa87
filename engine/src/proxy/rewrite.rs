//! The request head sent upstream (RFC 9110 §7.6): the client's head
//! rewritten, not copied. Hop-by-hop fields go, framing is written by us,
//! X-Forwarded-For/-Proto/-Host and Via are added, credentials and claims
//! the route removes are dropped, and the cache's conditional fields are
//! set or left out. The request's X-Request-Id and traceparent replace
//! the client's (one of each, ours: a kept client ID is ours by then), and
//! the client's tracestate goes on only with the trace it belongs to.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::BytesMut;
use ringway_config::{PathMatch, Route};

use crate::http::head::{BodyKind, Class, RequestHead, Version};
use crate::http::text::same_field;
use crate::http::trace::Trace;
use crate::http::write;
use crate::policy::RoutePolicy;
use crate::proxy::ctx::Ctx;
use crate::proxy::transform::{self, Vars};
use crate::snapshot::{CompiledRoute, Snapshot};
use crate::worker::conn::TlsInfo;

/// What a route's policies and the client connection change in the
/// request sent upstream.
pub(crate) struct Rewrite<'a> {
    pub(crate) policy: &'a RoutePolicy,
    /// The authenticated consumer's name.
    pub(crate) consumer: Option<&'a str>,
    /// The client connection is TLS.
    pub(crate) secure: bool,
    /// The verified client certificate's subject, and the header that
    /// carries it.
    pub(crate) client_subject: Option<(&'a str, &'a str)>,
    /// Every listener's subject header: a client's own is never passed on.
    pub(crate) subject_headers: &'a [String],
    /// The request's ID and trace context.
    pub(crate) request_id: &'a [u8],
    pub(crate) trace: &'a Trace,
    /// Set when the route or its listener has transforms.
    pub(crate) xf: Option<Xf<'a>>,
    /// The protocol a tunnel asks the upstream to switch to (the
    /// client's `Upgrade` member, passed on with `Connection: upgrade`).
    pub(crate) upgrade: Option<&'a [u8]>,
}

/// A route's transforms as the upstream request stage applies them.
pub(crate) struct Xf<'a> {
    pub(crate) vars: Vars<'a>,
    pub(crate) route: &'a CompiledRoute,
}

impl<'a> Rewrite<'a> {
    pub(crate) fn new(
        tls: Option<&'a TlsInfo>,
        snap: &'a Snapshot,
        index: usize,
        ctx: &'a Ctx,
    ) -> Rewrite<'a> {
        Rewrite {
            policy: &snap.routes[index].policy,
            consumer: ctx.consumer.map(|c| snap.policies.consumers[c].as_str()),
            secure: tls.is_some(),
            client_subject: tls
                .and_then(|t| Some((t.subject_header.as_deref()?, t.client_subject.as_deref()?))),
            subject_headers: &snap.subject_headers,
            request_id: ctx.request_id.as_bytes(),
            trace: &ctx.trace,
            xf: ctx.req.is_some().then(|| Xf {
                vars: Vars {
                    snap,
                    ctx,
                    tls,
                    server: None,
                    captures: None,
                    target: None,
                },
                route: &snap.routes[index],
            }),
            upgrade: None,
        }
    }
}

impl Rewrite<'_> {
    /// Is `name` a header this hop removes (a credential, or a client's
    /// own claim to be a consumer)?
    fn drops_header(&self, name: &[u8]) -> bool {
        // Our own X-Forwarded-Proto/-Host and X-Request-Id replace the
        // client's, also when it spells them with underscores.
        same_field(name, b"x-forwarded-proto")
            || same_field(name, b"x-forwarded-host")
            || same_field(name, b"x-request-id")
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
pub(crate) enum Cond<'a> {
    /// The client's preconditions go as they are.
    Pass,
    /// The client's If-None-Match, If-Modified-Since, Range and If-Range
    /// are left out: the cache fetches the whole response and answers them
    /// itself.
    Strip,
    /// Revalidation of a stored response: its validators replace the
    /// client's.
    Revalidate {
        etag: Option<&'a [u8]>,
        last_modified: Option<&'a [u8]>,
    },
}

/// Writes the request head sent upstream into `out`.
pub(crate) fn write_request_head(
    out: &mut BytesMut,
    peer: SocketAddr,
    head: &RequestHead,
    route: &Route,
    rw: &Rewrite<'_>,
    cond: Cond<'_>,
) {
    out.extend_from_slice(head.bytes(head.method_span));
    out.extend_from_slice(b" ");
    // Absolute-form becomes origin-form (RFC 9112 §3.2.2); with
    // `encoded-slashes = "decode"` the upstream sees the decoded path.
    let origin = head.origin();
    if head.target_authority.is_some() && origin.first() != Some(&b'/') {
        out.extend_from_slice(b"/");
    }
    match &rw.xf {
        Some(xf) => {
            let prefix_len = match &route.path {
                PathMatch::Prefix(p) => p.len(),
                PathMatch::Exact(_) => 0,
            };
            transform::write_target(
                out,
                origin,
                head.path().len(),
                prefix_len,
                &route.transform,
                xf.route.rewrite.as_ref(),
                &rw.policy.strip_params,
                &xf.vars,
            );
        }
        None if !rw.policy.strip_params.is_empty() => write_target(out, origin, rw),
        None => out.extend_from_slice(origin),
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
    let rules = rw
        .xf
        .as_ref()
        .map(|xf| transform::rules_of(xf.vars.snap, xf.vars.ctx, true))
        .filter(|r| r.iter().any(Option::is_some));
    let fields_start = out.len();
    for (i, h) in head.headers.iter().enumerate() {
        match h.class {
            Class::Host
            | Class::Expect
            | Class::XForwardedProto
            | Class::XForwardedHost
            | Class::XRequestId
            | Class::Traceparent => continue,
            // Only with the trace it belongs to (W3C Trace Context §3.3).
            Class::Tracestate if !rw.trace.is_continued() => continue,
            c if c.is_hop_by_hop() => continue,
            _ => {}
        }
        let name = head.bytes(h.name);
        if rw.drops_header(name) {
            continue;
        }
        // The route's header rules, on the client's fields as they go.
        let name = match rules {
            Some(rules) => match transform::fate(rules, name) {
                Some(name) => name,
                None => continue,
            },
            None => name,
        };
        // The cache fetches whole representations: it answers ranges
        // from them itself.
        if !matches!(cond, Cond::Pass)
            && (name.eq_ignore_ascii_case(b"if-none-match")
                || name.eq_ignore_ascii_case(b"if-modified-since")
                || name.eq_ignore_ascii_case(b"range")
                || name.eq_ignore_ascii_case(b"if-range"))
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
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(head.bytes(h.value));
            let _ = write!(out, ", {}\r\n", peer.ip());
        } else if Some(i) == last_via {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(head.bytes(h.value));
            out.extend_from_slice(b", ");
            out.extend_from_slice(via_hop);
            out.extend_from_slice(b"\r\n");
        } else {
            write::header(out, name, head.bytes(h.value));
        }
    }
    // The rules see the gateway's own fields too, from here on.
    let ours_start = out.len();
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
    write::header(out, b"X-Request-Id", rw.request_id);
    // Lowercase, as Trace Context §3.2.1 asks of senders.
    write::header(out, b"traceparent", &rw.trace.traceparent());
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
    if let (Some(rules), Some(xf)) = (rules, &rw.xf) {
        transform::apply_fields(rules, out, fields_start, ours_start, &xf.vars);
    }
    if let Some(protocol) = rw.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
        write::header(out, b"Upgrade", protocol);
    }
    match head.body {
        BodyKind::Length(n) => write::content_length(out, n),
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
}
