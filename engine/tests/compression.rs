//! `[routes.compression]` over real sockets: gzip, brotli and zstd bodies
//! that decode (with the reference decoders) to what the upstream sent,
//! the choice of coding from `Accept-Encoding`, the head a compressed
//! answer carries, every answer that must go out as it came, a large
//! body that streams, and a caching route that stores the identity body
//! and compresses its hits per client.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::{driver, on_both_drivers, Reply, Response, TestClient, TestGateway, TestUpstream};

/// A JSON body of about `n` bytes, varied enough that it does not
/// compress to nothing.
fn json(n: usize) -> String {
    let mut s = String::from("[");
    let mut i = 0u64;
    while s.len() < n {
        let x = i.wrapping_mul(2654435761) % 100_000;
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user-{x}\",\"score\":{},\"active\":{}}},",
            x % 977,
            i.is_multiple_of(3)
        ));
        i += 1;
    }
    s.push_str("{}]");
    s
}

/// A response with these header lines and a Content-Length body.
fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// A gateway with one upstream route compressing with `table` (the keys
/// of `[routes.compression]`), and `route_extra` after it.
fn gateway(origin: &TestUpstream, table: &str, route_extra: &str) -> TestGateway {
    let toml = format!(
        "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"c\"\nupstream = \"up\"\n{route_extra}\n[routes.compression]\n{table}\n",
        origin.addr
    );
    TestGateway::start(&toml, driver())
}

