//! The cache's protocol details against a real origin: Age lists, 1xx
//! interim responses, close-delimited bodies, byte ranges, targeted
//! cache-control fields, stale answers on a dropped connection and the
//! three HTTP-date formats. Each test names the RFC section it checks.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use support::cached::{cache_status, call, gateway, gateway_at, get, reply, seen};
use support::{on_both_drivers, Reply, Response, TestUpstream};

/// An origin that writes `answer(n)` for its n-th request (from 0) and
/// then resets the connection (RST, not FIN); returns its address and
/// the count of requests it read.
fn resetting_origin(
    answer: impl Fn(usize) -> Vec<u8> + Send + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if !head.ends_with(b"\r\n\r\n") {
                continue;
            }
            let n = c.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(&answer(n));
            let _ = stream.flush();
            thread::sleep(Duration::from_millis(20));
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    });
    (addr, count)
}

fn age(r: &Response) -> u64 {
    r.header("age").and_then(|a| a.parse().ok()).expect("Age")
}

#[test]
fn age_with_several_values_uses_the_first_rfc9111_5_1() {
    on_both_drivers(age_body);
}

fn age_body() {
    let origin = TestUpstream::start(|s| {
        let age: &[(&str, &str)] = match s.target.as_str() {
            "/list" => &[("Age", "30, 500")],
            "/lines" => &[("Age", "40"), ("Age", "500")],
            _ => &[("Age", "abc, 5")],
        };
        let mut h = vec![("Cache-Control", "max-age=100")];
        h.extend_from_slice(age);
        Reply::Raw(reply(200, &h, "aged"))
    });
    let gw = gateway(&origin, 1, "", "");
    for (path, first) in [("/list", 30), ("/lines", 40)] {
        get(&gw, path, "");
        let hit = get(&gw, path, "");
        assert!(cache_status(&hit).contains("hit"), "{path}: {hit:?}");
        assert!((first..first + 5).contains(&age(&hit)), "{path}: {hit:?}");
    }
    // An invalid first value: stale at once, so the origin is asked again.
    get(&gw, "/bad", "");
    let again = get(&gw, "/bad", "");
    assert!(!cache_status(&again).contains("hit"), "{again:?}");
    assert_eq!(seen(&origin, "/bad"), 2);
}

#[test]
fn interim_responses_are_relayed_and_never_stored_rfc9110_15_2() {
    on_both_drivers(interim_body);
}

fn interim_body() {
    let origin = TestUpstream::start(|_| {
        let mut r = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n".to_vec();
        r.extend(reply(200, &[("Cache-Control", "max-age=60")], "page"));
        Reply::Raw(r)
    });
    let gw = gateway(&origin, 1, "", "");
    let mut c = gw.client();
    c.send(b"GET /p HTTP/1.1\r\nHost: test\r\n\r\n");
    let hints = c.read_response(false).expect("103");
    assert_eq!(hints.status, 103);
    assert_eq!(hints.header("link"), Some("</style.css>; rel=preload"));
    let page = c.read_response(false).expect("200");
    assert_eq!((page.status, page.text().as_str()), (200, "page"));
    assert!(cache_status(&page).contains("stored"), "{page:?}");
    // The hit is the final response alone.
    let mut c = gw.client();
    c.send(b"GET /p HTTP/1.1\r\nHost: test\r\n\r\n");
    let hit = c.read_response(false).expect("hit");
    assert_eq!((hit.status, hit.text().as_str()), (200, "page"));
    assert!(cache_status(&hit).contains("hit"), "{hit:?}");
    assert_eq!(seen(&origin, "/p"), 1);
}

#[test]
fn close_delimited_bodies_are_stored_only_after_a_clean_close_rfc9112_6_3() {
    on_both_drivers(close_delimited_body);
}

