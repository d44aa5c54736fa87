//! Answers and the response stage.
//!
//! Every final response head the gateway sends, whatever wrote its first
//! lines (the built-in responder, an upstream's head, a stored response,
//! an error or a redirect), is completed by [`end_head`]: the response
//! stage adds the lines every answer of the request carries (X-Request-Id,
//! policy headers, HSTS, Cache-Status, CORS; on a CORS route it also
//! replaces the head's own CORS fields and adds `Origin` to `Vary`), the
//! body filter is chosen, and the framing and Connection lines and the
//! blank line follow. Compression (`proxy::compress`) decides here too,
//! since it changes the head. So "add a header to
//! every response" has one home, and the final status is recorded on the
//! request's context on every path.

use bytes::{Bytes, BytesMut};

use crate::error::Error;
use crate::http::head::{BodyKind, Version};
use crate::http::{date, write};
use crate::policy::cors;
use crate::proxy::compress::{self, Plan};
use crate::proxy::conn::Next;
use crate::proxy::ctx::Ctx;
use crate::proxy::filter::{self, BodyFilter};
use crate::proxy::transform::{self, Vars};
use crate::rt::io::{write_all_buf, write_bytes, Transport};
use crate::snapshot::Prebuilt;
use crate::worker::conn::Conn;
use ringway_config::ErrorFormat;

/// How the body that follows a head reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyOut {
    /// No body (1xx, 204, 304, or a head whose length line, if any, was
    /// written with its fields: a HEAD answer).
    None,
    /// Exactly this many bytes, announced by Content-Length.
    Length(u64),
    /// Chunked (HTTP/1.1 clients).
    Chunked,
    /// Until the connection closes (HTTP/1.0 clients).
    Close,
}

impl BodyOut {
    fn has_body(self) -> bool {
        !matches!(self, BodyOut::None | BodyOut::Length(0))
    }
}

/// Completes the response head in `out` (its status line and fields
/// written): the response stage, then framing, Connection and the blank
/// line. Returns the framing in force and whether the connection stays
/// open (a body filter may change both: the length is then unknown).
pub(crate) fn end_head(
    conn: &Conn,
    ctx: &mut Ctx,
    out: &mut BytesMut,
    status: u16,
    body: BodyOut,
    keep: bool,
) -> (BodyOut, bool) {
    // The response stage: what every answer of this request carries.
    ctx.status = status;
    ctx.timings.first_byte = Some(ctx.start.elapsed());
    let route = ctx.route.and_then(|i| conn.g.snap.routes.get(i));
    if route.is_some_and(|r| r.cors.is_some()) {
        // Before `conn.extra`, which holds the gateway's own CORS lines.
        cors::fix_head(out);
    }
    write::header(out, b"X-Request-Id", ctx.request_id.as_bytes());
    out.extend_from_slice(&conn.extra);
    if ctx.req.is_some() {
        response_rules(conn, ctx, out);
    }
    let mut body = body;
    let mut keep = keep;
    if let Some(hook) = &conn.w.hooks.body_filter {
        if body.has_body() && !ctx.head_request {
            ctx.filter = BodyFilter::Hook(hook.clone());
            body = if ctx.version == Version::Http11 {
                BodyOut::Chunked
            } else {
                keep = false;
                BodyOut::Close
            };
        }
    }
    if ctx.compress != Plan::Off && !ctx.filter.is_active() && body.has_body() {
        let length = match body {
            BodyOut::Length(n) => Some(n),
            _ => None,
        };
        let route = ctx.route.map(|i| conn.g.snap.route_config(i));
        let c = route.and_then(|r| r.compression.as_ref());
        if let Some(e) = c.and_then(|c| compress::on_head(c, ctx.compress, out, status, length)) {
            let stats = &conn.w.stats;
            match e {
                compress::Encoder::Gzip(_) => stats.compressed_gzip.inc(),
                compress::Encoder::Brotli(_) => stats.compressed_br.inc(),
                compress::Encoder::Zstd(_) => stats.compressed_zstd.inc(),
            }
            ctx.filter = BodyFilter::Compress(Box::new(e));
            body = if ctx.version == Version::Http11 {
                BodyOut::Chunked
            } else {
                keep = false;
                BodyOut::Close
            };
        }
    }
    match body {
        BodyOut::Length(n) => write::content_length(out, n),
        BodyOut::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyOut::None | BodyOut::Close => {}
    }
    connection_line(out, ctx.version, keep);
    out.extend_from_slice(b"\r\n");
    (body, keep)
}

