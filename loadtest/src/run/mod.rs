//! The engine: runs a [`Plan`] on pinned generator threads and merges what
//! they measure.
//!
//! The main thread only coordinates. It checks that the target accepts a
//! connection at all (so "nothing listens there" is a setup error, not a
//! run full of connect errors), starts one thread per CPU slot, gives them
//! a common start instant once every runtime is up, and then merges the
//! one-second intervals they send: into the totals, and — once every
//! thread has reported a given second — into the interval callback that
//! drives the live line and the HdrHistogram log. Connections are dealt to
//! threads round robin (connection i to thread i mod T).

mod conn;
pub mod cpus;
mod io;
mod tls;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use monoio::{LegacyDriver, RuntimeBuilder};

use crate::plan::Plan;
use crate::stats::{Counters, Interval, IntervalSummary, Latencies};

pub use worker::GRACE;

use io::{Connector, Plain};
use worker::Msg;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect to {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("{0}")]
    Setup(String),
}

/// One merged second, handed to the caller as soon as every thread has
/// reported it.
#[derive(Debug)]
pub struct MergedInterval<'a> {
    pub index: u32,
    /// Offset of the interval's start from the run's start.
    pub start: Duration,
    pub duration: Duration,
    pub latencies: &'a Latencies,
    pub counters: &'a Counters,
    /// Wall-clock time of the run's start (interval offsets count from it).
    pub run_started: SystemTime,
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    pub latencies: Latencies,
    pub counters: Counters,
    pub intervals: Vec<IntervalSummary>,
    /// The measured window: the planned duration, or longer when the last
    /// request went out late, or shorter when the run was stopped.
    pub elapsed: Duration,
    /// The driver each thread ended up with.
    pub drivers: Vec<&'static str>,
    /// Whether every thread could be pinned to its CPU.
    pub pinned: bool,
    /// Wall-clock start, for logs.
    pub started: SystemTime,
    pub stopped_early: bool,
}

/// Runs `plan`; `stop` ends it early (Ctrl-C). `on_interval` sees each
/// merged second in order.
pub fn run(
    plan: &Plan,
    stop: Arc<AtomicBool>,
    on_interval: &mut dyn FnMut(&MergedInterval<'_>),
) -> Result<Outcome, RunError> {
    let tls = tls_client(plan)?;
    probe(plan, tls.as_ref())?;
    let plan = Arc::new(plan.clone());
    let threads = plan.threads().max(1);
    let (tx, rx) = mpsc::channel();
    let mut start_txs = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for id in 0..threads {
        let (start_tx, start_rx) = mpsc::channel();
        start_txs.push(start_tx);
        let spec = worker::Spec {
            id,
            cpu: plan.cpus[id % plan.cpus.len()],
            conns: (id..plan.connections).step_by(threads).collect(),
            plan: plan.clone(),
            stop: stop.clone(),
            tx: tx.clone(),
            start: start_rx,
            tls: tls.clone(),
        };
        let h = std::thread::Builder::new()
            .name(format!("ringway-load-{id}"))
            .spawn(move || worker::run(spec))
            .map_err(|e| RunError::Setup(format!("cannot start thread: {e}")))?;
        handles.push(h);
    }
    drop(tx);

    let mut drivers = vec![""; threads];
    let mut pinned = true;
    let mut failure = None;
    for _ in 0..threads {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Msg::Ready {
                thread,
                driver,
                pinned: p,
            }) => {
                drivers[thread] = driver;
                pinned &= p;
            }
            Ok(Msg::Failed { error, .. }) => failure = Some(error),
            Ok(_) => {}
            Err(_) => failure = Some("a generator thread did not start".to_string()),
        }
        if failure.is_some() {
            break;
        }
    }
    if let Some(error) = failure {
        // Closing the start channels tells ready threads to exit.
        drop(start_txs);
        for h in handles {
            let _ = h.join();
        }
        return Err(RunError::Setup(error));
    }

    // Leave the connections time to open before the clock starts: 50 ms
    // plus 1 ms per connection per thread, at most 500 ms.
    let per_thread = plan.connections.div_ceil(threads) as u64;
    let lead = Duration::from_millis((50 + per_thread).min(500));
    let start = Instant::now() + lead;
    let started = SystemTime::now() + lead;
    for s in &start_txs {
        let _ = s.send(start);
    }

    let mut merger = Merger::new(threads, plan.load.is_open(), started);
    let mut last_send = start;
    // Bounded: every thread ends by itself (schedule end + grace + one
    // timeout); a thread that dies drops its sender, and once all senders
    // are gone `recv` fails.
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Interval { thread, interval } => {
                merger.add(thread, *interval);
                merger.emit(false, on_interval);
            }
            Msg::Done {
                thread,
                last_send: t,
            } => {
                last_send = last_send.max(t);
                merger.done[thread] = true;
                merger.emit(false, on_interval);
            }
            Msg::Ready { .. } | Msg::Failed { .. } => {}
        }
    }
    for h in handles {
        let _ = h.join();
    }
    let stopped_early = stop.load(Ordering::Relaxed);
    let planned = plan.load.duration();
    let sent_until = last_send.saturating_duration_since(start);
    let elapsed = if stopped_early {
        sent_until.min(planned)
    } else {
        planned.max(sent_until)
    };
    merger.emit(true, on_interval);
    Ok(Outcome {
        latencies: merger.total,
        counters: merger.counters,
        intervals: merger.summaries,
        elapsed,
        drivers,
        pinned,
        started,
        stopped_early,
    })
}

