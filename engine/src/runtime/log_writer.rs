//! The access-log writer: one thread that drains every worker's queue,
//! formats each record and writes the lines in buffered batches.
//!
//! It wakes every [`POLL`] (25 ms) while the log is on, or earlier when a
//! worker's queue reaches its wake mark, and writes its buffer out when it
//! holds [`BUFFER`] (64 KiB) or [`FLUSH_EVERY`] (100 ms) has passed since
//! the last write: a line reaches the file within about 125 ms, and a busy
//! gateway makes one `write(2)` per 64 KiB of lines. While the log is off it
//! sleeps until told otherwise. A clean stop drains every queue and writes
//! everything before the thread ends, so no record is lost.
//!
//! The control plane tells it about each new config generation before any
//! worker runs it, with the output already opened when the path changed
//! (so a path that cannot be opened fails the reload, not the log). The
//! writer keeps the names of the last [`KEPT_GENERATIONS`] generations to
//! name listeners, routes, upstreams and consumers by the config each
//! request ran on; a request that outlives that many reloads is logged
//! without those names.
//! Reopening (SIGUSR1, `POST /logs/reopen`) writes what is buffered to the
//! old file, then opens the path again: after logrotate renamed the file,
//! that creates a new one.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use ringway_config::{LogFormat, LogTarget};

use crate::access_log::format::{self, Catalog, Names};
use crate::access_log::queue::{Sinks, PREFILL};
use crate::access_log::record::Record;
use crate::snapshot::Snapshot;
use crate::worker::Hooks;

/// How often the writer looks at the queues while the log is on.
const POLL: Duration = Duration::from_millis(25);
/// Longest a line waits in the writer's buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Buffered bytes that are written out at once.
const BUFFER: usize = 64 << 10;
/// Config generations whose names the writer can still look up.
const KEPT_GENERATIONS: usize = 16;
/// How long a reopen request waits for the writer.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

/// Where lines go.
pub(crate) enum Output {
    Stdout,
    File { path: PathBuf, file: File },
}

impl Output {
    /// Opens `target` for appending, creating the file when missing.
    pub(crate) fn open(target: &LogTarget) -> io::Result<Output> {
        match target {
            LogTarget::Stdout => Ok(Output::Stdout),
            LogTarget::File(path) => Ok(Output::File {
                file: append(path)?,
                path: path.clone(),
            }),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Output::File { file, .. } => file.write_all(bytes),
        }
    }
}

fn append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

enum Msg {
    /// A new generation; `output` is set when the log's path changed or
    /// the log was turned on.
    Apply {
        snapshot: Arc<Snapshot>,
        output: Option<Output>,
    },
    /// Reopen the file; the answer says whether there was one.
    Reopen(Sender<Result<bool, String>>),
}

