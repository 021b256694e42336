//! Where tokens come from beyond headers and cookies: query parameters
//! (WebSocket/SSE clients), the application's own `FindToken`, and paths
//! the layer skips.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::{HeaderMap, Request, StatusCode, Uri};
use serde_json::json;
use tower::ServiceExt;
use tower_jwt_auth::{
    Algorithm, AuthError, Claims, FindToken, JwtAuthLayer, TokenSource, Verifier,
};

fn auth() -> JwtAuthLayer {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    JwtAuthLayer::new(verifier)
}

async fn status(app: &Router, req: http::request::Builder) -> StatusCode {
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

fn sub_app(layer: JwtAuthLayer) -> Router {
    Router::new()
        .route(
            "/ws",
            get(|c: Claims| async move { c.sub().unwrap_or("").to_owned() }),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/health/live", get(|| async { "ok" }))
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer)
}

#[tokio::test]
async fn a_query_parameter_source_is_opt_in() {
    let t = token(Algorithm::ES256, &claims());
    let uri = format!("/ws?access_token={t}");
    // Not a source by default.
    let app = sub_app(auth());
    assert_eq!(status(&app, Request::builder().uri(&uri)).await, 401);
    // Opted in.
    let app = sub_app(auth().sources([TokenSource::Bearer, TokenSource::query("access_token")]));
    assert_eq!(status(&app, Request::builder().uri(&uri)).await, 200);
    let other = token(
        Algorithm::ES256,
        &json!({"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60}),
    );
    let two = format!("/ws?access_token={t}&access_token={other}");
    assert_eq!(status(&app, Request::builder().uri(&two)).await, 400);
    assert_eq!(
        status(&app, Request::builder().uri("/ws?access_token=bad")).await,
        401
    );
}

struct Versioned;

impl FindToken for Versioned {
    fn find<'r>(
        &self,
        _uri: &'r Uri,
        headers: &'r HeaderMap,
    ) -> Result<Option<&'r str>, AuthError> {
        match headers.get("x-api-token").map(|v| v.to_str()) {
            None => Ok(None),
            Some(Ok(v)) => v
                .strip_prefix("v1:")
                .map(Some)
                .ok_or(AuthError::Malformed("expected v1:<token>")),
            Some(Err(_)) => Err(AuthError::Malformed("not visible ASCII")),
        }
    }
}

#[tokio::test]
async fn a_custom_source_finds_tokens_where_the_application_says() {
    let t = token(Algorithm::ES256, &claims());
    let app = sub_app(auth().sources([TokenSource::custom(Versioned)]));
    let ok = Request::builder()
        .uri("/ws")
        .header("x-api-token", format!("v1:{t}"));
    assert_eq!(status(&app, ok).await, 200);
    let bad = Request::builder()
        .uri("/ws")
        .header("x-api-token", format!("v2:{t}"));
    assert_eq!(status(&app, bad).await, 401);
    assert_eq!(status(&app, Request::builder().uri("/ws")).await, 401);
}

#[tokio::test]
async fn skipped_paths_need_no_token_and_match_whole_segments() {
    let app = sub_app(auth().skip_paths(["/health"]));
    assert_eq!(status(&app, Request::builder().uri("/health")).await, 200);
    assert_eq!(
        status(&app, Request::builder().uri("/health/live")).await,
        200
    );
    assert_eq!(status(&app, Request::builder().uri("/healthz")).await, 401);
    assert_eq!(status(&app, Request::builder().uri("/ws")).await, 401);
}
