//! API keys: a shared secret in a header (tried first) or a query
//! parameter, looked up by its SHA-256.
//!
//! The config holds only the keys' SHA-256s, so a leaked config or snapshot
//! does not leak keys; checking a request costs one SHA-256 of the
//! presented key and one hash-table probe (≈0.1 µs in all for a 40-byte
//! key), with no cache needed and nothing allocated. A key in the query string is
//! percent-decoded (`%XX` only; `+` stays a plus, since keys are not form
//! data) while it is hashed, without a buffer.
//!
//! The lookup is not constant-time, and need not be: what a timing
//! difference could reveal is how the SHA-256 of the attacker's own guess
//! compares with stored digests, and knowing part of a digest does not help
//! find a key that hashes to it (SHA-256 is preimage resistant). The keys
//! themselves are never compared.

use ahash::AHashMap;
use sha2::{Digest, Sha256};

use super::Verdict;
use crate::http::head::RequestHead;
use crate::http::text::trim;

/// One `type = "api-key"` authenticator.
pub(crate) struct ApiKeyAuth {
    /// Lower-case header name.
    header: Box<str>,
    query: Option<Box<str>>,
}

impl ApiKeyAuth {
    pub(crate) fn new(header: &str, query: Option<&str>) -> Self {
        ApiKeyAuth {
            header: header.to_ascii_lowercase().into(),
            query: query.map(Into::into),
        }
    }

    pub(crate) fn header(&self) -> &str {
        &self.header
    }

    pub(crate) fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    pub(crate) fn check(&self, head: &RequestHead, keys: &AHashMap<[u8; 32], usize>) -> Verdict {
        match self.digest(head) {
            Ok(None) => Verdict::Absent,
            // Not constant-time, and need not be: see the module header.
            Ok(Some(digest)) => match keys.get(&digest) {
                Some(&consumer) => Verdict::Consumer(consumer),
                None => Verdict::Invalid("unknown api key"),
            },
            Err(reason) => Verdict::Invalid(reason),
        }
    }

    /// The SHA-256 of the request's key, if it carries one.
    fn digest(&self, head: &RequestHead) -> Result<Option<[u8; 32]>, &'static str> {
        let mut found = None;
        for h in &head.headers {
            if head
                .bytes(h.name)
                .eq_ignore_ascii_case(self.header.as_bytes())
            {
                if found.is_some() {
                    return Err("more than one api key");
                }
                found = Some(trim(head.bytes(h.value)));
            }
        }
        if let Some(key) = found {
            if key.is_empty() {
                return Err("empty api key");
            }
            return Ok(Some(Sha256::digest(key).into()));
        }

        let Some(name) = &self.query else {
            return Ok(None);
        };
        let target = head.origin();
        let Some(q) = target.iter().position(|&b| b == b'?') else {
            return Ok(None);
        };
        let mut found = None;
        for pair in target[q + 1..].split(|&b| b == b'&') {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(p) => (&pair[..p], &pair[p + 1..]),
                None => (pair, &b""[..]),
            };
            if key == name.as_bytes() {
                if found.is_some() {
                    return Err("more than one api key");
                }
                found = Some(value);
            }
        }
        match found {
            None => Ok(None),
            Some([]) => Err("empty api key"),
            Some(value) => percent_decoded_sha256(value).map(Some),
        }
    }
}

