//! `[[ai-providers]]` → [`AiProvider`], `[[ai-models]]` → [`AiModel`] and
//! a route's `[routes.ai]` → [`AiRoute`].
//!
//! Providers refer to `[[upstreams]]` (the servers and their TLS, pools
//! and health are the upstream's), models to providers, and routes to
//! models, so each is checked against the names of the section below it.
//! A name that is written but fails its own checks still counts as
//! defined, so one mistake is not reported again by everything using it.
//!
//! Keys are checked for shape only: `env:NAME` must name a variable that
//! can exist and `file:PATH` must have a path, but neither is read here
//! (the engine reads them when it builds a snapshot), so a config
//! validates without the secrets at hand. Anything else is the key itself,
//! allowed for local testing and warned about, like a `plain:` consumer
//! key. Messages never quote an inline key. The header a provider's key
//! goes in (the type's, or `key-header`) cannot also be set in `headers`:
//! one of the two would silently lose.

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU32, NonZeroU64};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use toml::Spanned;

use super::consumer::all_groups;
use super::policy::group_list;
use super::upstream::one_of;
use super::{duration, index_by_name, integer, integer_or, size, text, AllowZero, Names};
use crate::error::Reporter;
use crate::model::{
    AiKey, AiModel, AiProvider, AiProviderKind, AiRoute, AiStrategy, AiTarget, SecretSource,
};
use crate::parse::key_path;
use crate::raw::{
    Item, RawAiKey, RawAiKeyTable, RawAiModel, RawAiProvider, RawAiTarget, RawConsumer, RawRouteAi,
    RawUpstream,
};
use crate::units::format_size;

/// `requests-per-minute` bounds: any positive count.
const REQUESTS_PER_MINUTE: RangeInclusive<i64> = 1..=u32::MAX as i64;
/// `tokens-per-minute` bounds: any positive count.
const TOKENS_PER_MINUTE: RangeInclusive<i64> = 1..=i64::MAX;
/// `max-tokens-default` bounds: above every provider's output limit today,
/// and low enough to catch a stray digit.
const MAX_TOKENS_DEFAULT: RangeInclusive<i64> = 1..=1_000_000;
/// Target `weight` bounds, as a server's.
const WEIGHT: RangeInclusive<i64> = 1..=10_000;
/// Target `priority` bounds.
const PRIORITY: RangeInclusive<i64> = 0..=1000;
/// `max-response-size` bounds: an answer this size is held whole while it
/// is translated, once per request in flight.
const MAX_RESPONSE_SIZE: RangeInclusive<u64> = 1 << 10..=256 << 20;
/// `max-response-size` when not written.
const DEFAULT_MAX_RESPONSE_SIZE: usize = 16 << 20;
/// Longest model name: names become metric labels and log fields.
const MAX_MODEL_NAME_LEN: usize = 128;
/// What `Config::to_json(true)` writes for an inline key; refused as a key
/// so that redacted output cannot be loaded by mistake.
const REDACTED: &str = "<redacted>";

/// Headers the gateway sets on every provider request itself.
const PROVIDER_OWNED_HEADERS: &[(&str, &str)] = &[
    ("host", "the gateway sends the upstream's host"),
    ("content-length", "the gateway frames the body itself"),
    ("transfer-encoding", "the gateway frames the body itself"),
    ("connection", "the gateway manages the connection itself"),
];

/// "no upstream named ..." with the names that are defined, sorted.
fn unknown(kind: &str, section: &str, name: &str, index: &HashMap<&str, usize>) -> String {
    let mut message = format!("no {kind} named {name:?}");
    if index.is_empty() {
        message.push_str(&format!(" (no [[{section}]] are defined)"));
    } else {
        let mut known: Vec<&str> = index.keys().copied().collect();
        known.sort_unstable();
        message.push_str(&format!("; defined {section}: {}", known.join(", ")));
    }
    message
}

pub(super) fn ai_providers(
    items: &[Item<RawAiProvider>],
    upstreams: &[Item<RawUpstream>],
    r: &mut Reporter<'_>,
) -> Option<Vec<AiProvider>> {
    let upstream_index = index_by_name(upstreams);
    let mut names = Names::new("ai-providers");
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(raw) = &item.value else {
            out.push(None);
            continue;
        };
        let name = names.required(
            raw.name.as_ref(),
            i,
            &item.span,
            "[[ai-models]] targets refer to a provider by name",
            r,
        );
        out.push(provider(raw, i, &item.span, &upstream_index, name, r));
    }
    out.into_iter().collect()
}

