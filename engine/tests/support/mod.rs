//! Test builders: a real upstream server, the gateway started in-process on
//! 127.0.0.1:0, and a raw HTTP/1.1 client — all over real sockets.

#![allow(dead_code)]

pub mod cached;
pub mod chromium;
pub mod counting;
pub mod dns;
pub mod llm;
pub mod llm_fixtures;
pub mod process;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringway::{Hooks, Logged, Server};
use ringway_config::Config;

/// Both drivers, as `driver` config values: io_uring and epoll.
pub const DRIVERS: [&str; 2] = ["io_uring", "epoll"];

thread_local! {
    static DRIVER: std::cell::Cell<&'static str> = const { std::cell::Cell::new("io_uring") };
}

/// The driver the current test body runs on (see [`on_both_drivers`]).
pub fn driver() -> &'static str {
    DRIVER.with(|d| d.get())
}

/// Runs a whole test body once per driver.
pub fn on_both_drivers(body: fn()) {
    for d in DRIVERS {
        DRIVER.with(|c| c.set(d));
        eprintln!("--- on {d}");
        body();
    }
}

/// A request as the upstream saw it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Raw chunked framing when the body came chunked.
    pub chunked: bool,
    pub trailers: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// What the upstream does with a request.
pub enum Reply {
    /// Send these bytes and keep the connection.
    Raw(Vec<u8>),
    /// Send these bytes, then close.
    RawClose(Vec<u8>),
    /// Close without answering.
    Close,
    /// Send bytes, then reset the connection (RST).
    RawReset(Vec<u8>),
    /// Wait, then send bytes and keep the connection.
    Delay(Duration, Vec<u8>),
    /// Stream `n` bytes of body with Content-Length.
    Stream(u64),
    /// Send the first bytes, wait, then send the second (stray) bytes on
    /// the same connection and keep it.
    Then(Vec<u8>, Duration, Vec<u8>),
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A real HTTP/1.1 upstream on 127.0.0.1:0, one thread per connection.
pub struct TestUpstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    /// Connections that have ended (EOF from the gateway, or closed here).
    pub closed: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Set once a `Reply::Then` sent its stray bytes.
    pub stray: Arc<AtomicBool>,
    /// Set by [`TestUpstream::stop`]: the listener closes.
    stopped: Arc<AtomicBool>,
    /// Every connection accepted, to cut them all on stop.
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl TestUpstream {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestUpstream {
        TestUpstream::start_on("127.0.0.1:0".parse().expect("addr"), handler)
    }

    /// An origin that holds every answer (`reply`) until the gateway put in
    /// the returned slot counts `waiting` requests collapsed onto a fetch
    /// in flight (or 20 s pass), so a test of collapsing does not depend
    /// on timing.
    pub fn holding_until_collapsed(
        waiting: u64,
        reply: Vec<u8>,
    ) -> (TestUpstream, Arc<Mutex<Option<ringway::Handle>>>) {
        let gateway: Arc<Mutex<Option<ringway::Handle>>> = Arc::default();
        let g = gateway.clone();
        let origin = TestUpstream::start(move |_| {
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                let collapsed = g
                    .lock()
                    .expect("lock")
                    .as_ref()
                    .map_or(0, |h| h.totals().cache_collapsed);
                if collapsed >= waiting {
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
            Reply::Raw(reply.clone())
        });
        (origin, gateway)
    }

    /// An upstream on `addr` (one that was stopped comes back on its
    /// address this way).
    pub fn start_on(
        addr: SocketAddr,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> TestUpstream {
        let listener = TcpListener::bind(addr).expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let stopped = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stray = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (c, r, s, d, x) = (
            connections.clone(),
            requests.clone(),
            seen.clone(),
            closed.clone(),
            stray.clone(),
        );
        let (stop, all) = (stopped.clone(), streams.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    all.lock().expect("lock").push(clone);
                }
                c.fetch_add(1, Ordering::SeqCst);
                let (h, r, s, d, x) = (handler.clone(), r.clone(), s.clone(), d.clone(), x.clone());
                thread::spawn(move || {
                    serve_upstream(stream, &*h, &r, &s, &x);
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        TestUpstream {
            addr,
            connections,
            closed,
            requests,
            seen,
            stray,
            stopped,
            streams,
        }
    }

    /// Stops listening and cuts every connection: from now on connecting
    /// to the address is refused.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which sees the flag and closes the listener.
        let _ = TcpStream::connect(self.addr);
        wait_until("the upstream's listener closed", || {
            TcpStream::connect(self.addr).is_err()
        });
        for s in self.streams.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Answers every request with 200 and `body`.
    pub fn ok(body: &'static str) -> TestUpstream {
        TestUpstream::start(move |_| Reply::Raw(response(200, body)))
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a request was seen")
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn stray_sent(&self) -> bool {
        self.stray.load(Ordering::SeqCst)
    }

    pub fn closed_count(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

pub fn response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn serve_upstream(
    stream: TcpStream,
    handler: &Handler,
    requests: &AtomicUsize,
    seen: &Mutex<Vec<Seen>>,
    stray: &AtomicBool,
) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        requests.fetch_add(1, Ordering::SeqCst);
        seen.lock().expect("lock").push(req.clone());
        let ok = match handler(&req) {
            Reply::Raw(b) => writer.write_all(&b).is_ok(),
            Reply::RawClose(b) => {
                let _ = writer.write_all(&b);
                let _ = writer.shutdown(Shutdown::Both);
                false
            }
            Reply::Close => {
                let _ = writer.shutdown(Shutdown::Both);
                false
            }
            Reply::RawReset(b) => {
                let _ = writer.write_all(&b);
                let _ = writer.flush();
                thread::sleep(Duration::from_millis(20));
                let s = socket2::SockRef::from(&writer);
                let _ = s.set_linger(Some(Duration::ZERO));
                false
            }
            Reply::Delay(d, b) => {
                thread::sleep(d);
                writer.write_all(&b).is_ok()
            }
            Reply::Stream(n) => stream_body(&mut writer, n).is_ok(),
            Reply::Then(first, pause, second) => {
                let ok = writer.write_all(&first).is_ok();
                thread::sleep(pause);
                let ok = ok && writer.write_all(&second).is_ok();
                stray.store(true, Ordering::SeqCst);
                ok
            }
        };
        if !ok {
            return;
        }
    }
}

fn stream_body(w: &mut TcpStream, n: u64) -> std::io::Result<()> {
    write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..k])?;
        left -= k as u64;
    }
    Ok(())
}

/// Reads one request (head and body) in blocking mode; `None` at EOF or on
/// garbage. Large bodies are counted, not kept, beyond 1 MiB.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = if parts.next()? == "HTTP/1.0" { 0 } else { 1 };
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let mut seen = Seen {
        method,
        target,
        version,
        headers,
        ..Seen::default()
    };
    // A server that reads the body tells a client that waits to send it
    // (RFC 9110 §10.1.1).
    let waits = seen
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if waits {
        r.get_ref()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .ok()?;
    }
    if seen.header("transfer-encoding").is_some() {
        seen.chunked = true;
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim_end().split(';').next()?, 16).ok()?;
            if n == 0 {
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t).ok()?;
                    if t == "\r\n" {
                        break;
                    }
                    seen.trailers.extend_from_slice(t.as_bytes());
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            keep_body(&mut seen.body, &chunk[..n]);
        }
    } else if let Some(len) = seen.header("content-length") {
        let mut left: u64 = len.parse().ok()?;
        let mut buf = vec![0; 64 * 1024];
        while left > 0 {
            let k = (left as usize).min(buf.len());
            r.read_exact(&mut buf[..k]).ok()?;
            keep_body(&mut seen.body, &buf[..k]);
            left -= k as u64;
        }
    }
    Some(seen)
}

