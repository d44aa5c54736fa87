//! Sending a request body upstream while listening for the answer.
//!
//! An upstream may answer before it has read the whole body — 413 or 401
//! after the head, and then close (RFC 9110 §15.2.1 for the interim side,
//! RFC 9112 §9.6 for the close). Writing the body and only then reading
//! turns that answer into a failed write and a 502 half-way through the
//! client's upload. So the body is written on one half of the upstream
//! connection while the other half reads: once a final head arrives, the
//! upload stops, the answer is relayed, and the client connection closes
//! after it when the rest of its body was not read. The upstream
//! connection is not reused.
//!
//! `Expect: 100-continue` (RFC 9110 §10.1.1) is forwarded and its answer
//! awaited before the body goes: the upstream's 100 is relayed, or its
//! final refusal is (and the body is never sent), or after
//! [`EXPECT_WAIT`] the gateway sends the client its own 100 and the body
//! goes anyway, as §10.1.1 allows a client (and so the gateway, as one)
//! to do.
//!
//! Over TLS the expectation is forwarded but not awaited (a readable
//! socket may hold only a session ticket, and a read would then wait for
//! an answer the upstream holds back until the body comes).
//!
//! Trade-off: a plain connection is split for the length of one streamed
//! body, and the read that watches for an answer is cancelled once the
//! body is sent: a few small allocations (the split's shared cell, the
//! canceller) and one cancel per streamed body. Bodies coalesced with
//! their head — up to 8 KiB, or buffered within `retry-buffer` — never
//! come here, so the common request allocates nothing more. A
//! TLS upstream's two directions share one session, so there the body is
//! written first and an answer is read only after it, or after a write
//! failed (an upstream that answered and closed).
//! Interim heads other than 100 that arrive during the upload are passed
//! over, not relayed.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, CancelHandle, CancelableAsyncReadRent, Canceller, OwnedReadHalf};
use monoio::net::TcpStream;

use crate::http::parse::{peek_response, Peek};
use crate::rt::deadline::Deadlines;
use crate::rt::io::{read_more, Transport, BUF_SIZE, HEAD_BUF_SIZE};
use crate::upstream::UpConn;

/// How long the gateway waits for an upstream's answer to a forwarded
/// `Expect: 100-continue` before it tells the client to send its body
/// anyway. Short: an origin that ignores the expectation (HTTP/1.0, say)
/// costs each such upload this much.
pub(crate) const EXPECT_WAIT: Duration = Duration::from_secs(1);

/// What the upstream said to a forwarded `Expect: 100-continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expectation {
    /// Its 100: the body may go.
    Continue,
    /// Nothing within [`EXPECT_WAIT`]: the body goes anyway.
    TimedOut,
    /// A final answer (or a close): the body is not sent.
    Answered,
    /// Not waited for (a TLS upstream): the body goes at once.
    NotAwaited,
}

/// Waits for the upstream's answer to the expectation in the head just
/// sent: interim heads are taken off `ubuf`; a final head stays there for
/// the exchange to read.
pub(crate) async fn await_continue(
    deadlines: &Deadlines,
    up: &mut UpConn,
    ubuf: &mut BytesMut,
    max_head: usize,
) -> Expectation {
    let until = Instant::now() + EXPECT_WAIT;
    loop {
        match peek_response(ubuf) {
            Peek::Interim(100, len) => {
                ubuf.advance(len);
                return Expectation::Continue;
            }
            Peek::Interim(_, len) => {
                ubuf.advance(len);
                continue;
            }
            Peek::Final => return Expectation::Answered,
            Peek::Partial if ubuf.len() >= max_head => return Expectation::Answered,
            Peek::Partial => {}
        }
        // Waiting on readiness lends no buffer: the wait can end at the
        // deadline without losing bytes that arrive just then.
        match deadlines.within(until, up.wait_readable()).await {
            Err(_) => return Expectation::TimedOut,
            Ok(Err(_)) => return Expectation::Answered,
            Ok(Ok(())) => {}
        }
        match read_more(up, ubuf).await {
            Ok(n) if n > 0 => {}
            // Closed or failed: reading the head says so.
            _ => return Expectation::Answered,
        }
    }
}

/// How the watch for an early answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watched {
    /// A final head began.
    Answered,
    /// The upstream closed its side or the read failed.
    Closed,
    /// The body was sent first and the watch was called off.
    Cancelled,
}

