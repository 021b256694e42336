//! [`TokenCache`]: an opt-in cache of verified tokens (feature `cache`).
//!
#![doc = include_str!("docs/cache.md")]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::claims::Claims;
use crate::store::PerformanceCache;
use crate::verify::{TokenVerifier, Verified};

/// Skips the signature check for a token already verified, keyed by the
/// **whole token string**.
///
/// Most traffic repeats the same token many times within its lifetime; a
/// hit costs a hash lookup instead of a signature verification. A hit is
/// used only if, at that moment:
///
/// - the token is not expired and is valid yet (`exp` and `nbf` are checked
///   again, with the verifier's leeway);
/// - the key that verified it is still in the verifier's key set: a key the
///   identity provider removed stops hits at the next key-set refresh.
///
/// Otherwise the token is verified afresh, as without a cache. Only tokens
/// that verified are stored, so refused tokens cannot fill it. An entry is
/// used no longer than the token's `exp` (an expired one is dropped when
/// next looked up, or evicted by newer ones), and the cache is bounded both
/// in entries and in bytes (token plus payload), evicting the least useful
/// entries (S3-FIFO, `quick_cache`). A hit costs one hash of the token
/// (seeded `foldhash`), a shard read lock and a full key compare.
///
/// The trade-off: a token stays accepted until its `exp` or until its key
/// leaves the key set, exactly as without the cache; nothing here can
/// revoke a single token earlier.
///
/// Performance cache: may forget; forgetting costs only a signature
/// verification. When full, a new token is still admitted (S3-FIFO puts
/// every new entry in its small queue) and older, less used ones go.
///
/// ```
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
/// use tower_jwt_auth::cache::TokenCache;
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let layer = JwtAuthLayer::new(verifier)
///     .cache(TokenCache::new().max_entries(50_000).max_bytes(32 << 20));
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct TokenCache {
    max_entries: u64,
    max_bytes: u64,
    /// Test hook: every token hashes the same (see `same_hash_for_every_token`).
    collide: bool,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new()
    }
}

impl TokenCache {
    /// Default limits: 100,000 entries and 64 MiB.
    pub fn new() -> Self {
        TokenCache {
            max_entries: 100_000,
            max_bytes: 64 << 20,
            collide: false,
        }
    }

    /// Test hook (feature `test-util`), not part of the API: every token
    /// gets the same hash, so that a test can show that tokens are told
    /// apart by their full text, never by their hash.
    #[cfg(feature = "test-util")]
    #[doc(hidden)]
    pub fn same_hash_for_every_token(mut self) -> Self {
        self.collide = true;
        self
    }

    /// The most tokens kept (at least 1).
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// The most bytes kept, counting each token and its decoded payload
    /// (at least 1 KiB).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.max(1024);
        self
    }

    pub(crate) fn build<C: Send + Sync + 'static>(self) -> Store<C> {
        // One weight bounds both: each entry weighs at least
        // max_bytes / max_entries, so the total weight (<= max_bytes) also
        // caps the count at max_entries.
        let floor = (self.max_bytes / self.max_entries).max(1);
        let estimate = usize::try_from(self.max_entries.min(1 << 20)).unwrap_or(1 << 20);
        // Shards of at least 256 KiB (at most 64 of them): an entry heavier
        // than its shard is never admitted, so a small byte budget must not
        // be split into shards too small for one token.
        let shards = usize::try_from((self.max_bytes / (256 << 10)).clamp(1, 64)).unwrap_or(1);
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(estimate)
            .weight_capacity(self.max_bytes)
            .shards(shards)
            .build();
        let cache = match options {
            Ok(options) => quick_cache::sync::Cache::with_options(
                options,
                Weight { floor },
                // Keys are tokens that verified: their bytes (signature
                // included) are not the client's to choose, so a fast
                // seeded hash cannot be steered into collisions; keys are
                // still compared in full.
                KeyHash::new(self.collide),
                Default::default(),
            ),
            // Unreachable: both settings are clamped above zero.
            Err(_) => quick_cache::sync::Cache::with(
                estimate,
                self.max_bytes,
                Weight { floor },
                KeyHash::new(self.collide),
                Default::default(),
            ),
        };
        Store {
            cache: PerformanceCache::may_forget(cache, "a signature verification"),
            config: self,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

/// The hash of a token: seeded `foldhash`; the same for every token under
/// the `same_hash_for_every_token` test hook.
#[derive(Clone)]
struct KeyHash {
    seeded: foldhash::fast::RandomState,
    collide: bool,
}

impl KeyHash {
    fn new(collide: bool) -> Self {
        KeyHash {
            seeded: foldhash::fast::RandomState::default(),
            collide,
        }
    }
}

impl std::hash::BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            inner: self.seeded.build_hasher(),
            collide: self.collide,
        }
    }
}

