//! Writing a config back out: the effective config, every key spelled out,
//! reading back as an equal `Config` in both formats.

mod common;

use common::valid;
use proptest::prelude::*;
use ringway_config::{Config, DEFAULT_CONFIG, EXAMPLE_CONFIG};

const TOKEN: &str = "Zm9vYmFyYmF6cXV4-_~!0123";

/// Every variant of every value: exact and wildcard hosts, exact and
/// prefix paths, methods, a responder with headers and a body that need
/// escaping, weighted servers, route limits, a worker count, epoll, a
/// token, durations and sizes that are not round in any one unit, every
/// authenticator type with and without its optional keys, HMAC and PEM
/// keys, consumers with and without credentials, every limit key and rate
/// period, address rules for both families, route caches with and
/// without their own shard, inheriting or setting `max-entry-size`, and
/// turned off, TLS on a listener (with client certificates), on
/// upstreams (with every key and with none) and a route's HTTPS keys,
/// every `encoded-slashes`, a listener passing underscores in header names
/// and one trusting client request IDs,
/// upstreams with and without a connection cap, servers given by name,
/// with their own cap and as backups, every balancing policy and hash key
/// kind, both health check types, outlier detection turned off, a
/// resolver with every key, retry tables with every key, with none and
/// retrying nothing, and an access log with every key set (and a route
/// left out of it).
const EVERY_VARIANT: &str = r#"
workers = 3
driver = "epoll"
connection-balance = "cpu"
drain-timeout = "0s"

[limits]
max-target-length = 1536
max-head-size = "16KiB"
max-headers = 1
max-body-size = "10MB"
header-read-timeout = "1m30s"
keepalive-timeout = "250ms"
connect-timeout = "1h"
response-head-timeout = "2m"
body-idle-timeout = "1m1s"
send-timeout = "1500ms"
upstream-idle-timeout = "1s"
upstream-max-idle = 0
max-connections = 10000000

[admin]
address = "[::]:9901"
token = "Zm9vYmFyYmF6cXV4-_~!0123"

[cache]
size = "100MB"
max-entry-size = 12345
lock-timeout = "0s"
targeted-field = "X-Edge-Cache"
forward-targeted = true

[access-log]
enabled = true
path = "/var/log/ringway/access \"quoted\".log"
format = "combined"
sample = 0.125
query = false
queue = 1

[[listeners]]
name = "public"
address = "0.0.0.0:80"
encoded-slashes = "decode"
underscores-in-headers = "pass"
trust-request-id = true

[[listeners]]
address = "[::1]:0"

[[listeners]]
name = "https"
address = "0.0.0.0:443"
encoded-slashes = "pass"
[listeners.tls]
certificates = [
    { cert = "certs/a.pem", key = "certs/a.key" },
    { cert = "/etc/wild \"quoted\".pem", key = "wild.key", names = ["*.Example.org", "example.org"] },
]
unknown-sni = "reject"
min-version = "1.2"
cipher-suites = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS13_AES_256_GCM_SHA384"]
handshake-timeout = "59500ms"
session-cache = 1000000
session-tickets = false
ticket-lifetime = "1m"
[listeners.tls.client-auth]
mode = "optional"
ca = "clients.pem"
subject-header = "X-Subject"

[resolver]
nameservers = ["10.0.0.53", "[fd00::53]:5353"]
timeout = "100ms"
hosts-file = ""

