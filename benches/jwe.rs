//! Encrypted tokens (JWE): decrypt + verify against verify alone, for the
//! same ES256 token, per key management algorithm. The JWEs are made here
//! with aws-lc-rs (RSA-OAEP-256, ECDH-ES, ECDH-ES+A128KW; AES-GCM content),
//! and checked to verify before anything is measured.
//!
//! Run: `cargo bench --bench jwe`
//! (`BENCH_QUICK=1` or `-- --test` skips the interleaved ratios.)

mod support;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, UnparsedPublicKey};
use aws_lc_rs::key_wrap::{AES_128, AesKek, KeyWrap};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use support::{quick, ratio};
use tower_jwt_auth::jwe::DecryptionKey;
use tower_jwt_auth::{Algorithm, JsonClaims, Key, Verifier};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn read(file: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "keys", file]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut v).unwrap();
    v
}

/// The compact JWE of `plaintext` with `header`, `encrypted_key` and the
/// content key `cek` (AES-GCM of its length).
fn seal(header: serde_json::Value, encrypted_key: &[u8], cek: &[u8], plaintext: &str) -> String {
    let protected = b64(header.to_string());
    let alg = if cek.len() == 16 {
        &AES_128_GCM
    } else {
        &AES_256_GCM
    };
    let key = LessSafeKey::new(UnboundKey::new(alg, cek).unwrap());
    let iv = random(12);
    let mut buf = plaintext.as_bytes().to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::try_assume_unique_for_key(&iv).unwrap(),
            Aad::from(protected.as_bytes()),
            &mut buf,
        )
        .unwrap();
    format!(
        "{protected}.{}.{}.{}.{}",
        b64(encrypted_key),
        b64(&iv),
        b64(&buf),
        b64(tag.as_ref())
    )
}

/// Concat KDF (RFC 7518 §4.6.2), SHA-256, one round (keys up to 32 bytes).
fn kdf(z: &[u8], alg_id: &str, len: usize) -> Vec<u8> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(z);
    ctx.update(&(alg_id.len() as u32).to_be_bytes());
    ctx.update(alg_id.as_bytes());
    ctx.update(&0u32.to_be_bytes());
    ctx.update(&0u32.to_be_bytes());
    ctx.update(&((len * 8) as u32).to_be_bytes());
    ctx.finish().as_ref()[..len].to_vec()
}

fn rsa_oaep_256(plaintext: &str) -> String {
    let public = PublicEncryptingKey::from_der(&der(&read("rsa.pub"))).unwrap();
    let oaep = OaepPublicEncryptingKey::new(public).unwrap();
    let cek = random(32);
    let mut out = vec![0u8; oaep.ciphertext_size()];
    let ek = oaep
        .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut out, None)
        .unwrap()
        .to_vec();
    let header = json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "rsa", "cty": "JWT"});
    seal(header, &ek, &cek, plaintext)
}

/// ECDH-ES to the P-256 key, direct (`wrap` false) or with A128KW.
fn ecdh_es(plaintext: &str, wrap: bool) -> String {
    let spki = der(&read("p256.pub"));
    let point = &spki[spki.len() - 65..];
    let eph = agreement::PrivateKey::generate(&ECDH_P256).unwrap();
    let epk = eph.compute_public_key().unwrap();
    let epk = epk.as_ref();
    let (alg, alg_id) = match wrap {
        true => ("ECDH-ES+A128KW", "ECDH-ES+A128KW"),
        false => ("ECDH-ES", "A128GCM"),
    };
    let derived = agreement::agree(&eph, UnparsedPublicKey::new(&ECDH_P256, point), (), |z| {
        Ok(kdf(z, alg_id, 16))
    })
    .unwrap();
    let header = json!({
        "alg": alg, "enc": "A128GCM", "kid": "p256", "cty": "JWT",
        "epk": {"kty": "EC", "crv": "P-256", "x": b64(&epk[1..33]), "y": b64(&epk[33..65])},
    });
    if !wrap {
        return seal(header, &[], &derived, plaintext);
    }
    let cek = random(16);
    let mut out = vec![0u8; 24];
    let ek = AesKek::new(&AES_128, &derived)
        .unwrap()
        .wrap(&cek, &mut out)
        .unwrap()
        .to_vec();
    seal(header, &ek, &cek, plaintext)
}

/// 200 runs of `f`.
fn batch(f: &dyn Fn()) -> impl Fn() + '_ {
    move || {
        for _ in 0..200 {
            f();
        }
    }
}

struct Case {
    name: &'static str,
    jwe: String,
}

fn main() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "bench", "aud": "api", "exp": now + 3600, "iat": now});
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let signing = EncodingKey::from_ec_pem(&read("p256.key")).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
    let key = || {
        Key::from_pem(Algorithm::ES256, read("p256.pub"))
            .unwrap()
            .with_kid("k1")
    };
    let plain = Verifier::builder()
        .key(key())
        .audience("api")
        .build()
        .unwrap();
    let decrypting = Verifier::builder()
        .key(key())
        .audience("api")
        .decryption_key(
            DecryptionKey::from_pem(read("rsa.key"))
                .unwrap()
                .with_kid("rsa"),
        )
        .decryption_key(
            DecryptionKey::from_pem(read("p256.key"))
                .unwrap()
                .with_kid("p256"),
        )
        .build()
        .unwrap();
    let cases = [
        Case {
            name: "rsa-oaep-256+a256gcm",
            jwe: rsa_oaep_256(&token),
        },
        Case {
            name: "ecdh-es+a128gcm",
            jwe: ecdh_es(&token, false),
        },
        Case {
            name: "ecdh-es+a128kw+a128gcm",
            jwe: ecdh_es(&token, true),
        },
    ];
    let verify = || {
        black_box(plain.verify::<JsonClaims>(black_box(&token)).unwrap());
    };
    for case in &cases {
        decrypting
            .verify::<JsonClaims>(&case.jwe)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("jwe");
    group.bench_function("verify", |b| b.iter(verify));
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.iter(|| {
                black_box(
                    decrypting
                        .verify::<JsonClaims>(black_box(&case.jwe))
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
    c.final_summary();
    if quick() {
        return;
    }
    // Interleaved: (decrypt + verify) / verify, median of 15 rounds of
    // batches of 200.
    let start = Instant::now();
    for _ in 0..200 {
        verify();
    }
    let verify_us = start.elapsed().as_secs_f64() / 200.0 * 1e6;
    println!(
        "\njwe ratios (decrypt + verify) / verify, ES256 inner token; verify = {verify_us:.1} µs"
    );
    for case in &cases {
        let open = || {
            black_box(
                decrypting
                    .verify::<JsonClaims>(black_box(&case.jwe))
                    .unwrap(),
            );
        };
        let r = ratio(15, batch(&verify), batch(&open));
        println!("  {:<24} {r:.2}x  (~{:.1} µs)", case.name, r * verify_us);
    }
}
