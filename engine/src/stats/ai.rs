//! The AI gateway's counters: tokens, requests, durations and time to the
//! first token per model and provider, and the providers' error answers
//! by status; one set per worker, summed when scraped.
//!
//! Labels come from the config (model and provider names) and from fixed
//! sets (token types, statuses), so the series are bounded by the config.
//! A (model, provider) pair or a provider that keeps its names across a
//! reload keeps its counters.

use std::sync::Arc;

use ringway_config::Config;

use super::histogram::{Histogram, Summed};
use super::Counter;

/// The `type` label of `ringway_ai_tokens_total`, in [`ModelStats::tokens`]
/// order.
pub(crate) const TOKEN_TYPES: [&str; 4] = ["input", "output", "cached", "reasoning"];

/// Provider answer statuses counted by value; the rest count as `other`,
/// and failures with no answer (refused, reset, timed out) as `none`.
pub(crate) const PROVIDER_STATUSES: [u16; 12] =
    [400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504];

/// The `status` label of each of [`ProviderStats::errors`].
pub(crate) fn status_label(i: usize) -> &'static str {
    const LABELS: [&str; PROVIDER_STATUSES.len() + 2] = [
        "400", "401", "403", "404", "408", "413", "422", "429", "500", "502", "503", "504",
        "other", "none",
    ];
    LABELS[i]
}

/// One (model, provider) pair's counters on one worker.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ModelStats {
    /// By [`TOKEN_TYPES`].
    pub(crate) tokens: [Counter; TOKEN_TYPES.len()],
    /// Requests the provider answered (also when the client then left).
    pub(crate) requests: Counter,
    /// From the request's first byte to the answer's last.
    pub(crate) duration: Histogram,
    /// From the request's first byte to the first token sent (the whole
    /// answer, when not streaming).
    pub(crate) ttft: Histogram,
    /// Tries at this pair left for the model's next target.
    pub(crate) fallbacks: Counter,
}

/// One provider's error answers on one worker.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ProviderStats {
    /// By [`PROVIDER_STATUSES`] index, then `other`, then `none`.
    pub(crate) errors: [Counter; PROVIDER_STATUSES.len() + 2],
}

impl ProviderStats {
    /// Counts an error answer with `status` (0: no answer).
    pub(crate) fn error(&self, status: u16) {
        let i = match status {
            0 => PROVIDER_STATUSES.len() + 1,
            s => PROVIDER_STATUSES
                .iter()
                .position(|&x| x == s)
                .unwrap_or(PROVIDER_STATUSES.len()),
        };
        self.errors[i].inc();
    }
}

/// A pair's names and its counters on every worker.
pub(crate) struct PairSet {
    pub(crate) model: String,
    pub(crate) provider: String,
    /// Whether the model has a target at the provider (only those are
    /// exposed).
    pub(crate) used: bool,
    pub(crate) workers: Vec<Arc<ModelStats>>,
}

/// A provider's name and its counters on every worker.
pub(crate) struct ProviderSet {
    pub(crate) provider: String,
    pub(crate) workers: Vec<Arc<ProviderStats>>,
}

/// Every AI set of one compiled config.
#[derive(Default)]
pub(crate) struct AiSets {
    /// By `model * providers + provider`.
    pub(crate) pairs: Vec<PairSet>,
    /// By provider index.
    pub(crate) providers: Vec<ProviderSet>,
}

impl AiSets {
    pub(crate) fn new(config: &Config, workers: usize, prev: Option<&AiSets>) -> AiSets {
        let mut pairs = Vec::new();
        for m in &config.ai_models {
            for (p, provider) in config.ai_providers.iter().enumerate() {
                let kept = prev.and_then(|s| {
                    s.pairs
                        .iter()
                        .find(|x| x.model == m.name && x.provider == provider.name)
                });
                pairs.push(PairSet {
                    model: m.name.clone(),
                    provider: provider.name.clone(),
                    used: m.targets.iter().any(|t| t.provider == p),
                    workers: match kept {
                        Some(k) if k.workers.len() == workers => k.workers.clone(),
                        _ => (0..workers).map(|_| Arc::default()).collect(),
                    },
                });
            }
        }
        let providers = config
            .ai_providers
            .iter()
            .map(|p| {
                let kept = prev.and_then(|s| s.providers.iter().find(|x| x.provider == p.name));
                ProviderSet {
                    provider: p.name.clone(),
                    workers: match kept {
                        Some(k) if k.workers.len() == workers => k.workers.clone(),
                        _ => (0..workers).map(|_| Arc::default()).collect(),
                    },
                }
            })
            .collect();
        AiSets { pairs, providers }
    }

    /// A worker's pair counters, by `model * providers + provider`.
    pub(crate) fn pairs_of(&self, worker: usize) -> Vec<Arc<ModelStats>> {
        self.pairs
            .iter()
            .map(|p| p.workers[worker].clone())
            .collect()
    }

    /// A worker's provider counters, by provider index.
    pub(crate) fn providers_of(&self, worker: usize) -> Vec<Arc<ProviderStats>> {
        self.providers
            .iter()
            .map(|p| p.workers[worker].clone())
            .collect()
    }
}

/// A pair's counters summed over workers.
#[derive(Debug, Default, Clone)]
pub(crate) struct PairTotals {
    pub(crate) tokens: [u64; TOKEN_TYPES.len()],
    pub(crate) requests: u64,
    pub(crate) duration: Summed,
    pub(crate) ttft: Summed,
    pub(crate) fallbacks: u64,
}

impl PairTotals {
    pub(crate) fn of(set: &PairSet) -> PairTotals {
        let mut t = PairTotals::default();
        for w in &set.workers {
            for (to, c) in t.tokens.iter_mut().zip(&w.tokens) {
                *to += c.get();
            }
            t.requests += w.requests.get();
            w.duration.sum_into(&mut t.duration);
            w.ttft.sum_into(&mut t.ttft);
            t.fallbacks += w.fallbacks.get();
        }
        t
    }
}

/// A provider's error counts summed over workers.
pub(crate) fn provider_errors(set: &ProviderSet) -> [u64; PROVIDER_STATUSES.len() + 2] {
    let mut t = [0; PROVIDER_STATUSES.len() + 2];
    for w in &set.workers {
        for (to, c) in t.iter_mut().zip(&w.errors) {
            *to += c.get();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_are_counted_by_status() {
        let s = ProviderStats::default();
        for status in [429, 429, 503, 529, 0] {
            s.error(status);
        }
        let at = |label| {
            let i = (0..PROVIDER_STATUSES.len() + 2)
                .position(|i| status_label(i) == label)
                .expect("a label");
            s.errors[i].get()
        };
        assert_eq!(
            (at("429"), at("503"), at("other"), at("none")),
            (2, 1, 1, 1)
        );
    }
}
