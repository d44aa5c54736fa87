//! `[[consumers]]` → [`Consumer`]: names, groups and credentials.
//!
//! A credential must identify one consumer, so an API key (compared by its
//! SHA-256, whichever way it was written) and a Basic username may belong
//! to one consumer only; the second holder is the error. Credentials are
//! checked for shape, not content: an API key is `sha256:` and 64 hex digits
//! or `plain:` and the key, a password hash is a PHC string or a bcrypt
//! hash. Verifying a password against its hash is the engine's job.
//!
//! Secrets never appear in messages: errors are logged and returned by the
//! admin API. A `plain:` key is allowed (it makes local testing easy) but
//! warned about, since the file then holds the key itself; a plain-text
//! password is never allowed, since a password, unlike a generated key, is
//! often reused elsewhere.

use std::collections::HashMap;
use std::collections::HashSet;
use std::ops::RangeInclusive;

use sha2::{Digest, Sha256};
use toml::Spanned;

use super::{text, Names};
use crate::error::Reporter;
use crate::model::{ApiKey, BasicCredential, Consumer};
use crate::raw::{Item, RawBasic, RawConsumer};

/// Length of the key in `plain:KEY`. Shorter keys are guessable; 256 keeps
/// the header that carries one far below any `max-head-size`.
const PLAIN_KEY_LEN: RangeInclusive<usize> = 8..=256;
/// Longest Basic username.
const MAX_USERNAME_LEN: usize = 64;

/// Where a key or username was first seen: consumer index, entry index.
type FirstSeen = (usize, usize);

pub(super) fn consumers(
    items: &[Item<RawConsumer>],
    r: &mut Reporter<'_>,
) -> Option<Vec<Consumer>> {
    let mut names = Names::new("consumers");
    let mut keys: HashMap<[u8; 32], FirstSeen> = HashMap::new();
    let mut usernames: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(raw) = &item.value else {
            out.push(None);
            continue;
        };
        let path = format!("consumers[{i}]");
        let name = names.required(
            raw.name.as_ref(),
            i,
            &item.span,
            "a consumer needs a name, which routes pass upstream and \
                     JWTs refer to",
            r,
        );
        let groups = groups(raw.groups.as_deref().unwrap_or_default(), &path, r);
        let api_keys = api_keys(
            raw.api_keys.as_deref().unwrap_or_default(),
            &path,
            i,
            items,
            &mut keys,
            r,
        );
        let basic = match &raw.basic {
            None => Some(None),
            Some(b) => basic(b, &path, i, &mut usernames, r).map(Some),
        };
        out.push(match (name, groups, api_keys, basic) {
            (Some(name), Some(groups), Some(api_keys), Some(basic)) => Some(Consumer {
                name,
                groups,
                api_keys,
                basic,
            }),
            _ => None,
        });
    }
    out.into_iter().collect()
}

fn groups(list: &[Spanned<String>], path: &str, r: &mut Reporter<'_>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, g) in list.iter().enumerate() {
        let key = format!("{path}.groups[{j}]");
        let problem = text::name(g.get_ref()).err().or_else(|| {
            out.iter()
                .position(|seen| seen == g.get_ref())
                .map(|first| format!("{:?} is already listed as groups[{first}]", g.get_ref()))
        });
        match problem {
            Some(message) => {
                r.error(key, Some(g.span()), message);
                ok = false;
            }
            None => out.push(g.get_ref().clone()),
        }
    }
    ok.then_some(out)
}

