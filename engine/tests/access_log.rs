//! The access log, seen from outside: for every outcome the log file gets
//! exactly one line with the request's facts; the combined format has
//! nginx's layout; routes can be left out, successes sampled, queries
//! hidden; the file is reopened after rotation (admin API and SIGUSR1); a
//! reload changes where and how lines are written; and a stalled writer
//! makes the workers drop records (counted), never wait.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ringway::Hooks;
use ringway_config::Config;
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::process::*;
use support::tls::*;
use support::*;

/// A fresh directory for one test's log files.
fn log_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("ringway-test-{}", std::process::id()))
        .join("access-log")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

/// The `[access-log]` table writing to `path`, with extra keys.
fn access_log(path: &Path, extra: &str) -> String {
    format!(
        "[access-log]\nenabled = true\npath = '{}'\n{extra}\n",
        path.display()
    )
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `path` holds at least `n` lines; returns them all.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    wait_until(&format!("{n} lines in {}", path.display()), || {
        lines(path).len() >= n
    });
    lines(path)
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn status_of(raw: &[u8]) -> u16 {
    String::from_utf8_lossy(&raw[..raw.len().min(12)])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes()
}

/// What one case's line must say.
struct Want {
    raw: Vec<u8>,
    status: u16,
    route: Option<&'static str>,
    cache: Option<&'static str>,
    error: Option<(&'static str, &'static str)>,
    /// Whether the answer came from an upstream (so the upstream fields
    /// and the time to its response head are set).
    upstream: Option<SocketAddr>,
}

fn want(raw: Vec<u8>, status: u16, route: Option<&'static str>) -> Want {
    Want {
        raw,
        status,
        route,
        cache: None,
        error: None,
        upstream: None,
    }
}

#[test]
fn every_outcome_writes_one_line_with_its_fields() {
    for driver in DRIVERS {
        let origin = TestUpstream::start(|s| match s.target.as_str() {
            "/slow" => Reply::Delay(
                Duration::from_secs(5),
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            ),
            "/huge" => Reply::Stream(256 << 20),
            "/cached" => Reply::Raw(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 6\r\n\r\ncached"
                    .to_vec(),
            ),
            _ => Reply::Raw(response(200, "proxied")),
        });
        let key = Sha256::digest(b"log-key")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let dead = closed_port();
        let file = log_dir(&format!("outcomes-{driver}")).join("access.log");
        let toml = format!(
            "workers = 1\n{log}\
             [[upstreams]]\nname = \"up\"\nservers = [\"{up}\"]\n\
             [[upstreams]]\nname = \"down\"\nservers = [\"{dead}\"]\n\
             [[consumers]]\nname = \"alice\"\napi-keys = [\"sha256:{key}\"]\n\
             [[authenticators]]\nname = \"keys\"\ntype = \"api-key\"\n\
             [[routes]]\nname = \"hello\"\npath = \"/hello\"\n[routes.respond]\nbody = \"hi\"\n\
             [[routes]]\nname = \"private\"\npath = \"/private\"\nupstream = \"up\"\nauth = [\"keys\"]\n\
             [[routes]]\nname = \"limited\"\npath = \"/limited\"\nupstream = \"up\"\n\
             [[routes.rate-limits]]\nkey = \"route\"\nrate = \"1/h\"\n\
             [[routes]]\nname = \"small\"\npath = \"/small\"\nupstream = \"up\"\n\
             [routes.limits]\nmax-body-size = \"10B\"\n\
             [[routes]]\nname = \"dead\"\npath = \"/dead\"\nupstream = \"down\"\n\
             [[routes]]\nname = \"slow\"\npath = \"/slow\"\nupstream = \"up\"\n\
             [routes.limits]\nresponse-head-timeout = \"300ms\"\n\
             [[routes]]\nname = \"cached\"\npath = \"/cached\"\nupstream = \"up\"\n[routes.cache]\n\
             [[routes]]\nname = \"proxied\"\npath-prefix = \"/p\"\nupstream = \"up\"\n\
             [[routes]]\nname = \"huge\"\npath = \"/huge\"\nupstream = \"up\"\n",
            log = access_log(&file, ""),
            up = origin.addr,
        );
        let gw = TestGateway::start(&toml, driver);
        let up = Some(origin.addr);
        let cases = vec![
            Want {
                error: Some(("not_found", "downstream")),
                ..want(get("/nowhere"), 404, None)
            },
            want(get("/hello"), 200, Some("hello")),
            Want {
                error: Some(("unauthorized", "downstream")),
                ..want(get("/private"), 401, Some("private"))
            },
            Want {
                upstream: up,
                ..want(
                    b"GET /private HTTP/1.1\r\nHost: t\r\nX-Api-Key: log-key\r\nConnection: close\r\n\r\n"
                        .to_vec(),
                    200,
                    Some("private"),
                )
            },
            Want {
                upstream: up,
                ..want(get("/limited"), 200, Some("limited"))
            },
            Want {
                error: Some(("too_many_requests", "downstream")),
                ..want(get("/limited"), 429, Some("limited"))
            },
            Want {
                error: Some(("body_too_large", "downstream")),
                ..want(
                    b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
                        .to_vec(),
                    413,
                    Some("small"),
                )
            },
            Want {
                error: Some(("bad_gateway", "upstream")),
                upstream: Some(dead),
                ..want(get("/dead"), 502, Some("dead"))
            },
            Want {
                error: Some(("gateway_timeout", "upstream")),
                upstream: up,
                ..want(get("/slow"), 504, Some("slow"))
            },
            Want {
                cache: Some("miss"),
                upstream: up,
                ..want(get("/cached"), 200, Some("cached"))
            },
            Want {
                cache: Some("hit"),
                ..want(get("/cached"), 200, Some("cached"))
            },
            Want {
                upstream: up,
                ..want(
                    b"GET /p/x?y=1&z=%22 HTTP/1.1\r\nHost: t\r\nUser-Agent: agent \"7\"\r\n\
                      Referer: https://ref.example/a\r\nConnection: close\r\n\r\n"
                        .to_vec(),
                    200,
                    Some("proxied"),
                )
            },
            Want {
                error: Some(("bad_request", "downstream")),
                ..want(b"GET /x HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n".to_vec(), 400, None)
            },
        ];
        let mut n = 0;
        for case in &cases {
            let raw = &case.raw;
            let what =
                String::from_utf8_lossy(&raw[..raw.iter().position(|&b| b == b'\r').unwrap_or(0)])
                    .to_string();
            let got = exchange(gw.addr, raw, usize::MAX);
            assert_eq!(status_of(&got), case.status, "{driver} {what}");
            n += 1;
            let all = wait_lines(&file, n);
            assert_eq!(all.len(), n, "{driver} {what}: one line per request");
            let l = json(&all[n - 1]);
            let ctx = format!("{driver} {what}: {l}");
            assert_eq!(l["status"], case.status, "{ctx}");
            assert_eq!(l["route"].as_str(), case.route, "{ctx}");
            assert_eq!(l["cache"].as_str(), case.cache, "{ctx}");
            assert_eq!(
                (l["error_kind"].as_str(), l["error_side"].as_str()),
                case.error.map_or((None, None), |(k, s)| (Some(k), Some(s))),
                "{ctx}"
            );
            let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
            // A body refused unread (413) is not part of what the request
            // consumed; a malformed head (400) is what was read of it.
            let consumed = if case.status == 413 {
                head_len
            } else {
                raw.len()
            };
            if case.status != 400 {
                assert_eq!(l["bytes_in"], consumed as u64, "{ctx}");
            }
            assert_eq!(l["bytes_out"], got.len() as u64, "{ctx}");
            let seconds = |k: &str| l[k].as_f64();
            let duration = seconds("duration").expect("duration");
            let first = seconds("first_byte").expect("an answer was sent");
            assert!(first <= duration, "{ctx}");
            let upstream = case.upstream.map(|a| a.to_string());
            assert_eq!(l["upstream_server"].as_str(), upstream.as_deref(), "{ctx}");
            // The upstream's response head came when it answered.
            let answered = case.upstream.is_some() && case.status < 500;
            assert_eq!(seconds("upstream_head").is_some(), answered, "{ctx}");
            assert_eq!(
                l["upstream"].as_str(),
                case.upstream.map(|a| if a == dead { "down" } else { "up" }),
                "{ctx}"
            );
            if case.upstream == Some(dead) {
                assert!(l["upstream_connect"].is_null(), "connect failed: {ctx}");
            }
            if case.route.is_none() && case.status == 400 {
                // Refused before a head was read whole.
                assert!(l["method"].is_null() && l["path"].is_null(), "{ctx}");
                assert!(l["protocol"].is_null(), "{ctx}");
            } else {
                let line = what.split(' ').collect::<Vec<_>>();
                let (path, query) = match line[1].split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (line[1], None),
                };
                assert_eq!(l["method"], line[0], "{ctx}");
                assert_eq!(l["path"], path, "{ctx}");
                assert_eq!(l["query"].as_str(), query, "{ctx}");
                assert_eq!(l["protocol"], "HTTP/1.1", "{ctx}");
                assert_eq!(l["host"], "t", "{ctx}");
            }
            assert_eq!(l["client_ip"], "127.0.0.1", "{ctx}");
            assert!(l["client_port"].as_u64().is_some_and(|p| p > 0), "{ctx}");
            assert_eq!(l["listener"], "listener-0", "{ctx}");
            assert!(
                l["tls_version"].is_null() && l["tls_sni"].is_null(),
                "{ctx}"
            );
            // The request ID the client got, and the trace it started.
            let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
            let id = text
                .split("\r\n")
                .find_map(|h| h.strip_prefix("x-request-id: "))
                .expect("an X-Request-Id on every answer");
            assert_eq!(l["request_id"], id, "{ctx}");
            let trace = l["trace_id"].as_str().expect("a trace id");
            assert!(
                trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()),
                "{ctx}"
            );
            let time = l["time"].as_str().expect("time");
            assert_eq!(time.len(), 24, "{ctx}");
            assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{ctx}");
            let consumer = (case.route == Some("private") && case.status == 200).then_some("alice");
            assert_eq!(l["consumer"].as_str(), consumer, "{ctx}");
        }
        let last = json(&lines(&file)[n - 2]);
        assert_eq!(last["user_agent"], "agent \"7\"", "{driver}");
        assert_eq!(last["referer"], "https://ref.example/a", "{driver}");
        assert_eq!(last["query"], "y=1&z=%22", "{driver}");

        // A client gone in the middle of a body: one line, the status that
        // was sent, the bytes that were, the client gone.
        let got = exchange(gw.addr, b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n", 1 << 20);
        assert_eq!(status_of(&got), 200);
        n += 1;
        let l = json(&wait_lines(&file, n)[n - 1]);
        assert_eq!(
            (l["status"].as_u64(), l["route"].as_str()),
            (Some(200), Some("huge"))
        );
        assert_eq!(l["error_kind"], "client_gone", "{driver}");
        assert_eq!(l["error_side"], "downstream", "{driver}");
        let out = l["bytes_out"].as_u64().expect("bytes");
        assert!(
            out >= got.len() as u64 && out < 256 << 20,
            "{driver}: {out}"
        );

        // Exactly once each: nothing more once every request was counted.
        gw.wait_for("counted", |t| t.requests == n as u64);
        drop(gw);
        assert_eq!(lines(&file).len(), n, "{driver}: one line per request");
        assert!(lines(&file).iter().all(|l| json(l).is_object()));
    }
}

