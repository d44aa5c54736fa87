//! HTTP/1.1 details a client or an origin can lean on, over real sockets:
//! header names with underscores, trailer fields that may not be trailers,
//! a relayed response without Date, later HTTP/1.x minor versions, status
//! codes out of range, and the TLS alert for an unknown server name. Each
//! test names the RFC section it checks.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::tls::{client, write_pair, Ca};
use support::{driver, exchange, on_both_drivers, Reply, TestClient, TestGateway, TestUpstream};

/// Sends one raw request and reads the answer.
fn send(addr: SocketAddr, raw: &str) -> support::Response {
    let mut c = TestClient::connect(addr);
    c.send(raw.as_bytes());
    c.read_response(false).expect("a response")
}

/// Names of the header fields the upstream saw last.
fn names_seen(origin: &TestUpstream) -> Vec<String> {
    origin.last().headers.into_iter().map(|(k, _)| k).collect()
}

/// The gateway's second listener (the first is `gw.addr`).
fn second_listener(gw: &TestGateway) -> SocketAddr {
    gw.server.as_ref().expect("running").listen_addrs()[1]
}

#[test]
fn underscored_names_are_dropped_by_default() {
    on_both_drivers(underscored_names_are_dropped_by_default_body);
}

/// `underscores-in-headers = "drop"` (the default): no field whose name
/// holds `_` reaches the upstream, the managed spellings included, so a
/// CGI-style origin never reads a client's `X_Forwarded_For` as the
/// gateway's (RFC 9110 §7.6.3 for X-Forwarded-For's role; §5.1 field
/// names). Each is counted.
fn underscored_names_are_dropped_by_default_body() {
    let origin = TestUpstream::ok("hi");
    let gw = TestGateway::proxy_to(origin.addr, "", driver());
    let r = send(
        gw.addr,
        "GET /u HTTP/1.1\r\nHost: test\r\nX_Forwarded_For: 6.6.6.6\r\n\
         X-Forwarded_For: 7.7.7.7\r\nTransfer_Encoding: chunked\r\nX_Custom: a\r\n\
         X-Normal: b\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = origin.last();
    assert!(
        names_seen(&origin).iter().all(|n| !n.contains('_')),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-normal"), Some("b"));
    gw.wait_for("four fields counted", |t| t.headers_dropped_underscore == 4);
    let admin = gw.admin_addr();
    let metrics = exchange(
        admin,
        format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes(),
        1 << 22,
    );
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("\nringway_headers_dropped_total{reason=\"underscore\"} 4\n"),
        "{metrics}"
    );
}

#[test]
fn pass_keeps_underscores_but_never_managed_spellings() {
    on_both_drivers(pass_keeps_underscores_but_never_managed_spellings_body);
}

/// `underscores-in-headers = "pass"`: other names with `_` go through;
/// those whose dash spelling the gateway manages (framing, RFC 9112 §6;
/// forwarding fields, RFC 9110 §7.6; Forwarded, RFC 7239) never do.
fn pass_keeps_underscores_but_never_managed_spellings_body() {
    let origin = TestUpstream::ok("hi");
    let extra = "[[listeners]]\naddress = \"127.0.0.1:0\"\nunderscores-in-headers = \"pass\"\n";
    let gw = TestGateway::proxy_to(origin.addr, extra, driver());
    let r = send(
        gw.addr,
        "GET /p HTTP/1.1\r\nHost: test\r\nX_Custom: a\r\nX_Forwarded_For: 6.6.6.6\r\n\
         x_real_ip: 6.6.6.6\r\nContent_Length: 5\r\nX_Request_Id: mine\r\n\
         Forwarded_: x\r\nFORWARDED: for=6.6.6.6\r\nCONNECTION_: x\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = origin.last();
    assert_eq!(seen.header("x_custom"), Some("a"));
    // Names that only look alike stay.
    assert_eq!(seen.header("forwarded_"), Some("x"));
    assert_eq!(seen.header("connection_"), Some("x"));
    for gone in [
        "x_forwarded_for",
        "x_real_ip",
        "content_length",
        "x_request_id",
    ] {
        assert!(!seen.has(gone), "{gone} passed: {:?}", seen.headers);
    }
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_ne!(seen.header("x-request-id"), Some("mine"));
    gw.wait_for("four fields counted", |t| t.headers_dropped_underscore == 4);
}

#[test]
fn a_dropped_field_is_no_credential() {
    on_both_drivers(a_dropped_field_is_no_credential_body);
}

/// Auth reads the same fields the upstream gets: a key in a header whose
/// name holds `_` is refused where such names are dropped (RFC 9110 §11.6
/// credentials), and accepted, then stripped, where they pass.
fn a_dropped_field_is_no_credential_body() {
    let origin = TestUpstream::ok("hi");
    let toml = format!(
        "workers = 1\n\
         [[listeners]]\naddress = \"127.0.0.1:0\"\n\
         [[listeners]]\naddress = \"127.0.0.2:0\"\nunderscores-in-headers = \"pass\"\n\
         [[consumers]]\nname = \"alice\"\napi-keys = [\"plain:alice-key-0123\"]\n\
         [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\nheader = \"x_api_key\"\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nupstream = \"up\"\nauth = [\"keys\"]\n",
        origin.addr
    );
    let gw = TestGateway::start(&toml, driver());
    let request = "GET /k HTTP/1.1\r\nHost: test\r\nx_api_key: alice-key-0123\r\n\r\n";
    assert_eq!(send(gw.addr, request).status, 401);
    assert_eq!(origin.request_count(), 0);
    assert_eq!(send(second_listener(&gw), request).status, 200);
    assert!(!origin.last().has("x_api_key"), "the credential stays here");
}

/// A chunked request with these trailer lines.
fn chunked_request(trailers: &str) -> String {
    format!(
        "POST /t HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n0\r\n{trailers}\r\n"
    )
}

#[test]
fn trailer_fields_that_may_not_be_trailers_are_dropped() {
    on_both_drivers(trailer_fields_that_may_not_be_trailers_are_dropped_body);
}

/// RFC 9110 §6.5.1: framing, routing, authentication, request modifiers,
/// response controls, content metadata and hop-by-hop fields are not
/// processed as trailers; the gateway drops them in both directions and
/// passes the rest (a checksum, server timing), also when the trailer
/// section arrives in pieces.
fn trailer_fields_that_may_not_be_trailers_are_dropped_body() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nSet-Co";
    let origin = TestUpstream::start(move |s| {
        if s.method == "POST" {
            Reply::Raw(support::response(200, "ok"))
        } else {
            Reply::Then(
                head.to_vec(),
                Duration::from_millis(30),
                b"okie: s=1\r\nServer-Timing: app;dur=5\r\nContent-Length: 9\r\n\r\n".to_vec(),
            )
        }
    });
    let gw = TestGateway::proxy_to(origin.addr, "", driver());

    // Request trailers, to the upstream.
    let r = send(
        gw.addr,
        &chunked_request(
            "X-Checksum: abc\r\nContent-Type: text/evil\r\nHost: evil\r\n\
             Authorization: Basic eA==\r\nx_forwarded_for: 6.6.6.6\r\n",
        ),
    );
    assert_eq!(r.status, 200);
    let seen = origin.last();
    assert_eq!(seen.body, b"hello");
    assert_eq!(
        String::from_utf8_lossy(&seen.trailers),
        "X-Checksum: abc\r\n"
    );

    // A request without trailers is relayed as it was.
    assert_eq!(send(gw.addr, &chunked_request("")).status, 200);
    assert!(origin.last().trailers.is_empty());

    // Response trailers, to the client, split across reads.
    let raw = exchange(
        gw.addr,
        b"GET /r HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        1 << 16,
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("\r\n5\r\nhello\r\n0\r\nServer-Timing: app;dur=5\r\n\r\n"),
        "{text}"
    );
    gw.wait_for("six trailer fields counted", |t| {
        t.headers_dropped_trailer == 6
    });
}

#[test]
fn relayed_responses_without_date_get_one() {
    on_both_drivers(relayed_responses_without_date_get_one_body);
}

/// RFC 9110 §6.6.1: a recipient with a clock adds Date to a response it
/// forwards without one; an origin's own Date is kept, once.
fn relayed_responses_without_date_get_one_body() {
    const THEIRS: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    let origin = TestUpstream::start(|s| {
        if s.target == "/dated" {
            Reply::Raw(
                format!("HTTP/1.1 200 OK\r\nDate: {THEIRS}\r\nContent-Length: 2\r\n\r\nhi")
                    .into_bytes(),
            )
        } else {
            Reply::Raw(support::response(200, "hi"))
        }
    });
    let gw = TestGateway::proxy_to(origin.addr, "", driver());
    let mut c = gw.client();
    let r = c.get("/plain");
    assert_eq!(r.status, 200);
    let date = r.header("date").expect("a Date was added");
    let when = httpdate::parse_http_date(date).expect("an IMF-fixdate");
    let age = std::time::SystemTime::now()
        .duration_since(when)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "{date}");
    let r = c.get("/dated");
    let dates: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("date"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(dates, [THEIRS]);
}

#[test]
fn a_304_made_from_a_relayed_response_has_a_date() {
    on_both_drivers(a_304_made_from_a_relayed_response_has_a_date_body);
}

/// RFC 9110 §6.6.1 and §15.4.5: when the cache answers a client's
/// matching If-None-Match with 304 while it fetches the response, the 304
/// carries a Date although the origin sent none.
fn a_304_made_from_a_relayed_response_has_a_date_body() {
    let origin = TestUpstream::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nhi"
                .to_vec(),
        )
    });
    let toml = format!(
        "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"cached\"\nupstream = \"up\"\n[routes.cache]\n",
        origin.addr
    );
    let gw = TestGateway::start(&toml, driver());
    let r = send(
        gw.addr,
        "GET /c HTTP/1.1\r\nHost: test\r\nIf-None-Match: \"v1\"\r\n\r\n",
    );
    assert_eq!(r.status, 304);
    assert_eq!(origin.request_count(), 1);
    let date = r.header("date").expect("a Date on the 304");
    httpdate::parse_http_date(date).expect("an IMF-fixdate");
}

