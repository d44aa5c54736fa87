//! One table per section: each row breaks one rule and names the path and
//! message the single resulting error must carry.

mod common;

use common::{assert_one_error, errors, with_base, BASE};
use ringway_config::Config;

/// `(case, top-level keys, tables appended, path, message fragment)`.
type Case<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

fn run(cases: &[Case<'_>]) {
    for &(case, top, tail, path, fragment) in cases {
        assert_one_error(case, &with_base(top, tail), path, fragment);
    }
}

#[test]
fn global_settings() {
    run(&[
        (
            "zero workers",
            "workers = 0",
            "",
            "workers",
            "from 1 to 1024",
        ),
        (
            "too many workers",
            "workers = 2000",
            "",
            "workers",
            "from 1 to 1024",
        ),
        (
            "workers word",
            "workers = \"all\"",
            "",
            "workers",
            "found \"all\"",
        ),
        (
            "driver word",
            "driver = \"uring\"",
            "",
            "driver",
            "expected \"epoll\" or \"io_uring\", found \"uring\"",
        ),
        (
            "connection-balance word",
            "connection-balance = \"round-robin\"",
            "",
            "connection-balance",
            "expected \"hash\" or \"cpu\", found \"round-robin\"",
        ),
        (
            "drain bare number",
            "drain-timeout = 10",
            "",
            "drain-timeout",
            "needs a unit: write \"10s\"",
        ),
        (
            "drain bad unit",
            "drain-timeout = \"10 secs\"",
            "",
            "drain-timeout",
            "unknown duration unit \"secs\"",
        ),
        (
            "drain negative",
            "drain-timeout = \"-1s\"",
            "",
            "drain-timeout",
            "whole number",
        ),
        (
            "limits not a table",
            "limits = 5",
            "",
            "limits",
            "expected a table",
        ),
    ]);
}

#[test]
fn limits() {
    run(&[
        (
            "target over head",
            "",
            "[limits]\nmax-target-length = \"64KiB\"",
            "limits.max-target-length",
            "must not exceed max-head-size",
        ),
        (
            "head under default target",
            "",
            "[limits]\nmax-head-size = \"4KiB\"",
            "limits.max-head-size",
            "must not exceed max-head-size",
        ),
        (
            "head too big",
            "",
            "[limits]\nmax-head-size = \"2MiB\"",
            "limits.max-head-size",
            "at most 1MiB",
        ),
        (
            "head zero",
            "",
            "[limits]\nmax-head-size = 0",
            "limits.max-head-size",
            "greater than zero",
        ),
        (
            "target zero",
            "",
            "[limits]\nmax-target-length = \"0B\"",
            "limits.max-target-length",
            "greater than zero",
        ),
        (
            "headers zero",
            "",
            "[limits]\nmax-headers = 0",
            "limits.max-headers",
            "from 1 to 512, found 0",
        ),
        (
            "headers too many",
            "",
            "[limits]\nmax-headers = 513",
            "limits.max-headers",
            "from 1 to 512",
        ),
        (
            "headers quoted",
            "",
            "[limits]\nmax-headers = \"50\"",
            "limits.max-headers",
            "without quotes",
        ),
        (
            "body negative",
            "",
            "[limits]\nmax-body-size = -1",
            "limits.max-body-size",
            "negative",
        ),
        (
            "body ambiguous unit",
            "",
            "[limits]\nmax-body-size = \"1M\"",
            "limits.max-body-size",
            "unknown size unit \"M\"",
        ),
        (
            "body float",
            "",
            "[limits]\nmax-body-size = 1.5",
            "limits.max-body-size",
            "expected a size",
        ),
        (
            "body no unit",
            "",
            "[limits]\nmax-body-size = \"1024\"",
            "limits.max-body-size",
            "has no unit",
        ),
        (
            "header read zero",
            "",
            "[limits]\nheader-read-timeout = \"0s\"",
            "limits.header-read-timeout",
            "greater than zero",
        ),
        (
            "keepalive fraction",
            "",
            "[limits]\nkeepalive-timeout = \"1.5s\"",
            "limits.keepalive-timeout",
            "whole numbers",
        ),
        (
            "connect bare",
            "",
            "[limits]\nconnect-timeout = 3",
            "limits.connect-timeout",
            "needs a unit",
        ),
        (
            "response head bool",
            "",
            "[limits]\nresponse-head-timeout = true",
            "limits.response-head-timeout",
            "expected a duration",
        ),
        (
            "idle zero",
            "",
            "[limits]\nupstream-idle-timeout = \"0ms\"",
            "limits.upstream-idle-timeout",
            "greater than zero",
        ),
        (
            "max idle negative",
            "",
            "[limits]\nupstream-max-idle = -1",
            "limits.upstream-max-idle",
            "from 0 to 10000",
        ),
        (
            "max idle huge",
            "",
            "[limits]\nupstream-max-idle = 10001",
            "limits.upstream-max-idle",
            "from 0 to 10000",
        ),
        (
            "body idle zero",
            "",
            "[limits]\nbody-idle-timeout = \"0s\"",
            "limits.body-idle-timeout",
            "greater than zero",
        ),
        (
            "body idle bare",
            "",
            "[limits]\nbody-idle-timeout = 60",
            "limits.body-idle-timeout",
            "needs a unit: write \"60s\"",
        ),
        (
            "body idle unit",
            "",
            "[limits]\nbody-idle-timeout = \"1d\"",
            "limits.body-idle-timeout",
            "unknown duration unit \"d\"",
        ),
        (
            "max connections zero",
            "",
            "[limits]\nmax-connections = 0",
            "limits.max-connections",
            "expected an integer from 1 to 10000000, found 0",
        ),
        (
            "max connections huge",
            "",
            "[limits]\nmax-connections = 10000001",
            "limits.max-connections",
            "expected an integer from 1 to 10000000, found 10000001",
        ),
        (
            "max connections negative",
            "",
            "[limits]\nmax-connections = -1",
            "limits.max-connections",
            "from 1 to 10000000",
        ),
        (
            "max connections quoted",
            "",
            "[limits]\nmax-connections = \"1000\"",
            "limits.max-connections",
            "without quotes",
        ),
        (
            "max connections as a size",
            "",
            "[limits]\nmax-connections = \"64KiB\"",
            "limits.max-connections",
            "from 1 to 10000000, found \"64KiB\"",
        ),
        (
            "limits array",
            "",
            "[[limits]]\nmax-headers = 5",
            "limits",
            "expected a table",
        ),
    ]);
}

#[test]
fn admin() {
    let open = "the admin API listens on 0.0.0.0:9901 without admin.token; \
                set a token or use a loopback address";
    run(&[
        (
            "token too short",
            "",
            "[admin]\ntoken = \"0123456789abcde\"",
            "admin.token",
            "15 characters long; use 16 to 256",
        ),
        (
            "token too long",
            "",
            &format!("[admin]\ntoken = \"{}\"", "x".repeat(257)),
            "admin.token",
            "257 characters long",
        ),
        (
            "token with a space",
            "",
            "[admin]\ntoken = \"0123456789 abcdef\"",
            "admin.token",
            "character 11 is ' '; a token holds only visible ASCII",
        ),
        (
            "token not ASCII",
            "",
            "[admin]\ntoken = \"0123456789abcdéf\"",
            "admin.token",
            "character 15 is 'é'",
        ),
        (
            "token type",
            "",
            "[admin]\ntoken = 1234567890123456",
            "admin.token",
            "expected a string",
        ),
        (
            "token checked while disabled",
            "",
            "[admin]\nenabled = false\ntoken = \"short\"",
            "admin.token",
            "5 characters long",
        ),
        (
            "address hostname",
            "",
            "[admin]\naddress = \"localhost:9901\"",
            "admin.address",
            "hostnames are not resolved",
        ),
        (
            "address without port",
            "",
            "[admin]\naddress = \"127.0.0.1\"",
            "admin.address",
            "has no port; write an IP:port such as \"127.0.0.1:9901\"",
        ),
        (
            "open on every interface",
            "",
            "[admin]\naddress = \"0.0.0.0:9901\"",
            "admin.address",
            open,
        ),
        (
            "open on a private address",
            "",
            "[admin]\naddress = \"10.0.0.1:9901\"",
            "admin.address",
            "listens on 10.0.0.1:9901 without admin.token",
        ),
        (
            "open on every IPv6 interface",
            "",
            "[admin]\naddress = \"[::]:9901\"",
            "admin.address",
            "listens on [::]:9901 without admin.token",
        ),
        (
            "IPv4-mapped loopback is not loopback",
            "",
            "[admin]\naddress = \"[::ffff:127.0.0.1]:9901\"",
            "admin.address",
            "without admin.token",
        ),
        (
            "a listener's address",
            "",
            "[admin]\naddress = \"127.0.0.1:8080\"",
            "admin.address",
            "127.0.0.1:8080 is already the address of listeners[0] (\"listener-0\")",
        ),
        (
            "default address taken by a listener",
            "",
            "[[listeners]]\nname = \"side\"\naddress = \"127.0.0.1:9901\"",
            "admin.address",
            "already the address of listeners[1] (\"side\")",
        ),
        (
            "enabled type",
            "",
            "[admin]\nenabled = \"yes\"",
            "admin.enabled",
            "expected a boolean",
        ),
        (
            "unknown key",
            "",
            "[admin]\ntokn = \"0123456789abcdef\"",
            "admin.tokn",
            "did you mean `token`?",
        ),
        (
            "not a table",
            "admin = true",
            "",
            "admin",
            "expected a table",
        ),
        (
            "array of tables",
            "",
            "[[admin]]\nenabled = false",
            "admin",
            "expected a table",
        ),
    ]);

    let token = "token = \"0123456789abcdef\"";
    let fine = [
        format!("[admin]\naddress = \"0.0.0.0:9901\"\n{token}"),
        format!("[admin]\naddress = \"[::]:9901\"\n{token}"),
        "[admin]\naddress = \"127.1.2.3:9901\"".to_owned(),
        "[admin]\naddress = \"[::1]:9901\"".to_owned(),
        "[admin]\nenabled = false\naddress = \"0.0.0.0:9901\"".to_owned(),
        "[admin]\nenabled = false\naddress = \"127.0.0.1:8080\"".to_owned(),
        // Port 0 is a fresh port for each socket, so it never collides.
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"".to_owned(),
    ];
    for tail in &fine {
        common::valid(&with_base("", tail));
    }

    // A rule broken by the default address points at [admin] if written,
    // and nowhere (0:0) otherwise.
    let taken = "[[listeners]]\naddress = \"127.0.0.1:9901\"";
    for tail in [taken.to_owned(), format!("{taken}\n[admin]")] {
        let src = with_base("", &tail);
        let want = src
            .lines()
            .position(|l| l == "[admin]")
            .map_or((0, 0), |i| (i + 1, 1));
        let errors = errors(&src);
        assert_eq!((errors[0].line, errors[0].column), want, "{errors:#?}");
    }
}

#[test]
fn cache() {
    // A second route that proxies, with `body` under [routes.cache].
    let route = |body: &str| {
        format!("[[routes]]\npath = \"/c\"\nupstream = \"app\"\n[routes.cache]\n{body}")
    };
    let half = "an entry may use at most half a store";
    let cases = [
        (
            "size too small",
            "[cache]\nsize = \"32KiB\"".to_owned(),
            "cache.size",
            "must be at least 64KiB",
        ),
        (
            "size too large",
            "[cache]\nsize = \"2TiB\"".to_owned(),
            "cache.size",
            "must be at most 1TiB",
        ),
        (
            "size unit",
            "[cache]\nsize = \"64M\"".to_owned(),
            "cache.size",
            "unknown size unit \"M\"",
        ),
        (
            "size negative",
            "[cache]\nsize = -1".to_owned(),
            "cache.size",
            "negative",
        ),
        (
            "size too small for the default entry",
            "[cache]\nsize = \"1MiB\"".to_owned(),
            "cache.size",
            "max-entry-size (1MiB, the default) is more than half of size (1MiB): \
             an entry may use at most half a store",
        ),
        (
            "entry over half the store",
            "[cache]\nmax-entry-size = \"33MiB\"".to_owned(),
            "cache.max-entry-size",
            "max-entry-size (33MiB) is more than half of size (64MiB)",
        ),
        (
            "entry over half, both written",
            "[cache]\nsize = \"1MiB\"\nmax-entry-size = \"600KiB\"".to_owned(),
            "cache.max-entry-size",
            half,
        ),
        (
            "entry zero",
            "[cache]\nmax-entry-size = 0".to_owned(),
            "cache.max-entry-size",
            "must be greater than zero",
        ),
        (
            "entry type",
            "[cache]\nmax-entry-size = true".to_owned(),
            "cache.max-entry-size",
            "expected a size",
        ),
        (
            "targeted field not a token",
            "[cache]\ntargeted-field = \"Ringway Cache\"".to_owned(),
            "cache.targeted-field",
            "",
        ),
        (
            "targeted field empty",
            "[cache]\ntargeted-field = \"\"".to_owned(),
            "cache.targeted-field",
            "empty header name",
        ),
        (
            "targeted field is Cache-Control",
            "[cache]\ntargeted-field = \"Cache-Control\"".to_owned(),
            "cache.targeted-field",
            "is read anyway",
        ),
        (
            "targeted field is CDN-Cache-Control",
            "[cache]\ntargeted-field = \"cdn-cache-control\"".to_owned(),
            "cache.targeted-field",
            "is read anyway",
        ),
        (
            "forward targeted not a bool",
            "[cache]\nforward-targeted = \"no\"".to_owned(),
            "cache.forward-targeted",
            "",
        ),
        (
            "range fetch max over the entry size",
            route("max-entry-size = \"1MiB\"\nrange-fetch-max = \"2MiB\""),
            "routes[1].cache.range-fetch-max",
            "must be at most max-entry-size (1MiB)",
        ),
        (
            "range fetch max over the inherited entry size",
            route("range-fetch-max = \"1025KiB\""),
            "routes[1].cache.range-fetch-max",
            "must be at most max-entry-size (1MiB)",
        ),
        (
            "range fetch max not a size",
            route("range-fetch-max = \"lots\""),
            "routes[1].cache.range-fetch-max",
            "",
        ),
        (
            "serve stale on error not a bool",
            route("serve-stale-on-error = 1"),
            "routes[1].cache.serve-stale-on-error",
            "",
        ),
        (
            "lock timeout too long",
            "[cache]\nlock-timeout = \"61s\"".to_owned(),
            "cache.lock-timeout",
            "must be at most 60s",
        ),
        (
            "lock timeout bare",
            "[cache]\nlock-timeout = 5".to_owned(),
            "cache.lock-timeout",
            "needs a unit: write \"5s\"",
        ),
        (
            "unknown global key",
            "[cache]\nsizee = \"1GiB\"".to_owned(),
            "cache.sizee",
            "unknown key `sizee`, expected one of `size`, `max-entry-size`, `lock-timeout`, \
             `targeted-field`, `forward-targeted`; did you mean `size`?",
        ),
        (
            "array of tables",
            "[[cache]]\nsize = \"1GiB\"".to_owned(),
            "cache",
            "expected a table",
        ),
        (
            "a broken [cache] is not blamed on routes",
            format!("[cache]\nsize = \"1KiB\"\n{}", route("")),
            "cache.size",
            "at least 64KiB",
        ),
        (
            "on a respond route",
            "[[routes]]\npath = \"/c\"\n[routes.respond]\n[routes.cache]".to_owned(),
            "routes[1].cache",
            "caching needs an upstream route",
        ),
        (
            "on a respond route, turned off, with bad keys",
            "[[routes]]\npath = \"/c\"\n[routes.respond]\n[routes.cache]\nenabled = false\nsize = 1"
                .to_owned(),
            "routes[1].cache",
            "caching needs an upstream route",
        ),
        (
            "route enabled type",
            route("enabled = \"yes\""),
            "routes[1].cache.enabled",
            "expected a boolean",
        ),
        (
            "route sort-query type",
            route("sort-query = 1"),
            "routes[1].cache.sort-query",
            "expected a boolean",
        ),
        (
            "route size too small",
            route("size = \"16KiB\""),
            "routes[1].cache.size",
            "must be at least 64KiB",
        ),
        (
            "route size too large",
            route("size = 1099511627777"),
            "routes[1].cache.size",
            "must be at most 1TiB",
        ),
        (
            "route size too small for the inherited entry",
            route("size = \"1MiB\""),
            "routes[1].cache.size",
            "max-entry-size (1MiB, from [cache]) is more than half of this route's size (1MiB): \
             an entry may use at most half a store",
        ),
        (
            "route entry over half the shared store",
            route("max-entry-size = \"33MiB\""),
            "routes[1].cache.max-entry-size",
            "max-entry-size (33MiB) is more than half of the shared store, cache.size (64MiB)",
        ),
        (
            "route entry over half a small shared shard",
            format!("[cache]\nsize = \"1MiB\"\nmax-entry-size = \"1KiB\"\n{}", route("max-entry-size = \"513KiB\"")),
            "routes[1].cache.max-entry-size",
            "more than half of the shared store, cache.size (1MiB)",
        ),
        (
            "route entry over half its own shard",
            route("size = \"4MiB\"\nmax-entry-size = \"3MiB\""),
            "routes[1].cache.max-entry-size",
            "max-entry-size (3MiB) is more than half of this route's size (4MiB)",
        ),
        (
            "route entry zero",
            route("max-entry-size = \"0B\""),
            "routes[1].cache.max-entry-size",
            "must be greater than zero",
        ),
        (
            "checked while turned off",
            route("enabled = false\nmax-entry-size = \"1GiB\""),
            "routes[1].cache.max-entry-size",
            half,
        ),
        (
            "empty parameter",
            route("ignore-params = [\"utm_source\", \"\"]"),
            "routes[1].cache.ignore-params[1]",
            "empty parameter name",
        ),
        (
            "parameter with &",
            route("ignore-params = [\"a&b\"]"),
            "routes[1].cache.ignore-params[0]",
            "contains '&', which separates parameters",
        ),
        (
            "parameter with =",
            route("ignore-params = [\"utm=x\"]"),
            "routes[1].cache.ignore-params[0]",
            "contains '=', which separates a name from its value",
        ),
        (
            "parameter with #",
            route("ignore-params = [\"#top\"]"),
            "routes[1].cache.ignore-params[0]",
            "contains '#', which starts the fragment",
        ),
        (
            "parameter with a space",
            route("ignore-params = [\"utm source\"]"),
            "routes[1].cache.ignore-params[0]",
            "percent-encoded",
        ),
        (
            "parameter twice",
            route("ignore-params = [\"a\", \"b\", \"a\"]"),
            "routes[1].cache.ignore-params[2]",
            "\"a\" is already listed as ignore-params[0]",
        ),
        (
            "parameters not an array",
            route("ignore-params = \"utm_source\""),
            "routes[1].cache.ignore-params",
            "expected an array",
        ),
        (
            "key header name",
            route("key-headers = [\"accept language\"]"),
            "routes[1].cache.key-headers[0]",
            "contains ' ', which a header name cannot hold",
        ),
        (
            "empty key header",
            route("key-headers = [\"\"]"),
            "routes[1].cache.key-headers[0]",
            "empty header name",
        ),
        (
            "host in the key",
            route("key-headers = [\"accept\", \"Host\"]"),
            "routes[1].cache.key-headers[1]",
            "\"Host\" is part of every cache key already",
        ),
        (
            "key header twice",
            route("key-headers = [\"Accept\", \"x-a\", \"accept\"]"),
            "routes[1].cache.key-headers[2]",
            "\"accept\" is already listed as key-headers[0] (names ignore case)",
        ),
        (
            "too many key headers",
            route(&format!(
                "key-headers = [{}]",
                (0..9).map(|i| format!("\"x-{i}\"")).collect::<Vec<_>>().join(", ")
            )),
            "routes[1].cache.key-headers",
            "lists 9 headers; at most 8",
        ),
        (
            "unknown route key",
            route("ignore-param = [\"a\"]"),
            "routes[1].cache.ignore-param",
            "unknown key `ignore-param`, expected one of `enabled`, `size`, `max-entry-size`, \
             `sort-query`, `ignore-params`, `key-headers`, `range-fetch-max`, \
             `serve-stale-on-error`; did you mean `ignore-params`?",
        ),
        (
            "route cache not a table",
            "[[routes]]\npath = \"/c\"\nupstream = \"app\"\ncache = true".to_owned(),
            "routes[1].cache",
            "expected a table",
        ),
    ];
    for (case, tail, path, fragment) in &cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }
    let top = [(
        "not a table",
        "cache = \"64MiB\"",
        "cache",
        "expected a table, found string; write the keys under a [cache] header",
    )];
    for (case, top, path, fragment) in top {
        assert_one_error(case, &with_base(top, ""), path, fragment);
    }

    let fine = [
        "[cache]\nsize = \"64KiB\"\nmax-entry-size = \"32KiB\"\nlock-timeout = \"0s\"".to_owned(),
        "[cache]\nsize = \"1TiB\"\nmax-entry-size = \"512GiB\"\nlock-timeout = \"60s\"".to_owned(),
        "[cache]\nmax-entry-size = 1".to_owned(),
        "[cache]\ntargeted-field = \"X-Edge-Cache-Control\"\nforward-targeted = true".to_owned(),
        route("range-fetch-max = 0\nserve-stale-on-error = true"),
        route("max-entry-size = \"2MiB\"\nrange-fetch-max = \"2MiB\""),
        route(""),
        route("size = \"2MiB\""),
        route("size = \"128KiB\"\nmax-entry-size = \"64KiB\""),
        route("max-entry-size = \"32MiB\""),
        // Own shard larger than the shared one: the entry is held to it.
        format!(
            "[cache]\nsize = \"1MiB\"\nmax-entry-size = \"1KiB\"\n{}",
            route("size = \"1GiB\"\nmax-entry-size = \"100MiB\"")
        ),
        route("enabled = false\nignore-params = [\"a\"]"),
        route("ignore-params = [\"utm_source\", \"UTM_SOURCE\", \"a[]\", \"%20\"]"),
        route(&format!(
            "key-headers = [{}]",
            (0..8)
                .map(|i| format!("\"X-{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    ];
    for tail in &fine {
        common::valid(&with_base("", tail));
    }

    // Every bad entry is reported, each naming the first of a repeat by its
    // place in the list as written.
    let src = with_base(
        "",
        &route(
            "ignore-params = [\"x=\", \"a\", \"a\"]\nkey-headers = [\"host\", \"X-A\", \"x-a\"]",
        ),
    );
    let got: Vec<String> = errors(&src)
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect();
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(
        got[0].starts_with("routes[1].cache.ignore-params[0]: "),
        "{got:#?}"
    );
    assert_eq!(
        got[1],
        "routes[1].cache.ignore-params[2]: \"a\" is already listed as ignore-params[1]"
    );
    assert!(
        got[2].starts_with("routes[1].cache.key-headers[0]: "),
        "{got:#?}"
    );
    assert_eq!(got[3], "routes[1].cache.key-headers[2]: \"x-a\" is already listed as key-headers[1] (names ignore case)");
}

#[test]
fn listeners() {
    let second = |body: &str| format!("[[listeners]]\n{body}");
    let cases = [
        (
            "same address",
            second("address = \"127.0.0.1:8080\""),
            "listeners[1].address",
            "already used by listeners[0]",
        ),
        (
            "hostname",
            second("address = \"localhost:8081\""),
            "listeners[1].address",
            "hostnames are not resolved",
        ),
        (
            "no port",
            second("address = \"127.0.0.1\""),
            "listeners[1].address",
            "has no port",
        ),
        (
            "bare ipv6",
            second("address = \"::1:8080\""),
            "listeners[1].address",
            "in brackets",
        ),
        (
            "missing address",
            second("name = \"admin\""),
            "listeners[1].address",
            "missing",
        ),
        (
            "bad name",
            second("name = \"my listener\"\naddress = \"127.0.0.1:8081\""),
            "listeners[1].name",
            "contains ' '",
        ),
        (
            "taken name",
            second("name = \"listener-0\"\naddress = \"127.0.0.1:8081\""),
            "listeners[1].name",
            "already the name of listeners[0]",
        ),
        (
            "address type",
            second("address = 8080"),
            "listeners[1].address",
            "expected a string",
        ),
        (
            "encoded slashes unknown",
            second("address = \"127.0.0.1:8081\"\nencoded-slashes = \"allow\""),
            "listeners[1].encoded-slashes",
            "expected \"reject\", \"decode\" or \"pass\", found \"allow\"",
        ),
        (
            "encoded slashes case",
            second("address = \"127.0.0.1:8081\"\nencoded-slashes = \"Reject\""),
            "listeners[1].encoded-slashes",
            "expected \"reject\", \"decode\" or \"pass\", found \"Reject\"",
        ),
        (
            "encoded slashes type",
            second("address = \"127.0.0.1:8081\"\nencoded-slashes = true"),
            "listeners[1].encoded-slashes",
            "expected a string",
        ),
        (
            "encoded slashes in tls",
            second(
                "address = \"127.0.0.1:8081\"\n[listeners.tls]\n\
                 certificates = [{ cert = \"c\", key = \"k\" }]\nencoded-slashes = \"pass\"",
            ),
            "listeners[1].tls.encoded-slashes",
            "unknown key `encoded-slashes`",
        ),
        (
            "underscores unknown",
            second("address = \"127.0.0.1:8081\"\nunderscores-in-headers = \"allow\""),
            "listeners[1].underscores-in-headers",
            "expected \"drop\" or \"pass\", found \"allow\"",
        ),
        (
            "underscores case",
            second("address = \"127.0.0.1:8081\"\nunderscores-in-headers = \"Drop\""),
            "listeners[1].underscores-in-headers",
            "expected \"drop\" or \"pass\", found \"Drop\"",
        ),
        (
            "underscores type",
            second("address = \"127.0.0.1:8081\"\nunderscores-in-headers = false"),
            "listeners[1].underscores-in-headers",
            "expected a string",
        ),
        (
            "underscores in tls",
            second(
                "address = \"127.0.0.1:8081\"\n[listeners.tls]\n\
                 certificates = [{ cert = \"c\", key = \"k\" }]\nunderscores-in-headers = \"pass\"",
            ),
            "listeners[1].tls.underscores-in-headers",
            "unknown key `underscores-in-headers`",
        ),
        (
            "trust request id word",
            second("address = \"127.0.0.1:8081\"\ntrust-request-id = \"yes\""),
            "listeners[1].trust-request-id",
            "invalid type: string \"yes\", expected a boolean",
        ),
        (
            "trust request id in tls",
            second(
                "address = \"127.0.0.1:8081\"\n[listeners.tls]\n\
                 certificates = [{ cert = \"c\", key = \"k\" }]\ntrust-request-id = true",
            ),
            "listeners[1].tls.trust-request-id",
            "unknown key `trust-request-id`",
        ),
    ];
    for (case, tail, path, fragment) in &cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }

    // Cases that need the whole file.
    let route = "[[routes]]\nupstream = \"app\"\n[[upstreams]]\nname = \"app\"\nservers = [\"127.0.0.1:3000\"]";
    let whole = [
        ("none", route.to_owned(), "listeners", "at least one [[listeners]]"),
        ("empty array", format!("listeners = []\n{route}"), "listeners", "at least one [[listeners]]"),
        ("not an array", format!("listeners = 1\n{route}"), "listeners", "expected an array of tables"),
        ("element not a table", format!("listeners = [1]\n{route}"), "listeners[0]", "expected a table, found integer"),
        (
            "default name taken",
            format!("[[listeners]]\nname = \"listener-1\"\naddress = \"127.0.0.1:1\"\n[[listeners]]\naddress = \"127.0.0.1:2\"\n{route}"),
            "listeners[1].name",
            "default name \"listener-1\" is already taken by listeners[0]",
        ),
    ];
    for (case, src, path, fragment) in &whole {
        assert_one_error(case, src, path, fragment);
    }
}

#[test]
fn upstreams() {
    let up = |body: &str| format!("[[upstreams]]\n{body}");
    let cases = [
        (
            "missing name",
            up("servers = [\"127.0.0.1:3001\"]"),
            "upstreams[1].name",
            "missing",
        ),
        (
            "taken name",
            up("name = \"app\"\nservers = [\"127.0.0.1:3001\"]"),
            "upstreams[1].name",
            "already the name of upstreams[0]",
        ),
        (
            "bad name",
            up("name = \"a/b\"\nservers = [\"127.0.0.1:3001\"]"),
            "upstreams[1].name",
            "contains '/'",
        ),
        (
            "missing servers",
            up("name = \"b\""),
            "upstreams[1].servers",
            "missing",
        ),
        (
            "no servers",
            up("name = \"b\"\nservers = []"),
            "upstreams[1].servers",
            "at least one server",
        ),
        (
            "hostname without port",
            up("name = \"b\"\nservers = [\"db.internal\"]"),
            "upstreams[1].servers[0]",
            "has no port",
        ),
        (
            "table hostname bad character",
            up("name = \"b\"\nservers = [{ address = \"db_1:1\" }]"),
            "upstreams[1].servers[0].address",
            "'_' is not allowed in a host name",
        ),
        (
            "mistyped IPv4",
            up("name = \"b\"\nservers = [\"10.0.0.300:80\"]"),
            "upstreams[1].servers[0]",
            "not a valid IPv4 address",
        ),
        (
            "name port zero",
            up("name = \"b\"\nservers = [\"db:0\"]"),
            "upstreams[1].servers[0]",
            "port 0",
        ),
        (
            "table no address",
            up("name = \"b\"\nservers = [{ weight = 2 }]"),
            "upstreams[1].servers[0].address",
            "missing",
        ),
        (
            "weight zero",
            up("name = \"b\"\nservers = [{ address = \"127.0.0.1:1\", weight = 0 }]"),
            "upstreams[1].servers[0].weight",
            "from 1 to 10000",
        ),
        (
            "weight huge",
            up("name = \"b\"\nservers = [{ address = \"127.0.0.1:1\", weight = 10001 }]"),
            "upstreams[1].servers[0].weight",
            "from 1 to 10000",
        ),
        (
            "port zero",
            up("name = \"b\"\nservers = [\"127.0.0.1:0\"]"),
            "upstreams[1].servers[0]",
            "port 0",
        ),
        (
            "unspecified",
            up("name = \"b\"\nservers = [\"0.0.0.0:80\"]"),
            "upstreams[1].servers[0]",
            "0.0.0.0 is not an address",
        ),
        (
            "same server",
            up("name = \"b\"\nservers = [\"127.0.0.1:1\", { address = \"127.0.0.1:1\" }]"),
            "upstreams[1].servers[1].address",
            "already listed as servers[0]",
        ),
        (
            "max connections zero",
            up("name = \"b\"\nservers = [\"127.0.0.1:1\"]\nmax-connections = 0"),
            "upstreams[1].max-connections",
            "0 would refuse every request; use 1 to 10000000, or leave the key out for no cap",
        ),
        (
            "max connections negative",
            up("name = \"b\"\nservers = [\"127.0.0.1:1\"]\nmax-connections = -5"),
            "upstreams[1].max-connections",
            "expected an integer from 1 to 10000000, found -5",
        ),
        (
            "max connections huge",
            up("name = \"b\"\nservers = [\"127.0.0.1:1\"]\nmax-connections = 4294967296"),
            "upstreams[1].max-connections",
            "expected an integer from 1 to 10000000, found 4294967296",
        ),
        (
            "max connections quoted",
            up("name = \"b\"\nservers = [\"127.0.0.1:1\"]\nmax-connections = \"8\""),
            "upstreams[1].max-connections",
            "without quotes",
        ),
        (
            "max connections zero on a server",
            up("name = \"b\"\nservers = [{ address = \"127.0.0.1:1\", max-connections = 0 }]"),
            "upstreams[1].servers[0].max-connections",
            "0 would refuse every request",
        ),
        (
            "same name in another case",
            up("name = \"b\"\nservers = [\"db.internal:1\", \"DB.Internal:1\"]"),
            "upstreams[1].servers[1]",
            "db.internal:1 is already listed as servers[0]",
        ),
        (
            "server type",
            up("name = \"b\"\nservers = [5]"),
            "upstreams[1].servers[0]",
            "expected a server",
        ),
        (
            "servers not array",
            up("name = \"b\"\nservers = \"127.0.0.1:1\""),
            "upstreams[1].servers",
            "expected an array",
        ),
    ];
    for (case, tail, path, fragment) in &cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }
}

#[test]
fn upstream_balancing_queues_and_names() {
    let table = |name: &str, body: &str| format!("[upstreams.{name}]\n{body}");
    let cases = [
        (
            "unknown policy",
            table("balance", "policy = \"fastest\""),
            "upstreams[0].balance.policy",
            "expected one of \"round-robin\", \"least-request\", \"ewma\", \"random\", \"hash\", found \"fastest\"",
        ),
        (
            "key for round robin",
            table("balance", "key = \"client-ip\""),
            "upstreams[0].balance.key",
            "applies only to policy = \"hash\", not \"round-robin\"",
        ),
        (
            "key for least request",
            table("balance", "policy = \"least-request\"\nkey = \"path\""),
            "upstreams[0].balance.key",
            "applies only to policy = \"hash\", not \"least-request\"",
        ),
        (
            "hash without key",
            table("balance", "policy = \"hash\""),
            "upstreams[0].balance.key",
            "missing; policy = \"hash\" needs a key to hash",
        ),
        (
            "unknown hash key",
            table("balance", "policy = \"hash\"\nkey = \"ip\""),
            "upstreams[0].balance.key",
            "expected \"client-ip\", \"header:NAME\", \"cookie:NAME\", \"consumer\" or \"path\", found \"ip\"",
        ),
        (
            "hash header not a token",
            table("balance", "policy = \"hash\"\nkey = \"header:x user\""),
            "upstreams[0].balance.key",
            "contains ' '",
        ),
        (
            "hash cookie empty",
            table("balance", "policy = \"hash\"\nkey = \"cookie:\""),
            "upstreams[0].balance.key",
            "empty cookie name",
        ),
        (
            "ewma decay for random",
            table("balance", "policy = \"random\"\newma-decay = \"5s\""),
            "upstreams[0].balance.ewma-decay",
            "applies only to policy = \"ewma\"",
        ),
        (
            "ewma decay too short",
            table("balance", "policy = \"ewma\"\newma-decay = \"10ms\""),
            "upstreams[0].balance.ewma-decay",
            "must be from 100ms to 10m, found 10ms",
        ),
        (
            "queue too long",
            "[[upstreams]]\nname = \"q\"\nservers = [\"127.0.0.1:1\"]\nqueue-size = 100001".into(),
            "upstreams[1].queue-size",
            "expected an integer from 0 to 100000, found 100001",
        ),
        (
            "queue timeout zero",
            "[[upstreams]]\nname = \"q\"\nservers = [\"127.0.0.1:1\"]\nqueue-timeout = \"0s\"".into(),
            "upstreams[1].queue-timeout",
            "must be greater than zero",
        ),
        (
            "slow start too long",
            "[[upstreams]]\nname = \"q\"\nservers = [\"127.0.0.1:1\"]\nslow-start = \"2h\"".into(),
            "upstreams[1].slow-start",
            "must be from 0s to 1h, found 2h",
        ),
        (
            "resolve word",
            "[[upstreams]]\nname = \"q\"\nservers = [\"127.0.0.1:1\"]\nresolve = \"always\"".into(),
            "upstreams[1].resolve",
            "expected \"optional\" or \"required\", found \"always\"",
        ),
        (
            "resolve interval too short",
            "[[upstreams]]\nname = \"q\"\nservers = [\"127.0.0.1:1\"]\nresolve-interval = \"500ms\""
                .into(),
            "upstreams[1].resolve-interval",
            "must be from 1s to 1h, found 500ms",
        ),
        (
            "same IP server twice",
            "[[upstreams]]\nname = \"q\"\nservers = [\"10.0.0.1:80\", { address = \"10.0.0.1:80\", backup = true }]"
                .into(),
            "upstreams[1].servers[1].address",
            "10.0.0.1:80 is already listed as servers[0]",
        ),
        (
            "same name twice in other case",
            "[[upstreams]]\nname = \"q\"\nservers = [\"app.internal:80\", \"10.0.0.1:80\", \"App.INTERNAL:80\"]"
                .into(),
            "upstreams[1].servers[2]",
            "app.internal:80 is already listed as servers[0]",
        ),
        (
            "server max connections too many",
            "[[upstreams]]\nname = \"q\"\nservers = [{ address = \"db:1\", max-connections = 10000001 }]"
                .into(),
            "upstreams[1].servers[0].max-connections",
            "expected an integer from 1 to 10000000",
        ),
        (
            "backup not a boolean",
            "[[upstreams]]\nname = \"q\"\nservers = [{ address = \"db:1\", backup = \"yes\" }]".into(),
            "upstreams[1].servers[0].backup",
            "expected a boolean",
        ),
    ];
    for (case, tail, path, fragment) in &cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }
}

#[test]
fn upstream_health_checks_and_outlier_detection() {
    let check = |body: &str| format!("[upstreams.health-check]\n{body}");
    let outlier = |body: &str| format!("[upstreams.outlier-detection]\n{body}");
    let cases = [
        (
            "unknown type",
            check("type = \"grpc\""),
            "upstreams[0].health-check.type",
            "expected \"http\" or \"tcp\", found \"grpc\"",
        ),
        (
            "path on a tcp check",
            check("type = \"tcp\"\npath = \"/healthz\""),
            "upstreams[0].health-check.path",
            "`path` applies only to type = \"http\" checks",
        ),
        (
            "lower-case method",
            check("method = \"get\""),
            "upstreams[0].health-check.method",
            "expected \"GET\" or \"HEAD\" or \"OPTIONS\", found \"get\"",
        ),
        (
            "relative path",
            check("path = \"healthz\""),
            "upstreams[0].health-check.path",
            "must start with '/'",
        ),
        (
            "path with a space",
            check("path = \"/health z\""),
            "upstreams[0].health-check.path",
            "contains ' '",
        ),
        (
            "empty host",
            check("host = \"\""),
            "upstreams[0].health-check.host",
            "empty; leave `host` out",
        ),
        (
            "no statuses",
            check("expect = []"),
            "upstreams[0].health-check.expect",
            "at least one status",
        ),
        (
            "status out of range",
            check("expect = [\"2xx\", 600]"),
            "upstreams[0].health-check.expect[1]",
            "from 100 to 599 or a class \"1xx\" to \"5xx\", found 600",
        ),
        (
            "unknown class",
            check("expect = [\"6xx\"]"),
            "upstreams[0].health-check.expect[0]",
            "found \"6xx\"",
        ),
        (
            "status twice",
            check("expect = [204, \"2xx\", 204]"),
            "upstreams[0].health-check.expect[2]",
            "204 is already listed as expect[0]",
        ),
        (
            "timeout equals interval",
            check("interval = \"1s\"\ntimeout = \"1s\""),
            "upstreams[0].health-check.timeout",
            "timeout (1s) must be less than interval (1s)",
        ),
        (
            "interval below the default timeout",
            check("interval = \"1s\""),
            "upstreams[0].health-check.interval",
            "timeout (2s, the default) must be less than interval (1s)",
        ),
        (
            "timeout too short",
            check("timeout = \"5ms\""),
            "upstreams[0].health-check.timeout",
            "must be at least 10ms, found 5ms",
        ),
        (
            "interval too short",
            check("interval = \"50ms\"\ntimeout = \"10ms\""),
            "upstreams[0].health-check.interval",
            "must be from 100ms to 1h, found 50ms",
        ),
        (
            "threshold zero",
            check("healthy-threshold = 0"),
            "upstreams[0].health-check.healthy-threshold",
            "expected an integer from 1 to 100, found 0",
        ),
        (
            "threshold too high",
            check("unhealthy-threshold = 101"),
            "upstreams[0].health-check.unhealthy-threshold",
            "expected an integer from 1 to 100, found 101",
        ),
        (
            "unknown check key",
            check("port = 8081"),
            "upstreams[0].health-check.port",
            "unknown key `port`",
        ),
        (
            "no failures",
            outlier("consecutive-failures = 0"),
            "upstreams[0].outlier-detection.consecutive-failures",
            "expected an integer from 1 to 1000, found 0",
        ),
        (
            "base ejection too short",
            outlier("base-ejection = \"10ms\""),
            "upstreams[0].outlier-detection.base-ejection",
            "must be from 100ms to 1h, found 10ms",
        ),
        (
            "max ejection below base",
            outlier("base-ejection = \"1m\"\nmax-ejection = \"30s\""),
            "upstreams[0].outlier-detection.max-ejection",
            "max-ejection (30s) must be at least base-ejection (1m)",
        ),
        (
            "base above the default max",
            outlier("base-ejection = \"10m\""),
            "upstreams[0].outlier-detection.base-ejection",
            "max-ejection (5m, the default) must be at least base-ejection (10m)",
        ),
        (
            "percent too high",
            outlier("max-ejected-percent = 101"),
            "upstreams[0].outlier-detection.max-ejected-percent",
            "expected an integer from 0 to 100, found 101",
        ),
        (
            "checked while disabled",
            outlier("enabled = false\nconsecutive-failures = 0"),
            "upstreams[0].outlier-detection.consecutive-failures",
            "from 1 to 1000",
        ),
    ];
    for (case, tail, path, fragment) in &cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }
}

#[test]
fn resolver() {
    let resolver = |body: &str| format!("[resolver]\n{body}");
    let cases = [
        (
            "no nameservers",
            resolver("nameservers = []"),
            "resolver.nameservers",
            "leave the key out to use the system's",
        ),
        (
            "named nameserver",
            resolver("nameservers = [\"10.0.0.2\", \"dns.internal\"]"),
            "resolver.nameservers[1]",
            "a nameserver is an IP or IP:port",
        ),
        (
            "nameserver twice",
            resolver("nameservers = [\"10.0.0.2\", \"10.0.0.2:53\"]"),
            "resolver.nameservers[1]",
            "10.0.0.2:53 is already listed as nameservers[0]",
        ),
        (
            "timeout too long",
            resolver("timeout = \"1m\""),
            "resolver.timeout",
            "must be from 100ms to 30s, found 1m",
        ),
        (
            "not a table",
            "resolver = \"8.8.8.8\"".to_owned(),
            "resolver",
            "expected a table, found string",
        ),
    ];
    for (case, section, path, fragment) in &cases {
        // Before the base, so `resolver = ...` stays a top-level key.
        assert_one_error(case, &with_base(section, ""), path, fragment);
    }
}

#[test]
fn route_retries() {
    let retry = |body: &str| {
        format!("[[routes]]\npath = \"/r\"\nupstream = \"app\"\n[routes.retry]\n{body}")
    };
    let cases = [
        (
            "unknown failure, with its index",
            retry("on = [\"connect-failure\", \"502\", \"500\"]"),
            "routes[1].retry.on[2]",
            "unknown failure \"500\"; expected one of \"connect-failure\"",
        ),
        (
            "unknown status as a number",
            retry("on = [500]"),
            "routes[1].retry.on[0]",
            "unknown failure 500",
        ),
        (
            "failure twice",
            retry("on = [\"503\", 503]"),
            "routes[1].retry.on[1]",
            "503 is already listed as on[0]",
        ),
        (
            "on a respond route",
            "[[routes]]\npath = \"/r\"\n[routes.respond]\n[routes.retry]\nattempts = 3".to_owned(),
            "routes[1].retry",
            "applies only to routes that proxy to an upstream",
        ),
        (
            "backoff max below backoff",
            retry("backoff = \"100ms\"\nbackoff-max = \"50ms\""),
            "routes[1].retry.backoff-max",
            "backoff-max (50ms) must be at least backoff (100ms)",
        ),
        (
            "backoff above the default max",
            retry("backoff = \"1s\""),
            "routes[1].retry.backoff",
            "backoff-max (250ms, the default) must be at least backoff (1s)",
        ),
        (
            "backoff too long",
            retry("backoff = \"11s\"\nbackoff-max = \"20s\""),
            "routes[1].retry.backoff",
            "must be from 0s to 10s, found 11s",
        ),
        (
            "no attempts",
            retry("attempts = 0"),
            "routes[1].retry.attempts",
            "expected an integer from 1 to 10, found 0",
        ),
        (
            "too many attempts",
            retry("attempts = 11"),
            "routes[1].retry.attempts",
            "expected an integer from 1 to 10, found 11",
        ),
        (
            "per try timeout zero",
            retry("per-try-timeout = \"0s\""),
            "routes[1].retry.per-try-timeout",
            "must be greater than zero",
        ),
        (
            "budget over 100 percent",
            retry("budget-percent = 101"),
            "routes[1].retry.budget-percent",
            "expected an integer from 0 to 100, found 101",
        ),
        (
            "budget min too high",
            retry("budget-min = 10001"),
            "routes[1].retry.budget-min",
            "expected an integer from 0 to 10000, found 10001",
        ),
        (
            "buffer too large",
            retry("retry-buffer = \"17MiB\""),
            "routes[1].retry.retry-buffer",
            "must be at most 16MiB",
        ),
        (
            "unknown retry key",
            retry("retries = 3"),
            "routes[1].retry.retries",
            "unknown key `retries`",
        ),
    ];
    for (case, tail, path, fragment) in &cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }
}

