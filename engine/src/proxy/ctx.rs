//! The per-request context: what the pipeline's stages learn about one
//! request as it goes, and what the log stage reads at the end.
//!
//! One `Ctx` lives on the answering future for each request (no heap), is
//! filled in by the stages (route, consumer, upstream server, timings,
//! status, byte counts, cache outcome, error), and is read exactly once by
//! the log stage, whatever the outcome.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::http::head::{Method, Version};
use crate::proxy::filter::BodyFilter;

/// How the cache took part in a request (RFC 9211 vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Answered from a fresh stored response.
    Hit,
    /// Answered from a stale stored response (max-stale, stale-while-
    /// revalidate, stale-if-error).
    Stale,
    /// Refreshed by a 304 from the origin.
    Revalidated,
    /// Nothing usable stored: fetched from the origin.
    Miss,
    /// Not eligible (method, range, body): forwarded past the cache.
    Bypass,
}

impl CacheUse {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Stale => "stale",
            CacheUse::Revalidated => "revalidated",
            CacheUse::Miss => "miss",
            CacheUse::Bypass => "bypass",
        }
    }
}

/// Times measured while answering, each from the request's start unless
/// it says otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Connecting to the upstream server (and its TLS handshake).
    pub upstream_connect: Option<Duration>,
    /// From sending the request upstream to its response head.
    pub upstream_head: Option<Duration>,
    /// Until the first byte of the answer was written to the client.
    pub first_byte: Option<Duration>,
    /// Until the last byte of the answer was written.
    pub total: Duration,
}

/// One request's context.
pub struct Ctx {
    /// When the first byte of the request head was read.
    pub start: Instant,
    pub method: Method,
    pub version: Version,
    /// The request was HEAD: answers carry no body.
    pub head_request: bool,
    /// Index of the route that took the request.
    pub route: Option<usize>,
    /// Upstream group and server (per-worker index) it went to.
    pub upstream: Option<usize>,
    pub server: Option<usize>,
    /// The authenticated consumer (index into the config's).
    pub consumer: Option<usize>,
    /// The final status sent to the client; 0 while none was.
    pub status: u16,
    /// Request bytes consumed: head and body, as sent.
    pub bytes_in: u64,
    /// Response bytes written to the client.
    pub bytes_out: u64,
    pub cache: Option<CacheUse>,
    pub timings: Timings,
    /// What went wrong; the log stage counts it by kind and side.
    pub error: Option<Error>,
    /// What the body filter stage does to the response body.
    pub filter: BodyFilter,
}

impl Ctx {
    pub fn new(start: Instant) -> Ctx {
        Ctx {
            start,
            method: Method::Other,
            version: Version::Http11,
            head_request: false,
            route: None,
            upstream: None,
            server: None,
            consumer: None,
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            cache: None,
            timings: Timings::default(),
            error: None,
            filter: BodyFilter::None,
        }
    }

    /// Records a failure; the first one is kept (it caused the others).
    pub fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}
