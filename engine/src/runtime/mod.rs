//! Server lifecycle: which CPUs we may use, the worker threads, the
//! control plane that reloads them, the config file watch, and orderly
//! shutdown.

pub(crate) mod control;
pub(crate) mod server;
pub(crate) mod thread;
pub mod watch;
