//! The AI handler: an OpenAI-compatible API (and optionally an
//! Anthropic-compatible one) in front of the configured providers.
//!
//! A request is read whole (it is small and must be parsed), checked, and
//! written once for each provider tried: the model's targets in priority
//! order (or the first drawn by weight), each provider's keys in turn when
//! one answers 429. A target is left for the next on a connect failure, a
//! timeout, a 429 or a 5xx, all before anything was sent to the client;
//! once an answer has begun there is no going back. Within one provider's
//! upstream, the route's `[routes.retry]` applies as on any route (it
//! retries connect failures on another server by default).
//!
//! A non-streaming answer is read whole (up to `max-response-size`) and
//! translated; a streaming one is translated event by event by the body
//! filter stage as its bytes arrive, so the gateway adds no wait for the
//! first token. A client that leaves mid-stream drops the upstream
//! connection (the provider stops generating); the usage seen until then
//! is recorded.

mod reply;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use ringway_config::{AiRoute, PathMatch};

use crate::ai::provider::{Endpoint, Model, Provider, DEFAULT_COOL};
use crate::ai::stream::Translator;
use crate::ai::{anthropic, error as ai_error, gemini, openai, Chat, Usage, Wire};
use crate::error::Error;
use crate::http::head::{Method, RequestHead, Version};
use crate::http::{date, write};
use crate::policy::limit::now_ns;
use crate::proxy::answer::{end_head, send, BodyOut};
use crate::proxy::body::{Copy, CopyError, Framing, Output};
use crate::proxy::conn::Next;
use crate::proxy::ctx::{AiUse, Ctx};
use crate::proxy::exchange::{exchange, Fetched, NoPeer, Target};
use crate::proxy::filter::{AiStream, BodyFilter};
use crate::rt::io::{write_all_buf, Transport};
use crate::worker::conn::Conn;
use crate::worker::Generation;

use reply::{answer_json, fail, invalid, read_body, read_whole, refuse, Fail};
/// The most bytes of a provider's error answer read (to pass its message
/// on); the rest is dropped with the connection.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What the client asked for, by path under the route's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Chat,
    Models,
    Embeddings,
    /// The Anthropic-compatible front.
    Messages,
}

/// The format the client speaks (its errors and answers are in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    OpenAi,
    Anthropic,
}

