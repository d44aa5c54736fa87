//! The config as written: serde structs mirroring the TOML (or the same
//! schema written as JSON), nothing checked beyond types and key names.
//!
//! This is the first of two stages. These structs reject unknown keys
//! (`deny_unknown_fields`) and wrong TOML types, and otherwise accept
//! anything, keeping each value's byte span (`Spanned`) so that the second
//! stage, `validate`, can point at the exact spot when a value is wrong.
//! Values whose meaning depends on the text (durations, sizes, addresses)
//! stay strings here; turning them into typed values is validation's job,
//! which lets it report every bad value instead of serde's first one.
//!
//! Every field is optional at this stage, even the required ones, so that a
//! missing key is reported by validation with a sentence that says why the
//! key is needed, instead of serde's bare "missing field".

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

mod cors;

pub(crate) use cors::RawCors;

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawLimits {
    pub(crate) max_target_length: Option<Spanned<Scalar>>,
    pub(crate) max_head_size: Option<Spanned<Scalar>>,
    pub(crate) max_headers: Option<Spanned<Scalar>>,
    pub(crate) max_body_size: Option<Spanned<Scalar>>,
    pub(crate) header_read_timeout: Option<Spanned<Scalar>>,
    pub(crate) keepalive_timeout: Option<Spanned<Scalar>>,
    pub(crate) connect_timeout: Option<Spanned<Scalar>>,
    pub(crate) response_head_timeout: Option<Spanned<Scalar>>,
    pub(crate) body_idle_timeout: Option<Spanned<Scalar>>,
    pub(crate) send_timeout: Option<Spanned<Scalar>>,
    pub(crate) upstream_idle_timeout: Option<Spanned<Scalar>>,
    pub(crate) upstream_max_idle: Option<Spanned<Scalar>>,
    pub(crate) max_connections: Option<Spanned<Scalar>>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawAdmin {
    pub(crate) enabled: Option<bool>,
    pub(crate) address: Option<Spanned<String>>,
    pub(crate) token: Option<Spanned<String>>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawMetrics {
    pub(crate) enabled: Option<bool>,
}

/// `[cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawCache {
    pub(crate) size: Option<Spanned<Scalar>>,
    pub(crate) max_entry_size: Option<Spanned<Scalar>>,
    pub(crate) lock_timeout: Option<Spanned<Scalar>>,
    pub(crate) targeted_field: Option<Spanned<String>>,
    pub(crate) forward_targeted: Option<bool>,
}

/// `[access-log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawAccessLog {
    pub(crate) enabled: Option<bool>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) format: Option<Spanned<String>>,
    pub(crate) sample: Option<Spanned<Scalar>>,
    pub(crate) query: Option<bool>,
    pub(crate) queue: Option<Spanned<Scalar>>,
}

/// One `[[listeners]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawListener {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) address: Option<Spanned<String>>,
    pub(crate) tls: Option<Spanned<RawListenerTls>>,
    pub(crate) encoded_slashes: Option<Spanned<String>>,
    pub(crate) underscores_in_headers: Option<Spanned<String>>,
    pub(crate) trust_request_id: Option<bool>,
    /// Only ever an error (client certificates need TLS: the table belongs
    /// in `[listeners.tls]`); read so that validation can say so rather
    /// than serde's "unknown key".
    pub(crate) client_auth: Option<Spanned<de::IgnoredAny>>,
    pub(crate) request_headers: Option<Spanned<RawHeaderRules>>,
    pub(crate) response_headers: Option<Spanned<RawHeaderRules>>,
    pub(crate) error_format: Option<Spanned<String>>,
}

/// `[listeners.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawListenerTls {
    pub(crate) certificates: Option<Spanned<Vec<Spanned<RawCertificate>>>>,
    pub(crate) unknown_sni: Option<Spanned<String>>,
    /// A scalar, so that `min-version = 1.2` (a float) can be told to be
    /// written as a string.
    pub(crate) min_version: Option<Spanned<Scalar>>,
    pub(crate) cipher_suites: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) handshake_timeout: Option<Spanned<Scalar>>,
    pub(crate) session_cache: Option<Spanned<Scalar>>,
    pub(crate) session_tickets: Option<bool>,
    pub(crate) ticket_lifetime: Option<Spanned<Scalar>>,
    pub(crate) client_auth: Option<Spanned<RawClientAuth>>,
}

/// One entry of `certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawCertificate {
    pub(crate) cert: Option<Spanned<String>>,
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) names: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[listeners.tls.client-auth]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawClientAuth {
    pub(crate) mode: Option<Spanned<String>>,
    pub(crate) ca: Option<Spanned<String>>,
    pub(crate) subject_header: Option<Spanned<String>>,
}

