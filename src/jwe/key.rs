//! [`DecryptionKey`]: an RSA or EC private key for JWE, from PEM or a
//! private JWK / JWKS.

use std::fmt;

use aws_lc_rs::agreement::{self, ECDH_P256, ECDH_P384, ECDH_P521};
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};
use serde::Deserialize;

use super::parse::{Curve, KeyAlg};
use crate::error::BuildError;

/// The private half.
pub(super) enum Secret {
    Rsa(OaepPrivateDecryptingKey),
    Ec(agreement::PrivateKey, Curve),
}

/// A private key that decrypts encrypted tokens (JWE): RSA (at least 2048
/// bits) for `RSA-OAEP*`, or EC P-256/P-384/P-521 for `ECDH-ES*`. A token
/// naming a `kid` is tried only with keys of that `kid` (or none); give
/// several keys to rotate. See [`jwe`](crate::jwe).
///
/// ```
/// use tower_jwt_auth::jwe::DecryptionKey;
///
/// let jwk = r#"{"kty":"EC","crv":"P-256","kid":"enc-1",
///   "x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
///   "y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
///   "d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}"#;
/// let key = DecryptionKey::from_jwk(jwk)?;
/// assert_eq!(key.kid(), Some("enc-1"));
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub struct DecryptionKey {
    kid: Option<String>,
    /// The one algorithm the key is for, if its JWK names one.
    alg: Option<KeyAlg>,
    pub(super) secret: Secret,
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.secret {
            Secret::Rsa(_) => "RSA",
            Secret::Ec(..) => "EC",
        };
        f.debug_struct("DecryptionKey")
            .field("kid", &self.kid)
            .field("kty", &kind)
            .finish_non_exhaustive()
    }
}

fn invalid(why: impl Into<String>) -> BuildError {
    BuildError::InvalidKey(format!("decryption key: {}", why.into()))
}

impl DecryptionKey {
    /// A key from PEM: `PRIVATE KEY` (PKCS#8, RSA or EC), `RSA PRIVATE KEY`
    /// (PKCS#1) or `EC PRIVATE KEY` (SEC1). Without a `kid`: set one with
    /// [`with_kid`](Self::with_kid) when tokens name theirs.
    ///
    /// ```
    /// use tower_jwt_auth::jwe::DecryptionKey;
    /// # let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keys/p256.key"))?;
    /// let key = DecryptionKey::from_pem(&pem)?.with_kid("enc-2026");
    /// assert_eq!(key.kid(), Some("enc-2026"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] when the PEM holds no such key, an RSA
    /// key under 2048 bits, or an EC key of another curve.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, BuildError> {
        let block = pem::parse(pem.as_ref()).map_err(|_| invalid("not a PEM block"))?;
        let der = block.contents();
        let secret = match block.tag() {
            "PRIVATE KEY" => from_pkcs8(der)?,
            "RSA PRIVATE KEY" => rsa(&pkcs8_of_pkcs1(der))?,
            "EC PRIVATE KEY" => ec_der(der)?,
            other => {
                return Err(invalid(format!(
                    "a PEM `{other}` block is not a private key"
                )));
            }
        };
        Ok(DecryptionKey {
            kid: None,
            alg: None,
            secret,
        })
    }

    /// The same key, named `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// A key from one private JWK (`kty` `RSA` with `n`, `e`, `d`, `p`,
    /// `q`, `dp`, `dq`, `qi`; or `EC` with `crv`, `x`, `y`, `d`).
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] when the JWK is not such a key, its `use`
    /// is not `enc`, its `key_ops` lack `decrypt`/`unwrapKey`/`deriveKey`,
    /// its `alg` is not one of [`jwe`](crate::jwe)'s, or its public and
    /// private halves do not match.
    pub fn from_jwk(jwk: &str) -> Result<Self, BuildError> {
        let jwk: Jwk = serde_json::from_str(jwk).map_err(|_| invalid("not a JWK"))?;
        jwk.into_key()
    }

    /// Every decryption key of a private JWKS (`{"keys":[..]}`): keys whose
    /// `use` is `sig` are skipped; any other key that does not fit is an
    /// error.
    ///
    /// ```
    /// use tower_jwt_auth::jwe::DecryptionKey;
    ///
    /// let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"enc-1","use":"enc",
    ///   "x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    ///   "y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
    ///   "d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}]}"#;
    /// assert_eq!(DecryptionKey::from_jwks(jwks)?.len(), 1);
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] when the JSON is not a JWKS, a key is
    /// unusable (see [`from_jwk`](Self::from_jwk)), or none is left.
    pub fn from_jwks(jwks: &str) -> Result<Vec<Self>, BuildError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Jwk>,
        }
        let set: Set = serde_json::from_str(jwks).map_err(|_| invalid("not a JWKS"))?;
        let keys: Vec<DecryptionKey> = set
            .keys
            .into_iter()
            .filter(|k| k.use_.as_deref() != Some("sig"))
            .map(Jwk::into_key)
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err(invalid("the JWKS has no decryption key"));
        }
        Ok(keys)
    }

    /// Whether this key may decrypt a token with `alg`, an `epk` on
    /// `curve` (ECDH-ES) and `kid`.
    pub(super) fn fits(&self, alg: KeyAlg, curve: Option<Curve>, kid: Option<&str>) -> bool {
        if let (Some(want), Some(have)) = (kid, &self.kid)
            && want != have
        {
            return false;
        }
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match &self.secret {
            Secret::Rsa(_) => alg.is_rsa(),
            Secret::Ec(_, c) => !alg.is_rsa() && curve == Some(*c),
        }
    }
}

