//! Raw config → typed [`Config`], collecting every error on the way.
//!
//! This is the second stage: `parse` has already reported syntax, key and
//! type errors; here each value is checked for meaning (units, ranges,
//! addresses, references between sections, uniqueness) and converted.
//! Nothing stops at the first problem: each check reports and yields `None`,
//! later checks carry on with what is left, and a [`Config`] is assembled
//! only when every piece converted. Checks that need a value which failed
//! stay silent rather than pile a second error onto the first.
//!
//! Global settings, `[limits]` and listeners live here; upstreams (their
//! servers, balancing, health checks) in [`upstream`], `[resolver]` in
//! [`resolver`]; routes,
//! which depend on all of them, in [`route`], and their traffic policy in
//! [`policy`]; `[admin]`, which is checked against the listeners, in
//! [`admin`]; `[cache]` and each route's `[routes.cache]` in [`cache`];
//! `[access-log]` in [`log`]; `[client-ip]` and `[ip-rules]` in [`ip`];
//! `[[consumers]]` in [`consumer`]; `[[authenticators]]` in [`auth`]; a
//! route's `[routes.retry]` in [`retry`]; `[routes.cors]` in [`cors`]; the
//! TLS of listeners, upstreams and routes in [`tls`]; a route's
//! `upgrades` and tunnel bounds in [`tunnel`]; `[[ai-providers]]`,
//! `[[ai-models]]` and a route's `[routes.ai]` in [`ai`]; checks on single
//! strings in [`text`].

mod admin;
mod ai;
mod auth;
mod cache;
mod compression;
mod consumer;
mod cors;
mod ip;
mod log;
mod policy;
mod resolver;
mod retry;
mod route;
mod text;
mod tls;
mod transform;
mod tunnel;
mod upstream;

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::Spanned;

use crate::error::Reporter;
use crate::model::{
    Config, ConnectionBalance, Driver, EncodedSlashes, ErrorFormat, Limits, Listener, Metrics,
    UnderscoresInHeaders, Workers,
};
use crate::raw::{Item, RawDocument, RawLimits, RawListener, Scalar};
use crate::units::{self, format_duration};

/// Defaults for every key that has one. `example.toml` documents the same
/// values, and a test holds the two together.
mod defaults {
    use std::time::Duration;

    pub(super) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
    pub(super) const MAX_TARGET_LENGTH: u64 = 8 << 10;
    pub(super) const MAX_HEAD_SIZE: u64 = 32 << 10;
    pub(super) const MAX_HEADERS: i64 = 100;
    pub(super) const MAX_BODY_SIZE: u64 = 1 << 30;
    pub(super) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub(super) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
    pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    pub(super) const RESPONSE_HEAD_TIMEOUT: Duration = Duration::from_secs(30);
    pub(super) const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(30);
    pub(super) const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub(super) const UPSTREAM_MAX_IDLE: i64 = 64;
    pub(super) const MAX_CONNECTIONS: i64 = 65_536;
    pub(super) const API_KEY_HEADER: &str = "x-api-key";
    pub(super) const BASIC_REALM: &str = "ringway";
    pub(super) const BASIC_CACHE_SIZE: usize = 1024;
    pub(super) const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);
    pub(super) const JWT_LEEWAY: Duration = Duration::from_secs(30);
    pub(super) const JWT_CONSUMER_CLAIM: &str = "sub";
    pub(super) const JWT_CACHE_SIZE: usize = 4096;
    pub(super) const CONSUMER_HEADER: &str = "x-consumer";
    pub(super) const MAX_KEYS: usize = 100_000;
    pub(super) const CONCURRENCY_STATUS: u16 = 503;
    pub(super) const CACHE_SIZE: usize = 64 << 20;
    pub(super) const CACHE_MAX_ENTRY_SIZE: usize = 1 << 20;
    pub(super) const CACHE_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
    pub(super) const CACHE_TARGETED_FIELD: &str = "ringway-cache-control";
    pub(super) const ACCESS_LOG_QUEUE: i64 = 8192;
    pub(super) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    pub(super) const TLS_SESSION_CACHE: usize = 4096;
    pub(super) const TLS_TICKET_LIFETIME: Duration = Duration::from_secs(6 * 3600);
    pub(super) const TLS_SUBJECT_HEADER: &str = "x-client-subject";
    pub(super) const QUEUE_SIZE: u32 = 0;
    pub(super) const QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
    pub(super) const SLOW_START: Duration = Duration::ZERO;
    pub(super) const RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
    pub(super) const CHECK_PATH: &str = "/";
    pub(super) const CHECK_INTERVAL: Duration = Duration::from_secs(5);
    pub(super) const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
    pub(super) const HEALTHY_THRESHOLD: u32 = 2;
    pub(super) const UNHEALTHY_THRESHOLD: u32 = 3;
    /// `on` of a `[routes.retry]` table that does not say: the failures
    /// after which a server most likely did not process the request.
    pub(super) const RETRY_ON: &[&str] = &[
        "connect-failure",
        "reset-before-response",
        "502",
        "503",
        "504",
    ];
}