#[test]
fn access_log() {
    // Each key is checked also while the log is off (the default).
    let table = |body: &str| format!("[access-log]\n{body}");
    let cases = [
        (
            "path empty",
            table("path = \"\""),
            "access-log.path",
            "must not be empty",
        ),
        (
            "path a directory",
            table("enabled = true\npath = \"/var/log/\""),
            "access-log.path",
            "names a directory",
        ),
        (
            "path NUL",
            table("path = \"a\\u0000b\""),
            "access-log.path",
            "NUL",
        ),
        (
            "path not a string",
            table("path = 1"),
            "access-log.path",
            "invalid type: integer `1`, expected a string",
        ),
        (
            "format word",
            table("format = \"common\""),
            "access-log.format",
            "expected \"json\" or \"combined\", found \"common\"",
        ),
        (
            "sample over one",
            table("sample = 1.5"),
            "access-log.sample",
            "from 0 to 1",
        ),
        (
            "sample negative",
            table("sample = -0.1"),
            "access-log.sample",
            "from 0 to 1",
        ),
        (
            "sample whole number over one",
            table("sample = 10"),
            "access-log.sample",
            "found 10",
        ),
        (
            "sample quoted",
            table("sample = \"0.5\""),
            "access-log.sample",
            "without quotes: 0.5",
        ),
        (
            "sample percent",
            table("sample = \"10%\""),
            "access-log.sample",
            "e.g. 0.1 for one in ten",
        ),
        (
            "queue zero",
            table("queue = 0"),
            "access-log.queue",
            "from 1 to 1000000",
        ),
        (
            "queue too large",
            table("queue = 1000001"),
            "access-log.queue",
            "from 1 to 1000000",
        ),
        (
            "query not a boolean",
            table("query = \"no\""),
            "access-log.query",
            "expected a boolean",
        ),
        (
            "unknown key",
            table("buffer = \"64KiB\""),
            "access-log.buffer",
            "unknown key `buffer`",
        ),
        (
            "not a table",
            "access-log = true".to_owned(),
            "access-log",
            "write the keys under a [access-log] header",
        ),
        (
            "route flag not a boolean",
            "[[routes]]\npath = \"/x\"\nupstream = \"app\"\naccess-log = \"off\"".to_owned(),
            "routes[1].access-log",
            "expected a boolean",
        ),
    ];
    for (case, tail, path, fragment) in cases {
        // `access-log = true` is a top-level key: it must come first.
        let src = if tail.starts_with("access-log =") {
            with_base(&tail, "")
        } else {
            with_base("", &tail)
        };
        assert_one_error(case, &src, path, fragment);
    }
}

