//! One exchange with an upstream: pick a server, take a pooled connection
//! or open one, send the request, read the final response head; retry on
//! another server when the route's `[routes.retry]` allows it. The one
//! retry loop, used by forwarding and by the cache's own fetches.
//!
//! A try that fails is retried when every rule allows it: tries are left
//! (`attempts`), the failure is one the route retries on (`on`), the
//! request can be sent again (nothing was sent yet; or it is whole in
//! `req` — no body, or a buffered one — and its method is idempotent or
//! the route says `retry-non-idempotent`), nothing was relayed to the
//! client yet, and the group's retry budget has room. A retry goes to
//! another server when one is available, after a jittered backoff.
//!
//! Apart from those, a pooled connection may have been closed by the
//! upstream while idle: when it fails before any response byte and the
//! request can be sent again, it is resent once on a fresh connection to
//! the same server, which is neither a retry nor a failure of the server.
//!
//! Every try's outcome feeds passive health: connect errors, resets,
//! timeouts and 5xx count against the server; any other answer ends its
//! run of failures and teaches the latency policy.

use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::net::TcpStream;
use ringway_config::Route;

use crate::error::{Error, Kind, Retry};
use crate::http::head::ResponseHead;
use crate::http::parse;
use crate::proxy::body::{Capture, Copy, Discard, Framing, Output};
use crate::proxy::ctx::Timings;
use crate::rt::io::{read_more, write_all_keep};
use crate::stats::labeled::{
    class_index, Failure, RetryReason, ServerStats, AT_MAX_CONNECTIONS, CLOSED_BEFORE_RESPONSE,
    CONNECT_FAILED, CONNECT_TIMEOUT, HEAD_TIMEOUT, NO_SERVER, QUEUE_TIMEOUT, SEND_TIMEOUT,
    TLS_HANDSHAKE, TLS_SESSION,
};
use crate::tls::stream::TlsStream;
use crate::upstream::conn::{Link, OpenGauge};
use crate::upstream::{Flight, NoServer, Slot, UpConn};
use crate::worker::{Generation, Worker};

/// The most tries one request makes (`attempts` is at most this).
const MAX_TRIES: usize = 10;

/// How often a request waiting for a connection to a server at its
/// `max-connections` looks again.
const QUEUE_POLL: Duration = Duration::from_millis(1);

/// A final response head from an upstream, with the connection it came on.
pub(crate) struct Fetched {
    pub(crate) up: UpConn,
    pub(crate) server: usize,
    /// Bytes read after the head (the start of the body).
    pub(crate) ubuf: BytesMut,
    pub(crate) resp: ResponseHead,
    /// The request's place among the server's requests in flight, until
    /// its response is relayed.
    pub(crate) flight: Flight,
}

impl Fetched {
    /// Returns the connection to the pool when its body is done and it may
    /// be reused, else closes it; gives the buffers back.
    pub(crate) fn release(self, w: &Worker, g: &Generation, body_done: bool) {
        let reusable = body_done && self.resp.reusable && self.ubuf.is_empty();
        // The head first: it shares the buffer's memory, which can only go
        // back to the pool once nothing else holds it.
        w.pool.put_headers(self.resp.into_headers());
        w.pool.put_buf(self.ubuf);
        if reusable {
            g.upstreams.put_idle(self.server, self.up);
        }
    }

    /// Reads the whole body, keeping up to `capture`'s limit of it (the
    /// cache's fetches, which write nothing to a client); `true` when it
    /// all arrived.
    pub(crate) async fn capture_body(
        &mut self,
        w: &Worker,
        g: &Generation,
        idle: Duration,
        scratch: &mut BytesMut,
        capture: &mut Capture,
    ) -> bool {
        let Some(framing) = Framing::of(self.resp.body) else {
            return true;
        };
        let copy = Copy {
            framing,
            output: Output::Discard,
            limit: u64::MAX,
            idle,
            scratch,
            deadlines: &w.deadlines,
            send_limit: g.limits().send_timeout,
            pool: &w.pool,
            filter: None,
            capture: Some(capture),
            lead: None,
            trailers_dropped: None,
        };
        copy.run(&mut self.up, &mut self.ubuf, &mut Discard)
            .await
            .is_ok()
    }
}

/// How sending a request body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// All of it went (or there was none).
    Whole,
    /// The upstream answered (or closed) before it all went: the answer is
    /// read as usual, and the connection is not reused.
    Early,
}

