//! HTTP Basic authentication (RFC 7617) against consumers' password hashes.
//!
//! A consumer's `basic` credential is a username and a password hash in one
//! of the formats other tools write: PHC strings for Argon2 (`$argon2id$`,
//! `$argon2i$`, `$argon2d$`) and scrypt (`$scrypt$`), and bcrypt's modular
//! crypt format (`$2a$`, `$2b$`, `$2y$`). Hashes are parsed when the config
//! is compiled, so a malformed one fails validation with its path.
//!
//! Checking a password is slow on purpose (argon2id with the default
//! parameters `ringway hash-password` uses: m = 19 MiB, t = 2, ≈17 ms of
//! one core in a release build) and runs on the worker that received the
//! request, stalling its other connections meanwhile. Successful checks are
//! therefore cached per worker for `cache-ttl`, keyed by a keyed SHA-256 of
//! the credential and of the hash it matched, so a hit costs ≈0.2 µs and a
//! changed hash misses at once. A hash whose check would need more than 256 MiB is
//! refused at compile time: a few concurrent bad logins would otherwise
//! take gigabytes.
//!
//! An unknown username is checked against another user's hash anyway, so
//! the answer takes as long as for a known user with a wrong password and
//! does not reveal which usernames exist.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ahash::AHashMap;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ringway_config::{ConfigError, Consumer};
use sha2::{Digest, Sha256};

use super::cache::{BasicEntry, Bounded};
use super::{authorization, error, scheme_credentials, Verdict};
use crate::http::head::RequestHead;

/// Longest decoded `user-id:password` accepted; the base64 form of this
/// many bytes fits in `MAX_ENCODED`. Real credentials are far shorter, and
/// the bound lets decoding use a stack buffer.
const MAX_DECODED: usize = 1023;
const MAX_ENCODED: usize = MAX_DECODED / 3 * 4;

/// Most memory one password check may need.
const MAX_HASH_MEMORY: u64 = 256 << 20;

/// One `type = "basic"` authenticator.
pub(crate) struct BasicAuth {
    cache_ttl: Duration,
}

/// Every consumer's Basic credential, by username.
pub(crate) struct Users {
    by_name: AHashMap<Box<[u8]>, usize>,
    users: Vec<User>,
}

struct User {
    consumer: usize,
    hash: Arc<StoredHash>,
    /// SHA-256 of the username and the hash string: part of the cache key,
    /// so an entry stops matching when the hash changes.
    tag: [u8; 32],
}

enum StoredHash {
    Argon2(PasswordHash),
    Scrypt(PasswordHash),
    Bcrypt(Box<str>),
}

impl StoredHash {
    fn parse(s: &str) -> Result<StoredHash, String> {
        if s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$") {
            let parts: bcrypt::HashParts = s.parse().map_err(|e| format!("{e}"))?;
            if !(4..=31).contains(&parts.get_cost()) {
                return Err(format!("bcrypt cost {} is not in 4..=31", parts.get_cost()));
            }
            return Ok(StoredHash::Bcrypt(s.into()));
        }
        let hash = PasswordHash::new(s).map_err(|e| format!("not a PHC string: {e}"))?;
        match hash.algorithm.as_str() {
            "argon2id" | "argon2i" | "argon2d" => {
                let params = argon2::Params::try_from(&hash)
                    .map_err(|e| format!("bad argon2 parameters: {e}"))?;
                if u64::from(params.m_cost()) << 10 > MAX_HASH_MEMORY {
                    return Err(format!(
                        "argon2 m={} KiB needs more than {} MiB per check",
                        params.m_cost(),
                        MAX_HASH_MEMORY >> 20
                    ));
                }
                Ok(StoredHash::Argon2(hash))
            }
            "scrypt" => {
                let params = scrypt::Params::try_from(&hash)
                    .map_err(|e| format!("bad scrypt parameters: {e}"))?;
                let memory = 128 * u64::from(params.r()) * params.n();
                if memory > MAX_HASH_MEMORY {
                    return Err(format!(
                        "scrypt ln={} r={} needs more than {} MiB per check",
                        params.log_n(),
                        params.r(),
                        MAX_HASH_MEMORY >> 20
                    ));
                }
                Ok(StoredHash::Scrypt(hash))
            }
            other => Err(format!(
                "unsupported algorithm {other:?}; use argon2id, scrypt or bcrypt"
            )),
        }
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            StoredHash::Argon2(h) => Argon2::default().verify_password(password, h).is_ok(),
            StoredHash::Scrypt(h) => scrypt::Scrypt::new().verify_password(password, h).is_ok(),
            StoredHash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
        }
    }
}

