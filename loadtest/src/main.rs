//! `ringway-load`: the command line over [`ringway_loadtest`].
//!
//! Parses flags, builds the plan, runs it with a live line on a terminal,
//! prints the report and the targets' verdicts, and exits 0 (targets met),
//! 1 (a target failed) or 2 (usage or setup error).

#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ringway_loadtest::plot::{self, Series};
use ringway_loadtest::report::Report;
use ringway_loadtest::run::{self, MergedInterval, RunError};
use ringway_loadtest::scenario::{self, Flags};
use ringway_loadtest::targets::{self, EXIT_SETUP};
use ringway_loadtest::units::{fmt_micros, fmt_rate, parse_duration};
use ringway_loadtest::url::Url;
use ringway_loadtest::window::Windows;
use ringway_loadtest::{compare, hdrlog};

/// HTTP/1.1 load generator: open loop with coordinated-omission-corrected
/// latency (--rate), or closed loop at maximum throughput (no --rate).
///
/// Exit status: 0 when every target passes (or none is set), 1 when a
/// target fails, 2 on usage or setup errors (bad flags or scenario file,
/// unresolvable host, nothing accepting connections at the start).
#[derive(Parser, Debug)]
#[command(name = "ringway-load", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Target URL, http://host:port/path?query or https://… (optional when
    /// the scenario file sets `url`).
    url: Option<String>,

    #[command(flatten)]
    load: LoadArgs,

    #[command(flatten)]
    targets: TargetArgs,

    /// Write the full report as JSON to FILE. Percentiles are in µs:
    /// `latency` to the end of each response, `first_byte` to the first
    /// byte of its body (the first event of a stream; only responses with
    /// a body count), both from the send (closed loop) or the intended
    /// send (open loop).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write an HdrHistogram interval log (one entry per second) to FILE.
    #[arg(long, value_name = "FILE")]
    hdr_log: Option<PathBuf>,

    /// Write a latency-by-percentile chart (SVG) to FILE.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,

    /// Also report the run in consecutive windows of DUR (whole seconds,
    /// e.g. 10s): counts, errors and latency percentiles of each, in the
    /// summary and the JSON.
    #[arg(long, value_name = "DUR")]
    window: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the same load against A and B alternately for several rounds and
    /// print, for each figure, the median for A, for B and the ratio A/B.
    /// Targets do not apply here (a [targets] table in the scenario file is
    /// ignored); the exit status is 0 unless setup fails (2).
    Compare(CompareArgs),
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// First target URL.
    a: String,
    /// Second target URL. A request from flags goes to each URL's own path;
    /// scenario requests keep their paths on both.
    b: String,

    /// Rounds of A-then-B runs.
    #[arg(long, default_value_t = 3, value_name = "K")]
    rounds: usize,

    #[command(flatten)]
    load: LoadArgs,

    /// Write the comparison (medians and every run's report) as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// Scenario file (TOML): requests with weights, stages, targets.
    /// Flags given on the command line override it.
    #[arg(short = 's', long, value_name = "FILE")]
    scenario: Option<PathBuf>,

    /// Connections, each a keep-alive connection with one request in flight
    /// [default: 64].
    #[arg(short = 'c', long)]
    connections: Option<usize>,

    /// Threads, each a monoio runtime pinned to one CPU [default: one per
    /// CPU in --cpus, at most one per connection].
    #[arg(short = 't', long)]
    threads: Option<usize>,

    /// CPUs to pin threads to, e.g. 0,1 or 2-5 [default: the CPUs this
    /// process may use].
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,

    /// Run length, e.g. 30s or 2m [default: 10s].
    #[arg(short = 'd', long)]
    duration: Option<String>,

    /// Open loop: total requests per second on a fixed schedule; latency is
    /// measured from each request's intended send time. Without it the
    /// run is closed loop (as fast as responses come back).
    #[arg(short = 'R', long, value_name = "REQ/S")]
    rate: Option<String>,

    /// Open loop with a rate that changes: DURATION:RATE ramps from the
    /// previous rate (0 at first) to RATE, DURATION:FROM->TO ramps between
    /// the two, e.g. "10s:0->1000,30s:1000,10s:0".
    #[arg(long, value_name = "STAGES")]
    stages: Option<String>,

    /// A request without a complete response after this is a timeout error
    /// [default: 10s].
    #[arg(long)]
    timeout: Option<String>,

    /// I/O driver: io_uring (falls back to epoll where unavailable) or epoll.
    #[arg(long, value_name = "io_uring|epoll")]
    driver: Option<String>,

    /// Request method [default: GET].
    #[arg(short = 'm', long)]
    method: Option<String>,

    /// Request header "Name: value" (repeatable; added to every request).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,

    /// Request body.
    #[arg(long)]
    body: Option<String>,

    /// Request body read from FILE.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,

    /// How connections pick among several requests: round-robin (exact
    /// weights) or random (seeded) [default: round-robin].
    #[arg(long, value_name = "round-robin|random")]
    pick: Option<String>,

    /// Seed for --pick random [default: 1].
    #[arg(long)]
    seed: Option<u64>,

    /// Accept any TLS certificate (self-signed test servers).
    #[arg(short = 'k', long)]
    insecure: bool,

    /// Disable TLS session resumption: every connection does a full
    /// handshake. With -H "Connection: close" each request opens a new
    /// connection, so the rate is full handshakes per second.
    #[arg(long)]
    no_resume: bool,
}