fn provider(
    raw: &RawAiProvider,
    i: usize,
    element: &std::ops::Range<usize>,
    upstream_index: &HashMap<&str, usize>,
    name: Option<String>,
    r: &mut Reporter<'_>,
) -> Option<AiProvider> {
    let path = format!("ai-providers[{i}]");
    let key = |k: &str| format!("{path}.{k}");

    let kind = match &raw.kind {
        None => {
            r.error(
                key("type"),
                Some(element.clone()),
                "missing; write the API the provider speaks: \"openai\", \"anthropic\", \
                 \"gemini\" or \"openai-compatible\"",
            );
            None
        }
        Some(v) => one_of(v, &key("type"), &AiProviderKind::ALL, |k| k.as_str(), r),
    };
    let upstream = match &raw.upstream {
        None => {
            r.error(
                key("upstream"),
                Some(element.clone()),
                "missing; name the [[upstreams]] entry whose servers answer for the provider",
            );
            None
        }
        Some(u) => match upstream_index.get(u.get_ref().as_str()) {
            Some(&index) => Some(index),
            None => {
                let message = unknown("upstream", "upstreams", u.get_ref(), upstream_index);
                r.error(key("upstream"), Some(u.span()), message);
                None
            }
        },
    };
    let base_path = match &raw.base_path {
        None => kind.map(|k| k.default_base_path().to_owned()),
        Some(p) => base_path(p.get_ref())
            .map(|()| p.get_ref().clone())
            .map_err(|message| r.error(key("base-path"), Some(p.span()), message))
            .ok(),
    };
    let query = match &raw.query {
        None => Some(None),
        Some(q) => query(q.get_ref())
            .map(|()| Some(q.get_ref().clone()))
            .map_err(|message| r.error(key("query"), Some(q.span()), message))
            .ok(),
    };
    let key_header = match &raw.key_header {
        None => Some(None),
        Some(h) => text::upstream_header(h.get_ref())
            .map(Some)
            .map_err(|message| r.error(key("key-header"), Some(h.span()), message))
            .ok(),
    };
    // The header the key goes in, when it is known: judged only when
    // `type` or `key-header` is valid.
    let effective_key_header: Option<String> = match (&key_header, kind) {
        (Some(Some(h)), _) => Some(h.clone()),
        (Some(None), Some(k)) => Some(k.default_key_header().to_owned()),
        _ => None,
    };
    let headers = headers(raw, &path, effective_key_header.as_deref(), r);
    let keys = keys(raw, &path, element, kind, r);
    let timeout = match &raw.timeout {
        None => Some(None),
        Some(v) => duration(v, &key("timeout"), AllowZero::No, r).map(Some),
    };
    Some(AiProvider {
        name: name?,
        kind: kind?,
        upstream: upstream?,
        base_path: base_path?,
        query: query?,
        key_header: key_header?,
        headers: headers?,
        keys: keys?,
        timeout: timeout?,
    })
}

/// `base-path`: starts with `/`, does not end with one (request paths such
/// as `/chat/completions` are appended), no query or fragment, visible
/// ASCII only.
fn base_path(text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("{text:?} must start with \"/\""));
    }
    if let Some(c) = text.chars().find(|&c| c == '?' || c == '#') {
        return Err(format!(
            "{text:?}: remove the {c:?} part; a query string goes in `query`"
        ));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{text:?} contains {c:?}; percent-encode spaces, control and non-ASCII characters"
        ));
    }
    if text.ends_with('/') {
        return Err(format!(
            "{text:?} must not end with \"/\": the API's paths (\"/chat/completions\") are \
             appended to it"
        ));
    }
    Ok(())
}

/// `query`: a query string without the `?`, in the visible ASCII a request
/// target can carry.
fn query(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty; leave `query` out to add none".into());
    }
    if text.starts_with('?') {
        return Err(format!(
            "{text:?}: write the query without the leading \"?\""
        ));
    }
    if let Some(c) = text.chars().find(|&c| c == '#' || !c.is_ascii_graphic()) {
        return Err(format!(
            "{text:?} contains {c:?}; percent-encode it (a query holds visible ASCII, no '#')"
        ));
    }
    Ok(())
}

