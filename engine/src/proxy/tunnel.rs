//! The tunnel handler: a request that asks to switch to a protocol its
//! route passes (`upgrades`, RFC 9110 §7.8) is forwarded with its
//! `Upgrade` field, and once the upstream answers `101 Switching
//! Protocols` the gateway carries bytes both ways until either side
//! closes (as nginx does: a WebSocket ends with its close handshake, and
//! the server then closes first, RFC 6455 §7.1.1), the tunnel sits idle for `tunnel-idle-timeout`, or a drain runs
//! out. Any other answer is relayed as an ordinary response.
//!
//! The request has passed the request filters like any other (IP rules,
//! auth, limits), and the 101 passes the response stage, so it carries
//! X-Request-Id and the route's response lines. The tunnel keeps the
//! generation it started on; its upstream connection is never pooled
//! again, and the client connection closes after it.
//!
//! Trade-off: one task moves the bytes, waiting on both ends' readiness
//! (no buffer lent to the kernel while idle) and then writing what it read
//! before it reads again. A tunnel therefore holds two 16 KiB buffers and
//! no second task, and works the same over TLS on either side; a write
//! the peer does not take holds up the other direction too, for at most
//! `tunnel-idle-timeout`, which is back-pressure both ways rather than a
//! queue. Bytes either side sent before the switch (buffered behind the
//! heads) go first.

use std::future::pending;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::AsyncWriteRent;

use crate::error::{Error, Kind};
use crate::http::head::{RequestHead, ResponseHead};
use crate::http::write;
use crate::proxy::answer::{self, end_head, BodyOut};
use crate::proxy::conn::Next;
use crate::proxy::ctx::Ctx;
use crate::proxy::exchange::{exchange, Fetched, Peer, Sent, Target};
use crate::proxy::forward::{self, Relay};
use crate::proxy::rewrite::{write_request_head, Cond, Rewrite};
use crate::rt::deadline::Deadlines;
use crate::rt::io::{read_more, write_all_buf, SendLimit, Transport};
use crate::rt::notify::LocalNotify;
use crate::upstream::tunnel::RouteTunnels;
use crate::upstream::UpConn;
use crate::worker::conn::Conn;
use crate::worker::Generation;

/// Forwards an upgrade request for `protocol` (as the client offered it)
/// to upstream group `group`, and tunnels after a 101.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    g: &Generation,
    index: usize,
    group: usize,
    tunnels: &RouteTunnels,
    protocol: &[u8],
) -> Next {
    let w = conn.w.clone();
    let Some(slot) = tunnels.admit() else {
        w.stats.tunnels_refused.inc();
        let e = Error::downstream(Kind::Unavailable, "route at max-tunnels");
        return answer::error(conn, io, ctx, e, head.keep_alive).await;
    };
    let route = g.snap.route_config(index);
    let mut rewrite = Rewrite::new(conn.tls.as_deref(), &g.snap, index, ctx);
    rewrite.upgrade = Some(protocol);
    let mut req = std::mem::take(&mut conn.wbuf);
    req.clear();
    write_request_head(&mut req, conn.peer, head, route, &rewrite, Cond::Pass);
    let target = Target {
        route,
        group,
        is_head: false,
        // A GET without a body: whole in `req`, safe to send again until
        // an answer comes.
        idempotent: true,
        resendable: true,
        key: forward::request_key(conn, ctx, head, g, group),
        head_timeout: None,
        fallback: false,
    };
    ctx.upstream = Some(group);
    let fetched = exchange(&w, g, &target, &mut req, &mut Upgrading, &mut ctx.timings).await;
    req.clear();
    conn.wbuf = req;
    let f = match fetched {
        Ok(f) => f,
        Err(e) => return answer::error(conn, io, ctx, e, false).await,
    };
    if f.resp.status != 101 {
        // Refused (or answered without switching): relayed as it is, and
        // the upstream connection may be reused.
        drop(slot);
        return forward::relay(conn, io, ctx, g, f, head.keep_alive, Relay::default())
            .await
            .done(&w);
    }
    let Fetched {
        up,
        mut ubuf,
        resp,
        flight,
        ..
    } = f;
    // A tunnel is not a request in flight to the server.
    drop(flight);
    let switched = switch(conn, io, ctx, &resp).await;
    w.pool.put_headers(resp.into_headers());
    if let Err(e) = switched {
        w.pool.put_buf(ubuf);
        return answer::error(conn, io, ctx, e, false).await;
    }
    w.stats.tunnels_opened.inc();
    w.stats.tunnels_open.inc();
    let mut cbuf = std::mem::take(&mut conn.rbuf);
    w.pool.upsize(&mut cbuf);
    w.pool.upsize(&mut ubuf);
    let mut ends = Ends {
        client: io,
        cbuf: &mut cbuf,
        up,
        ubuf: &mut ubuf,
        moved: [0; 2],
    };
    let bounds = Bounds {
        deadlines: &w.deadlines,
        idle: tunnels.idle_timeout,
        closing: &conn.listener.closing,
        drain: g.snap.config.drain_timeout,
    };
    let end = ends.run(&bounds).await;
    let [up_bytes, down_bytes] = ends.moved;
    drop(ends);
    w.stats.tunnels_open.dec();
    w.stats.tunnel_bytes_up.add(up_bytes);
    w.stats.tunnel_bytes_down.add(down_bytes);
    match end {
        End::Closed => {}
        End::Idle => w.stats.tunnels_idle_closed.inc(),
        End::Drained => w.stats.tunnels_drain_closed.inc(),
        End::Failed(e) => {
            tracing::debug!(peer = %conn.peer, error = %e, "tunnel failed");
            ctx.fail(e);
        }
    }
    // Nothing read from the client is left over for another request.
    cbuf.clear();
    conn.rbuf = cbuf;
    w.pool.put_buf(ubuf);
    drop(slot);
    Next::Close
}

