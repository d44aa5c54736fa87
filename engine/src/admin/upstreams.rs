//! `GET /upstreams`: every upstream with its policy and, per server, its
//! health (active checks, ejections, draining), requests in flight, latency
//! average and counters; and `POST /upstreams/NAME/servers/ADDR/drain`
//! (and `/undrain`), which takes a server out of rotation gracefully: no
//! new request goes to it, those in flight finish, its idle connections
//! close. Draining is kept across reloads while the server stays under
//! the same upstream, and undone by `/undrain` (or a restart).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::api::Answer;
use crate::runtime::control::Handle;
use crate::stats::labeled::{RetryReason, ServerTotals};
use crate::upstream::health::now_ms;

pub(crate) fn list(plane: &Handle) -> Answer {
    let snapshot = plane.snapshot();
    let now = now_ms();
    let upstreams: Vec<Value> = snapshot
        .config
        .upstreams
        .iter()
        .zip(&snapshot.upstreams.groups)
        .map(|(up, g)| {
            let servers: Vec<Value> = g
                .servers
                .iter()
                .map(|s| {
                    let set = snapshot
                        .metrics
                        .servers
                        .iter()
                        .find(|x| x.upstream == up.name && x.address == s.member.address);
                    let t = set.map(ServerTotals::of).unwrap_or_default();
                    let view = s.health.view(now);
                    let retries: serde_json::Map<String, Value> = RetryReason::ALL
                        .iter()
                        .zip(t.retries)
                        .filter(|(_, n)| *n > 0)
                        .map(|(r, n)| (r.as_str().to_string(), n.into()))
                        .collect();
                    json!({
                        "address": s.member.address.to_string(),
                        "name": s.member.name.as_deref(),
                        "weight": s.member.weight,
                        "backup": s.member.backup,
                        "max_connections": s.member.max_connections,
                        "health": view.state,
                        "consecutive_failures": view.consecutive_failures,
                        "ejections": view.ejections,
                        "ejected_for_seconds": view.ejected_for_ms as f64 / 1000.0,
                        "checks_passed": s.health.checks().passed.load(Relaxed),
                        "checks_failed": s.health.checks().failed.load(Relaxed),
                        "in_flight": t.in_flight,
                        "ewma_seconds": t.ewma_us as f64 / 1e6,
                        "requests": t.requests,
                        "errors": t.errors.iter().sum::<u64>(),
                        "retries": retries,
                    })
                })
                .collect();
            json!({
                "name": up.name,
                "policy": policy_name(&up.balance.policy),
                "fail_open": up.fail_open,
                "active_checks": up.health_check.is_some(),
                "passive_checks": up.outlier.enabled,
                "ejected": g.health.ejected(now),
                "ejectable": g.health.allowed(up.outlier.max_ejected_percent)
                    .min(g.health.servers()),
                "servers": servers,
            })
        })
        .collect();
    Answer::json(200, &json!({ "upstreams": upstreams }))
}

fn policy_name(p: &ringway_config::BalancePolicy) -> String {
    match p {
        ringway_config::BalancePolicy::Hash(key) => format!("hash:{key}"),
        other => other.as_str().to_string(),
    }
}

/// `POST /upstreams/NAME/servers/ADDR/drain` or `.../undrain`; `None`
/// when `path` is not of that form.
pub(crate) fn drain(plane: &Handle, path: &str, method: &str) -> Option<Answer> {
    let rest = path.strip_prefix("/upstreams/")?;
    let (name, rest) = rest.split_once("/servers/")?;
    let (address, action) = rest.rsplit_once('/')?;
    let on = match action {
        "drain" => true,
        "undrain" => false,
        _ => return None,
    };
    if method != "POST" {
        let mut a = Answer::error(405, "method not allowed");
        a.headers.push(("Allow", "POST".to_string()));
        return Some(a);
    }
    let snapshot = plane.snapshot();
    let Some(g) = snapshot.upstreams.groups.iter().find(|g| g.name == name) else {
        return Some(Answer::error(404, &format!("no upstream named {name:?}")));
    };
    let Some(s) = g
        .servers
        .iter()
        .find(|s| s.member.address.to_string() == address)
    else {
        return Some(Answer::error(
            404,
            &format!("upstream {name:?} has no server {address:?} (servers are listed by address, as GET /upstreams shows them)"),
        ));
    };
    s.health.set_draining(on, now_ms());
    g.epoch.fetch_add(1, Relaxed);
    tracing::info!(
        upstream = name,
        server = address,
        draining = on,
        "server drain changed by the admin API"
    );
    Some(Answer::json(
        200,
        &json!({
            "upstream": name,
            "server": address,
            "draining": on,
            "in_flight": snapshot
                .metrics
                .servers
                .iter()
                .find(|x| x.upstream == name && x.address == s.member.address)
                .map_or(0, |x| ServerTotals::of(x).in_flight),
        }),
    ))
}
