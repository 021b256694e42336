//! Certificates made in the test (rcgen): a CA, a server certificate for
//! 127.0.0.1/localhost, client certificates; and rustls configs that use
//! them. Nothing is read from disk.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate (DER, PEM) and its private key (PKCS#8 DER, PEM).
pub struct Made {
    pub der: Vec<u8>,
    pub pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl Made {
    /// Its `x5t#S256` (base64url SHA-256 of the DER), computed here.
    pub fn x5t(&self) -> String {
        super::b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der).as_ref())
    }

    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.der.clone())]
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A throwaway CA.
pub struct Ca {
    pub cert: Made,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let made = Made {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        };
        Ca {
            cert: made,
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, names: Vec<String>, usage: ExtendedKeyUsagePurpose, cn: &str) -> Made {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Made {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self) -> Made {
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth, "server")
    }

    /// A client certificate.
    pub fn client(&self, cn: &str) -> Made {
        self.issue(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, cn)
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert.der.clone()))
            .unwrap();
        roots
    }

    /// A server config presenting `server` that asks for (but does not
    /// require) a client certificate signed by this CA.
    pub fn server_config(&self, server: &Made) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(self.roots()),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(server.chain(), server.key())
            .unwrap();
        Arc::new(config)
    }

    /// A client config trusting this CA, presenting `client` if given.
    pub fn client_config(&self, client: Option<&Made>) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots());
        let config = match client {
            Some(c) => builder.with_client_auth_cert(c.chain(), c.key()).unwrap(),
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }
}

/// One HTTP/1.1 request over TLS to `addr` (a fresh connection); the
/// status code and body.
pub async fn https_get(
    config: Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // A server that closes without close_notify is fine here.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
