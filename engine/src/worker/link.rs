//! The links between the control plane and a worker, and between workers.
//!
//! Every cross-thread message a worker receives comes through its [`Link`]:
//! reloads (bounded, acknowledged) and cache messages (invalidations from
//! other workers, purges from the admin API), each followed by a wake.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::snapshot::Snapshot;
use crate::stats::WorkerStats;

/// A reload as a worker receives it.
pub(crate) struct Cmd {
    pub(crate) snapshot: Arc<Snapshot>,
    /// New listeners for this worker, by configured address.
    pub(crate) add: Vec<(SocketAddr, std::net::TcpListener)>,
    /// Configured addresses whose listeners stop accepting.
    pub(crate) remove: Vec<SocketAddr>,
}

/// What to purge from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purge {
    /// Every entry.
    All,
    /// The responses of one URL (`http://host/path?query`), under every
    /// route's key options, consumer and key-header values.
    Url(String),
    /// Every entry whose URL starts with this (`http://host/prefix`).
    Prefix(String),
}

/// A purge from the admin API, run by one worker for the whole (shared)
/// cache, so that the memory it frees is freed where the cache's memory
/// is counted; the worker replies with how many entries went.
pub(crate) struct CacheMsg {
    pub(crate) scope: Purge,
    pub(crate) reply: crossbeam_channel::Sender<usize>,
}

/// Purges queued per worker (the admin API waits for each).
const CACHE_QUEUE: usize = 16;

/// The control plane's line to one worker.
pub(crate) struct Link {
    pub(crate) tx: crossbeam_channel::Sender<Cmd>,
    pub(crate) cache_tx: crossbeam_channel::Sender<CacheMsg>,
    /// Rung after a command is queued.
    pub(crate) wake: event_listener::Event,
    /// The generation the worker runs.
    pub(crate) applied: AtomicU64,
    /// When it started running it, in ns since the plane started.
    pub(crate) applied_at: AtomicU64,
    pub(crate) stats: Arc<WorkerStats>,
}

impl Link {
    /// Creates a link and the receiving end the worker keeps.
    pub(crate) fn new(stats: Arc<WorkerStats>) -> (Arc<Link>, Inbox) {
        // One reload at a time is in flight (reloads are serialized and
        // wait for acknowledgements), so a small bound never fills unless a
        // worker stops running; then the reload fails instead of queueing.
        let (tx, rx) = crossbeam_channel::bounded(8);
        let (cache_tx, cache_rx) = crossbeam_channel::bounded(CACHE_QUEUE);
        let link = Link {
            tx,
            cache_tx,
            wake: event_listener::Event::new(),
            applied: AtomicU64::new(0),
            applied_at: AtomicU64::new(0),
            stats,
        };
        (
            Arc::new(link),
            Inbox {
                reloads: rx,
                cache: cache_rx,
            },
        )
    }
}

/// What a worker receives from the control plane.
pub(crate) struct Inbox {
    pub(crate) reloads: crossbeam_channel::Receiver<Cmd>,
    pub(crate) cache: crossbeam_channel::Receiver<CacheMsg>,
}

/// What the workers share with each other: the count of client
/// connections open in the gateway.
#[derive(Clone, Default)]
pub(crate) struct Peers {
    pub(crate) clients: Arc<AtomicUsize>,
}

impl Peers {
    /// Takes a place for a new client connection unless the gateway holds
    /// `max` already (`max-connections`); give it back with
    /// [`Peers::close_client`]. One atomic per accepted connection.
    pub(crate) fn open_client(&self, max: usize) -> bool {
        let mut n = self.clients.load(Ordering::Relaxed);
        loop {
            if n >= max {
                return false;
            }
            match self
                .clients
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
    }

    pub(crate) fn close_client(&self) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
    }
}
