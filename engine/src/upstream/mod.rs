//! Upstream servers as one worker sees them: the servers of each group
//! (see [`members`]), a balancing policy over those available now (see
//! [`balance`] and [`health`]), and a keep-alive pool per server.
//!
//! Everything per worker is worker-local (`Cell`/`RefCell`, never held
//! across an await), so picking a server and reusing a connection cost no
//! lock: the policy's state (round-robin weights, requests in flight,
//! latency averages) is this worker's own, and what a pick reads of other
//! threads is one health word per server, written rarely. Each pool is
//! bounded in idle count and idle time; a connection idle past its time is
//! closed on the next take or by the worker's sweep. Pools and policy
//! state are keyed by upstream name and server address and carried across
//! reloads (see `rt::carry`), so a reload that leaves a server in place
//! keeps its warm connections, its in-flight count and its latency.
//!
//! Shared by the workers ([`Shared`], compiled with the snapshot): each
//! server's count of connections in use (for `max-connections`) and its
//! health (active checks, ejections, draining), each group's count of
//! requests waiting for a connection, and the hash policy's table.

pub(crate) mod balance;
pub(crate) mod check;
pub(crate) mod conn;
pub(crate) mod health;
pub(crate) mod members;
pub(crate) mod tunnel;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use monoio::net::TcpStream;
use std::sync::Arc;

use ringway_config::{BalancePolicy, Config, HashKey, OutlierDetection};

use crate::rt::carry::Keyed;
use crate::stats::labeled::ServerStats;
use crate::tls::client::{UpstreamTls, WorkerUpstreamTls};
use balance::{Balancer, Load, Maglev, Policy, Servers};
pub(crate) use conn::{OpenCount, Slot, UpConn};
use health::{GroupHealth, Health};
pub(crate) use members::{Member, Names, Refresh, Resolved};

/// One server as every worker shares it.
pub(crate) struct SharedServer {
    pub(crate) member: Member,
    pub(crate) open: Arc<OpenCount>,
    pub(crate) health: Arc<Health>,
}

/// One upstream as every worker shares it.
pub(crate) struct SharedGroup {
    pub(crate) name: String,
    pub(crate) servers: Vec<SharedServer>,
    pub(crate) health: Arc<GroupHealth>,
    /// The hash policy's table, over every server.
    pub(crate) maglev: Option<Arc<Maglev>>,
    /// Requests waiting for a connection to a server at its cap.
    pub(crate) waiting: Arc<AtomicU32>,
    /// Bumped when a server is drained or undrained: workers read the
    /// servers' health again at their next pick (other changes they see
    /// within a millisecond).
    pub(crate) epoch: Arc<AtomicU64>,
}

/// What every worker shares about the upstream servers, by upstream index.
pub(crate) struct Shared {
    pub(crate) groups: Vec<SharedGroup>,
}

impl Shared {
    /// The shared state of `members` (by upstream of `config`), carried
    /// from `prev` for every server still under the same upstream name
    /// (its requests in flight and its health still are), with the caps
    /// now configured.
    pub(crate) fn compile(
        config: &Config,
        members: &[Vec<Member>],
        prev: Option<&Shared>,
    ) -> Shared {
        let groups = config
            .upstreams
            .iter()
            .zip(members)
            .map(|(up, members)| {
                let old = prev.and_then(|p| p.groups.iter().find(|g| g.name == up.name));
                let active = up.health_check.is_some();
                let servers = members
                    .iter()
                    .map(|m| {
                        let kept = old
                            .and_then(|g| g.servers.iter().find(|s| s.member.address == m.address));
                        let (open, health) = match kept {
                            Some(s) => {
                                s.open.set_max(m.max_connections);
                                s.health.set_active(active);
                                (s.open.clone(), s.health.clone())
                            }
                            None => (
                                Arc::new(OpenCount::new(m.max_connections)),
                                Arc::new(Health::new(active)),
                            ),
                        };
                        SharedServer {
                            member: m.clone(),
                            open,
                            health,
                        }
                    })
                    .collect::<Vec<_>>();
                let health = Arc::new(GroupHealth::new(
                    servers.iter().map(|s| s.health.clone()).collect(),
                ));
                let maglev = matches!(up.balance.policy, BalancePolicy::Hash(_)).then(|| {
                    let ids: Vec<(String, u32)> = servers
                        .iter()
                        .map(|s| (s.member.address.to_string(), s.member.weight))
                        .collect();
                    let ids: Vec<(&[u8], u32)> =
                        ids.iter().map(|(a, w)| (a.as_bytes(), *w)).collect();
                    Arc::new(Maglev::new(&ids, balance::MAGLEV_SIZE))
                });
                SharedGroup {
                    name: up.name.clone(),
                    servers,
                    health,
                    maglev,
                    waiting: old.map_or_else(Arc::default, |g| g.waiting.clone()),
                    epoch: old.map_or_else(Arc::default, |g| g.epoch.clone()),
                }
            })
            .collect();
        Shared { groups }
    }
}