#[test]
fn routes() {
    let route = |body: &str| format!("[[routes]]\n{body}");
    let cases = [
        (
            "unknown upstream",
            route("upstream = \"billing\""),
            "routes[1].upstream",
            "no upstream named \"billing\"; defined upstreams: app",
        ),
        (
            "no action",
            route("path = \"/x\""),
            "routes[1]",
            "no action",
        ),
        (
            "two actions",
            route("upstream = \"app\"\n[routes.respond]\nbody = \"x\""),
            "routes[1].respond",
            "not both",
        ),
        (
            "path and prefix",
            route("path = \"/a\"\npath-prefix = \"/b\"\nupstream = \"app\""),
            "routes[1].path-prefix",
            "not both",
        ),
        (
            "relative path",
            route("path = \"api\"\nupstream = \"app\""),
            "routes[1].path",
            "must start with \"/\"",
        ),
        (
            "prefix with query",
            route("path-prefix = \"/a?b\"\nupstream = \"app\""),
            "routes[1].path-prefix",
            "remove the '?' part",
        ),
        (
            "host with port",
            route("host = \"example.com:443\"\nupstream = \"app\""),
            "routes[1].host",
            "leave out the port",
        ),
        (
            "inner wildcard",
            route("host = \"a.*.com\"\nupstream = \"app\""),
            "routes[1].host",
            "whole first label",
        ),
        (
            "lower-case method",
            route("methods = [\"GET\", \"post\"]\nupstream = \"app\""),
            "routes[1].methods[1]",
            "write \"POST\"",
        ),
        (
            "repeated method",
            route("methods = [\"GET\", \"GET\"]\nupstream = \"app\""),
            "routes[1].methods[1]",
            "already listed as methods[0]",
        ),
        (
            "taken name",
            route("name = \"base\"\npath = \"/x\"\nupstream = \"app\""),
            "routes[1].name",
            "already the name of routes[0]",
        ),
        (
            "bad name",
            route("name = \"\"\npath = \"/x\"\nupstream = \"app\""),
            "routes[1].name",
            "must not be empty",
        ),
        (
            "same match",
            route("path = \"/base\"\nupstream = \"app\""),
            "routes[1]",
            "same match as routes[0] (\"base\")",
        ),
        (
            "status 1xx",
            route("[routes.respond]\nstatus = 101"),
            "routes[1].respond.status",
            "interim",
        ),
        (
            "status low",
            route("[routes.respond]\nstatus = 99"),
            "routes[1].respond.status",
            "from 200 to 599",
        ),
        (
            "status high",
            route("[routes.respond]\nstatus = 600"),
            "routes[1].respond.status",
            "from 200 to 599",
        ),
        (
            "status quoted",
            route("[routes.respond]\nstatus = \"404\""),
            "routes[1].respond.status",
            "without quotes",
        ),
        (
            "framing header",
            route("[routes.respond]\nheaders = { Content-Length = \"3\" }"),
            "routes[1].respond.headers.Content-Length",
            "frames the body",
        ),
        (
            "connection header",
            route("[routes.respond]\nheaders = { connection = \"close\" }"),
            "routes[1].respond.headers.connection",
            "manages the connection",
        ),
        (
            "header injection",
            route("[routes.respond]\nheaders = { x-a = \"1\\r\\nx-b: 2\" }"),
            "routes[1].respond.headers.x-a",
            "'\\r'",
        ),
        (
            "header name",
            route("[routes.respond]\nheaders = { \"x a\" = \"1\" }"),
            "routes[1].respond.headers.\"x a\"",
            "contains ' '",
        ),
        (
            "header twice",
            route("[routes.respond]\nheaders = { X-A = \"1\", x-a = \"2\" }"),
            "routes[1].respond.headers.x-a",
            "repeats header \"X-A\"",
        ),
        (
            "header type",
            route("[routes.respond]\nheaders = { x-a = 1 }"),
            "routes[1].respond.headers.x-a",
            "expected a string",
        ),
        (
            "body on 204",
            route("[routes.respond]\nstatus = 204\nbody = \"x\""),
            "routes[1].respond.body",
            "has no content",
        ),
        (
            "body on 304",
            route("[routes.respond]\nstatus = 304\nbody = \"x\""),
            "routes[1].respond.body",
            "has no content",
        ),
        (
            "host-header on respond",
            route("host-header = \"x\"\n[routes.respond]"),
            "routes[1].host-header",
            "only to routes that proxy",
        ),
        (
            "host-header value",
            route("host-header = \"a b\"\nupstream = \"app\""),
            "routes[1].host-header",
            "contains ' '",
        ),
        (
            "timeout on respond",
            route("[routes.respond]\n[routes.limits]\nconnect-timeout = \"1s\""),
            "routes[1].limits.connect-timeout",
            "only to routes that proxy",
        ),
        (
            "route body size",
            route("upstream = \"app\"\nlimits.max-body-size = \"1M\""),
            "routes[1].limits.max-body-size",
            "unknown size unit",
        ),
        (
            "route timeout zero",
            route("upstream = \"app\"\nlimits.response-head-timeout = \"0s\""),
            "routes[1].limits.response-head-timeout",
            "greater than zero",
        ),
        (
            "route body idle zero",
            route("upstream = \"app\"\nlimits.body-idle-timeout = \"0ms\""),
            "routes[1].limits.body-idle-timeout",
            "greater than zero",
        ),
        (
            "route body idle bare",
            route("[routes.respond]\n[routes.limits]\nbody-idle-timeout = 5"),
            "routes[1].limits.body-idle-timeout",
            "needs a unit: write \"5s\"",
        ),
        (
            "route max connections",
            route("upstream = \"app\"\nlimits.max-connections = 10"),
            "routes[1].limits.max-connections",
            "unknown key `max-connections`",
        ),
        (
            "route head size",
            route("upstream = \"app\"\nlimits.max-head-size = \"1KiB\""),
            "routes[1].limits.max-head-size",
            "unknown key `max-head-size`",
        ),
    ];
    for (case, tail, path, fragment) in &cases {
        assert_one_error(case, &with_base("", tail), path, fragment);
    }

    let listener = "[[listeners]]\naddress = \"127.0.0.1:8080\"";
    let whole = [
        ("none", listener.to_owned(), "routes", "at least one [[routes]]"),
        ("empty array", format!("routes = []\n{listener}"), "routes", "at least one [[routes]]"),
        (
            "no upstreams at all",
            format!("{listener}\n[[routes]]\nupstream = \"app\""),
            "routes[0].upstream",
            "no upstream named \"app\" (no [[upstreams]] are defined)",
        ),
        (
            "default name taken",
            format!("{listener}\n[[routes]]\nname = \"route-1\"\npath = \"/a\"\n[routes.respond]\n[[routes]]\npath = \"/b\"\n[routes.respond]"),
            "routes[1].name",
            "default name \"route-1\" is already taken by routes[0]",
        ),
        (
            "same match, methods in another order",
            format!("{listener}\n[[routes]]\nmethods = [\"GET\", \"POST\"]\n[routes.respond]\n[[routes]]\nname = \"b\"\nmethods = [\"POST\", \"GET\"]\n[routes.respond]"),
            "routes[1]",
            "same match as routes[0] (\"route-0\")",
        ),
        (
            "same match, host differs only in case",
            format!("{listener}\n[[routes]]\nhost = \"*.Example.com\"\n[routes.respond]\n[[routes]]\nhost = \"*.example.COM\"\n[routes.respond]"),
            "routes[1]",
            "same match as routes[0]",
        ),
    ];
    for (case, src, path, fragment) in &whole {
        assert_one_error(case, src, path, fragment);
    }
}