/// `headers`: valid names, unique ignoring case, none the gateway owns
/// and not the key header; values without control characters.
fn headers(
    raw: &RawAiProvider,
    path: &str,
    key_header: Option<&str>,
    r: &mut Reporter<'_>,
) -> Option<Vec<(String, String)>> {
    let mut ok = true;
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in raw.headers.iter().flat_map(|h| &h.0) {
        let at = key_path(&format!("{path}.headers"), name);
        let problem = match text::header_token(name) {
            Err(message) => Some(message),
            Ok(lower) => {
                if let Some((_, why)) = PROVIDER_OWNED_HEADERS.iter().find(|(n, _)| *n == lower) {
                    Some(format!("{name:?} cannot be set here: {why}"))
                } else if key_header == Some(lower.as_str()) {
                    Some(format!(
                        "{name:?} carries the provider's key; set the key in `keys` \
                         (and its header in `key-header`)"
                    ))
                } else {
                    out.iter()
                        .find(|(seen, _)| seen.eq_ignore_ascii_case(name))
                        .map(|(seen, _)| {
                            format!("{name:?} repeats header {seen:?} (names ignore case)")
                        })
                }
            }
        };
        let problem = problem.or_else(|| text::header_value(value.get_ref()).err());
        match problem {
            Some(message) => {
                // Key spans are not kept for map entries; the value is on
                // the same line.
                r.error(at, Some(value.span()), message);
                ok = false;
            }
            None => out.push((name.clone(), value.get_ref().clone())),
        }
    }
    ok.then_some(out)
}

/// `keys`: required and non-empty unless the type needs none; no source
/// twice.
fn keys(
    raw: &RawAiProvider,
    path: &str,
    element: &std::ops::Range<usize>,
    kind: Option<AiProviderKind>,
    r: &mut Reporter<'_>,
) -> Option<Vec<AiKey>> {
    let at = format!("{path}.keys");
    let needed = kind.is_some_and(|k| k.requires_key());
    let missing = |r: &mut Reporter<'_>, span| {
        let kind = kind.map_or("", |k| k.as_str());
        r.error(
            &at,
            Some(span),
            format!(
                "a {kind:?} provider needs at least one key, e.g. keys = [\"env:API_KEY\"]; \
                 only \"openai-compatible\" may have none"
            ),
        );
    };
    let Some(list) = &raw.keys else {
        if needed {
            missing(r, element.clone());
            return None;
        }
        return Some(Vec::new());
    };
    if needed && list.get_ref().is_empty() {
        missing(r, list.span());
        return None;
    }
    let mut ok = true;
    let mut out: Vec<AiKey> = Vec::with_capacity(list.get_ref().len());
    for (j, entry) in list.get_ref().iter().enumerate() {
        let entry_path = format!("{at}[{j}]");
        let Some(key) = ai_key(entry, &entry_path, r) else {
            ok = false;
            continue;
        };
        if let Some(first) = out.iter().position(|seen| seen.source == key.source) {
            let what = match &key.source {
                SecretSource::Inline(_) => "the same key".to_owned(),
                SecretSource::Env(name) => format!("the same variable, {name:?},"),
                SecretSource::File(p) => format!("the same file, {:?},", p.display().to_string()),
            };
            r.error(
                entry_path,
                Some(entry.span()),
                format!("{what} as keys[{first}]; list each key once"),
            );
            ok = false;
            continue;
        }
        out.push(key);
    }
    ok.then_some(out)
}

/// One entry of `keys`, at `path` (`ai-providers[i].keys[j]`).
fn ai_key(entry: &Spanned<RawAiKey>, path: &str, r: &mut Reporter<'_>) -> Option<AiKey> {
    match entry.get_ref() {
        RawAiKey::Source(text) => {
            let source = secret_source(text, path, entry.span(), r)?;
            Some(AiKey {
                source,
                requests_per_minute: None,
                tokens_per_minute: None,
            })
        }
        RawAiKey::Table(t) => key_table(t, path, entry.span(), r),
    }
}

