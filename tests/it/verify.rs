//! The verifier on every algorithm: valid tokens pass; tampering, truncation
//! and the wrong key fail. Keys of every supported format load.

use crate::support as common;

use common::*;
use serde_json::json;
use tower_jwt_auth::{Algorithm, AuthError, BuildError, JsonClaims, Key, Verifier};

fn verifier(alg: Algorithm) -> Verifier {
    Verifier::builder()
        .key(verify_key(alg))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

fn verify(v: &Verifier, token: &str) -> Result<tower_jwt_auth::Claims, AuthError> {
    v.verify::<JsonClaims>(token)
}

#[test]
fn every_algorithm_verifies_and_refuses_tampering() {
    for alg in ALL {
        let v = verifier(alg);
        let good = token(alg, &claims());
        let c = verify(&v, &good).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(c.sub(), Some("user-1"), "{alg}");
        assert_eq!(c.get("name").unwrap(), "Ada");

        let parts: Vec<&str> = good.split('.').collect();
        // Tampered payload: same signature over other claims.
        let mut evil = claims();
        evil["sub"] = json!("admin");
        let tampered_payload = format!("{}.{}.{}", parts[0], b64(evil.to_string()), parts[2]);
        assert!(
            matches!(
                verify(&v, &tampered_payload),
                Err(AuthError::InvalidSignature)
            ),
            "{alg}: tampered payload"
        );

        // Tampered signature: flip one bit of the decoded signature.
        let mut sig = base64_decode(parts[2]);
        let mid = sig.len() / 2;
        sig[mid] ^= 0x01;
        let tampered_sig = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
        assert!(
            matches!(verify(&v, &tampered_sig), Err(AuthError::InvalidSignature)),
            "{alg}: tampered signature"
        );

        // Truncated signature.
        let short = format!("{}.{}.{}", parts[0], parts[1], b64(&sig[..sig.len() - 1]));
        assert!(
            matches!(verify(&v, &short), Err(AuthError::InvalidSignature)),
            "{alg}: truncated signature"
        );

        // Signed with another key of the same type.
        let input = format!("{}.{}", parts[0], parts[1]);
        let wrong = format!("{input}.{}", b64(sign_bytes(alg, input.as_bytes(), true)));
        assert!(
            matches!(verify(&v, &wrong), Err(AuthError::InvalidSignature)),
            "{alg}: wrong key"
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[test]
fn tokens_from_jsonwebtoken_verify() {
    // Interoperability: tokens minted by another library.
    use jsonwebtoken::{EncodingKey, Header, encode};
    let cases = [
        (
            Algorithm::RS256,
            jsonwebtoken::Algorithm::RS256,
            EncodingKey::from_rsa_pem(&read("rsa.key")).unwrap(),
        ),
        (
            Algorithm::PS512,
            jsonwebtoken::Algorithm::PS512,
            EncodingKey::from_rsa_pem(&read("rsa.key")).unwrap(),
        ),
        (
            Algorithm::ES256,
            jsonwebtoken::Algorithm::ES256,
            EncodingKey::from_ec_pem(&read("p256.key")).unwrap(),
        ),
        (
            Algorithm::ES384,
            jsonwebtoken::Algorithm::ES384,
            EncodingKey::from_ec_pem(&read("p384.key")).unwrap(),
        ),
        (
            Algorithm::EdDSA,
            jsonwebtoken::Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&read("ed25519.key")).unwrap(),
        ),
        (
            Algorithm::HS384,
            jsonwebtoken::Algorithm::HS384,
            EncodingKey::from_secret(SECRET),
        ),
    ];
    for (ours, theirs, key) in cases {
        let mut header = Header::new(theirs);
        header.kid = Some("k1".into());
        let t = encode(&header, &claims(), &key).unwrap();
        verify(&verifier(ours), &t).unwrap_or_else(|e| panic!("{ours}: {e}"));
    }
}

#[test]
fn key_formats() {
    let pkcs1 = Key::from_pem(Algorithm::RS256, read("rsa.pkcs1.pub")).unwrap();
    let cert = Key::from_pem(Algorithm::RS256, read("rsa.crt")).unwrap();
    let der = Key::from_spki_der(Algorithm::RS256, &pem_der(&read("rsa.pub"))).unwrap();
    for key in [pkcs1, cert, der] {
        let v = Verifier::builder()
            .key(key.with_kid("k1"))
            .any_audience()
            .build()
            .unwrap();
        verify(&v, &token(Algorithm::RS256, &claims())).unwrap();
    }
}

#[test]
fn unfit_keys_are_build_errors() {
    let cases: Vec<(&str, Result<Key, BuildError>)> = vec![
        (
            "rsa-1024",
            Key::from_pem(Algorithm::RS256, read("rsa1024.pub")),
        ),
        (
            "rsa as ES256",
            Key::from_pem(Algorithm::ES256, read("rsa.pub")),
        ),
        (
            "p256 as ES384",
            Key::from_pem(Algorithm::ES384, read("p256.pub")),
        ),
        (
            "ed25519 as ES256",
            Key::from_pem(Algorithm::ES256, read("ed25519.pub")),
        ),
        (
            "p384 as RS256",
            Key::from_pem(Algorithm::RS256, read("p384.pub")),
        ),
        (
            "rsa pem as HS256 secret",
            Key::from_pem(Algorithm::HS256, read("rsa.pub")),
        ),
        (
            "private key",
            Key::from_pem(Algorithm::RS256, read("rsa.key")),
        ),
        ("short secret", Key::hmac(Algorithm::HS512, [1u8; 32])),
        ("hmac for RS256", Key::hmac(Algorithm::RS256, [1u8; 64])),
        ("garbage", Key::from_pem(Algorithm::RS256, b"hello")),
    ];
    for (name, result) in cases {
        let err = result.err().unwrap_or_else(|| panic!("{name} accepted"));
        assert!(matches!(err, BuildError::InvalidKey(_)), "{name}: {err}");
    }
}

#[test]
fn jwk_and_jwks_keys() {
    // Build a JWK for the RSA test key from its DER modulus and exponent.
    let jwks = json!({"keys": [
        rsa_jwk("k1", Some("RS256")),
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "kid": "sym", "k": b64(SECRET)},
    ]});
    let v = Verifier::builder()
        .jwks(jwks.to_string())
        .any_audience()
        .build()
        .unwrap();
    verify(&v, &token(Algorithm::RS256, &claims())).unwrap();
    // The oct member is never used, so an HS256 token with kid "sym" fails.
    let header = json!({"alg": "HS256", "kid": "sym"}).to_string();
    let hs = token_raw(Algorithm::HS256, &header, &claims().to_string());
    assert!(verify(&v, &hs).is_err());

    // A single JWK without alg, bound by the caller.
    let single = rsa_jwk("k1", None).to_string();
    assert!(Key::from_jwk(&single).is_err());
    let key = Key::from_jwk_for(Algorithm::PS256, &single).unwrap();
    let v = Verifier::builder().key(key).any_audience().build().unwrap();
    verify(&v, &token(Algorithm::PS256, &claims())).unwrap();
    assert!(verify(&v, &token(Algorithm::RS256, &claims())).is_err());

    // A JWKS with nothing usable is a build error that says why.
    let bad = json!({"keys": [{"kty": "oct", "k": "AAAA"}]}).to_string();
    let err = Verifier::builder()
        .jwks(bad)
        .any_audience()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("symmetric"), "{err}");
}

/// The RSA test key as a JWK (n and e read from the PKCS#1 DER).
pub fn rsa_jwk(kid: &str, alg: Option<&str>) -> serde_json::Value {
    let der = pem_der(&read("rsa.pkcs1.pub"));
    // SEQUENCE { INTEGER n, INTEGER e } with long-form lengths.
    let (n, rest) = der_integer(&der[4..]);
    let (e, _) = der_integer(rest);
    let mut jwk = json!({"kty": "RSA", "kid": kid, "n": b64(n), "e": b64(e)});
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    jwk
}

fn der_integer(input: &[u8]) -> (&[u8], &[u8]) {
    assert_eq!(input[0], 0x02);
    let (len, body) = if input[1] < 0x80 {
        (input[1] as usize, &input[2..])
    } else {
        let n = (input[1] & 0x7f) as usize;
        let len = input[2..2 + n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &input[2 + n..])
    };
    let value = &body[..len];
    let value = if value[0] == 0 { &value[1..] } else { value };
    (value, &body[len..])
}

#[test]
fn allow_list_and_key_binding() {
    // A key bound to RS256 never verifies PS256, even with the same RSA key.
    let v = verifier(Algorithm::RS256);
    let ps = token(Algorithm::PS256, &claims());
    assert!(matches!(
        verify(&v, &ps),
        Err(AuthError::AlgorithmNotAllowed(_))
    ));

    // Explicit allow-list narrower than the keys: a build error.
    let err = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .algorithms([Algorithm::ES256])
        .any_audience()
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidConfig(_)));

    // Allowed, but the kid's key is bound to another algorithm.
    let v = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .key(verify_key(Algorithm::ES256).with_kid("ec"))
        .any_audience()
        .build()
        .unwrap();
    let header = json!({"alg": "ES256", "kid": "k1"}).to_string();
    let t = token_raw(Algorithm::ES256, &header, &claims().to_string());
    assert!(matches!(verify(&v, &t), Err(AuthError::NoMatchingKey)));

    // A token without kid is tried against keys of its algorithm only.
    let header = json!({"alg": "ES256"}).to_string();
    let t = token_raw(Algorithm::ES256, &header, &claims().to_string());
    verify(&v, &t).unwrap();
}

