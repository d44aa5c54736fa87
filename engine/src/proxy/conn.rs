//! One client connection: read a head, route it, answer or forward, repeat
//! while keep-alive allows (RFC 9112 §9).
//!
//! Requests on a connection are handled strictly one after another, so
//! pipelined requests are answered in order by construction. Between
//! requests the connection gives its buffers back to the worker's pool and
//! waits for readability, so an idle client pins no buffer.
//!
//! Every rejection answers with its status and closes the connection when
//! the request's body was not read, because the bytes that follow are then
//! of unknown meaning.

use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringway_config::{Action, Limits};

use crate::error::{Error, Kind, Side};
use crate::http::head::{self, BodyKind, HeadLimits, Header, RequestHead, Version};
use crate::http::{date, write};
use crate::policy::auth::{self, Outcome, VerifyJob};
use crate::policy::ip;
use crate::policy::limit::now_ns;
use crate::policy::{rate_headers, Now, Pass};
use crate::proxy::body::{Copy, Discard, Framing, Output};
use crate::proxy::{cached, forward};
use crate::router::Match;
use crate::rt::io::{read_more, write_all_buf, Transport};
use crate::snapshot::Prebuilt;
use crate::worker::conn::{Conn, TlsInfo};
use crate::worker::generation::Generation;
use crate::worker::{ListenerState, Worker};

/// What happens to the connection after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
}

/// What the connection does next, decided while waiting for a head.
enum Step {
    Request(RequestHead),
    Reject(Error),
    Close,
}

/// How long a connection may sit idle before its request state is freed.
/// A busy keep-alive connection reuses one allocation for every request;
/// an idle one shrinks to the small waiting state. 50 ms is longer than the
/// gaps inside a stream of back-to-back requests and shorter than a human
/// or batch client's think time; measured, it changes neither CPU per
/// request under load nor the idle-connection figure beyond noise, while
/// longer windows let a burst of new connections keep more request state
/// alive at once (which the allocator then retains).
const BUSY_WINDOW: Duration = Duration::from_millis(50);

/// Password checks a worker lets wait for the blocking pool at once.
const MAX_VERIFYING: u32 = 64;

/// Longest lingering close, and most bytes read away during it.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_MAX: usize = 1 << 20;

/// Serves a client connection until it closes, errs, or the worker drains.
///
/// The connection future itself only waits and reads heads. Answering a
/// request (routing, forwarding, streaming bodies, errors) runs in a second,
/// larger future kept in `busy`: allocated on the first request, reused in
/// place for every later one, and freed once the connection has been idle
/// for [`BUSY_WINDOW`]. An idle connection therefore costs its small waiting
/// state only (under 1 KiB of future, about 2.7 KiB of RSS in all measured
/// by `scripts/idle-conn-memory.sh`), while steady traffic allocates nothing.
pub async fn serve<S: Transport + 'static>(
    w: Rc<Worker>,
    mut io: S,
    peer: SocketAddr,
    listener: Rc<ListenerState>,
    tls: Option<TlsInfo>,
) {
    let mut conn = Conn {
        tls: tls.map(Box::new),
        g: w.current(),
        w,
        listener,
        peer,
        rbuf: BytesMut::new(),
        wbuf: BytesMut::new(),
        scratch: BytesMut::new(),
        extra: BytesMut::new(),
        headers: Vec::new(),
        head_bytes: 0,
        head_request: false,
        last_status: 0,
        linger: false,
    };
    let mut busy = None;
    let mut first = true;
    loop {
        let step = conn.next_step(&mut io, first, &mut busy).await;
        first = false;
        if let Step::Close = step {
            break;
        }
        let answering = answer(conn, io, step);
        let mut boxed = match busy.take() {
            Some(mut b) => {
                Pin::set(&mut b, answering);
                b
            }
            None => Box::pin(answering),
        };
        let (c, i, next) = boxed.as_mut().await;
        conn = c;
        io = i;
        busy = Some(boxed);
        // On drain, requests already pipelined are still answered (each
        // with `Connection: close` once the drain began); the next wait
        // for a request sees the drain and closes.
        if next == Next::Close {
            break;
        }
    }
    if conn.linger {
        conn.linger(&mut io).await;
    }
    conn.release();
}

