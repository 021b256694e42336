//! Verified claims as handlers see them: the application's own type plus
//! the registered claims (RFC 7519 §4.1).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

mod actor;
mod plain;
mod registered;
mod source;

pub use actor::{Actor, ActorChain};
pub use registered::RegisteredClaims;
pub(crate) use registered::*;
pub use source::ClaimSource;

/// The default claims type: the payload as a JSON object.
pub type JsonClaims = serde_json::Map<String, serde_json::Value>;

/// The verified claims of the request's token, deserialized into `C`.
///
/// The auth layer inserts `Claims<C>` into the request extensions; with the
/// `axum` feature it is also an extractor. It dereferences to `C`, and the
/// registered claims are at hand whatever `C` is. Cloning is cheap.
///
/// ```
/// use tower_jwt_auth::{Algorithm, Claims, Key, Verifier};
/// #[derive(Clone, serde::Deserialize)]
/// struct MyClaims { name: String }
///
/// let verifier = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .any_audience()
///     .build()?;
/// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
/// #     &serde_json::json!({"sub": "ada", "name": "Ada", "exp": 4102444800u64}),
/// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
/// let claims: Claims<MyClaims> = verifier.verify(&token).unwrap();
/// assert_eq!(claims.name, "Ada");           // your type, through Deref
/// assert_eq!(claims.sub(), Some("ada"));    // registered claims
/// assert_eq!(claims.exp(), Some(4102444800));
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub struct Claims<C = JsonClaims> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    /// `None` when `C` is [`JsonClaims`]: read lazily from the payload's
    /// own parse (see [`Claims::lazy_json`]), so the default claims type
    /// costs nothing until a handler reads it.
    custom: Option<C>,
    token: Held,
    /// Made by an auth layer for the request it admitted (not by
    /// `Verifier::verify` or a test helper): only such claims satisfy
    /// guards (see [`find_token_claims`]).
    admitted: bool,
    /// Until when the verifier's answer may be reused (seconds since the
    /// epoch; [`Verified::reuse_until`](crate::Verified::reuse_until)), if
    /// it said: the layer puts it into the request as [`ReuseUntil`].
    reuse_until: Option<f64>,
}

/// The verified claims independent of the application's claims type: what
/// guards, revocation and DPoP read. Held inside `Claims<C>` (one
/// allocation for both), or shared through a [`SharedClaims`].
#[derive(Clone)]
pub(crate) struct TokenClaims {
    /// The registered claims, holding the payload too.
    registered: RegisteredClaims,
    value: std::sync::OnceLock<serde_json::Value>,
}

/// A counted handle on [`TokenClaims`]: the layer puts one in the request
/// extensions next to a typed `Claims<C>` (with the default
/// `Claims<JsonClaims>`, guards read the one inside it; see
/// [`find_token_claims`]), and caches keep one. Its allocation is the
/// `Claims<C>` it came from, when it came from one.
#[derive(Clone)]
pub(crate) struct SharedClaims(Arc<dyn View>);

/// What holds a [`TokenClaims`].
trait View: Send + Sync + 'static {
    fn token(&self) -> &TokenClaims;
}

impl View for TokenClaims {
    fn token(&self) -> &TokenClaims {
        self
    }
}

impl<C: Send + Sync + 'static> View for Inner<C> {
    fn token(&self) -> &TokenClaims {
        self.token.get()
    }
}

impl Deref for SharedClaims {
    type Target = TokenClaims;

    fn deref(&self) -> &TokenClaims {
        self.0.token()
    }
}

impl SharedClaims {
    // The introspection answers' claims; the variant it makes is matched
    // in every feature set.
    #[cfg_attr(not(feature = "introspection"), allow(dead_code))]
    pub(crate) fn new(token: TokenClaims) -> Self {
        SharedClaims(Arc::new(token))
    }
}

/// The [`TokenClaims`] of a verification: owned until they move into the
/// `Claims<C>` made from them (no allocation of their own), or shared when
/// a verifier keeps its answers (introspection) or a cache does.
#[derive(Clone)]
pub(crate) enum Held {
    Own(TokenClaims),
    Shared(SharedClaims),
}

impl Held {
    pub(crate) fn get(&self) -> &TokenClaims {
        match self {
            Held::Own(token) => token,
            Held::Shared(shared) => shared,
        }
    }
}

