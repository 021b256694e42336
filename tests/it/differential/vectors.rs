//! The public vectors (tests/data: Project Wycheproof JWS, JWK and JOSE
//! files, raw ECDSA P-256 and Ed25519, the RFC 7520 cookbook), through all
//! three verifiers. Their payloads are not claims sets ("foo", empty, prose),
//! so they are compared at the signature level: does the signature verify
//! with the vector's key? For ours that is "the token got past the
//! signature" (the claims step then refuses the payload), as in
//! tests/vectors.rs. Each verifier builds the key from the vector's JWK its
//! own way; a JWK's `alg` binds the key (else the token's `alg` is used).
//! Raw signatures (not tokens) compare the engines: aws-lc with the
//! algorithm our `Key` binds, jsonwebtoken's `crypto::verify`, and the
//! WebCrypto that jose uses.

use std::collections::BTreeMap;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tower_jwt_auth::{Algorithm, AuthError, JsonClaims, Key, Verifier};

use crate::differential::facts::Facts;
use crate::differential::jose::{Jose, verdict};
use crate::differential::oracles::Verdict;
use crate::differential::table::{DIFFERENCES, Level, Peer, explain};

fn load(path: &str) -> Value {
    let path = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The public half of a JWK (an `oct` key keeps its secret: it is the key).
fn public_jwk(jwk: &Value) -> Value {
    let mut jwk = jwk.as_object().unwrap().clone();
    if jwk.get("kty").and_then(Value::as_str) != Some("oct") {
        for m in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
            jwk.remove(m);
        }
    }
    Value::Object(jwk)
}

/// The group's keys: `public` when given, else the public half of `private`.
fn group_jwks(group: &Value) -> Vec<Value> {
    let src = if group["public"].is_object() {
        &group["public"]
    } else {
        &group["private"]
    };
    match src.get("keys") {
        Some(keys) => keys.as_array().unwrap().iter().map(public_jwk).collect(),
        None => vec![public_jwk(src)],
    }
}

fn header_alg(token: &str) -> Option<String> {
    let h = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let h: Value = serde_json::from_slice(&h).ok()?;
    Some(h.get("alg")?.as_str()?.to_owned())
}

/// Ours: did the token get past the signature?
fn ours_signature(v: Result<Verifier, String>, token: &str) -> Verdict {
    let v = match v {
        Ok(v) => v,
        Err(e) => return Verdict::Refuse(format!("key: {e}")),
    };
    match v.verify::<JsonClaims>(token) {
        Ok(_) => Verdict::Accept,
        Err(
            AuthError::InvalidClaim(_)
            | AuthError::ClaimsShape(_)
            | AuthError::MissingClaim(_)
            | AuthError::Expired
            | AuthError::NotYetValid,
        ) => Verdict::Accept,
        // Past the signature, but a payload that is not base64url is no JWS payload.
        Err(AuthError::Malformed(m))
            if m.starts_with("the payload") && !m.contains("base64url") =>
        {
            Verdict::Accept
        }
        Err(e) => Verdict::Refuse(format!("{}: {e}", e.reason())),
    }
}

fn ours_with_jwk(jwk: &Value, token: &str) -> Verdict {
    let text = jwk.to_string();
    let key = if jwk.get("alg").is_some() {
        Key::from_jwk(&text)
    } else {
        match header_alg(token).and_then(|a| a.parse::<Algorithm>().ok()) {
            Some(alg) => Key::from_jwk_for(alg, &text),
            None => return Verdict::Refuse("key: the token names no algorithm of ours".into()),
        }
    };
    let built = key.map_err(|e| e.to_string()).and_then(|k| {
        Verifier::builder()
            .key(k)
            .any_audience()
            .allow_missing_exp()
            .build()
            .map_err(|e| e.to_string())
    });
    ours_signature(built, token)
}

fn ours_with_set(set: &Value, token: &str) -> Verdict {
    let built = Verifier::builder()
        .jwks(set.to_string())
        .any_audience()
        .allow_missing_exp()
        .build()
        .map_err(|e| e.to_string());
    ours_signature(built, token)
}