/// Answers one step, taking the connection and giving it back.
async fn answer<S: Transport>(mut conn: Conn, mut io: S, step: Step) -> (Conn, S, Next) {
    let next = match step {
        Step::Request(head) => conn.handle(&mut io, head).await,
        Step::Reject(e) => conn.reject(&mut io, e, None).await,
        Step::Close => Next::Close,
    };
    (conn, io, next)
}

impl Conn {
    /// Waits for the next request and reads its head.
    async fn next_step<S: Transport, B>(
        &mut self,
        io: &mut S,
        first: bool,
        busy: &mut Option<B>,
    ) -> Step {
        // A new connection's first head must be complete within one
        // header-read-timeout of the accept, however the time splits
        // between waiting for the first byte and reading the rest.
        let accepted = Instant::now();
        if self.rbuf.is_empty() {
            self.release();
            if !self.wait_for_request(io, first, busy).await {
                return Step::Close;
            }
            self.rbuf = self.w.pool.head_buf();
        }
        // Each request runs on the generation current when its head starts,
        // head limits and timeout included.
        self.g = self.w.current();
        let header_read_timeout = self.g.limits().header_read_timeout;
        if self.wbuf.capacity() == 0 {
            self.wbuf = self.w.pool.head_buf();
        }
        let deadline = if first { accepted } else { Instant::now() } + header_read_timeout;
        let w = self.w.clone();
        let reading = Self::read_head(
            &w,
            self.g.limits(),
            &mut self.rbuf,
            &mut self.headers,
            &mut self.head_bytes,
            io,
        );
        match w.deadlines.within(deadline, reading).await {
            Ok(Ok(Some(head))) => {
                w.stats.requests.inc();
                self.head_request = head.method == head::Method::Head;
                Step::Request(head)
            }
            Ok(Ok(None)) => Step::Close,
            Ok(Err(e)) => {
                w.stats.requests.inc();
                self.head_request = false;
                Step::Reject(e)
            }
            Err(_) => {
                // The read in flight was dropped with its buffer. A client
                // that sent nothing is closed without an answer (readiness
                // can be spurious); one stuck mid-head gets 408.
                self.rbuf = BytesMut::new();
                self.head_request = false;
                if self.head_bytes > 0 {
                    w.stats.requests.inc();
                    Step::Reject(Error::new(
                        Kind::HeadTimeout,
                        Side::Downstream,
                        "head read timeout",
                    ))
                } else {
                    Step::Close
                }
            }
        }
    }

    /// Waits until the client sends something, without holding a buffer.
    /// False when the connection should close instead (idle timeout, EOF
    /// race, or drain). Past [`BUSY_WINDOW`] the request state in `busy` is
    /// freed.
    async fn wait_for_request<S: Transport, B>(
        &mut self,
        io: &mut S,
        first: bool,
        busy: &mut Option<B>,
    ) -> bool {
        // Between requests the connection holds the newest generation, not
        // the one its last request ran on.
        self.g = self.w.current();
        let limits = self.g.limits();
        let idle = if first {
            limits.header_read_timeout
        } else {
            limits.keepalive_timeout
        };
        let deadline = Instant::now() + idle;
        let w = self.w.clone();
        let listener = self.listener.clone();
        if busy.is_none() {
            // Not just answered a request: nothing to keep warm.
            io.idle();
        }
        if busy.is_some() {
            let soon = (Instant::now() + BUSY_WINDOW).min(deadline);
            let readable = w.deadlines.within(soon, io.wait_readable());
            let woke = monoio::select! {
                r = readable => r.map(|r| r.is_ok()),
                _ = listener.closing.wait() => Ok(false),
            };
            match woke {
                Ok(ready) => return ready,
                Err(_) => {
                    *busy = None;
                    io.idle();
                }
            }
        }
        let readable = w.deadlines.within(deadline, io.wait_readable());
        monoio::select! {
            r = readable => matches!(r, Ok(Ok(()))),
            _ = listener.closing.wait() => false,
        }
    }

    /// Gives the buffers back to the worker's pool.
    pub fn release(&mut self) {
        let pool = &self.w.pool;
        for b in [&mut self.rbuf, &mut self.wbuf, &mut self.scratch] {
            if b.capacity() > 0 {
                pool.put_buf(std::mem::take(b));
            }
        }
        if self.headers.capacity() > 0 {
            pool.put_headers(std::mem::take(&mut self.headers));
        }
    }

