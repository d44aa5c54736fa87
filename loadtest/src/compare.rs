//! `ringway-load compare A B`: the same load against two targets,
//! alternating A, B, A, B … for K rounds, then the median of each figure
//! for both and their ratio.
//!
//! Alternating spreads slow drift of a shared machine (thermal, noisy
//! neighbours, page cache) over both sides, and the median of K rounds
//! ignores the one round a background job spoiled; together they make a
//! comparison of two proxies on a noisy 2-core machine repeatable to a few
//! percent, where one run each is not. Targets do not apply: the output is
//! a comparison, not a verdict.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::plan::Plan;
use crate::report::Report;
use crate::run::{run, RunError};
use crate::units::{fmt_micros, fmt_rate};

/// The figures compared, in table order.
pub const FIGURES: [&str; 7] = ["rate", "p50", "p90", "p99", "p99.9", "max", "error rate"];

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub figure: &'static str,
    pub a: f64,
    pub b: f64,
    /// A / B, when B is not 0.
    pub ratio: Option<f64>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a_url: String,
    pub b_url: String,
    pub rounds: usize,
    pub rows: Vec<Row>,
    pub a_runs: Vec<Report>,
    pub b_runs: Vec<Report>,
}

/// The value of figure `i` of [`FIGURES`] in a report (latencies in µs).
fn figure(r: &Report, i: usize) -> f64 {
    let l = &r.latency;
    match i {
        0 => r.achieved_rate,
        1 => l.p50_us as f64,
        2 => l.p90_us as f64,
        3 => l.p99_us as f64,
        4 => l.p999_us as f64,
        5 => l.max_us as f64,
        _ => r.error_rate,
    }
}

/// The median; the mean of the middle two for an even count.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Runs the rounds. `progress` sees each finished run (round, "A"/"B",
/// report). A stop (Ctrl-C) ends after the current run.
pub fn compare(
    a: &Plan,
    b: &Plan,
    rounds: usize,
    stop: Arc<AtomicBool>,
    progress: &mut dyn FnMut(usize, &str, &Report),
) -> Result<Comparison, RunError> {
    let mut a_runs = Vec::new();
    let mut b_runs = Vec::new();
    'rounds: for round in 0..rounds.max(1) {
        for (name, plan) in [("A", a), ("B", b)] {
            if stop.load(Ordering::Relaxed) {
                break 'rounds;
            }
            let out = run(plan, stop.clone(), &mut |_| {})?;
            let report = Report::new(plan, &out);
            progress(round, name, &report);
            if name == "A" {
                a_runs.push(report);
            } else {
                b_runs.push(report);
            }
        }
    }
    Ok(Comparison {
        a_url: a.url.to_string(),
        b_url: b.url.to_string(),
        rounds: a_runs.len().min(b_runs.len()),
        rows: rows(&a_runs, &b_runs),
        a_runs,
        b_runs,
    })
}

fn rows(a: &[Report], b: &[Report]) -> Vec<Row> {
    FIGURES
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            let ma = median(&mut a.iter().map(|r| figure(r, i)).collect::<Vec<_>>());
            let mb = median(&mut b.iter().map(|r| figure(r, i)).collect::<Vec<_>>());
            Row {
                figure: name,
                a: ma,
                b: mb,
                ratio: (mb != 0.0).then(|| ma / mb),
            }
        })
        .collect()
}

impl Comparison {
    /// The table: figure, median A, median B, A/B.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "A = {}", self.a_url);
        let _ = writeln!(s, "B = {}", self.b_url);
        let _ = writeln!(
            s,
            "medians of {} round{} (A and B alternating)",
            self.rounds,
            if self.rounds == 1 { "" } else { "s" }
        );
        let _ = writeln!(s, "{:<12}{:>14}{:>14}{:>9}", "figure", "A", "B", "A/B");
        for r in &self.rows {
            let fmt = |v: f64| match r.figure {
                "rate" => fmt_rate(v),
                "error rate" => format!("{:.2}%", v * 100.0),
                _ => fmt_micros(v.round() as u64),
            };
            let ratio = r
                .ratio
                .map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
            let _ = writeln!(
                s,
                "{:<12}{:>14}{:>14}{:>9}",
                r.figure,
                fmt(r.a),
                fmt(r.b),
                ratio
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_report;

    #[test]
    fn median_table() {
        let cases: &[(&[f64], f64)] = &[
            (&[], 0.0),
            (&[3.0], 3.0),
            (&[3.0, 1.0, 2.0], 2.0),
            (&[4.0, 1.0, 3.0, 2.0], 2.5),
            (&[1.0, 100.0, 2.0], 2.0),
        ];
        for (values, want) in cases {
            assert_eq!(median(&mut values.to_vec()), *want, "{values:?}");
        }
    }

    #[test]
    fn table_has_medians_and_ratios() {
        let mut fast = sample_report();
        fast.achieved_rate = 200.0;
        let slow = sample_report();
        let mut slower = sample_report();
        slower.achieved_rate = 50.0;
        let c = Comparison {
            a_url: "http://a/".into(),
            b_url: "http://b/".into(),
            rounds: 3,
            rows: rows(
                &[fast.clone(), fast.clone(), slow.clone()],
                &[slow.clone(), slower, slow],
            ),
            a_runs: vec![],
            b_runs: vec![],
        };
        let t = c.table();
        let line = |name: &str| {
            t.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
        };
        assert_eq!(
            line("rate"),
            Some(vec!["rate", "200.0/s", "100.0/s", "2.000"]),
            "{t}"
        );
        assert_eq!(
            line("p99 "),
            Some(vec!["p99", "10.0ms", "10.0ms", "1.000"]),
            "{t}"
        );
        assert_eq!(
            line("error rate"),
            Some(vec!["error", "rate", "1.00%", "1.00%", "1.000"]),
            "{t}"
        );
    }
}
