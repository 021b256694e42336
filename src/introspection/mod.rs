//! Opaque tokens: OAuth 2.0 token introspection (RFC 7662) as a
//! [`TokenVerifier`], cached, one call per token at a time; and
//! [`JwtOrIntrospect`], local JWT verification for tokens that look like a
//! JWS and introspection for the others; and [`JwtThenIntrospect`], local
//! JWT verification followed by introspection (real-time revocation).
//!
#![doc = include_str!("../docs/introspection.md")]

mod active;
mod assertion;
mod either;
#[cfg(feature = "redis")]
mod shared;
/// Without `redis`: no shared answers (the type has no value).
#[cfg(not(feature = "redis"))]
mod shared {
    #[derive(Debug, Clone)]
    pub(crate) enum SharedAnswers {}

    impl SharedAnswers {
        pub(super) async fn get(&self, _hash: &[u8; 32]) -> Option<(Vec<u8>, std::time::Duration)> {
            match *self {}
        }

        pub(super) async fn put(&self, _hash: &[u8; 32], _body: &[u8], _ttl: std::time::Duration) {
            match *self {}
        }
    }
}

pub use active::JwtThenIntrospect;
pub use assertion::ClientKey;
pub use either::JwtOrIntrospect;
#[cfg(feature = "redis")]
pub use shared::SharedAnswers;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::flight::{Flight, Flights, Joined};
use crate::store::PerformanceCache;
use reqwest::{Client, Url};

use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::{AuthError, BuildError};
use crate::http;
use crate::jwks::JwksCache;
use crate::verify::{ClaimRules, TokenVerifier, Verified, Verifier, VerifyFuture, read_registered};

/// How long after a failed discovery calls fail at once, without asking.
const DISCOVERY_RETRY: Duration = Duration::from_secs(1);

/// The media type of a signed answer (RFC 9701).
const SIGNED_ANSWER: &str = "application/token-introspection+jwt";

/// How long an active answer is reused at most, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// How long a negative answer (inactive, or claims refused) is reused, by default.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Timeout of one introspection call, by default.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest introspection answer accepted, by default.
const DEFAULT_MAX_ANSWER: usize = 64 * 1024;
/// Cached answers at most, by default.
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// The caches' own bound on an entry's life (each answer has its own,
/// shorter as a rule): moka refuses more than 1000 years.
const MAX_CACHE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Introspection calls in flight at most, by default.
const DEFAULT_MAX_CALLS: usize = 64;
/// The longest token sent to the endpoint, by default: opaque tokens are
/// short, and a large JWT checked by [`JwtThenIntrospect`] fits.
const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// How the resource server authenticates to the introspection endpoint
/// (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret (the default).
    #[default]
    SecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    SecretPost,
    /// `private_key_jwt` (RFC 7523): a JWT signed with the client's private
    /// key; set with [`IntrospectorBuilder::private_key_jwt`].
    PrivateKeyJwt,
}

