//! Routes with transforms allocate nothing per request in steady state:
//! after a warm-up, header rules on both sides (with variables), a regex
//! rewrite, query rules, a redirect and JSON errors and custom error
//! bodies make no allocation on the worker threads (a counting global
//! allocator tallies those on threads named `ringway-w*`).

mod support;

use support::*;

#[global_allocator]
static GLOBAL: support::counting::Counting = support::counting::Counting;

#[test]
fn transform_requests_do_not_allocate() {
    for driver in DRIVERS {
        steady_state(driver);
    }
}

fn steady_state(driver: &str) {
    let up = TestUpstream::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: origin\r\nX-Powered-By: php\r\n\r\nhello"
                .to_vec(),
        )
    });
    let toml = format!(
        r#"workers = 1
[[listeners]]
address = "127.0.0.1:0"
error-format = "json"
[listeners.response-headers]
add = {{ "x-frame-options" = "DENY" }}
[[upstreams]]
name = "up"
servers = ["{}"]
[[routes]]
name = "rules"
path-prefix = "/rules/"
upstream = "up"
strip-prefix = true
[routes.request-headers]
remove = ["x-internal-*"]
rename = {{ "x-old" = "x-new" }}
set = {{ "x-client" = "$client_ip", "x-id" = "$request_id" }}
add-if-absent = {{ "x-tenant" = "t-$header:x-team" }}
add = {{ "x-route" = "$route" }}
[routes.response-headers]
remove = ["x-powered-by"]
set = {{ "server" = "edge", "x-status" = "$status $upstream_server" }}
[routes.query]
remove = ["debug"]
add = {{ "via" = "$route" }}
[[routes]]
name = "regex"
path-prefix = "/users/"
upstream = "up"
rewrite = {{ regex = "^/users/(\\d+)/(\\w+)$", replace = "/u/$1/$2" }}
[[routes]]
name = "moved"
path-prefix = "/old/"
rewrite = {{ regex = "^/old/(\\d+)$", replace = "/new/$1" }}
[routes.redirect]
location = "https://$host$path$query#$1"
[[routes]]
name = "custom"
path = "/custom"
methods = ["GET"]
[routes.respond]
body = "hi"
[[routes.error-bodies]]
status = 405
body = "no $request_id"
"#,
        up.addr
    );
    let hooks = ringway::Hooks {
        busy_window: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&toml, driver, hooks);
    let requests: [(&[u8], u16); 6] = [
        (
            b"GET /rules/a?debug=1&q=2 HTTP/1.1\r\nHost: t\r\nX-Internal-A: 1\r\nX-Old: o\r\n\
              X-Team: blue\r\n\r\n",
            200,
        ),
        (b"GET /users/42/orders HTTP/1.1\r\nHost: t\r\n\r\n", 200),
        (b"GET /old/7?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", 302),
        (b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", 404),
        (b"DELETE /custom HTTP/1.1\r\nHost: t\r\n\r\n", 405),
        (b"GET /custom HTTP/1.1\r\nHost: t\r\n\r\n", 200),
    ];
    let round = |c: &mut TestClient| {
        for (raw, status) in requests {
            c.send(raw);
            let r = c.read_response(false).expect("an answer");
            assert_eq!(r.status, status, "{r:?}");
            assert_eq!(r.header("x-frame-options"), Some("DENY"), "{r:?}");
        }
    };
    let mut clients: Vec<TestClient> = (0..4).map(|_| gw.client()).collect();
    let during = support::counting::allocs_in_steady_state(&mut clients, 200, 250, round);
    assert_eq!(
        during,
        0,
        "{during} allocations on the workers over {} requests ({driver})",
        250 * 4 * requests.len()
    );
}
