//! Traffic policies applied to a request, in this order: global IP rules
//! (before routing), then the route's IP rules, authentication and
//! authorization, rate limits, and its concurrency limit.
//!
//! [`Policies`] is compiled with the snapshot and shared by every worker;
//! the state that must be exact across workers (rate-limit buckets,
//! in-flight counts) lives in it, behind atomics, and is carried into the
//! next snapshot by route name and limit definition. [`LocalPolicies`] is a
//! worker's own part (leased tokens, verification caches), carried the
//! same way between that worker's generations. A route with no policies
//! costs one branch.

pub(crate) mod auth;
pub(crate) mod cors;
pub(crate) mod ip;
pub(crate) mod limit;

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use std::time::SystemTime;

use bytes::BytesMut;
use ringway_config::{ConcurrencyLimit, Config, ConfigErrors, LimitKey, RateLimit};

use crate::error::{Error, Kind};
use crate::http::head::RequestHead;
use crate::http::write;
use crate::rt::carry::Keyed;
use auth::{Auth, AuthCache, CredentialLocation, Outcome, Step};
use ip::{IpRules, IpSet};
use limit::{LocalLimit, Permit, SharedConcurrency, SharedLimit, Verdict};

/// One rate limit of one route, and what identifies it across reloads.
pub(crate) struct RouteLimit {
    pub(crate) key: LimitKey,
    pub(crate) shared: Arc<SharedLimit>,
    carry: (String, RateLimit),
}

/// A route's compiled policies.
pub(crate) struct RoutePolicy {
    pub(crate) ip: IpRules,
    /// Authenticators to try, in order (indexes into the config's).
    pub(crate) auth: Vec<usize>,
    /// Per consumer: may it use this route? Empty: every consumer may.
    pub(crate) allowed: Vec<bool>,
    /// Lower-case header carrying the consumer's name upstream.
    pub(crate) consumer_header: String,
    /// Headers removed before forwarding: the credentials' (unless the
    /// route forwards them) and the consumer header a client may have sent.
    pub(crate) strip_headers: Vec<String>,
    /// Query parameters carrying credentials, removed before forwarding.
    pub(crate) strip_params: Vec<String>,
    pub(crate) limits: Vec<RouteLimit>,
    pub(crate) concurrency: Option<(LimitKey, Arc<SharedConcurrency>)>,
    concurrency_carry: Option<(String, ConcurrencyLimit)>,
    /// Send RateLimit headers on admitted responses.
    pub(crate) headers: bool,
    /// Nothing to check: the request goes straight on.
    pub(crate) empty: bool,
}

/// Every policy of one config, shared by all workers.
pub(crate) struct Policies {
    pub(crate) global: IpRules,
    pub(crate) trusted: IpSet,
    pub(crate) auth: Auth,
    /// Consumer names, by index.
    pub(crate) consumers: Vec<String>,
}

impl Policies {
    /// Compiles `config`'s policies, taking the shared state of every limit
    /// whose route and definition `prev` also has.
    /// Fails when key material (PEM, JWKS files, password hashes) does not
    /// load, naming the field.
    /// Returns the shared policies and each route's own, in config order;
    /// `prev` is the previous generation's routes' policies.
    pub(crate) fn compile(
        config: &Config,
        prev: &[&RoutePolicy],
        workers: usize,
    ) -> Result<(Policies, Vec<RoutePolicy>), ConfigErrors> {
        let auth = Auth::compile(config)?;
        // Every consumer header any route sends is stripped from what
        // clients send on every route: an upstream behind a public route is
        // often the one behind an authenticated route too.
        let mut consumer_headers: Vec<String> = Vec::new();
        for r in config.routes.iter().filter(|r| !r.auth.is_empty()) {
            let h = r.consumer_header.to_ascii_lowercase();
            if !consumer_headers.contains(&h) {
                consumer_headers.push(h);
            }
        }
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let limits: Vec<RouteLimit> = r
                    .rate_limits
                    .iter()
                    .map(|l| {
                        let carry = (r.name.clone(), l.clone());
                        let shared = shared_limit(prev, &carry)
                            .unwrap_or_else(|| Arc::new(SharedLimit::new(l, workers)));
                        RouteLimit {
                            key: l.key.clone(),
                            shared,
                            carry,
                        }
                    })
                    .collect();
                let concurrency_carry = r.concurrency.as_ref().map(|c| (r.name.clone(), c.clone()));
                let concurrency = concurrency_carry.as_ref().map(|carry| {
                    let c = &carry.1;
                    let shared = shared_concurrency(prev, carry).unwrap_or_else(|| {
                        Arc::new(SharedConcurrency::new(c.max, c.status, c.max_keys))
                    });
                    (c.key.clone(), shared)
                });
                let ip = IpRules::new(&r.ip_rules);
                let empty = ip.is_empty()
                    && limits.is_empty()
                    && concurrency.is_none()
                    && r.auth.is_empty();
                let allowed = if r.allow_groups.is_empty() {
                    Vec::new()
                } else {
                    config
                        .consumers
                        .iter()
                        .map(|c| c.groups.iter().any(|g| r.allow_groups.contains(g)))
                        .collect()
                };
                let mut strip_headers = consumer_headers.clone();
                let mut strip_params = Vec::new();
                if !r.auth.is_empty() && !r.forward_credentials {
                    for l in auth.credential_locations(&r.auth) {
                        match l {
                            CredentialLocation::Header(h) => strip_headers.push(h.to_string()),
                            CredentialLocation::Query(q) => strip_params.push(q.to_string()),
                        }
                    }
                }
                RoutePolicy {
                    ip,
                    strip_headers,
                    strip_params,
                    auth: r.auth.clone(),
                    allowed,
                    consumer_header: r.consumer_header.to_ascii_lowercase(),
                    limits,
                    concurrency,
                    concurrency_carry,
                    headers: r.rate_limit_headers,
                    empty,
                }
            })
            .collect();
        let policies = Policies {
            global: IpRules::new(&config.ip_rules),
            trusted: IpSet::new(&config.client_ip.trusted_proxies),
            auth,
            consumers: config.consumers.iter().map(|c| c.name.clone()).collect(),
        };
        Ok((policies, routes))
    }
}

