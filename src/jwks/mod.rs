//! Remote keys: a JWKS fetched over HTTPS (directly or by OIDC discovery),
//! cached as one immutable key set, refreshed ahead of expiry in the
//! background, and kept through provider outages (feature `jwks`).
//!
//! The request path for a cached `kid` reads one `Arc` under a read lock
//! held for nanoseconds: no I/O, no waiting on refreshes. Only a token
//! naming an unknown `kid` (or a cold cache) waits, and then for one shared
//! fetch, at most once per cooldown.

mod fetch;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Client, Url};

use crate::algorithm::Algorithm;
use crate::error::{AuthError, BuildError};
use crate::key::{KeySet, parse_jwk_set};
use fetch::Limits;

/// Default time a fetched key set stays fresh without `Cache-Control`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default minimum time between fetches caused by unknown `kid`s.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// Default time the last good keys keep serving while the provider fails.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// Default fetch timeout (connect, headers and body together).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default limit on a JWKS or discovery document.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone)]
enum Source {
    Jwks(Url),
    Issuer(String),
}

/// A cached remote JSON Web Key Set. Cheap to clone; clones share the cache.
///
/// Build it from a JWKS URL or from an issuer URL (OIDC discovery), then
/// hand it to [`VerifierBuilder::jwks_cache`](crate::VerifierBuilder::jwks_cache).
/// Nothing is fetched until the first token arrives (or [`prefetch`](JwksCache::prefetch)).
///
/// ```no_run
/// use tower_jwt_auth::{JwksCache, JwtAuthLayer, Verifier};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = JwksCache::discover("https://login.example.com/realms/acme").build()?;
/// keys.prefetch().await?; // optional: fail fast at start-up
/// let verifier = Verifier::builder()
///     .jwks_cache(keys.clone())
///     .issuer("https://login.example.com/realms/acme")
///     .audience("orders-api")
///     .build()?;
/// let layer = JwtAuthLayer::new(verifier);
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct JwksCache {
    shared: Arc<Shared>,
}

struct Shared {
    source: Source,
    client: Client,
    limits: Limits,
    ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    cooldown: Duration,
    max_stale: Duration,
    algorithms: Vec<Algorithm>,
    state: RwLock<State>,
    fetch_lock: tokio::sync::Mutex<()>,
    refresher: AtomicBool,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    fetched_at_wall: Option<SystemTime>,
    fresh_for: Duration,
    last_attempt: Option<Instant>,
    attempts: u64,
    failures: u32,
    last_error: Option<String>,
    skipped: Vec<String>,
    jwks_url: Option<Url>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("source", &self.shared.source)
            .field("algorithms", &self.shared.algorithms)
            .field("status", &self.status())
            .finish()
    }
}

/// What a [`JwksCache`] knows about its last fetches, for readiness probes.
#[derive(Debug, Clone)]
pub struct JwksStatus {
    last_success: Option<SystemTime>,
    key_count: usize,
    last_error: Option<String>,
    consecutive_failures: u32,
    fetches: u64,
    skipped: Vec<String>,
    usable: bool,
}

impl JwksStatus {
    /// When keys were last fetched successfully.
    pub fn last_success(&self) -> Option<SystemTime> {
        self.last_success
    }
    /// Number of usable keys cached.
    pub fn key_count(&self) -> usize {
        self.key_count
    }
    /// The error of the last fetch, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
    /// Fetches failed in a row since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
    /// Fetch attempts so far.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }
    /// Why members of the last key set were skipped.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
    /// Whether cached keys are usable now (fetched, and not older than the maximum stale age).
    pub fn is_ready(&self) -> bool {
        self.usable
    }
}

/// Builds a [`JwksCache`]. See [`JwksCache::builder`] and [`JwksCache::discover`].
#[must_use]
pub struct JwksCacheBuilder {
    source: Result<Source, String>,
    client: Option<Client>,
    limits: Limits,
    ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    cooldown: Duration,
    max_stale: Duration,
    algorithms: Vec<Algorithm>,
}

