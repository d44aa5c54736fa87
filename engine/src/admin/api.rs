//! The admin API's endpoints. Every answer but the status page and
//! `/metrics` is JSON; every error is
//! `{"error": "...", "errors": [{"path", "line", "column", "message"}]}`
//! with the config field paths a reload was refused for.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /` | the status page: HTML that polls `GET /stats` (see `admin::page`) |
//! | `GET /healthz` | the process is up |
//! | `GET /readyz` | 200 when every worker runs the current generation, else 503 |
//! | `GET /metrics` | Prometheus text exposition 0.0.4 (see `admin::metrics`) |
//! | `GET /stats` | per route, per upstream server, cache, reloads, certificates (see `admin::stats`) |
//! | `GET /status` | version, uptime, per-worker CPU, driver, generation, connections; reload figures |
//! | `GET /config` | the effective config (secrets redacted) and its generation |
//! | `PUT /config` | replace the config (TOML, or JSON with `Content-Type: application/json`) |
//! | `POST /config/validate` | the same checks as `PUT /config`, applying nothing |
//! | `POST /config/reload` | re-read the config file given with `-c` (what SIGHUP does) |
//! | `GET /routes` | the route table, in config order |
//! | `GET /cache` | per worker: entries, bytes, hits, misses, hit ratio and the other cache counters |
//! | `POST /cache/purge` | `{"url": "http://host/path?q"}`, `{"prefix": "http://host/path"}` or `{"all": true}`: purge on every worker |
//! | `POST /logs/reopen` | reopen the access log's file (what SIGUSR1 does), after log rotation renamed it |
//!
//! With `admin.token` set every endpoint but `/healthz` and `/readyz` (which
//! probes must reach) and the status page (which holds no data and asks for
//! the token itself) needs `Authorization: Bearer <token>`; without one,
//! every endpoint but the probes needs a `Host` that is an IP address or
//! `localhost` (see [`local_host_only`]). Both are checked on the head,
//! before any body is read.

use ringway_config::{Action, Config, ConfigError, HostMatch, LimitKey, PathMatch};
use serde_json::{json, Value};

use super::Request;
use crate::runtime::control::{Format, Handle, ReloadError, Reloaded};
use crate::worker::link::Purge;

/// A response: status, extra headers, JSON body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(status: u16, value: &Value) -> Answer {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Answer {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    /// A body of another type.
    pub(crate) fn typed(content_type: &'static str, body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    pub(crate) fn error(status: u16, message: &str) -> Answer {
        Answer::json(status, &json!({ "error": message, "errors": [] }))
    }

    fn errors(status: u16, message: &str, errors: &[ConfigError]) -> Answer {
        let items: Vec<Value> = errors.iter().map(error_json).collect();
        Answer::json(status, &json!({ "error": message, "errors": items }))
    }
}

fn error_json(e: &ConfigError) -> Value {
    json!({
        "path": e.path,
        "line": e.line,
        "column": e.column,
        "message": e.message,
    })
}

/// Decides from the head alone whether a request may go on: `None` when
/// it may. Probes (`/healthz`, `/readyz`) always may; the status page
/// needs no token, but without one it keeps the Host rule, as the page's
/// own requests for data do.
pub(crate) fn admit(plane: &Handle, req: &Request) -> Option<Answer> {
    if matches!(req.path.as_str(), "/healthz" | "/readyz") {
        return None;
    }
    let snapshot = plane.snapshot();
    match snapshot.config.admin.token.as_deref() {
        Some(_) if is_page(req) => None,
        Some(token) => authorize(token, req),
        None => local_host_only(req),
    }
}

/// `GET /` or `HEAD /`, exactly: the one request that needs no token.
fn is_page(req: &Request) -> bool {
    req.path == "/" && matches!(req.method.as_str(), "GET" | "HEAD")
}

