//! One client connection: wait for a request, read its head, run it
//! through the pipeline, repeat while keep-alive allows (RFC 9112 §9).
//!
//! Requests on a connection are handled strictly one after another, so
//! pipelined requests are answered in order by construction.
//!
//! Memory: the connection's own future only waits for readability. Reading
//! a head and answering it runs in a second, larger future (a "turn"),
//! boxed: allocated on the first request, reused in place for every later
//! one, and freed once the connection has been idle for [`BUSY_WINDOW`].
//! Between requests the connection gives its buffers back to the worker's
//! pool. An idle connection therefore costs its small waiting state only
//! (its size is checked by a test), while steady traffic allocates nothing.

use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::error::{Error, Kind};
use crate::http::head::{self, HeadLimits, Method, RequestHead};
use crate::http::request_id::RequestId;
use crate::http::trace;
use crate::proxy::answer;
use crate::proxy::ctx::Ctx;
use crate::proxy::pipeline;
use crate::rt::io::{read_more, Counted, Transport};
use crate::worker::conn::{Conn, TlsInfo};
use crate::worker::{ListenerState, Worker};

/// What happens to the connection after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    KeepAlive,
    Close,
}

/// How long a connection may sit idle before its request state is freed.
/// A busy keep-alive connection reuses one allocation for every request;
/// an idle one shrinks to the small waiting state. 50 ms is longer than the
/// gaps inside a stream of back-to-back requests and shorter than a human
/// or batch client's think time.
const BUSY_WINDOW: Duration = Duration::from_millis(50);

/// Longest lingering close (shutdown included), and most bytes read away
/// during it.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_MAX: usize = 1 << 20;

/// Serves a client connection until it closes, errs, or the worker drains.
pub(crate) async fn serve<S: Transport + 'static>(
    w: Rc<Worker>,
    io: S,
    peer: SocketAddr,
    listener: Rc<ListenerState>,
    tls: Option<TlsInfo>,
) {
    let mut conn = Conn::new(w, peer, listener, tls);
    let mut io = Counted::new(io);
    // A new connection's first head must be complete within one
    // header-read-timeout of the accept, however the time splits between
    // waiting for the first byte and reading the rest.
    let accepted = Instant::now();
    let mut first = true;
    let mut busy = None;
    loop {
        if conn.rbuf.is_empty() {
            conn.release();
            if !wait_for_request(&mut conn, &mut io, first, &mut busy).await {
                break;
            }
        }
        let turn = turn(conn, io, first.then_some(accepted));
        let mut boxed = match busy.take() {
            Some(mut b) => {
                Pin::set(&mut b, turn);
                b
            }
            None => Box::pin(turn),
        };
        let (c, i, next) = boxed.as_mut().await;
        conn = c;
        io = i;
        busy = Some(boxed);
        first = false;
        // On drain, requests already pipelined are still answered (each
        // with `Connection: close` once the drain began); the next wait
        // for a request sees the drain and closes.
        if next == Next::Close {
            break;
        }
    }
    conn.release();
}

