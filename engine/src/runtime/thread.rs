//! A worker thread: pinned to one CPU, running its own monoio runtime
//! (io_uring, or epoll where the kernel refuses it), serving its listeners
//! until the gateway drains, and applying reloads and cache messages from
//! the control plane between two task polls.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;
use monoio::time::TimeDriver;
use monoio::{FusionDriver, FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};
use ringway_config::Driver;

use crate::proxy::accept::start_accepting;
use crate::rt::deadline::run_ticker;
use crate::runtime::control::Handle;
use crate::snapshot::Snapshot;
use crate::worker::link::{CacheMsg, Cmd, Inbox, Link, Peers, Purge};
use crate::worker::{Generation, Hooks, Worker, WorkerInfo};

/// Cross-thread shutdown signal.
#[derive(Default)]
pub(crate) struct Control {
    draining: AtomicBool,
    event: event_listener::Event,
}

impl Control {
    pub(crate) fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves once draining has begun.
    pub(crate) async fn drained(&self) {
        loop {
            let listener = self.event.listen();
            if self.is_draining() {
                return;
            }
            listener.await;
        }
    }
}

/// Everything a worker thread needs to start.
pub(crate) struct Spec {
    pub(crate) id: usize,
    pub(crate) cpu: usize,
    /// By configured address.
    pub(crate) listeners: Vec<(SocketAddr, std::net::TcpListener)>,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) link: Arc<Link>,
    pub(crate) inbox: Inbox,
    pub(crate) plane: Handle,
    pub(crate) peers: Peers,
    pub(crate) control: Arc<Control>,
    pub(crate) hooks: Arc<Hooks>,
    pub(crate) driver: Driver,
    /// Where slow password checks run, shared by all workers.
    pub(crate) blocking: monoio::blocking::DefaultThreadPool,
}

type Runtime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Builds the worker's runtime. `io_uring` goes through monoio's
/// FusionDriver, which falls back to epoll where the kernel refuses
/// io_uring (or `MONOIO_FORCE_LEGACY_DRIVER=1` says so).
fn build_runtime(
    driver: Driver,
    blocking: &monoio::blocking::DefaultThreadPool,
) -> std::io::Result<Runtime> {
    let pool = || Box::new(blocking.clone());
    match driver {
        Driver::Epoll => {
            let rt = RuntimeBuilder::<LegacyDriver>::new()
                .enable_timer()
                .attach_thread_pool(pool())
                .build()?;
            Ok(FusionRuntime::Legacy(rt))
        }
        Driver::IoUring => {
            // Cooperative task running: completions are processed when the
            // worker next enters the kernel instead of interrupting it with
            // an IPI. Measured on the benchmark machine (2 vCPU, kernel
            // 6.18, proxied 12-byte responses): 16.3 → 10.6 µs CPU per
            // request. Needs Linux 5.19; older kernels get the default ring.
            let mut b = io_uring::IoUring::builder();
            b.setup_coop_taskrun().setup_taskrun_flag();
            match RuntimeBuilder::<FusionDriver>::new()
                .uring_builder(b)
                .enable_timer()
                .attach_thread_pool(pool())
                .build()
            {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    RuntimeBuilder::<FusionDriver>::new()
                        .enable_timer()
                        .attach_thread_pool(pool())
                        .build()
                }
                built => built,
            }
        }
    }
}

/// Runs a worker on the current thread until it has drained. `ready` is
/// called once the runtime is up (or failed to come up).
pub(crate) fn run(spec: Spec, ready: impl FnOnce(Result<WorkerInfo, String>)) {
    if let Err(e) = monoio::utils::bind_to_cpu_set([spec.cpu]) {
        tracing::warn!(worker = spec.id, cpu = spec.cpu, error = ?e, "could not pin worker");
    }
    let mut rt = match build_runtime(spec.driver, &spec.blocking) {
        Ok(rt) => rt,
        Err(e) => return ready(Err(format!("worker {}: runtime: {e}", spec.id))),
    };
    let driver = match &rt {
        FusionRuntime::Uring(_) => "io_uring",
        FusionRuntime::Legacy(_) => "epoll",
    };
    let info = WorkerInfo {
        id: spec.id,
        cpu: spec.cpu,
        driver,
    };
    rt.block_on(async move {
        let mut listeners = Vec::with_capacity(spec.listeners.len());
        for (configured, l) in spec.listeners {
            match TcpListener::from_std(l) {
                Ok(l) => listeners.push((configured, l)),
                Err(e) => return ready(Err(format!("worker {}: listener: {e}", spec.id))),
            }
        }
        tracing::info!(
            worker = info.id,
            cpu = info.cpu,
            driver = info.driver,
            "worker started"
        );
        let generation = Generation::new(spec.id, spec.snapshot, None);
        spec.plane.acknowledge(&spec.link, generation.number());
        ready(Ok(info));
        let w = Rc::new(Worker::new(
            spec.id,
            spec.link.stats.clone(),
            generation,
            spec.hooks,
            spec.peers,
        ));
        for (configured, l) in listeners {
            start_accepting(&w, configured, l);
        }
        let reloads = Reloads {
            link: spec.link,
            inbox: spec.inbox,
            plane: spec.plane,
        };
        serve(w, reloads, spec.control).await;
    });
}