#[test]
fn later_http_1_minor_versions_are_http_1_1() {
    on_both_drivers(later_http_1_minor_versions_are_http_1_1_body);
}

/// RFC 9110 §2.5: a message in HTTP/1.2 (or any later 1.x) is handled as
/// HTTP/1.1, from a client (answered in HTTP/1.1, the connection kept) and
/// from an upstream.
fn later_http_1_minor_versions_are_http_1_1_body() {
    let origin = TestUpstream::start(|s| {
        if s.target == "/newer" {
            Reply::Raw(b"HTTP/1.3 200 OK\r\nContent-Length: 5\r\n\r\nnewer".to_vec())
        } else {
            Reply::Raw(support::response(200, "hi"))
        }
    });
    let gw = TestGateway::proxy_to(origin.addr, "", driver());
    let mut c = gw.client();
    for _ in 0..2 {
        c.send(b"GET /v HTTP/1.2\r\nHost: test\r\n\r\n");
        let r = c
            .read_response(false)
            .expect("answered on the same connection");
        assert_eq!((r.status, r.version), (200, 1));
        assert_eq!(r.text(), "hi");
    }
    assert_eq!(origin.last().version, 1);
    let r = c.get("/newer");
    assert_eq!((r.status, r.text().as_str()), (200, "newer"));
    // Another major version is still refused.
    let raw = exchange(gw.addr, b"GET /v HTTP/2.0\r\nHost: test\r\n\r\n", 1 << 16);
    assert!(
        raw.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn status_codes_out_of_range_are_bad_gateway_and_never_stored() {
    on_both_drivers(status_codes_out_of_range_are_bad_gateway_and_never_stored_body);
}

/// RFC 9110 §15: status codes are three digits from 100 to 599. Anything
/// else from an upstream is a bad response: 502, counted, never relayed
/// and never stored by the cache.
fn status_codes_out_of_range_are_bad_gateway_and_never_stored_body() {
    let origin = TestUpstream::start(|s| {
        let code = if s.target == "/low" { "099" } else { "600" };
        Reply::Raw(
            format!(
                "HTTP/1.1 {code} Odd\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nhi"
            )
            .into_bytes(),
        )
    });
    let toml = format!(
        "workers = 2\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nname = \"cached\"\nupstream = \"up\"\n[routes.cache]\n",
        origin.addr
    );
    let gw = TestGateway::start(&toml, driver());
    for path in ["/high", "/high", "/low"] {
        let r = gw.client().get(path);
        assert_eq!(r.status, 502, "{path}");
        assert_ne!(r.text(), "hi");
    }
    assert_eq!(
        origin.request_count(),
        3,
        "nothing was served from the cache"
    );
    gw.wait_for("three bad responses counted", |t| t.upstream_502 == 3);
    assert_eq!(gw.totals().cache_stored, 0);
}

#[test]
fn unknown_sni_is_refused_with_unrecognized_name() {
    on_both_drivers(unknown_sni_is_refused_with_unrecognized_name_body);
}

/// RFC 6066 §3: a server that does not recognise the name a client asked
/// for and refuses the handshake sends the fatal `unrecognized_name` alert
/// (112), over TLS 1.3 and 1.2 alike.
fn unknown_sni_is_refused_with_unrecognized_name_body() {
    let ca = Ca::new("Test CA");
    let (cert, key) = write_pair("harden-sni", &ca.issue(&["a.test"]));
    let origin = TestUpstream::ok("hi");
    let toml = format!(
        "workers = 1\n[[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n\
         certificates = [{{ cert = \"{}\", key = \"{}\" }}]\nunknown-sni = \"reject\"\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n[[routes]]\nupstream = \"up\"\n",
        cert.display(),
        key.display(),
        origin.addr
    );
    let gw = TestGateway::start(&toml, driver());
    let tls13 = client(&ca, None);
    let tls12 = tls12_client(&ca);
    for config in [tls13, tls12] {
        let err = match TestClient::connect_tls(gw.addr, config.clone(), "b.test") {
            Ok(_) => panic!("an unknown name was served"),
            Err(e) => e,
        };
        let tls = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .unwrap_or_else(|| panic!("not a TLS error: {err}"));
        assert_eq!(
            *tls,
            rustls::Error::AlertReceived(rustls::AlertDescription::UnrecognisedName)
        );
        // A known name still completes.
        let mut ok = TestClient::connect_tls(gw.addr, config, "a.test").expect("handshake");
        assert_eq!(ok.get("/").status, 200);
    }
    gw.wait_for("both refusals counted", |t| t.tls_failed_unknown_sni == 2);
}

/// A client trusting `ca` that speaks TLS 1.2 only.
fn tls12_client(ca: &Ca) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let der =
        rustls_pki_types::CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("CA PEM");
    roots.add(der).expect("CA");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}
