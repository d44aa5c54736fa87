//! The per-worker context: what every connection on one worker shares.
//!
//! A worker is one pinned thread with its own monoio runtime (started by
//! `runtime::thread`). Its [`Worker`] holds the buffer pool, counters,
//! deadlines, the current config [`Generation`] and the links to the
//! other workers; connections keep an `Rc` to it. Nothing here is shared
//! with other threads except the single-writer counters and the links, so
//! the request path never waits on another core.

pub(crate) mod conn;
pub(crate) mod generation;
pub(crate) mod hooks;
pub(crate) mod ids;
pub(crate) mod link;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use monoio::net::TcpListener;

use crate::rt::deadline::Deadlines;
use crate::rt::io::{Pool, SendLimit};
use crate::rt::notify::LocalNotify;
use crate::stats::WorkerStats;
pub(crate) use generation::Generation;
pub use hooks::{Hooks, Logged};
use link::Peers;

/// What a worker reports once it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub id: usize,
    pub cpu: usize,
    /// "io_uring" or "epoll".
    pub driver: &'static str,
}

/// The state one worker's connections share.
pub(crate) struct Worker {
    pub(crate) id: usize,
    pub(crate) pool: Pool,
    pub(crate) stats: Arc<WorkerStats>,
    /// The generation new requests start on; replaced by a reload.
    current: RefCell<Rc<Generation>>,
    /// Fired once the worker drains.
    pub(crate) shutdown: LocalNotify,
    pub(crate) deadlines: Deadlines,
    pub(crate) hooks: Arc<Hooks>,
    accepting: RefCell<Vec<Accepting>>,
    /// Password checks waiting on the blocking pool.
    pub(crate) verifying: Cell<u32>,
    /// The other workers (for telling them about invalidations) and the
    /// gateway-wide count of client connections.
    pub(crate) peers: Peers,
    /// Request IDs and trace ids.
    pub(crate) ids: ids::Ids,
}

impl Worker {
    pub(crate) fn new(
        id: usize,
        stats: Arc<WorkerStats>,
        generation: Generation,
        hooks: Arc<Hooks>,
        peers: Peers,
    ) -> Worker {
        Worker {
            id,
            pool: Pool::default(),
            stats,
            current: RefCell::new(Rc::new(generation)),
            shutdown: LocalNotify::default(),
            deadlines: Deadlines::default(),
            hooks,
            accepting: RefCell::new(Vec::new()),
            verifying: Cell::new(0),
            peers,
            ids: ids::Ids::new(id),
        }
    }

    /// The current generation, for a request to keep until it ends.
    pub(crate) fn current(&self) -> Rc<Generation> {
        self.current.borrow().clone()
    }

    /// Makes `next` the generation new requests start on.
    pub(crate) fn set_current(&self, next: Generation) {
        *self.current.borrow_mut() = Rc::new(next);
    }

    /// How long a peer may take to accept what we write, on `g`.
    pub(crate) fn send_limit(&self, g: &Generation) -> SendLimit<'_> {
        SendLimit {
            deadlines: &self.deadlines,
            limit: g.limits().send_timeout,
        }
    }

    /// Starts tracking a listener's accept loop.
    pub(crate) fn add_accepting(&self, a: Accepting) {
        self.accepting.borrow_mut().push(a);
    }

    /// Stops tracking the listener configured as `configured`, if any.
    pub(crate) fn remove_accepting(&self, configured: SocketAddr) -> Option<Accepting> {
        let mut accepting = self.accepting.borrow_mut();
        let i = accepting.iter().position(|a| a.configured == configured)?;
        Some(accepting.remove(i))
    }

    /// Stops tracking every listener.
    pub(crate) fn take_accepting(&self) -> Vec<Accepting> {
        std::mem::take(&mut *self.accepting.borrow_mut())
    }
}

/// One listener as its connections see it.
pub(crate) struct ListenerState {
    /// The address it is configured as (how the generation's settings for
    /// it are found).
    pub(crate) configured: SocketAddr,
    /// Fired when the listener is removed by a reload or the worker drains:
    /// its connections finish what is in flight and close.
    pub(crate) closing: LocalNotify,
}

/// A listener this worker accepts on.
pub(crate) struct Accepting {
    pub(crate) configured: SocketAddr,
    pub(crate) state: Rc<ListenerState>,
    pub(crate) listener: Rc<TcpListener>,
    pub(crate) task: monoio::task::JoinHandle<()>,
}

impl Accepting {
    /// Stops accepting and lets the listener's connections drain; the
    /// socket is closed once its accept loop has ended, inside the runtime.
    ///
    /// The accept in flight is not dropped (on io_uring a connection
    /// accepted just as the operation is cancelled would be lost with its
    /// descriptor); shutting the listening socket down makes it complete
    /// with an error instead, and the loop then sees `closing`.
    pub(crate) fn close(self) -> impl Future<Output = ()> {
        self.state.closing.fire();
        // SAFETY: `self.listener` keeps the descriptor open for this call;
        // shutdown(2) on a listening socket only changes its state.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        async move {
            let _ = self.task.await;
            drop(self.listener);
        }
    }
}
