//! Checks on single strings: names, addresses, networks, hosts, paths,
//! methods, header fields, query parameter names (for API keys and for
//! cache keys), the admin token, TLS server names and the HSTS value.
//!
//! Each check is a pure function from the text to a typed value or a
//! message, so each can be tested with a plain table and reused wherever the
//! same kind of string appears (listener and server addresses share one).
//! The HTTP checks follow RFC 9110: methods and header names are tokens
//! (§5.6.2), methods are case-sensitive (§9.1), field values are visible
//! characters, spaces and tabs (§5.5). Anything these accept can be written
//! to the wire verbatim by the engine.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

use ipnet::IpNet;

use crate::model::{HostMatch, ServerAddress};

/// Longest name for a listener, upstream or route. Names become metric
/// labels and log fields, where a bounded length keeps lines readable.
const MAX_NAME_LEN: usize = 64;

/// Names of listeners, upstreams and routes: 1 to 64 letters, digits,
/// `-`, `_` or `.`, so they are safe in metric labels, logs and URLs.
pub(crate) fn name(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > MAX_NAME_LEN {
        return Err(format!("{text:?} is longer than {MAX_NAME_LEN} characters"));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{text:?} contains {c:?}; names may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// An `IP:port` address. `example` is shown in messages ("127.0.0.1:8080").
/// Hostnames are refused rather than resolved: resolution at load time would
/// freeze one answer of a changing DNS record into the running config.
pub(crate) fn socket_addr(text: &str, example: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let hint = if text.is_empty() {
        format!("empty address; write an IP:port such as {example:?}")
    } else if !text.starts_with('[') && text.matches(':').count() > 1 {
        format!(
            "{text:?}: write an IPv6 address in brackets with the port after, as in \"[::1]:8080\""
        )
    } else if text.parse::<std::net::IpAddr>().is_ok() || !text.contains(':') {
        format!("{text:?} has no port; write an IP:port such as {example:?}")
    } else if text.chars().any(|c| c.is_ascii_alphabetic()) && !text.starts_with('[') {
        format!(
            "{text:?} is not an IP:port address; hostnames are not resolved, \
             write an IP address such as {example:?} or \"[::1]:8080\""
        )
    } else {
        format!("{text:?} is not a valid IP:port address, e.g. {example:?} or \"[::1]:8080\"")
    };
    Err(hint)
}

/// A server of an upstream: `IP:port` (`[v6]:port`), or `host:port` with a
/// DNS name, lower-cased, that the engine resolves (and keeps resolving)
/// rather than this crate, since one answer frozen at load time would go
/// stale. Port 0 and unspecified addresses are left to the caller.
pub(crate) fn server_address(text: &str) -> Result<ServerAddress, String> {
    const EXAMPLES: &str = "\"10.0.0.1:8080\", \"[::1]:8080\" or \"app.internal:8080\"";
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(ServerAddress::Ip(addr));
    }
    if text.is_empty() {
        return Err(format!(
            "empty address; write an IP:port or host:port such as {EXAMPLES}"
        ));
    }
    if text.starts_with('[') && text.ends_with(']') {
        return Err(format!(
            "{text:?} has no port; write an IP:port or host:port such as {EXAMPLES}"
        ));
    }
    if text.starts_with('[') || text.matches(':').count() > 1 {
        return socket_addr(text, "10.0.0.1:8080").map(ServerAddress::Ip);
    }
    let Some((host, port)) = text.split_once(':') else {
        return Err(format!(
            "{text:?} has no port; write an IP:port or host:port such as {EXAMPLES}"
        ));
    };
    let port = port.parse::<u16>().map_err(|_| {
        format!("{text:?}: the port must be a number from 1 to 65535, e.g. {EXAMPLES}")
    })?;
    let host = dns_name(host).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(ServerAddress::Name { host, port })
}

/// A DNS name to resolve (RFC 1123 §2.1), lower-cased: labels of letters,
/// digits and `-`, neither first nor last in a label, and a last label
/// that is not all digits, which would be a mistyped IPv4 address.
fn dns_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("empty host name".into());
    }
    if !text.is_ascii() {
        return Err(
            "not ASCII; write an internationalized name in its xn-- (punycode) form".into(),
        );
    }
    if let Some(c) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(format!(
            "{c:?} is not allowed in a host name (letters, digits, '-' and '.')"
        ));
    }
    let lower = text.to_ascii_lowercase();
    hostname(&lower)?;
    if let Some(label) = lower
        .split('.')
        .find(|l| l.starts_with('-') || l.ends_with('-'))
    {
        return Err(format!("label {label:?} starts or ends with '-'"));
    }
    if lower
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a valid IPv4 address, and a host name cannot end in a number".into());
    }
    Ok(lower)
}

