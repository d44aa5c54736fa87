//! TLS at the edge, against real clients: rustls (with its session cache),
//! curl and `openssl s_client`, and certificates made by a test CA.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::tls::{client, date_in, peer_names, write_pair, Ca};
use support::{driver, on_both_drivers, Reply, TestClient, TestGateway, TestUpstream, DRIVERS};

/// A gateway with one TLS listener (and the usual plain one first), in
/// front of `origin`; `tls` is the `[listeners.tls]` body, `routes` any
/// extra route keys.
fn gateway(origin: &TestUpstream, tls: &str, route: &str) -> (TestGateway, std::net::SocketAddr) {
    let toml = format!(
        "workers = 1\n[[listeners]]\naddress = \"127.0.0.1:0\"\n\
         [[listeners]]\naddress = \"127.0.0.2:0\"\n[listeners.tls]\n{tls}\n\
         [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\nupstream = \"up\"\n{route}\n",
        origin.addr
    );
    let gw = TestGateway::start(&toml, driver());
    let tls_addr = gw.server.as_ref().expect("running").listen_addrs()[1];
    (gw, tls_addr)
}

fn certs_line(pairs: &[(std::path::PathBuf, std::path::PathBuf)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(c, k)| {
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                c.display(),
                k.display()
            )
        })
        .collect();
    format!("certificates = [{}]", items.join(", "))
}

#[test]
fn sni_picks_the_certificate() {
    on_both_drivers(sni_picks_the_certificate_body);
}

fn sni_picks_the_certificate_body() {
    let ca = Ca::new("Test CA");
    let a = write_pair("sni-a", &ca.issue(&["a.test"]));
    let wild = write_pair("sni-wild", &ca.issue(&["*.wild.test"]));
    let origin = TestUpstream::ok("hi");
    let (gw, addr) = gateway(&origin, &certs_line(&[a, wild]), "");
    let config = client(&ca, None);
    let names = |sni: &str| {
        let c = TestClient::connect_tls(addr, config.clone(), sni).expect("handshake");
        peer_names(c.tls.as_ref().expect("tls"))
    };
    assert_eq!(names("a.test"), ["a.test"]);
    assert_eq!(names("x.wild.test"), ["*.wild.test"]);
    // Unknown names get the first (default) certificate, which the client
    // then refuses: it is not for that name.
    let unknown = TestClient::connect_tls(addr, config.clone(), "other.test");
    assert!(unknown.is_err());
    gw.wait_for("the client's refusal counted", |t| {
        t.tls_failed_rejected == 1
    });
    // HTTP over it, with ALPN.
    let mut c = TestClient::connect_tls(addr, config, "a.test").expect("handshake");
    assert_eq!(
        c.tls.as_ref().expect("tls").alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    for _ in 0..3 {
        let r = c.get("/x");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "hi");
    }
    assert_eq!(origin.last().header("x-forwarded-proto"), Some("https"));
    let t = gw.totals();
    assert!(t.tls_handshakes >= 3);
}

#[test]
fn unknown_sni_can_be_rejected() {
    on_both_drivers(unknown_sni_can_be_rejected_body);
}

fn unknown_sni_can_be_rejected_body() {
    let ca = Ca::new("Test CA");
    let a = write_pair("rej-a", &ca.issue(&["a.test"]));
    let origin = TestUpstream::ok("hi");
    let tls = format!("{}\nunknown-sni = \"reject\"", certs_line(&[a]));
    let (gw, addr) = gateway(&origin, &tls, "");
    let config = client(&ca, None);
    assert!(TestClient::connect_tls(addr, config.clone(), "a.test").is_ok());
    assert!(TestClient::connect_tls(addr, config, "b.test").is_err());
    gw.wait_for("unknown SNI counted", |t| t.tls_failed_unknown_sni == 1);
}

#[test]
fn a_second_connection_resumes() {
    on_both_drivers(a_second_connection_resumes_body);
}

