//! TOML text → [`RawDocument`], reporting every syntax, key and type error.
//!
//! Deserializing the whole document with one `serde` call would stop at the
//! first bad value anywhere. Instead this module parses the TOML into a
//! spanned tree (`toml::de::DeTable`), walks the top level itself, and
//! deserializes each top-level key and each element of an array of tables
//! (`[[listeners]]`, `[[upstreams]]`, `[[routes]]`, `[[consumers]]`,
//! `[[authenticators]]`, `[[ai-providers]]`, `[[ai-models]]`) on its own. A typo in
//! `routes[0]` then still lets `routes[3]` and `[limits]` be checked in the
//! same run. The cost is a clone of each element's tree per attempt (a few
//! hundred bytes per route), paid once per load. Within one element, every
//! unknown key is reported but only the first wrong-typed value.
//!
//! serde errors carry a byte span but not the key path, so the path is
//! recovered by finding the deepest key or value in the element's tree whose
//! span holds the error.
//!
//! The walk starts from a tree, not from text, so `json` builds the same
//! tree from a JSON document (spans into the JSON) and hands it to
//! [`document`]: both formats then share every key, type and value check.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::error::Reporter;
use crate::raw::{Item, RawDocument, Section};

/// The top-level keys, as they are written, for "unknown key" messages.
const TOP_LEVEL_KEYS: &[&str] = &[
    "workers",
    "driver",
    "connection-balance",
    "drain-timeout",
    "limits",
    "admin",
    "cache",
    "metrics",
    "access-log",
    "client-ip",
    "ip-rules",
    "resolver",
    "listeners",
    "upstreams",
    "routes",
    "consumers",
    "authenticators",
    "ai-providers",
    "ai-models",
];

/// The format a tree was read from: messages use its words ("table" or
/// "object"), and a JSON tree comes with its nulls.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Syntax<'a> {
    Toml,
    /// `nulls` holds the byte offset of every JSON `null`, each already
    /// reported and replaced by a placeholder in the tree.
    Json {
        nulls: &'a [usize],
    },
}

impl Syntax<'_> {
    /// Whether `span` holds a null. A top-level value or array-of-tables
    /// element holding one is left out, like one with a type error, since
    /// deserializing the placeholder would add a second, misleading error.
    fn holds_null(self, span: &Range<usize>) -> bool {
        match self {
            Syntax::Toml => false,
            Syntax::Json { nulls } => nulls.iter().any(|at| span.contains(at)),
        }
    }

    /// Whether the value at `span` is itself a null.
    fn is_null(self, span: &Range<usize>) -> bool {
        match self {
            Syntax::Toml => false,
            Syntax::Json { nulls } => nulls.contains(&span.start),
        }
    }

    /// "a table", in this format's words.
    fn a_table(self) -> &'static str {
        match self {
            Syntax::Toml => "a table",
            Syntax::Json { .. } => "an object",
        }
    }

    /// The type of `value`, in this format's words.
    fn type_name(self, value: &DeValue<'_>) -> &'static str {
        match (self, value) {
            (Syntax::Json { .. }, DeValue::Table(_)) => "object",
            _ => value.type_str(),
        }
    }
}

/// Parses `src` into a raw document. Returns `None` on a TOML syntax error
/// (after reporting every one found), since the tree is then unreliable; on
/// key or type errors returns what did deserialize, so validation can still
/// check it.
pub(crate) fn parse(src: &str, r: &mut Reporter<'_>) -> Option<RawDocument> {
    let (root, syntax_errors) = DeTable::parse_recoverable(src);
    if !syntax_errors.is_empty() {
        let mut seen = Vec::new();
        for e in syntax_errors {
            let key = (e.span().map(|s| s.start), e.message().to_owned());
            if !seen.contains(&key) {
                r.error("", e.span(), e.message());
                seen.push(key);
            }
        }
        return None;
    }
    Some(document(root.into_inner(), Syntax::Toml, r))
}

