//! A route's `upgrades`, `tunnel-idle-timeout` and `max-tunnels` →
//! [`Tunnels`].
//!
//! Each `upgrades` entry is a protocol name as `Upgrade` carries it
//! (RFC 9110 §7.8: a token), without a version: `"websocket"`, not
//! `"websocket/13"`, since a route admits a protocol, not one of its
//! versions. Names are compared without regard to case, so two entries
//! that differ only in case are one protocol listed twice.
//!
//! The keys apply only to a route that proxies to an `upstream`: a
//! `[routes.respond]` route has nobody to tunnel to, and an AI route's
//! providers speak plain HTTP. The two bounds are errors without
//! `upgrades`, where they would silently do nothing.

use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::route::PROXY_ONLY;
use super::text::is_tchar;
use super::{duration_or, integer_or, unique_list};
use crate::error::Reporter;
use crate::model::Tunnels;
use crate::raw::RawRoute;

/// `tunnel-idle-timeout` bounds: at least a second (a smaller value would
/// cut tunnels between a client's keepalive pings), at most a day.
const IDLE_TIMEOUT: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(24 * 3600);
/// `max-tunnels` bounds.
const MAX_TUNNELS: RangeInclusive<i64> = 1..=1_000_000;

const AI_NO_UPGRADES: &str = "does not apply to a [routes.ai] route: its providers are \
     spoken to over plain HTTP";

const NEEDS_UPGRADES: &str = "applies only with `upgrades`: without it no tunnel is opened";

/// The tunnel keys of route `path` (`routes[i]`). `proxies` is whether the
/// route proxies (`None` when its action is unclear, reported elsewhere),
/// `is_ai` whether it is a `[routes.ai]` route. `Some(None)`: no upgrades.
pub(super) fn tunnels(
    raw: &RawRoute,
    path: &str,
    proxies: Option<bool>,
    is_ai: bool,
    r: &mut Reporter<'_>,
) -> Option<Option<Tunnels>> {
    let key = |k: &str| format!("{path}.{k}");
    let Some(list) = raw.upgrades.as_ref().filter(|l| !l.get_ref().is_empty()) else {
        let mut ok = true;
        for (k, v) in [
            ("tunnel-idle-timeout", &raw.tunnel_idle_timeout),
            ("max-tunnels", &raw.max_tunnels),
        ] {
            if let Some(v) = v {
                r.error(key(k), Some(v.span()), NEEDS_UPGRADES);
                ok = false;
            }
        }
        return ok.then_some(None);
    };
    if proxies == Some(false) {
        r.error(key("upgrades"), Some(list.span()), PROXY_ONLY);
        return None;
    }
    if is_ai {
        r.error(key("upgrades"), Some(list.span()), AI_NO_UPGRADES);
        return None;
    }
    let upgrades = unique_list(list, &key("upgrades"), None, |p| protocol(p), r);
    let idle_timeout = duration_or(
        raw.tunnel_idle_timeout.as_ref(),
        &key("tunnel-idle-timeout"),
        IDLE_TIMEOUT,
        Tunnels::DEFAULT_IDLE_TIMEOUT,
        r,
    );
    let max_tunnels = integer_or(
        raw.max_tunnels.as_ref(),
        &key("max-tunnels"),
        MAX_TUNNELS,
        Tunnels::DEFAULT_MAX_TUNNELS.get(),
        r,
    )
    .and_then(NonZeroU32::new);
    Some(Some(Tunnels {
        upgrades: upgrades?,
        idle_timeout: idle_timeout?,
        max_tunnels: max_tunnels?,
    }))
}

/// One `upgrades` entry: a protocol name, lower-cased.
fn protocol(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("empty protocol name".into());
    }
    if let Some((name, _)) = text.split_once('/') {
        return Err(format!(
            "{text:?}: list the protocol without a version, as {name:?}"
        ));
    }
    if let Some(c) = text.chars().find(|&c| !is_tchar(c)) {
        return Err(format!(
            "{text:?} contains {c:?}, which a protocol name cannot hold"
        ));
    }
    Ok(text.to_ascii_lowercase())
}
