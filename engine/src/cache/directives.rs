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
//!
//! Targeted fields (RFC 9213) direct one class of cache: `CDN-Cache-Control`
//! every CDN, and a field named for ringway (`Ringway-Cache-Control` unless
//! configured otherwise) this cache alone. The most specific one present
//! with a valid, non-empty value wins and `Cache-Control` and `Expires` are
//! then ignored by this cache (§2.2); one that does not parse as a
//! Structured Fields Dictionary (RFC 8941 §3.2) is ignored as if absent
//! (§2.1).

use crate::http::text::{quoted_list, trim};

/// `CDN-Cache-Control` (RFC 9213 §3), lower-case.
pub(crate) const CDN_CACHE_CONTROL: &[u8] = b"cdn-cache-control";

/// Which field the directives a cache obeys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The ringway-targeted field (configured name).
    Targeted,
    /// `CDN-Cache-Control`.
    Cdn,
    /// `Cache-Control` (and `Expires` applies).
    CacheControl,
}

/// The response directives this cache obeys (RFC 9213 §2.2): those of the
/// field named `targeted` (lower-case; empty for none) when its value is
/// valid and non-empty, else `CDN-Cache-Control`'s, else Cache-Control's.
/// `values(name)` gives every value of field `name`, in order.
pub(crate) fn effective<'n, 'a, I>(
    values: impl Fn(&'n [u8]) -> I,
    targeted: &'n [u8],
) -> (ResponseDirectives, Source)
where
    I: Iterator<Item = &'a [u8]>,
{
    let usable = |name: &'n [u8]| {
        let present = values(name).any(|v| !trim(v).is_empty());
        (present && values(name).all(valid_dictionary))
            .then(|| ResponseDirectives::parse(values(name)))
    };
    if !targeted.is_empty() {
        if let Some(d) = usable(targeted) {
            return (d, Source::Targeted);
        }
    }
    if let Some(d) = usable(CDN_CACHE_CONTROL) {
        return (d, Source::Cdn);
    }
    (
        ResponseDirectives::parse(values(b"cache-control")),
        Source::CacheControl,
    )
}

/// Is `v` a Structured Fields Dictionary (RFC 8941 §3.2), or empty (one
/// field line of a list may be)? Inner lists are refused: no cache
/// directive takes one, and a field this cache cannot read is better
/// ignored whole (RFC 9213 §2.1).
pub(crate) fn valid_dictionary(v: &[u8]) -> bool {
    let mut rest = trim(v);
    if rest.is_empty() {
        return true;
    }
    loop {
        let Some(after) = sf_member(rest) else {
            return false;
        };
        rest = after;
        // Parameters: `;key[=bare-item]`.
        while let Some(after) = rest.strip_prefix(b";") {
            let Some(after) = sf_member(trim_start(after)) else {
                return false;
            };
            rest = after;
        }
        rest = trim_start(rest);
        if rest.is_empty() {
            return true;
        }
        let Some(after) = rest.strip_prefix(b",") else {
            return false;
        };
        rest = trim_start(after);
        if rest.is_empty() {
            // A trailing comma is an error (RFC 8941 §4.2.2).
            return false;
        }
    }
}

