//! Opaque tokens through the layer: `Introspector` (RFC 7662) against a real
//! authorization server (`oidc-provider`, see tests/support/oidc.rs) and
//! against a loopback server for the faults (slow, 500, bad JSON, odd
//! `active`) and for sharing one call among concurrent requests.

use crate::support::example;
use crate::support::oidc;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode};
use serde_json::Value;
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::introspection::{
    ClientAuth, ClientKey, Introspector, IntrospectorBuilder, JwtOrIntrospect, JwtThenIntrospect,
};
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::{Algorithm, AuthError, Claims, JwtAuthLayer, Verifier};
use tower_layer::Layer;

const API: &str = "urn:tower-jwt-auth:api";
const OPAQUE: &str = "urn:tower-jwt-auth:opaque";

/// One request through the layer: the status, and the verified payload
/// (admitted) or the `WWW-Authenticate` challenge (refused).
async fn call(layer: &JwtAuthLayer, token: &str) -> (StatusCode, String) {
    let svc = layer.layer(service_fn(|req: Request<()>| async move {
        let claims = req.extensions().get::<Claims>().unwrap();
        Ok::<_, Infallible>(Response::new(claims.json().to_owned()))
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

fn introspector(provider: &oidc::Provider, client: &str) -> IntrospectorBuilder {
    Introspector::builder(format!("{}/token/introspection", provider.issuer))
        .client_credentials(client, format!("secret-of-{client}"))
        .issuer(provider.issuer.clone())
        .audience(OPAQUE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_opaque_tokens_are_introspected_and_revocation_is_seen() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let token = provider.token(&http, "client-rs256", OPAQUE).await;
    assert!(!token.contains('.'), "an opaque token: {token}");

    let intro = introspector(&provider, "api-introspector")
        .max_ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(intro);
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let claims: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["client_id"], "client-rs256", "{claims}");
    assert_eq!(claims["scope"], "api:read", "{claims}");
    assert_eq!(claims["iss"], provider.issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], OPAQUE, "{claims}");

    // An unknown token: inactive.
    let (status, text) = call(&layer, "2YotnFZFEjr1zCsicMWpAA").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("invalid_token"), "{text}");
    assert!(text.contains("not active"), "{text}");

    // Revoked at the provider: the cached answer serves until the maximum
    // TTL (2 s), then the next request is refused.
    provider.revoke(&http, "client-rs256", &token).await;
    let (status, _) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::OK, "still the cached answer");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("invalid_token"), "{text}");

    // client_secret_post.
    let token = provider.token(&http, "client-es256", OPAQUE).await;
    let post = introspector(&provider, "api-introspector-post")
        .client_auth(ClientAuth::SecretPost)
        .build()
        .unwrap();
    let (status, text) = call(&JwtAuthLayer::new(post), &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("client-es256"), "{text}");

    // A token for another resource server is refused on its audience.
    let other = introspector(&provider, "api-introspector").build().unwrap();
    let mine = provider.token(&http, "client-ps256", OPAQUE).await;
    let wrong_aud = Introspector::builder(format!("{}/token/introspection", provider.issuer))
        .client_credentials("api-introspector", "secret-of-api-introspector")
        .audience("urn:tower-jwt-auth:somebody-else")
        .build()
        .unwrap();
    assert_eq!(
        call(&JwtAuthLayer::new(other), &mine).await.0,
        StatusCode::OK
    );
    let (status, text) = call(&JwtAuthLayer::new(wrong_aud), &mine).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("audience"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_wrong_client_credentials_say_so() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let token = provider.token(&http, "client-rs256", OPAQUE).await;
    let wrong = Introspector::builder(format!("{}/token/introspection", provider.issuer))
        .client_credentials("api-introspector", "not-the-secret")
        .audience(OPAQUE)
        .build()
        .unwrap();
    // At startup: a dummy token shows the credentials are refused.
    let err = wrong.introspect("startup-check").await.unwrap_err();
    assert!(
        matches!(err, AuthError::IntrospectionUnavailable(_)),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("credentials"), "{text}");
    assert!(text.contains("401"), "{text}");
    // At request time: 503, failing closed, the token not in the message.
    let (status, _) = call(&JwtAuthLayer::new(wrong.clone()), &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!text.contains(&token));
    // With the right ones, the same check answers "inactive".
    let right = introspector(&provider, "api-introspector").build().unwrap();
    assert!(matches!(
        right.introspect("startup-check").await,
        Err(AuthError::Inactive)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_jwt_and_opaque_tokens_side_by_side() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let jwt = Verifier::builder()
        .jwks_cache(JwksCache::discover(&provider.issuer).build().unwrap())
        .issuer(provider.issuer.clone())
        .audience(API)
        .typ("at+jwt")
        .build()
        .unwrap();
    let opaque = introspector(&provider, "api-introspector")
        .any_audience()
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(JwtOrIntrospect::new(jwt, opaque));

    let token = provider.token(&http, "client-rs256", API).await;
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains("\"active\""), "verified locally: {text}");

    let token = provider.token(&http, "client-rs256", OPAQUE).await;
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"active\":true"), "introspected: {text}");

    // A forged JWT is refused locally, not sent to the endpoint.
    let jwt = provider.token(&http, "client-rs256", API).await;
    let forged = format!("{}AAAA", &jwt[..jwt.len() - 4]);
    let (status, text) = call(&layer, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("signature"), "{text}");
}

/// A loopback introspection endpoint: `POST /{mode}` answers as `mode`
/// says, counting calls, and refuses a request without the expected client
/// authentication or form. `POST /switch` answers as the mode set with
/// [`Faulty::switch`] says.
struct Faulty {
    base: String,
    calls: Arc<AtomicUsize>,
    /// The most calls it was answering at once.
    peak: Arc<AtomicUsize>,
    mode: Arc<Mutex<String>>,
}

#[derive(Clone)]
struct FaultyState {
    calls: Arc<AtomicUsize>,
    /// Calls being answered now, and the most at once.
    answering: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    mode: Arc<Mutex<String>>,
}

/// Counts a call as being answered until dropped.
struct Answering(Arc<AtomicUsize>);

