//! The HTTP cache (RFC 9111), one shard per worker: directive parsing and
//! freshness arithmetic so far; the store, Vary, validation, collapsing and
//! the request path wait on issue #6.

pub mod directives;
pub mod freshness;
