//! Per-worker counters, read by other threads when scraped.
//!
//! Each counter has exactly one writer (its worker), so an increment is a
//! relaxed load and store — a plain `mov` on x86 — rather than a locked
//! read-modify-write. Readers sum the workers' values; a reading may be a
//! moment old, never torn.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) mod ai;
pub(crate) mod histogram;
pub(crate) mod labeled;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// One worker's counters.
        #[derive(Debug, Default)]
        pub(crate) struct WorkerStats {
            $($(#[$doc])* pub $name: Counter,)*
        }

        /// Counters summed over workers.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct Totals {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Totals {
            pub(crate) fn add(&mut self, w: &WorkerStats) {
                $(self.$name += w.$name.get();)*
            }
        }
    };
}

counters! {
    /// Client connections accepted.
    connections_accepted,
    /// Client connections open now (gauge).
    connections_open,
    /// Requests whose head parsed and were routed or rejected.
    requests,
    /// Responses by status class.
    responses_1xx, responses_2xx, responses_3xx, responses_4xx, responses_5xx,
    /// Rejections of malformed or over-limit requests, by status.
    rejected_400, rejected_404, rejected_405, rejected_408, rejected_413,
    rejected_414, rejected_431, rejected_501,
    /// Requests refused by a policy: no or bad credentials (401), IP rule
    /// or group (403), rate limit or a concurrency limit set to 429 (429),
    /// a concurrency limit set to 503 (503).
    refused_401, refused_403, refused_429, refused_503,
    /// Upstream failures, by the status they produced (also when the
    /// answer had started: a body cut off is counted as 502 or 504).
    upstream_502, upstream_503, upstream_504,
    /// Requests refused because an upstream server was at its
    /// `max-connections` (each also counted in upstream_503).
    upstream_connection_limit,
    /// Failures of the gateway itself (a full or slow password-check
    /// queue, say), whatever status they produced.
    internal_errors,
    /// Client connections closed at once because the gateway held
    /// `max-connections` already.
    connections_refused,
    /// New upstream connections opened.
    upstream_connects,
    /// Requests sent on a pooled upstream connection.
    upstream_reuses,
    /// Tries sent again as `[routes.retry]` allows (each by reason on
    /// the server that failed, in its labeled counters).
    upstream_retries,
    /// Retries not made because the retry budget was spent.
    upstream_retry_budget_exhausted,
    /// Requests resent on a fresh connection after a pooled one turned
    /// out closed by the upstream.
    upstream_stale_resends,
    /// Requests whose upstream answered before their whole body was sent
    /// (the upload stopped there), and forwarded `Expect: 100-continue`
    /// the upstream did not answer in time (the gateway sent its own 100).
    upstream_early_answers, upstream_expect_timeouts,
    /// Requests answered 503 because their upstream had no server to
    /// offer (none resolved, or none available and no fail-open).
    upstream_no_server,
    /// Requests that waited in an upstream's queue for a connection, and
    /// those of them that gave up at `queue-timeout` (503).
    upstream_queued, upstream_queue_timeouts,
    /// TLS handshakes with upstream servers that failed (a certificate that
    /// did not verify, say); each answered 502.
    upstream_tls_failures,
    /// CORS: preflights the gateway answered 204, and requests from an
    /// origin (or preflights for a method) a route's `[routes.cors]` does
    /// not allow (answered without CORS headers; a preflight gets 403).
    cors_preflights, cors_refused,
    /// Panics caught while serving a connection.
    panics,
    /// Accept errors (e.g. out of file descriptors).
    accept_errors,
    /// Cache: answered from a fresh stored response.
    cache_hits,
    /// Cache: nothing usable stored; fetched from the origin.
    cache_misses,
    /// Cache: answered with a stale response (max-stale,
    /// stale-while-revalidate, stale-if-error).
    cache_stale,
    /// Cache: stored responses refreshed by a 304 from the origin.
    cache_revalidated,
    /// Cache: responses stored.
    cache_stored,
    /// Cache: requests that waited for another's fetch of the same key.
    cache_collapsed,
    /// Cache: requests forwarded past the cache, by reason: an unsafe
    /// method, a Range request, a GET or HEAD with a body.
    cache_bypass_method, cache_bypass_range, cache_bypass_body,
    /// Cache: invalidations after unsafe requests.
    cache_invalidations,
    /// Cache: background revalidations started.
    cache_background,
    /// Cache: entries and bytes held now (gauges), and entries evicted to
    /// keep within the budget, filled into the totals from the cache all
    /// workers share; no worker sets them.
    cache_entries, cache_bytes, cache_evictions,
    /// Responses compressed (`[routes.compression]`), by coding.
    compressed_gzip, compressed_br, compressed_zstd,
    /// Access-log records dropped because the worker's queue to the log
    /// writer was full.
    access_log_dropped,
    /// TLS handshakes completed, and how many of them resumed a session.
    tls_handshakes, tls_resumed,
    /// TLS handshakes completed, by the version agreed.
    tls_handshakes_v12, tls_handshakes_v13,
    /// TLS handshakes failed, by reason: timed out, closed by the client,
    /// unknown SNI (rejected), client certificate missing or bad, nothing
    /// in common (versions, suites, ALPN), our certificate refused by the
    /// client, other protocol errors.
    tls_failed_timeout, tls_failed_closed, tls_failed_unknown_sni,
    tls_failed_client_cert, tls_failed_incompatible, tls_failed_rejected,
    tls_failed_protocol,
    /// Tunnels opened after a 101 Switching Protocols, and open now (gauge).
    tunnels_opened, tunnels_open,
    /// Upgrade requests refused because their route had `max-tunnels`
    /// open (each answered 503).
    tunnels_refused,
    /// Tunnels closed by `tunnel-idle-timeout`, and by the end of a drain.
    tunnels_idle_closed, tunnels_drain_closed,
    /// Bytes carried by tunnels: client to upstream, upstream to client.
    tunnel_bytes_up, tunnel_bytes_down,
    /// Fields removed on the way through: request header fields whose
    /// name holds `_` (`underscores-in-headers`), and trailer fields that
    /// may not be trailers (RFC 9110 §6.5.1), in either direction.
    headers_dropped_underscore, headers_dropped_trailer,
}