/// Answers one request of an AI route.
pub(crate) async fn serve<S: Transport>(
    conn: &mut Conn,
    io: &mut S,
    ctx: &mut Ctx,
    head: &RequestHead,
    g: &Generation,
    index: usize,
    route: &AiRoute,
) -> Next {
    let config = g.snap.route_config(index);
    let api = match api_of(&config.path, head.path(), route.messages) {
        Some(api) => api,
        None => {
            let e = Fail::new(404, "not_found_error", "no such endpoint of the AI API");
            return refuse(conn, io, ctx, head, Front::OpenAi, e).await;
        }
    };
    let front = if api == Api::Messages {
        Front::Anthropic
    } else {
        Front::OpenAi
    };
    let want = if api == Api::Models {
        Method::Get
    } else {
        Method::Post
    };
    if head.method != want {
        conn.extra.extend_from_slice(if want == Method::Get {
            b"Allow: GET\r\n"
        } else {
            b"Allow: POST\r\n"
        });
        let e = Fail::new(405, "invalid_request_error", "method not allowed here");
        return refuse(conn, io, ctx, head, front, e).await;
    }
    if api == Api::Models {
        let body = models_list(g, route, ctx.consumer);
        return answer_json(conn, io, ctx, 200, &body, head.keep_alive).await;
    }
    let limits = &config.limits;
    let read = read_body(
        conn,
        io,
        head,
        limits.max_body_size,
        limits.body_idle_timeout,
    );
    let body = match read.await {
        Ok(b) => b,
        Err(e) => {
            // Too large, malformed framing, too slow: the OpenAI envelope,
            // and the connection closes (the body's end is not known).
            let Some(status) = e.status() else {
                ctx.fail(e);
                return Next::Close;
            };
            let message = e.context;
            ctx.fail(e);
            conn.linger = true;
            let why = Fail::new(status, "invalid_request_error", message);
            return fail(conn, io, ctx, front, &why, false).await;
        }
    };
    let parsed = match api {
        Api::Chat => openai::parse_chat(&body).map(Parsed::Chat),
        Api::Messages => anthropic::chat_from_messages(&body).map(Parsed::Chat),
        Api::Embeddings => openai::parse_embeddings(&body).map(Parsed::Embeddings),
        Api::Models => unreachable!("answered above"),
    };
    conn.w.pool.put_buf(body);
    let parsed = match parsed {
        Ok(p) => p,
        Err(inv) => return invalid(conn, io, ctx, head, front, &inv).await,
    };
    let name = match &parsed {
        Parsed::Chat(c) => c.model.as_str(),
        Parsed::Embeddings(e) => e.model.as_str(),
    };
    let catalog = &g.snap.ai;
    let found = route
        .models
        .iter()
        .map(|&i| (i, &catalog.models[i]))
        .find(|(_, m)| m.name == name);
    let Some((model_index, model)) = found else {
        let e = Fail::new(404, "invalid_request_error", "the model is not served here")
            .param("model")
            .code("model_not_found");
        return fail(conn, io, ctx, front, &e, head.keep_alive).await;
    };
    let groups = ctx
        .consumer
        .and_then(|c| g.snap.config.consumers.get(c))
        .map(|c| c.groups.as_slice());
    if !model.allows(groups) {
        let e = Fail::new(
            403,
            "permission_error",
            "the model is not allowed to this consumer",
        )
        .param("model")
        .code("model_not_allowed");
        return fail(conn, io, ctx, front, &e, head.keep_alive).await;
    }
    ctx.ai = Some(AiUse {
        model: model_index as u32,
        ..AiUse::default()
    });
    let call = Call {
        g,
        index,
        route,
        model,
        front,
        keep: head.keep_alive,
    };
    call.run(conn, io, ctx, &parsed).await
}

/// A parsed request body.
enum Parsed {
    Chat(Chat),
    Embeddings(openai::Embeddings),
}

/// The endpoint a path names under the route's path.
fn api_of(matched: &PathMatch, path: &[u8], messages: bool) -> Option<Api> {
    let rest = match matched {
        PathMatch::Prefix(p) => path.strip_prefix(p.as_bytes())?,
        PathMatch::Exact(_) => path,
    };
    let rest = rest.strip_prefix(b"/").unwrap_or(rest);
    let tail = |suffix: &[u8]| match matched {
        PathMatch::Prefix(_) => rest == suffix,
        PathMatch::Exact(_) => rest.ends_with(suffix),
    };
    if tail(b"v1/chat/completions") {
        Some(Api::Chat)
    } else if tail(b"v1/models") {
        Some(Api::Models)
    } else if tail(b"v1/embeddings") {
        Some(Api::Embeddings)
    } else if messages && tail(b"v1/messages") {
        Some(Api::Messages)
    } else {
        None
    }
}

/// The route's models the consumer may use, as OpenAI lists models.
fn models_list(g: &Generation, route: &AiRoute, consumer: Option<usize>) -> Vec<u8> {
    let groups = consumer
        .and_then(|c| g.snap.config.consumers.get(c))
        .map(|c| c.groups.as_slice());
    let data: Vec<serde_json::Value> = route
        .models
        .iter()
        .map(|&i| &g.snap.ai.models[i])
        .filter(|m| m.allows(groups))
        .map(|m| {
            serde_json::json!({
                "id": m.name,
                "object": "model",
                "created": 0,
                "owned_by": "ringway",
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"object": "list", "data": data}))
        .expect("a JSON value serialises")
}

/// One request's way through a model's targets.
struct Call<'a> {
    g: &'a Generation,
    index: usize,
    route: &'a AiRoute,
    model: &'a Model,
    front: Front,
    keep: bool,
}

/// How one try at a provider ended.
enum Tried {
    /// The answer was sent (or the client left): done.
    Answered(Next),
    /// A failure worth trying the next key or target for.
    Failed(Fail),
}

