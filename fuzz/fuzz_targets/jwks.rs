//! JWK and JWKS parsing: arbitrary bytes as a key set, and as one key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::{Algorithm, JsonClaims, Key, Verifier};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Verifier::builder()
        .jwks(data)
        .algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .any_audience()
        .build()
    {
        assert!(v.verify::<JsonClaims>("e30.e30.AAAA").is_err());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = Key::from_jwk(text) {
            let _ = key.algorithm();
        }
        let _ = Key::from_jwk_for(Algorithm::ES256, text);
        let _ = Key::from_jwk_for(Algorithm::HS256, text);
    }
});
