//! What a run measures: latency histograms and counters, recorded per
//! thread without sharing and merged by the main thread.
//!
//! Each thread records into *interval* histograms only and hands them to
//! the main thread once a second; the main thread merges them across
//! threads (for the live line and `--hdr-log`) and into the run's totals.
//! Recording a value is thus one HdrHistogram increment on a histogram no
//! other thread touches — no atomics on the request path — at the price of
//! one allocation of ~140 KiB per histogram per thread per second.
//!
//! Histograms hold microseconds from 1 µs to 60 s with 3 significant
//! digits (a relative error of at most 0.1 %); larger values saturate at
//! 60 s rather than being dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Lowest and highest trackable latency in microseconds.
pub const LOWEST_US: u64 = 1;
pub const HIGHEST_US: u64 = 60_000_000;
pub const SIGFIG: u8 = 3;

/// A histogram with the run's bounds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("constant bounds are valid")
}

/// Records a duration in microseconds, rounding to the nearest and never
/// below 1 µs (a response cannot take 0).
#[inline]
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = ((d.as_nanos() + 500) / 1000).max(1);
    h.saturating_record(u64::try_from(us).unwrap_or(HIGHEST_US));
}

/// Ways a request can fail; each is counted, none stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Could not open (or TLS-handshake) a connection.
    Connect,
    /// Read or write failed, or the server closed mid-response.
    Reset,
    /// No complete response within `--timeout`.
    Timeout,
    /// The response was not valid HTTP/1.1.
    Malformed,
    /// A complete response with a status outside the expected set.
    Status,
}

/// Errors by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErrorCounts {
    pub connect: u64,
    pub reset: u64,
    pub timeout: u64,
    pub malformed: u64,
    pub status: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.reset + self.timeout + self.malformed + self.status
    }

    pub fn add(&mut self, kind: ErrorKind) {
        match kind {
            ErrorKind::Connect => self.connect += 1,
            ErrorKind::Reset => self.reset += 1,
            ErrorKind::Timeout => self.timeout += 1,
            ErrorKind::Malformed => self.malformed += 1,
            ErrorKind::Status => self.status += 1,
        }
    }

    fn merge(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.reset += o.reset;
        self.timeout += o.timeout;
        self.malformed += o.malformed;
        self.status += o.status;
    }
}

/// Plain counters; one set per thread per interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Requests written (fully or not).
    pub sent: u64,
    /// Complete responses, whatever their status.
    pub responses: u64,
    pub errors: ErrorCounts,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Connections opened successfully.
    pub connects: u64,
    /// Open loop: scheduled requests never sent (the generator fell so far
    /// behind that the run ended first).
    pub unsent: u64,
    /// Responses by status code; index is the code (000..=999).
    pub statuses: Box<[u64; 1000]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            sent: 0,
            responses: 0,
            errors: ErrorCounts::default(),
            bytes_read: 0,
            bytes_written: 0,
            connects: 0,
            unsent: 0,
            statuses: Box::new([0; 1000]),
        }
    }
}

impl Counters {
    pub fn merge(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.responses += o.responses;
        self.errors.merge(&o.errors);
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        self.connects += o.connects;
        self.unsent += o.unsent;
        for (a, b) in self.statuses.iter_mut().zip(o.statuses.iter()) {
            *a += b;
        }
    }

    /// Non-zero status counts, ascending.
    pub fn status_map(&self) -> BTreeMap<u16, u64> {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(s, &n)| (s as u16, n))
            .collect()
    }

    /// Failed requests over attempted ones. Connect failures count as
    /// attempts: a request that could not even be sent failed too.
    pub fn error_rate(&self) -> f64 {
        let e = self.errors;
        let attempts = self.responses + e.connect + e.reset + e.timeout + e.malformed;
        if attempts == 0 {
            0.0
        } else {
            e.total() as f64 / attempts as f64
        }
    }
}

/// The latency histograms of one interval (or of the whole run).
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Closed loop: from send to response end. Open loop: from the
    /// *intended* send time to response end (corrected for coordinated
    /// omission).
    pub latency: Histogram<u64>,
    /// From the same start as `latency` to the arrival of the response's
    /// first body byte; only responses with a body of at least one byte
    /// are recorded. For a streamed body (server-sent events) this is
    /// the time to the first event, where `latency` is the time to the
    /// last.
    pub first_byte: Histogram<u64>,
    /// Open loop only: from the actual send to response end.
    pub service: Option<Histogram<u64>>,
    /// Open loop only: actual send − intended send. Includes waiting for
    /// a connection still busy with the previous (slow) response.
    pub send_lag: Option<Histogram<u64>>,
    /// Open loop only: actual send − max(intended send, connection free).
    /// What the generator itself added: timer granularity and CPU.
    pub gen_lag: Option<Histogram<u64>>,
}