/// One `[[upstreams]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawUpstream {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) servers: Option<Spanned<Vec<Spanned<RawServer>>>>,
    pub(crate) max_connections: Option<Spanned<Scalar>>,
    pub(crate) queue_size: Option<Spanned<Scalar>>,
    pub(crate) queue_timeout: Option<Spanned<Scalar>>,
    pub(crate) slow_start: Option<Spanned<Scalar>>,
    pub(crate) resolve: Option<Spanned<String>>,
    pub(crate) resolve_interval: Option<Spanned<Scalar>>,
    pub(crate) fail_open: Option<bool>,
    pub(crate) tls: Option<Spanned<RawUpstreamTls>>,
    pub(crate) balance: Option<Spanned<RawBalance>>,
    pub(crate) health_check: Option<Spanned<RawHealthCheck>>,
    pub(crate) outlier_detection: Option<Spanned<RawOutlierDetection>>,
}

/// `[upstreams.balance]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawBalance {
    pub(crate) policy: Option<Spanned<String>>,
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) ewma_decay: Option<Spanned<Scalar>>,
}

/// `[upstreams.health-check]`: the keys of both `type`s, so that a key of
/// the other type is reported by validation as belonging elsewhere rather
/// than by serde as unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawHealthCheck {
    #[serde(rename = "type")]
    pub(crate) kind: Option<Spanned<String>>,
    // http
    pub(crate) method: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) expect: Option<Spanned<Vec<Spanned<Scalar>>>>,
    // both
    pub(crate) interval: Option<Spanned<Scalar>>,
    pub(crate) timeout: Option<Spanned<Scalar>>,
    pub(crate) healthy_threshold: Option<Spanned<Scalar>>,
    pub(crate) unhealthy_threshold: Option<Spanned<Scalar>>,
}

/// `[upstreams.outlier-detection]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawOutlierDetection {
    pub(crate) enabled: Option<bool>,
    pub(crate) consecutive_failures: Option<Spanned<Scalar>>,
    pub(crate) base_ejection: Option<Spanned<Scalar>>,
    pub(crate) max_ejection: Option<Spanned<Scalar>>,
    pub(crate) max_ejected_percent: Option<Spanned<Scalar>>,
}

/// `[resolver]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawResolver {
    pub(crate) nameservers: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) timeout: Option<Spanned<Scalar>>,
    pub(crate) hosts_file: Option<Spanned<String>>,
}

/// `[upstreams.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawUpstreamTls {
    pub(crate) ca: Option<Spanned<String>>,
    pub(crate) server_name: Option<Spanned<String>>,
    pub(crate) verify: Option<Spanned<bool>>,
    pub(crate) client_cert: Option<Spanned<String>>,
    pub(crate) client_key: Option<Spanned<String>>,
    pub(crate) sni: Option<bool>,
}

/// One entry of `servers`: `"IP:port"`, `"host:port"` or
/// `{ address = "...", weight = N, max-connections = N, backup = true }`.
#[derive(Debug)]
pub(crate) enum RawServer {
    Address(String),
    Table(RawServerTable),
}

/// The table form of a server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawServerTable {
    pub(crate) address: Option<Spanned<String>>,
    pub(crate) weight: Option<Spanned<Scalar>>,
    pub(crate) max_connections: Option<Spanned<Scalar>>,
    pub(crate) backup: Option<bool>,
}

impl<'de> Deserialize<'de> for RawServer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ServerVisitor;

        impl<'de> Visitor<'de> for ServerVisitor {
            type Value = RawServer;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a server: "IP:port", "host:port" or { address = "IP:port", weight = N }"#,
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawServer, E> {
                Ok(RawServer::Address(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawServer, A::Error> {
                RawServerTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawServer::Table)
            }
        }

        deserializer.deserialize_any(ServerVisitor)
    }
}

