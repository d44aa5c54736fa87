//! `GET /metrics` after known traffic: exact counts per route, per
//! upstream server and globally, the whole exposition accepted by
//! `promtool check metrics`, and counters that survive a reload.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// Sends one request on its own connection (`Connection: close`) and
/// returns every byte of the answer.
fn once(addr: SocketAddr, raw: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(raw.as_bytes()).expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

fn status_of(answer: &[u8]) -> u16 {
    std::str::from_utf8(&answer[9..12])
        .expect("status")
        .parse()
        .expect("number")
}

/// The exposition text from the admin API.
fn scrape(admin: SocketAddr) -> (String, String) {
    let answer = once(
        admin,
        &format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"),
    );
    let text = String::from_utf8(answer).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    (head.to_string(), body.to_string())
}

/// Samples by `name{labels}` (as written).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("name and value");
            (k.to_string(), v.parse().expect("a number"))
        })
        .collect()
}

fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key}; have:\n{}", keys(m)))
}

fn keys(m: &BTreeMap<String, f64>) -> String {
    m.keys().cloned().collect::<Vec<_>>().join("\n")
}

/// `promtool check metrics` on the whole text (scripts/test.sh installs
/// promtool, from Debian's `prometheus`).
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/test.sh installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port nothing listens on (bound, then closed).
fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn config(up: SocketAddr, dead: SocketAddr, extra_route: &str) -> String {
    format!(
        r#"
workers = 2

[[consumers]]
name = "ci"
api-keys = ["plain:metrics-test-key"]

[[authenticators]]
name = "keys"
type = "api-key"
header = "x-api-key"

[[upstreams]]
name = "app"
servers = ["{up}"]

[[upstreams]]
name = "gone"
servers = ["{dead}"]

[[routes]]
name = "api"
path-prefix = "/api/"
upstream = "app"

[[routes]]
name = "static"
path-prefix = "/static/"
respond = {{ status = 200, body = "static body" }}

[[routes]]
name = "dead"
path-prefix = "/dead/"
upstream = "gone"

[[routes]]
name = "keyed"
path-prefix = "/keyed/"
auth = ["keys"]
consumer-metrics = true
respond = {{ status = 200, body = "secret" }}
{extra_route}
"#
    )
}

