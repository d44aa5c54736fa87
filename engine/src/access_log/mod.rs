//! The access log: a line per request, made on the workers' behalf by one
//! writer thread.
//!
//! A worker's part is to copy what it knows of a finished request into a
//! fixed-size [`record::Record`] (no allocation: text is cut at bounds,
//! names are indexes) and hand it over through its own bounded queue
//! ([`queue::Sinks`]); a full queue drops the record and counts it, so a
//! slow disk never slows a request. The writer (`runtime::log_writer`)
//! drains the queues, formats ([`format`]) and writes in buffered batches.
//! The cost on the worker when the log is on is one wall-clock read and a
//! few KiB copied per logged request; when it is off, one branch.

pub(crate) mod format;
pub(crate) mod queue;
pub(crate) mod record;