fn call(c: &mut TestClient, method: &str, path: &str, headers: &str) -> Response {
    c.send(format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").as_bytes());
    c.read_response(method == "HEAD").expect("response")
}

fn get(gw: &TestGateway, path: &str, headers: &str) -> Response {
    call(&mut gw.client(), "GET", path, headers)
}

/// The body decoded by the reference decoder of its Content-Encoding.
fn decoded(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    let body = &r.body[..];
    match r.header("content-encoding") {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("gzip decodes");
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("br decodes");
        }
        Some("zstd") => {
            zstd::stream::read::Decoder::new(body)
                .and_then(|mut d| d.read_to_end(&mut out))
                .expect("zstd decodes");
        }
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

#[test]
fn each_algorithm_decodes_to_the_identity_body() {
    on_both_drivers(|| {
        let body = json(20_000);
        let sent = body.clone();
        let origin = TestUpstream::start(move |_| {
            Reply::Raw(reply(
                200,
                &[
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("ETag", "\"v1\""),
                    ("Vary", "Origin"),
                ],
                &sent,
            ))
        });
        let gw = gateway(&origin, "", "");
        let before = gw.totals();
        for coding in ["gzip", "br", "zstd"] {
            let r = get(&gw, "/", &format!("Accept-Encoding: {coding}\r\n"));
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-encoding"), Some(coding));
            assert_eq!(r.header("vary"), Some("Origin, Accept-Encoding"));
            assert_eq!(r.header("etag"), Some("W/\"v1\""));
            assert_eq!(r.header("content-length"), None);
            assert_eq!(r.header("transfer-encoding"), Some("chunked"));
            assert!(
                r.body.len() < body.len() / 3,
                "{coding}: {} bytes",
                r.body.len()
            );
            assert_eq!(decoded(&r), body.as_bytes(), "{coding}");
        }
        gw.wait_for("counted by coding", |t| {
            (t.compressed_gzip, t.compressed_br, t.compressed_zstd)
                == (
                    before.compressed_gzip + 1,
                    before.compressed_br + 1,
                    before.compressed_zstd + 1,
                )
        });
        // A client that accepts none: identity, as sent, with Vary.
        let r = get(&gw, "/", "");
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.header("vary"), Some("Origin, Accept-Encoding"));
        assert_eq!(r.header("etag"), Some("\"v1\""));
        let length = body.len().to_string();
        assert_eq!(r.header("content-length"), Some(length.as_str()));
        assert_eq!(r.body, body.as_bytes());
        // Several requests on one connection, then an HTTP/1.0 client
        // (close-delimited).
        let mut c = gw.client();
        for _ in 0..3 {
            let r = call(&mut c, "GET", "/", "Accept-Encoding: gzip\r\n");
            assert_eq!(decoded(&r), body.as_bytes());
        }
        let mut c = gw.client();
        c.send(b"GET / HTTP/1.0\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(decoded(&r), body.as_bytes());
    });
}

#[test]
fn q_values_and_server_preference_choose_the_coding() {
    let body = json(4000);
    let sent = body.clone();
    let origin = TestUpstream::start(move |_| {
        Reply::Raw(reply(200, &[("Content-Type", "text/plain")], &sent))
    });
    let gw = gateway(&origin, "algorithms = [\"br\", \"gzip\", \"zstd\"]", "");
    let cases = [
        ("gzip, br, zstd", Some("br")),
        ("gzip;q=0.5, zstd;q=0.9", Some("zstd")),
        ("gzip;q=1.0, br;q=0.999", Some("gzip")),
        ("*", Some("br")),
        ("br;q=0, *", Some("gzip")),
        ("*;q=0.2, gzip;q=0.3", Some("gzip")),
        ("gzip;q=0", None),
        ("*;q=0", None),
        ("identity", None),
        ("deflate", None),
        ("gzip;q=0.5, identity", None),
        ("x-gzip", Some("gzip")),
    ];
    for (accept, want) in cases {
        let r = get(&gw, "/", &format!("Accept-Encoding: {accept}\r\n"));
        assert_eq!(r.header("content-encoding"), want, "{accept}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{accept}");
        assert_eq!(decoded(&r), body.as_bytes(), "{accept}");
    }
}

#[test]
fn answers_that_must_go_out_as_they_came() {
    let body = json(4000);
    let sent = body.clone();
    let origin = TestUpstream::start(move |seen| {
        let json = ("Content-Type", "application/json");
        let r = match seen.target.as_str() {
            "/204" => b"HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\n\r\n".to_vec(),
            "/304" => b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\nContent-Type: application/json\r\n\r\n"
                .to_vec(),
            "/206" => reply(206, &[json, ("Content-Range", "bytes 0-3999/9999")], &sent),
            "/encoded" => reply(200, &[json, ("Content-Encoding", "br")], &sent),
            "/no-transform" => reply(200, &[json, ("Cache-Control", "max-age=5, no-transform")], &sent),
            "/png" => reply(200, &[("Content-Type", "image/png")], &sent),
            "/untyped" => reply(200, &[], &sent),
            "/small" => reply(200, &[json], &sent[..2000]),
            _ => reply(200, &[json, ("ETag", "\"x\"")], &sent),
        };
        Reply::Raw(r)
    });
    let gw = gateway(&origin, "min-size = 3000", "");
    let accept = "Accept-Encoding: gzip, br, zstd\r\n";
    let mut c = gw.client();
    let head = call(&mut c, "HEAD", "/", accept);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), None, "HEAD");
    assert_eq!(head.header("etag"), Some("\"x\""), "HEAD");
    let ranged = get(&gw, "/", &format!("{accept}Range: bytes=0-99\r\n"));
    assert_eq!(ranged.header("content-encoding"), None, "Range request");
    assert_eq!(ranged.body, body.as_bytes(), "Range request");
    let asked = get(
        &gw,
        "/",
        &format!("{accept}Cache-Control: no-transform\r\n"),
    );
    assert_eq!(
        asked.header("content-encoding"),
        None,
        "request no-transform"
    );
    assert_eq!(asked.body, body.as_bytes(), "request no-transform");
    for (path, status) in [("/204", 204), ("/304", 304)] {
        let r = get(&gw, path, accept);
        assert_eq!(r.status, status);
        assert_eq!(r.header("content-encoding"), None, "{path}");
        assert_eq!(r.header("vary"), None, "{path}");
    }
    for (path, coding, want) in [
        ("/206", None, &body[..]),
        ("/encoded", Some("br"), &body[..]),
        ("/no-transform", None, &body[..]),
        ("/png", None, &body[..]),
        ("/untyped", None, &body[..]),
        ("/small", None, &body[..2000]),
    ] {
        let r = get(&gw, path, accept);
        assert_eq!(r.header("content-encoding"), coding, "{path}");
        assert_eq!(
            r.body,
            want.as_bytes(),
            "{path}: the upstream's bytes, untouched"
        );
        assert!(r.header("content-length").is_some(), "{path}: length kept");
    }
    // The same gateway does compress what qualifies.
    let r = get(&gw, "/", accept);
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert_eq!(decoded(&r), body.as_bytes());
}

