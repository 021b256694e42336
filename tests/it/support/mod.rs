//! Test helpers: the test keys in `tests/data/keys`, and a signer that can
//! put any header and payload bytes into a token; in submodules, processes
//! and captures the tests drive.
#![allow(dead_code)] // each test module uses part of it

pub mod apt;
pub mod example;
pub mod logs;
pub mod oidc;
pub mod pip;
pub mod pki;
pub mod raw_http;
pub mod redis;
pub mod ws_client;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tower_jwt_auth::{Algorithm, Key, Verifier};

pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "api";

pub const ALL: [Algorithm; 13] = Algorithm::ALL;

pub fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The key file stem used for an algorithm (`other` picks a second RSA key).
pub fn stem(alg: Algorithm, other: bool) -> &'static str {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            if other {
                "rsa2"
            } else {
                "rsa"
            }
        }
        Algorithm::ES256 => "p256",
        Algorithm::ES384 => "p384",
        Algorithm::ES512 => "p521",
        Algorithm::EdDSA => "ed25519",
        _ => "hmac",
    }
}

/// Our verification key for `alg`, with kid `k1`.
pub fn verify_key(alg: Algorithm) -> Key {
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Key::hmac(alg, SECRET),
        _ => Key::from_pem(alg, read(&format!("{}.pub", stem(alg, false)))),
    };
    key.unwrap().with_kid("k1")
}

/// A verifier of our ES256 tokens for [`ISSUER`] and [`AUDIENCE`].
pub fn es256_verifier() -> Verifier {
    Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

/// Signs `message` with the private key for `alg` (`other`: a different key).
pub fn sign_bytes(alg: Algorithm, message: &[u8], other: bool) -> Vec<u8> {
    let rng = SystemRandom::new();
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        let secret: &[u8] = if other {
            b"another secret of sixty-four bytes for the wrong-key tests......"
        } else {
            SECRET
        };
        let h = match alg {
            Algorithm::HS256 => aws_lc_rs::hmac::HMAC_SHA256,
            Algorithm::HS384 => aws_lc_rs::hmac::HMAC_SHA384,
            _ => aws_lc_rs::hmac::HMAC_SHA512,
        };
        return aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(h, secret), message)
            .as_ref()
            .to_vec();
    }
    let der = if other
        && !matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) {
        // A freshly generated key of the right type stands in for "another key".
        return sign_with_fresh(alg, message);
    } else {
        pem_der(&read(&format!("{}.key", stem(alg, other))))
    };
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
            let padding: &'static dyn signature::RsaEncoding = match alg {
                Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                _ => &signature::RSA_PSS_SHA512,
            };
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &rng, message, &mut sig).unwrap();
            sig
        }
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
            let pair = EcdsaKeyPair::from_pkcs8(ecdsa_alg(alg), &der).unwrap();
            pair.sign(&rng, message).unwrap().as_ref().to_vec()
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
            pair.sign(message).as_ref().to_vec()
        }
        _ => unreachable!(),
    }
}

fn ecdsa_alg(alg: Algorithm) -> &'static signature::EcdsaSigningAlgorithm {
    match alg {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        _ => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn sign_with_fresh(alg: Algorithm, message: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match alg {
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::generate().unwrap();
            let _ = pair.public_key();
            pair.sign(message).as_ref().to_vec()
        }
        _ => {
            let pair = EcdsaKeyPair::generate(ecdsa_alg(alg)).unwrap();
            pair.sign(&rng, message).unwrap().as_ref().to_vec()
        }
    }
}

/// A token with exactly these header and payload JSON texts.
pub fn token_raw(alg: Algorithm, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = sign_bytes(alg, input.as_bytes(), false);
    format!("{input}.{}", b64(sig))
}

/// A token for `alg` with kid `k1` and these claims.
pub fn token(alg: Algorithm, claims: &Value) -> String {
    let header = json!({"alg": alg.as_str(), "typ": "JWT", "kid": "k1"});
    token_raw(alg, &header.to_string(), &claims.to_string())
}

/// Valid claims: issuer, audience, an hour to live.
pub fn claims() -> Value {
    json!({
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 3600,
        "iat": now(),
        "name": "Ada",
        "roles": ["user"],
    })
}

/// An HS256 token over `header` and `claims`, MAC'd with `secret`.
pub fn hs256_with(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    format!(
        "{input}.{}",
        b64(aws_lc_rs::hmac::sign(&key, input.as_bytes()))
    )
}

/// The modulus and exponent of a PKCS#1 `RSAPublicKey` (just enough DER).
pub fn rsa_n_e(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn tlv(d: &[u8]) -> (&[u8], &[u8]) {
        let (len, skip) = if d[1] & 0x80 == 0 {
            (d[1] as usize, 2)
        } else {
            let n = (d[1] & 0x7f) as usize;
            (
                d[2..2 + n].iter().fold(0, |a, b| a << 8 | *b as usize),
                2 + n,
            )
        };
        (&d[skip..skip + len], &d[skip + len..])
    }
    let (seq, _) = tlv(der);
    let (n, rest) = tlv(seq);
    let (e, _) = tlv(rest);
    let strip = |v: &[u8]| {
        v.iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    (strip(n), strip(e))
}
