//! Test helpers for `policy::auth`: configs built in code, requests parsed
//! from text, tokens signed with real keys, and an allocation counter.
//!
//! Keys come from `engine/tests/fixtures/auth/` (see its README) or are
//! generated here (EC and Ed25519 only: RSA key generation is slow in a
//! debug build). Password hashes use the cheapest parameters each
//! algorithm allows, so the suite stays fast on two cores.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::PasswordHasher as _;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::BytesMut;
use ringway_config::{
    AuthKind, Authenticator, BasicCredential, Config, Consumer, JwtAlgorithm, JwtKey, JwtSettings,
    KeyMaterial, DEFAULT_CONFIG,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::http::head::{HeadLimits, RequestHead};
use crate::http::parse::parse_request;

pub(super) const RSA_PUB: &str = include_str!("../../../tests/fixtures/auth/rsa-2048.pub.pem");
pub(super) const RSA_PKCS1_PUB: &str =
    include_str!("../../../tests/fixtures/auth/rsa-2048.pkcs1.pub.pem");
pub(super) const RSA_1024_PUB: &str = include_str!("../../../tests/fixtures/auth/rsa-1024.pub.pem");
const RSA_PRIVATE: &str = include_str!("../../../tests/fixtures/auth/rsa-2048.pk8.pem");
pub(super) const P256_PUB: &str = include_str!("../../../tests/fixtures/auth/ec-p256.pub.pem");
pub(super) const P256_CERT: &str = include_str!("../../../tests/fixtures/auth/ec-p256.cert.pem");
pub(super) const P256_PRIVATE: &str = include_str!("../../../tests/fixtures/auth/ec-p256.pk8.pem");
pub(super) const P384_PUB: &str = include_str!("../../../tests/fixtures/auth/ec-p384.pub.pem");
const P384_PRIVATE: &str = include_str!("../../../tests/fixtures/auth/ec-p384.pk8.pem");
pub(super) const ED25519_PUB: &str = include_str!("../../../tests/fixtures/auth/ed25519.pub.pem");
const ED25519_PRIVATE: &str = include_str!("../../../tests/fixtures/auth/ed25519.pk8.pem");

pub(super) const HMAC_SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

/// The tests' clock: 2023-11-14T22:13:20Z.
pub(super) const NOW: i64 = 1_700_000_000;

pub(super) fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub(super) fn config(consumers: Vec<Consumer>, authenticators: Vec<Authenticator>) -> Config {
    let mut config = Config::from_toml_str(DEFAULT_CONFIG).expect("default config is valid");
    config.consumers = consumers;
    config.authenticators = authenticators;
    config
}

pub(super) fn consumer(name: &str) -> Consumer {
    Consumer {
        name: name.into(),
        groups: Vec::new(),
        api_keys: Vec::new(),
        basic: None,
    }
}

pub(super) fn basic_credential(username: &str, hash: &str) -> BasicCredential {
    BasicCredential {
        username: username.into(),
        password_hash: hash.into(),
    }
}

pub(super) fn basic_auth(name: &str, cache_size: usize) -> Authenticator {
    Authenticator {
        name: name.into(),
        kind: AuthKind::Basic {
            realm: "ringway".into(),
            cache_size,
            cache_ttl: Duration::from_secs(60),
        },
    }
}

pub(super) fn jwt_auth(name: &str, settings: JwtSettings) -> Authenticator {
    Authenticator {
        name: name.into(),
        kind: AuthKind::Jwt(settings),
    }
}

pub(super) fn jwt_settings(algorithms: &[JwtAlgorithm], keys: Vec<JwtKey>) -> JwtSettings {
    JwtSettings {
        algorithms: algorithms.to_vec(),
        keys,
        jwks_file: None,
        issuer: None,
        audience: Vec::new(),
        leeway: Duration::from_secs(30),
        consumer_claim: "sub".into(),
        cache_size: 16,
    }
}

pub(super) fn secret_key(kid: Option<&str>, secret: &str) -> JwtKey {
    JwtKey {
        kid: kid.map(Into::into),
        material: KeyMaterial::Secret(secret.into()),
    }
}

pub(super) fn pem_key_def(kid: Option<&str>, pem: &str) -> JwtKey {
    JwtKey {
        kid: kid.map(Into::into),
        material: KeyMaterial::Pem(pem.into()),
    }
}

/// Argon2id at its minimum cost (8 KiB, one pass).
pub(super) fn argon2_hash(password: &str) -> String {
    let params = argon2::Params::new(8, 1, 1, None).expect("valid params");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), b"saltsaltsalt")
        .expect("hashes")
        .to_string()
}

