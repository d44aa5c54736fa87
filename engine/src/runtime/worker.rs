//! One worker: a thread pinned to one CPU, running its own monoio runtime,
//! accepting on its own SO_REUSEPORT listeners, owning its pools.
//!
//! Nothing here is shared with other workers except the read-only snapshot,
//! the single-writer counters, the shutdown signal and the control plane's
//! link, so the request path never waits on another core. A reload reaches
//! the worker through its link and is applied between two task polls.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use monoio::net::TcpListener;
use monoio::time::TimeDriver;
use monoio::{FusionDriver, FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};
use ringway_config::Driver;

use crate::io::Pool;
use crate::proxy::conn;
use crate::runtime::control::{CacheMsg, Cmd, Handle, Inbox, Link, Purge};
use crate::runtime::deadline::{run_ticker, Deadlines};
use crate::runtime::generation::Generation;
use crate::runtime::notify::LocalNotify;
use crate::snapshot::Snapshot;
use crate::stats::WorkerStats;
use crate::tls::stream::TlsStream;

/// Hooks for exercising failure paths from tests; all off by default.
#[derive(Debug, Default, Clone)]
pub struct Hooks {
    /// A request for exactly this path panics inside its connection task.
    pub panic_on_path: Option<String>,
}

/// Cross-thread shutdown signal.
#[derive(Default)]
pub struct Control {
    draining: AtomicBool,
    event: event_listener::Event,
}

impl Control {
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves once draining has begun.
    pub async fn drained(&self) {
        loop {
            let listener = self.event.listen();
            if self.is_draining() {
                return;
            }
            listener.await;
        }
    }
}

/// What a worker reports once it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub id: usize,
    pub cpu: usize,
    /// "io_uring" or "epoll".
    pub driver: &'static str,
}

/// The state one worker's connections share.
pub struct Worker {
    pub id: usize,
    pub pool: Pool,
    pub stats: Arc<WorkerStats>,
    /// The generation new requests start on; replaced by a reload.
    current: RefCell<Rc<Generation>>,
    /// Fired once the worker drains.
    pub shutdown: LocalNotify,
    pub deadlines: Deadlines,
    pub hooks: Arc<Hooks>,
    accepting: RefCell<Vec<Accepting>>,
    /// Password checks waiting on the blocking pool.
    pub verifying: std::cell::Cell<u32>,
    /// The control plane, for telling other workers about invalidations.
    plane: Handle,
}

impl Worker {
    /// The current generation, for a request to keep until it ends.
    pub fn current(&self) -> Rc<Generation> {
        self.current.borrow().clone()
    }

    /// Drops the stored responses of `key` on the other workers too.
    pub fn invalidate_elsewhere(&self, key: &[u8]) {
        self.plane.invalidate_elsewhere(self.id, key);
    }
}

/// One listener as its connections see it.
#[derive(Default)]
pub struct ListenerState {
    /// Fired when the listener is removed by a reload or the worker drains:
    /// its connections finish what is in flight and close.
    pub closing: LocalNotify,
}

/// A listener this worker accepts on.
struct Accepting {
    configured: SocketAddr,
    state: Rc<ListenerState>,
    listener: Rc<TcpListener>,
    task: monoio::task::JoinHandle<()>,
}