/// `workers = N` bounds. 1024 is far above any core count ringway targets,
/// and low enough to catch a stray extra digit.
const WORKERS: RangeInclusive<i64> = 1..=1024;
/// `max-headers` bounds: RFC 9110 sets no limit; 512 is several times what
/// real clients send and keeps the per-request header array small.
const MAX_HEADERS: RangeInclusive<i64> = 1..=512;
/// `max-head-size` ceiling: a head is buffered whole per connection, so
/// this bounds per-connection memory before any body is read.
const MAX_HEAD_SIZE_CEILING: u64 = 1 << 20;
/// `upstream-max-idle` bounds; 0 turns pooling off.
const UPSTREAM_MAX_IDLE: RangeInclusive<i64> = 0..=10_000;
/// `max-connections` bounds, in `[limits]` and per upstream: 0 would
/// refuse every connection (an upstream without a cap leaves the key out);
/// ten million is past what one host's descriptors and buffers hold, and
/// low enough to catch a stray extra digit.
const MAX_CONNECTIONS: RangeInclusive<i64> = 1..=10_000_000;

/// Validates a parsed document. Returns `Some` only when nothing was
/// reported (by `parse` or here).
pub(crate) fn validate(doc: RawDocument, r: &mut Reporter<'_>) -> Option<Config> {
    let workers = workers(doc.workers.as_ref(), r);
    let driver = driver(doc.driver.as_ref(), r);
    let connection_balance = connection_balance(doc.connection_balance.as_ref(), r);
    // Zero is allowed: it means "close connections at once on shutdown".
    let drain_timeout = doc
        .drain_timeout
        .as_ref()
        .map_or(Some(defaults::DRAIN_TIMEOUT), |v| {
            duration(v, "drain-timeout", AllowZero::Yes, r)
        });
    let limits = limits(doc.limits.as_ref(), r);
    let listeners = listeners(&doc.listeners.items, r);
    let admin = admin::admin(doc.admin.as_ref(), listeners.as_deref(), r);
    let cache = cache::cache(doc.cache.as_ref(), r);
    let metrics = Metrics {
        enabled: doc
            .metrics
            .as_ref()
            .and_then(|m| m.get_ref().enabled)
            .unwrap_or(true),
    };
    let access_log = log::access_log(doc.access_log.as_ref(), r);
    let resolver = resolver::resolver(doc.resolver.as_ref(), r);
    let upstreams = upstream::upstreams(&doc.upstreams.items, r);

    if doc.listeners.items.is_empty() && !doc.listeners.malformed {
        r.error(
            "listeners",
            doc.listeners.span.clone(),
            "at least one [[listeners]] table is required, e.g. address = \"127.0.0.1:8080\"",
        );
    }
    if doc.routes.items.is_empty() && !doc.routes.malformed {
        r.error(
            "routes",
            doc.routes.span.clone(),
            "at least one [[routes]] table is required",
        );
    }

    let client_ip = ip::client_ip(doc.client_ip.as_ref(), r);
    let ip_rules = ip::ip_rules(doc.ip_rules.as_ref(), r);
    let consumers = consumer::consumers(&doc.consumers.items, r);
    let authenticators = auth::authenticators(&doc.authenticators.items, r);
    let ai_providers = ai::ai_providers(&doc.ai_providers.items, &doc.upstreams.items, r);
    let ai_models = ai::ai_models(
        &doc.ai_models.items,
        &doc.ai_providers.items,
        &doc.consumers.items,
        r,
    );

    let refs = route::Refs {
        limits: limits.as_ref(),
        cache: cache.as_ref(),
        upstreams: &doc.upstreams.items,
        listeners: &doc.listeners.items,
        authenticators: &doc.authenticators.items,
        consumers: &doc.consumers.items,
        ai_models: &doc.ai_models.items,
    };
    let routes = route::routes(&doc.routes.items, &refs, r);

    if r.has_errors() {
        return None;
    }
    Some(Config {
        workers: workers?,
        driver: driver?,
        connection_balance: connection_balance?,
        drain_timeout: drain_timeout?,
        limits: limits?,
        admin: admin?,
        cache: cache?,
        metrics,
        access_log: access_log?,
        listeners: listeners?,
        resolver: resolver?,
        upstreams: upstreams?,
        routes: routes?,
        client_ip: client_ip?,
        ip_rules: ip_rules?,
        consumers: consumers?,
        authenticators: authenticators?,
        ai_providers: ai_providers?,
        ai_models: ai_models?,
        // Filled in from the reporter once validation is over.
        warnings: Vec::new(),
    })
}