#[test]
fn matches_that_differ_are_not_duplicates() {
    let tails = [
        "[[routes]]\npath-prefix = \"/base\"\nupstream = \"app\"", // prefix vs exact
        "[[routes]]\npath = \"/base\"\nmethods = [\"GET\"]\nupstream = \"app\"",
        "[[routes]]\npath = \"/base\"\nhost = \"a.example.com\"\nupstream = \"app\"",
        "[[routes]]\npath = \"/base\"\nhost = \"*.a.example.com\"\nupstream = \"app\"",
    ];
    for tail in tails {
        common::valid(&with_base("", tail));
    }
}

#[test]
fn unknown_keys_at_every_depth_are_all_reported() {
    let src = r#"
colour = "blue"
[limits]
max-header = 10
[[listeners]]
address = "127.0.0.1:8080"
port = 8080
[[upstreams]]
name = "app"
servers = [{ address = "127.0.0.1:3000", wieght = 2 }]
[[routes]]
upstream = "app"
[routes.limits]
max-head-size = "1KiB"
[[routes]]
path = "/x"
[routes.respond]
bodi = "hi"
"#;
    let got: Vec<(String, usize)> = errors(src).into_iter().map(|e| (e.path, e.line)).collect();
    let want = [
        ("colour", 2),
        ("limits.max-header", 4),
        ("listeners[0].port", 7),
        ("upstreams[0].servers[0].wieght", 10),
        ("routes[0].limits.max-head-size", 14),
        ("routes[1].respond.bodi", 18),
    ];
    let want: Vec<(String, usize)> = want.iter().map(|&(p, l)| (p.to_owned(), l)).collect();
    assert_eq!(got, want);
}

