//! Parsing request and response heads with httparse, straight from the
//! connection's read buffer (RFC 9112 §2–§6).
//!
//! Parsing is strict where leniency lets two parties disagree about where a
//! message ends (request smuggling, RFC 9112 §6.3 and §11.2): a request with
//! both Content-Length and Transfer-Encoding, differing or malformed
//! Content-Length, a transfer coding other than a lone `chunked`, obs-fold,
//! whitespace before a colon, bare CR, control bytes, or a missing or
//! duplicated Host is rejected, never repaired. A response whose final
//! transfer coding is not chunked is read to the close (§6.3) and marked,
//! so that it is relayed with its codings.

use std::mem::MaybeUninit;

use bytes::BytesMut;

use crate::error::{Error, Kind, Side};
use crate::http::head::{
    BodyKind, Class, HeadLimits, Header, Method, RequestHead, ResponseHead, Span, Version,
    HEADER_CAP,
};
use crate::http::target::{self, strip_scheme, valid_authority};
use crate::http::text::{list, list_contains, trim};

const fn req_err(kind: Kind, context: &'static str) -> Error {
    Error::new(kind, Side::Downstream, context)
}

/// Tries to parse a request head from the front of `buf`. `Ok(None)` means
/// more bytes are needed (and the limits still allow them). On success the
/// head's bytes are split off `buf`.
/// `headers` is the span list to fill; on success it moves into the head
/// (and is left empty), otherwise it stays with the caller for reuse.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: HeadLimits,
    headers: &mut Vec<Header>,
) -> Result<Option<RequestHead>, Error> {
    headers.clear();
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_CAP];
    let max_headers = limits.max_headers.min(HEADER_CAP);
    let mut req = httparse::Request::new(&mut []);
    let status = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        &buf[..],
        &mut raw[..max_headers],
    );
    let len = match status {
        Ok(httparse::Status::Partial) => return partial_request_check(buf, limits).map(|()| None),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(req_err(Kind::HeadTooLarge, "too many header fields"))
        }
        // httparse knows HTTP/1.0 and 1.1 only; a later 1.x is read as 1.1
        // (RFC 9110 §2.5), rewritten in place on this rare path. Once: the
        // rewrite leaves no later minor version behind.
        Err(httparse::Error::Version) => match newer_minor_as_1_1(buf, request_version_at) {
            Minor::Rewritten => return parse_request(buf, limits, headers),
            Minor::Undecided => return partial_request_check(buf, limits).map(|()| None),
            Minor::Other => return Err(req_err(Kind::BadRequest, "invalid HTTP version")),
        },
        Err(e) => return Err(req_err(Kind::BadRequest, parse_error(e))),
    };
    if len > limits.max_head {
        return Err(req_err(Kind::HeadTooLarge, "request head too large"));
    }
    let base = &buf[..len];
    let method_bytes = req
        .method
        .expect("complete request has a method")
        .as_bytes();
    let target_bytes = req.path.expect("complete request has a target").as_bytes();
    if target_bytes.len() > limits.max_target {
        return Err(req_err(Kind::TargetTooLong, "request target too long"));
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method_span = Span::of(base, method_bytes);
    let target = Span::of(base, target_bytes);
    headers.reserve(req.headers.len());
    let mut underscores_dropped = 0;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let class = Class::of(name);
        // Left out here, so routing, policies, the cache key and the
        // upstream all see the same fields.
        if class == Class::Other && Class::drops_underscored(name, limits.underscores) {
            underscores_dropped += 1;
            continue;
        }
        headers.push(Header {
            name: Span::of(base, name),
            value: Span::of(base, h.value),
            class,
        });
    }
    let method = Method::of(method_bytes);
    let fields = request_fields(base, method, version, target_bytes, headers, limits.slashes)?;
    let head_buf = buf.split_to(len).freeze();
    let target_authority = fields.authority;
    Ok(Some(RequestHead {
        buf: head_buf,
        method,
        method_span,
        target,
        path_span: fields.path,
        decoded: fields.decoded,
        target_authority,
        version,
        headers: std::mem::take(headers),
        host: fields.host,
        body: fields.body,
        keep_alive: fields.keep_alive,
        expect_continue: fields.expect_continue,
        has_connection_header: fields.has_connection,
        underscores_dropped,
    }))
}