fn driver(value: Option<&Spanned<String>>, r: &mut Reporter<'_>) -> Option<Driver> {
    let Some(value) = value else {
        return Some(Driver::default());
    };
    match value.get_ref().as_str() {
        "epoll" => Some(Driver::Epoll),
        "io_uring" => Some(Driver::IoUring),
        other => {
            r.error(
                "driver",
                Some(value.span()),
                format!("expected \"epoll\" or \"io_uring\", found {other:?}"),
            );
            None
        }
    }
}

fn connection_balance(
    value: Option<&Spanned<String>>,
    r: &mut Reporter<'_>,
) -> Option<ConnectionBalance> {
    let Some(value) = value else {
        return Some(ConnectionBalance::default());
    };
    match value.get_ref().as_str() {
        "hash" => Some(ConnectionBalance::Hash),
        "cpu" => Some(ConnectionBalance::Cpu),
        other => {
            r.error(
                "connection-balance",
                Some(value.span()),
                format!("expected \"hash\" or \"cpu\", found {other:?}"),
            );
            None
        }
    }
}

fn workers(value: Option<&Spanned<Scalar>>, r: &mut Reporter<'_>) -> Option<Workers> {
    let Some(value) = value else {
        return Some(Workers::Auto);
    };
    let parsed = match value.get_ref() {
        Scalar::Str(s) if s == "auto" => Some(Workers::Auto),
        Scalar::Int(n) if WORKERS.contains(&i64::try_from(*n).unwrap_or(0)) => usize::try_from(*n)
            .ok()
            .and_then(NonZeroUsize::new)
            .map(Workers::Count),
        _ => None,
    };
    if parsed.is_none() {
        r.error(
            "workers",
            Some(value.span()),
            format!(
                "expected \"auto\" or a number of workers from {} to {}, found {}",
                WORKERS.start(),
                WORKERS.end(),
                show(value.get_ref())
            ),
        );
    }
    parsed
}

/// How a scalar looked in the file, for messages.
pub(super) fn show(value: &Scalar) -> String {
    match value {
        Scalar::Str(s) => format!("{s:?}"),
        Scalar::Int(n) => n.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }
}

/// Whether a duration may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AllowZero {
    Yes,
    No,
}