/// What the client side of an exchange does besides waiting: stream a
/// request body after the head, and relay interim (1xx) responses.
pub(crate) trait Peer {
    /// Sends the request body (if any) on `up`, after the head; what the
    /// upstream answered meanwhile goes to `ubuf`. Gives the connection
    /// back.
    async fn send_body(&mut self, up: UpConn, ubuf: &mut BytesMut)
        -> (UpConn, Result<Sent, Error>);
    /// Relays an interim response head; `Ok(true)` when it reached the
    /// client (no retry may repeat it then).
    async fn interim(&mut self, resp: &ResponseHead) -> Result<bool, Error>;
    /// The request asked to switch protocols: a 101 is its final answer.
    fn upgrades(&self) -> bool {
        false
    }
}

/// An exchange nobody waits on (the cache's background fetch): no body,
/// interim responses skipped.
pub(crate) struct NoPeer;

impl Peer for NoPeer {
    async fn send_body(&mut self, up: UpConn, _: &mut BytesMut) -> (UpConn, Result<Sent, Error>) {
        (up, Ok(Sent::Whole))
    }

    async fn interim(&mut self, _: &ResponseHead) -> Result<bool, Error> {
        Ok(false)
    }
}

/// Where an exchange goes and how it may be retried.
pub(crate) struct Target<'a> {
    pub(crate) route: &'a Route,
    pub(crate) group: usize,
    /// The request is HEAD (the response then has no body).
    pub(crate) is_head: bool,
    /// The method is idempotent (RFC 9110 §9.2.2).
    pub(crate) idempotent: bool,
    /// The whole request is in `req` (no body, or a buffered one), so it
    /// can be sent again.
    pub(crate) resendable: bool,
    /// The hash policy's key of the request (0 without one).
    pub(crate) key: u64,
    /// The longest wait for the response head, over the route's
    /// (`per-try-timeout`, else `response-head-timeout`).
    pub(crate) head_timeout: Option<Duration>,
    /// The request failed elsewhere first (an AI model's earlier
    /// target): it counts in the group's retry budget from its first try.
    pub(crate) fallback: bool,
}

impl Target<'_> {
    /// Whether a try that failed for `reason` may be retried, `sent` when
    /// bytes of the request reached the connection.
    fn retries_on(&self, reason: RetryReason, sent: bool) -> bool {
        let r = &self.route.retry;
        let on = &r.on;
        let listed = match reason {
            RetryReason::ConnectFailure => on.connect_failure,
            RetryReason::Reset => on.reset_before_response,
            RetryReason::Timeout => on.timeout,
            RetryReason::Status502 => on.status_502,
            RetryReason::Status503 => on.status_503,
            RetryReason::Status504 => on.status_504,
            // 409 and 429 only for idempotent requests, whatever the route
            // says of others.
            RetryReason::Retriable4xx => on.retriable_4xx && self.idempotent,
        };
        listed && (!sent || (self.resendable && (self.idempotent || r.retry_non_idempotent)))
    }
}

/// How one try ended without a response head to return.
struct TryFailed {
    error: Error,
    /// Bytes of the request reached the connection.
    sent: bool,
    /// The connection came from the pool.
    reused: bool,
    /// An interim response reached the client.
    relayed: bool,
}