impl fmt::Debug for JwksCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCacheBuilder")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache of the key set at `jwks_url`.
    pub fn builder(jwks_url: &str) -> JwksCacheBuilder {
        JwksCacheBuilder::new(
            Url::parse(jwks_url)
                .map(Source::Jwks)
                .map_err(|e| format!("{jwks_url:?} is not a URL: {e}")),
        )
    }

    /// A cache of the key set of `issuer`, found by OpenID Connect discovery
    /// (`{issuer}/.well-known/openid-configuration`, then RFC 8414
    /// metadata). The document's `issuer` must equal `issuer` exactly.
    pub fn discover(issuer: &str) -> JwksCacheBuilder {
        JwksCacheBuilder::new(
            Url::parse(issuer)
                .map(|_| Source::Issuer(issuer.to_owned()))
                .map_err(|e| format!("{issuer:?} is not a URL: {e}")),
        )
    }

    /// Fetches the key set now, whatever the cooldown, and waits for it.
    ///
    /// # Errors
    /// [`AuthError::KeysUnavailable`] with the reason the fetch failed.
    pub async fn prefetch(&self) -> Result<usize, AuthError> {
        self.ensure_refresher();
        let _guard = self.shared.fetch_lock.lock().await;
        self.shared.fetch_and_store().await;
        let state = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
        match (&state.last_error, &state.keys) {
            (None, Some(keys)) => Ok(keys.len()),
            (Some(e), _) => Err(AuthError::KeysUnavailable(e.clone())),
            (None, None) => Err(AuthError::KeysUnavailable("no keys fetched".into())),
        }
    }

    /// The cache's state, for readiness probes and diagnostics.
    pub fn status(&self) -> JwksStatus {
        let state = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
        let usable = self.shared.usable(&state).is_some();
        JwksStatus {
            last_success: state.fetched_at_wall,
            key_count: state.keys.as_ref().map_or(0, |k| k.len()),
            last_error: state.last_error.clone(),
            consecutive_failures: state.failures,
            fetches: state.attempts,
            skipped: state.skipped.clone(),
            usable,
        }
    }

    pub(crate) fn algorithms(&self) -> &[Algorithm] {
        &self.shared.algorithms
    }

    /// The keys at hand (fetched and not too stale), if any.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.shared.usable(&self.shared.read())
    }

    /// The cached keys if they can verify a token with this `kid` and `alg`
    /// now; `None` when a fetch is needed first.
    pub(crate) fn cached(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<KeySet>> {
        self.ensure_refresher();
        let state = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
        self.shared.usable(&state).filter(|keys| keys.has(kid, alg))
    }

    /// The keys to verify a token with this `kid`: fetched first when the
    /// kid is unknown and the cooldown allows, shared with concurrent callers.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeySet>, AuthError> {
        self.ensure_refresher();
        let seen = self.shared.read().attempts;
        let guard = tokio::time::timeout(
            self.shared.limits.timeout * 3,
            self.shared.fetch_lock.lock(),
        )
        .await;
        if let Ok(_guard) = guard {
            let (should_fetch, known) = {
                let state = self.shared.read();
                let keys = self.shared.usable(&state);
                let known = keys.as_ref().is_some_and(|k| k.has(kid, alg));
                let now = Instant::now();
                let wait = if keys.is_none() {
                    backoff(state.failures)
                } else {
                    self.shared.cooldown
                };
                let due = state.last_attempt.is_none_or(|t| now >= t + wait);
                (state.attempts == seen && !known && due, known)
            };
            if should_fetch && !known {
                self.shared.fetch_and_store().await;
            }
        }
        let state = self.shared.read();
        match self.shared.usable(&state) {
            Some(keys) => Ok(keys),
            None => Err(AuthError::KeysUnavailable(
                state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the key set could not be fetched yet".into()),
            )),
        }
    }

    /// Starts the background refresher once, if a tokio runtime is running.
    fn ensure_refresher(&self) {
        if self.shared.refresher.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.shared.refresher.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        handle.spawn(refresh_loop(weak));
    }
}

