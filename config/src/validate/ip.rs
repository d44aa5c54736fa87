//! `[client-ip]` and `[ip-rules]` → [`ClientIp`], [`IpRules`], and the
//! network lists routes reuse for `ip-allow` and `ip-deny`.
//!
//! Every list entry is a network with its host bits clear, or a single
//! address (its /32 or /128); a network written twice in one list is an
//! error, since the second copy can only be a leftover of an edit. Lists
//! are kept in file order: the engine builds its own lookup structure, and
//! the order makes the rendered config read like the file.
//!
//! One rule is a warning rather than an error: trusting `0.0.0.0/0` or
//! `::/0` as proxies lets every client write its own `X-Forwarded-For` and
//! be seen at whatever address it likes, which a test setup may want but a
//! deployment almost never does.

use std::collections::HashMap;

use ipnet::IpNet;
use toml::Spanned;

use super::text;
use crate::error::Reporter;
use crate::model::{ClientIp, IpRules};
use crate::raw::{RawClientIp, RawIpRules};

pub(super) fn client_ip(
    raw: Option<&Spanned<RawClientIp>>,
    r: &mut Reporter<'_>,
) -> Option<ClientIp> {
    let Some(list) = raw.and_then(|c| c.get_ref().trusted_proxies.as_deref()) else {
        return Some(ClientIp::default());
    };
    let path = "client-ip.trusted-proxies";
    let trusted_proxies = networks(list, path, r)?;
    for (j, net) in trusted_proxies.iter().enumerate() {
        if net.prefix_len() == 0 {
            r.warn(
                format!("{path}[{j}]"),
                Some(list[j].span()),
                format!(
                    "{net} trusts every peer as a proxy: any client can then choose the \
                     address it is seen as by sending X-Forwarded-For"
                ),
            );
        }
    }
    Some(ClientIp { trusted_proxies })
}

pub(super) fn ip_rules(raw: Option<&Spanned<RawIpRules>>, r: &mut Reporter<'_>) -> Option<IpRules> {
    let empty = RawIpRules::default();
    let rules = raw.map_or(&empty, Spanned::get_ref);
    let allow = rules
        .allow
        .as_deref()
        .map_or(Some(Vec::new()), |l| networks(l, "ip-rules.allow", r));
    let deny = rules
        .deny
        .as_deref()
        .map_or(Some(Vec::new()), |l| networks(l, "ip-rules.deny", r));
    Some(IpRules {
        allow: allow?,
        deny: deny?,
    })
}

/// A list of networks at `path`; `None` when any entry was reported.
pub(super) fn networks(
    list: &[Spanned<String>],
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Vec<IpNet>> {
    let mut seen: HashMap<IpNet, usize> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, entry) in list.iter().enumerate() {
        let key = format!("{path}[{j}]");
        match text::cidr(entry.get_ref()) {
            Ok(net) => {
                if let Some(&first) = seen.get(&net) {
                    let list_key = path.rsplit('.').next().unwrap_or(path);
                    r.error(
                        key,
                        Some(entry.span()),
                        format!("{net} is already listed as {list_key}[{first}]"),
                    );
                    ok = false;
                } else {
                    seen.insert(net, j);
                    out.push(net);
                }
            }
            Err(message) => {
                r.error(key, Some(entry.span()), message);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
