//! The scanner for plain JSON payloads against the strict `serde_json`
//! read it stands in front of: whenever the scanner answers, the strict
//! read must accept the same payload with the same registered claims
//! (src/claims/plain.rs). Any input that is not UTF-8 is skipped: payloads
//! reach the reader as `str`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = std::str::from_utf8(data) {
        assert!(
            tower_jwt_auth::fuzzing::payload_read_agrees(payload),
            "the scanner and the strict read disagree on {payload:?}"
        );
    }
});
