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
//!
//! The traffic-policy types (consumers, authenticators, IP rules, rate and
//! concurrency limits) hold what the config says and nothing the engine
//! derives: key material stays text (a PEM block, an HMAC secret, a
//! password hash) for the engine to parse, since checking it needs crypto
//! this crate does not link. The cache types likewise hold budgets and key
//! options, not the engine's shard layout. The TLS types hold the paths of
//! certificate, key and CA files as written, never their contents: the
//! engine reads and parses them (and reports what it cannot use), as it
//! does a JWT authenticator's `jwks-file`. The AI gateway's types, in
//! [`ai`], hold where provider keys are, never the keys they point to.

mod ai;
mod compression;
mod cors;
mod transform;
mod tunnel;

use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

pub use ipnet::IpNet;

pub use compression::{Compression, ContentCoding};
pub use cors::{AllowOrigins, Cors, OriginPattern};

pub use ai::{
    AiKey, AiModel, AiProvider, AiProviderKind, AiRoute, AiStrategy, AiTarget, SecretSource,
};
pub use tunnel::Tunnels;

pub use transform::{
    ErrorBody, ErrorFormat, HeaderRules, Part, PathRewrite, QueryRules, Redirect, RouteTransform,
    Template, Var,
};

use crate::error::ConfigError;

/// A validated gateway config.
///
/// Equality compares every setting, and [`Config::warnings`] by path and
/// message only: a warning's position changes when lines move, which a
/// reload must not take for a change of config.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `workers`: how many worker threads (one runtime each) to start.
    pub workers: Workers,
    /// `driver`: the I/O driver each worker's runtime uses.
    pub driver: Driver,
    /// `connection-balance`: how new connections are spread over the
    /// workers.
    pub connection_balance: ConnectionBalance,
    /// `drain-timeout`: how long a shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// `[limits]`: global protocol limits and timeouts.
    pub limits: Limits,
    /// `[admin]`: the admin HTTP API's listener and token.
    pub admin: Admin,
    /// `[cache]`: the HTTP cache's shared budget and defaults; routes turn
    /// caching on with [`Route::cache`].
    pub cache: Cache,
    /// `[metrics]`: the per-route and per-upstream-server metrics.
    pub metrics: Metrics,
    /// `[access-log]`: one line per request, written by a thread of its own.
    pub access_log: AccessLog,
    /// `[[listeners]]`, at least one.
    pub listeners: Vec<Listener>,
    /// `[resolver]`: how the servers' DNS names are resolved.
    pub resolver: Resolver,
    /// `[[upstreams]]`, in file order; [`Action::Upstream`] indexes into this.
    pub upstreams: Vec<Upstream>,
    /// `[[routes]]`, in file order, at least one.
    pub routes: Vec<Route>,
    /// `[client-ip]`: which peers may say who the client is.
    pub client_ip: ClientIp,
    /// `[ip-rules]`: addresses allowed and refused before routing.
    pub ip_rules: IpRules,
    /// `[[consumers]]`, in file order; names and credentials unique.
    pub consumers: Vec<Consumer>,
    /// `[[authenticators]]`, in file order; [`Route::auth`] indexes into this.
    pub authenticators: Vec<Authenticator>,
    /// `[[ai-providers]]`, in file order; [`AiTarget::provider`] indexes
    /// into this.
    pub ai_providers: Vec<AiProvider>,
    /// `[[ai-models]]`, in file order; [`AiRoute::models`] indexes into
    /// this.
    pub ai_models: Vec<AiModel>,
    /// Settings that are allowed but risky (a `plain:` API key, a group no
    /// consumer belongs to), in source order, shaped like errors. Never
    /// written out by [`Config::to_json`] or [`Config::to_toml`].
    pub warnings: Vec<ConfigError>,
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        // Destructured, so a new field cannot be left out of the comparison.
        let Config {
            workers,
            driver,
            connection_balance,
            drain_timeout,
            limits,
            admin,
            cache,
            metrics,
            access_log,
            listeners,
            resolver,
            upstreams,
            routes,
            client_ip,
            ip_rules,
            consumers,
            authenticators,
            ai_providers,
            ai_models,
            warnings,
        } = self;
        let placeless = |w: &[ConfigError]| -> Vec<(String, String)> {
            w.iter()
                .map(|e| (e.path.clone(), e.message.clone()))
                .collect()
        };
        *workers == other.workers
            && *driver == other.driver
            && *connection_balance == other.connection_balance
            && *drain_timeout == other.drain_timeout
            && *limits == other.limits
            && *admin == other.admin
            && *cache == other.cache
            && *metrics == other.metrics
            && *access_log == other.access_log
            && *listeners == other.listeners
            && *resolver == other.resolver
            && *upstreams == other.upstreams
            && *routes == other.routes
            && *client_ip == other.client_ip
            && *ip_rules == other.ip_rules
            && *consumers == other.consumers
            && *authenticators == other.authenticators
            && *ai_providers == other.ai_providers
            && *ai_models == other.ai_models
            && placeless(warnings) == placeless(&other.warnings)
    }
}

impl Eq for Config {}

/// `driver = "io_uring" | "epoll"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// io_uring where the kernel allows it, epoll otherwise (the default).
    #[default]
    IoUring,
    /// epoll readiness with non-blocking syscalls, always.
    Epoll,
}

/// `connection-balance = "hash" | "cpu"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionBalance {
    /// The kernel picks a worker by a hash of the connection's addresses
    /// (the default).
    #[default]
    Hash,
    /// A new connection goes to the worker pinned to the CPU the kernel
    /// received it on, when there is one (else by hash): the connection's
    /// packets and its worker stay on one CPU.
    Cpu,
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
    /// `body-idle-timeout`: longest wait for the next bytes of a message
    /// body once its head is complete, both when reading a client's
    /// request body and when reading an upstream's response body. After
    /// it the transfer is aborted: a client body gets 408 if nothing was
    /// answered yet, then the connection is closed; an upstream body
    /// closes the client connection, whose response head was already
    /// sent. Default 60s; a route may set its own
    /// ([`RouteLimits::body_idle_timeout`]).
    pub body_idle_timeout: Duration,
    /// `send-timeout`: no progress for this long. The longest a client or
    /// upstream may accept no bytes at all of a head or body being written
    /// to it; a slow reader that keeps taking bytes is never cut off. The
    /// connection is closed after (504 if the upstream stalls before a
    /// response).
    pub send_timeout: Duration,
    /// `upstream-idle-timeout`: how long an idle pooled upstream connection
    /// is kept.
    pub upstream_idle_timeout: Duration,
    /// `upstream-max-idle`: idle pooled connections kept per upstream server
    /// per worker; 0 disables pooling.
    pub upstream_max_idle: usize,
    /// `max-connections`: the most client connections held open at once,
    /// over all workers and listeners, 1 to 10000000; default 65536. A
    /// connection accepted beyond it is closed at once and counted.
    pub max_connections: usize,
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

