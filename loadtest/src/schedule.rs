//! The open-loop send schedule: a piecewise-linear request rate over time
//! and, from it, the intended send time of every request.
//!
//! The schedule is defined by the cumulative count `N(t) = ∫₀ᵗ R(s) ds`:
//! the m-th request of the whole run (m = 0, 1, …) is intended at the time
//! where `N(t) = m`, and goes to connection `m mod C`. Each connection thus
//! sends at rate R/C, the connections' phases are staggered evenly over one
//! interval, and a ramp is followed exactly instead of stepping the rate
//! once per request. Inverting `N` within a linear stage is a quadratic, so
//! each intended time costs one square root and a binary search over the
//! stages — far below the cost of the request itself.
//!
//! The count sent in `[0, T)` is exactly `ceil(N(T))`, which is what makes
//! "3000 requests for `--rate 1000 -d 3s`" hold to the request.

use std::time::Duration;

/// One stage: the rate moves linearly from `from` to `to` over `duration`
/// (a hold when they are equal).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stage {
    #[serde(serialize_with = "crate::report::ser_duration")]
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

#[derive(Debug, Clone)]
struct Segment {
    start: f64,
    len: f64,
    from: f64,
    to: f64,
    count_before: f64,
    count: f64,
}

/// Intended send times for a whole run.
#[derive(Debug, Clone)]
pub struct Schedule {
    stages: Vec<Stage>,
    segments: Vec<Segment>,
    total: f64,
    duration: Duration,
}

impl Schedule {
    /// A schedule from stages; rates must be finite and non-negative (the
    /// plan validates that before building one).
    pub fn new(stages: Vec<Stage>) -> Schedule {
        let mut segments = Vec::with_capacity(stages.len());
        let mut start = 0.0;
        let mut count_before = 0.0;
        let mut duration = Duration::ZERO;
        for s in &stages {
            let len = s.duration.as_secs_f64();
            let count = (s.from + s.to) / 2.0 * len;
            segments.push(Segment {
                start,
                len,
                from: s.from,
                to: s.to,
                count_before,
                count,
            });
            start += len;
            count_before += count;
            duration += s.duration;
        }
        Schedule {
            stages,
            segments,
            total: count_before,
            duration,
        }
    }

    /// A constant rate for a fixed duration.
    pub fn constant(rate: f64, duration: Duration) -> Schedule {
        Schedule::new(vec![Stage {
            duration,
            from: rate,
            to: rate,
        }])
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Length of the whole schedule.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// `N(T)`: how many requests the schedule asks for, as a real number.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The mean requested rate over the whole schedule.
    pub fn mean_rate(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.total / secs
        } else {
            0.0
        }
    }

    /// `N(t)`: requests the schedule asks for before `t`.
    pub fn count_until(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        let mut n = 0.0;
        for s in &self.segments {
            if t >= s.start + s.len {
                n = s.count_before + s.count;
                continue;
            }
            let x = (t - s.start).max(0.0);
            let k = if s.len > 0.0 {
                (s.to - s.from) / (2.0 * s.len)
            } else {
                0.0
            };
            return s.count_before + s.from * x + k * x * x;
        }
        n
    }

    /// The requested rate at `t` (for the progress line).
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        for s in &self.segments {
            if t < s.start + s.len {
                let f = if s.len > 0.0 {
                    (t - s.start) / s.len
                } else {
                    0.0
                };
                return s.from + (s.to - s.from) * f.clamp(0.0, 1.0);
            }
        }
        0.0
    }

    /// Intended time (since start) of the m-th request of the run, or
    /// `None` when it falls at or after the end.
    pub fn time_of(&self, m: u64) -> Option<Duration> {
        let n = m as f64;
        if n >= self.total {
            return None;
        }
        // The segment holding count n: the last one that starts at or
        // below n and actually sends something.
        let idx = self
            .segments
            .partition_point(|s| s.count_before <= n)
            .saturating_sub(1);
        let seg = self.segments[idx..].iter().find(|s| s.count > 0.0)?;
        let c = (n - seg.count_before).max(0.0);
        // Solve from*s + k*s² = c with k = (to-from)/(2 len); the form
        // 2c / (from + sqrt(from² + 4kc)) is stable for either sign of k.
        let k = if seg.len > 0.0 {
            (seg.to - seg.from) / (2.0 * seg.len)
        } else {
            0.0
        };
        let disc = (seg.from * seg.from + 4.0 * k * c).max(0.0);
        let denom = seg.from + disc.sqrt();
        let s = if denom > 0.0 { 2.0 * c / denom } else { 0.0 };
        let t = seg.start + s.clamp(0.0, seg.len);
        let end = self.duration.as_secs_f64();
        // Rounding must not push a request that the count says is inside
        // the run onto (or past) its end.
        let t = t.min(end);
        let d = Duration::from_secs_f64(t);
        if d >= self.duration {
            return Some(self.duration.saturating_sub(Duration::from_nanos(1)));
        }
        Some(d)
    }

    /// How many requests connection `conn` of `conns` is scheduled to send:
    /// the m < N(T) with m ≡ conn (mod conns).
    pub fn count_for(&self, conn: usize, conns: usize) -> u64 {
        let total = self.total.ceil() as u64;
        let conn = conn as u64;
        let conns = conns.max(1) as u64;
        if total <= conn {
            0
        } else {
            (total - conn).div_ceil(conns)
        }
    }
}

