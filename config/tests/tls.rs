//! TLS settings: `[listeners.tls]`, `[upstreams.tls]` and a route's HTTPS
//! keys: their defaults, what they convert to, each rule with the path it
//! reports, the warnings, and both formats written and read back.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use common::{assert_one_error, errors, valid, with_base};
use ringway_config::{
    CertificateFiles, ClientAuth, ClientAuthMode, Config, ListenerTls, TlsVersion, UnknownSni,
    UpstreamTls,
};

/// A certificate list that is valid on its own.
const CERT: &str = r#"certificates = [{ cert = "c.pem", key = "c.key" }]"#;

/// `listeners[1]`, an HTTPS listener whose `[listeners.tls]` holds `tls`.
fn listener(tls: &str) -> String {
    format!("[[listeners]]\naddress = \"127.0.0.1:8443\"\n[listeners.tls]\n{tls}\n")
}

/// `upstreams[1]`, named "secure", whose `[upstreams.tls]` holds `tls`.
fn upstream(tls: &str) -> String {
    format!(
        "[[upstreams]]\nname = \"secure\"\nservers = [\"10.0.0.1:443\"]\n[upstreams.tls]\n{tls}\n"
    )
}

/// `routes[1]`, proxying to "app", with `body` added.
fn route(body: &str) -> String {
    format!("[[routes]]\npath = \"/r\"\nupstream = \"app\"\n{body}\n")
}

/// `(case, tables appended to the base config, path, message fragment)`.
type Case<'a> = (&'a str, String, &'a str, &'a str);

fn run(cases: &[Case<'_>]) {
    for (case, tail, path, fragment) in cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }
}

#[test]
fn defaults() {
    let c = valid(&with_base(
        "",
        &format!(
            "{}{}{}",
            listener(CERT),
            upstream(""),
            route("redirect-https = false\nrequire-client-cert = false")
        ),
    ));
    assert_eq!(c.listeners[0].tls, None, "no [listeners.tls], plain HTTP");
    assert_eq!(
        c.listeners[1].tls,
        Some(ListenerTls {
            certificates: vec![CertificateFiles {
                cert: PathBuf::from("c.pem"),
                key: PathBuf::from("c.key"),
                names: vec![],
            }],
            unknown_sni: UnknownSni::Default,
            min_version: TlsVersion::Tls12,
            cipher_suites: vec![],
            handshake_timeout: Duration::from_secs(10),
            session_cache: 4096,
            session_tickets: true,
            ticket_lifetime: Duration::from_secs(6 * 3600),
            client_auth: None,
        })
    );
    assert_eq!(c.upstreams[0].tls, None, "no [upstreams.tls], plain TCP");
    assert_eq!(
        c.upstreams[1].tls,
        Some(UpstreamTls {
            ca: None,
            server_name: None,
            verify: true,
            client_cert: None,
            client_key: None,
            sni: true,
        })
    );
    for route in &c.routes {
        assert!(!route.redirect_https && !route.require_client_cert);
        assert_eq!((route.https_port, &route.hsts), (None, &None));
    }
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let auth = valid(&with_base(
        "",
        &listener(&format!(
            "{CERT}\n[listeners.tls.client-auth]\nmode = \"optional\"\nca = \"ca.pem\""
        )),
    ));
    let tls = auth.listeners[1].tls.as_ref().expect("tls");
    assert_eq!(
        tls.client_auth,
        Some(ClientAuth {
            mode: ClientAuthMode::Optional,
            ca: PathBuf::from("ca.pem"),
            subject_header: "x-client-subject".into(),
        })
    );
}

/// Every key set to something other than its default.
const EVERY_KEY: &str = r#"
[[listeners]]
name = "https"
address = "0.0.0.0:443"

[listeners.tls]
certificates = [
    { cert = "certs/example.com.pem", key = "/etc/ringway/example.com.key" },
    { cert = "../wild.pem", key = "wild.key", names = ["*.Example.ORG", "example.org"] },
]
unknown-sni = "reject"
min-version = "1.3"
cipher-suites = ["TLS13_CHACHA20_POLY1305_SHA256", "TLS13_AES_128_GCM_SHA256"]
handshake-timeout = "1500ms"
session-cache = 0
session-tickets = false
ticket-lifetime = "6h"