/// `[metrics]`: what the gateway counts for `GET /metrics` on the admin
/// API beyond its global counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// `enabled`: count requests per route and per upstream server (status
    /// classes, methods, duration histograms, bytes, failures by kind);
    /// default true. The global counters are kept either way.
    pub enabled: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics { enabled: true }
    }
}

/// `[cache]`: the HTTP cache's (RFC 9111) shared store and the defaults
/// of routes that cache.
///
/// The cache is one for all workers: a store of `size` bytes, shared by
/// every route that caches without a `size` of its own (see
/// [`RouteCache::size`]).
/// Caching itself is turned on per route; the defaults apply when the
/// table is absent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cache {
    /// `size`: the budget of the store caching routes share (one for all
    /// workers), in bytes, counting keys and overhead; 64 KiB to 1 TiB,
    /// default 64 MiB.
    pub size: usize,
    /// `max-entry-size`: the largest response body a route stores unless
    /// it sets its own; larger bodies stream through unstored. At least 1
    /// byte and at most half of `size`; default 1 MiB.
    pub max_entry_size: usize,
    /// `lock-timeout`: how long concurrent misses for one key wait for the
    /// first request's fetch before going to the origin themselves; 0s to
    /// 60s, default 5s; zero turns request collapsing off.
    pub lock_timeout: Duration,
    /// `targeted-field`: the response field, lower-case, that directs this
    /// cache alone (RFC 9213): when present and valid it overrides
    /// `CDN-Cache-Control`, which overrides `Cache-Control` (and
    /// `Expires`); default `ringway-cache-control`. Never `cache-control`
    /// or `cdn-cache-control`.
    pub targeted_field: String,
    /// `forward-targeted`: whether `CDN-Cache-Control` and the targeted
    /// field reach the client on answers of caching routes; default false
    /// (they are meant for this cache).
    pub forward_targeted: bool,
}

/// `[access-log]`: a line per request, to a file or standard output.
///
/// The workers hand each request's facts to a writer thread through a
/// bounded queue per worker; a full queue drops the record (and counts it)
/// rather than make a worker wait on the disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessLog {
    /// `enabled`: whether requests are logged; default false.
    pub enabled: bool,
    /// `path`: a file, appended to (created when missing), or `"-"` for
    /// standard output; default `"-"`.
    pub path: LogTarget,
    /// `format`: default [`LogFormat::Json`].
    pub format: LogFormat,
    /// `sample`: the share of successful requests (status below 400, no
    /// error) logged, 0 to 1; requests that failed are always logged.
    /// Default 1 (all).
    pub sample: SampleRate,
    /// `query`: whether the query string is logged; default true.
    pub query: bool,
    /// `queue`: records waiting for the writer, per worker, 1 to 1000000;
    /// default 8192. A change takes effect after a restart once the access
    /// log has been enabled.
    pub queue: usize,
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogTarget {
    /// `"-"`: standard output.
    Stdout,
    /// A file path, kept as written (a relative path is relative to the
    /// working directory, like the TLS paths).
    File(PathBuf),
}

/// `format = "json" | "combined"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// `"json"`: one JSON object per line, every field named (the default).
    #[default]
    Json,
    /// `"combined"`: the Apache and nginx combined text format.
    Combined,
}

impl LogFormat {
    /// Every value, in the order the config documents them.
    pub const ALL: [LogFormat; 2] = [LogFormat::Json, LogFormat::Combined];

    /// The name used in the config, e.g. `"json"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Combined => "combined",
        }
    }
}

/// A share of requests from 0 to 1, held in millionths so that configs
/// compare (and hash) exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleRate(u32);

impl SampleRate {
    /// Every request.
    pub const ALL: SampleRate = SampleRate(1_000_000);
    /// No request.
    pub const NONE: SampleRate = SampleRate(0);

    /// The nearest millionth to `share`, which must be within 0..=1.
    pub fn from_share(share: f64) -> Option<SampleRate> {
        if !(0.0..=1.0).contains(&share) {
            return None;
        }
        // In range, so the product is within 0..=1e6.
        Some(SampleRate((share * 1e6).round() as u32))
    }

    /// The share in millionths, 0 to 1000000.
    pub fn per_million(self) -> u32 {
        self.0
    }

    /// The share as a number from 0 to 1.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1e6
    }
}

/// `[[listeners]]`: an address to accept client connections on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `name`, or `listener-{index}` when not given.
    pub name: String,
    /// `address`, an `IP:port`.
    pub address: SocketAddr,
    /// `[listeners.tls]`: `Some` makes this an HTTPS listener.
    pub tls: Option<ListenerTls>,
    /// `encoded-slashes`: what a request whose path holds `%2F` or `%5C`
    /// gets; default [`EncodedSlashes::Reject`].
    pub encoded_slashes: EncodedSlashes,
    /// `underscores-in-headers`: what a request header whose name holds
    /// `_` gets; default [`UnderscoresInHeaders::Drop`].
    pub underscores_in_headers: UnderscoresInHeaders,
    /// `trust-request-id`: a client's `X-Request-Id` is kept (when it is 1
    /// to 128 visible ASCII characters without commas) instead of being
    /// replaced by a generated one; default false. Only for listeners whose
    /// clients are trusted to choose unique IDs (a front proxy, a mesh).
    pub trust_request_id: bool,
    /// `[listeners.request-headers]`: applied to every request sent
    /// upstream from this listener, before the route's own.
    pub request_headers: Option<HeaderRules>,
    /// `[listeners.response-headers]`: applied to every answer on this
    /// listener (also when no route matched), before the route's own.
    pub response_headers: Option<HeaderRules>,
    /// `error-format`: how the gateway's own errors read on this
    /// listener, unless the route says otherwise; default text.
    pub error_format: ErrorFormat,
}

