//! The run's report: one serialisable value built from the plan and the
//! outcome, printed as a human summary or written as JSON.
//!
//! The summary puts the figures that decide whether a result can be
//! trusted next to the result: in open loop the corrected latency (from
//! the intended send time) leads and the service time sits beside it; the
//! send lag shows how late requests went out, split into what the server
//! caused (connections still busy) and what the generator itself added
//! (timer granularity, CPU); and a warning says when the generator did not
//! hold the requested rate rather than letting a lower rate pass for the
//! server's. The time to the first body byte sits under the latency: for a
//! streamed answer, the wait for its first event.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::plan::Plan;
use crate::run::Outcome;
use crate::schedule::Stage;
use crate::stats::{ErrorCounts, IntervalSummary};
use crate::targets::TargetResult;
use crate::units::{fmt_bytes, fmt_duration, fmt_micros, fmt_rate};
use crate::window::{self, WindowSummary};

/// An open-loop run whose sends fell below this share of the requested
/// rate did not hold its schedule.
pub const HELD_RATIO: f64 = 0.99;
/// Generator-added send lag (p99) above which corrected latencies carry a
/// visible timer/CPU component worth a warning.
pub const GEN_LAG_WARN: Duration = Duration::from_millis(5);

/// Serialises a duration as fractional seconds.
pub fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p75_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p75_us: h.value_at_quantile(0.75),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            p9999_us: h.value_at_quantile(0.9999),
            max_us: h.max(),
        }
    }

    fn row(&self) -> [u64; 7] {
        [
            self.p50_us,
            self.p75_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.p9999_us,
            self.max_us,
        ]
    }
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    /// `open` or `closed`.
    pub mode: &'static str,
    pub connections: usize,
    pub threads: usize,
    pub cpus: Vec<usize>,
    pub drivers: Vec<&'static str>,
    pub pinned: bool,
    /// HTTPS: whether reconnects resumed TLS sessions (false with
    /// `--no-resume`: every connection was a full handshake). None for
    /// plain HTTP.
    pub tls_resumption: Option<bool>,
    /// Wall-clock start of the measured run as Unix seconds: the instant
    /// the offsets of `intervals` and `windows` count from, for lining
    /// them up with events outside the generator (a server's log, a fault).
    pub started_unix_s: f64,
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// Open loop: the mean requested rate.
    pub requested_rate: Option<f64>,
    pub stages: Option<Vec<Stage>>,
    /// Requests sent per second.
    pub sent_rate: f64,
    /// Complete responses per second.
    pub achieved_rate: f64,
    pub sent: u64,
    pub responses: u64,
    /// Open loop: scheduled requests never sent.
    pub unsent: u64,
    /// Closed loop: send to response end. Open loop: intended send to
    /// response end (corrected for coordinated omission).
    pub latency: Percentiles,
    /// From the same start as `latency` to the arrival of the first byte
    /// of the response body, over the responses that had one (`count`
    /// says how many).
    pub first_byte: Percentiles,
    /// Open loop: actual send to response end.
    pub service_time: Option<Percentiles>,
    /// Open loop: actual minus intended send time.
    pub send_lag: Option<Percentiles>,
    /// Open loop: the part of the send lag the generator added.
    pub generator_lag: Option<Percentiles>,
    /// Open loop: whether sends kept up with the schedule.
    pub schedule_held: Option<bool>,
    pub statuses: BTreeMap<u16, u64>,
    pub expected_statuses: String,
    pub errors: ErrorCounts,
    pub error_rate: f64,
    pub connects: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub stopped_early: bool,
    pub warnings: Vec<String>,
    pub intervals: Vec<IntervalSummary>,
    /// With `--window`: the run in windows of that many seconds.
    pub windows: Vec<WindowSummary>,
    pub targets: Vec<TargetResult>,
}

