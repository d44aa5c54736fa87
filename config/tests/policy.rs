//! Traffic policy: `[client-ip]`, `[ip-rules]`, `[[consumers]]`,
//! `[[authenticators]]` and the route keys that use them. One table per
//! section, each row breaking one rule and naming the path and message of
//! the single resulting error; then the typed values and the warnings.

mod common;

use std::time::Duration;

use common::{assert_one_error, errors, valid, with_base};
use ringway_config::{
    AuthKind, ConcurrencyLimit, Config, IpNet, JwtAlgorithm, KeyMaterial, LimitKey, RateLimit,
};

/// A bcrypt hash of the right shape.
const BCRYPT: &str = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
/// SHA-256 of "secret".
const SHA_OF_SECRET: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
/// A P-256 public key.
const PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpdtg/iR3monVWQ5SWSmS7iVRN6mh\n\
2UQ7ZDu9786zhfraJ56BhMpdSK//Db7vPArfVr4g3JPDLjLRrr71fFk22Q==\n\
-----END PUBLIC KEY-----\n";

/// `(case, tables appended to the base, path, message fragment)`.
type Case<'a> = (&'a str, String, &'a str, &'a str);

fn run(cases: &[Case<'_>]) {
    for (case, tail, path, fragment) in cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }
}

fn s(text: &str) -> String {
    text.to_owned()
}

#[test]
fn client_ip_and_ip_rules() {
    run(&[
        (
            "host bits",
            s("[client-ip]\ntrusted-proxies = [\"10.0.0.1/8\"]"),
            "client-ip.trusted-proxies[0]",
            "\"10.0.0.1/8\": host bits set; did you mean 10.0.0.0/8?",
        ),
        (
            "prefix too long",
            s("[client-ip]\ntrusted-proxies = [\"10.0.0.0/33\"]"),
            "client-ip.trusted-proxies[0]",
            "0 to 32 for IPv4",
        ),
        (
            "hostname",
            s("[client-ip]\ntrusted-proxies = [\"10.0.0.0/8\", \"lb.internal\"]"),
            "client-ip.trusted-proxies[1]",
            "hostnames are not resolved",
        ),
        (
            "network twice",
            s("[client-ip]\ntrusted-proxies = [\"10.0.0.0/8\", \"10.0.0.0/8\"]"),
            "client-ip.trusted-proxies[1]",
            "10.0.0.0/8 is already listed as trusted-proxies[0]",
        ),
        (
            "address and its /32",
            s("[client-ip]\ntrusted-proxies = [\"10.1.2.3\", \"10.1.2.3/32\"]"),
            "client-ip.trusted-proxies[1]",
            "already listed as trusted-proxies[0]",
        ),
        (
            "not a list",
            s("[client-ip]\ntrusted-proxies = \"10.0.0.0/8\""),
            "client-ip.trusted-proxies",
            "expected an array",
        ),
        (
            "client-ip typo",
            s("[client-ip]\ntrusted-proxys = []"),
            "client-ip.trusted-proxys",
            "did you mean `trusted-proxies`?",
        ),
        (
            "client-ip array of tables",
            s("[[client-ip]]\ntrusted-proxies = []"),
            "client-ip",
            "expected a table",
        ),
        (
            "allow prefix",
            s("[ip-rules]\nallow = [\"::/129\"]"),
            "ip-rules.allow[0]",
            "0 to 128 for IPv6",
        ),
        (
            "deny host bits",
            s("[ip-rules]\ndeny = [\"2001:db8::1/64\"]"),
            "ip-rules.deny[0]",
            "host bits set; did you mean 2001:db8::/64?",
        ),
        (
            "deny twice",
            s("[ip-rules]\ndeny = [\"::1\", \"::1/128\"]"),
            "ip-rules.deny[1]",
            "::1/128 is already listed as deny[0]",
        ),
        (
            "entry type",
            s("[ip-rules]\nallow = [10]"),
            "ip-rules.allow[0]",
            "expected a string",
        ),
        (
            "ip-rules unknown key",
            s("[ip-rules]\nblock = []"),
            "ip-rules.block",
            "unknown key `block`",
        ),
    ]);
    assert_one_error(
        "ip-rules not a table",
        &with_base("ip-rules = []", ""),
        "ip-rules",
        "expected a table, found array",
    );
}

fn consumer(body: &str) -> String {
    format!("[[consumers]]\n{body}")
}