fn from_pkcs8(der: &[u8]) -> Result<Secret, BuildError> {
    match PrivateDecryptingKey::from_pkcs8(der) {
        // An RSA key: usable, or refused for its own reason (its size).
        Ok(_) => rsa(der),
        Err(_) => ec_der(der),
    }
}

fn rsa(pkcs8: &[u8]) -> Result<Secret, BuildError> {
    let key = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| invalid("not an RSA key"))?;
    if key.key_size_bits() < crate::key::MIN_RSA_BITS {
        return Err(invalid("RSA keys under 2048 bits are refused"));
    }
    OaepPrivateDecryptingKey::new(key)
        .map(Secret::Rsa)
        .map_err(|_| invalid("not an RSA key"))
}

fn ec_der(der: &[u8]) -> Result<Secret, BuildError> {
    for (alg, curve) in [
        (&ECDH_P256, Curve::P256),
        (&ECDH_P384, Curve::P384),
        (&ECDH_P521, Curve::P521),
    ] {
        if let Ok(key) = agreement::PrivateKey::from_private_key_der(alg, der) {
            return Ok(Secret::Ec(key, curve));
        }
    }
    Err(invalid(
        "not an RSA key of 2048 bits or more, or an EC key on P-256, P-384 or P-521",
    ))
}

/// The private JWK members read.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    d: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    p: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    dp: Option<String>,
    #[serde(default)]
    dq: Option<String>,
    #[serde(default)]
    qi: Option<String>,
}

