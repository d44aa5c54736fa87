//! The scenario file: TOML read into a `toml::Table` and walked key by
//! key, so that every unknown key, wrong type and bad value is reported
//! with its path (`requests[1].wieght`), all in one pass.
//!
//! A `#[derive(Deserialize)]` with `deny_unknown_fields` would stop at the
//! first error and not name the path; both matter more here than the
//! hundred lines the walker costs. Keys are kebab-case. Relative
//! `body-file` paths are relative to the scenario file.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::validate::{
    check_fraction, check_header, parse_driver, parse_method, parse_path, parse_pick,
};
use super::{FieldError, Settings, SetupError};
use crate::plan::{RequestSpec, StatusSet};
use crate::run::cpus;
use crate::schedule::Stage;
use crate::targets::Targets;
use crate::units::parse_duration;

pub(super) fn load_file(path: &Path) -> Result<(toml::Table, PathBuf), SetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| SetupError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
    Ok((table, path.to_path_buf()))
}

const TOP_KEYS: &[&str] = &[
    "url",
    "connections",
    "threads",
    "cpus",
    "duration",
    "rate",
    "stages",
    "timeout",
    "driver",
    "insecure",
    "no-resume",
    "pick",
    "seed",
    "requests",
    "targets",
];
const REQUEST_KEYS: &[&str] = &["weight", "method", "path", "headers", "body", "body-file"];
const STAGE_KEYS: &[&str] = &["duration", "target", "from"];
const TARGET_KEYS: &[&str] = &[
    "p50",
    "p90",
    "p99",
    "p999",
    "max",
    "max-error-rate",
    "min-rate",
    "expect-status",
];

