//! The time to the first body byte over real sockets: it counts from the
//! request to the first byte of the body — not of the head — for every
//! response with a body and for no other, and never exceeds the latency
//! of the same response.
//!
//! No assertion here depends on how fast the machine is. The server holds
//! each response for fixed pauses after reading the request, and
//! `std::thread::sleep` never sleeps less than asked, so a client that
//! sent before the server read and received after it wrote cannot measure
//! less than the pauses: those are lower bounds by causality. Upper bounds
//! would be timing thresholds; the one ordering that needs the pauses to
//! dominate scheduling noise is stated where it is made.

mod support;

use std::time::Duration;

use ringway_loadtest::report::{Percentiles, Report};
use support::{flags, response, run_flags, Reply, TestServer};

/// Before the first event of the stream.
const TO_FIRST: Duration = Duration::from_millis(20);
/// Between the first event and the rest of the stream.
const TO_REST: Duration = Duration::from_millis(50);

/// A server-sent event stream as an AI gateway writes it: the head at
/// once, the first event after `TO_FIRST`, the rest (and the last chunk)
/// after `TO_REST` more.
fn stream() -> Reply {
    Reply::Parts(vec![
        (
            Duration::ZERO,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
              Transfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
        ),
        (TO_FIRST, b"9\r\ndata: 1\n\n\r\n".to_vec()),
        (TO_REST, b"9\r\ndata: 2\n\n\r\n0\r\n\r\n".to_vec()),
    ])
}

/// `p`'s percentiles, p50 to max.
fn row(p: &Percentiles) -> [u64; 6] {
    [p.p50_us, p.p75_us, p.p90_us, p.p99_us, p.p999_us, p.max_us]
}

/// A histogram's value may read up to 0.1% low (3 significant digits)
/// and is rounded to the microsecond: the bound to compare a minimum with.
fn floor_us(d: Duration) -> u64 {
    (d.as_micros() as u64) * 998 / 1000
}

fn assert_stream(r: &Report) {
    let s = r.summary();
    assert!(r.responses > 0, "{s}");
    assert_eq!(r.errors.total(), 0, "{s}");
    let (fb, lat) = (&r.first_byte, &r.latency);
    assert_eq!(fb.count, r.responses, "every stream has a body\n{s}");
    for (f, l) in row(fb).into_iter().zip(row(lat)) {
        assert!(f <= l, "first byte {f} µs after the end {l} µs\n{s}");
    }
    // The head arrives at once; the first body byte only after TO_FIRST,
    // the end only after TO_FIRST + TO_REST.
    assert!(fb.min_us >= floor_us(TO_FIRST), "{s}");
    assert!(lat.min_us >= floor_us(TO_FIRST + TO_REST), "{s}");
    // The first event is read on its own unless the generator was kept
    // off the CPU for the whole 50 ms before the rest arrived, on most of
    // the responses: only then could the medians meet.
    assert!(fb.p50_us < lat.p50_us, "{s}");
}

/// Closed loop: from the send to the first event, not to the head or to
/// the end of the stream.
#[test]
fn first_byte_is_the_first_event_of_a_stream() {
    let server = TestServer::start(|_| stream());
    let r = run_flags(&flags(&server.url("/")));
    assert_eq!(r.responses, server.sent_total());
    assert_stream(&r);
}

/// Open loop: from the intended send time, as the corrected latency.
#[test]
fn open_loop_first_byte_counts_from_the_intended_send() {
    let server = TestServer::start(|_| stream());
    let mut f = flags(&server.url("/"));
    // 10/s on each of 4 connections, each busy ~70 ms per response.
    f.rate = Some("40".into());
    let r = run_flags(&f);
    assert!(r.service_time.is_some());
    assert_stream(&r);
}

/// A response written whole after a stall has its first body byte in the
/// read that ends it: both are recorded, at the same instant.
#[test]
fn head_and_body_in_one_write_share_the_instant() {
    let stall = Duration::from_millis(20);
    let server = TestServer::start(move |_| Reply::Stall(stall, response(200, "whole")));
    let r = run_flags(&flags(&server.url("/")));
    let s = r.summary();
    assert!(r.responses > 0, "{s}");
    assert_eq!(r.errors.total(), 0, "{s}");
    assert_eq!(r.first_byte.count, r.responses, "{s}");
    assert!(r.first_byte.min_us >= floor_us(stall), "{s}");
    // One small write on loopback arrives in one read, so both
    // figures come from the same instants.
    assert_eq!(row(&r.first_byte), row(&r.latency), "{s}");
}

/// Responses without a body (204, Content-Length: 0, an empty chunked
/// body) are not recorded; the others are.
#[test]
fn responses_without_a_body_have_no_first_byte() {
    let server = TestServer::start(|req| match req.index % 4 {
        0 => Reply::Send(response(204, "")),
        1 => Reply::Send(response(202, "")),
        2 => Reply::Send(b"HTTP/1.1 203 X\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec()),
        _ => Reply::Send(response(200, "body")),
    });
    let r = run_flags(&flags(&server.url("/")));
    let s = r.summary();
    assert_eq!(r.errors.total(), 0, "{s}");
    assert_eq!(r.responses, server.sent_total(), "{s}");
    assert!(server.sent_with(200) > 0, "{s}");
    assert_eq!(r.first_byte.count, server.sent_with(200), "{s}");
    assert!(s.contains("responses had a body)"), "{s}");
}