impl Users {
    pub(crate) fn compile(consumers: &[Consumer], errors: &mut Vec<ConfigError>) -> Users {
        let mut by_name = AHashMap::new();
        let mut users = Vec::new();
        for (ci, consumer) in consumers.iter().enumerate() {
            let Some(basic) = &consumer.basic else {
                continue;
            };
            let hash = match StoredHash::parse(&basic.password_hash) {
                Ok(hash) => hash,
                Err(message) => {
                    errors.push(error(
                        format!("consumers[{ci}].basic.password-hash"),
                        message,
                    ));
                    continue;
                }
            };
            let username: Box<[u8]> = basic.username.as_bytes().into();
            if by_name.contains_key(&username) {
                errors.push(error(
                    format!("consumers[{ci}].basic.username"),
                    format!("username {:?} is used twice", basic.username),
                ));
                continue;
            }
            let mut tag = Sha256::new();
            tag.update(&username);
            tag.update([0]);
            tag.update(basic.password_hash.as_bytes());
            by_name.insert(username, users.len());
            users.push(User {
                consumer: ci,
                hash: Arc::new(hash),
                tag: tag.finalize().into(),
            });
        }
        Users { by_name, users }
    }
}

impl BasicAuth {
    pub(crate) fn new(cache_ttl: Duration) -> Self {
        BasicAuth { cache_ttl }
    }

    pub(crate) fn check(
        &self,
        head: &RequestHead,
        users: &Users,
        cache: Option<&RefCell<Bounded<BasicEntry>>>,
        secret: &[u8; 32],
        now: SystemTime,
        defer: bool,
    ) -> Verdict {
        let value = match authorization(head) {
            Ok(Some(value)) => value,
            Ok(None) => return Verdict::Absent,
            Err(reason) => return Verdict::Invalid(reason),
        };
        let Some(encoded) = scheme_credentials(value, b"basic") else {
            return Verdict::Absent;
        };
        if encoded.len() > MAX_ENCODED {
            return Verdict::Invalid("credentials too long");
        }
        let mut buf = [0u8; MAX_DECODED];
        let Ok(len) = STANDARD.decode_slice(encoded, &mut buf) else {
            return Verdict::Invalid("malformed credentials");
        };
        let credentials = &buf[..len];
        // RFC 7617 §2: user-id ":" password; the user-id has no colon.
        let Some(colon) = credentials.iter().position(|&b| b == b':') else {
            return Verdict::Invalid("malformed credentials");
        };
        let (username, password) = (&credentials[..colon], &credentials[colon + 1..]);

        let Some(user) = users.by_name.get(username).map(|&u| &users.users[u]) else {
            // Hash anyway, so that timing does not tell which usernames exist.
            if let Some(decoy) = users.users.first() {
                if defer {
                    return Verdict::Verify(VerifyJob {
                        hash: decoy.hash.clone(),
                        password: password.into(),
                        consumer: None,
                        key: None,
                        expires: Duration::ZERO,
                        via: 0,
                    });
                }
                let _ = decoy.hash.verify(password);
            }
            return Verdict::Invalid("invalid credentials");
        };

        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let key = cache.map(|_| {
            let mut h = Sha256::new();
            h.update(secret);
            h.update(user.tag);
            h.update(credentials);
            <[u8; 32]>::from(h.finalize())
        });
        if let (Some(cache), Some(key)) = (cache, &key) {
            if cache
                .borrow_mut()
                .get(key, |e| since_epoch < e.expires)
                .is_some()
            {
                return Verdict::Consumer(user.consumer);
            }
        }
        let key = key.filter(|_| !self.cache_ttl.is_zero());
        let job = VerifyJob {
            hash: user.hash.clone(),
            password: password.into(),
            consumer: Some(user.consumer),
            key,
            expires: since_epoch.saturating_add(self.cache_ttl),
            via: 0,
        };
        if defer {
            return Verdict::Verify(job);
        }
        let done = job.run();
        finish(cache, done)
    }
}

/// A password check too slow for a worker (argon2, scrypt and bcrypt are
/// slow by design: ~17 ms for argon2id's defaults), to run on the blocking
/// pool. Only uncached checks make one; the caller hands the result to
/// [`crate::policy::auth::Auth::finish`].
pub(crate) struct VerifyJob {
    hash: Arc<StoredHash>,
    password: Box<[u8]>,
    /// `None` for an unknown username (the check runs anyway, as a decoy).
    consumer: Option<usize>,
    /// Where a success is cached, if caching is on.
    key: Option<[u8; 32]>,
    expires: Duration,
    /// The authenticator that made it.
    pub(crate) via: usize,
}

