//! `[[ai-providers]]` and `[[ai-models]]` as the workers use them: each
//! provider's request line pieces and header lines laid out once, its pool
//! of API keys, and each model's targets in the order they are tried.
//!
//! Keys are read (from the environment or a file) when a config is
//! compiled, so a missing key fails the start or the reload with the key's
//! path, never a request. A key's state (cooling down after a 429, its
//! per-minute request and token counts) is shared by the workers: a few
//! atomics per key, written once per request that uses the key; a reload
//! keeps it for a key its provider (by name) still has with the same
//! header line, so a key resting after a 429 is not tried again at once. The
//! per-minute limits count in whole-minute windows, so a key may take up
//! to its limit at the end of one minute and again at the start of the
//! next (the simple, predictable choice; a sliding window would cost a
//! queue per key).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringway_config::{
    AiProviderKind, AiStrategy, Config, ConfigError, SecretSource, ServerAddress,
};

use crate::ai::Wire;
use crate::http::write;

/// How long a key that got 429 without a `Retry-After` rests.
pub(crate) const DEFAULT_COOL: Duration = Duration::from_secs(10);

/// The Anthropic API version sent with every request.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Providers and models of one compiled config.
#[derive(Default)]
pub(crate) struct Catalog {
    pub(crate) providers: Vec<Provider>,
    pub(crate) models: Vec<Model>,
}

/// One provider, compiled.
pub(crate) struct Provider {
    pub(crate) name: String,
    pub(crate) wire: Wire,
    /// Its `[[upstreams]]` index.
    pub(crate) group: usize,
    /// `base-path`, without a trailing slash.
    pub(crate) base_path: String,
    /// `query`, appended to every URL (`?` or `&` added).
    pub(crate) query: Option<String>,
    /// Host and the extra header lines, written after the request line.
    pub(crate) lines: Bytes,
    pub(crate) keys: Vec<Key>,
    /// Longest wait for the answer's head; the route's when `None`.
    pub(crate) timeout: Option<Duration>,
}

/// One API key of a provider's pool.
pub(crate) struct Key {
    /// The header line that carries it (empty for a provider without keys).
    pub(crate) line: Bytes,
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
    /// Shared by the workers, and kept by a reload (see the module doc).
    state: Arc<KeyState>,
}

/// What a key has been through: its rest and this minute's counts.
#[derive(Debug, Default)]
struct KeyState {
    /// Milliseconds (on the caller's clock) until which the key rests.
    cool_until: AtomicU64,
    /// The minute the counts below are for.
    minute: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
}

impl Key {
    fn new(line: Bytes, rpm: Option<u64>, tpm: Option<u64>) -> Key {
        Key {
            line,
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            state: Arc::default(),
        }
    }

    /// Starts the counts of `minute` if they are an older minute's.
    fn roll(&self, minute: u64) {
        let seen = self.state.minute.load(Relaxed);
        if seen != minute
            && self
                .state
                .minute
                .compare_exchange(seen, minute, Relaxed, Relaxed)
                .is_ok()
        {
            self.state.requests.store(0, Relaxed);
            self.state.tokens.store(0, Relaxed);
        }
    }

    /// Whether the key may take a request at `now_ms`.
    fn available(&self, now_ms: u64) -> bool {
        if self.state.cool_until.load(Relaxed) > now_ms {
            return false;
        }
        if self.requests_per_minute.is_none() && self.tokens_per_minute.is_none() {
            return true;
        }
        self.roll(now_ms / 60_000);
        self.requests_per_minute
            .is_none_or(|max| self.state.requests.load(Relaxed) < max)
            && self
                .tokens_per_minute
                .is_none_or(|max| self.state.tokens.load(Relaxed) < max)
    }
}