/// jsonwebtoken: header, key from the JWK, `crypto::verify` over the
/// signing input exactly as its `decode` splits it. A JWK's `alg` is the
/// one algorithm allowed (`Validation::new(alg)` in an application).
fn jwt_with_jwk(jwk: &jsonwebtoken::jwk::Jwk, token: &str) -> Verdict {
    let refuse = |e: &dyn std::fmt::Display| Verdict::Refuse(format!("jsonwebtoken: {e}"));
    let header = match jsonwebtoken::decode_header(token) {
        Ok(h) => h,
        Err(e) => return refuse(&e),
    };
    let allowed = match &jwk.common.key_algorithm {
        Some(a) => match format!("{a:?}").parse::<jsonwebtoken::Algorithm>() {
            Ok(a) => a,
            Err(_) => return refuse(&format!("the JWK's alg {a:?} is not a signature algorithm")),
        },
        None => header.alg,
    };
    if header.alg != allowed {
        return refuse(&"InvalidAlgorithm");
    }
    let key = match jsonwebtoken::DecodingKey::from_jwk(jwk) {
        Ok(k) => k,
        Err(e) => return refuse(&e),
    };
    let Some((message, signature)) = token.rsplit_once('.') else {
        return refuse(&"InvalidToken");
    };
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, header.alg) {
        // Then the payload is decoded, as `decode` does.
        Ok(true) => match URL_SAFE_NO_PAD.decode(message.split('.').nth(1).unwrap_or_default()) {
            Ok(_) => Verdict::Accept,
            Err(e) => refuse(&e),
        },
        Ok(false) => refuse(&"InvalidSignature"),
        Err(e) => refuse(&e),
    }
}

fn jwt_with_value(jwk: &Value, token: &str) -> Verdict {
    match serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone()) {
        Ok(jwk) => jwt_with_jwk(&jwk, token),
        Err(e) => Verdict::Refuse(format!("jsonwebtoken: JWK: {e}")),
    }
}

/// jsonwebtoken with a key set: the member with the token's `kid`.
fn jwt_with_set(set: &Value, token: &str) -> Verdict {
    let set: jsonwebtoken::jwk::JwkSet = match serde_json::from_value(set.clone()) {
        Ok(s) => s,
        Err(e) => return Verdict::Refuse(format!("jsonwebtoken: JWKS: {e}")),
    };
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    match kid.as_deref().and_then(|k| set.find(k)) {
        Some(jwk) => jwt_with_jwk(jwk, token),
        None => Verdict::Refuse("jsonwebtoken: no JWK with the token's kid".into()),
    }
}

/// The counts, and every disagreement with the row that explains it.
#[derive(Default)]
struct Report {
    cases: usize,
    verified: [usize; 3],
    rows: BTreeMap<(&'static str, &'static str), usize>,
    unexplained: Vec<String>,
}

impl Report {
    fn compare(&mut self, label: &str, facts: Facts, ours: Verdict, jwt: Verdict, jose: Verdict) {
        self.cases += 1;
        for (i, v) in [&ours, &jwt, &jose].into_iter().enumerate() {
            self.verified[i] += v.accepted() as usize;
        }
        for (peer, theirs) in [(Peer::Jsonwebtoken, &jwt), (Peer::Jose, &jose)] {
            if theirs.accepted() == ours.accepted() {
                continue;
            }
            match explain(&facts, peer, &ours) {
                Some(d) => *self.rows.entry((d.id, peer.name())).or_default() += 1,
                None => self.unexplained.push(format!(
                    "{label}: {} disagrees\n  ours: {ours:?}\n  jsonwebtoken: {jwt:?}\n  jose: {jose:?}",
                    peer.name()
                )),
            }
        }
    }
}