impl Answering {
    fn start(state: &FaultyState) -> Self {
        let now = state.answering.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak.fetch_max(now, Ordering::SeqCst);
        Answering(Arc::clone(&state.answering))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

const SECRET: &str = "s3cr%t &more";

async fn faulty() -> Faulty {
    async fn answer(
        State(state): State<FaultyState>,
        Path(mode): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, String) {
        state.calls.fetch_add(1, Ordering::SeqCst);
        let _answering = Answering::start(&state);
        let mode = if mode == "switch" {
            state.mode.lock().unwrap().clone()
        } else {
            mode
        };
        // client_secret_basic, form-encoded before base64 (RFC 6749 §2.3.1).
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("api:s3cr%25t+%26more");
        if headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
            != Some(&format!("Basic {basic}"))
            || !body.starts_with("token=")
            || !body.ends_with("&token_type_hint=access_token")
            // Not chunked: some servers want the length (the form is sent
            // as a body that cannot be replayed, its length still known).
            || headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok())
                != Some(&body.len().to_string())
        {
            return (
                StatusCode::UNAUTHORIZED,
                r#"{"error":"invalid_client"}"#.into(),
            );
        }
        let ok =
            r#"{"active":true,"sub":"alice","aud":"api","exp":4102444800,"token_type":"Bearer"}"#;
        match mode.as_str() {
            "active" => (StatusCode::OK, ok.into()),
            "slow-active" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                (StatusCode::OK, ok.into())
            }
            "slower-active" => {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                (StatusCode::OK, ok.into())
            }
            "slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                (StatusCode::OK, ok.into())
            }
            "inactive" => (StatusCode::OK, r#"{"active":false}"#.into()),
            "active-exp-3s" => {
                let exp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 3;
                let body = format!(
                    r#"{{"active":true,"sub":"alice","aud":"api","exp":{exp},"token_type":"Bearer"}}"#
                );
                (StatusCode::OK, body)
            }
            "500" => (StatusCode::INTERNAL_SERVER_ERROR, "oops".into()),
            "bad-json" => (StatusCode::OK, r#"{"active":true,"#.into()),
            "no-active" => (StatusCode::OK, r#"{"sub":"alice","aud":"api"}"#.into()),
            "string-active" => (StatusCode::OK, r#"{"active":"true","aud":"api"}"#.into()),
            // Keycloak's answers: `typ` says which kind of token it is.
            "keycloak-access" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","typ":"Bearer","azp":"web"}"#.into(),
            ),
            "keycloak-refresh" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","typ":"Refresh","azp":"web"}"#.into(),
            ),
            "keycloak-offline" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","typ":"Offline","token_type":"Bearer"}"#
                    .into(),
            ),
            "keycloak-id" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","typ":"ID"}"#.into(),
            ),
            // RFC 7662 `token_type`, as Duende IdentityServer 7 and RFC 8693 name them.
            "refresh-token-type" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","token_type":"refresh_token"}"#.into(),
            ),
            "refresh-token-urn" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","token_type":"urn:ietf:params:oauth:token-type:refresh_token"}"#
                    .into(),
            ),
            "access-token-type" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","token_type":"access_token"}"#.into(),
            ),
            "dpop-token-type" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api","token_type":"DPoP"}"#.into(),
            ),
            // Ory Hydra (fosite): `token_use`.
            "hydra-refresh" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":["api"],"token_type":"Bearer","token_use":"refresh_token"}"#
                    .into(),
            ),
            "hydra-access" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":["api"],"token_type":"Bearer","token_use":"access_token"}"#
                    .into(),
            ),
            // No word on the kind of token (django-oauth-toolkit, IdentityServer 4).
            "untyped" => (
                StatusCode::OK,
                r#"{"active":true,"sub":"alice","aud":"api"}"#.into(),
            ),
            _ => (StatusCode::NOT_FOUND, String::new()),
        }
    }
    let state = FaultyState {
        calls: Arc::new(AtomicUsize::new(0)),
        answering: Arc::new(AtomicUsize::new(0)),
        peak: Arc::new(AtomicUsize::new(0)),
        mode: Arc::new(Mutex::new("active".into())),
    };
    let app = Router::new()
        .route("/{mode}", post(answer))
        .route(
            "/slow-issuer/.well-known/openid-configuration",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}"
            }),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Faulty {
        base,
        calls: state.calls,
        peak: state.peak,
        mode: state.mode,
    }
}

impl Faulty {
    fn layer(&self, mode: &str) -> JwtAuthLayer {
        JwtAuthLayer::new(self.introspector(mode))
    }

    fn introspector(&self, mode: &str) -> Introspector {
        self.builder(mode).build().unwrap()
    }

    fn builder(&self, mode: &str) -> IntrospectorBuilder {
        Introspector::builder(format!("{}/{mode}", self.base))
            .client_credentials("api", SECRET)
            .audience("api")
            .timeout(Duration::from_millis(500))
    }

