//! Encrypted access tokens: compact JWE (RFC 7516, algorithms of RFC 7518)
//! holding a signed JWT (nested JWT, RFC 7519 §5.2).
//!
//! Give a verifier its decryption keys with
//! [`VerifierBuilder::decryption_key`](crate::VerifierBuilder::decryption_key)
//! and choose an [`EncryptionMode`]. Decryption is a step before
//! verification, not a second verifier: the decrypted payload must be a
//! compact JWS, which then goes through every check a plain token gets
//! (algorithm allow-list, key, signature, claims). An unsigned payload is
//! refused: with public-key encryption anyone can encrypt to you, so
//! encryption alone says nothing about who made the token.
//!
//! | | accepted | refused |
//! |---|---|---|
//! | `alg` | `RSA-OAEP-256`, `RSA-OAEP`, `ECDH-ES`, `ECDH-ES+A128KW`, `ECDH-ES+A256KW` (P-256, P-384, P-521) | `RSA1_5` (Bleichenbacher), `PBES2-*` (the `p2c` work factor), `dir`, `A*KW` and `A*GCMKW` (shared keys), anything else |
//! | `enc` | `A128GCM`, `A256GCM`, `A128CBC-HS256`, `A256CBC-HS512` | anything else |
//! | header | `kid`, `cty` `JWT` or `*+jwt` (oidc-provider's `at+jwt`), `epk`, `apu`, `apv` | `zip` (decompression bombs), any `crit`, repeated members |
//!
//! Before any private-key work a token is also refused for an empty
//! `encrypted_key` where one is required (or a non-empty one for direct
//! `ECDH-ES`), an `epk` not on its curve (invalid-curve attacks), an IV or
//! a tag of the wrong length. A failed key unwrap does not stop early: it
//! goes on with a random key and fails at the tag, like a wrong tag (RFC
//! 7516 §11.5), and every such failure is one answer,
//! [`AuthError::DecryptionFailed`].
//!
//! ```
//! use tower_jwt_auth::{Algorithm, Key, Verifier};
//! use tower_jwt_auth::jwe::{DecryptionKey, EncryptionMode};
//!
//! // Your private key (here from a private JWKS; PEM works too).
//! let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"enc-1","use":"enc",
//!   "x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
//!   "y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
//!   "d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}]}"#;
//! let verifier = Verifier::builder()
//!     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
//!     .decryption_keys(DecryptionKey::from_jwks(jwks)?)
//!     .encryption(EncryptionMode::Required)
//!     .any_audience()
//!     .build()?;
//! # let _ = verifier;
//! # Ok::<(), tower_jwt_auth::BuildError>(())
//! ```

mod key;
mod parse;

pub(crate) use parse::is_jwe;

pub use key::DecryptionKey;

use std::borrow::Cow;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ParsedPublicKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{self, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrap};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256};

use self::key::Secret;
use self::parse::{Enc, Jwe, KeyAlg};
use crate::error::AuthError;

/// Whether a verifier accepts encrypted tokens, plain ones, or both.
///
/// ```
/// use tower_jwt_auth::jwe::EncryptionMode;
/// use tower_jwt_auth::{Algorithm, Key, Verifier};
///
/// // Encryption without decryption keys cannot be built.
/// let built = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .encryption(EncryptionMode::Required)
///     .any_audience()
///     .build();
/// assert!(built.is_err());
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptionMode {
    /// Only encrypted tokens (JWE); a plain JWS is refused
    /// ([`AuthError::EncryptionRequired`]).
    Required,
    /// Encrypted and plain tokens (the default when the verifier has
    /// decryption keys).
    Allowed,
    /// Only plain tokens; a JWE is refused
    /// ([`AuthError::Encrypted`]), as without keys.
    Off,
}

/// A verifier's decryption keys and mode.
pub(crate) struct Decrypter {
    keys: Vec<DecryptionKey>,
    mode: EncryptionMode,
}

impl Decrypter {
    pub(crate) fn new(keys: Vec<DecryptionKey>, mode: EncryptionMode) -> Self {
        Decrypter { keys, mode }
    }

