//! Counters and histograms with labels from the config: per route, and per
//! upstream server, one set per worker.
//!
//! Labels come only from the config (route names, upstream names, server
//! addresses) and from fixed sets (status class, method, failure kind), so
//! the number of series is bounded by the config, never by traffic.
//!
//! Each worker writes only its own sets (single-writer counters, as in
//! [`super::WorkerStats`]); a scrape sums the workers'. The sets are made
//! when a config is compiled, and a route or server that stays under the
//! same name across a reload keeps its sets, so its counters never go
//! back to zero while the process lives.

use ringway_config::{Config, Route};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::histogram::{Histogram, Summed};
use super::Counter;
use crate::error::{Error, Kind, Side};

// The contexts of the upstream errors that have a failure kind of their
// own (the code that raises them uses these constants).
pub(crate) const CONNECT_FAILED: &str = "upstream connect failed";
pub(crate) const CONNECT_TIMEOUT: &str = "upstream connect timeout";
pub(crate) const TLS_SESSION: &str = "upstream TLS session";
pub(crate) const TLS_HANDSHAKE: &str = "upstream TLS handshake failed";
pub(crate) const HEAD_TIMEOUT: &str = "upstream response head timeout";
pub(crate) const SEND_TIMEOUT: &str = "upstream send timeout";
pub(crate) const BODY_TIMEOUT: &str = "upstream body idle timeout";
pub(crate) const AT_MAX_CONNECTIONS: &str = "upstream server at max-connections";
pub(crate) const CLOSED_BEFORE_RESPONSE: &str = "upstream closed before a response";
pub(crate) const QUEUE_TIMEOUT: &str = "upstream queue-timeout waiting for a connection";
pub(crate) const NO_SERVER: &str = "no upstream server available";

/// Status classes, as the `class` label spells them.
pub(crate) const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Methods counted by name; the rest are `other`.
pub(crate) const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// Refusals by policies, by the status they got.
pub(crate) const REFUSALS: [u16; 4] = [401, 403, 429, 503];

/// The index of a status's class in [`CLASSES`].
pub(crate) fn class_index(status: u16) -> usize {
    usize::from(status.clamp(100, 599) / 100 - 1)
}

/// How an exchange with an upstream server failed, as the `kind` label of
/// `ringway_upstream_errors_total` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server refused the connection (nothing listens).
    ConnectRefused,
    /// No connection within `connect-timeout`.
    ConnectTimeout,
    /// Any other failure to connect (unreachable, out of ports).
    ConnectError,
    /// The TLS handshake with the server failed.
    Tls,
    /// The connection was reset or broken while in use.
    Reset,
    /// The server closed the connection before a response.
    Closed,
    /// Not HTTP, or HTTP we refuse (malformed head, bad framing).
    BadResponse,
    /// No response head within `response-head-timeout`.
    HeadTimeout,
    /// The server took nothing within `send-timeout`.
    SendTimeout,
    /// The response body stalled past `body-idle-timeout`.
    BodyTimeout,
    /// The server was at its `max-connections`.
    ConnectionLimit,
}

impl Failure {
    pub(crate) const ALL: [Failure; 11] = [
        Failure::ConnectRefused,
        Failure::ConnectTimeout,
        Failure::ConnectError,
        Failure::Tls,
        Failure::Reset,
        Failure::Closed,
        Failure::BadResponse,
        Failure::HeadTimeout,
        Failure::SendTimeout,
        Failure::BodyTimeout,
        Failure::ConnectionLimit,
    ];

    /// The failure an upstream error records, from its context and cause;
    /// `None` for failures that are not the upstream's.
    pub(crate) fn of(e: &Error) -> Option<Failure> {
        if e.side != Side::Upstream {
            return None;
        }
        let cause = e.cause.as_ref().map(io::Error::kind);
        let reset = matches!(
            cause,
            Some(
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            )
        );
        Some(match e.context {
            CONNECT_FAILED if cause == Some(io::ErrorKind::ConnectionRefused) => {
                Failure::ConnectRefused
            }
            CONNECT_FAILED => Failure::ConnectError,
            CONNECT_TIMEOUT => Failure::ConnectTimeout,
            TLS_SESSION | TLS_HANDSHAKE => Failure::Tls,
            HEAD_TIMEOUT => Failure::HeadTimeout,
            SEND_TIMEOUT => Failure::SendTimeout,
            BODY_TIMEOUT => Failure::BodyTimeout,
            AT_MAX_CONNECTIONS | QUEUE_TIMEOUT => Failure::ConnectionLimit,
            CLOSED_BEFORE_RESPONSE => Failure::Closed,
            _ if reset => Failure::Reset,
            _ if e.kind == Kind::GatewayTimeout => Failure::HeadTimeout,
            _ => Failure::BadResponse,
        })
    }