/// The listener's and the route's response-header rules, on the head in
/// `out` (which starts at its status line).
fn response_rules(conn: &Conn, ctx: &Ctx, out: &mut BytesMut) {
    let g = &conn.g;
    let rules = transform::rules_of(&g.snap, ctx, false);
    if rules.iter().all(Option::is_none) {
        return;
    }
    let vars = Vars {
        snap: &g.snap,
        ctx,
        tls: conn.tls.as_deref(),
        server: ctx.timings.server.map(|s| g.upstreams.address(s)),
        captures: None,
        target: None,
    };
    transform::apply(rules, out, 0, &vars);
}

/// Appends a body held in memory after its head, through the body filter
/// when one is active (`body` as [`end_head`] returned it).
pub(crate) fn put_body(
    ctx: &mut Ctx,
    body: BodyOut,
    data: &[u8],
    scratch: &mut BytesMut,
    out: &mut BytesMut,
) {
    if ctx.head_request {
        return;
    }
    match body {
        BodyOut::None => {}
        BodyOut::Length(_) => out.extend_from_slice(data),
        BodyOut::Chunked | BodyOut::Close => {
            let chunked = body == BodyOut::Chunked;
            filter::frame(&mut ctx.filter, data, chunked, scratch, out);
            filter::end(&mut ctx.filter, chunked, out);
        }
    }
}

/// The Connection line a response needs, if any (RFC 9112 §9.3).
pub(crate) fn connection_line(out: &mut BytesMut, version: Version, keep: bool) {
    match (version, keep) {
        (_, false) => out.extend_from_slice(b"Connection: close\r\n"),
        (Version::Http10, true) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        (Version::Http11, true) => {}
    }
}

/// Writes `conn.wbuf` to the client; false (the client gone, recorded)
/// when that fails.
pub(crate) async fn write_out<S: Transport>(conn: &mut Conn, io: &mut S, ctx: &mut Ctx) -> bool {
    let w = conn.w.clone();
    match write_all_buf(io, &mut conn.wbuf, w.send_limit(&conn.g)).await {
        Ok(()) => true,
        Err(e) => {
            ctx.fail(Error::client_gone("client stopped reading the answer").because(e));
            false
        }
    }
}

/// Writes `conn.wbuf`, then `body` (a stored body too large to copy into
/// it, written from its own memory); `false` when the client stopped
/// reading.
pub(crate) async fn write_out_with<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    body: Option<Bytes>,
) -> bool {
    if !write_out(conn, io, ctx).await {
        return false;
    }
    let Some(body) = body else {
        return true;
    };
    let w = conn.w.clone();
    if let Err(err) = write_bytes(io, body, w.send_limit(&conn.g)).await {
        ctx.fail(Error::client_gone("client stopped reading the body").because(err));
        return false;
    }
    true
}

/// Writes `conn.wbuf` to the client; `Close` when that fails or `keep`
/// is false.
pub(crate) async fn send<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    keep: bool,
) -> Next {
    if write_out(conn, io, ctx).await && keep {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// Answers from a built-in responder (its body read away first).
pub(crate) async fn respond<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    keep: bool,
    pre: &Prebuilt,
) -> Next {
    let keep = keep && !conn.listener.closing.is_fired();
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    wbuf.extend_from_slice(&pre.head);
    date::append_date_line(&mut wbuf);
    let (body, keep) = end_head(
        conn,
        ctx,
        &mut wbuf,
        pre.status,
        BodyOut::Length(pre.body.len() as u64),
        keep,
    );
    put_body(ctx, body, &pre.body, &mut conn.scratch, &mut wbuf);
    conn.wbuf = wbuf;
    send(conn, io, ctx, keep).await
}

/// Answers `e` (a refusal or a failure) with its status and a short text
/// body; nothing is sent for an error that has no status (client gone).
/// The connection stays open only when `keep` allows; after an answer
/// that closes it, unread request bytes are read away (lingering close).
pub(crate) async fn error<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    e: Error,
    keep: bool,
) -> Next {
    let Some(status) = e.status() else {
        ctx.fail(e);
        return Next::Close;
    };
    if e.side != crate::error::Side::Downstream || status >= 500 {
        tracing::debug!(peer = %conn.peer, error = %e, "request failed");
    }
    ctx.fail(e);
    if !keep {
        // The client may still be sending what we refused.
        conn.linger = true;
    }
    status_only(conn, io, ctx, status, keep).await
}