/// Walks one TOML table, remembering which keys were read so the rest can
/// be reported as unknown.
struct Fields<'a> {
    table: &'a toml::Table,
    path: String,
    known: &'static [&'static str],
    used: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    fn new(table: &'a toml::Table, path: String, known: &'static [&'static str]) -> Self {
        Fields {
            table,
            path,
            known,
            used: Vec::new(),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<(&'a toml::Value, String)> {
        let (k, v) = self.table.get_key_value(key)?;
        self.used.push(k.as_str());
        Some((v, self.key_path(key)))
    }

    fn str(
        &mut self,
        key: &'static str,
        errors: &mut Vec<FieldError>,
    ) -> Option<(&'a str, String)> {
        let (v, path) = self.get(key)?;
        match v.as_str() {
            Some(s) => Some((s, path)),
            None => {
                errors.push(type_error(path, "a string", v));
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        key: &'static str,
        errors: &mut Vec<FieldError>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<(T, String)> {
        let (s, path) = self.str(key, errors)?;
        match parse(s) {
            Ok(v) => Some((v, path)),
            Err(message) => {
                errors.push(FieldError { path, message });
                None
            }
        }
    }

    fn uint(&mut self, key: &'static str, errors: &mut Vec<FieldError>) -> Option<(u64, String)> {
        let (v, path) = self.get(key)?;
        match v.as_integer() {
            Some(i) if i >= 0 => Some((i as u64, path)),
            Some(_) => {
                errors.push(FieldError {
                    path,
                    message: "must not be negative".to_string(),
                });
                None
            }
            None => {
                errors.push(type_error(path, "an integer", v));
                None
            }
        }
    }

    fn float(&mut self, key: &'static str, errors: &mut Vec<FieldError>) -> Option<(f64, String)> {
        let (v, path) = self.get(key)?;
        match (v.as_float(), v.as_integer()) {
            (Some(f), _) => Some((f, path)),
            (None, Some(i)) => Some((i as f64, path)),
            _ => {
                errors.push(type_error(path, "a number", v));
                None
            }
        }
    }

    fn bool(&mut self, key: &'static str, errors: &mut Vec<FieldError>) -> Option<bool> {
        let (v, path) = self.get(key)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                errors.push(type_error(path, "true or false", v));
                None
            }
        }
    }

    /// Reports keys nobody asked for, with the closest known key.
    fn finish(self, errors: &mut Vec<FieldError>) {
        for key in self.table.keys() {
            if !self.used.contains(&key.as_str()) {
                let hint = self
                    .known
                    .iter()
                    .map(|k| (edit_distance(k, key), k))
                    .filter(|(d, _)| *d <= 2)
                    .min()
                    .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                errors.push(FieldError {
                    path: self.key_path(key),
                    message: format!("unknown field{hint}"),
                });
            }
        }
    }
}

fn type_error(path: String, want: &str, got: &toml::Value) -> FieldError {
    FieldError {
        path,
        message: format!("expected {want}, found {}", got.type_str()),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(super) fn from_table(
    table: &toml::Table,
    file: &Path,
    errors: &mut Vec<FieldError>,
) -> Settings {
    let mut s = Settings::default();
    let mut f = Fields::new(table, String::new(), TOP_KEYS);
    s.url = f.str("url", errors).map(|(u, p)| (u.to_string(), p));
    s.connections = f
        .uint("connections", errors)
        .map(|(n, p)| (usize::try_from(n).unwrap_or(usize::MAX), p));
    s.threads = f
        .uint("threads", errors)
        .map(|(n, p)| (usize::try_from(n).unwrap_or(usize::MAX), p));
    if let Some((v, path)) = f.get("cpus") {
        let list = match v {
            toml::Value::String(text) => cpus::parse_list(text),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_integer()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| "expected CPU numbers".to_string())
                })
                .collect(),
            other => Err(format!(
                "expected a CPU list like \"0-1\" or [0, 1], found {}",
                other.type_str()
            )),
        };
        match list {
            Ok(l) => s.cpus = Some((l, path)),
            Err(message) => errors.push(FieldError { path, message }),
        }
    }
    s.duration = f.parsed("duration", errors, parse_duration);
    if let Some((r, path)) = f.float("rate", errors) {
        if r.is_finite() && r > 0.0 && r <= 1e8 {
            s.rate = Some((r, path));
        } else {
            errors.push(FieldError {
                path,
                message: "must be a rate > 0 (requests per second)".to_string(),
            });
        }
    }
    s.timeout = f.parsed("timeout", errors, parse_duration).map(|(d, _)| d);
    s.driver = f.parsed("driver", errors, parse_driver).map(|(d, _)| d);
    s.insecure = f.bool("insecure", errors);
    s.no_resume = f.bool("no-resume", errors);
    s.pick = f.parsed("pick", errors, parse_pick).map(|(p, _)| p);
    s.seed = f.uint("seed", errors).map(|(n, _)| n);
    if let Some((v, path)) = f.get("stages") {
        s.stages = stages_from(v, &path, errors).map(|st| (st, path));
    }
    if let Some((v, path)) = f.get("requests") {
        let base = file.parent().unwrap_or(Path::new("."));
        s.requests = requests_from(v, &path, base, errors);
    }
    if let Some((v, path)) = f.get("targets") {
        match v.as_table() {
            Some(t) => s.targets = targets_from(t, &path, errors),
            None => errors.push(type_error(path, "a table", v)),
        }
    }
    f.finish(errors);
    s
}

fn tables<'a>(
    v: &'a toml::Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<(&'a toml::Table, String)> {
    match v.as_array() {
        Some(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let p = format!("{path}[{i}]");
                match item.as_table() {
                    Some(t) => Some((t, p)),
                    None => {
                        errors.push(type_error(p, "a table", item));
                        None
                    }
                }
            })
            .collect(),
        None => {
            errors.push(type_error(path.to_string(), "an array of tables", v));
            Vec::new()
        }
    }
}

