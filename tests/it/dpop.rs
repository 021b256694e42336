//! DPoP (RFC 9449) through the auth layer: each proof check of §4.3 and
//! each policy rule has a test that a request breaking it is refused
//! (and the same request without the fault is accepted).

use crate::support as common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use common::*;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::dpop::{DpopMode, DpopPolicy, DpopPolicyBuilder};
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Verifier};

const BASE: &str = "https://api.example.com";

/// A client's DPoP key (P-256).
struct ClientKey {
    pair: EcdsaKeyPair,
}

impl ClientKey {
    fn new() -> Self {
        ClientKey {
            pair: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    /// The RFC 7638 thumbprint, computed here independently of the crate.
    fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    fn sign(&self, header: &Value, payload: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

static JTI: AtomicU64 = AtomicU64::new(0);

fn ath(token: &str) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// A proof's header and payload for `method` on `path`, for `token`.
fn parts(key: &ClientKey, method: &str, path: &str, token: &str) -> (Value, Value) {
    let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk()});
    let payload = json!({
        "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::SeqCst)),
        "htm": method,
        "htu": format!("{BASE}{path}"),
        "iat": now(),
        "ath": ath(token),
    });
    (header, payload)
}

fn proof(key: &ClientKey, method: &str, path: &str, token: &str) -> String {
    let (h, p) = parts(key, method, path, token);
    key.sign(&h, &p)
}

/// A proof with `edit` applied to its header and payload.
fn proof_with(key: &ClientKey, token: &str, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
    let (mut h, mut p) = parts(key, "GET", "/me", token);
    edit(&mut h, &mut p);
    key.sign(&h, &p)
}

fn bound_token(key: &ClientKey) -> String {
    let mut c = claims();
    c["cnf"] = json!({"jkt": key.jkt()});
    token(Algorithm::ES256, &c)
}

fn plain_token() -> String {
    token(Algorithm::ES256, &claims())
}

fn policy(mode: DpopMode) -> DpopPolicyBuilder {
    DpopPolicy::builder(mode).base_url(BASE)
}

fn app(policy: DpopPolicy) -> Router {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    async fn me(claims: Claims) -> String {
        claims.payload()["sub"].as_str().unwrap_or("").to_owned()
    }
    Router::new()
        .route("/me", get(me))
        .route("/items", post(me))
        .route_layer(JwtAuthLayer::new(verifier).dpop(policy))
}

struct Answer {
    status: StatusCode,
    challenge: String,
    nonce: Option<String>,
}

async fn send(app: &Router, method: &str, path: &str, auth: &str, proofs: &[&str]) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if !auth.is_empty() {
        req = req.header(AUTHORIZATION, auth);
    }
    for p in proofs {
        req = req.header("dpop", *p);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = |name| {
        res.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: res.status(),
        challenge: text(WWW_AUTHENTICATE).unwrap_or_default(),
        nonce: text(http::HeaderName::from_static("dpop-nonce")),
    }
}

async fn get_me(app: &Router, token: &str, proof: &str) -> Answer {
    send(app, "GET", "/me", &format!("DPoP {token}"), &[proof]).await
}

fn refused_proof(a: &Answer, why: &str) {
    assert_eq!(a.status, 401, "{why}");
    assert!(
        a.challenge.contains(r#"DPoP realm="api", algs="#)
            && a.challenge.contains(r#"error="invalid_dpop_proof""#),
        "{why}: {}",
        a.challenge
    );
}

#[tokio::test]
async fn a_valid_proof_is_accepted_and_the_same_proof_twice_is_a_replay() {
    let app = app(policy(DpopMode::Allowed).build().unwrap());
    let key = ClientKey::new();
    let token = bound_token(&key);
    let p = proof(&key, "GET", "/me", &token);
    assert_eq!(get_me(&app, &token, &p).await.status, 200);
    // A POST with its own proof; the query is not part of htu.
    let post = proof(&key, "POST", "/items", &token);
    let a = send(
        &app,
        "POST",
        "/items?x=1",
        &format!("DPoP {token}"),
        &[&post],
    )
    .await;
    assert_eq!(a.status, 200);
    // §4.3 (11): the jti was seen.
    let replay = get_me(&app, &token, &p).await;
    refused_proof(&replay, "replay");
}

#[tokio::test]
async fn the_dpop_header_must_be_there_exactly_once() {
    let app = app(policy(DpopMode::Allowed).build().unwrap());
    let key = ClientKey::new();
    let token = bound_token(&key);
    let none = send(&app, "GET", "/me", &format!("DPoP {token}"), &[]).await;
    refused_proof(&none, "no proof");
    let (a, b) = (
        proof(&key, "GET", "/me", &token),
        proof(&key, "GET", "/me", &token),
    );
    let two = send(&app, "GET", "/me", &format!("DPoP {token}"), &[&a, &b]).await;
    refused_proof(&two, "two proofs");
}

#[tokio::test]
async fn each_proof_rule_refuses_a_proof_that_breaks_it() {
    let app = app(policy(DpopMode::Allowed)
        .algorithms([Algorithm::ES256, Algorithm::EdDSA])
        .build()
        .unwrap());
    let key = ClientKey::new();
    let other = ClientKey::new();
    let token = bound_token(&key);
    type Edit = Box<dyn FnOnce(&mut Value, &mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "typ missing",
            Box::new(|h, _| drop(h.as_object_mut().unwrap().remove("typ"))),
        ),
        ("typ JWT", Box::new(|h, _| h["typ"] = json!("JWT"))),
        (
            "no jwk",
            Box::new(|h, _| drop(h.as_object_mut().unwrap().remove("jwk"))),
        ),
        (
            "private jwk",
            Box::new(|h, _| h["jwk"]["d"] = json!(b64([1u8; 32]))),
        ),
        ("crit", Box::new(|h, _| h["crit"] = json!(["exp"]))),
        (
            "jku",
            Box::new(|h, _| h["jku"] = json!("https://evil.example/jwks")),
        ),
        (
            "alg ES384 not allowed",
            Box::new(|h, _| h["alg"] = json!("ES384")),
        ),
        ("alg none", Box::new(|h, _| h["alg"] = json!("none"))),
        ("htm", Box::new(|_, p| p["htm"] = json!("POST"))),
        (
            "htu host",
            Box::new(|_, p| p["htu"] = json!("https://evil.example/me")),
        ),
        (
            "htu path",
            Box::new(|_, p| p["htu"] = json!(format!("{BASE}/other"))),
        ),
        (
            "htu scheme",
            Box::new(|_, p| p["htu"] = json!("http://api.example.com/me")),
        ),
        ("htu relative", Box::new(|_, p| p["htu"] = json!("/me"))),
        (
            "iat 6 min old",
            Box::new(|_, p| p["iat"] = json!(now() - 360)),
        ),
        (
            "iat 6 min ahead",
            Box::new(|_, p| p["iat"] = json!(now() + 360)),
        ),
        (
            "iat missing",
            Box::new(|_, p| drop(p.as_object_mut().unwrap().remove("iat"))),
        ),
        (
            "iat string",
            Box::new(|_, p| p["iat"] = json!(now().to_string())),
        ),
        (
            "jti missing",
            Box::new(|_, p| drop(p.as_object_mut().unwrap().remove("jti"))),
        ),
        ("jti empty", Box::new(|_, p| p["jti"] = json!(""))),
        (
            "ath missing",
            Box::new(|_, p| drop(p.as_object_mut().unwrap().remove("ath"))),
        ),
        (
            "ath of another token",
            Box::new(|_, p| p["ath"] = json!(ath("x.y.z"))),
        ),
    ];
    for (why, edit) in cases {
        let p = proof_with(&key, &token, edit);
        refused_proof(&get_me(&app, &token, &p).await, why);
    }
    // Within the window either way: accepted.
    for iat in [now() - 240, now() + 240] {
        let p = proof_with(&key, &token, |_, p| p["iat"] = json!(iat));
        assert_eq!(get_me(&app, &token, &p).await.status, 200, "iat {iat}");
    }
    // An htu with a query, a fragment, an explicit default port and an
    // upper-case host is the same URI.
    let p = proof_with(&key, &token, |_, p| {
        p["htu"] = json!("https://API.example.com:443/me?a=1#f")
    });
    assert_eq!(get_me(&app, &token, &p).await.status, 200);
    // Signed by another key than its jwk.
    let (h, pl) = parts(&key, "GET", "/me", &token);
    let forged = other.sign(&h, &pl);
    refused_proof(
        &get_me(&app, &token, &forged).await,
        "signature by another key",
    );
    // An HMAC proof (a `jwk` of kty oct): never.
    let (mut h, pl) = parts(&key, "GET", "/me", &token);
    h["alg"] = json!("HS256");
    h["jwk"] = json!({"kty": "oct", "k": b64([7u8; 32])});
    let input = format!("{}.{}", b64(h.to_string()), b64(pl.to_string()));
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[7u8; 32]),
        input.as_bytes(),
    );
    let hmac = format!("{input}.{}", b64(tag.as_ref()));
    refused_proof(&get_me(&app, &token, &hmac).await, "HMAC proof");
    // Garbage.
    refused_proof(&get_me(&app, &token, "not-a-jws").await, "garbage");
}

#[tokio::test]
async fn the_token_must_be_bound_to_the_proof_key() {
    let app = app(policy(DpopMode::Allowed).build().unwrap());
    let key = ClientKey::new();
    let thief = ClientKey::new();
    // A token bound to `key`, proven with the thief's own key.
    let token = bound_token(&key);
    let p = proof(&thief, "GET", "/me", &token);
    let a = get_me(&app, &token, &p).await;
    assert_eq!(a.status, 401);
    assert!(a.challenge.contains("DPoP realm") && a.challenge.contains("invalid_token"));
    // An unbound token sent with the DPoP scheme.
    let plain = plain_token();
    let p = proof(&key, "GET", "/me", &plain);
    assert_eq!(get_me(&app, &plain, &p).await.status, 401);
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused() {
    let key = ClientKey::new();
    let token = bound_token(&key);
    for mode in [DpopMode::Allowed, DpopMode::BearerOnly] {
        let app = app(policy(mode).build().unwrap());
        let a = send(&app, "GET", "/me", &format!("Bearer {token}"), &[]).await;
        assert_eq!(a.status, 401, "{mode:?}");
        assert!(
            a.challenge
                .contains(r#"Bearer realm="api", error="invalid_token""#)
        );
        // An unbound token as Bearer is fine in both modes.
        let a = send(
            &app,
            "GET",
            "/me",
            &format!("Bearer {}", plain_token()),
            &[],
        )
        .await;
        assert_eq!(a.status, 200, "{mode:?}");
    }
}

#[tokio::test]
async fn policies_decide_the_schemes_and_the_challenges() {
    let key = ClientKey::new();
    let token = bound_token(&key);
    // Required: Bearer is refused, the only challenge is DPoP.
    let required = app(policy(DpopMode::Required).build().unwrap());
    let a = send(
        &required,
        "GET",
        "/me",
        &format!("Bearer {}", plain_token()),
        &[],
    )
    .await;
    assert_eq!(a.status, 401);
    assert!(
        a.challenge.starts_with("DPoP realm=\"api\", algs=\""),
        "{}",
        a.challenge
    );
    assert!(!a.challenge.contains("Bearer"), "{}", a.challenge);
    let p = proof(&key, "GET", "/me", &token);
    assert_eq!(get_me(&required, &token, &p).await.status, 200);
    // Allowed: no token gets both challenges, without an error code.
    let allowed = app(policy(DpopMode::Allowed)
        .algorithms([Algorithm::ES256, Algorithm::EdDSA])
        .build()
        .unwrap());
    let a = send(&allowed, "GET", "/me", "", &[]).await;
    assert_eq!(
        a.challenge,
        r#"Bearer realm="api", DPoP realm="api", algs="ES256 EdDSA""#
    );
    // BearerOnly: the DPoP scheme is not read (no token).
    let bearer_only = app(policy(DpopMode::BearerOnly).build().unwrap());
    let p = proof(&key, "GET", "/me", &token);
    let a = get_me(&bearer_only, &token, &p).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.challenge, r#"Bearer realm="api""#);
}

/// A DPoP proof signed with RS256 by the test RSA key, and a token bound
/// to that key.
fn rs256_proof_and_token() -> (String, String) {
    let (n, e) = rsa_n_e(&pem_der(&read("rsa.pkcs1.pub")));
    let jwk = json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)});
    let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(&e), b64(&n));
    let jkt =
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref());
    let mut c = claims();
    c["cnf"] = json!({"jkt": jkt});
    let token = token(Algorithm::ES256, &c);
    let header = json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk});
    let payload = json!({
        "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::SeqCst)),
        "htm": "GET",
        "htu": format!("{BASE}/me"),
        "iat": now(),
        "ath": ath(&token),
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let sig = sign_bytes(Algorithm::RS256, input.as_bytes(), false);
    (format!("{input}.{}", b64(sig)), token)
}

#[tokio::test]
async fn fapi2_refuses_an_rs256_dpop_proof() {
    fn fapi2_app(policy: DpopPolicy, fapi2_first: bool) -> Router {
        let verifier = Verifier::builder()
            .key(verify_key(Algorithm::ES256))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap();
        async fn me(claims: Claims) -> String {
            claims.payload()["sub"].as_str().unwrap_or("").to_owned()
        }
        let layer = match fapi2_first {
            true => JwtAuthLayer::new(verifier).fapi2().dpop(policy),
            false => JwtAuthLayer::new(verifier).dpop(policy).fapi2(),
        };
        Router::new().route("/me", get(me)).route_layer(layer)
    }
    // The default policy allows RS256 proofs: without the preset, one passes.
    let plain = app(policy(DpopMode::Allowed).build().unwrap());
    let (p, token) = rs256_proof_and_token();
    assert_eq!(get_me(&plain, &token, &p).await.status, 200);
    for fapi2_first in [true, false] {
        let app = fapi2_app(policy(DpopMode::Allowed).build().unwrap(), fapi2_first);
        // §5.4: PS256, ES256 and EdDSA only, for DPoP proofs too.
        let (p, token) = rs256_proof_and_token();
        let a = get_me(&app, &token, &p).await;
        refused_proof(&a, "RS256 proof under fapi2");
        // The challenge advertises only the profile's algorithms.
        let algs = a
            .challenge
            .split("algs=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no algs: {}", a.challenge));
        let mut algs: Vec<&str> = algs.split(' ').collect();
        algs.sort_unstable();
        assert_eq!(algs, ["ES256", "EdDSA", "PS256"], "{}", a.challenge);
        // An ES256 proof still passes.
        let key = ClientKey::new();
        let token = bound_token(&key);
        let p = proof(&key, "GET", "/me", &token);
        assert_eq!(get_me(&app, &token, &p).await.status, 200, "{fapi2_first}");
    }
}

