//! Route matching among 1,000 routes: hits on each kind of route and a miss.

use criterion::{criterion_group, criterion_main, Criterion};
use ringway::bench::{Match, Router};
use ringway_benches::route_table;
use ringway_config::Config;

fn route(c: &mut Criterion) {
    let config = Config::from_toml_str(&route_table(1000)).expect("valid generated config");
    let router = Router::new(&config);
    // (name, authority, path, method)
    type Case = (&'static str, &'static [u8], &'static [u8], &'static [u8]);
    let cases: &[Case] = &[
        (
            "exact-host-exact-path",
            b"svc0.example.com",
            b"/api/v0/resource0",
            b"GET",
        ),
        (
            "wildcard-host-prefix",
            b"a.tenant1.example.com:443",
            b"/api/v1/group1/items/7",
            b"POST",
        ),
        (
            "any-host-prefix",
            b"unknown.example.org",
            b"/static/998/app.js",
            b"GET",
        ),
        ("miss", b"unknown.example.org", b"/nothing/here", b"GET"),
    ];
    let mut group = c.benchmark_group("route/1000");
    for (name, host, path, method) in cases {
        let m = router.route(host, path, method);
        assert!(
            matches!(m, Match::Route(_)) || *name == "miss",
            "{name}: {m:?}"
        );
        group.bench_function(*name, |b| {
            b.iter(|| std::hint::black_box(router.route(host, path, method)))
        });
    }
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