/// Reads the upstream's answer while its body is still being written:
/// returns once a final head has begun (interim ones are passed over), or
/// on a close, or when `cancel` fires. The bytes read are given back.
pub(crate) async fn watch(
    read: &mut OwnedReadHalf<TcpStream>,
    mut buf: BytesMut,
    cancel: CancelHandle,
) -> (Watched, BytesMut) {
    loop {
        match peek_response(&buf) {
            Peek::Interim(_, len) => {
                buf.advance(len);
                continue;
            }
            Peek::Final if !buf.is_empty() => return (Watched::Answered, buf),
            _ => {}
        }
        if buf.capacity() - buf.len() < 512
            && !buf.try_reclaim(BUF_SIZE)
            && !buf.try_reclaim(HEAD_BUF_SIZE)
        {
            buf.reserve(BUF_SIZE);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = read
            .cancelable_read(buf.slice_mut(len..cap), cancel.clone())
            .await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return (Watched::Closed, buf),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(ECANCELED) => return (Watched::Cancelled, buf),
            Err(_) => return (Watched::Closed, buf),
        }
    }
}

/// The errno of a cancelled operation (monoio reports it as the raw OS
/// error on both drivers).
const ECANCELED: i32 = 125;

/// Runs `send` (the body's copy onto the connection's write half) while
/// [`watch`] reads the read half into `ubuf`. `Ok(None)` when the body
/// went whole; `Ok(Some(watched))` when the upstream answered or closed
/// first (the copy is then dropped mid-way); `Err` with the copy's error
/// when it failed (after a failed write, an answer that is already there
/// is still taken: the upstream answered and closed).
pub(crate) async fn send_watching<F, E>(
    read: &mut OwnedReadHalf<TcpStream>,
    ubuf: &mut BytesMut,
    deadlines: &Deadlines,
    send: F,
    answered_after: impl FnOnce(&E) -> bool,
) -> Result<Option<Watched>, E>
where
    F: Future<Output = Result<(), E>>,
{
    let canceller = Canceller::new();
    let mut watching = pin!(watch(read, std::mem::take(ubuf), canceller.handle()));
    let mut sending = pin!(send);
    let first = monoio::select! {
        sent = &mut sending => Ok(sent),
        watched = &mut watching => Err(watched),
    };
    match first {
        Err((watched, buf)) => {
            *ubuf = buf;
            // An answer to the whole body can come in the same wake-up as
            // the completion of its last write: one more look tells the
            // two apart.
            let last = std::future::poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
            match last {
                Poll::Ready(Ok(())) => Ok(None),
                _ => Ok(Some(watched)),
            }
        }
        Ok(Ok(())) => {
            canceller.cancel();
            let (_, buf) = watching.await;
            *ubuf = buf;
            Ok(None)
        }
        Ok(Err(e)) => {
            // A write failed: an upstream that answered and closed has
            // its answer waiting (a read after the reset still returns
            // it); one that is merely gone closes the read at once.
            if answered_after(&e) {
                if let Ok((Watched::Answered, buf)) =
                    deadlines.within_for(CLOSING_WAIT, &mut watching).await
                {
                    *ubuf = buf;
                    return Ok(Some(Watched::Answered));
                }
            }
            canceller.cancel();
            let (_, buf) = watching.await;
            *ubuf = buf;
            Err(e)
        }
    }
}

/// After a write of the body failed on a connection that could not be
/// split (TLS): whether the upstream had sent a final head before it
/// closed, now in `ubuf`.
pub(crate) async fn answered_before_close<R: AsyncReadRent>(
    deadlines: &Deadlines,
    up: &mut R,
    ubuf: &mut BytesMut,
) -> bool {
    let until = Instant::now() + CLOSING_WAIT;
    loop {
        match peek_response(ubuf) {
            Peek::Interim(_, len) => {
                ubuf.advance(len);
                continue;
            }
            Peek::Final if !ubuf.is_empty() => return true,
            _ => {}
        }
        match deadlines.within(until, read_more(up, ubuf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return false,
        }
    }
}

/// How long an answer may trail a failed write of the body.
const CLOSING_WAIT: Duration = Duration::from_millis(500);

/// Whether a failed write means the upstream is gone (rather than slow).
pub(crate) fn is_gone(e: &io::Error) -> bool {
    e.kind() != io::ErrorKind::TimedOut
}
