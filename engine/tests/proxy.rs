//! Proxying over real sockets: methods, bodies, keep-alive, pipelining,
//! header rewriting, and upstream failures — on io_uring and on driver.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::*;

#[test]
fn get_and_post_are_proxied() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            let body = format!(
                "{} {} {}",
                req.method,
                req.target,
                String::from_utf8_lossy(&req.body)
            );
            Reply::Raw(response(200, &body))
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        let r = c.get("/a/b?x=1");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "GET /a/b?x=1 ");
        c.send(b"POST /submit HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.text(), "POST /submit hello");
        assert_eq!(up.last().header("content-length"), Some("5"));
    }
}

#[test]
fn keep_alive_reuses_one_upstream_connection_for_1000_requests() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("pong");
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        for _ in 0..1000 {
            let r = c.get("/ping");
            assert_eq!(r.status, 200);
            assert_eq!(r.body, b"pong");
        }
        assert_eq!(up.request_count(), 1000);
        assert_eq!(up.connection_count(), 1, "driver={driver}");
        gw.wait_for("reuse counter", |t| t.upstream_reuses == 999);
    }
}

#[test]
fn chunked_request_and_response_stream_through() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            assert!(req.chunked, "upstream should get the body chunked");
            let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            out.extend_from_slice(format!("{:x};ext=1\r\n", req.body.len()).as_bytes());
            out.extend_from_slice(&req.body);
            out.extend_from_slice(b"\r\n3\r\nEND\r\n0\r\nX-Trailer: yes\r\n\r\n");
            Reply::Raw(out)
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"POST /up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\nX-Req-Trailer: 1\r\n\r\n");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.text(), "WikipediaEND");
        let seen = up.last();
        assert_eq!(seen.body, b"Wikipedia");
        assert_eq!(
            String::from_utf8_lossy(&seen.trailers),
            "X-Req-Trailer: 1\r\n"
        );
        // The connection is still usable.
        c.send(b"POST /up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
        assert_eq!(c.read_response(false).expect("second").text(), "okEND");
    }
}

#[test]
fn http10_client_gets_dechunked_body_and_close() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                    .to_vec(),
            )
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"GET / HTTP/1.0\r\n\r\n");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.text(), "hello");
        assert_eq!(up.last().version, 1, "upstream always gets HTTP/1.1");
    }
}

#[test]
fn http10_keep_alive_when_asked() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("x");
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        for _ in 0..3 {
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            let r = c.read_response(false).expect("response");
            assert_eq!(r.header("connection"), Some("keep-alive"));
        }
        c.send(b"GET / HTTP/1.0\r\n\r\n");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed());
    }
}

#[test]
fn close_delimited_upstream_is_rechunked_for_http11() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::RawClose(b"HTTP/1.1 200 OK\r\n\r\nuntil close".to_vec())
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        let r = c.get("/");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.text(), "until close");
        // Client connection survives.
        assert_eq!(c.get("/").text(), "until close");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            // Later requests answer sooner: order must still hold.
            let n: u64 = req.target.trim_start_matches('/').parse().unwrap_or(0);
            Reply::Delay(
                Duration::from_millis(10 * (5 - n.min(5))),
                response(200, &req.target),
            )
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        let mut batch = Vec::new();
        for i in 0..5 {
            batch.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        }
        batch.extend_from_slice(b"POST /5 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
        c.send(&batch);
        for i in 0..6 {
            let r = c.read_response(false).expect("response");
            assert_eq!(r.text(), format!("/{i}"));
        }
    }
}