fn api_keys(
    list: &[Spanned<String>],
    path: &str,
    consumer: usize,
    items: &[Item<RawConsumer>],
    seen: &mut HashMap<[u8; 32], FirstSeen>,
    r: &mut Reporter<'_>,
) -> Option<Vec<ApiKey>> {
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, entry) in list.iter().enumerate() {
        let key_path = format!("{path}.api-keys[{j}]");
        let key = match api_key(entry.get_ref()) {
            Ok(key) => key,
            Err(message) => {
                r.error(key_path, Some(entry.span()), message);
                ok = false;
                continue;
            }
        };
        if let Some(&(first, k)) = seen.get(&key.sha256) {
            let message = if first == consumer {
                format!("the same key as api-keys[{k}]")
            } else {
                let holder = items[first]
                    .name
                    .as_deref()
                    .map_or_else(String::new, |n| format!(" ({n:?})"));
                format!(
                    "the same key as consumers[{first}].api-keys[{k}]{holder}; \
                     a key must identify one consumer"
                )
            };
            r.error(key_path, Some(entry.span()), message);
            ok = false;
            continue;
        }
        seen.insert(key.sha256, (consumer, j));
        if key.plain {
            r.warn(
                key_path,
                Some(entry.span()),
                "a \"plain:\" key leaves the key readable in the config; store \
                 \"sha256:\" and its SHA-256 in hex instead, e.g. from \
                 `printf %s KEY | sha256sum`",
            );
        }
        out.push(key);
    }
    ok.then_some(out)
}

/// `"sha256:<64 hex digits>"` or `"plain:<key>"`. Messages never quote the
/// text: it may be a key.
pub(crate) fn api_key(text: &str) -> Result<ApiKey, String> {
    if let Some(hex) = text.strip_prefix("sha256:") {
        let Some(sha256) = decode_hex_32(hex) else {
            return Err(format!(
                "after \"sha256:\" write the key's SHA-256 as 64 hex digits; found {} \
                 characters{}",
                hex.chars().count(),
                if hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ""
                } else {
                    ", not all hex digits"
                }
            ));
        };
        return Ok(ApiKey {
            sha256,
            plain: false,
        });
    }
    if let Some(key) = text.strip_prefix("plain:") {
        if let Some((i, c)) = key
            .chars()
            .enumerate()
            .find(|&(_, c)| !c.is_ascii_graphic())
        {
            return Err(format!(
                "character {} of the key is {}; a key holds only visible ASCII \
                 characters, no spaces",
                i + 1,
                if c.is_ascii() {
                    format!("{c:?}")
                } else {
                    "not ASCII".to_owned()
                }
            ));
        }
        if !PLAIN_KEY_LEN.contains(&key.len()) {
            return Err(format!(
                "the key is {} characters long; use {} to {}, e.g. the output of \
                 `openssl rand -hex 32`",
                key.len(),
                PLAIN_KEY_LEN.start(),
                PLAIN_KEY_LEN.end()
            ));
        }
        return Ok(ApiKey {
            sha256: Sha256::digest(key.as_bytes()).into(),
            plain: true,
        });
    }
    let lower_prefix = text
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("sha256:"))
        || text
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("plain:"));
    if lower_prefix {
        return Err("write the prefix in lower case: \"sha256:\" or \"plain:\"".into());
    }
    Err("write \"sha256:\" and the key's SHA-256 in hex (e.g. from \
         `printf %s KEY | sha256sum`), or \"plain:\" and the key while developing"
        .into())
}

fn decode_hex_32(hex: &str) -> Option<[u8; 32]> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

fn basic(
    raw: &Spanned<RawBasic>,
    path: &str,
    consumer: usize,
    usernames: &mut HashMap<String, usize>,
    r: &mut Reporter<'_>,
) -> Option<BasicCredential> {
    let b = raw.get_ref();
    let path = format!("{path}.basic");
    let missing = |key: &str, what: &str, r: &mut Reporter<'_>| {
        r.error(
            format!("{path}.{key}"),
            Some(raw.span()),
            format!("missing; {what}"),
        );
    };
    let username = match &b.username {
        None => {
            missing("username", "Basic credentials need a username", r);
            None
        }
        Some(u) => match username(u.get_ref()) {
            Err(message) => {
                r.error(format!("{path}.username"), Some(u.span()), message);
                None
            }
            Ok(()) => {
                if let Some(&first) = usernames.get(u.get_ref()) {
                    r.error(
                        format!("{path}.username"),
                        Some(u.span()),
                        format!(
                            "{:?} is already the username of consumers[{first}]; a username \
                             must identify one consumer",
                            u.get_ref()
                        ),
                    );
                    None
                } else {
                    usernames.insert(u.get_ref().clone(), consumer);
                    Some(u.get_ref().clone())
                }
            }
        },
    };
    let password_hash = match &b.password_hash {
        None => {
            missing(
                "password-hash",
                "store the password's hash, e.g. the output of `ringway hash-password`",
                r,
            );
            None
        }
        Some(h) => match password_hash(h.get_ref()) {
            Ok(()) => Some(h.get_ref().clone()),
            Err(message) => {
                r.error(format!("{path}.password-hash"), Some(h.span()), message);
                None
            }
        },
    };
    Some(BasicCredential {
        username: username?,
        password_hash: password_hash?,
    })
}

