//! `GET /metrics`: every counter in the Prometheus text exposition format
//! 0.0.4, built on the admin thread from the workers' single-writer
//! counters (summed here) and the running snapshot.
//!
//! Names follow Prometheus conventions: the `ringway_` prefix (`process_`
//! for the standard process figures), base units (seconds, bytes), `_total`
//! on counters, histograms as `_bucket`/`_sum`/`_count`, HELP and TYPE for
//! every family. Label values come from the config (route, upstream and
//! server names, listener addresses, certificate files) and from fixed
//! sets, never from requests, so a scrape's size is bounded by the config:
//! about 90 lines per route and 60 per server. Every series of a family
//! is written even at zero, so a rate over it never starts from nothing.
//!
//! Nothing here runs on a worker or waits for one: a scrape reads relaxed
//! atomics, and the workers never learn that it happened.

use std::fmt::{Display, Write as _};

use ringway_config::{Action, LimitKey};

use super::api::Answer;
use super::process::{unix_seconds, Process};
use crate::runtime::control::Handle;
use crate::stats::ai::{provider_errors, status_label, AiSets, PairSet, PairTotals, TOKEN_TYPES};
use crate::stats::histogram::{Summed, BOUNDS_LE};
use crate::stats::labeled::{
    Failure, RetryReason, RouteTotals, ServerTotals, CLASSES, METHODS, REFUSALS,
};
use crate::stats::Totals;

/// The exposition's content type (text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn scrape(plane: &Handle) -> Answer {
    let mut out = Exposition::default();
    write_all(plane, &mut out);
    Answer::typed(CONTENT_TYPE, out.text.into_bytes())
}