/// With an incomplete head, decides whether waiting for more is allowed.
fn partial_request_check(buf: &[u8], limits: HeadLimits) -> Result<(), Error> {
    // The target as far as it has come, measured as a complete head's is:
    // a head refused for it is refused however it was split.
    if target_len_so_far(buf) > limits.max_target {
        return Err(req_err(Kind::TargetTooLong, "request target too long"));
    }
    if buf.len() >= limits.max_head {
        return Err(req_err(Kind::HeadTooLarge, "request head too large"));
    }
    Ok(())
}

/// The length of the request target in `buf`'s request line, or of as
/// much of it as has arrived (any empty lines before the line skipped).
fn target_len_so_far(buf: &[u8]) -> usize {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let Some(method_end) = line.iter().position(|&b| b == b' ') else {
        return 0;
    };
    let target = &line[method_end + 1..];
    target
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(target.len())
}

/// Where the HTTP-version of the request line in `buf` starts: after the
/// method and the target, each ended by one space (any empty lines before
/// the request line skipped, RFC 9112 §2.2).
fn request_version_at(buf: &[u8]) -> Option<usize> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = &buf[start..];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let method_end = line.iter().position(|&b| b == b' ')?;
    let target_len = line[method_end + 1..].iter().position(|&b| b == b' ')?;
    Some(start + method_end + 1 + target_len + 1)
}

/// What [`newer_minor_as_1_1`] made of a version httparse refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Minor {
    /// It was `HTTP/1.x` with x above 1, now `HTTP/1.1`.
    Rewritten,
    /// It may be one, but its end has not arrived: read more first (a
    /// rewrite now could meet a byte that makes it no version at all).
    Undecided,
    /// Anything else (HTTP/2.0, `HTTP/1.12`, garbage).
    Other,
}

/// Rewrites `HTTP/1.x` (a minor version above 1) to `HTTP/1.1`:
/// a recipient treats a later minor version of the major it speaks as the
/// highest it knows (RFC 9110 §2.5), and the bytes are ours to change
/// (the version is never relayed, the gateway writes its own). Only once
/// the byte after the version has arrived, so that how the head was split
/// across reads never changes the answer. `at` finds where the version
/// starts.
fn newer_minor_as_1_1(buf: &mut [u8], at: impl Fn(&[u8]) -> Option<usize>) -> Minor {
    let Some(version) = at(buf).and_then(|at| buf.get_mut(at..)) else {
        return Minor::Other;
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor, rest @ ..]
            if minor.is_ascii_digit() && *minor > b'1' =>
        {
            match rest.first() {
                None => Minor::Undecided,
                Some(b'\r' | b'\n' | b' ') => {
                    *minor = b'1';
                    Minor::Rewritten
                }
                Some(_) => Minor::Other,
            }
        }
        _ => Minor::Other,
    }
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}

struct RequestFields {
    path: Span,
    decoded: Option<crate::http::head::Decoded>,
    authority: Option<Span>,
    host: Option<Span>,
    body: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    has_connection: bool,
}

