//! TLS: `[listeners.tls]` → [`ListenerTls`], `[upstreams.tls]` →
//! [`UpstreamTls`], and a route's `redirect-https`, `https-port`, `hsts`
//! and `require-client-cert`.
//!
//! Shapes only: certificate, key and CA files are paths, checked to be
//! non-empty and kept as written (a relative path is not resolved against
//! the config file's directory, exactly like `jwks-file`), and never read
//! here. The engine reads and parses them, since that needs the crypto
//! this crate does not link, and reports what it cannot use.
//!
//! The cipher suites on offer are the TLS 1.3 suites and the ECDHE AEAD
//! suites of TLS 1.2 (forward secrecy and authenticated encryption only,
//! as RFC 9325 §4.2 recommends); TLS 1.0 and 1.1 cannot be chosen at all
//! (RFC 8996). As elsewhere in this crate, a setting that could not take
//! effect is an error: a list that leaves no suite for a version the
//! listener accepts, a TLS 1.2 suite under `min-version = "1.3"`, an
//! `https-port` without `redirect-https`.
//!
//! Three settings are allowed but load with a warning, since each is
//! usually a mistake yet harmless to load: `verify = false` on an upstream
//! (anyone on the path can pose as its servers), and on a route
//! `require-client-cert` when no listener asks for client certificates
//! (every request gets 403) or `redirect-https` when no listener has TLS
//! (every request is sent to an HTTPS endpoint this gateway does not
//! serve).

use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{bounded_duration, defaults, integer, show, text};
use crate::error::Reporter;
use crate::model::{
    CertificateFiles, ClientAuth, ClientAuthMode, ListenerTls, TlsVersion, UnknownSni, UpstreamTls,
};
use crate::raw::{
    Item, RawCertificate, RawClientAuth, RawListener, RawListenerTls, RawRoute, RawUpstream, Scalar,
};

/// `handshake-timeout` bounds: a real client finishes in a few round
/// trips; a minute is generous on any link, and a longer wait only holds
/// sockets for clients that never finish.
const HANDSHAKE_TIMEOUT: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(60);
/// `ticket-lifetime` bounds: rotating more often than every minute makes
/// most tickets useless; past 6 h the engine's ticket keys (aws-lc-rs's
/// own construction, which replaces its key every 6 h) would not honour
/// the setting, and a key kept longer weakens forward secrecy for every
/// session it encrypted.
const TICKET_LIFETIME: RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(6 * 3600);
/// `session-cache` bounds: 0 disables; a million sessions is hundreds of
/// MiB per worker.
const SESSION_CACHE: RangeInclusive<i64> = 0..=1_000_000;
/// Prefix of the TLS 1.3 names in [`ListenerTls::CIPHER_SUITES`].
const TLS13_PREFIX: &str = "TLS13_";