/// A duration value such as `"10s"`. Reports and returns `None` when bad.
pub(super) fn duration(
    value: &Spanned<Scalar>,
    path: &str,
    zero: AllowZero,
    r: &mut Reporter<'_>,
) -> Option<Duration> {
    let parsed = match value.get_ref() {
        Scalar::Str(s) => units::parse_duration(s),
        Scalar::Int(n) => Err(format!(
            "a duration needs a unit: write \"{n}s\" or \"{n}ms\" (units: {})",
            units::DURATION_UNITS
        )),
        other => Err(format!(
            "expected a duration such as \"10s\" or \"250ms\", found {}",
            show(other)
        )),
    };
    match parsed {
        Ok(d) if d.is_zero() && zero == AllowZero::No => {
            r.error(path, Some(value.span()), "must be greater than zero");
            None
        }
        Ok(d) => Some(d),
        Err(message) => {
            r.error(path, Some(value.span()), message);
            None
        }
    }
}

/// A duration within `bounds`; zero only when `bounds` starts at zero.
pub(super) fn bounded_duration(
    value: &Spanned<Scalar>,
    path: &str,
    bounds: RangeInclusive<Duration>,
    r: &mut Reporter<'_>,
) -> Option<Duration> {
    let zero = if bounds.start().is_zero() {
        AllowZero::Yes
    } else {
        AllowZero::No
    };
    let d = duration(value, path, zero, r)?;
    if !bounds.contains(&d) {
        r.error(
            path,
            Some(value.span()),
            format!(
                "must be from {} to {}, found {}",
                format_duration(*bounds.start()),
                format_duration(*bounds.end()),
                format_duration(d)
            ),
        );
        return None;
    }
    Some(d)
}

/// An optional duration key within `bounds`, `default` when left out.
pub(super) fn duration_or(
    value: Option<&Spanned<Scalar>>,
    path: &str,
    bounds: RangeInclusive<Duration>,
    default: Duration,
    r: &mut Reporter<'_>,
) -> Option<Duration> {
    value.map_or(Some(default), |v| bounded_duration(v, path, bounds, r))
}

/// An optional integer key within `range`, `default` when left out.
pub(super) fn integer_or<T: TryFrom<i64>>(
    value: Option<&Spanned<Scalar>>,
    path: &str,
    range: RangeInclusive<i64>,
    default: T,
    r: &mut Reporter<'_>,
) -> Option<T> {
    match value {
        None => Some(default),
        Some(v) => integer(v, path, range, r).and_then(|n| T::try_from(n).ok()),
    }
}

/// A list of values `parse` converts, none twice (as converted, so
/// `"10.0.0.2"` and `"10.0.0.2:53"` are one nameserver). Each bad or
/// repeated element is reported at `path[j]`, an empty list at `path` with
/// the message `empty` unless that is `None`; `None` when anything was.
pub(super) fn unique_list<S, T: PartialEq + fmt::Display>(
    list: &Spanned<Vec<Spanned<S>>>,
    path: &str,
    empty: Option<&str>,
    parse: impl Fn(&S) -> Result<T, String>,
    r: &mut Reporter<'_>,
) -> Option<Vec<T>> {
    if let Some(message) = empty.filter(|_| list.get_ref().is_empty()) {
        r.error(path, Some(list.span()), message);
        return None;
    }
    let key = path.rsplit('.').next().unwrap_or(path);
    let mut out: Vec<T> = Vec::with_capacity(list.get_ref().len());
    let mut ok = true;
    for (j, v) in list.get_ref().iter().enumerate() {
        let problem = match parse(v.get_ref()) {
            Err(message) => Some(message),
            Ok(value) => match out.iter().position(|seen| *seen == value) {
                Some(first) => Some(format!("{value} is already listed as {key}[{first}]")),
                None => {
                    out.push(value);
                    None
                }
            },
        };
        if let Some(message) = problem {
            r.error(format!("{path}[{j}]"), Some(v.span()), message);
            ok = false;
        }
    }
    ok.then_some(out)
}