/// The worker's end of its link to the control plane.
struct Reloads {
    link: Arc<Link>,
    inbox: Inbox,
    plane: Handle,
}

async fn serve(w: Rc<Worker>, reloads: Reloads, control: Arc<Control>) {
    let watcher = w.clone();
    monoio::spawn(async move {
        control.drained().await;
        watcher.shutdown.fire();
    });
    let ticker = w.clone();
    monoio::spawn(async move {
        // Runs until the worker's last connection is gone: draining
        // connections still need their timeouts.
        let done = std::future::poll_fn(|_| {
            if ticker.shutdown.is_fired() && ticker.stats.connections_open.get() == 0 {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        });
        run_ticker(&ticker.deadlines, done).await;
    });
    let sweeper = w.clone();
    monoio::spawn(async move {
        let mut requests = sweeper.stats.requests.get();
        let mut open = sweeper.stats.connections_open.get();
        loop {
            monoio::select! {
                _ = monoio::time::sleep(Duration::from_secs(1)) => {}
                _ = sweeper.shutdown.wait() => return,
            }
            sweeper.current().upstreams.sweep();
            // Buffers a burst took and nobody used since go back to the
            // allocator, and the allocator gives what is free back to the
            // system: thoroughly when the second was quiet or most
            // connections have closed.
            let now_open = sweeper.stats.connections_open.get();
            let now_requests = sweeper.stats.requests.get();
            let quiet = now_requests == requests;
            let emptied = now_open < open / 2;
            sweeper.pool.trim(now_open);
            crate::rt::mem::release(quiet || emptied);
            requests = now_requests;
            open = now_open;
        }
    });
    monoio::spawn(take_reloads(w.clone(), reloads));
    w.shutdown.wait().await;
    // Each accept loop hands its listener back to be dropped here, while
    // the runtime still runs: on io_uring a close is an operation that
    // must be submitted, and a socket left for the runtime's own teardown
    // would keep listening after the worker is gone.
    let accepting = w.take_accepting();
    for a in accepting {
        a.close().await;
    }
    // Drain: in-flight requests finish, idle connections close themselves.
    while w.stats.connections_open.get() > 0 {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    // One more turn of the driver submits the last closes.
    monoio::time::sleep(Duration::from_millis(1)).await;
    tracing::debug!(worker = w.id, "worker drained");
}

/// Applies reloads as the control plane sends them, in order.
async fn take_reloads(w: Rc<Worker>, r: Reloads) {
    loop {
        // On the stack: a boxed listener would allocate on every wake (each
        // invalidation another worker sends).
        event_listener::listener!(r.link.wake => rung);
        take_cache_messages(&w, &r);
        while let Ok(cmd) = r.inbox.reloads.try_recv() {
            if w.shutdown.is_fired() {
                // Too late to serve: close what it brought, here.
                drop(cmd);
                continue;
            }
            let applied = std::panic::catch_unwind(AssertUnwindSafe(|| apply(&w, cmd)));
            if applied.is_err() {
                w.stats.panics.inc();
                tracing::error!(
                    worker = w.id,
                    "panic while applying a reload; worker stays on its generation"
                );
                continue;
            }
            r.plane.acknowledge(&r.link, w.current().number());
        }
        monoio::select! {
            _ = rung => {}
            _ = w.shutdown.wait() => {
                while let Ok(cmd) = r.inbox.reloads.try_recv() {
                    drop(cmd);
                }
                return;
            }
        }
    }
}

/// Runs purges from the admin API (on the cache all workers share).
fn take_cache_messages(w: &Rc<Worker>, r: &Reloads) {
    let g = w.current();
    while let Ok(CacheMsg { scope, reply }) = r.inbox.cache.try_recv() {
        let cache = &g.cache.shared;
        let removed = match &scope {
            Purge::All => cache.purge_all(),
            Purge::Url(url) => cache.purge_url(url),
            Purge::Prefix(prefix) => cache.purge_prefix(prefix),
        };
        let _ = reply.send(removed);
    }
}

/// Switches the worker to a new generation. Requests in flight keep the
/// generation they started on; pools of unchanged servers carry over.
fn apply(w: &Rc<Worker>, cmd: Cmd) {
    let next = Generation::new(w.id, cmd.snapshot, Some(&w.current()));
    w.set_current(next);
    for addr in cmd.remove {
        let Some(a) = w.remove_accepting(addr) else {
            continue;
        };
        // Its connections see `closing` and drain: requests in flight
        // finish with `Connection: close`, idle ones close now.
        monoio::spawn(a.close());
    }
    for (configured, l) in cmd.add {
        match TcpListener::from_std(l) {
            Ok(l) => start_accepting(w, configured, l),
            Err(e) => {
                tracing::error!(worker = w.id, %configured, error = %e, "cannot use new listener")
            }
        }
    }
}
