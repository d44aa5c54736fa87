//! `[routes.compression]`: every rule reported at its path, the defaults,
//! and the effective table reading back equal in both formats.

mod common;

use common::{assert_one_error, valid, with_base};
use proptest::prelude::*;
use ringway_config::{Compression, Config, ContentCoding};

/// A route with `[routes.compression]` holding `keys`.
fn route(keys: &str) -> String {
    with_base(
        "",
        &format!(
            "[[routes]]\nname = \"c\"\npath = \"/c\"\nupstream = \"app\"\n[routes.compression]\n{keys}"
        ),
    )
}

#[test]
fn each_rule_is_reported_at_its_path() {
    let p = "routes[1].compression";
    let cases: &[(&str, &str, String, &str)] = &[
        (
            "unknown algorithm",
            r#"algorithms = ["gzip", "deflate"]"#,
            format!("{p}.algorithms[1]"),
            "unknown algorithm \"deflate\"",
        ),
        (
            "algorithm twice",
            r#"algorithms = ["br", "gzip", "BR"]"#,
            format!("{p}.algorithms[2]"),
            "already listed as algorithms[0]",
        ),
        (
            "no algorithm",
            "algorithms = []",
            format!("{p}.algorithms"),
            "enabled = false",
        ),
        (
            "no media type",
            "content-types = []",
            format!("{p}.content-types"),
            "enabled = false",
        ),
        (
            "media type with parameters",
            r#"content-types = ["text/html; charset=utf-8"]"#,
            format!("{p}.content-types[0]"),
            "parameters",
        ),
        (
            "not a media type",
            r#"content-types = ["application/json", "json"]"#,
            format!("{p}.content-types[1]"),
            "type/subtype",
        ),
        (
            "any type",
            r#"content-types = ["*/*"]"#,
            format!("{p}.content-types[0]"),
            "compressed already",
        ),
        (
            "bad wildcard",
            r#"content-types = ["application/*json"]"#,
            format!("{p}.content-types[0]"),
            "type/*+suffix",
        ),
        (
            "media type twice, by case",
            r#"content-types = ["text/*", "TEXT/*"]"#,
            format!("{p}.content-types[1]"),
            "already listed as content-types[0]",
        ),
        (
            "negative min-size",
            "min-size = -1",
            format!("{p}.min-size"),
            "negative",
        ),
        (
            "min-size without a unit",
            r#"min-size = "1 parsec""#,
            format!("{p}.min-size"),
            "",
        ),
        (
            "gzip level 0",
            "gzip-level = 0",
            format!("{p}.gzip-level"),
            "from 1 to 9",
        ),
        (
            "gzip level 10",
            "gzip-level = 10",
            format!("{p}.gzip-level"),
            "from 1 to 9",
        ),
        (
            "brotli level 12",
            "brotli-level = 12",
            format!("{p}.brotli-level"),
            "from 0 to 11",
        ),
        (
            "zstd level 0",
            "zstd-level = 0",
            format!("{p}.zstd-level"),
            "from 1 to 19",
        ),
        (
            "zstd level 22",
            "zstd-level = 22",
            format!("{p}.zstd-level"),
            "from 1 to 19",
        ),
        (
            "quoted level",
            r#"zstd-level = "3""#,
            format!("{p}.zstd-level"),
            "without quotes",
        ),
        (
            "checked when turned off",
            "enabled = false\ngzip-level = 11",
            format!("{p}.gzip-level"),
            "from 1 to 9",
        ),
    ];
    for (case, keys, path, fragment) in cases {
        assert_one_error(case, &route(keys), path, fragment);
    }
}

#[test]
fn unknown_keys_are_refused() {
    let errors = common::errors(&route("level = 5"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].path.starts_with("routes[1].compression"),
        "{}",
        errors[0]
    );
}

#[test]
fn defaults_and_explicit_values() {
    let c = valid(&route(""));
    let got = c.routes[1].compression.clone().expect("compresses");
    assert_eq!(got.algorithms, ContentCoding::ALL.to_vec());
    assert_eq!(got.content_types, Compression::DEFAULT_CONTENT_TYPES);
    assert_eq!(got.min_size, 1024);
    assert_eq!(
        (got.gzip_level, got.brotli_level, got.zstd_level),
        (6, 4, 3)
    );
    assert!(c.routes[0].compression.is_none());

    let c = valid(&route(
        r#"algorithms = ["GZIP", "br"]
content-types = ["Application/JSON", "application/*+json", "text/*"]
min-size = "4KiB"
gzip-level = 1
brotli-level = 0
zstd-level = 19"#,
    ));
    let got = c.routes[1].compression.clone().expect("compresses");
    assert_eq!(
        got.algorithms,
        vec![ContentCoding::Gzip, ContentCoding::Brotli]
    );
    assert_eq!(
        got.content_types,
        ["application/json", "application/*+json", "text/*"]
    );
    assert_eq!(got.min_size, 4096);
    assert_eq!(
        (got.gzip_level, got.brotli_level, got.zstd_level),
        (1, 0, 19)
    );

    let off = valid(&route("enabled = false"));
    assert!(off.routes[1].compression.is_none());
}

#[test]
fn a_responder_route_may_compress() {
    let src = with_base(
        "",
        "[[routes]]\npath = \"/r\"\n[routes.respond]\nstatus = 200\nbody = \"hi\"\n[routes.compression]\n",
    );
    assert!(valid(&src).routes[1].compression.is_some());
}

proptest! {
    #[test]
    fn any_compression_reads_back(
        enabled in any::<bool>(),
        algorithms in Just(ContentCoding::ALL.to_vec()).prop_shuffle(),
        take in 1usize..=3,
        types in prop::collection::hash_set(
            "[a-z]{1,8}/([a-z0-9.+-]{1,10}|\\*|\\*\\+[a-z]{1,6})", 1..5),
        min_size in 0u64..(1 << 40),
        gzip in 1u8..=9,
        brotli in 0u8..=11,
        zstd in 1u8..=19,
    ) {
        let algorithms: Vec<_> = algorithms[..take].iter().map(|a| format!("{:?}", a.as_str())).collect();
        let types: Vec<_> = types.iter().map(|t| format!("{t:?}")).collect();
        let src = route(&format!(
            "enabled = {enabled}\nalgorithms = [{}]\ncontent-types = [{}]\nmin-size = {min_size}\n\
             gzip-level = {gzip}\nbrotli-level = {brotli}\nzstd-level = {zstd}\n",
            algorithms.join(", "),
            types.join(", "),
        ));
        let config = match Config::from_toml_str(&src) {
            Ok(config) => config,
            Err(errors) => return Err(TestCaseError::fail(format!("{errors}\n{src}"))),
        };
        prop_assert_eq!(config.routes[1].compression.is_some(), enabled);
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }
}
