//! The configs shipped inside the crate: the built-in default and the
//! documented example must always validate and say what they claim.

mod common;

use common::valid;
use ringway_config::{
    Action, AiProviderKind, AiStrategy, AuthKind, CheckKind, ClientAuthMode, Config,
    EncodedSlashes, KeyMaterial, PathMatch, SecretSource, TlsVersion, UnderscoresInHeaders,
    UnknownSni, Workers, DEFAULT_CONFIG, EXAMPLE_CONFIG,
};

fn respond<'a>(config: &'a Config, path: &str) -> &'a ringway_config::Responder {
    let route = config
        .routes
        .iter()
        .find(|r| r.path == PathMatch::Exact(path.into()))
        .unwrap_or_else(|| panic!("default config has no route for {path}"));
    match &route.action {
        Action::Respond(responder) => responder,
        other => panic!("{path} should answer from the responder, got {other:?}"),
    }
}

fn header<'a>(responder: &'a ringway_config::Responder, name: &str) -> Option<&'a str> {
    responder
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn default_config_serves_its_routes_on_localhost_8080() {
    let c = valid(DEFAULT_CONFIG);
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(
        c.listeners[0].address,
        "127.0.0.1:8080".parse().expect("address")
    );
    assert!(c.upstreams.is_empty());

    let welcome = respond(&c, "/");
    assert_eq!(welcome.status, 200);
    assert!(header(welcome, "content-type").is_some_and(|v| v.starts_with("text/plain")));
    for mention in ["/healthz", "/hello", "ringway -c", "ringway validate"] {
        assert!(
            welcome.body.contains(mention),
            "welcome text lacks {mention:?}"
        );
    }

    let health = respond(&c, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    let hello = respond(&c, "/hello");
    assert_eq!(hello.status, 200);
    assert_eq!(header(hello, "content-type"), Some("application/json"));
    assert!(hello.body.trim_start().starts_with('{') && hello.body.trim_end().ends_with('}'));
}

#[test]
fn default_config_keeps_the_admin_api_on_loopback_as_it_says() {
    let c = valid(DEFAULT_CONFIG);
    assert!(c.admin.enabled);
    assert_eq!(c.admin.address, "127.0.0.1:9901".parse().expect("address"));
    assert_eq!(c.admin.token, None);
    assert!(DEFAULT_CONFIG.contains("127.0.0.1:9901"));
    assert!(
        !DEFAULT_CONFIG.lines().any(|l| l.trim() == "[admin]"),
        "the default config relies on the [admin] defaults"
    );
}

#[test]
fn default_config_commented_proxy_example_works_when_uncommented() {
    let commented_start = DEFAULT_CONFIG
        .find("# [[upstreams]]")
        .expect("default config shows an upstream example");
    let mut src = DEFAULT_CONFIG[..commented_start].to_owned();
    for line in DEFAULT_CONFIG[commented_start..].lines() {
        src.push_str(
            line.strip_prefix("# ")
                .unwrap_or(line.trim_start_matches('#')),
        );
        src.push('\n');
    }
    let c = valid(&src);
    assert_eq!(c.upstreams.len(), 1);
    assert_eq!(
        c.upstreams[0].servers[0].address.ip(),
        Some("127.0.0.1:3000".parse().expect("address"))
    );
    let api = c.routes.last().expect("the uncommented route");
    assert_eq!(api.path, PathMatch::Prefix("/api/".into()));
    assert_eq!(api.action, Action::Upstream(0));
}

#[test]
fn example_config_validates() {
    let c = valid(EXAMPLE_CONFIG);
    assert_eq!(c.workers, Workers::Auto);
    assert!(c.listeners.len() >= 2 && c.upstreams.len() >= 2 && c.routes.len() >= 3);
    // A shipped example that warned would teach people to ignore warnings.
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    assert!(valid(DEFAULT_CONFIG).warnings.is_empty());
}

#[test]
fn example_config_shows_the_access_log_defaults_and_a_route_left_out() {
    let c = valid(EXAMPLE_CONFIG);
    let defaults = valid(DEFAULT_CONFIG).access_log;
    let a = &c.access_log;
    assert!(!a.enabled, "the example must start without a log directory");
    assert_eq!(
        a.path,
        ringway_config::LogTarget::File("/var/log/ringway/access.log".into())
    );
    assert_eq!(
        (a.format, a.sample, a.query, a.queue),
        (
            defaults.format,
            defaults.sample,
            defaults.query,
            defaults.queue
        )
    );
    let unlogged: Vec<&str> = c
        .routes
        .iter()
        .filter(|r| !r.access_log)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(unlogged, ["healthz"]);
}

#[test]
fn example_config_caps_one_upstream_keeps_encoded_slashes_refused_and_replaces_request_ids() {
    let c = valid(EXAMPLE_CONFIG);
    let caps: Vec<(&str, Option<u32>)> = c
        .upstreams
        .iter()
        .map(|u| (u.name.as_str(), u.max_connections.map(|n| n.get())))
        .collect();
    assert_eq!(
        caps,
        [
            ("app", None),
            ("billing", Some(256)),
            ("sessions", Some(200))
        ]
    );
    assert!(c
        .listeners
        .iter()
        .all(|l| l.encoded_slashes == EncodedSlashes::Reject));
    assert!(c
        .listeners
        .iter()
        .all(|l| l.underscores_in_headers == UnderscoresInHeaders::Drop));
    assert!(c.listeners.iter().all(|l| !l.trust_request_id));
}

#[test]
fn example_config_shows_a_policy_of_each_kind() {
    let c = valid(EXAMPLE_CONFIG);
    assert_eq!(c.consumers.len(), 2);
    let kinds: Vec<&str> = c
        .authenticators
        .iter()
        .map(|a| match a.kind {
            AuthKind::ApiKey { .. } => "api-key",
            AuthKind::Basic { .. } => "basic",
            AuthKind::Jwt(_) => "jwt",
        })
        .collect();
    assert_eq!(kinds, ["api-key", "basic", "jwt"]);
    let policed = c
        .routes
        .iter()
        .find(|r| !r.auth.is_empty())
        .expect("a route with auth");
    assert!(!policed.allow_groups.is_empty());
    assert_eq!(policed.rate_limits.len(), 2);
    assert!(policed.concurrency.is_some());
    assert!(!policed.ip_rules.allow.is_empty() && !policed.ip_rules.deny.is_empty());
    // The JWT key is a real PEM public key, which the engine will parse.
    let AuthKind::Jwt(jwt) = &c.authenticators[2].kind else {
        panic!("jwt");
    };
    let KeyMaterial::Pem(pem) = &jwt.keys[0].material else {
        panic!("a pem key");
    };
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"), "{pem}");
}

#[test]
fn example_config_shows_a_caching_route_and_leaves_the_default_without_one() {
    let c = valid(EXAMPLE_CONFIG);
    let cached: Vec<&str> = c
        .routes
        .iter()
        .filter(|r| r.cache.is_some())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(cached, ["catalog"]);
    let cache = c
        .routes
        .iter()
        .find_map(|r| r.cache.as_ref())
        .expect("cache");
    // Its own store, and every key option shown.
    assert!(cache.size.is_some());
    assert!(cache.sort_query);
    assert!(!cache.ignore_params.is_empty() && !cache.key_headers.is_empty());
    assert!(valid(DEFAULT_CONFIG)
        .routes
        .iter()
        .all(|r| r.cache.is_none()));
}

#[test]
fn example_config_shows_the_true_defaults() {
    // The example sets every global key to its documented default, so it
    // must equal a config that leaves them all out.
    let example = valid(EXAMPLE_CONFIG);
    let minimal = valid("[[listeners]]\naddress = \"127.0.0.1:1\"\n[[routes]]\n[routes.respond]\n");
    assert_eq!(example.limits, minimal.limits);
    assert_eq!(example.workers, minimal.workers);
    assert_eq!(example.driver, minimal.driver);
    assert_eq!(example.drain_timeout, minimal.drain_timeout);
    // The example sets a token, which has no default.
    assert_eq!(example.admin.enabled, minimal.admin.enabled);
    assert_eq!(example.admin.address, minimal.admin.address);
    assert_eq!(minimal.admin.token, None);
    assert_eq!(example.client_ip, minimal.client_ip);
    assert_eq!(example.ip_rules, minimal.ip_rules);
    assert_eq!(example.cache, minimal.cache);
    assert_eq!(example.resolver, minimal.resolver);

    // Each authenticator sets its optional keys to their defaults, and
    // so does the route that uses them, except where it shows a choice.
    let defaults = valid(&format!(
        "{}\n{}",
        "[[listeners]]\naddress = \"127.0.0.1:1\"\n[[upstreams]]\nname = \"u\"\nservers = [\"127.0.0.1:2\"]",
        "[[authenticators]]\nname = \"k\"\ntype = \"api-key\"\n\
         [[authenticators]]\nname = \"b\"\ntype = \"basic\"\n\
         [[authenticators]]\nname = \"j\"\ntype = \"jwt\"\nalgorithms = [\"ES256\"]\njwks-file = \"j\"\n\
         [[routes]]\nupstream = \"u\"\nauth = [\"k\"]\n\
         [[routes.rate-limits]]\nkey = \"route\"\nrate = \"1/s\"\n\
         [routes.concurrency]\nkey = \"route\"\nmax = 1",
    ));
    let [ex_key, ex_basic, ex_jwt] = &example.authenticators[..] else {
        panic!("three authenticators");
    };
    let [key, basic, jwt] = &defaults.authenticators[..] else {
        panic!("three authenticators");
    };
    match (&ex_key.kind, &key.kind) {
        (AuthKind::ApiKey { header: a, .. }, AuthKind::ApiKey { header: b, .. }) => {
            assert_eq!(a, b)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ex_basic.kind, basic.kind);
    match (&ex_jwt.kind, &jwt.kind) {
        (AuthKind::Jwt(a), AuthKind::Jwt(b)) => {
            assert_eq!(
                (a.leeway, &a.consumer_claim, a.cache_size),
                (b.leeway, &b.consumer_claim, b.cache_size)
            );
        }
        other => panic!("{other:?}"),
    }
    // The first upstream sets every balancing, queue and passive check key
    // to its default; one route sets every retry key to its default.
    let (ex_up, up) = (&example.upstreams[0], &defaults.upstreams[0]);
    assert_eq!(
        (ex_up.queue_size, ex_up.queue_timeout, ex_up.slow_start),
        (up.queue_size, up.queue_timeout, up.slow_start)
    );
    assert_eq!(
        (ex_up.resolve, ex_up.resolve_interval, ex_up.fail_open),
        (up.resolve, up.resolve_interval, up.fail_open)
    );
    assert_eq!(ex_up.balance, up.balance);
    assert_eq!(ex_up.outlier, up.outlier);
    let checked = valid(
        "[[listeners]]\naddress = \"127.0.0.1:1\"\n[[upstreams]]\nname = \"u\"\n\
         servers = [\"127.0.0.1:2\"]\n[upstreams.health-check]\n\
         [[routes]]\nupstream = \"u\"\n[routes.retry]",
    );
    let ex_check = example
        .upstreams
        .iter()
        .find_map(|u| u.health_check.as_ref())
        .expect("an upstream with active checks");
    let check = checked.upstreams[0].health_check.as_ref().expect("checks");
    assert_eq!(
        (ex_check.interval, ex_check.timeout),
        (check.interval, check.timeout)
    );
    assert_eq!(
        (ex_check.healthy_threshold, ex_check.unhealthy_threshold),
        (check.healthy_threshold, check.unhealthy_threshold)
    );
    match (&ex_check.kind, &check.kind) {
        (
            CheckKind::Http {
                method: a,
                expect: x,
                ..
            },
            CheckKind::Http {
                method: b,
                expect: y,
                ..
            },
        ) => assert_eq!((a, x), (b, y)),
        other => panic!("{other:?}"),
    }
    let ex_retry = &example
        .routes
        .iter()
        .find(|r| r.name == "billing-api")
        .expect("the billing-api route")
        .retry;
    assert_eq!(*ex_retry, checked.routes[0].retry);

    let ex_route = example
        .routes
        .iter()
        .find(|r| !r.auth.is_empty())
        .expect("a route with auth");
    let route = &defaults.routes[0];
    assert_eq!(ex_route.forward_credentials, route.forward_credentials);
    assert_eq!(ex_route.consumer_header, route.consumer_header);
    assert_eq!(
        ex_route.rate_limits[0].max_keys,
        route.rate_limits[0].max_keys
    );
    let (ex_c, c) = (
        ex_route.concurrency.as_ref().expect("concurrency"),
        route.concurrency.as_ref().expect("concurrency"),
    );
    assert_eq!(ex_c.max_keys, c.max_keys);
}

#[test]
fn example_config_documents_every_key() {
    let keys = [
        "workers =",
        "driver =",
        "connection-balance =",
        "drain-timeout =",
        "[limits]",
        "max-target-length =",
        "max-head-size =",
        "max-headers =",
        "max-body-size =",
        "header-read-timeout =",
        "keepalive-timeout =",
        "connect-timeout =",
        "response-head-timeout =",
        "body-idle-timeout =",
        "send-timeout =",
        "upstream-idle-timeout =",
        "upstream-max-idle =",
        "max-connections =",
        "encoded-slashes =",
        "underscores-in-headers =",
        "trust-request-id =",
        "[access-log]",
        "path =",
        "format =",
        "sample =",
        "query =",
        "queue =",
        "access-log =",
        "[admin]",
        "enabled =",
        "token =",
        "[[listeners]]",
        "[[upstreams]]",
        "servers =",
        "weight =",
        "[[routes]]",
        "host =",
        "path =",
        "path-prefix =",
        "methods =",
        "upstream =",
        "host-header =",
        "[routes.respond]",
        "status =",
        "headers =",
        "body =",
        "[routes.limits]",
        "name =",
        "address =",
        "[client-ip]",
        "trusted-proxies =",
        "[ip-rules]",
        "allow =",
        "deny =",
        "[[consumers]]",
        "groups =",
        "api-keys =",
        "basic =",
        "username =",
        "password-hash =",
        "[[authenticators]]",
        "type =",
        "header =",
        "query =",
        "realm =",
        "cache-size =",
        "cache-ttl =",
        "algorithms =",
        "[[authenticators.keys]]",
        "kid =",
        "pem =",
        "issuer =",
        "audience =",
        "leeway =",
        "consumer-claim =",
        "ip-allow =",
        "ip-deny =",
        "auth =",
        "allow-groups =",
        "forward-credentials =",
        "consumer-header =",
        "rate-limit-headers =",
        "[[routes.rate-limits]]",
        "key =",
        "rate =",
        "burst =",
        "max-keys =",
        "[routes.concurrency]",
        "max =",
        "[cache]",
        "size =",
        "max-entry-size =",
        "lock-timeout =",
        "[routes.cache]",
        "sort-query =",
        "ignore-params =",
        "key-headers =",
        "[resolver]",
        "timeout =",
        "hosts-file =",
        "backup =",
        "queue-size =",
        "queue-timeout =",
        "slow-start =",
        "resolve =",
        "resolve-interval =",
        "fail-open =",
        "[upstreams.balance]",
        "policy =",
        "[upstreams.health-check]",
        "method =",
        "expect =",
        "interval =",
        "healthy-threshold =",
        "unhealthy-threshold =",
        "[upstreams.outlier-detection]",
        "consecutive-failures =",
        "base-ejection =",
        "max-ejection =",
        "max-ejected-percent =",
        "[routes.retry]",
        "attempts =",
        "on =",
        "per-try-timeout =",
        "backoff =",
        "backoff-max =",
        "budget-percent =",
        "budget-min =",
        "retry-non-idempotent =",
        "retry-buffer =",
        "[routes.cors]",
        "allow-origins =",
        "allow-methods =",
        "allow-headers =",
        "expose-headers =",
        "allow-credentials =",
        "max-age =",
        "allow-private-network =",
    ];
    // Set, not only mentioned in a comment, so the example proves it parses.
    let set: Vec<&str> = EXAMPLE_CONFIG
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for key in keys {
        assert!(
            set.iter()
                .any(|l| l.starts_with(key) || l.contains(&format!(" {key}"))),
            "example.toml never sets {key:?}"
        );
    }
    // Keys that cannot be set in a valid example without a file or a
    // secret it does not have (or, for the route's HTTPS keys, without a
    // warning); each is shown in a comment instead.
    for key in [
        "jwks-file =",
        "secret =",
        "plain:",
        "sha256sum",
        "hash-password",
        "[listeners.tls]",
        "[[listeners.tls.certificates]]",
        "cert =",
        "names =",
        "unknown-sni =",
        "min-version =",
        "cipher-suites =",
        "handshake-timeout =",
        "session-cache =",
        "session-tickets =",
        "ticket-lifetime =",
        "[listeners.tls.client-auth]",
        "mode =",
        "ca =",
        "subject-header =",
        "[upstreams.tls]",
        "server-name =",
        "verify =",
        "client-cert =",
        "client-key =",
        "sni =",
        "redirect-https =",
        "https-port =",
        "hsts =",
        "require-client-cert =",
        "nameservers =",
        "ewma-decay =",
        "ewma",
        "least-request",
        "random",
        "header:NAME",
        "client-ip",
        "\"tcp\"",
        "HEAD",
        "OPTIONS",
        "\"required\"",
        "\"retriable-4xx\"",
        "[[ai-providers]]",
        "[[ai-models]]",
        "[routes.ai]",
        "base-path =",
        "key-header =",
        "keys =",
        "requests-per-minute =",
        "tokens-per-minute =",
        "strategy =",
        "max-tokens-default =",
        "targets =",
        "provider =",
        "model =",
        "priority =",
        "models =",
        "messages =",
        "max-response-size =",
        "\"openai-compatible\"",
        "\"gemini\"",
        "\"weighted\"",
        "file:",
    ] {
        assert!(
            EXAMPLE_CONFIG
                .lines()
                .any(|l| l.trim_start().starts_with('#') && l.contains(key)),
            "example.toml never mentions {key:?}"
        );
    }
    for rule in [
        "Deny wins",
        "403 Forbidden",
        "401 Unauthorized",
        "429 Too Many Requests",
        "from the right",
        "must never be",
        "loopback",
        "restart",
        "applies on reload",
        "exact host",
        "wildcard host",
        "longer prefix",
        "listing methods",
        "written first",
        "half a store",
        "per worker",
        "308 Permanent Redirect",
        "SNI",
        "mTLS",
        "not taken from this file's directory",
        "%2F",
        "%5C",
        "can then be bypassed",
        "No progress for this long",
        "never cut off",
        "408",
        "503 Service Unavailable",
        "Maglev",
        "at least 10ms and less than",
        "at least base-ejection",
        "at least backoff",
        "proxying routes only: when a failed request",
    ] {
        assert!(
            EXAMPLE_CONFIG.contains(rule),
            "example.toml does not explain {rule:?}"
        );
    }
}

/// The example with every commented-out block (from a line starting
/// `# [[` to the next blank line) uncommented.
fn example_uncommented() -> String {
    let mut src = String::new();
    let mut in_block = false;
    for line in EXAMPLE_CONFIG.lines() {
        in_block = line.starts_with("# [[") || (in_block && !line.trim().is_empty());
        let line = if in_block {
            line.strip_prefix("# ").unwrap_or(line)
        } else {
            line
        };
        src.push_str(line);
        src.push('\n');
    }
    src
}

#[test]
fn example_config_commented_ai_gateway_works_when_uncommented() {
    let c = valid(&example_uncommented());
    let provider = |name: &str| {
        c.ai_providers
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("provider {name}"))
    };
    let (openai, anthropic, azure) = (provider("openai"), provider("anthropic"), provider("azure"));
    assert_eq!(openai.kind, AiProviderKind::OpenAi);
    assert_eq!(c.upstreams[openai.upstream].name, "openai-api");
    assert_eq!(anthropic.kind, AiProviderKind::Anthropic);
    assert_eq!(anthropic.base_path, "/v1");
    assert_eq!(
        openai.keys[1].source,
        SecretSource::File("/run/secrets/openai-2".into())
    );
    assert_eq!(azure.kind, AiProviderKind::OpenAiCompatible);
    assert_eq!(azure.key_header.as_deref(), Some("api-key"));

    // One model, OpenAI first and Anthropic after it.
    let [chat] = &c.ai_models[..] else {
        panic!("one model")
    };
    assert_eq!(chat.strategy, AiStrategy::Fallback);
    let order: Vec<(&str, u32)> = chat
        .targets
        .iter()
        .map(|t| (c.ai_providers[t.provider].name.as_str(), t.priority))
        .collect();
    assert_eq!(order, [("openai", 0), ("anthropic", 1)]);

    let llm = c
        .routes
        .iter()
        .find(|r| r.name == "llm")
        .expect("the AI route");
    let Action::Ai(ai) = &llm.action else {
        panic!("an AI route")
    };
    assert_eq!((ai.models.as_slice(), ai.messages), ([0].as_slice(), true));
}

#[test]
fn example_config_commented_tls_works_when_uncommented() {
    let c = valid(&example_uncommented());
    // The listener asks for client certificates, so the route that needs
    // one does not warn, and neither does its redirect.
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);

    let https = c
        .listeners
        .iter()
        .find(|l| l.name == "https")
        .expect("the uncommented listener");
    let tls = https.tls.as_ref().expect("an HTTPS listener");
    assert_eq!(tls.certificates.len(), 2);
    assert!(tls.certificates[0].names.is_empty());
    assert_eq!(tls.certificates[1].names, ["*.example.org", "example.org"]);
    assert_eq!(tls.unknown_sni, UnknownSni::Default);
    assert_eq!(tls.min_version, TlsVersion::Tls12);
    assert_eq!(tls.cipher_suites.len(), 2);
    let auth = tls.client_auth.as_ref().expect("client-auth");
    assert_eq!(auth.mode, ClientAuthMode::Optional);

    // The uncommented listener shows every default but cipher-suites.
    let defaults = valid(
        "[[listeners]]\naddress = \"127.0.0.1:1\"\n[listeners.tls]\n\
         certificates = [{ cert = \"c\", key = \"k\" }]\n\
         [listeners.tls.client-auth]\nmode = \"optional\"\nca = \"c\"\n\
         [[routes]]\n[routes.respond]\n",
    );
    let plain = defaults.listeners[0].tls.as_ref().expect("tls");
    assert_eq!(
        (
            tls.handshake_timeout,
            tls.session_cache,
            tls.session_tickets,
            tls.ticket_lifetime
        ),
        (
            plain.handshake_timeout,
            plain.session_cache,
            plain.session_tickets,
            plain.ticket_lifetime
        )
    );
    let plain_auth = plain.client_auth.as_ref().expect("client-auth");
    assert_eq!(auth.subject_header, plain_auth.subject_header);

    let secure = c
        .upstreams
        .iter()
        .find(|u| u.name == "secure")
        .expect("the uncommented upstream");
    let upstream_tls = secure.tls.as_ref().expect("TLS to the upstream");
    assert!(upstream_tls.verify && upstream_tls.sni);
    assert!(upstream_tls.client_cert.is_some() && upstream_tls.client_key.is_some());

    let partners = c
        .routes
        .iter()
        .find(|r| r.name == "partners")
        .expect("the uncommented route");
    assert!(partners.redirect_https && partners.require_client_cert);
    assert_eq!(partners.https_port, Some(8443));
    assert!(partners.hsts.is_some());
}
