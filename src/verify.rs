//! Token to claims: the [`TokenVerifier`] step of the layer, and its JWT
//! implementation [`Verifier`]: algorithm allow-list, key selection,
//! signature and claim validation. Pure apart from key fetches: no locks
//! held across I/O.

mod outcome;

pub(crate) use outcome::read_registered;
pub use outcome::{TokenVerifier, Verified, VerifyFuture};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};

use crate::claims::TokenClaims;

use crate::algorithm::{Algorithm, Family};
use crate::b64;
use crate::claims::{Claims, RawClaims};
use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::{AuthError, BuildError};
use crate::key::{Fingerprint, Key, KeySet, parse_jwk_set};
use crate::token::{self, is_json_object};

/// The default clock-skew leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The largest leeway a verifier accepts.
pub(crate) const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Longest signature accepted (RSA-8192).
const MAX_SIGNATURE_LEN: usize = 1024;

/// Verifies tokens: signature with an allowed algorithm and a fitting key,
/// then the claims. Cheap to clone; build one with [`Verifier::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, Key, Verifier};
///
/// let verifier = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .issuer("https://issuer.example")
///     .audience("my-api")
///     .leeway(Duration::from_secs(10))
///     .build()?;
/// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
/// #     &serde_json::json!({"iss": "https://issuer.example", "aud": "my-api", "exp": 4102444800u64}),
/// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
/// let claims: tower_jwt_auth::Claims = verifier.verify(&token).unwrap();
/// assert_eq!(claims.iss(), Some("https://issuer.example"));
/// assert!(verifier.verify::<tower_jwt_auth::JsonClaims>("not.a.token").is_err());
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Config>,
}

struct Config {
    keys: Keys,
    allowed: Vec<Algorithm>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: f64,
    require_exp: bool,
    required: Vec<String>,
    typ: Option<String>,
    clock: Arc<dyn Clock>,
}

/// Where the verifier's keys come from.
enum Keys {
    Static(KeySet),
    #[cfg(feature = "jwks")]
    Remote(crate::jwks::JwksCache),
    /// One verifier per issuer; a token goes to the one its `iss` names.
    Issuers(Vec<(String, Verifier)>),
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keys::Static(set) => f.debug_list().entries(set.keys()).finish(),
            #[cfg(feature = "jwks")]
            Keys::Remote(cache) => cache.fmt(f),
            Keys::Issuers(list) => f
                .debug_map()
                .entries(list.iter().map(|(i, v)| (i, v)))
                .finish(),
        }
    }
}

/// The outcome of trying to verify without waiting.
pub(crate) enum Now {
    Done(Result<Verified, AuthError>),
    /// The keys for this token must be fetched first: use `verify_async`.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    Pending,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner;
        f.debug_struct("Verifier")
            .field("keys", &c.keys)
            .field("allowed", &c.allowed)
            .field("issuers", &c.issuers)
            .field("audiences", &c.audiences)
            .field("leeway_secs", &c.leeway)
            .field("require_exp", &c.require_exp)
            .field("required", &c.required)
            .field("typ", &c.typ)
            .finish()
    }
}