/// Keeps the first MiB of a body and counts the rest in a trailing marker.
fn keep_body(body: &mut Vec<u8>, data: &[u8]) {
    const KEEP: usize = 1 << 20;
    if body.len() < KEEP {
        let k = data.len().min(KEEP - body.len());
        body.extend_from_slice(&data[..k]);
    }
}

/// The gateway, started in this process on 127.0.0.1:0.
pub struct TestGateway {
    pub server: Option<Server>,
    pub addr: SocketAddr,
}

impl TestGateway {
    /// `toml` is a config; `driver` is set to `driver`, a listener on
    /// 127.0.0.1:0 is added when it has none, and the admin API binds a free
    /// port unless it has an `[admin]` table.
    pub fn start(toml: &str, driver: &str) -> TestGateway {
        TestGateway::start_with(toml, driver, Hooks::default())
    }

    pub fn start_with(toml: &str, driver: &str, hooks: Hooks) -> TestGateway {
        let listeners = if toml.contains("[[listeners]]") {
            ""
        } else {
            "[[listeners]]\naddress = \"127.0.0.1:0\"\n"
        };
        let admin = if toml.contains("[admin]") {
            ""
        } else {
            process::ADMIN
        };
        let chosen = !toml.contains("driver =");
        let driver_line = if chosen {
            format!("driver = \"{driver}\"\n")
        } else {
            String::new()
        };
        let src = format!("{driver_line}{toml}\n{listeners}{admin}");
        let config = Config::from_toml_str(&src)
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n---\n{src}"));
        let server = Server::start_with(config, hooks).expect("gateway starts");
        // A test that says it runs on io_uring must: a kernel or seccomp
        // profile that refuses io_uring makes the runtime fall back to
        // epoll silently.
        if chosen {
            for w in server.workers() {
                assert_eq!(
                    w.driver, driver,
                    "worker {} asked for {driver} and got {} (is io_uring refused here?)",
                    w.id, w.driver
                );
            }
        }
        let addr = server.listen_addrs()[0];
        TestGateway {
            server: Some(server),
            addr,
        }
    }

