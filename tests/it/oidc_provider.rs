//! Interoperability with a real OpenID provider this project did not write:
//! the npm package `oidc-provider` (OpenID Certified), started from
//! `tests/oidc/provider.mjs` on 127.0.0.1. It issues RFC 9068 JWT access
//! tokens through the client_credentials grant with resource indicators,
//! signed with RS256, PS256, ES256 and EdDSA. The layer is configured with
//! nothing but the issuer URL and the audience.
//!
//! Needs `node` and `npm` (the packages are installed from
//! `tests/oidc/package-lock.json` with `npm ci` when missing; `.ci/run` does
//! it up front).

use crate::support::oidc;

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use serde_json::Value;
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Verifier};
use tower_layer::Layer;

const API: &str = "urn:tower-jwt-auth:api";
const OTHER: &str = "urn:tower-jwt-auth:other";
const ALGS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// The client whose access tokens are signed with `alg`.
fn client(alg: &str) -> String {
    format!("client-{}", alg.to_lowercase())
}

fn header(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

async fn call(layer: &JwtAuthLayer, token: &str) -> (StatusCode, String) {
    let svc = layer.layer(service_fn(|req: Request<()>| async move {
        let claims = req.extensions().get::<Claims>().unwrap();
        Ok::<_, Infallible>(Response::new(claims.sub().unwrap_or_default().to_owned()))
    }));
    let req = Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    let status = res.status();
    let text = match res.headers().get(WWW_AUTHENTICATE) {
        Some(v) => v.to_str().unwrap().to_owned(),
        None => res.into_body(),
    };
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_tokens_are_accepted_and_rotation_is_followed() {
    let mut provider = oidc::start().await;
    let http = reqwest::Client::new();
    let interval = Duration::from_millis(500);
    // Only the issuer and the audience: keys by OIDC discovery.
    let cache = JwksCache::discover(&provider.issuer)
        .algorithms([
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ])
        .min_refetch_interval(interval)
        .build()
        .unwrap();
    let verifier = Verifier::builder()
        .jwks_cache(cache.clone())
        .issuer(provider.issuer.clone())
        .audience(API)
        .typ("at+jwt")
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(verifier);

    for alg in ALGS {
        let token = provider.token(&http, &client(alg), API).await;
        let h = header(&token);
        assert_eq!(h["alg"], alg, "{h}");
        assert_eq!(h["typ"], "at+jwt", "{h}");
        assert_eq!(h["kid"], provider.kids[alg], "{h}");
        let (status, text) = call(&layer, &token).await;
        assert_eq!(status, StatusCode::OK, "{alg}: {text}");
        assert_eq!(text, format!("client-{}", alg.to_lowercase()));

        // A token the same provider issued for another resource server.
        let other = provider.token(&http, &client(alg), OTHER).await;
        let (status, text) = call(&layer, &other).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}");
        assert!(text.contains("invalid_token"), "{text}");
        assert!(text.contains("aud"), "{text}");

        // A tampered signature.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        let (status, _) = call(&layer, &forged).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}");
    }
    assert_eq!(cache.status().fetches(), 1, "one JWKS fetch served all");
    let old = provider.token(&http, &client("ES256"), API).await;

    // The provider rotates: new signing keys, the old ones still published.
    let before = provider.kids.clone();
    provider.rotate(&http, false).await;
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    for alg in ALGS {
        let token = provider.token(&http, &client(alg), API).await;
        assert_ne!(header(&token)["kid"], before[alg]);
        assert_eq!(header(&token)["kid"], provider.kids[alg]);
        let (status, text) = call(&layer, &token).await;
        assert_eq!(status, StatusCode::OK, "rotated {alg}: {text}");
    }
    assert_eq!(cache.status().fetches(), 2, "one refetch for the new kids");
    let (status, _) = call(&layer, &old).await;
    assert_eq!(status, StatusCode::OK, "old key still published");

    // The provider retires every earlier key: once the cache refreshes,
    // tokens signed with them are refused and the newest keep passing.
    provider.rotate(&http, true).await;
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    cache.prefetch().await.unwrap();
    let (status, text) = call(&layer, &old).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "retired key: {text}");
    for alg in ALGS {
        let token = provider.token(&http, &client(alg), API).await;
        let (status, text) = call(&layer, &token).await;
        assert_eq!(status, StatusCode::OK, "newest {alg}: {text}");
    }
}

