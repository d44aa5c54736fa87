//! Runtime primitives every layer above builds on: byte streams and the
//! buffer pool, coarse deadlines, a local notify, keyed carry-over between
//! generations, CPU sets, and panic containment for futures.

pub(crate) mod carry;
pub(crate) mod cpus;
pub(crate) mod deadline;
pub(crate) mod io;
pub(crate) mod mem;
pub(crate) mod notify;
pub(crate) mod panic;
