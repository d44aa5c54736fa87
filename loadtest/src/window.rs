//! `--window DUR`: the run's figures over consecutive windows of whole
//! seconds — before, during and after a fault, say — each with its own
//! counts, errors and latency percentiles.
//!
//! Percentiles of a window come from the merged histograms of its seconds,
//! never from the per-second percentiles in `intervals`: percentiles do not
//! add up, and a p99 averaged over ten seconds would hide the one bad
//! second a window is meant to show. The price is one set of histograms
//! (~140 KiB each) for the window being filled; finished windows keep only
//! their figures.
//!
//! A request counts in the second in which it ended (its response, error
//! or timeout), as everywhere in the report. Windows start at the run's
//! start (`started_unix_s` in the JSON), so `[10, 20)` is seconds 10 to 20
//! of the schedule. They end with the schedule: the last window also holds
//! what ended after it (responses still in flight, late sends), so that a
//! 30 s run in 10 s windows has three windows, not a fourth of stragglers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::report::{ser_duration, Percentiles};
use crate::run::MergedInterval;
use crate::stats::{Counters, ErrorCounts, Latencies};
use crate::units::{fmt_duration, fmt_micros};

/// One window's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowSummary {
    /// Seconds since the run's start at which the window begins.
    pub from_s: u32,
    /// Seconds since the run's start at which the window ends (exclusive).
    pub to_s: u32,
    /// How much of the window the run covered: the width, or less for the
    /// last window.
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    pub sent: u64,
    pub responses: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: ErrorCounts,
    pub error_rate: f64,
    /// Closed loop: send to response end. Open loop: intended send to
    /// response end (corrected for coordinated omission).
    pub latency: Percentiles,
    /// From the same start as `latency` to the first body byte, over the
    /// responses that had a body.
    pub first_byte: Percentiles,
    /// Open loop: actual send to response end.
    pub service_time: Option<Percentiles>,
}

/// The window being filled.
struct Open {
    index: u32,
    latencies: Latencies,
    counters: Counters,
    covered: Duration,
}

/// Folds the run's merged seconds, in order, into windows.
pub struct Windows {
    width: u32,
    /// Index of the window holding the schedule's end.
    last: u32,
    open_loop: bool,
    current: Option<Open>,
    done: Vec<WindowSummary>,
}

impl Windows {
    /// Windows of `width`, which must be a whole number of seconds (the
    /// run measures in one-second intervals), over a run whose schedule
    /// lasts `planned`.
    pub fn new(width: Duration, open_loop: bool, planned: Duration) -> Result<Windows, String> {
        let whole = width.subsec_nanos() == 0;
        let secs = u32::try_from(width.as_secs())
            .ok()
            .filter(|&s| s >= 1 && whole);
        match secs {
            Some(width) => Ok(Windows {
                width,
                last: last_window(planned, width),
                open_loop,
                current: None,
                done: Vec::new(),
            }),
            None => Err(format!(
                "`{}` is not a whole number of seconds (at least 1s)",
                fmt_duration(width)
            )),
        }
    }

    /// Adds one merged second; seconds must come in order, as the run
    /// hands them out.
    pub fn add(&mut self, m: &MergedInterval<'_>) {
        let index = (m.index / self.width).min(self.last);
        if self.current.as_ref().is_some_and(|w| w.index != index) {
            self.close();
        }
        let open_loop = self.open_loop;
        let w = self.current.get_or_insert_with(|| Open {
            index,
            latencies: Latencies::new(open_loop),
            counters: Counters::default(),
            covered: Duration::ZERO,
        });
        w.latencies.merge(m.latencies);
        w.counters.merge(m.counters);
        w.covered += m.duration;
    }

    fn close(&mut self) {
        if let Some(w) = self.current.take() {
            let from_s = w.index * self.width;
            self.done.push(WindowSummary {
                from_s,
                to_s: from_s + self.width,
                duration: w.covered,
                sent: w.counters.sent,
                responses: w.counters.responses,
                statuses: w.counters.status_map(),
                errors: w.counters.errors,
                error_rate: w.counters.error_rate(),
                latency: Percentiles::of(&w.latencies.latency),
                first_byte: Percentiles::of(&w.latencies.first_byte),
                service_time: w.latencies.service.as_ref().map(Percentiles::of),
            });
        }
    }

