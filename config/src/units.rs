//! Durations and byte sizes written with units: `"250ms"`, `"1m30s"`, `"64KiB"`.
//!
//! A bare `30` in a config is a bug waiting to happen (seconds? millis?
//! bytes? KiB?), so durations must always carry a unit, and sizes must carry
//! one unless written as a plain TOML integer (which means bytes). The unit
//! sets are deliberately small — `ms s m h` and `B KB MB GB TB KiB MiB GiB TiB`,
//! case-sensitive — so that `"10M"` (minutes? megabytes?) is rejected rather
//! than guessed. Only whole numbers are accepted; `"1.5s"` is written `"1500ms"`,
//! which keeps every accepted value exact.
//!
//! Rates are a count per period, `"100/s"`, `"5000/h"`, with one unit each
//! (`s m h d`): a limit is read as "this many per that long", and a bucket
//! refilled over a day needs no finer period.
//!
//! The parsers return plain `String` messages; the caller adds the field path
//! and the source position.

use std::time::Duration;

/// Units a duration may use, for error messages.
pub(crate) const DURATION_UNITS: &str = "ms, s, m, h";
/// Units a size may use, for error messages.
pub(crate) const SIZE_UNITS: &str =
    "B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (powers of 1024)";

/// Duration units and their milliseconds, largest first.
const DURATION_UNIT_MS: &[(&str, u64)] =
    &[("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Size units and their bytes, largest first.
const SIZE_UNIT_BYTES: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("B", 1),
];

/// Rate periods and their seconds, largest first.
const RATE_PERIODS: &[(&str, u64)] = &[("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];

/// Largest count of a rate: far above any real limit, and small enough
/// that the engine's token arithmetic cannot overflow.
pub(crate) const MAX_RATE_COUNT: u64 = 1_000_000_000;

/// Milliseconds per duration unit.
fn duration_unit(unit: &str) -> Option<u64> {
    lookup(DURATION_UNIT_MS, unit)
}

fn size_unit(unit: &str) -> Option<u64> {
    lookup(SIZE_UNIT_BYTES, unit)
}

fn lookup(units: &[(&str, u64)], unit: &str) -> Option<u64> {
    units
        .iter()
        .find(|&&(name, _)| name == unit)
        .map(|&(_, n)| n)
}

/// `n` in the largest of `units` that holds it exactly.
fn format_in(n: u64, units: &[(&str, u64)]) -> Option<String> {
    units
        .iter()
        .find(|&&(_, per)| n.is_multiple_of(per))
        .map(|&(unit, per)| format!("{}{unit}", n / per))
}

/// Writes a duration the way a person would, in the largest unit that holds
/// it exactly: `"90s"`, `"250ms"`, `"2h"`; zero is `"0s"`. [`parse_duration`]
/// reads the text back as the same duration, for any whole number of
/// milliseconds (all a parsed config holds; a finer part is dropped).
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    match ms {
        0 => "0s".to_owned(),
        ms => format_in(ms, DURATION_UNIT_MS).unwrap_or_else(|| format!("{ms}ms")),
    }
}

/// Writes a size in the largest unit that holds it exactly: `"1MiB"`,
/// `"10MB"`, `"4KiB"`, `"1536B"`; zero is `"0B"`. [`parse_size`] reads
/// the text back as the same number of bytes.
pub(crate) fn format_size(bytes: u64) -> String {
    match bytes {
        0 => "0B".to_owned(),
        n => format_in(n, SIZE_UNIT_BYTES).unwrap_or_else(|| format!("{n}B")),
    }
}

/// One `<whole number><unit>` group, with optional spaces between the two.
struct Group<'a> {
    number: u64,
    unit: &'a str,
}

/// Splits `text` (surrounding spaces allowed) into groups.
fn groups<'a>(text: &'a str, example: &str) -> Result<Vec<Group<'a>>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, tail) = rest.split_at(digits_end);
        if digits.is_empty() {
            return Err(format!(
                "{text:?}: expected a whole number followed by a unit, e.g. {example:?}"
            ));
        }
        let tail = tail.trim_start();
        if tail.starts_with(['.', ',']) {
            return Err(format!(
                "{text:?}: only whole numbers are allowed; use a smaller unit instead of a fraction"
            ));
        }
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let number = digits
            .parse::<u64>()
            .map_err(|_| format!("{text:?}: number is too large"))?;
        out.push(Group { number, unit });
        rest = tail.trim_start();
    }
    Ok(out)
}

