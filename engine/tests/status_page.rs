//! The status page (`GET /` on the admin API) in a real browser: headless
//! Chromium loads it after known traffic and the rendered DOM must show
//! each route's counts, the dead route's errors, the upstream servers'
//! errors by kind, the generation and the certificate; strings from the
//! server must land as text, not markup; with `admin.token` the page asks
//! for the token and shows data once given it. The headers and the
//! token-free access to the page are checked over a raw socket.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use support::chromium::{by_id, cell, is_hidden, Browser};
use support::tls::{date_in, write_pair, Ca};
use support::*;

const TOKEN: &str = "status-page-token-0123456789";

/// A port nothing listens on (bound, then closed).
fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// One request on its own connection; the whole answer as text.
fn once(addr: SocketAddr, raw: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(raw.as_bytes()).expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    once(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

fn status_of(answer: &str) -> u16 {
    answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// The value of header `name` in `answer`'s head.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Three routes: to a live upstream, the built-in responder, and an
/// upstream nothing listens on; `extra` goes at the top.
fn config(up: SocketAddr, dead: SocketAddr, extra: &str) -> String {
    format!(
        r#"
workers = 2
{extra}
[[upstreams]]
name = "app"
servers = ["{up}"]

[[upstreams]]
name = "gone"
servers = ["{dead}"]

[[routes]]
name = "api"
path-prefix = "/api/"
upstream = "app"

[[routes]]
name = "static"
path-prefix = "/static/"
respond = {{ status = 200, body = "static body" }}

[[routes]]
name = "dead"
path-prefix = "/dead/"
upstream = "gone"
"#
    )
}

/// 5 to `api`, 4 to `static`, 3 to `dead` (502 each).
fn send_known_traffic(gw: &TestGateway) {
    for i in 0..5 {
        assert_eq!(status_of(&get(gw.addr, &format!("/api/{i}"))), 200);
    }
    for i in 0..4 {
        assert_eq!(status_of(&get(gw.addr, &format!("/static/{i}"))), 200);
    }
    for _ in 0..3 {
        assert_eq!(status_of(&get(gw.addr, "/dead/x")), 502);
    }
    gw.wait_for("every request counted", |t| t.requests == 12);
}

fn page_url(admin: SocketAddr) -> String {
    format!("http://{admin}/")
}

#[test]
fn the_page_shows_known_traffic_the_generation_and_certificates() {
    let up = TestUpstream::ok("hello");
    let dead = dead_port();
    let ca = Ca::new("Status CA");
    let (y, m, d) = date_in(40);
    let site = ca.issue_with(&["shop.test"], |p| {
        p.not_after = rcgen::date_time_ymd(y, m, d);
    });
    let (cert, key) = write_pair("status-page/site", &site);
    let tls = format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n\
         [[listeners]]\naddress = \"127.0.0.2:0\"\n[listeners.tls]\n\
         certificates = [{{ cert = \"{}\", key = \"{}\" }}]\n",
        cert.display(),
        key.display()
    );
    let gw = TestGateway::start(&config(up.addr, dead, &tls), driver());
    send_known_traffic(&gw);

    // A refused reload whose message quotes markup, then a good one:
    // generation 2, and the markup must reach the page as text.
    let listeners = gw
        .server
        .as_ref()
        .expect("running")
        .listen_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>();
    let tls_now = tls
        .replace("127.0.0.1:0", &listeners[0])
        .replace("127.0.0.2:0", &listeners[1]);
    let next = format!(
        "driver = \"{}\"\n{}\n[admin]\naddress = \"{}\"\n",
        driver(),
        config(up.addr, dead, &tls_now),
        gw.admin_addr()
    );
    let bad = next.replace("name = \"static\"", "name = \"<img src=x id=injected>\"");
    let refused = gw
        .handle()
        .reload_source(&bad, ringway::Format::Toml)
        .expect_err("a name with markup is refused");
    assert!(
        refused.to_string().contains("<img src=x id=injected>"),
        "{refused}"
    );
    gw.handle()
        .reload_source(&next, ringway::Format::Toml)
        .expect("reloads");

    let browser = Browser::new("traffic");
    let dom = browser.dom_until(&page_url(gw.admin_addr()), "the routes drawn", |dom| {
        dom.contains("data-route=\"dead\"") && by_id(dom, "generation").as_deref() == Some("2")
    });
    assert!(is_hidden(&dom, "login"), "no token, no login form");
    assert!(!is_hidden(&dom, "content"));

    let route = |name: &str, key: &str| {
        cell(&dom, &format!("data-route=\"{name}\""), key)
            .unwrap_or_else(|| panic!("no {key} for route {name} in\n{dom}"))
    };
    assert_eq!(route("api", "requests"), "5");
    assert_eq!(route("api", "2xx"), "5");
    assert_eq!(route("static", "requests"), "4");
    assert_eq!(route("dead", "requests"), "3");
    assert_eq!(route("dead", "5xx"), "3");
    assert_eq!(route("dead", "5xx-share"), "100.0%");
    assert_eq!(route("api", "5xx-share"), "0%");
    assert!(
        route("api", "p50").ends_with('s'),
        "{}",
        route("api", "p50")
    );

    let server = |upstream: &str, addr: SocketAddr, key: &str| {
        cell(&dom, &format!("data-server=\"{upstream} {addr}\""), key)
            .unwrap_or_else(|| panic!("no {key} for {upstream} {addr} in\n{dom}"))
    };
    assert_eq!(server("gone", dead, "errors"), "3");
    assert_eq!(server("gone", dead, "kinds"), "connect_refused 3");
    assert_eq!(server("app", up.addr, "requests"), "5");
    assert_eq!(server("app", up.addr, "errors"), "0");

    assert_eq!(by_id(&dom, "c-requests").as_deref(), Some("12"));
    assert_eq!(by_id(&dom, "c-reloads").as_deref(), Some("1"));
    // The refused reload's message, as text.
    assert!(
        dom.contains("&lt;img src=x id=injected&gt;"),
        "the last reload error is shown as text:\n{dom}"
    );
    assert!(
        !dom.contains("id=\"injected\""),
        "markup from the server ran"
    );
    assert!(!dom.contains("<img"), "markup from the server ran");

    let days = cell(&dom, "data-certificate=", "days-left").expect("a certificate row");
    let n: i64 = days
        .strip_suffix(" days left")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("days left: {days:?}"));
    assert!((38..=40).contains(&n), "{days}");
    assert!(dom.contains("shop.test"), "the certificate's name is shown");
}

#[test]
fn with_a_token_the_page_asks_for_it_and_shows_data_once_given() {
    let up = TestUpstream::ok("hello");
    let admin = format!("[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n");
    let gw = TestGateway::start(&config(up.addr, dead_port(), &admin), driver());
    send_known_traffic(&gw);
    let url = page_url(gw.admin_addr());
    let browser = Browser::new("token");

    let dom = browser.dom_until(&url, "the login form shown", |dom| !is_hidden(dom, "login"));
    assert!(is_hidden(&dom, "content"), "no data without the token");
    assert!(!dom.contains("data-route="), "no data without the token");
    assert!(
        by_id(&dom, "login-message").is_some_and(|m| m.contains("needs its bearer token")),
        "{dom}"
    );

    let dom = browser.dom_until(
        &format!("{url}#token=wrong-token-0123456789"),
        "the token refused",
        |dom| by_id(dom, "login-message").is_some_and(|m| m.contains("refused")),
    );
    assert!(is_hidden(&dom, "content"));

    let dom = browser.dom_until(&format!("{url}#token={TOKEN}"), "the routes drawn", |dom| {
        dom.contains("data-route=\"api\"")
    });
    assert!(is_hidden(&dom, "login"));
    assert_eq!(
        cell(&dom, "data-route=\"api\"", "requests").as_deref(),
        Some("5")
    );
    assert_eq!(
        cell(&dom, "data-route=\"dead\"", "5xx").as_deref(),
        Some("3")
    );
    assert_eq!(by_id(&dom, "generation").as_deref(), Some("1"));
    assert!(!dom.contains(TOKEN), "the token is not left in the page");
}

#[test]
fn the_page_needs_no_token_and_comes_with_a_strict_policy() {
    let up = TestUpstream::ok("hello");
    let admin = format!("[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n");
    let gw = TestGateway::start(&config(up.addr, dead_port(), &admin), driver());
    let a = gw.admin_addr();

    let page = get(a, "/");
    assert_eq!(status_of(&page), 200, "{page}");
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));
    let csp = header(&page, "content-security-policy").expect("a CSP");
    for part in [
        "default-src 'none'",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "connect-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let body = page.split_once("\r\n\r\n").expect("a body").1;
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(!body.contains(TOKEN));

    // HEAD: the same head, no body.
    let head = once(a, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&head), 200);
    assert_eq!(
        header(&head, "content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(head.ends_with("\r\n\r\n"), "{head}");

    // Only the page is let through: its data, other methods and other
    // paths still need the token.
    assert_eq!(status_of(&get(a, "/stats")), 401);
    assert_eq!(status_of(&get(a, "/?x=1")), 200);
    assert_eq!(status_of(&get(a, "/index.html")), 401);
    let post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&once(a, post)), 401);
    let with_token = format!(
        "GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&once(a, &with_token)), 200);
}

#[test]
fn without_a_token_the_page_keeps_the_host_rule() {
    let up = TestUpstream::ok("hello");
    let gw = TestGateway::start(&config(up.addr, dead_port(), ""), driver());
    let a = gw.admin_addr();
    let page = |host: &str| {
        status_of(&once(
            a,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        ))
    };
    assert_eq!(page(&a.to_string()), 200);
    assert_eq!(page(&format!("localhost:{}", a.port())), 200);
    // A DNS name rebound to 127.0.0.1 by a web page.
    assert_eq!(page("rebind.example"), 403);
    let post =
        format!("POST / HTTP/1.1\r\nHost: {a}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&once(a, &post)), 405);
}
