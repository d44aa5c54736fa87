//! The validated, typed config the engine runs on.
//!
//! Everything here has already been checked: addresses are parsed, durations
//! and sizes carry their units, names are unique, a route's upstream is an
//! index that exists. The engine can therefore use these values without
//! re-checking them, and a reload compares two `Config`s with `==`.
//! `Config` is `#[non_exhaustive]` so code outside this crate can read (and
//! in tests, tweak) it but can only obtain one through
//! [`Config::from_toml_str`], [`Config::from_json_str`] or
//! [`Config::from_file`].

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

/// A validated gateway config.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `workers`: how many worker threads (one runtime each) to start.
    pub workers: Workers,
    /// `driver`: the I/O driver each worker's runtime uses.
    pub driver: Driver,
    /// `drain-timeout`: how long a shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// `[limits]`: global protocol limits and timeouts.
    pub limits: Limits,
    /// `[admin]`: the admin HTTP API's listener and token.
    pub admin: Admin,
    /// `[[listeners]]`, at least one.
    pub listeners: Vec<Listener>,
    /// `[[upstreams]]`, in file order; [`Action::Upstream`] indexes into this.
    pub upstreams: Vec<Upstream>,
    /// `[[routes]]`, in file order, at least one.
    pub routes: Vec<Route>,
}

/// `driver = "io_uring" | "epoll"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// io_uring where the kernel allows it, epoll otherwise (the default).
    #[default]
    IoUring,
    /// epoll readiness with non-blocking syscalls, always.
    Epoll,
}

/// `workers = "auto" | 1..=1024`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// One worker per available CPU.
    Auto,
    /// Exactly this many workers.
    Count(NonZeroUsize),
}

/// `[limits]`: every bound the gateway enforces on a request, and the
/// timeouts that keep a slow peer from holding a connection forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `max-target-length`: longest request target; longer gets 414.
    pub max_target_len: usize,
    /// `max-head-size`: largest request head (request line and headers);
    /// larger gets 431.
    pub max_head_size: usize,
    /// `max-headers`: most request header fields; more gets 431.
    pub max_headers: usize,
    /// `max-body-size`: largest request body; larger gets 413.
    pub max_body_size: u64,
    /// `header-read-timeout`: time to receive a whole request head; 408 after.
    pub header_read_timeout: Duration,
    /// `keepalive-timeout`: how long an idle client connection is kept open.
    pub keepalive_timeout: Duration,
    /// `connect-timeout`: time to connect to an upstream server; 504 after.
    pub connect_timeout: Duration,
    /// `response-head-timeout`: time from sending a request upstream to
    /// receiving the response head; 504 after.
    pub response_head_timeout: Duration,
    /// `send-timeout`: longest wait for a client or upstream to accept more
    /// bytes of a head or body being written to it; the connection is
    /// closed after (504 if the upstream stalls before a response).
    pub send_timeout: Duration,
    /// `upstream-idle-timeout`: how long an idle pooled upstream connection
    /// is kept.
    pub upstream_idle_timeout: Duration,
    /// `upstream-max-idle`: idle pooled connections kept per upstream server
    /// per worker; 0 disables pooling.
    pub upstream_max_idle: usize,
}

/// `[admin]`: where the admin HTTP API listens, and what it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// `enabled`: whether the admin API is served; default true.
    pub enabled: bool,
    /// `address`, an `IP:port`; default `127.0.0.1:9901`. Always a loopback
    /// address when `enabled` and `token` is `None`; never a listener's
    /// address when `enabled` (port 0 aside).
    pub address: SocketAddr,
    /// `token`: the bearer token every admin request must carry, 16 to 256
    /// visible ASCII characters; `None` lets in whoever reaches `address`.
    pub token: Option<String>,
}

/// `[[listeners]]`: an address to accept client connections on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `name`, or `listener-{index}` when not given.
    pub name: String,
    /// `address`, an `IP:port`.
    pub address: SocketAddr,
}

/// `[[upstreams]]`: a named set of servers that routes proxy to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `name`, unique among upstreams.
    pub name: String,
    /// `servers`, never empty, no address twice.
    pub servers: Vec<Server>,
}

/// One entry of `servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `IP:port`; hostnames are not resolved.
    pub address: SocketAddr,
    /// Relative share of traffic, 1 when written as a plain string.
    pub weight: NonZeroU32,
}

/// `[[routes]]`: which requests match, and what answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `name`, or `route-{index}` when not given; unique among routes.
    pub name: String,
    /// `host`; `None` matches any host.
    pub host: Option<HostMatch>,
    /// `path` or `path-prefix`; `Prefix("/")` when neither is given.
    pub path: PathMatch,
    /// `methods`, upper-case, in file order; empty matches any method.
    pub methods: Vec<String>,
    /// `upstream` or `[routes.respond]`.
    pub action: Action,
    /// `host-header`: the `Host` sent upstream instead of the client's.
    pub host_header: Option<String>,
    /// `[routes.limits]`, defaulting to the global `[limits]`.
    pub limits: RouteLimits,
}

/// The limits a route may override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLimits {
    /// `max-body-size`; larger request bodies get 413.
    pub max_body_size: u64,
    /// `connect-timeout` for this route's upstream.
    pub connect_timeout: Duration,
    /// `response-head-timeout` for this route's upstream.
    pub response_head_timeout: Duration,
}

/// How a route matches the request's host (compared lower-case, without port).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostMatch {
    /// `host = "api.example.com"`: exactly this host.
    Exact(String),
    /// `host = "*.example.com"`, held as `".example.com"`: any host ending in
    /// it (`a.example.com`, `a.b.example.com`), but not `example.com` itself.
    Suffix(String),
}

/// How a route matches the request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathMatch {
    /// `path = "/exact"`: exactly this path.
    Exact(String),
    /// `path-prefix = "/api/"`: any path starting with this string
    /// (byte-wise, so `/api` also matches `/apiary`; end it with `/` to match
    /// a directory).
    Prefix(String),
}

/// What answers a matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Proxy to `Config::upstreams[index]`.
    Upstream(usize),
    /// Answer from the built-in responder.
    Respond(Responder),
}

/// `[routes.respond]`: a fixed response served by the gateway itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// `status`, 200..=599; default 200.
    pub status: u16,
    /// `headers`, names as written (valid tokens, unique ignoring case),
    /// never `content-length`, `transfer-encoding` or `connection`. Their
    /// order carries no meaning: a TOML table has none.
    pub headers: Vec<(String, String)>,
    /// `body`; default empty; always empty for 204 and 304.
    pub body: String,
}
