//! Token to claims: the [`TokenVerifier`] step of the layer, and its JWT
//! implementation [`Verifier`]: algorithm allow-list, key selection,
//! signature and claim validation. Pure apart from key fetches: no locks
//! held across I/O.

mod builder;
mod outcome;

pub use builder::VerifierBuilder;

pub use outcome::{BoxFuture, TokenVerifier, Verified};
pub(crate) use outcome::{ClaimRules, check_rules_config, read_registered};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};

use crate::claims::TokenClaims;

use crate::algorithm::Algorithm;
use crate::b64;
use crate::claims::{Claims, Held, RawClaims};
use crate::clock::{Clock, unix_secs};
use crate::error::{AuthError, BuildError};
use crate::key::{Fingerprint, KeySet};
use crate::tenant::TenantIssuers;
use crate::token::{self, is_json_object};

/// The default clock-skew leeway for `exp` and `nbf` ([`Verifier::DEFAULT_LEEWAY`]).
pub(crate) const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
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

pub(super) struct Config {
    keys: Keys,
    allowed: Vec<Algorithm>,
    /// Plain issuers: `iss` must equal one of them.
    issuers: Vec<String>,
    /// Multi-tenant issuer templates (`{tenantid}`), checked against `tid`.
    tenants: Option<Box<TenantIssuers>>,
    audiences: Vec<String>,
    leeway: f64,
    require_exp: bool,
    required: Vec<String>,
    typ: Option<String>,
    clock: Arc<dyn Clock>,
    /// Headers of recently verified tokens, parsed (see `HeaderMemo`).
    headers: token::HeaderMemo,
    /// Decryption keys and mode for encrypted tokens (JWE), if any.
    jwe: Option<crate::jwe::Decrypter>,
}

/// Where the verifier's keys come from.
pub(super) enum Keys {
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
// `Verified` holds its claims inline (they move into the `Claims<C>` made
// from them): boxing it would add the allocation that saves.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Now {
    Done(Result<Verified, AuthError>),
    /// The keys for this token must be fetched first: use `verify_async`.
    /// (Only remote keys are ever pending; the variant stays in every
    /// feature set so the callers' matches have no `cfg`.)
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
            .field("tenants", &c.tenants)
            .field("audiences", &c.audiences)
            .field("leeway_secs", &c.leeway)
            .field("require_exp", &c.require_exp)
            .field("required", &c.required)
            .field("typ", &c.typ)
            .finish()
    }
}

impl Verifier {
    /// The default clock-skew leeway for `exp` and `nbf`: 30 s (at most
    /// 5 min with [`VerifierBuilder::leeway`]).
    pub const DEFAULT_LEEWAY: Duration = DEFAULT_LEEWAY;

