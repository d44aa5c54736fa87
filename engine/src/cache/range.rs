//! Range requests answered from a stored response (RFC 9110 §14): the
//! `Range` header's byte ranges against a representation of known length,
//! `If-Range` (§13.1.5), and the `multipart/byteranges` body (§14.6) that
//! answers several ranges at once.
//!
//! Abuse is bounded the way nginx's `max_ranges` and Apache's
//! `MaxRanges` bound it (§14.2 allows ignoring a Range header): more than
//! [`MAX_RANGES`] ranges, or ranges that together ask for more bytes than
//! the representation has (overlaps, the "many small overlapping ranges"
//! attack of §17.15), get the whole 200 instead. Ranges left are sorted and
//! touching ones coalesced, so no byte is sent twice. A Range that does not
//! parse is ignored too (§14.2), never an error.

use crate::http::text::{list, trim};

/// Most ranges answered in one multipart response.
pub(crate) const MAX_RANGES: usize = 16;

/// One satisfiable byte range, both ends inclusive (§14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl Span {
    pub(crate) fn len(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// How a Range request for a representation of known length is answered.
// Lives on the stack for one answer: boxing the spans would allocate per
// range request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Ignore the Range: the whole representation, as a 200.
    Whole,
    /// 416 with `Content-Range: bytes */LEN`: no range overlaps it.
    Unsatisfiable,
    /// 206 with these ranges, ascending and disjoint (at least one; more
    /// than one is a multipart body).
    Partial(Spans),
}

/// Up to [`MAX_RANGES`] spans, without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spans {
    spans: [Span; MAX_RANGES],
    len: usize,
}

impl Spans {
    pub(crate) fn as_slice(&self) -> &[Span] {
        &self.spans[..self.len]
    }
}

/// Plans the answer to `Range: value` for a representation of `len` bytes.
pub(crate) fn plan(value: &[u8], len: u64) -> Plan {
    let v = trim(value);
    let Some(eq) = v.iter().position(|&b| b == b'=') else {
        return Plan::Whole;
    };
    // Only the bytes unit is known here; others are ignored (§14.1).
    if !trim(&v[..eq]).eq_ignore_ascii_case(b"bytes") {
        return Plan::Whole;
    }
    let mut spans = Spans {
        spans: [Span { first: 0, last: 0 }; MAX_RANGES],
        len: 0,
    };
    let mut asked: u64 = 0;
    let mut any = false;
    for spec in list(&v[eq + 1..]) {
        any = true;
        let Some(dash) = spec.iter().position(|&b| b == b'-') else {
            return Plan::Whole;
        };
        let (first, last) = (&spec[..dash], &spec[dash + 1..]);
        let span = if first.is_empty() {
            // suffix-range: the last N bytes.
            let Some(n) = number(last) else {
                return Plan::Whole;
            };
            if n == 0 || len == 0 {
                continue;
            }
            Span {
                first: len.saturating_sub(n),
                last: len - 1,
            }
        } else {
            let Some(first) = number(first) else {
                return Plan::Whole;
            };
            let last = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(l) if l >= first => l,
                    // `last < first` makes the whole header invalid.
                    _ => return Plan::Whole,
                }
            };
            if first >= len {
                continue;
            }
            Span {
                first,
                last: last.min(len - 1),
            }
        };
        if spans.len == MAX_RANGES {
            return Plan::Whole;
        }
        asked = asked.saturating_add(span.len());
        spans.spans[spans.len] = span;
        spans.len += 1;
    }
    if !any {
        return Plan::Whole;
    }
    if spans.len == 0 {
        return Plan::Unsatisfiable;
    }
    // Asking for more bytes than there are means overlaps: the whole
    // representation is cheaper to send than the repeats.
    if spans.len > 1 && asked > len {
        return Plan::Whole;
    }
    let s = &mut spans.spans[..spans.len];
    s.sort_unstable_by_key(|s| s.first);
    let mut kept = 0;
    for i in 0..s.len() {
        if kept > 0 && s[i].first <= s[kept - 1].last.saturating_add(1) {
            s[kept - 1].last = s[kept - 1].last.max(s[i].last);
        } else {
            s[kept] = s[i];
            kept += 1;
        }
    }
    spans.len = kept;
    Plan::Partial(spans)
}

fn number(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0, |n, &b| n * 10 + u64::from(b - b'0')))
}

