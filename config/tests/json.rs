//! Configs written as JSON: the same schema and checks as TOML, the same
//! paths in errors, positions in the JSON.

mod common;

use common::valid;
use ringway_config::{Config, ConfigError};

/// The errors a JSON config produces; panics if it is valid.
fn json_errors(src: &str) -> Vec<ConfigError> {
    match Config::from_json_str(src) {
        Ok(config) => panic!("expected errors, got a config: {config:#?}\n--- source ---\n{src}"),
        Err(errors) => errors.0,
    }
}

/// The 1-based line and character column where `needle` first occurs.
fn position_of(src: &str, needle: &str) -> (usize, usize) {
    let offset = src
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {src}"));
    let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = src[..offset].matches('\n').count() + 1;
    (line, src[line_start..offset].chars().count() + 1)
}

/// A valid JSON config, like `common::BASE`, with `top` members added to
/// the top-level object and `route` added as `routes[1]` when not empty.
fn with_base(top: &str, route: &str) -> String {
    let route = if route.is_empty() {
        String::new()
    } else {
        format!(",\n    {route}")
    };
    let top = if top.is_empty() {
        String::new()
    } else {
        format!("{top},\n  ")
    };
    format!(
        r#"{{
  {top}"listeners": [{{ "address": "127.0.0.1:8080" }}],
  "upstreams": [{{ "name": "app", "servers": ["127.0.0.1:3000"] }}],
  "routes": [
    {{ "name": "base", "path": "/base", "upstream": "app" }}{route}
  ]
}}
"#
    )
}

#[test]
fn json_gives_the_config_toml_gives() {
    let cases = [
        (
            r#"{
              "listeners": [{ "address": "127.0.0.1:8080" }],
              "routes": [{ "respond": {} }]
            }"#,
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[[routes]]\n[routes.respond]\n",
        ),
        (
            r#"{
              "cache": { "size": "256MiB", "max-entry-size": 65536, "lock-timeout": "250ms" },
              "listeners": [{ "address": "127.0.0.1:8080" }],
              "upstreams": [{ "name": "app", "servers": ["127.0.0.1:3000"] }],
              "routes": [
                {
                  "path-prefix": "/a/",
                  "upstream": "app",
                  "cache": {
                    "size": "1MiB",
                    "sort-query": true,
                    "ignore-params": ["utm_source"],
                    "key-headers": ["Accept-Language"]
                  }
                },
                { "path-prefix": "/b/", "upstream": "app", "cache": {} },
                { "path-prefix": "/c/", "upstream": "app", "cache": { "enabled": false } }
              ]
            }"#,
            r#"
[cache]
size = "256MiB"
max-entry-size = 65536
lock-timeout = "250ms"
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000"]
[[routes]]
path-prefix = "/a/"
upstream = "app"
[routes.cache]
size = "1MiB"
sort-query = true
ignore-params = ["utm_source"]
key-headers = ["Accept-Language"]
[[routes]]
path-prefix = "/b/"
upstream = "app"
[routes.cache]
[[routes]]
path-prefix = "/c/"
upstream = "app"
"#,
        ),
        (
            r#"{
              "workers": 4,
              "driver": "epoll",
              "drain-timeout": "1m30s",
              "limits": {
                "max-body-size": 1024,
                "keepalive-timeout": "250ms",
                "max-headers": 50,
                "body-idle-timeout": "2m",
                "max-connections": 100
              },
              "admin": { "address": "0.0.0.0:9901", "token": "0123456789abcdef" },
              "listeners": [{ "name": "v6", "address": "[::1]:8080", "encoded-slashes": "decode", "trust-request-id": true }],
              "upstreams": [{
                "name": "app",
                "servers": ["127.0.0.1:3000", { "address": "127.0.0.1:3001", "weight": 3 }],
                "max-connections": 8
              }],
              "routes": [
                {
                  "host": "*.Example.com",
                  "path-prefix": "/api/",
                  "methods": ["GET", "POST"],
                  "upstream": "app",
                  "host-header": "app.internal",
                  "limits": {
                    "max-body-size": "10MiB",
                    "connect-timeout": "1s",
                    "body-idle-timeout": "5s"
                  }
                },
                {
                  "name": "teapot",
                  "host": "tea.example.com",
                  "path": "/brew",
                  "respond": {
                    "status": 418,
                    "headers": { "content-type": "text/plain", "x.y": "\u00e9" },
                    "body": "short and stout\n"
                  }
                }
              ]
            }"#,
            r#"
