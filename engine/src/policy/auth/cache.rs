//! Per-worker caches of successful credential checks.
//!
//! Checking a password hash costs milliseconds (≈17 ms for argon2id with
//! its default parameters) and a signature tens of microseconds (≈56 µs for
//! ES256), while a client sends the same credential on every request. Each worker therefore
//! keeps, per Basic or JWT authenticator, a bounded map from a SHA-256 of
//! the credential to what its check concluded. A hit costs one SHA-256 and
//! one probe (≈0.2 µs for Basic, ≈0.3 µs for a 270-byte token) and
//! allocates nothing; only successes are stored, so a wrong
//! credential is checked in full every time and can never be "remembered"
//! as good.
//!
//! The bound is `cache-size` entries (0 disables), evicted first in, first
//! out: no bookkeeping on a hit, at the price of evicting a busy entry that
//! is merely old (it is re-verified once and re-enters). A JWT entry keeps
//! the token's bytes (at most [`MAX_CACHED_TOKEN`], about 4 MiB for 4096
//! entries of typical 1 KiB tokens), a Basic entry only its expiry: never
//! the password.
//!
//! The cache is `!Send` worker state (`RefCell`), never borrowed across an
//! `.await` (checks are synchronous). It is keyed by [`CarryKey`] per
//! authenticator so a reload that keeps an authenticator unchanged keeps
//! its entries ([`AuthCache::carry_over`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use ahash::AHashMap;

use super::{Auth, CacheSpec, CarryKey};

/// Longest token kept in a JWT cache; longer ones are verified every time,
/// so the cache's memory stays within `cache-size × 8 KiB`.
pub(crate) const MAX_CACHED_TOKEN: usize = 8 << 10;

/// A worker's cached verifications for one [`Auth`]'s authenticators.
pub struct AuthCache {
    /// Mixed into Basic cache keys, so that a dump of this worker's memory
    /// does not hold plain SHA-256s of passwords to brute-force.
    secret: [u8; 32],
    /// Shared with the previous generation's cache while both live: a
    /// reload keeps an unchanged authenticator's entries.
    slots: Vec<(Option<CarryKey>, Rc<Slot>)>,
}

enum Slot {
    Off,
    Basic(RefCell<Bounded<BasicEntry>>),
    Jwt(RefCell<Bounded<JwtEntry>>),
}

/// A verified Basic credential: good until `expires` (since the epoch).
pub(crate) struct BasicEntry {
    pub(crate) expires: Duration,
}

/// A verified token.
pub(crate) struct JwtEntry {
    /// The token itself: a hit compares it, so even a SHA-256 collision
    /// could not pass one token off as another.
    pub(crate) token: Box<[u8]>,
    /// The consumer claim's value, resolved against the current consumers
    /// on each hit.
    pub(crate) consumer: Box<str>,
    /// Usable while `valid_from <= now < valid_until` (Unix seconds,
    /// `nbf`/`exp` with the leeway applied).
    pub(crate) valid_from: i64,
    pub(crate) valid_until: i64,
}

/// Counters of one authenticator's cache on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Entries held now.
    pub entries: usize,
    /// Most entries held (`cache-size`).
    pub capacity: usize,
    /// Lookups answered from the cache (a cached token outside its validity
    /// is answered too: refused without a signature check).
    pub hits: u64,
    /// Lookups that were not: nothing cached, a Basic entry past its TTL, or
    /// another token under the same digest.
    pub misses: u64,
    /// Successful checks stored.
    pub inserts: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
}

impl AuthCache {
    /// Empty caches sized for `auth`'s authenticators.
    pub fn new(auth: &Auth) -> AuthCache {
        let mut secret = [0u8; 32];
        // Without OS randomness the key is merely guessable, which only
        // matters to someone who can already read this process's memory.
        let _ = aws_lc_rs::rand::fill(&mut secret);
        AuthCache {
            secret,
            slots: (0..auth.len())
                .map(|i| {
                    (
                        auth.cache_key(i).cloned(),
                        Rc::new(Slot::for_spec(auth.cache_spec(i))),
                    )
                })
                .collect(),
        }
    }

    /// Caches for `auth` that keep `previous`'s entries of every
    /// authenticator whose [`CarryKey`] is unchanged (same name, same
    /// settings, same JWK set); the others start empty. Basic entries are
    /// keyed by the password hash they matched, so a user whose hash changed
    /// misses and is checked afresh.
    pub(crate) fn carry_over(auth: &Auth, previous: &AuthCache) -> AuthCache {
        let mut old: AHashMap<CarryKey, Rc<Slot>> = previous
            .slots
            .iter()
            .filter_map(|(key, slot)| Some((key.clone()?, slot.clone())))
            .collect();
        let slots = (0..auth.len())
            .map(|i| {
                let key = auth.cache_key(i).cloned();
                let spec = auth.cache_spec(i);
                let slot = key
                    .as_ref()
                    .and_then(|k| old.remove(k))
                    .filter(|s| s.fits(spec))
                    .unwrap_or_else(|| Rc::new(Slot::for_spec(spec)));
                (key, slot)
            })
            .collect();
        AuthCache {
            secret: previous.secret,
            slots,
        }
    }

