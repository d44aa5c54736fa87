//! A cache store shared by every worker: entries by key under one byte
//! budget, with S3-FIFO admission and eviction (Yang et al., SOSP 2023).
//!
//! Hits read a lock-free hash map (papaya) and take nothing but an epoch
//! guard: the values are immutable, so a hit clones what it needs (an
//! `Arc`) and bumps the entry's hit count, a relaxed atomic that stops
//! being written once it is at its most. Everything that changes the
//! store (a store, a removal, an eviction) takes one mutex over the
//! bookkeeping and changes the map only while holding it, so the map and
//! the books always agree. Misses and stores are rare next to hits and
//! cost an origin round trip anyway.
//!
//! New keys enter a small FIFO (a tenth of the budget); one that is hit
//! again before it leaves is promoted to the main FIFO, one that is not is
//! evicted and remembered in a ghost list of keys only, so that it goes
//! straight to main if it comes back soon. Main is a FIFO with a two-bit
//! hit count that buys an entry another round. One-hit wonders (a crawl, a
//! scan) pass through the small queue without displacing the working set,
//! which an LRU cannot do, at the cost of no reordering on hits (a hit only
//! bumps a counter, so it costs no list update, and no lock).
//!
//! Every entry is weighed as its key plus its value's weight plus
//! [`OVERHEAD`] for the bookkeeping (map node and slot, queue slot, key
//! and slot headers, group index), so the budget holds for what the store
//! really uses, not just the bodies.
//!
//! Keys fall in groups (for the cache: one URL under one route, whatever
//! consumer or key-header values follow it), indexed by a hash of the
//! group, so that dropping a group costs the size of the group, not a scan
//! of the store.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Bytes of bookkeeping per entry beyond its key and value: the map's node
/// (key and slot pointers) and its table slot (times the table's spare
/// capacity), the slot itself with its `Arc` header, the queue slot (times
/// the queue's spare capacity), the key's `Arc` header, the ghost list's
/// share (a fingerprint in a queue and a set, up to one per entry), and
/// the group index's slot. Measured against the allocator by
/// `tests/cache_memory.rs`.
pub(crate) const OVERHEAD: usize = 384;

/// Most a hit count grows to.
const MAX_FREQ: u8 = 3;

/// Share of the budget the small queue holds, in tenths.
const SMALL_TENTHS: usize = 1;

/// What [`Shard::update`] makes of the value under a key.
pub(crate) enum Change<V> {
    /// Leave it as it is (or absent).
    Keep,
    /// Store this value, weighing this many bytes.
    Put(V, usize),
    /// Remove the key.
    Remove,
}

/// One stored value and what eviction knows of it.
struct Slot<V> {
    value: V,
    weight: usize,
    /// Distinguishes this entry from an earlier one under the same key, so
    /// queue positions of removed entries are skipped; a replacement in
    /// place keeps it.
    id: u64,
    /// Hits since the entry last went round its queue (at most
    /// [`MAX_FREQ`]); the one field a hit writes.
    freq: AtomicU8,
    /// In the main queue (else the small one). Changed under the books'
    /// lock only.
    main: AtomicBool,
}

/// Where a key's group ends: the group is the key's first bytes.
pub(crate) type GroupOf = fn(&[u8]) -> &[u8];

/// The keys of one group.
enum Members {
    One(Arc<[u8]>),
    Many(Vec<Arc<[u8]>>),
}

type Map<V> = papaya::HashMap<Arc<[u8]>, Arc<Slot<V>>, ahash::RandomState>;
type Pinned<'m, V> =
    papaya::HashMapRef<'m, Arc<[u8]>, Arc<Slot<V>>, ahash::RandomState, papaya::LocalGuard<'m>>;

/// The bookkeeping behind the map: taken by whatever changes the store.
struct Books {
    used: usize,
    small_used: usize,
    /// Keys by the hash of their group.
    groups: HashMap<u64, Members, ahash::RandomState>,
    small: VecDeque<(Arc<[u8]>, u64)>,
    main: VecDeque<(Arc<[u8]>, u64)>,
    ghost: VecDeque<u64>,
    ghost_set: HashMap<u64, u32, ahash::RandomState>,
    next_id: u64,
    stats: ShardStats,
}

