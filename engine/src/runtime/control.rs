//! The control plane: every reload, whatever triggered it (SIGHUP, a file
//! change, `PUT /config`), goes through [`Handle::reload`]: validate,
//! bind new listeners, compile a [`Snapshot`], publish it through the one
//! `ArcSwap`, hand it to every worker, and wait until each runs it.
//!
//! Nothing here is on a request path. Reloads are serialized by a mutex; a
//! worker applies a reload between two polls of its tasks, building its own
//! state for the new generation and carrying over what is unchanged, then
//! acknowledges. A reload that fails at any step before the publish changes
//! nothing: the running generation keeps serving and the failure is counted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use event_listener::Listener as _;
use ringway_config::{Config, ConfigError, ConfigErrors};

use crate::runtime::health::{self, HealthChecker};
use crate::runtime::log_writer::{LogWriter, Output};
use crate::runtime::resolve::{Resolver, ResolverSettings};
use crate::runtime::thread::Control;
use crate::snapshot::Snapshot;
use crate::stats::{Totals, WorkerStats};
use crate::upstream::members::names;
use crate::upstream::{Names, Resolved};
use crate::worker::link::{CacheMsg, Cmd, Link, Purge};
use crate::worker::WorkerInfo;

/// How long a reload waits for every worker to acknowledge it. A worker
/// that is slower than this still applies the reload; the caller is told
/// the propagation did not complete in time.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// Propagation times kept for the status figures.
const PROPAGATION_WINDOW: usize = 1024;

/// Listen backlog per worker socket.
const BACKLOG: i32 = 4096;

/// A configured listener and the address it is bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub(crate) configured: SocketAddr,
    pub(crate) actual: SocketAddr,
}

/// Which worker the kernel gives a new connection (`connection-balance`),
/// fixed at start: one listening socket per worker and address, each
/// preferring its worker's CPU or not.
#[derive(Debug)]
pub(crate) enum Steer {
    /// By a hash of the connection's addresses, over this many workers.
    Hash(usize),
    /// The worker on the CPU that received the connection (SO_INCOMING_CPU
    /// on each worker's socket), by hash where none is; per worker, its
    /// CPU.
    Cpu(Vec<usize>),
}

impl Steer {
    pub(crate) fn new(balance: ringway_config::ConnectionBalance, cpus: &[usize]) -> Steer {
        match balance {
            ringway_config::ConnectionBalance::Hash => Steer::Hash(cpus.len()),
            ringway_config::ConnectionBalance::Cpu => {
                if let Some(release) = kernel_before(6, 2) {
                    tracing::warn!(
                        kernel = %release,
                        "connection-balance = \"cpu\" needs Linux 6.2 or later; \
                         this kernel spreads connections by hash"
                    );
                }
                Steer::Cpu(cpus.to_vec())
            }
        }
    }

    fn workers(&self) -> usize {
        match self {
            Steer::Hash(n) => *n,
            Steer::Cpu(cpus) => cpus.len(),
        }
    }

    fn cpu(&self, worker: usize) -> Option<usize> {
        match self {
            Steer::Hash(_) => None,
            Steer::Cpu(cpus) => cpus.get(worker).copied(),
        }
    }
}

/// The running kernel's release when it is older than `major.minor`
/// (`None` when newer, or when it cannot be told).
fn kernel_before(major: u32, minor: u32) -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim();
    release_before(release, major, minor).then(|| release.to_string())
}

/// Is a kernel release such as "6.18.44-generic" older than
/// `major.minor`? False when it does not start with two numbers.
fn release_before(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(Some(a)), Some(Some(b))) => (a, b) < (major, minor),
        _ => false,
    }
}

/// The listeners bound at start, and how every listener is bound.
pub(crate) struct Listening {
    pub(crate) bound: Vec<Bound>,
    pub(crate) steer: Steer,
}

/// Where a config came from, for messages and the file to re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("invalid config:\n{0}")]
    Invalid(ConfigErrors),
    #[error("{path}: cannot listen on {address}: {source}")]
    Listen {
        path: String,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("no config file to reload (started without -c); send a config with PUT /config")]
    NoFile,
    #[error("shutting down")]
    Draining,
}

