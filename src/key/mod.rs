//! Verification keys: each parsed once, bound to one algorithm, optionally named by a `kid`.

mod der;
mod jwk;

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::{hmac, signature::ParsedPublicKey};

use crate::algorithm::{Algorithm, Family};
use crate::error::BuildError;

pub(crate) use jwk::parse_jwk_set;

#[cfg(feature = "introspection")]
pub(crate) use self::der::parse_pem;
#[cfg(any(feature = "issuer", feature = "test-util", feature = "introspection"))]
pub(crate) use self::der::rsa_public_key_components;

/// The smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (aws-lc's verification limit).
pub(crate) const MAX_RSA_BITS: usize = 8192;

/// A key that verifies token signatures for exactly one [`Algorithm`].
///
/// A key is parsed and checked once, when it is made: an RSA modulus below
/// 2048 bits, an EC point off its curve, an HMAC secret shorter than the
/// hash output, or a key that does not fit the algorithm is a [`BuildError`].
/// Cloning is cheap (the parsed key is shared).
///
/// ```
/// use tower_jwt_auth::{Algorithm, Key};
///
/// let key = Key::hmac(Algorithm::HS256, b"0123456789abcdef0123456789abcdef")?
///     .with_kid("2024-01");
/// assert_eq!(key.algorithm(), Algorithm::HS256);
/// assert_eq!(key.kid(), Some("2024-01"));
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Key {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    alg: Algorithm,
    kid: Option<String>,
    material: Material,
    /// Identifies the key material (SHA-256 of the algorithm and the key
    /// bytes, truncated), so a cached verification can tell whether the
    /// key that made it is still in the key set.
    fingerprint: Fingerprint,
}

/// See [`KeyInner::fingerprint`].
pub(crate) type Fingerprint = [u8; 16];