/// DPoP with oidc-provider (its `dPoP` feature is on by default): a token
/// requested with a proof is bound to the client's key (`cnf.jkt`,
/// `token_type` `DPoP`), and the layer accepts it with fresh proofs only.
#[cfg(feature = "dpop")]
mod dpop {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;
    use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};

    const BASE: &str = "https://api.example.com";

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    struct Client(EcdsaKeyPair);

    impl Client {
        fn proof(&self, method: &str, htu: &str, token: Option<&str>, jti: &str) -> String {
            let p = self.0.public_key().as_ref();
            let jwk =
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])});
            let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
            let mut payload = json!({"jti": jti, "htm": method, "htu": htu, "iat": now()});
            if let Some(t) = token {
                payload["ath"] = json!(b64(aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    t.as_bytes()
                )));
            }
            let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
            let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", b64(sig))
        }
    }

    async fn send(layer: &JwtAuthLayer, auth: &str, proof: Option<&str>) -> (StatusCode, String) {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            let claims = req.extensions().get::<Claims>().unwrap();
            Ok::<_, Infallible>(Response::new(claims.sub().unwrap_or_default().to_owned()))
        }));
        let mut req = Request::builder().uri("/").header(AUTHORIZATION, auth);
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        let res = svc.oneshot(req.body(()).unwrap()).await.unwrap();
        let status = res.status();
        let text = match res.headers().get(WWW_AUTHENTICATE) {
            Some(v) => v.to_str().unwrap().to_owned(),
            None => res.into_body(),
        };
        (status, text)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oidc_provider_dpop_bound_tokens() {
        let provider = oidc::start().await;
        let http = reqwest::Client::new();
        let client = Client(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap());
        // The token request, with a proof for the token endpoint.
        let token_url = format!("{}/token", provider.issuer);
        let basic =
            base64::engine::general_purpose::STANDARD.encode("client-es256:secret-of-client-es256");
        let res = http
            .post(&token_url)
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("dpop", client.proof("POST", &token_url, None, "token-req"))
            .body(format!(
                "grant_type=client_credentials&scope=api%3Aread&resource={}",
                API.replace(':', "%3A")
            ))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["token_type"], "DPoP", "{json}");
        let token = json["access_token"].as_str().unwrap().to_owned();
        let payload: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(payload["cnf"]["jkt"].is_string(), "{payload}");

        let cache = JwksCache::discover(&provider.issuer)
            .algorithms([Algorithm::ES256])
            .build()
            .unwrap();
        let verifier = Verifier::builder()
            .jwks_cache(cache)
            .issuer(provider.issuer.clone())
            .audience(API)
            .typ("at+jwt")
            .build()
            .unwrap();
        let policy = DpopPolicy::builder(DpopMode::Allowed)
            .base_url(BASE)
            .build()
            .unwrap();
        let layer = JwtAuthLayer::new(verifier).dpop(policy);
        let auth = format!("DPoP {token}");
        let htu = format!("{BASE}/");
        // Fresh proofs: accepted (the first one waits for the key set).
        for jti in ["r1", "r2"] {
            let p = client.proof("GET", &htu, Some(&token), jti);
            let (status, text) = send(&layer, &auth, Some(&p)).await;
            assert_eq!(status, StatusCode::OK, "{jti}: {text}");
        }
        // Replayed: refused.
        let p = client.proof("GET", &htu, Some(&token), "r3");
        assert_eq!(send(&layer, &auth, Some(&p)).await.0, StatusCode::OK);
        let (status, text) = send(&layer, &auth, Some(&p)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(text.contains("invalid_dpop_proof"), "{text}");
        // As Bearer: refused (no downgrade).
        let (status, text) = send(&layer, &format!("Bearer {token}"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(text.contains("invalid_token"), "{text}");
        // With another client's key: refused.
        let thief = Client(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap());
        let p = thief.proof("GET", &htu, Some(&token), "t1");
        assert_eq!(
            send(&layer, &auth, Some(&p)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// Encrypted JWT access tokens (oidc-provider's resource-server
/// `jwt.encrypt`: RSA-OAEP-256 + A256GCM around the signed token, `cty:
/// at+jwt`) decrypt and verify end to end, for every signing algorithm; a
/// verifier without the key refuses them, and one requiring encryption
/// refuses the same provider's plain tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_encrypted_access_tokens_are_decrypted_then_verified() {
    use tower_jwt_auth::jwe::{DecryptionKey, EncryptionMode};
    const ENCRYPTED: &str = "urn:tower-jwt-auth:encrypted";
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let pem = std::fs::read(format!(
        "{}/tests/data/keys/rsa.key",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let verifier = |mode: Option<EncryptionMode>| {
        let mut b = Verifier::from_issuer(&provider.issuer)
            .audience(ENCRYPTED)
            .audience(API)
            .typ("at+jwt");
        if let Some(mode) = mode {
            let key = DecryptionKey::from_pem(&pem).unwrap().with_kid("rsa");
            b = b.decryption_key(key).encryption(mode);
        }
        b.build().unwrap()
    };
    let layer = JwtAuthLayer::new(verifier(Some(EncryptionMode::Required)));
    for alg in ALGS {
        let token = provider.token(&http, &client(alg), ENCRYPTED).await;
        assert_eq!(token.split('.').count(), 5, "{alg}: a JWE");
        let h = header(&token);
        assert_eq!(
            (h["alg"].as_str(), h["enc"].as_str()),
            (Some("RSA-OAEP-256"), Some("A256GCM"))
        );
        let (status, body) = call(&layer, &token).await;
        assert_eq!(status, StatusCode::OK, "{alg}: {body}");
    }
    let token = provider.token(&http, &client("ES256"), ENCRYPTED).await;
    let (status, _) = call(&JwtAuthLayer::new(verifier(None)), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no decryption key");
    let plain = provider.token(&http, &client("ES256"), API).await;
    let (status, challenge) = call(&layer, &plain).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "plain token, encryption required"
    );
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let (status, _) = call(
        &JwtAuthLayer::new(verifier(Some(EncryptionMode::Allowed))),
        &plain,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Certificate-bound tokens from oidc-provider (`features.mTLS
/// .certificateBoundAccessTokens`, the client `client-mtls`): the token it
/// binds to the certificate the client presents passes the layer over real
/// TLS (tokio-rustls) with that certificate, and is refused with another
/// one and with none.
#[cfg(feature = "mtls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_certificate_bound_tokens_over_real_tls() {
    use crate::support::pki::{Ca, https_get};
    use tower_jwt_auth::mtls::{ClientCertificate, ClientCertificateLayer, MtlsMode, MtlsPolicy};
    let provider = oidc::start().await;
    let ca = Ca::new("clients");
    let (a, b) = (ca.client("a"), ca.client("b"));
    let res = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth("client-mtls", Some("secret-of-client-mtls"))
        .header(
            "x-test-client-cert",
            base64::engine::general_purpose::STANDARD.encode(&a.der),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&scope=api%3Aread&resource={}",
            API.replace(':', "%3A")
        ))
        .send()
        .await
        .unwrap();
    let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    let token = json["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{json}"));
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        payload["cnf"]["x5t#S256"],
        a.x5t().as_str(),
        "oidc-provider bound it to a"
    );

    let verifier = Verifier::from_issuer(&provider.issuer)
        .audience(API)
        .typ("at+jwt")
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|c: Claims| async move { c.sub().unwrap_or_default().to_owned() }),
        )
        .route_layer(JwtAuthLayer::new(verifier).mtls(MtlsPolicy::new(MtlsMode::Required)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config(&ca.server()));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = ClientCertificateLayer::new(ClientCertificate::from_tls(&tls)).layer(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tls),
                        hyper_util::service::TowerToHyperService::new(svc),
                    )
                    .await;
            });
        }
    });
    let auth = format!("Bearer {token}");
    let h = [("Authorization", auth.as_str())];
    let (status, body) = https_get(ca.client_config(Some(&a)), addr, "/me", &h).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "client-mtls"),
        "the certificate it was issued to"
    );
    let (status, _) = https_get(ca.client_config(Some(&b)), addr, "/me", &h).await;
    assert_eq!(status, 401, "another certificate");
    let (status, _) = https_get(ca.client_config(None), addr, "/me", &h).await;
    assert_eq!(status, 401, "no certificate");
}
