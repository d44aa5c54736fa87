//! Request and response heads (RFC 9112 §2–§6) as the gateway holds them:
//! the head's own bytes (one frozen `Bytes`, split off the read buffer
//! without copying) plus spans into it, so the target, header names and
//! values are slices of what the peer sent. The span list lives in a `Vec`
//! taken from the worker's pool, so steady-state parsing allocates nothing.
//! Parsing is `http::parse`; the request target's rules are
//! `http::target`.

use bytes::Bytes;

use ringway_config::{EncodedSlashes, UnderscoresInHeaders};

use crate::http::text::list_contains;

/// Most header lines a head may carry, whatever the config says; bounds the
/// parser's stack array (512 × 32 bytes).
pub(crate) const HEADER_CAP: usize = 512;

/// A byte range within a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// The span of `part`, a slice of `base` (as httparse returns for the
    /// method, target, header names and values).
    #[inline]
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - base.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    /// Like [`Span::of`] for a slice that may not lie in `base` at all:
    /// httparse returns a static `""` for an absent or non-ASCII reason
    /// phrase. Anything outside `base` becomes an empty span.
    pub(crate) fn of_maybe(base: &[u8], part: &[u8]) -> Span {
        let base_start = base.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        if start < base_start || start + part.len() > base_start + base.len() {
            return Span::default();
        }
        Span::of(base, part)
    }

    #[inline]
    pub(crate) fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// Headers the gateway itself interprets; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    Te,
    Trailer,
    Upgrade,
    ProxyConnection,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Via,
    /// `x-request-id` (`http::request_id`).
    XRequestId,
    /// W3C Trace Context's fields (`http::trace`).
    Traceparent,
    Tracestate,
    /// `date` (RFC 9110 §6.6.1): a relayed response without one gets ours.
    Date,
}

impl Class {
    /// Classifies a header name. Dispatches on length and first letter,
    /// so most names are rejected after two byte compares; this runs for
    /// every header of every message.
    #[inline]
    pub(crate) fn of(name: &[u8]) -> Class {
        let Some(&first) = name.first() else {
            return Class::Other;
        };
        let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        match (name.len(), first | 0x20) {
            (2, b't') if is("te") => Class::Te,
            (3, b'v') if is("via") => Class::Via,
            (4, b'h') if is("host") => Class::Host,
            (4, b'd') if is("date") => Class::Date,
            (6, b'e') if is("expect") => Class::Expect,
            (7, b't') if is("trailer") => Class::Trailer,
            (7, b'u') if is("upgrade") => Class::Upgrade,
            (10, b'c') if is("connection") => Class::Connection,
            (10, b'k') if is("keep-alive") => Class::KeepAlive,
            (10, b't') if is("tracestate") => Class::Tracestate,
            (11, b't') if is("traceparent") => Class::Traceparent,
            (12, b'x') if is("x-request-id") => Class::XRequestId,
            (14, b'c') if is("content-length") => Class::ContentLength,
            (15, b'x') if is("x-forwarded-for") => Class::XForwardedFor,
            (16, b'x') if is("x-forwarded-host") => Class::XForwardedHost,
            (16, b'p') if is("proxy-connection") => Class::ProxyConnection,
            (17, b't') if is("transfer-encoding") => Class::TransferEncoding,
            (17, b'x') if is("x-forwarded-proto") => Class::XForwardedProto,
            _ => Class::Other,
        }
    }

    /// Is a request field named `name` (of class `Other`) left out for
    /// the underscore in it? With `pass`, only when its dash spelling is a
    /// field the gateway manages: CGI-style servers read both as one.
    #[inline]
    pub(crate) fn drops_underscored(name: &[u8], rule: UnderscoresInHeaders) -> bool {
        if !name.contains(&b'_') {
            return false;
        }
        match rule {
            UnderscoresInHeaders::Drop => true,
            UnderscoresInHeaders::Pass => {
                // The longest managed name, x-forwarded-proto, has 17 bytes.
                let mut dashed = [0u8; 17];
                let Some(dashed) = dashed.get_mut(..name.len()) else {
                    return false;
                };
                for (d, &b) in dashed.iter_mut().zip(name) {
                    *d = if b == b'_' { b'-' } else { b };
                }
                Class::of(dashed) != Class::Other
                    || dashed.eq_ignore_ascii_case(b"forwarded")
                    || dashed.eq_ignore_ascii_case(b"x-real-ip")
            }
        }
    }

    /// Hop-by-hop fields a proxy must not forward (RFC 9110 §7.6.1), plus
    /// the framing fields we always write ourselves.
    pub(crate) fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Class::Connection
                | Class::KeepAlive
                | Class::Te
                | Class::Trailer
                | Class::Upgrade
                | Class::ProxyConnection
                | Class::TransferEncoding
                | Class::ContentLength
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub(crate) name: Span,
    pub(crate) value: Span,
    pub(crate) class: Class,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Http10,
    Http11,
}

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    None,
    Length(u64),
    Chunked,
    /// Response only: the body runs until the upstream closes.
    UntilClose,
}

/// Methods the gateway treats specially; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
    Other,
}