pub fn run() {
    let mut jose = Jose::start();
    let mut r = Report::default();

    // The JWS file: one key per group.
    let doc = load("wycheproof/json_web_signature_test.json");
    for group in doc["testGroups"].as_array().unwrap() {
        let jwk = group_jwks(group).remove(0);
        let cases = group["tests"].as_array().unwrap();
        let requests: Vec<Value> = cases
            .iter()
            .map(|c| json!({"op": "jws", "token": c["jws"], "jwk": jwk}))
            .collect();
        for (case, answer) in cases.iter().zip(jose.ask_many(&requests)) {
            let token = case["jws"].as_str().unwrap();
            let label = format!(
                "json_web_signature tcId {} ({})",
                case["tcId"], case["comment"]
            );
            let facts = Facts::for_vector(token, Some(&jwk), None);
            r.compare(
                &label,
                facts,
                ours_with_jwk(&jwk, token),
                jwt_with_value(&jwk, token),
                verdict(answer),
            );
        }
    }

    // The key set files: the group's keys as one set.
    for file in ["json_web_key_test", "json_web_crypto_test"] {
        let doc = load(&format!("wycheproof/{file}.json"));
        for group in doc["testGroups"].as_array().unwrap() {
            let set = json!({"keys": group_jwks(group)});
            for case in group["tests"].as_array().unwrap() {
                let label = format!("{file} tcId {} ({})", case["tcId"], case["comment"]);
                // JWE, and the JWS JSON serialization, given as text.
                let token = case
                    .get("jwe")
                    .or(case.get("jws"))
                    .map(|t| {
                        t.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| t.to_string())
                    })
                    .unwrap();
                let answer = jose.ask(&json!({"op": "jws", "token": token, "jwks": set}));
                let facts = Facts::for_vector(&token, None, Some(&set));
                r.compare(
                    &label,
                    facts,
                    ours_with_set(&set, &token),
                    jwt_with_set(&set, &token),
                    verdict(answer),
                );
            }
        }
    }

    // RFC 7520 §4: the cookbook's signatures.
    for file in [
        "jws_4_1.rsa_v15_signature.json",
        "jws_4_2.rsa-pss_signature.json",
        "jws_4_3.ecdsa_signature.json",
        "jws_4_4.hmac-sha2_integrity_protection.json",
        "curve25519_jws.json",
    ] {
        let doc = load(&format!("jose-cookbook/{file}"));
        let jwk = public_jwk(&doc["input"]["key"]);
        let token = doc["output"]["compact"].as_str().unwrap();
        let answer = jose.ask(&json!({"op": "jws", "token": token, "jwk": jwk}));
        let facts = Facts::for_vector(token, Some(&jwk), None);
        r.compare(
            &format!("rfc7520 {file}"),
            facts,
            ours_with_jwk(&jwk, token),
            jwt_with_value(&jwk, token),
            verdict(answer),
        );
    }

    // Raw signatures: the engines.
    for (file, alg) in [
        ("ecdsa_secp256r1_sha256_p1363_test", Algorithm::ES256),
        ("ed25519_test", Algorithm::EdDSA),
    ] {
        let doc = load(&format!("wycheproof/{file}.json"));
        for group in doc["testGroups"].as_array().unwrap() {
            let (public, jwk, key) = match alg {
                Algorithm::ES256 => {
                    let point = hex(group["publicKey"]["uncompressed"].as_str().unwrap());
                    let (x, y) = (
                        URL_SAFE_NO_PAD.encode(&point[1..33]),
                        URL_SAFE_NO_PAD.encode(&point[33..]),
                    );
                    let key = jsonwebtoken::DecodingKey::from_ec_components(&x, &y).unwrap();
                    (
                        point,
                        json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                        key,
                    )
                }
                _ => {
                    let pk = hex(group["publicKey"]["pk"].as_str().unwrap());
                    let x = URL_SAFE_NO_PAD.encode(&pk);
                    let key = jsonwebtoken::DecodingKey::from_ed_components(&x).unwrap();
                    (pk, json!({"kty": "OKP", "crv": "Ed25519", "x": x}), key)
                }
            };
            let ours_alg: &dyn aws_lc_rs::signature::VerificationAlgorithm =
                if alg == Algorithm::ES256 {
                    &ECDSA_P256_SHA256_FIXED
                } else {
                    &ED25519
                };
            let theirs = if alg == Algorithm::ES256 {
                jsonwebtoken::Algorithm::ES256
            } else {
                jsonwebtoken::Algorithm::EdDSA
            };
            let cases = group["tests"].as_array().unwrap();
            let requests: Vec<Value> = cases
                .iter()
                .map(|c| json!({"op": "raw", "alg": alg.as_str(), "jwk": jwk, "msg": c["msg"], "sig": c["sig"]}))
                .collect();
            for (case, answer) in cases.iter().zip(jose.ask_many(&requests)) {
                let (msg, sig) = (
                    hex(case["msg"].as_str().unwrap()),
                    hex(case["sig"].as_str().unwrap()),
                );
                let ours = match UnparsedPublicKey::new(ours_alg, &public).verify(&msg, &sig) {
                    Ok(()) => Verdict::Accept,
                    Err(_) => Verdict::Refuse("aws-lc: refused".into()),
                };
                let jwt = match jsonwebtoken::crypto::verify(
                    &URL_SAFE_NO_PAD.encode(&sig),
                    &msg,
                    &key,
                    theirs,
                ) {
                    Ok(true) => Verdict::Accept,
                    other => Verdict::Refuse(format!("jsonwebtoken: {other:?}")),
                };
                let label = format!("{file} tcId {} ({})", case["tcId"], case["comment"]);
                r.compare(&label, Facts::default(), ours, jwt, verdict(answer));
            }
        }
    }

    let mut summary = format!(
        "public vectors: {} cases compared at the signature level; verified by ours {}, jsonwebtoken {}, jose {}",
        r.cases, r.verified[0], r.verified[1], r.verified[2]
    );
    for ((id, peer), n) in &r.rows {
        summary.push_str(&format!("\n  intended difference {id} vs {peer}: {n}"));
    }
    println!("{summary}");
    assert!(
        r.unexplained.is_empty(),
        "{} unexplained:\n{}",
        r.unexplained.len(),
        r.unexplained.join("\n")
    );
    // The signature-level rows are shown here; a row no vector needs is stale.
    for d in DIFFERENCES.iter().filter(|d| d.level == Level::Signature) {
        assert!(
            r.rows.keys().any(|(id, _)| *id == d.id),
            "row {} explains no vector",
            d.id
        );
    }
}