fn a_second_connection_resumes_body() {
    let ca = Ca::new("Test CA");
    let a = write_pair("res-a", &ca.issue(&["a.test"]));
    let origin = TestUpstream::ok("hi");
    let (gw, addr) = gateway(&origin, &certs_line(&[a]), "");
    // One config: its session store carries the ticket or session id.
    let config = client(&ca, None);
    let mut first = TestClient::connect_tls(addr, config.clone(), "a.test").expect("first");
    assert_eq!(first.get("/").status, 200);
    let mut second = TestClient::connect_tls(addr, config, "a.test").expect("second");
    assert_eq!(
        second.tls.as_ref().expect("tls").handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    assert_eq!(second.get("/").status, 200);
    gw.wait_for("resumption counted", |t| t.tls_resumed >= 1);
}

#[test]
fn client_certificates_required_optional_and_bad() {
    on_both_drivers(client_certificates_required_optional_and_bad_body);
}

fn client_certificates_required_optional_and_bad_body() {
    let ca = Ca::new("Test CA");
    let clients_ca = Ca::new("Clients CA");
    let other_ca = Ca::new("Other CA");
    let server = write_pair("mtls-server", &ca.issue(&["a.test"]));
    let ca_file = support::tls::write("clients-ca.pem", &clients_ca.pem());
    let alice = clients_ca.issue(&["alice.clients.test"]);
    let mallory = other_ca.issue(&["mallory.test"]);
    let origin = TestUpstream::ok("hi");
    for mode in ["required", "optional"] {
        let tls = format!(
            "{}\n[listeners.tls.client-auth]\nmode = \"{mode}\"\nca = \"{}\"\n",
            certs_line(std::slice::from_ref(&server)),
            ca_file.display()
        );
        let (gw, addr) = gateway(&origin, &tls, "");
        // A good certificate: its subject goes upstream; a client's own
        // header of that name never does.
        let mut c = TestClient::connect_tls(addr, client(&ca, Some(&alice)), "a.test")
            .expect("handshake with a good certificate");
        c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Client-Subject: CN=forged\r\n\r\n");
        assert_eq!(c.read_response(false).expect("response").status, 200);
        assert_eq!(
            origin.last().header("x-client-subject"),
            Some("CN=alice.clients.test"),
            "{mode}"
        );
        // A certificate from another CA fails the handshake.
        let bad = TestClient::connect_tls(addr, client(&ca, Some(&mallory)), "a.test").and_then(
            |mut c| {
                // TLS 1.3 reports a refused client certificate on first read.
                c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
                c.read_response(false)
                    .map(|_| ())
                    .ok_or_else(|| std::io::Error::other("closed"))
            },
        );
        assert!(bad.is_err(), "{mode}: a certificate from another CA");
        // No certificate: refused when required, let through otherwise.
        let none = TestClient::connect_tls(addr, client(&ca, None), "a.test").and_then(|mut c| {
            c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
            c.read_response(false)
                .ok_or_else(|| std::io::Error::other("closed"))
        });
        match mode {
            "required" => assert!(none.is_err()),
            _ => {
                assert_eq!(none.expect("optional").status, 200);
                assert!(!origin.last().has("x-client-subject"));
            }
        }
        gw.wait_for("client-certificate failures counted", |t| {
            t.tls_failed_client_cert >= if mode == "required" { 2 } else { 1 }
        });
    }
}

#[test]
fn a_route_can_require_a_client_certificate() {
    on_both_drivers(a_route_can_require_a_client_certificate_body);
}

fn a_route_can_require_a_client_certificate_body() {
    let ca = Ca::new("Test CA");
    let clients_ca = Ca::new("Clients CA");
    let server = write_pair("req-server", &ca.issue(&["a.test"]));
    let ca_file = support::tls::write("req-clients-ca.pem", &clients_ca.pem());
    let origin = TestUpstream::ok("secret");
    let tls = format!(
        "{}\n[listeners.tls.client-auth]\nmode = \"optional\"\nca = \"{}\"\n",
        certs_line(&[server]),
        ca_file.display()
    );
    let (_gw, addr) = gateway(&origin, &tls, "require-client-cert = true");
    let mut anonymous = TestClient::connect_tls(addr, client(&ca, None), "a.test").expect("tls");
    assert_eq!(anonymous.get("/").status, 403);
    let bob = clients_ca.issue(&["bob.test"]);
    let mut c = TestClient::connect_tls(addr, client(&ca, Some(&bob)), "a.test").expect("tls");
    assert_eq!(c.get("/").text(), "secret");
}

#[test]
fn plain_http_redirects_and_tls_answers_carry_hsts() {
    on_both_drivers(plain_http_redirects_and_tls_answers_carry_hsts_body);
}

fn plain_http_redirects_and_tls_answers_carry_hsts_body() {
    let ca = Ca::new("Test CA");
    let a = write_pair("hsts-a", &ca.issue(&["a.test"]));
    let origin = TestUpstream::ok("hi");
    let (gw, addr) = gateway(
        &origin,
        &certs_line(&[a]),
        "redirect-https = true\nhttps-port = 8443\nhsts = \"max-age=31536000; includeSubDomains\"",
    );
    let r = gw.client().get("/path?q=1");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://test:8443/path?q=1"),
        "{r:?}"
    );
    let mut c = TestClient::connect_tls(addr, client(&ca, None), "a.test").expect("tls");
    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[test]
fn a_stalled_handshake_times_out() {
    on_both_drivers(a_stalled_handshake_times_out_body);
}

fn a_stalled_handshake_times_out_body() {
    let ca = Ca::new("Test CA");
    let a = write_pair("slow-a", &ca.issue(&["a.test"]));
    let origin = TestUpstream::ok("hi");
    let tls = format!("{}\nhandshake-timeout = \"1s\"", certs_line(&[a]));
    let (gw, addr) = gateway(&origin, &tls, "");
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    // The gateway closes the connection: EOF (or a reset).
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(15));
    gw.wait_for("timeout counted", |t| t.tls_failed_timeout == 1);
}

