//! Response compression (`[routes.compression]`): the request side picks
//! a coding from `Accept-Encoding` ([`negotiate`]), the response stage
//! decides whether this answer takes it and rewrites its head
//! ([`on_head`]), and the body filter stage runs the encoder
//! ([`Encoder`], one per response, in [`BodyFilter::Compress`]).
//!
//! Living in the response stage means every answer of the route is
//! covered the same way: proxied, served from the cache, built-in. The
//! cache stores the identity body (it keeps its copy before the body
//! filter) and compresses on the way out: one entry per URL whatever the
//! clients accept, Range and validators keep working on the stored
//! bytes, and the cost is CPU per hit (see `benches/benches/compress.rs`
//! for how much per MiB).
//!
//! Never compressed (RFC 9110 §8.4, §15.3.7, RFC 9111 §5.2.1.6,
//! §5.2.2.6): HEAD, Range requests, requests and responses with
//! `Cache-Control: no-transform`, 1xx/204/206/304, responses that carry a
//! Content-Encoding or a Content-Range, a Content-Type not listed (or
//! none), a Content-Length below `min-size`.
//! An upstream that compressed the body itself is passed through as is.
//! An answer that could be compressed carries `Vary: Accept-Encoding`
//! even when this client accepted no coding, so a cache downstream does
//! not hand one client's form to another; one that is compressed has its
//! strong ETag made weak (its bytes differ from the identity form's) and
//! no Content-Length (it goes out chunked, or close-delimited to
//! HTTP/1.0 clients).
//!
//! A route without the table pays one branch per request and one per
//! answer; a route with it scans the head of each answer, and copies it
//! once when it changes it.

use bytes::BytesMut;
use ringway_config::{Compression, ContentCoding};

use crate::http::coding;
pub(crate) use crate::http::coding::Encoder;
use crate::http::head::RequestHead;
use crate::http::text::{quoted_list, trim};
#[cfg(doc)]
use crate::proxy::filter::BodyFilter;

/// What the request side decided, for the response stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The route does not compress, or this request's answer must not
    /// be (HEAD, Range).
    #[default]
    Off,
    /// The answer may vary by `Accept-Encoding`, but this client accepts
    /// no offered coding: identity, with `Vary`.
    Identity,
    /// Compress with this coding if the answer qualifies.
    Coding(ContentCoding),
}

/// The request side: what the answer to `head` may get on a route that
/// compresses with `c`.
pub(crate) fn negotiate(c: &Compression, head: &RequestHead, head_request: bool) -> Plan {
    // A client's `no-transform` asks intermediaries to leave the content
    // alone too (RFC 9111 §5.2.1.6).
    let no_transform = || {
        head.values(b"cache-control")
            .flat_map(quoted_list)
            .any(|d| d.eq_ignore_ascii_case(b"no-transform"))
    };
    if head_request || head.values(b"range").next().is_some() || no_transform() {
        return Plan::Off;
    }
    match coding::negotiate(head.values(b"accept-encoding"), &c.algorithms) {
        Some(coding) => Plan::Coding(coding),
        None => Plan::Identity,
    }
}