impl Latencies {
    pub fn new(open_loop: bool) -> Latencies {
        let opt = || open_loop.then(histogram);
        Latencies {
            latency: histogram(),
            first_byte: histogram(),
            service: opt(),
            send_lag: opt(),
            gen_lag: opt(),
        }
    }

    pub fn merge(&mut self, o: &Latencies) {
        fn add(a: &mut Histogram<u64>, b: &Histogram<u64>) {
            a.add(b).expect("histograms share bounds");
        }
        add(&mut self.latency, &o.latency);
        add(&mut self.first_byte, &o.first_byte);
        for (a, b) in [
            (&mut self.service, &o.service),
            (&mut self.send_lag, &o.send_lag),
            (&mut self.gen_lag, &o.gen_lag),
        ] {
            if let (Some(a), Some(b)) = (a.as_mut(), b.as_ref()) {
                add(a, b);
            }
        }
    }
}

/// What one thread recorded during one interval.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Interval number: covers `[index, index + 1)` seconds after start
    /// (the last one may be shorter).
    pub index: u32,
    /// Offset from the run's start at which the interval was closed: its
    /// end, `index + 1` seconds, or earlier for a thread's last interval.
    pub until: Duration,
    pub latencies: Latencies,
    pub counters: Counters,
}

/// Per-thread recording state, behind a `RefCell` in the thread.
#[derive(Debug)]
pub struct Recorder {
    open_loop: bool,
    pub latencies: Latencies,
    pub counters: Counters,
}

impl Recorder {
    pub fn new(open_loop: bool) -> Recorder {
        Recorder {
            open_loop,
            latencies: Latencies::new(open_loop),
            counters: Counters::default(),
        }
    }

    /// Hands over what was recorded since the last call and starts afresh.
    pub fn take(&mut self, index: u32, until: Duration) -> Interval {
        Interval {
            index,
            until,
            latencies: std::mem::replace(&mut self.latencies, Latencies::new(self.open_loop)),
            counters: std::mem::take(&mut self.counters),
        }
    }

    #[inline]
    pub fn error(&mut self, kind: ErrorKind) {
        self.counters.errors.add(kind);
    }

    #[inline]
    pub fn status(&mut self, status: u16) {
        self.counters.responses += 1;
        if let Some(n) = self.counters.statuses.get_mut(usize::from(status)) {
            *n += 1;
        }
    }
}

/// One merged second of the run, as the live line and the log see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntervalSummary {
    /// Seconds since start at which the interval begins.
    pub t: u32,
    #[serde(serialize_with = "crate::report::ser_duration")]
    pub duration: Duration,
    pub responses: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_rounds_and_saturates() {
        let mut h = histogram();
        record(&mut h, Duration::from_nanos(100));
        record(&mut h, Duration::from_micros(1500));
        record(&mut h, Duration::from_secs(600));
        assert_eq!(h.min(), 1);
        assert_eq!(h.len(), 3);
        assert!(h.max() >= HIGHEST_US && h.max() <= HIGHEST_US + HIGHEST_US / 1000);
        assert!(h.equivalent(h.value_at_quantile(0.5), 1500));
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Recorder::new(true);
        let mut b = Recorder::new(true);
        a.status(200);
        a.error(ErrorKind::Reset);
        b.status(200);
        b.status(503);
        b.error(ErrorKind::Status);
        record(&mut a.latencies.latency, Duration::from_millis(1));
        record(&mut b.latencies.latency, Duration::from_millis(3));
        record(&mut b.latencies.first_byte, Duration::from_millis(2));
        record(
            b.latencies.service.as_mut().expect("open loop"),
            Duration::from_millis(2),
        );
        let mut ia = a.take(0, Duration::from_secs(1));
        let ib = b.take(0, Duration::from_secs(1));
        ia.counters.merge(&ib.counters);
        ia.latencies.merge(&ib.latencies);
        assert_eq!(ia.counters.responses, 3);
        assert_eq!(
            ia.counters.status_map(),
            BTreeMap::from([(200, 2), (503, 1)])
        );
        assert_eq!(ia.counters.errors.total(), 2);
        // 2 errors (one reset, one bad status) over 3 responses + 1 reset.
        assert!((ia.counters.error_rate() - 0.5).abs() < 1e-9);
        assert_eq!(ia.latencies.latency.len(), 2);
        assert_eq!(ia.latencies.first_byte.len(), 1);
        assert_eq!(ia.latencies.service.as_ref().map(|h| h.len()), Some(1));
        // Taking resets the recorder.
        assert_eq!(a.counters.responses, 0);
        assert_eq!(a.latencies.latency.len(), 0);
        assert_eq!(b.latencies.first_byte.len(), 0);
    }
}