#[test]
fn consumers() {
    let basic = |fields: &str| consumer(&format!("name = \"a\"\nbasic = {{ {fields} }}"));
    run(&[
        (
            "missing name",
            consumer("groups = []"),
            "consumers[0].name",
            "missing; a consumer needs a name",
        ),
        (
            "taken name",
            format!("{}\n{}", consumer("name = \"a\""), consumer("name = \"a\"")),
            "consumers[1].name",
            "\"a\" is already the name of consumers[0]",
        ),
        (
            "bad name",
            consumer("name = \"a b\""),
            "consumers[0].name",
            "contains ' '",
        ),
        (
            "bad group",
            consumer("name = \"a\"\ngroups = [\"ops team\"]"),
            "consumers[0].groups[0]",
            "contains ' '",
        ),
        (
            "group twice",
            consumer("name = \"a\"\ngroups = [\"ops\", \"ops\"]"),
            "consumers[0].groups[1]",
            "\"ops\" is already listed as groups[0]",
        ),
        (
            "key without prefix",
            consumer("name = \"a\"\napi-keys = [\"my-secret-key\"]"),
            "consumers[0].api-keys[0]",
            "write \"sha256:\" and the key's SHA-256 in hex",
        ),
        (
            "short hash",
            consumer("name = \"a\"\napi-keys = [\"sha256:abc\"]"),
            "consumers[0].api-keys[0]",
            "64 hex digits; found 3 characters",
        ),
        (
            "short plain key",
            consumer("name = \"a\"\napi-keys = [\"plain:short\"]"),
            "consumers[0].api-keys[0]",
            "5 characters long; use 8 to 256",
        ),
        (
            "same key, two consumers, written two ways",
            format!(
                "{}\n{}",
                consumer("name = \"a\"\napi-keys = [\"plain:secret-key-1\"]"),
                consumer(&format!(
                    "name = \"b\"\napi-keys = [\"sha256:{SHA_OF_SECRET}\", \"plain:secret-key-1\"]"
                ))
            ),
            "consumers[1].api-keys[1]",
            "the same key as consumers[0].api-keys[0] (\"a\"); a key must identify one consumer",
        ),
        (
            "same key, one consumer, upper-case hex",
            consumer(&format!(
                "name = \"a\"\napi-keys = [\"sha256:{SHA_OF_SECRET}\", \"sha256:{}\"]",
                SHA_OF_SECRET.to_ascii_uppercase()
            )),
            "consumers[0].api-keys[1]",
            "the same key as api-keys[0]",
        ),
        (
            "api-key typo",
            consumer("name = \"a\"\napi-key = []"),
            "consumers[0].api-key",
            "did you mean `api-keys`?",
        ),
        (
            "basic without username",
            basic(&format!("password-hash = \"{BCRYPT}\"")),
            "consumers[0].basic.username",
            "missing",
        ),
        (
            "basic without hash",
            basic("username = \"a\""),
            "consumers[0].basic.password-hash",
            "missing; store the password's hash, e.g. the output of `ringway hash-password`",
        ),
        (
            "plain-text password",
            basic("username = \"a\", password-hash = \"hunter2\""),
            "consumers[0].basic.password-hash",
            "a plain-text password is never accepted; store its hash instead, \
             e.g. the output of `ringway hash-password`",
        ),
        (
            "crypt(3) hash",
            basic("username = \"a\", password-hash = \"$6$salt$hash\""),
            "consumers[0].basic.password-hash",
            "not a supported password hash",
        ),
        (
            "bcrypt cut short",
            basic(&format!(
                "username = \"a\", password-hash = \"{}\"",
                &BCRYPT[..59]
            )),
            "consumers[0].basic.password-hash",
            "a bcrypt hash is 60 characters, this is 59",
        ),
        (
            "argon2 without parameters",
            basic("username = \"a\", password-hash = \"$argon2id$v=19$c2FsdA$aGFzaA\""),
            "consumers[0].basic.password-hash",
            "not a well-formed argon2 hash",
        ),
        (
            "username with a colon",
            basic(&format!("username = \"a:b\", password-hash = \"{BCRYPT}\"")),
            "consumers[0].basic.username",
            "contains ':'",
        ),
        (
            "username taken",
            format!(
                "{}\n{}",
                basic(&format!("username = \"u\", password-hash = \"{BCRYPT}\"")),
                consumer(&format!(
                    "name = \"b\"\nbasic = {{ username = \"u\", password-hash = \"{BCRYPT}\" }}"
                ))
            ),
            "consumers[1].basic.username",
            "\"u\" is already the username of consumers[0]",
        ),
        (
            "basic with a password key",
            basic(&format!(
                "username = \"a\", password-hash = \"{BCRYPT}\", password = \"x\""
            )),
            "consumers[0].basic.password",
            "unknown key `password`",
        ),
        (
            "basic as a string",
            consumer("name = \"a\"\nbasic = \"a:b\""),
            "consumers[0].basic",
            "expected a table",
        ),
    ]);
    assert_one_error(
        "consumers not an array",
        &with_base("consumers = 1", ""),
        "consumers",
        "expected an array of tables",
    );
}

fn authenticator(body: &str) -> String {
    format!("[[authenticators]]\nname = \"a\"\n{body}")
}

fn jwt(body: &str) -> String {
    authenticator(&format!("type = \"jwt\"\n{body}"))
}

const HMAC_KEY: &str = "keys = [{ secret = \"0123456789abcdef0123456789abcdef\" }]";