/// `encoded-slashes = "reject" | "decode" | "pass"`: what a request path
/// holding a percent-encoded slash (`%2F`, `%2f`) or backslash (`%5C`,
/// `%5c`) gets.
///
/// Routes match the path as sent, while many origins decode `%2F` to `/`
/// before they look the path up: with `"pass"`, `/admin%2Fusers` does not
/// match a route on `path-prefix = "/admin/"` (and skips its policy), yet
/// such an origin serves it as `/admin/users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncodedSlashes {
    /// `"reject"`: 400 Bad Request (the default).
    #[default]
    Reject,
    /// `"decode"`: `%2F` is decoded to `/` before routing and in the
    /// target sent upstream; the decoded path is checked again (no `//`,
    /// no dot-segments). `%5C` is still refused with 400.
    Decode,
    /// `"pass"`: routed and forwarded as sent, for origins that treat
    /// `%2F` as data (object keys, for instance). A route guarding a
    /// prefix can then be bypassed through an origin that decodes it:
    /// use it only for listeners whose origins do not.
    Pass,
}

impl EncodedSlashes {
    /// Every value, in the order the config documents them.
    pub const ALL: [EncodedSlashes; 3] = [
        EncodedSlashes::Reject,
        EncodedSlashes::Decode,
        EncodedSlashes::Pass,
    ];

    /// The name used in the config, e.g. `"reject"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EncodedSlashes::Reject => "reject",
            EncodedSlashes::Decode => "decode",
            EncodedSlashes::Pass => "pass",
        }
    }
}

/// `underscores-in-headers = "drop" | "pass"`: what a request header
/// field whose name holds an underscore gets.
///
/// CGI-style servers (PHP, Rack, WSGI) read `X_Forwarded_For` and
/// `X-Forwarded-For` as one variable, so a name the gateway writes or
/// interprets, spelt with underscores, could slip a client's value past
/// it. Dropped fields are counted
/// (`ringway_headers_dropped_total{reason="underscore"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UnderscoresInHeaders {
    /// `"drop"`: every such field is removed before routing, policies
    /// and forwarding, as nginx does by default (the default).
    #[default]
    Drop,
    /// `"pass"`: such fields are kept, except those whose dash spelling
    /// the gateway manages (framing, Host, hop-by-hop fields, Expect,
    /// X-Forwarded-*, Forwarded, X-Real-IP, Via, X-Request-Id, trace
    /// context), which are always removed.
    Pass,
}

impl UnderscoresInHeaders {
    /// Every value, in the order the config documents them.
    pub const ALL: [UnderscoresInHeaders; 2] =
        [UnderscoresInHeaders::Drop, UnderscoresInHeaders::Pass];

    /// The name used in the config, e.g. `"drop"`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnderscoresInHeaders::Drop => "drop",
            UnderscoresInHeaders::Pass => "pass",
        }
    }
}

/// `[listeners.tls]`: the certificates and protocol settings of an HTTPS
/// listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenerTls {
    /// `certificates`, never empty; the first is the default certificate.
    pub certificates: Vec<CertificateFiles>,
    /// `unknown-sni`: what a handshake whose SNI is missing or matches no
    /// certificate gets; default [`UnknownSni::Default`].
    pub unknown_sni: UnknownSni,
    /// `min-version`: the oldest protocol version accepted; default
    /// [`TlsVersion::Tls12`]. TLS 1.3 is always accepted.
    pub min_version: TlsVersion,
    /// `cipher-suites`: names from [`ListenerTls::CIPHER_SUITES`], as
    /// written (upper-case), none twice, at least one usable with
    /// `min_version`; empty means the engine's safe defaults.
    pub cipher_suites: Vec<String>,
    /// `handshake-timeout`: time a client has to complete the TLS
    /// handshake, 1s to 60s; default 10s.
    pub handshake_timeout: Duration,
    /// `session-cache`: resumable sessions kept per worker, 0 to 1000000;
    /// default 4096, 0 disables.
    pub session_cache: usize,
    /// `session-tickets`: whether stateless session tickets are issued;
    /// default true.
    pub session_tickets: bool,
    /// `ticket-lifetime`: how long a ticket key is used before it is
    /// rotated, 1m to 24h; default 6h.
    pub ticket_lifetime: Duration,
    /// `[listeners.tls.client-auth]`: client certificates (mTLS).
    pub client_auth: Option<ClientAuth>,
}

impl ListenerTls {
    /// Every cipher suite name `cipher-suites` accepts: the TLS 1.3 suites
    /// (`TLS13_` prefix) and the ECDHE AEAD suites of TLS 1.2.
    pub const CIPHER_SUITES: [&'static str; 9] = [
        "TLS13_AES_256_GCM_SHA384",
        "TLS13_AES_128_GCM_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ];
}

/// One entry of `certificates`: a certificate chain and its private key.
///
/// Paths are kept as written, like `jwks-file`: a relative path is not
/// resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateFiles {
    /// `cert`: a PEM file holding the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `key`: a PEM file holding the certificate's private key.
    pub key: PathBuf,
    /// `names`: the SNI names this certificate is served for, lower-case,
    /// each a DNS name or a `*.` wildcard of one leftmost label; no name
    /// in two entries of a listener. Empty means the certificate's own DNS
    /// names, which the engine reads from it.
    pub names: Vec<String>,
}

/// `unknown-sni = "default" | "reject"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownSni {
    /// `"default"`: serve the first certificate.
    Default,
    /// `"reject"`: fail the handshake.
    Reject,
}

/// A TLS protocol version, `"1.2"` or `"1.3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

