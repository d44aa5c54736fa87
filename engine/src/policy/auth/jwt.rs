//! Bearer JSON Web Tokens: RFC 6750 §2.1 (`Authorization: Bearer`), JWS
//! compact serialization (RFC 7515 §3.1/§5.2), JWA algorithms (RFC 7518
//! §3) and JWT claims (RFC 7519 §4.1, §7.2).
//!
//! A token is checked in this order, and nothing in it is trusted before
//! its signature is: three base64url parts; a header whose `alg` is one of
//! the authenticator's `algorithms` and which has no `crit` (we implement
//! no extension, RFC 7515 §4.1.11); a key chosen by `kid` among those
//! tagged for that `alg` (see `jwt_key`); the signature; then the claims:
//! `exp` (required), `nbf`, `iss`, `aud` and the consumer claim. Header
//! members that point elsewhere for keys (`jku`, `x5u`, `jwk`) are
//! ignored: keys come only from the config. A token naming a `kid` is
//! checked against the keys with that `kid` and those without one; a token
//! without `kid` only against keys without one. Each candidate costs a
//! signature check, so with several keys, give each a `kid`.
//!
//! `exp` is required: a token without one would be good forever, and so
//! would its cache entry; issuers of tokens for APIs set it as a rule.
//! Times are whole seconds with `leeway` (sub-second leeway is dropped) on
//! both sides: a token counts from `nbf - leeway` up to, not including,
//! `exp + leeway`, and its cache entry exactly as long. `aud` is only
//! checked when `audience` is configured (RFC 7519 §4.1.3 leaves who the
//! recipient is to the application; set `audience` to bind tokens to this
//! gateway).
//!
//! Signature checks are done by `jsonwebtoken` on aws-lc. A whole uncached
//! check costs ≈56 µs for ES256, ≈19 µs for RS256 (2048-bit) and ≈1.4 µs
//! for HS256 (release build, one core of the development machine). Verified
//! tokens are cached per worker until they expire, so a repeat costs a
//! SHA-256 of the token, one probe and a compare of its bytes (≈0.3 µs for
//! a 270-byte token) and allocates nothing.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;
use std::time::SystemTime;

use ahash::AHashMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ringway_config::{ConfigError, JwtSettings};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::cache::{Bounded, JwtEntry, MAX_CACHED_TOKEN};
use super::jwt_key::{compile_keys, jwt_algorithm, parse_alg, AlgSet, VerifyKey};
use super::{authorization, scheme_credentials, unix_seconds, Verdict};
use crate::http::head::RequestHead;

/// One `type = "jwt"` authenticator.
pub(crate) struct JwtAuth {
    allowed: AlgSet,
    keys: Vec<VerifyKey>,
    issuer: Option<Box<str>>,
    audience: Vec<Box<str>>,
    /// Whole seconds.
    leeway: i64,
    consumer_claim: Box<str>,
    cache_size: usize,
}

/// The JOSE header members we act on (RFC 7515 §4.1). A duplicated member
/// fails to parse, as RFC 7515 §5.2 allows.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// What a verified token says.
#[derive(Debug, PartialEq, Eq)]
struct Verified {
    consumer: String,
    valid_from: i64,
    valid_until: i64,
}

impl JwtAuth {
    /// Compiles one authenticator's settings; `None` after reporting
    /// errors. Also returns the SHA-256 of the JWK set file.
    pub(crate) fn compile(
        path: &str,
        s: &JwtSettings,
        errors: &mut Vec<ConfigError>,
    ) -> Option<(JwtAuth, Option<[u8; 32]>)> {
        let before = errors.len();
        let allowed = AlgSet::of(&s.algorithms);
        if allowed == AlgSet::default() {
            errors.push(super::error(
                format!("{path}.algorithms"),
                "at least one algorithm is required".into(),
            ));
        }
        let (keys, jwks) = compile_keys(
            path,
            allowed,
            &s.keys,
            s.jwks_file.as_deref().map(Path::new),
            errors,
        );
        if keys.is_empty() && errors.len() == before {
            errors.push(super::error(
                format!("{path}.keys"),
                "no key to verify tokens with".into(),
            ));
        }
        if errors.len() > before {
            return None;
        }
        let auth = JwtAuth {
            allowed,
            keys,
            issuer: s.issuer.as_deref().map(Into::into),
            audience: s.audience.iter().map(|a| a.as_str().into()).collect(),
            leeway: i64::try_from(s.leeway.as_secs()).unwrap_or(i64::MAX),
            consumer_claim: s.consumer_claim.as_str().into(),
            cache_size: s.cache_size,
        };
        Some((auth, jwks))
    }

