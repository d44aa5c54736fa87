//! The AI gateway's config: `[[ai-providers]]`, `[[ai-models]]` and
//! `[routes.ai]`, their typed values and defaults, every rule with the path
//! it is reported at, the inline-key warning, and writing them back out.

mod common;

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use common::{assert_one_error, valid, with_base};
use ringway_config::{
    Action, AiKey, AiModel, AiProvider, AiProviderKind, AiRoute, AiStrategy, AiTarget, Config,
    SecretSource,
};

/// Two providers in front of their upstreams, a model falling back from
/// one to the other, and a route serving it; appended to `common::BASE`
/// (upstream "app", route "base").
const AI: &str = r#"
[[upstreams]]
name = "openai-api"
servers = ["api.openai.com:443"]
[upstreams.tls]

[[upstreams]]
name = "anthropic-api"
servers = ["api.anthropic.com:443"]
[upstreams.tls]

[[ai-providers]]
name = "openai"
type = "openai"
upstream = "openai-api"
keys = ["env:OPENAI_KEY_1", "file:/run/secrets/openai-2",
        { key = "env:OPENAI_KEY_3", requests-per-minute = 500, tokens-per-minute = 200000 }]
headers = { "OpenAI-Organization" = "org-1" }
timeout = "60s"

[[ai-providers]]
name = "anthropic"
type = "anthropic"
upstream = "anthropic-api"
keys = ["env:ANTHROPIC_KEY"]

[[ai-models]]
name = "chat"
max-tokens-default = 1024
targets = [
  { provider = "openai", model = "gpt-4o-mini", priority = 0, weight = 1 },
  { provider = "anthropic", model = "claude-3-5-haiku-latest", priority = 1 },
]

[[routes]]
name = "llm"
path-prefix = "/ai"
[routes.ai]
"#;

fn ai_config(extra: &str) -> String {
    with_base("", &format!("{AI}\n{extra}"))
}

#[test]
fn a_valid_config_parses_to_the_typed_model() {
    let c = valid(&ai_config(""));
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    let upstream = |name: &str| {
        c.upstreams
            .iter()
            .position(|u| u.name == name)
            .expect("upstream")
    };
    assert_eq!(
        c.ai_providers,
        [
            AiProvider {
                name: "openai".into(),
                kind: AiProviderKind::OpenAi,
                upstream: upstream("openai-api"),
                base_path: "/v1".into(),
                query: None,
                key_header: None,
                headers: vec![("OpenAI-Organization".into(), "org-1".into())],
                keys: vec![
                    AiKey {
                        source: SecretSource::Env("OPENAI_KEY_1".into()),
                        requests_per_minute: None,
                        tokens_per_minute: None,
                    },
                    AiKey {
                        source: SecretSource::File("/run/secrets/openai-2".into()),
                        requests_per_minute: None,
                        tokens_per_minute: None,
                    },
                    AiKey {
                        source: SecretSource::Env("OPENAI_KEY_3".into()),
                        requests_per_minute: NonZeroU32::new(500),
                        tokens_per_minute: NonZeroU64::new(200_000),
                    },
                ],
                timeout: Some(Duration::from_secs(60)),
            },
            AiProvider {
                name: "anthropic".into(),
                kind: AiProviderKind::Anthropic,
                upstream: upstream("anthropic-api"),
                base_path: "/v1".into(),
                query: None,
                key_header: None,
                headers: vec![],
                keys: vec![AiKey {
                    source: SecretSource::Env("ANTHROPIC_KEY".into()),
                    requests_per_minute: None,
                    tokens_per_minute: None,
                }],
                timeout: None,
            },
        ]
    );
    let one = NonZeroU32::MIN;
    assert_eq!(
        c.ai_models,
        [AiModel {
            name: "chat".into(),
            strategy: AiStrategy::Fallback,
            max_tokens_default: NonZeroU32::new(1024),
            allow_groups: vec![],
            targets: vec![
                AiTarget {
                    provider: 0,
                    model: "gpt-4o-mini".into(),
                    weight: one,
                    priority: 0,
                },
                AiTarget {
                    provider: 1,
                    model: "claude-3-5-haiku-latest".into(),
                    weight: one,
                    priority: 1,
                },
            ],
        }]
    );
    let llm = c.routes.iter().find(|r| r.name == "llm").expect("route");
    assert_eq!(
        llm.action,
        Action::Ai(AiRoute {
            models: vec![0],
            messages: false,
            max_response_size: 16 << 20,
        })
    );
}

