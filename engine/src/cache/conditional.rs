//! Conditional requests answered from the cache (RFC 9110 §13, RFC 9111
//! §4.3.2): a client that already holds the stored representation gets 304
//! instead of the body.
//!
//! Only the preconditions a cache evaluates for GET and HEAD are here:
//! If-None-Match (weak comparison, §13.1.2) and, when that is absent,
//! If-Modified-Since (§13.1.3), in the order of §13.2.2.

use crate::http::text::{quoted_list, trim};

/// The stored response's validators.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Validators<'a> {
    /// The ETag field value, e.g. `"abc"` or `W/"abc"`.
    pub(crate) etag: Option<&'a [u8]>,
    /// Last-Modified, seconds since the epoch.
    pub(crate) last_modified: Option<u64>,
}

/// The request's preconditions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Preconditions<'a> {
    /// If-None-Match field value(s), joined with commas.
    pub(crate) if_none_match: Option<&'a [u8]>,
    /// If-Modified-Since, seconds since the epoch, when valid.
    pub(crate) if_modified_since: Option<u64>,
}

/// True when a GET or HEAD for the stored response should get 304 Not
/// Modified (RFC 9110 §13.2.2, steps 3 and 4).
pub(crate) fn not_modified(pre: &Preconditions<'_>, stored: &Validators<'_>) -> bool {
    if let Some(list) = pre.if_none_match {
        // Step 3: If-None-Match decides alone when present; `*` matches
        // any current representation, and a stored one is.
        if trim(list) == b"*" {
            return true;
        }
        let Some(etag) = stored.etag else {
            return false;
        };
        return quoted_list(list).any(|t| weak_eq(t, etag));
    }
    // Step 4: If-Modified-Since, only without If-None-Match.
    match (pre.if_modified_since, stored.last_modified) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Weak comparison (§8.8.3.2): the opaque tags match, W/ ignored.
fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    fn opaque(t: &[u8]) -> &[u8] {
        let t = trim(t);
        t.strip_prefix(b"W/").unwrap_or(t)
    }
    let (a, b) = (opaque(a), opaque(b));
    a.len() >= 2 && a.first() == Some(&b'"') && a.last() == Some(&b'"') && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_comparison() {
        let stored = Validators {
            etag: Some(b"\"v2\""),
            last_modified: Some(1000),
        };
        let inm = |v: &'static str| Preconditions {
            if_none_match: Some(v.as_bytes()),
            if_modified_since: None,
        };
        let ims = |t: u64| Preconditions {
            if_none_match: None,
            if_modified_since: Some(t),
        };
        for (pre, want) in [
            (inm("\"v2\""), true),
            (inm("W/\"v2\""), true),
            (inm("\"v1\", \"v2\""), true),
            (inm("\"v1\""), false),
            (inm("*"), true),
            (inm("\"a,b\", \"v2\""), true),
            (ims(1000), true),
            (ims(2000), true),
            (ims(999), false),
            (Preconditions::default(), false),
        ] {
            assert_eq!(not_modified(&pre, &stored), want, "{pre:?}");
        }
        // If-None-Match decides alone: a date that would match is ignored.
        let both = Preconditions {
            if_none_match: Some(b"\"v1\""),
            if_modified_since: Some(5000),
        };
        assert!(!not_modified(&both, &stored));
        // No stored ETag: only `*` matches.
        let no_etag = Validators {
            etag: None,
            last_modified: Some(1000),
        };
        assert!(not_modified(&inm("*"), &no_etag));
        assert!(!not_modified(&inm("\"v2\""), &no_etag));
    }
}