/// Without a token the API trusts whoever can reach it on loopback. A web
/// page in a local browser can reach loopback too, through a DNS name that
/// rebinds to 127.0.0.1; such requests carry that name in Host, so only IP
/// literals and `localhost` are accepted.
fn local_host_only(req: &Request) -> Option<Answer> {
    let host = req.header("host")?;
    if is_local_name(host) {
        None
    } else {
        Some(Answer::error(
            403,
            "Host must be an IP address or localhost (or set admin.token)",
        ))
    }
}

fn is_local_name(host: &str) -> bool {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        return port_ok && ip.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

pub(crate) fn handle(plane: &Handle, req: &Request) -> Answer {
    let method = req.method.as_str();
    if let Some(answer) = super::upstreams::drain(plane, &req.path, method) {
        return answer;
    }
    match (req.path.as_str(), method) {
        ("/upstreams", "GET" | "HEAD") => super::upstreams::list(plane),
        ("/upstreams", _) => not_allowed("GET, HEAD"),
        ("/", "GET" | "HEAD") => super::page::page(),
        ("/", _) => not_allowed("GET, HEAD"),
        ("/healthz", "GET" | "HEAD") => Answer::json(200, &json!({ "status": "ok" })),
        ("/readyz", "GET" | "HEAD") => readyz(plane),
        ("/status", "GET" | "HEAD") => status(plane),
        ("/config", "GET" | "HEAD") => get_config(plane),
        ("/config", "PUT") => put_config(plane, req),
        ("/config/validate", "POST") => validate(plane, req),
        ("/config/reload", "POST") => reloaded(plane.reload_file()),
        ("/routes", "GET" | "HEAD") => routes(plane),
        ("/cache", "GET" | "HEAD") => cache(plane),
        ("/cache/purge", "POST") => purge(plane, req),
        ("/metrics", "GET" | "HEAD") => super::metrics::scrape(plane),
        ("/metrics", _) => not_allowed("GET, HEAD"),
        ("/stats", "GET" | "HEAD") => super::stats::stats(plane),
        ("/stats", _) => not_allowed("GET, HEAD"),
        ("/logs/reopen", "POST") => reopen_logs(plane),
        ("/cache", _) => not_allowed("GET, HEAD"),
        ("/cache/purge" | "/logs/reopen", _) => not_allowed("POST"),
        ("/healthz" | "/readyz" | "/status" | "/routes", _) => not_allowed("GET, HEAD"),
        ("/config", _) => not_allowed("GET, HEAD, PUT"),
        ("/config/validate" | "/config/reload", _) => not_allowed("POST"),
        _ => Answer::error(404, "no such admin endpoint"),
    }
}

fn not_allowed(allow: &'static str) -> Answer {
    let mut a = Answer::error(405, "method not allowed");
    a.headers.push(("Allow", allow.to_string()));
    a
}

/// `None` when the request carries the token.
fn authorize(token: &str, req: &Request) -> Option<Answer> {
    let given = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => None,
        _ => {
            let mut a = Answer::error(401, "missing or wrong bearer token");
            a.headers
                .push(("WWW-Authenticate", "Bearer realm=\"ringway-admin\"".into()));
            Some(a)
        }
    }
}

/// Compares without an early exit, so timing does not reveal how much of
/// a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn readyz(plane: &Handle) -> Answer {
    let ready = plane.is_ready();
    let workers: Vec<u64> = plane.workers().iter().map(|w| w.generation).collect();
    Answer::json(
        if ready { 200 } else { 503 },
        &json!({
            "ready": ready,
            "generation": plane.generation(),
            "draining": plane.is_draining(),
            "worker_generations": workers,
        }),
    )
}

