//! `[routes.cors]` judged by a browser's own rules: headless Chromium
//! loads a page from one origin (a built-in responder on one listener)
//! whose script calls the API on another origin (a second listener's
//! port) with `fetch`: a simple GET, a preflighted PUT (a JSON content
//! type and a custom header) and a GET with `credentials: "include"`.
//! The page writes what it saw (status and readable headers, or the
//! error the browser raised) into the DOM, which the test reads. The same
//! page loaded from `localhost` (another origin, not allowed) must see
//! every call fail.

mod support;

use std::net::{SocketAddr, TcpListener};

use ringway::Format;
use support::chromium::{by_id, Browser};
use support::*;

/// The page; `API` is replaced by the API's base URL. Each call writes
/// its outcome into its own element.
const PAGE: &str = r#"<!doctype html>
<html><body>
<pre id="simple">pending</pre>
<pre id="preflighted">pending</pre>
<pre id="credentialed">pending</pre>
<script>
const api = "API";
function show(id, call) {
  call.then(
    (text) => { document.getElementById(id).textContent = text; },
    (e) => { document.getElementById(id).textContent = "failed: " + e.name; });
}
document.cookie = "sid=abc123; path=/; SameSite=Lax";
show("simple", fetch(api + "/simple").then(async (r) =>
  r.status + " total=" + r.headers.get("x-total") + " hidden=" + r.headers.get("x-hidden")
    + " " + await r.text()));
show("preflighted", fetch(api + "/item", {
  method: "PUT",
  headers: { "Content-Type": "application/json", "X-Custom": "42" },
  body: "{}",
}).then(async (r) => r.status + " " + await r.text()));
show("credentialed", fetch(api + "/me", { credentials: "include" })
  .then(async (r) => r.status + " " + await r.text()));
</script>
</body></html>
"#;

/// Echoes what the request carried that the page cares about.
fn upstream() -> TestUpstream {
    TestUpstream::start(|seen| {
        let body = format!(
            "{} cookie={} custom={}",
            seen.method,
            seen.header("cookie").unwrap_or("-"),
            seen.header("x-custom").unwrap_or("-"),
        );
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 X-Total: 7\r\nX-Hidden: 1\r\nCache-Control: no-store\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
}

/// Two listeners (the page's on a port of its own choosing, the API's on
/// `api_port`), the page, and the API allowing `origin` with
/// credentials; `api` is the API's base URL.
fn config(driver: &str, up: SocketAddr, api_port: u16, origin: &str, api: &str) -> String {
    format!(
        r#"
driver = "{driver}"
workers = 2

[[listeners]]
address = "127.0.0.1:0"

[[listeners]]
address = "127.0.0.1:{api_port}"

[admin]
address = "127.0.0.1:0"

[[upstreams]]
name = "app"
servers = ["{up}"]

[[routes]]
name = "page"
path = "/page"

[routes.respond]
headers = {{ "content-type" = "text/html; charset=utf-8", "cache-control" = "no-store" }}
body = '''{page}'''

[[routes]]
name = "api"
path-prefix = "/api/"
upstream = "app"

[routes.cors]
allow-origins = ["{origin}"]
expose-headers = ["X-Total"]
allow-credentials = true
"#,
        page = PAGE.replace("API", api),
    )
}

/// A port free a moment ago (bound, then closed).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn settled(dom: &str) -> bool {
    ["simple", "preflighted", "credentialed"]
        .iter()
        .all(|id| by_id(dom, id).is_some_and(|t| t != "pending"))
}

#[test]
fn a_page_on_another_origin_reads_what_cors_allows_and_nothing_else() {
    for driver in DRIVERS {
        page_on_another_origin(driver);
    }
}

fn page_on_another_origin(d: &str) {
    let up = upstream();
    // Both on 127.0.0.1, so the page's cookie goes to the API: the API
    // on a free port found first (one config cannot hold two listeners
    // on 127.0.0.1:0), the page on one the gateway binds. Its port is
    // known once bound: start, then reload with the page's origin and
    // the API's URL filled in.
    let api_port = free_port();
    let gw = TestGateway::start(
        &config(d, up.addr, api_port, "https://placeholder.test", "/"),
        d,
    );
    let addrs = gw.server.as_ref().expect("running").listen_addrs();
    let (page, api) = (addrs[0], addrs[1]);
    assert_eq!(api.port(), api_port);
    let origin = format!("http://{page}");
    let src = config(d, up.addr, api_port, &origin, &format!("http://{api}/api"));
    gw.handle()
        .reload_source(&src, Format::Toml)
        .unwrap_or_else(|e| panic!("reload: {e}"));

    let browser = Browser::new(&format!("cors-{d}"));
    let dom = browser.dom_until(&format!("{origin}/page"), "every call settled", settled);
    let text = |id| by_id(&dom, id).unwrap_or_default();
    // Only the exposed header is readable; no cookie without credentials.
    assert_eq!(
        text("simple"),
        "200 total=7 hidden=null GET cookie=- custom=-",
        "{d}: {dom}"
    );
    // The preflight passed, so the PUT went with its header.
    assert_eq!(text("preflighted"), "200 PUT cookie=- custom=42", "{dom}");
    // The cookie went along, and the browser let the page read the answer.
    assert_eq!(
        text("credentialed"),
        "200 GET cookie=sid=abc123 custom=-",
        "{dom}"
    );
    let methods = |up: &TestUpstream| -> Vec<String> {
        up.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    };
    let seen = methods(&up);
    assert!(
        !seen.iter().any(|m| m.starts_with("OPTIONS")),
        "the preflight was answered by the gateway: {seen:?}"
    );
    assert!(gw.totals().cors_preflights >= 1);
    let before = seen.len();

    // The same page from `localhost`: another origin, not allowed.
    let other = format!("http://localhost:{}/page", page.port());
    let dom = browser.dom_until(&other, "every call settled", settled);
    for id in ["simple", "preflighted", "credentialed"] {
        assert_eq!(
            by_id(&dom, id).as_deref(),
            Some("failed: TypeError"),
            "{id}: {dom}"
        );
    }
    // The simple calls were sent (a browser only hides their answers);
    // the PUT never was, its preflight refused.
    let after: Vec<String> = methods(&up)[before..].to_vec();
    assert!(
        after.iter().all(|m| m.starts_with("GET ")),
        "no PUT from a disallowed origin: {after:?}"
    );
    gw.wait_for("refusals counted", |t| t.cors_refused >= 3);
}
