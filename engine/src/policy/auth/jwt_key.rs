//! JWT verification keys: HMAC secrets, PEM public keys and certificates,
//! and JSON Web Key sets (RFC 7517), turned into keys that each verify a
//! fixed set of algorithms (RFC 7518 §3.1, RFC 8037 for EdDSA).
//!
//! Every key is tagged with the algorithms it may verify: its family's
//! (HMAC, RSA for RS*/PS*, P-256 for ES256, P-384 for ES384, Ed25519 for
//! EdDSA), intersected with the authenticator's `algorithms` and, for a JWK
//! with an `alg`, that one. A token is only ever checked with a key whose
//! tag holds the token's `alg`, so algorithm confusion (an RS256 public key
//! used as an HS256 secret, an ES384 token against a P-256 key) cannot
//! happen: the pairing is fixed here, before any token is seen.
//!
//! Keys are checked as far as they can be without a signature: a PEM must be
//! a public key or certificate (never a private key), an RSA modulus 2048
//! to 8192 bits (what the verifier accepts), an EC point on its curve. The
//! cost is a few milliseconds per key at compile time, once per reload.
//!
//! A JWK set file is read whole when the config is compiled; its SHA-256
//! becomes part of the authenticator's cache identity, so rotating the file
//! and reloading drops tokens verified with the old keys.

use std::path::Path;

use aws_lc_rs::signature::{
    ParsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED,
    ED25519,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use ringway_config::{ConfigError, JwtAlgorithm, JwtKey, KeyMaterial};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error;

/// A set of JWT algorithms, one bit per [`JwtAlgorithm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AlgSet(u16);

impl AlgSet {
    pub(crate) fn of(algs: &[JwtAlgorithm]) -> AlgSet {
        AlgSet(algs.iter().fold(0, |set, &a| set | bit(a)))
    }

    pub(crate) fn contains(self, a: JwtAlgorithm) -> bool {
        self.0 & bit(a) != 0
    }

    fn and(self, other: AlgSet) -> AlgSet {
        AlgSet(self.0 & other.0)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `"ES256, ES384"`, for messages.
    pub(crate) fn names(self) -> String {
        JwtAlgorithm::ALL
            .iter()
            .filter(|&&a| self.contains(a))
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn bit(a: JwtAlgorithm) -> u16 {
    let i = JwtAlgorithm::ALL
        .iter()
        .position(|&x| x == a)
        .expect("ALL lists every algorithm");
    1 << i
}

/// The algorithm a token's `alg` names, if it is one we implement.
pub(crate) fn parse_alg(s: &str) -> Option<JwtAlgorithm> {
    JwtAlgorithm::ALL.into_iter().find(|a| a.as_str() == s)
}

pub(crate) fn jwt_algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::Hs256 => Algorithm::HS256,
        JwtAlgorithm::Hs384 => Algorithm::HS384,
        JwtAlgorithm::Hs512 => Algorithm::HS512,
        JwtAlgorithm::Rs256 => Algorithm::RS256,
        JwtAlgorithm::Rs384 => Algorithm::RS384,
        JwtAlgorithm::Rs512 => Algorithm::RS512,
        JwtAlgorithm::Ps256 => Algorithm::PS256,
        JwtAlgorithm::Ps384 => Algorithm::PS384,
        JwtAlgorithm::Ps512 => Algorithm::PS512,
        JwtAlgorithm::Es256 => Algorithm::ES256,
        JwtAlgorithm::Es384 => Algorithm::ES384,
        JwtAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

/// What kind of key material a key is; decides which algorithms it can
/// verify at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn algorithms(self) -> AlgSet {
        use JwtAlgorithm::*;
        match self {
            Family::Hmac => AlgSet::of(&[Hs256, Hs384, Hs512]),
            Family::Rsa => AlgSet::of(&[Rs256, Rs384, Rs512, Ps256, Ps384, Ps512]),
            Family::P256 => AlgSet::of(&[Es256]),
            Family::P384 => AlgSet::of(&[Es384]),
            Family::Ed25519 => AlgSet::of(&[EdDsa]),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Family::Hmac => "an HMAC secret",
            Family::Rsa => "an RSA key",
            Family::P256 => "an EC P-256 key",
            Family::P384 => "an EC P-384 key",
            Family::Ed25519 => "an Ed25519 key",
        }
    }
}

/// A key and the algorithms it may verify. `Debug` shows no key material.
#[derive(Debug)]
pub(crate) struct VerifyKey {
    /// When set, only tokens naming this `kid` are checked against it.
    pub(crate) kid: Option<Box<str>>,
    pub(crate) algorithms: AlgSet,
    pub(crate) key: DecodingKey,
}

/// Builds the keys of one JWT authenticator (`path` is its field path),
/// reporting every bad key. Returns the keys and the SHA-256 of the JWK set
/// file, if there is one.
pub(crate) fn compile_keys(
    path: &str,
    allowed: AlgSet,
    keys: &[JwtKey],
    jwks_file: Option<&Path>,
    errors: &mut Vec<ConfigError>,
) -> (Vec<VerifyKey>, Option<[u8; 32]>) {
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let (field, parsed) = match &k.material {
            KeyMaterial::Secret(s) => (
                "secret",
                Ok((Family::Hmac, DecodingKey::from_secret(s.as_bytes()))),
            ),
            KeyMaterial::Pem(pem) => ("pem", pem_key(pem)),
        };
        let at = format!("{path}.keys[{i}].{field}");
        let (family, key) = match parsed {
            Ok(parsed) => parsed,
            Err(message) => {
                errors.push(error(at, message));
                continue;
            }
        };
        let algorithms = family.algorithms().and(allowed);
        if algorithms.is_empty() {
            let message = match family {
                Family::Hmac => format!(
                    "a secret verifies HS256, HS384 or HS512 only, and algorithms lists {}",
                    allowed.names()
                ),
                _ => format!(
                    "not a PEM public key or certificate for {}: it holds {}",
                    allowed.names(),
                    family.describe()
                ),
            };
            errors.push(error(at, message));
            continue;
        }
        out.push(VerifyKey {
            kid: k.kid.as_deref().map(Into::into),
            algorithms,
            key,
        });
    }

    let mut digest = None;
    if let Some(file) = jwks_file {
        let at = format!("{path}.jwks-file");
        match std::fs::read(file) {
            Err(e) => errors.push(error(at, format!("cannot read {}: {e}", file.display()))),
            Ok(bytes) => {
                digest = Some(Sha256::digest(&bytes).into());
                let before = out.len();
                match jwk_set(&bytes, allowed, &mut out) {
                    Err(message) => errors.push(error(at, message)),
                    Ok(()) if out.len() == before => errors.push(error(
                        at,
                        format!(
                            "{}: no key in the set verifies {}",
                            file.display(),
                            allowed.names()
                        ),
                    )),
                    Ok(()) => {}
                }
            }
        }
    }
    (out, digest)
}

/// The label of the first PEM block in `text`, e.g. `PUBLIC KEY`.
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = text[start..].find("-----")?;
    Some(&text[start..start + len])
}