/// One pooled keep-alive connection.
pub(crate) struct Idle {
    pub(crate) io: UpConn,
    since: Instant,
}

/// A server's idle connections and this worker's balancing state for it.
/// Shared by every generation that has the server under the same upstream
/// name, so a reload keeps them (and frequent reloads do not restart the
/// round robin, nor forget requests in flight).
#[derive(Default)]
pub(crate) struct ServerPool {
    idle: RefCell<Vec<Idle>>,
    /// What the balancing policies remember of the server.
    load: Load,
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
    health: Arc<Health>,
    tls: Option<WorkerUpstreamTls>,
    weight: u32,
    backup: bool,
    /// The name (`host:port`) the server came from, if any.
    name: Option<Arc<str>>,
    pool: Rc<ServerPool>,
    /// This worker's counters for the server.
    stats: Arc<ServerStats>,
}

/// One group's requests in flight and retries in flight on this worker,
/// for the retry budget.
#[derive(Default)]
pub(crate) struct Budget {
    in_flight: Cell<u32>,
    retries: Cell<u32>,
}

struct GroupState {
    name: Arc<str>,
    /// Indexes into `Upstreams::servers`.
    servers: Vec<usize>,
    /// Per server (as `servers`), side by side: what a pick reads of each.
    slots: Box<[PickSlot]>,
    /// When the slots' weights were read: the millisecond plus one; 0 =
    /// never.
    weights_at: Cell<u64>,
    /// The shared epoch they were read at.
    epoch_seen: Cell<u64>,
    epoch: Arc<AtomicU64>,
    balancer: Balancer,
    budget: Rc<Budget>,
    outlier: Option<health::OutlierParams>,
    slow_start_ms: u64,
    fail_open: bool,
    hash: Option<HashKey>,
    waiting: Arc<AtomicU32>,
    group_health: Arc<GroupHealth>,
    queue_size: u32,
    queue_timeout: Duration,
}

/// What a pick reads of one server on this worker: its weight as a
/// primary and as a backup now (0: not available, or not of that kind),
/// as last read from its shared health, and smooth round robin's running
/// weight (carried from the previous generation for a server that stays,
/// so frequent reloads do not restart the rotation).
struct PickSlot {
    primary: Cell<u32>,
    backup: Cell<u32>,
    running: Cell<i64>,
    is_backup: bool,
}

/// Which servers a pick considers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Available primaries.
    Primary,
    /// Available backups, when no primary is.
    Backup,
    /// Every primary not drained, when nothing is available (fail open).
    Open,
}

/// A group's servers as a pick sees them now.
struct View<'a> {
    ups: &'a Upstreams,
    /// The group's servers and what a pick reads of each, borrowed apart
    /// from the group so that their bounds stay known while the running
    /// weights change.
    ids: &'a [usize],
    slots: &'a [PickSlot],
    phase: Phase,
    /// Servers this request already tried.
    avoid: &'a [usize],
}

