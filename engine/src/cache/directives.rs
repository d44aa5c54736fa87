//! Cache-Control directives (RFC 9111 §5.2), parsed without allocating.
//!
//! A shared cache reads both sides: the request's directives say what the
//! client will accept (§5.2.1), the response's what may be stored and for
//! how long (§5.2.2). Unknown directives are ignored (§5.2.3); a directive
//! with a malformed argument is treated as absent, except where ignoring it
//! would make the cache *less* strict: a malformed `max-age` or `s-maxage`
//! counts as 0 (stale at once, §4.2.1 "invalid ... treated as stale"), and
//! `no-cache`/`private` with field names are taken unqualified (the whole
//! response), the conservative reading the RFC allows (§5.2.2.4, §5.2.2.7).

use crate::http::text::{quoted_list, trim};

/// Delta-seconds past this are clamped to it (§1.2.2: at least 2^31).
pub(crate) const DELTA_MAX: u64 = 1 << 31;

/// The directives of one request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    pub(crate) no_cache: bool,
    pub(crate) no_store: bool,
    pub(crate) max_age: Option<u64>,
    /// `max-stale` with no value: any staleness is acceptable.
    pub(crate) max_stale: Option<u64>,
    pub(crate) min_fresh: Option<u64>,
    pub(crate) only_if_cached: bool,
}

/// The directives of one response.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseDirectives {
    pub(crate) no_cache: bool,
    pub(crate) no_store: bool,
    pub(crate) private: bool,
    pub(crate) public: bool,
    pub(crate) must_revalidate: bool,
    pub(crate) proxy_revalidate: bool,
    pub(crate) must_understand: bool,
    pub(crate) max_age: Option<u64>,
    pub(crate) s_maxage: Option<u64>,
    pub(crate) stale_while_revalidate: Option<u64>,
    pub(crate) stale_if_error: Option<u64>,
}

/// One `name[=value]` of a Cache-Control list, value unquoted.
struct Directive<'a> {
    name: &'a [u8],
    value: Option<&'a [u8]>,
}

/// Iterates the directives of one or more Cache-Control field values.
/// Commas inside quoted strings do not split.
fn directives(value: &[u8]) -> impl Iterator<Item = Directive<'_>> {
    quoted_list(value).map(|item| {
        let (name, value) = match item.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let v = trim(&item[eq + 1..]);
                let v = v
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(v);
                (trim(&item[..eq]), Some(v))
            }
            None => (item, None),
        };
        Directive { name, value }
    })
}

/// delta-seconds (§1.2.2): digits only; too large clamps to [`DELTA_MAX`].
fn delta(value: Option<&[u8]>) -> Option<u64> {
    let v = value?;
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in v {
        n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        if n > DELTA_MAX {
            return Some(DELTA_MAX);
        }
    }
    Some(n)
}

impl RequestDirectives {
    /// Parses every Cache-Control value of a request, in order.
    pub(crate) fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> RequestDirectives {
        let mut d = RequestDirectives::default();
        for value in values {
            for dir in directives(value) {
                let name = dir.name;
                if name.eq_ignore_ascii_case(b"no-cache") {
                    d.no_cache = true;
                } else if name.eq_ignore_ascii_case(b"no-store") {
                    d.no_store = true;
                } else if name.eq_ignore_ascii_case(b"max-age") {
                    // A malformed max-age asks for nothing older than 0 s.
                    d.max_age = Some(delta(dir.value).unwrap_or(0));
                } else if name.eq_ignore_ascii_case(b"max-stale") {
                    d.max_stale = match dir.value {
                        None => Some(DELTA_MAX),
                        v => delta(v).or(d.max_stale),
                    };
                } else if name.eq_ignore_ascii_case(b"min-fresh") {
                    d.min_fresh = delta(dir.value).or(d.min_fresh);
                } else if name.eq_ignore_ascii_case(b"only-if-cached") {
                    d.only_if_cached = true;
                }
            }
        }
        d
    }
}