#[test]
fn every_key_set() {
    let c = valid(&with_base(
        "",
        r#"
[[consumers]]
name = "alice"
groups = ["pro"]

[[ai-providers]]
name = "azure"
type = "openai-compatible"
upstream = "app"
base-path = "/openai/deployments/gpt-4o"
query = "api-version=2024-06-01"
key-header = "API-Key"

[[ai-providers]]
name = "gemini"
type = "gemini"
upstream = "app"
keys = [{ key = "env:GEMINI_KEY" }]

[[ai-models]]
name = "fast"
strategy = "weighted"
allow-groups = ["pro"]
targets = [
  { provider = "azure", model = "gpt-4o", weight = 3 },
  { provider = "gemini", model = "gemini-1.5-flash", weight = 10000, priority = 1000 },
]

[[ai-models]]
name = "llama3:8b"
targets = [{ provider = "azure", model = "llama3:8b" }]

[[routes]]
path-prefix = "/ai"
[routes.ai]
models = ["llama3:8b", "fast"]
messages = true
max-response-size = "1KiB"
"#,
    ));
    let [azure, gemini] = &c.ai_providers[..] else {
        panic!("two providers")
    };
    assert_eq!(azure.kind, AiProviderKind::OpenAiCompatible);
    assert_eq!(azure.base_path, "/openai/deployments/gpt-4o");
    assert_eq!(azure.query.as_deref(), Some("api-version=2024-06-01"));
    assert_eq!(azure.key_header.as_deref(), Some("api-key"));
    assert!(azure.keys.is_empty(), "openai-compatible may have no key");
    assert_eq!(gemini.base_path, "/v1beta", "gemini's default base path");
    assert_eq!(
        gemini.keys[0].source,
        SecretSource::Env("GEMINI_KEY".into())
    );

    let fast = &c.ai_models[0];
    assert_eq!(fast.strategy, AiStrategy::Weighted);
    assert_eq!(fast.allow_groups, ["pro"]);
    assert_eq!(
        fast.targets
            .iter()
            .map(|t| (t.provider, t.weight.get(), t.priority))
            .collect::<Vec<_>>(),
        [(0, 3, 0), (1, 10000, 1000)]
    );
    assert_eq!(c.ai_models[1].name, "llama3:8b");
    assert_eq!(
        c.routes[1].action,
        Action::Ai(AiRoute {
            models: vec![1, 0],
            messages: true,
            max_response_size: 1024,
        })
    );
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
}

#[test]
fn kinds_and_their_defaults() {
    let cases = [
        (
            AiProviderKind::OpenAi,
            "openai",
            "/v1",
            "authorization",
            true,
        ),
        (
            AiProviderKind::Anthropic,
            "anthropic",
            "/v1",
            "x-api-key",
            true,
        ),
        (
            AiProviderKind::Gemini,
            "gemini",
            "/v1beta",
            "x-goog-api-key",
            true,
        ),
        (
            AiProviderKind::OpenAiCompatible,
            "openai-compatible",
            "/v1",
            "authorization",
            false,
        ),
    ];
    assert_eq!(AiProviderKind::ALL.len(), cases.len());
    for (kind, name, base, header, needs_key) in cases {
        assert_eq!(kind.as_str(), name);
        assert_eq!(kind.default_base_path(), base, "{name}");
        assert_eq!(kind.default_key_header(), header, "{name}");
        assert_eq!(kind.requires_key(), needs_key, "{name}");
    }
}

#[test]
fn inline_keys_load_with_a_warning_at_their_path_and_never_show() {
    let secret = "sk-live-0123456789abcdef";
    let c = valid(&with_base(
        "",
        &format!(
            r#"
[[ai-providers]]
name = "openai"
type = "openai"
upstream = "app"
keys = ["env:A", "{secret}", {{ key = "{secret}-2", requests-per-minute = 1 }}]
"#
        ),
    ));
    let paths: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        ["ai-providers[0].keys[1]", "ai-providers[0].keys[2].key"]
    );
    for w in &c.warnings {
        assert!(!w.message.contains(secret), "{w}");
    }
    assert_eq!(
        c.ai_providers[0].keys[1].source,
        SecretSource::Inline(secret.into())
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains(secret), "Debug shows a key");
    assert!(debug.contains("Inline(***)"), "{debug}");
    assert_eq!(
        format!("{:?}", SecretSource::Env("X".into())),
        "Env(\"X\")",
        "a variable's name is not secret"
    );
}

