//! Coarse per-worker deadlines for connection timeouts.
//!
//! A monoio `Sleep` is 640 bytes with 128-byte alignment (its timer entry is
//! cache-line padded); embedding one in every connection's state machine
//! was the largest part of an idle connection's cost. HTTP timeouts are
//! seconds long and need no microsecond precision, so instead each worker
//! keeps a slab of deadlines and one ticker task that wakes the expired
//! ones every [`TICK`]. A timed wait then costs a slab slot (reused, no
//! allocation) and 32 bytes in the waiting future.
//!
//! Trade-off: a timeout fires up to one tick late (20 ms). The scan is
//! linear in armed deadlines — about a microsecond per thousand per tick,
//! 0.05% of a core at 10,000 waiting connections.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often expired deadlines are found and woken.
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// The deadline passed before the operation finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

#[derive(Debug)]
enum Slot {
    Free { next: Option<u32> },
    Armed { at: Instant, waker: Waker },
    Fired,
}

/// A worker's armed deadlines.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    inner: RefCell<Inner>,
    /// Reused list of wakers to call once the slab is no longer borrowed.
    wake: RefCell<Vec<Waker>>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Slot>,
    free: Option<u32>,
    armed: usize,
    /// Slots a waiting future owns (armed, or fired and not yet seen).
    held: usize,
}

/// Slots kept when the table empties: what a quiet worker's few waits use.
const SLOTS_KEPT: usize = 64;

impl Deadlines {
    /// Runs `fut` until it finishes or `at` passes.
    pub(crate) fn within<F: Future>(&self, at: Instant, fut: F) -> Within<'_, F> {
        Within {
            fut,
            deadlines: self,
            at,
            slot: None,
        }
    }

    /// Like [`Deadlines::within`], with a duration from now.
    pub(crate) fn within_for<F: Future>(&self, d: Duration, fut: F) -> Within<'_, F> {
        self.within(Instant::now() + d, fut)
    }

    /// Wakes every waiter whose deadline is at or before `now`.
    pub(crate) fn expire(&self, now: Instant) {
        if self.inner.borrow().armed == 0 {
            return;
        }
        let mut wake = std::mem::take(&mut *self.wake.borrow_mut());
        {
            let mut inner = self.inner.borrow_mut();
            for slot in inner.slots.iter_mut() {
                if let Slot::Armed { at, .. } = slot {
                    if *at <= now {
                        if let Slot::Armed { waker, .. } = std::mem::replace(slot, Slot::Fired) {
                            wake.push(waker);
                        }
                    }
                }
            }
            inner.armed -= wake.len();
        }
        for w in wake.drain(..) {
            w.wake();
        }
        *self.wake.borrow_mut() = wake;
    }

    /// Armed deadlines right now.
    #[cfg(test)]
    fn armed(&self) -> usize {
        self.inner.borrow().armed
    }

    fn arm(&self, at: Instant, waker: Waker) -> u32 {
        let mut inner = self.inner.borrow_mut();
        inner.armed += 1;
        inner.held += 1;
        let slot = Slot::Armed { at, waker };
        match inner.free {
            Some(i) => {
                let next = match inner.slots[i as usize] {
                    Slot::Free { next } => next,
                    _ => unreachable!("free list points at a used slot"),
                };
                inner.free = next;
                inner.slots[i as usize] = slot;
                i
            }
            None => {
                inner.slots.push(slot);
                (inner.slots.len() - 1) as u32
            }
        }
    }

    /// False while armed (refreshing the waker), true once fired.
    fn check(&self, i: u32, cx: &Context<'_>) -> bool {
        let mut inner = self.inner.borrow_mut();
        match &mut inner.slots[i as usize] {
            Slot::Fired => true,
            Slot::Armed { waker, .. } => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                false
            }
            Slot::Free { .. } => unreachable!("a waiting future owns its slot"),
        }
    }

    fn release(&self, i: u32) {
        let mut inner = self.inner.borrow_mut();
        let next = inner.free;
        if let Slot::Armed { .. } =
            std::mem::replace(&mut inner.slots[i as usize], Slot::Free { next })
        {
            inner.armed -= 1;
        }
        inner.free = Some(i);
        inner.held -= 1;
        if inner.held == 0 {
            // No future holds a slot: start over, and give back what a
            // burst of waiting connections grew.
            inner.slots.clear();
            inner.slots.shrink_to(SLOTS_KEPT);
            inner.free = None;
        }
    }
}

pin_project_lite::pin_project! {
    /// A future raced against a deadline.
    pub(crate) struct Within<'a, F> {
        #[pin]
        fut: F,
        deadlines: &'a Deadlines,
        at: Instant,
        slot: Option<u32>,
    }

    impl<'a, F> PinnedDrop for Within<'a, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(i) = this.slot.take() {
                this.deadlines.release(i);
            }
        }
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            if let Some(i) = this.slot.take() {
                this.deadlines.release(i);
            }
            return Poll::Ready(Ok(v));
        }
        match *this.slot {
            None => *this.slot = Some(this.deadlines.arm(*this.at, cx.waker().clone())),
            Some(i) => {
                if this.deadlines.check(i, cx) {
                    this.deadlines.release(i);
                    *this.slot = None;
                    return Poll::Ready(Err(Elapsed));
                }
            }
        }
        Poll::Pending
    }
}

/// The worker task that expires deadlines; ends when `stop` resolves.
pub(crate) async fn run_ticker(deadlines: &Deadlines, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    loop {
        monoio::select! {
            _ = monoio::time::sleep(TICK) => deadlines.expire(Instant::now()),
            _ = &mut stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_fire_and_slots_are_reused() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let d = std::rc::Rc::new(Deadlines::default());
            let ticker = d.clone();
            let stop = std::rc::Rc::new(crate::rt::notify::LocalNotify::default());
            let stop2 = stop.clone();
            monoio::spawn(async move { run_ticker(&ticker, stop2.wait()).await });
            // Finishes first: Ok, slot released.
            let r = d.within_for(Duration::from_secs(5), async { 7 }).await;
            assert_eq!(r, Ok(7));
            assert_eq!(d.armed(), 0);
            // Never finishes: Elapsed after the deadline.
            let start = Instant::now();
            let r = d
                .within_for(Duration::from_millis(50), std::future::pending::<()>())
                .await;
            assert_eq!(r, Err(Elapsed));
            assert!(start.elapsed() >= Duration::from_millis(50));
            assert_eq!(d.armed(), 0);
            // Many waits reuse the same few slots.
            for _ in 0..100 {
                let _ = d
                    .within_for(
                        Duration::from_millis(1),
                        monoio::time::sleep(Duration::from_micros(10)),
                    )
                    .await;
            }
            assert!(d.inner.borrow().slots.len() <= 2);
            stop.fire();
        });
    }
}
