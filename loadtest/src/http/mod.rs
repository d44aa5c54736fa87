//! The client side of HTTP/1.1 (RFC 9112): finding where each response
//! ends on a keep-alive connection.
//!
//! A load generator never looks at the body, but it must know exactly
//! where a response ends or the next one is misread. So the framing is
//! decoded in full — interim 1xx responses, `Content-Length`, chunked
//! bodies with extensions and trailers, close-delimited bodies, HEAD —
//! while the body bytes themselves are skipped without copying. Anything
//! that violates the grammar is reported as malformed: a server that sends
//! invalid HTTP under load is a finding, not noise to retry.
//!
//! The parsers here are synchronous state machines over byte slices, so
//! they are tested table-driven with every possible split of the input;
//! [`crate::run`] owns the sockets.

pub mod chunked;
pub mod response;

pub use response::{Malformed, Progress, ResponseParser};
