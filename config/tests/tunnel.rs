//! A route's `upgrades`, `tunnel-idle-timeout` and `max-tunnels`: each
//! rule reported at its path, the defaults, and the keys read back from
//! rendered output in both formats.

mod common;

use std::time::Duration;

use common::{assert_one_error, valid, with_base};
use proptest::prelude::*;
use ringway_config::{Config, Tunnels, EXAMPLE_CONFIG};

/// A proxying route (routes[1]; BASE's is routes[0]) with `keys`.
fn route(keys: &str) -> String {
    with_base(
        "",
        &format!("[[routes]]\nname = \"ws\"\npath-prefix = \"/ws/\"\nupstream = \"app\"\n{keys}\n"),
    )
}

#[test]
fn each_rule_is_reported_at_its_path() {
    let respond = "[[routes]]\nname = \"r\"\npath = \"/r\"\nupgrades = [\"websocket\"]\n\
                   [routes.respond]\n";
    let ai = "[[ai-providers]]\nname = \"p\"\ntype = \"openai\"\nupstream = \"app\"\n\
              keys = [\"env:K\"]\n[[ai-models]]\nname = \"m\"\n\
              targets = [{ provider = \"p\", model = \"x\" }]\n\
              [[routes]]\nname = \"ai\"\npath-prefix = \"/ai/\"\nupgrades = [\"websocket\"]\n\
              [routes.ai]\n";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "empty name",
            route("upgrades = [\"\"]"),
            "routes[1].upgrades[0]",
            "empty protocol name",
        ),
        (
            "a version",
            route("upgrades = [\"websocket/13\"]"),
            "routes[1].upgrades[0]",
            "without a version",
        ),
        (
            "not a token",
            route("upgrades = [\"web socket\"]"),
            "routes[1].upgrades[0]",
            "cannot hold",
        ),
        (
            "twice, ignoring case",
            route("upgrades = [\"websocket\", \"WebSocket\"]"),
            "routes[1].upgrades[1]",
            "already listed as upgrades[0]",
        ),
        (
            "respond route",
            with_base("", respond),
            "routes[1].upgrades",
            "proxy to an upstream",
        ),
        (
            "ai route",
            with_base("", ai),
            "routes[1].upgrades",
            "[routes.ai]",
        ),
        (
            "idle timeout without upgrades",
            route("tunnel-idle-timeout = \"1m\""),
            "routes[1].tunnel-idle-timeout",
            "only with `upgrades`",
        ),
        (
            "max-tunnels with empty upgrades",
            route("upgrades = []\nmax-tunnels = 5"),
            "routes[1].max-tunnels",
            "only with `upgrades`",
        ),
        (
            "idle timeout too short",
            route("upgrades = [\"websocket\"]\ntunnel-idle-timeout = \"500ms\""),
            "routes[1].tunnel-idle-timeout",
            "must be from 1s to 24h",
        ),
        (
            "idle timeout without unit",
            route("upgrades = [\"websocket\"]\ntunnel-idle-timeout = 30"),
            "routes[1].tunnel-idle-timeout",
            "needs a unit",
        ),
        (
            "max-tunnels zero",
            route("upgrades = [\"websocket\"]\nmax-tunnels = 0"),
            "routes[1].max-tunnels",
            "from 1 to 1000000",
        ),
        (
            "max-tunnels too many",
            route("upgrades = [\"websocket\"]\nmax-tunnels = 1000001"),
            "routes[1].max-tunnels",
            "from 1 to 1000000",
        ),
    ];
    for (case, src, path, fragment) in &cases {
        assert_one_error(case, src, path, fragment);
    }
}

#[test]
fn defaults_and_lower_case_names() {
    let config = valid(&route("upgrades = [\"WebSocket\", \"x-Custom.1\"]"));
    let t = config.routes[1].tunnels.as_ref().expect("tunnels");
    assert_eq!(t.upgrades, ["websocket", "x-custom.1"]);
    assert_eq!(t.idle_timeout, Duration::from_secs(60));
    assert_eq!(t.max_tunnels, Tunnels::DEFAULT_MAX_TUNNELS);
    assert_eq!(t.max_tunnels.get(), 10_000);
    // None written, or an empty list: upgrades are stripped.
    assert_eq!(valid(&route("")).routes[1].tunnels, None);
    assert_eq!(valid(&route("upgrades = []")).routes[1].tunnels, None);
}

#[test]
fn example_config_sets_every_tunnel_key() {
    let config = valid(EXAMPLE_CONFIG);
    let live = config
        .routes
        .iter()
        .find(|r| r.name == "live")
        .expect("the example has a WebSocket route");
    let t = live.tunnels.as_ref().expect("tunnels");
    assert_eq!(t.upgrades, ["websocket"]);
    // The example shows the defaults.
    assert_eq!(t.idle_timeout, Tunnels::DEFAULT_IDLE_TIMEOUT);
    assert_eq!(t.max_tunnels, Tunnels::DEFAULT_MAX_TUNNELS);
    for key in ["upgrades =", "tunnel-idle-timeout =", "max-tunnels ="] {
        assert!(
            EXAMPLE_CONFIG.lines().any(|l| l.starts_with(key)),
            "example.toml never sets {key:?}"
        );
    }
}

proptest! {
    #[test]
    fn any_tunnels_read_back(
        names in prop::collection::hash_set("[a-zA-Z][a-zA-Z0-9._~-]{0,12}", 0..4),
        idle in prop::option::of(1u64..=86_400_000),
        max in prop::option::of(1u32..=1_000_000),
    ) {
        // Names that differ only in case are one protocol.
        let mut seen = std::collections::HashSet::new();
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| seen.insert(n.to_ascii_lowercase()))
            .collect();
        let list = names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
        let mut keys = format!("upgrades = [{list}]\n");
        if !names.is_empty() {
            if let Some(ms) = idle.filter(|&ms| ms >= 1000) {
                keys.push_str(&format!("tunnel-idle-timeout = \"{ms}ms\"\n"));
            }
            if let Some(n) = max {
                keys.push_str(&format!("max-tunnels = {n}\n"));
            }
        }
        let config = valid(&route(&keys));
        prop_assert_eq!(config.routes[1].tunnels.is_some(), !names.is_empty());
        prop_assert_eq!(Config::from_json_str(&config.to_json(false)), Ok(config.clone()));
        prop_assert_eq!(Config::from_toml_str(&config.to_toml()), Ok(config));
    }
}
