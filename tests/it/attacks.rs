//! Known JWT attacks, each sent through the layer (`JwtAuthLayer` over a
//! tower `service_fn`): every one must end in 401, never 200, never 5xx,
//! never a panic. A control token shows the same setup answers 200.
//!
//! No timing assertions here (they are flaky by nature); HMAC comparison is
//! aws-lc's constant-time `hmac::verify`.

use crate::support as common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use common::*;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
use tower_layer::Layer;

/// RS256 (kid `k1`) and ES256 (kid `ec`), issuer and audience from `common`.
fn verifier() -> Verifier {
    Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .key(verify_key(Algorithm::ES256).with_kid("ec"))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

/// The status and `WWW-Authenticate` of one request with this `Authorization` value.
async fn send(layer: &JwtAuthLayer, authorization: &str) -> (StatusCode, String) {
    let svc = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new("secret".to_owned()))
    }));
    let req = Request::builder()
        .uri("/")
        .header(AUTHORIZATION, authorization)
        .body(String::new())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    let challenge = res
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status(), challenge)
}

/// Sends every attack; all must be 401 with an `invalid_token` challenge.
async fn all_refused(layer: &JwtAuthLayer, attacks: &[(String, String)]) -> usize {
    let mut wrong = Vec::new();
    for (name, token) in attacks {
        let (status, challenge) = send(layer, &format!("Bearer {token}")).await;
        if status != StatusCode::UNAUTHORIZED || !challenge.contains("invalid_token") {
            wrong.push(format!("{name}: {status} {challenge}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "attacks not refused with 401:\n{}",
        wrong.join("\n")
    );
    attacks.len()
}

fn rs256_with_header(header: &Value) -> String {
    token_raw(Algorithm::RS256, &header.to_string(), &claims().to_string())
}

/// A token with these exact header and payload bytes, signed with our RS256 key.
fn rs256_bytes(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = sign_bytes(Algorithm::RS256, input.as_bytes(), false);
    format!("{input}.{}", b64(sig))
}

/// Signed by an attacker's RSA key (`rsa2`), not ours.
fn attacker_rs256(header: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims().to_string()));
    let sig = sign_bytes(Algorithm::RS256, input.as_bytes(), true);
    format!("{input}.{}", b64(sig))
}

fn rsa_jwk(kid: &str, alg: &str) -> Value {
    let (n, e) = rsa_n_e(&pem_der(&read("rsa.pkcs1.pub")));
    json!({"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": b64(n), "e": b64(e)})
}

/// The uncompressed point at the end of an EC SubjectPublicKeyInfo.
fn ec_jwk(file: &str, crv: &str, alg: &str, kid: &str, len: usize) -> Value {
    let der = pem_der(&read(file));
    let point = &der[der.len() - (1 + 2 * len)..];
    assert_eq!(point[0], 4);
    json!({"kty": "EC", "crv": crv, "alg": alg, "kid": kid,
           "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
}

#[tokio::test]
async fn control_valid_token_is_200() {
    let layer = JwtAuthLayer::new(verifier());
    let (status, _) = send(
        &layer,
        &format!("Bearer {}", token(Algorithm::RS256, &claims())),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let es = token_raw(
        Algorithm::ES256,
        &json!({"alg": "ES256", "kid": "ec"}).to_string(),
        &claims().to_string(),
    );
    assert_eq!(
        send(&layer, &format!("Bearer {es}")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn attack_alg_none_variants() {
    let payload = b64(claims().to_string());
    let good_sig = token(Algorithm::RS256, &claims())
        .rsplit('.')
        .next()
        .unwrap()
        .to_owned();
    let mut attacks = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in [None, Some("k1")] {
            let mut h = json!({"alg": alg, "typ": "JWT"});
            if let Some(kid) = kid {
                h["kid"] = json!(kid);
            }
            let h = b64(h.to_string());
            attacks.push((
                format!("alg {alg} kid {kid:?}, empty signature"),
                format!("{h}.{payload}."),
            ));
            attacks.push((
                format!("alg {alg} kid {kid:?}, no signature part"),
                format!("{h}.{payload}"),
            ));
            attacks.push((
                format!("alg {alg} kid {kid:?}, a real RS256 signature"),
                format!("{h}.{payload}.{good_sig}"),
            ));
        }
    }
    let n = all_refused(&JwtAuthLayer::new(verifier()), &attacks).await;
    println!("alg none: {n} attacks refused");
}

#[tokio::test]
async fn attack_hs256_keyed_with_the_rsa_public_key() {
    // The verifier holds only an RSA key for RS256.
    let layer = JwtAuthLayer::new(
        Verifier::builder()
            .key(verify_key(Algorithm::RS256))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap(),
    );
    let pem = read("rsa.pub");
    let pem_crlf = String::from_utf8(pem.clone())
        .unwrap()
        .replace('\n', "\r\n");
    let pem_trimmed = String::from_utf8(pem.clone()).unwrap().trim().to_owned();
    let der = pem_der(&pem);
    let pkcs1 = pem_der(&read("rsa.pkcs1.pub"));
    let (n, _) = rsa_n_e(&pkcs1);
    let secrets: [(&str, &[u8]); 7] = [
        ("PEM", &pem),
        ("PEM with CRLF", pem_crlf.as_bytes()),
        ("PEM trimmed", pem_trimmed.as_bytes()),
        ("PKCS#1 PEM", &read("rsa.pkcs1.pub")),
        ("SPKI DER", &der),
        ("PKCS#1 DER", &pkcs1),
        ("modulus bytes", &n),
    ];
    let mut attacks = Vec::new();
    for (what, secret) in secrets {
        for h in [
            json!({"alg": "HS256", "kid": "k1"}),
            json!({"alg": "HS256"}),
        ] {
            attacks.push((
                format!("HS256 with the RSA key as {what}, {h}"),
                hs256_with(&h, &claims(), secret),
            ));
        }
    }
    let n = all_refused(&layer, &attacks).await;
    println!("hs256/rsa confusion: {n} attacks refused");
}

#[tokio::test]
async fn attack_jwks_key_used_with_another_algorithm() {
    let set = json!({"keys": [
        rsa_jwk("rsa", "RS256"),
        ec_jwk("p384.pub", "P-384", "ES384", "p384", 48),
        ec_jwk("p256.pub", "P-256", "ES256", "p256", 32),
    ]});
    let v = Verifier::builder()
        .jwks(set.to_string())
        .algorithms([
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::ES384,
        ])
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(v);
    let c = claims().to_string();
    // Control: each key verifies its own algorithm.
    for (alg, kid) in [(Algorithm::RS256, "rsa"), (Algorithm::ES256, "p256")] {
        let t = token_raw(
            alg,
            &json!({"alg": alg.as_str(), "kid": kid}).to_string(),
            &c,
        );
        assert_eq!(
            send(&layer, &format!("Bearer {t}")).await.0,
            StatusCode::OK,
            "{alg}"
        );
    }
    // Each signature is genuine (made with the right private key), only the
    // key the kid selects is bound to another algorithm.
    let attacks = vec![
        (
            "PS256 token on the RS256 JWK".to_owned(),
            token_raw(
                Algorithm::PS256,
                &json!({"alg": "PS256", "kid": "rsa"}).to_string(),
                &c,
            ),
        ),
        (
            "ES256 token on the P-384 JWK".to_owned(),
            token_raw(
                Algorithm::ES256,
                &json!({"alg": "ES256", "kid": "p384"}).to_string(),
                &c,
            ),
        ),
        (
            "ES256 token on the RSA kid".to_owned(),
            token_raw(
                Algorithm::ES256,
                &json!({"alg": "ES256", "kid": "rsa"}).to_string(),
                &c,
            ),
        ),
        (
            "ES384 token on the P-256 JWK".to_owned(),
            token_raw(
                Algorithm::ES384,
                &json!({"alg": "ES384", "kid": "p256"}).to_string(),
                &c,
            ),
        ),
        (
            "RS256 token on the P-256 kid".to_owned(),
            token_raw(
                Algorithm::RS256,
                &json!({"alg": "RS256", "kid": "p256"}).to_string(),
                &c,
            ),
        ),
    ];
    let n = all_refused(&layer, &attacks).await;
    println!("jwks algorithm confusion: {n} attacks refused");
}

#[tokio::test]
async fn attack_embedded_jwk_and_x5c() {
    let attacker = rsa_jwk("k1", "RS256"); // shape only; the key below is rsa2's
    let (n2, e2) = {
        let der = pem_der(&read("rsa2.pub"));
        // SPKI: the RSAPublicKey is inside the BIT STRING after its 0x00.
        let start = der.windows(2).rposition(|w| w == [0x03, 0x82]).unwrap();
        rsa_n_e(&der[start + 5..])
    };
    let mut jwk = attacker.clone();
    jwk["n"] = json!(b64(n2));
    jwk["e"] = json!(b64(e2));
    let cert = pem_der(&read("rsa.crt"));
    let attacks = vec![
        (
            "embedded jwk (attacker key), kid k1",
            attacker_rs256(&json!({"alg": "RS256", "kid": "k1", "jwk": jwk})),
        ),
        (
            "embedded jwk (attacker key), no kid",
            attacker_rs256(&json!({"alg": "RS256", "jwk": jwk})),
        ),
        (
            "x5c with a certificate, attacker signature",
            attacker_rs256(&json!({"alg": "RS256", "x5c": [base64_std(&cert)]})),
        ),
        (
            "x5c, kid k1",
            attacker_rs256(&json!({"alg": "RS256", "kid": "k1", "x5c": [base64_std(&cert)]})),
        ),
        // Even with our own valid signature, a key-bearing header is refused.
        (
            "jwk header on an otherwise valid token",
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "jwk": jwk})),
        ),
        (
            "x5c header on an otherwise valid token",
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "x5c": [base64_std(&cert)]})),
        ),
    ];
    let attacks: Vec<(String, String)> = attacks
        .into_iter()
        .map(|(a, t)| (a.to_owned(), t))
        .collect();
    let n = all_refused(&JwtAuthLayer::new(verifier()), &attacks).await;
    println!("embedded keys: {n} attacks refused");
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(all(feature = "jwks", feature = "issuer"))]
#[tokio::test]
async fn attack_jku_and_x5u_are_never_fetched() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower_jwt_auth::jwks::JwksCache;
    use tower_jwt_auth::testing::Issuer;

    // The attacker's key server on loopback, counting connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let (n2, e2) = {
        let der = pem_der(&read("rsa2.pub"));
        let start = der.windows(2).rposition(|w| w == [0x03, 0x82]).unwrap();
        rsa_n_e(&der[start + 5..])
    };
    let body = json!({"keys": [{"kty": "RSA", "kid": "evil", "alg": "RS256", "n": b64(&n2), "e": b64(&e2)}]}).to_string();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                break;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let res = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(res.as_bytes()).await;
        }
    });

    let issuer = Issuer::start().await.unwrap();
    let cache = JwksCache::discover(&issuer.url())
        .algorithms([Algorithm::RS256])
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(
        Verifier::builder()
            .jwks_cache(cache.clone())
            .issuer(issuer.url())
            .audience(AUDIENCE)
            .build()
            .unwrap(),
    );
    // Control: the issuer's own token passes (and fills the cache).
    let good = issuer.token("alice", AUDIENCE);
    assert_eq!(
        send(&layer, &format!("Bearer {good}")).await.0,
        StatusCode::OK
    );
    let jwks_before = issuer.jwks_requests();

    let evil = format!("http://{addr}/jwks.json");
    let payload =
        json!({"iss": issuer.url(), "aud": AUDIENCE, "sub": "mallory", "exp": now() + 3600});
    let sign = |header: Value| {
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let sig = sign_bytes(Algorithm::RS256, input.as_bytes(), true); // rsa2 = the "evil" key
        format!("{input}.{}", b64(sig))
    };
    let issuer_kid = issuer.signing_kid();
    let attacks: Vec<(String, String)> = vec![
        (
            "jku to the attacker, kid evil".into(),
            sign(json!({"alg": "RS256", "kid": "evil", "jku": evil})),
        ),
        (
            "jku to the attacker, issuer's kid".into(),
            sign(json!({"alg": "RS256", "kid": issuer_kid, "jku": evil})),
        ),
        (
            "jku to the attacker, no kid".into(),
            sign(json!({"alg": "RS256", "jku": evil})),
        ),
        (
            "x5u to the attacker, kid evil".into(),
            sign(json!({"alg": "RS256", "kid": "evil", "x5u": evil})),
        ),
        (
            "x5u to the attacker, no kid".into(),
            sign(json!({"alg": "RS256", "x5u": evil})),
        ),
    ];
    let n = all_refused(&layer, &attacks).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the attacker's server was contacted"
    );
    assert_eq!(
        issuer.jwks_requests(),
        jwks_before,
        "a jku token caused a JWKS fetch"
    );
    // The counting server itself works (so zero means zero).
    let _ = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    server.abort();
    println!("jku/x5u: {n} attacks refused, 0 requests to the attacker's server");
}

