//! Encrypted access tokens (JWE, RFC 7516) made by panva's `jose` (the
//! differential suite's Node.js process): every accepted `alg` × `enc`
//! decrypts and then verifies as a plain token would; jose's own
//! `compactDecrypt` agrees on the plaintext; the policy modes, the
//! unsigned payload, a token for another key and the inner JWS's own
//! checks; the layer end to end.

use crate::differential::jose::Jose;
use crate::support as common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::jwe::{DecryptionKey, EncryptionMode};
use tower_jwt_auth::{Algorithm, AuthError, Claims, JsonClaims, JwtAuthLayer, Verifier};

const ALGS: [(&str, &str); 5] = [
    ("RSA-OAEP-256", "rsa"),
    ("RSA-OAEP", "rsa"),
    ("ECDH-ES", "p256"),
    ("ECDH-ES+A128KW", "p384"),
    ("ECDH-ES+A256KW", "p521"),
];
const ENCS: [&str; 4] = ["A128GCM", "A256GCM", "A128CBC-HS256", "A256CBC-HS512"];

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

/// Our decryption keys: one per test key file, `kid` = its stem.
fn decryption_keys() -> Vec<DecryptionKey> {
    ["rsa", "p256", "p384", "p521"]
        .iter()
        .map(|stem| {
            DecryptionKey::from_pem(text(&format!("{stem}.key")))
                .unwrap()
                .with_kid(*stem)
        })
        .collect()
}

fn builder() -> tower_jwt_auth::VerifierBuilder {
    Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
}

fn verifier(mode: EncryptionMode) -> Verifier {
    builder()
        .decryption_keys(decryption_keys())
        .encryption(mode)
        .build()
        .unwrap()
}

/// jose encrypts `plaintext` to the public key `stem`.
fn encrypt(jose: &mut Jose, plaintext: &str, alg: &str, enc: &str, stem: &str) -> String {
    let answer = jose.ask(&json!({
        "op": "encrypt", "plaintext": plaintext, "spki": text(&format!("{stem}.pub")),
        "alg": alg, "enc": enc, "kid": stem, "cty": "JWT",
    }));
    assert_eq!(answer["ok"], true, "jose encrypt {alg} {enc}: {answer}");
    answer["jwe"].as_str().unwrap().to_owned()
}

fn signed() -> String {
    token(Algorithm::ES256, &claims())
}

#[test]
fn every_accepted_algorithm_from_jose_decrypts_then_verifies() {
    let mut jose = Jose::start();
    let v = verifier(EncryptionMode::Allowed);
    let inner = signed();
    let mut n = 0;
    for (alg, stem) in ALGS {
        for enc in ENCS {
            let jwe = encrypt(&mut jose, &inner, alg, enc, stem);
            let claims: Claims = v
                .verify(&jwe)
                .unwrap_or_else(|e| panic!("{alg} {enc}: {e}"));
            assert_eq!(claims.sub(), Some("user-1"));
            // jose's own decryption of the same token agrees.
            let back = jose.ask(&json!({
                "op": "decrypt", "jwe": jwe, "alg": alg,
                "pkcs8": text(&format!("{stem}.key")),
            }));
            assert_eq!(back["plaintext"], inner.as_str(), "{alg} {enc}: {back}");
            n += 1;
        }
    }
    assert_eq!(n, 20);
}

#[test]
fn jose_and_we_both_refuse_each_tampered_segment() {
    let mut jose = Jose::start();
    let v = verifier(EncryptionMode::Allowed);
    for (alg, stem) in [("RSA-OAEP-256", "rsa"), ("ECDH-ES+A128KW", "p384")] {
        let jwe = encrypt(&mut jose, &signed(), alg, "A128CBC-HS256", stem);
        let parts: Vec<&str> = jwe.split('.').collect();
        for i in 0..5 {
            if parts[i].is_empty() {
                continue;
            }
            let mut bytes =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[i])
                    .unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x10;
            let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
            p[i] = b64(bytes);
            let bad = p.join(".");
            assert!(v.verify::<JsonClaims>(&bad).is_err(), "{alg}: segment {i}");
            let theirs = jose.ask(&json!({
                "op": "decrypt", "jwe": bad, "alg": alg,
                "pkcs8": text(&format!("{stem}.key")),
            }));
            assert_eq!(theirs["ok"], false, "{alg}: jose accepted segment {i}");
        }
    }
}

