//! The compact JWE parser and decryption (src/jwe) through the public
//! verifier, with RSA and EC decryption keys: any input is refused with an
//! error, never a panic, and nothing is accepted (the fuzzer cannot sign
//! the inner JWS with the verifier's ES256 key). Seeds in fuzz/corpus/jwe
//! are JWEs to these keys with every accepted `alg` and `enc`, around a
//! junk inner token. Any input that is not UTF-8 is skipped: tokens reach
//! the verifier as `str`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::jwe::{DecryptionKey, EncryptionMode};
use tower_jwt_auth::{Algorithm, JsonClaims, Key, Verifier};

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let keys = [
            ("rsa", include_str!("../../tests/data/keys/rsa.key")),
            ("p256", include_str!("../../tests/data/keys/p256.key")),
            ("p384", include_str!("../../tests/data/keys/p384.key")),
        ];
        Verifier::builder()
            .key(Key::from_pem(Algorithm::ES256, include_str!("../../tests/data/keys/p256.pub")).unwrap())
            .decryption_keys(
                keys.iter()
                    .map(|(kid, pem)| DecryptionKey::from_pem(pem).unwrap().with_kid(*kid)),
            )
            .encryption(EncryptionMode::Required)
            .any_audience()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        assert!(verifier().verify::<JsonClaims>(token).is_err(), "accepted {token:?}");
    }
});
