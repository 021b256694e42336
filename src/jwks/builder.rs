//! [`JwksCacheBuilder`].

use std::fmt;
use std::hash::RandomState;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use reqwest::{Client, Url};
use tokio::sync::Notify;

use super::*;
use crate::algorithm::Algorithm;
use crate::clock::{Clock, SystemClock};
use crate::error::BuildError;
use crate::http::{self as fetch, Limits};

/// Builds a [`JwksCache`]. See [`JwksCache::builder`] and [`JwksCache::discover`].
#[must_use]
pub struct JwksCacheBuilder {
    source: Result<Source, String>,
    client: Option<Client>,
    limits: Limits,
    ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    interval: Duration,
    max_stale: Duration,
    algorithms: Vec<Algorithm>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JwksCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCacheBuilder")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl JwksCacheBuilder {
    pub(super) fn new(source: Result<Source, String>) -> Self {
        JwksCacheBuilder {
            source,
            client: None,
            limits: Limits {
                timeout: DEFAULT_TIMEOUT,
                max_body: DEFAULT_MAX_BODY,
                allow_http: false,
            },
            ttl: DEFAULT_TTL,
            min_ttl: DEFAULT_MAX_AGE_FLOOR,
            max_ttl: DEFAULT_MAX_AGE_CEILING,
            interval: DEFAULT_MIN_REFETCH_INTERVAL,
            max_stale: DEFAULT_MAX_STALE,
            algorithms: vec![Algorithm::RS256],
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock [`JwksStatus::last_success`] reads (default the system
    /// clock): give it the verifier's
    /// ([`VerifierBuilder::clock`](crate::VerifierBuilder::clock)), so that
    /// a test that moves time sees it here too. Freshness, the refetch
    /// rate limit and timeouts run on the monotonic clock, never on this.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_jwt_auth::jwks::JwksCache;
    ///
    /// let keys = JwksCache::builder("https://login.example.com/jwks.json")
    ///     .clock(|| UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    ///     .build()?;
    /// # let _ = keys;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The algorithms accepted from this key set (default: RS256 only).
    ///
    /// A JWK naming another `alg` is skipped. A JWK without `alg` is bound
    /// only to those of these algorithms that fit its key type (an RSA key
    /// without `alg`, with `[RS256, ES256]` allowed, verifies RS256 only:
    /// never PS256 or RS512), and a verifier narrowed with
    /// [`VerifierBuilder::algorithms`](crate::VerifierBuilder::algorithms)
    /// narrows it further.
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

    /// Timeout for one HTTP request: connect, headers and body (default
    /// 5 s; must not be zero). It is also the longest a token waits for
    /// keys being fetched.
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

    /// How long keys stay fresh when the answer's caching headers give no
    /// freshness (default 10 minutes). They are refreshed in the
    /// background at 80% of that time, and refetched before use by the
    /// first request after it if the background task is not running.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Bounds on the freshness the provider's `Cache-Control` gives
    /// (default 5 s to 24 hours). That freshness is `max-age` minus the
    /// answer's `Age` (RFC 9111); `no-store`, `no-cache`, an invalid or a
    /// conflicting `max-age` make it zero, so the floor applies. The floor
    /// bounds how often a provider can make every instance refetch.
    pub fn max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }

    /// Minimum time between the starts of two fetches of the key set,
    /// whatever causes them (an unknown `kid`, no keys yet, expired keys,
    /// the background refresh); [`JwksCache::prefetch`] is not limited
    /// (default 1 s). A token with an unknown `kid` waits for the next
    /// fetch, so a new key the provider published is accepted within this
    /// interval plus one fetch, whatever other tokens arrive. Zero removes
    /// the limit (still one fetch at a time).
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// No key set older than this is used (default 24 hours): while the
    /// provider fails, the last good keys keep serving until they are this
    /// old, then tokens are answered `unavailable` (503).
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Builds the cache. Nothing is fetched yet.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for a URL that is not one, plain HTTP
    /// to a non-loopback host without [`allow_http`](Self::allow_http), no
    /// algorithms or HMAC algorithms, a zero `timeout`, or `max_age_bounds`
    /// whose floor is over its ceiling. Any other `Duration` is accepted
    /// (times beyond the clock's range mean "never").
    pub fn build(self) -> Result<JwksCache, BuildError> {
        let source = self.source.map_err(|e| BuildError::config("url", e))?;
        let url = match &source {
            Source::Jwks(url) => url.clone(),
            Source::Issuer(issuer) => {
                Url::parse(issuer).map_err(|e| BuildError::config("url", e.to_string()))?
            }
        };
        fetch::check_url(&url, self.limits.allow_http).map_err(|e| BuildError::config("url", e))?;
        if self.algorithms.is_empty() {
            return Err(BuildError::config(
                "algorithms",
                "no algorithms allowed for the key set",
            ));
        }
        if let Some(alg) = self
            .algorithms
            .iter()
            .find(|a| a.family() == crate::algorithm::Family::Hmac)
        {
            return Err(BuildError::config(
                "algorithms",
                format!(
                    "{alg} keys are never taken from a JWKS (a shared secret must not be published)"
                ),
            ));
        }
        if self.min_ttl > self.max_ttl {
            return Err(BuildError::config(
                "max_age_bounds",
                format!(
                    "JwksCacheBuilder::max_age_bounds: the floor {:?} is over the ceiling {:?}",
                    self.min_ttl, self.max_ttl
                ),
            ));
        }
        self.limits.check("JwksCacheBuilder")?;
        let client = match self.client {
            Some(c) => c,
            None => fetch::default_client(self.limits.timeout)
                .map_err(|e| BuildError::config("client", e))?,
        };
        Ok(JwksCache {
            shared: Arc::new(Shared {
                source,
                client,
                limits: self.limits,
                ttl: self.ttl,
                min_ttl: self.min_ttl,
                max_ttl: self.max_ttl,
                interval: self.interval,
                max_stale: self.max_stale,
                algorithms: self.algorithms,
                snapshot: ArcSwapOption::empty(),
                failing: AtomicBool::new(false),
                fetch_deadline: AtomicU64::new(0),
                fetch_start: AtomicU64::new(0),
                epoch: Instant::now(),
                gets: AtomicU64::new(0),
                state: Mutex::new(State::default()),
                refresher: AtomicBool::new(false),
                wake: Arc::new(Notify::new()),
                hasher: RandomState::new(),
                clock: self.clock,
            }),
        })
    }
}