#[tokio::test]
async fn nonces_are_asked_for_and_then_accepted() {
    let app = app(policy(DpopMode::Allowed)
        .nonce([9u8; 32], Duration::from_secs(60))
        .build()
        .unwrap());
    let key = ClientKey::new();
    let token = bound_token(&key);
    let a = get_me(&app, &token, &proof(&key, "GET", "/me", &token)).await;
    assert_eq!(a.status, 401);
    assert!(
        a.challenge.contains(r#"error="use_dpop_nonce""#),
        "{}",
        a.challenge
    );
    let nonce = a.nonce.expect("a DPoP-Nonce header");
    // A wrong nonce: asked again.
    let p = proof_with(&key, &token, |_, p| p["nonce"] = json!("bm9wZQ"));
    assert!(
        get_me(&app, &token, &p)
            .await
            .challenge
            .contains("use_dpop_nonce")
    );
    // The server's nonce: accepted.
    let p = proof_with(&key, &token, |_, p| p["nonce"] = json!(nonce));
    assert_eq!(get_me(&app, &token, &p).await.status, 200);
}

#[test]
fn policies_refuse_unsafe_settings() {
    assert!(
        DpopPolicy::builder(DpopMode::Allowed).build().is_err(),
        "no base URL"
    );
    assert!(
        policy(DpopMode::Allowed)
            .algorithms([Algorithm::HS256])
            .build()
            .is_err()
    );
    assert!(policy(DpopMode::Allowed).algorithms([]).build().is_err());
    assert!(
        policy(DpopMode::Allowed)
            .nonce(b"short", Duration::from_secs(60))
            .build()
            .is_err()
    );
    assert!(
        DpopPolicy::builder(DpopMode::Allowed)
            .base_url("/relative")
            .build()
            .is_err()
    );
}

/// A verifier that always takes the slow path (as a key fetch would).
#[derive(Debug)]
struct Later(Verifier);

impl tower_jwt_auth::TokenVerifier for Later {
    fn verify_now(
        &self,
        _token: &str,
    ) -> Option<Result<tower_jwt_auth::Verified, tower_jwt_auth::AuthError>> {
        None
    }

    fn verify_later<'a>(
        &'a self,
        token: &'a str,
    ) -> tower_jwt_auth::BoxFuture<'a, Result<tower_jwt_auth::Verified, tower_jwt_auth::AuthError>>
    {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.0.verify_now(token).expect("static keys answer now")
        })
    }
}

