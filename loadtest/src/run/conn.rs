//! One keep-alive connection's life: send, wait for the whole response,
//! record, repeat — never more than one request in flight (no
//! pipelining), reconnecting after every error or `Connection: close`.
//!
//! Closed loop sends the next request the moment the previous response
//! ends. Open loop sends the m-th request of the run at its intended time
//! from the [`Schedule`], or at once if the connection is already late
//! (busy with a slow response, or reconnecting); it never skips a request
//! to catch up. Latency is measured from the intended time, so a stalled
//! server is charged for every request it delayed (the coordinated
//! omission correction of wrk2), and from the actual send (service time)
//! beside it. The time to the response's first body byte is measured from
//! the same start as the latency: the send in closed loop, the intended
//! time in open loop.
//!
//! Failed connects back off from 10 ms doubling to 1 s, so a dead server
//! costs a few connect attempts per second per connection instead of a
//! busy loop.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::plan::{Load, Request};
use crate::run::io::{exchange, Connector, Failure, FirstByte, ReadBuf, Response};
use crate::run::worker::{sleep_until, ThreadCtx};
use crate::schedule::Schedule;
use crate::stats::{record, ErrorKind};

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Runs connection `conn` (its index among all connections of the run)
/// until the run ends.
pub(crate) async fn connection<C: Connector>(ctx: Rc<ThreadCtx>, connector: Rc<C>, conn: usize) {
    match &ctx.plan.load {
        Load::Closed { .. } => closed_loop(&ctx, &*connector, conn).await,
        Load::Open { schedule } => open_loop(&ctx, &*connector, conn, schedule).await,
    }
    ctx.task_done();
}

/// The result of one attempt, as the recorder needs it.
type Attempt = Result<Result<Response, Failure>, monoio::time::error::Elapsed>;

struct Conn<'a, C: Connector> {
    ctx: &'a ThreadCtx,
    connector: &'a C,
    stream: Option<C::Stream>,
    rb: ReadBuf,
    backoff: Duration,
}

impl<'a, C: Connector> Conn<'a, C> {
    fn new(ctx: &'a ThreadCtx, connector: &'a C) -> Self {
        Conn {
            ctx,
            connector,
            stream: None,
            rb: ReadBuf::new(),
            backoff: BACKOFF_MIN,
        }
    }

    /// One connect attempt (bounded by the request timeout); on failure
    /// counts it and sleeps the backoff, but not past `until`.
    async fn connect(&mut self, until: Instant) -> bool {
        let attempt = monoio::time::timeout(self.ctx.plan.timeout, self.connector.connect()).await;
        match attempt {
            Ok(Ok(s)) => {
                self.stream = Some(s);
                self.backoff = BACKOFF_MIN;
                self.ctx.rec.borrow_mut().counters.connects += 1;
                true
            }
            _ => {
                self.ctx.rec.borrow_mut().error(ErrorKind::Connect);
                let wake = (Instant::now() + self.backoff).min(until);
                sleep_until(wake).await;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                false
            }
        }
    }

    /// Sends `req` on the open connection and waits for its response.
    async fn attempt(&mut self, req: &Request) -> Attempt {
        let timeout = self.ctx.plan.timeout;
        match self.stream.as_mut() {
            Some(s) => monoio::time::timeout(timeout, exchange(s, req, &mut self.rb)).await,
            None => Ok(Err(Failure::Reset)),
        }
    }

    /// Counts the attempt; returns when the body's first byte arrived if
    /// a response completed (its latencies are then the caller's to
    /// record), `None` if none did. Drops the connection when it cannot
    /// carry another request.
    fn settle(&mut self, req: &Request, attempt: Attempt) -> Option<FirstByte> {
        let ctx = self.ctx;
        let mut rec = ctx.rec.borrow_mut();
        rec.counters.sent += 1;
        rec.counters.bytes_written += req.wire.len() as u64;
        rec.counters.bytes_read += std::mem::take(&mut self.rb.read);
        let (done, keep) = match attempt {
            Ok(Ok(resp)) => {
                rec.status(resp.status);
                if !ctx.plan.expect.contains(resp.status) {
                    rec.error(ErrorKind::Status);
                }
                (Some(resp.first_byte), !resp.close)
            }
            Ok(Err(Failure::Reset)) => {
                rec.error(ErrorKind::Reset);
                (None, false)
            }
            Ok(Err(Failure::Malformed)) => {
                rec.error(ErrorKind::Malformed);
                (None, false)
            }
            Err(_) => {
                rec.error(ErrorKind::Timeout);
                (None, false)
            }
        };
        if !keep {
            self.stream = None;
            self.rb.reset();
        }
        done
    }
}

