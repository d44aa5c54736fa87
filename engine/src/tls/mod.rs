//! TLS at the edge (rustls with the aws-lc-rs provider): per-listener
//! server configs compiled from the config, certificates chosen by SNI,
//! client certificates, and the stream that carries HTTP over TLS.
//!
//! A listener's [`ListenerTls`] is built when a config is compiled (so a
//! reload re-reads the certificate files, and a bad file refuses the
//! reload with its path). Each worker then clones the server config with a
//! session cache of its own, so resuming a session never takes a lock
//! shared with other cores; session tickets use one key set per listener,
//! shared by all workers and kept across reloads while the listener's
//! ticket settings are unchanged, so a client may resume on any worker.

pub(crate) mod certs;
pub(crate) mod client;
pub(crate) mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ringway_config::{
    ClientAuthMode, ConfigError, Listener, ListenerTls as TlsSettings, TlsVersion, UnknownSni,
};
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};

/// What the admin API shows of a certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertStatus {
    pub(crate) file: String,
    pub(crate) names: Vec<String>,
    pub(crate) subject: String,
    pub(crate) not_after: i64,
}

/// A listener's compiled TLS settings.
pub(crate) struct ListenerTls {
    /// The listener's configured address (how workers find it).
    pub(crate) configured: SocketAddr,
    /// Shared by the workers, each of which adds its own session cache.
    pub(crate) base: Arc<ServerConfig>,
    pub(crate) session_cache: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) certs: Vec<CertStatus>,
    /// Set when client certificates are asked for: the request header
    /// that carries the verified subject upstream.
    pub(crate) subject_header: Option<String>,
    /// The ticket keys, and what they were made for (to keep them over a
    /// reload only when nothing a resumed session skips has changed).
    tickets: Option<(Arc<dyn rustls::server::ProducesTickets>, TicketScope)>,
}

/// What ticket keys may be kept across a reload for: the same lifetime,
/// and the same client-certificate policy. A resumed session is not
/// verified again (rustls restores the chain the ticket carries), so keys
/// made under another mode or CA bundle would let a client resume past a
/// policy that now refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TicketScope {
    lifetime: Duration,
    client_auth: Option<(ClientAuthMode, Vec<u8>)>,
}

/// The crypto provider for a listener: aws-lc-rs, its cipher suites
/// narrowed to the configured ones (names as rustls spells them).
pub(crate) fn provider(suites: &[String]) -> CryptoProvider {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if !suites.is_empty() {
        p.cipher_suites.retain(|s| {
            let name = format!("{:?}", s.suite());
            suites.iter().any(|want| want.eq_ignore_ascii_case(&name))
        });
    }
    p
}

fn error(path: String, message: String) -> ConfigError {
    ConfigError {
        path,
        line: 0,
        column: 0,
        message,
    }
}

/// Days before expiry from which a certificate is warned about.
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 14;

/// Logs a warning for every certificate of `snapshot` that expires within
/// [`EXPIRY_WARNING_DAYS`]; how many.
pub(crate) fn warn_expiring<'a>(listeners: impl IntoIterator<Item = &'a ListenerTls>) -> usize {
    let now = certs::unix_now();
    let mut n = 0;
    for t in listeners {
        for c in &t.certs {
            let days = (c.not_after - now).div_euclid(86_400);
            if days < EXPIRY_WARNING_DAYS {
                n += 1;
                tracing::warn!(
                    listener = %t.configured,
                    certificate = %c.file,
                    expires = %certs::date(c.not_after),
                    days,
                    "certificate expires soon; replace the file and reload"
                );
            }
        }
    }
    n
}