fn key_table(
    t: &RawAiKeyTable,
    path: &str,
    span: std::ops::Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<AiKey> {
    let at = format!("{path}.key");
    let source = match &t.key {
        None => {
            r.error(
                &at,
                Some(span),
                "missing; write where the key is, e.g. key = \"env:API_KEY\"",
            );
            None
        }
        Some(k) => secret_source(k.get_ref(), &at, k.span(), r),
    };
    let requests_per_minute = match &t.requests_per_minute {
        None => Some(None),
        Some(v) => integer(
            v,
            &format!("{path}.requests-per-minute"),
            REQUESTS_PER_MINUTE,
            r,
        )
        .and_then(|n| u32::try_from(n).ok())
        .and_then(NonZeroU32::new)
        .map(Some),
    };
    let tokens_per_minute = match &t.tokens_per_minute {
        None => Some(None),
        Some(v) => integer(
            v,
            &format!("{path}.tokens-per-minute"),
            TOKENS_PER_MINUTE,
            r,
        )
        .and_then(|n| u64::try_from(n).ok())
        .and_then(NonZeroU64::new)
        .map(Some),
    };
    Some(AiKey {
        source: source?,
        requests_per_minute: requests_per_minute?,
        tokens_per_minute: tokens_per_minute?,
    })
}

/// `"env:NAME"`, `"file:PATH"` or an inline key (warned about). Messages
/// never quote the text of an inline key.
fn secret_source(
    text: &str,
    path: &str,
    span: std::ops::Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<SecretSource> {
    let parsed = if let Some(name) = text.strip_prefix("env:") {
        env_name(name).map(|()| SecretSource::Env(name.to_owned()))
    } else if let Some(file) = text.strip_prefix("file:") {
        if file.is_empty() {
            Err("\"file:\" needs a path, e.g. \"file:/run/secrets/openai\"".to_owned())
        } else {
            Ok(SecretSource::File(PathBuf::from(file)))
        }
    } else {
        inline_key(text).map(|()| SecretSource::Inline(text.to_owned()))
    };
    match parsed {
        Ok(source) => {
            if let SecretSource::Inline(_) = source {
                r.warn(
                    path,
                    Some(span),
                    "the key is written in the config, where anyone who can read it can \
                     use it; use \"env:NAME\" or \"file:PATH\" instead",
                );
            }
            Some(source)
        }
        Err(message) => {
            r.error(path, Some(span), message);
            None
        }
    }
}

/// An environment variable name as POSIX shells write them: letters,
/// digits and `_`, not starting with a digit.
fn env_name(name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an environment variable name (letters, digits and '_', \
             not starting with a digit)"
        ))
    }
}

/// An inline key: sent in a header, so visible ASCII only.
fn inline_key(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty key; write \"env:NAME\", \"file:PATH\" or the key".into());
    }
    if text == REDACTED {
        return Err(
            "this is the placeholder of a redacted config dump, not a key; put the real key \
             back (better as \"env:NAME\" or \"file:PATH\")"
                .into(),
        );
    }
    if !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "a key holds only visible ASCII characters (no spaces); to read one from \
             elsewhere write \"env:NAME\" or \"file:PATH\""
                .into(),
        );
    }
    Ok(())
}

pub(super) fn ai_models(
    items: &[Item<RawAiModel>],
    providers: &[Item<RawAiProvider>],
    consumers: &[Item<RawConsumer>],
    r: &mut Reporter<'_>,
) -> Option<Vec<AiModel>> {
    let provider_index = index_by_name(providers);
    let groups = all_groups(consumers);
    let mut names = Names::new("ai-models");
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(raw) = &item.value else {
            out.push(None);
            continue;
        };
        let path = format!("ai-models[{i}]");
        let name = match &raw.name {
            None => {
                r.error(
                    format!("{path}.name"),
                    Some(item.span.clone()),
                    "missing; a model needs the name clients send as `model`",
                );
                None
            }
            Some(n) => match model_name(n.get_ref()) {
                Ok(()) => {
                    names.claim(n.get_ref(), i, Some(n.span()), &item.span, r);
                    Some(n.get_ref().clone())
                }
                Err(message) => {
                    r.error(format!("{path}.name"), Some(n.span()), message);
                    None
                }
            },
        };
        out.push(model(
            raw,
            &path,
            &item.span,
            name,
            &provider_index,
            &groups,
            r,
        ));
    }
    out.into_iter().collect()
}

