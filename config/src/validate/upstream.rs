//! `[[upstreams]]` → [`Upstream`]: servers, connection caps and the queue,
//! name resolution, balancing, active health checks and outlier detection.
//!
//! A server is an `IP:port` or a `host:port` whose name the engine
//! resolves; two entries naming the same address (or the same name, in any
//! case) are an error, since the second would only double the first's
//! weight. Keys that belong to one balancing policy or one health check
//! `type` are errors under another (`key` without `policy = "hash"`, `path`
//! on a `type = "tcp"` check), like every setting that could not take
//! effect. Rules spanning two keys point at whichever of them was written
//! (a health check `timeout` must stay below its `interval`, outlier
//! detection's `max-ejection` at or above `base-ejection`), so a default
//! that no longer fits is reported at the key that made it so.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::Spanned;

use super::{
    defaults, duration, duration_or, integer, integer_or, ordered, show, text, tls, unique_list,
    AllowZero, Names, Order, Side, MAX_CONNECTIONS,
};
use crate::error::Reporter;
use crate::model::{
    Balance, BalancePolicy, CheckKind, CheckMethod, HashKey, HealthCheck, OutlierDetection,
    Resolve, Server, ServerAddress, StatusMatch, Upstream,
};
use crate::raw::{
    Item, RawBalance, RawHealthCheck, RawOutlierDetection, RawServer, RawUpstream, Scalar,
};
use crate::units::format_duration;

/// Server `weight` bounds; the ceiling keeps a balancer's weight sums far
/// from overflow while allowing ratios as fine as 1:10000.
const WEIGHT: RangeInclusive<i64> = 1..=10_000;
/// `queue-size` bounds: each queued request holds its client's connection
/// and a slot in a shared queue; 0 answers 503 at once.
const QUEUE_SIZE: RangeInclusive<i64> = 0..=100_000;
/// `queue-timeout` bounds: past a minute a client has long given up.
const QUEUE_TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(60);
/// `slow-start` bounds; 0 turns it off.
const SLOW_START: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(3600);
/// `resolve-interval` bounds: more often than every second only loads the
/// DNS servers; less often than hourly misses moves for too long.
const RESOLVE_INTERVAL: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);
/// `ewma-decay` bounds: shorter forgets between two requests, longer
/// reacts to a slow server only after minutes.
const EWMA_DECAY: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(600);
/// Health check `interval` bounds.
const CHECK_INTERVAL: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3600);
/// The shortest health check `timeout`: below it even a loopback check
/// fails under load.
const CHECK_TIMEOUT_MIN: Duration = Duration::from_millis(10);
/// `healthy-threshold` and `unhealthy-threshold` bounds.
const THRESHOLD: RangeInclusive<i64> = 1..=100;
/// `consecutive-failures` bounds.
const CONSECUTIVE_FAILURES: RangeInclusive<i64> = 1..=1000;
/// `base-ejection` bounds.
const BASE_EJECTION: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3600);
/// `max-ejected-percent` bounds.
const PERCENT: RangeInclusive<i64> = 0..=100;
/// What a `hash` policy's `key` may be.
const HASH_KEYS: &str = "\"client-ip\", \"header:NAME\", \"cookie:NAME\", \"consumer\" or \"path\"";

pub(super) fn upstreams(
    items: &[Item<RawUpstream>],
    r: &mut Reporter<'_>,
) -> Option<Vec<Upstream>> {
    let mut names = Names::new("upstreams");
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(raw) = &item.value else {
            out.push(None);
            continue;
        };
        let name = names.required(
            raw.name.as_ref(),
            i,
            &item.span,
            "an upstream needs a name for routes to refer to it by",
            r,
        );
        out.push(upstream(
            raw,
            name,
            &format!("upstreams[{i}]"),
            &item.span,
            r,
        ));
    }
    out.into_iter().collect()
}