/// Sends the client the upstream's 101 through the response stage, with
/// the protocol it switched to.
async fn switch<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    resp: &ResponseHead,
) -> Result<(), Error> {
    let Some(accepted) = resp.value(b"upgrade") else {
        return Err(Error::bad_gateway("101 without Upgrade"));
    };
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    forward::write_response_fields(&mut wbuf, resp);
    wbuf.extend_from_slice(b"Connection: upgrade\r\n");
    write::header(&mut wbuf, b"Upgrade", accepted);
    end_head(conn, ctx, &mut wbuf, 101, BodyOut::None, true);
    let w = conn.w.clone();
    let sent = write_all_buf(io, &mut wbuf, w.send_limit(&conn.g)).await;
    conn.wbuf = wbuf;
    sent.map_err(|e| Error::client_gone("client gone before the switch").because(e))
}

/// The exchange of an upgrade request: no body, interim answers skipped,
/// and a 101 is the final answer.
struct Upgrading;

impl Peer for Upgrading {
    async fn send_body(&mut self, up: UpConn, _: &mut BytesMut) -> (UpConn, Result<Sent, Error>) {
        (up, Ok(Sent::Whole))
    }

    async fn interim(&mut self, _: &ResponseHead) -> Result<bool, Error> {
        Ok(false)
    }

    fn upgrades(&self) -> bool {
        true
    }
}

/// How a tunnel ended.
#[derive(Debug)]
enum End {
    /// One side closed (and the other was told: its write side shut).
    Closed,
    /// No byte either way for `tunnel-idle-timeout`.
    Idle,
    /// The listener drained and `drain-timeout` passed.
    Drained,
    /// A read or write failed.
    Failed(Error),
}

/// What bounds a tunnel's life.
struct Bounds<'a> {
    deadlines: &'a Deadlines,
    idle: Duration,
    /// Fired when the listener closes (a drain, or a reload that removed
    /// it): the tunnel then gets `drain` more.
    closing: &'a LocalNotify,
    drain: Duration,
}

/// Which end has bytes to read.
enum Woke {
    Client(io::Result<()>),
    Up(io::Result<()>),
    Drain,
}

