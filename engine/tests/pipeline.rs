//! The request pipeline's stages, seen from outside: every request passes
//! the log stage exactly once, with its final status and byte counts,
//! whatever its outcome; every answer passes the response stage; the body
//! filter stage can change a body (its length then becomes chunked).

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ringway::{Hooks, Kind, Side};
use sha2::{Digest, Sha256};
use support::*;

fn status_of(raw: &[u8]) -> u16 {
    String::from_utf8_lossy(&raw[..raw.len().min(12)])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A request, and the status, route, cache use and error its log record
/// must have.
type Case = (
    Vec<u8>,
    u16,
    Option<&'static str>,
    Option<&'static str>,
    Option<(Kind, Side)>,
);

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

#[test]
fn every_outcome_passes_the_log_stage_once_with_its_status_and_sizes() {
    for driver in DRIVERS {
        let origin = TestUpstream::start(|s| match s.target.as_str() {
            "/slow" => Reply::Delay(
                Duration::from_secs(5),
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            ),
            "/huge" => Reply::Stream(256 << 20),
            "/cached" => Reply::Raw(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 6\r\n\r\ncached"
                    .to_vec(),
            ),
            _ => Reply::Raw(response(200, "proxied")),
        });
        let key = Sha256::digest(b"pipeline-key")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let toml = format!(
            "workers = 1\n\
             [[upstreams]]\nname = \"up\"\nservers = [\"{up}\"]\n\
             [[upstreams]]\nname = \"down\"\nservers = [\"{down}\"]\n\
             [[consumers]]\nname = \"alice\"\napi-keys = [\"sha256:{key}\"]\n\
             [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\n\
             [[routes]]\nname = \"hello\"\npath = \"/hello\"\n[routes.respond]\nbody = \"hi\"\n\
             [[routes]]\nname = \"private\"\npath = \"/private\"\nupstream = \"up\"\nauth = [\"keys\"]\n\
             [[routes]]\nname = \"limited\"\npath = \"/limited\"\nupstream = \"up\"\n\
             [[routes.rate-limits]]\nkey = \"route\"\nrate = \"1/h\"\n\
             [[routes]]\nname = \"small\"\npath = \"/small\"\nupstream = \"up\"\n\
             [routes.limits]\nmax-body-size = \"10B\"\nresponse-head-timeout = \"300ms\"\n\
             [[routes]]\nname = \"dead\"\npath = \"/dead\"\nupstream = \"down\"\n\
             [[routes]]\nname = \"slow\"\npath = \"/slow\"\nupstream = \"up\"\n\
             [routes.limits]\nresponse-head-timeout = \"300ms\"\n\
             [[routes]]\nname = \"cached\"\npath = \"/cached\"\nupstream = \"up\"\n[routes.cache]\n\
             [[routes]]\nname = \"proxied\"\npath-prefix = \"/p\"\nupstream = \"up\"\n\
             [[routes]]\nname = \"huge\"\npath = \"/huge\"\nupstream = \"up\"\n",
            up = origin.addr,
            down = closed_port(),
        );
        let records = Records::default();
        let gw = TestGateway::start_with(&toml, driver, records.hooks());
        let mut n = 0;
        // (request, status, route, cache, error) for outcomes read whole.
        let cases: Vec<Case> = vec![
            (b"GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 404, None, None, Some((Kind::NotFound, Side::Downstream))),
            (b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 200, Some("hello"), None, None),
            (b"GET /private HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 401, Some("private"), None, Some((Kind::Unauthorized, Side::Downstream))),
            (b"GET /private HTTP/1.1\r\nHost: t\r\nX-Api-Key: pipeline-key\r\nConnection: close\r\n\r\n".to_vec(), 200, Some("private"), None, None),
            (b"GET /limited HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 200, Some("limited"), None, None),
            (b"GET /limited HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 429, Some("limited"), None, Some((Kind::TooManyRequests, Side::Downstream))),
            (b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world".to_vec(), 413, Some("small"), None, Some((Kind::BodyTooLarge, Side::Downstream))),
            (b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_vec(), 200, Some("small"), None, None),
            (b"GET /dead HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 502, Some("dead"), None, Some((Kind::BadGateway, Side::Upstream))),
            (b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 504, Some("slow"), None, Some((Kind::GatewayTimeout, Side::Upstream))),
            (b"GET /cached HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 200, Some("cached"), Some("miss"), None),
            (b"GET /cached HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 200, Some("cached"), Some("hit"), None),
            (b"GET /p/x?y=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(), 200, Some("proxied"), None, None),
        ];
        for (raw, status, route, cache, error) in cases {
            let what =
                String::from_utf8_lossy(&raw[..raw.iter().position(|&b| b == b'\r').unwrap_or(0)])
                    .to_string();
            let got = exchange(gw.addr, &raw, usize::MAX);
            assert_eq!(status_of(&got), status, "{driver} {what}");
            n += 1;
            let l = records.nth(n);
            assert_eq!(l.status, status, "{driver} {what}");
            assert_eq!(l.route.as_deref(), route, "{driver} {what}");
            assert_eq!(l.cache, cache, "{driver} {what}");
            assert_eq!(l.error, error, "{driver} {what}");
            // A body refused unread (413) is not part of what the request
            // consumed: the head is.
            let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
            let consumed = if status == 413 { head_len } else { raw.len() };
            assert_eq!(
                l.bytes_in, consumed as u64,
                "{driver} {what}: request bytes"
            );
            assert_eq!(
                l.bytes_out,
                got.len() as u64,
                "{driver} {what}: response bytes"
            );
            assert!(
                l.first_byte.is_some_and(|f| f <= l.total),
                "{driver} {what}"
            );
        }

        // A client that goes away in the middle of a body: one record, the
        // status that was sent, fewer bytes than the body's, the client
        // gone.
        let got = exchange(gw.addr, b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n", 1 << 20);
        assert_eq!(status_of(&got), 200);
        n += 1;
        let l = records.nth(n);
        assert_eq!(
            (l.status, l.route.as_deref()),
            (200, Some("huge")),
            "{driver}"
        );
        assert_eq!(
            l.error,
            Some((Kind::ClientGone, Side::Downstream)),
            "{driver}"
        );
        assert!(
            l.bytes_out >= got.len() as u64 && l.bytes_out < 256 << 20,
            "{driver}: {}",
            l.bytes_out
        );

        // Exactly once each: the next request's record comes right after.
        let got = exchange(
            gw.addr,
            b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            usize::MAX,
        );
        assert_eq!(status_of(&got), 200);
        n += 1;
        assert_eq!(records.nth(n).route.as_deref(), Some("hello"), "{driver}");
        gw.wait_for("counted", |t| t.requests == n as u64);
        assert_eq!(records.len(), n, "{driver}: one record per request");
    }
}

#[test]
fn a_body_filter_changes_bodies_and_their_framing() {
    for driver in DRIVERS {
        let origin = TestUpstream::start(|s| {
            match s.target.as_str() {
            "/cached" => Reply::Raw(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 6\r\n\r\ncached"
                    .to_vec(),
            ),
            "/chunked" => Reply::Raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            _ => Reply::Raw(response(200, "hello world")),
        }
        });
        let toml = format!(
            "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
             [[routes]]\npath = \"/hello\"\n[routes.respond]\nbody = \"hi there\"\n\
             [[routes]]\npath = \"/cached\"\nupstream = \"up\"\n[routes.cache]\n\
             [[routes]]\nupstream = \"up\"\n",
            origin.addr
        );
        let hooks = Hooks {
            body_filter: Some(Arc::new(|data: &[u8], out: &mut BytesMut| {
                out.extend_from_slice(&data.to_ascii_uppercase())
            })),
            ..Default::default()
        };
        let gw = TestGateway::start_with(&toml, driver, hooks);
        let mut c = gw.client();
        for (path, want) in [
            ("/p", "HELLO WORLD"),
            ("/chunked", "HELLO WORLD"),
            ("/hello", "HI THERE"),
            ("/cached", "CACHED"),
            ("/cached", "CACHED"),
        ] {
            let r = c.get(path);
            assert_eq!(r.status, 200, "{driver} {path}");
            assert_eq!(r.text(), want, "{driver} {path}");
            assert_eq!(
                r.header("transfer-encoding"),
                Some("chunked"),
                "{driver} {path}"
            );
            assert_eq!(r.header("content-length"), None, "{driver} {path}");
        }
        // An HTTP/1.0 client reads it until the connection closes.
        let got = exchange(gw.addr, b"GET /p HTTP/1.0\r\n\r\n", usize::MAX);
        let text = String::from_utf8_lossy(&got);
        assert!(text.ends_with("\r\n\r\nHELLO WORLD"), "{driver}: {text}");
        // The stored body is the origin's, not the filtered one.
        assert_eq!(
            origin.request_count(),
            4,
            "{driver}: the second /cached was a hit"
        );
    }
}