    /// Every window, the last (partial) one included.
    pub fn finish(mut self) -> Vec<WindowSummary> {
        self.close();
        self.done
    }
}

/// Index of the window in which a schedule of `planned` ends: the one
/// holding its last (possibly partial) second.
fn last_window(planned: Duration, width: u32) -> u32 {
    let secs = planned.as_secs() + u64::from(planned.subsec_nanos() > 0);
    let windows = secs.div_ceil(u64::from(width)).max(1);
    u32::try_from(windows - 1).unwrap_or(u32::MAX)
}

/// The summary's table of windows (nothing when there are none).
pub fn render(windows: &[WindowSummary], s: &mut String) {
    let Some(first) = windows.first() else {
        return;
    };
    let _ = writeln!(
        s,
        "  windows     {:>9}{:>10}{:>8}{:>9}{:>9}{:>9}{:>9}{}",
        "sent",
        "responses",
        "errors",
        "p50",
        "p99",
        "p99.9",
        "max",
        if first.service_time.is_some() {
            "  (corrected)"
        } else {
            ""
        }
    );
    for w in windows {
        let _ = write!(
            s,
            "    {:<10}{:>9}{:>10}{:>8}",
            format!("{}-{}s", w.from_s, w.to_s),
            w.sent,
            w.responses,
            w.errors.total()
        );
        let p = &w.latency;
        for v in [p.p50_us, p.p99_us, p.p999_us, p.max_us] {
            let cell = if p.count > 0 {
                fmt_micros(v)
            } else {
                "-".into()
            };
            let _ = write!(s, "{cell:>9}");
        }
        let _ = writeln!(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{record, ErrorKind, Recorder};

    /// Feeds one second: `ok` responses of `ms` each, plus `slow` of 50 ms
    /// and `resets` reset errors.
    fn second(w: &mut Windows, index: u32, ok: u64, slow: u64, resets: u64, covered_ms: u64) {
        let mut rec = Recorder::new(true);
        for n in 0..ok + slow {
            rec.status(200);
            rec.counters.sent += 1;
            let ms = if n < ok { 1 } else { 50 };
            record(&mut rec.latencies.latency, Duration::from_millis(ms));
            record(&mut rec.latencies.first_byte, Duration::from_millis(ms));
            record(
                rec.latencies.service.as_mut().expect("open loop"),
                Duration::from_millis(1),
            );
        }
        for _ in 0..resets {
            rec.counters.sent += 1;
            rec.error(ErrorKind::Reset);
        }
        let iv = rec.take(index, Duration::from_millis(covered_ms));
        w.add(&MergedInterval {
            index,
            start: Duration::from_secs(u64::from(index)),
            duration: Duration::from_millis(covered_ms),
            latencies: &iv.latencies,
            counters: &iv.counters,
            run_started: std::time::SystemTime::now(),
        });
    }

    #[test]
    fn seconds_fold_into_windows_with_merged_percentiles() {
        let mut w = Windows::new(Duration::from_secs(2), true, Duration::from_millis(5300))
            .expect("whole seconds");
        // Window [0, 2): 98 fast and 2 slow responses, all slow ones in
        // second 1. Second 1's own p99 is 50 ms and second 0's is 1 ms;
        // the window's, over its 100 responses, is 50 ms (the 99th value).
        second(&mut w, 0, 50, 0, 0, 1000);
        second(&mut w, 1, 48, 2, 0, 1000);
        // Window [2, 4): resets only in second 3.
        second(&mut w, 2, 10, 0, 0, 1000);
        second(&mut w, 3, 10, 0, 4, 1000);
        // Window [4, 6): the schedule's last, partial second (5.3 s).
        second(&mut w, 4, 3, 0, 0, 1000);
        second(&mut w, 5, 2, 0, 0, 300);
        let ws = w.finish();

        assert_eq!(ws.len(), 3);
        let bounds: Vec<_> = ws.iter().map(|x| (x.from_s, x.to_s)).collect();
        assert_eq!(bounds, [(0, 2), (2, 4), (4, 6)]);

        assert_eq!((ws[0].sent, ws[0].responses), (100, 100));
        assert_eq!(ws[0].errors.total(), 0);
        assert_eq!(ws[0].latency.count, 100);
        assert!(ws[0].latency.p50_us.abs_diff(1000) <= 1, "{:?}", ws[0]);
        assert!(ws[0].latency.p99_us.abs_diff(50_000) <= 50, "{:?}", ws[0]);
        assert_eq!(ws[0].service_time.map(|p| p.count), Some(100));
        assert_eq!(ws[0].first_byte.count, 100);
        assert!(
            ws[0].first_byte.p99_us.abs_diff(50_000) <= 50,
            "{:?}",
            ws[0]
        );
        assert_eq!(ws[0].statuses, BTreeMap::from([(200, 100)]));

        assert_eq!((ws[1].sent, ws[1].responses), (24, 20));
        assert_eq!(ws[1].errors.reset, 4);
        // 4 resets over 20 responses + 4 resets.
        assert!((ws[1].error_rate - 4.0 / 24.0).abs() < 1e-9);
        assert!(ws[1].latency.p99_us.abs_diff(1000) <= 1, "{:?}", ws[1]);

        assert_eq!(ws[2].responses, 5);
        assert_eq!(ws[2].duration, Duration::from_millis(1300));
        assert_eq!(ws[0].duration, Duration::from_secs(2));
    }

    #[test]
    fn what_ends_after_the_schedule_is_in_the_last_window() {
        let mut w = Windows::new(Duration::from_secs(10), true, Duration::from_secs(30))
            .expect("whole seconds");
        for i in 0..30 {
            second(&mut w, i, 10, 0, 0, 1000);
        }
        // Responses still in flight at 30 s, and a reset, end in second 30.
        second(&mut w, 30, 4, 0, 1, 20);
        let ws = w.finish();
        let bounds: Vec<_> = ws.iter().map(|x| (x.from_s, x.to_s)).collect();
        assert_eq!(bounds, [(0, 10), (10, 20), (20, 30)]);
        assert_eq!(ws[2].responses, 104);
        assert_eq!(ws[2].errors.reset, 1);
        assert_eq!(ws[2].duration, Duration::from_millis(10_020));

        for (planned_ms, width, last) in [
            (30_000, 10, 2),
            (25_000, 10, 2),
            (30_001, 10, 3),
            (500, 1, 0),
            (0, 5, 0),
        ] {
            assert_eq!(
                last_window(Duration::from_millis(planned_ms), width),
                last,
                "{planned_ms} ms in {width} s windows"
            );
        }
    }

    #[test]
    fn width_must_be_whole_seconds() {
        for bad in [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_millis(1500),
        ] {
            assert!(
                Windows::new(bad, true, Duration::from_secs(30)).is_err(),
                "{bad:?}"
            );
        }
        assert!(Windows::new(Duration::from_secs(10), false, Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn render_lists_each_window() {
        let mut w = Windows::new(Duration::from_secs(1), true, Duration::from_secs(2))
            .expect("whole seconds");
        second(&mut w, 0, 10, 0, 0, 1000);
        second(&mut w, 1, 0, 0, 3, 1000);
        let mut s = String::new();
        render(&w.finish(), &mut s);
        assert!(s.contains("(corrected)"), "{s}");
        assert!(s.contains("0-1s"), "{s}");
        // A window without responses has no percentiles.
        let last = s.lines().last().expect("two rows");
        assert!(last.contains("1-2s") && last.contains('-'), "{s}");
        assert_eq!(last.split_whitespace().nth(3), Some("3"), "{s}");
    }

    #[test]
    fn no_windows_no_table() {
        let mut s = String::new();
        render(&[], &mut s);
        assert!(s.is_empty());
    }
}
