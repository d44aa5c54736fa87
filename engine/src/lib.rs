//! ringway: a thread-per-core HTTP API gateway on io_uring.
//!
//! One worker per CPU, each a pinned thread with its own monoio runtime,
//! its own SO_REUSEPORT listeners and its own pools; a connection lives and
//! dies on the worker that accepted it. See `DESIGN.md` for the data flow.
//!
//! ```no_run
//! let config = ringway_config::Config::from_toml_str(ringway_config::DEFAULT_CONFIG)
//!     .expect("the default config is valid");
//! let server = ringway::Server::start(config).expect("listeners bind");
//! println!("serving on {:?}", server.listen_addrs());
//! server.shutdown();
//! ```

#![deny(clippy::undocumented_unsafe_blocks)]

// Layers (DESIGN.md "Engine layers"): each module imports only from the
// layers above it in this list; `tests/layers.rs` checks it.
// L0: protocol syntax, counters, the error type.
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod stats;
// L1: runtime primitives.
pub(crate) mod rt;
// L2: the concepts, each testable alone.
pub(crate) mod access_log;
pub(crate) mod ai;
pub(crate) mod cache;
pub(crate) mod policy;
pub(crate) mod router;
pub(crate) mod tls;
pub(crate) mod upstream;
// L3: a compiled config, and the per-worker context.
pub(crate) mod snapshot;
pub(crate) mod worker;
// L4: the request pipeline.
pub(crate) mod proxy;
// L5: server lifecycle, control plane, admin API.
pub mod admin;
pub(crate) mod runtime;
pub(crate) mod server;
// The invariants `fuzz/` checks (and the seed corpus, in the tests).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use error::{Kind, Side};
pub use policy::auth::hash_password;
pub use rt::cpus::allowed_cpus;
pub use rt::mem::set_release as set_memory_release;
pub use runtime::control::{Format, Handle, ReloadError, ReloadStats, Reloaded, WorkerStatus};
pub use runtime::watch::{start as watch_config, Watch};
pub use server::{Server, StartError};
pub use snapshot::check as check_config;
pub use stats::Totals;
pub use worker::{Hooks, Logged, WorkerInfo};

/// The engine's internals that the benchmarks measure directly.
#[doc(hidden)]
pub mod bench {
    pub use crate::cache::entry::{Entry, Parts};
    pub use crate::cache::store::{Identity, LocalCache, RouteCache, SharedCache};
    pub use crate::http::coding::Encoder;
    pub use crate::http::head::{HeadLimits, RequestHead};
    pub use crate::http::parse::parse_request;
    pub use crate::policy::auth::{Auth, AuthCache, CacheStats, Outcome};
    pub use crate::router::{Match, Router};
    pub use crate::upstream::balance::{hash_key, Balancer, Load, Maglev, Policy, Servers};
    pub use crate::upstream::balance::{DEFAULT_DECAY_NS, MAGLEV_SIZE};

    /// Picks servers of a config's first upstream as a worker does: each
    /// server's shared health read, backups and slow start applied, then
    /// the policy.
    pub struct Picker(crate::upstream::Upstreams);

    impl Picker {
        pub fn new(config: &ringway_config::Config) -> Picker {
            use crate::upstream::{members, Names, Shared, Upstreams};
            let members = members::expand(config, &Names::default().resolved);
            let shared = Shared::compile(config, &members, None);
            let stats: Vec<_> = members
                .iter()
                .flatten()
                .map(|_| std::sync::Arc::default())
                .collect();
            let tls: Vec<_> = config.upstreams.iter().map(|_| None).collect();
            Picker(Upstreams::new(0, config, &tls, &shared, &stats, None, None))
        }

        /// One pick for a request whose hash key is `key`.
        pub fn pick(&self, key: u64) -> usize {
            self.0.pick(0, key, &[]).unwrap_or(usize::MAX)
        }
    }

    /// Writes heads as the upstream request stage and the response stage
    /// do, with a route's transforms: what a request costs on top of
    /// routing and I/O.
    pub struct Heads {
        snap: crate::snapshot::Snapshot,
        ids: crate::worker::ids::Ids,
    }

    impl Heads {
        pub fn new(config: ringway_config::Config) -> Heads {
            let names = crate::upstream::Names::default();
            let snap = crate::snapshot::Snapshot::compile(config, 1, None, 1, &names)
                .expect("a config that compiles");
            Heads {
                snap,
                ids: crate::worker::ids::Ids::new(0),
            }
        }

        fn ctx(&self, route: usize, head: &RequestHead) -> crate::proxy::ctx::Ctx {
            use crate::proxy::transform::ReqView;
            let mut ctx = crate::proxy::ctx::Ctx::new(
                std::time::Instant::now(),
                self.ids.request_id(),
                self.ids.trace(None),
            );
            ctx.route = Some(route);
            if self.snap.routes[route].transforms || self.snap.listener_transforms {
                let peer = std::net::IpAddr::from([127, 0, 0, 1]);
                ctx.req = Some(ReqView::of(head, peer, Some(0)));
            }
            ctx
        }

        /// The request head `route` sends upstream for `head`.
        pub fn request(&self, route: usize, head: &RequestHead, out: &mut bytes::BytesMut) {
            use crate::proxy::rewrite::{write_request_head, Cond, Rewrite};
            let ctx = self.ctx(route, head);
            let rw = Rewrite::new(None, &self.snap, route, &ctx);
            let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
            let config = self.snap.route_config(route);
            write_request_head(out, peer, head, config, &rw, Cond::Pass);
        }

        /// `response` (a status line and fields) as the response stage
        /// leaves it for `route`'s rules.
        pub fn response(
            &self,
            route: usize,
            head: &RequestHead,
            response: &[u8],
            out: &mut bytes::BytesMut,
        ) {
            use crate::proxy::transform::{apply, rules_of, Vars};
            let mut ctx = self.ctx(route, head);
            ctx.status = 200;
            out.extend_from_slice(response);
            let rules = rules_of(&self.snap, &ctx, false);
            if rules.iter().any(Option::is_some) {
                let vars = Vars {
                    snap: &self.snap,
                    ctx: &ctx,
                    tls: None,
                    server: None,
                    captures: None,
                    target: None,
                };
                apply(rules, out, 0, &vars);
            }
        }
    }
}