impl TokenClaims {
    pub(crate) fn new(registered: RegisteredClaims) -> Self {
        TokenClaims {
            registered,
            value: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn registered(&self) -> &RegisteredClaims {
        &self.registered
    }

    /// The verified payload as JSON text.
    pub(crate) fn json(&self) -> &str {
        self.registered.payload()
    }

    /// See [`Claims::token_id`].
    pub(crate) fn token_id(&self) -> Cow<'_, str> {
        if let Some(jti) = self.registered().jti() {
            return Cow::Borrowed(jti);
        }
        Cow::Owned(format!(
            "sha256:{}",
            crate::b64::sha256(self.json().as_bytes())
        ))
    }

    /// The registered claims a revocation store is asked about: a token
    /// without `jti` is named by its [`token_id`](Claims::token_id).
    #[cfg(feature = "revocation")]
    pub(crate) fn revocation_name(&self) -> Cow<'_, RegisteredClaims> {
        let registered = self.registered();
        if registered.jti().is_some() {
            return Cow::Borrowed(registered);
        }
        let mut named = registered.clone();
        named.set_jti(self.token_id().into_owned());
        Cow::Owned(named)
    }

    /// The payload parsed as JSON, once, on first use. (It parses: the
    /// payload passed the strict read of the registered claims, which
    /// refuses any JSON that `serde_json` refuses.)
    pub(crate) fn value(&self) -> &serde_json::Value {
        self.value
            .get_or_init(|| serde_json::from_str(self.json()).unwrap_or_default())
    }

    /// The payload as a JSON object (parsed once, shared with
    /// [`value`](TokenClaims::value)).
    fn object(&self) -> &JsonClaims {
        static EMPTY: std::sync::OnceLock<JsonClaims> = std::sync::OnceLock::new();
        match self.value() {
            serde_json::Value::Object(map) => map,
            // Unreachable: the payload was checked to be a JSON object.
            _ => EMPTY.get_or_init(JsonClaims::new),
        }
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Claims {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: fmt::Debug + 'static> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("registered", self.registered())
            .field("custom", self.custom())
            .finish()
    }
}

impl<C: 'static> Deref for Claims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.custom()
    }
}

impl<C: 'static> Claims<C> {
    /// The application's claims.
    pub fn custom(&self) -> &C {
        match &self.inner.custom {
            Some(custom) => custom,
            None => Self::lazy_json(self.token()),
        }
    }

    /// Whether `C` is [`JsonClaims`]: read lazily, and found by guards
    /// without a `SharedClaims` next to it (see [`find_token_claims`]).
    pub(crate) fn is_json_claims() -> bool {
        std::any::TypeId::of::<C>() == std::any::TypeId::of::<JsonClaims>()
    }

    fn lazy_json(token: &TokenClaims) -> &C {
        // `custom` is `None` only when made by `json_lazily`, for
        // `C = JsonClaims`: the downcast holds.
        (token.object() as &dyn std::any::Any)
            .downcast_ref::<C>()
            .expect("lazily read claims are JsonClaims")
    }
}

impl<C: serde::de::DeserializeOwned + 'static> Claims<C> {
    /// The claims in type `C`, `token` moved in (no copy, no allocation of
    /// its own): [`JsonClaims`] without a parse until read, any other type
    /// deserialized from the payload.
    /// `admitted`: made by an auth layer for the request it admits;
    /// `reuse_until`: the verifier's limit on its answer.
    pub(crate) fn from_held(
        token: Held,
        admitted: bool,
        reuse_until: Option<f64>,
    ) -> Result<Self, crate::AuthError> {
        let custom = if Self::is_json_claims() {
            None
        } else {
            let custom = serde_json::from_str(token.get().json())
                .map_err(|e| crate::AuthError::ClaimsShape(crate::error::ShapeError::new(e)))?;
            Some(custom)
        };
        Ok(Claims {
            inner: Arc::new(Inner {
                custom,
                token,
                admitted,
                reuse_until,
            }),
        })
    }
}