/// A Basic username: 1 to 64 visible ASCII characters without `:`, which
/// ends the username in the credentials (RFC 7617 §2).
pub(crate) fn username(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > MAX_USERNAME_LEN {
        return Err(format!(
            "{text:?} is longer than {MAX_USERNAME_LEN} characters"
        ));
    }
    if let Some(c) = text.chars().find(|&c| !c.is_ascii_graphic() || c == ':') {
        return Err(format!(
            "{text:?} contains {c:?}; a username holds visible ASCII characters other than ':'"
        ));
    }
    Ok(())
}

/// What every password-hash message ends with.
const HASH_HINT: &str = "e.g. the output of `ringway hash-password`";

/// A password hash: a PHC string for argon2 (`$argon2id$v=19$m=..,t=..,
/// p=..$SALT$HASH`) or scrypt (`$scrypt$ln=..,r=..,p=..$SALT$HASH`), or a
/// bcrypt hash (`$2b$12$` and 53 characters). Only the shape is checked.
/// Messages never quote the text: it may be a password pasted by mistake.
pub(crate) fn password_hash(text: &str) -> Result<(), String> {
    let Some(rest) = text.strip_prefix('$') else {
        return Err(format!(
            "a plain-text password is never accepted; store its hash instead, {HASH_HINT}"
        ));
    };
    let scheme = rest.split('$').next().unwrap_or_default();
    match scheme {
        "argon2id" | "argon2i" | "argon2d" => phc(rest, "argon2", &["m", "t", "p"]),
        "scrypt" => phc(rest, "scrypt", &["ln", "r", "p"]),
        "2a" | "2b" | "2y" => bcrypt(text),
        _ => Err(format!(
            "not a supported password hash: use an argon2id, argon2i, argon2d or scrypt PHC \
             string, or a bcrypt hash ($2a$, $2b$ or $2y$), {HASH_HINT}"
        )),
    }
}

/// `id[$v=N]$params$salt$hash`, `rest` being the text after the first `$`.
fn phc(rest: &str, family: &str, params: &[&str]) -> Result<(), String> {
    let example = match family {
        "scrypt" => "$scrypt$ln=17,r=8,p=1$SALT$HASH",
        _ => "$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH",
    };
    let bad = |what: &str| {
        Err(format!(
            "not a well-formed {family} hash: {what}; expected the shape {example}, {HASH_HINT}"
        ))
    };
    let mut fields: Vec<&str> = rest.split('$').skip(1).collect();
    if fields.first().is_some_and(|f| f.starts_with("v=")) {
        let version = fields.remove(0);
        if version.len() == 2 || !version[2..].bytes().all(|b| b.is_ascii_digit()) {
            return bad("the version must be v= and a number");
        }
    }
    let [given, salt, hash] = fields.as_slice() else {
        return bad("expected parameters, a salt and a hash, separated by '$'");
    };
    let mut names = Vec::new();
    for pair in given.split(',') {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let Some((name, value)) = pair.split_once('=').filter(|(n, _)| name_ok(n)) else {
            return bad("parameters are name=value pairs separated by ','");
        };
        if value.is_empty() || !value.bytes().all(is_b64) {
            return bad("a parameter has an empty or malformed value");
        }
        names.push(name);
    }
    if let Some(missing) = params.iter().find(|p| !names.contains(p)) {
        return bad(&format!("the parameter {missing}= is missing"));
    }
    if salt.is_empty() || hash.is_empty() || !salt.bytes().chain(hash.bytes()).all(is_b64) {
        return bad("the salt and the hash must be non-empty base64");
    }
    Ok(())
}