impl Call<'_> {
    async fn run<S: Transport>(
        &self,
        conn: &mut Conn,
        io: &mut S,
        ctx: &mut Ctx,
        parsed: &Parsed,
    ) -> Next {
        let g = self.g;
        let seed = g.next_random();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut last: Option<Fail> = None;
        let model_index = ctx.ai.map_or(0, |a| a.model as usize);
        for k in 0.. {
            let Some(target) = self.model.nth(seed, k) else {
                break;
            };
            let provider = &g.snap.ai.providers[target.provider];
            if let Some(prev) = ctx.ai.and_then(|a| a.provider) {
                // Going on to another target is a retry: it needs room in
                // that upstream's retry budget, as any retry does.
                let r = &g.snap.route_config(self.index).retry;
                if !g
                    .upstreams
                    .may_retry(provider.group, r.budget_percent, r.budget_min)
                {
                    conn.w.stats.upstream_retry_budget_exhausted.inc();
                    break;
                }
                if let Some(s) = g.ai_pair(model_index, prev as usize) {
                    s.fallbacks.inc();
                }
            }
            let outgoing = match (parsed, provider.wire) {
                (Parsed::Chat(chat), Wire::OpenAi) => Ok(openai::to_openai(chat, &target.model)),
                (Parsed::Chat(chat), Wire::Anthropic) => anthropic::to_anthropic(
                    chat,
                    &target.model,
                    self.model.max_tokens_default.unwrap_or(4096),
                ),
                (Parsed::Chat(chat), Wire::Gemini) => {
                    gemini::to_gemini(chat, self.model.max_tokens_default)
                }
                (Parsed::Embeddings(e), Wire::OpenAi) => Ok(crate::ai::Outgoing {
                    body: openai::embeddings_for(e, &target.model),
                    dropped: Vec::new(),
                }),
                (Parsed::Embeddings(_), _) => {
                    last = Some(Fail::new(
                        400,
                        "invalid_request_error",
                        "embeddings are served by OpenAI-format providers only",
                    ));
                    continue;
                }
            };
            let outgoing = match outgoing {
                Ok(o) => o,
                Err(inv) => {
                    let head_keep = self.keep;
                    let mut e = Fail::new(400, "invalid_request_error", &inv.message);
                    e.body = Some(ai_error::invalid(&inv));
                    return fail(conn, io, ctx, self.front, &e, head_keep).await;
                }
            };
            if let Some(ai) = ctx.ai.as_mut() {
                ai.provider = Some(target.provider as u32);
            }
            let (stream, include_usage) = match parsed {
                Parsed::Chat(c) => (c.stream, c.include_usage),
                Parsed::Embeddings(_) => (false, false),
            };
            let endpoint = match parsed {
                Parsed::Chat(_) => Endpoint::Chat {
                    model: &target.model,
                    stream,
                },
                Parsed::Embeddings(_) => Endpoint::Embeddings,
            };
            let start = seed as usize;
            let mut keys_left = provider.keys.len();
            while keys_left > 0 {
                keys_left -= 1;
                let now_ms = now_ns() / 1_000_000;
                let Some(key) = provider.take_key(start, now_ms) else {
                    last = Some(Fail::new(
                        429,
                        "rate_limit_error",
                        "every key of the provider is resting or at its limits",
                    ));
                    break;
                };
                let how = Try {
                    fallback: k > 0,
                    provider,
                    provider_index: target.provider,
                    key,
                    endpoint,
                    body: &outgoing.body,
                    dropped: &outgoing.dropped,
                    stream,
                    include_usage,
                    created,
                    target_model: &target.model,
                    embeddings: matches!(parsed, Parsed::Embeddings(_)),
                };
                match self.try_at(conn, io, ctx, &how).await {
                    Tried::Answered(next) => return next,
                    Tried::Failed(f) => {
                        let rate_limited = f.status == 429;
                        if rate_limited {
                            provider.cool(key, now_ms, f.retry_after.unwrap_or(DEFAULT_COOL));
                        }
                        last = Some(f);
                        if !rate_limited {
                            break;
                        }
                    }
                }
            }
        }
        let e = last.unwrap_or_else(|| Fail::new(503, "api_error", "no provider could answer"));
        fail(conn, io, ctx, self.front, &e, self.keep).await
    }

    /// One try at a provider with one key.
    async fn try_at<S: Transport>(
        &self,
        conn: &mut Conn,
        io: &mut S,
        ctx: &mut Ctx,
        how: &Try<'_>,
    ) -> Tried {
        let g = self.g;
        let route = g.snap.route_config(self.index);
        let p = how.provider;
        let mut req = std::mem::take(&mut conn.wbuf);
        req.clear();
        p.write_head(
            &mut req,
            how.endpoint,
            how.key,
            how.body.len(),
            ctx.request_id.as_bytes(),
            &ctx.trace.traceparent(),
        );
        req.extend_from_slice(how.body);
        let target = Target {
            route,
            group: p.group,
            is_head: false,
            idempotent: false,
            resendable: true,
            key: 0,
            head_timeout: p.timeout,
            fallback: how.fallback,
        };
        ctx.upstream = Some(p.group);
        let w = conn.w.clone();
        let fetched = exchange(&w, g, &target, &mut req, &mut NoPeer, &mut ctx.timings).await;
        req.clear();
        conn.wbuf = req;
        let mut f = match fetched {
            Ok(f) => f,
            Err(e) => {
                let status = e.status().unwrap_or(502);
                if let Some(s) = g.ai_provider(how.provider_index) {
                    s.error(0);
                }
                let mut why = Fail::new(status, "api_error", "the provider could not be reached");
                why.message = format!("the provider could not be reached: {e}");
                return Tried::Failed(why);
            }
        };
        let status = f.resp.status;
        if !(200..300).contains(&status) {
            if let Some(s) = g.ai_provider(how.provider_index) {
                s.error(status);
            }
            let retry_after = f.resp.retry_after();
            let idle = route.limits.body_idle_timeout;
            let body = read_whole(&w, g, &mut f, MAX_ERROR_BODY, idle).await;
            let done = body.is_ok();
            let text = body.unwrap_or_default();
            let mapped = ai_error::from_provider(p.wire, status, &text);
            f.release(&w, g, done);
            let mut why = Fail::new(mapped.status, &mapped.kind, &mapped.message);
            why.retry_after = retry_after;
            why.body = Some(mapped.body);
            if status == 429 || status >= 500 {
                return Tried::Failed(why);
            }
            // The provider refused the request itself: another provider
            // would too.
            return Tried::Answered(fail(conn, io, ctx, self.front, &why, self.keep).await);
        }
        if how.stream {
            Tried::Answered(self.stream(conn, io, ctx, f, how).await)
        } else {
            Tried::Answered(self.whole(conn, io, ctx, f, how).await)
        }
    }

    /// Reads a non-streaming answer whole, translates it and answers.
    async fn whole<S: Transport>(
        &self,
        conn: &mut Conn,
        io: &mut S,
        ctx: &mut Ctx,
        mut f: Fetched,
        how: &Try<'_>,
    ) -> Next {
        let g = self.g;
        let w = conn.w.clone();
        let idle = g.snap.route_config(self.index).limits.body_idle_timeout;
        let body = read_whole(&w, g, &mut f, self.route.max_response_size, idle).await;
        let done = body.is_ok();
        f.release(&w, g, done);
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                let why = Fail::new(502, "api_error", "the provider's answer broke off");
                ctx.fail(e);
                return fail(conn, io, ctx, self.front, &why, false).await;
            }
        };
        let answer = match (how.provider.wire, how.embeddings) {
            (Wire::OpenAi, _) => Ok(crate::ai::Answer {
                usage: openai::usage_of(&body),
                body: body.to_vec(),
            }),
            (Wire::Anthropic, _) => anthropic::answer_to_openai(&body, how.created),
            (Wire::Gemini, _) => gemini::answer_to_openai(&body, how.target_model, how.created),
        };
        let answer = answer.and_then(|a| match self.front {
            Front::OpenAi => Ok(a),
            Front::Anthropic => anthropic::answer_from_openai(&a.body).map(|b| crate::ai::Answer {
                body: b.body,
                usage: a.usage,
            }),
        });
        w.pool.put_buf(body);
        let answer = match answer {
            Ok(a) => a,
            Err(unreadable) => {
                let mut why = Fail::new(502, "api_error", "the provider's answer is unreadable");
                why.message = format!("the provider's answer is unreadable: {}", unreadable.0);
                return fail(conn, io, ctx, self.front, &why, self.keep).await;
            }
        };
        self.settle(ctx, how, answer.usage, Some(ctx.start.elapsed()));
        let keep = self.keep && !conn.listener.closing.is_fired();
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        wbuf.clear();
        self.write_head(&mut wbuf, how, b"application/json");
        let len = answer.body.len() as u64;
        let (out, keep) = end_head(conn, ctx, &mut wbuf, 200, BodyOut::Length(len), keep);
        crate::proxy::answer::put_body(ctx, out, &answer.body, &mut conn.scratch, &mut wbuf);
        conn.wbuf = wbuf;
        send(conn, io, ctx, keep).await
    }

    /// Relays a streaming answer through the translating body filter.
    async fn stream<S: Transport>(
        &self,
        conn: &mut Conn,
        io: &mut S,
        ctx: &mut Ctx,
        mut f: Fetched,
        how: &Try<'_>,
    ) -> Next {
        let g = self.g;
        let w = conn.w.clone();
        // The Anthropic front needs the usage chunk to end its stream.
        let anthropic_front = self.front == Front::Anthropic;
        let include_usage = how.include_usage || anthropic_front;
        let mut translator = match how.provider.wire {
            Wire::OpenAi => Translator::Pass(openai::PassStream::new(include_usage)),
            Wire::Anthropic => {
                Translator::Anthropic(anthropic::ToOpenAi::new(include_usage, how.created))
            }
            Wire::Gemini => Translator::Gemini(gemini::ToOpenAi::new(
                how.target_model,
                include_usage,
                how.created,
            )),
        };
        if anthropic_front {
            translator = Translator::Messages(Box::new((
                translator,
                anthropic::FromOpenAi::new(how.target_model),
                BytesMut::new(),
            )));
        }
        let keep = self.keep && !conn.listener.closing.is_fired();
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        wbuf.clear();
        self.write_head(&mut wbuf, how, b"text/event-stream");
        wbuf.extend_from_slice(b"Cache-Control: no-cache\r\n");
        let framing = if ctx.version == Version::Http11 {
            BodyOut::Chunked
        } else {
            BodyOut::Close
        };
        // The translating filter owns this body: it is not compressed.
        ctx.compress = crate::proxy::compress::Plan::Off;
        let (out, keep) = end_head(conn, ctx, &mut wbuf, 200, framing, keep);
        let keep = keep && out == BodyOut::Chunked;
        ctx.filter = BodyFilter::Ai(Box::new(AiStream::new(translator)));
        let chunked = out == BodyOut::Chunked;
        let route = g.snap.route_config(self.index);
        // The head goes out with the first events when they came with the
        // provider's head, so the first token costs one write; a stream
        // without a body still gets its end.
        let copy = Copy {
            framing: Framing::of(f.resp.body).unwrap_or(Framing::Length(0)),
            output: Output::Filter { chunked },
            limit: u64::MAX,
            idle: route.limits.body_idle_timeout,
            scratch: &mut conn.scratch,
            deadlines: &w.deadlines,
            send_limit: g.limits().send_timeout,
            pool: &w.pool,
            filter: Some(&mut ctx.filter),
            capture: None,
            lead: Some(&mut wbuf),
            trailers_dropped: None,
        };
        let copied = copy.run(&mut f.up, &mut f.ubuf, &mut *io).await;
        conn.wbuf = wbuf;
        let (usage, ttft) = match &ctx.filter {
            BodyFilter::Ai(s) => (s.usage(), s.first_token.map(|t| t - ctx.start)),
            _ => (Usage::default(), None),
        };
        self.settle(ctx, how, usage, ttft);
        match copied {
            Ok(()) => {
                f.release(&w, g, true);
                if keep {
                    Next::KeepAlive
                } else {
                    Next::Close
                }
            }
            Err(CopyError::Sink(e)) => {
                // The client left: dropping the connection stops the
                // provider.
                ctx.fail(Error::client_gone("client left the stream").because(e));
                drop(f);
                Next::Close
            }
            Err(e) => {
                // The provider's stream broke: the client gets an error
                // event and a clean end, then the connection closes.
                ctx.fail(Error::bad_gateway("AI provider stream broke off"));
                tracing::debug!(error = ?e, "AI provider stream broke off");
                drop(f);
                let mut tail = BytesMut::new();
                if let BodyFilter::Ai(s) = &mut ctx.filter {
                    s.broken(self.front == Front::Anthropic, &mut tail);
                }
                let mut framed = BytesMut::new();
                if chunked {
                    crate::http::chunked::write_chunk_header(&mut framed, tail.len());
                    framed.put_slice(&tail);
                    framed.put_slice(b"\r\n0\r\n\r\n");
                } else {
                    framed.put_slice(&tail);
                }
                let _ = write_all_buf(io, &mut framed, w.send_limit(&conn.g)).await;
                Next::Close
            }
        }
    }

    /// Status line and the AI answer's own lines (the response stage and
    /// framing follow).
    fn write_head(&self, out: &mut BytesMut, how: &Try<'_>, content_type: &[u8]) {
        write::status_line(out, 200, b"OK");
        out.extend_from_slice(b"Server: ringway\r\n");
        date::append_date_line(out);
        write::header(out, b"Content-Type", content_type);
        write::header(out, b"x-ringway-ai-provider", how.provider.name.as_bytes());
        write::header(out, b"x-ringway-ai-model", how.target_model.as_bytes());
        if !how.dropped.is_empty() {
            out.extend_from_slice(b"ringway-ai-dropped: ");
            for (i, field) in how.dropped.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b",");
                }
                out.extend_from_slice(field.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Records what the answer used: on the request (for the log stage)
    /// and against the key's per-minute tokens.
    fn settle(&self, ctx: &mut Ctx, how: &Try<'_>, usage: Usage, ttft: Option<Duration>) {
        how.provider.charge(how.key, usage.total());
        if let Some(ai) = ctx.ai.as_mut() {
            ai.usage = usage;
            ai.ttft = ttft;
            ai.answered = true;
        }
    }
}