/// A health check's `path`: a request target in origin form, starting with
/// `/`, of visible ASCII (RFC 9112 §3.2), so it is sent as written. A query
/// is allowed.
pub(crate) fn check_path(text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("{text:?} must start with '/'"));
    }
    match text.chars().find(|c| !c.is_ascii_graphic()) {
        Some(c) => Err(format!("{text:?} contains {c:?}; a request target cannot")),
        None => Ok(()),
    }
}

/// `host = "api.example.com"` or `"*.example.com"`, lower-cased.
pub(crate) fn host_match(text: &str) -> Result<HostMatch, String> {
    if text.is_empty() {
        return Err("empty host; leave `host` out to match any host".into());
    }
    if text == "*" {
        return Err("\"*\" would match every host; leave `host` out instead".into());
    }
    if !text.is_ascii() {
        return Err(format!(
            "{text:?} is not ASCII; write an internationalized name in its xn-- (punycode) form"
        ));
    }
    let lower = text.to_ascii_lowercase();
    if let Some(inner) = lower.strip_prefix('[') {
        return match inner.strip_suffix(']') {
            Some(ip) if ip.parse::<Ipv6Addr>().is_ok() => Ok(HostMatch::Exact(lower)),
            _ if inner.contains("]:") => Err(port_not_allowed(text)),
            _ => Err(format!("{text:?} is not a valid bracketed IPv6 address")),
        };
    }
    if lower.contains(':') {
        return Err(port_not_allowed(text));
    }
    if let Some(rest) = lower.strip_prefix("*.") {
        hostname(rest).map_err(|e| format!("{text:?}: {e}"))?;
        return Ok(HostMatch::Suffix(format!(".{rest}")));
    }
    if lower.contains('*') {
        return Err(format!(
            "{text:?}: a wildcard may only be the whole first label, as in \"*.example.com\""
        ));
    }
    hostname(&lower).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(HostMatch::Exact(lower))
}

fn port_not_allowed(text: &str) -> String {
    format!("{text:?}: leave out the port; routes match the host name whatever the port")
}

/// A name a listener's certificate is served for, matched against a
/// client's SNI: a DNS name, or `*.` and a DNS name (a wildcard of the
/// leftmost label only, as certificates have, RFC 6125 §6.4.3),
/// lower-cased. Never an IP address, which SNI never carries (RFC 6066 §3).
pub(crate) fn sni_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("empty name".into());
    }
    if !text.is_ascii() {
        return Err(format!(
            "{text:?} is not ASCII; write an internationalized name in its xn-- (punycode) form"
        ));
    }
    if text.parse::<IpAddr>().is_ok() || text.starts_with('[') {
        return Err(format!(
            "{text:?} is an IP address, which SNI never carries (RFC 6066 §3); clients that \
             connect by address get the certificate `unknown-sni` says"
        ));
    }
    if text.contains(':') {
        return Err(format!(
            "{text:?}: leave out the port; SNI holds the name only"
        ));
    }
    let lower = text.to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    if name.contains('*') {
        return Err(format!(
            "{text:?}: a wildcard may only be the whole first label, as in \"*.example.com\""
        ));
    }
    hostname(name).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(lower)
}

/// An upstream's `server-name`: the DNS name or IP address its servers'
/// certificates must match, lower-cased. No wildcard (a certificate may
/// hold one, a name to check it against cannot) and no port.
pub(crate) fn server_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(
            "empty; leave `server-name` out to verify the address of the server connected to"
                .into(),
        );
    }
    if !text.is_ascii() {
        return Err(format!(
            "{text:?} is not ASCII; write an internationalized name in its xn-- (punycode) form"
        ));
    }
    let lower = text.to_ascii_lowercase();
    if lower.parse::<IpAddr>().is_ok() {
        return Ok(lower);
    }
    if let Some(inner) = lower.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        if inner.parse::<Ipv6Addr>().is_ok() {
            return Err(format!("{text:?}: write the IPv6 address without brackets"));
        }
    }
    if lower.contains('*') {
        return Err(format!(
            "{text:?}: a wildcard cannot be checked against; write the name the \
             certificate must match"
        ));
    }
    if lower.contains(':') {
        return Err(format!(
            "{text:?}: leave out the port; the servers' addresses have theirs"
        ));
    }
    hostname(&lower).map_err(|e| format!("{text:?}: {e}"))?;
    Ok(lower)
}

