//! One active health check of one upstream server: connect (and, for a
//! TLS upstream, complete the handshake) and, for an HTTP check, send one
//! request and match the status line of the answer, all within a timeout.
//!
//! The request is the smallest that tells a live application from a dead
//! one (RFC 9112 §3): `METHOD path HTTP/1.1`, `Host`, `User-Agent:
//! ringway-health` and `Connection: close`, so the server closes the
//! connection after answering and no pool is involved. Only the status
//! line is read (RFC 9112 §4); the headers and body are not waited for, so
//! a server that streams a large page answers a check as fast as a small
//! one. The connection is dropped at once after.
//!
//! On timeout the whole check is dropped, in-flight operations included;
//! monoio keeps an operation's buffer until the kernel gives it back, and
//! the check owns nothing else.

use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::{ClientConfig, ClientConnection};
use rustls_pki_types::ServerName;

use crate::tls::stream::TlsStream;

/// What a check does (mapped from an upstream's `[upstreams.health-check]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckSpec {
    /// An HTTP request; passes when the status is within one of `expect`
    /// (200..=399 when empty).
    Http {
        method: String,
        path: String,
        /// The `Host` header; the server's address when `None`.
        host: Option<String>,
        expect: Vec<RangeInclusive<u16>>,
    },
    /// Passes when the connection (and TLS handshake) is made.
    Tcp,
}

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("TLS session could not be set up: {0}")]
    Session(rustls::Error),
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    #[error("request or answer failed: {0}")]
    Io(io::Error),
    #[error("closed before a status line")]
    Closed,
    #[error("the answer is not an HTTP/1 status line")]
    Malformed,
    #[error("status {0} is not one expected")]
    Status(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Bytes of an answer read before it must have shown a status line.
const STATUS_LINE_MAX: usize = 256;

/// Checks the server at `addr` as `spec` says, over TLS (with that client
/// config, verifying that name) when `tls` is given, within `timeout`.
pub(crate) async fn check(
    addr: SocketAddr,
    spec: &CheckSpec,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    timeout: Duration,
) -> Result<(), CheckError> {
    monoio::time::timeout(timeout, run(addr, spec, tls))
        .await
        .unwrap_or(Err(CheckError::Timeout(timeout)))
}

async fn run(
    addr: SocketAddr,
    spec: &CheckSpec,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
) -> Result<(), CheckError> {
    let tcp = TcpStream::connect_addr(addr)
        .await
        .map_err(CheckError::Connect)?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => exchange(tcp, addr, spec).await,
        Some((config, name)) => {
            let session = ClientConnection::new(config, name).map_err(CheckError::Session)?;
            let mut stream = TlsStream::new(tcp, session);
            stream.handshake().await.map_err(CheckError::Handshake)?;
            exchange(stream, addr, spec).await
        }
    }
}

/// Sends the request and matches the status (nothing more for a TCP check).
async fn exchange<S>(mut io: S, addr: SocketAddr, spec: &CheckSpec) -> Result<(), CheckError>
where
    S: AsyncReadRent + AsyncWriteRent,
{
    let CheckSpec::Http {
        method,
        path,
        host,
        expect,
    } = spec
    else {
        return Ok(());
    };
    let host = match host {
        Some(h) => h.clone(),
        None => addr.to_string(),
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringway-health\r\nConnection: close\r\n\r\n"
    );
    let (res, _) = io.write_all(request.into_bytes()).await;
    res.map_err(CheckError::Io)?;
    let status = read_status(&mut io).await?;
    let wanted = if expect.is_empty() {
        (200..=399).contains(&status)
    } else {
        expect.iter().any(|r| r.contains(&status))
    };
    if wanted {
        Ok(())
    } else {
        Err(CheckError::Status(status))
    }
}

/// Reads until the status code is known.
async fn read_status<S: AsyncReadRent>(io: &mut S) -> Result<u16, CheckError> {
    let mut seen = Vec::with_capacity(STATUS_LINE_MAX);
    let mut chunk = Vec::with_capacity(STATUS_LINE_MAX);
    loop {
        if let Some(status) = status_line(&seen)? {
            return Ok(status);
        }
        let (res, back) = io.read(chunk).await;
        chunk = back;
        match res.map_err(CheckError::Io)? {
            0 => return Err(CheckError::Closed),
            n => seen.extend_from_slice(&chunk[..n]),
        }
        if seen.len() > STATUS_LINE_MAX {
            return Err(CheckError::Malformed);
        }
    }
}

