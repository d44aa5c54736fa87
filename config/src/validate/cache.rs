//! `[cache]` → [`Cache`] and `[routes.cache]` → [`RouteCache`]: store
//! budgets, the largest entry stored, and what goes into a cache key.
//!
//! The cache (one for all workers) keeps its entries in stores under a
//! byte budget: one shared by every caching route (`[cache] size`), plus
//! one per route that sets a `size` of its own. The rule spanning keys comes from the store: an entry
//! may use at most half of it, since a larger one would flush nearly
//! everything else (the engine's store refuses it). So `max-entry-size` is
//! checked against the store the route really uses, which for a route
//! without `size` is the shared one, and an inherited `max-entry-size` is
//! checked too: a route `size` too small for it is an error at `size`.
//!
//! `range-fetch-max` may not pass `max-entry-size`: the whole
//! representation a Range miss fetches is worth fetching only when it can
//! be stored. `targeted-field` names the RFC 9213 field for this cache; it
//! cannot be `Cache-Control` or `CDN-Cache-Control`, which it outranks.
//!
//! Key options are checked so that each can match something (RFC 9111
//! §2, §4.1 leave the key to the cache): a parameter name holding `&`, `=`
//! or `#` could never be a name in a query string, and `host` is in every
//! key already. `[routes.cache]` on a route answered by `[routes.respond]`
//! is an error, like every setting that could not take effect. With
//! `enabled = false` every key is still checked, so turning caching back on
//! cannot surface old mistakes.

use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::{defaults, duration, size, text, to_usize, AllowZero};
use crate::error::Reporter;
use crate::model::{Cache, RouteCache};
use crate::raw::{RawCache, RawRouteCache, Scalar};
use crate::units::format_size;

/// Shard `size` bounds, per worker. Below 64 KiB a store holds a handful of
/// responses, whose keys and overhead already count against it; 1 TiB is
/// far above any host's memory, and low enough to catch a unit typo.
const STORE_SIZE: RangeInclusive<u64> = 64 << 10..=1 << 40;
/// `lock-timeout` ceiling: each waiting request holds its client's
/// connection, and after a minute the origin is better asked directly.
const LOCK_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// Most `key-headers`: each is looked up and copied into the key on every
/// request, and each multiplies the entries one resource can have.
const MAX_KEY_HEADERS: usize = 8;

const NEEDS_UPSTREAM: &str = "caching needs an upstream route: a [routes.respond] route \
     answers from the gateway itself, so there is nothing to store";

pub(super) fn cache(raw: Option<&Spanned<RawCache>>, r: &mut Reporter<'_>) -> Option<Cache> {
    let empty = RawCache::default();
    let c = raw.map_or(&empty, Spanned::get_ref);

    let size = c.size.as_ref().map_or(Some(defaults::CACHE_SIZE), |v| {
        store_size(v, "cache.size", r)
    });
    let max_entry_size = c
        .max_entry_size
        .as_ref()
        .map_or(Some(defaults::CACHE_MAX_ENTRY_SIZE), |v| {
            entry_size(v, "cache.max-entry-size", r)
        });
    let lock_timeout = c
        .lock_timeout
        .as_ref()
        .map_or(Some(defaults::CACHE_LOCK_TIMEOUT), |v| lock_timeout(v, r));

    let mut fits = true;
    if let (Some(size), Some(entry)) = (size, max_entry_size) {
        if entry > size / 2 {
            // Point at whichever of the two was written; max-entry-size if
            // both (the defaults alone always fit).
            let (path, span) = match (&c.max_entry_size, &c.size) {
                (None, Some(s)) => ("cache.size", Some(s.span())),
                (entry_written, _) => (
                    "cache.max-entry-size",
                    entry_written.as_ref().map(Spanned::span),
                ),
            };
            let from = if c.max_entry_size.is_some() {
                ""
            } else {
                ", the default"
            };
            let store = format!("size ({})", show_size(size));
            r.error(path, span, half_a_store(entry, from, &store));
            fits = false;
        }
    }

    let targeted_field = c.targeted_field.as_ref().map_or_else(
        || Some(defaults::CACHE_TARGETED_FIELD.to_owned()),
        |v| targeted_field(v, r),
    );

    Some(Cache {
        size: size.filter(|_| fits)?,
        max_entry_size: max_entry_size?,
        lock_timeout: lock_timeout?,
        targeted_field: targeted_field?,
        forward_targeted: c.forward_targeted.unwrap_or(false),
    })
}