/// Refreshes ahead of expiry, and retries with backoff after failures,
/// until every handle to the cache is gone.
async fn refresh_loop(weak: Weak<Shared>) {
    loop {
        let (delay, seen) = {
            let Some(shared) = weak.upgrade() else { return };
            let state = shared.read();
            let now = Instant::now();
            let due = match (state.fetched_at, state.last_attempt) {
                _ if state.failures > 0 => state.last_attempt.map(|t| t + backoff(state.failures)),
                (Some(t), _) => Some(t + state.fresh_for.mul_f64(0.8)),
                (None, _) => None,
            };
            let delay = match due {
                Some(due) => due.saturating_duration_since(now),
                // Nothing fetched yet: the first request fetches; look again soon.
                None => Duration::from_millis(500),
            };
            (delay.max(Duration::from_millis(50)), state.attempts)
        };
        tokio::time::sleep(delay).await;
        let Some(shared) = weak.upgrade() else { return };
        if shared.read().fetched_at.is_none() && shared.read().failures == 0 {
            continue;
        }
        let _guard = shared.fetch_lock.lock().await;
        if shared.read().attempts == seen {
            shared.fetch_and_store().await;
        }
    }
}

/// Delay before retrying after `failures` failed fetches: 1 s, doubling, at most 60 s.
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << (failures - 1).min(6)).min(Duration::from_secs(60))
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys if fetched and not older than the maximum stale age.
    fn usable(&self, state: &State) -> Option<Arc<KeySet>> {
        let fetched = state.fetched_at?;
        if fetched.elapsed() > self.max_stale {
            return None;
        }
        state.keys.clone()
    }

    /// Fetches and stores the key set. Callers hold `fetch_lock`.
    async fn fetch_and_store(&self) {
        let started = Instant::now();
        let result = self.fetch().await;
        crate::observe::jwks_fetch(result.is_ok(), started);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.attempts += 1;
        state.last_attempt = Some(Instant::now());
        match result {
            Ok((keys, skipped, max_age, url)) => {
                for member in &skipped {
                    tracing::warn!(jwks_url = %url, %member, "skipped a JWKS member");
                }
                tracing::debug!(jwks_url = %url, keys = keys.len(), elapsed_ms, "fetched JWKS");
                state.keys = Some(Arc::new(keys));
                state.fetched_at = Some(Instant::now());
                state.fetched_at_wall = Some(SystemTime::now());
                state.fresh_for = max_age
                    .map(|a| a.clamp(self.min_ttl, self.max_ttl))
                    .unwrap_or(self.ttl);
                state.failures = 0;
                state.last_error = None;
                state.skipped = skipped;
                state.jwks_url = Some(url);
            }
            Err(error) => {
                match state.fetched_at.filter(|t| t.elapsed() <= self.max_stale) {
                    Some(t) => tracing::warn!(
                        %error,
                        elapsed_ms,
                        serving_keys_fetched_secs_ago = t.elapsed().as_secs(),
                        "JWKS refresh failed; serving the last good keys"
                    ),
                    None => tracing::error!(
                        %error,
                        elapsed_ms,
                        "JWKS fetch failed and no usable keys are cached"
                    ),
                }
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(error);
                if matches!(self.source, Source::Issuer(_)) {
                    // Discover again next time: the jwks_uri may have moved.
                    state.jwks_url = None;
                }
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Vec<String>, Option<Duration>, Url), String> {
        let known_url = self.read().jwks_url.clone();
        let url = match (&self.source, known_url) {
            (Source::Jwks(url), _) => url.clone(),
            (Source::Issuer(_), Some(url)) => url,
            (Source::Issuer(issuer), None) => {
                fetch::discover(&self.client, issuer, &self.limits).await?
            }
        };
        let fetched = fetch::get(&self.client, &url, &self.limits).await?;
        let (keys, skipped) =
            parse_jwk_set(&fetched.body, Some(&self.algorithms), &self.algorithms)
                .map_err(|e| format!("{url}: {e}"))?;
        let skipped: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        if keys.is_empty() {
            return Err(format!(
                "{url}: no usable key for {:?} in the key set{}{}",
                self.algorithms,
                if skipped.is_empty() { "" } else { ": " },
                skipped.join("; ")
            ));
        }
        Ok((KeySet::new(keys), skipped, fetched.max_age, url))
    }
}

impl JwksCacheBuilder {
    fn new(source: Result<Source, String>) -> Self {
        JwksCacheBuilder {
            source,
            client: None,
            limits: Limits {
                timeout: DEFAULT_TIMEOUT,
                max_body: DEFAULT_MAX_BODY,
                allow_http: false,
            },
            ttl: DEFAULT_TTL,
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            cooldown: DEFAULT_COOLDOWN,
            max_stale: DEFAULT_MAX_STALE,
            algorithms: vec![Algorithm::RS256],
        }
    }

    /// The algorithms accepted from this key set (default: RS256 only). A
    /// JWK naming another `alg` is skipped; a JWK without `alg` is bound to
    /// those of these algorithms that fit its key type.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }

    /// Uses this HTTP client (custom CA, proxy). Its redirect policy is the
    /// application's; the timeout and body limit still apply.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Timeout for one fetch: connect, headers and body (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// Largest accepted document (default 1 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.limits.max_body = bytes;
        self
    }

    /// Allows plain HTTP to non-loopback hosts. Only for trusted networks.
    pub fn allow_http(mut self) -> Self {
        self.limits.allow_http = true;
        self
    }

    /// How long keys stay fresh when the answer has no `Cache-Control:
    /// max-age` (default 10 minutes). They are refreshed in the background
    /// at 80% of that time.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Bounds applied to `Cache-Control: max-age` (default 1 minute to 24 hours).
    pub fn max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }

    /// Minimum time since the last fetch before an unknown `kid` causes
    /// another (default 30 s).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long the last good keys keep serving while refreshes fail
    /// (default 24 hours). After that, tokens are answered `unavailable`.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Builds the cache. Nothing is fetched yet.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for a URL that is not one, plain HTTP
    /// to a non-loopback host without [`allow_http`](Self::allow_http), no
    /// algorithms or HMAC algorithms, or bounds that make no sense.
    pub fn build(self) -> Result<JwksCache, BuildError> {
        let source = self.source.map_err(BuildError::InvalidConfig)?;
        let url = match &source {
            Source::Jwks(url) => url.clone(),
            Source::Issuer(issuer) => {
                Url::parse(issuer).map_err(|e| BuildError::InvalidConfig(e.to_string()))?
            }
        };
        fetch::check_url(&url, self.limits.allow_http).map_err(BuildError::InvalidConfig)?;
        if self.algorithms.is_empty() {
            return Err(BuildError::InvalidConfig(
                "no algorithms allowed for the key set".into(),
            ));
        }
        if let Some(alg) = self
            .algorithms
            .iter()
            .find(|a| a.family() == crate::algorithm::Family::Hmac)
        {
            return Err(BuildError::InvalidConfig(format!(
                "{alg} keys are never taken from a JWKS (a shared secret must not be published)"
            )));
        }
        if self.min_ttl > self.max_ttl || self.limits.timeout.is_zero() {
            return Err(BuildError::InvalidConfig(
                "max_age_bounds min is over max, or the timeout is zero".into(),
            ));
        }
        let client = match self.client {
            Some(c) => c,
            None => {
                fetch::default_client(self.limits.timeout).map_err(BuildError::InvalidConfig)?
            }
        };
        Ok(JwksCache {
            shared: Arc::new(Shared {
                source,
                client,
                limits: self.limits,
                ttl: self.ttl,
                min_ttl: self.min_ttl,
                max_ttl: self.max_ttl,
                cooldown: self.cooldown,
                max_stale: self.max_stale,
                algorithms: self.algorithms,
                state: RwLock::new(State::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
                refresher: AtomicBool::new(false),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }

    #[test]
    fn builder_policies() {
        assert!(JwksCache::builder("not a url").build().is_err());
        assert!(
            JwksCache::builder("http://idp.example/jwks")
                .build()
                .is_err()
        );
        assert!(
            JwksCache::builder("http://idp.example/jwks")
                .allow_http()
                .build()
                .is_ok()
        );
        assert!(
            JwksCache::builder("http://127.0.0.1:1/jwks")
                .build()
                .is_ok()
        );
        assert!(
            JwksCache::builder("https://idp.example/jwks")
                .algorithms([Algorithm::HS256])
                .build()
                .is_err()
        );
        assert!(JwksCache::discover("https://idp.example").build().is_ok());
    }
}
