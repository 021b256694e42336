//! [`IntrospectorBuilder`]: the introspector's settings, checked once in
//! [`build`](IntrospectorBuilder::build).

use super::*;

/// Builds an [`Introspector`]. Mistakes are reported by
/// [`IntrospectorBuilder::build`].
///
/// Defaults: `client_secret_basic`, a 5 s timeout per call, answers up to
/// 64 KiB, HTTPS unless the endpoint is on a loopback address, active
/// answers reused for at most [`DEFAULT_TTL`] (60 s), negative
/// ones for [`DEFAULT_NEGATIVE_TTL`] (5 s), 10 000 cached active answers
/// and as many negative ones at most, 64 calls in flight at most, tokens
/// of 8 KiB at most, answers that name an access token, leeway 30 s. As with [`Verifier`], an audience must be
/// configured (or [`any_audience`](IntrospectorBuilder::any_audience)
/// called).
#[must_use]
pub struct IntrospectorBuilder {
    /// The endpoint, or the issuer when `discover`.
    url: String,
    discover: bool,
    credentials: assertion::Credentials,
    assertion_audience: Option<String>,
    signed_answers: Option<(JwksCache, String)>,
    client: Option<Client>,
    limits: http::Limits,
    issuers: Vec<String>,
    audiences: Vec<String>,
    any_audience: bool,
    leeway: Duration,
    max_ttl: Duration,
    negative_ttl: Duration,
    stale_if_error: Duration,
    max_entries: u64,
    max_calls: usize,
    max_token_len: usize,
    allow_untyped: bool,
    clock: Option<Arc<dyn Clock>>,
    shared: Option<shared::SharedAnswers>,
}

