//! Published JWT advisories of 2024-2026, each replayed against this crate:
//! one named regression test (or a small group) per advisory, its doc
//! comment citing the advisory. A test that passes is the evidence that
//! the crate resists the attack; HTTP tests use real servers on 127.0.0.1.
//!
//! The binary's global allocator counts the allocations of the current
//! thread while a test asks it to (see [`counted`]), for the size limits.

// The helpers of the `it` test binary; this file is its own binary because
// of its counting `#[global_allocator]` and its process-wide panic hook.
#[path = "it/support/mod.rs"]
mod support;
use support as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair};
use common::*;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::{Algorithm, AuthError, Claims, JsonClaims, JwtAuthLayer, Key, Verifier};
use tower_layer::Layer;

// ---------------------------------------------------------------------------
// Counting allocator (per thread, only while `counted` runs).
// ---------------------------------------------------------------------------

struct Counting;

thread_local! {
    /// `Some((allocations, bytes))` while the current thread is counted.
    static COUNTS: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

fn note(bytes: usize) {
    let _ = COUNTS.try_with(|c| {
        if let Some((n, b)) = c.get() {
            c.set(Some((n + 1, b + bytes)));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches
// only a const-initialized thread-local `Cell` (no allocation, no drop).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` on this thread, counting its allocations: (result, count, bytes).
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    COUNTS.with(|c| c.set(Some((0, 0))));
    let out = f();
    let (n, bytes) = COUNTS.with(|c| c.take()).unwrap_or_default();
    (out, n, bytes)
}

// ---------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------

/// RS256 with our RSA key (kid `k1`), issuer and audience from `common`.
fn verifier() -> Verifier {
    Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

/// A service behind `layer` answering the verified `sub`.
fn service(
    layer: &JwtAuthLayer,
) -> impl tower::Service<
    Request<String>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    layer.layer(service_fn(|req: Request<String>| async move {
        let sub = req
            .extensions()
            .get::<Claims>()
            .and_then(|c| c.sub().map(str::to_owned))
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(sub))
    }))
}

fn request(authorization: &str) -> Request<String> {
    Request::builder()
        .uri("/")
        .header(AUTHORIZATION, authorization)
        .body(String::new())
        .unwrap()
}

/// The status and body of one request with this bearer token.
async fn call(layer: &JwtAuthLayer, token: &str) -> (StatusCode, String) {
    let res = service(layer)
        .oneshot(request(&format!("Bearer {token}")))
        .await
        .unwrap();
    (res.status(), res.into_body())
}

/// A token with this exact header and payload text, signed by `alg` with
/// our key (HMAC: `common::SECRET`).
fn signed(alg: Algorithm, header: &str, payload: &str) -> String {
    token_raw(alg, header, payload)
}

/// An RS256 token (kid `k1`) with this exact payload text.
fn rs256(payload: &str) -> String {
    signed(
        Algorithm::RS256,
        r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
        payload,
    )
}

/// The JWK of an RSA test key (`rsa` or `rsa2`), with `alg` unless `None`.
fn rsa_jwk(stem: &str, kid: &str, alg: Option<&str>) -> Value {
    let pkcs1 = if stem == "rsa" {
        pem_der(&read("rsa.pkcs1.pub"))
    } else {
        // The SubjectPublicKeyInfo wraps the PKCS#1 key in a BIT STRING:
        // the RSAPublicKey SEQUENCE is the last `30 82 ..` of the DER.
        let spki = pem_der(&read(&format!("{stem}.pub")));
        let at = (1..spki.len())
            .rev()
            .find(|&i| {
                spki[i] == 0x30 && spki[i + 1] == 0x82 && {
                    let len = usize::from(spki[i + 2]) << 8 | usize::from(spki[i + 3]);
                    i + 4 + len == spki.len()
                }
            })
            .unwrap();
        spki[at..].to_vec()
    };
    let (n, e) = rsa_n_e(&pkcs1);
    let mut jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(n), "e": b64(e)});
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    jwk
}

/// A JWKS server on 127.0.0.1 (axum) serving a settable document at
/// `/jwks`, counting its requests.
#[derive(Clone)]
struct JwksServer {
    url: String,
    doc: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(doc: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = JwksServer {
            url: format!("http://{}", listener.local_addr().unwrap()),
            doc: Arc::new(Mutex::new(doc)),
            hits: Arc::default(),
        };
        let state = server.clone();
        let app = axum::Router::new().fallback(move || {
            let state = state.clone();
            async move {
                state.hits.fetch_add(1, Ordering::SeqCst);
                let doc = state.doc.lock().unwrap().clone();
                Response::builder()
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(doc))
                    .unwrap()
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A JWKS cache over `url` for these algorithms.
fn jwks_cache(url: &str, algs: &[Algorithm]) -> JwksCache {
    JwksCache::builder(url)
        .algorithms(algs.iter().copied())
        .min_refetch_interval(Duration::ZERO)
        .build()
        .unwrap()
}

/// A layer over a remote key set, for tokens of `issuer`.
fn remote_layer(cache: JwksCache, issuer: &str, narrowed: Option<&[Algorithm]>) -> JwtAuthLayer {
    let mut b = Verifier::builder()
        .jwks_cache(cache)
        .issuer(issuer)
        .audience(AUDIENCE);
    if let Some(algs) = narrowed {
        b = b.algorithms(algs.iter().copied());
    }
    JwtAuthLayer::new(b.build().unwrap())
}

/// Valid claims for `issuer`.
fn claims_for(issuer: &str) -> Value {
    let mut c = claims();
    c["iss"] = json!(issuer);
    c
}

/// An RS-family token over `claims`, signed with the test key `stem`.
fn rsa_token(alg: Algorithm, kid: &str, other_key: bool, claims: &Value) -> String {
    let header = json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid});
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = sign_bytes(alg, input.as_bytes(), other_key);
    format!("{input}.{}", b64(sig))
}

// ---------------------------------------------------------------------------
// jsonwebtoken CVE-2026-25537: registered claims of the wrong JSON type.
// ---------------------------------------------------------------------------

/// jsonwebtoken CVE-2026-25537 (type confusion of registered claims): every
/// registered claim as a string, `null`, an array, an object, a boolean and
/// an out-of-range number (`1e400`, `-1e400`), in a correctly signed token,
/// read by both payload readers (plain JSON, and with an escape that sends
/// it to `serde_json`): refused, except where the type is the claim's own
/// (`iss`/`sub`/`jti`/`aud` strings, `aud` as an array of strings), and
/// then read back exactly. Never a panic, never `exp`/`nbf`/`iat` accepted
/// with a wrong type.
#[tokio::test]
async fn registered_claims_of_a_wrong_json_type_are_refused_never_ignored() {
    // Also with `exp` optional: a wrong-typed `exp` read as absent would
    // then pass.
    let lenient = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .allow_missing_exp()
        .build()
        .unwrap();
    let (n, past, future) = (now(), now() - 7200, now() + 3600);
    let mut accepted = Vec::new();
    let mut wrong = Vec::new();
    let mut cases = 0;
    for (policy, v) in [("default", verifier()), ("exp optional", lenient)] {
        let layer = JwtAuthLayer::new(v.clone());
        for claim in ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"] {
            let string = match claim {
                "iss" => json!(ISSUER).to_string(),
                "sub" => r#""user-1""#.to_owned(),
                "aud" => json!(AUDIENCE).to_string(),
                "jti" => r#""id-1""#.to_owned(),
                // A time as a string: a reader skipping it would let an expired
                // token through (`exp`), or a not-yet-valid one (`nbf`).
                "exp" => format!(r#""{past}""#),
                _ => format!(r#""{future}""#),
            };
            let array = match claim {
                "iss" => json!([ISSUER]).to_string(),
                "aud" => json!([AUDIENCE]).to_string(),
                "exp" => format!("[{future}]"),
                "nbf" | "iat" => format!("[{n}]"),
                _ => r#"["x"]"#.to_owned(),
            };
            let kinds = [
                ("string", string),
                ("null", "null".to_owned()),
                ("array", array),
                ("object", format!(r#"{{"value":{future}}}"#)),
                ("bool", "true".to_owned()),
                ("1e400", "1e400".to_owned()),
                ("-1e400", "-1e400".to_owned()),
            ];
            let legit = |kind: &str| {
                matches!(
                    (claim, kind),
                    ("iss" | "sub" | "aud" | "jti", "string") | ("aud", "array")
                )
            };
            for (kind, raw) in &kinds {
                let mut base = claims();
                base.as_object_mut().unwrap().remove(claim);
                let rest = base.to_string();
                for (reader, extra) in [("plain", ""), ("serde_json", r#""note":"caf\u00e9","#)] {
                    cases += 1;
                    let payload = format!(r#"{{{extra}"{claim}":{raw},{}"#, &rest[1..]);
                    let token = rs256(&payload);
                    let name = format!("{policy}: {claim} as {kind} ({reader}): {payload}");
                    let direct = v.verify::<JsonClaims>(&token);
                    let (status, _) = call(&layer, &token).await;
                    match (&direct, legit(kind)) {
                        (Ok(c), true) => {
                            let back_ok = match claim {
                                "iss" => c.iss() == Some(ISSUER),
                                "sub" => c.sub() == Some("user-1"),
                                "aud" => c.aud() == [AUDIENCE.to_owned()],
                                _ => c.jti() == Some("id-1"),
                            };
                            if !back_ok || status != StatusCode::OK {
                                wrong.push(format!("{name}: read back wrong or {status}"));
                            }
                            accepted.push(name);
                        }
                        (Err(e), false) => {
                            if status != StatusCode::UNAUTHORIZED
                                // A type error: never read as absent
                                // (`MissingClaim`) nor as another value.
                                || !matches!(
                                    e,
                                    AuthError::InvalidClaim(_) | AuthError::Malformed(_)
                                )
                            {
                                wrong.push(format!("{name}: {e:?} / {status}"));
                            }
                        }
                        (Ok(_), false) => wrong.push(format!("{name}: ACCEPTED ({status})")),
                        (Err(e), true) => wrong.push(format!("{name}: refused: {e:?}")),
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "type confusion:\n{}", wrong.join("\n"));
    assert_eq!(accepted.len(), 20, "{accepted:#?}");
    println!(
        "CVE-2026-25537: {cases} cases, {} refused, {} accepted (legit types)",
        cases - accepted.len(),
        accepted.len()
    );
    // `aud` arrays: every member must be a string, and one must be ours.
    let v = verifier();
    for aud in [
        json!([]),
        json!(["other"]),
        json!([AUDIENCE, 1]),
        json!([[AUDIENCE]]),
        json!([null]),
    ] {
        let mut c = claims();
        c["aud"] = aud.clone();
        assert!(
            v.verify::<JsonClaims>(&token(Algorithm::RS256, &c))
                .is_err(),
            "aud {aud}"
        );
    }
}

// ---------------------------------------------------------------------------
// PyJWT CVE-2024-53861: partial issuer match.
// ---------------------------------------------------------------------------

/// The `iss` values of CVE-2024-53861 that a partial (`in`, prefix,
/// suffix) comparison would take for `https://issuer.test`.
fn near_issuers() -> Vec<Value> {
    vec![
        json!("https://issuer.tes"),
        json!("https://issuer"),
        json!("issuer.test"),
        json!("://issuer.test"),
        json!("issuer"),
        json!("s"),
        json!(""),
        json!("https://issuer.test/"),
        json!("https://issuer.test//"),
        json!("https://issuer.test.evil.example"),
        json!("https://issuer.test@evil.example"),
        json!("https://evil.example/https://issuer.test"),
        json!(" https://issuer.test"),
        json!("https://issuer.test "),
        json!("https://issuer.test\u{0}"),
        json!("HTTPS://ISSUER.TEST"),
        json!([ISSUER]),
        json!([ISSUER, "https://evil.example"]),
        json!({"iss": ISSUER}),
    ]
}

/// PyJWT CVE-2024-53861 (partial comparison of `iss`): an `iss` that is a
/// prefix, a suffix or a substring of the expected issuer, or the issuer
/// with a trailing `/`, other case or whitespace, or an array containing
/// it, is refused; by a single-issuer verifier, by one with several
/// issuers, and by a multi-issuer (routing) verifier.
#[tokio::test]
async fn an_issuer_matching_only_in_part_is_refused() {
    let two = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .issuer(ISSUER)
        .issuer("https://other.test")
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let routing = Verifier::any_of([
        verifier(),
        Verifier::builder()
            .key(verify_key(Algorithm::ES256).with_kid("ec"))
            .issuer("https://issuer.test/tenant")
            .audience(AUDIENCE)
            .build()
            .unwrap(),
    ])
    .unwrap();
    let verifiers = [
        ("one issuer", verifier()),
        ("two issuers", two),
        ("routing", routing),
    ];
    for (what, v) in &verifiers {
        let layer = JwtAuthLayer::new(v.clone());
        assert_eq!(
            call(&layer, &token(Algorithm::RS256, &claims())).await.0,
            StatusCode::OK,
            "{what}: control"
        );
        for iss in near_issuers() {
            let mut c = claims();
            c["iss"] = iss.clone();
            let t = token(Algorithm::RS256, &c);
            let err = v
                .verify::<JsonClaims>(&t)
                .err()
                .unwrap_or_else(|| panic!("{what}: iss {iss} accepted"));
            assert!(
                matches!(err, AuthError::InvalidIssuer | AuthError::InvalidClaim(_)),
                "{what}: iss {iss}: {err:?}"
            );
            assert_eq!(
                call(&layer, &t).await.0,
                StatusCode::UNAUTHORIZED,
                "{what}: iss {iss}"
            );
        }
    }
    // The configured issuer with a trailing slash does not take tokens
    // without it.
    let slash = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .issuer(format!("{ISSUER}/"))
        .audience(AUDIENCE)
        .build()
        .unwrap();
    assert!(matches!(
        slash.verify::<JsonClaims>(&token(Algorithm::RS256, &claims())),
        Err(AuthError::InvalidIssuer)
    ));
}

// ---------------------------------------------------------------------------
// PyJWT CVE-2026-48526 / fast-jwt CVE-2026-34950: algorithm confusion.
// ---------------------------------------------------------------------------

/// The public key material an attacker can know, each a candidate HMAC
/// secret: the PEM text (as is, with leading whitespace, without the final
/// newline), the DER (SPKI and PKCS#1), the JWK JSON text, the JWKS text
/// and the raw modulus.
fn public_key_texts(jwk: &Value, jwks: &str) -> Vec<(&'static str, Vec<u8>)> {
    let pem = read("rsa.pub");
    let text = String::from_utf8(pem.clone()).unwrap();
    let (n, _) = rsa_n_e(&pem_der(&read("rsa.pkcs1.pub")));
    vec![
        ("PEM", pem.clone()),
        (
            "PEM, leading whitespace",
            format!("\n  \t{text}").into_bytes(),
        ),
        ("PEM, trimmed", text.trim().as_bytes().to_vec()),
        ("PKCS#1 PEM", read("rsa.pkcs1.pub")),
        ("SPKI DER", pem_der(&pem)),
        ("PKCS#1 DER", pem_der(&read("rsa.pkcs1.pub"))),
        ("JWK JSON", jwk.to_string().into_bytes()),
        ("JWKS JSON", jwks.as_bytes().to_vec()),
        ("modulus", n),
    ]
}

/// PyJWT CVE-2026-48526 / fast-jwt CVE-2026-34950 (algorithm confusion),
/// part 1: the crate does not let a verifier allow HS256 next to an RSA
/// public key unless an HMAC key of its own is configured: a PEM key
/// (also with leading whitespace), a DER key, a static JWKS or a remote
/// `JwksCache`, with RS256 and HS256 allowed, is refused at build time,
/// and no HMAC key can be made from public key material.
#[test]
fn a_verifier_allowing_hs256_with_only_public_keys_cannot_be_built() {
    let pem = read("rsa.pub");
    let spaced = [b"\n  \t".as_slice(), &pem].concat();
    let both = [Algorithm::RS256, Algorithm::HS256];
    for (what, key) in [
        ("PEM", Key::from_pem(Algorithm::RS256, &pem)),
        (
            "PEM with leading whitespace",
            Key::from_pem(Algorithm::RS256, &spaced),
        ),
        (
            "SPKI DER",
            Key::from_spki_der(Algorithm::RS256, &pem_der(&pem)),
        ),
        (
            "JWK",
            Key::from_jwk(&rsa_jwk("rsa", "k1", Some("RS256")).to_string()),
        ),
    ] {
        let Ok(key) = key else {
            println!("{what}: not read as a key at all");
            continue;
        };
        let built = Verifier::builder()
            .key(key)
            .algorithms(both)
            .audience(AUDIENCE)
            .build();
        assert!(
            built.is_err(),
            "{what}: RS256 + HS256 with a public key only"
        );
    }
    let jwks = json!({"keys": [rsa_jwk("rsa", "k1", None)]}).to_string();
    assert!(
        Verifier::builder()
            .jwks(&jwks)
            .algorithms(both)
            .audience(AUDIENCE)
            .build()
            .is_err(),
        "static JWKS with HS256 allowed"
    );
    assert!(
        JwksCache::builder("http://127.0.0.1:9/jwks")
            .algorithms(both)
            .build()
            .is_err(),
        "remote JWKS with HS256 allowed"
    );
    // Public key material never makes an HMAC key.
    assert!(Key::from_pem(Algorithm::HS256, &pem).is_err());
    assert!(Key::from_pem(Algorithm::HS256, &spaced).is_err());
    assert!(Key::from_spki_der(Algorithm::HS256, &pem_der(&pem)).is_err());
    let mut hs = rsa_jwk("rsa", "k1", None);
    assert!(Key::from_jwk_for(Algorithm::HS256, &hs.to_string()).is_err());
    hs["alg"] = json!("HS256");
    assert!(Key::from_jwk(&hs.to_string()).is_err());
}

/// PyJWT CVE-2026-48526 / fast-jwt CVE-2026-34950 (algorithm confusion),
/// part 2: a verifier that does allow RS256 and HS256 (an RSA public key
/// from PEM, also with leading whitespace, and an HMAC key of its own)
/// refuses HS256 tokens MAC'd with the PEM text, the DER bytes or the JWK
/// JSON text of the RSA key, whatever `kid` they name.
#[tokio::test]
async fn hs256_macd_with_the_public_key_text_is_refused_with_a_pem_key() {
    let pem = read("rsa.pub");
    let spaced = [b"\n  \t".as_slice(), &pem].concat();
    let jwk = rsa_jwk("rsa", "k1", Some("RS256"));
    let jwks = json!({"keys": [&jwk]}).to_string();
    for (what, pem) in [("PEM", pem), ("PEM with leading whitespace", spaced)] {
        let Ok(rsa) = Key::from_pem(Algorithm::RS256, &pem) else {
            println!("{what}: refused as a key");
            continue;
        };
        let v = Verifier::builder()
            .key(rsa.with_kid("k1"))
            .key(Key::hmac(Algorithm::HS256, SECRET).unwrap().with_kid("h"))
            .algorithms([Algorithm::RS256, Algorithm::HS256])
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap();
        let layer = JwtAuthLayer::new(v);
        // Controls: both legitimate keys verify.
        assert_eq!(
            call(&layer, &token(Algorithm::RS256, &claims())).await.0,
            StatusCode::OK
        );
        let good_hs = hs256_with(&json!({"alg": "HS256", "kid": "h"}), &claims(), SECRET);
        assert_eq!(call(&layer, &good_hs).await.0, StatusCode::OK);
        let mut n = 0;
        for (secret_name, secret) in public_key_texts(&jwk, &jwks) {
            for header in [
                json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
                json!({"alg": "HS256", "typ": "JWT", "kid": "h"}),
                json!({"alg": "HS256", "typ": "JWT"}),
            ] {
                n += 1;
                let t = hs256_with(&header, &claims(), &secret);
                assert_eq!(
                    call(&layer, &t).await.0,
                    StatusCode::UNAUTHORIZED,
                    "{what}: HS256 keyed with the {secret_name}, header {header}"
                );
            }
        }
        println!("{what}: {n} confused HS256 tokens refused");
    }
}

/// PyJWT CVE-2026-48526 / fast-jwt CVE-2026-34950 (algorithm confusion),
/// part 3: with keys from a JWKS served over HTTP, HS256 tokens MAC'd with
/// the JWKS text, the JWK text, the PEM or the DER of its RSA key are
/// refused; so is an HS256 token MAC'd with the `k` of a symmetric (`oct`)
/// member the key set publishes by mistake (never taken from a JWKS).
#[tokio::test]
async fn hs256_macd_with_the_public_key_text_is_refused_with_a_remote_jwks() {
    let jwk = rsa_jwk("rsa", "k1", Some("RS256"));
    let oct_secret = b"a symmetric key a key set must never publish, 32+ bytes";
    let oct = json!({"kty": "oct", "kid": "sym", "alg": "HS256", "k": b64(oct_secret)});
    let jwks = json!({"keys": [&jwk, &oct]}).to_string();
    let server = JwksServer::start(jwks.clone()).await;
    let layer = remote_layer(
        jwks_cache(&server.jwks_url(), &[Algorithm::RS256]),
        ISSUER,
        None,
    );
    assert_eq!(
        call(&layer, &token(Algorithm::RS256, &claims())).await.0,
        StatusCode::OK
    );
    let mut secrets = public_key_texts(&jwk, &jwks);
    secrets.push(("oct member's k", oct_secret.to_vec()));
    for (secret_name, secret) in secrets {
        for kid in ["k1", "sym"] {
            let t = hs256_with(&json!({"alg": "HS256", "kid": kid}), &claims(), &secret);
            assert_eq!(
                call(&layer, &t).await.0,
                StatusCode::UNAUTHORIZED,
                "HS256 keyed with the {secret_name}, kid {kid}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Hono CVE-2026-22817 / CVE-2026-22818: a JWK without `alg`.
// ---------------------------------------------------------------------------

/// Hono CVE-2026-22817 / CVE-2026-22818 (a JWK without `alg` takes the
/// token's `alg`): with an RSA JWK without `alg` in the JWKS (over HTTP)
/// and a verifier allowing RS256 only, tokens naming that key with `HS256`
/// (MAC'd with the key's texts), `none` (no signature, or an RS256 one),
/// or `PS256` (validly signed by the key itself) are refused; also when
/// the cache allows PS256 and the verifier narrows to RS256, and with the
/// same JWKS given statically.
#[tokio::test]
async fn a_jwk_without_alg_does_not_take_the_tokens_alg() {
    let jwk = rsa_jwk("rsa", "k1", None);
    let jwks = json!({"keys": [&jwk]}).to_string();
    let server = JwksServer::start(jwks.clone()).await;
    let payload = claims().to_string();
    let rs = token(Algorithm::RS256, &claims());
    let rs_sig = rs.rsplit('.').next().unwrap().to_owned();
    let mut attacks = Vec::new();
    for (name, secret) in public_key_texts(&jwk, &jwks) {
        attacks.push((
            format!("HS256 keyed with the {name}"),
            hs256_with(&json!({"alg": "HS256", "kid": "k1"}), &claims(), &secret),
        ));
    }
    for alg in ["none", "None"] {
        let h = b64(json!({"alg": alg, "kid": "k1"}).to_string());
        attacks.push((
            format!("{alg}, no signature"),
            format!("{h}.{}.", b64(&payload)),
        ));
        attacks.push((
            format!("{alg}, an RS256 signature"),
            format!("{h}.{}.{rs_sig}", b64(&payload)),
        ));
    }
    for alg in [Algorithm::PS256, Algorithm::RS384, Algorithm::RS512] {
        attacks.push((
            format!("{alg} signed by the key"),
            rsa_token(alg, "k1", false, &claims()),
        ));
    }
    // Without `kid`: the one key of the set must not be taken for them either.
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "PS256"}).to_string()),
        b64(&payload)
    );
    let ps = sign_bytes(Algorithm::PS256, input.as_bytes(), false);
    attacks.push(("PS256 without kid".into(), format!("{input}.{}", b64(ps))));
    let pem = read("rsa.pub");
    attacks.push((
        "HS256 without kid, keyed with the PEM".into(),
        hs256_with(&json!({"alg": "HS256"}), &claims(), &pem),
    ));
    let layers = [
        (
            "cache RS256",
            remote_layer(
                jwks_cache(&server.jwks_url(), &[Algorithm::RS256]),
                ISSUER,
                None,
            ),
        ),
        (
            "cache RS256+PS256, verifier RS256",
            remote_layer(
                jwks_cache(&server.jwks_url(), &[Algorithm::RS256, Algorithm::PS256]),
                ISSUER,
                Some(&[Algorithm::RS256]),
            ),
        ),
        (
            "static JWKS",
            JwtAuthLayer::new(
                Verifier::builder()
                    .jwks(&jwks)
                    .issuer(ISSUER)
                    .audience(AUDIENCE)
                    .build()
                    .unwrap(),
            ),
        ),
    ];
    for (what, layer) in &layers {
        assert_eq!(call(layer, &rs).await.0, StatusCode::OK, "{what}: control");
        for (name, t) in &attacks {
            assert_eq!(
                call(layer, t).await.0,
                StatusCode::UNAUTHORIZED,
                "{what}: {name}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// `crit` (RFC 7515 §4.1.11).
// ---------------------------------------------------------------------------

/// RFC 7515 §4.1.11 `crit` (the class of jose4j / go-jose / Hono `crit`
/// advisories): a validly signed token whose header has `crit` empty,
/// naming `exp` (also present in the header), naming an absent member, or
/// `b64: false` is refused: the crate understands no extension.
#[tokio::test]
async fn crit_headers_are_refused() {
    let layer = JwtAuthLayer::new(verifier());
    let payload = claims().to_string();
    for header in [
        json!({"alg": "RS256", "kid": "k1", "crit": []}),
        json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}),
        json!({"alg": "RS256", "kid": "k1", "crit": ["exp"], "exp": now() + 60}),
        json!({"alg": "RS256", "kid": "k1", "crit": ["x-absent"]}),
        json!({"alg": "RS256", "kid": "k1", "crit": "exp"}),
        json!({"alg": "RS256", "kid": "k1", "crit": null}),
        json!({"alg": "RS256", "kid": "k1", "crit": ["b64"], "b64": false}),
    ] {
        let t = signed(Algorithm::RS256, &header.to_string(), &payload);
        assert!(
            matches!(
                verifier().verify::<JsonClaims>(&t),
                Err(AuthError::UnsupportedCrit)
            ),
            "{header}"
        );
        assert_eq!(
            call(&layer, &t).await.0,
            StatusCode::UNAUTHORIZED,
            "{header}"
        );
    }
}

// ---------------------------------------------------------------------------
// golang-jwt CVE-2025-30204 / Authlib CVE-2025-61920: oversized tokens.
// ---------------------------------------------------------------------------

/// One request through `layer` on a current-thread runtime, its
/// allocations counted: (status, allocations, bytes).
fn counted_call(layer: &JwtAuthLayer, authorization: &str) -> (StatusCode, usize, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let svc = service(layer);
    let req = request(authorization);
    let (res, n, bytes) = counted(|| rt.block_on(svc.oneshot(req)).unwrap());
    (res.status(), n, bytes)
}

/// golang-jwt CVE-2025-30204 (a token of many `.` split into as many
/// parts) and Authlib CVE-2025-61920 (unbounded segments decoded): the
/// layer refuses `Bearer ` + 16 KiB of `.`, and 1 MiB headers of `.` and
/// of base64 text, allocating far less than the input (under 64 KiB, a
/// few dozen allocations); `Verifier::verify` alone splits 1 MiB of `.`
/// without allocating.
#[test]
fn oversized_and_dot_flood_tokens_are_refused_with_bounded_allocations() {
    let layer = JwtAuthLayer::new(verifier());
    // Warm up lazily initialized statics (tracing, the clock) first.
    let _ = counted_call(
        &layer,
        &format!("Bearer {}", token(Algorithm::RS256, &claims())),
    );
    let mib = 1 << 20;
    let cases = [
        ("16 KiB of '.'", ".".repeat(16 * 1024)),
        ("16 KiB - 2 of '.'", ".".repeat(16 * 1024 - 2)),
        ("1 MiB of '.'", ".".repeat(mib)),
        ("1 MiB of base64", "A".repeat(mib)),
        (
            "1 MiB JWS",
            format!("{}.{}.{}", "A".repeat(mib / 2), "A".repeat(mib / 2), "AAAA"),
        ),
    ];
    for (what, t) in &cases {
        let (status, n, bytes) = counted_call(&layer, &format!("Bearer {t}"));
        println!("{what}: {status}, {n} allocations, {bytes} bytes");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            bytes < 64 * 1024 && n < 100,
            "{what}: {n} allocations, {bytes} bytes"
        );
    }
    // The verifier alone (no length limit in front of it).
    let v = verifier();
    for what in [16 * 1024, mib] {
        let dots = ".".repeat(what);
        let (r, n, bytes) = counted(|| v.verify::<JsonClaims>(&dots).map(drop));
        assert!(matches!(r, Err(AuthError::Malformed(_))), "{what}: {r:?}");
        assert!(bytes < 1024, "{what} dots: {n} allocations, {bytes} bytes");
    }
    // Without the layer's limit, a 1 MiB header segment is decoded once:
    // at most 3/4 of its length, never a multiple of the input.
    let header = format!("e{}", "A".repeat(mib - 1));
    let t = format!("{header}.e30.AAAA");
    let (r, n, bytes) = counted(|| v.verify::<JsonClaims>(&t).map(drop));
    println!("verifier alone, 1 MiB header: {r:?}, {n} allocations, {bytes} bytes");
    assert!(matches!(r, Err(AuthError::Malformed(_))), "{r:?}");
    assert!(bytes <= t.len(), "{n} allocations, {bytes} bytes");
}

// ---------------------------------------------------------------------------
// Nimbus CVE-2025-53864: deeply nested JSON.
// ---------------------------------------------------------------------------

/// Nimbus JOSE+JWT CVE-2025-53864 (stack overflow on deeply nested JSON):
/// a validly signed token with a claim nested 100,000 deep (arrays, and
/// objects), or such a header member, verified on a thread with a 256 KiB
/// stack, directly and through the layer (token limit raised to 1 MiB): no
/// stack overflow. Nested claims are refused (`serde_json`'s depth limit of
/// 128 in the strict read; the plain-JSON scanner hands over at 32
/// levels); a nested unknown header member is skipped without recursion
/// and the token accepted.
#[test]
fn a_claim_nested_100000_deep_is_refused_without_a_stack_overflow() {
    const DEPTH: usize = 100_000;
    let rest = claims().to_string();
    let arrays = format!(
        r#"{{"deep":{}{},{}"#,
        "[".repeat(DEPTH),
        "]".repeat(DEPTH),
        &rest[1..]
    );
    let objects = format!(
        r#"{{"deep":{}1{},{}"#,
        r#"{"a":"#.repeat(DEPTH),
        "}".repeat(DEPTH),
        &rest[1..]
    );
    let deep_header = format!(
        r#"{{"alg":"RS256","kid":"k1","x":{}{}}}"#,
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    );
    let tokens = [
        ("arrays", rs256(&arrays)),
        ("objects", rs256(&objects)),
        ("header", signed(Algorithm::RS256, &deep_header, &rest)),
    ];
    let outcomes = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let v = verifier();
            let layer = JwtAuthLayer::new(v.clone()).max_token_len(1 << 20);
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            tokens
                .iter()
                .map(|(what, t)| {
                    let direct = v.verify::<JsonClaims>(t).map(drop);
                    let typed = v.verify::<Value>(t).map(drop);
                    let status = rt
                        .block_on(service(&layer).oneshot(request(&format!("Bearer {t}"))))
                        .unwrap()
                        .status();
                    (*what, direct, typed, status)
                })
                .collect::<Vec<_>>()
        })
        .unwrap()
        .join()
        .expect("no stack overflow, no panic on a 256 KiB stack");
    for (what, direct, typed, status) in outcomes {
        println!("nested 100,000 deep ({what}): {direct:?}, {typed:?}, {status}");
        if what == "header" {
            // An unknown header member is skipped without recursion
            // (`serde_json`'s ignore path is iterative): accepted, and the
            // same answer every way.
            assert!(
                direct.is_ok() && typed.is_ok(),
                "{what}: {direct:?} {typed:?}"
            );
            assert_eq!(status, StatusCode::OK, "{what}");
        } else {
            assert!(
                matches!(direct, Err(AuthError::Malformed(_))) && typed.is_err(),
                "{what}: {direct:?} {typed:?}"
            );
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        }
    }
}

// ---------------------------------------------------------------------------
// fast-jwt GHSA-rp9m-7r4c-75qg: cache key collisions.
// ---------------------------------------------------------------------------

/// fast-jwt GHSA-rp9m-7r4c-75qg (the verified-token cache answered one
/// token with another's claims): with a `TokenCache` whose hasher gives
/// every token the same hash, different valid tokens, each served from the
/// cache, still get their own claims: entries are told apart by the whole
/// token, never by its hash.
#[tokio::test]
async fn the_token_cache_never_answers_a_token_with_another_tokens_claims() {
    let layer = JwtAuthLayer::new(verifier()).cache(TokenCache::new().same_hash_for_every_token());
    let users: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();
    let tokens: Vec<String> = users
        .iter()
        .map(|u| {
            let mut c = claims();
            c["sub"] = json!(u);
            token(Algorithm::RS256, &c)
        })
        .collect();
    for round in 0..3 {
        for (u, t) in users.iter().zip(&tokens) {
            let (status, sub) = call(&layer, t).await;
            assert_eq!(
                (status, sub.as_str()),
                (StatusCode::OK, u.as_str()),
                "round {round}"
            );
        }
    }
    let stats = layer.cache_stats().unwrap();
    assert_eq!(stats.misses, 20, "{stats:?}");
    assert_eq!(stats.hits, 40, "answered from colliding entries: {stats:?}");
    // A token differing from a cached one in its last signature character
    // (same hash, here as for every token) is verified, not served.
    let t = &tokens[0];
    let last = t.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &t[..t.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    assert_eq!(call(&layer, &flipped).await.0, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------
// get-jwks CVE-2025-59936: one `kid` at two issuers.
// ---------------------------------------------------------------------------

/// get-jwks CVE-2025-59936 (keys cached by `kid` across issuers, and key
/// sets fetched from the token's `iss`): two issuers publish the same
/// `kid` with different keys. A token with `iss` = A signed by B's key is
/// refused, before and after B's keys are cached; a token with an `iss`
/// that is not configured (also a JWKS server that counts its requests,
/// or A with a trailing `/`) causes no fetch anywhere.
#[tokio::test]
async fn one_kid_at_two_issuers_never_crosses_and_unknown_issuers_fetch_nothing() {
    let a =
        JwksServer::start(json!({"keys": [rsa_jwk("rsa", "shared", Some("RS256"))]}).to_string())
            .await;
    let b =
        JwksServer::start(json!({"keys": [rsa_jwk("rsa2", "shared", Some("RS256"))]}).to_string())
            .await;
    let stranger =
        JwksServer::start(json!({"keys": [rsa_jwk("rsa2", "shared", Some("RS256"))]}).to_string())
            .await;
    let tenant = |s: &JwksServer| {
        Verifier::builder()
            .jwks_cache(jwks_cache(&s.jwks_url(), &[Algorithm::RS256]))
            .issuer(s.url.clone())
            .audience(AUDIENCE)
            .build()
            .unwrap()
    };
    let both = || JwtAuthLayer::new(Verifier::any_of([tenant(&a), tenant(&b)]).unwrap());
    let forged = rsa_token(Algorithm::RS256, "shared", true, &claims_for(&a.url));

    // Forged first, nothing cached yet: A's keys are fetched, and fail.
    let l = both();
    assert_eq!(call(&l, &forged).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(b.hits(), 0, "B's keys are never fetched for iss = A");

    // After B's keys are cached under the same kid.
    let l = both();
    let from_b = rsa_token(Algorithm::RS256, "shared", true, &claims_for(&b.url));
    assert_eq!(call(&l, &from_b).await.0, StatusCode::OK);
    assert_eq!(call(&l, &forged).await.0, StatusCode::UNAUTHORIZED);
    let from_a = rsa_token(Algorithm::RS256, "shared", false, &claims_for(&a.url));
    assert_eq!(call(&l, &from_a).await.0, StatusCode::OK);
    assert_eq!(call(&l, &forged).await.0, StatusCode::UNAUTHORIZED);
    // Nor B's token for A's issuer the other way round.
    let forged_b = rsa_token(Algorithm::RS256, "shared", false, &claims_for(&b.url));
    assert_eq!(call(&l, &forged_b).await.0, StatusCode::UNAUTHORIZED);

    // Unknown issuers: no fetch at any server.
    let before = (a.hits(), b.hits());
    for iss in [
        json!(stranger.url),
        json!(format!("{}/", a.url)),
        json!(format!("{}/jwks", stranger.url)),
        json!("https://evil.example"),
        json!([a.url]),
    ] {
        let mut c = claims();
        c["iss"] = iss.clone();
        let t = rsa_token(Algorithm::RS256, "shared", true, &c);
        assert_eq!(call(&l, &t).await.0, StatusCode::UNAUTHORIZED, "iss {iss}");
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    let t = rsa_token(Algorithm::RS256, "shared", true, &c);
    assert_eq!(call(&l, &t).await.0, StatusCode::UNAUTHORIZED, "no iss");
    assert_eq!((a.hits(), b.hits()), before, "fetches for unknown issuers");
    assert_eq!(stranger.hits(), 0, "a key set is never fetched from `iss`");
}

// ---------------------------------------------------------------------------
// auth0 node-oauth2-jwt-bearer #244: DPoP `htu` from the Host header.
// ---------------------------------------------------------------------------

/// A client's DPoP key (P-256).
struct DpopKey(EcdsaKeyPair);

impl DpopKey {
    fn jwk(&self) -> Value {
        let p = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
    }

    fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    fn proof(&self, htu: &str, token: &str) -> String {
        static JTI: AtomicUsize = AtomicUsize::new(0);
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let ath =
            b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
        let payload = json!({
            "jti": format!("p-{}", JTI.fetch_add(1, Ordering::SeqCst)),
            "htm": "GET", "htu": htu, "iat": now(), "ath": ath,
        });
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let s = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(s.as_ref()))
    }
}

/// Sends raw HTTP/1.1 request text to `addr`; the response's status code.
async fn raw_status(addr: SocketAddr, request: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// auth0 node-oauth2-jwt-bearer #244 (the expected DPoP `htu` built from
/// the request's `Host` / `X-Forwarded-Host`): on a real axum server, a
/// proof whose `htu` names the host the client sends (`Host`,
/// `X-Forwarded-Host` with `X-Forwarded-Proto`, `Forwarded`, or an
/// absolute-form request target), rather than the configured public URL,
/// is refused; the same request with a proof for the configured URL passes.
#[tokio::test]
async fn a_dpop_proof_for_a_spoofed_host_is_refused() {
    const BASE: &str = "https://api.example.com";
    let key = DpopKey(EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap());
    let mut c = claims();
    c["cnf"] = json!({"jkt": key.jkt()});
    let token = token(Algorithm::ES256, &c);
    let v = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let policy = DpopPolicy::builder(DpopMode::Required)
        .base_url(BASE)
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|c: Claims| async move { c.sub().unwrap_or("").to_owned() }),
        )
        .route_layer(JwtAuthLayer::new(v).dpop(policy));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let send = |target: &str, extra: &str, proof: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {{host}}\r\nAuthorization: DPoP {token}\r\n\
             DPoP: {proof}\r\n{extra}Connection: close\r\n\r\n"
        )
    };
    let real = addr.to_string();
    // Control: a proof for the configured public URL.
    let ok = send("/me", "", &key.proof(&format!("{BASE}/me"), &token)).replace("{host}", &real);
    assert_eq!(raw_status(addr, &ok).await, 200);
    let spoofs = [
        ("Host", "/me", "evil.example", ""),
        (
            "X-Forwarded-Host",
            "/me",
            "evil.example",
            "X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: http\r\n",
        ),
        (
            "Forwarded",
            "/me",
            "evil.example",
            "Forwarded: host=evil.example;proto=http\r\n",
        ),
        (
            "absolute-form target",
            "http://evil.example/me",
            "evil.example",
            "",
        ),
        ("the server's own address", "/me", real.as_str(), ""),
    ];
    for (what, target, host, extra) in spoofs {
        for htu in [format!("http://{host}/me"), format!("https://{host}/me")] {
            let req = send(target, extra, &key.proof(&htu, &token)).replace("{host}", host);
            assert_eq!(raw_status(addr, &req).await, 401, "{what}: htu {htu}");
        }
        // The same spoofed request with a proof for the public URL passes:
        // the host the client names plays no part.
        let req =
            send(target, extra, &key.proof(&format!("{BASE}/me"), &token)).replace("{host}", host);
        assert_eq!(
            raw_status(addr, &req).await,
            200,
            "{what}: proof for {BASE}"
        );
    }
}

// ---------------------------------------------------------------------------
// Envoy CVE-2024-45809 / CVE-2025-64527: JWKS fetches failing mid-flight.
// ---------------------------------------------------------------------------

/// How the raw JWKS server answers.
const RESET: u8 = 0;
const TRUNCATE: u8 = 1;
const HANG: u8 = 2;
const GOOD: u8 = 3;

/// A JWKS server on raw TCP: per `mode`, it resets the connection (RST),
/// sends a `Content-Length` larger than the body then closes, never
/// answers, or serves the key set. Counts connections, and good answers.
async fn flaky_jwks(
    mode: Arc<AtomicU8>,
    doc: String,
) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let conns = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&conns);
    let good = Arc::new(AtomicUsize::new(0));
    let served = Arc::clone(&good);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let mode = mode.load(Ordering::SeqCst);
            let doc = doc.clone();
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
                match mode {
                    RESET => {
                        let _ = s.set_zero_linger();
                        drop(s);
                    }
                    TRUNCATE => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n",
                            doc.len() + 4096
                        );
                        let _ = s.write_all(head.as_bytes()).await;
                        let _ = s.write_all(&doc.as_bytes()[..doc.len() / 2]).await;
                        let _ = s.shutdown().await;
                    }
                    HANG => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    _ => {
                        let res = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{doc}",
                            doc.len()
                        );
                        if s.write_all(res.as_bytes()).await.is_ok() {
                            served.fetch_add(1, Ordering::SeqCst);
                        }
                        let _ = s.shutdown().await;
                    }
                }
            });
        }
    });
    (url, conns, good)
}

/// Panics anywhere in this process, counted by a hook that keeps the
/// default report.
fn panics() -> &'static AtomicUsize {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            COUNT.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
    &COUNT
}

/// Envoy CVE-2024-45809 / CVE-2025-64527 (JWKS fetch failures, with
/// requests cancelled mid-flight, crashing the filter or caching a broken
/// key set): a JWKS server that resets connections, sends truncated
/// answers (`Content-Length` over the body, then close) or never answers,
/// while requests are cancelled mid-flight (futures dropped by a timeout,
/// tasks aborted): no panic, every request that completes is a 503, and
/// once the server serves a good key set the next request is a 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_resets_and_truncations_with_cancelled_requests_give_503_then_recover() {
    let panics_before = panics().load(Ordering::SeqCst);
    let jwks = json!({"keys": [rsa_jwk("rsa", "k1", Some("RS256"))]}).to_string();
    let mode = Arc::new(AtomicU8::new(RESET));
    let (url, conns, served_good) = flaky_jwks(Arc::clone(&mode), jwks).await;
    let interval = Duration::from_millis(50);
    let cache = JwksCache::builder(&url)
        .algorithms([Algorithm::RS256])
        .timeout(Duration::from_millis(400))
        .min_refetch_interval(interval)
        .build()
        .unwrap();
    let layer = remote_layer(cache.clone(), ISSUER, None);
    let t = token(Algorithm::RS256, &claims());
    let mut completed = 0;
    for phase in [RESET, TRUNCATE, HANG, RESET, TRUNCATE] {
        mode.store(phase, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_millis(600);
        let mut round = 0u64;
        while Instant::now() < until {
            round += 1;
            let mut tasks = Vec::new();
            for i in 0..8u64 {
                let (layer, t) = (layer.clone(), t.clone());
                tasks.push(tokio::spawn(async move {
                    let fut = call(&layer, &t);
                    if i % 3 == 0 {
                        // Dropped mid-flight by a short timeout.
                        let wait = Duration::from_millis(1 + (i + round) % 20);
                        tokio::time::timeout(wait, fut).await.ok()
                    } else {
                        Some(fut.await)
                    }
                }));
            }
            // Abort some tasks mid-flight.
            tokio::time::sleep(Duration::from_millis(3)).await;
            tasks[1].abort();
            tasks[5].abort();
            for task in tasks {
                match task.await {
                    Ok(Some((status, _))) => {
                        completed += 1;
                        assert_eq!(
                            status,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "mode {phase}: keys unavailable"
                        );
                    }
                    Ok(None) => {}
                    Err(e) => assert!(e.is_cancelled(), "mode {phase}: {e}"),
                }
            }
        }
    }
    assert!(completed > 0);
    // The provider recovers. A request that finds no usable key set waits
    // for the fetch it starts (issue 26, finding 5): the first request
    // after the recovery passes.
    mode.store(GOOD, Ordering::SeqCst);
    tokio::time::sleep(interval * 2).await;
    let (first, _) = call(&layer, &t).await;
    assert_eq!(first, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(served_good.load(Ordering::SeqCst) > 0 && cache.status().key_count() > 0) {
        assert!(
            Instant::now() < deadline,
            "no good fetch: {:?}",
            cache.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, sub) = call(&layer, &t).await;
    assert_eq!((status, sub.as_str()), (StatusCode::OK, "user-1"));
    println!(
        "{completed} completed requests answered 503 during the outage; {} connections; \
         first request after recovery: {first}",
        conns.load(Ordering::SeqCst)
    );
    assert_eq!(panics().load(Ordering::SeqCst), panics_before, "a panic");
}