#[test]
fn builder_policies() {
    let err = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("audience"), "{err}");
    let err = Verifier::builder().any_audience().build().unwrap_err();
    assert!(matches!(err, BuildError::NoKeys));
    let err = Verifier::builder()
        .key(verify_key(Algorithm::RS256))
        .any_audience()
        .leeway(std::time::Duration::from_secs(3600))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidConfig(_)));
}

#[test]
fn claim_types_and_shapes() {
    #[derive(Clone, serde::Deserialize)]
    struct Mine {
        name: String,
        roles: Vec<String>,
    }
    let v = verifier(Algorithm::ES256);
    let c = v
        .verify::<Mine>(&token(Algorithm::ES256, &claims()))
        .unwrap();
    assert_eq!(c.name, "Ada");
    assert_eq!(c.roles, ["user"]);
    assert_eq!(c.aud(), ["api"]);
    assert!(c.json().contains("\"roles\""));

    #[derive(Clone, Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct NeedsTenant {
        tenant: String,
    }
    let err = v
        .verify::<NeedsTenant>(&token(Algorithm::ES256, &claims()))
        .unwrap_err();
    assert!(matches!(err, AuthError::ClaimsShape(_)));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn two_static_keys_with_one_kid_are_a_build_error() {
    let err = Verifier::builder()
        .key(
            Key::hmac(Algorithm::HS256, [1u8; 32])
                .unwrap()
                .with_kid("k"),
        )
        .key(
            Key::hmac(Algorithm::HS256, [2u8; 32])
                .unwrap()
                .with_kid("k"),
        )
        .any_audience()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("\"k\""), "{err}");
    // Distinct kids are fine.
    assert!(
        Verifier::builder()
            .key(
                Key::hmac(Algorithm::HS256, [1u8; 32])
                    .unwrap()
                    .with_kid("a")
            )
            .key(
                Key::hmac(Algorithm::HS256, [2u8; 32])
                    .unwrap()
                    .with_kid("b")
            )
            .any_audience()
            .build()
            .is_ok()
    );
}