[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000", { address = "[fe80::1]:3001", weight = 10000 }]

[[upstreams]]
name = "billing.v2"
servers = [
    { address = "10.0.0.7:9000", weight = 2 },
    { address = "Billing.Internal:9000", max-connections = 7, backup = true },
    "localhost:9001",
]
max-connections = 1
queue-size = 100000
queue-timeout = "1ms"
slow-start = "1h"
resolve = "required"
resolve-interval = "1s"
fail-open = false
[upstreams.balance]
policy = "hash"
key = "cookie:Session"
[upstreams.health-check]
method = "HEAD"
path = "/healthz?full=1"
host = "billing.internal"
expect = [204, "3XX", "4xx"]
interval = "1m30s"
timeout = "1500ms"
healthy-threshold = 1
unhealthy-threshold = 100
[upstreams.outlier-detection]
enabled = false
consecutive-failures = 1000
base-ejection = "100ms"
max-ejection = "100ms"
max-ejected-percent = 0

[[upstreams]]
name = "ewma"
servers = ["10.0.0.10:80"]
balance = { policy = "ewma", ewma-decay = "10m" }
health-check = { type = "tcp", interval = "100ms", timeout = "10ms" }

[[upstreams]]
name = "hashed-header"
servers = ["10.0.0.11:80"]
balance = { policy = "hash", key = "header:X-User" }
[upstreams.health-check]

[[upstreams]]
name = "least"
servers = ["10.0.0.12:80"]
balance.policy = "least-request"

[[upstreams]]
name = "random"
servers = ["10.0.0.13:80"]
balance = { policy = "random" }
outlier-detection = { max-ejected-percent = 100 }

[[upstreams]]
name = "secure"
servers = ["10.0.0.8:443"]
max-connections = 10000000
[upstreams.tls]
ca = "ca.pem"
server-name = "FE80::1"
verify = false
client-cert = "gw.pem"
client-key = "gw.key"
sni = false

[[upstreams]]
name = "secure-defaults"
servers = ["10.0.0.9:443"]
[upstreams.tls]

[[routes]]
name = "billing"
host = "Billing.Example.com"
path = "/v1/charge"
methods = ["POST", "PUT", "M-SEARCH"]
upstream = "billing.v2"
host-header = "billing.internal:8443"
[routes.limits]
max-body-size = 0
connect-timeout = "100ms"
response-head-timeout = "3m30s"
body-idle-timeout = "2h"
[routes.retry]
attempts = 10
on = ["retriable-4xx", 502, "timeout", "connect-failure", "504", "503", "reset-before-response"]
per-try-timeout = "1500ms"
backoff = "0s"
backoff-max = "0s"
budget-percent = 100
budget-min = 10000
retry-non-idempotent = true
retry-buffer = "16MiB"
[routes.cache]
size = "3MiB"
max-entry-size = "1536KiB"
range-fetch-max = "1KiB"
serve-stale-on-error = true
sort-query = true
ignore-params = ["utm_source", "a[]", "caf%C3%A9", "Utm_Source"]
key-headers = ["Accept-Language", "X-Tenant"]

[[routes]]
host = "*.example.com"
path-prefix = "/static/"
[routes.respond]
status = 503
headers = { "x.y" = "a \"quoted\"\tvalue", Content-Type = "text/plain; charset=utf-8", x-u = "é" }
body = """
line one\\ "two"
ünïcödé ✓
"""
[routes.limits]
max-body-size = "1KB"
body-idle-timeout = "1ms"

[[routes]]
name = "empty"
path = "/empty"
access-log = false
[routes.respond]
status = 204

[[routes]]
upstream = "app"

[[routes]]
name = "retry-defaults"
path = "/retry"
upstream = "ewma"
[routes.retry]

[[routes]]
name = "retry-nothing"
path = "/no-retry"
upstream = "least"
retry = { attempts = 1, on = [], retry-buffer = 0, backoff = "10s", backoff-max = "1h" }

[[routes]]
name = "policed"
path-prefix = "/policed/"
upstream = "app"
auth = ["hmac", "keys", "login"]
allow-groups = ["ops", "billing.v2"]
forward-credentials = true
consumer-header = "X-Who"
rate-limit-headers = true
ip-allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]
ip-deny = ["10.66.0.0/16", "::1"]
[[routes.rate-limits]]
key = "route"
rate = "1000000000/s"
[[routes.rate-limits]]
key = "client-ip"
rate = "60/m"
burst = 1
max-keys = 1
[[routes.rate-limits]]
key = "consumer"
rate = "5000/h"
max-keys = 10000000
[[routes.rate-limits]]
key = "header:X-Tenant"
rate = "1/d"
burst = 1000000000
[routes.concurrency]
key = "header:x-tenant"
max = 1000000
status = 429
max-keys = 7
[routes.cache]

[[routes]]
name = "respond-with-auth"
path = "/whoami"
auth = ["pem"]
[[routes.rate-limits]]
key = "consumer"
rate = "10/s"
[routes.respond]
body = "you are in"
[routes.concurrency]
key = "route"
max = 1

[[routes]]
name = "cache-off"
path = "/off"
upstream = "app"
[routes.cache]
enabled = false
size = "1GiB"
key-headers = ["x-a"]

[[routes]]
name = "https-only"
path-prefix = "/secure/"
upstream = "secure"
redirect-https = true
https-port = 65535
hsts = "MAX-AGE=0;preload ;\tincludesubdomains"
require-client-cert = true

[[routes]]
name = "redirect-default-port"
path = "/moved"
redirect-https = true
require-client-cert = false
hsts = "max-age=1"
[routes.respond]
status = 204

[client-ip]
trusted-proxies = ["10.0.0.0/8", "fd00::/8", "127.0.0.1"]

[ip-rules]
allow = ["0.0.0.0/0", "::/0"]
deny = ["203.0.113.0/24", "2001:db8:bad::/48"]

[[consumers]]
name = "ops-bot"
groups = ["ops", "billing.v2"]
api-keys = [
    "sha256:3BB23FC0E9EDF5CA011CDAAFA8C09AAA337D60C51212ECBFE50EA49BDAE336AF",
    "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
]