impl ReloadError {
    /// The errors as (path, line, column, message), for JSON answers.
    pub(crate) fn items(&self) -> Vec<ConfigError> {
        match self {
            ReloadError::Invalid(errors) => errors.iter().cloned().collect(),
            ReloadError::Listen { path, .. } => vec![config_error(path, self.to_string())],
            other => vec![config_error("", other.to_string())],
        }
    }
}

fn config_error(path: &str, message: String) -> ConfigError {
    let message = match message.strip_prefix(&format!("{path}: ")) {
        Some(rest) => rest.to_string(),
        None => message,
    };
    ConfigError {
        path: path.to_string(),
        line: 0,
        column: 0,
        message,
    }
}

/// A reload that took effect.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub generation: u64,
    /// From publish until the last worker ran the new generation; `None`
    /// when some worker had not yet acknowledged within the wait.
    pub propagation: Option<Duration>,
    /// Changed settings that keep their running value until a restart.
    pub restart_required: Vec<&'static str>,
    /// What the new config allows but looks risky (path: message).
    pub warnings: Vec<String>,
    pub listeners_added: Vec<SocketAddr>,
    pub listeners_removed: Vec<SocketAddr>,
}

/// Reload counters and figures.
#[derive(Debug, Clone, Default)]
pub struct ReloadStats {
    pub succeeded: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    /// Propagation times of recent reloads (up to 1,024): (p50, p99, max).
    pub propagation: Option<(Duration, Duration, Duration)>,
    pub propagation_samples: usize,
    /// When the last reload took effect.
    pub last_success: Option<std::time::SystemTime>,
    /// Every propagation time measured, summed, and how many.
    pub propagation_sum: Duration,
    pub propagation_count: u64,
    /// Generations published because server names resolved to other
    /// addresses (not counted as reloads).
    pub address_changes: u64,
}

/// What `GET /status` shows of one worker.
#[derive(Debug, Clone)]
pub struct WorkerStatus {
    pub info: WorkerInfo,
    pub generation: u64,
    pub connections_open: u64,
    pub requests: u64,
}

struct State {
    listeners: Vec<Bound>,
    stats: ReloadStats,
    propagation: VecDeque<Duration>,
}

pub(crate) struct Plane {
    snapshot: ArcSwap<Snapshot>,
    links: Vec<Arc<Link>>,
    acked: event_listener::Event,
    workers: OnceLock<Vec<WorkerInfo>>,
    control: Arc<Control>,
    started: Instant,
    file: OnceLock<PathBuf>,
    serial: Mutex<()>,
    state: Mutex<State>,
    /// The access-log writer, told about each generation before the
    /// workers.
    log: LogWriter,
    /// The active health checks, given each generation's plans.
    health: HealthChecker,
    /// The resolver of server names, once some upstream has one.
    names: NameService,
    /// How listeners are bound, fixed at start.
    steer: Steer,
}

/// A cloneable handle on the running gateway's control plane: reloads,
/// the current snapshot, status. Used by the admin API and the binary's
/// signal and file-watch handling.
#[derive(Clone)]
pub struct Handle(Arc<Plane>);

impl Handle {
    pub(crate) fn new(
        snapshot: Arc<Snapshot>,
        links: Vec<Arc<Link>>,
        control: Arc<Control>,
        listening: Listening,
        log: LogWriter,
        health: HealthChecker,
        names: NameService,
    ) -> Handle {
        health.apply(health::plans(&snapshot));
        let handle = Handle(Arc::new(Plane {
            snapshot: ArcSwap::new(snapshot),
            links,
            acked: event_listener::Event::new(),
            workers: OnceLock::new(),
            control,
            started: Instant::now(),
            file: OnceLock::new(),
            serial: Mutex::new(()),
            state: Mutex::new(State {
                listeners: listening.bound,
                stats: ReloadStats::default(),
                propagation: VecDeque::new(),
            }),
            log,
            health,
            names,
            steer: listening.steer,
        }));
        handle.0.names.attach(&handle);
        handle
    }