/// The response stage: `out` holds the answer's status line and fields
/// (from its first byte), `length` its body's length when known. When the
/// answer qualifies, rewrites its fields (Vary; when compressing also
/// Content-Encoding, a weak ETag, no Content-Length) and returns the
/// encoder for its body.
pub(crate) fn on_head(
    c: &Compression,
    plan: Plan,
    out: &mut BytesMut,
    status: u16,
    length: Option<u64>,
) -> Option<Encoder> {
    if plan == Plan::Off
        || status < 200
        || matches!(status, 204 | 206 | 304)
        || length.is_some_and(|n| n < c.min_size)
    {
        return None;
    }
    let start = out.windows(2).position(|w| w == b"\r\n")? + 2;
    let mut typed = false;
    let mut strong_etag = false;
    let mut vary = Vary::Absent;
    let mut has_length = false;
    for line in lines(&out[start..]) {
        let (name, value) = split(line);
        if name.eq_ignore_ascii_case(b"content-type") {
            let media = trim(value.split(|&b| b == b';').next().unwrap_or_default());
            typed = c.content_types.iter().any(|p| matches(p.as_bytes(), media));
        } else if name.eq_ignore_ascii_case(b"content-encoding")
            || name.eq_ignore_ascii_case(b"content-range")
        {
            return None;
        } else if name.eq_ignore_ascii_case(b"cache-control") {
            if quoted_list(value).any(|d| d.eq_ignore_ascii_case(b"no-transform")) {
                return None;
            }
        } else if name.eq_ignore_ascii_case(b"etag") {
            strong_etag = value.first() == Some(&b'"');
        } else if name.eq_ignore_ascii_case(b"vary") {
            let lists = crate::http::text::list(value)
                .any(|m| m == b"*" || m.eq_ignore_ascii_case(b"accept-encoding"));
            vary = match vary {
                Vary::Absent if lists => Vary::Covered,
                Vary::Absent => Vary::Append,
                Vary::Append if lists => Vary::Covered,
                v => v,
            };
        } else if name.eq_ignore_ascii_case(b"content-length") {
            has_length = true;
        }
    }
    if !typed {
        return None;
    }
    let coding = match plan {
        Plan::Coding(coding) => Some(coding),
        _ => None,
    };
    let encoder = coding.and_then(|coding| Encoder::new(coding, c.level(coding)));
    let compressing = encoder.is_some();
    let rewrite = vary == Vary::Append || (compressing && (strong_etag || has_length));
    if rewrite {
        let fields = out[start..].to_vec();
        out.truncate(start);
        let mut appended = false;
        for line in lines(&fields) {
            let (name, value) = split(line);
            if compressing && name.eq_ignore_ascii_case(b"content-length") {
                continue;
            }
            if compressing && name.eq_ignore_ascii_case(b"etag") && value.first() == Some(&b'"') {
                out.extend_from_slice(b"ETag: W/");
                out.extend_from_slice(value);
            } else if vary == Vary::Append && !appended && name.eq_ignore_ascii_case(b"vary") {
                out.extend_from_slice(line);
                out.extend_from_slice(b", Accept-Encoding");
                appended = true;
            } else {
                out.extend_from_slice(line);
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    if vary == Vary::Absent {
        out.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
    if let Some(coding) = coding.filter(|_| compressing) {
        out.extend_from_slice(b"Content-Encoding: ");
        out.extend_from_slice(coding.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    encoder
}

/// What the answer's Vary fields say about `Accept-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vary {
    /// No Vary field.
    Absent,
    /// Vary fields that do not list it: appended to the first.
    Append,
    /// Listed already (or `*`).
    Covered,
}

/// The lines of a head's fields (without their CRLF), up to a blank line.
fn lines(fields: &[u8]) -> impl Iterator<Item = &[u8]> {
    fields
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
}

/// A field line's name and trimmed value.
fn split(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b':') {
        Some(i) => (&line[..i], trim(&line[i + 1..])),
        None => (line, b""),
    }
}

/// Does `media` (a Content-Type without parameters) match `pattern`
/// (lower-case `type/subtype`, `type/*` or `type/*+suffix`)?
fn matches(pattern: &[u8], media: &[u8]) -> bool {
    let Some(slash) = pattern.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, sub) = (&pattern[..=slash], &pattern[slash + 1..]);
    if media.len() < kind.len() || !media[..kind.len()].eq_ignore_ascii_case(kind) {
        return false;
    }
    let media_sub = &media[kind.len()..];
    match sub.strip_prefix(b"*") {
        Some([]) => !media_sub.is_empty(),
        Some(suffix) => {
            media_sub.len() > suffix.len()
                && media_sub[media_sub.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
        None => media_sub.eq_ignore_ascii_case(sub),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Compression {
        Compression {
            algorithms: ContentCoding::ALL.to_vec(),
            content_types: Compression::DEFAULT_CONTENT_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            min_size: 100,
            gzip_level: 1,
            brotli_level: 1,
            zstd_level: 1,
        }
    }

    fn run(fields: &str, status: u16, length: Option<u64>, plan: Plan) -> (bool, String) {
        let mut out = BytesMut::from(format!("HTTP/1.1 {status} X\r\n{fields}").as_bytes());
        let e = on_head(&config(), plan, &mut out, status, length);
        (e.is_some(), String::from_utf8(out.to_vec()).expect("text"))
    }

    #[test]
    fn matches_media_type_patterns() {
        let cases = [
            ("application/json", "application/json", true),
            ("application/json", "Application/JSON", true),
            ("application/json", "application/jsonx", false),
            ("text/*", "text/html", true),
            ("text/*", "text/", false),
            ("text/*", "textual/html", false),
            ("application/*+json", "application/problem+json", true),
            ("application/*+json", "application/+json", false),
            ("application/*+json", "application/json", false),
        ];
        for (pattern, media, want) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), media.as_bytes()),
                want,
                "{pattern} {media}"
            );
        }
    }

    #[test]
    fn rewrites_the_head_of_what_it_compresses() {
        let gz = Plan::Coding(ContentCoding::Gzip);
        let (on, head) = run(
            "Content-Type: application/json; charset=utf-8\r\nETag: \"v1\"\r\nVary: Origin\r\nContent-Length: 500\r\n",
            200,
            Some(500),
            gz,
        );
        assert!(on);
        assert_eq!(
            head,
            "HTTP/1.1 200 X\r\nContent-Type: application/json; charset=utf-8\r\nETag: W/\"v1\"\r\n\
             Vary: Origin, Accept-Encoding\r\nContent-Encoding: gzip\r\n"
        );
        // A weak ETag and a Vary that covers it stay; no copy.
        let (on, head) = run(
            "Content-Type: text/plain\r\nETag: W/\"v1\"\r\nvary: accept-encoding\r\n",
            200,
            None,
            gz,
        );
        assert!(on);
        assert_eq!(
            head,
            "HTTP/1.1 200 X\r\nContent-Type: text/plain\r\nETag: W/\"v1\"\r\nvary: accept-encoding\r\nContent-Encoding: gzip\r\n"
        );
        // A client that accepts nothing: Vary only.
        let (on, head) = run(
            "Content-Type: text/plain\r\nETag: \"v1\"\r\n",
            200,
            None,
            Plan::Identity,
        );
        assert!(!on);
        assert_eq!(
            head,
            "HTTP/1.1 200 X\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\nVary: Accept-Encoding\r\n"
        );
    }

    #[test]
    fn leaves_alone_what_it_must_not_compress() {
        let gz = Plan::Coding(ContentCoding::Gzip);
        let json = "Content-Type: application/json\r\n";
        let cases = [
            ("off", json.to_owned(), 200, None, Plan::Off),
            ("204", json.to_owned(), 204, None, gz),
            ("206", json.to_owned(), 206, None, gz),
            ("304", json.to_owned(), 304, None, gz),
            ("101", json.to_owned(), 101, None, gz),
            ("small", json.to_owned(), 200, Some(99), gz),
            ("no type", String::new(), 200, None, gz),
            ("image", "Content-Type: image/png\r\n".into(), 200, None, gz),
            (
                "encoded",
                format!("{json}Content-Encoding: br\r\n"),
                200,
                None,
                gz,
            ),
            (
                "range",
                format!("{json}Content-Range: bytes 0-1/2\r\n"),
                200,
                None,
                gz,
            ),
            (
                "no-transform",
                format!("{json}Cache-Control: public, No-Transform\r\n"),
                200,
                None,
                gz,
            ),
        ];
        for (case, fields, status, length, plan) in cases {
            let (on, head) = run(&fields, status, length, plan);
            assert!(!on, "{case}");
            assert_eq!(head, format!("HTTP/1.1 {status} X\r\n{fields}"), "{case}");
        }
        // At min-size exactly, it compresses.
        assert!(run(json, 200, Some(100), gz).0);
    }
}