#[test]
fn hop_by_hop_headers_are_dropped_and_forwarding_headers_added() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Up-Hop\r\nX-Up-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\nok"
                    .to_vec(),
            )
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(
            b"GET /h HTTP/1.1\r\nHost: Example.org\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
              Keep-Alive: 300\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\n\
              X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nVia: 1.0 edge\r\nX-Custom: c\r\n\
              X-Forwarded-For: 10.0.0.2\r\n\r\n",
        );
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-up-hop"), None);
        assert_eq!(r.header("keep-alive"), None);
        assert_eq!(r.header("x-kept"), Some("yes"));
        assert_eq!(r.header("via"), Some("1.1 ringway"));
        let seen = up.last();
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "te",
            "trailer",
            "upgrade",
            "proxy-connection",
        ] {
            assert!(
                !seen.has(gone),
                "{gone} must not be forwarded: {:?}",
                seen.headers
            );
        }
        assert_eq!(seen.header("host"), Some("Example.org"));
        let xff: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            xff,
            ["10.0.0.1", "10.0.0.2, 127.0.0.1"],
            "the peer ends the list"
        );
        assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
        assert_eq!(seen.header("x-forwarded-host"), Some("Example.org"));
        assert_eq!(seen.header("via"), Some("1.0 edge, 1.1 ringway"));
        assert_eq!(seen.header("x-custom"), Some("c"));
    }
}

#[test]
fn route_can_override_host() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let toml = format!(
            "[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n[[routes]]\nupstream = \"up\"\nhost-header = \"internal.svc\"\n",
            up.addr
        );
        let gw = TestGateway::start(&toml, driver);
        gw.client().get("/");
        assert_eq!(up.last().header("host"), Some("internal.svc"));
        assert_eq!(up.last().header("x-forwarded-host"), Some("test"));
    }
}

#[test]
fn absolute_form_target_becomes_origin_form() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"GET http://abs.example/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(c.read_response(false).expect("response").status, 200);
        let seen = up.last();
        assert_eq!(seen.target, "/p?q=1");
        assert_eq!(seen.header("host"), Some("abs.example"));
    }
}

#[test]
fn head_204_and_304_carry_no_body() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            Reply::Raw(match req.target.as_str() {
                "/204" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
                "/304" => b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n".to_vec(),
                _ => b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n".to_vec(),
            })
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response(true).expect("head");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("11"));
        assert_eq!(c.get("/204").status, 204);
        let r = c.get("/304");
        assert_eq!(r.status, 304);
        assert_eq!(r.header("etag"), Some("\"a\""));
        // Nothing stray on the wire: the next request still lines up.
        c.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(c.read_response(true).expect("head").status, 200);
    }
}

#[test]
fn expect_100_continue_is_forwarded_and_its_100_relayed() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            Reply::Raw(response(200, &String::from_utf8_lossy(&req.body)))
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"PUT /u HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
        let interim = c.read_response(false).expect("100");
        assert_eq!(interim.status, 100);
        c.send(b"data");
        let r = c.read_response(false).expect("final");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "data");
        // The upstream was asked, and its 100 is the one relayed.
        assert_eq!(up.last().header("expect"), Some("100-continue"));
        assert_eq!(gw.totals().upstream_expect_timeouts, 0);
    }
}

#[test]
fn interim_103_is_relayed() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::Raw(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx".to_vec())
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        let first = c.get("/");
        assert_eq!(first.status, 103);
        assert_eq!(first.header("link"), Some("</s.css>"));
        let r = c.read_response(false).expect("final");
        assert_eq!((r.status, r.text().as_str()), (200, "x"));
    }
}