/// Cache figures: the cache's size (one for all workers), and its
/// traffic per worker and summed.
fn cache(plane: &Handle) -> Answer {
    let snapshot = plane.snapshot();
    let held = snapshot.cache.totals();
    let mut totals = (0u64, 0u64);
    let workers: Vec<Value> = plane
        .worker_stats()
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let (hits, misses) = (s.cache_hits.get(), s.cache_misses.get());
            totals.0 += hits;
            totals.1 += misses;
            json!({
                "id": id,
                "hits": hits,
                "misses": misses,
                "hit_ratio": ratio(hits, misses),
                "stale": s.cache_stale.get(),
                "revalidated": s.cache_revalidated.get(),
                "stored": s.cache_stored.get(),
                "collapsed": s.cache_collapsed.get(),
                "bypass": s.cache_bypass_method.get() + s.cache_bypass_range.get() + s.cache_bypass_body.get(),
                "invalidations": s.cache_invalidations.get(),
                "background_revalidations": s.cache_background.get(),
            })
        })
        .collect();
    let c = &snapshot.config.cache;
    Answer::json(
        200,
        &json!({
            "shared_size": c.size,
            "max_entry_size": c.max_entry_size,
            "routes": snapshot
                .config
                .routes
                .iter()
                .filter_map(|r| r.cache.as_ref().map(|rc| json!({
                    "route": r.name,
                    "size": rc.size.unwrap_or(c.size),
                    "own_shard": rc.size.is_some(),
                    "max_entry_size": rc.max_entry_size,
                })))
                .collect::<Vec<_>>(),
            "workers": workers,
            "entries": held.entries,
            "bytes": held.bytes,
            "evictions": held.evictions,
            "hits": totals.0,
            "misses": totals.1,
            "hit_ratio": ratio(totals.0, totals.1),
        }),
    )
}

fn ratio(hits: u64, misses: u64) -> f64 {
    if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    }
}

/// `POST /cache/purge`: by URL, by prefix, or everything.
fn purge(plane: &Handle, req: &Request) -> Answer {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return Answer::error(400, &format!("body is not JSON: {e}")),
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let scope = match (text("url"), text("prefix"), body.get("all")) {
        (Some(url), None, None) => Purge::Url(url),
        (None, Some(prefix), None) => Purge::Prefix(prefix),
        (None, None, Some(Value::Bool(true))) => Purge::All,
        _ => {
            return Answer::error(
                400,
                "give exactly one of {\"url\": \"http://host/path\"}, {\"prefix\": \"http://host/\"}, {\"all\": true}",
            )
        }
    };
    if let Purge::Url(u) | Purge::Prefix(u) = &scope {
        if !u.starts_with("http://") && !u.starts_with("https://") {
            return Answer::error(400, "the URL must start with http:// or https://");
        }
    }
    let removed = plane.purge(scope);
    Answer::json(
        if removed.is_some() { 200 } else { 503 },
        &json!({
            "purged": removed.unwrap_or(0),
            "complete": removed.is_some(),
        }),
    )
}

/// `POST /logs/reopen`: answers once the writer writes to the file
/// opened anew (or says why it could not).
fn reopen_logs(plane: &Handle) -> Answer {
    match plane.reopen_access_log() {
        Ok(reopened) => Answer::json(200, &json!({ "reopened": reopened })),
        Err(message) => Answer::error(500, &message),
    }
}

