//! Calling other APIs for the caller: OAuth 2.0 token exchange (RFC 8693).
//! [`TokenExchange`] trades the incoming access token for one to another
//! API (its `resource` or `audience`, with the scopes it needs), and
//! [`ExchangeLayer`] does it for every outgoing `http::Request` of a client.
//!
#![doc = include_str!("../docs/exchange.md")]

mod layer;

pub use layer::{Exchange, ExchangeFuture, ExchangeLayer};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::{AuthError, BuildError};
use crate::flight::{Flight, Flights, Joined};
use crate::http;
use crate::introspection::assertion::{ClientCredentials, Credentials};
use crate::introspection::{ClientAuth, ClientKey};
use crate::store::PerformanceCache;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// A token is not handed out when it expires within this margin.
const EXPIRY_MARGIN: f64 = 10.0;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_ANSWER: usize = 64 * 1024;
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
const DEFAULT_MAX_CALLS: usize = 64;
const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// The cache's own bound on an entry's life; each token has its own `exp`.
const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What to exchange a token for: the downstream API (`resource`, RFC 8707,
/// and/or `audience`) and the scopes it needs.
///
/// ```
/// use tower_jwt_auth::exchange::Target;
/// let orders = Target::resource("https://orders.example.com/").scopes(["orders:read"]);
/// # let _ = orders;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    resource: Option<String>,
    audience: Option<String>,
    scopes: Vec<String>,
}

impl Target {
    /// The API by its URL (`resource`, RFC 8707).
    pub fn resource(url: impl Into<String>) -> Self {
        Target {
            resource: Some(url.into()),
            audience: None,
            scopes: Vec::new(),
        }
    }

    /// The API by the name the authorization server knows it by (`audience`).
    pub fn audience(name: impl Into<String>) -> Self {
        Target {
            resource: None,
            audience: Some(name.into()),
            scopes: Vec::new(),
        }
    }

    /// The scopes to ask for (kept sorted and once each: the order does not
    /// change the token).
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self.scopes.sort();
        self.scopes.dedup();
        self
    }
}

/// A token obtained by exchange.
#[derive(Clone)]
pub struct ExchangedToken {
    access_token: Arc<str>,
    expires_at: Option<f64>,
    scope: Option<Arc<str>>,
}

impl fmt::Debug for ExchangedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("ExchangedToken")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ExchangedToken {
    /// The access token, for `Authorization: Bearer …` to the API.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// When it expires (seconds since the Unix epoch), from `expires_in`.
    pub fn expires_at(&self) -> Option<f64> {
        self.expires_at
    }

    /// The scopes granted, when the answer names them.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

type Outcome = Result<ExchangedToken, AuthError>;

/// An RFC 8693 token exchange client: trades a subject token (the access
/// token the request came with) for a token to another API. Cheap to
/// clone. Built with [`TokenExchange::builder`].
///
/// - The client authenticates as the introspection client does
///   (`client_secret_basic`, `client_secret_post`, `private_key_jwt`).
/// - Tokens are cached by (SHA-256 of the subject token, target, scopes)
///   until their `expires_in` (less a 10 s margin); a token without
///   `expires_in` is not cached. A performance cache: forgetting costs an
///   exchange.
/// - Concurrent exchanges of one key share one call (single flight), in a
///   task of its own; at most
///   [`max_concurrent_calls`](TokenExchangeBuilder::max_concurrent_calls)
///   (64) run at once, past that [`AuthError::ExchangeUnavailable`] at
///   once.
/// - The same outage rules as introspection: every call is bounded in time
///   and size, follows no redirect, goes over HTTPS unless the endpoint is
///   on a loopback host; an endpoint that cannot answer fails closed with
///   [`AuthError::ExchangeUnavailable`] (503). An OAuth error answer (400:
///   `invalid_grant`, `invalid_target`, `invalid_scope`) is
///   [`AuthError::Forbidden`] (403): the caller's token cannot be traded for
///   that API. Neither is cached.
///
/// ```no_run
/// use tower_jwt_auth::exchange::{Target, TokenExchange};
///
/// # async fn run(incoming: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let exchange = TokenExchange::builder("https://idp.example/oauth2/token")
///     .client_credentials("my-mcp-server", "its-secret")
///     .build()?;
/// let target = Target::resource("https://orders.example.com/").scopes(["orders:read"]);
/// let token = exchange.exchange(incoming, &target).await?;
/// let _ = token.access_token(); // Authorization: Bearer …
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenExchange {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    client: Client,
    credentials: ClientCredentials,
    limits: http::Limits,
    clock: Arc<dyn Clock>,
    /// Exchanged tokens by key. Performance cache: may forget; forgetting
    /// costs an exchange.
    tokens: PerformanceCache<moka::sync::Cache<[u8; 32], ExchangedToken>>,
    inflight: Flights<[u8; 32], Outcome>,
    calls: Arc<tokio::sync::Semaphore>,
    max_calls: usize,
    max_token_len: usize,
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &*self.inner;
        // No secret, no token.
        f.debug_struct("TokenExchange")
            .field("endpoint", &crate::text::redact_url(c.url.as_str()))
            .field("client_id", &c.credentials.client_id)
            .field("auth", &c.credentials.auth)
            .field("cached", &c.tokens.entry_count())
            .finish_non_exhaustive()
    }
}

