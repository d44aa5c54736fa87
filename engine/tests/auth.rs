//! Authentication and authorization over real sockets: API keys, Basic,
//! ES256 JWTs made here with a real key, groups, and what reaches the
//! upstream (the consumer's name, never the credential).

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use support::*;

const EC_PRIVATE: &str = include_str!("fixtures/auth/ec-p256.pk8.pem");
const EC_PUBLIC: &str = include_str!("fixtures/auth/ec-p256.pub.pem");
const KEY: &str = "alice-key-0123456789";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn token(claims: serde_json::Value) -> String {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("P-256 key");
    encode(&Header::new(Algorithm::ES256), &claims, &key).expect("signs")
}

fn config(upstream: std::net::SocketAddr) -> String {
    let key_hash = hex(&Sha256::digest(KEY.as_bytes()));
    let bob_hash = bcrypt::hash("bob-password", 4).expect("bcrypt");
    format!(
        r#"workers = 2
[[consumers]]
name = "alice"
groups = ["staff"]
api-keys = ["sha256:{key_hash}"]

[[consumers]]
name = "bob"
groups = ["guests"]
basic = {{ username = "bob", password-hash = "{bob_hash}" }}

[[authenticators]]
name = "keys"
type = "api-key"
header = "x-api-key"
query = "api_key"

[[authenticators]]
name = "basic"
type = "basic"

[[authenticators]]
name = "sso"
type = "jwt"
algorithms = ["ES256"]
keys = [{{ pem = """{EC_PUBLIC}""" }}]
issuer = "https://id.example"
audience = ["api"]
leeway = "5s"

[[upstreams]]
name = "u"
servers = ["{upstream}"]

[[routes]]
name = "staff"
path-prefix = "/staff/"
upstream = "u"
auth = ["keys", "basic", "sso"]
allow-groups = ["staff"]

[[routes]]
name = "any"
upstream = "u"
auth = ["keys", "basic", "sso"]
"#
    )
}

/// Every WWW-Authenticate value of a response, joined.
fn challenges(r: &Response) -> String {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn get_with(c: &mut TestClient, path: &str, headers: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes());
    c.read_response(false).expect("a response")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {creds}\r\n")
}

#[test]
fn api_keys_authenticate_and_are_not_forwarded() {
    let up = TestUpstream::ok("hello");
    let gw = TestGateway::start(&config(up.addr), "io_uring");
    let mut c = gw.client();

    let r = get_with(
        &mut c,
        "/a",
        &format!("X-Api-Key: {KEY}\r\nX-Consumer: mallory\r\n"),
    );
    assert_eq!(r.status, 200);
    let seen = up.last();
    assert_eq!(
        seen.header("x-consumer"),
        Some("alice"),
        "the client's claim is replaced"
    );
    assert!(!seen.has("x-api-key"), "the credential stays here");

    let r = get_with(&mut c, &format!("/q?x=1&api_key={KEY}&y=2"), "");
    assert_eq!(r.status, 200);
    assert_eq!(up.last().target, "/q?x=1&y=2");

    let r = get_with(&mut c, "/a", "X-Api-Key: wrong-key-0123456789\r\n");
    assert_eq!(r.status, 401);
    let missing = get_with(&mut c, "/a", "");
    assert_eq!(missing.status, 401);
    let challenge = challenges(&missing);
    for scheme in ["ApiKey", "Basic", "Bearer"] {
        assert!(challenge.contains(scheme), "{challenge}");
    }
    // Refusals leave the connection usable.
    assert_eq!(
        get_with(&mut c, "/a", &format!("X-Api-Key: {KEY}\r\n")).status,
        200
    );
    assert_eq!(up.request_count(), 3);
    gw.wait_for("401s counted", |t| t.refused_401 == 2);
}

#[test]
fn basic_credentials_and_groups() {
    let up = TestUpstream::ok("hello");
    let gw = TestGateway::start(&config(up.addr), "epoll");
    let mut c = gw.client();
    let r = get_with(&mut c, "/a", &basic("bob", "bob-password"));
    assert_eq!(r.status, 200);
    assert_eq!(up.last().header("x-consumer"), Some("bob"));
    assert!(!up.last().has("authorization"));
    // Cached now; still right, and a wrong password is still wrong.
    assert_eq!(
        get_with(&mut c, "/a", &basic("bob", "bob-password")).status,
        200
    );
    assert_eq!(
        get_with(&mut c, "/a", &basic("bob", "bob-passwore")).status,
        401
    );
    assert_eq!(get_with(&mut c, "/a", &basic("nobody", "x")).status, 401);
    let malformed = get_with(&mut c, "/a", "Authorization: Basic !!!\r\n");
    assert_eq!(malformed.status, 401);
    assert!(challenges(&malformed).contains("Basic"));
    // Authenticated, but not in a group the route allows.
    assert_eq!(
        get_with(&mut c, "/staff/x", &basic("bob", "bob-password")).status,
        403
    );
    assert_eq!(
        get_with(&mut c, "/staff/x", &format!("X-Api-Key: {KEY}\r\n")).status,
        200
    );
    gw.wait_for("403 counted", |t| t.refused_403 == 1);
}

