//! [`RedisRevocation`]: the deny-list in Redis, shared by every instance.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{Revocation, RevocationStatus, before_mark, keep_until, now_secs, scoped};
use crate::BoxFuture;
use crate::claims::RegisteredClaims;
use crate::clock::Clock;
use crate::error::BuildError;
use crate::store::PerformanceCache;
use crate::store::clamp_ttl;
use crate::store::redis::{DEFAULT_TIMEOUT, RedisConn};

/// The default bound of [`RedisRevocationBuilder::local_cache`].
const DEFAULT_LOCAL_CAPACITY: u64 = 100_000;

/// A deny-list in Redis: one key per revoked `jti`
/// (`{prefix}jti:{len(iss)}:{iss}:{jti}`, expiring at the token's `exp`)
/// and one per subject mark (`{prefix}sub:{len(iss)}:{iss}:{sub}` holding
/// a time: every token of the subject issued at or before it is revoked;
/// it expires after the mark TTL, 24 h by default). Entries are scoped by
/// issuer: the same `sub` or `jti` at two issuers are different entries.
///
/// Connects lazily through redis' tokio connection manager, which
/// reconnects by itself when Redis comes back. Each check is one round
/// trip (a cached Lua script), bounded by a timeout (default 250 ms). Deny
/// data of an unexpected type (a hash under a `jti` key, a mark that is
/// not a number) revokes: odd data fails closed, whatever the policy. When Redis cannot answer, the
/// default is to **fail closed** (503, `RevocationUnavailable`);
/// [`fail_open`](RedisRevocationBuilder::fail_open) lets tokens through instead
/// (logged). An optional local cache answers repeated checks without a
/// round trip, at the price of seeing a revocation up to its TTL late.
///
/// Security store: never forgets an entry inside its window, as long as
/// Redis itself does not evict keys: run it with `maxmemory-policy
/// noeviction`, so that a full Redis refuses a revocation (an error from
/// [`revoke`](RedisRevocation::revoke)) rather than dropping one.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
/// use tower_jwt_auth::revocation::RedisRevocation;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let revoked = RedisRevocation::builder("redis://127.0.0.1:6379/")
///     .prefix("orders-api:")
///     .local_cache(Duration::from_secs(1))
///     .build()?;
/// let layer = JwtAuthLayer::new(verifier).revocation(revoked.clone());
/// // on logout:
/// revoked.revoke("https://login.example.com", "the-jti", 4102444800).await?;
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRevocation {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisConn,
    prefix: String,
    fail_open: bool,
    mark_ttl: Duration,
    local: Option<PerformanceCache<moka::sync::Cache<Box<str>, RevocationStatus>>>,
    /// Bumped by every revocation made here; an answer read from Redis
    /// before a revocation finished is not kept in the local cache.
    epoch: AtomicU64,
    /// Held for reading while an answer is stored locally, for writing
    /// while a revocation clears the local cache.
    local_gate: RwLock<()>,
    /// The clock a key's remaining lifetime is counted by.
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RedisRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocation")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.redis.timeout())
            .field("fail_open", &self.inner.fail_open)
            .field("local_cache", &self.inner.local.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a write to Redis failed.
#[derive(Debug)]
pub struct RedisError(String);

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis: {}", self.0)
    }
}

impl std::error::Error for RedisError {}

/// Builds a [`RedisRevocation`]; see [`RedisRevocation::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisRevocationBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    fail_open: bool,
    mark_ttl: Duration,
    local_ttl: Option<Duration>,
    local_capacity: u64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RedisRevocationBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL without its password.
        f.debug_struct("RedisRevocationBuilder")
            .field("url", &crate::text::redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("fail_open", &self.fail_open)
            .field("mark_ttl", &self.mark_ttl)
            .field("local_ttl", &self.local_ttl)
            .field("local_capacity", &self.local_capacity)
            .finish()
    }
}

impl RedisRevocationBuilder {
    /// The prefix of every key (default `jwt:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a check or a write may take (default 250 ms; at most an
    /// hour, longer is taken as an hour).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lets tokens through when Redis cannot answer (logged as a warning)
    /// instead of answering 503. Deny data of an unexpected type still
    /// revokes.
    pub fn fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// How long a subject mark is kept (default 24 h): at least the longest
    /// lifetime of the tokens you accept (at most 100 years).
    pub fn mark_ttl(mut self, ttl: Duration) -> Self {
        self.mark_ttl = ttl;
        self
    }

    /// Keeps answers in process for `ttl` (at most
    /// [`local_cache_capacity`](RedisRevocationBuilder::local_cache_capacity)
    /// tokens, 100,000 by default), so repeated checks need no round trip.
    /// A revocation made elsewhere is then seen up to `ttl` late; one made
    /// through this store is seen at once.
    ///
    /// Performance cache: may forget; forgetting costs only a round trip
    /// to Redis. When full, the least recently used answer goes and the
    /// new one is always kept (LRU, no admission policy that would turn
    /// new tokens away and send every request to Redis).
    pub fn local_cache(mut self, ttl: Duration) -> Self {
        self.local_ttl = Some(ttl);
        self
    }