/// One side of a rule between two durations of a table: its key, its
/// value (`None` when it failed, and the rule is then not judged) and the
/// value as written (`None` when it is the default).
pub(super) struct Side<'a> {
    pub(super) key: &'static str,
    pub(super) value: Option<Duration>,
    pub(super) written: Option<&'a Spanned<Scalar>>,
}

/// How the first of two durations must stand to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// Strictly below it.
    Below,
    /// At or above it.
    AtLeast,
}

/// Checks that `subject` stands in `order` to `other`, both keys of the
/// table at `path`; `why` ends the message. Reported at `subject` when it
/// was written, else at `other`, whose value made the default no longer
/// fit. Returns whether the rule holds (or could not be judged).
pub(super) fn ordered(
    path: &str,
    subject: &Side<'_>,
    order: Order,
    other: &Side<'_>,
    why: &str,
    r: &mut Reporter<'_>,
) -> bool {
    let (Some(a), Some(b)) = (subject.value, other.value) else {
        return true;
    };
    let (holds, relation) = match order {
        Order::Below => (a < b, "less than"),
        Order::AtLeast => (a >= b, "at least"),
    };
    if holds {
        return true;
    }
    let (at, from) = match (subject.written, other.written) {
        (None, Some(o)) => ((other.key, Some(o.span())), ", the default"),
        (s, _) => ((subject.key, s.map(Spanned::span)), ""),
    };
    r.error(
        format!("{path}.{}", at.0),
        at.1,
        format!(
            "{} ({}{from}) must be {relation} {} ({}){why}",
            subject.key,
            format_duration(a),
            other.key,
            format_duration(b)
        ),
    );
    false
}

/// A size value: `"64KiB"` or an integer number of bytes.
pub(super) fn size(value: &Spanned<Scalar>, path: &str, r: &mut Reporter<'_>) -> Option<u64> {
    let parsed = match value.get_ref() {
        Scalar::Str(s) => units::parse_size(s),
        Scalar::Int(n) => u64::try_from(*n).map_err(|_| {
            if *n < 0 {
                "must not be negative".to_owned()
            } else {
                "is too large".to_owned()
            }
        }),
        other => Err(format!(
            "expected a size such as \"64KiB\" or a number of bytes, found {}",
            show(other)
        )),
    };
    parsed
        .map_err(|message| r.error(path, Some(value.span()), message))
        .ok()
}

/// An integer value within `range`.
pub(super) fn integer(
    value: &Spanned<Scalar>,
    path: &str,
    range: RangeInclusive<i64>,
    r: &mut Reporter<'_>,
) -> Option<i64> {
    match value.get_ref() {
        Scalar::Int(n) => {
            if let Some(n) = i64::try_from(*n).ok().filter(|n| range.contains(n)) {
                return Some(n);
            }
        }
        Scalar::Str(s) if s.trim().parse::<i64>().is_ok() => {
            r.error(
                path,
                Some(value.span()),
                format!("write the number without quotes: {}", s.trim()),
            );
            return None;
        }
        _ => {}
    }
    r.error(
        path,
        Some(value.span()),
        format!(
            "expected an integer from {} to {}, found {}",
            range.start(),
            range.end(),
            show(value.get_ref())
        ),
    );
    None
}

/// `usize` from a checked size, for limits the engine indexes buffers with.
pub(super) fn to_usize(
    bytes: Option<u64>,
    path: &str,
    span: Option<Range<usize>>,
    r: &mut Reporter<'_>,
) -> Option<usize> {
    let bytes = bytes?;
    usize::try_from(bytes)
        .map_err(|_| r.error(path, span, "is too large for this platform"))
        .ok()
}

