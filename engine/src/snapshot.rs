//! A compiled config: everything a worker consults per request, built once
//! when a config is accepted and never mutated afterwards.
//!
//! The validated `Config` comes from `ringway-config`; compiling it adds the
//! router, each route as one [`CompiledRoute`] (its handler with prebuilt
//! bytes, its policies, its TLS rules), and the TLS settings with their
//! certificates loaded. Answering from the built-in responder is one buffer
//! append plus the Date line.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use regex::Regex;
use ringway_config::{
    Action, AiRoute, Config, ConfigErrors, ErrorFormat, PathRewrite, Redirect, Route,
    RouteTransform, Var,
};

use crate::access_log::queue::Sinks;
use crate::ai::provider::{self as ai, Catalog};
use crate::cache::store::SharedCache;
use crate::http::write;
use crate::policy::cors::CorsPolicy;
use crate::policy::{Policies, RoutePolicy};
use crate::router::Router;
use crate::stats::ai::AiSets;
use crate::stats::labeled::Labeled;
use crate::tls::client::UpstreamTls;
use crate::tls::ListenerTls;
use crate::upstream::tunnel::Tunnels;
use crate::upstream::{self, Names};

/// A built-in answer with its bytes laid out ahead of time.
#[derive(Debug)]
pub(crate) struct Prebuilt {
    pub(crate) status: u16,
    /// Status line, Server and the configured headers; the Date line, the
    /// response stage's lines, the framing and Connection lines and the
    /// blank line follow per response.
    pub(crate) head: Bytes,
    pub(crate) body: Bytes,
}

/// What answers a route's requests.
pub(crate) enum Handler {
    /// The built-in responder.
    Respond(Prebuilt),
    /// Forwarding to `Config::upstreams[group]` (through the cache when
    /// the route caches).
    Upstream { group: usize },
    /// The AI API in front of the configured providers.
    Ai(AiRoute),
    /// A redirect (`[routes.redirect]`).
    Redirect(Redirect),
}

/// One route, compiled: everything the pipeline needs to answer it.
pub(crate) struct CompiledRoute {
    /// Its index in the config's routes (and in per-worker route state).
    pub(crate) index: usize,
    pub(crate) handler: Handler,
    pub(crate) policy: RoutePolicy,
    /// `redirect-https`: `Some(https-port)` answers plain-HTTP requests
    /// with 308 to the same URL over HTTPS.
    pub(crate) redirect_https: Option<Option<u16>>,
    pub(crate) require_client_cert: bool,
    /// The `Strict-Transport-Security` line added to answers over TLS.
    pub(crate) hsts: Option<Bytes>,
    /// The `rewrite` regex, compiled.
    pub(crate) rewrite: Option<Regex>,
    /// The route has rules that change its requests or answers, or how
    /// its errors read (see `proxy::transform`); false: none cost anything.
    pub(crate) transforms: bool,
    /// `[routes.cors]`, compiled.
    pub(crate) cors: Option<CorsPolicy>,
}

/// The access log as the workers apply it, when it is enabled.
pub(crate) struct LogPlan {
    /// The queues to the writer, one per worker.
    pub(crate) sinks: Arc<Sinks>,
    /// Successful requests logged, per million.
    pub(crate) sample: u32,
    /// Whether query strings are logged.
    pub(crate) query: bool,
}

