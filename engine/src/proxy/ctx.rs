//! The per-request context: what the pipeline's stages learn about one
//! request as it goes, and what the log stage reads at the end.
//!
//! One `Ctx` lives on the answering future for each request (no heap), is
//! made with the request's ID and trace context, filled in by the stages
//! (route, consumer, upstream server, timings, status, byte counts, cache
//! outcome, error), and is read exactly once by the log stage, whatever
//! the outcome.

use std::time::{Duration, Instant};

use crate::ai::Usage;
use crate::error::Error;
use crate::http::head::Version;
use crate::http::request_id::RequestId;
use crate::http::trace::Trace;
use crate::proxy::compress::Plan;
use crate::proxy::filter::BodyFilter;
use crate::proxy::transform::ReqView;

/// How the cache took part in a request (RFC 9211 vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheUse {
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
    pub(crate) fn as_str(self) -> &'static str {
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
/// it says otherwise, and the upstream server they were measured against.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timings {
    /// The upstream server (per-worker index) the exchange went to: the
    /// last attempt's, also when it failed.
    pub(crate) server: Option<usize>,
    /// Tries made at upstream servers (more than one: retries).
    pub(crate) tries: u8,
    /// Connecting to the upstream server (and its TLS handshake).
    pub(crate) upstream_connect: Option<Duration>,
    /// From sending the request upstream to its response head.
    pub(crate) upstream_head: Option<Duration>,
    /// Until the first byte of the answer was written to the client.
    pub(crate) first_byte: Option<Duration>,
    /// Until the last byte of the answer was written.
    pub(crate) total: Duration,
}

/// What an AI route's request used: the model asked for, the provider
/// that answered (or was tried last), tokens and the first token's time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AiUse {
    /// Index into the config's `ai-models`.
    pub(crate) model: u32,
    /// Index into the config's `ai-providers`.
    pub(crate) provider: Option<u32>,
    pub(crate) usage: Usage,
    /// From the request's start to the first token sent.
    pub(crate) ttft: Option<Duration>,
    /// A provider answered (its tokens are counted).
    pub(crate) answered: bool,
}

/// One request's context.
pub(crate) struct Ctx {
    /// When the first byte of the request head was read.
    pub(crate) start: Instant,
    /// Sent upstream as X-Request-Id and on every answer.
    pub(crate) request_id: RequestId,
    /// The request's place in a W3C trace: the traceparent sent upstream.
    pub(crate) trace: Trace,
    pub(crate) version: Version,
    /// The request was HEAD: answers carry no body.
    pub(crate) head_request: bool,
    /// The method, as an index into the metrics' method names.
    pub(crate) method: u8,
    /// Index of the route that took the request.
    pub(crate) route: Option<usize>,
    /// Upstream group it went to (the server is in `timings`).
    pub(crate) upstream: Option<usize>,
    /// The authenticated consumer (index into the config's).
    pub(crate) consumer: Option<usize>,
    /// The final status sent to the client; 0 while none was.
    pub(crate) status: u16,
    /// Request bytes consumed: head and body, as sent.
    pub(crate) bytes_in: u64,
    /// Response bytes written to the client.
    pub(crate) bytes_out: u64,
    pub(crate) cache: Option<CacheUse>,
    pub(crate) timings: Timings,
    /// What went wrong; the log stage counts it by kind and side.
    pub(crate) error: Option<Error>,
    /// What the body filter stage does to the response body.
    pub(crate) filter: BodyFilter,
    /// What the route's compression decided for this request.
    pub(crate) compress: Plan,
    /// Set by the AI handler.
    pub(crate) ai: Option<AiUse>,
    /// What values with variables need of the request: kept on routes
    /// (and listeners) with transforms only.
    pub(crate) req: Option<ReqView>,
}

impl Ctx {
    pub(crate) fn new(start: Instant, request_id: RequestId, trace: Trace) -> Ctx {
        Ctx {
            start,
            request_id,
            trace,
            version: Version::Http11,
            head_request: false,
            method: 0,
            route: None,
            upstream: None,
            consumer: None,
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            cache: None,
            timings: Timings::default(),
            error: None,
            filter: BodyFilter::None,
            compress: Plan::Off,
            ai: None,
            req: None,
        }
    }

    /// Records a failure; the first one is kept (it caused the others).
    pub(crate) fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}