/// What one try sends and how its answer is read.
struct Try<'a> {
    /// Not the model's first target.
    fallback: bool,
    provider: &'a Provider,
    provider_index: usize,
    key: usize,
    endpoint: Endpoint<'a>,
    body: &'a [u8],
    dropped: &'a [std::borrow::Cow<'static, str>],
    stream: bool,
    include_usage: bool,
    created: u64,
    target_model: &'a str,
    embeddings: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_found_under_the_route_path() {
        let prefix = |p: &str| PathMatch::Prefix(p.to_string());
        let cases: [(PathMatch, &str, bool, Option<Api>); 8] = [
            (prefix("/"), "/v1/chat/completions", false, Some(Api::Chat)),
            (
                prefix("/ai"),
                "/ai/v1/chat/completions",
                false,
                Some(Api::Chat),
            ),
            (prefix("/ai/"), "/ai/v1/models", false, Some(Api::Models)),
            (
                prefix("/ai"),
                "/ai/v1/embeddings",
                false,
                Some(Api::Embeddings),
            ),
            (prefix("/ai"), "/ai/v1/messages", false, None),
            (prefix("/ai"), "/ai/v1/messages", true, Some(Api::Messages)),
            (prefix("/ai"), "/ai/x/v1/models", false, None),
            (
                PathMatch::Exact("/llm/v1/chat/completions".into()),
                "/llm/v1/chat/completions",
                false,
                Some(Api::Chat),
            ),
        ];
        for (m, path, messages, want) in cases {
            assert_eq!(api_of(&m, path.as_bytes(), messages), want, "{path}");
        }
    }
}
