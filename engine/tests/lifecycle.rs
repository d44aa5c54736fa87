//! Lifecycle over real sockets and real processes: graceful shutdown,
//! panic isolation, CPU pinning, signals, and the CLI.

mod support;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ringway::Hooks;
use support::process::*;
use support::*;

#[test]
fn graceful_shutdown_finishes_in_flight_request_and_closes_idle() {
    for driver in DRIVERS {
        let up = TestUpstream::start(|_| {
            Reply::Delay(Duration::from_millis(500), response(200, "slow"))
        });
        let mut gw = TestGateway::proxy_to(up.addr, "", driver);
        let mut idle = gw.client();
        let mut busy = gw.client();
        // Make `idle` a keep-alive connection that has served a request.
        up.requests.store(0, Ordering::SeqCst);
        assert_eq!(idle.get("/").text(), "slow");
        busy.send(b"GET /in-flight HTTP/1.1\r\nHost: t\r\n\r\n");
        wait_until("upstream has the in-flight request", || {
            up.request_count() == 2
        });
        let server = gw.server.take().expect("running");
        server.begin_shutdown();
        // The in-flight request completes, told the connection will close.
        let r = busy.read_response(false).expect("in-flight response");
        assert_eq!((r.status, r.text().as_str()), (200, "slow"));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(busy.is_closed());
        // The idle keep-alive connection is closed.
        assert!(idle.is_closed());
        assert!(server.wait(Duration::from_secs(10)), "workers drained");
        // Nothing listens any more.
        assert!(std::net::TcpStream::connect(gw.addr).is_err());
    }
}