#[test]
fn authenticators() {
    let es256 = |extra: &str| {
        jwt(&format!(
            "algorithms = [\"ES256\"]\njwks-file = \"j\"\n{extra}"
        ))
    };
    let hs256 = |extra: &str| jwt(&format!("algorithms = [\"HS256\"]\n{extra}"));
    run(&[
        (
            "missing name",
            s("[[authenticators]]\ntype = \"basic\""),
            "authenticators[0].name",
            "missing; an authenticator needs a name",
        ),
        (
            "taken name",
            format!(
                "{}\n{}",
                authenticator("type = \"basic\""),
                authenticator("type = \"basic\"")
            ),
            "authenticators[1].name",
            "\"a\" is already the name of authenticators[0]",
        ),
        (
            "missing type",
            authenticator(""),
            "authenticators[0].type",
            "missing; set type = \"api-key\", \"basic\" or \"jwt\"",
        ),
        (
            "unknown type",
            authenticator("type = \"oauth\""),
            "authenticators[0].type",
            "expected \"api-key\", \"basic\" or \"jwt\", found \"oauth\"",
        ),
        (
            "realm on jwt",
            es256("realm = \"x\""),
            "authenticators[0].realm",
            "`realm` is not a key of type = \"jwt\" authenticators; it applies to type = \"basic\"",
        ),
        (
            "cache-size on api-key",
            authenticator("type = \"api-key\"\ncache-size = 10"),
            "authenticators[0].cache-size",
            "applies to type = \"basic\" and type = \"jwt\"",
        ),
        (
            "header on basic",
            authenticator("type = \"basic\"\nheader = \"x-key\""),
            "authenticators[0].header",
            "not a key of type = \"basic\" authenticators; it applies to type = \"api-key\"",
        ),
        (
            "algorithms on api-key",
            authenticator("type = \"api-key\"\nalgorithms = [\"ES256\"]"),
            "authenticators[0].algorithms",
            "not a key of type = \"api-key\"",
        ),
        (
            "unknown key",
            es256("issuers = \"x\""),
            "authenticators[0].issuers",
            "did you mean `issuer`?",
        ),
        (
            "header with a space",
            authenticator("type = \"api-key\"\nheader = \"x key\""),
            "authenticators[0].header",
            "contains ' '",
        ),
        (
            "hop-by-hop header",
            authenticator("type = \"api-key\"\nheader = \"Connection\""),
            "authenticators[0].header",
            "hop-by-hop",
        ),
        (
            "query with '='",
            authenticator("type = \"api-key\"\nquery = \"a=b\""),
            "authenticators[0].query",
            "contains '='",
        ),
        (
            "realm with a quote",
            authenticator("type = \"basic\"\nrealm = 'say \"hi\"'"),
            "authenticators[0].realm",
            "contains '\"'",
        ),
        (
            "basic cache-size negative",
            authenticator("type = \"basic\"\ncache-size = -1"),
            "authenticators[0].cache-size",
            "from 0 to 1000000",
        ),
        (
            "cache-ttl zero",
            authenticator("type = \"basic\"\ncache-ttl = \"0s\""),
            "authenticators[0].cache-ttl",
            "greater than zero",
        ),
        (
            "cache-ttl bare",
            authenticator("type = \"basic\"\ncache-ttl = 60"),
            "authenticators[0].cache-ttl",
            "needs a unit",
        ),
        (
            "no algorithms",
            jwt("jwks-file = \"j\""),
            "authenticators[0].algorithms",
            "missing; list the algorithms",
        ),
        (
            "empty algorithms",
            jwt("algorithms = []\njwks-file = \"j\""),
            "authenticators[0].algorithms",
            "at least one algorithm",
        ),
        (
            "unknown algorithm",
            jwt("algorithms = [\"ES512\"]\njwks-file = \"j\""),
            "authenticators[0].algorithms[0]",
            "unknown algorithm \"ES512\"",
        ),
        (
            "algorithm case",
            jwt(&format!("algorithms = [\"hs256\"]\n{HMAC_KEY}")),
            "authenticators[0].algorithms[0]",
            "write \"HS256\"",
        ),
        (
            "none",
            jwt("algorithms = [\"none\"]\njwks-file = \"j\""),
            "authenticators[0].algorithms[0]",
            "unsigned tokens",
        ),
        (
            "algorithm twice",
            jwt("algorithms = [\"ES256\", \"ES256\"]\njwks-file = \"j\""),
            "authenticators[0].algorithms[1]",
            "\"ES256\" is already listed as algorithms[0]",
        ),
        (
            "HMAC mixed with public key",
            jwt(&format!("algorithms = [\"RS256\", \"HS256\"]\n{HMAC_KEY}")),
            "authenticators[0].algorithms[1]",
            "HS256 (HMAC) cannot be mixed with RS256 (public key)",
        ),
        (
            "no keys at all",
            jwt("algorithms = [\"ES256\"]"),
            "authenticators[0].keys",
            "needs `keys` or a `jwks-file`",
        ),
        (
            "empty keys",
            jwt("algorithms = [\"ES256\"]\nkeys = []"),
            "authenticators[0].keys",
            "needs `keys` or a `jwks-file`",
        ),
        (
            "key without material",
            hs256("keys = [{ kid = \"1\" }]"),
            "authenticators[0].keys[0]",
            "set `secret` (for HS256, HS384, HS512) or `pem`",
        ),
        (
            "key with both",
            hs256("keys = [{ secret = \"0123456789abcdef0123456789abcdef\", pem = \"x\" }]"),
            "authenticators[0].keys[0].pem",
            "not both",
        ),
        (
            "short secret",
            hs256("keys = [{ secret = \"0123456789\" }]"),
            "authenticators[0].keys[0].secret",
            "is 10 bytes; an HMAC secret needs at least 32",
        ),
        (
            "secret for an asymmetric algorithm",
            jwt(&format!("algorithms = [\"RS256\"]\n{HMAC_KEY}")),
            "authenticators[0].keys[0].secret",
            "verifies HMAC algorithms only; this authenticator accepts RS256",
        ),
        (
            "public key for HMAC",
            hs256(&format!("keys = [{{ pem = \"\"\"\n{PEM}\"\"\" }}]")),
            "authenticators[0].keys[0].pem",
            "a public key must never verify HMAC algorithms (HS256)",
        ),
        (
            "not PEM",
            es256("keys = [{ pem = \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\" }]"),
            "authenticators[0].keys[0].pem",
            "not PEM",
        ),
        (
            "private key",
            es256("keys = [{ pem = \"-----BEGIN EC PRIVATE KEY-----\\nMHc\" }]"),
            "authenticators[0].keys[0].pem",
            "this is a private key",
        ),
        (
            "empty kid",
            hs256("keys = [{ kid = \"\", secret = \"0123456789abcdef0123456789abcdef\" }]"),
            "authenticators[0].keys[0].kid",
            "must not be empty",
        ),
        (
            "kid twice",
            hs256(
                "keys = [{ kid = \"k\", secret = \"0123456789abcdef0123456789abcdef\" }, \
                 { kid = \"k\", secret = \"fedcba9876543210fedcba9876543210\" }]",
            ),
            "authenticators[0].keys[1].kid",
            "\"k\" is already the kid of keys[0]",
        ),
        (
            "unknown key in a key",
            hs256("keys = [{ secret = \"0123456789abcdef0123456789abcdef\", alg = \"HS256\" }]"),
            "authenticators[0].keys[0].alg",
            "unknown key `alg`",
        ),
        (
            "empty jwks-file",
            jwt("algorithms = [\"ES256\"]\njwks-file = \"\""),
            "authenticators[0].jwks-file",
            "empty path",
        ),
        (
            "jwks-file for HMAC",
            hs256(&format!("{HMAC_KEY}\njwks-file = \"j\"")),
            "authenticators[0].jwks-file",
            "must never serve as HMAC secrets",
        ),
        (
            "empty issuer",
            es256("issuer = \"\""),
            "authenticators[0].issuer",
            "must not be empty",
        ),
        (
            "audience twice",
            es256("audience = [\"a\", \"a\"]"),
            "authenticators[0].audience[1]",
            "\"a\" is already listed as audience[0]",
        ),
        (
            "audience as a string",
            es256("audience = \"a\""),
            "authenticators[0].audience",
            "expected an array",
        ),
        (
            "leeway too long",
            es256("leeway = \"11m\""),
            "authenticators[0].leeway",
            "must be at most 10m",
        ),
        (
            "leeway bare",
            es256("leeway = 30"),
            "authenticators[0].leeway",
            "needs a unit",
        ),
        (
            "empty consumer-claim",
            es256("consumer-claim = \"\""),
            "authenticators[0].consumer-claim",
            "must not be empty",
        ),
        (
            "jwt cache-size too big",
            es256("cache-size = 1000001"),
            "authenticators[0].cache-size",
            "from 0 to 1000000",
        ),
    ]);
}

