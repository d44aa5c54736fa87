//! A route's and a listener's transforms → [`RouteTransform`] and
//! [`HeaderRules`]: header rules, the path and query rewrite, the redirect
//! action, `error-format` and `[[routes.error-bodies]]`.
//!
//! Values with variables are parsed here, and a variable a place cannot
//! have is an error at its path: `$status` is not known while the request
//! is being sent upstream, `$1` means nothing without a `rewrite` regex.
//! Header names the gateway frames or manages itself (hop-by-hop fields,
//! `content-length`, and `host` on the request side, which has
//! `host-header`) cannot be touched: a rule on them would break the
//! message, not change it.

use toml::Spanned;

use super::{integer, text};
use crate::error::Reporter;
use crate::model::{
    ErrorBody, ErrorFormat, HeaderRules, Part, PathMatch, PathRewrite, QueryRules, Redirect,
    RouteTransform, Template, Var,
};
use crate::parse::key_path;
use crate::raw::{RawErrorBody, RawHeaderRules, RawHeaders, RawRedirect, RawRoute, Scalar};

/// Where a value is used, which decides the variables it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// A request header sent upstream, or a query parameter.
    Request,
    /// A response header.
    Response,
    /// The `replace` of a `rewrite` regex.
    Rewrite,
    /// A redirect's `location`; `captures`: the route has a `rewrite` regex.
    Location { captures: bool },
    /// The body of an error answer.
    ErrorBody,
}

impl Place {
    /// Why `var` cannot be used here, if it cannot.
    fn refuses(self, var: &Var) -> Option<&'static str> {
        match (self, var) {
            (Place::Request | Place::Rewrite, Var::Status | Var::UpstreamServer) => {
                Some("is known only once the upstream has answered; use it in response-headers")
            }
            (Place::Location { .. }, Var::Status | Var::UpstreamServer) => {
                Some("means nothing in a redirect, which no upstream answers")
            }
            (Place::Location { .. }, Var::Path | Var::Query) => None,
            (_, Var::Path | Var::Query) => Some("can be used only in a redirect's `location`"),
            (Place::Rewrite | Place::Location { captures: true }, Var::Capture(_)) => None,
            (Place::Location { captures: false }, Var::Capture(_)) => {
                Some("refers to a capture of the route's `rewrite` regex, and it has none")
            }
            (_, Var::Capture(_)) => {
                Some("a capture can be used only in `rewrite.replace` and a redirect's `location`")
            }
            _ => None,
        }
    }
}

/// Parses `text` (`$name`, `${name}`, `$header:NAME`, `$1`…`$9`, `$$`).
pub(super) fn parse_template(text: &str, place: Place) -> Result<Template, String> {
    let mut parts: Vec<Part> = Vec::new();
    let mut lit = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(off) = text[i..].find('$') else {
            lit.push_str(&text[i..]);
            break;
        };
        lit.push_str(&text[i..i + off]);
        i += off + 1;
        let (var, end) = match bytes.get(i) {
            Some(b'$') => {
                lit.push('$');
                i += 1;
                continue;
            }
            Some(b'{') => {
                let close = text[i..]
                    .find('}')
                    .ok_or_else(|| format!("{text:?}: `${{` without a closing `}}`"))?;
                (variable(&text[i + 1..i + close], text)?, i + close + 1)
            }
            Some(d @ b'1'..=b'9') => (Var::Capture(d - b'0'), i + 1),
            _ => {
                let len = text[i..]
                    .bytes()
                    .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                    .count();
                let mut end = i + len;
                if &text[i..end] == "header" && bytes.get(end) == Some(&b':') {
                    end += 1 + text[end + 1..].bytes().take_while(|&b| is_tchar(b)).count();
                }
                (variable(&text[i..end], text)?, end)
            }
        };
        if let Some(why) = place.refuses(&var) {
            return Err(format!("{text:?}: ${} {why}", shown(&var)));
        }
        if !lit.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut lit)));
        }
        parts.push(Part::Var(var));
        i = end;
    }
    if !lit.is_empty() {
        parts.push(Part::Text(lit));
    }
    Ok(Template {
        source: text.to_owned(),
        parts,
    })
}

