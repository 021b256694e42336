//! Compact JWE parsing (RFC 7516 §7.1): five strict base64url segments and
//! a protected header, checked against every refusal that needs no key.
//! Nothing here touches a private key.

use serde::Deserialize;

use crate::b64;
use crate::claims::{Text, present};
use crate::error::AuthError;
use crate::token::{Present, is_json_object};

/// Key management algorithms (`alg`) this crate decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAlg {
    RsaOaep,
    RsaOaep256,
    EcdhEs,
    EcdhEsA128Kw,
    EcdhEsA256Kw,
}

impl KeyAlg {
    fn from_name(name: &str) -> Option<KeyAlg> {
        Some(match name {
            "RSA-OAEP" => KeyAlg::RsaOaep,
            "RSA-OAEP-256" => KeyAlg::RsaOaep256,
            "ECDH-ES" => KeyAlg::EcdhEs,
            "ECDH-ES+A128KW" => KeyAlg::EcdhEsA128Kw,
            "ECDH-ES+A256KW" => KeyAlg::EcdhEsA256Kw,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
            KeyAlg::EcdhEs => "ECDH-ES",
            KeyAlg::EcdhEsA128Kw => "ECDH-ES+A128KW",
            KeyAlg::EcdhEsA256Kw => "ECDH-ES+A256KW",
        }
    }

    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, KeyAlg::RsaOaep | KeyAlg::RsaOaep256)
    }

    /// Whether the CEK comes in the `encrypted_key` segment (all but
    /// direct key agreement).
    fn wraps(self) -> bool {
        self != KeyAlg::EcdhEs
    }
}

/// Content encryption algorithms (`enc`) this crate decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    A128Gcm,
    A256Gcm,
    A128CbcHs256,
    A256CbcHs512,
}

impl Enc {
    fn from_name(name: &str) -> Option<Enc> {
        Some(match name {
            "A128GCM" => Enc::A128Gcm,
            "A256GCM" => Enc::A256Gcm,
            "A128CBC-HS256" => Enc::A128CbcHs256,
            "A256CBC-HS512" => Enc::A256CbcHs512,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Enc::A128Gcm => "A128GCM",
            Enc::A256Gcm => "A256GCM",
            Enc::A128CbcHs256 => "A128CBC-HS256",
            Enc::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// The content encryption key's length in bytes.
    pub(crate) fn key_len(self) -> usize {
        match self {
            Enc::A128Gcm => 16,
            Enc::A256Gcm | Enc::A128CbcHs256 => 32,
            Enc::A256CbcHs512 => 64,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Enc::A128Gcm | Enc::A256Gcm => 12,
            Enc::A128CbcHs256 | Enc::A256CbcHs512 => 16,
        }
    }

    fn tag_len(self) -> usize {
        match self {
            Enc::A128Gcm | Enc::A256Gcm | Enc::A128CbcHs256 => 16,
            Enc::A256CbcHs512 => 32,
        }
    }
}

/// The curves of an `epk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub(crate) fn from_name(name: &str) -> Option<Curve> {
        Some(match name {
            "P-256" => Curve::P256,
            "P-384" => Curve::P384,
            "P-521" => Curve::P521,
            _ => return None,
        })
    }

    /// The length of a coordinate (and of a private scalar) in bytes.
    pub(crate) fn coord_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// A compact JWE, split and decoded, with every key-free check done.
pub(crate) struct Jwe<'t> {
    pub(crate) alg: KeyAlg,
    pub(crate) enc: Enc,
    pub(crate) kid: Option<String>,
    /// The ephemeral public key (ECDH-ES): its curve and the uncompressed
    /// SEC1 point (`04 || x || y`), not yet checked to be on the curve.
    pub(crate) epk: Option<(Curve, Vec<u8>)>,
    pub(crate) apu: Vec<u8>,
    pub(crate) apv: Vec<u8>,
    /// The protected header's base64url text: the additional
    /// authenticated data.
    pub(crate) aad: &'t str,
    pub(crate) encrypted_key: Vec<u8>,
    pub(crate) iv: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

/// The protected header members read; `null` for any of them is a value of
/// the wrong type, and a repeated member is refused.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    alg: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    enc: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    kid: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    cty: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    apu: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    apv: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    epk: Option<Epk<'a>>,
    #[serde(default)]
    zip: Present,
    #[serde(default)]
    crit: Present,
}

#[derive(Deserialize)]
struct Epk<'a> {
    #[serde(borrow)]
    kty: Text<'a>,
    #[serde(borrow)]
    crv: Text<'a>,
    #[serde(borrow)]
    x: Text<'a>,
    #[serde(borrow)]
    y: Text<'a>,
}