#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Target: median latency at most DUR (e.g. 5ms).
    #[arg(long, value_name = "DUR")]
    p50: Option<String>,
    /// Target: 90th percentile latency at most DUR.
    #[arg(long, value_name = "DUR")]
    p90: Option<String>,
    /// Target: 99th percentile latency at most DUR.
    #[arg(long, value_name = "DUR")]
    p99: Option<String>,
    /// Target: 99.9th percentile latency at most DUR.
    #[arg(long, value_name = "DUR")]
    p999: Option<String>,
    /// Target: maximum latency at most DUR.
    #[arg(long, value_name = "DUR")]
    max: Option<String>,
    /// Target: failed requests over attempted ones at most FRACTION (0.001 = 0.1%).
    #[arg(long, value_name = "FRACTION")]
    max_error_rate: Option<String>,
    /// Target: achieved responses per second at least R.
    #[arg(long, value_name = "R")]
    min_rate: Option<String>,
    /// Statuses that count as success, e.g. 200,2xx,304; with this flag every
    /// response must have one [default set: 2xx,3xx, not a target].
    #[arg(long, value_name = "LIST")]
    expect_status: Option<String>,
}

fn flags(url: Option<String>, l: &LoadArgs, t: Option<&TargetArgs>) -> Flags {
    let mut f = Flags {
        url,
        scenario: l.scenario.clone(),
        method: l.method.clone(),
        headers: l.headers.clone(),
        body: l.body.clone(),
        body_file: l.body_file.clone(),
        connections: l.connections,
        threads: l.threads,
        cpus: l.cpus.clone(),
        duration: l.duration.clone(),
        rate: l.rate.clone(),
        stages: l.stages.clone(),
        timeout: l.timeout.clone(),
        driver: l.driver.clone(),
        insecure: l.insecure,
        no_resume: l.no_resume,
        pick: l.pick.clone(),
        seed: l.seed,
        ..Flags::default()
    };
    if let Some(t) = t {
        f.p50 = t.p50.clone();
        f.p90 = t.p90.clone();
        f.p99 = t.p99.clone();
        f.p999 = t.p999.clone();
        f.max = t.max.clone();
        f.max_error_rate = t.max_error_rate.clone();
        f.min_rate = t.min_rate.clone();
        f.expect_status = t.expect_status.clone();
    }
    f
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    // First Ctrl-C: finish with a report of what was measured. Second: exit.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let code = match cli.command {
        Some(Command::Compare(ref c)) => run_compare(c, stop),
        None => run_single(&cli, stop),
    };
    match code {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_SETUP as u8)
        }
    }
}