/// Sends `req` (the head, with any small or buffered body coalesced) and
/// reads the final response head, retrying as the route allows. `req` is
/// kept for a retry and left as sent.
pub(crate) async fn exchange<P: Peer>(
    w: &Worker,
    g: &Generation,
    t: &Target<'_>,
    req: &mut BytesMut,
    peer: &mut P,
    timings: &mut Timings,
) -> Result<Fetched, Error> {
    let ups = &g.upstreams;
    let mut tried = [0usize; MAX_TRIES];
    let mut tries = 0;
    // A stale pooled connection is resent on a fresh one, once.
    let mut fresh_only = false;
    loop {
        let retry = tries > 0 || t.fallback;
        let (server, slot, _waiting) = match server_for(w, g, t, &tried[..tries]).await {
            Ok(found) => found,
            Err(e) => return Err(e),
        };
        timings.server = Some(server);
        timings.tries = timings.tries.saturating_add(1);
        let stats = ups.stats(server);
        let mut flight = ups.start(t.group, server, retry);
        stats.requests.inc();
        let outcome = try_once(w, g, t, req, peer, timings, server, slot, fresh_only).await;
        let reason = match outcome {
            Ok((up, ubuf, resp, took)) => {
                let reason = RetryReason::of_status(resp.status);
                if resp.status >= 500 {
                    ups.failed(t.group, server, false);
                    if resp.status == 503 {
                        if let Some(after) = resp.retry_after() {
                            ups.retry_after(t.group, server, after);
                        }
                    }
                } else {
                    ups.succeeded(server);
                }
                flight.answered(took);
                match reason {
                    Some(reason)
                        if may_retry(w, g, t, &tried[..tries], server, reason, true, stats) =>
                    {
                        // The answer is not relayed: its connection goes,
                        // body and all.
                        w.pool.put_headers(resp.into_headers());
                        w.pool.put_buf(ubuf);
                        drop(up);
                        reason
                    }
                    _ => {
                        return Ok(Fetched {
                            up,
                            server,
                            ubuf,
                            resp,
                            flight,
                        })
                    }
                }
            }
            Err(f) => {
                let e = counted(stats, f.error);
                let stale = f.reused && !fresh_only && !f.relayed;
                if stale && t.resendable && t.idempotent && e.may_retry(true) {
                    // The upstream closed the pooled connection while it
                    // was idle: not the server's failure.
                    w.stats.upstream_stale_resends.inc();
                    fresh_only = true;
                    drop(flight);
                    continue;
                }
                let failure = Failure::of(&e).filter(|&f| f != Failure::ConnectionLimit);
                if let Some(f) = failure {
                    ups.failed(t.group, server, f.is_connect());
                }
                let Some(reason) = failure.and_then(RetryReason::of_failure) else {
                    return Err(e);
                };
                if f.relayed || !may_retry(w, g, t, &tried[..tries], server, reason, f.sent, stats)
                {
                    return Err(e);
                }
                reason
            }
        };
        drop(flight);
        tracing::debug!(
            upstream = ups.name(t.group),
            server = %ups.address(server),
            reason = reason.as_str(),
            "retrying on another server"
        );
        tried[tries] = server;
        tries += 1;
        fresh_only = false;
        let pause = backoff(ups, t, tries);
        if !pause.is_zero() {
            monoio::time::sleep(pause).await;
        }
    }
}

/// Whether a try at `server` that failed for `reason`, after tries at
/// `tried`, may be retried now; counts the retry, or why it was not made.
#[allow(clippy::too_many_arguments)]
fn may_retry(
    w: &Worker,
    g: &Generation,
    t: &Target<'_>,
    tried: &[usize],
    server: usize,
    reason: RetryReason,
    sent: bool,
    stats: &ServerStats,
) -> bool {
    let tries = tried.len();
    let r = &t.route.retry;
    if tries + 1 >= usize::from(r.attempts).min(MAX_TRIES) || !t.retries_on(reason, sent) {
        return false;
    }
    // A server that refused a connection is not asked again at once: a
    // retry for that needs another server.
    if reason == RetryReason::ConnectFailure {
        let mut avoid = [0usize; MAX_TRIES];
        avoid[..tries].copy_from_slice(&tried[..tries]);
        avoid[tries] = server;
        if !g.upstreams.has_other(t.group, &avoid[..=tries]) {
            return false;
        }
    }
    if !g
        .upstreams
        .may_retry(t.group, r.budget_percent, r.budget_min)
    {
        w.stats.upstream_retry_budget_exhausted.inc();
        return false;
    }
    w.stats.upstream_retries.inc();
    stats.retries[reason as usize].inc();
    true
}

/// The pause before retry number `n` (from 1): full jitter over an
/// exponential backoff from `backoff`, capped at `backoff-max`.
fn backoff(ups: &crate::upstream::Upstreams, t: &Target<'_>, n: usize) -> Duration {
    let r = &t.route.retry;
    let base = r.backoff.as_nanos() as u64;
    if base == 0 {
        return Duration::ZERO;
    }
    let cap = r.backoff_max.as_nanos() as u64;
    let upper = base.saturating_mul(1 << (n - 1).min(20)).min(cap);
    Duration::from_nanos(ups.random_below(t.group, upper + 1))
}