/// Writes every family; split out so tests can render without a plane.
fn write_all(plane: &Handle, out: &mut Exposition) {
    let t = plane.totals();
    let snapshot = plane.snapshot();
    globals(out, &t);
    cache(out, &t);
    tls(out, &t);
    tunnels(out, &t);
    out.family(
        "ringway_tls_certificate_expiry_timestamp_seconds",
        "gauge",
        "When each configured certificate expires (notAfter), seconds since the epoch.",
    );
    for l in snapshot.tls.iter().flatten() {
        let listener = l.configured.to_string();
        for c in &l.certs {
            out.sample(
                "ringway_tls_certificate_expiry_timestamp_seconds",
                &[
                    ("listener", &listener),
                    ("file", &c.file),
                    ("subject", &c.subject),
                ],
                c.not_after,
            );
        }
    }

    let m = &snapshot.metrics;
    let routes: Vec<(&str, RouteTotals)> = m
        .routes
        .iter()
        .map(|r| (r.name.as_str(), RouteTotals::of(r)))
        .collect();
    route_families(out, &routes);
    const CONSUMERS: &str = "ringway_route_consumer_requests_total";
    out.family(
        CONSUMERS,
        "counter",
        "Requests per consumer on routes with consumer-metrics (the first 64 consumers by name, the rest as other).",
    );
    for (r, set) in m.routes.iter().zip(&m.consumers) {
        let Some(set) = set else { continue };
        for (i, label) in set.labels.iter().enumerate() {
            let n: u64 = set.workers.iter().map(|w| w[i].requests.get()).sum();
            out.sample(CONSUMERS, &[("route", &r.name), ("consumer", label)], n);
        }
    }
    const CONSUMER_TOKENS: &str = "ringway_ai_consumer_tokens_total";
    out.family(
        CONSUMER_TOKENS,
        "counter",
        "Tokens per consumer on AI routes with consumer-metrics, by type (as ringway_ai_tokens_total).",
    );
    let ai_routes = m
        .routes
        .iter()
        .zip(&m.consumers)
        .zip(&snapshot.config.routes);
    for ((r, set), route) in ai_routes {
        let (Some(set), Action::Ai(_)) = (set, &route.action) else {
            continue;
        };
        for (i, label) in set.labels.iter().enumerate() {
            for (t, kind) in TOKEN_TYPES.iter().enumerate() {
                let n: u64 = set.workers.iter().map(|w| w[i].tokens[t].get()).sum();
                let labels = [("route", &*r.name), ("consumer", label), ("type", kind)];
                out.sample(CONSUMER_TOKENS, &labels, n);
            }
        }
    }
    let servers: Vec<(&str, String, ServerTotals)> = m
        .servers
        .iter()
        .map(|s| {
            (
                s.upstream.as_str(),
                s.address.to_string(),
                ServerTotals::of(s),
            )
        })
        .collect();
    server_families(out, &servers);
    health_families(out, &snapshot);
    ai_families(out, &snapshot.ai_stats);

    out.family(
        "ringway_rate_limit_evictions_total",
        "counter",
        "Keys dropped from a full rate-limit table (their buckets start over).",
    );
    for (route, compiled) in snapshot.config.routes.iter().zip(&snapshot.routes) {
        for (i, l) in compiled.policy.limits.iter().enumerate() {
            let key = match &l.key {
                LimitKey::Route => "route".to_string(),
                LimitKey::ClientIp => "client-ip".to_string(),
                LimitKey::Consumer => "consumer".to_string(),
                LimitKey::Header(h) => format!("header:{h}"),
            };
            let index = i.to_string();
            out.sample(
                "ringway_rate_limit_evictions_total",
                &[("route", &route.name), ("limit", &index), ("key", &key)],
                l.shared
                    .evictions
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
        }
    }

    let r = plane.reload_stats();
    out.counter(
        "ringway_reloads_total",
        "Config reloads, by result.",
        &[
            (&[("result", "success")], r.succeeded),
            (&[("result", "failure")], r.failed),
        ],
    );
    out.counter(
        "ringway_upstream_address_changes_total",
        "Generations published because upstream server names resolved to other addresses.",
        &[(&[], r.address_changes)],
    );
    out.gauge(
        "ringway_config_generation",
        "The config generation new requests start on.",
        plane.generation(),
    );
    if let Some(at) = r.last_success {
        out.gauge(
            "ringway_reload_last_success_timestamp_seconds",
            "When the last successful reload took effect, seconds since the epoch.",
            unix_seconds(at),
        );
    }
    out.family(
        "ringway_reload_propagation_seconds",
        "summary",
        "From publishing a config to every worker running it (quantiles over the last 1024 reloads).",
    );
    if let Some((p50, p99, _)) = r.propagation {
        out.sample(
            "ringway_reload_propagation_seconds",
            &[("quantile", "0.5")],
            p50.as_secs_f64(),
        );
        out.sample(
            "ringway_reload_propagation_seconds",
            &[("quantile", "0.99")],
            p99.as_secs_f64(),
        );
    }
    out.sample(
        "ringway_reload_propagation_seconds_sum",
        &[],
        r.propagation_sum.as_secs_f64(),
    );
    out.sample(
        "ringway_reload_propagation_seconds_count",
        &[],
        r.propagation_count,
    );

    out.family(
        "ringway_build_info",
        "gauge",
        "The running build: 1, with its version as a label.",
    );
    out.sample(
        "ringway_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.family(
        "ringway_worker_info",
        "gauge",
        "Each worker: 1, with its CPU and I/O driver as labels.",
    );
    for w in plane.workers() {
        let id = w.info.id.to_string();
        let cpu = w.info.cpu.to_string();
        out.sample(
            "ringway_worker_info",
            &[("worker", &id), ("cpu", &cpu), ("driver", w.info.driver)],
            1,
        );
    }
    process(out, &Process::read());
}

fn globals(out: &mut Exposition, t: &Totals) {
    out.counter(
        "ringway_connections_accepted_total",
        "Client connections accepted.",
        &[(&[], t.connections_accepted)],
    );
    out.gauge(
        "ringway_connections_open",
        "Client connections open now.",
        t.connections_open,
    );
    out.counter(
        "ringway_connections_refused_total",
        "Client connections closed at once because max-connections was reached.",
        &[(&[], t.connections_refused)],
    );
    out.counter(
        "ringway_requests_total",
        "Requests whose head was read, routed or not, by the status class of their final answer (none: nothing was sent).",
        &[
            (&[("class", "2xx")], t.responses_2xx),
            (&[("class", "3xx")], t.responses_3xx),
            (&[("class", "4xx")], t.responses_4xx),
            (&[("class", "5xx")], t.responses_5xx),
            (
                &[("class", "none")],
                t.requests.saturating_sub(
                    t.responses_2xx + t.responses_3xx + t.responses_4xx + t.responses_5xx,
                ),
            ),
        ],
    );
    out.counter(
        "ringway_headers_dropped_total",
        "Fields removed on the way through, by reason: request header names with an underscore (underscores-in-headers), trailer fields not allowed in trailers (RFC 9110 6.5.1).",
        &[
            (&[("reason", "underscore")], t.headers_dropped_underscore),
            (&[("reason", "trailer")], t.headers_dropped_trailer),
        ],
    );
    out.counter(
        "ringway_interim_responses_total",
        "Interim (1xx) responses relayed to clients before a final one.",
        &[(&[], t.responses_1xx)],
    );
    out.counter(
        "ringway_rejected_requests_total",
        "Malformed or over-limit requests answered with an error before routing, by status.",
        &[
            (&[("status", "400")], t.rejected_400),
            (&[("status", "404")], t.rejected_404),
            (&[("status", "405")], t.rejected_405),
            (&[("status", "408")], t.rejected_408),
            (&[("status", "413")], t.rejected_413),
            (&[("status", "414")], t.rejected_414),
            (&[("status", "431")], t.rejected_431),
            (&[("status", "501")], t.rejected_501),
        ],
    );
    out.counter(
        "ringway_refused_requests_total",
        "Requests refused by a policy (auth, IP rules, rate and concurrency limits), by status.",
        &[
            (&[("status", "401")], t.refused_401),
            (&[("status", "403")], t.refused_403),
            (&[("status", "429")], t.refused_429),
            (&[("status", "503")], t.refused_503),
        ],
    );
    out.counter(
        "ringway_upstream_failed_requests_total",
        "Requests that failed on the upstream side, by the status they got.",
        &[
            (&[("status", "502")], t.upstream_502),
            (&[("status", "503")], t.upstream_503),
            (&[("status", "504")], t.upstream_504),
        ],
    );
    out.counter(
        "ringway_compressed_responses_total",
        "Responses compressed on their way out ([routes.compression]), by coding.",
        &[
            (&[("coding", "gzip")], t.compressed_gzip),
            (&[("coding", "br")], t.compressed_br),
            (&[("coding", "zstd")], t.compressed_zstd),
        ],
    );
    out.counter(
        "ringway_upstream_connects_total",
        "New upstream connections opened.",
        &[(&[], t.upstream_connects)],
    );
    out.counter(
        "ringway_upstream_reuses_total",
        "Requests sent on a pooled upstream connection.",
        &[(&[], t.upstream_reuses)],
    );
    out.counter(
        "ringway_upstream_stale_resends_total",
        "Requests resent on a fresh connection after a pooled one turned out closed.",
        &[(&[], t.upstream_stale_resends)],
    );
    out.counter(
        "ringway_upstream_early_answers_total",
        "Requests whose upstream answered before their whole body was sent.",
        &[(&[], t.upstream_early_answers)],
    );
    out.counter(
        "ringway_upstream_expect_timeouts_total",
        "Forwarded Expect: 100-continue the upstream did not answer in time.",
        &[(&[], t.upstream_expect_timeouts)],
    );
    out.counter(
        "ringway_upstream_retry_budget_exhausted_total",
        "Retries not made because the upstream's retry budget was spent.",
        &[(&[], t.upstream_retry_budget_exhausted)],
    );
    out.counter(
        "ringway_upstream_no_server_total",
        "Requests answered 503 because their upstream had no server to offer.",
        &[(&[], t.upstream_no_server)],
    );
    out.counter(
        "ringway_upstream_queued_total",
        "Requests that waited for a connection to a server at its max-connections, by outcome.",
        &[
            (
                &[("outcome", "served")],
                t.upstream_queued - t.upstream_queue_timeouts,
            ),
            (&[("outcome", "timeout")], t.upstream_queue_timeouts),
        ],
    );
    out.counter(
        "ringway_access_log_dropped_total",
        "Access log records dropped because a worker's queue to the writer was full.",
        &[(&[], t.access_log_dropped)],
    );
    out.counter(
        "ringway_cors_preflights_total",
        "CORS preflights answered by the gateway (204).",
        &[(&[], t.cors_preflights)],
    );
    out.counter(
        "ringway_cors_refused_total",
        "Requests from an origin, or preflights for a method, a route's CORS rules do not allow.",
        &[(&[], t.cors_refused)],
    );
    out.counter(
        "ringway_internal_errors_total",
        "Failures of the gateway itself (a full or slow password-check queue, say).",
        &[(&[], t.internal_errors)],
    );
    out.counter(
        "ringway_panics_total",
        "Panics caught while serving a connection (each closed that connection).",
        &[(&[], t.panics)],
    );
    out.counter(
        "ringway_accept_errors_total",
        "Errors accepting client connections (out of file descriptors, say).",
        &[(&[], t.accept_errors)],
    );
}

fn cache(out: &mut Exposition, t: &Totals) {
    for (name, help, v) in [
        (
            "ringway_cache_hits_total",
            "Requests answered from a fresh stored response.",
            t.cache_hits,
        ),
        (
            "ringway_cache_misses_total",
            "Requests with nothing usable stored, fetched from the origin.",
            t.cache_misses,
        ),
        (
            "ringway_cache_stale_total",
            "Requests answered with a stale stored response.",
            t.cache_stale,
        ),
        (
            "ringway_cache_revalidations_total",
            "Stored responses refreshed by a 304 from the origin.",
            t.cache_revalidated,
        ),
        (
            "ringway_cache_stored_total",
            "Responses stored.",
            t.cache_stored,
        ),
        (
            "ringway_cache_collapsed_total",
            "Requests that waited for another's fetch of the same key.",
            t.cache_collapsed,
        ),
        (
            "ringway_cache_invalidations_total",
            "Stored URLs dropped after unsafe requests.",
            t.cache_invalidations,
        ),
        (
            "ringway_cache_background_revalidations_total",
            "Background revalidations started (stale-while-revalidate).",
            t.cache_background,
        ),
    ] {
        out.counter(name, help, &[(&[], v)]);
    }
    out.counter(
        "ringway_cache_bypass_total",
        "Requests on caching routes forwarded past the cache, by reason.",
        &[
            (&[("reason", "method")], t.cache_bypass_method),
            (&[("reason", "range")], t.cache_bypass_range),
            (&[("reason", "body")], t.cache_bypass_body),
        ],
    );
    out.counter(
        "ringway_cache_evictions_total",
        "Stored responses evicted to keep the cache within its size.",
        &[(&[], t.cache_evictions)],
    );
    out.gauge(
        "ringway_cache_entries",
        "Responses stored now.",
        t.cache_entries,
    );
    out.gauge(
        "ringway_cache_bytes",
        "Bytes of stored responses now.",
        t.cache_bytes,
    );
}

/// Tunnels after protocol upgrades (`upgrades` on a route).
fn tunnels(out: &mut Exposition, t: &Totals) {
    out.counter(
        "ringway_tunnels_opened_total",
        "Tunnels opened after an upstream answered 101 Switching Protocols.",
        &[(&[], t.tunnels_opened)],
    );
    out.gauge("ringway_tunnels_open", "Tunnels open now.", t.tunnels_open);
    out.counter(
        "ringway_tunnels_refused_total",
        "Upgrade requests answered 503 because their route had max-tunnels open.",
        &[(&[], t.tunnels_refused)],
    );
    out.counter(
        "ringway_tunnels_timed_out_total",
        "Tunnels closed by the gateway, by reason: tunnel-idle-timeout, or the end of a drain.",
        &[
            (&[("reason", "idle")], t.tunnels_idle_closed),
            (&[("reason", "drain")], t.tunnels_drain_closed),
        ],
    );
    out.counter(
        "ringway_tunnel_bytes_total",
        "Bytes carried by tunnels, by direction: up (client to upstream) and down.",
        &[
            (&[("direction", "up")], t.tunnel_bytes_up),
            (&[("direction", "down")], t.tunnel_bytes_down),
        ],
    );
}

fn tls(out: &mut Exposition, t: &Totals) {
    out.counter(
        "ringway_tls_handshakes_total",
        "TLS handshakes completed with clients, by version.",
        &[
            (&[("version", "TLSv1.2")], t.tls_handshakes_v12),
            (&[("version", "TLSv1.3")], t.tls_handshakes_v13),
        ],
    );
    out.counter(
        "ringway_tls_resumed_total",
        "TLS handshakes with clients that resumed a session.",
        &[(&[], t.tls_resumed)],
    );
    out.counter(
        "ringway_tls_handshake_failures_total",
        "TLS handshakes with clients that failed, by reason.",
        &[
            (&[("reason", "timeout")], t.tls_failed_timeout),
            (&[("reason", "closed")], t.tls_failed_closed),
            (&[("reason", "unknown_sni")], t.tls_failed_unknown_sni),
            (&[("reason", "client_cert")], t.tls_failed_client_cert),
            (&[("reason", "incompatible")], t.tls_failed_incompatible),
            (&[("reason", "certificate_rejected")], t.tls_failed_rejected),
            (&[("reason", "protocol")], t.tls_failed_protocol),
        ],
    );
    out.counter(
        "ringway_upstream_tls_failures_total",
        "TLS handshakes with upstream servers that failed.",
        &[(&[], t.upstream_tls_failures)],
    );
}

fn route_families(out: &mut Exposition, routes: &[(&str, RouteTotals)]) {
    const REQUESTS: &str = "ringway_route_requests_total";
    out.family(
        REQUESTS,
        "counter",
        "Requests per route, by the status class answered.",
    );
    for (name, t) in routes {
        for (class, n) in CLASSES.iter().zip(t.by_class) {
            out.sample(REQUESTS, &[("route", name), ("class", class)], n);
        }
    }
    const METHOD: &str = "ringway_route_requests_by_method_total";
    out.family(METHOD, "counter", "Requests per route, by method.");
    for (name, t) in routes {
        for (method, n) in METHODS.iter().zip(t.by_method) {
            out.sample(METHOD, &[("route", name), ("method", method)], n);
        }
    }
    const DURATION: &str = "ringway_route_request_duration_seconds";
    out.family(
        DURATION,
        "histogram",
        "Per route: from the request's first byte to the answer's last byte written.",
    );
    for (name, t) in routes {
        out.histogram(DURATION, &[("route", name)], &t.duration);
    }
    const RECEIVED: &str = "ringway_route_received_bytes_total";
    out.family(
        RECEIVED,
        "counter",
        "Request bytes read per route (head and body).",
    );
    for (name, t) in routes {
        out.sample(RECEIVED, &[("route", name)], t.bytes_in);
    }
    const SENT: &str = "ringway_route_sent_bytes_total";
    out.family(
        SENT,
        "counter",
        "Response bytes written per route (head and body).",
    );
    for (name, t) in routes {
        out.sample(SENT, &[("route", name)], t.bytes_out);
    }
    const REFUSED: &str = "ringway_route_refused_total";
    out.family(
        REFUSED,
        "counter",
        "Requests refused by a route's policies, by status (401 auth, 403 IP or group, 429 rate limit, 503 concurrency).",
    );
    for (name, t) in routes {
        for (status, n) in REFUSALS.iter().zip(t.refused) {
            let status = status.to_string();
            out.sample(REFUSED, &[("route", name), ("status", &status)], n);
        }
    }
}

/// The AI gateway's families: per (model, provider) pair that is a
/// model's target, and per provider.
fn ai_families(out: &mut Exposition, sets: &AiSets) {
    let pairs: Vec<(&PairSet, PairTotals)> = sets
        .pairs
        .iter()
        .filter(|p| p.used)
        .map(|p| (p, PairTotals::of(p)))
        .collect();
    const TOKENS: &str = "ringway_ai_tokens_total";
    out.family(
        TOKENS,
        "counter",
        "Tokens used per model and provider, by type (input includes cached; output includes reasoning).",
    );
    for (p, t) in &pairs {
        for (kind, n) in TOKEN_TYPES.iter().zip(t.tokens) {
            let labels = [
                ("model", &*p.model),
                ("provider", &*p.provider),
                ("type", kind),
            ];
            out.sample(TOKENS, &labels, n);
        }
    }
    const REQUESTS: &str = "ringway_ai_requests_total";
    out.family(
        REQUESTS,
        "counter",
        "AI requests a provider answered, per model and provider.",
    );
    for (p, t) in &pairs {
        let labels = [("model", &*p.model), ("provider", &*p.provider)];
        out.sample(REQUESTS, &labels, t.requests);
    }
    const FALLBACKS: &str = "ringway_ai_fallbacks_total";
    out.family(
        FALLBACKS,
        "counter",
        "Tries at a model's target that failed and went on to the next target.",
    );
    for (p, t) in &pairs {
        let labels = [("model", &*p.model), ("provider", &*p.provider)];
        out.sample(FALLBACKS, &labels, t.fallbacks);
    }
    const DURATION: &str = "ringway_ai_request_duration_seconds";
    out.family(
        DURATION,
        "histogram",
        "AI requests: from the request's first byte to the answer's last byte written.",
    );
    for (p, t) in &pairs {
        let labels = [("model", &*p.model), ("provider", &*p.provider)];
        out.histogram(DURATION, &labels, &t.duration);
    }
    const TTFT: &str = "ringway_ai_time_to_first_token_seconds";
    out.family(
        TTFT,
        "histogram",
        "AI requests: from the request's first byte to the first token written (the whole answer when not streaming).",
    );
    for (p, t) in &pairs {
        let labels = [("model", &*p.model), ("provider", &*p.provider)];
        out.histogram(TTFT, &labels, &t.ttft);
    }
    const ERRORS: &str = "ringway_ai_provider_errors_total";
    out.family(
        ERRORS,
        "counter",
        "Provider answers that were errors, by status (none: no answer: refused, reset or timed out).",
    );
    for set in &sets.providers {
        for (i, n) in provider_errors(set).into_iter().enumerate() {
            let labels = [("provider", &*set.provider), ("status", status_label(i))];
            out.sample(ERRORS, &labels, n);
        }
    }
}

/// One sample per server of a family with no other label: (name, type,
/// help) and the value of each.
fn per_server(
    out: &mut Exposition,
    servers: &[(&str, String, ServerTotals)],
    (name, kind, help): (&str, &str, &str),
    value: impl Fn(&ServerTotals) -> u64,
) {
    out.family(name, kind, help);
    for (up, server, t) in servers {
        out.sample(name, &[("upstream", up), ("server", server)], value(t));
    }
}

fn server_families(out: &mut Exposition, servers: &[(&str, String, ServerTotals)]) {
    per_server(
        out,
        servers,
        (
            "ringway_upstream_requests_total",
            "counter",
            "Requests sent (or tried) to each upstream server.",
        ),
        |t| t.requests,
    );
    const RESPONSES: &str = "ringway_upstream_responses_total";
    out.family(
        RESPONSES,
        "counter",
        "Response heads received from each upstream server, by status class.",
    );
    for (up, server, t) in servers {
        for (class, n) in CLASSES.iter().zip(t.responses) {
            out.sample(
                RESPONSES,
                &[("upstream", up), ("server", server), ("class", class)],
                n,
            );
        }
    }
    const ERRORS: &str = "ringway_upstream_errors_total";
    out.family(
        ERRORS,
        "counter",
        "Failed exchanges with each upstream server, by kind.",
    );
    for (up, server, t) in servers {
        for (f, n) in Failure::ALL.iter().zip(t.errors) {
            out.sample(
                ERRORS,
                &[("upstream", up), ("server", server), ("kind", f.as_str())],
                n,
            );
        }
    }
    const CONNECT: &str = "ringway_upstream_connect_duration_seconds";
    out.family(
        CONNECT,
        "histogram",
        "Time to open a connection to each upstream server (TCP, and TLS if any).",
    );
    for (up, server, t) in servers {
        out.histogram(CONNECT, &[("upstream", up), ("server", server)], &t.connect);
    }
    const HEAD: &str = "ringway_upstream_response_head_duration_seconds";
    out.family(
        HEAD,
        "histogram",
        "From sending a request to each upstream server to its response head.",
    );
    for (up, server, t) in servers {
        out.histogram(HEAD, &[("upstream", up), ("server", server)], &t.head);
    }
    per_server(
        out,
        servers,
        (
            "ringway_upstream_open_connections",
            "gauge",
            "Connections open to each upstream server now (in use or idle).",
        ),
        |t| t.open,
    );
    per_server(
        out,
        servers,
        (
            "ringway_upstream_idle_connections",
            "gauge",
            "Idle pooled connections to each upstream server now.",
        ),
        |t| t.idle,
    );
    per_server(
        out,
        servers,
        (
            "ringway_upstream_in_flight_requests",
            "gauge",
            "Requests in flight to each upstream server now.",
        ),
        |t| t.in_flight,
    );
    per_server(
        out,
        servers,
        (
            "ringway_upstream_ejections_total",
            "counter",
            "Times passive health ejected each upstream server.",
        ),
        |t| t.ejections,
    );
    const RETRIES: &str = "ringway_upstream_retries_total";
    out.family(
        RETRIES,
        "counter",
        "Tries at each upstream server that failed and were retried, by reason.",
    );
    for (up, server, t) in servers {
        for (r, n) in RetryReason::ALL.iter().zip(t.retries) {
            out.sample(
                RETRIES,
                &[("upstream", up), ("server", server), ("reason", r.as_str())],
                n,
            );
        }
    }
}

fn process(out: &mut Exposition, p: &Process) {
    if let Some(v) = p.resident_bytes {
        out.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            v,
        );
    }
    if let Some(v) = p.virtual_bytes {
        out.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            v,
        );
    }
    if let Some(v) = p.cpu_seconds {
        out.family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        out.sample("process_cpu_seconds_total", &[], v);
    }
    if let Some(v) = p.start_time {
        out.gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            v,
        );
    }
    if let Some(v) = p.open_fds {
        out.gauge("process_open_fds", "Number of open file descriptors.", v);
    }
    if let Some(v) = p.max_fds {
        out.gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            v,
        );
    }
}