/// `hsts`: a `Strict-Transport-Security` value (RFC 6797 §6.1) the gateway
/// can vouch for: `max-age=` and digits, then optionally
/// `includeSubDomains` and `preload`, each once, separated by `;`.
/// Directive names ignore case; spaces around `;` are allowed.
pub(crate) fn hsts(text: &str) -> Result<(), String> {
    const EXAMPLE: &str = "e.g. \"max-age=31536000; includeSubDomains\"";
    let mut directives = text.split(';').map(|d| d.trim_matches([' ', '\t']));
    let first = directives.next().unwrap_or_default();
    let seconds = first
        .get(..8)
        .filter(|name| name.eq_ignore_ascii_case("max-age="))
        .map(|_| &first[8..]);
    match seconds {
        None => {
            return Err(format!(
                "{text:?} must start with \"max-age=\" and a number of seconds, {EXAMPLE}"
            ))
        }
        Some(s) if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 10 => {
            return Err(format!(
                "{text:?}: max-age must be a whole number of seconds (at most 10 digits), \
                 {EXAMPLE}"
            ))
        }
        Some(_) => {}
    }
    let mut seen: Vec<&str> = Vec::new();
    for directive in directives {
        let known = ["includeSubDomains", "preload"]
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(directive));
        match known {
            None if directive.is_empty() => {
                return Err(format!("{text:?}: empty directive between ';'"))
            }
            None => {
                return Err(format!(
                    "{text:?}: unknown directive {directive:?}; after max-age only \
                     \"includeSubDomains\" and \"preload\" may follow"
                ))
            }
            Some(k) if seen.contains(&k) => return Err(format!("{text:?}: {k} is written twice")),
            Some(k) => seen.push(k),
        }
    }
    Ok(())
}

/// A lower-case DNS name (or IPv4 literal): dot-separated labels of
/// letters, digits, `-` and `_`, at most 63 bytes each and 253 in all.
fn hostname(text: &str) -> Result<(), String> {
    if text.len() > 253 {
        return Err("host names are at most 253 characters".into());
    }
    if text.ends_with('.') {
        return Err("remove the trailing dot".into());
    }
    for label in text.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(format!("{c:?} is not allowed in a host name"));
        }
    }
    Ok(())
}

/// `path` / `path-prefix`: starts with `/`, no query or fragment, and only
/// the visible ASCII a request target can carry (RFC 9112 §3.2), so the
/// engine can compare it byte-wise with the target as received.
pub(crate) fn path(text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("{text:?} must start with \"/\""));
    }
    if let Some(c) = text.chars().find(|&c| c == '?' || c == '#') {
        return Err(format!(
            "{text:?}: remove the {c:?} part; routes match the path only"
        ));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{text:?} contains {c:?}; percent-encode spaces, control and non-ASCII characters"
        ));
    }
    Ok(())
}

/// RFC 9110 §5.6.2 `tchar`.
pub(super) fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A method: a token, upper-case as methods are case-sensitive (RFC 9110
/// §9.1) and every standard one is upper-case.
pub(crate) fn method(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty method".into());
    }
    if let Some(c) = text.chars().find(|&c| !is_tchar(c)) {
        return Err(format!(
            "{text:?} contains {c:?}, which a method cannot hold"
        ));
    }
    if text.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(format!(
            "{text:?}: methods are case-sensitive; write {:?}",
            text.to_ascii_uppercase()
        ));
    }
    Ok(())
}

/// A network in CIDR form (`"10.0.0.0/8"`, `"2001:db8::/32"`) or a single
/// address (`"10.1.2.3"`, `"::1"`), which means its /32 or /128. Host bits
/// must be clear: `"10.0.0.1/8"` is more often a typo of an address than a
/// deliberate network, and reading it either way would guess.
pub(crate) fn cidr(text: &str) -> Result<IpNet, String> {
    const EXAMPLES: &str = "e.g. \"10.0.0.0/8\", \"192.168.1.10\" or \"::1/128\"";
    if text.is_empty() {
        return Err(format!("empty; write a network or an address, {EXAMPLES}"));
    }
    let Some((address, prefix)) = text.split_once('/') else {
        return match text.parse::<IpAddr>() {
            Ok(ip) => Ok(IpNet::from(ip)),
            Err(_) => Err(not_a_network(text, EXAMPLES)),
        };
    };
    let Ok(ip) = address.parse::<IpAddr>() else {
        return Err(not_a_network(text, EXAMPLES));
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let prefix = prefix
        .parse::<u8>()
        .ok()
        .filter(|&p| p <= max && prefix.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!("{text:?}: the prefix length after '/' must be 0 to {max} for {family}")
        })?;
    let net = IpNet::new(ip, prefix).map_err(|_| not_a_network(text, EXAMPLES))?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?}: host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn not_a_network(text: &str, examples: &str) -> String {
    if text
        .chars()
        .any(|c| c.is_ascii_alphabetic() && !c.is_ascii_hexdigit())
    {
        format!("{text:?} is not an IP address or network; hostnames are not resolved ({examples})")
    } else {
        format!("{text:?} is not an IP address or network, {examples}")
    }
}