fn run_single(cli: &Cli, stop: Arc<AtomicBool>) -> anyhow::Result<i32> {
    let built = match scenario::build(&flags(cli.url.clone(), &cli.load, Some(&cli.targets))) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_SETUP);
        }
    };
    let plan = built.plan;
    let mut windows = match cli.window.as_deref().map(|w| {
        parse_duration(w)
            .and_then(|width| Windows::new(width, plan.load.is_open(), plan.load.duration()))
    }) {
        None => None,
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => {
            eprintln!("error: --window: {e}");
            return Ok(EXIT_SETUP);
        }
    };
    let live = std::io::stderr().is_terminal();
    let mut progress = Progress::new(live, &plan);
    let mut observe = |m: &MergedInterval<'_>| {
        progress.show(m);
        if let Some(w) = windows.as_mut() {
            w.add(m);
        }
    };
    let outcome = match &cli.hdr_log {
        None => run::run(&plan, stop, &mut observe),
        Some(path) => hdrlog::scoped(path, |log| {
            run::run(&plan, stop, &mut |m| {
                observe(m);
                log(m);
            })
        })
        .with_context(|| format!("writing {}", path.display()))?,
    };
    progress.clear();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e @ (RunError::Unreachable { .. } | RunError::Setup(_))) => {
            eprintln!("error: {e}");
            return Ok(EXIT_SETUP);
        }
    };
    let mut report = Report::new(&plan, &outcome);
    report.windows = windows.map(Windows::finish).unwrap_or_default();
    report.targets = targets::evaluate(&built.targets, &report);
    print!("{}", report.summary());
    std::io::stdout().flush().context("writing the report")?;
    if let Some(path) = &cli.json {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.plot {
        let mut series = vec![Series {
            label: if plan.load.is_open() {
                "corrected (from intended send)"
            } else {
                "latency"
            },
            histogram: &outcome.latencies.latency,
            color: "#c0392b",
        }];
        if let Some(h) = outcome.latencies.service.as_ref() {
            series.push(Series {
                label: "service time (from actual send)",
                histogram: h,
                color: "#2471a3",
            });
        }
        let title = format!("{} — {} loop", plan.url, report.mode);
        std::fs::write(path, plot::svg(&title, &series))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(targets::exit_code(&report.targets))
}

fn run_compare(c: &CompareArgs, stop: Arc<AtomicBool>) -> anyhow::Result<i32> {
    let built = match scenario::build(&flags(Some(c.a.clone()), &c.load, None)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_SETUP);
        }
    };
    let a = built.plan;
    let b_url = match Url::parse(&c.b) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: B: {e}");
            return Ok(EXIT_SETUP);
        }
    };
    let b_addr = match b_url.resolve() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("error: B: {e}");
            return Ok(EXIT_SETUP);
        }
    };
    let b = a.retarget(b_url, b_addr);
    let mut show = |round: usize, name: &str, r: &Report| {
        eprintln!(
            "round {} {name}: {}, p50 {}, p99 {}, {} errors",
            round + 1,
            fmt_rate(r.achieved_rate),
            fmt_micros(r.latency.p50_us),
            fmt_micros(r.latency.p99_us),
            r.errors.total()
        );
    };
    let comparison = match compare::compare(&a, &b, c.rounds, stop, &mut show) {
        Ok(cmp) => cmp,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_SETUP);
        }
    };
    print!("{}", comparison.table());
    if let Some(path) = &c.json {
        let text = serde_json::to_string_pretty(&comparison).context("serialising")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(targets::EXIT_PASS)
}

/// The live line: one update per second on a terminal, nothing otherwise.
struct Progress {
    live: bool,
    open_loop: bool,
    responses: u64,
    errors: u64,
    /// Everything so far, for the cumulative p99.
    so_far: hdrhistogram::Histogram<u64>,
}

impl Progress {
    fn new(live: bool, plan: &ringway_loadtest::Plan) -> Progress {
        Progress {
            live,
            open_loop: plan.load.is_open(),
            responses: 0,
            errors: 0,
            so_far: ringway_loadtest::stats::histogram(),
        }
    }

    fn show(&mut self, m: &MergedInterval<'_>) {
        if !self.live {
            return;
        }
        self.responses += m.counters.responses;
        self.errors += m.counters.errors.total();
        let _ = self.so_far.add(&m.latencies.latency);
        let secs = m.duration.as_secs_f64().max(1e-3);
        eprint!(
            "\r\x1b[K[{:>4}s] {:>10}  p99{} {:>8} this second, {:>8} so far  {} responses, {} errors",
            m.index + 1,
            fmt_rate(m.counters.responses as f64 / secs),
            if self.open_loop { " (corrected)" } else { "" },
            fmt_micros(m.latencies.latency.value_at_quantile(0.99)),
            fmt_micros(self.so_far.value_at_quantile(0.99)),
            self.responses,
            self.errors,
        );
    }

    fn clear(&self) {
        if self.live {
            eprint!("\r\x1b[K");
        }
    }
}
