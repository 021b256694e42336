//! The layer over a plain tower service: each refusal gives the expected
//! status and RFC 6750 error code, and claims reach the inner service.

use crate::support as common;

use std::convert::Infallible;

use common::*;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use serde_json::json;
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Verifier};
use tower_layer::Layer;

fn layer() -> JwtAuthLayer {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .key(verify_key(Algorithm::HS256).with_kid("hs"))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    JwtAuthLayer::new(verifier)
}

struct Answer {
    status: StatusCode,
    challenge: String,
    body: String,
}

async fn call(layer: &JwtAuthLayer, auth: Option<&str>) -> Answer {
    let svc = layer.layer(service_fn(|req: Request<String>| async move {
        let sub = req
            .extensions()
            .get::<Claims>()
            .and_then(|c| c.sub().map(str::to_owned))
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(sub))
    }));
    let mut req = Request::builder().uri("/");
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    let res = svc.oneshot(req.body(String::new()).unwrap()).await.unwrap();
    Answer {
        status: res.status(),
        challenge: res
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: res.into_body(),
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn rs(claims: serde_json::Value) -> String {
    token(Algorithm::RS256, &claims)
}

fn rs_header(header: serde_json::Value) -> String {
    token_raw(Algorithm::RS256, &header.to_string(), &claims().to_string())
}

#[tokio::test]
async fn valid_token_reaches_the_service_with_claims() {
    let a = call(&layer(), Some(&bearer(&rs(claims())))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "user-1");
}

#[tokio::test]
async fn missing_token_is_401_without_error_code() {
    let a = call(&layer(), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.challenge, r#"Bearer realm="api""#);
    // Another scheme is "no bearer token".
    let a = call(&layer(), Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.challenge, r#"Bearer realm="api""#);
}

#[tokio::test]
async fn refusals_have_the_expected_status_and_code() {
    let mut c = claims();
    let now = now();
    let expired = {
        c["exp"] = json!(now - 120);
        rs(c.clone())
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", expired, "the access token expired"),
        (
            "not yet valid",
            rs({
                let mut c = claims();
                c["nbf"] = json!(now + 600);
                c
            }),
            "not yet valid",
        ),
        (
            "wrong iss",
            rs({
                let mut c = claims();
                c["iss"] = json!("https://evil.test");
                c
            }),
            "issuer",
        ),
        (
            "missing iss",
            rs({
                let mut c = claims();
                c.as_object_mut().unwrap().remove("iss");
                c
            }),
            "required claim",
        ),
        (
            "wrong aud",
            rs({
                let mut c = claims();
                c["aud"] = json!("other");
                c
            }),
            "audience",
        ),
        (
            "aud array without us",
            rs({
                let mut c = claims();
                c["aud"] = json!(["a", "b"]);
                c
            }),
            "audience",
        ),
        (
            "missing aud",
            rs({
                let mut c = claims();
                c.as_object_mut().unwrap().remove("aud");
                c
            }),
            "required claim",
        ),
        (
            "missing exp",
            rs({
                let mut c = claims();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            "required claim",
        ),
        (
            "exp as string",
            rs({
                let mut c = claims();
                c["exp"] = json!((now + 600).to_string());
                c
            }),
            "malformed claim",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none"}"#),
                b64(claims().to_string())
            ),
            "malformed",
        ),
        (
            "alg none signed",
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"none"}"#),
                b64(claims().to_string())
            ),
            "not allowed",
        ),
        (
            "alg None",
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"None","kid":"k1"}"#),
                b64(claims().to_string())
            ),
            "not allowed",
        ),
        (
            "unknown kid",
            rs_header(json!({"alg": "RS256", "kid": "nope"})),
            "no key",
        ),
        (
            "unknown crit",
            rs_header(json!({"alg": "RS256", "kid": "k1", "crit": ["x-ext"], "x-ext": 1})),
            "critical",
        ),
        (
            "embedded jwk",
            rs_header(
                json!({"alg": "RS256", "kid": "k1", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
            ),
            "key reference",
        ),
        (
            "two segments",
            "eyJhbGciOiJSUzI1NiJ9.e30".to_string(),
            "malformed",
        ),
        ("four segments", "a.b.c.d".to_string(), "malformed"),
        ("five segments (JWE)", "a.b.c.d.e".to_string(), "encrypted"),
        (
            "spaces inside",
            "eyJh bGci.e30.c2ln".to_string(),
            "malformed",
        ),
        (
            "too large",
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"RS256"}"#),
                "A".repeat(17 * 1024)
            ),
            "too large",
        ),
    ];
    let l = layer();
    for (name, token, description) in cases {
        let a = call(&l, Some(&bearer(&token))).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            a.challenge
                .starts_with(r#"Bearer realm="api", error="invalid_token", error_description=""#),
            "{name}: {}",
            a.challenge
        );
        assert!(a.challenge.contains(description), "{name}: {}", a.challenge);
        assert_eq!(a.body, "", "{name}: the service must not run");
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The classic confusion attack: HMAC keyed with the RSA public key's PEM.
    let header = json!({"alg": "HS256", "kid": "k1"}).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims().to_string()));
    let pem = read("rsa.pub");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &pem);
    let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let forged = format!("{input}.{}", b64(sig.as_ref()));
    let a = call(&layer(), Some(&bearer(&forged))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.challenge.contains("invalid_token"));
    // Without kid it is tried against the HS256 key only, and fails there.
    let header = json!({"alg": "HS256"}).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims().to_string()));
    let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let forged = format!("{input}.{}", b64(sig.as_ref()));
    let a = call(&layer(), Some(&bearer(&forged))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.challenge.contains("signature is invalid"),
        "{}",
        a.challenge
    );
}