    /// What `POST /switch` answers from now on.
    fn switch(&self, mode: &str) {
        *self.mode.lock().unwrap() = mode.into();
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn outages_fail_closed_and_odd_answers_are_refused() {
    let server = faulty().await;
    let (status, text) = call(&server.layer("active"), "opaque-1").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("alice"));

    let started = Instant::now();
    let (status, _) = call(&server.layer("slow"), "opaque-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "timeout");
    assert!(started.elapsed() < Duration::from_secs(2), "bounded wait");

    for mode in ["500", "bad-json"] {
        let (status, text) = call(&server.layer(mode), "opaque-1").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{mode}: {text}");
        assert!(!text.contains("invalid_token"), "{mode}: {text}");
    }
    for mode in ["no-active", "string-active", "inactive"] {
        let (status, text) = call(&server.layer(mode), "opaque-1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{mode}: {text}");
        assert!(text.contains("invalid_token"), "{mode}: {text}");
    }

    // The error messages name the fault, never the token.
    let intro = server.introspector("500");
    let err = intro.introspect("opaque-secret-token").await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert!(!err.to_string().contains("opaque-secret-token"), "{err}");
    let err = server
        .introspector("bad-json")
        .introspect("opaque-secret-token")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a JSON object"), "{err}");

    // An outage is not cached: the next request asks again.
    let before = server.calls();
    let layer = server.layer("500");
    call(&layer, "opaque-2").await;
    call(&layer, "opaque-2").await;
    assert_eq!(server.calls() - before, 2);
    // A negative answer is, briefly.
    let before = server.calls();
    let layer = server.layer("inactive");
    call(&layer, "opaque-2").await;
    call(&layer, "opaque-2").await;
    assert_eq!(server.calls() - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_token_share_one_call() {
    let server = faulty().await;
    let layer = server.layer("slow-active");
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let layer = layer.clone();
            tokio::spawn(async move { call(&layer, "shared-token").await.0 })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.calls(), 1, "20 concurrent requests, one call");
    // Cached now.
    assert_eq!(call(&layer, "shared-token").await.0, StatusCode::OK);
    assert_eq!(server.calls(), 1);
    // Another token is another call.
    assert_eq!(call(&layer, "other-token").await.0, StatusCode::OK);
    assert_eq!(server.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_goes_away_does_not_cancel_the_call() {
    let server = faulty().await;
    let layer = server.layer("slow-active");
    // The request is dropped while the endpoint takes its time.
    let gone = tokio::time::timeout(Duration::from_millis(50), call(&layer, "token-x")).await;
    assert!(gone.is_err(), "dropped before the answer");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.calls(), 1);
    // The call finished and was cached: no second call.
    assert_eq!(call(&layer, "token-x").await.0, StatusCode::OK);
    assert_eq!(server.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_server_switches_to_introspection() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/token/introspection", provider.issuer);
    let server = example::start("server", |cmd| {
        cmd.env("JWT_INTROSPECTION_URL", &url)
            .env("JWT_CLIENT_ID", "api-introspector")
            .env("JWT_CLIENT_SECRET", "secret-of-api-introspector")
            .env("JWT_ISSUER", &provider.issuer)
            .env("JWT_AUDIENCE", OPAQUE);
    })
    .await;
    let base = format!("http://{}", server.addr);
    let get = |path: &str, token: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let token = provider.token(&http, "client-rs256", OPAQUE).await;
    assert_eq!(get("/health", None).await.0, 200);
    assert_eq!(get("/ready", None).await.0, 200);
    let (status, body) = get("/me", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["client_id"], "client-rs256", "{me}");
    assert_eq!(me["sub"], Value::Null, "{me}");
    assert_eq!(get("/me", None).await.0, 401);
    assert_eq!(get("/me", Some("not-a-known-token")).await.0, 401);
    let (status, body) = get("/write", Some(&token)).await;
    assert_eq!(status, 403, "scope api:read only: {body}");
    let (status, body) = get("/maybe", Some(&token)).await;
    assert_eq!((status, body.as_str()), (200, r#"{"sub":null}"#));
}

/// The reference server with the endpoint found by discovery, a client
/// key (`private_key_jwt`) instead of a secret, and signed answers.
#[tokio::test]
async fn the_reference_server_introspects_by_discovery_with_a_client_key() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let (pem, kid) = &provider.client_key;
    let key_file = std::env::temp_dir().join(format!(
        "tower-jwt-auth-client-key-{}-{}.pem",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&key_file, pem).unwrap();
    let server = example::start("server", |cmd| {
        cmd.env("JWT_INTROSPECTION_DISCOVER", "1")
            .env("JWT_ISSUER", &provider.issuer)
            .env("JWT_CLIENT_ID", "api-introspector-jwt")
            .env("JWT_CLIENT_KEY", &key_file)
            .env("JWT_CLIENT_KEY_ID", kid)
            .env("JWT_INTROSPECTION_SIGNED", "1")
            .env("JWT_AUDIENCE", OPAQUE);
    })
    .await;
    let me = |token: String| {
        let req = http
            .get(format!("http://{}/me", server.addr))
            .bearer_auth(token);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    // Each request's call is a fresh assertion (the provider refuses a
    // replayed `jti`), and each answer a JWT the server verified.
    for client in ["client-rs256", "client-es256"] {
        let token = provider.token(&http, client, OPAQUE).await;
        let (status, body) = me(token).await;
        assert_eq!(status, 200, "{body}");
        let claims: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(claims["client_id"], client, "{claims}");
    }
    assert_eq!(me("not-a-known-token".into()).await.0, 401);
    std::fs::remove_file(&key_file).unwrap();

    // Settings that cannot work are refused at start, saying why.
    for (vars, says) in [
        (
            vec![("JWT_INTROSPECTION_DISCOVER", "1")],
            "needs JWT_ISSUER",
        ),
        (
            vec![
                ("JWT_INTROSPECTION_DISCOVER", "1"),
                ("JWT_ISSUER", provider.issuer.as_str()),
                ("JWT_CLIENT_ID", "api-introspector-jwt"),
                ("JWT_AUDIENCE", OPAQUE),
            ],
            "one of JWT_CLIENT_SECRET and JWT_CLIENT_KEY",
        ),
    ] {
        let out = example::run_to_exit("server", |cmd| {
            for (k, v) in &vars {
                cmd.env(k, v);
            }
        });
        assert!(!out.status.success(), "{vars:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{vars:?}: {stderr}");
    }
}

/// A call whose task died with its runtime (a test's runtime, an
/// application shutting one down) does not block the token for good.
#[test]
fn a_call_lost_with_its_runtime_is_made_again() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(faulty());
    let layer = server.layer("slow-active");
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(async {
        let gone = tokio::time::timeout(Duration::from_millis(50), call(&layer, "token-y")).await;
        assert!(gone.is_err(), "dropped before the answer");
    });
    // The runtime goes, and the call's task with it.
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, text) = second.block_on(call(&layer, "token-y"));
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(server.calls(), 2, "the lost call, then a new one");
}

#[cfg(feature = "metrics")]
#[test]
fn calls_are_counted_and_timed() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(faulty());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            assert!(server.introspector("active").introspect("t").await.is_ok());
            assert!(
                server
                    .introspector("inactive")
                    .introspect("t")
                    .await
                    .is_err()
            );
            assert!(server.introspector("500").introspect("t").await.is_err());
        })
    });
    let mut counters = std::collections::HashMap::new();
    let mut timings = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key.labels().map(|l| l.value().to_owned()).collect();
        match value {
            DebugValue::Counter(n) => {
                counters.insert(format!("{}{:?}", key.name(), labels), n);
            }
            DebugValue::Histogram(v) if key.name() == "jwt_auth_introspection_seconds" => {
                timings += v.len()
            }
            _ => {}
        }
    }
    for result in ["active", "inactive", "error"] {
        assert_eq!(
            counters.get(&format!("jwt_auth_introspections_total[\"{result}\"]")),
            Some(&1),
            "{counters:?}"
        );
    }
    assert_eq!(timings, 3);
}