workers = 4
driver = "epoll"
drain-timeout = "1m30s"
[limits]
max-body-size = 1024
keepalive-timeout = "250ms"
max-headers = 50
body-idle-timeout = "2m"
max-connections = 100
[admin]
address = "0.0.0.0:9901"
token = "0123456789abcdef"
[[listeners]]
name = "v6"
address = "[::1]:8080"
encoded-slashes = "decode"
trust-request-id = true
[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000", { address = "127.0.0.1:3001", weight = 3 }]
max-connections = 8
[[routes]]
host = "*.Example.com"
path-prefix = "/api/"
methods = ["GET", "POST"]
upstream = "app"
host-header = "app.internal"
limits = { max-body-size = "10MiB", connect-timeout = "1s", body-idle-timeout = "5s" }
[[routes]]
name = "teapot"
host = "tea.example.com"
path = "/brew"
[routes.respond]
status = 418
headers = { "content-type" = "text/plain", "x.y" = "é" }
body = "short and stout\n"
"#,
        ),
        (
            r#"{
              "client-ip": { "trusted-proxies": ["10.0.0.0/8"] },
              "ip-rules": { "deny": ["::1"] },
              "listeners": [{ "address": "127.0.0.1:8080" }],
              "upstreams": [{ "name": "app", "servers": ["127.0.0.1:3000"] }],
              "consumers": [{
                "name": "bot",
                "groups": ["ops"],
                "api-keys": ["plain:bot-key-0123"],
                "basic": { "username": "bot", "password-hash": "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW" }
              }],
              "authenticators": [
                { "name": "keys", "type": "api-key", "query": "key" },
                {
                  "name": "sso",
                  "type": "jwt",
                  "algorithms": ["HS256"],
                  "keys": [{ "kid": "a", "secret": "0123456789abcdef0123456789abcdef" }],
                  "leeway": "1m"
                }
              ],
              "routes": [{
                "upstream": "app",
                "auth": ["sso", "keys"],
                "allow-groups": ["ops"],
                "consumer-header": "X-Who",
                "rate-limit-headers": true,
                "ip-allow": ["10.0.0.0/8"],
                "rate-limits": [
                  { "key": "consumer", "rate": "10/s" },
                  { "key": "header:X-Tenant", "rate": "100/m", "burst": 5 }
                ],
                "concurrency": { "key": "client-ip", "max": 4, "status": 429 }
              }]
            }"#,
            r#"
[client-ip]
trusted-proxies = ["10.0.0.0/8"]
[ip-rules]
deny = ["::1"]
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000"]
[[consumers]]
name = "bot"
groups = ["ops"]
api-keys = ["plain:bot-key-0123"]
basic = { username = "bot", password-hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW" }
[[authenticators]]
name = "keys"
type = "api-key"
query = "key"
[[authenticators]]
name = "sso"
type = "jwt"
algorithms = ["HS256"]
keys = [{ kid = "a", secret = "0123456789abcdef0123456789abcdef" }]
leeway = "1m"
[[routes]]
upstream = "app"
auth = ["sso", "keys"]
allow-groups = ["ops"]
consumer-header = "X-Who"
rate-limit-headers = true
ip-allow = ["10.0.0.0/8"]
[[routes.rate-limits]]
key = "consumer"
rate = "10/s"
[[routes.rate-limits]]
key = "header:X-Tenant"
rate = "100/m"
burst = 5
[routes.concurrency]
key = "client-ip"
max = 4
status = 429
"#,
        ),
    ];
    for (json, toml) in cases {
        let from_json = Config::from_json_str(json)
            .unwrap_or_else(|e| panic!("{}\n--- source ---\n{json}", e.with_file("test.json")));
        assert_eq!(from_json, valid(toml), "{json}");
    }
}

