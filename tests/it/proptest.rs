//! Property tests over the entry points that read untrusted input: token
//! verification, token extraction through the layer, JWK / JWKS parsing and
//! (with `jwks`) OIDC discovery documents. Nothing may panic; nothing not
//! signed by our key may verify.

use crate::support as common;

use std::convert::Infallible;
use std::sync::OnceLock;

use common::*;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::{Algorithm, JsonClaims, JwtAuthLayer, Key, TokenSource, Verifier};
use tower_layer::Layer;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        Verifier::builder()
            .key(verify_key(Algorithm::RS256))
            .key(verify_key(Algorithm::ES256).with_kid("ec"))
            .key(verify_key(Algorithm::HS256).with_kid("hs"))
            .any_audience()
            .allow_missing_exp()
            .build()
            .unwrap()
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

const ALGS: [&str; 10] = [
    "RS256", "ES256", "HS256", "PS256", "EdDSA", "none", "None", "HS512", "", "RS256 ",
];

/// A JSON value of bounded size (depth 3).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JOSE-ish header: a known or odd `alg`, maybe a `kid`, and extra members
/// (including the ones that must be refused).
fn header() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&ALGS[..]),
        prop::option::of(prop_oneof![
            Just(json!("k1")),
            Just(json!("ec")),
            Just(json!("hs")),
            json_value()
        ]),
        prop::collection::btree_map(
            prop::sample::select(
                &["typ", "cty", "crit", "jwk", "jku", "x5c", "b64", "zip", "x"][..],
            ),
            json_value(),
            0..3,
        ),
    )
        .prop_map(|(alg, kid, extra)| {
            let mut h = serde_json::Map::new();
            h.insert("alg".into(), json!(alg));
            if let Some(kid) = kid {
                h.insert("kid".into(), kid);
            }
            for (k, v) in extra {
                h.insert(k.to_owned(), v);
            }
            Value::Object(h)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn verify_arbitrary_strings_never_panics_nor_passes(s in ".{0,200}") {
        prop_assert!(verifier().verify::<JsonClaims>(&s).is_err());
    }

    #[test]
    fn verify_arbitrary_dotted_strings(parts in prop::collection::vec("[A-Za-z0-9_=+/ -]{0,40}", 1..7)) {
        prop_assert!(verifier().verify::<JsonClaims>(&parts.join(".")).is_err());
    }

    /// Three well-formed segments with arbitrary header, payload and
    /// signature bytes: never accepted.
    #[test]
    fn three_segments_unsigned_never_pass(
        h in header(),
        payload in prop_oneof![json_value().prop_map(|v| v.to_string().into_bytes()), prop::collection::vec(any::<u8>(), 0..64)],
        sig in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let token = format!("{}.{}.{}", b64(h.to_string()), b64(&payload), b64(&sig));
        prop_assert!(verifier().verify::<JsonClaims>(&token).is_err());
    }

    /// Tokens we sign with arbitrary headers and claims: they pass only when
    /// the header is a plain one, and then the claims are the ones signed.
    #[test]
    fn signed_tokens_pass_only_as_signed(
        h in header(),
        claims in prop::collection::btree_map("[a-z]{1,5}", json_value(), 0..5),
    ) {
        let payload = Value::Object(claims.into_iter().collect()).to_string();
        let alg = match h["alg"].as_str() {
            Some("ES256") => Algorithm::ES256,
            Some("HS256") => Algorithm::HS256,
            _ => Algorithm::RS256,
        };
        let token = token_raw(alg, &h.to_string(), &payload);
        if let Ok(c) = verifier().verify::<JsonClaims>(&token) {
            prop_assert_eq!(h["alg"].as_str(), Some(alg.as_str()));
            for m in ["jwk", "jku", "x5c", "crit", "b64"] {
                prop_assert!(h.get(m).is_none(), "{} accepted", m);
            }
            let signed: Value = serde_json::from_str(&payload).unwrap();
            prop_assert_eq!(&Value::Object(c.custom().clone()), &signed);
        }
    }

    /// Any one-character change to a valid token makes it fail.
    #[test]
    fn mutated_valid_tokens_fail(pos in any::<prop::sample::Index>(), ch in "[A-Za-z0-9_=+/. -]") {
        let good = token(Algorithm::RS256, &claims());
        prop_assert!(verifier().verify::<JsonClaims>(&good).is_ok());
        let i = pos.index(good.len());
        let mut bad = good.clone();
        bad.replace_range(i..i + 1, &ch);
        prop_assume!(bad != good);
        prop_assert!(verifier().verify::<JsonClaims>(&bad).is_err());
    }

    #[test]
    fn jwk_and_jwks_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Verifier::builder().jwks(&bytes).any_audience().build();
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = Key::from_jwk(s);
            let _ = Key::from_jwk_for(Algorithm::ES256, s);
        }
    }

    /// JWK-shaped JSON: the key, when one is built, is of the type and
    /// algorithm the JWK says.
    #[test]
    fn jwk_shaped_json(
        kty in prop::sample::select(&["RSA", "EC", "OKP", "oct", "rsa", ""][..]),
        crv in prop::option::of(prop::sample::select(&["P-256", "P-384", "P-521", "Ed25519", "X25519", "secp256k1"][..])),
        alg in prop::option::of(prop::sample::select(&ALGS[..])),
        fields in prop::collection::btree_map(
            prop::sample::select(&["n", "e", "x", "y", "k", "d", "use", "key_ops", "kid"][..]),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| json!(b64(b))),
                Just(json!("AQAB")),
                Just(json!("sig")),
                Just(json!(["verify"])),
                json_value(),
            ],
            0..6,
        ),
    ) {
        let mut jwk = serde_json::Map::new();
        jwk.insert("kty".into(), json!(kty));
        if let Some(c) = crv { jwk.insert("crv".into(), json!(c)); }
        if let Some(a) = alg { jwk.insert("alg".into(), json!(a)); }
        for (k, v) in fields { jwk.insert(k.to_owned(), v); }
        let text = Value::Object(jwk.clone()).to_string();
        if let Ok(key) = Key::from_jwk(&text) {
            prop_assert_eq!(Some(key.algorithm().as_str()), alg);
            prop_assert!(jwk.get("d").is_none());
        }
        let set = json!({"keys": [Value::Object(jwk)]}).to_string();
        if let Ok(v) = Verifier::builder().jwks(set).any_audience().build() {
            // A key set never yields an HMAC key.
            prop_assert!(v.verify::<JsonClaims>(&token(Algorithm::HS256, &claims())).is_err());
        }
    }
}