#[test]
fn unknown_keys_suggest_the_likely_key() {
    let cases = [
        ("drivr = \"epoll\"", "", "drivr", "did you mean `driver`?"),
        (
            "",
            "[limits]\nconect-timeout = \"1s\"",
            "limits.conect-timeout",
            "did you mean `connect-timeout`?",
        ),
        (
            "",
            "[[routes]]\npath-prefx = \"/a\"\nupstream = \"app\"",
            "routes[1].path-prefx",
            "did you mean `path-prefix`?",
        ),
    ];
    for (top, tail, path, fragment) in cases {
        assert_one_error(path, &with_base(top, tail), path, fragment);
    }
}

#[test]
fn every_error_in_a_file_is_reported_in_source_order() {
    let src = r#"workers = 0
drain-timeout = "soon"

[limits]
unknown = 1
max-headers = 0

[[listeners]]
address = "localhost:8080"

[[upstreams]]
name = "app"
servers = []

[[routes]]
upstream = "billing"

[[routes]]
path = "nope"
methods = ["get"]
[routes.respond]
status = 42
"#;
    let got: Vec<String> = errors(src).iter().map(ToString::to_string).collect();
    let paths: Vec<&str> = got
        .iter()
        .map(|l| l.split(": ").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "workers",
            "drain-timeout",
            "limits.unknown",
            "limits.max-headers",
            "listeners[0].address",
            "upstreams[0].servers",
            "routes[0].upstream",
            "routes[1].path",
            "routes[1].methods[0]",
            "routes[1].respond.status",
        ],
        "{got:#?}"
    );
    // A route whose upstream exists but is itself broken is not blamed.
    let broken_upstream = with_base(
        "",
        "[[upstreams]]\nname = \"b\"\nservers = []\n[[routes]]\npath = \"/b\"\nupstream = \"b\"",
    );
    let paths: Vec<String> = errors(&broken_upstream)
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, ["upstreams[1].servers"]);
}

