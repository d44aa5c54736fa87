//! The request pipeline of one worker: accepting connections, the client
//! connection loop, the stages every request passes (`pipeline`), the
//! response and body filter stages, forwarding to upstreams and serving
//! from the cache, and the access-log records of the log stage.

pub(crate) mod accept;
pub(crate) mod access;
pub(crate) mod ai;
pub(crate) mod answer;
pub(crate) mod body;
pub(crate) mod cached;
pub(crate) mod compress;
pub(crate) mod conn;
pub(crate) mod cors;
pub(crate) mod ctx;
pub(crate) mod duplex;
pub(crate) mod exchange;
pub(crate) mod filter;
pub(crate) mod forward;
pub(crate) mod pipeline;
pub(crate) mod rewrite;
pub(crate) mod transform;
pub(crate) mod tunnel;