/// Turns opaque tokens into claims by asking the authorization server
/// (OAuth 2.0 token introspection, RFC 7662). Cheap to clone; build one
/// with [`Introspector::builder`] and give it to
/// [`JwtAuthLayer::new`](crate::JwtAuthLayer::new).
///
/// - `active: false`, or an answer without a boolean `active`, refuses the
///   request with 401 `invalid_token`; an active answer's `exp`, `nbf`,
///   `iat` (with the leeway), `iss` and `aud` are checked like a JWT's.
/// - Answers are cached, keyed by the SHA-256 of the token (the token is
///   never kept nor logged): an active one until the smaller of its `exp`
///   and the maximum TTL (default 60 s), a negative one briefly (default
///   5 s). Revocation at the server is seen within the maximum TTL.
/// - An active answer must be about an access token: one that names
///   another kind (`token_type` `refresh_token`, Keycloak's `typ`
///   `Refresh`...), or names none (see
///   [`allow_missing_token_type`](IntrospectorBuilder::allow_missing_token_type)),
///   refuses the request with 401 `invalid_token`.
/// - Concurrent requests with one token share one call, which runs in a
///   task of its own: a request that goes away does not cancel it. At most
///   [`max_concurrent_calls`](IntrospectorBuilder::max_concurrent_calls)
///   calls (64) are under way at once; past that a request is refused with
///   503 at once. A token that is not an RFC 6750 `b64token`, or is longer
///   than [`max_token_len`](IntrospectorBuilder::max_token_len) (8 KiB),
///   is refused with 401 without a call.
/// - An unreachable endpoint (timeout, an error status, an answer that is
///   not a JSON object, refused client credentials) refuses the request
///   with 503 ([`AuthError::IntrospectionUnavailable`]): fail closed,
///   unless [`stale_if_error`](IntrospectorBuilder::stale_if_error) lets a
///   cached active answer stand in for a while.
/// - The endpoint is configured or found by discovery
///   ([`Introspector::discover`]); the client authenticates with
///   `client_secret_basic`, `client_secret_post` or `private_key_jwt`
///   ([`ClientKey`]); answers may be required signed (RFC 9701,
///   [`signed_answers`](IntrospectorBuilder::signed_answers)).
/// - An answer's `cnf.jkt` binds the token to a DPoP key, as a JWT's does.
///
/// ```no_run
/// use tower_jwt_auth::JwtAuthLayer;
/// use tower_jwt_auth::introspection::Introspector;
///
/// let introspector = Introspector::builder("https://idp.example/oauth2/introspect")
///     .client_credentials("my-api", "its-secret")
///     .issuer("https://idp.example")
///     .audience("my-api")
///     .build()?;
/// let layer = JwtAuthLayer::new(introspector);
/// # let _ = layer;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    /// The endpoint: configured, or found by discovery on first use.
    url: tokio::sync::OnceCell<Url>,
    /// The issuer whose discovery document names the endpoint.
    discover_from: Option<String>,
    /// The last failed discovery: calls within [`DISCOVERY_RETRY`] of it
    /// fail at once with its reason instead of queueing for another.
    discovery_failed: Mutex<Option<(std::time::Instant, String)>>,
    client: Client,
    client_id: String,
    client_secret: String,
    auth: ClientAuth,
    /// The private key of `private_key_jwt`, and the assertions' `aud`
    /// (`None`: the endpoint URL).
    key: Option<ClientKey>,
    assertion_audience: Option<String>,
    /// Verifies RFC 9701 signed answers, when asked for.
    signed_answers: Option<Verifier>,
    /// `Authorization` header value for `client_secret_basic`.
    basic: Option<String>,
    /// The call's timeout, answer size and HTTP rule.
    limits: http::Limits,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: f64,
    max_ttl: f64,
    negative_ttl: f64,
    /// How long past its freshness an active answer may serve while the
    /// endpoint fails (0: never).
    stale_if_error: f64,
    clock: Arc<dyn Clock>,
    /// Active answers, by token hash. Performance cache: may forget;
    /// forgetting costs only a call to the authorization server. LRU, no
    /// admission policy: a new answer is always kept (a TinyLFU cache,
    /// once full, turns most new keys away, and every request for them
    /// would call out, with nothing for `stale_if_error` to stand on).
    answers: PerformanceCache<moka::sync::Cache<[u8; 32], Answer>>,
    /// Negative answers (inactive, claims refused), by token hash: the same
    /// kind of cache, of its own, so that a flood of distinct unknown
    /// tokens pushes out only other negative answers.
    refusals: PerformanceCache<moka::sync::Cache<[u8; 32], Answer>>,
    /// Calls under way, by token hash: their outcome, once there.
    inflight: Flights<[u8; 32], Outcome>,
    /// One permit per call in flight ([`IntrospectorBuilder::max_concurrent_calls`]).
    calls: Arc<tokio::sync::Semaphore>,
    max_calls: usize,
    /// The longest token sent ([`IntrospectorBuilder::max_token_len`]).
    max_token_len: usize,
    /// Whether an answer may leave out the kind of token it describes.
    allow_untyped: bool,
    /// Active answers shared by a fleet in Redis.
    shared: Option<shared::SharedAnswers>,
}

type Outcome = Result<Verified, AuthError>;