/// Header names the responder must not set, lower-case, with the reason.
const GATEWAY_OWNED_HEADERS: &[(&str, &str)] = &[
    ("content-length", "the gateway frames the body itself"),
    ("transfer-encoding", "the gateway frames the body itself"),
    ("connection", "the gateway manages the connection itself"),
];

/// A response header name set by `[routes.respond]`.
pub(crate) fn header_name(text: &str) -> Result<(), String> {
    let lower = header_token(text)?;
    if let Some((_, why)) = GATEWAY_OWNED_HEADERS.iter().find(|(n, _)| *n == lower) {
        return Err(format!("{text:?} cannot be set here: {why}"));
    }
    Ok(())
}

/// Any header name (a token, RFC 9110 §5.6.2), lower-cased, as the engine
/// compares names.
pub(crate) fn header_token(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("empty header name".into());
    }
    if let Some(c) = text.chars().find(|&c| !is_tchar(c)) {
        return Err(format!(
            "{text:?} contains {c:?}, which a header name cannot hold"
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// Headers that describe one connection or the framing of a message
/// (RFC 9110 §7.6.1, RFC 9112 §6), lower-case, with the reason: the
/// gateway consumes or rewrites them on every hop, so none can carry a
/// credential or a consumer's name end to end.
const HOP_BY_HOP_HEADERS: &[(&str, &str)] = &[
    ("connection", "it is hop-by-hop"),
    ("proxy-connection", "it is hop-by-hop"),
    ("keep-alive", "it is hop-by-hop"),
    ("te", "it is hop-by-hop"),
    ("trailer", "it is hop-by-hop"),
    ("upgrade", "it is hop-by-hop"),
    ("transfer-encoding", "the gateway frames the body itself"),
    ("content-length", "the gateway frames the body itself"),
];

/// A header that carries a credential to the gateway (an API key),
/// lower-cased.
pub(crate) fn credential_header(text: &str) -> Result<String, String> {
    let lower = header_token(text)?;
    if let Some((_, why)) = HOP_BY_HOP_HEADERS.iter().find(|(n, _)| *n == lower) {
        return Err(format!("{text:?} cannot be used here: {why}"));
    }
    Ok(lower)
}

/// A header the gateway sets on the request it sends upstream, such as
/// `consumer-header`, lower-cased. `host` is refused too: it decides
/// which site the upstream serves.
pub(crate) fn upstream_header(text: &str) -> Result<String, String> {
    let lower = credential_header(text)?;
    if lower == "host" {
        return Err(format!(
            "{text:?} cannot be used here: it names the site; see `host-header`"
        ));
    }
    Ok(lower)
}

/// A query parameter name, in characters that never need percent-encoding
/// (RFC 3986 §2.3 unreserved), so the engine can compare it with the raw
/// query string without decoding.
pub(crate) fn query_param(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty parameter name; leave `query` out to read the header only".into());
    }
    if let Some(c) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._~".contains(c)))
    {
        return Err(format!(
            "{text:?} contains {c:?}; use letters, digits, '-', '.', '_' and '~'"
        ));
    }
    Ok(())
}

/// Characters a query parameter name in a cache key's `ignore-params`
/// cannot hold, with the reason: they delimit the query's parts, so a name
/// holding one could never match.
const QUERY_DELIMITERS: &[(char, &str)] = &[
    ('&', "which separates parameters"),
    ('=', "which separates a name from its value"),
    ('#', "which starts the fragment, never sent in a request"),
];

/// A query parameter name compared with the raw query string, as sent
/// (percent-encoded where the client encoded it), so any character is
/// allowed but the delimiters, and spaces and control characters, which a
/// request target never holds (RFC 9112 §3.2).
pub(crate) fn key_param(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty parameter name".into());
    }
    for c in text.chars() {
        if let Some((_, why)) = QUERY_DELIMITERS.iter().find(|(d, _)| *d == c) {
            return Err(format!("{text:?} contains {c:?}, {why}"));
        }
        if c == ' ' || c.is_control() {
            return Err(format!(
                "{text:?} contains {c:?}, which a request target cannot hold; \
                 write it percent-encoded, as clients send it"
            ));
        }
    }
    Ok(())
}

/// Longest `realm`: it is sent in every 401, so it stays short.
const MAX_REALM_LEN: usize = 128;

/// A Basic `realm`, sent as `WWW-Authenticate: Basic realm="..."`: printable
/// ASCII and spaces without `"` or `\`, so it needs no escaping inside the
/// quoted string (RFC 9110 §5.6.4).
pub(crate) fn realm(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty realm; leave `realm` out for the default \"ringway\"".into());
    }
    if text.len() > MAX_REALM_LEN {
        return Err(format!("is longer than {MAX_REALM_LEN} characters"));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| !(c == ' ' || c.is_ascii_graphic()) || c == '"' || c == '\\')
    {
        return Err(format!(
            "{text:?} contains {c:?}; a realm holds printable ASCII and spaces, without '\"' or '\\'"
        ));
    }
    Ok(())
}

