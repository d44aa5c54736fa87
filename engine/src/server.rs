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

use ringway_config::{Config, LogTarget, Workers};

use crate::admin::Admin;
use crate::rt::cpus;
use crate::runtime::control::{self, Bound, Handle, NameService};
use crate::runtime::health::HealthChecker;
use crate::runtime::log_writer::{LogWriter, Output};
use crate::runtime::thread::{self as worker, Control, Spec};
use crate::snapshot::Snapshot;
use crate::stats::{Totals, WorkerStats};
use crate::worker::link::{Link, Peers};
use crate::worker::{Hooks, WorkerInfo};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listeners[{index}]: cannot listen on {address}: {source}")]
    Bind {
        index: usize,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid config:\n{0}")]
    Config(ringway_config::ConfigErrors),
    #[error("admin.address: cannot listen on {address}: {source}")]
    Admin {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("access-log.path: cannot open {path} for appending: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Worker(String),
}

/// A running gateway.
pub struct Server {
    plane: Handle,
    workers: Vec<WorkerInfo>,
    control: Arc<Control>,
    threads: Vec<JoinHandle<()>>,
    admin: Option<Admin>,
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
        let steer = control::Steer::new(config.connection_balance, &plan);

        let mut per_worker: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
        let mut bound = Vec::new();
        for (index, l) in config.listeners.iter().enumerate() {
            let ours: Vec<SocketAddr> = bound.iter().map(|b: &Bound| b.actual).collect();
            let (actual, sockets) =
                control::bind_all(l.address, &steer, &ours).map_err(|source| StartError::Bind {
                    index,
                    address: l.address,
                    source,
                })?;
            for (w, s) in per_worker.iter_mut().zip(sockets) {
                w.push((l.address, s));
            }
            bound.push(Bound {
                configured: l.address,
                actual,
            });
        }
        let admin_listener = if config.admin.enabled {
            let l = std::net::TcpListener::bind(config.admin.address).map_err(|source| {
                StartError::Admin {
                    address: config.admin.address,
                    source,
                }
            })?;
            Some(l)
        } else {
            None
        };

        let driver = config.driver;
        let name_service = NameService::new(&config);
        let names = name_service
            .prepare(&config, &config)
            .map_err(StartError::Config)?;
        let snapshot =
            Arc::new(Snapshot::compile(config, 1, None, n, &names).map_err(StartError::Config)?);
        let control = Arc::new(Control::default());
        let hooks = Arc::new(hooks);
        let log = &snapshot.config.access_log;
        let log_output = if log.enabled {
            let opened = Output::open(&log.path).map_err(|source| StartError::AccessLog {
                path: match &log.path {
                    LogTarget::Stdout => "-".into(),
                    LogTarget::File(p) => p.display().to_string(),
                },
                source,
            })?;
            Some(opened)
        } else {
            None
        };
        let log_writer = LogWriter::start(snapshot.clone(), log_output, hooks.clone())
            .map_err(StartError::Thread)?;
        let mut links = Vec::with_capacity(n);
        let mut inboxes = Vec::with_capacity(n);
        for _ in 0..n {
            let (link, inbox) = Link::new(Arc::new(WorkerStats::default()));
            links.push(link);
            inboxes.push(inbox);
        }
        let health = HealthChecker::start().map_err(StartError::Thread)?;
        let plane = Handle::new(
            snapshot.clone(),
            links.clone(),
            control.clone(),
            control::Listening { bound, steer },
            log_writer,
            health,
            name_service,
        );
        let peers = Peers::default();
        // Slow password checks run here, off the workers: one thread per
        // worker, at most four.
        let blocking = monoio::blocking::DefaultThreadPool::new(n.clamp(1, 4));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        let workers_iter = plan.into_iter().zip(per_worker).zip(links).zip(inboxes);
        for (id, (((cpu, listeners), link), inbox)) in workers_iter.enumerate() {
            let spec = Spec {
                id,
                cpu,
                listeners,
                snapshot: snapshot.clone(),
                link,
                inbox,
                plane: plane.clone(),
                peers: peers.clone(),
                control: control.clone(),
                hooks: hooks.clone(),
                driver,
                blocking: blocking.clone(),
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
        plane.set_workers(workers.clone());
        let admin = match admin_listener {
            Some(l) => match Admin::start(l, plane.clone()) {
                Ok(a) => Some(a),
                Err(e) => {
                    control.begin_drain();
                    return Err(StartError::Thread(e));
                }
            },
            None => None,
        };
        watch_certificates(plane.clone(), control.clone());
        Ok(Server {
            plane,
            workers,
            control,
            threads,
            admin,
        })
    }

    /// The bound address of each configured listener, in config order
    /// (as of the latest reload).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.plane.listen_addrs()
    }

    /// The admin API's bound address, when it is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(Admin::local_addr)
    }

    pub fn workers(&self) -> &[WorkerInfo] {
        &self.workers
    }

    /// The control plane: reloads, snapshot, status.
    pub fn handle(&self) -> Handle {
        self.plane.clone()
    }

    /// Counters summed over all workers.
    pub fn totals(&self) -> Totals {
        self.plane.totals()
    }

    /// Stops accepting and lets in-flight requests finish; idle keep-alive
    /// connections close. Returns at once.
    pub fn begin_shutdown(&self) {
        self.control.begin_drain();
    }

    /// Begins shutdown and waits up to the configured drain deadline.
    /// True when every worker finished in time.
    pub fn shutdown(self) -> bool {
        let drain = self.plane.snapshot().config.drain_timeout;
        self.begin_shutdown();
        self.wait(drain)
    }

    /// Waits up to `limit` for the workers to finish draining, then has
    /// the access-log writer write every queued record and stop.
    pub fn wait(mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        if let Some(admin) = self.admin.take() {
            admin.stop();
        }
        let threads = std::mem::take(&mut self.threads);
        let mut drained = true;
        'workers: for t in threads {
            while !t.is_finished() {
                if Instant::now() >= deadline {
                    drained = false;
                    break 'workers;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = t.join();
        }
        self.plane.stop_access_log();
        self.plane.stop_background();
        drained
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.control.begin_drain();
        self.plane.signal_access_log_stop();
        self.plane.stop_background();
        if let Some(admin) = self.admin.take() {
            admin.stop();
        }
    }
}

/// Warns about certificates close to expiry: at start, after each reload,
/// and once an hour while running, so a long-running gateway says so in
/// its log before a certificate lapses.
fn watch_certificates(plane: Handle, control: Arc<Control>) {
    let spawned = std::thread::Builder::new()
        .name("ringway-certs".into())
        .spawn(move || {
            let mut next = Instant::now();
            let mut seen = 0;
            while !control.is_draining() {
                // Hourly, and for each new generation.
                if Instant::now() >= next || plane.generation() != seen {
                    seen = plane.generation();
                    crate::tls::warn_expiring(plane.snapshot().tls.iter().flatten());
                    next = Instant::now() + Duration::from_secs(3600);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the certificate expiry check");
    }
}