/// A cached answer and how long it may be reused.
#[derive(Clone)]
struct Answer {
    outcome: Outcome,
    /// Reused without asking until then.
    until: f64,
    /// An active answer may stand in for a failed call until then (never
    /// past the token's `exp`); equal to `until` otherwise.
    stale_until: f64,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &*self.inner;
        // No secret, no token.
        f.debug_struct("Introspector")
            .field("endpoint", &c.endpoint_name())
            .field("client_id", &c.client_id)
            .field("auth", &c.auth)
            .field("issuers", &c.issuers)
            .field("audiences", &c.audiences)
            .field("max_ttl_secs", &c.max_ttl)
            .field("negative_ttl_secs", &c.negative_ttl)
            .field("stale_if_error_secs", &c.stale_if_error)
            .field("cached", &c.answers.entry_count())
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// Starts building an introspector for the endpoint at `url`.
    pub fn builder(url: impl Into<String>) -> IntrospectorBuilder {
        IntrospectorBuilder {
            url: url.into(),
            discover: false,
            client_id: None,
            client_secret: String::new(),
            auth: ClientAuth::default(),
            key: None,
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

    /// Starts building an introspector for the authorization server
    /// `issuer`, whose `introspection_endpoint` is read from its discovery
    /// document (`{issuer}/.well-known/openid-configuration`, then, only if
    /// that answers 404, the RFC 8414 `oauth-authorization-server`
    /// document), as [`JwksCache::discover`] finds the `jwks_uri`. The
    /// document's `issuer` must equal `issuer` exactly.
    ///
    /// The document is fetched at the first call (not at build), and again
    /// after a failure; until it is found, requests are refused with 503
    /// ([`AuthError::IntrospectionUnavailable`]). Call
    /// [`introspect`](Introspector::introspect) with a dummy token at
    /// startup to find it early. The issuer is not required of the answers'
    /// `iss`: call [`issuer`](IntrospectorBuilder::issuer) for that.
    ///
    /// ```no_run
    /// use tower_jwt_auth::introspection::Introspector;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let introspector = Introspector::discover("https://idp.example")
    ///     .client_credentials("my-api", "its-secret")
    ///     .issuer("https://idp.example")
    ///     .audience("my-api")
    ///     .build()?;
    /// // Optional: find the endpoint and check the credentials now.
    /// let _inactive = introspector.introspect("startup-check").await;
    /// # Ok(()) }
    /// ```
    pub fn discover(issuer: impl Into<String>) -> IntrospectorBuilder {
        IntrospectorBuilder {
            discover: true,
            ..Introspector::builder(issuer)
        }
    }

    /// Asks the endpoint about `token` now, bypassing the cache (the answer
    /// is not cached either). Useful at startup to check the endpoint and
    /// the client credentials with a dummy token: a dummy token gives
    /// `Err(AuthError::Inactive)` when all is well.
    ///
    /// # Errors
    /// As the layer would refuse the token; [`AuthError::IntrospectionUnavailable`]
    /// when the endpoint cannot be asked or refuses the credentials, or
    /// when [`max_concurrent_calls`](IntrospectorBuilder::max_concurrent_calls)
    /// calls are under way.
    pub async fn introspect(&self, token: &str) -> Result<Verified, AuthError> {
        self.inner.sendable(token)?;
        let _permit = self.inner.permit()?;
        self.inner.call(token).await.0
    }

    /// The cached answer for this token hash, if still usable.
    fn cached(&self, key: &[u8; 32]) -> Option<Outcome> {
        // A refusal first: should both be there, the token is refused.
        let (cache, answer) = match self.inner.refusals.get(key) {
            Some(answer) => (&self.inner.refusals, answer),
            None => (&self.inner.answers, self.inner.answers.get(key)?),
        };
        match unix_secs(&*self.inner.clock) {
            Ok(now) if now < answer.until => Some(answer.outcome),
            // Kept to stand in for a call that fails.
            Ok(now) if now < answer.stale_until => None,
            Ok(_) => {
                cache.invalidate(key);
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    async fn verify_shared(&self, token: &str) -> Outcome {
        self.inner.sendable(token)?;
        let key = hash(token);
        let joined = self.inner.inflight.join(
            key,
            // A call that just ended stored its answer before it landed.
            || self.cached(&key),
            || {
                // A new call needs a slot; without one, refused at once
                // (an active answer may stand in, as in an outage).
                let permit = match self.inner.permit() {
                    Ok(permit) => permit,
                    Err(e) => return Joined::Answer(self.inner.stale(&key).unwrap_or(Err(e))),
                };
                let inner = Arc::clone(&self.inner);
                let token = token.to_owned();
                // A task of its own: the requests waiting for it may go
                // away, the call and its caching still finish.
                Joined::Flight(Flight::spawn(
                    &tokio::runtime::Handle::current(),
                    async move {
                        let outcome = match inner.call(&token).await {
                            (Err(e), Reply::Missing)
                                if e.kind() == crate::ErrorKind::Unavailable =>
                            {
                                inner.stale(&key).unwrap_or(Err(e))
                            }
                            // An answer that failed its checks is not an
                            // outage: no stale answer stands in for it.
                            (Err(e), Reply::Refused) => Err(e),
                            (outcome, _) => {
                                inner.store(key, &outcome);
                                outcome
                            }
                        };
                        inner.inflight.land(&key);
                        drop(permit);
                        outcome
                    },
                ))
            },
        );
        let outcome = match joined {
            Joined::Flight(mut flight) => flight.wait().await,
            Joined::Answer(answer) => return answer,
        };
        outcome.unwrap_or_else(|| {
            Err(AuthError::IntrospectionUnavailable(
                "the introspection call ended without an answer".into(),
            ))
        })
    }
}

impl Inner {
    /// Whether `token` may be sent to the endpoint: an RFC 6750 `b64token`
    /// (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`)
    /// no longer than the limit. Anything else is refused without a call:
    /// no access token has that shape, and each distinct one would cost a
    /// call (form-encoding triples the bytes of any other character).
    fn sendable(&self, token: &str) -> Result<(), AuthError> {
        if token.len() > self.max_token_len {
            return Err(AuthError::TokenTooLarge {
                len: token.len(),
                limit: self.max_token_len,
            });
        }
        let chars = token.trim_end_matches('=');
        if chars.is_empty()
            || !chars.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            })
        {
            return Err(AuthError::Malformed(
                "the token is not an RFC 6750 b64token; not sent for introspection",
            ));
        }
        Ok(())
    }

    /// A slot for one more call in flight, if under the cap.
    fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        Arc::clone(&self.calls).try_acquire_owned().map_err(|_| {
            tracing::warn!(
                endpoint = %self.endpoint_name(),
                max_concurrent_calls = self.max_calls,
                "introspection calls at their cap: request refused without a call"
            );
            AuthError::IntrospectionUnavailable(
                format!(
                    "{} introspection calls are under way, the most allowed at once \
                 (max_concurrent_calls): refused without a call",
                    self.max_calls
                )
                .into(),
            )
        })
    }

    /// One introspection call, observed, and whether an answer came that
    /// failed its checks.
    async fn call(&self, token: &str) -> (Outcome, Reply) {
        let started = std::time::Instant::now();
        let (outcome, answer) = match self.ask(token).await {
            Ok(outcome) => (outcome, Reply::Missing),
            Err(refused) => (Err(refused), Reply::Refused),
        };
        let result = match &outcome {
            Ok(_) => "active",
            Err(AuthError::Inactive) => "inactive",
            Err(e) if e.kind() == crate::ErrorKind::Unauthenticated => "refused",
            Err(_) => "error",
        };
        crate::observe::introspection(result, started);
        tracing::debug!(endpoint = %self.endpoint_name(), result, "token introspected");
        (outcome, answer)
    }

    /// The endpoint, or the issuer it is discovered from, for messages.
    fn endpoint_name(&self) -> std::borrow::Cow<'_, str> {
        crate::text::redact_url(match self.url.get() {
            Some(url) => url.as_str(),
            None => self.discover_from.as_deref().unwrap_or_default(),
        })
    }

    /// The endpoint: the configured one, or the discovered one (discovery
    /// runs once at a time, and again after a failure).
    async fn endpoint(&self) -> Result<&Url, AuthError> {
        self.url
            .get_or_try_init(|| async {
                let Some(issuer) = self.discover_from.as_deref() else {
                    return Err("no endpoint configured".to_owned());
                };
                let mut failed = self
                    .discovery_failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some((at, why)) = failed.take()
                    && at.elapsed() < DISCOVERY_RETRY
                {
                    return Err(why);
                }
                let limits = self.limits.max_body(crate::jwks::DEFAULT_MAX_BODY);
                let url = http::discover_endpoint(
                    &self.client,
                    issuer,
                    &limits,
                    "introspection_endpoint",
                )
                .await
                .inspect_err(|why| {
                    *self
                        .discovery_failed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some((std::time::Instant::now(), why.clone()));
                })?;
                tracing::debug!(issuer = %crate::text::redact_url(issuer), endpoint = %crate::text::redact_url(url.as_str()), "introspection endpoint discovered");
                Ok(url)
            })
            .await
            .map_err(|why| {
                let why = format!(
                    "cannot find the introspection endpoint of {}: {why}",
                    self.endpoint_name()
                );
                tracing::warn!(error = %why, "token introspection failed");
                AuthError::IntrospectionUnavailable(why.into())
            })
    }

    /// The call itself, and the judgement of its answer; the outer error
    /// is a signed answer that failed its checks (RFC 9701).
    async fn ask(&self, token: &str) -> Result<Outcome, AuthError> {
        let url = match self.endpoint().await {
            Ok(url) => url,
            Err(e) => return Ok(Err(e)),
        };
        // Another instance's answer, judged as the endpoint's would be and
        // reused no longer than it has left.
        let shared = self.shared.as_ref().map(|shared| (shared, hash(token)));
        if let Some((shared, key)) = &shared
            && let Some((body, left)) = shared.get(key).await
        {
            return Ok(unix_secs(&*self.clock).and_then(|now| {
                let mut verified = self.judge(url, body, now)?;
                let cap = now + left.as_secs_f64();
                verified.reuse_until = Some(verified.reuse_until.map_or(cap, |u| u.min(cap)));
                Ok(verified)
            }));
        }
        let mut form = String::with_capacity(token.len() + 64);
        form.push_str("token=");
        http::form_encode(token, &mut form);
        form.push_str("&token_type_hint=access_token");
        match (self.auth, &self.key) {
            (ClientAuth::SecretPost, _) => {
                form.push_str("&client_id=");
                http::form_encode(&self.client_id, &mut form);
                form.push_str("&client_secret=");
                http::form_encode(&self.client_secret, &mut form);
            }
            (ClientAuth::PrivateKeyJwt, Some(key)) => {
                let audience = self.assertion_audience.as_deref().unwrap_or(url.as_str());
                let assertion = match unix_secs(&*self.clock)
                    .and_then(|now| key.assertion(&self.client_id, audience, now))
                {
                    Ok(assertion) => assertion,
                    Err(e) => return Ok(Err(e)),
                };
                form.push_str("&client_assertion_type=");
                http::form_encode(assertion::ASSERTION_TYPE, &mut form);
                form.push_str("&client_assertion=");
                form.push_str(&assertion);
            }
            _ => {}
        }
        let post = http::Post {
            client: &self.client,
            url,
            authorization: self.basic.as_deref(),
            accept: if self.signed_answers.is_some() {
                SIGNED_ANSWER
            } else {
                "application/json"
            },
            form,
            limits: &self.limits,
        };
        let body = match post.send().await {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(endpoint = %crate::text::redact_url(url.as_str()), error = %why, "token introspection failed");
                return Ok(Err(AuthError::IntrospectionUnavailable(why.into())));
            }
        };
        let body = match &self.signed_answers {
            Some(verifier) => self.unwrap_signed(url, verifier, body).await?,
            None => body,
        };
        let now = match unix_secs(&*self.clock) {
            Ok(now) => now,
            Err(e) => return Ok(Err(e)),
        };
        let Some((shared, key)) = shared else {
            return Ok(self.judge(url, body, now));
        };
        let outcome = self.judge(url, body.clone(), now);
        if let Ok(verified) = &outcome {
            let left = verified.reuse_until.unwrap_or(now) - now;
            if left > 0.0 {
                shared
                    .put(&key, &body, Duration::from_secs_f64(left.min(1e9)))
                    .await;
            }
        }
        Ok(outcome)
    }

