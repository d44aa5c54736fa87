//! Freshness arithmetic for a shared cache (RFC 9111 §4.2): how long a
//! stored response stays fresh, how old it is now, and whether a request
//! may be answered with it as it is.
//!
//! Times are whole seconds since the Unix epoch, the resolution of the
//! HTTP-date and delta-seconds they come from.
//!
//! `Age` is a single delta-seconds, but may arrive as a list or on several
//! lines: the first value counts (RFC 9111 §5.1), and one that is not a
//! delta-seconds makes the response stale, since nothing then bounds how
//! old it already was.

use super::directives::{RequestDirectives, ResponseDirectives};

/// Heuristic freshness is capped at a day: the 10%-of-age rule (§4.2.2)
/// applied to a resource unchanged for years would otherwise serve it for
/// months without asking.
pub(crate) const HEURISTIC_MAX: u64 = 24 * 3600;

/// Status codes that are "heuristically cacheable" (RFC 9110 §15.1).
pub(crate) fn heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// The parts of a stored response's head that freshness depends on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stored {
    pub(crate) status: u16,
    pub(crate) directives: ResponseDirectives,
    /// `Date`, if present and valid.
    pub(crate) date: Option<u64>,
    /// `Expires`: `None` absent, `Some(None)` present but invalid (which
    /// means "already expired", §5.3).
    pub(crate) expires: Option<Option<u64>>,
    pub(crate) last_modified: Option<u64>,
    /// `Age`, if present and valid.
    pub(crate) age: Option<u64>,
    /// `Age` was present but its first value invalid: stale at once.
    pub(crate) age_invalid: bool,
    /// When the request that produced it was sent, and the response came.
    pub(crate) request_time: u64,
    pub(crate) response_time: u64,
}

impl Stored {
    /// The freshness lifetime in seconds for a shared cache (§4.2.1).
    pub(crate) fn lifetime(&self) -> u64 {
        if self.age_invalid {
            return 0;
        }
        let d = &self.directives;
        if let Some(s) = d.s_maxage {
            return s;
        }
        if let Some(m) = d.max_age {
            return m;
        }
        let date = self.date.unwrap_or(self.response_time);
        match self.expires {
            Some(Some(expires)) => return expires.saturating_sub(date),
            Some(None) => return 0,
            None => {}
        }
        // Heuristic freshness only where §4.2.2 allows it: no explicit
        // expiry, and a status cacheable by default or marked public.
        let allowed = heuristically_cacheable(self.status) || d.public;
        match self.last_modified {
            Some(lm) if allowed && lm <= date => ((date - lm) / 10).min(HEURISTIC_MAX),
            _ => 0,
        }
    }

    /// The current age in seconds at `now` (§4.2.3).
    pub(crate) fn current_age(&self, now: u64) -> u64 {
        let date = self.date.unwrap_or(self.response_time);
        let apparent_age = self.response_time.saturating_sub(date);
        let response_delay = self.response_time.saturating_sub(self.request_time);
        let corrected_age_value = self.age.unwrap_or(0).saturating_add(response_delay);
        let corrected_initial_age = apparent_age.max(corrected_age_value);
        let resident_time = now.saturating_sub(self.response_time);
        corrected_initial_age.saturating_add(resident_time)
    }
}

/// The value of an `Age` field line (§5.1): its first list member as
/// delta-seconds (clamped like every delta, §1.2.2), `Err` when that is not
/// one. Later members, and later lines, are ignored.
pub(crate) fn age_value(line: &[u8]) -> Result<u64, ()> {
    let first = crate::http::text::list(line).next().ok_or(())?;
    if !first.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    let mut n: u64 = 0;
    for &d in first {
        n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    Ok(n.min(super::directives::DELTA_MAX))
}

/// Whether a stored response may answer a request without contacting the
/// origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Fresh enough for this request.
    Fresh,
    /// Stale, but the request accepts that much staleness (`max-stale`).
    Stale,
    /// Must be revalidated (or refetched) first.
    Revalidate,
}

