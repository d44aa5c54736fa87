//! The HTTP cache (RFC 9111, RFC 5861, RFC 9211) against a real origin
//! that counts the requests it receives.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::cached::{cache_status, call, gateway, get, reply, seen};
use support::process::admin_call;
use support::{
    driver, exchange, on_both_drivers, Reply, Response, TestClient, TestGateway, TestUpstream,
    DRIVERS,
};

#[test]
fn fresh_responses_are_answered_from_memory() {
    for driver in DRIVERS {
        let origin = TestUpstream::start(|s| {
            Reply::Raw(reply(
                200,
                &[("Cache-Control", "max-age=60"), ("ETag", "\"v1\"")],
                &format!("body of {}", s.target),
            ))
        });
        let toml = format!(
            "workers = 1\ndriver = \"{driver}\"\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
             [[routes]]\nname = \"cached\"\nupstream = \"up\"\n[routes.cache]\n",
            origin.addr
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c = gw.client();
        let first = call(&mut c, "GET", "/a", "");
        assert_eq!(first.status, 200);
        assert_eq!(first.text(), "body of /a");
        assert!(cache_status(&first).contains("fwd=miss"), "{first:?}");
        assert!(cache_status(&first).contains("stored"), "{first:?}");
        for _ in 0..3 {
            let hit = call(&mut c, "GET", "/a", "");
            assert_eq!(hit.status, 200);
            assert_eq!(hit.text(), "body of /a");
            assert!(
                cache_status(&hit).starts_with("ringway; hit; ttl="),
                "{hit:?}"
            );
            assert!(hit.header("age").is_some());
            assert_eq!(hit.header("etag"), Some("\"v1\""));
            assert_eq!(hit.header("via"), Some("1.1 ringway"));
        }
        // HEAD is answered from the stored GET.
        let head = call(&mut c, "HEAD", "/a", "");
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("10"));
        assert!(head.body.is_empty());
        assert!(cache_status(&head).contains("hit"));
        // Another query is another key.
        assert!(cache_status(&call(&mut c, "GET", "/a?x=1", "")).contains("fwd=miss"));
        assert_eq!(seen(&origin, "/a"), 1, "one fetch for /a");
        assert_eq!(seen(&origin, "/a?x=1"), 1);
        let t = gw.totals();
        assert_eq!(t.cache_hits, 4);
        assert_eq!(t.cache_misses, 2);
    }
}

#[test]
fn what_may_not_be_stored_is_fetched_every_time() {
    on_both_drivers(what_may_not_be_stored_is_fetched_every_time_body);
}

fn what_may_not_be_stored_is_fetched_every_time_body() {
    let origin = TestUpstream::start(|s| {
        let cc = match s.target.as_str() {
            "/no-store" => "no-store",
            "/private" => "private, max-age=60",
            "/vary-star" => "max-age=60",
            "/no-lifetime" => "",
            _ => "max-age=60",
        };
        let mut headers = vec![("Cache-Control", cc)];
        if s.target == "/vary-star" {
            headers.push(("Vary", "*"));
        }
        if s.target == "/cookie" {
            headers.push(("Set-Cookie", "sid=alice"));
        }
        let status = if s.target == "/no-lifetime" { 500 } else { 200 };
        Reply::Raw(reply(status, &headers, "x"))
    });
    let gw = gateway(&origin, 1, "", "");
    let cases = [
        ("/no-store", "", "detail=no-store"),
        ("/private", "", "detail=private"),
        ("/vary-star", "", "detail=vary-star"),
        ("/no-lifetime", "", "detail=no-lifetime"),
        (
            "/auth",
            "Authorization: Bearer x\r\n",
            "detail=authorization",
        ),
        ("/cookie", "", "detail=set-cookie"),
        (
            "/req-no-store",
            "Cache-Control: no-store\r\n",
            "detail=no-store",
        ),
    ];
    for (path, headers, detail) in cases {
        for _ in 0..2 {
            let r = get(&gw, path, headers);
            assert!(cache_status(&r).contains(detail), "{path}: {r:?}");
        }
        assert_eq!(seen(&origin, path), 2, "{path} fetched each time");
    }
}

#[test]
fn stale_responses_are_revalidated_and_a_304_is_merged() {
    on_both_drivers(stale_responses_are_revalidated_and_a_304_is_merged_body);
}