    /// The answer inside an RFC 9701 signed answer: a JWT of type
    /// `token-introspection+jwt` from the authorization server, for this
    /// client, recent, whose `token_introspection` claim is the answer.
    async fn unwrap_signed(
        &self,
        url: &Url,
        verifier: &Verifier,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, AuthError> {
        let refused = |why: &dyn fmt::Display| {
            let shown = crate::text::redact_url(url.as_str());
            let why = format!("POST {shown}: the signed answer is refused: {why}");
            tracing::warn!(endpoint = %shown, error = %why, "token introspection failed");
            AuthError::IntrospectionUnavailable(why.into())
        };
        let jwt = std::str::from_utf8(&body)
            .ok()
            .map(str::trim)
            .filter(|jwt| either::looks_like_jws(jwt))
            .ok_or_else(|| refused(&"it is not a JWT (was the Accept header ignored?)"))?;
        let verified = match verifier.verify_now(jwt) {
            Some(result) => result,
            None => verifier.verify_later(jwt).await,
        }
        .map_err(|e| refused(&e))?;
        let now = unix_secs(&*self.clock)?;
        let oldest = now - self.leeway - self.limits.timeout.as_secs_f64();
        if verified
            .registered()
            .iat()
            .is_none_or(|iat| (iat as f64) < oldest)
        {
            return Err(refused(&"its `iat` is missing or too old"));
        }
        let payload: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(verified.payload()).map_err(|e| refused(&e))?;
        match payload.get("token_introspection") {
            Some(answer @ serde_json::Value::Object(_)) => Ok(answer.to_string().into_bytes()),
            _ => Err(refused(&"no `token_introspection` object")),
        }
    }

    /// The verdict on an introspection answer from `url` received at `now`.
    fn judge(&self, url: &Url, body: Vec<u8>, now: f64) -> Outcome {
        let not_json = || {
            AuthError::IntrospectionUnavailable(
                format!("POST {url}: the answer is not a JSON object").into(),
            )
        };
        let payload = String::from_utf8(body).map_err(|_| not_json())?;
        let value: serde_json::Value = serde_json::from_str(&payload).map_err(|_| not_json())?;
        let object = value.as_object().ok_or_else(not_json)?;
        match object.get("active") {
            Some(serde_json::Value::Bool(true)) => {}
            Some(serde_json::Value::Bool(false)) => return Err(AuthError::Inactive),
            _ => {
                return Err(AuthError::InvalidClaim(
                    "the introspection answer's `active` is missing or not a boolean".into(),
                ));
            }
        }
        access_token_kind(object, self.allow_untyped)?;
        let raw = read_registered(&payload)?;
        ClaimRules {
            leeway: self.leeway,
            require_exp: false,
            issuers: &self.issuers,
            audiences: &self.audiences,
        }
        .check(&raw, now)?;
        let ttl_end = now + self.max_ttl;
        let until = raw.exp.map_or(ttl_end, |exp| exp.0.min(ttl_end));
        let layout = raw.layout(&payload);
        drop(raw);
        // To the fraction of a second: a whole-second floor would cut up
        // to a second off the configured TTL.
        let mut verified = Verified::checked(layout.holding(payload));
        verified.reuse_until = Some(until);
        Ok(verified)
    }

    /// Caches an answer: active until its `reuse_until` (and kept for
    /// `stale_if_error` more, never past its `exp`), a refusal for the
    /// negative TTL; an outage not at all (the previous answer stays).
    fn store(&self, key: [u8; 32], outcome: &Outcome) {
        let Ok(now) = unix_secs(&*self.clock) else {
            // No time to reckon with: nothing earlier may stand in either.
            self.answers.invalidate(&key);
            return;
        };
        let (cache, other, until, stale_until) = match outcome {
            Ok(verified) => {
                let until = verified.reuse_until.unwrap_or(now);
                let stale_end = until + self.stale_if_error;
                let exp = verified.registered().exp();
                (
                    &self.answers,
                    &self.refusals,
                    until,
                    exp.map_or(stale_end, |exp| stale_end.min(exp as f64)),
                )
            }
            Err(e) if e.kind() == crate::ErrorKind::Unauthenticated => {
                let until = now + self.negative_ttl;
                (&self.refusals, &self.answers, until, until)
            }
            Err(_) => return,
        };
        // A negative answer, cached or not, replaces an active one that
        // could otherwise stand in during an outage; an active one ends a
        // refusal.
        other.invalidate(&key);
        if until > now || stale_until > now {
            cache.insert(
                key,
                Answer {
                    outcome: outcome.clone(),
                    until,
                    stale_until,
                },
            );
        } else {
            cache.invalidate(&key);
        }
    }

    /// During an outage: the last active answer for this token hash, if
    /// [`stale_if_error`](IntrospectorBuilder::stale_if_error) still lets it
    /// stand in (never a negative answer, never past the token's `exp`).
    fn stale(&self, key: &[u8; 32]) -> Option<Outcome> {
        if self.stale_if_error <= 0.0 {
            return None;
        }
        let answer = self.answers.get(key)?;
        let now = unix_secs(&*self.clock).ok()?;
        let Ok(mut verified) = answer.outcome else {
            return None;
        };
        if now >= answer.stale_until {
            return None;
        }
        tracing::warn!(
            endpoint = %self.endpoint_name(),
            stale_for_secs = now - answer.until,
            "introspection endpoint failing: serving a cached active answer"
        );
        // Stands in for this call only: not reused by a token cache.
        verified.reuse_until = Some(now);
        Some(Ok(verified))
    }
}

/// What came back from the endpoint when a call gave no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// No usable answer (timeout, 5xx, bad JSON): an outage, which
    /// `stale_if_error` may bridge.
    Missing,
    /// A signed answer that failed its checks (signature, `typ`, `iss`,
    /// `aud`, `iat`): tampering or misconfiguration, never bridged.
    Refused,
}