fn malformed(why: &'static str) -> AuthError {
    AuthError::Malformed(why)
}

fn segment(text: &str, what: &'static str) -> Result<Vec<u8>, AuthError> {
    b64::decode(text.as_bytes()).ok_or(malformed(what))
}

/// Whether `token` has the five segments of a compact JWE.
pub(crate) fn is_jwe(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 4
}

/// Splits and checks a compact JWE: the refusals that need no key.
pub(crate) fn parse(token: &str) -> Result<Jwe<'_>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(ek), Some(iv), Some(ct), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(malformed("a JWE has five dot-separated parts"));
    };
    if header.is_empty() {
        return Err(malformed("the JWE has no protected header"));
    }
    let json = segment(header, "the JWE header is not strict base64url")?;
    if std::str::from_utf8(&json).is_err() || !is_json_object(&json) {
        return Err(malformed("the JWE header is not a JSON object"));
    }
    let h: RawHeader<'_> = serde_json::from_slice(&json).map_err(|_| {
        malformed("the JWE header is not valid (bad JSON, wrong types or a repeated member)")
    })?;
    if h.crit.0 {
        return Err(AuthError::UnsupportedCrit);
    }
    if h.zip.0 {
        // Decompression bombs: compressed plaintext is never inflated.
        return Err(malformed("compressed JWE (`zip`) is not accepted"));
    }
    let alg_name = h.alg.ok_or(malformed("the JWE header has no `alg`"))?;
    // RSA1_5 (Bleichenbacher), PBES2-* (the `p2c` work factor), `dir`,
    // AES key wrap with a shared key and anything unknown: refused here.
    let alg = KeyAlg::from_name(&alg_name)
        .ok_or_else(|| AuthError::AlgorithmNotAllowed(crate::text::excerpt(&alg_name)))?;
    let enc_name = h.enc.ok_or(malformed("the JWE header has no `enc`"))?;
    let enc = Enc::from_name(&enc_name)
        .ok_or_else(|| AuthError::AlgorithmNotAllowed(crate::text::excerpt(&enc_name)))?;
    if let Some(cty) = &h.cty
        && !is_jwt_type(cty)
    {
        return Err(malformed("the JWE content type (`cty`) is not a JWT"));
    }
    let encrypted_key = segment(ek, "the JWE encrypted key is not strict base64url")?;
    match (alg.wraps(), encrypted_key.is_empty()) {
        (true, true) => return Err(malformed("the JWE encrypted key is empty")),
        (false, false) => {
            return Err(malformed(
                "direct key agreement (ECDH-ES) takes an empty encrypted key",
            ));
        }
        _ => {}
    }
    let iv = segment(iv, "the JWE IV is not strict base64url")?;
    if iv.len() != enc.iv_len() {
        return Err(malformed("the JWE IV has the wrong length for its `enc`"));
    }
    let tag = segment(tag, "the JWE tag is not strict base64url")?;
    if tag.len() != enc.tag_len() {
        return Err(malformed("the JWE tag has the wrong length for its `enc`"));
    }
    let ciphertext = segment(ct, "the JWE ciphertext is not strict base64url")?;
    if ciphertext.is_empty() {
        return Err(malformed("the JWE ciphertext is empty"));
    }
    let epk = match (alg.is_rsa(), h.epk) {
        (true, _) => None,
        (false, None) => return Err(malformed("ECDH-ES needs an `epk`")),
        (false, Some(epk)) => Some(point(&epk)?),
    };
    let apu = match &h.apu {
        Some(t) => segment(t, "`apu` is not strict base64url")?,
        None => Vec::new(),
    };
    let apv = match &h.apv {
        Some(t) => segment(t, "`apv` is not strict base64url")?,
        None => Vec::new(),
    };
    Ok(Jwe {
        alg,
        enc,
        kid: h.kid.map(|k| k.0.into_owned()),
        epk,
        apu,
        apv,
        aad: header,
        encrypted_key,
        iv,
        ciphertext,
        tag,
    })
}

/// Whether a `cty` names a JWT: `JWT` (RFC 7519 §5.2) or a JWT media type
/// `*+jwt` (oidc-provider says `at+jwt`, RFC 9068), with or without the
/// `application/` prefix, in any case. The payload is then verified as a
/// JWS whatever the `cty` said.
fn is_jwt_type(cty: &str) -> bool {
    let lower = cty.to_ascii_lowercase();
    let t = lower.strip_prefix("application/").unwrap_or(&lower);
    t == "jwt" || (t.ends_with("+jwt") && t.len() > 4)
}

