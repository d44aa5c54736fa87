//! What a route's transforms add to the request head sent upstream and to
//! the answer's head: a plain route, four header operations (remove,
//! rename, set with a variable, add), and a regex path rewrite. The cost
//! of a transform is its time minus the plain route's.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use ringway::bench::{parse_request, HeadLimits, Heads};
use ringway_config::{Config, EncodedSlashes};

const CONFIG: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "app"
servers = ["127.0.0.1:3000"]

[[routes]]
name = "plain"
path-prefix = "/plain/"
upstream = "app"

[[routes]]
name = "headers"
path-prefix = "/headers/"
upstream = "app"
[routes.request-headers]
remove = ["x-internal-*"]
rename = { "x-old" = "x-new" }
set = { "x-client" = "$client_ip" }
add = { "x-edge" = "1" }
[routes.response-headers]
remove = ["x-powered-by"]
rename = { "x-old" = "x-new" }
set = { "server" = "edge" }
add = { "x-route" = "$route" }

[[routes]]
name = "regex"
path-prefix = "/users/"
upstream = "app"
rewrite = { regex = "^/users/(\\d+)/orders/(\\d+)$", replace = "/v2/u/$1/o/$2" }
"#;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: origin\r\nDate: Thu, 03 Dec 2026 08:00:00 GMT\r\n\
Content-Type: application/json\r\nCache-Control: no-store\r\nX-Powered-By: php\r\n\
X-Old: 1\r\nETag: \"abc\"\r\nX-Request-Id: 0123456789abcdef0123456789abcdef\r\n";

fn request(path: &str) -> ringway::bench::RequestHead {
    let raw = format!(
        "GET {path} HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\n\
         Accept: application/json\r\nAccept-Encoding: gzip, br\r\n\
         Authorization: Bearer abcdefghijklmnopqrstuvwxyz\r\nX-Internal-Trace: 1\r\n\
         X-Old: v\r\nCookie: a=1; b=2\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
    );
    let limits = HeadLimits {
        max_head: 16384,
        max_headers: 100,
        max_target: 8192,
        slashes: EncodedSlashes::Reject,
        underscores: ringway_config::UnderscoresInHeaders::Drop,
    };
    let mut buf = BytesMut::from(raw.as_bytes());
    let mut headers = Vec::new();
    match parse_request(&mut buf, limits, &mut headers) {
        Ok(Some(head)) => head,
        other => panic!("request parses: {other:?}"),
    }
}

fn transform(c: &mut Criterion) {
    let heads = Heads::new(Config::from_toml_str(CONFIG).expect("valid config"));
    let cases = [
        ("plain", 0, "/plain/users/42/orders/7"),
        ("headers-4-ops", 1, "/headers/users/42/orders/7"),
        ("regex-rewrite", 2, "/users/42/orders/7"),
    ];
    let mut group = c.benchmark_group("transform/request-head");
    let mut out = BytesMut::with_capacity(4096);
    for (name, route, path) in cases {
        let head = request(path);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                heads.request(route, &head, &mut out);
                std::hint::black_box(out.len())
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("transform/response-head");
    for (name, route, path) in [cases[0], cases[1]] {
        let head = request(path);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                heads.response(route, &head, RESPONSE, &mut out);
                std::hint::black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, transform);
criterion_main!(benches);