/// Whether an active answer describes an access token. RFC 7662's
/// `token_type` (an access token type, RFC 6749 §7.1, or an RFC 8693 token
/// type), Keycloak's `typ` and Ory Hydra's `token_use` say which kind of
/// token the server found; any of them naming another kind (a refresh
/// token, an ID token...) refuses the answer, and one must name an access
/// token unless `allow_untyped`. (Without any, an answer may describe a
/// refresh token: oidc-provider leaves `token_type` out for those only.)
fn access_token_kind(
    answer: &serde_json::Map<String, serde_json::Value>,
    allow_untyped: bool,
) -> Result<(), AuthError> {
    /// Each field, and the values that name an access token (any case).
    const KINDS: [(&str, &[&str]); 3] = [
        (
            "token_type",
            &[
                "Bearer",
                "DPoP",
                "N_A",
                "PoP",
                "mac",
                "access_token",
                "urn:ietf:params:oauth:token-type:access_token",
            ],
        ),
        // Keycloak: `Refresh`, `Offline`, `ID`, `Logout`... for the others.
        ("typ", &["Bearer", "DPoP"]),
        // Ory Hydra (fosite): `refresh_token` for the others.
        ("token_use", &["access_token"]),
    ];
    let mut named = false;
    for (field, access) in KINDS {
        match answer.get(field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(kind))
                if access.iter().any(|a| a.eq_ignore_ascii_case(kind)) =>
            {
                named = true;
            }
            Some(_) => {
                return Err(AuthError::InvalidClaim(format!(
                    "the introspection answer's `{field}` names a token that is not an access token"
                )));
            }
        }
    }
    if named || allow_untyped {
        Ok(())
    } else {
        Err(AuthError::InvalidClaim(
            "the introspection answer does not say the token is an access token (no \
             `token_type`); see IntrospectorBuilder::allow_missing_token_type"
                .into(),
        ))
    }
}

