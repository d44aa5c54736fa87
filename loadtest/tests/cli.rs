//! The built binary: exit codes (0 targets met, 1 a target failed, 2
//! usage or setup error), scenario errors with the path of the bad key,
//! and `compare`'s table.

mod support;

use std::process::{Command, Output};

use support::{response, Reply, TestServer};

fn ringway_load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringway-load"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn ok_server() -> TestServer {
    TestServer::start(|_| Reply::Send(response(200, "ok")))
}

#[test]
fn targets_decide_the_exit_code() {
    let server = ok_server();
    let url = server.url("/");
    let base = ["-c", "2", "-t", "1", "-d", "500ms", url.as_str()];

    let pass = ringway_load(&[&base[..], &["--p99", "10s", "--max-error-rate", "0"]].concat());
    let (out, err) = text(&pass);
    assert_eq!(pass.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("PASS p99 <= 10.0s (measured "), "{out}");
    assert!(
        out.contains("PASS error rate <= 0.00% (measured 0.00%, 0 errors)"),
        "{out}"
    );

    let fail = ringway_load(&[&base[..], &["--p50", "1ns", "--min-rate", "1"]].concat());
    let (out, err) = text(&fail);
    assert_eq!(fail.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("FAIL p50 <= 1ns (measured "), "{out}");
    assert!(out.contains("PASS rate >= 1.0/s"), "{out}");

    // No targets: 0, whatever the latency.
    let none = ringway_load(&base);
    assert_eq!(none.status.code(), Some(0));

    // Unexpected statuses fail an explicit expect-status target.
    let not_found = TestServer::start(|_| Reply::Send(response(404, "no")));
    let url = not_found.url("/");
    let o = ringway_load(&["-c", "1", "-d", "300ms", "--expect-status", "2xx", &url]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL status in 2xx ("), "{out}");
}

#[test]
fn usage_and_setup_errors_exit_2() {
    let server = ok_server();
    let url = server.url("/");
    let cases: &[(&[&str], &str)] = &[
        (&["--rate", "lots", &url], "--rate: `lots` is not a rate"),
        (&["--p99", "5", &url], "--p99: `5` needs a unit"),
        (&["--no-such-flag", &url], "--no-such-flag"),
        (&["ftp://127.0.0.1/"], "must start with http:// or https://"),
        (
            &["--window", "1500ms", &url],
            "--window: `1.50s` is not a whole number of seconds",
        ),
        (&[], "URL: missing"),
    ];
    for (args, want) in cases {
        let o = ringway_load(args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }

    // Nothing listening: a setup error before the run, not a run of
    // connect errors.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let o = ringway_load(&["-d", "1s", &format!("http://{closed}/")]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains(&format!("cannot connect to {closed}")),
        "{err}"
    );
}

#[test]
fn bad_scenario_file_names_the_key() {
    let dir = std::env::temp_dir().join(format!("ringway-load-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "url = \"http://127.0.0.1:1\"\n\
         [[requests]]\npath = \"/a\"\n\
         [[requests]]\npath = \"/b\"\nwieght = 3\n\
         [targets]\np99 = \"soon\"\n",
    )
    .expect("write");
    let o = ringway_load(&["--scenario", path.to_str().expect("utf-8 path")]);
    let (out, err) = text(&o);
    let _ = std::fs::remove_file(&path);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    let shown = path.display().to_string();
    assert!(
        err.contains(&format!(
            "{shown}: requests[1].wieght: unknown field (did you mean `weight`?)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{shown}: targets.p99: `soon` is not a duration")),
        "{err}"
    );
}

#[test]
fn the_example_scenario_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scenario.toml");
    let built = ringway_loadtest::scenario::check_file(std::path::Path::new(path))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.plan.requests.len(), 3);
    assert!(built.plan.load.is_open());
    assert_eq!(
        built.plan.load.duration(),
        std::time::Duration::from_secs(45)
    );
    assert!(built.targets.p99.is_some());
}

#[test]
fn compare_prints_medians_and_ratios() {
    let a = ok_server();
    let b = TestServer::start(|_| {
        Reply::Stall(std::time::Duration::from_millis(2), response(200, "ok"))
    });
    let o = ringway_load(&[
        "compare",
        &a.url("/"),
        &b.url("/"),
        "--rounds",
        "2",
        "-c",
        "2",
        "-t",
        "1",
        "-d",
        "500ms",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("medians of 2 rounds"), "{out}");
    for figure in ["rate", "p50", "p90", "p99", "p99.9", "max", "error rate"] {
        assert!(
            out.lines().any(|l| l.starts_with(figure)),
            "{figure} missing:\n{out}"
        );
    }
    assert_eq!(err.matches("round ").count(), 4, "{err}");
    // B holds every response 2 ms: A's median p50 is well below B's.
    let p50 = out
        .lines()
        .find(|l| l.starts_with("p50"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|r| r.parse::<f64>().ok())
        .expect("p50 ratio");
    assert!(p50 < 0.9, "A/B p50 ratio {p50}:\n{out}");
}

#[test]
fn json_plot_hdr_log_and_windows_are_written() {
    let server = ok_server();
    let dir = std::env::temp_dir().join(format!("ringway-load-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (json, svg, hlog) = (dir.join("r.json"), dir.join("r.svg"), dir.join("r.hlog"));
    let o = ringway_load(&[
        "-c",
        "2",
        "-t",
        "1",
        "--rate",
        "200",
        "-d",
        "1500ms",
        "--json",
        json.to_str().expect("utf-8"),
        "--plot",
        svg.to_str().expect("utf-8"),
        "--hdr-log",
        hlog.to_str().expect("utf-8"),
        "--window",
        "1s",
        &server.url("/"),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid JSON");
    assert_eq!(report["mode"], "open");
    assert_eq!(report["responses"], 300);
    assert_eq!(report["statuses"]["200"], 300);
    assert!(report["service_time"]["p99_us"].as_u64().is_some());
    // Every answer has a body ("ok"), so every response has a first byte.
    assert_eq!(report["first_byte"]["count"], 300);
    assert!(out.contains("first body byte  p50 "), "{out}");
    assert!(report["started_unix_s"].as_f64().is_some_and(|t| t > 1e9));

    // Windows of 1 s: [0, 1) and [1, 2), the second holding the last half
    // second of the schedule and what ended after it; every response is in
    // exactly one.
    assert!(out.contains("  windows ") && out.contains("1-2s"), "{out}");
    let windows = report["windows"].as_array().expect("windows");
    let bounds: Vec<_> = windows
        .iter()
        .map(|w| (w["from_s"].as_u64(), w["to_s"].as_u64()))
        .collect();
    assert_eq!(bounds, [(Some(0), Some(1)), (Some(1), Some(2))]);
    let sum = |key: &str| {
        windows
            .iter()
            .map(|w| w[key].as_u64().expect(key))
            .sum::<u64>()
    };
    assert_eq!((sum("sent"), sum("responses")), (300, 300));
    assert!(windows[0]["latency"]["p99_us"].as_u64().is_some());
    assert!(windows[0]["service_time"]["p99_us"].as_u64().is_some());
    assert!(windows[0]["first_byte"]["p99_us"].as_u64().is_some());

    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        plot.starts_with("<svg") && plot.contains("service time"),
        "{plot}"
    );
    assert_eq!(plot.matches("<polyline").count(), 2);

    let log = std::fs::read_to_string(&hlog).expect("log written");
    assert!(log.contains("#[StartTime: "), "{log}");
    // Two seconds (the second one partial), two entries each.
    let entries = log
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('"'))
        .count();
    assert_eq!(entries, 4, "{log}");
    assert_eq!(log.matches("Tag=service").count(), 2, "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