/// `[listeners.tls.client-auth]`: verifying client certificates (mTLS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientAuth {
    /// `mode`, required: whether a client must present a certificate.
    pub mode: ClientAuthMode,
    /// `ca`: a PEM bundle of the CAs client certificates must chain to;
    /// kept as written.
    pub ca: PathBuf,
    /// `subject-header`: the request header, lower-case, that carries the
    /// verified certificate's subject upstream; default `x-client-subject`.
    /// Never a hop-by-hop or framing header, nor `host`.
    pub subject_header: String,
}

/// `mode = "required" | "optional"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuthMode {
    /// `"required"`: a handshake without a valid client certificate fails.
    Required,
    /// `"optional"`: a certificate is verified when sent; routes with
    /// [`Route::require_client_cert`] refuse requests without one.
    Optional,
}

/// `[resolver]`: how the DNS names in upstreams' `servers` are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolver {
    /// `nameservers`: the DNS servers asked, in order, none twice (an `IP`
    /// is taken as `IP:53`); `None` = the system's (`/etc/resolv.conf`).
    pub nameservers: Option<Vec<SocketAddr>>,
    /// `timeout`: how long one query may take, 100ms to 30s; default 2s.
    pub timeout: Duration,
    /// `hosts-file`: a hosts file whose names win over DNS, kept as
    /// written; default `/etc/hosts`, `None` (written `""`) = none.
    pub hosts_file: Option<PathBuf>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            nameservers: None,
            timeout: Duration::from_secs(2),
            hosts_file: Some(PathBuf::from("/etc/hosts")),
        }
    }
}

/// `[[upstreams]]`: a named set of servers that routes proxy to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `name`, unique among upstreams.
    pub name: String,
    /// `servers`, never empty, no address twice.
    pub servers: Vec<Server>,
    /// `[upstreams.tls]`: `Some` connects to the servers over TLS.
    pub tls: Option<UpstreamTls>,
    /// `max-connections`: the most connections in use (carrying a
    /// request) to each server of this upstream at once, over all
    /// workers, 1 to 10000000; idle pooled connections do not count (as
    /// nginx's `max_conns`). A server's own [`Server::max_connections`]
    /// overrides it. A request that would need another waits in the queue
    /// (`queue_size`) or gets 503, and is counted. `None` (the key left
    /// out): no cap.
    pub max_connections: Option<NonZeroU32>,
    /// `queue-size`: requests that may wait for a connection while every
    /// server they could use is at its `max-connections`, for this
    /// upstream over all workers, 0 to 100000; default 0 (503 at once).
    pub queue_size: u32,
    /// `queue-timeout`: how long a queued request waits before it gets
    /// 503, 1ms to 60s; default 1s.
    pub queue_timeout: Duration,
    /// `slow-start`: a server that becomes healthy gets its weight ramped
    /// from 10% to 100% over this, up to 1h; default 0s = off.
    pub slow_start: Duration,
    /// `resolve`: what a server name that does not resolve does; default
    /// [`Resolve::Optional`].
    pub resolve: Resolve,
    /// `resolve-interval`: how often server names are resolved again, 1s
    /// to 1h; default 30s.
    pub resolve_interval: Duration,
    /// `fail-open`: when no server is available, balance over every
    /// primary server anyway (true, the default) rather than answer 503.
    pub fail_open: bool,
    /// `[upstreams.balance]`: how a server is picked for a request.
    pub balance: Balance,
    /// `[upstreams.health-check]`: `Some` turns active checks on.
    pub health_check: Option<HealthCheck>,
    /// `[upstreams.outlier-detection]`: passive checks, on by default.
    pub outlier: OutlierDetection,
}

/// `resolve = "optional" | "required"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Resolve {
    /// `"optional"`: a name that does not resolve is warned about and
    /// tried again (the default).
    #[default]
    Optional,
    /// `"required"`: a name that does not resolve fails the start or
    /// reload.
    Required,
}

impl Resolve {
    /// Every value, in the order the config documents them.
    pub const ALL: [Resolve; 2] = [Resolve::Optional, Resolve::Required];

    /// The name used in the config, e.g. `"optional"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolve::Optional => "optional",
            Resolve::Required => "required",
        }
    }
}

/// `[upstreams.balance]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Balance {
    /// `policy` (with `key` for `"hash"`); default
    /// [`BalancePolicy::RoundRobin`].
    pub policy: BalancePolicy,
    /// `ewma-decay`: how fast the `"ewma"` policy forgets a latency, 100ms
    /// to 10min; default 10s. Only ever set in the file for `"ewma"`.
    pub ewma_decay: Duration,
}

impl Default for Balance {
    fn default() -> Self {
        Balance {
            policy: BalancePolicy::RoundRobin,
            ewma_decay: Duration::from_secs(10),
        }
    }
}

/// `policy = "round-robin" | "least-request" | "ewma" | "random" | "hash"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BalancePolicy {
    /// `"round-robin"`: smooth weighted round robin (the default).
    RoundRobin,
    /// `"least-request"`: of two servers picked at random, the one with
    /// fewer requests in flight for its weight.
    LeastRequest,
    /// `"ewma"`: of two servers picked at random, the one with the lower
    /// peak-EWMA latency times requests in flight, for its weight.
    Ewma,
    /// `"random"`: weighted random.
    Random,
    /// `"hash"`: consistent hashing (Maglev) of the request's `key`.
    Hash(HashKey),
}

impl BalancePolicy {
    /// Every policy name, in the order the config documents them.
    pub const NAMES: [&'static str; 5] = ["round-robin", "least-request", "ewma", "random", "hash"];

    /// The name used in the config, e.g. `"round-robin"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BalancePolicy::RoundRobin => "round-robin",
            BalancePolicy::LeastRequest => "least-request",
            BalancePolicy::Ewma => "ewma",
            BalancePolicy::Random => "random",
            BalancePolicy::Hash(_) => "hash",
        }
    }
}

/// What the `"hash"` policy hashes: `key = "client-ip" | "header:NAME" |
/// "cookie:NAME" | "consumer" | "path"`. A request without the value
/// hashes an empty one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// `"client-ip"`: the client's address (see [`ClientIp`]).
    ClientIp,
    /// `"header:NAME"`: a request header's value; the name lower-case.
    Header(String),
    /// `"cookie:NAME"`: a cookie's value; the name as written (cookie
    /// names are case-sensitive).
    Cookie(String),
    /// `"consumer"`: the authenticated consumer's name.
    Consumer,
    /// `"path"`: the request path, without the query.
    Path,
}