/// The two ends of a tunnel and what each sent before the switch.
struct Ends<'a, C> {
    client: &'a mut C,
    /// Client bytes read but not yet passed on.
    cbuf: &'a mut BytesMut,
    up: UpConn,
    /// Upstream bytes read but not yet passed on.
    ubuf: &'a mut BytesMut,
    /// Bytes carried up (client to upstream) and down.
    moved: [u64; 2],
}

impl<C: Transport> Ends<'_, C> {
    async fn run(&mut self, b: &Bounds<'_>) -> End {
        let send = SendLimit {
            deadlines: b.deadlines,
            limit: b.idle,
        };
        if let Err(e) = self.flush_up(send).await {
            return End::Failed(e);
        }
        if let Err(e) = self.flush_down(send).await {
            return End::Failed(e);
        }
        let mut last = Instant::now();
        let mut drain_at = b.closing.is_fired().then(|| last + b.drain);
        loop {
            let idle_at = last + b.idle;
            let until = drain_at.map_or(idle_at, |d| d.min(idle_at));
            let ended = |now: Instant| match drain_at {
                Some(d) if now >= d => End::Drained,
                _ => End::Idle,
            };
            let woke = {
                let (client, up) = (&*self.client, &self.up);
                let waits_drain = drain_at.is_none();
                b.deadlines
                    .within(until, async move {
                        let client = client.wait_readable();
                        let up = up.wait_readable();
                        let drain = async move {
                            if waits_drain {
                                b.closing.wait().await
                            } else {
                                pending().await
                            }
                        };
                        monoio::select! {
                            r = client => Woke::Client(r),
                            r = up => Woke::Up(r),
                            _ = drain => Woke::Drain,
                        }
                    })
                    .await
            };
            let read = match woke {
                Err(_) => return ended(Instant::now()),
                Ok(Woke::Drain) => {
                    drain_at = Some(Instant::now() + b.drain);
                    continue;
                }
                Ok(Woke::Client(Err(e))) | Ok(Woke::Up(Err(e))) => {
                    return End::Failed(Error::client_gone("tunnel wait failed").because(e))
                }
                Ok(Woke::Client(Ok(()))) => {
                    let read = b.deadlines.within(until, read_more(self.client, self.cbuf));
                    match read.await {
                        Err(_) => return ended(Instant::now()),
                        Ok(Err(e)) => {
                            return End::Failed(
                                Error::client_gone("tunnel client read failed").because(e),
                            )
                        }
                        Ok(Ok(0)) => {
                            // The client is done: so is the tunnel, once
                            // the upstream has been told.
                            let _ = self.up.shutdown().await;
                            return End::Closed;
                        }
                        Ok(Ok(_)) => self.flush_up(send).await,
                    }
                }
                Ok(Woke::Up(Ok(()))) => {
                    let read = b
                        .deadlines
                        .within(until, read_more(&mut self.up, self.ubuf));
                    match read.await {
                        Err(_) => return ended(Instant::now()),
                        Ok(Err(e)) => {
                            return End::Failed(Error::upstream_io(
                                e,
                                "tunnel upstream read failed",
                            ))
                        }
                        Ok(Ok(0)) => {
                            let _ = self.client.shutdown().await;
                            return End::Closed;
                        }
                        Ok(Ok(_)) => self.flush_down(send).await,
                    }
                }
            };
            if let Err(e) = read {
                return End::Failed(e);
            }
            last = Instant::now();
        }
    }

    /// Passes what the client sent on to the upstream.
    async fn flush_up(&mut self, send: SendLimit<'_>) -> Result<(), Error> {
        if self.cbuf.is_empty() {
            return Ok(());
        }
        self.moved[0] += self.cbuf.len() as u64;
        write_all_buf(&mut self.up, self.cbuf, send)
            .await
            .map_err(|e| Error::upstream_io(e, "tunnel upstream write failed"))
    }

    /// Passes what the upstream sent on to the client.
    async fn flush_down(&mut self, send: SendLimit<'_>) -> Result<(), Error> {
        if self.ubuf.is_empty() {
            return Ok(());
        }
        self.moved[1] += self.ubuf.len() as u64;
        write_all_buf(self.client, self.ubuf, send)
            .await
            .map_err(|e| Error::client_gone("tunnel client write failed").because(e))
    }
}