#[test]
fn provider_rules() {
    let provider = |body: &str| {
        with_base(
            "",
            &format!("[[ai-providers]]\nname = \"p\"\nupstream = \"app\"\n{body}\n"),
        )
    };
    let openai = |body: &str| provider(&format!("type = \"openai\"\nkeys = [\"env:K\"]\n{body}"));
    let cases = [
        (
            "no name",
            with_base(
                "",
                "[[ai-providers]]\ntype = \"openai\"\nupstream = \"app\"\nkeys = [\"env:K\"]\n",
            ),
            "ai-providers[0].name",
            "missing",
        ),
        (
            "bad name",
            with_base(
                "",
                "[[ai-providers]]\nname = \"a b\"\ntype = \"openai\"\nupstream = \"app\"\nkeys = [\"env:K\"]\n",
            ),
            "ai-providers[0].name",
            "names may hold only",
        ),
        (
            "duplicate name",
            with_base(
                "",
                "[[ai-providers]]\nname = \"p\"\ntype = \"openai-compatible\"\nupstream = \"app\"\n\
                 [[ai-providers]]\nname = \"p\"\ntype = \"openai-compatible\"\nupstream = \"app\"\n",
            ),
            "ai-providers[1].name",
            "already the name of ai-providers[0]",
        ),
        ("no type", provider(""), "ai-providers[0].type", "missing"),
        (
            "unknown type",
            provider("type = \"mistral\""),
            "ai-providers[0].type",
            "expected \"openai\" or \"anthropic\" or \"gemini\" or \"openai-compatible\"",
        ),
        (
            "no upstream",
            with_base(
                "",
                "[[ai-providers]]\nname = \"p\"\ntype = \"openai-compatible\"\n",
            ),
            "ai-providers[0].upstream",
            "missing",
        ),
        (
            "unknown upstream",
            with_base(
                "",
                "[[ai-providers]]\nname = \"p\"\ntype = \"openai-compatible\"\nupstream = \"openai\"\n",
            ),
            "ai-providers[0].upstream",
            "no upstream named \"openai\"; defined upstreams: app",
        ),
        (
            "relative base path",
            openai("base-path = \"v1\""),
            "ai-providers[0].base-path",
            "must start with \"/\"",
        ),
        (
            "base path with a trailing slash",
            openai("base-path = \"/v1/\""),
            "ai-providers[0].base-path",
            "must not end with \"/\"",
        ),
        (
            "base path with a query",
            openai("base-path = \"/v1?x=1\""),
            "ai-providers[0].base-path",
            "goes in `query`",
        ),
        (
            "base path with a fragment",
            openai("base-path = \"/v1#x\""),
            "ai-providers[0].base-path",
            "remove the '#' part",
        ),
        (
            "query with a question mark",
            openai("query = \"?a=1\""),
            "ai-providers[0].query",
            "without the leading \"?\"",
        ),
        (
            "empty query",
            openai("query = \"\""),
            "ai-providers[0].query",
            "empty",
        ),
        (
            "query with a space",
            openai("query = \"a=b c\""),
            "ai-providers[0].query",
            "percent-encode",
        ),
        (
            "bad key header",
            openai("key-header = \"x key\""),
            "ai-providers[0].key-header",
            "cannot hold",
        ),
        (
            "hop-by-hop key header",
            openai("key-header = \"Connection\""),
            "ai-providers[0].key-header",
            "hop-by-hop",
        ),
        (
            "host as key header",
            openai("key-header = \"host\""),
            "ai-providers[0].key-header",
            "cannot be used here",
        ),
        (
            "bad header name",
            openai("headers = { \"a b\" = \"x\" }"),
            "ai-providers[0].headers.\"a b\"",
            "cannot hold",
        ),
        (
            "host header",
            openai("headers = { Host = \"x\" }"),
            "ai-providers[0].headers.Host",
            "cannot be set here",
        ),
        (
            "content-length header",
            openai("headers = { \"Content-Length\" = \"1\" }"),
            "ai-providers[0].headers.Content-Length",
            "frames the body",
        ),
        (
            "transfer-encoding header",
            openai("headers = { \"transfer-encoding\" = \"chunked\" }"),
            "ai-providers[0].headers.transfer-encoding",
            "frames the body",
        ),
        (
            "connection header",
            openai("headers = { connection = \"close\" }"),
            "ai-providers[0].headers.connection",
            "manages the connection",
        ),
        (
            "the type's key header",
            openai("headers = { Authorization = \"Bearer x\" }"),
            "ai-providers[0].headers.Authorization",
            "carries the provider's key",
        ),
        (
            "the key-header",
            openai("key-header = \"api-key\"\nheaders = { \"API-KEY\" = \"x\" }"),
            "ai-providers[0].headers.API-KEY",
            "carries the provider's key",
        ),
        (
            "anthropic's key header",
            provider(
                "type = \"anthropic\"\nkeys = [\"env:K\"]\nheaders = { \"x-api-key\" = \"k\" }",
            ),
            "ai-providers[0].headers.x-api-key",
            "carries the provider's key",
        ),
        (
            "header twice",
            openai("headers = { \"X-A\" = \"1\", \"x-a\" = \"2\" }"),
            "ai-providers[0].headers.x-a",
            "repeats header \"X-A\"",
        ),
        (
            "header value with a newline",
            openai("headers = { \"x-a\" = \"1\\nx-b: 2\" }"),
            "ai-providers[0].headers.x-a",
            "cannot contain",
        ),
        (
            "no keys",
            provider("type = \"openai\""),
            "ai-providers[0].keys",
            "needs at least one key",
        ),
        (
            "empty keys",
            provider("type = \"gemini\"\nkeys = []"),
            "ai-providers[0].keys",
            "needs at least one key",
        ),
        (
            "bad env name",
            provider("type = \"openai\"\nkeys = [\"env:MY-KEY\"]"),
            "ai-providers[0].keys[0]",
            "not an environment variable name",
        ),
        (
            "empty env name",
            provider("type = \"openai\"\nkeys = [\"env:\"]"),
            "ai-providers[0].keys[0]",
            "not an environment variable name",
        ),
        (
            "empty file",
            provider("type = \"openai\"\nkeys = [\"file:\"]"),
            "ai-providers[0].keys[0]",
            "needs a path",
        ),
        (
            "empty key",
            provider("type = \"openai\"\nkeys = [\"\"]"),
            "ai-providers[0].keys[0]",
            "empty key",
        ),
        (
            "key with a space",
            provider("type = \"openai\"\nkeys = [\"sk 1\"]"),
            "ai-providers[0].keys[0]",
            "visible ASCII",
        ),
        (
            "redacted key",
            provider("type = \"openai\"\nkeys = [\"<redacted>\"]"),
            "ai-providers[0].keys[0]",
            "redacted",
        ),
        (
            "same variable twice",
            provider("type = \"openai\"\nkeys = [\"env:K\", { key = \"env:K\" }]"),
            "ai-providers[0].keys[1]",
            "the same variable, \"K\", as keys[0]",
        ),
        (
            "same file twice",
            provider("type = \"openai\"\nkeys = [\"file:/k\", \"file:/k\"]"),
            "ai-providers[0].keys[1]",
            "the same file",
        ),
        (
            "table without key",
            provider("type = \"openai\"\nkeys = [{ requests-per-minute = 1 }]"),
            "ai-providers[0].keys[0].key",
            "missing",
        ),
        (
            "zero requests per minute",
            provider("type = \"openai\"\nkeys = [{ key = \"env:K\", requests-per-minute = 0 }]"),
            "ai-providers[0].keys[0].requests-per-minute",
            "expected an integer from 1",
        ),
        (
            "zero tokens per minute",
            provider("type = \"openai\"\nkeys = [{ key = \"env:K\", tokens-per-minute = 0 }]"),
            "ai-providers[0].keys[0].tokens-per-minute",
            "expected an integer from 1",
        ),
        (
            "unknown key in a key table",
            provider("type = \"openai\"\nkeys = [{ key = \"env:K\", rpm = 1 }]"),
            "ai-providers[0].keys[0].rpm",
            "unknown key `rpm`",
        ),
        (
            "key of the wrong type",
            provider("type = \"openai\"\nkeys = [1]"),
            "ai-providers[0].keys[0]",
            "invalid type",
        ),
        (
            "zero timeout",
            openai("timeout = \"0s\""),
            "ai-providers[0].timeout",
            "greater than zero",
        ),
        (
            "timeout without a unit",
            openai("timeout = 60"),
            "ai-providers[0].timeout",
            "needs a unit",
        ),
        (
            "unknown key",
            openai("api-key = \"x\""),
            "ai-providers[0].api-key",
            "unknown key",
        ),
    ];
    for (case, src, path, fragment) in cases {
        assert_one_error(case, &src, path, fragment);
    }
}

