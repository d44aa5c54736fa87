//! `[access-log]` → [`AccessLog`]: where request lines go, in which
//! format, how many successful requests are kept, and how many records
//! may wait for the writer.
//!
//! Every key is checked also while `enabled = false`, so turning the log
//! on cannot surface old mistakes. The path is not opened here (this crate
//! does no I/O on what a config names): the engine opens it when it starts
//! or reloads, and refuses the config if it cannot. A path that can only
//! name a directory (empty, or ending in `/`) is an error here already.
//! `sample` is held in millionths: finer shares would make no difference
//! a log reader could see, and an integer compares exactly across reloads.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use toml::Spanned;

use super::{defaults, integer, show};
use crate::error::Reporter;
use crate::model::{AccessLog, LogFormat, LogTarget, SampleRate};
use crate::raw::{RawAccessLog, Scalar};

/// `queue` bounds, per worker. One record is a few KiB once in use, so a
/// million bounds the worst case at a few GiB per worker, far past what a
/// writer falling behind for a second needs at any request rate.
const QUEUE: RangeInclusive<i64> = 1..=1_000_000;

pub(super) fn access_log(
    raw: Option<&Spanned<RawAccessLog>>,
    r: &mut Reporter<'_>,
) -> Option<AccessLog> {
    let empty = RawAccessLog::default();
    let a = raw.map_or(&empty, Spanned::get_ref);

    let path = a
        .path
        .as_ref()
        .map_or(Some(LogTarget::Stdout), |p| target(p, r));
    let format = a
        .format
        .as_ref()
        .map_or(Some(LogFormat::default()), |f| format(f, r));
    let sample = a
        .sample
        .as_ref()
        .map_or(Some(SampleRate::ALL), |s| sample(s, r));
    let queue = a
        .queue
        .as_ref()
        .map_or(Some(defaults::ACCESS_LOG_QUEUE), |q| {
            integer(q, "access-log.queue", QUEUE, r)
        });

    Some(AccessLog {
        enabled: a.enabled.unwrap_or(false),
        path: path?,
        format: format?,
        sample: sample?,
        query: a.query.unwrap_or(true),
        queue: usize::try_from(queue?).ok()?,
    })
}

fn target(value: &Spanned<String>, r: &mut Reporter<'_>) -> Option<LogTarget> {
    let text = value.get_ref().as_str();
    let problem = if text.is_empty() {
        "must not be empty; write a file path, or \"-\" for standard output"
    } else if text.contains('\0') {
        "must not contain a NUL byte"
    } else if text.ends_with('/') {
        "names a directory; write the path of the log file in it, e.g. \"/var/log/ringway/access.log\""
    } else if text == "-" {
        return Some(LogTarget::Stdout);
    } else {
        return Some(LogTarget::File(PathBuf::from(text)));
    };
    r.error("access-log.path", Some(value.span()), problem);
    None
}

fn format(value: &Spanned<String>, r: &mut Reporter<'_>) -> Option<LogFormat> {
    let text = value.get_ref().as_str();
    if let Some(&found) = LogFormat::ALL.iter().find(|f| f.as_str() == text) {
        return Some(found);
    }
    r.error(
        "access-log.format",
        Some(value.span()),
        format!("expected \"json\" or \"combined\", found {text:?}"),
    );
    None
}

fn sample(value: &Spanned<Scalar>, r: &mut Reporter<'_>) -> Option<SampleRate> {
    let share = match value.get_ref() {
        Scalar::Float(f) => Some(*f),
        Scalar::Int(n) => Some(*n as f64),
        Scalar::Str(s) if s.trim().parse::<f64>().is_ok() => {
            r.error(
                "access-log.sample",
                Some(value.span()),
                format!("write the number without quotes: {}", s.trim()),
            );
            return None;
        }
        _ => None,
    };
    if let Some(rate) = share.and_then(SampleRate::from_share) {
        return Some(rate);
    }
    r.error(
        "access-log.sample",
        Some(value.span()),
        format!(
            "expected a share of successful requests from 0 to 1, e.g. 0.1 for one in ten, found {}",
            show(value.get_ref())
        ),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_rates_round_to_millionths() {
        let cases = [
            (0.0, Some(0)),
            (1.0, Some(1_000_000)),
            (0.1, Some(100_000)),
            (0.123_456_7, Some(123_457)),
            (1e-7, Some(0)),
            (-0.1, None),
            (1.000_001, None),
            (f64::NAN, None),
        ];
        for (share, want) in cases {
            assert_eq!(
                SampleRate::from_share(share).map(SampleRate::per_million),
                want,
                "{share}"
            );
        }
        // What is written back reads back as the same rate.
        for millionths in [0, 1, 123_457, 999_999, 1_000_000] {
            let rate = SampleRate::from_share(f64::from(millionths) / 1e6).expect("in range");
            assert_eq!(rate.per_million(), millionths);
            assert_eq!(SampleRate::from_share(rate.as_f64()), Some(rate));
        }
    }
}
