//! The target URL: scheme, authority and request target, parsed once at
//! start (RFC 9110 §4.2 for `http`/`https` URIs).
//!
//! Only what a load generator needs is supported — no user info, no
//! fragments sent on the wire — and the host is resolved once, before the
//! run, so DNS never sits on the measured path.

use std::net::{SocketAddr, ToSocketAddrs};

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed `http(s)://host[:port][/path][?query]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Host as written, without brackets for IPv6 literals.
    pub host: String,
    pub port: u16,
    /// Origin-form request target: path and query, at least `/`.
    pub target: String,
}

impl Url {
    /// Parses a URL; the error says what is wrong in words.
    pub fn parse(text: &str) -> Result<Url, String> {
        let (scheme, rest) = if let Some(r) = text.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = text.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            return Err(format!("`{text}`: URL must start with http:// or https://"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(format!("`{text}`: user info in URLs is not supported"));
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: unclosed `[` in host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, text)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("`{text}`: junk after IPv6 host")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p, text)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}`: missing host"));
        }
        if target
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || !b.is_ascii())
        {
            return Err(format!(
                "`{text}`: path must be percent-encoded (no spaces or control characters)"
            ));
        }
        Ok(Url {
            scheme,
            host,
            port,
            target,
        })
    }

    /// The `Host` header value (RFC 9110 §7.2): the port is omitted when it
    /// is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolves the host once; IPv4 addresses are preferred when a name has
    /// both, as servers under test usually listen on 0.0.0.0.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{}`: {e}", self.host))?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| format!("`{}` resolved to no address", self.host))
    }

    /// The URL with a different request target (a scenario request's path).
    pub fn with_target(&self, path: &str) -> Url {
        Url {
            target: path.to_string(),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.host_header(), self.target)
    }
}

fn parse_port(p: &str, text: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("`{text}`: bad port `{p}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Scheme, &str, u16, &str, &str)] = &[
            (
                "http://127.0.0.1:8080/",
                Scheme::Http,
                "127.0.0.1",
                8080,
                "/",
                "127.0.0.1:8080",
            ),
            (
                "http://localhost",
                Scheme::Http,
                "localhost",
                80,
                "/",
                "localhost",
            ),
            (
                "https://example.test/a/b?c=d#frag",
                Scheme::Https,
                "example.test",
                443,
                "/a/b?c=d",
                "example.test",
            ),
            ("http://h:81?q=1", Scheme::Http, "h", 81, "/?q=1", "h:81"),
            (
                "http://[::1]:9000/x",
                Scheme::Http,
                "::1",
                9000,
                "/x",
                "[::1]:9000",
            ),
            ("https://[::1]/", Scheme::Https, "::1", 443, "/", "[::1]"),
        ];
        for (text, scheme, host, port, target, host_header) in cases {
            let u = Url::parse(text).expect(text);
            assert_eq!(u.scheme, *scheme, "{text}");
            assert_eq!(u.host, *host, "{text}");
            assert_eq!(u.port, *port, "{text}");
            assert_eq!(u.target, *target, "{text}");
            assert_eq!(u.host_header(), *host_header, "{text}");
        }
    }

    #[test]
    fn rejects() {
        for bad in [
            "ftp://x/",
            "127.0.0.1:80",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://u@h/",
            "http://[::1/",
            "http://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_loopback() {
        let u = Url::parse("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(
            u.resolve().expect("literal resolves").to_string(),
            "127.0.0.1:8080"
        );
    }
}