/// A model's `name`, what clients send: wider than other names, since
/// model names commonly hold `:` and `/` (`llama3:8b`, `org/model`).
fn model_name(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > MAX_MODEL_NAME_LEN {
        return Err(format!(
            "{text:?} is longer than {MAX_MODEL_NAME_LEN} characters"
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-_.:/@".contains(c)))
    {
        return Err(format!(
            "{text:?} contains {c:?}; model names may hold only letters, digits, \
             '-', '_', '.', ':', '/' and '@'"
        ));
    }
    Ok(())
}

fn model(
    raw: &RawAiModel,
    path: &str,
    element: &std::ops::Range<usize>,
    name: Option<String>,
    provider_index: &HashMap<&str, usize>,
    groups: &HashSet<&str>,
    r: &mut Reporter<'_>,
) -> Option<AiModel> {
    let key = |k: &str| format!("{path}.{k}");
    let strategy = match &raw.strategy {
        None => Some(AiStrategy::default()),
        Some(v) => one_of(v, &key("strategy"), &AiStrategy::ALL, |s| s.as_str(), r),
    };
    let max_tokens_default = match &raw.max_tokens_default {
        None => Some(None),
        Some(v) => integer(v, &key("max-tokens-default"), MAX_TOKENS_DEFAULT, r)
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new)
            .map(Some),
    };
    let allow_groups = match &raw.allow_groups {
        None => Some(Vec::new()),
        Some(list) => group_list(list, &key("allow-groups"), groups, r),
    };
    let targets = match &raw.targets {
        None => {
            r.error(
                key("targets"),
                Some(element.clone()),
                "missing; list the provider models that serve this one, e.g. \
                 targets = [{ provider = \"openai\", model = \"gpt-4o-mini\" }]",
            );
            None
        }
        Some(list) if list.get_ref().is_empty() => {
            r.error(
                key("targets"),
                Some(list.span()),
                "empty; a model needs at least one target",
            );
            None
        }
        Some(list) => targets(list.get_ref(), &key("targets"), provider_index, r),
    };
    Some(AiModel {
        name: name?,
        strategy: strategy?,
        max_tokens_default: max_tokens_default?,
        allow_groups: allow_groups?,
        targets: targets?,
    })
}

fn targets(
    list: &[Spanned<RawAiTarget>],
    path: &str,
    provider_index: &HashMap<&str, usize>,
    r: &mut Reporter<'_>,
) -> Option<Vec<AiTarget>> {
    let mut ok = true;
    let mut out: Vec<AiTarget> = Vec::with_capacity(list.len());
    for (j, entry) in list.iter().enumerate() {
        let at = format!("{path}[{j}]");
        let Some(target) = target(entry, &at, provider_index, r) else {
            ok = false;
            continue;
        };
        if let Some(first) = out
            .iter()
            .position(|seen| seen.provider == target.provider && seen.model == target.model)
        {
            r.error(
                at,
                Some(entry.span()),
                format!("the same provider and model as targets[{first}]; list each target once"),
            );
            ok = false;
            continue;
        }
        out.push(target);
    }
    ok.then_some(out)
}

fn target(
    entry: &Spanned<RawAiTarget>,
    path: &str,
    provider_index: &HashMap<&str, usize>,
    r: &mut Reporter<'_>,
) -> Option<AiTarget> {
    let t = entry.get_ref();
    let key = |k: &str| format!("{path}.{k}");
    let provider = match &t.provider {
        None => {
            r.error(
                key("provider"),
                Some(entry.span()),
                "missing; name the [[ai-providers]] entry that serves this target",
            );
            None
        }
        Some(p) => match provider_index.get(p.get_ref().as_str()) {
            Some(&index) => Some(index),
            None => {
                let message = unknown("ai-provider", "ai-providers", p.get_ref(), provider_index);
                r.error(key("provider"), Some(p.span()), message);
                None
            }
        },
    };
    let model = match &t.model {
        None => {
            r.error(
                key("model"),
                Some(entry.span()),
                "missing; write the provider's name for the model, e.g. model = \"gpt-4o-mini\"",
            );
            None
        }
        Some(m) if m.get_ref().trim().is_empty() => {
            r.error(key("model"), Some(m.span()), "must not be empty");
            None
        }
        Some(m) if m.get_ref().chars().any(|c| c.is_control()) => {
            r.error(
                key("model"),
                Some(m.span()),
                "must not contain control characters",
            );
            None
        }
        Some(m) => Some(m.get_ref().clone()),
    };
    let weight =
        integer_or(t.weight.as_ref(), &key("weight"), WEIGHT, 1u32, r).and_then(NonZeroU32::new);
    let priority = integer_or(t.priority.as_ref(), &key("priority"), PRIORITY, 0u32, r);
    Some(AiTarget {
        provider: provider?,
        model: model?,
        weight: weight?,
        priority: priority?,
    })
}

/// `[routes.ai]` of route `path` (`routes[i]`). `models` is every
/// `[[ai-models]]` element, valid or not.
pub(super) fn route_ai(
    raw: &Spanned<RawRouteAi>,
    path: &str,
    models: &[Item<RawAiModel>],
    r: &mut Reporter<'_>,
) -> Option<AiRoute> {
    let path = format!("{path}.ai");
    if models.is_empty() {
        r.error(
            path,
            Some(raw.span()),
            "an AI route serves [[ai-models]], and none are defined",
        );
        return None;
    }
    let t = raw.get_ref();
    let model_index = index_by_name(models);
    let selected = match &t.models {
        None => Some((0..models.len()).collect()),
        Some(list) if list.get_ref().is_empty() => {
            r.error(
                format!("{path}.models"),
                Some(list.span()),
                "empty; leave `models` out to serve every [[ai-models]] entry",
            );
            None
        }
        Some(list) => {
            let mut ok = true;
            let mut out: Vec<usize> = Vec::with_capacity(list.get_ref().len());
            for (j, m) in list.get_ref().iter().enumerate() {
                let at = format!("{path}.models[{j}]");
                match model_index.get(m.get_ref().as_str()) {
                    None => {
                        let message = unknown("ai-model", "ai-models", m.get_ref(), &model_index);
                        r.error(at, Some(m.span()), message);
                        ok = false;
                    }
                    Some(&index) => match out.iter().position(|&seen| seen == index) {
                        Some(first) => {
                            r.error(
                                at,
                                Some(m.span()),
                                format!("{:?} is already listed as models[{first}]", m.get_ref()),
                            );
                            ok = false;
                        }
                        None => out.push(index),
                    },
                }
            }
            ok.then_some(out)
        }
    };
    let max_response_size = match &t.max_response_size {
        None => Some(DEFAULT_MAX_RESPONSE_SIZE),
        Some(v) => {
            let at = format!("{path}.max-response-size");
            size(v, &at, r).and_then(|bytes| {
                if !MAX_RESPONSE_SIZE.contains(&bytes) {
                    r.error(
                        &at,
                        Some(v.span()),
                        format!(
                            "must be from {} to {}, found {}: a non-streaming answer is held \
                             whole while it is translated",
                            format_size(*MAX_RESPONSE_SIZE.start()),
                            format_size(*MAX_RESPONSE_SIZE.end()),
                            format_size(bytes)
                        ),
                    );
                    return None;
                }
                usize::try_from(bytes).ok()
            })
        }
    };
    Some(AiRoute {
        models: selected?,
        messages: t.messages.unwrap_or(false),
        max_response_size: max_response_size?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        for (name, ok) in [
            ("OPENAI_KEY", true),
            ("_X1", true),
            ("a", true),
            ("", false),
            ("1KEY", false),
            ("MY-KEY", false),
            ("KEY ", false),
        ] {
            assert_eq!(env_name(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn base_paths() {
        for (text, ok) in [
            ("/v1", true),
            ("/openai/deployments/gpt-4o", true),
            ("v1", false),
            ("/v1/", false),
            ("/", false),
            ("/v1?x=1", false),
            ("/v1#x", false),
            ("/v 1", false),
        ] {
            assert_eq!(base_path(text).is_ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn queries() {
        for (text, ok) in [
            ("api-version=2024-06-01", true),
            ("a=1&b=2", true),
            ("", false),
            ("?a=1", false),
            ("a=1#x", false),
            ("a= 1", false),
        ] {
            assert_eq!(query(text).is_ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn model_names() {
        for (text, ok) in [
            ("chat", true),
            ("llama3:8b", true),
            ("meta/llama-3.1@latest", true),
            ("", false),
            ("a b", false),
            ("x\"", false),
        ] {
            assert_eq!(model_name(text).is_ok(), ok, "{text:?}");
        }
        assert!(model_name(&"m".repeat(MAX_MODEL_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn inline_keys_are_never_quoted() {
        for text in ["sk live", "sk\u{7f}", "\u{e9}sk"] {
            let message = inline_key(text).expect_err("not a key");
            assert!(!message.contains(text), "{message}");
        }
        assert!(inline_key(REDACTED).is_err());
        assert!(inline_key("sk-abc").is_ok());
    }
}