fn stale_responses_are_revalidated_and_a_304_is_merged_body() {
    // max-age=0: stored, but stale at once, so every use revalidates.
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let origin = TestUpstream::start(move |s| {
        if s.header("if-none-match") == Some("\"v1\"") {
            let n = v.fetch_add(1, Ordering::SeqCst) + 1;
            let headers = [
                ("Cache-Control", "max-age=60"),
                ("ETag", "\"v1\""),
                ("X-Version", &n.to_string()),
            ];
            let mut r = reply(304, &headers, "");
            // A 304 has no body: drop the Content-Length the helper adds.
            let text = String::from_utf8(r)
                .expect("present")
                .replace("Content-Length: 0\r\n", "");
            r = text.into_bytes();
            return Reply::Raw(r);
        }
        Reply::Raw(reply(
            200,
            &[
                ("Cache-Control", "max-age=0"),
                ("ETag", "\"v1\""),
                ("X-Version", "1"),
                ("X-Kept", "yes"),
            ],
            "payload",
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    let first = get(&gw, "/r", "");
    assert!(cache_status(&first).contains("stored"));
    let second = get(&gw, "/r", "");
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "payload");
    assert!(
        cache_status(&second).contains("fwd=stale; fwd-status=304"),
        "{second:?}"
    );
    assert_eq!(second.header("x-version"), Some("2"), "304 fields replace");
    assert_eq!(second.header("x-kept"), Some("yes"), "others stay");
    let sent = origin.last();
    assert_eq!(sent.header("if-none-match"), Some("\"v1\""));
    // Now fresh for 60 s (the 304's Cache-Control): a hit.
    let third = get(&gw, "/r", "");
    assert!(cache_status(&third).contains("hit"), "{third:?}");
    assert_eq!(third.header("x-version"), Some("2"));
    assert_eq!(seen(&origin, "/r"), 2);
    // A client's no-cache forces revalidation of a fresh response.
    let forced = get(&gw, "/r", "Cache-Control: no-cache\r\n");
    assert!(
        cache_status(&forced).contains("fwd-status=304"),
        "{forced:?}"
    );
    assert_eq!(seen(&origin, "/r"), 3);
    assert_eq!(gw.totals().cache_revalidated, 2);
}

#[test]
fn request_directives_are_honoured() {
    on_both_drivers(request_directives_are_honoured_body);
}

fn request_directives_are_honoured_body() {
    let origin =
        TestUpstream::start(|_| Reply::Raw(reply(200, &[("Cache-Control", "max-age=100")], "x")));
    let gw = gateway(&origin, 1, "", "");
    // only-if-cached with nothing stored: 504, origin not asked.
    let r = get(&gw, "/d", "Cache-Control: only-if-cached\r\n");
    assert_eq!(r.status, 504);
    assert_eq!(seen(&origin, "/d"), 0);
    get(&gw, "/d", "");
    let r = get(&gw, "/d", "Cache-Control: only-if-cached\r\n");
    assert_eq!(r.status, 200);
    // min-fresh beyond what is left: refetched (no validators: a full GET).
    let r = get(&gw, "/d", "Cache-Control: min-fresh=1000\r\n");
    assert!(cache_status(&r).contains("fwd=stale"), "{r:?}");
    assert_eq!(seen(&origin, "/d"), 2);
    // max-age=10 accepts what was just fetched (age 0 s).
    let r = get(&gw, "/d", "Cache-Control: max-age=10\r\n");
    assert!(cache_status(&r).contains("hit"), "{r:?}");
    assert_eq!(seen(&origin, "/d"), 2);
}

#[test]
fn response_directives_are_honoured() {
    on_both_drivers(response_directives_are_honoured_body);
}

fn response_directives_are_honoured_body() {
    let origin = TestUpstream::start(|s| {
        let cc = match s.target.as_str() {
            "/no-cache" => "no-cache, max-age=600",
            "/must" => "max-age=0, must-revalidate",
            _ => "max-age=0, s-maxage=600",
        };
        if s.has("if-none-match") {
            let r = format!("HTTP/1.1 304 X\r\nCache-Control: {cc}\r\nETag: \"t\"\r\n\r\n");
            return Reply::Raw(r.into_bytes());
        }
        Reply::Raw(reply(
            200,
            &[("Cache-Control", cc), ("ETag", "\"t\"")],
            "body",
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    // no-cache: stored, but every use is revalidated.
    for _ in 0..3 {
        get(&gw, "/no-cache", "");
    }
    assert_eq!(seen(&origin, "/no-cache"), 3);
    assert_eq!(gw.totals().cache_revalidated, 2);
    // must-revalidate: a client's max-stale does not get it served stale.
    get(&gw, "/must", "");
    let r = get(&gw, "/must", "Cache-Control: max-stale=600\r\n");
    assert!(cache_status(&r).contains("fwd-status=304"), "{r:?}");
    // s-maxage wins over max-age for a shared cache.
    get(&gw, "/shared", "");
    let r = get(&gw, "/shared", "");
    assert!(cache_status(&r).contains("hit"), "{r:?}");
    assert_eq!(seen(&origin, "/shared"), 1);
}

#[test]
fn max_stale_accepts_a_stale_response() {
    on_both_drivers(max_stale_accepts_a_stale_response_body);
}

fn max_stale_accepts_a_stale_response_body() {
    let origin =
        TestUpstream::start(|_| Reply::Raw(reply(200, &[("Cache-Control", "max-age=0")], "old")));
    let gw = gateway(&origin, 1, "", "");
    get(&gw, "/s", "");
    let r = get(&gw, "/s", "Cache-Control: max-stale=3600\r\n");
    assert!(cache_status(&r).contains("hit; ttl="), "{r:?}");
    assert_eq!(seen(&origin, "/s"), 1);
}

#[test]
fn conditional_clients_get_304_from_the_cache() {
    on_both_drivers(conditional_clients_get_304_from_the_cache_body);
}

fn conditional_clients_get_304_from_the_cache_body() {
    let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
    let origin = TestUpstream::start(move |_| {
        Reply::Raw(reply(
            200,
            &[
                ("Cache-Control", "max-age=60"),
                ("ETag", "W/\"e1\""),
                ("Last-Modified", lm),
                ("X-Other", "1"),
            ],
            "content",
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    // A miss with matching validators: 304 to the client, the body stored
    // anyway (the origin was asked unconditionally).
    let r = get(&gw, "/c", "If-None-Match: \"e1\"\r\n");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert!(!origin.last().has("if-none-match"));
    let r = get(&gw, "/c", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "content");
    assert!(cache_status(&r).contains("hit"));
    // Hits: If-None-Match (weak comparison), If-Modified-Since.
    let r = get(&gw, "/c", "If-None-Match: \"zz\", W/\"e1\"\r\n");
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some("W/\"e1\""));
    assert!(r.header("x-other").is_none());
    let r = get(&gw, "/c", "If-None-Match: \"zz\"\r\n");
    assert_eq!(r.status, 200);
    let r = get(&gw, "/c", &format!("If-Modified-Since: {lm}\r\n"));
    assert_eq!(r.status, 304);
    let r = get(
        &gw,
        "/c",
        "If-Modified-Since: Sat, 05 Nov 1994 08:49:37 GMT\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(seen(&origin, "/c"), 1);
}

#[test]
fn vary_keeps_one_response_per_selection() {
    on_both_drivers(vary_keeps_one_response_per_selection_body);
}

fn vary_keeps_one_response_per_selection_body() {
    let origin = TestUpstream::start(|s| {
        let lang = s.header("accept-language").unwrap_or("none").to_string();
        Reply::Raw(reply(
            200,
            &[("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
            &format!("lang={lang}"),
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    for _ in 0..2 {
        assert_eq!(get(&gw, "/v", "Accept-Language: en\r\n").text(), "lang=en");
        assert_eq!(get(&gw, "/v", "Accept-Language: de\r\n").text(), "lang=de");
        assert_eq!(get(&gw, "/v", "").text(), "lang=none");
    }
    assert_eq!(seen(&origin, "/v"), 3, "three selections, one fetch each");
    let r = get(&gw, "/v", "Accept-Language:  en \r\n");
    assert!(cache_status(&r).contains("hit"), "whitespace is normalised");
}

#[test]
fn unsafe_methods_invalidate_on_every_worker() {
    on_both_drivers(unsafe_methods_invalidate_on_every_worker_body);
}

fn unsafe_methods_invalidate_on_every_worker_body() {
    let origin = TestUpstream::start(|s| {
        if s.method == "POST" {
            return Reply::Raw(reply(204, &[], ""));
        }
        Reply::Raw(reply(200, &[("Cache-Control", "max-age=600")], "cached"))
    });
    let gw = gateway(&origin, 2, "", "");
    // New connections spread over both workers; the cache is one.
    for _ in 0..16 {
        get(&gw, "/item", "");
    }
    let fetched = seen(&origin, "/item");
    assert_eq!(fetched, 1, "one fetch for both workers");
    let mut c = gw.client();
    c.send(b"POST /item HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nhi");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 204);
    assert!(cache_status(&r).contains("fwd=bypass"));
    // Once, for every worker (the cache is one).
    gw.wait_for("invalidated", |t| t.cache_invalidations >= 1);
    for _ in 0..16 {
        get(&gw, "/item", "");
    }
    let refetched = seen(&origin, "/item") - fetched;
    assert_eq!(refetched, 1, "fetched again after the POST, once");
    assert_eq!(gw.totals().cache_invalidations, 1);
    // A failed unsafe request invalidates nothing.
}

#[test]
fn concurrent_misses_collapse_into_one_fetch() {
    on_both_drivers(concurrent_misses_collapse_into_one_fetch_body);
}

fn concurrent_misses_collapse_into_one_fetch_body() {
    // The origin holds its answer until the other seven requests wait.
    let (origin, gateway_handle) = TestUpstream::holding_until_collapsed(
        7,
        reply(200, &[("Cache-Control", "max-age=60")], "slow body"),
    );
    let gw = gateway(&origin, 1, "", "");
    *gateway_handle.lock().expect("lock") = Some(gw.handle());
    let addr = gw.addr;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                let mut c = TestClient::connect(addr);
                call(&mut c, "GET", "/slow", "")
            })
        })
        .collect();
    let answers: Vec<Response> = clients
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    assert!(answers.iter().all(|r| r.text() == "slow body"));
    assert_eq!(seen(&origin, "/slow"), 1, "one fetch for eight clients");
    let collapsed = answers
        .iter()
        .filter(|r| cache_status(r).contains("collapsed"))
        .count();
    assert_eq!(collapsed, 7);
    assert_eq!(gw.totals().cache_collapsed, 7);
}

#[test]
fn keys_that_are_not_stored_skip_collapsing() {
    on_both_drivers(keys_that_are_not_stored_skip_collapsing_body);
}

fn keys_that_are_not_stored_skip_collapsing_body() {
    let origin = TestUpstream::start(|_| {
        Reply::Delay(
            Duration::from_millis(200),
            reply(200, &[("Cache-Control", "no-store")], "private stuff"),
        )
    });
    let gw = gateway(&origin, 1, "", "");
    get(&gw, "/ns", "");
    let addr = gw.addr;
    let clients: Vec<_> = (0..6)
        .map(|_| {
            thread::spawn(move || {
                let mut c = TestClient::connect(addr);
                call(&mut c, "GET", "/ns", "")
            })
        })
        .collect();
    for t in clients {
        assert_eq!(t.join().expect("client").text(), "private stuff");
    }
    assert_eq!(seen(&origin, "/ns"), 7);
    assert_eq!(gw.totals().cache_collapsed, 0, "nobody waited for a fetch");
}

#[test]
fn stale_while_revalidate_answers_at_once_and_refreshes_once() {
    on_both_drivers(stale_while_revalidate_answers_at_once_and_refreshes_once_body);
}

fn stale_while_revalidate_answers_at_once_and_refreshes_once_body() {
    // The background fetch is held until the test has seen the stale
    // answers, so it cannot finish early on a slow machine.
    let n = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let (m, r) = (n.clone(), release.clone());
    let origin = TestUpstream::start(move |_| {
        let k = m.fetch_add(1, Ordering::SeqCst) + 1;
        let until = Instant::now() + Duration::from_secs(10);
        while k > 1 && !r.load(Ordering::SeqCst) && Instant::now() < until {
            thread::sleep(Duration::from_millis(2));
        }
        Reply::Raw(reply(
            200,
            &[("Cache-Control", "max-age=0, stale-while-revalidate=60")],
            &format!("v{k}"),
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    assert_eq!(get(&gw, "/swr", "").text(), "v1");
    // Stale: answered with v1 at once, several times, one revalidation.
    for _ in 0..5 {
        let r = get(&gw, "/swr", "");
        assert_eq!(r.text(), "v1");
        assert!(cache_status(&r).contains("stale-while-revalidate"), "{r:?}");
    }
    release.store(true, Ordering::SeqCst);
    gw.wait_for("background fetch stored", |t| t.cache_stored >= 2);
    assert_eq!(seen(&origin, "/swr"), 2, "one background revalidation");
    assert_eq!(get(&gw, "/swr", "").text(), "v2");
}

#[test]
fn stale_if_error_hides_an_origin_failure() {
    on_both_drivers(stale_if_error_hides_an_origin_failure_body);
}

fn stale_if_error_hides_an_origin_failure_body() {
    let failing = Arc::new(AtomicBool::new(false));
    let closing = Arc::new(AtomicBool::new(false));
    let (f, x) = (failing.clone(), closing.clone());
    let origin = TestUpstream::start(move |_| {
        if x.load(Ordering::SeqCst) {
            return Reply::Close;
        }
        if f.load(Ordering::SeqCst) {
            return Reply::Raw(reply(503, &[], "down"));
        }
        Reply::Raw(reply(
            200,
            &[
                ("Cache-Control", "max-age=0, stale-if-error=600"),
                ("ETag", "\"ok\""),
            ],
            "good",
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    assert_eq!(get(&gw, "/e", "").text(), "good");
    failing.store(true, Ordering::SeqCst);
    let r = get(&gw, "/e", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "good");
    assert!(
        cache_status(&r).contains("fwd-status=503") && cache_status(&r).contains("stale-if-error"),
        "{r:?}"
    );
    // An origin that drops the connection: 502 hidden the same way.
    closing.store(true, Ordering::SeqCst);
    let r = get(&gw, "/e", "");
    assert_eq!(r.text(), "good");
    assert!(cache_status(&r).contains("fwd-status=502"), "{r:?}");
    // Without stale-if-error the failure goes through.
    let plain = TestUpstream::start(|_| Reply::Raw(reply(503, &[], "down")));
    let gw2 = gateway(&plain, 1, "", "");
    assert_eq!(get(&gw2, "/e", "").status, 503);
}

#[test]
fn large_and_broken_bodies_stream_through_unstored() {
    on_both_drivers(large_and_broken_bodies_stream_through_unstored_body);
}

fn large_and_broken_bodies_stream_through_unstored_body() {
    let big = "b".repeat(5000);
    let b = big.clone();
    let origin = TestUpstream::start(move |s| {
        match s.target.as_str() {
        "/big" => Reply::Raw(reply(200, &[("Cache-Control", "max-age=60")], &b)),
        "/chunked" => Reply::Raw(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                .to_vec(),
        ),
        "/chunked-big" => {
            let mut r = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..4 {
                r.extend_from_slice(format!("3e8\r\n{}\r\n", "c".repeat(1000)).as_bytes());
            }
            r.extend_from_slice(b"0\r\n\r\n");
            Reply::Raw(r)
        }
        _ => Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 1000\r\n\r\nonly part"
                .to_vec(),
        ),
    }
    });
    let gw = gateway(&origin, 1, "max-entry-size = \"2KiB\"", "");
    for _ in 0..2 {
        let r = get(&gw, "/big", "");
        assert_eq!(r.body.len(), 5000);
        assert!(cache_status(&r).contains("detail=too-large"), "{r:?}");
    }
    assert_eq!(seen(&origin, "/big"), 2);
    // Chunked, small: stored, and the hit carries the decoded payload.
    assert_eq!(get(&gw, "/chunked", "").text(), "hello world");
    let hit = get(&gw, "/chunked", "");
    assert_eq!(hit.text(), "hello world");
    assert!(cache_status(&hit).contains("hit"));
    assert_eq!(seen(&origin, "/chunked"), 1);
    // Chunked past the limit: delivered whole, not stored.
    for _ in 0..2 {
        assert_eq!(get(&gw, "/chunked-big", "").body.len(), 4000);
    }
    assert_eq!(seen(&origin, "/chunked-big"), 2);
    // A body cut short: the client sees it fail, nothing is stored.
    for _ in 0..2 {
        let mut c = gw.client();
        c.send(b"GET /cut HTTP/1.1\r\nHost: test\r\n\r\n");
        let got = c.read_response(false);
        assert!(got.is_none_or(|r| r.body.len() < 1000));
    }
    assert_eq!(seen(&origin, "/cut"), 2);
}

#[test]
fn ranges_and_bodies_bypass_the_cache() {
    on_both_drivers(ranges_and_bodies_bypass_the_cache_body);
}

fn ranges_and_bodies_bypass_the_cache_body() {
    let origin = TestUpstream::start(|_| {
        Reply::Raw(reply(200, &[("Cache-Control", "max-age=60")], "whole"))
    });
    // With range-fetch-max = 0 a Range miss is the origin's to answer
    // (cache_rfc.rs covers ranges answered from the cache).
    let gw = gateway(&origin, 1, "range-fetch-max = 0", "");
    for _ in 0..2 {
        let r = get(&gw, "/p", "Range: bytes=0-1\r\n");
        assert!(
            cache_status(&r).contains("fwd=bypass; detail=range"),
            "{r:?}"
        );
    }
    assert_eq!(seen(&origin, "/p"), 2);
}

#[test]
fn key_options_sort_and_drop_query_parameters_and_add_headers() {
    on_both_drivers(key_options_sort_and_drop_query_parameters_and_add_headers_body);
}

fn key_options_sort_and_drop_query_parameters_and_add_headers_body() {
    let origin = TestUpstream::start(|s| {
        Reply::Raw(reply(
            200,
            &[("Cache-Control", "max-age=60")],
            &format!("{}|{}", s.target, s.header("x-tenant").unwrap_or("-")),
        ))
    });
    let gw = gateway(
        &origin,
        1,
        "sort-query = true\nignore-params = [\"utm_source\"]\nkey-headers = [\"x-tenant\"]",
        "",
    );
    get(&gw, "/k?b=2&a=1", "X-Tenant: t1\r\n");
    let r = get(&gw, "/k?a=1&utm_source=mail&b=2", "X-Tenant: t1\r\n");
    assert!(cache_status(&r).contains("hit"), "{r:?}");
    let r = get(&gw, "/k?a=1&b=2", "X-Tenant: t2\r\n");
    assert!(
        cache_status(&r).contains("fwd=miss"),
        "another tenant: {r:?}"
    );
    assert_eq!(r.text(), "/k?a=1&b=2|t2");
    // An unsafe request on the URL drops the responses of every tenant.
    let mut c = gw.client();
    c.send(b"DELETE /k?b=2&a=1 HTTP/1.1\r\nHost: test\r\nX-Tenant: t9\r\n\r\n");
    assert_eq!(c.read_response(false).expect("response").status, 200);
    for tenant in ["t1", "t2"] {
        let r = get(&gw, "/k?a=1&b=2", &format!("X-Tenant: {tenant}\r\n"));
        assert!(cache_status(&r).contains("fwd=miss"), "{tenant}: {r:?}");
    }
}

#[test]
fn admin_purges_and_reports() {
    on_both_drivers(admin_purges_and_reports_body);
}

fn admin_purges_and_reports_body() {
    let origin =
        TestUpstream::start(|_| Reply::Raw(reply(200, &[("Cache-Control", "max-age=600")], "p")));
    let gw = gateway(&origin, 2, "", "");
    let admin = gw.admin_addr();
    for path in ["/p/1", "/p/2", "/q/1"] {
        for _ in 0..6 {
            get(&gw, path, "");
        }
    }
    let (status, stats) = admin_call(admin, "GET", "/cache", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(stats["workers"].as_array().expect("present").len(), 2);
    assert_eq!(stats["entries"].as_u64(), Some(3), "{stats}");
    assert_eq!(stats["hits"].as_u64(), Some(15), "{stats}");
    assert!(stats["bytes"].as_u64().expect("present") > 0);

    let before = seen(&origin, "/p/1");
    let entries = stats["entries"].as_u64().expect("present");
    let (status, body) = admin_call(
        admin,
        "POST",
        "/cache/purge",
        &[],
        br#"{"url": "http://TEST/p/1"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purged"].as_u64(), Some(1), "{body}");
    // Only /p/1 went, for every worker.
    let (_, stats) = admin_call(admin, "GET", "/cache", &[], b"");
    assert_eq!(stats["entries"].as_u64(), Some(entries - 1), "{stats}");
    for _ in 0..4 {
        get(&gw, "/p/1", "");
    }
    assert_eq!(
        seen(&origin, "/p/1"),
        before + 1,
        "purged URL refetched once"
    );

    let (_, body) = admin_call(
        admin,
        "POST",
        "/cache/purge",
        &[],
        br#"{"prefix": "http://test/p/"}"#,
    );
    assert_eq!(body["purged"].as_u64(), Some(2), "{body}");
    // /q/1 is still stored: purging it by URL finds it.
    let (_, body) = admin_call(
        admin,
        "POST",
        "/cache/purge",
        &[],
        br#"{"url": "http://test/q/1"}"#,
    );
    assert_eq!(body["purged"].as_u64(), Some(1), "{body}");
    get(&gw, "/q/1", "");
    let (_, body) = admin_call(admin, "POST", "/cache/purge", &[], br#"{"all": true}"#);
    assert!(body["purged"].as_u64().expect("present") >= 1, "{body}");
    let (_, stats) = admin_call(admin, "GET", "/cache", &[], b"");
    assert_eq!(stats["entries"].as_u64(), Some(0), "{stats}");
    let (status, _) = admin_call(admin, "POST", "/cache/purge", &[], br#"{"url": 1}"#);
    assert_eq!(status, 400);
}

#[test]
fn entries_survive_a_reload_that_keeps_the_route_cache_settings() {
    on_both_drivers(entries_survive_a_reload_that_keeps_the_route_cache_settings_body);
}

fn entries_survive_a_reload_that_keeps_the_route_cache_settings_body() {
    let origin =
        TestUpstream::start(|_| Reply::Raw(reply(200, &[("Cache-Control", "max-age=600")], "r")));
    let base = format!(
        "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"cached\"\nupstream = \"up\"\n[routes.cache]\n",
        origin.addr
    );
    let gw = TestGateway::start(&base, driver());
    let listen = format!(
        "[[listeners]]\naddress = \"{}\"\n{}",
        gw.addr,
        support::process::ADMIN
    );
    get(&gw, "/x", "");
    // An unrelated change: a new route. Entries stay.
    let more = format!("{base}[[routes]]\nname = \"other\"\npath = \"/other\"\n[routes.respond]\nbody = \"o\"\n{listen}");
    gw.handle()
        .reload_source(&more, ringway::Format::Toml)
        .expect("reload");
    assert!(cache_status(&get(&gw, "/x", "")).contains("hit"));
    assert_eq!(seen(&origin, "/x"), 1);
    // The route's cache settings change: its old entries are gone.
    let changed = format!("{base}sort-query = true\n{listen}");
    gw.handle()
        .reload_source(&changed, ringway::Format::Toml)
        .expect("reload");
    assert!(cache_status(&get(&gw, "/x", "")).contains("fwd=miss"));
    assert_eq!(seen(&origin, "/x"), 2);
}

#[test]
fn the_byte_budget_holds() {
    on_both_drivers(the_byte_budget_holds_body);
}

fn the_byte_budget_holds_body() {
    let origin = TestUpstream::start(|s| {
        Reply::Raw(reply(
            200,
            &[
                ("Cache-Control", "max-age=600"),
                ("Content-Type", "text/plain"),
            ],
            &"z".repeat(900 + s.target.len()),
        ))
    });
    let gw = gateway(
        &origin,
        1,
        "size = \"64KiB\"\nmax-entry-size = \"4KiB\"",
        "",
    );
    let mut c = gw.client();
    for i in 0..400 {
        let r = call(&mut c, "GET", &format!("/f/{i}"), "");
        assert_eq!(r.status, 200);
    }
    // A response is stored once it has been relayed whole, which may be
    // just after the client read it.
    gw.wait_for("all 400 stored", |t| t.cache_stored == 400);
    let t = gw.totals();
    assert!(t.cache_bytes <= 64 * 1024, "{} bytes", t.cache_bytes);
    assert!(
        t.cache_bytes > 48 * 1024,
        "the budget is used: {}",
        t.cache_bytes
    );
    assert!(
        t.cache_entries > 20 && t.cache_entries < 70,
        "{}",
        t.cache_entries
    );
    // Each of the 400 responses was stored once, and is still there or
    // was evicted for the budget.
    assert_eq!(t.cache_entries + t.cache_evictions, 400, "{t:?}");
    let (status, doc) = admin_call(gw.admin_addr(), "GET", "/cache", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(doc["evictions"], t.cache_evictions, "{doc}");
    let admin = gw.admin_addr();
    let metrics = exchange(
        admin,
        format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes(),
        usize::MAX,
    );
    let metrics = String::from_utf8(metrics).expect("utf-8");
    assert!(
        metrics.contains(&format!(
            "\nringway_cache_evictions_total {}\n",
            t.cache_evictions
        )),
        "{metrics}"
    );
}

#[test]
fn a_304_for_another_representation_is_not_merged() {
    on_both_drivers(a_304_for_another_representation_is_not_merged_body);
}

fn a_304_for_another_representation_is_not_merged_body() {
    // Stored with ETag "a"; the origin's 304 names "b": not about the
    // stored response, so it is fetched whole.
    let origin = TestUpstream::start(|s| {
        if s.has("if-none-match") {
            return Reply::Raw(
                b"HTTP/1.1 304 X\r\nETag: \"b\"\r\nCache-Control: max-age=60\r\n\r\n".to_vec(),
            );
        }
        let etag = if s.header("x-n") == Some("1") {
            "\"a\""
        } else {
            "\"b\""
        };
        Reply::Raw(reply(
            200,
            &[("Cache-Control", "max-age=0"), ("ETag", etag)],
            &format!("body {}", s.header("x-n").unwrap_or("0")),
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    get(&gw, "/m", "X-N: 1\r\n");
    let r = get(&gw, "/m", "X-N: 2\r\n");
    assert_eq!(r.text(), "body 2", "{r:?}");
    assert_eq!(origin.request_count(), 3, "conditional, then whole");
    // With the same ETag, the 304 refreshes the stored response.
    let r = get(&gw, "/m", "X-N: 3\r\n");
    assert_eq!(r.text(), "body 2", "{r:?}");
    assert!(cache_status(&r).contains("fwd-status=304"), "{r:?}");
}

#[test]
fn a_refresh_with_vary_star_drops_the_stored_response() {
    on_both_drivers(a_refresh_with_vary_star_drops_the_stored_response_body);
}

fn a_refresh_with_vary_star_drops_the_stored_response_body() {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let origin = TestUpstream::start(move |_| {
        if m.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Raw(reply(
                200,
                &[("Cache-Control", "max-age=0, stale-while-revalidate=60")],
                "v1",
            ));
        }
        Reply::Raw(reply(
            200,
            &[("Cache-Control", "max-age=60"), ("Vary", "*")],
            "v2",
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    get(&gw, "/star", "");
    assert!(cache_status(&get(&gw, "/star", "")).contains("stale-while-revalidate"));
    gw.wait_for("the background refresh ran", |t| {
        t.cache_background == 1 && t.cache_entries == 0
    });
    let r = get(&gw, "/star", "");
    assert!(cache_status(&r).contains("detail=vary-star"), "{r:?}");
}

#[test]
fn a_client_cannot_evict_what_its_own_request_keeps_from_being_stored() {
    on_both_drivers(a_client_cannot_evict_what_its_own_request_keeps_from_being_stored_body);
}

fn a_client_cannot_evict_what_its_own_request_keeps_from_being_stored_body() {
    let origin = TestUpstream::start(|s| {
        let n = s.header("x-n").unwrap_or("0").to_string();
        Reply::Raw(reply(
            200,
            &[("Cache-Control", "max-age=600")],
            &format!("body {n}"),
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    get(&gw, "/keep", "X-N: 1\r\n");
    let r = get(
        &gw,
        "/keep",
        "X-N: 2\r\nCache-Control: no-cache, no-store\r\n",
    );
    assert_eq!(r.text(), "body 2");
    let r = get(&gw, "/keep", "X-N: 3\r\n");
    assert_eq!(r.text(), "body 1", "the stored response stays: {r:?}");
    assert!(cache_status(&r).contains("hit"));
}

#[test]
fn an_unsafe_request_on_another_route_invalidates_too() {
    on_both_drivers(an_unsafe_request_on_another_route_invalidates_too_body);
}

fn an_unsafe_request_on_another_route_invalidates_too_body() {
    let origin = TestUpstream::start(|s| {
        if s.method == "POST" {
            return Reply::Raw(reply(201, &[], ""));
        }
        Reply::Raw(reply(200, &[("Cache-Control", "max-age=600")], "list"))
    });
    let toml = format!(
        "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"reads\"\npath = \"/items\"\nmethods = [\"GET\", \"HEAD\"]\n\
         upstream = \"up\"\n[routes.cache]\n\
         [[routes]]\nname = \"writes\"\npath = \"/items\"\nupstream = \"up\"\n",
        origin.addr
    );
    let gw = TestGateway::start(&toml, driver());
    get(&gw, "/items", "");
    assert!(cache_status(&get(&gw, "/items", "")).contains("hit"));
    let mut c = gw.client();
    c.send(b"POST /items HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\n\r\nx");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 201);
    assert!(r.header("cache-status").is_none(), "not a caching route");
    assert!(cache_status(&get(&gw, "/items", "")).contains("fwd=miss"));
}

#[test]
fn conditional_requests_for_keys_not_stored_reach_the_origin() {
    on_both_drivers(conditional_requests_for_keys_not_stored_reach_the_origin_body);
}

fn conditional_requests_for_keys_not_stored_reach_the_origin_body() {
    let origin = TestUpstream::start(|s| {
        if s.header("if-none-match") == Some("\"p\"") {
            return Reply::Raw(
                b"HTTP/1.1 304 X\r\nETag: \"p\"\r\nSet-Cookie: s=1\r\n\r\n".to_vec(),
            );
        }
        Reply::Raw(reply(
            200,
            &[("Cache-Control", "private"), ("ETag", "\"p\"")],
            "mine",
        ))
    });
    let gw = gateway(&origin, 1, "", "");
    assert_eq!(get(&gw, "/mine", "").text(), "mine");
    let r = get(&gw, "/mine", "If-None-Match: \"p\"\r\n");
    assert_eq!(r.status, 304);
    assert_eq!(origin.last().header("if-none-match"), Some("\"p\""));
    assert_eq!(r.header("set-cookie"), Some("s=1"), "the origin's own 304");
}