/// A 1024-byte signature is 1366 base64url characters, whose last group
/// decodes into 1026 bytes of room: the largest key must still verify.
#[test]
fn rsa_8192_signatures_verify() {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let key = Key::from_pem(Algorithm::RS256, read("rsa8192.pub"))
        .unwrap()
        .with_kid("big");
    let verifier = Verifier::builder().key(key).any_audience().build().unwrap();
    let pair = RsaKeyPair::from_pkcs8(&pem_der(&read("rsa8192.key"))).unwrap();
    let header = json!({"alg": "RS256", "kid": "big"}).to_string();
    let input = format!(
        "{}.{}",
        b64(header),
        b64(json!({"sub": "big", "exp": now() + 60}).to_string())
    );
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    assert_eq!(sig.len(), 1024);
    let token = format!("{input}.{}", b64(&sig));
    let claims: JsonClaims = verifier
        .verify::<JsonClaims>(&token)
        .unwrap()
        .custom()
        .clone();
    assert_eq!(claims["sub"], "big");
    // One byte more than any RSA-8192 signature: refused.
    let too_long = format!("{input}.{}", b64([1u8; 1025]));
    assert!(matches!(
        verifier.verify::<JsonClaims>(&too_long),
        Err(AuthError::InvalidSignature)
    ));
}