fn limits(raw: Option<&Spanned<RawLimits>>, r: &mut Reporter<'_>) -> Option<Limits> {
    let empty = RawLimits::default();
    let l = raw.map_or(&empty, Spanned::get_ref);
    let span_of = |v: &Option<Spanned<Scalar>>| v.as_ref().map(Spanned::span);
    let size_or = |v: &Option<Spanned<Scalar>>, key: &str, default: u64, r: &mut Reporter<'_>| {
        v.as_ref()
            .map_or(Some(default), |v| size(v, &format!("limits.{key}"), r))
    };
    let timeout_or =
        |v: &Option<Spanned<Scalar>>, key: &str, default: Duration, r: &mut Reporter<'_>| {
            v.as_ref().map_or(Some(default), |v| {
                duration(v, &format!("limits.{key}"), AllowZero::No, r)
            })
        };

    let target = size_or(
        &l.max_target_length,
        "max-target-length",
        defaults::MAX_TARGET_LENGTH,
        r,
    );
    let head = size_or(
        &l.max_head_size,
        "max-head-size",
        defaults::MAX_HEAD_SIZE,
        r,
    );
    let target = match target {
        Some(0) => {
            r.error(
                "limits.max-target-length",
                span_of(&l.max_target_length),
                "must be greater than zero",
            );
            None
        }
        t => t,
    };
    let head = match head {
        Some(0) => {
            r.error(
                "limits.max-head-size",
                span_of(&l.max_head_size),
                "must be greater than zero",
            );
            None
        }
        Some(h) if h > MAX_HEAD_SIZE_CEILING => {
            r.error(
                "limits.max-head-size",
                span_of(&l.max_head_size),
                "must be at most 1MiB; a request head is buffered whole on every connection",
            );
            None
        }
        h => h,
    };
    if let (Some(t), Some(h)) = (target, head) {
        if t > h {
            // Point at whichever of the two was written; the target if both.
            let (path, span) = match (&l.max_target_length, &l.max_head_size) {
                (None, Some(head)) => ("limits.max-head-size", Some(head.span())),
                (target, _) => ("limits.max-target-length", span_of(target)),
            };
            r.error(
                path,
                span,
                format!(
                    "max-target-length ({t} bytes) must not exceed max-head-size ({h} bytes): \
                     the request target is part of the head"
                ),
            );
        }
    }

    let header_read_timeout = timeout_or(
        &l.header_read_timeout,
        "header-read-timeout",
        defaults::HEADER_READ_TIMEOUT,
        r,
    );
    let keepalive_timeout = timeout_or(
        &l.keepalive_timeout,
        "keepalive-timeout",
        defaults::KEEPALIVE_TIMEOUT,
        r,
    );
    let connect_timeout = timeout_or(
        &l.connect_timeout,
        "connect-timeout",
        defaults::CONNECT_TIMEOUT,
        r,
    );
    let response_head_timeout = timeout_or(
        &l.response_head_timeout,
        "response-head-timeout",
        defaults::RESPONSE_HEAD_TIMEOUT,
        r,
    );
    let body_idle_timeout = timeout_or(
        &l.body_idle_timeout,
        "body-idle-timeout",
        defaults::BODY_IDLE_TIMEOUT,
        r,
    );
    let send_timeout = timeout_or(&l.send_timeout, "send-timeout", defaults::SEND_TIMEOUT, r);
    let upstream_idle_timeout = timeout_or(
        &l.upstream_idle_timeout,
        "upstream-idle-timeout",
        defaults::UPSTREAM_IDLE_TIMEOUT,
        r,
    );
    let max_headers = l
        .max_headers
        .as_ref()
        .map_or(Some(defaults::MAX_HEADERS), |v| {
            integer(v, "limits.max-headers", MAX_HEADERS, r)
        });
    let upstream_max_idle = l
        .upstream_max_idle
        .as_ref()
        .map_or(Some(defaults::UPSTREAM_MAX_IDLE), |v| {
            integer(v, "limits.upstream-max-idle", UPSTREAM_MAX_IDLE, r)
        });
    let max_connections = l
        .max_connections
        .as_ref()
        .map_or(Some(defaults::MAX_CONNECTIONS), |v| {
            integer(v, "limits.max-connections", MAX_CONNECTIONS, r)
        });
    let max_body_size = size_or(
        &l.max_body_size,
        "max-body-size",
        defaults::MAX_BODY_SIZE,
        r,
    );
    let max_target_len = to_usize(
        target,
        "limits.max-target-length",
        span_of(&l.max_target_length),
        r,
    );
    let max_head_size = to_usize(head, "limits.max-head-size", span_of(&l.max_head_size), r);

    Some(Limits {
        max_target_len: max_target_len?,
        max_head_size: max_head_size?,
        max_headers: usize::try_from(max_headers?).ok()?,
        max_body_size: max_body_size?,
        header_read_timeout: header_read_timeout?,
        keepalive_timeout: keepalive_timeout?,
        connect_timeout: connect_timeout?,
        response_head_timeout: response_head_timeout?,
        body_idle_timeout: body_idle_timeout?,
        send_timeout: send_timeout?,
        upstream_idle_timeout: upstream_idle_timeout?,
        upstream_max_idle: usize::try_from(upstream_max_idle?).ok()?,
        max_connections: usize::try_from(max_connections?).ok()?,
    })
}