/// A server for the next try, with a place among its connections in use
/// when it has a cap. A server at its cap is passed over for another; when
/// every one is at its cap, the request waits in the group's queue (when
/// it has one) for up to `queue-timeout`.
async fn server_for(
    w: &Worker,
    g: &Generation,
    t: &Target<'_>,
    tried: &[usize],
) -> Result<(usize, Option<Slot>, Option<crate::upstream::Waiting>), Error> {
    let ups = &g.upstreams;
    let pick = |avoid: &[usize]| {
        ups.pick(t.group, t.key, avoid).map_err(|why| {
            w.stats.upstream_no_server.inc();
            Error::upstream(Kind::Unavailable, NO_SERVER).because(io::Error::other(match why {
                NoServer::Empty => "the upstream has no servers (its names have not resolved)",
                NoServer::Unavailable => "no server of the upstream is available",
            }))
        })
    };
    let first = pick(tried)?;
    let Ok(slot) = ups.acquire(first) else {
        // At its cap: another server, or the queue.
        let mut full = [0usize; MAX_TRIES];
        full[0] = first;
        let mut n = 1;
        while n < MAX_TRIES.min(ups.group_size(t.group)) {
            let next = pick(&full[..n])?;
            if full[..n].contains(&next) {
                break;
            }
            if let Ok(slot) = ups.acquire(next) {
                return Ok((next, slot, None));
            }
            full[n] = next;
            n += 1;
        }
        let Some((waiting, timeout)) = ups.enqueue(t.group) else {
            w.stats.upstream_connection_limit.inc();
            return Err(counted(
                ups.stats(first),
                Error::upstream(Kind::Unavailable, AT_MAX_CONNECTIONS),
            ));
        };
        w.stats.upstream_queued.inc();
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            monoio::time::sleep(QUEUE_POLL).await;
            let server = pick(tried)?;
            if let Ok(slot) = ups.acquire(server) {
                return Ok((server, slot, Some(waiting)));
            }
        }
        w.stats.upstream_queue_timeouts.inc();
        return Err(counted(
            ups.stats(first),
            Error::upstream(Kind::Unavailable, QUEUE_TIMEOUT),
        ));
    };
    Ok((first, slot, None))
}

/// One try on `server`: a connection (pooled unless `fresh_only`), the
/// request sent, and the final response head with the time it took.
#[allow(clippy::too_many_arguments)]
async fn try_once<P: Peer>(
    w: &Worker,
    g: &Generation,
    t: &Target<'_>,
    req: &mut BytesMut,
    peer: &mut P,
    timings: &mut Timings,
    server: usize,
    slot: Option<Slot>,
    fresh_only: bool,
) -> Result<(UpConn, BytesMut, ResponseHead, Duration), TryFailed> {
    let ups = &g.upstreams;
    let stats = ups.stats(server);
    let failed = |error, sent, reused| TryFailed {
        error,
        sent,
        reused,
        relayed: false,
    };
    let pooled = if fresh_only {
        None
    } else {
        ups.take_idle(server)
    };
    let reused = pooled.is_some();
    let mut up = match pooled {
        Some(up) => {
            w.stats.upstream_reuses.inc();
            up
        }
        None => {
            let began = Instant::now();
            let up = connect(w, g, server, t.route)
                .await
                .map_err(|e| failed(e, false, false))?;
            let took = began.elapsed();
            stats.connect.observe(took);
            timings.upstream_connect = Some(took);
            up
        }
    };
    up.slot = slot;
    let sent_at = Instant::now();
    if let Err(e) = write_all_keep(&mut up, req, w.send_limit(g)).await {
        // A refused write sent nothing the server acted on... unless part
        // of it went: count it as sent.
        return Err(failed(send_error(e), true, reused));
    }
    let mut ubuf = w.pool.buf();
    let (back, sent) = peer.send_body(up, &mut ubuf).await;
    let mut up = back;
    let early = match sent {
        Ok(sent) => sent == Sent::Early,
        Err(e) => {
            w.pool.put_buf(ubuf);
            return Err(failed(e, true, false));
        }
    };

    // Response head, skipping or relaying interim responses. Once an
    // interim response reached the client, no retry may repeat it.
    let mut relayed = false;
    // One deadline for the final head, however many 1xx come first.
    let limit = t
        .head_timeout
        .or(t.route.retry.per_try_timeout)
        .unwrap_or(t.route.limits.response_head_timeout);
    let deadline = sent_at + limit;
    loop {
        let read = w
            .deadlines
            .within(
                deadline,
                read_response_head(w, g, &mut up, &mut ubuf, t.is_head),
            )
            .await;
        let resp = match read {
            Ok(Ok(resp)) => resp,
            Ok(Err(error)) => {
                w.pool.put_buf(ubuf);
                return Err(TryFailed {
                    error,
                    sent: true,
                    reused,
                    relayed,
                });
            }
            Err(_) => {
                w.pool.put_buf(ubuf);
                return Err(TryFailed {
                    error: Error::upstream(Kind::GatewayTimeout, HEAD_TIMEOUT),
                    sent: true,
                    reused: false,
                    relayed,
                });
            }
        };
        if !(100..200).contains(&resp.status) || (resp.status == 101 && peer.upgrades()) {
            let mut resp = resp;
            if early {
                // The rest of the body was never sent: the connection is
                // mid-message (RFC 9112 §9.6).
                resp.reusable = false;
                w.stats.upstream_early_answers.inc();
            }
            let took = sent_at.elapsed();
            stats.head.observe(took);
            stats.responses[class_index(resp.status)].inc();
            timings.upstream_head = Some(took);
            return Ok((up, ubuf, resp, took));
        }
        let interim = match resp.status {
            101 => Err(Error::bad_gateway("upstream switched protocols unasked")),
            // 100 answers an Expect we did not forward.
            100 => Ok(false),
            _ => peer.interim(&resp).await,
        };
        w.pool.put_headers(resp.into_headers());
        match interim {
            Ok(sent) => relayed |= sent,
            Err(error) => {
                w.pool.put_buf(ubuf);
                return Err(TryFailed {
                    error,
                    sent: true,
                    reused: false,
                    relayed,
                });
            }
        }
    }
}

