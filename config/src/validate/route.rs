//! `[[routes]]` → [`Route`]: matchers, action, per-route limits.
//!
//! Routes are checked last because they refer to everything else: an
//! `upstream` name must resolve to an index into `Config::upstreams`, and
//! `[routes.limits]` falls back to the global `[limits]`. This module also
//! owns the one check that spans routes: two routes with the same host, path
//! and method set are an error, since the router breaks that tie by file
//! order and the later route could never be chosen.
//!
//! A route's own settings that cannot take effect are errors too, such as
//! `host-header` or `connect-timeout` on a route answered by
//! `[routes.respond]`, which never contacts an upstream: a setting that
//! silently does nothing is a misconfiguration nobody finds.
//!
//! A route's traffic policy (authentication, limits, address rules) is
//! checked by [`policy`](super::policy), its `[routes.cache]` by
//! [`cache`](super::cache), its HTTPS keys (`redirect-https`, `hsts`,
//! `require-client-cert`) by [`tls`](super::tls), its `[routes.retry]` by
//! [`retry`](super::retry), its `[routes.ai]` by [`ai`](super::ai), its
//! `upgrades` and tunnel bounds by [`tunnel`](super::tunnel).
//!
//! A route has one action: `upstream`, `[routes.respond]` or
//! `[routes.ai]`. An AI route contacts upstreams (its providers'), so the
//! upstream timeouts, `[routes.retry]` and the policy keys that need an
//! upstream apply to it; `host-header` and `[routes.cache]` do not (each
//! provider's requests carry its upstream's host, and answers are
//! translated, not stored).

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::ai::route_ai;
use super::cache::route_cache;
use super::compression::route_compression;
use super::consumer::all_groups;
use super::cors::route_cors;
use super::policy::{self, Lookup, Policy};
use super::retry::retry;
use super::tls::{self, Listening, RouteTls};
use super::transform::route_transform;
use super::tunnel::tunnels;
use super::{duration, index_by_name, integer, name_or_default, size, text, AllowZero, Names};
use crate::error::Reporter;
use crate::model::{Action, Cache, HostMatch, Limits, PathMatch, Responder, Route, RouteLimits};
use crate::parse::key_path;
use crate::raw::{
    Item, RawAiModel, RawAuthenticator, RawConsumer, RawListener, RawRespond, RawRoute,
    RawRouteLimits, RawUpstream, Scalar,
};

/// Statuses whose responses never carry content (RFC 9110 §15.3.5, §15.3.6,
/// §15.4.5), so a `body` for them could not be sent.
const NO_CONTENT_STATUSES: &[u16] = &[204, 205, 304];

/// What makes two routes the same match: host, path, and the method set
/// (sorted, so `["GET", "POST"]` equals `["POST", "GET"]`).
type MatchKey = (Option<HostMatch>, PathMatch, Vec<String>);
/// A route's match key and its name, for "same match as" messages.
type NamedKey = (MatchKey, String);

/// What routes refer to elsewhere in the document.
pub(super) struct Refs<'a> {
    /// The global `[limits]`; `None` when they failed validation.
    pub(super) limits: Option<&'a Limits>,
    /// The global `[cache]`; `None` when it failed validation.
    pub(super) cache: Option<&'a Cache>,
    pub(super) upstreams: &'a [Item<RawUpstream>],
    pub(super) listeners: &'a [Item<RawListener>],
    pub(super) authenticators: &'a [Item<RawAuthenticator>],
    pub(super) consumers: &'a [Item<RawConsumer>],
    pub(super) ai_models: &'a [Item<RawAiModel>],
}

/// [`Refs`] resolved for lookups by name.
struct Context<'a> {
    limits: Option<&'a Limits>,
    cache: Option<&'a Cache>,
    upstream_index: HashMap<&'a str, usize>,
    ai_models: &'a [Item<RawAiModel>],
    policy: Lookup<'a>,
    listening: Listening,
}

pub(super) fn routes(
    items: &[Item<RawRoute>],
    refs: &Refs<'_>,
    r: &mut Reporter<'_>,
) -> Option<Vec<Route>> {
    let cx = Context {
        limits: refs.limits,
        cache: refs.cache,
        upstream_index: index_by_name(refs.upstreams),
        ai_models: refs.ai_models,
        policy: Lookup {
            authenticators: index_by_name(refs.authenticators),
            groups: all_groups(refs.consumers),
        },
        listening: Listening::new(refs.listeners),
    };
    let mut names = Names::new("routes");
    let mut matches: HashMap<MatchKey, (usize, String)> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(raw) = &item.value else {
            out.push(None);
            continue;
        };
        let (key, route) = route(raw, i, &item.span, &cx, &mut names, r);
        if let Some((key, name)) = key {
            if let Some((first, first_name)) = matches.get(&key) {
                r.error(
                    format!("routes[{i}]"),
                    Some(item.span.clone()),
                    format!(
                        "same match as routes[{first}] ({first_name:?}): same host, path and methods, \
                         so this route could never be chosen"
                    ),
                );
            } else {
                matches.insert(key, (i, name));
            }
        }
        out.push(route);
    }
    out.into_iter().collect()
}

