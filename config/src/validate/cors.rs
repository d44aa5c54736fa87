//! `[routes.cors]` → [`Cors`]: which origins, methods and headers a
//! route allows browsers on other origins to use.
//!
//! Origins are checked and stored the way browsers send them (scheme and
//! host lower-case, a scheme's default port left out), so the engine
//! compares bytes: `https://APP.example.com:443` is kept as
//! `https://app.example.com`. A pattern keeps its scheme and port:
//! `https://*.example.com` allows `https://a.example.com` and
//! `https://a.b.example.com`, not `http://a.example.com` nor the apex.
//! An IPv6 literal is kept compressed (RFC 5952), as browsers send it.
//! `"*"` allows every origin and must stand alone; it cannot go with
//! `allow-credentials`, which browsers refuse to combine with a wildcard
//! (Fetch standard, CORS check), so the pair is an error rather than a
//! route no credentialed page can use. `"null"` (the origin of sandboxed
//! frames and local files, which any page can produce) is refused.

use std::fmt;
use std::net::Ipv6Addr;
use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::{bounded_duration, text, unique_list};
use crate::error::Reporter;
use crate::model::{AllowOrigins, Cors, HostMatch, OriginPattern};
use crate::raw::RawCors;

/// `max-age` bounds.
const MAX_AGE: RangeInclusive<Duration> = Duration::ZERO..=Cors::MAX_AGE;

/// `[routes.cors]` of route `path` (`routes[i]`): `Some(None)` without the
/// table, `None` when anything in it was reported.
pub(super) fn route_cors(
    raw: Option<&Spanned<RawCors>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Option<Cors>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let path = format!("{path}.cors");
    let key = |k: &str| format!("{path}.{k}");
    let t = raw.get_ref();

    let allow_origins = match &t.allow_origins {
        None => {
            r.error(
                key("allow-origins"),
                Some(raw.span()),
                "missing; list the origins whose pages may call this route, e.g. \
                 [\"https://app.example.com\"], or [\"*\"] for any",
            );
            None
        }
        Some(list) => allow_origins(list, &key("allow-origins"), r),
    };
    let allow_methods = match &t.allow_methods {
        None => Some(Cors::DEFAULT_METHODS.iter().map(|&m| m.to_owned()).collect()),
        Some(list) => unique_list(
            list,
            &key("allow-methods"),
            Some("empty; leave allow-methods out for the default (GET, HEAD, PUT, PATCH, POST, DELETE)"),
            |m: &String| text::method(m).map(|()| m.clone()),
            r,
        ),
    };
    let allow_headers = header_list(
        t.allow_headers.as_ref(),
        &key("allow-headers"),
        "leave allow-headers out to allow whatever headers a preflight asks for",
        r,
    );
    let expose_headers = header_list(
        t.expose_headers.as_ref(),
        &key("expose-headers"),
        "browsers treat \"*\" literally on credentialed requests; list the headers",
        r,
    );
    let allow_credentials = t.allow_credentials.as_ref().is_some_and(|c| *c.get_ref());
    let credentials_ok = match (&allow_origins, &t.allow_credentials) {
        (Some(AllowOrigins::Any), Some(c)) if *c.get_ref() => {
            r.error(
                key("allow-credentials"),
                Some(c.span()),
                "cannot go with allow-origins = [\"*\"]: browsers refuse credentialed \
                 answers for any origin; list the origins instead",
            );
            false
        }
        _ => true,
    };
    let max_age = match &t.max_age {
        None => Some(None),
        Some(v) => bounded_duration(v, &key("max-age"), MAX_AGE, r).and_then(|d| {
            if d.subsec_nanos() == 0 {
                Some(Some(d))
            } else {
                r.error(
                    key("max-age"),
                    Some(v.span()),
                    "Access-Control-Max-Age counts whole seconds; write a whole number of seconds",
                );
                None
            }
        }),
    };
    let cors = Cors {
        allow_origins: allow_origins?,
        allow_methods: allow_methods?,
        allow_headers: allow_headers?,
        expose_headers: expose_headers?,
        allow_credentials,
        max_age: max_age?,
        allow_private_network: t.allow_private_network.unwrap_or(false),
    };
    credentials_ok.then_some(Some(cors))
}