/// One `[[routes]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRoute {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) path_prefix: Option<Spanned<String>>,
    pub(crate) methods: Option<Vec<Spanned<String>>>,
    pub(crate) upstream: Option<Spanned<String>>,
    pub(crate) respond: Option<Spanned<RawRespond>>,
    pub(crate) host_header: Option<Spanned<String>>,
    pub(crate) limits: Option<Spanned<RawRouteLimits>>,
    pub(crate) auth: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) allow_groups: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) forward_credentials: Option<Spanned<bool>>,
    pub(crate) consumer_header: Option<Spanned<String>>,
    pub(crate) rate_limit_headers: Option<Spanned<bool>>,
    pub(crate) consumer_metrics: Option<Spanned<bool>>,
    pub(crate) rate_limits: Option<Spanned<Vec<Spanned<RawRateLimit>>>>,
    pub(crate) concurrency: Option<Spanned<RawConcurrency>>,
    pub(crate) ip_allow: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) ip_deny: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) cache: Option<Spanned<RawRouteCache>>,
    pub(crate) redirect_https: Option<Spanned<bool>>,
    pub(crate) https_port: Option<Spanned<Scalar>>,
    pub(crate) hsts: Option<Spanned<String>>,
    pub(crate) require_client_cert: Option<Spanned<bool>>,
    pub(crate) access_log: Option<bool>,
    pub(crate) retry: Option<Spanned<RawRetry>>,
    pub(crate) ai: Option<Spanned<RawRouteAi>>,
    pub(crate) request_headers: Option<Spanned<RawHeaderRules>>,
    pub(crate) response_headers: Option<Spanned<RawHeaderRules>>,
    pub(crate) strip_prefix: Option<Spanned<bool>>,
    pub(crate) rewrite_prefix: Option<Spanned<String>>,
    pub(crate) rewrite: Option<Spanned<RawRewrite>>,
    pub(crate) query: Option<Spanned<RawQueryRules>>,
    pub(crate) redirect: Option<Spanned<RawRedirect>>,
    pub(crate) error_format: Option<Spanned<String>>,
    pub(crate) error_bodies: Option<Spanned<Vec<Spanned<RawErrorBody>>>>,
    pub(crate) cors: Option<Spanned<RawCors>>,
    pub(crate) upgrades: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) tunnel_idle_timeout: Option<Spanned<Scalar>>,
    pub(crate) max_tunnels: Option<Spanned<Scalar>>,
    pub(crate) compression: Option<Spanned<RawCompression>>,
}

/// `[routes.compression]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawCompression {
    pub(crate) enabled: Option<bool>,
    pub(crate) algorithms: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) content_types: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) min_size: Option<Spanned<Scalar>>,
    pub(crate) gzip_level: Option<Spanned<Scalar>>,
    pub(crate) brotli_level: Option<Spanned<Scalar>>,
    pub(crate) zstd_level: Option<Spanned<Scalar>>,
}

/// `[routes.ai]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRouteAi {
    pub(crate) models: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) messages: Option<bool>,
    pub(crate) max_response_size: Option<Spanned<Scalar>>,
}

/// One `[[ai-providers]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawAiProvider {
    pub(crate) name: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) upstream: Option<Spanned<String>>,
    pub(crate) base_path: Option<Spanned<String>>,
    pub(crate) query: Option<Spanned<String>>,
    pub(crate) key_header: Option<Spanned<String>>,
    pub(crate) headers: Option<RawHeaders>,
    pub(crate) keys: Option<Spanned<Vec<Spanned<RawAiKey>>>>,
    pub(crate) timeout: Option<Spanned<Scalar>>,
}

/// One entry of a provider's `keys`: `"env:NAME"`, `"file:PATH"`, an
/// inline key, or the table form with limits.
#[derive(Debug)]
pub(crate) enum RawAiKey {
    Source(String),
    Table(RawAiKeyTable),
}

/// The table form of a provider key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawAiKeyTable {
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) requests_per_minute: Option<Spanned<Scalar>>,
    pub(crate) tokens_per_minute: Option<Spanned<Scalar>>,
}

impl<'de> Deserialize<'de> for RawAiKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = RawAiKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a key: "env:NAME", "file:PATH" or { key = "env:NAME", requests-per-minute = N }"#,
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAiKey, E> {
                Ok(RawAiKey::Source(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAiKey, A::Error> {
                RawAiKeyTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawAiKey::Table)
            }
        }

        deserializer.deserialize_any(KeyVisitor)
    }
}

/// One `[[ai-models]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawAiModel {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) strategy: Option<Spanned<String>>,
    pub(crate) max_tokens_default: Option<Spanned<Scalar>>,
    pub(crate) allow_groups: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) targets: Option<Spanned<Vec<Spanned<RawAiTarget>>>>,
}

/// One entry of a model's `targets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawAiTarget {
    pub(crate) provider: Option<Spanned<String>>,
    pub(crate) model: Option<Spanned<String>>,
    pub(crate) weight: Option<Spanned<Scalar>>,
    pub(crate) priority: Option<Spanned<Scalar>>,
}

