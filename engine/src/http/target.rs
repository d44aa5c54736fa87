//! The request target (RFC 9112 §3.2, RFC 3986): its forms, its bytes,
//! and the paths an upstream could read differently from the router.
//!
//! Routes match the path; an origin that normalises a path the router did
//! not (drops a `#fragment`, reads `\` as `/`, decodes `%2F`, resolves
//! `..`) could be reached around a route that guards a prefix with auth or
//! an IP rule. So what no valid origin-form target contains is refused
//! (400), and encoded separators follow the listener's `encoded-slashes`.

use ringway_config::EncodedSlashes;

use bytes::Bytes;

use crate::error::Error;
use crate::http::head::Decoded;

pub(crate) fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    let lower = |n: usize| target.len() > n && target[..n].eq_ignore_ascii_case(&b"https://"[..n]);
    if target.len() > 7 && target[..7].eq_ignore_ascii_case(b"http://") {
        Some(&target[7..])
    } else if lower(8) {
        Some(&target[8..])
    } else {
        None
    }
}

/// uri-host [ ":" port ] characters (RFC 3986 §3.2.2): reg-name,
/// IP-literal, IPv4; no userinfo, no whitespace. A table, because this runs
/// over the Host of every request.
static AUTHORITY: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = unreserved_or_sub_delim(b) || matches!(b, b'%' | b':' | b'[' | b']');
        i += 1;
    }
    t
};

/// RFC 3986 §2.3 unreserved characters and §2.2 sub-delims: what every
/// component may hold as it is.
const fn unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

pub(crate) fn valid_authority(a: &[u8]) -> bool {
    a.iter().all(|&b| AUTHORITY[b as usize])
}

/// Could `path` be read two ways: by the router here and, differently,
/// by an upstream that normalises it? True for:
/// - a `.` or `..` segment (RFC 3986 §3.3), counting percent-encoded dots,
///   percent-encoded slashes or backslashes (and `\\`) as separators, and a
///   `;` as the end of a segment (servlet containers drop `;params`, so
///   `..;` is `..` to them);
/// - an empty segment (`//`), which many servers merge;
/// - a percent-encoded unreserved character (`%61` for `a`), which RFC 3986
///   §6.2.2.2 says to decode (`/st%61ff` is `/staff`).
///
/// Routes (and the policies on them) match the path as sent, so such a path
/// could reach an upstream resource around a route's policy: it is refused
/// (400) rather than rewritten. Clients normalise paths before sending. An
/// encoded slash inside an ordinary segment (`/projects/group%2Fname`) is
/// left alone.
pub(crate) fn ambiguous_path(path: &[u8]) -> bool {
    if !path
        .iter()
        .any(|&b| matches!(b, b'.' | b'%' | b'/' | b'\\'))
    {
        return false;
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let mut dots = 0;
    let mut other = false;
    let mut ended = false;
    let mut empty_ok = true;
    let mut i = 0;
    loop {
        let (c, step) = match path.get(i) {
            None => (b'/', 1),
            Some(b'%') => match (
                path.get(i + 1).and_then(|&b| hex(b)),
                path.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => match (h * 16 + l) as u8 {
                    b'.' => (b'.', 3),
                    b'/' | b'\\' => (b'/', 3),
                    c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'~') => {
                        return true
                    }
                    _ => (b'x', 3),
                },
                _ => (b'x', 1),
            },
            Some(b'\\') => (b'/', 1),
            Some(&b) => (b, 1),
        };
        if c == b'/' {
            if (dots == 1 || dots == 2) && !other {
                return true;
            }
            // The leading slash opens the first segment; an empty segment
            // after it (`//`, or `/a//b`) is ambiguous. A trailing slash is not.
            if i > 0 && i < path.len() && dots == 0 && !other && !ended && !empty_ok {
                return true;
            }
            dots = 0;
            other = false;
            ended = false;
            empty_ok = false;
        } else if ended {
            // Inside `;params`: not part of the segment's name.
        } else if c == b';' {
            ended = true;
        } else if c == b'.' {
            dots += 1;
        } else {
            other = true;
        }
        if i >= path.len() {
            return false;
        }
        i += step;
    }
}

/// Bytes a path may hold (RFC 3986 §3.3): unreserved, sub-delims, `:`,
/// `@` and `/`, and `%` (which must start an escape). Not `#`, `\\`,
/// space, quotes, `<`, `>`, `[`, `]`, `{`, `}`, `|`, `^` or backtick.
static PATH_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = unreserved_or_sub_delim(b) || matches!(b, b':' | b'@' | b'/' | b'%');
        i += 1;
    }
    t
};

/// Bytes a query may hold: a path's and `?` (RFC 3986 §3.4), and what
/// browsers send unencoded there (`[ ] { } | ^` and backtick: JSON:API's
/// `filter[name]=`, say). The query never takes part in routing.
static QUERY_BYTES: [bool; 256] = {
    let mut t = PATH_BYTES;
    t[b'?' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'|' as usize] = true;
    t[b'^' as usize] = true;
    t[b'`' as usize] = true;
    t
};

fn hex(b: Option<&u8>) -> Option<u8> {
    b.and_then(|&b| (b as char).to_digit(16)).map(|d| d as u8)
}