fn close_delimited_body() {
    let origin = TestUpstream::start(|_| {
        Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nConnection: close\r\n\r\nuntil close"
                .to_vec(),
        )
    });
    let gw = gateway(&origin, 1, "", "");
    let first = get(&gw, "/clean", "");
    assert_eq!(first.text(), "until close");
    let hit = get(&gw, "/clean", "");
    assert_eq!(hit.text(), "until close");
    assert!(cache_status(&hit).contains("hit"), "{hit:?}");
    assert_eq!(seen(&origin, "/clean"), 1);
    // Cut by a reset: relayed as far as it came, never stored.
    let (addr, count) = resetting_origin(|_| {
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\ncut short".to_vec()
    });
    let gw = gateway_at(addr, 1, "", "");
    for _ in 0..2 {
        let mut c = gw.client();
        c.send(b"GET /reset HTTP/1.1\r\nHost: test\r\n\r\n");
        if let Some(r) = c.read_response(false) {
            assert!(!cache_status(&r).contains("hit"), "{r:?}");
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn a_final_transfer_coding_other_than_chunked_runs_to_the_close_rfc9112_6_3() {
    on_both_drivers(transfer_coded_body);
}

fn transfer_coded_body() {
    let origin = TestUpstream::start(|_| {
        Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: gzip\r\n\r\ncoded bytes"
                .to_vec(),
        )
    });
    let gw = gateway(&origin, 1, "", "");
    for _ in 0..2 {
        let raw = support::exchange(gw.addr, b"GET /te HTTP/1.1\r\nHost: test\r\n\r\n", 1 << 16);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        assert!(text.contains("\r\nTransfer-Encoding: gzip\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(!text.contains("Content-Length"), "{text}");
        assert!(text.contains("detail=transfer-coding"), "{text}");
        assert!(text.ends_with("\r\n\r\ncoded bytes"), "{text}");
    }
    // Not stored: a hit could not send it with a length.
    assert_eq!(seen(&origin, "/te"), 2);
    // An HTTP/1.0 client may not get a Transfer-Encoding (§6.1).
    let raw = support::exchange(gw.addr, b"GET /te HTTP/1.0\r\nHost: test\r\n\r\n", 1 << 16);
    assert!(
        raw.starts_with(b"HTTP/1.1 502 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

/// 100 bytes: `0123456789` ten times.
fn hundred() -> String {
    "0123456789".repeat(10)
}

const LAST_MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

fn range_origin() -> TestUpstream {
    TestUpstream::start(|s| {
        if let Some(r) = s.header("range") {
            // The origin's own answer, for requests the cache lets through.
            let body = &hundred()[..5];
            let mut out = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/100\r\nX-Range: {r}\r\n"
            );
            out.push_str(&format!("Content-Length: 5\r\n\r\n{body}"));
            return Reply::Raw(out.into_bytes());
        }
        Reply::Raw(reply(
            200,
            &[
                ("Cache-Control", "max-age=600"),
                ("Content-Type", "text/plain"),
                ("ETag", "\"v1\""),
                ("Last-Modified", LAST_MODIFIED),
            ],
            &hundred(),
        ))
    })
}

#[test]
fn ranges_are_answered_from_a_stored_response_rfc9110_14() {
    on_both_drivers(ranges_body);
}

fn ranges_body() {
    let origin = range_origin();
    let gw = gateway(&origin, 1, "", "");
    // A miss fetches the whole representation (no Range upstream), stores
    // it and answers the range (§14.2).
    let first = get(&gw, "/r", "Range: bytes=0-4\r\n");
    assert_eq!(first.status, 206, "{first:?}");
    assert_eq!(first.text(), "01234");
    assert_eq!(first.header("content-range"), Some("bytes 0-4/100"));
    assert!(cache_status(&first).contains("stored"), "{first:?}");
    assert!(!origin.last().has("range"), "{:?}", origin.last());
    // Single ranges from the stored response, with its validators.
    for (range, body, content_range) in [
        ("bytes=-3", "789", "bytes 97-99/100"),
        ("bytes=95-", "56789", "bytes 95-99/100"),
        ("bytes=10-12", "012", "bytes 10-12/100"),
        ("bytes=98-1000", "89", "bytes 98-99/100"),
    ] {
        let r = get(&gw, "/r", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 206, "{range}: {r:?}");
        assert_eq!(r.text(), body, "{range}");
        assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        assert_eq!(r.header("content-length"), Some(&*body.len().to_string()));
        assert_eq!(r.header("etag"), Some("\"v1\""));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert!(r.header("cache-control").is_some() && r.header("age").is_some());
        assert!(cache_status(&r).contains("hit"), "{r:?}");
    }
    // Several ranges: multipart/byteranges (§14.6).
    let r = get(&gw, "/r", "Range: bytes=0-1, 10-11\r\n");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").expect("content-type");
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("multipart: {ct}"));
    let want = format!(
        "\r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/100\r\n\r\n01\
         \r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-11/100\r\n\r\n01\
         \r\n--{boundary}--\r\n"
    );
    assert_eq!(r.text(), want);
    assert!(r.header("content-range").is_none());
    // Unsatisfiable: 416 with the length (§15.5.17).
    let r = get(&gw, "/r", "Range: bytes=100-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100"));
    assert!(r.body.is_empty());
    // Ignored ranges get the whole 200 (§14.2): bad syntax, another unit,
    // overlaps that ask for more than the whole.
    for range in ["bytes=5-1", "items=0-1", "bytes=0-99,0-99"] {
        let r = get(&gw, "/r", &format!("Range: {range}\r\n"));
        assert_eq!((r.status, r.text()), (200, hundred()), "{range}");
    }
    // HEAD has no range semantics: the plain head (§14.2).
    let r = call(&mut gw.client(), "HEAD", "/r", "Range: bytes=0-4\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(seen(&origin, "/r"), 1, "every range from one fetch");
    // Preconditions come before Range (§13.2.2): a matching If-None-Match
    // gets 304, on a hit and on a miss alike.
    let r = get(&gw, "/r", "Range: bytes=0-4\r\nIf-None-Match: \"v1\"\r\n");
    assert_eq!(r.status, 304);
    let r = get(&gw, "/m", "Range: bytes=0-4\r\nIf-None-Match: \"v1\"\r\n");
    assert_eq!(r.status, 304, "{r:?}");
    assert!(!origin.last().has("if-none-match"), "{:?}", origin.last());
}

#[test]
fn if_range_needs_a_strong_validator_rfc9110_13_1_5() {
    let origin = range_origin();
    let gw = gateway(&origin, 1, "", "");
    get(&gw, "/r", "");
    let cases = [
        ("If-Range: \"v1\"\r\n", 206),
        ("If-Range: \"v0\"\r\n", 200),
        ("If-Range: W/\"v1\"\r\n", 200),
        (&*format!("If-Range: {LAST_MODIFIED}\r\n"), 206),
        ("If-Range: Sun, 06 Nov 1994 08:49:38 GMT\r\n", 200),
    ];
    for (if_range, status) in cases {
        let r = get(&gw, "/r", &format!("Range: bytes=0-4\r\n{if_range}"));
        assert_eq!(r.status, status, "{if_range}: {r:?}");
        let body = if status == 206 {
            "01234".into()
        } else {
            hundred()
        };
        assert_eq!(r.text(), body, "{if_range}");
    }
    assert_eq!(seen(&origin, "/r"), 1);
}

#[test]
fn a_range_miss_over_range_fetch_max_goes_to_the_origin_rfc9110_14_2() {
    let origin = range_origin();
    let gw = gateway(&origin, 1, "range-fetch-max = \"64B\"", "");
    let r = get(&gw, "/r", "Range: bytes=0-4\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("x-range"),
        Some("bytes=0-4"),
        "the origin's own 206"
    );
    assert!(
        cache_status(&r).contains("fwd=bypass; detail=range-too-large"),
        "{r:?}"
    );
    // Turned off: straight to the origin, one request.
    let origin = range_origin();
    let gw = gateway(&origin, 1, "range-fetch-max = 0", "");
    let r = get(&gw, "/r", "Range: bytes=0-4\r\n");
    assert_eq!(r.header("x-range"), Some("bytes=0-4"));
    assert!(cache_status(&r).contains("detail=range"), "{r:?}");
    assert_eq!(seen(&origin, "/r"), 1);
    // ...but a stored response still answers ranges.
    get(&gw, "/r", "");
    let r = get(&gw, "/r", "Range: bytes=1-2\r\n");
    assert_eq!((r.status, r.text().as_str()), (206, "12"));
    assert_eq!(seen(&origin, "/r"), 2);
}

#[test]
fn targeted_fields_override_cache_control_rfc9213_2_2() {
    on_both_drivers(targeted_body);
}

fn targeted_body() {
    let origin = TestUpstream::start(|s| {
        let h: &[(&str, &str)] = match s.target.as_str() {
            // CDN-Cache-Control lets this cache keep what browsers may not.
            "/cdn" => &[
                ("Cache-Control", "no-store"),
                ("CDN-Cache-Control", "max-age=60"),
            ],
            // The ringway-targeted field outranks CDN-Cache-Control.
            "/ours" => &[
                ("Cache-Control", "max-age=60"),
                ("CDN-Cache-Control", "max-age=60"),
                ("Ringway-Cache-Control", "no-store"),
            ],
            // An invalid targeted field is ignored as if absent (§2.1).
            "/invalid" => &[
                ("Cache-Control", "no-store"),
                ("CDN-Cache-Control", "Max-Age=60"),
            ],
            _ => &[],
        };
        Reply::Raw(reply(200, h, "t"))
    });
    let gw = gateway(&origin, 1, "", "");
    let first = get(&gw, "/cdn", "");
    assert!(cache_status(&first).contains("stored"), "{first:?}");
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert!(first.header("cdn-cache-control").is_none(), "{first:?}");
    let hit = get(&gw, "/cdn", "");
    assert!(cache_status(&hit).contains("hit"), "{hit:?}");
    assert!(hit.header("cdn-cache-control").is_none(), "{hit:?}");
    assert_eq!(hit.header("cache-control"), Some("no-store"));
    let ours = get(&gw, "/ours", "");
    assert!(cache_status(&ours).contains("detail=no-store"), "{ours:?}");
    assert!(ours.header("ringway-cache-control").is_none(), "{ours:?}");
    let invalid = get(&gw, "/invalid", "");
    assert!(
        cache_status(&invalid).contains("detail=no-store"),
        "{invalid:?}"
    );
    assert_eq!(seen(&origin, "/cdn"), 1);
    // Answers the cache lets through leave them out too.
    let mut c = gw.client();
    c.send(b"POST /cdn HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    let post = c.read_response(false).expect("response");
    assert!(cache_status(&post).contains("bypass"), "{post:?}");
    assert!(post.header("cdn-cache-control").is_none(), "{post:?}");
}

#[test]
fn targeted_field_name_and_forwarding_are_configurable_rfc9213_2_1() {
    let origin = TestUpstream::start(|_| {
        Reply::Raw(reply(
            200,
            &[
                ("Cache-Control", "no-store"),
                ("CDN-Cache-Control", "no-store"),
                ("Edge-CC", "max-age=60"),
            ],
            "e",
        ))
    });
    let gw = gateway(
        &origin,
        1,
        "",
        "[cache]\ntargeted-field = \"Edge-CC\"\nforward-targeted = true",
    );
    let first = get(&gw, "/e", "");
    assert!(cache_status(&first).contains("stored"), "{first:?}");
    let hit = get(&gw, "/e", "");
    assert!(cache_status(&hit).contains("hit"), "{hit:?}");
    assert_eq!(hit.header("edge-cc"), Some("max-age=60"));
    assert_eq!(hit.header("cdn-cache-control"), Some("no-store"));
    assert_eq!(seen(&origin, "/e"), 1);
}

#[test]
fn stale_is_served_when_the_origin_drops_the_connection_rfc5861_4() {
    on_both_drivers(stale_on_close_body);
}

fn stale_on_close_body() {
    // (Cache-Control, route setting, status seen) when the origin closes
    // the connection before answering.
    // One origin and gateway each: a failing server is soon marked down.
    let cases: [(&str, &str, u16); 3] = [
        ("max-age=0", "serve-stale-on-error = true", 200),
        // must-revalidate forbids it whatever the route says (RFC 9111
        // §4.2.4).
        (
            "max-age=0, must-revalidate",
            "serve-stale-on-error = true",
            502,
        ),
        // Without serve-stale-on-error (or stale-if-error) the failure shows.
        ("max-age=0", "", 502),
    ];
    for (cc, route, want) in cases {
        let down = Arc::new(AtomicBool::new(false));
        let d = down.clone();
        let origin = TestUpstream::start(move |_| {
            if !d.load(Ordering::SeqCst) {
                Reply::Raw(reply(
                    200,
                    &[("Cache-Control", cc), ("ETag", "\"s\"")],
                    "old",
                ))
            } else {
                Reply::Close
            }
        });
        let gw = gateway(&origin, 1, route, "");
        assert_eq!(get(&gw, "/s", "").text(), "old");
        down.store(true, Ordering::SeqCst);
        let r = get(&gw, "/s", "");
        let case = format!("{cc:?}, {route:?}: {r:?}");
        assert_eq!(r.status, want, "{case}");
        if want == 200 {
            assert_eq!(r.text(), "old", "{case}");
            assert!(
                cache_status(&r).contains("fwd=stale; fwd-status=502"),
                "{case}"
            );
        }
    }
    // Reset before any response byte.
    let (addr, _) = resetting_origin(|n| match n {
        0 => reply(
            200,
            &[("Cache-Control", "max-age=0"), ("ETag", "\"s\"")],
            "old",
        ),
        _ => Vec::new(),
    });
    let gw = gateway_at(addr, 1, "serve-stale-on-error = true", "");
    assert_eq!(get(&gw, "/s", "").text(), "old");
    let r = get(&gw, "/s", "");
    assert_eq!((r.status, r.text().as_str()), (200, "old"), "{r:?}");
    assert!(cache_status(&r).contains("fwd=stale"), "{r:?}");
}

/// `secs` after the epoch in the three formats of RFC 9110 §5.6.7, with
/// odd case and a weekday that does not match the date.
fn dates(at: SystemTime) -> [String; 3] {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let imf = httpdate::fmt_http_date(at);
    let (day, mon, year, time) = (&imf[5..7], &imf[8..11], &imf[12..16], &imf[17..25]);
    let asctime_day = day.trim_start_matches('0');
    [
        format!(
            "wEdNeSdAy, {day}-{}-{} {time} GMT",
            mon.to_uppercase(),
            &year[2..]
        ),
        format!("Wed {} {asctime_day:>2} {time} {year}", mon.to_lowercase()),
        format!("mon, {day} {mon} {year} {time} GMT"),
    ]
}

#[test]
fn expires_in_every_http_date_format_rfc9110_5_6_7() {
    let later = SystemTime::now() + Duration::from_secs(3600);
    let formats = dates(later);
    let f = formats.clone();
    let origin = TestUpstream::start(move |s| {
        let expires = match s.target.as_str() {
            "/rfc850" => f[0].clone(),
            "/asctime" => f[1].clone(),
            "/imf" => f[2].clone(),
            // An invalid Expires means already expired (RFC 9111 §5.3).
            _ => "0".into(),
        };
        Reply::Raw(reply(200, &[("Expires", &expires)], "x"))
    });
    let gw = gateway(&origin, 1, "", "");
    for path in ["/rfc850", "/asctime", "/imf"] {
        get(&gw, path, "");
        let hit = get(&gw, path, "");
        assert!(
            cache_status(&hit).contains("hit"),
            "{path} {formats:?}: {hit:?}"
        );
        assert_eq!(seen(&origin, path), 1, "{path}");
    }
    get(&gw, "/invalid", "");
    let again = get(&gw, "/invalid", "");
    assert!(!cache_status(&again).contains("hit"), "{again:?}");
    assert_eq!(seen(&origin, "/invalid"), 2);
}
