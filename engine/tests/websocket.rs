//! WebSocket through the gateway, with a real client and server on both
//! ends (tungstenite): the upgrade forwarded, the 101 relayed through the
//! response stage, then echo, a large message, ping/pong and the close
//! handshake through the tunnel; 1,000 tunnels open at once; the idle
//! timeout, `max-tunnels`, a refused upgrade, a route without `upgrades`,
//! auth on the upgrade request, a reload and a drain while a tunnel is
//! open. Every test runs on both drivers.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringway::Format;
use support::process::ADMIN;
use support::*;
use tungstenite::handshake::server::{Request, Response as WsResponse};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{HandshakeError, Message, WebSocket};

/// A request head's fields, names lower-case.
type Head = Vec<(String, String)>;

/// A WebSocket echo server on 127.0.0.1:0, a thread per connection:
/// text and binary messages come back as they went, pings are answered
/// (by tungstenite), and the close code each client sent is recorded.
struct EchoServer {
    addr: SocketAddr,
    /// Handshakes completed.
    accepted: Arc<AtomicUsize>,
    /// The request heads seen, lower-case names.
    heads: Arc<Mutex<Vec<Head>>>,
    /// Close codes received from clients.
    closes: mpsc::Receiver<u16>,
}

impl EchoServer {
    fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (tx, closes) = mpsc::channel();
        let (count, seen) = (accepted.clone(), heads.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (count, seen, tx) = (count.clone(), seen.clone(), tx.clone());
                thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn(move || echo(stream, &count, &seen, &tx))
                    .expect("spawn");
            }
        });
        EchoServer {
            addr,
            accepted,
            heads,
            closes,
        }
    }

    fn last_head(&self) -> Head {
        self.heads
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a head")
    }
}