/// Answers a bare status with its reason as a short text body (errors,
/// redirects whose Location the request stage put in `conn.extra`).
pub(crate) async fn status_only<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    status: u16,
    keep: bool,
) -> Next {
    let keep = keep && !conn.listener.closing.is_fired();
    let text = write::reason(status);
    let mut wbuf = std::mem::take(&mut conn.wbuf);
    wbuf.clear();
    write::status_line(&mut wbuf, status, text.as_bytes());
    wbuf.extend_from_slice(b"Server: ringway\r\n");
    date::append_date_line(&mut wbuf);
    // The body goes after the head; it is written first (into the
    // scratch) so that its length is known.
    let mut content = std::mem::take(&mut conn.scratch);
    if content.capacity() == 0 {
        // Pooled: given back with the connection's other buffers.
        content = conn.w.pool.head_buf();
    }
    content.clear();
    let snap = &conn.g.snap;
    let transforms =
        snap.listener_transforms || ctx.route.is_some_and(|i| snap.routes[i].transforms);
    let kind = if status >= 400 && transforms {
        error_body(conn, ctx, status, &mut content)
    } else {
        None
    };
    match kind {
        Some(content_type) => write::header(&mut wbuf, b"Content-Type", content_type),
        None => {
            wbuf.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
            content.extend_from_slice(text.as_bytes());
            content.extend_from_slice(b"\n");
        }
    }
    let len = content.len() as u64;
    let (body, keep) = end_head(conn, ctx, &mut wbuf, status, BodyOut::Length(len), keep);
    if body == BodyOut::Length(len) {
        if !ctx.head_request {
            wbuf.extend_from_slice(&content);
        }
    } else {
        let mut scratch = BytesMut::new();
        put_body(ctx, body, &content, &mut scratch, &mut wbuf);
    }
    content.clear();
    conn.scratch = content;
    conn.wbuf = wbuf;
    send(conn, io, ctx, keep).await
}

/// Writes the body of an error answer when the route or listener asks
/// for one other than the reason as text (a custom body, or JSON);
/// returns its content type, `None` for the plain text default.
fn error_body<'a>(conn: &'a Conn, ctx: &Ctx, status: u16, out: &mut BytesMut) -> Option<&'a [u8]> {
    let snap = &conn.g.snap;
    let route = ctx.route.map(|i| &snap.route_config(i).transform);
    if let Some(b) = route.and_then(|t| t.error_bodies.iter().find(|b| b.status == status)) {
        let vars = Vars {
            snap,
            ctx,
            tls: conn.tls.as_deref(),
            server: ctx.timings.server.map(|s| conn.g.upstreams.address(s)),
            captures: None,
            target: None,
        };
        vars.render(&b.body, out, false);
        return Some(b.content_type.as_bytes());
    }
    let format = route.and_then(|t| t.error_format).or_else(|| {
        let l = transform::listener_index(snap, conn.listener.configured)?;
        Some(snap.config.listeners[l].error_format)
    });
    if format != Some(ErrorFormat::Json) {
        return None;
    }
    let message = ctx
        .error
        .as_ref()
        .map_or_else(|| write::reason(status), |e| e.context);
    out.extend_from_slice(b"{\"error\":{\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.extend_from_slice(b",\"code\":\"");
    out.extend_from_slice(error_code(status).as_bytes());
    out.extend_from_slice(b"\",\"message\":\"");
    json_escape(message.as_bytes(), out);
    out.extend_from_slice(b"\",\"request_id\":\"");
    json_escape(ctx.request_id.as_bytes(), out);
    out.extend_from_slice(b"\"}}\n");
    Some(b"application/json")
}

/// The `code` of a JSON error answer.
fn error_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        414 => "uri_too_long",
        429 => "rate_limited",
        431 => "headers_too_large",
        500 => "internal_error",
        501 => "not_implemented",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        s if s < 500 => "client_error",
        _ => "server_error",
    }
}

/// Writes `s` as the inside of a JSON string (RFC 8259 §7).
fn json_escape(s: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.extend_from_slice(&[b]),
        }
    }
}

/// The framing and keep-alive of a relayed response for this client:
/// chunked stays chunked for HTTP/1.1 and is decoded for HTTP/1.0, a
/// close-delimited body is chunked for HTTP/1.1.
pub(crate) fn relay_framing(
    resp: BodyKind,
    client: Version,
    keep: bool,
) -> (crate::proxy::body::Output, BodyOut, bool) {
    use crate::proxy::body::Output;
    let client_11 = client == Version::Http11;
    match resp {
        BodyKind::Chunked if client_11 => (Output::Same, BodyOut::Chunked, keep),
        BodyKind::Chunked => (Output::Dechunk, BodyOut::Close, false),
        BodyKind::UntilClose if client_11 => (Output::Chunk, BodyOut::Chunked, keep),
        BodyKind::UntilClose => (Output::Same, BodyOut::Close, false),
        BodyKind::Length(n) => (Output::Same, BodyOut::Length(n), keep),
        BodyKind::None => (Output::Same, BodyOut::None, keep),
    }
}
