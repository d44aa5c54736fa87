//! Targets: the thresholds a run must meet, evaluated into PASS/FAIL lines
//! and the process exit code.
//!
//! Latency targets apply to the latency the report leads with — in open
//! loop the corrected one, measured from the intended send time — because
//! that is what a user of the server would have seen. Exit codes: 0 all
//! targets pass (or none was set), 1 at least one fails, 2 the run could
//! not be set up (see [`crate::scenario`]).

use std::time::Duration;

use crate::plan::StatusSet;
use crate::report::Report;
use crate::units::{fmt_duration, fmt_micros, fmt_rate};

/// Exit code when every target passes.
pub const EXIT_PASS: i32 = 0;
/// Exit code when a target fails.
pub const EXIT_FAIL: i32 = 1;
/// Exit code for usage and setup errors.
pub const EXIT_SETUP: i32 = 2;

/// Thresholds; unset ones are not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    pub p99: Option<Duration>,
    pub p999: Option<Duration>,
    pub max: Option<Duration>,
    /// Failed requests over attempted ones, 0..=1.
    pub max_error_rate: Option<f64>,
    /// Achieved responses per second.
    pub min_rate: Option<f64>,
    /// Every response must have one of these statuses. Also the set the
    /// run counts "unexpected status" errors against.
    pub expect_status: Option<StatusSet>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        *self == Targets::default()
    }
}

/// One evaluated target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TargetResult {
    pub name: String,
    pub pass: bool,
    /// `PASS p99 <= 50ms (measured 3.21ms)`.
    pub line: String,
}

/// Evaluates every set target against a report, in a fixed order.
pub fn evaluate(t: &Targets, r: &Report) -> Vec<TargetResult> {
    let mut out = Vec::new();
    let lat = &r.latency;
    let latency_targets = [
        ("p50", t.p50, lat.p50_us),
        ("p90", t.p90, lat.p90_us),
        ("p99", t.p99, lat.p99_us),
        ("p99.9", t.p999, lat.p999_us),
        ("max", t.max, lat.max_us),
    ];
    for (name, limit, measured_us) in latency_targets {
        if let Some(limit) = limit {
            // No response at all meets no latency bound.
            let pass = lat.count > 0 && Duration::from_micros(measured_us) <= limit;
            let measured = if lat.count > 0 {
                fmt_micros(measured_us)
            } else {
                "no responses".to_string()
            };
            out.push(result(
                name,
                pass,
                format!("{name} <= {} (measured {measured})", fmt_duration(limit)),
            ));
        }
    }
    if let Some(limit) = t.max_error_rate {
        let pass = r.error_rate <= limit && (r.responses > 0 || r.errors.total() == 0);
        out.push(result(
            "error-rate",
            pass,
            format!(
                "error rate <= {} (measured {}, {} errors)",
                pct(limit),
                pct(r.error_rate),
                r.errors.total()
            ),
        ));
    }
    if let Some(limit) = t.min_rate {
        out.push(result(
            "rate",
            r.achieved_rate >= limit,
            format!(
                "rate >= {} (measured {})",
                fmt_rate(limit),
                fmt_rate(r.achieved_rate)
            ),
        ));
    }
    if let Some(set) = &t.expect_status {
        out.push(result(
            "status",
            r.errors.status == 0 && r.responses > 0,
            format!(
                "status in {} ({} of {} responses unexpected)",
                set.as_str(),
                r.errors.status,
                r.responses
            ),
        ));
    }
    out
}

fn result(name: &str, pass: bool, what: String) -> TargetResult {
    TargetResult {
        name: name.to_string(),
        pass,
        line: format!("{} {what}", if pass { "PASS" } else { "FAIL" }),
    }
}

fn pct(f: f64) -> String {
    let p = f * 100.0;
    if p != 0.0 && p < 0.01 {
        format!("{p:.4}%")
    } else {
        format!("{p:.2}%")
    }
}

/// 0 when all pass (or there are none), 1 otherwise.
pub fn exit_code(results: &[TargetResult]) -> i32 {
    if results.iter().all(|r| r.pass) {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_report;

    #[test]
    fn evaluate_table() {
        // The sample: p50 1ms, p90 2ms, p99 10ms, p99.9 20ms, max 50ms,
        // 1000 responses, 10 of them unexpected 503s, 100 req/s.
        let r = sample_report();
        let ms = Duration::from_millis;
        let cases: &[(Targets, &[&str])] = &[
            (Targets::default(), &[]),
            (
                Targets {
                    p99: Some(ms(50)),
                    ..Targets::default()
                },
                &["PASS p99 <= 50.0ms (measured 10.0ms)"],
            ),
            (
                Targets {
                    p50: Some(ms(1)),
                    p999: Some(ms(5)),
                    max: Some(ms(60)),
                    ..Targets::default()
                },
                &[
                    "PASS p50 <= 1.00ms (measured 1.00ms)",
                    "FAIL p99.9 <= 5.00ms (measured 20.0ms)",
                    "PASS max <= 60.0ms (measured 50.0ms)",
                ],
            ),
            (
                Targets {
                    max_error_rate: Some(0.001),
                    min_rate: Some(90.0),
                    expect_status: Some(StatusSet::parse("2xx").expect("valid")),
                    ..Targets::default()
                },
                &[
                    "FAIL error rate <= 0.10% (measured 1.00%, 10 errors)",
                    "PASS rate >= 90.0/s (measured 100.0/s)",
                    "FAIL status in 2xx (10 of 1000 responses unexpected)",
                ],
            ),
        ];
        for (t, want) in cases {
            let got = evaluate(t, &r);
            let lines: Vec<&str> = got.iter().map(|g| g.line.as_str()).collect();
            assert_eq!(lines, *want);
            let code = exit_code(&got);
            let want_code = if want.iter().any(|l| l.starts_with("FAIL")) {
                1
            } else {
                0
            };
            assert_eq!(code, want_code, "{want:?}");
        }
    }

    #[test]
    fn no_responses_fail_latency_targets() {
        let mut r = sample_report();
        r.latency = crate::report::Percentiles::default();
        let got = evaluate(
            &Targets {
                p99: Some(Duration::from_secs(1)),
                ..Targets::default()
            },
            &r,
        );
        assert_eq!(got[0].line, "FAIL p99 <= 1.00s (measured no responses)");
    }
}
