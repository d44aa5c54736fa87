//! Threads and lifecycles: which CPUs we may use, one pinned monoio worker
//! per CPU, and orderly shutdown.

pub mod cpus;
pub mod deadline;
pub mod notify;
pub mod server;
pub mod worker;
