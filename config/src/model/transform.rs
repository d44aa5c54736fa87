//! What a route (and, as defaults, a listener) changes in the requests it
//! sends upstream and in the answers it gives: header rules, the path and
//! query sent upstream, a redirect action, and how the gateway's own
//! errors read.
//!
//! Values may hold variables (`$client_ip`, `$header:NAME`, …), parsed
//! here into a [`Template`] so that a misspelt variable is a config error
//! at its path, never a literal `$clinet_ip` sent on every request; the
//! engine renders a template straight into the head it is writing.

/// A value with variables, as written and parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    /// The text as written (rendered back as is).
    pub source: String,
    /// Literal text and variables, in order; adjacent text is merged.
    pub parts: Vec<Part>,
}

impl Template {
    /// Whether the value has no variable (a literal).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Whether any part is `var`.
    pub fn uses(&self, f: impl Fn(&Var) -> bool) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(v) if f(v)))
    }
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Part {
    Text(String),
    Var(Var),
}

/// A variable a [`Template`] may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Var {
    /// `$client_ip`: the client's address (after `[client-ip]` trusted
    /// proxies).
    ClientIp,
    /// `$consumer`: the authenticated consumer's name, or empty.
    Consumer,
    /// `$route`: the route's name.
    Route,
    /// `$request_id`: the request's X-Request-Id.
    RequestId,
    /// `$trace_id`: the W3C trace ID, 32 hex digits.
    TraceId,
    /// `$host`: the host the request was sent to (the Host field or the
    /// target's authority), as sent.
    Host,
    /// `$scheme`: `http` or `https`, as the client connected.
    Scheme,
    /// `$tls_sni`: the TLS server name the client asked for, or empty.
    TlsSni,
    /// `$upstream_server`: the `IP:port` of the server that answered, or
    /// empty (response side only).
    UpstreamServer,
    /// `$status`: the answer's status code (response side only).
    Status,
    /// `$path`: the request's path, after the route's rewrite.
    Path,
    /// `$query`: the request's query with its leading `?`, after the
    /// route's query rules; empty when there is none.
    Query,
    /// `$header:NAME`: the request's first `NAME` field, or empty; the
    /// name held lower-case.
    Header(String),
    /// `$1` to `$9`: a capture of the route's `rewrite` regex, or empty.
    Capture(u8),
}

impl Var {
    /// The variables written by name, in the order they are documented.
    pub const NAMED: &'static [(&'static str, Var)] = &[
        ("client_ip", Var::ClientIp),
        ("consumer", Var::Consumer),
        ("route", Var::Route),
        ("request_id", Var::RequestId),
        ("trace_id", Var::TraceId),
        ("host", Var::Host),
        ("scheme", Var::Scheme),
        ("tls_sni", Var::TlsSni),
        ("upstream_server", Var::UpstreamServer),
        ("status", Var::Status),
        ("path", Var::Path),
        ("query", Var::Query),
    ];
}

/// `[routes.request-headers]` or `[routes.response-headers]` (and the
/// listener's): applied in this order, as Kong's transformer does:
/// `remove`, `rename`, `set`, `add-if-absent`, `add`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HeaderRules {
    /// `remove`: names (lower-case) or prefixes (`x-internal-*`, held with
    /// the `*`) of fields removed.
    pub remove: Vec<String>,
    /// `rename`: `(from, to)`; `from` lower-case, `to` as written.
    pub rename: Vec<(String, String)>,
    /// `set`: each field replaces every field of its name.
    pub set: Vec<(String, Template)>,
    /// `add-if-absent`: each field is added when none of its name is
    /// present (after `remove`, `rename` and `set`).
    pub add_if_absent: Vec<(String, Template)>,
    /// `add`: each field is appended as one more line.
    pub add: Vec<(String, Template)>,
}

impl HeaderRules {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.set.is_empty()
            && self.add_if_absent.is_empty()
            && self.add.is_empty()
    }

    /// Every value template, in rule order.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.set
            .iter()
            .chain(&self.add_if_absent)
            .chain(&self.add)
            .map(|(_, t)| t)
    }
}

/// How the path sent upstream is made from the request's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathRewrite {
    /// `strip-prefix = true`: the route's `path-prefix` is removed (a path
    /// left empty becomes `/`).
    StripPrefix,
    /// `rewrite-prefix = "/v2/"`: the route's `path-prefix` is replaced by
    /// this.
    Prefix(String),
    /// `rewrite = { regex, replace }`: a path the regex matches is
    /// replaced by `replace` (with `$1`…`$9` captures and variables);
    /// other paths go unchanged.
    Regex { regex: String, replace: Template },
}

/// `[routes.query]`: query parameters removed from and added to the
/// target sent upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct QueryRules {
    /// `remove`: parameter names, as written (compared with the raw
    /// query).
    pub remove: Vec<String>,
    /// `add`: `(name, value)`, appended in this order; a value's variables
    /// are percent-encoded.
    pub add: Vec<(String, Template)>,
}

/// `error-format`: how the gateway's own error answers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ErrorFormat {
    /// `"text"`: the reason phrase as `text/plain` (the default).
    #[default]
    Text,
    /// `"json"`: `{"error": {"status", "code", "message", "request_id"}}`
    /// as `application/json`.
    Json,
}

impl ErrorFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorFormat::Text => "text",
            ErrorFormat::Json => "json",
        }
    }
}

/// One `[[routes.error-bodies]]`: the body of the gateway's own error
/// answers with this status on the route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorBody {
    /// `status`, 400 to 599.
    pub status: u16,
    /// `content-type`; default `text/plain; charset=utf-8`.
    pub content_type: String,
    /// `body`, with variables.
    pub body: Template,
}

/// `[routes.redirect]`: the route answers with a redirect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Redirect {
    /// `status`: 301, 302, 303, 307 or 308; default 302.
    pub status: u16,
    /// `location`, with variables (`$path` and `$query` after the route's
    /// rewrite, `$1`…`$9` from its `rewrite` regex).
    pub location: Template,
}

/// What a route changes, all together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RouteTransform {
    /// `[routes.request-headers]`; after the listener's.
    pub request_headers: Option<HeaderRules>,
    /// `[routes.response-headers]`; after the listener's.
    pub response_headers: Option<HeaderRules>,
    /// `strip-prefix`, `rewrite-prefix` or `rewrite`.
    pub path: Option<PathRewrite>,
    /// `[routes.query]`.
    pub query: Option<QueryRules>,
    /// `error-format`; `None` takes the listener's.
    pub error_format: Option<ErrorFormat>,
    /// `[[routes.error-bodies]]`, at most one per status.
    pub error_bodies: Vec<ErrorBody>,
}