impl Provider {
    /// A key that may take a request now, looking from `start` round the
    /// pool; `None` when every key rests or is at its limits. The key's
    /// request is counted.
    pub(crate) fn take_key(&self, start: usize, now_ms: u64) -> Option<usize> {
        let n = self.keys.len();
        let i = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.keys[i].available(now_ms))?;
        let key = &self.keys[i];
        if key.requests_per_minute.is_some() || key.tokens_per_minute.is_some() {
            key.state.requests.fetch_add(1, Relaxed);
        }
        Some(i)
    }

    /// Key `i` got 429: it rests for `after` from `now_ms`.
    pub(crate) fn cool(&self, i: usize, now_ms: u64, after: Duration) {
        let until = now_ms + after.as_millis() as u64;
        self.keys[i].state.cool_until.fetch_max(until, Relaxed);
    }

    /// Counts `tokens` used through key `i` against its per-minute limit.
    pub(crate) fn charge(&self, i: usize, tokens: u64) {
        let key = &self.keys[i];
        if key.tokens_per_minute.is_some() {
            key.state.tokens.fetch_add(tokens, Relaxed);
        }
    }

    /// Writes the request head for `endpoint` (with `model` in the path for
    /// Gemini) through the blank line, for a `len`-byte JSON body sent
    /// with key `key`, with the request's ID and trace context.
    pub(crate) fn write_head(
        &self,
        out: &mut BytesMut,
        endpoint: Endpoint<'_>,
        key: usize,
        len: usize,
        request_id: &[u8],
        traceparent: &[u8],
    ) {
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(self.base_path.as_bytes());
        let mut query = false;
        match endpoint {
            Endpoint::Chat { model, stream } => match self.wire {
                Wire::OpenAi => out.extend_from_slice(b"/chat/completions"),
                Wire::Anthropic => out.extend_from_slice(b"/messages"),
                Wire::Gemini => {
                    out.extend_from_slice(b"/models/");
                    out.extend_from_slice(model.as_bytes());
                    if stream {
                        out.extend_from_slice(b":streamGenerateContent?alt=sse");
                        query = true;
                    } else {
                        out.extend_from_slice(b":generateContent");
                    }
                }
            },
            Endpoint::Embeddings => out.extend_from_slice(b"/embeddings"),
        }
        if let Some(q) = &self.query {
            out.extend_from_slice(if query { b"&" } else { b"?" });
            out.extend_from_slice(q.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&self.lines);
        out.extend_from_slice(&self.keys[key].line);
        out.extend_from_slice(b"Content-Type: application/json\r\n");
        write::content_length(out, len as u64);
        write::header(out, b"X-Request-Id", request_id);
        write::header(out, b"traceparent", traceparent);
        out.extend_from_slice(b"\r\n");
    }
}

/// What a provider request asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint<'a> {
    /// Chat completions (Messages, generateContent) with the provider's
    /// model.
    Chat {
        model: &'a str,
        stream: bool,
    },
    Embeddings,
}

/// One `[[ai-models]]` entry, compiled.
pub(crate) struct Model {
    pub(crate) name: String,
    pub(crate) weighted: bool,
    /// In the order of their priority (file order among equals).
    pub(crate) targets: Vec<Target>,
    pub(crate) total_weight: u64,
    pub(crate) max_tokens_default: Option<u32>,
    pub(crate) allow_groups: Vec<String>,
}

/// One target of a model.
pub(crate) struct Target {
    pub(crate) provider: usize,
    pub(crate) model: String,
    pub(crate) weight: u64,
}

impl Model {
    /// The target tried `k`-th (from 0) for a request whose weighted draw
    /// is `draw` (any number: it is reduced modulo the total weight). With
    /// `weighted`, the first is drawn by weight and the others follow in
    /// priority order; else all go in priority order.
    pub(crate) fn nth(&self, draw: u64, k: usize) -> Option<&Target> {
        if k >= self.targets.len() {
            return None;
        }
        if !self.weighted {
            return self.targets.get(k);
        }
        let first = self.drawn(draw);
        let i = match k {
            0 => first,
            k if k - 1 < first => k - 1,
            k => k,
        };
        self.targets.get(i)
    }

    fn drawn(&self, draw: u64) -> usize {
        let mut point = draw % self.total_weight.max(1);
        for (i, t) in self.targets.iter().enumerate() {
            if point < t.weight {
                return i;
            }
            point -= t.weight;
        }
        0
    }

    /// Whether a consumer in `groups` (none: no consumer) may use it.
    pub(crate) fn allows(&self, groups: Option<&[String]>) -> bool {
        self.allow_groups.is_empty()
            || groups.is_some_and(|g| g.iter().any(|g| self.allow_groups.contains(g)))
    }
}

