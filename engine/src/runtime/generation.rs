//! One config generation as one worker runs it: the shared, immutable
//! [`Snapshot`] plus this worker's state for it.
//!
//! A worker holds its current generation in an `Rc`, and each request
//! clones that `Rc` when it starts and keeps it to the end: routing,
//! limits, upstream choice and pooled connections all come from the same
//! generation even if a reload lands halfway. The clone is a non-atomic
//! increment on worker-local memory; cloning the `Arc<Snapshot>` per request
//! instead would bounce one cache line between every core.

use std::sync::Arc;

use ringway_config::Limits;

use crate::cache::store::LocalCache;
use crate::policy::LocalPolicies;
use crate::proxy::upstream::Upstreams;
use crate::snapshot::Snapshot;

/// A worker's view of one config generation.
pub struct Generation {
    pub snap: Arc<Snapshot>,
    pub upstreams: Upstreams,
    pub policies: LocalPolicies,
    pub cache: LocalCache,
}

impl Generation {
    /// Builds a worker's state for `snap`, carrying over what `prev` has
    /// that still applies.
    pub fn new(snap: Arc<Snapshot>, prev: Option<&Generation>) -> Generation {
        let upstreams = Upstreams::new(&snap.config, prev.map(|p| &p.upstreams));
        let policies = LocalPolicies::new(&snap.policies, prev.map(|p| &p.policies));
        let cache = LocalCache::new(&snap.config, prev.map(|p| &p.cache));
        Generation {
            snap,
            upstreams,
            policies,
            cache,
        }
    }

    pub fn number(&self) -> u64 {
        self.snap.generation
    }

    pub fn limits(&self) -> &Limits {
        &self.snap.config.limits
    }
}
