//! The admin API's listener: its own thread and its own socket, so nothing
//! an operator does with it runs on a worker or delays a request.
//!
//! Plain blocking I/O is enough here: admin traffic is a few requests a
//! second, each answered and closed (`Connection: close`). A thread per
//! connection, at most [`MAX_CONNECTIONS`] at once and each bounded by a
//! read timeout, keeps one stuck client from blocking the rest; past the
//! cap a connection gets 503 at once.

mod api;
pub mod client;
mod metrics;
mod page;
mod process;
mod stats;
mod upstreams;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::runtime::control::Handle;

/// Admin connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// Largest request head.
const MAX_HEAD: usize = 16 << 10;
/// Largest request body (a config).
const MAX_BODY: usize = 8 << 20;
/// How long a client may take to send its whole request, or to read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// After answering, unread input is read away for at most this long...
const LINGER: Duration = Duration::from_millis(200);
/// ...and at most this much.
const LINGER_MAX: usize = 64 << 10;

/// The running admin listener.
pub(crate) struct Admin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    listener: Arc<TcpListener>,
    thread: Option<JoinHandle<()>>,
}

impl Admin {
    /// Serves the admin API on `listener` until [`Admin::stop`].
    pub(crate) fn start(listener: TcpListener, plane: Handle) -> io::Result<Admin> {
        let addr = listener.local_addr()?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("ringway-admin".into())
            .spawn({
                let listener = listener.clone();
                let stop = stop.clone();
                move || accept_loop(&listener, &stop, plane)
            })?;
        tracing::info!(admin = %addr, "admin API started");
        Ok(Admin {
            addr,
            stop,
            listener,
            thread: Some(thread),
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; connections being answered finish on their own.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Shutting a listening socket down wakes a thread blocked in
        // accept(2) on Linux, which then sees `stop`.
        let _ = socket2::SockRef::from(&*self.listener).shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, plane: Handle) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            let answer = api::Answer::error(503, "too many admin connections");
            let _ = answer.write_to(&mut stream, false);
            continue;
        }
        let plane = plane.clone();
        let active_here = active.clone();
        let spawned = std::thread::Builder::new()
            .name("ringway-admin-conn".into())
            .spawn(move || {
                if let Err(e) = serve(stream, &plane) {
                    tracing::debug!(%peer, error = %e, "admin connection failed");
                }
                active_here.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A request as the API sees it.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn serve(mut stream: TcpStream, plane: &Handle) -> io::Result<()> {
    // One deadline for the whole request, not per read: a client sending a
    // byte at a time cannot hold a connection slot for longer.
    let deadline = Instant::now() + IO_TIMEOUT;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let (answer, head_only) = match read_request(&mut stream, deadline, plane) {
        Ok(req) => (api::handle(plane, &req), req.method == "HEAD"),
        Err(answer) => (answer, false),
    };
    answer.write_to(&mut stream, head_only)?;
    // Read away what is unread (briefly, boundedly) so the close does not
    // reset the answer.
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut left = LINGER_MAX;
    while left > 0 {
        let Some(rest) = until.checked_duration_since(Instant::now()) else {
            break;
        };
        if stream
            .set_read_timeout(Some(rest.max(Duration::from_millis(1))))
            .is_err()
        {
            break;
        }
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
    Ok(())
}

/// Reads into `buf` before `deadline`; a timeout becomes 408.
fn read_by(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, api::Answer> {
    let late = || api::Answer::error(408, "request not received in time");
    let rest = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(late)?;
    stream.set_read_timeout(Some(rest)).map_err(|_| late())?;
    stream.read(buf).map_err(|_| late())
}

/// Reads one request; malformed, oversized, slow or unauthorized input gets
/// its 4xx. The body is read only once the head is admitted, and grows as
/// bytes arrive, so an unauthenticated client cannot make us allocate it.
fn read_request(
    stream: &mut TcpStream,
    deadline: Instant,
    plane: &Handle,
) -> Result<Request, api::Answer> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (head_len, mut req) = loop {
        let n = read_by(stream, &mut chunk, deadline)?;
        if n == 0 {
            return Err(api::Answer::error(
                400,
                "connection closed inside the request",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let target = parsed.path.unwrap_or("/");
                let path = target.split_once('?').map_or(target, |(p, _)| p);
                let req = Request {
                    method: parsed.method.unwrap_or("").to_string(),
                    path: path.to_string(),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    body: Vec::new(),
                };
                break (len, req);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return Err(api::Answer::error(431, "request head too large"))
            }
            Err(e) => return Err(api::Answer::error(400, &format!("malformed request: {e}"))),
        }
    };
    if let Some(refused) = api::admit(plane, &req) {
        return Err(refused);
    }
    if req.header("transfer-encoding").is_some() {
        return Err(api::Answer::error(
            411,
            "send the body with Content-Length (e.g. curl --data-binary @file)",
        ));
    }
    let length = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| api::Answer::error(400, "malformed Content-Length"))?,
    };
    if length > MAX_BODY {
        return Err(api::Answer::error(413, "body over 8 MiB"));
    }
    let mut body = buf.split_off(head_len);
    while body.len() < length {
        let n = read_by(stream, &mut chunk, deadline)?;
        if n == 0 {
            return Err(api::Answer::error(400, "body shorter than Content-Length"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    req.body = body;
    Ok(req)
}

impl api::Answer {
    /// Writes the answer; `head_only` (a HEAD request) keeps the body's
    /// length in `Content-Length` but not the body (RFC 9110 §9.3.2).
    fn write_to(&self, stream: &mut TcpStream, head_only: bool) -> io::Result<()> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        let reason = crate::http::write::reason(self.status);
        write!(
            out,
            "HTTP/1.1 {} {reason}\r\nServer: ringway\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )?;
        for (name, value) in &self.headers {
            write!(out, "{name}: {value}\r\n")?;
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        stream.write_all(&out)
    }
}
