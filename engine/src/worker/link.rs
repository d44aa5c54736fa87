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

/// A cache message to a worker.
pub(crate) enum CacheMsg {
    /// Another worker saw a successful unsafe request: drop the stored
    /// responses of the URL key (tag and URL, RFC 9111 §4.4) with this
    /// hash (`cache::store::url_hash`). A hash, so sending allocates
    /// nothing.
    Invalidate(u64),
    /// From the admin API; the worker replies with how many entries went.
    Purge {
        scope: Purge,
        reply: crossbeam_channel::Sender<usize>,
    },
}

/// Cache messages queued per worker; past this an invalidation makes the
/// worker drop its whole cache instead (correct, if costly), and says so.
const CACHE_QUEUE: usize = 4096;

/// The control plane's line to one worker.
pub(crate) struct Link {
    pub(crate) tx: crossbeam_channel::Sender<Cmd>,
    pub(crate) cache_tx: crossbeam_channel::Sender<CacheMsg>,
    /// Set when an invalidation did not fit in the queue.
    pub(crate) cache_overflow: std::sync::atomic::AtomicBool,
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
            cache_overflow: std::sync::atomic::AtomicBool::new(false),
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

/// What the workers share with each other: every worker's link, to reach
/// the others, and the count of client connections open in the gateway.
#[derive(Clone)]
pub(crate) struct Peers {
    pub(crate) links: Arc<[Arc<Link>]>,
    pub(crate) clients: Arc<AtomicUsize>,
}

impl Peers {
    pub(crate) fn new(links: &[Arc<Link>]) -> Peers {
        Peers {
            links: links.iter().cloned().collect(),
            clients: Arc::new(AtomicUsize::new(0)),
        }
    }

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

    /// Tells every worker but `from` to drop the stored responses of the
    /// URL key with hash `h`.
    pub(crate) fn invalidate_elsewhere(&self, from: usize, h: u64) {
        for (i, link) in self.links.iter().enumerate() {
            if i == from {
                continue;
            }
            if link.cache_tx.try_send(CacheMsg::Invalidate(h)).is_err() {
                link.cache_overflow.store(true, Ordering::Release);
            }
            link.wake.notify(1);
        }
    }
}