#[test]
fn certificates_reload_without_dropping_connections() {
    on_both_drivers(certificates_reload_without_dropping_connections_body);
}

fn certificates_reload_without_dropping_connections_body() {
    let ca = Ca::new("Test CA");
    let one = write_pair("swap-1", &ca.issue(&["a.test", "one.test"]));
    let two = write_pair("swap-2", &ca.issue(&["a.test", "two.test"]));
    let origin = TestUpstream::ok("hi");
    let config_for = |pair: &(std::path::PathBuf, std::path::PathBuf), listen: &str| {
        format!(
            "workers = 1\n[[listeners]]\naddress = \"{listen}\"\n[listeners.tls]\n{}\n\
             [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n[[routes]]\nupstream = \"up\"\n{}",
            certs_line(std::slice::from_ref(pair)),
            origin.addr,
            support::process::ADMIN
        )
    };
    let gw = TestGateway::start(&config_for(&one, "127.0.0.1:0"), driver());
    let addr = gw.addr;
    let config = client(&ca, None);
    let mut old = TestClient::connect_tls(addr, config.clone(), "a.test").expect("tls");
    assert_eq!(old.get("/").status, 200);
    assert!(peer_names(old.tls.as_ref().expect("tls")).contains(&"one.test".to_string()));
    // Same listener, new certificate file.
    let next = config_for(&two, "127.0.0.1:0");
    gw.handle()
        .reload_source(&next, ringway::Format::Toml)
        .unwrap_or_else(|e| panic!("reload: {e}\n{next}"));
    // The open connection keeps working; new ones see the new certificate.
    assert_eq!(old.get("/").status, 200);
    // A new client (no session to resume, which would keep the old chain).
    let fresh = TestClient::connect_tls(addr, client(&ca, None), "a.test").expect("tls");
    drop(config);
    assert!(peer_names(fresh.tls.as_ref().expect("tls")).contains(&"two.test".to_string()));
}

#[test]
fn bad_certificates_are_refused_with_their_path() {
    on_both_drivers(bad_certificates_are_refused_with_their_path_body);
}

