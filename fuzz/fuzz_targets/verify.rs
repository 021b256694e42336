//! Token parsing and verification. Mode 0: the input is the token. Mode 1:
//! the input is `header \0 payload`, signed with our HMAC key, so the
//! header rules and the claims step see arbitrary JSON behind a valid MAC.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::{Algorithm, JsonClaims, Key, Verifier};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/keys/");
        let pem = |f: &str| std::fs::read(format!("{keys}{f}")).unwrap();
        Verifier::builder()
            .key(Key::from_pem(Algorithm::RS256, pem("rsa.pub")).unwrap().with_kid("rs"))
            .key(Key::from_pem(Algorithm::ES256, pem("p256.pub")).unwrap().with_kid("ec"))
            .key(Key::from_pem(Algorithm::EdDSA, pem("ed25519.pub")).unwrap())
            .key(Key::hmac(Algorithm::HS256, SECRET).unwrap().with_kid("hs"))
            .issuer("https://issuer.test")
            .audience("api")
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            // Unsigned input can never verify.
            assert!(verifier().verify::<JsonClaims>(token).is_err());
        }
        return;
    }
    let (header, payload) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b"{}"[..]),
    };
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
    let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    if let Ok(claims) = verifier().verify::<JsonClaims>(&token) {
        // Accepted only as signed: HS256 named, and the claims are the payload.
        let h: serde_json::Value = serde_json::from_slice(header).unwrap();
        assert_eq!(h["alg"], "HS256");
        let p: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload).unwrap();
        assert_eq!(claims.custom(), &p);
    }
});