/// Does `If-Range: value` hold for the stored response (§13.1.5)? An
/// entity-tag must match the stored one by strong comparison; a date must
/// equal Last-Modified exactly, and only when that is a strong validator
/// (at least a second before the response's Date, §8.8.2.2).
pub(crate) fn if_range(
    value: &[u8],
    etag: Option<&[u8]>,
    last_modified: Option<u64>,
    date: Option<u64>,
) -> bool {
    let v = trim(value);
    if v.starts_with(b"\"") || v.starts_with(b"W/") {
        let strong = |t: &[u8]| t.len() >= 2 && t.starts_with(b"\"") && t.ends_with(b"\"");
        return match etag.map(trim) {
            Some(stored) => strong(v) && strong(stored) && v == stored,
            None => false,
        };
    }
    match (crate::http::date::parse(v), last_modified, date) {
        (Some(since), Some(lm), Some(date)) => since == lm && lm < date,
        _ => false,
    }
}

/// A multipart boundary: fixed text and 16 hex digits of `seed`, which the
/// caller varies per response (RFC 2046 §5.1.1 asks only that it not occur
/// in the parts; a collision with stored bytes is 1 in 2^64 per response).
pub(crate) fn boundary(seed: u64) -> [u8; 24] {
    let mut b = *b"ringway-0000000000000000";
    let mut hex = [0u8; 16];
    crate::http::text::hex_lower(&seed.to_be_bytes(), &mut hex);
    b[8..].copy_from_slice(&hex);
    b
}

/// The length of the `multipart/byteranges` body for `spans` of a
/// representation of `len` bytes with `content_type` (§14.6).
pub(crate) fn multipart_len(
    spans: &[Span],
    len: u64,
    content_type: Option<&[u8]>,
    boundary: &[u8],
) -> u64 {
    let mut num = itoa::Buffer::new();
    let mut total = 0u64;
    for s in spans {
        total += part_head_len(s, len, content_type, boundary, &mut num) + s.len();
    }
    // CRLF "--" boundary "--" CRLF
    total + 2 + 2 + boundary.len() as u64 + 2 + 2
}

fn part_head_len(
    s: &Span,
    len: u64,
    content_type: Option<&[u8]>,
    boundary: &[u8],
    num: &mut itoa::Buffer,
) -> u64 {
    // CRLF "--" boundary CRLF [Content-Type: ct CRLF]
    // "Content-Range: bytes " first "-" last "/" len CRLF CRLF
    let mut n = 2 + 2 + boundary.len() + 2;
    if let Some(ct) = content_type {
        n += 14 + ct.len() + 2;
    }
    n += 21 + num.format(s.first).len() + 1 + num.format(s.last).len() + 1;
    n += num.format(len).len() + 4;
    n as u64
}

/// Writes the head of one part (everything before its bytes).
pub(crate) fn write_part_head(
    out: &mut bytes::BytesMut,
    s: &Span,
    len: u64,
    content_type: Option<&[u8]>,
    boundary: &[u8],
) {
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary);
    out.extend_from_slice(b"\r\n");
    if let Some(ct) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct);
        out.extend_from_slice(b"\r\n");
    }
    write_content_range(out, s, len);
    out.extend_from_slice(b"\r\n");
}

/// Writes the closing delimiter of a multipart body.
pub(crate) fn write_end(out: &mut bytes::BytesMut, boundary: &[u8]) {
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary);
    out.extend_from_slice(b"--\r\n");
}