/// `[routes.retry]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRetry {
    pub(crate) attempts: Option<Spanned<Scalar>>,
    pub(crate) on: Option<Spanned<Vec<Spanned<Scalar>>>>,
    pub(crate) per_try_timeout: Option<Spanned<Scalar>>,
    pub(crate) backoff: Option<Spanned<Scalar>>,
    pub(crate) backoff_max: Option<Spanned<Scalar>>,
    pub(crate) budget_percent: Option<Spanned<Scalar>>,
    pub(crate) budget_min: Option<Spanned<Scalar>>,
    pub(crate) retry_non_idempotent: Option<bool>,
    pub(crate) retry_buffer: Option<Spanned<Scalar>>,
}

/// One `[[routes.rate-limits]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRateLimit {
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) rate: Option<Spanned<Scalar>>,
    pub(crate) burst: Option<Spanned<Scalar>>,
    pub(crate) max_keys: Option<Spanned<Scalar>>,
}

/// `[routes.concurrency]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawConcurrency {
    pub(crate) key: Option<Spanned<String>>,
    pub(crate) max: Option<Spanned<Scalar>>,
    pub(crate) status: Option<Spanned<Scalar>>,
    pub(crate) max_keys: Option<Spanned<Scalar>>,
}

/// `[routes.cache]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRouteCache {
    pub(crate) enabled: Option<bool>,
    pub(crate) size: Option<Spanned<Scalar>>,
    pub(crate) max_entry_size: Option<Spanned<Scalar>>,
    pub(crate) sort_query: Option<bool>,
    pub(crate) ignore_params: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) key_headers: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) range_fetch_max: Option<Spanned<Scalar>>,
    pub(crate) serve_stale_on_error: Option<bool>,
}

/// `[client-ip]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawClientIp {
    pub(crate) trusted_proxies: Option<Vec<Spanned<String>>>,
}

/// `[ip-rules]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawIpRules {
    pub(crate) allow: Option<Vec<Spanned<String>>>,
    pub(crate) deny: Option<Vec<Spanned<String>>>,
}

/// One `[[consumers]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawConsumer {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) groups: Option<Vec<Spanned<String>>>,
    pub(crate) api_keys: Option<Vec<Spanned<String>>>,
    pub(crate) basic: Option<Spanned<RawBasic>>,
}

/// `basic = { username = "...", password-hash = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawBasic {
    pub(crate) username: Option<Spanned<String>>,
    pub(crate) password_hash: Option<Spanned<String>>,
}

/// One `[[authenticators]]` table: the keys of every `type`, so that a key
/// of another type is reported by validation as belonging elsewhere rather
/// than by serde as unknown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawAuthenticator {
    pub(crate) name: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<Spanned<String>>,
    // api-key
    pub(crate) header: Option<Spanned<String>>,
    pub(crate) query: Option<Spanned<String>>,
    // basic
    pub(crate) realm: Option<Spanned<String>>,
    pub(crate) cache_ttl: Option<Spanned<Scalar>>,
    // basic and jwt
    pub(crate) cache_size: Option<Spanned<Scalar>>,
    // jwt
    pub(crate) algorithms: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) keys: Option<Spanned<Vec<Spanned<RawJwtKey>>>>,
    pub(crate) jwks_file: Option<Spanned<String>>,
    pub(crate) issuer: Option<Spanned<String>>,
    pub(crate) audience: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) leeway: Option<Spanned<Scalar>>,
    pub(crate) consumer_claim: Option<Spanned<String>>,
}

/// One entry of a JWT authenticator's `keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawJwtKey {
    pub(crate) kid: Option<Spanned<String>>,
    pub(crate) secret: Option<Spanned<String>>,
    pub(crate) pem: Option<Spanned<String>>,
}

/// `[routes.respond]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRespond {
    pub(crate) status: Option<Spanned<Scalar>>,
    pub(crate) headers: Option<RawHeaders>,
    pub(crate) body: Option<Spanned<String>>,
}

/// `headers = { name = "value", ... }`, in the order the TOML map yields them.
#[derive(Debug, Default)]
pub(crate) struct RawHeaders(pub(crate) Vec<(String, Spanned<String>)>);

impl<'de> Deserialize<'de> for RawHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;

        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = RawHeaders;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a table of header names to string values, e.g. { "content-type" = "text/plain" }"#)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeaders, A::Error> {
                let mut headers = Vec::new();
                while let Some(entry) = map.next_entry::<String, Spanned<String>>()? {
                    headers.push(entry);
                }
                Ok(RawHeaders(headers))
            }
        }

        deserializer.deserialize_map(HeadersVisitor)
    }
}