/// `[routes.cache]` of route `path` (`routes[i]`): `Some(None)` when the
/// route does not cache, `None` when anything was reported. `proxies` is
/// whether the route proxies, `None` when its action is unclear (reported
/// elsewhere); `global` is `None` when `[cache]` failed validation, and
/// checks that need it are then skipped.
pub(super) fn route_cache(
    raw: Option<&Spanned<RawRouteCache>>,
    path: &str,
    proxies: Option<bool>,
    global: Option<&Cache>,
    r: &mut Reporter<'_>,
) -> Option<Option<RouteCache>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let path = format!("{path}.cache");
    if proxies == Some(false) {
        r.error(path, Some(raw.span()), NEEDS_UPSTREAM);
        return None;
    }
    let c = raw.get_ref();
    let key = |k: &str| format!("{path}.{k}");

    let size = match &c.size {
        None => Some(None),
        Some(v) => store_size(v, &key("size"), r).map(Some),
    };
    let max_entry_size = match &c.max_entry_size {
        None => global.map(|g| g.max_entry_size),
        Some(v) => entry_size(v, &key("max-entry-size"), r),
    };

    let mut fits = true;
    let store = match size {
        Some(Some(own)) => Some((own, format!("this route's size ({})", show_size(own)))),
        Some(None) => global.map(|g| {
            let shared = format!("the shared store, cache.size ({})", show_size(g.size));
            (g.size, shared)
        }),
        None => None,
    };
    if let (Some((store, store_text)), Some(entry)) = (store, max_entry_size) {
        if entry > store / 2 {
            // Without a max-entry-size of its own, the route's `size` is
            // what is too small: the inherited value fits the shared store.
            let (at, span, from) = match (&c.max_entry_size, &c.size) {
                (None, Some(s)) => ("size", s.span(), ", from [cache]"),
                (Some(e), _) => ("max-entry-size", e.span(), ""),
                // Not reached: [cache] holds its entry size to its own store.
                (None, None) => ("max-entry-size", raw.span(), ", from [cache]"),
            };
            r.error(key(at), Some(span), half_a_store(entry, from, &store_text));
            fits = false;
        }
    }

    let ignore_params = c.ignore_params.as_ref().map_or(Some(Vec::new()), |l| {
        ignore_params(l.get_ref(), &key("ignore-params"), r)
    });
    let key_headers = c
        .key_headers
        .as_ref()
        .map_or(Some(Vec::new()), |l| key_headers(l, &key("key-headers"), r));

    let range_fetch_max = match (&c.range_fetch_max, max_entry_size) {
        (None, entry) => entry,
        (Some(v), entry) => match (super::size(v, &key("range-fetch-max"), r), entry) {
            (None, _) | (_, None) => None,
            (Some(bytes), Some(entry)) if bytes > entry as u64 => {
                r.error(
                    key("range-fetch-max"),
                    Some(v.span()),
                    format!(
                        "must be at most max-entry-size ({}): a whole representation \
                             fetched for a range is kept only when it can be stored",
                        show_size(entry)
                    ),
                );
                None
            }
            (Some(bytes), Some(_)) => {
                to_usize(Some(bytes), &key("range-fetch-max"), Some(v.span()), r)
            }
        },
    };

    let route = RouteCache {
        range_fetch_max: range_fetch_max?,
        serve_stale_on_error: c.serve_stale_on_error.unwrap_or(false),
        size: size?,
        max_entry_size: max_entry_size.filter(|_| fits)?,
        sort_query: c.sort_query.unwrap_or(false),
        ignore_params: ignore_params?,
        key_headers: key_headers?,
    };
    Some(c.enabled.unwrap_or(true).then_some(route))
}

fn show_size(bytes: usize) -> String {
    format_size(bytes as u64)
}

/// Why `max-entry-size` does not fit: `from` says where an inherited value
/// came from, `store` names the store and its size.
fn half_a_store(entry: usize, from: &str, store: &str) -> String {
    format!(
        "max-entry-size ({}{from}) is more than half of {store}: an entry may use at most \
         half a store, since a larger one would flush nearly everything else",
        show_size(entry)
    )
}