impl fmt::Display for HashKey {
    /// As written in the config, e.g. `header:x-user`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashKey::ClientIp => f.write_str("client-ip"),
            HashKey::Header(name) => write!(f, "header:{name}"),
            HashKey::Cookie(name) => write!(f, "cookie:{name}"),
            HashKey::Consumer => f.write_str("consumer"),
            HashKey::Path => f.write_str("path"),
        }
    }
}

/// `[upstreams.health-check]`: active checks of every server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    /// `type` and the keys that belong to it.
    pub kind: CheckKind,
    /// `interval`: time between two checks of a server, 100ms to 1h;
    /// default 5s.
    pub interval: Duration,
    /// `timeout`: time one check may take, at least 10ms and less than
    /// `interval`; default 2s.
    pub timeout: Duration,
    /// `healthy-threshold`: passes in a row that make a server healthy,
    /// 1 to 100; default 2.
    pub healthy_threshold: u32,
    /// `unhealthy-threshold`: failures in a row that make a server
    /// unhealthy, 1 to 100; default 3.
    pub unhealthy_threshold: u32,
}

/// The `type` of a health check, with its settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `type = "http"` (the default): one request, passing when its status
    /// matches `expect`.
    Http {
        /// `method`; default [`CheckMethod::Get`].
        method: CheckMethod,
        /// `path`: the request target, starting with `/`; default `/`.
        path: String,
        /// `host`: the `Host` sent; `None` = the server's name (or its
        /// `IP:port`).
        host: Option<String>,
        /// `expect`: the statuses that pass, none twice; default `2xx`
        /// and `3xx`.
        expect: Vec<StatusMatch>,
    },
    /// `type = "tcp"`: passing when a connection is accepted.
    Tcp,
}

/// A health check's `method = "GET" | "HEAD" | "OPTIONS"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CheckMethod {
    /// `"GET"` (the default).
    #[default]
    Get,
    /// `"HEAD"`.
    Head,
    /// `"OPTIONS"`.
    Options,
}

impl CheckMethod {
    /// Every method, in the order the config documents them.
    pub const ALL: [CheckMethod; 3] = [CheckMethod::Get, CheckMethod::Head, CheckMethod::Options];

    /// The method as sent, e.g. `"GET"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckMethod::Get => "GET",
            CheckMethod::Head => "HEAD",
            CheckMethod::Options => "OPTIONS",
        }
    }
}

/// One entry of a health check's `expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusMatch {
    /// An integer from 100 to 599: exactly this status.
    Code(u16),
    /// `"1xx"` to `"5xx"`, held as its digit 1 to 5: every status of
    /// the class.
    Class(u8),
}

impl StatusMatch {
    /// Whether `status` is one this entry passes.
    pub fn matches(&self, status: u16) -> bool {
        match *self {
            StatusMatch::Code(code) => status == code,
            StatusMatch::Class(class) => status / 100 == u16::from(class),
        }
    }
}

impl fmt::Display for StatusMatch {
    /// As written in the config's text form: `404` or `2xx`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusMatch::Code(code) => write!(f, "{code}"),
            StatusMatch::Class(class) => write!(f, "{class}xx"),
        }
    }
}

/// `[upstreams.outlier-detection]`: passive checks, which eject a server
/// that fails requests in a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutlierDetection {
    /// `enabled`; default true.
    pub enabled: bool,
    /// `consecutive-failures`: failures in a row that eject a server, 1
    /// to 1000; default 5.
    pub consecutive_failures: u32,
    /// `base-ejection`: the first ejection's length, 100ms to 1h; each
    /// later one is this times the times ejected, capped at
    /// `max_ejection`. Default 30s.
    pub base_ejection: Duration,
    /// `max-ejection`: the longest ejection, at least `base_ejection`;
    /// default 300s.
    pub max_ejection: Duration,
    /// `max-ejected-percent`: the most servers of the upstream ejected at
    /// once, 0 to 100 percent; default 50. One server may always be
    /// ejected when the upstream has two or more.
    pub max_ejected_percent: u8,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            enabled: true,
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

/// `[upstreams.tls]`: how the gateway connects to an upstream's servers
/// over TLS. Paths are kept as written, like `jwks-file`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamTls {
    /// `ca`: a PEM bundle of the CAs server certificates must chain to;
    /// `None` = the system roots.
    pub ca: Option<PathBuf>,
    /// `server-name`, lower-case: a DNS name (sent as SNI when `sni`) or an
    /// IP address, that the server's certificate must match; `None` = the
    /// address of the server connected to (verified as an IP SAN).
    pub server_name: Option<String>,
    /// `verify`: whether server certificates are verified; default true.
    /// False loads with a warning.
    pub verify: bool,
    /// `client-cert`: a PEM certificate chain presented to the servers;
    /// always set together with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// `client-key`: the private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// `sni`: whether SNI is sent (only ever for a DNS `server_name`);
    /// default true.
    pub sni: bool,
}

/// One entry of `servers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Server {
    /// `IP:port`, or a DNS name and port that the engine resolves.
    pub address: ServerAddress,
    /// Relative share of traffic, 1 when written as a plain string.
    pub weight: NonZeroU32,
    /// `max-connections` of this server, overriding the upstream's.
    pub max_connections: Option<NonZeroU32>,
    /// `backup`: sent traffic only while no primary (non-backup) server
    /// is available; default false.
    pub backup: bool,
}

/// Where a server is: an address, or a DNS name whose every address is a
/// server of the upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddress {
    /// `"IP:port"` (`"[v6]:port"` for IPv6).
    Ip(SocketAddr),
    /// `"host:port"`: a DNS name, lower-case, and a port.
    Name {
        /// The name, lower-case: letters, digits, `-` and `.`.
        host: String,
        /// The port, never 0.
        port: u16,
    },
}

impl ServerAddress {
    /// The address, when it is one rather than a name.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            ServerAddress::Ip(addr) => Some(*addr),
            ServerAddress::Name { .. } => None,
        }
    }
}

