//! Request bodies and the upstream's answer at once: an upstream that
//! answers before it has read the body (RFC 9110 §15.2.1, RFC 9112 §9.6),
//! `Expect: 100-continue` forwarded (RFC 9110 §10.1.1), and small chunked
//! bodies checked before their head goes upstream (RFC 9112 §7.1) — on
//! io_uring and on epoll.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use support::*;

/// An upstream that runs `serve` on each connection it accepts (after
/// reading the request head, which it passes along), counting them.
struct RawUpstream {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl RawUpstream {
    fn start(serve: impl Fn(String, BufReader<TcpStream>) + Send + Sync + 'static) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let serve = Arc::new(serve);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let serve = serve.clone();
                thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .expect("timeout");
                    let mut reader = BufReader::new(stream);
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    serve(head, reader);
                });
            }
        });
        RawUpstream { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads from `r` until EOF (or an error), returning how many bytes came.
fn count_until_close(r: &mut BufReader<TcpStream>) -> usize {
    let mut n = r.buffer().len();
    r.consume(n);
    let mut buf = [0u8; 16 << 10];
    loop {
        match r.get_mut().read(&mut buf) {
            Ok(0) | Err(_) => return n,
            Ok(k) => n += k,
        }
    }
}

fn gateway(up: std::net::SocketAddr, driver: &str) -> TestGateway {
    TestGateway::proxy_to(up, "", driver)
}

/// A gateway proxying to `up` whose log records are kept.
fn logged_gateway(up: std::net::SocketAddr, driver: &str) -> (TestGateway, Records) {
    let records = Records::default();
    let toml = format!(
        "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{up}\"]\n\
         [[routes]]\nname = \"all\"\nupstream = \"up\"\n"
    );
    (
        TestGateway::start_with(&toml, driver, records.hooks()),
        records,
    )
}

/// Sends `request` (method and target) with a `total`-byte body: the head,
/// then the body from a thread, until the gateway stops taking it or
/// `stop` is set; the thread returns how many bytes went.
fn upload(
    c: &mut TestClient,
    request: &str,
    total: usize,
) -> (Arc<AtomicBool>, thread::JoinHandle<usize>) {
    c.send(format!("{request} HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n").as_bytes());
    let mut writer = c.stream.try_clone().expect("clone");
    let stop = Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    let uploader = thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0;
        while sent < total && !done.load(Ordering::SeqCst) {
            if writer.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    (stop, uploader)
}

#[test]
fn an_early_answer_is_relayed_while_the_client_still_uploads() {
    for driver in DRIVERS {
        // Refuses after the head, without reading the body, and closes.
        let up = RawUpstream::start(|_head, reader| {
            let mut w = reader.into_inner();
            let _ =
                w.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!");
        });
        let (gw, records) = logged_gateway(up.addr, driver);
        let mut c = gw.client();
        let total: usize = 64 << 20;
        // The upload goes on in the background until the gateway stops
        // taking it.
        let (stopped, uploader) = upload(&mut c, "PUT /upload", total);
        let r = c.read_response(false).expect("an answer during the upload");
        assert_eq!(r.status, 413, "the upstream's answer, not a 502");
        assert_eq!(r.text(), "too big!");
        assert_eq!(r.header("connection"), Some("close"));
        // The rest of the body is not read: the connection closes.
        assert!(
            c.is_closed(),
            "the client connection closes after the answer"
        );
        stopped.store(true, Ordering::SeqCst);
        let sent = uploader.join().expect("uploader");
        assert!(
            sent < total,
            "the gateway stopped taking the body ({sent} bytes)"
        );
        gw.wait_for("the early answer counted", |t| {
            t.upstream_early_answers == 1
        });
        let t = gw.totals();
        assert_eq!(t.upstream_expect_timeouts, 0);
        // Logged as the answer it was, not as an upstream failure.
        let logged = records.nth(1);
        assert_eq!((logged.status, logged.error), (413, None));
        // The gateway goes on serving.
        let ok = TestUpstream::ok("fine");
        let gw2 = gateway(ok.addr, driver);
        assert_eq!(gw2.client().get("/").status, 200);
    }
}

#[test]
fn an_early_answer_from_an_upstream_that_stays_open_stops_the_upload() {
    for driver in DRIVERS {
        // Answers 401 after the head and keeps the connection, reading
        // nothing more until the client has its answer; then it counts
        // what had come (the socket buffers' worth at most) to the close.
        let got_after = Arc::new(Mutex::new(None));
        let answered = Arc::new(AtomicBool::new(false));
        let (seen, told) = (got_after.clone(), answered.clone());
        let up = RawUpstream::start(move |_head, mut reader| {
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno");
            wait_until("the client has its answer", || told.load(Ordering::SeqCst));
            *seen.lock().expect("lock") = Some(count_until_close(&mut reader));
        });
        let gw = gateway(up.addr, driver);
        let mut c = gw.client();
        let total: usize = 64 << 20;
        let (stopped, uploader) = upload(&mut c, "POST /p", total);
        let r = c.read_response(false).expect("the upstream's answer");
        assert_eq!((r.status, r.text().as_str()), (401, "no"));
        assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);
        assert!(c.is_closed());
        answered.store(true, Ordering::SeqCst);
        stopped.store(true, Ordering::SeqCst);
        uploader.join().expect("uploader");
        // The upstream connection was let go, not pooled, and got far
        // less than the whole body.
        wait_until("the upstream connection closed", || {
            got_after.lock().expect("lock").is_some()
        });
        let after = got_after.lock().expect("lock").expect("counted");
        assert_eq!(up.connections(), 1);
        assert!(
            after < total,
            "the upload stopped ({after} bytes reached the upstream)"
        );
    }
}

#[test]
fn expect_continue_relays_the_upstreams_100() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|req| {
            Reply::Raw(response(200, &String::from_utf8_lossy(&req.body)))
        });
        let gw = gateway(up.addr, driver);
        let mut c = gw.client();
        c.send(b"PUT /u HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        // The client waits for the 100 before its body.
        let interim = c.read_response(false).expect("100");
        assert_eq!(interim.status, 100);
        c.send(b"hello");
        let r = c.read_response(false).expect("final");
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(up.last().header("expect"), Some("100-continue"));
        assert_eq!(gw.totals().upstream_expect_timeouts, 0);
        // The connection stays usable.
        assert_eq!(c.get("/again").status, 200);
    }
}

