//! A route's CORS policy, compiled (the Fetch standard's CORS protocol,
//! <https://fetch.spec.whatwg.org/#http-cors-protocol>): which request
//! origins are allowed, the preflight answer's lines, and the lines an
//! allowed origin's answers carry.
//!
//! Everything that does not depend on the request is laid out once, when
//! the config is compiled: the `Access-Control-Allow-Methods`, `-Headers`,
//! `-Max-Age`, `-Credentials` and `-Expose-Headers` lines are ready-made
//! bytes, so a request appends them and its own origin to the answer's
//! lines without allocating. Origins are compared byte for byte with the
//! configured ones, which validation holds as browsers serialize them
//! (lower-case, no default port); a pattern `https://*.example.com` is a
//! prefix (`https://`) and a suffix (`.example.com`, with `:port` when
//! one was given) around at least one host label.
//!
//! On a CORS route the gateway owns the CORS headers: [`fix_head`] drops
//! an upstream's (or a stored response's) `Access-Control-*` lines before
//! the gateway's are added, so a cached answer never carries one origin's
//! `Access-Control-Allow-Origin` to another, and adds `Origin` to `Vary`
//! (to the upstream's own line when there is one).

use bytes::{Bytes, BytesMut};
use ringway_config::{AllowOrigins, Cors, OriginPattern};

use crate::http::head::{Method, RequestHead};
use crate::http::text;

/// What the request stage makes of a request on a CORS route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No `Origin`: not a cross-origin request from a browser.
    NoOrigin,
    /// An actual request from an allowed origin: its answer's lines were
    /// written.
    Allowed,
    /// A preflight the gateway answers 204: its lines were written.
    Preflight,
    /// An origin (or, on a preflight, a method) that is not allowed: no
    /// CORS lines; a preflight is refused.
    Refused { preflight: bool },
}

/// `https://*.example.com[:port]`, as its fixed ends.
#[derive(Debug)]
struct Pattern {
    /// `https://`.
    prefix: Box<[u8]>,
    /// `.example.com`, then `:port` when one was given.
    suffix: Box<[u8]>,
}

impl Pattern {
    fn matches(&self, origin: &[u8]) -> bool {
        let Some(rest) = origin.strip_prefix(&*self.prefix) else {
            return false;
        };
        let Some(labels) = rest.strip_suffix(&*self.suffix) else {
            return false;
        };
        // One or more labels: no port, path or empty label slipped in.
        !labels.is_empty()
            && labels[0] != b'.'
            && labels
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    }
}

/// A route's `[routes.cors]`, compiled.
#[derive(Debug)]
pub(crate) struct CorsPolicy {
    /// `allow-origins = ["*"]`.
    any: bool,
    exact: Vec<Box<[u8]>>,
    patterns: Vec<Pattern>,
    /// `Access-Control-Allow-Origin` is `*` (any origin, no credentials)
    /// rather than the request's origin.
    star: bool,
    methods: Vec<Box<[u8]>>,
    /// `allow-headers` was empty: a preflight's requested headers are
    /// echoed.
    echo_headers: bool,
    allow_private_network: bool,
    /// The preflight's fixed lines: Allow-Methods, Allow-Headers (when
    /// configured), Max-Age, Allow-Credentials.
    preflight_lines: Bytes,
    /// An actual answer's fixed lines after the origin's: Allow-Credentials,
    /// Expose-Headers.
    actual_lines: Bytes,
}

impl CorsPolicy {
    pub(crate) fn compile(c: &Cors) -> CorsPolicy {
        let (any, exact, patterns) = match &c.allow_origins {
            AllowOrigins::Any => (true, Vec::new(), Vec::new()),
            AllowOrigins::List(list) => {
                let mut exact = Vec::new();
                let mut patterns = Vec::new();
                for o in list {
                    match o {
                        OriginPattern::Exact(s) => exact.push(s.as_bytes().into()),
                        OriginPattern::Subdomains {
                            scheme,
                            suffix,
                            port,
                        } => {
                            let mut end = suffix.clone();
                            if let Some(p) = port {
                                end.push_str(&format!(":{p}"));
                            }
                            patterns.push(Pattern {
                                prefix: format!("{scheme}://").into_bytes().into(),
                                suffix: end.into_bytes().into(),
                            });
                        }
                    }
                }
                (false, exact, patterns)
            }
        };
        let mut pre = BytesMut::new();
        line(&mut pre, "Access-Control-Allow-Methods", &c.allow_methods);
        if !c.allow_headers.is_empty() {
            line(&mut pre, "Access-Control-Allow-Headers", &c.allow_headers);
        }
        if let Some(age) = c.max_age {
            pre.extend_from_slice(b"Access-Control-Max-Age: ");
            pre.extend_from_slice(itoa::Buffer::new().format(age.as_secs()).as_bytes());
            pre.extend_from_slice(b"\r\n");
        }
        let mut actual = BytesMut::new();
        if c.allow_credentials {
            let creds: &[u8] = b"Access-Control-Allow-Credentials: true\r\n";
            pre.extend_from_slice(creds);
            actual.extend_from_slice(creds);
        }
        if !c.expose_headers.is_empty() {
            line(
                &mut actual,
                "Access-Control-Expose-Headers",
                &c.expose_headers,
            );
        }
        CorsPolicy {
            any,
            exact,
            patterns,
            star: any && !c.allow_credentials,
            methods: c
                .allow_methods
                .iter()
                .map(|m| m.as_bytes().into())
                .collect(),
            echo_headers: c.allow_headers.is_empty(),
            allow_private_network: c.allow_private_network,
            preflight_lines: pre.freeze(),
            actual_lines: actual.freeze(),
        }
    }

