//! The `ringway` binary: serve a config (reloading it on SIGHUP or, with
//! `--watch`, on change; reopening the access log on SIGUSR1), validate
//! one, run a one-line reverse proxy, or talk to a running ringway's admin
//! API (`reload`, `status`), hash a password for a consumer's Basic
//! credential (`hash-password`), or list a config's AI models (`ai
//! models`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ringway::Server;
use ringway_config::{Config, DEFAULT_CONFIG};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::flag;
use signal_hook::iterator::Signals;

mod cli;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// No transparent huge pages for the heap: with them, the allocator's
/// arena is faulted in 2 MiB at a time, so an idle gateway holds 17 MiB
/// instead of 8, and memory freed after a burst stays resident in huge
/// pages that are still partly used. Set before the workers start; the
/// kernel checks the flag at each page fault.
fn tune_memory() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integer arguments only and
    // changes only this process's huge-page policy.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        tracing::debug!(
            "cannot turn transparent huge pages off: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Gives the calling thread's freed memory back to the system: mimalloc
/// returns empty pages after a delay, but only when the thread calls into
/// it, which an idle worker does not. Workers call this every second;
/// `thorough` (after a quiet second, or once many connections closed) also
/// purges what the delay would still keep.
fn release_memory(thorough: bool) {
    // SAFETY: `mi_collect` takes no pointers and only frees what the
    // calling thread's heap no longer uses.
    unsafe { libmimalloc_sys::mi_collect(thorough) }
}