impl Servers for View<'_> {
    fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline(always)]
    fn weight(&self, i: usize) -> u32 {
        let slot = &self.slots[i];
        let weight = match self.phase {
            Phase::Primary => slot.primary.get(),
            Phase::Backup => slot.backup.get(),
            Phase::Open => {
                let s = &self.ups.servers[self.ids[i]];
                if slot.is_backup || s.health.draining() {
                    0
                } else {
                    s.weight
                }
            }
        };
        if !self.avoid.is_empty() && self.avoid.contains(&self.ids[i]) {
            return 0;
        }
        weight
    }

    #[inline]
    fn load(&self, i: usize) -> &Load {
        &self.ups.servers[self.ids[i]].pool.load
    }

    #[inline(always)]
    fn running(&self, i: usize) -> &Cell<i64> {
        &self.slots[i].running
    }
}

/// Why no server could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoServer {
    /// The group has no server (a name that has not resolved).
    Empty,
    /// No server is available and the group does not fail open.
    Unavailable,
}

/// One request's place among its group's and its server's requests in
/// flight on this worker, given back when the request is done with the
/// server (its response relayed, or it failed); the latency policy then
/// learns how long the server took to answer (or to fail).
pub(crate) struct Flight {
    pool: Rc<ServerPool>,
    budget: Rc<Budget>,
    stats: Arc<ServerStats>,
    /// A retry holds a place in the budget's retries too.
    retry: bool,
    started: Instant,
    /// Until the response head, once it came.
    latency: Option<Duration>,
    decay_ns: f64,
}

impl Flight {
    /// The response head came after `latency`.
    pub(crate) fn answered(&mut self, latency: Duration) {
        self.latency = Some(latency);
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let latency = self.latency.unwrap_or_else(|| self.started.elapsed());
        let load = &self.pool.load;
        load.finish(
            latency,
            health::now_ms().saturating_mul(1_000_000),
            self.decay_ns,
        );
        self.stats.in_flight.set(u64::from(load.in_flight()));
        self.stats.ewma_us.set(load.ewma_ns() as u64 / 1000);
        self.budget.in_flight.set(self.budget.in_flight.get() - 1);
        if self.retry {
            self.budget.retries.set(self.budget.retries.get() - 1);
        }
    }
}

