//! Threads and lifecycles: which CPUs we may use, one pinned monoio worker
//! per CPU, the control plane that reloads them, and orderly shutdown.

pub mod carry;
pub mod control;
pub mod cpus;
pub mod deadline;
pub mod generation;
pub mod notify;
pub mod server;
pub mod watch;
pub mod worker;
