//! Reload triggers of the real binary: SIGHUP, `--watch` (including the
//! write-to-temp-then-rename that editors do), and the `ringway reload` and
//! `ringway status` commands.

mod support;

use std::process::Command;

use support::process::*;
use support::*;

fn responder(body: &str) -> String {
    format!(
        "workers = 2\n{ADMIN}[[listeners]]\naddress = \"127.0.0.1:0\"\n\
         [[routes]]\npath = \"/v\"\n[routes.respond]\nbody = \"{body}\"\n"
    )
}

fn body_at(p: &Process) -> String {
    TestClient::connect(p.addr).get("/v").text()
}

#[test]
fn sighup_reloads_the_file_and_a_bad_file_changes_nothing() {
    let path = write_config("hup.toml", &responder("v1"));
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path);
    let p = Process::start(cmd);
    assert_eq!(body_at(&p), "v1");

    std::fs::write(&path, responder("v2")).expect("write");
    p.signal("-HUP");
    wait_until("v2 served", || body_at(&p) == "v2");

    std::fs::write(
        &path,
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[[routes]]\nupstream = \"gone\"\n",
    )
    .expect("write");
    p.signal("-HUP");
    wait_until("rejection logged", || p.logged("reload rejected"));
    assert!(p.logged("routes[0].upstream"), "the log names the field");
    assert_eq!(body_at(&p), "v2");
    let (_, status) = admin_call(p.admin_addr(), "GET", "/status", &[], b"");
    assert_eq!(status["reloads"]["failed"], 1);
    assert_eq!(status["generation"], 2);
}

#[test]
fn watch_reloads_on_rename_over_the_file_and_on_write() {
    // A directory of its own: other tests write their files next to theirs.
    let path = write_config("watched/ringway.toml", &responder("v1"));
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path).arg("--watch");
    let p = Process::start(cmd);
    wait_until("watching", || p.logged("watching config file"));
    assert_eq!(body_at(&p), "v1");

    // What editors and config managers do: write elsewhere, rename over.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, responder("v2")).expect("write temp");
    std::fs::rename(&tmp, &path).expect("rename over");
    wait_until("v2 served", || body_at(&p) == "v2");

    // And a plain write in place.
    std::fs::write(&path, responder("v3")).expect("write");
    wait_until("v3 served", || body_at(&p) == "v3");

    // Several events per save, one reload each.
    let (_, status) = admin_call(p.admin_addr(), "GET", "/status", &[], b"");
    assert_eq!(status["reloads"]["succeeded"], 2, "{status}");
}

#[test]
fn watch_tries_a_bad_file_once_whatever_else_changes_beside_it() {
    let path = write_config("watched-noisy/ringway.toml", &responder("v1"));
    let log = path.with_file_name("access.log");
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path).arg("--watch");
    let p = Process::start(cmd);
    wait_until("watching", || p.logged("watching config file"));

    std::fs::write(&path, "[[routes]]\nupstream = \"gone\"\n").expect("write");
    let failed = || {
        let (_, status) = admin_call(p.admin_addr(), "GET", "/status", &[], b"");
        status["reloads"]["failed"].as_u64().expect("failed")
    };
    wait_until("the bad file rejected", || failed() == 1);
    // A busy file beside the config: each write is an event in the
    // watched directory, spread out so each is seen on its own.
    for i in 0..10 {
        std::fs::write(&log, format!("line {i}\n")).expect("write log");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Events are handled in order: once a good file is running, every
    // write before it has been looked at.
    std::fs::write(&path, responder("v2")).expect("write");
    wait_until("v2 served", || body_at(&p) == "v2");
    assert_eq!(failed(), 1, "the same bad bytes were tried again");
    let (_, status) = admin_call(p.admin_addr(), "GET", "/status", &[], b"");
    assert_eq!(status["reloads"]["succeeded"], 1, "{status}");
}

