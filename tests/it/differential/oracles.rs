//! The verifiers compared, configured alike: one key per algorithm (kid =
//! the algorithm in lower case), issuer `https://issuer.test`, audience
//! `api`, `exp` required, `nbf` checked, the same leeway.
//!
//! jsonwebtoken verifies with one key it is handed; the glue here picks it
//! as our `KeySet` does (`kid` first, then the key bound to the `alg`), so
//! only parsing, signature and claim rules are compared. jose gets the same
//! selection in `tests/oidc/differential.mjs`.
//!
//! Shared with the cargo-fuzz target `fuzz/fuzz_targets/differential.rs`
//! (included by path).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use jsonwebtoken::{DecodingKey, Validation};
use tower_jwt_auth::{Algorithm, JsonClaims, Key, Verifier};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "api";
/// The HMAC secret of the test keys (tests/common).
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Accepted, or refused with the verifier's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Refuse(String),
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Accept)
    }
}

/// The kid of our test key for `alg`.
pub fn kid(alg: Algorithm) -> String {
    alg.as_str().to_ascii_lowercase()
}

/// The public key file (in tests/data/keys) for `alg`; `None` for HMAC.
pub fn key_file(alg: Algorithm) -> Option<&'static str> {
    Some(match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => return None,
        Algorithm::ES256 => "p256.pub",
        Algorithm::ES384 => "p384.pub",
        Algorithm::ES512 => "p521.pub",
        Algorithm::EdDSA => "ed25519.pub",
        _ => "rsa.pub",
    })
}

/// The public key PEM for `alg` (`None` for HMAC).
pub fn pem(keys_dir: &str, alg: Algorithm) -> Option<String> {
    let file = key_file(alg)?;
    let path = format!("{keys_dir}/{file}");
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// Our verifier, one per leeway (built on first use).
pub struct Ours {
    keys_dir: String,
    verifiers: Mutex<BTreeMap<i64, Verifier>>,
}

impl Ours {
    pub fn new(keys_dir: &str) -> Ours {
        Ours {
            keys_dir: keys_dir.to_owned(),
            verifiers: Mutex::new(BTreeMap::new()),
        }
    }

    fn build(&self, leeway: i64) -> Verifier {
        let keys = Algorithm::ALL.iter().map(|&alg| {
            match pem(&self.keys_dir, alg) {
                Some(pem) => Key::from_pem(alg, pem),
                None => Key::hmac(alg, SECRET),
            }
            .unwrap()
            .with_kid(kid(alg))
        });
        Verifier::builder()
            .keys(keys)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .leeway(std::time::Duration::from_secs(leeway as u64))
            .build()
            .unwrap()
    }

    pub fn verifier(&self, leeway: i64) -> Verifier {
        let mut map = self.verifiers.lock().unwrap();
        map.entry(leeway)
            .or_insert_with(|| self.build(leeway))
            .clone()
    }

    pub fn verify(&self, token: &str, leeway: i64) -> Verdict {
        match self.verifier(leeway).verify::<JsonClaims>(token) {
            Ok(_) => Verdict::Accept,
            Err(e) => Verdict::Refuse(format!("{}: {e}", e.reason())),
        }
    }
}

/// jsonwebtoken 11 (aws-lc-rs backend) with the same keys and settings.
pub struct Jwt {
    keys: Vec<(String, jsonwebtoken::Algorithm, DecodingKey)>,
}

impl Jwt {
    pub fn new(keys_dir: &str) -> Jwt {
        let mut keys = Vec::new();
        for alg in Algorithm::ALL {
            // ES512 (P-521) is not implemented by jsonwebtoken 11.
            let Ok(theirs) = alg.as_str().parse::<jsonwebtoken::Algorithm>() else {
                continue;
            };
            let key = match pem(keys_dir, alg) {
                None => DecodingKey::from_secret(SECRET),
                Some(pem) => match alg {
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
                    _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
                }
                .unwrap(),
            };
            keys.push((kid(alg), theirs, key));
        }
        Jwt { keys }
    }

    pub fn verify(&self, token: &str, leeway: i64) -> Verdict {
        let refuse = |e: &dyn std::fmt::Display| Verdict::Refuse(format!("jsonwebtoken: {e}"));
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            Err(e) => return refuse(&e),
        };
        let named: Vec<_> = match &header.kid {
            Some(kid) => self.keys.iter().filter(|(k, ..)| k == kid).collect(),
            None => self.keys.iter().collect(),
        };
        if named.is_empty() {
            return refuse(&"unknown kid");
        }
        let Some((_, alg, key)) = named.into_iter().find(|(_, a, _)| *a == header.alg) else {
            return refuse(&"no key for the alg");
        };
        let mut validation = Validation::new(*alg);
        validation.leeway = leeway as u64;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &validation,
        ) {
            Ok(_) => Verdict::Accept,
            Err(e) => refuse(&e),
        }
    }
}

/// Seconds since the epoch, as jsonwebtoken and jose read the clock.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
