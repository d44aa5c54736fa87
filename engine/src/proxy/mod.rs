//! The request path of one worker: the client connection loop, the
//! built-in responder, and forwarding to upstreams.

pub mod body;
pub mod cached;
pub mod conn;
pub mod forward;
pub mod upstream;