/// scrypt with N = 16, r = 8, p = 1.
pub(super) fn scrypt_hash(password: &str) -> String {
    let params = scrypt::Params::new(4, 8, 1).expect("valid params");
    scrypt::Scrypt::new_with_params(params)
        .hash_password_with_salt(password.as_bytes(), b"saltsaltsalt")
        .expect("hashes")
        .to_string()
}

/// bcrypt at its minimum cost, 4.
pub(super) fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("hashes")
}

pub(super) fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Parses `GET target` with a Host and `headers`.
pub(super) fn request(target: &str, headers: &[String]) -> RequestHead {
    let mut text = format!("GET {target} HTTP/1.1\r\nHost: gw.example\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let limits = HeadLimits {
        max_head: 64 << 10,
        max_headers: 64,
        max_target: 8 << 10,
        slashes: ringway_config::EncodedSlashes::Reject,
        underscores: ringway_config::UnderscoresInHeaders::Drop,
    };
    parse_request(
        &mut BytesMut::from(text.as_bytes()),
        limits,
        &mut Vec::new(),
    )
    .expect("valid request")
    .expect("complete request")
}

pub(super) fn claims(sub: &str, exp: i64) -> Value {
    json!({ "sub": sub, "exp": exp })
}

pub(super) fn hs256_token(claims: &Value) -> String {
    sign("HS256", &Signer::hmac(HMAC_SECRET), None, claims)
}

pub(super) fn base64_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Hmac,
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// A private key (or HMAC secret) that signs test tokens.
#[derive(Clone)]
pub(super) struct Signer {
    kind: KeyKind,
    /// PKCS#8 DER, or the secret.
    bytes: Vec<u8>,
}

impl Signer {
    pub(super) fn hmac(secret: impl AsRef<[u8]>) -> Signer {
        Signer {
            kind: KeyKind::Hmac,
            bytes: secret.as_ref().to_vec(),
        }
    }

    pub(super) fn rsa() -> Signer {
        Signer {
            kind: KeyKind::Rsa,
            bytes: pem_der(RSA_PRIVATE),
        }
    }

    pub(super) fn p256() -> Signer {
        Signer {
            kind: KeyKind::P256,
            bytes: pem_der(P256_PRIVATE),
        }
    }

    /// A fresh P-256 key, different from the fixture's.
    pub(super) fn p256_other() -> Signer {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .expect("generates");
        Signer {
            kind: KeyKind::P256,
            bytes: pkcs8.as_ref().to_vec(),
        }
    }

    pub(super) fn p384() -> Signer {
        Signer {
            kind: KeyKind::P384,
            bytes: pem_der(P384_PRIVATE),
        }
    }

    pub(super) fn ed25519() -> Signer {
        Signer {
            kind: KeyKind::Ed25519,
            bytes: pem_der(ED25519_PRIVATE),
        }
    }

    fn ecdsa(&self) -> EcdsaKeyPair {
        let alg = match self.kind {
            KeyKind::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            _ => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        };
        EcdsaKeyPair::from_pkcs8(alg, &self.bytes).expect("EC PKCS#8")
    }

    fn rsa_pair(&self) -> RsaKeyPair {
        RsaKeyPair::from_pkcs8(&self.bytes).expect("RSA PKCS#8")
    }