#[test]
fn known_traffic_gives_exact_counts_and_promtool_accepts_the_exposition() {
    let up = TestUpstream::ok("hello");
    let dead = dead_port();
    let gw = TestGateway::start(&config(up.addr, dead, ""), driver());
    let a = gw.addr;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let post = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    };

    let mut api = (0u64, 0u64); // bytes in, bytes out
    for raw in [
        get("/api/1"),
        get("/api/2"),
        get("/api/3"),
        post("/api/4"),
        post("/api/5"),
    ] {
        let answer = once(a, &raw);
        assert_eq!(status_of(&answer), 200);
        api.0 += raw.len() as u64;
        api.1 += answer.len() as u64;
    }
    let mut statics = (0u64, 0u64);
    for i in 0..4 {
        let raw = get(&format!("/static/{i}"));
        let answer = once(a, &raw);
        assert_eq!(status_of(&answer), 200);
        statics.0 += raw.len() as u64;
        statics.1 += answer.len() as u64;
    }
    for _ in 0..2 {
        assert_eq!(status_of(&once(a, &get("/dead/x"))), 502);
    }
    assert_eq!(status_of(&once(a, &get("/keyed/x"))), 401);
    let keyed = "GET /keyed/y HTTP/1.1\r\nHost: x\r\nX-Api-Key: metrics-test-key\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&once(a, keyed)), 200);
    assert_eq!(status_of(&once(a, &get("/nowhere"))), 404);
    let total = 5 + 4 + 2 + 2 + 1;
    gw.wait_for("every request logged", |t| t.requests == total);

    let (head, text) = scrape(gw.admin_addr());
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    promtool_accepts(&text);
    let m = samples(&text);

    // Per route.
    let route = |name: &str, class: &str| {
        value(
            &m,
            &format!("ringway_route_requests_total{{route=\"{name}\",class=\"{class}\"}}"),
        )
    };
    assert_eq!(route("api", "2xx"), 5.0);
    assert_eq!(route("api", "5xx"), 0.0);
    assert_eq!(route("static", "2xx"), 4.0);
    assert_eq!(route("dead", "5xx"), 2.0);
    assert_eq!(route("keyed", "4xx"), 1.0);
    assert_eq!(route("keyed", "2xx"), 1.0);
    assert_eq!(
        value(
            &m,
            "ringway_route_consumer_requests_total{route=\"keyed\",consumer=\"ci\"}"
        ),
        1.0
    );
    assert!(
        !m.keys()
            .any(|k| k.starts_with("ringway_route_consumer_requests_total{route=\"api\"")),
        "only routes that opt in have consumer labels"
    );
    let method = |name: &str, method: &str| {
        value(
            &m,
            &format!(
                "ringway_route_requests_by_method_total{{route=\"{name}\",method=\"{method}\"}}"
            ),
        )
    };
    assert_eq!(method("api", "GET"), 3.0);
    assert_eq!(method("api", "POST"), 2.0);
    assert_eq!(method("api", "PUT"), 0.0);
    assert_eq!(
        value(
            &m,
            "ringway_route_request_duration_seconds_count{route=\"api\"}"
        ),
        5.0
    );
    assert_eq!(
        value(
            &m,
            "ringway_route_request_duration_seconds_bucket{route=\"static\",le=\"+Inf\"}"
        ),
        4.0
    );
    assert!(
        value(
            &m,
            "ringway_route_request_duration_seconds_sum{route=\"api\"}"
        ) > 0.0
    );
    assert_eq!(
        value(&m, "ringway_route_received_bytes_total{route=\"api\"}"),
        api.0 as f64
    );
    assert_eq!(
        value(&m, "ringway_route_sent_bytes_total{route=\"api\"}"),
        api.1 as f64
    );
    assert_eq!(
        value(&m, "ringway_route_received_bytes_total{route=\"static\"}"),
        statics.0 as f64
    );
    assert_eq!(
        value(&m, "ringway_route_sent_bytes_total{route=\"static\"}"),
        statics.1 as f64
    );
    assert_eq!(
        value(
            &m,
            "ringway_route_refused_total{route=\"keyed\",status=\"401\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "ringway_route_refused_total{route=\"api\",status=\"401\"}"
        ),
        0.0
    );

    // Per upstream server.
    let app = format!("upstream=\"app\",server=\"{}\"", up.addr);
    let gone = format!("upstream=\"gone\",server=\"{dead}\"");
    assert_eq!(
        value(&m, &format!("ringway_upstream_requests_total{{{app}}}")),
        5.0
    );
    assert_eq!(
        value(
            &m,
            &format!("ringway_upstream_responses_total{{{app},class=\"2xx\"}}")
        ),
        5.0
    );
    assert_eq!(
        value(
            &m,
            &format!("ringway_upstream_response_head_duration_seconds_count{{{app}}}")
        ),
        5.0
    );
    let connects = value(
        &m,
        &format!("ringway_upstream_connect_duration_seconds_count{{{app}}}"),
    );
    assert_eq!(
        connects,
        up.connection_count() as f64,
        "one connect per upstream connection"
    );
    assert_eq!(
        value(&m, &format!("ringway_upstream_requests_total{{{gone}}}")),
        2.0
    );
    assert_eq!(
        value(
            &m,
            &format!("ringway_upstream_errors_total{{{gone},kind=\"connect_refused\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            &format!("ringway_upstream_errors_total{{{app},kind=\"connect_refused\"}}")
        ),
        0.0
    );
    assert_eq!(
        value(&m, &format!("ringway_upstream_open_connections{{{app}}}")),
        value(&m, &format!("ringway_upstream_idle_connections{{{app}}}")),
        "nothing in use once answered"
    );
    assert_eq!(
        value(&m, &format!("ringway_upstream_open_connections{{{gone}}}")),
        0.0
    );

    // Global.
    assert_eq!(value(&m, "ringway_requests_total{class=\"2xx\"}"), 10.0);
    assert_eq!(value(&m, "ringway_requests_total{class=\"4xx\"}"), 2.0);
    assert_eq!(value(&m, "ringway_requests_total{class=\"5xx\"}"), 2.0);
    assert_eq!(
        value(&m, "ringway_rejected_requests_total{status=\"404\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "ringway_refused_requests_total{status=\"401\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "ringway_upstream_failed_requests_total{status=\"502\"}"),
        2.0
    );
    assert_eq!(
        value(&m, "ringway_connections_accepted_total"),
        total as f64
    );
    assert_eq!(value(&m, "ringway_config_generation"), 1.0);
    assert_eq!(value(&m, "ringway_reloads_total{result=\"success\"}"), 0.0);
    assert_eq!(
        value(
            &m,
            &format!(
                "ringway_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    let drivers = m
        .keys()
        .filter(|k| {
            k.starts_with("ringway_worker_info{") && k.contains(&format!("driver=\"{}\"", driver()))
        })
        .count();
    assert_eq!(drivers, 2, "{}", keys(&m));
    assert!(value(&m, "process_resident_memory_bytes") > 1e6);
    assert!(value(&m, "process_open_fds") >= 3.0);
    assert!(value(&m, "process_start_time_seconds") > 1.6e9);
}

#[test]
fn counters_survive_a_reload_and_new_routes_start_at_zero() {
    let up = TestUpstream::ok("hello");
    let dead = dead_port();
    let gw = TestGateway::start(&config(up.addr, dead, ""), driver());
    for i in 0..3 {
        let raw = format!("GET /static/{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(status_of(&once(gw.addr, &raw)), 200);
    }
    gw.wait_for("requests logged", |t| t.requests == 3);
    let extra = "[[routes]]\nname = \"new\"\npath-prefix = \"/new/\"\nrespond = { status = 204 }\n";
    let next = format!(
        "driver = \"{}\"\n{}\n[[listeners]]\naddress = \"{}\"\n[admin]\naddress = \"{}\"",
        driver(),
        config(up.addr, dead, extra),
        gw.addr,
        gw.admin_addr(),
    );
    gw.handle()
        .reload_source(&next, ringway::Format::Toml)
        .expect("reloads");
    let raw = "GET /new/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&once(gw.addr, raw)), 204);
    gw.wait_for("requests logged", |t| t.requests == 4);

    let (_, text) = scrape(gw.admin_addr());
    promtool_accepts(&text);
    let m = samples(&text);
    assert_eq!(
        value(
            &m,
            "ringway_route_requests_total{route=\"static\",class=\"2xx\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &m,
            "ringway_route_requests_total{route=\"new\",class=\"2xx\"}"
        ),
        1.0
    );
    assert_eq!(value(&m, "ringway_reloads_total{result=\"success\"}"), 1.0);
    assert_eq!(value(&m, "ringway_config_generation"), 2.0);
    assert!(value(&m, "ringway_reload_last_success_timestamp_seconds") > 1.6e9);
    assert_eq!(value(&m, "ringway_reload_propagation_seconds_count"), 1.0);
}

#[test]
fn metrics_can_be_turned_off_per_route_counting() {
    let up = TestUpstream::ok("hello");
    let gw = TestGateway::start(
        &format!(
            "{}\n[metrics]\nenabled = false\n",
            config(up.addr, dead_port(), "")
        ),
        driver(),
    );
    let raw = "GET /static/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&once(gw.addr, raw)), 200);
    gw.wait_for("request logged", |t| t.requests == 1);
    let (_, text) = scrape(gw.admin_addr());
    promtool_accepts(&text);
    let m = samples(&text);
    assert_eq!(
        value(
            &m,
            "ringway_route_requests_total{route=\"static\",class=\"2xx\"}"
        ),
        0.0
    );
    assert_eq!(value(&m, "ringway_requests_total{class=\"2xx\"}"), 1.0);
}

/// A dead upstream's failures are logged at warn with the server and the
/// kind, at most once a second per server (the next line counts the ones
/// left out), so a flood of 502s does not flood the log.
#[test]
fn upstream_failures_are_logged_at_warn_once_a_second_per_server() {
    let dead = dead_port();
    let path = process::write_config(
        "warn-once.toml",
        &format!(
            "[[listeners]]\naddress = \"127.0.0.1:0\"\n{}\n[[upstreams]]\nname = \"gone\"\n\
             servers = [\"{dead}\"]\n[[routes]]\nname = \"dead\"\nupstream = \"gone\"\n",
            process::ADMIN
        ),
    );
    let mut cmd = std::process::Command::new(process::BIN);
    cmd.arg("-c").arg(&path);
    let p = process::Process::start(cmd);
    let began = std::time::Instant::now();
    const N: usize = 20;
    for _ in 0..N {
        let raw = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        assert_eq!(status_of(&once(p.addr, raw)), 502);
    }
    let elapsed = began.elapsed();
    wait_until("a warning", || p.logged("upstream failure"));
    let lines: Vec<String> = p
        .log
        .lock()
        .expect("log")
        .iter()
        .filter(|l| l.contains("upstream failure"))
        .cloned()
        .collect();
    for l in &lines {
        assert!(l.contains(" WARN "), "{l}");
        assert!(l.contains(&format!("server={dead}")), "{l}");
        assert!(l.contains("upstream=gone"), "{l}");
        assert!(l.contains("kind=\"connect_refused\""), "{l}");
    }
    // One line per second the failures spanned, at most.
    let most = elapsed.as_secs() as usize + 2;
    assert!(
        lines.len() <= most && lines.len() < N,
        "{} lines for {N} failures in {elapsed:?}",
        lines.len()
    );
}
