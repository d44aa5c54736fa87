//! `--hdr-log FILE`: the run as an HdrHistogram interval log, one entry per
//! second, readable by HdrHistogram's `HistogramLogProcessor` and plotting
//! tools.
//!
//! Values are microseconds; the log's max column is divided by 1000 so it
//! reads in milliseconds, as those tools expect. In open loop each second
//! has two entries: the corrected latency (untagged, the primary series)
//! and the service time (tag `service`). The log is written as the run
//! goes, so a long run does not keep its seconds in memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::run::MergedInterval;

/// Opens `path`, runs `body` with a callback that logs each interval, and
/// returns `body`'s result once the log is flushed. The log's StartTime and
/// BaseTime are the run's start, taken from the first interval.
pub fn scoped<R>(
    path: &Path,
    body: impl FnOnce(&mut dyn FnMut(&MergedInterval<'_>)) -> R,
) -> io::Result<R> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut ser = V2DeflateSerializer::new();
    let mut first_error: Option<io::Error> = None;
    let result = {
        // The writer borrows the file and the serializer for as long as it
        // lives, and is created at the first interval, when the run's
        // start time is known.
        let mut sinks = Some((&mut out, &mut ser));
        let mut log = None;
        let mut write = |m: &MergedInterval<'_>| {
            if let Some((out, ser)) = sinks.take() {
                match IntervalLogWriterBuilder::new()
                    .add_comment("ringway-load interval log; values in microseconds")
                    .with_start_time(m.run_started)
                    .with_base_time(m.run_started)
                    .with_max_value_divisor(1000.0)
                    .begin_log_with(out, ser)
                {
                    Ok(w) => log = Some(w),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            let Some(log) = log.as_mut() else { return };
            let mut entries = vec![(&m.latencies.latency, None)];
            if let Some(s) = m.latencies.service.as_ref() {
                entries.push((s, Tag::new("service")));
            }
            for (h, tag) in entries {
                if let Err(e) = log.write_histogram(h, m.start, m.duration, tag) {
                    first_error.get_or_insert_with(|| io::Error::other(e.to_string()));
                }
            }
        };
        body(&mut write)
    };
    out.flush()?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{record, Counters, Latencies};
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use std::time::Duration;

    #[test]
    fn writes_a_readable_log() {
        let path = std::env::temp_dir().join(format!("ringway-load-{}.hlog", std::process::id()));
        let mut lat = Latencies::new(true);
        record(&mut lat.latency, Duration::from_millis(3));
        record(
            lat.service.as_mut().expect("open loop"),
            Duration::from_millis(1),
        );
        let counters = Counters::default();
        scoped(&path, |log| {
            for i in 0..2u32 {
                log(&MergedInterval {
                    index: i,
                    start: Duration::from_secs(u64::from(i)),
                    duration: Duration::from_secs(1),
                    latencies: &lat,
                    counters: &counters,
                    run_started: std::time::SystemTime::now(),
                });
            }
        })
        .expect("log written");
        let text = std::fs::read(&path).expect("log exists");
        let _ = std::fs::remove_file(&path);
        let entries: Vec<_> = IntervalLogIterator::new(&text)
            .filter_map(|e| match e {
                Ok(LogEntry::Interval(h)) => Some((
                    h.start_timestamp(),
                    h.tag().map(|t| t.as_str().to_string()),
                    h.max(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].1, None);
        assert_eq!(entries[1].1.as_deref(), Some("service"));
        assert_eq!(entries[2].0, Duration::from_secs(1));
        // The max column is in milliseconds.
        assert!((entries[0].2 - 3.0).abs() < 0.01, "{entries:?}");
    }
}
