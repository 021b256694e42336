//! [`JwtOrIntrospect`]: a JWT verified locally, any other token introspected.

use crate::BoxFuture;
use crate::error::AuthError;
use crate::verify::{TokenVerifier, Verified};

/// Verifies a token that looks like a compact JWS (three base64url
/// segments, the first a JSON object) with the JWT verifier, and any other
/// token with the introspector: for servers that receive both JWT and
/// opaque access tokens. A token that looks like a JWS is never sent to
/// the introspection endpoint, so a forged JWT is refused locally. An
/// encrypted token (a compact JWE, five segments) goes to the JWT verifier
/// when it decrypts ([`TokenVerifier::decrypts`]: a
/// [`Verifier`](crate::Verifier) with decryption keys), and to the
/// introspection endpoint otherwise (the server that issued it can read
/// it). The choice is by configuration, never by token: with decryption
/// keys, a JWE those keys cannot open (encrypted to another key) is
/// refused with 401, not introspected.
///
/// ```no_run
/// use tower_jwt_auth::{JwtAuthLayer, Verifier};
/// use tower_jwt_auth::introspection::{Introspector, JwtOrIntrospect};
/// use tower_jwt_auth::jwks::JwksCache;
///
/// let jwt = Verifier::builder()
///     .jwks_cache(JwksCache::discover("https://idp.example").build()?)
///     .issuer("https://idp.example")
///     .audience("my-api")
///     .build()?;
/// let opaque = Introspector::builder("https://idp.example/oauth2/introspect")
///     .client_credentials("my-api", "its-secret")
///     .issuer("https://idp.example")
///     .audience("my-api")
///     .build()?;
/// let layer = JwtAuthLayer::new(JwtOrIntrospect::new(jwt, opaque));
/// # let _ = layer;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Debug)]
pub struct JwtOrIntrospect<J, I> {
    jwt: J,
    introspect: I,
}

impl<J: TokenVerifier, I: TokenVerifier> JwtOrIntrospect<J, I> {
    /// JWTs to `jwt`, other tokens to `introspect`.
    pub fn new(jwt: J, introspect: I) -> Self {
        JwtOrIntrospect { jwt, introspect }
    }

    /// Whether `token` is the JWT verifier's: the one rule both
    /// `verify_now` and `verify_later` route by.
    fn for_jwt(&self, token: &str) -> bool {
        looks_like_jws(token) || (self.jwt.decrypts() && looks_like_jwe(token))
    }
}

/// Whether `token` has the shape of a compact JWS: three base64url
/// segments, the header starting as a JSON object does (`eyJ` is `{"`).
pub(crate) fn looks_like_jws(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    header.starts_with("eyJ") && b64url(header) && b64url(payload) && b64url(signature)
}

/// Whether `token` has the shape of a compact JWE (the JWE module's own
/// test: five segments), its protected header a JSON object (`eyJ`). The
/// JWE parser judges the rest.
fn looks_like_jwe(token: &str) -> bool {
    token.starts_with("eyJ") && crate::jwe::is_jwe(token)
}

impl<J: TokenVerifier, I: TokenVerifier> TokenVerifier for JwtOrIntrospect<J, I> {
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
        if self.for_jwt(token) {
            self.jwt.verify_now(token)
        } else {
            self.introspect.verify_now(token)
        }
    }

    fn verify_later<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, AuthError>> {
        if self.for_jwt(token) {
            self.jwt.verify_later(token)
        } else {
            self.introspect.verify_later(token)
        }
    }

    fn still_valid(&self, verified: &Verified) -> bool {
        // A signature verified it: the JWT verifier knows its key.
        if verified.key.is_some() {
            self.jwt.still_valid(verified)
        } else {
            self.introspect.still_valid(verified)
        }
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
    fn jws_shapes() {
        assert!(looks_like_jws("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"));
        assert!(looks_like_jws("eyJhbGciOiJub25lIn0.e30."));
        assert!(!looks_like_jws("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jws("abc.def.ghi"));
        assert!(!looks_like_jws("eyJh.e30"));
        assert!(!looks_like_jws("eyJh.e30.x.y.z"));
        assert!(!looks_like_jws("eyJh+.e30.sig"));
    }
}
