//! Durations and rates as people type and read them.
//!
//! Flags, the scenario file and the report all share one spelling —
//! `250us`, `1.5ms`, `10s`, `2m` — so a threshold copied from a report
//! parses back to the same value. A unit is always required: a bare `50`
//! could mean 50 ms or 50 s, and a load test that silently picks the wrong
//! one is worse than one that refuses to start.

use std::time::Duration;

/// Parses `"<number><unit>"` with unit `ns`, `us` (or `µs`), `ms`, `s`, `m`
/// or `h`; the number may have a fraction (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "`{text}` is not a duration (e.g. 250us, 10ms, 1.5s, 2m)"
        ));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 250us, 10ms, 1.5s, 2m)"))?;
    let nanos_per_unit = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "" => {
            return Err(format!(
                "`{text}` needs a unit: ns, us, ms, s, m or h (e.g. {num}ms)"
            ))
        }
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (ns, us, ms, s, m, h)"
            ))
        }
    };
    let nanos = value * nanos_per_unit;
    // A week bounds every duration this tool takes; larger is a typo.
    if !nanos.is_finite() || nanos > 7.0 * 24.0 * 3600e9 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Formats with three significant digits and the largest unit that keeps
/// the number at least 1: `812µs`, `3.21ms`, `1.50s`.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{}µs", sig3(ns / 1e3))
    } else if ns < 1e9 {
        format!("{}ms", sig3(ns / 1e6))
    } else {
        format!("{}s", sig3(ns / 1e9))
    }
}

/// Formats microseconds (the histograms' unit) like [`fmt_duration`].
pub fn fmt_micros(us: u64) -> String {
    fmt_duration(Duration::from_micros(us))
}

/// Three significant digits for a number in [1, 1000).
fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Parses a request rate in requests per second: a positive number.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches("/s");
    match t.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e8 => Ok(r),
        _ => Err(format!("`{text}` is not a rate (requests per second > 0)")),
    }
}

/// Formats a rate for the report: `1234.5/s` below 10k, `129.3k/s` above.
pub fn fmt_rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.1}k/s", r / 1000.0)
    } else {
        format!("{r:.1}/s")
    }
}

/// Formats a byte count with a binary unit.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b}B")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_table() {
        let ok: &[(&str, Duration)] = &[
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("10ms", Duration::from_millis(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("7ns", Duration::from_nanos(7)),
            (" 3s ", Duration::from_secs(3)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text).as_ref(), Ok(want), "{text}");
        }
        for bad in ["", "s", "10", "10 parsecs", "1.2.3s", "-1s", "9999h"] {
            assert!(parse_duration(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn fmt_duration_round_trips_through_parse() {
        for d in [
            Duration::from_micros(812),
            Duration::from_micros(3210),
            Duration::from_millis(1500),
        ] {
            let text = fmt_duration(d);
            let back = parse_duration(&text.replace('µ', "u")).expect("formatted parses");
            assert_eq!(back, d, "{text}");
        }
        assert_eq!(fmt_duration(Duration::from_micros(3210)), "3.21ms");
        assert_eq!(fmt_duration(Duration::from_micros(45)), "45.0µs");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        assert_eq!(parse_rate("2.5/s"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert_eq!(fmt_rate(129_300.0), "129.3k/s");
        assert_eq!(fmt_bytes(2048), "2.00KiB");
    }
}
