//! `[[authenticators]]` → [`Authenticator`]: API key, Basic and JWT.
//!
//! One table holds the keys of every `type`, and a key of another type is
//! an error naming both, rather than an ignored setting: `realm` on a JWT
//! authenticator would otherwise look configured and do nothing.
//!
//! The JWT rules guard against the classic mistakes. An authenticator
//! accepts either HMAC algorithms (`HS*`, a shared `secret`) or asymmetric
//! ones (a `pem` public key or a JWKS), never both: a verifier that accepts
//! `HS256` next to `RS256` can be handed a token signed with the public key
//! as an HMAC secret (the "algorithm confusion" attack). An HMAC secret is
//! at least 32 bytes, as RFC 7518 §3.2 asks of HS256, and a PEM holding a
//! private key is refused, since verifying never needs one and the config is
//! shown through the admin API. Key material is otherwise only checked for
//! shape; the engine parses it, and reports what it cannot use.

use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{defaults, duration, integer, text, AllowZero, Names};
use crate::error::Reporter;
use crate::model::{AuthKind, Authenticator, JwtAlgorithm, JwtKey, JwtSettings, KeyMaterial};
use crate::raw::{Item, RawAuthenticator, RawJwtKey};
use crate::units::format_duration;

/// The `type`s, as written.
const TYPES: &[&str] = &["api-key", "basic", "jwt"];

/// `cache-size` bounds: 0 disables the cache; a million entries of a few
/// hundred bytes each is as much memory per worker as anyone should spend.
const CACHE_SIZE: RangeInclusive<i64> = 0..=1_000_000;
/// Longest `leeway`: clocks that disagree by more are broken, and a wider
/// window keeps expired tokens alive.
const MAX_LEEWAY: Duration = Duration::from_secs(600);
/// Shortest HMAC secret, in bytes (RFC 7518 §3.2: at least the hash size).
const MIN_SECRET_LEN: usize = 32;

pub(super) fn authenticators(
    items: &[Item<RawAuthenticator>],
    r: &mut Reporter<'_>,
) -> Option<Vec<Authenticator>> {
    let mut names = Names::new("authenticators");
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(raw) = &item.value else {
            out.push(None);
            continue;
        };
        let path = format!("authenticators[{i}]");
        let name = names.required(
            raw.name.as_ref(),
            i,
            &item.span,
            "an authenticator needs a name for routes to list in `auth`",
            r,
        );
        let kind = kind(raw, &path, &item.span, r);
        out.push(
            name.zip(kind)
                .map(|(name, kind)| Authenticator { name, kind }),
        );
    }
    out.into_iter().collect()
}

