//! HTTPS: TCP connections wrapped in a rustls client through
//! `monoio-rustls` (0.4, the release built for monoio 0.2 and rustls 0.23).
//!
//! The client config is built once and shared (it holds the root store and
//! the session cache, so reconnects resume sessions instead of doing full
//! handshakes). `--no-resume` turns the cache off (rustls'
//! `Resumption::disabled()`: no session is stored, so none is offered and
//! the server cannot resume one), which makes every connection a full
//! handshake — with `Connection: close`, one per request. Roots are
//! Mozilla's, compiled in (`webpki-roots`), so results do not depend on the
//! machine's certificate store. `--insecure` swaps the certificate check
//! for one that accepts any chain — for self-signed test servers — but
//! still verifies the handshake signatures, so the connection is real TLS
//! with a real key exchange. The crypto provider is `ring` (no cmake or
//! NASM needed to build it). The handshake is part of connecting: its
//! failures are connect errors.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use monoio::net::TcpStream;
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::plan::TlsSettings;
use crate::run::io::{Connector, Plain};

/// Opens TLS connections to one server.
#[derive(Clone)]
pub(crate) struct Client {
    tcp: Plain,
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.tcp.addr)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(addr: SocketAddr, settings: &TlsSettings) -> Result<Client, String> {
        let name = ServerName::try_from(settings.server_name.clone())
            .map_err(|e| format!("`{}` is not a TLS server name: {e}", settings.server_name))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let mut config = if settings.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if !settings.resume {
            config.resumption = Resumption::disabled();
        }
        Ok(Client {
            tcp: Plain { addr },
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

impl Connector for Client {
    type Stream = ClientTlsStream<TcpStream>;

    async fn connect(&self) -> io::Result<Self::Stream> {
        let tcp = self.tcp.connect().await?;
        // monoio-rustls' own Display hides the cause ("io error"); the
        // io::Error it converts into carries rustls' message.
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| {
                let e = io::Error::from(e);
                io::Error::new(e.kind(), format!("TLS handshake: {e}"))
            })
    }
}

/// Accepts any certificate chain; handshake signatures are still checked
/// with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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
