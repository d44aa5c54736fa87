//! The cache as one config generation sees it: the stores, which route
//! uses which, and the fetches in flight that later misses wait for.
//!
//! There is one logical cache for the process, not one per worker: the
//! stores hang off the snapshot every worker runs, so a response stored
//! on any worker is a hit on all of them, concurrent misses for one key
//! on any workers collapse into one origin fetch, and a purge, an
//! invalidation or a background refresh acts once. A hit reads a store
//! without a lock (see `shard`); what a worker keeps to itself are its
//! scratch buffers ([`LocalCache`]).
//!
//! Routes share one store (`[cache] size`) unless they set their own
//! `size`. Every key starts with the route's tag, a hash of its name and
//! cache settings, so two routes never answer from each other's entries,
//! and a reload that changes a route's cache settings leaves its old
//! entries unreachable (they are dropped once the new generation runs).
//! A store whose budget is unchanged carries over a reload with its
//! entries.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ringway_config::Config;

use super::entry::Entry;
use super::key::{self, KeyOptions};
use super::shard::{Change, Shard};
use crate::http::head::RequestHead;

/// Stored responses of one primary key, one per Vary selection. Never
/// changed once stored: a new variant makes a new object, so hits on
/// other workers read it without a lock.
#[derive(Default)]
pub(crate) struct Object {
    variants: Vec<Arc<Entry>>,
}

/// Responses kept per primary key for different Vary selections; a new
/// one beyond this replaces the oldest.
const MAX_VARIANTS: usize = 8;

/// How long a key whose response was not stored skips collapsing. A
/// storable response for it ends this at once (every request still goes
/// to the origin, which is asked each time), so the only cost of a long
/// window is a stampede on a key that became cacheable, until one fetch
/// completes.
const PASS_SECS: u64 = 60;

/// Keys remembered as not stored, per store; when full, the expired ones
/// go, and if none has expired, all.
const MAX_PASSES: usize = 4096;

/// Key buffers kept for reuse per worker (requests in flight at once on a
/// caching route, beyond which a buffer is freed after use).
const KEY_BUFS: usize = 1024;

/// Bytes of a tag, the first bytes of every key.
pub(crate) const TAG_LEN: usize = 8;

/// A lock poisoned by a panic elsewhere still guards consistent data
/// (every change under it completes before the lock is released).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One store, shared by every worker, and the fetches in flight for its
/// keys. Only misses take its locks; a hit reads the store without one.
pub(crate) struct ShardRt {
    pub(crate) shard: Shard<Object>,
    /// Keys being fetched or revalidated now, on any worker: later
    /// requests for them wait for the flight to land (or, for
    /// stale-while-revalidate, do not start another revalidation).
    pending: Mutex<HashMap<Vec<u8>, Arc<Flight>, ahash::RandomState>>,
    /// Keys whose last response could not be stored, until when (Unix
    /// seconds): requests for them go to the origin at once instead of
    /// waiting for each other's fetch, which could not serve them anyway.
    passes: Mutex<HashMap<Vec<u8>, u64, ahash::RandomState>>,
    budget: usize,
    /// Whose store: a route's name, or `None` for the shared one.
    owner: Option<String>,
}

/// A fetch in flight that requests on any worker may wait for.
#[derive(Default)]
pub(crate) struct Flight {
    landed: AtomicBool,
    event: event_listener::Event,
}

impl Flight {
    /// Waits until the fetch ends, however it ends.
    pub(crate) async fn wait(&self) {
        while !self.landed.load(Ordering::Acquire) {
            let listener = self.event.listen();
            // Landed between the check and the registration: the
            // notification is already gone.
            if self.landed.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }

    fn land(&self) {
        self.landed.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }
}

/// A route's cache settings, compiled.
#[derive(Clone)]
pub struct RouteCache {
    pub(crate) shard: Arc<ShardRt>,
    pub(crate) tag: [u8; TAG_LEN],
    pub(crate) options: KeyOptions,
    pub(crate) max_entry: usize,
    pub(crate) lock_timeout: Duration,
}

/// What the stores of a generation hold now, and have evicted.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Held {
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    /// Entries evicted to keep within a budget, since each store began (a
    /// store lasts across reloads that keep its owner and budget).
    pub(crate) evictions: u64,
}