    /// Reads until a whole head is buffered. `Ok(None)`: the client closed
    /// cleanly between requests.
    async fn read_head<S: Transport>(
        w: &Worker,
        limits: &Limits,
        rbuf: &mut BytesMut,
        headers: &mut Vec<Header>,
        head_bytes: &mut usize,
        io: &mut S,
    ) -> Result<Option<RequestHead>, Error> {
        let hl = HeadLimits {
            max_head: limits.max_head_size,
            max_headers: limits.max_headers,
            max_target: limits.max_target_len,
        };
        if headers.capacity() == 0 {
            *headers = w.pool.headers();
        }
        *head_bytes = rbuf.len();
        loop {
            if !rbuf.is_empty() {
                if let Some(head) = head::parse_request(rbuf, hl, headers)? {
                    return Ok(Some(head));
                }
            }
            let n = read_more(io, rbuf)
                .await
                .map_err(|_| Error::client_gone("read failed"))?;
            *head_bytes += n;
            if n == 0 {
                return if rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(Error::client_gone("closed inside a request head"))
                };
            }
        }
    }

    /// Routes and answers one request.
    async fn handle<S: Transport>(&mut self, io: &mut S, head: RequestHead) -> Next {
        // Header lines a policy added to the previous answer.
        self.extra.clear();
        self.last_status = 0;
        let g = self.g.clone();
        let snap = &g.snap;
        if let Some(p) = &self.w.hooks.panic_on_path {
            if head.bytes(head.path) == p.as_bytes() {
                panic!("panic requested by test hook");
            }
        }
        let m = snap.router.route(
            head.authority(),
            head.bytes(head.path),
            head.bytes(head.method_span),
        );
        let index = match m {
            Match::Route(i) => i,
            Match::NotFound => {
                self.w.stats.rejected_404.inc();
                return self.answer_status(io, head, 404).await;
            }
            Match::MethodNotAllowed => {
                self.w.stats.rejected_405.inc();
                return self.answer_status(io, head, 405).await;
            }
        };
        let route = &snap.config.routes[index];
        if let BodyKind::Length(n) = head.body {
            if n > route.limits.max_body_size {
                let e = Error::new(Kind::BodyTooLarge, Side::Downstream, "body over limit");
                return self.reject(io, e, Some(head)).await;
            }
        }
        if route.redirect_https && self.tls.is_none() {
            return self.redirect_https(io, head, route.https_port).await;
        }
        if route.require_client_cert
            && self
                .tls
                .as_ref()
                .and_then(|t| t.client_subject.as_ref())
                .is_none()
        {
            self.w.stats.refused(403);
            return self.answer_status(io, head, 403).await;
        }
        if let (Some(hsts), Some(_)) = (&route.hsts, &self.tls) {
            write::header(
                &mut self.extra,
                b"Strict-Transport-Security",
                hsts.as_bytes(),
            );
        }
        // Held until the answer is complete: a concurrency slot.
        let pass = match self.police(&g, index, &head).await {
            Ok(pass) => pass,
            Err(status) => {
                self.w.stats.refused(status);
                return self.answer_status(io, head, status).await;
            }
        };
        let next = match &route.action {
            Action::Respond(_) => {
                let pre = snap.responders[index]
                    .as_ref()
                    .expect("responder prebuilt for every respond route");
                self.respond(io, head, pre, route.limits.max_body_size)
                    .await
            }
            Action::Upstream(group) => {
                let consumer = pass.consumer;
                // A successful unsafe request invalidates its URL in the
                // cache, whichever route it took (RFC 9111 §4.4).
                let invalidates = (!head.method.is_safe() && g.cache.caches()).then(|| {
                    let mut keys = g.cache.take_key();
                    g.cache.url_keys(&mut keys, &head);
                    keys
                });
                let next = if g.cache.routes[index].is_some() {
                    cached::serve(self, io, head, &g, index, *group, consumer).await
                } else {
                    forward::forward(self, io, head, &g, index, *group, consumer).await
                };
                if let Some(keys) = invalidates {
                    if (200..400).contains(&self.last_status) {
                        cached::invalidate(&self.w, &g, &keys);
                    }
                    g.cache.put_key(keys);
                }
                next
            }
        };
        drop(pass);
        next
    }

    /// Answers 308 to the same URL over HTTPS (on `port`, else 443).
    async fn redirect_https<S: Transport>(
        &mut self,
        io: &mut S,
        head: RequestHead,
        port: Option<u16>,
    ) -> Next {
        let authority = head.authority();
        // The host without a port (an IPv6 literal keeps its brackets).
        let host = match authority.iter().rposition(|&b| b == b':') {
            Some(i) if !authority[i..].contains(&b']') => &authority[..i],
            _ => authority,
        };
        let target = head.bytes(head.target);
        let path_start = head.path.start as usize - head.target.start as usize;
        let origin = &target[path_start..];
        self.extra.extend_from_slice(b"Location: https://");
        self.extra.extend_from_slice(host);
        if let Some(p) = port {
            let _ = std::fmt::Write::write_fmt(&mut self.extra, format_args!(":{p}"));
        }
        if origin.first() != Some(&b'/') {
            self.extra.extend_from_slice(b"/");
        }
        self.extra.extend_from_slice(origin);
        self.extra.extend_from_slice(b"\r\n");
        self.answer_status(io, head, 308).await
    }

    /// Applies the policies: global IP rules, then the route's. `Err`
    /// carries the refusal's status, its header lines in `self.extra`.
    async fn police(
        &mut self,
        g: &Generation,
        route: usize,
        head: &RequestHead,
    ) -> Result<Pass, u16> {
        let policies = &g.snap.policies;
        if policies.routes[route].empty && policies.global.is_empty() {
            return Ok(Pass::default());
        }
        let client = ip::client_ip(self.peer.ip(), &policies.trusted, head);
        if !policies.global.admits(client) || !policies.routes[route].ip.admits(client) {
            return Err(403);
        }
        let now = Now {
            mono: now_ns(),
            wall: std::time::SystemTime::now(),
        };
        let outcome = match policies.authenticate(&g.policies, route, head, now) {
            None => None,
            Some(auth::Step::Done(outcome)) => Some(outcome),
            Some(auth::Step::Verify(job)) => Some(self.verify_off_worker(g, job).await?),
        };
        let pass = policies.check(
            &g.policies,
            route,
            head,
            client,
            now,
            outcome,
            &mut self.extra,
        )?;
        if policies.routes[route].headers {
            if let Some(v) = &pass.rate {
                rate_headers(&mut self.extra, v);
            }
        }
        Ok(pass)
    }

    /// Runs a password check on the blocking pool, so a slow hash (or a
    /// flood of wrong passwords) does not stall this worker's other
    /// connections. At most [`MAX_VERIFYING`] wait per worker; past that
    /// the request gets 503.
    async fn verify_off_worker(&mut self, g: &Generation, job: VerifyJob) -> Result<Outcome, u16> {
        let w = self.w.clone();
        if w.verifying.get() >= MAX_VERIFYING {
            self.extra.extend_from_slice(b"Retry-After: 1\r\n");
            return Err(503);
        }
        w.verifying.set(w.verifying.get() + 1);
        let done = monoio::spawn_blocking(move || job.run()).await;
        w.verifying.set(w.verifying.get() - 1);
        match done {
            Ok(verified) => Ok(g
                .snap
                .policies
                .auth
                .finish(&g.policies.auth_cache, verified)),
            Err(_) => Err(503),
        }
    }

    /// Answers from a built-in responder.
    async fn respond<S: Transport>(
        &mut self,
        io: &mut S,
        head: RequestHead,
        pre: &Prebuilt,
        limit: u64,
    ) -> Next {
        let mut keep = head.keep_alive;
        if head.body != BodyKind::None {
            if head.expect_continue {
                // The client waits before sending a body we do not need.
                keep = false;
                self.linger = true;
            } else if self.discard_body(io, head.body, limit).await.is_err() {
                return self.finish(head, Next::Close);
            }
        }
        keep &= !self.listener.closing.is_fired();
        let wbuf = &mut self.wbuf;
        wbuf.extend_from_slice(&pre.head);
        date::append_date_line(wbuf);
        connection_line(wbuf, head.version, keep);
        wbuf.extend_from_slice(&self.extra);
        wbuf.extend_from_slice(b"\r\n");
        if head.method != head::Method::Head {
            wbuf.extend_from_slice(&pre.body);
        }
        self.w.stats.response(pre.status);
        let w = self.w.clone();
        let ok = write_all_buf(io, &mut self.wbuf, w.send_limit(&self.g))
            .await
            .is_ok();
        let next = if ok && keep {
            Next::KeepAlive
        } else {
            Next::Close
        };
        self.finish(head, next)
    }

    async fn discard_body<S: Transport>(
        &mut self,
        io: &mut S,
        body: BodyKind,
        limit: u64,
    ) -> Result<u64, ()> {
        let framing = match body {
            BodyKind::Length(n) => Framing::Length(n),
            BodyKind::Chunked => Framing::Chunked,
            _ => return Ok(0),
        };
        let copy = Copy {
            framing,
            output: Output::Discard,
            limit,
            idle: self.g.limits().header_read_timeout,
            scratch: &mut self.scratch,
            deadlines: &self.w.deadlines,
            send_limit: self.g.limits().send_timeout,
            pool: &self.w.pool,
        };
        copy.run(io, &mut self.rbuf, &mut Discard)
            .await
            .map_err(|_| ())
    }

    /// Answers a bare status (404, 405, or a policy's refusal with its
    /// header lines from `self.extra`) to a well-formed request.
    pub(crate) async fn answer_status<S: Transport>(
        &mut self,
        io: &mut S,
        head: RequestHead,
        status: u16,
    ) -> Next {
        self.w.stats.response(status);
        let keep =
            head.keep_alive && head.body == BodyKind::None && !self.listener.closing.is_fired();
        self.linger |= head.body != BodyKind::None;
        let head_request = head.method == head::Method::Head;
        write::error_response_with(&mut self.wbuf, status, !keep, head_request, &self.extra);
        self.extra.clear();
        let w = self.w.clone();
        let ok = write_all_buf(io, &mut self.wbuf, w.send_limit(&self.g))
            .await
            .is_ok();
        self.finish(
            head,
            if ok && keep {
                Next::KeepAlive
            } else {
                Next::Close
            },
        )
    }

    /// Answers an error and closes. `head` is given back for reuse when the
    /// error came after parsing.
    pub async fn reject<S: Transport>(
        &mut self,
        io: &mut S,
        e: Error,
        head: Option<RequestHead>,
    ) -> Next {
        if let Some(head) = head {
            self.finish(head, Next::Close);
        }
        let Some(status) = e.status() else {
            return Next::Close;
        };
        tracing::debug!(peer = %self.peer, status, reason = e.context, "request rejected");
        self.w.stats.rejection(status);
        self.w.stats.response(status);
        self.wbuf.clear();
        write::error_response(&mut self.wbuf, status, true, self.head_request);
        let w = self.w.clone();
        if write_all_buf(io, &mut self.wbuf, w.send_limit(&self.g))
            .await
            .is_ok()
        {
            // The client may still be sending what we refused.
            self.linger = true;
        }
        Next::Close
    }

    /// Lingering close (as nginx does): after answering a request whose
    /// body was not read, stop writing and read away what the client is
    /// still sending, for a short while, so that our close does not reset
    /// the connection (and discard our answer) while the client's data is
    /// unread.
    async fn linger<S: Transport>(&mut self, io: &mut S) {
        if io.shutdown().await.is_err() {
            return;
        }
        let w = self.w.clone();
        let until = Instant::now() + LINGER_TIME;
        let mut buf = w.pool.head_buf();
        let mut drained = 0;
        while drained < LINGER_MAX {
            match w.deadlines.within(until, read_more(io, &mut buf)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
            buf.clear();
        }
        w.pool.put_buf(buf);
    }

    /// Returns the head's span list to the connection for the next request.
    pub fn finish(&mut self, head: RequestHead, next: Next) -> Next {
        let headers = head.into_headers();
        if self.headers.capacity() == 0 {
            self.headers = headers;
        }
        next
    }
}

/// The Connection line a response needs, if any (RFC 9112 §9.3).
pub fn connection_line(out: &mut BytesMut, version: Version, keep: bool) {
    match (version, keep) {
        (_, false) => out.extend_from_slice(b"Connection: close\r\n"),
        (Version::Http10, true) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        (Version::Http11, true) => {}
    }
}
