//! One worker's cache store: entries by key under a byte budget, with
//! S3-FIFO admission and eviction (Yang et al., SOSP 2023).
//!
//! New keys enter a small FIFO (a tenth of the budget); one that is hit
//! again before it leaves is promoted to the main FIFO, one that is not is
//! evicted and remembered in a ghost list of keys only, so that it goes
//! straight to main if it comes back soon. Main is a FIFO with a two-bit
//! hit count that buys an entry another round. One-hit wonders (a crawl, a
//! scan) pass through the small queue without displacing the working set,
//! which an LRU cannot do, at the cost of no reordering on hits (a hit only
//! bumps a counter, so it costs no list update).
//!
//! Every entry is weighed as its key plus its value's weight plus
//! [`OVERHEAD`] for the bookkeeping (map slot, queue slot, key and entry
//! headers, group index), so the budget holds for what the shard really
//! uses, not just the bodies.
//!
//! Keys fall in groups (for the cache: one URL under one route, whatever
//! consumer or key-header values follow it), indexed by a hash of the
//! group, so that dropping a group costs the size of the group, not a scan
//! of the shard.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Bytes of bookkeeping per entry beyond its key and value: the hash map
/// slot (about 64 bytes, times the table's spare capacity), the queue slot
/// (24, times the queue's), the reference-counted key's header (16), and
/// the ghost list's share (a fingerprint in a queue and a set, up to one
/// per entry), and the group index's slot (a hash, a key reference and
/// the table's spare room). Measured against the allocator by
/// `tests/cache_memory.rs`.
pub(crate) const OVERHEAD: usize = 384;

/// Most a hit count grows to.
const MAX_FREQ: u8 = 3;

/// Share of the budget the small queue holds, in tenths.
const SMALL_TENTHS: usize = 1;

struct Slot<V> {
    value: V,
    weight: usize,
    freq: u8,
    /// In the main queue (else the small one).
    main: bool,
    /// Distinguishes this entry from an earlier one under the same key, so
    /// queue positions of removed entries are skipped.
    id: u64,
}

/// Where a key's group ends: the group is the key's first bytes.
pub(crate) type GroupOf = fn(&[u8]) -> &[u8];

/// The keys of one group.
enum Members {
    One(Rc<[u8]>),
    Many(Vec<Rc<[u8]>>),
}

/// A cache shard over values of type `V`.
pub(crate) struct Shard<V> {
    budget: usize,
    group_of: GroupOf,
    /// Keys by the hash of their group.
    groups: HashMap<u64, Members, ahash::RandomState>,
    group_hasher: ahash::RandomState,
    used: usize,
    small_used: usize,
    map: HashMap<Rc<[u8]>, Slot<V>, ahash::RandomState>,
    small: VecDeque<(Rc<[u8]>, u64)>,
    main: VecDeque<(Rc<[u8]>, u64)>,
    ghost: VecDeque<u64>,
    ghost_set: HashMap<u64, u32, ahash::RandomState>,
    hasher: ahash::RandomState,
    next_id: u64,
    pub(crate) stats: ShardStats,
}

/// Counters of one shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShardStats {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) inserts: u64,
    pub(crate) evictions: u64,
    /// Values refused because they alone exceed what an entry may weigh.
    pub(crate) too_large: u64,
    /// Keys looked at by removals of groups or by predicate (a purge).
    pub(crate) examined: u64,
}

impl<V> Shard<V> {
    /// A shard whose keys are each their own group.
    #[cfg(test)]
    pub(crate) fn new(budget: usize) -> Shard<V> {
        Shard::grouped(budget, |k| k, ahash::RandomState::new())
    }