/// One entry of `allow-origins` as checked: `*` or an origin or pattern.
#[derive(Debug, PartialEq)]
enum Entry {
    Any,
    Origin(OriginPattern),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Any => f.write_str("\"*\""),
            Entry::Origin(o) => write!(f, "{:?}", o.to_string()),
        }
    }
}

fn allow_origins(
    list: &Spanned<Vec<Spanned<String>>>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<AllowOrigins> {
    let entries = unique_list(
        list,
        path,
        Some("empty; list the origins whose pages may call this route, or [\"*\"] for any"),
        |o: &String| origin(o),
        r,
    )?;
    if entries.contains(&Entry::Any) {
        if entries.len() == 1 {
            return Some(AllowOrigins::Any);
        }
        let j = list
            .get_ref()
            .iter()
            .position(|o| o.get_ref() == "*")
            .unwrap_or(0);
        r.error(
            format!("{path}[{j}]"),
            Some(list.get_ref()[j].span()),
            "\"*\" allows every origin; it must be the only entry",
        );
        return None;
    }
    Some(AllowOrigins::List(
        entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Origin(o) => Some(o),
                Entry::Any => None,
            })
            .collect(),
    ))
}

/// A header name in a CORS list: compared ignoring case, kept as written.
struct Name(String);

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// `allow-headers` or `expose-headers`: header names, none twice (ignoring
/// case), never `*` (`why_not_star` says what to do instead).
fn header_list(
    list: Option<&Spanned<Vec<Spanned<String>>>>,
    path: &str,
    why_not_star: &str,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    let Some(list) = list else {
        return Some(Vec::new());
    };
    let names = unique_list(
        list,
        path,
        None,
        |h: &String| {
            if h == "*" {
                return Err(format!("\"*\" is not allowed here: {why_not_star}"));
            }
            text::header_token(h).map(|_| Name(h.clone()))
        },
        r,
    )?;
    Some(names.into_iter().map(|n| n.0).collect())
}

