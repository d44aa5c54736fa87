//! Authentication: which consumer is calling.
//!
//! [`Auth`] is compiled once per config from `[[consumers]]` and
//! `[[authenticators]]` and lives in the shared, immutable snapshot: API key
//! digests, Basic users with their parsed password hashes, and per JWT
//! authenticator the verification keys, allowed algorithms and claim rules.
//! Compiling is where key material is parsed and checked, so a bad PEM, JWK
//! set or password hash fails `ringway validate` with its field path instead
//! of failing requests later.
//!
//! A route lists authenticators in order. Each looks for its own credential
//! (an API key header or query parameter; `Authorization: Basic`, RFC 7617;
//! `Authorization: Bearer`, RFC 6750 §2.1) and the first one that finds one
//! decides: a valid credential names a consumer, an invalid one is refused
//! without trying the rest, and a request with none is [`Outcome::Missing`].
//! Refusing on the first credential present, rather than falling through,
//! keeps a refused credential from being rescued by another one riding in
//! the same request.
//!
//! Password hashes (≈17 ms for argon2id with its default parameters) and
//! signatures (≈56 µs for ES256) are too slow to redo on every request, so
//! each worker keeps an [`AuthCache`] of successful verifications: a repeat
//! credential costs one SHA-256 and a hash-table probe (≈0.2–0.3 µs) and
//! allocates nothing. (Figures: release build, one core of the 2-core
//! development machine.)
//!
//! The cache never outlives the config that justified an entry: a reload
//! that changes a password hash, removes a consumer or changes an
//! authenticator takes effect at once (entries are keyed by the hash they
//! matched, resolve their consumer afresh, and are dropped with a changed
//! authenticator). What it cannot see is an issuer revoking a token, which
//! stays good until its `exp`, as with any stateless token check.
//!
//! A failed check is never cached, so a client sending wrong passwords
//! makes its worker run the password hash every time; the rate limits run
//! after authentication and do not bound that.

mod api_key;
mod basic;
mod cache;
mod jwt;
mod jwt_key;
#[cfg(test)]
mod testutil;

use std::time::{SystemTime, UNIX_EPOCH};

use ahash::AHashMap;
use bytes::BytesMut;
use ringway_config::{AuthKind, Config, ConfigError, ConfigErrors};

use crate::http::head::RequestHead;
use crate::http::text::trim;

pub use basic::hash_password;
pub(crate) use basic::{Verified, VerifyJob};
pub use cache::{AuthCache, CacheStats};

/// The realm named in `Bearer` and `ApiKey` challenges; Basic has its own
/// `realm` setting.
const REALM: &str = "ringway";

/// Every authenticator and credential of one config, ready to check
/// requests against. Immutable and shared by all workers.
pub struct Auth {
    authenticators: Vec<Authenticator>,
    /// Consumer name → index, for JWT consumer claims.
    consumers: AHashMap<Box<str>, usize>,
    /// SHA-256 of an API key → consumer index.
    api_keys: AHashMap<[u8; 32], usize>,
    users: basic::Users,
}

struct Authenticator {
    kind: Kind,
    /// The full `WWW-Authenticate: …\r\n` line sent when this
    /// authenticator's credential is missing.
    challenge: Box<[u8]>,
    carry: CarryKey,
}

enum Kind {
    ApiKey(api_key::ApiKeyAuth),
    Basic(basic::BasicAuth),
    Jwt(Box<jwt::JwtAuth>),
}

/// What authenticating a request concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Authenticator `via` (an index into the config's authenticators)
    /// found a valid credential of consumer `consumer` (an index into the
    /// config's consumers).
    Consumer { consumer: usize, via: usize },
    /// No listed authenticator found a credential: answer 401.
    Missing,
    /// Authenticator `via` found a credential and refused it: answer 401.
    /// `reason` is for logs and, for bearer tokens, the challenge's
    /// `error_description`; it never contains request bytes.
    Invalid { via: usize, reason: &'static str },
}

/// Where a request carries credentials, for removing them before the
/// request goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialLocation<'a> {
    /// A header field, by its lower-case name.
    Header(&'a str),
    /// A query parameter, by its name as written in the query.
    Query(&'a str),
}

/// Identifies one authenticator's definition across config reloads: two
/// configs whose authenticators have equal keys may share a worker's cached
/// verifications. Covers the name, every setting and, for a JWT
/// authenticator, the SHA-256 of its JWK set file, so a rotated key set
/// drops tokens verified with the old one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CarryKey {
    name: String,
    kind: AuthKind,
    jwks: Option<[u8; 32]>,
}