fn status(plane: &Handle) -> Answer {
    let workers: Vec<Value> = plane
        .workers()
        .iter()
        .map(|w| {
            json!({
                "id": w.info.id,
                "cpu": w.info.cpu,
                "driver": w.info.driver,
                "generation": w.generation,
                "connections_open": w.connections_open,
                "requests": w.requests,
            })
        })
        .collect();
    let r = plane.reload_stats();
    let propagation = r.propagation.map(|(p50, p99, max)| {
        json!({
            "samples": r.propagation_samples,
            "p50_us": p50.as_micros() as u64,
            "p99_us": p99.as_micros() as u64,
            "max_us": max.as_micros() as u64,
        })
    });
    let snapshot = plane.snapshot();
    let limits: Vec<Value> = snapshot
        .config
        .routes
        .iter()
        .zip(&snapshot.routes)
        .flat_map(|(route, compiled)| {
            compiled.policy.limits.iter().map(move |l| {
                json!({
                    "route": route.name,
                    "key": match &l.key {
                        LimitKey::Route => "route".to_string(),
                        LimitKey::ClientIp => "client-ip".to_string(),
                        LimitKey::Consumer => "consumer".to_string(),
                        LimitKey::Header(h) => format!("header:{h}"),
                    },
                    "keys": l.shared.keys(),
                    "evictions": l.shared.evictions.load(std::sync::atomic::Ordering::Relaxed),
                    "lease": l.shared.lease,
                })
            })
        })
        .collect();
    let t = plane.totals();
    let listeners: Vec<String> = plane.listen_addrs().iter().map(|a| a.to_string()).collect();
    let now = crate::tls::certs::unix_now();
    let tls: Vec<Value> = snapshot
        .tls
        .iter()
        .flatten()
        .map(|l| {
            json!({
                "listener": l.configured.to_string(),
                "certificates": l.certs.iter().map(|c| json!({
                    "file": c.file,
                    "names": c.names,
                    "subject": c.subject,
                    "not_after": crate::tls::certs::date(c.not_after),
                    "days_left": (c.not_after - now).div_euclid(86_400),
                    "expires_soon": (c.not_after - now).div_euclid(86_400) < crate::tls::EXPIRY_WARNING_DAYS,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Answer::json(
        200,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": plane.uptime().as_secs_f64(),
            "generation": plane.generation(),
            "ready": plane.is_ready(),
            "draining": plane.is_draining(),
            "config_file": plane.config_file().map(|p| p.display().to_string()),
            "listeners": listeners,
            "workers": workers,
            "reloads": {
                "succeeded": r.succeeded,
                "failed": r.failed,
                "last_error": r.last_error,
                "propagation": propagation,
            },
            "rate_limits": limits,
            "tls": tls,
            "totals": {
                "connections_accepted": t.connections_accepted,
                "connections_open": t.connections_open,
                "requests": t.requests,
                "responses_2xx": t.responses_2xx,
                "responses_4xx": t.responses_4xx,
                "responses_5xx": t.responses_5xx,
                "refused_401": t.refused_401,
                "refused_403": t.refused_403,
                "refused_429": t.refused_429,
                "refused_503": t.refused_503,
                "upstream_502": t.upstream_502,
                "upstream_503": t.upstream_503,
                "upstream_504": t.upstream_504,
                "upstream_tls_failures": t.upstream_tls_failures,
                "tls_handshakes": t.tls_handshakes,
                "tls_resumed": t.tls_resumed,
                "tls_failed": {
                    "timeout": t.tls_failed_timeout,
                    "closed": t.tls_failed_closed,
                    "unknown_sni": t.tls_failed_unknown_sni,
                    "client_cert": t.tls_failed_client_cert,
                    "incompatible": t.tls_failed_incompatible,
                    "certificate_rejected_by_client": t.tls_failed_rejected,
                    "protocol": t.tls_failed_protocol,
                },
                "panics": t.panics,
                "access_log_dropped": t.access_log_dropped,
            },
        }),
    )
}

fn get_config(plane: &Handle) -> Answer {
    let snapshot = plane.snapshot();
    let config: Value = serde_json::from_str(&snapshot.config.to_json(true)).unwrap_or(Value::Null);
    Answer::json(
        200,
        &json!({ "generation": snapshot.generation, "config": config }),
    )
}

/// The body's format: JSON when the content type says so, or when there is
/// none and the body starts with `{`; TOML otherwise.
fn format_of(req: &Request) -> Format {
    match req.header("content-type") {
        Some(t) if t.to_ascii_lowercase().contains("json") => Format::Json,
        Some(_) => Format::Toml,
        None if req.body.trim_ascii_start().first() == Some(&b'{') => Format::Json,
        None => Format::Toml,
    }
}

fn parse(req: &Request) -> Result<Config, Answer> {
    let Ok(src) = std::str::from_utf8(&req.body) else {
        return Err(Answer::error(400, "the config is not UTF-8"));
    };
    let parsed = match format_of(req) {
        Format::Toml => Config::from_toml_str(src),
        Format::Json => Config::from_json_str(src),
    };
    parsed.map_err(|errors| {
        let items: Vec<ConfigError> = errors.iter().cloned().collect();
        Answer::errors(400, "invalid config", &items)
    })
}

fn put_config(plane: &Handle, req: &Request) -> Answer {
    let Ok(src) = std::str::from_utf8(&req.body) else {
        return Answer::error(400, "the config is not UTF-8");
    };
    reloaded(plane.reload_source(src, format_of(req)))
}

fn reloaded(result: Result<Reloaded, ReloadError>) -> Answer {
    match result {
        Ok(r) => {
            let added: Vec<String> = r.listeners_added.iter().map(|a| a.to_string()).collect();
            let removed: Vec<String> = r.listeners_removed.iter().map(|a| a.to_string()).collect();
            Answer::json(
                200,
                &json!({
                    "generation": r.generation,
                    "propagated": r.propagation.is_some(),
                    "propagation_us": r.propagation.map(|p| p.as_micros() as u64),
                    "restart_required": r.restart_required,
                    "warnings": r.warnings,
                    "listeners_added": added,
                    "listeners_removed": removed,
                }),
            )
        }
        Err(e) => {
            let status = match e {
                ReloadError::Invalid(_) | ReloadError::Listen { .. } => 400,
                ReloadError::NoFile => 409,
                ReloadError::Draining => 503,
            };
            let message = match e {
                ReloadError::Invalid(_) => "invalid config; the running config stays",
                ReloadError::Listen { .. } => "cannot listen; the running config stays",
                _ => "reload refused",
            };
            Answer::errors(status, message, &e.items())
        }
    }
}

fn validate(plane: &Handle, req: &Request) -> Answer {
    let config = match parse(req) {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    match plane.check(&config) {
        Ok(restart) => Answer::json(200, &json!({ "valid": true, "restart_required": restart })),
        Err(e) => Answer::errors(400, "config would be refused", &e.items()),
    }
}

fn routes(plane: &Handle) -> Answer {
    let snapshot = plane.snapshot();
    let config = &snapshot.config;
    let routes: Vec<Value> = config
        .routes
        .iter()
        .map(|r| {
            let host = r.host.as_ref().map(|h| match h {
                HostMatch::Exact(h) => h.clone(),
                HostMatch::Suffix(s) => format!("*{s}"),
            });
            let (kind, path) = match &r.path {
                PathMatch::Exact(p) => ("exact", p),
                PathMatch::Prefix(p) => ("prefix", p),
            };
            let action = match &r.action {
                Action::Upstream(i) => {
                    let up = &config.upstreams[*i];
                    let servers: Vec<String> =
                        up.servers.iter().map(|s| s.address.to_string()).collect();
                    json!({ "upstream": up.name, "servers": servers })
                }
                Action::Respond(resp) => json!({ "respond": resp.status }),
                Action::Ai(ai) => {
                    let models: Vec<&str> = ai
                        .models
                        .iter()
                        .map(|&i| config.ai_models[i].name.as_str())
                        .collect();
                    json!({ "ai": models })
                }
                Action::Redirect(rd) => {
                    json!({ "redirect": { "status": rd.status, "location": rd.location.source } })
                }
            };
            json!({
                "name": r.name,
                "host": host,
                "path": { kind: path },
                "methods": r.methods,
                "action": action,
            })
        })
        .collect();
    Answer::json(
        200,
        &json!({ "generation": snapshot.generation, "routes": routes }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_literals_and_localhost_are_local_names() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9901",
            "localhost",
            "LOCALHOST:1",
            "[::1]",
            "[::1]:9901",
            "10.1.2.3",
        ] {
            assert!(is_local_name(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9901",
            "127.0.0.1.nip.io",
            "[::1",
            "[::1]x",
            "localhost.evil",
        ] {
            assert!(!is_local_name(bad), "{bad}");
        }
    }

    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abc", b"abcdef"));
    }
}