/// A byte of a header name in `$header:NAME`: letters, digits, `-`, `_`
/// and `.` (the other token characters, `$` among them, end the name).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// The variable called `name` in `text`.
fn variable(name: &str, text: &str) -> Result<Var, String> {
    if let Some(header) = name.strip_prefix("header:") {
        if header.is_empty() || !header.bytes().all(is_tchar) {
            return Err(format!(
                "{text:?}: `$header:` must be followed by a header name"
            ));
        }
        return Ok(Var::Header(header.to_ascii_lowercase()));
    }
    if let [d @ b'1'..=b'9'] = name.as_bytes() {
        return Ok(Var::Capture(d - b'0'));
    }
    if let Some((_, v)) = Var::NAMED.iter().find(|(n, _)| *n == name) {
        return Ok(v.clone());
    }
    let known: Vec<String> = Var::NAMED.iter().map(|(n, _)| format!("${n}")).collect();
    Err(format!(
        "{text:?}: unknown variable `${name}` (write `$$` for a dollar sign); known: {}, $header:NAME, $1 to $9",
        known.join(", ")
    ))
}

/// How a variable is written, for messages.
fn shown(var: &Var) -> String {
    match var {
        Var::Header(h) => format!("header:{h}"),
        Var::Capture(d) => d.to_string(),
        v => Var::NAMED
            .iter()
            .find(|(_, n)| n == v)
            .map_or_else(String::new, |(n, _)| (*n).to_owned()),
    }
}

/// A template at `path`, reported when it does not parse.
fn template(
    value: &Spanned<String>,
    path: &str,
    place: Place,
    r: &mut Reporter<'_>,
) -> Option<Template> {
    let parsed = parse_template(value.get_ref(), place).and_then(|t| {
        // Literal text must make a valid field value; a variable's value is
        // checked as it is written.
        for p in &t.parts {
            if let Part::Text(s) = p {
                text::header_value(s)?;
            }
        }
        Ok(t)
    });
    parsed
        .map_err(|message| r.error(path, Some(value.span()), message))
        .ok()
}

/// A header name a rule at `path` may name on this side, lower-cased.
fn rule_name(name: &str, request: bool) -> Result<String, String> {
    if request {
        text::upstream_header(name)
    } else {
        text::credential_header(name)
    }
}

/// `[routes.request-headers]` (`request`) or `[routes.response-headers]`,
/// or the listener's.
pub(super) fn header_rules(
    raw: &Spanned<RawHeaderRules>,
    path: &str,
    request: bool,
    r: &mut Reporter<'_>,
) -> Option<HeaderRules> {
    let raw = raw.get_ref();
    let place = if request {
        Place::Request
    } else {
        Place::Response
    };
    let mut ok = true;
    let mut out = HeaderRules::default();
    for (j, name) in raw.remove.iter().flatten().enumerate() {
        let key = format!("{path}.remove[{j}]");
        let (stem, prefix) = match name.get_ref().strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (name.get_ref().as_str(), false),
        };
        let checked =
            if prefix && stem.is_empty() {
                Err("`*` alone would remove every field; name them, or a prefix like `x-internal-*`"
                .to_owned())
            } else if prefix {
                text::header_token(stem)
            } else {
                rule_name(stem, request)
            };
        match checked {
            Ok(lower) if prefix => out.remove.push(format!("{lower}*")),
            Ok(lower) => out.remove.push(lower),
            Err(message) => {
                r.error(key, Some(name.span()), message);
                ok = false;
            }
        }
    }
    let table = |raw: &Option<RawHeaders>, k: &str| -> (String, Vec<(String, Spanned<String>)>) {
        let entries = raw
            .iter()
            .flat_map(|h| &h.0)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        (format!("{path}.{k}"), entries)
    };
    let (rename_path, renames) = table(&raw.rename, "rename");
    for (from, to) in renames {
        let key = key_path(&rename_path, &from);
        match (rule_name(&from, request), rule_name(to.get_ref(), request)) {
            (Ok(from), Ok(_)) => out.rename.push((from, to.get_ref().clone())),
            (Err(message), _) | (_, Err(message)) => {
                r.error(key, Some(to.span()), message);
                ok = false;
            }
        }
    }
    for (k, dest) in [
        ("set", &raw.set),
        ("add-if-absent", &raw.add_if_absent),
        ("add", &raw.add),
    ] {
        let (table_path, entries) = table(dest, k);
        let mut list = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            let key = key_path(&table_path, &name);
            if let Err(message) = rule_name(&name, request) {
                r.error(key, Some(value.span()), message);
                ok = false;
                continue;
            }
            match template(&value, &key, place, r) {
                Some(t) => list.push((name, t)),
                None => ok = false,
            }
        }
        match k {
            "set" => out.set = list,
            "add-if-absent" => out.add_if_absent = list,
            _ => out.add = list,
        }
    }
    ok.then_some(out)
}