/// An immutable compiled config.
pub(crate) struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) config: Config,
    pub(crate) router: Router,
    pub(crate) routes: Vec<CompiledRoute>,
    pub(crate) policies: Policies,
    /// Per listener: its TLS settings, compiled (certificates loaded).
    pub(crate) tls: Vec<Option<ListenerTls>>,
    /// The headers listeners carry client-certificate subjects in; removed
    /// from every client request.
    pub(crate) subject_headers: Vec<String>,
    /// Per upstream: its TLS settings, compiled (CA and client certificate
    /// loaded).
    pub(crate) upstream_tls: Vec<Option<UpstreamTls>>,
    /// What the workers share about the upstream servers.
    pub(crate) upstreams: upstream::Shared,
    /// What the upstreams' server names resolved to when this generation
    /// was compiled, and whom to ask for a fresh look.
    pub(crate) names: Names,
    /// The per-route and per-server counters of every worker.
    pub(crate) metrics: Labeled,
    /// The AI providers (their keys read) and models.
    pub(crate) ai: Catalog,
    /// The AI counters of every worker.
    pub(crate) ai_stats: AiSets,
    /// `Some` while the access log is enabled.
    pub(crate) access_log: Option<LogPlan>,
    /// The access log's queues: made when the log is first enabled, then
    /// carried to every later generation (records in flight stay in
    /// them), so `queue` keeps its first value until a restart.
    pub(crate) log_sinks: Option<Arc<Sinks>>,
    /// Some listener has header rules or JSON errors.
    pub(crate) listener_transforms: bool,
    /// Some value uses `$tls_sni`: connections keep their SNI.
    pub(crate) keeps_sni: bool,
    /// Each route's protocol upgrades and its open tunnels.
    pub(crate) tunnels: Tunnels,
    /// The cache every worker shares (stores carried over from the
    /// previous generation where unchanged).
    pub(crate) cache: Arc<SharedCache>,
}

impl Snapshot {
    /// Compiles `config` as generation `generation` for `workers` workers,
    /// carrying over from `prev` the shared state of what is unchanged.
    pub(crate) fn compile(
        config: Config,
        generation: u64,
        prev: Option<&Snapshot>,
        workers: usize,
        names: &Names,
    ) -> Result<Snapshot, ConfigErrors> {
        let router = Router::new(&config);
        let prev_policies: Vec<&RoutePolicy> = prev
            .map(|p| p.routes.iter().map(|r| &r.policy).collect())
            .unwrap_or_default();
        let (policies, route_policies) = Policies::compile(&config, &prev_policies, workers)?;
        let mut tls = Vec::with_capacity(config.listeners.len());
        let mut errors = Vec::new();
        for (i, l) in config.listeners.iter().enumerate() {
            let Some(settings) = &l.tls else {
                tls.push(None);
                continue;
            };
            let prev_tls =
                prev.and_then(|p| p.tls.iter().flatten().find(|t| t.configured == l.address));
            match ListenerTls::compile(i, l, settings, prev_tls) {
                Ok(t) => tls.push(Some(t)),
                Err(e) => errors.extend(e),
            }
        }
        let mut upstream_tls = Vec::with_capacity(config.upstreams.len());
        for (i, up) in config.upstreams.iter().enumerate() {
            match up.tls.as_ref().map(|t| UpstreamTls::compile(i, t)) {
                None => upstream_tls.push(None),
                Some(Ok(t)) => upstream_tls.push(Some(t)),
                Some(Err(e)) => errors.push(e),
            }
        }
        let ai = match ai::compile(&config, prev.map(|p| &p.ai)) {
            Ok(c) => c,
            Err(e) => {
                errors.extend(e);
                Catalog::default()
            }
        };
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let routes = config
            .routes
            .iter()
            .zip(route_policies)
            .enumerate()
            .map(|(index, (r, policy))| CompiledRoute::compile(index, r, policy))
            .collect();
        let members = upstream::members::expand(&config, &names.resolved);
        let upstreams = upstream::Shared::compile(&config, &members, prev.map(|p| &p.upstreams));
        let servers: Vec<(&str, SocketAddr)> = config
            .upstreams
            .iter()
            .zip(&members)
            .flat_map(|(up, m)| m.iter().map(|m| (up.name.as_str(), m.address)))
            .collect();
        let metrics = Labeled::new(&config, &servers, workers, prev.map(|p| &p.metrics));
        let ai_stats = AiSets::new(&config, workers, prev.map(|p| &p.ai_stats));
        let tunnels = Tunnels::new(&config, prev.map(|p| &p.tunnels));
        let log = &config.access_log;
        let log_sinks = match prev.and_then(|p| p.log_sinks.clone()) {
            Some(sinks) => Some(sinks),
            None if log.enabled => Some(Arc::new(Sinks::new(workers, log.queue))),
            None => None,
        };
        let access_log = log_sinks
            .as_ref()
            .filter(|_| log.enabled)
            .map(|sinks| LogPlan {
                sinks: sinks.clone(),
                sample: log.sample.per_million(),
                query: log.query,
            });
        let listener_transforms = config.listeners.iter().any(|l| {
            l.request_headers.is_some()
                || l.response_headers.is_some()
                || l.error_format != ErrorFormat::Text
        });
        let keeps_sni = uses_sni(&config);
        let cache = Arc::new(SharedCache::compile(&config, prev.map(|p| &*p.cache)));
        Ok(Snapshot {
            listener_transforms,
            keeps_sni,
            names: names.clone(),
            access_log,
            log_sinks,
            generation,
            metrics,
            ai,
            ai_stats,
            upstreams,
            subject_headers: tls
                .iter()
                .flatten()
                .filter_map(|t| t.subject_header.clone())
                .collect(),
            config,
            router,
            routes,
            policies,
            tls,
            upstream_tls,
            tunnels,
            cache,
        })
    }