/// The `epk`'s curve and uncompressed point: an EC key of a known curve
/// with coordinates of exactly the curve's length. (Whether the point is on
/// the curve is checked when it is parsed for the agreement, before the
/// private key is used.)
fn point(epk: &Epk<'_>) -> Result<(Curve, Vec<u8>), AuthError> {
    let bad = || malformed("the `epk` is not an EC public key of a supported curve");
    if &*epk.kty != "EC" {
        return Err(bad());
    }
    let curve = Curve::from_name(&epk.crv).ok_or_else(bad)?;
    let x = b64::decode(epk.x.as_bytes()).ok_or_else(bad)?;
    let y = b64::decode(epk.y.as_bytes()).ok_or_else(bad)?;
    let n = curve.coord_len();
    if x.len() != n || y.len() != n {
        return Err(bad());
    }
    let mut sec1 = Vec::with_capacity(1 + 2 * n);
    sec1.push(4);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    Ok((curve, sec1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::encode;

    fn jwe(header: &str, ek: &[u8], iv: usize, tag: usize) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            encode(header),
            encode(ek),
            encode(vec![1u8; iv]),
            encode(b"ct"),
            encode(vec![2u8; tag])
        )
    }

    #[test]
    fn refusals_before_any_key_work() {
        let ok = r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#;
        assert!(parse(&jwe(ok, b"k", 12, 16)).is_ok());
        for cty in [
            "JWT",
            "jwt",
            "application/jwt",
            "at+jwt",
            "application/AT+JWT",
        ] {
            let h = format!(r#"{{"alg":"RSA-OAEP","enc":"A256GCM","cty":"{cty}"}}"#);
            assert!(parse(&jwe(&h, b"k", 12, 16)).is_ok(), "{cty}");
        }
        for (header, ek, iv, tag, what) in [
            (
                r#"{"alg":"RSA1_5","enc":"A256GCM"}"#,
                &b"k"[..],
                12,
                16,
                "RSA1_5",
            ),
            (
                r#"{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":100000000,"p2s":"AA"}"#,
                b"k",
                12,
                16,
                "PBES2",
            ),
            (r#"{"alg":"dir","enc":"A256GCM"}"#, b"", 12, 16, "dir"),
            (
                r#"{"alg":"A256KW","enc":"A256GCM"}"#,
                b"k",
                12,
                16,
                "A256KW",
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A256GCM","zip":"DEF"}"#,
                b"k",
                12,
                16,
                "zip",
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A256GCM","crit":["x"],"x":1}"#,
                b"k",
                12,
                16,
                "crit",
            ),
            (r#"{"alg":"RSA-OAEP","enc":"A192GCM"}"#, b"k", 12, 16, "enc"),
            (
                r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#,
                b"",
                12,
                16,
                "empty key",
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#,
                b"k",
                12,
                15,
                "tag length",
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A256CBC-HS512"}"#,
                b"k",
                16,
                16,
                "tag length",
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#,
                b"k",
                16,
                16,
                "iv length",
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A256GCM","cty":"json"}"#,
                b"k",
                12,
                16,
                "cty",
            ),
            (
                r#"{"alg":"RSA-OAEP","alg":"RSA-OAEP","enc":"A256GCM"}"#,
                b"k",
                12,
                16,
                "repeat",
            ),
            (r#"{"alg":null,"enc":"A256GCM"}"#, b"k", 12, 16, "null"),
            (
                r#"{"alg":"ECDH-ES","enc":"A256GCM"}"#,
                b"",
                12,
                16,
                "no epk",
            ),
            (
                r#"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}"#,
                b"",
                12,
                16,
                "short epk",
            ),
            (
                r#"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"OKP","crv":"X25519","x":"AA","y":"AA"}}"#,
                b"",
                12,
                16,
                "okp",
            ),
            (r#"["alg"]"#, b"k", 12, 16, "array"),
        ] {
            assert!(parse(&jwe(header, ek, iv, tag)).is_err(), "{what}");
        }
        let x = encode([1u8; 32]);
        let epk = format!(
            r#"{{"alg":"ECDH-ES","enc":"A128GCM","epk":{{"kty":"EC","crv":"P-256","x":"{x}","y":"{x}"}}}}"#
        );
        assert!(parse(&jwe(&epk, b"", 12, 16)).is_ok());
        assert!(
            parse(&jwe(&epk, b"k", 12, 16)).is_err(),
            "ECDH-ES with a key"
        );
        for odd in ["a.b.c.d", "a.b.c.d.e.f", ".a.b.c.d", "a+.b.c.d.e"] {
            assert!(parse(odd).is_err(), "{odd}");
        }
    }
}
