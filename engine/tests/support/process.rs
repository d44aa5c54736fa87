//! The `ringway` binary as a child process, with the addresses it listens
//! on read from its log, and a small admin API client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringway");

/// An `[admin]` table that binds a free loopback port, for configs of
/// processes and gateways that run side by side.
pub const ADMIN: &str = "[admin]\naddress = \"127.0.0.1:0\"\n";

/// A `ringway` process with its listening addresses read from its log.
pub struct Process {
    pub child: Child,
    /// The first listener.
    pub addr: SocketAddr,
    /// The admin API, when enabled.
    pub admin: Option<SocketAddr>,
    /// Every log line so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

fn field(line: &str, name: &str) -> Option<SocketAddr> {
    let rest = line.split(&format!(" {name}=")).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

impl Process {
    pub fn start(mut cmd: Command) -> Process {
        let mut child = cmd
            .env("RINGWAY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ringway");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut admin = None;
        let addr = loop {
            let line = lines
                .next()
                .expect("ringway exited before listening")
                .expect("read log");
            log.lock().expect("log").push(line.clone());
            if line.contains("admin API started") {
                admin = field(&line, "admin");
            }
            if line.contains("listening") {
                if let Some(addr) = field(&line, "addr") {
                    break addr;
                }
            }
        };
        // None of these configs names a driver: the default, io_uring, must
        // be what every worker runs on (a seccomp profile that refuses
        // io_uring would make the runtime fall back to epoll silently).
        let started: Vec<String> = log
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains("worker started"))
            .cloned()
            .collect();
        assert!(!started.is_empty(), "no worker reported its driver");
        for line in &started {
            assert!(
                line.contains("io_uring"),
                "a worker is not on io_uring: {line}"
            );
        }
        // Keep reading the log so the process never blocks on it.
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().expect("log").push(line);
            }
        });
        Process {
            child,
            addr,
            admin,
            log,
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// True when some log line so far contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.log
            .lock()
            .expect("log")
            .iter()
            .any(|l| l.contains(text))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.expect("the admin API is enabled")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a config file into this test process's temp directory.
pub fn write_config(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ringway-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("config dir");
    }
    std::fs::write(&path, body).expect("write config");
    path
}

/// Sends `head` (a request head, possibly announcing a body that is never
/// sent) and returns the status and JSON body of the answer.
pub fn admin_raw(addr: SocketAddr, head: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).expect("connect to admin");
    s.write_all(head.as_bytes()).expect("send");
    read_answer(s)
}

/// One admin API call: status and JSON body.
pub fn admin_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).expect("connect to admin");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    s.write_all(body).expect("send body");
    read_answer(s)
}

fn read_answer(mut s: TcpStream) -> (u16, serde_json::Value) {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read answer");
    let text = String::from_utf8(out).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}
