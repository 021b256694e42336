//! Differential fuzzing: the same token through our verifier and through
//! jsonwebtoken 11, in process, with the same keys and settings (see
//! tests/it/differential/oracles.rs). Whenever they answer differently, a row
//! of the table of intended differences (tests/it/differential/table.rs, the
//! one the test suite enforces) must explain it; otherwise this target
//! crashes and prints both answers.
//!
//! The first byte picks the mode. 0: the rest is the token. 1 and 2: the
//! rest is `header \0 payload`, put in a token signed with our HS256 (1) or
//! HS512 (2) key, so arbitrary JOSE headers and claims reach the parsers
//! behind a valid signature.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/it/differential/facts.rs"]
mod facts;
#[path = "../../tests/it/differential/oracles.rs"]
mod oracles;
#[path = "../../tests/it/differential/table.rs"]
mod table;

use facts::Facts;
use oracles::{Jwt, Ours, SECRET, now_secs};
use table::{Peer, explain};

const LEEWAY: i64 = 30;
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/keys");

fn verifiers() -> &'static (Ours, Jwt) {
    static V: OnceLock<(Ours, Jwt)> = OnceLock::new();
    V.get_or_init(|| (Ours::new(KEYS), Jwt::new(KEYS)))
}

fn signed(alg: aws_lc_rs::hmac::Algorithm, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let sig = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(alg, SECRET), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let token = match mode % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        },
        m => {
            let (header, payload) = match rest.iter().position(|b| *b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b"{}"[..]),
            };
            let alg = if m == 1 { aws_lc_rs::hmac::HMAC_SHA256 } else { aws_lc_rs::hmac::HMAC_SHA512 };
            signed(alg, header, payload)
        }
    };
    let (ours, jwt) = verifiers();
    let now = now_secs();
    let a = ours.verify(&token, LEEWAY);
    let b = jwt.verify(&token, LEEWAY);
    if now_secs() != now {
        return; // the clock ticked between the two: no common "now"
    }
    if a.accepted() == b.accepted() {
        return;
    }
    let facts = Facts::new(&token, now, LEEWAY);
    if facts.sub_second_edge() {
        return;
    }
    if explain(&facts, Peer::Jsonwebtoken, &a).is_none() {
        panic!(
            "unexplained disagreement with jsonwebtoken\n token: {token:?}\n header: {:?}\n payload: {:?}\n ours: {a:?}\n jsonwebtoken: {b:?}",
            facts.header.bytes.as_deref().map(String::from_utf8_lossy),
            facts.payload.bytes.as_deref().map(String::from_utf8_lossy),
        );
    }
});
