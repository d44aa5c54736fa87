//! The servers an upstream has at one moment: each server written as an
//! IP address, and every address its names resolve to.
//!
//! A name is one `servers` entry that becomes as many servers as it has
//! addresses, each with the entry's weight, cap and backup flag, its own
//! pool, health and counters. An address listed twice (an IP entry and a
//! name resolving to it, or two names) is one server, the first entry's.
//! A name that has not resolved yet gives no server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ringway_config::{Config, ServerAddress, Upstream};

/// What the names of every upstream resolve to: by (host, port), the
/// addresses, sorted.
pub(crate) type Resolved = BTreeMap<(String, u16), Vec<SocketAddr>>;

/// Asks for a name to be resolved again early (after connect failures).
/// Implemented by the resolver; never blocks.
pub(crate) trait Refresh: Send + Sync {
    fn refresh(&self, host: &str, port: u16);
}

/// What a compiled config knows of server names: what they resolved to,
/// and whom to ask for a fresh look.
#[derive(Clone, Default)]
pub(crate) struct Names {
    pub(crate) resolved: Resolved,
    pub(crate) refresh: Option<std::sync::Arc<dyn Refresh>>,
}

/// One server of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) address: SocketAddr,
    /// The entry's name (`host:port`) when the address came from one.
    pub(crate) name: Option<Arc<str>>,
    /// The index of the `servers` entry it came from.
    pub(crate) entry: usize,
    pub(crate) weight: u32,
    pub(crate) backup: bool,
    /// Its own `max-connections`, else the upstream's.
    pub(crate) max_connections: Option<u32>,
}

/// Every upstream's servers, by upstream index.
pub(crate) fn expand(config: &Config, resolved: &Resolved) -> Vec<Vec<Member>> {
    config
        .upstreams
        .iter()
        .map(|up| members(up, resolved))
        .collect()
}

/// One upstream's servers.
pub(crate) fn members(up: &Upstream, resolved: &Resolved) -> Vec<Member> {
    let mut out: Vec<Member> = Vec::with_capacity(up.servers.len());
    for (entry, s) in up.servers.iter().enumerate() {
        let (addresses, name): (&[SocketAddr], _) = match &s.address {
            ServerAddress::Ip(a) => (std::slice::from_ref(a), None),
            ServerAddress::Name { host, port } => (
                resolved
                    .get(&(host.clone(), *port))
                    .map_or(&[][..], Vec::as_slice),
                Some(Arc::<str>::from(s.address.to_string())),
            ),
        };
        for &address in addresses {
            if out.iter().any(|m| m.address == address) {
                continue;
            }
            out.push(Member {
                address,
                name: name.clone(),
                entry,
                weight: s.weight.get(),
                backup: s.backup,
                max_connections: s.max_connections.or(up.max_connections).map(|m| m.get()),
            });
        }
    }
    out
}

/// Every (host, port) the config names, with the shortest re-resolve
/// interval among the upstreams that name it, and whether one of them
/// requires it to resolve.
pub(crate) fn names(config: &Config) -> Vec<(String, u16, std::time::Duration, bool)> {
    let mut out: Vec<(String, u16, std::time::Duration, bool)> = Vec::new();
    for up in &config.upstreams {
        let required = up.resolve == ringway_config::Resolve::Required;
        for s in &up.servers {
            let ServerAddress::Name { host, port } = &s.address else {
                continue;
            };
            match out.iter_mut().find(|(h, p, ..)| h == host && p == port) {
                Some(known) => {
                    known.2 = known.2.min(up.resolve_interval);
                    known.3 |= required;
                }
                None => out.push((host.clone(), *port, up.resolve_interval, required)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(src: &str) -> Config {
        Config::from_toml_str(src).expect("valid config")
    }

    #[test]
    fn names_become_one_server_per_address_and_duplicates_fold() {
        let c = config(
            r#"
            [[listeners]]
            address = "127.0.0.1:0"
            [[upstreams]]
            name = "app"
            servers = ["10.0.0.1:80", { address = "app.internal:80", weight = 3, backup = true }, "other.internal:80"]
            max-connections = 7

            [[routes]]
            upstream = "app"
            "#,
        );
        let mut resolved = Resolved::new();
        resolved.insert(
            ("app.internal".into(), 80),
            vec![
                "10.0.0.1:80".parse().expect("ip"),
                "10.0.0.2:80".parse().expect("ip"),
            ],
        );
        let m = &expand(&c, &resolved)[0];
        let addrs: Vec<String> = m.iter().map(|m| m.address.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:80"]);
        assert_eq!(m[0].entry, 0);
        assert_eq!(m[0].name, None);
        assert_eq!(m[1].entry, 1);
        assert_eq!(m[1].name.as_deref(), Some("app.internal:80"));
        assert_eq!(
            (m[1].weight, m[1].backup, m[1].max_connections),
            (3, true, Some(7))
        );
        let n = names(&c);
        assert_eq!(n.len(), 2);
        assert_eq!((n[0].0.as_str(), n[0].1), ("app.internal", 80));
    }
}
