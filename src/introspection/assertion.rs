//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect
//! Core §9): a short-lived JWT signed with the client's private key.

use std::fmt;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::algorithm::Algorithm;
use crate::error::{AuthError, BuildError};
use crate::sign::{Signer, random_id};

/// How long a client assertion is valid.
const ASSERTION_LIFETIME: u64 = 60;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(super) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The resource server's private key for `private_key_jwt` client
/// authentication at the introspection endpoint (give it to
/// [`IntrospectorBuilder::private_key_jwt`](crate::introspection::IntrospectorBuilder::private_key_jwt)).
/// Its public half is registered with the authorization server (the
/// client's `jwks` or `jwks_uri`).
///
/// ```no_run
/// use tower_jwt_auth::Algorithm;
/// use tower_jwt_auth::introspection::{ClientKey, Introspector};
///
/// let pem = std::fs::read("client-key.pem")?; // -----BEGIN PRIVATE KEY-----
/// let key = ClientKey::from_pem(Algorithm::ES256, &pem)?.with_kid("api-2026");
/// let introspector = Introspector::builder("https://idp.example/oauth2/introspect")
///     .private_key_jwt("my-api", key)
///     .audience("my-api")
///     .build()?;
/// # let _ = introspector;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientKey {
    alg: Algorithm,
    kid: Option<String>,
    signer: Arc<Signer>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// A private key from PEM (`PRIVATE KEY`, PKCS#8) that signs with `alg`.
    ///
    /// # Errors
    /// [`BuildError::InvalidKey`] if the PEM cannot be read, is not a
    /// PKCS#8 private key, or its key does not fit `alg` (type, curve);
    /// an HMAC `alg`.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<ClientKey, BuildError> {
        let pem = crate::key::parse_pem(pem.as_ref()).map_err(BuildError::InvalidKey)?;
        if pem.label != "PRIVATE KEY" {
            return Err(BuildError::InvalidKey(format!(
                "the PEM block is {:?}; expected PRIVATE KEY (PKCS#8; convert with \
                 `openssl pkcs8 -topk8 -nocrypt`)",
                pem.label
            )));
        }
        ClientKey::from_pkcs8_der(alg, &pem.der)
    }

    /// A private key from PKCS#8 DER that signs with `alg`.
    ///
    /// # Errors
    /// As [`from_pem`](ClientKey::from_pem).
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<ClientKey, BuildError> {
        let signer = Signer::from_pkcs8(alg, der).map_err(BuildError::InvalidKey)?;
        Ok(ClientKey {
            alg,
            kid: None,
            signer: Arc::new(signer),
        })
    }

    /// The `kid` of the key's public JWK at the authorization server, sent
    /// in the assertion's header (needed when the client has several keys).
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> ClientKey {
        self.kid = Some(kid.into());
        self
    }

    /// A client assertion for `client_id` towards `audience`, issued at
    /// `now`: `iss` = `sub` = the client id, a fresh `jti`, valid 60 s.
    pub(super) fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: f64,
    ) -> Result<String, AuthError> {
        let now = now.max(0.0) as u64;
        let mut header = json!({"alg": self.alg.as_str(), "typ": "JWT"});
        if let (Some(kid), Value::Object(members)) = (&self.kid, &mut header) {
            members.insert("kid".into(), Value::String(kid.clone()));
        }
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": random_id(16),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        self.signer.sign_compact(&header, &claims).ok_or_else(|| {
            AuthError::IntrospectionUnavailable(
                "aws-lc could not sign the client assertion with the client key".into(),
            )
        })
    }
}

/// A client's credentials at the authorization server as a builder
/// collects them: the one home of the client-authentication settings of
/// the introspection and token exchange clients (RFC 6749 §2.3.1,
/// RFC 7523 §2.2).
#[derive(Default)]
pub(crate) struct Credentials {
    pub(crate) client_id: Option<String>,
    client_secret: String,
    pub(crate) auth: super::ClientAuth,
    key: Option<ClientKey>,
}

impl Credentials {
    /// An id and a secret (sent as `auth` says).
    pub(crate) fn secret(&mut self, client_id: String, client_secret: String) {
        self.client_id = Some(client_id);
        self.client_secret = client_secret;
    }

    /// `private_key_jwt` with `key`; no secret travels.
    pub(crate) fn private_key_jwt(&mut self, client_id: String, key: ClientKey) {
        self.client_id = Some(client_id);
        self.client_secret = String::new();
        self.key = Some(key);
        self.auth = super::ClientAuth::PrivateKeyJwt;
    }