#[test]
fn one_bad_element_does_not_hide_the_next() {
    let tail = r#"
[[routes]]
path = 5
upstream = "app"

[[routes]]
path = "/ok"
upstream = "missing"
"#;
    let paths: Vec<String> = errors(&with_base("", tail))
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, ["routes[1].path", "routes[2].upstream"]);
}

#[test]
fn positions_point_at_the_value() {
    // (source, want "line:column: path")
    let cases = [
        ("workers = 0\n", "1:11: workers"),
        (
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[[routes]]\nname = \"x\"\n\n  upstream   = \"nope\"\n",
            "6:16: routes[0].upstream",
        ),
        // Columns count characters: the two-byte 'é' moves the value by one.
        ("[[listeners]]\naddress = \"127.0.0.1:80\"\n[[routes]]\n[routes.respond]\nheaders = { \"x-é\" = \"v\" }\n", "5:21: routes[0].respond.headers.\"x-é\""),
        // An element-level error points at its [[routes]] header.
        ("[[listeners]]\naddress = \"127.0.0.1:80\"\n\n[[routes]]\npath = \"/\"\n", "4:1: routes[0]"),
    ];
    for (src, want) in cases {
        let errors = errors(src);
        let e = &errors[0];
        assert_eq!(
            format!("{}:{}: {}", e.line, e.column, e.path),
            want,
            "{errors:#?}"
        );
    }
}

