//! The HTTP cache (RFC 9111), one shard per worker: Cache-Control
//! directives, freshness arithmetic, what may be stored, cache keys and
//! Vary selection, conditional requests (304), byte ranges (206), stored
//! entries, the shard store (S3-FIFO under a byte budget) and the cache's
//! reading of responses. The request path that uses them is `proxy::cached`.

pub(crate) mod conditional;
pub(crate) mod directives;
pub(crate) mod entry;
pub(crate) mod freshness;
pub(crate) mod key;
pub(crate) mod range;
pub(crate) mod response;
pub(crate) mod shard;
pub(crate) mod storable;
pub(crate) mod store;
