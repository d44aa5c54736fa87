//! One request as the access log sees it: a plain, fixed-size record a
//! worker fills in place and the writer thread reads.
//!
//! Everything is inline (text in fixed arrays, names as indexes into the
//! config the request ran on, addresses by value), so a record holds no
//! pointer into worker memory and filling one allocates nothing. Text the
//! client sent is cut at a bound per field and marked as cut; the bounds
//! (path and query 1 KiB, host, user agent, referer and SNI 256 bytes)
//! keep a record at 3.4 KiB while covering what real clients send: longer
//! values are almost always attacks or tracking blobs, which a log line
//! need not carry whole.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::error::{Kind, Side};

/// Bytes kept of a method (longer ones are extension methods).
pub(crate) const METHOD_MAX: usize = 16;
/// Bytes kept of a request's path.
pub(crate) const PATH_MAX: usize = 1024;
/// Bytes kept of a query string.
pub(crate) const QUERY_MAX: usize = 1024;
/// Bytes kept of the host, user agent, referer and TLS SNI.
pub(crate) const HEADER_MAX: usize = 256;
/// Bytes kept of a request ID.
pub(crate) const REQUEST_ID_MAX: usize = 128;

/// Text of at most `N` bytes, with whether more was cut off.
#[derive(Clone, Copy)]
pub(crate) struct Text<const N: usize> {
    len: u16,
    cut: bool,
    bytes: [u8; N],
}

impl<const N: usize> Text<N> {
    pub(crate) const EMPTY: Self = Text {
        len: 0,
        cut: false,
        bytes: [0; N],
    };

    /// Keeps the first `N` bytes of `value`.
    #[inline]
    pub(crate) fn set(&mut self, value: &[u8]) {
        let n = value.len().min(N);
        self.bytes[..n].copy_from_slice(&value[..n]);
        // `N` is at most a few KiB, so `n` fits.
        self.len = n as u16;
        self.cut = value.len() > N;
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.cut = false;
    }

    pub(crate) fn get(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The value was longer than `N` bytes.
    pub(crate) fn is_cut(&self) -> bool {
        self.cut
    }
}

/// The protocol of the request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http10,
    Http11,
}

impl Protocol {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
        }
    }
}

/// One request's log record.
#[derive(Clone, Copy)]
pub(crate) struct Record {
    /// When the request ended: milliseconds since the Unix epoch (UTC).
    pub(crate) time_ms: u64,
    /// The config generation the request ran on; the route, upstream and
    /// consumer indexes are into its config.
    pub(crate) generation: u64,
    pub(crate) request_id: Text<REQUEST_ID_MAX>,
    pub(crate) trace_id: Option<[u8; 32]>,
    /// The client: the peer, or what a trusted proxy said it was.
    pub(crate) client_ip: IpAddr,
    /// The peer's port, when the peer is the client.
    pub(crate) client_port: Option<u16>,
    /// The listener's configured address.
    pub(crate) listener: SocketAddr,
    /// `TLSv1.2`, `TLSv1.3`; `None` over plain TCP.
    pub(crate) tls_version: Option<&'static str>,
    pub(crate) tls_sni: Text<HEADER_MAX>,
    /// `None` when no request head was read (a malformed one, say): then
    /// the method, host, path and query are empty too.
    pub(crate) protocol: Option<Protocol>,
    pub(crate) method: Text<METHOD_MAX>,
    pub(crate) host: Text<HEADER_MAX>,
    /// As the client sent it (percent-encoding kept).
    pub(crate) path: Text<PATH_MAX>,
    /// A query was sent and is logged (it may be empty: `/a?`).
    pub(crate) has_query: bool,
    /// Without its `?`.
    pub(crate) query: Text<QUERY_MAX>,
    /// The status sent; 0 when none was.
    pub(crate) status: u16,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) duration: Duration,
    pub(crate) upstream_connect: Option<Duration>,
    pub(crate) upstream_head: Option<Duration>,
    pub(crate) first_byte: Option<Duration>,
    pub(crate) route: Option<u32>,
    pub(crate) upstream: Option<u32>,
    pub(crate) upstream_server: Option<SocketAddr>,
    /// Tries made at upstream servers (more than one: retries); 0 when
    /// none was.
    pub(crate) upstream_tries: u8,
    /// `hit`, `miss`, … when the route caches.
    pub(crate) cache: Option<&'static str>,
    pub(crate) consumer: Option<u32>,
    pub(crate) error: Option<(Kind, Side)>,
    pub(crate) user_agent: Text<HEADER_MAX>,
    pub(crate) referer: Text<HEADER_MAX>,
    /// What an AI route's request used.
    pub(crate) ai: Option<AiRecord>,
}

/// An AI request's model, provider, tokens and first token's time; the
/// indexes are into the generation's `ai-models` and `ai-providers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AiRecord {
    pub(crate) model: u32,
    pub(crate) provider: Option<u32>,
    pub(crate) tokens_in: u64,
    pub(crate) tokens_out: u64,
    pub(crate) tokens_cached: u64,
    pub(crate) ttft: Option<Duration>,
}

impl Record {
    pub(crate) const EMPTY: Record = Record {
        time_ms: 0,
        generation: 0,
        request_id: Text::EMPTY,
        trace_id: None,
        client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        client_port: None,
        listener: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        tls_version: None,
        tls_sni: Text::EMPTY,
        protocol: None,
        method: Text::EMPTY,
        host: Text::EMPTY,
        path: Text::EMPTY,
        has_query: false,
        query: Text::EMPTY,
        status: 0,
        bytes_in: 0,
        bytes_out: 0,
        duration: Duration::ZERO,
        upstream_connect: None,
        upstream_head: None,
        first_byte: None,
        route: None,
        upstream: None,
        upstream_server: None,
        upstream_tries: 0,
        cache: None,
        consumer: None,
        error: None,
        user_agent: Text::EMPTY,
        referer: Text::EMPTY,
        ai: None,
    };

    /// A record on the heap, for the pool of reused records.
    pub(crate) fn boxed() -> Box<Record> {
        Box::new(Record::EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_a_bounded_prefix_and_says_when_it_cut() {
        let mut t = Text::<4>::EMPTY;
        let cases: [(&[u8], &[u8], bool); 4] = [
            (b"", b"", false),
            (b"abc", b"abc", false),
            (b"abcd", b"abcd", false),
            (b"abcdef", b"abcd", true),
        ];
        for (value, kept, cut) in cases {
            t.set(value);
            assert_eq!((t.get(), t.is_cut()), (kept, cut), "{value:?}");
        }
        t.clear();
        assert_eq!((t.get(), t.is_cut()), (&b""[..], false));
    }

    #[test]
    fn a_record_stays_a_few_kib() {
        // What a queue of 8192 per worker costs at most, per record.
        let size = std::mem::size_of::<Record>();
        assert!((3_300..3_600).contains(&size), "{size}");
    }
}
