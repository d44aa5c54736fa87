//! TLS to upstream servers: client configs compiled from `[upstreams.tls]`,
//! and the connection type pools hold (plain TCP or TLS over it).
//!
//! Server certificates are verified against the configured CA bundle, or
//! the system's roots, for `server-name` (or, without one, the address
//! connected to, as an IP SAN). Each worker gets its own copy of the
//! config with a session store of its own, so resuming never takes a lock
//! another core holds.

use std::sync::Arc;

use ringway_config::{ConfigError, UpstreamTls as Settings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::certs;

/// Sessions each worker keeps per upstream for resumption.
const SESSIONS: usize = 256;

/// An upstream's compiled TLS settings.
#[derive(Debug)]
pub(crate) struct UpstreamTls {
    base: Arc<ClientConfig>,
    /// The configured name, if any (else each server's address).
    server_name: Option<ServerName<'static>>,
}

impl UpstreamTls {
    /// Compiles upstream `index`'s settings, reading its CA bundle (or the
    /// system roots) and client certificate.
    pub(crate) fn compile(index: usize, settings: &Settings) -> Result<UpstreamTls, ConfigError> {
        let path = |key: &str| format!("upstreams[{index}].tls.{key}");
        let fail = |key: &str, message: String| ConfigError {
            path: path(key),
            line: 0,
            column: 0,
            message,
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| fail("verify", e.to_string()))?;
        let builder = if settings.verify {
            let roots = match &settings.ca {
                Some(ca) => {
                    let mut roots = RootCertStore::empty();
                    for cert in certs::read_chain(ca).map_err(|e| fail("ca", e))? {
                        roots.add(cert).map_err(|e| {
                            fail(
                                "ca",
                                format!("{}: not a usable CA certificate: {e}", ca.display()),
                            )
                        })?;
                    }
                    roots
                }
                None => system_roots().map_err(|e| fail("ca", e))?,
            };
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny { provider }))
        };
        let mut config = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => {
                let chain = certs::read_chain(cert).map_err(|e| fail("client-cert", e))?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    fail(
                        "client-key",
                        format!("{}: cannot read a private key: {e:?}", key.display()),
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| fail("client-key", format!("{}: {e}", key.display())))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.enable_sni = settings.sni;
        let server_name = match &settings.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|e| fail("server-name", format!("{n}: {e}")))?,
            ),
            None => None,
        };
        Ok(UpstreamTls {
            base: Arc::new(config),
            server_name,
        })
    }

    /// A worker's copy: its own session store.
    pub(crate) fn for_worker(&self) -> WorkerUpstreamTls {
        let mut config = (*self.base).clone();
        config.resumption = Resumption::in_memory_sessions(SESSIONS);
        WorkerUpstreamTls {
            config: Arc::new(config),
            server_name: self.server_name.clone(),
        }
    }
}

/// An upstream's TLS as one worker connects with it.
#[derive(Debug, Clone)]
pub(crate) struct WorkerUpstreamTls {
    pub(crate) config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl WorkerUpstreamTls {
    /// The name to verify (and send as SNI) for a server at `addr` that
    /// came from the name `host` (`host:port`), if any: `server-name` when
    /// set, else the host name, else the address.
    pub(crate) fn name_for(
        &self,
        addr: std::net::SocketAddr,
        host: Option<&str>,
    ) -> ServerName<'static> {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        host.and_then(|h| h.rsplit_once(':'))
            .and_then(|(name, _)| ServerName::try_from(name.to_string()).ok())
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no system root certificates found ({} errors); set `ca`",
            found.errors.len()
        ));
    }
    Ok(roots)
}

/// `verify = false`: any certificate is accepted (signatures are still
/// checked, so the handshake is with the key the certificate names).
#[derive(Debug)]
struct AcceptAny {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
