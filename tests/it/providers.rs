//! One step per provider: `Verifier::from_issuer(issuer).audience(..)`,
//! the issuer typed once, keys by discovery, algorithms from the keys the
//! provider publishes. Each provider's issuer form, signing algorithm and
//! claim layout is mimicked by the built-in issuer on 127.0.0.1.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, ClaimSource, JwtAuthLayer, RequireRole, Verifier};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Provider {
    name: &'static str,
    alg: Algorithm,
    /// The issuer has a trailing slash (Auth0).
    trailing_slash: bool,
    /// Where the provider puts roles, and a token's claims that grant `admin`.
    roles: ClaimSource,
    admin: Value,
}

fn providers() -> Vec<Provider> {
    vec![
        Provider {
            name: "Keycloak (ES256 realm)",
            alg: Algorithm::ES256,
            trailing_slash: false,
            roles: ClaimSource::keycloak_realm_roles(),
            admin: json!({"realm_access": {"roles": ["offline_access", "admin"]}, "azp": "web"}),
        },
        Provider {
            name: "Auth0",
            alg: Algorithm::RS256,
            trailing_slash: true,
            roles: ClaimSource::auth0_permissions(),
            admin: json!({"permissions": ["admin"], "scope": "openid"}),
        },
        Provider {
            name: "Entra ID v2",
            alg: Algorithm::RS256,
            trailing_slash: false,
            roles: ClaimSource::roles(),
            admin: json!({"roles": ["admin"], "tid": "t", "scp": "read"}),
        },
        Provider {
            name: "Cognito",
            alg: Algorithm::RS256,
            trailing_slash: false,
            roles: ClaimSource::cognito_groups(),
            admin: json!({"cognito:groups": ["admin"], "token_use": "access"}),
        },
        Provider {
            name: "Okta",
            alg: Algorithm::RS256,
            trailing_slash: false,
            roles: ClaimSource::okta_groups(),
            admin: json!({"groups": ["Everyone", "admin"], "scp": ["read"]}),
        },
        Provider {
            name: "Google (EdDSA stands in for another family)",
            alg: Algorithm::EdDSA,
            trailing_slash: false,
            roles: ClaimSource::claim("hd_roles"),
            admin: json!({"hd_roles": ["admin"], "email_verified": true}),
        },
    ]
}

