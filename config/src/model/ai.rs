//! The AI gateway's part of the config: `[[ai-providers]]` (where a
//! language model is served, and with which keys), `[[ai-models]]` (the
//! names clients ask for, each mapped onto provider models) and a route's
//! `[routes.ai]`.
//!
//! Provider keys are held as where to find them ([`SecretSource`]), never
//! read here: this crate does no environment or file access, so a config
//! validates the same on a laptop as on the host holding the secrets. The
//! engine reads them when it builds a snapshot. A key written inline is
//! allowed (and warned about), and its `Debug` output hides it, since
//! configs end up in logs and panic messages.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::PathBuf;
use std::time::Duration;

/// `[[ai-providers]]`: an LLM API reached through one of the
/// `[[upstreams]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AiProvider {
    /// `name`, unique among providers; `[[ai-models]]` targets refer to it.
    pub name: String,
    /// `type`: which API the provider speaks.
    pub kind: AiProviderKind,
    /// `upstream`: an index into `Config::upstreams`, the servers the
    /// provider's requests go to.
    pub upstream: usize,
    /// `base-path`, resolved: the type's default
    /// ([`AiProviderKind::default_base_path`]) when not written. Starts
    /// with `/`, no trailing `/`, no query or fragment.
    pub base_path: String,
    /// `query`: a query string (without `?`) added to every request to the
    /// provider, e.g. Azure's `api-version=2024-06-01`.
    pub query: Option<String>,
    /// `key-header`, lower-case: the header that carries the key as is,
    /// instead of the type's default
    /// ([`AiProviderKind::default_key_header`]).
    pub key_header: Option<String>,
    /// `headers` added to every request to the provider, names as written
    /// (valid tokens, unique ignoring case), never `host`,
    /// `content-length`, `transfer-encoding`, `connection` or the key
    /// header. Their order carries no meaning: a TOML table has none.
    pub headers: Vec<(String, String)>,
    /// `keys`, in file order, no two from the same source. Never empty for
    /// a type that [requires one](AiProviderKind::requires_key).
    pub keys: Vec<AiKey>,
    /// `timeout`: the longest wait for the answer's head; `None` = the
    /// route's `response-head-timeout`.
    pub timeout: Option<Duration>,
}

/// `type = "openai" | "anthropic" | "gemini" | "openai-compatible"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AiProviderKind {
    /// `"openai"`: the OpenAI API (Chat Completions).
    OpenAi,
    /// `"anthropic"`: the Anthropic Messages API.
    Anthropic,
    /// `"gemini"`: the Google Gemini API (`generateContent`).
    Gemini,
    /// `"openai-compatible"`: a server speaking the OpenAI API (Azure
    /// OpenAI, vLLM, Ollama, ...); keys may be left out.
    OpenAiCompatible,
}

impl AiProviderKind {
    /// Every type, in the order the config documents them.
    pub const ALL: [AiProviderKind; 4] = [
        AiProviderKind::OpenAi,
        AiProviderKind::Anthropic,
        AiProviderKind::Gemini,
        AiProviderKind::OpenAiCompatible,
    ];

    /// The name used in the config, e.g. `"openai-compatible"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AiProviderKind::OpenAi => "openai",
            AiProviderKind::Anthropic => "anthropic",
            AiProviderKind::Gemini => "gemini",
            AiProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// `base-path` when the provider does not set one: `/v1`, or
    /// `/v1beta` for Gemini.
    pub fn default_base_path(&self) -> &'static str {
        match self {
            AiProviderKind::Gemini => "/v1beta",
            _ => "/v1",
        }
    }

    /// The header, lower-case, that carries the key when `key-header` is
    /// not set: `authorization` (as `Bearer KEY`) for the OpenAI types,
    /// `x-api-key` for Anthropic, `x-goog-api-key` for Gemini.
    pub fn default_key_header(&self) -> &'static str {
        match self {
            AiProviderKind::OpenAi | AiProviderKind::OpenAiCompatible => "authorization",
            AiProviderKind::Anthropic => "x-api-key",
            AiProviderKind::Gemini => "x-goog-api-key",
        }
    }

    /// Whether the provider needs at least one key: every type but
    /// `openai-compatible`, whose servers (Ollama, vLLM) may have no auth.
    pub fn requires_key(&self) -> bool {
        *self != AiProviderKind::OpenAiCompatible
    }
}

