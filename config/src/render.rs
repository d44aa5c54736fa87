//! [`Config`] → config text: JSON for the admin API, TOML for files.
//!
//! What is written is the effective config, not what some file said: every
//! key, defaults filled in, default names (`route-3`) made explicit, each
//! route's limits resolved against `[limits]`. That is what an operator
//! asking "what is running?" needs, and it reads back as an equal `Config`,
//! which the tests hold for both formats. Durations and sizes are written in
//! the largest unit that holds them exactly (`"90s"`, `"4KiB"`).
//!
//! A few keys are left out rather than written, because the schema has no
//! way to say "none" (JSON `null` is refused on input): a route without
//! `host` or `host-header`, an admin API without `token`, an authenticator
//! without `query`, `issuer` or `jwks-file`, a consumer without `basic`, a
//! route without `[routes.concurrency]`, a route cache without a `size` of
//! its own, an upstream or server without `max-connections`, an upstream
//! without `[upstreams.health-check]`, a `[resolver]` without
//! `nameservers` (the system's), a retry table without `per-try-timeout`.
//! A balance table writes `key` only for `"hash"` and `ewma-decay` only for
//! `"ewma"`. A route that does not cache has no `[routes.cache]`, also when
//! its file said `enabled = false`: both read back the same. Keys a route
//! may not set are left out too: upstream timeouts on a route answered by
//! `[routes.respond]`, `forward-credentials` and `consumer-header` on a
//! route without `auth` or upstream, `rate-limit-headers` on a route
//! without rate limits. A route's `access-log` is written only when false,
//! so routes read as they did before the access log existed.
//!
//! TLS is written only where it is used: `[listeners.tls]` and
//! `[upstreams.tls]` when present (then with every key, defaults filled
//! in), a route's `redirect-https` and `require-client-cert` only when
//! true, `https-port` and `hsts` only when set, so a config without TLS
//! reads as it did before TLS existed. Two keys whose empty value means
//! "the defaults" are left out when empty, since writing them empty would
//! not read back: `cipher-suites` and a certificate's `names`. Paths are
//! written as held, which is as the file wrote them.
//!
//! A route's transforms (header rules, `strip-prefix` when true,
//! `rewrite-prefix`, `rewrite`, `[routes.query]`, `error-format`,
//! `[[routes.error-bodies]]`, `[routes.redirect]`) are written only when
//! set, with values as their templates were written; a listener always
//! writes its `error-format`.
//!
//! The AI sections are left out when empty, so a config without them
//! reads as it did before they existed; otherwise they are written with
//! every key but those that have no
//! "none": a provider's `query`, `key-header` and `timeout`, a model's
//! `max-tokens-default`. A provider's `base-path` is written resolved, a
//! route's `[routes.ai] models` as the full list it serves (all models
//! when the file left it out). A provider key is written as its source
//! (`"env:NAME"`, `"file:PATH"`) or, inline, as the key itself, in the
//! table form only when it has limits.
//!
//! An API key is always written as `sha256:` and its hash, also when the
//! file said `plain:`, so the output never holds a key; it then reads back
//! with `ApiKey::plain` false and without that key's warning. Warnings are
//! not written at all. With `redact_secrets`, JWT secrets, password hashes,
//! API key hashes and inline AI provider keys are replaced like the admin
//! token.
//!
//! A route's `[routes.cors]` is written when present (see `render::cors`).
//!
//! One set of serde structs mirrors the schema and serves both formats, so
//! TOML output costs one call to the `toml` serializer.

mod cors;

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use crate::model::{
    Action, AiKey, AiModel, AiProvider, AiRoute, ApiKey, AuthKind, Authenticator, BalancePolicy,
    CheckKind, ClientAuthMode, Config, ConnectionBalance, Consumer, Driver, ErrorFormat,
    HeaderRules, HealthCheck, HostMatch, IpRules, KeyMaterial, LimitKey, ListenerTls, LogTarget,
    PathMatch, PathRewrite, Retry, SecretSource, StatusMatch, Template, TlsVersion, UnknownSni,
    Upstream, UpstreamTls, Workers,
};
use crate::units::{format_duration, format_rate, format_size};

/// What a redacted secret is written as. Not a valid token (too short), so
/// redacted output cannot be read back as a config by mistake.
const REDACTED: &str = "<redacted>";

pub(crate) fn json(config: &Config, redact_secrets: bool) -> String {
    serde_json::to_string_pretty(&Document::new(config, redact_secrets)).expect(
        "the document holds only strings, integers, booleans, maps with string keys and arrays",
    )
}