    /// Counters of authenticator `i`'s cache, if it has one.
    pub fn stats(&self, i: usize) -> Option<CacheStats> {
        match &*self.slots.get(i)?.1 {
            Slot::Off => None,
            Slot::Basic(c) => Some(c.borrow().stats()),
            Slot::Jwt(c) => Some(c.borrow().stats()),
        }
    }

    pub(crate) fn basic(&self, i: usize) -> Option<&RefCell<Bounded<BasicEntry>>> {
        match &*self.slots.get(i)?.1 {
            Slot::Basic(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn jwt(&self, i: usize) -> Option<&RefCell<Bounded<JwtEntry>>> {
        match &*self.slots.get(i)?.1 {
            Slot::Jwt(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Slot {
    fn for_spec(spec: CacheSpec) -> Slot {
        match spec {
            CacheSpec::None => Slot::Off,
            CacheSpec::Basic(n) => Slot::Basic(RefCell::new(Bounded::new(n))),
            CacheSpec::Jwt(n) => Slot::Jwt(RefCell::new(Bounded::new(n))),
        }
    }

    fn fits(&self, spec: CacheSpec) -> bool {
        match (self, spec) {
            (Slot::Off, CacheSpec::None) => true,
            (Slot::Basic(c), CacheSpec::Basic(n)) => c.borrow().capacity == n,
            (Slot::Jwt(c), CacheSpec::Jwt(n)) => c.borrow().capacity == n,
            _ => false,
        }
    }
}

/// A map of at most `capacity` entries keyed by a 32-byte digest, evicting
/// the oldest insertion when full.
pub(crate) struct Bounded<V> {
    map: AHashMap<[u8; 32], V>,
    /// Insertion order; holds exactly the map's keys, each once.
    order: VecDeque<[u8; 32]>,
    capacity: usize,
    stats: CacheStats,
}

impl<V> Bounded<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Bounded {
            map: AHashMap::new(),
            order: VecDeque::new(),
            capacity,
            stats: CacheStats {
                capacity,
                ..CacheStats::default()
            },
        }
    }

    /// The entry under `key` if `accept` takes it, counting a hit or a miss.
    pub(crate) fn get(&mut self, key: &[u8; 32], accept: impl FnOnce(&V) -> bool) -> Option<&V> {
        match self.map.get(key) {
            Some(v) if accept(v) => {
                self.stats.hits += 1;
                Some(v)
            }
            _ => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Stores `value` under `key`, replacing an entry with the same key in
    /// place (it keeps its age) or evicting the oldest when full.
    pub(crate) fn insert(&mut self, key: [u8; 32], value: V) {
        if self.capacity == 0 {
            return;
        }
        self.stats.inserts += 1;
        if let Some(slot) = self.map.get_mut(&key) {
            *slot = value;
            return;
        }
        while self.map.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
            self.stats.evictions += 1;
        }
        self.map.insert(key, value);
        self.order.push_back(key);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.map.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn bounded_evicts_oldest_and_counts() {
        let mut b = Bounded::new(2);
        b.insert(key(1), 10);
        b.insert(key(2), 20);
        b.insert(key(1), 11); // replaced in place, still the oldest
        assert_eq!(b.stats().evictions, 0);
        b.insert(key(3), 30);
        assert_eq!(b.get(&key(1), |_| true), None);
        assert_eq!(b.get(&key(2), |_| true), Some(&20));
        assert_eq!(b.get(&key(3), |_| true), Some(&30));
        assert_eq!(b.get(&key(3), |v| *v != 30), None);
        let s = b.stats();
        assert_eq!(
            (
                s.entries,
                s.capacity,
                s.hits,
                s.misses,
                s.inserts,
                s.evictions
            ),
            (2, 2, 2, 2, 4, 1)
        );
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let mut b = Bounded::new(0);
        b.insert(key(1), 1);
        assert_eq!(b.get(&key(1), |_| true), None);
        assert_eq!(b.stats().entries, 0);
    }

    #[test]
    fn order_and_map_stay_in_step() {
        let mut b = Bounded::new(3);
        for round in 0..50u8 {
            b.insert(key(round % 7), round);
            assert_eq!(b.map.len(), b.order.len());
            assert!(b.map.len() <= 3);
            assert!(b.order.iter().all(|k| b.map.contains_key(k)));
        }
    }
}
