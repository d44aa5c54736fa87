//! ringway's config: the TOML schema, its validation, and the typed
//! [`Config`] the gateway runs on.
//!
//! The same schema can be written as JSON ([`Config::from_json_str`], for
//! the admin API), and a `Config` can be written back out as either
//! ([`Config::to_json`], [`Config::to_toml`]) with every default spelled
//! out.
//!
//! Loading is two stages. First the TOML is read into serde structs that
//! mirror the file, rejecting unknown keys and wrong types; then validation
//! checks what the values mean (units, ranges, addresses, references between
//! sections, uniqueness) and builds the typed [`Config`]. A `Config` can only
//! come out of that second stage, so code holding one never re-checks it.
//!
//! Every error in a file is reported in one go, each with its field path and
//! `line:column`, like a compiler would, because `ringway validate FILE` is
//! meant to be run once per fix session rather than once per typo.
//!
//! ```
//! use ringway_config::{Action, Config, PathMatch};
//!
//! let config = Config::from_toml_str(r#"
//!     [[listeners]]
//!     address = "127.0.0.1:8080"
//!
//!     [[upstreams]]
//!     name = "app"
//!     servers = ["127.0.0.1:3000", { address = "127.0.0.1:3001", weight = 3 }]
//!
//!     [[routes]]
//!     path-prefix = "/api/"
//!     upstream = "app"
//!     limits.max-body-size = "10MiB"
//! "#).expect("valid config");
//!
//! let route = &config.routes[0];
//! assert_eq!(route.name, "route-0");
//! assert_eq!(route.path, PathMatch::Prefix("/api/".into()));
//! assert_eq!(route.action, Action::Upstream(0));
//! assert_eq!(route.limits.max_body_size, 10 << 20);
//! assert_eq!(config.upstreams[0].servers[1].weight.get(), 3);
//!
//! // Every error is reported, with where it is.
//! let errors = Config::from_toml_str(r#"
//!     [[listeners]]
//!     address = "localhost:8080"
//!
//!     [[routes]]
//!     upstream = "billing"
//! "#).unwrap_err();
//! let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
//! assert_eq!(lines.len(), 2);
//! assert!(lines[0].starts_with("3:15: listeners[0].address: \"localhost:8080\" is not an IP:port"));
//! assert_eq!(lines[1], "6:16: routes[0].upstream: no upstream named \"billing\" (no [[upstreams]] are defined)");
//! ```
//!
//! Traffic policy is part of the schema: who a request's client is
//! ([`ClientIp`]), which addresses may connect ([`IpRules`]), the
//! [`Consumer`]s and the [`Authenticator`]s that recognise them, and per
//! route the authenticators, groups, [`RateLimit`]s and
//! [`ConcurrencyLimit`] that apply. Key material (PEM blocks, HMAC secrets,
//! password hashes) is checked for shape only and kept as text; the engine
//! parses it. Settings that are allowed but risky, such as an API key
//! written in plain text, load with a warning in [`Config::warnings`].
//!
//! ```
//! use ringway_config::{Config, LimitKey};
//!
//! let config = Config::from_toml_str(r#"
//!     [[listeners]]
//!     address = "127.0.0.1:8080"
//!
//!     [[consumers]]
//!     name = "ci"
//!     api-keys = ["plain:not-for-production"]
//!
//!     [[authenticators]]
//!     name = "keys"
//!     type = "api-key"
//!
//!     [[routes]]
//!     auth = ["keys"]
//!     [[routes.rate-limits]]
//!     key = "consumer"
//!     rate = "10/s"
//!     [routes.respond]
//! "#).expect("valid config");
//!
//! let limit = &config.routes[0].rate_limits[0];
//! assert_eq!((limit.key.clone(), limit.count, limit.burst), (LimitKey::Consumer, 10, 10));
//! assert_eq!(config.warnings[0].path, "consumers[0].api-keys[0]");
//! ```
//!
//! HTTP caching is turned on per route by a `[routes.cache]` table
//! ([`RouteCache`]: what goes into the key, the largest body stored, and
//! optionally a shard of the route's own); `[cache]` ([`Cache`]) sizes the
//! shard the other caching routes share, per worker.
//!
//! ```
//! use ringway_config::Config;
//!
//! let config = Config::from_toml_str(r#"
//!     [cache]
//!     size = "256MiB"
//!
//!     [[listeners]]
//!     address = "127.0.0.1:8080"
//!
//!     [[upstreams]]
//!     name = "app"
//!     servers = ["127.0.0.1:3000"]
//!
//!     [[routes]]
//!     upstream = "app"
//!     [routes.cache]
//!     key-headers = ["Accept-Language"]
//! "#).expect("valid config");
//!
//! let cache = config.routes[0].cache.as_ref().expect("the route caches");
//! assert_eq!(cache.size, None); // the shared shard, 256 MiB per worker
//! assert_eq!(cache.max_entry_size, 1 << 20); // [cache]'s default
//! assert_eq!(cache.key_headers, ["accept-language"]);
//! ```
//!
//! TLS is a table where it applies: `[listeners.tls]` ([`ListenerTls`])
//! makes a listener HTTPS, `[upstreams.tls]` ([`UpstreamTls`]) connects to
//! an upstream over TLS, and a route may redirect plain HTTP, add HSTS or
//! require a client certificate. Certificate, key and CA files are paths,
//! kept as written (like `jwks-file`) for the engine to read.
//!
//! ```
//! use ringway_config::{Config, TlsVersion, UnknownSni};
//!
//! let config = Config::from_toml_str(r#"
//!     [[listeners]]
//!     address = "0.0.0.0:8443"
//!     [listeners.tls]
//!     certificates = [{ cert = "certs/site.pem", key = "certs/site.key" }]
//!
//!     [[routes]]
//!     require-client-cert = true
//!     [routes.respond]
//! "#).expect("valid config");
//!
//! let tls = config.listeners[0].tls.as_ref().expect("an HTTPS listener");
//! assert_eq!(tls.certificates[0].cert.to_str(), Some("certs/site.pem"));
//! assert_eq!((tls.min_version, tls.unknown_sni), (TlsVersion::Tls12, UnknownSni::Default));
//! // No listener asks for client certificates: every request would get 403.
//! assert_eq!(config.warnings[0].path, "routes[0].require-client-cert");
//! ```
//!
//! The AI gateway is three sections: `[[ai-providers]]` ([`AiProvider`]:
//! an LLM API behind one of the upstreams, and where its keys are),
//! `[[ai-models]]` ([`AiModel`]: the names clients ask for, each served by
//! provider models) and a route's `[routes.ai]` ([`AiRoute`]). Keys are
//! [`SecretSource`]s, never read by this crate.
//!
//! ```
//! use ringway_config::{Action, AiProviderKind, Config, SecretSource};
//!
//! let config = Config::from_toml_str(r#"
//!     [[listeners]]
//!     address = "127.0.0.1:8080"
//!
//!     [[upstreams]]
//!     name = "openai-api"
//!     servers = ["api.openai.com:443"]
//!     [upstreams.tls]
//!
//!     [[ai-providers]]
//!     name = "openai"
//!     type = "openai"
//!     upstream = "openai-api"
//!     keys = ["env:OPENAI_API_KEY"]
//!
//!     [[ai-models]]
//!     name = "chat"
//!     targets = [{ provider = "openai", model = "gpt-4o-mini" }]
//!
//!     [[routes]]
//!     path-prefix = "/ai/"
//!     [routes.ai]
//! "#).expect("valid config");
//!
//! let openai = &config.ai_providers[0];
//! assert_eq!((openai.kind, openai.base_path.as_str()), (AiProviderKind::OpenAi, "/v1"));
//! assert_eq!(openai.keys[0].source, SecretSource::Env("OPENAI_API_KEY".into()));
//! let Action::Ai(ai) = &config.routes[0].action else { panic!("an AI route") };
//! assert_eq!(ai.models, [0]); // every model, when `models` is left out
//! ```
//!
//! [`EXAMPLE_CONFIG`] documents every key; [`DEFAULT_CONFIG`] is what
//! `ringway` serves when started without a config file.