/// The status code of `HTTP/1.x NNN`, once that much has arrived; an
/// error as soon as the bytes cannot start a status line.
fn status_line(buf: &[u8]) -> Result<Option<u16>, CheckError> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let head = &buf[..buf.len().min(PREFIX.len())];
    if head != &PREFIX[..head.len()] {
        return Err(CheckError::Malformed);
    }
    // "HTTP/1.1 200": the version's digit, a space, three digits.
    let Some(line) = buf.get(..12) else {
        return Ok(None);
    };
    let digits = &line[9..12];
    if !line[7].is_ascii_digit() || line[8] != b' ' || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CheckError::Malformed);
    }
    if buf.get(12).is_some_and(|&b| b != b' ' && b != b'\r') {
        return Err(CheckError::Malformed);
    }
    Ok(Some(
        digits
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')),
    ))
}

/// Servers that answer checks, for tests: real sockets on 127.0.0.1, one
/// thread per connection.
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Arc;

    /// Serves on a new port: reads each request head, then writes what
    /// `answer` gives and closes, or, for `None`, keeps the connection
    /// open without a word until the client leaves. With `tls`, speaks
    /// TLS first.
    pub(crate) fn serve(
        tls: Option<Arc<rustls::ServerConfig>>,
        answer: impl Fn() -> Option<&'static [u8]> + Send + Sync + 'static,
    ) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let answer = answer.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => converse(conn, &*answer),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).expect("session");
                        converse(rustls::StreamOwned::new(session, conn), &*answer);
                    }
                });
            }
        });
        addr
    }

    fn converse(mut io: impl Read + Write, answer: &dyn Fn() -> Option<&'static [u8]>) {
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match io.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        match answer() {
            Some(bytes) => {
                let _ = io.write_all(bytes);
                let _ = io.flush();
            }
            // Holds on until the client closes.
            None => while matches!(io.read(&mut buf), Ok(n) if n > 0) {},
        }
    }

    /// An address where nothing listens (bound, then closed).
    pub(crate) fn refused_addr() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("address");
        drop(l);
        addr
    }

    pub(crate) const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    pub(crate) const ERROR: &[u8] =
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
}

#[cfg(test)]
mod tests {
    use super::test_server::{refused_addr, serve, ERROR, OK};
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn http(expect: Vec<RangeInclusive<u16>>) -> CheckSpec {
        CheckSpec::Http {
            method: "GET".into(),
            path: "/health".into(),
            host: None,
            expect,
        }
    }

    /// Runs `f` on the epoll driver and, where the kernel has it, on
    /// io_uring.
    fn on_both_drivers<F: std::future::Future<Output = ()>>(f: impl Fn() -> F) {
        let mut legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("epoll runtime");
        legacy.block_on(f());
        if let Ok(mut uring) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
        {
            uring.block_on(f());
        }
    }

