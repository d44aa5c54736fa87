//! W3C Trace Context (https://www.w3.org/TR/trace-context/): reading a
//! client's `traceparent` and writing the one sent upstream.
//!
//! The gateway is a hop of the trace: a valid parent is continued with the
//! same trace id and a new span id for this hop (§3.4, "update
//! parent-id");
//! a missing or invalid one starts a new trace. `tracestate` is opaque to
//! us: passed on unchanged when the parent was valid, dropped otherwise
//! (§3.3: it is not read without a valid traceparent; §3.4: a restart
//! SHOULD clean it up).
//!
//! Parsing follows §3.2: lowercase hex only; version `ff` is invalid;
//! version `00` is exactly 55 characters; a higher version is read by the
//! 00 layout when it is at least 55 characters long and its flags end the
//! value or are followed by `-` (what follows is not ours to read), and is
//! sent on as version 00 (§3.4, "downgrade the version"). Trace and parent ids of all
//! zeros are invalid. A request with two `traceparent` fields is treated
//! as having none (the field is not a list; which one to follow would be a
//! guess).
//!
//! Flags: the sampled bit (and Level 2's random-trace-id bit, which stays
//! true as the trace id is kept) are passed on as received; the bits the
//! spec reserves are cleared, as §3.2.2.5 requires. A trace started here is
//! sampled (`01`): the gateway makes no sampling decision of its own and
//! leaves recording to the services behind it, as Envoy does with its
//! default 100% sampling.
//!
//! Everything here is fixed-size arrays: no allocation. The random ids
//! come from the worker (`worker::ids`).

use crate::http::head::{Class, RequestHead};
use crate::http::text::{hex_lower, trim};

/// `trace-flags` bit: the caller may have recorded the trace.
pub(crate) const SAMPLED: u8 = 0x01;
/// Trace Context Level 2: the trace id is random.
const RANDOM_TRACE_ID: u8 = 0x02;
/// The flags passed on; the others are reserved and cleared.
const KNOWN_FLAGS: u8 = SAMPLED | RANDOM_TRACE_ID;

/// Length of a version-00 `traceparent`: `vv-` + 32 + `-` + 16 + `-ff`.
pub(crate) const TRACEPARENT_LEN: usize = 55;

/// A valid `traceparent` a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parent {
    pub(crate) trace_id: [u8; 16],
    pub(crate) parent_id: [u8; 8],
    pub(crate) flags: u8,
}

/// The parent in `head`'s one `traceparent` field, if it is valid.
pub(crate) fn parent_of(head: &RequestHead) -> Option<Parent> {
    let mut fields = head
        .headers
        .iter()
        .filter(|h| h.class == Class::Traceparent);
    let value = head.bytes(fields.next()?.value);
    if fields.next().is_some() {
        return None;
    }
    parse(value)
}

/// Parses a `traceparent` value (§3.2, versioning rules of §3.2.4).
pub(crate) fn parse(value: &[u8]) -> Option<Parent> {
    let v = trim(value);
    if v.len() < TRACEPARENT_LEN {
        return None;
    }
    let [version] = unhex::<1>(&v[0..2])?;
    if version == 0xff || (version == 0 && v.len() != TRACEPARENT_LEN) {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    // A later version may add fields after the flags, each after a dash.
    if v.len() > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != b'-' {
        return None;
    }
    let trace_id = unhex::<16>(&v[3..35])?;
    let parent_id = unhex::<8>(&v[36..52])?;
    let [flags] = unhex::<1>(&v[53..55])?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        parent_id,
        flags,
    })
}

/// `N` bytes from exactly `2N` lowercase hex digits.
fn unhex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    fn nibble(d: u8) -> Option<u8> {
        match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        }
    }
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// This request's place in a trace: what goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trace {
    trace_id: [u8; 16],
    /// Our hop's span, the parent-id the upstream sees.
    span_id: [u8; 8],
    flags: u8,
    /// The client's parent was valid: its tracestate goes on.
    continued: bool,
}