impl Method {
    pub(crate) fn of(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// RFC 9110 §9.2.1 (an unknown method is unsafe).
    pub(crate) fn is_safe(self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Options | Method::Trace
        )
    }

    /// RFC 9110 §9.2.2.
    pub(crate) fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }
}

/// Limits applied while parsing a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_head: usize,
    pub max_headers: usize,
    pub max_target: usize,
    /// What a percent-encoded `/` or `\\` in the path gets (the
    /// listener's `encoded-slashes`).
    pub slashes: EncodedSlashes,
    /// What a field whose name holds `_` gets (the listener's
    /// `underscores-in-headers`).
    pub underscores: UnderscoresInHeaders,
}

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    pub(crate) buf: Bytes,
    pub(crate) method: Method,
    pub(crate) method_span: Span,
    pub(crate) target: Span,
    /// The path component of the target (no query); see
    /// [`RequestHead::path`].
    pub(crate) path_span: Span,
    /// The target with its encoded slashes decoded, when the listener says
    /// `encoded-slashes = "decode"` and there were some.
    pub(crate) decoded: Option<Decoded>,
    /// Authority from an absolute-form target, if any.
    pub(crate) target_authority: Option<Span>,
    pub(crate) version: Version,
    pub headers: Vec<Header>,
    pub(crate) host: Option<Span>,
    pub(crate) body: BodyKind,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    pub(crate) has_connection_header: bool,
    /// Fields left out of `headers` for an underscore in their name.
    pub(crate) underscores_dropped: u32,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) buf: Bytes,
    pub(crate) status: u16,
    pub(crate) reason: Span,
    pub(crate) headers: Vec<Header>,
    pub(crate) body: BodyKind,
    /// The upstream will keep the connection open after this response.
    pub(crate) reusable: bool,
    pub(crate) has_connection_header: bool,
    /// The body carries a transfer coding that does not end in chunked
    /// (RFC 9112 §6.3): it runs to the close and is relayed with its
    /// Transfer-Encoding.
    pub(crate) transfer_coded: bool,
}

/// A target whose encoded slashes were decoded: what routing, the cache
/// and the upstream see instead of the bytes sent.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// Path and query.
    pub(crate) origin: Bytes,
    /// Where the path ends in `origin`.
    pub(crate) path_len: usize,
}

impl RequestHead {
    #[inline]
    pub(crate) fn bytes(&self, s: Span) -> &[u8] {
        s.get(&self.buf)
    }

    /// The path to route on (and to send upstream): no query, and with
    /// encoded slashes decoded when the listener says so.
    #[inline]
    pub(crate) fn path(&self) -> &[u8] {
        match &self.decoded {
            Some(d) => &d.origin[..d.path_len],
            None => self.bytes(self.path_span),
        }
    }

    /// The target in origin form (path and query): an absolute-form
    /// target without its scheme and authority.
    pub(crate) fn origin(&self) -> &[u8] {
        if let Some(d) = &self.decoded {
            return &d.origin;
        }
        let target = self.bytes(self.target);
        let path_start = self.path_span.start as usize - self.target.start as usize;
        &target[path_start..]
    }

    /// The host to route on: the target's authority, else the Host field.
    pub(crate) fn authority(&self) -> &[u8] {
        match (self.target_authority, self.host) {
            (Some(a), _) => self.bytes(a),
            (None, Some(h)) => self.bytes(h),
            (None, None) => b"",
        }
    }

    /// True when a header named `name` is listed in a Connection field.
    pub(crate) fn connection_lists(&self, name: &[u8]) -> bool {
        self.has_connection_header && connection_lists(&self.buf, &self.headers, name)
    }

    /// The values of field `name` (any case), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.headers
            .iter()
            .filter(move |h| self.bytes(h.name).eq_ignore_ascii_case(name))
            .map(|h| self.bytes(h.value))
    }

    /// Gives the span list back for reuse.
    pub fn into_headers(self) -> Vec<Header> {
        self.headers
    }
}

impl ResponseHead {
    #[inline]
    pub(crate) fn bytes(&self, s: Span) -> &[u8] {
        s.get(&self.buf)
    }

    pub(crate) fn connection_lists(&self, name: &[u8]) -> bool {
        self.has_connection_header && connection_lists(&self.buf, &self.headers, name)
    }

    /// The first value of field `name` (any case).
    pub(crate) fn value(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| self.bytes(h.name).eq_ignore_ascii_case(name))
            .map(|h| self.bytes(h.value))
    }

    /// How long `Retry-After` asks to wait (RFC 9110 §10.2.3): seconds, or
    /// until a date; `None` when absent, invalid or past.
    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        let value = std::str::from_utf8(self.value(b"retry-after")?)
            .ok()?
            .trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value.parse().ok().map(std::time::Duration::from_secs);
        }
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(std::time::SystemTime::now()).ok()
    }

    pub(crate) fn into_headers(self) -> Vec<Header> {
        self.headers
    }
}

fn connection_lists(buf: &[u8], headers: &[Header], name: &[u8]) -> bool {
    headers
        .iter()
        .filter(|h| h.class == Class::Connection)
        .any(|h| list_contains(h.value.get(buf), name))
}
