//! The request pipeline of one worker: accepting connections, the client
//! connection loop, the stages every request passes, forwarding to
//! upstreams and serving from the cache.

pub(crate) mod accept;
pub(crate) mod body;
pub(crate) mod cached;
pub(crate) mod conn;
pub(crate) mod forward;