/// See [`KeyHash`].
struct KeyHasher {
    inner: foldhash::fast::FoldHasher<'static>,
    collide: bool,
}

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.inner.write(bytes);
    }

    fn write_u8(&mut self, i: u8) {
        self.inner.write_u8(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.inner.write_usize(i);
    }

    fn finish(&self) -> u64 {
        if self.collide { 0 } else { self.inner.finish() }
    }
}

/// What an entry costs: its token and payload bytes plus a fixed overhead,
/// and at least `floor`.
#[derive(Clone)]
struct Weight {
    floor: u64,
}

impl<C> quick_cache::Weighter<Arc<str>, Arc<Entry<C>>> for Weight {
    fn weight(&self, token: &Arc<str>, e: &Arc<Entry<C>>) -> u64 {
        ((token.len() + e.claims.json().len() + 128) as u64).max(self.floor)
    }
}

/// The claims in the layer's type, and the verifier's answer they came
/// from (which key, the leeway of the verifier, with several issuers the
/// tenant's, that accepted it, how long it may be reused).
struct Entry<C> {
    claims: Claims<C>,
    verified: Verified,
}

/// Token to verified entry: sharded, weight-bounded S3-FIFO.
type Tokens<C> = quick_cache::sync::Cache<Arc<str>, Arc<Entry<C>>, Weight, KeyHash>;

/// The verified-token store: a sharded, weight-bounded S3-FIFO cache
/// (`quick_cache`), token to claims. An entry lives as long as the
/// verifier would accept its token (`exp` plus leeway, and its key still
/// held), checked on every hit; expired entries are dropped when next
/// looked up or evicted by newer ones.
pub(crate) struct Store<C> {
    /// Entries behind an `Arc`: a hit clones a pointer, not the entry.
    cache: PerformanceCache<Tokens<C>>,
    config: TokenCache,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters of a layer's [`TokenCache`], from
/// [`JwtAuthLayer::cache_stats`](crate::JwtAuthLayer::cache_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests whose token was verified in full (not cached, or its entry
    /// could not be used).
    pub misses: u64,
    /// Tokens cached now (approximate: eviction runs in the background).
    pub entries: u64,
}

impl<C> fmt::Debug for Store<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("config", &self.config)
            .field("entries", &self.cache.len())
            .finish()
    }
}

