//! A stored response: its head laid out as the bytes a hit sends, its body
//! as `Bytes`, and what freshness and validation need, parsed once.
//!
//! The head holds the status line and every end-to-end field line, with
//! our `Via` hop; never `Age` (computed per hit), framing or `Connection`
//! (written per hit). A hit therefore copies the head (a few hundred bytes)
//! into the write buffer and hands the body to the kernel as it is.
//!
//! Updating a stored response from a 304 (RFC 9111 §4.3.4) rebuilds it:
//! each field the 304 carries replaces every stored line of that name.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use super::conditional::Validators;
use super::directives::{self, Source};
use super::freshness::Stored;
use super::key;
use crate::http::write;

/// Our hop in `Via`.
pub(crate) const VIA_HOP: &[u8] = b"1.1 ringway";

/// Fields a 304 sent to a client repeats from the stored response
/// (RFC 9110 §15.4.5), plus Last-Modified, as other caches do.
const NOT_MODIFIED_FIELDS: [&[u8]; 7] = [
    b"cache-control",
    b"content-location",
    b"date",
    b"etag",
    b"expires",
    b"last-modified",
    b"vary",
];

/// Name and value of a field line, as offsets into the entry's head.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: (u32, u32),
    value: (u32, u32),
}

/// One stored response.
#[derive(Debug)]
pub struct Entry {
    pub(crate) status: u16,
    /// Status line and field lines, each ending in CRLF.
    pub(crate) head: Bytes,
    fields: Vec<Field>,
    pub(crate) body: Bytes,
    /// What freshness depends on.
    pub(crate) stored: Stored,
    /// Freshness lifetime in seconds (§4.2.1).
    pub(crate) lifetime: u64,
    /// Vary's field names (lower-case), and the request's values of them
    /// that selected this response (§4.1).
    pub(crate) vary: Vec<Vec<u8>>,
    /// `Vary: *`: no request can be shown to match (never stored).
    pub(crate) vary_any: bool,
    /// The head holds `CDN-Cache-Control` or the targeted field (RFC
    /// 9213), which a hit leaves out unless they are forwarded.
    targeted_lines: bool,
    pub(crate) secondary: Vec<u8>,
    /// Bytes this entry holds, for the shard's budget.
    pub(crate) weight: usize,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An HTTP-date (any format of RFC 9110 §5.6.7) as seconds since the
/// epoch; `None` when invalid.
pub(crate) fn http_date(value: &[u8]) -> Option<u64> {
    crate::http::date::parse(value)
}

fn format_date(out: &mut BytesMut, secs: u64) {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    let _ = write!(out, "{}", httpdate::HttpDate::from(t));
}

/// Builds entries; see [`Entry::build`].
pub struct Parts<'a, I> {
    pub status: u16,
    pub reason: &'a [u8],
    /// End-to-end field lines (name, value) in order; framing fields and
    /// hop-by-hop ones already left out.
    pub fields: I,
    pub body: Bytes,
    pub request_time: u64,
    pub response_time: u64,
    /// The secondary key of the request that fetched it.
    pub secondary: Vec<u8>,
    /// The ringway-targeted field's name, lower-case (RFC 9213); empty for
    /// none.
    pub targeted: &'a [u8],
}