/// Parses a duration such as `"250ms"`, `"10s"`, `"5m"`, `"1h"` or `"1m30s"`.
/// Zero (`"0s"`) parses; callers that need a positive value check for it.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim().is_empty() {
        return Err(format!(
            "empty duration; write a number with a unit ({DURATION_UNITS}), e.g. \"10s\""
        ));
    }
    let mut total_ms: u64 = 0;
    for group in groups(text, "10s")? {
        if group.unit.is_empty() {
            return Err(format!(
                "{text:?} has no unit; write e.g. \"{}s\" (units: {DURATION_UNITS})",
                group.number
            ));
        }
        let Some(unit) = duration_unit(group.unit) else {
            return Err(format!(
                "unknown duration unit {:?} in {text:?}; use one of {DURATION_UNITS}",
                group.unit
            ));
        };
        total_ms = group
            .number
            .checked_mul(unit)
            .and_then(|part| total_ms.checked_add(part))
            .ok_or_else(|| format!("{text:?}: duration is too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a size such as `"512B"`, `"64KiB"`, `"1MiB"` or `"10MB"` into bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    if text.trim().is_empty() {
        return Err(format!(
            "empty size; write a number with a unit, e.g. \"64KiB\" (units: {SIZE_UNITS})"
        ));
    }
    let parts = groups(text, "64KiB")?;
    let [group] = parts.as_slice() else {
        return Err(format!(
            "{text:?}: write a size as one number and one unit, e.g. \"1536KiB\""
        ));
    };
    if group.unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit; write e.g. \"{}B\", or a plain integer for bytes (units: {SIZE_UNITS})",
            group.number
        ));
    }
    let Some(unit) = size_unit(group.unit) else {
        return Err(format!(
            "unknown size unit {:?} in {text:?}; use one of {SIZE_UNITS}",
            group.unit
        ));
    };
    group
        .number
        .checked_mul(unit)
        .ok_or_else(|| format!("{text:?}: size is too large"))
}

/// Parses a rate such as `"100/s"`, `"60/m"`, `"5000/h"` or `"10000/d"`
/// into a count (1 to [`MAX_RATE_COUNT`]) and its period.
pub(crate) fn parse_rate(text: &str) -> Result<(u64, Duration), String> {
    const EXAMPLE: &str = "e.g. \"100/s\" or \"5000/h\" (periods: s, m, h, d)";
    let Some((count, period)) = text.split_once('/') else {
        return Err(match text.parse::<u64>() {
            Ok(n) => format!("{text:?} has no period; write e.g. \"{n}/s\" or \"{n}/m\""),
            Err(_) => format!("{text:?}: expected a count per period, {EXAMPLE}"),
        });
    };
    let count = count.trim();
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?}: the count before '/' must be a whole number, {EXAMPLE}"
        ));
    }
    let count = count
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=MAX_RATE_COUNT).contains(n))
        .ok_or_else(|| format!("{text:?}: the count must be from 1 to {MAX_RATE_COUNT}"))?;
    let period = period.trim();
    let seconds = lookup(RATE_PERIODS, period).ok_or_else(|| {
        let hint = if period.starts_with(|c: char| c.is_ascii_digit()) {
            "; a period is one unit, so write \"6/m\" rather than \"1/10s\""
        } else {
            ""
        };
        format!("unknown period {period:?} in {text:?}; use s, m, h or d{hint}")
    })?;
    Ok((count, Duration::from_secs(seconds)))
}