impl Verifier {
    /// Starts building a verifier.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Verifies `token` and deserializes its claims into `C`.
    ///
    /// # Errors
    /// An [`AuthError`] saying why the token is refused. The signature is
    /// checked before any claim is read, so a forged token is always
    /// [`AuthError::InvalidSignature`] (or a header error), never `Expired`.
    ///
    /// With keys from a [`JwksCache`](crate::JwksCache), this uses the keys at
    /// hand and never waits: a token whose key is not cached yet, or whose
    /// cached keys expired with no refresh under way, fails with
    /// [`AuthError::KeysUnavailable`] (expired keys are never used here
    /// unless the provider is failing). Use
    /// [`verify_async`](Verifier::verify_async) to fetch keys as needed.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Claims<C>, AuthError> {
        match self.try_now(token) {
            Now::Done(result) => result?.to_claims(),
            Now::Pending => Err(AuthError::KeysUnavailable(
                "the key set has not been fetched yet; use verify_async or JwksCache::prefetch"
                    .into(),
            )),
        }
    }

    /// Verifies `token`, fetching remote keys first when the token names a
    /// key not cached yet or the cached keys expired (concurrent callers
    /// share one fetch, fetches start at least
    /// [`min_refetch_interval`](crate::JwksCacheBuilder::min_refetch_interval)
    /// apart, and a caller waits at most the cache's fetch timeout).
    /// Dropping the future never cancels the fetch.
    ///
    /// # Errors
    /// As [`verify`](Verifier::verify); [`AuthError::KeysUnavailable`] when
    /// the keys cannot be fetched and none are cached.
    pub async fn verify_async<C: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Claims<C>, AuthError> {
        self.verified_async(token).await?.to_claims()
    }

    /// As [`verify_async`](Verifier::verify_async), before the claims type.
    async fn verified_async(&self, token: &str) -> Result<Verified, AuthError> {
        match self.try_now(token) {
            Now::Done(result) => result,
            Now::Pending => self.verify_after_fetch(token).await,
        }
    }

    async fn verify_after_fetch(&self, token: &str) -> Result<Verified, AuthError> {
        match &self.inner.keys {
            Keys::Issuers(_) => self.route(token)?.fetch_single(token).await,
            _ => self.fetch_single(token).await,
        }
    }

    #[cfg(not(feature = "jwks"))]
    async fn fetch_single(&self, token: &str) -> Result<Verified, AuthError> {
        match self.try_now(token) {
            Now::Done(result) => result,
            Now::Pending => Err(AuthError::KeysUnavailable("no keys".into())),
        }
    }

    #[cfg(feature = "jwks")]
    async fn fetch_single(&self, token: &str) -> Result<Verified, AuthError> {
        let jws = token::parse(token)?;
        let Keys::Remote(cache) = &self.inner.keys else {
            return match self.try_now(token) {
                Now::Done(result) => result,
                Now::Pending => Err(AuthError::KeysUnavailable("no keys".into())),
            };
        };
        let keys = cache.keys_for(jws.kid.as_deref(), jws.alg).await?;
        self.finish(&jws, keys.keys())
    }

    /// Verifies with the keys at hand, or says that keys must be fetched.
    pub(crate) fn try_now(&self, token: &str) -> Now {
        let jws = match token::parse(token) {
            Ok(jws) => jws,
            Err(e) => return Now::Done(Err(e)),
        };
        crate::observe::kid(jws.kid.as_deref());
        match &self.inner.keys {
            Keys::Static(keys) => Now::Done(self.finish(&jws, keys)),
            Keys::Issuers(_) => match self.route(token) {
                Ok(tenant) => tenant.try_now(token),
                Err(e) => Now::Done(Err(e)),
            },
            #[cfg(feature = "jwks")]
            Keys::Remote(cache) => {
                if let Err(e) = self.check_header(&jws) {
                    return Now::Done(Err(e));
                }
                match cache.with_cached(jws.kid.as_deref(), jws.alg, |keys| self.finish(&jws, keys))
                {
                    Some(result) => Now::Done(result),
                    None => Now::Pending,
                }
            }
        }
    }

    /// The verifier of the issuer named by the token's (not yet verified)
    /// `iss`. The token is then verified only with that issuer's keys; a
    /// token from an issuer not configured is refused without any fetch.
    fn route(&self, token: &str) -> Result<&Verifier, AuthError> {
        #[derive(serde::Deserialize)]
        struct Iss<'a> {
            #[serde(borrow)]
            iss: Option<std::borrow::Cow<'a, str>>,
        }
        let Keys::Issuers(list) = &self.inner.keys else {
            return Ok(self);
        };
        let payload = token
            .split('.')
            .nth(1)
            .and_then(|p| b64::decode(p.as_bytes()))
            .ok_or(AuthError::Malformed("the payload is not strict base64url"))?;
        if !is_json_object(&payload) {
            return Err(AuthError::Malformed("the payload is not a JSON object"));
        }
        let iss: Iss<'_> = serde_json::from_slice(&payload).map_err(|e| {
            if e.is_data() {
                AuthError::InvalidClaim("`iss` is not a string, or the payload repeats it".into())
            } else {
                AuthError::Malformed("the payload is not valid JSON")
            }
        })?;
        let iss = iss
            .iss
            .ok_or_else(|| AuthError::MissingClaim("iss".into()))?;
        list.iter()
            .find(|(name, _)| *name == iss)
            .map(|(_, v)| v)
            .ok_or(AuthError::InvalidIssuer)
    }

    /// One verifier for several issuers (multi-tenant): each keeps its own
    /// keys (static or a [`JwksCache`](crate::JwksCache)), audience and
    /// rules. A token is routed by its `iss` claim, read before
    /// verification, and then verified only against that issuer's
    /// verifier, which checks `iss` again.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Key, Verifier};
    ///
    /// let a = Verifier::builder()
    ///     .key(Key::hmac(Algorithm::HS256, [1u8; 32])?)
    ///     .issuer("https://a.example")
    ///     .audience("api")
    ///     .build()?;
    /// let b = Verifier::builder()
    ///     .key(Key::hmac(Algorithm::HS256, [2u8; 32])?)
    ///     .issuer("https://b.example")
    ///     .audience("api")
    ///     .build()?;
    /// let both = Verifier::issuers([a, b])?;
    /// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
    /// #     &serde_json::json!({"iss": "https://b.example", "aud": "api", "exp": 4102444800u64}),
    /// #     &jsonwebtoken::EncodingKey::from_secret(&[2u8; 32])).unwrap();
    /// let claims: tower_jwt_auth::Claims = both.verify(&token).unwrap();
    /// assert_eq!(claims.iss(), Some("https://b.example"));
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] when a verifier does not have exactly
    /// one issuer, two share an issuer, a verifier is itself multi-issuer,
    /// or the list is empty.
    pub fn issuers(verifiers: impl IntoIterator<Item = Verifier>) -> Result<Verifier, BuildError> {
        let mut list: Vec<(String, Verifier)> = Vec::new();
        for v in verifiers {
            if matches!(v.inner.keys, Keys::Issuers(_)) {
                return Err(BuildError::InvalidConfig(
                    "a multi-issuer verifier cannot contain another".into(),
                ));
            }
            let [issuer] = v.inner.issuers.as_slice() else {
                return Err(BuildError::InvalidConfig(
                    "each verifier of a multi-issuer verifier needs exactly one .issuer(..)".into(),
                ));
            };
            if list.iter().any(|(i, _)| i == issuer) {
                return Err(BuildError::InvalidConfig(format!(
                    "two verifiers for the issuer {issuer:?}"
                )));
            }
            list.push((issuer.clone(), v));
        }
        let Some(clock) = list.first().map(|(_, v)| Arc::clone(&v.inner.clock)) else {
            return Err(BuildError::NoKeys);
        };
        let mut allowed: Vec<Algorithm> = list
            .iter()
            .flat_map(|(_, v)| v.inner.allowed.iter().copied())
            .collect();
        allowed.sort();
        allowed.dedup();
        Ok(Verifier {
            inner: Arc::new(Config {
                keys: Keys::Issuers(list),
                allowed,
                issuers: Vec::new(),
                audiences: Vec::new(),
                leeway: 0.0,
                require_exp: true,
                required: Vec::new(),
                typ: None,
                clock,
            }),
        })
    }

    fn check_header(&self, jws: &token::Jws<'_>) -> Result<(), AuthError> {
        let cfg = &*self.inner;
        if !cfg.allowed.contains(&jws.alg) {
            return Err(AuthError::AlgorithmNotAllowed(jws.alg.as_str().to_owned()));
        }
        if let Some(expected) = &cfg.typ
            && !jws
                .typ
                .as_deref()
                .is_some_and(|t| token::typ_matches(t, expected))
        {
            return Err(AuthError::InvalidType);
        }
        Ok(())
    }

    /// Checks the header, the signature with `keys`, then the claims.
    fn finish(&self, jws: &token::Jws<'_>, keys: &KeySet) -> Result<Verified, AuthError> {
        self.check_header(jws)?;
        // base64 decodes in groups of 3 bytes: room for the last group.
        let mut sig = [0u8; MAX_SIGNATURE_LEN.div_ceil(3) * 3];
        let sig_len = b64::decode_into(jws.signature.as_bytes(), &mut sig)
            .filter(|&n| n <= MAX_SIGNATURE_LEN)
            .ok_or(AuthError::InvalidSignature)?;
        let key = keys.verify(
            jws.kid.as_deref(),
            jws.alg,
            jws.signing_input.as_bytes(),
            &sig[..sig_len],
        )?;
        Ok(Verified {
            claims: self.claims(jws.payload)?,
            key: Some(*key.fingerprint()),
            leeway: self.inner.leeway,
            reuse_until: None,
        })
    }

    /// Whether the key with this fingerprint can still verify tokens: a
    /// remote key set may have dropped it since.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    pub(crate) fn holds(&self, key: &Fingerprint) -> bool {
        match &self.inner.keys {
            Keys::Static(keys) => keys.holds(None, key),
            #[cfg(feature = "jwks")]
            Keys::Remote(cache) => cache
                .with_current(|keys| keys.holds(None, key))
                .unwrap_or(false),
            Keys::Issuers(list) => list.iter().any(|(_, v)| v.holds(key)),
        }
    }

    /// Decodes and validates the payload of a token whose signature verified.
    fn claims(&self, payload_b64: &str) -> Result<TokenClaims, AuthError> {
        let cfg = &*self.inner;
        let payload = b64::decode(payload_b64.as_bytes())
            .ok_or(AuthError::Malformed("the payload is not strict base64url"))?;
        let payload = String::from_utf8(payload)
            .map_err(|_| AuthError::Malformed("the payload is not UTF-8"))?;
        let raw: RawClaims<'_> = read_registered(&payload)?;
        let now = unix_secs(&*cfg.clock)?;
        match raw.exp {
            Some(exp) if now >= exp.0 + cfg.leeway => return Err(AuthError::Expired),
            None if cfg.require_exp => return Err(AuthError::MissingClaim("exp".into())),
            _ => {}
        }
        if let Some(nbf) = raw.nbf
            && now + cfg.leeway < nbf.0
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(iat) = raw.iat
            && now + cfg.leeway < iat.0
        {
            return Err(AuthError::IssuedInFuture);
        }
        if !cfg.issuers.is_empty() {
            match raw.iss.as_deref() {
                None => return Err(AuthError::MissingClaim("iss".into())),
                Some(iss) if !cfg.issuers.iter().any(|i| i == iss) => {
                    return Err(AuthError::InvalidIssuer);
                }
                Some(_) => {}
            }
        }
        if !cfg.audiences.is_empty() {
            match &raw.aud {
                None => return Err(AuthError::MissingClaim("aud".into())),
                Some(aud) if !aud.contains_any(&cfg.audiences) => {
                    return Err(AuthError::InvalidAudience);
                }
                Some(_) => {}
            }
        }
        if !cfg.required.is_empty() {
            check_required(&cfg.required, &raw, &payload)?;
        }
        let registered = raw.to_registered();
        drop(raw);
        Ok(TokenClaims::new(registered, payload.into_boxed_str()))
    }
}