    /// A config proxying everything to `upstream`, plus extra top-level TOML.
    pub fn proxy_to(upstream: SocketAddr, extra: &str, driver: &str) -> TestGateway {
        let workers = if extra.contains("workers") {
            ""
        } else {
            "workers = 2"
        };
        let toml = format!(
            "{workers}\n{extra}\n[[upstreams]]\nname = \"up\"\nservers = [\"{upstream}\"]\n\
             [[routes]]\nname = \"all\"\nupstream = \"up\"\n"
        );
        TestGateway::start(&toml, driver)
    }

    pub fn handle(&self) -> ringway::Handle {
        self.server.as_ref().expect("running").handle()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .expect("running")
            .admin_addr()
            .expect("admin enabled")
    }

    pub fn client(&self) -> TestClient {
        TestClient::connect(self.addr)
    }

    pub fn totals(&self) -> ringway::Totals {
        self.server.as_ref().expect("running").totals()
    }

    /// Waits until a counter condition holds (counters are updated by the
    /// workers after the response is written).
    pub fn wait_for(&self, what: &str, cond: impl Fn(&ringway::Totals) -> bool) {
        wait_until(what, || cond(&self.totals()));
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}

/// Polls `cond` until it holds; panics after 20 s (a hung test, not a slow one).
pub fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 client over a blocking socket, optionally TLS.
pub struct TestClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Set for a TLS client: the session over `stream`.
    pub tls: Option<rustls::ClientConnection>,
}

impl TestClient {
    pub fn connect(addr: SocketAddr) -> TestClient {
        let stream = TcpStream::connect(addr).expect("connect to gateway");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        TestClient {
            stream,
            buf: Vec::new(),
            tls: None,
        }
    }

