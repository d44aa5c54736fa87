//! A global allocator that counts what the gateway's worker threads
//! (`ringway-w*`) allocate: how many allocations, and how many bytes are
//! live. A test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// 0 unknown, 1 worker, 2 other, 3 being decided.
    static KIND: Cell<u8> = const { Cell::new(0) };
}

fn on_worker() -> bool {
    KIND.with(|k| match k.get() {
        1 => true,
        2 | 3 => false,
        _ => {
            k.set(3);
            let worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("ringway-w"));
            k.set(if worker { 1 } else { 2 });
            worker
        }
    })
}

/// Allocations made on worker threads so far.
pub fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// Bytes allocated on worker threads and not freed there. Memory freed on
/// another thread is not subtracted, which can only make a measured growth
/// larger.
pub fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: defers every operation to the system allocator unchanged; the
// counting touches only atomics and a const-initialised thread local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_worker() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if on_worker() {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if on_worker() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Drives `round` on each of `clients` for `warm` rounds (pools fill),
/// then `measured` more; returns the worker allocations made during the
/// measured ones.
pub fn allocs_in_steady_state<C>(
    clients: &mut [C],
    warm: usize,
    measured: usize,
    round: impl Fn(&mut C),
) -> u64 {
    let mut run = |n: usize| {
        for _ in 0..n {
            for c in clients.iter_mut() {
                round(c);
            }
        }
    };
    run(warm);
    let before = allocs();
    run(measured);
    allocs() - before
}