#[test]
fn model_rules() {
    let providers = "[[ai-providers]]\nname = \"p\"\ntype = \"openai-compatible\"\nupstream = \"app\"\n\
                     [[ai-providers]]\nname = \"q\"\ntype = \"openai-compatible\"\nupstream = \"app\"\n";
    let model = |body: &str| with_base("", &format!("{providers}[[ai-models]]\n{body}\n"));
    let named = |body: &str| model(&format!("name = \"m\"\n{body}"));
    let targeted = |body: &str| {
        named(&format!(
            "targets = [{{ provider = \"p\", model = \"x\" }}]\n{body}"
        ))
    };
    let cases = [
        (
            "no name",
            model("targets = [{ provider = \"p\", model = \"x\" }]"),
            "ai-models[0].name",
            "missing",
        ),
        (
            "bad name",
            model("name = \"a b\"\ntargets = [{ provider = \"p\", model = \"x\" }]"),
            "ai-models[0].name",
            "model names may hold only",
        ),
        (
            "duplicate name",
            with_base(
                "",
                &format!(
                    "{providers}[[ai-models]]\nname = \"m\"\ntargets = [{{ provider = \"p\", model = \"x\" }}]\n\
                     [[ai-models]]\nname = \"m\"\ntargets = [{{ provider = \"p\", model = \"x\" }}]\n"
                ),
            ),
            "ai-models[1].name",
            "already the name of ai-models[0]",
        ),
        (
            "unknown strategy",
            targeted("strategy = \"random\""),
            "ai-models[0].strategy",
            "expected \"fallback\" or \"weighted\"",
        ),
        (
            "zero max tokens",
            targeted("max-tokens-default = 0"),
            "ai-models[0].max-tokens-default",
            "from 1 to 1000000",
        ),
        (
            "too many max tokens",
            targeted("max-tokens-default = 1000001"),
            "ai-models[0].max-tokens-default",
            "from 1 to 1000000",
        ),
        (
            "bad group",
            targeted("allow-groups = [\"a b\"]"),
            "ai-models[0].allow-groups[0]",
            "names may hold only",
        ),
        (
            "group twice",
            with_base(
                "",
                &format!(
                    "[[consumers]]\nname = \"c\"\ngroups = [\"g\"]\n{providers}[[ai-models]]\nname = \"m\"\n\
                     allow-groups = [\"g\", \"g\"]\ntargets = [{{ provider = \"p\", model = \"x\" }}]\n"
                ),
            ),
            "ai-models[0].allow-groups[1]",
            "already listed as allow-groups[0]",
        ),
        ("no targets", named(""), "ai-models[0].targets", "missing"),
        (
            "empty targets",
            named("targets = []"),
            "ai-models[0].targets",
            "at least one target",
        ),
        (
            "target without provider",
            named("targets = [{ model = \"x\" }]"),
            "ai-models[0].targets[0].provider",
            "missing",
        ),
        (
            "unknown provider",
            named("targets = [{ provider = \"openai\", model = \"x\" }]"),
            "ai-models[0].targets[0].provider",
            "no ai-provider named \"openai\"; defined ai-providers: p, q",
        ),
        (
            "target without model",
            named("targets = [{ provider = \"p\" }]"),
            "ai-models[0].targets[0].model",
            "missing",
        ),
        (
            "empty model",
            named("targets = [{ provider = \"p\", model = \"\" }]"),
            "ai-models[0].targets[0].model",
            "must not be empty",
        ),
        (
            "zero weight",
            named("targets = [{ provider = \"p\", model = \"x\", weight = 0 }]"),
            "ai-models[0].targets[0].weight",
            "from 1 to 10000",
        ),
        (
            "weight too high",
            named("targets = [{ provider = \"p\", model = \"x\", weight = 10001 }]"),
            "ai-models[0].targets[0].weight",
            "from 1 to 10000",
        ),
        (
            "negative priority",
            named("targets = [{ provider = \"p\", model = \"x\", priority = -1 }]"),
            "ai-models[0].targets[0].priority",
            "from 0 to 1000",
        ),
        (
            "priority too high",
            named("targets = [{ provider = \"p\", model = \"x\", priority = 1001 }]"),
            "ai-models[0].targets[0].priority",
            "from 0 to 1000",
        ),
        (
            "same target twice",
            named(
                "targets = [{ provider = \"p\", model = \"x\" }, { provider = \"q\", model = \"x\" }, \
                 { provider = \"p\", model = \"x\", weight = 2 }]",
            ),
            "ai-models[0].targets[2]",
            "the same provider and model as targets[0]",
        ),
        (
            "unknown target key",
            named("targets = [{ provider = \"p\", model = \"x\", region = \"eu\" }]"),
            "ai-models[0].targets[0].region",
            "unknown key `region`",
        ),
    ];
    for (case, src, path, fragment) in cases {
        assert_one_error(case, &src, path, fragment);
    }
}