#[test]
fn a_panic_loses_only_its_connection() {
    for driver in DRIVERS {
        let hooks = Hooks {
            panic_on_path: Some("/boom".into()),
            ..Default::default()
        };
        let gw = TestGateway::start_with(
            "workers = 1\n[[routes]]\n[routes.respond]\nbody = \"alive\"\n",
            driver,
            hooks,
        );
        let mut other = gw.client();
        assert_eq!(other.get("/").text(), "alive");
        let mut victim = gw.client();
        victim.send(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(
            victim.read_response(false).is_none(),
            "panicking connection is closed"
        );
        gw.wait_for("panic counted", |t| t.panics == 1);
        // The same worker still serves the open connection and new ones.
        assert_eq!(other.get("/").text(), "alive");
        assert_eq!(gw.client().get("/").text(), "alive");
    }
}

#[test]
fn workers_report_their_driver_and_cpu() {
    let gw = TestGateway::start("workers = 3\n[[routes]]\n[routes.respond]\n", "epoll");
    let workers = gw.server.as_ref().expect("running").workers().to_vec();
    assert_eq!(workers.len(), 3);
    assert!(workers.iter().all(|w| w.driver == "epoll"));
    let allowed = ringway::allowed_cpus();
    assert!(workers.iter().all(|w| allowed.contains(&w.cpu)));
}

#[test]
fn sigterm_drains_in_flight_request_and_exits_zero() {
    let up =
        TestUpstream::start(|_| Reply::Delay(Duration::from_millis(400), response(200, "done")));
    let path = write_config(
        "drain.toml",
        &format!(
            "workers = 1\ndrain-timeout = \"5s\"\n{ADMIN}[[listeners]]\naddress = \"127.0.0.1:0\"\n\
             [[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n[[routes]]\nupstream = \"u\"\n",
            up.addr
        ),
    );
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path);
    let mut p = Process::start(cmd);
    let mut c = TestClient::connect(p.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("upstream has the request", || up.request_count() == 1);
    p.signal("-TERM");
    let r = c.read_response(false).expect("response after SIGTERM");
    assert_eq!(r.text(), "done");
    let status = p.child.wait().expect("exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn second_signal_exits_at_once() {
    let up = TestUpstream::start(|_| Reply::Delay(Duration::from_secs(30), response(200, "never")));
    let path = write_config(
        "second.toml",
        &format!(
            "workers = 1\ndrain-timeout = \"60s\"\n{ADMIN}[[listeners]]\naddress = \"127.0.0.1:0\"\n\
             [[upstreams]]\nname = \"u\"\nservers = [\"{}\"]\n[[routes]]\nupstream = \"u\"\n",
            up.addr
        ),
    );
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(&path);
    let mut p = Process::start(cmd);
    let mut c = TestClient::connect(p.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("upstream has the request", || up.request_count() == 1);
    p.signal("-TERM");
    // Wait until the first signal is being handled: new connections refused.
    wait_until("listener closed", || {
        std::net::TcpStream::connect(p.addr).is_err()
    });
    p.signal("-INT");
    let status = p.child.wait().expect("exit");
    assert_ne!(status.code(), Some(0), "forced exit is not a clean drain");
}

#[test]
fn taskset_keeps_every_thread_on_the_allowed_cpu() {
    if Command::new("taskset").arg("-V").output().is_err() {
        eprintln!("taskset not installed; skipping");
        return;
    }
    let allowed = ringway::allowed_cpus();
    let cpu = *allowed.last().expect("a cpu");
    let path = write_config(
        "pin.toml",
        &format!("{ADMIN}[[listeners]]\naddress = \"127.0.0.1:0\"\n[[routes]]\n[routes.respond]\nbody = \"pinned\"\n"),
    );
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &cpu.to_string(), BIN, "-c"]).arg(&path);
    let p = Process::start(cmd);
    assert_eq!(TestClient::connect(p.addr).get("/").text(), "pinned");
    let pid = p.child.id();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    let mut workers = 0;
    for t in tasks {
        let t = t.expect("task");
        let status = std::fs::read_to_string(t.path().join("status")).expect("status");
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list")
            .trim()
            .to_string();
        assert_eq!(list, cpu.to_string(), "thread {:?}", t.file_name());
        let comm = std::fs::read_to_string(t.path().join("comm")).expect("comm");
        if comm.starts_with("ringway-w") {
            workers += 1;
        }
    }
    assert_eq!(workers, 1, "auto gives one worker for one allowed CPU");
}

#[test]
fn validate_reports_every_error_with_its_path() {
    let good = write_config("good.toml", ringway_config::EXAMPLE_CONFIG);
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));

    let bad = write_config(
        "bad.toml",
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n\
         [[routes]]\nupstream = \"billing\"\n\
         [[routes]]\npath = \"/x\"\nbogus = 1\n[routes.respond]\n",
    );
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes[0].upstream"), "{err}");
    assert!(err.contains("billing"), "{err}");
    assert!(err.contains("routes[1]"), "{err}");
    assert!(err.contains("bogus"), "{err}");
    // Line and column point into the file.
    assert!(err.contains("bad.toml:4:12: routes[0].upstream"), "{err}");
    assert!(err.contains("bad.toml:7:1: routes[1].bogus"), "{err}");
}

#[test]
fn proxy_subcommand_forwards_without_a_config_file() {
    let up = TestUpstream::ok("via proxy");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cmd = Command::new(BIN);
    cmd.args([
        "proxy",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--to",
        &up.addr.to_string(),
        "--workers",
        "1",
    ]);
    let p = Process::start(cmd);
    assert_eq!(TestClient::connect(p.addr).get("/any").text(), "via proxy");
}

#[test]
fn bad_config_file_fails_to_start_with_the_error() {
    let bad = write_config(
        "start-bad.toml",
        "[[listeners]]\naddress = \"nope\"\n[[routes]]\n[routes.respond]\n",
    );
    let out = Command::new(BIN).arg("-c").arg(&bad).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listeners[0].address"));
}

#[test]
fn port_in_use_fails_to_start_naming_the_listener() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let path = write_config(
        "taken.toml",
        &format!(
            "{ADMIN}[[listeners]]\naddress = \"{}\"\n[[routes]]\n[routes.respond]\n",
            taken.local_addr().expect("addr")
        ),
    );
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listeners[0]"), "{err}");
}
