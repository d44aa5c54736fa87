//! `[routes.cors]`: its defaults, what it converts to, each rule with the
//! path it reports, and both formats written and read back.

mod common;

use std::time::Duration;

use common::{assert_one_error, valid, with_base};
use proptest::prelude::*;
use ringway_config::{AllowOrigins, Config, Cors, OriginPattern};

/// `routes[1]`, proxying to "app", with `[routes.cors]` holding `cors`.
fn route(cors: &str) -> String {
    format!("[[routes]]\npath = \"/r\"\nupstream = \"app\"\n[routes.cors]\n{cors}\n")
}

fn cors_of(cors: &str) -> Cors {
    let c = valid(&with_base("", &route(cors)));
    assert_eq!(c.routes[0].cors, None, "the base route has no table");
    c.routes[1].cors.clone().expect("[routes.cors]")
}

#[test]
fn defaults() {
    let c = cors_of(r#"allow-origins = ["https://app.example.com"]"#);
    assert_eq!(
        c,
        Cors {
            allow_origins: AllowOrigins::List(vec![OriginPattern::Exact(
                "https://app.example.com".into()
            )]),
            allow_methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            allow_headers: vec![],
            expose_headers: vec![],
            allow_credentials: false,
            max_age: None,
            allow_private_network: false,
        }
    );
}

#[test]
fn every_key_converts() {
    let c = cors_of(
        r#"
allow-origins = ["HTTPS://App.Example.com:443", "http://127.0.0.1:8080", "https://*.example.org", "http://*.example.net:8000"]
allow-methods = ["GET", "PURGE"]
allow-headers = ["Content-Type", "x-token"]
expose-headers = ["X-Request-Id"]
allow-credentials = true
max-age = "1h"
allow-private-network = true
"#,
    );
    assert_eq!(
        c.allow_origins,
        AllowOrigins::List(vec![
            OriginPattern::Exact("https://app.example.com".into()),
            OriginPattern::Exact("http://127.0.0.1:8080".into()),
            OriginPattern::Subdomains {
                scheme: "https".into(),
                suffix: ".example.org".into(),
                port: None
            },
            OriginPattern::Subdomains {
                scheme: "http".into(),
                suffix: ".example.net".into(),
                port: Some(8000)
            },
        ])
    );
    assert_eq!(c.allow_methods, ["GET", "PURGE"]);
    assert_eq!(c.allow_headers, ["Content-Type", "x-token"], "as written");
    assert_eq!(c.expose_headers, ["X-Request-Id"]);
    assert!(c.allow_credentials && c.allow_private_network);
    assert_eq!(c.max_age, Some(Duration::from_secs(3600)));

    let any = cors_of("allow-origins = [\"*\"]\nmax-age = \"0s\"");
    assert_eq!(any.allow_origins, AllowOrigins::Any);
    assert_eq!(any.max_age, Some(Duration::ZERO));
}

#[test]
fn on_a_built_in_route_too() {
    let c = valid(&with_base(
        "",
        "[[routes]]\npath = \"/r\"\n[routes.respond]\n[routes.cors]\nallow-origins = [\"*\"]\n",
    ));
    assert!(c.routes[1].cors.is_some());
}

#[test]
fn each_rule_reports_its_path() {
    let p = "routes[1].cors";
    let cases: &[(&str, &str, String, &str)] = &[
        (
            "no origins",
            "max-age = \"1m\"",
            format!("{p}.allow-origins"),
            "missing",
        ),
        (
            "empty origins",
            "allow-origins = []",
            format!("{p}.allow-origins"),
            "empty",
        ),
        (
            "not an origin",
            r#"allow-origins = ["https://a.example.com", "a.example.com"]"#,
            format!("{p}.allow-origins[1]"),
            "not an origin",
        ),
        (
            "a path",
            r#"allow-origins = ["https://a.example.com/"]"#,
            format!("{p}.allow-origins[0]"),
            "no path",
        ),
        (
            "null",
            r#"allow-origins = ["null"]"#,
            format!("{p}.allow-origins[0]"),
            "sandboxed",
        ),
        (
            "same origin twice, once with its default port",
            r#"allow-origins = ["https://a.example.com", "https://A.example.com:443"]"#,
            format!("{p}.allow-origins[1]"),
            "already listed as allow-origins[0]",
        ),
        (
            "star among others",
            r#"allow-origins = ["https://a.example.com", "*"]"#,
            format!("{p}.allow-origins[1]"),
            "only entry",
        ),
        (
            "bad pattern",
            r#"allow-origins = ["https://a.*.example.com"]"#,
            format!("{p}.allow-origins[0]"),
            "wildcard",
        ),
        (
            "credentials with star",
            "allow-origins = [\"*\"]\nallow-credentials = true",
            format!("{p}.allow-credentials"),
            "cannot go with allow-origins = [\"*\"]",
        ),
        (
            "lower-case method",
            "allow-origins = [\"*\"]\nallow-methods = [\"GET\", \"put\"]",
            format!("{p}.allow-methods[1]"),
            "case-sensitive",
        ),
        (
            "method twice",
            "allow-origins = [\"*\"]\nallow-methods = [\"GET\", \"GET\"]",
            format!("{p}.allow-methods[1]"),
            "already listed",
        ),
        (
            "no methods",
            "allow-origins = [\"*\"]\nallow-methods = []",
            format!("{p}.allow-methods"),
            "empty",
        ),
        (
            "bad header name",
            "allow-origins = [\"*\"]\nallow-headers = [\"x token\"]",
            format!("{p}.allow-headers[0]"),
            "header name",
        ),
        (
            "header twice ignoring case",
            "allow-origins = [\"*\"]\nallow-headers = [\"X-A\", \"x-a\"]",
            format!("{p}.allow-headers[1]"),
            "already listed",
        ),
        (
            "star header",
            "allow-origins = [\"*\"]\nallow-headers = [\"*\"]",
            format!("{p}.allow-headers[0]"),
            "leave allow-headers out",
        ),
        (
            "star exposed",
            "allow-origins = [\"*\"]\nexpose-headers = [\"x-a\", \"*\"]",
            format!("{p}.expose-headers[1]"),
            "list the headers",
        ),
        (
            "max-age over a day",
            "allow-origins = [\"*\"]\nmax-age = \"25h\"",
            format!("{p}.max-age"),
            "must be from 0s to 24h",
        ),
        (
            "max-age not whole seconds",
            "allow-origins = [\"*\"]\nmax-age = \"1500ms\"",
            format!("{p}.max-age"),
            "whole seconds",
        ),
        (
            "max-age without unit",
            "allow-origins = [\"*\"]\nmax-age = 60",
            format!("{p}.max-age"),
            "needs a unit",
        ),
    ];
    for (case, cors, path, fragment) in cases {
        assert_one_error(case, &with_base("", &route(cors)), path, fragment);
    }
    assert_one_error(
        "unknown key",
        &with_base(
            "",
            &route("allow-origins = [\"*\"]\nallow-origin = [\"*\"]"),
        ),
        "routes[1].cors.allow-origin",
        "did you mean `allow-origins`",
    );
}

#[test]
fn a_full_table_reads_back_in_both_formats() {
    let c = valid(&with_base(
        "",
        &route(
            r#"
allow-origins = ["https://app.example.com:8443", "https://*.example.org"]
allow-headers = ["Content-Type"]
expose-headers = ["X-A", "x-b"]
allow-credentials = true
max-age = "90s"
allow-private-network = true
"#,
        ),
    ));
    assert_eq!(Config::from_json_str(&c.to_json(false)), Ok(c.clone()));
    assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
}

proptest! {
    #[test]
    fn any_cors_reads_back(
        origins in prop::collection::vec(
            (
                prop::sample::select(vec!["http", "https", "HTTPS", "app"]),
                any::<bool>(),
                "[a-zA-Z0-9-]{1,8}(\\.[a-z0-9]{1,6}){0,2}",
                prop::option::of(prop::sample::select(vec![1u16, 80, 443, 8080, 65535])),
            ),
            0..4,
        ),
        methods in prop::option::of(prop::collection::hash_set("[A-Z]{1,7}", 1..4)),
        headers in prop::collection::hash_set("[a-z][a-z0-9-]{0,10}", 0..3),
        expose in prop::collection::hash_set("[A-Z][a-z0-9-]{0,10}", 0..3),
        credentials in any::<bool>(),
        max_age in prop::option::of(0u64..=86_400),
        private in any::<bool>(),
    ) {
        // Origins that normalize to one (case, default ports) are listed once.
        let mut seen = std::collections::HashSet::new();
        let list: Vec<String> = origins
            .into_iter()
            .map(|(scheme, wild, host, port)| {
                let star = if wild { "*." } else { "" };
                let port = port.map_or_else(String::new, |p| format!(":{p}"));
                format!("{scheme}://{star}{host}{port}")
            })
            .filter(|o| {
                let lower = o.to_ascii_lowercase();
                let key = lower
                    .strip_suffix(":443").filter(|_| lower.starts_with("https:"))
                    .or_else(|| lower.strip_suffix(":80").filter(|_| lower.starts_with("http:")))
                    .unwrap_or(&lower)
                    .to_owned();
                seen.insert(key)
            })
            .map(|o| format!("{o:?}"))
            .collect();
        let any = list.is_empty();
        let origins = if any { "\"*\"".to_owned() } else { list.join(", ") };
        let quoted = |set: &std::collections::HashSet<String>| {
            set.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
        };
        let mut table = format!(
            "allow-origins = [{origins}]\nallow-headers = [{}]\nexpose-headers = [{}]\n\
             allow-credentials = {}\nallow-private-network = {private}\n",
            quoted(&headers),
            quoted(&expose),
            credentials && !any,
        );
        if let Some(m) = &methods {
            table.push_str(&format!("allow-methods = [{}]\n", quoted(m)));
        }
        if let Some(s) = max_age {
            table.push_str(&format!("max-age = \"{s}s\"\n"));
        }
        let src = with_base("", &route(&table));
        let config = Config::from_toml_str(&src).map_err(|e| TestCaseError::fail(format!("{e}\n{src}")))?;
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }
}
