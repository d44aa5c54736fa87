//! Upstream servers named `host:port` (docker-compose and Kubernetes
//! service names): the thread "ringway-resolve" resolves every watched
//! name, again every resolve-interval and early when asked, and reports
//! the whole table whenever some name's address set changes. Each
//! address a name resolves to is one server.
//!
//! Resolution never runs on a worker. hickory-resolver needs a tokio
//! runtime; the thread runs a current-thread one of its own, so tokio never
//! meets monoio, and lookups of different names overlap on it. Answers are
//! not cached: each round asks the name servers again, so the interval
//! (30 s by default), not the record's TTL, bounds how stale an address
//! is, and an early refresh after connect failures sees what DNS says now.
//! A hundred names at 30 s cost about seven queries a second.
//!
//! Entries of the hosts file win over DNS for the names they list (the
//! file is read again when its modification time or size changes).
//! Addresses are sorted, IPv4 first, without duplicates, so an unchanged
//! answer in another order is no change. A name that stops resolving
//! keeps its last good addresses (one warning per failure streak) and is
//! retried every [`FAILED_RETRY`] at most; a name never resolved has none.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Hosts, TokioResolver};
use tokio::task::JoinSet;

/// How names are resolved: the engine's copy of `[resolver]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolverSettings {
    /// Name servers to ask; `None`: the system's (`/etc/resolv.conf`,
    /// with its search domains and ndots). Given servers get no search
    /// domains: names are asked as written.
    pub nameservers: Option<Vec<SocketAddr>>,
    /// Longest one name's resolution may take, A and AAAA together.
    pub timeout: Duration,
    /// A hosts file whose entries win over DNS; `None`: none.
    pub hosts_file: Option<PathBuf>,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        ResolverSettings {
            nameservers: None,
            timeout: Duration::from_secs(2),
            hosts_file: Some(PathBuf::from("/etc/hosts")),
        }
    }
}

/// A watched name: host (lower case) and port.
pub(crate) type Key = (String, u16);

pub(crate) use crate::upstream::Resolved;

/// Shortest time between two resolutions of a name that a refresh asks
/// for.
const REFRESH_GAP: Duration = Duration::from_secs(1);
/// Longest wait before a name that failed is tried again (its interval
/// when that is shorter).
const FAILED_RETRY: Duration = Duration::from_secs(5);
/// Refreshes queued for the thread; more are dropped (the names they
/// ask for are due soon anyway).
const REFRESH_QUEUE: usize = 1024;

/// Resolves `host` once (blocking the caller, at most `settings.timeout`):
/// its hosts-file entries if it has any, else its A and AAAA records.
/// Call it from outside any tokio runtime.
#[cfg(test)]
pub(crate) fn resolve_once(
    settings: &ResolverSettings,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let hosts = HostsFile::new(settings.hosts_file.clone()).current();
    block_on(async {
        Dns::new(settings)
            .resolve(&hosts, &host.to_ascii_lowercase(), port)
            .await
    })?
}