    pub(crate) fn cache_size(&self) -> usize {
        self.cache_size
    }

    pub(crate) fn check(
        &self,
        head: &RequestHead,
        consumers: &AHashMap<Box<str>, usize>,
        cache: Option<&RefCell<Bounded<JwtEntry>>>,
        now: SystemTime,
    ) -> Verdict {
        let value = match authorization(head) {
            Ok(Some(value)) => value,
            Ok(None) => return Verdict::Absent,
            Err(reason) => return Verdict::Invalid(reason),
        };
        let Some(token) = scheme_credentials(value, b"bearer") else {
            return Verdict::Absent;
        };
        let now = unix_seconds(now);
        let resolve = |name: &str| match consumers.get(name) {
            Some(&c) => Verdict::Consumer(c),
            None => Verdict::Invalid("unknown consumer"),
        };

        let key = match cache {
            Some(_) if token.len() <= MAX_CACHED_TOKEN => {
                Some(<[u8; 32]>::from(Sha256::digest(token)))
            }
            _ => None,
        };
        if let (Some(cache), Some(key)) = (cache, &key) {
            let mut cache = cache.borrow_mut();
            if let Some(hit) = cache.get(key, |e| *e.token == *token) {
                return if now < hit.valid_from {
                    Verdict::Invalid("token not yet valid")
                } else if now >= hit.valid_until {
                    Verdict::Invalid("token expired")
                } else {
                    resolve(&hit.consumer)
                };
            }
        }

        let verified = match self.verify(token, now) {
            Ok(v) => v,
            Err(reason) => return Verdict::Invalid(reason),
        };
        let verdict = resolve(&verified.consumer);
        if let (Verdict::Consumer(_), Some(cache), Some(key)) = (&verdict, cache, key) {
            cache.borrow_mut().insert(
                key,
                JwtEntry {
                    token: token.into(),
                    consumer: verified.consumer.into(),
                    valid_from: verified.valid_from,
                    valid_until: verified.valid_until,
                },
            );
        }
        verdict
    }