    pub(crate) fn set_workers(&self, workers: Vec<WorkerInfo>) {
        let _ = self.0.workers.set(workers);
    }

    /// Called by a worker once it runs `generation`.
    pub(crate) fn acknowledge(&self, link: &Link, generation: u64) {
        let at = self.0.started.elapsed().as_nanos() as u64;
        link.applied_at.store(at, Ordering::Release);
        link.applied.store(generation, Ordering::Release);
        self.0.acked.notify(usize::MAX);
    }

    /// The file `reload_file` re-reads (the one given with `-c`).
    pub fn set_config_file(&self, path: PathBuf) {
        let _ = self.0.file.set(path);
    }

    pub(crate) fn config_file(&self) -> Option<&PathBuf> {
        self.0.file.get()
    }

    /// The published snapshot.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.0.snapshot.load_full()
    }

    /// How long a shutdown waits for requests in flight.
    pub fn drain_timeout(&self) -> Duration {
        self.0.snapshot.load().config.drain_timeout
    }

    pub fn generation(&self) -> u64 {
        self.0.snapshot.load().generation
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.0.started.elapsed()
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.0.control.is_draining()
    }

    /// Ready: not draining, and every worker runs the published generation.
    pub fn is_ready(&self) -> bool {
        let current = self.generation();
        !self.is_draining()
            && self
                .0
                .links
                .iter()
                .all(|l| l.applied.load(Ordering::Acquire) == current)
    }

    /// Addresses the configured listeners are bound to, in config order.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.lock().listeners.iter().map(|b| b.actual).collect()
    }

    pub fn workers(&self) -> Vec<WorkerStatus> {
        let infos = self.0.workers.get().cloned().unwrap_or_default();
        infos
            .into_iter()
            .zip(&self.0.links)
            .map(|(info, link)| WorkerStatus {
                info,
                generation: link.applied.load(Ordering::Acquire),
                connections_open: link.stats.connections_open.get(),
                requests: link.stats.requests.get(),
            })
            .collect()
    }

    /// Counters summed over all workers, and the cache's size (one cache
    /// for all of them).
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for l in &self.0.links {
            t.add(&l.stats);
        }
        let held = self.snapshot().cache.totals();
        t.cache_entries = held.entries;
        t.cache_bytes = held.bytes;
        t.cache_evictions = held.evictions;
        t
    }

    /// Purges the cache (one for all workers) through the first worker
    /// that takes it: how many entries went, `None` when no worker
    /// answered in time.
    pub(crate) fn purge(&self, scope: Purge) -> Option<usize> {
        for link in &self.0.links {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let msg = CacheMsg {
                scope: scope.clone(),
                reply: tx,
            };
            if link.cache_tx.send_timeout(msg, ACK_TIMEOUT).is_err() {
                continue;
            }
            link.wake.notify(1);
            if let Ok(removed) = rx.recv_timeout(ACK_TIMEOUT) {
                return Some(removed);
            }
        }
        None
    }

    /// Per-worker counters, in worker order.
    pub(crate) fn worker_stats(&self) -> Vec<Arc<WorkerStats>> {
        self.0.links.iter().map(|l| l.stats.clone()).collect()
    }

    /// Reopens the access log's file (SIGUSR1, `POST /logs/reopen`), for
    /// log rotation: `Ok(true)` once the writer writes to a file opened
    /// anew at the configured path, `Ok(false)` when the log is off or
    /// goes to standard output.
    pub fn reopen_access_log(&self) -> Result<bool, String> {
        self.0.log.reopen()
    }

    /// Writes every queued access-log record and stops the writer.
    pub(crate) fn stop_access_log(&self) {
        self.0.log.stop();
    }

    /// Stops the active health checks and the resolver (at shutdown).
    pub(crate) fn stop_background(&self) {
        self.0.health.stop();
        self.0.names.stop();
    }

    /// Has the access-log writer write what is queued and end, without
    /// waiting for it.
    pub(crate) fn signal_access_log_stop(&self) {
        self.0.log.signal_stop();
    }

    pub fn reload_stats(&self) -> ReloadStats {
        self.lock().stats.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still
        // consistent between reloads: keep going.
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates `src` and, when it is good, makes it the running config.
    pub fn reload_source(&self, src: &str, format: Format) -> Result<Reloaded, ReloadError> {
        let parsed = match format {
            Format::Toml => Config::from_toml_str(src),
            Format::Json => Config::from_json_str(src),
        };
        match parsed {
            Ok(config) => self.reload(config),
            Err(errors) => Err(self.failed(ReloadError::Invalid(errors))),
        }
    }

    /// Re-reads the config file given at start.
    pub fn reload_file(&self) -> Result<Reloaded, ReloadError> {
        let Some(path) = self.0.file.get() else {
            return Err(self.failed(ReloadError::NoFile));
        };
        match Config::from_file(path) {
            Ok(config) => self.reload(config),
            Err(errors) => Err(self.failed(ReloadError::Invalid(errors))),
        }
    }

    /// Checks a config as a reload would, without applying it: validation,
    /// the admin token rule against the running admin address, and whether
    /// new listener addresses are free.
    pub(crate) fn check(&self, config: &Config) -> Result<Vec<&'static str>, ReloadError> {
        let _serial = self.serial();
        let running = self.snapshot();
        check_admin(&running.config, config)?;
        // Key material (PEM, JWKS files, password hashes) loads as it would.
        Snapshot::compile(config.clone(), 0, None, self.0.links.len(), &running.names)
            .map_err(ReloadError::Invalid)?;
        let bound = self.lock().listeners.clone();
        for (i, l) in config.listeners.iter().enumerate() {
            let ours = bound.iter().any(|b| overlaps(b.actual, l.address));
            if !bound.iter().any(|b| b.configured == l.address) && !ours {
                probe(l.address).map_err(|source| listen_error(i, l.address, source))?;
            }
        }
        Ok(restart_required(&running, config))
    }

    /// Makes a validated config the running one.
    pub(crate) fn reload(&self, mut config: Config) -> Result<Reloaded, ReloadError> {
        let _serial = self.serial();
        if self.is_draining() {
            return Err(self.failed(ReloadError::Draining));
        }
        let running = self.snapshot();
        if let Err(e) = check_admin(&running.config, &config) {
            return Err(self.failed(e));
        }
        let restart = restart_required(&running, &config);
        // Settings bound at start keep their running values, so the
        // effective config shows what is really in force.
        config.workers = running.config.workers;
        config.driver = running.config.driver;
        config.connection_balance = running.config.connection_balance;
        config.admin.enabled = running.config.admin.enabled;
        config.admin.address = running.config.admin.address;
        if let Some(sinks) = &running.log_sinks {
            config.access_log.queue = sinks.capacity();
        }
        let log_output = match open_log(&running.config, &config) {
            Ok(output) => output,
            Err(e) => return Err(self.failed(e)),
        };

        // Bind every new address on every worker before changing anything.
        let n = self.0.links.len();
        let mut add: Vec<Vec<(SocketAddr, std::net::TcpListener)>> =
            (0..n).map(|_| Vec::new()).collect();
        let previous = self.lock().listeners.clone();
        let mut listeners = Vec::with_capacity(config.listeners.len());
        let mut added = Vec::new();
        for (i, l) in config.listeners.iter().enumerate() {
            if let Some(b) = previous.iter().find(|b| b.configured == l.address) {
                listeners.push(*b);
                continue;
            }
            let ours: Vec<SocketAddr> = previous
                .iter()
                .chain(&listeners)
                .map(|b| b.actual)
                .collect();
            match bind_all(l.address, &self.0.steer, &ours) {
                Ok((actual, sockets)) => {
                    for (w, s) in add.iter_mut().zip(sockets) {
                        w.push((l.address, s));
                    }
                    listeners.push(Bound {
                        configured: l.address,
                        actual,
                    });
                    added.push(actual);
                }
                Err(source) => return Err(self.failed(listen_error(i, l.address, source))),
            }
        }
        let removed: Vec<Bound> = previous
            .iter()
            .filter(|b| !config.listeners.iter().any(|l| l.address == b.configured))
            .copied()
            .collect();

        // Publish. From here on the reload has happened: every worker is
        // sent the new generation, and one that cannot take it is reported
        // as lagging (propagation `None`), not as a failed reload.
        let generation = running.generation + 1;
        let names = match self.0.names.prepare(&config, &running.config) {
            Ok(names) => names,
            Err(errors) => return Err(self.failed(ReloadError::Invalid(errors))),
        };
        let snapshot = match Snapshot::compile(config, generation, Some(&running), n, &names) {
            Ok(s) => Arc::new(s),
            Err(errors) => return Err(self.failed(ReloadError::Invalid(errors))),
        };
        self.lock().listeners = listeners;
        let propagation = self.publish(&snapshot, log_output, add, &removed);
        let mut state = self.lock();
        state.stats.succeeded += 1;
        state.stats.last_success = Some(std::time::SystemTime::now());
        if let Some(p) = propagation {
            state.stats.propagation_sum += p;
            state.stats.propagation_count += 1;
            if state.propagation.len() == PROPAGATION_WINDOW {
                state.propagation.pop_front();
            }
            state.propagation.push_back(p);
            state.stats.propagation = percentiles(&state.propagation);
            state.stats.propagation_samples = state.propagation.len();
        }
        drop(state);
        tracing::info!(
            generation,
            propagation_us = propagation.map(|p| p.as_micros() as u64),
            "config reloaded"
        );
        for field in &restart {
            tracing::warn!(field, "changed setting takes effect after a restart");
        }
        let warnings: Vec<String> = snapshot
            .config
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect();
        for w in &snapshot.config.warnings {
            tracing::warn!(path = %w.path, "{}", w.message);
        }
        Ok(Reloaded {
            generation,
            propagation,
            restart_required: restart,
            warnings,
            listeners_added: added,
            listeners_removed: removed.iter().map(|b| b.actual).collect(),
        })
    }

    /// Publishes `snapshot`: the access-log writer learns of it before
    /// any worker logs a request of it, then the health checker and every
    /// worker (with the listeners each adds and removes); the propagation
    /// time, `None` when some worker had not applied it in time.
    fn publish(
        &self,
        snapshot: &Arc<Snapshot>,
        log_output: Option<Output>,
        add: Vec<Vec<(SocketAddr, std::net::TcpListener)>>,
        removed: &[Bound],
    ) -> Option<Duration> {
        let generation = snapshot.generation;
        self.0.log.apply(snapshot.clone(), log_output);
        let published = self.0.started.elapsed();
        self.0.snapshot.store(snapshot.clone());
        snapshot.cache.prune();
        self.0.health.apply(health::plans(snapshot));
        let mut add = add.into_iter();
        for (i, link) in self.0.links.iter().enumerate() {
            let cmd = Cmd {
                snapshot: snapshot.clone(),
                add: add.next().unwrap_or_default(),
                remove: removed.iter().map(|b| b.configured).collect(),
            };
            if link.tx.try_send(cmd).is_err() {
                tracing::error!(worker = i, generation, "worker not taking reloads");
            }
            link.wake.notify(1);
        }
        self.wait_applied(generation, published)
    }

    /// What the upstreams' server names resolve to changed: the running
    /// config is published again with the new addresses (a new
    /// generation; pools, health and counters of the addresses that stay
    /// are kept, those that went drain).
    pub(crate) fn republish(&self, resolved: Resolved) {
        let _serial = self.serial();
        if self.is_draining() {
            return;
        }
        let running = self.snapshot();
        if running.names.resolved == resolved {
            return;
        }
        let names = Names {
            resolved,
            refresh: running.names.refresh.clone(),
        };
        let generation = running.generation + 1;
        let n = self.0.links.len();
        match Snapshot::compile(
            running.config.clone(),
            generation,
            Some(&running),
            n,
            &names,
        ) {
            Ok(s) => {
                let snapshot = Arc::new(s);
                let propagation = self.publish(&snapshot, None, Vec::new(), &[]);
                self.lock().stats.address_changes += 1;
                tracing::info!(
                    generation,
                    propagation_us = propagation.map(|p| p.as_micros() as u64),
                    "upstream server addresses changed"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "upstream addresses changed but the config no longer compiles; keeping the running one")
            }
        }
    }

    /// Serializes reloads (and dry runs, which must see a stable listener
    /// set). Held across the wait for acknowledgements; the state lock is
    /// not, so status reads never wait on a reload.
    fn serial(&self) -> MutexGuard<'_, ()> {
        self.0.serial.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every worker runs `generation`; the propagation time.
    fn wait_applied(&self, generation: u64, published: Duration) -> Option<Duration> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            let listener = self.0.acked.listen();
            let done = self
                .0
                .links
                .iter()
                .all(|l| l.applied.load(Ordering::Acquire) >= generation);
            if done {
                let last = self
                    .0
                    .links
                    .iter()
                    .map(|l| l.applied_at.load(Ordering::Acquire))
                    .max()
                    .unwrap_or(0);
                return Some(Duration::from_nanos(last).saturating_sub(published));
            }
            listener.wait_deadline(deadline)?;
        }
    }

    fn failed(&self, e: ReloadError) -> ReloadError {
        let mut state = self.lock();
        state.stats.failed += 1;
        state.stats.last_error = Some(e.to_string());
        drop(state);
        tracing::error!(error = %e, "reload rejected; the running config stays");
        e
    }
}

