//! CORS routes allocate nothing per request in steady state: after a
//! warm-up that fills the pools, preflights, proxied answers whose `Vary`
//! is merged and whose own CORS header is replaced, disallowed origins,
//! cache hits and built-in answers, all on `[routes.cors]` routes, make
//! no allocation on the worker threads (a counting global allocator
//! tallies those on threads named `ringway-w*`).

mod support;

use support::*;

#[global_allocator]
static GLOBAL: support::counting::Counting = support::counting::Counting;

#[test]
fn cors_requests_do_not_allocate() {
    for driver in DRIVERS {
        steady_state(driver);
    }
}

fn steady_state(driver: &str) {
    let up = TestUpstream::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVary: Accept-Encoding\r\n\
              Cache-Control: max-age=3600\r\nAccess-Control-Allow-Origin: *\r\n\r\nhello"
                .to_vec(),
        )
    });
    let cors =
        "[routes.cors]\nallow-origins = [\"https://app.example.com\", \"https://*.example.org\"]\n\
                expose-headers = [\"X-Total\"]\nallow-credentials = true\nmax-age = \"10m\"\n";
    let toml = format!(
        "workers = 1\n[[upstreams]]\nname = \"up\"\nservers = [\"{}\"]\n\
         [[routes]]\npath-prefix = \"/proxy/\"\nupstream = \"up\"\n{cors}\
         [[routes]]\npath-prefix = \"/cached/\"\nupstream = \"up\"\n[routes.cache]\n{cors}\
         [[routes]]\npath = \"/local\"\n[routes.respond]\nbody = \"hi\"\n{cors}",
        up.addr
    );
    let hooks = ringway::Hooks {
        busy_window: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    let gw = TestGateway::start_with(&toml, driver, hooks);
    let requests: [&[u8]; 5] = [
        b"GET /proxy/x HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example.com\r\n\r\n",
        b"OPTIONS /proxy/x HTTP/1.1\r\nHost: t\r\nOrigin: https://a.example.org\r\n\
          Access-Control-Request-Method: PUT\r\n\
          Access-Control-Request-Headers: content-type, x-custom\r\n\r\n",
        b"GET /proxy/x HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.test\r\n\r\n",
        b"GET /cached/x HTTP/1.1\r\nHost: t\r\nOrigin: https://b.example.org\r\n\r\n",
        b"GET /local HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example.com\r\n\r\n",
    ];
    let round = |c: &mut TestClient| {
        for raw in requests {
            c.send(raw);
            let r = c.read_response(false).expect("an answer");
            assert!(matches!(r.status, 200 | 204), "{r:?}");
            assert!(
                r.header("vary").is_some_and(|v| v.contains("Origin")),
                "{r:?}"
            );
        }
    };
    let mut clients: Vec<TestClient> = (0..4).map(|_| gw.client()).collect();
    let during = support::counting::allocs_in_steady_state(&mut clients, 200, 250, round);
    assert_eq!(
        during,
        0,
        "driver={driver}: {during} allocations on the worker over {} requests",
        250 * requests.len() * clients.len()
    );
    assert_eq!(
        gw.totals().cors_preflights,
        450 * clients.len() as u64,
        "driver={driver}"
    );
}