/// The key named by `type`, with its settings; `None` when `type` is
/// missing or unknown (the other keys are then not judged) or anything
/// else was reported.
fn kind(
    raw: &RawAuthenticator,
    path: &str,
    element: &Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<AuthKind> {
    let Some(kind) = &raw.kind else {
        r.error(
            format!("{path}.type"),
            Some(element.clone()),
            "missing; set type = \"api-key\", \"basic\" or \"jwt\"",
        );
        return None;
    };
    let kind_name = kind.get_ref().as_str();
    if !TYPES.contains(&kind_name) {
        r.error(
            format!("{path}.type"),
            Some(kind.span()),
            format!("expected \"api-key\", \"basic\" or \"jwt\", found {kind_name:?}"),
        );
        return None;
    }
    let misplaced = misplaced_keys(raw, kind_name, path, r);
    let kind = match kind_name {
        "api-key" => api_key(raw, path, r),
        "basic" => basic(raw, path, r),
        _ => jwt(raw, path, element, r).map(AuthKind::Jwt),
    };
    kind.filter(|_| misplaced == 0)
}

/// A type-specific key: its name, where it is set (if it is), and the
/// `type`s it belongs to.
type KeyOwners = (&'static str, Option<Range<usize>>, &'static [&'static str]);

/// Reports each key set that belongs to another `type`; returns how many.
fn misplaced_keys(raw: &RawAuthenticator, kind: &str, path: &str, r: &mut Reporter<'_>) -> usize {
    let owners: [KeyOwners; 12] = [
        (
            "header",
            raw.header.as_ref().map(Spanned::span),
            &["api-key"],
        ),
        ("query", raw.query.as_ref().map(Spanned::span), &["api-key"]),
        ("realm", raw.realm.as_ref().map(Spanned::span), &["basic"]),
        (
            "cache-ttl",
            raw.cache_ttl.as_ref().map(Spanned::span),
            &["basic"],
        ),
        (
            "cache-size",
            raw.cache_size.as_ref().map(Spanned::span),
            &["basic", "jwt"],
        ),
        (
            "algorithms",
            raw.algorithms.as_ref().map(Spanned::span),
            &["jwt"],
        ),
        ("keys", raw.keys.as_ref().map(Spanned::span), &["jwt"]),
        (
            "jwks-file",
            raw.jwks_file.as_ref().map(Spanned::span),
            &["jwt"],
        ),
        ("issuer", raw.issuer.as_ref().map(Spanned::span), &["jwt"]),
        (
            "audience",
            raw.audience.as_ref().map(Spanned::span),
            &["jwt"],
        ),
        ("leeway", raw.leeway.as_ref().map(Spanned::span), &["jwt"]),
        (
            "consumer-claim",
            raw.consumer_claim.as_ref().map(Spanned::span),
            &["jwt"],
        ),
    ];
    let mut count = 0;
    for (key, at, types) in owners {
        let Some(at) = at.filter(|_| !types.contains(&kind)) else {
            continue;
        };
        let owners: Vec<String> = types.iter().map(|t| format!("type = {t:?}")).collect();
        r.error(
            format!("{path}.{key}"),
            Some(at),
            format!(
                "`{key}` is not a key of type = {kind:?} authenticators; it applies to {}",
                owners.join(" and ")
            ),
        );
        count += 1;
    }
    count
}

fn api_key(raw: &RawAuthenticator, path: &str, r: &mut Reporter<'_>) -> Option<AuthKind> {
    let header = match &raw.header {
        None => Some(defaults::API_KEY_HEADER.to_owned()),
        Some(h) => text::credential_header(h.get_ref())
            .map_err(|message| r.error(format!("{path}.header"), Some(h.span()), message))
            .ok(),
    };
    let query = match &raw.query {
        None => Some(None),
        Some(q) => text::query_param(q.get_ref())
            .map(|()| Some(q.get_ref().clone()))
            .map_err(|message| r.error(format!("{path}.query"), Some(q.span()), message))
            .ok(),
    };
    Some(AuthKind::ApiKey {
        header: header?,
        query: query?,
    })
}

fn basic(raw: &RawAuthenticator, path: &str, r: &mut Reporter<'_>) -> Option<AuthKind> {
    let realm = match &raw.realm {
        None => Some(defaults::BASIC_REALM.to_owned()),
        Some(v) => text::realm(v.get_ref())
            .map(|()| v.get_ref().clone())
            .map_err(|message| r.error(format!("{path}.realm"), Some(v.span()), message))
            .ok(),
    };
    let cache_size = cache_size(raw, path, defaults::BASIC_CACHE_SIZE, r);
    // Zero is refused: `cache-size = 0` is the way to turn caching off.
    let cache_ttl = raw
        .cache_ttl
        .as_ref()
        .map_or(Some(defaults::BASIC_CACHE_TTL), |v| {
            duration(v, &format!("{path}.cache-ttl"), AllowZero::No, r)
        });
    Some(AuthKind::Basic {
        realm: realm?,
        cache_size: cache_size?,
        cache_ttl: cache_ttl?,
    })
}

fn cache_size(
    raw: &RawAuthenticator,
    path: &str,
    default: usize,
    r: &mut Reporter<'_>,
) -> Option<usize> {
    match &raw.cache_size {
        None => Some(default),
        Some(v) => integer(v, &format!("{path}.cache-size"), CACHE_SIZE, r)
            .and_then(|n| usize::try_from(n).ok()),
    }
}

fn jwt(
    raw: &RawAuthenticator,
    path: &str,
    element: &Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<JwtSettings> {
    let algorithms = algorithms(raw, path, element, r);
    // Whether the algorithms are HMAC ones; `None` when they failed, and
    // then keys are not judged against them.
    let hmac = algorithms
        .as_ref()
        .and_then(|a| a.first())
        .map(|a| a.is_hmac());
    let keys = match &raw.keys {
        None => Some(Vec::new()),
        Some(list) => keys(list.get_ref(), path, hmac, algorithms.as_deref(), r),
    };
    let jwks_file = match &raw.jwks_file {
        None => Some(None),
        Some(f) if f.get_ref().is_empty() => {
            r.error(
                format!("{path}.jwks-file"),
                Some(f.span()),
                "empty path; leave `jwks-file` out to use `keys` only",
            );
            None
        }
        Some(f) if hmac == Some(true) => {
            r.error(
                format!("{path}.jwks-file"),
                Some(f.span()),
                "HMAC algorithms verify with a `secret` in `keys`; a JWKS holds public keys, \
                 which must never serve as HMAC secrets",
            );
            None
        }
        Some(f) => Some(Some(PathBuf::from(f.get_ref()))),
    };
    let no_keys = raw.keys.as_ref().is_none_or(|k| k.get_ref().is_empty());
    if no_keys && raw.jwks_file.is_none() {
        let at = raw
            .keys
            .as_ref()
            .map_or_else(|| element.clone(), Spanned::span);
        r.error(
            format!("{path}.keys"),
            Some(at),
            "a JWT authenticator needs `keys` or a `jwks-file` to verify tokens with",
        );
        return None;
    }
    let issuer = match &raw.issuer {
        None => Some(None),
        Some(v) => text::label(v.get_ref())
            .map(|()| Some(v.get_ref().clone()))
            .map_err(|message| r.error(format!("{path}.issuer"), Some(v.span()), message))
            .ok(),
    };
    let audience = audience(raw, path, r);
    let leeway = match &raw.leeway {
        None => Some(defaults::JWT_LEEWAY),
        Some(v) => duration(v, &format!("{path}.leeway"), AllowZero::Yes, r).and_then(|d| {
            if d > MAX_LEEWAY {
                r.error(
                    format!("{path}.leeway"),
                    Some(v.span()),
                    format!(
                        "must be at most {}: a wider window keeps expired tokens valid",
                        format_duration(MAX_LEEWAY)
                    ),
                );
                None
            } else {
                Some(d)
            }
        }),
    };
    let consumer_claim = match &raw.consumer_claim {
        None => Some(defaults::JWT_CONSUMER_CLAIM.to_owned()),
        Some(v) => text::label(v.get_ref())
            .map(|()| v.get_ref().clone())
            .map_err(|message| r.error(format!("{path}.consumer-claim"), Some(v.span()), message))
            .ok(),
    };
    let cache_size = cache_size(raw, path, defaults::JWT_CACHE_SIZE, r);
    Some(JwtSettings {
        algorithms: algorithms?,
        keys: keys?,
        jwks_file: jwks_file?,
        issuer: issuer?,
        audience: audience?,
        leeway: leeway?,
        consumer_claim: consumer_claim?,
        cache_size: cache_size?,
    })
}

fn algorithms(
    raw: &RawAuthenticator,
    path: &str,
    element: &Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<Vec<JwtAlgorithm>> {
    let key = format!("{path}.algorithms");
    let Some(list) = &raw.algorithms else {
        r.error(
            key,
            Some(element.clone()),
            "missing; list the algorithms tokens may be signed with, e.g. algorithms = [\"ES256\"]",
        );
        return None;
    };
    if list.get_ref().is_empty() {
        r.error(
            key,
            Some(list.span()),
            "must list at least one algorithm, e.g. algorithms = [\"ES256\"]",
        );
        return None;
    }
    let mut out: Vec<JwtAlgorithm> = Vec::with_capacity(list.get_ref().len());
    let mut ok = true;
    for (j, entry) in list.get_ref().iter().enumerate() {
        let written = entry.get_ref().as_str();
        let problem = match algorithm(written) {
            Err(message) => Some(message),
            Ok(a) => {
                if let Some(first) = out.iter().position(|&seen| seen == a) {
                    Some(format!(
                        "{written:?} is already listed as algorithms[{first}]"
                    ))
                } else if let Some(other) = out.iter().find(|o| o.is_hmac() != a.is_hmac()) {
                    let (hmac, public) = if a.is_hmac() {
                        (a, *other)
                    } else {
                        (*other, a)
                    };
                    Some(format!(
                        "{} (HMAC) cannot be mixed with {} (public key) in one authenticator: \
                         a token signed with the public key as an HMAC secret would pass; \
                         use two authenticators",
                        hmac.as_str(),
                        public.as_str()
                    ))
                } else {
                    out.push(a);
                    None
                }
            }
        };
        if let Some(message) = problem {
            r.error(format!("{key}[{j}]"), Some(entry.span()), message);
            ok = false;
        }
    }
    ok.then_some(out)
}

/// One algorithm name, as written in a token's `alg` (case-sensitive).
pub(crate) fn algorithm(text: &str) -> Result<JwtAlgorithm, String> {
    if let Some(a) = JwtAlgorithm::ALL.iter().find(|a| a.as_str() == text) {
        return Ok(*a);
    }
    if let Some(a) = JwtAlgorithm::ALL
        .iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(text))
    {
        return Err(format!(
            "{text:?}: algorithm names are case-sensitive; write {:?}",
            a.as_str()
        ));
    }
    if text.eq_ignore_ascii_case("none") {
        return Err("\"none\" would accept unsigned tokens, which are never accepted".into());
    }
    let all: Vec<&str> = JwtAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
    Err(format!(
        "unknown algorithm {text:?}; use one of {}",
        all.join(", ")
    ))
}

fn keys(
    list: &[Spanned<RawJwtKey>],
    path: &str,
    hmac: Option<bool>,
    algorithms: Option<&[JwtAlgorithm]>,
    r: &mut Reporter<'_>,
) -> Option<Vec<JwtKey>> {
    let mut kids: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for (j, entry) in list.iter().enumerate() {
        let k = entry.get_ref();
        let key_path = format!("{path}.keys[{j}]");
        let kid = match &k.kid {
            None => Some(None),
            Some(kid) => match text::label(kid.get_ref()) {
                Err(message) => {
                    r.error(format!("{key_path}.kid"), Some(kid.span()), message);
                    None
                }
                Ok(()) => {
                    if let Some(&first) = kids.get(kid.get_ref().as_str()) {
                        r.error(
                            format!("{key_path}.kid"),
                            Some(kid.span()),
                            format!("{:?} is already the kid of keys[{first}]", kid.get_ref()),
                        );
                        None
                    } else {
                        kids.insert(kid.get_ref(), j);
                        Some(Some(kid.get_ref().clone()))
                    }
                }
            },
        };
        let shown = algorithms
            .map(|a| a.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let material = match (&k.secret, &k.pem) {
            (None, None) => {
                r.error(
                    key_path,
                    Some(entry.span()),
                    "set `secret` (for HS256, HS384, HS512) or `pem` (a public key)",
                );
                None
            }
            (Some(_), Some(pem)) => {
                r.error(
                    format!("{key_path}.pem"),
                    Some(pem.span()),
                    "set either `secret` or `pem`, not both",
                );
                None
            }
            (Some(secret), None) if hmac == Some(false) => {
                r.error(
                    format!("{key_path}.secret"),
                    Some(secret.span()),
                    format!(
                        "a `secret` verifies HMAC algorithms only; this authenticator accepts \
                         {shown}, which need a `pem` public key"
                    ),
                );
                None
            }
            (Some(secret), None) => {
                let len = secret.get_ref().len();
                if len < MIN_SECRET_LEN {
                    r.error(
                        format!("{key_path}.secret"),
                        Some(secret.span()),
                        format!(
                            "is {len} bytes; an HMAC secret needs at least {MIN_SECRET_LEN}, \
                             e.g. the output of `openssl rand -hex 32`"
                        ),
                    );
                    None
                } else {
                    Some(KeyMaterial::Secret(secret.get_ref().clone()))
                }
            }
            (None, Some(pem)) if hmac == Some(true) => {
                r.error(
                    format!("{key_path}.pem"),
                    Some(pem.span()),
                    format!(
                        "a public key must never verify HMAC algorithms ({shown}): anyone \
                         holding it could sign tokens; give HMAC algorithms a `secret`"
                    ),
                );
                None
            }
            (None, Some(pem)) => match pem_shape(pem.get_ref()) {
                Ok(()) => Some(KeyMaterial::Pem(pem.get_ref().clone())),
                Err(message) => {
                    r.error(format!("{key_path}.pem"), Some(pem.span()), message);
                    None
                }
            },
        };
        out.push(
            kid.zip(material)
                .map(|(kid, material)| JwtKey { kid, material }),
        );
    }
    out.into_iter().collect()
}

/// A PEM public key or certificate, by its armour only.
pub(crate) fn pem_shape(text: &str) -> Result<(), String> {
    if !text.contains("-----BEGIN ") {
        return Err(
            "not PEM: expected a block starting with \"-----BEGIN PUBLIC KEY-----\" or \
             \"-----BEGIN CERTIFICATE-----\""
                .into(),
        );
    }
    if text.contains("PRIVATE KEY-----") {
        return Err(
            "this is a private key; give its public key instead (`openssl pkey -in KEY \
             -pubout`): verifying needs nothing more, and the config is shown by the admin API"
                .into(),
        );
    }
    Ok(())
}

fn audience(raw: &RawAuthenticator, path: &str, r: &mut Reporter<'_>) -> Option<Vec<String>> {
    let list = raw.audience.as_ref().map_or(&[][..], |l| l.get_ref());
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, entry) in list.iter().enumerate() {
        let problem = text::label(entry.get_ref()).err().or_else(|| {
            out.iter()
                .position(|seen| seen == entry.get_ref())
                .map(|first| {
                    format!(
                        "{:?} is already listed as audience[{first}]",
                        entry.get_ref()
                    )
                })
        });
        match problem {
            Some(message) => {
                r.error(format!("{path}.audience[{j}]"), Some(entry.span()), message);
                ok = false;
            }
            None => out.push(entry.get_ref().clone()),
        }
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names() {
        for a in JwtAlgorithm::ALL {
            assert_eq!(algorithm(a.as_str()), Ok(a));
        }
        let bad = [
            ("hs256", "case-sensitive; write \"HS256\""),
            ("EDDSA", "write \"EdDSA\""),
            ("none", "unsigned tokens"),
            ("None", "unsigned tokens"),
            ("HS1", "unknown algorithm \"HS1\"; use one of HS256, HS384"),
            ("ES512", "unknown algorithm"),
            ("", "unknown algorithm"),
        ];
        for (text, fragment) in bad {
            let e = algorithm(text).expect_err(text);
            assert!(e.contains(fragment), "{text:?}: {e}");
        }
    }

    #[test]
    fn pem_shapes() {
        assert_eq!(
            pem_shape("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"),
            Ok(())
        );
        assert_eq!(pem_shape("-----BEGIN CERTIFICATE-----\nMII\n"), Ok(()));
        let bad = [
            ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE", "not PEM"),
            ("", "not PEM"),
            (
                "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----",
                "private key",
            ),
            ("-----BEGIN EC PRIVATE KEY-----\nMHc\n", "private key"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMII\n", "private key"),
        ];
        for (text, fragment) in bad {
            let e = pem_shape(text).expect_err(text);
            assert!(e.contains(fragment), "{text:?}: {e}");
            assert!(text.is_empty() || !e.contains(text), "{e}");
        }
    }
}
