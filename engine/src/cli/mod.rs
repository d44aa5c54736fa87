//! `ringway reload` and `ringway status`: the admin API from the shell;
//! `ringway ai models`: what a config's AI models resolve to.
//! What they share lives here: where the API is ([`Target`]) and how its
//! errors are printed; the status report has its own module.

mod ai;
mod status;

pub use ai::models as ai_models;
pub use status::status;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use ringway::admin::client;
use ringway_config::Config;
use serde_json::Value;

/// The admin API to talk to.
pub struct Target {
    addr: SocketAddr,
    token: Option<String>,
}

impl Target {
    /// Flags first, then the `[admin]` table of `-c FILE`, then the default
    /// 127.0.0.1:9901.
    pub fn resolve(
        config: Option<&Path>,
        addr: Option<SocketAddr>,
        token: Option<String>,
    ) -> Target {
        let from_file = config.and_then(|p| match Config::from_file(p) {
            Ok(c) => Some(c.admin),
            Err(e) => {
                eprintln!(
                    "ringway: ignoring {} for the admin address: {e}",
                    p.display()
                );
                None
            }
        });
        let default = SocketAddr::from(([127, 0, 0, 1], 9901));
        Target {
            addr: addr
                .or(from_file.as_ref().map(|a| a.address))
                .unwrap_or(default),
            token: token.or(from_file.and_then(|a| a.token)),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Option<(u16, Value)> {
        match client::call(self.addr, method, path, self.token.as_deref(), body) {
            Ok((status, text)) => {
                Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
            }
            Err(e) => {
                eprintln!("ringway: cannot reach the admin API at {}: {e}", self.addr);
                None
            }
        }
    }
}

/// Exit 0 when the reload took effect, 1 when it was refused, 2 when the
/// admin API could not be reached.
pub fn reload(target: Target, file: Option<&Path>) -> ExitCode {
    let answer = match file {
        Some(path) => {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("ringway: cannot read {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            };
            let json = path.extension().is_some_and(|e| e == "json");
            let kind = if json {
                "application/json"
            } else {
                "application/toml"
            };
            target.call("PUT", "/config", Some((kind, &bytes)))
        }
        None => target.call("POST", "/config/reload", None),
    };
    let Some((status, body)) = answer else {
        return ExitCode::from(2);
    };
    if status == 200 {
        let generation = &body["generation"];
        match body["propagation_us"].as_u64() {
            Some(us) => println!("reloaded: generation {generation}, on every worker in {us} µs"),
            None => println!("reloaded: generation {generation} (some workers still applying it)"),
        }
        for w in body["warnings"].as_array().into_iter().flatten() {
            println!("warning: {}", w.as_str().unwrap_or("?"));
        }
        for field in body["restart_required"].as_array().into_iter().flatten() {
            println!(
                "note: {} changed; it takes effect after a restart",
                field.as_str().unwrap_or("?")
            );
        }
        return ExitCode::SUCCESS;
    }
    print_errors(status, &body);
    ExitCode::from(1)
}

fn print_errors(status: u16, body: &Value) {
    eprintln!(
        "ringway: {} ({status})",
        body["error"].as_str().unwrap_or("admin API error")
    );
    for e in body["errors"].as_array().into_iter().flatten() {
        let path = e["path"].as_str().unwrap_or("");
        let msg = e["message"].as_str().unwrap_or("");
        match e["line"].as_u64() {
            Some(line) if line > 0 => eprintln!("  {line}:{}: {path}: {msg}", e["column"]),
            _ if path.is_empty() => eprintln!("  {msg}"),
            _ => eprintln!("  {path}: {msg}"),
        }
    }
}