/// One route; `None` when anything in it was reported. Also returns the
/// route's match key and name whenever its matchers are valid, even if
/// something else in it is not, so duplicate matches are still found.
fn route(
    raw: &RawRoute,
    i: usize,
    element: &Range<usize>,
    cx: &Context<'_>,
    names: &mut Names,
    r: &mut Reporter<'_>,
) -> (Option<NamedKey>, Option<Route>) {
    let path = format!("routes[{i}]");
    let name = name_or_default(raw.name.as_ref(), &path, "route", i, r);
    if let Some(name) = &name {
        names.claim(name, i, raw.name.as_ref().map(Spanned::span), element, r);
    }

    let host = match &raw.host {
        None => Some(None),
        Some(h) => text::host_match(h.get_ref())
            .map(Some)
            .map_err(|message| r.error(format!("{path}.host"), Some(h.span()), message))
            .ok(),
    };
    let path_match = path_match(raw, &path, r);
    let methods = methods(raw.methods.as_deref(), &path, r);

    // Whether this route proxies (to an upstream, or to AI providers'
    // upstreams); `None` when its action is unclear, which is reported
    // below, so proxy-only settings are not judged against it.
    let proxies = match (&raw.upstream, &raw.respond, &raw.ai, &raw.redirect) {
        (Some(_), None, None, None) | (None, None, Some(_), None) => Some(true),
        (None, Some(_), None, None) | (None, None, None, Some(_)) => Some(false),
        _ => None,
    };
    let is_ai = matches!(
        (&raw.upstream, &raw.respond, &raw.ai),
        (None, None, Some(_))
    );
    let action = action(raw, &path, element, cx, r);

    let host_header = match &raw.host_header {
        None => Some(None),
        Some(h) => {
            let key = format!("{path}.host-header");
            if proxies == Some(false) {
                r.error(key, Some(h.span()), PROXY_ONLY);
                None
            } else if is_ai {
                r.error(key, Some(h.span()), AI_NO_HOST_HEADER);
                None
            } else {
                text::host_header(h.get_ref())
                    .map(|()| Some(h.get_ref().clone()))
                    .map_err(|message| r.error(key, Some(h.span()), message))
                    .ok()
            }
        }
    };
    let route_limits = route_limits(raw.limits.as_ref(), cx.limits, &path, proxies, r);
    let policy = policy::policy(raw, &path, proxies, &cx.policy, r);
    let cache = match &raw.cache {
        Some(c) if is_ai => {
            r.error(format!("{path}.cache"), Some(c.span()), AI_NO_CACHE);
            None
        }
        c => route_cache(c.as_ref(), &path, proxies, cx.cache, r),
    };
    let tls = tls::route(raw, &path, &cx.listening, r);
    let retry = retry(raw.retry.as_ref(), &path, proxies, r);
    let transform = route_transform(raw, &path, path_match.as_ref(), proxies, r);
    let cors = route_cors(raw.cors.as_ref(), &path, r);
    let tunnels = tunnels(raw, &path, proxies, is_ai, r);
    let compression = route_compression(raw.compression.as_ref(), &path, r);

    let key = match (&host, &path_match, &methods) {
        (Some(host), Some(path_match), Some(methods)) => {
            let mut sorted = methods.clone();
            sorted.sort();
            let shown = name.clone().unwrap_or_else(|| format!("route-{i}"));
            Some(((host.clone(), path_match.clone(), sorted), shown))
        }
        _ => None,
    };
    let route = match (name, host, path_match, methods) {
        (Some(name), Some(host), Some(path), Some(methods)) => {
            match (
                action,
                host_header,
                route_limits,
                policy,
                cache,
                tls,
                retry,
                transform,
                tunnels,
            ) {
                (
                    Some(action),
                    Some(host_header),
                    Some(limits),
                    Some(policy),
                    Some(cache),
                    Some(tls),
                    Some(retry),
                    Some(transform),
                    Some(tunnels),
                ) => {
                    let Policy {
                        auth,
                        allow_groups,
                        forward_credentials,
                        consumer_header,
                        rate_limit_headers,
                        consumer_metrics,
                        rate_limits,
                        concurrency,
                        ip_rules,
                    } = policy;
                    let RouteTls {
                        redirect_https,
                        https_port,
                        hsts,
                        require_client_cert,
                    } = tls;
                    Some(Route {
                        name,
                        host,
                        path,
                        methods,
                        action,
                        host_header,
                        limits,
                        auth,
                        allow_groups,
                        forward_credentials,
                        consumer_header,
                        rate_limit_headers,
                        consumer_metrics,
                        rate_limits,
                        concurrency,
                        ip_rules,
                        cache,
                        redirect_https,
                        https_port,
                        hsts,
                        require_client_cert,
                        access_log: raw.access_log.unwrap_or(true),
                        retry,
                        transform,
                        cors: None,
                        tunnels,
                        compression: None,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    };
    let route = cors.and_then(|cors| route.map(|route| Route { cors, ..route }));
    let route = match (route, compression) {
        (Some(route), Some(compression)) => Some(Route {
            compression,
            ..route
        }),
        _ => None,
    };
    (key, route)
}

pub(super) const PROXY_ONLY: &str =
    "applies only to routes that proxy to an upstream; a [routes.respond] route contacts none";

const AI_NO_HOST_HEADER: &str = "does not apply to a [routes.ai] route: each provider's \
     requests carry the Host of its upstream";

const AI_NO_CACHE: &str = "a [routes.ai] route cannot cache: its answers are translated \
     from a provider's, per request, not served from an origin";

fn path_match(raw: &RawRoute, path: &str, r: &mut Reporter<'_>) -> Option<PathMatch> {
    let (text, key, make): (&Spanned<String>, &str, fn(String) -> PathMatch) =
        match (&raw.path, &raw.path_prefix) {
            (None, None) => return Some(PathMatch::Prefix("/".into())),
            (Some(_), Some(prefix)) => {
                r.error(
                    format!("{path}.path-prefix"),
                    Some(prefix.span()),
                    "set either `path` (exact match) or `path-prefix`, not both",
                );
                return None;
            }
            (Some(exact), None) => (exact, "path", PathMatch::Exact),
            (None, Some(prefix)) => (prefix, "path-prefix", PathMatch::Prefix),
        };
    match text::path(text.get_ref()) {
        Ok(()) => Some(make(text.get_ref().clone())),
        Err(message) => {
            r.error(format!("{path}.{key}"), Some(text.span()), message);
            None
        }
    }
}

fn methods(
    raw: Option<&[Spanned<String>]>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    let raw = raw.unwrap_or_default();
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (j, m) in raw.iter().enumerate() {
        let key = format!("{path}.methods[{j}]");
        if let Err(message) = text::method(m.get_ref()) {
            r.error(key, Some(m.span()), message);
            ok = false;
        } else if let Some(first) = out.iter().position(|seen| seen == m.get_ref()) {
            r.error(
                key,
                Some(m.span()),
                format!("{:?} is already listed as methods[{first}]", m.get_ref()),
            );
            ok = false;
        } else {
            out.push(m.get_ref().clone());
        }
    }
    ok.then_some(out)
}

fn action(
    raw: &RawRoute,
    path: &str,
    element: &Range<usize>,
    cx: &Context<'_>,
    r: &mut Reporter<'_>,
) -> Option<Action> {
    // The actions written, in the order the keys are documented.
    let written: Vec<(&str, &str, Range<usize>)> = [
        raw.upstream
            .as_ref()
            .map(|u| ("upstream", "`upstream` (proxy)", u.span())),
        raw.respond
            .as_ref()
            .map(|t| ("respond", "[routes.respond] (answer directly)", t.span())),
        raw.ai
            .as_ref()
            .map(|t| ("ai", "[routes.ai] (serve AI models)", t.span())),
        raw.redirect
            .as_ref()
            .map(|t| ("redirect", "[routes.redirect] (redirect)", t.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if written.is_empty() {
        r.error(
            path,
            Some(element.clone()),
            "no action: set `upstream = \"NAME\"` to proxy, add a [routes.respond] table to \
             answer directly, a [routes.ai] table to serve AI models, or a [routes.redirect] \
             table to redirect",
        );
        return None;
    }
    if written.len() > 1 {
        // Reported at the later of the first two, as the one added last.
        let (_, first, _) = &written[0];
        let (key, second, span) = &written[1];
        r.error(
            format!("{path}.{key}"),
            Some(span.clone()),
            format!(
                "set either {first} or {second}, not both; a route has one action: \
                 `upstream`, [routes.respond], [routes.ai] or [routes.redirect]"
            ),
        );
        return None;
    }
    if let Some(ai) = &raw.ai {
        return route_ai(ai, path, cx.ai_models, r).map(Action::Ai);
    }
    if let Some(redirect) = &raw.redirect {
        let captures = raw.rewrite.is_some();
        return super::transform::redirect(redirect, &format!("{path}.redirect"), captures, r)
            .map(Action::Redirect);
    }
    if let Some(respond) = &raw.respond {
        return responder(respond.get_ref(), &format!("{path}.respond"), r).map(Action::Respond);
    }
    let name = raw.upstream.as_ref()?;
    match cx.upstream_index.get(name.get_ref().as_str()) {
        Some(&index) => Some(Action::Upstream(index)),
        None => {
            let mut message = format!("no upstream named {:?}", name.get_ref());
            if cx.upstream_index.is_empty() {
                message.push_str(" (no [[upstreams]] are defined)");
            } else {
                let mut known: Vec<&str> = cx.upstream_index.keys().copied().collect();
                known.sort_unstable();
                message.push_str(&format!("; defined upstreams: {}", known.join(", ")));
            }
            r.error(format!("{path}.upstream"), Some(name.span()), message);
            None
        }
    }
}

fn responder(raw: &RawRespond, path: &str, r: &mut Reporter<'_>) -> Option<Responder> {
    let status = match &raw.status {
        None => Some(200),
        Some(s) if matches!(s.get_ref(), Scalar::Int(100..=199)) => {
            r.error(
                format!("{path}.status"),
                Some(s.span()),
                "an interim (1xx) status cannot end a request; use 200 to 599",
            );
            None
        }
        Some(s) => {
            integer(s, &format!("{path}.status"), 200..=599, r).and_then(|n| u16::try_from(n).ok())
        }
    };

    let mut ok = true;
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in raw.headers.iter().flat_map(|h| &h.0) {
        let key = key_path(&format!("{path}.headers"), name);
        // Key spans are not kept for map entries; the value sits on the
        // same line, which is what a reader needs.
        let problem = text::header_name(name).err().or_else(|| {
            headers
                .iter()
                .find(|(seen, _)| seen.eq_ignore_ascii_case(name))
                .map(|(seen, _)| format!("{name:?} repeats header {seen:?} (names ignore case)"))
        });
        let problem = problem.or_else(|| text::header_value(value.get_ref()).err());
        match problem {
            Some(message) => {
                r.error(key, Some(value.span()), message);
                ok = false;
            }
            None => headers.push((name.clone(), value.get_ref().clone())),
        }
    }

    let body = raw
        .body
        .as_ref()
        .map_or_else(String::new, |b| b.get_ref().clone());
    if let (Some(b), Some(s)) = (&raw.body, status) {
        if !b.get_ref().is_empty() && NO_CONTENT_STATUSES.contains(&s) {
            r.error(
                format!("{path}.body"),
                Some(b.span()),
                format!("a {s} response has no content (RFC 9110); remove `body`"),
            );
            ok = false;
        }
    }
    Some(Responder {
        status: status?,
        headers: ok.then_some(headers)?,
        body,
    })
}

fn route_limits(
    raw: Option<&Spanned<RawRouteLimits>>,
    global: Option<&Limits>,
    path: &str,
    proxies: Option<bool>,
    r: &mut Reporter<'_>,
) -> Option<RouteLimits> {
    let empty = RawRouteLimits::default();
    let l = raw.map_or(&empty, Spanned::get_ref);
    let key = |k: &str| format!("{path}.limits.{k}");

    let max_body_size = match &l.max_body_size {
        Some(v) => size(v, &key("max-body-size"), r),
        None => global.map(|g| g.max_body_size),
    };
    let mut timeout =
        |v: &Option<Spanned<_>>, k: &str, fallback: Option<std::time::Duration>| match v {
            Some(v) if proxies == Some(false) => {
                r.error(key(k), Some(Spanned::span(v)), PROXY_ONLY);
                None
            }
            Some(v) => duration(v, &key(k), AllowZero::No, r),
            None => fallback,
        };
    let connect_timeout = timeout(
        &l.connect_timeout,
        "connect-timeout",
        global.map(|g| g.connect_timeout),
    );
    let response_head_timeout = timeout(
        &l.response_head_timeout,
        "response-head-timeout",
        global.map(|g| g.response_head_timeout),
    );
    // Any route: one answered by [routes.respond] still reads (and
    // discards) the client's body.
    let body_idle_timeout = match &l.body_idle_timeout {
        Some(v) => duration(v, &key("body-idle-timeout"), AllowZero::No, r),
        None => global.map(|g| g.body_idle_timeout),
    };
    Some(RouteLimits {
        max_body_size: max_body_size?,
        connect_timeout: connect_timeout?,
        response_head_timeout: response_head_timeout?,
        body_idle_timeout: body_idle_timeout?,
    })
}