    /// Whether pages of `origin` may read this route's answers. `*`
    /// allows `null` (sandboxed frames, local files) too, as browsers
    /// read `Access-Control-Allow-Origin: *`; a list never does, since
    /// validation refuses `null` and no pattern matches it.
    pub(crate) fn allows(&self, origin: &[u8]) -> bool {
        self.any
            || self.exact.iter().any(|o| **o == *origin)
            || self.patterns.iter().any(|p| p.matches(origin))
    }

    /// Judges `head` and, when its origin is allowed, appends the CORS
    /// lines of its answer to `out`: a preflight's (an `OPTIONS` with
    /// `Origin` and `Access-Control-Request-Method`) or an actual
    /// answer's. An `OPTIONS` without those is an ordinary request.
    pub(crate) fn judge(&self, head: &RequestHead, out: &mut BytesMut) -> Verdict {
        let mut origins = head.values(b"origin");
        let Some(origin) = origins.next() else {
            return Verdict::NoOrigin;
        };
        // Two Origin fields: no browser sends that; allow neither.
        let origin = text::trim(origin);
        let allowed = origins.next().is_none() && self.allows(origin);
        let requested = match head.method {
            Method::Options => head.values(b"access-control-request-method").next(),
            _ => None,
        };
        let Some(requested) = requested else {
            if !allowed {
                return Verdict::Refused { preflight: false };
            }
            self.allow_origin(origin, out);
            out.extend_from_slice(&self.actual_lines);
            return Verdict::Allowed;
        };
        let requested = text::trim(requested);
        if !allowed || !self.methods.iter().any(|m| **m == *requested) {
            return Verdict::Refused { preflight: true };
        }
        self.allow_origin(origin, out);
        out.extend_from_slice(&self.preflight_lines);
        if self.echo_headers {
            let mut asked = head
                .values(b"access-control-request-headers")
                .map(text::trim)
                .filter(|v| !v.is_empty());
            if let Some(first) = asked.next() {
                out.extend_from_slice(b"Access-Control-Allow-Headers: ");
                out.extend_from_slice(first);
                for more in asked {
                    out.extend_from_slice(b", ");
                    out.extend_from_slice(more);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        if self.allow_private_network
            && head
                .values(b"access-control-request-private-network")
                .any(|v| text::trim(v).eq_ignore_ascii_case(b"true"))
        {
            out.extend_from_slice(b"Access-Control-Allow-Private-Network: true\r\n");
        }
        Verdict::Preflight
    }

    fn allow_origin(&self, origin: &[u8], out: &mut BytesMut) {
        out.extend_from_slice(b"Access-Control-Allow-Origin: ");
        out.extend_from_slice(if self.star { b"*" } else { origin });
        out.extend_from_slice(b"\r\n");
    }
}

/// The `Vary` line of a preflight's answer: it depends on all three.
pub(crate) const PREFLIGHT_VARY: &[u8] =
    b"Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n";

fn line(out: &mut BytesMut, name: &str, values: &[String]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Makes the response head in `out` (its status line and fields, from
/// byte 0, not yet ended) a CORS route's: drops every `Access-Control-*`
/// line (the gateway writes its own after this), and adds `Origin` to
/// `Vary`: to the last `Vary` line when one exists and lists neither
/// `Origin` nor `*`, as a line of its own when none does. Moves bytes in
/// place; allocates only if `out` lacks room for `, Origin`.
pub(crate) fn fix_head(out: &mut BytesMut) {
    const AC: &[u8] = b"access-control-";
    let Some(first) = find_crlf(out, 0) else {
        return;
    };
    // Compact the field lines in place, remembering where the last Vary
    // value ends (before its CRLF) in the compacted head.
    let mut read = first + 2;
    let mut write = read;
    let mut vary_end: Option<usize> = None;
    let mut vary_done = false;
    while read < out.len() {
        let end = find_crlf(out, read).map_or(out.len(), |e| e + 2);
        let line = &out[read..end];
        let name_end = line.iter().position(|&b| b == b':').unwrap_or(0);
        let name = &line[..name_end];
        let keep = !(name.len() > AC.len() && name[..AC.len()].eq_ignore_ascii_case(AC));
        if keep {
            if name.eq_ignore_ascii_case(b"vary") {
                let value = &line[name_end + 1..line.len().saturating_sub(2)];
                if text::list(value).any(|m| m == b"*" || m.eq_ignore_ascii_case(b"origin")) {
                    vary_done = true;
                }
                vary_end = Some(write + (end - read) - 2);
            }
            if write != read {
                out.copy_within(read..end, write);
            }
            write += end - read;
        }
        read = end;
    }
    out.truncate(write);
    if vary_done {
        return;
    }
    match vary_end {
        Some(at) => {
            const MORE: &[u8] = b", Origin";
            let len = out.len();
            out.extend_from_slice(MORE);
            out.copy_within(at..len, at + MORE.len());
            out[at..at + MORE.len()].copy_from_slice(MORE);
        }
        None => out.extend_from_slice(b"Vary: Origin\r\n"),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        let list = origins
            .iter()
            .map(|o| match o.split_once("://*") {
                Some((scheme, rest)) => {
                    let (suffix, port) = match rest.rsplit_once(':') {
                        Some((s, p)) => (s, Some(p.parse().expect("port"))),
                        None => (rest, None),
                    };
                    OriginPattern::Subdomains {
                        scheme: scheme.into(),
                        suffix: suffix.into(),
                        port,
                    }
                }
                None => OriginPattern::Exact((*o).into()),
            })
            .collect();
        CorsPolicy::compile(&Cors {
            allow_origins: if origins == ["*"] {
                AllowOrigins::Any
            } else {
                AllowOrigins::List(list)
            },
            allow_methods: vec!["GET".into(), "PUT".into()],
            allow_headers: vec![],
            expose_headers: vec!["X-Total".into()],
            allow_credentials: credentials,
            max_age: Some(Duration::from_secs(600)),
            allow_private_network: false,
        })
    }

    #[test]
    fn origins_match_exactly_or_by_pattern() {
        let p = policy(
            &[
                "https://app.example.com",
                "https://*.example.org",
                "http://*.example.net:8080",
            ],
            false,
        );
        let cases: &[(&str, bool)] = &[
            ("https://app.example.com", true),
            ("https://app.example.com:443", false),
            ("http://app.example.com", false),
            ("https://app.example.com.evil.com", false),
            ("https://a.example.org", true),
            ("https://a.b.example.org", true),
            ("https://example.org", false),
            ("https://.example.org", false),
            ("https://evilexample.org", false),
            ("http://a.example.org", false),
            ("https://a.example.org:8443", false),
            ("https://x:1@a.example.org", false),
            ("http://a.example.net:8080", true),
            ("http://a.example.net", false),
            ("null", false),
        ];
        for (origin, want) in cases {
            assert_eq!(p.allows(origin.as_bytes()), *want, "{origin}");
        }
        let any = policy(&["*"], false);
        assert!(any.allows(b"https://anything.test"));
        assert!(any.allows(b"null"));
    }

    fn fixed(head: &str) -> String {
        let mut out = BytesMut::from(head);
        fix_head(&mut out);
        String::from_utf8(out.to_vec()).expect("utf-8")
    }

    #[test]
    fn heads_lose_upstream_cors_lines_and_vary_on_origin() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nA: 1\r\n",
                "HTTP/1.1 200 OK\r\nA: 1\r\nVary: Origin\r\n",
            ),
            (
                "HTTP/1.1 200 OK\r\nVary: Accept-Encoding\r\nA: 1\r\n",
                "HTTP/1.1 200 OK\r\nVary: Accept-Encoding, Origin\r\nA: 1\r\n",
            ),
            (
                "HTTP/1.1 200 OK\r\nvary: origin\r\n",
                "HTTP/1.1 200 OK\r\nvary: origin\r\n",
            ),
            (
                "HTTP/1.1 200 OK\r\nVary: *\r\n",
                "HTTP/1.1 200 OK\r\nVary: *\r\n",
            ),
            (
                "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nVary: A\r\n\
                 access-control-expose-headers: x\r\nB: 2\r\nVary: C\r\n",
                "HTTP/1.1 200 OK\r\nVary: A\r\nB: 2\r\nVary: C, Origin\r\n",
            ),
            (
                "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\n",
                "HTTP/1.1 200 OK\r\nVary: Origin\r\n",
            ),
            // Not a CORS field, only a prefix of one.
            (
                "HTTP/1.1 200 OK\r\nAccess-Control: x\r\n",
                "HTTP/1.1 200 OK\r\nAccess-Control: x\r\nVary: Origin\r\n",
            ),
        ];
        for (head, want) in cases {
            assert_eq!(fixed(head), want, "{head:?}");
        }
    }

    fn request(lines: &str) -> RequestHead {
        let limits = crate::http::head::HeadLimits {
            max_head: 8192,
            max_headers: 32,
            max_target: 1024,
            slashes: ringway_config::EncodedSlashes::Reject,
            underscores: ringway_config::UnderscoresInHeaders::Drop,
        };
        let mut buf = BytesMut::from(format!("{lines}\r\n").as_bytes());
        crate::http::parse::parse_request(&mut buf, limits, &mut Vec::new())
            .expect("valid request")
            .expect("complete request")
    }

    fn judged(p: &CorsPolicy, lines: &str) -> (Verdict, String) {
        let mut out = BytesMut::new();
        let v = p.judge(&request(lines), &mut out);
        (v, String::from_utf8(out.to_vec()).expect("utf-8"))
    }

    #[test]
    fn requests_get_the_lines_their_origin_allows() {
        let p = policy(&["https://app.example.com"], true);
        let (v, out) = judged(&p, "GET / HTTP/1.1\r\nHost: a\r\n");
        assert_eq!((v, out.as_str()), (Verdict::NoOrigin, ""));
        let (v, out) = judged(
            &p,
            "GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n",
        );
        assert_eq!(v, Verdict::Allowed);
        assert_eq!(
            out,
            "Access-Control-Allow-Origin: https://app.example.com\r\n\
             Access-Control-Allow-Credentials: true\r\n\
             Access-Control-Expose-Headers: X-Total\r\n"
        );
        let (v, out) = judged(
            &p,
            "GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://b.example.com\r\n",
        );
        assert_eq!(
            (v, out.as_str()),
            (Verdict::Refused { preflight: false }, "")
        );
        let (v, out) = judged(
            &p,
            "OPTIONS / HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n\
             Access-Control-Request-Method: PUT\r\n\
             Access-Control-Request-Headers: content-type\r\n\
             Access-Control-Request-Headers: x-a\r\n",
        );
        assert_eq!(v, Verdict::Preflight);
        assert_eq!(
            out,
            "Access-Control-Allow-Origin: https://app.example.com\r\n\
             Access-Control-Allow-Methods: GET, PUT\r\n\
             Access-Control-Max-Age: 600\r\n\
             Access-Control-Allow-Credentials: true\r\n\
             Access-Control-Allow-Headers: content-type, x-a\r\n"
        );
        let (v, out) = judged(
            &p,
            "OPTIONS / HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n\
             Access-Control-Request-Method: DELETE\r\n",
        );
        assert_eq!(
            (v, out.as_str()),
            (Verdict::Refused { preflight: true }, "")
        );
        // An OPTIONS without Access-Control-Request-Method is an actual
        // request.
        let (v, _) = judged(
            &p,
            "OPTIONS / HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n",
        );
        assert_eq!(v, Verdict::Allowed);
        // Two origins: neither.
        let (v, _) = judged(
            &p,
            "GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n\
             Origin: https://app.example.com\r\n",
        );
        assert_eq!(v, Verdict::Refused { preflight: false });

        let ask_private = "OPTIONS / HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n\
                           Access-Control-Request-Method: GET\r\n\
                           Access-Control-Request-Private-Network: true\r\n";
        let (_, out) = judged(&p, ask_private);
        assert!(!out.contains("Private-Network"), "not allowed: {out}");
        let mut open = policy(&["https://app.example.com"], true);
        open.allow_private_network = true;
        let (v, out) = judged(&open, ask_private);
        assert_eq!(v, Verdict::Preflight);
        assert!(
            out.ends_with("Access-Control-Allow-Private-Network: true\r\n"),
            "{out}"
        );

        let star = policy(&["*"], false);
        let (_, out) = judged(
            &star,
            "GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://x.test\r\n",
        );
        assert_eq!(
            out,
            "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: X-Total\r\n"
        );
    }
}