fn listen_error(index: usize, address: SocketAddr, source: std::io::Error) -> ReloadError {
    ReloadError::Listen {
        path: format!("listeners[{index}].address"),
        address,
        source,
    }
}

/// The admin listener keeps its running address across reloads, so the
/// rule "no token, loopback only" must hold for that address, not only for
/// the one the new file names: a reload must not drop the token of an
/// admin API that listens publicly.
fn check_admin(running: &Config, next: &Config) -> Result<(), ReloadError> {
    let admin = &running.admin;
    if admin.enabled && next.admin.token.is_none() && !admin.address.ip().is_loopback() {
        return Err(ReloadError::Invalid(ConfigErrors(vec![ConfigError {
            path: "admin.token".into(),
            line: 0,
            column: 0,
            message: format!(
                "the running admin API listens on {} (an address change needs a restart), \
                 so it keeps needing a token",
                admin.address
            ),
        }])));
    }
    Ok(())
}

/// The access log's output for a reload from `running` to `next`: opened
/// when the log is turned on or its path changes (a path that cannot be
/// opened refuses the reload), `None` when the writer keeps what it has.
fn open_log(running: &Config, next: &Config) -> Result<Option<Output>, ReloadError> {
    let (was, will) = (&running.access_log, &next.access_log);
    if !will.enabled || (was.enabled && was.path == will.path) {
        return Ok(None);
    }
    Output::open(&will.path)
        .map(Some)
        .map_err(|e| log_path_error(&will.path, &e))
}

