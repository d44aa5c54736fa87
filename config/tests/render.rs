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
/// token, and durations and sizes that are not round in any one unit.
const EVERY_VARIANT: &str = r#"
workers = 3
driver = "epoll"
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
send-timeout = "1500ms"
upstream-idle-timeout = "1s"
upstream-max-idle = 0

[admin]
address = "[::]:9901"
token = "Zm9vYmFyYmF6cXV4-_~!0123"

[[listeners]]
name = "public"
address = "0.0.0.0:80"

[[listeners]]
address = "[::1]:0"

[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000", { address = "[fe80::1]:3001", weight = 10000 }]

[[upstreams]]
name = "billing.v2"
servers = [{ address = "10.0.0.7:9000", weight = 2 }]

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

[[routes]]
name = "empty"
path = "/empty"
[routes.respond]
status = 204

[[routes]]
upstream = "app"
"#;

#[test]
fn json_and_toml_read_back_as_the_same_config() {
    let disabled_open_admin = "[admin]\nenabled = false\naddress = \"0.0.0.0:9901\"\n\
         [[listeners]]\naddress = \"127.0.0.1:1\"\n[[routes]]\n[routes.respond]\n";
    let cases = [
        ("example", EXAMPLE_CONFIG),
        ("default", DEFAULT_CONFIG),
        ("every variant", EVERY_VARIANT),
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
    "send-timeout": "30s",
    "upstream-idle-timeout": "1m",
    "upstream-max-idle": 64
  },
  "admin": {
    "enabled": true,
    "address": "127.0.0.1:9901"
  },
  "listeners": [
    {
      "name": "listener-0",
      "address": "127.0.0.1:8080"
    }
  ],
  "upstreams": [],
  "routes": [
    {
      "name": "route-0",
      "path-prefix": "/",
      "methods": [],
      "respond": {
        "status": 200,
        "headers": {},
        "body": ""
      },
      "limits": {
        "max-body-size": "1GiB"
      }
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
        r#""max-body-size": "0B""#,
        r#""max-body-size": "1KB""#,
        // Names and matchers as validation holds them.
        r#""host": "billing.example.com""#,
        r#""host": "*.example.com""#,
        r#""name": "listener-1""#,
        r#""name": "route-3""#,
        r#""address": "[fe80::1]:3001""#,
        r#""weight": 10000"#,
    ];
    for fragment in want {
        assert!(json.contains(fragment), "{fragment} not in\n{json}");
    }
    // A responder route has no upstream, so no upstream timeouts.
    let empty = &json[json.find(r#""name": "empty""#).expect("route")..];
    let empty = &empty[..empty.find(r#""name": "route-3""#).expect("next route")];
    assert!(!empty.contains("timeout"), "{empty}");
}

#[test]
fn redacted_output_hides_the_token_and_does_not_read_back() {
    let config = valid(EVERY_VARIANT);
    assert!(config.to_json(false).contains(TOKEN));
    assert!(config.to_toml().contains(TOKEN));

    let redacted = config.to_json(true);
    assert!(!redacted.contains(TOKEN), "{redacted}");
    assert!(redacted.contains(r#""token": "<redacted>""#), "{redacted}");
    let errors = Config::from_json_str(&redacted).expect_err("redacted output must not load");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["admin.token"], "{errors}");

    // Without a token there is nothing to hide.
    let example = valid(&EXAMPLE_CONFIG.replace("token =", "# token ="));
    assert_eq!(example.admin.token, None);
    assert_eq!(example.to_json(true), example.to_json(false));
}

proptest! {
    #[test]
    fn any_limits_read_back(
        sizes in prop::array::uniform3(0u64..1 << 41),
        head in 1u64..=1 << 20,
        millis in prop::array::uniform4(1u64..1 << 40),
        max_headers in 1u64..=512,
        max_idle in 0u64..=10_000,
        workers in prop::option::of(1usize..=1024),
        weight in 1u32..=10_000,
    ) {
        let [body, route_body, target] = sizes;
        let target = target % head + 1;
        let [connect, response, send, route_connect] = millis;
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
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "u"
servers = [{{ address = "127.0.0.1:1", weight = {weight} }}]
[[routes]]
upstream = "u"
limits = {{ max-body-size = {route_body}, connect-timeout = "{route_connect}ms" }}
"#
        );
        let config = Config::from_toml_str(&src).expect("valid config");
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }
}