/// The cache key: the subject token's hash and the target, never the token.
fn key(subject: &str, target: &Target) -> [u8; 32] {
    let mut parts: Vec<&[u8]> = vec![b"exchange\0", subject.as_bytes(), b"\0r"];
    parts.push(target.resource.as_deref().unwrap_or("").as_bytes());
    parts.push(if target.resource.is_some() {
        b"\x01"
    } else {
        b"\x00"
    });
    parts.push(b"\0a");
    parts.push(target.audience.as_deref().unwrap_or("").as_bytes());
    parts.push(if target.audience.is_some() {
        b"\x01"
    } else {
        b"\x00"
    });
    for s in &target.scopes {
        parts.push(b"\0s");
        parts.push(s.as_bytes());
    }
    crate::b64::sha256_digest(&parts)
}

impl TokenExchange {
    /// Starts building a client for the token endpoint at `url`.
    pub fn builder(url: impl Into<String>) -> TokenExchangeBuilder {
        TokenExchangeBuilder {
            url: url.into(),
            credentials: Credentials::default(),
            client: None,
            limits: http::Limits {
                timeout: DEFAULT_TIMEOUT,
                max_body: DEFAULT_MAX_ANSWER,
                allow_http: false,
            },
            max_entries: DEFAULT_MAX_ENTRIES,
            max_calls: DEFAULT_MAX_CALLS,
            clock: None,
        }
    }

    /// A token for `target` acting for the subject of `subject_token`:
    /// from the cache, from an exchange under way for the same key, or
    /// from a new exchange.
    ///
    /// # Errors
    /// [`AuthError::ExchangeUnavailable`] when the endpoint cannot answer
    /// (or too many exchanges are under way); [`AuthError::Forbidden`] when
    /// it refuses the exchange; [`AuthError::TokenTooLarge`] for a subject
    /// token over 8 KiB (not sent).
    pub async fn exchange(&self, subject_token: &str, target: &Target) -> Outcome {
        if subject_token.len() > self.inner.max_token_len {
            return Err(AuthError::TokenTooLarge {
                len: subject_token.len(),
                limit: self.inner.max_token_len,
            });
        }
        let key = key(subject_token, target);
        let joined = self.inner.inflight.join(
            key,
            || self.inner.cached(&key).map(Ok),
            || {
                let permit = match Arc::clone(&self.inner.calls).try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        return Joined::Answer(Err(AuthError::ExchangeUnavailable(
                            format!(
                                "{} token exchanges are under way, the most allowed at once",
                                self.inner.max_calls
                            )
                            .into(),
                        )));
                    }
                };
                let inner = Arc::clone(&self.inner);
                let subject = subject_token.to_owned();
                let target = target.clone();
                Joined::Flight(Flight::spawn(
                    &tokio::runtime::Handle::current(),
                    async move {
                        let outcome = inner.call(&subject, &target).await;
                        if let Ok(token) = &outcome {
                            inner.store(key, token);
                        }
                        inner.inflight.land(&key);
                        drop(permit);
                        outcome
                    },
                ))
            },
        );
        match joined {
            Joined::Answer(answer) => answer,
            Joined::Flight(mut flight) => flight.wait().await.unwrap_or_else(|| {
                Err(AuthError::ExchangeUnavailable(
                    "the token exchange ended without an answer".into(),
                ))
            }),
        }
    }
}