#[test]
fn a_chunked_body_of_unknown_length_is_compressed() {
    let origin = TestUpstream::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\n{\"a\":\r\n3\r\n42}\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let gw = gateway(&origin, "min-size = \"1MiB\"", "");
    let r = get(&gw, "/", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&r), b"{\"a\":42}");
}

#[test]
fn built_in_answers_are_compressed_too() {
    let body = json(3000);
    let toml = format!(
        "workers = 1\n[[routes]]\nname = \"r\"\n[routes.respond]\nstatus = 200\n\
         headers = {{ \"content-type\" = \"application/json\" }}\nbody = {body:?}\n\
         [routes.compression]\nalgorithms = [\"gzip\"]\n"
    );
    let gw = TestGateway::start(&toml, driver());
    let r = get(&gw, "/", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(decoded(&r), body.as_bytes());
    let r = get(&gw, "/", "Accept-Encoding: br\r\n");
    assert_eq!(r.header("content-encoding"), None, "br is not offered");
    assert_eq!(r.body, body.as_bytes());
    // The gateway's own refusals (a short text) stay below min-size.
    let r = get(
        &gw,
        "/x",
        "Accept-Encoding: gzip\r\nContent-Length: 99999999999999\r\n",
    );
    assert_eq!(r.header("content-encoding"), None, "{}", r.status);
}

/// An upstream that answers its first request with `first` (a head and
/// the start of a body), then waits for a go (at most 20 s) before
/// sending `rest`.
fn held_upstream(first: Vec<u8>, rest: Vec<u8>) -> (std::net::SocketAddr, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (go, wait) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let _ = s.write_all(&first);
        if wait.recv_timeout(Duration::from_secs(20)).is_ok() {
            let _ = s.write_all(&rest);
        }
    });
    (addr, go)
}

/// A gateway compressing with gzip only in front of `addr`.
fn gzip_gateway(addr: std::net::SocketAddr) -> TestGateway {
    let toml = format!(
        "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{addr}\"]\n\
         [[routes]]\nname = \"c\"\nupstream = \"up\"\n[routes.compression]\nalgorithms = [\"gzip\"]\n"
    );
    TestGateway::start(&toml, driver())
}

/// A client reading a chunked gzip answer as it comes.
struct Reader {
    s: TcpStream,
    raw: Vec<u8>,
    decoder: flate2::write::GzDecoder<Vec<u8>>,
    deadline: Instant,
}

impl Reader {
    /// Sends a gzip GET and reads the head, which must say gzip.
    fn start(addr: std::net::SocketAddr) -> Reader {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n")
            .expect("send");
        let mut r = Reader {
            s,
            raw: Vec::new(),
            decoder: flate2::write::GzDecoder::new(Vec::new()),
            deadline: Instant::now() + Duration::from_secs(20),
        };
        let head_end = loop {
            if let Some(p) = r.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            r.read_more();
        };
        let head = String::from_utf8_lossy(&r.raw[..head_end]).into_owned();
        assert!(head.contains("Content-Encoding: gzip\r\n"), "{head}");
        assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
        r.raw.drain(..head_end);
        r
    }

    fn read_more(&mut self) {
        assert!(
            Instant::now() < self.deadline,
            "timed out reading the answer"
        );
        let mut buf = vec![0u8; 64 << 10];
        let n = self.s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        self.raw.extend_from_slice(&buf[..n]);
    }

    /// Decodes what came; true once the body ended.
    fn decode(&mut self) -> bool {
        let mut payload = Vec::new();
        let done = dechunk(&mut self.raw, &mut payload);
        self.decoder.write_all(&payload).expect("decodes");
        self.decoder.flush().expect("flush");
        done
    }

    /// Reads until at least `n` bytes decoded.
    fn until_decoded(&mut self, n: usize) {
        while !self.decode() && self.decoder.get_ref().len() < n {
            self.read_more();
        }
    }

    /// Reads to the end of the body; the whole decoded body.
    fn finish(mut self) -> Vec<u8> {
        while !self.decode() {
            self.read_more();
        }
        self.decoder.finish().expect("gzip ends")
    }
}