/// Authenticators and consumers the route cases refer to.
const POLICY: &str = r#"
[[consumers]]
name = "ops-bot"
groups = ["ops"]

[[authenticators]]
name = "keys"
type = "api-key"

[[authenticators]]
name = "login"
type = "basic"
"#;

/// `routes[1]` proxying to "app", with `body` added, after [`POLICY`].
fn route(body: &str) -> String {
    format!("{POLICY}\n[[routes]]\npath = \"/r\"\nupstream = \"app\"\n{body}")
}

/// `routes[1]` answered by the responder, with `body` added.
fn respond_route(body: &str) -> String {
    format!("{POLICY}\n[[routes]]\npath = \"/r\"\n{body}\n[routes.respond]")
}

fn limit(body: &str) -> String {
    route(&format!(
        "auth = [\"keys\"]\n[[routes.rate-limits]]\n{body}"
    ))
}

fn concurrency(body: &str) -> String {
    route(&format!("auth = [\"keys\"]\n[routes.concurrency]\n{body}"))
}

#[test]
fn route_policy() {
    run(&[
        (
            "unknown authenticator",
            route("auth = [\"keys\", \"sso\"]"),
            "routes[1].auth[1]",
            "no authenticator named \"sso\"; defined authenticators: keys, login",
        ),
        (
            "authenticator twice",
            route("auth = [\"keys\", \"login\", \"keys\"]"),
            "routes[1].auth[2]",
            "\"keys\" is already listed as auth[0]",
        ),
        (
            "auth as a string",
            route("auth = \"keys\""),
            "routes[1].auth",
            "expected an array",
        ),
        (
            "groups without auth",
            route("allow-groups = [\"ops\"]"),
            "routes[1].allow-groups",
            "needs `auth`",
        ),
        (
            "bad group name",
            route("auth = [\"keys\"]\nallow-groups = [\"o p\"]"),
            "routes[1].allow-groups[0]",
            "contains ' '",
        ),
        (
            "group twice",
            route("auth = [\"keys\"]\nallow-groups = [\"ops\", \"ops\"]"),
            "routes[1].allow-groups[1]",
            "\"ops\" is already listed as allow-groups[0]",
        ),
        (
            "forward-credentials without auth",
            route("forward-credentials = true"),
            "routes[1].forward-credentials",
            "applies only to routes with `auth`",
        ),
        (
            "forward-credentials on a responder",
            respond_route("auth = [\"keys\"]\nforward-credentials = false"),
            "routes[1].forward-credentials",
            "applies only to routes that proxy",
        ),
        (
            "forward-credentials type",
            route("auth = [\"keys\"]\nforward-credentials = \"yes\""),
            "routes[1].forward-credentials",
            "expected a boolean",
        ),
        (
            "consumer-header without auth",
            route("consumer-header = \"x-who\""),
            "routes[1].consumer-header",
            "applies only to routes with `auth`",
        ),
        (
            "consumer-header on a responder",
            respond_route("auth = [\"keys\"]\nconsumer-header = \"x-who\""),
            "routes[1].consumer-header",
            "applies only to routes that proxy",
        ),
        (
            "consumer-header hop-by-hop",
            route("auth = [\"keys\"]\nconsumer-header = \"Keep-Alive\""),
            "routes[1].consumer-header",
            "hop-by-hop",
        ),
        (
            "consumer-header framing",
            route("auth = [\"keys\"]\nconsumer-header = \"content-length\""),
            "routes[1].consumer-header",
            "frames the body",
        ),
        (
            "consumer-header host",
            route("auth = [\"keys\"]\nconsumer-header = \"Host\""),
            "routes[1].consumer-header",
            "names the site",
        ),
        (
            "rate-limit-headers without limits",
            route("rate-limit-headers = true"),
            "routes[1].rate-limit-headers",
            "applies only to routes with [[routes.rate-limits]]",
        ),
        (
            "consumer-metrics without auth",
            route("consumer-metrics = true"),
            "routes[1].consumer-metrics",
            "applies only to routes with `auth`",
        ),
        (
            "limit without key",
            limit("rate = \"1/s\""),
            "routes[1].rate-limits[0].key",
            "missing; say what to count requests by",
        ),
        (
            "limit key unknown",
            limit("key = \"ip\"\nrate = \"1/s\""),
            "routes[1].rate-limits[0].key",
            "expected \"route\", \"client-ip\", \"consumer\" or \"header:NAME\", found \"ip\"",
        ),
        (
            "consumer key without auth",
            route("[[routes.rate-limits]]\nkey = \"consumer\"\nrate = \"1/s\""),
            "routes[1].rate-limits[0].key",
            "\"consumer\" needs `auth` on the route",
        ),
        (
            "header key without a name",
            limit("key = \"header:\"\nrate = \"1/s\""),
            "routes[1].rate-limits[0].key",
            "empty header name",
        ),
        (
            "limit without rate",
            limit("key = \"route\""),
            "routes[1].rate-limits[0].rate",
            "missing; write a count per period",
        ),
        (
            "rate without period",
            limit("key = \"route\"\nrate = 10"),
            "routes[1].rate-limits[0].rate",
            "a rate needs a period: write \"10/s\"",
        ),
        (
            "rate period",
            limit("key = \"route\"\nrate = \"10/sec\""),
            "routes[1].rate-limits[0].rate",
            "unknown period \"sec\"",
        ),
        (
            "rate zero",
            limit("key = \"route\"\nrate = \"0/s\""),
            "routes[1].rate-limits[0].rate",
            "the count must be from 1 to 1000000000",
        ),
        (
            "burst zero",
            limit("key = \"route\"\nrate = \"1/s\"\nburst = 0"),
            "routes[1].rate-limits[0].burst",
            "from 1 to 1000000000",
        ),
        (
            "max-keys zero",
            limit("key = \"client-ip\"\nrate = \"1/s\"\nmax-keys = 0"),
            "routes[1].rate-limits[0].max-keys",
            "from 1 to 10000000",
        ),
        (
            "same limit twice",
            limit(
                "key = \"client-ip\"\nrate = \"10/s\"\n\
                 [[routes.rate-limits]]\nkey = \"client-ip\"\nrate = \"10/s\"\nburst = 10",
            ),
            "routes[1].rate-limits[1]",
            "the same limit as rate-limits[0]",
        ),
        (
            "limit typo",
            limit("key = \"route\"\nrate = \"1/s\"\nmax-key = 5"),
            "routes[1].rate-limits[0].max-key",
            "did you mean `max-keys`?",
        ),
        (
            "rate-limits as one table",
            route("[routes.rate-limits]\nkey = \"route\"\nrate = \"1/s\""),
            "routes[1].rate-limits",
            "expected an array",
        ),
        (
            "concurrency without key",
            concurrency("max = 1"),
            "routes[1].concurrency.key",
            "missing",
        ),
        (
            "concurrency without max",
            concurrency("key = \"route\""),
            "routes[1].concurrency.max",
            "missing; set how many requests per key may be in flight",
        ),
        (
            "concurrency max zero",
            concurrency("key = \"route\"\nmax = 0"),
            "routes[1].concurrency.max",
            "from 1 to 1000000",
        ),
        (
            "concurrency status",
            concurrency("key = \"route\"\nmax = 1\nstatus = 500"),
            "routes[1].concurrency.status",
            "expected 429 (Too Many Requests) or 503 (Service Unavailable)",
        ),
        (
            "concurrency status quoted",
            concurrency("key = \"route\"\nmax = 1\nstatus = \"429\""),
            "routes[1].concurrency.status",
            "without quotes",
        ),
        (
            "concurrency by consumer without auth",
            route("[routes.concurrency]\nkey = \"consumer\"\nmax = 1"),
            "routes[1].concurrency.key",
            "\"consumer\" needs `auth`",
        ),
        (
            "concurrency max-keys",
            concurrency("key = \"client-ip\"\nmax = 1\nmax-keys = 10000001"),
            "routes[1].concurrency.max-keys",
            "from 1 to 10000000",
        ),
        (
            "ip-allow host bits",
            route("ip-allow = [\"192.168.1.1/24\"]"),
            "routes[1].ip-allow[0]",
            "did you mean 192.168.1.0/24?",
        ),
        (
            "ip-deny twice",
            route("ip-deny = [\"10.0.0.0/8\", \"10.0.0.0/8\"]"),
            "routes[1].ip-deny[1]",
            "10.0.0.0/8 is already listed as ip-deny[0]",
        ),
    ]);

    // Needs a file without authenticators.
    assert_one_error(
        "no authenticators at all",
        &with_base(
            "",
            "[[routes]]\npath = \"/r\"\nupstream = \"app\"\nauth = [\"keys\"]",
        ),
        "routes[1].auth[0]",
        "no authenticator named \"keys\" (no [[authenticators]] are defined)",
    );
    // A broken authenticator is not also missing to its routes, and a
    // broken consumer's groups still count.
    let src = with_base(
        "",
        "[[authenticators]]\nname = \"keys\"\ntype = \"oauth\"\n\
         [[consumers]]\nname = \"bad name\"\ngroups = [\"ops\"]\n\
         [[routes]]\npath = \"/r\"\nupstream = \"app\"\nauth = [\"keys\"]\nallow-groups = [\"ops\"]",
    );
    let paths: Vec<String> = errors(&src).into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["authenticators[0].type", "consumers[0].name"]);
}