/// A token endpoint's answer (RFC 8693 §2.2.1, RFC 6749 §5.2).
#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<f64>,
    scope: Option<String>,
    error: Option<String>,
}

impl Inner {
    fn cached(&self, key: &[u8; 32]) -> Option<ExchangedToken> {
        let token = self.tokens.get(key)?;
        let now = unix_secs(&*self.clock).ok()?;
        match token.expires_at {
            Some(exp) if now + EXPIRY_MARGIN < exp => Some(token),
            _ => {
                self.tokens.invalidate(key);
                None
            }
        }
    }

    fn store(&self, key: [u8; 32], token: &ExchangedToken) {
        if token.expires_at.is_some() {
            self.tokens.insert(key, token.clone());
        }
    }

    async fn call(&self, subject: &str, target: &Target) -> Outcome {
        let started = std::time::Instant::now();
        let outcome = self.ask(subject, target).await;
        tracing::debug!(
            endpoint = %crate::text::redact_url(self.url.as_str()),
            ok = outcome.is_ok(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "token exchanged"
        );
        outcome
    }

    async fn ask(&self, subject: &str, target: &Target) -> Outcome {
        let unavailable = |why: String| {
            tracing::warn!(endpoint = %crate::text::redact_url(self.url.as_str()), error = %why, "token exchange failed");
            AuthError::ExchangeUnavailable(why.into())
        };
        let mut form = String::with_capacity(subject.len() + 256);
        form.push_str("grant_type=");
        http::form_encode(GRANT_TYPE, &mut form);
        form.push_str("&subject_token=");
        http::form_encode(subject, &mut form);
        form.push_str("&subject_token_type=");
        http::form_encode(ACCESS_TOKEN, &mut form);
        form.push_str("&requested_token_type=");
        http::form_encode(ACCESS_TOKEN, &mut form);
        if let Some(resource) = &target.resource {
            form.push_str("&resource=");
            http::form_encode(resource, &mut form);
        }
        if let Some(audience) = &target.audience {
            form.push_str("&audience=");
            http::form_encode(audience, &mut form);
        }
        if !target.scopes.is_empty() {
            form.push_str("&scope=");
            http::form_encode(&target.scopes.join(" "), &mut form);
        }
        self.credentials
            .add_to_form(&mut form, self.url.as_str(), || unix_secs(&*self.clock))?;
        let post = http::Post {
            client: &self.client,
            url: &self.url,
            authorization: self.credentials.authorization(),
            accept: "application/json",
            form,
            limits: &self.limits,
        };
        let (status, body) = post.send_token_request().await.map_err(unavailable)?;
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| unavailable("the answer is not a JSON object".into()))?;
        if status == StatusCode::BAD_REQUEST {
            let code = answer.error.unwrap_or_else(|| "no error code".into());
            // Only the code: the description is the server's, for logs.
            let code: String = code
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            return Err(AuthError::Forbidden(format!(
                "the authorization server refused the token exchange: {code}"
            )));
        }
        let Some(access_token) = answer.access_token.filter(|t| !t.is_empty()) else {
            return Err(unavailable("the answer holds no access_token".into()));
        };
        // A Bearer token: this client sends no proof of possession.
        if !answer
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(unavailable("the answer's token_type is not Bearer".into()));
        }
        let now = unix_secs(&*self.clock)?;
        Ok(ExchangedToken {
            access_token: access_token.into(),
            expires_at: answer
                .expires_in
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| now + s),
            scope: answer.scope.map(Into::into),
        })
    }
}

/// Builds a [`TokenExchange`]; mistakes are reported by
/// [`build`](TokenExchangeBuilder::build).
///
/// Defaults: `client_secret_basic`, a 5 s timeout per call, answers up to
/// 64 KiB, HTTPS unless the endpoint is on a loopback address, 10 000
/// cached tokens, 64 exchanges in flight at most.
#[must_use]
pub struct TokenExchangeBuilder {
    url: String,
    credentials: Credentials,
    client: Option<Client>,
    limits: http::Limits,
    max_entries: u64,
    max_calls: usize,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for TokenExchangeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchangeBuilder")
            .field("url", &crate::text::redact_url(&self.url))
            .field("client_id", &self.credentials.client_id)
            .field("auth", &self.credentials.auth)
            .finish_non_exhaustive()
    }
}