impl fmt::Display for ServerAddress {
    /// As written in the config: `10.0.0.1:80`, `[::1]:80` or
    /// `app.internal:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Ip(addr) => addr.fmt(f),
            ServerAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
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
    /// `upstream`, `[routes.respond]` or `[routes.ai]`.
    pub action: Action,
    /// `host-header`: the `Host` sent upstream instead of the client's;
    /// only on an [`Action::Upstream`] route.
    pub host_header: Option<String>,
    /// `[routes.limits]`, defaulting to the global `[limits]`.
    pub limits: RouteLimits,
    /// `auth`: indexes into `Config::authenticators`, tried in this order;
    /// empty lets every request through without a consumer.
    pub auth: Vec<usize>,
    /// `allow-groups`: when not empty, only consumers in one of these
    /// groups pass (403 otherwise). Never set without `auth`.
    pub allow_groups: Vec<String>,
    /// `forward-credentials`: whether the credentials that authenticated a
    /// request are sent upstream; default false (they are removed).
    pub forward_credentials: bool,
    /// `consumer-header`: the request header, lower-case, that carries the
    /// consumer's name upstream; default `x-consumer`.
    pub consumer_header: String,
    /// `rate-limit-headers`: whether responses carry `RateLimit` headers
    /// for this route's rate limits; default false.
    pub rate_limit_headers: bool,
    /// `consumer-metrics`: count this route's requests per consumer in
    /// `/metrics` (a `consumer` label, for the first
    /// [`Route::MAX_CONSUMER_LABELS`] consumers in config order; the rest
    /// share `other`); default false. Only on routes with `auth`.
    pub consumer_metrics: bool,
    /// `[[routes.rate-limits]]`, all of which a request must pass (429
    /// otherwise); no two alike.
    pub rate_limits: Vec<RateLimit>,
    /// `[routes.concurrency]`: a bound on requests in flight.
    pub concurrency: Option<ConcurrencyLimit>,
    /// `ip-allow` and `ip-deny`, checked after the global `[ip-rules]`.
    pub ip_rules: IpRules,
    /// `[routes.cache]`: `Some` when the table is present and not
    /// `enabled = false`; never set on a [`Action::Respond`] or
    /// [`Action::Ai`] route.
    pub cache: Option<RouteCache>,
    /// `redirect-https`: whether a request that arrived over plain HTTP is
    /// answered 308 to the same URL with `https`; default false.
    pub redirect_https: bool,
    /// `https-port`: the port written in that redirect's `Location`;
    /// `None` writes none (443). Only ever set with `redirect_https`.
    pub https_port: Option<u16>,
    /// `hsts`: the `Strict-Transport-Security` value (RFC 6797) added to
    /// responses sent over TLS, as written: `max-age=N`, then optionally
    /// `includeSubDomains` and `preload`.
    pub hsts: Option<String>,
    /// `require-client-cert`: whether requests without a verified client
    /// certificate get 403; default false.
    pub require_client_cert: bool,
    /// `access-log`: whether this route's requests are written to the
    /// access log (when `[access-log]` is enabled); default true.
    pub access_log: bool,
    /// `[routes.retry]`: when a request is sent again; without the table
    /// (and always on a [`Action::Respond`] route), [`Retry::default`].
    /// On an [`Action::Ai`] route it governs the tries within one
    /// provider's upstream.
    pub retry: Retry,
    /// Header rules, the path and query sent upstream, and how the
    /// gateway's own errors read.
    pub transform: RouteTransform,
    /// `[routes.cors]`: answering browsers' cross-origin requests.
    pub cors: Option<Cors>,
    /// `upgrades` with `tunnel-idle-timeout` and `max-tunnels`: `Some`
    /// when the route passes at least one protocol upgrade; only on an
    /// [`Action::Upstream`] route.
    pub tunnels: Option<Tunnels>,
    /// `[routes.compression]`: `Some` when the table is present and not
    /// `enabled = false`.
    pub compression: Option<Compression>,
}

impl Route {
    /// Consumers a `consumer-metrics` route counts by name; the rest are
    /// counted together as `other`, so a config with thousands of
    /// consumers cannot make thousands of series per route.
    pub const MAX_CONSUMER_LABELS: usize = 64;
}

/// `[routes.cache]` of a route that caches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteCache {
    /// `size`: the budget of the route's own store, with the bounds of
    /// [`Cache::size`]; `None` = the shared store.
    pub size: Option<usize>,
    /// `max-entry-size`, resolved (the route's value, else
    /// [`Cache::max_entry_size`]): the largest body stored. At least 1 byte
    /// and at most half of the store the route uses.
    pub max_entry_size: usize,
    /// `sort-query`: whether query parameters are sorted in the key, so
    /// `?a=1&b=2` and `?b=2&a=1` share an entry; default false.
    pub sort_query: bool,
    /// `ignore-params`: query parameter names left out of the key, as
    /// written (compared with the raw query), none twice.
    pub ignore_params: Vec<String>,
    /// `key-headers`: request header names, lower-case, whose values are
    /// added to the key; at most 8, none twice, never `host` (always in
    /// the key).
    pub key_headers: Vec<String>,
    /// `range-fetch-max`, resolved (default: `max_entry_size`): on a miss
    /// for a Range request, the whole representation is fetched, stored
    /// and the range answered from it when its length is at most this;
    /// a larger one (or 0 here) lets the origin answer the range itself.
    /// At most `max_entry_size`.
    pub range_fetch_max: usize,
    /// `serve-stale-on-error`: whether a stale stored response answers
    /// when the origin fails (5xx, a connection error, a connection closed
    /// before a response) even without `stale-if-error`; never past
    /// `must-revalidate`, `proxy-revalidate` or `no-cache`. Default false.
    pub serve_stale_on_error: bool,
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
    /// `body-idle-timeout` for this route: reading the client's request
    /// body and, when it proxies, the upstream's response body.
    pub body_idle_timeout: Duration,
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
    /// Serve the AI gateway's models (`[routes.ai]`).
    Ai(AiRoute),
    /// Answer with a redirect (`[routes.redirect]`).
    Redirect(Redirect),
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