#[test]
fn an_unsigned_encrypted_jwt_is_refused() {
    let mut jose = Jose::start();
    let v = verifier(EncryptionMode::Allowed);
    // What jose's EncryptJWT makes: the claims themselves, encrypted.
    let jwe = encrypt(
        &mut jose,
        &claims().to_string(),
        "RSA-OAEP-256",
        "A256GCM",
        "rsa",
    );
    let err = v.verify::<JsonClaims>(&jwe).unwrap_err();
    assert!(matches!(err, AuthError::Malformed(_)), "{err}");
}

#[test]
fn the_inner_jws_gets_every_check_a_plain_token_gets() {
    let mut jose = Jose::start();
    let v = verifier(EncryptionMode::Allowed);
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    let mut other_aud = claims();
    other_aud["aud"] = json!("elsewhere");
    let forged = {
        let t = signed();
        let (head, _) = t.rsplit_once('.').unwrap();
        format!(
            "{head}.{}",
            b64(sign_bytes(Algorithm::ES256, head.as_bytes(), true))
        )
    };
    let not_allowed = token(Algorithm::HS256, &claims());
    let nested = token_raw(
        Algorithm::ES256,
        r#"{"alg":"ES256","kid":"k1","cty":"JWT"}"#,
        &claims().to_string(),
    );
    for (inner, why) in [
        (token(Algorithm::ES256, &expired), "expired"),
        (token(Algorithm::ES256, &other_aud), "invalid_audience"),
        (forged, "bad_signature"),
        (not_allowed, "alg_not_allowed"),
        (nested, "malformed"),
    ] {
        let jwe = encrypt(&mut jose, &inner, "ECDH-ES", "A256GCM", "p256");
        let err = v.verify::<JsonClaims>(&jwe).unwrap_err();
        assert_eq!(err.reason(), why, "{err}");
    }
}

#[test]
fn modes_keys_and_rotation() {
    let mut jose = Jose::start();
    let jwe = encrypt(&mut jose, &signed(), "RSA-OAEP-256", "A256GCM", "rsa");
    let plain = signed();
    // Required: a plain JWS is refused.
    let required = verifier(EncryptionMode::Required);
    assert!(required.verify::<JsonClaims>(&jwe).is_ok());
    let err = required.verify::<JsonClaims>(&plain).unwrap_err();
    assert!(matches!(err, AuthError::EncryptionRequired), "{err}");
    // Off, or no keys: a JWE is refused as encrypted.
    let off = verifier(EncryptionMode::Off);
    let none = builder().build().unwrap();
    for v in [&off, &none] {
        assert!(matches!(
            v.verify::<JsonClaims>(&jwe),
            Err(AuthError::Encrypted)
        ));
        assert!(v.verify::<JsonClaims>(&plain).is_ok());
    }
    // Encryption without keys is a build error.
    assert!(
        builder()
            .encryption(EncryptionMode::Required)
            .build()
            .is_err()
    );
    // A token for another key: one answer, whatever failed.
    let theirs = encrypt(&mut jose, &signed(), "RSA-OAEP-256", "A256GCM", "rsa2");
    let err = verifier(EncryptionMode::Allowed)
        .verify::<JsonClaims>(&theirs)
        .unwrap_err();
    assert!(matches!(err, AuthError::DecryptionFailed), "{err}");
    // Rotation: the old key and the new, each chosen by `kid`.
    let rotated = builder()
        .decryption_key(
            DecryptionKey::from_pem(text("rsa2.key"))
                .unwrap()
                .with_kid("rsa2"),
        )
        .decryption_key(
            DecryptionKey::from_pem(text("rsa.key"))
                .unwrap()
                .with_kid("rsa"),
        )
        .build()
        .unwrap();
    assert!(rotated.verify::<JsonClaims>(&theirs).is_ok());
    assert!(rotated.verify::<JsonClaims>(&jwe).is_ok());
}

