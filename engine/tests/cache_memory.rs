//! The cache's byte budget holds for the memory it really uses.
//!
//! A counting global allocator tracks the live bytes allocated on the
//! worker threads (`ringway-w*`). Two workers share one cache: after a
//! warm-up that fills both workers' buffer pools on an uncached route,
//! thousands of distinct responses go through a caching route with a
//! 4 MiB store, far more than fits, over connections that land on both
//! workers. The workers' live bytes then grow by what the cache holds;
//! that growth must match the bytes the store accounts (keys, heads,
//! bodies and per-entry overhead) within 5% of the budget, and the
//! accounted bytes must stay within the budget: the budget is the whole
//! cache's, not each worker's. Purging everything gives the memory back.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;

use support::process::admin_call;
use support::*;

#[global_allocator]
static GLOBAL: support::counting::Counting = support::counting::Counting;

fn live() -> i64 {
    support::counting::live()
}

/// An origin that records nothing (so the test's own memory stays flat):
/// `/c/N` gets a cacheable body of 500 + (N % 13) * 150 bytes.
fn origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || {
                let mut w = stream.try_clone().expect("clone");
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or("/").to_string();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let n: usize = target
                        .rsplit('/')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let body = "m".repeat(500 + (n % 13) * 150);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nContent-Type: text/plain\r\n\
                         ETag: \"{n}\"\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn the_budget_holds_for_real_memory() {
    const BUDGET: i64 = 4 << 20;
    let addr = origin();
    let toml = format!(
        "workers = 2\n[cache]\nsize = \"4MiB\"\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"{addr}\"]\n\
         [[routes]]\npath-prefix = \"/c/\"\nupstream = \"up\"\n[routes.cache]\n\
         [[routes]]\npath-prefix = \"/plain/\"\nupstream = \"up\"\n"
    );
    let gw = TestGateway::start(&toml, DRIVERS[0]);
    // Connections land on either worker (the kernel's choice): open them
    // until both workers have some, then use them in turn.
    let served = |gw: &TestGateway| -> Vec<u64> {
        gw.handle().workers().iter().map(|w| w.requests).collect()
    };
    let mut clients = Vec::new();
    while clients.len() < 8 || served(&gw).contains(&0) {
        assert!(clients.len() < 64, "no connection reached one worker");
        let mut c = gw.client();
        assert_eq!(c.get("/plain/first").status, 200);
        clients.push(c);
        gw.wait_for("the request counted", |t| {
            t.requests >= clients.len() as u64
        });
    }
    let n = clients.len();
    for i in 0..600 {
        assert_eq!(clients[i % n].get(&format!("/plain/{i}")).status, 200);
    }
    let before = live();
    for i in 0..12_000 {
        assert_eq!(clients[i % n].get(&format!("/c/{i}")).status, 200);
    }
    let (_, doc) = admin_call(gw.admin_addr(), "GET", "/cache", &[], b"");
    let stored: Vec<u64> = doc["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["stored"].as_u64().expect("stored"))
        .collect();
    assert!(
        stored.iter().all(|&n| n > 0),
        "both workers stored entries: {stored:?}"
    );
    let t = gw.totals();
    let accounted = t.cache_bytes as i64;
    let grown = live() - before;
    eprintln!(
        "entries {}, accounted {accounted} B, worker memory grew {grown} B",
        t.cache_entries
    );
    assert!(accounted <= BUDGET, "accounted {accounted} > budget");
    assert!(
        accounted > BUDGET * 9 / 10,
        "the budget is used: {accounted}"
    );
    assert!(
        (grown - accounted).abs() <= BUDGET / 20,
        "real growth {grown} B vs accounted {accounted} B: off by more than 5% of the budget"
    );
    // Purged, the memory comes back.
    let (status, _) = admin_call(
        gw.admin_addr(),
        "POST",
        "/cache/purge",
        &[],
        br#"{"all": true}"#,
    );
    assert_eq!(status, 200);
    let left = live() - before;
    eprintln!("after purge: {left} B above the start");
    assert!(left < BUDGET / 20, "{left} B still held after a purge");
}
