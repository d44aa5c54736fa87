//! A route's traffic policy: `auth`, `allow-groups`, credentials and the
//! consumer header, rate and concurrency limits, address rules.
//!
//! These keys refer to the `[[authenticators]]` and `[[consumers]]`
//! sections, and several only mean something next to another key, which is
//! where most of the rules come from: `allow-groups`, a `consumer` limit
//! key, `forward-credentials` and `consumer-header` need `auth` (without it
//! no request has a consumer), the last two also an upstream to send
//! anything to, and `rate-limit-headers` needs a rate limit to describe. As
//! elsewhere in this crate, a setting that could not take effect is an
//! error, not a silent no-op.
//!
//! A group in `allow-groups` that no consumer belongs to is only a warning:
//! it may be on its way in a later edit, and it lets nobody in meanwhile,
//! which is the safe side.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

use toml::Spanned;

use super::{defaults, integer, ip, text};
use crate::error::Reporter;
use crate::model::{ConcurrencyLimit, IpRules, LimitKey, RateLimit};
use crate::raw::{RawConcurrency, RawRateLimit, RawRoute, Scalar};
use crate::units;

/// `burst` bounds: the same ceiling as a rate's count.
const BURST: RangeInclusive<i64> = 1..=1_000_000_000;
/// `max-keys` bounds: each key costs a bucket (a few dozen bytes) per
/// worker, so ten million keys is already hundreds of MiB.
const MAX_KEYS: RangeInclusive<i64> = 1..=10_000_000;
/// Concurrency `max` bounds.
const CONCURRENCY_MAX: RangeInclusive<i64> = 1..=1_000_000;

/// What is needed from the rest of the config.
pub(super) struct Lookup<'a> {
    /// Every `[[authenticators]]` element with a name, valid or not, so a
    /// broken authenticator is not also reported as missing by its routes.
    pub(super) authenticators: HashMap<&'a str, usize>,
    /// Every group any consumer lists.
    pub(super) groups: HashSet<&'a str>,
}

/// The policy fields of a `Route`.
pub(super) struct Policy {
    pub(super) auth: Vec<usize>,
    pub(super) allow_groups: Vec<String>,
    pub(super) forward_credentials: bool,
    pub(super) consumer_header: String,
    pub(super) rate_limit_headers: bool,
    pub(super) consumer_metrics: bool,
    pub(super) rate_limits: Vec<RateLimit>,
    pub(super) concurrency: Option<ConcurrencyLimit>,
    pub(super) ip_rules: IpRules,
}