fn stages_from(v: &toml::Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Vec<Stage>> {
    let before = errors.len();
    let mut out = Vec::new();
    let mut prev = 0.0;
    let items = tables(v, path, errors);
    if items.is_empty() && errors.len() == before {
        errors.push(FieldError {
            path: path.to_string(),
            message: "at least one stage is needed".to_string(),
        });
    }
    for (t, p) in items {
        let mut f = Fields::new(t, p.clone(), STAGE_KEYS);
        let duration = f.parsed("duration", errors, parse_duration);
        let target = f.float("target", errors);
        let from = f.float("from", errors);
        f.finish(errors);
        let mut rate_ok = |r: Option<&(f64, String)>| match r {
            Some((x, rp)) if !(x.is_finite() && *x >= 0.0 && *x <= 1e8) => {
                errors.push(FieldError {
                    path: rp.clone(),
                    message: "must be a rate >= 0".to_string(),
                });
                false
            }
            _ => true,
        };
        let ok = rate_ok(target.as_ref()) & rate_ok(from.as_ref());
        if duration.is_none() && !errors.iter().any(|e| e.path == format!("{p}.duration")) {
            errors.push(FieldError {
                path: format!("{p}.duration"),
                message: "missing (e.g. duration = \"30s\")".to_string(),
            });
        }
        if target.is_none() && !errors.iter().any(|e| e.path == format!("{p}.target")) {
            errors.push(FieldError {
                path: format!("{p}.target"),
                message: "missing: the rate at the end of the stage".to_string(),
            });
        }
        if let (Some((d, _)), Some((to, _)), true) = (duration, target.as_ref(), ok) {
            let from = from.map_or(prev, |(x, _)| x);
            out.push(Stage {
                duration: d,
                from,
                to: *to,
            });
            prev = *to;
        }
    }
    (errors.len() == before).then_some(out)
}

fn requests_from(
    v: &toml::Value,
    path: &str,
    base: &Path,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<RequestSpec>> {
    let before = errors.len();
    let mut out = Vec::new();
    let items = tables(v, path, errors);
    if items.is_empty() && errors.len() == before {
        errors.push(FieldError {
            path: path.to_string(),
            message: "at least one request is needed".to_string(),
        });
    }
    for (t, p) in items {
        let mut f = Fields::new(t, p.clone(), REQUEST_KEYS);
        let weight = match f.uint("weight", errors) {
            Some((w, wp)) => match u32::try_from(w) {
                Ok(w) if w >= 1 => w,
                _ => {
                    errors.push(FieldError {
                        path: wp,
                        message: "must be between 1 and 4294967295".to_string(),
                    });
                    1
                }
            },
            None => 1,
        };
        let method = f
            .parsed("method", errors, |m| parse_method(m).map(str::to_string))
            .map_or_else(|| "GET".to_string(), |(m, _)| m);
        let path_value = f.parsed("path", errors, |s| parse_path(s).map(str::to_string));
        let mut headers = Vec::new();
        if let Some((hv, hp)) = f.get("headers") {
            match hv.as_table() {
                Some(h) => {
                    for (name, value) in h {
                        let np = format!("{hp}.{name}");
                        match value.as_str() {
                            Some(val) => match check_header(name, val) {
                                Ok(()) => headers.push((name.clone(), val.to_string())),
                                Err(message) => errors.push(FieldError { path: np, message }),
                            },
                            None => errors.push(type_error(np, "a string", value)),
                        }
                    }
                }
                None => errors.push(type_error(hp, "a table of strings", hv)),
            }
        }
        let body = f.str("body", errors).map(|(b, _)| b.to_string());
        let body_file = f.str("body-file", errors);
        f.finish(errors);
        let body = match (body, body_file) {
            (Some(_), Some((_, bp))) => {
                errors.push(FieldError {
                    path: bp,
                    message: "give either body or body-file, not both".to_string(),
                });
                Bytes::new()
            }
            (Some(b), None) => Bytes::from(b),
            (None, Some((file, bp))) => match std::fs::read(base.join(file)) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    errors.push(FieldError {
                        path: bp,
                        message: format!("cannot read {}: {e}", base.join(file).display()),
                    });
                    Bytes::new()
                }
            },
            (None, None) => Bytes::new(),
        };
        out.push(RequestSpec {
            method,
            path: path_value.map(|(p, _)| p),
            headers,
            body,
            weight,
        });
    }
    (errors.len() == before).then_some(out)
}

fn targets_from(t: &toml::Table, path: &str, errors: &mut Vec<FieldError>) -> Targets {
    let mut f = Fields::new(t, path.to_string(), TARGET_KEYS);
    let mut d = |f: &mut Fields<'_>, k| f.parsed(k, errors, parse_duration).map(|(v, _)| v);
    let mut out = Targets {
        p50: d(&mut f, "p50"),
        p90: d(&mut f, "p90"),
        p99: d(&mut f, "p99"),
        p999: d(&mut f, "p999"),
        max: d(&mut f, "max"),
        ..Targets::default()
    };
    if let Some((r, p)) = f.float("max-error-rate", errors) {
        match check_fraction(r) {
            Ok(r) => out.max_error_rate = Some(r),
            Err(message) => errors.push(FieldError { path: p, message }),
        }
    }
    if let Some((r, p)) = f.float("min-rate", errors) {
        if r.is_finite() && r > 0.0 {
            out.min_rate = Some(r);
        } else {
            errors.push(FieldError {
                path: p,
                message: "must be a rate > 0".to_string(),
            });
        }
    }
    if let Some((v, p)) = f.get("expect-status") {
        let text = match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Some(s.clone()),
                    toml::Value::Integer(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|v| v.join(",")),
            _ => None,
        };
        match text.map(|t| StatusSet::parse(&t)) {
            Some(Ok(set)) => out.expect_status = Some(set),
            Some(Err(message)) => errors.push(FieldError { path: p, message }),
            None => errors.push(FieldError {
                path: p,
                message: "expected statuses like \"2xx,304\" or [200, \"3xx\"]".to_string(),
            }),
        }
    }
    f.finish(errors);
    out
}
