//! The health checker: one thread, "ringway-health", with a monoio runtime
//! of its own (epoll: a few sockets every few seconds need no ring), that
//! runs the active checks of every upstream that has them and writes each
//! result into the server's shared [`Health`], where workers read it.
//!
//! Each upstream gets one task, which checks all of its servers at once
//! every `interval` (measured from the start of one round to the next, so
//! a slow server does not stretch the period of the others) and then
//! records the results. A check cannot outlive its `timeout`.
//!
//! The control plane hands over a new set of plans on every generation
//! ([`HealthChecker::apply`]); the newest set wins over one the thread has
//! not taken yet. Taking a set stops the tasks of the previous one: each
//! waits between rounds on a stop notification, and a round in flight
//! finishes (its checks are bounded by their timeout) but its results are
//! dropped, so a stale spec never writes a result. The `Health` records
//! belong to the plans, so a server that stays across a reload keeps its
//! state; the first round of a new set starts at once.
//!
//! A server that stops or starts passing its checks is logged (warn when
//! it goes out, info when it comes back) with its upstream and address.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use monoio::{LegacyDriver, RuntimeBuilder};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::rt::notify::LocalNotify;
use crate::tls::client::WorkerUpstreamTls;
use crate::upstream::check::{check, CheckError, CheckSpec};
use crate::upstream::health::{now_ms, ActiveState, Health};

/// One server an upstream's checks go to.
#[derive(Debug, Clone)]
pub(crate) struct PlanServer {
    pub(crate) address: SocketAddr,
    /// The server as configured ("host:port" or "IP:port"): the `Host`
    /// of an HTTP check that does not set one.
    pub(crate) host: String,
    pub(crate) health: Arc<Health>,
}

/// The active checks of one upstream.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamPlan {
    pub(crate) name: String,
    pub(crate) servers: Vec<PlanServer>,
    pub(crate) spec: CheckSpec,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) healthy_threshold: u32,
    pub(crate) unhealthy_threshold: u32,
    /// The upstream's TLS, when it has some: checks go over it too.
    pub(crate) tls: Option<WorkerUpstreamTls>,
}

/// What the thread and its handle share.
#[derive(Default)]
struct Signal {
    stop: AtomicBool,
    event: event_listener::Event,
}