    /// The server could not be reached (nothing was sent).
    pub(crate) fn is_connect(self) -> bool {
        matches!(
            self,
            Failure::ConnectRefused
                | Failure::ConnectTimeout
                | Failure::ConnectError
                | Failure::Tls
        )
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::ConnectRefused => "connect_refused",
            Failure::ConnectTimeout => "connect_timeout",
            Failure::ConnectError => "connect_error",
            Failure::Tls => "tls",
            Failure::Reset => "reset",
            Failure::Closed => "closed",
            Failure::BadResponse => "bad_response",
            Failure::HeadTimeout => "head_timeout",
            Failure::SendTimeout => "send_timeout",
            Failure::BodyTimeout => "body_timeout",
            Failure::ConnectionLimit => "connection_limit",
        }
    }
}

/// Why a try was retried, as `[routes.retry] on` and the `reason` label of
/// `ringway_upstream_retries_total` spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryReason {
    ConnectFailure,
    Reset,
    Timeout,
    Status502,
    Status503,
    Status504,
    Retriable4xx,
}

impl RetryReason {
    pub(crate) const ALL: [RetryReason; 7] = [
        RetryReason::ConnectFailure,
        RetryReason::Reset,
        RetryReason::Timeout,
        RetryReason::Status502,
        RetryReason::Status503,
        RetryReason::Status504,
        RetryReason::Retriable4xx,
    ];

    /// The reason a failure of the server's gives, if it may be retried.
    pub(crate) fn of_failure(f: Failure) -> Option<RetryReason> {
        match f {
            f if f.is_connect() => Some(RetryReason::ConnectFailure),
            Failure::Reset | Failure::Closed => Some(RetryReason::Reset),
            Failure::HeadTimeout | Failure::SendTimeout => Some(RetryReason::Timeout),
            _ => None,
        }
    }

    /// The reason a response status gives, if it may be retried.
    pub(crate) fn of_status(status: u16) -> Option<RetryReason> {
        match status {
            502 => Some(RetryReason::Status502),
            503 => Some(RetryReason::Status503),
            504 => Some(RetryReason::Status504),
            409 | 429 => Some(RetryReason::Retriable4xx),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RetryReason::ConnectFailure => "connect-failure",
            RetryReason::Reset => "reset-before-response",
            RetryReason::Timeout => "timeout",
            RetryReason::Status502 => "502",
            RetryReason::Status503 => "503",
            RetryReason::Status504 => "504",
            RetryReason::Retriable4xx => "retriable-4xx",
        }
    }
}

/// One route's counters on one worker. Aligned so two workers' sets never
/// share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct RouteStats {
    pub(crate) by_class: [Counter; CLASSES.len()],
    pub(crate) by_method: [Counter; METHODS.len()],
    /// From the request's first byte to the answer's last byte sent.
    pub(crate) duration: Histogram,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    /// Refusals by policies, by [`REFUSALS`] status.
    pub(crate) refused: [Counter; REFUSALS.len()],
}

/// One upstream server's counters on one worker.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ServerStats {
    /// Requests that were sent to the server (or failed trying).
    pub(crate) requests: Counter,
    /// Its responses (heads received), by status class.
    pub(crate) responses: [Counter; CLASSES.len()],
    /// Failures, by [`Failure::ALL`] index.
    pub(crate) errors: [Counter; Failure::ALL.len()],
    /// New connections: TCP connect, and the TLS handshake if any.
    pub(crate) connect: Histogram,
    /// From the request sent to the response head.
    pub(crate) head: Histogram,
    /// Connections open to it now (in use or idle), and idle in the pool.
    pub(crate) open: Counter,
    pub(crate) idle: Counter,
    /// Requests in flight to it from this worker now.
    pub(crate) in_flight: Counter,
    /// This worker's peak-EWMA of its response-head latency, in µs.
    pub(crate) ewma_us: Counter,
    /// Times passive health ejected it (counted by the worker that saw
    /// the failure that ejected it).
    pub(crate) ejections: Counter,
    /// Tries at it that failed and were retried, by [`RetryReason::ALL`]
    /// index.
    pub(crate) retries: [Counter; RetryReason::ALL.len()],
    /// Shared by every worker's set for the server: its failures are
    /// logged at most once a second.
    pub(crate) warn: Arc<WarnGate>,
}