/// A cache store over values of type `V`, shared by the workers.
pub(crate) struct Shard<V> {
    budget: usize,
    group_of: GroupOf,
    group_hasher: ahash::RandomState,
    /// Fingerprints of keys, for the ghost list.
    hasher: ahash::RandomState,
    map: Map<V>,
    books: Mutex<Books>,
}

/// Counters of one store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShardStats {
    pub(crate) inserts: u64,
    pub(crate) evictions: u64,
    /// Values refused because they alone exceed what an entry may weigh.
    pub(crate) too_large: u64,
    /// Keys looked at by removals of groups or by predicate (a purge).
    pub(crate) examined: u64,
}

impl<V> Shard<V> {
    /// A store whose keys are each their own group.
    #[cfg(test)]
    pub(crate) fn new(budget: usize) -> Shard<V> {
        Shard::grouped(budget, |k| k, ahash::RandomState::new())
    }

    /// A store whose keys fall in groups as `group_of` says, hashed with
    /// `group_hasher` (the same for every store that must agree on a
    /// group's hash).
    pub(crate) fn grouped(
        budget: usize,
        group_of: GroupOf,
        group_hasher: ahash::RandomState,
    ) -> Shard<V> {
        Shard {
            budget,
            group_of,
            group_hasher,
            hasher: ahash::RandomState::new(),
            // A removed entry is freed once no hit can still be reading
            // it; reclaiming at every removal (rather than in batches of
            // 32 per thread) keeps what the budget no longer counts from
            // holding on to bodies of up to `max-entry-size` each. Hits
            // never retire anything, so they do not pay for it.
            map: papaya::HashMap::builder()
                .hasher(ahash::RandomState::new())
                .collector(seize::Collector::new().batch_size(1))
                .build(),
            books: Mutex::new(Books {
                used: 0,
                small_used: 0,
                groups: HashMap::default(),
                small: VecDeque::new(),
                main: VecDeque::new(),
                ghost: VecDeque::new(),
                ghost_set: HashMap::default(),
                next_id: 0,
                stats: ShardStats::default(),
            }),
        }
    }

