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
//! - a request that needs a fetch (an unknown `kid`, no keys yet, expired
//!   keys) waits for the next one, at most the fetch
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

mod fetch;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use reqwest::{Client, Url};
use tokio::sync::{Notify, watch};

use crate::algorithm::Algorithm;
use crate::error::{AuthError, BuildError};
use crate::key::{KeySet, parse_jwk_set};
use fetch::Limits;

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
/// Most `kid`s remembered as absent from the key set.
const MAX_ABSENT: usize = 4096;
/// How long past its deadline a fetch is given before it is taken for lost
/// (its runtime no longer drives it) and replaced.
const LOST_SLACK: Duration = Duration::from_secs(1);

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
/// A token without `kid` is verified only when exactly one key of the set
/// fits its algorithm (jose's rule); when several do, it is refused with
/// [`AuthError::AmbiguousKey`].
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

#[derive(Default)]
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
    absent: HashMap<u64, Instant>,
}

/// A fetch scheduled or running in a task of its own.
struct Inflight {
    id: u64,
    /// When it starts (it may wait for the rate limit).
    start: Instant,
    /// When it may be taken for lost (`None`: never).
    deadline: Option<Instant>,
    done: watch::Receiver<Option<Outcome>>,
}

impl State {
    /// The fetch in flight, unless its task is gone (dropped with its
    /// runtime) or overdue (its runtime no longer drives it).
    fn inflight_alive(&self, now: Instant) -> Option<&Inflight> {
        self.inflight
            .as_ref()
            .filter(|f| f.deadline.is_none_or(|d| now < d) && f.done.has_changed().is_ok())
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
    /// Requests sent to the key-set URL so far, whatever became of them
    /// (discovery documents are not counted).
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
    interval: Duration,
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
    /// (`{issuer}/.well-known/openid-configuration`, then, only if that
    /// answers 404, RFC 8414 metadata). The document's `issuer` must equal
    /// `issuer` exactly.
    pub fn discover(issuer: &str) -> JwksCacheBuilder {
        JwksCacheBuilder::new(
            Url::parse(issuer)
                .map(|_| Source::Issuer(issuer.to_owned()))
                .map_err(|e| format!("{issuer:?} is not a URL: {e}")),
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
                Some(d) => tokio::time::timeout_at(d.into(), wait(&mut done))
                    .await
                    .ok()
                    .flatten(),
                None => wait(&mut done).await,
            };
            match outcome {
                Some(outcome) if ours => return outcome.map_err(AuthError::KeysUnavailable),
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
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
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
                if state.failures > 0 {
                    // The provider failed at the last fetch: answer now; the
                    // next fetch starts as soon as the rate limit allows.
                    let _ = shared.schedule(&mut state, None, false);
                    return shared.answer(snapshot, &state);
                }
                match shared.schedule(&mut state, deadline, false) {
                    Some(done) => done,
                    None => return shared.answer(snapshot, &state),
                }
            };
            let finished = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), wait(&mut done))
                    .await
                    .map_err(|_| ()),
                None => Ok(wait(&mut done).await),
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

/// Waits for a fetch's outcome; `None` if its task was dropped.
async fn wait(done: &mut watch::Receiver<Option<Outcome>>) -> Option<Outcome> {
    done.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|outcome| outcome.clone())
}

/// Clears the refresher flag when the refresher task is dropped (its
/// runtime shut down), so the next request starts another.
struct RefresherAlive(Weak<Shared>);

impl Drop for RefresherAlive {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.refresher.store(false, Ordering::Release);
        }
    }
}

/// When the refresher should next fetch.
enum Due {
    Now,
    At(Instant),
    Never,
}