/// A log path that cannot be opened, as a config error.
pub(crate) fn log_path_error(path: &ringway_config::LogTarget, e: &std::io::Error) -> ReloadError {
    let shown = match path {
        ringway_config::LogTarget::Stdout => "-".into(),
        ringway_config::LogTarget::File(p) => p.display().to_string(),
    };
    ReloadError::Invalid(ConfigErrors(vec![ConfigError {
        path: "access-log.path".into(),
        line: 0,
        column: 0,
        message: format!("cannot open {shown} for appending: {e}"),
    }]))
}

/// Settings that only take effect at start (or, for the access log's
/// queue, once the log has been on).
fn restart_required(running: &Snapshot, next: &Config) -> Vec<&'static str> {
    let running_sinks = running.log_sinks.as_ref();
    let running = &running.config;
    let mut fields = Vec::new();
    if running_sinks.is_some_and(|s| s.capacity() != next.access_log.queue) {
        fields.push("access-log.queue");
    }
    if running.workers != next.workers {
        fields.push("workers");
    }
    if running.driver != next.driver {
        fields.push("driver");
    }
    if running.connection_balance != next.connection_balance {
        fields.push("connection-balance");
    }
    if running.admin.enabled != next.admin.enabled {
        fields.push("admin.enabled");
    }
    if running.admin.address != next.admin.address {
        fields.push("admin.address");
    }
    if running.resolver != next.resolver {
        fields.push("resolver");
    }
    fields
}