    /// Starts building a verifier.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// A verifier for the tokens of one identity provider, the issuer URL
    /// typed once (feature `jwks`): keys come from its OpenID Connect
    /// discovery document (fetched on first use, or by
    /// [`prefetch`](Verifier::prefetch)), `iss` must equal `issuer`, and the
    /// allowed algorithms are the asymmetric ones the provider's keys are
    /// published for (RS256, ES256, EdDSA, …; never HMAC) unless
    /// [`algorithms`](VerifierBuilder::algorithms) pins a list. Choose the
    /// audience, then build.
    ///
    /// | provider | `issuer` |
    /// |---|---|
    /// | Keycloak | `https://{host}/realms/{realm}` |
    /// | Auth0 | `https://{tenant}.auth0.com/` (with the trailing slash) |
    /// | Entra ID (v2) | `https://login.microsoftonline.com/{tenant-id}/v2.0` |
    /// | Entra ID (v2), multi-tenant | `https://login.microsoftonline.com/{tenantid}/v2.0`, literally: see below |
    /// | Entra ID (v1 tokens) | `https://sts.windows.net/{tenant-id}/`; multi-tenant, `{tenantid}` literally, with [`VerifierBuilder::issuer`] and a `JwksCache` for `https://login.microsoftonline.com/common/discovery/keys` |
    /// | Cognito | `https://cognito-idp.{region}.amazonaws.com/{user-pool-id}` |
    /// | Okta | `https://{domain}/oauth2/{authorization-server}` |
    /// | Google | `https://accounts.google.com` |
    ///
    /// ```no_run
    /// use tower_jwt_auth::{JwtAuthLayer, Verifier};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let verifier = Verifier::from_issuer("https://sso.example.com/realms/acme")
    ///     .audience("orders-api")
    ///     .build()?;
    /// verifier.prefetch().await?; // optional: fail fast at start-up
    /// let layer = JwtAuthLayer::new(verifier);
    /// # let _ = layer; Ok(()) }
    /// ```
    ///
    /// An issuer with the placeholder `{tenantid}` is a multi-tenant
    /// template (see [`VerifierBuilder::issuer`]): its keys are discovered
    /// from the template's `common` tenant (Entra ID publishes the template
    /// as the `issuer` of that document), and a token passes only if its
    /// `iss` is the template filled with its own `tid`. Without
    /// [`tenants`](VerifierBuilder::tenants), every Entra tenant's tokens
    /// for your audience pass.
    ///
    /// ```no_run
    /// # use tower_jwt_auth::Verifier;
    /// # fn run() -> Result<(), tower_jwt_auth::BuildError> {
    /// let verifier = Verifier::from_issuer("https://login.microsoftonline.com/{tenantid}/v2.0")
    ///     .tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    ///     .audience("api://orders")
    ///     .build()?;
    /// # let _ = verifier; Ok(()) }
    /// ```
    #[cfg(feature = "jwks")]
    pub fn from_issuer(issuer: &str) -> VerifierBuilder {
        let mut builder = VerifierBuilder::default().issuer(issuer);
        builder.discover = Some(issuer.to_owned());
        builder
    }

    /// Fetches the keys of every remote key set this verifier uses now (a
    /// no-op for static keys), to fail fast at start-up.
    ///
    /// # Errors
    /// [`AuthError::KeysUnavailable`] with the reason a fetch failed.
    pub async fn prefetch(&self) -> Result<(), AuthError> {
        match &self.inner.keys {
            Keys::Static(_) => Ok(()),
            #[cfg(feature = "jwks")]
            Keys::Remote(cache) => cache.prefetch().await.map(drop),
            Keys::Issuers(list) => {
                for (_, tenant) in list {
                    Box::pin(tenant.prefetch()).await?;
                }
                Ok(())
            }
        }
    }