#[test]
fn a_group_no_consumer_has_warns_at_its_path() {
    let c = valid(&with_base(
        "",
        "[[ai-providers]]\nname = \"p\"\ntype = \"openai-compatible\"\nupstream = \"app\"\n\
         [[ai-models]]\nname = \"m\"\nallow-groups = [\"pro\"]\n\
         targets = [{ provider = \"p\", model = \"x\" }]\n",
    ));
    let warnings: Vec<(&str, &str)> = c
        .warnings
        .iter()
        .map(|w| (w.path.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(
        warnings,
        [(
            "ai-models[0].allow-groups[0]",
            "no consumer is in group \"pro\", so it lets nobody in"
        )]
    );
}

#[test]
fn route_rules() {
    let route = |body: &str| ai_config(&format!("[[routes]]\npath = \"/x\"\n{body}"));
    let cases = [
        (
            "upstream and ai",
            route("upstream = \"app\"\n[routes.ai]"),
            "routes[2].ai",
            "set either `upstream` (proxy) or [routes.ai] (serve AI models), not both",
        ),
        (
            "respond and ai",
            route("[routes.respond]\n[routes.ai]"),
            "routes[2].ai",
            "set either [routes.respond] (answer directly) or [routes.ai]",
        ),
        (
            "upstream and respond",
            route("upstream = \"app\"\n[routes.respond]"),
            "routes[2].respond",
            "not both",
        ),
        (
            "no action names all four",
            route("methods = [\"GET\"]"),
            "routes[2]",
            "no action: set `upstream = \"NAME\"` to proxy, add a [routes.respond] table to \
             answer directly, a [routes.ai] table to serve AI models, or a [routes.redirect] table",
        ),
        (
            "ai with a cache",
            route("[routes.ai]\n[routes.cache]"),
            "routes[2].cache",
            "cannot cache",
        ),
        (
            "ai with a host header",
            route("host-header = \"api.openai.com\"\n[routes.ai]"),
            "routes[2].host-header",
            "does not apply to a [routes.ai] route",
        ),
        (
            "unknown model",
            route("[routes.ai]\nmodels = [\"gpt\"]"),
            "routes[2].ai.models[0]",
            "no ai-model named \"gpt\"; defined ai-models: chat",
        ),
        (
            "model twice",
            route("[routes.ai]\nmodels = [\"chat\", \"chat\"]"),
            "routes[2].ai.models[1]",
            "already listed as models[0]",
        ),
        (
            "empty models",
            route("[routes.ai]\nmodels = []"),
            "routes[2].ai.models",
            "leave `models` out",
        ),
        (
            "response size too small",
            route("[routes.ai]\nmax-response-size = 1023"),
            "routes[2].ai.max-response-size",
            "must be from 1KiB to 256MiB",
        ),
        (
            "response size too large",
            route("[routes.ai]\nmax-response-size = \"257MiB\""),
            "routes[2].ai.max-response-size",
            "must be from 1KiB to 256MiB",
        ),
        (
            "response size without a unit word",
            route("[routes.ai]\nmax-response-size = \"lots\""),
            "routes[2].ai.max-response-size",
            "",
        ),
        (
            "unknown ai key",
            route("[routes.ai]\nstream = true"),
            "routes[2].ai.stream",
            "unknown key `stream`",
        ),
        (
            "no models defined",
            with_base("", "[[routes]]\npath = \"/x\"\n[routes.ai]"),
            "routes[1].ai",
            "none are defined",
        ),
    ];
    for (case, src, path, fragment) in cases {
        assert_one_error(case, &src, path, fragment);
    }
}

#[test]
fn an_ai_route_takes_the_keys_of_a_proxying_route() {
    let c = valid(&ai_config(
        r#"
[[routes]]
path = "/retried"
limits.connect-timeout = "1s"
limits.response-head-timeout = "2m"
[routes.ai]
models = ["chat"]
[routes.retry]
attempts = 3
"#,
    ));
    let route = c.routes.last().expect("route");
    assert!(matches!(route.action, Action::Ai(_)));
    assert_eq!(route.retry.attempts, 3);
    assert_eq!(route.limits.connect_timeout, Duration::from_secs(1));
    assert_eq!(route.limits.response_head_timeout, Duration::from_secs(120));
}

#[test]
fn a_broken_provider_or_model_is_reported_once() {
    // The provider's type is wrong; the model naming it and the route
    // naming the model say nothing more.
    let src = with_base(
        "",
        "[[ai-providers]]\nname = \"p\"\ntype = \"x\"\nupstream = \"app\"\n\
         [[ai-models]]\nname = \"m\"\ntargets = [{ provider = \"p\", model = \"x\", weight = 0 }]\n\
         [[routes]]\npath = \"/x\"\n[routes.ai]\nmodels = [\"m\"]\n",
    );
    let errors = common::errors(&src);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["ai-providers[0].type", "ai-models[0].targets[0].weight"]
    );
}

#[test]
fn json_reports_the_same_paths() {
    let json = r#"{
  "listeners": [{ "address": "127.0.0.1:8080" }],
  "upstreams": [{ "name": "app", "servers": ["127.0.0.1:3000"] }],
  "ai-providers": [{ "name": "p", "type": "openai", "upstream": "app", "keys": ["env:K", "env:K"] }],
  "ai-models": [{ "name": "m", "targets": [{ "provider": "p", "model": "x" }] }],
  "routes": [{ "ai": { "models": ["n"] } }]
}"#;
    let errors = Config::from_json_str(json).expect_err("two mistakes");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["ai-providers[0].keys[1]", "routes[0].ai.models[0]"]);
}

