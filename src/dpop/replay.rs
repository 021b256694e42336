//! Refusing a replayed proof: a store of the `jti`s seen within the proof
//! window, behind [`ReplayStore`], with an in-memory one
//! ([`MemoryReplayStore`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future of [`ReplayStore::first_use`].
pub type ReplayFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;

/// Where the `jti`s of accepted DPoP proofs are remembered, so that a proof
/// is accepted once.
///
/// A store shared by a fleet of servers (Redis, a database) refuses a proof
/// replayed against another instance; the in-memory one
/// ([`MemoryReplayStore`]) only within one process. A store that cannot
/// answer makes the layer answer 503 (fail closed) unless the policy says
/// [`replay_fail_open`](crate::DpopPolicyBuilder::replay_fail_open).
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` for `ttl`, atomically: `Ok(true)` when it was not
    /// there (first use), `Ok(false)` when it was (a replay).
    ///
    /// # Errors
    /// Why the store cannot answer (a message for logs).
    fn first_use<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a>;

    /// The same answer without waiting, when the store can give it (an
    /// in-memory store); `None` (the default) to be asked with
    /// [`first_use`](ReplayStore::first_use).
    fn first_use_now(&self, key: &str, ttl: Duration) -> Option<Result<bool, String>> {
        let _ = (key, ttl);
        None
    }
}

/// The default bound of a [`MemoryReplayStore`]: 100 000 proofs.
pub const DEFAULT_REPLAY_CAPACITY: u64 = 100_000;

/// An in-memory [`ReplayStore`] (moka), bounded: when full, the least
/// useful entries go first, so size it above the number of proofs one
/// process accepts within the proof window (about 2 × the `iat` window).
#[derive(Clone)]
pub struct MemoryReplayStore {
    seen: moka::sync::Cache<Box<str>, ()>,
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("entries", &self.seen.entry_count())
            .finish()
    }
}

impl MemoryReplayStore {
    /// A store for up to `capacity` proofs, each kept for `ttl` (use at
    /// least twice the policy's `iat` window).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        MemoryReplayStore {
            seen: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(crate::store::clamp_ttl(ttl))
                .build(),
        }
    }
}

impl ReplayStore for MemoryReplayStore {
    fn first_use<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a> {
        let answer = self.first_use_now(key, ttl).unwrap_or(Ok(false));
        Box::pin(std::future::ready(answer))
    }

    fn first_use_now(&self, key: &str, _ttl: Duration) -> Option<Result<bool, String>> {
        Some(Ok(self.seen.entry(Box::from(key)).or_insert(()).is_fresh()))
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
}
