//! OpenAPI security (features `utoipa`, `aide`): the document states what
//! the guards enforce. For each route, a token with exactly the scopes and
//! roles of a documented alternative passes, and one lacking any of them
//! is refused; the aide and utoipa documents validate with
//! openapi-spec-validator.

use crate::support as common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::{Method, Request};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::openapi::{Requirement, Security};
use tower_jwt_auth::{Algorithm, JwtAuthLayer, RequireRole, RequireScope, Verifier};

/// The routes, each with its guards, and the document made from them.
fn routes() -> (Router, Security) {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let read_or_admin = RequireScope::any(["read", "admin"]);
    let read_and_write = RequireScope::all(["read", "write"]);
    let ops = RequireRole::any(["ops", "sre"]);
    let ok = || get(|| async { "ok" });
    let app = Router::new()
        .route("/me", ok())
        .merge(
            Router::new()
                .route("/items", ok())
                .route_layer(read_or_admin.clone()),
        )
        .merge(
            Router::new()
                .route("/edit", ok())
                .route_layer(read_and_write.clone())
                .route_layer(ops.clone()),
        )
        .route_layer(JwtAuthLayer::new(verifier));
    let security = Security::new()
        .issuer(ISSUER)
        .client_credentials("https://issuer.test/token")
        .route("/me", Method::GET, Requirement::authenticated())
        .route(
            "/items",
            Method::GET,
            Requirement::authenticated().guard(&read_or_admin),
        )
        .route(
            "/edit",
            Method::GET,
            Requirement::authenticated()
                .guard(&read_and_write)
                .guard(&ops),
        );
    (app, security)
}

async fn status(app: &Router, path: &str, scopes: &[String], roles: &[String]) -> u16 {
    let mut c = claims();
    c["scope"] = json!(scopes.join(" "));
    c["roles"] = json!(roles);
    let t = token(Algorithm::ES256, &c);
    app.clone()
        .oneshot(
            Request::get(path)
                .header("authorization", format!("Bearer {t}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_documented_alternative_passes_and_anything_less_is_refused() {
    let (app, security) = routes();
    let mut doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}});
    security.apply(&mut doc).unwrap();
    let mut checked = 0;
    for path in ["/me", "/items", "/edit"] {
        let list = doc["paths"][path]["get"]["security"].as_array().unwrap();
        // bearer: roles then scopes; oauth2: the scopes alone.
        for pair in list.chunks(3) {
            let bearer = strings(&pair[0]["bearer"]);
            let scopes = strings(&pair[2]["oauth2"]);
            assert_eq!(strings(&pair[1]["oidc"]), scopes);
            let roles: Vec<String> = bearer
                .iter()
                .filter(|b| !scopes.contains(b))
                .cloned()
                .collect();
            assert_eq!(
                status(&app, path, &scopes, &roles).await,
                200,
                "{path} {pair:?}"
            );
            for i in 0..scopes.len() {
                let mut fewer = scopes.clone();
                fewer.remove(i);
                assert_eq!(
                    status(&app, path, &fewer, &roles).await,
                    403,
                    "{path} {fewer:?}"
                );
            }
            for i in 0..roles.len() {
                let mut fewer = roles.clone();
                fewer.remove(i);
                assert_eq!(
                    status(&app, path, &scopes, &fewer).await,
                    403,
                    "{path} {fewer:?}"
                );
            }
            checked += 1;
        }
    }
    // /me one, /items two (read | admin), /edit two (ops | sre, each with read and write).
    assert_eq!(checked, 5);
    // The oauth2 scheme lists every scope a route demands.
    let scopes =
        &doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"];
    let mut names: Vec<&String> = scopes.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["admin", "read", "write"]);
}

fn validate(doc: &Value, name: &str) {
    let file = std::env::temp_dir().join(format!("tjwt-{name}-{}.json", std::process::id()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let report = crate::support::pip::validate_openapi(&file);
    let _ = std::fs::remove_file(&file);
    report
        .unwrap_or_else(|r| panic!("openapi-spec-validator on the {name} document: {r}\n{doc:#}"));
}

#[test]
fn the_aide_and_utoipa_documents_validate_and_agree() {
    let (_, security) = routes();
    let mut aide_doc = aide::openapi::OpenApi {
        info: aide::openapi::Info {
            title: "t".into(),
            version: "1".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    security.apply_aide(&mut aide_doc).unwrap();
    let aide_json = serde_json::to_value(&aide_doc).unwrap();
    validate(&aide_json, "aide");

    let mut utoipa_doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("t")
                .version("1")
                .build(),
        )
        .build();
    security.apply_utoipa(&mut utoipa_doc).unwrap();
    let utoipa_json = serde_json::to_value(&utoipa_doc).unwrap();
    validate(&utoipa_json, "utoipa");

    for path in ["/me", "/items", "/edit"] {
        assert_eq!(
            aide_json["paths"][path]["get"]["security"],
            utoipa_json["paths"][path]["get"]["security"],
            "{path}"
        );
    }
    assert_eq!(
        aide_json["components"]["securitySchemes"],
        utoipa_json["components"]["securitySchemes"]
    );
}
