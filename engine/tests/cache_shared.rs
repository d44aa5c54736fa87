//! One cache for all workers: a response stored by any worker is a hit on
//! every worker, concurrent misses on any workers make one origin fetch,
//! and a purge, an invalidation or a background refresh acts once.
//!
//! Which worker a new connection lands on is the kernel's choice
//! (SO_REUSEPORT hashing); the tests open many connections and read the
//! per-worker counters to show that every worker took part.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cached::{cache_status, gateway, get, reply, seen};
use support::process::admin_call;
use support::{driver, Reply, Response, TestClient, TestGateway, TestUpstream};

/// Cache hits per worker, from the admin API.
fn hits_per_worker(gw: &TestGateway) -> Vec<u64> {
    let (status, doc) = admin_call(gw.admin_addr(), "GET", "/cache", &[], b"");
    assert_eq!(status, 200);
    doc["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["hits"].as_u64().expect("hits"))
        .collect()
}

fn a_response_stored_by_one_worker_is_a_hit_on_all(workers: usize) {
    let origin = TestUpstream::start(|_| {
        Reply::Raw(reply(200, &[("Cache-Control", "max-age=600")], "one copy"))
    });
    let gw = gateway(&origin, workers, "", "");
    let first = get(&gw, "/shared", "");
    assert!(cache_status(&first).contains("fwd=miss"), "{first:?}");
    for i in 0..100 {
        let r = get(&gw, "/shared", "");
        assert_eq!(r.text(), "one copy");
        assert!(
            cache_status(&r).contains("; hit"),
            "request {i} on a new connection: {}",
            cache_status(&r)
        );
    }
    assert_eq!(seen(&origin, "/shared"), 1, "the origin saw one request");
    let hits = hits_per_worker(&gw);
    assert_eq!(hits.len(), workers);
    assert_eq!(hits.iter().sum::<u64>(), 100);
    assert!(
        hits.iter().all(|&h| h > 0),
        "every worker answered hits: {hits:?}"
    );
    // One entry, counted once.
    let t = gw.totals();
    assert_eq!(t.cache_entries, 1);
}

#[test]
fn a_response_stored_by_one_of_two_workers_is_a_hit_on_both() {
    a_response_stored_by_one_worker_is_a_hit_on_all(2);
}

#[test]
fn a_response_stored_by_one_of_four_workers_is_a_hit_on_all_four() {
    a_response_stored_by_one_worker_is_a_hit_on_all(4);
}

fn concurrent_misses_on_all_workers_make_one_fetch(workers: usize) {
    const CLIENTS: usize = 64;
    // The origin holds its answer until every other request waits for it.
    let (origin, handle) = TestUpstream::holding_until_collapsed(
        CLIENTS as u64 - 1,
        reply(200, &[("Cache-Control", "max-age=600")], "fetched once"),
    );
    let toml = format!(
        "workers = {workers}\n[cache]\nlock-timeout = \"30s\"\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"cached\"\nupstream = \"up\"\n[routes.cache]\n",
        origin.addr
    );
    let gw = TestGateway::start(&toml, driver());
    *handle.lock().expect("lock") = Some(gw.handle());
    let addr = gw.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            thread::spawn(move || {
                let mut c = TestClient::connect(addr);
                c.send(b"GET /hot HTTP/1.1\r\nHost: test\r\n\r\n");
                c.read_response(false).expect("response")
            })
        })
        .collect();
    let answers: Vec<Response> = clients
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    assert!(answers.iter().all(|r| r.text() == "fetched once"));
    assert_eq!(seen(&origin, "/hot"), 1, "one fetch for {CLIENTS} clients");
    let collapsed = answers
        .iter()
        .filter(|r| cache_status(r).contains("collapsed"))
        .count();
    assert_eq!(collapsed, CLIENTS - 1);
    let per_worker: Vec<u64> = gw.handle().workers().iter().map(|w| w.requests).collect();
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "the misses came in on every worker: {per_worker:?}"
    );
}

#[test]
fn sixty_four_concurrent_misses_on_two_workers_make_one_fetch() {
    concurrent_misses_on_all_workers_make_one_fetch(2);
}

#[test]
fn sixty_four_concurrent_misses_on_four_workers_make_one_fetch() {
    concurrent_misses_on_all_workers_make_one_fetch(4);
}

#[test]
fn a_purge_through_one_worker_is_a_miss_on_every_worker() {
    let origin = TestUpstream::start(|_| {
        Reply::Raw(reply(200, &[("Cache-Control", "max-age=600")], "purge me"))
    });
    let gw = gateway(&origin, 2, "", "");
    for _ in 0..20 {
        get(&gw, "/p", "");
    }
    assert_eq!(seen(&origin, "/p"), 1);
    let (status, body) = admin_call(
        gw.admin_addr(),
        "POST",
        "/cache/purge",
        &[],
        br#"{"url": "http://test/p"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purged"], Value::from(1), "one entry for all workers");
    let before = hits_per_worker(&gw);
    let first = get(&gw, "/p", "");
    assert!(cache_status(&first).contains("fwd=miss"), "{first:?}");
    for _ in 0..60 {
        let r = get(&gw, "/p", "");
        assert!(cache_status(&r).contains("; hit"), "{}", cache_status(&r));
    }
    assert_eq!(
        seen(&origin, "/p"),
        2,
        "fetched again once, for every worker"
    );
    let after = hits_per_worker(&gw);
    assert!(
        after.iter().zip(&before).all(|(a, b)| a > b),
        "every worker hit the refetched entry: {before:?} -> {after:?}"
    );
}

#[test]
fn a_stale_while_revalidate_refresh_runs_once_for_all_workers() {
    // Stale after a second the first time; the refresh stays fresh, so
    // the test's own pace cannot make it stale again.
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = TestUpstream::start(move |_| {
        let max_age = if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            1
        } else {
            600
        };
        let cc = format!("max-age={max_age}, stale-while-revalidate=600");
        Reply::Raw(reply(
            200,
            &[("Cache-Control", cc.as_str()), ("ETag", "\"v1\"")],
            "refresh me",
        ))
    });
    let gw = gateway(&origin, 2, "", "");
    assert_eq!(get(&gw, "/swr", "").text(), "refresh me");
    // Stale after one second (Age is whole seconds): wait for the first
    // stale answer, then many more on new connections.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(&gw, "/swr", "");
        if cache_status(&r).contains("stale-while-revalidate") {
            break;
        }
        assert!(Instant::now() < until, "never went stale");
        thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..60 {
        assert_eq!(get(&gw, "/swr", "").text(), "refresh me");
    }
    gw.wait_for("the refresh landed", |t| {
        t.cache_revalidated + t.cache_stored >= 2
    });
    assert_eq!(
        seen(&origin, "/swr"),
        2,
        "one fetch to store, one background refresh for both workers"
    );
    assert_eq!(gw.totals().cache_background, 1);
}