/// Tracks the names used in one section, reporting the second use of each.
pub(super) struct Names {
    section: &'static str,
    first: HashMap<String, usize>,
}

impl Names {
    pub(super) fn new(section: &'static str) -> Self {
        Names {
            section,
            first: HashMap::new(),
        }
    }

    /// A required `name` key of element `index`: checked, claimed, and
    /// returned; `None` after reporting it missing (with `why_needed`) or
    /// malformed.
    pub(super) fn required(
        &mut self,
        name: Option<&Spanned<String>>,
        index: usize,
        element: &Range<usize>,
        why_needed: &str,
        r: &mut Reporter<'_>,
    ) -> Option<String> {
        let path = format!("{}[{index}].name", self.section);
        let Some(n) = name else {
            r.error(
                path,
                Some(element.clone()),
                format!("missing; {why_needed}"),
            );
            return None;
        };
        match text::name(n.get_ref()) {
            Ok(()) => {
                self.claim(n.get_ref(), index, Some(n.span()), element, r);
                Some(n.get_ref().clone())
            }
            Err(message) => {
                r.error(path, Some(n.span()), message);
                None
            }
        }
    }

    /// Claims `name` for element `index`. `written` is the span of an
    /// explicit `name` key, `None` when the name is the default one (then
    /// `element` locates the report).
    pub(super) fn claim(
        &mut self,
        name: &str,
        index: usize,
        written: Option<Range<usize>>,
        element: &Range<usize>,
        r: &mut Reporter<'_>,
    ) {
        let Some(&first) = self.first.get(name) else {
            self.first.insert(name.to_owned(), index);
            return;
        };
        let path = format!("{}[{index}].name", self.section);
        let section = self.section;
        match written {
            Some(span) => r.error(
                path,
                Some(span),
                format!("{name:?} is already the name of {section}[{first}]; names must be unique"),
            ),
            None => r.error(
                path,
                Some(element.clone()),
                format!(
                    "the default name {name:?} is already taken by {section}[{first}]; give this one a `name`"
                ),
            ),
        }
    }
}

/// Every element of a section that has a name, even one that failed
/// validation, so its users do not report it as missing.
pub(super) fn index_by_name<T>(items: &[Item<T>]) -> HashMap<&str, usize> {
    let mut index = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(name) = &item.name {
            index.entry(name.as_str()).or_insert(i);
        }
    }
    index
}

/// A `name` key if present and valid, else the default `{prefix}-{index}`.
/// `None` when a written name is invalid (reported).
pub(super) fn name_or_default(
    name: Option<&Spanned<String>>,
    path: &str,
    prefix: &str,
    index: usize,
    r: &mut Reporter<'_>,
) -> Option<String> {
    match name {
        None => Some(format!("{prefix}-{index}")),
        Some(n) => match text::name(n.get_ref()) {
            Ok(()) => Some(n.get_ref().clone()),
            Err(message) => {
                r.error(format!("{path}.name"), Some(n.span()), message);
                None
            }
        },
    }
}