#[test]
fn weighted_round_robin_spreads_by_weight() {
    for driver in DRIVERS {
        let a = TestUpstream::ok("a");
        let b = TestUpstream::ok("b");
        let toml = format!(
            "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\", {{ address = \"{}\", weight = 3 }}]\n[[routes]]\nupstream = \"up\"\n",
            a.addr, b.addr
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c = gw.client();
        let bodies: String = (0..8).map(|_| c.get("/").text()).collect();
        assert_eq!(bodies.matches('a').count(), 2, "{bodies}");
        assert_eq!(bodies.matches('b').count(), 6, "{bodies}");
    }
}

/// A server that refuses connections does not cost requests while its
/// group has another: each request it refuses goes to the next server
/// (whatever its method: nothing was sent), and each is counted.
#[test]
fn a_refused_connection_goes_to_another_server_of_the_group() {
    for driver in DRIVERS {
        let live = TestUpstream::ok("live");
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead_addr = dead.local_addr().expect("addr");
        drop(dead);
        for weights in ["", ", weight = 3"] {
            let toml = format!(
                "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [{{ address = \"{dead_addr}\"{weights} }}, \"{}\"]\n[[routes]]\nupstream = \"up\"\n",
                live.addr
            );
            let gw = TestGateway::start(&toml, driver);
            let mut c = gw.client();
            for i in 0..10 {
                let r = if i % 2 == 0 {
                    c.get("/")
                } else {
                    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
                    c.read_response(false).expect("answer")
                };
                assert_eq!(
                    (r.status, r.text().as_str()),
                    (200, "live"),
                    "{driver}{weights}: request {i}"
                );
            }
            gw.wait_for("every request logged", |t| t.requests == 10);
            let t = gw.totals();
            assert!(
                t.upstream_retries >= 1,
                "{driver}{weights}: the dead server was tried"
            );
            assert_eq!(t.upstream_502, 0, "{driver}{weights}");
        }
    }
}

#[test]
fn upstream_down_is_502_and_counted() {
    for driver in DRIVERS {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = dead.local_addr().expect("addr");
        drop(dead);
        let gw = TestGateway::proxy_to(addr, "", driver);
        let r = gw.client().get("/");
        assert_eq!(r.status, 502);
        gw.wait_for("502 counted", |t| t.upstream_502 == 1);
    }
}

#[test]
fn slow_upstream_is_504() {
    for driver in DRIVERS {
        let up =
            TestUpstream::start(|_| Reply::Delay(Duration::from_secs(3), response(200, "late")));
        let gw = TestGateway::proxy_to(
            up.addr,
            "[limits]\nresponse-head-timeout = \"200ms\"",
            driver,
        );
        let r = gw.client().get("/");
        assert_eq!(r.status, 504);
        gw.wait_for("504 counted", |t| t.upstream_504 == 1);
    }
}

#[test]
fn garbage_from_upstream_is_502() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            Reply::Raw(match req.target.as_str() {
                "/smuggle" => {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        .to_vec()
                }
                _ => b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(),
            })
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        assert_eq!(gw.client().get("/").status, 502);
        assert_eq!(gw.client().get("/smuggle").status, 502);
    }
}

#[test]
fn upstream_reset_mid_response_truncates_and_closes() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::RawReset(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial".to_vec())
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        // The head went out; the body cannot complete, so the client sees
        // the connection close short of Content-Length.
        assert!(c.read_response(false).is_none());
        // The gateway keeps serving.
        let up2 = TestUpstream::ok("fine");
        let gw2 = TestGateway::proxy_to(up2.addr, "", driver);
        assert_eq!(gw2.client().get("/").text(), "fine");
    }
}

#[test]
fn dead_pooled_connections_are_replaced_without_failing_requests() {
    for driver in DRIVERS {
        // The upstream answers, then closes every connection: the pooled
        // connection is dead when the next request takes it.
        let up = TestUpstream::start(|_| {
            Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
        });
        let gw = TestGateway::proxy_to(up.addr, "workers = 1", driver);
        let mut c = gw.client();
        for _ in 0..5 {
            let r = c.get("/");
            assert_eq!(r.status, 200);
            // Give the upstream's FIN time to arrive so reuse meets a dead socket.
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(up.request_count(), 5);
        // Each dead pooled connection was noticed (before sending, or by
        // the retry) and replaced.
        assert_eq!(up.connection_count(), 5);
    }
}

#[test]
fn large_upload_and_download_stream() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            if req.method == "POST" {
                Reply::Raw(response(200, &req.body.len().to_string()))
            } else {
                Reply::Stream(8 << 20)
            }
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        let r = c.get("/big");
        assert_eq!(r.body.len(), 8 << 20);
        let body = vec![b'y'; 3 << 20];
        c.send(
            format!(
                "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        c.send(&body);
        let r = c.read_response(false).expect("response");
        // The test upstream keeps at most 1 MiB of what it received.
        assert_eq!(r.text(), (1 << 20).to_string());
    }
}

#[test]
fn upstream_connect_timeout_is_504() {
    for driver in DRIVERS {
        // A listener that never accepts, its backlog already full: further
        // SYNs go unanswered, so connecting hangs until our timeout.
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .expect("addr")
                    .into(),
            )
            .expect("bind");
        socket.listen(0).expect("listen");
        let addr = socket
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet");
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                fillers.push(s);
            }
        }
        let gw = TestGateway::proxy_to(addr, "[limits]\nconnect-timeout = \"200ms\"", driver);
        let r = gw.client().get("/");
        assert_eq!(r.status, 504);
        gw.wait_for("504 counted", |t| t.upstream_504 == 1);
    }
}