    #[test]
    fn status_lines() {
        for (bytes, want) in [
            (&b""[..], Ok(None)),
            (b"HTTP/1.1 2", Ok(None)),
            (b"HTTP/1.1 200", Ok(Some(200))),
            (b"HTTP/1.1 204 No Content\r\n", Ok(Some(204))),
            (b"HTTP/1.0 503\r\n", Ok(Some(503))),
            (b"HTTP/1.1 200 ", Ok(Some(200))),
            (b"HTTP/2 200 OK", Err(())),
            (b"SSH-2.0-Open", Err(())),
            (b"HTTP/1.1 20x OK", Err(())),
            (b"HTTP/1.1 2000 OK", Err(())),
        ] {
            let got = status_line(bytes).map_err(|_| ());
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn a_200_passes_and_a_500_fails_when_2xx_or_3xx_is_expected() {
        let ok = serve(None, || Some(OK));
        let error = serve(None, || Some(ERROR));
        on_both_drivers(|| async move {
            let spec = http(vec![200..=299, 300..=399]);
            assert!(check(ok, &spec, None, TIMEOUT).await.is_ok());
            assert!(matches!(
                check(error, &spec, None, TIMEOUT).await,
                Err(CheckError::Status(500))
            ));
            // The default is 2xx and 3xx; a 500 may be expected.
            assert!(check(ok, &http(vec![]), None, TIMEOUT).await.is_ok());
            assert!(check(error, &http(vec![500..=500]), None, TIMEOUT)
                .await
                .is_ok());
        });
    }

    #[test]
    fn the_request_names_method_path_and_host() {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut conn in listener.incoming().flatten() {
                let mut got = Vec::new();
                let mut buf = [0u8; 512];
                while !got.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(OK);
                let _ = tx.send(got);
            }
        });
        on_both_drivers(|| async move {
            let spec = CheckSpec::Http {
                method: "HEAD".into(),
                path: "/ready?full=1".into(),
                host: Some("app.internal".into()),
                expect: vec![],
            };
            check(addr, &spec, None, TIMEOUT).await.expect("passes");
            check(addr, &http(vec![]), None, TIMEOUT)
                .await
                .expect("passes");
        });
        let first = rx.recv().expect("a request");
        assert_eq!(
            String::from_utf8_lossy(&first),
            "HEAD /ready?full=1 HTTP/1.1\r\nHost: app.internal\r\nUser-Agent: ringway-health\r\nConnection: close\r\n\r\n"
        );
        let second = String::from_utf8(rx.recv().expect("a request")).expect("text");
        assert!(
            second.starts_with(&format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n")),
            "{second}"
        );
    }

    #[test]
    fn a_refused_connection_fails() {
        let addr = refused_addr();
        on_both_drivers(|| async move {
            for spec in [http(vec![]), CheckSpec::Tcp] {
                assert!(matches!(
                    check(addr, &spec, None, TIMEOUT).await,
                    Err(CheckError::Connect(_))
                ));
            }
        });
    }

    #[test]
    fn a_server_that_never_answers_fails_at_the_timeout() {
        let silent = serve(None, || None);
        on_both_drivers(|| async move {
            let timeout = Duration::from_millis(100);
            assert!(matches!(
                check(silent, &http(vec![]), None, timeout).await,
                Err(CheckError::Timeout(t)) if t == timeout
            ));
        });
    }

    #[test]
    fn garbage_and_early_close_fail() {
        let garbage = serve(None, || Some(b"SSH-2.0-OpenSSH_9.6\r\n"));
        let closes = serve(None, || Some(b""));
        on_both_drivers(|| async move {
            assert!(matches!(
                check(garbage, &http(vec![]), None, TIMEOUT).await,
                Err(CheckError::Malformed)
            ));
            assert!(matches!(
                check(closes, &http(vec![]), None, TIMEOUT).await,
                Err(CheckError::Closed)
            ));
        });
    }

    #[test]
    fn a_tcp_check_passes_on_connect() {
        // Answers garbage to anything: a TCP check does not ask.
        let addr = serve(None, || Some(b"garbage"));
        on_both_drivers(|| async move {
            assert!(check(addr, &CheckSpec::Tcp, None, TIMEOUT).await.is_ok());
        });
    }

    /// A server config for "localhost" with a fresh self-signed
    /// certificate, and a client config that trusts it.
    fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<ClientConfig>) {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let cert = CertificateDer::from(made.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).expect("root");
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    #[test]
    fn a_tls_check_verifies_the_server_and_reads_its_answer() {
        let (server, client) = tls_pair();
        let (_, stranger) = tls_pair();
        let ok = serve(Some(server.clone()), || Some(OK));
        let error = serve(Some(server), || Some(ERROR));
        on_both_drivers(|| {
            let (client, stranger) = (client.clone(), stranger.clone());
            async move {
                let name = ServerName::try_from("localhost").expect("name");
                let tls = || Some((client.clone(), name.clone()));
                assert!(check(ok, &http(vec![]), tls(), TIMEOUT).await.is_ok());
                assert!(check(ok, &CheckSpec::Tcp, tls(), TIMEOUT).await.is_ok());
                assert!(matches!(
                    check(error, &http(vec![]), tls(), TIMEOUT).await,
                    Err(CheckError::Status(500))
                ));
                // A certificate the client does not trust fails the check.
                let untrusted = Some((stranger.clone(), name.clone()));
                assert!(matches!(
                    check(ok, &http(vec![]), untrusted, TIMEOUT).await,
                    Err(CheckError::Handshake(_))
                ));
            }
        });
    }
}