impl Report {
    /// Builds the report of a finished run.
    pub fn new(plan: &Plan, out: &Outcome) -> Report {
        let c = &out.counters;
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let open = plan.load.is_open();
        let (requested_rate, stages) = match &plan.load {
            crate::plan::Load::Open { schedule } => {
                let requested = if out.stopped_early {
                    // Compare with what was asked for up to the stop.
                    schedule.count_until(out.elapsed) / secs
                } else {
                    schedule.mean_rate()
                };
                let stages = (schedule.stages().len() > 1
                    || schedule.stages().iter().any(|s| s.from != s.to))
                .then(|| schedule.stages().to_vec());
                (Some(requested), stages)
            }
            crate::plan::Load::Closed { .. } => (None, None),
        };
        let sent_rate = c.sent as f64 / secs;
        let gen_lag = out.latencies.gen_lag.as_ref().map(Percentiles::of);
        let schedule_held = requested_rate.map(|r| sent_rate >= r * HELD_RATIO && c.unsent == 0);
        let mut warnings = Vec::new();
        let gen_late = gen_lag.is_some_and(|g| Duration::from_micros(g.p99_us) > GEN_LAG_WARN);
        if let (Some(r), Some(false)) = (requested_rate, schedule_held) {
            // Who was late: the generator's own timer/CPU, or connections
            // still waiting for slow responses (one request in flight each).
            let cause = if gen_late {
                "the generator could not keep up"
            } else {
                "connections were busy waiting for slow responses (more -c lets a slow server be offered the full rate)"
            };
            warnings.push(format!(
                "the schedule was not held: sent {} of the requested {} ({:.1}%){}; {cause}",
                fmt_rate(sent_rate),
                fmt_rate(r),
                100.0 * sent_rate / r,
                if c.unsent > 0 {
                    format!(", {} scheduled requests never sent", c.unsent)
                } else {
                    String::new()
                }
            ));
        }
        if let Some(g) = gen_lag.filter(|_| gen_late) {
            warnings.push(format!(
                "the generator itself sent late (p99 {}): corrected latencies include up to that much timer/CPU delay",
                fmt_micros(g.p99_us)
            ));
        }
        if !out.pinned {
            warnings.push("could not pin every thread to its CPU".to_string());
        }
        if out.stopped_early {
            warnings.push("stopped early: figures cover the run up to the stop".to_string());
        }
        if c.responses == 0 {
            warnings.push("no response was received".to_string());
        }
        Report {
            url: plan.url.to_string(),
            mode: if open { "open" } else { "closed" },
            connections: plan.connections,
            threads: plan.threads(),
            cpus: plan.cpus.clone(),
            drivers: out.drivers.clone(),
            pinned: out.pinned,
            tls_resumption: plan.tls.as_ref().map(|t| t.resume),
            started_unix_s: out
                .started
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            duration: out.elapsed,
            requested_rate,
            stages,
            sent_rate,
            achieved_rate: c.responses as f64 / secs,
            sent: c.sent,
            responses: c.responses,
            unsent: c.unsent,
            latency: Percentiles::of(&out.latencies.latency),
            first_byte: Percentiles::of(&out.latencies.first_byte),
            service_time: out.latencies.service.as_ref().map(Percentiles::of),
            send_lag: out.latencies.send_lag.as_ref().map(Percentiles::of),
            generator_lag: gen_lag,
            schedule_held,
            statuses: c.status_map(),
            expected_statuses: plan.expect.as_str().to_string(),
            errors: c.errors,
            error_rate: c.error_rate(),
            connects: c.connects,
            bytes_read: c.bytes_read,
            bytes_written: c.bytes_written,
            stopped_early: out.stopped_early,
            warnings,
            intervals: out.intervals.clone(),
            windows: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// The human summary (targets, if evaluated, come last).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let mut drivers = self.drivers.clone();
        drivers.dedup();
        let _ = writeln!(
            s,
            "{} — {} loop, {} connections on {} thread{} (cpus {}, {}){}",
            self.url,
            self.mode,
            self.connections,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.cpus
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            drivers.join("/"),
            if self.tls_resumption == Some(false) {
                ", TLS without resumption"
            } else {
                ""
            },
        );
        let _ = writeln!(s, "  duration    {}", fmt_duration(self.duration));
        match self.requested_rate {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "  rate        requested {}, sent {}, achieved {} (responses){}",
                    fmt_rate(r),
                    fmt_rate(self.sent_rate),
                    fmt_rate(self.achieved_rate),
                    if self.stages.is_some() {
                        ", mean over stages"
                    } else {
                        ""
                    }
                );
            }
            None => {
                let _ = writeln!(s, "  rate        achieved {}", fmt_rate(self.achieved_rate));
            }
        }
        let _ = writeln!(
            s,
            "  requests    {} sent, {} responses{}",
            self.sent,
            self.responses,
            if self.unsent > 0 {
                format!(", {} scheduled but never sent", self.unsent)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  latency     {:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            "p50", "p75", "p90", "p99", "p99.9", "p99.99", "max"
        );
        let mut row = |label: &str, p: &Percentiles| {
            let _ = write!(s, "  {label:<12}");
            for v in p.row() {
                let _ = write!(
                    s,
                    "{:>9}",
                    if p.count > 0 {
                        fmt_micros(v)
                    } else {
                        "-".into()
                    }
                );
            }
            let _ = writeln!(s);
        };
        match &self.service_time {
            Some(service) => {
                row("  corrected", &self.latency);
                row("  service", service);
            }
            None => row("", &self.latency),
        }
        let fb = &self.first_byte;
        if fb.count > 0 {
            let _ = writeln!(
                s,
                "  first body byte  p50 {}, p99 {}{}",
                fmt_micros(fb.p50_us),
                fmt_micros(fb.p99_us),
                if fb.count < self.responses {
                    format!(" ({} of {} responses had a body)", fb.count, self.responses)
                } else {
                    String::new()
                }
            );
        } else if self.responses > 0 {
            let _ = writeln!(s, "  first body byte  - (no response had a body)");
        }
        if let (Some(lag), Some(gen)) = (&self.send_lag, &self.generator_lag) {
            let _ = writeln!(
                s,
                "  send lag    p50 {}, p99 {}, max {} (generator alone: p99 {}, max {})",
                fmt_micros(lag.p50_us),
                fmt_micros(lag.p99_us),
                fmt_micros(lag.max_us),
                fmt_micros(gen.p99_us),
                fmt_micros(gen.max_us),
            );
        }
        let statuses = if self.statuses.is_empty() {
            "none".to_string()
        } else {
            self.statuses
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "  statuses    {statuses} (expected {})",
            self.expected_statuses
        );
        let e = &self.errors;
        if e.total() == 0 {
            let _ = writeln!(s, "  errors      none");
        } else {
            let _ = writeln!(
                s,
                "  errors      {} ({:.2}%): connect {}, reset {}, timeout {}, malformed {}, unexpected status {}",
                e.total(),
                self.error_rate * 100.0,
                e.connect,
                e.reset,
                e.timeout,
                e.malformed,
                e.status
            );
        }
        let _ = writeln!(
            s,
            "  bytes       read {}, written {} ({} connections opened)",
            fmt_bytes(self.bytes_read),
            fmt_bytes(self.bytes_written),
            self.connects
        );
        window::render(&self.windows, &mut s);
        for w in &self.warnings {
            let _ = writeln!(s, "WARNING: {w}");
        }
        for t in &self.targets {
            let _ = writeln!(s, "{}", t.line);
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A closed-loop report with round figures: p50 1 ms, p90 2 ms, p99
    /// 10 ms, p99.9 20 ms, max 50 ms; 1000 responses in 10 s, 10 of them
    /// 503s outside the expected set.
    pub(crate) fn sample_report() -> Report {
        Report {
            url: "http://127.0.0.1:8080/".into(),
            mode: "closed",
            connections: 4,
            threads: 1,
            cpus: vec![0],
            drivers: vec!["io_uring"],
            pinned: true,
            tls_resumption: None,
            started_unix_s: 1_700_000_000.0,
            duration: Duration::from_secs(10),
            requested_rate: None,
            stages: None,
            sent_rate: 100.0,
            achieved_rate: 100.0,
            sent: 1000,
            responses: 1000,
            unsent: 0,
            latency: Percentiles {
                count: 1000,
                min_us: 100,
                mean_us: 1500.0,
                p50_us: 1000,
                p75_us: 1500,
                p90_us: 2000,
                p99_us: 10_000,
                p999_us: 20_000,
                p9999_us: 50_000,
                max_us: 50_000,
            },
            first_byte: Percentiles {
                count: 990,
                min_us: 50,
                mean_us: 600.0,
                p50_us: 500,
                p75_us: 700,
                p90_us: 900,
                p99_us: 4_000,
                p999_us: 15_000,
                p9999_us: 40_000,
                max_us: 40_000,
            },
            service_time: None,
            send_lag: None,
            generator_lag: None,
            schedule_held: None,
            statuses: BTreeMap::from([(200, 990), (503, 10)]),
            expected_statuses: "2xx,3xx".into(),
            errors: ErrorCounts {
                status: 10,
                ..ErrorCounts::default()
            },
            error_rate: 0.01,
            connects: 4,
            bytes_read: 100_000,
            bytes_written: 40_000,
            stopped_early: false,
            warnings: vec![],
            intervals: vec![],
            windows: vec![],
            targets: vec![],
        }
    }

    #[test]
    fn summary_shows_the_figures() {
        let s = sample_report().summary();
        for want in [
            "closed loop, 4 connections on 1 thread",
            "achieved 100.0/s",
            "1000 sent, 1000 responses",
            "1.00ms",
            "50.0ms",
            "200: 990, 503: 10",
            "unexpected status 10",
            "first body byte  p50 500µs, p99 4.00ms (990 of 1000 responses had a body)",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
    }

    #[test]
    fn json_has_the_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&sample_report().to_json()).expect("valid JSON");
        assert_eq!(v["latency"]["p99_us"], 10_000);
        assert_eq!(v["first_byte"]["p99_us"], 4_000);
        assert_eq!(v["first_byte"]["count"], 990);
        assert_eq!(v["statuses"]["503"], 10);
        assert_eq!(v["duration"], 10.0);
        assert_eq!(v["errors"]["status"], 10);
    }
}