/// An `allow-origins` entry: `*`, an origin, or a pattern
/// `scheme://*.domain[:port]`.
fn origin(text: &str) -> Result<Entry, String> {
    const FORM: &str = "write scheme://host[:port], e.g. \"https://app.example.com\"";
    if text == "*" {
        return Ok(Entry::Any);
    }
    if text.eq_ignore_ascii_case("null") {
        return Err(
            "\"null\" is the origin of sandboxed frames and local files, which any \
                    page can produce; it cannot be allowed"
                .into(),
        );
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!("{text:?} is not an origin; {FORM}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(format!("{text:?}: {scheme:?} is not a URL scheme; {FORM}"));
    }
    if let Some(i) = rest.find(['/', '?', '#']) {
        return Err(format!(
            "{text:?}: an origin has no path; write {:?}",
            format!("{scheme}://{}", &rest[..i])
        ));
    }
    if rest.contains('@') {
        return Err(format!("{text:?}: an origin has no user name; {FORM}"));
    }
    // The port follows the host; an IPv6 literal has colons of its own.
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("{text:?}: the port must be 1 to 65535")),
        },
    };
    // Browsers leave a scheme's default port out of the origins they send.
    let default_port = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    let port = port.filter(|&p| Some(p) != default_port);
    if host.is_empty() {
        return Err(format!("{text:?}: the host is missing; {FORM}"));
    }
    if host == "*" {
        return Err(format!(
            "{text:?}: write \"*\" alone for every origin, or name the domain, as in \
             \"{scheme}://*.example.com\""
        ));
    }
    let port_text = port.map_or_else(String::new, |p| format!(":{p}"));
    match text::host_match(host).map_err(|e| format!("{text:?}: {e}"))? {
        // An IPv6 literal as browsers serialize it (RFC 5952: compressed).
        HostMatch::Exact(host) if host.starts_with('[') => {
            let ip: Ipv6Addr = host[1..host.len() - 1]
                .parse()
                .map_err(|_| format!("{text:?} is not a valid bracketed IPv6 address"))?;
            Ok(Entry::Origin(OriginPattern::Exact(format!(
                "{scheme}://[{ip}]{port_text}"
            ))))
        }
        HostMatch::Exact(host) => Ok(Entry::Origin(OriginPattern::Exact(format!(
            "{scheme}://{host}{port_text}"
        )))),
        HostMatch::Suffix(suffix) => Ok(Entry::Origin(OriginPattern::Subdomains {
            scheme,
            suffix,
            port,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(s: &str) -> Result<Entry, String> {
        Ok(Entry::Origin(OriginPattern::Exact(s.into())))
    }

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        let cases: &[(&str, Result<Entry, String>)] = &[
            ("*", Ok(Entry::Any)),
            ("https://app.example.com", exact("https://app.example.com")),
            ("HTTPS://App.Example.COM", exact("https://app.example.com")),
            (
                "https://app.example.com:443",
                exact("https://app.example.com"),
            ),
            ("http://app.example.com:80", exact("http://app.example.com")),
            ("http://127.0.0.1:8080", exact("http://127.0.0.1:8080")),
            ("https://127.0.0.1:80", exact("https://127.0.0.1:80")),
            ("http://[::1]:3000", exact("http://[::1]:3000")),
            ("http://[::1]", exact("http://[::1]")),
            ("http://[0:0::1]:80", exact("http://[::1]")),
            (
                "http://[2001:DB8:0:0::1]:8080",
                exact("http://[2001:db8::1]:8080"),
            ),
            ("http://localhost", exact("http://localhost")),
            (
                "https://*.example.com",
                Ok(Entry::Origin(OriginPattern::Subdomains {
                    scheme: "https".into(),
                    suffix: ".example.com".into(),
                    port: None,
                })),
            ),
            (
                "http://*.Example.com:8080",
                Ok(Entry::Origin(OriginPattern::Subdomains {
                    scheme: "http".into(),
                    suffix: ".example.com".into(),
                    port: Some(8080),
                })),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&origin(input), want, "{input:?}");
        }
    }

    #[test]
    fn bad_origins_say_why() {
        let cases = [
            ("null", "sandboxed"),
            ("app.example.com", "not an origin"),
            (
                "https://app.example.com/",
                "no path; write \"https://app.example.com\"",
            ),
            ("https://app.example.com/x?y", "no path"),
            ("https://u@app.example.com", "user name"),
            ("https://app.example.com:0", "port must be 1 to 65535"),
            ("https://app.example.com:99999", "port must be 1 to 65535"),
            ("https://app.example.com:+80", "port must be 1 to 65535"),
            ("https://", "host is missing"),
            ("https://*", "write \"*\" alone"),
            ("https://a.*.example.com", "wildcard"),
            ("1http://a.com", "not a URL scheme"),
            ("https://[::1", "IPv6"),
        ];
        for (input, fragment) in cases {
            match origin(input) {
                Err(e) => assert!(e.contains(fragment), "{input:?}: {e:?} lacks {fragment:?}"),
                Ok(v) => panic!("{input:?} accepted as {v:?}"),
            }
        }
    }

    #[test]
    fn patterns_display_as_written() {
        for text in [
            "https://*.example.com",
            "http://*.example.com:8080",
            "http://[::1]:1",
        ] {
            match origin(text) {
                Ok(Entry::Origin(o)) => assert_eq!(o.to_string(), text),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
