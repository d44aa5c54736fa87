//! `[resolver]` → [`Resolver`]: which DNS servers resolve the names in
//! upstreams' `servers`, how long a query may take, and which hosts file
//! answers first.
//!
//! Every key has a default that follows the system (its `resolv.conf`
//! nameservers, `/etc/hosts`), so the table is only needed to depart from
//! it. A nameserver is an `IP` or `IP:port`; a name would need resolving
//! itself.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{duration_or, text, unique_list};
use crate::error::Reporter;
use crate::model::Resolver;
use crate::raw::RawResolver;

/// `timeout` bounds: below 100ms a distant DNS server never answers in
/// time; past 30s a failed query holds every name behind it.
const TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(30);
/// The DNS port (RFC 1035 §4.2), for a nameserver written without one.
const DNS_PORT: u16 = 53;

pub(super) fn resolver(
    raw: Option<&Spanned<RawResolver>>,
    r: &mut Reporter<'_>,
) -> Option<Resolver> {
    let empty = RawResolver::default();
    let c = raw.map_or(&empty, Spanned::get_ref);
    let default = Resolver::default();
    let nameservers = c
        .nameservers
        .as_ref()
        .map_or(Some(None), |l| nameservers(l, r).map(Some));
    let timeout = duration_or(
        c.timeout.as_ref(),
        "resolver.timeout",
        TIMEOUT,
        default.timeout,
        r,
    );
    let hosts_file = match &c.hosts_file {
        None => default.hosts_file,
        Some(p) if p.get_ref().is_empty() => None,
        Some(p) => Some(PathBuf::from(p.get_ref())),
    };
    Some(Resolver {
        nameservers: nameservers?,
        timeout: timeout?,
        hosts_file,
    })
}

fn nameservers(
    list: &Spanned<Vec<Spanned<String>>>,
    r: &mut Reporter<'_>,
) -> Option<Vec<SocketAddr>> {
    let path = "resolver.nameservers";
    let empty = "must list at least one nameserver; leave the key out to use the system's";
    unique_list(list, path, Some(empty), |s: &String| nameserver(s), r)
}

/// `"IP"` (port 53), `"[v6]"` or `"IP:port"`.
fn nameserver(s: &str) -> Result<SocketAddr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(s);
    let addr = match bare.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, DNS_PORT),
        Err(_) if !s.starts_with('[') && s.chars().any(|c| c.is_ascii_alphabetic()) => {
            return Err(format!(
                "{s:?}: a nameserver is an IP or IP:port; a name would need resolving itself"
            ));
        }
        Err(_) => text::socket_addr(s, "127.0.0.53:53")?,
    };
    if addr.port() == 0 || addr.ip().is_unspecified() {
        return Err(format!(
            "{s:?} is not an address a DNS server can be asked at"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_forms() {
        let cases = [
            ("10.0.0.2", Ok("10.0.0.2:53")),
            ("10.0.0.2:5353", Ok("10.0.0.2:5353")),
            ("::1", Ok("[::1]:53")),
            ("[::1]", Ok("[::1]:53")),
            ("[::1]:5353", Ok("[::1]:5353")),
            ("dns.internal", Err("a name would need resolving itself")),
            ("dns.internal:53", Err("a name would need resolving itself")),
            ("10.0.0.2:0", Err("not an address")),
            ("0.0.0.0", Err("not an address")),
        ];
        for (input, want) in cases {
            match (nameserver(input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got.to_string(), want, "{input:?}"),
                (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{input:?}: {e}"),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