/// One authenticator's conclusion about a request.
enum Verdict {
    /// No credential of this kind: try the next authenticator.
    Absent,
    Consumer(usize),
    Invalid(&'static str),
    /// A password hash must be checked first (see [`VerifyJob`]).
    Verify(VerifyJob),
}

/// Where [`Auth::authenticate_deferred`] got to.
pub(crate) enum Step {
    Done(Outcome),
    /// Run the job off the worker ([`VerifyJob::run`]), then
    /// [`Auth::finish`] it.
    Verify(VerifyJob),
}

/// What kind of cache an authenticator wants, for [`AuthCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheSpec {
    None,
    Basic(usize),
    Jwt(usize),
}

impl Auth {
    /// Compiles the consumers and authenticators of `config`. Every problem
    /// is reported, each with the path of the field at fault (positions are
    /// left unknown: the config's source is not at hand here).
    pub fn compile(config: &Config) -> Result<Auth, ConfigErrors> {
        let mut errors = Vec::new();

        let mut consumers = AHashMap::with_capacity(config.consumers.len());
        let mut api_keys: AHashMap<[u8; 32], usize> = AHashMap::new();
        for (ci, consumer) in config.consumers.iter().enumerate() {
            consumers.insert(consumer.name.as_str().into(), ci);
            for (ki, key) in consumer.api_keys.iter().enumerate() {
                if let Some(&other) = api_keys.get(&key.sha256) {
                    errors.push(error(
                        format!("consumers[{ci}].api-keys[{ki}]"),
                        format!(
                            "this key also belongs to consumer {:?}",
                            config.consumers[other].name
                        ),
                    ));
                } else {
                    api_keys.insert(key.sha256, ci);
                }
            }
        }
        let users = basic::Users::compile(&config.consumers, &mut errors);

        let mut authenticators = Vec::with_capacity(config.authenticators.len());
        for (i, a) in config.authenticators.iter().enumerate() {
            let path = format!("authenticators[{i}]");
            let (kind, challenge, jwks) = match &a.kind {
                AuthKind::ApiKey { header, query } => {
                    let mut line = format!("WWW-Authenticate: ApiKey realm=\"{REALM}\", header=");
                    quote(&mut line, header);
                    if let Some(query) = query {
                        line.push_str(", query=");
                        quote(&mut line, query);
                    }
                    let kind = Kind::ApiKey(api_key::ApiKeyAuth::new(header, query.as_deref()));
                    (kind, line, None)
                }
                AuthKind::Basic {
                    realm, cache_ttl, ..
                } => {
                    if realm.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                        errors.push(error(
                            format!("{path}.realm"),
                            "control characters cannot be sent in a challenge".into(),
                        ));
                    }
                    // RFC 7617 §2.1: announce that credentials are UTF-8.
                    let mut line = String::from("WWW-Authenticate: Basic realm=");
                    quote(&mut line, realm);
                    line.push_str(", charset=\"UTF-8\"");
                    let kind = Kind::Basic(basic::BasicAuth::new(*cache_ttl));
                    (kind, line, None)
                }
                AuthKind::Jwt(settings) => {
                    let Some((jwt, jwks)) = jwt::JwtAuth::compile(&path, settings, &mut errors)
                    else {
                        continue;
                    };
                    let line = format!("WWW-Authenticate: Bearer realm=\"{REALM}\"");
                    (Kind::Jwt(Box::new(jwt)), line, jwks)
                }
            };
            let mut challenge = challenge.into_bytes();
            challenge.extend_from_slice(b"\r\n");
            authenticators.push(Authenticator {
                kind,
                challenge: challenge.into_boxed_slice(),
                carry: CarryKey {
                    name: a.name.clone(),
                    kind: a.kind.clone(),
                    jwks,
                },
            });
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Auth {
            authenticators,
            consumers,
            api_keys,
            users,
        })
    }

    /// How many authenticators there are (the config's, in order).
    pub(crate) fn len(&self) -> usize {
        self.authenticators.len()
    }

    /// Authenticator `i`'s name.
    pub fn name(&self, i: usize) -> Option<&str> {
        Some(self.authenticators.get(i)?.carry.name.as_str())
    }

    /// The key under which authenticator `i`'s cached verifications may be
    /// kept across a reload; see [`AuthCache::carry_over`].
    pub(crate) fn cache_key(&self, i: usize) -> Option<&CarryKey> {
        Some(&self.authenticators.get(i)?.carry)
    }

    /// Authenticates a request with the authenticators `which` (indexes
    /// into the config's authenticators, in the route's order). The first
    /// one whose credential is present decides. `cache` must have been made
    /// for this `Auth` (a mismatched one only costs cache misses); `now` is
    /// the wall clock, against which `exp`, `nbf` and cache lifetimes are
    /// judged.
    ///
    /// With every credential already cached this allocates nothing.
    pub fn authenticate(
        &self,
        cache: &AuthCache,
        which: &[usize],
        head: &RequestHead,
        now: SystemTime,
    ) -> Outcome {
        match self.decide(cache, which, head, now, false) {
            Step::Done(outcome) => outcome,
            Step::Verify(job) => self.finish(cache, job.run()),
        }
    }

    /// Like [`Auth::authenticate`], but an uncached password check is
    /// handed back as a [`Step::Verify`] instead of running here: a worker
    /// runs it on the blocking pool, so a slow hash never stalls the other
    /// connections of the worker.
    pub(crate) fn authenticate_deferred(
        &self,
        cache: &AuthCache,
        which: &[usize],
        head: &RequestHead,
        now: SystemTime,
    ) -> Step {
        self.decide(cache, which, head, now, true)
    }

    /// The outcome of a password check made by [`Auth::authenticate_deferred`],
    /// cached when it succeeded.
    pub(crate) fn finish(&self, cache: &AuthCache, done: Verified) -> Outcome {
        let via = done.via();
        match basic::finish(cache.basic(via), done) {
            Verdict::Consumer(consumer) => Outcome::Consumer { consumer, via },
            _ => Outcome::Invalid {
                via,
                reason: "invalid credentials",
            },
        }
    }

    fn decide(
        &self,
        cache: &AuthCache,
        which: &[usize],
        head: &RequestHead,
        now: SystemTime,
        defer: bool,
    ) -> Step {
        for &i in which {
            let Some(a) = self.authenticators.get(i) else {
                continue;
            };
            let verdict = match &a.kind {
                Kind::ApiKey(k) => k.check(head, &self.api_keys),
                Kind::Basic(b) => b.check(
                    head,
                    &self.users,
                    cache.basic(i),
                    cache.secret(),
                    now,
                    defer,
                ),
                Kind::Jwt(j) => j.check(head, &self.consumers, cache.jwt(i), now),
            };
            match verdict {
                Verdict::Absent => continue,
                Verdict::Consumer(consumer) => {
                    return Step::Done(Outcome::Consumer { consumer, via: i })
                }
                Verdict::Invalid(reason) => return Step::Done(Outcome::Invalid { via: i, reason }),
                Verdict::Verify(mut job) => {
                    job.via = i;
                    return Step::Verify(job);
                }
            }
        }
        Step::Done(Outcome::Missing)
    }

    /// Appends the `WWW-Authenticate` header lines for a 401 answer to a
    /// request that `which` authenticated with `outcome` (RFC 9110 §11.6.1:
    /// one challenge per authenticator the route accepts). A refused bearer
    /// token's challenge carries `error="invalid_token"` and the reason
    /// (RFC 6750 §3.1); a missing one carries no error code (§3.1, "SHOULD
    /// NOT"). Appends nothing for [`Outcome::Consumer`].
    pub(crate) fn challenges(&self, which: &[usize], outcome: &Outcome, out: &mut BytesMut) {
        let refused = match *outcome {
            Outcome::Consumer { .. } => return,
            Outcome::Missing => None,
            Outcome::Invalid { via, reason } => Some((via, reason)),
        };
        for &i in which {
            let Some(a) = self.authenticators.get(i) else {
                continue;
            };
            match (refused, &a.kind) {
                (Some((via, reason)), Kind::Jwt(_)) if via == i => {
                    let line = &a.challenge[..a.challenge.len() - 2];
                    out.extend_from_slice(line);
                    out.extend_from_slice(b", error=\"invalid_token\", error_description=\"");
                    out.extend_from_slice(reason.as_bytes());
                    out.extend_from_slice(b"\"\r\n");
                }
                _ => out.extend_from_slice(&a.challenge),
            }
        }
    }

    /// The header fields and query parameters where `which` look for
    /// credentials, for stripping before a request is forwarded.
    /// `authorization` is listed once even when several authenticators
    /// read it.
    pub(crate) fn credential_locations<'a>(
        &'a self,
        which: &'a [usize],
    ) -> impl Iterator<Item = CredentialLocation<'a>> + 'a {
        let mut authorization_seen = false;
        which
            .iter()
            .filter_map(|&i| self.authenticators.get(i))
            .flat_map(|a| {
                let (first, second) = match &a.kind {
                    Kind::ApiKey(k) => (
                        CredentialLocation::Header(k.header()),
                        k.query().map(CredentialLocation::Query),
                    ),
                    Kind::Basic(_) | Kind::Jwt(_) => {
                        (CredentialLocation::Header("authorization"), None)
                    }
                };
                std::iter::once(first).chain(second)
            })
            .filter(move |l| {
                *l != CredentialLocation::Header("authorization")
                    || !std::mem::replace(&mut authorization_seen, true)
            })
    }

    /// What cache authenticator `i` keeps, for [`AuthCache`].
    fn cache_spec(&self, i: usize) -> CacheSpec {
        let Some(a) = self.authenticators.get(i) else {
            return CacheSpec::None;
        };
        match (&a.kind, &a.carry.kind) {
            (Kind::Basic(_), AuthKind::Basic { cache_size, .. }) if *cache_size > 0 => {
                CacheSpec::Basic(*cache_size)
            }
            (Kind::Jwt(j), _) if j.cache_size() > 0 => CacheSpec::Jwt(j.cache_size()),
            _ => CacheSpec::None,
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material and hashes stay out of logs.
        f.debug_struct("Auth")
            .field(
                "authenticators",
                &self
                    .authenticators
                    .iter()
                    .map(|a| a.carry.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("consumers", &self.consumers.len())
            .field("api_keys", &self.api_keys.len())
            .finish_non_exhaustive()
    }
}

fn error(path: String, message: String) -> ConfigError {
    ConfigError {
        path,
        line: 0,
        column: 0,
        message,
    }
}

/// Appends `s` as an RFC 9110 §5.6.4 quoted-string.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(if c.is_ascii_control() && c != '\t' {
            '?'
        } else {
            c
        });
    }
    out.push('"');
}

