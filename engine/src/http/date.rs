//! HTTP dates (RFC 9110 §5.6.7): the `Date` header we send (§6.6.1),
//! formatted once per second per worker, and the dates we read.
//!
//! Formatting an IMF-fixdate costs far more than the rest of a responder
//! answer, so each worker thread keeps the current line cached and
//! rebuilds it only when the wall-clock second changes.
//!
//! Reading accepts all three formats a recipient must (§5.6.7):
//! IMF-fixdate, the obsolete RFC 850 form with its two-digit year, and
//! asctime. Month and weekday names ignore case, and a weekday that does not
//! match the date is ignored rather than failing the whole value: the date
//! itself is unambiguous, and a cache that refused it would treat a valid
//! `Expires` as expired (RFC 9111 §5.3) over a clerical slip.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n` is 37 bytes.
const LINE_LEN: usize = 37;

struct Cached {
    second: u64,
    line: [u8; LINE_LEN],
}

thread_local! {
    static CACHE: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, line: [0; LINE_LEN] }) };
}

/// Appends the current `Date: …\r\n` line to `out`.
pub(crate) fn append_date_line(out: &mut bytes::BytesMut) {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.second != second {
            // Formatted in place: no allocation even once a second.
            let mut line = [0u8; LINE_LEN];
            let mut cursor = &mut line[..];
            let written = write!(cursor, "Date: {}\r\n", httpdate::HttpDate::from(now));
            if written.is_ok() && cursor.is_empty() {
                c.line = line;
                c.second = second;
            }
        }
        out.extend_from_slice(&c.line);
    });
}

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// An HTTP-date (any of the three formats) as seconds since the Unix epoch;
/// `None` when it is not one. Two-digit years are read against the current
/// year.
pub(crate) fn parse(value: &[u8]) -> Option<u64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    parse_at(value, now)
}

/// [`parse`] with the current time given: an RFC 850 year more than 50
/// years after `now`'s is taken from the century before (§5.6.7).
pub(crate) fn parse_at(value: &[u8], now: u64) -> Option<u64> {
    let v = crate::http::text::trim(value);
    let comma = v.iter().position(|&b| b == b',');
    let (day, month, year, time) = match comma {
        Some(c) => {
            weekday(&v[..c])?;
            let rest = v[c + 1..].strip_prefix(b" ")?;
            if rest.get(2) == Some(&b' ') {
                // IMF-fixdate: `06 Nov 1994 08:49:37 GMT`.
                if rest.len() != 24 || &rest[20..] != b" GMT" {
                    return None;
                }
                let day = digits(&rest[..2])?;
                let month = month(&rest[3..6])?;
                (rest[6] == b' ').then_some(())?;
                let year = digits(&rest[7..11])?;
                (rest[11] == b' ').then_some(())?;
                (day, month, year, &rest[12..20])
            } else {
                // RFC 850: `06-Nov-94 08:49:37 GMT`.
                if rest.len() != 22 || &rest[18..] != b" GMT" {
                    return None;
                }
                let day = digits(&rest[..2])?;
                (rest[2] == b'-' && rest[6] == b'-' && rest[9] == b' ').then_some(())?;
                let month = month(&rest[3..6])?;
                let yy = digits(&rest[7..9])?;
                (day, month, two_digit_year(yy, now), &rest[10..18])
            }
        }
        None => {
            // asctime: `Sun Nov  6 08:49:37 1994`.
            if v.len() != 24 {
                return None;
            }
            weekday(&v[..3])?;
            (v[3] == b' ' && v[7] == b' ' && v[10] == b' ' && v[19] == b' ').then_some(())?;
            let month = month(&v[4..7])?;
            let day = match v[8] {
                b' ' => digits(&v[9..10])?,
                _ => digits(&v[8..10])?,
            };
            let year = digits(&v[20..24])?;
            (day, month, year, &v[11..19])
        }
    };
    let (h, m, s) = clock(time)?;
    if !(1..=days_in_month(year, month)).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// A day name, short or long (`Sun`, `Sunday`), any case; which day it
/// names is not checked against the date.
fn weekday(name: &[u8]) -> Option<()> {
    const DAYS: [&[u8]; 7] = [
        b"monday",
        b"tuesday",
        b"wednesday",
        b"thursday",
        b"friday",
        b"saturday",
        b"sunday",
    ];
    DAYS.iter()
        .any(|d| name.eq_ignore_ascii_case(d) || name.eq_ignore_ascii_case(&d[..3]))
        .then_some(())
}

fn month(name: &[u8]) -> Option<u64> {
    MONTHS
        .iter()
        .position(|m| name.eq_ignore_ascii_case(&m[..]))
        .map(|i| i as u64 + 1)
}

fn digits(d: &[u8]) -> Option<u64> {
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0, |n, &b| n * 10 + u64::from(b - b'0')))
}