#[test]
fn ai_sections_read_back_from_toml_and_json() {
    let extra = r#"
[[ai-providers]]
name = "local"
type = "openai-compatible"
upstream = "app"
base-path = "/api"
query = "a=1&b=2"
key-header = "X-Token"
headers = { "X-Tenant" = "t \"1\"", "x-b" = "" }
keys = ["inline-key-0123", { key = "file:/run/k", tokens-per-minute = 9007199254740993 }]
timeout = "90s"

[[ai-models]]
name = "org/model@v1"
strategy = "weighted"
allow-groups = []
targets = [{ provider = "local", model = "m 1", weight = 7, priority = 3 }]

[[routes]]
path = "/v1/chat/completions"
auth = []
[routes.ai]
models = ["org/model@v1"]
messages = true
max-response-size = "1MB"
"#;
    let config = valid(&ai_config(extra));
    let toml = config.to_toml();
    assert_eq!(Config::from_toml_str(&toml), Ok(config.clone()), "{toml}");
    let json = config.to_json(false);
    assert_eq!(Config::from_json_str(&json), Ok(config.clone()), "{json}");
    assert!(json.contains(
        r#""keys": [
        "inline-key-0123","#
    ));
    assert!(
        json.contains(
            r#""models": [
          "chat",
          "org/model@v1"
        ]"#
        ),
        "a route without `models` is written with the full list:\n{json}"
    );

    // Redacted, the inline key is gone and the output does not load.
    let redacted = config.to_json(true);
    assert!(!redacted.contains("inline-key-0123"), "{redacted}");
    assert!(redacted.contains("\"env:OPENAI_KEY_1\""), "not a secret");
    let errors = Config::from_json_str(&redacted).expect_err("redacted output does not load");
    assert!(
        errors
            .iter()
            .any(|e| e.path == "ai-providers[2].keys[0]" && e.message.contains("redacted")),
        "{errors}"
    );
}

#[test]
fn a_config_without_ai_sections_writes_none() {
    let config = valid(&with_base("", ""));
    let json = config.to_json(false);
    assert!(!json.contains("ai-"), "{json}");
    assert!(config.ai_providers.is_empty() && config.ai_models.is_empty());
}
