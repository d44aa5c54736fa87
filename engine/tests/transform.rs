//! Header rules, path and query rewrites, redirects and JSON errors, seen
//! from outside: what the upstream receives, and what the client gets on
//! proxied, built-in and error answers.

mod support;

use support::*;

fn gateway(
    upstream: std::net::SocketAddr,
    routes: &str,
    listener: &str,
    driver: &str,
) -> TestGateway {
    let toml = format!(
        "workers = 1\n\
         [[listeners]]\naddress = \"127.0.0.1:0\"\n{listener}\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"{upstream}\"]\n\
         [[consumers]]\nname = \"alice\"\napi-keys = [\"sha256:{key}\"]\n\
         [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\nheader = \"x-api-key\"\n\
         {routes}",
        key = sha256_hex("alice-key"),
    );
    TestGateway::start(&toml, driver)
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn request(gw: &TestGateway, raw: &str) -> Response {
    let mut c = gw.client();
    c.send(raw.as_bytes());
    c.read_response(raw.starts_with("HEAD")).expect("an answer")
}

#[test]
fn header_rules_change_the_request_sent_upstream_in_order() {
    on_both_drivers(|| {
        let origin = TestUpstream::ok("ok");
        let routes = r#"
[[routes]]
name = "api"
path-prefix = "/api/"
upstream = "up"
[routes.request-headers]
remove = ["x-internal-*", "cookie"]
rename = { "x-old" = "X-New" }
set = { "x-client" = "$client_ip", "x-who" = "route=$route id=$request_id" }
add-if-absent = { "x-tenant" = "default", "x-present" = "not used" }
add = { "x-tag" = "b", "x-echo" = "$header:x-source|$host|$scheme" }
"#;
        let gw = gateway(origin.addr, routes, "", driver());
        let r = request(
            &gw,
            "GET /api/a HTTP/1.1\r\nHost: h.example\r\nX-Internal-Secret: s\r\nX-internal-b: t\r\n\
             Cookie: c=1\r\nX-Old: renamed\r\nX-Client: spoofed\r\nX-Present: yes\r\nX-Tag: a\r\n\
             X-Source: src\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        let seen = origin.last();
        assert!(!seen.has("x-internal-secret") && !seen.has("x-internal-b"));
        assert!(!seen.has("cookie"));
        assert!(!seen.has("x-old"));
        assert_eq!(seen.header("x-new"), Some("renamed"));
        let clients: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-client"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(clients, ["127.0.0.1"], "set replaces the client's value");
        let id = r.header("x-request-id").expect("request id");
        assert_eq!(
            seen.header("x-who"),
            Some(format!("route=api id={id}").as_str())
        );
        assert_eq!(seen.header("x-tenant"), Some("default"));
        assert_eq!(seen.header("x-present"), Some("yes"));
        let tags: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-tag"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tags, ["a", "b"], "add appends a line");
        assert_eq!(seen.header("x-echo"), Some("src|h.example|http"));
        // The gateway's own fields are still there.
        assert!(seen.has("x-forwarded-for") && seen.has("x-request-id"));
    });
}

#[test]
fn response_rules_apply_to_proxied_built_in_and_error_answers() {
    on_both_drivers(|| {
        let origin = TestUpstream::start(|_| {
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: origin\r\nX-Powered-By: php\r\n\
                  X-Debug-A: 1\r\n\r\nok"
                    .to_vec(),
            )
        });
        let routes = r#"
[[routes]]
name = "proxied"
path-prefix = "/p/"
upstream = "up"
auth = ["keys"]
[[routes.rate-limits]]
key = "consumer"
rate = "1/m"
[routes.response-headers]
remove = ["x-powered-by", "x-debug-*"]
set = { "server" = "edge", "x-status" = "$status from $upstream_server" }
add = { "x-consumer" = "c=$consumer" }

[[routes]]
name = "built-in"
path = "/r"
[routes.respond]
body = "hi"
[routes.response-headers]
add = { "x-route" = "$route", "x-status" = "$status" }
"#;
        let gw = gateway(origin.addr, routes, "", driver());
        let ok = request(
            &gw,
            "GET /p/x HTTP/1.1\r\nHost: a\r\nX-Api-Key: alice-key\r\n\r\n",
        );
        assert_eq!(ok.status, 200);
        assert_eq!(ok.header("server"), Some("edge"));
        assert!(ok.header("x-powered-by").is_none() && ok.header("x-debug-a").is_none());
        assert_eq!(
            ok.header("x-status"),
            Some(format!("200 from {}", origin.addr).as_str())
        );
        assert_eq!(ok.header("x-consumer"), Some("c=alice"));
        assert_eq!(ok.text(), "ok");
        // The gateway's own refusals get the rules too.
        let limited = request(
            &gw,
            "GET /p/x HTTP/1.1\r\nHost: a\r\nX-Api-Key: alice-key\r\n\r\n",
        );
        assert_eq!(limited.status, 429);
        assert_eq!(limited.header("x-status"), Some("429 from"));
        assert_eq!(limited.header("server"), Some("edge"));
        let refused = request(&gw, "GET /p/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(refused.status, 401);
        assert_eq!(refused.header("x-consumer"), Some("c="));
        let built = request(&gw, "GET /r HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(built.status, 200);
        assert_eq!(built.header("x-route"), Some("built-in"));
        assert_eq!(built.header("x-status"), Some("200"));
        assert_eq!(built.text(), "hi");
    });
}

#[test]
fn paths_and_queries_are_rewritten_and_stay_normalised() {
    on_both_drivers(|| {
        let origin = TestUpstream::ok("ok");
        let routes = r#"
[[routes]]
path-prefix = "/strip/"
upstream = "up"
strip-prefix = true

[[routes]]
path-prefix = "/old"
upstream = "up"
rewrite-prefix = "/v2/"
[routes.query]
remove = ["debug"]
add = { source = "edge", who = "$header:x-who" }

[[routes]]
path-prefix = "/users/"
upstream = "up"
rewrite = { regex = "^/users/(\\d+)/(.*)$", replace = "/u/$1/$2" }
"#;
        let gw = gateway(origin.addr, routes, "", driver());
        let cases: &[(&str, &str)] = &[
            ("/strip/a/b?x=1", "/a/b?x=1"),
            ("/strip/", "/"),
            (
                "/old/items?debug=1&q=2",
                "/v2/items?q=2&source=edge&who=a%20b%26c",
            ),
            ("/old", "/v2/?source=edge&who=a%20b%26c"),
            ("/users/42/profile", "/u/42/profile"),
            ("/users/42/", "/u/42/"),
            // Not matched by the regex: sent as it came.
            ("/users/me", "/users/me"),
        ];
        for (sent, want) in cases {
            let r = request(
                &gw,
                &format!("GET {sent} HTTP/1.1\r\nHost: a\r\nX-Who: a b&c\r\n\r\n"),
            );
            assert_eq!(r.status, 200, "{sent}");
            assert_eq!(origin.last().target, *want, "{sent}");
        }
    });
}

#[test]
fn a_regex_rewrite_cannot_send_dot_segments_or_empty_segments_upstream() {
    on_both_drivers(|| {
        let origin = TestUpstream::ok("ok");
        // The replacement joins captures with dots and slashes: whatever
        // they hold, the target sent is normalised.
        let routes = r#"
[[routes]]
path-prefix = "/f/"
upstream = "up"
rewrite = { regex = "^/f/([^/]*)/([^/]*)$", replace = "/base/$1/$2/../x//y" }
"#;
        let gw = gateway(origin.addr, routes, "", driver());
        for (sent, want) in [("/f/a/b", "/base/a/x/y"), ("/f/a/.", "/base/a/x/y")] {
            let r = request(&gw, &format!("GET {sent} HTTP/1.1\r\nHost: a\r\n\r\n"));
            if r.status == 200 {
                assert_eq!(origin.last().target, want, "{sent}");
            } else {
                // The request parser refuses dot-segments itself.
                assert_eq!(r.status, 400, "{sent}");
            }
        }
    });
}

#[test]
fn a_redirect_route_answers_with_its_location() {
    on_both_drivers(|| {
        let origin = TestUpstream::ok("ok");
        let routes = r#"
[[routes]]
path-prefix = "/docs/"
rewrite-prefix = "/manual/"
[routes.redirect]
status = 301
location = "https://$host$path$query"

[[routes]]
path-prefix = "/item/"
rewrite = { regex = "^/item/(\\d+)$", replace = "/items/$1" }
[routes.redirect]
location = "/catalogue?id=$1"
"#;
        let gw = gateway(origin.addr, routes, "", driver());
        let r = request(
            &gw,
            "GET /docs/intro?x=1 HTTP/1.1\r\nHost: h.example\r\n\r\n",
        );
        assert_eq!(r.status, 301);
        assert_eq!(
            r.header("location"),
            Some("https://h.example/manual/intro?x=1")
        );
        let r = request(&gw, "GET /item/7 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("/catalogue?id=7"));
        assert_eq!(
            origin.request_count(),
            0,
            "a redirect never reaches upstream"
        );
    });
}

#[test]
fn json_errors_and_custom_bodies() {
    on_both_drivers(|| {
        let origin = TestUpstream::ok("ok");
        let routes = r#"
[[routes]]
name = "keyed"
path-prefix = "/k/"
upstream = "up"
auth = ["keys"]
[[routes.error-bodies]]
status = 401
content-type = "application/problem+json"
body = '{"title": "who are you?", "id": "$request_id"}'

[[routes]]
name = "text"
path-prefix = "/t/"
upstream = "up"
auth = ["keys"]
error-format = "text"
"#;
        let gw = gateway(origin.addr, routes, "error-format = \"json\"", driver());
        // No route: the listener's JSON.
        let r = request(&gw, "GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json body");
        assert_eq!(v["error"]["status"], 404);
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(
            v["error"]["request_id"],
            r.header("x-request-id").expect("id")
        );
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        // A malformed request on the listener: JSON too.
        let raw = exchange(
            gw.addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
            4096,
        );
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        assert!(text.contains("\"code\":\"bad_request\""), "{text}");
        // The route's custom body.
        let r = request(&gw, "GET /k/a HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 401);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let id = r.header("x-request-id").expect("id").to_owned();
        assert_eq!(
            r.text(),
            format!("{{\"title\": \"who are you?\", \"id\": \"{id}\"}}")
        );
        // The route's own format beats the listener's.
        let r = request(&gw, "GET /t/a HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 401);
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")));
        // An upstream's answers are not the gateway's errors: untouched.
        let r = request(
            &gw,
            "GET /k/a HTTP/1.1\r\nHost: a\r\nX-Api-Key: alice-key\r\n\r\n",
        );
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    });
}

#[test]
fn response_rules_apply_to_cached_answers_per_request() {
    on_both_drivers(|| {
        let origin = TestUpstream::start(|_| {
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=600\r\n\
                  X-Powered-By: php\r\n\r\nok"
                    .to_vec(),
            )
        });
        let routes = r#"
[[routes]]
name = "cached"
path-prefix = "/c/"
upstream = "up"
[routes.cache]
[routes.response-headers]
remove = ["x-powered-by"]
add = { "x-request" = "$request_id", "x-trace" = "$trace_id" }
"#;
        let gw = gateway(origin.addr, routes, "", driver());
        let first = request(&gw, "GET /c/a HTTP/1.1\r\nHost: a\r\n\r\n");
        let second = request(&gw, "GET /c/a HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(origin.request_count(), 1, "the second is a hit");
        for r in [&first, &second] {
            assert_eq!(r.status, 200);
            assert!(r.header("x-powered-by").is_none());
            assert_eq!(r.header("x-request"), r.header("x-request-id"));
            assert!(r.header("x-trace").is_some_and(|t| t.len() == 32));
        }
        assert_ne!(
            first.header("x-request"),
            second.header("x-request"),
            "a hit gets its own request's values, not the stored ones"
        );
    });
}

#[test]
fn listener_rules_run_before_the_routes() {
    on_both_drivers(|| {
        let origin = TestUpstream::ok("ok");
        let routes = r#"
[[routes]]
path-prefix = "/"
upstream = "up"
[routes.response-headers]
remove = ["x-frame-options"]
"#;
        let listener = r#"
[listeners.request-headers]
set = { "x-edge" = "1" }
[listeners.response-headers]
add = { "x-frame-options" = "DENY", "strict-transport-security" = "max-age=60" }
"#;
        let gw = gateway(origin.addr, routes, listener, driver());
        let r = request(&gw, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(origin.last().header("x-edge"), Some("1"));
        assert!(
            r.header("x-frame-options").is_none(),
            "the route removes it after"
        );
        assert_eq!(r.header("strict-transport-security"), Some("max-age=60"));
    });
}
