//! Worker-local state that outlives a config generation.
//!
//! A reload compiles a new snapshot, but the state a worker has built up
//! for what did not change (pooled upstream connections today; rate-limit
//! buckets, cache shards and health later) must survive it. Each piece of
//! such state is found again by a stable key that a worker derives from the
//! new config: the state of a key present in both generations is shared
//! (the same `Rc`), a new key starts fresh, and a key that disappeared is
//! handed back to be retired.
//!
//! Keys should include whatever makes old state wrong for the new config:
//! a pool is keyed by upstream name and server address, so moving a name
//! to a different address starts an empty pool; a rate limit would be keyed
//! by its route and its whole definition, so changing the rate starts fresh
//! buckets while an untouched limit keeps its tokens.

use std::hash::Hash;
use std::rc::Rc;

type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// State of one kind, by key, as held by one generation on one worker.
pub(crate) struct Keyed<K, V> {
    map: HashMap<K, Rc<V>>,
}

impl<K, V> Default for Keyed<K, V> {
    fn default() -> Self {
        Keyed {
            map: HashMap::default(),
        }
    }
}

/// The outcome of carrying state into a new generation.
pub(crate) struct Carried<K, V> {
    pub(crate) next: Keyed<K, V>,
    /// Entries of the previous generation with no key in the new one; the
    /// caller retires them (closes connections, frees memory). In-flight
    /// requests of the old generation may still hold them for a while.
    pub(crate) retired: Vec<Rc<V>>,
}

impl<K: Eq + Hash + Clone, V> Keyed<K, V> {
    /// Builds the next generation's table: `keys` in the new config order,
    /// taking each from `self` when present, else from `make`.
    pub(crate) fn carry(
        &self,
        keys: impl IntoIterator<Item = K>,
        mut make: impl FnMut(&K) -> V,
    ) -> Carried<K, V> {
        let mut next = HashMap::default();
        for key in keys {
            if next.contains_key(&key) {
                continue;
            }
            let value = match self.map.get(&key) {
                Some(v) => v.clone(),
                None => Rc::new(make(&key)),
            };
            next.insert(key, value);
        }
        let retired = self
            .map
            .iter()
            .filter(|(k, _)| !next.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        Carried {
            next: Keyed { map: next },
            retired,
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&Rc<V>> {
        self.map.get(key)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn unchanged_keys_keep_their_state_and_removed_ones_retire() {
        let first = Keyed::default().carry(["a", "b", "c"], |_| Cell::new(0));
        assert!(first.retired.is_empty());
        first.next.get(&"a").expect("a").set(7);
        first.next.get(&"b").expect("b").set(9);

        let second = first.next.carry(["a", "d", "a"], |_| Cell::new(1));
        assert_eq!(second.next.len(), 2);
        assert_eq!(second.next.get(&"a").expect("a").get(), 7);
        assert_eq!(second.next.get(&"d").expect("d").get(), 1);
        let mut retired: Vec<i32> = second.retired.iter().map(|c| c.get()).collect();
        retired.sort();
        assert_eq!(retired, [0, 9]);
        // Shared, not copied: the old generation sees the new one's writes.
        second.next.get(&"a").expect("a").set(8);
        assert_eq!(first.next.get(&"a").expect("a").get(), 8);
    }
}