/// The cache of one config generation: one logical cache for the whole
/// process, held by the snapshot every worker runs, so that a response
/// stored on any worker answers on all of them, and its memory budget is
/// the whole cache's.
#[derive(Default)]
pub struct SharedCache {
    /// Per route, when it caches.
    pub routes: Vec<Option<RouteCache>>,
    shards: Vec<Arc<ShardRt>>,
}

impl SharedCache {
    /// Compiles the cache settings of `config`, carrying over stores of
    /// `prev` whose owner and budget are unchanged (with their entries
    /// and the fetches in flight).
    pub fn compile(config: &Config, prev: Option<&SharedCache>) -> SharedCache {
        let mut shards: Vec<Arc<ShardRt>> = Vec::new();
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let Some(rc) = &route.cache else {
                routes.push(None);
                continue;
            };
            let owner = rc.size.map(|_| route.name.clone());
            let budget = rc.size.unwrap_or(config.cache.size);
            let same = |s: &&Arc<ShardRt>| s.owner == owner && s.budget == budget;
            let shard = match shards.iter().find(same) {
                Some(s) => s.clone(),
                None => {
                    let carried = prev.and_then(|p| p.shards.iter().find(same).cloned());
                    let shard = carried.unwrap_or_else(|| {
                        Arc::new(ShardRt {
                            shard: Shard::grouped(budget, url_key_of, group_hasher()),
                            pending: Mutex::default(),
                            passes: Mutex::default(),
                            budget,
                            owner,
                        })
                    });
                    shards.push(shard.clone());
                    shard
                }
            };
            routes.push(Some(RouteCache {
                shard,
                tag: tag_of(&route.name, rc),
                options: KeyOptions {
                    sort_query: rc.sort_query,
                    drop_params: rc.ignore_params.clone(),
                    headers: rc.key_headers.clone(),
                },
                max_entry: rc.max_entry_size,
                lock_timeout: config.cache.lock_timeout,
            }));
        }
        SharedCache { routes, shards }
    }

    /// Frees the entries of routes gone or changed (unreachable from this
    /// generation on): once it is the running one, not when compiled, so
    /// that a config only checked or refused costs the cache nothing.
    pub(crate) fn prune(&self) {
        let mut tags: HashMap<*const ShardRt, HashSet<[u8; TAG_LEN]>> = HashMap::new();
        for rc in self.routes.iter().flatten() {
            tags.entry(Arc::as_ptr(&rc.shard))
                .or_default()
                .insert(rc.tag);
        }
        for s in &self.shards {
            let live = &tags[&Arc::as_ptr(s)];
            s.shard
                .remove_where(|k| k.len() < TAG_LEN || !live.contains(&k[..TAG_LEN]));
        }
    }

    /// Does any route cache?
    pub(crate) fn caches(&self) -> bool {
        !self.shards.is_empty()
    }

    /// Entries and bytes over all stores.
    pub(crate) fn totals(&self) -> Held {
        let mut held = Held::default();
        for s in &self.shards {
            held.entries += s.shard.len() as u64;
            held.bytes += s.shard.used() as u64;
            held.evictions += s.shard.evictions();
        }
        held
    }

    /// Removes every entry; how many.
    pub(crate) fn purge_all(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.shard.remove_where(|_| true))
            .sum()
    }

    /// Removes the entries whose URL starts with `prefix`
    /// (`http://host/path`, the host compared ignoring case, either scheme
    /// matching both); how many.
    pub(crate) fn purge_prefix(&self, prefix: &str) -> usize {
        let prefix = normalise_url(prefix);
        let prefix = without_scheme(&prefix);
        self.shards
            .iter()
            .map(|s| {
                s.shard
                    .remove_where(|k| without_scheme(url_part(k)).starts_with(prefix))
            })
            .sum()
    }

    /// Removes the stored responses of `url` (`http://host/path?query`;
    /// either scheme purges both), as each caching route would key it; how
    /// many entries.
    pub(crate) fn purge_url(&self, url: &str) -> usize {
        let url = normalise_url(url);
        let rest = without_scheme(&url);
        if rest.len() == url.len() {
            return 0;
        }
        let slash = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let (host, target) = rest.split_at(slash);
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(q) => (&target[..q], Some(&target[q + 1..])),
            None => (target, None),
        };
        let path = if path.is_empty() { &b"/"[..] } else { path };
        let mut removed = 0;
        for rc in self.routes.iter().flatten() {
            let mut want = Vec::new();
            key::primary(
                &mut want,
                b"http",
                host,
                path,
                query,
                &rc.options,
                |_, _| {},
            );
            if let Some(end) = want.iter().position(|&b| b == 0) {
                want.truncate(end);
            }
            removed += rc.shard.shard.remove_where(|k| {
                k.len() >= TAG_LEN
                    && k[..TAG_LEN] == rc.tag
                    && without_scheme(url_part(k)) == without_scheme(&want)
            });
        }
        removed
    }

    /// Drops the stored responses of the URL key (tag and URL) whose
    /// hash is `h` ([`url_hash`]), under every consumer and key-header
    /// value; how many. Costs what was stored under it, not a scan.
    pub(crate) fn invalidate(&self, h: u64) -> usize {
        self.shards.iter().map(|s| s.shard.remove_group(h)).sum()
    }
}

