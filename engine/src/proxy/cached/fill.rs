//! One fetch from the origin for a cache key: conditional when a stored
//! response can be revalidated, relayed to the client and, when storable,
//! kept (RFC 9111 §3, §4.3; RFC 5861 §4 stale-if-error).

use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;

use crate::cache::conditional::{self, Validators};
use crate::cache::directives::RequestDirectives;
use crate::cache::entry::{http_date, unix_now, Entry};
use crate::cache::response::{
    build_entry, end_to_end, exact, is_conditional, may_serve_on_error, preconditions,
    request_values, response_value, same_etag, vary_of, verdict,
};
use crate::cache::store::{Leading, RouteCache};
use crate::http::head::{BodyKind, RequestHead};
use crate::proxy::answer;
use crate::proxy::body::Capture;
use crate::proxy::conn::Next;
use crate::proxy::ctx::{CacheUse, Ctx};
use crate::proxy::exchange::{exchange, Target};
use crate::proxy::forward::{relay, Interim, Relay};
use crate::proxy::rewrite::{write_request_head, Cond, Rewrite};
use crate::rt::io::Transport;
use crate::worker::conn::Conn;
use crate::worker::{Generation, Worker};

use super::{answer_stored, Served};

/// One fetch from the origin for a cache key.
pub(super) struct FetchFor<'a> {
    pub(crate) g: &'a Rc<Generation>,
    pub(crate) index: usize,
    pub(crate) group: usize,
    pub(crate) rc: &'a RouteCache,
    pub(crate) key: &'a [u8],
    pub(crate) req_dir: RequestDirectives,
    /// The key's last response was not stored: the client's preconditions
    /// go to the origin as they are.
    pub(crate) pass: bool,
    /// Requests for the same key wait until this is dropped.
    pub(crate) _leading: Option<Leading>,
    /// A GET with Range: a full 200 is read whole and the range answered
    /// from it (`super::range::miss`).
    pub(crate) range: bool,
}

/// The conditional request that revalidates `stale`, if it can be.
pub(super) fn revalidation(stale: Option<&Entry>) -> Cond<'_> {
    match stale {
        Some(e) if e.has_validators() => Cond::Revalidate {
            etag: e.value(b"etag"),
            last_modified: e.value(b"last-modified"),
        },
        _ => Cond::Strip,
    }
}

