//! Rate limits that are exact across workers, with the common path
//! worker-local.
//!
//! SO_REUSEPORT spreads one client's connections over every worker, so a
//! bucket per worker would admit up to `workers` times the configured rate
//! (or, configured as rate/N, too little when the traffic sits on one
//! worker). Here each limit has one shared token bucket per key, kept as a
//! GCRA "theoretical arrival time" in one `AtomicU64` (a full bucket is any
//! time in the past), and workers take tokens from it in leases: a worker
//! that holds leased tokens admits from them without touching shared
//! memory, and takes the next lease with one compare-and-swap.
//!
//! Error bound: tokens are counted when leased. A lease is good for as long
//! as the bucket takes to refill (at most a second); unused tokens of an
//! older lease go back to the bucket (where a full bucket drops them), so an
//! idle worker cannot add its old lease on top of a refilled burst. Within
//! that short window, and for what a worker leased but has not used yet,
//! the error is at most one lease per key per worker either way; the lease
//! is sized so that all workers' leases together are at most 0.5% of ten
//! seconds' worth of the rate and at most half the burst ([`lease_size`]),
//! and a limit slower than that leases one token at a time and is exact.
//!
//! Key tables are bounded: a key's bucket that is full again carries no
//! state and is dropped first when the table is full; only when none is
//! full is a key with state evicted, and that is counted.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ringway_config::RateLimit;

/// Marks a bucket removed from its table: takers look it up again.
const DEAD: u64 = u64::MAX;
/// Most tokens one lease takes.
const MAX_LEASE: u64 = 64;
/// Entries examined to make room in a full table.
const EVICT_SCAN: usize = 32;

/// Nanoseconds since the process's first call; monotonic.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // Start at one second so that 0 is always "long ago".
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1_000_000_000
}

/// One key's shared bucket: the time at which it would be full again.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    tat: AtomicU64,
}

/// What a take from a bucket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Take {
    pub(crate) granted: u64,
    /// Tokens left in the bucket after this take.
    pub(crate) remaining: u64,
    /// Until the bucket is full again.
    pub(crate) reset: Duration,
    /// Until the next token, when none was granted.
    pub(crate) retry: Duration,
}

/// The arithmetic of one limit: emission interval and burst, in ns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    pub(crate) interval: u64,
    pub(crate) burst: u64,
}

impl Rate {
    pub(crate) fn of(limit: &RateLimit) -> Rate {
        let period = limit.period.as_nanos() as u64;
        Rate {
            interval: (period / limit.count).max(1),
            burst: limit.burst,
        }
    }

    fn burst_ns(self) -> u64 {
        self.burst.saturating_mul(self.interval)
    }

    /// Tokens available at `now` for a bucket whose arrival time is `tat`.
    fn available(self, tat: u64, now: u64) -> u64 {
        let base = tat.max(now);
        now.saturating_add(self.burst_ns()).saturating_sub(base) / self.interval
    }
}