[[consumers]]
name = "carol"
basic = { username = "carol@example.com", password-hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW" }

[[consumers]]
name = "nobody"

[[authenticators]]
name = "keys"
type = "api-key"
header = "Authorization-Key"
query = "key~1"

[[authenticators]]
name = "keys-default"
type = "api-key"

[[authenticators]]
name = "login"
type = "basic"
realm = "Staff (ops) & friends"
cache-size = 0
cache-ttl = "1h30m"

[[authenticators]]
name = "login-default"
type = "basic"

[[authenticators]]
name = "hmac"
type = "jwt"
algorithms = ["HS512", "HS256"]
keys = [
    { secret = "0123456789abcdef0123456789abcdef" },
    { kid = "second", secret = "a \"quoted\" secret with spaces, 48 bytes long" },
]
issuer = "https://issuer.example.com/"
audience = ["a", "b c"]
leeway = "0s"
consumer-claim = "https://example.com/claims/consumer"
cache-size = 1000000

[[authenticators]]
name = "pem"
type = "jwt"
algorithms = ["EdDSA", "RS256", "PS384", "ES384"]
jwks-file = "/etc/ringway/jwks.json"
leeway = "10m"
keys = [{ kid = "k1", pem = """
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----
""" }]

[[authenticators]]
name = "jwks-only"
type = "jwt"
algorithms = ["RS512"]
jwks-file = "jwks.json"
"#;

/// The AI sections with every key, in both key forms, every provider type
/// and strategy, and routes serving some models and all of them.
const AI_VARIANTS: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"

[[upstreams]]
name = "openai-api"
servers = ["api.openai.com:443"]
[upstreams.tls]

[[upstreams]]
name = "local"
servers = ["127.0.0.1:11434"]

[[consumers]]
name = "alice"
groups = ["pro"]

[[ai-providers]]
name = "openai"
type = "openai"
upstream = "openai-api"
headers = { "OpenAI-Organization" = "org-1", "X-Quoted" = "a \"b\"" }
keys = ["env:OPENAI_KEY_1", "file:/run/secrets/openai 2",
        { key = "env:OPENAI_KEY_3", requests-per-minute = 500, tokens-per-minute = 200000 }]
timeout = "1m30s"

[[ai-providers]]
name = "anthropic"
type = "anthropic"
upstream = "openai-api"
base-path = "/anthropic/v1"
keys = [{ key = "env:ANTHROPIC_KEY", tokens-per-minute = 1 }]

[[ai-providers]]
name = "gemini"
type = "gemini"
upstream = "openai-api"
key-header = "X-Key"
keys = ["file:gemini.key"]

[[ai-providers]]
name = "ollama"
type = "openai-compatible"
upstream = "local"
query = "api-version=2024-06-01"

[[ai-models]]
name = "chat"
max-tokens-default = 1000000
allow-groups = ["pro"]
targets = [
  { provider = "openai", model = "gpt-4o-mini" },
  { provider = "anthropic", model = "claude-3-5-haiku-latest", priority = 1000 },
]

[[ai-models]]
name = "llama3:8b"
strategy = "weighted"
targets = [
  { provider = "ollama", model = "llama3:8b", weight = 10000 },
  { provider = "gemini", model = "gemini-1.5-flash", weight = 1, priority = 2 },
]

[[routes]]
name = "every-model"
path-prefix = "/ai/"
[routes.ai]

[[routes]]
name = "one-model"
path-prefix = "/local/"
[routes.ai]
models = ["llama3:8b"]
messages = true
max-response-size = "1KiB"
[routes.retry]
attempts = 3
"#;

/// A `plain:` API key, which output writes as its hash.
const PLAIN_KEY: &str = "plain-key-for-tests-0123";

#[test]
fn json_and_toml_read_back_as_the_same_config() {
    let disabled_open_admin = "[admin]\nenabled = false\naddress = \"0.0.0.0:9901\"\n\
         [[listeners]]\naddress = \"127.0.0.1:1\"\n[[routes]]\n[routes.respond]\n";
    let cases = [
        ("example", EXAMPLE_CONFIG),
        ("default", DEFAULT_CONFIG),
        ("every variant", EVERY_VARIANT),
        ("ai", AI_VARIANTS),
        ("disabled admin", disabled_open_admin),
    ];
    for (case, src) in cases {
        let config = valid(src);
        let json = config.to_json(false);
        assert_eq!(
            Config::from_json_str(&json),
            Ok(config.clone()),
            "{case}:\n{json}"
        );
        let toml = config.to_toml();
        assert_eq!(
            Config::from_toml_str(&toml),
            Ok(config.clone()),
            "{case}:\n{toml}"
        );
    }
}

#[test]
fn a_minimal_config_renders_every_default() {
    let config =
        valid("[[listeners]]\naddress = \"127.0.0.1:8080\"\n[[routes]]\n[routes.respond]\n");
    let want = r#"{
  "workers": "auto",
  "driver": "io_uring",
  "connection-balance": "hash",
  "drain-timeout": "10s",
  "limits": {
    "max-target-length": "8KiB",
    "max-head-size": "32KiB",
    "max-headers": 100,
    "max-body-size": "1GiB",
    "header-read-timeout": "10s",
    "keepalive-timeout": "1m",
    "connect-timeout": "3s",
    "response-head-timeout": "30s",
    "body-idle-timeout": "1m",
    "send-timeout": "30s",
    "upstream-idle-timeout": "1m",
    "upstream-max-idle": 64,
    "max-connections": 65536
  },
  "cache": {
    "size": "64MiB",
    "max-entry-size": "1MiB",
    "lock-timeout": "5s",
    "targeted-field": "ringway-cache-control",
    "forward-targeted": false
  },
  "metrics": {
    "enabled": true
  },
  "access-log": {
    "enabled": false,
    "path": "-",
    "format": "json",
    "sample": 1.0,
    "query": true,
    "queue": 8192
  },
  "admin": {
    "enabled": true,
    "address": "127.0.0.1:9901"
  },
  "client-ip": {
    "trusted-proxies": []
  },
  "ip-rules": {
    "allow": [],
    "deny": []
  },
  "resolver": {
    "timeout": "2s",
    "hosts-file": "/etc/hosts"
  },
  "listeners": [
    {
      "name": "listener-0",
      "address": "127.0.0.1:8080",
      "encoded-slashes": "reject",
      "underscores-in-headers": "drop",
      "trust-request-id": false,
      "error-format": "text"
    }
  ],
  "upstreams": [],
  "consumers": [],
  "authenticators": [],
  "routes": [
    {
      "name": "route-0",
      "path-prefix": "/",
      "methods": [],
      "auth": [],
      "allow-groups": [],
      "ip-allow": [],
      "ip-deny": [],
      "respond": {
        "status": 200,
        "headers": {},
        "body": ""
      },
      "limits": {
        "max-body-size": "1GiB",
        "body-idle-timeout": "1m"
      },
      "rate-limits": []
    }
  ]
}"#;
    assert_eq!(config.to_json(false), want);
}