#[test]
fn idle_upstream_connections_expire_and_the_pool_is_bounded() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = TestGateway::proxy_to(
            up.addr,
            "workers = 1\n[limits]\nupstream-idle-timeout = \"100ms\"",
            driver,
        );
        let mut c = gw.client();
        assert_eq!(c.get("/").status, 200);
        // The pooled connection is closed by the gateway once idle too long.
        wait_until("idle upstream connection closed", || up.closed_count() == 1);
        assert_eq!(c.get("/").status, 200);
        assert_eq!(up.connection_count(), 2);

        // upstream-max-idle = 0: nothing is pooled, a connection per request.
        let up = TestUpstream::ok("ok");
        let gw = TestGateway::proxy_to(
            up.addr,
            "workers = 1\n[limits]\nupstream-max-idle = 0",
            driver,
        );
        let mut c = gw.client();
        for _ in 0..3 {
            assert_eq!(c.get("/").status, 200);
        }
        assert_eq!(up.connection_count(), 3);
    }
}

#[test]
fn late_bytes_on_an_idle_upstream_connection_never_reach_another_client() {
    for driver in DRIVERS {
        // `/extra` is answered, then a stray second response follows a
        // moment later on the same connection.
        let up = TestUpstream::start(|req| match req.target.as_str() {
            "/extra" => Reply::Then(
                response(200, "ok"),
                Duration::from_millis(50),
                response(200, "STALE"),
            ),
            path => Reply::Raw(response(200, path)),
        });
        let gw = TestGateway::proxy_to(up.addr, "workers = 1", driver);
        assert_eq!(gw.client().get("/extra").text(), "ok");
        wait_until("stray bytes sent", || up.stray_sent());
        // A later request from another client must not get the stray
        // response, nor anything after be off by one.
        let mut c = gw.client();
        for path in ["/a", "/b", "/c"] {
            assert_eq!(c.get(path).text(), path);
        }
    }
}

#[test]
fn post_after_the_upstream_closed_its_idle_connection_succeeds() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            Reply::RawClose(response(200, &format!("{} {}", req.method, req.target)).to_vec())
        });
        let gw = TestGateway::proxy_to(up.addr, "workers = 1", driver);
        let mut c = gw.client();
        let post = |c: &mut TestClient, path: &str| {
            c.send(
                format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
                    .as_bytes(),
            );
            c.read_response(false).expect("response")
        };
        assert_eq!(post(&mut c, "/p1").text(), "POST /p1");
        wait_until("upstream closed", || up.closed_count() == 1);
        // The pooled connection is dead; a POST cannot be retried, so the
        // gateway must notice before sending.
        let r = post(&mut c, "/p2");
        assert_eq!((r.status, r.text().as_str()), (200, "POST /p2"));
    }
}

#[test]
fn upstream_status_line_without_reason_is_relayed() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            Reply::Raw(match req.target.as_str() {
                "/noreason" => b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                _ => "HTTP/1.1 200 \u{d6}l\u{e9}\r\nContent-Length: 2\r\n\r\nok"
                    .as_bytes()
                    .to_vec(),
            })
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        assert_eq!(c.get("/noreason").text(), "ok");
        assert_eq!(c.get("/utf8").text(), "ok");
        assert_eq!(gw.totals().panics, 0);
    }
}

#[test]
fn connection_header_cannot_strip_forwarding_headers() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 1.2.3.4\r\nVia: 1.1 x\r\nConnection: X-Forwarded-For, Via\r\n\r\n");
        assert_eq!(c.read_response(false).expect("response").status, 200);
        let seen = up.last();
        assert_eq!(seen.header("x-forwarded-for"), Some("1.2.3.4, 127.0.0.1"));
        assert_eq!(seen.header("via"), Some("1.1 x, 1.1 ringway"));
    }
}