fn request_fields(
    base: &[u8],
    method: Method,
    version: Version,
    target: &[u8],
    headers: &[Header],
    slashes: ringway_config::EncodedSlashes,
) -> Result<RequestFields, Error> {
    if !target.is_ascii() {
        return Err(Error::bad_request("non-ASCII byte in request target"));
    }
    if method == Method::Connect {
        return Err(req_err(Kind::NotImplemented, "CONNECT is not supported"));
    }
    // RFC 9112 §3.2: origin-form, absolute-form, or asterisk-form.
    let (path, authority) = if target.first() == Some(&b'/') {
        let end = target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len());
        (Span::of(base, &target[..end]), None)
    } else if target == b"*" && method == Method::Options {
        (Span::of(base, target), None)
    } else if let Some(rest) = strip_scheme(target) {
        let auth_end = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        if authority.is_empty() || !valid_authority(authority) {
            return Err(Error::bad_request("invalid authority in request target"));
        }
        let after = &rest[auth_end..];
        let path_end = after.iter().position(|&b| b == b'?').unwrap_or(after.len());
        (
            Span::of(base, &after[..path_end]),
            Some(Span::of(base, authority)),
        )
    } else {
        return Err(Error::bad_request("invalid request target"));
    };
    let query = target
        .iter()
        .position(|&b| b == b'?')
        .map(|q| &target[q + 1..]);
    let decoded = target::check(path.get(base), query, slashes)?;

    let mut host = None;
    let mut host_count = 0;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut te_chunked_last = false;
    let mut te_only_chunked = true;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut has_connection = false;
    let mut expect_continue = false;
    for h in headers {
        let value = h.value.get(base);
        match h.class {
            Class::Host => {
                host_count += 1;
                if !valid_authority(value) && !value.is_empty() {
                    return Err(Error::bad_request("invalid Host"));
                }
                host = Some(h.value);
            }
            Class::ContentLength => {
                content_length = Some(merge_content_length(content_length, value)?);
            }
            Class::TransferEncoding => {
                transfer_encoding = true;
                for coding in list(value) {
                    if te_chunked_last {
                        // A coding after chunked: chunked is not final.
                        return Err(Error::bad_request(
                            "chunked is not the final transfer coding",
                        ));
                    }
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        te_chunked_last = true;
                    } else {
                        te_only_chunked = false;
                    }
                }
            }
            Class::Connection => {
                has_connection = true;
                conn_close |= list_contains(value, b"close");
                conn_keep_alive |= list_contains(value, b"keep-alive");
            }
            Class::Expect => {
                expect_continue |= list_contains(value, b"100-continue");
            }
            _ => {}
        }
    }
    if host_count > 1 {
        return Err(Error::bad_request("duplicate Host"));
    }
    if host_count == 0 && version == Version::Http11 {
        return Err(Error::bad_request("missing Host"));
    }
    let body = if transfer_encoding {
        if content_length.is_some() {
            return Err(Error::bad_request(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if version == Version::Http10 {
            return Err(Error::bad_request(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if !te_chunked_last {
            return Err(Error::bad_request(
                "chunked is not the final transfer coding",
            ));
        }
        if !te_only_chunked {
            return Err(req_err(
                Kind::NotImplemented,
                "transfer coding other than chunked",
            ));
        }
        BodyKind::Chunked
    } else {
        // An explicit `Content-Length: 0` is kept (and forwarded): some
        // servers insist on a length for POST and PUT.
        match content_length {
            None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        }
    };
    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    Ok(RequestFields {
        path,
        decoded,
        authority,
        host,
        body,
        keep_alive,
        expect_continue,
        has_connection,
    })
}

/// Content-Length may repeat (or be a list) only with identical values
/// (RFC 9110 §8.6).
fn merge_content_length(prev: Option<u64>, value: &[u8]) -> Result<u64, Error> {
    let mut acc = prev;
    for item in value.split(|&b| b == b',') {
        let item = trim(item);
        if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
            return Err(Error::bad_request("malformed Content-Length"));
        }
        let n = item.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        match acc {
            Some(p) if p != n => return Err(Error::bad_request("differing Content-Length values")),
            _ => acc = Some(n),
        }
    }
    acc.ok_or(Error::bad_request("malformed Content-Length"))
}

/// Tries to parse a response head from the front of `buf`. `head_request`
/// says the request was HEAD (the response then has no body).
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    max_head: usize,
    head_request: bool,
    headers: &mut Vec<Header>,
) -> Result<Option<ResponseHead>, Error> {
    headers.clear();
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_CAP];
    let mut res = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        &buf[..],
        &mut raw,
    );
    let len = match status {
        Ok(httparse::Status::Partial) => {
            if buf.len() >= max_head {
                return Err(Error::bad_gateway("upstream response head too large"));
            }
            return Ok(None);
        }
        Ok(httparse::Status::Complete(len)) => len,
        // As for requests: an HTTP/1.x status line is read as 1.1.
        // httparse skips empty lines before the status line.
        Err(httparse::Error::Version) => {
            let at = |b: &[u8]| b.iter().position(|&c| c != b'\r' && c != b'\n');
            match newer_minor_as_1_1(buf, at) {
                Minor::Rewritten => return parse_response(buf, max_head, head_request, headers),
                Minor::Undecided if buf.len() < max_head => return Ok(None),
                _ => return Err(Error::bad_gateway("malformed upstream response head")),
            }
        }
        Err(_) => return Err(Error::bad_gateway("malformed upstream response head")),
    };
    if len > max_head {
        return Err(Error::bad_gateway("upstream response head too large"));
    }
    let base = &buf[..len];
    let code = res.code.expect("complete response has a status");
    let reason = Span::of_maybe(base, res.reason.unwrap_or("").as_bytes());
    let version = match res.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    for h in res.headers.iter() {
        headers.push(Header {
            name: Span::of(base, h.name.as_bytes()),
            value: Span::of(base, h.value),
            class: Class::of(h.name.as_bytes()),
        });
    }
    let fields = response_fields(base, code, version, head_request, headers)?;
    let head_buf = buf.split_to(len).freeze();
    Ok(Some(ResponseHead {
        buf: head_buf,
        status: code,
        reason,
        headers: std::mem::take(headers),
        body: fields.0,
        reusable: fields.1,
        has_connection_header: fields.2,
        transfer_coded: fields.3,
    }))
}

fn response_fields(
    base: &[u8],
    code: u16,
    version: Version,
    head_request: bool,
    headers: &[Header],
) -> Result<(BodyKind, bool, bool, bool), Error> {
    // RFC 9110 §15: a status code is 100 to 599; anything else (httparse
    // takes any three digits) is a bad response, never relayed or stored.
    if !(100..=599).contains(&code) {
        return Err(Error::bad_gateway("invalid upstream status code"));
    }
    let mut content_length: Option<u64> = None;
    let mut te: Option<bool> = None; // Some(true): exactly chunked
                                     // The last coding listed is chunked.
    let mut final_chunked = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut has_connection = false;
    for h in headers {
        let value = h.value.get(base);
        match h.class {
            Class::ContentLength => {
                content_length = Some(
                    merge_content_length(content_length, value)
                        .map_err(|_| Error::bad_gateway("malformed upstream Content-Length"))?,
                );
            }
            Class::TransferEncoding => {
                let only_chunked = trim(value).eq_ignore_ascii_case(b"chunked");
                te = Some(te.is_none() && only_chunked);
                if let Some(last) = list(value).last() {
                    final_chunked = last.eq_ignore_ascii_case(b"chunked");
                }
            }
            Class::Connection => {
                has_connection = true;
                conn_close |= list_contains(value, b"close");
                conn_keep_alive |= list_contains(value, b"keep-alive");
            }
            _ => {}
        }
    }
    if te.is_some() && content_length.is_some() {
        return Err(Error::bad_gateway(
            "upstream sent both Content-Length and Transfer-Encoding",
        ));
    }
    // RFC 9112 §6.3: a response whose final transfer coding is not
    // chunked is delimited by the close of the connection, and relayed with
    // its codings. One that ends in chunked after other codings would have
    // to be re-coded for the client: refused.
    let transfer_coded = te == Some(false) && !final_chunked;
    if te == Some(false) && final_chunked {
        return Err(Error::bad_gateway(
            "upstream transfer coding other than chunked",
        ));
    }
    if te.is_some() && version == Version::Http10 {
        // RFC 9112 §6.1: framing of such a message is faulty.
        return Err(Error::bad_gateway(
            "Transfer-Encoding in an HTTP/1.0 response",
        ));
    }
    let no_body = head_request || (100..200).contains(&code) || code == 204 || code == 304;
    let body = if no_body {
        BodyKind::None
    } else if transfer_coded {
        BodyKind::UntilClose
    } else if te.is_some() {
        BodyKind::Chunked
    } else {
        match content_length {
            Some(0) => BodyKind::None,
            Some(n) => BodyKind::Length(n),
            None => BodyKind::UntilClose,
        }
    };
    let keep = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    let reusable = keep && body != BodyKind::UntilClose;
    let coded = transfer_coded && body == BodyKind::UntilClose;
    Ok((body, reusable, has_connection, coded))
}

/// What the front of an upstream's answer is, without taking it: read
/// while a request body is still going up, where only an interim head may
/// be passed over (RFC 9110 §15.2) and a final one ends the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peek {
    /// More bytes are needed.
    Partial,
    /// A whole 1xx head of this status and length.
    Interim(u16, usize),
    /// A final head (whole or not), or bytes that are no head at all: the
    /// full parser says which.
    Final,
}

