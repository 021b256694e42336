//! Remote keys: a JWKS fetched over HTTPS (directly or by OIDC discovery),
//! cached as one immutable key set, kept fresh as the provider's caching
//! headers say, and kept through provider outages (feature `jwks`).
//!
//! The request path for a cached `kid` loads one snapshot through
//! `arc-swap` (no lock, no I/O) and checks its freshness. Everything else
//! happens in fetches that run in tasks owned by the cache, never in a
//! request's future:
//!
//! - at most one fetch runs at a time, and fetches start at least
//!   [`min_refetch_interval`](JwksCacheBuilder::min_refetch_interval) apart
//!   (default 1 s), whatever causes them: an unknown `kid`, a cold cache,
//!   expired keys or the background refresh ([`JwksCache::prefetch`] excepted);
//! - a request that needs a fetch (an unknown `kid`, no keys yet or none
//!   since a start-up outage, expired keys) waits for the next one, at most the fetch
//!   [`timeout`](JwksCacheBuilder::timeout); dropping the request (a client
//!   gone, a deadline) only stops its wait;
//! - a `kid` the last key set lacked is answered at once until the next
//!   fetch may start (per-`kid` negative caching), so a flood of unknown
//!   `kid`s costs one fetch per interval and delays a genuinely new `kid`
//!   by at most that interval;
//! - freshness is enforced on the request path too: expired keys are
//!   refetched before use, and no key set older than
//!   [`max_stale`](JwksCacheBuilder::max_stale) is used, whether or not the
//!   background refresher is running.
//!
#![doc = include_str!("../docs/jwks.md")]

mod builder;
mod fetching;
mod status;

pub use builder::JwksCacheBuilder;
use fetching::{RefresherAlive, refresh_loop};
pub use status::JwksStatus;

use std::collections::HashMap;

use crate::text::redact_url;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use reqwest::{Client, Url};
use tokio::sync::Notify;

use crate::algorithm::Algorithm;
use crate::error::AuthError;
use crate::http::Limits;
use crate::key::KeySet;
use crate::store::PerformanceCache;

/// Default time a fetched key set stays fresh when its caching headers say
/// nothing.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default minimum time between the starts of two key-set fetches.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// Default age after which a key set is no longer used, even while the
/// provider fails.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// Default fetch timeout (connect, headers and body together).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default limit on a JWKS or discovery document.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Default floor on the freshness `Cache-Control` gives.
const DEFAULT_MAX_AGE_FLOOR: Duration = Duration::from_secs(5);
/// Default ceiling on the freshness `Cache-Control` gives.
const DEFAULT_MAX_AGE_CEILING: Duration = Duration::from_secs(24 * 3600);
/// Most `kid`s remembered as absent from the key set. Performance cache:
/// may forget; forgetting costs only a refetch, within the refetch rate
/// limit (when full, expired entries go, then all; a new one is always
/// kept: `absent_kids_are_bounded_and_expire`).
const MAX_ABSENT: usize = 4096;
/// How long past its deadline a fetch is given before it is taken for lost
/// (its runtime no longer drives it) and replaced.
const LOST_SLACK: Duration = Duration::from_secs(1);

#[derive(Clone)]
enum Source {
    Jwks(Url),
    Issuer(String),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL without its password.
        let (name, url) = match self {
            Source::Jwks(url) => ("Jwks", url.as_str()),
            Source::Issuer(issuer) => ("Issuer", issuer.as_str()),
        };
        f.debug_tuple(name)
            .field(&crate::text::redact_url(url))
            .finish()
    }
}