impl TokenVerifier for Verifier {
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
        match self.try_now(token) {
            Now::Done(result) => Some(result),
            Now::Pending => None,
        }
    }

    fn verify_later<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        Box::pin(self.verified_async(token))
    }

    fn still_valid(&self, verified: &Verified) -> bool {
        verified.key.is_some_and(|key| self.holds(&key))
    }

    fn now(&self) -> Result<f64, AuthError> {
        unix_secs(&*self.inner.clock)
    }
}

fn check_required(
    required: &[String],
    raw: &RawClaims<'_>,
    payload: &str,
) -> Result<(), AuthError> {
    let mut others: Option<HashMap<String, IgnoredAny>> = None;
    for name in required {
        let present = match name.as_str() {
            "iss" => raw.iss.is_some(),
            "sub" => raw.sub.is_some(),
            "aud" => raw.aud.is_some(),
            "exp" => raw.exp.is_some(),
            "nbf" => raw.nbf.is_some(),
            "iat" => raw.iat.is_some(),
            "jti" => raw.jti.is_some(),
            other => {
                let map = match &mut others {
                    Some(map) => map,
                    None => others.insert(serde_json::from_str(payload).map_err(|_| {
                        AuthError::Malformed("the payload is not a JSON object of claims")
                    })?),
                };
                map.contains_key(other)
            }
        };
        if !present {
            return Err(AuthError::MissingClaim(name.clone()));
        }
    }
    Ok(())
}