/// Writes a rate as [`parse_rate`] reads it. `period` is one of the
/// periods `parse_rate` yields; any other is written in seconds, which
/// `parse_rate` then refuses rather than misreads.
pub(crate) fn format_rate(count: u64, period: Duration) -> String {
    let seconds = period.as_secs();
    match RATE_PERIODS.iter().find(|&&(_, s)| s == seconds) {
        Some((unit, _)) if period.subsec_nanos() == 0 => format!("{count}/{unit}"),
        _ => format!("{count}/{}", format_duration(period)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates() {
        let ok: &[(&str, u64, u64)] = &[
            ("1/s", 1, 1),
            ("100/s", 100, 1),
            ("60/m", 60, 60),
            ("5000/h", 5000, 3600),
            ("10000/d", 10000, 86400),
            ("1000000000/s", 1_000_000_000, 1),
            (" 10 / s ", 10, 1),
        ];
        for &(text, count, seconds) in ok {
            assert_eq!(
                parse_rate(text),
                Ok((count, Duration::from_secs(seconds))),
                "{text:?}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("", "expected a count per period"),
            ("10", "has no period; write e.g. \"10/s\""),
            ("ten/s", "must be a whole number"),
            ("-1/s", "must be a whole number"),
            ("1.5/s", "must be a whole number"),
            ("/s", "must be a whole number"),
            ("0/s", "from 1 to 1000000000"),
            ("1000000001/s", "from 1 to 1000000000"),
            ("99999999999999999999/s", "from 1 to 1000000000"),
            ("10/sec", "unknown period \"sec\""),
            ("10/S", "unknown period \"S\""),
            ("10/", "unknown period \"\""),
            ("10/ms", "unknown period \"ms\""),
            ("1/10s", "one unit"),
            ("10/s/s", "unknown period \"s/s\""),
        ];
        for &(text, fragment) in bad {
            let err = parse_rate(text).expect_err(text);
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
        assert_eq!(format_rate(5, Duration::from_secs(3600)), "5/h");
        assert_eq!(format_rate(5, Duration::from_secs(10)), "5/10s");
        assert!(parse_rate(&format_rate(5, Duration::from_secs(10))).is_err());
    }

    #[test]
    fn durations() {
        let ok: &[(&str, Duration)] = &[
            ("0s", Duration::ZERO),
            ("1ms", Duration::from_millis(1)),
            ("250ms", Duration::from_millis(250)),
            ("10s", Duration::from_secs(10)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("1h 30m", Duration::from_secs(5400)),
            ("2s500ms", Duration::from_millis(2500)),
            ("10 s", Duration::from_secs(10)),
            (" 10s ", Duration::from_secs(10)),
            ("007s", Duration::from_secs(7)),
        ];
        for &(text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bad_durations() {
        // (input, a fragment the message must contain)
        let bad: &[(&str, &str)] = &[
            ("", "empty duration"),
            ("   ", "empty duration"),
            ("10", "has no unit"),
            ("10sec", "unknown duration unit \"sec\""),
            ("10S", "unknown duration unit \"S\""),
            ("1us", "unknown duration unit \"us\""),
            ("1ns", "unknown duration unit \"ns\""),
            ("1d", "unknown duration unit \"d\""),
            ("1.5s", "only whole numbers"),
            ("-1s", "expected a whole number"),
            ("s", "expected a whole number"),
            ("ten seconds", "expected a whole number"),
            ("1m30", "has no unit"),
            ("99999999999999999999s", "too large"),
            ("6000000000000h", "too large"),
            ("18446744073709551615s", "too large"),
        ];
        for &(text, fragment) in bad {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn sizes() {
        let ok: &[(&str, u64)] = &[
            ("0B", 0),
            ("512B", 512),
            ("1KB", 1_000),
            ("64KiB", 65_536),
            ("1MiB", 1_048_576),
            ("10MB", 10_000_000),
            ("1GiB", 1_073_741_824),
            ("2GB", 2_000_000_000),
            ("1TiB", 1 << 40),
            ("3TB", 3_000_000_000_000),
            ("8 KiB", 8192),
        ];
        for &(text, want) in ok {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bad_sizes() {
        let bad: &[(&str, &str)] = &[
            ("", "empty size"),
            ("1024", "has no unit"),
            ("64kib", "unknown size unit \"kib\""),
            ("64K", "unknown size unit \"K\""),
            ("1M", "unknown size unit \"M\""),
            ("1.5MiB", "only whole numbers"),
            ("1MiB512KiB", "one number and one unit"),
            ("KiB", "expected a whole number"),
            ("99999999TiB", "too large"),
        ];
        for &(text, fragment) in bad {
            let err = parse_size(text).expect_err(text);
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn formatted_in_the_largest_exact_unit() {
        let durations: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_millis(1), "1ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(5400), "90m"),
        ];
        for &(d, want) in durations {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
        let sizes: &[(u64, &str)] = &[
            (0, "0B"),
            (1, "1B"),
            (1536, "1536B"),
            (1000, "1KB"),
            (4096, "4KiB"),
            (1 << 20, "1MiB"),
            (10_000_000, "10MB"),
            (1_024_000, "1000KiB"), // 1000 × 1024 beats 1024 × 1000
            (1 << 30, "1GiB"),
            (3_000_000_000_000, "3TB"),
            (5 << 40, "5TiB"),
            (u64::MAX, "18446744073709551615B"),
        ];
        for &(n, want) in sizes {
            assert_eq!(format_size(n), want, "{n}");
        }
    }

    proptest! {
        #[test]
        fn formatted_durations_read_back(ms in any::<u64>()) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn formatted_sizes_read_back(n in any::<u64>(), unit in 0usize..9, small in 0u64..100_000) {
            prop_assert_eq!(parse_size(&format_size(n)), Ok(n));
            // Random u64s are rarely round; multiples of each unit are.
            let round = small * SIZE_UNIT_BYTES[unit].1;
            prop_assert_eq!(parse_size(&format_size(round)), Ok(round));
        }

        #[test]
        fn formatted_rates_read_back(count in 1..=MAX_RATE_COUNT, period in 0usize..4) {
            let period = Duration::from_secs(RATE_PERIODS[period].1);
            prop_assert_eq!(parse_rate(&format_rate(count, period)), Ok((count, period)));
        }

        #[test]
        fn duration_round_trips(ms in 0u64..10_000_000_000) {
            prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
        }

        #[test]
        fn compound_duration_is_the_sum(h in 0u64..1000, m in 0u64..1000, s in 0u64..1000, ms in 0u64..1000) {
            let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            prop_assert_eq!(parse_duration(&format!("{h}h{m}m{s}s{ms}ms")), Ok(want));
        }

        #[test]
        fn binary_and_decimal_sizes(n in 0u64..1_000_000) {
            prop_assert_eq!(parse_size(&format!("{n}KiB")), Ok(n * 1024));
            prop_assert_eq!(parse_size(&format!("{n}MB")), Ok(n * 1_000_000));
        }

        #[test]
        fn errors_quote_what_was_written(text in ".{0,24}") {
            prop_assume!(!text.trim().is_empty());
            let quoted = format!("{text:?}");
            if let Err(err) = parse_duration(&text) {
                prop_assert!(err.contains(&quoted), "{}", err);
            }
            if let Err(err) = parse_size(&text) {
                prop_assert!(err.contains(&quoted), "{}", err);
            }
        }
    }
}