fn bad_certificates_are_refused_with_their_path_body() {
    let ca = Ca::new("Test CA");
    let good = ca.issue(&["a.test"]);
    let other = ca.issue(&["b.test"]);
    let expired = ca.issue_with(&["old.test"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let (cert, _) = write_pair("bad-good", &good);
    let (_, wrong_key) = write_pair("bad-other", &other);
    let (old_cert, old_key) = write_pair("bad-expired", &expired);
    let missing = std::path::PathBuf::from("/nonexistent/cert.pem");
    let cases = [
        ((cert.clone(), wrong_key), "does not go with"),
        ((old_cert, old_key), "expired on"),
        ((missing, cert), "cannot read"),
    ];
    for (pair, reason) in cases {
        let toml = format!(
            "[[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n{}\n\
             [[routes]]\n[routes.respond]\nbody = \"x\"\n",
            certs_line(&[pair])
        );
        // `ringway validate` names the field and the reason, exit 1.
        let file = support::process::write_config(&format!("tls-bad-{}.toml", reason.len()), &toml);
        let out = Command::new(support::process::BIN)
            .arg("validate")
            .arg(&file)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{reason}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("listeners[0].tls.certificates[0].cert") && stderr.contains(reason),
            "{reason}: {stderr}"
        );
        let config = ringway_config::Config::from_toml_str(&toml).expect("valid shape");
        let err = match ringway::Server::start(config) {
            Ok(_) => panic!("started with a bad certificate ({reason})"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("listeners[0].tls.certificates[0].cert") && err.contains(reason),
            "{reason}: {err}"
        );
    }
}

#[test]
fn curl_and_openssl_speak_to_it() {
    on_both_drivers(curl_and_openssl_speak_to_it_body);
}

fn curl_and_openssl_speak_to_it_body() {
    let ca = Ca::new("Test CA");
    let a = write_pair("cli-a", &ca.issue(&["a.test"]));
    let ca_file = support::tls::write("cli-ca.pem", &ca.pem());
    let origin = TestUpstream::start(|_| Reply::Raw(support::response(200, "from origin")));
    let (_gw, addr) = gateway(&origin, &certs_line(&[a]), "");
    let out = Command::new("curl")
        .args(["-sS", "--http1.1", "--cacert"])
        .arg(&ca_file)
        .args([
            "--resolve",
            &format!("a.test:{}:{}", addr.port(), addr.ip()),
            &format!("https://a.test:{}/x", addr.port()),
            "-w",
            " %{http_version} %{ssl_verify_result}",
        ])
        .output()
        .expect("curl runs (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, "from origin 1.1 0");
    // openssl s_client: the handshake, the SNI-selected certificate and
    // ALPN as openssl reports them.
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-servername", "a.test", "-alpn", "http/1.1", "-CAfile"])
        .arg(&ca_file)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("subject=CN") && text.contains("a.test"),
        "{text}"
    );
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}

/// A gateway proxying to `origin` over TLS with these `[upstreams.tls]`
/// settings.
fn to_tls_origin(origin: &support::tls::TlsOrigin, upstream_tls: &str) -> TestGateway {
    let toml = format!(
        "workers = 1\n[[upstreams]]\nname = \"secure\"\nservers = [\"{}\"]\n\
         [upstreams.tls]\n{upstream_tls}\n[[routes]]\nupstream = \"secure\"\n",
        origin.addr
    );
    TestGateway::start(&toml, driver())
}

#[test]
fn upstream_tls_verifies_and_pools() {
    on_both_drivers(upstream_tls_verifies_and_pools_body);
}

fn upstream_tls_verifies_and_pools_body() {
    use std::sync::atomic::Ordering;
    let ca = Ca::new("Origin CA");
    let ca_file = support::tls::write("origin-ca.pem", &ca.pem());
    // A certificate for a name, and one for the bare IP.
    let named = support::tls::TlsOrigin::start(&ca.issue(&["origin.test"]), None);
    let gw = to_tls_origin(
        &named,
        &format!(
            "ca = \"{}\"\nserver-name = \"origin.test\"",
            ca_file.display()
        ),
    );
    let mut c = gw.client();
    for _ in 0..5 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "secure origin");
    }
    assert_eq!(named.requests.load(Ordering::SeqCst), 5);
    assert_eq!(
        named.connections.load(Ordering::SeqCst),
        1,
        "one pooled TLS connection"
    );
    assert_eq!(named.sni.lock().expect("lock")[0], "origin.test");

    let by_ip = support::tls::TlsOrigin::start(&ca.issue(&["127.0.0.1"]), None);
    let gw = to_tls_origin(&by_ip, &format!("ca = \"{}\"", ca_file.display()));
    assert_eq!(gw.client().get("/").status, 200);
}

#[test]
fn upstream_tls_refuses_a_bad_certificate() {
    on_both_drivers(upstream_tls_refuses_a_bad_certificate_body);
}