/// The exposition text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.text, " {value}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.text.push('{');
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push_str(k);
            self.text.push_str("=\"");
            escape(&mut self.text, v);
            self.text.push('"');
        }
        self.text.push('}');
    }

    fn counter(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
        self.family(name, "counter", help);
        for (labels, v) in samples {
            self.sample(name, labels, v);
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// One histogram's series: cumulative buckets, sum and count.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Summed) {
        let mut cumulative = 0;
        for (i, n) in h.buckets.iter().enumerate() {
            cumulative += n;
            let le = BOUNDS_LE.get(i).copied().unwrap_or("+Inf");
            let _ = write!(self.text, "{name}_bucket");
            self.labels(labels, Some(le));
            let _ = writeln!(self.text, " {cumulative}");
        }
        let _ = write!(self.text, "{name}_sum");
        self.labels(labels, None);
        let _ = writeln!(self.text, " {}", h.sum_seconds());
        let _ = write!(self.text, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.text, " {cumulative}");
    }
}

/// A label value as the text format writes it: backslash, double quote
/// and line feed escaped.
fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Each server's health state (one sample per state, 1 for the current
/// one) and its active check results.
fn health_families(out: &mut Exposition, snapshot: &crate::snapshot::Snapshot) {
    const STATES: [&str; 5] = ["healthy", "unhealthy", "unknown", "ejected", "draining"];
    const HEALTH: &str = "ringway_upstream_health";
    out.family(
        HEALTH,
        "gauge",
        "Each upstream server's health: 1 for its current state, 0 for the others.",
    );
    let now = crate::upstream::health::now_ms();
    for g in &snapshot.upstreams.groups {
        for s in &g.servers {
            let address = s.member.address.to_string();
            let state = s.health.view(now).state;
            for st in STATES {
                out.sample(
                    HEALTH,
                    &[("upstream", &g.name), ("server", &address), ("state", st)],
                    u64::from(st == state),
                );
            }
        }
    }
    const CHECKS: &str = "ringway_upstream_health_checks_total";
    out.family(
        CHECKS,
        "counter",
        "Active health checks of each upstream server, by result.",
    );
    for g in &snapshot.upstreams.groups {
        for s in &g.servers {
            let address = s.member.address.to_string();
            let c = s.health.checks();
            for (result, n) in [("passed", &c.passed), ("failed", &c.failed)] {
                out.sample(
                    CHECKS,
                    &[
                        ("upstream", &g.name),
                        ("server", &address),
                        ("result", result),
                    ],
                    n.load(std::sync::atomic::Ordering::Relaxed),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::default();
        e.sample("m", &[("route", "a\"b\\c\nd")], 1);
        assert_eq!(e.text, "m{route=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn histograms_are_cumulative_and_counted() {
        let mut h = Summed::default();
        h.buckets[0] = 2;
        h.buckets[3] = 1;
        h.buckets[16] = 1;
        h.sum_ns = 1_500_000_000;
        let mut e = Exposition::default();
        e.histogram("d", &[("route", "r")], &h);
        let lines: Vec<&str> = e.text.lines().collect();
        assert_eq!(lines[0], "d_bucket{route=\"r\",le=\"0.0001\"} 2");
        assert_eq!(lines[3], "d_bucket{route=\"r\",le=\"0.001\"} 3");
        assert_eq!(lines[15], "d_bucket{route=\"r\",le=\"10\"} 3");
        assert_eq!(lines[16], "d_bucket{route=\"r\",le=\"+Inf\"} 4");
        assert_eq!(lines[17], "d_sum{route=\"r\"} 1.5");
        assert_eq!(lines[18], "d_count{route=\"r\"} 4");
    }
}
