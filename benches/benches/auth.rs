//! Per-request cost of authentication: `Auth::authenticate` on a parsed
//! request head, for an API key and for bearer tokens with and without the
//! worker's verification cache. "cached" is every request after a token's
//! first (a hash of the token, one probe and a compare); "uncached" is an
//! authenticator with `cache-size = 0`, so every call checks the signature
//! and the claims, as a first request does.
//!
//! Every case authenticates successfully: refusals are not measured here.

#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ringway::bench::{parse_request, HeadLimits, RequestHead};
use ringway::bench::{Auth, AuthCache, Outcome};
use ringway_config::Config;
use sha2::{Digest, Sha256};

// Throwaway keys shared with the engine's tests (see that folder's README).
const P256_PRIVATE: &str = include_str!("../../engine/tests/fixtures/auth/ec-p256.pk8.pem");
const P256_PUBLIC: &str = include_str!("../../engine/tests/fixtures/auth/ec-p256.pub.pem");
const RSA_PRIVATE: &str = include_str!("../../engine/tests/fixtures/auth/rsa-2048.pk8.pem");
const RSA_PUBLIC: &str = include_str!("../../engine/tests/fixtures/auth/rsa-2048.pub.pem");
const HMAC_SECRET: &str = "a-benchmark-secret-of-at-least-32-bytes";
const API_KEY: &str = "bench-key-0123456789abcdef";
const ISSUER: &str = "https://sso.bench.invalid/";
const AUDIENCE: &str = "ringway-bench";

/// The authenticators, in config order: `AUTHENTICATORS[i]` is index `i`.
const AUTHENTICATORS: &[&str] = &[
    "keys",
    "es256",
    "es256-uncached",
    "hs256",
    "hs256-uncached",
    "rs256-uncached",
];

fn config() -> Config {
    let key_hash: String = Sha256::digest(API_KEY.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut toml = format!(
        r#"
[[listeners]]
address = "127.0.0.1:0"

[[consumers]]
name = "bench"
api-keys = ["sha256:{key_hash}"]

[[authenticators]]
name = "keys"
type = "api-key"
header = "x-api-key"
"#
    );
    let ec = format!("pem = '''\n{P256_PUBLIC}'''");
    let rsa = format!("pem = '''\n{RSA_PUBLIC}'''");
    let hmac = format!("secret = \"{HMAC_SECRET}\"");
    // (name, algorithm, key, cache-size)
    let jwt = [
        ("es256", "ES256", &ec, 4096),
        ("es256-uncached", "ES256", &ec, 0),
        ("hs256", "HS256", &hmac, 4096),
        ("hs256-uncached", "HS256", &hmac, 0),
        ("rs256-uncached", "RS256", &rsa, 0),
    ];
    for (name, alg, key, cache_size) in jwt {
        toml.push_str(&format!(
            r#"
[[authenticators]]
name = "{name}"
type = "jwt"
algorithms = ["{alg}"]
issuer = "{ISSUER}"
audience = ["{AUDIENCE}"]
leeway = "30s"
consumer-claim = "sub"
cache-size = {cache_size}

[[authenticators.keys]]
{key}
"#
        ));
    }
    toml.push_str("\n[[routes]]\npath-prefix = \"/\"\n[routes.respond]\n");
    Config::from_toml_str(&toml).expect("valid benchmark config")
}

/// A token for consumer "bench", good for a day from `now`.
fn token(alg: Algorithm, key: &EncodingKey, now: SystemTime) -> String {
    let iat = now
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bench",
        "iat": iat,
        "exp": iat + 86_400,
    });
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("signs")
}

/// A request as an API client sends it, with one credential header.
fn head(credential: &str) -> RequestHead {
    let text = format!(
        "GET /v1/orders/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: orders-client/3.2.1\r\n\
         Accept: application/json\r\n{credential}\r\n\r\n"
    );
    let limits = HeadLimits {
        max_head: 32 * 1024,
        max_headers: 100,
        max_target: 8 * 1024,
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

fn auth(c: &mut Criterion) {
    let config = config();
    let auth = Auth::compile(&config).expect("valid authenticators");
    let cache = AuthCache::new(&auth);
    let now = SystemTime::now();

    let ec = EncodingKey::from_ec_pem(P256_PRIVATE.as_bytes()).expect("P-256 key");
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("RSA key");
    let hmac = EncodingKey::from_secret(HMAC_SECRET.as_bytes());
    let es256 = token(Algorithm::ES256, &ec, now);
    let hs256 = token(Algorithm::HS256, &hmac, now);
    let rs256 = token(Algorithm::RS256, &rsa, now);

    let bearer = |token: &str| format!("Authorization: Bearer {token}");
    // (bench name, authenticator, credential header)
    let cases = [
        ("api-key", "keys", format!("X-Api-Key: {API_KEY}")),
        ("es256/cached", "es256", bearer(&es256)),
        ("es256/uncached", "es256-uncached", bearer(&es256)),
        ("hs256/cached", "hs256", bearer(&hs256)),
        ("hs256/uncached", "hs256-uncached", bearer(&hs256)),
        ("rs256/uncached", "rs256-uncached", bearer(&rs256)),
    ];

    let mut group = c.benchmark_group("auth");
    for (name, authenticator, credential) in &cases {
        let i = AUTHENTICATORS
            .iter()
            .position(|a| a == authenticator)
            .expect("listed authenticator");
        assert_eq!(auth.name(i), Some(*authenticator));
        let which = [i];
        let head = head(credential);
        // The first call fills the cache of a caching authenticator, so
        // the measured calls of "cached" cases are all hits.
        let want = Outcome::Consumer {
            consumer: 0,
            via: i,
        };
        assert_eq!(
            auth.authenticate(&cache, &which, &head, now),
            want,
            "{name}"
        );
        let hits_before = cache.stats(i).map(|s| s.hits);
        assert_eq!(
            hits_before.is_some(),
            name.ends_with("/cached"),
            "{name}: cache presence"
        );
        // A few seconds on: the token stays valid and any cache entry holds.
        let later = now + Duration::from_secs(5);
        group.bench_function(*name, |b| {
            b.iter(|| {
                std::hint::black_box(auth.authenticate(
                    &cache,
                    &which,
                    std::hint::black_box(&head),
                    later,
                ))
            })
        });
        assert_eq!(
            auth.authenticate(&cache, &which, &head, later),
            want,
            "{name}"
        );
        if let (Some(before), Some(after)) = (hits_before, cache.stats(i).map(|s| s.hits)) {
            assert!(after > before, "{name}: measured calls were cache hits");
            assert_eq!(
                cache.stats(i).map(|s| s.misses),
                Some(1),
                "{name}: one miss"
            );
        }
    }
    group.finish();
}

criterion_group!(benches, auth);
criterion_main!(benches);