    /// The books, even if a panic elsewhere left the lock poisoned (the
    /// books are consistent between any two of their methods).
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes accounted now (keys, values and overhead).
    pub(crate) fn used(&self) -> usize {
        self.books().used
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Entries evicted to keep within the budget, since the store began.
    pub(crate) fn evictions(&self) -> u64 {
        self.books().stats.evictions
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> ShardStats {
        self.books().stats
    }

    /// Reads the value under `key`, counting a hit. Takes no lock and
    /// allocates nothing.
    pub(crate) fn get<R>(&self, key: &[u8], read: impl FnOnce(&V) -> R) -> Option<R> {
        let map = self.map.pin();
        let slot = map.get(key)?;
        let freq = slot.freq.load(Ordering::Relaxed);
        if freq < MAX_FREQ {
            // Racing hits may count one: the count only orders eviction.
            slot.freq.store(freq + 1, Ordering::Relaxed);
        }
        Some(read(&slot.value))
    }

    /// Stores `value` (weighing `weight` bytes) under `key` and evicts
    /// until the budget holds. A value already there is replaced in place:
    /// it keeps its queue position and hit count. An entry weighing more
    /// than half the store is refused (it would flush everything else),
    /// and any value under `key` removed: false.
    #[cfg(test)]
    pub(crate) fn insert(&self, key: &[u8], value: V, weight: usize) -> bool {
        self.update(key, |_| Change::Put(value, weight))
    }

    /// Replaces the value under `key` by what `change` makes of the one
    /// there (if any), atomically with respect to every other change (on
    /// any thread). A value put is stored as [`Self::insert`] says. True
    /// when a value was put and stored.
    pub(crate) fn update(&self, key: &[u8], change: impl FnOnce(Option<&V>) -> Change<V>) -> bool {
        let mut books = self.books();
        let map = self.map.pin();
        let old = map.get(key);
        let (value, weight) = match change(old.map(|s| &s.value)) {
            Change::Keep => return false,
            Change::Remove => {
                self.remove_locked(&mut books, &map, key);
                return false;
            }
            Change::Put(value, weight) => (value, weight),
        };
        let total = key.len() + weight + OVERHEAD;
        if total > self.budget / 2 {
            books.stats.too_large += 1;
            self.remove_locked(&mut books, &map, key);
            return false;
        }
        books.stats.inserts += 1;
        if let Some(old) = old {
            let main = old.main.load(Ordering::Relaxed);
            books.used = books.used - old.weight + total;
            if !main {
                books.small_used = books.small_used - old.weight + total;
            }
            let slot = Slot {
                value,
                weight: total,
                id: old.id,
                freq: AtomicU8::new(old.freq.load(Ordering::Relaxed)),
                main: AtomicBool::new(main),
            };
            // The key object already in the map stays; only the slot goes.
            if let Some((k, _)) = map.get_key_value(key) {
                map.insert(k.clone(), Arc::new(slot));
            }
            self.evict_to_budget(&mut books, &map);
            return true;
        }
        let to_main = books.ghost_set.contains_key(&self.hasher.hash_one(key));
        let id = books.next_id;
        books.next_id += 1;
        let key: Arc<[u8]> = key.into();
        self.link(&mut books, &key);
        if to_main {
            books.main.push_back((key.clone(), id));
        } else {
            books.small.push_back((key.clone(), id));
            books.small_used += total;
        }
        books.used += total;
        let slot = Slot {
            value,
            weight: total,
            id,
            freq: AtomicU8::new(0),
            main: AtomicBool::new(to_main),
        };
        map.insert(key, Arc::new(slot));
        self.evict_to_budget(&mut books, &map);
        true
    }

    fn evict_to_budget(&self, books: &mut Books, map: &Pinned<'_, V>) {
        while books.used > self.budget {
            if !self.evict_one(books, map) {
                break;
            }
        }
    }

    /// The hash a group is known by (the same in every store built with
    /// the same group hasher).
    pub(crate) fn group_hash(&self, group: &[u8]) -> u64 {
        self.group_hasher.hash_one(group)
    }

    fn link(&self, books: &mut Books, key: &Arc<[u8]>) {
        let h = self.group_hash((self.group_of)(key));
        match books.groups.get_mut(&h) {
            None => {
                books.groups.insert(h, Members::One(key.clone()));
            }
            Some(m) => {
                let many = match std::mem::replace(m, Members::Many(Vec::new())) {
                    Members::One(first) => vec![first, key.clone()],
                    Members::Many(mut v) => {
                        v.push(key.clone());
                        v
                    }
                };
                *m = Members::Many(many);
            }
        }
    }

    fn unlink(&self, books: &mut Books, key: &[u8]) {
        let h = self.group_hash((self.group_of)(key));
        let Some(m) = books.groups.get_mut(&h) else {
            return;
        };
        let empty = match m {
            Members::One(k) => &**k == key,
            Members::Many(v) => {
                v.retain(|k| &**k != key);
                v.is_empty()
            }
        };
        if empty {
            books.groups.remove(&h);
        }
    }

    /// Removes every entry of the group with hash `h`; how many. Costs the
    /// size of the group.
    pub(crate) fn remove_group(&self, h: u64) -> usize {
        let mut books = self.books();
        let keys = match books.groups.remove(&h) {
            None => return 0,
            Some(Members::One(k)) => vec![k],
            Some(Members::Many(v)) => v,
        };
        books.stats.examined += keys.len() as u64;
        let map = self.map.pin();
        for k in &keys {
            if let Some(slot) = map.remove(&**k) {
                books.used -= slot.weight;
                if !slot.main.load(Ordering::Relaxed) {
                    books.small_used -= slot.weight;
                }
            }
        }
        keys.len()
    }

    /// Removes `key`'s entry, if any.
    pub(crate) fn remove(&self, key: &[u8]) -> bool {
        let mut books = self.books();
        let map = self.map.pin();
        self.remove_locked(&mut books, &map, key)
    }

    fn remove_locked(&self, books: &mut Books, map: &Pinned<'_, V>, key: &[u8]) -> bool {
        let Some(slot) = map.remove(key) else {
            return false;
        };
        self.unlink(books, key);
        books.used -= slot.weight;
        if !slot.main.load(Ordering::Relaxed) {
            books.small_used -= slot.weight;
        }
        // Its queue position is skipped when reached (the id is gone).
        true
    }

    /// Removes every entry whose key satisfies `doomed`; how many.
    ///
    /// The queues drop the positions of what went (they would otherwise
    /// keep the keys alive until reached) and give back spare room, so a
    /// purge gives its memory back.
    pub(crate) fn remove_where(&self, mut doomed: impl FnMut(&[u8]) -> bool) -> usize {
        let mut books = self.books();
        let map = self.map.pin();
        books.stats.examined += map.len() as u64;
        let keys: Vec<Arc<[u8]>> = map.keys().filter(|k| doomed(k)).cloned().collect();
        if keys.is_empty() {
            return 0;
        }
        for k in &keys {
            self.remove_locked(&mut books, &map, k);
        }
        let live = |(k, id): &(Arc<[u8]>, u64)| map.get(&**k).is_some_and(|s| s.id == *id);
        books.small.retain(live);
        books.main.retain(live);
        if map.is_empty() {
            books.ghost.clear();
            books.ghost_set.clear();
        }
        let b = &mut *books;
        for spare in [&mut b.small, &mut b.main] {
            if spare.len() < spare.capacity() / 4 {
                spare.shrink_to_fit();
            }
        }
        if b.groups.len() < b.groups.capacity() / 4 {
            b.groups.shrink_to_fit();
            b.ghost.shrink_to_fit();
            b.ghost_set.shrink_to_fit();
        }
        keys.len()
    }

    fn small_budget(&self) -> usize {
        self.budget * SMALL_TENTHS / 10
    }

    /// Evicts one entry (moving others between queues as S3-FIFO does);
    /// false when nothing is left to evict.
    fn evict_one(&self, books: &mut Books, map: &Pinned<'_, V>) -> bool {
        loop {
            let from_small = books.small_used > self.small_budget() || books.main.is_empty();
            let queue = if from_small {
                &mut books.small
            } else {
                &mut books.main
            };
            let Some((key, id)) = queue.pop_front() else {
                if books.small.is_empty() && books.main.is_empty() {
                    return false;
                }
                continue;
            };
            let Some(slot) = map.get(&*key) else {
                continue;
            };
            if slot.id != id {
                continue;
            }
            let freq = slot.freq.load(Ordering::Relaxed);
            if from_small {
                if freq > 0 {
                    // Hit while in probation: promote.
                    slot.freq.store(0, Ordering::Relaxed);
                    slot.main.store(true, Ordering::Relaxed);
                    books.small_used -= slot.weight;
                    books.main.push_back((key, id));
                    continue;
                }
                self.remember(books, self.hasher.hash_one(&*key));
            } else if freq > 0 {
                slot.freq.store(freq - 1, Ordering::Relaxed);
                books.main.push_back((key, id));
                continue;
            }
            self.remove_locked(books, map, &key);
            books.stats.evictions += 1;
            return true;
        }
    }

    /// Adds a fingerprint to the ghost list, bounded to the entries that
    /// fit in main.
    fn remember(&self, books: &mut Books, fingerprint: u64) {
        let limit = self.map.len().max(16);
        *books.ghost_set.entry(fingerprint).or_insert(0) += 1;
        books.ghost.push_back(fingerprint);
        while books.ghost.len() > limit {
            if let Some(old) = books.ghost.pop_front() {
                if let Some(n) = books.ghost_set.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        books.ghost_set.remove(&old);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Vec<u8> {
        format!("GET http://h/item/{i}").into_bytes()
    }

    #[test]
    fn the_budget_holds_including_overhead() {
        let shard = Shard::new(100_000);
        for i in 0..2_000 {
            assert!(shard.insert(&key(i), i, 500 + (i % 7) * 100));
            assert!(shard.used() <= 100_000, "after {i}: {}", shard.used());
        }
        assert!(
            shard.used() > 90_000,
            "the budget is used: {}",
            shard.used()
        );
        assert!(shard.stats().evictions > 0);
    }

    #[test]
    fn one_hit_wonders_do_not_flush_the_working_set() {
        let shard = Shard::new(200_000);
        // A hot set, used repeatedly.
        for round in 0..3 {
            for i in 0..100 {
                if shard.get(&key(i), |_| ()).is_none() {
                    shard.insert(&key(i), i, 1000);
                }
                let _ = round;
            }
        }
        // A scan of keys seen once.
        for i in 1_000..10_000 {
            shard.insert(&key(i), i, 1000);
        }
        let kept = (0..100)
            .filter(|&i| shard.get(&key(i), |_| ()).is_some())
            .count();
        assert!(kept >= 90, "hot entries kept: {kept}");
    }

    #[test]
    fn replace_remove_and_purge() {
        let shard = Shard::new(50_000);
        shard.insert(b"a/1", 1, 100);
        shard.insert(b"a/2", 2, 100);
        shard.insert(b"b/1", 3, 100);
        let before = shard.used();
        shard.insert(b"a/1", 10, 100);
        assert_eq!(shard.used(), before, "a replacement is not counted twice");
        assert_eq!(
            shard.books().small.len(),
            3,
            "a replacement keeps its queue slot"
        );
        shard.insert(b"a/1", 11, 150);
        assert_eq!(shard.used(), before + 50);
        assert_eq!(shard.get(b"a/1", |v| *v), Some(11));
        assert!(shard.remove(b"a/2"));
        assert_eq!(shard.remove_where(|k| k.starts_with(b"a/")), 1);
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.used(), 3 + 100 + OVERHEAD);
        // Stale queue positions are skipped: filling up still evicts right.
        for i in 0..1000 {
            shard.insert(&key(i), i, 100);
        }
        assert!(shard.used() <= 50_000);
    }

    #[test]
    fn a_group_goes_at_the_cost_of_its_size() {
        // Groups are what comes before the first `#`.
        fn group(k: &[u8]) -> &[u8] {
            k.split(|&b| b == b'#').next().unwrap_or(k)
        }
        let shard = Shard::grouped(10 << 20, group, ahash::RandomState::new());
        for i in 0..10_000 {
            shard.insert(format!("/u/{i}").as_bytes(), i, 10);
        }
        shard.insert(b"/u/7#alice", 1, 10);
        shard.insert(b"/u/7#bob", 2, 10);
        let before = shard.len();
        let used = shard.used();
        let examined = shard.stats().examined;
        assert_eq!(shard.remove_group(shard.group_hash(b"/u/7")), 3);
        assert_eq!(
            shard.stats().examined - examined,
            3,
            "only the group is looked at"
        );
        assert_eq!(shard.len(), before - 3);
        let keys = "/u/7".len() + "/u/7#alice".len() + "/u/7#bob".len();
        assert_eq!(shard.used(), used - 3 * (10 + OVERHEAD) - keys);
        assert!(shard.get(b"/u/7#bob", |_| ()).is_none());
        assert!(shard.get(b"/u/70", |_| ()).is_some());
        assert_eq!(
            shard.books().groups.len(),
            9_999,
            "one index slot per group left"
        );
        // Evicted and removed keys leave the index too.
        assert!(shard.remove(b"/u/8"));
        assert_eq!(shard.books().groups.len(), 9_998);
        assert_eq!(shard.remove_group(shard.group_hash(b"/u/8")), 0);
    }

    #[test]
    fn an_entry_too_large_for_the_shard_is_refused() {
        let shard: Shard<u8> = Shard::new(10_000);
        assert!(!shard.insert(b"big", 0, 9_000));
        assert_eq!(shard.stats().too_large, 1);
        assert_eq!(shard.len(), 0);
    }

    #[test]
    fn threads_share_one_store_under_one_budget() {
        let shard = std::sync::Arc::new(Shard::new(400_000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let shard = shard.clone();
                std::thread::spawn(move || {
                    let mut hits = 0;
                    for round in 0..3 {
                        for i in 0..500 {
                            // Every thread asks for the same keys; whoever
                            // misses first stores.
                            match shard.get(&key(i), |v: &usize| *v) {
                                Some(v) => {
                                    assert_eq!(v, i);
                                    hits += 1;
                                }
                                None => {
                                    shard.insert(&key(i), i, 300 + t * 10 + round);
                                }
                            }
                        }
                    }
                    hits
                })
            })
            .collect();
        let hits: usize = threads.into_iter().map(|t| t.join().expect("joined")).sum();
        assert!(
            hits > 4 * 500,
            "most lookups hit what any thread stored: {hits}"
        );
        assert!(shard.used() <= 400_000);
        let books = shard.books();
        let listed: usize = books
            .groups
            .values()
            .map(|m| match m {
                Members::One(_) => 1,
                Members::Many(v) => v.len(),
            })
            .sum();
        assert_eq!(listed, shard.len(), "the index agrees with the map");
    }
}