impl FetchFor<'_> {
    /// Fetches (conditionally when `stale` has validators) and answers.
    pub(crate) async fn run<S: Transport>(
        self,
        conn: &mut Conn,
        io: &mut S,
        ctx: &mut Ctx,
        head: &RequestHead,
        mut stale: Option<Arc<Entry>>,
    ) -> Next {
        let g = self.g;
        let w = conn.w.clone();
        let route = g.snap.route_config(self.index);
        ctx.upstream = Some(self.group);
        let stale_ok = route.cache.as_ref().is_some_and(|c| c.serve_stale_on_error);
        let target = Target {
            route,
            group: self.group,
            is_head: false,
            idempotent: true,
            resendable: true,
            key: crate::proxy::forward::request_key(conn, ctx, head, g, self.group),
            head_timeout: None,
            fallback: false,
        };
        loop {
            let rewrite = Rewrite::new(conn.tls.as_deref(), &g.snap, self.index, ctx);
            let cond = match &stale {
                // A key known not to be stored: the origin answers the
                // client's preconditions itself.
                None if self.pass => Cond::Pass,
                s => revalidation(s.as_deref()),
            };
            let mut req = std::mem::take(&mut conn.wbuf);
            req.clear();
            write_request_head(&mut req, conn.peer, head, route, &rewrite, cond);
            let request_time = unix_now();
            // 1xx (103 Early Hints, say) reach the client on a caching
            // route too, and are never stored (RFC 9110 §15.2).
            let mut peer = Interim::new(conn, io, ctx.version);
            let fetched = exchange(&w, g, &target, &mut req, &mut peer, &mut ctx.timings).await;
            req.clear();
            conn.wbuf = req;
            let now = unix_now();
            let f = match fetched {
                Ok(f) => f,
                Err(e) => {
                    if let Some(s) = stale
                        .as_ref()
                        .filter(|s| may_serve_on_error(s, now, stale_ok))
                    {
                        w.stats.cache_stale.inc();
                        let served = Served::StaleIfError(e.status().unwrap_or(502));
                        ctx.fail(e);
                        return answer_stored(conn, io, ctx, head, s, s.age(now), served).await;
                    }
                    ctx.cache = Some(CacheUse::Miss);
                    return answer::error(conn, io, ctx, e, false).await;
                }
            };
            if let Some(s) = &stale {
                if f.resp.status == 304 && !same_etag(s, &f.resp) {
                    // The 304 is about another representation than the one
                    // stored (§4.3.4): nothing to update; fetch it whole.
                    let done = f.resp.body == BodyKind::None;
                    f.release(&w, g, done);
                    self.rc.remove_entry(self.key, s);
                    stale = None;
                    continue;
                }
                if f.resp.status == 304 {
                    let targeted = g.snap.config.cache.targeted_field.as_bytes();
                    let update = end_to_end(&f.resp);
                    let fresh = Arc::new(s.refreshed(update, targeted, request_time, now));
                    let done = f.resp.body == BodyKind::None;
                    f.release(&w, g, done);
                    self.store(&w, fresh.clone());
                    w.stats.cache_revalidated.inc();
                    let age = fresh.age(now);
                    return answer_stored(conn, io, ctx, head, &fresh, age, Served::Revalidated)
                        .await;
                }
                if f.resp.status >= 500 && may_serve_on_error(s, now, stale_ok) {
                    let status = f.resp.status;
                    f.release(&w, g, false);
                    w.stats.cache_stale.inc();
                    let served = Served::StaleIfError(status);
                    return answer_stored(conn, io, ctx, head, s, s.age(now), served).await;
                }
            }
            let f = if self.range {
                match super::range::miss(&self, conn, io, ctx, head, f, request_time, now).await {
                    Ok(next) => return next,
                    Err(f) => f,
                }
            } else {
                f
            };
            ctx.cache = Some(CacheUse::Miss);
            return self
                .relay(conn, io, ctx, head, f, stale.as_ref(), request_time, now)
                .await;
        }
    }

    /// Relays a full response to the client, storing it when allowed.
    #[allow(clippy::too_many_arguments)]
    async fn relay<S: Transport>(
        &self,
        conn: &mut Conn,
        io: &mut S,
        ctx: &mut Ctx,
        head: &RequestHead,
        f: crate::proxy::exchange::Fetched,
        stale: Option<&Arc<Entry>>,
        request_time: u64,
        response_time: u64,
    ) -> Next {
        let w = conn.w.clone();
        let resp = &f.resp;
        let authorization = request_values(head, b"authorization").next().is_some();
        let targeted = self.g.snap.config.cache.targeted_field.as_bytes();
        let verdict = verdict(
            &self.req_dir,
            authorization,
            resp,
            self.rc.max_entry,
            targeted,
        );
        // Not stored because of this request (its no-store or credentials)
        // says nothing about the next one: the stored response stays and
        // the key keeps collapsing.
        let request_caused = self.req_dir.no_store || verdict == Err("authorization");
        // The client's validators against this response: a match gets 304
        // while the body still comes in for the cache.
        let pre = preconditions(head);
        let client_304 = resp.status == 200
            && is_conditional(&pre)
            && conditional::not_modified(
                &pre,
                &Validators {
                    etag: response_value(resp, b"etag"),
                    last_modified: response_value(resp, b"last-modified").and_then(http_date),
                },
            );
        let fwd = if stale.is_some() { "stale" } else { "miss" };
        let fwd_status = resp.status;
        let _ = match verdict {
            Ok(true) => write!(
                conn.extra,
                "Cache-Status: ringway; fwd={fwd}; fwd-status={fwd_status}; stored\r\n"
            ),
            Ok(false) => write!(
                conn.extra,
                "Cache-Status: ringway; fwd={fwd}; fwd-status={fwd_status}\r\n"
            ),
            Err(why) => write!(
                conn.extra,
                "Cache-Status: ringway; fwd={fwd}; fwd-status={fwd_status}; detail={why}\r\n"
            ),
        };
        let mut capture = Capture {
            buf: verdict.is_ok().then(|| {
                let size = match resp.body {
                    BodyKind::Length(n) => n as usize,
                    _ => 4 * 1024,
                };
                BytesMut::with_capacity(size)
            }),
            limit: self.rc.max_entry,
        };
        let cfg = &self.g.snap.config.cache;
        let how = Relay {
            client_304,
            capture: Some(&mut capture),
            strip_targeted: (!cfg.forward_targeted).then_some(targeted),
        };
        let relayed = relay(conn, io, ctx, self.g, f, head.keep_alive, how).await;
        // Store what arrived whole.
        if relayed.body_ok && !request_caused {
            self.rc
                .note_stored(self.key, capture.buf.is_some(), response_time);
        }
        match capture.buf.take().filter(|_| relayed.body_ok) {
            Some(raw) => {
                let resp = &relayed.resp;
                let secondary = RouteCache::secondary_of(&vary_of(resp), head);
                let body = exact(raw);
                let entry =
                    build_entry(resp, secondary, body, request_time, response_time, targeted);
                self.store(&w, Arc::new(entry));
            }
            None if relayed.body_ok && !request_caused => {
                // Superseded by a response that is not kept.
                if let Some(s) = stale {
                    self.rc.remove_entry(self.key, s);
                }
            }
            None => {}
        }
        relayed.done(&w)
    }

    pub(super) fn store(&self, w: &Worker, entry: Arc<Entry>) {
        if self.rc.insert(self.key, entry) {
            w.stats.cache_stored.inc();
        }
    }
}
