//! [`VerifierBuilder`]: how a [`Verifier`] is configured and checked.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Config, DEFAULT_LEEWAY, Keys, Verifier};
use crate::algorithm::{Algorithm, FAPI2, Family};
use crate::clock::{Clock, SystemClock};
use crate::error::BuildError;
use crate::key::{Key, KeySet, parse_jwk_set};
use crate::tenant::TenantIssuers;

/// Builds a [`Verifier`]. Mistakes are reported by [`VerifierBuilder::build`].
///
/// Defaults: `exp` required, `nbf` and `iat` checked when present (a token
/// is not valid before `nbf`, nor issued after now), leeway
/// [`Verifier::DEFAULT_LEEWAY`](crate::Verifier::DEFAULT_LEEWAY) (30 s), the allowed algorithms are exactly those of the
/// keys given, and an audience must be configured (or
/// [`any_audience`](VerifierBuilder::any_audience) called) so that a token
/// minted for another service is not accepted by accident.
#[derive(Default)]
#[must_use]
pub struct VerifierBuilder {
    keys: Vec<Key>,
    jwks: Vec<Vec<u8>>,
    algorithms: Option<Vec<Algorithm>>,
    /// `fapi2`: every allowed algorithm must be a FAPI 2.0 one, whatever
    /// `algorithms` says (checked by `finish`).
    fapi2: bool,
    issuers: Vec<String>,
    tenants: Option<Vec<String>>,
    audiences: Vec<String>,
    any_audience: bool,
    leeway: Option<Duration>,
    allow_missing_exp: bool,
    required: Vec<String>,
    typ: Option<String>,
    clock: Option<Arc<dyn Clock>>,
    decryption: Vec<crate::jwe::DecryptionKey>,
    encryption: Option<crate::jwe::EncryptionMode>,
    #[cfg(feature = "jwks")]
    remote: Option<crate::jwks::JwksCache>,
    /// `Verifier::from_issuer`: discover this issuer's keys at build time.
    #[cfg(feature = "jwks")]
    pub(super) discover: Option<String>,
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
    /// [`JwksCacheBuilder::algorithms`](crate::jwks::JwksCacheBuilder::algorithms),
    /// which also binds JWKs without `alg`) unless narrowed with
    /// [`algorithms`](Self::algorithms). A token without `kid` is verified
    /// only when exactly one key of the set fits its algorithm. Static keys
    /// cannot be mixed with a cache.
    #[cfg(feature = "jwks")]
    pub fn jwks_cache(mut self, cache: crate::jwks::JwksCache) -> Self {
        self.remote = Some(cache);
        self
    }