#[test]
fn es256_tokens_are_checked_for_every_claim() {
    let up = TestUpstream::ok("hello");
    let gw = TestGateway::start(&config(up.addr), "io_uring");
    let mut c = gw.client();
    let t = now();
    let good = serde_json::json!({
        "sub": "alice", "iss": "https://id.example", "aud": "api", "exp": t + 300, "nbf": t - 10,
    });
    let with = |patch: serde_json::Value| {
        let mut claims = good.clone();
        for (k, v) in patch.as_object().expect("object") {
            claims[k] = v.clone();
        }
        token(claims)
    };
    let bearer = |tok: &str| format!("Authorization: Bearer {tok}\r\n");

    let valid = token(good.clone());
    let r = get_with(&mut c, "/a", &bearer(&valid));
    assert_eq!(r.status, 200);
    assert_eq!(up.last().header("x-consumer"), Some("alice"));
    assert!(!up.last().has("authorization"));
    assert_eq!(
        get_with(&mut c, "/staff/x", &bearer(&valid)).status,
        200,
        "alice is staff"
    );
    // Within the leeway.
    let r = get_with(
        &mut c,
        "/a",
        &bearer(&with(serde_json::json!({"exp": t - 2}))),
    );
    assert_eq!(r.status, 200);

    let mut tampered = valid.clone();
    let last = tampered.pop().expect("a char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let refused = [
        ("expired", with(serde_json::json!({"exp": t - 60}))),
        ("not yet valid", with(serde_json::json!({"nbf": t + 60}))),
        (
            "wrong issuer",
            with(serde_json::json!({"iss": "https://evil.example"})),
        ),
        ("wrong audience", with(serde_json::json!({"aud": "other"}))),
        (
            "unknown consumer",
            with(serde_json::json!({"sub": "mallory"})),
        ),
        ("bad signature", tampered),
        ("malformed", "not.a.token".to_string()),
        ("not even three parts", "abc".to_string()),
    ];
    for (what, tok) in refused {
        let r = get_with(&mut c, "/a", &bearer(&tok));
        assert_eq!(r.status, 401, "{what}");
        let challenge = challenges(&r);
        assert!(
            challenge.contains("Bearer") && challenge.contains("invalid_token"),
            "{what}: {challenge}"
        );
    }
    assert_eq!(get_with(&mut c, "/a", "").status, 401, "missing");
    assert_eq!(up.request_count(), 3);
}

#[test]
fn validate_loads_key_material_and_names_the_field() {
    let bad = config("127.0.0.1:9".parse().expect("addr")).replace(
        "-----BEGIN PUBLIC KEY-----",
        "-----BEGIN PUBLIC KEY-----\nAAAA",
    );
    let path = support::process::write_config(
        "bad-key.toml",
        &format!("{bad}[[listeners]]\naddress = \"127.0.0.1:0\"\n"),
    );
    let out = std::process::Command::new(support::process::BIN)
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("authenticators[2].keys[0]"), "{err}");
}

#[test]
fn limits_by_consumer_and_forwarding_credentials_when_asked() {
    let up = TestUpstream::ok("hello");
    let src = config(up.addr).replace(
        "[[routes]]\nname = \"any\"",
        "[[routes]]\nname = \"counted\"\npath-prefix = \"/counted/\"\nupstream = \"u\"\n\
         auth = [\"keys\", \"basic\"]\nforward-credentials = true\n\
         [[routes.rate-limits]]\nkey = \"consumer\"\nrate = \"2/h\"\n\n\
         [[routes]]\nname = \"any\"",
    );
    let gw = TestGateway::start(&src, "io_uring");
    let mut c = gw.client();
    let alice = format!("X-Api-Key: {KEY}\r\n");
    let bob = basic("bob", "bob-password");
    assert_eq!(get_with(&mut c, "/counted/1", &alice).status, 200);
    assert_eq!(
        up.last().header("x-api-key"),
        Some(KEY),
        "forwarded as asked"
    );
    assert_eq!(get_with(&mut c, "/counted/2", &alice).status, 200);
    assert_eq!(get_with(&mut c, "/counted/3", &alice).status, 429);
    // Bob has a count of his own.
    assert_eq!(get_with(&mut c, "/counted/1", &bob).status, 200);
    assert!(up.last().has("authorization"));
    // Unauthenticated requests are refused before any count.
    assert_eq!(get_with(&mut c, "/counted/1", "").status, 401);
}

