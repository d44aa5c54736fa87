//! `X-Request-Id`: the ID every request carries upstream and on every
//! answer the gateway gives, so a client's report, the gateway's log and
//! the origin's log meet on one value.
//!
//! This module owns the value's syntax. A client's ID is kept (only on a
//! listener with `trust-request-id`) when it is 1 to 128 visible ASCII
//! characters (`!` to `~`) without a comma and sent in one field: it is
//! echoed into headers and log lines, where a comma would make it a list
//! and a space or control byte could split a log record. Anything else is
//! replaced.
//!
//! A generated ID is 32 lowercase hex digits (128 bits, no dashes; the
//! same alphabet as a W3C trace id, so log tooling handles both alike):
//!
//! - the first 16 digits: a 64-bit prefix drawn from the OS at process
//!   start, so two runs of the gateway (or two gateways) differ with
//!   overwhelming probability (one in 2^64 per pair of runs);
//! - the last 16: a keyed permutation of the worker id (16 bits) and that
//!   worker's request counter (48 bits: 2.8·10^14 requests, nine years at
//!   a million a second, before it wraps). A permutation keeps distinct
//!   inputs distinct, so no two requests of one run share an ID; the key
//!   keeps the IDs from reading as a count of the gateway's traffic. It is
//!   not a cipher: it hides the count from a glance, not from analysis.
//!
//! Making one is a counter increment, four multiplies and 16 table
//! lookups, with no lock and no allocation. The ID is held inline
//! ([`RequestId`], 129 bytes), so the request context needs no heap.

use crate::http::head::{Class, RequestHead};
use crate::http::text::{hex_lower, trim};

/// Longest client ID kept.
pub(crate) const MAX_LEN: usize = 128;

/// Counter bits of a generated ID; the worker id takes the 16 above them.
const COUNTER_BITS: u32 = 48;

/// One request's ID, inline.
#[derive(Clone, Copy)]
pub(crate) struct RequestId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl RequestId {
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The client's ID when it may be kept: one `X-Request-Id` field whose
    /// value (without optional whitespace) is 1 to [`MAX_LEN`] visible
    /// ASCII characters and no comma. Two fields are ambiguous: replaced.
    pub(crate) fn of_head(head: &RequestHead) -> Option<RequestId> {
        let mut fields = head.headers.iter().filter(|h| h.class == Class::XRequestId);
        let value = head.bytes(fields.next()?.value);
        if fields.next().is_some() {
            return None;
        }
        RequestId::from_client(value)
    }

    /// `value` as an ID, if it is one a client may choose.
    pub(crate) fn from_client(value: &[u8]) -> Option<RequestId> {
        let value = trim(value);
        let valid = (1..=MAX_LEN).contains(&value.len())
            && value.iter().all(|&b| matches!(b, b'!'..=b'~') && b != b',');
        if !valid {
            return None;
        }
        let mut id = RequestId {
            len: value.len() as u8,
            bytes: [0; MAX_LEN],
        };
        id.bytes[..value.len()].copy_from_slice(value);
        Some(id)
    }

    /// A generated ID (the layout is in the module header).
    pub(crate) fn generated(keys: &IdKeys, worker: u16, counter: u64) -> RequestId {
        let counter = counter & ((1 << COUNTER_BITS) - 1);
        let low = keys.permute(u64::from(worker) << COUNTER_BITS | counter);
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&keys.prefix.to_be_bytes());
        raw[8..].copy_from_slice(&low.to_be_bytes());
        let mut id = RequestId {
            len: 32,
            bytes: [0; MAX_LEN],
        };
        hex_lower(&raw, &mut id.bytes[..32]);
        id
    }
}

/// The per-process random values generated IDs are made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdKeys {
    prefix: u64,
    keys: [u64; 2],
}

impl IdKeys {
    pub(crate) fn new(random: [u64; 3]) -> IdKeys {
        IdKeys {
            prefix: random[0],
            keys: [random[1], random[2]],
        }
    }