    fn ed(&self) -> Ed25519KeyPair {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.bytes).expect("Ed25519 PKCS#8")
    }

    /// The public key as a PEM `PUBLIC KEY` (EC keys only).
    pub(super) fn public_pem(&self) -> String {
        let der = self.ecdsa().public_key().as_der().expect("encodes");
        to_pem("PUBLIC KEY", der.as_ref())
    }

    fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match (self.kind, alg) {
            (KeyKind::Hmac, _) => {
                let algorithm = match alg {
                    "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
                    "HS512" => aws_lc_rs::hmac::HMAC_SHA512,
                    _ => aws_lc_rs::hmac::HMAC_SHA256,
                };
                let key = aws_lc_rs::hmac::Key::new(algorithm, &self.bytes);
                aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
            }
            (KeyKind::Rsa, _) => {
                let padding: &dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let pair = self.rsa_pair();
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).expect("signs");
                sig
            }
            (KeyKind::P256 | KeyKind::P384, _) => self
                .ecdsa()
                .sign(&rng, message)
                .expect("signs")
                .as_ref()
                .to_vec(),
            (KeyKind::Ed25519, _) => self.ed().sign(message).as_ref().to_vec(),
        }
    }
}

/// A compact JWS of `claims` with header `{"alg": alg, "kid": kid}`.
pub(super) fn sign(alg: &str, signer: &Signer, kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({ "alg": alg, "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    signed_with_header(signer, alg, &header.to_string(), claims)
}

/// A compact JWS with a header written out as given.
pub(super) fn signed_with_header(
    signer: &Signer,
    alg: &str,
    header: &str,
    claims: &Value,
) -> String {
    let input = format!(
        "{}.{}",
        base64_url(header.as_bytes()),
        base64_url(claims.to_string().as_bytes())
    );
    let sig = signer.sign(alg, input.as_bytes());
    format!("{input}.{}", base64_url(&sig))
}

/// A compact JWS whose payload is `payload` as is.
pub(super) fn signed_payload(signer: &Signer, alg: &str, payload: &[u8]) -> String {
    let header = json!({ "alg": alg }).to_string();
    let input = format!("{}.{}", base64_url(header.as_bytes()), base64_url(payload));
    let sig = signer.sign(alg, input.as_bytes());
    format!("{input}.{}", base64_url(&sig))
}

/// The public half of `signer` as a JWK.
pub(super) fn public_jwk(signer: &Signer, kid: &str) -> Value {
    match signer.kind {
        KeyKind::Rsa => {
            let pair = signer.rsa_pair();
            let parts = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            json!({"kty": "RSA", "kid": kid, "use": "sig", "n": base64_url(&parts.n), "e": base64_url(&parts.e)})
        }
        KeyKind::P256 | KeyKind::P384 => {
            let pair = signer.ecdsa();
            let point = pair.public_key().as_ref();
            let half = (point.len() - 1) / 2;
            let crv = if signer.kind == KeyKind::P256 {
                "P-256"
            } else {
                "P-384"
            };
            json!({
                "kty": "EC", "kid": kid, "crv": crv,
                "x": base64_url(&point[1..1 + half]), "y": base64_url(&point[1 + half..]),
            })
        }
        KeyKind::Ed25519 => {
            let pair = signer.ed();
            json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": base64_url(pair.public_key().as_ref())})
        }
        KeyKind::Hmac => unreachable!("no public half"),
    }
}

/// A file removed when dropped.
pub(super) struct TempFile(PathBuf);

impl TempFile {
    pub(super) fn new(contents: &str) -> TempFile {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringway-auth-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("writes temp file");
        TempFile(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Counts allocations made by the current thread while [`count_allocs`]
/// runs. It is the lib test binary's global allocator; outside a count it
/// only reads a thread-local flag.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc() {
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

// SAFETY: every operation is passed to the system allocator unchanged; the
// counting touches only const-initialised thread locals, which never
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
pub(super) fn count_allocs(f: impl FnOnce()) -> u64 {
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(|a| a.get())
}