impl<C: Send + Sync + 'static> Store<C> {
    /// The claims of `token` if it was verified and may be used now.
    pub(crate) fn get(&self, token: &str, verifier: &dyn TokenVerifier) -> Option<Claims<C>> {
        let claims = self.lookup(token, verifier);
        let counter = if claims.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        claims
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.len() as u64,
        }
    }

    fn lookup(&self, token: &str, verifier: &dyn TokenVerifier) -> Option<Claims<C>> {
        let entry = self.cache.get(token)?;
        // A clock that cannot be read: no hit; the verifier then refuses.
        let now = verifier.now().ok()?;
        if entry.verified.live_at(now) && verifier.still_valid(&entry.verified) {
            Some(entry.claims.clone())
        } else {
            // Verify afresh: the answer (expired, unknown key) is the
            // verifier's to give.
            self.cache.remove(token);
            None
        }
    }

    /// Keeps `claims` for `token`, with `verified`, the answer they came
    /// from (sharing their allocation: see `Verified::into_kept`).
    pub(crate) fn insert(&self, token: &str, claims: &Claims<C>, verified: Verified) {
        self.cache.insert(
            Arc::from(token),
            Arc::new(Entry {
                claims: claims.clone(),
                verified,
            }),
        );
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.cache.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, JsonClaims, Key, TokenVerifier, Verifier};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn now_secs() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn hs256(claims: &serde_json::Value) -> String {
        use aws_lc_rs::hmac;
        let e = |b: &[u8]| crate::b64::encode(b);
        let input = format!(
            "{}.{}",
            e(br#"{"alg":"HS256"}"#),
            e(claims.to_string().as_bytes())
        );
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]),
            input.as_bytes(),
        );
        format!("{input}.{}", e(tag.as_ref()))
    }

    #[test]
    fn a_small_byte_budget_still_holds_a_token() {
        let v = Verifier::builder()
            .key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap())
            .any_audience()
            .build()
            .unwrap();
        let store: Store<JsonClaims> = TokenCache::new().max_bytes(1024).build();
        let t = hs256(&serde_json::json!({"exp": now_secs() + 600}));
        let verified = v.verify_now(&t).unwrap().unwrap();
        let (claims, again) = verified.into_kept::<JsonClaims>().unwrap();
        store.insert(&t, &claims, again);
        assert!(store.get(&t, &v).is_some());
    }

    #[test]
    fn bounded_in_entries() {
        let v = Verifier::builder()
            .key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap())
            .any_audience()
            .build()
            .unwrap();
        let store: Store<JsonClaims> = TokenCache::new().max_entries(10).build();
        for i in 0..100 {
            let t = hs256(&serde_json::json!({"exp": now_secs() + 600, "i": i}));
            let verified = v.verify_now(&t).unwrap().unwrap();
            let (claims, again) = verified.into_kept::<JsonClaims>().unwrap();
            store.insert(&t, &claims, again);
            assert!(store.get(&t, &v).is_some());
        }
        assert!(store.len() <= 10, "{}", store.len());
    }

    /// At twice its capacity, new tokens are still admitted (S3-FIFO puts
    /// every new entry in its small queue; no admission policy turns it
    /// away): each token is a hit right after it was stored, and the
    /// newest ones are kept.
    #[test]
    fn new_tokens_are_admitted_at_twice_the_capacity() {
        let v = Verifier::builder()
            .key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap())
            .any_audience()
            .build()
            .unwrap();
        let cap = 1_000u64;
        // A tight byte budget (few shards) and the default one (64 shards).
        for bytes in [cap * 1024, 64 << 20] {
            let store: Store<JsonClaims> =
                TokenCache::new().max_entries(cap).max_bytes(bytes).build();
            let mut tokens = Vec::new();
            for i in 0..2 * cap {
                let t = hs256(&serde_json::json!({"exp": now_secs() + 600, "i": i}));
                let verified = v.verify_now(&t).unwrap().unwrap();
                let (claims, again) = verified.into_kept::<JsonClaims>().unwrap();
                store.insert(&t, &claims, again);
                assert!(store.get(&t, &v).is_some(), "token {i} not admitted");
                tokens.push(t);
            }
            assert!(store.len() <= cap, "{}", store.len());
            let newest = tokens[tokens.len() - 50..]
                .iter()
                .filter(|t| store.get(t, &v).is_some())
                .count();
            assert_eq!(newest, 50, "{newest} of the 50 newest tokens kept");
        }
    }

    /// A hit is judged by the verifier's clock: once the injected clock
    /// passes `exp` (plus the leeway) the entry is refused and dropped,
    /// whatever the system's time.
    #[test]
    fn hits_end_when_the_injected_clock_passes_exp() {
        use std::sync::Arc;
        use std::sync::atomic::AtomicU64;
        use std::time::Duration;
        let secs = Arc::new(AtomicU64::new(1_000_000));
        let now = Arc::clone(&secs);
        let v = Verifier::builder()
            .key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap())
            .any_audience()
            .leeway(Duration::from_secs(10))
            .clock(move || UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst)))
            .build()
            .unwrap();
        let store: Store<JsonClaims> = TokenCache::new().build();
        let t = hs256(&serde_json::json!({"exp": 1_000_060}));
        let verified = v.verify_now(&t).unwrap().unwrap();
        let (claims, again) = verified.into_kept::<JsonClaims>().unwrap();
        store.insert(&t, &claims, again);
        assert!(store.get(&t, &v).is_some());
        secs.store(1_000_060 + 9, Ordering::SeqCst);
        assert!(store.get(&t, &v).is_some(), "within the leeway");
        secs.store(1_000_060 + 11, Ordering::SeqCst);
        assert!(store.get(&t, &v).is_none(), "a hit past exp by the clock");
        assert_eq!(store.len(), 0, "the expired entry is dropped");
    }
}
