//! The cache's reading of a response and its request: which fields it
//! stores, whether a response may be stored (and why not, for
//! `Cache-Status`), which stored response a 304 describes, and when a stale
//! one may still be served (RFC 9111 §3, §4.2.4, §4.3.4; RFC 5861).

use bytes::{Bytes, BytesMut};

use crate::cache::conditional::Preconditions;
use crate::cache::directives::{effective, RequestDirectives, Source};
use crate::cache::entry::{http_date, Entry, Parts};
use crate::cache::key::vary_names;
use crate::cache::storable::{storable, Exchange};
use crate::http::head::{BodyKind, Class, RequestHead, ResponseHead};
use crate::http::text::trim;

/// Is `name` a `Content-*` field (representation metadata)?
pub(crate) fn is_content_field(name: &[u8]) -> bool {
    name.len() > 8 && name[..8].eq_ignore_ascii_case(b"content-")
}

/// The values of request field `name` (lower-case), in order.
pub(crate) fn request_values<'a>(
    head: &'a RequestHead,
    name: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> {
    head.values(name)
}

/// The first value of response field `name` (lower-case).
pub(crate) fn response_value<'a>(resp: &'a ResponseHead, name: &[u8]) -> Option<&'a [u8]> {
    resp.value(name)
}

/// The end-to-end field lines of a response, as a cache stores them:
/// no framing, no hop-by-hop fields, none its Connection lists, and no
/// X-Request-Id (it names the request that fetched it; each answer from
/// the cache carries its own request's).
pub(crate) fn end_to_end(resp: &ResponseHead) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
    resp.headers
        .iter()
        .filter(move |h| {
            !(h.class.is_hop_by_hop()
                || h.class == Class::ContentLength
                || h.class == Class::TransferEncoding
                || h.class == Class::XRequestId
                || (h.class != Class::Via && resp.connection_lists(resp.bytes(h.name))))
        })
        .map(|h| (resp.bytes(h.name), resp.bytes(h.value)))
}

pub(crate) fn preconditions(head: &RequestHead) -> Preconditions<'_> {
    Preconditions {
        if_none_match: request_values(head, b"if-none-match").next(),
        if_modified_since: request_values(head, b"if-modified-since")
            .next()
            .and_then(http_date),
    }
}

pub(crate) fn is_conditional(pre: &Preconditions<'_>) -> bool {
    pre.if_none_match.is_some() || pre.if_modified_since.is_some()
}

/// Seconds of freshness left (negative once stale).
pub(crate) fn ttl(e: &Entry, age: u64) -> i64 {
    e.lifetime as i64 - age as i64
}

/// RFC 5861 §3: serve stale while revalidating, within the window the
/// response allows, unless a directive asks for a fresh or validated one.
pub(crate) fn may_serve_while_revalidating(e: &Entry, age: u64, req: &RequestDirectives) -> bool {
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

/// RFC 5861 §4: serve stale when the origin fails (a 5xx, a connection
/// error, a connection closed before a response), within the window
/// `stale-if-error` gives, or at any staleness when the route's
/// `serve-stale-on-error` allows it; never past a directive that forbids
/// serving stale (RFC 9111 §4.2.4).
pub(crate) fn may_serve_on_error(e: &Entry, now: u64, route_allows: bool) -> bool {
    let res = &e.stored.directives;
    if res.must_revalidate || res.proxy_revalidate || res.no_cache {
        return false;
    }
    match res.stale_if_error {
        Some(window) if e.age(now).saturating_sub(e.lifetime) <= window => true,
        _ => route_allows,
    }
}

/// Does a 304 describe the stored response? Its ETag, if it has one, must
/// be the stored one (compared weakly).
pub(crate) fn same_etag(stored: &Entry, resp: &ResponseHead) -> bool {
    let strip = |t: &[u8]| {
        let t = trim(t);
        t.strip_prefix(b"W/").unwrap_or(t).to_vec()
    };
    match (response_value(resp, b"etag"), stored.value(b"etag")) {
        (Some(new), Some(old)) => strip(new) == strip(old),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// May the response be stored? `Ok(true)`: yes, and its length is known to
/// fit; `Ok(false)`: yes if its body (of unknown length) turns out to fit;
/// `Err`: no, and why (RFC 9211 `detail`).
pub(crate) fn verdict(
    req: &RequestDirectives,
    authorization: bool,
    resp: &ResponseHead,
    max_entry: usize,
    targeted: &[u8],
) -> Result<bool, &'static str> {
    let (res, source) = effective(
        |name| {
            resp.headers
                .iter()
                .filter(move |h| resp.bytes(h.name).eq_ignore_ascii_case(name))
                .map(|h| resp.bytes(h.value))
        },
        targeted,
    );
    // A targeted field in use overrides Expires too (RFC 9213 §2.2).
    let expires = source == Source::CacheControl && response_value(resp, b"expires").is_some();
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
        expires,
        vary_any,
    })
    .map_err(|why| why.detail())?;
    // Storable by default (a 200, say) but with neither an explicit
    // lifetime nor a Last-Modified to reckon one from or revalidate with:
    // stale at once and not revalidatable, so storing it gains nothing.
    let explicit = res.max_age.is_some() || res.s_maxage.is_some() || expires;
    if !explicit && response_value(resp, b"last-modified").is_none() {
        return Err("no-lifetime");
    }
    // A body in a transfer coding (RFC 9112 §6.3) is not the
    // representation: a hit could not send it with a Content-Length.
    if resp.transfer_coded {
        return Err("transfer-coding");
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
pub(crate) fn vary_of(resp: &ResponseHead) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    for h in &resp.headers {
        if resp.bytes(h.name).eq_ignore_ascii_case(b"vary") {
            names.extend(vary_names(resp.bytes(h.value)).0);
        }
    }
    names
}

pub(crate) fn build_entry(
    resp: &ResponseHead,
    secondary: Vec<u8>,
    body: Bytes,
    request_time: u64,
    response_time: u64,
    targeted: &[u8],
) -> Entry {
    Entry::build(Parts {
        status: resp.status,
        reason: resp.bytes(resp.reason),
        fields: end_to_end(resp),
        body,
        request_time,
        response_time,
        secondary,
        targeted,
    })
}

/// The captured body as `Bytes` that hold no more memory than the shard
/// accounts for: a buffer grown by doubling (a body of unknown length) is
/// copied once into one of its exact size.
pub(crate) fn exact(raw: BytesMut) -> Bytes {
    if raw.capacity() - raw.len() > raw.len() / 16 {
        Bytes::copy_from_slice(&raw)
    } else {
        raw.freeze()
    }
}