/// The cache key of a token: its SHA-256, never the token.
fn hash(token: &str) -> [u8; 32] {
    crate::b64::sha256_digest(&[token.as_bytes()])
}

impl TokenVerifier for Introspector {
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
        if let Err(e) = self.inner.sendable(token) {
            return Some(Err(e));
        }
        self.cached(&hash(token))
    }

    fn verify_later<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        Box::pin(self.verify_shared(token))
    }

    fn now(&self) -> Result<f64, AuthError> {
        unix_secs(&*self.inner.clock)
    }
}

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
    client_id: Option<String>,
    client_secret: String,
    auth: ClientAuth,
    key: Option<ClientKey>,
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
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl IntrospectorBuilder {
    /// The resource server's client credentials at the authorization server.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = client_secret.into();
        self
    }

    /// How the credentials are sent (default [`ClientAuth::SecretBasic`]).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Authenticates as `client_id` with `private_key_jwt` (RFC 7523): each
    /// call sends a fresh client assertion signed with `key` (`iss` and
    /// `sub` the client id, `aud` the endpoint URL unless
    /// [`client_assertion_audience`](IntrospectorBuilder::client_assertion_audience)
    /// says otherwise, a random `jti`, valid 60 s). No secret travels.
    pub fn private_key_jwt(mut self, client_id: impl Into<String>, key: ClientKey) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = String::new();
        self.key = Some(key);
        self.auth = ClientAuth::PrivateKeyJwt;
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
        let client_id = self.client_id.ok_or_else(|| {
            BuildError::config(
                "client_credentials",
                "the introspector needs the resource server's client credentials; \
                 call .client_credentials(id, secret) or .private_key_jwt(id, key)",
            )
        })?;
        if self.auth == ClientAuth::PrivateKeyJwt && self.key.is_none() {
            return Err(BuildError::config(
                "client_auth",
                "private_key_jwt needs the client's private key: call .private_key_jwt(id, key)",
            ));
        }
        crate::verify::check_rules_config(&self.audiences, self.any_audience, self.leeway)?;
        let client = match self.client {
            Some(client) => client,
            None => http::default_client(self.limits.timeout)
                .map_err(|e| BuildError::config("client", e))?,
        };
        let basic = (self.auth == ClientAuth::SecretBasic).then(|| {
            let mut pair = String::new();
            http::form_encode(&client_id, &mut pair);
            pair.push(':');
            http::form_encode(&self.client_secret, &mut pair);
            format!("Basic {}", crate::b64::encode_standard(pair))
        });
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let signed_answers = match self.signed_answers {
            None => None,
            Some((keys, as_issuer)) => {
                let clock = Arc::clone(&clock);
                let verifier = Verifier::builder()
                    .jwks_cache(keys)
                    .issuer(as_issuer)
                    .audience(client_id.clone())
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
                client_id,
                client_secret: self.client_secret,
                auth: self.auth,
                key: self.key,
                assertion_audience: self.assertion_audience,
                signed_answers,
                basic,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn introspector() -> Introspector {
        Introspector::builder("http://127.0.0.1:9/introspect")
            .client_credentials("api", "secret")
            .issuer("https://idp.example")
            .audience("api")
            .leeway(Duration::from_secs(10))
            .max_ttl(Duration::from_secs(60))
            // These answers are about their claims (the kind: below).
            .allow_missing_token_type()
            .build()
            .unwrap()
    }

    fn judge(body: &str) -> Outcome {
        let intro = introspector();
        let url = intro.inner.url.get().unwrap().clone();
        intro
            .inner
            .judge(&url, body.as_bytes().to_vec(), 1_000_000.0)
    }

    #[test]
    fn active_answers_become_claims_reused_until_exp_or_the_ttl() {
        let v =
            judge(r#"{"active":true,"iss":"https://idp.example","aud":"api","sub":"u","exp":1000030,"scope":"a b"}"#)
                .unwrap();
        assert_eq!(v.registered().sub(), Some("u"));
        assert_eq!(v.reuse_until, Some(1_000_030.0));
        assert!(v.payload().contains("\"scope\":\"a b\""));
        let v = judge(r#"{"active":true,"iss":"https://idp.example","aud":["x","api"]}"#).unwrap();
        assert_eq!(v.reuse_until, Some(1_000_060.0));
    }

    #[test]
    fn inactive_or_odd_answers_are_refused() {
        let reason = |body: &str| judge(body).unwrap_err().reason();
        assert_eq!(reason(r#"{"active":false}"#), "inactive");
        assert_eq!(reason(r#"{"sub":"u"}"#), "invalid_claim");
        assert_eq!(reason(r#"{"active":"true"}"#), "invalid_claim");
        assert_eq!(reason(r#"{"active":1}"#), "invalid_claim");
        assert_eq!(reason("[true]"), "introspection_unavailable");
        assert_eq!(reason("<html>"), "introspection_unavailable");
        let base = r#""active":true,"iss":"https://idp.example","aud":"api""#;
        assert_eq!(reason(&format!("{{{base},\"exp\":999990}}")), "expired");
        assert!(
            judge(&format!("{{{base},\"exp\":999995}}")).is_ok(),
            "leeway"
        );
        assert_eq!(
            reason(&format!("{{{base},\"nbf\":1000011}}")),
            "not_yet_valid"
        );
        assert_eq!(
            reason(&format!("{{{base},\"iat\":1000011}}")),
            "issued_in_future"
        );
        assert_eq!(
            reason(r#"{"active":true,"iss":"https://evil.example","aud":"api"}"#),
            "invalid_issuer"
        );
        assert_eq!(reason(r#"{"active":true,"aud":"api"}"#), "missing_claim");
        assert_eq!(
            reason(r#"{"active":true,"iss":"https://idp.example","aud":"other"}"#),
            "invalid_audience"
        );
        assert_eq!(
            reason(&format!("{{{base},\"exp\":\"soon\"}}")),
            "invalid_claim"
        );
    }

    #[test]
    fn only_access_tokens_are_admitted() {
        let kind = |answer: &str, untyped| {
            let value: serde_json::Value = serde_json::from_str(answer).unwrap();
            access_token_kind(value.as_object().unwrap(), untyped)
        };
        for ok in [
            r#"{"token_type":"Bearer"}"#,
            r#"{"token_type":"bearer"}"#,
            r#"{"token_type":"DPoP"}"#,
            r#"{"token_type":"N_A"}"#,
            r#"{"token_type":"access_token"}"#,
            r#"{"token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
            r#"{"typ":"Bearer"}"#,
            r#"{"typ":"Bearer","token_type":"Bearer"}"#,
            r#"{"token_use":"access_token"}"#,
            r#"{"token_type":null,"typ":"Bearer"}"#,
        ] {
            assert!(kind(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            r#"{"token_type":"refresh_token"}"#,
            r#"{"token_type":"urn:ietf:params:oauth:token-type:refresh_token"}"#,
            r#"{"token_type":"urn:ietf:params:oauth:token-type:id_token"}"#,
            r#"{"token_type":"urn:ietf:params:oauth:token-type:jwt"}"#,
            r#"{"token_type":"Bearer","typ":"Refresh"}"#,
            r#"{"typ":"Offline"}"#,
            r#"{"typ":"ID"}"#,
            r#"{"token_type":"Bearer","token_use":"refresh_token"}"#,
            r#"{"token_type":["Bearer"]}"#,
            r#"{"typ":1}"#,
        ] {
            for untyped in [false, true] {
                let err = kind(refused, untyped).unwrap_err();
                assert_eq!(err.reason(), "invalid_claim", "{refused}");
            }
        }
        // Untyped: refused unless allowed.
        assert!(kind(r#"{"sub":"u"}"#, false).is_err());
        assert!(kind(r#"{"token_type":null}"#, false).is_err());
        assert!(kind(r#"{"sub":"u"}"#, true).is_ok());
    }

    #[test]
    fn only_b64tokens_within_the_limit_are_sent() {
        let intro = Introspector::builder("http://127.0.0.1:9/introspect")
            .client_credentials("api", "secret")
            .audience("api")
            .max_token_len(16)
            .build()
            .unwrap();
        let sendable = |token: &str| intro.inner.sendable(token).map_err(|e| e.reason());
        for ok in [
            "a",
            "Az09-._~+/",
            "abc=",
            "abc==",
            "2YotnFZFEjr1zCsi",
            "eyJ.eyJ.sig",
        ] {
            assert_eq!(sendable(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "=",
            "==abc",
            "a=b",
            "a b",
            "a%41",
            "a,b",
            "a\"b",
            "caf\u{e9}",
            "a\tb",
            "a\0",
        ] {
            assert_eq!(sendable(bad), Err("malformed"), "{bad:?}");
        }
        assert_eq!(sendable(&"a".repeat(17)), Err("too_large"));
        // Refused before the cache is even looked at.
        match intro.verify_now("a b") {
            Some(Err(e)) => assert_eq!(e.reason(), "malformed"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_calls_at_all_is_a_mistake_and_huge_ttls_do_not_panic() {
        let base = || {
            Introspector::builder("https://idp.example/i")
                .client_credentials("a", "s")
                .audience("api")
        };
        let err = base()
            .max_concurrent_calls(0)
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_concurrent_calls"), "{err}");
        // The limits' one check, as for a JWKS cache.
        let err = base()
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("IntrospectorBuilder::timeout is zero"),
            "{err}"
        );
        assert!(
            base()
                .max_ttl(Duration::MAX)
                .negative_ttl(Duration::MAX)
                .stale_if_error(Duration::MAX)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn the_cache_key_is_a_hash() {
        let key = hash("secret-token");
        assert_eq!(key.len(), 32);
        assert_ne!(&key[..12], b"secret-token");
        assert_eq!(key, hash("secret-token"));
        assert_ne!(key, hash("secret-tokem"));
    }

    #[test]
    fn mistakes_are_reported_at_build() {
        let err = |b: IntrospectorBuilder| b.build().unwrap_err().to_string();
        let base = || {
            Introspector::builder("https://idp.example/i")
                .client_credentials("a", "s")
                .audience("api")
        };
        assert!(base().build().is_ok());
        assert!(
            err(Introspector::builder("http://idp.example/i")
                .client_credentials("a", "s")
                .audience("api"))
            .contains("HTTPS")
        );
        assert!(base().allow_http().build().is_ok());
        assert!(err(Introspector::builder("not a url").audience("x")).contains("not a URL"));
        assert!(
            err(Introspector::builder("https://idp.example/i").audience("api"))
                .contains("client_credentials")
        );
        assert!(
            err(Introspector::builder("https://idp.example/i").client_credentials("a", "s"))
                .contains("audience")
        );
        assert!(err(base().leeway(Duration::from_secs(301))).contains("leeway"));
        assert!(
            err(base().issuer("https://login.microsoftonline.com/{tenantid}/v2.0"))
                .contains("template")
        );
        match Introspector::builder("https://idp.example/i")
            .client_credentials("a", "s")
            .build()
        {
            Err(BuildError::InvalidConfig(e)) => assert_eq!(e.setting(), "audience"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let builder = Introspector::builder("http://127.0.0.1:9/i")
            .client_credentials("api", "hunter2-xyz")
            .audience("api");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let text = format!("{:?}", builder.build().unwrap());
        assert!(text.contains("127.0.0.1"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