/// A `[[listeners]]` element's TLS: `Some(None)` without `[listeners.tls]`,
/// `None` when anything was reported. `path` is `listeners[i]`.
pub(super) fn listener(
    raw: &RawListener,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Option<ListenerTls>> {
    let misplaced = raw.client_auth.as_ref().inspect(|c| {
        r.error(
            format!("{path}.client-auth"),
            Some(c.span()),
            "client certificates are part of the TLS handshake: write the table as \
             [listeners.tls.client-auth], under [listeners.tls]",
        );
    });
    let tls = match &raw.tls {
        None => Some(None),
        Some(tls) => listener_tls(tls, &format!("{path}.tls"), r).map(Some),
    };
    tls.filter(|_| misplaced.is_none())
}

fn listener_tls(
    raw: &Spanned<RawListenerTls>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<ListenerTls> {
    let t = raw.get_ref();
    let key = |k: &str| format!("{path}.{k}");

    let certificates = certificates(t.certificates.as_ref(), path, raw.span(), r);
    let unknown_sni = match &t.unknown_sni {
        None => Some(UnknownSni::Default),
        Some(v) => match v.get_ref().as_str() {
            "default" => Some(UnknownSni::Default),
            "reject" => Some(UnknownSni::Reject),
            other => {
                r.error(
                    key("unknown-sni"),
                    Some(v.span()),
                    format!("expected \"default\" or \"reject\", found {other:?}"),
                );
                None
            }
        },
    };
    let min_version = match &t.min_version {
        None => Some(TlsVersion::Tls12),
        Some(v) => min_version(v, &key("min-version"), r),
    };
    let cipher_suites = match &t.cipher_suites {
        None => Some(Vec::new()),
        Some(list) => cipher_suites(list, &key("cipher-suites"), min_version, r),
    };
    let handshake_timeout = t
        .handshake_timeout
        .as_ref()
        .map_or(Some(defaults::TLS_HANDSHAKE_TIMEOUT), |v| {
            bounded_duration(v, &key("handshake-timeout"), HANDSHAKE_TIMEOUT, r)
        });
    let session_cache = t
        .session_cache
        .as_ref()
        .map_or(Some(defaults::TLS_SESSION_CACHE), |v| {
            integer(v, &key("session-cache"), SESSION_CACHE, r)
                .and_then(|n| usize::try_from(n).ok())
        });
    let ticket_lifetime = t
        .ticket_lifetime
        .as_ref()
        .map_or(Some(defaults::TLS_TICKET_LIFETIME), |v| {
            bounded_duration(v, &key("ticket-lifetime"), TICKET_LIFETIME, r)
        });
    let client_auth = match &t.client_auth {
        None => Some(None),
        Some(c) => client_auth(c, &key("client-auth"), r).map(Some),
    };

    Some(ListenerTls {
        certificates: certificates?,
        unknown_sni: unknown_sni?,
        min_version: min_version?,
        cipher_suites: cipher_suites?,
        handshake_timeout: handshake_timeout?,
        session_cache: session_cache?,
        session_tickets: t.session_tickets.unwrap_or(true),
        ticket_lifetime: ticket_lifetime?,
        client_auth: client_auth?,
    })
}

fn certificates(
    raw: Option<&Spanned<Vec<Spanned<RawCertificate>>>>,
    path: &str,
    table: Range<usize>,
    r: &mut Reporter<'_>,
) -> Option<Vec<CertificateFiles>> {
    let key = format!("{path}.certificates");
    let Some(list) = raw else {
        r.error(
            key,
            Some(table),
            "missing; list at least one certificate, e.g. \
             certificates = [{ cert = \"example.com.pem\", key = \"example.com.key\" }]",
        );
        return None;
    };
    if list.get_ref().is_empty() {
        r.error(
            key,
            Some(list.span()),
            "must list at least one certificate; the first is the one served by default",
        );
        return None;
    }
    // Each name claimed so far, with the entry and index it was listed at.
    let mut claimed: HashMap<String, (usize, usize)> = HashMap::new();
    let mut out = Vec::with_capacity(list.get_ref().len());
    for (j, entry) in list.get_ref().iter().enumerate() {
        let c = entry.get_ref();
        let entry_path = format!("{key}[{j}]");
        let cert = file(
            c.cert.as_ref(),
            &format!("{entry_path}.cert"),
            &entry.span(),
            "missing; the path of the PEM certificate chain, leaf first, e.g. \
             cert = \"/etc/ringway/example.com.pem\"",
            r,
        );
        let key_file = file(
            c.key.as_ref(),
            &format!("{entry_path}.key"),
            &entry.span(),
            "missing; the path of the certificate's PEM private key, e.g. \
             key = \"/etc/ringway/example.com.key\"",
            r,
        );
        let names = match &c.names {
            None => Some(Vec::new()),
            Some(names) => sni_names(names, &entry_path, j, &mut claimed, r),
        };
        out.push(match (cert, key_file, names) {
            (Some(cert), Some(key), Some(names)) => Some(CertificateFiles { cert, key, names }),
            _ => None,
        });
    }
    out.into_iter().collect()
}

/// The `names` of `certificates[j]`, checked against every name claimed
/// by an earlier entry (or earlier in this one).
fn sni_names(
    list: &Spanned<Vec<Spanned<String>>>,
    entry_path: &str,
    j: usize,
    claimed: &mut HashMap<String, (usize, usize)>,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    let key = format!("{entry_path}.names");
    if list.get_ref().is_empty() {
        r.error(
            key,
            Some(list.span()),
            "lists no names; leave `names` out to serve the certificate for the DNS names it holds",
        );
        return None;
    }
    let mut out = Vec::with_capacity(list.get_ref().len());
    let mut ok = true;
    for (k, name) in list.get_ref().iter().enumerate() {
        let problem = match text::sni_name(name.get_ref()) {
            Err(message) => Some(message),
            Ok(lower) => match claimed.get(&lower) {
                Some(&(first, at)) => Some(format!(
                    "{:?} is already listed as certificates[{first}].names[{at}]; a name \
                     selects one certificate",
                    name.get_ref()
                )),
                None => {
                    claimed.insert(lower.clone(), (j, k));
                    out.push(lower);
                    None
                }
            },
        };
        if let Some(message) = problem {
            r.error(format!("{key}[{k}]"), Some(name.span()), message);
            ok = false;
        }
    }
    ok.then_some(out)
}

/// A file path key: `missing` says what goes there when it is required
/// and absent; an empty path is an error.
fn file(
    raw: Option<&Spanned<String>>,
    path: &str,
    element: &Range<usize>,
    missing: &str,
    r: &mut Reporter<'_>,
) -> Option<PathBuf> {
    match raw {
        None => {
            r.error(path, Some(element.clone()), missing);
            None
        }
        Some(p) => optional_file(p, path, r),
    }
}

/// A file path that was written: not empty, kept as written.
fn optional_file(raw: &Spanned<String>, path: &str, r: &mut Reporter<'_>) -> Option<PathBuf> {
    if raw.get_ref().is_empty() {
        r.error(path, Some(raw.span()), "empty path");
        return None;
    }
    Some(PathBuf::from(raw.get_ref()))
}

fn min_version(value: &Spanned<Scalar>, path: &str, r: &mut Reporter<'_>) -> Option<TlsVersion> {
    let problem = match value.get_ref() {
        Scalar::Str(s) if s == "1.2" => return Some(TlsVersion::Tls12),
        Scalar::Str(s) if s == "1.3" => return Some(TlsVersion::Tls13),
        Scalar::Float(f) if *f == 1.2 || *f == 1.3 => {
            format!("write the version as a string: \"{f}\"")
        }
        Scalar::Str(s) if matches!(s.as_str(), "1.0" | "1.1") => format!(
            "TLS {s} is deprecated (RFC 8996) and cannot be enabled; use \"1.2\" or \"1.3\""
        ),
        other => format!("expected \"1.2\" or \"1.3\", found {}", show(other)),
    };
    r.error(path, Some(value.span()), problem);
    None
}

/// `cipher-suites`; `min_version` is `None` when it failed, and then the
/// list is not judged against it.
fn cipher_suites(
    list: &Spanned<Vec<Spanned<String>>>,
    path: &str,
    min_version: Option<TlsVersion>,
    r: &mut Reporter<'_>,
) -> Option<Vec<String>> {
    if list.get_ref().is_empty() {
        r.error(
            path,
            Some(list.span()),
            "lists no suites; leave `cipher-suites` out for the default suites",
        );
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(list.get_ref().len());
    let mut ok = true;
    for (j, entry) in list.get_ref().iter().enumerate() {
        let written = entry.get_ref().as_str();
        let problem = cipher_suite(written).err().or_else(|| {
            out.iter()
                .position(|seen| seen == written)
                .map(|first| format!("{written:?} is already listed as cipher-suites[{first}]"))
        });
        match problem {
            Some(message) => {
                r.error(format!("{path}[{j}]"), Some(entry.span()), message);
                ok = false;
            }
            None => out.push(written.to_owned()),
        }
    }
    if !ok {
        return None;
    }
    if min_version == Some(TlsVersion::Tls13) {
        if !out.iter().any(|s| s.starts_with(TLS13_PREFIX)) {
            r.error(
                path,
                Some(list.span()),
                "min-version = \"1.3\" needs a TLS 1.3 suite (TLS13_...), and none is listed",
            );
            return None;
        }
        // A TLS 1.2 suite could never be negotiated; say so once per suite.
        for (j, suite) in out.iter().enumerate() {
            if !suite.starts_with(TLS13_PREFIX) {
                r.error(
                    format!("{path}[{j}]"),
                    Some(list.get_ref()[j].span()),
                    format!(
                        "{suite:?} is a TLS 1.2 suite, which min-version = \"1.3\" never uses; \
                         remove it"
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// One cipher suite name, exactly as [`ListenerTls::CIPHER_SUITES`]
/// spells it.
pub(crate) fn cipher_suite(text: &str) -> Result<(), String> {
    let all = ListenerTls::CIPHER_SUITES;
    if all.contains(&text) {
        return Ok(());
    }
    if let Some(name) = all.iter().find(|n| n.eq_ignore_ascii_case(text)) {
        return Err(format!(
            "{text:?}: cipher suite names are upper-case; write {name:?}"
        ));
    }
    // The IANA names of the TLS 1.3 suites lack the version: TLS_AES_...
    let tls13 = text
        .strip_prefix("TLS_")
        .map(|rest| format!("{TLS13_PREFIX}{rest}"));
    if let Some(name) = tls13.filter(|n| all.contains(&n.as_str())) {
        return Err(format!(
            "{text:?}: write {name:?}, the name used here for this TLS 1.3 suite"
        ));
    }
    Err(format!(
        "unknown cipher suite {text:?}; use one of {}",
        all.join(", ")
    ))
}

fn client_auth(
    raw: &Spanned<RawClientAuth>,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<ClientAuth> {
    let c = raw.get_ref();
    let mode = match &c.mode {
        None => {
            r.error(
                format!("{path}.mode"),
                Some(raw.span()),
                "missing; set mode = \"required\" (a handshake without a valid client \
                 certificate fails) or \"optional\" (routes decide, with require-client-cert)",
            );
            None
        }
        Some(m) => match m.get_ref().as_str() {
            "required" => Some(ClientAuthMode::Required),
            "optional" => Some(ClientAuthMode::Optional),
            other => {
                r.error(
                    format!("{path}.mode"),
                    Some(m.span()),
                    format!("expected \"required\" or \"optional\", found {other:?}"),
                );
                None
            }
        },
    };
    let ca = file(
        c.ca.as_ref(),
        &format!("{path}.ca"),
        &raw.span(),
        "missing; the path of the PEM bundle of CAs that client certificates must chain to, \
         e.g. ca = \"/etc/ringway/clients-ca.pem\"",
        r,
    );
    let subject_header = match &c.subject_header {
        None => Some(defaults::TLS_SUBJECT_HEADER.to_owned()),
        Some(h) => text::upstream_header(h.get_ref())
            .map_err(|message| r.error(format!("{path}.subject-header"), Some(h.span()), message))
            .ok(),
    };
    Some(ClientAuth {
        mode: mode?,
        ca: ca?,
        subject_header: subject_header?,
    })
}

/// An `[[upstreams]]` element's TLS: `Some(None)` without
/// `[upstreams.tls]`, `None` when anything was reported. `path` is
/// `upstreams[i]`.
pub(super) fn upstream(
    raw: &RawUpstream,
    path: &str,
    r: &mut Reporter<'_>,
) -> Option<Option<UpstreamTls>> {
    let Some(raw) = &raw.tls else {
        return Some(None);
    };
    let path = format!("{path}.tls");
    let t = raw.get_ref();
    let key = |k: &str| format!("{path}.{k}");

    let ca = match &t.ca {
        None => Some(None),
        Some(p) => optional_file(p, &key("ca"), r).map(Some),
    };
    let server_name = match &t.server_name {
        None => Some(None),
        Some(n) => text::server_name(n.get_ref())
            .map(Some)
            .map_err(|message| r.error(key("server-name"), Some(n.span()), message))
            .ok(),
    };
    let verify = t.verify.as_ref().is_none_or(|v| *v.get_ref());
    if let Some(v) = t.verify.as_ref().filter(|_| !verify) {
        r.warn(
            key("verify"),
            Some(v.span()),
            "server certificates are not verified: anyone on the path to these servers can \
             pose as them and read the traffic; to trust a private CA, set `ca` instead",
        );
    }
    let pair = |present: &str, missing: &str| {
        format!("`{missing}` is missing: `{present}` and `{missing}` are given together")
    };
    let (client_cert, client_key) = match (&t.client_cert, &t.client_key) {
        (None, None) => (Some(None), Some(None)),
        (Some(c), None) => {
            r.error(
                key("client-cert"),
                Some(c.span()),
                pair("client-cert", "client-key"),
            );
            (None, None)
        }
        (None, Some(k)) => {
            r.error(
                key("client-key"),
                Some(k.span()),
                pair("client-key", "client-cert"),
            );
            (None, None)
        }
        (Some(c), Some(k)) => (
            optional_file(c, &key("client-cert"), r).map(Some),
            optional_file(k, &key("client-key"), r).map(Some),
        ),
    };
    Some(Some(UpstreamTls {
        ca: ca?,
        server_name: server_name?,
        verify,
        client_cert: client_cert?,
        client_key: client_key?,
        sni: t.sni.unwrap_or(true),
    }))
}

/// What routes need to know of the listeners, judged by what is written
/// so that a listener with a mistake elsewhere still counts.
pub(super) struct Listening {
    /// Some listener has `[listeners.tls]`.
    tls: bool,
    /// Some listener has `[listeners.tls.client-auth]`.
    client_auth: bool,
}

impl Listening {
    pub(super) fn new(items: &[Item<RawListener>]) -> Self {
        let tls = || items.iter().filter_map(|i| i.value.as_ref()?.tls.as_ref());
        Listening {
            tls: tls().next().is_some(),
            client_auth: tls().any(|t| t.get_ref().client_auth.is_some()),
        }
    }
}

/// The TLS fields of a `Route`.
pub(super) struct RouteTls {
    pub(super) redirect_https: bool,
    pub(super) https_port: Option<u16>,
    pub(super) hsts: Option<String>,
    pub(super) require_client_cert: bool,
}

/// A route's TLS keys; `path` is `routes[i]`.
pub(super) fn route(
    raw: &RawRoute,
    path: &str,
    listening: &Listening,
    r: &mut Reporter<'_>,
) -> Option<RouteTls> {
    let key = |k: &str| format!("{path}.{k}");
    // Each boolean where it is written true, for the warnings.
    let redirect = raw.redirect_https.as_ref().filter(|v| *v.get_ref());
    let require_cert = raw.require_client_cert.as_ref().filter(|v| *v.get_ref());
    let redirect_https = redirect.is_some();
    if let Some(v) = redirect.filter(|_| !listening.tls) {
        r.warn(
            key("redirect-https"),
            Some(v.span()),
            "no listener has [listeners.tls], so every request to this route arrives over \
             plain HTTP and is redirected to an HTTPS port this gateway does not serve",
        );
    }
    if let Some(v) = require_cert.filter(|_| !listening.client_auth) {
        r.warn(
            key("require-client-cert"),
            Some(v.span()),
            "no listener asks for client certificates ([listeners.tls.client-auth]), so \
             every request to this route will get 403",
        );
    }
    let https_port = match &raw.https_port {
        None => Some(None),
        Some(v) if !redirect_https => {
            r.error(
                key("https-port"),
                Some(v.span()),
                "applies only with redirect-https = true: it is the port of the redirect's \
                 Location",
            );
            None
        }
        Some(v) => integer(v, &key("https-port"), 1..=65535, r)
            .and_then(|n| u16::try_from(n).ok())
            .map(Some),
    };
    let hsts = match &raw.hsts {
        None => Some(None),
        Some(v) => text::hsts(v.get_ref())
            .map(|()| Some(v.get_ref().clone()))
            .map_err(|message| r.error(key("hsts"), Some(v.span()), message))
            .ok(),
    };
    Some(RouteTls {
        redirect_https,
        https_port: https_port?,
        hsts: hsts?,
        require_client_cert: require_cert.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suite_names() {
        for name in ListenerTls::CIPHER_SUITES {
            assert_eq!(cipher_suite(name), Ok(()));
        }
        let bad = [
            (
                "tls13_aes_128_gcm_sha256",
                "upper-case; write \"TLS13_AES_128_GCM_SHA256\"",
            ),
            (
                "TLS_AES_256_GCM_SHA384",
                "write \"TLS13_AES_256_GCM_SHA384\"",
            ),
            (
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "unknown cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\"; use one of \
                 TLS13_AES_256_GCM_SHA384, ",
            ),
            ("ECDHE-RSA-AES128-GCM-SHA256", "unknown cipher suite"),
            ("", "unknown cipher suite"),
        ];
        for (text, fragment) in bad {
            let e = cipher_suite(text).expect_err(text);
            assert!(e.contains(fragment), "{text:?}: {e}");
        }
    }
}