#[test]
fn errors_carry_the_toml_path_and_the_json_position() {
    // (case, top-level members, routes[1], path, text the error points at,
    // message fragment); each breaks one rule and gets exactly one error.
    let cases = [
        (
            "workers",
            r#""workers": 2000"#,
            "",
            "workers",
            "2000",
            "from 1 to 1024",
        ),
        (
            "duration without unit",
            r#""drain-timeout": 10"#,
            "",
            "drain-timeout",
            "10,",
            "needs a unit",
        ),
        (
            "size unit",
            r#""limits": { "max-body-size": "1M" }"#,
            "",
            "limits.max-body-size",
            "\"1M\"",
            "unknown size unit \"M\"",
        ),
        (
            "unknown limit",
            r#""limits": { "conect-timeout": "1s" }"#,
            "",
            "limits.conect-timeout",
            "\"conect-timeout\"",
            "did you mean `connect-timeout`?",
        ),
        (
            "body idle timeout",
            r#""limits": { "body-idle-timeout": "0s" }"#,
            "",
            "limits.body-idle-timeout",
            "\"0s\"",
            "greater than zero",
        ),
        (
            "max connections",
            r#""limits": { "max-connections": 0 }"#,
            "",
            "limits.max-connections",
            "0 }",
            "from 1 to 10000000",
        ),
        (
            "unknown top-level key",
            r#""colour": "blue""#,
            "",
            "colour",
            "\"colour\"",
            "unknown key",
        ),
        (
            "limits not an object",
            r#""limits": 5"#,
            "",
            "limits",
            "5,",
            "expected an object, found integer",
        ),
        (
            "admin as an array",
            r#""admin": []"#,
            "",
            "admin",
            "[],",
            "expected an object, found array",
        ),
        (
            "admin open",
            r#""admin": { "address": "0.0.0.0:9901" }"#,
            "",
            "admin.address",
            "\"0.0.0.0:9901\"",
            "the admin API listens on 0.0.0.0:9901 without admin.token; \
             set a token or use a loopback address",
        ),
        (
            "admin token",
            r#""admin": { "token": "too-short" }"#,
            "",
            "admin.token",
            "\"too-short\"",
            "9 characters long",
        ),
        (
            "unknown upstream",
            "",
            r#"{ "path": "/b", "upstream": "billing" }"#,
            "routes[1].upstream",
            "\"billing\"",
            "no upstream named \"billing\"",
        ),
        (
            "no action",
            "",
            r#"{ "path": "/b" }"#,
            "routes[1]",
            "{ \"path\": \"/b\" }",
            "no action",
        ),
        (
            "unknown route key",
            "",
            r#"{ "path-prefx": "/b", "upstream": "app" }"#,
            "routes[1].path-prefx",
            "\"path-prefx\"",
            "did you mean `path-prefix`?",
        ),
        (
            "wrong type",
            "",
            r#"{ "path": 5, "upstream": "app" }"#,
            "routes[1].path",
            "5,",
            "invalid type: integer `5`, expected a string",
        ),
        (
            "method case",
            "",
            r#"{ "path": "/b", "methods": ["GET", "post"], "upstream": "app" }"#,
            "routes[1].methods[1]",
            "\"post\"",
            "write \"POST\"",
        ),
        (
            "header name",
            "",
            r#"{ "respond": { "headers": { "x a": "v1" } } }"#,
            "routes[1].respond.headers.\"x a\"",
            "\"v1\"",
            "contains ' '",
        ),
        (
            "headers as an array",
            "",
            r#"{ "respond": { "headers": ["x"] } }"#,
            "routes[1].respond.headers",
            "[\"x\"]",
            "invalid type: array",
        ),
        (
            "route limits on a responder",
            "",
            r#"{ "respond": {}, "limits": { "connect-timeout": "1s" } }"#,
            "routes[1].limits.connect-timeout",
            "\"1s\"",
            "only to routes that proxy",
        ),
        (
            "route body idle timeout",
            "",
            r#"{ "respond": {}, "limits": { "body-idle-timeout": 30 } }"#,
            "routes[1].limits.body-idle-timeout",
            "30 }",
            "needs a unit",
        ),
        (
            "route not an object",
            "",
            r#""/b""#,
            "routes[1]",
            "\"/b\"",
            "expected an object, found string",
        ),
        (
            "same match",
            "",
            r#"{ "path": "/base", "upstream": "app" }"#,
            "routes[1]",
            "{ \"path\": \"/base\"",
            "same match as routes[0]",
        ),
        (
            "rate period",
            "",
            r#"{ "path": "/b", "upstream": "app", "rate-limits": [{ "key": "route", "rate": "10/sec" }] }"#,
            "routes[1].rate-limits[0].rate",
            "\"10/sec\"",
            "unknown period \"sec\"",
        ),
        (
            "consumer key without auth",
            "",
            r#"{ "path": "/b", "upstream": "app", "concurrency": { "key": "consumer", "max": 2 } }"#,
            "routes[1].concurrency.key",
            "\"consumer\",",
            "needs `auth`",
        ),
        (
            "plain key too short",
            r#""consumers": [{ "name": "a", "api-keys": ["plain:x"] }]"#,
            "",
            "consumers[0].api-keys[0]",
            "\"plain:x\"",
            "1 characters long",
        ),
        (
            "key of another type",
            r#""authenticators": [{ "name": "a", "type": "basic", "query": "k" }]"#,
            "",
            "authenticators[0].query",
            "\"k\"",
            "not a key of type = \"basic\" authenticators",
        ),
        (
            "trusted proxy host bits",
            r#""client-ip": { "trusted-proxies": ["10.0.0.1/8"] }"#,
            "",
            "client-ip.trusted-proxies[0]",
            "\"10.0.0.1/8\"",
            "did you mean 10.0.0.0/8?",
        ),
        (
            "cache size",
            r#""cache": { "size": "1KiB" }"#,
            "",
            "cache.size",
            "\"1KiB\"",
            "must be at least 64KiB",
        ),
        (
            "cache entry over half the shard",
            r#""cache": { "size": "1MiB", "max-entry-size": "1MiB" }"#,
            "",
            "cache.max-entry-size",
            "\"1MiB\" }",
            "an entry may use at most half a store",
        ),
        (
            "cache as an array",
            r#""cache": []"#,
            "",
            "cache",
            "[],",
            "expected an object, found array",
        ),
        (
            "route cache on a responder",
            "",
            r#"{ "path": "/b", "respond": {}, "cache": {} }"#,
            "routes[1].cache",
            "{} }",
            "caching needs an upstream route",
        ),
        (
            "route cache entry over its own shard",
            "",
            r#"{ "path": "/b", "upstream": "app", "cache": { "size": "64KiB" } }"#,
            "routes[1].cache.size",
            "\"64KiB\"",
            "max-entry-size (1MiB, from [cache]) is more than half of this route's size (64KiB)",
        ),
        (
            "ignored parameter",
            "",
            r#"{ "path": "/b", "upstream": "app", "cache": { "ignore-params": ["a", "b&c"] } }"#,
            "routes[1].cache.ignore-params[1]",
            "\"b&c\"",
            "contains '&'",
        ),
        (
            "key header",
            "",
            r#"{ "path": "/b", "upstream": "app", "cache": { "key-headers": ["host"] } }"#,
            "routes[1].cache.key-headers[0]",
            "\"host\"",
            "part of every cache key already",
        ),
        (
            "unknown route cache key",
            "",
            r#"{ "path": "/b", "upstream": "app", "cache": { "sort-querry": true } }"#,
            "routes[1].cache.sort-querry",
            "\"sort-querry\"",
            "did you mean `sort-query`?",
        ),
        (
            "key twice",
            r#""workers": 2, "workers": 4"#,
            "",
            "workers",
            "\"workers\": 4",
            "duplicate key",
        ),
    ];
    for (case, top, route, path, at, fragment) in cases {
        let src = with_base(top, route);
        let errors = json_errors(&src);
        assert_eq!(errors.len(), 1, "{case}: {errors:#?}\n{src}");
        let e = &errors[0];
        assert_eq!(e.path, path, "{case}: {e}");
        assert!(e.message.contains(fragment), "{case}: {e}");
        let want = position_of(&src, at);
        assert_eq!((e.line, e.column), want, "{case}: {e}\n{src}");
    }
}