    /// Checks a compact JWS and its claims at `now` (Unix seconds).
    fn verify(&self, token: &[u8], now: i64) -> Result<Verified, &'static str> {
        const MALFORMED: &str = "malformed token";
        let token = std::str::from_utf8(token).map_err(|_| MALFORMED)?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MALFORMED);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];

        let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| MALFORMED)?;
        let header: Header<'_> = serde_json::from_slice(&header).map_err(|_| MALFORMED)?;
        if header.crit.is_some() {
            return Err("unsupported critical header");
        }
        let alg = parse_alg(&header.alg)
            .filter(|&a| self.allowed.contains(a))
            .ok_or("algorithm not allowed")?;

        let kid = header.kid.as_deref();
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(alg))
            .filter(|k| k.kid.is_none() || k.kid.as_deref() == kid)
            .peekable();
        if candidates.peek().is_none() {
            return Err(if kid.is_some() {
                "unknown key id"
            } else {
                "no key for this algorithm"
            });
        }
        let mut verified = false;
        for k in candidates {
            match jsonwebtoken::crypto::verify(
                signature,
                signing_input.as_bytes(),
                &k.key,
                jwt_algorithm(alg),
            ) {
                Ok(true) => {
                    verified = true;
                    break;
                }
                Ok(false) => {}
                Err(_) => return Err(MALFORMED),
            }
        }
        if !verified {
            return Err("bad signature");
        }

        let claims = URL_SAFE_NO_PAD.decode(payload).map_err(|_| MALFORMED)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&claims).map_err(|_| "malformed claims")?;
        self.check_claims(&claims, now)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: i64,
    ) -> Result<Verified, &'static str> {
        let exp = match claims.get("exp") {
            None => return Err("token has no exp"),
            Some(v) => numeric_date(v, false).ok_or("malformed exp")?,
        };
        let nbf = match claims.get("nbf") {
            None => None,
            Some(v) => Some(numeric_date(v, true).ok_or("malformed nbf")?),
        };
        let valid_until = exp.saturating_add(self.leeway);
        let valid_from = nbf.map_or(i64::MIN, |nbf| nbf.saturating_sub(self.leeway));
        if now >= valid_until {
            return Err("token expired");
        }
        if now < valid_from {
            return Err("token not yet valid");
        }

        if let Some(issuer) = &self.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(&**issuer) {
                return Err("wrong issuer");
            }
        }
        if !self.audience.is_empty() {
            let ours = |v: &Value| {
                v.as_str()
                    .is_some_and(|a| self.audience.iter().any(|w| **w == *a))
            };
            let matches = match claims.get("aud") {
                Some(Value::Array(auds)) => auds.iter().any(ours),
                Some(aud) => ours(aud),
                None => false,
            };
            if !matches {
                return Err("wrong audience");
            }
        }
        let consumer = match claims.get(&*self.consumer_claim) {
            None => return Err("no consumer claim"),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("consumer claim is not a string"),
        };
        Ok(Verified {
            consumer,
            valid_from,
            valid_until,
        })
    }
}

/// A NumericDate (RFC 7519 §2) as whole seconds; fractions round toward
/// the stricter side (`exp` down, `nbf` up). `None` if not a number.
fn numeric_date(v: &Value, round_up: bool) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    if v.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let f = v.as_f64()?;
    let f = if round_up { f.ceil() } else { f.floor() };
    // `as` saturates, which is the right answer for dates past i64.
    Some(f as i64)
}

#[cfg(test)]
mod tests {
    use ringway_config::{JwtAlgorithm, JwtKey};
    use serde_json::json;

    use super::super::testutil::*;
    use super::super::{Auth, AuthCache, Outcome};
    use JwtAlgorithm::*;

    fn auth_with(settings: ringway_config::JwtSettings) -> Auth {
        Auth::compile(&config(
            vec![consumer("alice"), consumer("bob")],
            vec![jwt_auth("jwt", settings)],
        ))
        .expect("valid")
    }

    fn check(auth: &Auth, cache: &AuthCache, token: &str, now: i64) -> Outcome {
        let head = request("/", &[format!("Authorization: Bearer {token}")]);
        auth.authenticate(cache, &[0], &head, at(now))
    }

    const ALICE: Outcome = Outcome::Consumer {
        consumer: 0,
        via: 0,
    };

    fn invalid(reason: &'static str) -> Outcome {
        Outcome::Invalid { via: 0, reason }
    }