#[test]
fn explicit_zero_content_length_is_forwarded() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("ok");
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        c.send(b"POST /cl0 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(c.read_response(false).expect("response").status, 200);
        assert_eq!(up.last().header("content-length"), Some("0"));
    }
}

#[test]
fn no_content_response_loses_its_content_length() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::Raw(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec())
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let r = gw.client().get("/");
        assert_eq!(r.status, 204);
        assert_eq!(r.header("content-length"), None);
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_send_timeout() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| Reply::Stream(256 << 20));
        let gw = TestGateway::proxy_to(up.addr, "[limits]\nsend-timeout = \"300ms\"", driver);
        let c = gw.client();
        socket2::SockRef::from(&c.stream)
            .set_recv_buffer_size(4096)
            .expect("rcvbuf");
        let mut c = c;
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
        // Never read: the gateway's writes stall, it gives up, and the
        // upstream connection is closed with it.
        wait_until("upstream connection closed", || up.closed_count() == 1);
    }
}

/// `send-timeout` is about no progress: a client that keeps taking bytes,
/// if slowly and with pauses shorter than the timeout, gets the whole of a
/// large answer however long it takes in all.
#[test]
fn a_slow_reader_that_keeps_reading_gets_the_whole_answer() {
    for driver in DRIVERS {
        const BODY: usize = 8 << 20;
        let body = "s".repeat(BODY);
        let toml = format!(
            "workers = 1\n[limits]\nsend-timeout = \"2s\"\n\
             [[routes]]\n[routes.respond]\nbody = \"{body}\"\n"
        );
        let gw = TestGateway::start(&toml, driver);
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(16 << 10).expect("rcvbuf");
        socket.connect(&gw.addr.into()).expect("connect");
        let mut stream: std::net::TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .expect("send");
        // Take a mebibyte, pause for a quarter of the send-timeout (a
        // loaded machine may stretch a pause), and so on: the whole answer
        // takes twice the timeout.
        let mut got = Vec::with_capacity(BODY + 512);
        let mut chunk = vec![0u8; 64 << 10];
        let mut next_pause = 1 << 20;
        loop {
            let n = stream.read(&mut chunk).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            if got.len() >= next_pause {
                next_pause += 1 << 20;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        let head_end = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        assert_eq!(got.len() - head_end, BODY, "{driver}: the whole body");
    }
}

/// A body that stalls is cut off after `body-idle-timeout`, not after the
/// (longer) head timeouts: an upstream's body (the answer is then cut off,
/// counted as 504) and a client's (408).
#[test]
fn stalled_bodies_end_after_body_idle_timeout() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|s| {
            if s.method == "POST" {
                return Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec());
            }
            let mut first = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
            first.extend_from_slice(&[b'a'; 10]);
            Reply::Then(first, Duration::from_secs(4), vec![b'b'; 90])
        });
        let gw = TestGateway::proxy_to(
            up.addr,
            "workers = 1\n[limits]\nresponse-head-timeout = \"30s\"\n\
             header-read-timeout = \"30s\"\nbody-idle-timeout = \"300ms\"",
            driver,
        );
        let mut s = std::net::TcpStream::connect(gw.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        s.write_all(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        let mut got = Vec::new();
        s.read_to_end(&mut got)
            .expect("the gateway closes the connection before the upstream resumes");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{driver}: {text}");
        assert!(
            text.ends_with("aaaaaaaaaa"),
            "{driver}: cut after the first bytes: {text}"
        );
        gw.wait_for("the cut counted", |t| t.upstream_504 == 1);

        // A client that stops sending its body: 408, long before the
        // header-read-timeout.
        let mut s = std::net::TcpStream::connect(gw.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        s.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
            .expect("send");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("answered and closed");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408"), "{driver}: {text}");
        gw.wait_for("the 408 counted", |t| t.rejected_408 == 1);
    }
}