/// Walks the top level of a parsed document, deserializing each key (and
/// each element of an array of tables) on its own.
pub(crate) fn document(root: DeTable<'_>, syntax: Syntax<'_>, r: &mut Reporter<'_>) -> RawDocument {
    let mut doc = RawDocument::default();
    for (key, value) in root {
        let name: &str = key.get_ref();
        let known = TOP_LEVEL_KEYS.contains(&name);
        match name {
            "listeners" => doc.listeners = section(value, name, key.span(), syntax, r),
            "upstreams" => doc.upstreams = section(value, name, key.span(), syntax, r),
            "routes" => doc.routes = section(value, name, key.span(), syntax, r),
            "consumers" => doc.consumers = section(value, name, key.span(), syntax, r),
            "authenticators" => doc.authenticators = section(value, name, key.span(), syntax, r),
            "ai-providers" => doc.ai_providers = section(value, name, key.span(), syntax, r),
            "ai-models" => doc.ai_models = section(value, name, key.span(), syntax, r),
            _ if known && syntax.holds_null(&value.span()) => {}
            "workers" => doc.workers = de(value, name, syntax, r),
            "driver" => doc.driver = de(value, name, syntax, r),
            "connection-balance" => doc.connection_balance = de(value, name, syntax, r),
            "drain-timeout" => doc.drain_timeout = de(value, name, syntax, r),
            "limits" => doc.limits = table(value, name, syntax, r),
            "admin" => doc.admin = table(value, name, syntax, r),
            "cache" => doc.cache = table(value, name, syntax, r),
            "metrics" => doc.metrics = table(value, name, syntax, r),
            "access-log" => doc.access_log = table(value, name, syntax, r),
            "client-ip" => doc.client_ip = table(value, name, syntax, r),
            "ip-rules" => doc.ip_rules = table(value, name, syntax, r),
            "resolver" => doc.resolver = table(value, name, syntax, r),
            _ => {
                let mut message = format!(
                    "unknown key; the top level may hold {}",
                    TOP_LEVEL_KEYS.join(", ")
                );
                if let Some(near) = suggest(name, TOP_LEVEL_KEYS) {
                    message.push_str(&format!("; did you mean `{near}`?"));
                }
                r.error(key_path("", name), Some(key.span()), message);
            }
        }
    }
    doc
}

/// A top-level table (`[limits]`, `[admin]`, `[cache]`, `[access-log]`),
/// which a TOML file may set as a plain key by mistake.
fn table<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    name: &str,
    syntax: Syntax<'_>,
    r: &mut Reporter<'_>,
) -> Option<Spanned<T>> {
    if value.get_ref().is_table() {
        return de(value, name, syntax, r);
    }
    let mut message = format!(
        "expected {}, found {}",
        syntax.a_table(),
        syntax.type_name(value.get_ref())
    );
    if let Syntax::Toml = syntax {
        message.push_str(&format!("; write the keys under a [{name}] header"));
    }
    r.error(name, Some(value.span()), message);
    None
}

/// An array of tables: each element deserialized on its own.
fn section<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    name: &str,
    key_span: Range<usize>,
    syntax: Syntax<'_>,
    r: &mut Reporter<'_>,
) -> Section<T> {
    let span = value.span();
    let malformed = Section {
        span: Some(key_span.clone()),
        items: Vec::new(),
        malformed: true,
    };
    if syntax.is_null(&span) {
        return malformed;
    }
    let DeValue::Array(elements) = value.into_inner() else {
        let message = match syntax {
            Syntax::Toml => {
                format!("expected an array of tables; write each entry under a [[{name}]] header")
            }
            Syntax::Json { .. } => "expected an array of objects".to_owned(),
        };
        r.error(name, Some(span), message);
        return malformed;
    };
    let items = elements
        .into_iter()
        .enumerate()
        .map(|(i, element)| {
            let path = format!("{name}[{i}]");
            let span = element.span();
            let name = element
                .get_ref()
                .as_table()
                .and_then(|t| t.get("name"))
                .and_then(|n| n.get_ref().as_str())
                .map(str::to_owned);
            let value = if syntax.holds_null(&span) {
                None
            } else if element.get_ref().is_table() {
                de(element, &path, syntax, r)
            } else {
                r.error(
                    &path,
                    Some(span.clone()),
                    format!(
                        "expected {}, found {}",
                        syntax.a_table(),
                        syntax.type_name(element.get_ref())
                    ),
                );
                None
            };
            Item { span, value, name }
        })
        .collect();
    Section {
        span: Some(key_span),
        items,
        malformed: false,
    }
}

/// Deserializes one value, reporting a failure with the path of the
/// innermost key it happened at.
///
/// An unknown key is reported, dropped from the tree, and deserialization
/// retried, so one typo in `[limits]` does not hide the rest of `[limits]`.
/// That is safe because an unknown key has no meaning to lose; any other
/// error ends the attempt, since dropping a known key would make validation
/// report it as missing on top of the real problem.
fn de<T: DeserializeOwned>(
    mut value: Spanned<DeValue<'_>>,
    path: &str,
    syntax: Syntax<'_>,
    r: &mut Reporter<'_>,
) -> Option<T> {
    loop {
        let e = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let span = e.span().unwrap_or_else(|| value.span());
        let at = locate(&value, span.start, path).unwrap_or_else(|| path.to_owned());
        r.error(at, Some(span.clone()), describe(e.message(), syntax));
        let unknown = e.message().starts_with("unknown field");
        if !(unknown && remove_key_at(value.get_mut(), span.start)) {
            return None;
        }
    }
}

/// Removes the key written at byte `offset` from the tree under `value`.
/// Returns whether one was found; each removal shrinks the tree, so the
/// retry loop in [`de`] ends.
fn remove_key_at(value: &mut DeValue<'_>, offset: usize) -> bool {
    match value {
        DeValue::Table(table) => {
            let here = table
                .keys()
                .find(|key| key.span().start == offset)
                .map(|key| key.get_ref().to_string());
            match here {
                Some(key) => table.remove(key.as_str()).is_some(),
                None => table
                    .iter_mut()
                    .any(|(_, child)| remove_key_at(child.get_mut(), offset)),
            }
        }
        DeValue::Array(items) => items
            .iter_mut()
            .any(|child| remove_key_at(child.get_mut(), offset)),
        _ => false,
    }
}

