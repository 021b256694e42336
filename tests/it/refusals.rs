//! Refusals stay refusals: regression tests for the findings of the outside
//! security review (issue 14). Each test is named for what it proves.

use crate::support as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use common::*;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, ORIGIN, WWW_AUTHENTICATE};
use http::{HeaderName, Method, Request, StatusCode, Version};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::revocation::MemoryRevocation;
use tower_jwt_auth::{
    Algorithm, AuthError, Claims, CsrfPolicy, JwtAuthLayer, RequireClaims, RequireRole,
    RequireScope, TokenSource, Verifier,
};

const ALG: Algorithm = Algorithm::ES256;

fn verifier() -> Verifier {
    Verifier::builder()
        .key(verify_key(ALG))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

fn auth() -> JwtAuthLayer {
    JwtAuthLayer::new(verifier())
}

/// Valid claims plus `extra` (a `null` removes a member).
fn token_with(extra: Value) -> String {
    let mut c = claims();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    token(ALG, &c)
}

struct Answer {
    status: StatusCode,
    challenge: String,
    grpc_status: Option<String>,
    body: String,
}

async fn send(app: &Router, req: http::request::Builder) -> Answer {
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let challenge = header(WWW_AUTHENTICATE.as_str()).unwrap_or_default();
    let grpc_status = header("grpc-status");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        challenge,
        grpc_status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get_req(token: Option<&str>) -> http::request::Builder {
    let mut req = Request::builder().uri("/r");
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    req
}

// 1. A refusal never turns into a 2xx because the client claims gRPC.

const GRPC_TYPES: [&str; 7] = [
    "application/grpc",
    "application/grpc+proto",
    "application/grpc+json",
    "application/grpc-web",
    "application/grpc-web-text",
    "APPLICATION/GRPC",
    "Application/gRPC-Web+proto",
];

#[tokio::test]
async fn grpc_content_type_on_an_http_route_never_gets_a_2xx() {
    let app = Router::new()
        .route("/r", get(|| async { "secret" }))
        .route_layer(auth());
    let forged =
        token_raw(ALG, r#"{"alg":"ES256","kid":"k1"}"#, &claims().to_string()).replace(".", ".x");
    for ct in GRPC_TYPES {
        for version in [Version::HTTP_11, Version::HTTP_2] {
            for token in [None, Some("not.a.token"), Some(forged.as_str())] {
                let req = get_req(token)
                    .version(version)
                    .header(CONTENT_TYPE, ct)
                    .header("te", "trailers");
                let a = send(&app, req).await;
                assert!(
                    a.status.is_client_error(),
                    "{ct} {version:?} {token:?}: {}",
                    a.status
                );
                assert_eq!(a.grpc_status, None, "{ct}");
                assert_ne!(a.body, "secret");
            }
        }
    }
}

#[tokio::test]
async fn grpc_content_type_never_turns_a_guard_refusal_into_a_2xx() {
    let app = Router::new()
        .route("/r", get(|| async { "secret" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(auth());
    let user = token_with(json!({"roles": ["user"]}));
    for ct in GRPC_TYPES {
        let req = get_req(Some(&user))
            .version(Version::HTTP_2)
            .header(CONTENT_TYPE, ct)
            .header("te", "trailers");
        let a = send(&app, req).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{ct}");
        assert_eq!(a.grpc_status, None, "{ct}");
    }
    // A guard without any auth layer (a wiring bug) is a 500, never a 200.
    let unwired = Router::new()
        .route("/r", get(|| async { "secret" }))
        .route_layer(RequireRole::any(["admin"]));
    let a = send(
        &unwired,
        get_req(None).header(CONTENT_TYPE, "application/grpc"),
    )
    .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_layer_configured_for_grpc_answers_grpc_requests_in_grpc_form() {
    let app = Router::new()
        .route("/r", get(|| async { "secret" }))
        .route_layer(auth().grpc());
    let a = send(
        &app,
        get_req(None)
            .version(Version::HTTP_2)
            .header(CONTENT_TYPE, "application/grpc")
            .header("te", "trailers"),
    )
    .await;
    assert_eq!(a.grpc_status.as_deref(), Some("16"));
    // The same layer still answers a non-gRPC request with a plain 401.
    let a = send(&app, get_req(None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.grpc_status, None);
}

// 2. Roles and groups given as a string are one value; only scopes split,
// and only on ASCII spaces.

#[tokio::test]
async fn a_role_string_is_one_value_never_split_on_whitespace() {
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(auth());
    for roles in [
        json!("read-only admin"),
        json!("Domain Admins"),
        json!("x\tadmin"),
        json!("x\u{a0}admin"),
        json!(["read-only admin"]),
    ] {
        let a = send(&app, get_req(Some(&token_with(json!({ "roles": roles }))))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{roles}");
    }
    let a = send(&app, get_req(Some(&token_with(json!({"roles": "admin"}))))).await;
    assert_eq!(a.status, StatusCode::OK);
    let groups = RequireRole::any(["Admins"]).sources([tower_jwt_auth::ClaimSource::okta_groups()]);
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(groups)
        .route_layer(auth());
    let a = send(
        &app,
        get_req(Some(&token_with(json!({"groups": "Domain Admins"})))),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn scopes_split_on_ascii_space_only() {
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(RequireScope::any(["write"]))
        .route_layer(auth());
    let ok = send(
        &app,
        get_req(Some(&token_with(json!({"scope": "read write"})))),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let ok = send(
        &app,
        get_req(Some(&token_with(json!({"scp": "read  write "})))),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    for scope in ["read\twrite", "read\u{a0}write", "read\nwrite", "Write"] {
        let a = send(&app, get_req(Some(&token_with(json!({ "scope": scope }))))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{scope:?}");
    }
}

// 3. A payload a JSON parser refuses is a malformed token.

#[tokio::test]
async fn out_of_range_numbers_make_the_token_malformed() {
    // A predicate a user might write: "not banned".
    let not_banned = RequireClaims::new(|c: &Claims| c.payload()["banned"] != true);
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(not_banned)
        .route_layer(auth());
    let base = claims().to_string();
    for extra in [
        r#""banned":1e400"#,
        r#""banned":-1e400"#,
        r#""nested":{"x":[1,2,1e999]}"#,
    ] {
        let payload = format!("{{{extra},{}", &base[1..]);
        let t = token_raw(ALG, r#"{"alg":"ES256","kid":"k1"}"#, &payload);
        let a = send(&app, get_req(Some(&t))).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{extra}");
        assert!(a.challenge.contains("invalid_token"), "{extra}");
        // Through the typed path too.
        let typed: Result<Claims<serde_json::Value>, AuthError> = verifier().verify(&t);
        assert!(typed.is_err(), "{extra}");
        #[derive(serde::Deserialize)]
        struct Sub {
            #[allow(dead_code)]
            sub: String,
        }
        assert!(verifier().verify::<Sub>(&t).is_err(), "{extra}");
    }
}

// 4. `iat` in the future beyond the leeway is refused.

#[test]
fn iat_in_the_future_beyond_the_leeway_is_refused() {
    let v = verifier();
    let far = token_with(json!({"iat": now() + 3600}));
    let err = v.verify::<tower_jwt_auth::JsonClaims>(&far).unwrap_err();
    assert_eq!(err.reason(), "issued_in_future", "{err}");
    let skewed = token_with(json!({"iat": now() + 10}));
    assert!(v.verify::<tower_jwt_auth::JsonClaims>(&skewed).is_ok());
}

#[tokio::test]
async fn a_future_iat_cannot_escape_a_subject_revocation() {
    let revoked = MemoryRevocation::new();
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(auth().revocation(revoked.clone()));
    revoked.revoke_subject(ISSUER, "user-1", now());
    let escaping = token_with(json!({"iat": now() + 10 * 365 * 86400}));
    let a = send(&app, get_req(Some(&escaping))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

// 5. Two different cookies with the token's name are ambiguous.

#[tokio::test]
async fn conflicting_duplicate_cookies_are_refused() {
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(auth().sources([TokenSource::cookie("at")]));
    let good = token_with(json!({}));
    let other = token_with(json!({"sub": "attacker"}));
    for cookies in [
        vec![format!("at={other}; at={good}")],
        vec![format!("at={other}"), format!("x=1; at={good}")],
    ] {
        let mut req = Request::builder().uri("/r");
        for c in &cookies {
            req = req.header(COOKIE, c);
        }
        let a = send(&app, req).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{cookies:?}");
        assert!(a.challenge.contains("invalid_request"));
    }
    // The same value twice is not ambiguous.
    let req = Request::builder()
        .uri("/r")
        .header(COOKIE, format!("at={good}; at={good}"));
    assert_eq!(send(&app, req).await.status, StatusCode::OK);
}

// 8. Guard paths match whole segments.

#[tokio::test]
async fn guard_paths_match_whole_path_segments() {
    let app = Router::new()
        .route("/admin", get(|| async { "ok" }))
        .route("/admin/", get(|| async { "ok" }))
        .route("/admin/x", get(|| async { "ok" }))
        .route("/administrator", get(|| async { "ok" }))
        .layer(RequireRole::any(["admin"]).paths(["/admin"]).unwrap())
        .layer(auth());
    let user = token_with(json!({"roles": ["user"]}));
    for (path, want) in [
        ("/admin", StatusCode::FORBIDDEN),
        ("/admin/", StatusCode::FORBIDDEN),
        ("/admin/x", StatusCode::FORBIDDEN),
        ("/administrator", StatusCode::OK),
    ] {
        let req = Request::builder()
            .uri(path)
            .header(AUTHORIZATION, format!("Bearer {user}"));
        assert_eq!(send(&app, req).await.status, want, "{path}");
    }
}

// 9. Revocation is scoped by issuer.

#[tokio::test]
async fn revocation_is_scoped_by_issuer() {
    let revoked = MemoryRevocation::new();
    let a_verifier = verifier();
    let b_verifier = Verifier::builder()
        .key(verify_key(ALG))
        .issuer("https://other.test")
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let both = Verifier::any_of([a_verifier, b_verifier]).unwrap();
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(JwtAuthLayer::new(both).revocation(revoked.clone()));
    let at_a = token_with(json!({"jti": "j1"}));
    let at_b = token_with(json!({"jti": "j1", "iss": "https://other.test"}));
    revoked.revoke(ISSUER, "j1", now() + 3600);
    assert_eq!(send(&app, get_req(Some(&at_a))).await.status, 401);
    assert_eq!(send(&app, get_req(Some(&at_b))).await.status, 200);
    revoked.revoke_subject("https://other.test", "user-1", now());
    let b2 = token_with(json!({"jti": "j2", "iss": "https://other.test", "iat": now() - 5}));
    let a2 = token_with(json!({"jti": "j2", "iat": now() - 5}));
    assert_eq!(send(&app, get_req(Some(&b2))).await.status, 401);
    assert_eq!(send(&app, get_req(Some(&a2))).await.status, 200);
}

// 10. A clock that cannot be read refuses tokens.

#[test]
fn an_unreadable_clock_refuses_every_token() {
    let broken = Verifier::builder()
        .key(verify_key(ALG))
        .audience(AUDIENCE)
        .clock(|| UNIX_EPOCH - Duration::from_secs(1))
        .build()
        .unwrap();
    let expired = token_with(json!({"exp": 1000}));
    let valid = token_with(json!({}));
    for t in [expired, valid] {
        let err = broken.verify::<tower_jwt_auth::JsonClaims>(&t).unwrap_err();
        assert_eq!(err.reason(), "clock_unavailable", "{err}");
        assert_eq!(err.kind(), tower_jwt_auth::ErrorKind::Unavailable);
    }
}

#[test]
fn a_settable_clock_drives_expiry() {
    let at = Arc::new(AtomicI64::new(now()));
    let clock = at.clone();
    let v = Verifier::builder()
        .key(verify_key(ALG))
        .audience(AUDIENCE)
        .clock(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst) as u64))
        .build()
        .unwrap();
    let t = token_with(json!({"exp": now() + 60}));
    assert!(v.verify::<tower_jwt_auth::JsonClaims>(&t).is_ok());
    at.fetch_add(60 + 31, Ordering::SeqCst);
    assert_eq!(
        v.verify::<tower_jwt_auth::JsonClaims>(&t)
            .unwrap_err()
            .reason(),
        "expired"
    );
}

// 11. One renderer, one configuration: the realm set on the layer shows in
// every refusal, wherever it is made.

#[tokio::test]
async fn every_refusal_carries_the_layers_realm() {
    async fn handler_refuses(_c: Claims) -> Result<&'static str, AuthError> {
        Err(AuthError::InsufficientScope {
            required: "x".into(),
        })
    }
    async fn needs_claims(_c: Claims) -> &'static str {
        "ok"
    }
    let layer = auth().realm("orders");
    let app = Router::new()
        .route("/guarded", get(|| async { "ok" }))
        .route_layer(RequireRole::any(["admin"]))
        .route("/handler", get(handler_refuses))
        .route_layer(layer.clone())
        .merge(
            Router::new()
                .route("/optional", get(needs_claims))
                .route_layer(layer.optional()),
        );
    let user = token_with(json!({"roles": ["user"]}));
    for (path, token, status) in [
        ("/guarded", Some(user.as_str()), StatusCode::FORBIDDEN),
        ("/guarded", None, StatusCode::UNAUTHORIZED),
        ("/handler", Some(user.as_str()), StatusCode::FORBIDDEN),
        ("/optional", None, StatusCode::UNAUTHORIZED),
    ] {
        let mut req = Request::builder().uri(path);
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let a = send(&app, req).await;
        assert_eq!(a.status, status, "{path}");
        assert!(
            a.challenge.starts_with(r#"Bearer realm="orders""#),
            "{path}: {}",
            a.challenge
        );
    }
}

// 12. Cookie tokens and CSRF.

fn cookie_app(policy: Option<CsrfPolicy>) -> Router {
    let mut layer = auth().sources([TokenSource::Bearer, TokenSource::cookie("at")]);
    if let Some(p) = policy {
        layer = layer.csrf(p);
    }
    Router::new()
        .route("/r", post(|| async { "done" }).get(|| async { "read" }))
        .route_layer(layer)
}

fn cookie_post(token: &str) -> http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri("/r")
        .header("host", "api.example.com")
        .header(COOKIE, format!("at={token}"))
}

#[tokio::test]
async fn cross_site_posts_with_cookie_tokens_are_refused() {
    let app = cookie_app(None);
    let t = token_with(json!({}));
    // Browsers say where the request comes from.
    for site in ["cross-site", "same-site"] {
        let a = send(&app, cookie_post(&t).header("sec-fetch-site", site)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{site}");
        assert_ne!(a.body, "done");
    }
    for site in ["same-origin", "none"] {
        let a = send(&app, cookie_post(&t).header("sec-fetch-site", site)).await;
        assert_eq!(a.status, StatusCode::OK, "{site}");
    }
    // Older browsers: Origin against Host.
    let a = send(&app, cookie_post(&t).header(ORIGIN, "https://evil.example")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(
        &app,
        cookie_post(&t).header(ORIGIN, "https://api.example.com"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // Every unsafe method.
    for m in [Method::PUT, Method::PATCH, Method::DELETE] {
        let req = cookie_post(&t)
            .method(m.clone())
            .header("sec-fetch-site", "cross-site");
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(
            res.status() == StatusCode::FORBIDDEN || res.status() == StatusCode::METHOD_NOT_ALLOWED,
            "{m}"
        );
        assert!(!res.status().is_success(), "{m}");
    }
}

#[tokio::test]
async fn csrf_rules_spare_safe_methods_and_header_tokens() {
    let app = cookie_app(None);
    let t = token_with(json!({}));
    let get = Request::builder()
        .uri("/r")
        .header(COOKIE, format!("at={t}"))
        .header("sec-fetch-site", "cross-site");
    assert_eq!(send(&app, get).await.status, StatusCode::OK);
    let header_token = Request::builder()
        .method(Method::POST)
        .uri("/r")
        .header(AUTHORIZATION, format!("Bearer {t}"))
        .header("sec-fetch-site", "cross-site");
    assert_eq!(send(&app, header_token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn csrf_trusted_origins_and_double_submit() {
    let t = token_with(json!({}));
    let app = cookie_app(Some(
        CsrfPolicy::new().trusted_origin("https://app.example.com"),
    ));
    let a = send(
        &app,
        cookie_post(&t)
            .header("sec-fetch-site", "cross-site")
            .header(ORIGIN, "https://app.example.com"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let header = HeaderName::from_static("x-csrf-token");
    let app = cookie_app(Some(
        CsrfPolicy::new().double_submit("csrf", header.clone()),
    ));
    let same = |extra: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/r")
            .header(COOKIE, format!("at={t}; csrf=abc123{extra}"))
            .header("sec-fetch-site", "same-origin")
    };
    assert_eq!(
        send(&app, same("").header(&header, "abc123")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, same("").header(&header, "abc124")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(send(&app, same("")).await.status, StatusCode::FORBIDDEN);
    let app = cookie_app(Some(CsrfPolicy::disabled()));
    let a = send(&app, cookie_post(&t).header("sec-fetch-site", "cross-site")).await;
    assert_eq!(a.status, StatusCode::OK);
}

// 13. Multi-issuer verifiers hit the token cache inside the leeway window.

#[tokio::test]
async fn multi_issuer_cache_hits_inside_the_leeway() {
    let tenant = Verifier::builder()
        .key(verify_key(ALG))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let both = Verifier::any_of([tenant]).unwrap();
    let layer = JwtAuthLayer::new(both).cache(TokenCache::new());
    let app = Router::new()
        .route("/r", get(|| async { "ok" }))
        .route_layer(layer.clone());
    // Expired 5 s ago: inside the 30 s leeway.
    let t = token_with(json!({"exp": now() - 5}));
    for _ in 0..3 {
        assert_eq!(send(&app, get_req(Some(&t))).await.status, StatusCode::OK);
    }
    assert_eq!(layer.cache_stats().unwrap().hits, 2);
}

#[allow(dead_code)]
fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Issue 26, suspicion 8 (RFC 9449 §7.1, RFC 8705 §3): a token bound to a
/// key (`cnf`) is refused unless the layer verifies that binding: without
/// a DPoP policy a `cnf.jkt` token sent as `Bearer` is a stolen bearer
/// token, and nothing here verifies `x5t#S256` (mTLS), `jwk`, `jku` or
/// `kid` bindings. Through the token cache too, and with `cnf` spelled
/// with an escape. `accept_unverified_binding` is the named opt-out.
#[tokio::test]
async fn a_token_bound_by_a_method_the_layer_does_not_verify_is_refused() {
    let app = |layer: JwtAuthLayer| -> Router {
        Router::new()
            .route("/r", get(|| async { "in" }))
            .route_layer(layer)
    };
    let plain = app(auth());
    let cached = app(auth().cache(TokenCache::new()));
    let opted_out = app(auth().accept_unverified_binding());
    let thumb = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    let bound = [
        ("cnf.jkt", token_with(json!({"cnf": {"jkt": thumb}}))),
        (
            "cnf.x5t#S256",
            token_with(json!({"cnf": {"x5t#S256": thumb}})),
        ),
        (
            "cnf.jwk",
            token_with(json!({"cnf": {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": thumb}}})),
        ),
        ("cnf.kid", token_with(json!({"cnf": {"kid": "k1"}}))),
        (
            "cnf.jku",
            token_with(json!({"cnf": {"jku": "https://a.example/jwks"}})),
        ),
        (
            "escaped cnf",
            token_raw(
                ALG,
                r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#,
                &json_with_escaped_cnf(thumb),
            ),
        ),
    ];
    for (what, t) in &bound {
        for (app_name, app) in [("plain", &plain), ("cached", &cached), ("cached", &cached)] {
            let a = send(app, get_req(Some(t))).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}, {app_name}");
            assert!(
                a.challenge.contains("invalid_token"),
                "{what}: {}",
                a.challenge
            );
            assert_ne!(a.body, "in");
        }
        let a = send(&opted_out, get_req(Some(t))).await;
        assert_eq!(a.status, StatusCode::OK, "{what}, opted out");
    }
    // Unbound tokens are unaffected; an empty `cnf` names no method.
    for t in [token_with(json!({})), token_with(json!({"cnf": {}}))] {
        assert_eq!(send(&plain, get_req(Some(&t))).await.status, StatusCode::OK);
        assert_eq!(
            send(&cached, get_req(Some(&t))).await.status,
            StatusCode::OK
        );
    }
    // A `cnf` that is not an object is malformed.
    let odd = token_with(json!({"cnf": "x"}));
    assert_eq!(
        send(&plain, get_req(Some(&odd))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The valid claims with `"c\u006ef": {"x5t#S256": thumb}`: `cnf` spelled
/// with a JSON escape, the same member once decoded.
fn json_with_escaped_cnf(thumb: &str) -> String {
    let mut c = serde_json::to_string(&claims()).unwrap();
    c.pop();
    format!(r#"{c},"c\u006ef":{{"x5t#S256":"{thumb}"}}}}"#)
}