[listeners.tls.client-auth]
mode = "required"
ca = "certs/clients-ca.pem"
subject-header = "X-Client-DN"

[[upstreams]]
name = "secure"
servers = ["10.0.0.1:443"]

[upstreams.tls]
ca = "certs/internal-ca.pem"
server-name = "API.internal"
client-cert = "certs/gw.pem"
client-key = "certs/gw.key"
sni = false

[[upstreams]]
name = "by-address"
servers = ["10.0.0.2:443"]

[upstreams.tls]
server-name = "10.0.0.2"

[[routes]]
name = "secure"
upstream = "secure"
redirect-https = true
https-port = 8443
hsts = "max-age=31536000; includeSubDomains; preload"
require-client-cert = true

[[routes]]
name = "moved"
path = "/moved"
redirect-https = true
[routes.respond]
"#;

#[test]
fn every_key_converts_to_its_type() {
    let c = valid(EVERY_KEY);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let tls = c.listeners[0].tls.as_ref().expect("tls");
    // Paths as written, relative ones too: nothing resolves them.
    assert_eq!(
        tls.certificates,
        [
            CertificateFiles {
                cert: "certs/example.com.pem".into(),
                key: "/etc/ringway/example.com.key".into(),
                names: vec![],
            },
            CertificateFiles {
                cert: "../wild.pem".into(),
                key: "wild.key".into(),
                names: vec!["*.example.org".into(), "example.org".into()],
            },
        ]
    );
    assert_eq!(tls.unknown_sni, UnknownSni::Reject);
    assert_eq!(tls.min_version, TlsVersion::Tls13);
    assert_eq!(
        tls.cipher_suites,
        ["TLS13_CHACHA20_POLY1305_SHA256", "TLS13_AES_128_GCM_SHA256"]
    );
    assert_eq!(tls.handshake_timeout, Duration::from_millis(1500));
    assert_eq!(tls.session_cache, 0);
    assert!(!tls.session_tickets);
    assert_eq!(tls.ticket_lifetime, Duration::from_secs(6 * 3600));
    let auth = tls.client_auth.as_ref().expect("client-auth");
    assert_eq!(auth.mode, ClientAuthMode::Required);
    assert_eq!(auth.ca, PathBuf::from("certs/clients-ca.pem"));
    assert_eq!(auth.subject_header, "x-client-dn");

    assert_eq!(
        c.upstreams[0].tls,
        Some(UpstreamTls {
            ca: Some("certs/internal-ca.pem".into()),
            server_name: Some("api.internal".into()),
            verify: true,
            client_cert: Some("certs/gw.pem".into()),
            client_key: Some("certs/gw.key".into()),
            sni: false,
        })
    );
    let by_address = c.upstreams[1].tls.as_ref().expect("tls");
    assert_eq!(by_address.server_name.as_deref(), Some("10.0.0.2"));

    let secure = &c.routes[0];
    assert!(secure.redirect_https && secure.require_client_cert);
    assert_eq!(secure.https_port, Some(8443));
    assert_eq!(
        secure.hsts.as_deref(),
        Some("max-age=31536000; includeSubDomains; preload")
    );
    // A route answered by the gateway can redirect too.
    assert!(c.routes[1].redirect_https);
    assert_eq!(c.routes[1].https_port, None);
}

#[test]
fn every_cipher_suite_is_accepted_with_tls_1_2() {
    let all: Vec<String> = ListenerTls::CIPHER_SUITES
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    let c = valid(&with_base(
        "",
        &listener(&format!(
            "{CERT}\nmin-version = \"1.2\"\ncipher-suites = [{}]",
            all.join(", ")
        )),
    ));
    let tls = c.listeners[1].tls.as_ref().expect("tls");
    assert_eq!(tls.cipher_suites, ListenerTls::CIPHER_SUITES);
    // TLS 1.2 suites alone are fine when TLS 1.2 is allowed, and so are
    // TLS 1.3 suites alone.
    for only in [
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384",
    ] {
        valid(&with_base(
            "",
            &listener(&format!("{CERT}\ncipher-suites = [\"{only}\"]")),
        ));
    }
}