    /// The most answers the local cache keeps (default 100,000; at least
    /// 1). Without [`local_cache`](RedisRevocationBuilder::local_cache)
    /// there is no local cache and this does nothing.
    pub fn local_cache_capacity(mut self, entries: u64) -> Self {
        self.local_capacity = entries.max(1);
        self
    }

    /// The clock a revocation's remaining lifetime is counted by, when its
    /// key is written with a TTL (default the system clock): give it the
    /// verifier's ([`VerifierBuilder::clock`](crate::VerifierBuilder::clock)).
    /// Redis then expires the key by its own clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the store. Nothing is connected until the first use.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] when the URL cannot be parsed.
    pub fn build(self) -> Result<RedisRevocation, BuildError> {
        let local = self.local_ttl.map(|ttl| {
            PerformanceCache::may_forget(
                moka::sync::Cache::builder()
                    .max_capacity(self.local_capacity)
                    .eviction_policy(moka::policy::EvictionPolicy::lru())
                    .time_to_live(clamp_ttl(ttl))
                    .build(),
                "a round trip to Redis",
            )
        });
        Ok(RedisRevocation {
            inner: Arc::new(Inner {
                redis: RedisConn::open(&self.url, self.timeout)?,
                prefix: self.prefix,
                fail_open: self.fail_open,
                mark_ttl: clamp_ttl(self.mark_ttl),
                local,
                epoch: AtomicU64::new(0),
                local_gate: RwLock::new(()),
                clock: self.clock,
            }),
        })
    }
}

impl RedisRevocation {
    /// A deny-list in the Redis at `url` (`redis://host:port/db`) with the
    /// default settings; [`builder`](RedisRevocation::builder) for others.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] when the URL cannot be parsed.
    pub fn new(url: &str) -> Result<Self, BuildError> {
        RedisRevocation::builder(url).build()
    }

    /// Starts building a deny-list in the Redis at `url`.
    pub fn builder(url: &str) -> RedisRevocationBuilder {
        RedisRevocationBuilder {
            url: url.to_owned(),
            prefix: "jwt:".into(),
            timeout: DEFAULT_TIMEOUT,
            fail_open: false,
            mark_ttl: super::DEFAULT_MARK_TTL,
            local_ttl: None,
            local_capacity: DEFAULT_LOCAL_CAPACITY,
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    fn jti_key(&self, iss: &str, jti: &str) -> String {
        format!("{}jti:{}", self.inner.prefix, scoped(iss, jti))
    }

    fn sub_key(&self, iss: &str, sub: &str) -> String {
        format!("{}sub:{}", self.inner.prefix, scoped(iss, sub))
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        self.inner.redis.run(cmd).await
    }

    /// Revokes the token of issuer `iss` with this `jti`; `exp` is the
    /// token's own `exp` (seconds since the epoch). The key lives 5 minutes
    /// past it, the largest leeway a verifier may grant; a token past that
    /// needs no entry.
    ///
    /// # Errors
    /// When Redis cannot be reached within the timeout.
    pub async fn revoke(&self, iss: &str, jti: &str, exp: i64) -> Result<(), RedisError> {
        let ttl = keep_until(exp)
            .saturating_sub(now_secs(&*self.inner.clock))
            .saturating_add(1);
        if ttl <= 0 {
            return Ok(());
        }
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.jti_key(iss, jti)).arg(1).arg("EX").arg(ttl);
        let result = self.run::<()>(&cmd).await.map_err(RedisError);
        self.forget_local();
        result
    }

    /// After a revocation: no answer cached here may predate it.
    fn forget_local(&self) {
        if let Some(local) = &self.inner.local {
            let _gate = self
                .inner
                .local_gate
                .write()
                .unwrap_or_else(|e| e.into_inner());
            self.inner.epoch.fetch_add(1, Ordering::SeqCst);
            local.invalidate_all();
        }
    }

    /// Revokes every token of `sub` at issuer `iss` issued at or before
    /// `issued_before` (seconds since the epoch): "log out everywhere". A
    /// later mark never moves an earlier, larger one back. Tokens are
    /// compared by `iat`, which a verifier never accepts more than its
    /// leeway in the future.
    ///
    /// # Errors
    /// When Redis cannot be reached within the timeout.
    pub async fn revoke_subject(
        &self,
        iss: &str,
        sub: &str,
        issued_before: i64,
    ) -> Result<(), RedisError> {
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        // Keep the largest mark, atomically.
        let script = redis::cmd("EVAL");
        let mut cmd = script;
        cmd.arg(
            "local cur = tonumber(redis.call('GET', KEYS[1]) or '-1') \
             if tonumber(ARGV[1]) > cur then cur = tonumber(ARGV[1]) end \
             redis.call('SET', KEYS[1], cur, 'EX', ARGV[2]) return cur",
        )
        .arg(1)
        .arg(self.sub_key(iss, sub))
        .arg(issued_before)
        .arg(self.inner.mark_ttl.as_secs().max(1));
        let result = self.run::<i64>(&cmd).await.map(drop).map_err(RedisError);
        self.forget_local();
        result
    }

    /// Asks Redis (or the local cache) about a token.
    pub async fn status(&self, claims: &RegisteredClaims) -> RevocationStatus {
        if let Some(hit) = self.local_get(claims) {
            return hit;
        }
        let started = Instant::now();
        let epoch = self.inner.epoch.load(Ordering::SeqCst);
        let iss = claims.iss().unwrap_or("");
        let jti_key = self.jti_key(iss, claims.jti().unwrap_or(""));
        let sub_key = self.sub_key(iss, claims.sub().unwrap_or(""));
        let answer = self.lookup(&jti_key, &sub_key).await;
        let status = match answer {
            Ok((jti, mark)) => {
                // Any value of any type under the jti key revokes; a mark
                // that does not read as a time revokes too (fail closed on
                // odd data).
                let by_jti = claims.jti().is_some() && jti != 0;
                let by_sub = claims.sub().is_some()
                    && mark.is_some_and(|mark| match mark.trim().parse::<i64>() {
                        Ok(mark) => before_mark(claims.iat(), mark),
                        Err(_) => true,
                    });
                if by_jti || by_sub {
                    RevocationStatus::Revoked
                } else {
                    RevocationStatus::Valid
                }
            }
            Err(why) if self.inner.fail_open => {
                tracing::warn!(error = %why, "revocation store unavailable; failing open");
                return RevocationStatus::Valid;
            }
            Err(why) => {
                tracing::warn!(error = %why, "revocation store unavailable; failing closed");
                return RevocationStatus::Unavailable(why);
            }
        };
        tracing::trace!(
            elapsed_us = started.elapsed().as_micros() as u64,
            ?status,
            "revocation check"
        );
        if let (Some(local), Some(key)) = (&self.inner.local, local_key(claims)) {
            let _gate = self
                .inner
                .local_gate
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if self.inner.epoch.load(Ordering::SeqCst) == epoch {
                local.insert(key, status.clone());
            }
        }
        status
    }

    /// One round trip: whether the jti key exists (whatever its type), and
    /// the subject mark (`"odd"` when the key holds something other than a
    /// string, which then fails closed).
    async fn lookup(&self, jti_key: &str, sub_key: &str) -> Result<(i64, Option<String>), String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(
            "local j = redis.call('EXISTS', KEYS[1]) \
             local t = redis.call('TYPE', KEYS[2])['ok'] \
             if t == 'none' then return {j, false} end \
             if t ~= 'string' then return {j, 'odd'} end \
             return {j, redis.call('GET', KEYS[2])}",
        )
        .arg(2)
        .arg(jti_key)
        .arg(sub_key);
        self.run::<(i64, Option<String>)>(&cmd).await
    }

