//! Helpers shared by the config tests: a valid base config to add to, and
//! assertions on the errors a config produces.

#![allow(dead_code)] // each test file uses a different subset

use ringway_config::{Config, ConfigError};

/// A valid config to add one mistake to. Top-level keys go before it (after
/// it they would land in the last table); tables go after it.
pub const BASE: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"

[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000"]

[[routes]]
name = "base"
path = "/base"
upstream = "app"
"#;

/// `top`, then [`BASE`], then `tail`.
pub fn with_base(top: &str, tail: &str) -> String {
    format!("{top}\n{BASE}\n{tail}\n")
}

/// The errors `src` produces; panics if it is valid.
pub fn errors(src: &str) -> Vec<ConfigError> {
    match Config::from_toml_str(src) {
        Ok(config) => panic!("expected errors, got a config: {config:#?}\n--- source ---\n{src}"),
        Err(errors) => errors.0,
    }
}

/// Parses a config that must be valid.
pub fn valid(src: &str) -> Config {
    match Config::from_toml_str(src) {
        Ok(config) => config,
        Err(errors) => panic!("{}\n--- source ---\n{src}", errors.with_file("test.toml")),
    }
}

/// Asserts `src` produces exactly one error, at `path`, whose message
/// contains `fragment`. Exactly one, so a rule that also triggers follow-up
/// noise fails its test.
pub fn assert_one_error(case: &str, src: &str, path: &str, fragment: &str) {
    let errors = errors(src);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors.len(),
        1,
        "{case}: want one error, got {shown:#?}\n{src}"
    );
    let e = &errors[0];
    assert_eq!(e.path, path, "{case}: {e}");
    assert!(
        e.message.contains(fragment),
        "{case}: message {:?} lacks {fragment:?}",
        e.message
    );
}
