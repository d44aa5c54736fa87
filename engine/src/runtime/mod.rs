//! The control plane and the worker threads it drives: reloads, the
//! config file watch, and each worker thread's runtime. `server` starts
//! all of it (and the admin API) and stops it.

pub(crate) mod control;
pub(crate) mod thread;
pub(crate) mod watch;