/// Waits until the client sends something, without holding a buffer.
/// False when the connection should close instead (idle timeout, EOF race,
/// or drain). Past [`BUSY_WINDOW`] the request state in `busy` is freed.
async fn wait_for_request<S: Transport, B>(
    conn: &mut Conn,
    io: &mut S,
    first: bool,
    busy: &mut Option<B>,
) -> bool {
    // Between requests the connection holds the newest generation, not the
    // one its last request ran on.
    conn.g = conn.w.current();
    let limits = conn.g.limits();
    let idle = if first {
        limits.header_read_timeout
    } else {
        limits.keepalive_timeout
    };
    let deadline = Instant::now() + idle;
    let w = conn.w.clone();
    let listener = conn.listener.clone();
    if busy.is_none() {
        // Not just answered a request: nothing to keep warm.
        io.idle();
    } else {
        let window = w.hooks.busy_window.unwrap_or(BUSY_WINDOW);
        let soon = (Instant::now() + window).min(deadline);
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

/// What the connection does with what it read.
enum Step {
    Request(RequestHead),
    Reject(Error),
    Close,
}

/// One turn of the connection: read a head, answer it, run the log stage;
/// linger before a close when the client may still be sending. Takes the
/// connection and gives it back. `accepted` is set for the first request.
async fn turn<S: Transport>(
    mut conn: Conn,
    mut io: Counted<S>,
    accepted: Option<Instant>,
) -> (Conn, Counted<S>, Next) {
    let start = Instant::now();
    // Bytes of earlier requests: everything read but what is still
    // buffered.
    let consumed_before = io.read - conn.rbuf.len() as u64;
    let written_before = io.written;
    let step = next_step(&mut conn, &mut io, accepted.unwrap_or(start)).await;
    let next = match step {
        Step::Close => Next::Close,
        Step::Request(head) => {
            let mut ctx = request_ctx(&conn, start, &head);
            let next = pipeline::run(&mut conn, &mut io, &mut ctx, &head).await;
            let counts = (consumed_before, written_before);
            finish(&mut conn, &io, &mut ctx, Some(&head), counts);
            let headers = head.into_headers();
            if conn.headers.capacity() == 0 {
                conn.headers = headers;
            }
            next
        }
        Step::Reject(e) => {
            // Not a request we could read: still an ID for its answer.
            let ids = &conn.w.ids;
            let mut ctx = Ctx::new(start, ids.request_id(), ids.trace(None));
            let next = answer::error(&mut conn, &mut io, &mut ctx, e, false).await;
            let counts = (consumed_before, written_before);
            finish(&mut conn, &io, &mut ctx, None, counts);
            next
        }
    };
    if next == Next::Close && conn.linger {
        linger(&conn, &mut io).await;
    }
    (conn, io, next)
}

/// The request's context: its ID (the client's when its listener trusts
/// it and it is valid, else a new one) and its trace (the client's
/// continued when valid, else a new one).
fn request_ctx(conn: &Conn, start: Instant, head: &RequestHead) -> Ctx {
    let ids = &conn.w.ids;
    let client_id = if conn.g.trusts_request_id(conn.listener.configured) {
        RequestId::of_head(head)
    } else {
        None
    };
    let request_id = client_id.unwrap_or_else(|| ids.request_id());
    let trace = ids.trace(trace::parent_of(head));
    let mut ctx = Ctx::new(start, request_id, trace);
    ctx.version = head.version;
    ctx.head_request = head.method == Method::Head;
    // The order of `stats::labeled::METHODS`.
    ctx.method = match head.method {
        Method::Get => 0,
        Method::Head => 1,
        Method::Post => 2,
        Method::Put => 3,
        Method::Delete => 4,
        Method::Patch => 5,
        Method::Options => 6,
        _ => 7,
    };
    ctx
}

/// The request is over: its byte counts (from the stream's totals when it
/// began, `(read, written)`), then the log stage, which may read `head`.
fn finish<S>(
    conn: &mut Conn,
    io: &Counted<S>,
    ctx: &mut Ctx,
    head: Option<&RequestHead>,
    (consumed_before, written_before): (u64, u64),
) {
    let consumed = io.read - conn.rbuf.len() as u64;
    ctx.bytes_in = consumed.saturating_sub(consumed_before);
    ctx.bytes_out = io.written - written_before;
    pipeline::log(conn, ctx, head);
    conn.extra.clear();
}

/// Reads the next request head, within one header-read-timeout from
/// `since`.
async fn next_step<S: Transport>(conn: &mut Conn, io: &mut S, since: Instant) -> Step {
    if conn.rbuf.capacity() == 0 {
        conn.rbuf = conn.w.pool.head_buf();
    }
    // Each request runs on the generation current when its head starts,
    // head limits and timeout included.
    conn.g = conn.w.current();
    if conn.wbuf.capacity() == 0 {
        conn.wbuf = conn.w.pool.head_buf();
    }
    let limits = conn.g.limits();
    let deadline = since + limits.header_read_timeout;
    let hl = HeadLimits {
        max_head: limits.max_head_size,
        max_headers: limits.max_headers,
        max_target: limits.max_target_len,
        slashes: conn.g.encoded_slashes(conn.listener.configured),
        underscores: conn.g.underscores(conn.listener.configured),
    };
    if conn.headers.capacity() == 0 {
        conn.headers = conn.w.pool.headers();
    }
    let w = conn.w.clone();
    let reading = read_head(
        hl,
        &mut conn.rbuf,
        &mut conn.headers,
        &mut conn.head_bytes,
        io,
    );
    match w.deadlines.within(deadline, reading).await {
        Ok(Ok(Some(head))) => {
            if head.underscores_dropped > 0 {
                w.stats
                    .headers_dropped_underscore
                    .add(u64::from(head.underscores_dropped));
            }
            Step::Request(head)
        }
        Ok(Ok(None)) => Step::Close,
        Ok(Err(e)) => Step::Reject(e),
        Err(_) => {
            // The read in flight was dropped with its buffer. A client that
            // sent nothing is closed without an answer (readiness can be
            // spurious); one stuck mid-head gets 408.
            conn.rbuf = BytesMut::new();
            if conn.head_bytes > 0 {
                Step::Reject(Error::downstream(Kind::Timeout, "head read timeout"))
            } else {
                Step::Close
            }
        }
    }
}

/// Reads until a whole head is buffered. `Ok(None)`: the client closed
/// cleanly between requests.
async fn read_head<S: Transport>(
    hl: HeadLimits,
    rbuf: &mut BytesMut,
    headers: &mut Vec<head::Header>,
    head_bytes: &mut usize,
    io: &mut S,
) -> Result<Option<RequestHead>, Error> {
    *head_bytes = rbuf.len();
    loop {
        if !rbuf.is_empty() {
            if let Some(head) = crate::http::parse::parse_request(rbuf, hl, headers)? {
                return Ok(Some(head));
            }
        }
        let n = read_more(io, rbuf)
            .await
            .map_err(|e| Error::client_gone("read failed").because(e))?;
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

/// Lingering close (as nginx does): after answering a request whose body
/// was not read, stop writing and read away what the client is still
/// sending, for a short while, so that our close does not reset the
/// connection (and discard our answer) while the client's data is unread.
/// The whole of it, the shutdown included (a TLS close_notify is a write a
/// stalled client may never take), is bounded by [`LINGER_TIME`].
async fn linger<S: Transport>(conn: &Conn, io: &mut S) {
    let w = &conn.w;
    let until = Instant::now() + LINGER_TIME;
    let lingering = async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut buf = w.pool.head_buf();
        let mut drained = 0;
        while drained < LINGER_MAX {
            match read_more(io, &mut buf).await {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
            buf.clear();
        }
        w.pool.put_buf(buf);
    };
    let _ = w.deadlines.within(until, lingering).await;
}
