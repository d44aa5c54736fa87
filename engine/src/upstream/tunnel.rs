//! Which protocol upgrades each route passes to its upstream (RFC 9110
//! §7.8), and the count of tunnels open on it against `max-tunnels`.
//!
//! The count is one atomic per route shared by every worker, so the cap
//! is exact over the gateway; it is touched only when a tunnel opens and
//! closes, never by a route without `upgrades`. It is carried to the next
//! generation by route name, like the route's metrics: tunnels keep the
//! generation they started on, and those still open after a reload go on
//! counting against the cap the new config sets.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringway_config::Config;

use crate::http::head::{BodyKind, Class, Method, RequestHead, Version};
use crate::http::text::list;

/// Every route's upgrade settings, by route index.
#[derive(Default)]
pub(crate) struct Tunnels {
    routes: Vec<Option<RouteTunnels>>,
}

/// One route's upgrades and its open tunnels.
pub(crate) struct RouteTunnels {
    name: String,
    /// Protocol names, lower-case.
    protocols: Vec<Box<[u8]>>,
    pub(crate) idle_timeout: Duration,
    max: u32,
    open: Arc<AtomicU32>,
}

impl Tunnels {
    /// The settings of `config`'s routes, keeping `prev`'s counts for
    /// routes of the same name.
    pub(crate) fn new(config: &Config, prev: Option<&Tunnels>) -> Tunnels {
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let t = r.tunnels.as_ref()?;
                let open = prev
                    .and_then(|p| p.routes.iter().flatten().find(|k| k.name == r.name))
                    .map_or_else(Arc::default, |k| k.open.clone());
                Some(RouteTunnels {
                    name: r.name.clone(),
                    protocols: t
                        .upgrades
                        .iter()
                        .map(|p| p.as_bytes().to_ascii_lowercase().into_boxed_slice())
                        .collect(),
                    idle_timeout: t.idle_timeout,
                    max: t.max_tunnels.get(),
                    open,
                })
            })
            .collect();
        Tunnels { routes }
    }

    /// Route `index`'s settings, when it passes upgrades.
    #[inline]
    pub(crate) fn route(&self, index: usize) -> Option<&RouteTunnels> {
        self.routes.get(index)?.as_ref()
    }
}

impl RouteTunnels {
    /// The protocol `head` asks to switch to, as it offers it (with its
    /// version, if any), when the route passes it: the first of the
    /// `Upgrade` list the route allows. Only an HTTP/1.1 GET without a
    /// body that lists `upgrade` in Connection asks (RFC 9110 §7.8; RFC
    /// 6455 §4.1 for WebSocket).
    pub(crate) fn offered<'h>(&self, head: &'h RequestHead) -> Option<&'h [u8]> {
        if head.method != Method::Get
            || head.version != Version::Http11
            || head.body != BodyKind::None
            || !head.connection_lists(b"upgrade")
        {
            return None;
        }
        head.headers
            .iter()
            .filter(|h| h.class == Class::Upgrade)
            .flat_map(|h| list(head.bytes(h.value)))
            .find(|offer| {
                let name = offer.split(|&b| b == b'/').next().unwrap_or(offer);
                self.protocols.iter().any(|p| name.eq_ignore_ascii_case(p))
            })
    }

    /// A place among the route's open tunnels, unless `max-tunnels` are
    /// open already.
    pub(crate) fn admit(&self) -> Option<TunnelSlot> {
        let mut n = self.open.load(Ordering::Relaxed);
        loop {
            if n >= self.max {
                return None;
            }
            match self
                .open
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(TunnelSlot(self.open.clone())),
                Err(now) => n = now,
            }
        }
    }

    /// Tunnels open on the route now, over all workers.
    #[cfg(test)]
    fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }
}

/// One tunnel's place in its route's count, given back when dropped.
pub(crate) struct TunnelSlot(Arc<AtomicU32>);

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::HeadLimits;
    use crate::http::parse::parse_request;

    const ROUTES: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "u"
servers = ["127.0.0.1:1"]
[[routes]]
name = "plain"
path = "/plain"
upstream = "u"
[[routes]]
name = "ws"
path = "/ws"
upstream = "u"
upgrades = ["WebSocket", "x-other"]
max-tunnels = 2
"#;

    fn head(text: &str) -> RequestHead {
        let mut buf = bytes::BytesMut::from(text);
        let limits = HeadLimits {
            max_head: 8192,
            max_headers: 64,
            max_target: 1024,
            slashes: ringway_config::EncodedSlashes::Reject,
            underscores: ringway_config::UnderscoresInHeaders::Drop,
        };
        let mut headers = Vec::new();
        parse_request(&mut buf, limits, &mut headers)
            .expect("valid head")
            .expect("whole head")
    }

    #[test]
    fn only_a_listed_protocol_on_a_get_with_connection_upgrade_is_offered() {
        let config = Config::from_toml_str(ROUTES).expect("valid");
        let tunnels = Tunnels::new(&config, None);
        assert!(tunnels.route(0).is_none());
        let ws = tunnels.route(1).expect("upgrades");
        let cases: &[(&str, Option<&str>)] = &[
            (
                "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                Some("websocket"),
            ),
            (
                "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\n\
                 Upgrade: h2c, WEBSOCKET/13\r\n\r\n",
                Some("WEBSOCKET/13"),
            ),
            (
                "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\
                 Upgrade: x-other\r\n\r\n",
                Some("x-other"),
            ),
            // Not listed in Connection: the Upgrade field is not meant for us.
            (
                "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
                None,
            ),
            (
                "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
                None,
            ),
            (
                "POST /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\
                 Content-Length: 0\r\n\r\n",
                None,
            ),
            (
                "GET /ws HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
                None,
            ),
        ];
        for (text, want) in cases {
            let h = head(text);
            assert_eq!(
                ws.offered(&h),
                want.map(str::as_bytes),
                "{}",
                text.escape_debug()
            );
        }
    }

    #[test]
    fn the_cap_is_kept_and_carried_over_a_reload() {
        let config = Config::from_toml_str(ROUTES).expect("valid");
        let first = Tunnels::new(&config, None);
        let ws = first.route(1).expect("upgrades");
        let a = ws.admit().expect("first");
        let _b = ws.admit().expect("second");
        assert!(ws.admit().is_none(), "max-tunnels = 2");
        drop(a);
        let next = Tunnels::new(&config, Some(&first));
        let ws2 = next.route(1).expect("upgrades");
        assert_eq!(ws2.open(), 1, "the open tunnel still counts");
        let _c = ws2.admit().expect("room for one");
        assert!(ws2.admit().is_none());
    }
}