    /// Verifies `token` and deserializes its claims into `C`.
    ///
    /// # Errors
    /// An [`AuthError`] saying why the token is refused. The signature is
    /// checked before any claim is read, so a forged token is always
    /// [`AuthError::InvalidSignature`] (or a header error), never `Expired`.
    ///
    /// With keys from a `JwksCache` (feature `jwks`), this uses the keys at
    /// hand and never waits: a token whose key is not cached yet, or whose
    /// cached keys expired with no refresh under way, fails with
    /// [`AuthError::KeysUnavailable`] (expired keys are never used here
    /// unless the provider is failing). Use
    /// [`verify_async`](Verifier::verify_async) to fetch keys as needed.
    pub fn verify<C: DeserializeOwned + 'static>(
        &self,
        token: &str,
    ) -> Result<Claims<C>, AuthError> {
        match self.try_now(token) {
            Now::Done(result) => result?.into_claims(),
            Now::Pending => Err(AuthError::KeysUnavailable(
                "the key set has not been fetched yet; use verify_async or JwksCache::prefetch"
                    .into(),
            )),
        }
    }

    /// Verifies `token`, fetching remote keys first when the token names a
    /// key not cached yet or the cached keys expired (concurrent callers
    /// share one fetch, fetches start at least
    /// `JwksCacheBuilder::min_refetch_interval`
    /// apart, and a caller waits at most the cache's fetch timeout).
    /// Dropping the future never cancels the fetch.
    ///
    /// # Errors
    /// As [`verify`](Verifier::verify); [`AuthError::KeysUnavailable`] when
    /// the keys cannot be fetched and none are cached.
    pub async fn verify_async<C: DeserializeOwned + 'static>(
        &self,
        token: &str,
    ) -> Result<Claims<C>, AuthError> {
        self.verified_async(token).await?.into_claims()
    }

    /// As [`verify_async`](Verifier::verify_async), before the claims type.
    async fn verified_async(&self, token: &str) -> Result<Verified, AuthError> {
        match self.try_now(token) {
            Now::Done(result) => result,
            Now::Pending => self.verify_after_fetch(token).await,
        }
    }

    async fn verify_after_fetch(&self, token: &str) -> Result<Verified, AuthError> {
        let token = self.open(token)?;
        match &self.inner.keys {
            Keys::Issuers(_) => self.route(&token)?.fetch_single(&token).await,
            _ => self.fetch_single(&token).await,
        }
    }

    /// The compact JWS to verify: `token`, or the one an encrypted token
    /// holds (decryption is the step before verification, see
    /// [`jwe`](crate::jwe)).
    fn open<'t>(&self, token: &'t str) -> Result<std::borrow::Cow<'t, str>, AuthError> {
        match &self.inner.jwe {
            Some(jwe) => jwe.open(token),
            None => Ok(std::borrow::Cow::Borrowed(token)),
        }
    }

    #[cfg(not(feature = "jwks"))]
    async fn fetch_single(&self, token: &str) -> Result<Verified, AuthError> {
        match self.try_jws(token) {
            Now::Done(result) => result,
            Now::Pending => Err(AuthError::KeysUnavailable("no keys".into())),
        }
    }

    #[cfg(feature = "jwks")]
    async fn fetch_single(&self, token: &str) -> Result<Verified, AuthError> {
        let jws = token::parse(token)?;
        let Keys::Remote(cache) = &self.inner.keys else {
            return match self.try_jws(token) {
                Now::Done(result) => result,
                Now::Pending => Err(AuthError::KeysUnavailable("no keys".into())),
            };
        };
        let keys = cache.keys_for(jws.kid.as_deref(), jws.alg).await?;
        self.finish(&jws, keys.keys())
    }

    /// Verifies with the keys at hand, or says that keys must be fetched.
    pub(crate) fn try_now(&self, token: &str) -> Now {
        match self.open(token) {
            Ok(jws) => self.try_jws(&jws),
            Err(e) => Now::Done(Err(e)),
        }
    }

    /// [`try_now`](Self::try_now) for a compact JWS (a plain token, or the
    /// one a JWE held).
    fn try_jws(&self, token: &str) -> Now {
        let jws = match self.inner.headers.parse(token) {
            Ok(jws) => jws,
            Err(e) => return Now::Done(Err(e)),
        };
        crate::observe::kid(jws.kid.as_deref());
        match &self.inner.keys {
            Keys::Static(keys) => Now::Done(self.finish(&jws, keys)),
            Keys::Issuers(_) => match self.route(token) {
                Ok(tenant) => tenant.try_jws(token),
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
            .or_else(|| {
                list.iter()
                    .find(|(name, _)| TenantIssuers::fits(name, &iss))
            })
            .map(|(_, v)| v)
            .ok_or(AuthError::InvalidIssuer)
    }

    /// One verifier for several issuers (multi-tenant): each keeps its own
    /// keys (static or a `JwksCache`), audience and
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
    /// let both = Verifier::any_of([a, b])?;
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
    pub fn any_of(verifiers: impl IntoIterator<Item = Verifier>) -> Result<Verifier, BuildError> {
        let mut list: Vec<(String, Verifier)> = Vec::new();
        for v in verifiers {
            if matches!(v.inner.keys, Keys::Issuers(_)) {
                return Err(BuildError::config(
                    "issuers",
                    "a multi-issuer verifier cannot contain another",
                ));
            }
            let template = v.inner.tenants.as_deref().map(TenantIssuers::single);
            let issuer = match (v.inner.issuers.as_slice(), template) {
                ([issuer], None) => issuer.as_str(),
                ([], Some(Some(template))) => template,
                _ => {
                    return Err(BuildError::config(
                        "issuers",
                        "each verifier of a multi-issuer verifier needs exactly one .issuer(..)",
                    ));
                }
            };
            if v.inner.jwe.is_some() {
                return Err(BuildError::config(
                    "issuers",
                    "give decryption keys to no verifier of a multi-issuer verifier \
                     (the issuer of an encrypted token is not known before decryption)",
                ));
            }
            if list.iter().any(|(i, _)| i == issuer) {
                return Err(BuildError::config(
                    "issuers",
                    format!("two verifiers for the issuer {issuer:?}"),
                ));
            }
            list.push((issuer.to_owned(), v));
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
                tenants: None,
                audiences: Vec::new(),
                leeway: 0.0,
                require_exp: true,
                required: Vec::new(),
                typ: None,
                clock,
                headers: Default::default(),
                jwe: None,
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
        // HMAC, ECDSA and EdDSA signatures (at most 132 bytes, 176
        // characters) and RSA-2048 ones (256 bytes) take a smaller buffer:
        // less to clear per request.
        let (mut small, mut medium, mut large);
        let sig: &mut [u8] = match jws.signature.len() {
            ..=176 => {
                small = [0u8; 132];
                &mut small
            }
            177..=344 => {
                medium = [0u8; 258];
                &mut medium
            }
            _ => {
                large = [0u8; MAX_SIGNATURE_LEN.div_ceil(3) * 3];
                &mut large
            }
        };
        let sig_len = b64::decode_into(jws.signature.as_bytes(), sig)
            .filter(|&n| n <= MAX_SIGNATURE_LEN)
            .ok_or(AuthError::InvalidSignature)?;
        let key = keys.verify(
            jws.kid.as_deref(),
            jws.alg,
            jws.signing_input.as_bytes(),
            &sig[..sig_len],
        )?;
        self.inner.headers.remember(jws);
        Ok(Verified {
            claims: Held::Own(self.claims(jws.payload)?),
            key: Some(*key.fingerprint()),
            leeway: self.inner.leeway,
            reuse_until: None,
        })
    }

    /// Whether the key with this fingerprint can still verify tokens: a
    /// remote key set may have dropped it since.
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
        ClaimRules {
            leeway: cfg.leeway,
            require_exp: cfg.require_exp,
            // With issuer templates, `iss` is checked below (with `tid`).
            issuers: if cfg.tenants.is_none() {
                &cfg.issuers
            } else {
                &[]
            },
            audiences: &cfg.audiences,
        }
        .check(&raw, now)?;
        if let Some(tenants) = &cfg.tenants {
            tenants.check(raw.iss.as_deref(), &cfg.issuers, &payload)?;
        }
        if !cfg.required.is_empty() {
            check_required(&cfg.required, &raw, &payload)?;
        }
        let layout = raw.layout(&payload);
        drop(raw);
        Ok(TokenClaims::new(layout.holding(payload)))
    }
}

impl TokenVerifier for Verifier {
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
        match self.try_now(token) {
            Now::Done(result) => Some(result),
            Now::Pending => None,
        }
    }

    fn verify_later<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, AuthError>> {
        Box::pin(self.verified_async(token))
    }

    fn still_valid(&self, verified: &Verified) -> bool {
        verified.key.is_some_and(|key| self.holds(&key))
    }

    fn decrypts(&self) -> bool {
        self.inner.jwe.as_ref().is_some_and(|jwe| jwe.opens())
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