/// A string compared with a value in a token or header, such as a JWT
/// `issuer`, an `audience` entry, a `kid` or a claim name: not empty, no
/// control characters (which no sane issuer puts there, and which would
/// garble logs).
pub(crate) fn label(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains {c:?}; control characters are not allowed"
        ));
    }
    Ok(())
}

/// A header value: visible characters, spaces and tabs (RFC 9110 §5.5); in
/// particular no CR, LF or NUL, which would let a value forge more headers.
pub(crate) fn header_value(text: &str) -> Result<(), String> {
    match text.chars().find(|&c| c.is_ascii_control() && c != '\t') {
        Some(c) => Err(format!("header values cannot contain {c:?}")),
        None => Ok(()),
    }
}

/// `host-header`: the Host value sent upstream, `name` or `name:port`.
pub(crate) fn host_header(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty; leave `host-header` out to keep the client's Host".into());
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'))
    {
        return Err(format!(
            "{text:?} contains {c:?}, which a Host value cannot hold"
        ));
    }
    Ok(())
}

/// `admin.token` length. 16 random characters already resist guessing over
/// the network; 256 keeps an `Authorization` header far below any
/// `max-head-size`.
const ADMIN_TOKEN_LEN: RangeInclusive<usize> = 16..=256;

/// `admin.token`: visible ASCII only (`!` to `~`), so it can be sent as a
/// bearer token verbatim and never hides a space or control character.
/// Messages never quote the token, which is a secret.
pub(crate) fn admin_token(text: &str) -> Result<(), String> {
    if let Some((i, c)) = text
        .chars()
        .enumerate()
        .find(|&(_, c)| !c.is_ascii_graphic())
    {
        return Err(format!(
            "character {} is {c:?}; a token holds only visible ASCII characters, no spaces",
            i + 1
        ));
    }
    if !ADMIN_TOKEN_LEN.contains(&text.len()) {
        return Err(format!(
            "is {} characters long; use {} to {}, e.g. the output of `openssl rand -hex 32`",
            text.len(),
            ADMIN_TOKEN_LEN.start(),
            ADMIN_TOKEN_LEN.end()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a check over `(input, Ok(())|Err(fragment))` cases.
    fn table<T: std::fmt::Debug>(
        check: impl Fn(&str) -> Result<T, String>,
        cases: &[(&str, Result<(), &str>)],
    ) {
        for &(input, want) in cases {
            match (check(input), want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(fragment)) => {
                    assert!(e.contains(fragment), "{input:?}: {e:?} lacks {fragment:?}")
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn names() {
        table(
            name,
            &[
                ("main", Ok(())),
                ("api-v2.internal_1", Ok(())),
                ("", Err("must not be empty")),
                ("has space", Err("contains ' '")),
                ("ümlaut", Err("contains 'ü'")),
                (&"x".repeat(65), Err("longer than 64")),
            ],
        );
    }

    #[test]
    fn server_addresses() {
        let typed = [
            (
                "10.0.0.1:8080",
                ServerAddress::Ip("10.0.0.1:8080".parse().expect("addr")),
            ),
            (
                "[::1]:80",
                ServerAddress::Ip("[::1]:80".parse().expect("addr")),
            ),
            (
                "App.Internal:8080",
                ServerAddress::Name {
                    host: "app.internal".into(),
                    port: 8080,
                },
            ),
            (
                "localhost:3000",
                ServerAddress::Name {
                    host: "localhost".into(),
                    port: 3000,
                },
            ),
            (
                "a-1.b2:1",
                ServerAddress::Name {
                    host: "a-1.b2".into(),
                    port: 1,
                },
            ),
        ];
        for (input, want) in typed {
            assert_eq!(server_address(input), Ok(want.clone()), "{input:?}");
            assert_eq!(want.to_string(), input.to_ascii_lowercase(), "{input:?}");
        }
        table(
            server_address,
            &[
                ("", Err("empty address")),
                ("app.internal", Err("has no port")),
                ("10.0.0.1", Err("has no port")),
                ("app:http", Err("number from 1 to 65535")),
                ("app:70000", Err("number from 1 to 65535")),
                ("app_1:80", Err("'_' is not allowed")),
                ("-app:80", Err("starts or ends with '-'")),
                ("app..internal:80", Err("empty label")),
                ("app.internal.:80", Err("trailing dot")),
                ("10.0.0.256:80", Err("not a valid IPv4 address")),
                ("1.2.3:80", Err("not a valid IPv4 address")),
                ("::1:80", Err("in brackets")),
                ("[::1]", Err("has no port")),
                ("bücher.de:80", Err("punycode")),
                (":80", Err("empty host name")),
            ],
        );
    }

    #[test]
    fn check_paths() {
        table(
            check_path,
            &[
                ("/", Ok(())),
                ("/healthz?full=1", Ok(())),
                ("healthz", Err("must start with '/'")),
                ("/a b", Err("contains ' '")),
                ("/a\u{7f}", Err("contains")),
            ],
        );
    }

    #[test]
    fn cidrs() {
        let typed = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3", "10.1.2.3/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::1", "::1/128"),
            ("::1/128", "::1/128"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
        ];
        for (input, want) in typed {
            assert_eq!(
                cidr(input).map(|n| n.to_string()),
                Ok(want.to_owned()),
                "{input:?}"
            );
        }
        table(
            cidr,
            &[
                ("", Err("empty")),
                ("10.0.0.1/8", Err("host bits set; did you mean 10.0.0.0/8?")),
                (
                    "2001:db8::1/32",
                    Err("host bits set; did you mean 2001:db8::/32?"),
                ),
                ("10.0.0.0/33", Err("0 to 32 for IPv4")),
                ("::/129", Err("0 to 128 for IPv6")),
                ("10.0.0.0/", Err("0 to 32")),
                ("10.0.0.0/+8", Err("0 to 32")),
                ("10.0.0.0/08x", Err("0 to 32")),
                ("10.0.0", Err("not an IP address or network")),
                ("localhost", Err("hostnames are not resolved")),
                ("example.com/24", Err("hostnames are not resolved")),
                ("fe80::1%eth0", Err("not an IP address")),
                (" 10.0.0.0/8", Err("not an IP address")),
            ],
        );
    }

    #[test]
    fn credential_and_upstream_headers() {
        assert_eq!(credential_header("X-Api-Key"), Ok("x-api-key".into()));
        assert_eq!(
            credential_header("authorization"),
            Ok("authorization".into())
        );
        assert_eq!(upstream_header("X-Consumer"), Ok("x-consumer".into()));
        table(
            credential_header,
            &[
                ("", Err("empty header name")),
                ("x key", Err("contains ' '")),
                ("Connection", Err("hop-by-hop")),
                ("TE", Err("hop-by-hop")),
                ("upgrade", Err("hop-by-hop")),
                ("content-length", Err("frames the body")),
                ("Transfer-Encoding", Err("frames the body")),
                ("host", Ok(())),
            ],
        );
        table(
            upstream_header,
            &[
                ("keep-alive", Err("hop-by-hop")),
                ("Host", Err("names the site")),
                ("x-consumer-id", Ok(())),
            ],
        );
    }

    #[test]
    fn query_params() {
        table(
            query_param,
            &[
                ("api_key", Ok(())),
                ("key-1.x~", Ok(())),
                ("", Err("empty parameter name")),
                ("api key", Err("contains ' '")),
                ("a=b", Err("contains '='")),
                ("a%20b", Err("contains '%'")),
                ("clé", Err("contains 'é'")),
            ],
        );
    }

    #[test]
    fn key_params() {
        table(
            key_param,
            &[
                ("utm_source", Ok(())),
                ("a[]", Ok(())),
                ("caf%C3%A9", Ok(())),
                ("clé", Ok(())),
                ("?x", Ok(())),
                ("", Err("empty parameter name")),
                ("a&b", Err("'&', which separates parameters")),
                ("a=b", Err("'=', which separates a name from its value")),
                ("#a", Err("'#', which starts the fragment")),
                ("a b", Err("' ', which a request target cannot hold")),
                ("a\tb", Err("'\\t'")),
                ("a\u{7f}", Err("percent-encoded")),
            ],
        );
    }

    #[test]
    fn realms() {
        table(
            realm,
            &[
                ("ringway", Ok(())),
                ("Billing API (staff only)", Ok(())),
                ("", Err("empty realm")),
                ("say \"hi\"", Err("contains '\"'")),
                ("a\\b", Err("contains '\\\\'")),
                ("tab\there", Err("contains '\\t'")),
                ("café", Err("contains 'é'")),
                (&"r".repeat(129), Err("longer than 128")),
            ],
        );
    }

    #[test]
    fn labels() {
        table(
            label,
            &[
                ("https://issuer.example.com/", Ok(())),
                ("sub", Ok(())),
                ("key 2024-01", Ok(())),
                ("", Err("must not be empty")),
                ("a\nb", Err("'\\n'")),
            ],
        );
    }

    #[test]
    fn socket_addrs() {
        table(
            |t| socket_addr(t, "127.0.0.1:8080"),
            &[
                ("127.0.0.1:8080", Ok(())),
                ("[::1]:8080", Ok(())),
                ("0.0.0.0:0", Ok(())),
                ("", Err("empty address")),
                ("127.0.0.1", Err("has no port")),
                ("::1", Err("in brackets")),
                ("localhost", Err("has no port")),
                ("localhost:8080", Err("hostnames are not resolved")),
                ("api.internal:80", Err("hostnames are not resolved")),
                ("::1:8080", Err("in brackets")),
                ("127.0.0.1:99999", Err("not a valid IP:port")),
                ("[::1]:x", Err("not a valid IP:port")),
            ],
        );
    }

    #[test]
    fn host_matches() {
        let typed = [
            (
                "api.example.com",
                HostMatch::Exact("api.example.com".into()),
            ),
            (
                "API.Example.COM",
                HostMatch::Exact("api.example.com".into()),
            ),
            ("*.example.com", HostMatch::Suffix(".example.com".into())),
            ("*.Example.com", HostMatch::Suffix(".example.com".into())),
            ("10.0.0.1", HostMatch::Exact("10.0.0.1".into())),
            ("[::1]", HostMatch::Exact("[::1]".into())),
            ("localhost", HostMatch::Exact("localhost".into())),
        ];
        for (input, want) in typed {
            assert_eq!(host_match(input), Ok(want), "{input:?}");
        }
        table(
            host_match,
            &[
                ("", Err("leave `host` out")),
                ("*", Err("leave `host` out")),
                ("example.com:8080", Err("leave out the port")),
                ("[::1]:8080", Err("leave out the port")),
                ("[::1", Err("bracketed IPv6")),
                ("a.*.example.com", Err("wildcard")),
                ("*example.com", Err("wildcard")),
                ("*.", Err("empty label")),
                ("example.com.", Err("trailing dot")),
                ("a..b", Err("empty label")),
                ("exa mple.com", Err("' ' is not allowed")),
                ("bücher.de", Err("punycode")),
                (&format!("{}.com", "a".repeat(64)), Err("longer than 63")),
            ],
        );
    }

    #[test]
    fn paths() {
        table(
            path,
            &[
                ("/", Ok(())),
                ("/api/", Ok(())),
                ("/a%20b/~x", Ok(())),
                ("", Err("must start with \"/\"")),
                ("api/", Err("must start with \"/\"")),
                ("/search?q=1", Err("remove the '?' part")),
                ("/page#top", Err("remove the '#' part")),
                ("/a b", Err("percent-encode")),
                ("/ä", Err("percent-encode")),
            ],
        );
    }

    #[test]
    fn methods() {
        table(
            method,
            &[
                ("GET", Ok(())),
                ("M-SEARCH", Ok(())),
                ("PROPFIND", Ok(())),
                ("", Err("empty method")),
                ("get", Err("write \"GET\"")),
                ("Post", Err("write \"POST\"")),
                ("GE T", Err("contains ' '")),
                ("GET,POST", Err("contains ','")),
            ],
        );
    }

    #[test]
    fn header_names() {
        table(
            header_name,
            &[
                ("content-type", Ok(())),
                ("X-Request-Id", Ok(())),
                ("", Err("empty header name")),
                ("bad name", Err("contains ' '")),
                ("x:y", Err("contains ':'")),
                ("Content-Length", Err("frames the body")),
                ("transfer-encoding", Err("frames the body")),
                ("Connection", Err("manages the connection")),
            ],
        );
    }

    #[test]
    fn header_values() {
        table(
            header_value,
            &[
                ("text/plain; charset=utf-8", Ok(())),
                ("a\tb", Ok(())),
                ("", Ok(())),
                ("ok\r\nSet-Cookie: x", Err("'\\r'")),
                ("a\nb", Err("'\\n'")),
                ("a\0b", Err("'\\0'")),
                ("a\u{7f}", Err("'\\u{7f}'")),
            ],
        );
    }

    #[test]
    fn admin_tokens() {
        let sixteen = "0123456789abcdef";
        table(
            admin_token,
            &[
                (sixteen, Ok(())),
                ("!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", Ok(())),
                (&"x".repeat(256), Ok(())),
                ("", Err("0 characters long; use 16 to 256")),
                (&sixteen[1..], Err("15 characters long")),
                (&"x".repeat(257), Err("257 characters long")),
                ("0123456789 abcdef", Err("character 11 is ' '")),
                ("0123456789abcdef\t", Err("character 17 is '\\t'")),
                ("0123456789abcdef\n", Err("'\\n'")),
                ("0123456789abcdéf", Err("character 15 is 'é'")),
                ("0123456789abcdef\u{7f}", Err("'\\u{7f}'")),
            ],
        );
        // The token is a secret: no message may repeat it.
        for bad in ["short-secret", "secret with a space in it"] {
            let message = admin_token(bad).expect_err(bad);
            assert!(!message.contains(bad), "{message}");
        }
    }

    #[test]
    fn sni_names() {
        assert_eq!(sni_name("Example.ORG"), Ok("example.org".into()));
        assert_eq!(sni_name("*.Example.org"), Ok("*.example.org".into()));
        assert_eq!(sni_name("localhost"), Ok("localhost".into()));
        table(
            sni_name,
            &[
                ("a.b-c.example.com", Ok(())),
                ("", Err("empty name")),
                ("10.0.0.1", Err("IP address")),
                ("::1", Err("IP address")),
                ("[::1]", Err("IP address")),
                ("example.com:443", Err("leave out the port")),
                ("a.*.example.com", Err("whole first label")),
                ("*example.com", Err("whole first label")),
                ("*", Err("whole first label")),
                ("*.*.example.com", Err("whole first label")),
                ("*.", Err("empty label")),
                ("example.com.", Err("trailing dot")),
                ("exa mple.com", Err("' ' is not allowed")),
                ("bücher.de", Err("punycode")),
            ],
        );
    }

    #[test]
    fn server_names() {
        assert_eq!(server_name("API.internal"), Ok("api.internal".into()));
        assert_eq!(server_name("10.0.0.1"), Ok("10.0.0.1".into()));
        assert_eq!(server_name("FE80::1"), Ok("fe80::1".into()));
        table(
            server_name,
            &[
                ("", Err("leave `server-name` out")),
                ("[::1]", Err("without brackets")),
                ("*.internal", Err("wildcard")),
                ("api.internal:443", Err("leave out the port")),
                ("a..b", Err("empty label")),
                ("bücher.de", Err("punycode")),
            ],
        );
    }

    #[test]
    fn hsts_values() {
        table(
            hsts,
            &[
                ("max-age=31536000", Ok(())),
                ("max-age=0", Ok(())),
                ("max-age=31536000; includeSubDomains", Ok(())),
                ("Max-Age=63072000;includesubdomains; PRELOAD", Ok(())),
                ("max-age=1; preload; includeSubDomains", Ok(())),
                ("max-age=1 ;\tpreload", Ok(())),
                ("", Err("must start with \"max-age=\"")),
                ("includeSubDomains; max-age=1", Err("must start with")),
                ("max-age", Err("must start with")),
                ("max-age=", Err("whole number of seconds")),
                ("max-age=\"1\"", Err("whole number of seconds")),
                ("max-age=-1", Err("whole number of seconds")),
                ("max-age=12345678901", Err("at most 10 digits")),
                ("max-age=1;", Err("empty directive")),
                ("max-age=1;; preload", Err("empty directive")),
                (
                    "max-age=1; preload; preload",
                    Err("preload is written twice"),
                ),
                (
                    "max-age=1; includeSubdomains; INCLUDESUBDOMAINS",
                    Err("twice"),
                ),
                (
                    "max-age=1; report-uri=x",
                    Err("unknown directive \"report-uri=x\""),
                ),
                ("max-age=1\r\nx: y", Err("whole number")),
                ("mäx-age=1", Err("must start with")),
            ],
        );
    }

    #[test]
    fn host_headers() {
        table(
            host_header,
            &[
                ("internal.svc", Ok(())),
                ("internal.svc:8443", Ok(())),
                ("", Err("empty")),
                ("a b", Err("contains ' '")),
                ("a/b", Err("contains '/'")),
                ("a\r\nb", Err("contains '\\r'")),
            ],
        );
    }
}