fn shared_limit(routes: &[&RoutePolicy], carry: &(String, RateLimit)) -> Option<Arc<SharedLimit>> {
    routes
        .iter()
        .flat_map(|r| &r.limits)
        .find(|l| &l.carry == carry)
        .map(|l| l.shared.clone())
}

fn shared_concurrency(
    routes: &[&RoutePolicy],
    carry: &(String, ConcurrencyLimit),
) -> Option<Arc<SharedConcurrency>> {
    routes
        .iter()
        .find(|r| r.concurrency_carry.as_ref() == Some(carry))
        .and_then(|r| r.concurrency.as_ref().map(|c| c.1.clone()))
}

/// A worker's part of the policies of one generation.
pub(crate) struct LocalPolicies {
    /// Per route, per rate limit.
    limits: Vec<Vec<Rc<LocalLimit>>>,
    by_key: Keyed<(String, RateLimit), LocalLimit>,
    pub(crate) auth_cache: AuthCache,
}

impl LocalPolicies {
    /// Builds a worker's part for `routes` (in config order).
    pub(crate) fn new(
        policies: &Policies,
        routes: &[&RoutePolicy],
        prev: Option<&LocalPolicies>,
    ) -> LocalPolicies {
        let empty = Keyed::default();
        let keys = routes
            .iter()
            .flat_map(|r| r.limits.iter().map(|l| l.carry.clone()));
        let carried = prev.map_or(&empty, |p| &p.by_key).carry(keys, |k| {
            let shared = shared_limit(routes, k).expect("every carry key comes from a route limit");
            LocalLimit::new(shared)
        });
        let by_key = carried.next;
        let limits = routes
            .iter()
            .map(|r| {
                r.limits
                    .iter()
                    .map(|l| {
                        let local = by_key.get(&l.carry).expect("made above").clone();
                        // A local limit only ever leases from the shared
                        // limit the new snapshot holds (a worker that missed
                        // a generation may hold one for an older bucket).
                        if Arc::ptr_eq(&local.shared, &l.shared) {
                            local
                        } else {
                            Rc::new(LocalLimit::new(l.shared.clone()))
                        }
                    })
                    .collect()
            })
            .collect();
        let auth_cache = match prev {
            Some(p) => AuthCache::carry_over(&policies.auth, &p.auth_cache),
            None => AuthCache::new(&policies.auth),
        };
        LocalPolicies {
            limits,
            by_key,
            auth_cache,
        }
    }
}

/// What the policies let through.
#[derive(Default)]
pub(crate) struct Pass {
    /// The authenticated consumer (index into the config's).
    pub(crate) consumer: Option<usize>,
    /// Held until the request ends (concurrency limit).
    pub(crate) permit: Option<Permit>,
    /// The tightest rate limit's figures, for RateLimit headers.
    pub(crate) rate: Option<Verdict>,
}

/// The request as policies see it.
pub(crate) struct Subject<'a> {
    pub(crate) head: &'a RequestHead,
    pub(crate) client: IpAddr,
    /// The authenticated consumer's name.
    pub(crate) consumer: Option<&'a str>,
}