impl TokenExchangeBuilder {
    /// The client's id and secret (`client_secret_basic` unless
    /// [`client_auth`](TokenExchangeBuilder::client_auth) says `SecretPost`).
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials
            .secret(client_id.into(), client_secret.into());
        self
    }

    /// How the client authenticates with its secret.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.credentials.auth = auth;
        self
    }

    /// `private_key_jwt` (RFC 7523) with the client's private key; the
    /// assertions' audience is the token endpoint URL.
    pub fn private_key_jwt(mut self, client_id: impl Into<String>, key: ClientKey) -> Self {
        self.credentials.private_key_jwt(client_id.into(), key);
        self
    }

    /// Uses this HTTP client (custom CA, proxy).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The timeout of one exchange (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// Allows plain HTTP to hosts that are not loopback ones.
    pub fn allow_http(mut self) -> Self {
        self.limits.allow_http = true;
        self
    }

    /// Cached tokens at most (default 10 000).
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// Exchanges in flight at most (default 64).
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.max_calls = calls;
        self
    }

    /// Reads the time from `clock` (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an endpoint that is not a URL or is
    /// plain HTTP to a non-loopback host (without
    /// [`allow_http`](TokenExchangeBuilder::allow_http)), no client
    /// credentials, `private_key_jwt` without a key, a zero timeout or
    /// call limit, or an HTTP client that cannot be built.
    pub fn build(self) -> Result<TokenExchange, BuildError> {
        let url = Url::parse(&self.url).map_err(|e| {
            BuildError::config(
                "url",
                format!("the token endpoint {:?} is not a URL: {e}", self.url),
            )
        })?;
        http::check_url(&url, self.limits.allow_http).map_err(|e| BuildError::config("url", e))?;
        self.limits.check("TokenExchangeBuilder")?;
        let credentials = self.credentials.build(
            "the token exchange client needs credentials; call \
             .client_credentials(id, secret) or .private_key_jwt(id, key)",
        )?;
        if self.max_calls == 0 {
            return Err(BuildError::config(
                "max_concurrent_calls",
                "0: no token could ever be exchanged",
            ));
        }
        let client = match self.client {
            Some(client) => client,
            None => http::default_client(self.limits.timeout)
                .map_err(|e| BuildError::config("client", e))?,
        };
        let tokens = moka::sync::Cache::builder()
            .max_capacity(self.max_entries)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .time_to_live(MAX_CACHE_TTL)
            .build();
        Ok(TokenExchange {
            inner: Arc::new(Inner {
                url,
                client,
                credentials,
                limits: self.limits,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                tokens: PerformanceCache::may_forget(tokens, "a token exchange"),
                inflight: Flights::new(),
                calls: Arc::new(tokio::sync::Semaphore::new(self.max_calls)),
                max_calls: self.max_calls,
                max_token_len: DEFAULT_MAX_TOKEN_LEN,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_subject_target_and_scopes_not_scope_order() {
        let t = Target::resource("https://a").scopes(["x", "y"]);
        assert_eq!(
            key("tok", &t),
            key(
                "tok",
                &Target::resource("https://a").scopes(["y", "x", "x"])
            )
        );
        assert_ne!(key("tok", &t), key("tok2", &t));
        assert_ne!(
            key("tok", &t),
            key("tok", &Target::audience("https://a").scopes(["x", "y"]))
        );
        assert_ne!(
            key("tok", &t),
            key("tok", &Target::resource("https://a").scopes(["x"]))
        );
    }

    #[test]
    fn builds_refuse_bad_settings() {
        assert!(
            TokenExchange::builder("http://as.example/token")
                .client_credentials("a", "b")
                .build()
                .is_err()
        );
        assert!(
            TokenExchange::builder("https://as.example/token")
                .build()
                .is_err()
        );
        assert!(
            TokenExchange::builder("https://as.example/token")
                .client_credentials("a", "b")
                .client_auth(ClientAuth::PrivateKeyJwt)
                .build()
                .is_err()
        );
        assert!(
            TokenExchange::builder("http://127.0.0.1:9/token")
                .client_credentials("a", "b")
                .build()
                .is_ok()
        );
    }
}