async fn closed_loop<C: Connector>(ctx: &ThreadCtx, connector: &C, conn: usize) {
    let plan = &*ctx.plan;
    let mut picker = plan.pick.picker(conn);
    let mut c = Conn::new(ctx, connector);
    // Connect before the common start so the first second measures
    // requests, not handshakes.
    c.connect(ctx.start).await;
    sleep_until(ctx.start).await;
    let mut now = Instant::now();
    // Bounded by the end of the run: every pass takes time (a response, a
    // timeout or a backoff sleep).
    while now < ctx.end && !ctx.stopped() {
        if c.stream.is_none() && !c.connect(ctx.end).await {
            now = Instant::now();
            continue;
        }
        let req = &plan.requests[picker.next_index()];
        let sent = Instant::now();
        let attempt = c.attempt(req).await;
        now = Instant::now();
        ctx.last_send.set(ctx.last_send.get().max(sent));
        if let Some(first) = c.settle(req, attempt) {
            let mut rec = ctx.rec.borrow_mut();
            let l = &mut rec.latencies;
            record(&mut l.latency, now - sent);
            if let Some(t) = first.instant(now) {
                record(&mut l.first_byte, t - sent);
            }
        }
    }
}

async fn open_loop<C: Connector>(ctx: &ThreadCtx, connector: &C, conn: usize, schedule: &Schedule) {
    let plan = &*ctx.plan;
    let conns = plan.connections as u64;
    let mut picker = plan.pick.picker(conn);
    let mut c = Conn::new(ctx, connector);
    c.connect(ctx.start).await;
    sleep_until(ctx.start).await;
    let mut free_at = ctx.start;
    let mut k: u64 = 0;
    // Bounded: the schedule is finite and the send deadline ends it early.
    'run: while let Some(offset) = schedule.time_of(k * conns + conn as u64) {
        if ctx.stopped() {
            return;
        }
        let intended = ctx.start + offset;
        if Instant::now() < intended {
            sleep_until(intended).await;
        }
        while c.stream.is_none() {
            if Instant::now() >= ctx.send_deadline || ctx.stopped() {
                break 'run;
            }
            if c.connect(ctx.send_deadline).await {
                free_at = Instant::now();
            }
        }
        let sent = Instant::now();
        if sent >= ctx.send_deadline {
            break;
        }
        let req = &plan.requests[picker.next_index()];
        let attempt = c.attempt(req).await;
        let done = Instant::now();
        ctx.last_send.set(ctx.last_send.get().max(sent));
        let completed = c.settle(req, attempt);
        let mut rec = ctx.rec.borrow_mut();
        let l = &mut rec.latencies;
        if let Some(h) = l.send_lag.as_mut() {
            record(h, sent.saturating_duration_since(intended));
        }
        if let Some(h) = l.gen_lag.as_mut() {
            record(h, sent.saturating_duration_since(intended.max(free_at)));
        }
        if let Some(first) = completed {
            record(&mut l.latency, done - intended);
            if let Some(h) = l.service.as_mut() {
                record(h, done - sent);
            }
            if let Some(t) = first.instant(done) {
                record(&mut l.first_byte, t - intended);
            }
        }
        drop(rec);
        free_at = done;
        k += 1;
    }
    if !ctx.stopped() {
        let unsent = schedule.count_for(conn, plan.connections).saturating_sub(k);
        ctx.rec.borrow_mut().counters.unsent += unsent;
    }
}