    /// Adds a key that decrypts encrypted tokens (JWE, see
    /// [`jwe`](crate::jwe)); call again, or use
    /// [`decryption_keys`](Self::decryption_keys), for several. With keys,
    /// encrypted and plain tokens are both accepted unless
    /// [`encryption`](Self::encryption) says otherwise; the JWS inside a JWE
    /// is verified like a plain token.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Key, Verifier};
    /// use tower_jwt_auth::jwe::DecryptionKey;
    ///
    /// let jwk = r#"{"kty":"EC","crv":"P-256","kid":"enc-1",
    ///   "x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    ///   "y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
    ///   "d":"VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"}"#;
    /// let verifier = Verifier::builder()
    ///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
    ///     .decryption_key(DecryptionKey::from_jwk(jwk)?)
    ///     .any_audience()
    ///     .build()?;
    /// # let _ = verifier;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn decryption_key(mut self, key: crate::jwe::DecryptionKey) -> Self {
        self.decryption.push(key);
        self
    }

    /// Adds decryption keys (a rotation: old and new), see
    /// [`decryption_key`](Self::decryption_key).
    pub fn decryption_keys(
        mut self,
        keys: impl IntoIterator<Item = crate::jwe::DecryptionKey>,
    ) -> Self {
        self.decryption.extend(keys);
        self
    }

    /// Whether encrypted tokens are required, allowed (the default with
    /// decryption keys) or refused (the default without).
    pub fn encryption(mut self, mode: crate::jwe::EncryptionMode) -> Self {
        self.encryption = Some(mode);
        self
    }

    /// Restricts the allowed algorithms. Without it, the allowed algorithms
    /// are those the keys are bound to. After [`fapi2`](Self::fapi2) (in
    /// either order) the list may only narrow the profile's algorithms:
    /// [`build`](Self::build) refuses any other.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algs.into_iter().collect());
        self
    }

    /// The verifier's part of the FAPI 2.0 Security Profile (final,
    /// February 2025), §5.4 (cryptography and secrets): only `PS256`,
    /// `ES256` and `EdDSA` (Ed25519) signatures; `none` and HMAC never.
    /// (RSA keys under 2048 bits are refused by every verifier.) The
    /// layer's part is [`JwtAuthLayer::fapi2`](crate::JwtAuthLayer::fapi2).
    ///
    /// The preset is sticky: nothing called after (or before) it widens
    /// the list. Without [`algorithms`](Self::algorithms) the allowed
    /// algorithms are the profile's three; with it, in either order, they
    /// are that list, which may only narrow them: [`build`](Self::build)
    /// fails ([`BuildError::InvalidConfig`], setting `algorithms`) when any
    /// allowed algorithm is outside the profile, and so when a key or a
    /// key set's algorithm is.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, BuildError, Key, Verifier};
    ///
    /// let hmac = Key::hmac(Algorithm::HS256, [7u8; 32])?;
    /// // An HMAC key fits no FAPI 2.0 algorithm.
    /// assert!(Verifier::builder().fapi2().key(hmac.clone()).any_audience().build().is_err());
    /// // Nor does a later `algorithms` bring HMAC back.
    /// let err = Verifier::builder()
    ///     .fapi2()
    ///     .algorithms([Algorithm::HS256])
    ///     .key(hmac)
    ///     .any_audience()
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, BuildError::InvalidConfig(e) if e.setting() == "algorithms"));
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn fapi2(mut self) -> Self {
        self.fapi2 = true;
        self.algorithms.get_or_insert_with(|| FAPI2.to_vec());
        self
    }

    /// Requires `iss` to equal this issuer (call again to accept several).
    ///
    /// An issuer with the placeholder `{tenantid}` is a multi-tenant
    /// template, as Entra ID publishes for its `common` and `organizations`
    /// endpoints (`https://login.microsoftonline.com/{tenantid}/v2.0`): a
    /// token is accepted only if its `tid` claim is a tenant id (ASCII
    /// letters, digits and `-`, at most 64) and its `iss` is the template
    /// with `{tenantid}` replaced by exactly that `tid`. Without
    /// [`tenants`](Self::tenants), tokens of **every** tenant are accepted.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }

    /// Accepts tokens of these tenants only (their `tid`, compared
    /// ignoring ASCII case), for a multi-tenant issuer template (see
    /// [`issuer`](Self::issuer)); call again to add tenants.
    ///
    /// Without it, a template accepts tokens from **any** Entra ID tenant,
    /// personal Microsoft accounts included, as long as their audience is
    /// yours: anyone can create a tenant and sign in to a multi-tenant
    /// application. Unless your service is meant for every tenant, list
    /// your customers' tenant ids here (or authorize by `tid` in your
    /// handlers).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Key, Verifier};
    ///
    /// let verifier = Verifier::builder()
    ///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
    ///     .issuer("https://login.microsoftonline.com/{tenantid}/v2.0")
    ///     .tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    ///     .audience("api://orders")
    ///     .build()?;
    /// # let token = |tid: &str, iss_tid: &str| jsonwebtoken::encode(&jsonwebtoken::Header::default(),
    /// #     &serde_json::json!({"iss": format!("https://login.microsoftonline.com/{iss_tid}/v2.0"),
    /// #         "tid": tid, "aud": "api://orders", "exp": 4102444800u64}),
    /// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
    /// let ours = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    /// let theirs = "0d7ac1d5-3a51-4f5e-b1b7-b0a8b1c1d2e3";
    /// assert!(verifier.verify::<tower_jwt_auth::JsonClaims>(&token(ours, ours)).is_ok());
    /// // Another tenant: refused.
    /// let err = verifier.verify::<tower_jwt_auth::JsonClaims>(&token(theirs, theirs)).unwrap_err();
    /// assert_eq!(err.reason(), "tenant_not_allowed");
    /// // An `iss` of another tenant than the token's `tid`: refused.
    /// let err = verifier.verify::<tower_jwt_auth::JsonClaims>(&token(ours, theirs)).unwrap_err();
    /// assert_eq!(err.reason(), "invalid_issuer");
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn tenants<S: Into<String>>(mut self, tenants: impl IntoIterator<Item = S>) -> Self {
        self.tenants
            .get_or_insert_with(Vec::new)
            .extend(tenants.into_iter().map(Into::into));
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
    /// outside the allowed algorithms, no audience policy, a leeway over 5
    /// minutes, tenants without an issuer template, or after
    /// [`fapi2`](Self::fapi2) an allowed algorithm outside the profile.
    pub fn build(mut self) -> Result<Verifier, BuildError> {
        self.check_encryption()?;
        let tenants = TenantIssuers::split(&mut self.issuers, self.tenants.take())?;
        #[cfg(feature = "jwks")]
        if let Some(issuer) = self.discover.take() {
            // The issuer's own keys, found by discovery; any asymmetric
            // algorithm the provider publishes, unless pinned. Never HMAC:
            // a shared secret is never taken from a key set.
            let algorithms: Vec<Algorithm> = match &self.algorithms {
                Some(pinned) => pinned.clone(),
                None => Algorithm::all()
                    .iter()
                    .copied()
                    .filter(|a| !a.is_symmetric())
                    .collect(),
            };
            let cache = crate::jwks::JwksCache::discover(&issuer)
                .algorithms(algorithms)
                .build()?;
            self.remote = Some(cache);
        }
        let leeway = self.leeway.unwrap_or(DEFAULT_LEEWAY);
        let clock = self.clock.take().unwrap_or_else(|| Arc::new(SystemClock));
        super::check_rules_config(&self.audiences, self.any_audience, leeway)?;
        #[cfg(feature = "jwks")]
        if let Some(cache) = self.remote.take() {
            if !self.keys.is_empty() || !self.jwks.is_empty() {
                return Err(BuildError::config(
                    "keys",
                    "static keys and a JwksCache cannot be mixed in one verifier",
                ));
            }
            let mut allowed = self
                .algorithms
                .clone()
                .unwrap_or_else(|| cache.algorithms().to_vec());
            allowed.retain(|a| cache.algorithms().contains(a));
            if allowed.is_empty() {
                return Err(BuildError::config(
                    "algorithms",
                    "none of the allowed algorithms is one the JwksCache accepts",
                ));
            }
            return self.finish(Keys::Remote(cache), allowed, leeway, clock, tenants);
        }
        let mut keys = std::mem::take(&mut self.keys);
        if let Some(allowed) = &self.algorithms
            && let Some(k) = keys.iter().find(|k| !allowed.contains(&k.algorithm()))
        {
            return Err(BuildError::config(
                "algorithms",
                format!(
                    "key {:?} is bound to {}, which is not in the allowed algorithms",
                    k.kid(),
                    k.algorithm()
                ),
            ));
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
            return Err(BuildError::config(
                "keys",
                format!(
                    "two keys have the kid {:?}; give each key its own kid",
                    w[0]
                ),
            ));
        }
        let mut allowed: Vec<Algorithm> = match self.algorithms.take() {
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
                return Err(BuildError::config(
                    "algorithms",
                    format!("{alg} is allowed but no HMAC key is configured for it"),
                ));
            }
        }
        self.finish(
            Keys::Static(KeySet::new(keys)),
            allowed,
            leeway,
            clock,
            tenants,
        )
    }

    /// Decryption keys and mode fit together.
    fn check_encryption(&self) -> Result<(), BuildError> {
        use crate::jwe::EncryptionMode;
        match (self.encryption, self.decryption.is_empty()) {
            (Some(EncryptionMode::Required | EncryptionMode::Allowed), true) => Err(
                BuildError::config("encryption", "encrypted tokens need decryption keys"),
            ),
            _ => Ok(()),
        }
    }

    /// The verifier, from what every way of building it settled: its keys
    /// and the algorithms it allows. The one place the FAPI 2.0 preset is
    /// checked, so that no order of calls and no kind of keys escapes it.
    fn finish(
        self,
        keys: Keys,
        allowed: Vec<Algorithm>,
        leeway: Duration,
        clock: Arc<dyn Clock>,
        tenants: Option<TenantIssuers>,
    ) -> Result<Verifier, BuildError> {
        if self.fapi2
            && let Some(alg) = allowed.iter().find(|a| !FAPI2.contains(a))
        {
            return Err(BuildError::config(
                "algorithms",
                format!(
                    "{alg} is allowed, but FAPI 2.0 (fapi2) allows only PS256, ES256 and EdDSA"
                ),
            ));
        }
        Ok(Verifier {
            inner: Arc::new(Config {
                keys,
                allowed,
                issuers: self.issuers,
                tenants: tenants.map(Box::new),
                audiences: self.audiences,
                leeway: leeway.as_secs_f64(),
                require_exp: !self.allow_missing_exp,
                required: self.required,
                typ: self.typ,
                clock,
                headers: Default::default(),
                jwe: match (self.encryption, self.decryption.is_empty()) {
                    (Some(crate::jwe::EncryptionMode::Off), _) | (_, true) => None,
                    (mode, false) => Some(crate::jwe::Decrypter::new(
                        self.decryption,
                        mode.unwrap_or(crate::jwe::EncryptionMode::Allowed),
                    )),
                },
            }),
        })
    }
}
