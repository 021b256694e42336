//! Refusing a replayed proof: a store of the `jti`s seen within the proof
//! window, behind [`ReplayStore`], with an in-memory one
//! ([`MemoryReplayStore`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::BoxFuture;
use crate::store::{Full, SecurityStore};

/// Where the `jti`s of accepted DPoP proofs are remembered, so that a proof
/// is accepted once.
///
/// A store shared by a fleet of servers (Redis, a database) refuses a proof
/// replayed against another instance; the in-memory one
/// ([`MemoryReplayStore`]) only within one process. A store that cannot
/// answer makes the layer answer 503 (fail closed) unless the policy says
/// [`replay_fail_open`](crate::dpop::DpopPolicyBuilder::replay_fail_open).
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` for `ttl`, atomically: `Ok(true)` when it was not
    /// there (first use), `Ok(false)` when it was (a replay).
    ///
    /// # Errors
    /// Why the store cannot answer (a message for logs).
    fn first_use_later<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, String>>;

    /// The same answer without waiting, when the store can give it (an
    /// in-memory store); `None` (the default) to be asked with
    /// [`first_use_later`](ReplayStore::first_use_later).
    fn first_use_now(&self, key: &str, ttl: Duration) -> Option<Result<bool, String>> {
        let _ = (key, ttl);
        None
    }
}

/// The default bound of a [`MemoryReplayStore`]: 100 000 proofs.
pub const DEFAULT_REPLAY_CAPACITY: u64 = 100_000;

/// An in-memory [`ReplayStore`], per process, with a hard bound and no
/// eviction.
///
/// Security store: never forgets an entry inside its window; when full it
/// refuses. A proof's key is kept until its time-to-live is over (at
/// least the `ttl` given here and the one the policy asks for), in a time
/// bucket of its expiry; whole buckets are dropped once expired. When it
/// holds `capacity` proofs, or one key holder (`jkt`) holds its
/// [`per_key_limit`](MemoryReplayStore::per_key_limit), a new proof is
/// refused with an error (the layer answers 503 with `Retry-After`, and
/// logs a warning) rather than accepted and forgotten: a store that
/// forgot would accept the same proof again. A proof already seen is a
/// replay (401) whether the store is full or not. (Under
/// [`replay_fail_open`](crate::dpop::DpopPolicyBuilder::replay_fail_open) a
/// refusal lets the proof through unrecorded, as a store that is down
/// does: it can then be replayed.)
///
/// Size it above the number of proofs one process accepts within the
/// window (about 2 × the `iat` window): at the defaults, 100,000 proofs in
/// about ten minutes, 10,000 of them per key holder. Each entry costs
/// about 150 bytes (at most about 400, with the longest `jti`), so the
/// default bound holds at most about 40 MB. Clones share the store.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::dpop::{DpopMode, DpopPolicy, MemoryReplayStore};
///
/// let store = MemoryReplayStore::new(500_000, Duration::from_secs(601)).per_key_limit(20_000);
/// let policy = DpopPolicy::builder(DpopMode::Required)
///     .base_url("https://api.example.com")
///     .replay_store(store)
///     .build()?;
/// # let _ = policy;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct MemoryReplayStore {
    seen: Arc<Mutex<Seen>>,
    capacity: usize,
    per_key: usize,
    /// The shortest time a key is kept, in milliseconds.
    ttl_ms: u64,
    /// The width of a time bucket, in milliseconds.
    grain_ms: u64,
    origin: Instant,
}

/// The keys inside their window, and when each bucket of them expires.
#[derive(Default)]
struct Seen {
    keys: HashSet<Arc<str>>,
    /// Bucket end (milliseconds since `origin`) to the keys expiring then.
    buckets: BTreeMap<u64, Vec<Arc<str>>>,
    /// Entries per key holder (the part of a key before its first `:`).
    holders: HashMap<Box<str>, usize>,
}

/// The key holder of a key (`{jkt}:{jti}`): its `jkt`.
fn holder(key: &str) -> &str {
    key.split_once(':').map_or(key, |(jkt, _)| jkt)
}

impl Seen {
    /// Drops every bucket that ended at or before `now`.
    fn purge(&mut self, now: u64) {
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > now {
                break;
            }
            for key in entry.remove() {
                self.keys.remove(&key);
                let h = holder(&key);
                if let Some(n) = self.holders.get_mut(h) {
                    *n -= 1;
                    if *n == 0 {
                        self.holders.remove(h);
                    }
                }
            }
        }
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("entries", &self.lock().keys.len())
            .field("capacity", &self.capacity)
            .field("per_key_limit", &self.per_key)
            .finish()
    }
}

impl MemoryReplayStore {
    /// A store for up to `capacity` proofs, each kept for at least `ttl`
    /// (and at least the time-to-live the policy asks for: twice its `iat`
    /// window, plus a second). One key holder may hold a tenth of it
    /// (at least 1); see [`per_key_limit`](MemoryReplayStore::per_key_limit).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(1);
        let ttl_ms = u64::try_from(crate::store::clamp_ttl(ttl).as_millis()).unwrap_or(u64::MAX);
        MemoryReplayStore {
            seen: Arc::default(),
            capacity,
            per_key: (capacity / 10).max(1),
            ttl_ms,
            grain_ms: (ttl_ms / 16).max(1),
            origin: Instant::now(),
        }
    }

    /// The most proofs one key holder (one `jkt`) may have in the store
    /// (default a tenth of the capacity; at least 1, at most the
    /// capacity): beyond it, that holder's new proofs are refused (503)
    /// while everyone else's are still accepted, so one client cannot fill
    /// the store for all.
    pub fn per_key_limit(mut self, limit: u64) -> Self {
        self.per_key = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .clamp(1, self.capacity);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // Every change leaves the sets consistent: a panic elsewhere while
        // the lock was held cannot leave them half-written.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`ReplayStore::first_use_now`] at `now`: [`SecurityStore::keep`].
    fn first_use_at(&self, key: &str, ttl: Duration, now: Instant) -> Result<bool, String> {
        self.keep(key, (ttl, now)).map_err(|Full(why)| why)
    }
}

/// A proof key is kept for its window (the longer of the proof's and the
/// store's TTL); a full store, or a key holder at its limit, refuses.
impl SecurityStore for MemoryReplayStore {
    type Key = str;
    /// The proof's TTL, and now.
    type Entry = (Duration, Instant);

    fn keep(&self, key: &str, (ttl, now): (Duration, Instant)) -> Result<bool, Full> {
        let now = u64::try_from(now.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX);
        let ttl = u64::try_from(crate::store::clamp_ttl(ttl).as_millis())
            .unwrap_or(u64::MAX)
            .max(self.ttl_ms)
            .max(1);
        let mut seen = self.lock();
        seen.purge(now);
        if seen.keys.contains(key) {
            return Ok(false);
        }
        if seen.keys.len() >= self.capacity {
            return Err(Full(format!(
                "the replay store is full ({} proofs within the window); refusing rather than forgetting one",
                self.capacity
            )));
        }
        let h = holder(key);
        if seen.holders.get(h).is_some_and(|n| *n >= self.per_key) {
            return Err(Full(format!(
                "one key holder has {} proofs within the window (per_key_limit); refusing rather than forgetting one",
                self.per_key
            )));
        }
        // The end of the bucket the key expires in: never before `now + ttl`.
        let end = now
            .saturating_add(ttl)
            .div_ceil(self.grain_ms)
            .saturating_mul(self.grain_ms);
        let key: Arc<str> = Arc::from(key);
        seen.keys.insert(key.clone());
        *seen.holders.entry(Box::from(h)).or_insert(0) += 1;
        seen.buckets.entry(end).or_default().push(key);
        Ok(true)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn first_use_later<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let answer = self.first_use_at(key, ttl, Instant::now());
        Box::pin(std::future::ready(answer))
    }

    fn first_use_now(&self, key: &str, ttl: Duration) -> Option<Result<bool, String>> {
        Some(self.first_use_at(key, ttl, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_new_once() {
        let store = MemoryReplayStore::new(10, Duration::from_secs(60));
        let ttl = Duration::from_secs(60);
        assert_eq!(store.first_use_now("a", ttl), Some(Ok(true)));
        assert_eq!(store.first_use_now("a", ttl), Some(Ok(false)));
        assert_eq!(store.first_use_now("b", ttl), Some(Ok(true)));
    }

    /// At twice its capacity inside the window: every key it answered
    /// "first use" for is a replay ever after, and a key it cannot keep is
    /// refused (an error, 503), never accepted and forgotten.
    #[test]
    fn full_replay_store_refuses_instead_of_forgetting() {
        let cap = 1_000u64;
        let ttl = Duration::from_secs(600);
        let store = MemoryReplayStore::new(cap, ttl);
        let mut fresh = Vec::new();
        let mut refused = 0;
        // Distinct key holders, so no per-key limit applies.
        for i in 0..2 * cap {
            let key = format!("jkt{i}:jti");
            match store.first_use_now(&key, ttl) {
                Some(Ok(true)) => fresh.push(key),
                Some(Ok(false)) => panic!("{key} was never seen, answered as a replay"),
                Some(Err(_)) => refused += 1,
                None => panic!("the in-memory store answers at once"),
            }
        }
        assert_eq!(fresh.len() as u64, cap, "it keeps exactly its capacity");
        assert_eq!(refused, cap);
        for key in &fresh {
            assert_eq!(
                store.first_use_now(key, ttl),
                Some(Ok(false)),
                "{key} answered first use twice"
            );
        }
        assert!(matches!(
            store.first_use_now("another:jti", ttl),
            Some(Err(_))
        ));
    }

    /// Keys stay for their whole window and go only after it, freeing
    /// their room: a full store accepts again once its proofs expired.
    #[test]
    fn entries_are_kept_for_their_window_and_then_make_room() {
        let ttl = Duration::from_secs(60);
        let store = MemoryReplayStore::new(4, ttl).per_key_limit(4);
        let t0 = store.origin;
        for k in ["a:1", "a:2", "a:3", "a:4"] {
            assert_eq!(store.first_use_at(k, ttl, t0), Ok(true));
        }
        assert!(store.first_use_at("a:5", ttl, t0).is_err());
        let last_moment = t0 + ttl - Duration::from_millis(1);
        assert_eq!(store.first_use_at("a:1", ttl, last_moment), Ok(false));
        assert!(store.first_use_at("b:1", ttl, last_moment).is_err());
        // One bucket past the window: all gone, room again.
        let after = t0 + ttl + Duration::from_millis(store.grain_ms);
        assert_eq!(store.first_use_at("b:1", ttl, after), Ok(true));
        assert_eq!(store.first_use_at("a:1", ttl, after), Ok(true));
        assert_eq!(store.lock().keys.len(), 2);
        assert_eq!(store.lock().holders.len(), 2);
    }

    /// The policy's time-to-live is kept even when the store was built
    /// with a shorter one.
    #[test]
    fn the_longer_of_the_two_ttls_is_kept() {
        let store = MemoryReplayStore::new(10, Duration::from_secs(1));
        let t0 = store.origin;
        let ttl = Duration::from_secs(601);
        assert_eq!(store.first_use_at("a:1", ttl, t0), Ok(true));
        let later = t0 + Duration::from_secs(600);
        assert_eq!(store.first_use_at("a:1", ttl, later), Ok(false));
    }

    /// One key holder at twice its limit: its extra proofs are refused
    /// while another holder's are still accepted.
    #[test]
    fn one_key_holder_cannot_fill_the_store_for_everyone() {
        let ttl = Duration::from_secs(600);
        let store = MemoryReplayStore::new(1_000, ttl);
        let mut fresh = 0;
        for i in 0..200 {
            match store.first_use_now(&format!("mallory:{i}"), ttl) {
                Some(Ok(true)) => fresh += 1,
                Some(Err(why)) => assert!(why.contains("per_key_limit"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(fresh, 100, "a tenth of the capacity by default");
        assert_eq!(store.first_use_now("alice:1", ttl), Some(Ok(true)));
        assert_eq!(store.first_use_now("mallory:0", ttl), Some(Ok(false)));
        let wide = MemoryReplayStore::new(10, ttl).per_key_limit(u64::MAX);
        for i in 0..10 {
            assert_eq!(wide.first_use_now(&format!("m:{i}"), ttl), Some(Ok(true)));
        }
    }

    #[test]
    fn duration_max_and_zero_are_settings_not_panics() {
        for ttl in [Duration::MAX, Duration::ZERO] {
            let store = MemoryReplayStore::new(u64::MAX, ttl).per_key_limit(0);
            assert_eq!(store.first_use_now("a:1", ttl), Some(Ok(true)));
            assert_eq!(store.first_use_now("a:1", ttl), Some(Ok(false)));
            assert!(store.first_use_now("a:2", ttl).unwrap().is_err());
        }
    }
}