#[tokio::test]
async fn the_binding_checks_run_after_a_verification_that_waited() {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .route_layer(
            JwtAuthLayer::new(Later(verifier)).dpop(policy(DpopMode::Allowed).build().unwrap()),
        );
    let key = ClientKey::new();
    let token = bound_token(&key);
    let p = proof(&key, "GET", "/me", &token);
    assert_eq!(get_me(&app, &token, &p).await.status, 200);
    refused_proof(&get_me(&app, &token, &p).await, "replay, slow path");
    let bad = proof_with(&key, &token, |_, p| p["htm"] = json!("POST"));
    refused_proof(&get_me(&app, &token, &bad).await, "htm, slow path");
    let a = send(&app, "GET", "/me", &format!("Bearer {token}"), &[]).await;
    assert_eq!(a.status, 401, "downgrade, slow path");
}

#[test]
fn duration_max_in_every_dpop_setting_is_an_error_or_clamped_never_a_panic() {
    assert!(
        policy(DpopMode::Allowed)
            .window(Duration::MAX)
            .build()
            .is_err()
    );
    assert!(
        policy(DpopMode::Allowed)
            .window(Duration::from_secs(3600))
            .build()
            .is_ok()
    );
    assert!(
        policy(DpopMode::Allowed)
            .nonce([1u8; 32], Duration::MAX)
            .build()
            .is_ok()
    );
    let store = tower_jwt_auth::dpop::MemoryReplayStore::new(10, Duration::MAX);
    assert!(
        policy(DpopMode::Allowed)
            .replay_store(store)
            .build()
            .is_ok()
    );
    let _ = tower_jwt_auth::RequireStepUp::recent(Duration::MAX).max_age(Duration::MAX);
}

