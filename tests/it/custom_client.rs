//! Your own HTTP client for keys: a JWKS served over HTTPS on 127.0.0.1 by a
//! certificate from a private CA that only the custom client trusts (a
//! private CA, a proxy or mTLS to the provider all go through the client).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::{Algorithm, Claims, Verifier};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/tls/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Serves `body` as `application/json` over TLS to at most `limit`
/// connections, then stops.
async fn https_server(body: String, limit: usize) -> u16 {
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(data("server.der"))],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(data("server.key.der"))),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..limit {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await
                else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut seen = 0;
                while !buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") && seen < buf.len() {
                    match tls.read(&mut buf[seen..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen += n,
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_custom_client_trusts_a_private_ca_the_default_one_does_not() {
    let signer = tower_jwt_auth::testing::TestSigner::new(Algorithm::ES256).unwrap();
    let port = https_server(signer.jwks_json(), 8).await;
    let url = format!("https://127.0.0.1:{port}/jwks.json");

    // The default client does not know the private CA: no keys.
    let default = JwksCache::builder(&url)
        .algorithms([Algorithm::ES256])
        .build()
        .unwrap();
    let err = default.prefetch().await.unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");

    // The application's client trusts it.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&data("ca.der")).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let custom = JwksCache::builder(&url)
        .algorithms([Algorithm::ES256])
        .client(client)
        .build()
        .unwrap();
    assert_eq!(custom.prefetch().await.unwrap(), 1);
    let verifier = Verifier::builder()
        .jwks_cache(custom)
        .audience("api")
        .build()
        .unwrap();
    let token = signer.sign(&json!({"sub": "ada", "aud": "api", "exp": 4102444800u64}));
    let claims: Claims = verifier.verify_async(&token).await.unwrap();
    assert_eq!(claims.sub(), Some("ada"));
}
