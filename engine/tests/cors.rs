//! `[routes.cors]` over raw sockets: preflights answered by the gateway
//! (before auth and rate limits, after IP rules, never forwarded), the
//! lines an allowed origin's answers carry (proxied, built-in, cached and
//! the gateway's own 401 and 429), `Vary` merged with the upstream's, the
//! upstream's own CORS headers replaced, disallowed origins and methods
//! counted and answered without CORS headers, and `/metrics`.
//!
//! What a browser makes of these answers is checked by `cors_browser.rs`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::*;

const APP: &str = "https://app.example.com";

/// Sends `lines` (request line and fields, without the blank line) on a
/// client's connection and reads the answer.
fn ask(c: &mut TestClient, lines: &str) -> Response {
    c.send(format!("{lines}\r\n\r\n").as_bytes());
    c.read_response(lines.starts_with("HEAD "))
        .expect("a response")
}

fn preflight(origin: &str, method: &str, extra: &str) -> String {
    format!(
        "OPTIONS /api/x HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
         Access-Control-Request-Method: {method}{extra}"
    )
}

/// Every `Access-Control-*` field of `r`, lower-cased names, in order.
fn cors_fields(r: &Response) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn values<'a>(r: &'a Response, name: &str) -> Vec<&'a str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// An upstream that answers with its own CORS header and a Vary.
fn upstream() -> TestUpstream {
    TestUpstream::start(|seen| {
        let body = format!("{} {}", seen.method, seen.target);
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nVary: Accept-Encoding\r\n\
                 Access-Control-Allow-Origin: *\r\nX-Total: 7\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
}

/// A CORS route in front of `up` with auth and a rate limit, and a route
/// without CORS.
fn config(up: SocketAddr) -> String {
    format!(
        r#"
workers = 2

[[consumers]]
name = "ci"
api-keys = ["plain:cors-test-key"]

[[authenticators]]
name = "keys"
type = "api-key"
header = "x-api-key"

[[upstreams]]
name = "app"
servers = ["{up}"]

[[routes]]
name = "api"
path-prefix = "/api/"
upstream = "app"
auth = ["keys"]

[[routes.rate-limits]]
key = "header:x-tenant"
rate = "1/h"
burst = 1

[routes.cors]
allow-origins = ["{APP}", "https://*.example.org"]
allow-methods = ["GET", "PUT"]
expose-headers = ["X-Total"]
allow-credentials = true
max-age = "10m"

[[routes]]
name = "plain"
path-prefix = "/plain/"
upstream = "app"
"#
    )
}

#[test]
fn a_preflight_is_answered_by_the_gateway_before_auth_and_never_forwarded() {
    for driver in DRIVERS {
        let up = upstream();
        let gw = TestGateway::start(&config(up.addr), driver);
        let mut c = gw.client();
        let spent = ask(
            &mut c,
            "GET /api/x HTTP/1.1\r\nHost: t\r\nX-Api-Key: cors-test-key\r\nX-Tenant: a",
        );
        assert_eq!(spent.status, 200, "{driver}: the tenant's only token");
        // No API key and the tenant's token spent: a preflight passes
        // anyway, since browsers send no credentials on one.
        let r = ask(
            &mut c,
            &preflight(
                APP,
                "PUT",
                "\r\nAccess-Control-Request-Headers: content-type,x-custom\r\nX-Tenant: a",
            ),
        );
        assert_eq!(r.status, 204, "{driver}: {r:?}");
        assert_eq!(
            cors_fields(&r),
            [
                ("access-control-allow-origin", APP),
                ("access-control-allow-methods", "GET, PUT"),
                ("access-control-max-age", "600"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-headers", "content-type,x-custom"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
            "{driver}"
        );
        assert_eq!(
            values(&r, "vary"),
            ["Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]
        );
        assert_eq!(r.header("content-length"), None, "204 has no length");
        assert!(r.body.is_empty());
        // A second one on the same connection: kept alive, same answer.
        let again = ask(&mut c, &preflight("https://a.b.example.org", "GET", ""));
        assert_eq!(again.status, 204);
        assert_eq!(
            again.header("access-control-allow-origin"),
            Some("https://a.b.example.org")
        );
        assert_eq!(again.header("access-control-allow-headers"), None);
        gw.wait_for("preflights counted", |t| t.cors_preflights == 2);
        assert_eq!(
            up.request_count(),
            1,
            "{driver}: preflights never reach the upstream"
        );
        assert_eq!(gw.totals().cors_refused, 0);
    }
}

#[test]
fn a_preflight_from_a_disallowed_origin_or_for_a_disallowed_method_gets_403_without_cors_headers() {
    let up = upstream();
    let gw = TestGateway::start(&config(up.addr), driver());
    let mut c = gw.client();
    let cases = [
        ("https://evil.example.com", "GET"),
        ("https://app.example.com.evil.test", "GET"),
        ("http://app.example.com", "GET"),
        // The pattern needs a subdomain, and its scheme.
        ("https://example.org", "GET"),
        ("http://a.example.org", "GET"),
        ("null", "GET"),
        (APP, "DELETE"),
        (APP, "put"),
    ];
    for (origin, method) in cases {
        let r = ask(&mut c, &preflight(origin, method, ""));
        assert_eq!(r.status, 403, "{origin} {method}");
        assert_eq!(cors_fields(&r), [], "{origin} {method}");
        assert_eq!(values(&r, "vary"), ["Origin"], "{origin} {method}");
    }
    gw.wait_for("refusals counted", |t| t.cors_refused == 8);
    assert_eq!(gw.totals().cors_preflights, 0);
    assert_eq!(up.request_count(), 0);
}

#[test]
fn an_options_request_without_a_requested_method_is_an_ordinary_request() {
    let up = upstream();
    let gw = TestGateway::start(&config(up.addr), driver());
    let mut c = gw.client();
    let r = ask(
        &mut c,
        &format!("OPTIONS /api/x HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\nX-Api-Key: cors-test-key"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "OPTIONS /api/x");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-methods"), None);
    assert_eq!(up.request_count(), 1);
    assert_eq!(gw.totals().cors_preflights, 0);
}

#[test]
fn actual_answers_carry_the_origin_credentials_exposed_headers_and_vary() {
    for driver in DRIVERS {
        let up = upstream();
        let gw = TestGateway::start(&config(up.addr), driver);
        let mut c = gw.client();
        // Each request its own tenant, so the rate limit stays out of it.
        let get = |c: &mut TestClient, origin: &str| {
            let tenant = up.request_count();
            ask(
                c,
                &format!(
                    "GET /api/x HTTP/1.1\r\nHost: t\r\nX-Api-Key: cors-test-key\r\n\
                     X-Tenant: {tenant}\r\nOrigin: {origin}"
                ),
            )
        };
        let r = get(&mut c, APP);
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            up.last().header("origin"),
            Some(APP),
            "Origin goes upstream"
        );
        // The upstream's own `Access-Control-Allow-Origin: *` is replaced.
        assert_eq!(
            cors_fields(&r),
            [
                ("access-control-allow-origin", APP),
                ("access-control-allow-credentials", "true"),
                ("access-control-expose-headers", "X-Total"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
            "{driver}"
        );
        assert_eq!(values(&r, "vary"), ["Accept-Encoding, Origin"], "{driver}");
        assert_eq!(r.header("x-total"), Some("7"));

        let sub = get(&mut c, "https://shop.example.org");
        assert_eq!(
            sub.header("access-control-allow-origin"),
            Some("https://shop.example.org")
        );

        // A disallowed origin is served, without any CORS field, and
        // counted; no Origin at all is not counted.
        let other = get(&mut c, "https://evil.test");
        assert_eq!(other.status, 200);
        assert_eq!(cors_fields(&other), [], "{driver}");
        assert_eq!(values(&other, "vary"), ["Accept-Encoding, Origin"]);
        let none = ask(
            &mut c,
            "GET /api/x HTTP/1.1\r\nHost: t\r\nX-Api-Key: cors-test-key\r\nX-Tenant: none",
        );
        assert_eq!(cors_fields(&none), []);
        assert_eq!(values(&none, "vary"), ["Accept-Encoding, Origin"]);
        gw.wait_for("the disallowed origin counted", |t| t.cors_refused == 1);

        // A route without [routes.cors] passes the upstream's head as is.
        let plain = ask(
            &mut c,
            &format!("GET /plain/x HTTP/1.1\r\nHost: t\r\nOrigin: {APP}"),
        );
        assert_eq!(
            cors_fields(&plain),
            [("access-control-allow-origin".to_owned(), "*".to_owned())]
        );
        assert_eq!(values(&plain, "vary"), ["Accept-Encoding"]);
        assert_eq!(gw.totals().cors_refused, 1);
    }
}

#[test]
fn the_gateways_own_401_and_429_carry_cors_headers() {
    let up = upstream();
    let gw = TestGateway::start(&config(up.addr), driver());
    let mut c = gw.client();
    let unauthorized = ask(
        &mut c,
        &format!("GET /api/x HTTP/1.1\r\nHost: t\r\nOrigin: {APP}"),
    );
    assert_eq!(unauthorized.status, 401);
    assert_eq!(
        unauthorized.header("access-control-allow-origin"),
        Some(APP)
    );
    assert_eq!(
        unauthorized.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(values(&unauthorized, "vary"), ["Origin"]);

    let tenant = |c: &mut TestClient| {
        ask(
            c,
            &format!(
                "PUT /api/x HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\nX-Api-Key: cors-test-key\r\n\
                 X-Tenant: b\r\nContent-Length: 0"
            ),
        )
    };
    assert_eq!(tenant(&mut c).status, 200);
    let limited = tenant(&mut c);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        limited.header("access-control-expose-headers"),
        Some("X-Total")
    );
    assert_eq!(up.request_count(), 1);
}

#[test]
fn any_origin_without_credentials_gets_a_star_and_built_in_answers_get_it_too() {
    let gw = TestGateway::start(
        "[[routes]]\nname = \"r\"\n\
         [routes.respond]\nbody = \"ok\"\nheaders = { \"access-control-allow-origin\" = \"https://x.test\", vary = \"Accept\" }\n\
         [routes.cors]\nallow-origins = [\"*\"]\nallow-headers = [\"Content-Type\", \"X-Custom\"]\n",
        driver(),
    );
    let mut c = gw.client();
    let r = ask(
        &mut c,
        "GET / HTTP/1.1\r\nHost: t\r\nOrigin: https://any.test",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
    assert_eq!(
        cors_fields(&r),
        [("access-control-allow-origin".to_owned(), "*".to_owned())],
        "the responder's own header is replaced too"
    );
    assert_eq!(values(&r, "vary"), ["Accept, Origin"]);
    // A sandboxed frame's page may read a public answer too.
    let sandboxed = ask(&mut c, "GET / HTTP/1.1\r\nHost: t\r\nOrigin: null");
    assert_eq!(sandboxed.header("access-control-allow-origin"), Some("*"));
    let p = ask(
        &mut c,
        "OPTIONS / HTTP/1.1\r\nHost: t\r\nOrigin: https://any.test\r\n\
         Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-other",
    );
    assert_eq!(p.status, 204);
    assert_eq!(
        cors_fields(&p),
        [
            ("access-control-allow-origin", "*"),
            (
                "access-control-allow-methods",
                "GET, HEAD, PUT, PATCH, POST, DELETE"
            ),
            ("access-control-allow-headers", "Content-Type, X-Custom"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
        "the configured list, not the asked-for one; no max-age when not set"
    );
}

#[test]
fn a_cached_answer_gets_each_origins_own_cors_headers() {
    let up = TestUpstream::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nCache-Control: max-age=60\r\n\
              Access-Control-Allow-Origin: https://stored.test\r\n\r\nstored"
                .to_vec(),
        )
    });
    let gw = TestGateway::start(
        &format!(
            "[[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n\
             [[routes]]\nname = \"c\"\nupstream = \"u\"\n[routes.cache]\n\
             [routes.cors]\nallow-origins = [\"https://a.test\", \"https://b.test\"]\n",
            up.addr
        ),
        driver(),
    );
    let mut c = gw.client();
    let get = |c: &mut TestClient, origin: &str| {
        ask(
            c,
            &format!("GET /doc HTTP/1.1\r\nHost: t\r\nOrigin: {origin}"),
        )
    };
    let a = get(&mut c, "https://a.test");
    let b = get(&mut c, "https://b.test");
    let evil = get(&mut c, "https://evil.test");
    assert_eq!(up.request_count(), 1, "one fetch, then hits");
    assert!(b.header("age").is_some(), "a hit: {b:?}");
    for (r, want) in [
        (&a, Some("https://a.test")),
        (&b, Some("https://b.test")),
        (&evil, None),
    ] {
        assert_eq!(r.text(), "stored");
        assert_eq!(r.header("access-control-allow-origin"), want, "{r:?}");
        assert_eq!(values(r, "vary"), ["Origin"]);
    }
}

#[test]
fn ip_rules_still_apply_to_preflights() {
    let gw = TestGateway::start(
        "[[routes]]\nname = \"r\"\nip-deny = [\"127.0.0.1\"]\n[routes.respond]\n\
         [routes.cors]\nallow-origins = [\"https://a.test\"]\n",
        driver(),
    );
    let mut c = gw.client();
    let r = ask(
        &mut c,
        "OPTIONS / HTTP/1.1\r\nHost: t\r\nOrigin: https://a.test\r\n\
         Access-Control-Request-Method: GET",
    );
    assert_eq!(r.status, 403);
    assert_eq!(cors_fields(&r), []);
    gw.wait_for("the refusal counted", |t| t.refused_403 == 1);
    assert_eq!(gw.totals().cors_preflights, 0);
}

#[test]
fn metrics_count_preflights_and_refusals() {
    let gw = TestGateway::start(
        "[[routes]]\nname = \"r\"\n[routes.respond]\n\
         [routes.cors]\nallow-origins = [\"https://a.test\"]\n",
        driver(),
    );
    let mut c = gw.client();
    for origin in ["https://a.test", "https://b.test", "https://c.test"] {
        ask(
            &mut c,
            &format!(
                "OPTIONS / HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: GET"
            ),
        );
    }
    gw.wait_for("counted", |t| t.cors_preflights == 1 && t.cors_refused == 2);
    let admin = gw.admin_addr();
    let mut s = TcpStream::connect(admin).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    assert!(
        text.contains("\nringway_cors_preflights_total 1\n"),
        "{text}"
    );
    assert!(text.contains("\nringway_cors_refused_total 2\n"), "{text}");
}

#[test]
fn a_preflight_is_routed_by_the_method_it_asks_about() {
    let up = upstream();
    let gw = TestGateway::start(
        &format!(
            "[[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n\
             [[routes]]\nname = \"writes\"\npath-prefix = \"/api/\"\nmethods = [\"PUT\", \"DELETE\"]\n\
             upstream = \"u\"\n\
             [routes.cors]\nallow-origins = [\"{APP}\"]\nallow-methods = [\"PUT\", \"DELETE\"]\n\
             [[routes]]\nname = \"reads\"\npath-prefix = \"/api/\"\nmethods = [\"GET\"]\nupstream = \"u\"\n",
            up.addr
        ),
        driver(),
    );
    let mut c = gw.client();
    let put = ask(&mut c, &preflight(APP, "PUT", ""));
    assert_eq!(put.status, 204, "{put:?}");
    assert_eq!(
        put.header("access-control-allow-methods"),
        Some("PUT, DELETE")
    );
    // GET goes to a route without CORS: the OPTIONS is an ordinary
    // request, which no route takes.
    let get = ask(&mut c, &preflight(APP, "GET", ""));
    assert_eq!(get.status, 405);
    assert_eq!(cors_fields(&get), []);
    let bare = ask(&mut c, "OPTIONS /api/x HTTP/1.1\r\nHost: t");
    assert_eq!(bare.status, 405);
    assert_eq!(up.request_count(), 0);
}
