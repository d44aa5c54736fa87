//! From flags and an optional TOML scenario file to a validated [`Plan`]
//! and [`Targets`].
//!
//! Both sources fill the same set of optional `Settings`; a flag given
//! on the command line overrides the file, and defaults fill the rest.
//! Every problem is collected — unknown keys, wrong types, bad values,
//! conflicting settings — and reported together, each with the path of the
//! offending key (`requests[1].wieght: unknown field (did you mean
//! `weight`?)`) or flag (`--p99`), so a scenario is fixed in one edit.
//!
//! `file` walks the TOML, `flags` reads the command line, and this
//! module merges them and applies defaults and the rules that span
//! several settings (rate or stages, threads at most connections, …).
//!
//! ```toml
//! url = "http://127.0.0.1:8080"
//! connections = 32
//! rate = 2000
//! duration = "30s"
//!
//! [[requests]]
//! weight = 9
//! path = "/api/items?id=1"
//!
//! [[requests]]
//! weight = 1
//! method = "POST"
//! path = "/api/items"
//! headers = { content-type = "application/json" }
//! body = '{"name": "x"}'
//!
//! [targets]
//! p99 = "20ms"
//! max-error-rate = 0.001
//! ```

mod file;
mod flags;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::{Driver, Load, Pick, Plan, RequestSpec, TlsSettings};
use crate::run::cpus;
use crate::schedule::{Schedule, Stage};
use crate::targets::Targets;
use crate::url::{Scheme, Url};

use file::{from_table, load_file};
use flags::from_flags;
use validate::check_header;

/// Default connection count (as wrk's examples, enough to keep a server's
/// workers busy without a queue of its own).
pub const DEFAULT_CONNECTIONS: usize = 64;
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// More connections than this is a typo, not a test: each costs a socket
/// and a 16 KiB buffer.
pub const MAX_CONNECTIONS: usize = 100_000;

/// One problem, at a path: `requests[1].weight`, `--rate`, `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why no plan could be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: invalid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// All problems found, each with its path; `file` is the scenario file
    /// they were found in, if any.
    #[error("{}", render(file.as_deref(), errors))]
    Invalid {
        file: Option<PathBuf>,
        errors: Vec<FieldError>,
    },
}