/// A store budget (`cache.size`, a route's `size`).
fn store_size(value: &Spanned<Scalar>, path: &str, r: &mut Reporter<'_>) -> Option<usize> {
    let bytes = size(value, path, r)?;
    let problem = if bytes < *STORE_SIZE.start() {
        Some("must be at least 64KiB: a smaller store holds only a handful of responses")
    } else if bytes > *STORE_SIZE.end() {
        Some("must be at most 1TiB; the budget is per worker")
    } else {
        None
    };
    if let Some(message) = problem {
        r.error(path, Some(value.span()), message);
        return None;
    }
    to_usize(Some(bytes), path, Some(value.span()), r)
}

/// A `max-entry-size`, before it is held against a store.
fn entry_size(value: &Spanned<Scalar>, path: &str, r: &mut Reporter<'_>) -> Option<usize> {
    match size(value, path, r)? {
        0 => {
            r.error(path, Some(value.span()), "must be greater than zero");
            None
        }
        bytes => to_usize(Some(bytes), path, Some(value.span()), r),
    }
}

/// `targeted-field`: a field name, kept lower-case; not one of the two
/// fields it is ranked against.
fn targeted_field(value: &Spanned<String>, r: &mut Reporter<'_>) -> Option<String> {
    let path = "cache.targeted-field";
    let problem = match text::header_token(value.get_ref()) {
        Err(message) => message,
        Ok(lower) if lower == "cache-control" || lower == "cdn-cache-control" => format!(
            "{:?} is read anyway; the targeted field is a third one, that only this \
             cache obeys (RFC 9213), such as \"Ringway-Cache-Control\"",
            value.get_ref()
        ),
        Ok(lower) => return Some(lower),
    };
    r.error(path, Some(value.span()), problem);
    None
}

fn lock_timeout(value: &Spanned<Scalar>, r: &mut Reporter<'_>) -> Option<Duration> {
    let path = "cache.lock-timeout";
    // Zero is allowed: it turns request collapsing off.
    let d = duration(value, path, AllowZero::Yes, r)?;
    if d > LOCK_TIMEOUT_MAX {
        r.error(
            path,
            Some(value.span()),
            "must be at most 60s: a waiting request holds its client's connection; \
             \"0s\" sends every miss to the origin at once",
        );
        return None;
    }
    Some(d)
}

fn ignore_params(
    list: &[Spanned<String>],
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    // Each accepted name with its index in `list`, for "already listed as".
    let mut seen: Vec<(usize, &str)> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (j, p) in list.iter().enumerate() {
        let name = p.get_ref().as_str();
        // Query parameter names are case-sensitive, so only an exact
        // repeat is one.
        let problem = text::key_param(name).err().or_else(|| {
            seen.iter()
                .find(|(_, s)| *s == name)
                .map(|(first, _)| format!("{name:?} is already listed as ignore-params[{first}]"))
        });
        match problem {
            Some(message) => {
                r.error(format!("{path}[{j}]"), Some(p.span()), message);
                ok = false;
            }
            None => seen.push((j, name)),
        }
    }
    ok.then(|| seen.into_iter().map(|(_, name)| name.to_owned()).collect())
}

fn key_headers(
    list: &Spanned<Vec<Spanned<String>>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    let mut ok = true;
    if list.get_ref().len() > MAX_KEY_HEADERS {
        r.error(
            path,
            Some(list.span()),
            format!(
                "lists {} headers; at most {MAX_KEY_HEADERS}: each is read into the key on \
                 every request and multiplies the entries a resource can have",
                list.get_ref().len()
            ),
        );
        ok = false;
    }
    // Each accepted name, lower-case, with its index in `list`.
    let mut seen: Vec<(usize, String)> = Vec::with_capacity(list.get_ref().len());
    for (j, h) in list.get_ref().iter().enumerate() {
        let problem = match text::header_token(h.get_ref()) {
            Err(message) => Some(message),
            Ok(lower) if lower == "host" => Some(format!(
                "{:?} is part of every cache key already",
                h.get_ref()
            )),
            Ok(lower) => match seen.iter().find(|(_, s)| *s == lower) {
                Some((first, _)) => Some(format!(
                    "{:?} is already listed as key-headers[{first}] (names ignore case)",
                    h.get_ref()
                )),
                None => {
                    seen.push((j, lower));
                    None
                }
            },
        };
        if let Some(message) = problem {
            r.error(format!("{path}[{j}]"), Some(h.span()), message);
            ok = false;
        }
    }
    ok.then(|| seen.into_iter().map(|(_, name)| name).collect())
}