#[tokio::test]
async fn aud_array_containing_us_passes_and_leeway_applies() {
    let mut c = claims();
    c["aud"] = json!(["other", AUDIENCE]);
    c["exp"] = json!(now() - 10); // inside the default 30 s leeway
    let a = call(&layer(), Some(&bearer(&rs(c)))).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn two_authorization_headers_are_400_invalid_request() {
    let svc = layer().layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let t = rs(claims());
    let req = Request::builder()
        .header(AUTHORIZATION, bearer(&t))
        .header(AUTHORIZATION, bearer(&t))
        .body(String::new())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_request""#)
    );
}

#[tokio::test]
async fn size_limit_is_configurable() {
    let t = rs(claims());
    let small = layer().max_token_len(100);
    let a = call(&small, Some(&bearer(&t))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.challenge.contains("too large"));
}

#[tokio::test]
async fn required_claims_and_typ() {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .audience(AUDIENCE)
        .required_claims(["jti", "tenant"])
        .typ("at+jwt")
        .build()
        .unwrap();
    let l = JwtAuthLayer::new(verifier);
    let mut c = claims();
    c["jti"] = json!("id-1");
    c["tenant"] = json!("acme");
    let at = |claims: &serde_json::Value, typ: &str| {
        token_raw(
            Algorithm::RS256,
            &json!({"alg": "RS256", "kid": "k1", "typ": typ}).to_string(),
            &claims.to_string(),
        )
    };
    assert_eq!(
        call(&l, Some(&bearer(&at(&c, "at+jwt")))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&l, Some(&bearer(&at(&c, "application/AT+JWT"))))
            .await
            .status,
        StatusCode::OK
    );
    let a = call(&l, Some(&bearer(&at(&c, "JWT")))).await;
    assert!(a.challenge.contains("token type"), "{}", a.challenge);
    c.as_object_mut().unwrap().remove("tenant");
    let a = call(&l, Some(&bearer(&at(&c, "at+jwt")))).await;
    assert!(a.challenge.contains("required claim"), "{}", a.challenge);
}

#[tokio::test]
async fn grpc_requests_get_grpc_status() {
    // Only on a layer configured for gRPC: the request alone never decides
    // (issue 14: on a plain HTTP route that would turn a refusal into a 200).
    let svc = layer()
        .grpc()
        .layer(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let req = Request::builder()
        .header("content-type", "application/grpc")
        .body(String::new())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "16");
}

/// The token a handler hands on (to a token exchange, say) must be the one
/// the layer verified, not whatever `Authorization` holds: with a cookie
/// source first, a request carrying the attacker's own cookie token and a
/// stolen bearer token is admitted on the cookie, and `token_in` names the
/// cookie's token.
#[cfg(feature = "axum")]
#[tokio::test]
async fn token_in_names_the_token_the_layer_verified() {
    use axum::Router;
    use axum::routing::get;
    use tower_jwt_auth::TokenSource;

    let verifier = es256_verifier();
    let auth =
        JwtAuthLayer::new(verifier).sources([TokenSource::cookie("at"), TokenSource::Bearer]);
    let handler = {
        let auth = auth.clone();
        move |uri: http::Uri, headers: http::HeaderMap, claims: Claims| async move {
            let token = auth.token_in(&uri, &headers).map(|t| t.into_owned());
            format!(
                "{}|{}",
                claims.sub().unwrap_or_default(),
                token.unwrap_or_default()
            )
        }
    };
    let app: Router = Router::new().route("/me", get(handler)).route_layer(auth);
    let mint = |sub: &str| {
        let mut c = claims();
        c["sub"] = json!(sub);
        token(Algorithm::ES256, &c)
    };
    let (mine, stolen) = (mint("attacker"), mint("victim"));
    let req = Request::get("/me")
        .header("cookie", format!("at={mine}"))
        .header(AUTHORIZATION, format!("Bearer {stolen}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&body), format!("attacker|{mine}"));
    // Bearer alone: that one.
    let req = Request::get("/me")
        .header(AUTHORIZATION, format!("Bearer {stolen}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let body = axum::body::to_bytes(app.oneshot(req).await.unwrap().into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&body), format!("victim|{stolen}"));
}