    /// Connects with TLS, sending `sni` (none when empty), and completes
    /// the handshake; the error is the handshake's.
    pub fn connect_tls(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        sni: &str,
    ) -> std::io::Result<TestClient> {
        let mut c = TestClient::connect(addr);
        let name = if sni.is_empty() {
            rustls_pki_types::ServerName::IpAddress(addr.ip().into())
        } else {
            rustls_pki_types::ServerName::try_from(sni.to_string()).expect("valid SNI")
        };
        let mut conn = rustls::ClientConnection::new(config, name).expect("client session");
        while conn.is_handshaking() {
            conn.complete_io(&mut c.stream)?;
        }
        // Send what follows the handshake (a TLS 1.2 Finished, say).
        while conn.wants_write() {
            conn.complete_io(&mut c.stream)?;
        }
        c.tls = Some(conn);
        Ok(c)
    }

    pub fn send(&mut self, raw: &[u8]) {
        match &mut self.tls {
            Some(conn) => {
                let mut s = rustls::Stream::new(conn, &mut self.stream);
                s.write_all(raw).expect("send");
                s.flush().expect("flush");
            }
            None => self.stream.write_all(raw).expect("send"),
        }
    }

    /// Sends a GET with Host and reads the response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false).expect("response")
    }

    /// Reads one response. `head_request`: the request was HEAD.
    pub fn read_response(&mut self, head_request: bool) -> Option<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut res = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = res.parse(&self.buf) {
                let status = res.code.expect("code");
                let version = res.version.expect("version");
                let headers: Vec<(String, String)> = res
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..n);
                let mut resp = Response {
                    status,
                    version,
                    headers,
                    body: Vec::new(),
                };
                let bodiless = head_request || status < 200 || status == 204 || status == 304;
                if bodiless {
                } else if resp.header("transfer-encoding").is_some() {
                    resp.body = self.read_chunked()?;
                } else if let Some(len) = resp.header("content-length") {
                    let len: usize = len.parse().expect("length");
                    self.fill(len)?;
                    resp.body = self.buf.drain(..len).collect();
                } else {
                    // Until close.
                    while self.read_some() {}
                    resp.body = std::mem::take(&mut self.buf);
                }
                return Some(resp);
            }
            if !self.read_some() {
                return None;
            }
        }
    }

    fn read_chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                while !self.line()?.is_empty() {}
                return Some(body);
            }
            self.fill(size + 2)?;
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                return Some(l);
            }
            if !self.read_some() {
                return None;
            }
        }
    }

    fn fill(&mut self, n: usize) -> Option<()> {
        while self.buf.len() < n {
            if !self.read_some() {
                return None;
            }
        }
        Some(())
    }

    fn read_some(&mut self) -> bool {
        let mut tmp = [0u8; 64 * 1024];
        let read = match &mut self.tls {
            Some(conn) => rustls::Stream::new(conn, &mut self.stream).read(&mut tmp),
            None => self.stream.read(&mut tmp),
        };
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// True when the server closed the connection (EOF) with nothing more to read.
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && !self.read_some()
    }
}

/// Sends `raw` on a new connection, reads until the gateway closes it (or
/// `limit` bytes came), and returns what came.
pub fn exchange(addr: SocketAddr, raw: &[u8], limit: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(raw).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while got.len() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// The log records a gateway made, through its test hook.
#[derive(Clone, Default)]
pub struct Records(Arc<Mutex<Vec<Logged>>>);

impl Records {
    pub fn hooks(&self) -> Hooks {
        let records = self.0.clone();
        Hooks {
            on_log: Some(Arc::new(move |l: &Logged| {
                records.lock().expect("lock").push(l.clone())
            })),
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().expect("lock").len()
    }

    /// Waits for record number `n` (from 1) and returns it.
    pub fn nth(&self, n: usize) -> Logged {
        wait_until("a log record", || self.len() >= n);
        self.0.lock().expect("lock")[n - 1].clone()
    }
}