/// Builds the TLS client once for all threads (its configuration loads
/// the root store).
fn tls_client(plan: &Plan) -> Result<Option<tls::Client>, RunError> {
    match &plan.tls {
        None => Ok(None),
        Some(settings) => tls::Client::new(plan.addr, settings)
            .map(Some)
            .map_err(RunError::Setup),
    }
}

/// One connection (and TLS handshake) before anything starts, so an
/// unreachable target is a setup error with a reason.
fn probe(plan: &Plan, tls: Option<&tls::Client>) -> Result<(), RunError> {
    let mut rt = RuntimeBuilder::<LegacyDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot build runtime: {e}")))?;
    let limit = plan.timeout.min(Duration::from_secs(5));
    let result = rt.block_on(async {
        match tls {
            None => try_connect(&Plain { addr: plan.addr }, limit).await,
            Some(c) => try_connect(c, limit).await,
        }
    });
    result.map_err(|reason| RunError::Unreachable {
        addr: plan.addr.to_string(),
        reason,
    })
}

async fn try_connect<C: Connector>(c: &C, limit: Duration) -> Result<(), String> {
    match monoio::time::timeout(limit, c.connect()).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {}",
            crate::units::fmt_duration(limit)
        )),
    }
}

/// Merges thread intervals into seconds and totals.
struct Merger {
    threads: usize,
    started: SystemTime,
    open_loop: bool,
    /// Next interval index expected from each thread (they arrive in order
    /// per thread).
    next_from: Vec<u32>,
    done: Vec<bool>,
    /// Per index: merged measurements and the latest `until` reported.
    pending: BTreeMap<u32, (Latencies, Counters, Duration)>,
    total: Latencies,
    counters: Counters,
    summaries: Vec<IntervalSummary>,
}

impl Merger {
    fn new(threads: usize, open_loop: bool, started: SystemTime) -> Merger {
        Merger {
            threads,
            started,
            open_loop,
            next_from: vec![0; threads],
            done: vec![false; threads],
            pending: BTreeMap::new(),
            total: Latencies::new(open_loop),
            counters: Counters::default(),
            summaries: Vec::new(),
        }
    }

    fn add(&mut self, thread: usize, iv: Interval) {
        self.next_from[thread] = iv.index + 1;
        let open_loop = self.open_loop;
        let slot = self.pending.entry(iv.index).or_insert_with(|| {
            (
                Latencies::new(open_loop),
                Counters::default(),
                Duration::ZERO,
            )
        });
        slot.0.merge(&iv.latencies);
        slot.1.merge(&iv.counters);
        slot.2 = slot.2.max(iv.until);
        self.total.merge(&iv.latencies);
        self.counters.merge(&iv.counters);
    }

    /// Whether every thread has reported interval `i` or has finished.
    fn complete(&self, i: u32) -> bool {
        (0..self.threads).all(|t| self.next_from[t] > i || self.done[t])
    }

    /// Hands complete intervals to the callback, in order; with `all`,
    /// every pending one (the run is over).
    fn emit(&mut self, all: bool, on_interval: &mut dyn FnMut(&MergedInterval<'_>)) {
        while let Some((&i, _)) = self.pending.first_key_value() {
            if !all && !self.complete(i) {
                break;
            }
            let (lat, ctr, until) = self.pending.remove(&i).expect("key just seen");
            let from = Duration::from_secs(u64::from(i));
            let duration = until.saturating_sub(from);
            on_interval(&MergedInterval {
                index: i,
                start: from,
                duration,
                latencies: &lat,
                counters: &ctr,
                run_started: self.started,
            });
            let h = &lat.latency;
            self.summaries.push(IntervalSummary {
                t: i,
                duration,
                responses: ctr.responses,
                errors: ctr.errors.total(),
                p50_us: h.value_at_quantile(0.5),
                p99_us: h.value_at_quantile(0.99),
                max_us: h.max(),
            });
        }
    }
}