#[tokio::test]
async fn attack_hostile_kid_values() {
    let long = "k".repeat(64 * 1024);
    let kids = [
        json!("../../dev/null"),
        json!("/dev/null"),
        json!("' OR 1=1 --"),
        json!("k1' OR '1'='1"),
        json!("k1\u{0}"),
        json!(long),
        json!(5),
        json!(1.5),
        json!({"kid": "k1"}),
        json!(["k1"]),
        // (`"kid": null` on a token we signed is a token without kid: valid, not an attack.)
        json!(true),
    ];
    let mut attacks = Vec::new();
    for kid in &kids {
        // Signed with our own key, so only the kid is hostile.
        let t = rs256_with_header(&json!({"alg": "RS256", "kid": kid}));
        let shown: String = kid.to_string().chars().take(24).collect();
        attacks.push((format!("kid {shown}"), t));
    }
    // Default limit: the 64 KiB kid is refused as too large; raised limit:
    // the parser and key lookup see it.
    let default = JwtAuthLayer::new(verifier());
    let raised = JwtAuthLayer::new(verifier()).max_token_len(1 << 20);
    let n = all_refused(&default, &attacks).await + all_refused(&raised, &attacks).await;
    let (_, challenge) = send(&default, &format!("Bearer {}", attacks[5].1)).await;
    assert!(challenge.contains("too large"), "{challenge}");
    let (_, challenge) = send(&raised, &format!("Bearer {}", attacks[5].1)).await;
    assert!(challenge.contains("no key matches"), "{challenge}");
    println!("hostile kids: {n} attacks refused");
}

