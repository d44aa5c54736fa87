//! One config generation as one worker runs it: the shared, immutable
//! [`Snapshot`] plus this worker's state for it.
//!
//! A worker holds its current generation in an `Rc`, and each request
//! clones that `Rc` when it starts and keeps it to the end: routing,
//! limits, upstream choice and pooled connections all come from the same
//! generation even if a reload lands halfway. The clone is a non-atomic
//! increment on worker-local memory; cloning the `Arc<Snapshot>` per request
//! instead would bounce one cache line between every core.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ringway_config::{EncodedSlashes, Limits, UnderscoresInHeaders};

use crate::cache::store::LocalCache;
use crate::policy::LocalPolicies;
use crate::snapshot::Snapshot;
use crate::stats::ai::{ModelStats, ProviderStats};
use crate::stats::labeled::{ConsumerStats, RouteStats};
use crate::upstream::Upstreams;

/// A worker's view of one config generation.
pub(crate) struct Generation {
    pub(crate) snap: Arc<Snapshot>,
    pub(crate) upstreams: Upstreams,
    pub(crate) policies: LocalPolicies,
    pub(crate) cache: LocalCache,
    /// This worker's counters per route, by route index (empty when
    /// `[metrics] enabled` is off).
    pub(crate) route_stats: Vec<Arc<RouteStats>>,
    /// Per route: requests per consumer, for routes with
    /// `consumer-metrics` (empty when metrics are off).
    pub(crate) consumer_stats: Vec<Option<Arc<[ConsumerStats]>>>,
    /// This worker's AI counters per (model, provider), by `model *
    /// providers + provider` (empty when metrics are off).
    ai_pairs: Vec<Arc<ModelStats>>,
    /// This worker's AI provider error counters (empty when metrics are
    /// off).
    ai_providers: Vec<Arc<ProviderStats>>,
    /// A xorshift state for this worker's draws (AI targets and keys).
    random: Cell<u64>,
    /// This worker's server config per TLS listener.
    tls: Vec<(SocketAddr, WorkerTls)>,
    /// Per listener (by configured address): what encoded slashes get,
    /// whether a client's request ID is kept, and what header names with
    /// underscores get.
    listeners: Vec<(SocketAddr, EncodedSlashes, bool, UnderscoresInHeaders)>,
}

/// A TLS listener as one worker serves it.
#[derive(Clone)]
pub(crate) struct WorkerTls {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) handshake_timeout: Duration,
    /// Set when client certificates are asked for.
    pub(crate) subject_header: Option<String>,
}

impl Generation {
    /// Builds a worker's state for `snap`, carrying over what `prev` has
    /// that still applies.
    pub(crate) fn new(worker: usize, snap: Arc<Snapshot>, prev: Option<&Generation>) -> Generation {
        let upstreams = Upstreams::new(
            worker,
            &snap.config,
            &snap.upstream_tls,
            &snap.upstreams,
            &snap.metrics.servers_of(worker),
            snap.names.refresh.clone(),
            prev.map(|p| &p.upstreams),
        );
        let (route_stats, consumer_stats) = if snap.metrics.enabled {
            (
                snap.metrics.routes_of(worker),
                snap.metrics.consumers_of(worker),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let (ai_pairs, ai_providers) = if snap.metrics.enabled {
            (
                snap.ai_stats.pairs_of(worker),
                snap.ai_stats.providers_of(worker),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let route_policies: Vec<_> = snap.routes.iter().map(|r| &r.policy).collect();
        let policies =
            LocalPolicies::new(&snap.policies, &route_policies, prev.map(|p| &p.policies));
        let cache = LocalCache::new(snap.cache.clone());
        let tls = snap
            .tls
            .iter()
            .flatten()
            .map(|t| {
                let worker = WorkerTls {
                    config: t.for_worker(),
                    handshake_timeout: t.handshake_timeout,
                    subject_header: t.subject_header.clone(),
                };
                (t.configured, worker)
            })
            .collect();
        let listeners = snap
            .config
            .listeners
            .iter()
            .map(|l| {
                let u = l.underscores_in_headers;
                (l.address, l.encoded_slashes, l.trust_request_id, u)
            })
            .collect();
        Generation {
            route_stats,
            consumer_stats,
            ai_pairs,
            ai_providers,
            random: Cell::new(0x9e37_79b9_7f4a_7c15 ^ (worker as u64 + 1)),
            listeners,
            snap,
            upstreams,
            policies,
            cache,
            tls,
        }
    }

    /// How connections accepted on `configured` speak TLS, if they do.
    pub(crate) fn tls_for(&self, configured: SocketAddr) -> Option<WorkerTls> {
        self.tls
            .iter()
            .find(|(a, _)| *a == configured)
            .map(|(_, t)| t.clone())
    }

    /// What a percent-encoded slash in a path gets on the listener
    /// configured as `configured` (reject when it is gone).
    pub(crate) fn encoded_slashes(&self, configured: SocketAddr) -> EncodedSlashes {
        self.listeners
            .iter()
            .find(|(a, _, _, _)| *a == configured)
            .map_or(EncodedSlashes::Reject, |(_, s, _, _)| *s)
    }

    /// What a request field whose name holds `_` gets on the listener
    /// configured as `configured` (dropped when it is gone).
    pub(crate) fn underscores(&self, configured: SocketAddr) -> UnderscoresInHeaders {
        self.listeners
            .iter()
            .find(|(a, _, _, _)| *a == configured)
            .map_or(UnderscoresInHeaders::Drop, |(_, _, _, u)| *u)
    }

    /// Whether a client's `X-Request-Id` is kept on the listener
    /// configured as `configured` (not when it is gone).
    pub(crate) fn trusts_request_id(&self, configured: SocketAddr) -> bool {
        self.listeners
            .iter()
            .any(|(a, _, trust, _)| *a == configured && *trust)
    }

    /// The next of this worker's pseudo-random numbers (xorshift64*:
    /// draws spread over targets and keys, nothing secret).
    pub(crate) fn next_random(&self) -> u64 {
        let mut x = self.random.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// This worker's counters of the (model, provider) pair, when metrics
    /// are on.
    pub(crate) fn ai_pair(&self, model: usize, provider: usize) -> Option<&ModelStats> {
        let providers = self.snap.config.ai_providers.len();
        self.ai_pairs
            .get(model * providers + provider)
            .map(|s| &**s)
    }

    /// This worker's error counters of a provider, when metrics are on.
    pub(crate) fn ai_provider(&self, provider: usize) -> Option<&ProviderStats> {
        self.ai_providers.get(provider).map(|s| &**s)
    }

    pub(crate) fn number(&self) -> u64 {
        self.snap.generation
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.snap.config.limits
    }
}
