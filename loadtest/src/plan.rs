//! What a run sends, where, how fast and for how long — fully validated,
//! with every request already serialised.
//!
//! A plan is built once ([`crate::scenario`] does it from flags and files)
//! and then only read: the connection tasks copy nothing but a reference
//! count per request, so the request path does no formatting at all.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::schedule::Schedule;
use crate::url::Url;

/// Everything the engine needs to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The URL as given (for the report); `addr` is what is dialled.
    pub url: Url,
    pub addr: SocketAddr,
    pub tls: Option<TlsSettings>,
    pub requests: Vec<Request>,
    pub pick: Pick,
    pub connections: usize,
    /// One CPU per thread, in thread order; its length is the thread count.
    pub cpus: Vec<usize>,
    pub load: Load,
    pub timeout: Duration,
    pub expect: StatusSet,
    pub driver: Driver,
}

impl Plan {
    pub fn threads(&self) -> usize {
        self.cpus.len()
    }

    /// The same plan aimed at another URL (what `compare` does).
    pub fn retarget(&self, url: Url, addr: SocketAddr) -> Plan {
        let requests = self
            .requests
            .iter()
            .map(|r| r.spec.build(&url))
            .collect::<Vec<_>>();
        Plan {
            tls: self.tls.clone().map(|t| TlsSettings {
                server_name: url.host.clone(),
                ..t
            }),
            url,
            addr,
            requests,
            ..self.clone()
        }
    }
}

/// Closed loop (as fast as responses come back) or open loop (a fixed
/// schedule of intended send times).
#[derive(Debug, Clone)]
pub enum Load {
    Closed { duration: Duration },
    Open { schedule: Schedule },
}

impl Load {
    pub fn duration(&self) -> Duration {
        match self {
            Load::Closed { duration } => *duration,
            Load::Open { schedule } => schedule.duration(),
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Load::Open { .. })
    }
}

/// Which monoio driver the threads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    IoUring,
    Epoll,
}

/// HTTPS client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// SNI and certificate name.
    pub server_name: String,
    /// Accept any certificate (self-signed test servers).
    pub insecure: bool,
    /// Resume sessions on reconnect (the default). Off, every connection
    /// does a full handshake: with `Connection: close` that measures full
    /// handshakes per second.
    pub resume: bool,
}

/// One kind of request the run sends, as written and as serialised.
#[derive(Debug, Clone)]
pub struct Request {
    pub spec: RequestSpec,
    /// The exact bytes written to the socket.
    pub wire: Bytes,
    /// HEAD responses carry no body whatever their headers say
    /// (RFC 9110 §9.3.2), so the reader must know.
    pub head: bool,
}

/// A request before serialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: String,
    /// Origin-form target; `None` means the URL's own path.
    pub path: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub weight: u32,
}