#[test]
fn a_combined_line_has_the_nginx_layout() {
    for driver in DRIVERS {
        let origin = TestUpstream::ok("hello");
        let file = log_dir(&format!("combined-{driver}")).join("access.log");
        let extra = access_log(&file, "format = \"combined\"");
        let gw = TestGateway::proxy_to(origin.addr, &extra, driver);
        let raw = b"GET /a/b?c=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: curl/8.5.0 \"x\"\r\n\
                    Referer: https://example.com/\r\nConnection: close\r\n\r\n";
        let got = exchange(gw.addr, raw, usize::MAX);
        assert_eq!(status_of(&got), 200);
        let line = wait_lines(&file, 1).remove(0);
        // 127.0.0.1 - - [02/Jan/2026:15:04:05 +0000] "GET ..." 200 N "ref" "agent"
        let (start, rest) = line.split_once(" [").expect("time opens");
        let (time, rest) = rest.split_once("] ").expect("time closes");
        assert_eq!(start, "127.0.0.1 - -", "{line}");
        let b = time.as_bytes();
        assert_eq!(time.len(), 26, "{line}");
        assert_eq!(
            (b[2], b[6], b[11], b[14], b[17]),
            (b'/', b'/', b':', b':', b':')
        );
        assert!(time.ends_with(" +0000"), "{line}");
        let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
        assert!(months.contains(&time[3..6]), "{line}");
        assert!(
            time.chars().enumerate().all(
                |(i, c)| matches!(i, 2 | 3..=5 | 6 | 11 | 14 | 17 | 20..) || c.is_ascii_digit()
            ),
            "{line}"
        );
        assert_eq!(
            rest,
            format!(
                "\"GET /a/b?c=1 HTTP/1.1\" 200 {} \"https://example.com/\" \"curl/8.5.0 \\x22x\\x22\"",
                got.len()
            ),
            "{driver}"
        );
    }
}

