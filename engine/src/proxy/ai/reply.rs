//! What the AI handler answers by itself, in the client's format: its
//! refusals and the providers' failures (the OpenAI error envelope, or
//! Anthropic's on the Anthropic front), JSON bodies it holds, and reading
//! whole bodies (the request's, and a provider's non-streaming answer).

use std::time::Duration;

use bytes::BytesMut;

use super::Front;
use crate::ai::{error as ai_error, Invalid};
use crate::error::{Error, Kind};
use crate::http::head::{BodyKind, RequestHead, Version};
use crate::http::{date, write};
use crate::proxy::answer::{end_head, send, BodyOut};
use crate::proxy::body::{Capture, Copy, CopyError, Discard, Framing, Output};
use crate::proxy::conn::Next;
use crate::proxy::ctx::Ctx;
use crate::proxy::exchange::Fetched;
use crate::rt::io::Transport;
use crate::worker::conn::Conn;
use crate::worker::Generation;

/// Reads the request body whole (it is parsed before anything is sent).
pub(super) async fn read_body<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    head: &RequestHead,
    limit: u64,
    idle: Duration,
) -> Result<BytesMut, Error> {
    let framing = match head.body {
        BodyKind::Length(n) => Framing::Length(n),
        BodyKind::Chunked => Framing::Chunked,
        _ => return Err(Error::bad_request("the request has no body")),
    };
    if head.expect_continue && head.version == Version::Http11 {
        crate::proxy::forward::send_continue(conn, io).await?;
    }
    let w = conn.w.clone();
    let mut capture = Capture {
        buf: Some(w.pool.buf()),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    };
    let copy = Copy {
        framing,
        output: Output::Discard,
        limit,
        idle,
        scratch: &mut conn.scratch,
        deadlines: &w.deadlines,
        send_limit: conn.g.limits().send_timeout,
        pool: &w.pool,
        filter: None,
        capture: Some(&mut capture),
        lead: None,
        trailers_dropped: None,
    };
    copy.run(io, &mut conn.rbuf, &mut Discard)
        .await
        .map_err(crate::proxy::forward::request_body_error)?;
    capture
        .buf
        .ok_or(Error::downstream(Kind::BodyTooLarge, "body over limit"))
}

/// An answer the gateway makes itself: status, error type, message, the
/// field at fault and a code.
pub(super) struct Fail {
    pub(super) status: u16,
    pub(super) kind: String,
    pub(super) message: String,
    pub(super) param: Option<&'static str>,
    pub(super) code: Option<&'static str>,
    /// A provider's `Retry-After`, passed on with a 429.
    pub(super) retry_after: Option<Duration>,
    /// The OpenAI envelope a provider's error was mapped to.
    pub(super) body: Option<Vec<u8>>,
}

impl Fail {
    pub(super) fn new(status: u16, kind: &str, message: &str) -> Fail {
        Fail {
            status,
            kind: kind.to_string(),
            message: message.to_string(),
            param: None,
            code: None,
            retry_after: None,
            body: None,
        }
    }

    pub(super) fn param(mut self, p: &'static str) -> Fail {
        self.param = Some(p);
        self
    }

    pub(super) fn code(mut self, c: &'static str) -> Fail {
        self.code = Some(c);
        self
    }

    /// The body in the client's format.
    fn body(&self, front: Front) -> Vec<u8> {
        match (front, &self.body) {
            (Front::Anthropic, _) => ai_error::anthropic_envelope(&self.message, &self.kind),
            (Front::OpenAi, Some(b)) => b.clone(),
            (Front::OpenAi, None) => {
                ai_error::envelope(&self.message, &self.kind, self.param, self.code)
            }
        }
    }