/// The path of the deepest key or value under `value` whose span holds
/// `offset`, or `None` when nothing below `value` does.
///
/// Tables opened with a header (`[routes.respond]`) have the header as their
/// span, not the keys under it, so the search visits every child rather than
/// only those whose span holds the offset.
fn locate(value: &Spanned<DeValue<'_>>, offset: usize, path: &str) -> Option<String> {
    let holds = |s: Range<usize>| s.start <= offset && (offset < s.end || s.is_empty());
    match value.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(key, child)| {
            let child_path = key_path(path, key.get_ref());
            locate(child, offset, &child_path)
                .or_else(|| (holds(key.span()) || holds(child.span())).then_some(child_path))
        }),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, child)| {
            let child_path = format!("{path}[{i}]");
            locate(child, offset, &child_path).or_else(|| holds(child.span()).then_some(child_path))
        }),
        _ => None,
    }
}

/// Appends `key` to `path` the way TOML writes it: bare when it can be,
/// quoted otherwise (`headers."x.y"`).
pub(crate) fn key_path(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// serde's message in the format's vocabulary ("key", "array", "table" or
/// "object" rather than "field", "sequence", "map"), with a suggestion when
/// an unknown key is a likely typo of a known one.
fn describe(message: &str, syntax: Syntax<'_>) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        let message = message
            .replace("invalid type: sequence", "invalid type: array")
            .replace("expected a sequence", "expected an array");
        return match syntax {
            Syntax::Toml => message.replace("invalid type: map", "invalid type: table"),
            Syntax::Json { .. } => message
                .replace("invalid type: map", "invalid type: object")
                .replace("expected a table", "expected an object"),
        };
    };
    let mut out = format!("unknown key `{rest}");
    let Some((unknown, expected)) = rest.split_once("`, expected ") else {
        return out;
    };
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let candidates: Vec<&str> = expected.split(", ").map(|c| c.trim_matches('`')).collect();
    if let Some(near) = suggest(unknown, &candidates) {
        out.push_str(&format!("; did you mean `{near}`?"));
    }
    out
}

/// The candidate closest to `word`, if it is close enough to be a typo: at
/// most 2 edits, and fewer than a third of the word's length.
fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = 2.min(word.chars().count() / 3);
    candidates
        .iter()
        .map(|&c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d > 0 && d <= limit.max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance; keys are short, so the O(n·m) table is tiny.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths() {
        let cases = [
            ("", "workers", "workers"),
            ("routes[0]", "upstream", "routes[0].upstream"),
            (
                "routes[0].respond.headers",
                "x.y",
                "routes[0].respond.headers.\"x.y\"",
            ),
            ("limits", "", "limits.\"\""),
        ];
        for (path, key, want) in cases {
            assert_eq!(key_path(path, key), want);
        }
    }

    #[test]
    fn suggestions() {
        let keys = ["max-body-size", "connect-timeout", "response-head-timeout"];
        let cases = [
            ("max-body-sise", Some("max-body-size")),
            ("conect-timeout", Some("connect-timeout")),
            ("timeout", None),
            ("max-body-size", None), // an exact match is not a typo
            ("xy", None),
        ];
        for (word, want) in cases {
            assert_eq!(suggest(word, &keys), want, "{word}");
        }
    }

    #[test]
    fn edit_distances() {
        let cases = [
            ("", "", 0),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("rout", "route", 1),
        ];
        for (a, b, want) in cases {
            assert_eq!(edit_distance(a, b), want, "{a} {b}");
            assert_eq!(edit_distance(b, a), want, "{b} {a}");
        }
    }

    #[test]
    fn describes_unknown_fields() {
        let json = Syntax::Json { nulls: &[] };
        let cases = [
            (
                Syntax::Toml,
                "unknown field `bodi`, expected one of `status`, `headers`, `body`",
                "unknown key `bodi`, expected one of `status`, `headers`, `body`; did you mean `body`?",
            ),
            (
                Syntax::Toml,
                "unknown field `zzz`, expected `address`",
                "unknown key `zzz`, expected `address`",
            ),
            (Syntax::Toml, "invalid type: integer `3`, expected a string", "invalid type: integer `3`, expected a string"),
            (Syntax::Toml, "invalid type: string \"GET\", expected a sequence", "invalid type: string \"GET\", expected an array"),
            (Syntax::Toml, "invalid type: map, expected a string", "invalid type: table, expected a string"),
            (json, "invalid type: map, expected a string", "invalid type: object, expected a string"),
            (json, "invalid type: string \"x\", expected a table", "invalid type: string \"x\", expected an object"),
            (json, "unknown field `zzz`, expected `address`", "unknown key `zzz`, expected `address`"),
        ];
        for (syntax, message, want) in cases {
            assert_eq!(describe(message, syntax), want);
        }
    }
}
