//! Test hooks: ways for integration tests to reach failure paths and to
//! watch the log stage. All off by default; an unset hook costs a branch.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::error::{Kind, Side};

/// What the log stage recorded of one request, as a test hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The request's ID, as sent upstream and on its answer.
    pub request_id: String,
    /// Its W3C trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The gateway's span in that trace (the parent-id the upstream
    /// sees), 16 lowercase hex digits.
    pub span_id: String,
    /// The final status sent, 0 when nothing was sent.
    pub status: u16,
    /// The route's name, when the request was routed.
    pub route: Option<String>,
    /// Request bytes read: head and body as sent.
    pub bytes_in: u64,
    /// Response bytes written to the client: head and body.
    pub bytes_out: u64,
    /// `hit`, `miss`, `stale`, `bypass`, … when the route caches.
    pub cache: Option<&'static str>,
    /// What went wrong, if anything, and on which side.
    pub error: Option<(Kind, Side)>,
    /// From the first byte of the request to the answer's head, and to
    /// its last byte.
    pub first_byte: Option<Duration>,
    pub total: Duration,
}

type LogHook = dyn Fn(&Logged) + Send + Sync;

/// Called by the access-log writer before each pass over the queues.
pub type StallHook = dyn Fn() + Send + Sync;

/// A body filter for tests: appends the filtered form of a piece of
/// response payload to the buffer.
pub type BodyHook = dyn Fn(&[u8], &mut BytesMut) + Send + Sync;

/// Hooks for exercising failure paths from tests; all off by default.
#[derive(Default, Clone)]
pub struct Hooks {
    /// A request for exactly this path panics inside its connection task.
    pub panic_on_path: Option<String>,
    /// Called by the log stage once per request.
    pub on_log: Option<Arc<LogHook>>,
    /// Filters every response body with a body (the body filter stage).
    pub body_filter: Option<Arc<BodyHook>>,
    /// Replaces how long a request waits for its password check on the
    /// blocking pool (5 s).
    pub verify_timeout: Option<Duration>,
    /// Replaces how long an idle connection keeps its answering state
    /// (50 ms): a test of steady traffic on a loaded machine may see longer
    /// gaps between one connection's requests.
    pub busy_window: Option<Duration>,
    /// Runs on the access-log writer thread before it takes records from
    /// the queues; a test makes it block to stall the writer.
    pub log_writer_stall: Option<Arc<StallHook>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("panic_on_path", &self.panic_on_path)
            .field("on_log", &self.on_log.is_some())
            .field("body_filter", &self.body_filter.is_some())
            .field("verify_timeout", &self.verify_timeout)
            .field("busy_window", &self.busy_window)
            .field("log_writer_stall", &self.log_writer_stall.is_some())
            .finish()
    }
}