fn pem_key(pem: &str) -> Result<(Family, DecodingKey), String> {
    const NOT_PEM: &str = "not a PEM public key or certificate";
    match pem_label(pem) {
        Some("PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE") => {}
        Some(label) if label.contains("PRIVATE KEY") => {
            return Err(format!(
                "{label:?} is a private key; give the public key \
                 (`openssl pkey -in KEY -pubout`) or a certificate"
            ))
        }
        Some(label) => return Err(format!("{NOT_PEM}: a {label:?} block")),
        None => return Err(NOT_PEM.into()),
    }
    let pem = pem.as_bytes();
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        let der = key
            .try_get_as_bytes()
            .map_err(|e| format!("{NOT_PEM}: {e}"))?;
        let public = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|e| format!("not a valid RSA public key: {e}"))?;
        rsa_size(public.modulus_len() * 8)?;
        return Ok((Family::Rsa, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        let point = key
            .try_get_as_bytes()
            .map_err(|e| format!("{NOT_PEM}: {e}"))?;
        let family = ec_family(point).ok_or("an EC key on a curve other than P-256 and P-384")?;
        return Ok((family, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        let raw = key
            .try_get_as_bytes()
            .map_err(|e| format!("{NOT_PEM}: {e}"))?;
        parses(&ED25519, raw).ok_or("not a valid Ed25519 public key")?;
        return Ok((Family::Ed25519, key));
    }
    Err(format!(
        "{NOT_PEM}: not an RSA, EC P-256/P-384 or Ed25519 key"
    ))
}

/// The RSA verifier accepts moduli of 2048 to 8192 bits; refusing others
/// here turns "every token fails" into a config error.
fn rsa_size(bits: usize) -> Result<(), String> {
    if (2048..=8192).contains(&bits) {
        Ok(())
    } else {
        Err(format!(
            "RSA key of {bits} bits; 2048 to 8192 bits are supported"
        ))
    }
}

fn ec_family(point: &[u8]) -> Option<Family> {
    if parses(&ECDSA_P256_SHA256_FIXED, point).is_some() {
        Some(Family::P256)
    } else if parses(&ECDSA_P384_SHA384_FIXED, point).is_some() {
        Some(Family::P384)
    } else {
        None
    }
}

fn parses(alg: &'static dyn VerificationAlgorithm, key: &[u8]) -> Option<()> {
    ParsedPublicKey::new(alg, key).ok().map(|_| ())
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// The members of a JWK (RFC 7517 §4, RFC 7518 §6) we use; others, such
/// as `x5c`, are ignored.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

fn jwk_set(bytes: &[u8], allowed: AlgSet, out: &mut Vec<VerifyKey>) -> Result<(), String> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON Web Key set: {e}"))?;
    for (i, value) in set.keys.into_iter().enumerate() {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        let which = match &kid {
            Some(kid) => format!("keys[{i}] (kid {kid:?})"),
            None => format!("keys[{i}]"),
        };
        let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("{which}: {e}"))?;
        if let Some(key) = jwk_key(&jwk, allowed).map_err(|e| format!("{which}: {e}"))? {
            out.push(key);
        }
    }
    Ok(())
}

/// The key a JWK describes, or `None` for one that is fine but not for us:
/// an encryption key, or one for algorithms this authenticator does not
/// accept.
fn jwk_key(jwk: &Jwk, allowed: AlgSet) -> Result<Option<VerifyKey>, String> {
    // RFC 7517 §4.2/§4.3: a key meant for something else is not used to
    // verify signatures.
    if jwk.use_.as_deref().is_some_and(|u| u != "sig")
        || jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Ok(None);
    }
    let member = |name: &str, v: &Option<String>| -> Result<String, String> {
        v.clone()
            .ok_or_else(|| format!("{} key without {name:?}", jwk.kty))
    };
    let bad = |e: jsonwebtoken::errors::Error| format!("bad key parameters: {e}");
    let (family, key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let n = member("n", &jwk.n)?;
            let e = member("e", &jwk.e)?;
            let modulus = URL_SAFE_NO_PAD
                .decode(&n)
                .map_err(|e| format!("bad \"n\": {e}"))?;
            rsa_size(significant_bits(&modulus))?;
            (
                Family::Rsa,
                DecodingKey::from_rsa_components(&n, &e).map_err(bad)?,
            )
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let key = DecodingKey::from_ec_components(&member("x", &jwk.x)?, &member("y", &jwk.y)?)
                .map_err(bad)?;
            let want = if crv == "P-256" {
                Family::P256
            } else {
                Family::P384
            };
            let point = key.try_get_as_bytes().map_err(bad)?;
            if ec_family(point) != Some(want) {
                return Err(format!("not a point on {crv}"));
            }
            (want, key)
        }
        ("OKP", Some("Ed25519")) => {
            let key = DecodingKey::from_ed_components(&member("x", &jwk.x)?).map_err(bad)?;
            parses(&ED25519, key.try_get_as_bytes().map_err(bad)?)
                .ok_or("not a valid Ed25519 public key")?;
            (Family::Ed25519, key)
        }
        ("EC" | "OKP", crv) => return Err(format!("unsupported curve {crv:?}")),
        (kty, _) => return Err(format!("unsupported key type {kty:?}")),
    };
    let mut algorithms = family.algorithms().and(allowed);
    if let Some(alg) = &jwk.alg {
        let named = parse_alg(alg).ok_or_else(|| format!("unsupported alg {alg:?}"))?;
        if !family.algorithms().contains(named) {
            return Err(format!("alg {alg:?} does not fit {}", family.describe()));
        }
        algorithms = algorithms.and(AlgSet::of(&[named]));
    }
    if algorithms.is_empty() {
        return Ok(None);
    }
    Ok(Some(VerifyKey {
        kid: jwk.kid.as_deref().map(Into::into),
        algorithms,
        key,
    }))
}