/// Compiles the providers (reading their keys) and models of `config`;
/// each key keeps its state from `prev`, the running catalog, when its
/// provider has it there too.
pub(crate) fn compile(
    config: &Config,
    prev: Option<&Catalog>,
) -> Result<Catalog, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut providers = Vec::with_capacity(config.ai_providers.len());
    for (i, p) in config.ai_providers.iter().enumerate() {
        let kept = prev.and_then(|c| c.providers.iter().find(|x| x.name == p.name));
        let wire = match p.kind {
            AiProviderKind::OpenAi | AiProviderKind::OpenAiCompatible => Wire::OpenAi,
            AiProviderKind::Anthropic => Wire::Anthropic,
            AiProviderKind::Gemini => Wire::Gemini,
        };
        let mut lines = BytesMut::new();
        write::header(&mut lines, b"Host", host_of(config, p.upstream).as_bytes());
        if wire == Wire::Anthropic {
            write::header(
                &mut lines,
                b"anthropic-version",
                ANTHROPIC_VERSION.as_bytes(),
            );
        }
        for (name, value) in &p.headers {
            write::header(&mut lines, name.as_bytes(), value.as_bytes());
        }
        let mut keys = Vec::with_capacity(p.keys.len().max(1));
        for (j, k) in p.keys.iter().enumerate() {
            let secret = match read_secret(&k.source) {
                Ok(s) => s,
                Err(message) => {
                    errors.push(ConfigError {
                        path: format!("ai-providers[{i}].keys[{j}]"),
                        line: 0,
                        column: 0,
                        message,
                    });
                    continue;
                }
            };
            let mut line = BytesMut::new();
            match (&p.key_header, wire) {
                (Some(h), _) => write::header(&mut line, h.as_bytes(), secret.as_bytes()),
                (None, Wire::OpenAi) => {
                    line.extend_from_slice(b"Authorization: Bearer ");
                    line.extend_from_slice(secret.as_bytes());
                    line.extend_from_slice(b"\r\n");
                }
                (None, Wire::Anthropic) => {
                    write::header(&mut line, b"x-api-key", secret.as_bytes())
                }
                (None, Wire::Gemini) => {
                    write::header(&mut line, b"x-goog-api-key", secret.as_bytes())
                }
            }
            let mut key = Key::new(
                line.freeze(),
                k.requests_per_minute.map(|n| u64::from(n.get())),
                k.tokens_per_minute.map(|n| n.get()),
            );
            if let Some(old) = kept.and_then(|x| x.keys.iter().find(|o| o.line == key.line)) {
                key.state = old.state.clone();
            }
            keys.push(key);
        }
        if p.keys.is_empty() {
            // A provider without keys (a local server): one empty key, so
            // the request path is the same.
            keys.push(Key::new(Bytes::new(), None, None));
        }
        providers.push(Provider {
            name: p.name.clone(),
            wire,
            group: p.upstream,
            base_path: p.base_path.trim_end_matches('/').to_string(),
            query: p.query.clone(),
            lines: lines.freeze(),
            keys,
            timeout: p.timeout,
        });
    }
    let models = config
        .ai_models
        .iter()
        .map(|m| {
            let mut targets: Vec<(u32, Target)> = m
                .targets
                .iter()
                .map(|t| {
                    let target = Target {
                        provider: t.provider,
                        model: t.model.clone(),
                        weight: u64::from(t.weight.get()),
                    };
                    (t.priority, target)
                })
                .collect();
            targets.sort_by_key(|(priority, _)| *priority);
            let targets: Vec<Target> = targets.into_iter().map(|(_, t)| t).collect();
            Model {
                name: m.name.clone(),
                weighted: m.strategy == AiStrategy::Weighted,
                total_weight: targets.iter().map(|t| t.weight).sum(),
                targets,
                max_tokens_default: m.max_tokens_default.map(|n| n.get()),
                allow_groups: m.allow_groups.clone(),
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(Catalog { providers, models })
    } else {
        Err(errors)
    }
}

/// The Host a provider's requests carry: the upstream's TLS server name,
/// else its first server's name or address.
fn host_of(config: &Config, group: usize) -> String {
    let up = &config.upstreams[group];
    if let Some(name) = up.tls.as_ref().and_then(|t| t.server_name.clone()) {
        return name;
    }
    let Some(first) = up.servers.first() else {
        return up.name.clone();
    };
    let default_port = if up.tls.is_some() { 443 } else { 80 };
    let mut host = String::new();
    match &first.address {
        ServerAddress::Name { host: h, port } if *port == default_port => host.push_str(h),
        ServerAddress::Name { host: h, port } => {
            let _ = write!(host, "{h}:{port}");
        }
        ServerAddress::Ip(addr) => {
            let _ = write!(host, "{addr}");
        }
    }
    host
}

/// A key's text from where the config says it is. Surrounding whitespace
/// (a file's final newline) is not part of it.
fn read_secret(source: &SecretSource) -> Result<String, String> {
    let text = match source {
        SecretSource::Inline(s) => s.clone(),
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (or not UTF-8)"))?,
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?,
    };
    let key = text.trim();
    if key.is_empty() {
        return Err("the key is empty".to_string());
    }
    if key.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("the key holds control characters (a header value cannot)".to_string());
    }
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(weighted: bool, weights: &[u64]) -> Model {
        Model {
            name: "m".into(),
            weighted,
            total_weight: weights.iter().sum(),
            targets: weights
                .iter()
                .enumerate()
                .map(|(i, &w)| Target {
                    provider: i,
                    model: format!("t{i}"),
                    weight: w,
                })
                .collect(),
            max_tokens_default: None,
            allow_groups: Vec::new(),
        }
    }

    fn order(m: &Model, draw: u64) -> Vec<usize> {
        (0..)
            .map_while(|k| m.nth(draw, k))
            .map(|t| t.provider)
            .collect()
    }

    #[test]
    fn fallback_goes_in_priority_order() {
        let m = model(false, &[1, 5, 1]);
        assert_eq!(order(&m, 3), [0, 1, 2]);
    }

    #[test]
    fn weighted_draws_the_first_and_falls_back_over_the_rest() {
        let m = model(true, &[1, 2, 1]);
        let cases = [
            (0, [0, 1, 2]),
            (1, [1, 0, 2]),
            (2, [1, 0, 2]),
            (3, [2, 0, 1]),
        ];
        for (draw, want) in cases {
            assert_eq!(order(&m, draw), want, "draw {draw}");
        }
        // Over the whole weight, each is first as often as its weight says.
        let mut first = [0; 3];
        for draw in 0..400 {
            first[order(&m, draw)[0]] += 1;
        }
        assert_eq!(first, [100, 200, 100]);
    }

    #[test]
    fn a_key_that_got_429_rests_and_others_take_over() {
        let p = Provider {
            name: "p".into(),
            wire: Wire::OpenAi,
            group: 0,
            base_path: "/v1".into(),
            query: None,
            lines: Bytes::new(),
            keys: (0..2).map(|_| Key::new(Bytes::new(), None, None)).collect(),
            timeout: None,
        };
        assert_eq!(p.take_key(0, 1_000), Some(0));
        p.cool(0, 1_000, Duration::from_secs(2));
        assert_eq!(p.take_key(0, 1_500), Some(1));
        p.cool(1, 1_500, Duration::from_secs(10));
        assert_eq!(p.take_key(0, 2_000), None);
        assert_eq!(p.take_key(1, 3_000), Some(0), "rested long enough");
    }

    #[test]
    fn per_minute_limits_hold_within_a_minute() {
        let p = Provider {
            name: "p".into(),
            wire: Wire::OpenAi,
            group: 0,
            base_path: "/v1".into(),
            query: None,
            lines: Bytes::new(),
            keys: vec![Key::new(Bytes::new(), Some(2), Some(100))],
            timeout: None,
        };
        let t = 60_000 * 5;
        assert_eq!(p.take_key(0, t), Some(0));
        assert_eq!(p.take_key(0, t + 1), Some(0));
        assert_eq!(p.take_key(0, t + 2), None, "two requests a minute");
        assert_eq!(p.take_key(0, t + 60_000), Some(0), "a new minute");
        p.charge(0, 100);
        assert_eq!(p.take_key(0, t + 60_001), None, "tokens used up");
    }

    #[test]
    fn heads_name_the_endpoint_of_each_wire() {
        let mut p = Provider {
            name: "p".into(),
            wire: Wire::Gemini,
            group: 0,
            base_path: "/v1beta".into(),
            query: Some("x=1".into()),
            lines: Bytes::from_static(b"Host: h\r\n"),
            keys: vec![Key::new(
                Bytes::from_static(b"x-goog-api-key: k\r\n"),
                None,
                None,
            )],
            timeout: None,
        };
        let mut out = BytesMut::new();
        let chat = Endpoint::Chat {
            model: "gemini-2.0-flash",
            stream: true,
        };
        p.write_head(&mut out, chat, 0, 2, b"id", b"tp");
        assert_eq!(
            &out[..],
            b"POST /v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&x=1 HTTP/1.1\r\n\
              Host: h\r\nx-goog-api-key: k\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\nX-Request-Id: id\r\ntraceparent: tp\r\n\r\n"
        );
        p.wire = Wire::Anthropic;
        p.query = None;
        out.clear();
        p.write_head(&mut out, chat, 0, 2, b"id", b"tp");
        assert!(out.starts_with(b"POST /v1beta/messages HTTP/1.1\r\n"));
    }
}