#[test]
fn listener_and_upstream_keys_are_placed_in_the_json() {
    let src = r#"{
  "listeners": [
    { "address": "127.0.0.1:8080" },
    { "address": "127.0.0.1:8081", "encoded-slashes": "allow" },
    { "address": "127.0.0.1:8082", "trust-request-id": "yes" }
  ],
  "upstreams": [
    { "name": "a", "servers": ["127.0.0.1:3000"], "max-connections": 0 },
    { "name": "b", "servers": ["127.0.0.1:3001"], "max-connections": "8" }
  ],
  "routes": [{ "upstream": "a" }]
}"#;
    let got: Vec<(String, (usize, usize))> = json_errors(src)
        .into_iter()
        .map(|e| (e.path, (e.line, e.column)))
        .collect();
    let want = [
        (
            "listeners[1].encoded-slashes",
            position_of(src, "\"allow\""),
        ),
        ("listeners[2].trust-request-id", position_of(src, "\"yes\"")),
        ("upstreams[0].max-connections", position_of(src, "0 }")),
        ("upstreams[1].max-connections", position_of(src, "\"8\"")),
    ];
    let want: Vec<(String, (usize, usize))> =
        want.iter().map(|&(p, at)| (p.to_owned(), at)).collect();
    assert_eq!(got, want);
}