/// Peeks at the response head at the front of `buf`.
pub(crate) fn peek_response(buf: &[u8]) -> Peek {
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_CAP];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut raw);
    match (parsed, res.code) {
        (Ok(httparse::Status::Complete(len)), Some(code)) if (100..200).contains(&code) => {
            Peek::Interim(code, len)
        }
        (Ok(httparse::Status::Partial), None) => Peek::Partial,
        (Ok(httparse::Status::Partial), Some(code)) if (100..200).contains(&code) => Peek::Partial,
        _ => Peek::Final,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_head: 8192,
        max_headers: 32,
        max_target: 1024,
        slashes: ringway_config::EncodedSlashes::Reject,
        underscores: ringway_config::UnderscoresInHeaders::Drop,
    };

    fn req(s: &[u8]) -> Result<Option<RequestHead>, Error> {
        let mut buf = BytesMut::from(s);
        parse_request(&mut buf, LIMITS, &mut Vec::new())
    }

    fn kind(s: &[u8]) -> Option<Kind> {
        req(s).err().map(|e| e.kind)
    }

    #[test]
    fn parses_a_plain_get_without_copying() {
        let mut buf = BytesMut::from(
            &b"GET /a/b?x=1 HTTP/1.1\r\nHost: Example.com\r\nX-A: 1\r\n\r\nNEXT"[..],
        );
        let head = parse_request(&mut buf, LIMITS, &mut Vec::new())
            .expect("valid")
            .expect("complete");
        assert_eq!(head.bytes(head.target), b"/a/b?x=1");
        assert_eq!(head.path(), b"/a/b");
        assert_eq!(head.authority(), b"Example.com");
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.body, BodyKind::None);
        assert!(head.keep_alive);
        assert_eq!(head.headers.len(), 2);
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn partial_head_waits() {
        assert!(req(b"GET / HTTP/1.1\r\nHost: a\r\n").expect("ok").is_none());
    }

    #[test]
    fn framing_and_connection_table() {
        let cases: &[(&[u8], BodyKind, bool)] = &[
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", BodyKind::Length(5), true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", BodyKind::Length(5), true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", BodyKind::Length(0), true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", BodyKind::Chunked, true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n", BodyKind::Chunked, false),
            (b"GET / HTTP/1.0\r\n\r\n", BodyKind::None, false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", BodyKind::None, true),
            (b"GET http://h.example/p?q HTTP/1.1\r\nHost: other\r\n\r\n", BodyKind::None, true),
            (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", BodyKind::None, true),
        ];
        for (input, body, keep) in cases {
            let head = req(input).expect("valid").expect("complete");
            assert_eq!(head.body, *body, "{}", String::from_utf8_lossy(input));
            assert_eq!(head.keep_alive, *keep, "{}", String::from_utf8_lossy(input));
        }
        let head = req(b"GET http://h.example/p?q HTTP/1.1\r\nHost: other\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!(head.authority(), b"h.example");
        assert_eq!(head.path(), b"/p");
    }

    #[test]
    fn smuggling_and_malformed_requests_are_rejected() {
        let cases: &[(&[u8], Kind)] = &[
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Kind::NotImplemented),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", Kind::BadRequest),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX\x01A: b\r\n\r\n", Kind::BadRequest),
            (b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", Kind::BadRequest),
            (b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", Kind::BadRequest),
            (b"GET a HTTP/1.1\r\nHost: a\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Kind::BadRequest),
            (b"GET / HTTP/1.1\rHost: a\r\n\r\n", Kind::BadRequest),
            (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", Kind::NotImplemented),
        ];
        for (input, want) in cases {
            assert_eq!(
                kind(input),
                Some(*want),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// RFC 9110 §2.5: a later HTTP/1.x minor version is handled as 1.1,
    /// whether it arrives whole or a byte at a time; other versions stay
    /// refused.
    #[test]
    fn later_minor_versions_are_read_as_1_1() {
        for input in [
            &b"GET /a HTTP/1.2\r\nHost: a\r\n\r\n"[..],
            b"\r\nGET /a HTTP/1.9\r\nHost: a\r\n\r\n",
        ] {
            let head = req(input).expect("valid").expect("complete");
            assert_eq!(head.version, Version::Http11);
            assert!(head.keep_alive);
            assert_eq!(head.path(), b"/a");
        }
        let whole = b"GET /a HTTP/1.2\r\nHost: a\r\n\r\n";
        let mut buf = BytesMut::new();
        let mut parsed = None;
        for &b in whole {
            buf.extend_from_slice(&[b]);
            parsed = parse_request(&mut buf, LIMITS, &mut Vec::new()).expect("never refused");
        }
        assert_eq!(parsed.expect("complete").version, Version::Http11);
        for input in [
            &b"GET / HTTP/1.12\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/3.0\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.x\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(kind(input), Some(Kind::BadRequest));
        }
        for input in [
            &b"HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\n"[..],
            b"\r\nHTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\n",
        ] {
            let r = res(input, false).expect("valid");
            assert_eq!(
                (r.status, r.body, r.reusable),
                (200, BodyKind::Length(1), true)
            );
        }
        // Found by the request_head fuzz target: a version cut off at its
        // minor digit is not rewritten until its next byte says whether it
        // is one, so the split does not change the answer.
        let bad = b"GET / HTTP/1.3Q\nH.1\r\nH/*\r\n\r\n";
        let whole = parse_request(&mut BytesMut::from(&bad[..]), LIMITS, &mut Vec::new());
        let mut buf = BytesMut::from(&bad[..14]);
        assert!(matches!(
            parse_request(&mut buf, LIMITS, &mut Vec::new()),
            Ok(None)
        ));
        buf.extend_from_slice(&bad[14..]);
        let split = parse_request(&mut buf, LIMITS, &mut Vec::new());
        match (whole, split) {
            (Err(a), Err(b)) => assert_eq!(a.context, b.context),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(2000));
        assert_eq!(kind(long_target.as_bytes()), Some(Kind::TargetTooLong));
        let partial_long = format!("GET /{}", "a".repeat(2000));
        assert_eq!(kind(partial_long.as_bytes()), Some(Kind::TargetTooLong));
        let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..40 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(kind(many.as_bytes()), Some(Kind::HeadTooLarge));
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(9000)
        );
        assert_eq!(kind(big.as_bytes()), Some(Kind::HeadTooLarge));
    }

    fn res(s: &[u8], head: bool) -> Result<ResponseHead, Error> {
        let mut buf = BytesMut::from(s);
        parse_response(&mut buf, 8192, head, &mut Vec::new()).map(|r| r.expect("complete"))
    }

    #[test]
    fn missing_or_non_ascii_reason_is_an_empty_span() {
        for input in [
            &b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n"[..],
            b"HTTP/1.1 200 \xc3\x96l\xc3\xa9\r\n\r\n",
        ] {
            let r = res(input, false).expect("valid");
            assert_eq!(r.status, 200);
            assert_eq!(r.bytes(r.reason), b"");
        }
    }

    #[test]
    fn response_framing_table() {
        let cases: &[(&[u8], bool, BodyKind, bool)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                false,
                BodyKind::Length(3),
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                true,
                BodyKind::None,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                BodyKind::Chunked,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\n",
                false,
                BodyKind::UntilClose,
                false,
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                false,
                BodyKind::None,
                true,
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                false,
                BodyKind::None,
                true,
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\n",
                false,
                BodyKind::None,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false,
                BodyKind::Length(1),
                false,
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
                false,
                BodyKind::Length(1),
                false,
            ),
        ];
        for (input, head, body, reusable) in cases {
            let r = res(input, *head).expect("valid");
            assert_eq!(r.body, *body, "{}", String::from_utf8_lossy(input));
            assert_eq!(r.reusable, *reusable, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn a_final_coding_other_than_chunked_runs_to_the_close_rfc9112_6_3() {
        let cases: &[(&[u8], bool, BodyKind, bool)] = &[
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                BodyKind::UntilClose,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                BodyKind::UntilClose,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                true,
                BodyKind::None,
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                BodyKind::Chunked,
                false,
            ),
        ];
        for (input, head, body, coded) in cases {
            let r = res(input, *head).expect("valid");
            let text = String::from_utf8_lossy(input);
            assert_eq!((r.body, r.transfer_coded), (*body, *coded), "{text}");
            assert!(!r.reusable || r.body != BodyKind::UntilClose, "{text}");
        }
    }

    #[test]
    fn bad_upstream_responses_are_502() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            // RFC 9110 §15: status codes run from 100 to 599.
            b"HTTP/1.1 600 Beyond\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 999 X\r\n\r\n",
            b"HTTP/1.1 099 X\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"garbage\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        for input in cases {
            let e = res(input, false).expect_err("rejected");
            assert_eq!(
                e.kind,
                Kind::BadGateway,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn peek_tells_interim_from_final_heads() {
        let cases: &[(&[u8], Peek)] = &[
            (b"", Peek::Partial),
            (b"HTTP/1.1 10", Peek::Partial),
            (b"HTTP/1.1 100 Continue\r\n", Peek::Partial),
            (b"HTTP/1.1 100 Continue\r\n\r\n", Peek::Interim(100, 25)),
            (
                b"HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\nHTTP",
                Peek::Interim(103, 39),
            ),
            // A final head ends the upload as soon as its status is known.
            (b"HTTP/1.1 413 Content Too Large\r\n", Peek::Final),
            (b"HTTP/1.1 401 No\r\nContent-Length: 0\r\n\r\n", Peek::Final),
            // Not a head at all: the full parser says what is wrong.
            (b"garbage\r\n\r\n", Peek::Final),
        ];
        for (input, want) in cases {
            assert_eq!(
                peek_response(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