/// Counts an upstream failure against the server it happened with (a
/// failure of the client's side is not the server's).
pub(crate) fn counted(stats: &ServerStats, e: Error) -> Error {
    if let Some(f) = Failure::of(&e) {
        stats.failed(f, &e);
    }
    e
}

/// A failed write of the request head: a timeout is the upstream not
/// taking anything (504); a reset or broken pipe on a reused connection is
/// the upstream having closed it while idle.
fn send_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut => Error::upstream(Kind::GatewayTimeout, SEND_TIMEOUT).because(e),
        _ => Error::bad_gateway("upstream write failed")
            .with_retry(Retry::IfReused)
            .because(e),
    }
}

/// Connects to `server` (and, for a TLS upstream, completes the handshake)
/// within the route's connect timeout.
async fn connect(
    w: &Worker,
    g: &Generation,
    server: usize,
    route: &Route,
) -> Result<UpConn, Error> {
    w.stats.upstream_connects.inc();
    let addr = g.upstreams.address(server);
    let deadline = Instant::now() + route.limits.connect_timeout;
    let timeout = || Error::upstream(Kind::GatewayTimeout, CONNECT_TIMEOUT);
    let tcp = match w
        .deadlines
        .within(deadline, TcpStream::connect_addr(addr))
        .await
    {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            s
        }
        Ok(Err(e)) => {
            return Err(Error::bad_gateway(CONNECT_FAILED).because(e));
        }
        Err(_) => return Err(timeout()),
    };
    let link = match g.upstreams.tls(server) {
        None => Link::Plain(tcp),
        Some(tls) => {
            let session = rustls::ClientConnection::new(
                tls.config.clone(),
                tls.name_for(addr, g.upstreams.name_of(server)),
            )
            .map_err(|_| Error::bad_gateway(TLS_SESSION))?;
            let mut stream = Box::new(TlsStream::new(tcp, session));
            match w.deadlines.within(deadline, stream.handshake()).await {
                Ok(Ok(())) => Link::Tls(stream),
                Ok(Err(e)) => {
                    w.stats.upstream_tls_failures.inc();
                    return Err(Error::bad_gateway(TLS_HANDSHAKE).because(e));
                }
                Err(_) => return Err(timeout()),
            }
        }
    };
    Ok(UpConn {
        link,
        slot: None,
        _open: OpenGauge::new(g.upstreams.stats(server)),
    })
}

async fn read_response_head(
    w: &Worker,
    g: &Generation,
    up: &mut UpConn,
    ubuf: &mut BytesMut,
    is_head: bool,
) -> Result<ResponseHead, Error> {
    let max = g.limits().max_head_size;
    let mut headers = w.pool.headers();
    let result = loop {
        if !ubuf.is_empty() {
            match parse::parse_response(ubuf, max, is_head, &mut headers) {
                Ok(Some(resp)) => break Ok(resp),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        }
        let nothing_yet = ubuf.is_empty();
        match read_more(up, ubuf).await {
            Ok(0) => {
                let e = Error::bad_gateway(CLOSED_BEFORE_RESPONSE);
                break Err(if nothing_yet {
                    e.with_retry(Retry::IfReused)
                } else {
                    e
                });
            }
            Ok(_) => {}
            Err(e) => {
                let reset = is_reset(&e);
                let err = Error::upstream_io(e, "upstream read failed");
                break Err(if nothing_yet && reset {
                    err.with_retry(Retry::IfReused)
                } else {
                    err
                });
            }
        }
    };
    w.pool.put_headers(headers);
    result
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}
