//! Traffic policies over real sockets: IP rules with trusted proxies, rate
//! limits exact across workers, concurrency limits, limits across reloads.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringway::Format;
use support::process::ADMIN;
use support::*;

fn get_with(c: &mut TestClient, path: &str, headers: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes());
    c.read_response(false).expect("a response")
}

#[test]
fn ip_rules_use_the_rightmost_untrusted_forwarded_address() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("in");
        let gw = TestGateway::start(
            &format!(
                "[client-ip]\ntrusted-proxies = [\"127.0.0.1/32\"]\n\
                 [ip-rules]\ndeny = [\"192.0.2.0/24\"]\n\
                 [[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n\
                 [[routes]]\nname = \"internal\"\npath-prefix = \"/internal/\"\nupstream = \"u\"\n\
                 ip-allow = [\"10.0.0.0/8\"]\nip-deny = [\"10.9.0.0/16\"]\n\
                 [[routes]]\nname = \"open\"\nupstream = \"u\"\n",
                up.addr
            ),
            driver,
        );
        let mut c = gw.client();
        let cases = [
            ("/internal/x", "", 403),
            ("/internal/x", "X-Forwarded-For: 10.1.2.3\r\n", 200),
            // The client's own claim on the left is not believed.
            ("/internal/x", "X-Forwarded-For: 10.1.2.3, 8.8.8.8\r\n", 403),
            ("/internal/x", "X-Forwarded-For: 10.9.0.1\r\n", 403),
            ("/open", "", 200),
            ("/open", "X-Forwarded-For: 192.0.2.7\r\n", 403),
            ("/open", "X-Forwarded-For: 192.0.2.7, 127.0.0.1\r\n", 403),
        ];
        for (path, xff, status) in cases {
            let r = get_with(&mut c, path, xff);
            assert_eq!(r.status, status, "{driver} {path} {xff:?}");
        }
        gw.wait_for("403s counted", |t| t.refused_403 == 5);
        assert_eq!(up.request_count(), 2);
    }
}

#[test]
fn a_refused_request_gets_429_with_rate_limit_headers() {
    let gw = TestGateway::start(
        "workers = 1\n[[routes]]\nname = \"r\"\nrate-limit-headers = true\n\
         [[routes.rate-limits]]\nkey = \"header:x-tenant\"\nrate = \"1/h\"\nburst = 2\n\
         [routes.respond]\nbody = \"ok\"\n",
        "io_uring",
    );
    let mut c = gw.client();
    let first = get_with(&mut c, "/", "X-Tenant: a\r\n");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-limit"), Some("1"));
    assert_eq!(first.header("ratelimit-remaining"), Some("1"));
    assert_eq!(get_with(&mut c, "/", "X-Tenant: a\r\n").status, 200);
    let refused = get_with(&mut c, "/", "X-Tenant: a\r\n");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        (3590..=3600).contains(&retry),
        "an empty bucket gains one token an hour: {retry}"
    );
    assert!(refused.header("ratelimit-reset").is_some());
    // Another tenant has its own bucket; the connection stayed usable.
    assert_eq!(get_with(&mut c, "/", "X-Tenant: b\r\n").status, 200);
    gw.wait_for("429 counted", |t| t.refused_429 == 1);
}