impl Trace {
    /// Continues the client's trace with our span `span_id` (not zero).
    pub(crate) fn continued(parent: Parent, span_id: [u8; 8]) -> Trace {
        Trace {
            trace_id: parent.trace_id,
            span_id,
            flags: parent.flags & KNOWN_FLAGS,
            continued: true,
        }
    }

    /// Starts a new, sampled trace (ids not zero).
    pub(crate) fn started(trace_id: [u8; 16], span_id: [u8; 8]) -> Trace {
        Trace {
            trace_id,
            span_id,
            flags: SAMPLED,
            continued: false,
        }
    }

    /// The client's traceparent was valid (and its tracestate is passed
    /// on).
    pub(crate) fn is_continued(&self) -> bool {
        self.continued
    }

    pub(crate) fn trace_id_hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex_lower(&self.trace_id, &mut out);
        out
    }

    pub(crate) fn span_id_hex(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        hex_lower(&self.span_id, &mut out);
        out
    }

    /// The `traceparent` value sent upstream (version 00).
    pub(crate) fn traceparent(&self) -> [u8; TRACEPARENT_LEN] {
        let mut out = [b'-'; TRACEPARENT_LEN];
        out[0..2].copy_from_slice(b"00");
        hex_lower(&self.trace_id, &mut out[3..35]);
        hex_lower(&self.span_id, &mut out[36..52]);
        hex_lower(&[self.flags], &mut out[53..55]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn bytes<const N: usize>(hex: &str) -> [u8; N] {
        unhex::<N>(hex.as_bytes()).expect("test hex")
    }

    #[test]
    fn traceparents_are_read_by_the_spec() {
        let ok = |flags: u8| {
            Some(Parent {
                trace_id: bytes(TRACE),
                parent_id: bytes(PARENT),
                flags,
            })
        };
        let cases: &[(&str, String, Option<Parent>)] = &[
            ("sampled", format!("00-{TRACE}-{PARENT}-01"), ok(0x01)),
            ("not sampled", format!("00-{TRACE}-{PARENT}-00"), ok(0x00)),
            (
                "unknown flags read",
                format!("00-{TRACE}-{PARENT}-ff"),
                ok(0xff),
            ),
            (
                "optional whitespace",
                format!(" \t00-{TRACE}-{PARENT}-01 "),
                ok(0x01),
            ),
            (
                "uppercase trace id",
                format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
                None,
            ),
            (
                "uppercase parent id",
                format!("00-{TRACE}-00F067AA0BA902B7-01"),
                None,
            ),
            ("uppercase flags", format!("00-{TRACE}-{PARENT}-0A"), None),
            ("uppercase version", format!("0A-{TRACE}-{PARENT}-01"), None),
            (
                "zero trace id",
                format!("00-{}-{PARENT}-01", "0".repeat(32)),
                None,
            ),
            (
                "zero parent id",
                format!("00-{TRACE}-0000000000000000-01"),
                None,
            ),
            ("version ff", format!("ff-{TRACE}-{PARENT}-01"), None),
            (
                "version ff, more fields",
                format!("ff-{TRACE}-{PARENT}-01-x"),
                None,
            ),
            (
                "short trace id",
                format!("00-{}-{PARENT}-01", &TRACE[1..]),
                None,
            ),
            ("long trace id", format!("00-{TRACE}a-{PARENT}-01"), None),
            (
                "short parent id",
                format!("00-{TRACE}-{}-01", &PARENT[1..]),
                None,
            ),
            ("long parent id", format!("00-{TRACE}-{PARENT}0-01"), None),
            ("one-digit flags", format!("00-{TRACE}-{PARENT}-1"), None),
            (
                "three-digit flags",
                format!("00-{TRACE}-{PARENT}-001"),
                None,
            ),
            ("one-digit version", format!("0-{TRACE}-{PARENT}-01"), None),
            ("not hex", format!("00-{}g-{PARENT}-01", &TRACE[1..]), None),
            ("wrong separator", format!("00_{TRACE}_{PARENT}_01"), None),
            ("empty", String::new(), None),
            (
                "version 00, extra field",
                format!("00-{TRACE}-{PARENT}-01-extra"),
                None,
            ),
            (
                "version 00, trailing dash",
                format!("00-{TRACE}-{PARENT}-01-"),
                None,
            ),
            (
                "future version",
                format!("cc-{TRACE}-{PARENT}-01"),
                ok(0x01),
            ),
            (
                "future version, extra field",
                format!("cc-{TRACE}-{PARENT}-01-what-the-future"),
                ok(0x01),
            ),
            (
                "future version, flags not ended",
                format!("cc-{TRACE}-{PARENT}-01.x"),
                None,
            ),
            (
                "future version, short",
                format!("cc-{TRACE}-{PARENT}-1"),
                None,
            ),
            (
                "future version, zero trace id",
                format!("cc-{}-{PARENT}-01-x", "0".repeat(32)),
                None,
            ),
        ];
        for (case, value, want) in cases {
            assert_eq!(parse(value.as_bytes()), *want, "{case}: {value}");
        }
    }

    #[test]
    fn one_traceparent_field_is_read_and_two_are_ignored() {
        let mut buf = bytes::BytesMut::new();
        let mut of = |fields: String| {
            buf.clear();
            buf.extend_from_slice(format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").as_bytes());
            let limits = crate::http::head::HeadLimits {
                max_head: 8192,
                max_headers: 32,
                max_target: 1024,
                slashes: ringway_config::EncodedSlashes::Reject,
                underscores: ringway_config::UnderscoresInHeaders::Drop,
            };
            let head = crate::http::parse::parse_request(&mut buf, limits, &mut Vec::new())
                .expect("valid")
                .expect("complete");
            parent_of(&head).map(|p| p.flags)
        };
        let value = format!("00-{TRACE}-{PARENT}-01");
        assert_eq!(of(format!("traceparent: {value}\r\n")), Some(1));
        assert_eq!(of(format!("TraceParent: {value}\r\n")), Some(1));
        assert_eq!(of(String::new()), None);
        assert_eq!(
            of(format!("traceparent: {value}\r\ntraceparent: {value}\r\n")),
            None
        );
    }

    #[test]
    fn a_continued_trace_keeps_the_trace_id_and_known_flags_with_a_new_span() {
        let parent = Parent {
            trace_id: bytes(TRACE),
            parent_id: bytes(PARENT),
            flags: 0x01,
        };
        let span = bytes::<8>("b7ad6b7169203331");
        let t = Trace::continued(parent, span);
        assert!(t.is_continued());
        assert_eq!(&t.trace_id_hex(), TRACE.as_bytes());
        assert_eq!(&t.span_id_hex(), b"b7ad6b7169203331");
        assert_eq!(
            &t.traceparent()[..],
            format!("00-{TRACE}-b7ad6b7169203331-01").as_bytes()
        );
        // Not sampled stays not sampled; reserved bits are cleared.
        for (flags, sent) in [(0x00, "00"), (0x03, "03"), (0xff, "03"), (0x08, "00")] {
            let t = Trace::continued(Parent { flags, ..parent }, span);
            assert_eq!(&t.traceparent()[53..], sent.as_bytes(), "{flags:#x}");
        }
        // A future version is sent on as 00.
        let future = parse(format!("cc-{TRACE}-{PARENT}-01-x").as_bytes()).expect("valid");
        assert_eq!(&Trace::continued(future, span).traceparent()[..2], b"00");
    }

    #[test]
    fn a_started_trace_is_sampled_and_reads_back() {
        let t = Trace::started(bytes(TRACE), bytes(PARENT));
        assert!(!t.is_continued());
        let sent = t.traceparent();
        assert_eq!(&sent[..], format!("00-{TRACE}-{PARENT}-01").as_bytes());
        let back = parse(&sent).expect("what we send is valid");
        assert_eq!(back.trace_id, bytes(TRACE));
        assert_eq!(back.parent_id, bytes(PARENT));
        assert_eq!(back.flags, SAMPLED);
    }
}