/// Refreshes at 80% of the keys' freshness, and retries with backoff after
/// failures, until every handle to the cache is gone. Requests do not
/// depend on it: they refetch expired keys themselves.
async fn refresh_loop(alive: RefresherAlive, wake: Arc<Notify>) {
    let weak = alive.0.clone();
    let _alive = alive;
    loop {
        let due = match weak.upgrade() {
            Some(shared) => shared.refresh_due(),
            None => return,
        };
        match due {
            Due::Now => {}
            Due::At(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = wake.notified() => continue,
                }
            }
            Due::Never => {
                wake.notified().await;
                continue;
            }
        }
        let done = {
            let Some(shared) = weak.upgrade() else { return };
            let mut state = shared.lock();
            shared.schedule(&mut state, None, false)
        };
        match done {
            Some(mut done) => {
                tokio::select! {
                    _ = wait(&mut done) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// The refresher's delay after `failures` failed fetches: 1 s, doubling,
/// at most 60 s. Requests never wait for it.
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << (failures - 1).min(6)).min(Duration::from_secs(60))
}

/// A successful fetch.
struct Fetch {
    keys: KeySet,
    skipped: Vec<String>,
    fresh_for: Option<Duration>,
    url: Url,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn usable_snapshot(&self, now: Instant) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full().filter(|s| s.usable(now))
    }

    /// Whether `snapshot` may verify now without waiting: usable, and fresh,
    /// or refreshed by a fetch that started before it expired and is still
    /// running, or the provider is failing. Starts a refresh when expired
    /// keys serve during an outage.
    fn servable(self: &Arc<Self>, snapshot: &Snapshot, now: Instant) -> bool {
        if !snapshot.usable(now) {
            return false;
        }
        if snapshot.fresh(now) || self.revalidating(snapshot, now) {
            return true;
        }
        if !self.failing.load(Ordering::Acquire) {
            // Expired, nobody refreshing: the request fetches and waits.
            return false;
        }
        // Failing provider: serve the stale keys, try again when allowed.
        let state = match self.state.try_lock() {
            Ok(state) => Some(state),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(mut state) = state {
            let _ = self.schedule(&mut state, None, false);
        }
        true
    }

    /// Whether a fetch that started before `snapshot` expired is running
    /// (and not lost): expired keys then serve until it ends, at most one
    /// fetch timeout longer. Keys that expired with no fetch under way are
    /// refetched before use.
    fn revalidating(&self, snapshot: &Snapshot, now: Instant) -> bool {
        let deadline = self.fetch_deadline.load(Ordering::Acquire);
        let start = self.fetch_start.load(Ordering::Acquire);
        deadline != 0
            && self.nanos(Some(now)) < deadline
            && start <= self.nanos(snapshot.fresh_until)
    }

    fn nanos(&self, at: Option<Instant>) -> u64 {
        match at {
            Some(t) => u64::try_from(t.saturating_duration_since(self.epoch).as_nanos())
                .unwrap_or(u64::MAX),
            None => u64::MAX,
        }
    }

    /// The longest one fetch may take: the timeout per request, for the
    /// discovery documents and the key set.
    fn fetch_cap(&self) -> Duration {
        match self.source {
            Source::Jwks(_) => self.limits.timeout,
            Source::Issuer(_) => self.limits.timeout.saturating_mul(3),
        }
    }

    /// What a request gets when no (further) fetch helps: the usable keys
    /// (the verifier then says `kid` unknown), or why there are none.
    fn answer(
        &self,
        snapshot: Option<Arc<Snapshot>>,
        state: &State,
    ) -> Result<Arc<Snapshot>, AuthError> {
        snapshot.ok_or_else(|| {
            AuthError::KeysUnavailable(match (&state.last_error, state.last_success) {
                (Some(e), _) => e.clone(),
                (None, Some(_)) => format!(
                    "the cached keys are older than max_stale ({:?})",
                    self.max_stale
                ),
                (None, None) => "the key set could not be fetched yet".into(),
            })
        })
    }

    /// The fetch in flight, or a new one, started in a task of its own as
    /// soon as the refetch interval allows (`force`: now) if that is no
    /// later than `latest`. `None` when no fetch starts in time, or outside
    /// a tokio runtime. Called with the state locked.
    fn schedule(
        self: &Arc<Self>,
        state: &mut State,
        latest: Option<Instant>,
        force: bool,
    ) -> Option<watch::Receiver<Option<Outcome>>> {
        let now = Instant::now();
        if let Some(f) = state.inflight_alive(now) {
            return Some(f.done.clone());
        }
        if state.inflight.take().is_some() {
            tracing::warn!(
                "a JWKS fetch did not end in time (its runtime stopped?); starting another"
            );
        }
        let start = match (force, state.last_start) {
            (false, Some(last)) => last.checked_add(self.interval)?.max(now),
            _ => now,
        };
        if latest.is_some_and(|latest| start > latest) {
            return None;
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = watch::channel(None);
        state.next_id += 1;
        let id = state.next_id;
        let deadline = start
            .checked_add(self.fetch_cap())
            .and_then(|t| t.checked_add(LOST_SLACK));
        state.inflight = Some(Inflight {
            id,
            start,
            deadline,
            done: rx.clone(),
        });
        self.fetch_start
            .store(self.nanos(Some(start)), Ordering::Release);
        self.fetch_deadline
            .store(self.nanos(deadline).max(1), Ordering::Release);
        let abandon = Abandon {
            shared: self.clone(),
            id,
            armed: true,
        };
        handle.spawn(fetch_task(abandon, start, tx));
        Some(rx)
    }

    /// When the refresher should fetch next.
    fn refresh_due(&self) -> Due {
        let state = self.lock();
        let now = Instant::now();
        let earliest = match state.last_start {
            Some(last) => match last.checked_add(self.interval) {
                Some(t) => t,
                None => return Due::Never,
            },
            None => now,
        };
        let due = if state.failures > 0 {
            state
                .last_start
                .and_then(|t| t.checked_add(backoff(state.failures)))
        } else {
            match self.snapshot.load().as_deref() {
                // At 80% of the time the keys may be used fresh.
                Some(s) => s
                    .fetched
                    .checked_add((s.fresh_for.min(self.max_stale) / 5).saturating_mul(4)),
                // Nothing fetched yet: the first request or prefetch fetches.
                None => return Due::Never,
            }
        };
        match due.map(|due| due.max(earliest)) {
            None => Due::Never,
            Some(due) if due <= now => Due::Now,
            Some(due) => Due::At(due),
        }
    }

    /// Stores what a fetch got, ends its flight and wakes the refresher.
    fn store(&self, id: u64, started: Instant, result: Result<Fetch, String>) -> Outcome {
        crate::observe::jwks_fetch(result.is_ok(), started);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let now = Instant::now();
        let mut state = self.lock();
        if state.inflight.as_ref().is_some_and(|f| f.id == id) {
            state.inflight = None;
            self.fetch_deadline.store(0, Ordering::Release);
        }
        let outcome = match result {
            Ok(fetch) => {
                for member in &fetch.skipped {
                    tracing::warn!(jwks_url = %fetch.url, %member, "skipped a JWKS member");
                }
                let count = fetch.keys.len();
                tracing::debug!(jwks_url = %fetch.url, keys = count, elapsed_ms, "fetched JWKS");
                let fresh_for = fetch
                    .fresh_for
                    .map_or(self.ttl, |d| d.clamp(self.min_ttl, self.max_ttl));
                self.snapshot.store(Some(Arc::new(Snapshot {
                    keys: fetch.keys,
                    started,
                    fetched: now,
                    fresh_for,
                    fresh_until: now.checked_add(fresh_for),
                    usable_until: now.checked_add(self.max_stale),
                })));
                self.failing.store(false, Ordering::Release);
                state.failures = 0;
                state.last_error = None;
                state.last_success = Some(SystemTime::now());
                state.skipped = fetch.skipped;
                state.jwks_url = Some(fetch.url);
                Ok(count)
            }
            Err(error) => {
                match self.usable_snapshot(now) {
                    Some(s) => tracing::warn!(
                        %error,
                        elapsed_ms,
                        serving_keys_fetched_secs_ago = now.saturating_duration_since(s.fetched).as_secs(),
                        "JWKS refresh failed; serving the last good keys"
                    ),
                    None => tracing::error!(
                        %error,
                        elapsed_ms,
                        "JWKS fetch failed and no usable keys are cached"
                    ),
                }
                self.failing.store(true, Ordering::Release);
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(error.clone());
                if matches!(self.source, Source::Issuer(_)) {
                    // Discover again next time: the jwks_uri may have moved.
                    state.jwks_url = None;
                }
                Err(error)
            }
        };
        drop(state);
        self.wake.notify_one();
        outcome
    }

    async fn fetch(&self) -> Result<Fetch, String> {
        let known_url = self.lock().jwks_url.clone();
        let url = match (&self.source, known_url) {
            (Source::Jwks(url), _) => url.clone(),
            (Source::Issuer(_), Some(url)) => url,
            (Source::Issuer(issuer), None) => {
                fetch::discover(&self.client, issuer, &self.limits).await?
            }
        };
        self.gets.fetch_add(1, Ordering::Relaxed);
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
        Ok(Fetch {
            keys: KeySet::remote(keys),
            skipped,
            fresh_for: fetched.fresh_for,
            url,
        })
    }
}

/// Ends a fetch's flight if its task is dropped before it finished (its
/// runtime shut down, maybe before ever polling it): waiters see the
/// channel closed and start another.
struct Abandon {
    shared: Arc<Shared>,
    id: u64,
    armed: bool,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.shared.lock();
        if state.inflight.as_ref().is_some_and(|f| f.id == self.id) {
            state.inflight = None;
            self.shared.fetch_deadline.store(0, Ordering::Release);
        }
    }
}

/// One fetch, in a task owned by the cache: waits for its start, fetches
/// (bounded by [`Shared::fetch_cap`]), stores, then tells the waiters.
async fn fetch_task(mut abandon: Abandon, start: Instant, done: watch::Sender<Option<Outcome>>) {
    let (shared, id) = (abandon.shared.clone(), abandon.id);
    tokio::time::sleep_until(start.into()).await;
    let started = Instant::now();
    shared.lock().last_start = Some(started);
    let cap = shared.fetch_cap();
    let result = tokio::time::timeout(cap, shared.fetch())
        .await
        .unwrap_or_else(|_| Err(format!("no key set within {cap:?}")));
    let outcome = shared.store(id, started, result);
    abandon.armed = false;
    let _ = done.send(Some(outcome));
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
            min_ttl: DEFAULT_MAX_AGE_FLOOR,
            max_ttl: DEFAULT_MAX_AGE_CEILING,
            interval: DEFAULT_MIN_REFETCH_INTERVAL,
            max_stale: DEFAULT_MAX_STALE,
            algorithms: vec![Algorithm::RS256],
        }
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
        if self.min_ttl > self.max_ttl {
            return Err(BuildError::InvalidConfig(format!(
                "JwksCacheBuilder::max_age_bounds: the floor {:?} is over the ceiling {:?}",
                self.min_ttl, self.max_ttl
            )));
        }
        if self.limits.timeout.is_zero() {
            return Err(BuildError::InvalidConfig(
                "JwksCacheBuilder::timeout is zero: no fetch could ever finish".into(),
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
