//! Live reconfiguration over real sockets: reloads under load lose no
//! request and never mix two configs; a bad config changes nothing; the
//! admin API's endpoints; listeners added and removed by a reload.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ringway::Format;
use support::process::*;
use support::*;

/// An upstream that answers with its own name and the Host it was sent.
fn named_upstream(name: &'static str) -> TestUpstream {
    TestUpstream::start(move |seen| {
        let host = seen.header("host").unwrap_or("-").to_string();
        Reply::Raw(response(200, &format!("{name} {host}")))
    })
}

/// Route `/x` to upstream `x` at `server`, sending `host` as the Host.
fn x_config(driver: &str, listener: SocketAddr, server: SocketAddr, host: &str) -> String {
    format!(
        "driver = \"{driver}\"\nworkers = 2\n{ADMIN}\
         [[listeners]]\naddress = \"{listener}\"\n\
         [[upstreams]]\nname = \"x\"\nservers = [\"{server}\"]\n\
         [[routes]]\nname = \"x\"\npath = \"/x\"\nupstream = \"x\"\nhost-header = \"{host}\"\n"
    )
}

#[test]
fn reloads_under_load_lose_nothing_and_never_mix_configs() {
    for driver in DRIVERS {
        let a = named_upstream("A");
        let b = named_upstream("B");
        let one = x_config(driver, "127.0.0.1:0".parse().expect("addr"), a.addr, "one");
        let gw = TestGateway::start(&one, driver);
        let two = x_config(driver, "127.0.0.1:0".parse().expect("addr"), b.addr, "two");
        let plane = gw.handle();

        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for i in 0..6 {
            let (addr, stop, done) = (gw.addr, stop.clone(), done.clone());
            clients.push(std::thread::spawn(move || {
                // Four keep-alive clients; two open a connection per request.
                let fresh = i >= 4;
                let mut c = TestClient::connect(addr);
                let mut seen = [0usize; 2];
                while !stop.load(Ordering::SeqCst) {
                    if fresh {
                        c = TestClient::connect(addr);
                    }
                    let r = c.get("/x");
                    assert_eq!(r.status, 200, "client {i}: {}", r.text());
                    match r.text().as_str() {
                        "A one" => seen[0] += 1,
                        "B two" => seen[1] += 1,
                        other => panic!("client {i}: a response mixing configs: {other:?}"),
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
                seen
            }));
        }
        wait_until("load running", || done.load(Ordering::SeqCst) > 50);
        for i in 0..200 {
            let src = if i % 2 == 0 { &two } else { &one };
            let r = plane
                .reload_source(src, Format::Toml)
                .unwrap_or_else(|e| panic!("reload {i}: {e}"));
            assert!(r.propagation.is_some(), "reload {i} reached every worker");
            assert!(r.restart_required.is_empty());
        }
        let before = done.load(Ordering::SeqCst);
        wait_until("more load after the last reload", || {
            done.load(Ordering::SeqCst) > before + 50
        });
        stop.store(true, Ordering::SeqCst);
        let mut seen = [0usize; 2];
        for c in clients {
            let s = c.join().expect("no client saw a failure");
            seen[0] += s[0];
            seen[1] += s[1];
        }
        assert!(seen[0] > 0 && seen[1] > 0, "both configs served: {seen:?}");
        assert_eq!(plane.generation(), 201);
        assert!(plane.is_ready());

        // The last reload installed config one: every request now goes to A,
        // on connections old and new.
        let a_before = a.request_count();
        let b_before = b.request_count();
        let mut kept = gw.client();
        for _ in 0..20 {
            assert_eq!(kept.get("/x").text(), "A one");
            assert_eq!(gw.client().get("/x").text(), "A one");
        }
        assert_eq!(a.request_count(), a_before + 40);
        assert_eq!(b.request_count(), b_before);
        let t = gw.totals();
        assert_eq!(t.responses_5xx, 0, "{driver}: {t:?}");
        assert_eq!(plane.reload_stats().failed, 0);
    }
}

#[test]
fn unchanged_upstreams_keep_their_pooled_connections() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("pooled");
        let cfg = |body: &str| {
            format!(
                "workers = 1\n[[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n\
                 [[routes]]\nname = \"api\"\npath-prefix = \"/api/\"\nupstream = \"u\"\n\
                 [[routes]]\nname = \"hi\"\npath = \"/hi\"\n[routes.respond]\nbody = \"{body}\"\n",
                up.addr
            )
        };
        let gw = TestGateway::start(&cfg("one"), driver);
        let mut c = gw.client();
        assert_eq!(c.get("/api/a").text(), "pooled");
        assert_eq!(up.connection_count(), 1);
        let listener = "[[listeners]]\naddress = \"127.0.0.1:0\"\n";
        gw.handle()
            .reload_source(&format!("{}{listener}{ADMIN}", cfg("two")), Format::Toml)
            .expect("reload");
        assert_eq!(c.get("/hi").text(), "two");
        assert_eq!(c.get("/api/b").text(), "pooled");
        assert_eq!(
            up.connection_count(),
            1,
            "{driver}: the pooled connection was reused"
        );
        assert_eq!(gw.totals().upstream_reuses, 1);
    }
}