/// A finished [`VerifyJob`].
pub(crate) struct Verified {
    job: VerifyJob,
    ok: bool,
}

impl VerifyJob {
    /// Runs the hash. Blocking: call it off the worker.
    pub(crate) fn run(self) -> Verified {
        let ok = self.consumer.is_some() && self.hash.verify(&self.password);
        Verified { job: self, ok }
    }
}

impl Verified {
    pub(crate) fn via(&self) -> usize {
        self.job.via
    }
}

/// Caches a success; the verdict.
pub(crate) fn finish(cache: Option<&RefCell<Bounded<BasicEntry>>>, done: Verified) -> Verdict {
    match (done.ok, done.job.consumer) {
        (true, Some(consumer)) => {
            if let (Some(cache), Some(key)) = (cache, done.job.key) {
                cache.borrow_mut().insert(
                    key,
                    BasicEntry {
                        expires: done.job.expires,
                    },
                );
            }
            Verdict::Consumer(consumer)
        }
        _ => Verdict::Invalid("invalid credentials"),
    }
}

/// Hashes `password` for a consumer's `basic.password-hash`: argon2id with
/// the crate's default parameters (m = 19 MiB, t = 2, p = 1, the OWASP
/// recommendation) and a random 16-byte salt, as a PHC string.
pub fn hash_password(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default().hash_password(password)?.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testutil::*;
    use super::super::{Auth, AuthCache, Outcome};
    use super::*;

    fn users_auth(cache_size: usize) -> Auth {
        let mut alice = consumer("alice");
        alice.basic = Some(basic_credential("alice", &argon2_hash("alice-pw")));
        let mut bob = consumer("bob");
        bob.basic = Some(basic_credential("bob", &bcrypt_hash("bob-pw")));
        let mut carol = consumer("carol");
        carol.basic = Some(basic_credential("carol", &scrypt_hash("carol pw: ünï")));
        let dave = consumer("dave");
        Auth::compile(&config(
            vec![alice, bob, carol, dave],
            vec![basic_auth("basic", cache_size)],
        ))
        .expect("valid")
    }

    #[test]
    fn each_hash_type_and_malformed_headers() {
        let auth = users_auth(0);
        let cache = AuthCache::new(&auth);
        let ok = |consumer| Outcome::Consumer { consumer, via: 0 };
        let invalid = |reason| Outcome::Invalid { via: 0, reason };
        let too_long = format!("Basic {}", "QUFB".repeat(400));
        let cases: Vec<(String, Outcome)> = vec![
            (basic_header("alice", "alice-pw"), ok(0)),
            (basic_header("bob", "bob-pw"), ok(1)),
            (basic_header("carol", "carol pw: ünï"), ok(2)),
            (
                basic_header("alice", "bob-pw"),
                invalid("invalid credentials"),
            ),
            (basic_header("bob", "wrong"), invalid("invalid credentials")),
            (
                basic_header("carol", "carol pw"),
                invalid("invalid credentials"),
            ),
            (basic_header("dave", ""), invalid("invalid credentials")),
            (
                basic_header("nobody", "alice-pw"),
                invalid("invalid credentials"),
            ),
            (
                basic_header("Alice", "alice-pw"),
                invalid("invalid credentials"),
            ),
            ("bAsIc   YWxpY2U6YWxpY2UtcHc=".into(), ok(0)),
            (
                "Basic YWxpY2U6YWxpY2UtcHc".into(),
                invalid("malformed credentials"),
            ),
            ("Basic !!!!".into(), invalid("malformed credentials")),
            ("Basic".into(), invalid("malformed credentials")),
            // "alice" without a colon.
            ("Basic YWxpY2U=".into(), invalid("malformed credentials")),
            (too_long, invalid("credentials too long")),
            ("Bearer abc".into(), Outcome::Missing),
            ("Digest username=\"alice\"".into(), Outcome::Missing),
        ];
        for (value, want) in cases {
            let head = request("/", &[format!("Authorization: {value}")]);
            assert_eq!(
                auth.authenticate(&cache, &[0], &head, at(NOW)),
                want,
                "{value}"
            );
        }
    }

    #[test]
    fn cache_hit_skips_the_hash_and_expires_after_ttl() {
        let auth = users_auth(8);
        let cache = AuthCache::new(&auth);
        let good = request(
            "/",
            &[format!(
                "Authorization: {}",
                basic_header("alice", "alice-pw")
            )],
        );
        let bad = request(
            "/",
            &[format!("Authorization: {}", basic_header("alice", "nope"))],
        );
        let alice = Outcome::Consumer {
            consumer: 0,
            via: 0,
        };

        assert_eq!(auth.authenticate(&cache, &[0], &good, at(NOW)), alice);
        assert_eq!(auth.authenticate(&cache, &[0], &good, at(NOW + 59)), alice);
        let s = cache.stats(0).expect("cached");
        assert_eq!((s.entries, s.hits, s.inserts), (1, 1, 1));

        // Failures are never cached.
        for _ in 0..2 {
            let refused = auth.authenticate(&cache, &[0], &bad, at(NOW));
            assert_eq!(
                refused,
                Outcome::Invalid {
                    via: 0,
                    reason: "invalid credentials"
                }
            );
        }
        assert_eq!(cache.stats(0).expect("cached").entries, 1);

        // Past the TTL (60s) the entry no longer counts: checked again.
        assert_eq!(auth.authenticate(&cache, &[0], &good, at(NOW + 61)), alice);
        let s = cache.stats(0).expect("cached");
        assert_eq!((s.entries, s.hits, s.inserts), (1, 1, 2));
    }

    #[test]
    fn cached_entry_does_not_outlive_a_password_change() {
        let auth = users_auth(8);
        let cache = AuthCache::new(&auth);
        let old = request(
            "/",
            &[format!(
                "Authorization: {}",
                basic_header("alice", "alice-pw")
            )],
        );
        assert!(matches!(
            auth.authenticate(&cache, &[0], &old, at(NOW)),
            Outcome::Consumer { .. }
        ));

        // Same authenticator, new hash for alice: the cache carries over
        // but the old password no longer matches an entry.
        let mut alice = consumer("alice");
        alice.basic = Some(basic_credential("alice", &argon2_hash("new-pw")));
        let changed =
            Auth::compile(&config(vec![alice], vec![basic_auth("basic", 8)])).expect("valid");
        let cache = AuthCache::carry_over(&changed, &cache);
        assert_eq!(cache.stats(0).expect("carried").entries, 1);
        assert_eq!(
            changed.authenticate(&cache, &[0], &old, at(NOW + 1)),
            Outcome::Invalid {
                via: 0,
                reason: "invalid credentials"
            }
        );
    }

    #[test]
    fn password_hashes_are_checked_at_compile_time() {
        let costly_bcrypt = bcrypt_hash("pw").replacen("$04$", "$99$", 1);
        let huge_scrypt = "$scrypt$ln=22,r=8,p=1$c2FsdHNhbHQ$\
                           iN3A5zJKjBbU2kBAQhexFgD8bJSUvB9ixDmsZ3ynX2k";
        let cases: &[(&str, &str)] = &[
            ("plain-text", "not a PHC string"),
            (
                "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "unsupported algorithm \"pbkdf2-sha256\"",
            ),
            (
                "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "bad argon2 parameters",
            ),
            (
                "$argon2id$v=19$m=524288,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "256 MiB",
            ),
            (huge_scrypt, "256 MiB"),
            ("$2b$04$tooshort", "malformed"),
            (&costly_bcrypt, "bcrypt cost 99"),
        ];
        for (hash, want) in cases {
            let mut c = consumer("x");
            c.basic = Some(basic_credential("x", hash));
            let errors = Auth::compile(&config(vec![c], vec![])).expect_err(hash);
            assert_eq!(errors.0[0].path, "consumers[0].basic.password-hash");
            assert!(
                errors.0[0].message.contains(want),
                "{hash}: {}",
                errors.0[0].message
            );
        }
    }

    #[test]
    fn hash_password_round_trips() {
        // Verifying the default parameters takes ~1 s in a debug build, so
        // the output is checked for shape and parameters only.
        let hash = hash_password(b"s3cret").expect("hashes");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(matches!(
            StoredHash::parse(&hash),
            Ok(StoredHash::Argon2(_))
        ));
        assert_ne!(hash_password(b"s3cret").expect("hashes"), hash, "salted");
    }

    #[test]
    fn ttl_zero_never_caches() {
        let mut def = basic_auth("basic", 8);
        if let ringway_config::AuthKind::Basic { cache_ttl, .. } = &mut def.kind {
            *cache_ttl = Duration::ZERO;
        }
        let mut alice = consumer("alice");
        alice.basic = Some(basic_credential("alice", &argon2_hash("pw")));
        let auth = Auth::compile(&config(vec![alice], vec![def])).expect("valid");
        let cache = AuthCache::new(&auth);
        let head = request(
            "/",
            &[format!("Authorization: {}", basic_header("alice", "pw"))],
        );
        for _ in 0..2 {
            assert!(matches!(
                auth.authenticate(&cache, &[0], &head, at(NOW)),
                Outcome::Consumer { .. }
            ));
        }
        assert_eq!(cache.stats(0).expect("slot").entries, 0);
    }
}