impl<C: Send + Sync + 'static> Claims<C> {
    /// A counted handle on the type-independent claims, sharing this
    /// allocation.
    pub(crate) fn shared(&self) -> SharedClaims {
        match &self.inner.token {
            Held::Shared(shared) => shared.clone(),
            Held::Own(_) => SharedClaims(self.inner.clone()),
        }
    }
}

impl<C> Claims<C> {
    pub(crate) fn token(&self) -> &TokenClaims {
        self.inner.token.get()
    }

    /// Until when the verifier's answer these claims came from may be
    /// reused (seconds since the epoch), if it said.
    pub(crate) fn reuse_until(&self) -> Option<f64> {
        self.inner.reuse_until
    }

    /// The registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`).
    pub fn registered(&self) -> &RegisteredClaims {
        self.token().registered()
    }

    /// The verified payload as JSON text, for claims `C` does not model.
    pub fn json(&self) -> &str {
        self.token().json()
    }

    /// The verified payload as a JSON value (parsed once, on first use),
    /// for claims `C` does not model: `claims.payload()["email"]`.
    pub fn payload(&self) -> &serde_json::Value {
        self.token().value()
    }

    /// The `sub` claim.
    pub fn sub(&self) -> Option<&str> {
        self.registered().sub()
    }

    /// The `iss` claim.
    pub fn iss(&self) -> Option<&str> {
        self.registered().iss()
    }

    /// The `aud` claim, as a list (a single string becomes one element).
    pub fn aud(&self) -> &[String] {
        self.registered().aud()
    }

    /// The `exp` claim, in seconds since the Unix epoch.
    pub fn exp(&self) -> Option<i64> {
        self.registered().exp()
    }

    /// The `nbf` claim, in seconds since the Unix epoch.
    pub fn nbf(&self) -> Option<i64> {
        self.registered().nbf()
    }

    /// The `iat` claim, in seconds since the Unix epoch.
    pub fn iat(&self) -> Option<i64> {
        self.registered().iat()
    }

    /// The `jti` claim.
    pub fn jti(&self) -> Option<&str> {
        self.registered().jti()
    }

    /// What names this token for revocation: its `jti`, or, for a token
    /// without one (Auth0 and Entra ID access tokens carry none),
    /// `sha256:` and the base64url SHA-256 of its verified payload, which
    /// holds `iat`, `exp` and `sub` and so differs between tokens. Revoke
    /// with this id (for example `MemoryRevocation::revoke(iss, id, exp)`)
    /// and the revocation step finds it.
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, Claims, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
    /// #     &serde_json::json!({"sub": "ada", "exp": 4102444800u64}),
    /// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
    /// let claims: Claims = verifier.verify(&token).unwrap();
    /// assert!(claims.jti().is_none());
    /// assert!(claims.token_id().starts_with("sha256:"));
    /// ```
    pub fn token_id(&self) -> Cow<'_, str> {
        self.token().token_id()
    }
}

impl<C> Claims<C> {
    /// The values at `source` in the verified payload (roles, scopes,
    /// groups): see [`ClaimSource`] for how each shape is read.
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, ClaimSource, Claims, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
    /// #     &serde_json::json!({"exp": 4102444800u64, "cognito:groups": ["ops", "dev"]}),
    /// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
    /// let claims: Claims = verifier.verify(&token).unwrap();
    /// assert_eq!(claims.values(&ClaimSource::cognito_groups()), ["ops", "dev"]);
    /// ```
    pub fn values(&self, source: &ClaimSource) -> Vec<&str> {
        source.read(self.payload())
    }

    /// Whether the `roles` claim holds `role` (other layouts:
    /// [`values`](Claims::values) or [`RequireRole::check`](crate::RequireRole::check)).
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, Claims, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
    /// #     &serde_json::json!({"exp": 4102444800u64, "roles": ["admin"], "scp": "read write"}),
    /// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
    /// let claims: Claims = verifier.verify(&token).unwrap();
    /// assert!(claims.has_role("admin"));
    /// assert!(claims.has_scope("write"));
    /// assert!(!claims.has_scope("read write"));
    /// ```
    pub fn has_role(&self, role: &str) -> bool {
        ClaimSource::roles().contains(self.payload(), role)
    }

    /// Whether `scope` is among the token's scopes (`scope` or `scp`).
    pub fn has_scope(&self, scope: &str) -> bool {
        let payload = self.payload();
        ClaimSource::scope().contains(payload, scope) || ClaimSource::scp().contains(payload, scope)
    }

