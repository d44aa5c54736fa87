//! The control plane and the threads it drives: reloads, the config file
//! watch, each worker thread's runtime, and the access-log writer.
//! `server` starts all of it (and the admin API) and stops it.

pub(crate) mod control;
pub(crate) mod health;
pub(crate) mod log_writer;
pub(crate) mod resolve;
pub(crate) mod thread;
pub(crate) mod watch;