    /// Whether encrypted tokens are opened at all (not
    /// [`EncryptionMode::Off`]).
    pub(crate) fn opens(&self) -> bool {
        self.mode != EncryptionMode::Off
    }

    /// The compact JWS to verify: `token` itself if it is one (and the mode
    /// allows plain tokens), or the JWS a JWE holds.
    pub(crate) fn open<'t>(&self, token: &'t str) -> Result<Cow<'t, str>, AuthError> {
        if !is_jwe(token) {
            if self.mode == EncryptionMode::Required {
                return Err(AuthError::EncryptionRequired);
            }
            return Ok(Cow::Borrowed(token));
        }
        if self.mode == EncryptionMode::Off {
            return Err(AuthError::Encrypted);
        }
        let jwe = parse::parse(token)?;
        let plaintext = self.decrypt(&jwe)?;
        let inner = String::from_utf8(plaintext)
            .map_err(|_| AuthError::Malformed("the decrypted payload is not UTF-8"))?;
        if crate::token::is_json_object(inner.as_bytes()) {
            return Err(AuthError::Malformed(
                "the decrypted payload is unsigned claims; only a signed JWT (nested JWS) is accepted",
            ));
        }
        if inner.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(AuthError::Malformed(
                "the decrypted payload is not a compact JWS",
            ));
        }
        Ok(Cow::Owned(inner))
    }

    /// The plaintext, with the first key that fits and decrypts.
    fn decrypt(&self, jwe: &Jwe<'_>) -> Result<Vec<u8>, AuthError> {
        let fits =
            |k: &&DecryptionKey| k.fits(jwe.alg, jwe.epk.as_ref().map(|e| e.0), jwe.kid.as_deref());
        let mut candidates = self.keys.iter().filter(fits).peekable();
        if candidates.peek().is_none() {
            return Err(AuthError::DecryptionFailed);
        }
        // Several keys only without a `kid` (or with a shared one): a few
        // at most, each a full attempt.
        for key in candidates.take(4) {
            let cek = cek(key, jwe)?;
            if let Some(plaintext) = content(jwe, &cek) {
                return Ok(plaintext);
            }
        }
        Err(AuthError::DecryptionFailed)
    }
}

/// A random key of `len` bytes: the stand-in for a key that did not
/// unwrap (RFC 7516 §11.5), so that failure costs the same as a bad tag.
fn random_cek(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    // A failing system RNG leaves zeros: the tag check fails all the same.
    let _ = aws_lc_rs::rand::fill(&mut out);
    out
}

/// The content encryption key, with `key`.
fn cek(key: &DecryptionKey, jwe: &Jwe<'_>) -> Result<Vec<u8>, AuthError> {
    let len = jwe.enc.key_len();
    match (&key.secret, jwe.alg) {
        (Secret::Rsa(rsa), KeyAlg::RsaOaep | KeyAlg::RsaOaep256) => {
            let oaep = match jwe.alg {
                KeyAlg::RsaOaep => &OAEP_SHA1_MGF1SHA1,
                _ => &OAEP_SHA256_MGF1SHA256,
            };
            let mut out = vec![0u8; rsa.min_output_size()];
            Ok(
                match rsa.decrypt(oaep, &jwe.encrypted_key, &mut out, None) {
                    Ok(cek) if cek.len() == len => cek.to_vec(),
                    _ => random_cek(len),
                },
            )
        }
        (Secret::Ec(private, curve), _) => {
            let Some((epk_curve, point)) = &jwe.epk else {
                return Err(AuthError::DecryptionFailed);
            };
            if epk_curve != curve {
                return Err(AuthError::DecryptionFailed);
            }
            // On the curve, or refused (invalid-curve attacks), before the
            // private key is used.
            let peer = ParsedPublicKey::try_from(UnparsedPublicKey::new(
                private.algorithm(),
                point.as_slice(),
            ))
            .map_err(|_| AuthError::Malformed("the `epk` is not a point on its curve"))?;
            let (alg_id, key_len) = match jwe.alg {
                KeyAlg::EcdhEs => (jwe.enc.name(), len),
                KeyAlg::EcdhEsA128Kw => (jwe.alg.name(), 16),
                _ => (jwe.alg.name(), 32),
            };
            let derived = agreement::agree(private, peer, AuthError::DecryptionFailed, |z| {
                Ok(concat_kdf(z, alg_id, &jwe.apu, &jwe.apv, key_len))
            })?;
            if jwe.alg == KeyAlg::EcdhEs {
                return Ok(derived);
            }
            let kek = match key_len {
                16 => AesKek::new(&AES_128, &derived),
                _ => AesKek::new(&AES_256, &derived),
            }
            .map_err(|_| AuthError::DecryptionFailed)?;
            let mut out = vec![0u8; jwe.encrypted_key.len()];
            Ok(match kek.unwrap(&jwe.encrypted_key, &mut out) {
                Ok(cek) if cek.len() == len => cek.to_vec(),
                _ => random_cek(len),
            })
        }
        _ => Err(AuthError::DecryptionFailed),
    }
}