/// One upstream; `name` is `None` when it was reported.
fn upstream(
    raw: &RawUpstream,
    name: Option<String>,
    path: &str,
    element: &Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<Upstream> {
    let key = |k: &str| format!("{path}.{k}");
    let servers = servers(raw, path, element, r);
    let max_connections = raw.max_connections.as_ref().map_or(Some(None), |v| {
        max_connections(v, &key("max-connections"), r).map(Some)
    });
    let tls = tls::upstream(raw, path, r);
    let queue_size = integer_or(
        raw.queue_size.as_ref(),
        &key("queue-size"),
        QUEUE_SIZE,
        defaults::QUEUE_SIZE,
        r,
    );
    let queue_timeout = duration_or(
        raw.queue_timeout.as_ref(),
        &key("queue-timeout"),
        QUEUE_TIMEOUT,
        defaults::QUEUE_TIMEOUT,
        r,
    );
    let slow_start = duration_or(
        raw.slow_start.as_ref(),
        &key("slow-start"),
        SLOW_START,
        defaults::SLOW_START,
        r,
    );
    let resolve = raw.resolve.as_ref().map_or(Some(Resolve::default()), |v| {
        one_of(v, &key("resolve"), &Resolve::ALL, Resolve::as_str, r)
    });
    let resolve_interval = duration_or(
        raw.resolve_interval.as_ref(),
        &key("resolve-interval"),
        RESOLVE_INTERVAL,
        defaults::RESOLVE_INTERVAL,
        r,
    );
    let balance = balance(raw.balance.as_ref(), &key("balance"), r);
    let health_check = raw.health_check.as_ref().map_or(Some(None), |h| {
        health_check(h, &key("health-check"), r).map(Some)
    });
    let outlier = outlier_detection(raw.outlier_detection.as_ref(), &key("outlier-detection"), r);
    Some(Upstream {
        name: name?,
        servers: servers?,
        tls: tls?,
        max_connections: max_connections?,
        queue_size: queue_size?,
        queue_timeout: queue_timeout?,
        slow_start: slow_start?,
        resolve: resolve?,
        resolve_interval: resolve_interval?,
        fail_open: raw.fail_open.unwrap_or(true),
        balance: balance?,
        health_check: health_check?,
        outlier: outlier?,
    })
}

/// A value that is one of a few names, e.g. `resolve = "optional"`.
pub(super) fn one_of<T: Copy>(
    value: &Spanned<String>,
    path: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    r: &mut Reporter<'_>,
) -> Option<T> {
    let text = value.get_ref().as_str();
    if let Some(&found) = all.iter().find(|&&v| name(v) == text) {
        return Some(found);
    }
    let names: Vec<String> = all.iter().map(|&v| format!("{:?}", name(v))).collect();
    r.error(
        path,
        Some(value.span()),
        format!("expected {}, found {text:?}", names.join(" or ")),
    );
    None
}

/// A `max-connections` cap, of an upstream or one server: never 0.
fn max_connections(
    value: &Spanned<Scalar>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<NonZeroU32> {
    if *value.get_ref() == Scalar::Int(0) {
        r.error(
            path,
            Some(value.span()),
            format!(
                "0 would refuse every request; use {} to {}, or leave the key out for no cap",
                MAX_CONNECTIONS.start(),
                MAX_CONNECTIONS.end()
            ),
        );
        return None;
    }
    integer(value, path, MAX_CONNECTIONS, r)
        .and_then(|n| u32::try_from(n).ok())
        .and_then(NonZeroU32::new)
}

fn servers(
    raw: &RawUpstream,
    path: &str,
    element: &Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<Vec<Server>> {
    let Some(list) = &raw.servers else {
        r.error(
            format!("{path}.servers"),
            Some(element.clone()),
            "missing; list at least one server, e.g. servers = [\"127.0.0.1:3000\"]",
        );
        return None;
    };
    if list.get_ref().is_empty() {
        r.error(
            format!("{path}.servers"),
            Some(list.span()),
            "must list at least one server, e.g. servers = [\"127.0.0.1:3000\"]",
        );
        return None;
    }
    let mut seen: HashMap<ServerAddress, usize> = HashMap::new();
    let mut out = Vec::with_capacity(list.get_ref().len());
    for (j, entry) in list.get_ref().iter().enumerate() {
        let entry_path = format!("{path}.servers[{j}]");
        let (address, address_path, table) = match entry.get_ref() {
            RawServer::Address(text) => (
                Some(Spanned::new(entry.span(), text.clone())),
                entry_path.clone(),
                None,
            ),
            RawServer::Table(t) => (t.address.clone(), format!("{entry_path}.address"), Some(t)),
        };
        let address = match address {
            None => {
                r.error(
                    format!("{entry_path}.address"),
                    Some(entry.span()),
                    "missing; write the server's IP:port or host:port, e.g. address = \"127.0.0.1:3000\"",
                );
                None
            }
            Some(a) => server_address(&a, &address_path, j, &mut seen, r),
        };
        let weight = table
            .and_then(|t| t.weight.as_ref())
            .map_or(Some(1), |w| {
                integer(w, &format!("{entry_path}.weight"), WEIGHT, r)
            })
            .and_then(|w| u32::try_from(w).ok())
            .and_then(NonZeroU32::new);
        let max_connections = table
            .and_then(|t| t.max_connections.as_ref())
            .map_or(Some(None), |v| {
                max_connections(v, &format!("{entry_path}.max-connections"), r).map(Some)
            });
        out.push(match (address, weight, max_connections) {
            (Some(address), Some(weight), Some(max_connections)) => Some(Server {
                address,
                weight,
                max_connections,
                backup: table.and_then(|t| t.backup).unwrap_or(false),
            }),
            _ => None,
        });
    }
    out.into_iter().collect()
}

fn server_address(
    text: &Spanned<String>,
    path: &str,
    index: usize,
    seen: &mut HashMap<ServerAddress, usize>,
    r: &mut Reporter<'_>,
) -> Option<ServerAddress> {
    let address = match text::server_address(text.get_ref()) {
        Ok(address) => address,
        Err(message) => {
            r.error(path, Some(text.span()), message);
            return None;
        }
    };
    let port = match &address {
        ServerAddress::Ip(addr) => addr.port(),
        ServerAddress::Name { port, .. } => *port,
    };
    if port == 0 {
        r.error(
            path,
            Some(text.span()),
            "port 0 cannot be connected to; write the server's port",
        );
        return None;
    }
    if let Some(ip) = address
        .ip()
        .map(|a| a.ip())
        .filter(|ip| ip.is_unspecified())
    {
        r.error(
            path,
            Some(text.span()),
            format!("{ip} is not an address a server can be reached at"),
        );
        return None;
    }
    if let Some(&first) = seen.get(&address) {
        r.error(
            path,
            Some(text.span()),
            format!("{address} is already listed as servers[{first}]; raise its weight instead"),
        );
        return None;
    }
    seen.insert(address.clone(), index);
    Some(address)
}

/// `[upstreams.balance]` at `path`; the defaults without the table.
fn balance(raw: Option<&Spanned<RawBalance>>, path: &str, r: &mut Reporter<'_>) -> Option<Balance> {
    let Some(raw) = raw else {
        return Some(Balance::default());
    };
    let b = raw.get_ref();
    let key = |k: &str| format!("{path}.{k}");
    let name = b
        .policy
        .as_ref()
        .map_or("round-robin", |p| p.get_ref().as_str());
    if !BalancePolicy::NAMES.contains(&name) {
        let names: Vec<String> = BalancePolicy::NAMES
            .iter()
            .map(|n| format!("{n:?}"))
            .collect();
        let at = b.policy.as_ref().map(Spanned::span);
        r.error(
            key("policy"),
            at,
            format!("expected one of {}, found {name:?}", names.join(", ")),
        );
        return None;
    }
    let mut ok = true;
    if let Some(d) = b.ewma_decay.as_ref().filter(|_| name != "ewma") {
        r.error(
            key("ewma-decay"),
            Some(d.span()),
            format!("applies only to policy = \"ewma\", not {name:?}"),
        );
        ok = false;
    }
    let ewma_decay = duration_or(
        b.ewma_decay.as_ref(),
        &key("ewma-decay"),
        EWMA_DECAY,
        Balance::default().ewma_decay,
        r,
    );
    let policy = match (name, &b.key) {
        ("hash", None) => {
            r.error(
                key("key"),
                Some(raw.span()),
                format!("missing; policy = \"hash\" needs a key to hash: {HASH_KEYS}"),
            );
            None
        }
        ("hash", Some(k)) => match hash_key(k.get_ref()) {
            Ok(k) => Some(BalancePolicy::Hash(k)),
            Err(message) => {
                r.error(key("key"), Some(k.span()), message);
                None
            }
        },
        (_, Some(k)) => {
            r.error(
                key("key"),
                Some(k.span()),
                format!("applies only to policy = \"hash\", not {name:?}"),
            );
            None
        }
        ("least-request", None) => Some(BalancePolicy::LeastRequest),
        ("ewma", None) => Some(BalancePolicy::Ewma),
        ("random", None) => Some(BalancePolicy::Random),
        _ => Some(BalancePolicy::RoundRobin),
    };
    Some(Balance {
        policy: policy.filter(|_| ok)?,
        ewma_decay: ewma_decay?,
    })
}

/// A `hash` policy's `key`.
pub(crate) fn hash_key(text: &str) -> Result<HashKey, String> {
    match text {
        "client-ip" => return Ok(HashKey::ClientIp),
        "consumer" => return Ok(HashKey::Consumer),
        "path" => return Ok(HashKey::Path),
        _ => {}
    }
    if let Some(name) = text.strip_prefix("header:") {
        return text::header_token(name)
            .map(HashKey::Header)
            .map_err(|e| format!("{text:?}: {e}"));
    }
    if let Some(name) = text.strip_prefix("cookie:") {
        // Cookie names are tokens (RFC 6265 §4.1.1) and case-sensitive.
        return text::header_token(name)
            .map(|_| HashKey::Cookie(name.to_owned()))
            .map_err(|e| format!("{text:?}: {}", e.replace("header name", "cookie name")));
    }
    Err(format!("expected {HASH_KEYS}, found {text:?}"))
}

/// `[upstreams.health-check]` at `path`.
fn health_check(
    raw: &Spanned<RawHealthCheck>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<HealthCheck> {
    let h = raw.get_ref();
    let key = |k: &str| format!("{path}.{k}");
    let kind = match h.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("http", _)) => Some(http_check(h, path, r)),
        Some(("tcp", _)) => {
            let http_only = [
                ("method", h.method.as_ref().map(Spanned::span)),
                ("path", h.path.as_ref().map(Spanned::span)),
                ("host", h.host.as_ref().map(Spanned::span)),
                ("expect", h.expect.as_ref().map(Spanned::span)),
            ];
            let mut ok = true;
            for (k, at) in http_only {
                if let Some(at) = at {
                    r.error(
                        key(k),
                        Some(at),
                        format!("`{k}` applies only to type = \"http\" checks; a \"tcp\" check only connects"),
                    );
                    ok = false;
                }
            }
            Some(ok.then_some(CheckKind::Tcp))
        }
        Some((other, span)) => {
            r.error(
                key("type"),
                Some(span),
                format!("expected \"http\" or \"tcp\", found {other:?}"),
            );
            None
        }
    };
    let interval = duration_or(
        h.interval.as_ref(),
        &key("interval"),
        CHECK_INTERVAL,
        defaults::CHECK_INTERVAL,
        r,
    );
    let timeout = h
        .timeout
        .as_ref()
        .map_or(Some(defaults::CHECK_TIMEOUT), |v| {
            let d = duration(v, &key("timeout"), AllowZero::No, r)?;
            if d < CHECK_TIMEOUT_MIN {
                r.error(
                    key("timeout"),
                    Some(v.span()),
                    format!(
                        "must be at least {}, found {}",
                        format_duration(CHECK_TIMEOUT_MIN),
                        format_duration(d)
                    ),
                );
                return None;
            }
            Some(d)
        });
    let fits = ordered(
        path,
        &Side {
            key: "timeout",
            value: timeout,
            written: h.timeout.as_ref(),
        },
        Order::Below,
        &Side {
            key: "interval",
            value: interval,
            written: h.interval.as_ref(),
        },
        ": a check must end before the next one starts",
        r,
    );
    let healthy_threshold = integer_or(
        h.healthy_threshold.as_ref(),
        &key("healthy-threshold"),
        THRESHOLD,
        defaults::HEALTHY_THRESHOLD,
        r,
    );
    let unhealthy_threshold = integer_or(
        h.unhealthy_threshold.as_ref(),
        &key("unhealthy-threshold"),
        THRESHOLD,
        defaults::UNHEALTHY_THRESHOLD,
        r,
    );
    Some(HealthCheck {
        kind: kind??,
        interval: interval?,
        timeout: timeout.filter(|_| fits)?,
        healthy_threshold: healthy_threshold?,
        unhealthy_threshold: unhealthy_threshold?,
    })
}

/// The `type = "http"` keys of a health check.
fn http_check(h: &RawHealthCheck, path: &str, r: &mut Reporter<'_>) -> Option<CheckKind> {
    let key = |k: &str| format!("{path}.{k}");
    let method = h.method.as_ref().map_or(Some(CheckMethod::default()), |m| {
        one_of(m, &key("method"), &CheckMethod::ALL, CheckMethod::as_str, r)
    });
    let check_path = match &h.path {
        None => Some(defaults::CHECK_PATH.to_owned()),
        Some(p) => text::check_path(p.get_ref())
            .map(|()| p.get_ref().clone())
            .map_err(|message| r.error(key("path"), Some(p.span()), message))
            .ok(),
    };
    let host = match &h.host {
        None => Some(None),
        Some(v) if v.get_ref().is_empty() => {
            r.error(
                key("host"),
                Some(v.span()),
                "empty; leave `host` out to send the server's name (or its IP:port)",
            );
            None
        }
        Some(v) => text::host_header(v.get_ref())
            .map(|()| Some(v.get_ref().clone()))
            .map_err(|message| r.error(key("host"), Some(v.span()), message))
            .ok(),
    };
    let expect = match &h.expect {
        None => Some(vec![StatusMatch::Class(2), StatusMatch::Class(3)]),
        Some(list) => expect(list, &key("expect"), r),
    };
    Some(CheckKind::Http {
        method: method?,
        path: check_path?,
        host: host?,
        expect: expect?,
    })
}

/// A health check's `expect`: statuses and classes, at least one, none
/// twice.
fn expect(
    list: &Spanned<Vec<Spanned<Scalar>>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Vec<StatusMatch>> {
    let empty = "must list at least one status, e.g. expect = [\"2xx\", 404]";
    unique_list(list, path, Some(empty), status_match, r)
}

/// `200` (also `"200"`) or `"2xx"`.
fn status_match(value: &Scalar) -> Result<StatusMatch, String> {
    let wrong = || {
        format!(
            "expected a status from 100 to 599 or a class \"1xx\" to \"5xx\", found {}",
            show(value)
        )
    };
    match value {
        Scalar::Int(n @ 100..=599) => u16::try_from(*n)
            .map(StatusMatch::Code)
            .map_err(|_| wrong()),
        Scalar::Str(s) => match s.to_ascii_lowercase().as_bytes() {
            [class @ b'1'..=b'5', b'x', b'x'] => Ok(StatusMatch::Class(class - b'0')),
            _ => match s.parse::<u16>() {
                Ok(code @ 100..=599) => Ok(StatusMatch::Code(code)),
                _ => Err(wrong()),
            },
        },
        _ => Err(wrong()),
    }
}

/// `[upstreams.outlier-detection]` at `path`; the defaults (on) without
/// the table. Every key is checked also with `enabled = false`, so turning
/// it back on cannot surface old mistakes.
fn outlier_detection(
    raw: Option<&Spanned<RawOutlierDetection>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<OutlierDetection> {
    let empty = RawOutlierDetection::default();
    let o = raw.map_or(&empty, Spanned::get_ref);
    let default = OutlierDetection::default();
    let key = |k: &str| format!("{path}.{k}");
    let consecutive_failures = integer_or(
        o.consecutive_failures.as_ref(),
        &key("consecutive-failures"),
        CONSECUTIVE_FAILURES,
        default.consecutive_failures,
        r,
    );
    let base_ejection = duration_or(
        o.base_ejection.as_ref(),
        &key("base-ejection"),
        BASE_EJECTION,
        default.base_ejection,
        r,
    );
    let max_ejection = o
        .max_ejection
        .as_ref()
        .map_or(Some(default.max_ejection), |v| {
            duration(v, &key("max-ejection"), AllowZero::No, r)
        });
    let fits = ordered(
        path,
        &Side {
            key: "max-ejection",
            value: max_ejection,
            written: o.max_ejection.as_ref(),
        },
        Order::AtLeast,
        &Side {
            key: "base-ejection",
            value: base_ejection,
            written: o.base_ejection.as_ref(),
        },
        "",
        r,
    );
    let max_ejected_percent = integer_or(
        o.max_ejected_percent.as_ref(),
        &key("max-ejected-percent"),
        PERCENT,
        default.max_ejected_percent,
        r,
    );
    Some(OutlierDetection {
        enabled: o.enabled.unwrap_or(true),
        consecutive_failures: consecutive_failures?,
        base_ejection: base_ejection?,
        max_ejection: max_ejection.filter(|_| fits)?,
        max_ejected_percent: max_ejected_percent?,
    })
}
