//! Upstream servers as one worker sees them: smooth weighted round robin
//! over a group's servers and a keep-alive pool per server.
//!
//! Everything here is worker-local (`Cell`/`RefCell`, never held across an
//! await), so picking a server and reusing a connection cost no atomic and
//! no lock. Each pool is bounded in idle count and idle time; a connection
//! idle past its time is closed on the next take or by the worker's sweep.
//! Pools are keyed by upstream name and server address and carried across
//! reloads (see `rt::carry`), so a reload that leaves a server in place
//! keeps its warm connections.
//!
//! Shared by the workers ([`Shared`], compiled with the snapshot): each
//! server's count of connections in use, for its `max-connections` cap.

pub(crate) mod balance;
pub(crate) mod conn;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;
use std::sync::Arc;

use ringway_config::Config;

use crate::rt::carry::Keyed;
use crate::stats::labeled::ServerStats;
use crate::tls::client::{UpstreamTls, WorkerUpstreamTls};
pub(crate) use conn::{OpenCount, Slot, UpConn};

/// What every worker shares about the servers: per upstream, per server,
/// the count of connections in use (by a request) to it.
pub(crate) struct Shared {
    counts: Vec<Vec<Arc<OpenCount>>>,
}

impl Shared {
    /// Counts for `config`'s servers, carried from `prev` for every server
    /// still under the same upstream name (its requests in flight still
    /// are), with the cap now configured.
    pub(crate) fn compile(config: &Config, prev: Option<(&Config, &Shared)>) -> Shared {
        let counts = config
            .upstreams
            .iter()
            .map(|up| {
                let max = up.max_connections.map(|m| m.get());
                up.servers
                    .iter()
                    .map(|s| {
                        let carried = prev.and_then(|(c, shared)| {
                            let (i, old) = c
                                .upstreams
                                .iter()
                                .enumerate()
                                .find(|(_, o)| o.name == up.name)?;
                            let j = old.servers.iter().position(|o| o.address == s.address)?;
                            Some(shared.counts[i][j].clone())
                        });
                        match carried {
                            Some(c) => {
                                c.set_max(max);
                                c
                            }
                            None => Arc::new(OpenCount::new(max)),
                        }
                    })
                    .collect()
            })
            .collect();
        Shared { counts }
    }
}

/// One pooled keep-alive connection.
pub(crate) struct Idle {
    pub(crate) io: UpConn,
    since: Instant,
}

/// A server's idle connections and balancing state. Shared by every
/// generation that has the server under the same upstream name, so a reload
/// keeps them (and frequent reloads do not restart the round robin).
#[derive(Default)]
pub(crate) struct ServerPool {
    idle: RefCell<Vec<Idle>>,
    /// Smooth weighted round robin's running weight.
    current: Cell<i64>,
    /// The server left the config: close what comes back.
    retired: Cell<bool>,
}

impl ServerPool {
    /// Closes every idle connection and refuses new ones.
    fn retire(&self) {
        self.retired.set(true);
        self.idle.borrow_mut().clear();
    }
}

/// What identifies a server's pool across reloads.
/// Upstream name, server address, and a hash of the upstream's TLS
/// settings: a connection made with other TLS settings (or none) is never
/// reused for a request that expects these.
pub(crate) type PoolKey = (String, SocketAddr, u64);

struct ServerState {
    address: SocketAddr,
    open: Arc<OpenCount>,
    tls: Option<WorkerUpstreamTls>,
    weight: i64,
    pool: Rc<ServerPool>,
    /// This worker's counters for the server.
    stats: Arc<ServerStats>,
}

struct GroupState {
    /// Indexes into `Upstreams::servers`.
    servers: Vec<usize>,
    total_weight: i64,
}