impl RequestSpec {
    /// Serialises for `url`: request line, `Host` from the URL unless given,
    /// the user's headers in order, `Content-Length` when there is a body or
    /// the method usually has one (RFC 9112 §6.3 lets a server wait for a
    /// body otherwise).
    pub fn build(&self, url: &Url) -> Request {
        let target = self.path.as_deref().unwrap_or(&url.target);
        let mut out = Vec::with_capacity(64 + self.body.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            out.extend_from_slice(b"Host: ");
            out.extend_from_slice(url.host_header().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let wants_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if wants_length && !has("content-length") && !has("transfer-encoding") {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(self.body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        Request {
            spec: self.clone(),
            wire: Bytes::from(out),
            head: self.method.eq_ignore_ascii_case("HEAD"),
        }
    }
}

/// How each connection picks its next request among several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// Smooth weighted round robin: a fixed cycle in which each request
    /// appears `weight` times, interleaved. Every connection walks the
    /// whole cycle (starting at its own index), so each one sends the exact
    /// mix even when one kind of request is much slower than another.
    RoundRobin { cycle: Vec<u16> },
    /// A seeded PRNG per connection (seed mixed with the connection index),
    /// so runs are repeatable.
    Random { seed: u64, cumulative: Vec<u64> },
}

/// The largest cycle round robin builds; finer weights use their ratio
/// reduced by the gcd, and a cycle longer than this is refused.
pub const MAX_CYCLE: u64 = 100_000;

impl Pick {
    /// Smooth weighted round robin (as nginx balances upstreams): at each
    /// step every request gains its weight, the highest is picked and pays
    /// back the total.
    pub fn round_robin(weights: &[u32]) -> Result<Pick, String> {
        let g = weights.iter().fold(0u64, |g, &w| gcd(g, u64::from(w)));
        if g == 0 {
            return Err("all request weights are 0".to_string());
        }
        let reduced: Vec<i64> = weights.iter().map(|&w| (u64::from(w) / g) as i64).collect();
        let total: i64 = reduced.iter().sum();
        if total as u64 > MAX_CYCLE {
            return Err(format!(
                "weights reduce to a cycle of {total} requests (at most {MAX_CYCLE}); use smaller weights or pick = \"random\""
            ));
        }
        let mut current = vec![0i64; reduced.len()];
        let mut cycle = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&reduced) {
                *c += w;
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .expect("at least one request");
            current[best] -= total;
            cycle.push(best as u16);
        }
        Ok(Pick::RoundRobin { cycle })
    }

    pub fn random(weights: &[u32], seed: u64) -> Result<Pick, String> {
        let mut acc = 0u64;
        let cumulative: Vec<u64> = weights
            .iter()
            .map(|&w| {
                acc += u64::from(w);
                acc
            })
            .collect();
        if acc == 0 {
            return Err("all request weights are 0".to_string());
        }
        Ok(Pick::Random { seed, cumulative })
    }

    /// A per-connection picker.
    pub fn picker(&self, conn: usize) -> Picker<'_> {
        match self {
            Pick::RoundRobin { cycle } => Picker::Cycle {
                cycle,
                pos: conn % cycle.len().max(1),
            },
            Pick::Random { seed, cumulative } => Picker::Random {
                cumulative,
                state: splitmix(seed ^ (conn as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            },
        }
    }
}

/// Iterates request indices for one connection.
#[derive(Debug)]
pub enum Picker<'a> {
    Cycle { cycle: &'a [u16], pos: usize },
    Random { cumulative: &'a [u64], state: u64 },
}

impl Picker<'_> {
    /// The index of the next request.
    pub fn next_index(&mut self) -> usize {
        match self {
            Picker::Cycle { cycle, pos } => {
                if cycle.len() <= 1 {
                    return 0;
                }
                let i = cycle[*pos] as usize;
                *pos += 1;
                if *pos == cycle.len() {
                    *pos = 0;
                }
                i
            }
            Picker::Random { cumulative, state } => {
                *state = splitmix(*state);
                let total = *cumulative.last().expect("validated non-empty");
                let x = *state % total;
                cumulative.partition_point(|&c| c <= x)
            }
        }
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The statuses that count as success: single codes and classes (`2xx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    /// Bit per status 100..=599.
    bits: [u64; 8],
    text: String,
}

impl Default for StatusSet {
    /// 2xx and 3xx: a redirect is an answer, not a failure.
    fn default() -> Self {
        StatusSet::parse("2xx,3xx").expect("valid default")
    }
}

impl StatusSet {
    /// Parses `200,2xx,304`.
    pub fn parse(text: &str) -> Result<StatusSet, String> {
        let mut bits = [0u64; 8];
        let mut parts = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let lower = part.to_ascii_lowercase();
            let range = if let Some(class) = lower.strip_suffix("xx") {
                match class.parse::<u16>() {
                    Ok(c @ 1..=5) => c * 100..=c * 100 + 99,
                    _ => return Err(format!("`{part}` is not a status class (1xx..5xx)")),
                }
            } else {
                match lower.parse::<u16>() {
                    Ok(s @ 100..=599) => s..=s,
                    _ => return Err(format!("`{part}` is not a status code (100..599)")),
                }
            };
            for s in range {
                let i = usize::from(s - 100);
                bits[i / 64] |= 1 << (i % 64);
            }
            parts.push(lower);
        }
        if parts.is_empty() {
            return Err("empty set of expected statuses".to_string());
        }
        Ok(StatusSet {
            bits,
            text: parts.join(","),
        })
    }

    #[inline]
    pub fn contains(&self, status: u16) -> bool {
        if !(100..=599).contains(&status) {
            return false;
        }
        let i = usize::from(status - 100);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: &str, body: &str, headers: &[(&str, &str)]) -> RequestSpec {
        RequestSpec {
            method: method.to_string(),
            path: None,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            weight: 1,
        }
    }

    #[test]
    fn build_table() {
        let url = Url::parse("http://127.0.0.1:8080/p?q=1").expect("valid");
        let cases: &[(RequestSpec, &str)] = &[
            (
                spec("GET", "", &[]),
                "GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            ),
            (
                spec("POST", "hi", &[("Content-Type", "text/plain")]),
                "POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
            ),
            (
                spec("PUT", "", &[("host", "api.test")]),
                "PUT /p?q=1 HTTP/1.1\r\nhost: api.test\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        for (s, want) in cases {
            let r = s.build(&url);
            assert_eq!(std::str::from_utf8(&r.wire), Ok(*want));
            assert!(!r.head);
        }
        assert!(spec("HEAD", "", &[]).build(&url).head);
    }

    #[test]
    fn round_robin_follows_weights_smoothly() {
        let Pick::RoundRobin { cycle } = Pick::round_robin(&[5, 1, 1]).expect("valid") else {
            panic!("round robin");
        };
        assert_eq!(cycle, vec![0, 0, 1, 0, 2, 0, 0]);
        let Pick::RoundRobin { cycle } = Pick::round_robin(&[200, 100]).expect("valid") else {
            panic!("round robin");
        };
        assert_eq!(cycle, vec![0, 1, 0], "reduced by the gcd");
        assert!(Pick::round_robin(&[0, 0]).is_err());
        assert!(Pick::round_robin(&[99_999, 99_998]).is_err());
    }

    #[test]
    fn each_connection_walks_the_whole_cycle() {
        let pick = Pick::round_robin(&[3, 1]).expect("valid");
        for conn in 0..5 {
            let mut p = pick.picker(conn);
            let seq: Vec<usize> = (0..8).map(|_| p.next_index()).collect();
            assert_eq!(
                seq.iter().filter(|&&i| i == 1).count(),
                2,
                "conn {conn}: {seq:?}"
            );
        }
        let mut p = pick.picker(2);
        let seq: Vec<usize> = (0..4).map(|_| p.next_index()).collect();
        assert_eq!(seq, vec![1, 0, 0, 0], "starts at its own index");
    }

    #[test]
    fn random_is_seeded_and_weighted() {
        let pick = Pick::random(&[9, 1], 7).expect("valid");
        let run = |p: &Pick| {
            let mut k = p.picker(0);
            (0..10_000).map(|_| k.next_index()).collect::<Vec<_>>()
        };
        let a = run(&pick);
        assert_eq!(a, run(&pick), "same seed, same sequence");
        let ones = a.iter().filter(|&&i| i == 1).count();
        assert!(
            (800..1200).contains(&ones),
            "{ones} of 10000 at weight 1/10"
        );
    }

    #[test]
    fn status_set_table() {
        let s = StatusSet::parse("200, 3xx,404").expect("valid");
        for (code, want) in [
            (200, true),
            (201, false),
            (301, true),
            (399, true),
            (404, true),
            (500, false),
            (99, false),
            (600, false),
        ] {
            assert_eq!(s.contains(code), want, "{code}");
        }
        let d = StatusSet::default();
        assert!(d.contains(204) && d.contains(302) && !d.contains(404));
        for bad in ["", "6xx", "abc", "99", "600"] {
            assert!(StatusSet::parse(bad).is_err(), "{bad}");
        }
    }
}
