//! Open-loop runs against real sockets: the schedule is kept to the
//! request, and a stalling server shows up in the corrected latency but
//! not in the service time.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{flags, response, run_flags, Reply, TestServer};

/// The server answers at once, except that the first request it receives
/// in each wall-clock second after the first is held for a full second —
/// the first from a connection not stalled before, so that each stall hits
/// a connection that is on schedule (the one just released would otherwise
/// be hit again by its own catch-up burst). Holding the request blocks
/// that connection (one request in flight per connection), so the 50
/// requests it is scheduled to send during the stall all go out late.
///
/// `--rate 200 -c 4` for 4 s: 800 requests, 50/s per connection. Three
/// stalls (seconds 1, 2, 3) each delay about 50 requests by 0–1 s, so
/// roughly 150 of 800 (19%) have a corrected latency in the hundreds of
/// milliseconds and the corrected p99 (the 8th worst) is close to 1 s; we
/// require >= 300 ms, a third of that, so a slow machine cannot make it
/// flaky. Only the 3 stalled requests themselves have a service time
/// near 1 s — under 1% of 800 — so the service-time p99 is an ordinary
/// loopback response: we require < 100 ms, fifty times what it takes on an
/// idle machine, which leaves room for a loaded 2-core CI box.
#[test]
fn corrected_latency_shows_a_stall_that_service_time_hides() {
    let last_stall_second = AtomicU64::new(0);
    let stalled_conns = Mutex::new(Vec::new());
    let stalls = Arc::new(AtomicU64::new(0));
    let counted = stalls.clone();
    let server = TestServer::start(move |req| {
        let sec = req.at.as_secs();
        let mut conns = stalled_conns.lock().expect("not poisoned");
        // Seconds 1 to 3 of the server's clock, which starts a little
        // before the run's: a stall in its fourth second would end after
        // the run and only test the grace period.
        if (1..=3).contains(&sec)
            && !conns.contains(&req.conn)
            && last_stall_second.fetch_max(sec, Ordering::SeqCst) < sec
        {
            conns.push(req.conn);
            counted.fetch_add(1, Ordering::SeqCst);
            return Reply::Stall(Duration::from_secs(1), response(200, "late"));
        }
        Reply::Send(response(200, "ok"))
    });
    let mut f = flags(&server.url("/"));
    f.rate = Some("200".into());
    f.connections = Some(4);
    f.duration = Some("4s".into());
    let r = run_flags(&f);

    assert_eq!(r.sent, 800, "every scheduled request is sent");
    assert_eq!(r.responses, 800);
    assert_eq!(r.errors.total(), 0);
    assert_eq!(stalls.load(Ordering::SeqCst), 3, "the server stalled");
    let corrected = Duration::from_micros(r.latency.p99_us);
    let service = Duration::from_micros(r.service_time.expect("open loop").p99_us);
    assert!(
        corrected >= Duration::from_millis(300),
        "corrected p99 {corrected:?} should show the 1 s stalls"
    );
    assert!(
        service < Duration::from_millis(100),
        "service p99 {service:?} should not"
    );
    // The stalled requests themselves still show in the service maximum.
    let service_max = Duration::from_micros(r.service_time.expect("open loop").max_us);
    assert!(service_max >= Duration::from_millis(900), "{service_max:?}");
}

/// `--rate 1000 -d 3s` schedules exactly 3000 requests; all of them are
/// sent and answered (the tolerance of 1% covers nothing the schedule
/// allows, only a generator that could not keep up).
#[test]
fn fixed_rate_sends_the_expected_count() {
    let server = TestServer::start(|_| Reply::Send(response(200, "ok")));
    let mut f = flags(&server.url("/"));
    f.rate = Some("1000".into());
    f.duration = Some("3s".into());
    f.connections = Some(8);
    let r = run_flags(&f);
    assert!(
        (2970..=3030).contains(&r.responses),
        "{} responses for 3000 scheduled",
        r.responses
    );
    assert_eq!(
        r.responses,
        server.sent_total(),
        "every response counted once"
    );
    assert_eq!(r.unsent, 0);
    assert_eq!(r.schedule_held, Some(true), "{}", r.summary());
    assert!((r.requested_rate.expect("open loop") - 1000.0).abs() < 1e-6);
}

/// A ramp from 0 to 400/s over 2 s asks for N(2 s) = 400 requests.
#[test]
fn stages_follow_the_ramp() {
    let server = TestServer::start(|_| Reply::Send(response(200, "ok")));
    let mut f = flags(&server.url("/"));
    f.stages = Some("2s:0->400".into());
    f.duration = None;
    let r = run_flags(&f);
    assert_eq!(r.sent, 400);
    assert_eq!(r.responses, 400);
    // The second second carries three times the first (N(1) = 100).
    let first: u64 = r
        .intervals
        .iter()
        .filter(|i| i.t == 0)
        .map(|i| i.responses)
        .sum();
    assert!((90..=110).contains(&first), "first second: {first}");
}