/// Serves `app` on 127.0.0.1, port 0.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One `GET /me` over TCP with `Authorization: DPoP <token>` and `proof`:
/// the status and the `Retry-After` header.
async fn get_over_tcp(
    addr: std::net::SocketAddr,
    token: &str,
    proof: &str,
) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /me HTTP/1.1\r\nHost: {addr}\r\nAuthorization: DPoP {token}\r\nDPoP: {proof}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut res = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut res))
        .await
        .unwrap()
        .unwrap();
    let res = String::from_utf8_lossy(&res);
    let status = res
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let retry = res
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("retry-after")
                .then(|| value.trim().to_owned())
        });
    (status, retry)
}

/// A real server whose replay store is filled to twice its capacity inside
/// the window: each proof is answered 200 once, or refused 503 with
/// `Retry-After`; replaying any proof that got its 200 (the captured proof
/// and bound token) gets a refusal, never a second 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_replay_store_never_lets_a_captured_proof_replay() {
    const CAPACITY: u64 = 100;
    let store = tower_jwt_auth::dpop::MemoryReplayStore::new(CAPACITY, Duration::from_secs(601));
    let addr = serve(app(policy(DpopMode::Required)
        .replay_store(store)
        .build()
        .unwrap()))
    .await;
    let mut accepted = Vec::new();
    let mut unavailable = 0;
    // Twenty key holders, ten proofs each: twice the capacity.
    for _ in 0..20 {
        let key = ClientKey::new();
        let token = bound_token(&key);
        for _ in 0..10 {
            let p = proof(&key, "GET", "/me", &token);
            match get_over_tcp(addr, &token, &p).await {
                (200, _) => accepted.push((token.clone(), p)),
                (503, retry) => {
                    assert!(retry.is_some(), "a 503 without Retry-After");
                    unavailable += 1;
                }
                other => panic!("a fresh valid proof answered {other:?}"),
            }
        }
    }
    assert_eq!(accepted.len() as u64, CAPACITY);
    assert_eq!(unavailable, 200 - CAPACITY);
    for (token, p) in &accepted {
        let (status, _) = get_over_tcp(addr, token, p).await;
        assert_eq!(status, 401, "a replayed proof answered {status}");
    }
}