#[test]
fn a_multi_tenant_template_routes_among_several_issuers() {
    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let entra = Verifier::builder()
        .key(verify_key(Algorithm::HS256))
        .issuer(TEMPLATE)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let both = Verifier::any_of([verifier(Algorithm::HS256), entra]).unwrap();
    let claims = |iss: &str, tid: &str| json!({"iss": iss, "tid": tid, "aud": AUDIENCE, "exp": 4102444800u64});
    let tenant_iss = TEMPLATE.replace("{tenantid}", TID);
    let plain = token(Algorithm::HS256, &claims(ISSUER, TID));
    let tenant = token(Algorithm::HS256, &claims(&tenant_iss, TID));
    let other = token(Algorithm::HS256, &claims(&tenant_iss, "another-tenant"));
    assert!(both.verify::<JsonClaims>(&plain).is_ok());
    assert!(both.verify::<JsonClaims>(&tenant).is_ok());
    assert!(matches!(
        both.verify::<JsonClaims>(&other),
        Err(AuthError::InvalidIssuer)
    ));
    // The template string itself is never an issuer.
    let literal = token(Algorithm::HS256, &claims(TEMPLATE, TID));
    assert!(both.verify::<JsonClaims>(&literal).is_err());
    // Two templates in one verifier of a list: not routable.
    let two = Verifier::builder()
        .key(verify_key(Algorithm::HS256))
        .issuer(TEMPLATE)
        .issuer("https://sts.windows.net/{tenantid}/")
        .audience(AUDIENCE)
        .build()
        .unwrap();
    assert!(matches!(
        Verifier::any_of([two]),
        Err(BuildError::InvalidConfig(_))
    ));
}