/// A cached remote JSON Web Key Set. Cheap to clone; clones share the cache.
///
/// Build it from a JWKS URL or from an issuer URL (OIDC discovery), then
/// hand it to [`VerifierBuilder::jwks_cache`](crate::VerifierBuilder::jwks_cache).
/// Nothing is fetched until the first token arrives (or [`prefetch`](JwksCache::prefetch)).
///
/// A token without `kid` is verified only when exactly one key of the set
/// fits its algorithm (jose's rule); when several do, it is refused with
/// [`AuthError::AmbiguousKey`].
///
/// ```no_run
/// use tower_jwt_auth::{JwtAuthLayer, Verifier};
/// use tower_jwt_auth::jwks::JwksCache;
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
    interval: Duration,
    max_stale: Duration,
    algorithms: Vec<Algorithm>,
    /// The keys requests use; each successful fetch swaps in a new one.
    snapshot: ArcSwapOption<Snapshot>,
    /// The last fetch failed: known keys past their freshness serve (up to
    /// `max_stale`) without waiting for the provider.
    failing: AtomicBool,
    /// Until when the fetch in flight may run, in nanoseconds since `epoch`
    /// (0: none; `u64::MAX`: no limit). Lets the request path see a
    /// running fetch without the lock.
    fetch_deadline: AtomicU64,
    /// When the fetch in flight starts, in nanoseconds since `epoch`.
    fetch_start: AtomicU64,
    epoch: Instant,
    /// Key-set GETs sent (discovery documents not counted).
    gets: AtomicU64,
    state: Mutex<State>,
    /// A background refresher task is alive (cleared when its runtime drops it).
    refresher: AtomicBool,
    /// Wakes the refresher when a fetch ends, or when the cache is dropped.
    wake: Arc<Notify>,
    hasher: RandomState,
    /// The wall clock of [`JwksStatus::last_success`].
    clock: Arc<dyn crate::clock::Clock>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The refresher sees the cache gone and ends.
        self.wake.notify_one();
    }
}

/// One fetched key set and its times.
pub(crate) struct Snapshot {
    keys: KeySet,
    /// When the fetch that got these keys started.
    started: Instant,
    fetched: Instant,
    fresh_for: Duration,
    /// `None`: never (the freshness overflows the clock).
    fresh_until: Option<Instant>,
    usable_until: Option<Instant>,
}

impl Snapshot {
    pub(crate) fn keys(&self) -> &KeySet {
        &self.keys
    }

    fn fresh(&self, now: Instant) -> bool {
        self.fresh_until.is_none_or(|t| now < t)
    }

    fn usable(&self, now: Instant) -> bool {
        self.usable_until.is_none_or(|t| now < t)
    }
}

/// What a fetch ended with: the key count, or why it failed.
type Outcome = Result<usize, String>;

struct State {
    inflight: Option<Inflight>,
    next_id: u64,
    /// When the last fetch started (the rate limit counts from it).
    last_start: Option<Instant>,
    failures: u32,
    last_error: Option<String>,
    last_success: Option<SystemTime>,
    skipped: Vec<String>,
    jwks_url: Option<Url>,
    /// `kid`s (hashed with `Shared::hasher`) the key set lacked, with the
    /// start of the fetch that got that key set.
    absent: PerformanceCache<HashMap<u64, Instant>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            inflight: None,
            next_id: 0,
            last_start: None,
            failures: 0,
            last_error: None,
            last_success: None,
            skipped: Vec::new(),
            jwks_url: None,
            absent: PerformanceCache::may_forget(
                HashMap::new(),
                "a refetch, within the refetch rate limit",
            ),
        }
    }
}

/// A fetch scheduled or running in a task of its own.
struct Inflight {
    id: u64,
    /// When it starts (it may wait for the rate limit).
    start: Instant,
    /// When it may be taken for lost (`None`: never).
    deadline: Option<Instant>,
    done: crate::flight::Flight<Outcome>,
}

impl State {
    /// The fetch in flight, unless its task is gone (dropped with its
    /// runtime) or overdue (its runtime no longer drives it).
    fn inflight_alive(&self, now: Instant) -> Option<&Inflight> {
        self.inflight
            .as_ref()
            .filter(|f| f.deadline.is_none_or(|d| now < d) && f.done.running())
    }

    /// Whether the key set fetched less than `interval` ago lacked `kid`.
    fn recently_absent(&self, key: u64, now: Instant, interval: Duration) -> bool {
        self.absent
            .get(&key)
            .is_some_and(|t| t.checked_add(interval).is_none_or(|end| now < end))
    }

    fn note_absent(&mut self, key: u64, fetch_started: Instant, now: Instant, interval: Duration) {
        if self.absent.len() >= MAX_ABSENT {
            self.absent
                .retain(|_, t| t.checked_add(interval).is_none_or(|end| now < end));
            if self.absent.len() >= MAX_ABSENT {
                self.absent.clear();
            }
        }
        self.absent.insert(key, fetch_started);
    }
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

impl JwksCache {
    /// A cache of the key set at `jwks_url`.
    pub fn builder(jwks_url: &str) -> JwksCacheBuilder {
        JwksCacheBuilder::new(
            Url::parse(jwks_url)
                .map(Source::Jwks)
                .map_err(|e| format!("{:?} is not a URL: {e}", redact_url(jwks_url))),
        )
    }