/// `08:49:37`; a leap second (60) is allowed, as the grammar allows it.
fn clock(t: &[u8]) -> Option<(u64, u64, u64)> {
    (t.len() == 8 && t[2] == b':' && t[5] == b':').then_some(())?;
    let (h, m, s) = (digits(&t[..2])?, digits(&t[3..5])?, digits(&t[6..8])?);
    (h < 24 && m < 60 && s <= 60).then_some((h, m, s))
}

/// §5.6.7: a two-digit year that would be more than 50 years in the
/// future is the most recent past year with those digits.
fn two_digit_year(yy: u64, now: u64) -> u64 {
    let this_year = civil_year(now / 86_400);
    let year = this_year - this_year % 100 + yy;
    if year > this_year + 50 {
        year - 100
    } else {
        year
    }
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's algorithm,
/// for years from 1970 on).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year a count of days since 1970-01-01 falls in.
fn civil_year(days: u64) -> u64 {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400;
    if m <= 2 {
        y + 1
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::parse_at;

    /// 2026-12-03, when two-digit years are read.
    const NOW: u64 = 1_796_300_000;
    /// Sun, 06 Nov 1994 08:49:37 GMT.
    const T: u64 = 784_111_777;

    #[test]
    fn the_three_formats_of_rfc9110_5_6_7() {
        let cases: &[(&str, Option<u64>)] = &[
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(T)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(T)),
            ("Sun Nov  6 08:49:37 1994", Some(T)),
            // Names ignore case.
            ("sun, 06 NOV 1994 08:49:37 GMT", Some(T)),
            ("SUNDAY, 06-nov-94 08:49:37 GMT", Some(T)),
            ("sUn nOv  6 08:49:37 1994", Some(T)),
            // A weekday that does not match the date is ignored.
            ("Mon, 06 Nov 1994 08:49:37 GMT", Some(T)),
            ("Friday, 06-Nov-94 08:49:37 GMT", Some(T)),
            ("Wed Nov  6 08:49:37 1994", Some(T)),
            // Surrounding whitespace is not part of the value.
            ("  Sun, 06 Nov 1994 08:49:37 GMT ", Some(T)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Tue, 29 Feb 2028 12:00:00 GMT", Some(1_835_438_400)),
            ("Sun Nov 16 08:49:37 1994", Some(T + 10 * 86_400)),
            // Not dates.
            ("", None),
            ("0", None),
            ("-1", None),
            ("Sun, 06 Nov 1994 08:49:37 UTC", None),
            ("Sun, 6 Nov 1994 08:49:37 GMT", None),
            ("Sun, 31 Nov 1994 08:49:37 GMT", None),
            ("Sun, 29 Feb 2027 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 24:00:00 GMT", None),
            ("Sun, 06 Foo 1994 08:49:37 GMT", None),
            ("Xyz, 06 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1969 08:49:37 GMT", None),
            ("Sun Nov 6 08:49:37 1994", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_at(value.as_bytes(), NOW), *want, "{value:?}");
        }
    }

    #[test]
    fn rfc850_years_more_than_50_years_ahead_are_last_century() {
        let year = |v: &str| {
            let secs = parse_at(v.as_bytes(), NOW).expect("a date");
            super::civil_year(secs / 86_400)
        };
        assert_eq!(year("Sunday, 06-Nov-94 08:49:37 GMT"), 1994);
        assert_eq!(year("Monday, 06-Nov-76 08:49:37 GMT"), 2076);
        assert_eq!(year("Monday, 06-Nov-77 08:49:37 GMT"), 1977);
        assert_eq!(year("Monday, 06-Nov-26 08:49:37 GMT"), 2026);
        assert_eq!(year("Monday, 06-Nov-00 08:49:37 GMT"), 2000);
    }

    #[test]
    fn date_line_is_well_formed() {
        let mut out = bytes::BytesMut::new();
        super::append_date_line(&mut out);
        assert_eq!(out.len(), super::LINE_LEN);
        assert!(out.starts_with(b"Date: "));
        assert!(out.ends_with(b" GMT\r\n"));
    }
}