/// The resolver thread's handle. Dropping it stops the thread.
pub(crate) struct Resolver {
    settings: ResolverSettings,
    shared: Arc<Shared>,
    refresh: crossbeam_channel::Sender<Key>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the thread and the handle share. The schedule's lock is held only
/// to read or change the table, never across a lookup or `on_change`.
struct Shared {
    schedule: Mutex<Schedule>,
    wake: tokio::sync::Notify,
    stop: AtomicBool,
}

impl Shared {
    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        // A panic while holding the lock leaves the table whole (each
        // change is one assignment), so a poisoned lock is still usable.
        self.schedule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Resolver {
    /// Starts the thread "ringway-resolve" with no names watched.
    /// `on_change` runs on that thread, with the complete table, each time
    /// a resolution changes some name's addresses. It must not block for
    /// long (it delays the next round) and must not call
    /// [`Resolver::resolve_all_now`] (which needs a thread outside tokio).
    pub(crate) fn start(
        settings: ResolverSettings,
        on_change: impl Fn(Resolved) + Send + 'static,
    ) -> io::Result<Resolver> {
        let runtime = runtime()?;
        let shared = Arc::new(Shared {
            schedule: Mutex::new(Schedule::default()),
            wake: tokio::sync::Notify::new(),
            stop: AtomicBool::new(false),
        });
        let (refresh, refreshes) = crossbeam_channel::bounded(REFRESH_QUEUE);
        let thread = std::thread::Builder::new()
            .name("ringway-resolve".into())
            .spawn({
                let shared = shared.clone();
                let settings = settings.clone();
                move || runtime.block_on(run(settings, shared, refreshes, on_change))
            })?;
        Ok(Resolver {
            settings,
            shared,
            refresh,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Replaces the watched names: (host, port, resolve-interval). Names
    /// kept from the last set keep their addresses; new ones start with
    /// what [`Resolver::resolve_all_now`] found for them, or with none and
    /// are resolved at once. Takes effect before it returns: a snapshot
    /// taken right after shows the new set.
    pub(crate) fn watch(&self, names: Vec<(String, u16, Duration)>) {
        self.shared.schedule().watch(names, Instant::now());
        self.shared.wake.notify_one();
    }

    /// Asks for an early resolution of a watched name (after connect
    /// failures, say). Never blocks; at most one resolution a second per
    /// name, later asks within that second are folded into one.
    pub(crate) fn refresh(&self, host: &str, port: u16) {
        if self
            .refresh
            .try_send((host.to_ascii_lowercase(), port))
            .is_ok()
        {
            self.shared.wake.notify_one();
        }
    }

    /// The watched names and their current addresses (none for a name
    /// never resolved).
    pub(crate) fn snapshot(&self) -> Resolved {
        self.shared.schedule().resolved()
    }

    /// Resolves every name now, concurrently, blocking the caller for the
    /// timeout at most; for start and reload, where a name that must
    /// resolve fails the whole config. What resolved is remembered either
    /// way: the next [`Resolver::watch`] starts those names from it. Call
    /// it from outside any tokio runtime (not from `on_change`).
    pub(crate) fn resolve_all_now(
        &self,
        names: &[(String, u16)],
    ) -> Result<Resolved, Vec<(Key, String)>> {
        let mut keys: Vec<Key> = names
            .iter()
            .map(|(h, p)| (h.to_ascii_lowercase(), *p))
            .collect();
        keys.sort();
        keys.dedup();
        let hosts = HostsFile::new(self.settings.hosts_file.clone()).current();
        let settings = &self.settings;
        let results = block_on(async {
            let dns = Dns::new(settings);
            let mut tasks = JoinSet::new();
            dns.spawn_all(&mut tasks, &hosts, keys.clone());
            let mut results = Vec::new();
            while let Some(done) = tasks.join_next().await {
                results.extend(done.ok());
            }
            results
        });
        let results = match results {
            Ok(r) => r,
            Err(e) => return Err(keys.into_iter().map(|k| (k, e.clone())).collect()),
        };
        let mut resolved = Resolved::new();
        let mut failed = Vec::new();
        for (key, result) in results {
            match result {
                Ok(addrs) => {
                    resolved.insert(key, addrs);
                }
                Err(e) => failed.push((key, e)),
            }
        }
        self.shared.schedule().prime(&resolved, Instant::now());
        self.shared.wake.notify_one();
        if failed.is_empty() {
            Ok(resolved)
        } else {
            failed.sort();
            Err(failed)
        }
    }

    /// Stops the thread (lookups under way are dropped) and waits for it.
    /// Later calls do nothing; from `on_change` it stops without waiting.
    pub(crate) fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's loop: start what is due, then wait for a wake-up, a
/// finished lookup or the next due time.
async fn run(
    settings: ResolverSettings,
    shared: Arc<Shared>,
    refreshes: crossbeam_channel::Receiver<Key>,
    on_change: impl Fn(Resolved),
) {
    let dns = Dns::new(&settings);
    let mut hosts = HostsFile::new(settings.hosts_file.clone());
    let mut tasks = JoinSet::new();
    while !shared.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let (due, next, changed) = {
            let mut schedule = shared.schedule();
            for key in refreshes.try_iter() {
                schedule.refresh(&key, now);
            }
            let due = schedule.start_due(now);
            let changed = schedule.take_changed().then(|| schedule.resolved());
            (due, schedule.next_due(), changed)
        };
        if let Some(table) = changed {
            if std::panic::catch_unwind(AssertUnwindSafe(|| on_change(table))).is_err() {
                tracing::error!("resolved-address callback panicked");
            }
        }
        if !due.is_empty() {
            dns.spawn_all(&mut tasks, &hosts.current(), due);
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shared.wake.notified() => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((key, result)) = done {
                    shared.schedule().finish(&key, result, Instant::now());
                }
            }
            () = sleep => {}
        }
    }
    tasks.abort_all();
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs `f` to completion on a runtime of its own, in this thread.
fn block_on<F: Future>(f: F) -> Result<F::Output, String> {
    let runtime = runtime().map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
    Ok(runtime.block_on(f))
}

/// Lookups under way, each giving its name and result.
type Lookups = JoinSet<(Key, Result<Vec<SocketAddr>, String>)>;

/// Asks DNS: a hickory resolver with the settings' name servers, or the
/// reason there is none (an unreadable `/etc/resolv.conf`).
#[derive(Clone)]
struct Dns {
    resolver: Result<TokioResolver, Arc<str>>,
    timeout: Duration,
}

impl Dns {
    /// Builds the resolver; call it within a tokio runtime.
    fn new(settings: &ResolverSettings) -> Dns {
        Dns {
            resolver: build(settings).map_err(Arc::from),
            timeout: settings.timeout,
        }
    }

    /// Starts resolving each name on `tasks`, concurrently.
    fn spawn_all(&self, tasks: &mut Lookups, hosts: &Arc<Hosts>, keys: Vec<Key>) {
        for key in keys {
            let dns = self.clone();
            let hosts = hosts.clone();
            tasks.spawn(async move {
                let result = dns.resolve(&hosts, &key.0, key.1).await;
                (key, result)
            });
        }
    }

    /// The addresses of `host` (lower case) with `port`: hosts-file
    /// entries when `hosts` lists the name, else A and AAAA records.
    async fn resolve(
        &self,
        hosts: &Hosts,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, String> {
        let name = Name::from_ascii(host).map_err(|e| format!("not a DNS name: {e}"))?;
        let mut listed = Vec::new();
        for t in [RecordType::A, RecordType::AAAA] {
            if let Some(l) = hosts.lookup_static_host(&Query::query(name.clone(), t)) {
                let ips = l.answers().iter().filter_map(|r| r.data.ip_addr());
                listed.extend(ips.map(|ip| SocketAddr::new(ip, port)));
            }
        }
        if !listed.is_empty() {
            return Ok(sorted(listed));
        }
        let resolver = self.resolver.as_ref().map_err(|e| e.to_string())?;
        let found = tokio::time::timeout(self.timeout, resolver.lookup_ip(name))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
            .map_err(|e| e.to_string())?;
        let addrs = found
            .iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect::<Vec<_>>();
        if addrs.is_empty() {
            return Err("no addresses".into());
        }
        Ok(sorted(addrs))
    }
}

fn sorted(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    // `SocketAddr` orders every V4 before every V6.
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

/// A hickory resolver for `settings`, without its own hosts file (the
/// thread reads that) and without a cache (see the module header).
fn build(settings: &ResolverSettings) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match &settings.nameservers {
        None => TokioResolver::builder(provider)
            .map_err(|e| format!("cannot read the system's DNS settings: {e}"))?,
        Some(servers) => {
            let servers = servers
                .iter()
                .map(|addr| {
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut server.connections {
                        c.port = addr.port();
                    }
                    server
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        }
    };
    let opts = builder.options_mut();
    opts.timeout = settings.timeout;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    builder
        .build()
        .map_err(|e| format!("cannot start a DNS resolver: {e}"))
}

/// The hosts file, read again when its modification time or size changes.
struct HostsFile {
    path: Option<PathBuf>,
    stamp: Option<(SystemTime, u64)>,
    table: Arc<Hosts>,
}

impl HostsFile {
    fn new(path: Option<PathBuf>) -> HostsFile {
        HostsFile {
            path,
            stamp: None,
            table: Arc::new(Hosts::default()),
        }
    }

    fn current(&mut self) -> Arc<Hosts> {
        let Some(path) = &self.path else {
            return self.table.clone();
        };
        let stamp = std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        // A missing file is looked for again each time.
        if stamp.is_none() || stamp != self.stamp {
            self.table = Arc::new(read_hosts(path));
            self.stamp = stamp;
        }
        self.table.clone()
    }
}

/// The entries of a hosts file; none when it cannot be read.
fn read_hosts(path: &Path) -> Hosts {
    let mut hosts = Hosts::default();
    let read = std::fs::File::open(path).and_then(|f| hosts.read_hosts_conf(f));
    if let Err(e) = read {
        tracing::debug!(file = %path.display(), error = %e, "hosts file unreadable; DNS only");
        return Hosts::default();
    }
    hosts
}

/// One watched name.
#[derive(Debug)]
struct Entry {
    interval: Duration,
    addrs: Vec<SocketAddr>,
    /// When the next resolution starts (unless one is under way).
    due: Instant,
    /// When the last resolution started.
    started: Option<Instant>,
    in_flight: bool,
    /// In a failure streak (warned once).
    failing: bool,
}

/// When each name is resolved next and what it resolved to. Pure: every
/// method takes the time, so tests move the clock.
#[derive(Debug, Default)]
struct Schedule {
    names: BTreeMap<Key, Entry>,
    /// Resolved before being watched; used by the next `watch`.
    primed: Resolved,
    /// Some name's addresses changed since the last `take_changed`.
    changed: bool,
}

impl Schedule {
    fn watch(&mut self, names: Vec<(String, u16, Duration)>, now: Instant) {
        let mut wanted: BTreeMap<Key, Duration> = BTreeMap::new();
        for (host, port, interval) in names {
            let i = wanted
                .entry((host.to_ascii_lowercase(), port))
                .or_insert(interval);
            *i = (*i).min(interval);
        }
        self.names.retain(|k, _| wanted.contains_key(k));
        for (key, interval) in wanted {
            if let Some(e) = self.names.get_mut(&key) {
                e.interval = interval;
                e.due = e.due.min(e.started.unwrap_or(now) + interval);
                continue;
            }
            let entry = match self.primed.remove(&key) {
                Some(addrs) => Entry {
                    interval,
                    addrs,
                    due: now + interval,
                    started: Some(now),
                    in_flight: false,
                    failing: false,
                },
                None => Entry {
                    interval,
                    addrs: Vec::new(),
                    due: now,
                    started: None,
                    in_flight: false,
                    failing: false,
                },
            };
            self.names.insert(key, entry);
        }
        self.primed.clear();
    }

    /// Takes addresses resolved outside the thread.
    fn prime(&mut self, resolved: &Resolved, now: Instant) {
        for (key, addrs) in resolved {
            match self.names.get_mut(key) {
                Some(e) => {
                    e.started = Some(now);
                    self.changed |= succeed(key, e, addrs.clone(), now);
                }
                None => {
                    self.primed.insert(key.clone(), addrs.clone());
                }
            }
        }
    }

    fn refresh(&mut self, key: &Key, now: Instant) {
        let Some(e) = self.names.get_mut(key) else {
            return;
        };
        if e.in_flight {
            return;
        }
        let earliest = e.started.map_or(now, |s| s + REFRESH_GAP).max(now);
        e.due = e.due.min(earliest);
    }

    /// The names whose resolution starts now.
    fn start_due(&mut self, now: Instant) -> Vec<Key> {
        let mut due = Vec::new();
        for (key, e) in &mut self.names {
            if !e.in_flight && e.due <= now {
                e.in_flight = true;
                e.started = Some(now);
                due.push(key.clone());
            }
        }
        due
    }

    fn finish(&mut self, key: &Key, result: Result<Vec<SocketAddr>, String>, now: Instant) {
        let Some(e) = self.names.get_mut(key) else {
            return;
        };
        e.in_flight = false;
        match result {
            Ok(addrs) => self.changed |= succeed(key, e, addrs, now),
            Err(error) => {
                if !e.failing {
                    tracing::warn!(
                        server = %format_args!("{}:{}", key.0, key.1),
                        error,
                        kept = e.addrs.len(),
                        "upstream server name does not resolve; keeping its last addresses"
                    );
                }
                e.failing = true;
                e.due = now + e.interval.min(FAILED_RETRY);
            }
        }
    }

    /// When the next resolution is due (none under way counts).
    fn next_due(&self) -> Option<Instant> {
        self.names
            .values()
            .filter(|e| !e.in_flight)
            .map(|e| e.due)
            .min()
    }

    fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn resolved(&self) -> Resolved {
        self.names
            .iter()
            .map(|(k, e)| (k.clone(), e.addrs.clone()))
            .collect()
    }
}

/// Records a good answer; true when the address set changed.
fn succeed(key: &Key, e: &mut Entry, addrs: Vec<SocketAddr>, now: Instant) -> bool {
    if e.failing {
        tracing::info!(server = %format_args!("{}:{}", key.0, key.1), "upstream server name resolves again");
        e.failing = false;
    }
    e.due = now + e.interval;
    if e.addrs == addrs {
        return false;
    }
    tracing::info!(
        server = %format_args!("{}:{}", key.0, key.1),
        addresses = ?addrs,
        "upstream server name resolves to new addresses"
    );
    e.addrs = addrs;
    true
}

#[cfg(test)]
#[path = "../../tests/support/dns.rs"]
mod test_dns;

impl crate::upstream::Refresh for Resolver {
    fn refresh(&self, host: &str, port: u16) {
        Resolver::refresh(self, host, port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use crossbeam_channel::Receiver;
    use test_dns::DnsServer;

    const WAIT: Duration = Duration::from_secs(10);
    /// Resolve-intervals: a round every few milliseconds, or none during a test.
    const OFTEN: Duration = Duration::from_millis(20);
    const RARELY: Duration = Duration::from_secs(3600);

    fn settings(dns: &DnsServer) -> ResolverSettings {
        ResolverSettings {
            nameservers: Some(vec![dns.addr]),
            timeout: Duration::from_secs(2),
            hosts_file: None,
        }
    }

    fn key(host: &str, port: u16) -> Key {
        (host.to_string(), port)
    }

    fn addrs(ips: &[&str], port: u16) -> Vec<SocketAddr> {
        ips.iter()
            .map(|ip| SocketAddr::new(ip.parse().expect("an IP"), port))
            .collect()
    }

    fn v4(ips: &[&str]) -> Vec<Ipv4Addr> {
        ips.iter().map(|ip| ip.parse().expect("an IPv4")).collect()
    }

    /// Polls `done` until it holds, for [`WAIT`] at most.
    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + WAIT;
        while !done() {
            assert!(Instant::now() < until, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A resolver whose `on_change` tables arrive on the receiver.
    fn start(settings: ResolverSettings) -> (Resolver, Receiver<Resolved>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let resolver = Resolver::start(settings, move |table| {
            let _ = tx.send(table);
        })
        .expect("the resolver starts");
        (resolver, rx)
    }

    /// A name server answering `host` with `ips`, a resolver watching
    /// the name, and the first table it reported.
    fn watch_one(
        host: &str,
        ips: &[&str],
        port: u16,
        interval: Duration,
    ) -> (DnsServer, Resolver, Receiver<Resolved>, Resolved) {
        let dns = DnsServer::start();
        dns.set(host, v4(ips));
        let (resolver, changes) = start(settings(&dns));
        resolver.watch(vec![(host.into(), port, interval)]);
        let first = changes.recv_timeout(WAIT).expect("a first table");
        (dns, resolver, changes, first)
    }

    fn temp_hosts(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("ringway-hosts-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write a hosts file");
        path
    }

    #[test]
    fn every_address_of_a_name_and_each_change_of_the_set() {
        let ips = ["127.0.0.12", "127.0.0.11"];
        let (dns, resolver, changes, first) = watch_one("App.Ringway.Test", &ips, 8080, OFTEN);
        let expected = Resolved::from([(
            key("app.ringway.test", 8080),
            addrs(&["127.0.0.11", "127.0.0.12"], 8080),
        )]);
        assert_eq!(first, expected);
        assert_eq!(resolver.snapshot(), expected);

        dns.set(
            "app.ringway.test",
            v4(&["127.0.0.13", "127.0.0.11", "127.0.0.12"]),
        );
        let second = changes.recv_timeout(WAIT).expect("a second table");
        assert_eq!(
            second,
            Resolved::from([(
                key("app.ringway.test", 8080),
                addrs(&["127.0.0.11", "127.0.0.12", "127.0.0.13"], 8080),
            )])
        );
        resolver.stop();
    }

    #[test]
    fn a_failing_name_keeps_its_last_addresses() {
        let (dns, resolver, changes, first) =
            watch_one("db.ringway.test", &["127.0.0.21"], 5432, OFTEN);

        dns.remove("db.ringway.test");
        // Two more rounds asked (A and AAAA each): the first of them has
        // been answered and taken in by the time the second is asked.
        let asked = dns.queries("db.ringway.test");
        wait_for("two failed rounds", || {
            dns.queries("db.ringway.test") >= asked + 4
        });
        assert_eq!(resolver.snapshot(), first);
        assert!(changes.try_recv().is_err(), "a failure is no change");

        dns.set("db.ringway.test", v4(&["127.0.0.22"]));
        let back = changes.recv_timeout(WAIT).expect("a table after recovery");
        assert_eq!(
            back[&key("db.ringway.test", 5432)],
            addrs(&["127.0.0.22"], 5432)
        );
    }

    #[test]
    fn a_name_never_resolved_has_no_addresses() {
        let dns = DnsServer::start();
        let (resolver, changes) = start(settings(&dns));
        resolver.watch(vec![("missing.ringway.test".into(), 80, OFTEN)]);
        let empty = Resolved::from([(key("missing.ringway.test", 80), Vec::new())]);
        assert_eq!(resolver.snapshot(), empty);
        wait_for("two failed rounds", || {
            dns.queries("missing.ringway.test") >= 4
        });
        assert_eq!(resolver.snapshot(), empty);
        assert!(changes.try_recv().is_err());
    }

    #[test]
    fn hosts_file_entries_win_and_ipv4_comes_first() {
        let dns = DnsServer::start();
        dns.set("web.ringway.test", v4(&["127.0.0.99"]));
        dns.set("api.ringway.test", v4(&["127.0.0.32"]));
        let path = temp_hosts(
            "win",
            "# test\n::1 web.ringway.test\n127.0.0.31 web.ringway.test other\n",
        );
        let with_hosts = ResolverSettings {
            hosts_file: Some(path.clone()),
            ..settings(&dns)
        };
        assert_eq!(
            resolve_once(&with_hosts, "web.ringway.test", 80),
            Ok(addrs(&["127.0.0.31", "::1"], 80))
        );
        assert_eq!(dns.queries("web.ringway.test"), 0, "DNS was not asked");
        // Names the file does not list go to DNS.
        assert_eq!(
            resolve_once(&with_hosts, "api.ringway.test", 80),
            Ok(addrs(&["127.0.0.32"], 80))
        );
        // Without the file, DNS answers for the name.
        assert_eq!(
            resolve_once(&settings(&dns), "web.ringway.test", 80),
            Ok(addrs(&["127.0.0.99"], 80))
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn resolve_once_reports_a_name_that_does_not_resolve() {
        let dns = DnsServer::start();
        let failed = resolve_once(&settings(&dns), "nothing.ringway.test", 80);
        assert!(failed.is_err(), "{failed:?}");
        assert!(dns.queries("nothing.ringway.test") > 0);
    }

    #[test]
    fn a_silent_name_server_fails_within_the_timeout() {
        // Bound and never read: queries go unanswered.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let settings = ResolverSettings {
            nameservers: Some(vec![silent.local_addr().expect("its address")]),
            timeout: Duration::from_millis(200),
            hosts_file: None,
        };
        let (resolver, _changes) = start(settings);
        let failed = resolver
            .resolve_all_now(&[("slow.ringway.test".into(), 80)])
            .expect_err("nothing answers");
        assert_eq!(failed[0].0, key("slow.ringway.test", 80));
        assert!(failed[0].1.contains("200ms"), "{}", failed[0].1);
    }

    #[test]
    fn compose_style_names_with_underscores_resolve() {
        let dns = DnsServer::start();
        dns.set("shop_app_1", v4(&["127.0.0.61"]));
        assert_eq!(
            resolve_once(&settings(&dns), "shop_app_1", 80),
            Ok(addrs(&["127.0.0.61"], 80))
        );
    }

    #[test]
    fn the_handle_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Resolver>();
    }

    #[test]
    fn resolve_all_now_names_the_failures_and_primes_the_watch() {
        let dns = DnsServer::start();
        dns.set("a.ringway.test", v4(&["127.0.0.41"]));
        dns.set("b.ringway.test", v4(&["127.0.0.42"]));
        let (resolver, changes) = start(settings(&dns));
        let good = Resolved::from([
            (key("a.ringway.test", 80), addrs(&["127.0.0.41"], 80)),
            (key("b.ringway.test", 81), addrs(&["127.0.0.42"], 81)),
        ]);
        assert_eq!(
            resolver
                .resolve_all_now(&[("a.ringway.test".into(), 80), ("B.ringway.test".into(), 81),]),
            Ok(good)
        );

        let failed = resolver
            .resolve_all_now(&[("a.ringway.test".into(), 80), ("c.ringway.test".into(), 82)])
            .expect_err("c does not resolve");
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, key("c.ringway.test", 82));

        // Watched names start from what was just resolved: no change to
        // report, and no query until their interval passes.
        let asked = dns.queries("a.ringway.test");
        resolver.watch(vec![
            ("a.ringway.test".into(), 80, RARELY),
            ("c.ringway.test".into(), 82, OFTEN),
        ]);
        assert_eq!(
            resolver.snapshot(),
            Resolved::from([
                (key("a.ringway.test", 80), addrs(&["127.0.0.41"], 80)),
                (key("c.ringway.test", 82), Vec::new()),
            ])
        );
        let c_asked = dns.queries("c.ringway.test");
        wait_for("c asked twice more", || {
            dns.queries("c.ringway.test") >= c_asked + 4
        });
        assert_eq!(dns.queries("a.ringway.test"), asked);
        assert!(changes.try_recv().is_err());
    }

    #[test]
    fn refresh_resolves_a_name_early() {
        let (dns, resolver, changes, _) =
            watch_one("svc.ringway.test", &["127.0.0.51"], 9000, RARELY);
        dns.set("svc.ringway.test", v4(&["127.0.0.52"]));
        resolver.refresh("SVC.ringway.test", 9000);
        let table = changes.recv_timeout(WAIT).expect("a table after refresh");
        assert_eq!(
            table[&key("svc.ringway.test", 9000)],
            addrs(&["127.0.0.52"], 9000)
        );
        // Unwatched names are ignored.
        resolver.refresh("other.ringway.test", 9000);
        resolver.stop();
        resolver.stop();
        assert_eq!(dns.queries("other.ringway.test"), 0);
    }

    /// A schedule watching one name (interval 30 s) whose first
    /// resolution started at `t0` and answered.
    fn resolved_schedule(t0: Instant) -> (Schedule, Key) {
        let mut s = Schedule::default();
        let k = key("app", 80);
        s.watch(vec![("app".into(), 80, Duration::from_secs(30))], t0);
        assert_eq!(s.start_due(t0), vec![k.clone()]);
        s.finish(&k, Ok(addrs(&["127.0.0.1"], 80)), t0);
        assert!(s.take_changed());
        (s, k)
    }

    #[test]
    fn refresh_is_rate_limited_per_name() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (mut s, k) = resolved_schedule(t0);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(30)));

        // Asked 100 ms after the last start: deferred to one second after it.
        s.refresh(&k, t0 + ms(100));
        s.refresh(&k, t0 + ms(200));
        assert_eq!(s.next_due(), Some(t0 + ms(1000)));
        assert!(s.start_due(t0 + ms(999)).is_empty());
        assert_eq!(s.start_due(t0 + ms(1000)), vec![k.clone()]);
        // Under way: asks fold into it.
        s.refresh(&k, t0 + ms(1100));
        assert!(s.start_due(t0 + ms(1200)).is_empty());
        s.finish(&k, Ok(addrs(&["127.0.0.1"], 80)), t0 + ms(1300));
        assert!(!s.take_changed(), "same addresses");
        assert_eq!(s.next_due(), Some(t0 + ms(31_300)));

        // Long after the last start: at once.
        s.refresh(&k, t0 + ms(5000));
        assert_eq!(s.start_due(t0 + ms(5000)), vec![k]);
    }

    #[test]
    fn a_failure_is_retried_sooner_and_keeps_the_addresses() {
        let t0 = Instant::now();
        let (mut s, k) = resolved_schedule(t0);
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(s.start_due(t1), vec![k.clone()]);
        s.finish(&k, Err("NXDOMAIN".into()), t1);
        assert!(!s.take_changed());
        assert_eq!(s.resolved()[&k], addrs(&["127.0.0.1"], 80));
        assert_eq!(s.next_due(), Some(t1 + FAILED_RETRY));
    }

    #[test]
    fn watch_keeps_known_names_and_drops_the_rest() {
        let t0 = Instant::now();
        let (mut s, k) = resolved_schedule(t0);
        let t1 = t0 + Duration::from_secs(1);
        s.watch(
            vec![
                ("app".into(), 80, Duration::from_secs(10)),
                ("new".into(), 80, Duration::from_secs(10)),
            ],
            t1,
        );
        let table = s.resolved();
        assert_eq!(table[&k], addrs(&["127.0.0.1"], 80));
        assert_eq!(table[&key("new", 80)], Vec::new());
        // The shorter interval counts from the last start; the new name is due now.
        assert_eq!(s.start_due(t1), vec![key("new", 80)]);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(10)));

        s.watch(vec![("new".into(), 80, Duration::from_secs(10))], t1);
        assert!(!s.resolved().contains_key(&k));
        // A result for a name no longer watched is dropped.
        s.finish(&k, Ok(addrs(&["127.0.0.9"], 80)), t1);
        assert!(!s.resolved().contains_key(&k));
        assert!(!s.take_changed());
    }

    #[test]
    fn primed_addresses_seed_a_watch_and_change_a_watched_name() {
        let t0 = Instant::now();
        let (mut s, k) = resolved_schedule(t0);
        let other = key("other", 81);
        s.prime(
            &Resolved::from([
                (k.clone(), addrs(&["127.0.0.2"], 80)),
                (other.clone(), addrs(&["127.0.0.3"], 81)),
            ]),
            t0,
        );
        assert!(s.take_changed(), "a watched name changed");
        assert!(!s.resolved().contains_key(&other));
        s.watch(
            vec![
                ("app".into(), 80, Duration::from_secs(30)),
                ("other".into(), 81, Duration::from_secs(30)),
            ],
            t0,
        );
        assert_eq!(s.resolved()[&other], addrs(&["127.0.0.3"], 81));
        assert!(
            s.start_due(t0).is_empty(),
            "nothing due before the interval"
        );
    }
}
