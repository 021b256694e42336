//! Fetches in tasks the cache owns, and the background refresher.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError, TryLockError, Weak};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::Notify;

use super::*;
use crate::error::AuthError;
use crate::flight::Flight;
use crate::http as fetch;
use crate::key::{KeySet, parse_jwk_set};

/// Clears the refresher flag when the refresher task is dropped (its
/// runtime shut down), so the next request starts another.
pub(super) struct RefresherAlive(pub(super) Weak<Shared>);

impl Drop for RefresherAlive {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.refresher.store(false, Ordering::Release);
        }
    }
}

/// When the refresher should next fetch.
pub(super) enum Due {
    Now,
    At(Instant),
    Never,
}

/// Refreshes at 80% of the keys' freshness, and retries with backoff after
/// failures, until every handle to the cache is gone. Requests do not
/// depend on it: they refetch expired keys themselves.
pub(super) async fn refresh_loop(alive: RefresherAlive, wake: Arc<Notify>) {
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
                    _ = done.wait() => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// The refresher's delay after `failures` failed fetches: 1 s, doubling,
/// at most 60 s. Requests never wait for it.
pub(super) fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << (failures - 1).min(6)).min(Duration::from_secs(60))
}

/// A successful fetch.
pub(super) struct Fetch {
    keys: KeySet,
    skipped: Vec<String>,
    fresh_for: Option<Duration>,
    url: Url,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn usable_snapshot(&self, now: Instant) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full().filter(|s| s.usable(now))
    }

    /// Whether `snapshot` may verify now without waiting: usable, and fresh,
    /// or refreshed by a fetch that started before it expired and is still
    /// running, or the provider is failing. Starts a refresh when expired
    /// keys serve during an outage.
    pub(super) fn servable(self: &Arc<Self>, snapshot: &Snapshot, now: Instant) -> bool {
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
    pub(super) fn revalidating(&self, snapshot: &Snapshot, now: Instant) -> bool {
        let deadline = self.fetch_deadline.load(Ordering::Acquire);
        let start = self.fetch_start.load(Ordering::Acquire);
        deadline != 0
            && self.nanos(Some(now)) < deadline
            && start <= self.nanos(snapshot.fresh_until)
    }

    pub(super) fn nanos(&self, at: Option<Instant>) -> u64 {
        match at {
            Some(t) => u64::try_from(t.saturating_duration_since(self.epoch).as_nanos())
                .unwrap_or(u64::MAX),
            None => u64::MAX,
        }
    }

    /// The longest one fetch may take: the timeout per request, for the
    /// discovery documents and the key set.
    pub(super) fn fetch_cap(&self) -> Duration {
        match self.source {
            Source::Jwks(_) => self.limits.timeout,
            Source::Issuer(_) => self.limits.timeout.saturating_mul(3),
        }
    }

    /// What a request gets when no (further) fetch helps: the usable keys
    /// (the verifier then says `kid` unknown), or why there are none.
    pub(super) fn answer(
        &self,
        snapshot: Option<Arc<Snapshot>>,
        state: &State,
    ) -> Result<Arc<Snapshot>, AuthError> {
        snapshot.ok_or_else(|| {
            AuthError::KeysUnavailable(
                match (&state.last_error, state.last_success) {
                    (Some(e), _) => e.clone(),
                    (None, Some(_)) => format!(
                        "the cached keys are older than max_stale ({:?})",
                        self.max_stale
                    ),
                    (None, None) => "the key set could not be fetched yet".into(),
                }
                .into(),
            )
        })
    }

    /// The fetch in flight, or a new one, started in a task of its own as
    /// soon as the refetch interval allows (`force`: now) if that is no
    /// later than `latest`. `None` when no fetch starts in time, or outside
    /// a tokio runtime. Called with the state locked.
    pub(super) fn schedule(
        self: &Arc<Self>,
        state: &mut State,
        latest: Option<Instant>,
        force: bool,
    ) -> Option<Flight<Outcome>> {
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
        state.next_id += 1;
        let id = state.next_id;
        let deadline = start
            .checked_add(self.fetch_cap())
            .and_then(|t| t.checked_add(LOST_SLACK));
        let abandon = Abandon {
            shared: self.clone(),
            id,
            armed: true,
        };
        let done = Flight::spawn(&handle, fetch_task(abandon, start));
        state.inflight = Some(Inflight {
            id,
            start,
            deadline,
            done: done.clone(),
        });
        self.fetch_start
            .store(self.nanos(Some(start)), Ordering::Release);
        self.fetch_deadline
            .store(self.nanos(deadline).max(1), Ordering::Release);
        Some(done)
    }

    /// When the refresher should fetch next.
    pub(super) fn refresh_due(&self) -> Due {
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
    pub(super) fn store(
        &self,
        id: u64,
        started: Instant,
        result: Result<Fetch, String>,
    ) -> Outcome {
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
                // Once per member: a key set that always carries a member
                // we skip (Keycloak publishes its `use: enc` key next to the
                // signing keys) warns when it first appears, then only at
                // debug level on every refresh.
                for member in &fetch.skipped {
                    if state.skipped.contains(member) {
                        tracing::debug!(jwks_url = %redact_url(fetch.url.as_str()), %member, "skipped a JWKS member");
                    } else {
                        tracing::warn!(jwks_url = %redact_url(fetch.url.as_str()), %member, "skipped a JWKS member");
                    }
                }
                let count = fetch.keys.len();
                tracing::debug!(jwks_url = %redact_url(fetch.url.as_str()), keys = count, elapsed_ms, "fetched JWKS");
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
                state.last_success = Some(self.clock.now());
                state.skipped = fetch.skipped;
                state.jwks_url = Some(fetch.url);
                Ok(count)
            }
            Err(error) => {
                // Every fetch error is logged, kept and answered without
                // the URL's password.
                let error = redact_url(&error).into_owned();
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

    pub(super) async fn fetch(&self) -> Result<Fetch, String> {
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
pub(super) struct Abandon {
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

/// One fetch, in a task owned by the cache (a [`Flight`]): waits for its
/// start, fetches (bounded by [`Shared::fetch_cap`]), stores, then its
/// outcome goes to the waiters.
pub(super) async fn fetch_task(mut abandon: Abandon, start: Instant) -> Outcome {
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
    outcome
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
}