#[test]
fn a_rejected_config_changes_nothing_and_names_the_field() {
    let gw = TestGateway::start(
        "workers = 2\n[[routes]]\npath = \"/v\"\n[routes.respond]\nbody = \"v1\"\n",
        "io_uring",
    );
    let admin = gw.admin_addr();
    let bad = format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n{ADMIN}[[routes]]\npath = \"/v\"\nupstream = \"nowhere\"\n"
    );
    let (status, body) = admin_call(admin, "PUT", "/config", &[], bad.as_bytes());
    assert_eq!(status, 400, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors[0]["path"], "routes[0].upstream", "{body}");
    assert!(errors[0]["message"]
        .as_str()
        .expect("message")
        .contains("nowhere"));
    assert_eq!(errors[0]["line"], 7);
    assert_eq!(gw.client().get("/v").text(), "v1");

    // A listener that cannot bind refuses the whole reload.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr");
    let clash = format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[[listeners]]\naddress = \"{taken}\"\n{ADMIN}\
         [[routes]]\npath = \"/v\"\n[routes.respond]\nbody = \"v2\"\n"
    );
    let (status, body) = admin_call(admin, "PUT", "/config", &[], clash.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["path"], "listeners[1].address", "{body}");
    assert_eq!(gw.client().get("/v").text(), "v1");

    let (_, status) = admin_call(admin, "GET", "/status", &[], b"");
    assert_eq!(status["generation"], 1);
    assert_eq!(status["reloads"]["failed"], 2);
    assert_eq!(status["reloads"]["succeeded"], 0);
    assert!(status["reloads"]["last_error"]
        .as_str()
        .expect("last error")
        .contains("listeners[1].address"));
    let (code, ready) = admin_call(admin, "GET", "/readyz", &[], b"");
    assert_eq!(code, 200, "{ready}");
}

#[test]
fn admin_api_reads_replaces_and_validates_the_config() {
    let gw = TestGateway::start(
        "workers = 2\n[[routes]]\nname = \"v\"\npath = \"/v\"\n[routes.respond]\nbody = \"v1\"\n",
        "epoll",
    );
    let admin = gw.admin_addr();
    let (code, body) = admin_call(admin, "GET", "/healthz", &[], b"");
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")));

    let (code, status) = admin_call(admin, "GET", "/status", &[], b"");
    assert_eq!(code, 200);
    assert_eq!(status["workers"].as_array().expect("workers").len(), 2);
    for w in status["workers"].as_array().expect("workers") {
        assert_eq!(w["generation"], 1);
        assert_eq!(w["driver"], "epoll");
        assert!(w["cpu"].is_u64() && w["connections_open"].is_u64());
    }
    assert!(status["version"].is_string() && status["uptime_seconds"].is_f64());

    let (_, routes) = admin_call(admin, "GET", "/routes", &[], b"");
    assert_eq!(routes["routes"][0]["name"], "v");
    assert_eq!(routes["routes"][0]["path"]["exact"], "/v");

    // GET /config gives the effective config; sending it back as JSON
    // with one change is a reload.
    let (code, got) = admin_call(admin, "GET", "/config", &[], b"");
    assert_eq!(code, 200);
    assert_eq!(got["generation"], 1);
    let mut config = got["config"].clone();
    config["routes"][0]["respond"]["body"] = "v2".into();
    let json = serde_json::to_vec(&config).expect("json");
    let (code, body) = admin_call(
        admin,
        "POST",
        "/config/validate",
        &[("Content-Type", "application/json")],
        &json,
    );
    assert_eq!(
        (code, &body["valid"]),
        (200, &serde_json::Value::Bool(true)),
        "{body}"
    );
    assert_eq!(
        gw.client().get("/v").text(),
        "v1",
        "a dry run applies nothing"
    );
    let (code, body) = admin_call(
        admin,
        "PUT",
        "/config",
        &[("Content-Type", "application/json")],
        &json,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["generation"], 2);
    assert!(body["propagation_us"].is_u64());
    assert_eq!(gw.client().get("/v").text(), "v2");

    // TOML works too; a worker-count change is applied except for the
    // count, which the answer says needs a restart.
    let toml = format!(
        "workers = 1\ndriver = \"epoll\"\n[[listeners]]\naddress = \"127.0.0.1:0\"\n{ADMIN}\
         [[routes]]\nname = \"v\"\npath = \"/v\"\n[routes.respond]\nbody = \"v3\"\n"
    );
    let (code, body) = admin_call(admin, "PUT", "/config", &[], toml.as_bytes());
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["restart_required"][0], "workers");
    assert_eq!(gw.client().get("/v").text(), "v3");
    let (_, got) = admin_call(admin, "GET", "/config", &[], b"");
    assert_eq!(got["generation"], 3);
    assert_eq!(
        got["config"]["workers"], 2,
        "the running worker count stays"
    );

    let (code, _) = admin_call(admin, "DELETE", "/config", &[], b"");
    assert_eq!(code, 405);
    let (code, _) = admin_call(admin, "GET", "/nope", &[], b"");
    assert_eq!(code, 404);
    let (code, body) = admin_call(admin, "POST", "/config/reload", &[], b"");
    assert_eq!(code, 409, "no file to re-read: {body}");
}