#![forbid(unsafe_code)]

mod error;
mod json;
mod model;
mod parse;
mod raw;
mod render;
mod span;
mod units;
mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::{
    AccessLog, Action, Admin, AiKey, AiModel, AiProvider, AiProviderKind, AiRoute, AiStrategy,
    AiTarget, ApiKey, AuthKind, Authenticator, Balance, BalancePolicy, BasicCredential, Cache,
    CertificateFiles, CheckKind, CheckMethod, ClientAuth, ClientAuthMode, ClientIp, Compression,
    ConcurrencyLimit, Config, ConnectionBalance, Consumer, ContentCoding, Driver, EncodedSlashes,
    ErrorBody, ErrorFormat, HashKey, HeaderRules, HealthCheck, HostMatch, IpNet, IpRules,
    JwtAlgorithm, JwtKey, JwtSettings, KeyMaterial, LimitKey, Limits, Listener, ListenerTls,
    LogFormat, LogTarget, Metrics, OutlierDetection, Part, PathMatch, PathRewrite, QueryRules,
    RateLimit, Redirect, Resolve, Resolver, Responder, Retry, RetryOn, Route, RouteCache,
    RouteLimits, RouteTransform, SampleRate, SecretSource, Server, ServerAddress, StatusMatch,
    Template, TlsVersion, Tunnels, UnderscoresInHeaders, UnknownSni, Upstream, UpstreamTls, Var,
    Workers,
};
pub use model::{AllowOrigins, Cors, OriginPattern};