impl fmt::Debug for IntrospectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No secret.
        f.debug_struct("IntrospectorBuilder")
            .field("url", &crate::text::redact_url(&self.url))
            .field("discover", &self.discover)
            .field("client_id", &self.credentials.client_id)
            .field("auth", &self.credentials.auth)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl IntrospectorBuilder {
    /// The defaults (see the type's docs) for the endpoint or issuer `url`.
    pub(super) fn new(url: String, discover: bool) -> Self {
        IntrospectorBuilder {
            url,
            discover,
            credentials: assertion::Credentials::default(),
            assertion_audience: None,
            signed_answers: None,
            client: None,
            limits: http::Limits {
                timeout: DEFAULT_CALL_TIMEOUT,
                max_body: DEFAULT_MAX_ANSWER,
                allow_http: false,
            },
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            leeway: crate::verify::DEFAULT_LEEWAY,
            max_ttl: DEFAULT_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            stale_if_error: Duration::ZERO,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_calls: DEFAULT_MAX_CALLS,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            allow_untyped: false,
            clock: None,
            shared: None,
        }
    }

    /// The resource server's client credentials at the authorization server.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials
            .secret(client_id.into(), client_secret.into());
        self
    }

    /// How the credentials are sent (default [`ClientAuth::SecretBasic`]).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.credentials.auth = auth;
        self
    }

    /// Authenticates as `client_id` with `private_key_jwt` (RFC 7523): each
    /// call sends a fresh client assertion signed with `key` (`iss` and
    /// `sub` the client id, `aud` the endpoint URL unless
    /// [`client_assertion_audience`](IntrospectorBuilder::client_assertion_audience)
    /// says otherwise, a random `jti`, valid 60 s). No secret travels.
    pub fn private_key_jwt(mut self, client_id: impl Into<String>, key: ClientKey) -> Self {
        self.credentials.private_key_jwt(client_id.into(), key);
        self
    }

    /// The `aud` of `private_key_jwt` client assertions (default: the
    /// introspection endpoint URL), for a server that wants its issuer
    /// identifier instead.
    pub fn client_assertion_audience(mut self, aud: impl Into<String>) -> Self {
        self.assertion_audience = Some(aud.into());
        self
    }

    /// Asks for signed answers (RFC 9701, `Accept:
    /// application/token-introspection+jwt`) and accepts only those: a JWT
    /// of type `token-introspection+jwt` signed with a key of `keys` (the
    /// authorization server's key set, with the algorithms it allows),
    /// whose `iss` is `as_issuer`, whose `aud` is this client's id and
    /// whose `iat` is recent (within the leeway and the call timeout). Its
    /// `token_introspection` claim is the answer, judged as a plain one.
    /// An answer that is not such a JWT refuses the request with 503.
    pub fn signed_answers(mut self, keys: JwksCache, as_issuer: impl Into<String>) -> Self {
        self.signed_answers = Some((keys, as_issuer.into()));
        self
    }

    /// The HTTP client to call the endpoint with (proxies, extra root
    /// certificates...). It should not follow redirects; if it does, the
    /// form is not re-sent by a 307 or 308 (it cannot be replayed), and an
    /// answer from anywhere but the endpoint is refused (503). The timeout
    /// and size limits still apply.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Timeout of one call: connect, headers and body (default 5 s; must
    /// not be zero).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// Largest accepted answer (default 64 KiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.limits.max_body = bytes;
        self
    }

    /// Allows plain HTTP to non-loopback hosts. Only for trusted networks:
    /// the token and the client secret travel in the clear.
    pub fn allow_http(mut self) -> Self {
        self.limits.allow_http = true;
        self
    }

    /// Requires `iss` to be this issuer (call again to accept several).
    /// A multi-tenant template (`{tenantid}`) is refused by
    /// [`build`](Self::build): only JWT verifiers check templates.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }

    /// Requires `aud` to contain this audience (call again to accept several).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Accepts tokens whatever their `aud`. Only right when every token the
    /// server introspects for this client is meant for this service.
    pub fn any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// The clock-skew leeway for `exp`, `nbf` and `iat` (default 30 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Reuse an active answer for at most this long (default 60 s, and
    /// never past the token's `exp`): the delay before a revocation at the
    /// server is seen.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// Reuse a negative answer (inactive, or claims refused) this long
    /// (default 5 s; zero to not cache them).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// While the endpoint fails (a timeout, an error status, an answer that
    /// is not JSON), let an active answer stand in for up to `window` past
    /// its freshness ([`max_ttl`](IntrospectorBuilder::max_ttl) or the
    /// token's `exp`), like HTTP's `stale-if-error` (RFC 5861). Default
    /// zero: fail closed, 503.
    ///
    /// Only an active answer stands in, never past the token's own `exp`
    /// (without leeway); a negative answer is never turned into an active
    /// one, and an inactive answer replaces the active one at once. The
    /// price: a token revoked during an outage stays accepted up to
    /// `window` longer.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = window;
        self
    }

    /// Cache at most this many active answers, and as many negative ones
    /// (default 10 000 each); the least recently used are forgotten first.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// Makes at most this many introspection calls at once (default 64);
    /// a request whose token would need one more is refused at once with
    /// 503 ([`AuthError::IntrospectionUnavailable`], `Retry-After`), no
    /// call made. Requests waiting for a call already under way for their
    /// token take no more. At least 1.
    ///
    /// ```
    /// # use tower_jwt_auth::introspection::Introspector;
    /// let introspector = Introspector::builder("https://idp.example/oauth2/introspect")
    ///     .client_credentials("my-api", "its-secret")
    ///     .audience("my-api")
    ///     .max_concurrent_calls(16)
    ///     .build()?;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.max_calls = calls;
        self
    }

    /// The longest token sent to the endpoint, in bytes (default 8 KiB,
    /// room for a large JWT checked by [`JwtThenIntrospect`]); a longer
    /// one is refused with 401 `invalid_token`
    /// ([`AuthError::TokenTooLarge`]) without a call. Whatever the length,
    /// a token that is not an RFC 6750 `b64token` (letters, digits, `-`,
    /// `.`, `_`, `~`, `+`, `/`, then `=` padding only) is refused likewise
    /// ([`AuthError::Malformed`]).
    ///
    /// ```
    /// # use tower_jwt_auth::introspection::Introspector;
    /// let introspector = Introspector::builder("https://idp.example/oauth2/introspect")
    ///     .client_credentials("my-api", "its-secret")
    ///     .audience("my-api")
    ///     .max_token_len(512) // this server's tokens are 40 characters
    ///     .build()?;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Accepts an active answer that does not say which kind of token it
    /// describes. By default an answer must name an access token: its
    /// `token_type` (RFC 7662) `Bearer`, `DPoP`, `N_A`, `PoP`, `access_token`
    /// or `urn:ietf:params:oauth:token-type:access_token`, or Keycloak's
    /// `typ` `Bearer` or `DPoP`, or Ory Hydra's `token_use`
    /// `access_token`; an answer without any of them is refused with 401
    /// `invalid_token`, for it may describe a refresh token (oidc-provider
    /// leaves `token_type` out of its refresh tokens' answers only).
    ///
    /// Call this for a server that introspects access tokens only and
    /// omits the type (django-oauth-toolkit, IdentityServer 4). An answer
    /// that names another kind of token (`refresh_token`, Keycloak's
    /// `Refresh`, `Offline` or `ID`...) is refused whatever this says.
    ///
    /// ```
    /// # use tower_jwt_auth::introspection::Introspector;
    /// let introspector = Introspector::builder("https://idp.example/o/introspect/")
    ///     .client_credentials("my-api", "its-secret")
    ///     .audience("my-api")
    ///     .allow_missing_token_type()
    ///     .build()?;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn allow_missing_token_type(mut self) -> Self {
        self.allow_untyped = true;
        self
    }

    /// The clock for `exp`, `nbf`, `iat` and the cache (default the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Shares active answers with the other instances of a fleet through
    /// Redis (feature `redis`): an instance asks Redis before the
    /// endpoint, so N instances make one call per token. See
    /// [`SharedAnswers`] (Redis is then trusted like the endpoint).
    ///
    /// ```no_run
    /// use tower_jwt_auth::introspection::{Introspector, SharedAnswers};
    ///
    /// let introspector = Introspector::builder("https://idp.example/oauth2/introspect")
    ///     .client_credentials("orders-api", "its-secret")
    ///     .audience("orders-api")
    ///     .shared_answers(SharedAnswers::new("redis://10.0.0.5:6379/")?)
    ///     .build()?;
    /// # let _ = introspector;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn shared_answers(mut self, shared: SharedAnswers) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Builds the introspector.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an endpoint that is not a URL or is
    /// plain HTTP to a non-loopback host (without
    /// [`allow_http`](IntrospectorBuilder::allow_http)), no client
    /// credentials, no audience (nor `any_audience`), a leeway over 5
    /// minutes, a zero timeout, or an HTTP client that cannot be built.
    pub fn build(self) -> Result<Introspector, BuildError> {
        let what = if self.discover {
            "the issuer"
        } else {
            "the introspection endpoint"
        };
        let url = Url::parse(&self.url).map_err(|e| {
            BuildError::config("url", format!("{what} {:?} is not a URL: {e}", self.url))
        })?;
        http::check_url(&url, self.limits.allow_http).map_err(|e| BuildError::config("url", e))?;
        self.limits.check("IntrospectorBuilder")?;
        if let Some(template) = self.issuers.iter().find(|i| crate::tenant::is_template(i)) {
            return Err(BuildError::config(
                "issuer",
                format!(
                    "{template:?} is a multi-tenant issuer template; templates are checked \
                     against `tid` by JWT verifiers (Verifier), not by introspection"
                ),
            ));
        }
        let credentials = self.credentials.build(
            "the introspector needs the resource server's client credentials; \
             call .client_credentials(id, secret) or .private_key_jwt(id, key)",
        )?;
        crate::verify::check_rules_config(&self.audiences, self.any_audience, self.leeway)?;
        let client = match self.client {
            Some(client) => client,
            None => http::default_client(self.limits.timeout)
                .map_err(|e| BuildError::config("client", e))?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let signed_answers = match self.signed_answers {
            None => None,
            Some((keys, as_issuer)) => {
                let clock = Arc::clone(&clock);
                let verifier = Verifier::builder()
                    .jwks_cache(keys)
                    .issuer(as_issuer)
                    .audience(credentials.client_id.clone())
                    .typ("token-introspection+jwt")
                    .allow_missing_exp()
                    .leeway(self.leeway)
                    .clock(move || clock.now())
                    .build()?;
                Some(verifier)
            }
        };
        let max_ttl = self.max_ttl.as_secs_f64();
        let negative_ttl = self.negative_ttl.as_secs_f64();
        if self.max_calls == 0 {
            return Err(BuildError::config(
                "max_concurrent_calls",
                "max_concurrent_calls is 0: no token could ever be introspected",
            ));
        }
        let answers = moka::sync::Cache::builder()
            .max_capacity(self.max_entries)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .time_to_live(
                self.max_ttl
                    .saturating_add(self.stale_if_error)
                    .min(MAX_CACHE_TTL),
            )
            .build();
        let refusals = moka::sync::Cache::builder()
            .max_capacity(self.max_entries)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .time_to_live(self.negative_ttl.min(MAX_CACHE_TTL))
            .build();
        Ok(Introspector {
            inner: Arc::new(Inner {
                discover_from: self.discover.then(|| self.url.clone()),
                discovery_failed: Mutex::new(None),
                url: if self.discover {
                    tokio::sync::OnceCell::new()
                } else {
                    tokio::sync::OnceCell::new_with(Some(url))
                },
                client,
                credentials,
                assertion_audience: self.assertion_audience,
                signed_answers,
                limits: self.limits,
                issuers: self.issuers,
                audiences: self.audiences,
                leeway: self.leeway.as_secs_f64(),
                max_ttl,
                negative_ttl,
                stale_if_error: self.stale_if_error.as_secs_f64(),
                clock,
                answers: PerformanceCache::may_forget(
                    answers,
                    "a call to the authorization server (and a stale answer to stand on)",
                ),
                refusals: PerformanceCache::may_forget(
                    refusals,
                    "a call to the authorization server",
                ),
                inflight: Flights::new(),
                calls: Arc::new(tokio::sync::Semaphore::new(self.max_calls)),
                max_calls: self.max_calls,
                max_token_len: self.max_token_len,
                allow_untyped: self.allow_untyped,
                shared: self.shared,
            }),
        })
    }
}