/// When a request is checked.
#[derive(Clone, Copy)]
pub(crate) struct Now {
    /// For rate limits: [`limit::now_ns`].
    pub(crate) mono: u64,
    /// For token lifetimes.
    pub(crate) wall: SystemTime,
}

impl Policies {
    /// The route's authentication, with a slow password check deferred to
    /// the caller; `None` when the route has none.
    pub(crate) fn authenticate(
        &self,
        local: &LocalPolicies,
        policy: &RoutePolicy,
        head: &RequestHead,
        now: Now,
    ) -> Option<Step> {
        if policy.auth.is_empty() {
            return None;
        }
        Some(
            self.auth
                .authenticate_deferred(&local.auth_cache, &policy.auth, head, now.wall),
        )
    }

    /// The route's authorization, limits and concurrency, given the
    /// outcome of [`Policies::authenticate`] (the route's IP rules were
    /// checked before). `route` is the route's index, `policy` its
    /// policies. An `Err` refuses the request; header lines for the
    /// refusal (challenges, Retry-After) are appended to `extra`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check(
        &self,
        local: &LocalPolicies,
        route: usize,
        policy: &RoutePolicy,
        head: &RequestHead,
        client: IpAddr,
        now: Now,
        outcome: Option<Outcome>,
        extra: &mut BytesMut,
    ) -> Result<Pass, Error> {
        let mut pass = Pass::default();
        if policy.empty {
            return Ok(pass);
        }
        if let Some(outcome) = outcome {
            match outcome {
                Outcome::Consumer { consumer, .. } => {
                    if !policy.allowed.is_empty() && !policy.allowed[consumer] {
                        return Err(Error::downstream(
                            Kind::Forbidden,
                            "consumer not in an allowed group",
                        ));
                    }
                    pass.consumer = Some(consumer);
                }
                Outcome::Missing | Outcome::Invalid { .. } => {
                    self.auth.challenges(&policy.auth, &outcome, extra);
                    return Err(Error::downstream(
                        Kind::Unauthorized,
                        "credentials missing or not valid",
                    ));
                }
            }
        }
        let who = Subject {
            head,
            client,
            consumer: pass.consumer.map(|c| self.consumers[c].as_str()),
        };
        let now = now.mono;
        let mut ip_bytes = [0u8; 16];
        for (l, local) in policy.limits.iter().zip(&local.limits[route]) {
            let key = limit_key(&l.key, &who, &mut ip_bytes);
            let v = local.check(key, now, policy.headers);
            if !v.allowed {
                rate_headers(extra, &v);
                write::header(
                    extra,
                    b"Retry-After",
                    itoa::Buffer::new().format(v.retry_after).as_bytes(),
                );
                return Err(Error::downstream(
                    Kind::TooManyRequests,
                    "over a rate limit",
                ));
            }
            if pass.rate.is_none_or(|best| v.remaining < best.remaining) {
                pass.rate = Some(v);
            }
        }
        if let Some((key, shared)) = &policy.concurrency {
            let key = limit_key(key, &who, &mut ip_bytes);
            match shared.acquire(key) {
                Some(p) => pass.permit = Some(p),
                None => {
                    let kind = if shared.status == 429 {
                        Kind::TooManyRequests
                    } else {
                        Kind::Unavailable
                    };
                    return Err(Error::downstream(kind, "over a concurrency limit"));
                }
            }
        }
        Ok(pass)
    }
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset` lines (IETF httpapi
/// rate-limit headers draft).
pub(crate) fn rate_headers(out: &mut BytesMut, v: &Verdict) {
    let mut n = itoa::Buffer::new();
    write::header(out, b"RateLimit-Limit", n.format(v.limit).as_bytes());
    write::header(
        out,
        b"RateLimit-Remaining",
        n.format(v.remaining).as_bytes(),
    );
    write::header(out, b"RateLimit-Reset", n.format(v.reset).as_bytes());
}

/// The bytes a limit counts a request by.
fn limit_key<'a>(key: &'a LimitKey, who: &Subject<'a>, ip: &'a mut [u8; 16]) -> &'a [u8] {
    match key {
        LimitKey::Route => b"",
        LimitKey::ClientIp => match who.client {
            IpAddr::V4(a) => {
                ip[..4].copy_from_slice(&a.octets());
                &ip[..4]
            }
            // Per /64: one IPv6 client commonly holds a whole /64, and per
            // /128 it could spread over 2^64 keys.
            IpAddr::V6(a) => {
                *ip = a.octets();
                &ip[..8]
            }
        },
        LimitKey::Consumer => who.consumer.unwrap_or("").as_bytes(),
        LimitKey::Header(name) => {
            let head = who.head;
            head.values(name.as_bytes()).next().unwrap_or(b"")
        }
    }
}
