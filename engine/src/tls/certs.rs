//! Certificates: loading and checking PEM files, and choosing one by SNI.
//!
//! A certificate is refused (with the file and the reason) when its file
//! cannot be read or holds no certificate, when the key cannot be read or
//! does not match the certificate, or when the certificate has expired or
//! is not valid yet. Its DNS names (or the names the config gives) decide
//! which SNI values select it: exact names first, then a `*.` wildcard
//! covering exactly one leftmost label, then, for a missing or unknown SNI,
//! the listener's first certificate unless the listener rejects those.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A loaded certificate and what the admin API shows of it.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) key: Arc<CertifiedKey>,
    /// Names that select it (lower-case; `*.x` for wildcards).
    pub(crate) names: Vec<String>,
    /// The leaf's subject, e.g. `CN=example.com`.
    pub(crate) subject: String,
    /// End of validity, seconds since the Unix epoch.
    pub(crate) not_after: i64,
}

/// Reads a certificate chain and its key from PEM files and checks them.
/// `names`: the names that select it; empty takes the certificate's own.
/// The error is the reason, naming the file.
pub(crate) fn load(
    cert: &Path,
    key: &Path,
    names: &[String],
    provider: &CryptoProvider,
) -> Result<Loaded, String> {
    let chain = read_chain(cert)?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, "a private key", &e))?;
    let certified = CertifiedKey::from_der(chain, key_der, provider)
        .map_err(|e| format!("{} does not go with {}: {e}", key.display(), cert.display()))?;
    let info = describe(&certified.cert[0]).map_err(|e| format!("{}: {e}", cert.display()))?;
    let now = unix_now();
    if info.not_after < now {
        return Err(format!(
            "{}: the certificate expired on {}",
            cert.display(),
            date(info.not_after)
        ));
    }
    if info.not_before > now {
        return Err(format!(
            "{}: the certificate is not valid before {}",
            cert.display(),
            date(info.not_before)
        ));
    }
    let names = if names.is_empty() {
        info.dns_names
    } else {
        names.to_vec()
    };
    Ok(Loaded {
        key: Arc::new(certified),
        names,
        subject: info.subject,
        not_after: info.not_after,
    })
}

/// Reads every certificate of a PEM file, leaf first.
pub(crate) fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, "certificates", &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(path, "certificates", &e))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(chain)
}

fn pem_error(path: &Path, what: &str, e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => format!("{}: cannot read: {io}", path.display()),
        rustls_pki_types::pem::Error::NoItemsFound => {
            format!("{}: no {what} in the file", path.display())
        }
        other => format!("{}: not a valid PEM file: {other:?}", path.display()),
    }
}

/// What a certificate says about itself.
pub(crate) struct Description {
    pub(crate) subject: String,
    pub(crate) dns_names: Vec<String>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
}

/// Parses a DER certificate's subject, DNS names and validity.
pub(crate) fn describe(der: &CertificateDer<'_>) -> Result<Description, String> {
    let (_, x509) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                dns_names.push(n.to_ascii_lowercase());
            }
        }
    }
    if dns_names.is_empty() {
        // Old certificates name their host only in the subject's CN.
        if let Some(cn) = x509.subject().iter_common_name().next() {
            if let Ok(cn) = cn.as_str() {
                dns_names.push(cn.to_ascii_lowercase());
            }
        }
    }
    Ok(Description {
        subject: rfc4514(x509.subject()),
        dns_names,
        not_before: x509.validity().not_before.timestamp(),
        not_after: x509.validity().not_after.timestamp(),
    })
}

/// A distinguished name as RFC 4514 writes it (last RDN first, `,`
/// between RDNs, `+` inside one), every value escaped so the result is one
/// unambiguous line of printable ASCII: the specials of §2.4 get a
/// backslash, and any other byte outside printable ASCII (a control
/// character, a line break, UTF-8) is written `\XX`. Values that are not
/// strings are written `#` and their bytes in hex. Such a name is safe to
/// put in a header: a certificate cannot inject a line or fake a second
/// attribute.
pub(crate) fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    use std::fmt::Write as _;
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match x509_parser::objects::oid2abbrev(attr.attr_type(), registry) {
                Ok(short) => out.push_str(short),
                Err(_) => out.push_str(&attr.attr_type().to_id_string()),
            }
            out.push('=');
            match attr.as_str() {
                Ok(value) => {
                    let bytes = value.as_bytes();
                    for (k, &b) in bytes.iter().enumerate() {
                        let edge = (k == 0 && (b == b' ' || b == b'#'))
                            || (k + 1 == bytes.len() && b == b' ');
                        if matches!(b, b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\') || edge {
                            out.push('\\');
                            out.push(b as char);
                        } else if (0x20..0x7f).contains(&b) {
                            out.push(b as char);
                        } else {
                            let _ = write!(out, "\\{b:02X}");
                        }
                    }
                }
                Err(_) => {
                    out.push('#');
                    for b in attr.as_slice() {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            }
        }
    }
    out
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A date as `YYYY-MM-DD` (UTC).
pub(crate) fn date(unix: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    let text = httpdate::fmt_http_date(t);
    // "Sun, 06 Nov 1994 08:49:37 GMT" → "06 Nov 1994"
    text.get(5..16).unwrap_or(&text).to_string()
}

/// Is `e` rustls refusing a handshake because [`SniResolver`] had no
/// certificate for the name (`unknown-sni = "reject"`)? rustls reports it
/// only as this message.
pub(crate) fn is_unknown_sni(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::General(m) if m.contains("no server certificate"))
}

/// Chooses a listener's certificate by SNI.
#[derive(Debug)]
pub(crate) struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the suffix after `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// For a missing or unknown SNI; `None` rejects the handshake.
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// `certs` in config order; the first is the default when
    /// `default_for_unknown`.
    pub(crate) fn new(certs: &[Loaded], default_for_unknown: bool) -> SniResolver {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for c in certs {
            for name in &c.names {
                let name = name.to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(suffix) => wildcard.entry(suffix.to_string()),
                    None => exact.entry(name),
                }
                .or_insert_with(|| c.key.clone());
            }
        }
        SniResolver {
            exact,
            wildcard,
            default: default_for_unknown
                .then(|| certs.first().map(|c| c.key.clone()))
                .flatten(),
        }
    }

    /// The certificate for `sni`.
    pub(crate) fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = sni else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return Some(k.clone());
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return Some(k.clone());
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}