    /// A bijection of `u64` (each step is: xor with a constant, xor with
    /// a right shift of itself, multiplication by an odd number), keyed
    /// twice so that undoing the last steps does not expose the input.
    fn permute(&self, x: u64) -> u64 {
        fn fmix(mut x: u64) -> u64 {
            x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            x ^ (x >> 33)
        }
        fmix(fmix(x ^ self.keys[0]) ^ self.keys[1])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bytes::BytesMut;

    use super::*;

    #[test]
    fn client_ids_are_kept_only_when_safe_to_echo() {
        let long = "a".repeat(MAX_LEN);
        let too_long = "a".repeat(MAX_LEN + 1);
        for (value, kept) in [
            ("abc-123", Some("abc-123")),
            (
                "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
                Some("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
            ),
            ("  padded\t", Some("padded")),
            ("!~:;/=+@", Some("!~:;/=+@")),
            (long.as_str(), Some(long.as_str())),
            (too_long.as_str(), None),
            ("", None),
            ("   ", None),
            ("two words", None),
            ("a,b", None),
            ("tab\there", None),
            ("caf\u{e9}", None),
            ("nul\0", None),
            ("del\x7f", None),
        ] {
            let got = RequestId::from_client(value.as_bytes());
            assert_eq!(
                got.as_ref().map(RequestId::as_bytes),
                kept.map(str::as_bytes),
                "{value:?}"
            );
        }
    }

    fn head(fields: &str) -> RequestHead {
        let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").as_str());
        let limits = crate::http::head::HeadLimits {
            max_head: 8192,
            max_headers: 32,
            max_target: 1024,
            slashes: ringway_config::EncodedSlashes::Reject,
            underscores: ringway_config::UnderscoresInHeaders::Drop,
        };
        crate::http::parse::parse_request(&mut buf, limits, &mut Vec::new())
            .expect("valid")
            .expect("complete")
    }

    #[test]
    fn one_field_is_read_whatever_its_case_and_two_are_refused() {
        let of = |fields: &str| RequestId::of_head(&head(fields)).map(|id| id.as_bytes().to_vec());
        assert_eq!(of("X-Request-Id: abc\r\n"), Some(b"abc".to_vec()));
        assert_eq!(of("x-request-id: abc\r\n"), Some(b"abc".to_vec()));
        assert_eq!(of("X-REQUEST-ID: abc\r\n"), Some(b"abc".to_vec()));
        assert_eq!(of(""), None);
        assert_eq!(of("X-Request-Id: a\r\nX-Request-Id: b\r\n"), None);
        assert_eq!(of("X-Request-Ids: abc\r\n"), None);
    }

    #[test]
    fn generated_ids_are_32_hex_digits_with_the_process_prefix() {
        let keys = IdKeys::new([0x0123_4567_89ab_cdef, 7, 11]);
        let id = RequestId::generated(&keys, 3, 42);
        let text = std::str::from_utf8(id.as_bytes()).expect("ascii");
        assert_eq!(text.len(), 32);
        assert!(text.starts_with("0123456789abcdef"), "{text}");
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        // Valid as a client ID too: a trusting gateway further on keeps it.
        assert!(RequestId::from_client(id.as_bytes()).is_some());
    }

    #[test]
    fn generated_ids_differ_across_workers_counters_and_runs() {
        let keys = IdKeys::new([1, 2, 3]);
        let mut seen = HashSet::new();
        for worker in 0..8u16 {
            for counter in 0..2_000u64 {
                let id = RequestId::generated(&keys, worker, counter);
                assert!(seen.insert(id.as_bytes().to_vec()), "{worker} {counter}");
            }
        }
        // Consecutive counters do not read as consecutive numbers.
        let a = RequestId::generated(&keys, 0, 1);
        let b = RequestId::generated(&keys, 0, 2);
        assert_ne!(a.as_bytes()[16..30], b.as_bytes()[16..30]);
        // Another run (another prefix) never repeats this one's IDs.
        let other = IdKeys::new([4, 2, 3]);
        let c = RequestId::generated(&other, 0, 1);
        assert_ne!(a.as_bytes(), c.as_bytes());
        assert_eq!(a.as_bytes()[16..], c.as_bytes()[16..]);
    }
}
