//! `[routes.retry]` → [`Retry`]: how many tries a request gets, after
//! which failures, how long each may take and how long to wait between
//! them, and the budget that keeps retries from multiplying an outage.
//!
//! Without the table a route still gets [`Retry::default`]: one more try
//! after a connect failure, when nothing was sent, which is safe for every
//! method. The table is an error on a route answered by `[routes.respond]`,
//! which has nothing to retry. `backoff-max` must not be below `backoff`;
//! as elsewhere, a default that no longer fits is reported at the key that
//! was written.

use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::route::PROXY_ONLY;
use super::{
    defaults, duration, duration_or, integer_or, ordered, show, size, unique_list, AllowZero,
    Order, Side,
};
use crate::error::Reporter;
use crate::model::{Retry, RetryOn};
use crate::raw::{RawRetry, Scalar};
use crate::units::format_size;

/// `attempts` bounds, the first try included: past 10 a failing upstream
/// only gets more load.
const ATTEMPTS: RangeInclusive<i64> = 1..=10;
/// `backoff` bounds; 0 retries at once.
const BACKOFF: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(10);
/// `budget-percent` bounds.
const BUDGET_PERCENT: RangeInclusive<i64> = 0..=100;
/// `budget-min` bounds.
const BUDGET_MIN: RangeInclusive<i64> = 0..=10_000;
/// The largest `retry-buffer`: a buffered body stays in memory for every
/// try of its request.
const RETRY_BUFFER_MAX: u64 = 16 << 20;

/// `[routes.retry]` of route `path` (`routes[i]`); `proxies` is whether the
/// route proxies, `None` when its action is unclear (reported elsewhere).
pub(super) fn retry(
    raw: Option<&Spanned<RawRetry>>,
    path: &str,
    proxies: Option<bool>,
    r: &mut Reporter<'_>,
) -> Option<Retry> {
    let Some(raw) = raw else {
        return Some(Retry::default());
    };
    let path = format!("{path}.retry");
    if proxies == Some(false) {
        r.error(path, Some(raw.span()), PROXY_ONLY);
        return None;
    }
    let t = raw.get_ref();
    let default = Retry::default();
    let key = |k: &str| format!("{path}.{k}");

    let attempts = integer_or(
        t.attempts.as_ref(),
        &key("attempts"),
        ATTEMPTS,
        default.attempts,
        r,
    );
    let on = match &t.on {
        None => {
            let mut on = RetryOn::NONE;
            for name in defaults::RETRY_ON {
                if let Some(flag) = on.flag_mut(name) {
                    *flag = true;
                }
            }
            Some(on)
        }
        Some(list) => retry_on(list, &key("on"), r),
    };
    let per_try_timeout = match &t.per_try_timeout {
        None => Some(None),
        Some(v) => duration(v, &key("per-try-timeout"), AllowZero::No, r).map(Some),
    };
    let backoff = duration_or(
        t.backoff.as_ref(),
        &key("backoff"),
        BACKOFF,
        default.backoff,
        r,
    );
    let backoff_max = t
        .backoff_max
        .as_ref()
        .map_or(Some(default.backoff_max), |v| {
            duration(v, &key("backoff-max"), AllowZero::Yes, r)
        });
    let fits = ordered(
        &path,
        &Side {
            key: "backoff-max",
            value: backoff_max,
            written: t.backoff_max.as_ref(),
        },
        Order::AtLeast,
        &Side {
            key: "backoff",
            value: backoff,
            written: t.backoff.as_ref(),
        },
        "",
        r,
    );
    let budget_percent = integer_or(
        t.budget_percent.as_ref(),
        &key("budget-percent"),
        BUDGET_PERCENT,
        default.budget_percent,
        r,
    );
    let budget_min = integer_or(
        t.budget_min.as_ref(),
        &key("budget-min"),
        BUDGET_MIN,
        default.budget_min,
        r,
    );
    let retry_buffer = match &t.retry_buffer {
        None => Some(default.retry_buffer),
        Some(v) => size(v, &key("retry-buffer"), r).filter(|&bytes| {
            let fits = bytes <= RETRY_BUFFER_MAX;
            if !fits {
                r.error(
                    key("retry-buffer"),
                    Some(v.span()),
                    format!(
                        "must be at most {}: a kept body stays in memory for every try",
                        format_size(RETRY_BUFFER_MAX)
                    ),
                );
            }
            fits
        }),
    };
    Some(Retry {
        attempts: attempts?,
        on: on?,
        per_try_timeout: per_try_timeout?,
        backoff: backoff?,
        backoff_max: backoff_max.filter(|_| fits)?,
        budget_percent: budget_percent?,
        budget_min: budget_min?,
        retry_non_idempotent: t.retry_non_idempotent.unwrap_or(false),
        retry_buffer: retry_buffer?,
    })
}

/// `on`: names from [`RetryOn::NAMES`], none twice; `502` to `504` may
/// also be written as integers.
fn retry_on(
    list: &Spanned<Vec<Spanned<Scalar>>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<RetryOn> {
    // Empty is allowed: nothing is retried.
    let names = unique_list(list, path, None, failure, r)?;
    let mut on = RetryOn::NONE;
    for name in names {
        if let Some(flag) = on.flag_mut(name) {
            *flag = true;
        }
    }
    Some(on)
}

/// One entry of `on`: its name in [`RetryOn::NAMES`].
fn failure(value: &Scalar) -> Result<&'static str, String> {
    let text = match value {
        Scalar::Str(s) => s.clone(),
        Scalar::Int(n) => n.to_string(),
        other => show(other),
    };
    RetryOn::NAMES
        .into_iter()
        .find(|&n| n == text)
        .ok_or_else(|| {
            let names: Vec<String> = RetryOn::NAMES.iter().map(|n| format!("{n:?}")).collect();
            format!(
                "unknown failure {}; expected one of {}",
                show(value),
                names.join(", ")
            )
        })
}