/// The Concat KDF of NIST SP 800-56A as RFC 7518 §4.6.2 uses it, with
/// SHA-256: `key_len` bytes from the shared secret `z`.
fn concat_kdf(z: &[u8], alg_id: &str, apu: &[u8], apv: &[u8], key_len: usize) -> Vec<u8> {
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    let bits = len32(key_len * 8);
    let mut out = Vec::with_capacity(key_len + 32);
    let mut counter: u32 = 1;
    while out.len() < key_len {
        let round = crate::b64::sha256_digest(&[
            &counter.to_be_bytes(),
            z,
            &len32(alg_id.len()),
            alg_id.as_bytes(),
            &len32(apu.len()),
            apu,
            &len32(apv.len()),
            apv,
            &bits,
        ]);
        out.extend_from_slice(&round);
        counter += 1;
    }
    out.truncate(key_len);
    out
}

/// Decrypts and authenticates the content with `cek`, or `None`.
fn content(jwe: &Jwe<'_>, cek: &[u8]) -> Option<Vec<u8>> {
    let aad = jwe.aad.as_bytes();
    match jwe.enc {
        Enc::A128Gcm | Enc::A256Gcm => {
            let alg = match jwe.enc {
                Enc::A128Gcm => &aead::AES_128_GCM,
                _ => &aead::AES_256_GCM,
            };
            let key = LessSafeKey::new(UnboundKey::new(alg, cek).ok()?);
            let nonce = Nonce::try_assume_unique_for_key(&jwe.iv).ok()?;
            let mut buf = Vec::with_capacity(jwe.ciphertext.len() + jwe.tag.len());
            buf.extend_from_slice(&jwe.ciphertext);
            buf.extend_from_slice(&jwe.tag);
            let n = key
                .open_in_place(nonce, Aad::from(aad), &mut buf)
                .ok()?
                .len();
            buf.truncate(n);
            Some(buf)
        }
        Enc::A128CbcHs256 | Enc::A256CbcHs512 => {
            // RFC 7518 §5.2.2.2: MAC key first, then the AES key; the tag
            // is the first half of HMAC(A || IV || E || AL).
            let half = cek.len() / 2;
            let (mac_key, enc_key) = cek.split_at(half);
            let (hmac_alg, aes) = match jwe.enc {
                Enc::A128CbcHs256 => (aws_lc_rs::hmac::HMAC_SHA256, &cipher::AES_128),
                _ => (aws_lc_rs::hmac::HMAC_SHA512, &cipher::AES_256),
            };
            let mac_key = aws_lc_rs::hmac::Key::new(hmac_alg, mac_key);
            let mut ctx = aws_lc_rs::hmac::Context::with_key(&mac_key);
            ctx.update(aad);
            ctx.update(&jwe.iv);
            ctx.update(&jwe.ciphertext);
            ctx.update(&(u64::try_from(aad.len()).ok()? * 8).to_be_bytes());
            let mac = ctx.sign();
            aws_lc_rs::constant_time::verify_slices_are_equal(&mac.as_ref()[..half], &jwe.tag)
                .ok()?;
            let key =
                PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(aes, enc_key).ok()?)
                    .ok()?;
            let iv: [u8; 16] = jwe.iv.as_slice().try_into().ok()?;
            let mut buf = jwe.ciphertext.clone();
            let n = key
                .decrypt(&mut buf, DecryptionContext::Iv128(iv.into()))
                .ok()?
                .len();
            buf.truncate(n);
            Some(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_kdf_matches_rfc_7518_appendix_c() {
        // RFC 7518 Appendix C: Z, "A128GCM", apu "Alice", apv "Bob", 128 bits.
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 16);
        assert_eq!(crate::b64::encode(key), "VqqN6vgjbSBcIijNcacQGg");
    }

    fn data(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn decrypter(jwk: &serde_json::Value) -> Decrypter {
        let key = DecryptionKey::from_jwk(&jwk.to_string()).unwrap();
        Decrypter::new(vec![key], EncryptionMode::Allowed)
    }

    fn decrypt(d: &Decrypter, token: &str) -> Result<Vec<u8>, AuthError> {
        d.decrypt(&parse::parse(token)?)
    }

    /// Every segment of `token` changed in one bit, in turn.
    fn tampered(token: &str) -> Vec<String> {
        let parts: Vec<&str> = token.split('.').collect();
        (0..5)
            .filter(|&i| !parts[i].is_empty())
            .map(|i| {
                let mut bytes = crate::b64::decode(parts[i].as_bytes()).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 1;
                let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
                p[i] = crate::b64::encode(bytes);
                p.join(".")
            })
            .collect()
    }

    #[test]
    fn rfc_7520_examples_decrypt_and_tampering_is_refused() {
        for name in [
            "jwe_5_2.key_encryption_using_rsa-oaep_with_aes-gcm",
            "jwe_5_4.key_agreement_with_key_wrapping_using_ecdh-es_and_aes-keywrap_with_aes-gcm",
            "jwe_5_5.key_agreement_using_ecdh-es_with_aes-cbc-hmac-sha2",
        ] {
            let doc = data(&format!("jose-cookbook/{name}.json"));
            let d = decrypter(&doc["input"]["key"]);
            let token = doc["output"]["compact"].as_str().unwrap();
            let plaintext = decrypt(&d, token).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                plaintext,
                doc["input"]["plaintext"].as_str().unwrap().as_bytes()
            );
            for bad in tampered(token) {
                assert!(decrypt(&d, &bad).is_err(), "{name}: tampered {bad}");
            }
        }
        for name in [
            "jwe_5_1.key_encryption_using_rsa_v15_and_aes-hmac-sha2",
            "jwe_5_3.key_wrap_using_pbes2-aes-keywrap_with-aes-cbc-hmac-sha2",
            "jwe_5_9.compressed_content",
        ] {
            let doc = data(&format!("jose-cookbook/{name}.json"));
            let token = doc["output"]["compact"].as_str().unwrap();
            assert!(
                matches!(
                    parse::parse(token),
                    Err(AuthError::AlgorithmNotAllowed(_) | AuthError::Malformed(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn wycheproof_jwe_vectors() {
        let doc = data("wycheproof/json_web_crypto_test.json");
        let (mut valid, mut invalid) = (0, 0);
        for group in doc["testGroups"].as_array().unwrap() {
            let comment = group["comment"].as_str().unwrap_or_default();
            if !comment.starts_with("jwe_") {
                continue;
            }
            // `jwe_aes` is A256KW (a shared key): not an accepted `alg`.
            let d = (group["private"]["kty"] == "EC").then(|| decrypter(&group["private"]));
            for case in group["tests"].as_array().unwrap() {
                let id = case["tcId"].as_u64().unwrap();
                let Some(token) = case["jwe"].as_str() else {
                    invalid += 1; // the JSON serialization: not a compact token
                    continue;
                };
                let got = match &d {
                    Some(d) => decrypt(d, token),
                    None => parse::parse(token).map(|_| Vec::new()),
                };
                match (case["result"].as_str().unwrap(), &d) {
                    ("valid", Some(_)) => {
                        assert!(got.is_ok(), "tcId {id}: {:?}", got.err());
                        valid += 1;
                    }
                    _ => {
                        assert!(got.is_err(), "tcId {id} accepted");
                        invalid += 1;
                    }
                }
            }
        }
        assert_eq!((valid, invalid), (1, 33));
    }
}