/// Builds a [`Verifier`]. Mistakes are reported by [`VerifierBuilder::build`].
///
/// Defaults: `exp` required, `nbf` and `iat` checked when present (a token
/// is not valid before `nbf`, nor issued after now), leeway
/// [`DEFAULT_LEEWAY`] (30 s), the allowed algorithms are exactly those of the
/// keys given, and an audience must be configured (or
/// [`any_audience`](VerifierBuilder::any_audience) called) so that a token
/// minted for another service is not accepted by accident.
#[derive(Default)]
#[must_use]
pub struct VerifierBuilder {
    keys: Vec<Key>,
    jwks: Vec<Vec<u8>>,
    algorithms: Option<Vec<Algorithm>>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    any_audience: bool,
    leeway: Option<Duration>,
    allow_missing_exp: bool,
    required: Vec<String>,
    typ: Option<String>,
    clock: Option<Arc<dyn Clock>>,
    #[cfg(feature = "jwks")]
    remote: Option<crate::jwks::JwksCache>,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("keys", &self.keys)
            .field("jwks_documents", &self.jwks.len())
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Adds a key.
    pub fn key(mut self, key: Key) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds keys.
    pub fn keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// Adds the public keys of a JWKS document (`{"keys": [...]}`), with the
    /// same strict selection as remote key sets: members that are private,
    /// symmetric, not for signatures or too weak are skipped, as are members
    /// naming a JSON member twice (`{"kid":"a","kid":"b"}`), and a `kid`
    /// shared by two members is not used. A member without `alg` is bound
    /// only to the algorithms set with [`algorithms`](Self::algorithms) that
    /// fit its key type (RS256 for RSA keys when none are set): an RSA key
    /// without `alg` never verifies PS256 or RS512 unless those are allowed.
    pub fn jwks(mut self, json: impl AsRef<[u8]>) -> Self {
        self.jwks.push(json.as_ref().to_vec());
        self
    }

