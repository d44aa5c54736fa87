//! Command-line flags as settings: the same validation as the file, with
//! the flag's name as the path of each error (`--p99: ...`).

use bytes::Bytes;

use super::validate::{check_fraction, parse_driver, parse_method, parse_pick};
use super::{FieldError, Flags, Settings};
use crate::plan::{RequestSpec, StatusSet};
use crate::run::cpus;
use crate::schedule::parse_stages;
use crate::targets::Targets;
use crate::units::{parse_duration, parse_rate};

pub(super) fn from_flags(
    flags: &Flags,
    file_has_requests: bool,
    errors: &mut Vec<FieldError>,
) -> Settings {
    let mut s = Settings::default();
    let mut err = |path: &str, message: String| {
        errors.push(FieldError {
            path: path.to_string(),
            message,
        })
    };
    s.url = flags.url.clone().map(|u| (u, "URL".to_string()));
    s.connections = flags.connections.map(|c| (c, "--connections".to_string()));
    s.threads = flags.threads.map(|t| (t, "--threads".to_string()));
    if let Some(c) = &flags.cpus {
        match cpus::parse_list(c) {
            Ok(l) => s.cpus = Some((l, "--cpus".to_string())),
            Err(m) => err("--cpus", m),
        }
    }
    let dur = |text: &Option<String>, path: &str, err: &mut dyn FnMut(&str, String)| {
        text.as_ref().and_then(|t| match parse_duration(t) {
            Ok(d) => Some(d),
            Err(m) => {
                err(path, m);
                None
            }
        })
    };
    s.duration = dur(&flags.duration, "--duration", &mut err).map(|d| (d, "--duration".into()));
    s.timeout = dur(&flags.timeout, "--timeout", &mut err);
    if let Some(r) = &flags.rate {
        match parse_rate(r) {
            Ok(r) => s.rate = Some((r, "--rate".to_string())),
            Err(m) => err("--rate", m),
        }
    }
    if let Some(st) = &flags.stages {
        match parse_stages(st) {
            Ok(st) => s.stages = Some((st, "--stages".to_string())),
            Err(m) => err("--stages", m),
        }
    }
    if let Some(d) = &flags.driver {
        match parse_driver(d) {
            Ok(d) => s.driver = Some(d),
            Err(m) => err("--driver", m),
        }
    }
    s.insecure = flags.insecure.then_some(true);
    s.no_resume = flags.no_resume.then_some(true);
    if let Some(p) = &flags.pick {
        match parse_pick(p) {
            Ok(p) => s.pick = Some(p),
            Err(m) => err("--pick", m),
        }
    }
    s.seed = flags.seed;
    s.targets = Targets {
        p50: dur(&flags.p50, "--p50", &mut err),
        p90: dur(&flags.p90, "--p90", &mut err),
        p99: dur(&flags.p99, "--p99", &mut err),
        p999: dur(&flags.p999, "--p999", &mut err),
        max: dur(&flags.max, "--max", &mut err),
        ..Targets::default()
    };
    if let Some(r) = &flags.max_error_rate {
        match r
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{r}` is not a number"))
            .and_then(check_fraction)
        {
            Ok(r) => s.targets.max_error_rate = Some(r),
            Err(m) => err("--max-error-rate", m),
        }
    }
    if let Some(r) = &flags.min_rate {
        match parse_rate(r) {
            Ok(r) => s.targets.min_rate = Some(r),
            Err(m) => err("--min-rate", m),
        }
    }
    if let Some(e) = &flags.expect_status {
        match StatusSet::parse(e) {
            Ok(set) => s.targets.expect_status = Some(set),
            Err(m) => err("--expect-status", m),
        }
    }

    // The request from flags: only when the file defines none.
    let single = flags.method.is_some() || flags.body.is_some() || flags.body_file.is_some();
    if file_has_requests {
        if single {
            err(
                "--method/--body",
                "the scenario file defines the requests; set method and body there".to_string(),
            );
        }
    } else {
        let method = match flags.method.as_deref().map(parse_method) {
            Some(Ok(m)) => m.to_string(),
            Some(Err(m)) => {
                err("--method", m);
                "GET".to_string()
            }
            None => "GET".to_string(),
        };
        let body = match (&flags.body, &flags.body_file) {
            (Some(_), Some(_)) => {
                err(
                    "--body-file",
                    "give either --body or --body-file".to_string(),
                );
                Bytes::new()
            }
            (Some(b), None) => Bytes::from(b.clone()),
            (None, Some(f)) => match std::fs::read(f) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    err("--body-file", format!("cannot read {}: {e}", f.display()));
                    Bytes::new()
                }
            },
            (None, None) => Bytes::new(),
        };
        s.requests = Some(vec![RequestSpec {
            method,
            path: None,
            headers: Vec::new(),
            body,
            weight: 1,
        }]);
    }
    s
}