/// One worker's view of the cache: the generation's shared cache, and
/// the worker's own scratch buffers, so that a lookup allocates nothing.
pub struct LocalCache {
    pub(crate) shared: Arc<SharedCache>,
    /// Reused key buffers (one per request in flight).
    key_bufs: RefCell<Vec<Vec<u8>>>,
    vary_buf: RefCell<Vec<u8>>,
}

impl LocalCache {
    pub fn new(shared: Arc<SharedCache>) -> LocalCache {
        LocalCache {
            shared,
            key_bufs: RefCell::default(),
            vary_buf: RefCell::default(),
        }
    }

    /// The cache this view is of.
    pub fn shared(&self) -> Arc<SharedCache> {
        self.shared.clone()
    }

    /// The cache settings of route `index`, when it caches.
    pub fn route(&self, index: usize) -> Option<&RouteCache> {
        self.shared.routes.get(index)?.as_ref()
    }

    /// A key buffer to build a key in; give it back with [`Self::put_key`].
    pub(crate) fn take_key(&self) -> Vec<u8> {
        let mut k = self.key_bufs.borrow_mut().pop().unwrap_or_default();
        k.clear();
        k
    }

    pub(crate) fn put_key(&self, k: Vec<u8>) {
        let mut bufs = self.key_bufs.borrow_mut();
        if bufs.len() < KEY_BUFS {
            bufs.push(k);
        }
    }

    /// Does any route cache?
    pub(crate) fn caches(&self) -> bool {
        self.shared.caches()
    }

    /// Writes into `out` the key of `head`'s URL (no consumer or
    /// key-header part) under every caching route, for invalidation; read
    /// them back with [`each_key`]. One buffer, so it can come from the
    /// key pool and allocate nothing.
    /// Both schemes: a change made over one is a change for the other.
    pub(crate) fn url_keys(&self, out: &mut Vec<u8>, head: &RequestHead) {
        out.clear();
        let mut k = self.take_key();
        for rc in self.shared.routes.iter().flatten() {
            for https in [false, true] {
                rc.key(&mut k, head, https, Identity::default());
                let len = TAG_LEN + url_part(&k).len();
                out.extend_from_slice(&(len as u32).to_le_bytes());
                out.extend_from_slice(&k[..len]);
            }
        }
        self.put_key(k);
    }
}

/// A URL (or key URL part) without its `http://` or `https://`.
fn without_scheme(url: &[u8]) -> &[u8] {
    url.strip_prefix(b"https://")
        .or_else(|| url.strip_prefix(b"http://"))
        .unwrap_or(url)
}

/// Who a request comes from, as far as the cache keys by it: one
/// consumer's or client certificate's answers are never served to another.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity<'a> {
    /// The authenticated consumer (routes with authentication).
    pub(crate) consumer: Option<&'a str>,
    /// The verified client certificate's subject (mTLS listeners).
    pub(crate) subject: Option<&'a str>,
}

/// A URL with its scheme and host lower-cased.
fn normalise_url(url: &str) -> Vec<u8> {
    let mut out = url.as_bytes().to_vec();
    let host_end = url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| url[start..].find('/').map(|j| start + j))
        .unwrap_or(url.len());
    out[..host_end].make_ascii_lowercase();
    out
}