    #[test]
    fn every_algorithm_family_verifies() {
        let rsa = Signer::rsa();
        let cases: Vec<(JwtAlgorithm, Signer, JwtKey)> = vec![
            (
                Hs256,
                Signer::hmac(HMAC_SECRET),
                secret_key(None, HMAC_SECRET),
            ),
            (
                Hs384,
                Signer::hmac(HMAC_SECRET),
                secret_key(None, HMAC_SECRET),
            ),
            (
                Hs512,
                Signer::hmac(HMAC_SECRET),
                secret_key(None, HMAC_SECRET),
            ),
            (Rs256, rsa.clone(), pem_key_def(None, RSA_PUB)),
            (Rs384, rsa.clone(), pem_key_def(None, RSA_PKCS1_PUB)),
            (Rs512, rsa.clone(), pem_key_def(None, RSA_PUB)),
            (Ps256, rsa.clone(), pem_key_def(None, RSA_PUB)),
            (Ps384, rsa.clone(), pem_key_def(None, RSA_PUB)),
            (Ps512, rsa.clone(), pem_key_def(None, RSA_PUB)),
            (Es256, Signer::p256(), pem_key_def(None, P256_PUB)),
            (Es256, Signer::p256(), pem_key_def(None, P256_CERT)),
            (Es384, Signer::p384(), pem_key_def(None, P384_PUB)),
            (EdDsa, Signer::ed25519(), pem_key_def(None, ED25519_PUB)),
        ];
        for (alg, signer, key) in cases {
            let auth = auth_with(jwt_settings(&[alg], vec![key]));
            let cache = AuthCache::new(&auth);
            let token = sign(alg.as_str(), &signer, None, &claims("alice", NOW + 60));
            assert_eq!(check(&auth, &cache, &token, NOW), ALICE, "{}", alg.as_str());

            // One flipped bit in the signature.
            let mut bad = token.into_bytes();
            let last = bad.len() - 2;
            bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).expect("ascii");
            assert_eq!(
                check(&auth, &cache, &bad, NOW),
                invalid("bad signature"),
                "{}",
                alg.as_str()
            );
        }
    }

    #[test]
    fn claims_table() {
        let mut settings = jwt_settings(&[Hs256], vec![secret_key(None, HMAC_SECRET)]);
        settings.issuer = Some("https://issuer.example".into());
        settings.audience = vec!["api".into(), "gateway".into()];
        let auth = auth_with(settings);
        let base = || json!({"sub": "alice", "exp": NOW + 60, "iss": "https://issuer.example", "aud": "api"});
        let with = |k: &str, v: serde_json::Value| {
            let mut c = base();
            c[k] = v;
            c
        };
        let without = |k: &str| {
            let mut c = base();
            c.as_object_mut().expect("object").remove(k);
            c
        };
        let cases: Vec<(&str, serde_json::Value, Outcome)> = vec![
            ("valid", base(), ALICE),
            (
                "audience in an array",
                with("aud", json!(["other", "gateway"])),
                ALICE,
            ),
            (
                "expired past leeway",
                with("exp", json!(NOW - 30)),
                invalid("token expired"),
            ),
            ("expired within leeway", with("exp", json!(NOW - 29)), ALICE),
            (
                "exp as a fraction",
                with("exp", json!((NOW - 29) as f64 + 0.9)),
                ALICE,
            ),
            ("no exp", without("exp"), invalid("token has no exp")),
            (
                "exp not a number",
                with("exp", json!("soon")),
                invalid("malformed exp"),
            ),
            (
                "not yet valid",
                with("nbf", json!(NOW + 31)),
                invalid("token not yet valid"),
            ),
            ("nbf within leeway", with("nbf", json!(NOW + 30)), ALICE),
            (
                "nbf not a number",
                with("nbf", json!(null)),
                invalid("malformed nbf"),
            ),
            (
                "wrong issuer",
                with("iss", json!("https://evil.example")),
                invalid("wrong issuer"),
            ),
            ("no issuer", without("iss"), invalid("wrong issuer")),
            (
                "wrong audience",
                with("aud", json!("other")),
                invalid("wrong audience"),
            ),
            (
                "wrong audiences",
                with("aud", json!(["a", "b"])),
                invalid("wrong audience"),
            ),
            ("no audience", without("aud"), invalid("wrong audience")),
            (
                "unknown consumer",
                with("sub", json!("mallory")),
                invalid("unknown consumer"),
            ),
            (
                "no consumer claim",
                without("sub"),
                invalid("no consumer claim"),
            ),
            (
                "numeric consumer",
                with("sub", json!(7)),
                invalid("consumer claim is not a string"),
            ),
        ];
        for (name, claims, want) in cases {
            let cache = AuthCache::new(&auth);
            let token = hs256_token(&claims);
            assert_eq!(check(&auth, &cache, &token, NOW), want, "{name}");
        }
    }

    #[test]
    fn malformed_tokens() {
        let auth = auth_with(jwt_settings(&[Hs256], vec![secret_key(None, HMAC_SECRET)]));
        let cache = AuthCache::new(&auth);
        let good = hs256_token(&claims("alice", NOW + 60));
        let parts: Vec<&str> = good.split('.').collect();
        let b64 = |s: &str| base64_url(s.as_bytes());
        let signer = Signer::hmac(HMAC_SECRET);
        let cases: Vec<(&str, String, Outcome)> = vec![
            ("empty", String::new(), invalid("malformed token")),
            ("one part", "abc".into(), invalid("malformed token")),
            (
                "two parts",
                format!("{}.{}", parts[0], parts[1]),
                invalid("malformed token"),
            ),
            (
                "four parts",
                format!("{good}.x"),
                invalid("malformed token"),
            ),
            (
                "bad base64 header",
                format!("!!.{}.{}", parts[1], parts[2]),
                invalid("malformed token"),
            ),
            (
                "padded header",
                format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
                invalid("malformed token"),
            ),
            (
                "header not JSON",
                format!("{}.{}.{}", b64("nope"), parts[1], parts[2]),
                invalid("malformed token"),
            ),
            (
                "header without alg",
                format!("{}.{}.{}", b64("{}"), parts[1], parts[2]),
                invalid("malformed token"),
            ),
            (
                "duplicate alg",
                signed_with_header(
                    &signer,
                    "HS256",
                    r#"{"alg":"HS256","alg":"none"}"#,
                    &claims("alice", NOW + 60),
                ),
                invalid("malformed token"),
            ),
            (
                "crit",
                signed_with_header(
                    &signer,
                    "HS256",
                    r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
                    &claims("alice", NOW + 60),
                ),
                invalid("unsupported critical header"),
            ),
            (
                "bad base64 signature",
                format!("{}.{}.!!", parts[0], parts[1]),
                invalid("malformed token"),
            ),
            (
                "claims not JSON",
                signed_payload(&signer, "HS256", b"not json"),
                invalid("malformed claims"),
            ),
            (
                "claims not an object",
                signed_payload(&signer, "HS256", b"[1]"),
                invalid("malformed claims"),
            ),
            (
                "alg none",
                format!("{}.{}.", b64(r#"{"alg":"none"}"#), parts[1]),
                invalid("algorithm not allowed"),
            ),
            (
                "alg not configured",
                sign("HS512", &signer, None, &claims("alice", NOW + 60)),
                invalid("algorithm not allowed"),
            ),
        ];
        for (name, token, want) in cases {
            assert_eq!(check(&auth, &cache, &token, NOW), want, "{name}");
        }
        // A Bearer scheme with nothing after it is a credential, and bad.
        let head = request("/", &["Authorization: Bearer".into()]);
        assert_eq!(
            auth.authenticate(&cache, &[0], &head, at(NOW)),
            invalid("malformed token")
        );
    }

    #[test]
    fn algorithm_confusion_is_impossible() {
        // The classic attack: an HS256 token whose HMAC key is the server's
        // RSA public key, as the PEM text it publishes.
        let forged = sign(
            "HS256",
            &Signer::hmac(RSA_PUB.as_bytes()),
            None,
            &claims("alice", NOW + 60),
        );
        let rsa_only = auth_with(jwt_settings(&[Rs256], vec![pem_key_def(None, RSA_PUB)]));
        let cache = AuthCache::new(&rsa_only);
        assert_eq!(
            check(&rsa_only, &cache, &forged, NOW),
            invalid("algorithm not allowed")
        );

        // Even with HS256 allowed beside RS256 (the config refuses the mix;
        // the engine must not depend on that), the PEM key is never an
        // HMAC secret.
        let mixed = auth_with(jwt_settings(
            &[Rs256, Hs256],
            vec![pem_key_def(None, RSA_PUB)],
        ));
        let cache = AuthCache::new(&mixed);
        assert_eq!(
            check(&mixed, &cache, &forged, NOW),
            invalid("no key for this algorithm")
        );

        // And an ES384 token cannot be checked with a P-256 key.
        let es = auth_with(jwt_settings(
            &[Es256, Es384],
            vec![
                pem_key_def(None, P256_PUB),
                pem_key_def(Some("b"), P384_PUB),
            ],
        ));
        let cache = AuthCache::new(&es);
        let es384 = sign("ES384", &Signer::p384(), None, &claims("alice", NOW + 60));
        assert_eq!(
            check(&es, &cache, &es384, NOW),
            invalid("no key for this algorithm")
        );
        let es384 = sign(
            "ES384",
            &Signer::p384(),
            Some("b"),
            &claims("alice", NOW + 60),
        );
        assert_eq!(check(&es, &cache, &es384, NOW), ALICE);
    }

    #[test]
    fn keys_are_chosen_by_kid() {
        let other = Signer::p256_other();
        let auth = auth_with(jwt_settings(
            &[Es256],
            vec![
                pem_key_def(Some("a"), P256_PUB),
                pem_key_def(Some("b"), &other.public_pem()),
            ],
        ));
        let cache = AuthCache::new(&auth);
        let c = claims("alice", NOW + 60);
        let cases: Vec<(&str, String, Outcome)> = vec![
            (
                "kid a",
                sign("ES256", &Signer::p256(), Some("a"), &c),
                ALICE,
            ),
            ("kid b", sign("ES256", &other, Some("b"), &c), ALICE),
            (
                "right key, wrong kid",
                sign("ES256", &other, Some("a"), &c),
                invalid("bad signature"),
            ),
            (
                "unknown kid",
                sign("ES256", &other, Some("zz"), &c),
                invalid("unknown key id"),
            ),
            (
                "no kid, only kid keys",
                sign("ES256", &other, None, &c),
                invalid("no key for this algorithm"),
            ),
        ];
        for (name, token, want) in cases {
            assert_eq!(check(&auth, &cache, &token, NOW), want, "{name}");
        }

        // A key without kid is tried for every token, after none matched.
        let auth = auth_with(jwt_settings(
            &[Es256],
            vec![
                pem_key_def(Some("a"), P256_PUB),
                pem_key_def(None, &other.public_pem()),
            ],
        ));
        let cache = AuthCache::new(&auth);
        for kid in [None, Some("a"), Some("zz")] {
            let token = sign("ES256", &other, kid, &c);
            assert_eq!(check(&auth, &cache, &token, NOW), ALICE, "{kid:?}");
        }
    }

    #[test]
    fn jwks_file_with_several_keys() {
        let p256 = Signer::p256();
        let rsa = Signer::rsa();
        let ed = Signer::ed25519();
        let set = json!({"keys": [
            public_jwk(&rsa, "r1"),
            public_jwk(&p256, "p1"),
            public_jwk(&ed, "e1"),
        ]});
        let file = TempFile::new(&set.to_string());
        let mut settings = jwt_settings(&[Rs256, Es256, EdDsa], vec![]);
        settings.jwks_file = Some(file.path().to_path_buf());
        let auth = auth_with(settings);
        let cache = AuthCache::new(&auth);
        let c = claims("bob", NOW + 60);
        let bob = Outcome::Consumer {
            consumer: 1,
            via: 0,
        };
        for (alg, signer, kid) in [
            ("RS256", &rsa, "r1"),
            ("ES256", &p256, "p1"),
            ("EdDSA", &ed, "e1"),
        ] {
            assert_eq!(
                check(&auth, &cache, &sign(alg, signer, Some(kid), &c), NOW),
                bob,
                "{alg}"
            );
        }
        assert_eq!(
            check(&auth, &cache, &sign("ES256", &p256, Some("r1"), &c), NOW),
            invalid("unknown key id")
        );
    }

    #[test]
    fn cache_hits_and_expiry() {
        let mut settings = jwt_settings(&[Es256], vec![pem_key_def(None, P256_PUB)]);
        settings.leeway = std::time::Duration::from_secs(5);
        let auth = auth_with(settings);
        let cache = AuthCache::new(&auth);
        let mut c = claims("alice", NOW + 60);
        c["nbf"] = json!(NOW - 10);
        let token = sign("ES256", &Signer::p256(), None, &c);

        assert_eq!(check(&auth, &cache, &token, NOW), ALICE);
        assert_eq!(check(&auth, &cache, &token, NOW + 64), ALICE);
        let s = cache.stats(0).expect("cache");
        assert_eq!((s.entries, s.inserts, s.hits, s.misses), (1, 1, 1, 1));

        // Served from the cache, still judged by the clock.
        assert_eq!(
            check(&auth, &cache, &token, NOW + 65),
            invalid("token expired")
        );
        assert_eq!(
            check(&auth, &cache, &token, NOW - 16),
            invalid("token not yet valid")
        );
        assert_eq!(check(&auth, &cache, &token, NOW - 15), ALICE);
        let s = cache.stats(0).expect("cache");
        assert_eq!((s.inserts, s.hits), (1, 4));

        // A token that differs in its signature only is not a hit.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(check(&auth, &cache, &forged, NOW), invalid("bad signature"));
        assert_eq!(cache.stats(0).expect("cache").entries, 1);
    }

    #[test]
    fn cache_is_bounded_and_carried_over_unchanged_authenticators() {
        let mut settings = jwt_settings(&[Hs256], vec![secret_key(None, HMAC_SECRET)]);
        settings.cache_size = 2;
        let auth = auth_with(settings.clone());
        let cache = AuthCache::new(&auth);
        for i in 0..3 {
            let mut c = claims("alice", NOW + 60);
            c["jti"] = json!(i);
            assert_eq!(check(&auth, &cache, &hs256_token(&c), NOW), ALICE);
        }
        let s = cache.stats(0).expect("cache");
        assert_eq!((s.entries, s.evictions), (2, 1));

        // The same authenticator in a new config keeps the entries; a
        // changed one (here its leeway) starts empty.
        let same = auth_with(settings.clone());
        assert_eq!(same.cache_key(0), auth.cache_key(0));
        let cache = AuthCache::carry_over(&same, &cache);
        assert_eq!(cache.stats(0).expect("cache").entries, 2);
        settings.leeway = std::time::Duration::from_secs(1);
        let changed = auth_with(settings);
        assert_ne!(changed.cache_key(0), auth.cache_key(0));
        let cache = AuthCache::carry_over(&changed, &cache);
        assert_eq!(cache.stats(0).expect("cache").entries, 0);
    }

    #[test]
    fn unknown_consumer_is_not_cached() {
        let auth = auth_with(jwt_settings(&[Hs256], vec![secret_key(None, HMAC_SECRET)]));
        let cache = AuthCache::new(&auth);
        let token = hs256_token(&claims("mallory", NOW + 60));
        for _ in 0..2 {
            assert_eq!(
                check(&auth, &cache, &token, NOW),
                invalid("unknown consumer")
            );
        }
        assert_eq!(cache.stats(0).expect("cache").entries, 0);
    }

    #[test]
    fn custom_consumer_claim() {
        let mut settings = jwt_settings(&[Hs256], vec![secret_key(None, HMAC_SECRET)]);
        settings.consumer_claim = "client_id".into();
        let auth = auth_with(settings);
        let cache = AuthCache::new(&auth);
        let token = hs256_token(&json!({"sub": "alice", "client_id": "bob", "exp": NOW + 60}));
        assert_eq!(
            check(&auth, &cache, &token, NOW),
            Outcome::Consumer {
                consumer: 1,
                via: 0
            }
        );
    }

    #[test]
    fn numeric_dates() {
        use super::numeric_date;
        let cases: &[(serde_json::Value, bool, Option<i64>)] = &[
            (json!(5), false, Some(5)),
            (json!(-5), false, Some(-5)),
            (json!(5.5), false, Some(5)),
            (json!(5.5), true, Some(6)),
            (json!(u64::MAX), false, Some(i64::MAX)),
            (json!(1e300), false, Some(i64::MAX)),
            (json!("5"), false, None),
            (json!(null), false, None),
        ];
        for (v, up, want) in cases {
            assert_eq!(numeric_date(v, *up), *want, "{v}");
        }
    }
}
