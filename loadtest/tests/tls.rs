//! HTTPS against a local rustls server with a self-signed certificate:
//! accepted with `--insecure`, refused (as a setup error) without; with
//! `Connection: close`, reconnects resume sessions unless `--no-resume`
//! makes every one a full handshake.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringway_loadtest::run::{self, RunError};
use ringway_loadtest::scenario;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::HandshakeKind;
use support::{flags, run_flags};

/// A keep-alive HTTPS server answering every request with 200 (and
/// closing after it when the request asked with `Connection: close`);
/// counts handshakes, and of them the resumed ones. rustls' server
/// defaults issue TLS 1.3 tickets (two per connection, from a 256-entry
/// cache), so a client that keeps them can resume. Threads end when their
/// client closes.
struct TlsServer {
    addr: SocketAddr,
    handshakes: Arc<AtomicU64>,
    resumed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl TlsServer {
    fn start() -> TlsServer {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("self-signed certificate");
        let cert = CertificateDer::from(key.cert.der().to_vec());
        let pkey = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], pkey)
        .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handshakes = Arc::new(AtomicU64::new(0));
        let resumed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, r, s) = (handshakes.clone(), resumed.clone(), stop.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
                let (config, h, r) = (config.clone(), h.clone(), r.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let mut counted = false;
                    loop {
                        match tls.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if !counted {
                            // Data arrived, so the handshake is complete.
                            h.fetch_add(1, Ordering::SeqCst);
                            if tls.conn.handshake_kind() == Some(HandshakeKind::Resumed) {
                                r.fetch_add(1, Ordering::SeqCst);
                            }
                            counted = true;
                        }
                        while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            buf.drain(..i + 4);
                            if head.contains("\r\nconnection: close") {
                                let reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 6\r\n\r\nsecure";
                                let _ = tls.write_all(reply);
                                tls.conn.send_close_notify();
                                let _ = tls.flush();
                                return;
                            }
                            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure";
                            if tls.write_all(reply).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        TlsServer {
            addr,
            handshakes,
            resumed,
            stop,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

#[test]
fn insecure_accepts_a_self_signed_server() {
    let server = TlsServer::start();
    let mut f = flags(&format!("https://{}/", server.addr));
    f.insecure = true;
    let r = run_flags(&f);
    assert!(r.responses > 10, "{}", r.summary());
    assert_eq!(r.errors.total(), 0, "{}", r.summary());
    assert_eq!(r.statuses.get(&200).copied(), Some(r.responses));
    // Keep-alive over TLS: one handshake per connection. (The start-up
    // probe handshakes too but sends no request, so the server, which
    // counts connections that sent one, does not see it.)
    assert_eq!(r.connects, 4);
    assert_eq!(server.handshakes.load(Ordering::SeqCst), 4);
}

#[test]
fn self_signed_certificate_is_refused_by_default() {
    let server = TlsServer::start();
    let built = scenario::build(&flags(&format!("https://{}/", server.addr))).expect("valid flags");
    let stop = Arc::new(AtomicBool::new(false));
    match run::run(&built.plan, stop, &mut |_| {}) {
        Err(RunError::Unreachable { reason, .. }) => {
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
}

/// `Connection: close` over TLS: one connection, and so one handshake, per
/// request.
fn close_each_request(server: &TlsServer, no_resume: bool) -> ringway_loadtest::report::Report {
    let mut f = flags(&format!("https://{}/", server.addr));
    f.insecure = true;
    f.no_resume = no_resume;
    f.connections = Some(2);
    f.headers = vec!["Connection: close".into()];
    let r = run_flags(&f);
    assert_eq!(r.errors.total(), 0, "{}", r.summary());
    // Every connection carried exactly one request, and the server saw a
    // handshake for each.
    assert!(r.connects > 10, "reconnected per request: {}", r.summary());
    assert_eq!(r.responses, r.connects, "{}", r.summary());
    assert_eq!(server.handshakes.load(Ordering::SeqCst), r.connects);
    r
}

#[test]
fn reconnects_resume_sessions_by_default() {
    let server = TlsServer::start();
    let r = close_each_request(&server, false);
    assert_eq!(r.tls_resumption, Some(true));
    // Only the first connections, before any ticket arrived, are full.
    let resumed = server.resumed.load(Ordering::SeqCst);
    assert!(
        resumed + 2 >= r.connects,
        "{resumed} of {} handshakes resumed",
        r.connects
    );
}

#[test]
fn no_resume_makes_every_handshake_full() {
    let server = TlsServer::start();
    let r = close_each_request(&server, true);
    assert_eq!(r.tls_resumption, Some(false));
    assert!(
        r.summary().contains("TLS without resumption"),
        "{}",
        r.summary()
    );
    assert_eq!(server.resumed.load(Ordering::SeqCst), 0);
}

#[test]
fn no_resume_flag_reaches_the_client() {
    let server = TlsServer::start();
    let url = format!("https://{}/", server.addr);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ringway-load"))
        .args(["-k", "--no-resume", "-H", "Connection: close"])
        .args(["-c", "2", "-t", "1", "-d", "500ms", &url])
        .output()
        .expect("binary runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("TLS without resumption"), "{out}");
    assert!(out.contains("errors      none"), "{out}");
    assert!(server.handshakes.load(Ordering::SeqCst) > 4, "{out}");
    assert_eq!(server.resumed.load(Ordering::SeqCst), 0, "{out}");
}
