//! mTLS-bound tokens (RFC 8705 §3) through the auth layer: the certificate
//! from the request extensions (put there by the TLS server, here a real
//! tokio-rustls one with certificates made in the test) or from a trusted
//! RFC 9440 `Client-Cert` header; each mode; the FAPI 2.0 preset.

use crate::support as common;
use crate::support::pki::{Ca, https_get};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use common::*;
use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;
use tower_jwt_auth::mtls::{ClientCertificate, ClientCertificateLayer, MtlsMode, MtlsPolicy};
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Verifier};

fn verifier() -> Verifier {
    Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

fn app(layer: JwtAuthLayer) -> Router {
    async fn me(claims: Claims) -> String {
        claims.payload()["sub"].as_str().unwrap_or("").to_owned()
    }
    Router::new().route("/me", get(me)).route_layer(layer)
}

fn bound_to(x5t: &str) -> String {
    let mut c = claims();
    c["cnf"] = json!({"x5t#S256": x5t});
    token(Algorithm::ES256, &c)
}

fn plain() -> String {
    token(Algorithm::ES256, &claims())
}

/// What the layer answers: the status and the refusal's reason header.
async fn send(
    app: &Router,
    token: &str,
    cert: Option<&[u8]>,
    header: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder()
        .uri("/me")
        .header(AUTHORIZATION, format!("Bearer {token}"));
    if let Some(h) = header {
        req = req.header("client-cert", h);
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(der) = cert {
        req.extensions_mut().insert(ClientCertificate::new(der));
    }
    let res = app.clone().oneshot(req).await.unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status(), challenge)
}

fn sf(der: &[u8]) -> String {
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

#[tokio::test]
async fn a_bound_token_passes_only_with_the_certificate_it_names() {
    let ca = Ca::new("ca");
    let (a, b) = (ca.client("a"), ca.client("b"));
    let app = app(JwtAuthLayer::new(verifier()).mtls(MtlsPolicy::new(MtlsMode::Allowed)));
    let token = bound_to(&a.x5t());
    assert_eq!(
        send(&app, &token, Some(&a.der), None).await.0,
        StatusCode::OK
    );
    let (status, challenge) = send(&app, &token, Some(&b.der), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(
        send(&app, &token, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Allowed: an unbound token passes with or without a certificate.
    assert_eq!(send(&app, &plain(), None, None).await.0, StatusCode::OK);
    assert_eq!(
        send(&app, &plain(), Some(&b.der), None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_bound_token_is_never_a_bearer_token_without_a_policy_or_with_off() {
    let ca = Ca::new("ca");
    let a = ca.client("a");
    let token = bound_to(&a.x5t());
    for layer in [
        JwtAuthLayer::new(verifier()),
        JwtAuthLayer::new(verifier()).mtls(MtlsPolicy::new(MtlsMode::Off)),
    ] {
        let app = app(layer);
        let (status, challenge) = send(&app, &token, Some(&a.der), Some(&sf(&a.der))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.contains("invalid_token"), "{challenge}");
        assert_eq!(send(&app, &plain(), None, None).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn required_mode_refuses_unbound_tokens() {
    let ca = Ca::new("ca");
    let a = ca.client("a");
    let app = app(JwtAuthLayer::new(verifier()).mtls(MtlsPolicy::new(MtlsMode::Required)));
    assert_eq!(
        send(&app, &plain(), Some(&a.der), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let bound = bound_to(&a.x5t());
    assert_eq!(
        send(&app, &bound, Some(&a.der), None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_client_cert_header_binds_only_when_configured_as_trusted() {
    let ca = Ca::new("ca");
    let (a, b) = (ca.client("a"), ca.client("b"));
    let token = bound_to(&a.x5t());
    // Trusted header: it alone decides (the extension is the proxy's
    // connection, not the client's).
    let policy = MtlsPolicy::new(MtlsMode::Allowed)
        .client_cert_header("Client-Cert")
        .unwrap();
    let trusting = app(JwtAuthLayer::new(verifier()).mtls(policy));
    assert_eq!(
        send(&trusting, &token, None, Some(&sf(&a.der))).await.0,
        StatusCode::OK
    );
    for (cert, header) in [
        (None, Some(sf(&b.der))),
        (Some(&a.der[..]), None),
        (Some(&a.der[..]), Some(sf(&b.der))),
        (None, Some("not a byte sequence".to_owned())),
        (None, Some(format!(":{}:", b64(&a.der)))), // base64url, not base64
    ] {
        assert_eq!(
            send(&trusting, &token, cert, header.as_deref()).await.0,
            StatusCode::UNAUTHORIZED,
            "{header:?}"
        );
    }
    // Not configured: the header gives no binding.
    let ext = app(JwtAuthLayer::new(verifier()).mtls(MtlsPolicy::new(MtlsMode::Allowed)));
    assert_eq!(
        send(&ext, &token, None, Some(&sf(&a.der))).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn fapi2_accepts_only_sender_constrained_tokens_from_the_header() {
    let ca = Ca::new("ca");
    let a = ca.client("a");
    let layer = JwtAuthLayer::new(verifier())
        .sources([
            tower_jwt_auth::TokenSource::Bearer,
            tower_jwt_auth::TokenSource::query("access_token"),
        ])
        .mtls(MtlsPolicy::new(MtlsMode::Allowed))
        .fapi2();
    let app = app(layer);
    let bound = bound_to(&a.x5t());
    assert_eq!(
        send(&app, &bound, Some(&a.der), None).await.0,
        StatusCode::OK
    );
    let (status, challenge) = send(&app, &plain(), Some(&a.der), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // §5.3.4: never from the query.
    let mut req = Request::builder()
        .uri(format!("/me?access_token={bound}"))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ClientCertificate::new(a.der.clone()));
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn fapi2_verifier_refuses_rs256() {
    let verifier = Verifier::builder()
        .fapi2()
        .key(verify_key(Algorithm::ES256))
        .key(verify_key(Algorithm::RS256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build();
    // RS256 is not a FAPI 2.0 algorithm: a key bound to it fits none.
    assert!(verifier.is_err());
    let verifier = Verifier::builder()
        .fapi2()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    assert!(verifier.verify::<serde_json::Value>(&plain()).is_ok());
}

#[tokio::test]
async fn fapi2_then_sources_still_refuses_query_tokens() {
    use tower_jwt_auth::TokenSource;
    let ca = Ca::new("ca");
    let a = ca.client("a");
    // The preset first, the sources after: the preset still holds.
    let layer = JwtAuthLayer::new(verifier())
        .mtls(MtlsPolicy::new(MtlsMode::Allowed))
        .fapi2()
        .sources([
            TokenSource::Bearer,
            TokenSource::query("access_token"),
            TokenSource::cookie("access_token"),
        ]);
    let app = app(layer);
    let bound = bound_to(&a.x5t());
    // The setup is sound: the bound token from the header, with its
    // certificate, passes.
    assert_eq!(
        send(&app, &bound, Some(&a.der), None).await.0,
        StatusCode::OK
    );
    // §5.3.4: the same token in the query (or a cookie) is never read.
    for (uri, cookie) in [
        (format!("/me?access_token={bound}"), None),
        ("/me".to_owned(), Some(format!("access_token={bound}"))),
    ] {
        let mut req = Request::builder().uri(&uri);
        if let Some(c) = &cookie {
            req = req.header(http::header::COOKIE, c);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ClientCertificate::new(a.der.clone()));
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{uri} {cookie:?}");
    }
    // And `require_sender_constrained` stays: an unbound token is refused.
    let (status, challenge) = send(&app, &plain(), Some(&a.der), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[test]
fn fapi2_then_weaker_algorithms_fail_to_build() {
    use tower_jwt_auth::{BuildError, Key};
    let hmac = || Key::hmac(Algorithm::HS256, SECRET).unwrap();
    let cases: [(&str, tower_jwt_auth::VerifierBuilder); 4] = [
        (
            "fapi2 then RS256",
            Verifier::builder()
                .fapi2()
                .algorithms([Algorithm::RS256])
                .key(verify_key(Algorithm::RS256)),
        ),
        (
            "fapi2 then HS256",
            Verifier::builder()
                .fapi2()
                .algorithms([Algorithm::HS256])
                .key(hmac()),
        ),
        (
            "RS256 then fapi2",
            Verifier::builder()
                .algorithms([Algorithm::RS256, Algorithm::ES256])
                .fapi2()
                .key(verify_key(Algorithm::ES256)),
        ),
        (
            "fapi2 then ES256 and ES384",
            Verifier::builder()
                .fapi2()
                .algorithms([Algorithm::ES256, Algorithm::ES384])
                .key(verify_key(Algorithm::ES256)),
        ),
    ];
    for (why, builder) in cases {
        match builder.issuer(ISSUER).audience(AUDIENCE).build() {
            Err(BuildError::InvalidConfig(e)) => assert_eq!(e.setting(), "algorithms", "{why}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    // Narrowing within the profile is fine, in either order.
    for builder in [
        Verifier::builder().fapi2().algorithms([Algorithm::ES256]),
        Verifier::builder().algorithms([Algorithm::ES256]).fapi2(),
    ] {
        let verifier = builder
            .key(verify_key(Algorithm::ES256))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap();
        assert!(verifier.verify::<serde_json::Value>(&plain()).is_ok());
    }
}

#[tokio::test]
async fn a_repeated_cnf_is_refused() {
    let ca = Ca::new("ca");
    let (a, b) = (ca.client("a"), ca.client("b"));
    let app = app(JwtAuthLayer::new(verifier()).mtls(MtlsPolicy::new(MtlsMode::Allowed)));
    let body = claims().to_string();
    let body = body.trim_end_matches('}');
    let header = r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#;
    for cnf in [
        // A repeated `cnf`: the certificate of either must not decide.
        format!(
            r#""cnf":{{"x5t#S256":"{}"}},"cnf":{{"x5t#S256":"{}"}}"#,
            b.x5t(),
            a.x5t()
        ),
        format!(
            r#""cnf":{{"x5t#S256":"{}"}},"cnf":{{"x5t#S256":"{}"}}"#,
            a.x5t(),
            b.x5t()
        ),
        // A repeated member of one `cnf`.
        format!(
            r#""cnf":{{"x5t#S256":"{}","x5t#S256":"{}"}}"#,
            b.x5t(),
            a.x5t()
        ),
        format!(
            r#""cnf":{{"x5t#S256":"{}","x5t#S256":"{}"}}"#,
            a.x5t(),
            b.x5t()
        ),
    ] {
        let token = token_raw(Algorithm::ES256, header, &format!("{body},{cnf}}}"));
        let (status, challenge) = send(&app, &token, Some(&a.der), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cnf}");
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }
    // Once, it passes.
    let once = format!(r#""cnf":{{"x5t#S256":"{}"}}"#, a.x5t());
    let token = token_raw(Algorithm::ES256, header, &format!("{body},{once}}}"));
    assert_eq!(
        send(&app, &token, Some(&a.der), None).await.0,
        StatusCode::OK
    );
}

/// Serves `app` over TLS on 127.0.0.1:0 with `config`, each connection's
/// client certificate put into its requests by `ClientCertificateLayer`.
async fn serve_tls(
    app: Router,
    config: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
) -> std::net::SocketAddr {
    use tower::Layer;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = ClientCertificateLayer::new(ClientCertificate::from_tls(&tls)).layer(app);
                let svc = hyper_util::service::TowerToHyperService::new(svc);
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn over_real_tls_a_bound_token_needs_the_certificate_it_was_issued_to() {
    let ca = Ca::new("ca");
    let server = ca.server();
    let (a, b) = (ca.client("a"), ca.client("b"));
    let app = app(JwtAuthLayer::new(verifier()).mtls(MtlsPolicy::new(MtlsMode::Allowed)));
    let addr = serve_tls(app, ca.server_config(&server)).await;
    let token = bound_to(&a.x5t());
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str())];
    let (status, body) = https_get(ca.client_config(Some(&a)), addr, "/me", &headers).await;
    assert_eq!((status, body.as_str()), (200, "user-1"));
    let (status, _) = https_get(ca.client_config(Some(&b)), addr, "/me", &headers).await;
    assert_eq!(status, 401, "another certificate");
    let (status, _) = https_get(ca.client_config(None), addr, "/me", &headers).await;
    assert_eq!(status, 401, "no certificate");
    // A Client-Cert header sent by the client itself binds nothing.
    let spoof = sf(&a.der);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Client-Cert", spoof.as_str()),
    ];
    let (status, _) = https_get(ca.client_config(None), addr, "/me", &headers).await;
    assert_eq!(status, 401, "a header the server does not trust");
    // An unbound token still works without a certificate.
    let plain = format!("Bearer {}", plain());
    let (status, _) = https_get(
        ca.client_config(None),
        addr,
        "/me",
        &[("Authorization", &plain)],
    )
    .await;
    assert_eq!(status, 200);
}
