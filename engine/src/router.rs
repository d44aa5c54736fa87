//! Route matching: host, then path, then method.
//!
//! Precedence, documented for users in `config/example.toml`:
//! 1. an exact host beats a wildcard host (longest suffix first), which
//!    beats a route with no host;
//! 2. within a host level, an exact path beats a prefix, and a longer prefix
//!    beats a shorter one;
//! 3. for the same host and path, a route that lists methods beats one that
//!    does not; then file order.
//!
//! A request falls through to the next candidate when the method does not
//! match, so `GET /api` can go to one route and everything else under
//! `/api` to another. When some route matched host and path but none the
//! method, the answer is 405 rather than 404.
//!
//! Lookups are hash probes: one per host level, then one per distinct
//! prefix length present in that level (typically a handful), so matching
//! cost grows with the variety of prefix lengths, not the number of routes.

use std::collections::HashMap;

use ahash::RandomState;
use ringway_config::{Config, HostMatch, PathMatch};

/// Result of matching a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Route(usize),
    MethodNotAllowed,
    NotFound,
}

#[derive(Debug, Clone)]
struct Candidate {
    route: usize,
    /// Empty: any method.
    methods: Box<[Box<[u8]>]>,
}

impl Candidate {
    fn accepts(&self, method: &[u8]) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| &**m == method)
    }
}

type Map<V> = HashMap<Box<[u8]>, V, RandomState>;

#[derive(Debug, Default)]
struct PathTable {
    exact: Map<Vec<Candidate>>,
    prefix: Map<Vec<Candidate>>,
    /// Distinct prefix lengths, longest first.
    prefix_lens: Vec<usize>,
}

impl PathTable {
    fn insert(&mut self, path: &PathMatch, cand: Candidate) {
        let (map, key) = match path {
            PathMatch::Exact(p) => (&mut self.exact, p),
            PathMatch::Prefix(p) => {
                if !self.prefix_lens.contains(&p.len()) {
                    self.prefix_lens.push(p.len());
                    self.prefix_lens.sort_unstable_by(|a, b| b.cmp(a));
                }
                (&mut self.prefix, p)
            }
        };
        let list = map.entry(key.as_bytes().into()).or_default();
        list.push(cand);
        // Routes with methods first; stable sort keeps file order.
        list.sort_by_key(|c| c.methods.is_empty());
    }

    /// Walks candidates in precedence order.
    fn find(&self, path: &[u8], method: &[u8], path_matched: &mut bool) -> Option<usize> {
        let pick = |list: &Vec<Candidate>, hit: &mut bool| {
            *hit = true;
            list.iter().find(|c| c.accepts(method)).map(|c| c.route)
        };
        if let Some(list) = self.exact.get(path) {
            if let Some(r) = pick(list, path_matched) {
                return Some(r);
            }
        }
        for &len in &self.prefix_lens {
            if len <= path.len() {
                if let Some(list) = self.prefix.get(&path[..len]) {
                    if let Some(r) = pick(list, path_matched) {
                        return Some(r);
                    }
                }
            }
        }
        None
    }
}

/// The compiled route table of one config.
#[derive(Debug, Default)]
pub struct Router {
    exact_hosts: Map<PathTable>,
    /// (".example.com", table), longest suffix first.
    suffix_hosts: Vec<(Box<[u8]>, PathTable)>,
    any_host: PathTable,
}

/// Longest host name we lower-case for lookup (RFC 1035 limits names to 253).
const MAX_HOST: usize = 255;

impl Router {
    pub fn new(config: &Config) -> Router {
        let mut r = Router::default();
        for (i, route) in config.routes.iter().enumerate() {
            let cand = Candidate {
                route: i,
                methods: route.methods.iter().map(|m| m.as_bytes().into()).collect(),
            };
            let table = match &route.host {
                None => &mut r.any_host,
                Some(HostMatch::Exact(h)) => r.exact_hosts.entry(h.as_bytes().into()).or_default(),
                Some(HostMatch::Suffix(s)) => {
                    let pos = r
                        .suffix_hosts
                        .iter()
                        .position(|(k, _)| **k == *s.as_bytes());
                    let pos = pos.unwrap_or_else(|| {
                        r.suffix_hosts
                            .push((s.as_bytes().into(), PathTable::default()));
                        r.suffix_hosts.len() - 1
                    });
                    &mut r.suffix_hosts[pos].1
                }
            };
            table.insert(&route.path, cand);
        }
        r.suffix_hosts.sort_by_key(|b| std::cmp::Reverse(b.0.len()));
        r
    }