impl Jwk {
    fn into_key(self) -> Result<DecryptionKey, BuildError> {
        if let Some(u) = &self.use_
            && u != "enc"
        {
            return Err(invalid(format!("`use` is {u:?}, not \"enc\"")));
        }
        if let Some(ops) = &self.key_ops
            && !ops.iter().any(|o| {
                matches!(
                    o.as_str(),
                    "decrypt" | "unwrapKey" | "deriveKey" | "deriveBits"
                )
            })
        {
            return Err(invalid("`key_ops` allow no decryption"));
        }
        let alg = match &self.alg {
            None => None,
            Some(name) => Some(
                [
                    KeyAlg::RsaOaep,
                    KeyAlg::RsaOaep256,
                    KeyAlg::EcdhEs,
                    KeyAlg::EcdhEsA128Kw,
                    KeyAlg::EcdhEsA256Kw,
                ]
                .into_iter()
                .find(|a| a.name() == name)
                .ok_or_else(|| {
                    invalid(format!("`alg` {name:?} is not a supported JWE algorithm"))
                })?,
            ),
        };
        let field = |v: &Option<String>, name: &str| -> Result<Vec<u8>, BuildError> {
            let text = v
                .as_deref()
                .ok_or_else(|| invalid(format!("the JWK has no `{name}`")))?;
            crate::b64::decode(text.as_bytes())
                .ok_or_else(|| invalid(format!("`{name}` is not strict base64url")))
        };
        let secret = match self.kty.as_str() {
            "RSA" => {
                let parts = [
                    vec![0u8],
                    field(&self.n, "n")?,
                    field(&self.e, "e")?,
                    field(&self.d, "d")?,
                    field(&self.p, "p")?,
                    field(&self.q, "q")?,
                    field(&self.dp, "dp")?,
                    field(&self.dq, "dq")?,
                    field(&self.qi, "qi")?,
                ];
                let body: Vec<u8> = parts.iter().flat_map(|p| der_uint(p)).collect();
                rsa(&pkcs8_of_pkcs1(&der_tlv(0x30, &body)))?
            }
            "EC" => {
                let crv = self.crv.as_deref().unwrap_or_default();
                let (alg, curve) = match Curve::from_name(crv) {
                    Some(Curve::P256) => (&ECDH_P256, Curve::P256),
                    Some(Curve::P384) => (&ECDH_P384, Curve::P384),
                    Some(Curve::P521) => (&ECDH_P521, Curve::P521),
                    None => return Err(invalid(format!("curve {crv:?} is not supported"))),
                };
                let d = field(&self.d, "d")?;
                let key = agreement::PrivateKey::from_private_key(alg, &d)
                    .map_err(|_| invalid("`d` is not a private key on its curve"))?;
                let mut point = vec![4u8];
                point.extend(field(&self.x, "x")?);
                point.extend(field(&self.y, "y")?);
                let public = key
                    .compute_public_key()
                    .map_err(|_| invalid("the EC key is unusable"))?;
                if public.as_ref() != point.as_slice() {
                    return Err(invalid("`x`, `y` are not the public half of `d`"));
                }
                Secret::Ec(key, curve)
            }
            other => return Err(invalid(format!("`kty` {other:?} cannot decrypt"))),
        };
        Ok(DecryptionKey {
            kid: self.kid,
            alg,
            secret,
        })
    }
}

/// A DER length.
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of the unsigned big-endian `bytes`.
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut v = bytes[start..].to_vec();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der_tlv(0x02, &v)
}

/// PKCS#8 `PrivateKeyInfo` around a PKCS#1 `RSAPrivateKey`.
fn pkcs8_of_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    // SEQUENCE { OID rsaEncryption, NULL }
    const ALG: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&ALG);
    body.extend(der_tlv(0x04, pkcs1));
    der_tlv(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(name: &str) -> String {
        let path = format!("{}/tests/data/keys/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn keys_load_from_pem_and_weak_or_public_ones_are_refused() {
        for ok in ["rsa.key", "rsa2.key", "p256.key", "p384.key", "p521.key"] {
            assert!(DecryptionKey::from_pem(pem(ok)).is_ok(), "{ok}");
        }
        let small = DecryptionKey::from_pem(pem("rsa1024.key")).unwrap_err();
        assert!(small.to_string().contains("2048"), "{small}");
        for bad in ["rsa.pub", "p256.pub", "ed25519.key"] {
            assert!(DecryptionKey::from_pem(pem(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwks_skip_signing_keys_and_refuse_mismatched_halves() {
        let ec = r#"{"kty":"EC","crv":"P-256","kid":"e",
          "x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
          "y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
          "d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}"#;
        let sig = ec.replace(r#""kid":"e""#, r#""kid":"s","use":"sig""#);
        let keys = DecryptionKey::from_jwks(&format!(r#"{{"keys":[{ec},{sig}]}}"#)).unwrap();
        assert_eq!(keys.len(), 1);
        // Another point than `d`'s: refused.
        let wrong = ec.replace("weNJy2", "xeNJy2");
        assert!(DecryptionKey::from_jwk(&wrong).is_err());
        let public = ec.replace(r#""d":"#, r#""not_d":"#);
        assert!(DecryptionKey::from_jwk(&public).is_err());
        let ops = ec.replace(r#""kid":"e""#, r#""kid":"e","key_ops":["sign"]"#);
        assert!(DecryptionKey::from_jwk(&ops).is_err());
        let alg = ec.replace(r#""kid":"e""#, r#""kid":"e","alg":"RSA1_5""#);
        assert!(DecryptionKey::from_jwk(&alg).is_err());
    }
}