impl Accepting {
    /// Stops accepting and lets the listener's connections drain; the
    /// socket is closed once its accept loop has ended, inside the runtime.
    ///
    /// The accept in flight is not dropped (on io_uring a connection
    /// accepted just as the operation is cancelled would be lost with its
    /// descriptor); shutting the listening socket down makes it complete
    /// with an error instead, and the loop then sees `closing`.
    fn close(self) -> impl Future<Output = ()> {
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

/// Everything a worker thread needs to start.
pub struct Spec {
    pub id: usize,
    pub cpu: usize,
    /// By configured address.
    pub listeners: Vec<(SocketAddr, std::net::TcpListener)>,
    pub snapshot: Arc<Snapshot>,
    pub link: Arc<Link>,
    pub inbox: Inbox,
    pub plane: Handle,
    pub control: Arc<Control>,
    pub hooks: Arc<Hooks>,
    pub driver: Driver,
    /// Where slow password checks run, shared by all workers.
    pub blocking: monoio::blocking::DefaultThreadPool,
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
pub fn run(spec: Spec, ready: impl FnOnce(Result<WorkerInfo, String>)) {
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
        let generation = Generation::new(spec.snapshot, None);
        spec.plane.acknowledge(&spec.link, generation.number());
        ready(Ok(info));
        let w = Rc::new(Worker {
            id: spec.id,
            pool: Pool::default(),
            stats: spec.link.stats.clone(),
            current: RefCell::new(Rc::new(generation)),
            shutdown: LocalNotify::default(),
            deadlines: Deadlines::default(),
            hooks: spec.hooks,
            accepting: RefCell::new(Vec::new()),
            verifying: std::cell::Cell::new(0),
            plane: spec.plane.clone(),
        });
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
        loop {
            monoio::select! {
                _ = monoio::time::sleep(Duration::from_secs(1)) => sweeper.current().upstreams.sweep(),
                _ = sweeper.shutdown.wait() => return,
            }
        }
    });
    monoio::spawn(take_reloads(w.clone(), reloads));
    w.shutdown.wait().await;
    // Each accept loop hands its listener back to be dropped here, while
    // the runtime still runs: on io_uring a close is an operation that
    // must be submitted, and a socket left for the runtime's own teardown
    // would keep listening after the worker is gone.
    let accepting = std::mem::take(&mut *w.accepting.borrow_mut());
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
        let rung = r.link.wake.listen();
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

/// Applies invalidations from other workers and purges from the admin API.
fn take_cache_messages(w: &Rc<Worker>, r: &Reloads) {
    let g = w.current();
    if r.link.cache_overflow.swap(false, Ordering::AcqRel) {
        let removed = g.cache.purge_all();
        tracing::warn!(
            worker = w.id,
            removed,
            "cache invalidation queue overflowed; cache cleared"
        );
    }
    while let Ok(msg) = r.inbox.cache.try_recv() {
        match msg {
            CacheMsg::Invalidate(key) => {
                g.cache.invalidate(&key);
                w.stats.cache_invalidations.inc();
            }
            CacheMsg::Purge { scope, reply } => {
                let removed = match &scope {
                    Purge::All => g.cache.purge_all(),
                    Purge::Url(url) => g.cache.purge_url(url),
                    Purge::Prefix(prefix) => g.cache.purge_prefix(prefix),
                };
                let _ = reply.send(removed);
            }
        }
    }
    let (entries, bytes) = g.cache.totals();
    w.stats.cache_entries.set(entries as u64);
    w.stats.cache_bytes.set(bytes as u64);
}

/// Switches the worker to a new generation. Requests in flight keep the
/// generation they started on; pools of unchanged servers carry over.
fn apply(w: &Rc<Worker>, cmd: Cmd) {
    let next = Generation::new(cmd.snapshot, Some(&w.current()));
    *w.current.borrow_mut() = Rc::new(next);
    for addr in cmd.remove {
        let mut accepting = w.accepting.borrow_mut();
        let Some(i) = accepting.iter().position(|a| a.configured == addr) else {
            continue;
        };
        let a = accepting.remove(i);
        drop(accepting);
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

fn start_accepting(w: &Rc<Worker>, configured: SocketAddr, listener: TcpListener) {
    if w.shutdown.is_fired() {
        return;
    }
    let state = Rc::new(ListenerState::default());
    let listener = Rc::new(listener);
    let task = monoio::spawn(accept_loop(
        w.clone(),
        listener.clone(),
        state.clone(),
        configured,
    ));
    w.accepting.borrow_mut().push(Accepting {
        configured,
        state,
        listener,
        task,
    });
}

async fn accept_loop(
    w: Rc<Worker>,
    listener: Rc<TcpListener>,
    state: Rc<ListenerState>,
    configured: SocketAddr,
) {
    loop {
        let accepted = listener.accept().await;
        if state.closing.is_fired() {
            // Ended by `Accepting::close`. A connection accepted in the
            // same instant is closed unanswered, as a listen queue is.
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                w.stats.connections_accepted.inc();
                // Plain or TLS as the current generation says: a reload may
                // turn TLS on or off for this address.
                match w.current().tls_for(configured) {
                    None => {
                        let serving = conn::serve(w.clone(), stream, peer, state.clone(), None);
                        monoio::spawn(connection(w.clone(), peer, serving));
                    }
                    Some(tls) => {
                        let serving = tls_connection(w.clone(), stream, peer, state.clone(), tls);
                        monoio::spawn(connection(w.clone(), peer, serving));
                    }
                }
            }
            Err(e) => {
                w.stats.accept_errors.inc();
                tracing::warn!(worker = w.id, error = %e, "accept failed");
                // Out of descriptors: back off instead of spinning.
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One connection task: a panic inside is caught here, counted and logged,
/// and only this connection is lost.
async fn connection(w: Rc<Worker>, peer: SocketAddr, serving: impl Future<Output = ()>) {
    w.stats.connections_open.inc();
    let result = catch_unwind(serving).await;
    w.stats.connections_open.dec();
    if let Err(panic) = result {
        w.stats.panics.inc();
        let msg = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic");
        tracing::error!(worker = w.id, %peer, panic = msg, "panic while serving a connection; connection closed");
    }
}

/// A TLS connection: the handshake (within the listener's timeout,
/// failures counted by reason), then HTTP over it.
async fn tls_connection(
    w: Rc<Worker>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    listener: Rc<ListenerState>,
    tls: crate::runtime::generation::WorkerTls,
) {
    let Ok(session) = rustls::ServerConnection::new(tls.config.clone()) else {
        return;
    };
    let mut io = TlsStream::new(stream, session);
    let deadline = std::time::Instant::now() + tls.handshake_timeout;
    let failure = match w.deadlines.within(deadline, io.handshake()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(handshake_failure(&e)),
        Err(_) => Some(HandshakeFailure::Timeout),
    };
    if let Some(f) = failure {
        w.stats.tls_failure(f);
        tracing::debug!(%peer, reason = ?f, "TLS handshake failed");
        return;
    }
    w.stats.tls_handshakes.inc();
    if io.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        w.stats.tls_resumed.inc();
    }
    let info = crate::proxy::conn::TlsInfo::of(&io.conn, tls.subject_header.as_deref());
    conn::serve(w, io, peer, listener, Some(info)).await;
}

/// Why a handshake failed, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Not finished within `handshake-timeout`.
    Timeout,
    /// The client closed or reset the connection.
    Closed,
    /// No certificate for the SNI (the listener rejects unknown names).
    UnknownSni,
    /// The client's certificate was missing or did not verify.
    ClientCert,
    /// No protocol version, cipher suite or ALPN protocol in common.
    Incompatible,
    /// The client refused our certificate (unknown CA, expired, bad name):
    /// usually a certificate chain to fix.
    Rejected,
    /// Anything else the client got wrong.
    Protocol,
}

fn handshake_failure(e: &std::io::Error) -> HandshakeFailure {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => HandshakeFailure::Closed,
            _ => HandshakeFailure::Protocol,
        };
    };
    match tls {
        rustls::Error::General(m) if m.contains("no server certificate") => {
            HandshakeFailure::UnknownSni
        }
        rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_) => {
            HandshakeFailure::ClientCert
        }
        rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => {
            HandshakeFailure::Incompatible
        }
        rustls::Error::AlertReceived(
            rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA
            | rustls::AlertDescription::CertificateExpired
            | rustls::AlertDescription::CertificateUnknown
            | rustls::AlertDescription::UnsupportedCertificate
            | rustls::AlertDescription::CertificateRevoked,
        ) => HandshakeFailure::Rejected,
        _ => HandshakeFailure::Protocol,
    }
}

pin_project_lite::pin_project! {
    /// Polls a future, turning a panic inside it into an `Err`. Hand-written
    /// so the (large) connection future is stored once.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.project().fut;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}

pub(crate) fn catch_unwind<F: Future>(fut: F) -> CatchUnwind<F> {
    CatchUnwind { fut }
}
