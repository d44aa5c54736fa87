//! Steady-state requests allocate nothing on the worker threads.
//!
//! A counting global allocator tallies the allocations made on threads
//! named `ringway-w*` (the workers). After a warm-up that fills the pools,
//! a thousand more keep-alive requests — answered by the built-in responder,
//! proxied to an upstream, proxied through API-key authentication, two
//! rate limits (with their headers) and a concurrency limit, and answered
//! from the cache (small and large bodies, and 304 to a conditional
//! request) — must not allocate at all.

mod support;

use sha2::{Digest, Sha256};
use support::*;

#[global_allocator]
static GLOBAL: support::counting::Counting = support::counting::Counting;

fn allocs() -> u64 {
    support::counting::allocs()
}

#[test]
fn steady_state_requests_do_not_allocate() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("hello world\n");
        let big = "b".repeat(20_000);
        let origin = TestUpstream::start(move |s| {
            let body = if s.target.contains("big") {
                big.as_str()
            } else {
                "cached"
            };
            Reply::Raw(
                format!(
                    "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nETag: \"e\"\r\n\
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
        let toml = format!(
            "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
             [[consumers]]\nname = \"alice\"\napi-keys = [\"sha256:{key_hash}\"]\n\
             [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\n\
             [[routes]]\npath-prefix = \"/proxy/\"\nupstream = \"up\"\n\
             [[routes]]\npath-prefix = \"/policed/\"\nupstream = \"up\"\n\
             auth = [\"keys\"]\nrate-limit-headers = true\n\
             [[routes.rate-limits]]\nkey = \"consumer\"\nrate = \"100000000/s\"\n\
             [[routes.rate-limits]]\nkey = \"client-ip\"\nrate = \"100000000/s\"\n\
             [routes.concurrency]\nkey = \"header:x-tenant\"\nmax = 100\n\
             [[routes]]\npath = \"/local\"\n[routes.respond]\nbody = \"hi\"\n\
             [[upstreams]]\nname = \"origin\"\nservers = [\"{}\"]\n\
             [[routes]]\npath-prefix = \"/cached/\"\nupstream = \"origin\"\n[routes.cache]\n",
            up.addr, origin.addr
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c = gw.client();
        let post = b"POST /proxy/p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
        let policed = b"GET /policed/p HTTP/1.1\r\nHost: t\r\nX-Api-Key: alloc-test-key-0123\r\n\
                        X-Tenant: t1\r\n\r\n";
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
            c.send(b"GET /cached/small?a=1 HTTP/1.1\r\nHost: test\r\nIf-None-Match: \"e\"\r\n\r\n");
            assert_eq!(c.read_response(false).expect("304").status, 304);
        };
        for _ in 0..200 {
            round(&mut c);
        }
        let before = allocs();
        for _ in 0..1000 {
            round(&mut c);
        }
        let during = allocs() - before;
        assert_eq!(
            during, 0,
            "driver={driver}: {during} allocations on the worker over 7000 requests"
        );
    }
}