#[test]
fn a_route_left_out_writes_nothing_and_sampling_keeps_only_errors() {
    for driver in DRIVERS {
        let dir = log_dir(&format!("routes-{driver}"));
        let file = dir.join("access.log");
        let toml = format!(
            "workers = 1\n{}\
             [[routes]]\nname = \"quiet\"\npath = \"/quiet\"\naccess-log = false\n[routes.respond]\n\
             [[routes]]\nname = \"loud\"\npath = \"/loud\"\n[routes.respond]\n\
             [[routes]]\nname = \"teapot\"\npath = \"/teapot\"\n[routes.respond]\nstatus = 418\n",
            access_log(&file, "sample = 0")
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c = gw.client();
        // Successes sampled at 0 are dropped; a route left out writes
        // nothing, even for an error; errors are always written.
        for (path, status) in [
            ("/loud", 200),
            ("/quiet", 200),
            ("/nowhere", 404),
            ("/loud", 200),
            ("/teapot", 418),
        ] {
            assert_eq!(c.get(path).status, status, "{driver} {path}");
        }
        gw.wait_for("counted", |t| t.requests == 5);
        let got = wait_lines(&file, 2);
        let statuses: Vec<Value> = got.iter().map(|l| json(l)["status"].clone()).collect();
        assert_eq!(statuses, [404, 418], "{driver}: {got:?}");
        drop(gw);
        assert_eq!(lines(&file).len(), 2, "{driver}");

        // With every success kept, the left-out route still writes nothing.
        let file = dir.join("all.log");
        let toml = toml.replace(
            &access_log(&dir.join("access.log"), "sample = 0"),
            &access_log(&file, ""),
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c = gw.client();
        for path in ["/quiet", "/loud"] {
            assert_eq!(c.get(path).status, 200, "{driver} {path}");
        }
        let got = wait_lines(&file, 1);
        assert_eq!(json(&got[0])["route"], "loud", "{driver}");
        drop(gw);
        assert_eq!(lines(&file).len(), 1, "{driver}: {:?}", lines(&file));
    }
}

#[test]
fn query_false_leaves_the_query_out() {
    for driver in DRIVERS {
        let origin = TestUpstream::ok("hello");
        let dir = log_dir(&format!("query-{driver}"));
        let (json_file, clf_file) = (dir.join("a.json"), dir.join("a.log"));
        for (file, format) in [(&json_file, "json"), (&clf_file, "combined")] {
            let extra = access_log(file, &format!("query = false\nformat = \"{format}\""));
            let gw = TestGateway::proxy_to(origin.addr, &extra, driver);
            let got = exchange(gw.addr, &get("/a?token=secret"), usize::MAX);
            assert_eq!(status_of(&got), 200);
            wait_lines(file, 1);
        }
        let l = json(&lines(&json_file)[0]);
        assert_eq!(
            (l["path"].as_str(), l["query"].as_str()),
            (Some("/a"), None),
            "{driver}"
        );
        let clf = &lines(&clf_file)[0];
        assert!(clf.contains("\"GET /a HTTP/1.1\""), "{driver}: {clf}");
        assert!(!clf.contains("secret"), "{driver}: {clf}");
        // The upstream still got it.
        assert_eq!(origin.last().target, "/a?token=secret");
    }
}

#[test]
fn tls_requests_log_the_version_and_the_sni() {
    for driver in DRIVERS {
        let ca = Ca::new("Log CA");
        let (cert, key) = write_pair("log-a", &ca.issue(&["a.test"]));
        let file = log_dir(&format!("tls-{driver}")).join("access.log");
        let toml = format!(
            "workers = 1\n{}\
             [[listeners]]\naddress = \"127.0.0.1:0\"\n[listeners.tls]\n\
             certificates = [{{ cert = '{}', key = '{}' }}]\n\
             [[routes]]\n[routes.respond]\nbody = \"hi\"\n",
            access_log(&file, ""),
            cert.display(),
            key.display()
        );
        let gw = TestGateway::start(&toml, driver);
        let mut c =
            TestClient::connect_tls(gw.addr, client(&ca, None), "a.test").expect("handshake");
        assert_eq!(c.get("/x").status, 200);
        let l = json(&wait_lines(&file, 1)[0]);
        assert_eq!(l["tls_version"], "TLSv1.3", "{driver}");
        assert_eq!(l["tls_sni"], "a.test", "{driver}");
    }
}

fn admin(gw: &TestGateway, method: &str, path: &str) -> (u16, Value) {
    admin_call(gw.admin_addr(), method, path, &[], b"")
}

#[test]
fn reopen_after_rotation_writes_to_a_new_file() {
    for driver in DRIVERS {
        let dir = log_dir(&format!("reopen-{driver}"));
        let (file, rotated) = (dir.join("access.log"), dir.join("access.log.1"));
        let toml = format!(
            "workers = 2\n{}[[routes]]\n[routes.respond]\nbody = \"hi\"\n",
            access_log(&file, "")
        );
        let gw = TestGateway::start(&toml, driver);
        assert_eq!(gw.client().get("/before").status, 200);
        wait_lines(&file, 1);
        // logrotate's `create` mode: rename, then tell the gateway.
        std::fs::rename(&file, &rotated).expect("rename");
        let (status, body) = admin(&gw, "POST", "/logs/reopen");
        assert_eq!(
            (status, &body["reopened"]),
            (200, &Value::Bool(true)),
            "{body}"
        );
        assert!(file.exists(), "{driver}: reopening creates the file");
        assert_eq!(gw.client().get("/after").status, 200);
        let now = wait_lines(&file, 1);
        assert_eq!(json(&now[0])["path"], "/after", "{driver}");
        let old = lines(&rotated);
        assert_eq!(old.len(), 1, "{driver}: {old:?}");
        assert_eq!(json(&old[0])["path"], "/before", "{driver}");
        assert_eq!(admin(&gw, "GET", "/logs/reopen").0, 405);
    }
}

#[test]
fn sigusr1_reopens_the_file_of_the_binary() {
    let dir = log_dir("sigusr1");
    let (file, rotated) = (dir.join("access.log"), dir.join("access.log.1"));
    let config = format!(
        "workers = 1\n{ADMIN}{}[[listeners]]\naddress = \"127.0.0.1:0\"\n\
         [[routes]]\n[routes.respond]\nbody = \"hi\"\n",
        access_log(&file, "")
    );
    let path = write_config("access-log-usr1.toml", &config);
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path);
    let p = Process::start(cmd);
    assert_eq!(TestClient::connect(p.addr).get("/before").status, 200);
    wait_lines(&file, 1);
    std::fs::rename(&file, &rotated).expect("rename");
    p.signal("-USR1");
    wait_until("the file reopened", || file.exists());
    assert_eq!(TestClient::connect(p.addr).get("/after").status, 200);
    let now = wait_lines(&file, 1);
    assert_eq!(json(&now[0])["path"], "/after");
    let old = lines(&rotated);
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(json(&old[0])["path"], "/before");
    assert!(p.logged("access log reopened"));
}

#[test]
fn a_reload_changes_the_path_and_format_and_turns_the_log_off_and_on() {
    for driver in DRIVERS {
        let dir = log_dir(&format!("reload-{driver}"));
        let routes = "[[routes]]\n[routes.respond]\nbody = \"hi\"\n";
        let listener = "[[listeners]]\naddress = \"127.0.0.1:0\"\n";
        let config = |log: &str| {
            format!("driver = \"{driver}\"\nworkers = 2\n{log}{routes}{listener}{ADMIN}")
        };
        let (a, b, c) = (dir.join("a.log"), dir.join("b.log"), dir.join("c.log"));
        let gw = TestGateway::start(&config(&access_log(&a, "")), driver);
        let plane = gw.handle();
        assert_eq!(gw.client().get("/one").status, 200);
        wait_lines(&a, 1);

        let reload = |src: String| {
            plane
                .reload_source(&src, ringway::Format::Toml)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let r = reload(config(&access_log(&b, "format = \"combined\"")));
        assert!(r.restart_required.is_empty(), "{:?}", r.restart_required);
        assert_eq!(gw.client().get("/two").status, 200);
        let got = wait_lines(&b, 1);
        assert!(
            got[0].contains("\"GET /two HTTP/1.1\" 200"),
            "{driver}: {got:?}"
        );

        reload(config("[access-log]\nenabled = false\n"));
        assert_eq!(gw.client().get("/three").status, 200);
        gw.wait_for("counted", |t| t.requests == 3);
        let r = reload(config(&access_log(&c, "queue = 5")));
        assert_eq!(r.restart_required, ["access-log.queue"], "{driver}");
        assert_eq!(gw.client().get("/four").status, 200);
        let got = wait_lines(&c, 1);
        assert_eq!(json(&got[0])["path"], "/four", "{driver}");
        drop(gw);
        assert_eq!(lines(&a).len(), 1, "{driver}");
        assert_eq!(lines(&b).len(), 1, "{driver}");
        assert_eq!(
            lines(&c).len(),
            1,
            "{driver}: the request made while off is not there"
        );

        // A path that cannot be opened refuses the reload, and the running
        // log stays.
        let gw = TestGateway::start(&config(&access_log(&a, "")), driver);
        let bad = dir.join("missing-dir").join("x.log");
        let e = gw
            .handle()
            .reload_source(&config(&access_log(&bad, "")), ringway::Format::Toml)
            .expect_err("cannot open");
        assert!(e.to_string().contains("access-log.path"), "{e}");
        assert_eq!(gw.client().get("/five").status, 200);
        let got = wait_lines(&a, 2);
        assert_eq!(json(&got[1])["path"], "/five", "{driver}");
    }
}

#[test]
fn a_path_that_cannot_be_opened_stops_the_start() {
    let bad = log_dir("start").join("missing").join("x.log");
    let src = format!(
        "{}[[listeners]]\naddress = \"127.0.0.1:0\"\n[[routes]]\n[routes.respond]\n{ADMIN}",
        access_log(&bad, "")
    );
    let config = Config::from_toml_str(&src).expect("valid config");
    let e = ringway::Server::start(config).err().expect("refused");
    assert!(
        e.to_string().starts_with("access-log.path: cannot open"),
        "{e}"
    );
}

/// A gate the writer waits at while it is shut.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().expect("lock");
        while !*open {
            open = cv.wait(open).expect("lock");
        }
    }

    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().expect("lock") = true;
        cv.notify_all();
    }
}

