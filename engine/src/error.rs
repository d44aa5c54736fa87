//! The engine's one error type: what went wrong, on which side, whether
//! the request may be sent again, and what caused it.
//!
//! Every failure on the request path maps to exactly one status code, so
//! the pipeline never has to guess what to answer, and policy refusals
//! (401, 403, 429, a concurrency 503) are errors like any other. Context is
//! a `&'static str` and the cause an optional `io::Error` (an OS error code
//! is stored inline): building an error allocates nothing, which matters
//! when a flood of malformed requests is the workload.

use std::fmt;
use std::io;

/// What failed, which also decides the status code sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Malformed request: 400, connection closed.
    BadRequest,
    /// Credentials missing or not valid: 401.
    Unauthorized,
    /// Refused by an IP rule, a group or a client-certificate rule: 403.
    Forbidden,
    /// No route matches: 404.
    NotFound,
    /// A route matches the path but not the method: 405.
    MethodNotAllowed,
    /// The client took too long to send its head, or stalled in its body:
    /// 408.
    Timeout,
    /// Request body over the route's limit: 413.
    BodyTooLarge,
    /// Request target over the limit: 414.
    TargetTooLong,
    /// Over a rate limit (or a concurrency limit set to 429): 429.
    TooManyRequests,
    /// Head bytes or header count over the limit: 431.
    HeadTooLarge,
    /// Something in the gateway itself failed: 500.
    Internal,
    /// A transfer coding we do not implement: 501.
    NotImplemented,
    /// Upstream refused, reset, or sent something that is not HTTP: 502.
    BadGateway,
    /// No capacity to take the request (an upstream's connection cap, a
    /// concurrency limit, a full queue): 503.
    Unavailable,
    /// Upstream connect, send or response-head timeout: 504.
    GatewayTimeout,
    /// The client went away or broke the connection; nothing to answer.
    ClientGone,
}

impl Kind {
    /// Status code answered to the client; `None` when there is nobody to
    /// answer.
    pub(crate) const fn status(self) -> Option<u16> {
        Some(match self {
            Kind::BadRequest => 400,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::Timeout => 408,
            Kind::BodyTooLarge => 413,
            Kind::TargetTooLong => 414,
            Kind::TooManyRequests => 429,
            Kind::HeadTooLarge => 431,
            Kind::Internal => 500,
            Kind::NotImplemented => 501,
            Kind::BadGateway => 502,
            Kind::Unavailable => 503,
            Kind::GatewayTimeout => 504,
            Kind::ClientGone => return None,
        })
    }

    /// The name logs use, e.g. `bad_gateway`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Kind::BadRequest => "bad_request",
            Kind::Unauthorized => "unauthorized",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not_found",
            Kind::MethodNotAllowed => "method_not_allowed",
            Kind::Timeout => "timeout",
            Kind::BodyTooLarge => "body_too_large",
            Kind::TargetTooLong => "target_too_long",
            Kind::TooManyRequests => "too_many_requests",
            Kind::HeadTooLarge => "head_too_large",
            Kind::Internal => "internal",
            Kind::NotImplemented => "not_implemented",
            Kind::BadGateway => "bad_gateway",
            Kind::Unavailable => "unavailable",
            Kind::GatewayTimeout => "gateway_timeout",
            Kind::ClientGone => "client_gone",
        }
    }
}

/// Which peer the failure is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client: a malformed or refused request, or a client gone.
    Downstream,
    /// An upstream server.
    Upstream,
    /// The gateway itself (a full queue, a failed task).
    Internal,
}

impl Side {
    /// The name logs use: `downstream`, `upstream` or `internal`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Side::Downstream => "downstream",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
        }
    }
}

/// May the request be sent again on another connection? (pingora's
/// "decided" versus "only on a reused connection".)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Something irrevocable happened (bytes of the answer reached the
    /// client, a body was consumed), or the failure would repeat.
    Never,
    /// Safe only because the connection was a reused one that the upstream
    /// had closed while it sat idle; on a fresh connection the same failure
    /// is the server's answer.
    IfReused,
}