/// ringway: a thread-per-core HTTP API gateway.
///
/// With no arguments it serves a built-in default config on
/// 127.0.0.1:8080; try `curl http://127.0.0.1:8080/`.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Config file to serve (TOML). Without it, the embedded default. With
    /// `reload` and `status`, the file to take the admin address and token from.
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Reload when the config file changes (including a rename over it).
    #[arg(long)]
    watch: bool,

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
        /// Serve the admin API on this address (default: no admin API).
        #[arg(long, value_name = "ADDR")]
        admin: Option<SocketAddr>,
    },
    /// Ask a running ringway to reload: re-read its config file, or, given
    /// FILE, replace its config with FILE's contents.
    Reload {
        /// A config to send instead of having the server re-read its own.
        file: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show a running ringway's figures: totals, per route request rate,
    /// error shares and p50/p99, per upstream server errors, cache hit
    /// ratio, reloads, certificate expiry, workers.
    Status {
        /// Print the admin API's `GET /status` JSON answer as it is.
        #[arg(long)]
        json: bool,
        /// Seconds between the two readings that rates and quantiles are
        /// taken over; 0 reads once and shows figures since start.
        #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = interval)]
        interval: std::time::Duration,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print the embedded default config.
    DefaultConfig,
    /// The AI gateway: `ringway ai models [-c FILE] [--json]` lists the
    /// models a config serves, each target with its provider, in the order
    /// they are tried.
    Ai {
        #[command(subcommand)]
        command: AiCommand,
    },
    /// Hash a password for a consumer's `basic.password-hash`.
    ///
    /// Reads the password from the first line of standard input (the line
    /// ending is not part of it; input is not hidden when typed at a
    /// terminal) and prints an argon2id PHC string (m=19456 KiB, t=2, p=1,
    /// random salt), e.g.
    /// `printf '%s\n' "$PASSWORD" | ringway hash-password`.
    HashPassword,
}

#[derive(Subcommand)]
enum AiCommand {
    /// List the configured models and their targets.
    Models {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Where the admin API is. Defaults come from `-c FILE`'s `[admin]` table,
/// else 127.0.0.1:9901 without a token.
#[derive(clap::Args)]
struct AdminArgs {
    /// Admin API address.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// Bearer token for the admin API.
    #[arg(long, env = "RINGWAY_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn main() -> ExitCode {
    tune_memory();
    ringway::set_memory_release(release_memory);
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Some(Command::Validate { file }) => return validate(&file),
        Some(Command::DefaultConfig) => {
            print!("{DEFAULT_CONFIG}");
            return ExitCode::SUCCESS;
        }
        Some(Command::HashPassword) => return hash_password(),
        Some(Command::Ai {
            command: AiCommand::Models { json },
        }) => return cli::ai_models(cli.config.as_deref(), json),
        Some(Command::Proxy {
            listen,
            to,
            workers,
            admin,
        }) => proxy_config(listen, to, workers, admin).and_then(|c| serve(c, None, None)),
        Some(Command::Reload { file, admin }) => {
            let target = cli::Target::resolve(cli.config.as_deref(), admin.admin, admin.token);
            return cli::reload(target, file.as_deref());
        }
        Some(Command::Status {
            json,
            interval,
            admin,
        }) => {
            let target = cli::Target::resolve(cli.config.as_deref(), admin.admin, admin.token);
            return cli::status(target, json, interval);
        }
        None => load(cli.config.as_deref()).and_then(|(config, bytes)| {
            let watch = match (cli.watch, cli.config.as_deref(), bytes) {
                (true, Some(path), Some(bytes)) => Some((path, bytes)),
                (true, _, _) => anyhow::bail!("--watch needs a config file (-c FILE)"),
                _ => None,
            };
            serve(config, cli.config.as_deref(), watch)
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringway: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `--interval`: seconds, fractions allowed, at most a minute.
fn interval(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=60.0).contains(&secs) {
        return Err(format!("{text} is not between 0 and 60 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
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
    // Key material (PEM keys, JWKS files, password hashes) is loaded too.
    let checked = Config::from_file(file).and_then(|c| {
        let warnings = c.warnings.clone();
        ringway::check_config(c).map(|_| warnings)
    });
    match checked {
        Ok(warnings) => {
            for w in &warnings {
                eprintln!("{}: warning: {w}", file.display());
            }
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

/// `ringway hash-password`: one line of standard input in, one PHC string
/// out.
fn hash_password() -> ExitCode {
    use std::io::{BufRead, IsTerminal};

    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
    }
    let mut line = Vec::new();
    if let Err(e) = stdin.lock().read_until(b'\n', &mut line) {
        eprintln!("ringway: cannot read the password: {e}");
        return ExitCode::from(1);
    }
    let password = line.strip_suffix(b"\n").unwrap_or(&line);
    let password = password.strip_suffix(b"\r").unwrap_or(password);
    if password.is_empty() {
        eprintln!("ringway: empty password (give it on the first line of standard input)");
        return ExitCode::from(1);
    }
    match ringway::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringway: cannot hash the password: {e}");
            ExitCode::from(1)
        }
    }
}

/// The config to serve, and for a file, the bytes it was read from (what
/// `--watch` compares later changes against).
fn load(file: Option<&Path>) -> anyhow::Result<(Config, Option<Vec<u8>>)> {
    let Some(path) = file else {
        let config = Config::from_toml_str(DEFAULT_CONFIG)
            .map_err(|e| anyhow::anyhow!("embedded default config is invalid: {e}"))?;
        return Ok((config, None));
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = Config::from_toml_str(&String::from_utf8_lossy(&bytes)).map_err(|errors| {
        anyhow::anyhow!(
            "invalid config:\n{}",
            errors.with_file(&path.display().to_string())
        )
    })?;
    Ok((config, Some(bytes)))
}

fn proxy_config(
    listen: SocketAddr,
    to: SocketAddr,
    workers: Option<usize>,
    admin: Option<SocketAddr>,
) -> anyhow::Result<Config> {
    let workers = match workers {
        Some(n) => n.to_string(),
        None => "\"auto\"".into(),
    };
    let admin = match admin {
        Some(a) => format!("address = \"{a}\""),
        None => "enabled = false".into(),
    };
    let src = format!(
        "workers = {workers}\n\
         [admin]\n{admin}\n\
         [[listeners]]\naddress = \"{listen}\"\n\
         [[upstreams]]\nname = \"target\"\nservers = [\"{to}\"]\n\
         [[routes]]\nname = \"all\"\nupstream = \"target\"\n"
    );
    Config::from_toml_str(&src).map_err(|e| anyhow::anyhow!("{e}"))
}

fn serve(
    config: Config,
    file: Option<&Path>,
    watch: Option<(&Path, Vec<u8>)>,
) -> anyhow::Result<ExitCode> {
    // Registered before the workers start so no signal is missed. The
    // first SIGTERM/SIGINT sets `stopping` and starts the drain; one that
    // arrives while `stopping` is already set exits at once.
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        flag::register_conditional_shutdown(sig, 130, Arc::clone(&stopping))
            .context("installing signal handlers")?;
        flag::register(sig, Arc::clone(&stopping)).context("installing signal handlers")?;
    }
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).context("installing signal handlers")?;
    for w in &config.warnings {
        tracing::warn!(path = %w.path, "{}", w.message);
    }
    let server = Server::start(config)?;
    for addr in server.listen_addrs() {
        tracing::info!(%addr, workers = server.workers().len(), "listening");
    }
    let plane = server.handle();
    if let Some(path) = file {
        plane.set_config_file(path.to_path_buf());
    }
    let _watch = match watch {
        Some((path, loaded)) => Some(
            ringway::watch_config(path, loaded, plane.clone())
                .with_context(|| format!("watching {}", path.display()))?,
        ),
        None => None,
    };
    let mut first = None;
    for signal in signals.forever() {
        match signal {
            SIGHUP => {
                tracing::info!("SIGHUP: reloading the config file");
                // Success and failure are logged and counted by the plane.
                let _ = plane.reload_file();
            }
            SIGUSR1 => {
                // The writer logs a reopen and a failure to reopen.
                if let Ok(false) = plane.reopen_access_log() {
                    tracing::info!("SIGUSR1: no access-log file to reopen");
                }
            }
            _ => {
                first = Some(signal);
                break;
            }
        }
    }
    let drain = plane.drain_timeout();
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