/// `error-format` of a route or listener.
pub(super) fn error_format(
    value: &Spanned<String>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<ErrorFormat> {
    match value.get_ref().as_str() {
        "text" => Some(ErrorFormat::Text),
        "json" => Some(ErrorFormat::Json),
        other => {
            r.error(
                path,
                Some(value.span()),
                format!("expected \"text\" or \"json\", found {other:?}"),
            );
            None
        }
    }
}

/// A route's transforms. `proxies`: whether the route sends requests
/// upstream (`None` when its action is unclear and reported elsewhere).
pub(super) fn route_transform(
    raw: &RawRoute,
    path: &str,
    path_match: Option<&PathMatch>,
    proxies: Option<bool>,
    r: &mut Reporter<'_>,
) -> Option<RouteTransform> {
    let mut ok = true;
    let upstream_only = |span: std::ops::Range<usize>, key: &str, r: &mut Reporter<'_>| {
        r.error(
            format!("{path}.{key}"),
            Some(span),
            "applies only to routes that send requests upstream or redirect",
        );
    };
    // Request-side rules need a request sent upstream.
    let request_headers = match &raw.request_headers {
        Some(h) if proxies == Some(false) => {
            r.error(
                format!("{path}.request-headers"),
                Some(h.span()),
                super::route::PROXY_ONLY,
            );
            ok = false;
            None
        }
        Some(h) => {
            let rules = header_rules(h, &format!("{path}.request-headers"), true, r);
            ok &= rules.is_some();
            rules
        }
        None => None,
    };
    let response_headers = raw.response_headers.as_ref().and_then(|h| {
        let rules = header_rules(h, &format!("{path}.response-headers"), false, r);
        ok &= rules.is_some();
        rules
    });

    let rewrites_path = proxies == Some(true) || raw.redirect.is_some();
    let written: Vec<(&str, std::ops::Range<usize>)> = [
        raw.strip_prefix
            .as_ref()
            .filter(|s| *s.get_ref())
            .map(|s| ("strip-prefix", s.span())),
        raw.rewrite_prefix
            .as_ref()
            .map(|s| ("rewrite-prefix", s.span())),
        raw.rewrite.as_ref().map(|s| ("rewrite", s.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut rewrite = None;
    if written.len() > 1 {
        let (first, _) = &written[0];
        let (second, span) = &written[1];
        r.error(
            format!("{path}.{second}"),
            Some(span.clone()),
            format!("set either `{first}` or `{second}`, not both"),
        );
        ok = false;
    } else if let Some((key, span)) = written.first() {
        if !rewrites_path && proxies.is_some() {
            upstream_only(span.clone(), key, r);
            ok = false;
        } else {
            rewrite = path_rewrite(raw, path, key, span.clone(), path_match, r);
            ok &= rewrite.is_some();
        }
    }
    let query = match &raw.query {
        Some(q) if !rewrites_path && proxies.is_some() => {
            upstream_only(q.span(), "query", r);
            ok = false;
            None
        }
        Some(q) => {
            let rules = query_rules(q.get_ref(), &format!("{path}.query"), r);
            ok &= rules.is_some();
            rules
        }
        None => None,
    };
    let error_format = raw.error_format.as_ref().map(|v| {
        let f = error_format(v, &format!("{path}.error-format"), r);
        ok &= f.is_some();
        f.unwrap_or_default()
    });
    let error_bodies = error_bodies(raw.error_bodies.as_ref(), path, r);
    ok &= error_bodies.is_some();
    ok.then(|| RouteTransform {
        request_headers,
        response_headers,
        path: rewrite,
        query,
        error_format,
        error_bodies: error_bodies.unwrap_or_default(),
    })
}

fn path_rewrite(
    raw: &RawRoute,
    path: &str,
    key: &str,
    span: std::ops::Range<usize>,
    path_match: Option<&PathMatch>,
    r: &mut Reporter<'_>,
) -> Option<PathRewrite> {
    let needs_prefix = |r: &mut Reporter<'_>| {
        if matches!(path_match, Some(PathMatch::Exact(_))) {
            r.error(
                format!("{path}.{key}"),
                Some(span.clone()),
                "needs a `path-prefix` route: it replaces the matched prefix",
            );
            return false;
        }
        true
    };
    match key {
        "strip-prefix" => needs_prefix(r).then_some(PathRewrite::StripPrefix),
        "rewrite-prefix" => {
            let v = raw.rewrite_prefix.as_ref()?;
            if !needs_prefix(r) {
                return None;
            }
            match text::path(v.get_ref()) {
                Ok(()) => Some(PathRewrite::Prefix(v.get_ref().clone())),
                Err(message) => {
                    r.error(format!("{path}.rewrite-prefix"), Some(v.span()), message);
                    None
                }
            }
        }
        _ => {
            let rw = raw.rewrite.as_ref()?;
            let base = format!("{path}.rewrite");
            let (Some(regex), Some(replace)) = (&rw.get_ref().regex, &rw.get_ref().replace) else {
                r.error(
                    base,
                    Some(rw.span()),
                    "needs both `regex` and `replace`, e.g. { regex = \"^/users/(\\\\d+)$\", replace = \"/u/$1\" }",
                );
                return None;
            };
            let compiled = match regex::Regex::new(regex.get_ref()) {
                Ok(re) => Some(re),
                Err(e) => {
                    r.error(
                        format!("{base}.regex"),
                        Some(regex.span()),
                        format!("not a valid regex: {e}"),
                    );
                    None
                }
            };
            let replace_t = template(replace, &format!("{base}.replace"), Place::Rewrite, r);
            let (compiled, replace_t) = (compiled?, replace_t?);
            let groups = compiled.captures_len() - 1;
            let too_high = replace_t.parts.iter().find_map(|p| match p {
                Part::Var(Var::Capture(d)) if usize::from(*d) > groups => Some(*d),
                _ => None,
            });
            if let Some(d) = too_high {
                r.error(
                    format!("{base}.replace"),
                    Some(replace.span()),
                    format!("uses ${d}, but the regex has {groups} capture group(s)"),
                );
                return None;
            }
            if !replace_t.source.starts_with('/') && !replace_t.source.starts_with('$') {
                r.error(
                    format!("{base}.replace"),
                    Some(replace.span()),
                    "must start with \"/\" (or a capture that does)",
                );
                return None;
            }
            Some(PathRewrite::Regex {
                regex: regex.get_ref().clone(),
                replace: replace_t,
            })
        }
    }
}

fn query_rules(
    raw: &crate::raw::RawQueryRules,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<QueryRules> {
    let mut ok = true;
    let mut out = QueryRules::default();
    for (j, name) in raw.remove.iter().flatten().enumerate() {
        match text::query_param(name.get_ref()) {
            Ok(()) => out.remove.push(name.get_ref().clone()),
            Err(message) => {
                r.error(format!("{path}.remove[{j}]"), Some(name.span()), message);
                ok = false;
            }
        }
    }
    for (name, value) in raw.add.iter().flat_map(|h| &h.0) {
        let key = key_path(&format!("{path}.add"), name);
        if let Err(message) = text::query_param(name) {
            r.error(key, Some(value.span()), message);
            ok = false;
            continue;
        }
        let bad = value
            .get_ref()
            .chars()
            .find(|c| !c.is_ascii_graphic() || matches!(c, '&' | '#'));
        if let Some(c) = bad {
            r.error(
                key,
                Some(value.span()),
                format!("{c:?} cannot be written in a query value; percent-encode it"),
            );
            ok = false;
            continue;
        }
        match template(value, &key, Place::Request, r) {
            Some(t) => out.add.push((name.clone(), t)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn error_bodies(
    raw: Option<&Spanned<Vec<Spanned<RawErrorBody>>>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Vec<ErrorBody>> {
    let mut ok = true;
    let mut out: Vec<ErrorBody> = Vec::new();
    for (j, item) in raw
        .map(|v| v.get_ref().as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let base = format!("{path}.error-bodies[{j}]");
        let b = item.get_ref();
        let status = match &b.status {
            None => {
                r.error(
                    format!("{base}.status"),
                    Some(item.span()),
                    "missing; the status (400 to 599) whose answers get this body",
                );
                None
            }
            Some(s) => integer(s, &format!("{base}.status"), 400..=599, r)
                .and_then(|n| u16::try_from(n).ok()),
        };
        if let (Some(s), Some(raw_s)) = (status, &b.status) {
            if out.iter().any(|e| e.status == s) {
                r.error(
                    format!("{base}.status"),
                    Some(raw_s.span()),
                    format!("{s} already has a body in this route"),
                );
                ok = false;
            }
        }
        let content_type = match &b.content_type {
            None => Some("text/plain; charset=utf-8".to_owned()),
            Some(ct) => match text::header_value(ct.get_ref()) {
                Ok(()) if !ct.get_ref().trim().is_empty() => Some(ct.get_ref().clone()),
                Ok(()) => {
                    r.error(format!("{base}.content-type"), Some(ct.span()), "empty");
                    None
                }
                Err(message) => {
                    r.error(format!("{base}.content-type"), Some(ct.span()), message);
                    None
                }
            },
        };
        let body = match &b.body {
            None => {
                r.error(
                    format!("{base}.body"),
                    Some(item.span()),
                    "missing; the body to answer with",
                );
                None
            }
            Some(v) => parse_template(v.get_ref(), Place::ErrorBody)
                .map_err(|message| r.error(format!("{base}.body"), Some(v.span()), message))
                .ok(),
        };
        match (status, content_type, body) {
            (Some(status), Some(content_type), Some(body)) => out.push(ErrorBody {
                status,
                content_type,
                body,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// `[routes.redirect]`. `captures`: the route has a `rewrite` regex.
pub(super) fn redirect(
    raw: &Spanned<RawRedirect>,
    path: &str,
    captures: bool,
    r: &mut Reporter<'_>,
) -> Option<Redirect> {
    let b = raw.get_ref();
    let status = match &b.status {
        None => Some(302),
        Some(s) => match s.get_ref() {
            Scalar::Int(n @ (301 | 302 | 303 | 307 | 308)) => u16::try_from(*n).ok(),
            _ => {
                r.error(
                    format!("{path}.status"),
                    Some(s.span()),
                    "expected 301, 302, 303, 307 or 308",
                );
                None
            }
        },
    };
    let location = match &b.location {
        None => {
            r.error(
                format!("{path}.location"),
                Some(raw.span()),
                "missing; where to send the client, e.g. location = \"https://new.example.com$path$query\"",
            );
            None
        }
        Some(v) => template(
            v,
            &format!("{path}.location"),
            Place::Location { captures },
            r,
        ),
    };
    Some(Redirect {
        status: status?,
        location: location?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_variables_and_refuse_what_the_place_cannot_know() {
        let t =
            parse_template("a-$client_ip-${route}x$header:X-Id$$", Place::Request).expect("parses");
        assert_eq!(
            t.parts,
            vec![
                Part::Text("a-".into()),
                Part::Var(Var::ClientIp),
                Part::Text("-".into()),
                Part::Var(Var::Route),
                Part::Text("x".into()),
                Part::Var(Var::Header("x-id".into())),
                Part::Text("$".into()),
            ]
        );
        let table: &[(&str, Place, &str)] = &[
            (
                "$clinet_ip",
                Place::Request,
                "unknown variable `$clinet_ip`",
            ),
            ("$status", Place::Request, "known only once the upstream"),
            ("$status", Place::Response, ""),
            ("$1", Place::Response, "a capture can be used only"),
            ("$1", Place::Location { captures: false }, "has none"),
            ("$1$path$query", Place::Location { captures: true }, ""),
            ("$path", Place::Request, "only in a redirect"),
            ("${route", Place::Request, "without a closing"),
            ("$header:", Place::Request, "followed by a header name"),
        ];
        for (text, place, want) in table {
            match parse_template(text, *place) {
                Ok(_) => assert!(want.is_empty(), "{text} in {place:?} should fail"),
                Err(e) => assert!(
                    !want.is_empty() && e.contains(want),
                    "{text} in {place:?}: {e}"
                ),
            }
        }
    }
}