/// `proxies` is whether the route proxies, `None` when its action is
/// unclear (reported elsewhere), and then proxy-only keys are not judged.
pub(super) fn policy(
    raw: &RawRoute,
    path: &str,
    proxies: Option<bool>,
    lookup: &Lookup<'_>,
    r: &mut Reporter<'_>,
) -> Option<Policy> {
    // Judged by what is written, so an `auth` naming a missing
    // authenticator does not also make `allow-groups` "need auth".
    let has_auth = raw.auth.as_ref().is_some_and(|a| !a.get_ref().is_empty());
    let auth = auth(raw, path, lookup, r);
    let allow_groups = allow_groups(raw, path, has_auth, lookup, r);

    let needs_auth_and_upstream =
        |key: &str, span: std::ops::Range<usize>, r: &mut Reporter<'_>| {
            let problem = if !has_auth {
                Some("applies only to routes with `auth`: without it a request has no consumer")
            } else if proxies == Some(false) {
                Some(super::route::PROXY_ONLY)
            } else {
                None
            };
            match problem {
                Some(message) => {
                    r.error(format!("{path}.{key}"), Some(span), message);
                    false
                }
                None => true,
            }
        };
    let forward_credentials = match &raw.forward_credentials {
        None => Some(false),
        Some(v) => {
            needs_auth_and_upstream("forward-credentials", v.span(), r).then(|| *v.get_ref())
        }
    };
    let consumer_header = match &raw.consumer_header {
        None => Some(defaults::CONSUMER_HEADER.to_owned()),
        Some(h) => needs_auth_and_upstream("consumer-header", h.span(), r)
            .then(|| {
                text::upstream_header(h.get_ref())
                    .map_err(|message| {
                        r.error(format!("{path}.consumer-header"), Some(h.span()), message)
                    })
                    .ok()
            })
            .flatten(),
    };

    let rate_limits = match &raw.rate_limits {
        None => Some(Vec::new()),
        Some(list) => rate_limits(list.get_ref(), path, has_auth, r),
    };
    let has_rate_limits = raw
        .rate_limits
        .as_ref()
        .is_some_and(|l| !l.get_ref().is_empty());
    let rate_limit_headers = match &raw.rate_limit_headers {
        None => Some(false),
        Some(v) if !has_rate_limits => {
            r.error(
                format!("{path}.rate-limit-headers"),
                Some(v.span()),
                "applies only to routes with [[routes.rate-limits]], which the headers describe",
            );
            None
        }
        Some(v) => Some(*v.get_ref()),
    };
    let consumer_metrics = match &raw.consumer_metrics {
        None => Some(false),
        Some(v) if !has_auth && *v.get_ref() => {
            r.error(
                format!("{path}.consumer-metrics"),
                Some(v.span()),
                "applies only to routes with `auth`, whose consumers it counts",
            );
            None
        }
        Some(v) => Some(*v.get_ref()),
    };
    let concurrency = match &raw.concurrency {
        None => Some(None),
        Some(c) => concurrency(c, &format!("{path}.concurrency"), has_auth, r).map(Some),
    };

    let allow = raw.ip_allow.as_ref().map_or(Some(Vec::new()), |l| {
        ip::networks(l.get_ref(), &format!("{path}.ip-allow"), r)
    });
    let deny = raw.ip_deny.as_ref().map_or(Some(Vec::new()), |l| {
        ip::networks(l.get_ref(), &format!("{path}.ip-deny"), r)
    });

    Some(Policy {
        auth: auth?,
        allow_groups: allow_groups?,
        forward_credentials: forward_credentials?,
        consumer_header: consumer_header?,
        rate_limit_headers: rate_limit_headers?,
        consumer_metrics: consumer_metrics?,
        rate_limits: rate_limits?,
        concurrency: concurrency?,
        ip_rules: IpRules {
            allow: allow?,
            deny: deny?,
        },
    })
}

fn auth(
    raw: &RawRoute,
    path: &str,
    lookup: &Lookup<'_>,
    r: &mut Reporter<'_>,
) -> Option<Vec<usize>> {
    let list = raw.auth.as_ref().map_or(&[][..], |l| l.get_ref());
    let mut out: Vec<usize> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, name) in list.iter().enumerate() {
        let key = format!("{path}.auth[{j}]");
        let Some(&index) = lookup.authenticators.get(name.get_ref().as_str()) else {
            let mut message = format!("no authenticator named {:?}", name.get_ref());
            if lookup.authenticators.is_empty() {
                message.push_str(" (no [[authenticators]] are defined)");
            } else {
                let mut known: Vec<&str> = lookup.authenticators.keys().copied().collect();
                known.sort_unstable();
                message.push_str(&format!("; defined authenticators: {}", known.join(", ")));
            }
            r.error(key, Some(name.span()), message);
            ok = false;
            continue;
        };
        if let Some(first) = out.iter().position(|&seen| seen == index) {
            r.error(
                key,
                Some(name.span()),
                format!("{:?} is already listed as auth[{first}]", name.get_ref()),
            );
            ok = false;
            continue;
        }
        out.push(index);
    }
    ok.then_some(out)
}

fn allow_groups(
    raw: &RawRoute,
    path: &str,
    has_auth: bool,
    lookup: &Lookup<'_>,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    let Some(list) = &raw.allow_groups else {
        return Some(Vec::new());
    };
    if !has_auth && !list.get_ref().is_empty() {
        r.error(
            format!("{path}.allow-groups"),
            Some(list.span()),
            "needs `auth`: without it a request has no consumer, so it is in no group",
        );
        return None;
    }
    group_list(list, &format!("{path}.allow-groups"), &lookup.groups, r)
}

