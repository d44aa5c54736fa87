//! The HTTP cache (RFC 9111), one shard per worker: Cache-Control
//! directives, freshness arithmetic, what may be stored, cache keys and
//! Vary selection, conditional requests (304), stored entries, the shard
//! store (S3-FIFO under a byte budget) and the cache's reading of
//! responses. The request path that uses them is `proxy::cached`.

pub mod conditional;
pub mod directives;
pub mod entry;
pub mod freshness;
pub mod key;
pub mod response;
pub mod shard;
pub mod storable;
pub mod store;