/// One line per error; those about the file's keys (not `--flags` or the
/// command line's URL) are prefixed with the file's path.
fn render(file: Option<&Path>, errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| match file {
            Some(f) if !e.path.starts_with("--") && e.path != "URL" => {
                format!("{}: {e}", f.display())
            }
            _ => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the command line says; strings are validated here, not by the
/// argument parser, so flag errors read like file errors.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub url: Option<String>,
    pub scenario: Option<PathBuf>,
    pub method: Option<String>,
    /// `Name: value`, repeatable; added to every request.
    pub headers: Vec<String>,
    pub body: Option<String>,
    pub body_file: Option<PathBuf>,
    pub connections: Option<usize>,
    pub threads: Option<usize>,
    pub cpus: Option<String>,
    pub duration: Option<String>,
    pub rate: Option<String>,
    pub stages: Option<String>,
    pub timeout: Option<String>,
    pub driver: Option<String>,
    pub insecure: bool,
    /// `--no-resume`: a full TLS handshake on every connection.
    pub no_resume: bool,
    pub pick: Option<String>,
    pub seed: Option<u64>,
    pub p50: Option<String>,
    pub p90: Option<String>,
    pub p99: Option<String>,
    pub p999: Option<String>,
    pub max: Option<String>,
    pub max_error_rate: Option<String>,
    pub min_rate: Option<String>,
    pub expect_status: Option<String>,
}

/// Settings from one source, every one optional; the path each came from
/// is kept for error messages about combinations.
#[derive(Debug, Clone, Default)]
struct Settings {
    url: Option<(String, String)>,
    connections: Option<(usize, String)>,
    threads: Option<(usize, String)>,
    cpus: Option<(Vec<usize>, String)>,
    duration: Option<(Duration, String)>,
    rate: Option<(f64, String)>,
    stages: Option<(Vec<Stage>, String)>,
    timeout: Option<Duration>,
    driver: Option<Driver>,
    insecure: Option<bool>,
    no_resume: Option<bool>,
    requests: Option<Vec<RequestSpec>>,
    pick: Option<PickKind>,
    seed: Option<u64>,
    targets: Targets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PickKind {
    RoundRobin,
    Random,
}

/// A validated plan and its targets.
#[derive(Debug, Clone)]
pub struct Built {
    pub plan: Plan,
    pub targets: Targets,
}

/// Builds the plan from flags (and the scenario file they name).
pub fn build(flags: &Flags) -> Result<Built, SetupError> {
    let mut errors = Vec::new();
    let file = match &flags.scenario {
        Some(path) => Some(load_file(path)?),
        None => None,
    };
    let (file_settings, file_errors) = match &file {
        Some((table, path)) => {
            let mut e = Vec::new();
            let s = from_table(table, path, &mut e);
            (s, e)
        }
        None => (Settings::default(), Vec::new()),
    };
    let flag_settings = from_flags(flags, file_settings.requests.is_some(), &mut errors);
    let merged = merge(flag_settings, file_settings);
    let built = finish(merged, flags, &mut errors);
    // File errors first: they carry the file's paths, flag errors `--x`.
    let mut all = file_errors;
    all.append(&mut errors);
    match built {
        Some(b) if all.is_empty() => Ok(b),
        _ => Err(SetupError::Invalid {
            file: flags.scenario.clone(),
            errors: all,
        }),
    }
}

/// Parses a scenario file alone (for checking a file, and for tests).
pub fn check_file(path: &Path) -> Result<Built, SetupError> {
    build(&Flags {
        scenario: Some(path.to_path_buf()),
        ..Flags::default()
    })
}

/// Flags override the file.
fn merge(flag: Settings, file: Settings) -> Settings {
    let t = flag.targets;
    let ft = file.targets;
    Settings {
        url: flag.url.or(file.url),
        connections: flag.connections.or(file.connections),
        threads: flag.threads.or(file.threads),
        cpus: flag.cpus.or(file.cpus),
        duration: flag.duration.or(file.duration),
        rate: flag.rate.or(file.rate),
        stages: flag.stages.or(file.stages),
        timeout: flag.timeout.or(file.timeout),
        driver: flag.driver.or(file.driver),
        insecure: flag.insecure.or(file.insecure),
        no_resume: flag.no_resume.or(file.no_resume),
        requests: file.requests.or(flag.requests),
        pick: flag.pick.or(file.pick),
        seed: flag.seed.or(file.seed),
        targets: Targets {
            p50: t.p50.or(ft.p50),
            p90: t.p90.or(ft.p90),
            p99: t.p99.or(ft.p99),
            p999: t.p999.or(ft.p999),
            max: t.max.or(ft.max),
            max_error_rate: t.max_error_rate.or(ft.max_error_rate),
            min_rate: t.min_rate.or(ft.min_rate),
            expect_status: t.expect_status.or(ft.expect_status),
        },
    }
}

/// Applies defaults and cross-field rules, and serialises the requests.
fn finish(s: Settings, flags: &Flags, errors: &mut Vec<FieldError>) -> Option<Built> {
    let mut err = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.to_string(),
            message,
        })
    };
    let url = match &s.url {
        Some((text, path)) => match Url::parse(text) {
            Ok(u) => Some(u),
            Err(m) => {
                err(path, m);
                None
            }
        },
        None => {
            err(
                "URL",
                "missing: give it on the command line or as `url` in the scenario".to_string(),
            );
            None
        }
    };
    let connections = s
        .connections
        .as_ref()
        .map_or(DEFAULT_CONNECTIONS, |(c, _)| *c);
    if connections == 0 || connections > MAX_CONNECTIONS {
        let path = s
            .connections
            .as_ref()
            .map_or("--connections", |(_, p)| p.as_str());
        err(path, format!("must be between 1 and {MAX_CONNECTIONS}"));
    }
    let allowed = match &s.cpus {
        Some((l, _)) => l.clone(),
        None => cpus::allowed(),
    };
    let threads = match &s.threads {
        Some((0, p)) => {
            err(p, "must be at least 1".to_string());
            1
        }
        Some((t, _)) => *t,
        None => allowed.len(),
    };
    // A thread without a connection would only idle.
    let threads = threads.min(connections.max(1)).max(1);
    let cpu_list = cpus::assign(threads, &allowed);
    let timeout = s.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        err("--timeout", "must be more than 0".to_string());
    }
    let load = match (&s.rate, &s.stages) {
        (Some((_, rp)), Some((_, sp))) => {
            err(sp, format!("give either stages or {rp}, not both"));
            None
        }
        (Some((r, _)), None) => {
            let d = s.duration.as_ref().map_or(DEFAULT_DURATION, |(d, _)| *d);
            Some(Load::Open {
                schedule: Schedule::constant(*r, d),
            })
        }
        (None, Some((st, sp))) => {
            if let Some((_, dp)) = &s.duration {
                err(dp, format!("the stages ({sp}) set the duration; drop one"));
            }
            let schedule = Schedule::new(st.clone());
            if schedule.total() < 1.0 {
                err(sp, "the stages send no request (all rates 0)".to_string());
            }
            Some(Load::Open { schedule })
        }
        (None, None) => Some(Load::Closed {
            duration: s.duration.as_ref().map_or(DEFAULT_DURATION, |(d, _)| *d),
        }),
    };
    if load.as_ref().is_some_and(|l| l.duration().is_zero()) {
        let path = s
            .duration
            .as_ref()
            .map_or("--duration", |(_, p)| p.as_str());
        err(path, "must be more than 0".to_string());
    }
    let specs = s.requests.clone().unwrap_or_default();
    let mut extra = Vec::new();
    for h in &flags.headers {
        match h.split_once(':') {
            Some((n, v)) => match check_header(n.trim(), v.trim()) {
                Ok(()) => extra.push((n.trim().to_string(), v.trim().to_string())),
                Err(m) => err("--header", m),
            },
            None => err("--header", format!("`{h}`: expected \"Name: value\"")),
        }
    }
    let weights: Vec<u32> = specs.iter().map(|r| r.weight).collect();
    let pick = match s.pick.unwrap_or(PickKind::RoundRobin) {
        PickKind::RoundRobin => Pick::round_robin(&weights),
        PickKind::Random => Pick::random(&weights, s.seed.unwrap_or(1)),
    };
    let pick = match pick {
        Ok(p) => Some(p),
        Err(m) => {
            err("requests", m);
            None
        }
    };
    let insecure = s.insecure.unwrap_or(false);
    let resume = !s.no_resume.unwrap_or(false);
    let url = url?;
    let addr = match url.resolve() {
        Ok(a) => Some(a),
        Err(m) => {
            err(s.url.as_ref().map_or("URL", |(_, p)| p.as_str()), m);
            None
        }
    };
    if !errors.is_empty() {
        return None;
    }
    let requests = specs
        .into_iter()
        .map(|mut r| {
            r.headers.extend(extra.iter().cloned());
            r.build(&url)
        })
        .collect();
    let tls = (url.scheme == Scheme::Https).then(|| TlsSettings {
        server_name: url.host.clone(),
        insecure,
        resume,
    });
    let expect = s.targets.expect_status.clone().unwrap_or_default();
    Some(Built {
        plan: Plan {
            addr: addr?,
            url,
            tls,
            requests,
            pick: pick?,
            connections,
            cpus: cpu_list,
            load: load?,
            timeout,
            expect,
            driver: s.driver.unwrap_or(Driver::IoUring),
        },
        targets: s.targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_text(text: &str) -> Result<Built, SetupError> {
        let dir = std::env::temp_dir().join(format!(
            "ringway-load-scenario-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("s{:x}.toml", fxhash(text)));
        std::fs::write(&path, text).expect("write scenario");
        let r = check_file(&path);
        let _ = std::fs::remove_file(&path);
        r
    }

    fn fxhash(s: &str) -> u64 {
        s.bytes().fold(0xcbf29ce484222325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        })
    }

    fn errors(text: &str) -> Vec<String> {
        match from_text(text) {
            Ok(_) => vec![],
            Err(SetupError::Invalid { errors, .. }) => {
                errors.iter().map(|e| e.to_string()).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    const BASE: &str = "url = \"http://127.0.0.1:9\"\n";

    #[test]
    fn error_paths_table() {
        let cases: &[(&str, &[&str])] = &[
            (
                "[[requests]]\npath = \"/a\"\n[[requests]]\nwieght = 2\n",
                &["requests[1].wieght: unknown field (did you mean `weight`?)"],
            ),
            (
                "conections = 3\n",
                &["conections: unknown field (did you mean `connections`?)"],
            ),
            (
                "connections = \"many\"\n",
                &["connections: expected an integer, found string"],
            ),
            (
                "connections = 0\n",
                &["connections: must be between 1 and 100000"],
            ),
            (
                "rate = -5\n",
                &["rate: must be a rate > 0 (requests per second)"],
            ),
            (
                "duration = \"10\"\n",
                &["duration: `10` needs a unit: ns, us, ms, s, m or h (e.g. 10ms)"],
            ),
            (
                "[[requests]]\nweight = 0\n",
                &["requests[0].weight: must be between 1 and 4294967295"],
            ),
            (
                "[[requests]]\nmethod = \"GE T\"\n",
                &["requests[0].method: `GE T` is not a valid method"],
            ),
            (
                "[[requests]]\npath = \"nope\"\n",
                &["requests[0].path: `nope`: a path starts with `/`"],
            ),
            (
                "[[requests]]\nheaders = { \"x\" = 1 }\n",
                &["requests[0].headers.x: expected a string, found integer"],
            ),
            (
                "[[stages]]\nduration = \"1s\"\n",
                &["stages[0].target: missing: the rate at the end of the stage"],
            ),
            (
                "[[stages]]\nduration = \"1s\"\ntarget = 5\nspeed = 1\n",
                &["stages[0].speed: unknown field"],
            ),
            (
                "rate = 5\n[[stages]]\nduration = \"1s\"\ntarget = 5\n",
                &["stages: give either stages or rate, not both"],
            ),
            (
                "[targets]\np99 = \"fast\"\n",
                &["targets.p99: `fast` is not a duration (e.g. 250us, 10ms, 1.5s, 2m)"],
            ),
            (
                "[targets]\nmax-error-rate = 2\n",
                &["targets.max-error-rate: must be a fraction between 0 and 1 (0.001 = 0.1%)"],
            ),
            (
                "[targets]\nexpect-status = [\"2xx\", 999]\n",
                &["targets.expect-status: `999` is not a status code (100..599)"],
            ),
            (
                "[targets]\np95 = \"1ms\"\n",
                &["targets.p95: unknown field (did you mean `p90`?)"],
            ),
            (
                "driver = \"kqueue\"\n",
                &["driver: `kqueue`: expected io_uring or epoll"],
            ),
            (
                "no-resume = \"yes\"\n",
                &["no-resume: expected true or false, found string"],
            ),
            (
                "no_resume = true\n",
                &["no_resume: unknown field (did you mean `no-resume`?)"],
            ),
        ];
        for (text, want) in cases {
            let got = errors(&format!("{BASE}{text}"));
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn collects_several_errors() {
        let got = errors(&format!(
            "{BASE}conections = 3\n[[requests]]\nwieght = 1\n[targets]\np99 = 5\n"
        ));
        assert_eq!(
            got,
            [
                "requests[0].wieght: unknown field (did you mean `weight`?)",
                "targets.p99: expected a string, found integer",
                "conections: unknown field (did you mean `connections`?)",
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let e = from_text("url = \n").expect_err("invalid TOML");
        assert!(e.to_string().contains("invalid TOML"), "{e}");
    }

    #[test]
    fn full_scenario_builds() {
        let b = from_text(&format!(
            "{BASE}connections = 8\nthreads = 1\ncpus = [0]\npick = \"random\"\nseed = 3\n\
             [[requests]]\nweight = 3\npath = \"/a\"\nheaders = {{ x-t = \"1\" }}\n\
             [[requests]]\nmethod = \"POST\"\npath = \"/b\"\nbody = \"{{}}\"\n\
             [[stages]]\nduration = \"2s\"\ntarget = 100\n\
             [[stages]]\nduration = \"1s\"\ntarget = 100\n\
             [targets]\np99 = \"20ms\"\nexpect-status = \"2xx\"\nmin-rate = 10\n"
        ))
        .expect("valid scenario");
        let p = &b.plan;
        assert_eq!(p.connections, 8);
        assert_eq!(p.cpus, vec![0]);
        assert_eq!(p.requests.len(), 2);
        assert_eq!(
            std::str::from_utf8(&p.requests[0].wire),
            Ok("GET /a HTTP/1.1\r\nHost: 127.0.0.1:9\r\nx-t: 1\r\n\r\n")
        );
        assert!(matches!(p.pick, Pick::Random { seed: 3, .. }));
        match &p.load {
            Load::Open { schedule } => {
                assert_eq!(schedule.duration(), Duration::from_secs(3));
                assert!((schedule.total() - 200.0).abs() < 1e-9);
            }
            Load::Closed { .. } => panic!("stages make an open loop"),
        }
        assert_eq!(b.targets.p99, Some(Duration::from_millis(20)));
        assert_eq!(b.targets.min_rate, Some(10.0));
        assert!(
            !p.expect.contains(301),
            "expect-status sets the counted set"
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("ringway-load-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("s.toml");
        std::fs::write(
            &path,
            format!("{BASE}connections = 8\nrate = 50\n[targets]\np99 = \"1s\"\n"),
        )
        .expect("write");
        let b = build(&Flags {
            scenario: Some(path.clone()),
            connections: Some(2),
            p99: Some("5ms".into()),
            headers: vec!["Authorization: Bearer x".into()],
            ..Flags::default()
        })
        .expect("valid");
        let _ = std::fs::remove_file(&path);
        assert_eq!(b.plan.connections, 2);
        assert_eq!(b.targets.p99, Some(Duration::from_millis(5)));
        assert!(b.plan.load.is_open());
        assert!(std::str::from_utf8(&b.plan.requests[0].wire)
            .expect("ascii")
            .contains("Authorization: Bearer x\r\n"));
    }

    #[test]
    fn flag_errors_table() {
        let base = || Flags {
            url: Some("http://127.0.0.1:9/".into()),
            ..Flags::default()
        };
        let cases: Vec<(Flags, &str)> = vec![
            (
                Flags {
                    rate: Some("x".into()),
                    ..base()
                },
                "--rate: `x` is not a rate (requests per second > 0)",
            ),
            (
                Flags {
                    p99: Some("5".into()),
                    ..base()
                },
                "--p99: `5` needs a unit: ns, us, ms, s, m or h (e.g. 5ms)",
            ),
            (
                Flags {
                    headers: vec!["NoColon".into()],
                    ..base()
                },
                "--header: `NoColon`: expected \"Name: value\"",
            ),
            (
                Flags {
                    url: Some("ftp://x".into()),
                    ..Flags::default()
                },
                "URL: `ftp://x`: URL must start with http:// or https://",
            ),
            (
                Flags {
                    url: None,
                    ..Flags::default()
                },
                "URL: missing: give it on the command line or as `url` in the scenario",
            ),
            (
                Flags {
                    connections: Some(0),
                    ..base()
                },
                "--connections: must be between 1 and 100000",
            ),
            (
                Flags {
                    expect_status: Some("7xx".into()),
                    ..base()
                },
                "--expect-status: `7xx` is not a status class (1xx..5xx)",
            ),
            (
                Flags {
                    max_error_rate: Some("5".into()),
                    ..base()
                },
                "--max-error-rate: must be a fraction between 0 and 1 (0.001 = 0.1%)",
            ),
        ];
        for (flags, want) in cases {
            match build(&flags) {
                Err(SetupError::Invalid { errors, .. }) => {
                    assert_eq!(errors[0].to_string(), want);
                }
                other => panic!("{want}: got {other:?}"),
            }
        }
    }

    #[test]
    fn tls_resumption_from_flag_or_file() {
        let https = "url = \"https://127.0.0.1:9/\"\n";
        let resume = |b: &Built| b.plan.tls.as_ref().map(|t| t.resume);
        let cases: &[(&str, bool, Option<bool>)] = &[
            // (file, --no-resume, TLS resumption in the plan)
            (https, false, Some(true)),
            (https, true, Some(false)),
            (
                "url = \"https://127.0.0.1:9/\"\nno-resume = true\n",
                false,
                Some(false),
            ),
            (
                "url = \"https://127.0.0.1:9/\"\nno-resume = false\n",
                true,
                Some(false),
            ),
            // Plain HTTP has no TLS settings to change.
            (BASE, true, None),
        ];
        let dir = std::env::temp_dir().join(format!("ringway-load-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (i, (text, flag, want)) in cases.iter().enumerate() {
            let path = dir.join(format!("s{i}.toml"));
            std::fs::write(&path, text).expect("write");
            let b = build(&Flags {
                scenario: Some(path.clone()),
                no_resume: *flag,
                ..Flags::default()
            })
            .expect("valid");
            let _ = std::fs::remove_file(&path);
            assert_eq!(resume(&b), *want, "{text:?} with --no-resume={flag}");
        }
    }

    #[test]
    fn threads_never_exceed_connections() {
        let b = build(&Flags {
            url: Some("http://127.0.0.1:9/".into()),
            connections: Some(1),
            threads: Some(4),
            cpus: Some("0-1".into()),
            ..Flags::default()
        })
        .expect("valid");
        assert_eq!(b.plan.cpus, vec![0]);
    }
}