/// An `allow-groups` list at `path`, of a route or an `[[ai-models]]`:
/// names, none twice; a group no consumer is in (not in `groups`) lets
/// nobody in, which is warned about.
pub(super) fn group_list(
    list: &Spanned<Vec<Spanned<String>>>,
    path: &str,
    groups: &HashSet<&str>,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(list.get_ref().len());
    let mut ok = true;
    for (j, g) in list.get_ref().iter().enumerate() {
        let key = format!("{path}[{j}]");
        let problem = text::name(g.get_ref()).err().or_else(|| {
            out.iter()
                .position(|seen| seen == g.get_ref())
                .map(|first| {
                    format!(
                        "{:?} is already listed as allow-groups[{first}]",
                        g.get_ref()
                    )
                })
        });
        if let Some(message) = problem {
            r.error(key, Some(g.span()), message);
            ok = false;
            continue;
        }
        if !groups.contains(g.get_ref().as_str()) {
            r.warn(
                key,
                Some(g.span()),
                format!(
                    "no consumer is in group {:?}, so it lets nobody in",
                    g.get_ref()
                ),
            );
        }
        out.push(g.get_ref().clone());
    }
    ok.then_some(out)
}

/// `"route"`, `"client-ip"`, `"consumer"` or `"header:NAME"`.
pub(crate) fn limit_key(text: &str) -> Result<LimitKey, String> {
    match text {
        "route" => Ok(LimitKey::Route),
        "client-ip" => Ok(LimitKey::ClientIp),
        "consumer" => Ok(LimitKey::Consumer),
        _ => match text.strip_prefix("header:") {
            Some(name) => text::header_token(name)
                .map(LimitKey::Header)
                .map_err(|e| format!("{text:?}: {e}")),
            None => Err(format!(
                "expected \"route\", \"client-ip\", \"consumer\" or \"header:NAME\", found {text:?}"
            )),
        },
    }
}

/// The `key` of a limit table at `path`; `None` when missing or bad.
fn key(
    raw: Option<&Spanned<String>>,
    path: &str,
    element: std::ops::Range<usize>,
    has_auth: bool,
    r: &mut Reporter<'_>,
) -> Option<LimitKey> {
    let Some(k) = raw else {
        r.error(
            format!("{path}.key"),
            Some(element),
            "missing; say what to count requests by: \"route\", \"client-ip\", \"consumer\" \
             or \"header:NAME\"",
        );
        return None;
    };
    match limit_key(k.get_ref()) {
        Ok(LimitKey::Consumer) if !has_auth => {
            r.error(
                format!("{path}.key"),
                Some(k.span()),
                "\"consumer\" needs `auth` on the route: without it a request has no consumer",
            );
            None
        }
        Ok(key) => Some(key),
        Err(message) => {
            r.error(format!("{path}.key"), Some(k.span()), message);
            None
        }
    }
}

fn max_keys(raw: Option<&Spanned<Scalar>>, path: &str, r: &mut Reporter<'_>) -> Option<usize> {
    match raw {
        None => Some(defaults::MAX_KEYS),
        Some(v) => integer(v, &format!("{path}.max-keys"), MAX_KEYS, r)
            .and_then(|n| usize::try_from(n).ok()),
    }
}