#[test]
fn expect_continue_relays_a_final_refusal_and_the_body_never_goes() {
    for (driver, status) in DRIVERS.into_iter().flat_map(|d| [(d, 417), (d, 401)]) {
        let got_after = Arc::new(Mutex::new(None));
        let seen = got_after.clone();
        let up = RawUpstream::start(move |head, mut reader| {
            assert!(head.to_ascii_lowercase().contains("expect: 100-continue"));
            let answer = format!("HTTP/1.1 {status} Refused\r\nContent-Length: 3\r\n\r\nnot");
            let _ = reader.get_mut().write_all(answer.as_bytes());
            *seen.lock().expect("lock") = Some(count_until_close(&mut reader));
        });
        let gw = gateway(up.addr, driver);
        let mut c = gw.client();
        c.send(
            b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
        );
        let r = c.read_response(false).expect("the refusal");
        assert_eq!((r.status, r.text().as_str()), (status, "not"));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed());
        wait_until("the upstream connection closed", || {
            got_after.lock().expect("lock").is_some()
        });
        assert_eq!(
            got_after.lock().expect("lock").expect("counted"),
            0,
            "no byte of the body reached the upstream"
        );
    }
}

#[test]
fn expect_continue_the_gateway_sends_100_when_the_upstream_does_not() {
    for driver in DRIVERS {
        // An upstream that ignores the expectation: it waits for the body.
        let up = RawUpstream::start(|_head, mut reader| {
            let mut body = [0u8; 5];
            if reader.read_exact(&mut body).is_ok() {
                let _ = reader
                    .get_mut()
                    .write_all(&response(200, &String::from_utf8_lossy(&body)));
            }
            count_until_close(&mut reader);
        });
        let gw = gateway(up.addr, driver);
        let mut c = gw.client();
        c.send(b"PUT /u HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        let interim = c.read_response(false).expect("the gateway's own 100");
        assert_eq!(interim.status, 100);
        c.send(b"later");
        let r = c.read_response(false).expect("final");
        assert_eq!((r.status, r.text().as_str()), (200, "later"));
        gw.wait_for("the expect timeout counted", |t| {
            t.upstream_expect_timeouts == 1
        });
    }
}

#[test]
fn a_malformed_small_chunked_body_is_refused_before_the_upstream_sees_anything() {
    for driver in DRIVERS {
        let up = TestUpstream::ok("never");
        let gw = gateway(up.addr, driver);
        let mut c = gw.client();
        c.send(
            b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\nzz\r\nbad\r\n0\r\n\r\n",
        );
        let r = c.read_response(false).expect("an answer");
        assert_eq!(r.status, 400);
        assert_eq!(
            up.connection_count(),
            0,
            "the origin saw nothing, not even the head"
        );
        assert_eq!(up.request_count(), 0);
        // A well-formed small one goes in one piece.
        let mut c = gw.client();
        c.send(
            b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        );
        assert_eq!(c.read_response(false).expect("answer").status, 200);
        assert_eq!(up.last().body, b"hello world");
    }
}

#[test]
fn a_large_chunked_body_still_streams() {
    for driver in DRIVERS {
        // Flags the head's arrival, then reads the chunked body to its end
        // and answers with its payload size.
        let head_seen = Arc::new(AtomicBool::new(false));
        let flag = head_seen.clone();
        let up = RawUpstream::start(move |_head, mut reader| {
            flag.store(true, Ordering::SeqCst);
            let mut payload = 0usize;
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim_end(), 16).expect("size");
                let mut data = vec![0; n + 2];
                reader.read_exact(&mut data).expect("chunk");
                if n == 0 {
                    break;
                }
                payload += n;
            }
            let _ = reader
                .get_mut()
                .write_all(&response(200, &payload.to_string()));
            count_until_close(&mut reader);
        });
        let gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut c = gw.client();
        // 100 KiB: past the default 64 KiB retry buffer.
        let chunk = vec![b'z'; 100 << 10];
        c.send(b"POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send(format!("{:x}\r\n", chunk.len()).as_bytes());
        c.send(&chunk);
        c.send(b"\r\n");
        // The head went upstream before the body ended.
        wait_until("the upstream got the head", || {
            head_seen.load(Ordering::SeqCst)
        });
        c.send(b"3\r\nend\r\n0\r\n\r\n");
        let r = c.read_response(false).expect("answer");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), ((100 << 10) + 3).to_string());
    }
}