/// Per-worker upstream state for one config generation.
pub(crate) struct Upstreams {
    servers: Vec<ServerState>,
    groups: Vec<GroupState>,
    pools: Keyed<PoolKey, ServerPool>,
    budgets: Keyed<String, Budget>,
    /// Whom to ask for a server name to be resolved again.
    refresh: Option<Arc<dyn Refresh>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Upstreams {
    /// Builds the state for `config`'s servers (`shared`), keeping the
    /// pools and policy state `prev` has for servers still under the same
    /// upstream name; pools of servers that are gone are closed.
    pub(crate) fn new(
        worker: usize,
        config: &Config,
        tls: &[Option<UpstreamTls>],
        shared: &Shared,
        stats: &[Arc<ServerStats>],
        refresh: Option<Arc<dyn Refresh>>,
        prev: Option<&Upstreams>,
    ) -> Upstreams {
        let tls_hash = |up: &ringway_config::Upstream| {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            up.tls.hash(&mut h);
            h.finish()
        };
        let keys = config
            .upstreams
            .iter()
            .zip(&shared.groups)
            .flat_map(|(up, g)| {
                let hash = tls_hash(up);
                g.servers
                    .iter()
                    .map(move |s| (up.name.clone(), s.member.address, hash))
            });
        let empty = Keyed::default();
        let carried = prev
            .map_or(&empty, |p| &p.pools)
            .carry(keys, |_| ServerPool::default());
        for gone in &carried.retired {
            gone.retire();
        }
        let pools = carried.next;
        let empty = Keyed::default();
        let budgets = prev
            .map_or(&empty, |p| &p.budgets)
            .carry(config.upstreams.iter().map(|u| u.name.clone()), |_| {
                Budget::default()
            })
            .next;
        let mut servers = Vec::new();
        let mut groups = Vec::new();
        for (i, (up, g)) in config.upstreams.iter().zip(&shared.groups).enumerate() {
            let hash = tls_hash(up);
            let worker_tls = tls
                .get(i)
                .and_then(Option::as_ref)
                .map(UpstreamTls::for_worker);
            let mut ids = Vec::new();
            for s in &g.servers {
                ids.push(servers.len());
                let pool = pools
                    .get(&(up.name.clone(), s.member.address, hash))
                    .expect("a pool was carried or made for every server")
                    .clone();
                servers.push(ServerState {
                    stats: stats[servers.len()].clone(),
                    address: s.member.address,
                    open: s.open.clone(),
                    health: s.health.clone(),
                    tls: worker_tls.clone(),
                    weight: s.member.weight,
                    backup: s.member.backup,
                    name: s.member.name.clone(),
                    pool,
                });
            }
            let policy = match &up.balance.policy {
                BalancePolicy::RoundRobin => Policy::RoundRobin,
                BalancePolicy::LeastRequest => Policy::LeastRequest,
                BalancePolicy::Ewma => Policy::Ewma {
                    decay_ns: up.balance.ewma_decay.as_nanos() as f64,
                },
                BalancePolicy::Random => Policy::Random,
                BalancePolicy::Hash(_) => {
                    Policy::Hash(g.maglev.clone().expect("a hashing upstream has its table"))
                }
            };
            let hash_key = match &up.balance.policy {
                BalancePolicy::Hash(k) => Some(k.clone()),
                _ => None,
            };
            groups.push(GroupState {
                name: Arc::from(up.name.as_str()),
                slots: ids
                    .iter()
                    .map(|&id| {
                        let s: &ServerState = &servers[id];
                        PickSlot {
                            primary: Cell::new(0),
                            backup: Cell::new(0),
                            running: Cell::new(
                                prev.map_or(0, |p| p.running_of(&up.name, s.address)),
                            ),
                            is_backup: s.backup,
                        }
                    })
                    .collect(),
                weights_at: Cell::new(0),
                epoch_seen: Cell::new(0),
                epoch: g.epoch.clone(),
                servers: ids,
                balancer: Balancer::new(policy, seed(worker, &up.name)),
                budget: budgets
                    .get(&up.name)
                    .expect("a budget was carried or made for every upstream")
                    .clone(),
                outlier: outlier(&up.outlier),
                slow_start_ms: up.slow_start.as_millis() as u64,
                fail_open: up.fail_open,
                hash: hash_key,
                waiting: g.waiting.clone(),
                group_health: g.health.clone(),
                queue_size: up.queue_size,
                queue_timeout: up.queue_timeout,
            });
        }
        Upstreams {
            servers,
            groups,
            pools,
            budgets,
            refresh,
            max_idle: config.limits.upstream_max_idle,
            idle_timeout: config.limits.upstream_idle_timeout,
        }
    }

    /// Picks a server of `group` for a request whose hash key is `key`,
    /// other than those in `avoid` when another is available: an available
    /// primary; else an available backup; else (failing open) any primary
    /// not drained.
    pub(crate) fn pick(&self, group: usize, key: u64, avoid: &[usize]) -> Result<usize, NoServer> {
        let g = &self.groups[group];
        if g.servers.is_empty() {
            return Err(NoServer::Empty);
        }
        let now_ms = health::now_ms();
        self.refresh_weights(g, now_ms);
        let mut view = View {
            ups: self,
            ids: &g.servers,
            slots: &g.slots,
            phase: Phase::Primary,
            avoid,
        };
        let now_ns = now_ms.saturating_mul(1_000_000);
        for phase in [Phase::Primary, Phase::Backup] {
            view.phase = phase;
            if let Some(i) = g.balancer.pick(&view, key, now_ns) {
                return Ok(g.servers[i]);
            }
        }
        if !avoid.is_empty() {
            // Every other server is out: the one tried before is still
            // better than none.
            view.avoid = &[];
            for phase in [Phase::Primary, Phase::Backup] {
                view.phase = phase;
                if let Some(i) = g.balancer.pick(&view, key, now_ns) {
                    return Ok(g.servers[i]);
                }
            }
        }
        if g.fail_open {
            view.phase = Phase::Open;
            view.avoid = &[];
            if let Some(i) = g.balancer.pick(&view, key, now_ns) {
                return Ok(g.servers[i]);
            }
        }
        Err(NoServer::Unavailable)
    }

    /// Whether `group` has an available server besides those in `avoid`.
    pub(crate) fn has_other(&self, group: usize, avoid: &[usize]) -> bool {
        let now_ms = health::now_ms();
        self.groups[group]
            .servers
            .iter()
            .any(|&id| !avoid.contains(&id) && self.servers[id].health.available(now_ms))
    }

    /// Reads the group's servers' shared health into this worker's
    /// weights, at most once a millisecond (a change this worker makes
    /// itself, an ejection say, is seen at once: it forgets the reading).
    /// A pick then reads one weight per server, not one shared word and
    /// a ramp computation.
    fn refresh_weights(&self, g: &GroupState, now_ms: u64) {
        let epoch = g.epoch.load(Ordering::Relaxed);
        if g.weights_at.get() == now_ms + 1 && g.epoch_seen.get() == epoch {
            return;
        }
        g.weights_at.set(now_ms + 1);
        g.epoch_seen.set(epoch);
        for (slot, &id) in g.slots.iter().zip(&g.servers) {
            let s = &self.servers[id];
            let w = if !s.health.available(now_ms) {
                0
            } else if g.slow_start_ms == 0 {
                s.weight
            } else {
                let pct = s.health.slow_start_percent(now_ms, g.slow_start_ms);
                (s.weight.saturating_mul(pct) / 100).max(1)
            };
            let (primary, backup) = if slot.is_backup { (0, w) } else { (w, 0) };
            slot.primary.set(primary);
            slot.backup.set(backup);
        }
    }

    /// The round-robin running weight of a server, 0 when unknown.
    fn running_of(&self, upstream: &str, address: SocketAddr) -> i64 {
        let Some(g) = self.groups.iter().find(|g| &*g.name == upstream) else {
            return 0;
        };
        g.servers
            .iter()
            .position(|&id| self.servers[id].address == address)
            .map_or(0, |i| g.slots[i].running.get())
    }

    /// Makes the next pick of `group` read the servers' health again.
    fn forget_weights(&self, group: usize) {
        self.groups[group].weights_at.set(0);
    }

    /// The hash policy's key of `group`, if it has one.
    pub(crate) fn hash_key(&self, group: usize) -> Option<&HashKey> {
        self.groups[group].hash.as_ref()
    }

    /// Counts a request in flight to `server` of `group` until the
    /// returned [`Flight`] is dropped; `retry` when it is a retry.
    pub(crate) fn start(&self, group: usize, server: usize, retry: bool) -> Flight {
        let s = &self.servers[server];
        let budget = &self.groups[group].budget;
        s.pool.load.start();
        s.stats.in_flight.set(u64::from(s.pool.load.in_flight()));
        budget.in_flight.set(budget.in_flight.get() + 1);
        if retry {
            budget.retries.set(budget.retries.get() + 1);
        }
        let decay_ns = match self.groups[group].balancer.policy() {
            Policy::Ewma { decay_ns } => *decay_ns,
            _ => balance::DEFAULT_DECAY_NS,
        };
        Flight {
            pool: s.pool.clone(),
            budget: budget.clone(),
            stats: s.stats.clone(),
            retry,
            started: Instant::now(),
            latency: None,
            decay_ns,
        }
    }

    /// Whether `group` may start one more retry: retries in flight on this
    /// worker stay within `percent` of its requests in flight to the
    /// group, or `min`, whichever is more.
    pub(crate) fn may_retry(&self, group: usize, percent: u8, min: u32) -> bool {
        let b = &self.groups[group].budget;
        let allowed = (u64::from(b.in_flight.get()) * u64::from(percent) / 100).max(u64::from(min));
        u64::from(b.retries.get()) < allowed
    }

    /// `server` answered (not with a 5xx): its run of failures ends.
    pub(crate) fn succeeded(&self, server: usize) {
        self.servers[server].health.success();
    }

    /// A random number below `n`, from `group`'s generator.
    pub(crate) fn random_below(&self, group: usize, n: u64) -> u64 {
        self.groups[group].balancer.below(n)
    }

    /// A request to `server` of `group` failed in a way that counts
    /// against the server (a connect error, a reset, a timeout, a 5xx):
    /// passive health may eject it. `connect` when it could not be reached
    /// (a named server then asks for its name to be resolved again).
    pub(crate) fn failed(&self, group: usize, server: usize, connect: bool) {
        let g = &self.groups[group];
        let s = &self.servers[server];
        if let Some(o) = &g.outlier {
            if s.health.failure(health::now_ms(), o, &g.group_health) {
                self.forget_weights(group);
                s.stats.ejections.inc();
                tracing::warn!(
                    upstream = %self.name(group),
                    server = %s.address,
                    "server ejected after consecutive failures"
                );
            }
        }
        if let (true, Some(name), Some(r)) = (connect, &s.name, &self.refresh) {
            // At most once a second per name, the resolver says.
            if let Some((host, port)) = name.rsplit_once(':') {
                r.refresh(host, port.parse().unwrap_or(0));
            }
        }
    }

    /// `server` answered 503 with `Retry-After`: no request goes to it for
    /// that long (within the ejection cap), when passive health is on.
    pub(crate) fn retry_after(&self, group: usize, server: usize, after: Duration) {
        let g = &self.groups[group];
        if let Some(o) = &g.outlier {
            let ms = (after.as_millis() as u64).min(o.max_ejection_ms);
            let s = &self.servers[server];
            if s.health.eject_for(health::now_ms(), ms, o, &g.group_health) {
                self.forget_weights(group);
                s.stats.ejections.inc();
            }
        }
    }

    /// The upstream's name.
    pub(crate) fn name(&self, group: usize) -> &str {
        &self.groups[group].name
    }

    /// How many servers `group` has.
    pub(crate) fn group_size(&self, group: usize) -> usize {
        self.groups[group].servers.len()
    }

    /// The name (`host:port`) `server` came from, if any.
    pub(crate) fn name_of(&self, server: usize) -> Option<&str> {
        self.servers[server].name.as_deref()
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

    /// A place in `group`'s queue of requests waiting for a connection,
    /// and how long it may wait; `None` when the queue is full (or off).
    pub(crate) fn enqueue(&self, group: usize) -> Option<(Waiting, Duration)> {
        let g = &self.groups[group];
        let mut n = g.waiting.load(Ordering::Relaxed);
        loop {
            if n >= g.queue_size {
                return None;
            }
            match g
                .waiting
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some((Waiting(g.waiting.clone()), g.queue_timeout)),
                Err(now) => n = now,
            }
        }
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

    /// Closes idle connections past their time, and those of drained
    /// servers. Called periodically.
    pub(crate) fn sweep(&self) {
        for s in &self.servers {
            let mut idle = s.pool.idle.borrow_mut();
            if s.health.draining() {
                idle.clear();
            } else {
                idle.retain(|c| c.since.elapsed() < self.idle_timeout);
            }
            s.stats.idle.set(idle.len() as u64);
        }
    }
}

/// One request's place in a group's queue, given back when dropped.
pub(crate) struct Waiting(Arc<AtomicU32>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A seed for a worker's generator for one group: workers (and groups)
/// draw differently.
fn seed(worker: usize, name: &str) -> u64 {
    balance::hash_key(name.as_bytes()) ^ (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Passive health's settings, when on.
fn outlier(o: &OutlierDetection) -> Option<health::OutlierParams> {
    o.enabled.then_some(health::OutlierParams {
        consecutive_failures: o.consecutive_failures,
        base_ejection_ms: o.base_ejection.as_millis() as u64,
        max_ejection_ms: o.max_ejection.as_millis() as u64,
        max_ejected_percent: o.max_ejected_percent,
    })
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