fn fingerprint(alg: Algorithm, bytes: &[u8]) -> Fingerprint {
    let digest = crate::b64::sha256_digest(&[alg.as_str().as_bytes(), &[0], bytes]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

enum Material {
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (an HMAC secret is a secret).
        f.debug_struct("Key")
            .field("alg", &self.inner.alg)
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: impl Into<String>) -> BuildError {
    BuildError::InvalidKey(msg.into())
}

impl Key {
    /// An HMAC key (`HS256`, `HS384`, `HS512`) from a shared secret.
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] if `alg` is not an HMAC algorithm, or the
    /// secret is shorter than the hash output (32, 48 or 64 bytes), as RFC 7518 §3.2 requires.
    pub fn hmac(alg: Algorithm, secret: impl AsRef<[u8]>) -> Result<Key, BuildError> {
        let secret = secret.as_ref();
        let hmac_alg = alg
            .hmac()
            .ok_or_else(|| invalid(format!("{alg} is not an HMAC algorithm")))?;
        let min = alg.min_hmac_secret_len();
        if secret.len() < min {
            return Err(invalid(format!(
                "an {alg} secret must be at least {min} bytes, got {}",
                secret.len()
            )));
        }
        Ok(Key::new(
            alg,
            Material::Hmac(Box::new(hmac::Key::new(hmac_alg, secret))),
            fingerprint(alg, secret),
        ))
    }

    /// A public key from PEM: `PUBLIC KEY` (SubjectPublicKeyInfo), `RSA PUBLIC
    /// KEY` (PKCS#1) or `CERTIFICATE` (the certificate is only a container
    /// for its key; it is not validated).
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] if the PEM cannot be read, holds a private
    /// key, or its key does not fit `alg` (type, curve, RSA size).
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<Key, BuildError> {
        let pem = der::parse_pem(pem.as_ref()).map_err(invalid)?;
        match pem.label.as_str() {
            "PUBLIC KEY" => Key::from_spki_der(alg, &pem.der),
            "RSA PUBLIC KEY" => {
                if alg.family() != Family::Rsa {
                    return Err(invalid(format!("an RSA key cannot verify {alg}")));
                }
                let bits = der::rsa_public_key_bits(&pem.der).map_err(invalid)?;
                Key::public(alg, &pem.der, Some(bits))
            }
            "CERTIFICATE" => {
                let spki = der::certificate_spki(&pem.der).map_err(invalid)?;
                Key::from_spki_der(alg, spki)
            }
            label if label.contains("PRIVATE") => Err(invalid(format!(
                "the PEM holds a private key ({label}); give the public key instead"
            ))),
            label => Err(invalid(format!(
                "unsupported PEM block {label:?}; expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE"
            ))),
        }
    }

    /// A public key from DER-encoded SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] if the DER cannot be read or the key does
    /// not fit `alg`.
    pub fn from_spki_der(alg: Algorithm, der: &[u8]) -> Result<Key, BuildError> {
        let info = der::spki_info(der).map_err(invalid)?;
        let fits = match (info.clone(), alg.family()) {
            (der::PublicKeyInfo::Rsa { .. }, Family::Rsa) => true,
            (der::PublicKeyInfo::Ec(c), Family::Ec(want)) => c == want,
            (der::PublicKeyInfo::Ed25519, Family::Ed25519) => true,
            _ => false,
        };
        if !fits {
            return Err(invalid(format!("a {info:?} key cannot verify {alg}")));
        }
        let bits = match info {
            der::PublicKeyInfo::Rsa { bits } => Some(bits),
            _ => None,
        };
        Key::public(alg, der, bits)
    }

    /// A key from one JSON Web Key (RFC 7517). The JWK's `alg` member names
    /// the algorithm; use [`Key::from_jwk_for`] for a JWK without one.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Key};
    ///
    /// let jwk = r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"k1",
    ///               "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    /// let key = Key::from_jwk(jwk)?;
    /// assert_eq!(key.algorithm(), Algorithm::EdDSA);
    /// assert_eq!(key.kid(), Some("k1"));
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] if the JSON is not a usable public JWK
    /// (private key material, `use` other than `sig`, `key_ops` without
    /// `verify`, a key too weak or not fitting its `alg`), or has no `alg`.
    pub fn from_jwk(jwk: &str) -> Result<Key, BuildError> {
        jwk::parse_single(jwk, None)
    }

    /// Like [`Key::from_jwk`], for a JWK that may lack `alg`: the key is
    /// bound to `alg`, and a JWK `alg` member, when present, must equal it.
    ///
    /// # Errors
    /// As [`Key::from_jwk`], and when the JWK's `alg` differs from `alg`.
    pub fn from_jwk_for(alg: Algorithm, jwk: &str) -> Result<Key, BuildError> {
        jwk::parse_single(jwk, Some(alg))
    }

    /// Names the key, so tokens with this `kid` header select it.
    pub fn with_kid(self, kid: impl Into<String>) -> Key {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.kid = Some(kid.into());
                inner
            }
            Err(shared) => KeyInner {
                alg: shared.alg,
                kid: Some(kid.into()),
                material: shared.material.clone_material(),
                fingerprint: shared.fingerprint,
            },
        };
        Key {
            inner: Arc::new(inner),
        }
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.inner.kid.as_deref()
    }

    /// Checks `signature` over `message`. Constant-time for HMAC.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner.material {
            Material::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Material::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }

    fn new(alg: Algorithm, material: Material, fingerprint: Fingerprint) -> Key {
        Key {
            inner: Arc::new(KeyInner {
                alg,
                kid: None,
                material,
                fingerprint,
            }),
        }
    }

    pub(crate) fn fingerprint(&self) -> &Fingerprint {
        &self.inner.fingerprint
    }

    /// Builds an asymmetric key from bytes aws-lc understands for `alg`
    /// (SPKI or PKCS#1 for RSA, SPKI or an uncompressed point for EC, SPKI or
    /// raw bytes for Ed25519). `rsa_bits` is the modulus size when known.
    pub(crate) fn public(
        alg: Algorithm,
        bytes: &[u8],
        rsa_bits: Option<usize>,
    ) -> Result<Key, BuildError> {
        if let Some(bits) = rsa_bits {
            if bits < MIN_RSA_BITS {
                return Err(invalid(format!(
                    "RSA keys must be at least {MIN_RSA_BITS} bits, this one has {bits}"
                )));
            }
            if bits > MAX_RSA_BITS {
                return Err(invalid(format!(
                    "RSA keys above {MAX_RSA_BITS} bits are not supported, this one has {bits}"
                )));
            }
        }
        let verification = alg
            .verification()
            .ok_or_else(|| invalid(format!("{alg} needs a shared secret, not a public key")))?;
        let parsed = ParsedPublicKey::new(verification, bytes)
            .map_err(|e| invalid(format!("aws-lc refused the {alg} public key: {e}")))?;
        Ok(Key::new(
            alg,
            Material::Public(parsed),
            fingerprint(alg, bytes),
        ))
    }
}