    /// Checks the settings once, at build time; `missing` is the message
    /// when no credentials were given.
    pub(crate) fn build(self, missing: &'static str) -> Result<ClientCredentials, BuildError> {
        let client_id = self
            .client_id
            .ok_or_else(|| BuildError::config("client_credentials", missing))?;
        if self.auth == super::ClientAuth::PrivateKeyJwt && self.key.is_none() {
            return Err(BuildError::config(
                "client_auth",
                "private_key_jwt needs the client's private key: call .private_key_jwt(id, key)",
            ));
        }
        let basic = (self.auth == super::ClientAuth::SecretBasic)
            .then(|| basic_authorization(&client_id, &self.client_secret));
        Ok(ClientCredentials {
            client_id,
            client_secret: self.client_secret,
            auth: self.auth,
            key: self.key,
            basic,
        })
    }
}

/// Checked credentials, as a client sends them on each call.
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    client_secret: String,
    pub(crate) auth: super::ClientAuth,
    key: Option<ClientKey>,
    /// The `Authorization` value of `client_secret_basic`, made once.
    basic: Option<String>,
}

impl ClientCredentials {
    /// The `Authorization` header of `client_secret_basic`, if that is the
    /// method.
    pub(crate) fn authorization(&self) -> Option<&str> {
        self.basic.as_deref()
    }

    /// Adds the client authentication to a token-endpoint or introspection
    /// form: `client_id` and `client_secret` for `client_secret_post`, a
    /// fresh assertion towards `audience` for `private_key_jwt`, nothing
    /// for `client_secret_basic` (its header is
    /// [`authorization`](Self::authorization)).
    pub(crate) fn add_to_form(
        &self,
        form: &mut String,
        audience: &str,
        now: impl FnOnce() -> Result<f64, AuthError>,
    ) -> Result<(), AuthError> {
        match (self.auth, &self.key) {
            (super::ClientAuth::SecretPost, _) => {
                form.push_str("&client_id=");
                crate::http::form_encode(&self.client_id, form);
                form.push_str("&client_secret=");
                crate::http::form_encode(&self.client_secret, form);
            }
            (super::ClientAuth::PrivateKeyJwt, Some(key)) => {
                let assertion = key.assertion(&self.client_id, audience, now()?)?;
                form.push_str("&client_assertion_type=");
                crate::http::form_encode(ASSERTION_TYPE, form);
                form.push_str("&client_assertion=");
                form.push_str(&assertion);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The `Authorization` value of `client_secret_basic`: the form-encoded id
/// and secret (RFC 6749 §2.3.1).
fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let mut pair = String::new();
    crate::http::form_encode(client_id, &mut pair);
    pair.push(':');
    crate::http::form_encode(client_secret, &mut pair);
    format!("Basic {}", crate::b64::encode_standard(pair))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JsonClaims, Key, Verifier};
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    };

    #[test]
    fn assertions_verify_with_the_public_key() {
        let der = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref()).unwrap();
        let spki = {
            // SubjectPublicKeyInfo of a P-256 point.
            let mut spki = vec![
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ];
            spki.extend_from_slice(pair.public_key().as_ref());
            spki
        };
        let key = ClientKey::from_pkcs8_der(Algorithm::ES256, der.as_ref())
            .unwrap()
            .with_kid("k1");
        assert!(!format!("{key:?}").contains("signer"));
        let now = 1_000_000.0;
        let jws = key.assertion("rs", "https://as/introspect", now).unwrap();
        let verifier = Verifier::builder()
            .key(
                Key::from_spki_der(Algorithm::ES256, &spki)
                    .unwrap()
                    .with_kid("k1"),
            )
            .audience("https://as/introspect")
            .issuer("rs")
            .clock(|| std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_010))
            .build()
            .unwrap();
        let claims = verifier.verify::<JsonClaims>(&jws).unwrap();
        assert_eq!(claims.sub(), Some("rs"));
        assert_eq!(claims.exp(), Some(1_000_060));
        assert!(claims.jti().is_some_and(|j| j.len() >= 16));
        let header = jws.split('.').next().unwrap();
        let header = {
            let bytes = crate::b64::decode(header.as_bytes()).unwrap();
            String::from_utf8(bytes).unwrap()
        };
        assert!(header.contains(r#""kid":"k1""#), "{header}");
        // A fresh jti each time.
        assert_ne!(
            key.assertion("rs", "a", now).unwrap().split('.').nth(1),
            key.assertion("rs", "a", now).unwrap().split('.').nth(1)
        );
    }

    #[test]
    fn keys_that_do_not_fit_are_refused() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        assert!(ClientKey::from_pkcs8_der(Algorithm::EdDSA, ed.as_ref()).is_ok());
        assert!(ClientKey::from_pkcs8_der(Algorithm::ES256, ed.as_ref()).is_err());
        assert!(ClientKey::from_pkcs8_der(Algorithm::HS256, ed.as_ref()).is_err());
        assert!(ClientKey::from_pkcs8_der(Algorithm::RS256, b"junk").is_err());
        let public = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let err = ClientKey::from_pem(Algorithm::ES256, public).unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    }
}
