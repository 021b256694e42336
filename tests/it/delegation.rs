//! Delegation (RFC 8693 §4.1): the typed `act` chain on the claims and
//! `RequireActor`, through an axum router. Actors are information, never
//! the principal.

use crate::support as common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::delegation::RequireActor;
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, RequireRole, RequireScope, Verifier};

fn app() -> Router {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    // The handler answers who the principal is, and the chain it sees.
    let who = |claims: Claims| async move {
        let chain: Vec<_> = claims
            .act()
            .unwrap()
            .iter()
            .map(|a| a.sub().unwrap_or("?").to_owned())
            .collect();
        format!("{} via {}", claims.sub().unwrap_or("?"), chain.join(","))
    };
    Router::new()
        .merge(
            Router::new()
                .route("/delegated", get(who))
                .route_layer(RequireActor::any(["gateway", "agent-1"]).max_depth(2)),
        )
        .merge(
            Router::new()
                .route("/either", get(who))
                .route_layer(RequireActor::any(["agent-1"]).or_direct()),
        )
        .merge(
            Router::new()
                .route("/admin", get(who))
                .route_layer(RequireRole::any(["admin"])),
        )
        .merge(
            Router::new()
                .route("/write", get(who))
                .route_layer(RequireScope::any(["write"])),
        )
        .route_layer(JwtAuthLayer::new(verifier))
}

fn with(extra: Value) -> String {
    let mut c = claims();
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    token(Algorithm::ES256, &c)
}

async fn get_as(app: &Router, path: &str, token: &str) -> (StatusCode, String) {
    let req = Request::get(path)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn listed_actors_within_the_depth_pass_and_the_subject_stays_the_principal() {
    let app = app();
    let one = with(json!({"act": {"sub": "agent-1"}}));
    assert_eq!(
        get_as(&app, "/delegated", &one).await,
        (StatusCode::OK, "user-1 via agent-1".into())
    );
    let two = with(json!({"act": {"sub": "gateway", "act": {"sub": "agent-1", "iss": ISSUER}}}));
    assert_eq!(
        get_as(&app, "/delegated", &two).await,
        (StatusCode::OK, "user-1 via gateway,agent-1".into())
    );
    // No act: refused by /delegated, allowed by /either (or_direct).
    let direct = with(json!({}));
    assert_eq!(get_as(&app, "/delegated", &direct).await.0, 403);
    assert_eq!(get_as(&app, "/either", &direct).await.0, 200);
}

#[tokio::test]
async fn a_chain_deeper_than_the_bound_is_refused() {
    let app = app();
    let three = with(json!({"act": {"sub": "gateway", "act": {"sub": "agent-1",
        "act": {"sub": "gateway"}}}}));
    assert_eq!(get_as(&app, "/delegated", &three).await.0, 403);
    // max_depth 1 (the default) on /either: two hops is too many.
    let two = with(json!({"act": {"sub": "agent-1", "act": {"sub": "agent-1"}}}));
    assert_eq!(get_as(&app, "/either", &two).await.0, 403);
}

#[tokio::test]
async fn an_unlisted_actor_anywhere_in_the_chain_or_from_another_issuer_is_refused() {
    let app = app();
    for act in [
        json!({"sub": "mallory"}),
        json!({"sub": "gateway", "act": {"sub": "mallory"}}),
        json!({"sub": "Agent-1"}),
        json!({"iss": "https://other.example", "sub": "agent-1"}),
        json!({"client_id": "agent-1"}),
    ] {
        let t = with(json!({ "act": act }));
        assert_eq!(get_as(&app, "/delegated", &t).await.0, 403, "{act}");
    }
    // A malformed act is an invalid token: 401.
    for act in [json!("agent-1"), json!({"sub": ["agent-1"]})] {
        let t = with(json!({ "act": act }));
        assert_eq!(get_as(&app, "/delegated", &t).await.0, 401, "{act}");
    }
}

#[tokio::test]
async fn an_actors_claims_never_authorize_the_request() {
    let app = app();
    // The actor holds admin and write; the token itself holds neither.
    let t = with(json!({"act": {"sub": "admin", "roles": ["admin"], "scope": "write"}}));
    assert_eq!(get_as(&app, "/admin", &t).await.0, 403);
    assert_eq!(get_as(&app, "/write", &t).await.0, 403);
    // The token's own claims do.
    let t = with(json!({"roles": ["admin"], "act": {"sub": "agent-1"}}));
    assert_eq!(
        get_as(&app, "/admin", &t).await,
        (StatusCode::OK, "user-1 via agent-1".into())
    );
}
