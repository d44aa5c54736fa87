//! Certificates made for the tests (a CA of their own, rcgen) and TLS
//! client configs (rustls with aws-lc-rs, trusting that CA).

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority for tests.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM text.
#[derive(Clone)]
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names` (DNS names or IPs), ECDSA P-256, CN = first name.
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    /// A leaf for `names` with a key of algorithm `alg`.
    pub fn issue_alg(&self, names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> Issued {
        self.issue_inner(names, |_| {}, KeyPair::generate_for(alg).expect("key"))
    }

    /// Like [`Self::issue`], with the parameters adjusted by `tweak`.
    pub fn issue_with(&self, names: &[&str], tweak: impl FnOnce(&mut CertificateParams)) -> Issued {
        self.issue_inner(names, tweak, KeyPair::generate().expect("key"))
    }

    fn issue_inner(
        &self,
        names: &[&str],
        tweak: impl FnOnce(&mut CertificateParams),
        key: KeyPair,
    ) -> Issued {
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        tweak(&mut params);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// The calendar date `days` from today (UTC), for certificate validity.
pub fn date_in(days: i64) -> (i32, u8, u8) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = now / 86_400 + days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m as u8, d as u8)
}

/// Writes `text` to a file in this test process's temp directory.
pub fn write(name: &str, text: &str) -> PathBuf {
    super::process::write_config(&format!("tls/{name}"), text)
}

/// Writes a certificate and key; returns their paths.
pub fn write_pair(name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
    (
        write(&format!("{name}.pem"), &issued.cert),
        write(&format!("{name}.key"), &issued.key),
    )
}

/// A client config trusting `ca`, offering ALPN http/1.1, optionally with
/// a client certificate.
pub fn client(ca: &Ca, client_cert: Option<&Issued>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca_der = CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("CA PEM");
    roots.add(ca_der).expect("CA");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match client_cert {
        Some(c) => {
            let chain = vec![CertificateDer::from_pem_slice(c.cert.as_bytes()).expect("cert PEM")];
            let key = PrivateKeyDer::from_pem_slice(c.key.as_bytes()).expect("key PEM");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The subject CN of the certificate a TLS client was shown.
pub fn peer_names(conn: &rustls::ClientConnection) -> Vec<String> {
    let leaf = &conn.peer_certificates().expect("peer certificate")[0];
    let (_, x509) = x509_parser::parse_x509_certificate(leaf.as_ref()).expect("parse");
    let mut names = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    names
}

/// An HTTPS origin on 127.0.0.1:0 (rustls over std sockets, a thread per
/// connection) answering every request with 200 and "secure origin",
/// keeping connections open.
pub struct TlsOrigin {
    pub addr: std::net::SocketAddr,
    /// TLS connections accepted (handshakes completed).
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
    /// The SNI of each connection ("" when none).
    pub sni: Arc<std::sync::Mutex<Vec<String>>>,
    /// Whether each connection presented a client certificate.
    pub client_certs: Arc<std::sync::Mutex<Vec<bool>>>,
}

impl TlsOrigin {
    /// Serves `cert` to clients; with `clients`, asks for a client
    /// certificate from that CA (required).
    pub fn start(cert: &Issued, clients: Option<&Ca>) -> TlsOrigin {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = vec![CertificateDer::from_pem_slice(cert.cert.as_bytes()).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).expect("key");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions");
        let builder = match clients {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("CA"))
                    .expect("root");
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("verifier");
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(builder.with_single_cert(chain, key).expect("server config"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let origin = TlsOrigin {
            addr,
            connections: Arc::default(),
            requests: Arc::default(),
            sni: Arc::default(),
            client_certs: Arc::default(),
        };
        let (c, r, s, cc) = (
            origin.connections.clone(),
            origin.requests.clone(),
            origin.sni.clone(),
            origin.client_certs.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let config = config.clone();
                let (c, r, s, cc) = (c.clone(), r.clone(), s.clone(), cc.clone());
                std::thread::spawn(move || {
                    let mut conn = rustls::ServerConnection::new(config).expect("session");
                    while conn.is_handshaking() {
                        if conn.complete_io(&mut stream).is_err() {
                            return;
                        }
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    s.lock()
                        .expect("lock")
                        .push(conn.server_name().unwrap_or("").to_string());
                    cc.lock()
                        .expect("lock")
                        .push(conn.peer_certificates().is_some());
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let mut reader = BufReader::new(&mut tls);
                    loop {
                        let mut line = String::new();
                        // A request head (no bodies in these tests).
                        loop {
                            line.clear();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" => break,
                                Ok(_) => {}
                            }
                        }
                        r.fetch_add(1, Ordering::SeqCst);
                        let body = "secure origin";
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let inner = reader.get_mut();
                        if inner.write_all(resp.as_bytes()).is_err() || inner.flush().is_err() {
                            return;
                        }
                    }
                });
            }
        });
        origin
    }
}