    /// The error the log stage counts for it.
    fn error(&self) -> Error {
        match self.status {
            400 => Error::bad_request("invalid AI request"),
            403 => Error::downstream(Kind::Forbidden, "AI model not allowed"),
            404 => Error::downstream(Kind::NotFound, "no such AI model or endpoint"),
            405 => Error::downstream(Kind::MethodNotAllowed, "method not allowed"),
            429 => Error::upstream(Kind::TooManyRequests, "AI provider rate limit"),
            503 => Error::upstream(Kind::Unavailable, "AI provider unavailable"),
            504 => Error::upstream(Kind::GatewayTimeout, "AI provider timeout"),
            s if s >= 500 => Error::bad_gateway("AI provider failed"),
            _ => Error::downstream(Kind::BadRequest, "AI provider refused the request"),
        }
    }
}

/// Refuses a request before its body was read.
pub(super) async fn refuse<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    front: Front,
    e: Fail,
) -> Next {
    // A body left unread closes the connection.
    let unread = head.body != BodyKind::None;
    conn.linger |= unread;
    let keep = head.keep_alive && !unread;
    fail(conn, io, ctx, front, &e, keep).await
}

pub(super) async fn invalid<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    front: Front,
    inv: &Invalid,
) -> Next {
    let mut e = Fail::new(400, "invalid_request_error", &inv.message);
    e.body = Some(ai_error::invalid(inv));
    ctx.fail(e.error());
    let body = e.body(front);
    answer_json(conn, io, ctx, 400, &body, head.keep_alive).await
}

/// Answers a failure in the client's format.
pub(super) async fn fail<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    front: Front,
    e: &Fail,
    keep: bool,
) -> Next {
    ctx.fail(e.error());
    if let Some(after) = e.retry_after.filter(|_| e.status == 429) {
        conn.extra.extend_from_slice(b"Retry-After: ");
        conn.extra.extend_from_slice(
            itoa::Buffer::new()
                .format(after.as_secs().max(1))
                .as_bytes(),
        );
        conn.extra.extend_from_slice(b"\r\n");
    }
    let body = e.body(front);
    answer_json(conn, io, ctx, e.status, &body, keep).await
}

/// Answers a JSON body the gateway holds.
pub(super) async fn answer_json<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    status: u16,
    body: &[u8],
    keep: bool,
) -> Next {
    let keep = keep && !conn.listener.closing.is_fired();
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    write::status_line(&mut wbuf, status, write::reason(status).as_bytes());
    wbuf.extend_from_slice(b"Server: ringway\r\n");
    date::append_date_line(&mut wbuf);
    wbuf.extend_from_slice(b"Content-Type: application/json\r\n");
    let (out, keep) = end_head(
        conn,
        ctx,
        &mut wbuf,
        status,
        BodyOut::Length(body.len() as u64),
        keep,
    );
    crate::proxy::answer::put_body(ctx, out, body, &mut conn.scratch, &mut wbuf);
    conn.wbuf = wbuf;
    send(conn, io, ctx, keep).await
}

/// Reads an upstream answer's body whole, up to `limit` bytes.
pub(super) async fn read_whole(
    w: &crate::worker::Worker,
    g: &Generation,
    f: &mut Fetched,
    limit: usize,
    idle: Duration,
) -> Result<BytesMut, Error> {
    let Some(framing) = Framing::of(f.resp.body) else {
        return Ok(BytesMut::new());
    };
    let mut capture = Capture {
        buf: Some(w.pool.buf()),
        limit,
    };
    let mut scratch = BytesMut::new();
    let copy = Copy {
        framing,
        output: Output::Discard,
        limit: limit as u64,
        idle,
        scratch: &mut scratch,
        deadlines: &w.deadlines,
        send_limit: g.limits().send_timeout,
        pool: &w.pool,
        filter: None,
        capture: Some(&mut capture),
        lead: None,
        trailers_dropped: None,
    };
    copy.run(&mut f.up, &mut f.ubuf, &mut Discard)
        .await
        .map_err(|e| match e {
            CopyError::TooLarge => Error::bad_gateway("AI provider answer over max-response-size"),
            CopyError::SourceTimeout => {
                Error::upstream(Kind::GatewayTimeout, crate::stats::labeled::BODY_TIMEOUT)
            }
            _ => Error::bad_gateway("AI provider answer broke off"),
        })?;
    capture.buf.ok_or(Error::bad_gateway(
        "AI provider answer over max-response-size",
    ))
}