impl Entry {
    /// Lays out a response for storing.
    pub fn build<'a, I>(parts: Parts<'a, I>) -> Entry
    where
        I: Iterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut head = BytesMut::with_capacity(512);
        let reason = if parts.reason.is_empty() {
            write::reason(parts.status).as_bytes()
        } else {
            parts.reason
        };
        write::status_line(&mut head, parts.status, reason);
        let mut fields = Vec::with_capacity(16);
        let mut age = None;
        let mut age_invalid = false;
        let mut has_date = false;
        for (name, value) in parts.fields {
            if name.eq_ignore_ascii_case(b"age") {
                // Kept as a number: a hit sends its own Age. The first
                // value counts (RFC 9111 §5.1).
                if age.is_none() && !age_invalid {
                    match super::freshness::age_value(value) {
                        Ok(a) => age = Some(a),
                        Err(()) => age_invalid = true,
                    }
                }
                continue;
            }
            if name.eq_ignore_ascii_case(b"via") && value == VIA_HOP {
                continue;
            }
            has_date |= name.eq_ignore_ascii_case(b"date");
            push_field(&mut head, &mut fields, name, value);
        }
        if !has_date {
            let start = head.len();
            head.extend_from_slice(b"Date: ");
            format_date(&mut head, parts.response_time);
            let end = head.len();
            head.extend_from_slice(b"\r\n");
            fields.push(Field {
                name: (start as u32, start as u32 + 4),
                value: (start as u32 + 6, end as u32),
            });
        }
        push_field(&mut head, &mut fields, b"Via", VIA_HOP);
        let mut entry = Entry {
            status: parts.status,
            head: Bytes::new(),
            fields,
            body: parts.body,
            stored: Stored {
                status: parts.status,
                request_time: parts.request_time,
                response_time: parts.response_time,
                age,
                age_invalid,
                ..Stored::default()
            },
            lifetime: 0,
            vary: Vec::new(),
            vary_any: false,
            targeted_lines: false,
            secondary: parts.secondary,
            weight: 0,
        };
        let head_capacity = head.capacity();
        entry.head = head.freeze();
        entry.parse_fields(parts.targeted);
        entry.weight = head_capacity
            + entry.body.len()
            + entry.fields.capacity() * std::mem::size_of::<Field>()
            + entry.secondary.capacity()
            + entry.vary.iter().map(|v| v.capacity() + 24).sum::<usize>()
            + std::mem::size_of::<Entry>();
        entry
    }

    /// Reads what freshness and Vary need from the stored fields.
    fn parse_fields(&mut self, targeted: &[u8]) {
        let (directives, source) = directives::effective(|name| self.values(name), targeted);
        self.stored.directives = directives;
        self.stored.date = self.value(b"date").and_then(http_date);
        // A targeted field in use overrides Expires too (RFC 9213 §2.2).
        self.stored.expires = match source {
            Source::CacheControl => self.value(b"expires").map(http_date),
            Source::Targeted | Source::Cdn => None,
        };
        self.targeted_lines = self.fields.iter().any(|f| {
            let name = self.field_name(f);
            name.eq_ignore_ascii_case(directives::CDN_CACHE_CONTROL)
                || (!targeted.is_empty() && name.eq_ignore_ascii_case(targeted))
        });
        self.stored.last_modified = self.value(b"last-modified").and_then(http_date);
        let mut vary = Vec::new();
        let mut any = false;
        for v in self.values(b"vary") {
            let (names, star) = key::vary_names(v);
            vary.extend(names);
            any |= star;
        }
        self.vary = vary;
        self.vary_any = any;
        self.lifetime = self.stored.lifetime();
    }

    fn field_name(&self, f: &Field) -> &[u8] {
        &self.head[f.name.0 as usize..f.name.1 as usize]
    }

    fn field_value(&self, f: &Field) -> &[u8] {
        &self.head[f.value.0 as usize..f.value.1 as usize]
    }

    /// Every value of field `name` (lower-case), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |f| self.field_name(f).eq_ignore_ascii_case(name))
            .map(|f| self.field_value(f))
    }

    /// Every stored field line (name, value), in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(|f| (self.field_name(f), self.field_value(f)))
    }

    /// The first value of field `name`.
    pub(crate) fn value(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| self.field_name(f).eq_ignore_ascii_case(name))
            .map(|f| self.field_value(f))
    }

    pub(crate) fn validators(&self) -> Validators<'_> {
        Validators {
            etag: self.value(b"etag"),
            last_modified: self.stored.last_modified,
        }
    }

    /// Whether a conditional request to the origin can revalidate it.
    pub(crate) fn has_validators(&self) -> bool {
        self.value(b"etag").is_some() || self.value(b"last-modified").is_some()
    }

    /// The current age in seconds at `now`.
    pub(crate) fn age(&self, now: u64) -> u64 {
        self.stored.current_age(now)
    }

    /// The entry updated by a 304's fields (RFC 9111 §4.3.4), as fetched
    /// at `request_time`..`response_time`.
    pub(crate) fn refreshed<'a>(
        &'a self,
        update: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
        targeted: &'a [u8],
        request_time: u64,
        response_time: u64,
    ) -> Entry {
        // Set-Cookie in a 304 is for the client that revalidated, never
        // for the stored response every client gets.
        let update = update.filter(|(n, _)| !n.eq_ignore_ascii_case(b"set-cookie"));
        let names = update.clone().map(|(n, _)| n);
        let replaced = |name: &[u8]| names.clone().any(|n| n.eq_ignore_ascii_case(name));
        // Date and Age describe the new response only; the old ones go.
        let kept = self.fields.iter().filter_map(|f| {
            let name = self.field_name(f);
            let old = replaced(name)
                || name.eq_ignore_ascii_case(b"date")
                || name.eq_ignore_ascii_case(b"age");
            (!old).then(|| (name, self.field_value(f)))
        });
        let reason_end = self.head.iter().position(|&b| b == b'\r').unwrap_or(0);
        let reason = self.head.get(13..reason_end).unwrap_or(b"");
        let secondary = self.secondary.clone();
        Entry::build(Parts {
            status: self.status,
            reason,
            fields: kept.chain(update),
            body: self.body.clone(),
            request_time,
            response_time,
            secondary,
            targeted,
        })
    }

    /// The stored body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Writes the stored head (status line and field lines) for a client:
    /// as stored, or without `CDN-Cache-Control` and the field named
    /// `targeted` unless `forward` (RFC 9213: they direct this cache).
    pub fn write_head(&self, out: &mut BytesMut, forward: bool, targeted: &[u8]) {
        if forward || !self.targeted_lines {
            out.extend_from_slice(&self.head);
            return;
        }
        let status_end = self
            .fields
            .first()
            .map_or(self.head.len(), |f| f.name.0 as usize);
        out.extend_from_slice(&self.head[..status_end]);
        for f in &self.fields {
            let name = self.field_name(f);
            if name.eq_ignore_ascii_case(directives::CDN_CACHE_CONTROL)
                || (!targeted.is_empty() && name.eq_ignore_ascii_case(targeted))
            {
                continue;
            }
            out.extend_from_slice(&self.head[f.name.0 as usize..f.value.1 as usize + 2]);
        }
    }

    /// Writes the field lines a 304 to a client repeats.
    pub(crate) fn write_not_modified_fields(&self, out: &mut BytesMut) {
        for f in &self.fields {
            let name = self.field_name(f);
            if is_not_modified_field(name) || name.eq_ignore_ascii_case(b"via") {
                write::header(out, name, self.field_value(f));
            }
        }
    }
}