/// `[routes.limits]`: the subset of `[limits]` a route may override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRouteLimits {
    pub(crate) max_body_size: Option<Spanned<Scalar>>,
    pub(crate) connect_timeout: Option<Spanned<Scalar>>,
    pub(crate) response_head_timeout: Option<Spanned<Scalar>>,
    pub(crate) body_idle_timeout: Option<Spanned<Scalar>>,
}

/// A scalar whose accepted forms depend on the key (`workers = "auto" | 4`,
/// sizes as `"64KiB"` or an integer, durations as `"10s"`, integers in a
/// range). Taking any scalar here lets validation explain the accepted forms
/// for that key, e.g. that `drain-timeout = 10` needs a unit, where serde
/// could only say "expected a string".
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Scalar, A::Error> {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The document's top level, gathered key by key (see `parse`): each array
/// element is kept by index, `None` where it failed to deserialize, so the
/// paths of later elements stay right.
#[derive(Debug, Default)]
pub(crate) struct RawDocument {
    pub(crate) workers: Option<Spanned<Scalar>>,
    pub(crate) driver: Option<Spanned<String>>,
    pub(crate) connection_balance: Option<Spanned<String>>,
    pub(crate) drain_timeout: Option<Spanned<Scalar>>,
    pub(crate) limits: Option<Spanned<RawLimits>>,
    pub(crate) admin: Option<Spanned<RawAdmin>>,
    pub(crate) cache: Option<Spanned<RawCache>>,
    pub(crate) metrics: Option<Spanned<RawMetrics>>,
    pub(crate) access_log: Option<Spanned<RawAccessLog>>,
    pub(crate) client_ip: Option<Spanned<RawClientIp>>,
    pub(crate) ip_rules: Option<Spanned<RawIpRules>>,
    pub(crate) resolver: Option<Spanned<RawResolver>>,
    pub(crate) listeners: Section<RawListener>,
    pub(crate) upstreams: Section<RawUpstream>,
    pub(crate) routes: Section<RawRoute>,
    pub(crate) consumers: Section<RawConsumer>,
    pub(crate) authenticators: Section<RawAuthenticator>,
    pub(crate) ai_providers: Section<RawAiProvider>,
    pub(crate) ai_models: Section<RawAiModel>,
}

/// One array of tables (`[[routes]]`).
#[derive(Debug)]
pub(crate) struct Section<T> {
    /// Span of the key where it was first written, for "at least one" errors.
    pub(crate) span: Option<std::ops::Range<usize>>,
    pub(crate) items: Vec<Item<T>>,
    /// The key was present but not an array (already reported), so it
    /// should not also be reported as missing.
    pub(crate) malformed: bool,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Section {
            span: None,
            items: Vec::new(),
            malformed: false,
        }
    }
}

/// One element of an array of tables.
#[derive(Debug)]
pub(crate) struct Item<T> {
    /// Span of the element (for `[[x]]` tables, the header line).
    pub(crate) span: std::ops::Range<usize>,
    /// The element, or `None` when it did not deserialize (already reported).
    pub(crate) value: Option<T>,
    /// The element's `name` string if it has one, even when `value` is
    /// `None`, so a broken `[[upstreams]]` does not also make every route
    /// that uses it report "no upstream named ...".
    pub(crate) name: Option<String>,
}

/// `[routes.request-headers]`, `[routes.response-headers]` and the
/// listener's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawHeaderRules {
    pub(crate) remove: Option<Vec<Spanned<String>>>,
    pub(crate) rename: Option<RawHeaders>,
    pub(crate) set: Option<RawHeaders>,
    pub(crate) add_if_absent: Option<RawHeaders>,
    pub(crate) add: Option<RawHeaders>,
}

/// A route's `rewrite = { regex = "...", replace = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRewrite {
    pub(crate) regex: Option<Spanned<String>>,
    pub(crate) replace: Option<Spanned<String>>,
}

/// `[routes.query]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawQueryRules {
    pub(crate) remove: Option<Vec<Spanned<String>>>,
    pub(crate) add: Option<RawHeaders>,
}

/// `[routes.redirect]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawRedirect {
    pub(crate) status: Option<Spanned<Scalar>>,
    pub(crate) location: Option<Spanned<String>>,
}

/// One `[[routes.error-bodies]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(crate) struct RawErrorBody {
    pub(crate) status: Option<Spanned<Scalar>>,
    pub(crate) content_type: Option<Spanned<String>>,
    pub(crate) body: Option<Spanned<String>>,
}