/// Parses `--stages`: comma-separated `DURATION:RATE` (ramp from the
/// previous stage's end rate, 0 for the first, to RATE) or
/// `DURATION:FROM->TO`.
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, String> {
    let mut out = Vec::new();
    let mut prev = 0.0;
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (dur, rates) = part.split_once(':').ok_or_else(|| {
            format!("stage `{part}`: expected DURATION:RATE or DURATION:FROM->TO")
        })?;
        let duration =
            crate::units::parse_duration(dur).map_err(|e| format!("stage `{part}`: {e}"))?;
        let (from, to) = match rates.split_once("->") {
            Some((a, b)) => (parse_stage_rate(a, part)?, parse_stage_rate(b, part)?),
            None => (prev, parse_stage_rate(rates, part)?),
        };
        prev = to;
        out.push(Stage { duration, from, to });
    }
    if out.is_empty() {
        return Err("--stages: no stage given".to_string());
    }
    Ok(out)
}

fn parse_stage_rate(text: &str, part: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1e8).contains(&r) => Ok(r),
        _ => Err(format!("stage `{part}`: `{text}` is not a rate >= 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Option<Duration>) -> f64 {
        d.expect("inside the schedule").as_secs_f64()
    }

    #[test]
    fn constant_rate_counts_exactly() {
        let s = Schedule::constant(1000.0, Duration::from_secs(3));
        assert_eq!(s.total(), 3000.0);
        let per_conn: u64 = (0..7).map(|c| s.count_for(c, 7)).sum();
        assert_eq!(per_conn, 3000);
        assert!(s.time_of(2999).is_some());
        assert!(s.time_of(3000).is_none());
        assert!((secs(s.time_of(500)) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn connections_are_staggered_evenly() {
        // 4 connections at 100/s in total: each sends every 40 ms, offset
        // by 10 ms from the previous one.
        let s = Schedule::constant(100.0, Duration::from_secs(1));
        let firsts: Vec<f64> = (0..4).map(|c| secs(s.time_of(c))).collect();
        for (i, t) in firsts.iter().enumerate() {
            assert!((t - i as f64 * 0.01).abs() < 1e-9, "{firsts:?}");
        }
        // Connection 1's second request comes one per-connection interval
        // (40 ms) after its first.
        assert!((secs(s.time_of(5)) - secs(s.time_of(1)) - 0.04).abs() < 1e-9);
    }

    #[test]
    fn ramp_follows_the_integral() {
        // 0 -> 1000/s over 10 s: N(t) = 50 t², total 5000.
        let s = Schedule::new(vec![Stage {
            duration: Duration::from_secs(10),
            from: 0.0,
            to: 1000.0,
        }]);
        assert!((s.total() - 5000.0).abs() < 1e-9);
        assert!((s.count_until(Duration::from_secs(2)) - 200.0).abs() < 1e-9);
        assert!((s.count_until(Duration::from_secs(20)) - 5000.0).abs() < 1e-9);
        for m in [1u64, 50, 1250, 4999] {
            let want = (m as f64 / 50.0).sqrt();
            assert!((secs(s.time_of(m)) - want).abs() < 1e-9, "m={m}");
        }
        // Ramp down: 1000 -> 0 over 2 s after a 1 s hold.
        let s = Schedule::new(vec![
            Stage {
                duration: Duration::from_secs(1),
                from: 1000.0,
                to: 1000.0,
            },
            Stage {
                duration: Duration::from_secs(2),
                from: 1000.0,
                to: 0.0,
            },
        ]);
        assert!((s.total() - 2000.0).abs() < 1e-9);
        // Halfway through the count of the ramp (500 of 1000) is at
        // 2 - sqrt(2) s into it.
        let want = 1.0 + 2.0 - 2f64.sqrt();
        assert!((secs(s.time_of(1500)) - want).abs() < 1e-6);
        // Intended times never go backwards.
        let mut prev = 0.0;
        for m in 0..2000 {
            let t = secs(s.time_of(m));
            assert!(t >= prev, "m={m}");
            prev = t;
        }
    }

    #[test]
    fn idle_stage_is_skipped() {
        let s = Schedule::new(vec![
            Stage {
                duration: Duration::from_secs(1),
                from: 0.0,
                to: 0.0,
            },
            Stage {
                duration: Duration::from_secs(1),
                from: 10.0,
                to: 10.0,
            },
        ]);
        assert!((secs(s.time_of(0)) - 1.0).abs() < 1e-9);
        assert!((s.rate_at(Duration::from_millis(1500)) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn parse_stages_table() {
        let st = parse_stages("10s:0->1000, 30s:1000,10s:0").expect("valid");
        let got: Vec<(u64, f64, f64)> = st
            .iter()
            .map(|s| (s.duration.as_secs(), s.from, s.to))
            .collect();
        assert_eq!(
            got,
            vec![(10, 0.0, 1000.0), (30, 1000.0, 1000.0), (10, 1000.0, 0.0)]
        );
        for bad in ["", "10s", "10:5", "1s:x", "1s:-5", "1s:1->"] {
            assert!(parse_stages(bad).is_err(), "{bad}");
        }
    }
}
