//! Revalidation in the background (RFC 5861 §3 stale-while-revalidate):
//! one fetch per key on its own task while requests are answered from the
//! stale response; its result is stored when it may be.

use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;

use crate::cache::directives::RequestDirectives;
use crate::cache::entry::{unix_now, Entry};
use crate::cache::response::{
    build_entry, end_to_end, exact, request_values, same_etag, vary_of, verdict,
};
use crate::http::head::{BodyKind, RequestHead};
use crate::proxy::body::Capture;
use crate::proxy::ctx::{Ctx, Timings};
use crate::proxy::exchange::{exchange, NoPeer, Target};
use crate::proxy::rewrite::{write_request_head, Rewrite};
use crate::worker::conn::Conn;
use crate::worker::Generation;

use super::fill::revalidation;

/// Starts one revalidation of `stale` in the background; requests in the
/// meantime are answered from it.
#[allow(clippy::too_many_arguments)]
pub(super) fn revalidate(
    conn: &Conn,
    ctx: &Ctx,
    g: &Rc<Generation>,
    index: usize,
    group: usize,
    key: &[u8],
    head: &RequestHead,
    stale: &Arc<Entry>,
) {
    let Some(rc) = g.cache.route(index) else {
        return;
    };
    // Another worker may have started one since the caller looked.
    let Ok(leading) = rc.lead(key) else {
        return;
    };
    let route = g.snap.route_config(index);
    let rewrite = Rewrite::new(conn.tls.as_deref(), &g.snap, index, ctx);
    let mut req = BytesMut::with_capacity(1024);
    let cond = revalidation(Some(stale));
    write_request_head(&mut req, conn.peer, head, route, &rewrite, cond);
    let authorization = request_values(head, b"authorization").next().is_some();
    let w = conn.w.clone();
    let g = g.clone();
    let key = key.to_vec();
    let stale = stale.clone();
    w.stats.cache_background.inc();
    let watcher = w.clone();
    let task = async move {
        let _leading = leading;
        let Some(rc) = g.cache.route(index) else {
            return;
        };
        let route = g.snap.route_config(index);
        let target = Target {
            route,
            group,
            is_head: false,
            idempotent: true,
            resendable: true,
            key: 0,
            head_timeout: None,
            fallback: false,
        };
        let request_time = unix_now();
        let mut timings = Timings::default();
        let Ok(mut f) = exchange(&w, &g, &target, &mut req, &mut NoPeer, &mut timings).await else {
            return;
        };
        let now = unix_now();
        let bodiless = f.resp.body == BodyKind::None;
        if f.resp.status == 304 && !same_etag(&stale, &f.resp) {
            // About another representation: the stored one is outdated.
            f.release(&w, &g, bodiless);
            rc.remove_entry(&key, &stale);
            return;
        }
        if f.resp.status == 304 {
            let targeted = g.snap.config.cache.targeted_field.as_bytes();
            let fresh = stale.refreshed(end_to_end(&f.resp), targeted, request_time, now);
            f.release(&w, &g, bodiless);
            if rc.insert(&key, Arc::new(fresh)) {
                w.stats.cache_revalidated.inc();
            }
            return;
        }
        if f.resp.status >= 500 {
            // Keep serving the stale response until it expires for good.
            f.release(&w, &g, false);
            return;
        }
        // The cache's own request: only the response (and whether the
        // request carried credentials) decides.
        let verdict = verdict(
            &RequestDirectives::default(),
            authorization,
            &f.resp,
            rc.max_entry,
            g.snap.config.cache.targeted_field.as_bytes(),
        );
        let mut capture = Capture {
            buf: verdict.is_ok().then(BytesMut::new),
            limit: rc.max_entry,
        };
        let mut scratch = BytesMut::new();
        let idle = route.limits.body_idle_timeout;
        let body_ok = f
            .capture_body(&w, &g, idle, &mut scratch, &mut capture)
            .await;
        match capture.buf.take().filter(|_| body_ok) {
            Some(raw) => {
                // Selected by the same request fields as the stale one, or
                // by others than the ones at hand: then the next miss
                // stores it instead.
                let secondary = if vary_of(&f.resp) == stale.vary {
                    stale.secondary.clone()
                } else {
                    Vec::from(&b"\x00unmatched"[..])
                };
                let targeted = g.snap.config.cache.targeted_field.as_bytes();
                let entry =
                    build_entry(&f.resp, secondary, exact(raw), request_time, now, targeted);
                if rc.insert(&key, Arc::new(entry)) {
                    w.stats.cache_stored.inc();
                }
            }
            None if body_ok && verdict != Err("authorization") => {
                // Superseded by a response that is not kept.
                rc.remove_entry(&key, &stale);
            }
            None => {}
        }
        f.release(&w, &g, body_ok);
    };
    monoio::spawn(async move {
        if crate::rt::panic::catch_unwind(task).await.is_err() {
            watcher.stats.panics.inc();
            tracing::error!(worker = watcher.id, "panic in a background revalidation");
        }
    });
}
