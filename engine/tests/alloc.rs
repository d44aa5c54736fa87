//! Steady-state requests allocate nothing on the worker threads.
//!
//! A counting global allocator tallies the allocations made on threads
//! named `ringway-w*` (the workers; two of them, each serving some of four or more
//! keep-alive connections). After a warm-up that fills the pools, eight
//! thousand or more requests — answered by the built-in responder, proxied to
//! an upstream (a POST among them, which invalidates its URL on both
//! workers), proxied through every policy (global and route IP rules,
//! API-key authentication with an allowed group, two rate limits with
//! their headers, a concurrency limit, a W3C trace continued and a client's
//! request ID replaced), and through the cache (hits with
//! small and large bodies, 304 to a conditional request, and a miss) —
//! must not allocate at all: with the access log off, and with it on
//! (every request written to a file by the writer thread).

mod support;

use sha2::{Digest, Sha256};
use support::*;

#[global_allocator]
static GLOBAL: support::counting::Counting = support::counting::Counting;

fn allocs() -> u64 {
    support::counting::allocs()
}

/// One test, its cases one after another: the counter sees every
/// gateway's workers, so two gateways at once would count each other.
#[test]
fn steady_state_requests_do_not_allocate() {
    let dir = std::env::temp_dir().join(format!("ringway-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for driver in DRIVERS {
        steady_state(driver, None);
        let file = dir.join(format!("alloc-access-{driver}.log"));
        let _ = std::fs::remove_file(&file);
        steady_state(driver, Some(&file));
    }
}

/// Runs the steady traffic on `driver`, logging every request to `log`
/// when it is set.
fn steady_state(driver: &str, log: Option<&std::path::Path>) {
    let up = TestUpstream::ok("hello world\n");
    let big = "b".repeat(20_000);
    let origin = TestUpstream::start(move |s| {
        let body = if s.target.contains("big") {
            big.as_str()
        } else {
            "cached"
        };
        // A miss on every request: the origin forbids storing.
        let cc = if s.target.contains("fresh") {
            "no-store"
        } else {
            "max-age=3600"
        };
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nCache-Control: {cc}\r\nETag: \"e\"\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    });
    let key_hash: String = Sha256::digest(b"alloc-test-key-0123")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let log_table = log.map_or_else(String::new, |path| {
        format!(
            "[access-log]\nenabled = true\npath = '{}'\n",
            path.display()
        )
    });
    let toml = format!(
            "workers = 2\n{log_table}[ip-rules]\nallow = [\"127.0.0.0/8\"]\n\
             [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
             [[consumers]]\nname = \"alice\"\ngroups = [\"staff\"]\napi-keys = [\"sha256:{key_hash}\"]\n\
             [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\n\
             [[routes]]\npath-prefix = \"/proxy/\"\nupstream = \"up\"\n\
             [[routes]]\npath-prefix = \"/policed/\"\nupstream = \"up\"\n\
             auth = [\"keys\"]\nallow-groups = [\"staff\"]\nip-allow = [\"127.0.0.1/32\"]\n\
             rate-limit-headers = true\n\
             [[routes.rate-limits]]\nkey = \"consumer\"\nrate = \"100000000/s\"\n\
             [[routes.rate-limits]]\nkey = \"client-ip\"\nrate = \"100000000/s\"\n\
             [routes.concurrency]\nkey = \"header:x-tenant\"\nmax = 100\n\
             [[routes]]\npath = \"/local\"\n[routes.respond]\nbody = \"hi\"\n\
             [[upstreams]]\nname = \"origin\"\nservers = [\"{}\"]\n\
             [[routes]]\npath-prefix = \"/cached/\"\nupstream = \"origin\"\n[routes.cache]\n",
            up.addr, origin.addr
        );
    // Steady traffic: a connection keeps its answering state between its
    // requests even when the machine is slow to schedule the client.
    let hooks = ringway::Hooks {
        busy_window: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&toml, driver, hooks);
    let c = gw.client();
    let post = b"POST /proxy/p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    // Also a client's trace to continue and a request ID to replace.
    let policed = b"GET /policed/p?q=1 HTTP/1.1\r\nHost: t\r\nX-Api-Key: alloc-test-key-0123\r\n\
                    X-Tenant: t1\r\nUser-Agent: alloc/1.0\r\nReferer: http://r/\r\n\
                    X-Request-Id: from-the-client\r\n\
                    traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
                    tracestate: congo=t61rcWkgMzE\r\n\r\n";
    let round = |c: &mut TestClient| {
        assert_eq!(c.get("/local").status, 200);
        assert_eq!(c.get("/proxy/x?y=1").status, 200);
        c.send(post);
        assert_eq!(c.read_response(false).expect("post").status, 200);
        c.send(policed);
        let r = c.read_response(false).expect("policed");
        assert_eq!(r.status, 200);
        assert!(r.header("ratelimit-remaining").is_some());
        assert_eq!(c.get("/cached/small?a=1").text(), "cached");
        assert_eq!(c.get("/cached/big").body.len(), 20_000);
        let miss = c.get("/cached/fresh");
        assert_eq!(miss.text(), "cached");
        assert!(miss
            .header("cache-status")
            .is_some_and(|s| s.contains("fwd=miss")));
        c.send(b"GET /cached/small?a=1 HTTP/1.1\r\nHost: test\r\nIf-None-Match: \"e\"\r\n\r\n");
        assert_eq!(c.read_response(false).expect("304").status, 304);
    };
    // Connections on both workers: SO_REUSEPORT picks a worker per
    // connection by a hash, so open more until each has some (at least
    // four in all).
    let mut clients: Vec<TestClient> = vec![c];
    let on_each = |gw: &TestGateway| gw.handle().workers().iter().all(|w| w.connections_open > 0);
    while clients.len() < 4 || !on_each(&gw) {
        assert!(
            clients.len() < 64,
            "driver={driver}: every connection on one worker"
        );
        clients.push(gw.client());
        let n = clients.len() as u64;
        gw.wait_for("the connection accepted", |t| t.connections_open == n);
    }
    for _ in 0..200 {
        for c in &mut clients {
            round(c);
        }
    }
    let per_worker = |gw: &TestGateway| -> Vec<u64> {
        gw.handle().workers().iter().map(|w| w.requests).collect()
    };
    let before = allocs();
    let served = per_worker(&gw);
    for _ in 0..250 {
        for c in &mut clients {
            round(c);
        }
    }
    let during = allocs() - before;
    assert_eq!(
        during,
        0,
        "driver={driver}: {during} allocations on the workers over {} requests",
        250 * 8 * clients.len()
    );
    let after = per_worker(&gw);
    assert!(
        after.iter().zip(&served).all(|(a, b)| a > b),
        "driver={driver}: both workers served: {served:?} -> {after:?}"
    );
    if let Some(path) = log {
        // Every request was written, none dropped.
        let sent = (200 + 250) * 8 * clients.len() as u64;
        gw.wait_for("every request counted", |t| t.requests == sent);
        assert_eq!(gw.totals().access_log_dropped, 0, "driver={driver}");
        drop(clients);
        drop(gw);
        let written = std::fs::read_to_string(path).expect("log").lines().count();
        assert_eq!(written as u64, sent, "driver={driver}");
    }
}
