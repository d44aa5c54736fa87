//! `[admin]` → [`Admin`]: where the admin HTTP API listens, and its token.
//!
//! The admin API can replace the running config, so whoever reaches it
//! controls the gateway. Hence the one rule spanning keys: an admin API
//! without a `token` must listen on a loopback address, which only
//! processes on the same host can reach. The other rule keeps it off every
//! listener's address, where it would either fail to bind at startup or,
//! with the listeners' `SO_REUSEPORT`, share their connections; port 0
//! (a free port picked at bind time, as tests use) never collides.
//!
//! Both rules apply only when the admin API is enabled, but the keys are
//! checked either way, so turning it on later cannot surface old mistakes.
//! Messages never quote the token: error lists are logged and returned by
//! the admin API itself.

use std::net::SocketAddr;

use toml::Spanned;

use super::text;
use crate::error::Reporter;
use crate::model::{Admin, Listener};
use crate::raw::RawAdmin;

/// `address` when not given: loopback, so a default install exposes
/// nothing, on a port outside the common HTTP ones.
const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9901);

/// `listeners` is `None` when a listener failed validation (reported), and
/// the listener check is then skipped.
pub(super) fn admin(
    raw: Option<&Spanned<RawAdmin>>,
    listeners: Option<&[Listener]>,
    r: &mut Reporter<'_>,
) -> Option<Admin> {
    let empty = RawAdmin::default();
    let a = raw.map_or(&empty, Spanned::get_ref);
    let enabled = a.enabled.unwrap_or(true);

    let address = match &a.address {
        None => Some(DEFAULT_ADDRESS),
        Some(text) => text::socket_addr(text.get_ref(), "127.0.0.1:9901")
            .map_err(|message| r.error("admin.address", Some(text.span()), message))
            .ok(),
    };
    let token = match &a.token {
        None => Some(None),
        Some(t) => text::admin_token(t.get_ref())
            .map(|()| Some(t.get_ref().clone()))
            .map_err(|message| r.error("admin.token", Some(t.span()), message))
            .ok(),
    };

    if let Some(address) = address.filter(|_| enabled) {
        // At `address` when written. The default breaks no rule of its own,
        // only when a listener takes it: then at `[admin]`, or nowhere.
        let span = a
            .address
            .as_ref()
            .map(Spanned::span)
            .or_else(|| raw.map(Spanned::span));
        if a.token.is_none() && !address.ip().is_loopback() {
            r.error(
                "admin.address",
                span.clone(),
                format!(
                    "the admin API listens on {address} without admin.token; \
                     set a token or use a loopback address"
                ),
            );
        }
        let taken = listeners
            .filter(|_| address.port() != 0)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .find(|(_, l)| l.address == address);
        if let Some((i, listener)) = taken {
            r.error(
                "admin.address",
                span,
                format!(
                    "{address} is already the address of listeners[{i}] ({:?}); \
                     the admin API needs an address of its own",
                    listener.name
                ),
            );
        }
    }

    Some(Admin {
        enabled,
        address: address?,
        token: token?,
    })
}