impl ServerStats {
    /// Counts a failure, and logs it at warn unless one was logged for
    /// this server within the same second (the next line says how many
    /// were left out).
    pub(crate) fn failed(&self, f: Failure, e: &Error) {
        let i = Failure::ALL
            .iter()
            .position(|&x| x == f)
            .expect("every failure is listed");
        self.errors[i].inc();
        if let Some(suppressed) = self.warn.admit() {
            tracing::warn!(
                upstream = %self.warn.upstream,
                server = %self.warn.address,
                kind = f.as_str(),
                error = %e,
                suppressed,
                "upstream failure"
            );
        }
    }
}

/// Lets one warning a second through for one server, over all workers.
/// Touched only when a request fails, so one shared atomic is no cost.
#[derive(Debug)]
pub(crate) struct WarnGate {
    upstream: String,
    address: SocketAddr,
    /// The second (since `EPOCH`) of the last line, plus one; 0 = never.
    second: AtomicU64,
    suppressed: AtomicU64,
}

impl Default for WarnGate {
    fn default() -> Self {
        WarnGate::new(String::new(), SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

impl WarnGate {
    fn new(upstream: String, address: SocketAddr) -> WarnGate {
        WarnGate {
            upstream,
            address,
            second: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(failures left out since the last line)` when a line may be
    /// written now.
    fn admit(&self) -> Option<u64> {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        self.admit_at(EPOCH.get_or_init(Instant::now).elapsed().as_secs() + 1)
    }

    /// [`WarnGate::admit`] at second `now` (from 1).
    fn admit_at(&self, now: u64) -> Option<u64> {
        let last = self.second.load(Relaxed);
        if last != now
            && self
                .second
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
    }
}

/// A route's name and its counters on every worker.
pub(crate) struct RouteSet {
    pub(crate) name: String,
    pub(crate) workers: Vec<Arc<RouteStats>>,
}

/// A `consumer-metrics` route's requests per consumer, on every worker.
pub(crate) struct ConsumerSet {
    /// The `consumer` label of each counter: consumer names in config
    /// order, capped, then `other` when there are more.
    pub(crate) labels: Vec<String>,
    pub(crate) workers: Vec<Arc<[ConsumerStats]>>,
}

/// One consumer's counters on one route and worker.
#[derive(Debug, Default)]
pub(crate) struct ConsumerStats {
    pub(crate) requests: Counter,
    /// AI routes only: tokens by [`super::ai::TOKEN_TYPES`].
    pub(crate) tokens: [Counter; super::ai::TOKEN_TYPES.len()],
}

/// A server's upstream and address, and its counters on every worker.
pub(crate) struct ServerSet {
    pub(crate) upstream: String,
    pub(crate) address: SocketAddr,
    pub(crate) workers: Vec<Arc<ServerStats>>,
}

/// Every labeled set of one compiled config.
pub(crate) struct Labeled {
    /// `[metrics] enabled`: when off, nothing here is recorded.
    pub(crate) enabled: bool,
    /// By route index.
    pub(crate) routes: Vec<RouteSet>,
    /// By route index: `Some` for routes with `consumer-metrics`.
    pub(crate) consumers: Vec<Option<ConsumerSet>>,
    /// By server, upstream after upstream, in config order (the order of
    /// the workers' server indexes).
    pub(crate) servers: Vec<ServerSet>,
}

impl Labeled {
    /// The sets for `config` and its `servers` (upstream name and address,
    /// upstream after upstream) on `workers` workers, keeping `prev`'s for
    /// routes and servers of the same name.
    pub(crate) fn new(
        config: &Config,
        servers: &[(&str, SocketAddr)],
        workers: usize,
        prev: Option<&Labeled>,
    ) -> Labeled {
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let kept = prev.and_then(|p| p.routes.iter().find(|s| s.name == r.name));
                RouteSet {
                    name: r.name.clone(),
                    workers: match kept {
                        Some(s) if s.workers.len() == workers => s.workers.clone(),
                        _ => (0..workers).map(|_| Arc::default()).collect(),
                    },
                }
            })
            .collect();
        let servers = servers
            .iter()
            .map(|&(upstream, address)| {
                let kept = prev.and_then(|p| {
                    p.servers
                        .iter()
                        .find(|x| x.upstream == upstream && x.address == address)
                });
                let workers = match kept {
                    Some(s) if s.workers.len() == workers => s.workers.clone(),
                    _ => {
                        let gate = Arc::new(WarnGate::new(upstream.to_string(), address));
                        (0..workers)
                            .map(|_| {
                                Arc::new(ServerStats {
                                    warn: gate.clone(),
                                    ..ServerStats::default()
                                })
                            })
                            .collect()
                    }
                };
                ServerSet {
                    upstream: upstream.to_string(),
                    address,
                    workers,
                }
            })
            .collect();
        let cap = Route::MAX_CONSUMER_LABELS;
        let consumers = config
            .routes
            .iter()
            .map(|r| {
                if !r.consumer_metrics {
                    return None;
                }
                let mut labels: Vec<String> = config
                    .consumers
                    .iter()
                    .take(cap)
                    .map(|c| c.name.clone())
                    .collect();
                if config.consumers.len() > cap {
                    labels.push("other".to_string());
                }
                let kept = prev
                    .and_then(|p| {
                        let i = p.routes.iter().position(|s| s.name == r.name)?;
                        p.consumers[i].as_ref()
                    })
                    .filter(|c| c.labels == labels && c.workers.len() == workers);
                let sets = match kept {
                    Some(c) => c.workers.clone(),
                    None => (0..workers)
                        .map(|_| {
                            (0..labels.len())
                                .map(|_| ConsumerStats::default())
                                .collect()
                        })
                        .collect(),
                };
                Some(ConsumerSet {
                    labels,
                    workers: sets,
                })
            })
            .collect();
        Labeled {
            enabled: config.metrics.enabled,
            consumers,
            routes,
            servers,
        }
    }

    /// A worker's counters for each route, by route index.
    pub(crate) fn routes_of(&self, worker: usize) -> Vec<Arc<RouteStats>> {
        self.routes
            .iter()
            .map(|r| r.workers[worker].clone())
            .collect()
    }

    /// A worker's per-consumer counters for each route, by route index.
    pub(crate) fn consumers_of(&self, worker: usize) -> Vec<Option<Arc<[ConsumerStats]>>> {
        self.consumers
            .iter()
            .map(|c| c.as_ref().map(|c| c.workers[worker].clone()))
            .collect()
    }

    /// A worker's counters for each server, by server index.
    pub(crate) fn servers_of(&self, worker: usize) -> Vec<Arc<ServerStats>> {
        self.servers
            .iter()
            .map(|s| s.workers[worker].clone())
            .collect()
    }
}

/// A route's counters summed over workers.
#[derive(Debug, Default, Clone)]
pub struct RouteTotals {
    pub(crate) by_class: [u64; CLASSES.len()],
    pub(crate) by_method: [u64; METHODS.len()],
    pub(crate) duration: Summed,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) refused: [u64; REFUSALS.len()],
}

impl RouteTotals {
    pub(crate) fn of(set: &RouteSet) -> RouteTotals {
        let mut t = RouteTotals::default();
        for w in &set.workers {
            add(&mut t.by_class, &w.by_class);
            add(&mut t.by_method, &w.by_method);
            w.duration.sum_into(&mut t.duration);
            t.bytes_in += w.bytes_in.get();
            t.bytes_out += w.bytes_out.get();
            add(&mut t.refused, &w.refused);
        }
        t
    }

    pub(crate) fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }
}

/// A server's counters summed over workers.
#[derive(Debug, Default, Clone)]
pub struct ServerTotals {
    pub(crate) requests: u64,
    pub(crate) responses: [u64; CLASSES.len()],
    pub(crate) errors: [u64; Failure::ALL.len()],
    pub(crate) connect: Summed,
    pub(crate) head: Summed,
    pub(crate) open: u64,
    pub(crate) idle: u64,
    pub(crate) in_flight: u64,
    pub(crate) ejections: u64,
    pub(crate) retries: [u64; RetryReason::ALL.len()],
    /// The mean over the workers that have one of their latency averages.
    pub(crate) ewma_us: u64,
}

impl ServerTotals {
    pub(crate) fn of(set: &ServerSet) -> ServerTotals {
        let mut t = ServerTotals::default();
        for w in &set.workers {
            t.requests += w.requests.get();
            add(&mut t.responses, &w.responses);
            add(&mut t.errors, &w.errors);
            w.connect.sum_into(&mut t.connect);
            w.head.sum_into(&mut t.head);
            t.open += w.open.get();
            t.idle += w.idle.get();
            t.in_flight += w.in_flight.get();
            t.ejections += w.ejections.get();
            add(&mut t.retries, &w.retries);
        }
        let ewma: Vec<u64> = set
            .workers
            .iter()
            .map(|w| w.ewma_us.get())
            .filter(|&e| e > 0)
            .collect();
        t.ewma_us = ewma.iter().sum::<u64>() / (ewma.len().max(1) as u64);
        t
    }
}

fn add<const N: usize>(into: &mut [u64; N], from: &[Counter; N]) {
    for (t, c) in into.iter_mut().zip(from) {
        *t += c.get();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_a_second_then_the_count_of_those_left_out() {
        let g = WarnGate::default();
        assert_eq!(g.admit_at(1), Some(0));
        assert_eq!(g.admit_at(1), None);
        assert_eq!(g.admit_at(1), None);
        assert_eq!(g.admit_at(2), Some(2));
        assert_eq!(g.admit_at(2), None);
        assert_eq!(g.admit_at(9), Some(1));
    }

    #[test]
    fn upstream_errors_are_classified_by_context_and_cause() {
        use std::io::ErrorKind as E;
        let up = |kind, context| Error::upstream(kind, context);
        let table = [
            (
                up(Kind::BadGateway, CONNECT_FAILED).because(E::ConnectionRefused.into()),
                Some(Failure::ConnectRefused),
            ),
            (
                up(Kind::BadGateway, CONNECT_FAILED).because(E::HostUnreachable.into()),
                Some(Failure::ConnectError),
            ),
            (
                up(Kind::GatewayTimeout, CONNECT_TIMEOUT),
                Some(Failure::ConnectTimeout),
            ),
            (up(Kind::BadGateway, TLS_HANDSHAKE), Some(Failure::Tls)),
            (
                up(Kind::GatewayTimeout, HEAD_TIMEOUT),
                Some(Failure::HeadTimeout),
            ),
            (
                up(Kind::GatewayTimeout, SEND_TIMEOUT),
                Some(Failure::SendTimeout),
            ),
            (
                up(Kind::GatewayTimeout, BODY_TIMEOUT),
                Some(Failure::BodyTimeout),
            ),
            (
                up(Kind::Unavailable, AT_MAX_CONNECTIONS),
                Some(Failure::ConnectionLimit),
            ),
            (
                up(Kind::BadGateway, CLOSED_BEFORE_RESPONSE),
                Some(Failure::Closed),
            ),
            (
                up(Kind::BadGateway, "upstream read failed").because(E::ConnectionReset.into()),
                Some(Failure::Reset),
            ),
            (
                up(Kind::BadGateway, "malformed upstream response head"),
                Some(Failure::BadResponse),
            ),
            (Error::downstream(Kind::NotFound, "no route"), None),
            (Error::client_gone("client gone"), None),
        ];
        for (e, want) in table {
            assert_eq!(Failure::of(&e), want, "{e}");
        }
    }

    #[test]
    fn classes_by_status() {
        for (status, class) in [(100, 0), (204, 1), (308, 2), (404, 3), (599, 4), (0, 0)] {
            assert_eq!(class_index(status), class, "{status}");
        }
    }

    #[test]
    fn sets_are_kept_by_name_across_configs() {
        let parse = |src: &str| Config::from_toml_str(src).expect("valid");
        let a = parse(
            r#"
            [[listeners]]
            address = "127.0.0.1:0"
            [[upstreams]]
            name = "app"
            servers = ["127.0.0.1:1", "127.0.0.1:2"]
            [[routes]]
            name = "one"
            upstream = "app"
            "#,
        );
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let first = Labeled::new(&a, &[("app", addr(1)), ("app", addr(2))], 2, None);
        first.routes[0].workers[1].bytes_in.add(7);
        first.servers[1].workers[0].requests.add(3);
        let b = parse(
            r#"
            [[listeners]]
            address = "127.0.0.1:0"
            [[upstreams]]
            name = "app"
            servers = ["127.0.0.1:2", "127.0.0.1:3"]
            [[routes]]
            name = "zero"
            path-prefix = "/z"
            upstream = "app"
            [[routes]]
            name = "one"
            upstream = "app"
            "#,
        );
        let next = Labeled::new(&b, &[("app", addr(2)), ("app", addr(3))], 2, Some(&first));
        assert_eq!(RouteTotals::of(&next.routes[1]).bytes_in, 7);
        assert_eq!(RouteTotals::of(&next.routes[0]).bytes_in, 0);
        assert_eq!(ServerTotals::of(&next.servers[0]).requests, 3);
        assert_eq!(ServerTotals::of(&next.servers[1]).requests, 0);
    }
}
