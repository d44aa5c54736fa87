//! Every rejection answers its status, is counted, and leaves the gateway
//! sound: malformed and smuggling-shaped requests (400), timeouts (408),
//! size limits (413, 414, 431), unsupported codings (501), unknown routes
//! (404, 405).

mod support;

use std::io::Write;

use support::*;

fn gateway(driver: &str, up: &TestUpstream) -> TestGateway {
    TestGateway::proxy_to(
        up.addr,
        "[limits]\nmax-target-length = \"1KiB\"\nmax-head-size = \"4KiB\"\nmax-headers = 20\n\
         max-body-size = \"1KiB\"\nheader-read-timeout = \"300ms\"\nkeepalive-timeout = \"300ms\"",
        driver,
    )
}

/// Sends `raw`, expects `status` and a closed connection.
fn expect_reject(gw: &TestGateway, raw: &[u8], status: u16) {
    let mut c = gw.client();
    c.send(raw);
    let r = c
        .read_response(false)
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(raw)));
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(raw));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(), "connection must close after {status}");
}

#[test]
fn malformed_and_smuggling_requests_get_400_and_close() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Space : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-CR: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo\x01st: t\r\n\r\n",
        b"GET /\x80 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\rHost: t\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    ];
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = gateway(driver, &up);
        for raw in cases {
            expect_reject(&gw, raw, 400);
        }
        gw.wait_for("400s counted", |t| t.rejected_400 == cases.len() as u64);
        // Nothing malformed reached the upstream except chunked bodies whose
        // framing broke after the head was forwarded.
        assert!(up.request_count() <= 2, "{}", up.request_count());
        // And the gateway still serves.
        assert_eq!(gw.client().get("/").status, 200);
    }
}

#[test]
fn size_limits_get_their_status() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = gateway(driver, &up);
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(1100));
        expect_reject(&gw, long_target.as_bytes(), 414);
        let big_head = format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "v".repeat(5000)
        );
        expect_reject(&gw, big_head.as_bytes(), 431);
        let mut many = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
        for i in 0..30 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        expect_reject(&gw, many.as_bytes(), 431);
        expect_reject(
            &gw,
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n",
            413,
        );
        let mut chunked =
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            chunked.extend_from_slice(b"200\r\n");
            chunked.extend_from_slice(&[b'z'; 0x200]);
            chunked.extend_from_slice(b"\r\n");
        }
        expect_reject(&gw, &chunked, 413);
        expect_reject(
            &gw,
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        );
        gw.wait_for("limits counted", |t| {
            t.rejected_414 == 1 && t.rejected_431 == 2 && t.rejected_413 == 2 && t.rejected_501 == 1
        });
    }
}

#[test]
fn per_route_body_limit_overrides_global() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| Reply::Raw(response(200, &req.body.len().to_string())));
        let toml = format!(
            "[limits]\nmax-body-size = \"10B\"\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
             [[routes]]\npath-prefix = \"/big/\"\nupstream = \"up\"\n[routes.limits]\nmax-body-size = \"1KiB\"\n\
             [[routes]]\nupstream = \"up\"\n",
            up.addr
        );
        let gw = TestGateway::start(&toml, driver);
        let body = "b".repeat(100);
        let req = |path: &str| {
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{body}")
        };
        let mut c = gw.client();
        c.send(req("/big/x").as_bytes());
        assert_eq!(c.read_response(false).expect("ok").text(), "100");
        expect_reject(&gw, req("/small").as_bytes(), 413);
    }
}

#[test]
fn slow_head_gets_408() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = gateway(driver, &up);
        let mut c = gw.client();
        // Slowloris: a head that never ends.
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
        let r = c.read_response(false).expect("408");
        assert_eq!(r.status, 408);
        assert!(c.is_closed());
        gw.wait_for("408 counted", |t| t.rejected_408 == 1);
    }
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = gateway(driver, &up);
        let mut c = gw.client();
        assert_eq!(c.get("/").status, 200);
        // keepalive-timeout is 300ms: the gateway closes without a response.
        assert!(c.is_closed());
        // A connection that never sends anything is closed too.
        let mut silent = gw.client();
        assert!(silent.is_closed());
    }
}

