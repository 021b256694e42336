//! RFC 9701 signed introspection answers and `stale_if_error`: an answer
//! that came but failed its checks (tampered with on the way, wrong
//! audience) is not an outage, so no cached answer stands in for it; a
//! missing answer (500) is, within the window.
//!
//! A loopback authorization server signs its answers with an Ed25519 key
//! published at `/jwks`; `/introspect` answers as the test switches it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;
use tower_jwt_auth::introspection::Introspector;
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::{Algorithm, AuthError, TokenVerifier};

const AS: &str = "https://as.example";

fn b64(b: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).expect("seed")
}

/// A signed answer: `good`, or one for another client (`aud`).
fn signed(mode: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = json!({"alg": "EdDSA", "kid": "k1", "typ": "token-introspection+jwt"});
    let aud = if mode == "good" {
        "api"
    } else {
        "another-client"
    };
    let claims = json!({
        "iss": AS, "aud": aud, "iat": now,
        "token_introspection": {"active": true, "aud": "api", "sub": "alice", "exp": now + 600, "token_type": "Bearer"},
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    format!("{input}.{}", b64(key().sign(input.as_bytes()).as_ref()))
}

#[tokio::test]
async fn a_refused_signed_answer_is_not_bridged_by_a_stale_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let jwks = json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA",
        "x": b64(key().public_key().as_ref()),
    }]})
    .to_string();
    let mode = Arc::new(Mutex::new("good"));
    let answer = Arc::clone(&mode);
    let app = Router::new()
        .route("/jwks", get(move || async move { jwks.clone() }))
        .route(
            "/introspect",
            post(move || {
                let mode = *answer.lock().expect("mode");
                async move {
                    match mode {
                        "500" => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                        mode => (StatusCode::OK, signed(mode)),
                    }
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let keys = JwksCache::builder(&format!("{base}/jwks"))
        .algorithms([Algorithm::EdDSA])
        .build()
        .expect("keys");
    let introspector = Introspector::builder(format!("{base}/introspect"))
        .allow_http()
        .client_credentials("api", "secret")
        .audience("api")
        .signed_answers(keys, AS)
        .max_ttl(Duration::from_secs(1))
        .stale_if_error(Duration::from_secs(30))
        .build()
        .expect("introspector");
    let set = |m: &'static str| *mode.lock().expect("mode") = m;

    let ok = introspector
        .verify_later("opaque-token")
        .await
        .expect("active");
    assert_eq!(ok.registered().sub(), Some("alice"));

    // Past its freshness, the answer comes for another client: refused,
    // and the cached active answer does not stand in.
    set("other-aud");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = introspector.verify_later("opaque-token").await;
    assert!(
        matches!(refused, Err(AuthError::IntrospectionUnavailable(_))),
        "{refused:?}"
    );

    // No answer at all (500) is an outage: within the window the cached
    // active answer stands in.
    set("500");
    let bridged = introspector.verify_later("opaque-token").await;
    assert!(bridged.is_ok(), "{bridged:?}");
}
