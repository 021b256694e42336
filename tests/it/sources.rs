//! Where tokens come from beyond headers and cookies: query parameters
//! (WebSocket/SSE clients), the application's own `FindToken`, and paths
//! the layer skips.

use crate::support as common;

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
    let app = sub_app(auth().skip_paths(["/health"]).unwrap());
    assert_eq!(status(&app, Request::builder().uri("/health")).await, 200);
    assert_eq!(
        status(&app, Request::builder().uri("/health/live")).await,
        200
    );
    assert_eq!(status(&app, Request::builder().uri("/healthz")).await, 401);
    assert_eq!(status(&app, Request::builder().uri("/ws")).await, 401);
}

// Requests as they come off the wire, on a real server: the path bytes and
// repeated header lines exactly as sent.
use crate::support::raw_http;

/// Behind an upstream that resolves dot-segments or decodes `%2f` (a proxy,
/// a path-joining gateway), every spelling reaches some handler: the
/// fallback stands for "the route the upstream resolved it to".
fn behind_a_resolving_upstream(layer: JwtAuthLayer) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/health/live", get(|| async { "ok" }))
        .fallback(|| async { "reached" })
        .layer(layer)
}

/// Paths whose meaning depends on who reads them: dot-segments, empty
/// segments, percent-encoded `.`, `/` and `\`, a backslash.
const UNCLEAR_UNDER_HEALTH: [&str; 14] = [
    "/health/../admin",
    "/health/./../admin",
    "/health/%2e%2e/admin",
    "/health/%2E%2e/admin",
    "/health/.%2E/admin",
    "/health%2f..%2fadmin",
    "/health/..%2Fadmin",
    "/health/..%5cadmin",
    "/health/..\\admin",
    "/health//../admin",
    "/health/..;/admin",
    "/health/.",
    "/health/%2e",
    "/health/live/..",
];

#[tokio::test]
async fn a_skip_never_applies_to_dot_segments_empty_segments_or_encoded_separators() {
    let addr = raw_http::serve(behind_a_resolving_upstream(
        auth().skip_paths(["/health"]).unwrap(),
    ))
    .await;
    for path in UNCLEAR_UNDER_HEALTH {
        let a = raw_http::get(addr, path, &[]).await;
        assert_eq!(a.status, 401, "{path} skipped authentication: {a:?}");
        assert_ne!(a.body, "reached", "{path}");
    }
    // The plain spellings are still skipped; a dot inside a segment (gRPC
    // methods, file names) is no dot-segment.
    for path in [
        "/health",
        "/health/",
        "/health/live",
        "/health/v1.live",
        "/health?x=../a",
    ] {
        let a = raw_http::get(addr, path, &[]).await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
    }
    // With a token, an unclear path is authenticated like any other.
    let t = token(Algorithm::ES256, &claims());
    let bearer = format!("Authorization: Bearer {t}");
    let a = raw_http::get(addr, "/health/../admin", &[&bearer]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "reached"));
}

/// The setting and message of a build error.
fn config_error(err: tower_jwt_auth::BuildError) -> (&'static str, String) {
    let message = err.to_string();
    match err {
        tower_jwt_auth::BuildError::InvalidConfig(e) => (e.setting(), message),
        other => panic!("not a configuration error: {other}"),
    }
}

#[test]
fn skip_entries_that_are_empty_or_relative_are_refused_at_build_time() {
    // What `env::var("SKIP").unwrap_or_default().split(',')` gives for an
    // unset variable, or a list with a trailing comma.
    let unset = std::env::var("TOWER_JWT_AUTH_TEST_UNSET").unwrap_or_default();
    for entries in [
        unset.split(',').collect::<Vec<_>>(),
        "/health,".split(',').collect(),
        vec!["health"],
        vec!["/health", " /metrics"],
        vec!["/health/../admin"],
        vec!["//health"],
        vec!["/health%2Fadmin"],
    ] {
        let err = auth().skip_paths(entries.clone()).unwrap_err();
        let (setting, message) = config_error(err);
        assert_eq!(setting, "skip_paths", "{entries:?}");
        assert!(message.contains("the path"), "{message}");
    }
    // No entries at all skip nothing, and are fine.
    assert!(auth().skip_paths(Vec::<String>::new()).is_ok());
}

#[tokio::test]
async fn grpc_method_paths_are_skipped_by_service_and_by_method() {
    let addr = raw_http::serve(behind_a_resolving_upstream(
        auth()
            .skip_paths(["/grpc.health.v1.Health", "/pkg.v1.Svc/Ping"])
            .unwrap(),
    ))
    .await;
    for path in [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/pkg.v1.Svc/Ping",
    ] {
        assert_eq!(raw_http::get(addr, path, &[]).await.status, 200, "{path}");
    }
    for path in [
        "/pkg.v1.Svc/PingAll",
        "/pkg.v1.Svc/Other",
        "/grpc.health.v1.Health/../../pkg.v1.Svc/Other",
    ] {
        assert_eq!(raw_http::get(addr, path, &[]).await.status, 401, "{path}");
    }
}