/// Every byte allowed, and (`escapes`) every `%` followed by two hex
/// digits.
fn valid_bytes(part: &[u8], allowed: &[bool; 256], escapes: bool) -> bool {
    let mut i = 0;
    while i < part.len() {
        let b = part[i];
        if !allowed[b as usize] {
            return false;
        }
        if b == b'%' && escapes {
            if hex(part.get(i + 1)).is_none() || hex(part.get(i + 2)).is_none() {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The escape at `i`, decoded, if it is `%2F` or `%5C` (either case).
fn encoded_separator(path: &[u8], i: usize) -> Option<u8> {
    if path[i] != b'%' {
        return None;
    }
    match (hex(path.get(i + 1))?, hex(path.get(i + 2))?) {
        (2, 0xf) => Some(b'/'),
        (5, 0xc) => Some(b'\\'),
        _ => None,
    }
}

/// Checks the path and query of a request target; with `encoded-slashes =
/// "decode"` and an encoded slash in the path, returns the target with
/// `%2F` decoded (checked again as a path).
pub(crate) fn check(
    path: &[u8],
    query: Option<&[u8]>,
    slashes: EncodedSlashes,
) -> Result<Option<Decoded>, Error> {
    if path == b"*" {
        return Ok(None);
    }
    // A query's escapes are the application's to judge (and to reject):
    // it takes no part in routing.
    let query_ok = query.is_none_or(|q| valid_bytes(q, &QUERY_BYTES, false));
    if !valid_bytes(path, &PATH_BYTES, true) || !query_ok {
        return Err(Error::bad_request(
            "request target holds a byte no valid target holds (RFC 3986: #, \\, quotes, spaces, a bad escape)",
        ));
    }
    let seps = || (0..path.len()).filter_map(|i| encoded_separator(path, i));
    let mut decoded = None;
    match slashes {
        EncodedSlashes::Pass => {}
        EncodedSlashes::Reject => {
            if seps().next().is_some() {
                return Err(Error::bad_request(
                    "encoded slash in the request path (encoded-slashes = \"reject\")",
                ));
            }
        }
        EncodedSlashes::Decode => {
            if seps().any(|s| s == b'\\') {
                return Err(Error::bad_request("encoded backslash in the request path"));
            }
            if seps().next().is_some() {
                let mut origin = Vec::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1));
                let mut i = 0;
                while i < path.len() {
                    if encoded_separator(path, i).is_some() {
                        origin.push(b'/');
                        i += 3;
                    } else {
                        origin.push(path[i]);
                        i += 1;
                    }
                }
                let path_len = origin.len();
                if let Some(q) = query {
                    origin.push(b'?');
                    origin.extend_from_slice(q);
                }
                decoded = Some(Decoded {
                    origin: Bytes::from(origin),
                    path_len,
                });
            }
        }
    }
    let routed = decoded.as_ref().map_or(path, |d| &d.origin[..d.path_len]);
    if ambiguous_path(routed) {
        return Err(Error::bad_request(
            "ambiguous request path (dot-segment, empty segment or encoded unreserved character)",
        ));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ambiguous_paths_are_found_however_written() {
        for (path, ambiguous) in [
            ("/", false),
            ("/a/b.c/...", false),
            ("/.well-known/x", false),
            ("/v1.2/file.tar.gz", false),
            ("/projects/group%2Fname", false),
            ("/a%20b", false),
            ("/a/b/", false),
            ("/a;v=1/b", false),
            ("/a/%2", false),
            ("/a/../b", true),
            ("/a/./b", true),
            ("/a/..", true),
            ("/a/.", true),
            ("/..", true),
            ("/a/%2e%2e/b", true),
            ("/a/%2E./b", true),
            ("/public/..%2Fadmin", true),
            ("/public/..%5cadmin", true),
            ("/public/..\\admin", true),
            ("/any/..;/staff/x", true),
            ("/any/.;x/staff", true),
            ("//staff/x", true),
            ("/a//b", true),
            ("/st%61ff/x", true),
            ("/%7Euser", true),
        ] {
            assert_eq!(super::ambiguous_path(path.as_bytes()), ambiguous, "{path}");
        }
    }

    #[test]
    fn target_bytes_and_encoded_slashes() {
        use super::{check, EncodedSlashes};
        use EncodedSlashes::{Decode, Pass, Reject};
        let ok = |p: &str, q: Option<&str>, s| check(p.as_bytes(), q.map(str::as_bytes), s);
        for (path, query, slashes, want) in [
            ("/a/b", None, Reject, Ok(None)),
            ("/a%20b/c", Some("x=1&y=%41"), Reject, Ok(None)),
            ("/a", Some("bad=%zz&half=%2"), Reject, Ok(None)),
            (
                "/api",
                Some("filter[name]=x&page[size]=10"),
                Reject,
                Ok(None),
            ),
            ("/a#frag", None, Reject, Err(())),
            ("/a", Some("x#frag"), Reject, Err(())),
            ("/secret\\x", None, Reject, Err(())),
            ("/a|b", None, Reject, Err(())),
            ("/a[0]", None, Reject, Err(())),
            ("/a/%2", None, Reject, Err(())),
            ("/a/%zz", None, Reject, Err(())),
            ("/secret%2Fx", None, Reject, Err(())),
            ("/secret%5cx", None, Reject, Err(())),
            ("/secret%2Fx", None, Pass, Ok(None)),
            ("/public/..%2Fadmin", None, Pass, Err(())),
            (
                "/secret%2fx",
                Some("q=1"),
                Decode,
                Ok(Some(("/secret/x?q=1", 9))),
            ),
            ("/secret%5Cx", None, Decode, Err(())),
            ("/a%2F%2Fb", None, Decode, Err(())),
            ("/a%2F..%2Fb", None, Decode, Err(())),
            ("*", None, Reject, Ok(None)),
        ] {
            let got = ok(path, query, slashes)
                .map(|d| {
                    d.map(|d| {
                        (
                            String::from_utf8(d.origin.to_vec()).expect("text"),
                            d.path_len,
                        )
                    })
                })
                .map_err(|_| ());
            let want = want.map(|d: Option<(&str, usize)>| d.map(|(o, n)| (o.to_string(), n)));
            assert_eq!(got, want, "{path} {query:?} {slashes:?}");
        }
    }
}
