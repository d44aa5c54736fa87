//! HTTP/1.1 message syntax (RFC 9112): heads, chunked bodies, and the bytes
//! the gateway writes itself.

pub mod chunked;
pub mod date;
pub mod head;
pub mod parse;
pub mod target;
pub mod text;
pub mod write;