#[test]
fn several_limits_on_one_route_each_apply() {
    let gw = TestGateway::start(
        "workers = 1\n[[routes]]\nname = \"r\"\n\
         [[routes.rate-limits]]\nkey = \"route\"\nrate = \"1000/s\"\n\
         [[routes.rate-limits]]\nkey = \"client-ip\"\nrate = \"3/h\"\n\
         [routes.respond]\nbody = \"ok\"\n",
        "epoll",
    );
    let mut c = gw.client();
    let statuses: Vec<u16> = (0..5).map(|_| c.get("/").status).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[test]
fn a_concurrency_limit_counts_requests_in_flight() {
    for driver in DRIVERS {
        let gate = Arc::new(AtomicBool::new(false));
        let held = gate.clone();
        let up = TestUpstream::start(move |seen| {
            if seen.target == "/slow" {
                wait_until("the test releases /slow", || held.load(Ordering::SeqCst));
            }
            Reply::Raw(response(200, "done"))
        });
        let gw = TestGateway::start(
            &format!(
                "workers = 2\n[[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n\
                 [[routes]]\nname = \"r\"\nupstream = \"u\"\n\
                 [routes.concurrency]\nkey = \"route\"\nmax = 1\nstatus = 503\n",
                up.addr
            ),
            driver,
        );
        let mut slow = gw.client();
        slow.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
        wait_until("the slow request is upstream", || up.request_count() == 1);
        // From connections that may land on either worker.
        for _ in 0..4 {
            assert_eq!(gw.client().get("/fast").status, 503, "{driver}");
        }
        gw.wait_for("503s counted", |t| t.refused_503 == 4);
        gate.store(true, Ordering::SeqCst);
        assert_eq!(slow.read_response(false).expect("answer").text(), "done");
        wait_until("slot freed", || gw.client().get("/fast").status == 200);
    }
}

#[test]
fn unchanged_limits_keep_their_buckets_across_reloads() {
    let cfg = |rate: &str, body: &str| {
        format!(
            "workers = 2\n[[listeners]]\naddress = \"127.0.0.1:0\"\n{ADMIN}\
             [[routes]]\nname = \"r\"\npath = \"/r\"\n\
             [[routes.rate-limits]]\nkey = \"route\"\nrate = \"{rate}\"\nburst = 2\n\
             [routes.respond]\nbody = \"r\"\n\
             [[routes]]\nname = \"other\"\npath = \"/other\"\n[routes.respond]\nbody = \"{body}\"\n"
        )
    };
    let gw = TestGateway::start(&cfg("1/h", "one"), "io_uring");
    assert_eq!(gw.client().get("/r").status, 200);
    assert_eq!(gw.client().get("/r").status, 200);
    assert_eq!(gw.client().get("/r").status, 429);
    let plane = gw.handle();
    plane
        .reload_source(&cfg("1/h", "two"), Format::Toml)
        .expect("reload");
    assert_eq!(gw.client().get("/other").text(), "two");
    assert_eq!(gw.client().get("/r").status, 429, "the bucket was kept");
    plane
        .reload_source(&cfg("2/h", "two"), Format::Toml)
        .expect("reload");
    assert_eq!(
        gw.client().get("/r").status,
        200,
        "a new definition, a new bucket"
    );
}

#[test]
fn a_flood_of_keys_stays_within_the_key_table() {
    let gw = TestGateway::start(
        "workers = 2\n[[routes]]\nname = \"r\"\n\
         [[routes.rate-limits]]\nkey = \"header:x-key\"\nrate = \"1/h\"\nmax-keys = 10\n\
         [routes.respond]\nbody = \"ok\"\n",
        "epoll",
    );
    let mut c = gw.client();
    for i in 0..200 {
        let r = get_with(&mut c, "/", &format!("X-Key: k{i}\r\n"));
        assert_eq!(r.status, 200, "a new key starts with a full bucket");
    }
    // The table and its evictions, as operators see them.
    let (_, status) = support::process::admin_call(gw.admin_addr(), "GET", "/status", &[], b"");
    let limit = &status["rate_limits"][0];
    assert_eq!(limit["key"], "header:x-key");
    let keys = limit["keys"].as_u64().expect("keys");
    assert!(keys <= 10, "{keys} keys");
    assert!(
        limit["evictions"].as_u64().expect("evictions") >= 190,
        "{limit}"
    );
}

/// Offers more than `rate` for `window` from `connections` connections and
/// checks that what was admitted is the burst plus the rate over the time
/// actually taken, within 2%.
fn admitted_rate_is_exact(connections: usize, window: Duration) {
    let rate = 200u64;
    let burst = 50u64;
    let gw = TestGateway::start(
        &format!(
            "workers = 2\n[[routes]]\nname = \"r\"\n\
             [[routes.rate-limits]]\nkey = \"header:x-client\"\nrate = \"{rate}/s\"\nburst = {burst}\n\
             [routes.respond]\nbody = \"ok\"\n"
        ),
        "io_uring",
    );
    let admitted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, admitted, refused) = (gw.addr, admitted.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut c = TestClient::connect(addr);
                let mut last = Instant::now();
                while start.elapsed() < window {
                    let r = get_with(&mut c, "/", "X-Client: one\r\n");
                    last = Instant::now();
                    match r.status {
                        200 => admitted.fetch_add(1, Ordering::SeqCst),
                        429 => refused.fetch_add(1, Ordering::SeqCst),
                        other => panic!("status {other}"),
                    };
                }
                last
            })
        })
        .collect();
    let end = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .max()
        .expect("clients");
    let elapsed = end.duration_since(start).as_secs_f64();
    let admitted = admitted.load(Ordering::SeqCst) as f64;
    let expected = burst as f64 + rate as f64 * elapsed;
    let refused = refused.load(Ordering::SeqCst);
    assert!(
        refused as f64 > admitted,
        "the offered load must exceed the rate for the check to mean anything: {refused} refused"
    );
    let error = (admitted - expected).abs() / expected;
    eprintln!(
        "{connections} connection(s): admitted {admitted} of {} in {elapsed:.3} s, expected {expected:.1}, error {:.3}%",
        admitted as u64 + refused,
        error * 100.0
    );
    assert!(
        error <= 0.02,
        "admitted {admitted} in {elapsed:.3} s, expected {expected:.0} (error {:.2}%)",
        error * 100.0
    );
    let per_worker: Vec<u64> = gw.handle().workers().iter().map(|w| w.requests).collect();
    if connections > 1 {
        assert!(
            per_worker.iter().all(|&n| n > 0),
            "connections spread over both workers: {per_worker:?}"
        );
    }
}

#[test]
fn one_key_spread_over_both_workers_is_limited_exactly() {
    admitted_rate_is_exact(16, Duration::from_secs(10));
}

#[test]
fn one_key_hot_on_one_worker_is_limited_exactly() {
    admitted_rate_is_exact(1, Duration::from_secs(10));
}
