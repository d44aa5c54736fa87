//! Test servers for the integration tests: plain std threads on
//! 127.0.0.1:0, one thread per connection, answering each request with
//! whatever the test's handler says — valid responses of any framing,
//! invalid ones, stalls, silence — and counting what they sent so tests
//! can compare the generator's counts with the server's.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringway_loadtest::report::Report;
use ringway_loadtest::run;
use ringway_loadtest::scenario::{self, Flags};

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Order of arrival over the whole server, from 0.
    pub index: u64,
    /// The connection it came on, numbered in accept order from 0.
    pub conn: u64,
    pub method: String,
    pub path: String,
    /// Time since the server started.
    pub at: Duration,
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Write these bytes and keep reading.
    Send(Vec<u8>),
    /// Write these bytes, then close the connection.
    SendAndClose(Vec<u8>),
    /// Hold the connection for this long, then write the bytes.
    Stall(Duration, Vec<u8>),
    /// Write the response in parts, each after holding the connection for
    /// its pause (a streamed answer: head, then events as they come).
    Parts(Vec<(Duration, Vec<u8>)>),
    /// Never answer; wait for the client to go away.
    Silent,
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A running test server; stops accepting when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Responses fully written, by status code (0 for non-HTTP bytes).
    pub sent: Arc<Mutex<Vec<(u16, u64)>>>,
    pub requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let started = Instant::now();
        let accept = {
            let stop = stop.clone();
            let requests = requests.clone();
            let sent = sent.clone();
            std::thread::spawn(move || {
                for (id, conn) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let handler = handler.clone();
                    let requests = requests.clone();
                    let sent = sent.clone();
                    std::thread::spawn(move || {
                        serve(conn, id as u64, &*handler, &requests, &sent, started);
                    });
                }
            })
        };
        TestServer {
            addr,
            sent,
            requests,
            stop,
            accept: Some(accept),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Responses written with `status`.
    pub fn sent_with(&self, status: u16) -> u64 {
        self.sent
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }

    pub fn sent_total(&self) -> u64 {
        self.sent
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(_, n)| n)
            .sum()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    mut conn: TcpStream,
    id: u64,
    handler: &Handler,
    requests: &AtomicU64,
    sent: &Mutex<Vec<(u16, u64)>>,
    started: Instant,
) {
    let _ = conn.set_nodelay(true);
    // No test runs this long; a stuck client must not keep a thread.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Read one request head (and its Content-Length body).
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let body_len = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + body_len {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + body_len);
        let mut line = head.lines().next().unwrap_or_default().split(' ');
        let seen = Seen {
            index: requests.fetch_add(1, Ordering::SeqCst),
            conn: id,
            method: line.next().unwrap_or_default().to_string(),
            path: line.next().unwrap_or_default().to_string(),
            at: started.elapsed(),
        };
        let (bytes, close) = match handler(&seen) {
            Reply::Parts(parts) => {
                let status = parts.first().map_or(0, |(_, head)| status_of(head));
                for (pause, part) in parts {
                    std::thread::sleep(pause);
                    if conn.write_all(&part).is_err() {
                        return;
                    }
                }
                count(sent, status);
                continue;
            }
            Reply::Send(b) => (b, false),
            Reply::SendAndClose(b) => (b, true),
            Reply::Stall(d, b) => {
                std::thread::sleep(d);
                (b, false)
            }
            Reply::Silent => {
                // Until the client gives up and closes.
                while matches!(conn.read(&mut chunk), Ok(n) if n > 0) {}
                return;
            }
        };
        if conn.write_all(&bytes).is_err() {
            return;
        }
        count(sent, status_of(&bytes));
        if close {
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn count(sent: &Mutex<Vec<(u16, u64)>>, status: u16) {
    let mut v = sent.lock().expect("not poisoned");
    match v.iter_mut().find(|(s, _)| *s == status) {
        Some((_, n)) => *n += 1,
        None => v.push((status, 1)),
    }
}

fn status_of(bytes: &[u8]) -> u16 {
    std::str::from_utf8(bytes.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|_| bytes.starts_with(b"HTTP/1."))
        .unwrap_or(0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete response with a `Content-Length` body.
pub fn response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Flags for a short run against `url` on one thread.
pub fn flags(url: &str) -> Flags {
    Flags {
        url: Some(url.to_string()),
        threads: Some(1),
        connections: Some(4),
        duration: Some("1s".to_string()),
        ..Flags::default()
    }
}

/// Builds and runs `flags`, returning the report.
pub fn run_flags(flags: &Flags) -> Report {
    let built = scenario::build(flags).expect("valid flags");
    let stop = Arc::new(AtomicBool::new(false));
    let out = run::run(&built.plan, stop, &mut |_| {}).expect("run starts");
    Report::new(&built.plan, &out)
}