/// P-256 group order n.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn attack_ecdsa_signature_forms() {
    let header = json!({"alg": "ES256", "kid": "ec"}).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims().to_string()));
    let good = sign_bytes(Algorithm::ES256, input.as_bytes(), false);
    assert_eq!(good.len(), 64);
    let n = unhex(P256_N);
    let with_sig = |sig: &[u8]| format!("{input}.{}", b64(sig));
    // The same message signed in ASN.1 DER form by our own P-256 key.
    let der_sig = {
        let pkcs8 = pem_der(&read("p256.key"));
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).unwrap();
        pair.sign(&SystemRandom::new(), input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let mut r_plus_n_low = good.clone();
    r_plus_n_low[..32].copy_from_slice(&n); // r = n
    let attacks: Vec<(String, String)> = vec![
        ("r = s = 0 (psychic signature)".into(), with_sig(&[0u8; 64])),
        (
            "r = s = n".into(),
            with_sig(&[n.clone(), n.clone()].concat()),
        ),
        (
            "r = 0, s = real".into(),
            with_sig(&[&[0u8; 32][..], &good[32..]].concat()),
        ),
        ("r = n, s = real".into(), with_sig(&r_plus_n_low)),
        (
            "DER-encoded signature of the same input".into(),
            with_sig(&der_sig),
        ),
        ("63-byte signature".into(), with_sig(&good[..63])),
        (
            "65-byte signature (trailing zero)".into(),
            with_sig(&[&good[..], &[0]].concat()),
        ),
        (
            "65-byte signature (leading zero)".into(),
            with_sig(&[&[0u8][..], &good[..]].concat()),
        ),
        ("empty-looking signature".into(), format!("{input}.AA")),
        (
            "2 KiB signature".into(),
            with_sig(&[good.as_slice(); 32].concat()),
        ),
    ];
    // Control: the genuine signature passes.
    let layer = JwtAuthLayer::new(verifier());
    assert_eq!(
        send(&layer, &format!("Bearer {}", with_sig(&good))).await.0,
        StatusCode::OK
    );
    let count = all_refused(&layer, &attacks).await;
    println!("ecdsa forms: {count} attacks refused");
}