/// Is `name` one of the fields a 304 to a client repeats?
pub(crate) fn is_not_modified_field(name: &[u8]) -> bool {
    NOT_MODIFIED_FIELDS
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

fn push_field(head: &mut BytesMut, fields: &mut Vec<Field>, name: &[u8], value: &[u8]) {
    let start = head.len() as u32;
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    let value_start = head.len() as u32;
    head.extend_from_slice(value);
    let end = head.len() as u32;
    head.extend_from_slice(b"\r\n");
    fields.push(Field {
        name: (start, start + name.len() as u32),
        value: (value_start, end),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry::build(Parts {
            status: 200,
            reason: b"OK",
            fields: fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            body: Bytes::from_static(b"hello"),
            request_time: T,
            response_time: T,
            secondary: Vec::new(),
            targeted: b"ringway-cache-control",
        })
    }

    #[test]
    fn layout_and_freshness() {
        let d = date(T - 10);
        let e = entry(&[
            ("Content-Type", "text/plain"),
            ("Cache-Control", "max-age=60"),
            ("Age", "5"),
            ("Date", &d),
            ("ETag", "\"v1\""),
            ("Vary", "Accept-Encoding, X-Tenant"),
        ]);
        let head = std::str::from_utf8(&e.head).expect("ascii");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"));
        assert!(!head.contains("Age:"), "{head}");
        assert!(head.ends_with("Via: 1.1 ringway\r\n"), "{head}");
        assert_eq!(e.lifetime, 60);
        // Age 5 plus 10 s between Date and arrival.
        assert_eq!(e.age(T), 10);
        assert_eq!(e.age(T + 7), 17);
        assert_eq!(
            e.vary,
            vec![b"accept-encoding".to_vec(), b"x-tenant".to_vec()]
        );
        assert_eq!(e.validators().etag, Some(&b"\"v1\""[..]));
        assert!(e.weight > e.head.len() + 5);
    }

    #[test]
    fn age_uses_the_first_value_rfc9111_5_1() {
        let d = date(T);
        let e = entry(&[
            ("Cache-Control", "max-age=60"),
            ("Date", &d),
            ("Age", "5, 30"),
        ]);
        assert_eq!((e.age(T), e.lifetime), (5, 60));
        let e = entry(&[
            ("Cache-Control", "max-age=60"),
            ("Date", &d),
            ("Age", "7"),
            ("Age", "40"),
        ]);
        assert_eq!(e.age(T), 7);
        // An invalid first value: stale at once.
        let e = entry(&[
            ("Cache-Control", "max-age=60"),
            ("Date", &d),
            ("Age", "x, 5"),
        ]);
        assert_eq!(e.lifetime, 0);
    }

    #[test]
    fn targeted_fields_override_and_are_left_out_for_clients_rfc9213() {
        let e = entry(&[
            ("Cache-Control", "no-store"),
            ("Expires", "0"),
            ("CDN-Cache-Control", "max-age=30"),
            ("Ringway-Cache-Control", "max-age=90"),
            ("X-Keep", "1"),
        ]);
        assert_eq!(e.lifetime, 90);
        assert!(!e.stored.directives.no_store);
        let mut out = BytesMut::new();
        e.write_head(&mut out, false, b"ringway-cache-control");
        let head = std::str::from_utf8(&out).expect("ascii");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n"));
        assert!(head.contains("X-Keep: 1\r\n") && head.ends_with("Via: 1.1 ringway\r\n"));
        assert!(!head.contains("CDN-Cache-Control") && !head.contains("Ringway-"));
        out.clear();
        e.write_head(&mut out, true, b"ringway-cache-control");
        assert_eq!(&out[..], &e.head[..]);
    }

    #[test]
    fn a_missing_date_is_added() {
        let e = entry(&[("Cache-Control", "max-age=60")]);
        assert_eq!(e.stored.date, Some(T));
        assert!(std::str::from_utf8(&e.head)
            .expect("ascii")
            .contains(&format!("Date: {}\r\n", date(T))));
    }

    #[test]
    fn a_304_replaces_the_fields_it_carries() {
        let e = entry(&[
            ("Cache-Control", "max-age=60"),
            ("X-Version", "1"),
            ("X-Keep", "yes"),
            ("Date", &date(T)),
            ("ETag", "\"v1\""),
        ]);
        let d = date(T + 100);
        let update = [
            (&b"Cache-Control"[..], &b"max-age=120"[..]),
            (b"X-Version", b"2"),
            (b"Date", d.as_bytes()),
        ];
        let r = e.refreshed(update.iter().copied(), b"", T + 100, T + 100);
        let head = std::str::from_utf8(&r.head).expect("ascii");
        assert!(head.contains("X-Keep: yes\r\n"));
        assert!(head.contains("X-Version: 2\r\n") && !head.contains("X-Version: 1"));
        assert!(head.contains("ETag: \"v1\"\r\n"));
        assert_eq!(head.matches("Date:").count(), 1, "{head}");
        assert_eq!(head.matches("Via:").count(), 1, "{head}");
        assert_eq!(r.lifetime, 120);
        assert_eq!(r.age(T + 100), 0);
        assert_eq!(&r.body[..], b"hello");
        let mut out = BytesMut::new();
        r.write_not_modified_fields(&mut out);
        let nm = std::str::from_utf8(&out).expect("ascii");
        assert!(nm.contains("ETag") && nm.contains("Cache-Control") && !nm.contains("X-Keep"));
    }
}