/// Bytes the variants of a key hold: each entry, its `Arc` header, and
/// its slot in the list.
fn weigh(variants: &Vec<Arc<Entry>>) -> usize {
    variants.iter().map(|e| e.weight + 16).sum::<usize>()
        + variants.capacity() * std::mem::size_of::<Arc<Entry>>()
}

/// The keys [`LocalCache::url_keys`] wrote.
pub(crate) fn each_key(keys: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = keys;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (key, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        Some(key)
    })
}

/// A key's group: its tag and URL part (what [`LocalCache::url_keys`]
/// writes), without the consumer and key-header parts.
fn url_key_of(key: &[u8]) -> &[u8] {
    let n = (TAG_LEN + url_part(key).len()).min(key.len());
    &key[..n]
}

/// The hasher of URL keys, the same for every worker (so one worker can
/// name a group to another by its hash) and seeded at random once per
/// process (so a client cannot choose URLs that collide).
fn group_hasher() -> ahash::RandomState {
    static HASHER: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new).clone()
}

/// The hash that names a URL key ([`LocalCache::url_keys`]) in
/// invalidations.
pub(crate) fn url_hash(url_key: &[u8]) -> u64 {
    group_hasher().hash_one(url_key)
}

/// The URL part of a key: after the tag, before the first key-header
/// separator.
pub(crate) fn url_part(key: &[u8]) -> &[u8] {
    let rest = key.get(TAG_LEN..).unwrap_or(b"");
    match rest.iter().position(|&b| b == 0) {
        Some(i) => &rest[..i],
        None => rest,
    }
}

/// A stable hash of a route's name and cache settings.
fn tag_of(name: &str, rc: &ringway_config::RouteCache) -> [u8; TAG_LEN] {
    // SipHash with fixed keys: the same on every worker and every reload.
    let mut h = std::hash::DefaultHasher::new();
    name.hash(&mut h);
    rc.hash(&mut h);
    h.finish().to_le_bytes()
}

/// Hands every value of request field `name` to `each`, in order.
fn visit(head: &RequestHead, name: &[u8], each: &mut dyn FnMut(&[u8])) {
    for h in &head.headers {
        if head.bytes(h.name).eq_ignore_ascii_case(name) {
            each(head.bytes(h.value));
        }
    }
}

impl RouteCache {
    /// Builds the key of `head` into `out` (cleared first): tag, then the
    /// primary key (scheme `https` when the request came over TLS), then
    /// the consumer and the client certificate's subject when there are.
    pub fn key(&self, out: &mut Vec<u8>, head: &RequestHead, https: bool, who: Identity<'_>) {
        out.clear();
        out.extend_from_slice(&self.tag);
        let origin = head.origin();
        let query = origin
            .iter()
            .position(|&b| b == b'?')
            .map(|q| &origin[q + 1..]);
        key::primary(
            out,
            if https { b"https" } else { b"http" },
            head.authority(),
            head.path(),
            query,
            &self.options,
            |name, each| visit(head, name.as_bytes(), each),
        );
        if let Some(c) = who.consumer {
            out.push(0);
            out.extend_from_slice(b"consumer:");
            out.extend_from_slice(c.as_bytes());
        }
        if let Some(s) = who.subject {
            out.push(0);
            out.extend_from_slice(b"subject:");
            out.extend_from_slice(s.as_bytes());
        }
    }

    /// The stored response for `key` that `head` selects (Vary), if any.
    /// Takes no lock and allocates nothing: a hit costs the store's
    /// lock-free read and one reference count.
    pub fn lookup(&self, cache: &LocalCache, key: &[u8], head: &RequestHead) -> Option<Arc<Entry>> {
        self.peek(cache, key, head, Arc::clone)
    }

    /// What `read` makes of the stored response for `key` that `head`
    /// selects, if any, read in place: the store keeps the entry while
    /// `read` runs (which must not wait for anything), and nothing is
    /// written to the entry, not even a reference count.
    pub fn peek<R>(
        &self,
        cache: &LocalCache,
        key: &[u8],
        head: &RequestHead,
        read: impl FnOnce(&Arc<Entry>) -> R,
    ) -> Option<R> {
        let mut scratch = cache.vary_buf.borrow_mut();
        let found = self.shard.shard.get(key, |object| {
            object
                .variants
                .iter()
                .find(|e| {
                    if e.vary.is_empty() {
                        return e.secondary.is_empty();
                    }
                    scratch.clear();
                    key::secondary(&mut scratch, &e.vary, |n, each| visit(head, n, each));
                    *scratch == e.secondary
                })
                .map(read)
        });
        found?
    }

