//! `ringway-load`: an HTTP/1.1 load generator that checks latency targets
//! honestly.
//!
//! The crate is a library with a thin binary on top so that the
//! integration tests and `compare` drive the same code the CLI does. The
//! flow is linear:
//!
//! 1. [`scenario`] turns flags and an optional TOML file into a validated
//!    [`plan::Plan`] (what to send, how fast, for how long) and a
//!    [`targets::Targets`] (what "good enough" means).
//! 2. [`run`] executes the plan: one pinned monoio runtime per thread, one
//!    task per keep-alive connection, open loop (fixed schedule, latency
//!    measured from the intended send time) or closed loop (as fast as the
//!    server answers).
//! 3. [`stats`] holds the HdrHistograms and counters each thread fills and
//!    the main thread merges; [`report`] renders them for humans and JSON,
//!    [`plot`] as an SVG percentile chart, [`hdrlog`] as an interval log,
//!    [`window`] as figures over windows of whole seconds.
//! 4. [`targets`] evaluates the thresholds into PASS/FAIL lines and an exit
//!    code; [`compare`] alternates two URLs and prints medians.
//!
//! The generator talks to its target over sockets only and assumes nothing
//! about the server beyond RFC 9112.

#![forbid(unsafe_code)]

pub mod compare;
pub mod hdrlog;
pub mod http;
pub mod plan;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod stats;
pub mod targets;
pub mod units;
pub mod url;
pub mod window;

pub use plan::Plan;
pub use report::Report;
pub use targets::Targets;