pub(crate) fn toml(config: &Config) -> String {
    toml::to_string_pretty(&Document::new(config, false)).expect(
        "the document holds only strings, integers, booleans, tables and arrays, none of them empty keys or nulls",
    )
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Document<'a> {
    workers: WorkersOut,
    driver: &'static str,
    connection_balance: &'static str,
    drain_timeout: String,
    limits: LimitsOut,
    cache: CacheOut<'a>,
    metrics: MetricsOut,
    access_log: AccessLogOut,
    admin: AdminOut<'a>,
    client_ip: ClientIpOut,
    ip_rules: IpRulesOut,
    resolver: ResolverOut,
    listeners: Vec<ListenerOut<'a>>,
    upstreams: Vec<UpstreamOut<'a>>,
    consumers: Vec<ConsumerOut<'a>>,
    authenticators: Vec<AuthenticatorOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ai_providers: Vec<AiProviderOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ai_models: Vec<AiModelOut<'a>>,
    routes: Vec<RouteOut<'a>>,
}

/// Scalars before tables, the order TOML needs.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AiProviderOut<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    upstream: String,
    base_path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_header: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    keys: Vec<AiKeyOut>,
    /// Left out when empty, as it reads back the same.
    #[serde(
        serialize_with = "header_map",
        skip_serializing_if = "<[(String, String)]>::is_empty"
    )]
    headers: &'a [(String, String)],
}

