//! A self-contained demo: an axum server on 127.0.0.1 that accepts tokens
//! signed by a key it generates at start, and prints one to try.
//!
//! Run: `cargo run --features axum --example demo`
//! (`BIND=127.0.0.1:0` picks a free port; the default is 127.0.0.1:3000.)

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::{Json, Router, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Key, Verifier};

const ISSUER: &str = "https://demo.tower-jwt-auth.invalid";
const AUDIENCE: &str = "demo-api";

/// Signs `claims` as an EdDSA JWT with kid `demo`.
fn mint(pair: &Ed25519KeyPair, claims: &Value) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "demo"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = pair.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

async fn me(claims: Claims) -> Json<Value> {
    Json(Value::Object(claims.custom().clone()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh signing key; the server only ever holds its public half.
    let pair = Ed25519KeyPair::generate()?;
    let public = Key::from_spki_der(Algorithm::EdDSA, pair.public_key().as_ref())
        .or_else(|_| Key::from_jwk_for(Algorithm::EdDSA, &ed25519_jwk(&pair)))?
        .with_kid("demo");

    let verifier = Verifier::builder()
        .key(public)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()?;

    let app = Router::new()
        .route("/me", get(me))
        .route_layer(JwtAuthLayer::new(verifier))
        .route(
            "/",
            get(|| async { "tower-jwt-auth demo: GET /me with a bearer token\n" }),
        );

    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let token = mint(
        &pair,
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "demo-user", "name": "Demo User",
                "iat": now, "exp": now + 3600}),
    );
    println!("listening on http://{addr}");
    println!("token: {token}");
    println!();
    println!("200 with the token:");
    println!("  curl -i http://{addr}/me -H 'Authorization: Bearer {token}'");
    println!("401 without it:");
    println!("  curl -i http://{addr}/me");

    axum::serve(listener, app).await?;
    Ok(())
}

fn ed25519_jwk(pair: &Ed25519KeyPair) -> String {
    json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())})
        .to_string()
}
