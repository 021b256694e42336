//! Shared stores behind the layer's steps: one Redis connection with its
//! limits, used by revocation (and by anything else that keeps state in
//! Redis), and the time-to-live bound every store applies.

#[cfg(feature = "redis")]
pub(crate) mod redis;

#[cfg(any(feature = "revocation", feature = "dpop"))]
use std::time::Duration;

/// The longest time-to-live a store keeps anything: longer settings
/// (`Duration::MAX` included) are treated as this, never a panic.
#[cfg(any(feature = "revocation", feature = "dpop"))]
pub(crate) const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A time-to-live no longer than [`MAX_TTL`].
#[cfg(any(feature = "revocation", feature = "dpop"))]
pub(crate) fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.min(MAX_TTL)
}

/// A cache that may forget any entry at any time: a hit saves work, a miss
/// redoes it, and nothing depends on an entry being there. The one
/// constructor says what forgetting costs, so that every performance cache
/// states it where it is made (the token cache, the header memo,
/// introspection answers, the Redis deny-list's local copy, the JWKS
/// absent-`kid` memo). Its opposite is a [`SecurityStore`].
pub(crate) struct PerformanceCache<C> {
    inner: C,
    forgetting_costs: &'static str,
}

impl<C> PerformanceCache<C> {
    /// Wraps `inner`, which may evict or expire entries as it likes;
    /// `forgetting_costs` is what a forgotten entry costs (shown in
    /// `Debug`).
    pub(crate) fn may_forget(inner: C, forgetting_costs: &'static str) -> Self {
        PerformanceCache {
            inner,
            forgetting_costs,
        }
    }
}

impl<C> std::fmt::Debug for PerformanceCache<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerformanceCache")
            .field("forgetting_costs", &self.forgetting_costs)
            .finish_non_exhaustive()
    }
}

impl<C> std::ops::Deref for PerformanceCache<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.inner
    }
}

impl<C> std::ops::DerefMut for PerformanceCache<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

/// A store whose entries are security decisions (a proof seen, a token
/// revoked): it never forgets an entry inside its window. When it cannot
/// keep one more it refuses ([`Full`]) rather than evict one: the caller
/// then refuses the request (or fails open, if the application said so).
/// Its opposite is a [`PerformanceCache`].
#[cfg(any(feature = "revocation", feature = "dpop"))]
pub(crate) trait SecurityStore {
    /// What entries are found by.
    type Key: ?Sized;
    /// What is kept, with its window.
    type Entry;

    /// Keeps `entry` under `key` for its window: `Ok(true)` when `key` was
    /// not held yet, `Ok(false)` when it was (the entry then merged with
    /// the one held, never shortening it), `Err` when there is no room.
    fn keep(&self, key: &Self::Key, entry: Self::Entry) -> Result<bool, Full>;
}

/// A [`SecurityStore`] with no room for one more entry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg(any(feature = "revocation", feature = "dpop"))]
pub(crate) struct Full(pub(crate) String);