fn rate_limits(
    list: &[Spanned<RawRateLimit>],
    path: &str,
    has_auth: bool,
    r: &mut Reporter<'_>,
) -> Option<Vec<RateLimit>> {
    let mut out: Vec<RateLimit> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, entry) in list.iter().enumerate() {
        let limit_path = format!("{path}.rate-limits[{j}]");
        let l = entry.get_ref();
        let key = key(l.key.as_ref(), &limit_path, entry.span(), has_auth, r);
        let rate = match &l.rate {
            None => {
                r.error(
                    format!("{limit_path}.rate"),
                    Some(entry.span()),
                    "missing; write a count per period, e.g. rate = \"100/s\"",
                );
                None
            }
            Some(v) => rate(v, &format!("{limit_path}.rate"), r),
        };
        let burst = match &l.burst {
            None => rate.map(|(count, _)| count),
            Some(v) => integer(v, &format!("{limit_path}.burst"), BURST, r)
                .and_then(|n| u64::try_from(n).ok()),
        };
        let max_keys = max_keys(l.max_keys.as_ref(), &limit_path, r);
        let (Some(key), Some((count, period)), Some(burst), Some(max_keys)) =
            (key, rate, burst, max_keys)
        else {
            ok = false;
            continue;
        };
        let limit = RateLimit {
            key,
            count,
            period,
            burst,
            max_keys,
        };
        if let Some(first) = out.iter().position(|seen| *seen == limit) {
            r.error(
                limit_path,
                Some(entry.span()),
                format!("the same limit as rate-limits[{first}]; remove one"),
            );
            ok = false;
            continue;
        }
        out.push(limit);
    }
    ok.then_some(out)
}

fn rate(
    value: &Spanned<Scalar>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<(u64, std::time::Duration)> {
    let parsed = match value.get_ref() {
        Scalar::Str(s) => units::parse_rate(s),
        Scalar::Int(n) => Err(format!(
            "a rate needs a period: write \"{n}/s\", \"{n}/m\", \"{n}/h\" or \"{n}/d\""
        )),
        _ => Err("expected a rate such as \"100/s\" or \"5000/h\"".to_owned()),
    };
    parsed
        .map_err(|message| r.error(path, Some(value.span()), message))
        .ok()
}

fn concurrency(
    raw: &Spanned<RawConcurrency>,
    path: &str,
    has_auth: bool,
    r: &mut Reporter<'_>,
) -> Option<ConcurrencyLimit> {
    let c = raw.get_ref();
    let key = key(c.key.as_ref(), path, raw.span(), has_auth, r);
    let max = match &c.max {
        None => {
            r.error(
                format!("{path}.max"),
                Some(raw.span()),
                "missing; set how many requests per key may be in flight, e.g. max = 100",
            );
            None
        }
        Some(v) => integer(v, &format!("{path}.max"), CONCURRENCY_MAX, r)
            .and_then(|n| u64::try_from(n).ok()),
    };
    let status = match &c.status {
        None => Some(defaults::CONCURRENCY_STATUS),
        Some(v) => match v.get_ref() {
            Scalar::Int(429) => Some(429),
            Scalar::Int(503) => Some(503),
            Scalar::Str(s) if matches!(s.trim(), "429" | "503") => {
                r.error(
                    format!("{path}.status"),
                    Some(v.span()),
                    format!("write the number without quotes: {}", s.trim()),
                );
                None
            }
            _ => {
                r.error(
                    format!("{path}.status"),
                    Some(v.span()),
                    "expected 429 (Too Many Requests) or 503 (Service Unavailable)",
                );
                None
            }
        },
    };
    let max_keys = max_keys(c.max_keys.as_ref(), path, r);
    Some(ConcurrencyLimit {
        key: key?,
        max: max?,
        status: status?,
        max_keys: max_keys?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_keys() {
        let ok = [
            ("route", LimitKey::Route),
            ("client-ip", LimitKey::ClientIp),
            ("consumer", LimitKey::Consumer),
            ("header:X-Tenant", LimitKey::Header("x-tenant".into())),
            ("header:host", LimitKey::Header("host".into())),
        ];
        for (text, want) in ok {
            assert_eq!(limit_key(text), Ok(want), "{text:?}");
        }
        let bad = [
            ("", "expected \"route\""),
            ("ip", "expected \"route\", \"client-ip\""),
            ("Route", "found \"Route\""),
            ("header:", "empty header name"),
            ("header:x tenant", "contains ' '"),
            ("header", "expected"),
        ];
        for (text, fragment) in bad {
            let e = limit_key(text).expect_err(text);
            assert!(e.contains(fragment), "{text:?}: {e}");
        }
    }
}
