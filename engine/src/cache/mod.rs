//! The HTTP cache (RFC 9111), one shard per worker. So far: Cache-Control
//! directives, freshness arithmetic, what may be stored, cache keys and
//! Vary selection, conditional requests (304), and the shard store
//! (S3-FIFO under a byte budget). Entries with head and body, revalidation
//! with the origin, request collapsing, stale-while-revalidate and the
//! request path come with the rest of issue #6.

pub mod conditional;
pub mod directives;
pub mod entry;
pub mod freshness;
pub mod key;
pub mod shard;
pub mod storable;
pub mod store;
