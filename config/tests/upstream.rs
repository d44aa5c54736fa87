//! Upstream servers by name, balancing, health checks, outlier detection,
//! the resolver and route retries: their defaults and typed values.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{valid, with_base};
use ringway_config::{
    Balance, BalancePolicy, CheckKind, CheckMethod, HashKey, HealthCheck, OutlierDetection,
    Resolve, Resolver, Retry, RetryOn, ServerAddress, StatusMatch,
};

#[test]
fn an_upstream_without_the_new_keys_gets_their_defaults() {
    let c = valid(&with_base("", ""));
    let up = &c.upstreams[0];
    assert_eq!(up.queue_size, 0, "503 at once, as before queues existed");
    assert_eq!(up.queue_timeout, Duration::from_secs(1));
    assert_eq!(up.slow_start, Duration::ZERO);
    assert_eq!(up.resolve, Resolve::Optional);
    assert_eq!(up.resolve_interval, Duration::from_secs(30));
    assert!(up.fail_open);
    assert_eq!(
        up.balance,
        Balance {
            policy: BalancePolicy::RoundRobin,
            ewma_decay: Duration::from_secs(10),
        }
    );
    assert_eq!(
        up.health_check, None,
        "active checks are off without the table"
    );
    assert_eq!(
        up.outlier,
        OutlierDetection {
            enabled: true,
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    );
    let server = &up.servers[0];
    assert_eq!(
        server.address,
        ServerAddress::Ip("127.0.0.1:3000".parse().expect("address"))
    );
    assert_eq!((server.max_connections, server.backup), (None, false));

    assert_eq!(
        c.resolver,
        Resolver {
            nameservers: None,
            timeout: Duration::from_secs(2),
            hosts_file: Some("/etc/hosts".into()),
        }
    );

    // Without [routes.retry]: one more try after a connect failure only.
    let retry = &c.routes[0].retry;
    assert_eq!(*retry, Retry::default());
    assert_eq!(retry.attempts, 2);
    assert_eq!(retry.on.names(), ["connect-failure"]);
    assert_eq!(retry.per_try_timeout, None);
    assert_eq!(
        (retry.backoff, retry.backoff_max),
        (Duration::from_millis(25), Duration::from_millis(250))
    );
    assert_eq!((retry.budget_percent, retry.budget_min), (20, 3));
    assert!(!retry.retry_non_idempotent);
    assert_eq!(retry.retry_buffer, 64 << 10);
}

#[test]
fn tables_left_empty_get_their_defaults() {
    let c = valid(&with_base(
        "",
        "[upstreams.health-check]\n[[routes]]\npath = \"/r\"\nupstream = \"app\"\n[routes.retry]",
    ));
    assert_eq!(
        c.upstreams[0].health_check,
        Some(HealthCheck {
            kind: CheckKind::Http {
                method: CheckMethod::Get,
                path: "/".into(),
                host: None,
                expect: vec![StatusMatch::Class(2), StatusMatch::Class(3)],
            },
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        })
    );
    let retry = &c.routes[1].retry;
    assert_eq!(
        retry.on.names(),
        [
            "connect-failure",
            "reset-before-response",
            "502",
            "503",
            "504"
        ]
    );
    assert_eq!(
        *retry,
        Retry {
            on: retry.on,
            ..Retry::default()
        },
        "only `on` differs from a route without the table"
    );
}

#[test]
fn every_key_converts_to_its_type() {
    let c = valid(
        r#"
[resolver]
nameservers = ["10.0.0.53", "[::1]:5353"]
timeout = "500ms"
hosts-file = ""

[[listeners]]
address = "127.0.0.1:8080"

[[upstreams]]
name = "app"
servers = [
    "App.Internal:8080",
    { address = "10.0.0.2:8080", weight = 2, max-connections = 10, backup = true },
]
max-connections = 100
queue-size = 50
queue-timeout = "250ms"
slow-start = "30s"
resolve = "required"
resolve-interval = "1m"
fail-open = false
[upstreams.balance]
policy = "hash"
key = "header:X-User"
[upstreams.health-check]
type = "tcp"
interval = "1s"
timeout = "100ms"
[upstreams.outlier-detection]
enabled = false
max-ejected-percent = 100

[[routes]]
upstream = "app"
[routes.retry]
attempts = 3
on = ["timeout", 503, "retriable-4xx"]
per-try-timeout = "1s"
backoff = "0s"
budget-percent = 0
budget-min = 0
retry-non-idempotent = true
retry-buffer = "1MiB"
"#,
    );
    assert_eq!(
        c.resolver.nameservers,
        Some(vec![
            "10.0.0.53:53".parse().expect("address"),
            "[::1]:5353".parse().expect("address"),
        ])
    );
    assert_eq!(c.resolver.timeout, Duration::from_millis(500));
    assert_eq!(c.resolver.hosts_file, None);

    let up = &c.upstreams[0];
    assert_eq!(
        up.servers[0].address,
        ServerAddress::Name {
            host: "app.internal".into(),
            port: 8080,
        }
    );
    assert_eq!(up.servers[0].address.ip(), None);
    assert_eq!(up.servers[0].address.to_string(), "app.internal:8080");
    assert_eq!(up.servers[1].max_connections, NonZeroU32::new(10));
    assert!(up.servers[1].backup && !up.servers[0].backup);
    assert_eq!(
        (up.queue_size, up.queue_timeout, up.slow_start),
        (50, Duration::from_millis(250), Duration::from_secs(30))
    );
    assert_eq!(
        (up.resolve, up.resolve_interval, up.fail_open),
        (Resolve::Required, Duration::from_secs(60), false)
    );
    assert_eq!(
        up.balance.policy,
        BalancePolicy::Hash(HashKey::Header("x-user".into()))
    );
    let check = up.health_check.as_ref().expect("active checks");
    assert_eq!(check.kind, CheckKind::Tcp);
    assert_eq!(
        (check.interval, check.timeout),
        (Duration::from_secs(1), Duration::from_millis(100))
    );
    assert!(!up.outlier.enabled);
    assert_eq!(up.outlier.max_ejected_percent, 100);

    let retry = &c.routes[0].retry;
    assert_eq!(retry.attempts, 3);
    assert_eq!(
        retry.on,
        RetryOn {
            timeout: true,
            status_503: true,
            retriable_4xx: true,
            ..RetryOn::NONE
        }
    );
    assert_eq!(retry.per_try_timeout, Some(Duration::from_secs(1)));
    assert_eq!(retry.backoff, Duration::ZERO);
    assert_eq!((retry.budget_percent, retry.budget_min), (0, 0));
    assert!(retry.retry_non_idempotent);
    assert_eq!(retry.retry_buffer, 1 << 20);
}

#[test]
fn status_matches_cover_their_statuses() {
    let cases = [
        (StatusMatch::Code(404), 404, true),
        (StatusMatch::Code(404), 405, false),
        (StatusMatch::Class(2), 200, true),
        (StatusMatch::Class(2), 299, true),
        (StatusMatch::Class(2), 300, false),
        (StatusMatch::Class(5), 503, true),
    ];
    for (m, status, want) in cases {
        assert_eq!(m.matches(status), want, "{m} vs {status}");
    }
}

#[test]
fn hash_keys_of_every_kind() {
    let cases = [
        ("client-ip", HashKey::ClientIp),
        ("consumer", HashKey::Consumer),
        ("path", HashKey::Path),
        ("header:X-Tenant", HashKey::Header("x-tenant".into())),
        ("cookie:SessionId", HashKey::Cookie("SessionId".into())),
    ];
    for (key, want) in cases {
        let src = with_base(
            "",
            &format!("[upstreams.balance]\npolicy = \"hash\"\nkey = \"{key}\""),
        );
        let c = valid(&src);
        assert_eq!(
            c.upstreams[0].balance.policy,
            BalancePolicy::Hash(want),
            "{key}"
        );
    }
}
