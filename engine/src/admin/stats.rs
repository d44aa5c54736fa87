//! `GET /stats`: the figures the status page and `ringway status` show, as
//! one JSON document — totals, per route (requests by class, latency
//! buckets and quantiles, bytes), per upstream server (requests, errors by
//! kind, connections), cache, reloads and certificates.
//!
//! Counters are totals since start; a reader that wants rates polls twice
//! and divides the difference by the difference of `time`. Each route's
//! `duration_buckets` (per bucket, not cumulative, bounds in
//! `bucket_bounds_seconds` with a last `+Inf` bucket) let it compute
//! quantiles over just its polling window, as Prometheus'
//! `histogram_quantile` does over a range; `p50_seconds`/`p99_seconds` are
//! since start.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::api::Answer;
use super::process::unix_seconds;
use crate::runtime::control::Handle;
use crate::stats::histogram::{Summed, BOUNDS_NS};
use crate::stats::labeled::{Failure, RouteTotals, ServerTotals, CLASSES};

pub(crate) fn stats(plane: &Handle) -> Answer {
    Answer::json(200, &document(plane))
}

fn document(plane: &Handle) -> Value {
    let t = plane.totals();
    let snapshot = plane.snapshot();
    let m = &snapshot.metrics;
    let routes: Vec<Value> = m
        .routes
        .iter()
        .map(|r| {
            let t = RouteTotals::of(r);
            json!({
                "name": r.name,
                "requests": t.requests(),
                "by_class": by_class(&t.by_class),
                "bytes_in": t.bytes_in,
                "bytes_out": t.bytes_out,
                "refused": t.refused.iter().sum::<u64>(),
                "p50_seconds": quantile(&t.duration, 0.5),
                "p99_seconds": quantile(&t.duration, 0.99),
                "duration_buckets": t.duration.buckets.to_vec(),
            })
        })
        .collect();
    let mut upstreams: Vec<Value> = Vec::new();
    let now = crate::upstream::health::now_ms();
    for (up, g) in snapshot
        .config
        .upstreams
        .iter()
        .zip(&snapshot.upstreams.groups)
    {
        let servers: Vec<Value> = m
            .servers
            .iter()
            .filter(|s| s.upstream == up.name)
            .map(|s| {
                let health = g
                    .servers
                    .iter()
                    .find(|x| x.member.address == s.address)
                    .map_or("unknown", |x| x.health.view(now).state);
                let t = ServerTotals::of(s);
                let mut kinds = Map::new();
                for (f, n) in Failure::ALL.iter().zip(t.errors) {
                    if n > 0 {
                        kinds.insert(f.as_str().to_string(), n.into());
                    }
                }
                json!({
                    "address": s.address.to_string(),
                    "health": health,
                    "in_flight": t.in_flight,
                    "requests": t.requests,
                    "responses": by_class(&t.responses),
                    "errors": t.errors.iter().sum::<u64>(),
                    "errors_by_kind": kinds,
                    "open_connections": t.open,
                    "idle_connections": t.idle,
                    "p50_response_head_seconds": quantile(&t.head, 0.5),
                    "p99_response_head_seconds": quantile(&t.head, 0.99),
                })
            })
            .collect();
        upstreams.push(json!({ "name": up.name, "servers": servers }));
    }
    let now = crate::tls::certs::unix_now();
    let certificates: Vec<Value> = snapshot
        .tls
        .iter()
        .flatten()
        .flat_map(|l| {
            l.certs.iter().map(move |c| {
                json!({
                    "listener": l.configured.to_string(),
                    "file": c.file,
                    "names": c.names,
                    "subject": c.subject,
                    "not_after": crate::tls::certs::date(c.not_after),
                    "days_left": (c.not_after - now).div_euclid(86_400),
                })
            })
        })
        .collect();
    let r = plane.reload_stats();
    let hits = t.cache_hits + t.cache_stale;
    json!({
        "time": unix_seconds(SystemTime::now()),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": plane.uptime().as_secs_f64(),
        "generation": plane.generation(),
        "ready": plane.is_ready(),
        "workers": plane.workers().iter().map(|w| json!({
            "id": w.info.id,
            "cpu": w.info.cpu,
            "driver": w.info.driver,
        })).collect::<Vec<_>>(),
        "totals": {
            "requests": t.requests,
            "connections_open": t.connections_open,
            "by_class": {
                "1xx": t.responses_1xx,
                "2xx": t.responses_2xx,
                "3xx": t.responses_3xx,
                "4xx": t.responses_4xx,
                "5xx": t.responses_5xx,
            },
            "upstream_failures": t.upstream_502 + t.upstream_503 + t.upstream_504,
        },
        "bucket_bounds_seconds": BOUNDS_NS.iter().map(|&b| b as f64 / 1e9).collect::<Vec<_>>(),
        "routes": routes,
        "upstreams": upstreams,
        "cache": {
            "hits": t.cache_hits,
            "stale": t.cache_stale,
            "misses": t.cache_misses,
            "hit_ratio": if hits + t.cache_misses == 0 {
                Value::Null
            } else {
                json!(hits as f64 / (hits + t.cache_misses) as f64)
            },
            "entries": t.cache_entries,
            "bytes": t.cache_bytes,
        },
        "reloads": {
            "succeeded": r.succeeded,
            "failed": r.failed,
            "last_error": r.last_error,
            "last_success": r.last_success.map(unix_seconds),
        },
        "certificates": certificates,
    })
}

fn by_class(counts: &[u64; CLASSES.len()]) -> Value {
    let mut m = Map::new();
    for (class, n) in CLASSES.iter().zip(counts) {
        m.insert((*class).to_string(), (*n).into());
    }
    Value::Object(m)
}

fn quantile(h: &Summed, q: f64) -> Value {
    h.quantile(q)
        .map_or(Value::Null, |d| json!(d.as_secs_f64()))
}
