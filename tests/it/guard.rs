//! Guards through an axum `Router` with `oneshot`: every provider layout,
//! any/all, 401 vs 403 vs `insufficient_scope`, predicates, handler-side
//! checks, and wiring mistakes.

use crate::support as common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::{
    Algorithm, AuthError, ClaimSource, Claims, JsonClaims, JwtAuthLayer, RequireClaims,
    RequireRole, RequireScope, Verifier,
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

/// Valid claims plus `extra`.
fn token_with(extra: Value) -> String {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("roles");
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    token(ALG, &c)
}

struct Answer {
    status: StatusCode,
    challenge: String,
    body: String,
}

async fn send(app: &Router, token: Option<&str>) -> Answer {
    let mut req = Request::builder().uri("/");
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
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        challenge,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn guarded<L>(guard: L) -> Router
where
    L: tower_layer::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower_service::Service<Request<Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower_service::Service<Request<Body>>>::Response: axum::response::IntoResponse,
    <L::Service as tower_service::Service<Request<Body>>>::Future: Send + 'static,
{
    Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(guard)
        .route_layer(auth())
}

/// Every preset layout: the role (or scope) found where the provider puts
/// it is allowed; the same token without it is 403.
#[tokio::test]
async fn every_provider_layout() {
    let cases: Vec<(&str, ClaimSource, Value, Value)> = vec![
        (
            "roles array",
            ClaimSource::roles(),
            json!({"roles": ["user", "admin"]}),
            json!({"roles": ["user"]}),
        ),
        (
            "roles string",
            ClaimSource::roles(),
            json!({"roles": "admin"}),
            json!({"roles": "administrator"}),
        ),
        (
            "keycloak realm",
            ClaimSource::keycloak_realm_roles(),
            json!({"realm_access": {"roles": ["offline_access", "admin"]}}),
            json!({"realm_access": {"roles": ["offline_access"]}, "roles": ["admin"]}),
        ),
        (
            "keycloak client",
            ClaimSource::keycloak_client_roles("my.api"),
            json!({"resource_access": {"my.api": {"roles": ["admin"]}}}),
            json!({"resource_access": {"other": {"roles": ["admin"]}, "my": {"api": {"roles": ["admin"]}}}}),
        ),
        (
            "auth0 permissions",
            ClaimSource::auth0_permissions(),
            json!({"permissions": ["read:items", "admin"]}),
            json!({"permissions": "read:items"}),
        ),
        (
            "auth0 namespaced",
            ClaimSource::claim("https://example.com/roles"),
            json!({"https://example.com/roles": ["admin"]}),
            json!({"https://example": {"com/roles": ["admin"]}}),
        ),
        (
            "cognito",
            ClaimSource::cognito_groups(),
            json!({"cognito:groups": ["admin"]}),
            json!({"cognito": {"groups": ["admin"]}}),
        ),
        (
            "okta",
            ClaimSource::okta_groups(),
            json!({"groups": ["Everyone", "admin"]}),
            json!({"groups": ["Everyone"]}),
        ),
        (
            "entra scp string",
            ClaimSource::scp(),
            json!({"scp": "user.read admin"}),
            json!({"scp": "user.read"}),
        ),
        (
            "okta scp array",
            ClaimSource::scp(),
            json!({"scp": ["openid", "admin"]}),
            json!({"scp": ["openid"]}),
        ),
        (
            "oauth scope",
            ClaimSource::scope(),
            json!({"scope": "openid admin"}),
            json!({"scope": "openid admins"}),
        ),
    ];
    for (name, source, with, without) in cases {
        let app = guarded(RequireRole::any(["admin"]).sources([source.clone()]));
        let a = send(&app, Some(&token_with(with.clone()))).await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.challenge);
        assert_eq!(a.body, "in");
        let a = send(&app, Some(&token_with(without))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{name}");
        assert!(
            a.challenge.contains(r#"error="insufficient_scope""#),
            "{name}: {}",
            a.challenge
        );
        // The same layout as a scope guard.
        let app = guarded(RequireScope::any(["admin"]).sources([source]));
        assert_eq!(
            send(&app, Some(&token_with(with))).await.status,
            StatusCode::OK,
            "{name} as scope"
        );
    }
}

#[tokio::test]
async fn unknown_shapes_are_no_roles_never_a_panic() {
    let app = guarded(
        RequireRole::any(["admin"])
            .sources([ClaimSource::roles(), ClaimSource::keycloak_realm_roles()]),
    );
    for odd in [
        json!({"roles": 5}),
        json!({"roles": {"admin": true}}),
        json!({"roles": [1, 2.5, null, ["admin"], {"admin": 1}]}),
        json!({"roles": null}),
        json!({"realm_access": "admin"}),
        json!({"realm_access": {"roles": {"0": "admin"}}}),
        json!({"realm_access": [{"roles": ["admin"]}]}),
    ] {
        let a = send(&app, Some(&token_with(odd.clone()))).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{odd}");
    }
}

#[tokio::test]
async fn any_and_all() {
    let any = guarded(RequireRole::any(["admin", "ops"]));
    let all = guarded(RequireRole::all(["admin", "ops"]));
    let both = token_with(json!({"roles": ["ops", "admin"]}));
    let one = token_with(json!({"roles": ["ops"]}));
    let none = token_with(json!({"roles": []}));
    assert_eq!(send(&any, Some(&both)).await.status, StatusCode::OK);
    assert_eq!(send(&any, Some(&one)).await.status, StatusCode::OK);
    assert_eq!(send(&any, Some(&none)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send(&all, Some(&both)).await.status, StatusCode::OK);
    assert_eq!(send(&all, Some(&one)).await.status, StatusCode::FORBIDDEN);
    // An empty list lets nobody in, "any of" or "all of" (a role list from
    // a config that came back empty must not open the route).
    for nobody in [
        guarded(RequireRole::any(Vec::<String>::new())),
        guarded(RequireRole::all(Vec::<String>::new())),
        guarded(RequireScope::all(Vec::<String>::new())),
    ] {
        assert_eq!(
            send(&nobody, Some(&both)).await.status,
            StatusCode::FORBIDDEN
        );
    }

    let scopes = guarded(RequireScope::all(["read", "write"]));
    let a = send(&scopes, Some(&token_with(json!({"scope": "read"})))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.challenge.ends_with(r#"error="insufficient_scope", error_description="the access token lacks a required scope", scope="read write""#),
        "{}",
        a.challenge
    );
    let a = send(
        &scopes,
        Some(&token_with(json!({"scp": ["write", "read"]}))),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // Scopes split on whitespace; a scope is never matched by substring.
    let a = send(&scopes, Some(&token_with(json!({"scope": "readwrite"})))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn no_token_is_401_bad_token_401_known_but_not_allowed_403() {
    let app = guarded(RequireScope::any(["write"]));
    let a = send(&app, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.challenge, r#"Bearer realm="api""#);
    let a = send(&app, Some("not.a.token")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.challenge.contains("invalid_token"));
    let a = send(&app, Some(&token_with(json!({"scope": "read"})))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.challenge.contains(r#"scope="write""#));

    // Behind an optional auth layer, an anonymous request reaches the
    // guard without claims: 401, not 403 and not the handler.
    let optional: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(auth().optional());
    let a = send(&optional, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.challenge, r#"Bearer realm="api""#);
    let admin = token_with(json!({"roles": ["admin"]}));
    assert_eq!(send(&optional, Some(&admin)).await.status, StatusCode::OK);
}

#[derive(Clone, Deserialize)]
struct Tenant {
    tenant: String,
}

#[tokio::test]
async fn predicates_over_json_and_typed_claims() {
    let app = guarded(
        RequireClaims::new(|c: &Claims| c.payload()["email_verified"] == true)
            .reason("the email address is not verified"),
    );
    let ok = token_with(json!({"email_verified": true}));
    let no = token_with(json!({"email_verified": "true"}));
    assert_eq!(send(&app, Some(&ok)).await.status, StatusCode::OK);
    let a = send(&app, Some(&no)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(!a.challenge.contains("verified"), "reason is not sent");

    // A typed predicate with the layer's own claims type.
    let typed: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireClaims::new(|c: &Claims<Tenant>| c.tenant == "acme"))
        .route_layer(auth().claims::<Tenant>());
    let acme = token_with(json!({"tenant": "acme"}));
    let other = token_with(json!({"tenant": "other"}));
    assert_eq!(send(&typed, Some(&acme)).await.status, StatusCode::OK);
    assert_eq!(
        send(&typed, Some(&other)).await.status,
        StatusCode::FORBIDDEN
    );

    // Role and scope guards read the claims whatever the layer's type:
    // with typed claims the layer leaves a type-independent view next to
    // them (with the default `Claims<JsonClaims>`, the claims themselves).
    let typed_roles: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(auth().claims::<Tenant>());
    let admin = token_with(json!({"tenant": "acme", "roles": ["admin"]}));
    assert_eq!(
        send(&typed_roles, Some(&admin)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&typed_roles, Some(&acme)).await.status,
        StatusCode::FORBIDDEN
    );

    // A predicate over a type the layer does not produce is a wiring bug.
    let mismatched: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireClaims::new(|c: &Claims<Tenant>| c.tenant == "acme"))
        .route_layer(auth());
    let a = send(&mismatched, Some(&acme)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_guard_without_the_auth_layer_is_a_500_not_a_pass() {
    // Wrong order: the guard wraps the auth layer, so it runs first.
    let app: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(auth())
        .route_layer(RequireRole::any(["admin"]));
    let admin = token_with(json!({"roles": ["admin"]}));
    let a = send(&app, Some(&admin)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_ne!(a.body, "in");
    // No auth layer at all.
    let app: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireScope::any(["x"]));
    assert_eq!(
        send(&app, Some(&admin)).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

async fn delete(claims: Claims) -> Result<&'static str, AuthError> {
    RequireScope::any(["items:delete"]).check(&claims)?;
    RequireRole::any(["admin"])
        .sources([ClaimSource::keycloak_realm_roles()])
        .check(&claims)?;
    Ok("deleted")
}

#[tokio::test]
async fn handler_side_checks() {
    let app: Router = Router::new().route("/", get(delete)).route_layer(auth());
    let full = token_with(json!({"scope": "items:delete", "realm_access": {"roles": ["admin"]}}));
    let a = send(&app, Some(&full)).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "deleted"));
    let a = send(&app, Some(&token_with(json!({"scope": "items:read"})))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.challenge.contains(r#"scope="items:delete""#));
    let a = send(&app, Some(&token_with(json!({"scope": "items:delete"})))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(!a.challenge.contains("scope=\""), "{}", a.challenge);
}

#[tokio::test]
async fn a_guard_on_the_whole_router() {
    let app: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route("/other", get(|| async { "other" }))
        .layer(RequireRole::any(["admin"]))
        .layer(auth());
    let user = token_with(json!({"roles": ["user"]}));
    let admin = token_with(json!({"roles": ["admin"]}));
    for path in ["/", "/other"] {
        for (t, want) in [(&user, StatusCode::FORBIDDEN), (&admin, StatusCode::OK)] {
            let res = app
                .clone()
                .oneshot(
                    Request::builder()
                        .uri(path)
                        .header(AUTHORIZATION, format!("Bearer {t}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(res.status(), want, "{path}");
        }
    }
}

/// A request with a `session` cookie and/or a Bearer token.
async fn send_both(app: &Router, cookie: Option<&str>, bearer: Option<&str>) -> StatusCode {
    let mut req = Request::builder().uri("/");
    if let Some(c) = cookie {
        req = req.header(http::header::COOKIE, format!("session={c}"));
    }
    if let Some(t) = bearer {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

/// Two auth layers on one route, each reading its own token source: a
/// guard judges the token of the innermost layer, the one whose claims the
/// handler gets, whatever the two layers' claims types.
#[tokio::test]
async fn guards_judge_the_token_of_the_innermost_layer() {
    let admin = token_with(json!({"tenant": "acme", "roles": ["admin"]}));
    let user = token_with(json!({"tenant": "acme", "roles": ["user"]}));
    let cookie = || auth().sources([tower_jwt_auth::TokenSource::cookie("session")]);
    let typed_outside: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(auth())
        .route_layer(cookie().claims::<Tenant>());
    let typed_inside: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(auth().claims::<Tenant>())
        .route_layer(cookie());
    for (what, app) in [
        ("typed outside", &typed_outside),
        ("typed inside", &typed_inside),
    ] {
        // The inner layer (Bearer) verified a user: 403, whatever the
        // outer layer's (cookie) token says.
        assert_eq!(
            send_both(app, Some(&admin), Some(&user)).await,
            StatusCode::FORBIDDEN,
            "{what}"
        );
        assert_eq!(
            send_both(app, Some(&user), Some(&admin)).await,
            StatusCode::OK,
            "{what}"
        );
    }
}

/// An outer optional layer that found no token leaves its anonymous mark;
/// the claims an inner layer verified still count.
#[tokio::test]
async fn an_anonymous_outer_layer_does_not_hide_inner_claims() {
    let admin = token_with(json!({"roles": ["admin"]}));
    let app: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(auth())
        .route_layer(
            auth()
                .sources([tower_jwt_auth::TokenSource::cookie("session")])
                .optional(),
        );
    assert_eq!(send_both(&app, None, Some(&admin)).await, StatusCode::OK);
    assert_eq!(send_both(&app, None, None).await, StatusCode::UNAUTHORIZED);
}

/// Guards trust only claims an auth layer admitted: verified claims that
/// the application's own middleware put into a request do not make a guard
/// pass without the layer (a wiring mistake: 500, never a pass).
#[tokio::test]
async fn claims_put_in_by_the_application_are_not_the_layers() {
    let admin = token_with(json!({"roles": ["admin"]}));
    let claims: Claims = verifier().verify(&admin).unwrap();
    let app: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireRole::any(["admin"]))
        .route_layer(axum::middleware::map_request(
            move |mut req: Request<Body>| {
                req.extensions_mut().insert(claims.clone());
                std::future::ready(req)
            },
        ));
    let a = send(&app, Some(&admin)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_ne!(a.body, "in");
}

/// Claims for the one-lookup matrix below: an administrator with every
/// grant the four guards can ask for, and a user with none of them.
fn principal(admin: bool) -> String {
    if admin {
        token_with(json!({"tenant": "admin", "roles": ["admin"], "scope": "admin", "acr": "mfa"}))
    } else {
        token_with(json!({"tenant": "user", "roles": ["user"], "scope": "read", "acr": "pwd"}))
    }
}

/// The status a guard refuses a known principal with: 403, or 401 with
/// `insufficient_user_authentication` for step-up (RFC 9470).
fn refusal(what: &str) -> StatusCode {
    if what == "RequireStepUp" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    }
}

/// [`send_both`], with the challenge.
async fn send_pair(
    app: &Router,
    cookie: Option<&str>,
    bearer: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder().uri("/");
    if let Some(c) = cookie {
        req = req.header(http::header::COOKIE, format!("session={c}"));
    }
    if let Some(t) = bearer {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let challenge = res
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status(), challenge)
}

fn is_admin_json(c: &Claims) -> bool {
    c.payload()["roles"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r == "admin"))
}

fn is_admin_tenant(c: &Claims<Tenant>) -> bool {
    c.tenant == "admin"
}

/// Builds the same route under each of the four guards and hands each
/// router to `$body` with the guard's name: the guards must agree, since
/// they find claims through one function.
macro_rules! each_guard {
    ($claims:ty, $pred:expr, |$what:ident, $guard:ident| $body:expr) => {{
        {
            let $what = "RequireRole";
            let $guard = RequireRole::any(["admin"]);
            $body
        }
        {
            let $what = "RequireScope";
            let $guard = RequireScope::any(["admin"]);
            $body
        }
        {
            let $what = "RequireStepUp";
            let $guard = tower_jwt_auth::RequireStepUp::acr(["mfa"]);
            $body
        }
        {
            let $what = "RequireClaims";
            let $guard = RequireClaims::<$claims>::new($pred);
            $body
        }
    }};
}

/// Every guard judges the claims the innermost auth layer admitted, and
/// only those: two layers in both orders (an admin's cookie outside, a
/// user's Bearer token inside, and the reverse), with the default and a
/// typed claims type inside.
#[tokio::test]
async fn every_guard_judges_the_innermost_layers_claims() {
    let admin = principal(true);
    let user = principal(false);
    let cookie = || auth().sources([tower_jwt_auth::TokenSource::cookie("session")]);
    // The inner layer is the default (JsonClaims) one.
    each_guard!(JsonClaims, is_admin_json, |what, guard| {
        for (outer, app) in [
            (
                "outer default",
                Router::new()
                    .route("/", get(|| async { "in" }))
                    .route_layer(guard.clone())
                    .route_layer(auth())
                    .route_layer(cookie()),
            ),
            (
                "outer typed",
                Router::new()
                    .route("/", get(|| async { "in" }))
                    .route_layer(guard.clone())
                    .route_layer(auth())
                    .route_layer(cookie().claims::<Tenant>()),
            ),
        ] {
            let s = send_both(&app, Some(&admin), Some(&user)).await;
            assert_eq!(s, refusal(what), "{what}, {outer}: outer admin, inner user");
            let s = send_both(&app, Some(&user), Some(&admin)).await;
            assert_eq!(
                s,
                StatusCode::OK,
                "{what}, {outer}: outer user, inner admin"
            );
        }
    });
    // The inner layer is typed; RequireClaims then judges that type.
    each_guard!(Tenant, is_admin_tenant, |what, guard| {
        let app = Router::new()
            .route("/", get(|| async { "in" }))
            .route_layer(guard.clone())
            .route_layer(auth().claims::<Tenant>())
            .route_layer(cookie());
        let s = send_both(&app, Some(&admin), Some(&user)).await;
        assert_eq!(s, refusal(what), "{what}: outer admin, inner user");
        let s = send_both(&app, Some(&user), Some(&admin)).await;
        assert_eq!(s, StatusCode::OK, "{what}: outer user, inner admin");
    });
}

/// A predicate over the default claims type behind an inner typed layer
/// would judge the outer layer's token: it is a wiring mistake (500),
/// never a pass on another principal's claims.
#[tokio::test]
async fn require_claims_never_judges_an_outer_layers_claims() {
    let admin = principal(true);
    let user = principal(false);
    let app: Router = Router::new()
        .route("/", get(|| async { "in" }))
        .route_layer(RequireClaims::new(is_admin_json))
        .route_layer(auth().claims::<Tenant>())
        .route_layer(auth().sources([tower_jwt_auth::TokenSource::cookie("session")]));
    let s = send_both(&app, Some(&admin), Some(&user)).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
}

/// Verified claims the application inserted itself (no layer admitted
/// them) satisfy no guard: 500 (wiring), for all four.
#[tokio::test]
async fn no_guard_accepts_claims_the_application_inserted() {
    let admin = principal(true);
    let claims: Claims = verifier().verify(&admin).unwrap();
    let typed: Claims<Tenant> = verifier().verify(&admin).unwrap();
    each_guard!(JsonClaims, is_admin_json, |what, guard| {
        let (claims, typed) = (claims.clone(), typed.clone());
        let app: Router = Router::new()
            .route("/", get(|| async { "in" }))
            .route_layer(guard)
            .route_layer(axum::middleware::map_request(
                move |mut req: Request<Body>| {
                    req.extensions_mut().insert(claims.clone());
                    req.extensions_mut().insert(typed.clone());
                    std::future::ready(req)
                },
            ));
        let a = send(&app, Some(&admin)).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
        assert_ne!(a.body, "in", "{what}");
    });
}

/// An inner optional layer that found no token means "no principal" for
/// what it guards: every guard answers 401, whatever an outer layer
/// admitted (and the handler's `Option<Claims>` is `None`).
#[tokio::test]
async fn an_anonymous_inner_layer_means_no_principal() {
    let admin = principal(true);
    let cookie = || auth().sources([tower_jwt_auth::TokenSource::cookie("session")]);
    each_guard!(JsonClaims, is_admin_json, |what, guard| {
        for (outer, app) in [
            (
                "outer default",
                Router::new()
                    .route("/", get(|| async { "in" }))
                    .route_layer(guard.clone())
                    .route_layer(auth().optional())
                    .route_layer(cookie()),
            ),
            (
                "outer typed",
                Router::new()
                    .route("/", get(|| async { "in" }))
                    .route_layer(guard.clone())
                    .route_layer(auth().optional())
                    .route_layer(cookie().claims::<Tenant>()),
            ),
        ] {
            // No token: 401 with a bare challenge (no `error`), as for a
            // request with no token at all.
            let (s, challenge) = send_pair(&app, Some(&admin), None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}, {outer}");
            assert!(
                !challenge.contains("error="),
                "{what}, {outer}: {challenge}"
            );
        }
    });
    let app: Router = Router::new()
        .route(
            "/",
            get(|c: Option<Claims>| async move {
                match c {
                    Some(c) => c.sub().unwrap_or_default().to_owned(),
                    None => "anonymous".to_owned(),
                }
            }),
        )
        .route_layer(auth().optional())
        .route_layer(cookie());
    let res = app
        .oneshot(
            Request::builder()
                .uri("/")
                .header(http::header::COOKIE, format!("session={admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"anonymous");
}

// Path-scoped guards on a real server, with the path bytes as sent.
use crate::support::raw_http;

/// `guard` over a server where every path reaches a handler (the fallback
/// stands for the route an upstream that resolves dot-segments or decodes
/// `%2f` would pick).
async fn scoped_server<L>(guard: L) -> std::net::SocketAddr
where
    L: tower_layer::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower_service::Service<Request<Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower_service::Service<Request<Body>>>::Response: axum::response::IntoResponse,
    <L::Service as tower_service::Service<Request<Body>>>::Future: Send + 'static,
{
    let app = Router::new()
        .route("/public", get(|| async { "public" }))
        .fallback(|| async { "reached" })
        .layer(guard)
        .layer(auth());
    raw_http::serve(app).await
}

/// Spellings of `/admin` for someone who resolves dot-segments, merges
/// empty segments or decodes `%2e`, `%2f`, `%5c`.
const SPELLINGS_OF_ADMIN: [&str; 13] = [
    "/admin",
    "/admin/x",
    "//admin",
    "/./admin",
    "/x/../admin",
    "/public/../admin",
    "/public/..%2fadmin",
    "/%2e/admin",
    "/public%2F..%2Fadmin",
    "/public/..%5Cadmin",
    "/public\\..\\admin",
    "/public/..;/admin",
    "/admin;jsessionid=x",
];

#[tokio::test]
async fn path_scoped_guards_apply_to_every_spelling_of_their_path() {
    let user = token_with(json!({"roles": ["user"], "scope": "read", "acr": "pwd"}));
    let bearer = format!("Authorization: Bearer {user}");
    let is_admin = |c: &Claims| c.payload()["roles"] == json!(["admin"]);
    let servers = [
        (
            "RequireRole",
            scoped_server(RequireRole::any(["admin"]).paths(["/admin"]).unwrap()).await,
        ),
        (
            "RequireScope",
            scoped_server(RequireScope::any(["admin"]).paths(["/admin"]).unwrap()).await,
        ),
        (
            "RequireClaims",
            scoped_server(RequireClaims::new(is_admin).paths(["/admin"]).unwrap()).await,
        ),
        (
            "RequireStepUp",
            scoped_server(
                tower_jwt_auth::RequireStepUp::acr(["mfa"])
                    .paths(["/admin"])
                    .unwrap(),
            )
            .await,
        ),
    ];
    for (guard, addr) in servers {
        for path in SPELLINGS_OF_ADMIN {
            let a = raw_http::get(addr, path, &[&bearer]).await;
            assert!(
                matches!(a.status, 401 | 403) && a.body != "reached",
                "{guard} skipped for {path}: {a:?}"
            );
        }
        // Outside its path the guard stays out of the way.
        for (path, body) in [
            ("/public", "public"),
            ("/public/x", "reached"),
            ("/administrator", "reached"),
        ] {
            let a = raw_http::get(addr, path, &[&bearer]).await;
            assert_eq!((a.status, a.body.as_str()), (200, body), "{guard} {path}");
        }
    }
}

#[test]
fn guard_paths_that_are_empty_relative_or_missing_are_refused_at_build_time() {
    let unset = std::env::var("TOWER_JWT_AUTH_TEST_UNSET").unwrap_or_default();
    let lists: [Vec<&str>; 6] = [
        unset.split(',').collect(),
        "/admin,".split(',').collect(),
        vec!["admin"],
        vec!["/x/../admin"],
        vec!["/admin?x=1"],
        // No path at all: a guard that would check nothing.
        vec![],
    ];
    for paths in lists {
        let errors = [
            RequireRole::any(["admin"]).paths(paths.clone()).map(drop),
            RequireScope::any(["admin"]).paths(paths.clone()).map(drop),
            RequireClaims::new(|_: &Claims| true)
                .paths(paths.clone())
                .map(drop),
            tower_jwt_auth::RequireStepUp::acr(["mfa"])
                .paths(paths.clone())
                .map(drop),
        ];
        for err in errors {
            match err {
                Err(tower_jwt_auth::BuildError::InvalidConfig(e)) => {
                    assert_eq!(e.setting(), "paths", "{paths:?}");
                }
                other => panic!("{paths:?}: {other:?}"),
            }
        }
    }
}