#[test]
fn admin_token_guards_everything_but_health() {
    let token = "s3cret-token-0123456789";
    let gw = TestGateway::start(
        &format!(
            "[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{token}\"\n\
             [[routes]]\n[routes.respond]\nbody = \"hi\"\n"
        ),
        "io_uring",
    );
    let admin = gw.admin_addr();
    let (code, _) = admin_call(admin, "GET", "/readyz", &[], b"");
    assert_eq!(code, 200);
    let (code, body) = admin_call(admin, "GET", "/status", &[], b"");
    assert_eq!(code, 401, "{body}");
    let wrong = [("Authorization", "Bearer s3cret-token-0123456780")];
    assert_eq!(admin_call(admin, "GET", "/config", &wrong, b"").0, 401);
    let auth = format!("Bearer {token}");
    let right = [("Authorization", auth.as_str())];
    let (code, body) = admin_call(admin, "GET", "/config", &right, b"");
    assert_eq!(code, 200);
    assert_eq!(body["config"]["admin"]["token"], "<redacted>");
}

#[test]
fn listeners_are_added_and_removed_and_removed_ones_drain() {
    for driver in DRIVERS {
        // `/slow` is held until the test lets it go.
        let gate = Arc::new(AtomicBool::new(false));
        let held = gate.clone();
        let up = TestUpstream::start(move |seen| {
            if seen.target == "/slow" {
                wait_until("the test releases /slow", || held.load(Ordering::SeqCst));
                Reply::Raw(response(200, "slow done"))
            } else {
                Reply::Raw(response(200, "fast"))
            }
        });
        let cfg = |listeners: &[&str]| {
            let mut s = format!(
                "driver = \"{driver}\"\nworkers = 2\n{ADMIN}\
                 [[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n\
                 [[routes]]\nupstream = \"u\"\n",
                up.addr
            );
            for l in listeners {
                s.push_str(&format!("[[listeners]]\naddress = \"{l}\"\n"));
            }
            s
        };
        let gw = TestGateway::start(&cfg(&["127.0.0.1:0"]), driver);
        let plane = gw.handle();

        // Add a listener on another loopback address.
        let r = plane
            .reload_source(&cfg(&["127.0.0.1:0", "127.0.0.2:0"]), Format::Toml)
            .expect("reload adds a listener");
        assert_eq!(r.listeners_added.len(), 1);
        let second = r.listeners_added[0];
        assert_eq!(plane.listen_addrs(), vec![gw.addr, second]);
        assert_eq!(TestClient::connect(second).get("/").text(), "fast");

        // Open connections on it: one idle, one with a request in flight.
        let mut idle = TestClient::connect(second);
        assert_eq!(idle.get("/").text(), "fast");
        let mut busy = TestClient::connect(second);
        busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
        wait_until("slow request upstream", || up.request_count() >= 3);

        let r = plane
            .reload_source(&cfg(&["127.0.0.1:0"]), Format::Toml)
            .expect("reload removes a listener");
        assert_eq!(r.listeners_removed, vec![second]);
        gate.store(true, Ordering::SeqCst);
        // The request in flight finishes, told the connection closes.
        let resp = busy.read_response(false).expect("in-flight answer");
        assert_eq!(resp.text(), "slow done");
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(busy.is_closed());
        // The idle connection is closed; nothing accepts there any more.
        assert!(idle.is_closed(), "{driver}: idle connection drained");
        wait_until("removed listener closed", || {
            std::net::TcpStream::connect(second).is_err()
        });
        // The other listener never noticed.
        assert_eq!(gw.client().get("/").text(), "fast");
        assert_eq!(gw.totals().responses_5xx, 0);
    }
}

