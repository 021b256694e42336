//! Managing the issuer's keys and its failures: rotation, removal,
//! publication, fault injection, request counters.

use std::sync::atomic::Ordering;

use super::{Issuer, IssuerFailure};
use crate::algorithm::Algorithm;
use crate::error::BuildError;
use crate::sign::KeyEntry;

impl Issuer {
    /// Generates a key for `alg` and publishes it; the signing key does not
    /// change (see [`Issuer::rotate`]). Returns the new key's `kid`.
    ///
    /// Supported: `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`
    /// (2048-bit RSA), `ES256`, `ES384`, `ES512` and `EdDSA` (Ed25519).
    ///
    /// ```
    /// use tower_jwt_auth::Algorithm;
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let kid = issuer.add_key(Algorithm::ES256)?;
    /// assert!(issuer.jwks_json().contains(&kid));
    /// assert!(issuer.add_key(Algorithm::HS256).is_err());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an HMAC algorithm (a shared secret
    /// cannot be published); [`BuildError::InvalidKey`] if aws-lc fails to
    /// generate the key.
    pub fn add_key(&self, alg: Algorithm) -> Result<String, BuildError> {
        let entry = KeyEntry::generate(alg)?;
        let kid = entry.kid.clone();
        self.handle.shared.lock().keys.push(entry);
        Ok(kid)
    }

    /// Generates and publishes a key for `alg` and makes it the signing key.
    /// The older keys stay published (and usable with [`Issuer::sign_with`])
    /// until [removed](Issuer::remove_key). Returns the new key's `kid`.
    ///
    /// ```
    /// use tower_jwt_auth::Algorithm;
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let old = issuer.signing_kid();
    /// let new = issuer.rotate(Algorithm::ES384)?;
    /// assert_eq!(issuer.signing_kid(), new);
    /// assert!(issuer.jwks_json().contains(&old));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Issuer::add_key`].
    pub fn rotate(&self, alg: Algorithm) -> Result<String, BuildError> {
        let entry = KeyEntry::generate(alg)?;
        let kid = entry.kid.clone();
        let mut state = self.handle.shared.lock();
        state.keys.push(entry);
        state.signing = kid.clone();
        Ok(kid)
    }

    /// Removes a key: it is no longer published nor used to sign. If it was
    /// the signing key, the newest remaining key signs. Returns whether a key
    /// was removed: `false` for an unknown `kid`, and for the last key, which
    /// cannot be removed (hide it with [`Issuer::publish`] to serve an empty
    /// key set).
    ///
    /// ```
    /// use tower_jwt_auth::Algorithm;
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let first = issuer.signing_kid();
    /// let second = issuer.add_key(Algorithm::EdDSA)?;
    /// assert!(issuer.remove_key(&first));
    /// assert_eq!(issuer.signing_kid(), second);
    /// assert!(!issuer.remove_key(&second), "the last key stays");
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_key(&self, kid: &str) -> bool {
        let mut state = self.handle.shared.lock();
        if state.keys.len() < 2 {
            return false;
        }
        let Some(index) = state.keys.iter().position(|k| k.kid == kid) else {
            return false;
        };
        state.keys.remove(index);
        if state.signing == kid
            && let Some(newest) = state.keys.last()
        {
            state.signing = newest.kid.clone();
        }
        true
    }

    /// Shows (`true`) or hides (`false`) a key in the key set. A hidden key
    /// still signs, to test tokens whose `kid` the key set does not have.
    /// Returns whether the key exists.
    ///
    /// ```
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// let kid = issuer.signing_kid();
    /// assert!(issuer.publish(&kid, false));
    /// assert_eq!(issuer.jwks_json(), r#"{"keys":[]}"#);
    /// assert!(!issuer.publish("no-such-kid", true));
    /// # Ok(())
    /// # }
    /// ```
    pub fn publish(&self, kid: &str, published: bool) -> bool {
        let mut state = self.handle.shared.lock();
        match state.keys.iter_mut().find(|k| k.kid == kid) {
            Some(key) => {
                key.published = published;
                true
            }
            None => false,
        }
    }

    /// How many requests the key set route has had (failed ones included).
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// let mut stream = tokio::net::TcpStream::connect(issuer.addr()).await?;
    /// stream
    ///     .write_all(b"GET /jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ///     .await?;
    /// let mut answer = String::new();
    /// stream.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 200"));
    /// assert_eq!(issuer.jwks_requests(), 1);
    /// assert_eq!(issuer.discovery_requests(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwks_requests(&self) -> usize {
        self.handle.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many requests the two discovery routes have had together (see
    /// [`Issuer::jwks_requests`] for an example).
    pub fn discovery_requests(&self) -> usize {
        self.handle.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// Sets how the key set and discovery routes answer, from the next
    /// request on ([`IssuerFailure::None`] to answer normally again).
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tower_jwt_auth::testing::{Issuer, IssuerFailure};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// issuer.set_failure(IssuerFailure::Status(503));
    /// let mut stream = tokio::net::TcpStream::connect(issuer.addr()).await?;
    /// stream
    ///     .write_all(b"GET /jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ///     .await?;
    /// let mut answer = String::new();
    /// stream.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 503"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_failure(&self, failure: IssuerFailure) {
        self.handle.shared.lock().failure = failure;
    }

    /// Sets (or with `None` removes) the `Cache-Control` header of normal
    /// key set answers, for example `"max-age=60"`. A value that is not a
    /// valid header value is not sent.
    ///
    /// ```
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// issuer.set_cache_control(Some("public, max-age=300"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.handle.shared.lock().cache_control = value.map(str::to_owned);
    }

    /// Makes the discovery document name another `issuer` (with `None`, its
    /// own [`url`](Issuer::url) again), to test that a client refuses a
    /// document whose issuer differs from the one it asked for. Tokens keep
    /// the real issuer.
    ///
    /// ```
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// issuer.set_discovery_issuer(Some("https://someone-else.example"));
    /// issuer.set_discovery_issuer(None); // its own URL again
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        self.handle.shared.lock().discovery_issuer = issuer.map(str::to_owned);
    }
}