/// The application's own cookie reader: a credential the browser sends on
/// its own, on requests other sites make it send too.
struct SessionCookie;

impl FindToken for SessionCookie {
    fn find<'r>(
        &self,
        _uri: &'r Uri,
        headers: &'r HeaderMap,
    ) -> Result<Option<&'r str>, AuthError> {
        Ok(headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix("sid=")))
    }
}

/// A `POST /r` route behind `layer`.
async fn post_server(layer: JwtAuthLayer) -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/r",
            axum::routing::post(|c: Claims| async move { c.sub().unwrap_or("").to_owned() }),
        )
        .layer(layer);
    raw_http::serve(app).await
}

async fn post(addr: std::net::SocketAddr, headers: &[&str]) -> raw_http::Answer {
    raw_http::send(addr, "POST", "/r", headers).await
}

#[tokio::test]
async fn a_custom_source_is_ambient_by_default_so_cross_site_posts_are_refused() {
    let t = token(Algorithm::ES256, &claims());
    let cookie = format!("Cookie: sid={t}");
    let addr = post_server(auth().sources([TokenSource::custom(SessionCookie)])).await;
    for signal in ["Sec-Fetch-Site: cross-site", "Origin: https://evil.example"] {
        let a = post(addr, &[&cookie, signal]).await;
        assert_eq!(a.status, 403, "{signal}: {a:?}");
    }
    // The same requests from the site itself pass.
    let a = post(addr, &[&cookie, "Sec-Fetch-Site: same-origin"]).await;
    assert_eq!(a.status, 200, "{a:?}");
    let origin = format!("Origin: http://{addr}");
    assert_eq!(post(addr, &[&cookie, &origin]).await.status, 200);
}

/// The same reader, declared not ambient (say the header is set by the
/// application's own client only).
struct DeclaredNotAmbient;

impl FindToken for DeclaredNotAmbient {
    fn find<'r>(&self, uri: &'r Uri, headers: &'r HeaderMap) -> Result<Option<&'r str>, AuthError> {
        SessionCookie.find(uri, headers)
    }

    fn ambient(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn a_custom_source_declared_not_ambient_is_not_csrf_checked() {
    let t = token(Algorithm::ES256, &claims());
    let cookie = format!("Cookie: sid={t}");
    let addr = post_server(auth().sources([TokenSource::custom(DeclaredNotAmbient)])).await;
    for signal in ["Sec-Fetch-Site: cross-site", "Origin: https://evil.example"] {
        let a = post(addr, &[&cookie, signal]).await;
        assert_eq!((a.status, a.body.as_str()), (200, "user-1"), "{signal}");
    }
}

#[tokio::test]
async fn more_than_one_sec_fetch_site_or_origin_value_is_cross_site() {
    let t = token(Algorithm::ES256, &claims());
    let cookie = format!("Cookie: at={t}");
    let layer = auth()
        .sources([TokenSource::cookie("at")])
        .csrf(tower_jwt_auth::CsrfPolicy::new().trusted_origin("https://app.example"));
    let addr = post_server(layer).await;
    let host_origin = format!("Origin: http://{addr}");
    let refused: [&[&str]; 6] = [
        // Two lines: the first must not decide.
        &["Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: cross-site"],
        &["Sec-Fetch-Site: none", "Sec-Fetch-Site: same-site"],
        // Two values on one line.
        &["Sec-Fetch-Site: same-origin, cross-site"],
        &["Sec-Fetch-Site: same-origin,same-origin"],
        // A trusted origin next to another one.
        &[
            "Origin: https://app.example",
            "Origin: https://evil.example",
            "Sec-Fetch-Site: cross-site",
        ],
        // Without Sec-Fetch-Site, the request's own origin next to another.
        &[&host_origin, "Origin: https://evil.example"],
    ];
    for signals in refused {
        let mut headers = vec![cookie.as_str()];
        headers.extend_from_slice(signals);
        let a = post(addr, &headers).await;
        assert_eq!(a.status, 403, "{signals:?}: {a:?}");
    }
    let allowed: [&[&str]; 4] = [
        &["Sec-Fetch-Site: same-origin"],
        &["Sec-Fetch-Site: none"],
        &["Origin: https://app.example", "Sec-Fetch-Site: cross-site"],
        &[&host_origin],
    ];
    for signals in allowed {
        let mut headers = vec![cookie.as_str()];
        headers.extend_from_slice(signals);
        let a = post(addr, &headers).await;
        assert_eq!(a.status, 200, "{signals:?}: {a:?}");
    }
}