fn upstream_tls_refuses_a_bad_certificate_body() {
    let ca = Ca::new("Origin CA");
    let other = Ca::new("Other CA");
    let ca_file = support::tls::write("bad-origin-ca.pem", &ca.pem());
    let origin = support::tls::TlsOrigin::start(&other.issue(&["origin.test"]), None);
    let gw = to_tls_origin(
        &origin,
        &format!(
            "ca = \"{}\"\nserver-name = \"origin.test\"",
            ca_file.display()
        ),
    );
    assert_eq!(gw.client().get("/").status, 502);
    gw.wait_for("counted", |t| {
        t.upstream_tls_failures == 1 && t.upstream_502 >= 1
    });
    // The right CA, the wrong name: refused too.
    let wrong_name = support::tls::TlsOrigin::start(&ca.issue(&["elsewhere.test"]), None);
    let gw = to_tls_origin(
        &wrong_name,
        &format!(
            "ca = \"{}\"\nserver-name = \"origin.test\"",
            ca_file.display()
        ),
    );
    assert_eq!(gw.client().get("/").status, 502);
    // verify = false lets it through (with a warning at load).
    let gw = to_tls_origin(&origin, "verify = false\nserver-name = \"origin.test\"");
    assert_eq!(gw.client().get("/").status, 200);
}

#[test]
fn upstream_tls_presents_a_client_certificate() {
    on_both_drivers(upstream_tls_presents_a_client_certificate_body);
}

fn upstream_tls_presents_a_client_certificate_body() {
    use std::sync::atomic::Ordering;
    let ca = Ca::new("Origin CA");
    let clients = Ca::new("Gateway clients CA");
    let ca_file = support::tls::write("mtls-origin-ca.pem", &ca.pem());
    let origin = support::tls::TlsOrigin::start(&ca.issue(&["origin.test"]), Some(&clients));
    let (cert, key) = write_pair("gateway-client", &clients.issue(&["gateway.test"]));
    let gw = to_tls_origin(
        &origin,
        &format!(
            "ca = \"{}\"\nserver-name = \"origin.test\"\nclient-cert = \"{}\"\nclient-key = \"{}\"",
            ca_file.display(),
            cert.display(),
            key.display()
        ),
    );
    assert_eq!(gw.client().get("/").status, 200);
    assert_eq!(origin.connections.load(Ordering::SeqCst), 1);
    assert!(origin.client_certs.lock().expect("lock")[0]);
    // Without the client certificate the origin refuses the handshake.
    let gw = to_tls_origin(
        &origin,
        &format!(
            "ca = \"{}\"\nserver-name = \"origin.test\"",
            ca_file.display()
        ),
    );
    assert_eq!(gw.client().get("/").status, 502);
}

#[test]
fn the_binary_reports_certificates_warns_before_expiry_and_reloads_them_on_change() {
    on_both_drivers(
        the_binary_reports_certificates_warns_before_expiry_and_reloads_them_on_change_body,
    );
}

fn the_binary_reports_certificates_warns_before_expiry_and_reloads_them_on_change_body() {
    use support::process::{admin_call, write_config, Process, ADMIN, BIN};
    let ca = Ca::new("Test CA");
    let (y, m, d) = date_in(5);
    let soon = ca.issue_with(&["a.test", "soon.test"], |p| {
        p.not_after = rcgen::date_time_ymd(y, m, d);
    });
    let (cert, key) = write_pair("watched/site", &soon);
    let path = write_config(
        "watched-tls/ringway.toml",
        &format!(
            "workers = 1\n{ADMIN}[[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n\
             certificates = [{{ cert = \"{}\", key = \"{}\" }}]\n\
             [[routes]]\n[routes.respond]\nbody = \"ok\"\n",
            cert.display(),
            key.display()
        ),
    );
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path).arg("--watch");
    let p = Process::start(cmd);
    wait_until_logged(&p, "certificate expires soon");
    let (status, body) = admin_call(p.admin_addr(), "GET", "/status", &[], b"");
    assert_eq!(status, 200);
    let c = &body["tls"][0]["certificates"][0];
    assert_eq!(c["expires_soon"], true, "{body}");
    assert!(c["days_left"].as_i64().expect("days") <= 5, "{body}");
    assert_eq!(c["names"][1], "soon.test", "{body}");
    // Replace the files (rename over, as certificate tools do): new
    // connections get the new certificate without a reload command.
    let renewed = ca.issue(&["a.test", "renewed.test"]);
    let tmp_cert = support::tls::write("watched/site.pem.tmp", &renewed.cert);
    let tmp_key = support::tls::write("watched/site.key.tmp", &renewed.key);
    std::fs::rename(&tmp_key, &key).expect("rename key");
    std::fs::rename(&tmp_cert, &cert).expect("rename cert");
    support::wait_until("the new certificate is served", || {
        TestClient::connect_tls(p.addr, client(&ca, None), "a.test")
            .map(|c| peer_names(c.tls.as_ref().expect("tls")).contains(&"renewed.test".into()))
            .unwrap_or(false)
    });
}