    /// A shard whose keys fall in groups as `group_of` says, hashed with
    /// `group_hasher` (the same for every shard that must agree on a
    /// group's hash).
    pub(crate) fn grouped(
        budget: usize,
        group_of: GroupOf,
        group_hasher: ahash::RandomState,
    ) -> Shard<V> {
        Shard {
            budget,
            group_of,
            groups: HashMap::default(),
            group_hasher,
            used: 0,
            small_used: 0,
            map: HashMap::default(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: VecDeque::new(),
            ghost_set: HashMap::default(),
            hasher: ahash::RandomState::new(),
            next_id: 0,
            stats: ShardStats::default(),
        }
    }

    /// Bytes accounted now (keys, values and overhead).
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value under `key`, counting a hit.
    pub(crate) fn get(&mut self, key: &[u8]) -> Option<&V> {
        match self.map.get_mut(key) {
            Some(slot) => {
                slot.freq = (slot.freq + 1).min(MAX_FREQ);
                self.stats.hits += 1;
                Some(&slot.value)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// The value under `key`, to change in place (no hit counted; call
    /// [`Self::insert`] after to account for a new weight).
    pub(crate) fn peek_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.map.get_mut(key).map(|s| &mut s.value)
    }

    /// Stores `value` (weighing `weight` bytes) under `key` and evicts
    /// until the budget holds. A value already there is replaced in place:
    /// it keeps its queue position and hit count. An entry weighing more
    /// than half the shard is refused (it would flush everything else),
    /// and any value under `key` removed: false.
    pub(crate) fn insert(&mut self, key: &[u8], value: V, weight: usize) -> bool {
        let total = key.len() + weight + OVERHEAD;
        if total > self.budget / 2 {
            self.stats.too_large += 1;
            self.remove(key);
            return false;
        }
        if let Some(slot) = self.map.get_mut(key) {
            self.used = self.used - slot.weight + total;
            if !slot.main {
                self.small_used = self.small_used - slot.weight + total;
            }
            slot.value = value;
            slot.weight = total;
            self.stats.inserts += 1;
            self.evict_to_budget();
            return true;
        }
        let fingerprint = self.fingerprint(key);
        let to_main = self.ghost_set.contains_key(&fingerprint);
        let id = self.next_id;
        self.next_id += 1;
        let key: Rc<[u8]> = key.into();
        self.link(&key);
        if to_main {
            self.main.push_back((key.clone(), id));
        } else {
            self.small.push_back((key.clone(), id));
            self.small_used += total;
        }
        self.map.insert(
            key,
            Slot {
                value,
                weight: total,
                freq: 0,
                main: to_main,
                id,
            },
        );
        self.used += total;
        self.stats.inserts += 1;
        self.evict_to_budget();
        true
    }

    fn evict_to_budget(&mut self) {
        while self.used > self.budget {
            if !self.evict_one() {
                break;
            }
        }
    }

    /// The hash a group is known by (the same in every shard built with
    /// the same group hasher).
    pub(crate) fn group_hash(&self, group: &[u8]) -> u64 {
        self.group_hasher.hash_one(group)
    }

    fn link(&mut self, key: &Rc<[u8]>) {
        let h = self.group_hash((self.group_of)(key));
        match self.groups.get_mut(&h) {
            None => {
                self.groups.insert(h, Members::One(key.clone()));
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

    fn unlink(&mut self, key: &[u8]) {
        let h = self.group_hash((self.group_of)(key));
        let Some(m) = self.groups.get_mut(&h) else {
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
            self.groups.remove(&h);
        }
    }

    /// Removes every entry of the group with hash `h`; how many. Costs the
    /// size of the group.
    pub(crate) fn remove_group(&mut self, h: u64) -> usize {
        let keys = match self.groups.remove(&h) {
            None => return 0,
            Some(Members::One(k)) => vec![k],
            Some(Members::Many(v)) => v,
        };
        self.stats.examined += keys.len() as u64;
        for k in &keys {
            if let Some(slot) = self.map.remove(&**k) {
                self.used -= slot.weight;
                if !slot.main {
                    self.small_used -= slot.weight;
                }
            }
        }
        keys.len()
    }

    /// Removes `key`'s entry, if any.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<V> {
        let slot = self.map.remove(key)?;
        self.unlink(key);
        self.used -= slot.weight;
        if !slot.main {
            self.small_used -= slot.weight;
        }
        // Its queue position is skipped when reached (the id is gone).
        Some(slot.value)
    }

    /// Removes every entry whose key satisfies `doomed`; how many.
    ///
    /// The queues drop the positions of what went (they would otherwise
    /// keep the keys alive until reached), and tables much larger than what
    /// is left shrink, so a purge gives its memory back.
    pub(crate) fn remove_where(&mut self, mut doomed: impl FnMut(&[u8]) -> bool) -> usize {
        self.stats.examined += self.map.len() as u64;
        let keys: Vec<Rc<[u8]>> = self.map.keys().filter(|k| doomed(k)).cloned().collect();
        if keys.is_empty() {
            return 0;
        }
        for k in &keys {
            self.remove(k);
        }
        let map = &self.map;
        let live = |(k, id): &(Rc<[u8]>, u64)| map.get(k).is_some_and(|s| s.id == *id);
        self.small.retain(live);
        self.main.retain(live);
        if self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to_fit();
            self.groups.shrink_to_fit();
            self.small.shrink_to_fit();
            self.main.shrink_to_fit();
            if self.map.is_empty() {
                self.ghost.clear();
                self.ghost_set.clear();
                self.ghost.shrink_to_fit();
                self.ghost_set.shrink_to_fit();
            }
        }
        keys.len()
    }

    fn small_budget(&self) -> usize {
        self.budget * SMALL_TENTHS / 10
    }

    fn fingerprint(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Evicts one entry (moving others between queues as S3-FIFO does);
    /// false when nothing is left to evict.
    fn evict_one(&mut self) -> bool {
        loop {
            let from_small = self.small_used > self.small_budget() || self.main.is_empty();
            let queue = if from_small {
                &mut self.small
            } else {
                &mut self.main
            };
            let Some((key, id)) = queue.pop_front() else {
                if self.small.is_empty() && self.main.is_empty() {
                    return false;
                }
                continue;
            };
            let Some(slot) = self.map.get_mut(&key) else {
                continue;
            };
            if slot.id != id {
                continue;
            }
            if from_small {
                if slot.freq > 0 {
                    // Hit while in probation: promote.
                    slot.freq = 0;
                    slot.main = true;
                    self.small_used -= slot.weight;
                    self.main.push_back((key, id));
                    continue;
                }
                let fingerprint = self.fingerprint(&key);
                self.remember(fingerprint);
            } else if slot.freq > 0 {
                slot.freq -= 1;
                self.main.push_back((key, id));
                continue;
            }
            self.remove(&key);
            self.stats.evictions += 1;
            return true;
        }
    }

    /// Adds a fingerprint to the ghost list, bounded to the entries that
    /// fit in main.
    fn remember(&mut self, fingerprint: u64) {
        let limit = self.map.len().max(16);
        *self.ghost_set.entry(fingerprint).or_insert(0) += 1;
        self.ghost.push_back(fingerprint);
        while self.ghost.len() > limit {
            if let Some(old) = self.ghost.pop_front() {
                if let Some(n) = self.ghost_set.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.ghost_set.remove(&old);
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
        let mut shard = Shard::new(100_000);
        for i in 0..2_000 {
            assert!(shard.insert(&key(i), i, 500 + (i % 7) * 100));
            assert!(shard.used() <= 100_000, "after {i}: {}", shard.used());
        }
        assert!(
            shard.used() > 90_000,
            "the budget is used: {}",
            shard.used()
        );
        assert!(shard.stats.evictions > 0);
    }

    #[test]
    fn one_hit_wonders_do_not_flush_the_working_set() {
        let mut shard = Shard::new(200_000);
        // A hot set, used repeatedly.
        for round in 0..3 {
            for i in 0..100 {
                if shard.get(&key(i)).is_none() {
                    shard.insert(&key(i), i, 1000);
                }
                let _ = round;
            }
        }
        // A scan of keys seen once.
        for i in 1_000..10_000 {
            shard.insert(&key(i), i, 1000);
        }
        let kept = (0..100).filter(|&i| shard.get(&key(i)).is_some()).count();
        assert!(kept >= 90, "hot entries kept: {kept}");
    }

    #[test]
    fn replace_remove_and_purge() {
        let mut shard = Shard::new(50_000);
        shard.insert(b"a/1", 1, 100);
        shard.insert(b"a/2", 2, 100);
        shard.insert(b"b/1", 3, 100);
        let before = shard.used();
        shard.insert(b"a/1", 10, 100);
        assert_eq!(shard.used(), before, "a replacement is not counted twice");
        assert_eq!(shard.small.len(), 3, "a replacement keeps its queue slot");
        shard.insert(b"a/1", 11, 150);
        assert_eq!(shard.used(), before + 50);
        assert_eq!(shard.get(b"a/1"), Some(&11));
        assert_eq!(shard.remove(b"a/2"), Some(2));
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
        let mut shard = Shard::grouped(10 << 20, group, ahash::RandomState::new());
        for i in 0..10_000 {
            shard.insert(format!("/u/{i}").as_bytes(), i, 10);
        }
        shard.insert(b"/u/7#alice", 1, 10);
        shard.insert(b"/u/7#bob", 2, 10);
        let before = shard.len();
        let used = shard.used();
        let examined = shard.stats.examined;
        assert_eq!(shard.remove_group(shard.group_hash(b"/u/7")), 3);
        assert_eq!(
            shard.stats.examined - examined,
            3,
            "only the group is looked at"
        );
        assert_eq!(shard.len(), before - 3);
        let keys = "/u/7".len() + "/u/7#alice".len() + "/u/7#bob".len();
        assert_eq!(shard.used(), used - 3 * (10 + OVERHEAD) - keys);
        assert!(shard.get(b"/u/7#bob").is_none());
        assert!(shard.get(b"/u/70").is_some());
        assert_eq!(shard.groups.len(), 9_999, "one index slot per group left");
        // Evicted and removed keys leave the index too.
        assert!(shard.remove(b"/u/8").is_some());
        assert_eq!(shard.groups.len(), 9_998);
        assert_eq!(shard.remove_group(shard.group_hash(b"/u/8")), 0);
    }

    #[test]
    fn an_entry_too_large_for_the_shard_is_refused() {
        let mut shard: Shard<u8> = Shard::new(10_000);
        assert!(!shard.insert(b"big", 0, 9_000));
        assert_eq!(shard.stats.too_large, 1);
        assert!(shard.is_empty());
    }
}