#[test]
fn every_error_is_reported_in_source_order() {
    let src = r#"{
  "workers": 0,
  "limits": { "unknown": 1, "max-headers": 0 },
  "listeners": [{ "address": "localhost:8080" }],
  "upstreams": [{ "name": "app", "servers": [] }],
  "routes": [
    { "upstream": "billing" },
    { "path": "nope", "methods": ["get"], "respond": { "status": 42 } }
  ]
}"#;
    let got: Vec<String> = json_errors(src)
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.path))
        .collect();
    assert_eq!(
        got,
        [
            "2:14: workers",
            "3:15: limits.unknown",
            "3:44: limits.max-headers",
            "4:30: listeners[0].address",
            "5:45: upstreams[0].servers",
            "7:19: routes[0].upstream",
            "8:15: routes[1].path",
            "8:35: routes[1].methods[0]",
            "8:66: routes[1].respond.status",
        ]
    );
}

#[test]
fn missing_sections_are_unplaced() {
    let errors = json_errors("{}");
    let got: Vec<(&str, usize, usize)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.line, e.column))
        .collect();
    assert_eq!(got, [("listeners", 0, 0), ("routes", 0, 0)]);
}

#[test]
fn a_null_is_one_error_at_its_path() {
    // (case, top-level members, routes[1], path, message fragment)
    let cases = [
        (
            "top-level key",
            r#""workers": null"#,
            "",
            "workers",
            "leave the key out",
        ),
        (
            "table",
            r#""limits": null"#,
            "",
            "limits",
            "leave the key out",
        ),
        (
            "in a table",
            r#""admin": { "token": null, "address": "0.0.0.0:9901" }"#,
            "",
            "admin.token",
            "leave the key out",
        ),
        (
            "element of a section",
            "",
            "null",
            "routes[1]",
            "remove the element",
        ),
        (
            "required key",
            "",
            r#"{ "path": "/b", "upstream": null }"#,
            "routes[1].upstream",
            "leave the key out",
        ),
        (
            "array element",
            "",
            r#"{ "path": "/b", "methods": ["GET", null], "upstream": "app" }"#,
            "routes[1].methods[1]",
            "remove the element",
        ),
        (
            "header value",
            "",
            r#"{ "path": "/b", "respond": { "headers": { "x-a": null } } }"#,
            "routes[1].respond.headers.x-a",
            "leave the key out",
        ),
    ];
    for (case, top, route, path, fragment) in cases {
        let src = with_base(top, route);
        let errors = json_errors(&src);
        assert_eq!(errors.len(), 1, "{case}: {errors:#?}\n{src}");
        let e = &errors[0];
        assert_eq!(e.path, path, "{case}: {e}");
        assert!(
            e.message.starts_with("null is not a value here"),
            "{case}: {e}"
        );
        assert!(e.message.contains(fragment), "{case}: {e}");
    }

    // A null section is not also reported as missing.
    let errors = json_errors(r#"{ "listeners": null, "routes": [{ "respond": {} }] }"#);
    let got: Vec<(&str, usize, usize)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.line, e.column))
        .collect();
    assert_eq!(got, [("listeners", 1, 16)]);

    // A null in one upstream's servers leaves its name usable by routes,
    // and does not hide errors elsewhere.
    let src = r#"{
  "workers": 0,
  "listeners": [{ "address": "127.0.0.1:8080" }],
  "upstreams": [{ "name": "app", "servers": ["127.0.0.1:3000", null] }],
  "routes": [{ "upstream": "app" }]
}"#;
    let paths: Vec<String> = json_errors(src).into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["workers", "upstreams[0].servers[1]"]);
}

#[test]
fn syntax_errors_are_one_error_at_serde_json_position() {
    let cases = [
        "{\"workers\": 4,}",
        "{\n  \"workers\": 4\n  \"driver\": \"epoll\"\n}",
        "{\"workers\": 4",
        "{\"listeners\": [1,,2]}",
        "{\"workers\": 'auto'}",
        "{} {}",
        "",
    ];
    for src in cases {
        let want = serde_json::from_str::<serde_json::Value>(src).expect_err(src);
        let errors = json_errors(src);
        assert_eq!(errors.len(), 1, "{src:?}: {errors:#?}");
        let e = &errors[0];
        assert_eq!(e.path, "", "{src:?}");
        // serde_json's message, without the position it appends.
        assert!(want.to_string().starts_with(&e.message), "{src:?}: {e}");
        // serde_json's column 0 (an empty text) becomes column 1.
        assert_eq!(
            (e.line, e.column),
            (want.line(), want.column().max(1)),
            "{src:?}: {e}"
        );
    }

    // serde_json counts bytes; columns here count characters, as for TOML.
    let errors = json_errors("{\"é\": 1 x}");
    assert_eq!((errors[0].line, errors[0].column), (1, 9));
}

