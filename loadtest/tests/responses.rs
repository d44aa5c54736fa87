//! What the generator makes of real responses over real sockets: status
//! counts that match the server's own, every framing of RFC 9112 read to
//! its end without an error, and each kind of failure counted as its kind.

mod support;

use std::time::Duration;

use support::{flags, response, run_flags, Reply, TestServer};

/// Every status the server wrote is counted once, and those outside the
/// expected set (2xx, 3xx) are the "unexpected status" errors.
#[test]
fn status_counts_match_the_server() {
    const MIX: [u16; 10] = [200, 200, 200, 201, 204, 301, 404, 404, 503, 200];
    let server = TestServer::start(|req| {
        let status = MIX[(req.index % 10) as usize];
        Reply::Send(response(status, if status == 204 { "" } else { "body" }))
    });
    let r = run_flags(&flags(&server.url("/")));
    assert!(r.responses > 100, "{}", r.summary());
    for status in [200, 201, 204, 301, 404, 503] {
        assert_eq!(
            r.statuses.get(&status).copied().unwrap_or(0),
            server.sent_with(status),
            "status {status}"
        );
    }
    assert_eq!(r.responses, server.sent_total());
    assert_eq!(
        r.errors.status,
        server.sent_with(404) + server.sent_with(503)
    );
    assert_eq!(r.errors.total(), r.errors.status, "no other errors");
}

/// Chunked bodies (with extensions and trailers, split across writes),
/// Content-Length bodies, interim 100 responses and close-delimited bodies
/// all end where they should: no error, and the connection is reused
/// except after a close-delimited body.
#[test]
fn every_framing_is_read_to_its_end() {
    let server = TestServer::start(|req| match req.index % 4 {
        0 => Reply::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n"
                .to_vec(),
        ),
        1 => Reply::Send(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
                .to_vec(),
        ),
        2 => Reply::Send(response(200, &"x".repeat(70_000))),
        _ => {
            Reply::SendAndClose(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close".to_vec())
        }
    });
    let r = run_flags(&flags(&server.url("/")));
    assert_eq!(r.errors.total(), 0, "{}", r.summary());
    assert_eq!(r.responses, server.sent_total());
    assert_eq!(r.statuses.get(&200).copied(), Some(r.responses));
    // One reconnect per close-delimited response (a quarter of them),
    // give or take the connections' first opens and the last responses.
    let closes = r.responses / 4;
    assert!(
        r.connects >= closes && r.connects <= closes + 4 + 1,
        "{} connects for {} close-delimited responses",
        r.connects,
        closes
    );
}

/// A response to HEAD has no body whatever its Content-Length says.
#[test]
fn head_responses_have_no_body() {
    let server = TestServer::start(|req| {
        assert_eq!(req.method, "HEAD");
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec())
    });
    let mut f = flags(&server.url("/"));
    f.method = Some("HEAD".into());
    let r = run_flags(&f);
    assert_eq!(r.errors.total(), 0, "{}", r.summary());
    assert_eq!(r.responses, server.sent_total());
    assert_eq!(r.connects, 4, "connections are reused");
}

/// Invalid HTTP is its own kind of error, counted once per response, and
/// the generator reconnects and carries on.
#[test]
fn malformed_responses_are_counted_as_malformed() {
    let server = TestServer::start(|req| match req.index % 3 {
        0 => Reply::SendAndClose(b"HTTP/1.1 2OO OK\r\n\r\n".to_vec()),
        1 => Reply::SendAndClose(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(),
        ),
        _ => Reply::Send(response(200, "ok")),
    });
    let r = run_flags(&flags(&server.url("/")));
    assert!(r.errors.malformed > 10, "{}", r.summary());
    // Two of every three requests the server saw got an invalid response.
    assert_eq!(r.errors.malformed + r.responses, server.sent_total());
    let bad = server.requests.load(std::sync::atomic::Ordering::SeqCst) * 2 / 3;
    assert!(
        r.errors.malformed.abs_diff(bad) <= 2,
        "{} vs {bad}",
        r.errors.malformed
    );
    assert_eq!(r.errors.total(), r.errors.malformed);
}

/// A server that closes mid-response is a reset; one that never answers
/// is a timeout after `--timeout`; neither stops the run.
#[test]
fn resets_and_timeouts_are_counted() {
    let server = TestServer::start(|req| match req.index % 5 {
        0 => Reply::SendAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".to_vec()),
        1 if req.index < 5 => Reply::Silent,
        _ => Reply::Send(response(200, "ok")),
    });
    let mut f = flags(&server.url("/"));
    f.timeout = Some("300ms".into());
    let r = run_flags(&f);
    assert!(r.errors.reset > 10, "{}", r.summary());
    assert_eq!(r.errors.timeout, 1, "{}", r.summary());
    assert_eq!(r.errors.total(), r.errors.reset + r.errors.timeout);
    assert!(r.responses > 10);
    assert!(r.duration < Duration::from_secs(3));
}

/// A scenario's weighted requests reach the server in their proportions
/// (round robin: exactly, but for each connection's unfinished cycle), with
/// their methods, paths, headers and bodies.
#[test]
fn weighted_scenario_requests_arrive_in_proportion() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = seen.clone();
    let server = TestServer::start(move |req| {
        log.lock()
            .expect("not poisoned")
            .push((req.method.clone(), req.path.clone()));
        Reply::Send(response(200, "ok"))
    });
    let dir = std::env::temp_dir().join(format!("ringway-load-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("w.toml");
    std::fs::write(
        &path,
        format!(
            "url = \"{}\"\nconnections = 2\nthreads = 1\nduration = \"500ms\"\n\
             [[requests]]\nweight = 3\npath = \"/read\"\n\
             [[requests]]\nmethod = \"POST\"\npath = \"/write\"\nbody = \"{{\\\"n\\\": 1}}\"\n",
            server.url("/")
        ),
    )
    .expect("write scenario");
    let mut f = support::flags(&server.url("/"));
    f.url = None;
    f.connections = None;
    f.duration = None;
    f.scenario = Some(path.clone());
    let r = run_flags(&f);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.errors.total(), 0, "{}", r.summary());
    let seen = seen.lock().expect("not poisoned");
    let reads = seen
        .iter()
        .filter(|(m, p)| m == "GET" && p == "/read")
        .count();
    let writes = seen
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/write")
        .count();
    assert_eq!(reads + writes, seen.len(), "only the scenario's requests");
    assert!(writes > 10, "{writes} writes");
    // Each of the 2 connections may stop inside its 4-request cycle.
    assert!(
        reads.abs_diff(3 * writes) <= 2 * 3,
        "{reads} reads, {writes} writes"
    );
}
