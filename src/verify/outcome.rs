//! The verification step of the layer, open to other implementations:
//! [`TokenVerifier`] and what it returns, [`Verified`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;

use crate::claims::{Claims, Held, RawClaims, RegisteredClaims, TokenClaims};
use crate::clock::{SystemClock, unix_secs};
use crate::error::AuthError;
use crate::key::Fingerprint;
use crate::token::is_json_object;

/// The future an extension point returns when its answer needs I/O:
/// [`TokenVerifier::verify_later`],
/// `revocation::Revocation::check_later` (feature `revocation`) and
/// `dpop::ReplayStore::first_use_later` (feature `dpop`). Each of them also
/// has a `_now` method that answers without waiting when it can, so the
/// layer boxes a future only for real I/O.
///
/// ```
/// use tower_jwt_auth::BoxFuture;
///
/// fn later(n: u32) -> BoxFuture<'static, u32> {
///     Box::pin(async move { n + 1 })
/// }
/// # let _ = later(1);
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns a token into verified claims: the step of
/// [`JwtAuthLayer`](crate::JwtAuthLayer) between finding the token and
/// admitting the request.
///
/// Like `Revocation` (feature `revocation`) it answers now when it can (keys
/// at hand) and says so when it needs I/O first (a key fetch, a call to an
/// introspection endpoint). [`Verifier`](crate::Verifier), local JWT
/// verification with static or remote keys, is one implementation; the
/// claims type, guards, extractors, the token cache, revocation and
/// rejections work the same whatever the implementation.
///
/// ```
/// use tower_jwt_auth::{AuthError, BoxFuture, JwtAuthLayer, TokenVerifier, Verified};
///
/// /// Accepts exactly one fixed token (for a test).
/// #[derive(Debug)]
/// struct OneToken;
///
/// impl TokenVerifier for OneToken {
///     fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
///         Some(if token == "let-me-in" {
///             Verified::from_payload(r#"{"sub":"tester","exp":4102444800}"#)
///         } else {
///             Err(AuthError::InvalidSignature)
///         })
///     }
///
///     fn verify_later<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, AuthError>> {
///         Box::pin(std::future::ready(self.verify_now(token).unwrap()))
///     }
/// }
///
/// let layer = JwtAuthLayer::new(OneToken);
/// # let _ = layer;
/// ```
pub trait TokenVerifier: fmt::Debug + Send + Sync + 'static {
    /// Verifies `token` without waiting, if it can; `None` when I/O is
    /// needed first (the layer then awaits [`verify_later`](TokenVerifier::verify_later)).
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>>;

    /// Verifies `token`, doing the I/O it needs first (the layer calls it
    /// when [`verify_now`](TokenVerifier::verify_now) answered `None`).
    fn verify_later<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, AuthError>>;

    /// Whether `verified`, an earlier answer of this verifier, may answer
    /// again now (the token cache asks on every hit, after checking `exp`,
    /// `nbf` and [`Verified::reuse_until`]). The JWT verifier answers
    /// whether the key that verified it is still in the key set.
    fn still_valid(&self, verified: &Verified) -> bool {
        let _ = verified;
        true
    }

    /// Whether this verifier opens encrypted tokens (JWE) itself. A
    /// verifier that routes tokens between others
    /// ([`JwtOrIntrospect`](crate::introspection::JwtOrIntrospect)) gives
    /// it the encrypted ones when it does, and sends them to the
    /// introspection endpoint when it does not. `false` unless overridden;
    /// [`Verifier`](crate::Verifier) answers whether it has decryption keys
    /// and encryption is not [`Off`](crate::jwe::EncryptionMode::Off).
    fn decrypts(&self) -> bool {
        false
    }

    /// The current time, in seconds since the Unix epoch, by this
    /// verifier's clock (the token cache uses it for `exp` and `nbf`).
    ///
    /// # Errors
    /// [`AuthError::ClockUnavailable`] when the clock cannot be read.
    fn now(&self) -> Result<f64, AuthError> {
        unix_secs(&SystemClock)
    }
}

/// Verified claims, and how long the result may be reused.
///
/// What a [`TokenVerifier`] returns: the verified payload (read once into
/// the registered claims; the layer deserializes the application's claims
/// type from it once) and what a cache may do with it.
#[derive(Clone)]
pub struct Verified {
    pub(crate) claims: Held,
    /// The key that verified the token, when it was a signature.
    pub(crate) key: Option<Fingerprint>,
    /// The leeway of the verifier that accepted the token.
    pub(crate) leeway: f64,
    /// Reuse no later than this (seconds since the epoch).
    pub(crate) reuse_until: Option<f64>,
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The registered claims only: the payload may hold personal data.
        f.debug_struct("Verified")
            .field("registered", self.registered())
            .field("reuse_until", &self.reuse_until)
            .finish_non_exhaustive()
    }
}

