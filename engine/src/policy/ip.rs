//! Client addresses and IP allow/deny rules.
//!
//! The client is the socket peer, unless the peer is a trusted proxy: then
//! X-Forwarded-For is read from the right (the nearest hop first), skipping
//! trusted addresses, and the first untrusted one is the client (what nginx
//! calls `real_ip_recursive`). Reading from the left would let any client
//! choose its address by sending its own X-Forwarded-For.
//!
//! CIDR lists compile into sorted, merged ranges searched by bisection, so a
//! rule list of thousands of networks costs a dozen comparisons per request
//! rather than a scan. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a
//! dual-stack socket reports for IPv4 peers) are matched as IPv4.

use std::net::IpAddr;

use ringway_config::IpNet;

use crate::http::head::{Class, RequestHead};

/// A set of networks.
#[derive(Debug, Default, Clone)]
pub(crate) struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpSet {
    pub(crate) fn new(nets: &[IpNet]) -> IpSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        IpSet {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => within(&self.v4, u32::from(a)),
            IpAddr::V6(a) => within(&self.v6, u128::from(a)),
        }
    }
}

/// Sorts ranges and joins the overlapping or adjacent ones.
fn merge<T: Ord + Copy + num_like::Succ>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1.succ() => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn within<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    // The last range starting at or before `x` is the only candidate.
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && x <= ranges[i - 1].1
}

mod num_like {
    /// The next value, saturating: lets adjacent ranges merge.
    pub(crate) trait Succ {
        fn succ(self) -> Self;
    }
    impl Succ for u32 {
        fn succ(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Self {
            self.saturating_add(1)
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Compiled allow/deny lists: deny wins; a non-empty allow list admits
/// only what it names.
#[derive(Debug, Default, Clone)]
pub(crate) struct IpRules {
    allow: IpSet,
    deny: IpSet,
}

impl IpRules {
    pub(crate) fn new(rules: &ringway_config::IpRules) -> IpRules {
        IpRules {
            allow: IpSet::new(&rules.allow),
            deny: IpSet::new(&rules.deny),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    pub(crate) fn admits(&self, ip: IpAddr) -> bool {
        !self.deny.contains(ip) && (self.allow.is_empty() || self.allow.contains(ip))
    }
}

/// The client's address for policies and logs (see the module header).
pub(crate) fn client_ip(peer: IpAddr, trusted: &IpSet, head: &RequestHead) -> IpAddr {
    let mut client = canonical(peer);
    if trusted.is_empty() || !trusted.contains(client) {
        return client;
    }
    for h in head.headers.iter().rev() {
        if h.class != Class::XForwardedFor {
            continue;
        }
        for entry in head.bytes(h.value).rsplit(|&b| b == b',') {
            let Some(ip) = parse_hop(entry) else {
                // A hop we cannot read: the last address we could trust
                // to have been checked is the answer.
                return client;
            };
            client = canonical(ip);
            if !trusted.contains(client) {
                return client;
            }
        }
    }
    client
}

/// One X-Forwarded-For entry: an address, possibly `[v6]` or with a port.
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::HeadLimits;
    use crate::http::parse::parse_request;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn sets_match_their_networks_only() {
        let set = IpSet::new(&nets(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "192.168.1.0/24",
            "192.168.2.0/24",
            "2001:db8::/32",
        ]));
        for (addr, inside) in [
            ("10.0.0.0", true),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("9.255.255.255", false),
            ("192.168.1.7", true),
            ("192.168.2.255", true),
            ("192.168.3.0", false),
            ("::ffff:10.2.3.4", true),
            ("2001:db8:1::1", true),
            ("2001:db9::1", false),
        ] {
            assert_eq!(set.contains(ip(addr)), inside, "{addr}");
        }
        assert!(!IpSet::default().contains(ip("1.2.3.4")));
    }

    #[test]
    fn deny_wins_and_allow_restricts() {
        let rules = IpRules::new(&ringway_config::IpRules {
            allow: nets(&["10.0.0.0/8"]),
            deny: nets(&["10.9.0.0/16"]),
        });
        assert!(rules.admits(ip("10.1.2.3")));
        assert!(!rules.admits(ip("10.9.2.3")));
        assert!(!rules.admits(ip("8.8.8.8")));
        let deny_only = IpRules::new(&ringway_config::IpRules {
            allow: vec![],
            deny: nets(&["8.8.8.8/32"]),
        });
        assert!(deny_only.admits(ip("1.1.1.1")));
        assert!(!deny_only.admits(ip("8.8.8.8")));
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = IpSet::new(&nets(&["10.0.0.0/8", "127.0.0.1/32"]));
        let cases: &[(&str, &[&str], &str)] = &[
            // Untrusted peer: headers are ignored.
            ("203.0.113.9", &["1.1.1.1"], "203.0.113.9"),
            // Trusted peer: the nearest untrusted hop.
            ("10.0.0.1", &["6.6.6.6, 1.1.1.1, 10.0.0.2"], "1.1.1.1"),
            // Several headers count as one list, in order.
            ("10.0.0.1", &["6.6.6.6", "2.2.2.2, 10.3.3.3"], "2.2.2.2"),
            // All trusted: the leftmost.
            ("127.0.0.1", &["10.0.0.5, 10.0.0.6"], "10.0.0.5"),
            // Garbage stops the walk at the last good hop.
            ("10.0.0.1", &["1.1.1.1, nonsense, 10.0.0.9"], "10.0.0.9"),
            // Ports and brackets.
            ("10.0.0.1", &["[2001:db8::1]:443"], "2001:db8::1"),
            ("10.0.0.1", &["4.4.4.4:5555"], "4.4.4.4"),
            // No header.
            ("10.0.0.1", &[], "10.0.0.1"),
        ];
        for (peer, xff, want) in cases {
            let mut raw = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
            for v in *xff {
                raw.push_str(&format!("X-Forwarded-For: {v}\r\n"));
            }
            raw.push_str("\r\n");
            let mut buf = bytes::BytesMut::from(raw.as_bytes());
            let mut headers = Vec::new();
            let limits = HeadLimits {
                max_head: 8192,
                max_headers: 64,
                max_target: 8192,
                slashes: ringway_config::EncodedSlashes::Reject,
                underscores: ringway_config::UnderscoresInHeaders::Drop,
            };
            let head = parse_request(&mut buf, limits, &mut headers)
                .expect("parses")
                .expect("complete");
            assert_eq!(
                client_ip(ip(peer), &trusted, &head),
                ip(want),
                "{peer} {xff:?}"
            );
        }
    }
}