fn wait_until_logged(p: &support::process::Process, text: &str) {
    support::wait_until(text, || p.logged(text));
}

#[test]
fn certificate_swaps_under_load_fail_no_request() {
    on_both_drivers(certificate_swaps_under_load_fail_no_request_body);
}

fn certificate_swaps_under_load_fail_no_request_body() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let ca = Ca::new("Test CA");
    let pairs = [
        write_pair("load-1", &ca.issue(&["a.test", "one.test"])),
        write_pair("load-2", &ca.issue(&["a.test", "two.test"])),
    ];
    let origin = TestUpstream::ok("hi");
    let config_for = |i: usize| {
        format!(
            "workers = 2\n[[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n{}\n\
             [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n[[routes]]\nupstream = \"up\"\n{}",
            certs_line(std::slice::from_ref(&pairs[i % 2])),
            origin.addr,
            support::process::ADMIN
        )
    };
    let gw = TestGateway::start(&config_for(0), driver());
    let addr = gw.addr;
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let (done, ok, failed) = (done.clone(), ok.clone(), failed.clone());
            let config = client(&ca, None);
            std::thread::spawn(move || {
                let mut keep: Option<TestClient> = None;
                while !done.load(Ordering::SeqCst) {
                    // Half keep their connection, half open one per request.
                    let reuse = k % 2 == 0;
                    let mut c = match keep.take() {
                        Some(c) if reuse => c,
                        _ => match TestClient::connect_tls(addr, config.clone(), "a.test") {
                            Ok(c) => c,
                            Err(_) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                        },
                    };
                    c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
                    match c.read_response(false) {
                        Some(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if reuse {
                        keep = Some(c);
                    }
                }
            })
        })
        .collect();
    for i in 1..=20 {
        let before = ok.load(Ordering::SeqCst);
        gw.handle()
            .reload_source(&config_for(i), ringway::Format::Toml)
            .expect("reload");
        support::wait_until("requests between reloads", || {
            ok.load(Ordering::SeqCst) >= before + 20
        });
    }
    done.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client");
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "failed requests");
    assert!(ok.load(Ordering::SeqCst) >= 400);
    // The last config (20, even) serves the first certificate.
    let fresh = TestClient::connect_tls(addr, client(&ca, None), "a.test").expect("tls");
    assert!(peer_names(fresh.tls.as_ref().expect("tls")).contains(&"one.test".to_string()));
}

#[test]
fn rsa_ecdsa_and_ed25519_certificates_serve() {
    on_both_drivers(rsa_ecdsa_and_ed25519_certificates_serve_body);
}