// tungstenite's handshake callback returns its error response by value.
#[allow(clippy::result_large_err)]
fn echo(
    stream: TcpStream,
    count: &AtomicUsize,
    seen: &Mutex<Vec<Head>>,
    closes: &mpsc::Sender<u16>,
) {
    let record = |req: &Request, resp: WsResponse| {
        let head = req
            .headers()
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect();
        seen.lock().expect("lock").push(head);
        // An upstream that sets its own request ID on the 101: the client
        // must still get exactly one, the gateway's.
        let mut resp = resp;
        resp.headers_mut().insert(
            "x-request-id",
            tungstenite::http::HeaderValue::from_static("set-by-the-upstream"),
        );
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, record) else {
        return;
    };
    count.fetch_add(1, Ordering::SeqCst);
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(Message::Close(frame)) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                let _ = closes.send(code);
                // tungstenite answers the close; drive it out.
                let _ = ws.flush();
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

type Client = WebSocket<TcpStream>;
/// The 101 a client got.
type Switched = tungstenite::handshake::client::Response;

/// Opens a WebSocket to `path` on the gateway; the 101's head comes back
/// with it. `extra` headers go on the upgrade request.
fn connect(gw: SocketAddr, path: &str, extra: &[(&str, &str)]) -> (Client, Switched) {
    match try_connect(gw, path, extra) {
        Ok(ok) => ok,
        Err(status) => panic!("upgrade refused with {status}"),
    }
}

/// Like [`connect`]; `Err` holds the status of an answer that was not 101.
fn try_connect(
    gw: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<(Client, Switched), u16> {
    use tungstenite::client::IntoClientRequest;
    let stream = TcpStream::connect(gw).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut req = format!("ws://{gw}{path}")
        .into_client_request()
        .expect("request");
    for (n, v) in extra {
        let name = tungstenite::http::HeaderName::from_bytes(n.as_bytes()).expect("name");
        req.headers_mut()
            .insert(name, v.parse().expect("header value"));
    }
    match tungstenite::client(req, stream) {
        Ok(ok) => Ok(ok),
        Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// Sends `m` and reads the next data message.
fn round_trip(ws: &mut Client, m: Message) -> Message {
    ws.send(m).expect("send");
    loop {
        match ws.read().expect("read") {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            _ => continue,
        }
    }
}

/// A gateway proxying `/ws/` to `server` with `keys` on the route, and
/// `/hi` answered by itself with `hi`.
fn gateway(server: SocketAddr, keys: &str, top: &str, hi: &str, driver: &str) -> TestGateway {
    TestGateway::start(&config(server, keys, top, hi), driver)
}

fn config(server: SocketAddr, keys: &str, top: &str, hi: &str) -> String {
    format!(
        "workers = 2\n{top}\n[[upstreams]]\nname = \"ws\"\nservers = [\"{server}\"]\n\
         [[routes]]\nname = \"ws\"\npath-prefix = \"/ws/\"\nupstream = \"ws\"\n{keys}\n\
         [[routes]]\nname = \"hi\"\npath = \"/hi\"\n[routes.respond]\nbody = \"{hi}\"\n"
    )
}

const UPGRADES: &str = "upgrades = [\"websocket\"]";

#[test]
fn echo_large_messages_ping_and_close_pass_through_the_tunnel() {
    on_both_drivers(|| {
        let server = EchoServer::start();
        let records = Records::default();
        let gw = TestGateway::start_with(
            &config(server.addr, UPGRADES, "", "hi"),
            driver(),
            records.hooks(),
        );
        let (mut ws, resp) = connect(gw.addr, "/ws/echo", &[]);
        // The 101 passed the response stage, and the upstream was asked
        // to switch with the client's own key.
        assert_eq!(resp.status().as_u16(), 101);
        let ids: Vec<_> = resp.headers().get_all("x-request-id").iter().collect();
        assert_eq!(ids.len(), 1, "one X-Request-Id on the 101: {ids:?}");
        let id = resp.headers()["x-request-id"].to_str().expect("ascii");
        assert_eq!(id.len(), 32, "{id}");
        let head = server.last_head();
        let field = |n: &str| head.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(field("upgrade"), Some("websocket"));
        assert_eq!(field("connection"), Some("upgrade"));
        assert_eq!(field("x-request-id"), Some(id));
        assert!(field("sec-websocket-key").is_some());

        assert_eq!(
            round_trip(&mut ws, Message::text("hello")),
            Message::text("hello")
        );
        let big: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        assert_eq!(
            round_trip(&mut ws, Message::binary(big.clone())),
            Message::binary(big)
        );
        // Ping: the server's pong comes back with the payload.
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .expect("ping");
        let pong = loop {
            match ws.read().expect("read") {
                Message::Pong(p) => break p,
                _ => continue,
            }
        };
        assert_eq!(&pong[..], b"are you there");
        assert!(gw.totals().tunnels_open >= 1);

        // The close handshake: each end sees the other's close frame.
        ws.close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "bye".into(),
        }))
        .expect("close");
        let answered = loop {
            match ws.read() {
                Ok(Message::Close(f)) => break f.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(e) => panic!("no close frame came back: {e}"),
            }
        };
        assert_eq!(answered, Some(4000), "the server answered the close");
        let got = server
            .closes
            .recv_timeout(Duration::from_secs(10))
            .expect("server saw the close");
        assert_eq!(got, 4000);
        // The server ends the TCP connection, and the client sees the end.
        loop {
            match ws.read() {
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("unexpected end: {e}"),
            }
        }
        drop(ws);

        // One log record for the whole tunnel, with its bytes.
        let r = records.nth(1);
        assert_eq!(r.status, 101);
        assert_eq!(r.request_id, id);
        assert!(r.bytes_in > 4 << 20, "bytes_in {}", r.bytes_in);
        assert!(r.bytes_out > 4 << 20, "bytes_out {}", r.bytes_out);
        gw.wait_for("the tunnel counted closed", |t| t.tunnels_open == 0);
        let t = gw.totals();
        assert_eq!(t.tunnels_opened, 1);
        assert!(t.tunnel_bytes_up > 4 << 20, "{}", t.tunnel_bytes_up);
        assert!(t.tunnel_bytes_down > 4 << 20, "{}", t.tunnel_bytes_down);
        assert_eq!(t.tunnels_idle_closed, 0);
    });
}

/// Raises the soft limit on open files to the hard one: 1,000 tunnels
/// hold 4,000 descriptors in this process (client, both of the gateway's
/// ends, the server).
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `lim`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

#[test]
fn a_thousand_tunnels_are_open_at_once_and_each_echoes() {
    const N: usize = 1000;
    let limit = raise_nofile();
    assert!(
        limit >= 4 * N as u64 + 500,
        "RLIMIT_NOFILE {limit} is too low"
    );
    on_both_drivers(|| {
        let server = EchoServer::start();
        let gw = gateway(server.addr, UPGRADES, "", "hi", driver());
        let mut clients: Vec<Client> = (0..N)
            .map(|_| connect(gw.addr, "/ws/many", &[]).0)
            .collect();
        gw.wait_for("every tunnel counted open", |t| t.tunnels_open == N as u64);
        wait_until("every handshake counted", || {
            server.accepted.load(Ordering::SeqCst) == N
        });
        for (i, ws) in clients.iter_mut().enumerate() {
            ws.send(Message::text(format!("n{i}"))).expect("send");
        }
        for (i, ws) in clients.iter_mut().enumerate() {
            let m = loop {
                match ws.read().expect("read") {
                    m @ Message::Text(_) => break m,
                    _ => continue,
                }
            };
            assert_eq!(m, Message::text(format!("n{i}")));
        }
        drop(clients);
        gw.wait_for("every tunnel closed", |t| t.tunnels_open == 0);
        assert_eq!(gw.totals().tunnels_opened, N as u64);
    });
}

#[test]
fn an_idle_tunnel_is_closed_after_its_timeout() {
    on_both_drivers(|| {
        let server = EchoServer::start();
        let keys = format!("{UPGRADES}\ntunnel-idle-timeout = \"1s\"");
        let gw = gateway(server.addr, &keys, "", "hi", driver());
        let (mut ws, _) = connect(gw.addr, "/ws/idle", &[]);
        // Traffic keeps it open past one timeout.
        let start = Instant::now();
        let mut quiet = start;
        while start.elapsed() < Duration::from_millis(1500) {
            thread::sleep(Duration::from_millis(200));
            assert_eq!(round_trip(&mut ws, Message::text("x")), Message::text("x"));
            quiet = Instant::now();
        }
        // Then silence closes it: the client sees the connection end.
        let ended = ws.read();
        assert!(
            matches!(
                ended,
                Err(tungstenite::Error::Protocol(_)) | Err(tungstenite::Error::Io(_))
            ),
            "{ended:?}"
        );
        let took = quiet.elapsed();
        assert!(took >= Duration::from_millis(900), "closed after {took:?}");
        assert!(took < Duration::from_secs(10), "closed after {took:?}");
        gw.wait_for("counted idle", |t| t.tunnels_idle_closed == 1);
        assert_eq!(gw.totals().tunnels_open, 0);
    });
}

#[test]
fn max_tunnels_caps_open_tunnels_with_503() {
    on_both_drivers(|| {
        let server = EchoServer::start();
        let keys = format!("{UPGRADES}\nmax-tunnels = 2");
        let gw = gateway(server.addr, &keys, "", "hi", driver());
        let (a, _) = connect(gw.addr, "/ws/a", &[]);
        let (_b, _) = connect(gw.addr, "/ws/b", &[]);
        assert_eq!(try_connect(gw.addr, "/ws/c", &[]).err(), Some(503));
        wait_until("two handshakes", || {
            server.accepted.load(Ordering::SeqCst) == 2
        });
        gw.wait_for("the refusal counted", |t| {
            (t.tunnels_refused, t.refused_503) == (1, 1)
        });
        drop(a);
        gw.wait_for("one tunnel closed", |t| t.tunnels_open == 1);
        let (mut c, _) = connect(gw.addr, "/ws/c", &[]);
        assert_eq!(round_trip(&mut c, Message::text("c")), Message::text("c"));
    });
}

#[test]
fn an_upstream_that_refuses_the_upgrade_has_its_answer_relayed() {
    on_both_drivers(|| {
        let up = TestUpstream::start(|_| Reply::Raw(response(403, "no websockets here")));
        let gw = gateway(up.addr, UPGRADES, "", "hi", driver());
        assert_eq!(try_connect(gw.addr, "/ws/no", &[]).err(), Some(403));
        let seen = up.last();
        assert_eq!(seen.header("upgrade"), Some("websocket"));
        assert_eq!(seen.header("connection"), Some("upgrade"));
        // Over a raw connection: the body is relayed and the connection
        // stays usable, as for any answer.
        let mut c = gw.client();
        c.send(
            b"GET /ws/no HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        let r = c.read_response(false).expect("answer");
        assert_eq!((r.status, r.text()), (403, "no websockets here".into()));
        assert_eq!(c.get("/hi").text(), "hi");
        assert_eq!(gw.totals().tunnels_opened, 0);
    });
}

#[test]
fn a_route_without_upgrades_strips_the_upgrade() {
    on_both_drivers(|| {
        let up = TestUpstream::ok("plain");
        let gw = gateway(up.addr, "", "", "hi", driver());
        let mut c = gw.client();
        c.send(
            b"GET /ws/plain HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        let r = c.read_response(false).expect("answer");
        assert_eq!((r.status, r.text()), (200, "plain".into()));
        let seen = up.last();
        assert!(!seen.has("upgrade"), "{seen:?}");
        assert!(!seen.has("connection"), "{seen:?}");
        // And a protocol the route does not list is stripped the same way.
        let gw = gateway(up.addr, "upgrades = [\"x-other\"]", "", "hi", driver());
        assert_eq!(try_connect(gw.addr, "/ws/other", &[]).err(), Some(200));
        assert!(!up.last().has("upgrade"));
        assert_eq!(gw.totals().tunnels_opened, 0);
    });
}

#[test]
fn the_upgrade_request_passes_auth_first() {
    on_both_drivers(|| {
        let server = EchoServer::start();
        let top = "[[consumers]]\nname = \"alice\"\napi-keys = [\"plain:ws-key-for-tests-0123\"]\n\
                   [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\nheader = \"x-api-key\"\n";
        let keys = format!("{UPGRADES}\nauth = [\"keys\"]");
        let gw = gateway(server.addr, &keys, top, "hi", driver());
        assert_eq!(try_connect(gw.addr, "/ws/auth", &[]).err(), Some(401));
        assert_eq!(
            try_connect(
                gw.addr,
                "/ws/auth",
                &[("x-api-key", "wrong-key-0000000000")]
            )
            .err(),
            Some(401)
        );
        assert_eq!(
            server.accepted.load(Ordering::SeqCst),
            0,
            "nothing reached it"
        );
        let (mut ws, _) = connect(
            gw.addr,
            "/ws/auth",
            &[("x-api-key", "ws-key-for-tests-0123")],
        );
        assert_eq!(
            round_trip(&mut ws, Message::text("in")),
            Message::text("in")
        );
        let head = server.last_head();
        assert!(
            head.iter().any(|(k, v)| k == "x-consumer" && v == "alice"),
            "{head:?}"
        );
        assert!(
            !head.iter().any(|(k, _)| k == "x-api-key"),
            "credential removed"
        );
    });
}

#[test]
fn a_tunnel_keeps_working_across_a_reload() {
    on_both_drivers(|| {
        let server = EchoServer::start();
        let gw = gateway(server.addr, UPGRADES, "", "one", driver());
        let (mut ws, _) = connect(gw.addr, "/ws/r", &[]);
        assert_eq!(round_trip(&mut ws, Message::text("a")), Message::text("a"));
        let listener = "[[listeners]]\naddress = \"127.0.0.1:0\"\n";
        let next = format!(
            "driver = \"{}\"\n{}{listener}{ADMIN}",
            driver(),
            config(server.addr, UPGRADES, "", "two")
        );
        gw.handle()
            .reload_source(&next, Format::Toml)
            .expect("reload");
        assert_eq!(gw.client().get("/hi").text(), "two", "the reload took");
        assert_eq!(round_trip(&mut ws, Message::text("b")), Message::text("b"));
        // The new generation counts the open tunnel.
        assert_eq!(gw.totals().tunnels_open, 1);
        let (mut fresh, _) = connect(gw.addr, "/ws/r2", &[]);
        assert_eq!(
            round_trip(&mut fresh, Message::text("c")),
            Message::text("c")
        );
        assert_eq!(round_trip(&mut ws, Message::text("d")), Message::text("d"));
    });
}

#[test]
fn a_drain_gives_open_tunnels_the_drain_timeout_then_closes_them() {
    on_both_drivers(|| {
        let server = EchoServer::start();
        let gw = gateway(
            server.addr,
            UPGRADES,
            "drain-timeout = \"1s\"",
            "hi",
            driver(),
        );
        let (mut ws, _) = connect(gw.addr, "/ws/d", &[]);
        gw.server.as_ref().expect("running").begin_shutdown();
        // Still carried during the drain.
        assert_eq!(round_trip(&mut ws, Message::text("x")), Message::text("x"));
        let ended = ws.read();
        assert!(
            matches!(
                ended,
                Err(tungstenite::Error::Protocol(_)) | Err(tungstenite::Error::Io(_))
            ),
            "{ended:?}"
        );
        gw.wait_for("counted as drained", |t| t.tunnels_drain_closed == 1);
    });
}

#[test]
fn a_tunnel_runs_over_a_tls_listener() {
    on_both_drivers(|| {
        let server = EchoServer::start();
        let ca = support::tls::Ca::new("ws test CA");
        let (cert, key) = support::tls::write_pair("ws-localhost", &ca.issue(&["localhost"]));
        let top = format!(
            "[[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n\
             certificates = [{{ cert = \"{}\", key = \"{}\" }}]\n",
            cert.display(),
            key.display()
        );
        let gw = gateway(server.addr, UPGRADES, &top, "hi", driver());
        let tcp = TcpStream::connect(gw.addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let session =
            rustls::ClientConnection::new(support::tls::client(&ca, None), name).expect("session");
        let stream = rustls::StreamOwned::new(session, tcp);
        let (mut ws, resp) = tungstenite::client("ws://localhost/ws/tls", stream).expect("upgrade");
        assert_eq!(resp.status().as_u16(), 101);
        let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
        ws.send(Message::binary(big.clone())).expect("send");
        let back = loop {
            match ws.read().expect("read") {
                m @ Message::Binary(_) => break m,
                _ => continue,
            }
        };
        assert_eq!(back, Message::binary(big));
        ws.close(None).expect("close");
        while ws.read().is_ok() {}
        drop(ws);
        gw.wait_for("the tunnel closed", |t| {
            t.tunnels_open == 0 && t.tunnels_opened == 1
        });
    });
}
