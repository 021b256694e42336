//! [`JwtAuthLayer`]: the layer is its own builder.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::settings::Settings;
use super::stages::Cache;
use crate::claims::JsonClaims;
use crate::csrf::CsrfPolicy;
use crate::extract::TokenSource;
use crate::reject::{DefaultRejection, Extras, GrpcMode};
use crate::verify::TokenVerifier;

/// A tower layer that authenticates requests with a JWT.
///
/// It finds the token (by default in `Authorization: Bearer`), verifies it
/// with its verifier (a [`Verifier`](crate::Verifier), or any
/// [`TokenVerifier`]), and puts the verified [`Claims<C>`](crate::Claims)
/// into the request extensions. A refused request gets a response from the
/// rejection (by default [`DefaultRejection`]: RFC 6750 for HTTP, a gRPC
/// status for genuine calls to a gRPC service, see
/// [`grpc`](JwtAuthLayer::grpc)); the inner service never sees it. The same
/// rejection renders the refusals of guards, extractors and handlers
/// inside the layer that use the default answer.
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Key, TokenSource, Verifier};
///
/// #[derive(Clone, serde::Deserialize)]
/// struct User { sub: String }
///
/// async fn me(claims: Claims<User>) -> String {
///     claims.sub.clone()
/// }
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// let verifier = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .audience("my-api")
///     .build()?;
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .route_layer(
///         JwtAuthLayer::new(verifier)
///             .claims::<User>()
///             .sources([TokenSource::Bearer, TokenSource::cookie("access_token")]),
///     );
/// # Ok(()) }
/// ```
pub struct JwtAuthLayer<C = JsonClaims, R = DefaultRejection> {
    pub(super) settings: Arc<Settings>,
    pub(super) rejection: R,
    /// Step 2, the verified-token cache (with its claims type).
    pub(super) cache: Cache<C>,
    _claims: PhantomData<fn() -> C>,
}

impl<C, R: Clone> Clone for JwtAuthLayer<C, R> {
    fn clone(&self) -> Self {
        JwtAuthLayer {
            settings: Arc::clone(&self.settings),
            rejection: self.rejection.clone(),
            cache: self.cache.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for JwtAuthLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("JwtAuthLayer")
            .field("verifier", &s.verifier)
            .field("sources", &s.token_sources())
            .field("max_token_len", &s.max_token_len)
            .field("optional", &s.optional)
            .field("rejection", &self.rejection)
            .field("grpc", &s.grpc)
            .field("csrf", &s.csrf)
            .field("claims", &std::any::type_name::<C>())
            .finish()
    }
}

impl JwtAuthLayer {
    /// A layer that verifies with `verifier` (a [`Verifier`](crate::Verifier)
    /// or any [`TokenVerifier`]), reads `Authorization: Bearer`, limits
    /// tokens to [`DEFAULT_MAX_TOKEN_LEN`](crate::layer::DEFAULT_MAX_TOKEN_LEN) and puts [`Claims`](crate::Claims)
    /// (a JSON map) into the extensions. Choose your own claims type with
    /// [`claims`](JwtAuthLayer::claims).
    pub fn new(verifier: impl TokenVerifier) -> Self {
        JwtAuthLayer {
            settings: Arc::new(Settings::new(Arc::new(verifier))),
            rejection: DefaultRejection::default(),
            cache: Cache::default(),
            _claims: PhantomData,
        }
    }
}

impl<C> JwtAuthLayer<C, DefaultRejection> {
    /// Sets the realm named in `WWW-Authenticate` (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.rejection = self.rejection.realm(realm);
        self
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }

    /// Deserializes verified claims into `C2`, inserted as `Claims<C2>`.
    /// A token whose claims do not fit `C2` is refused with 401.
    pub fn claims<C2: Send + Sync + 'static>(self) -> JwtAuthLayer<C2, R> {
        JwtAuthLayer {
            settings: self.settings,
            rejection: self.rejection,
            cache: self.cache.retype(),
            _claims: PhantomData,
        }
    }

    /// Sets where the token is looked for, in order; the first source that
    /// has a token wins. An empty list keeps the default (`Bearer`).
    ///
    /// On a layer with [`fapi2`](Self::fapi2) the list is kept but not
    /// read, whether it was set before or after the preset: tokens come
    /// from the `Authorization` header alone, and a token anywhere else
    /// (the query, a cookie, another header, a custom source, a WebSocket
    /// subprotocol) is never read, so a request with no other is refused
    /// as having none (401).
    pub fn sources(self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        let sources: Vec<TokenSource> = sources.into_iter().collect();
        if sources.is_empty() {
            return self;
        }
        self.edit(|s| s.set_sources(sources))
    }

    /// Refuses tokens longer than `bytes` before decoding anything
    /// (default [`DEFAULT_MAX_TOKEN_LEN`](crate::layer::DEFAULT_MAX_TOKEN_LEN), 16 KiB).
    pub fn max_token_len(self, bytes: usize) -> Self {
        self.edit(|s| s.max_token_len = bytes)
    }

    /// Caches verified tokens (feature `cache`): a token seen before skips
    /// its signature check while it is unexpired and its key is still in
    /// the key set. See [`TokenCache`](crate::cache::TokenCache).
    #[cfg(feature = "cache")]
    pub fn cache(mut self, cache: crate::cache::TokenCache) -> Self
    where
        C: Send + Sync + 'static,
    {
        self.cache = Cache::new(cache);
        self
    }

    /// Consults `store` after a token verified (feature `revocation`): a
    /// revoked token is answered 401 `invalid_token` ("token revoked"), a
    /// store that cannot answer 503 (unless it fails open). A token without
    /// `jti` is looked up by its [`token_id`](crate::Claims::token_id) (a
    /// hash of its payload) and by its subject marks; refuse such tokens
    /// instead with [`require_jti`](JwtAuthLayer::require_jti).
    #[cfg(feature = "revocation")]
    pub fn revocation(self, store: impl crate::revocation::Revocation) -> Self {
        let revoker = crate::revocation::Revoker::new(Arc::new(store));
        self.edit(|s| s.revocation = super::stages::Revocation::new(revoker))
    }

    /// With [`revocation`](JwtAuthLayer::revocation): refuses tokens that
    /// carry no `jti` (401, missing claim).
    #[cfg(feature = "revocation")]
    pub fn require_jti(self) -> Self {
        self.edit(|s| s.revocation = std::mem::take(&mut s.revocation).require_jti())
    }

    /// Declares that this layer wraps a gRPC service: refusals of requests
    /// with a gRPC content type (`application/grpc…`, gRPC-Web included)
    /// are answered as gRPC statuses (HTTP 200 with `grpc-status`), all
    /// others as plain HTTP.
    ///
    /// Without it, the gRPC form is used only when the layer wraps a tonic
    /// server (feature `tonic`: its responses have tonic's body type) and
    /// the request is an HTTP/2 gRPC call with `te: trailers`. The request
    /// alone never decides: on a plain HTTP route every refusal is a 4xx or
    /// 5xx, whatever content type the client claims, so a forward-auth
    /// proxy or a cache can never read a refusal as "allowed".
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let for_grpc = JwtAuthLayer::new(verifier).grpc();
    /// # let _ = for_grpc;
    /// ```
    pub fn grpc(self) -> Self {
        self.edit(|s| s.grpc = GrpcMode::Grpc)
    }

    /// Sets the cross-site request checks for tokens read from cookies and
    /// other ambient sources (custom ones unless
    /// [`FindToken::ambient`](crate::FindToken::ambient) says otherwise;
    /// default: [`CsrfPolicy::new`], on). Tokens from headers are never
    /// checked. See [`CsrfPolicy`].
    pub fn csrf(self, policy: CsrfPolicy) -> Self {
        self.edit(|s| s.csrf = policy)
    }

    /// Lets requests under `paths` through untouched: no token is looked
    /// for, no claims are added (health checks, tonic's health service
    /// `/grpc.health.v1.Health`), without nesting routers. Paths match by
    /// whole segments: `/health` covers `/health` and `/health/live`, never
    /// `/healthz`.
    ///
    /// Matching is on the normalised path: a request path that is not in
    /// normal form (a `.`, `..` or empty segment, `\`, `;`, or an escape
    /// some reader decodes into another path: `%2f`, `%61`, `%00`, ...) is
    /// never skipped, whatever it starts with, since a proxy in front may
    /// read `/health/../admin` as `/admin`; it is authenticated like any
    /// other request.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let layer = JwtAuthLayer::new(verifier).skip_paths(["/health", "/grpc.health.v1.Health"])?;
    /// # let _ = layer;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`](crate::BuildError::InvalidConfig)
    /// (setting `skip_paths`) for an entry that is empty (it would skip
    /// every path: an empty item of a split list), does not start with
    /// `/`, holds a space, a control character, `?` or `#`, or is not in
    /// normal form itself.
    pub fn skip_paths<S: Into<String>>(
        self,
        paths: impl IntoIterator<Item = S>,
    ) -> Result<Self, crate::BuildError> {
        let paths = crate::path::entries("skip_paths", paths)?;
        Ok(self.edit(|s| s.skip = paths))
    }

    /// This layer answering decisions a proxy reads from the status alone
    /// (forward-auth, where any 2xx is an allow): refusals always in HTTP
    /// form, never gRPC's HTTP 200, and never a 2xx whatever the rejection
    /// renders.
    pub(crate) fn for_decisions(self) -> Self {
        self.edit(|s| s.grpc = GrpcMode::Never)
            .edit_extras(|e| e.decision = true)
    }

    fn edit_extras(self, f: impl FnOnce(&mut Extras)) -> Self {
        self.edit(|s| s.edit_extras(f))
    }

    /// Accepts DPoP-bound tokens (RFC 9449, feature `dpop`) as `policy`
    /// says: `Authorization: DPoP <token>` with a `DPoP` proof, checked
    /// after the token verified (and after the token cache) and before the
    /// revocation store. A bound token (`cnf.jkt`) sent as `Bearer` is
    /// refused. Refusals carry `WWW-Authenticate: DPoP algs="…"`, next to
    /// the `Bearer` challenge unless the policy is
    /// [`Required`](crate::dpop::DpopMode::Required). With
    /// [`fapi2`](Self::fapi2), before or after, only the policy's proof
    /// algorithms that FAPI 2.0 allows are accepted and advertised.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let policy = DpopPolicy::builder(DpopMode::Allowed)
    ///     .base_url("https://api.example.com")
    ///     .build()?;
    /// let layer = JwtAuthLayer::new(verifier).dpop(policy);
    /// # let _ = layer;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    #[cfg(feature = "dpop")]
    pub fn dpop(self, policy: crate::dpop::DpopPolicy) -> Self {
        self.edit(|s| s.set_dpop(policy))
    }

    /// Verifies certificate-bound tokens (RFC 8705 §3, feature `mtls`) as
    /// `policy` says: a token with `cnf.x5t#S256` passes only with a client
    /// certificate of that thumbprint, read from the request extensions
    /// ([`ClientCertificate`](crate::mtls::ClientCertificate)) or a trusted
    /// RFC 9440 header. Checked after the token verified (and after the
    /// token cache), before the DPoP proof and the revocation store. See
    /// [`mtls`](crate::mtls).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// use tower_jwt_auth::mtls::{MtlsMode, MtlsPolicy};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let layer = JwtAuthLayer::new(verifier).mtls(MtlsPolicy::new(MtlsMode::Allowed));
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "mtls")]
    pub fn mtls(self, policy: crate::mtls::MtlsPolicy) -> Self {
        self.edit(|s| s.binding.mtls = super::stages::Mtls::new(policy))
    }

    /// Refuses every token that is not sender-constrained by a method this
    /// layer verifies: bound by `cnf.jkt` with a `dpop`
    /// policy, or by `cnf.x5t#S256` with an `mtls` policy (401
    /// `invalid_token`, [`AuthError::SenderConstraintRequired`](crate::AuthError::SenderConstraintRequired)).
    /// FAPI 2.0 Security Profile §5.3.4 (a resource server accepts only
    /// sender-constrained access tokens); set by
    /// [`fapi2`](Self::fapi2).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// // With a DPoP or mTLS policy too: alone it refuses every token.
    /// let layer = JwtAuthLayer::new(verifier).require_sender_constrained();
    /// # let _ = layer;
    /// ```
    pub fn require_sender_constrained(self) -> Self {
        self.edit(|s| s.binding.constrained = true)
    }

    /// The resource-server rules of the FAPI 2.0 Security Profile (final,
    /// February 2025) that live in the layer, on top of a `dpop`
    /// and/or an `mtls` policy (set those too; alone this refuses every
    /// token):
    ///
    /// - §5.3.4 (requirements for resource servers): access tokens only in the
    ///   `Authorization` header (RFC 6750 §2.1), never in the query or the
    ///   body: tokens are read from `Authorization` alone (`Bearer`, and
    ///   `DPoP` with a DPoP policy), whatever [`sources`](Self::sources)
    ///   says;
    /// - §5.3.4: only sender-constrained tokens, by mTLS (RFC 8705) or
    ///   DPoP (RFC 9449): [`require_sender_constrained`](Self::require_sender_constrained);
    /// - §5.4: DPoP proofs signed with `PS256`, `ES256` or `EdDSA` only: the
    ///   [`dpop`](Self::dpop) policy keeps only those of its algorithms,
    ///   and its challenge (`DPoP algs="…"`) lists only those. (List the
    ///   same in [`ResourceMetadataBuilder::dpop_algorithms`](crate::metadata::ResourceMetadataBuilder::dpop_algorithms)
    ///   if you publish metadata.)
    ///
    /// The preset is sticky: no builder call before or after it undoes any
    /// of these. A later `sources` is kept but not read, a later `dpop`
    /// policy is narrowed as an earlier one is, and nothing clears
    /// `require_sender_constrained`.
    ///
    /// The verifier's part is [`VerifierBuilder::fapi2`](crate::VerifierBuilder::fapi2)
    /// (§5.4: PS256, ES256 or EdDSA only). Validity, integrity and expiry
    /// (§5.3.4) are what every verifier checks; revocation status needs a
    /// revocation store (feature `revocation`) or introspection, and
    /// whether the token's authorization suffices (§5.3.4) your guards.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, TokenSource, Verifier};
    /// let jwk = r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA",
    ///               "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    /// let verifier = Verifier::builder()
    ///     .fapi2()
    ///     .key(Key::from_jwk(jwk)?)
    ///     .audience("https://bank.example")
    ///     .build()?;
    /// // With `.dpop(..)` (feature `dpop`) or `.mtls(..)` (feature `mtls`).
    /// let layer = JwtAuthLayer::new(verifier)
    ///     .fapi2()
    ///     // Kept, but never read: the preset reads `Authorization` alone.
    ///     .sources([TokenSource::Bearer, TokenSource::query("access_token")]);
    /// assert!(format!("{layer:?}").contains("sources: [Bearer]"));
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn fapi2(self) -> Self {
        self.edit(Settings::set_fapi2)
    }

    /// Accepts tokens bound to a key (`cnf`, RFC 7800) by a method this
    /// layer does not verify, as if they were bearer tokens: `cnf.x5t#S256`
    /// (mTLS, RFC 8705), `cnf.jkt` without a [`dpop`](Self::dpop) policy,
    /// `cnf.jwk` and the others. By default such a token is refused (401
    /// `invalid_token`, [`AuthError::UnverifiedBinding`](crate::AuthError::UnverifiedBinding)),
    /// since whoever stole it could otherwise use it.
    ///
    /// Only for a deployment that verifies the binding before the request
    /// reaches this layer (a gateway that checks the client certificate
    /// against `cnf.x5t#S256`, say).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// // The mTLS-terminating gateway in front checks x5t#S256.
    /// let layer = JwtAuthLayer::new(verifier).accept_unverified_binding();
    /// # let _ = layer;
    /// ```
    pub fn accept_unverified_binding(self) -> Self {
        self.edit(|s| s.binding.unverified = true)
    }

    /// Points every 401 answer to this resource's metadata document (RFC
    /// 9728): `resource_metadata="<url>"` in each `WWW-Authenticate`
    /// challenge; every `insufficient_scope` 403 too (the MCP step-up
    /// challenge, MCP authorization 2025-11-25). See [`ResourceMetadata::url`](crate::metadata::ResourceMetadata::url).
    pub fn resource_metadata(self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.edit_extras(|e| e.resource_metadata = Some(url.into()))
    }

    /// Lets requests without a token through, without claims. A token that
    /// is present but not valid is still refused.
    pub fn optional(self) -> Self {
        self.edit(|s| s.optional = true)
    }

    /// Replaces how refusals are answered. See
    /// [`OnRejection`](crate::OnRejection).
    pub fn on_rejection<R2>(self, rejection: R2) -> JwtAuthLayer<C, R2> {
        JwtAuthLayer {
            settings: self.settings,
            rejection,
            cache: self.cache,
            _claims: PhantomData,
        }
    }
}

#[cfg(feature = "cache")]
impl<C: Send + Sync + 'static, R> JwtAuthLayer<C, R> {
    /// Hits, misses and entries of the verified-token cache (`None`
    /// without [`cache`](JwtAuthLayer::cache)). Clones of a layer, and the
    /// services it made, share one cache.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// use tower_jwt_auth::cache::TokenCache;
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let layer = JwtAuthLayer::new(verifier).cache(TokenCache::new());
    /// assert_eq!(layer.cache_stats().unwrap().hits, 0);
    /// ```
    pub fn cache_stats(&self) -> Option<crate::cache::CacheStats> {
        self.cache.store().map(crate::cache::Store::stats)
    }
}