async fn status(app: &Router, token: &str) -> StatusCode {
    app.clone()
        .oneshot(
            Request::builder()
                .uri("/admin")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn each_provider_in_one_step() {
    for p in providers() {
        let idp = Issuer::start_with(p.alg).await.unwrap();
        let issuer = if p.trailing_slash {
            let with_slash = format!("{}/", idp.url());
            idp.set_discovery_issuer(Some(&with_slash));
            with_slash
        } else {
            idp.url()
        };
        // The quick start: three lines.
        let verifier = Verifier::from_issuer(&issuer)
            .audience("api")
            .build()
            .unwrap();
        verifier.prefetch().await.unwrap();
        let app = Router::new()
            .route("/admin", get(|| async { "ok" }))
            .route_layer(RequireRole::any(["admin"]).sources([p.roles.clone()]))
            .route_layer(JwtAuthLayer::new(verifier));

        let mint = |extra: &Value| {
            let mut c =
                json!({"iss": issuer, "sub": "u", "aud": "api", "exp": now() + 600, "iat": now()});
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            idp.mint(&c)
        };
        assert_eq!(
            status(&app, &mint(&p.admin)).await,
            StatusCode::OK,
            "{}",
            p.name
        );
        assert_eq!(
            status(&app, &mint(&json!({}))).await,
            StatusCode::FORBIDDEN,
            "{}",
            p.name
        );
        // Another issuer, another audience: refused.
        let other = mint(&json!({"iss": "https://elsewhere.example"}));
        assert_eq!(
            status(&app, &other).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            p.name
        );
        let wrong_aud = mint(&json!({"aud": "billing"}));
        assert_eq!(
            status(&app, &wrong_aud).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            p.name
        );
    }
}

#[tokio::test]
async fn from_issuer_follows_the_published_algorithm_and_never_implies_hmac() {
    let idp = Issuer::start_with(Algorithm::ES256).await.unwrap();
    let verifier = Verifier::from_issuer(&idp.url())
        .audience("api")
        .build()
        .unwrap();
    let claims = json!({"iss": idp.url(), "aud": "api", "exp": now() + 600});
    let es = idp.mint(&claims);
    assert!(
        verifier
            .verify_async::<tower_jwt_auth::JsonClaims>(&es)
            .await
            .is_ok()
    );
    // The provider rotates to another family: followed without configuration.
    idp.rotate(Algorithm::PS256).unwrap();
    let ps = idp.mint(&claims);
    assert!(
        verifier
            .verify_async::<tower_jwt_auth::JsonClaims>(&ps)
            .await
            .is_ok()
    );
    // An HS256 token is never accepted, whatever it names.
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let hs = format!("{}.{}.c2ln", b64(header), b64(&claims.to_string()));
    let err = verifier
        .verify_async::<tower_jwt_auth::JsonClaims>(&hs)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "alg_not_allowed", "{err}");
    // Pinned algorithms win.
    let pinned = Verifier::from_issuer(&idp.url())
        .algorithms([Algorithm::RS256])
        .audience("api")
        .build()
        .unwrap();
    assert!(
        pinned
            .verify_async::<tower_jwt_auth::JsonClaims>(&ps)
            .await
            .is_err()
    );
}

/// Entra ID's `common` discovery document, served on 127.0.0.1: its
/// `issuer` is the multi-tenant template, its keys the built-in issuer's.
/// Returns the template.
async fn entra_common_discovery(idp: &Issuer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let template = format!("{base}/{{tenantid}}/v2.0");
    let doc = json!({
        "issuer": template,
        "jwks_uri": idp.jwks_url(),
        "token_endpoint": format!("{base}/common/oauth2/v2.0/token"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": null,
    })
    .to_string();
    let app = Router::new().route(
        "/common/v2.0/.well-known/openid-configuration",
        get(move || std::future::ready(([("content-type", "application/json")], doc.clone()))),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    template
}

const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TENANT_B: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

fn entra_claims(template: &str, iss_tenant: &str, tid: Option<Value>) -> Value {
    let mut c = json!({
        "iss": template.replace("{tenantid}", iss_tenant),
        "sub": "u", "aud": "api", "exp": now() + 600, "iat": now(), "ver": "2.0",
        "roles": ["admin"],
    });
    if let Some(tid) = tid {
        c["tid"] = tid;
    }
    c
}

async fn reason(verifier: &Verifier, token: &str) -> &'static str {
    match verifier
        .verify_async::<tower_jwt_auth::JsonClaims>(token)
        .await
    {
        Ok(_) => "accepted",
        Err(e) => e.reason(),
    }
}

#[tokio::test]
async fn entra_multi_tenant_issuer_is_checked_against_tid() {
    let idp = Issuer::start().await.unwrap();
    let template = entra_common_discovery(&idp).await;
    // The quick start: three lines.
    let verifier = Verifier::from_issuer(&template)
        .audience("api")
        .build()
        .unwrap();
    verifier.prefetch().await.unwrap();
    let app = Router::new()
        .route("/admin", get(|| async { "ok" }))
        .route_layer(RequireRole::any(["admin"]).sources([ClaimSource::roles()]))
        .route_layer(JwtAuthLayer::new(verifier.clone()));
    let mint =
        |iss_tenant: &str, tid: Option<Value>| idp.mint(&entra_claims(&template, iss_tenant, tid));

    // Any tenant whose `iss` names its own `tid`.
    for tenant in [TENANT_A, TENANT_B] {
        let token = mint(tenant, Some(json!(tenant)));
        assert_eq!(status(&app, &token).await, StatusCode::OK, "{tenant}");
    }
    // Refusals: 401 with a clear reason, never a panic.
    let refused = [
        ("no tid", mint(TENANT_A, None), "missing_claim"),
        (
            "iss of another tenant",
            mint(TENANT_B, Some(json!(TENANT_A))),
            "invalid_issuer",
        ),
        (
            "tid with a slash",
            mint("a/b", Some(json!("a/b"))),
            "invalid_claim",
        ),
        (
            "tid with a dot segment",
            mint("..", Some(json!(".."))),
            "invalid_claim",
        ),
        (
            "tid not a string",
            mint("7", Some(json!(7))),
            "invalid_claim",
        ),
        (
            "the template itself",
            mint("{tenantid}", Some(json!("{tenantid}"))),
            "invalid_claim",
        ),
        (
            "the discovery tenant",
            idp.mint(&json!({"iss": template.replace("{tenantid}", "common"),
                "aud": "api", "exp": now() + 600})),
            "missing_claim",
        ),
        (
            "another issuer",
            idp.mint(
                &json!({"iss": "https://elsewhere.example/v2.0", "tid": TENANT_A,
                "aud": "api", "exp": now() + 600}),
            ),
            "invalid_issuer",
        ),
        (
            "no iss",
            idp.mint(&json!({"tid": TENANT_A, "aud": "api", "exp": now() + 600})),
            "missing_claim",
        ),
    ];
    for (what, token, why) in &refused {
        assert_eq!(reason(&verifier, token).await, *why, "{what}");
        assert_eq!(
            status(&app, token).await,
            StatusCode::UNAUTHORIZED,
            "{what}"
        );
    }

    // Restricted to one tenant: the others' tokens are refused.
    let only_a = Verifier::from_issuer(&template)
        .tenants([TENANT_A])
        .audience("api")
        .build()
        .unwrap();
    let a = mint(TENANT_A, Some(json!(TENANT_A)));
    let b = mint(TENANT_B, Some(json!(TENANT_B)));
    assert_eq!(reason(&only_a, &a).await, "accepted");
    assert_eq!(reason(&only_a, &b).await, "tenant_not_allowed");
    for (what, token, why) in &refused {
        assert_eq!(reason(&only_a, token).await, *why, "{what}");
    }
}

#[tokio::test]
async fn entra_common_as_the_issuer_points_at_the_template() {
    let idp = Issuer::start().await.unwrap();
    let template = entra_common_discovery(&idp).await;
    let common = template.replace("{tenantid}", "common");
    let verifier = Verifier::from_issuer(&common)
        .audience("api")
        .build()
        .unwrap();
    let err = verifier.prefetch().await.unwrap_err().to_string();
    assert!(
        err.contains("{tenantid}") && err.contains(".tenants("),
        "{err}"
    );
    // Tenants without a template: refused at build, not silently ignored.
    let err = Verifier::from_issuer(&common)
        .tenants([TENANT_A])
        .audience("api")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("tenants"), "{err}");
}

/// Entra ID v1 access tokens (`ver: "1.0"`, the default for many APIs):
/// the issuer template is `https://sts.windows.net/{tenantid}/` (trailing
/// slash included), checked against `tid` exactly as the v2 one; keys from
/// the JWKS URL (Entra signs v1 and v2 tokens with the same `common` keys).
#[tokio::test]
async fn entra_v1_multi_tenant_issuer_is_checked_against_tid() {
    let idp = Issuer::start().await.unwrap();
    let template = "https://sts.windows.net/{tenantid}/";
    let verifier = |tenants: &[&str]| {
        let keys = tower_jwt_auth::jwks::JwksCache::builder(&idp.jwks_url())
            .build()
            .unwrap();
        let builder = Verifier::builder()
            .jwks_cache(keys)
            .issuer(template)
            .audience("api");
        match tenants {
            [] => builder.build().unwrap(),
            list => builder.tenants(list.iter().copied()).build().unwrap(),
        }
    };
    let any = verifier(&[]);
    let only_a = verifier(&[TENANT_A]);
    let v1 = |iss_tenant: &str, tid: &str| {
        let mut c = entra_claims(template, iss_tenant, Some(json!(tid)));
        c["ver"] = json!("1.0");
        idp.mint(&c)
    };
    let a = v1(TENANT_A, TENANT_A);
    let b = v1(TENANT_B, TENANT_B);
    assert_eq!(reason(&any, &a).await, "accepted");
    assert_eq!(reason(&any, &b).await, "accepted");
    assert_eq!(reason(&only_a, &a).await, "accepted");
    assert_eq!(reason(&only_a, &b).await, "tenant_not_allowed");
    // The same tenant's v2 issuer, the issuer without its trailing slash,
    // and another tenant's issuer are not this template filled with `tid`.
    let v2 = idp.mint(&entra_claims(
        "https://login.microsoftonline.com/{tenantid}/v2.0",
        TENANT_A,
        Some(json!(TENANT_A)),
    ));
    let mut no_slash = entra_claims(template, TENANT_A, Some(json!(TENANT_A)));
    no_slash["iss"] = json!(format!("https://sts.windows.net/{TENANT_A}"));
    for (what, token) in [
        ("v2 issuer", v2),
        ("no trailing slash", idp.mint(&no_slash)),
        ("another tenant's iss", v1(TENANT_B, TENANT_A)),
    ] {
        assert_eq!(reason(&any, &token).await, "invalid_issuer", "{what}");
    }
}