impl Material {
    fn clone_material(&self) -> Material {
        match self {
            Material::Hmac(k) => Material::Hmac(k.clone()),
            Material::Public(k) => Material::Public(k.clone()),
        }
    }
}

/// A token without `kid` is tried against at most this many keys of its
/// algorithm (keys the application configured).
pub(crate) const MAX_KIDLESS_TRIES: usize = 4;

/// How a token without `kid` picks its key.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Kidless {
    /// Keys the application configured: up to [`MAX_KIDLESS_TRIES`] keys of
    /// the token's algorithm are tried.
    #[default]
    TryFew,
    /// A remote key set (jose's rule): the token is verified only when
    /// exactly one key fits its algorithm, and refused when several do.
    ExactlyOne,
}

/// An immutable set of keys; a JWKS refresh replaces the whole set at once.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<Key>,
    kidless: Kidless,
}

impl KeySet {
    pub(crate) fn new(keys: Vec<Key>) -> KeySet {
        KeySet {
            keys,
            kidless: Kidless::TryFew,
        }
    }

    /// A key set fetched from a provider: a token without `kid` needs
    /// exactly one key of its algorithm.
    #[cfg(feature = "jwks")]
    pub(crate) fn remote(keys: Vec<Key>) -> KeySet {
        KeySet {
            keys,
            kidless: Kidless::ExactlyOne,
        }
    }

    #[cfg(feature = "jwks")]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Whether some key could verify a token with this `kid` and `alg`.
    #[cfg(feature = "jwks")]
    pub(crate) fn has(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.kid() == Some(kid)),
            None => self.keys.iter().any(|k| k.algorithm() == alg),
        }
    }

    /// Whether a key with this fingerprint (and `kid`, when given) is in the set.
    pub(crate) fn holds(&self, kid: Option<&str>, fp: &Fingerprint) -> bool {
        self.keys
            .iter()
            .any(|k| k.fingerprint() == fp && (kid.is_none() || k.kid() == kid))
    }

    /// Verifies `signature` over `message` with the keys that fit the
    /// token's `kid` and `alg`.
    ///
    /// # Errors
    /// `UnknownKid` when no key has the `kid`, `NoMatchingKey` when none
    /// fits the algorithm, `AmbiguousKey` when a token without `kid` fits
    /// several keys of a remote set, `InvalidSignature` when none verifies.
    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<&Key, crate::AuthError> {
        use crate::AuthError;
        let verified = match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid() == Some(kid)).peekable();
                if named.peek().is_none() {
                    return Err(AuthError::UnknownKid);
                }
                let mut fitting = named.filter(|k| k.algorithm() == alg).peekable();
                if fitting.peek().is_none() {
                    return Err(AuthError::NoMatchingKey);
                }
                fitting.find(|k| k.verify(message, signature))
            }
            None if self.kidless == Kidless::ExactlyOne => {
                let mut fitting = self.keys.iter().filter(|k| k.algorithm() == alg);
                let key = fitting.next().ok_or(AuthError::NoMatchingKey)?;
                if fitting.next().is_some() {
                    return Err(AuthError::AmbiguousKey);
                }
                Some(key).filter(|k| k.verify(message, signature))
            }
            None => {
                let mut fitting = self
                    .keys
                    .iter()
                    .filter(|k| k.algorithm() == alg)
                    .take(MAX_KIDLESS_TRIES)
                    .peekable();
                if fitting.peek().is_none() {
                    return Err(AuthError::NoMatchingKey);
                }
                fitting.find(|k| k.verify(message, signature))
            }
        };
        verified.ok_or(AuthError::InvalidSignature)
    }
}