/// Per-worker upstream state for one config generation.
pub(crate) struct Upstreams {
    servers: Vec<ServerState>,
    groups: Vec<GroupState>,
    pools: Keyed<PoolKey, ServerPool>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Upstreams {
    /// Builds the state for `config`, keeping the pools `prev` has for
    /// servers still under the same upstream name; pools of servers that
    /// are gone are closed.
    pub(crate) fn new(
        config: &Config,
        tls: &[Option<UpstreamTls>],
        shared: &Shared,
        stats: &[Arc<ServerStats>],
        prev: Option<&Upstreams>,
    ) -> Upstreams {
        let tls_hash = |up: &ringway_config::Upstream| {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            up.tls.hash(&mut h);
            h.finish()
        };
        let keys = config.upstreams.iter().flat_map(|up| {
            let hash = tls_hash(up);
            up.servers
                .iter()
                .map(move |s| (up.name.clone(), s.address, hash))
        });
        let empty = Keyed::default();
        let carried = prev
            .map_or(&empty, |p| &p.pools)
            .carry(keys, |_| ServerPool::default());
        for gone in &carried.retired {
            gone.retire();
        }
        let pools = carried.next;
        let mut servers = Vec::new();
        let mut groups = Vec::new();
        for (i, up) in config.upstreams.iter().enumerate() {
            let hash = tls_hash(up);
            let worker_tls = tls
                .get(i)
                .and_then(Option::as_ref)
                .map(UpstreamTls::for_worker);
            let mut ids = Vec::new();
            let mut total = 0;
            for (j, s) in up.servers.iter().enumerate() {
                ids.push(servers.len());
                let weight = i64::from(s.weight.get());
                total += weight;
                let pool = pools
                    .get(&(up.name.clone(), s.address, hash))
                    .expect("a pool was carried or made for every server")
                    .clone();
                servers.push(ServerState {
                    stats: stats[servers.len()].clone(),
                    address: s.address,
                    open: shared.counts[i][j].clone(),
                    tls: worker_tls.clone(),
                    weight,
                    pool,
                });
            }
            groups.push(GroupState {
                servers: ids,
                total_weight: total,
            });
        }
        Upstreams {
            servers,
            groups,
            pools,
            max_idle: config.limits.upstream_max_idle,
            idle_timeout: config.limits.upstream_idle_timeout,
        }
    }

    /// Smooth weighted round robin (as nginx does it): every server gains
    /// its weight, the highest is picked and pays the total back. Spreads
    /// picks evenly within each cycle instead of in bursts.
    pub(crate) fn pick(&self, group: usize) -> usize {
        let g = &self.groups[group];
        if let [only] = g.servers[..] {
            return only;
        }
        let mut best = g.servers[0];
        let mut best_weight = i64::MIN;
        for &id in &g.servers {
            let s = &self.servers[id];
            let cur = s.pool.current.get() + s.weight;
            s.pool.current.set(cur);
            if cur > best_weight {
                best_weight = cur;
                best = id;
            }
        }
        let s = &self.servers[best];
        s.pool.current.set(s.pool.current.get() - g.total_weight);
        best
    }

    /// A pick as [`Upstreams::pick`] makes, other than `avoid` when the
    /// group has another server.
    pub(crate) fn pick_other(&self, group: usize, avoid: usize) -> usize {
        let server = self.pick(group);
        if server != avoid {
            return server;
        }
        // Weights may make `avoid` the next pick again: then the first
        // other server.
        self.groups[group]
            .servers
            .iter()
            .copied()
            .find(|&s| s != avoid)
            .unwrap_or(server)
    }

    /// How many servers `group` has.
    pub(crate) fn group_size(&self, group: usize) -> usize {
        self.groups[group].servers.len()
    }

    pub(crate) fn address(&self, server: usize) -> SocketAddr {
        self.servers[server].address
    }

    /// This worker's counters for `server`.
    pub(crate) fn stats(&self, server: usize) -> &Arc<ServerStats> {
        &self.servers[server].stats
    }

    /// The TLS settings connections to `server` use, if any.
    pub(crate) fn tls(&self, server: usize) -> Option<&WorkerUpstreamTls> {
        self.servers[server].tls.as_ref()
    }

    /// A place among the requests in flight to `server`, unless its
    /// `max-connections` is reached; `Ok(None)` when the server has no cap
    /// (nothing is counted then).
    pub(crate) fn acquire(&self, server: usize) -> Result<Option<Slot>, ()> {
        let s = &self.servers[server];
        if !s.open.capped() {
            return Ok(None);
        }
        s.open.open().map(Some).ok_or(())
    }

    /// The most recently used idle connection that has not expired and is
    /// still clean (see [`still_clean`]).
    pub(crate) fn take_idle(&self, server: usize) -> Option<UpConn> {
        let s = &self.servers[server];
        let mut idle = s.pool.idle.borrow_mut();
        let mut found = None;
        while let Some(conn) = idle.pop() {
            if conn.since.elapsed() < self.idle_timeout
                && !conn.io.buffered()
                && still_clean(conn.io.tcp())
            {
                found = Some(conn.io);
                break;
            }
        }
        s.stats.idle.set(idle.len() as u64);
        found
    }

    /// Returns a connection for reuse; closes it when the pool is full.
    pub(crate) fn put_idle(&self, server: usize, mut io: UpConn) {
        // An idle connection is not in use: it gives its place back.
        io.slot = None;
        // A pooled TLS connection keeps its record buffers: pools are
        // bounded, and freeing them would allocate on every request.
        let s = &self.servers[server];
        let mut idle = s.pool.idle.borrow_mut();
        if idle.len() < self.max_idle && !s.pool.retired.get() {
            idle.push(Idle {
                io,
                since: Instant::now(),
            });
        }
        s.stats.idle.set(idle.len() as u64);
    }

    /// Closes idle connections past their time. Called periodically.
    pub(crate) fn sweep(&self) {
        for s in &self.servers {
            let mut idle = s.pool.idle.borrow_mut();
            idle.retain(|c| c.since.elapsed() < self.idle_timeout);
            s.stats.idle.set(idle.len() as u64);
        }
    }
}

/// Is an idle upstream connection still fit for a request? Nothing may have
/// arrived on it while it sat in the pool: bytes would be read as the next
/// client's response (an upstream that sent more than it announced, or a
/// late 408), and EOF or an error means the upstream closed it. One
/// non-blocking peek answers all three. A close racing with this check is
/// still possible; the retry in `forward` covers the idempotent case.
fn still_clean(io: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: the descriptor stays open while `io` is borrowed, and the
    // buffer is one writable byte on this stack frame; MSG_DONTWAIT keeps
    // the call from blocking the worker.
    let n = unsafe {
        libc::recv(
            io.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}
