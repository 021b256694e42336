//! Opaque tokens: OAuth 2.0 token introspection (RFC 7662) as a
//! [`TokenVerifier`], cached, one call per token at a time; and
//! [`JwtOrIntrospect`], local JWT verification for tokens that look like a
//! JWS (or a JWE its verifier decrypts) and introspection for the others;
//! and [`JwtThenIntrospect`], local
//! JWT verification followed by introspection (real-time revocation).
//!
#![doc = include_str!("../docs/introspection.md")]

mod active;
pub(crate) mod assertion;
mod builder;
mod call;

#[cfg(test)]
use call::access_token_kind;
use call::{Reply, hash};
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
pub use builder::IntrospectorBuilder;
pub use either::JwtOrIntrospect;
#[cfg(feature = "redis")]
pub use shared::SharedAnswers;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::flight::{Flight, Flights, Joined};
use crate::store::PerformanceCache;
use reqwest::{Client, Url};

use crate::BoxFuture;
use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::{AuthError, BuildError};
use crate::http;
use crate::jwks::JwksCache;
use crate::verify::{ClaimRules, TokenVerifier, Verified, Verifier, read_registered};

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
    /// How the client authenticates, and the assertions' `aud` of
    /// `private_key_jwt` (`None`: the endpoint URL).
    credentials: assertion::ClientCredentials,
    assertion_audience: Option<String>,
    /// Verifies RFC 9701 signed answers, when asked for.
    signed_answers: Option<Verifier>,
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
            .field("client_id", &c.credentials.client_id)
            .field("auth", &c.credentials.auth)
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
        IntrospectorBuilder::new(url.into(), false)
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
        IntrospectorBuilder::new(issuer.into(), true)
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

impl TokenVerifier for Introspector {
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
        if let Err(e) = self.inner.sendable(token) {
            return Some(Err(e));
        }
        self.cached(&hash(token))
    }

    fn verify_later<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, AuthError>> {
        Box::pin(self.verify_shared(token))
    }

    fn now(&self) -> Result<f64, AuthError> {
        unix_secs(&*self.inner.clock)
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
        assert!(v.json().contains("\"scope\":\"a b\""));
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