impl Verified {
    /// Verified claims from a JSON object of claims that the verifier has
    /// established as genuine (a verified signature, an introspection
    /// answer). The registered claims are read strictly (a repeated or
    /// mistyped registered claim, or JSON a standard parser refuses, is an
    /// error); their values are not checked here: that is the verifier's
    /// job.
    ///
    /// # Errors
    /// [`AuthError::Malformed`] or [`AuthError::InvalidClaim`].
    pub fn from_payload(payload: impl Into<String>) -> Result<Verified, AuthError> {
        let payload = payload.into();
        let layout = read_registered(&payload)?.layout(&payload);
        Ok(Verified::own(TokenClaims::new(layout.holding(payload))))
    }

    /// Lets a cache reuse this answer until `unix_secs` at the latest
    /// (without it: until the token's `exp`), for example an introspection
    /// answer cached for a minute.
    #[must_use]
    pub fn reuse_until(mut self, unix_secs: i64) -> Self {
        self.reuse_until = Some(unix_secs as f64);
        self
    }

    /// The registered claims.
    pub fn registered(&self) -> &RegisteredClaims {
        self.claims.get().registered()
    }

    /// The verified payload, a JSON object, as text (as
    /// [`Claims::json`](crate::Claims::json); [`Claims::payload`](crate::Claims::payload)
    /// is the parsed value).
    pub fn json(&self) -> &str {
        self.claims.get().json()
    }

    /// The claims in the layer's type, for the request the layer admits,
    /// the verified claims moved in (no copy, no allocation of their own);
    /// [`JsonClaims`](crate::JsonClaims) without a parse until read, any
    /// other type deserialized from the payload.
    pub(crate) fn into_layer_claims<C: DeserializeOwned + 'static>(
        self,
    ) -> Result<Claims<C>, AuthError> {
        Claims::from_held(self.claims, true, self.reuse_until)
    }

    /// The claims in type `C`, as [`into_layer_claims`](Self::into_layer_claims)
    /// but not admitted by a layer (`Verifier::verify`): guards ignore them.
    pub(crate) fn into_claims<C: DeserializeOwned + 'static>(self) -> Result<Claims<C>, AuthError> {
        Claims::from_held(self.claims, false, self.reuse_until)
    }

    /// [`into_layer_claims`](Verified::into_layer_claims), and this answer
    /// again around those claims, for a cache (the two share one
    /// allocation).
    // What the token cache keeps; its fields are in every feature set.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    pub(crate) fn into_kept<C: DeserializeOwned + Send + Sync + 'static>(
        self,
    ) -> Result<(Claims<C>, Verified), AuthError> {
        let (key, leeway, reuse_until) = (self.key, self.leeway, self.reuse_until);
        let claims = self.into_layer_claims::<C>()?;
        let again = Verified {
            claims: Held::Shared(claims.shared()),
            key,
            leeway,
            reuse_until,
        };
        Ok((claims, again))
    }

    /// Whether a cache may answer with this now: not expired, valid
    /// already, and within [`reuse_until`](Verified::reuse_until).
    #[cfg(feature = "cache")]
    pub(crate) fn live_at(&self, now: f64) -> bool {
        let reg = self.registered();
        // Registered times are whole seconds, truncated: `exp` can only
        // look earlier than it is (stricter); `nbf` passed when stored and
        // time only moves on.
        reg.exp().is_none_or(|exp| now < exp as f64 + self.leeway)
            && reg.nbf().is_none_or(|nbf| now + self.leeway >= nbf as f64)
            && self.reuse_until.is_none_or(|until| now < until)
    }
}

#[cfg(feature = "test-util")]
impl<C: serde::de::DeserializeOwned + 'static> Claims<C> {
    /// Claims from a JSON payload, as if a token carrying it had verified
    /// (feature `test-util`), for unit tests of handlers and guards. The
    /// registered claims are read as strictly as from a token; nothing is
    /// checked against a clock, an issuer or an audience.
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jwt_auth::{Claims, RequireRole};
    ///
    /// let claims: Claims = Claims::from_payload(&json!({"sub": "ada", "roles": ["admin"]})).unwrap();
    /// assert!(RequireRole::any(["admin"]).check(&claims).is_ok());
    /// ```
    ///
    /// # Errors
    /// As a token's claims would be refused: a mistyped registered claim,
    /// or a payload that does not fit `C`.
    pub fn from_payload(payload: &serde_json::Value) -> Result<Claims<C>, crate::AuthError> {
        Verified::from_payload(payload.to_string())?.into_claims()
    }
}

