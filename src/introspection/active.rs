//! [`JwtThenIntrospect`]: a JWT verified locally, then checked to be still
//! active at the introspection endpoint (real-time revocation).

use crate::BoxFuture;
use crate::error::AuthError;
use crate::verify::{TokenVerifier, Verified};

/// Verifies a JWT locally, then asks the introspection endpoint whether it
/// is still active: revocation at the authorization server is seen within
/// the introspector's [`max_ttl`](crate::introspection::IntrospectorBuilder::max_ttl)
/// (default 60 s) instead of at the token's `exp`.
///
/// - The token must pass the JWT verifier first; a token it refuses (a
///   forged signature, an opaque token, a wrong audience) is refused with
///   the JWT verifier's error and never sent to the endpoint.
/// - Then the introspector must answer `active: true` (cached as the
///   introspector caches, keyed by the token's hash, shared among
///   concurrent requests); an inactive answer refuses the token with 401
///   `invalid_token`, an unreachable endpoint with 503 (fail closed, or as
///   [`stale_if_error`](crate::introspection::IntrospectorBuilder::stale_if_error) says).
/// - The claims are the JWT's, verified locally; the introspection answer
///   only decides whether the token is still active. A verified result is
///   reused (by the layer's token cache) no longer than the introspection
///   answer that admitted it.
///
/// Not every authorization server introspects its JWT access tokens:
/// oidc-provider, for one, refuses to (`unsupported_token_type`, which
/// this verifier takes for an outage and refuses with 503). Check that
/// yours does (Keycloak, Okta and Ory Hydra do).
///
/// ```no_run
/// use tower_jwt_auth::{JwtAuthLayer, Verifier};
/// use tower_jwt_auth::introspection::{Introspector, JwtThenIntrospect};
/// use tower_jwt_auth::jwks::JwksCache;
///
/// let jwt = Verifier::builder()
///     .jwks_cache(JwksCache::discover("https://idp.example").build()?)
///     .issuer("https://idp.example")
///     .audience("my-api")
///     .build()?;
/// let still_active = Introspector::builder("https://idp.example/oauth2/introspect")
///     .client_credentials("my-api", "its-secret")
///     .any_audience() // the JWT verifier checked it
///     .max_ttl(std::time::Duration::from_secs(10))
///     .build()?;
/// let layer = JwtAuthLayer::new(JwtThenIntrospect::new(jwt, still_active));
/// # let _ = layer;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Debug)]
pub struct JwtThenIntrospect<J, I> {
    jwt: J,
    introspect: I,
}

impl<J: TokenVerifier, I: TokenVerifier> JwtThenIntrospect<J, I> {
    /// Tokens verified by `jwt`, then checked by `introspect`.
    pub fn new(jwt: J, introspect: I) -> Self {
        JwtThenIntrospect { jwt, introspect }
    }
}

/// The JWT's verified claims, reused no longer than the answer that says
/// the token is still active.
fn admit(mut jwt: Verified, active: &Verified) -> Verified {
    if let Some(until) = active.reuse_until {
        jwt.reuse_until = Some(jwt.reuse_until.map_or(until, |own| own.min(until)));
    }
    jwt
}

impl<J: TokenVerifier, I: TokenVerifier> TokenVerifier for JwtThenIntrospect<J, I> {
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
        let verified = match self.jwt.verify_now(token)? {
            Ok(verified) => verified,
            Err(e) => return Some(Err(e)),
        };
        // Not cached: the slow path verifies the JWT again (cheap next to
        // the call) and asks the endpoint.
        let active = self.introspect.verify_now(token)?;
        Some(active.map(|active| admit(verified, &active)))
    }

    fn verify_later<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, AuthError>> {
        Box::pin(async move {
            let verified = self.jwt.verify_later(token).await?;
            let active = match self.introspect.verify_now(token) {
                Some(answer) => answer?,
                None => self.introspect.verify_later(token).await?,
            };
            Ok(admit(verified, &active))
        })
    }

    fn still_valid(&self, verified: &Verified) -> bool {
        // The JWT's key must still be in the key set; the answer's lifetime
        // is in `reuse_until`.
        self.jwt.still_valid(verified)
    }

    fn decrypts(&self) -> bool {
        self.jwt.decrypts()
    }

    fn now(&self) -> Result<f64, AuthError> {
        self.jwt.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwt_is_reused_no_longer_than_the_answer() {
        let jwt = Verified::from_payload(r#"{"sub":"u","exp":2000}"#).unwrap();
        let active = Verified::from_payload(r#"{"active":true}"#)
            .unwrap()
            .reuse_until(1060);
        let admitted = admit(jwt.clone(), &active);
        assert_eq!(admitted.reuse_until, Some(1060.0));
        assert_eq!(admitted.json(), r#"{"sub":"u","exp":2000}"#);
        let admitted = admit(jwt.reuse_until(1030), &active);
        assert_eq!(admitted.reuse_until, Some(1030.0));
    }
}