#[tokio::test]
async fn the_layer_accepts_an_encrypted_token_and_refuses_a_tampered_one() {
    let jwe = {
        let mut jose = Jose::start();
        encrypt(&mut jose, &signed(), "ECDH-ES+A256KW", "A256GCM", "p521")
    };
    async fn me(claims: Claims) -> String {
        claims.sub().unwrap_or_default().to_owned()
    }
    let app: Router = Router::new()
        .route("/me", get(me))
        .route_layer(JwtAuthLayer::new(verifier(EncryptionMode::Required)));
    let send = |token: String| {
        let app = app.clone();
        async move {
            let req = Request::builder()
                .uri("/me")
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            app.oneshot(req).await.unwrap()
        }
    };
    assert_eq!(send(jwe.clone()).await.status(), StatusCode::OK);
    let mut bad = jwe.clone();
    bad.pop();
    bad.push(if jwe.ends_with('A') { 'B' } else { 'A' });
    let res = send(bad).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge: Value = json!(res.headers()["www-authenticate"].to_str().unwrap());
    assert!(challenge.as_str().unwrap().contains("invalid_token"));
    assert_eq!(send(signed()).await.status(), StatusCode::UNAUTHORIZED);
}

/// `JwtOrIntrospect` sends an encrypted token to the JWT verifier when that
/// verifier can decrypt it, and to the introspection endpoint only when it
/// cannot (the server that issued it can still answer for it).
#[cfg(feature = "introspection")]
#[tokio::test]
async fn jwt_or_introspect_opens_the_encrypted_tokens_its_verifier_can_decrypt() {
    use std::time::Duration;
    use tower_jwt_auth::introspection::{Introspector, JwtOrIntrospect};

    let jwe = {
        let mut jose = Jose::start();
        encrypt(&mut jose, &signed(), "ECDH-ES", "A128GCM", "p256")
    };
    // The introspection endpoint is a port nothing listens on: a token sent
    // there gets 503, so the status says which way a token went.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let introspector = || {
        Introspector::builder(format!("http://{nowhere}/introspect"))
            .client_credentials("api", "secret")
            .audience(AUDIENCE)
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let status = |layer: JwtAuthLayer, token: String| async move {
        let app: Router = Router::new()
            .route("/me", get(|| async { "ok" }))
            .route_layer(layer);
        let req = Request::builder()
            .uri("/me")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap().status()
    };
    let decrypting = || {
        JwtAuthLayer::new(JwtOrIntrospect::new(
            verifier(EncryptionMode::Allowed),
            introspector(),
        ))
    };
    assert_eq!(status(decrypting(), jwe.clone()).await, StatusCode::OK);
    // A tampered one is refused locally (401), not sent away (503).
    let mut bad = jwe.clone();
    bad.pop();
    bad.push(if jwe.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(status(decrypting(), bad).await, StatusCode::UNAUTHORIZED);
    // An opaque token still goes to the endpoint.
    let opaque = "2YotnFZFEjr1zCsicMWpAA".to_owned();
    assert_eq!(
        status(decrypting(), opaque).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A verifier without decryption keys, or with encryption off, leaves
    // encrypted tokens to the endpoint.
    for jwt in [builder().build().unwrap(), verifier(EncryptionMode::Off)] {
        let layer = JwtAuthLayer::new(JwtOrIntrospect::new(jwt, introspector()));
        assert_eq!(
            status(layer, jwe.clone()).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