/// A handle on the checker thread.
pub(crate) struct HealthChecker {
    tx: Sender<Vec<UpstreamPlan>>,
    /// The other end, kept to drop a set the thread has not taken yet.
    stale: Receiver<Vec<UpstreamPlan>>,
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl HealthChecker {
    /// Starts the thread, with nothing to check until [`Self::apply`].
    pub(crate) fn start() -> io::Result<HealthChecker> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let signal = Arc::new(Signal::default());
        let thread = {
            let (rx, signal) = (rx.clone(), signal.clone());
            std::thread::Builder::new()
                .name("ringway-health".into())
                .spawn(move || run(rx, signal))?
        };
        Ok(HealthChecker {
            tx,
            stale: rx,
            signal,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Replaces what is checked with `plans` (upstreams without servers
    /// are skipped). Does not wait.
    pub(crate) fn apply(&self, plans: Vec<UpstreamPlan>) {
        let mut plans = plans;
        loop {
            match self.tx.try_send(plans) {
                Ok(()) => break,
                Err(TrySendError::Full(p)) => {
                    // The thread has not taken the previous set: this one
                    // replaces it.
                    let _ = self.stale.try_recv();
                    plans = p;
                }
                // Cannot happen while `stale` is held.
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        self.signal.event.notify(usize::MAX);
    }

    /// Stops the checks and waits for the thread. Later calls do nothing.
    pub(crate) fn stop(&self) {
        self.signal_stop();
        let thread = self
            .thread
            .lock()
            // Only the join handle is behind it: a panic cannot tear it.
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    fn signal_stop(&self) {
        self.signal.stop.store(true, Ordering::SeqCst);
        self.signal.event.notify(usize::MAX);
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

fn run(rx: Receiver<Vec<UpstreamPlan>>, signal: Arc<Signal>) {
    let mut rt = match RuntimeBuilder::<LegacyDriver>::new().enable_timer().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "health checker has no runtime; active health checks are off");
            return;
        }
    };
    rt.block_on(async move {
        let mut current: Option<Rc<LocalNotify>> = None;
        loop {
            let listener = signal.event.listen();
            if signal.stop.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(plans) = rx.try_recv() {
                if let Some(old) = current.take() {
                    old.fire();
                }
                let stop = Rc::new(LocalNotify::default());
                for plan in plans.into_iter().filter(|p| !p.servers.is_empty()) {
                    monoio::spawn(watch(Rc::new(Watch::new(plan)), stop.clone()));
                }
                current = Some(stop);
                continue;
            }
            listener.await;
        }
        if let Some(old) = current {
            old.fire();
        }
    });
}

/// An upstream's plan as its task uses it: each server's spec with its
/// `Host` filled in, and the TLS name to verify.
struct Watch {
    plan: UpstreamPlan,
    targets: Vec<Target>,
}

struct Target {
    spec: CheckSpec,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl Watch {
    fn new(plan: UpstreamPlan) -> Watch {
        let targets = plan
            .servers
            .iter()
            .map(|s| {
                let mut spec = plan.spec.clone();
                if let CheckSpec::Http { host, .. } = &mut spec {
                    host.get_or_insert_with(|| s.host.clone());
                }
                Target {
                    spec,
                    tls: plan
                        .tls
                        .as_ref()
                        .map(|t| (t.config.clone(), t.name_for(s.address, Some(&s.host)))),
                }
            })
            .collect();
        Watch { plan, targets }
    }
}

/// Checks an upstream's servers every interval until `stop` fires.
async fn watch(w: Rc<Watch>, stop: Rc<LocalNotify>) {
    let mut next = monoio::time::Instant::now();
    loop {
        let round: Vec<_> = (0..w.targets.len())
            .map(|i| {
                let w = w.clone();
                monoio::spawn(async move {
                    let t = &w.targets[i];
                    check(
                        w.plan.servers[i].address,
                        &t.spec,
                        t.tls.clone(),
                        w.plan.timeout,
                    )
                    .await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(round.len());
        for r in round {
            results.push(r.await);
        }
        if stop.is_fired() {
            return;
        }
        let now = now_ms();
        for (server, result) in w.plan.servers.iter().zip(results) {
            record(&w.plan, server, result, now);
        }
        next += w.plan.interval;
        let now = monoio::time::Instant::now();
        if next < now {
            // The round took longer than the interval: start again now,
            // without making up for lost rounds.
            next = now;
        }
        monoio::select! {
            _ = monoio::time::sleep_until(next) => {}
            _ = stop.wait() => return,
        }
    }
}

/// Writes one result into the server's health, logging a change.
fn record(plan: &UpstreamPlan, server: &PlanServer, result: Result<(), CheckError>, now: u64) {
    let change = server.health.check_result(
        result.is_ok(),
        now,
        plan.healthy_threshold,
        plan.unhealthy_threshold,
    );
    let (upstream, address) = (&plan.name, server.address);
    match (change, result) {
        (Some((_, ActiveState::Unhealthy)), Err(e)) => tracing::warn!(
            upstream = %upstream,
            server = %address,
            error = %e,
            "upstream server failed its health checks; no requests go to it until it passes again"
        ),
        (Some((ActiveState::Unhealthy, ActiveState::Healthy)), _) => tracing::info!(
            upstream = %upstream,
            server = %address,
            "upstream server passes its health checks again"
        ),
        (Some((_, ActiveState::Healthy)), _) => tracing::debug!(
            upstream = %upstream,
            server = %address,
            "upstream server passed its first health check"
        ),
        (_, Err(e)) => tracing::debug!(
            upstream = %upstream,
            server = %address,
            error = %e,
            "health check failed"
        ),
        _ => {}
    }
}

/// The plans of every upstream of `snap` with active checks.
pub(crate) fn plans(snap: &crate::snapshot::Snapshot) -> Vec<UpstreamPlan> {
    use ringway_config::{CheckKind, StatusMatch};
    snap.config
        .upstreams
        .iter()
        .zip(&snap.upstreams.groups)
        .enumerate()
        .filter_map(|(i, (up, g))| {
            let hc = up.health_check.as_ref()?;
            let spec = match &hc.kind {
                CheckKind::Tcp => CheckSpec::Tcp,
                CheckKind::Http {
                    method,
                    path,
                    host,
                    expect,
                } => CheckSpec::Http {
                    method: method.as_str().to_string(),
                    path: path.clone(),
                    host: host.clone(),
                    expect: expect
                        .iter()
                        .map(|m| match *m {
                            StatusMatch::Code(c) => c..=c,
                            StatusMatch::Class(k) => u16::from(k) * 100..=u16::from(k) * 100 + 99,
                        })
                        .collect(),
                },
            };
            Some(UpstreamPlan {
                name: up.name.clone(),
                servers: g
                    .servers
                    .iter()
                    .map(|s| PlanServer {
                        address: s.member.address,
                        host: match &s.member.name {
                            Some(name) => name.to_string(),
                            None => s.member.address.to_string(),
                        },
                        health: s.health.clone(),
                    })
                    .collect(),
                spec,
                interval: hc.interval,
                timeout: hc.timeout,
                healthy_threshold: hc.healthy_threshold,
                unhealthy_threshold: hc.unhealthy_threshold,
                tls: snap
                    .upstream_tls
                    .get(i)
                    .and_then(Option::as_ref)
                    .map(crate::tls::client::UpstreamTls::for_worker),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::check::test_server::{serve, ERROR, OK};

    /// Waits until `cond` holds; fails after 20 s.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn plan(name: &str, servers: Vec<PlanServer>) -> UpstreamPlan {
        UpstreamPlan {
            name: name.into(),
            servers,
            spec: CheckSpec::Http {
                method: "GET".into(),
                path: "/health".into(),
                host: None,
                expect: vec![200..=399],
            },
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            tls: None,
        }
    }

    fn server(address: SocketAddr) -> PlanServer {
        PlanServer {
            address,
            host: address.to_string(),
            health: Arc::new(Health::new(true)),
        }
    }

    fn counts(h: &Health) -> (u64, u64) {
        let c = h.checks();
        (
            c.passed.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn a_failing_server_goes_out_after_the_threshold_and_comes_back() {
        let passing = Arc::new(AtomicBool::new(true));
        let addr = {
            let passing = passing.clone();
            serve(None, move || {
                Some(if passing.load(Ordering::SeqCst) {
                    OK
                } else {
                    ERROR
                })
            })
        };
        let s = server(addr);
        let health = s.health.clone();
        let checker = HealthChecker::start().expect("thread");
        assert!(!health.available(now_ms()), "unknown until checked");
        checker.apply(vec![plan("app", vec![s])]);
        wait_until("healthy", || health.available(now_ms()));

        let (_, failed) = counts(&health);
        passing.store(false, Ordering::SeqCst);
        wait_until("unhealthy", || !health.available(now_ms()));
        assert_eq!(health.view(now_ms()).state, "unhealthy");
        assert!(counts(&health).1 - failed >= 3, "{:?}", counts(&health));

        let (passed, _) = counts(&health);
        passing.store(true, Ordering::SeqCst);
        wait_until("healthy again", || health.available(now_ms()));
        assert!(counts(&health).0 - passed >= 2, "{:?}", counts(&health));
        checker.stop();
    }

    #[test]
    fn a_new_plan_replaces_the_old_one() {
        let old = server(serve(None, || Some(OK)));
        let new = server(serve(None, || Some(ERROR)));
        let (old_health, new_health) = (old.health.clone(), new.health.clone());
        let checker = HealthChecker::start().expect("thread");
        checker.apply(vec![plan("old", vec![old])]);
        wait_until("the old server is checked", || counts(&old_health).0 > 0);

        checker.apply(vec![plan("empty", vec![])]);
        checker.apply(vec![plan("new", vec![new])]);
        wait_until("the new server is checked", || counts(&new_health).1 > 0);
        assert!(!new_health.available(now_ms()));
        // Once the new plan runs, the old server's results stop: three more
        // rounds of the new one leave its count where it was.
        let before = counts(&old_health);
        let seen = counts(&new_health).1;
        wait_until("three more rounds", || counts(&new_health).1 >= seen + 3);
        assert_eq!(counts(&old_health), before);
        checker.stop();
        checker.stop();
    }
}