use crate::support::logs;

/// One key holder sending twice its share of the replay store: its extra
/// proofs are refused (503, logged as a warning) while another holder's
/// proof is still accepted, and none of its accepted proofs replays.
#[tokio::test]
async fn one_dpop_key_holder_cannot_fill_the_replay_store_for_everyone() {
    let (logs, _guard) = logs::Logs::capture(tracing::Level::WARN);
    // 100 proofs in all, 10 per key holder.
    let store = tower_jwt_auth::dpop::MemoryReplayStore::new(100, Duration::from_secs(601));
    let app = app(policy(DpopMode::Required)
        .replay_store(store)
        .build()
        .unwrap());
    let mallory = ClientKey::new();
    let token = bound_token(&mallory);
    let mut accepted = Vec::new();
    for _ in 0..20 {
        let p = proof(&mallory, "GET", "/me", &token);
        match get_me(&app, &token, &p).await.status.as_u16() {
            200 => accepted.push(p),
            503 => {}
            other => panic!("a fresh valid proof answered {other}"),
        }
    }
    assert_eq!(accepted.len(), 10);
    assert!(
        logs.text().contains("DPoP replay store cannot answer"),
        "{}",
        logs.text()
    );
    let alice = ClientKey::new();
    let alice_token = bound_token(&alice);
    let p = proof(&alice, "GET", "/me", &alice_token);
    assert_eq!(get_me(&app, &alice_token, &p).await.status, 200);
    for p in &accepted {
        assert_eq!(get_me(&app, &token, p).await.status, 401);
    }
}