/// Decides for a response of `lifetime` and `age` (seconds) against the
/// request's and response's directives (§4.2, §5.2.1, §5.2.2).
pub(crate) fn usable(
    lifetime: u64,
    age: u64,
    req: &RequestDirectives,
    res: &ResponseDirectives,
) -> Use {
    if req.no_cache || res.no_cache {
        return Use::Revalidate;
    }
    if req.max_age.is_some_and(|max| age > max) {
        return Use::Revalidate;
    }
    let left = lifetime.saturating_sub(age);
    let fresh = lifetime > age && left >= req.min_fresh.unwrap_or(0);
    if fresh {
        return Use::Fresh;
    }
    if res.revalidate_when_stale() {
        return Use::Revalidate;
    }
    let staleness = age.saturating_sub(lifetime);
    match req.max_stale {
        Some(allowed) if lifetime <= age && staleness <= allowed => Use::Stale,
        _ => Use::Revalidate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;

    fn stored(cc: &str) -> Stored {
        Stored {
            status: 200,
            directives: ResponseDirectives::parse([cc.as_bytes()]),
            date: Some(T),
            request_time: T,
            response_time: T,
            ..Stored::default()
        }
    }

    #[test]
    fn lifetime_follows_the_precedence_of_4_2_1() {
        let cases: &[(Stored, u64)] = &[
            (stored("max-age=60, s-maxage=10"), 10),
            (stored("max-age=60"), 60),
            (
                Stored {
                    expires: Some(Some(T + 120)),
                    ..stored("")
                },
                120,
            ),
            (
                Stored {
                    expires: Some(Some(T + 120)),
                    ..stored("max-age=5")
                },
                5,
            ),
            // An invalid Expires means already expired.
            (
                Stored {
                    expires: Some(None),
                    ..stored("")
                },
                0,
            ),
            // Heuristic: 10% of the time since last modification.
            (
                Stored {
                    last_modified: Some(T - 1000),
                    ..stored("")
                },
                100,
            ),
            // ...capped at a day.
            (
                Stored {
                    last_modified: Some(T - 100 * 24 * 3600),
                    ..stored("")
                },
                HEURISTIC_MAX,
            ),
            // ...and not for a status that is not cacheable by default.
            (
                Stored {
                    status: 302,
                    last_modified: Some(T - 1000),
                    ..stored("")
                },
                0,
            ),
            // ...unless marked public.
            (
                Stored {
                    status: 302,
                    last_modified: Some(T - 1000),
                    ..stored("public")
                },
                100,
            ),
            (stored(""), 0),
        ];
        for (i, (s, want)) in cases.iter().enumerate() {
            assert_eq!(s.lifetime(), *want, "case {i}");
        }
    }

    #[test]
    fn age_takes_the_first_value_rfc9111_5_1() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("10", Ok(10)),
            (" 10 ", Ok(10)),
            ("10, 20", Ok(10)),
            ("10,abc", Ok(10)),
            (", 7", Ok(7)),
            (
                "99999999999999999999",
                Ok(super::super::directives::DELTA_MAX),
            ),
            ("", Err(())),
            ("-1", Err(())),
            ("1.5", Err(())),
            ("abc, 10", Err(())),
        ];
        for (v, want) in cases {
            assert_eq!(age_value(v.as_bytes()), *want, "{v:?}");
        }
        // An invalid Age makes the response stale.
        let s = Stored {
            age_invalid: true,
            ..stored("max-age=600")
        };
        assert_eq!(s.lifetime(), 0);
    }

    #[test]
    fn current_age_corrects_for_delay_and_age_headers() {
        // Sent at T, received at T+2, upstream said Age: 10, Date: T+1.
        let s = Stored {
            date: Some(T + 1),
            age: Some(10),
            request_time: T,
            response_time: T + 2,
            ..stored("")
        };
        // corrected_age_value = 10 + 2; apparent = 1; + 5 s resident.
        assert_eq!(s.current_age(T + 7), 17);
        // A Date in the future does not make the age negative.
        let s = Stored {
            date: Some(T + 100),
            ..stored("")
        };
        assert_eq!(s.current_age(T + 3), 3);
    }

    #[test]
    fn use_decisions() {
        let none = RequestDirectives::default();
        let plain = ResponseDirectives::default();
        let req = |v: &str| RequestDirectives::parse([v.as_bytes()]);
        let res = |v: &str| ResponseDirectives::parse([v.as_bytes()]);
        let cases: &[(u64, u64, RequestDirectives, ResponseDirectives, Use)] = &[
            (60, 10, none, plain, Use::Fresh),
            (60, 60, none, plain, Use::Revalidate),
            (60, 10, req("no-cache"), plain, Use::Revalidate),
            (60, 10, none, res("no-cache"), Use::Revalidate),
            (60, 10, req("max-age=5"), plain, Use::Revalidate),
            (60, 10, req("min-fresh=50"), plain, Use::Fresh),
            (60, 10, req("min-fresh=51"), plain, Use::Revalidate),
            (
                60,
                10,
                req("min-fresh=51, max-stale"),
                plain,
                Use::Revalidate,
            ),
            (60, 90, req("max-stale=60"), plain, Use::Stale),
            (60, 90, req("max-stale=10"), plain, Use::Revalidate),
            (60, 90, req("max-stale"), plain, Use::Stale),
            (
                60,
                90,
                req("max-stale"),
                res("must-revalidate"),
                Use::Revalidate,
            ),
            (
                60,
                90,
                req("max-stale"),
                res("s-maxage=60"),
                Use::Revalidate,
            ),
        ];
        for (i, (lifetime, age, q, r, want)) in cases.iter().enumerate() {
            assert_eq!(usable(*lifetime, *age, q, r), *want, "case {i}");
        }
    }
}
