//! `ringway status`: what the status page shows, as text — totals, per
//! route request rate, error shares and p50/p99, per upstream server
//! errors and connections, cache hit ratio, reloads, certificate expiry —
//! plus the workers and listeners of `GET /status`.
//!
//! Rates need two readings: `GET /stats` is read twice, `--interval` apart
//! (1 s by default), and rates, shares and quantiles are taken over the
//! difference, as the page does between its refreshes. So the command
//! takes that long to answer; `--interval 0` reads once and shows figures
//! since start. A route without requests in the interval shows its
//! figures since start, marked `*`.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use ringway::admin::client::quantile;
use serde_json::Value;

use super::{print_errors, Target};

/// The classes `GET /stats` counts responses by.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Exit 0 when ready, 1 when not (or when the API refused), 2 when
/// unreachable.
pub fn status(target: Target, json: bool, interval: Duration) -> ExitCode {
    // The readings first and `/status` last, so the workers' counts are
    // as recent as the second reading's.
    let mut readings = None;
    if !json {
        let first = match read(&target, "/stats") {
            Ok(doc) => doc,
            Err(code) => return code,
        };
        readings = Some(if interval.is_zero() {
            (None, first)
        } else {
            std::thread::sleep(interval);
            match read(&target, "/stats") {
                Ok(second) => (Some(first), second),
                Err(code) => return code,
            }
        });
    }
    let status = match read(&target, "/status") {
        Ok(doc) => doc,
        Err(code) => return code,
    };
    match readings {
        Some((before, now)) => print!("{}", report(&status, before.as_ref(), &now)),
        None => println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        ),
    }
    if status["ready"].as_bool() == Some(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One `GET`: the JSON answer, or the exit code: 2 when unreachable, 1
/// when refused.
fn read(target: &Target, path: &str) -> Result<Value, ExitCode> {
    match target.call("GET", path, None) {
        None => Err(ExitCode::from(2)),
        Some((200, body)) => Ok(body),
        Some((code, body)) => {
            print_errors(code, &body);
            Err(ExitCode::from(1))
        }
    }
}

/// The whole report: `status` is `GET /status`, `now` the latest
/// `GET /stats` and `before` the reading `--interval` earlier, if any.
fn report(status: &Value, before: Option<&Value>, now: &Value) -> String {
    let mut out = String::new();
    let dt = before.map_or(0.0, |b| f(&now["time"]) - f(&b["time"]));
    let before = before.filter(|_| dt > 0.0);
    let ready = status["ready"].as_bool() == Some(true);
    let _ = writeln!(
        out,
        "ringway {} up {}, generation {}, {}",
        text(&status["version"]),
        uptime(f(&status["uptime_seconds"])),
        status["generation"],
        if ready { "ready" } else { "NOT ready" }
    );
    for l in status["listeners"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "listener {}", text(l));
    }
    for w in status["workers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "worker {} cpu {} {}: generation {}, {} open connections, {} requests",
            w["id"],
            w["cpu"],
            text(&w["driver"]),
            w["generation"],
            w["connections_open"],
            w["requests"]
        );
    }

    let t = &now["totals"];
    let classes = CLASSES
        .iter()
        .map(|c| format!("{} {c}", n(&t["by_class"][c])))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "requests: {} ({classes}); {} upstream failures",
        n(&t["requests"]),
        n(&t["upstream_failures"])
    );
    if let Some(b) = before {
        let window = Window::of(&t["by_class"], &b["totals"]["by_class"]);
        let _ = match window {
            Some(w) if w.requests > 0 => writeln!(
                out,
                "over {dt:.1} s: {}/s, 5xx {}, 4xx {}",
                rate(w.requests as f64 / dt),
                share(w.class("5xx"), w.requests),
                share(w.class("4xx"), w.requests),
            ),
            Some(_) => writeln!(out, "over {dt:.1} s: no requests"),
            None => writeln!(out, "over {dt:.1} s: counters went down (a restart?)"),
        };
    }
    let _ = writeln!(out, "connections: {} open", n(&t["connections_open"]));
    let r = &now["reloads"];
    let _ = writeln!(
        out,
        "reloads: {} succeeded, {} failed",
        n(&r["succeeded"]),
        n(&r["failed"])
    );
    if let Some(e) = r["last_error"].as_str() {
        let _ = writeln!(out, "last reload error: {}", plain(e));
    }
    let c = &now["cache"];
    let _ = writeln!(
        out,
        "cache: hit ratio {} ({} hits, {} stale, {} misses), {} entries, {}",
        c["hit_ratio"]
            .as_f64()
            .map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0)),
        n(&c["hits"]),
        n(&c["stale"]),
        n(&c["misses"]),
        n(&c["entries"]),
        bytes(c["bytes"].as_u64().unwrap_or(0))
    );

    let (routes, since_start) = routes(now, before, dt);
    out.push('\n');
    out.push_str(&routes);
    out.push('\n');
    out.push_str(&servers(now));
    let certs = certificates(now);
    if !certs.is_empty() {
        out.push('\n');
        out.push_str(&certs);
    }
    if since_start {
        let _ = writeln!(out, "\n* since start: no requests in the interval");
    }
    out
}