#[test]
fn the_top_level_must_be_an_object() {
    let cases = [
        ("[]", "found an array"),
        ("  \"config\"", "found a string"),
        ("null", "found null"),
        ("42", "found a single value"),
    ];
    for (src, fragment) in cases {
        let errors = json_errors(src);
        assert_eq!(errors.len(), 1, "{src}: {errors:#?}");
        let e = &errors[0];
        assert_eq!(e.path, "");
        assert!(
            e.message
                .starts_with("expected an object holding the config"),
            "{e}"
        );
        assert!(e.message.contains(fragment), "{src}: {e}");
        assert_eq!(
            (e.line, e.column),
            position_of(src, src.trim()),
            "{src}: {e}"
        );
    }
}

#[test]
fn the_base_used_by_these_tests_is_valid() {
    let base = Config::from_json_str(&with_base("", "")).expect("valid base");
    assert_eq!(base, valid(common::BASE));
}

/// JSON values of the shapes configs hold, a few levels deep.
fn json_value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        "-?[0-9]{1,4}(\\.[0-9])?",
        "\"[a-z0-9.:/ \\[\\]*-]{0,16}\"",
        "\"([a-z{}:,]|\\\\n|\\\\u00e9|\\\\\"|é){0,8}\"",
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        let key = prop_oneof![
            Just("listeners".to_owned()),
            Just("routes".to_owned()),
            Just("address".to_owned()),
            Just("upstream".to_owned()),
            Just("respond".to_owned()),
            "[a-z-]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key, inner), 0..4).prop_map(|members| {
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("\"{k}\": {v}"))
                    .collect();
                format!("{{\n{}\n}}", members.join(",\n"))
            }),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn errors_point_inside_the_source(value in json_value(), cut in 0usize..200) {
        // Whatever the input, well-formed or cut short, nothing panics,
        // every reported position is a real line and column, and errors
        // come in source order.
        let whole = format!("{{\"routes\": {value}}}");
        let cut = whole.char_indices().nth(cut).map_or(whole.len(), |(i, _)| i);
        for src in [whole.as_str(), &whole[..cut]] {
            let Err(errors) = Config::from_json_str(src) else {
                continue;
            };
            proptest::prop_assert!(!errors.is_empty());
            // The walk after serde_json's check never meets what it did not.
            let unread = errors.iter().find(|e| e.message == "cannot read this JSON");
            proptest::prop_assert!(unread.is_none(), "{:?}", src);
            let lines: Vec<&str> = src.split('\n').collect();
            let mut last = (0, 0);
            for e in &errors {
                if e.line == 0 {
                    continue;
                }
                proptest::prop_assert!(e.line <= lines.len(), "{} in {:?}", e, src);
                proptest::prop_assert!(
                    e.column <= lines[e.line - 1].chars().count() + 1,
                    "{} in {:?}",
                    e,
                    src
                );
                proptest::prop_assert!((e.line, e.column) >= last, "out of order: {}", errors);
                last = (e.line, e.column);
            }
        }
    }
}

#[test]
fn access_log_keys_are_placed_in_the_json() {
    let src = r#"{
  "access-log": { "enabled": true, "path": "", "format": "clf", "sample": 2, "queue": "8" },
  "listeners": [{ "address": "127.0.0.1:8080" }],
  "routes": [{ "respond": {}, "access-log": false }]
}"#;
    let got: Vec<(String, (usize, usize))> = json_errors(src)
        .into_iter()
        .map(|e| (e.path, (e.line, e.column)))
        .collect();
    let want = [
        ("access-log.path", position_of(src, "\"\"")),
        ("access-log.format", position_of(src, "\"clf\"")),
        ("access-log.sample", position_of(src, "2,")),
        ("access-log.queue", position_of(src, "\"8\"")),
    ];
    let want: Vec<(String, (usize, usize))> =
        want.iter().map(|&(p, at)| (p.to_owned(), at)).collect();
    assert_eq!(got, want);
}