impl ListenerTls {
    /// Compiles listener `index`'s TLS settings, reading its certificate
    /// and CA files; `prev` is the running generation's, whose ticket keys
    /// are kept when the ticket settings are unchanged. Errors carry the
    /// config path of the file at fault.
    pub(crate) fn compile(
        index: usize,
        listener: &Listener,
        settings: &TlsSettings,
        prev: Option<&ListenerTls>,
    ) -> Result<ListenerTls, Vec<ConfigError>> {
        let base_path = format!("listeners[{index}].tls");
        let provider = Arc::new(provider(&settings.cipher_suites));
        let mut errors = Vec::new();
        let mut loaded = Vec::new();
        for (j, c) in settings.certificates.iter().enumerate() {
            match certs::load(&c.cert, &c.key, &c.names, &provider) {
                Ok(l) => loaded.push((c, l)),
                Err(reason) => {
                    errors.push(error(format!("{base_path}.certificates[{j}].cert"), reason))
                }
            }
        }
        let verifier = match &settings.client_auth {
            None => None,
            Some(auth) => {
                let path = format!("{base_path}.client-auth.ca");
                match client_verifier(auth, &provider) {
                    Ok(v) => Some(v),
                    Err(reason) => {
                        errors.push(error(path, reason));
                        None
                    }
                }
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let only: Vec<_> = loaded.iter().map(|(_, l)| l.clone()).collect();
        let resolver = Arc::new(certs::SniResolver::new(
            &only,
            settings.unknown_sni == UnknownSni::Default,
        ));
        let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| vec![error(format!("{base_path}.cipher-suites"), e.to_string())])?;
        let builder = match verifier {
            Some(v) => builder.with_client_cert_verifier(v),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.session_storage = Arc::new(NoServerSessionStorage {});
        let scope = TicketScope {
            lifetime: settings.ticket_lifetime,
            client_auth: settings.client_auth.as_ref().map(|a| {
                let bundle = std::fs::read(&a.ca).unwrap_or_default();
                (a.mode, bundle)
            }),
        };
        let tickets = if settings.session_tickets {
            let kept = prev
                .and_then(|p| p.tickets.clone())
                .filter(|(_, kept)| *kept == scope);
            let tickets = match kept {
                Some(t) => t,
                None => (
                    rotating_ticketer(settings.ticket_lifetime).map_err(|e| {
                        vec![error(format!("{base_path}.session-tickets"), e.to_string())]
                    })?,
                    scope,
                ),
            };
            config.ticketer = tickets.0.clone();
            // TLS 1.3 sends tickets after the handshake; two, as clients
            // may open two connections at once.
            config.send_tls13_tickets = 2;
            Some(tickets)
        } else {
            // Without ticket keys, TLS 1.3 resumes through the session
            // cache, whose ids travel as (stateful) tickets.
            config.send_tls13_tickets = usize::from(settings.session_cache > 0);
            None
        };
        let certs = loaded
            .iter()
            .map(|(c, l)| CertStatus {
                file: c.cert.display().to_string(),
                names: l.names.clone(),
                subject: l.subject.clone(),
                not_after: l.not_after,
            })
            .collect();
        Ok(ListenerTls {
            configured: listener.address,
            base: Arc::new(config),
            session_cache: settings.session_cache,
            handshake_timeout: settings.handshake_timeout,
            certs,
            subject_header: settings
                .client_auth
                .as_ref()
                .map(|a| a.subject_header.clone()),
            tickets,
        })
    }

    /// A worker's server config: the shared one with a session cache of
    /// the worker's own.
    pub(crate) fn for_worker(&self) -> Arc<ServerConfig> {
        let mut config = (*self.base).clone();
        if self.session_cache > 0 {
            config.session_storage = ServerSessionMemoryCache::new(self.session_cache);
        }
        Arc::new(config)
    }
}

/// The verifier of client certificates against the configured CA bundle.
fn client_verifier(
    auth: &ringway_config::ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for cert in certs::read_chain(&auth.ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", auth.ca.display()))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = match auth.mode {
        ClientAuthMode::Required => builder,
        ClientAuthMode::Optional => builder.allow_unauthenticated(),
    };
    builder
        .build()
        .map_err(|e| format!("{}: {e}", auth.ca.display()))
}

/// Session-ticket keys that are replaced every `lifetime` (the previous
/// key still decrypts for one more period, so a ticket lives at most two).
fn rotating_ticketer(
    lifetime: Duration,
) -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    let secs = lifetime.as_secs().clamp(60, u64::from(u32::MAX)) as u32;
    Ok(Arc::new(rustls::ticketer::TicketRotator::new(
        secs,
        new_ticket_keys,
    )?))
}

/// One set of ticket keys (aws-lc-rs's RFC 5077 construction, behind the
/// provider's own ticketer, whose internal 6 h rotation never comes into
/// play when `ticket-lifetime` is shorter).
fn new_ticket_keys(
) -> Result<Box<dyn rustls::server::ProducesTickets>, rustls::crypto::GetRandomFailed> {
    let inner =
        rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|_| rustls::crypto::GetRandomFailed)?;
    Ok(Box::new(Keys(inner)))
}

#[derive(Debug)]
struct Keys(Arc<dyn rustls::server::ProducesTickets>);

impl rustls::server::ProducesTickets for Keys {
    fn enabled(&self) -> bool {
        self.0.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.0.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.0.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.0.decrypt(cipher)
    }
}

/// Classifies a failed handshake for the counters.
pub(crate) fn handshake_failure(e: &std::io::Error) -> crate::stats::HandshakeFailure {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => crate::stats::HandshakeFailure::Closed,
            _ => crate::stats::HandshakeFailure::Protocol,
        };
    };
    match tls {
        e if certs::is_unknown_sni(e) => crate::stats::HandshakeFailure::UnknownSni,
        rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_) => {
            crate::stats::HandshakeFailure::ClientCert
        }
        rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => {
            crate::stats::HandshakeFailure::Incompatible
        }
        rustls::Error::AlertReceived(
            rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA
            | rustls::AlertDescription::CertificateExpired
            | rustls::AlertDescription::CertificateUnknown
            | rustls::AlertDescription::UnsupportedCertificate
            | rustls::AlertDescription::CertificateRevoked,
        ) => crate::stats::HandshakeFailure::Rejected,
        _ => crate::stats::HandshakeFailure::Protocol,
    }
}