    /// A cache of the key set of `issuer`, found by OpenID Connect discovery
    /// (`{issuer}/.well-known/openid-configuration`, then, only if that
    /// answers 404, RFC 8414 metadata). The document's `issuer` must equal
    /// `issuer` exactly. A multi-tenant template (`{tenantid}` in `issuer`,
    /// see [`VerifierBuilder::issuer`](crate::VerifierBuilder::issuer)) is
    /// discovered from its `common` tenant, whose document Entra ID
    /// publishes with the template as its `issuer`.
    pub fn discover(issuer: &str) -> JwksCacheBuilder {
        JwksCacheBuilder::new(
            Url::parse(issuer)
                .map(|_| Source::Issuer(issuer.to_owned()))
                .map_err(|e| format!("{:?} is not a URL: {e}", redact_url(issuer))),
        )
    }

    /// Fetches the key set now and waits for it: a fetch that starts after
    /// this call, whatever the refetch interval (a fetch already running
    /// is waited for first).
    ///
    /// # Errors
    /// [`AuthError::KeysUnavailable`] with the reason the fetch failed, or
    /// when called outside a tokio runtime.
    pub async fn prefetch(&self) -> Result<usize, AuthError> {
        self.ensure_refresher();
        let shared = &self.shared;
        let called = Instant::now();
        for _ in 0..4 {
            let (mut done, deadline, ours) = {
                let mut state = shared.lock();
                let now = Instant::now();
                match state.inflight_alive(now) {
                    Some(f) => (f.done.clone(), f.deadline, f.start >= called),
                    None => match shared.schedule(&mut state, None, true) {
                        Some(done) => (done, None, true),
                        None => {
                            return Err(AuthError::KeysUnavailable(
                                "JwksCache::prefetch must run inside a tokio runtime".into(),
                            ));
                        }
                    },
                }
            };
            let outcome = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), done.wait())
                    .await
                    .ok()
                    .flatten(),
                None => done.wait().await,
            };
            match outcome {
                Some(outcome) if ours => {
                    return outcome.map_err(|why| AuthError::KeysUnavailable(why.into()));
                }
                // Another caller's fetch (or one whose runtime stopped): ours next.
                _ => continue,
            }
        }
        Err(AuthError::KeysUnavailable(
            "the key set fetch was interrupted repeatedly (is its runtime shutting down?)".into(),
        ))
    }

    /// The cache's state, for readiness probes and diagnostics.
    pub fn status(&self) -> JwksStatus {
        let shared = &self.shared;
        let snapshot = shared.snapshot.load_full();
        let state = shared.lock();
        JwksStatus {
            last_success: state.last_success,
            key_count: snapshot.as_ref().map_or(0, |s| s.keys.len()),
            last_error: state.last_error.clone(),
            consecutive_failures: state.failures,
            fetches: shared.gets.load(Ordering::Relaxed),
            skipped: state.skipped.clone(),
            usable: snapshot.is_some_and(|s| s.usable(Instant::now())),
        }
    }

    pub(crate) fn algorithms(&self) -> &[Algorithm] {
        &self.shared.algorithms
    }

    /// Runs `f` on the keys at hand if they may be used now without a
    /// fetch: `None` when they are missing, older than the maximum stale
    /// age, or expired with nobody refreshing them.
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&KeySet) -> R) -> Option<R> {
        let guard = self.shared.snapshot.load();
        let snapshot = guard.as_deref()?;
        self.shared
            .servable(snapshot, Instant::now())
            .then(|| f(&snapshot.keys))
    }

    /// Runs `f` on the cached keys if they can verify a token with this
    /// `kid` and `alg` now; `None` when a fetch is needed first. The hot
    /// path: one `arc-swap` load, no lock, no allocation.
    pub(crate) fn with_cached<R>(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        f: impl FnOnce(&KeySet) -> R,
    ) -> Option<R> {
        self.ensure_refresher();
        let guard = self.shared.snapshot.load();
        let snapshot = guard.as_deref()?;
        if !snapshot.keys.has(kid, alg) || !self.shared.servable(snapshot, Instant::now()) {
            return None;
        }
        Some(f(&snapshot.keys))
    }

    /// The keys to verify a token with this `kid` and `alg`, fetched first
    /// when needed (see the module docs). Waits at most the fetch timeout;
    /// dropping the future only ends the wait, never the fetch.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<Snapshot>, AuthError> {
        self.ensure_refresher();
        let shared = &self.shared;
        let deadline = Instant::now().checked_add(shared.limits.timeout);
        let absent_key = shared
            .hasher
            .hash_one((kid, kid.is_none().then_some(alg.as_str())));
        for _ in 0..3 {
            let mut done = {
                let mut state = shared.lock();
                let now = Instant::now();
                let snapshot = shared.usable_snapshot(now);
                match &snapshot {
                    Some(s) if s.keys.has(kid, alg) => {
                        if s.fresh(now) {
                            return Ok(s.clone());
                        }
                        let revalidating = state
                            .inflight_alive(now)
                            .is_some_and(|f| s.fresh_until.is_none_or(|expiry| f.start <= expiry));
                        if state.failures > 0 || revalidating {
                            // Refreshed in time, or the provider is failing:
                            // the stale keys serve meanwhile.
                            let _ = shared.schedule(&mut state, None, false);
                            return Ok(s.clone());
                        }
                        // Expired and nobody refreshing: refresh and wait.
                    }
                    Some(s) if state.recently_absent(absent_key, now, shared.interval) => {
                        return Ok(s.clone());
                    }
                    _ => {}
                }
                if state.failures > 0 && snapshot.is_some() {
                    // Usable keys without this `kid` while the provider
                    // fails: answer now (a flood of unknown kids makes no
                    // request wait); the next fetch starts as soon as the
                    // rate limit allows.
                    let _ = shared.schedule(&mut state, None, false);
                    return shared.answer(snapshot, &state);
                }
                // No usable key set at all (even after failed fetches: the
                // provider may be back), or a new `kid`: wait for the fetch
                // in flight or one the rate limit lets start before the
                // deadline.
                match shared.schedule(&mut state, deadline, false) {
                    Some(done) => done,
                    None => {
                        if state.failures > 0 {
                            let _ = shared.schedule(&mut state, None, false);
                        }
                        return shared.answer(snapshot, &state);
                    }
                }
            };
            let finished = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), done.wait())
                    .await
                    .map_err(|_| ()),
                None => Ok(done.wait().await),
            };
            match finished {
                // The fetch task was dropped (its runtime ended): again.
                Ok(None) => continue,
                Ok(Some(_)) => {
                    let now = Instant::now();
                    let mut state = shared.lock();
                    let snapshot = shared.usable_snapshot(now);
                    if let Some(s) = &snapshot
                        && !s.keys.has(kid, alg)
                    {
                        state.note_absent(absent_key, s.started, now, shared.interval);
                    }
                    return shared.answer(snapshot, &state);
                }
                Err(()) => break,
            }
        }
        let state = shared.lock();
        shared.answer(shared.usable_snapshot(Instant::now()), &state)
    }

    /// Starts the background refresher, if none is alive and a tokio
    /// runtime is running. A refresher whose runtime was dropped is replaced.
    fn ensure_refresher(&self) {
        if self.shared.refresher.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.shared.refresher.swap(true, Ordering::AcqRel) {
            return;
        }
        // The guard is made here, not in the task: a task its runtime drops
        // before polling it still clears the flag.
        let alive = RefresherAlive(Arc::downgrade(&self.shared));
        handle.spawn(refresh_loop(alive, self.shared.wake.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bad_durations_name_the_setting() {
        let err = JwksCache::builder("https://idp.example/jwks")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
        let err = JwksCache::builder("https://idp.example/jwks")
            .max_age_bounds(Duration::MAX, Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_age_bounds"), "{err}");
        assert!(
            JwksCache::builder("https://idp.example/jwks")
                .timeout(Duration::MAX)
                .ttl(Duration::MAX)
                .max_stale(Duration::MAX)
                .min_refetch_interval(Duration::MAX)
                .max_age_bounds(Duration::MAX, Duration::MAX)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn absent_kids_are_bounded_and_expire() {
        let mut state = State::default();
        let now = Instant::now();
        let second = Duration::from_secs(1);
        for key in 0..(MAX_ABSENT as u64 * 2) {
            state.note_absent(key, now, now, second);
        }
        assert!(state.absent.len() <= MAX_ABSENT);
        let last = MAX_ABSENT as u64 * 2 - 1;
        assert!(state.recently_absent(last, now, second));
        assert!(!state.recently_absent(last, now + second, second));
        assert!(state.recently_absent(last, now + second, Duration::MAX));
    }
}