/// The route table, and whether some figure in it is since start.
fn routes(now: &Value, before: Option<&Value>, dt: f64) -> (String, bool) {
    let bounds: Vec<f64> = now["bucket_bounds_seconds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    let mut since_start = false;
    let mut rows = Vec::new();
    for r in now["routes"].as_array().into_iter().flatten() {
        let name = text(&r["name"]);
        let earlier = before.and_then(|b| {
            b["routes"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == r["name"])
        });
        let window = earlier.and_then(|p| Window::of(&r["by_class"], &p["by_class"]));
        let buckets = earlier.and_then(|p| diff(&r["duration_buckets"], &p["duration_buckets"]));
        let req_rate = match &window {
            Some(w) => rate(w.requests as f64 / dt),
            None => "-".into(),
        };
        let (s4, s5, p50, p99) = match (&window, &buckets) {
            (Some(w), Some(b)) if w.requests > 0 => (
                share(w.class("4xx"), w.requests),
                share(w.class("5xx"), w.requests),
                seconds(quantile(b, &bounds, 0.5)),
                seconds(quantile(b, &bounds, 0.99)),
            ),
            _ => {
                let total = r["requests"].as_u64().unwrap_or(0);
                let class = |c: &str| r["by_class"][c].as_u64().unwrap_or(0);
                let mark = if before.is_some() && total > 0 {
                    since_start = true;
                    "*"
                } else {
                    ""
                };
                (
                    format!("{}{mark}", share(class("4xx"), total)),
                    format!("{}{mark}", share(class("5xx"), total)),
                    format!("{}{mark}", seconds(r["p50_seconds"].as_f64())),
                    format!("{}{mark}", seconds(r["p99_seconds"].as_f64())),
                )
            }
        };
        let mut row = vec![name, req_rate, n(&r["requests"])];
        row.extend(CLASSES[1..].iter().map(|c| n(&r["by_class"][c])));
        row.extend([s4, s5, p50, p99]);
        rows.push(row);
    }
    let table = table(
        &[
            "ROUTE", "REQ/S", "REQUESTS", "2XX", "3XX", "4XX", "5XX", "4XX%", "5XX%", "P50", "P99",
        ],
        "lrrrrrrrrrr",
        &rows,
    );
    (table, since_start)
}

fn servers(now: &Value) -> String {
    let mut rows = Vec::new();
    for u in now["upstreams"].as_array().into_iter().flatten() {
        for s in u["servers"].as_array().into_iter().flatten() {
            let kinds: Vec<String> = s["errors_by_kind"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{} {}", plain(k), n(v)))
                .collect();
            rows.push(vec![
                text(&u["name"]),
                text(&s["address"]),
                text(&s["health"]),
                n(&s["requests"]),
                n(&s["errors"]),
                n(&s["open_connections"]),
                n(&s["idle_connections"]),
                if kinds.is_empty() {
                    "-".into()
                } else {
                    kinds.join(", ")
                },
            ]);
        }
    }
    if rows.is_empty() {
        return "no upstreams\n".into();
    }
    table(
        &[
            "UPSTREAM",
            "SERVER",
            "HEALTH",
            "REQUESTS",
            "ERRORS",
            "OPEN",
            "IDLE",
            "ERRORS BY KIND",
        ],
        "lllrrrrl",
        &rows,
    )
}

fn certificates(now: &Value) -> String {
    let rows: Vec<Vec<String>> = now["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let names: Vec<String> = c["names"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            let days = c["days_left"].as_i64().unwrap_or(0);
            vec![
                text(&c["listener"]),
                names.join(", "),
                text(&c["not_after"]),
                if days < 0 {
                    format!("EXPIRED {} days ago", -days)
                } else {
                    days.to_string()
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    table(
        &["CERTIFICATE LISTENER", "NAMES", "NOT AFTER", "DAYS LEFT"],
        "lllr",
        &rows,
    )
}

/// Counts by class over an interval.
struct Window {
    by_class: [u64; CLASSES.len()],
    requests: u64,
}

impl Window {
    /// `None` when a counter went down (the server restarted in between).
    fn of(now: &Value, before: &Value) -> Option<Window> {
        let mut by_class = [0; CLASSES.len()];
        for (slot, c) in by_class.iter_mut().zip(CLASSES) {
            *slot = now[c]
                .as_u64()
                .unwrap_or(0)
                .checked_sub(before[c].as_u64().unwrap_or(0))?;
        }
        Some(Window {
            by_class,
            requests: by_class.iter().sum(),
        })
    }

    /// The count of one class, e.g. `"5xx"`.
    fn class(&self, name: &str) -> u64 {
        CLASSES
            .iter()
            .position(|c| *c == name)
            .map_or(0, |i| self.by_class[i])
    }
}

/// Bucket counts over an interval; `None` when a count went down.
fn diff(now: &Value, before: &Value) -> Option<Vec<u64>> {
    let (now, before) = (now.as_array()?, before.as_array()?);
    if now.len() != before.len() {
        return None;
    }
    now.iter()
        .zip(before)
        .map(|(a, b)| a.as_u64()?.checked_sub(b.as_u64()?))
        .collect()
}

/// Rows under a header, columns padded to their widest cell; `align` has
/// one `l` (left) or `r` (right) per column.
fn table(header: &[&str], align: &str, rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for ((cell, w), a) in row.iter().zip(&widths).zip(align.chars()) {
            if !line.is_empty() {
                line.push_str("  ");
            }
            let pad = w - cell.chars().count();
            if a == 'r' {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A count, or `-` when absent.
fn n(v: &Value) -> String {
    v.as_u64().map_or("-".into(), |n| n.to_string())
}

/// A string from the server, printed as data: control characters (which
/// a terminal would act on) escaped.
fn text(v: &Value) -> String {
    v.as_str().map_or("?".into(), plain)
}

fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn share(part: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / total as f64)
    }
}

fn seconds(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 0.001 => format!("{:.0}µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1e3),
        Some(s) => format!("{s:.2}s"),
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn uptime(s: f64) -> String {
    let s = s as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{}s", s % 60)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stats(time: f64, api: [u64; 5], buckets: [u64; 4], failed: u64) -> Value {
        json!({
            "time": time,
            "totals": {
                "requests": api.iter().sum::<u64>(),
                "connections_open": 3,
                "by_class": {"1xx": api[0], "2xx": api[1], "3xx": api[2], "4xx": api[3], "5xx": api[4]},
                "upstream_failures": failed,
            },
            "bucket_bounds_seconds": [0.001, 0.01, 0.1],
            "routes": [{
                "name": "api",
                "requests": api.iter().sum::<u64>(),
                "by_class": {"1xx": api[0], "2xx": api[1], "3xx": api[2], "4xx": api[3], "5xx": api[4]},
                "p50_seconds": 0.0005,
                "p99_seconds": 0.002,
                "duration_buckets": buckets,
            }, {
                "name": "quiet",
                "requests": 4,
                "by_class": {"1xx": 0, "2xx": 4, "3xx": 0, "4xx": 0, "5xx": 0},
                "p50_seconds": 0.02,
                "p99_seconds": 0.09,
                "duration_buckets": [0, 0, 4, 0],
            }],
            "upstreams": [{"name": "gone", "servers": [{
                "address": "127.0.0.1:9",
                "health": "unknown",
                "requests": failed,
                "errors": failed,
                "errors_by_kind": {"connect_refused": failed},
                "open_connections": 0,
                "idle_connections": 0,
            }]}],
            "cache": {"hits": 3, "stale": 1, "misses": 4, "hit_ratio": 0.5, "entries": 2, "bytes": 2048},
            "reloads": {"succeeded": 1, "failed": 1, "last_error": "bad\u{1b}[31m"},
            "certificates": [{"listener": "0.0.0.0:443", "names": ["a.example"], "not_after": "2030-01-01", "days_left": 12}],
        })
    }

    fn status() -> Value {
        json!({
            "version": "9.9.9", "uptime_seconds": 125.0, "generation": 2, "ready": true,
            "listeners": ["127.0.0.1:8080"],
            "workers": [{"id": 0, "cpu": 1, "driver": "io_uring", "generation": 2, "connections_open": 3, "requests": 9}],
            "reloads": {"succeeded": 1, "failed": 1},
        })
    }

    fn line<'a>(report: &'a str, start: &str) -> &'a str {
        report
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{report}"))
    }

    #[test]
    fn two_readings_give_rates_shares_and_quantiles_over_the_interval() {
        let before = stats(100.0, [0, 10, 0, 0, 0], [10, 0, 0, 0], 0);
        // 20 more requests in 2 s: 15 2xx, 1 4xx, 4 5xx, all in (1 ms, 10 ms].
        let now = stats(102.0, [0, 25, 0, 1, 4], [10, 20, 0, 0], 4);
        let out = report(&status(), Some(&before), &now);
        assert!(
            out.starts_with("ringway 9.9.9 up 2m 5s, generation 2, ready\n"),
            "{out}"
        );
        assert!(
            out.contains("worker 0 cpu 1 io_uring: generation 2"),
            "{out}"
        );
        assert!(
            out.contains("over 2.0 s: 10.0/s, 5xx 20.0%, 4xx 5.0%"),
            "{out}"
        );
        let api: Vec<&str> = line(&out, "api ").split_whitespace().collect();
        assert_eq!(
            api,
            ["api", "10.0", "30", "25", "0", "1", "4", "5.0%", "20.0%", "5.5ms", "9.9ms"]
        );
        // No requests in the interval: since start, marked.
        let quiet: Vec<&str> = line(&out, "quiet ").split_whitespace().collect();
        assert_eq!(
            quiet,
            ["quiet", "0.0", "4", "4", "0", "0", "0", "0.0%*", "0.0%*", "20.0ms*", "90.0ms*"]
        );
        assert!(out.contains("* since start"), "{out}");
        let gone: Vec<&str> = line(&out, "gone ").split_whitespace().collect();
        assert_eq!(
            gone,
            [
                "gone",
                "127.0.0.1:9",
                "unknown",
                "4",
                "4",
                "0",
                "0",
                "connect_refused",
                "4"
            ]
        );
        assert!(
            out.contains("cache: hit ratio 50.0% (3 hits, 1 stale, 4 misses), 2 entries, 2.0 KiB"),
            "{out}"
        );
        assert!(out.contains("reloads: 1 succeeded, 1 failed"), "{out}");
        // A terminal escape in a server string is printed, not obeyed.
        assert!(out.contains("last reload error: bad\\u{1b}[31m"), "{out}");
        let cert: Vec<&str> = line(&out, "0.0.0.0:443").split_whitespace().collect();
        assert_eq!(cert, ["0.0.0.0:443", "a.example", "2030-01-01", "12"]);
    }

    #[test]
    fn one_reading_shows_figures_since_start_without_rates() {
        let now = stats(102.0, [0, 25, 0, 1, 4], [10, 20, 0, 0], 4);
        let out = report(&status(), None, &now);
        assert!(!out.contains("over "), "{out}");
        assert!(!out.contains('*'), "{out}");
        let api: Vec<&str> = line(&out, "api ").split_whitespace().collect();
        assert_eq!(
            api,
            ["api", "-", "30", "25", "0", "1", "4", "3.3%", "13.3%", "500µs", "2.0ms"]
        );
    }

    #[test]
    fn a_restart_between_readings_gives_no_rates() {
        let before = stats(100.0, [0, 50, 0, 0, 0], [50, 0, 0, 0], 0);
        let now = stats(102.0, [0, 25, 0, 1, 4], [10, 20, 0, 0], 4);
        let out = report(&status(), Some(&before), &now);
        assert!(out.contains("over 2.0 s: counters went down"), "{out}");
        let api: Vec<&str> = line(&out, "api ").split_whitespace().collect();
        assert_eq!(api[1], "-");
        assert_eq!(api[7], "3.3%*");
    }
}