#[test]
fn defaults_of_every_policy_key() {
    let c = valid(&with_base(
        "",
        r#"
[[consumers]]
name = "c"

[[authenticators]]
name = "k"
type = "api-key"

[[authenticators]]
name = "b"
type = "basic"

[[authenticators]]
name = "j"
type = "jwt"
algorithms = ["RS256"]
jwks-file = "jwks.json"

[[routes]]
path = "/r"
upstream = "app"
auth = ["j", "k"]
[[routes.rate-limits]]
key = "client-ip"
rate = "7/m"
[routes.concurrency]
key = "route"
max = 3
"#,
    ));
    assert!(c.client_ip.trusted_proxies.is_empty());
    assert!(c.ip_rules.allow.is_empty() && c.ip_rules.deny.is_empty());
    let consumer = &c.consumers[0];
    assert!(consumer.groups.is_empty() && consumer.api_keys.is_empty());
    assert_eq!(consumer.basic, None);

    assert_eq!(
        c.authenticators[0].kind,
        AuthKind::ApiKey {
            header: "x-api-key".into(),
            query: None
        }
    );
    assert_eq!(
        c.authenticators[1].kind,
        AuthKind::Basic {
            realm: "ringway".into(),
            cache_size: 1024,
            cache_ttl: Duration::from_secs(60)
        }
    );
    let AuthKind::Jwt(jwt) = &c.authenticators[2].kind else {
        panic!("jwt, got {:?}", c.authenticators[2].kind);
    };
    assert_eq!(jwt.algorithms, [JwtAlgorithm::Rs256]);
    assert!(jwt.keys.is_empty());
    assert_eq!(
        jwt.jwks_file.as_deref(),
        Some(std::path::Path::new("jwks.json"))
    );
    assert_eq!(jwt.issuer, None);
    assert!(jwt.audience.is_empty());
    assert_eq!(jwt.leeway, Duration::from_secs(30));
    assert_eq!(jwt.consumer_claim, "sub");
    assert_eq!(jwt.cache_size, 4096);

    let base = &c.routes[0];
    assert!(base.auth.is_empty() && base.allow_groups.is_empty());
    assert!(!base.forward_credentials && !base.rate_limit_headers);
    assert_eq!(base.consumer_header, "x-consumer");
    assert!(base.rate_limits.is_empty());
    assert_eq!(base.concurrency, None);
    assert_eq!(base.ip_rules, Default::default());

    let r = &c.routes[1];
    assert_eq!(r.auth, [2, 0], "indexes into authenticators, in auth order");
    assert_eq!(r.consumer_header, "x-consumer");
    assert!(!r.forward_credentials);
    assert_eq!(
        r.rate_limits,
        [RateLimit {
            key: LimitKey::ClientIp,
            count: 7,
            period: Duration::from_secs(60),
            burst: 7,
            max_keys: 100_000,
        }]
    );
    assert_eq!(
        r.concurrency,
        Some(ConcurrencyLimit {
            key: LimitKey::Route,
            max: 3,
            status: 503,
            max_keys: 100_000,
        })
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn policy_values_convert_to_their_types() {
    let c = valid(&with_base(
        "",
        &format!(
            r#"
[client-ip]
trusted-proxies = ["10.0.0.0/8", "::1"]

[ip-rules]
allow = ["192.0.2.7"]
deny = ["2001:db8::/32"]

[[consumers]]
name = "ops-bot"
groups = ["ops", "billing"]
api-keys = ["sha256:{SHA_OF_SECRET}", "plain:another-key-9"]
basic = {{ username = "bot@example.com", password-hash = "{BCRYPT}" }}

[[authenticators]]
name = "keys"
type = "api-key"
header = "X-Key"
query = "key"

[[authenticators]]
name = "login"
type = "basic"
realm = "Ops Area"
cache-size = 0
cache-ttl = "5m"

[[authenticators]]
name = "hmac"
type = "jwt"
algorithms = ["HS384", "HS256"]
keys = [{{ kid = "one", secret = "0123456789abcdef0123456789abcdef" }}]
issuer = "https://id.example.com/"
audience = ["api", "web"]
leeway = "0s"
consumer-claim = "client_id"
cache-size = 0

[[authenticators]]
name = "pem"
type = "jwt"
algorithms = ["ES256", "EdDSA"]
keys = [{{ pem = """
{PEM}""" }}]

[[routes]]
path = "/r"
upstream = "app"
auth = ["hmac", "keys"]
allow-groups = ["billing"]
forward-credentials = true
consumer-header = "X-Ringway-Consumer"
rate-limit-headers = true
ip-allow = ["10.0.0.0/8"]
ip-deny = ["10.9.0.0/16"]
[[routes.rate-limits]]
key = "header:X-Tenant"
rate = "100/s"
burst = 250
max-keys = 5000
[[routes.rate-limits]]
key = "consumer"
rate = "2/d"
[routes.concurrency]
key = "consumer"
max = 8
status = 429
max-keys = 10
"#
        ),
    ));
    let net = |s: &str| s.parse::<IpNet>().expect("network");
    assert_eq!(
        c.client_ip.trusted_proxies,
        [net("10.0.0.0/8"), net("::1/128")]
    );
    assert_eq!(c.ip_rules.allow, [net("192.0.2.7/32")]);
    assert_eq!(c.ip_rules.deny, [net("2001:db8::/32")]);

    let bot = &c.consumers[0];
    assert_eq!(bot.groups, ["ops", "billing"]);
    assert_eq!(bot.api_keys.len(), 2);
    assert_eq!(bot.api_keys[0].sha256[..4], [0x2b, 0xb8, 0x0d, 0x53]);
    assert!(!bot.api_keys[0].plain && bot.api_keys[1].plain);
    let basic = bot.basic.as_ref().expect("basic");
    assert_eq!(
        (basic.username.as_str(), basic.password_hash.as_str()),
        ("bot@example.com", BCRYPT)
    );

    assert_eq!(
        c.authenticators[0].kind,
        AuthKind::ApiKey {
            header: "x-key".into(),
            query: Some("key".into())
        }
    );
    assert_eq!(
        c.authenticators[1].kind,
        AuthKind::Basic {
            realm: "Ops Area".into(),
            cache_size: 0,
            cache_ttl: Duration::from_secs(300)
        }
    );
    let AuthKind::Jwt(hmac) = &c.authenticators[2].kind else {
        panic!("jwt");
    };
    assert_eq!(hmac.algorithms, [JwtAlgorithm::Hs384, JwtAlgorithm::Hs256]);
    assert_eq!(hmac.keys[0].kid.as_deref(), Some("one"));
    assert_eq!(
        hmac.keys[0].material,
        KeyMaterial::Secret("0123456789abcdef0123456789abcdef".into())
    );
    assert_eq!(hmac.jwks_file, None);
    assert_eq!(hmac.issuer.as_deref(), Some("https://id.example.com/"));
    assert_eq!(hmac.audience, ["api", "web"]);
    assert_eq!(hmac.leeway, Duration::ZERO);
    assert_eq!(hmac.consumer_claim, "client_id");
    assert_eq!(hmac.cache_size, 0);
    let AuthKind::Jwt(pem) = &c.authenticators[3].kind else {
        panic!("jwt");
    };
    assert_eq!(pem.algorithms, [JwtAlgorithm::Es256, JwtAlgorithm::EdDsa]);
    assert_eq!(pem.keys[0].kid, None);
    assert_eq!(pem.keys[0].material, KeyMaterial::Pem(PEM.into()));

    let r = &c.routes[1];
    assert_eq!(r.auth, [2, 0]);
    assert_eq!(r.allow_groups, ["billing"]);
    assert!(r.forward_credentials && r.rate_limit_headers);
    assert_eq!(r.consumer_header, "x-ringway-consumer");
    assert_eq!(r.ip_rules.allow, [net("10.0.0.0/8")]);
    assert_eq!(r.ip_rules.deny, [net("10.9.0.0/16")]);
    assert_eq!(
        r.rate_limits,
        [
            RateLimit {
                key: LimitKey::Header("x-tenant".into()),
                count: 100,
                period: Duration::from_secs(1),
                burst: 250,
                max_keys: 5000,
            },
            RateLimit {
                key: LimitKey::Consumer,
                count: 2,
                period: Duration::from_secs(86_400),
                burst: 2,
                max_keys: 100_000,
            },
        ]
    );
    assert_eq!(
        r.concurrency,
        Some(ConcurrencyLimit {
            key: LimitKey::Consumer,
            max: 8,
            status: 429,
            max_keys: 10,
        })
    );
}

#[test]
fn jwt_algorithm_names() {
    let names: Vec<&str> = JwtAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "EdDSA"
        ]
    );
    let hmac: Vec<&str> = JwtAlgorithm::ALL
        .iter()
        .filter(|a| a.is_hmac())
        .map(|a| a.as_str())
        .collect();
    assert_eq!(hmac, ["HS256", "HS384", "HS512"]);
}