fn rsa_ecdsa_and_ed25519_certificates_serve_body() {
    let ca = Ca::new("Test CA");
    let kinds: [(&str, &'static rcgen::SignatureAlgorithm); 4] = [
        ("p256.test", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("p384.test", &rcgen::PKCS_ECDSA_P384_SHA384),
        ("ed25519.test", &rcgen::PKCS_ED25519),
        ("rsa.test", &rcgen::PKCS_RSA_SHA256),
    ];
    let pairs: Vec<_> = kinds
        .iter()
        .map(|(name, alg)| write_pair(&format!("kind-{name}"), &ca.issue_alg(&[name], alg)))
        .collect();
    let origin = TestUpstream::ok("hi");
    let (_gw, addr) = gateway(&origin, &certs_line(&pairs), "");
    for (name, _) in kinds {
        let mut c = TestClient::connect_tls(addr, client(&ca, None), name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(peer_names(c.tls.as_ref().expect("tls")), [name]);
        assert_eq!(c.get("/").status, 200, "{name}");
    }
}

#[test]
fn the_minimum_version_and_suites_are_enforced() {
    on_both_drivers(the_minimum_version_and_suites_are_enforced_body);
}

fn the_minimum_version_and_suites_are_enforced_body() {
    use std::sync::Arc;
    let ca = Ca::new("Test CA");
    let a = write_pair("ver-a", &ca.issue(&["a.test"]));
    let origin = TestUpstream::ok("hi");
    let tls12_client = |suites: Option<&[rustls::SupportedCipherSuite]>| {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(s) = suites {
            provider.cipher_suites = s.to_vec();
        }
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::from_pem_slice(
                    ca.pem().as_bytes(),
                )
                .expect("CA"),
            )
            .expect("root");
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[&rustls::version::TLS12])
                .expect("TLS 1.2")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    // Only TLS 1.3 allowed: a TLS 1.2 client is refused.
    let tls = format!(
        "{}\nmin-version = \"1.3\"",
        certs_line(std::slice::from_ref(&a))
    );
    let (gw, addr) = gateway(&origin, &tls, "");
    assert!(TestClient::connect_tls(addr, tls12_client(None), "a.test").is_err());
    assert!(TestClient::connect_tls(addr, client(&ca, None), "a.test").is_ok());
    gw.wait_for("counted", |t| t.tls_failed_incompatible == 1);
    // Suites narrowed to one: a client offering only another is refused.
    let tls = format!(
        "{}\ncipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\"]",
        certs_line(&[a])
    );
    let (_gw, addr) = gateway(&origin, &tls, "");
    let chacha =
        [rustls::crypto::aws_lc_rs::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256];
    assert!(TestClient::connect_tls(addr, tls12_client(Some(&chacha)), "a.test").is_err());
    let aes = [rustls::crypto::aws_lc_rs::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384];
    assert!(TestClient::connect_tls(addr, tls12_client(Some(&aes)), "a.test").is_ok());
}

#[test]
fn a_client_subject_cannot_inject_header_lines() {
    on_both_drivers(a_client_subject_cannot_inject_header_lines_body);
}

fn a_client_subject_cannot_inject_header_lines_body() {
    let ca = Ca::new("Test CA");
    let clients_ca = Ca::new("Clients CA");
    let server = write_pair("inject-server", &ca.issue(&["a.test"]));
    let ca_file = support::tls::write("inject-clients-ca.pem", &clients_ca.pem());
    let origin = TestUpstream::ok("hi");
    let tls = format!(
        "{}\n[listeners.tls.client-auth]\nmode = \"required\"\nca = \"{}\"\n",
        certs_line(&[server]),
        ca_file.display()
    );
    let (_gw, addr) = gateway(&origin, &tls, "");
    let evil = clients_ca.issue_with(&[], |p| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(
            rcgen::DnType::CommonName,
            rcgen::DnValue::Utf8String("eve\r\nX-Admin: 1, O=Admins".into()),
        );
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Staff");
    });
    let mut c = TestClient::connect_tls(addr, client(&ca, Some(&evil)), "a.test").expect("tls");
    assert_eq!(c.get("/").status, 200);
    let seen = origin.last();
    assert!(!seen.has("x-admin"), "{seen:?}");
    assert_eq!(
        seen.header("x-client-subject"),
        Some("O=Staff,CN=eve\\0D\\0AX-Admin: 1\\, O=Admins")
    );
}

#[test]
fn resumption_does_not_outlive_a_tighter_client_certificate_policy() {
    on_both_drivers(resumption_does_not_outlive_a_tighter_client_certificate_policy_body);
}

fn resumption_does_not_outlive_a_tighter_client_certificate_policy_body() {
    let ca = Ca::new("Test CA");
    let clients_ca = Ca::new("Clients CA");
    let server = write_pair("scope-server", &ca.issue(&["a.test"]));
    let ca_file = support::tls::write("scope-clients-ca.pem", &clients_ca.pem());
    let origin = TestUpstream::ok("hi");
    let config_for = |mode: &str| {
        format!(
            "workers = 1\n[[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n{}\n\
             [listeners.tls.client-auth]\nmode = \"{mode}\"\nca = \"{}\"\n\
             [[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n[[routes]]\nupstream = \"up\"\n{}",
            certs_line(std::slice::from_ref(&server)),
            ca_file.display(),
            origin.addr,
            support::process::ADMIN
        )
    };
    let gw = TestGateway::start(&config_for("optional"), driver());
    let anonymous = client(&ca, None);
    let mut first = TestClient::connect_tls(gw.addr, anonymous.clone(), "a.test").expect("tls");
    assert_eq!(
        first.get("/").status,
        200,
        "optional: no certificate needed"
    );
    gw.handle()
        .reload_source(&config_for("required"), ringway::Format::Toml)
        .expect("reload");
    // The client holds a ticket from before; it must not get in with it.
    let again = TestClient::connect_tls(gw.addr, anonymous, "a.test").and_then(|mut c| {
        c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
        c.read_response(false)
            .ok_or_else(|| std::io::Error::other("closed"))
    });
    assert!(
        again.is_err(),
        "resumed past the new policy: {:?}",
        again.map(|r| r.status)
    );
}

#[test]
fn cached_answers_are_kept_apart_by_scheme() {
    on_both_drivers(cached_answers_are_kept_apart_by_scheme_body);
}

fn cached_answers_are_kept_apart_by_scheme_body() {
    let ca = Ca::new("Test CA");
    let a = write_pair("scheme-a", &ca.issue(&["a.test"]));
    let origin = TestUpstream::start(|s| {
        let proto = s.header("x-forwarded-proto").unwrap_or("?").to_string();
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: {}\r\n\r\n{proto}",
                proto.len()
            )
            .into_bytes(),
        )
    });
    let (gw, addr) = gateway(&origin, &certs_line(&[a]), "[routes.cache]");
    assert_eq!(gw.client().get("/s").text(), "http");
    let mut c = TestClient::connect_tls(addr, client(&ca, None), "a.test").expect("tls");
    assert_eq!(c.get("/s").text(), "https");
    assert_eq!(gw.client().get("/s").text(), "http");
    assert_eq!(c.get("/s").text(), "https");
    assert_eq!(origin.request_count(), 2);
}

