//! HTTP/1.1 message syntax (RFC 9112): heads, chunked bodies, and the bytes
//! the gateway writes itself.

pub(crate) mod chunked;
pub(crate) mod coding;
pub(crate) mod date;
pub(crate) mod head;
pub(crate) mod parse;
pub(crate) mod request_id;
pub(crate) mod target;
pub(crate) mod text;
pub(crate) mod trace;
pub(crate) mod write;