    /// Matches an authority (`host[:port]`, any case), a path and a method.
    pub fn route(&self, authority: &[u8], path: &[u8], method: &[u8]) -> Match {
        let mut lower = [0u8; MAX_HOST];
        let host = host_of(authority, &mut lower);
        let mut path_matched = false;
        if let Some(host) = host {
            if let Some(t) = self.exact_hosts.get(host) {
                if let Some(r) = t.find(path, method, &mut path_matched) {
                    return Match::Route(r);
                }
            }
            for (suffix, t) in &self.suffix_hosts {
                if host.len() > suffix.len() && host.ends_with(suffix) {
                    if let Some(r) = t.find(path, method, &mut path_matched) {
                        return Match::Route(r);
                    }
                }
            }
        }
        if let Some(r) = self.any_host.find(path, method, &mut path_matched) {
            return Match::Route(r);
        }
        if path_matched {
            Match::MethodNotAllowed
        } else {
            Match::NotFound
        }
    }
}

/// Lower-cases the host part of an authority into `out`, dropping the port
/// and a trailing dot. `None` when it does not fit.
fn host_of<'a>(authority: &[u8], out: &'a mut [u8; MAX_HOST]) -> Option<&'a [u8]> {
    let host = if authority.first() == Some(&b'[') {
        // IP literal: keep through the closing bracket.
        let end = authority.iter().position(|&b| b == b']')?;
        &authority[..=end]
    } else {
        let end = authority
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(authority.len());
        &authority[..end]
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.len() > MAX_HOST {
        return None;
    }
    let out = &mut out[..host.len()];
    for (o, &b) in out.iter_mut().zip(host) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(src: &str) -> (Router, Config) {
        let config = Config::from_toml_str(src).expect("valid config");
        (Router::new(&config), config)
    }

    fn name(r: &Router, c: &Config, host: &str, path: &str, method: &str) -> String {
        match r.route(host.as_bytes(), path.as_bytes(), method.as_bytes()) {
            Match::Route(i) => c.routes[i].name.clone(),
            Match::MethodNotAllowed => "405".into(),
            Match::NotFound => "404".into(),
        }
    }

    const ROUTES: &str = r#"
[[listeners]]
address = "127.0.0.1:0"

[[routes]]
name = "root"
[routes.respond]

[[routes]]
name = "api"
path-prefix = "/api/"
[routes.respond]

[[routes]]
name = "api-v2"
path-prefix = "/api/v2/"
[routes.respond]

[[routes]]
name = "api-get"
path-prefix = "/api/"
methods = ["GET", "HEAD"]
[routes.respond]

[[routes]]
name = "health"
path = "/health"
[routes.respond]

[[routes]]
name = "only-post"
path = "/submit"
methods = ["POST"]
[routes.respond]

[[routes]]
name = "wild"
host = "*.example.com"
path-prefix = "/"
[routes.respond]

[[routes]]
name = "deep-wild"
host = "*.eu.example.com"
[routes.respond]

[[routes]]
name = "exact-host"
host = "api.example.com"
path-prefix = "/api/"
[routes.respond]
"#;

    #[test]
    fn precedence_table() {
        let (r, c) = router(ROUTES);
        let cases = [
            ("x.org", "/", "GET", "root"),
            ("x.org", "/anything", "GET", "root"),
            ("x.org", "/api/users", "POST", "api"),
            ("x.org", "/api/users", "GET", "api-get"),
            ("x.org", "/api/v2/x", "GET", "api-v2"),
            ("x.org", "/health", "GET", "health"),
            ("x.org", "/health/x", "GET", "root"),
            ("x.org", "/submit", "POST", "only-post"),
            // Method falls through to the catch-all.
            ("x.org", "/submit", "GET", "root"),
            ("a.example.com", "/api/x", "GET", "wild"),
            ("A.Example.COM:8080", "/", "GET", "wild"),
            ("example.com", "/", "GET", "root"),
            ("b.eu.example.com", "/", "GET", "deep-wild"),
            ("api.example.com", "/api/x", "GET", "exact-host"),
            ("api.example.com.", "/api/x", "GET", "exact-host"),
            // Exact host without a matching path falls to the wildcard.
            ("api.example.com", "/other", "GET", "wild"),
        ];
        for (host, path, method, want) in cases {
            assert_eq!(
                name(&r, &c, host, path, method),
                want,
                "{host} {method} {path}"
            );
        }
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let (r, c) = router(
            r#"
[[listeners]]
address = "127.0.0.1:0"
[[routes]]
path = "/only-get"
methods = ["GET"]
[routes.respond]
"#,
        );
        assert_eq!(name(&r, &c, "h", "/only-get", "POST"), "405");
        assert_eq!(name(&r, &c, "h", "/other", "GET"), "404");
        assert_eq!(name(&r, &c, "h", "/only-get", "get"), "405");
    }

    #[test]
    fn host_normalisation() {
        let mut out = [0u8; MAX_HOST];
        assert_eq!(host_of(b"Ex.COM:80", &mut out), Some(&b"ex.com"[..]));
        assert_eq!(host_of(b"[::1]:80", &mut out), Some(&b"[::1]"[..]));
        assert_eq!(host_of(b"", &mut out), Some(&b""[..]));
        assert_eq!(host_of(&[b'a'; 300], &mut out), None);
    }
}