#[test]
fn a_stalled_writer_makes_workers_drop_records_not_wait() {
    const QUEUE: usize = 4;
    const SENT: usize = 10;
    for driver in DRIVERS {
        let file = log_dir(&format!("stall-{driver}")).join("access.log");
        let gate = Gate::default();
        let waiting = gate.clone();
        let hooks = Hooks {
            log_writer_stall: Some(Arc::new(move || waiting.wait())),
            ..Default::default()
        };
        let toml = format!(
            "workers = 1\n{}[[routes]]\n[routes.respond]\nbody = \"hi\"\n",
            access_log(&file, &format!("queue = {QUEUE}"))
        );
        let gw = TestGateway::start_with(&toml, driver, hooks);
        // Every request is answered while the writer takes nothing.
        let mut c = gw.client();
        for i in 0..SENT {
            assert_eq!(c.get(&format!("/r{i}")).status, 200, "{driver} /r{i}");
        }
        let dropped = (SENT - QUEUE) as u64;
        wait_until("drops counted", || {
            admin(&gw, "GET", "/status").1["totals"]["access_log_dropped"] == dropped
        });
        assert_eq!(gw.totals().access_log_dropped, dropped, "{driver}");
        let metrics = {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(gw.admin_addr()).expect("admin");
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .expect("send");
            let mut text = String::new();
            s.read_to_string(&mut text).expect("read");
            text
        };
        assert!(
            metrics
                .lines()
                .any(|l| l == format!("ringway_access_log_dropped_total {dropped}")),
            "{driver}: the drops in /metrics"
        );
        assert!(lines(&file).is_empty(), "{driver}: the writer is stalled");
        gate.open();
        wait_lines(&file, QUEUE);
        drop(gw);
        let got: Vec<String> = lines(&file)
            .iter()
            .map(|l| json(l)["path"].as_str().expect("path").to_owned())
            .collect();
        let want: Vec<String> = (0..QUEUE).map(|i| format!("/r{i}")).collect();
        assert_eq!(got, want, "{driver}: the queued records, in order");
    }
}