/// `[client-ip]`: how the client's address is found.
///
/// The client address is the socket peer, unless the peer is one of
/// `trusted_proxies`; then `X-Forwarded-For` is read from the right,
/// skipping trusted addresses, and the first untrusted one is the client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ClientIp {
    /// `trusted-proxies`: networks whose `X-Forwarded-For` is believed; no
    /// network twice, none with host bits set. Default empty: the peer is
    /// always the client.
    pub trusted_proxies: Vec<IpNet>,
}

/// Address rules: `[ip-rules]` globally, `ip-allow`/`ip-deny` per route.
///
/// `deny` wins; when `allow` is not empty, only addresses in it pass.
/// A refused request gets 403.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IpRules {
    /// `allow`: empty allows every address not denied.
    pub allow: Vec<IpNet>,
    /// `deny`: always refused.
    pub deny: Vec<IpNet>,
}

/// `[[consumers]]`: a caller the gateway can authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Consumer {
    /// `name`, unique among consumers; what `consumer-header` carries and
    /// a JWT's `consumer-claim` must equal.
    pub name: String,
    /// `groups`, in file order, none twice; matched by `allow-groups`.
    pub groups: Vec<String>,
    /// `api-keys`; no key belongs to two consumers.
    pub api_keys: Vec<ApiKey>,
    /// `basic`: a username and password hash for HTTP Basic.
    pub basic: Option<BasicCredential>,
}

/// One API key, held as its SHA-256: a request's key is hashed and looked
/// up, so the config never needs to hold the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKey {
    /// SHA-256 of the key's bytes.
    pub sha256: [u8; 32],
    /// Written as `plain:KEY` rather than `sha256:HEX` (a warning). Output
    /// always writes the hash, so this reads back as false.
    pub plain: bool,
}

/// `basic = { username = "...", password-hash = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BasicCredential {
    /// `username`: 1 to 64 visible ASCII characters, no `:`; unique among
    /// consumers.
    pub username: String,
    /// `password-hash`: a PHC string (`$argon2id$...`, `$scrypt$...`) or a
    /// bcrypt hash (`$2b$...`), its shape checked, its content verified by
    /// the engine.
    pub password_hash: String,
}

/// `[[authenticators]]`: one way to find a request's consumer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authenticator {
    /// `name`, unique among authenticators; routes list it in `auth`.
    pub name: String,
    /// `type` and the keys that belong to it.
    pub kind: AuthKind,
}

/// The `type` of an authenticator, with its settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// `type = "api-key"`: a key from a header or a query parameter,
    /// matched against the consumers' `api-keys`.
    ApiKey {
        /// `header`, lower-case; default `x-api-key`. Tried first.
        header: String,
        /// `query`: a query parameter also holding the key, if any.
        query: Option<String>,
    },
    /// `type = "basic"`: HTTP Basic (RFC 7617) against the consumers'
    /// `basic` credentials.
    Basic {
        /// `realm` sent in `WWW-Authenticate`; default `ringway`.
        realm: String,
        /// `cache-size`: successful verifications kept per worker, since a
        /// password hash is slow by design; default 1024, 0 disables.
        cache_size: usize,
        /// `cache-ttl`: how long a cached verification counts; default 60s.
        cache_ttl: Duration,
    },
    /// `type = "jwt"`: a bearer JSON Web Token (RFC 7519).
    Jwt(JwtSettings),
}

/// The settings of a `type = "jwt"` authenticator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JwtSettings {
    /// `algorithms` accepted in a token's `alg`, never empty, none twice,
    /// either all HMAC or all asymmetric.
    pub algorithms: Vec<JwtAlgorithm>,
    /// `keys`: secrets for HMAC algorithms, PEM public keys otherwise.
    pub keys: Vec<JwtKey>,
    /// `jwks-file`: a JSON Web Key Set with more public keys; never set
    /// with HMAC algorithms. At least one of `keys` and this is set.
    pub jwks_file: Option<PathBuf>,
    /// `issuer`: the `iss` a token must carry, if set.
    pub issuer: Option<String>,
    /// `audience`: when not empty, a token's `aud` must hold one of these.
    pub audience: Vec<String>,
    /// `leeway` for `exp` and `nbf`; default 30s, at most 10m.
    pub leeway: Duration,
    /// `consumer-claim`: the claim holding the consumer's name; default
    /// `sub`.
    pub consumer_claim: String,
    /// `cache-size`: verified tokens kept per worker; default 4096, 0
    /// disables.
    pub cache_size: usize,
}

/// A JWT signature algorithm (RFC 7518 §3.1, RFC 8037 for EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// ECDSA with P-384 and SHA-384.
    Es384,
    /// EdDSA (Ed25519).
    EdDsa,
}

impl JwtAlgorithm {
    /// Every algorithm, in the order the config documents them.
    pub const ALL: [JwtAlgorithm; 12] = [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::Hs384,
        JwtAlgorithm::Hs512,
        JwtAlgorithm::Rs256,
        JwtAlgorithm::Rs384,
        JwtAlgorithm::Rs512,
        JwtAlgorithm::Ps256,
        JwtAlgorithm::Ps384,
        JwtAlgorithm::Ps512,
        JwtAlgorithm::Es256,
        JwtAlgorithm::Es384,
        JwtAlgorithm::EdDsa,
    ];

    /// The name used in the config and in a token's `alg`, e.g. `"HS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Hs384 => "HS384",
            JwtAlgorithm::Hs512 => "HS512",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Rs384 => "RS384",
            JwtAlgorithm::Rs512 => "RS512",
            JwtAlgorithm::Ps256 => "PS256",
            JwtAlgorithm::Ps384 => "PS384",
            JwtAlgorithm::Ps512 => "PS512",
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::Es384 => "ES384",
            JwtAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Whether this is an HMAC algorithm, verified with a shared secret
    /// rather than a public key.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::Hs256 | JwtAlgorithm::Hs384 | JwtAlgorithm::Hs512
        )
    }
}

/// One entry of a JWT authenticator's `keys`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JwtKey {
    /// `kid`: when set, only tokens whose header names this `kid` are
    /// checked against this key; unique within the authenticator.
    pub kid: Option<String>,
    /// `secret` or `pem`.
    pub material: KeyMaterial,
}

