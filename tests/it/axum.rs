//! Through an axum `Router` with `oneshot`: token sources and their order,
//! optional mode, typed extractors, and the missing-layer wiring error.

use crate::support as common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::{HeaderName, Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, TokenSource, Verifier};

#[derive(Clone, Deserialize)]
struct MyClaims {
    sub: String,
    name: String,
}

async fn me(claims: Claims<MyClaims>) -> String {
    format!("{} {}", claims.sub, claims.name)
}

async fn maybe(claims: Option<Claims<MyClaims>>) -> String {
    match claims {
        Some(c) => c.sub.clone(),
        None => "anonymous".into(),
    }
}

fn layer() -> JwtAuthLayer<MyClaims> {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    JwtAuthLayer::new(verifier).claims::<MyClaims>()
}

fn app(layer: JwtAuthLayer<MyClaims>) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route_layer(layer)
        .route("/open", get(|| async { "open" }))
        .route("/unwired", get(me))
}

async fn send(app: &Router, path: &str, headers: &[(&str, String)]) -> (StatusCode, String) {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn good() -> String {
    token(Algorithm::ES256, &claims())
}

fn other_user() -> String {
    let mut c = claims();
    c["sub"] = serde_json::json!("user-2");
    token(Algorithm::ES256, &c)
}

#[tokio::test]
async fn bearer_header() {
    let app = app(layer());
    let (s, body) = send(
        &app,
        "/me",
        &[("authorization", format!("bearer {}", good()))],
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "user-1 Ada"));
    let (s, _) = send(&app, "/me", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An unknown path stays 404 with route_layer.
    let (s, _) = send(&app, "/nope", &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = send(&app, "/open", &[]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "open"));
}

#[tokio::test]
async fn cookie_and_custom_header_sources_in_order() {
    let x_token = HeaderName::from_static("x-token");
    let app = app(layer().sources([
        TokenSource::header(x_token.clone()),
        TokenSource::cookie("access_token"),
        TokenSource::Bearer,
    ]));
    let cookie = format!("theme=dark; access_token={}", good());
    let (s, body) = send(&app, "/me", &[("cookie", cookie.clone())]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "user-1 Ada"));
    let (s, body) = send(&app, "/me", &[("x-token", good())]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "user-1 Ada"));
    // The header comes first in the order, so it wins over the cookie.
    let (s, body) = send(
        &app,
        "/me",
        &[("cookie", cookie), ("x-token", other_user())],
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "user-2 Ada"));
    // The default source is not consulted before the configured ones.
    let (s, body) = send(
        &app,
        "/me",
        &[
            ("authorization", format!("Bearer {}", other_user())),
            ("x-token", good()),
        ],
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "user-1 Ada"));
    // Cookie-only layer ignores the Authorization header.
    let cookie_only = crate::axum::app(layer().sources([TokenSource::cookie("access_token")]));
    let (s, _) = send(
        &cookie_only,
        "/me",
        &[("authorization", format!("Bearer {}", good()))],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn optional_mode() {
    let app = app(layer().optional());
    let (s, body) = send(&app, "/maybe", &[]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "anonymous"));
    let (s, body) = send(
        &app,
        "/maybe",
        &[("authorization", format!("Bearer {}", good()))],
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "user-1"));
    // A bad token is still refused.
    let (s, _) = send(&app, "/maybe", &[("authorization", "Bearer a.b.c".into())]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A handler that needs claims answers 401 to an anonymous request.
    let (s, _) = send(&app, "/me", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn option_claims_without_optional_mode_still_needs_a_token() {
    let app = app(layer());
    let (s, _) = send(&app, "/maybe", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

use crate::support::logs;

#[tokio::test]
async fn missing_layer_is_a_plain_500_with_the_hint_in_the_logs() {
    let app = app(layer());
    let (logs, _guard) = logs::Logs::capture(tracing::Level::INFO);
    let (s, body) = send(
        &app,
        "/unwired",
        &[("authorization", format!("Bearer {}", good()))],
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !body.contains("MyClaims"),
        "types leak to the client: {body}"
    );
    let logs = logs.text();
    assert!(logs.contains("JwtAuthLayer"), "{logs}");
    assert!(logs.contains("MyClaims"), "{logs}");
}

#[tokio::test]
async fn custom_rejection_renders_json() {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(verifier).on_rejection(|r: &tower_jwt_auth::Refusal<'_>| {
        let e = r.error();
        http::Response::builder()
            .status(e.kind().http_status())
            .header("content-type", "application/json")
            .header("www-authenticate", r.www_authenticate("api"))
            .body(Body::from(
                serde_json::json!({"error": e.reason()}).to_string(),
            ))
            .unwrap()
    });
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer);
    let (s, body) = send(&app, "/", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body, r#"{"error":"missing_token"}"#);
}
