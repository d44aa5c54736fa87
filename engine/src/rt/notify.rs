//! A one-shot, worker-local notification: many tasks wait, one call wakes
//! them all, and every later wait returns at once.
//!
//! Used for shutdown. Waiting registers a waker in a slot that is reused
//! after the wait ends, so the idle wait of every keep-alive cycle costs no
//! allocation once the slot table has grown to the connection count; once
//! nobody waits, the table shrinks back, so a burst of waiters leaves
//! nothing behind.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

pub(crate) struct LocalNotify {
    fired: Cell<bool>,
    slots: RefCell<Slots>,
}

struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

/// Slots reserved up front, so that the few long-lived waiters of a worker
/// (its background tasks) never grow the tables after start.
const RESERVED: usize = 8;

impl Default for LocalNotify {
    fn default() -> Self {
        LocalNotify {
            fired: Cell::new(false),
            slots: RefCell::new(Slots {
                wakers: Vec::with_capacity(RESERVED),
                free: Vec::with_capacity(RESERVED),
            }),
        }
    }
}

impl LocalNotify {
    pub(crate) fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Wakes every waiter, now and later.
    pub(crate) fn fire(&self) {
        self.fired.set(true);
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .wakers
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait {
            notify: self,
            slot: None,
        }
    }
}

pub(crate) struct Wait<'a> {
    notify: &'a LocalNotify,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.fired.get() {
            return Poll::Ready(());
        }
        let mut slots = self.notify.slots.borrow_mut();
        let slot = match self.slot {
            Some(s) => s,
            None => slots.free.pop().unwrap_or_else(|| {
                slots.wakers.push(None);
                slots.wakers.len() - 1
            }),
        };
        slots.wakers[slot] = Some(cx.waker().clone());
        drop(slots);
        self.slot = Some(slot);
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut slots = self.notify.slots.borrow_mut();
            slots.wakers[slot] = None;
            slots.free.push(slot);
            if slots.free.len() == slots.wakers.len() {
                // Nobody waits: start over, and give back what a burst of
                // waiters (every idle connection of a listener) grew.
                slots.wakers.clear();
                slots.free.clear();
                slots.wakers.shrink_to(RESERVED);
                slots.free.shrink_to(RESERVED);
            }
        }
    }
}