/// The checks every verifier makes on registered claims that it has
/// established as genuine (a verified signature, an introspection answer):
/// `exp`, `nbf` and `iat` against `now` with the leeway, then `iss` and
/// `aud` against the configured ones (none configured: not checked).
pub(crate) struct ClaimRules<'a> {
    pub(crate) leeway: f64,
    pub(crate) require_exp: bool,
    pub(crate) issuers: &'a [String],
    pub(crate) audiences: &'a [String],
}

/// The configuration every builder of claim rules validates the same way
/// (the verifier's and the introspector's): a leeway of at most
/// [`MAX_LEEWAY`](crate::verify::MAX_LEEWAY), and an audience unless the
/// application chose to accept any.
pub(crate) fn check_rules_config(
    audiences: &[String],
    any_audience: bool,
    leeway: std::time::Duration,
) -> Result<(), crate::error::BuildError> {
    use crate::error::BuildError;
    use crate::verify::MAX_LEEWAY;
    if leeway > MAX_LEEWAY {
        return Err(BuildError::config(
            "leeway",
            format!("leeway {leeway:?} is over the maximum of {MAX_LEEWAY:?}"),
        ));
    }
    if audiences.is_empty() && !any_audience {
        return Err(BuildError::config(
            "audience",
            "no audience configured: call .audience(\"your-api\") so tokens minted for other \
             services are refused, or .any_audience() to accept every audience",
        ));
    }
    Ok(())
}

impl ClaimRules<'_> {
    pub(crate) fn check(&self, raw: &RawClaims<'_>, now: f64) -> Result<(), AuthError> {
        match raw.exp {
            Some(exp) if now >= exp.0 + self.leeway => return Err(AuthError::Expired),
            None if self.require_exp => return Err(AuthError::MissingClaim("exp".into())),
            _ => {}
        }
        if let Some(nbf) = raw.nbf
            && now + self.leeway < nbf.0
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(iat) = raw.iat
            && now + self.leeway < iat.0
        {
            return Err(AuthError::IssuedInFuture);
        }
        if !self.issuers.is_empty() {
            match raw.iss.as_deref() {
                None => return Err(AuthError::MissingClaim("iss".into())),
                Some(iss) if !self.issuers.iter().any(|i| i == iss) => {
                    return Err(AuthError::InvalidIssuer);
                }
                Some(_) => {}
            }
        }
        if !self.audiences.is_empty() {
            match &raw.aud {
                None => return Err(AuthError::MissingClaim("aud".into())),
                Some(aud) if !aud.contains_any(self.audiences) => {
                    return Err(AuthError::InvalidAudience);
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl Verified {
    /// Verified claims, owned: they move into the `Claims<C>` made from
    /// them.
    pub(crate) fn own(token: TokenClaims) -> Verified {
        Verified {
            claims: Held::Own(token),
            key: None,
            leeway: 0.0,
            reuse_until: None,
        }
    }

    /// Verified claims whose registered claims were already read (and
    /// checked) from the payload they hold: no second read. Shared, for a
    /// verifier that keeps its answers and hands out copies.
    #[cfg(feature = "introspection")]
    pub(crate) fn checked(registered: RegisteredClaims) -> Verified {
        Verified {
            claims: Held::Shared(crate::claims::SharedClaims::new(TokenClaims::new(
                registered,
            ))),
            key: None,
            leeway: 0.0,
            reuse_until: None,
        }
    }
}

/// Reads the registered claims of a payload, strictly.
pub(crate) fn read_registered(payload: &str) -> Result<RawClaims<'_>, AuthError> {
    if !is_json_object(payload.as_bytes()) {
        return Err(AuthError::Malformed("the payload is not a JSON object"));
    }
    // Plain JSON (nearly every token) takes a scanner that only ever
    // accepts what the strict read below accepts, with the same claims.
    if let Some(raw) = crate::claims::read_plain(payload) {
        return Ok(raw);
    }
    serde_json::from_str(payload).map_err(|e| {
        if e.is_data() {
            // Our own message: it names the claim, never its value.
            AuthError::InvalidClaim(e.to_string())
        } else {
            AuthError::Malformed("the payload is not valid JSON (a standard parser refuses it)")
        }
    })
}