#[test]
fn removed_servers_lose_their_pooled_connections() {
    for driver in DRIVERS {
        let old = TestUpstream::ok("old");
        let new = TestUpstream::ok("new");
        let cfg = |server: SocketAddr| {
            format!(
                "driver = \"{driver}\"\nworkers = 1\n[[upstreams]]\nname = \"u\"\nservers = [\"{server}\"]\n\
                 [[routes]]\nupstream = \"u\"\n"
            )
        };
        let gw = TestGateway::start(&cfg(old.addr), driver);
        assert_eq!(gw.client().get("/").text(), "old");
        assert_eq!(old.closed_count(), 0, "pooled, not closed");
        let next = format!(
            "{}[[listeners]]\naddress = \"127.0.0.1:0\"\n{ADMIN}",
            cfg(new.addr)
        );
        gw.handle()
            .reload_source(&next, Format::Toml)
            .expect("reload");
        wait_until("the old server's pooled connection closed", || {
            old.closed_count() == 1
        });
        assert_eq!(gw.client().get("/").text(), "new");
    }
}

#[test]
fn a_reload_cannot_drop_the_token_of_a_public_admin_api() {
    let token = "0123456789abcdef-token";
    let admin_table = format!("[admin]\naddress = \"0.0.0.0:0\"\ntoken = \"{token}\"\n");
    let body = |admin: &str| {
        format!("[[listeners]]\naddress = \"127.0.0.1:0\"\n{admin}[[routes]]\n[routes.respond]\nbody = \"x\"\n")
    };
    let gw = TestGateway::start(&body(&admin_table), "epoll");
    let admin = SocketAddr::from(([127, 0, 0, 1], gw.admin_addr().port()));
    let auth = format!("Bearer {token}");
    let auth = [("Authorization", auth.as_str())];
    // No [admin] table: its default would be loopback without a token, but
    // the running listener stays on 0.0.0.0 until a restart.
    let (code, answer) = admin_call(admin, "PUT", "/config", &auth, body("").as_bytes());
    assert_eq!(code, 400, "{answer}");
    assert_eq!(answer["errors"][0]["path"], "admin.token");
    let (code, answer) = admin_call(
        admin,
        "PUT",
        "/config",
        &auth,
        body(&admin_table).as_bytes(),
    );
    assert_eq!(code, 200, "{answer}");
}

#[test]
fn admin_requests_are_refused_on_their_head_before_any_body() {
    let token = "0123456789abcdef-token";
    let gw = TestGateway::start(
        &format!("[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{token}\"\n[[routes]]\n[routes.respond]\n"),
        "io_uring",
    );
    let admin = gw.admin_addr();
    // A huge body announced without the token: refused at once, unread.
    let (code, _) = admin_raw(
        admin,
        "PUT /config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9000000\r\n\r\n",
    );
    assert_eq!(code, 401);
    let (code, _) = admin_raw(
        admin,
        &format!("PUT /config HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Length: 9000000\r\n\r\n"),
    );
    assert_eq!(code, 413);
    let (code, _) = admin_raw(
        admin,
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(code, 401, "auth comes first");
    let (code, _) = admin_raw(admin, "NOT A REQUEST\r\n\r\n");
    assert_eq!(code, 400);

    // Without a token, a Host that is a DNS name (a rebinding page in a
    // local browser) is refused; IP literals and localhost are served.
    let open = TestGateway::start("[[routes]]\n[routes.respond]\n", "epoll");
    let admin = open.admin_addr();
    let (code, _) = admin_raw(
        admin,
        "GET /status HTTP/1.1\r\nHost: rebind.example:9901\r\n\r\n",
    );
    assert_eq!(code, 403);
    let (code, _) = admin_raw(
        admin,
        "GET /status HTTP/1.1\r\nHost: localhost:9901\r\n\r\n",
    );
    assert_eq!(code, 200);
    let (code, _) = admin_raw(
        admin,
        "GET /healthz HTTP/1.1\r\nHost: probe.internal\r\n\r\n",
    );
    assert_eq!(code, 200, "probes are open");
}

#[test]
fn a_reload_reports_the_warnings_of_a_risky_config() {
    let gw = TestGateway::start("[[routes]]\n[routes.respond]\nbody = \"x\"\n", "epoll");
    let risky = format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n{ADMIN}\
         [[consumers]]\nname = \"dev\"\napi-keys = [\"plain:dev-key-0123456789\"]\n\
         [[routes]]\n[routes.respond]\nbody = \"y\"\n"
    );
    let (code, body) = admin_call(gw.admin_addr(), "PUT", "/config", &[], risky.as_bytes());
    assert_eq!(code, 200, "{body}");
    let warnings = body["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("consumers[0].api-keys[0]"))),
        "{body}"
    );
}