/// `$2b$CC$` and 53 characters of bcrypt's base64: 22 of salt, 31 of hash.
fn bcrypt(text: &str) -> Result<(), String> {
    let bad = |what: String| {
        Err(format!(
            "not a well-formed bcrypt hash: {what}; expected $2b$, a two-digit cost, '$' and \
             53 characters, {HASH_HINT}"
        ))
    };
    if text.len() != 60 {
        return bad(format!(
            "a bcrypt hash is 60 characters, this is {}",
            text.len()
        ));
    }
    let cost = text.get(4..6).and_then(|c| c.parse::<u8>().ok());
    if !cost.is_some_and(|c| (4..=31).contains(&c)) || text.as_bytes().get(6) != Some(&b'$') {
        return bad("the cost must be 04 to 31".to_owned());
    }
    let bcrypt_b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
    if !text.bytes().skip(7).all(bcrypt_b64) {
        return bad("the salt and hash hold only letters, digits, '.' and '/'".to_owned());
    }
    Ok(())
}

/// PHC's base64 alphabet, plus `.` (passlib's variant) and `=` padding,
/// which some tools add.
fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'.' | b'=' | b'-')
}

/// Every group name any `[[consumers]]` element lists, valid or not, for
/// checking routes' `allow-groups` against.
pub(super) fn all_groups(items: &[Item<RawConsumer>]) -> HashSet<&str> {
    items
        .iter()
        .filter_map(|item| item.value.as_ref())
        .flat_map(|c| c.groups.iter().flatten())
        .map(|g| g.get_ref().as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(check: impl Fn(&str) -> Result<(), String>, cases: &[(&str, Result<(), &str>)]) {
        for &(input, want) in cases {
            match (check(input), want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(fragment)) => {
                    assert!(e.contains(fragment), "{input:?}: {e:?} lacks {fragment:?}")
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    const SHA_OF_SECRET: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

    #[test]
    fn api_keys_hash_the_same_either_way() {
        let hashed = api_key(&format!("sha256:{SHA_OF_SECRET}")).expect("hex");
        let upper = api_key(&format!("sha256:{}", SHA_OF_SECRET.to_ascii_uppercase()))
            .expect("upper-case hex");
        let plain = api_key("plain:secret12").expect("plain");
        assert!(!hashed.plain && !upper.plain && plain.plain);
        assert_eq!(hashed.sha256, upper.sha256);
        assert_ne!(hashed.sha256, plain.sha256);
        // SHA-256("secret") is SHA_OF_SECRET; "secret" is too short to be
        // a plain key, so check the hashing with it directly.
        let digest: [u8; 32] = Sha256::digest(b"secret").into();
        assert_eq!(digest, hashed.sha256);
    }

    #[test]
    fn api_key_shapes() {
        let short = format!("sha256:{}", &SHA_OF_SECRET[1..]);
        let not_hex = format!("sha256:{}g", &SHA_OF_SECRET[1..]);
        table(
            |t| api_key(t).map(|_| ()),
            &[
                ("plain:12345678", Ok(())),
                (&format!("plain:{}", "k".repeat(256)), Ok(())),
                ("plain:1234567", Err("7 characters long; use 8 to 256")),
                (&format!("plain:{}", "k".repeat(257)), Err("257 characters")),
                ("plain:1234 5678", Err("character 5 of the key is ' '")),
                ("plain:1234567é", Err("is not ASCII")),
                (&short, Err("64 hex digits; found 63 characters")),
                (&not_hex, Err("not all hex digits")),
                ("sha256:", Err("found 0 characters")),
                ("SHA256:abc", Err("lower case")),
                ("Plain:12345678", Err("lower case")),
                ("my-secret-key", Err("write \"sha256:\"")),
                ("", Err("write \"sha256:\"")),
            ],
        );
        // Keys are secrets: no message repeats one.
        for bad in ["plain:short", "plain:has a space", "hunter2-hunter2"] {
            let message = api_key(bad).expect_err(bad);
            let key = bad.trim_start_matches("plain:");
            assert!(!message.contains(key), "{message}");
        }
    }

    #[test]
    fn usernames() {
        table(
            username,
            &[
                ("alice", Ok(())),
                ("svc.billing@corp", Ok(())),
                ("", Err("must not be empty")),
                ("a:b", Err("contains ':'")),
                ("a b", Err("contains ' '")),
                ("jürgen", Err("contains 'ü'")),
                (&"u".repeat(65), Err("longer than 64")),
            ],
        );
    }

    #[test]
    fn password_hashes() {
        let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        assert_eq!(bcrypt.len(), 60);
        table(
            password_hash,
            &[
                (
                    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
                    Ok(()),
                ),
                ("$argon2i$m=4096,t=3,p=1$c2FsdA$aGFzaA", Ok(())),
                (
                    "$argon2d$v=16$m=65536,t=2,p=4,keyid=a1$c2FsdA$aGFzaA",
                    Ok(()),
                ),
                ("$scrypt$ln=17,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", Ok(())),
                ("$scrypt$ln=16,r=8,p=1$LkVgT.vYpr8WNA$4Kh3KoYEsUH", Ok(())),
                (bcrypt, Ok(())),
                (&bcrypt.replace("$2b$", "$2y$"), Ok(())),
                (&bcrypt.replace("$2b$", "$2a$"), Ok(())),
                ("hunter2", Err("a plain-text password is never accepted")),
                ("", Err("a plain-text password is never accepted")),
                (
                    "$6$rounds=5000$salt$hash",
                    Err("not a supported password hash"),
                ),
                ("$pbkdf2-sha256$29000$c2FsdA$aGFzaA", Err("not a supported")),
                (
                    "$2x$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
                    Err("not a supported"),
                ),
                ("$", Err("not a supported")),
                (
                    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA",
                    Err("a salt and a hash"),
                ),
                (
                    "$argon2id$v=19$m=19456,t=2$c2FsdA$aGFzaA",
                    Err("p= is missing"),
                ),
                ("$argon2id$v=$m=1,t=1,p=1$c2FsdA$aGFzaA", Err("version")),
                (
                    "$argon2id$v=19$m:1,t=1,p=1$c2FsdA$aGFzaA",
                    Err("name=value"),
                ),
                ("$argon2id$v=19$=1,t=1,p=1$c2FsdA$aGFzaA", Err("name=value")),
                (
                    "$argon2id$v=19$m=1;t=1;p=1$c2FsdA$aGFzaA",
                    Err("malformed value"),
                ),
                (
                    "$argon2id$v=19$m=,t=1,p=1$c2FsdA$aGFzaA",
                    Err("empty or malformed"),
                ),
                (
                    "$argon2id$v=19$m=1,t=1,p=1$$aGFzaA",
                    Err("non-empty base64"),
                ),
                (
                    "$argon2id$v=19$m=1,t=1,p=1$c2 FsdA$aGFzaA",
                    Err("non-empty base64"),
                ),
                ("$scrypt$ln=17,p=1$c2FsdA$aGFzaA", Err("r= is missing")),
                ("$2b$12$short", Err("60 characters, this is 12")),
                (
                    &bcrypt.replace("$12$", "$03$"),
                    Err("cost must be 04 to 31"),
                ),
                (
                    &bcrypt.replace("$12$", "$1x$"),
                    Err("cost must be 04 to 31"),
                ),
                (&bcrypt.replace('/', "+"), Err("'.' and '/'")),
            ],
        );
        // A pasted password is never repeated, whatever it looks like.
        for bad in ["hunter2", "$ecret-pass", "$2b$pass", "$argon2id$pass"] {
            let message = password_hash(bad).expect_err(bad);
            assert!(!message.contains(bad.trim_start_matches('$')), "{message}");
            assert!(message.contains("ringway hash-password"), "{message}");
        }
    }
}
