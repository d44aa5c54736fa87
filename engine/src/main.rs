//! The `ringway` binary: serve a config, validate one, or run a one-line
//! reverse proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ringway::Server;
use ringway_config::{Config, DEFAULT_CONFIG};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::Signals;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ringway: a thread-per-core HTTP API gateway.
///
/// With no arguments it serves a built-in default config on
/// 127.0.0.1:8080; try `curl http://127.0.0.1:8080/`.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Config file to serve (TOML). Without it, the embedded default.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file and print every error with its path, like `nginx -t`.
    Validate {
        /// The config file.
        file: PathBuf,
    },
    /// Reverse-proxy every request from one address to another, no config file needed.
    Proxy {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: SocketAddr,
        /// Upstream address to forward to, e.g. 127.0.0.1:3000.
        #[arg(long)]
        to: SocketAddr,
        /// Worker count (default: one per allowed CPU).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Print the embedded default config.
    DefaultConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Some(Command::Validate { file }) => return validate(&file),
        Some(Command::DefaultConfig) => {
            print!("{DEFAULT_CONFIG}");
            return ExitCode::SUCCESS;
        }
        Some(Command::Proxy {
            listen,
            to,
            workers,
        }) => proxy_config(listen, to, workers).and_then(serve),
        None => load(cli.config.as_deref()).and_then(serve),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringway: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn validate(file: &std::path::Path) -> ExitCode {
    match Config::from_file(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            let name = file.display().to_string();
            eprintln!("{}", errors.with_file(&name));
            eprintln!("{name}: {} error(s)", errors.len());
            ExitCode::from(1)
        }
    }
}

fn load(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    match file {
        Some(path) => Config::from_file(path).map_err(|errors| {
            anyhow::anyhow!(
                "invalid config:\n{}",
                errors.with_file(&path.display().to_string())
            )
        }),
        None => Config::from_toml_str(DEFAULT_CONFIG)
            .map_err(|e| anyhow::anyhow!("embedded default config is invalid: {e}")),
    }
}

fn proxy_config(
    listen: SocketAddr,
    to: SocketAddr,
    workers: Option<usize>,
) -> anyhow::Result<Config> {
    let workers = match workers {
        Some(n) => n.to_string(),
        None => "\"auto\"".into(),
    };
    let src = format!(
        "workers = {workers}\n\
         [[listeners]]\naddress = \"{listen}\"\n\
         [[upstreams]]\nname = \"target\"\nservers = [\"{to}\"]\n\
         [[routes]]\nname = \"all\"\nupstream = \"target\"\n"
    );
    Config::from_toml_str(&src).map_err(|e| anyhow::anyhow!("{e}"))
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    // Registered before the workers start so no signal is missed. The
    // first SIGTERM/SIGINT sets `stopping` and starts the drain; one that
    // arrives while `stopping` is already set exits at once.
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        flag::register_conditional_shutdown(sig, 130, Arc::clone(&stopping))
            .context("installing signal handlers")?;
        flag::register(sig, Arc::clone(&stopping)).context("installing signal handlers")?;
    }
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    let drain = config.drain_timeout;
    let server = Server::start(config)?;
    for addr in server.listen_addrs() {
        tracing::info!(%addr, workers = server.workers().len(), "listening");
    }
    let first = signals.forever().next();
    tracing::info!(signal = ?first, deadline = ?drain, "draining; a second signal exits at once");
    server.begin_shutdown();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(server.wait(drain));
    });
    let drained = rx.recv().unwrap_or(false);
    if drained {
        tracing::info!("drained; bye");
    } else {
        tracing::warn!("drain deadline passed with requests in flight; exiting");
    }
    Ok(ExitCode::SUCCESS)
}