    /// The configured route behind compiled route `index`.
    pub(crate) fn route_config(&self, index: usize) -> &Route {
        &self.config.routes[index]
    }
}

impl CompiledRoute {
    fn compile(index: usize, r: &Route, policy: RoutePolicy) -> CompiledRoute {
        let handler = match &r.action {
            Action::Respond(resp) => {
                let mut head = BytesMut::new();
                write::status_line(
                    &mut head,
                    resp.status,
                    write::reason(resp.status).as_bytes(),
                );
                head.extend_from_slice(b"Server: ringway\r\n");
                for (name, value) in &resp.headers {
                    write::header(&mut head, name.as_bytes(), value.as_bytes());
                }
                Handler::Respond(Prebuilt {
                    status: resp.status,
                    head: head.freeze(),
                    body: Bytes::copy_from_slice(resp.body.as_bytes()),
                })
            }
            Action::Upstream(group) => Handler::Upstream { group: *group },
            Action::Ai(ai) => Handler::Ai(ai.clone()),
            Action::Redirect(rd) => Handler::Redirect(rd.clone()),
        };
        let t = &r.transform;
        let rewrite = match &t.path {
            Some(PathRewrite::Regex { regex, .. }) => {
                Some(Regex::new(regex).expect("validated: the regex compiles"))
            }
            _ => None,
        };
        let hsts = r.hsts.as_ref().map(|v| {
            let mut line = BytesMut::new();
            write::header(&mut line, b"Strict-Transport-Security", v.as_bytes());
            line.freeze()
        });
        CompiledRoute {
            index,
            handler,
            policy,
            redirect_https: r.redirect_https.then_some(r.https_port),
            require_client_cert: r.require_client_cert,
            hsts,
            rewrite,
            transforms: *t != RouteTransform::default(),
            cors: r.cors.as_ref().map(CorsPolicy::compile),
        }
    }
}

/// Whether any value in `config` uses `$tls_sni`.
fn uses_sni(config: &Config) -> bool {
    let sni = |t: &ringway_config::Template| t.uses(|v| *v == Var::TlsSni);
    let rules = |h: &Option<ringway_config::HeaderRules>| {
        h.as_ref().is_some_and(|h| h.templates().any(sni))
    };
    config
        .listeners
        .iter()
        .any(|l| rules(&l.request_headers) || rules(&l.response_headers))
        || config.routes.iter().any(|r| {
            let t = &r.transform;
            rules(&t.request_headers)
                || rules(&t.response_headers)
                || t.query
                    .as_ref()
                    .is_some_and(|q| q.add.iter().any(|(_, v)| sni(v)))
                || t.error_bodies.iter().any(|b| sni(&b.body))
                || matches!(&r.action, Action::Redirect(rd) if sni(&rd.location))
        })
}

/// Checks `config` as a start or reload would: compiles it, loading its
/// key material and certificates (`ringway validate`).
pub fn check(config: Config) -> Result<(), ConfigErrors> {
    Snapshot::compile(config, 0, None, 1, &Names::default()).map(|_| ())
}
