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

pub mod admin;
pub mod cache;
pub mod error;
pub mod http;
pub mod io;
pub mod policy;
pub mod proxy;
pub mod router;
pub mod runtime;
pub mod snapshot;
pub mod stats;
pub mod tls;

pub use runtime::control::{Format, Handle, ReloadError, Reloaded};
pub use runtime::server::{Server, StartError};
pub use runtime::worker::{Hooks, WorkerInfo};
pub use stats::Totals;