fn listeners(items: &[Item<RawListener>], r: &mut Reporter<'_>) -> Option<Vec<Listener>> {
    let mut names = Names::new("listeners");
    let mut addresses: HashMap<std::net::SocketAddr, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(raw) = &item.value else {
            out.push(None);
            continue;
        };
        let path = format!("listeners[{i}]");
        let name = name_or_default(raw.name.as_ref(), &path, "listener", i, r);
        if let Some(name) = &name {
            let written = raw.name.as_ref().map(Spanned::span);
            names.claim(name, i, written, &item.span, r);
        }
        let address = match &raw.address {
            None => {
                r.error(
                    format!("{path}.address"),
                    Some(item.span.clone()),
                    "missing; write the IP:port to listen on, e.g. address = \"127.0.0.1:8080\"",
                );
                None
            }
            Some(a) => match text::socket_addr(a.get_ref(), "127.0.0.1:8080") {
                Ok(addr) => {
                    if let Some(&first) = addresses.get(&addr) {
                        r.error(
                            format!("{path}.address"),
                            Some(a.span()),
                            format!("{addr} is already used by listeners[{first}]"),
                        );
                    } else {
                        addresses.insert(addr, i);
                    }
                    Some(addr)
                }
                Err(message) => {
                    r.error(format!("{path}.address"), Some(a.span()), message);
                    None
                }
            },
        };
        let tls = tls::listener(raw, &path, r);
        let encoded_slashes = raw
            .encoded_slashes
            .as_ref()
            .map_or(Some(EncodedSlashes::default()), |v| {
                encoded_slashes(v, &format!("{path}.encoded-slashes"), r)
            });
        let underscores = raw
            .underscores_in_headers
            .as_ref()
            .map_or(Some(UnderscoresInHeaders::default()), |v| {
                underscores_in_headers(v, &format!("{path}.underscores-in-headers"), r)
            });
        let mut rules_ok = true;
        let mut rules = |raw: &Option<Spanned<crate::raw::RawHeaderRules>>, k: &str, request| {
            raw.as_ref().and_then(|h| {
                let rules = transform::header_rules(h, &format!("{path}.{k}"), request, r);
                rules_ok &= rules.is_some();
                rules
            })
        };
        let request_headers = rules(&raw.request_headers, "request-headers", true);
        let response_headers = rules(&raw.response_headers, "response-headers", false);
        let error_format = match &raw.error_format {
            None => Some(ErrorFormat::default()),
            Some(v) => transform::error_format(v, &format!("{path}.error-format"), r),
        };
        let parts = (
            name,
            address,
            tls,
            encoded_slashes,
            underscores,
            error_format,
        );
        out.push(match parts {
            (
                Some(name),
                Some(address),
                Some(tls),
                Some(encoded_slashes),
                Some(underscores_in_headers),
                Some(error_format),
            ) if rules_ok => Some(Listener {
                name,
                address,
                tls,
                encoded_slashes,
                underscores_in_headers,
                trust_request_id: raw.trust_request_id.unwrap_or(false),
                request_headers,
                response_headers,
                error_format,
            }),
            _ => None,
        });
    }
    out.into_iter().collect()
}

/// A listener's `underscores-in-headers`.
fn underscores_in_headers(
    value: &Spanned<String>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<UnderscoresInHeaders> {
    let text = value.get_ref().as_str();
    if let Some(&found) = UnderscoresInHeaders::ALL
        .iter()
        .find(|v| v.as_str() == text)
    {
        return Some(found);
    }
    r.error(
        path,
        Some(value.span()),
        format!("expected \"drop\" or \"pass\", found {text:?}"),
    );
    None
}

/// A listener's `encoded-slashes`.
fn encoded_slashes(
    value: &Spanned<String>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<EncodedSlashes> {
    let text = value.get_ref().as_str();
    if let Some(&found) = EncodedSlashes::ALL.iter().find(|v| v.as_str() == text) {
        return Some(found);
    }
    r.error(
        path,
        Some(value.span()),
        format!("expected \"reject\", \"decode\" or \"pass\", found {text:?}"),
    );
    None
}
