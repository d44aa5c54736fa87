//! Starting and stopping the whole gateway: bind every listener once per
//! worker with SO_REUSEPORT, start the pinned workers, and drain them on
//! shutdown.
//!
//! Sockets are bound here, on the calling thread, before any worker starts:
//! a port taken by someone else fails `start` with a clear error instead of
//! a half-started gateway, and `127.0.0.1:0` resolves to one port that every
//! worker then shares.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringway_config::{Config, Workers};
use socket2::{Domain, Protocol, Socket, Type};

use crate::runtime::cpus;
use crate::runtime::worker::{self, Control, Hooks, Spec, WorkerInfo};
use crate::snapshot::Snapshot;
use crate::stats::{Totals, WorkerStats};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listeners[{index}]: cannot listen on {address}: {source}")]
    Bind {
        index: usize,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Worker(String),
}

/// Listen backlog per worker socket.
const BACKLOG: i32 = 4096;

/// A running gateway.
pub struct Server {
    addrs: Vec<SocketAddr>,
    workers: Vec<WorkerInfo>,
    stats: Vec<Arc<WorkerStats>>,
    control: Arc<Control>,
    threads: Vec<JoinHandle<()>>,
    drain: Duration,
}

impl Server {
    /// Binds, starts every worker, and returns once all of them serve.
    pub fn start(config: Config) -> Result<Server, StartError> {
        Server::start_with(config, Hooks::default())
    }

    #[doc(hidden)]
    pub fn start_with(config: Config, hooks: Hooks) -> Result<Server, StartError> {
        let requested = match config.workers {
            Workers::Auto => None,
            Workers::Count(n) => Some(n.get()),
        };
        let plan = cpus::plan(requested, &cpus::allowed_cpus(), cpus::cgroup_cpu_limit());
        let n = plan.len();

        let mut per_worker: Vec<Vec<std::net::TcpListener>> = (0..n).map(|_| Vec::new()).collect();
        let mut addrs = Vec::new();
        for (index, l) in config.listeners.iter().enumerate() {
            let mut address = l.address;
            for sockets in per_worker.iter_mut() {
                let bind_err = |source| StartError::Bind {
                    index,
                    address,
                    source,
                };
                let s = bind_reuseport(address).map_err(bind_err)?;
                if address.port() == 0 {
                    address = s.local_addr().map_err(bind_err)?;
                }
                sockets.push(s);
            }
            addrs.push(address);
        }

        let driver = config.driver;
        let drain = config.drain_timeout;
        let snapshot = Arc::new(Snapshot::compile(config, 1));
        let control = Arc::new(Control::default());
        let hooks = Arc::new(hooks);
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        let mut stats = Vec::with_capacity(n);
        for (id, (cpu, listeners)) in plan.into_iter().zip(per_worker).enumerate() {
            let s = Arc::new(WorkerStats::default());
            stats.push(s.clone());
            let spec = Spec {
                id,
                cpu,
                listeners,
                snapshot: snapshot.clone(),
                stats: s,
                control: control.clone(),
                hooks: hooks.clone(),
                driver,
            };
            let tx = ready_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("ringway-w{id}"))
                .spawn(move || {
                    worker::run(spec, |r| {
                        let _ = tx.send(r);
                    })
                })
                .map_err(StartError::Thread)?;
            threads.push(t);
        }
        drop(ready_tx);
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n {
            match ready_rx.recv() {
                Ok(Ok(info)) => workers.push(info),
                Ok(Err(e)) => {
                    control.begin_drain();
                    return Err(StartError::Worker(e));
                }
                Err(_) => {
                    control.begin_drain();
                    return Err(StartError::Worker("a worker exited while starting".into()));
                }
            }
        }
        workers.sort_by_key(|w| w.id);
        Ok(Server {
            addrs,
            workers,
            stats,
            control,
            threads,
            drain,
        })
    }

    /// The bound address of each configured listener, in config order.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn workers(&self) -> &[WorkerInfo] {
        &self.workers
    }

    /// Counters summed over all workers.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.stats {
            t.add(s);
        }
        t
    }

    /// Stops accepting and lets in-flight requests finish; idle keep-alive
    /// connections close. Returns at once.
    pub fn begin_shutdown(&self) {
        self.control.begin_drain();
    }

    /// Begins shutdown and waits up to the configured drain deadline.
    /// True when every worker finished in time.
    pub fn shutdown(self) -> bool {
        let drain = self.drain;
        self.begin_shutdown();
        self.wait(drain)
    }

    /// Waits up to `limit` for the workers to finish draining.
    pub fn wait(mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let threads = std::mem::take(&mut self.threads);
        for t in threads {
            while !t.is_finished() {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = t.join();
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.control.begin_drain();
    }
}

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