    /// The token's `act` chain (RFC 8693 §4.1): who acts for the subject,
    /// the current actor first; empty without `act`. The actors are
    /// information: the principal is the token's own `sub`, and guards
    /// judge the token's own claims, never an actor's.
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, Claims, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
    /// #     &serde_json::json!({"exp": 4102444800u64, "sub": "alice", "act": {"sub": "agent-1"}}),
    /// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
    /// let claims: Claims = verifier.verify(&token).unwrap();
    /// assert_eq!(claims.act()?.current().and_then(|a| a.sub()), Some("agent-1"));
    /// # Ok::<(), tower_jwt_auth::AuthError>(())
    /// ```
    ///
    /// # Errors
    /// [`AuthError::InvalidClaim`](crate::AuthError::InvalidClaim) when `act` (or a nested one) is not an
    /// object, its `sub` or `iss` is not a string, or the chain is deeper
    /// than 32.
    pub fn act(&self) -> Result<ActorChain, crate::AuthError> {
        ActorChain::read(self.payload())
    }

    /// The token's `may_act` (RFC 8693 §4.4): the party that may act for
    /// the subject (a token exchange's authorization server reads it).
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, Claims, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
    /// #     &serde_json::json!({"exp": 4102444800u64, "sub": "alice", "may_act": {"sub": "agent-1"}}),
    /// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
    /// let claims: Claims = verifier.verify(&token).unwrap();
    /// assert_eq!(claims.may_act()?.unwrap().sub(), Some("agent-1"));
    /// # Ok::<(), tower_jwt_auth::AuthError>(())
    /// ```
    ///
    /// # Errors
    /// [`AuthError::InvalidClaim`](crate::AuthError::InvalidClaim) when `may_act` is not an object, or its
    /// `sub` or `iss` is not a string.
    pub fn may_act(&self) -> Result<Option<Actor>, crate::AuthError> {
        actor::may_act(self.payload())
    }
}

/// Marks a request that went through the auth layer in optional mode
/// without a token, so extractors can tell "anonymous" from "the layer is
/// missing".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anonymous;

/// Put into the request next to the claims the innermost layer admitted
/// when the verifier limited how long its answer may be reused
/// ([`Verified::reuse_until`](crate::Verified::reuse_until), seconds since
/// the epoch): an introspection answer, say. What the token's `exp` does
/// not bound (a WebSocket, feature `ws`) ends there.
// Read by `ws` only; written in every feature set.
#[cfg_attr(not(feature = "ws"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReuseUntil(pub(crate) f64);

/// What the innermost auth layer decided for a request, as the guards and
/// extractors see it: the one lookup they all go through
/// ([`find_token_claims`], [`find_claims`]).
pub(crate) enum Found<'a, T> {
    Claims(&'a T),
    /// The innermost layer ran in optional mode and the request had no
    /// token: no principal, whatever an outer layer admitted.
    Anonymous,
    /// The innermost layer admitted claims of another type than the `T`
    /// asked for (its `.claims::<C>()` is not the reader's type).
    OtherType,
    /// No auth layer ran.
    NoLayer,
}

/// The type-independent claims of the innermost auth layer's decision.
///
/// This is the one rule for "who is the principal" (see the layer's
/// `admit`, which keeps it true):
/// - a `SharedClaims` (next to typed claims) is the innermost layer's: a
///   layer that admits default claims or no one removes an outer one;
/// - then the anonymous mark: a layer that admits someone removes an outer
///   one, so a mark present is the innermost decision;
/// - then the `Claims<JsonClaims>` that a default layer inserts alone (one
///   extension, not two), if a layer admitted it.
///
/// Claims that no layer admitted (the application's own
/// `Verifier::verify`) never count.
pub(crate) fn find_token_claims(ext: &http::Extensions) -> Found<'_, TokenClaims> {
    if let Some(shared) = ext.get::<SharedClaims>() {
        return Found::Claims(shared);
    }
    if ext.get::<Anonymous>().is_some() {
        return Found::Anonymous;
    }
    match ext.get::<Claims<JsonClaims>>() {
        Some(claims) if claims.inner.admitted => Found::Claims(claims.token()),
        _ => Found::NoLayer,
    }
}