/// One entry of a provider's `keys`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AiKey {
    /// Where the key is read from.
    pub source: SecretSource,
    /// `requests-per-minute`: the most requests sent with this key a
    /// minute; `None` = no limit.
    pub requests_per_minute: Option<NonZeroU32>,
    /// `tokens-per-minute`: the most tokens used with this key a minute;
    /// `None` = no limit.
    pub tokens_per_minute: Option<NonZeroU64>,
}

/// Where a secret is: the engine reads it, this crate never does.
///
/// `Debug` shows the name of an environment variable and the path of a
/// file, but never an inline secret (`Inline(***)`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// `"env:NAME"`: the environment variable `NAME` (letters, digits and
    /// `_`, not starting with a digit).
    Env(String),
    /// `"file:PATH"`: the file's contents, without a trailing newline; the
    /// path as written (a relative path is relative to the working
    /// directory, like the TLS paths).
    File(PathBuf),
    /// Any other string: the secret itself, written in the config (a
    /// warning).
    Inline(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
            SecretSource::Inline(_) => f.write_str("Inline(***)"),
        }
    }
}

/// `[[ai-models]]`: a model name clients send, served by one or more
/// provider models.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AiModel {
    /// `name`, unique among models: the `model` clients send.
    pub name: String,
    /// `strategy`: how a target is picked; default
    /// [`AiStrategy::Fallback`].
    pub strategy: AiStrategy,
    /// `max-tokens-default`, 1 to 1000000: the `max_tokens` sent when the
    /// request has none and the provider requires one.
    pub max_tokens_default: Option<NonZeroU32>,
    /// `allow-groups`: when not empty, only consumers in one of these
    /// groups may use the model.
    pub allow_groups: Vec<String>,
    /// `targets`, in file order, never empty, no two with the same
    /// provider and model.
    pub targets: Vec<AiTarget>,
}

/// `strategy = "fallback" | "weighted"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AiStrategy {
    /// `"fallback"`: targets are tried by `priority`, lowest first (the
    /// default).
    #[default]
    Fallback,
    /// `"weighted"`: requests are spread over the targets by `weight`.
    Weighted,
}

impl AiStrategy {
    /// Every strategy, in the order the config documents them.
    pub const ALL: [AiStrategy; 2] = [AiStrategy::Fallback, AiStrategy::Weighted];

    /// The name used in the config, e.g. `"fallback"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AiStrategy::Fallback => "fallback",
            AiStrategy::Weighted => "weighted",
        }
    }
}

/// One entry of a model's `targets`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AiTarget {
    /// `provider`: an index into `Config::ai_providers`.
    pub provider: usize,
    /// `model`: the provider's name for the model, sent to it.
    pub model: String,
    /// `weight`, 1 to 10000; default 1.
    pub weight: NonZeroU32,
    /// `priority`, 0 to 1000, lower first; default 0.
    pub priority: u32,
}

/// `[routes.ai]`: a route answered by the AI gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AiRoute {
    /// `models`: indexes into `Config::ai_models`, the models this route
    /// serves; all of them, in file order, when not written.
    pub models: Vec<usize>,
    /// `messages`: whether `POST /v1/messages` (the Anthropic API) is
    /// served too; default false.
    pub messages: bool,
    /// `max-response-size`: the largest non-streaming provider answer read
    /// whole to be translated, 1 KiB to 256 MiB; default 16 MiB.
    pub max_response_size: usize,
}