impl ResponseDirectives {
    /// Parses every Cache-Control value of a response, in order.
    pub(crate) fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> ResponseDirectives {
        let mut d = ResponseDirectives::default();
        for value in values {
            for dir in directives(value) {
                let name = dir.name;
                let eq = |s: &[u8]| name.eq_ignore_ascii_case(s);
                if eq(b"no-cache") {
                    d.no_cache = true;
                } else if eq(b"no-store") {
                    d.no_store = true;
                } else if eq(b"private") {
                    d.private = true;
                } else if eq(b"public") {
                    d.public = true;
                } else if eq(b"must-revalidate") {
                    d.must_revalidate = true;
                } else if eq(b"proxy-revalidate") {
                    d.proxy_revalidate = true;
                } else if eq(b"must-understand") {
                    d.must_understand = true;
                } else if eq(b"max-age") {
                    // Several: the most restrictive (§4.2.1 allows treating
                    // conflicting directives as stale; the smallest is safe).
                    let v = delta(dir.value).unwrap_or(0);
                    d.max_age = Some(d.max_age.map_or(v, |old| old.min(v)));
                } else if eq(b"s-maxage") {
                    let v = delta(dir.value).unwrap_or(0);
                    d.s_maxage = Some(d.s_maxage.map_or(v, |old| old.min(v)));
                } else if eq(b"stale-while-revalidate") {
                    d.stale_while_revalidate = delta(dir.value).or(d.stale_while_revalidate);
                } else if eq(b"stale-if-error") {
                    d.stale_if_error = delta(dir.value).or(d.stale_if_error);
                }
            }
        }
        d
    }

    /// Must a stale response be revalidated before use, whatever the
    /// request allows (§5.2.2.2, §5.2.2.8; s-maxage implies it, §5.2.2.10)?
    pub(crate) fn revalidate_when_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: &str) -> RequestDirectives {
        RequestDirectives::parse([v.as_bytes()])
    }

    fn res(v: &str) -> ResponseDirectives {
        ResponseDirectives::parse([v.as_bytes()])
    }

    #[test]
    fn request_directives() {
        let cases: &[(&str, RequestDirectives)] = &[
            ("", RequestDirectives::default()),
            (
                "no-cache, no-store",
                RequestDirectives {
                    no_cache: true,
                    no_store: true,
                    ..Default::default()
                },
            ),
            (
                "max-age=60, min-fresh=5, only-if-cached",
                RequestDirectives {
                    max_age: Some(60),
                    min_fresh: Some(5),
                    only_if_cached: true,
                    ..Default::default()
                },
            ),
            (
                "max-stale",
                RequestDirectives {
                    max_stale: Some(DELTA_MAX),
                    ..Default::default()
                },
            ),
            (
                "MAX-STALE=30 , Max-Age=\"10\"",
                RequestDirectives {
                    max_stale: Some(30),
                    max_age: Some(10),
                    ..Default::default()
                },
            ),
            // Malformed max-age: nothing older than 0 s.
            (
                "max-age=ten",
                RequestDirectives {
                    max_age: Some(0),
                    ..Default::default()
                },
            ),
            ("min-fresh=-1, unknown=1, ,", RequestDirectives::default()),
        ];
        for (value, want) in cases {
            assert_eq!(&req(value), want, "{value:?}");
        }
    }

    #[test]
    fn response_directives() {
        let d = res(
            "public, max-age=300, s-maxage=\"60\", stale-while-revalidate=30, stale-if-error=600",
        );
        assert!(d.public);
        assert_eq!(d.max_age, Some(300));
        assert_eq!(d.s_maxage, Some(60));
        assert_eq!(d.stale_while_revalidate, Some(30));
        assert_eq!(d.stale_if_error, Some(600));
        assert!(
            d.revalidate_when_stale(),
            "s-maxage implies proxy-revalidate"
        );

        // Qualified forms are taken whole; commas inside quotes do not split.
        let d = res("private=\"set-cookie, x-a\", no-cache=\"x-b\", must-revalidate");
        assert!(d.private && d.no_cache && d.must_revalidate);
        assert_eq!(d.max_age, None);

        // Malformed or conflicting lifetimes are read strictly.
        assert_eq!(res("max-age=abc").max_age, Some(0));
        assert_eq!(res("max-age=100, max-age=10").max_age, Some(10));
        assert_eq!(res("max-age=99999999999999").max_age, Some(DELTA_MAX));

        // Several field lines are one list.
        let d = ResponseDirectives::parse([&b"no-store"[..], &b"max-age=5"[..]]);
        assert!(d.no_store);
        assert_eq!(d.max_age, Some(5));
    }
}