/// PEM as people paste it, and DER as tools write it: each form that
/// loaded before keeps loading, whatever parses it.
#[test]
fn pem_and_der_in_the_forms_found_in_the_wild() {
    use base64::Engine;
    let std_b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let armour = |label: &str, der: &[u8], width: usize, eol: &str| {
        let body = std_b64(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----{eol}{}{eol}-----END {label}-----{eol}",
            lines.join(eol)
        )
    };
    let spki = pem_der(&read("rsa.pub"));
    let accepted = [
        ("64 columns, LF", armour("PUBLIC KEY", &spki, 64, "\n")),
        ("76 columns (MIME)", armour("PUBLIC KEY", &spki, 76, "\n")),
        ("one line", armour("PUBLIC KEY", &spki, 4096, "\n")),
        ("CRLF", armour("PUBLIC KEY", &spki, 64, "\r\n")),
        (
            "explanatory text around it",
            format!(
                "Our signing key, rotated 2025-01:\n{}\nnext block follows\n",
                armour("PUBLIC KEY", &spki, 64, "\n")
            ),
        ),
        (
            "a certificate chain (the first certificate's key)",
            format!(
                "{}{}",
                String::from_utf8(read("rsa.crt")).unwrap(),
                String::from_utf8(read("rsa.crt")).unwrap()
            ),
        ),
        (
            "PKCS#1 RSA PUBLIC KEY",
            String::from_utf8(read("rsa.pkcs1.pub")).unwrap(),
        ),
    ];
    for (what, pem) in accepted {
        let key = Key::from_pem(Algorithm::RS256, &pem).unwrap_or_else(|e| panic!("{what}: {e}"));
        let v = Verifier::builder()
            .key(key.with_kid("k1"))
            .any_audience()
            .build()
            .unwrap();
        verify(&v, &token(Algorithm::RS256, &claims())).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    // An EC certificate (the TLS test server's), as DER inside PEM.
    let cert = std::fs::read(format!(
        "{}/tests/data/tls/server.der",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let pem = armour("CERTIFICATE", &cert, 64, "\n");
    assert_eq!(
        Key::from_pem(Algorithm::ES256, &pem).unwrap().algorithm(),
        Algorithm::ES256
    );
    assert!(Key::from_pem(Algorithm::ES384, &pem).is_err());
}

/// Refusals of keys that do not fit say what is wrong.
#[test]
fn unfit_pem_and_der_are_refused_with_a_reason() {
    use base64::Engine;
    let der = |b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    let secp256k1 = der(
        "MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAECKuVWDn/oaGiOGOGefNBANCVyGzVAahy4ImAALEJFKI0/K4wnEvSxYIvQq29zqoUPXSWiRFVrdRp3Vtl5idqyQ==",
    );
    let x25519 = der("MCowBQYDK2VuAyEA3isaNNYZXOGTbUrPXJQO+U31WPKkrfKLFXsPmk/x1DA=");
    let rsa = pem_der(&read("rsa.pub"));
    let mut trailing = rsa.clone();
    trailing.push(0);
    let truncated = &rsa[..rsa.len() - 1];
    let p256 = pem_der(&read("p256.pub"));
    let cases: Vec<(&str, Result<Key, BuildError>, &str)> = vec![
        (
            "secp256k1",
            Key::from_spki_der(Algorithm::ES256, &secp256k1),
            "curve",
        ),
        (
            "X25519",
            Key::from_spki_der(Algorithm::EdDSA, &x25519),
            "unsupported public key type",
        ),
        (
            "P-256 as ES384",
            Key::from_spki_der(Algorithm::ES384, &p256),
            "cannot verify ES384",
        ),
        (
            "RSA as EdDSA",
            Key::from_spki_der(Algorithm::EdDSA, &rsa),
            "cannot verify EdDSA",
        ),
        (
            "1024-bit RSA",
            Key::from_pem(Algorithm::RS256, read("rsa1024.pub")),
            "at least 2048 bits",
        ),
        (
            "trailing bytes",
            Key::from_spki_der(Algorithm::RS256, &trailing),
            "",
        ),
        (
            "truncated",
            Key::from_spki_der(Algorithm::RS256, truncated),
            "",
        ),
        ("empty", Key::from_spki_der(Algorithm::RS256, &[]), ""),
        (
            "private key PEM",
            Key::from_pem(Algorithm::RS256, read("rsa.key")),
            "private key",
        ),
        (
            "unknown PEM label",
            Key::from_pem(
                Algorithm::RS256,
                "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n",
            ),
            "unsupported PEM block",
        ),
        ("not PEM", Key::from_pem(Algorithm::RS256, "hello"), "PEM"),
        (
            "bad base64",
            Key::from_pem(
                Algorithm::RS256,
                "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            ),
            "",
        ),
        (
            "no END line",
            Key::from_pem(Algorithm::RS256, "-----BEGIN PUBLIC KEY-----\nMAA=\n"),
            "",
        ),
        (
            "RSA PUBLIC KEY for ES256",
            Key::from_pem(Algorithm::ES256, read("rsa.pkcs1.pub")),
            "cannot verify ES256",
        ),
    ];
    for (what, result, says) in cases {
        let err = result.err().unwrap_or_else(|| panic!("{what} accepted"));
        assert!(matches!(err, BuildError::InvalidKey(_)), "{what}: {err}");
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
}
