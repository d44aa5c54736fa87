//! [`Config`] → config text: JSON for the admin API, TOML for files.
//!
//! What is written is the effective config, not what some file said: every
//! key, defaults filled in, default names (`route-3`) made explicit, each
//! route's limits resolved against `[limits]`. That is what an operator
//! asking "what is running?" needs, and it reads back as an equal `Config`,
//! which the tests hold for both formats. Durations and sizes are written in
//! the largest unit that holds them exactly (`"90s"`, `"4KiB"`).
//!
//! A few keys are left out rather than written, because the schema has no
//! way to say "none" (JSON `null` is refused on input): a route without
//! `host` or `host-header`, an admin API without `token`. A route answered
//! by `[routes.respond]` gets no upstream timeouts, which such a route may
//! not set.
//!
//! One set of serde structs mirrors the schema and serves both formats, so
//! TOML output costs one call to the `toml` serializer.

use serde::{Serialize, Serializer};

use crate::model::{Action, Config, Driver, HostMatch, PathMatch, Workers};
use crate::units::{format_duration, format_size};

/// What a redacted secret is written as. Not a valid token (too short), so
/// redacted output cannot be read back as a config by mistake.
const REDACTED: &str = "<redacted>";

pub(crate) fn json(config: &Config, redact_secrets: bool) -> String {
    serde_json::to_string_pretty(&Document::new(config, redact_secrets)).expect(
        "the document holds only strings, integers, booleans, maps with string keys and arrays",
    )
}

pub(crate) fn toml(config: &Config) -> String {
    toml::to_string_pretty(&Document::new(config, false)).expect(
        "the document holds only strings, integers, booleans, tables and arrays, none of them empty keys or nulls",
    )
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Document<'a> {
    workers: WorkersOut,
    driver: &'static str,
    drain_timeout: String,
    limits: LimitsOut,
    admin: AdminOut<'a>,
    listeners: Vec<ListenerOut<'a>>,
    upstreams: Vec<UpstreamOut<'a>>,
    routes: Vec<RouteOut<'a>>,
}

/// `"auto"` or a number.
#[derive(Serialize)]
#[serde(untagged)]
enum WorkersOut {
    Auto(&'static str),
    Count(usize),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct LimitsOut {
    max_target_length: String,
    max_head_size: String,
    max_headers: usize,
    max_body_size: String,
    header_read_timeout: String,
    keepalive_timeout: String,
    connect_timeout: String,
    response_head_timeout: String,
    send_timeout: String,
    upstream_idle_timeout: String,
    upstream_max_idle: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AdminOut<'a> {
    enabled: bool,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ListenerOut<'a> {
    name: &'a str,
    address: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UpstreamOut<'a> {
    name: &'a str,
    servers: Vec<ServerOut>,
}

/// Always the table form, so every server's weight is explicit.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ServerOut {
    address: String,
    weight: u32,
}

/// Scalars before tables, the order TOML needs.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RouteOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_prefix: Option<&'a str>,
    methods: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_header: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    respond: Option<RespondOut<'a>>,
    limits: RouteLimitsOut,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RespondOut<'a> {
    status: u16,
    #[serde(serialize_with = "header_map")]
    headers: &'a [(String, String)],
    body: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RouteLimitsOut {
    max_body_size: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_head_timeout: Option<String>,
}

/// Headers as a map in their stored order, which is the order they are read
/// back in, so the round trip keeps `Responder::headers` equal.
fn header_map<S: Serializer>(headers: &&[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(headers.iter().map(|(name, value)| (name, value)))
}

impl<'a> Document<'a> {
    fn new(c: &'a Config, redact_secrets: bool) -> Self {
        let l = &c.limits;
        Document {
            workers: match c.workers {
                Workers::Auto => WorkersOut::Auto("auto"),
                Workers::Count(n) => WorkersOut::Count(n.get()),
            },
            driver: match c.driver {
                Driver::IoUring => "io_uring",
                Driver::Epoll => "epoll",
            },
            drain_timeout: format_duration(c.drain_timeout),
            limits: LimitsOut {
                max_target_length: format_size(l.max_target_len as u64),
                max_head_size: format_size(l.max_head_size as u64),
                max_headers: l.max_headers,
                max_body_size: format_size(l.max_body_size),
                header_read_timeout: format_duration(l.header_read_timeout),
                keepalive_timeout: format_duration(l.keepalive_timeout),
                connect_timeout: format_duration(l.connect_timeout),
                response_head_timeout: format_duration(l.response_head_timeout),
                send_timeout: format_duration(l.send_timeout),
                upstream_idle_timeout: format_duration(l.upstream_idle_timeout),
                upstream_max_idle: l.upstream_max_idle,
            },
            admin: AdminOut {
                enabled: c.admin.enabled,
                address: c.admin.address.to_string(),
                token: c
                    .admin
                    .token
                    .as_deref()
                    .map(|t| if redact_secrets { REDACTED } else { t }),
            },
            listeners: c
                .listeners
                .iter()
                .map(|l| ListenerOut {
                    name: &l.name,
                    address: l.address.to_string(),
                })
                .collect(),
            upstreams: c
                .upstreams
                .iter()
                .map(|u| UpstreamOut {
                    name: &u.name,
                    servers: u
                        .servers
                        .iter()
                        .map(|s| ServerOut {
                            address: s.address.to_string(),
                            weight: s.weight.get(),
                        })
                        .collect(),
                })
                .collect(),
            routes: c.routes.iter().map(|r| RouteOut::new(r, c)).collect(),
        }
    }
}

impl<'a> RouteOut<'a> {
    fn new(route: &'a crate::model::Route, c: &'a Config) -> Self {
        let (path, path_prefix) = match &route.path {
            PathMatch::Exact(p) => (Some(p.as_str()), None),
            PathMatch::Prefix(p) => (None, Some(p.as_str())),
        };
        let (upstream, respond) = match &route.action {
            // Validation resolved the name to this index; a config edited
            // in code to point elsewhere is written as a name that fails
            // validation, rather than as another upstream's.
            Action::Upstream(i) => (
                Some(
                    c.upstreams
                        .get(*i)
                        .map_or_else(|| format!("upstreams[{i}]"), |u| u.name.clone()),
                ),
                None,
            ),
            Action::Respond(r) => (
                None,
                Some(RespondOut {
                    status: r.status,
                    headers: &r.headers,
                    body: &r.body,
                }),
            ),
        };
        let proxies = upstream.is_some();
        let timeout = |d| proxies.then(|| format_duration(d));
        RouteOut {
            name: &route.name,
            host: route.host.as_ref().map(|h| match h {
                HostMatch::Exact(host) => host.clone(),
                HostMatch::Suffix(suffix) => format!("*{suffix}"),
            }),
            path,
            path_prefix,
            methods: &route.methods,
            upstream,
            host_header: route.host_header.as_deref(),
            respond,
            limits: RouteLimitsOut {
                max_body_size: format_size(route.limits.max_body_size),
                connect_timeout: timeout(route.limits.connect_timeout),
                response_head_timeout: timeout(route.limits.response_head_timeout),
            },
        }
    }
}