/// The config used when none is given: one listener on `127.0.0.1:8080`
/// answering a few routes from the built-in responder.
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");

/// A commented config documenting every key, its default and its units.
pub const EXAMPLE_CONFIG: &str = include_str!("../example.toml");

impl Config {
    /// Parses and validates a config. `Err` holds every error found, in
    /// source order; a valid config carries its warnings, if any, in
    /// [`Config::warnings`].
    pub fn from_toml_str(src: &str) -> Result<Config, ConfigErrors> {
        let mut reporter = error::Reporter::new(src);
        let config =
            parse::parse(src, &mut reporter).and_then(|doc| validate::validate(doc, &mut reporter));
        finish(config, reporter)
    }

    /// Parses and validates a config written as JSON: the same schema,
    /// keys and units as TOML (`{"limits": {"connect-timeout": "250ms"}}`),
    /// checked by the same code, so errors carry the same paths, with the
    /// JSON `line:column`. A `null` anywhere is an error: leave a key out
    /// to get its default.
    ///
    /// ```
    /// use ringway_config::Config;
    ///
    /// let json = r#"{
    ///   "listeners": [{ "address": "127.0.0.1:8080" }],
    ///   "routes": [{ "path": "/healthz", "respond": { "body": "ok" } }]
    /// }"#;
    /// let config = Config::from_json_str(json).expect("valid config");
    /// assert_eq!(config.routes[0].name, "route-0");
    ///
    /// let errors = Config::from_json_str(r#"{ "workers": 0 }"#).unwrap_err();
    /// assert!(errors.0[0].to_string().starts_with("1:14: workers: "));
    /// ```
    pub fn from_json_str(src: &str) -> Result<Config, ConfigErrors> {
        let mut reporter = error::Reporter::new(src);
        let config =
            json::parse(src, &mut reporter).and_then(|doc| validate::validate(doc, &mut reporter));
        finish(config, reporter)
    }

    /// Reads and validates a config file. A file that cannot be read gives
    /// one error with an empty path; use [`ConfigErrors::with_file`] to
    /// prefix errors with the file name.
    pub fn from_file(path: &Path) -> Result<Config, ConfigErrors> {
        match std::fs::read_to_string(path) {
            Ok(src) => Config::from_toml_str(&src),
            Err(e) => Err(ConfigErrors(vec![ConfigError::unplaced(
                "",
                format!("cannot read {}: {e}", path.display()),
            )])),
        }
    }

    /// The effective config as pretty JSON in the schema
    /// [`Config::from_json_str`] reads: every key written out, defaults
    /// filled in, default names made explicit, each route's limits resolved
    /// against `[limits]`. Reading it back gives an equal config (for any
    /// config this crate validated).
    ///
    /// API keys are always written as `sha256:` and their hash, even when
    /// the file said `plain:`, so the output never holds a key (and such a
    /// key reads back with [`ApiKey::plain`] false). [`Config::warnings`]
    /// are not written.
    ///
    /// With `redact_secrets`, `admin.token`, JWT `secret`s, `password-hash`es,
    /// API key hashes and inline AI provider keys are written as
    /// `"<redacted>"`, for showing the
    /// config to someone who should not learn them; such output does not
    /// read back (the placeholder is not a valid value for any of them), so
    /// it cannot silently replace the real ones.
    ///
    /// ```
    /// use ringway_config::{Config, DEFAULT_CONFIG};
    ///
    /// let config = Config::from_toml_str(DEFAULT_CONFIG).expect("valid config");
    /// let json = config.to_json(false);
    /// assert!(json.contains(r#""keepalive-timeout": "1m""#));
    /// assert_eq!(Config::from_json_str(&json), Ok(config));
    /// ```
    pub fn to_json(&self, redact_secrets: bool) -> String {
        render::json(self, redact_secrets)
    }

    /// The effective config as TOML, with the same content as
    /// [`Config::to_json`] (secrets included); reading it back gives an
    /// equal config.
    pub fn to_toml(&self) -> String {
        render::toml(self)
    }
}

/// The outcome of a load: the config with its warnings, or every error
/// reported.
fn finish(
    config: Option<Config>,
    mut reporter: error::Reporter<'_>,
) -> Result<Config, ConfigErrors> {
    match config {
        Some(mut config) if !reporter.has_errors() => {
            config.warnings = reporter.take_warnings();
            Ok(config)
        }
        _ => {
            let errors = reporter.finish();
            if errors.is_empty() {
                // Validation yields no config only after reporting why;
                // this keeps an `Err` from ever being empty regardless.
                Err(ConfigErrors(vec![ConfigError::unplaced(
                    "",
                    "invalid config",
                )]))
            } else {
                Err(errors)
            }
        }
    }
}