/// Moves the payload of complete chunks from `raw` to `out`; true once
/// the last chunk was read.
fn dechunk(raw: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|l| usize::from_str_radix(l.trim(), 16).ok())
            .expect("chunk size");
        if size == 0 {
            return true;
        }
        if raw.len() < eol + 2 + size + 2 {
            return false;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw.drain(..eol + 2 + size + 2);
    }
}

#[test]
fn a_large_body_streams_compressed_without_being_held() {
    on_both_drivers(|| {
        let body = json(8 << 20).into_bytes();
        let first = 1 << 20;
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(&body[..first]);
        let (addr, go) = held_upstream(head, body[first..].to_vec());
        let gw = gzip_gateway(addr);
        let mut r = Reader::start(gw.addr);
        // Before the upstream sends more than its first MiB, the client
        // decodes (nearly) all of that MiB: nothing was held back.
        r.until_decoded(first - 64);
        go.send(()).expect("upstream waits");
        let all = r.finish();
        assert_eq!(all.len(), body.len());
        assert!(all == body, "decoded body differs");
    });
}

#[test]
fn an_event_stream_reaches_the_client_event_by_event() {
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
                 b\r\ndata: one\n\n\r\n"
            .to_vec();
    let rest = b"b\r\ndata: two\n\n\r\n0\r\n\r\n".to_vec();
    let (addr, go) = held_upstream(head, rest);
    let gw = gzip_gateway(addr);
    let mut r = Reader::start(gw.addr);
    r.until_decoded(11);
    assert_eq!(
        r.decoder.get_ref(),
        b"data: one\n\n",
        "the first event, alone"
    );
    go.send(()).expect("upstream waits");
    assert_eq!(r.finish(), b"data: one\n\ndata: two\n\n");
}

#[test]
fn a_cached_route_stores_identity_and_compresses_hits() {
    on_both_drivers(|| {
        let body = json(10_000);
        // Larger than the piece a stored body is compressed in at a time.
        let big = json(300_000);
        let (sent, sent_big) = (body.clone(), big.clone());
        let origin = TestUpstream::start(move |seen| {
            Reply::Raw(reply(
                200,
                &[
                    ("Content-Type", "application/json"),
                    ("Cache-Control", "max-age=60"),
                    ("ETag", "\"e1\""),
                ],
                if seen.target == "/big" {
                    &sent_big
                } else {
                    &sent
                },
            ))
        });
        let gw = gateway(&origin, "", "[routes.cache]\n");
        let gz = get(&gw, "/doc", "Accept-Encoding: gzip\r\n");
        assert_eq!(
            gz.header("content-encoding"),
            Some("gzip"),
            "miss, compressed"
        );
        assert_eq!(decoded(&gz), body.as_bytes());
        let plain = get(&gw, "/doc", "");
        assert_eq!(plain.header("content-encoding"), None, "hit, identity");
        assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
        assert_eq!(plain.header("etag"), Some("\"e1\""));
        assert_eq!(
            plain.body,
            body.as_bytes(),
            "the stored body is the identity one"
        );
        for coding in ["br", "zstd", "gzip"] {
            let r = get(&gw, "/doc", &format!("Accept-Encoding: {coding}\r\n"));
            assert_eq!(r.header("content-encoding"), Some(coding), "hit");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"));
            assert_eq!(r.header("etag"), Some("W/\"e1\""));
            assert!(
                r.header("cache-status").is_some_and(|s| s.contains("hit")),
                "{:?}",
                r.headers
            );
            assert_eq!(decoded(&r), body.as_bytes(), "{coding}");
        }
        // A revalidation with the weak tag a compressed answer carried.
        let r = get(
            &gw,
            "/doc",
            "Accept-Encoding: gzip\r\nIf-None-Match: W/\"e1\"\r\n",
        );
        assert_eq!(r.status, 304);
        assert_eq!(
            origin.request_count(),
            1,
            "one origin fetch for every client"
        );
        for coding in ["", "gzip", "br", "zstd"] {
            let r = get(&gw, "/big", &format!("Accept-Encoding: {coding}\r\n"));
            let want = Some(coding).filter(|c| !c.is_empty());
            assert_eq!(r.header("content-encoding"), want, "/big");
            assert_eq!(decoded(&r), big.as_bytes(), "/big {coding}");
        }
        assert_eq!(origin.request_count(), 2, "/big fetched once");
    });
}