/// Bit length of a big-endian unsigned integer.
fn significant_bits(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        Some(first) => (be.len() - first) * 8 - be[first].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use JwtAlgorithm::*;

    fn compile(allowed: &[JwtAlgorithm], keys: Vec<JwtKey>) -> Result<Vec<VerifyKey>, String> {
        let mut errors = Vec::new();
        let (keys, _) = compile_keys("a", AlgSet::of(allowed), &keys, None, &mut errors);
        match errors.first() {
            Some(e) => Err(format!("{}: {}", e.path, e.message)),
            None => Ok(keys),
        }
    }

    #[test]
    fn pem_keys_take_their_family_and_nothing_else() {
        type Case<'a> = (
            &'a str,
            &'a [JwtAlgorithm],
            Result<&'a [JwtAlgorithm], &'a str>,
        );
        let cases: &[Case<'_>] = &[
            (RSA_PUB, &[Rs256, Ps512, Es256], Ok(&[Rs256, Ps512])),
            (RSA_PKCS1_PUB, &[Rs384], Ok(&[Rs384])),
            (P256_PUB, &[Es256, Es384, Rs256], Ok(&[Es256])),
            (P256_CERT, &[Es256], Ok(&[Es256])),
            (P384_PUB, &[Es256, Es384], Ok(&[Es384])),
            (ED25519_PUB, &[EdDsa, Es256], Ok(&[EdDsa])),
            (
                P384_PUB,
                &[Es256],
                Err(
                    "a.keys[0].pem: not a PEM public key or certificate for ES256: \
                     it holds an EC P-384 key",
                ),
            ),
            (
                RSA_PUB,
                &[Es256, EdDsa],
                Err(
                    "a.keys[0].pem: not a PEM public key or certificate for ES256, EdDSA: \
                     it holds an RSA key",
                ),
            ),
            (
                RSA_PUB,
                &[Hs256],
                Err(
                    "a.keys[0].pem: not a PEM public key or certificate for HS256: \
                     it holds an RSA key",
                ),
            ),
            (
                RSA_1024_PUB,
                &[Rs256],
                Err("a.keys[0].pem: RSA key of 1024 bits; 2048 to 8192 bits are supported"),
            ),
            (
                P256_PRIVATE,
                &[Es256],
                Err(
                    "a.keys[0].pem: \"PRIVATE KEY\" is a private key; give the public key \
                     (`openssl pkey -in KEY -pubout`) or a certificate",
                ),
            ),
            (
                "hello",
                &[Es256],
                Err("a.keys[0].pem: not a PEM public key or certificate"),
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                &[Es256],
                Err("a.keys[0].pem: not a PEM public key or certificate: \
                     not an RSA, EC P-256/P-384 or Ed25519 key"),
            ),
        ];
        for (pem, allowed, want) in cases {
            let got = compile(allowed, vec![pem_key_def(Some("k"), pem)]);
            match (got, want) {
                (Ok(keys), Ok(algs)) => {
                    assert_eq!(keys.len(), 1);
                    assert_eq!(keys[0].algorithms, AlgSet::of(algs), "{pem}");
                    assert_eq!(keys[0].kid.as_deref(), Some("k"));
                }
                (Err(got), Err(want)) => assert_eq!(got, *want),
                (got, want) => panic!("{pem}: got {:?}, want {want:?}", got.map(|k| k.len())),
            }
        }
    }

    #[test]
    fn secrets_are_only_for_hmac() {
        let keys = compile(&[Hs256, Hs512], vec![secret_key(None, HMAC_SECRET)]).expect("ok");
        assert_eq!(keys[0].algorithms, AlgSet::of(&[Hs256, Hs512]));
        let err = compile(&[Rs256], vec![secret_key(None, HMAC_SECRET)]).expect_err("refused");
        assert_eq!(
            err,
            "a.keys[0].secret: a secret verifies HS256, HS384 or HS512 only, \
             and algorithms lists RS256"
        );
    }

    #[test]
    fn jwk_sets() {
        let p256 = public_jwk(&Signer::p256(), "p");
        let rsa = public_jwk(&Signer::rsa(), "r");
        let ed = public_jwk(&Signer::ed25519(), "e");
        let p384 = public_jwk(&Signer::p384(), "q");
        let enc =
            serde_json::json!({"kty": "RSA", "use": "enc", "kid": "x", "n": "AQAB", "e": "AQAB"});
        let set = |keys: Vec<serde_json::Value>| serde_json::json!({ "keys": keys }).to_string();
        type Case<'a> = (
            &'a str,
            &'a [JwtAlgorithm],
            String,
            Result<Vec<(&'a str, AlgSet)>, &'a str>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "several keys, each for its family",
                &[Es256, Rs256, EdDsa],
                set(vec![
                    p256.clone(),
                    rsa.clone(),
                    ed.clone(),
                    p384.clone(),
                    enc.clone(),
                ]),
                Ok(vec![
                    ("p", AlgSet::of(&[Es256])),
                    ("r", AlgSet::of(&[Rs256])),
                    ("e", AlgSet::of(&[EdDsa])),
                ]),
            ),
            (
                "alg narrows a key",
                &[Rs256, Ps256],
                set(vec![{
                    let mut k = rsa.clone();
                    k["alg"] = "PS256".into();
                    k
                }]),
                Ok(vec![("r", AlgSet::of(&[Ps256]))]),
            ),
            (
                "nothing usable",
                &[Es256],
                set(vec![rsa.clone(), enc.clone()]),
                Err("a.jwks-file: FILE: no key in the set verifies ES256"),
            ),
            (
                "unknown key type",
                &[Es256],
                set(vec![
                    p256.clone(),
                    serde_json::json!({"kty": "oct", "kid": "k9", "k": "c2VjcmV0"}),
                ]),
                Err("a.jwks-file: keys[1] (kid \"k9\"): unsupported key type \"oct\""),
            ),
            (
                "unsupported curve",
                &[Es256],
                set(vec![
                    serde_json::json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
                ]),
                Err("a.jwks-file: keys[0]: unsupported curve Some(\"P-521\")"),
            ),
            (
                "point on the wrong curve",
                &[Es256],
                set(vec![{
                    let mut k = p384.clone();
                    k["crv"] = "P-256".into();
                    k
                }]),
                Err("a.jwks-file: keys[0] (kid \"q\"): not a point on P-256"),
            ),
            (
                "alg that does not fit the key",
                &[Es256],
                set(vec![{
                    let mut k = p256.clone();
                    k["alg"] = "RS256".into();
                    k
                }]),
                Err("a.jwks-file: keys[0] (kid \"p\"): alg \"RS256\" does not fit an EC P-256 key"),
            ),
            (
                "missing member",
                &[Rs256],
                set(vec![
                    serde_json::json!({"kty": "RSA", "kid": "r", "e": "AQAB"}),
                ]),
                Err("a.jwks-file: keys[0] (kid \"r\"): RSA key without \"n\""),
            ),
            (
                "not a set",
                &[Es256],
                r#"{"key": []}"#.into(),
                Err(
                    "a.jwks-file: not a JSON Web Key set: missing field `keys` at line 1 column 11",
                ),
            ),
        ];
        for (name, allowed, text, want) in cases {
            let file = TempFile::new(&text);
            let mut errors = Vec::new();
            let (keys, digest) = compile_keys(
                "a",
                AlgSet::of(allowed),
                &[],
                Some(file.path()),
                &mut errors,
            );
            assert_eq!(
                digest,
                Some(Sha256::digest(text.as_bytes()).into()),
                "{name}"
            );
            match want {
                Ok(want) => {
                    assert!(errors.is_empty(), "{name}: {errors:?}");
                    let got: Vec<_> = keys
                        .iter()
                        .map(|k| (k.kid.as_deref().unwrap_or(""), k.algorithms))
                        .collect();
                    assert_eq!(got, want, "{name}");
                }
                Err(want) => {
                    let e = errors.first().expect(name);
                    let got = format!("{}: {}", e.path, e.message)
                        .replace(&file.path().display().to_string(), "FILE");
                    assert_eq!(got, want, "{name}");
                }
            }
        }
    }

    #[test]
    fn missing_jwks_file() {
        let mut errors = Vec::new();
        let path = Path::new("/nonexistent/ringway-jwks.json");
        let (_, digest) = compile_keys("a", AlgSet::of(&[Es256]), &[], Some(path), &mut errors);
        assert_eq!(digest, None);
        assert_eq!(errors[0].path, "a.jwks-file");
        assert!(
            errors[0]
                .message
                .starts_with("cannot read /nonexistent/ringway-jwks.json: No such file"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in JwtAlgorithm::ALL {
            assert_eq!(parse_alg(a.as_str()), Some(a));
            assert!(AlgSet::of(&[a]).contains(a));
        }
        assert_eq!(parse_alg("none"), None);
        assert_eq!(parse_alg("hs256"), None);
        assert_eq!(significant_bits(&[0, 0, 0x01, 0xff]), 9);
        assert_eq!(significant_bits(&[]), 0);
    }
}