/// `Content-Range: bytes FIRST-LAST/LEN` with its CRLF.
pub(crate) fn write_content_range(out: &mut bytes::BytesMut, s: &Span, len: u64) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"Content-Range: bytes ");
    out.extend_from_slice(num.format(s.first).as_bytes());
    out.extend_from_slice(b"-");
    out.extend_from_slice(num.format(s.last).as_bytes());
    out.extend_from_slice(b"/");
    out.extend_from_slice(num.format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(p: &Plan) -> Vec<(u64, u64)> {
        match p {
            Plan::Partial(s) => s.as_slice().iter().map(|s| (s.first, s.last)).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn byte_ranges_of_rfc9110_14_1_2() {
        let len = 10_000;
        type Case = (&'static str, Option<&'static [(u64, u64)]>);
        let cases: &[Case] = &[
            ("bytes=0-499", Some(&[(0, 499)])),
            ("bytes=500-999", Some(&[(500, 999)])),
            ("bytes=-500", Some(&[(9500, 9999)])),
            ("bytes=9500-", Some(&[(9500, 9999)])),
            ("bytes=0-0,-1", Some(&[(0, 0), (9999, 9999)])),
            ("BYTES = 0-0 , 10-20", Some(&[(0, 0), (10, 20)])),
            ("bytes=9000-99999", Some(&[(9000, 9999)])),
            ("bytes=-99999", Some(&[(0, 9999)])),
            // Sorted and coalesced.
            ("bytes=500-600,0-99,100-199", Some(&[(0, 199), (500, 600)])),
            // An unsatisfiable member is dropped, the rest served.
            ("bytes=20000-,0-9", Some(&[(0, 9)])),
        ];
        for (value, want) in cases {
            let p = plan(value.as_bytes(), len);
            assert_eq!(spans(&p), want.unwrap_or(&[]).to_vec(), "{value:?}: {p:?}");
        }
    }

    #[test]
    fn what_is_ignored_or_unsatisfiable_rfc9110_14_2() {
        let len = 10_000;
        for ignored in [
            "",
            "bytes",
            "bytes=",
            "items=0-5",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=--5",
            "bytes=0-99999999999999999999",
            // Overlaps asking for more than the whole.
            "bytes=0-9999,0-9999",
            "bytes=0-6000,4000-9999",
        ] {
            assert_eq!(plan(ignored.as_bytes(), len), Plan::Whole, "{ignored:?}");
        }
        let many = (0..=MAX_RANGES)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(plan(format!("bytes={many}").as_bytes(), len), Plan::Whole);
        for unsatisfiable in ["bytes=10000-", "bytes=10000-20000,20000-", "bytes=-0"] {
            assert_eq!(
                plan(unsatisfiable.as_bytes(), len),
                Plan::Unsatisfiable,
                "{unsatisfiable:?}"
            );
        }
        assert_eq!(plan(b"bytes=0-", 0), Plan::Unsatisfiable);
        assert_eq!(plan(b"bytes=-5", 0), Plan::Unsatisfiable);
    }

    #[test]
    fn if_range_needs_a_strong_match_rfc9110_13_1_5() {
        const LM: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        let lm_text = b"Sun, 06 Nov 1994 08:49:37 GMT";
        // (If-Range, stored ETag, Last-Modified, Date, holds)
        type Case = (
            &'static [u8],
            Option<&'static [u8]>,
            Option<u64>,
            Option<u64>,
            bool,
        );
        let cases: &[Case] = &[
            (b"\"v1\"", Some(b"\"v1\""), None, None, true),
            (b"\"v1\"", Some(b"\"v2\""), None, None, false),
            (b"W/\"v1\"", Some(b"W/\"v1\""), None, None, false),
            (b"\"v1\"", Some(b"W/\"v1\""), None, None, false),
            (b"\"v1\"", None, Some(LM), Some(LM + 10), false),
            (lm_text, None, Some(LM), Some(LM + 10), true),
            (lm_text, None, Some(LM + 1), Some(LM + 10), false),
            // Last-Modified equal to Date is only a weak validator.
            (lm_text, None, Some(LM), Some(LM), false),
            (b"garbage", Some(b"\"v1\""), Some(LM), Some(LM + 10), false),
        ];
        for (value, etag, lm, date, want) in cases {
            assert_eq!(
                if_range(value, *etag, *lm, *date),
                *want,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn multipart_length_matches_what_is_written() {
        let body: Vec<u8> = (0..100u8).collect();
        let b = boundary(0x0123_4567_89ab_cdef);
        assert_eq!(&b, b"ringway-0123456789abcdef");
        let Plan::Partial(s) = plan(b"bytes=0-4,90-", 100) else {
            panic!("two ranges");
        };
        for ct in [Some(&b"text/plain"[..]), None] {
            let mut out = bytes::BytesMut::new();
            for span in s.as_slice() {
                write_part_head(&mut out, span, 100, ct, &b);
                out.extend_from_slice(&body[span.first as usize..=span.last as usize]);
            }
            write_end(&mut out, &b);
            assert_eq!(
                out.len() as u64,
                multipart_len(s.as_slice(), 100, ct, &b),
                "{ct:?}"
            );
            if ct.is_some() {
                let text = String::from_utf8_lossy(&out);
                assert!(text.starts_with(
                    "\r\n--ringway-0123456789abcdef\r\nContent-Type: text/plain\r\n\
                     Content-Range: bytes 0-4/100\r\n\r\n"
                ));
                assert!(text.ends_with("\r\n--ringway-0123456789abcdef--\r\n"));
            }
        }
    }
}