/// A key's source alone, or the table form when it has limits.
#[derive(Serialize)]
#[serde(untagged)]
enum AiKeyOut {
    Source(String),
    Table(AiKeyTableOut),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AiKeyTableOut {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_per_minute: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AiModelOut<'a> {
    name: &'a str,
    strategy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens_default: Option<u32>,
    allow_groups: &'a [String],
    targets: Vec<AiTargetOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AiTargetOut {
    provider: String,
    model: String,
    weight: u32,
    priority: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AiRouteOut {
    models: Vec<String>,
    messages: bool,
    max_response_size: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct MetricsOut {
    enabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClientIpOut {
    trusted_proxies: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct IpRulesOut {
    allow: Vec<String>,
    deny: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ConsumerOut<'a> {
    name: &'a str,
    groups: &'a [String],
    api_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic: Option<BasicOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct BasicOut<'a> {
    username: &'a str,
    password_hash: &'a str,
}

/// One struct for every `type`; the keys of other types stay `None`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AuthenticatorOut<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    realm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithms: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leeway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_claim: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_ttl: Option<String>,
    /// Last: in TOML an array of tables, which must follow every value.
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<JwtKeyOut<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct JwtKeyOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pem: Option<&'a str>,
}

/// `"auto"` or a number.
#[derive(Serialize)]
#[serde(untagged)]
enum WorkersOut {
    Auto(&'static str),
    Count(usize),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct LimitsOut {
    max_target_length: String,
    max_head_size: String,
    max_headers: usize,
    max_body_size: String,
    header_read_timeout: String,
    keepalive_timeout: String,
    connect_timeout: String,
    response_head_timeout: String,
    body_idle_timeout: String,
    send_timeout: String,
    upstream_idle_timeout: String,
    upstream_max_idle: usize,
    max_connections: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct CacheOut<'a> {
    size: String,
    max_entry_size: String,
    lock_timeout: String,
    targeted_field: &'a str,
    forward_targeted: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AccessLogOut {
    enabled: bool,
    path: String,
    format: &'static str,
    sample: f64,
    query: bool,
    queue: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AdminOut<'a> {
    enabled: bool,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ListenerOut<'a> {
    name: &'a str,
    address: String,
    encoded_slashes: &'static str,
    underscores_in_headers: &'static str,
    trust_request_id: bool,
    error_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<ListenerTlsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_headers: Option<HeaderRulesOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_headers: Option<HeaderRulesOut<'a>>,
}

/// Scalars before tables, the order TOML needs.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ListenerTlsOut<'a> {
    unknown_sni: &'static str,
    min_version: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    cipher_suites: &'a [String],
    handshake_timeout: String,
    session_cache: usize,
    session_tickets: bool,
    ticket_lifetime: String,
    certificates: Vec<CertificateOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_auth: Option<ClientAuthOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct CertificateOut<'a> {
    cert: String,
    key: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    names: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClientAuthOut<'a> {
    mode: &'static str,
    ca: String,
    subject_header: &'a str,
}

/// `hosts-file` is written `""` for none, as it is read.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ResolverOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers: Option<Vec<String>>,
    timeout: String,
    hosts_file: String,
}

/// Scalars before tables, the order TOML needs.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UpstreamOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<u32>,
    queue_size: u32,
    queue_timeout: String,
    slow_start: String,
    resolve: &'static str,
    resolve_interval: String,
    fail_open: bool,
    servers: Vec<ServerOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<UpstreamTlsOut<'a>>,
    balance: BalanceOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_check: Option<HealthCheckOut<'a>>,
    outlier_detection: OutlierOut,
}

/// `key` only for `"hash"`, `ewma-decay` only for `"ewma"`: validation
/// refuses them elsewhere.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct BalanceOut {
    policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ewma_decay: Option<String>,
}

/// The `type = "http"` keys stay `None` for `"tcp"`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct HealthCheckOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect: Option<Vec<StatusOut>>,
    interval: String,
    timeout: String,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

/// `404` or `"4xx"`, as written.
#[derive(Serialize)]
#[serde(untagged)]
enum StatusOut {
    Code(u16),
    Class(String),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutlierOut {
    enabled: bool,
    consecutive_failures: u32,
    base_ejection: String,
    max_ejection: String,
    max_ejected_percent: u8,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UpstreamTlsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_key: Option<String>,
    sni: bool,
}

/// Always the table form, so every server's weight is explicit.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ServerOut {
    address: String,
    weight: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<u32>,
    backup: bool,
}

/// Scalars before tables, the order TOML needs.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RouteOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_prefix: Option<&'a str>,
    methods: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_header: Option<&'a str>,
    auth: Vec<String>,
    allow_groups: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    forward_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_header: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit_headers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_metrics: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_https: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    https_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hsts: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_client_cert: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_log: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strip_prefix: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rewrite_prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upgrades: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel_idle_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tunnels: Option<u32>,
    ip_allow: Vec<String>,
    ip_deny: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    respond: Option<RespondOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ai: Option<AiRouteOut>,
    limits: RouteLimitsOut,
    rate_limits: Vec<RateLimitOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<ConcurrencyOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<RouteCacheOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<RetryOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<RedirectOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_headers: Option<HeaderRulesOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_headers: Option<HeaderRulesOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rewrite: Option<RewriteOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<QueryOut<'a>>,
    #[serde(skip_serializing_if = "<[ErrorBodyOut<'_>]>::is_empty")]
    error_bodies: Vec<ErrorBodyOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cors: Option<cors::CorsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<CompressionOut<'a>>,
}

/// Header rules with every key, values written as their templates were.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct HeaderRulesOut<'a> {
    remove: &'a [String],
    #[serde(serialize_with = "header_map")]
    rename: &'a [(String, String)],
    #[serde(serialize_with = "template_map")]
    set: &'a [(String, Template)],
    #[serde(serialize_with = "template_map")]
    add_if_absent: &'a [(String, Template)],
    #[serde(serialize_with = "template_map")]
    add: &'a [(String, Template)],
}

impl<'a> HeaderRulesOut<'a> {
    fn new(h: &'a HeaderRules) -> Self {
        HeaderRulesOut {
            remove: &h.remove,
            rename: &h.rename,
            set: &h.set,
            add_if_absent: &h.add_if_absent,
            add: &h.add,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RewriteOut<'a> {
    regex: &'a str,
    replace: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct QueryOut<'a> {
    remove: &'a [String],
    #[serde(serialize_with = "template_map")]
    add: &'a [(String, Template)],
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RedirectOut<'a> {
    status: u16,
    location: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ErrorBodyOut<'a> {
    status: u16,
    content_type: &'a str,
    body: &'a str,
}

/// Name → template pairs as a map of the templates' text, in stored order.
fn template_map<S: Serializer>(pairs: &&[(String, Template)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(name, t)| (name, &t.source)))
}

/// Written with every key for a route that compresses; a route that does
/// not has no `[routes.compression]`, also when its file said
/// `enabled = false`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct CompressionOut<'a> {
    enabled: bool,
    algorithms: Vec<&'static str>,
    content_types: &'a [String],
    min_size: String,
    gzip_level: u8,
    brotli_level: u8,
    zstd_level: u8,
}

/// Written for every route that proxies, with every key, so it shows what
/// a route without the table does too.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RetryOut {
    attempts: u8,
    on: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_try_timeout: Option<String>,
    backoff: String,
    backoff_max: String,
    budget_percent: u8,
    budget_min: u32,
    retry_non_idempotent: bool,
    retry_buffer: String,
}

/// `max-entry-size` is written resolved, so a route keeps its value even
/// if `[cache]` changes later.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RouteCacheOut<'a> {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<String>,
    max_entry_size: String,
    sort_query: bool,
    ignore_params: &'a [String],
    key_headers: &'a [String],
    range_fetch_max: String,
    serve_stale_on_error: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RateLimitOut {
    key: String,
    rate: String,
    burst: u64,
    max_keys: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ConcurrencyOut {
    key: String,
    max: u64,
    status: u16,
    max_keys: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RespondOut<'a> {
    status: u16,
    #[serde(serialize_with = "header_map")]
    headers: &'a [(String, String)],
    body: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RouteLimitsOut {
    max_body_size: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_head_timeout: Option<String>,
    body_idle_timeout: String,
}

/// Headers as a map in their stored order, which is the order they are read
/// back in, so the round trip keeps `Responder::headers` equal.
fn header_map<S: Serializer>(headers: &&[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(headers.iter().map(|(name, value)| (name, value)))
}

impl<'a> Document<'a> {
    fn new(c: &'a Config, redact_secrets: bool) -> Self {
        let l = &c.limits;
        Document {
            workers: match c.workers {
                Workers::Auto => WorkersOut::Auto("auto"),
                Workers::Count(n) => WorkersOut::Count(n.get()),
            },
            driver: match c.driver {
                Driver::IoUring => "io_uring",
                Driver::Epoll => "epoll",
            },
            connection_balance: match c.connection_balance {
                ConnectionBalance::Hash => "hash",
                ConnectionBalance::Cpu => "cpu",
            },
            drain_timeout: format_duration(c.drain_timeout),
            limits: LimitsOut {
                max_target_length: format_size(l.max_target_len as u64),
                max_head_size: format_size(l.max_head_size as u64),
                max_headers: l.max_headers,
                max_body_size: format_size(l.max_body_size),
                header_read_timeout: format_duration(l.header_read_timeout),
                keepalive_timeout: format_duration(l.keepalive_timeout),
                connect_timeout: format_duration(l.connect_timeout),
                response_head_timeout: format_duration(l.response_head_timeout),
                body_idle_timeout: format_duration(l.body_idle_timeout),
                send_timeout: format_duration(l.send_timeout),
                upstream_idle_timeout: format_duration(l.upstream_idle_timeout),
                upstream_max_idle: l.upstream_max_idle,
                max_connections: l.max_connections,
            },
            cache: CacheOut {
                size: format_size(c.cache.size as u64),
                max_entry_size: format_size(c.cache.max_entry_size as u64),
                lock_timeout: format_duration(c.cache.lock_timeout),
                targeted_field: &c.cache.targeted_field,
                forward_targeted: c.cache.forward_targeted,
            },
            metrics: MetricsOut {
                enabled: c.metrics.enabled,
            },
            access_log: AccessLogOut {
                enabled: c.access_log.enabled,
                path: match &c.access_log.path {
                    LogTarget::Stdout => "-".to_owned(),
                    LogTarget::File(p) => path(p),
                },
                format: c.access_log.format.as_str(),
                sample: c.access_log.sample.as_f64(),
                query: c.access_log.query,
                queue: c.access_log.queue,
            },
            admin: AdminOut {
                enabled: c.admin.enabled,
                address: c.admin.address.to_string(),
                token: c
                    .admin
                    .token
                    .as_deref()
                    .map(|t| if redact_secrets { REDACTED } else { t }),
            },
            listeners: c
                .listeners
                .iter()
                .map(|l| ListenerOut {
                    name: &l.name,
                    address: l.address.to_string(),
                    encoded_slashes: l.encoded_slashes.as_str(),
                    underscores_in_headers: l.underscores_in_headers.as_str(),
                    trust_request_id: l.trust_request_id,
                    error_format: l.error_format.as_str(),
                    tls: l.tls.as_ref().map(ListenerTlsOut::new),
                    request_headers: l.request_headers.as_ref().map(HeaderRulesOut::new),
                    response_headers: l.response_headers.as_ref().map(HeaderRulesOut::new),
                })
                .collect(),
            resolver: ResolverOut {
                nameservers: c
                    .resolver
                    .nameservers
                    .as_ref()
                    .map(|list| list.iter().map(ToString::to_string).collect()),
                timeout: format_duration(c.resolver.timeout),
                hosts_file: c
                    .resolver
                    .hosts_file
                    .as_deref()
                    .map_or_else(String::new, path),
            },
            upstreams: c.upstreams.iter().map(UpstreamOut::new).collect(),
            client_ip: ClientIpOut {
                trusted_proxies: networks(&c.client_ip.trusted_proxies),
            },
            ip_rules: IpRulesOut {
                allow: networks(&c.ip_rules.allow),
                deny: networks(&c.ip_rules.deny),
            },
            consumers: c
                .consumers
                .iter()
                .map(|consumer| ConsumerOut::new(consumer, redact_secrets))
                .collect(),
            authenticators: c
                .authenticators
                .iter()
                .map(|a| AuthenticatorOut::new(a, redact_secrets))
                .collect(),
            ai_providers: c
                .ai_providers
                .iter()
                .map(|p| AiProviderOut::new(p, c, redact_secrets))
                .collect(),
            ai_models: c.ai_models.iter().map(|m| AiModelOut::new(m, c)).collect(),
            routes: c.routes.iter().map(|r| RouteOut::new(r, c)).collect(),
        }
    }
}

/// A path as held, which is as the file wrote it.
fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

impl<'a> ListenerTlsOut<'a> {
    fn new(t: &'a ListenerTls) -> Self {
        ListenerTlsOut {
            unknown_sni: match t.unknown_sni {
                UnknownSni::Default => "default",
                UnknownSni::Reject => "reject",
            },
            min_version: match t.min_version {
                TlsVersion::Tls12 => "1.2",
                TlsVersion::Tls13 => "1.3",
            },
            cipher_suites: &t.cipher_suites,
            handshake_timeout: format_duration(t.handshake_timeout),
            session_cache: t.session_cache,
            session_tickets: t.session_tickets,
            ticket_lifetime: format_duration(t.ticket_lifetime),
            certificates: t
                .certificates
                .iter()
                .map(|c| CertificateOut {
                    cert: path(&c.cert),
                    key: path(&c.key),
                    names: &c.names,
                })
                .collect(),
            client_auth: t.client_auth.as_ref().map(|c| ClientAuthOut {
                mode: match c.mode {
                    ClientAuthMode::Required => "required",
                    ClientAuthMode::Optional => "optional",
                },
                ca: path(&c.ca),
                subject_header: &c.subject_header,
            }),
        }
    }
}

impl<'a> UpstreamOut<'a> {
    fn new(u: &'a Upstream) -> Self {
        let o = &u.outlier;
        UpstreamOut {
            name: &u.name,
            max_connections: u.max_connections.map(|n| n.get()),
            queue_size: u.queue_size,
            queue_timeout: format_duration(u.queue_timeout),
            slow_start: format_duration(u.slow_start),
            resolve: u.resolve.as_str(),
            resolve_interval: format_duration(u.resolve_interval),
            fail_open: u.fail_open,
            servers: u
                .servers
                .iter()
                .map(|s| ServerOut {
                    address: s.address.to_string(),
                    weight: s.weight.get(),
                    max_connections: s.max_connections.map(|n| n.get()),
                    backup: s.backup,
                })
                .collect(),
            tls: u.tls.as_ref().map(UpstreamTlsOut::new),
            balance: BalanceOut {
                policy: u.balance.policy.as_str(),
                key: match &u.balance.policy {
                    BalancePolicy::Hash(key) => Some(key.to_string()),
                    _ => None,
                },
                ewma_decay: (u.balance.policy == BalancePolicy::Ewma)
                    .then(|| format_duration(u.balance.ewma_decay)),
            },
            health_check: u.health_check.as_ref().map(HealthCheckOut::new),
            outlier_detection: OutlierOut {
                enabled: o.enabled,
                consecutive_failures: o.consecutive_failures,
                base_ejection: format_duration(o.base_ejection),
                max_ejection: format_duration(o.max_ejection),
                max_ejected_percent: o.max_ejected_percent,
            },
        }
    }
}

impl<'a> HealthCheckOut<'a> {
    fn new(h: &'a HealthCheck) -> Self {
        let mut out = HealthCheckOut {
            kind: "tcp",
            method: None,
            path: None,
            host: None,
            expect: None,
            interval: format_duration(h.interval),
            timeout: format_duration(h.timeout),
            healthy_threshold: h.healthy_threshold,
            unhealthy_threshold: h.unhealthy_threshold,
        };
        if let CheckKind::Http {
            method,
            path,
            host,
            expect,
        } = &h.kind
        {
            out.kind = "http";
            out.method = Some(method.as_str());
            out.path = Some(path);
            out.host = host.as_deref();
            out.expect = Some(
                expect
                    .iter()
                    .map(|m| match m {
                        StatusMatch::Code(code) => StatusOut::Code(*code),
                        StatusMatch::Class(_) => StatusOut::Class(m.to_string()),
                    })
                    .collect(),
            );
        }
        out
    }
}

impl RetryOut {
    fn new(r: &Retry) -> Self {
        RetryOut {
            attempts: r.attempts,
            on: r.on.names(),
            per_try_timeout: r.per_try_timeout.map(format_duration),
            backoff: format_duration(r.backoff),
            backoff_max: format_duration(r.backoff_max),
            budget_percent: r.budget_percent,
            budget_min: r.budget_min,
            retry_non_idempotent: r.retry_non_idempotent,
            retry_buffer: format_size(r.retry_buffer),
        }
    }
}

impl<'a> UpstreamTlsOut<'a> {
    fn new(t: &'a UpstreamTls) -> Self {
        UpstreamTlsOut {
            ca: t.ca.as_deref().map(path),
            server_name: t.server_name.as_deref(),
            verify: t.verify,
            client_cert: t.client_cert.as_deref().map(path),
            client_key: t.client_key.as_deref().map(path),
            sni: t.sni,
        }
    }
}

fn networks(list: &[ipnet::IpNet]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn limit_key(key: &LimitKey) -> String {
    match key {
        LimitKey::Route => "route".to_owned(),
        LimitKey::ClientIp => "client-ip".to_owned(),
        LimitKey::Consumer => "consumer".to_owned(),
        LimitKey::Header(name) => format!("header:{name}"),
    }
}

/// `sha256:` and the hash in lower-case hex.
fn api_key(key: &ApiKey) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in key.sha256 {
        write!(out, "{byte:02x}").expect("writing to a String cannot fail");
    }
    out
}

impl<'a> ConsumerOut<'a> {
    fn new(c: &'a Consumer, redact_secrets: bool) -> Self {
        let secret = |s: &'a str| if redact_secrets { REDACTED } else { s };
        ConsumerOut {
            name: &c.name,
            groups: &c.groups,
            api_keys: c
                .api_keys
                .iter()
                .map(|k| {
                    if redact_secrets {
                        REDACTED.to_owned()
                    } else {
                        api_key(k)
                    }
                })
                .collect(),
            basic: c.basic.as_ref().map(|b| BasicOut {
                username: &b.username,
                password_hash: secret(&b.password_hash),
            }),
        }
    }
}

impl<'a> AuthenticatorOut<'a> {
    fn new(a: &'a Authenticator, redact_secrets: bool) -> Self {
        let mut out = AuthenticatorOut {
            name: &a.name,
            kind: "",
            header: None,
            query: None,
            realm: None,
            cache_ttl: None,
            algorithms: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            leeway: None,
            consumer_claim: None,
            cache_size: None,
            keys: None,
        };
        match &a.kind {
            AuthKind::ApiKey { header, query } => {
                out.kind = "api-key";
                out.header = Some(header);
                out.query = query.as_deref();
            }
            AuthKind::Basic {
                realm,
                cache_size,
                cache_ttl,
            } => {
                out.kind = "basic";
                out.realm = Some(realm);
                out.cache_size = Some(*cache_size);
                out.cache_ttl = Some(format_duration(*cache_ttl));
            }
            AuthKind::Jwt(jwt) => {
                out.kind = "jwt";
                out.algorithms = Some(jwt.algorithms.iter().map(|a| a.as_str()).collect());
                out.keys = Some(
                    jwt.keys
                        .iter()
                        .map(|k| {
                            let (secret, pem) = match &k.material {
                                KeyMaterial::Secret(_) if redact_secrets => (Some(REDACTED), None),
                                KeyMaterial::Secret(s) => (Some(s.as_str()), None),
                                KeyMaterial::Pem(p) => (None, Some(p.as_str())),
                            };
                            JwtKeyOut {
                                kid: k.kid.as_deref(),
                                secret,
                                pem,
                            }
                        })
                        .collect(),
                );
                out.jwks_file = jwt
                    .jwks_file
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned());
                out.issuer = jwt.issuer.as_deref();
                out.audience = Some(&jwt.audience);
                out.leeway = Some(format_duration(jwt.leeway));
                out.consumer_claim = Some(&jwt.consumer_claim);
                out.cache_size = Some(jwt.cache_size);
            }
        }
        out
    }
}

impl<'a> RouteOut<'a> {
    fn new(route: &'a crate::model::Route, c: &'a Config) -> Self {
        let (path, path_prefix) = match &route.path {
            PathMatch::Exact(p) => (Some(p.as_str()), None),
            PathMatch::Prefix(p) => (None, Some(p.as_str())),
        };
        let redirect = match &route.action {
            Action::Redirect(r) => Some(RedirectOut {
                status: r.status,
                location: &r.location.source,
            }),
            _ => None,
        };
        let (upstream, respond, ai) = match &route.action {
            // Validation resolved the name to this index; a config edited
            // in code to point elsewhere is written as a name that fails
            // validation, rather than as another upstream's.
            Action::Upstream(i) => (
                Some(
                    c.upstreams
                        .get(*i)
                        .map_or_else(|| format!("upstreams[{i}]"), |u| u.name.clone()),
                ),
                None,
                None,
            ),
            Action::Respond(r) => (
                None,
                Some(RespondOut {
                    status: r.status,
                    headers: &r.headers,
                    body: &r.body,
                }),
                None,
            ),
            Action::Ai(ai) => (None, None, Some(AiRouteOut::new(ai, c))),
            Action::Redirect(_) => (None, None, None),
        };
        let t = &route.transform;
        let (strip_prefix, rewrite_prefix, rewrite) = match &t.path {
            None => (None, None, None),
            Some(PathRewrite::StripPrefix) => (Some(true), None, None),
            Some(PathRewrite::Prefix(p)) => (None, Some(p.as_str()), None),
            Some(PathRewrite::Regex { regex, replace }) => (
                None,
                None,
                Some(RewriteOut {
                    regex,
                    replace: &replace.source,
                }),
            ),
        };
        // An AI route proxies too, to its providers' upstreams.
        let proxies = upstream.is_some() || ai.is_some();
        let timeout = |d| proxies.then(|| format_duration(d));
        // The keys validation allows only with `auth` and an upstream.
        let consumer_keys = proxies && !route.auth.is_empty();
        let IpRules { allow, deny } = &route.ip_rules;
        RouteOut {
            name: &route.name,
            host: route.host.as_ref().map(|h| match h {
                HostMatch::Exact(host) => host.clone(),
                HostMatch::Suffix(suffix) => format!("*{suffix}"),
            }),
            path,
            path_prefix,
            methods: &route.methods,
            upstream,
            host_header: route.host_header.as_deref(),
            respond,
            ai,
            limits: RouteLimitsOut {
                max_body_size: format_size(route.limits.max_body_size),
                connect_timeout: timeout(route.limits.connect_timeout),
                response_head_timeout: timeout(route.limits.response_head_timeout),
                body_idle_timeout: format_duration(route.limits.body_idle_timeout),
            },
            // Like `upstream`, a name that resolves to another index (a
            // config edited in code) is written so that it fails to load.
            auth: route
                .auth
                .iter()
                .map(|&i| {
                    c.authenticators
                        .get(i)
                        .map_or_else(|| format!("authenticators[{i}]"), |a| a.name.clone())
                })
                .collect(),
            allow_groups: &route.allow_groups,
            forward_credentials: consumer_keys.then_some(route.forward_credentials),
            consumer_header: consumer_keys.then_some(route.consumer_header.as_str()),
            rate_limit_headers: (!route.rate_limits.is_empty()).then_some(route.rate_limit_headers),
            consumer_metrics: route.consumer_metrics.then_some(true),
            redirect_https: route.redirect_https.then_some(true),
            https_port: route.https_port,
            hsts: route.hsts.as_deref(),
            require_client_cert: route.require_client_cert.then_some(true),
            access_log: (!route.access_log).then_some(false),
            upgrades: route.tunnels.as_ref().map(|t| t.upgrades.as_slice()),
            tunnel_idle_timeout: route
                .tunnels
                .as_ref()
                .map(|t| format_duration(t.idle_timeout)),
            max_tunnels: route.tunnels.as_ref().map(|t| t.max_tunnels.get()),
            ip_allow: networks(allow),
            ip_deny: networks(deny),
            rate_limits: route
                .rate_limits
                .iter()
                .map(|l| RateLimitOut {
                    key: limit_key(&l.key),
                    rate: format_rate(l.count, l.period),
                    burst: l.burst,
                    max_keys: l.max_keys,
                })
                .collect(),
            concurrency: route.concurrency.as_ref().map(|l| ConcurrencyOut {
                key: limit_key(&l.key),
                max: l.max,
                status: l.status,
                max_keys: l.max_keys,
            }),
            cache: route.cache.as_ref().map(|cache| RouteCacheOut {
                enabled: true,
                size: cache.size.map(|s| format_size(s as u64)),
                max_entry_size: format_size(cache.max_entry_size as u64),
                sort_query: cache.sort_query,
                ignore_params: &cache.ignore_params,
                key_headers: &cache.key_headers,
                range_fetch_max: format_size(cache.range_fetch_max as u64),
                serve_stale_on_error: cache.serve_stale_on_error,
            }),
            retry: proxies.then(|| RetryOut::new(&route.retry)),
            redirect,
            strip_prefix,
            rewrite_prefix,
            rewrite,
            error_format: t.error_format.map(ErrorFormat::as_str),
            request_headers: t.request_headers.as_ref().map(HeaderRulesOut::new),
            response_headers: t.response_headers.as_ref().map(HeaderRulesOut::new),
            query: t.query.as_ref().map(|q| QueryOut {
                remove: &q.remove,
                add: &q.add,
            }),
            error_bodies: t
                .error_bodies
                .iter()
                .map(|b| ErrorBodyOut {
                    status: b.status,
                    content_type: &b.content_type,
                    body: &b.body.source,
                })
                .collect(),
            cors: route.cors.as_ref().map(cors::CorsOut::new),
            compression: route.compression.as_ref().map(|c| CompressionOut {
                enabled: true,
                algorithms: c.algorithms.iter().map(|a| a.as_str()).collect(),
                content_types: &c.content_types,
                min_size: format_size(c.min_size),
                gzip_level: c.gzip_level,
                brotli_level: c.brotli_level,
                zstd_level: c.zstd_level,
            }),
        }
    }
}

/// A name for index `i` of a section, or `section[i]` when there is no
/// such element (a config edited in code): that fails to load rather than
/// naming another element.
fn name_at<T>(list: &[T], i: usize, section: &str, name: impl Fn(&T) -> &str) -> String {
    list.get(i)
        .map_or_else(|| format!("{section}[{i}]"), |e| name(e).to_owned())
}

impl<'a> AiProviderOut<'a> {
    fn new(p: &'a AiProvider, c: &Config, redact_secrets: bool) -> Self {
        AiProviderOut {
            name: &p.name,
            kind: p.kind.as_str(),
            upstream: name_at(&c.upstreams, p.upstream, "upstreams", |u| &u.name),
            base_path: &p.base_path,
            query: p.query.as_deref(),
            key_header: p.key_header.as_deref(),
            timeout: p.timeout.map(format_duration),
            keys: p
                .keys
                .iter()
                .map(|k| AiKeyOut::new(k, redact_secrets))
                .collect(),
            headers: &p.headers,
        }
    }
}

impl AiKeyOut {
    fn new(k: &AiKey, redact_secrets: bool) -> Self {
        let key = match &k.source {
            SecretSource::Env(name) => format!("env:{name}"),
            SecretSource::File(p) => format!("file:{}", path(p)),
            SecretSource::Inline(_) if redact_secrets => REDACTED.to_owned(),
            SecretSource::Inline(key) => key.clone(),
        };
        if k.requests_per_minute.is_none() && k.tokens_per_minute.is_none() {
            return AiKeyOut::Source(key);
        }
        AiKeyOut::Table(AiKeyTableOut {
            key,
            requests_per_minute: k.requests_per_minute.map(|n| n.get()),
            tokens_per_minute: k.tokens_per_minute.map(|n| n.get()),
        })
    }
}

impl<'a> AiModelOut<'a> {
    fn new(m: &'a AiModel, c: &Config) -> Self {
        AiModelOut {
            name: &m.name,
            strategy: m.strategy.as_str(),
            max_tokens_default: m.max_tokens_default.map(|n| n.get()),
            allow_groups: &m.allow_groups,
            targets: m
                .targets
                .iter()
                .map(|t| AiTargetOut {
                    provider: name_at(&c.ai_providers, t.provider, "ai-providers", |p| &p.name),
                    model: t.model.clone(),
                    weight: t.weight.get(),
                    priority: t.priority,
                })
                .collect(),
        }
    }
}

impl AiRouteOut {
    fn new(ai: &AiRoute, c: &Config) -> Self {
        AiRouteOut {
            models: ai
                .models
                .iter()
                .map(|&i| name_at(&c.ai_models, i, "ai-models", |m| &m.name))
                .collect(),
            messages: ai.messages,
            max_response_size: format_size(ai.max_response_size as u64),
        }
    }
}