/// Real-time revocation: an oidc-provider JWT verified locally, then checked
/// at an introspection endpoint. oidc-provider itself refuses to introspect
/// or revoke JWT access tokens (they are not stored; it answers
/// `unsupported_token_type`), so the endpoint that says "still active" is
/// the loopback one, switched to inactive as a revocation would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_then_introspect_sees_a_revocation_within_the_ttl() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let server = faulty().await;
    let jwt = || {
        Verifier::builder()
            .jwks_cache(JwksCache::discover(&provider.issuer).build().unwrap())
            .issuer(provider.issuer.clone())
            .audience(API)
            .typ("at+jwt")
            .build()
            .unwrap()
    };
    let still_active = server
        .builder("switch")
        .max_ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(JwtThenIntrospect::new(jwt(), still_active));
    let token = provider.token(&http, "client-rs256", API).await;

    server.switch("active");
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let claims: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        claims["client_id"], "client-rs256",
        "the JWT's claims: {claims}"
    );
    assert_eq!(claims["aud"], API, "{claims}");
    assert_eq!(claims["active"], Value::Null, "not the answer's: {claims}");
    assert_eq!(server.calls(), 1);
    // Cached: no second call.
    assert_eq!(call(&layer, &token).await.0, StatusCode::OK);
    assert_eq!(server.calls(), 1);

    // Revoked: refused once the cached answer's lifetime (1 s) is over.
    server.switch("inactive");
    assert_eq!(call(&layer, &token).await.0, StatusCode::OK, "cached");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("invalid_token"), "{text}");
    assert!(text.contains("not active"), "{text}");
    assert_eq!(server.calls(), 2);

    // A forged JWT, an opaque token, a token for another audience: refused
    // locally, never sent to the endpoint.
    server.switch("active");
    let forged = format!("{}AAAA", &token[..token.len() - 4]);
    let (status, text) = call(&layer, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("signature"), "{text}");
    let opaque = provider.token(&http, "client-rs256", OPAQUE).await;
    assert_eq!(call(&layer, &opaque).await.0, StatusCode::UNAUTHORIZED);
    let other = provider
        .token(&http, "client-rs256", "urn:tower-jwt-auth:other")
        .await;
    let (status, text) = call(&layer, &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("audience"), "{text}");
    assert_eq!(server.calls(), 2);

    // The endpoint down: fail closed.
    let fresh = provider.token(&http, "client-rs256", API).await;
    server.switch("500");
    assert_eq!(
        call(&layer, &fresh).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // oidc-provider as the endpoint: it will not introspect a JWT, and the
    // composition fails closed rather than admit it.
    let at_provider = JwtAuthLayer::new(JwtThenIntrospect::new(
        jwt(),
        introspector(&provider, "api-introspector")
            .any_audience()
            .build()
            .unwrap(),
    ));
    assert_eq!(
        call(&at_provider, &fresh).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_serves_a_cached_active_answer_for_a_while() {
    let server = faulty().await;
    let builder = || {
        server
            .builder("switch")
            .max_ttl(Duration::from_secs(1))
            .stale_if_error(Duration::from_secs(2))
    };
    let layer = JwtAuthLayer::new(builder().build().unwrap());
    server.switch("active");
    assert_eq!(call(&layer, "tok-a").await.0, StatusCode::OK);
    for fault in ["500", "bad-json", "slow"] {
        server.switch(fault);
        // Fresh: no call at all.
        let before = server.calls();
        assert_eq!(call(&layer, "tok-a").await.0, StatusCode::OK, "{fault}");
        assert_eq!(server.calls(), before, "{fault}");
        // Past its freshness, the endpoint failing: the answer stands in.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (status, text) = call(&layer, "tok-a").await;
        assert_eq!(status, StatusCode::OK, "{fault}: {text}");
        assert!(text.contains("alice"), "{text}");
        assert_eq!(server.calls(), before + 1, "{fault}: asked first");
        // A working endpoint refreshes the answer.
        server.switch("active");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(call(&layer, "tok-a").await.0, StatusCode::OK);
    }
    // Past the window (1 s fresh + 2 s stale): refused, 503.
    server.switch("500");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, text) = call(&layer, "tok-a").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");

    // Never past the token's own exp (2 to 3 s after the answer), however
    // long the window.
    let long = JwtAuthLayer::new(
        server
            .builder("switch")
            .max_ttl(Duration::from_secs(1))
            .stale_if_error(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    server.switch("active-exp-3s");
    assert_eq!(call(&long, "tok-b").await.0, StatusCode::OK);
    server.switch("500");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        call(&long, "tok-b").await.0,
        StatusCode::OK,
        "stale, before exp"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        call(&long, "tok-b").await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "past exp, inside the window"
    );

    // A negative answer is never served as active: once the endpoint says
    // inactive (even uncached), an outage refuses the token.
    let layer = JwtAuthLayer::new(builder().negative_ttl(Duration::ZERO).build().unwrap());
    server.switch("active");
    assert_eq!(call(&layer, "tok-c").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.switch("inactive");
    assert_eq!(call(&layer, "tok-c").await.0, StatusCode::UNAUTHORIZED);
    server.switch("500");
    assert_eq!(
        call(&layer, "tok-c").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // And an unknown token during an outage has nothing to stand in.
    assert_eq!(
        call(&layer, "tok-d").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // By default: fail closed.
    let strict = JwtAuthLayer::new(
        server
            .builder("switch")
            .max_ttl(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    server.switch("active");
    assert_eq!(call(&strict, "tok-e").await.0, StatusCode::OK);
    server.switch("500");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        call(&strict, "tok-e").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_endpoint_found_by_discovery() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let token = provider.token(&http, "client-rs256", OPAQUE).await;
    let discovered = Introspector::discover(&provider.issuer)
        .client_credentials("api-introspector", "secret-of-api-introspector")
        .issuer(provider.issuer.clone())
        .audience(OPAQUE)
        .build()
        .unwrap();
    assert!(
        !format!("{discovered:?}").contains("/token/introspection"),
        "not fetched at build"
    );
    let (status, text) = call(&JwtAuthLayer::new(discovered.clone()), &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"client_id\":\"client-rs256\""), "{text}");
    let debug = format!("{discovered:?}");
    assert!(
        debug.contains(&format!("{}/token/introspection", provider.issuer)),
        "{debug}"
    );

    // No document there: every call says so, 503.
    let nowhere = Introspector::discover(format!("{}/nowhere", provider.issuer))
        .client_credentials("api-introspector", "secret-of-api-introspector")
        .audience(OPAQUE)
        .build()
        .unwrap();
    let err = nowhere.introspect(&token).await.unwrap_err();
    assert!(
        matches!(err, AuthError::IntrospectionUnavailable(_)),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("cannot find the introspection endpoint"),
        "{text}"
    );
    assert!(text.contains("404"), "{text}");
    assert!(!text.contains(&token), "{text}");
    let (status, _) = call(&JwtAuthLayer::new(nowhere), &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // A document for another issuer is not taken.
    let other = Introspector::discover(format!("{}/", provider.issuer))
        .client_credentials("api-introspector", "secret-of-api-introspector")
        .audience(OPAQUE)
        .build()
        .unwrap();
    let err = other.introspect(&token).await.unwrap_err().to_string();
    assert!(err.contains("is not the configured issuer"), "{err}");

    // Plain HTTP to another host is refused at build, as for endpoints.
    assert!(
        Introspector::discover("http://idp.example")
            .client_credentials("a", "s")
            .audience("x")
            .build()
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_private_key_jwt_client_authentication() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let (pem, kid) = &provider.client_key;
    let key = ClientKey::from_pem(Algorithm::ES256, pem)
        .unwrap()
        .with_kid(kid);
    assert!(!format!("{key:?}").contains("PRIVATE"));
    let endpoint = format!("{}/token/introspection", provider.issuer);
    let intro = Introspector::builder(&endpoint)
        .private_key_jwt("api-introspector-jwt", key.clone())
        .issuer(provider.issuer.clone())
        .audience(OPAQUE)
        .build()
        .unwrap();
    assert!(matches!(
        intro.introspect("startup-check").await,
        Err(AuthError::Inactive)
    ));
    let layer = JwtAuthLayer::new(intro);
    // Each call is a fresh assertion (the provider refuses a replayed jti).
    for client in ["client-rs256", "client-es256", "client-ps256"] {
        let token = provider.token(&http, client, OPAQUE).await;
        let (status, text) = call(&layer, &token).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(text.contains(client), "{text}");
    }

    // With discovery, and the issuer as the assertion's audience.
    let by_issuer = Introspector::discover(&provider.issuer)
        .private_key_jwt("api-introspector-jwt", key.clone())
        .client_assertion_audience(provider.issuer.clone())
        .audience(OPAQUE)
        .build()
        .unwrap();
    let token = provider.token(&http, "client-rs256", OPAQUE).await;
    assert_eq!(
        call(&JwtAuthLayer::new(by_issuer), &token).await.0,
        StatusCode::OK
    );

    // An audience the provider does not accept, or the key of another
    // client: the credentials are refused, and the error says so.
    for intro in [
        Introspector::builder(&endpoint)
            .private_key_jwt("api-introspector-jwt", key.clone())
            .client_assertion_audience("https://somewhere.else")
            .audience(OPAQUE)
            .build()
            .unwrap(),
        Introspector::builder(&endpoint)
            .private_key_jwt("api-introspector", key.clone())
            .audience(OPAQUE)
            .build()
            .unwrap(),
    ] {
        let err = intro.introspect(&token).await.unwrap_err();
        assert!(err.to_string().contains("credentials"), "{err}");
        assert_eq!(
            call(&JwtAuthLayer::new(intro), &token).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    // private_key_jwt without a key is a build error.
    let err = Introspector::builder(&endpoint)
        .client_credentials("api-introspector-jwt", "")
        .client_auth(ClientAuth::PrivateKeyJwt)
        .audience(OPAQUE)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_signed_answers_are_verified() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let keys = JwksCache::discover(&provider.issuer).build().unwrap();
    let signed = introspector(&provider, "api-introspector")
        .signed_answers(keys.clone(), provider.issuer.clone())
        .build()
        .unwrap();
    let token = provider.token(&http, "client-rs256", OPAQUE).await;
    let layer = JwtAuthLayer::new(signed.clone());
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let claims: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        claims["active"], true,
        "the token_introspection claim: {claims}"
    );
    assert_eq!(claims["client_id"], "client-rs256", "{claims}");
    assert_eq!(claims["aud"], OPAQUE, "{claims}");
    assert_eq!(claims["token_introspection"], Value::Null, "{claims}");
    // A signed negative answer.
    assert!(matches!(
        signed.introspect("unknown-token").await,
        Err(AuthError::Inactive)
    ));

    // Signed by the provider, but checked against another issuer: refused,
    // which shows the answer was a JWT and was verified.
    let elsewhere = introspector(&provider, "api-introspector")
        .signed_answers(keys.clone(), "https://elsewhere.example")
        .build()
        .unwrap();
    let err = elsewhere.introspect(&token).await.unwrap_err();
    assert!(
        matches!(err, AuthError::IntrospectionUnavailable(_)),
        "{err}"
    );
    assert!(
        err.to_string().contains("signed answer is refused"),
        "{err}"
    );
    assert!(err.to_string().contains("issuer"), "{err}");
    assert_eq!(
        call(&JwtAuthLayer::new(elsewhere), &token).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Signed with keys the cache does not trust: an ES256-only cache (the
    // provider signs answers with RS256).
    let es256_only = JwksCache::discover(&provider.issuer)
        .algorithms([Algorithm::ES256])
        .build()
        .unwrap();
    let untrusted = introspector(&provider, "api-introspector")
        .signed_answers(es256_only, provider.issuer.clone())
        .build()
        .unwrap();
    let err = untrusted.introspect(&token).await.unwrap_err();
    assert!(
        err.to_string().contains("signed answer is refused"),
        "{err}"
    );

    // An endpoint that answers plain JSON when a signed answer was asked
    // for: refused, not taken unsigned.
    let server = faulty().await;
    let plain = server
        .builder("active")
        .signed_answers(keys, provider.issuer.clone())
        .build()
        .unwrap();
    let err = plain.introspect("opaque-1").await.unwrap_err();
    assert!(err.to_string().contains("not a JWT"), "{err}");
    assert_eq!(
        call(&JwtAuthLayer::new(plain), "opaque-1").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// A DPoP key of a client (P-256) and its proofs, built here independently
/// of the crate.
#[cfg(feature = "dpop")]
mod dpop_client {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use serde_json::{Value, json};

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn sha256(text: &str) -> String {
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref())
    }

    pub struct DpopKey(EcdsaKeyPair);

    impl DpopKey {
        pub fn new() -> Self {
            DpopKey(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
        }

        fn jwk(&self) -> (String, String) {
            let point = self.0.public_key().as_ref();
            (b64(&point[1..33]), b64(&point[33..65]))
        }

        /// The RFC 7638 thumbprint.
        pub fn jkt(&self) -> String {
            let (x, y) = self.jwk();
            sha256(&format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
            ))
        }

        /// A proof for `method` on `htu`, for `token` when given (`ath`).
        pub fn proof(&self, method: &str, htu: &str, token: Option<&str>) -> String {
            let (x, y) = self.jwk();
            let header = json!({
                "typ": "dpop+jwt",
                "alg": "ES256",
                "jwk": {"kty": "EC", "crv": "P-256", "x": x, "y": y},
            });
            let mut jti = [0u8; 16];
            aws_lc_rs::rand::fill(&mut jti).unwrap();
            let mut payload = json!({
                "jti": b64(jti),
                "htm": method,
                "htu": htu,
                "iat": std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            });
            if let (Some(token), Value::Object(members)) = (token, &mut payload) {
                members.insert("ath".into(), Value::String(sha256(token)));
            }
            let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
            let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", b64(sig.as_ref()))
        }
    }
}

/// An opaque token bound to a DPoP key at oidc-provider: the introspection
/// answer's `cnf.jkt` binds it exactly as a JWT's would.
#[cfg(feature = "dpop")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_dpop_bound_opaque_tokens_need_their_proof() {
    use dpop_client::DpopKey;
    use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};

    const BASE: &str = "https://api.example.com";
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let key = DpopKey::new();
    let at_token_endpoint = key.proof("POST", &format!("{}/token", provider.issuer), None);
    let token = provider
        .token_with(&http, "client-rs256", OPAQUE, Some(&at_token_endpoint))
        .await;
    assert!(!token.contains('.'), "an opaque token: {token}");

    let intro = introspector(&provider, "api-introspector").build().unwrap();
    let policy = DpopPolicy::builder(DpopMode::Allowed)
        .base_url(BASE)
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(intro).dpop(policy);
    let send = |scheme: &str, proof: Option<String>| {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            let claims = req.extensions().get::<Claims>().unwrap();
            Ok::<_, Infallible>(Response::new(claims.json().to_owned()))
        }));
        let mut req = Request::builder()
            .uri("/me")
            .header(AUTHORIZATION, format!("{scheme} {token}"));
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        let req = req.body(()).unwrap();
        async move {
            let res = svc.oneshot(req).await.unwrap();
            let status = res.status();
            let text = match res.headers().get(WWW_AUTHENTICATE) {
                Some(v) => v.to_str().unwrap().to_owned(),
                None => res.into_body(),
            };
            (status, text)
        }
    };

    // As Bearer: refused, the binding read from the introspection answer.
    let (status, text) = send("Bearer", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("invalid_token"), "{text}");
    assert!(text.contains("DPoP-bound"), "{text}");

    // With a proof of the bound key: admitted, cnf.jkt in the claims.
    let htu = format!("{BASE}/me");
    let proof = key.proof("GET", &htu, Some(&token));
    let (status, text) = send("DPoP", Some(proof)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let claims: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(claims["active"], true, "{claims}");
    assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str(), "{claims}");

    // With a proof of another key: refused.
    let thief = DpopKey::new();
    let (status, text) = send("DPoP", Some(thief.proof("GET", &htu, Some(&token)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("invalid_token"), "{text}");

    // An unbound opaque token with the DPoP scheme: refused too.
    let plain = provider.token(&http, "client-rs256", OPAQUE).await;
    let svc = layer.layer(service_fn(|_req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let req = Request::builder()
        .uri("/me")
        .header(AUTHORIZATION, format!("DPoP {plain}"))
        .header("dpop", key.proof("GET", &htu, Some(&plain)))
        .body(())
        .unwrap();
    assert_eq!(
        svc.oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A discovery document that does not come: requests are refused within
/// the timeout, and those that queued behind the failed discovery fail at
/// once instead of each waiting for one of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_discovery_does_not_queue_requests() {
    let server = faulty().await;
    let intro = Introspector::discover(format!("{}/slow-issuer", server.base))
        .client_credentials("api", SECRET)
        .audience("api")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(intro);
    let started = Instant::now();
    let requests: Vec<_> = (0..10)
        .map(|i| {
            let layer = layer.clone();
            tokio::spawn(async move { call(&layer, &format!("token-{i}")).await })
        })
        .collect();
    for r in requests {
        let (status, text) = r.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.calls(), 0, "no introspection without an endpoint");
}

/// One request through the layer: the whole response (status, headers).
async fn respond(layer: &JwtAuthLayer, token: &str) -> Response<String> {
    let svc = layer.layer(service_fn(|_req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let req = Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap();
    svc.oneshot(req).await.unwrap()
}

/// Amplification: a burst of distinct tokens against a slow endpoint makes
/// at most `max_concurrent_calls` calls at once; the others are refused at
/// once with 503 and `Retry-After`, without a call. Once the calls end,
/// new tokens are asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_calls_in_flight_are_capped_and_the_rest_refused_with_503() {
    let server = faulty().await;
    let layer = JwtAuthLayer::new(
        server
            .builder("slower-active")
            .timeout(Duration::from_secs(3))
            .max_concurrent_calls(4)
            .build()
            .unwrap(),
    );
    let requests: Vec<_> = (0..24)
        .map(|i| {
            let layer = layer.clone();
            tokio::spawn(async move { respond(&layer, &format!("burst-{i}")).await })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for r in requests {
        let res = r.await.unwrap();
        match res.status() {
            StatusCode::OK => admitted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(res.headers().contains_key(RETRY_AFTER), "{res:?}");
                refused += 1;
            }
            other => panic!("{other}: {res:?}"),
        }
    }
    assert!(server.peak() <= 4, "{} calls at once", server.peak());
    assert!(server.calls() <= 4, "{} calls", server.calls());
    assert_eq!(admitted, server.calls(), "one call per admitted token");
    assert_eq!(admitted + refused, 24);
    assert!(refused >= 20, "{refused} refused");
    // The cap is on calls in flight, not a budget: the next one is made.
    let before = server.calls();
    assert_eq!(
        respond(&layer, "after-the-burst").await.status(),
        StatusCode::OK
    );
    assert_eq!(server.calls(), before + 1);
    // Tokens waiting for a call already under way take no new slot.
    let shared: Vec<_> = (0..20)
        .map(|_| {
            let layer = layer.clone();
            tokio::spawn(async move { respond(&layer, "one-shared-token").await.status() })
        })
        .collect();
    for r in shared {
        assert_eq!(r.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.calls(), before + 2);
}

/// Amplification: what is not an RFC 6750 `b64token` (a space, `%`, a
/// comma, a quote, non-ASCII) or is longer than the limit is refused as
/// 401 `invalid_token` without a call, through the layer and directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_outside_b64token_or_over_the_limit_are_refused_without_a_call() {
    let server = faulty().await;
    let intro = server.builder("active").max_token_len(64).build().unwrap();
    let layer = JwtAuthLayer::new(intro.clone());
    let long = "a".repeat(65);
    let odd = [
        "two words",
        "percent%41",
        "com,ma",
        "quo\"te",
        "semi;colon",
        "back\\slash",
        "=starts-with-padding",
        "pad=inside",
        long.as_str(),
    ];
    for token in odd {
        let (status, text) = call(&layer, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {text}");
        assert!(text.contains("invalid_token"), "{token:?}: {text}");
        let err = intro.introspect(token).await.unwrap_err();
        assert_eq!(
            err.kind(),
            tower_jwt_auth::ErrorKind::Unauthenticated,
            "{token:?}: {err}"
        );
    }
    // Non-ASCII cannot come in a header; it can come from elsewhere.
    for token in ["caf\u{e9}", "tab\there", "nul\0", ""] {
        let err = intro.introspect(token).await.unwrap_err();
        assert_eq!(
            err.kind(),
            tower_jwt_auth::ErrorKind::Unauthenticated,
            "{token:?}: {err}"
        );
        let err = tower_jwt_auth::TokenVerifier::verify_later(&intro, token)
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            tower_jwt_auth::ErrorKind::Unauthenticated,
            "{token:?}: {err}"
        );
    }
    assert_eq!(server.calls(), 0, "no call for any of them");
    // The whole b64token alphabet, trailing padding and the limit itself pass.
    let limit = "b".repeat(64);
    for token in ["Az09-._~+/", "abc==", "x=", limit.as_str()] {
        let (status, text) = call(&layer, token).await;
        assert_eq!(status, StatusCode::OK, "{token:?}: {text}");
    }
    assert_eq!(server.calls(), 4);
}

/// The default limit is 8 KiB: a token over it gets no call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_over_the_default_limit_get_no_call() {
    let server = faulty().await;
    let layer = server.layer("active");
    let (status, _) = call(&layer, &"c".repeat(8 * 1024)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, text) = call(&layer, &"d".repeat(8 * 1024 + 1)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(server.calls(), 1);
}

/// The answer cache keeps what it is given: at twice its capacity, the
/// newest answers are served from it (no admission policy turning new
/// tokens away once it is full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_answers_are_cached_past_the_capacity() {
    let server = faulty().await;
    let intro = server.builder("active").max_entries(100).build().unwrap();
    let layer = JwtAuthLayer::new(intro);
    for i in 0..200 {
        assert_eq!(call(&layer, &format!("fill-{i}")).await.0, StatusCode::OK);
    }
    assert_eq!(server.calls(), 200);
    // Let the cache do its housekeeping (admission, eviction).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call(&layer, "fill-0").await;
    let before = server.calls();
    for i in 170..200 {
        assert_eq!(call(&layer, &format!("fill-{i}")).await.0, StatusCode::OK);
    }
    assert_eq!(server.calls(), before, "the 30 newest answers were cached");
}

/// Negative answers have a cache of their own: a flood of distinct
/// inactive tokens neither grows without bound nor pushes active answers
/// out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_inactive_tokens_does_not_evict_active_answers() {
    let server = faulty().await;
    let layer = JwtAuthLayer::new(
        server
            .builder("switch")
            .max_entries(50)
            .negative_ttl(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    server.switch("active");
    for i in 0..20 {
        assert_eq!(call(&layer, &format!("good-{i}")).await.0, StatusCode::OK);
    }
    server.switch("inactive");
    for i in 0..300 {
        assert_eq!(
            call(&layer, &format!("garbage-{i}")).await.0,
            StatusCode::UNAUTHORIZED
        );
        // Each is asked again at once: a second chance to be admitted.
        assert_eq!(
            call(&layer, &format!("garbage-{i}")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call(&layer, "garbage-0").await;
    server.switch("500");
    let before = server.calls();
    for i in 0..20 {
        let (status, text) = call(&layer, &format!("good-{i}")).await;
        assert_eq!(status, StatusCode::OK, "good-{i}: {text}");
    }
    assert_eq!(server.calls(), before, "every active answer still cached");
}

/// A refresh token (or an ID token) the server says is active is not an
/// access token: refused, 401 `invalid_token`, whichever way the answer
/// names its kind (Keycloak's `typ`, RFC 7662 `token_type`, Hydra's
/// `token_use`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_for_tokens_that_are_not_access_tokens_are_refused() {
    let server = faulty().await;
    for mode in [
        "keycloak-refresh",
        "keycloak-offline",
        "keycloak-id",
        "refresh-token-type",
        "refresh-token-urn",
        "hydra-refresh",
        "untyped",
    ] {
        let (status, text) = call(&server.layer(mode), "a-token").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{mode}: {text}");
        assert!(text.contains("invalid_token"), "{mode}: {text}");
        let err = server
            .introspector(mode)
            .introspect("a-token")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("access token"), "{mode}: {err}");
    }
    for mode in [
        "active",
        "keycloak-access",
        "access-token-type",
        "dpop-token-type",
        "hydra-access",
    ] {
        let (status, text) = call(&server.layer(mode), "a-token").await;
        assert_eq!(status, StatusCode::OK, "{mode}: {text}");
    }
    // A server that never says (it introspects access tokens only): on request.
    let untyped = JwtAuthLayer::new(
        server
            .builder("untyped")
            .allow_missing_token_type()
            .build()
            .unwrap(),
    );
    assert_eq!(call(&untyped, "a-token").await.0, StatusCode::OK);
    // Which never admits an answer that names another kind.
    let lax = JwtAuthLayer::new(
        server
            .builder("keycloak-refresh")
            .allow_missing_token_type()
            .build()
            .unwrap(),
    );
    assert_eq!(call(&lax, "a-token").await.0, StatusCode::UNAUTHORIZED);
}

/// What a server at another origin received, and answered with.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

/// A server at another origin that answers anything with an active
/// answer (and a key set), recording each request it receives.
async fn elsewhere() -> (String, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let app = Router::new().fallback(move |req: Request<axum::body::Body>| {
        let record = record.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            record.0.lock().unwrap().push(format!(
                "{} {} {:?} {}",
                parts.method,
                parts.uri,
                parts.headers,
                String::from_utf8_lossy(&body)
            ));
            r#"{"active":true,"sub":"mallory","aud":"api","token_type":"Bearer"}"#
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// A server that answers every request with `status` and `Location: to`.
async fn redirecting(status: StatusCode, to: String) -> String {
    let app = Router::new().fallback(move || {
        let to = to.clone();
        async move { (status, [(http::header::LOCATION, to)], "") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Redirects: an application's own HTTP client that follows redirects
/// neither re-sends the introspection form (token, client secret) to
/// another origin on a 307/308, nor has an answer from there trusted
/// after a 301/302/303: 503, and the other server's answer is unused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_gets_neither_the_form_nor_trust() {
    let (other, seen) = elsewhere().await;
    let following = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    for status in [
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::MOVED_PERMANENTLY,
    ] {
        let from = redirecting(status, format!("{other}/introspect")).await;
        for auth in [ClientAuth::SecretBasic, ClientAuth::SecretPost] {
            let intro = Introspector::builder(format!("{from}/introspect"))
                .client_credentials("api", "the-client-secret")
                .client_auth(auth)
                .audience("api")
                .client(following.clone())
                .build()
                .unwrap();
            let layer = JwtAuthLayer::new(intro.clone());
            let (code, text) = call(&layer, "the-users-token").await;
            assert_eq!(
                code,
                StatusCode::SERVICE_UNAVAILABLE,
                "{status} {auth:?}: {text}"
            );
            let err = intro.introspect("the-users-token").await.unwrap_err();
            assert!(
                matches!(err, AuthError::IntrospectionUnavailable(_)),
                "{status} {auth:?}: {err}"
            );
        }
    }
    let seen = seen.0.lock().unwrap();
    for request in seen.iter() {
        assert!(!request.contains("the-client-secret"), "{request}");
        assert!(!request.contains("the-users-token"), "{request}");
        // The Basic credentials of api:the-client-secret.
        assert!(
            !request.contains("YXBpOnRoZS1jbGllbnQtc2VjcmV0"),
            "{request}"
        );
        assert!(
            !request.to_ascii_lowercase().contains("authorization"),
            "{request}"
        );
    }
}

/// oidc-provider's refresh tokens: one from its token endpoint (the
/// refresh_token grant of a client with offline_access) is introspected as
/// active, without `token_type` (its access tokens' answers say `Bearer`):
/// refused through the layer, with or without an audience check, while the
/// access token issued with it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_refresh_tokens_are_refused_and_access_tokens_pass() {
    let provider = oidc::start().await;
    let http = reqwest::Client::new();
    let (access, refresh) = provider.refreshed(&http, OPAQUE).await;
    assert!(!refresh.contains('.'), "an opaque refresh token: {refresh}");
    for intro in [
        introspector(&provider, "api-introspector").build().unwrap(),
        introspector(&provider, "api-introspector")
            .any_audience()
            .build()
            .unwrap(),
    ] {
        // The server says the refresh token is active...
        let raw = http
            .post(format!("{}/token/introspection", provider.issuer))
            .basic_auth("api-introspector", Some("secret-of-api-introspector"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={refresh}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let raw: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(raw["active"], true, "{raw}");
        assert_eq!(raw["token_type"], Value::Null, "{raw}");
        // ...the layer does not take it for an access token.
        let layer = JwtAuthLayer::new(intro.clone());
        let (status, text) = call(&layer, &refresh).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        assert!(text.contains("invalid_token"), "{text}");
        let err = intro.introspect(&refresh).await.unwrap_err();
        assert!(err.to_string().contains("access token"), "{err}");
        let (status, text) = call(&layer, &access).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let claims: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(claims["token_type"], "Bearer", "{claims}");
        assert_eq!(claims["sub"], "alice", "{claims}");
    }
}

/// At the cap, a token whose active answer is past its freshness is served
/// that answer if `stale_if_error` allows, as in an outage; a token with
/// nothing cached is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_stale_answer_stands_in() {
    let server = faulty().await;
    let layer = JwtAuthLayer::new(
        server
            .builder("switch")
            .timeout(Duration::from_secs(2))
            .max_concurrent_calls(1)
            .max_ttl(Duration::from_secs(1))
            .stale_if_error(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    server.switch("active");
    assert_eq!(call(&layer, "kept").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.switch("slow");
    let before = server.calls();
    let hog = {
        let layer = layer.clone();
        tokio::spawn(async move { call(&layer, "hog").await.0 })
    };
    // Until the hog's call holds the one slot (2 s at most).
    for _ in 0..100 {
        if server.calls() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = server.calls();
    assert_eq!(before, 2, "the hog's call is under way");
    let (status, text) = call(&layer, "kept").await;
    assert_eq!(status, StatusCode::OK, "stale, standing in: {text}");
    assert_eq!(
        call(&layer, "nothing-cached").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.calls(), before, "no call past the cap");
    assert_eq!(
        hog.await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "timed out"
    );
}