/// SHA-256 of `s` with its `%XX` escapes decoded.
fn percent_decoded_sha256(s: &[u8]) -> Result<[u8; 32], &'static str> {
    let mut hasher = Sha256::new();
    let mut rest = s;
    while let Some(p) = rest.iter().position(|&b| b == b'%') {
        hasher.update(&rest[..p]);
        let byte = match rest.get(p + 1..p + 3) {
            Some(&[hi, lo]) => hex(hi).zip(hex(lo)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        hasher.update([byte.ok_or("malformed api key")?]);
        rest = &rest[p + 3..];
    }
    hasher.update(rest);
    Ok(hasher.finalize().into())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ringway_config::{ApiKey, AuthKind, Authenticator};

    use super::super::testutil::*;
    use super::super::{Auth, AuthCache, Outcome};

    fn auth(query: Option<&str>) -> Auth {
        let mut alice = consumer("alice");
        for key in [&b"alice-key"[..], b"a+b/c=d", b"k\xffy"] {
            alice.api_keys.push(ApiKey {
                sha256: sha256(key),
                plain: false,
            });
        }
        let mut bob = consumer("bob");
        bob.api_keys.push(ApiKey {
            sha256: sha256(b"bob-key"),
            plain: false,
        });
        let def = Authenticator {
            name: "keys".into(),
            kind: AuthKind::ApiKey {
                header: "x-api-key".into(),
                query: query.map(Into::into),
            },
        };
        Auth::compile(&config(vec![alice, bob], vec![def])).expect("valid")
    }

    #[test]
    fn keys_from_header_and_query() {
        let with_query = auth(Some("api_key"));
        let header_only = auth(None);
        let alice = Outcome::Consumer {
            consumer: 0,
            via: 0,
        };
        let bob = Outcome::Consumer {
            consumer: 1,
            via: 0,
        };
        let invalid = |reason| Outcome::Invalid { via: 0, reason };
        let cases: &[(&str, &[&str], Outcome, Outcome)] = &[
            ("/", &["X-API-KEY: alice-key"], alice, alice),
            ("/", &["x-api-key:   bob-key  "], bob, bob),
            ("/", &[], Outcome::Missing, Outcome::Missing),
            (
                "/",
                &["x-api-key: nope"],
                invalid("unknown api key"),
                invalid("unknown api key"),
            ),
            (
                "/",
                &["x-api-key:"],
                invalid("empty api key"),
                invalid("empty api key"),
            ),
            (
                "/",
                &["x-api-key: alice-key", "x-api-key: bob-key"],
                invalid("more than one api key"),
                invalid("more than one api key"),
            ),
            ("/p?api_key=alice-key", &[], alice, Outcome::Missing),
            ("/p?a=1&api_key=bob-key&b", &[], bob, Outcome::Missing),
            ("/p?api_key=a%2Bb%2fc%3Dd", &[], alice, Outcome::Missing),
            ("/p?api_key=a+b/c=d", &[], alice, Outcome::Missing),
            ("/p?api_key=k%FFy", &[], alice, Outcome::Missing),
            (
                "/p?api_key=wrong",
                &[],
                invalid("unknown api key"),
                Outcome::Missing,
            ),
            (
                "/p?api_key=",
                &[],
                invalid("empty api key"),
                Outcome::Missing,
            ),
            (
                "/p?api_key",
                &[],
                invalid("empty api key"),
                Outcome::Missing,
            ),
            (
                "/p?api_key=%zz",
                &[],
                invalid("malformed api key"),
                Outcome::Missing,
            ),
            (
                "/p?api_key=ab%2",
                &[],
                invalid("malformed api key"),
                Outcome::Missing,
            ),
            (
                "/p?api_key=alice-key&api_key=bob-key",
                &[],
                invalid("more than one api key"),
                Outcome::Missing,
            ),
            (
                "/p?xapi_key=alice-key",
                &[],
                Outcome::Missing,
                Outcome::Missing,
            ),
            (
                "/p?API_KEY=alice-key",
                &[],
                Outcome::Missing,
                Outcome::Missing,
            ),
            // The header wins over the query.
            ("/p?api_key=alice-key", &["x-api-key: bob-key"], bob, bob),
        ];
        for (target, headers, want_query, want_header_only) in cases {
            let headers: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
            let head = request(target, &headers);
            for (auth, want) in [(&with_query, want_query), (&header_only, want_header_only)] {
                let cache = AuthCache::new(auth);
                assert_eq!(
                    auth.authenticate(&cache, &[0], &head, at(NOW)),
                    *want,
                    "{target} {headers:?}"
                );
            }
        }
    }
}