#[test]
fn listener_tls_rules() {
    let tls = |body: &str| listener(&format!("{CERT}\n{body}"));
    let certs = |list: &str| listener(&format!("certificates = [{list}]"));
    let auth = |body: &str| tls(&format!("[listeners.tls.client-auth]\n{body}"));
    run(&[
        (
            "no certificates",
            listener("unknown-sni = \"reject\""),
            "listeners[1].tls.certificates",
            "missing; list at least one certificate",
        ),
        (
            "empty certificates",
            certs(""),
            "listeners[1].tls.certificates",
            "must list at least one certificate",
        ),
        (
            "certificate without cert",
            certs(r#"{ key = "c.key" }"#),
            "listeners[1].tls.certificates[0].cert",
            "missing; the path of the PEM certificate chain",
        ),
        (
            "certificate without key",
            certs(r#"{ cert = "c.pem" }"#),
            "listeners[1].tls.certificates[0].key",
            "missing; the path of the certificate's PEM private key",
        ),
        (
            "empty cert path",
            certs(r#"{ cert = "c.pem", key = "c.key" }, { cert = "", key = "d.key" }"#),
            "listeners[1].tls.certificates[1].cert",
            "empty path",
        ),
        (
            "empty key path",
            certs(r#"{ cert = "c.pem", key = "" }"#),
            "listeners[1].tls.certificates[0].key",
            "empty path",
        ),
        (
            "certificate as a string",
            certs(r#""c.pem""#),
            "listeners[1].tls.certificates[0]",
            "invalid type: string \"c.pem\", expected a table",
        ),
        (
            "unknown certificate key",
            certs(r#"{ cert = "c.pem", key = "c.key", name = "a" }"#),
            "listeners[1].tls.certificates[0].name",
            "did you mean `names`?",
        ),
        (
            "empty names",
            certs(r#"{ cert = "c.pem", key = "c.key", names = [] }"#),
            "listeners[1].tls.certificates[0].names",
            "leave `names` out to serve the certificate for the DNS names it holds",
        ),
        (
            "IP as a name",
            certs(r#"{ cert = "c.pem", key = "c.key", names = ["a.example", "10.0.0.1"] }"#),
            "listeners[1].tls.certificates[0].names[1]",
            "\"10.0.0.1\" is an IP address, which SNI never carries",
        ),
        (
            "inner wildcard",
            certs(r#"{ cert = "c.pem", key = "c.key", names = ["a.*.example"] }"#),
            "listeners[1].tls.certificates[0].names[0]",
            "a wildcard may only be the whole first label",
        ),
        (
            "name with a port",
            certs(r#"{ cert = "c.pem", key = "c.key", names = ["a.example:443"] }"#),
            "listeners[1].tls.certificates[0].names[0]",
            "leave out the port",
        ),
        (
            "name twice in one certificate",
            certs(r#"{ cert = "c.pem", key = "c.key", names = ["a.example", "A.Example"] }"#),
            "listeners[1].tls.certificates[0].names[1]",
            "\"A.Example\" is already listed as certificates[0].names[0]",
        ),
        (
            "name in two certificates",
            certs(
                r#"{ cert = "c.pem", key = "c.key", names = ["*.example.org", "example.org"] },
                   { cert = "d.pem", key = "d.key" },
                   { cert = "e.pem", key = "e.key", names = ["b.example.org", "Example.org"] }"#,
            ),
            "listeners[1].tls.certificates[2].names[1]",
            "\"Example.org\" is already listed as certificates[0].names[1]; a name selects one certificate",
        ),
        (
            "unknown-sni word",
            tls("unknown-sni = \"drop\""),
            "listeners[1].tls.unknown-sni",
            "expected \"default\" or \"reject\", found \"drop\"",
        ),
        (
            "min-version as a number",
            tls("min-version = 1.2"),
            "listeners[1].tls.min-version",
            "write the version as a string: \"1.2\"",
        ),
        (
            "min-version 1.1",
            tls("min-version = \"1.1\""),
            "listeners[1].tls.min-version",
            "TLS 1.1 is deprecated (RFC 8996)",
        ),
        (
            "min-version unknown",
            tls("min-version = \"TLSv1.3\""),
            "listeners[1].tls.min-version",
            "expected \"1.2\" or \"1.3\", found \"TLSv1.3\"",
        ),
        (
            "unknown suite",
            tls("cipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS_RSA_WITH_AES_128_CBC_SHA\"]"),
            "listeners[1].tls.cipher-suites[1]",
            "unknown cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\"; use one of \
             TLS13_AES_256_GCM_SHA384, TLS13_AES_128_GCM_SHA256, TLS13_CHACHA20_POLY1305_SHA256, \
             TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, \
             TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, \
             TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (
            "lower-case suite",
            tls("cipher-suites = [\"tls13_aes_128_gcm_sha256\"]"),
            "listeners[1].tls.cipher-suites[0]",
            "upper-case; write \"TLS13_AES_128_GCM_SHA256\"",
        ),
        (
            "IANA name of a TLS 1.3 suite",
            tls("cipher-suites = [\"TLS_AES_128_GCM_SHA256\"]"),
            "listeners[1].tls.cipher-suites[0]",
            "write \"TLS13_AES_128_GCM_SHA256\"",
        ),
        (
            "suite twice",
            tls("cipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \"TLS13_AES_128_GCM_SHA256\"]"),
            "listeners[1].tls.cipher-suites[1]",
            "\"TLS13_AES_128_GCM_SHA256\" is already listed as cipher-suites[0]",
        ),
        (
            "no suites",
            tls("cipher-suites = []"),
            "listeners[1].tls.cipher-suites",
            "leave `cipher-suites` out for the default suites",
        ),
        (
            "TLS 1.3 only without a TLS 1.3 suite",
            tls(
                "min-version = \"1.3\"\ncipher-suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\", \
                 \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]",
            ),
            "listeners[1].tls.cipher-suites",
            "min-version = \"1.3\" needs a TLS 1.3 suite (TLS13_...), and none is listed",
        ),
        (
            "TLS 1.2 suite with TLS 1.3 only",
            tls(
                "min-version = \"1.3\"\ncipher-suites = [\"TLS13_AES_128_GCM_SHA256\", \
                 \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]",
            ),
            "listeners[1].tls.cipher-suites[1]",
            "is a TLS 1.2 suite, which min-version = \"1.3\" never uses",
        ),
        (
            "handshake-timeout zero",
            tls("handshake-timeout = \"0s\""),
            "listeners[1].tls.handshake-timeout",
            "must be greater than zero",
        ),
        (
            "handshake-timeout short",
            tls("handshake-timeout = \"999ms\""),
            "listeners[1].tls.handshake-timeout",
            "must be from 1s to 1m, found 999ms",
        ),
        (
            "handshake-timeout long",
            tls("handshake-timeout = \"61s\""),
            "listeners[1].tls.handshake-timeout",
            "must be from 1s to 1m, found 61s",
        ),
        (
            "handshake-timeout without unit",
            tls("handshake-timeout = 10"),
            "listeners[1].tls.handshake-timeout",
            "needs a unit",
        ),
        (
            "session-cache negative",
            tls("session-cache = -1"),
            "listeners[1].tls.session-cache",
            "expected an integer from 0 to 1000000, found -1",
        ),
        (
            "session-cache huge",
            tls("session-cache = 1000001"),
            "listeners[1].tls.session-cache",
            "expected an integer from 0 to 1000000",
        ),
        (
            "session-tickets word",
            tls("session-tickets = \"yes\""),
            "listeners[1].tls.session-tickets",
            "invalid type: string \"yes\", expected a boolean",
        ),
        (
            "ticket-lifetime short",
            tls("ticket-lifetime = \"59s\""),
            "listeners[1].tls.ticket-lifetime",
            "must be from 1m to 6h, found 59s",
        ),
        (
            "ticket-lifetime long",
            tls("ticket-lifetime = \"6h1s\""),
            "listeners[1].tls.ticket-lifetime",
            "must be from 1m to 6h",
        ),
        (
            "unknown tls key",
            tls("min-versoin = \"1.3\""),
            "listeners[1].tls.min-versoin",
            "did you mean `min-version`?",
        ),
        (
            "client-auth outside tls",
            "[[listeners]]\naddress = \"127.0.0.1:8443\"\n[listeners.client-auth]\nmode = \"required\"\nca = \"ca.pem\"\n".to_owned(),
            "listeners[1].client-auth",
            "write the table as [listeners.tls.client-auth], under [listeners.tls]",
        ),
        (
            "client-auth without mode",
            auth("ca = \"ca.pem\""),
            "listeners[1].tls.client-auth.mode",
            "missing; set mode = \"required\"",
        ),
        (
            "client-auth mode word",
            auth("mode = \"request\"\nca = \"ca.pem\""),
            "listeners[1].tls.client-auth.mode",
            "expected \"required\" or \"optional\", found \"request\"",
        ),
        (
            "client-auth without ca",
            auth("mode = \"required\""),
            "listeners[1].tls.client-auth.ca",
            "missing; the path of the PEM bundle of CAs",
        ),
        (
            "client-auth empty ca",
            auth("mode = \"required\"\nca = \"\""),
            "listeners[1].tls.client-auth.ca",
            "empty path",
        ),
        (
            "subject-header hop-by-hop",
            auth("mode = \"required\"\nca = \"ca.pem\"\nsubject-header = \"Connection\""),
            "listeners[1].tls.client-auth.subject-header",
            "\"Connection\" cannot be used here: it is hop-by-hop",
        ),
        (
            "subject-header framing",
            auth("mode = \"required\"\nca = \"ca.pem\"\nsubject-header = \"transfer-encoding\""),
            "listeners[1].tls.client-auth.subject-header",
            "the gateway frames the body itself",
        ),
        (
            "subject-header host",
            auth("mode = \"required\"\nca = \"ca.pem\"\nsubject-header = \"Host\""),
            "listeners[1].tls.client-auth.subject-header",
            "it names the site",
        ),
        (
            "subject-header not a token",
            auth("mode = \"required\"\nca = \"ca.pem\"\nsubject-header = \"x subject\""),
            "listeners[1].tls.client-auth.subject-header",
            "contains ' '",
        ),
        (
            "unknown client-auth key",
            auth("mode = \"required\"\nca = \"ca.pem\"\nverify-depth = 2"),
            "listeners[1].tls.client-auth.verify-depth",
            "unknown key",
        ),
    ]);
}

#[test]
fn upstream_tls_rules() {
    run(&[
        (
            "empty ca",
            upstream("ca = \"\""),
            "upstreams[1].tls.ca",
            "empty path",
        ),
        (
            "empty server-name",
            upstream("server-name = \"\""),
            "upstreams[1].tls.server-name",
            "leave `server-name` out to verify the address of the server connected to",
        ),
        (
            "wildcard server-name",
            upstream("server-name = \"*.internal\""),
            "upstreams[1].tls.server-name",
            "a wildcard cannot be checked against",
        ),
        (
            "bracketed server-name",
            upstream("server-name = \"[::1]\""),
            "upstreams[1].tls.server-name",
            "write the IPv6 address without brackets",
        ),
        (
            "server-name with a port",
            upstream("server-name = \"api.internal:443\""),
            "upstreams[1].tls.server-name",
            "leave out the port",
        ),
        (
            "client-cert alone",
            upstream("client-cert = \"gw.pem\""),
            "upstreams[1].tls.client-cert",
            "`client-key` is missing: `client-cert` and `client-key` are given together",
        ),
        (
            "client-key alone",
            upstream("client-key = \"gw.key\""),
            "upstreams[1].tls.client-key",
            "`client-cert` is missing: `client-key` and `client-cert` are given together",
        ),
        (
            "empty client-cert",
            upstream("client-cert = \"\"\nclient-key = \"gw.key\""),
            "upstreams[1].tls.client-cert",
            "empty path",
        ),
        (
            "empty client-key",
            upstream("client-cert = \"gw.pem\"\nclient-key = \"\""),
            "upstreams[1].tls.client-key",
            "empty path",
        ),
        (
            "verify word",
            upstream("verify = \"no\""),
            "upstreams[1].tls.verify",
            "invalid type: string \"no\", expected a boolean",
        ),
        (
            "unknown key",
            upstream("insecure = true"),
            "upstreams[1].tls.insecure",
            "unknown key",
        ),
    ]);
}

#[test]
fn route_tls_rules() {
    run(&[
        (
            "https-port without redirect-https",
            route("https-port = 8443"),
            "routes[1].https-port",
            "applies only with redirect-https = true",
        ),
        (
            "https-port with redirect-https off",
            route("redirect-https = false\nhttps-port = 8443"),
            "routes[1].https-port",
            "applies only with redirect-https = true",
        ),
        (
            "https-port zero",
            route("redirect-https = true\nhttps-port = 0"),
            "routes[1].https-port",
            "expected an integer from 1 to 65535, found 0",
        ),
        (
            "https-port too high",
            route("redirect-https = true\nhttps-port = 65536"),
            "routes[1].https-port",
            "expected an integer from 1 to 65535",
        ),
        (
            "https-port quoted",
            route("redirect-https = true\nhttps-port = \"8443\""),
            "routes[1].https-port",
            "write the number without quotes: 8443",
        ),
        (
            "hsts without max-age",
            route("hsts = \"includeSubDomains\""),
            "routes[1].hsts",
            "must start with \"max-age=\"",
        ),
        (
            "hsts with an unknown directive",
            route("hsts = \"max-age=60; always\""),
            "routes[1].hsts",
            "unknown directive \"always\"",
        ),
        (
            "hsts with a line break",
            route("hsts = \"max-age=60\\r\\nx-evil: 1\""),
            "routes[1].hsts",
            "max-age must be a whole number of seconds",
        ),
        (
            "redirect-https word",
            route("redirect-https = \"yes\""),
            "routes[1].redirect-https",
            "invalid type: string \"yes\", expected a boolean",
        ),
        (
            "require-client-cert word",
            route("require-client-cert = 1"),
            "routes[1].require-client-cert",
            "expected a boolean",
        ),
    ]);
}

#[test]
fn every_mistake_in_one_file_is_reported() {
    let src = with_base(
        "",
        &format!(
            "{}{}{}",
            listener(
                "certificates = [{ cert = \"\", key = \"k\" }]\nmin-version = \"1.4\"\n\
                 [listeners.tls.client-auth]\nca = \"ca.pem\""
            ),
            upstream("client-cert = \"gw.pem\"\nserver-name = \"*.x\""),
            route("https-port = 1\nhsts = \"max-age=x\""),
        ),
    );
    let paths: Vec<String> = errors(&src).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "listeners[1].tls.certificates[0].cert",
            "listeners[1].tls.min-version",
            "listeners[1].tls.client-auth.mode",
            "upstreams[1].tls.client-cert",
            "upstreams[1].tls.server-name",
            "routes[1].https-port",
            "routes[1].hsts",
        ]
    );
}

#[test]
fn doubtful_settings_load_with_warnings() {
    let risky = format!(
        "{}{}",
        upstream("verify = false\nca = \"ca.pem\""),
        route("upstream = \"secure\"\nredirect-https = true\nrequire-client-cert = true")
            .replace("upstream = \"app\"\n", ""),
    );
    let src = with_base("", &risky);
    let c = valid(&src);
    let line = |needle: &str| {
        src.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect(needle)
    };
    let got: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            format!(
                "{}:10: upstreams[1].tls.verify: server certificates are not verified: anyone on \
                 the path to these servers can pose as them and read the traffic; to trust a \
                 private CA, set `ca` instead",
                line("verify = false")
            ),
            format!(
                "{}:18: routes[1].redirect-https: no listener has [listeners.tls], so every \
                 request to this route arrives over plain HTTP and is redirected to an HTTPS \
                 port this gateway does not serve",
                line("redirect-https")
            ),
            format!(
                "{}:23: routes[1].require-client-cert: no listener asks for client certificates \
                 ([listeners.tls.client-auth]), so every request to this route will get 403",
                line("require-client-cert")
            ),
        ]
    );
    // The settings themselves hold.
    let tls = c.upstreams[1].tls.as_ref().expect("tls");
    assert!(!tls.verify);
    assert_eq!(tls.ca.as_deref(), Some(std::path::Path::new("ca.pem")));

    // An HTTPS listener answers the redirect warning; one asking for
    // client certificates the other, even with mode = "optional".
    let https = valid(&with_base("", &format!("{risky}{}", listener(CERT))));
    let paths: Vec<&str> = https.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["upstreams[1].tls.verify", "routes[1].require-client-cert"]
    );
    let mtls = valid(&with_base(
        "",
        &format!(
            "{risky}{}",
            listener(&format!(
                "{CERT}\n[listeners.tls.client-auth]\nmode = \"optional\"\nca = \"ca.pem\""
            ))
        ),
    ));
    let paths: Vec<&str> = mtls.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["upstreams[1].tls.verify"]);

    // Written out and read back, the warnings stay.
    let back = Config::from_json_str(&c.to_json(false)).expect("valid JSON");
    assert_eq!(back, c);
    assert_eq!(back.warnings.len(), 3);

    // Off, or verify = true, says nothing.
    let calm = valid(&with_base(
        "",
        &format!(
            "{}{}",
            upstream("verify = true"),
            route("redirect-https = false\nrequire-client-cert = false")
        ),
    ));
    assert!(calm.warnings.is_empty(), "{:?}", calm.warnings);
}

#[test]
fn tls_types_hash_for_carry_over() {
    let c = valid(EVERY_KEY);
    let tls = c.listeners[0].tls.clone().expect("tls");
    let mut other = tls.clone();
    other.ticket_lifetime = Duration::from_secs(60);
    let set: HashSet<ListenerTls> = [tls.clone(), tls.clone(), other].into_iter().collect();
    assert_eq!(set.len(), 2);
    let upstreams: HashSet<Option<UpstreamTls>> =
        c.upstreams.iter().map(|u| u.tls.clone()).collect();
    assert_eq!(upstreams.len(), 2);
}

#[test]
fn tls_reads_back_in_both_formats() {
    let minimal = with_base("", &format!("{}{}", listener(CERT), upstream("")));
    for (case, src) in [("every key", EVERY_KEY.to_owned()), ("minimal", minimal)] {
        let config = valid(&src);
        let json = config.to_json(false);
        assert_eq!(
            Config::from_json_str(&json),
            Ok(config.clone()),
            "{case}:\n{json}"
        );
        let toml = config.to_toml();
        assert_eq!(
            Config::from_toml_str(&toml),
            Ok(config.clone()),
            "{case}:\n{toml}"
        );
    }
}

#[test]
fn tls_renders_defaults_and_leaves_out_what_is_unset() {
    let config = valid(&with_base(
        "",
        &format!("{}{}", listener(CERT), upstream("")),
    ));
    let json = config.to_json(false);
    assert!(
        json.contains(
            r#"{
      "name": "listener-1",
      "address": "127.0.0.1:8443",
      "encoded-slashes": "reject",
      "underscores-in-headers": "drop",
      "trust-request-id": false,
      "error-format": "text",
      "tls": {
        "unknown-sni": "default",
        "min-version": "1.2",
        "handshake-timeout": "10s",
        "session-cache": 4096,
        "session-tickets": true,
        "ticket-lifetime": "6h",
        "certificates": [
          {
            "cert": "c.pem",
            "key": "c.key"
          }
        ]
      }
    }"#
        ),
        "{json}"
    );
    assert!(
        json.contains(
            r#""tls": {
        "verify": true,
        "sni": true
      }"#
        ),
        "{json}"
    );
    // Plain listeners, upstreams and routes look as they did before TLS.
    let plain = &json[json.find(r#""name": "listener-0""#).expect("listener-0")..];
    let plain = &plain[..plain.find('}').expect("end")];
    assert!(!plain.contains("tls"), "{plain}");
    for key in [
        "redirect-https",
        "https-port",
        "hsts",
        "require-client-cert",
        "cipher-suites",
        "names",
        "client-auth",
    ] {
        assert!(!json.contains(key), "{key} in\n{json}");
    }

    let every = valid(EVERY_KEY);
    let toml = every.to_toml();
    for fragment in [
        "[listeners.tls]\nunknown-sni = \"reject\"\nmin-version = \"1.3\"\n",
        "cipher-suites = [\n    \"TLS13_CHACHA20_POLY1305_SHA256\",\n    \"TLS13_AES_128_GCM_SHA256\",\n]\n",
        "handshake-timeout = \"1500ms\"\n",
        "ticket-lifetime = \"6h\"\n",
        "[[listeners.tls.certificates]]\ncert = \"../wild.pem\"\nkey = \"wild.key\"\nnames = [\n    \"*.example.org\",\n    \"example.org\",\n]\n",
        "[listeners.tls.client-auth]\nmode = \"required\"\nca = \"certs/clients-ca.pem\"\nsubject-header = \"x-client-dn\"\n",
        "[upstreams.tls]\nca = \"certs/internal-ca.pem\"\nserver-name = \"api.internal\"\nverify = true\nclient-cert = \"certs/gw.pem\"\nclient-key = \"certs/gw.key\"\nsni = false\n",
        "redirect-https = true\nhttps-port = 8443\nhsts = \"max-age=31536000; includeSubDomains; preload\"\nrequire-client-cert = true\n",
    ] {
        assert!(toml.contains(fragment), "{fragment:?} not in\n{toml}");
    }
    // The redirecting responder route writes the one key it sets.
    let moved = &toml[toml.find("name = \"moved\"").expect("moved")..];
    assert!(moved.contains("redirect-https = true"), "{moved}");
    assert!(!moved.contains("https-port"), "{moved}");
}

#[test]
fn json_gives_the_tls_toml_gives_with_the_same_paths() {
    let json = r#"{
      "listeners": [{
        "name": "https",
        "address": "0.0.0.0:443",
        "tls": {
          "certificates": [
            { "cert": "certs/example.com.pem", "key": "/etc/ringway/example.com.key" },
            { "cert": "../wild.pem", "key": "wild.key", "names": ["*.Example.ORG", "example.org"] }
          ],
          "unknown-sni": "reject",
          "min-version": "1.3",
          "cipher-suites": ["TLS13_CHACHA20_POLY1305_SHA256", "TLS13_AES_128_GCM_SHA256"],
          "handshake-timeout": "1500ms",
          "session-cache": 0,
          "session-tickets": false,
          "ticket-lifetime": "6h",
          "client-auth": {
            "mode": "required",
            "ca": "certs/clients-ca.pem",
            "subject-header": "X-Client-DN"
          }
        }
      }],
      "upstreams": [
        {
          "name": "secure",
          "servers": ["10.0.0.1:443"],
          "tls": {
            "ca": "certs/internal-ca.pem",
            "server-name": "API.internal",
            "client-cert": "certs/gw.pem",
            "client-key": "certs/gw.key",
            "sni": false
          }
        },
        { "name": "by-address", "servers": ["10.0.0.2:443"], "tls": { "server-name": "10.0.0.2" } }
      ],
      "routes": [
        {
          "name": "secure",
          "upstream": "secure",
          "redirect-https": true,
          "https-port": 8443,
          "hsts": "max-age=31536000; includeSubDomains; preload",
          "require-client-cert": true
        },
        { "name": "moved", "path": "/moved", "redirect-https": true, "respond": {} }
      ]
    }"#;
    let from_json = Config::from_json_str(json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_json, valid(EVERY_KEY));

    let bad = r#"{
      "listeners": [{ "address": "0.0.0.0:443", "tls": {
        "certificates": [{ "cert": "c.pem", "key": "c.key", "names": ["a.example", "A.example"] }],
        "min-version": 1.3
      } }],
      "routes": [{ "respond": {}, "https-port": 8443 }]
    }"#;
    let errors = Config::from_json_str(bad).expect_err("invalid");
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "3:84: listeners[0].tls.certificates[0].names[1]: \"A.example\" is already listed as \
             certificates[0].names[0]; a name selects one certificate",
            "4:24: listeners[0].tls.min-version: write the version as a string: \"1.3\"",
            "6:49: routes[0].https-port: applies only with redirect-https = true: it is the port \
             of the redirect's Location",
        ]
    );
}