#[tokio::test]
async fn attack_crit_b64_duplicates_and_nesting() {
    let c = claims();
    let inner = token(Algorithm::RS256, &c);
    let dup_payload = |member: &str, value: &str| {
        let body = c.to_string();
        // `{"aud":...` → `{"sub":"admin","aud":...` with sub already present later.
        format!("{{\"{member}\":{value},{}", &body[1..])
    };
    let attacks: Vec<(String, String)> = vec![
        (
            "crit names an unknown extension".into(),
            rs256_with_header(
                &json!({"alg": "RS256", "kid": "k1", "crit": ["x-custom"], "x-custom": 1}),
            ),
        ),
        (
            "crit is an empty array".into(),
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "crit": []})),
        ),
        (
            "crit names a registered claim".into(),
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]})),
        ),
        (
            "crit is not an array".into(),
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "crit": "b64"})),
        ),
        (
            "b64: false with crit".into(),
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "b64": false, "crit": ["b64"]})),
        ),
        (
            "b64: false without crit".into(),
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "b64": false})),
        ),
        (
            "alg twice (RS256 then none)".into(),
            rs256_bytes(
                br#"{"alg":"RS256","kid":"k1","alg":"none"}"#,
                c.to_string().as_bytes(),
            ),
        ),
        (
            "alg twice (HS256 then RS256)".into(),
            rs256_bytes(
                br#"{"alg":"HS256","kid":"k1","alg":"RS256"}"#,
                c.to_string().as_bytes(),
            ),
        ),
        (
            "kid twice".into(),
            rs256_bytes(
                br#"{"alg":"RS256","kid":"nope","kid":"k1"}"#,
                c.to_string().as_bytes(),
            ),
        ),
        (
            "sub twice in the payload".into(),
            rs256_bytes(
                br#"{"alg":"RS256","kid":"k1"}"#,
                dup_payload("sub", "\"admin\"").as_bytes(),
            ),
        ),
        (
            "exp twice in the payload".into(),
            rs256_bytes(
                br#"{"alg":"RS256","kid":"k1"}"#,
                dup_payload("exp", "1").as_bytes(),
            ),
        ),
        (
            "iss twice in the payload".into(),
            rs256_bytes(
                br#"{"alg":"RS256","kid":"k1"}"#,
                dup_payload("iss", "\"https://evil.test\"").as_bytes(),
            ),
        ),
        (
            "aud twice in the payload".into(),
            rs256_bytes(
                br#"{"alg":"RS256","kid":"k1"}"#,
                dup_payload("aud", "\"other\"").as_bytes(),
            ),
        ),
        (
            "cty JWT with a nested token as payload".into(),
            rs256_bytes(
                br#"{"alg":"RS256","kid":"k1","cty":"JWT"}"#,
                inner.as_bytes(),
            ),
        ),
        (
            "cty jwt (lower case) with claims".into(),
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "cty": "jwt"})),
        ),
        (
            "cty application/JWT".into(),
            rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "cty": "application/JWT"})),
        ),
        (
            "nested token as payload without cty".into(),
            rs256_bytes(br#"{"alg":"RS256","kid":"k1"}"#, inner.as_bytes()),
        ),
    ];
    let n = all_refused(&JwtAuthLayer::new(verifier()), &attacks).await;
    println!("crit/b64/duplicates/nesting: {n} attacks refused");
}