fn percentiles(samples: &VecDeque<Duration>) -> Option<(Duration, Duration, Duration)> {
    let mut sorted: Vec<Duration> = samples.iter().copied().collect();
    sorted.sort_unstable();
    let at =
        |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
    let max = *sorted.last()?;
    Some((at(0.5), at(0.99), max))
}

/// Binds `addr` once per worker with SO_REUSEPORT, each socket preferring
/// its worker's CPU when `steer` says so. Port 0 resolves to one port that
/// every worker then shares.
///
/// `ours` are the addresses this gateway already listens on: an address
/// that overlaps one of them (same port, same or wildcard IP) is not probed,
/// so a reload may move a listener from `0.0.0.0:8080` to `127.0.0.1:8080`.
pub(crate) fn bind_all(
    addr: SocketAddr,
    steer: &Steer,
    ours: &[SocketAddr],
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    if !ours.iter().any(|o| overlaps(*o, addr)) {
        probe(addr)?;
    }
    let mut address = addr;
    let workers = steer.workers();
    let mut sockets = Vec::with_capacity(workers);
    for worker in 0..workers {
        let s = bind_reuseport(address, steer.cpu(worker))?;
        if address.port() == 0 {
            address = s.local_addr()?;
        }
        sockets.push(s);
    }
    Ok((address, sockets))
}

fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Is `addr` free? Binds (without listening) and closes a socket without
/// SO_REUSEPORT: with it, a bind would quietly join the listening group of
/// another process of the same user (a second ringway started on the same
/// config, say) instead of failing. Port 0 is always free.
fn probe(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    if addr.port() == 0 {
        return Ok(());
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Only ignores connections in TIME_WAIT; a listening socket still
    // makes the bind fail.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())
}

/// With `cpu`, the socket takes the connections the kernel receives on
/// that CPU (SO_INCOMING_CPU: since Linux 6.2 the SO_REUSEPORT group picks
/// the socket whose CPU matches, before its hash).
fn bind_reuseport(addr: SocketAddr, cpu: Option<usize>) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if let Some(cpu) = cpu {
        socket.set_cpu_affinity(cpu)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The resolver of upstream server names: started when a config first
/// names a server (a config without names costs no thread), told of each
/// config's names, and publishing a new generation when their addresses
/// change. Its `[resolver]` settings are read once, at start.
pub(crate) struct NameService {
    settings: ResolverSettings,
    resolver: Mutex<Option<Arc<Resolver>>>,
    /// Where address changes go; set once the control plane exists.
    plane: Arc<OnceLock<Weak<Plane>>>,
}

impl NameService {
    pub(crate) fn new(config: &Config) -> NameService {
        let r = &config.resolver;
        NameService {
            settings: ResolverSettings {
                nameservers: r.nameservers.clone(),
                timeout: r.timeout,
                hosts_file: r.hosts_file.clone(),
            },
            resolver: Mutex::new(None),
            plane: Arc::new(OnceLock::new()),
        }
    }

    fn attach(&self, handle: &Handle) {
        let _ = self.plane.set(Arc::downgrade(&handle.0));
    }

    /// Resolves the names `config` has that are new (not in `running`, or
    /// never resolved), waiting up to the resolver's timeout, and watches
    /// all of them from now on. A name of a `resolve = "required"`
    /// upstream that does not resolve is an error at its path; another
    /// only warns (its upstream has no servers from it until it resolves).
    pub(crate) fn prepare(&self, config: &Config, running: &Config) -> Result<Names, ConfigErrors> {
        let wanted = names(config);
        let mut slot = self.resolver.lock().unwrap_or_else(|p| p.into_inner());
        if wanted.is_empty() && slot.is_none() {
            return Ok(Names::default());
        }
        let resolver = match &*slot {
            Some(r) => r.clone(),
            None => {
                let plane = self.plane.clone();
                let started = Resolver::start(self.settings.clone(), move |resolved| {
                    if let Some(p) = plane.get().and_then(Weak::upgrade) {
                        Handle(p).republish(resolved);
                    }
                });
                let r = Arc::new(started.map_err(|e| {
                    ConfigErrors(vec![config_error(
                        "resolver",
                        format!("cannot start the resolver thread: {e}"),
                    )])
                })?);
                *slot = Some(r.clone());
                r
            }
        };
        drop(slot);
        let known = resolver.snapshot();
        let fresh: Vec<(String, u16)> = wanted
            .iter()
            .filter(|(h, p, ..)| {
                let seen = running.upstreams.iter().any(|u| {
                    u.servers.iter().any(|s| {
                        matches!(&s.address, ringway_config::ServerAddress::Name { host, port } if host == h && port == p)
                    })
                });
                !seen || known.get(&(h.clone(), *p)).is_none_or(Vec::is_empty)
            })
            .map(|(h, p, ..)| (h.clone(), *p))
            .collect();
        let mut errors = Vec::new();
        if !fresh.is_empty() {
            if let Err(failed) = resolver.resolve_all_now(&fresh) {
                for ((host, port), why) in failed {
                    let required = wanted
                        .iter()
                        .any(|(h, p, _, req)| *h == host && *p == port && *req);
                    match server_path(config, &host, port) {
                        Some(path) if required => errors.push(config_error(
                            &path,
                            format!("{host}:{port} does not resolve ({why}) and its upstream has resolve = \"required\""),
                        )),
                        _ => tracing::warn!(name = %format!("{host}:{port}"), error = %why, "server name does not resolve; its upstream has no servers from it until it does"),
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        resolver.watch(
            wanted
                .iter()
                .map(|(h, p, every, _)| (h.clone(), *p, *every))
                .collect(),
        );
        Ok(Names {
            resolved: resolver.snapshot(),
            refresh: Some(resolver as Arc<dyn crate::upstream::Refresh>),
        })
    }

    fn stop(&self) {
        let taken = self
            .resolver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(r) = taken {
            r.stop();
        }
    }
}

/// The path of the first `servers` entry naming `host:port` in a
/// required upstream, else in any.
fn server_path(config: &Config, host: &str, port: u16) -> Option<String> {
    let mut found = None;
    for (i, up) in config.upstreams.iter().enumerate() {
        for (j, s) in up.servers.iter().enumerate() {
            if matches!(&s.address, ringway_config::ServerAddress::Name { host: h, port: p } if h == host && *p == port)
            {
                let path = format!("upstreams[{i}].servers[{j}]");
                if up.resolve == ringway_config::Resolve::Required {
                    return Some(path);
                }
                found.get_or_insert(path);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_window() {
        let samples: VecDeque<Duration> = (1..=100).map(Duration::from_micros).collect();
        let (p50, p99, max) = percentiles(&samples).expect("samples");
        assert_eq!(p50, Duration::from_micros(50));
        assert_eq!(p99, Duration::from_micros(99));
        assert_eq!(max, Duration::from_micros(100));
        assert!(percentiles(&VecDeque::new()).is_none());
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(release_before("6.1.0-18-amd64", 6, 2));
        assert!(release_before("5.15.0", 6, 2));
        assert!(!release_before("6.2.0", 6, 2));
        assert!(!release_before("6.18.44-fc-v1252", 6, 2));
        assert!(!release_before("7.0", 6, 2));
        assert!(!release_before("weird", 6, 2));
    }
}