#[test]
fn reload_and_status_commands_talk_to_the_admin_api() {
    let path = write_config("cli.toml", &responder("v1"));
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path);
    let p = Process::start(cmd);
    let admin = p.admin_addr().to_string();

    // Re-read the server's own file.
    std::fs::write(&path, responder("v2")).expect("write");
    let out = Command::new(BIN)
        .args(["reload", "--admin", &admin])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reloaded: generation 2"), "{stdout}");
    assert_eq!(body_at(&p), "v2");

    // Send another file's contents.
    let other = write_config("cli-other.toml", &responder("v3"));
    let out = Command::new(BIN)
        .args(["reload", "--admin", &admin])
        .arg(&other)
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(body_at(&p), "v3");

    // A refused config: exit 1 and the field path.
    let bad = write_config(
        "cli-bad.toml",
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[[routes]]\nupstream = \"gone\"\n",
    );
    let out = Command::new(BIN)
        .args(["reload", "--admin", &admin])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("4:12: routes[0].upstream"), "{stderr}");
    assert_eq!(body_at(&p), "v3");

    let out = Command::new(BIN)
        .args(["status", "--admin", &admin])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("generation 3, ready"), "{stdout}");
    assert!(stdout.contains("worker 0 cpu"), "{stdout}");
    assert!(stdout.contains("2 succeeded, 1 failed"), "{stdout}");

    // Nothing listening: exit 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let out = Command::new(BIN)
        .args(["status", "--admin", &nowhere])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn status_shows_per_route_rates_errors_and_upstream_failures_after_known_traffic() {
    let up = TestUpstream::ok("hello");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let path = write_config(
        "status-traffic.toml",
        &format!(
            "workers = 2\n{ADMIN}[[listeners]]\naddress = \"127.0.0.1:0\"\n\
             [[upstreams]]\nname = \"app\"\nservers = [\"{}\"]\n\
             [[upstreams]]\nname = \"gone\"\nservers = [\"{dead}\"]\n\
             [[routes]]\nname = \"api\"\npath-prefix = \"/api/\"\nupstream = \"app\"\n\
             [[routes]]\nname = \"static\"\npath-prefix = \"/static/\"\n[routes.respond]\nbody = \"s\"\n\
             [[routes]]\nname = \"dead\"\npath-prefix = \"/dead/\"\nupstream = \"gone\"\n",
            up.addr
        ),
    );
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path);
    let p = Process::start(cmd);
    for (path, n, status) in [
        ("/api/x", 5, 200),
        ("/static/x", 4, 200),
        ("/dead/x", 3, 502),
    ] {
        for _ in 0..n {
            assert_eq!(TestClient::connect(p.addr).get(path).status, status);
        }
    }
    let admin = p.admin_addr();
    let counted = || {
        let (_, stats) = admin_call(admin, "GET", "/stats", &[], b"");
        stats["totals"]["requests"].as_u64() == Some(12)
    };
    wait_until("every request counted", counted);

    let out = Command::new(BIN)
        .args(["status", "--admin", &admin.to_string(), "--interval", "0.2"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |start: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?}:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert!(stdout.contains("generation 1, ready"), "{stdout}");
    assert!(
        stdout.contains("requests: 12 (0 1xx, 9 2xx, 0 3xx, 0 4xx, 3 5xx)"),
        "{stdout}"
    );
    assert!(stdout.contains("over 0.2 s: no requests"), "{stdout}");
    // ROUTE REQ/S REQUESTS 2XX 3XX 4XX 5XX 4XX% 5XX% P50 P99, in config
    // order; no traffic in the interval, so shares and quantiles are
    // since start, marked.
    let header = row("ROUTE");
    assert_eq!(header[..4], ["ROUTE", "REQ/S", "REQUESTS", "2XX"]);
    assert_eq!(row("api ")[..7], ["api", "0.0", "5", "5", "0", "0", "0"]);
    assert_eq!(row("static ")[..3], ["static", "0.0", "4"]);
    assert_eq!(row("dead ")[..7], ["dead", "0.0", "3", "0", "0", "0", "3"]);
    assert_eq!(row("dead ")[8], "100.0%*");
    assert!(stdout.contains("* since start"), "{stdout}");
    // UPSTREAM SERVER HEALTH REQUESTS ERRORS OPEN IDLE ERRORS BY KIND
    let gone = row("gone ");
    assert_eq!(gone[1], dead.to_string());
    assert_eq!(gone[3..5], ["3", "3"]);
    assert_eq!(gone[7..], ["connect_refused", "3"]);
    assert_eq!(row("app ")[3..5], ["5", "0"]);
    assert!(stdout.contains("cache: hit ratio -"), "{stdout}");
}