#[test]
fn a_small_chunked_body_is_kept_for_a_retry() {
    for driver in DRIVERS {
        let busy = TestUpstream::start(|_| Reply::Raw(response(503, "busy")));
        let echo = TestUpstream::start(|req| {
            Reply::Raw(response(200, &String::from_utf8_lossy(&req.body)))
        });
        let toml = format!(
            "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\", \"{}\"]\n\
             [[routes]]\nupstream = \"up\"\n[routes.retry]\nattempts = 2\non = [\"503\"]\n",
            busy.addr, echo.addr
        );
        let gw = TestGateway::start(&toml, driver);
        // Round robin: one of the two requests tries the busy server
        // first, and its chunked body goes again to the other.
        for _ in 0..2 {
            let mut c = gw.client();
            c.send(
                b"PUT /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                  4\r\nsame\r\n5\r\n body\r\n0\r\n\r\n",
            );
            let r = c.read_response(false).expect("answer");
            assert_eq!((r.status, r.text().as_str()), (200, "same body"));
        }
        assert_eq!(busy.request_count(), 1);
        assert_eq!(gw.totals().upstream_retries, 1);
    }
}

/// An HTTPS origin that reads one request head, answers `answer`, and
/// closes a moment later without reading the body. (The moment matters:
/// over TLS the gateway reads the answer only once a write fails, and a
/// reset that overtakes the answer can take it with it.)
fn tls_refusing_origin(ca: &support::tls::Ca, answer: &'static [u8]) -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = ca.issue(&["origin.test"]);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = vec![CertificateDer::from_pem_slice(cert.cert.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).expect("key");
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).expect("session");
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = tls.write_all(answer);
                let _ = tls.flush();
                thread::sleep(Duration::from_millis(300));
            });
        }
    });
    addr
}

#[test]
fn an_early_answer_from_a_tls_upstream_that_closes_is_relayed() {
    for driver in DRIVERS {
        let ca = support::tls::Ca::new("Origin CA");
        let ca_file = support::tls::write("duplex-origin-ca.pem", &ca.pem());
        let origin = tls_refusing_origin(
            &ca,
            b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!",
        );
        let toml = format!(
            "workers = 1\n[[upstreams]]\nname = \"secure\"\nservers = [\"{origin}\"]\n\
             [upstreams.tls]\nca = \"{}\"\nserver-name = \"origin.test\"\n\
             [[routes]]\nupstream = \"secure\"\n",
            ca_file.display()
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c = gw.client();
        let total: usize = 64 << 20;
        let (stopped, uploader) = upload(&mut c, "PUT /upload", total);
        let r = c.read_response(false).expect("an answer during the upload");
        assert_eq!((r.status, r.text().as_str()), (413, "too big!"));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed());
        stopped.store(true, Ordering::SeqCst);
        uploader.join().expect("uploader");
    }
}