/// Why a handshake failed, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// Not finished within `handshake-timeout`.
    Timeout,
    /// The client closed or reset the connection.
    Closed,
    /// No certificate for the SNI (the listener rejects unknown names).
    UnknownSni,
    /// The client's certificate was missing or did not verify.
    ClientCert,
    /// No protocol version, cipher suite or ALPN protocol in common.
    Incompatible,
    /// The client refused our certificate (unknown CA, expired, bad name):
    /// usually a certificate chain to fix.
    Rejected,
    /// Anything else the client got wrong.
    Protocol,
}

/// A single-writer counter.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub(crate) fn dec(&self) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(1), Relaxed);
    }

    /// Sets a gauge.
    #[inline]
    pub(crate) fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

impl WorkerStats {
    /// Counts a failed TLS handshake by reason.
    pub(crate) fn tls_failure(&self, why: HandshakeFailure) {
        use HandshakeFailure as F;
        match why {
            F::Timeout => self.tls_failed_timeout.inc(),
            F::Closed => self.tls_failed_closed.inc(),
            F::UnknownSni => self.tls_failed_unknown_sni.inc(),
            F::ClientCert => self.tls_failed_client_cert.inc(),
            F::Incompatible => self.tls_failed_incompatible.inc(),
            F::Rejected => self.tls_failed_rejected.inc(),
            F::Protocol => self.tls_failed_protocol.inc(),
        }
    }

    /// Counts a response by class.
    pub(crate) fn response(&self, status: u16) {
        match status {
            100..=199 => self.responses_1xx.inc(),
            200..=299 => self.responses_2xx.inc(),
            300..=399 => self.responses_3xx.inc(),
            400..=499 => self.responses_4xx.inc(),
            _ => self.responses_5xx.inc(),
        }
    }
}