/// An error on the request path.
#[derive(Debug)]
pub struct Error {
    pub(crate) kind: Kind,
    pub(crate) side: Side,
    pub(crate) retry: Retry,
    pub(crate) context: &'static str,
    /// The I/O error underneath, when there is one.
    pub(crate) cause: Option<io::Error>,
}

impl Error {
    pub(crate) const fn new(kind: Kind, side: Side, context: &'static str) -> Self {
        Error {
            kind,
            side,
            retry: Retry::Never,
            context,
            cause: None,
        }
    }

    /// A refusal or failure attributed to the client.
    pub(crate) const fn downstream(kind: Kind, context: &'static str) -> Self {
        Error::new(kind, Side::Downstream, context)
    }

    /// A failure attributed to an upstream server.
    pub(crate) const fn upstream(kind: Kind, context: &'static str) -> Self {
        Error::new(kind, Side::Upstream, context)
    }

    /// A failure of the gateway itself.
    pub(crate) const fn internal(kind: Kind, context: &'static str) -> Self {
        Error::new(kind, Side::Internal, context)
    }

    pub(crate) const fn bad_request(context: &'static str) -> Self {
        Error::downstream(Kind::BadRequest, context)
    }

    pub(crate) const fn bad_gateway(context: &'static str) -> Self {
        Error::upstream(Kind::BadGateway, context)
    }

    pub(crate) const fn client_gone(context: &'static str) -> Self {
        Error::downstream(Kind::ClientGone, context)
    }

    pub(crate) const fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    pub(crate) fn because(mut self, cause: io::Error) -> Self {
        self.cause = Some(cause);
        self
    }

    /// Status code answered to the client; `None` when there is nobody to
    /// answer.
    pub(crate) const fn status(&self) -> Option<u16> {
        self.kind.status()
    }

    /// May the request go again on a fresh connection, given whether the
    /// one that failed was reused?
    pub(crate) fn may_retry(&self, reused: bool) -> bool {
        match self.retry {
            Retry::Never => false,
            Retry::IfReused => reused,
        }
    }

    /// Maps an upstream I/O error: a timeout is 504, anything else 502.
    pub(crate) fn upstream_io(err: io::Error, context: &'static str) -> Self {
        let kind = match err.kind() {
            io::ErrorKind::TimedOut => Kind::GatewayTimeout,
            _ => Kind::BadGateway,
        };
        Error::upstream(kind, context).because(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?}): {}", self.kind, self.side, self.context)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| c as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_one_status() {
        let table = [
            (Kind::BadRequest, Some(400)),
            (Kind::Unauthorized, Some(401)),
            (Kind::Forbidden, Some(403)),
            (Kind::NotFound, Some(404)),
            (Kind::MethodNotAllowed, Some(405)),
            (Kind::Timeout, Some(408)),
            (Kind::BodyTooLarge, Some(413)),
            (Kind::TargetTooLong, Some(414)),
            (Kind::TooManyRequests, Some(429)),
            (Kind::HeadTooLarge, Some(431)),
            (Kind::Internal, Some(500)),
            (Kind::NotImplemented, Some(501)),
            (Kind::BadGateway, Some(502)),
            (Kind::Unavailable, Some(503)),
            (Kind::GatewayTimeout, Some(504)),
            (Kind::ClientGone, None),
        ];
        for (kind, status) in table {
            assert_eq!(kind.status(), status, "{kind:?}");
        }
    }

    #[test]
    fn retry_rules() {
        let e = Error::bad_gateway("x");
        assert!(!e.may_retry(true));
        let e = Error::bad_gateway("x").with_retry(Retry::IfReused);
        assert!(e.may_retry(true));
        assert!(!e.may_retry(false));
    }

    #[test]
    fn the_cause_is_kept_and_shown() {
        let e = Error::upstream_io(io::ErrorKind::TimedOut.into(), "upstream read");
        assert_eq!(e.kind, Kind::GatewayTimeout);
        assert_eq!(e.side, Side::Upstream);
        assert!(e.to_string().contains("upstream read"));
        assert!(std::error::Error::source(&e).is_some());
    }
}