#[test]
fn ambiguous_paths_cannot_route_around_a_policy() {
    let up = TestUpstream::ok("hello");
    let gw = TestGateway::start(&config(up.addr), "epoll");
    for path in [
        "/a/../staff/x",
        "/a/..%2Fstaff/x",
        "/a/%2e%2e/staff/x",
        "/a/..%5Cstaff/x",
        "/a/..;/staff/x",
        "//staff/x",
        "/st%61ff/x",
    ] {
        let mut c = gw.client();
        let r = get_with(&mut c, path, &basic("bob", "bob-password"));
        assert_eq!(r.status, 400, "{path}");
    }
    assert_eq!(up.request_count(), 0);
}

#[test]
fn no_route_lets_a_client_claim_to_be_a_consumer() {
    let up = TestUpstream::ok("hello");
    let src = config(up.addr).replace(
        "[[routes]]\nname = \"any\"",
        "[[routes]]\nname = \"public\"\npath-prefix = \"/public/\"\nupstream = \"u\"\n\n\
         [[routes]]\nname = \"any\"",
    );
    let gw = TestGateway::start(&src, "io_uring");
    let mut c = gw.client();
    // A public route: no auth, and still no client-made consumer header.
    let r = get_with(
        &mut c,
        "/public/x",
        "X-Consumer: alice\r\nX_Consumer: alice\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = up.last();
    assert!(
        !seen.has("x-consumer") && !seen.has("x_consumer"),
        "{:?}",
        seen.headers
    );
    // On an authenticated route the gateway's own value is the only one.
    let r = get_with(
        &mut c,
        "/a",
        &format!("X-Api-Key: {KEY}\r\nX_Consumer: mallory\r\n"),
    );
    assert_eq!(r.status, 200);
    let seen = up.last();
    assert!(!seen.has("x_consumer"));
    assert_eq!(seen.header("x-consumer"), Some("alice"));
}

#[test]
fn a_slow_password_check_does_not_stall_the_worker() {
    // argon2id with its default cost: slow by design (and slower still in
    // a debug build), checked on the blocking pool.
    let hash = ringway::hash_password(b"carol-password").expect("hash");
    let up = TestUpstream::ok("hello");
    let src = config(up.addr)
        .replace("workers = 2", "workers = 1")
        .replace(
            "[[authenticators]]\nname = \"keys\"",
            &format!(
                "[[consumers]]\nname = \"carol\"\nbasic = {{ username = \"carol\", password-hash = \"{hash}\" }}\n\n\
                 [[authenticators]]\nname = \"keys\""
            ),
        );
    let gw = TestGateway::start(&src, "io_uring");
    let mut slow = gw.client();
    slow.send(
        format!(
            "GET /a HTTP/1.1\r\nHost: t\r\n{}\r\n",
            basic("carol", "carol-password")
        )
        .as_bytes(),
    );
    // Meanwhile the same (only) worker answers others.
    let mut fast = gw.client();
    assert_eq!(
        get_with(&mut fast, "/a", &format!("X-Api-Key: {KEY}\r\n")).status,
        200
    );
    assert_eq!(up.request_count(), 1, "the fast request went first");
    let r = slow.read_response(false).expect("the slow answer");
    assert_eq!(r.status, 200);
    assert_eq!(up.last().header("x-consumer"), Some("carol"));
    // Cached now: answered on the worker.
    assert_eq!(
        get_with(&mut slow, "/a", &basic("carol", "carol-password")).status,
        200
    );
    assert_eq!(
        get_with(&mut slow, "/a", &basic("carol", "wrong")).status,
        401
    );
}

/// Password checks that wait too long for the blocking pool (a flood of
/// them, each slow by design) get 503 instead of waiting without end.
#[test]
fn password_checks_that_wait_too_long_get_503() {
    let hash = ringway::hash_password(b"carol-password").expect("hash");
    let up = TestUpstream::ok("hello");
    let src = config(up.addr)
        .replace("workers = 2", "workers = 1")
        .replace(
            "[[authenticators]]\nname = \"keys\"",
            &format!(
                "[[consumers]]\nname = \"carol\"\nbasic = {{ username = \"carol\", password-hash = \"{hash}\" }}\n\n\
                 [[authenticators]]\nname = \"keys\""
            ),
        );
    let hooks = ringway::Hooks {
        verify_timeout: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&src, "epoll", hooks);
    // Wrong passwords are never cached: each one is a fresh check, all on
    // the one blocking thread of a one-worker gateway.
    let mut clients: Vec<TestClient> = (0..6).map(|_| gw.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(
            format!(
                "GET /a HTTP/1.1\r\nHost: t\r\n{}\r\n",
                basic("carol", &format!("wrong-{i}"))
            )
            .as_bytes(),
        );
    }
    let statuses: Vec<u16> = clients
        .iter_mut()
        .map(|c| c.read_response(false).expect("answered").status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert!(refused >= 1, "some waited too long: {statuses:?}");
    gw.wait_for("counted as the gateway's own failures", |t| {
        t.internal_errors == refused as u64
    });
}