#[test]
fn values_are_written_in_their_largest_exact_unit() {
    let json = valid(EVERY_VARIANT).to_json(false);
    let want = [
        r#""drain-timeout": "0s""#,
        r#""max-target-length": "1536B""#,
        r#""max-head-size": "16KiB""#,
        r#""max-body-size": "10MB""#,
        r#""header-read-timeout": "90s""#,
        r#""keepalive-timeout": "250ms""#,
        r#""connect-timeout": "1h""#,
        r#""send-timeout": "1500ms""#,
        r#""response-head-timeout": "210s""#,
        r#""body-idle-timeout": "61s""#,
        r#""body-idle-timeout": "2h""#,
        r#""body-idle-timeout": "1ms""#,
        r#""max-connections": 10000000"#,
        r#""max-connections": 1,"#,
        r#""encoded-slashes": "decode""#,
        r#""encoded-slashes": "reject""#,
        r#""encoded-slashes": "pass""#,
        r#""underscores-in-headers": "pass""#,
        r#""underscores-in-headers": "drop""#,
        r#""trust-request-id": true"#,
        r#""trust-request-id": false"#,
        r#""max-body-size": "0B""#,
        r#""max-body-size": "1KB""#,
        r#""path": "/var/log/ringway/access \"quoted\".log""#,
        r#""format": "combined""#,
        r#""sample": 0.125"#,
        r#""query": false"#,
        r#""queue": 1"#,
        r#""access-log": false"#,
        // Names and matchers as validation holds them.
        r#""header": "authorization-key""#,
        r#""cache-ttl": "90m""#,
        r#""rate": "60/m""#,
        r#""rate": "1/d""#,
        r#""burst": 1000000000"#,
        r#""10.66.0.0/16""#,
        r#""::1/128""#,
        r#""192.0.2.1/32""#,
        r#""127.0.0.1/32""#,
        r#""host": "billing.example.com""#,
        r#""host": "*.example.com""#,
        r#""name": "listener-1""#,
        r#""name": "route-3""#,
        r#""address": "[fe80::1]:3001""#,
        r#""weight": 10000"#,
        r#""size": "100MB""#,
        r#""max-entry-size": "12345B""#,
        r#""lock-timeout": "0s""#,
        r#""size": "3MiB""#,
        r#""max-entry-size": "1536KiB""#,
        r#""key-headers": [
          "accept-language",
          "x-tenant"
        ]"#,
    ];
    for fragment in want {
        assert!(json.contains(fragment), "{fragment} not in\n{json}");
    }
    // A responder route has no upstream, so no upstream timeouts; it
    // still reads the client's body.
    let empty = &json[json.find(r#""name": "empty""#).expect("route")..];
    let empty = &empty[..empty.find(r#""name": "route-3""#).expect("next route")];
    assert!(!empty.contains("connect-timeout"), "{empty}");
    assert!(!empty.contains("response-head-timeout"), "{empty}");
    assert!(empty.contains(r#""body-idle-timeout": "61s""#), "{empty}");
    // Only a route left out of the access log says so.
    assert_eq!(json.matches(r#""access-log": false"#).count(), 1, "{json}");
    // An upstream without a cap has no `max-connections`.
    let app = &json[json.find(r#""name": "app""#).expect("upstream")..];
    let app = &app[..app.find(r#""name": "billing.v2""#).expect("next upstream")];
    assert!(!app.contains("max-connections"), "{app}");
}

#[test]
fn redacted_output_hides_every_secret_and_does_not_read_back() {
    let config = valid(EVERY_VARIANT);
    let secrets = [
        TOKEN,
        "0123456789abcdef0123456789abcdef",
        "a \\\"quoted\\\" secret",
        "$2b$12$R9h/cIPz0gi",
        "3bb23fc0e9edf5ca011cdaafa8c09aaa337d60c51212ecbfe50ea49bdae336af",
        "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
    ];
    let (json, toml) = (config.to_json(false), config.to_toml());
    for secret in &secrets[..4] {
        assert!(json.contains(secret), "{secret} not in\n{json}");
    }
    for secret in secrets.iter().filter(|s| !s.contains('\\')) {
        assert!(toml.contains(secret), "{secret} not in\n{toml}");
    }

    let redacted = config.to_json(true);
    for secret in secrets {
        assert!(!redacted.contains(secret), "{secret} in\n{redacted}");
    }
    assert!(redacted.contains(r#""token": "<redacted>""#), "{redacted}");
    // Public keys and names are not secrets.
    assert!(redacted.contains("MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="));
    assert!(redacted.contains("carol@example.com"));
    let errors = Config::from_json_str(&redacted).expect_err("redacted output must not load");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "admin.token",
            "consumers[0].api-keys[0]",
            "consumers[0].api-keys[1]",
            "consumers[1].basic.password-hash",
            "authenticators[4].keys[0].secret",
            "authenticators[4].keys[1].secret",
        ],
        "{errors}"
    );

    // Without secrets there is nothing to hide.
    let example = valid(
        &EXAMPLE_CONFIG
            .replace("token =", "# token =")
            .replace("api-keys =", "# api-keys =")
            .replace("basic =", "# basic ="),
    );
    assert_eq!(example.admin.token, None);
    assert_eq!(example.to_json(true), example.to_json(false));
}

#[test]
fn plain_api_keys_are_written_as_their_hash() {
    let src = format!(
        "[[listeners]]\naddress = \"127.0.0.1:1\"\n[[routes]]\n[routes.respond]\n\
         [[consumers]]\nname = \"dev\"\napi-keys = [\"plain:{PLAIN_KEY}\"]\n"
    );
    let config = valid(&src);
    assert!(config.consumers[0].api_keys[0].plain);
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);

    for (format, text, back) in [
        (
            "json",
            config.to_json(false),
            Config::from_json_str(&config.to_json(false)),
        ),
        (
            "toml",
            config.to_toml(),
            Config::from_toml_str(&config.to_toml()),
        ),
    ] {
        assert!(!text.contains(PLAIN_KEY), "{format}: {text}");
        let back = back.unwrap_or_else(|e| panic!("{format}: {e}\n{text}"));
        let key = back.consumers[0].api_keys[0];
        // The same key, now stored as a hash, so no longer warned about.
        assert_eq!(
            key.sha256, config.consumers[0].api_keys[0].sha256,
            "{format}"
        );
        assert!(!key.plain, "{format}");
        assert!(back.warnings.is_empty(), "{format}: {:?}", back.warnings);
    }
    let hashed = format!(
        "sha256:{}",
        config.consumers[0].api_keys[0]
            .sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert!(config.to_json(false).contains(&hashed));
}

#[test]
fn keys_a_route_may_not_set_are_left_out() {
    let json = valid(EVERY_VARIANT).to_json(false);
    let route = |name: &str| {
        let start = json
            .find(&format!(r#""name": "{name}""#))
            .unwrap_or_else(|| panic!("route {name}"));
        let rest = &json[start..];
        let end = rest[1..].find(r#""name": ""#).map_or(rest.len(), |i| i + 1);
        rest[..end].to_owned()
    };
    let policed = route("policed");
    for key in [
        "forward-credentials",
        "consumer-header",
        "rate-limit-headers",
    ] {
        assert!(policed.contains(key), "{key} not in {policed}");
    }
    assert!(
        policed.contains(r#""consumer-header": "x-who""#),
        "{policed}"
    );
    assert!(policed.contains(r#""key": "header:x-tenant""#), "{policed}");
    // No upstream: nothing to forward credentials or a consumer to.
    let respond = route("respond-with-auth");
    assert!(respond.contains("rate-limit-headers"), "{respond}");
    for key in ["forward-credentials", "consumer-header"] {
        assert!(!respond.contains(key), "{key} in {respond}");
    }
    // No auth and no rate limits.
    let plain = route("route-3");
    for key in [
        "forward-credentials",
        "consumer-header",
        "rate-limit-headers",
        "concurrency",
        "cache",
    ] {
        assert!(!plain.contains(key), "{key} in {plain}");
    }
    // A route cache on the shared shard has no `size`, and its
    // max-entry-size (and range-fetch-max, from it) is written resolved
    // from [cache].
    assert!(
        policed.contains(
            r#""cache": {
        "enabled": true,
        "max-entry-size": "12345B",
        "sort-query": false,
        "ignore-params": [],
        "key-headers": [],
        "range-fetch-max": "12345B",
        "serve-stale-on-error": false
      }"#
        ),
        "{policed}"
    );
    // Caching turned off reads back the same as no [routes.cache].
    let off = route("cache-off");
    assert!(!off.contains(r#""cache":"#), "{off}");
}

#[test]
fn route_caches_read_back_in_both_formats() {
    let config = valid(EVERY_VARIANT);
    let caches: Vec<_> = config.routes.iter().map(|r| r.cache.clone()).collect();
    assert_eq!(
        caches.iter().filter(|c| c.is_some()).count(),
        2,
        "{caches:#?}"
    );
    let toml = config.to_toml();
    assert!(toml.contains("[cache]\nsize = \"100MB\""), "{toml}");
    for back in [
        Config::from_toml_str(&toml),
        Config::from_json_str(&config.to_json(false)),
    ] {
        let back = back.expect("reads back");
        let got: Vec<_> = back.routes.iter().map(|r| r.cache.clone()).collect();
        assert_eq!(got, caches);
        assert_eq!(back.cache, config.cache);
    }
}

proptest! {
    #[test]
    fn any_cache_reads_back(
        global in (64u64 << 10)..=(1 << 40),
        global_entry in 1u64..=(1 << 39),
        lock_ms in 0u64..=60_000,
        own in prop::option::of((64u64 << 10)..=(1 << 40)),
        route_entry in prop::option::of(1u64..=(1 << 39)),
        sort_query in any::<bool>(),
        params in prop::collection::hash_set("[a-zA-Z0-9_.%\\[\\]-]{1,12}", 0..4),
        headers in prop::collection::hash_set("x-[a-z0-9]{1,8}", 0..=8),
    ) {
        // Entry sizes as a share of the shard they go into, so that most
        // cases are valid; the rest must be refused, not mangled.
        let global_entry = global_entry % (global / 2) + 1;
        let shard = own.unwrap_or(global);
        let route_entry = route_entry.map(|e| e % (shard / 2) + 1);
        let inherited_fits = route_entry.is_some() || global_entry <= shard / 2;
        let quote = |list: Vec<String>| {
            list.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
        };
        let mut route = format!(
            "sort-query = {sort_query}\nignore-params = [{}]\nkey-headers = [{}]\n",
            quote(params.into_iter().collect()),
            quote(headers.into_iter().collect()),
        );
        if let Some(own) = own {
            route.push_str(&format!("size = {own}\n"));
        }
        if let Some(entry) = route_entry {
            route.push_str(&format!("max-entry-size = {entry}\n"));
        }
        let src = format!(
            r#"
[cache]
size = {global}
max-entry-size = {global_entry}
lock-timeout = "{lock_ms}ms"
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "u"
servers = ["127.0.0.1:1"]
[[routes]]
upstream = "u"
[routes.cache]
{route}"#
        );
        let config = match Config::from_toml_str(&src) {
            Ok(config) => config,
            Err(errors) => {
                prop_assert!(!inherited_fits, "{}\n{}", errors, src);
                prop_assert_eq!(errors.len(), 1);
                prop_assert_eq!(errors.0[0].path.as_str(), "routes[0].cache.size");
                return Ok(());
            }
        };
        prop_assert!(inherited_fits);
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }

    #[test]
    fn any_limits_read_back(
        sizes in prop::array::uniform3(0u64..1 << 41),
        head in 1u64..=1 << 20,
        millis in prop::array::uniform6(1u64..1 << 40),
        max_headers in 1u64..=512,
        max_idle in 0u64..=10_000,
        max_connections in 1u64..=10_000_000,
        upstream_connections in prop::option::of(1u32..=10_000_000),
        slashes in prop::sample::select(vec!["reject", "decode", "pass"]),
        underscores in prop::sample::select(vec!["drop", "pass"]),
        trust_request_id in any::<bool>(),
        workers in prop::option::of(1usize..=1024),
        weight in 1u32..=10_000,
    ) {
        let [body, route_body, target] = sizes;
        let target = target % head + 1;
        let [connect, response, send, route_connect, body_idle, route_body_idle] = millis;
        let upstream_connections = upstream_connections
            .map_or_else(String::new, |n| format!("max-connections = {n}"));
        let workers = workers.map_or_else(|| "\"auto\"".to_owned(), |n| n.to_string());
        let src = format!(
            r#"
workers = {workers}
[limits]
max-target-length = {target}
max-head-size = {head}
max-body-size = {body}
max-headers = {max_headers}
upstream-max-idle = {max_idle}
connect-timeout = "{connect}ms"
response-head-timeout = "{response}ms"
send-timeout = "{send}ms"
body-idle-timeout = "{body_idle}ms"
max-connections = {max_connections}
[[listeners]]
address = "127.0.0.1:8080"
encoded-slashes = "{slashes}"
underscores-in-headers = "{underscores}"
trust-request-id = {trust_request_id}
[[upstreams]]
name = "u"
servers = [{{ address = "127.0.0.1:1", weight = {weight} }}]
{upstream_connections}
[[routes]]
upstream = "u"
limits = {{ max-body-size = {route_body}, connect-timeout = "{route_connect}ms", body-idle-timeout = "{route_body_idle}ms" }}
"#
        );
        let config = Config::from_toml_str(&src).expect("valid config");
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }

    #[test]
    fn any_access_log_reads_back(
        enabled in any::<bool>(),
        path in prop::option::of("-|[a-zA-Z0-9 ._/\\\\\"é-]{0,30}[a-z]"),
        combined in any::<bool>(),
        sample in prop::option::of(0u32..=1_000_000),
        query in any::<bool>(),
        queue in 1u32..=1_000_000,
        route_logged in any::<bool>(),
    ) {
        // A literal string: backslashes and quotes as they are.
        let path = path.map_or_else(String::new, |p| format!("path = '''{p}'''"));
        let sample = sample.map_or_else(String::new, |m| format!("sample = {}", f64::from(m) / 1e6));
        let format = if combined { "combined" } else { "json" };
        let src = format!(
            r#"
[access-log]
enabled = {enabled}
{path}
format = "{format}"
{sample}
query = {query}
queue = {queue}
[[listeners]]
address = "127.0.0.1:8080"
[[routes]]
access-log = {route_logged}
[routes.respond]
"#
        );
        let config = Config::from_toml_str(&src).expect("valid config");
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }

    #[test]
    fn any_tls_reads_back(
        tls13_only in any::<bool>(),
        suites in prop::sample::subsequence(ringway_config::ListenerTls::CIPHER_SUITES.to_vec(), 0..=9),
        names in prop::collection::vec(
            prop::collection::hash_set("(\\*\\.)?[a-zA-Z0-9_-]{1,8}(\\.[a-z0-9-]{1,8}){0,2}", 0..4),
            1..4,
        ),
        handshake_ms in 1_000u64..=60_000,
        session_cache in 0usize..=1_000_000,
        tickets in any::<bool>(),
        ticket_s in 60u64..=21_600,
        client_auth in prop::option::of((any::<bool>(), "x-[a-z0-9]{1,12}")),
        upstream in prop::option::of((any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>())),
        server_name in prop::option::of("[a-z]{1,8}(\\.[a-z]{1,8}){0,2}|10\\.0\\.[0-9]{1,2}\\.[0-9]{1,2}"),
        redirect in prop::option::of(prop::option::of(1u16..)),
        hsts in prop::option::of((0u64..=9_999_999_999, any::<bool>(), any::<bool>())),
        require_cert in any::<bool>(),
    ) {
        // Names across certificates must differ (ignoring case), so the
        // later copies are dropped, and a certificate left without names
        // gets its own.
        let mut seen = std::collections::HashSet::new();
        let certificates: Vec<String> = names
            .into_iter()
            .enumerate()
            .map(|(j, set)| {
                let kept: Vec<String> = set
                    .into_iter()
                    .filter(|n| seen.insert(n.to_ascii_lowercase()))
                    .map(|n| format!("{n:?}"))
                    .collect();
                let names = if kept.is_empty() {
                    String::new()
                } else {
                    format!(", names = [{}]", kept.join(", "))
                };
                format!("{{ cert = \"c{j}.pem\", key = \"k{j}.key\"{names} }}")
            })
            .collect();
        let suites: Vec<String> = suites
            .into_iter()
            .filter(|s| !tls13_only || s.starts_with("TLS13_"))
            .map(|s| format!("{s:?}"))
            .collect();
        let mut listener = format!(
            "certificates = [{}]\nmin-version = \"{}\"\nhandshake-timeout = \"{handshake_ms}ms\"\n\
             session-cache = {session_cache}\nsession-tickets = {tickets}\nticket-lifetime = \"{ticket_s}s\"\n",
            certificates.join(", "),
            if tls13_only { "1.3" } else { "1.2" },
        );
        if !suites.is_empty() {
            listener.push_str(&format!("cipher-suites = [{}]\n", suites.join(", ")));
        }
        if let Some((required, header)) = &client_auth {
            let mode = if *required { "required" } else { "optional" };
            listener.push_str(&format!(
                "[listeners.tls.client-auth]\nmode = \"{mode}\"\nca = \"ca.pem\"\nsubject-header = \"{header}\"\n"
            ));
        }
        let mut upstream_tls = String::new();
        if let Some((ca, verify, client, sni)) = upstream {
            upstream_tls.push_str(&format!("[upstreams.tls]\nverify = {verify}\nsni = {sni}\n"));
            if ca {
                upstream_tls.push_str("ca = \"ca.pem\"\n");
            }
            if client {
                upstream_tls.push_str("client-cert = \"gw.pem\"\nclient-key = \"gw.key\"\n");
            }
            if let Some(name) = &server_name {
                upstream_tls.push_str(&format!("server-name = \"{name}\"\n"));
            }
        }
        let mut route = format!("require-client-cert = {require_cert}\n");
        if let Some(port) = redirect {
            route.push_str("redirect-https = true\n");
            if let Some(port) = port {
                route.push_str(&format!("https-port = {port}\n"));
            }
        }
        if let Some((age, sub, preload)) = hsts {
            let mut value = format!("max-age={age}");
            if sub {
                value.push_str("; includeSubDomains");
            }
            if preload {
                value.push_str("; preload");
            }
            route.push_str(&format!("hsts = \"{value}\"\n"));
        }
        let src = format!(
            r#"
[[listeners]]
address = "127.0.0.1:8080"
[[listeners]]
address = "127.0.0.1:8443"
[listeners.tls]
{listener}
[[upstreams]]
name = "u"
servers = ["127.0.0.1:1"]
{upstream_tls}
[[routes]]
upstream = "u"
{route}"#
        );
        let config = Config::from_toml_str(&src).map_err(|e| TestCaseError::fail(format!("{e}\n{src}")))?;
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }

    #[test]
    fn any_policy_reads_back(
        count in 1u64..=1_000_000_000,
        period in prop::sample::select(vec!["s", "m", "h", "d"]),
        burst in 1u64..=1_000_000_000,
        max_keys in 1usize..=10_000_000,
        max in 1u64..=1_000_000,
        v4 in any::<u32>(),
        p4 in 0u8..=32,
        v6 in any::<u128>(),
        p6 in 0u8..=128,
        hash in any::<[u8; 32]>(),
        leeway_ms in 0u64..=600_000,
        ttl_ms in 1u64..1 << 40,
        cache_size in 0usize..=1_000_000,
    ) {
        let net = |ip: std::net::IpAddr, prefix: u8| {
            ringway_config::IpNet::new(ip, prefix).expect("prefix in range").trunc().to_string()
        };
        let v4 = net(std::net::Ipv4Addr::from(v4).into(), p4);
        let v6 = net(std::net::Ipv6Addr::from(v6).into(), p6);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let src = format!(
            r#"
[client-ip]
trusted-proxies = ["{v4}", "{v6}"]
[ip-rules]
deny = ["{v6}"]
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "u"
servers = ["127.0.0.1:1"]
[[consumers]]
name = "c"
api-keys = ["sha256:{hex}"]
[[authenticators]]
name = "j"
type = "jwt"
algorithms = ["HS256"]
keys = [{{ secret = "{hex}" }}]
leeway = "{leeway_ms}ms"
cache-size = {cache_size}
[[authenticators]]
name = "b"
type = "basic"
cache-ttl = "{ttl_ms}ms"
cache-size = {cache_size}
[[routes]]
upstream = "u"
auth = ["b", "j"]
ip-allow = ["{v4}"]
[[routes.rate-limits]]
key = "header:x-k"
rate = "{count}/{period}"
burst = {burst}
max-keys = {max_keys}
[routes.concurrency]
key = "consumer"
max = {max}
max-keys = {max_keys}
"#
        );
        let config = Config::from_toml_str(&src).expect("valid config");
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }
}