    fn local_get(&self, claims: &RegisteredClaims) -> Option<RevocationStatus> {
        self.inner.local.as_ref()?.get(&*local_key(claims)?)
    }
}

/// The local cache's key: the whole identity the answer depends on (two
/// issuers may use the same `jti`; a subject mark depends on `sub`).
fn local_key(claims: &RegisteredClaims) -> Option<Box<str>> {
    let jti = claims.jti()?;
    Some(
        format!(
            "{}\n{}\n{}\n{jti}",
            claims.iss().unwrap_or(""),
            claims.sub().unwrap_or(""),
            claims.iat().unwrap_or(i64::MIN),
        )
        .into_boxed_str(),
    )
}

impl Revocation for RedisRevocation {
    fn check_later<'a>(&'a self, claims: &'a RegisteredClaims) -> BoxFuture<'a, RevocationStatus> {
        Box::pin(self.status(claims))
    }

    fn check_now(&self, claims: &RegisteredClaims) -> Option<RevocationStatus> {
        self.local_get(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local cache at twice its capacity: the newest answers are kept
    /// (no admission policy turns them away), so steady traffic of new
    /// tokens is still answered locally.
    #[test]
    fn local_cache_keeps_new_answers_at_twice_its_capacity() {
        let cap = 10_000u64;
        let store = RedisRevocation::builder("redis://127.0.0.1:1/")
            .local_cache(Duration::from_secs(600))
            .local_cache_capacity(cap)
            .build()
            .unwrap();
        let local = store.inner.local.as_ref().unwrap();
        for i in 0..2 * cap {
            local.insert(format!("key-{i}").into(), RevocationStatus::Valid);
        }
        local.run_pending_tasks();
        assert!(local.entry_count() <= cap, "{}", local.entry_count());
        let newest = (cap * 2 - 1000..cap * 2)
            .filter(|i| local.contains_key(format!("key-{i}").as_str()))
            .count();
        assert_eq!(newest, 1000, "{newest} of the 1000 newest answers kept");
    }
}