#[test]
fn risky_settings_load_with_warnings_in_source_order() {
    let src = with_base(
        "",
        r#"[client-ip]
trusted-proxies = ["0.0.0.0/0"]

[[consumers]]
name = "dev"
groups = ["ops"]
api-keys = ["plain:dev-key-123"]

[[authenticators]]
name = "keys"
type = "api-key"

[[routes]]
path = "/r"
upstream = "app"
auth = ["keys"]
allow-groups = ["ops", "admins"]
"#,
    );
    let c = valid(&src);
    let got: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    let line = |needle: &str| {
        src.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect(needle)
    };
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[0].starts_with(&format!(
            "{}:20: client-ip.trusted-proxies[0]: 0.0.0.0/0 trusts every peer",
            line("0.0.0.0/0")
        )),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with(&format!(
            "{}:13: consumers[0].api-keys[0]: a \"plain:\" key leaves the key readable",
            line("plain:")
        )),
        "{got:#?}"
    );
    assert!(got[1].contains("`printf %s KEY | sha256sum`"), "{}", got[1]);
    assert!(!got[1].contains("dev-key-123"), "{}", got[1]);
    assert_eq!(
        got[2],
        format!(
            "{}:24: routes[1].allow-groups[1]: no consumer is in group \"admins\", so it lets nobody in",
            line("allow-groups")
        )
    );

    // Warnings are not written out.
    assert!(!c.to_json(false).contains("lets nobody in"));
    assert!(!c.to_toml().contains("warnings"));

    // Moving lines moves warnings, which leaves the config equal; a
    // different warning does not.
    let moved = valid(&src.replace("[client-ip]", "\n\n[client-ip]"));
    assert_ne!(moved.warnings[0].line, c.warnings[0].line);
    assert_eq!(moved, c);
    let mut other = c.clone();
    other.warnings[2].message.push('!');
    assert_ne!(other, c);

    // Written out and read back, the plain key is a hash and no longer
    // warned about; the other two warnings stay, at JSON positions.
    let back = Config::from_json_str(&c.to_json(false)).expect("valid JSON");
    let paths: Vec<&str> = back.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["client-ip.trusted-proxies[0]", "routes[1].allow-groups[1]"]
    );
    assert!(back.warnings.iter().all(|w| w.line > 0));
}

#[test]
fn a_config_with_errors_has_no_warnings_to_show() {
    let src = with_base(
        "",
        "[[consumers]]\nname = \"dev\"\napi-keys = [\"plain:dev-key-123\"]\n[ip-rules]\nallow = [\"x\"]",
    );
    let errors = errors(&src);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["ip-rules.allow[0]"]);
}