#[test]
fn syntax_errors_have_a_position_and_no_path() {
    let errors = errors("[[listeners]]\naddress = \"127.0.0.1:8080\n");
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|e| e.path.is_empty() && e.line == 2),
        "{errors:#?}"
    );

    let errors = common::errors("a = 1\na = 2\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].line, errors[0].column), (2, 1));
    assert!(errors[0].message.contains("duplicate key"), "{}", errors[0]);
}

#[test]
fn with_file_renders_compiler_style_lines() {
    let errors = Config::from_toml_str("workers = 0\nbogus = 1\n").expect_err("invalid");
    let text = errors.with_file("gw.toml");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("gw.toml:1:11: workers: expected \"auto\""),
        "{text}"
    );
    assert!(
        lines[1].starts_with("gw.toml:2:1: bogus: unknown key"),
        "{text}"
    );
    assert_eq!(lines[2], "gw.toml: listeners: at least one [[listeners]] table is required, e.g. address = \"127.0.0.1:8080\"");
    assert_eq!(
        lines[3],
        "gw.toml: routes: at least one [[routes]] table is required"
    );
    assert_eq!(errors.to_string().lines().count(), 4);
}

#[test]
fn unreadable_file_is_one_error_without_a_path() {
    let path = std::path::Path::new("/nonexistent/ringway.toml");
    let errors = Config::from_file(path).expect_err("missing file");
    assert_eq!(errors.len(), 1);
    let e = &errors.0[0];
    assert_eq!((e.path.as_str(), e.line, e.column), ("", 0, 0));
    assert!(e.message.contains("/nonexistent/ringway.toml"), "{e}");
    assert!(
        e.to_string()
            .starts_with("cannot read /nonexistent/ringway.toml: "),
        "{e}"
    );
}

#[test]
fn the_base_used_by_these_tests_is_valid() {
    common::valid(BASE);
}