#[tokio::test]
async fn attack_encoding_and_shape() {
    let good = token(Algorithm::RS256, &claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    assert_ne!(
        s.len() % 4,
        0,
        "an RSA-2048 signature needs padding in standard base64"
    );
    let pad = "=".repeat(4 - s.len() % 4);
    // The same signature bytes in the standard alphabet: a lenient decoder
    // accepting both alphabets would accept this token.
    let std_sig: String = s
        .chars()
        .map(|ch| match ch {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let mut attacks: Vec<(String, String)> = vec![
        ("a 5-segment JWE".into(), format!("{h}.{p}.{s}.{p}.{s}")),
        (
            "a JWE header with dir/A256GCM".into(),
            format!("{}.AA.AA.AA.AA", b64(r#"{"alg":"dir","enc":"A256GCM"}"#)),
        ),
        ("4 segments".into(), format!("{good}.")),
        ("2 segments".into(), format!("{h}.{p}")),
        ("= padding on the signature".into(), format!("{good}{pad}")),
        ("= padding on the payload".into(), format!("{h}.{p}=.{s}")),
        (
            "a space inside the signature".into(),
            format!("{h}.{p}.{} {}", &s[..10], &s[10..]),
        ),
        (
            "a tab inside the payload".into(),
            format!("{h}.{}\t{}.{s}", &p[..4], &p[4..]),
        ),
        // (A newline cannot be sent: http refuses it in a header value.)
        (
            "unicode (fullwidth dot) separator".into(),
            good.replacen('.', "\u{ff0e}", 1),
        ),
    ];
    if std_sig != s {
        attacks.push((
            "+ and / (standard alphabet) in the signature".into(),
            format!("{h}.{p}.{std_sig}"),
        ));
    }
    // `+`/`/` in a segment that also verifies under a lenient decoder:
    // find a header whose base64url has `-` or `_`, sign it, swap alphabets.
    let mut swapped = None;
    for i in 0..200 {
        let header =
            json!({"alg": "RS256", "kid": "k1", "n": "?".repeat(i % 7), "i": i}).to_string();
        let eh = b64(&header);
        if eh.contains(['-', '_']) {
            let input = format!("{eh}.{p}");
            let sig = b64(sign_bytes(Algorithm::RS256, input.as_bytes(), false));
            let std_h: String = eh
                .chars()
                .map(|ch| match ch {
                    '-' => '+',
                    '_' => '/',
                    c => c,
                })
                .collect();
            swapped = Some(format!("{std_h}.{p}.{sig}"));
            break;
        }
    }
    attacks.push((
        "+ and / in the header".into(),
        swapped.expect("a header with - or _"),
    ));
    // Invalid UTF-8, signed with our key so only the bytes are wrong.
    attacks.push(("invalid UTF-8 in the header, attacker signature".into(), {
        let input = format!(
            "{}.{}",
            b64(b"{\"alg\":\"RS256\",\"kid\":\"k1\",\"x\":\"\xff\xfe\"}"),
            b64(claims().to_string())
        );
        let sig = sign_bytes(Algorithm::RS256, input.as_bytes(), true);
        format!("{input}.{}", b64(sig))
    }));
    // Invalid UTF-8 inside the header's `alg` itself, our signature.
    attacks.push((
        "invalid UTF-8 in the header's alg".into(),
        rs256_bytes(
            b"{\"alg\":\"RS256\xff\",\"kid\":\"k1\"}",
            claims().to_string().as_bytes(),
        ),
    ));
    // Invalid UTF-8 inside an *unknown* header member, signed with our key:
    // serde_json skips ignored strings without validating them, so the
    // header bytes are checked for UTF-8 before parsing.
    attacks.push((
        "invalid UTF-8 in an unknown header member, our signature".into(),
        rs256_bytes(
            b"{\"alg\":\"RS256\",\"kid\":\"k1\",\"x\":\"\xc3\x28\"}",
            claims().to_string().as_bytes(),
        ),
    ));
    let mut payload = claims().to_string().into_bytes();
    payload.splice(1..1, b"\"x\":\"\xc3\x28\",".iter().copied());
    attacks.push((
        "invalid UTF-8 in the payload".into(),
        rs256_bytes(br#"{"alg":"RS256","kid":"k1"}"#, &payload),
    ));
    attacks.push(("overlong UTF-8 in the payload".into(), {
        let mut p = claims().to_string().into_bytes();
        p.splice(1..1, b"\"x\":\"\xc0\xaf\",".iter().copied());
        rs256_bytes(br#"{"alg":"RS256","kid":"k1"}"#, &p)
    }));
    attacks.push((
        "header is a JSON array".into(),
        rs256_bytes(br#"["RS256"]"#, claims().to_string().as_bytes()),
    ));
    attacks.push((
        "payload is a JSON array".into(),
        rs256_bytes(br#"{"alg":"RS256","kid":"k1"}"#, b"[1]"),
    ));
    attacks.push((
        "payload with trailing garbage".into(),
        rs256_bytes(
            br#"{"alg":"RS256","kid":"k1"}"#,
            format!("{}x", claims()).as_bytes(),
        ),
    ));
    let n = all_refused(&JwtAuthLayer::new(verifier()), &attacks).await;
    println!("encoding/shape: {n} attacks refused");
}

#[tokio::test]
async fn attack_oversized_and_deeply_nested() {
    let big = "A".repeat(300 * 1024);
    let huge_header = attacker_rs256(&json!({"alg": "RS256", "kid": "k1", "x": big}));
    let huge_valid_shape =
        rs256_with_header(&json!({"alg": "RS256", "kid": "k1", "x": big, "crit": []}));
    let nested = |depth: usize| {
        format!(
            "{{\"alg\":\"RS256\",\"kid\":\"k1\",\"x\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let deep_header = {
        let input = format!("{}.{}", b64(nested(100_000)), b64(claims().to_string()));
        let sig = sign_bytes(Algorithm::RS256, input.as_bytes(), true);
        format!("{input}.{}", b64(sig))
    };
    // Not an attack: our own token whose header has an unknown member nested
    // 100k deep. serde_json skips an ignored member without recursion, so it
    // parses without exhausting the stack, and the token is valid.
    let deep_but_ours = rs256_bytes(nested(100_000).as_bytes(), claims().to_string().as_bytes());
    let unclosed_header = rs256_bytes(
        format!("{{\"alg\":\"RS256\",\"x\":{}", "[".repeat(100_000)).as_bytes(),
        b"{}",
    );
    let deep_payload = {
        let mut p = claims().to_string();
        p.insert_str(
            1,
            &format!("\"x\":{}{},", "[".repeat(100_000), "]".repeat(100_000)),
        );
        rs256_bytes(br#"{"alg":"RS256","kid":"k1"}"#, p.as_bytes())
    };
    let deep_objects = {
        let mut p = claims().to_string();
        p.insert_str(
            1,
            &format!("\"x\":{}1{},", "{\"a\":".repeat(50_000), "}".repeat(50_000)),
        );
        rs256_bytes(br#"{"alg":"RS256","kid":"k1"}"#, p.as_bytes())
    };
    let attacks: Vec<(String, String)> = vec![
        (
            "300 KB header, attacker signature".into(),
            huge_header.clone(),
        ),
        (
            "300 KB header with crit, our signature".into(),
            huge_valid_shape,
        ),
        (
            "100k [ in the header, attacker signature".into(),
            deep_header,
        ),
        ("100k unclosed [ in the header".into(), unclosed_header),
        ("100k [ in the payload, our signature".into(), deep_payload),
        (
            "50k nested objects in the payload, our signature".into(),
            deep_objects,
        ),
    ];
    let default = JwtAuthLayer::new(verifier());
    let raised = JwtAuthLayer::new(verifier()).max_token_len(4 << 20);
    let mut n = all_refused(&default, &attacks).await;
    n += all_refused(&raised, &attacks).await;
    let raised_ok = send(&raised, &format!("Bearer {deep_but_ours}")).await.0;
    assert_eq!(raised_ok, StatusCode::OK, "our own deeply nested header");
    let (_, challenge) = send(&default, &format!("Bearer {huge_header}")).await;
    assert!(challenge.contains("too large"), "{challenge}");
    let (_, challenge) = send(&raised, &format!("Bearer {huge_header}")).await;
    assert!(challenge.contains("signature is invalid"), "{challenge}");
    println!("oversized/nested: {n} attacks refused (default and raised max_token_len)");
}

#[tokio::test]
async fn attack_keys_built_from_attacker_material_are_build_errors() {
    // The library refuses weak or mismatched keys outright: no token can
    // ever be checked with them.
    assert!(Key::from_pem(Algorithm::RS256, read("rsa1024.pub")).is_err());
    assert!(Key::from_pem(Algorithm::ES256, read("p384.pub")).is_err());
    assert!(Key::from_pem(Algorithm::HS256, read("rsa.pub")).is_err());
    assert!(Key::hmac(Algorithm::RS256, SECRET).is_err());
    assert!(Key::from_pem(Algorithm::RS256, read("rsa.key")).is_err());
    assert!(
        Verifier::builder()
            .key(verify_key(Algorithm::RS256))
            .algorithms([Algorithm::RS256, Algorithm::HS256])
            .any_audience()
            .build()
            .is_err(),
        "HS256 allowed with no HMAC key must be a build error"
    );
}

/// The verifier remembers the parsed headers of tokens whose signature
/// verified, to skip parsing them again. A remembered header must never
/// stand for more than its parse: with the exact header of an accepted
/// token, a forged signature, an attacker's signature, a changed payload
/// or an expired payload are all still refused, as is the same header
/// sent to a verifier that does not allow its algorithm.
#[tokio::test]
async fn attack_a_remembered_header_skips_no_check() {
    let layer = JwtAuthLayer::new(verifier());
    let header = json!({"alg": "RS256", "kid": "k1"});
    let good = rs256_with_header(&header);
    for _ in 0..2 {
        assert_eq!(
            send(&layer, &format!("Bearer {good}")).await.0,
            StatusCode::OK
        );
    }
    let (input, _) = good.rsplit_once('.').unwrap();
    let header_b64 = input.split('.').next().unwrap();
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    let mut other_aud = claims();
    other_aud["aud"] = json!("another-api");
    let forged_sig = b64(sign_bytes(Algorithm::RS256, b"something else", false));
    let attacks = vec![
        (
            "remembered header, forged signature".to_owned(),
            format!("{input}.{forged_sig}"),
        ),
        (
            "remembered header, attacker's key".to_owned(),
            attacker_rs256(&header),
        ),
        (
            "remembered header, payload swapped after signing".to_owned(),
            format!(
                "{header_b64}.{}.{}",
                b64(other_aud.to_string()),
                good.rsplit_once('.').unwrap().1
            ),
        ),
        (
            "remembered header, expired payload".to_owned(),
            rs256_bytes(
                header.to_string().as_bytes(),
                expired.to_string().as_bytes(),
            ),
        ),
        (
            "remembered header, another audience".to_owned(),
            rs256_bytes(
                header.to_string().as_bytes(),
                other_aud.to_string().as_bytes(),
            ),
        ),
        (
            "remembered header, no signature".to_owned(),
            format!("{input}."),
        ),
    ];
    all_refused(&layer, &attacks).await;
    // The same token is still accepted: the refusals did not poison it.
    assert_eq!(
        send(&layer, &format!("Bearer {good}")).await.0,
        StatusCode::OK
    );

    // A verifier allowing ES256 only refuses the header it never remembered
    // as accepted, whatever another verifier remembers.
    let es_only = JwtAuthLayer::new(
        Verifier::builder()
            .key(verify_key(Algorithm::ES256).with_kid("ec"))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap(),
    );
    all_refused(
        &es_only,
        &[("RS256 header, ES256-only verifier".to_owned(), good.clone())],
    )
    .await;
}