/// The innermost layer's claims as `Claims<C>`: found through
/// [`find_token_claims`], and only if the `Claims<C>` in the request is
/// the one that layer admitted (the same claims, not an outer layer's or
/// the application's).
pub(crate) fn find_claims<C: Send + Sync + 'static>(
    ext: &http::Extensions,
) -> Found<'_, Claims<C>> {
    match find_token_claims(ext) {
        Found::Claims(token) => match ext.get::<Claims<C>>() {
            Some(claims) if std::ptr::eq(claims.token(), token) => Found::Claims(claims),
            _ => Found::OtherType,
        },
        Found::Anonymous => Found::Anonymous,
        Found::OtherType => Found::OtherType,
        Found::NoLayer => Found::NoLayer,
    }
}

/// The claims a handler extracts (axum's `Claims<C>`, tonic's
/// `GrpcClaims`): the innermost layer's ([`find_claims`]); with no auth
/// layer at all, claims the application inserted itself (its own
/// middleware, tests).
#[cfg(any(feature = "axum", feature = "tonic"))]
pub(crate) fn find_for_handler<C: Send + Sync + 'static>(
    ext: &http::Extensions,
) -> Found<'_, Claims<C>> {
    match find_claims(ext) {
        Found::NoLayer => ext.get::<Claims<C>>().map_or(Found::NoLayer, Found::Claims),
        found => found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_claims_read_lazily_match_an_eager_parse() {
        let payload = r#"{"sub":"ada","roles":["a","b"],"n":1.5,"o":{"k":null}}"#;
        let token = || {
            let raw: RawClaims<'_> = serde_json::from_str(payload).unwrap();
            TokenClaims::new(raw.layout(payload).holding(payload.to_owned()))
        };
        let lazy = Claims::<JsonClaims>::from_held(Held::Own(token()), true, None).unwrap();
        assert!(lazy.inner.custom.is_none(), "JsonClaims are read lazily");
        let eager: JsonClaims = serde_json::from_str(payload).unwrap();
        assert_eq!(*lazy, eager);
        assert_eq!(lazy.custom()["roles"][1], "b");
        assert_eq!(lazy.payload()["sub"], "ada");
        // Any other type is deserialized eagerly, never read lazily.
        let value = Claims::<serde_json::Value>::from_held(Held::Own(token()), true, None).unwrap();
        assert_eq!(value.inner.custom.as_ref().unwrap()["sub"], "ada");
        #[derive(Debug, serde::Deserialize)]
        struct Sub {
            sub: String,
        }
        let sub = Claims::<Sub>::from_held(Held::Own(token()), true, None).unwrap();
        assert_eq!(sub.inner.custom.as_ref().unwrap().sub, "ada");
        assert!(format!("{lazy:?}").contains("roles"));
        // The shared view of owned claims is the same allocation.
        let shared = lazy.shared();
        assert!(std::ptr::eq(shared.json(), lazy.json()));
        assert_eq!(shared.registered().sub(), Some("ada"));
    }

    fn raw(json: &str) -> Result<RawClaims<'_>, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn registered_types_are_enforced() {
        assert!(raw(r#"{"exp":"123"}"#).is_err());
        assert!(raw(r#"{"exp":true}"#).is_err());
        assert!(raw(r#"{"iss":5}"#).is_err());
        assert!(raw(r#"{"aud":[1]}"#).is_err());
        assert!(raw(r#"{"sub":"a","sub":"b"}"#).is_err(), "duplicate");
        // `null` is not a NumericDate, a string or an audience: a registered
        // claim given as null is of the wrong type, not absent (jose and
        // jsonwebtoken refuse `"nbf": null`; found by tests/it/differential).
        for claim in ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"] {
            let json = format!(r#"{{"{claim}":null}}"#);
            assert!(raw(&json).is_err(), "{json} accepted");
        }
        let payload = r#"{"exp":1.5,"aud":["a","b"],"sub":"x\u0041"}"#;
        let reg = raw(payload)
            .unwrap()
            .layout(payload)
            .holding(payload.into());
        assert_eq!(reg.exp(), Some(1));
        assert_eq!(reg.aud(), ["a", "b"]);
        assert_eq!(reg.sub(), Some("xA"));
    }

    #[test]
    fn the_whole_payload_is_parsed_strictly() {
        for bad in [
            r#"{"x":1e400}"#,
            r#"{"x":[{"y":-1e999}]}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"exp":1,"exp":2}"#,
            r#"{"exp":null,"exp":2}"#,
            r#"{"\u0065xp":1,"exp":2}"#,
        ] {
            assert!(raw(bad).is_err(), "{bad}");
        }
        let err = raw(r#"{"exp":"s3cret"}"#).err().unwrap().to_string();
        assert!(err.contains("`exp`") && !err.contains("s3cret"), "{err}");
        assert!(raw(r#"{"x":[1e300,{"y":null}],"z":"\ud83d\ude00"}"#).is_ok());
    }

    #[test]
    fn numeric_dates_across_the_double_range() {
        // Any JSON number in double range is a NumericDate (RFC 7519 §2),
        // however it is written: the largest double spelled out in digits
        // is read, not refused as out of range (found by the RFC 7519 model
        // in tests/it/differential; jose reads it).
        let max = format!(r#"{{"exp":{}}}"#, f64::MAX);
        assert_eq!(raw(&max).unwrap().exp, Some(NumericDate(f64::MAX)));
        let max_dot = format!(r#"{{"nbf":{}.0}}"#, f64::MAX);
        assert_eq!(raw(&max_dot).unwrap().nbf, Some(NumericDate(f64::MAX)));
        assert_eq!(
            raw(r#"{"iat":17e307}"#).unwrap().iat,
            Some(NumericDate(1.7e308))
        );
        assert!(raw(r#"{"exp":1e400}"#).is_err(), "beyond the double range");
    }

    #[test]
    fn registered_strings_share_the_payloads_allocation() {
        let plain = r#"{"iss":"https://a","sub":"ada","aud":["x","y"],"jti":"j"}"#;
        let reg = read_plain(plain)
            .unwrap()
            .layout(plain)
            .holding(plain.into());
        assert_eq!(reg.payload(), plain);
        assert_eq!(reg.text.len(), plain.len(), "nothing copied");
        assert_eq!(
            (reg.iss(), reg.sub(), reg.jti()),
            (Some("https://a"), Some("ada"), Some("j"))
        );
        assert_eq!(reg.aud(), ["x", "y"]);
        // Strings with escapes are unescaped after the payload.
        let escaped = r#"{"iss":"https:\/\/a","sub":"\u0061da","aud":"\"q\"","jti":"j"}"#;
        let raw: RawClaims<'_> = serde_json::from_str(escaped).unwrap();
        let reg = raw.layout(escaped).holding(escaped.into());
        assert_eq!(reg.payload(), escaped);
        assert_eq!(
            (reg.iss(), reg.sub(), reg.jti()),
            (Some("https://a"), Some("ada"), Some("j"))
        );
        assert_eq!(reg.aud(), ["\"q\""]);
        let mut named = reg.clone();
        named.set_jti("other".into());
        assert_eq!((named.jti(), named.payload()), (Some("other"), escaped));
        assert_eq!(RegisteredClaims::default().payload(), "");
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let r = raw(r#"{"iss":"https://a","sub":"x\u0041","jti":"j"}"#).unwrap();
        assert!(matches!(r.iss.as_ref().unwrap().0, Cow::Borrowed(_)));
        assert!(matches!(r.jti.as_ref().unwrap().0, Cow::Borrowed(_)));
        assert!(matches!(r.sub.as_ref().unwrap().0, Cow::Owned(_)));
        assert_eq!(r.sub.as_deref(), Some("xA"));
    }

    #[test]
    fn audience_matching() {
        let one = raw(r#"{"aud":"api"}"#).unwrap().aud.unwrap();
        assert!(one.contains_any(&["api".into()]));
        assert!(!one.contains_any(&["other".into()]));
        let many = raw(r#"{"aud":["x","api"]}"#).unwrap().aud.unwrap();
        assert!(many.contains_any(&["api".into()]));
        let empty = raw(r#"{"aud":[]}"#).unwrap().aud.unwrap();
        assert!(!empty.contains_any(&["api".into()]));
    }
}