#[test]
fn unknown_route_is_404_and_wrong_method_405() {
    for driver in DRIVERS {
        let toml = "[[routes]]\npath = \"/only-get\"\nmethods = [\"GET\"]\n[routes.respond]\nbody = \"ok\"\n";
        let gw = TestGateway::start(toml, driver);
        let mut c = gw.client();
        assert_eq!(c.get("/missing").status, 404);
        c.send(b"DELETE /only-get HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(c.read_response(false).expect("405").status, 405);
        // Both keep the connection.
        assert_eq!(c.get("/only-get").text(), "ok");
        gw.wait_for("counted", |t| t.rejected_404 == 1 && t.rejected_405 == 1);
    }
}

#[test]
fn rejections_do_not_disturb_other_connections() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = gateway(driver, &up);
        let mut good = gw.client();
        assert_eq!(good.get("/").status, 200);
        let mut bad = gw.client();
        bad.stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            .expect("send");
        assert_eq!(bad.read_response(false).expect("400").status, 400);
        assert_eq!(good.get("/").status, 200);
    }
}

#[test]
fn head_error_answers_carry_no_body() {
    for driver in DRIVERS {
        let gw = TestGateway::start(
            "[[routes]]\npath = \"/r\"\n[routes.respond]\nbody = \"r\"\n",
            driver,
        );
        let mut c = gw.client();
        c.send(b"HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response(true).expect("404");
        assert_eq!(r.status, 404);
        // Nothing stray follows: the next response lines up.
        assert_eq!(c.get("/r").text(), "r");
    }
}

#[test]
fn an_over_limit_upload_still_gets_its_413() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = gateway(driver, &up);
        let mut c = gw.client();
        // The client sends its whole (refused) body before reading: the
        // gateway must not reset the connection under it.
        let body = vec![b'x'; 256 * 1024];
        c.send(
            format!(
                "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let _ = std::io::Write::write_all(&mut c.stream, &body);
        let r = c.read_response(false).expect("413 arrives");
        assert_eq!(r.status, 413);
    }
}

/// `max-connections` bounds the client connections of the whole gateway
/// (over all workers): past it a new connection is closed at once and
/// counted; once one closes, there is room again.
#[test]
fn client_connections_are_capped_over_all_workers() {
    for driver in DRIVERS {
        let gw = TestGateway::start(
            "workers = 2\n[limits]\nmax-connections = 3\n\
             [[routes]]\n[routes.respond]\nbody = \"ok\"\n",
            driver,
        );
        let mut held: Vec<TestClient> = (0..3).map(|_| gw.client()).collect();
        for c in &mut held {
            assert_eq!(c.get("/").status, 200);
        }
        let mut extra = gw.client();
        extra.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(
            extra.read_response(false).is_none(),
            "{driver}: a fourth connection is closed unanswered"
        );
        gw.wait_for("the refusal counted", |t| t.connections_refused == 1);
        drop(held.pop());
        gw.wait_for("one closed", |t| t.connections_open == 2);
        assert_eq!(gw.client().get("/").status, 200, "{driver}: room again");
    }
}

/// An upstream's `max-connections` bounds the connections in use to each
/// of its servers (over all workers): a request that would need one more
/// gets 503, counted.
#[test]
fn upstream_connections_are_capped_per_server() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::Delay(
                std::time::Duration::from_millis(500),
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            )
        });
        let gw = TestGateway::start(
            &format!(
                "workers = 2\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
                 max-connections = 1\n[[routes]]\nupstream = \"up\"\n",
                up.addr
            ),
            driver,
        );
        let mut first = gw.client();
        first.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
        wait_until("the first request reached the upstream", || {
            up.request_count() == 1
        });
        let mut second = gw.client();
        assert_eq!(second.get("/other").status, 503, "{driver}");
        assert_eq!(first.read_response(false).expect("first").status, 200);
        gw.wait_for("counted", |t| {
            t.upstream_connection_limit == 1 && t.upstream_503 == 1
        });
        // Idle pooled connections do not count (as nginx's max_conns): the
        // first request is done, so there is room again on any worker.
        assert_eq!(gw.client().get("/again").status, 200, "{driver}");
    }
}