impl Bucket {
    /// Takes up to `want` tokens (GCRA: a take of k is allowed while
    /// max(tat, now) + k·T ≤ now + burst·T). `None` when the bucket was
    /// removed from its table meanwhile.
    pub(crate) fn take(&self, want: u64, now: u64, rate: Rate) -> Option<Take> {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            if tat == DEAD {
                return None;
            }
            let available = rate.available(tat, now);
            let granted = want.min(available);
            let next = tat
                .max(now)
                .saturating_add(granted.saturating_mul(rate.interval));
            let take = Take {
                granted,
                remaining: available - granted,
                reset: Duration::from_nanos(next.saturating_sub(now)),
                retry: Duration::from_nanos(
                    next.saturating_add(rate.interval)
                        .saturating_sub(now.saturating_add(rate.burst_ns())),
                ),
            };
            if granted == 0 {
                return Some(take);
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(take),
                Err(seen) => tat = seen,
            }
        }
    }

    /// Tokens in the bucket now and the time until it is full, without
    /// taking any.
    pub(crate) fn peek(&self, now: u64, rate: Rate) -> (u64, Duration) {
        match self.tat.load(Ordering::Acquire) {
            DEAD => (rate.burst, Duration::ZERO),
            tat => (
                rate.available(tat, now),
                Duration::from_nanos(tat.saturating_sub(now)),
            ),
        }
    }

    /// Gives `n` unused tokens back; a bucket cannot go past full.
    pub(crate) fn refund(&self, n: u64, now: u64, rate: Rate) {
        let mut tat = self.tat.load(Ordering::Acquire);
        while tat != DEAD && tat > now {
            let back = tat.saturating_sub(n.saturating_mul(rate.interval)).max(now);
            match self
                .tat
                .compare_exchange_weak(tat, back, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(seen) => tat = seen,
            }
        }
    }

    /// Marks a full bucket removed; false when it holds state (or is gone).
    fn retire_if_full(&self, now: u64) -> bool {
        let tat = self.tat.load(Ordering::Acquire);
        tat != DEAD
            && tat <= now
            && self
                .tat
                .compare_exchange(tat, DEAD, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    fn retire(&self) {
        self.tat.store(DEAD, Ordering::Release);
    }
}

type Table<V> = papaya::HashMap<Box<[u8]>, Arc<V>, ahash::RandomState>;

/// One configured rate limit on one route, shared by every worker. Kept
/// across reloads while the route keeps the same definition.
pub(crate) struct SharedLimit {
    pub(crate) rate: Rate,
    /// Configured `count`, for the RateLimit headers.
    pub(crate) count: u64,
    /// Tokens a worker takes at once.
    pub(crate) lease: u64,
    /// How long a lease's unused tokens stay good (ns): the time the bucket
    /// takes to refill, at least one lease's worth and at most a second. An
    /// older lease could stack on a bucket that has refilled since, so its
    /// tokens go back instead.
    pub(crate) lease_ttl: u64,
    max_keys: usize,
    table: Table<Bucket>,
    pub(crate) evictions: AtomicU64,
}

/// Tokens per lease for `limit` with `workers` workers: all workers'
/// leases together at most 0.5% of ten seconds of the rate, 1 to 64.
pub(crate) fn lease_size(limit: &RateLimit, workers: usize) -> u64 {
    let per_10s = limit.count as u128 * 10_000_000_000 / limit.period.as_nanos().max(1);
    let workers = workers.max(1) as u64;
    let lease = (per_10s / 200) as u64 / workers;
    // One worker must not hold the whole burst either.
    let burst_share = limit.burst / (2 * workers);
    lease.min(burst_share).clamp(1, MAX_LEASE)
}

impl SharedLimit {
    pub(crate) fn new(limit: &RateLimit, workers: usize) -> SharedLimit {
        SharedLimit {
            rate: Rate::of(limit),
            count: limit.count,
            lease: lease_size(limit, workers),
            lease_ttl: {
                let rate = Rate::of(limit);
                let lease = lease_size(limit, workers);
                rate.burst_ns()
                    .min(1_000_000_000)
                    .max(lease.saturating_mul(rate.interval))
            },
            max_keys: limit.max_keys,
            table: Table::default(),
            evictions: AtomicU64::new(0),
        }
    }

    /// Takes up to `want` tokens for `key`.
    pub(crate) fn take(&self, key: &[u8], want: u64, now: u64) -> Take {
        let table = self.table.pin();
        loop {
            let bucket = match table.get(key) {
                Some(b) => b.clone(),
                None => {
                    if table.len() >= self.max_keys {
                        self.make_room(&table, now);
                    }
                    table
                        .get_or_insert_with(key.into(), || Arc::new(Bucket::default()))
                        .clone()
                }
            };
            match bucket.take(want, now, self.rate) {
                Some(t) => return t,
                // Retired meanwhile: drop it from the table (if still
                // there) and look again.
                None => {
                    table.remove_if(key, |_, v| Arc::ptr_eq(v, &bucket)).ok();
                }
            }
        }
    }

    /// Tokens left for `key` and the time until its bucket is full, for
    /// headers on admitted requests.
    pub(crate) fn peek(&self, key: &[u8], now: u64) -> (u64, Duration) {
        match self.table.pin().get(key) {
            Some(b) => b.peek(now, self.rate),
            None => (self.rate.burst, Duration::ZERO),
        }
    }

    /// Returns unused leased tokens of `key` to its bucket.
    pub(crate) fn refund(&self, key: &[u8], n: u64, now: u64) {
        if let Some(b) = self.table.pin().get(key) {
            b.refund(n, now, self.rate);
        }
    }

    /// Frees a slot: buckets that are full again go first (they hold no
    /// state); failing that, the scanned bucket that will be full soonest is
    /// evicted, and counted.
    fn make_room<G: papaya::Guard>(
        &self,
        table: &papaya::HashMapRef<'_, Box<[u8]>, Arc<Bucket>, ahash::RandomState, G>,
        now: u64,
    ) {
        // (key, bucket, its arrival time): the one closest to full.
        type Victim<'t> = (&'t Box<[u8]>, &'t Arc<Bucket>, u64);
        let mut victim: Option<Victim<'_>> = None;
        let mut freed = false;
        for (k, v) in table.iter().take(EVICT_SCAN) {
            if v.retire_if_full(now) {
                table.remove_if(k, |_, cur| Arc::ptr_eq(cur, v)).ok();
                freed = true;
                continue;
            }
            let tat = v.tat.load(Ordering::Acquire);
            if tat != DEAD && victim.is_none_or(|(_, _, t)| tat < t) {
                victim = Some((k, v, tat));
            }
        }
        if !freed {
            if let Some((k, v, _)) = victim {
                v.retire();
                table.remove_if(k, |_, cur| Arc::ptr_eq(cur, v)).ok();
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn keys(&self) -> usize {
        self.table.len()
    }
}

/// What a limit decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) allowed: bool,
    /// For `RateLimit-Limit`: the configured count per period.
    pub(crate) limit: u64,
    /// For `RateLimit-Remaining`.
    pub(crate) remaining: u64,
    /// For `RateLimit-Reset`, in whole seconds (rounded up).
    pub(crate) reset: u64,
    /// For `Retry-After` on a refusal, in whole seconds (at least 1).
    pub(crate) retry_after: u64,
}

/// A worker's view of one shared limit: the tokens it holds per key.
pub(crate) struct LocalLimit {
    pub(crate) shared: Arc<SharedLimit>,
    held: RefCell<HashMap<Box<[u8]>, Lease, ahash::RandomState>>,
    max_held: usize,
}

/// Tokens a worker took for one key, and when.
#[derive(Clone, Copy)]
struct Lease {
    tokens: u64,
    taken: u64,
}

/// Keys a worker keeps leases for; past this, idle leases are dropped.
const MAX_HELD: usize = 4096;

impl LocalLimit {
    pub(crate) fn new(shared: Arc<SharedLimit>) -> LocalLimit {
        let max_held = shared.max_keys.min(MAX_HELD);
        LocalLimit {
            shared,
            held: RefCell::new(HashMap::default()),
            max_held,
        }
    }

    /// Admits or refuses one request for `key`. `detail` asks for exact
    /// remaining/reset figures even when a lease answers (one extra atomic
    /// load), for routes that send the RateLimit headers.
    pub(crate) fn check(&self, key: &[u8], now: u64, detail: bool) -> Verdict {
        let shared = &*self.shared;
        let ttl = shared.lease_ttl;
        let mut held = self.held.borrow_mut();
        if let Some(lease) = held.get_mut(key) {
            if lease.tokens > 0 && now.saturating_sub(lease.taken) <= ttl {
                lease.tokens -= 1;
                let mut v = Verdict {
                    allowed: true,
                    limit: shared.count,
                    remaining: lease.tokens,
                    reset: 0,
                    retry_after: 0,
                };
                if detail {
                    let (left, reset) = shared.peek(key, now);
                    v.remaining += left;
                    v.reset = ceil_secs(reset);
                }
                return v;
            }
            if lease.tokens > 0 {
                shared.refund(key, lease.tokens, now);
                lease.tokens = 0;
            }
        }
        let take = shared.take(key, shared.lease, now);
        let allowed = take.granted > 0;
        if allowed {
            let lease = Lease {
                tokens: take.granted - 1,
                taken: now,
            };
            match held.get_mut(key) {
                Some(l) => *l = lease,
                None if lease.tokens > 0 => {
                    if held.len() >= self.max_held {
                        self.make_room(&mut held, now);
                    }
                    held.insert(key.into(), lease);
                }
                None => {}
            }
        }
        Verdict {
            allowed,
            limit: shared.count,
            remaining: take.remaining + take.granted.saturating_sub(1),
            reset: ceil_secs(take.reset),
            retry_after: ceil_secs(take.retry).max(1),
        }
    }

    /// Drops spent leases; failing that, returns one key's tokens to its
    /// bucket and forgets it.
    fn make_room(&self, held: &mut HashMap<Box<[u8]>, Lease, ahash::RandomState>, now: u64) {
        held.retain(|_, l| l.tokens > 0);
        if held.len() < self.max_held {
            return;
        }
        let Some(key) = held.keys().next().cloned() else {
            return;
        };
        if let Some(l) = held.remove(&key) {
            self.shared.refund(&key, l.tokens, now);
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000) as u64
}

/// A maximum of concurrent requests per key, shared by every worker.
pub(crate) struct SharedConcurrency {
    pub(crate) max: u64,
    pub(crate) status: u16,
    max_keys: usize,
    table: Table<AtomicU64>,
    /// New keys refused because every slot of the key table was busy.
    pub(crate) full_refusals: AtomicU64,
}

/// Held while a request is in flight; frees its slot when dropped.
pub(crate) struct Permit {
    slot: Arc<AtomicU64>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.slot.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SharedConcurrency {
    pub(crate) fn new(max: u64, status: u16, max_keys: usize) -> SharedConcurrency {
        SharedConcurrency {
            max,
            status,
            max_keys,
            table: Table::default(),
            full_refusals: AtomicU64::new(0),
        }
    }

    /// A slot for `key`, or `None` when `max` requests are in flight.
    pub(crate) fn acquire(&self, key: &[u8]) -> Option<Permit> {
        let table = self.table.pin();
        loop {
            let slot = match table.get(key) {
                Some(s) => s.clone(),
                None => {
                    if table.len() >= self.max_keys {
                        // Only idle keys are dropped: one with requests in
                        // flight holds state that must not be lost.
                        for (k, v) in table.iter().take(EVICT_SCAN) {
                            if v.compare_exchange(0, DEAD, Ordering::AcqRel, Ordering::Acquire)
                                .is_ok()
                            {
                                table.remove_if(k, |_, cur| Arc::ptr_eq(cur, v)).ok();
                            }
                        }
                        if table.len() >= self.max_keys {
                            self.full_refusals.fetch_add(1, Ordering::Relaxed);
                            return None;
                        }
                    }
                    table
                        .get_or_insert_with(key.into(), || Arc::new(AtomicU64::new(0)))
                        .clone()
                }
            };
            let mut n = slot.load(Ordering::Acquire);
            loop {
                if n == DEAD {
                    break;
                }
                if n >= self.max {
                    return None;
                }
                match slot.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(Permit { slot }),
                    Err(seen) => n = seen,
                }
            }
            table.remove_if(key, |_, v| Arc::ptr_eq(v, &slot)).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(count: u64, period: Duration, burst: u64) -> RateLimit {
        RateLimit {
            key: ringway_config::LimitKey::Route,
            count,
            period,
            burst,
            max_keys: 1000,
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let rate = Rate::of(&limit(10, Duration::from_secs(1), 20));
        let b = Bucket::default();
        let t0 = 10 * S;
        let first = b.take(25, t0, rate).expect("live");
        assert_eq!(first.granted, 20);
        assert_eq!(first.remaining, 0);
        let none = b.take(1, t0, rate).expect("live");
        assert_eq!(none.granted, 0);
        assert_eq!(none.retry, Duration::from_millis(100));
        // One token per 100 ms.
        assert_eq!(b.take(5, t0 + S / 2, rate).expect("live").granted, 5);
        assert_eq!(b.take(5, t0 + S / 2, rate).expect("live").granted, 0);
        // Full again after 2 s idle, never more than the burst.
        let later = b.take(100, t0 + 10 * S, rate).expect("live");
        assert_eq!(later.granted, 20);
        assert_eq!(later.reset, Duration::from_secs(2));
    }

    #[test]
    fn leases_stay_within_half_a_percent_of_ten_seconds() {
        for (count, period, workers, expect) in [
            (10, 1, 2, 1),
            (1000, 1, 2, 25),
            (100_000, 1, 2, 64),
            (1000, 3600, 2, 1),
            (1000, 1, 1, 50),
        ] {
            let l = limit(count, Duration::from_secs(period), count);
            assert_eq!(lease_size(&l, workers), expect, "{count}/{period}s");
        }
        // Never more than half the burst per worker.
        assert_eq!(
            lease_size(&limit(100_000, Duration::from_secs(1), 10), 2),
            2
        );
    }

    #[test]
    fn workers_together_admit_the_rate_exactly() {
        let l = limit(1000, Duration::from_secs(1), 100);
        let shared = Arc::new(SharedLimit::new(&l, 2));
        let workers = [
            LocalLimit::new(shared.clone()),
            LocalLimit::new(shared.clone()),
        ];
        // 10 s of simulated time, 3000 requests/s offered, alternating.
        let mut admitted = 0u64;
        let t0 = 100 * S;
        for i in 0..30_000u64 {
            let now = t0 + i * (S / 3000);
            if workers[(i % 2) as usize].check(b"k", now, false).allowed {
                admitted += 1;
            }
        }
        let ideal = 100 + 1000 * 10;
        let bound = 2 * shared.lease;
        assert!(admitted <= ideal, "{admitted} > {ideal}");
        assert!(admitted + bound >= ideal, "{admitted} + {bound} < {ideal}");
    }

    #[test]
    fn an_old_lease_does_not_add_to_a_refilled_burst() {
        let l = limit(1000, Duration::from_secs(1), 100);
        let shared = Arc::new(SharedLimit::new(&l, 2));
        assert!(shared.lease > 1);
        let workers = [
            LocalLimit::new(shared.clone()),
            LocalLimit::new(shared.clone()),
        ];
        let t0 = 100 * S;
        assert!(workers[0].check(b"k", t0, false).allowed);
        // Idle long enough for the bucket to be full again, then a burst
        // on both workers at one instant: the burst, and not one more.
        let t1 = t0 + 10 * S;
        let admitted = (0..1000)
            .filter(|i| workers[i % 2].check(b"k", t1, false).allowed)
            .count();
        assert_eq!(admitted, 100);
    }

    #[test]
    fn huge_bursts_and_periods_do_not_overflow() {
        let l = limit(1, Duration::from_secs(86_400), 1_000_000_000);
        let shared = SharedLimit::new(&l, 2);
        let t0 = 100 * S;
        let first = shared.take(b"k", 5, t0);
        assert_eq!(first.granted, 5);
        let local = LocalLimit::new(Arc::new(shared));
        let v = local.check(b"k", u64::MAX / 2, true);
        assert!(v.allowed);
    }

    #[test]
    fn admitted_headers_report_the_bucket_from_a_lease_too() {
        let l = limit(1000, Duration::from_secs(1), 1000);
        let local = LocalLimit::new(Arc::new(SharedLimit::new(&l, 1)));
        let t0 = 100 * S;
        let first = local.check(b"k", t0, true);
        let second = local.check(b"k", t0, true);
        assert_eq!(first.remaining, 999);
        assert_eq!(second.remaining, 998);
        assert!(second.reset >= 1, "{second:?}");
    }

    #[test]
    fn a_full_table_drops_full_buckets_first_and_counts_evictions() {
        let mut l = limit(1, Duration::from_secs(1), 1);
        l.max_keys = 4;
        let shared = SharedLimit::new(&l, 1);
        let t0 = 100 * S;
        for k in 0..4u8 {
            assert_eq!(shared.take(&[k], 1, t0).granted, 1);
        }
        // All four hold state: a fifth key evicts one, counted.
        assert_eq!(shared.take(&[9], 1, t0).granted, 1);
        assert_eq!(shared.evictions.load(Ordering::Relaxed), 1);
        assert!(shared.keys() <= 4);
        // Two seconds later every bucket is full again: no eviction.
        assert_eq!(shared.take(&[10], 1, t0 + 2 * S).granted, 1);
        assert_eq!(shared.evictions.load(Ordering::Relaxed), 1);
        assert!(shared.keys() <= 4);
    }

    #[test]
    fn concurrency_slots_are_freed_by_dropping_the_permit() {
        let c = SharedConcurrency::new(2, 503, 10);
        let a = c.acquire(b"k").expect("first");
        let b = c.acquire(b"k").expect("second");
        assert!(c.acquire(b"k").is_none());
        assert!(c.acquire(b"other").is_some());
        drop(a);
        let _c = c.acquire(b"k").expect("freed");
        drop(b);
    }
}
