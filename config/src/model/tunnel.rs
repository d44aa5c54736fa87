//! A route's protocol upgrades (RFC 9110 §7.8): which `Upgrade` protocols
//! it passes to its upstream, and the bounds on the tunnels that follow a
//! `101 Switching Protocols`.
//!
//! Without `upgrades` a route strips `Upgrade` like any hop-by-hop field,
//! so a request that asks for one is forwarded as a plain request.

use std::num::NonZeroU32;
use std::time::Duration;

/// `upgrades`, `tunnel-idle-timeout` and `max-tunnels` of a route that
/// lists at least one protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnels {
    /// `upgrades`: protocol names (no version), lower-case, in file order;
    /// never empty. Matched without regard to case against the names in a
    /// request's `Upgrade` field.
    pub upgrades: Vec<String>,
    /// `tunnel-idle-timeout`: a tunnel that carries no byte in either
    /// direction for this long is closed; default 60s (nginx's
    /// `proxy_read_timeout`).
    pub idle_timeout: Duration,
    /// `max-tunnels`: tunnels open at once on this route, over all
    /// workers; one more upgrade request is answered 503. Default 10,000.
    pub max_tunnels: NonZeroU32,
}

impl Tunnels {
    /// `tunnel-idle-timeout` when not written.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// `max-tunnels` when not written.
    pub const DEFAULT_MAX_TUNNELS: NonZeroU32 = NonZeroU32::new(10_000).expect("not zero");
}