    /// The secondary key `head` has for a response varying on `names`.
    pub fn secondary_of(names: &[Vec<u8>], head: &RequestHead) -> Vec<u8> {
        let mut out = Vec::new();
        key::secondary(&mut out, names, |n, each| visit(head, n, each));
        out
    }

    /// Stores `entry` under `key`, replacing the variant with the same
    /// secondary key. False when the store refused it (too large).
    pub fn insert(&self, key: &[u8], entry: Arc<Entry>) -> bool {
        if entry.vary_any {
            // `Vary: *` matches no later request (§4.1): nothing to keep,
            // and what was stored is superseded.
            self.shard.shard.remove(key);
            return false;
        }
        self.shard.shard.update(key, |old| {
            let kept = old.map_or(&[][..], |o| &o.variants[..]);
            let mut variants: Vec<Arc<Entry>> = kept
                .iter()
                .filter(|e| e.secondary != entry.secondary && e.vary == entry.vary)
                .cloned()
                .collect();
            if variants.len() >= MAX_VARIANTS {
                variants.remove(0);
            }
            variants.push(entry);
            let weight = weigh(&variants);
            Change::Put(Object { variants }, weight)
        })
    }

    /// Drops one stored response (a variant) of `key`.
    pub(crate) fn remove_entry(&self, key: &[u8], entry: &Arc<Entry>) {
        self.shard.shard.update(key, |old| {
            let Some(old) = old.filter(|o| o.variants.iter().any(|e| Arc::ptr_eq(e, entry))) else {
                return Change::Keep;
            };
            let variants: Vec<Arc<Entry>> = old
                .variants
                .iter()
                .filter(|e| !Arc::ptr_eq(e, entry))
                .cloned()
                .collect();
            if variants.is_empty() {
                return Change::Remove;
            }
            let weight = weigh(&variants);
            Change::Put(Object { variants }, weight)
        });
    }

    /// Does `key` skip collapsing (its last response was not stored)?
    pub(crate) fn passes(&self, key: &[u8], now: u64) -> bool {
        locked(&self.shard.passes)
            .get(key)
            .is_some_and(|&until| now < until)
    }

    /// Remembers whether the response just fetched for `key` was stored.
    pub(crate) fn note_stored(&self, key: &[u8], stored: bool, now: u64) {
        let mut passes = locked(&self.shard.passes);
        if stored {
            passes.remove(key);
            return;
        }
        if passes.len() >= MAX_PASSES && !passes.contains_key(key) {
            passes.retain(|_, &mut until| now < until);
            if passes.len() >= MAX_PASSES {
                passes.clear();
            }
        }
        match passes.get_mut(key) {
            Some(until) => *until = now + PASS_SECS,
            None => {
                passes.insert(key.to_vec(), now + PASS_SECS);
            }
        }
    }

    /// The fetch in flight for `key` on any worker, if any.
    pub(crate) fn pending(&self, key: &[u8]) -> Option<Arc<Flight>> {
        locked(&self.shard.pending).get(key).cloned()
    }

    /// Registers a fetch for `key`, or, when one is in flight already on
    /// any worker, gives that one to wait for: one atomic step, so two
    /// workers missing at once never both lead. The guard lands the
    /// flight, waking its waiters, and unregisters when dropped (whatever
    /// way the fetch ends).
    pub(crate) fn lead(&self, key: &[u8]) -> Result<Leading, Arc<Flight>> {
        let mut pending = locked(&self.shard.pending);
        if let Some(flight) = pending.get(key) {
            return Err(flight.clone());
        }
        let flight = Arc::new(Flight::default());
        pending.insert(key.to_vec(), flight.clone());
        Ok(Leading {
            shard: self.shard.clone(),
            key: key.to_vec(),
            flight,
        })
    }
}

/// A fetch other requests for the same key wait for.
pub(crate) struct Leading {
    shard: Arc<ShardRt>,
    key: Vec<u8>,
    flight: Arc<Flight>,
}

impl Drop for Leading {
    fn drop(&mut self) {
        let mut pending = locked(&self.shard.pending);
        if pending
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            pending.remove(&self.key);
        }
        drop(pending);
        self.flight.land();
    }
}