/// The request's one `Authorization` field, if any. Two are refused: the
/// field is a singleton (RFC 9110 §11.6.2), and guessing which one counts
/// invites a front proxy and the gateway to disagree.
fn authorization(head: &RequestHead) -> Result<Option<&[u8]>, &'static str> {
    let mut found = None;
    for h in &head.headers {
        if head.bytes(h.name).eq_ignore_ascii_case(b"authorization") {
            if found.is_some() {
                return Err("more than one Authorization field");
            }
            found = Some(head.bytes(h.value));
        }
    }
    Ok(found)
}

/// The credentials after `scheme` in an `Authorization` value (RFC 9110
/// §11.4: the scheme is case-insensitive and followed by one or more
/// spaces), or `None` when the value uses another scheme.
fn scheme_credentials<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let value = trim(value);
    let (name, rest) = match value.iter().position(|&b| b == b' ') {
        Some(p) => (&value[..p], &value[p..]),
        None => (value, &b""[..]),
    };
    name.eq_ignore_ascii_case(scheme).then(|| trim(rest))
}

/// Seconds since the Unix epoch, the unit of JWT dates (RFC 7519 §2,
/// NumericDate); a clock before 1970 reads as 0.
fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ringway_config::{ApiKey, Authenticator as AuthenticatorDef, JwtAlgorithm};

    use super::testutil::*;
    use super::*;

    fn api_key_auth(name: &str, query: Option<&str>) -> AuthenticatorDef {
        AuthenticatorDef {
            name: name.into(),
            kind: AuthKind::ApiKey {
                header: "x-api-key".into(),
                query: query.map(Into::into),
            },
        }
    }

    fn fixture() -> (Auth, AuthCache) {
        let mut alice = consumer("alice");
        alice.api_keys.push(ApiKey {
            sha256: sha256(b"alice-key"),
            plain: false,
        });
        alice.basic = Some(basic_credential("alice", &argon2_hash("pw")));
        let bob = consumer("bob");
        let hs = jwt_settings(&[JwtAlgorithm::Hs256], vec![secret_key(None, HMAC_SECRET)]);
        let config = config(
            vec![alice, bob],
            vec![
                api_key_auth("keys", Some("api_key")),
                basic_auth("basic", 16),
                jwt_auth("jwt", hs),
            ],
        );
        let auth = Auth::compile(&config).expect("valid");
        let cache = AuthCache::new(&auth);
        (auth, cache)
    }

    #[test]
    fn first_present_credential_decides_in_route_order() {
        let (auth, cache) = fixture();
        let good_jwt = hs256_token(&claims("bob", NOW + 60));
        let basic = basic_header("alice", "pw");
        let cases: Vec<(&str, Vec<String>, &[usize], Outcome)> = vec![
            ("nothing", vec![], &[0, 1, 2], Outcome::Missing),
            (
                "api key",
                vec!["X-Api-Key: alice-key".into()],
                &[0, 1, 2],
                Outcome::Consumer {
                    consumer: 0,
                    via: 0,
                },
            ),
            (
                "bearer skips api-key and basic",
                vec![format!("Authorization: Bearer {good_jwt}")],
                &[0, 1, 2],
                Outcome::Consumer {
                    consumer: 1,
                    via: 2,
                },
            ),
            (
                "basic while jwt listed first",
                vec![format!("Authorization: {basic}")],
                &[2, 1],
                Outcome::Consumer {
                    consumer: 0,
                    via: 1,
                },
            ),
            (
                "bad api key is not rescued by a good token",
                vec![
                    "X-Api-Key: wrong".into(),
                    format!("Authorization: Bearer {good_jwt}"),
                ],
                &[0, 2],
                Outcome::Invalid {
                    via: 0,
                    reason: "unknown api key",
                },
            ),
            (
                "authenticator not on the route is not consulted",
                vec!["X-Api-Key: alice-key".into()],
                &[1, 2],
                Outcome::Missing,
            ),
            (
                "two Authorization fields",
                vec![
                    format!("Authorization: Bearer {good_jwt}"),
                    format!("Authorization: Bearer {good_jwt}"),
                ],
                &[2],
                Outcome::Invalid {
                    via: 2,
                    reason: "more than one Authorization field",
                },
            ),
            (
                "out-of-range index is skipped",
                vec![],
                &[7],
                Outcome::Missing,
            ),
        ];
        for (name, headers, which, want) in cases {
            let head = request("/", &headers);
            assert_eq!(
                auth.authenticate(&cache, which, &head, at(NOW)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn challenges_list_every_authenticator_of_the_route() {
        let (auth, _) = fixture();
        let mut out = BytesMut::new();
        auth.challenges(&[0, 1, 2], &Outcome::Missing, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).expect("ascii"),
            "WWW-Authenticate: ApiKey realm=\"ringway\", header=\"x-api-key\", query=\"api_key\"\r\n\
             WWW-Authenticate: Basic realm=\"ringway\", charset=\"UTF-8\"\r\n\
             WWW-Authenticate: Bearer realm=\"ringway\"\r\n"
        );

        let mut out = BytesMut::new();
        let refused = Outcome::Invalid {
            via: 2,
            reason: "token expired",
        };
        auth.challenges(&[2, 1], &refused, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).expect("ascii"),
            "WWW-Authenticate: Bearer realm=\"ringway\", error=\"invalid_token\", \
             error_description=\"token expired\"\r\n\
             WWW-Authenticate: Basic realm=\"ringway\", charset=\"UTF-8\"\r\n"
        );

        let mut out = BytesMut::new();
        auth.challenges(
            &[0],
            &Outcome::Consumer {
                consumer: 0,
                via: 0,
            },
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn basic_realm_is_quoted() {
        let mut def = basic_auth("basic", 0);
        if let AuthKind::Basic { realm, .. } = &mut def.kind {
            *realm = r#"say "hi" \o/"#.into();
        }
        let auth = Auth::compile(&config(vec![], vec![def])).expect("valid");
        let mut out = BytesMut::new();
        auth.challenges(&[0], &Outcome::Missing, &mut out);
        assert_eq!(
            &out[..],
            b"WWW-Authenticate: Basic realm=\"say \\\"hi\\\" \\\\o/\", charset=\"UTF-8\"\r\n"
        );

        let mut def = basic_auth("basic", 0);
        if let AuthKind::Basic { realm, .. } = &mut def.kind {
            *realm = "a\r\nSet-Cookie: x".into();
        }
        let errors = Auth::compile(&config(vec![], vec![def])).expect_err("refused");
        assert_eq!(errors.0[0].path, "authenticators[0].realm");
    }

    #[test]
    fn credential_locations_name_each_place_once() {
        let (auth, _) = fixture();
        let all: Vec<_> = auth.credential_locations(&[0, 1, 2]).collect();
        assert_eq!(
            all,
            [
                CredentialLocation::Header("x-api-key"),
                CredentialLocation::Query("api_key"),
                CredentialLocation::Header("authorization"),
            ]
        );
        let jwt_only: Vec<_> = auth.credential_locations(&[2]).collect();
        assert_eq!(jwt_only, [CredentialLocation::Header("authorization")]);
    }

    #[test]
    fn api_keys_shared_by_two_consumers_are_refused() {
        let mut a = consumer("a");
        let mut b = consumer("b");
        for c in [&mut a, &mut b] {
            c.api_keys.push(ApiKey {
                sha256: sha256(b"same"),
                plain: true,
            });
        }
        let errors = Auth::compile(&config(vec![a, b], vec![])).expect_err("refused");
        assert_eq!(errors.0[0].path, "consumers[1].api-keys[0]");
        assert_eq!(
            errors.0[0].message,
            "this key also belongs to consumer \"a\""
        );
    }

    #[test]
    fn compiled_auth_is_shareable_across_workers() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Auth>();
        let (auth, _) = fixture();
        assert_eq!(auth.len(), 3);
        assert_eq!(auth.name(2), Some("jwt"));
        assert!(format!("{auth:?}").contains("\"keys\""));
        assert!(!format!("{auth:?}").contains("argon2"));
    }

    #[test]
    fn cached_credentials_allocate_nothing() {
        let mut alice = consumer("alice");
        alice.api_keys.push(ApiKey {
            sha256: sha256(b"alice-key"),
            plain: false,
        });
        alice.basic = Some(basic_credential("alice", &argon2_hash("pw")));
        let es256 = jwt_settings(&[JwtAlgorithm::Es256], vec![pem_key_def(None, P256_PUB)]);
        let auth = Auth::compile(&config(
            vec![alice],
            vec![
                api_key_auth("keys", Some("api_key")),
                basic_auth("basic", 16),
                jwt_auth("jwt", es256),
            ],
        ))
        .expect("valid");
        let cache = AuthCache::new(&auth);
        let token = sign("ES256", &Signer::p256(), None, &claims("alice", NOW + 60));
        let heads = [
            request("/", &["X-Api-Key: alice-key".into()]),
            request("/?a=1&api_key=alice-key", &[]),
            request(
                "/",
                &[format!("Authorization: {}", basic_header("alice", "pw"))],
            ),
            request("/", &[format!("Authorization: Bearer {token}")]),
        ];
        let want = [0, 0, 1, 2].map(|via| Outcome::Consumer { consumer: 0, via });
        for (head, want) in heads.iter().zip(want) {
            assert_eq!(auth.authenticate(&cache, &[0, 1, 2], head, at(NOW)), want);
        }
        let mut got = [Outcome::Missing; 4];
        let allocs = count_allocs(|| {
            for _ in 0..100 {
                for (head, got) in heads.iter().zip(got.iter_mut()) {
                    *got = auth.authenticate(&cache, &[0, 1, 2], head, at(NOW + 1));
                }
            }
        });
        assert_eq!(got, want);
        assert_eq!(allocs, 0);
        assert_eq!(cache.stats(2).expect("jwt cache").hits, 100);
    }

    #[test]
    fn scheme_parsing() {
        type Case<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
        let cases: &[Case<'_>] = &[
            (b"Bearer abc", b"bearer", Some(b"abc")),
            (b"bearer   abc ", b"Bearer", Some(b"abc")),
            (b"Bearer", b"bearer", Some(b"")),
            (b"Bearerabc", b"bearer", None),
            (b"Basic abc", b"bearer", None),
            (b"", b"bearer", None),
        ];
        for (value, scheme, want) in cases {
            assert_eq!(scheme_credentials(value, scheme), *want);
        }
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1999)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