/// Key material as written; the engine parses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyMaterial {
    /// `secret`: an HMAC secret of at least 32 bytes.
    Secret(String),
    /// `pem`: a PEM public key or certificate (`-----BEGIN ...`).
    Pem(String),
}

/// `[[routes.rate-limits]]`: a token bucket per key.
///
/// Hash and Eq cover the whole definition, so the engine can carry a
/// bucket table over a reload exactly when its route keeps the same limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// `key`: what requests are counted by.
    pub key: LimitKey,
    /// The `N` of `rate = "N/period"`, 1 to 1e9: tokens added per period.
    pub count: u64,
    /// The period of `rate`: 1s, 1m, 1h or 1d.
    pub period: Duration,
    /// `burst`: the bucket's size, 1 to 1e9; default `count`.
    pub burst: u64,
    /// `max-keys`: most keys tracked per worker, 1 to 1e7; default 100000.
    pub max_keys: usize,
}

/// `[routes.concurrency]`: a bound on requests in flight per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConcurrencyLimit {
    /// `key`: what requests are counted by.
    pub key: LimitKey,
    /// `max`: requests in flight per key, 1 to 1e6.
    pub max: u64,
    /// `status` for a request over the bound: 429 or 503 (default).
    pub status: u16,
    /// `max-keys`: most keys tracked per worker, 1 to 1e7; default 100000.
    pub max_keys: usize,
}

/// What a limit counts requests by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// `"route"`: one count for the whole route.
    Route,
    /// `"client-ip"`: per client address (see [`ClientIp`]).
    ClientIp,
    /// `"consumer"`: per authenticated consumer; needs `auth`.
    Consumer,
    /// `"header:NAME"`: per value of a request header, held lower-case;
    /// requests without it share one count.
    Header(String),
}

/// `[routes.retry]`: when and how a failed request is tried again, on
/// another server where the upstream has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Retry {
    /// `attempts`: tries in all, the first included, 1 to 10; 1 = no
    /// retry. Default 2.
    pub attempts: u8,
    /// `on`: the failures that are retried.
    pub on: RetryOn,
    /// `per-try-timeout`: each try's time to the response head; `None` =
    /// the route's `response-head-timeout`.
    pub per_try_timeout: Option<Duration>,
    /// `backoff`: the base of the wait before a retry, 0s to 10s; default
    /// 25ms.
    pub backoff: Duration,
    /// `backoff-max`: the longest wait before a retry, at least `backoff`;
    /// default 250ms.
    pub backoff_max: Duration,
    /// `budget-percent`: retries in flight at most this share, 0 to 100,
    /// of the upstream's requests in flight; default 20.
    pub budget_percent: u8,
    /// `budget-min`: retries allowed in flight whatever the share, 0 to
    /// 10000; default 3.
    pub budget_min: u32,
    /// `retry-non-idempotent`: whether requests whose method is not
    /// idempotent (RFC 9110 §9.2.2) are retried after they may have
    /// reached a server; default false. A connect failure is retried for
    /// every method, since nothing was sent.
    pub retry_non_idempotent: bool,
    /// `retry-buffer`: request bodies up to this many bytes are kept so
    /// they can be sent again, 0 to 16MiB; default 64KiB.
    pub retry_buffer: u64,
}

impl Default for Retry {
    /// A route without `[routes.retry]`: one more try, on another server,
    /// after a connect failure only (nothing was sent, so it is safe for
    /// every method).
    fn default() -> Self {
        Retry {
            attempts: 2,
            on: RetryOn {
                connect_failure: true,
                ..RetryOn::NONE
            },
            per_try_timeout: None,
            backoff: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
            budget_percent: 20,
            budget_min: 3,
            retry_non_idempotent: false,
            retry_buffer: 64 << 10,
        }
    }
}

/// A retry table's `on`: each failure kind that is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RetryOn {
    /// `"connect-failure"`: the connection was refused, unreachable or
    /// timed out.
    pub connect_failure: bool,
    /// `"reset-before-response"`: the connection closed or reset before a
    /// response head arrived.
    pub reset_before_response: bool,
    /// `"timeout"`: no response head within the try's timeout.
    pub timeout: bool,
    /// `"502"`: the server answered 502.
    pub status_502: bool,
    /// `"503"`: the server answered 503.
    pub status_503: bool,
    /// `"504"`: the server answered 504.
    pub status_504: bool,
    /// `"retriable-4xx"`: the server answered 409 (RFC 9110 §15.5.10) or
    /// 429 (RFC 6585 §4); retried for idempotent requests only.
    pub retriable_4xx: bool,
}

impl RetryOn {
    /// Nothing is retried.
    pub const NONE: RetryOn = RetryOn {
        connect_failure: false,
        reset_before_response: false,
        timeout: false,
        status_502: false,
        status_503: false,
        status_504: false,
        retriable_4xx: false,
    };

    /// Every name `on` accepts, in the order the config documents them.
    pub const NAMES: [&'static str; 7] = [
        "connect-failure",
        "reset-before-response",
        "timeout",
        "502",
        "503",
        "504",
        "retriable-4xx",
    ];

    /// The flag `name` (one of [`RetryOn::NAMES`]) stands for.
    pub fn flag(&self, name: &str) -> Option<bool> {
        let mut copy = *self;
        copy.flag_mut(name).map(|flag| *flag)
    }

    /// The flag `name` stands for, to set it.
    pub fn flag_mut(&mut self, name: &str) -> Option<&mut bool> {
        match name {
            "connect-failure" => Some(&mut self.connect_failure),
            "reset-before-response" => Some(&mut self.reset_before_response),
            "timeout" => Some(&mut self.timeout),
            "502" => Some(&mut self.status_502),
            "503" => Some(&mut self.status_503),
            "504" => Some(&mut self.status_504),
            "retriable-4xx" => Some(&mut self.retriable_4xx),
            _ => None,
        }
    }

    /// The names of the flags set, in [`RetryOn::NAMES`] order.
    pub fn names(&self) -> Vec<&'static str> {
        RetryOn::NAMES
            .into_iter()
            .filter(|name| self.flag(name) == Some(true))
            .collect()
    }
}