/// `key[=bare-item]` at the front of `v`; what follows it, or `None` when
/// it is malformed.
fn sf_member(v: &[u8]) -> Option<&[u8]> {
    let rest = sf_key(v)?;
    match rest.strip_prefix(b"=") {
        Some(after) => bare_item(after),
        None => Some(rest),
    }
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`.
fn sf_key(s: &[u8]) -> Option<&[u8]> {
    match s.first() {
        Some(b'a'..=b'z' | b'*') => {}
        _ => return None,
    }
    let end = s
        .iter()
        .position(|&b| !matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*'))
        .unwrap_or(s.len());
    Some(&s[end..])
}

/// An integer, decimal, string, token, byte sequence or boolean.
fn bare_item(s: &[u8]) -> Option<&[u8]> {
    match *s.first()? {
        b'-' | b'0'..=b'9' => {
            let body = s.strip_prefix(b"-").unwrap_or(s);
            let int = body.iter().take_while(|b| b.is_ascii_digit()).count();
            if int == 0 || int > 15 {
                return None;
            }
            let after = &body[int..];
            match after.strip_prefix(b".") {
                Some(frac) => {
                    let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
                    (int <= 12 && (1..=3).contains(&n)).then(|| &frac[n..])
                }
                None => Some(after),
            }
        }
        b'"' => {
            let mut i = 1;
            while i < s.len() {
                match s[i] {
                    b'\\' => match s.get(i + 1) {
                        Some(b'"' | b'\\') => i += 2,
                        _ => return None,
                    },
                    b'"' => return Some(&s[i + 1..]),
                    0x20..=0x7e => i += 1,
                    _ => return None,
                }
            }
            None
        }
        b'?' => match s.get(1) {
            Some(b'0' | b'1') => Some(&s[2..]),
            _ => None,
        },
        b':' => {
            let body = &s[1..];
            let end = body.iter().position(|&b| b == b':')?;
            body[..end]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .then(|| &body[end + 1..])
        }
        b'a'..=b'z' | b'A'..=b'Z' | b'*' => {
            let end = s
                .iter()
                .position(|&b| !(is_tchar(b) || b == b':' || b == b'/'))
                .unwrap_or(s.len());
            Some(&s[end..])
        }
        _ => None,
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

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
    fn structured_dictionaries_of_rfc8941_3_2() {
        for ok in [
            "",
            "max-age=60",
            "max-age=60, no-store",
            "no-cache, private=\"x-a, x-b\", s-maxage=10",
            "a=?1, b=?0, c=1.5, d=tok/en:x, e=:aGVsbG8=:, f=-3",
            "max-age=60;foo=bar;baz",
            "*x=1",
        ] {
            assert!(valid_dictionary(ok.as_bytes()), "{ok:?}");
        }
        for bad in [
            "Max-Age=60",
            "max-age=",
            "max-age=60,",
            ", max-age=60",
            "max-age=60 no-store",
            "max-age=(1 2)",
            "max-age=\"unterminated",
            "max-age=1234567890123456",
            "1max=2",
            "a=?2",
        ] {
            assert!(!valid_dictionary(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn the_most_specific_targeted_field_wins_rfc9213_2_2() {
        type Lines = &'static [(&'static str, &'static str)];
        let pick = |lines: Lines| {
            effective(
                |name: &[u8]| {
                    lines
                        .iter()
                        .filter(move |(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.as_bytes())
                },
                b"ringway-cache-control",
            )
        };
        let (d, from) = pick(&[
            ("cache-control", "max-age=10"),
            ("cdn-cache-control", "max-age=20"),
            ("ringway-cache-control", "max-age=30"),
        ]);
        assert_eq!((d.max_age, from), (Some(30), Source::Targeted));
        let (d, from) = pick(&[
            ("cache-control", "max-age=10"),
            ("cdn-cache-control", "max-age=20"),
        ]);
        assert_eq!((d.max_age, from), (Some(20), Source::Cdn));
        // An invalid or empty targeted field is ignored (§2.1).
        let (d, from) = pick(&[
            ("cache-control", "max-age=10"),
            ("cdn-cache-control", "max-age=20"),
            ("ringway-cache-control", "Max-Age=30"),
        ]);
        assert_eq!((d.max_age, from), (Some(20), Source::Cdn));
        let (d, from) = pick(&[("cache-control", "max-age=10"), ("cdn-cache-control", " ")]);
        assert_eq!((d.max_age, from), (Some(10), Source::CacheControl));
        // A targeted field wins even when it allows less.
        let (d, _) = pick(&[
            ("cache-control", "public, max-age=600"),
            ("cdn-cache-control", "no-store"),
        ]);
        assert!(d.no_store && !d.public && d.max_age.is_none());
        // Several lines are one dictionary; one bad line spoils the field.
        let (d, from) = pick(&[
            ("cdn-cache-control", "max-age=20"),
            ("cdn-cache-control", "stale-if-error=5"),
        ]);
        assert_eq!(
            (d.max_age, d.stale_if_error, from),
            (Some(20), Some(5), Source::Cdn)
        );
        let (_, from) = pick(&[
            ("cdn-cache-control", "max-age=20"),
            ("cdn-cache-control", "oops oops"),
        ]);
        assert_eq!(from, Source::CacheControl);
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
