//! RFC 9728 protected-resource metadata (the document, and
//! `resource_metadata` in every 401 challenge) and RFC 9470 step-up
//! (`RequireStepUp`), through an axum router.

use crate::support as common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::metadata::ResourceMetadata;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, RequireScope, RequireStepUp, Verifier};

const RESOURCE: &str = "https://api.example.com/mcp";

fn metadata() -> ResourceMetadata {
    ResourceMetadata::builder(RESOURCE)
        .authorization_servers([ISSUER])
        .scopes_supported(["mcp:tools"])
        .build()
        .unwrap()
}

fn app() -> Router {
    let m = metadata();
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let auth = JwtAuthLayer::new(verifier).resource_metadata(m.url());
    let step_up = RequireStepUp::acr(["urn:example:mfa"]).max_age(Duration::from_secs(300));
    Router::new()
        .route("/mcp", get(|| async { "ok" }))
        .route("/scoped", get(|| async { "ok" }))
        .route_layer(RequireScope::any(["admin"]).paths(["/scoped"]).unwrap())
        .route_layer(step_up.paths(["/mcp"]).unwrap())
        .route_layer(auth)
        .route_service(m.path(), m.clone())
}

async fn send(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = Request::builder().uri(path);
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, challenge, body)
}

fn token_with(extra: Value) -> String {
    let mut c = claims();
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    token(Algorithm::ES256, &c)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn the_document_is_served_at_the_well_known_location() {
    let app = app();
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/.well-known/oauth-protected-resource/mcp")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["resource"], RESOURCE);
    assert_eq!(doc["authorization_servers"], json!([ISSUER]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
}

#[tokio::test]
async fn every_401_and_every_scope_403_point_to_the_metadata() {
    let app = app();
    let url = format!(r#"resource_metadata="{}""#, metadata().url());
    // No token, a bad token, a refusal by a guard inside the layer.
    let (status, challenge, _) = send(&app, "/mcp", None).await;
    assert_eq!(status, 401);
    assert_eq!(challenge, format!(r#"Bearer realm="api", {url}"#));
    let (status, challenge, _) = send(&app, "/mcp", Some("x.y.z")).await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("invalid_token") && challenge.contains(&url),
        "{challenge}"
    );
    let (status, challenge, _) = send(&app, "/mcp", Some(&token_with(json!({})))).await;
    assert_eq!(status, 401);
    assert!(challenge.contains(&url), "{challenge}");
    // A missing scope is 403 with the metadata (the MCP step-up challenge,
    // MCP authorization 2025-11-25): the client re-authorizes there.
    let (status, challenge, _) = send(&app, "/scoped", Some(&token_with(json!({})))).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(&url),
        "{challenge}"
    );
}

#[tokio::test]
async fn step_up_needs_the_acr_and_a_recent_authentication() {
    let app = app();
    let want = r#"error="insufficient_user_authentication""#;
    let fresh = unix_now() - 10;
    // Right acr, recent: through.
    let ok = token_with(json!({"acr": "urn:example:mfa", "auth_time": fresh}));
    assert_eq!(send(&app, "/mcp", Some(&ok)).await.0, 200);
    for (why, extra) in [
        ("no acr", json!({"auth_time": fresh})),
        (
            "weak acr",
            json!({"acr": "urn:example:pwd", "auth_time": fresh}),
        ),
        ("no auth_time", json!({"acr": "urn:example:mfa"})),
        (
            "old auth_time",
            json!({"acr": "urn:example:mfa", "auth_time": unix_now() - 600}),
        ),
        (
            "auth_time a string",
            json!({"acr": "urn:example:mfa", "auth_time": "1"}),
        ),
    ] {
        let (status, challenge, _) = send(&app, "/mcp", Some(&token_with(extra))).await;
        assert_eq!(status, 401, "{why}");
        assert!(challenge.contains(want), "{why}: {challenge}");
        assert!(
            challenge.contains(r#"acr_values="urn:example:mfa", max_age="300""#),
            "{why}: {challenge}"
        );
    }
}
