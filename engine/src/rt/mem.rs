//! Giving memory back to the system when a worker is quiet.
//!
//! The allocator is the binary's choice (mimalloc), so the binary says how
//! to release memory ([`set_release`]); each worker calls [`release`] from
//! its once-a-second housekeeping, after trimming its buffer pool. Without
//! it, the memory of connections that closed stays resident until the
//! worker allocates again: after a burst of 10,000 connections an idle
//! gateway kept most of its peak.

use std::sync::OnceLock;

static RELEASE: OnceLock<fn(bool)> = OnceLock::new();

/// Sets how a thread gives its freed memory back (once per process); the
/// flag asks for a thorough release, which costs more.
pub fn set_release(f: fn(bool)) {
    let _ = RELEASE.set(f);
}

/// Gives the calling thread's freed memory back, if the binary said how:
/// thoroughly after a quiet second or once most connections closed, else
/// only what the allocator has ready (cheap under steady load).
pub(crate) fn release(thorough: bool) {
    if let Some(f) = RELEASE.get() {
        f(thorough);
    }
}
