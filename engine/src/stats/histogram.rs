//! Fixed-bucket histograms of durations, one writer each (a worker).
//!
//! The buckets are the same for every histogram and fixed at build time,
//! so recording is a binary search over 16 bounds and two single-writer
//! stores, with no allocation, lock or contended cache line. A scrape sums
//! the workers' buckets and makes them cumulative as Prometheus expects.
//! The count is the sum of the buckets rather than a counter of its own:
//! a reader racing a writer then never sees `_count` disagree with the
//! `+Inf` bucket.

use std::time::Duration;

use super::Counter;

/// Upper bounds of the buckets, in nanoseconds (100 µs to 10 s: an edge
/// gateway's requests and an upstream's connects both fall in this span).
/// Values above the last go to the `+Inf` bucket.
pub(crate) const BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The same bounds as Prometheus `le` label values (seconds).
pub(crate) const BOUNDS_LE: [&str; 16] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10",
];

/// One histogram: a counter per bucket (the last is `+Inf`) and the sum.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [Counter; BOUNDS_NS.len() + 1],
    sum_ns: Counter,
}

impl Histogram {
    #[inline]
    pub(crate) fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Prometheus buckets are inclusive: `le` is "less than or equal".
        let i = BOUNDS_NS.partition_point(|&b| b < ns);
        self.buckets[i].inc();
        self.sum_ns.add(ns);
    }

    /// Adds this histogram's values into `into`.
    pub(crate) fn sum_into(&self, into: &mut Summed) {
        for (to, b) in into.buckets.iter_mut().zip(&self.buckets) {
            *to += b.get();
        }
        into.sum_ns += self.sum_ns.get();
    }
}

/// A histogram's values summed over workers (per bucket, not cumulative).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summed {
    pub(crate) buckets: [u64; BOUNDS_NS.len() + 1],
    pub(crate) sum_ns: u64,
}

impl Summed {
    pub(crate) fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }

    /// The `q` quantile (0..=1) as [`quantile`] estimates it; `None` when
    /// nothing was observed.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        let bounds = BOUNDS_NS.map(|b| b as f64);
        quantile(&self.buckets, &bounds, q).map(|ns| Duration::from_nanos(ns as u64))
    }
}

/// The `q` quantile (0..=1) of a histogram given as counts per bucket (not
/// cumulative; one more bucket than `bounds`, the last one `+Inf`),
/// estimated by linear interpolation inside its bucket, as Prometheus'
/// `histogram_quantile` does; in the unit of `bounds`. `None` when the
/// buckets are empty. A value in the `+Inf` bucket reads as the highest
/// bound.
///
/// Public for readers of `GET /stats`, which take the difference of two
/// readings' buckets to get quantiles over just the time between them
/// (`ringway status` does).
pub fn quantile(buckets: &[u64], bounds: &[f64], q: f64) -> Option<f64> {
    let count: u64 = buckets.iter().sum();
    if count == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * count as f64;
    let mut seen = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        if n == 0 || ((seen + n) as f64) < rank {
            seen += n;
            continue;
        }
        let Some(&upper) = bounds.get(i) else {
            break;
        };
        let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
        let within = ((rank - seen as f64) / n as f64).clamp(0.0, 1.0);
        return Some(lower + (upper - lower) * within);
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_they_do_not_pass() {
        let h = Histogram::default();
        for (d, bucket) in [
            (Duration::ZERO, 0),
            (Duration::from_micros(100), 0),
            (Duration::from_nanos(100_001), 1),
            (Duration::from_millis(1), 3),
            (Duration::from_secs(10), 15),
            (Duration::from_secs(11), 16),
        ] {
            let before = h.buckets[bucket].get();
            h.observe(d);
            assert_eq!(h.buckets[bucket].get(), before + 1, "{d:?}");
        }
        let mut s = Summed::default();
        h.sum_into(&mut s);
        assert_eq!(s.buckets.iter().sum::<u64>(), 6);
        assert_eq!(s.sum_ns, 100_000 + 100_001 + 1_000_000 + 21_000_000_000);
    }

    #[test]
    fn bounds_and_their_labels_agree() {
        for (ns, le) in BOUNDS_NS.iter().zip(BOUNDS_LE) {
            let secs: f64 = le.parse().expect("a number");
            assert_eq!((secs * 1e9).round() as u64, *ns);
        }
        assert!(BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let h = Histogram::default();
        assert_eq!(Summed::default().quantile(0.5), None);
        // 100 values in (1 ms, 2.5 ms].
        for _ in 0..100 {
            h.observe(Duration::from_micros(2000));
        }
        let mut s = Summed::default();
        h.sum_into(&mut s);
        let p50 = s.quantile(0.5).expect("observed");
        assert_eq!(p50, Duration::from_micros(1750));
        assert_eq!(s.quantile(1.0), Some(Duration::from_micros(2500)));
        h.observe(Duration::from_secs(60));
        let mut s = Summed::default();
        h.sum_into(&mut s);
        assert_eq!(s.quantile(1.0), Some(Duration::from_secs(10)));
    }

    #[test]
    fn quantiles_of_bucket_counts_in_any_unit() {
        let bounds = [0.001, 0.01, 0.1];
        for (buckets, q, want) in [
            (&[0, 0, 0, 0][..], 0.5, None),
            (&[10, 0, 0, 0][..], 0.5, Some(0.0005)),
            (&[0, 10, 0, 0][..], 0.5, Some(0.0055)),
            (&[0, 10, 0, 0][..], 0.0, Some(0.001)),
            (&[5, 0, 0, 5][..], 0.99, Some(0.1)),
            (&[90, 0, 10, 0][..], 0.95, Some(0.055)),
        ] {
            let got = quantile(buckets, &bounds, q);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-12, "{buckets:?} {q}: {g}"),
                _ => assert_eq!(got, want, "{buckets:?} {q}"),
            }
        }
    }
}