/// The status for one request with these token-bearing headers.
fn status(headers: &[(HeaderName, HeaderValue)]) -> StatusCode {
    let layer = JwtAuthLayer::new(verifier().clone()).sources([
        TokenSource::Bearer,
        TokenSource::cookie("access_token"),
        TokenSource::header(HeaderName::from_static("x-token")),
    ]);
    let svc = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let mut req = Request::builder().uri("/");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    runtime()
        .block_on(svc.oneshot(req.body(String::new()).unwrap()))
        .unwrap()
        .status()
}

/// Header value bytes as http allows them (no CR, LF or NUL), biased
/// towards the shapes the extractor looks for.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "(Bearer|bearer|BEARER|Basic|) {0,3}[A-Za-z0-9_.=\" -]{0,60}".prop_map(String::into_bytes),
        "(access_token|other)=\"?[A-Za-z0-9_.=; -]{0,40}\"?(; access_token=[a-z.]{0,9})?"
            .prop_map(String::into_bytes),
    ]
    .prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn extraction_from_arbitrary_headers_is_400_or_401(
        values in prop::collection::vec(
            (prop::sample::select(&["authorization", "cookie", "x-token"][..]), header_value()),
            0..4,
        ),
    ) {
        let headers: Vec<(HeaderName, HeaderValue)> = values
            .into_iter()
            .map(|(k, v)| (HeaderName::from_static(k), v))
            .collect();
        let s = status(&headers);
        prop_assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::BAD_REQUEST, "{}", s);
    }
}

#[test]
fn extraction_control_valid_token_passes() {
    let t = token(Algorithm::RS256, &claims());
    let ok = |k: HeaderName, v: String| status(&[(k, HeaderValue::from_str(&v).unwrap())]);
    assert_eq!(ok(AUTHORIZATION, format!("Bearer {t}")), StatusCode::OK);
    assert_eq!(ok(COOKIE, format!("a=b; access_token={t}")), StatusCode::OK);
}

#[cfg(feature = "jwks")]
mod discovery {
    use std::sync::{Arc, Mutex};

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower_jwt_auth::jwks::JwksCache;

    /// A loopback server answering discovery and JWKS with the current bodies.
    struct Server {
        url: String,
        bodies: Arc<Mutex<(String, String)>>,
    }

    fn server() -> &'static Server {
        static S: OnceLock<Server> = OnceLock::new();
        S.get_or_init(|| {
            let bodies = Arc::new(Mutex::new((String::new(), String::new())));
            let shared = bodies.clone();
            let listener = runtime()
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            runtime().spawn(async move {
                loop {
                    let Ok((mut s, _)) = listener.accept().await else { break };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 8192];
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        let req = String::from_utf8_lossy(&buf[..n]);
                        let (disc, jwks) = shared.lock().unwrap().clone();
                        let body = if req.starts_with("GET /.well-known/") { disc } else { jwks };
                        let res = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(res.as_bytes()).await;
                    });
                }
            });
            Server { url, bodies }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Discovery documents and key sets of arbitrary shape: prefetch
        /// answers Ok or Err, never panics, and a verifier over the cache
        /// never accepts an unsigned token.
        #[test]
        fn discovery_documents_never_panic(
            issuer_ok in any::<bool>(),
            jwks_uri in prop_oneof![Just(None), Just(Some("/jwks".to_owned())), ".{0,20}".prop_map(Some)],
            extra in prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..4),
            jwks in prop_oneof![
                json_value().prop_map(|v| v.to_string()),
                json_value().prop_map(|v| json!({"keys": [v]}).to_string()),
                ".{0,40}",
            ],
        ) {
            let srv = server();
            let mut doc: serde_json::Map<String, Value> = extra.into_iter().collect();
            doc.insert("issuer".into(), json!(if issuer_ok { srv.url.clone() } else { "https://other".into() }));
            if let Some(uri) = jwks_uri {
                let uri = if uri.starts_with('/') { format!("{}{uri}", srv.url) } else { uri };
                doc.insert("jwks_uri".into(), json!(uri));
            }
            *srv.bodies.lock().unwrap() = (Value::Object(doc).to_string(), jwks);
            let cache = JwksCache::discover(&srv.url)
                .algorithms([Algorithm::RS256, Algorithm::ES256])
                .timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap();
            let _ = runtime().block_on(cache.prefetch());
            let v = Verifier::builder().jwks_cache(cache).any_audience().build().unwrap();
            let forged = format!("{}.{}.{}", b64(r#"{"alg":"RS256"}"#), b64("{}"), b64([0u8; 256]));
            prop_assert!(runtime().block_on(v.verify_async::<JsonClaims>(&forged)).is_err());
        }
    }
}
