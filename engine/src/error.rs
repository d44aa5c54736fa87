//! The engine's one error type: what went wrong, on which side, and whether
//! the request may be retried.
//!
//! Every failure on the request path maps to exactly one status code, so the
//! connection loop never has to guess what to answer. Context is a
//! `&'static str`: building an error allocates nothing, which matters when a
//! flood of malformed requests is the workload.

use std::fmt;
use std::io;

/// What failed, which also decides the status code sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Malformed request: 400, connection closed.
    BadRequest,
    /// The client took too long to send its head: 408.
    HeadTimeout,
    /// Request body over the route's limit: 413.
    BodyTooLarge,
    /// Request target over the limit: 414.
    TargetTooLong,
    /// Head bytes or header count over the limit: 431.
    HeadTooLarge,
    /// A transfer coding we do not implement: 501.
    NotImplemented,
    /// Upstream refused, reset, or sent something that is not HTTP: 502.
    BadGateway,
    /// No upstream could take the request: 503.
    Unavailable,
    /// Upstream connect or response-head timeout: 504.
    GatewayTimeout,
    /// The client went away or broke the connection; nothing to answer.
    ClientGone,
}

/// Which peer the failure is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Downstream,
    Upstream,
    Internal,
}

/// An error on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub side: Side,
    /// True when nothing irrevocable happened yet, so the request may be
    /// sent again on a fresh upstream connection.
    pub retryable: bool,
    pub context: &'static str,
}

impl Error {
    pub const fn new(kind: Kind, side: Side, context: &'static str) -> Self {
        Error {
            kind,
            side,
            retryable: false,
            context,
        }
    }

    pub const fn bad_request(context: &'static str) -> Self {
        Error::new(Kind::BadRequest, Side::Downstream, context)
    }

    pub const fn bad_gateway(context: &'static str) -> Self {
        Error::new(Kind::BadGateway, Side::Upstream, context)
    }

    pub const fn client_gone(context: &'static str) -> Self {
        Error::new(Kind::ClientGone, Side::Downstream, context)
    }

    pub const fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Status code answered to the client; `None` when there is nobody to
    /// answer.
    pub const fn status(&self) -> Option<u16> {
        Some(match self.kind {
            Kind::BadRequest => 400,
            Kind::HeadTimeout => 408,
            Kind::BodyTooLarge => 413,
            Kind::TargetTooLong => 414,
            Kind::HeadTooLarge => 431,
            Kind::NotImplemented => 501,
            Kind::BadGateway => 502,
            Kind::Unavailable => 503,
            Kind::GatewayTimeout => 504,
            Kind::ClientGone => return None,
        })
    }

    /// Maps an upstream I/O error.
    pub fn upstream_io(err: &io::Error, context: &'static str) -> Self {
        match err.kind() {
            io::ErrorKind::TimedOut => Error::new(Kind::GatewayTimeout, Side::Upstream, context),
            _ => Error::bad_gateway(context),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?}): {}", self.kind, self.side, self.context)
    }
}

impl std::error::Error for Error {}