    /// Takes keys from a remote JWKS, fetched and cached by `cache`. The
    /// allowed algorithms are then the cache's (see
    /// [`JwksCacheBuilder::algorithms`](crate::JwksCacheBuilder::algorithms),
    /// which also binds JWKs without `alg`) unless narrowed with
    /// [`algorithms`](Self::algorithms). A token without `kid` is verified
    /// only when exactly one key of the set fits its algorithm. Static keys
    /// cannot be mixed with a cache.
    #[cfg(feature = "jwks")]
    pub fn jwks_cache(mut self, cache: crate::jwks::JwksCache) -> Self {
        self.remote = Some(cache);
        self
    }

    /// Restricts the allowed algorithms. Without it, the allowed algorithms
    /// are those the keys are bound to.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algs.into_iter().collect());
        self
    }

    /// Requires `iss` to equal this issuer (call again to accept several).
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }

    /// Requires `aud` to contain this audience (call again to accept several).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Accepts tokens whatever their `aud`. Only right when every token
    /// these keys sign is meant for this service.
    pub fn any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Sets the clock-skew leeway for `exp`, `nbf` and `iat` (default 30 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Accepts tokens without `exp` (never expiring). Not recommended.
    pub fn allow_missing_exp(mut self) -> Self {
        self.allow_missing_exp = true;
        self
    }

    /// Requires these claims to be present (any value).
    pub fn required_claims<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.required.extend(names.into_iter().map(Into::into));
        self
    }

    /// Requires the `typ` header to be this type, for example `at+jwt` for
    /// RFC 9068 access tokens (compared case-insensitively, `application/` optional).
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Reads the time from `clock` instead of the system clock (see
    /// [`Clock`]): for tests of expiry without sleeping, or a trusted time
    /// source. A clock that fails refuses every token.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Builds the verifier.
    ///
    /// # Errors
    /// [`BuildError::NoKeys`] without usable keys; [`BuildError::InvalidKey`]
    /// for a JWKS that cannot be read; [`BuildError::InvalidConfig`] for a key
    /// outside the allowed algorithms, no audience policy, or a leeway over 5 minutes.
    pub fn build(self) -> Result<Verifier, BuildError> {
        let leeway = self.leeway.unwrap_or(DEFAULT_LEEWAY);
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        if leeway > MAX_LEEWAY {
            return Err(BuildError::InvalidConfig(format!(
                "leeway {leeway:?} is over the maximum of {MAX_LEEWAY:?}"
            )));
        }
        if self.audiences.is_empty() && !self.any_audience {
            return Err(BuildError::InvalidConfig(
                "no audience configured: call .audience(\"your-api\") so tokens minted for other \
                 services are refused, or .any_audience() to accept every audience"
                    .into(),
            ));
        }
        #[cfg(feature = "jwks")]
        if let Some(cache) = self.remote {
            if !self.keys.is_empty() || !self.jwks.is_empty() {
                return Err(BuildError::InvalidConfig(
                    "static keys and a JwksCache cannot be mixed in one verifier".into(),
                ));
            }
            let mut allowed = self
                .algorithms
                .clone()
                .unwrap_or_else(|| cache.algorithms().to_vec());
            allowed.retain(|a| cache.algorithms().contains(a));
            if allowed.is_empty() {
                return Err(BuildError::InvalidConfig(
                    "none of the allowed algorithms is one the JwksCache accepts".into(),
                ));
            }
            return Ok(Verifier {
                inner: Arc::new(Config {
                    keys: Keys::Remote(cache),
                    allowed,
                    issuers: self.issuers,
                    audiences: self.audiences,
                    leeway: leeway.as_secs_f64(),
                    require_exp: !self.allow_missing_exp,
                    required: self.required,
                    typ: self.typ,
                    clock,
                }),
            });
        }
        let mut keys = self.keys;
        if let Some(allowed) = &self.algorithms
            && let Some(k) = keys.iter().find(|k| !allowed.contains(&k.algorithm()))
        {
            return Err(BuildError::InvalidConfig(format!(
                "key {:?} is bound to {}, which is not in the allowed algorithms",
                k.kid(),
                k.algorithm()
            )));
        }
        let algless = match &self.algorithms {
            Some(a) => a.clone(),
            None => vec![Algorithm::RS256],
        };
        let mut skipped = Vec::new();
        for doc in &self.jwks {
            let (found, errors) = parse_jwk_set(doc, self.algorithms.as_deref(), &algless)
                .map_err(BuildError::InvalidKey)?;
            keys.extend(found);
            skipped.extend(errors.into_iter().map(|e| e.to_string()));
        }
        if keys.is_empty() && !skipped.is_empty() {
            return Err(BuildError::InvalidKey(format!(
                "no usable key in the JWKS: {}",
                skipped.join("; ")
            )));
        }
        if keys.is_empty() {
            return Err(BuildError::NoKeys);
        }
        // Two keys under one kid: refuse rather than try both (a JWKS
        // member repeating a kid is already made unusable when parsed).
        let mut kids: Vec<&str> = keys.iter().filter_map(Key::kid).collect();
        kids.sort_unstable();
        if let Some(w) = kids.windows(2).find(|w| w[0] == w[1]) {
            return Err(BuildError::InvalidConfig(format!(
                "two keys have the kid {:?}; give each key its own kid",
                w[0]
            )));
        }
        let mut allowed: Vec<Algorithm> = match self.algorithms {
            Some(a) => a,
            None => keys.iter().map(Key::algorithm).collect(),
        };
        allowed.sort();
        allowed.dedup();
        // HMAC next to public keys invites confusion bugs elsewhere; it is
        // safe here (keys are bound to one algorithm) but worth refusing when
        // it is surely a mistake: an HMAC algorithm allowed with no HMAC key.
        for alg in &allowed {
            if alg.family() == Family::Hmac && !keys.iter().any(|k| k.algorithm() == *alg) {
                return Err(BuildError::InvalidConfig(format!(
                    "{alg} is allowed but no HMAC key is configured for it"
                )));
            }
        }
        Ok(Verifier {
            inner: Arc::new(Config {
                keys: Keys::Static(KeySet::new(keys)),
                allowed,
                issuers: self.issuers,
                audiences: self.audiences,
                leeway: leeway.as_secs_f64(),
                require_exp: !self.allow_missing_exp,
                required: self.required,
                typ: self.typ,
                clock,
            }),
        })
    }
}