/// A TLS client that sends a request the gateway answers without reading
/// its body (so the gateway then lingers) and never reads the answer: the
/// answer's write stalls (no progress for `send-timeout`), and the TLS
/// close that begins the lingering close is a write that can never finish
/// either. The whole linger is bounded: the connection is closed anyway.
#[test]
fn a_stalled_tls_client_is_closed_after_a_bounded_linger() {
    for driver in DRIVERS {
        let ca = Ca::new("Linger CA");
        let pair = write_pair("linger", &ca.issue(&["linger.test"]));
        // Larger than every buffer on the way (the gateway's socket send
        // buffer grows to 4 MiB on loopback).
        let body = "x".repeat(8 << 20);
        let toml = format!(
            "workers = 1\n[limits]\nsend-timeout = \"300ms\"\n\
             [[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n{}\n\
             [[routes]]\n[routes.respond]\nbody = \"{body}\"\n",
            certs_line(&[pair])
        );
        let gw = TestGateway::start(&toml, driver);
        let addr = gw.server.as_ref().expect("running").listen_addrs()[0];

        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket
            .set_recv_buffer_size(4096)
            .expect("small receive buffer");
        socket.connect(&addr.into()).expect("connect");
        let mut stream: TcpStream = socket.into();
        let name = rustls_pki_types::ServerName::try_from("linger.test").expect("name");
        let mut tls = rustls::ClientConnection::new(client(&ca, None), name).expect("session");
        while tls.is_handshaking() {
            tls.complete_io(&mut stream).expect("handshake");
        }
        let mut s = rustls::Stream::new(&mut tls, &mut stream);
        use std::io::Write as _;
        s.write_all(
            b"POST / HTTP/1.1\r\nHost: linger.test\r\nExpect: 100-continue\r\n\
              Content-Length: 5\r\n\r\n",
        )
        .expect("send");
        s.flush().expect("flush");
        gw.wait_for("the request answered (or tried)", |t| t.requests == 1);
        // Held open and never read: the gateway must still let go.
        gw.wait_for("the stalled connection closed", |t| t.connections_open == 0);
        drop(stream);
    }
}