/// A handle on the writer thread.
pub(crate) struct LogWriter {
    tx: Sender<Msg>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl LogWriter {
    /// Starts the writer on generation `snapshot`, writing to `output`
    /// (opened by the caller when the log is enabled).
    pub(crate) fn start(
        snapshot: Arc<Snapshot>,
        output: Option<Output>,
        hooks: Arc<Hooks>,
    ) -> io::Result<LogWriter> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            rx,
            stop: stop.clone(),
            hooks,
            catalogs: VecDeque::new(),
            generation: 0,
            format: LogFormat::Json,
            sinks: None,
            output: None,
            buf: Vec::with_capacity(BUFFER + 4096),
            last_write: Instant::now(),
            failing: false,
            draining: false,
        };
        // Queued before the thread starts: its first pass applies it.
        let _ = tx.send(Msg::Apply { snapshot, output });
        let thread = std::thread::Builder::new()
            .name("ringway-log".into())
            .spawn(move || writer.run())?;
        Ok(LogWriter {
            tx,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Tells the writer about a new generation (before any worker runs
    /// it).
    pub(crate) fn apply(&self, snapshot: Arc<Snapshot>, output: Option<Output>) {
        let _ = self.tx.send(Msg::Apply { snapshot, output });
        self.wake();
    }

    /// Reopens the log file and waits until it is done: `Ok(true)` when a
    /// file was reopened, `Ok(false)` when the log is off or goes to
    /// standard output.
    pub(crate) fn reopen(&self) -> Result<bool, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.tx.send(Msg::Reopen(tx)).is_err() {
            return Err("the access-log writer has stopped".into());
        }
        self.wake();
        rx.recv_timeout(REOPEN_WAIT)
            .map_err(|_| "the access-log writer did not answer in time".to_string())?
    }

    /// Stops the writer once it has written every queued record; waits
    /// for it. Later calls do nothing.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.lock().take();
        if let Some(t) = thread {
            t.thread().unpark();
            let _ = t.join();
        }
    }

    /// Tells the writer to write what is queued and end, without waiting
    /// for it.
    pub(crate) fn signal_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        if let Some(t) = self.lock().as_ref() {
            t.thread().unpark();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        // Only the join handle is behind it: a panic cannot leave it torn.
        self.thread.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// The writer thread's state.
struct Writer {
    rx: Receiver<Msg>,
    stop: Arc<AtomicBool>,
    hooks: Arc<Hooks>,
    /// The names of recent generations, oldest first.
    catalogs: VecDeque<(u64, Catalog)>,
    /// The newest generation and its format.
    generation: u64,
    format: LogFormat,
    sinks: Option<Arc<Sinks>>,
    /// `None` while the log is off.
    output: Option<Output>,
    buf: Vec<u8>,
    last_write: Instant,
    /// The last write failed (reported once until one succeeds).
    failing: bool,
    /// Inside [`Writer::drain`]: a message taken then must not drain again
    /// (the record in hand would be written after later ones).
    draining: bool,
}

impl Writer {
    fn run(mut self) {
        loop {
            if let Some(stall) = &self.hooks.log_writer_stall {
                stall();
            }
            let stopping = self.stop.load(Ordering::SeqCst);
            self.take_messages();
            self.drain();
            if stopping {
                // Workers have stopped: what is queued is all there is.
                self.take_messages();
                self.drain();
                self.write_out();
                return;
            }
            if !self.buf.is_empty() && self.last_write.elapsed() >= FLUSH_EVERY {
                self.write_out();
            }
            if self.output.is_some() || !self.buf.is_empty() {
                std::thread::park_timeout(POLL);
            } else {
                std::thread::park();
            }
        }
    }

    fn take_messages(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Apply { snapshot, output } => self.apply(snapshot, output),
                Msg::Reopen(reply) => {
                    let _ = reply.send(self.reopen());
                }
            }
        }
    }

    /// Switches to a new generation: records queued so far are written
    /// with the old settings, to the old output.
    fn apply(&mut self, snapshot: Arc<Snapshot>, output: Option<Output>) {
        if !self.draining {
            self.drain();
        }
        self.write_out();
        let enabled = snapshot.config.access_log.enabled;
        if !enabled {
            self.output = None;
        } else if output.is_some() {
            self.output = output;
        }
        if let Some(sinks) = &snapshot.log_sinks {
            if !self.sinks.as_ref().is_some_and(|s| Arc::ptr_eq(s, sinks)) {
                sinks.set_writer(std::thread::current());
                self.sinks = Some(sinks.clone());
            }
            if enabled {
                sinks.prefill(PREFILL);
            } else {
                sinks.shrink();
            }
        }
        if self.catalogs.len() == KEPT_GENERATIONS {
            self.catalogs.pop_front();
        }
        let config = &snapshot.config;
        self.catalogs
            .push_back((snapshot.generation, Catalog::of(config)));
        self.generation = snapshot.generation;
        self.format = config.access_log.format;
    }

    fn reopen(&mut self) -> Result<bool, String> {
        if !self.draining {
            self.drain();
        }
        self.write_out();
        let Some(Output::File { path, file }) = &mut self.output else {
            return Ok(false);
        };
        match append(path) {
            Ok(new) => {
                *file = new;
                tracing::info!(path = %path.display(), "access log reopened");
                Ok(true)
            }
            Err(e) => {
                let message = format!("cannot reopen {}: {e}", path.display());
                tracing::error!("{message}; still writing to the file open before");
                Err(message)
            }
        }
    }

    /// Formats every queued record (dropping them while the log is off).
    fn drain(&mut self) {
        let Some(sinks) = self.sinks.clone() else {
            return;
        };
        self.draining = true;
        for w in 0..sinks.workers() {
            while let Some(r) = sinks.recv(w) {
                if self.output.is_some() {
                    self.line(&r);
                    if self.buf.len() >= BUFFER {
                        self.write_out();
                    }
                }
                sinks.recycle(w, r);
            }
        }
        self.draining = false;
    }

    fn line(&mut self, r: &Record) {
        if self.generation < r.generation {
            // A worker already runs a generation whose message is still
            // queued here.
            self.take_messages();
        }
        let catalog = self
            .catalogs
            .iter()
            .rev()
            .find(|(g, _)| *g == r.generation)
            .map(|(_, c)| c);
        let names = Names::of(catalog, r);
        match self.format {
            LogFormat::Json => format::json(r, &names, &mut self.buf),
            LogFormat::Combined => format::combined(r, &names, &mut self.buf),
        }
    }

    fn write_out(&mut self) {
        self.last_write = Instant::now();
        if self.buf.is_empty() {
            return;
        }
        let Some(out) = &mut self.output else {
            self.buf.clear();
            return;
        };
        match out.write_all(&self.buf) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::error!(error = %e, "cannot write the access log; lines are lost until it works again");
                }
                self.failing = true;
            }
        }
        self.buf.clear();
    }
}
