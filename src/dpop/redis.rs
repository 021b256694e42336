//! [`RedisReplayStore`]: the `jti`s of accepted DPoP proofs in Redis, so a
//! fleet of servers refuses a proof replayed against another instance.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::replay::ReplayStore;
use crate::BoxFuture;
use crate::error::BuildError;
use crate::store::redis::{DEFAULT_TIMEOUT, RedisConn};

/// A [`ReplayStore`] in Redis (features `dpop` and `redis`): one `SET key
/// 1 NX PX <ttl>` per accepted proof, bounded by a timeout (default
/// 250 ms). A Redis that cannot answer in time makes the layer answer 503,
/// unless the policy says
/// [`replay_fail_open`](crate::dpop::DpopPolicyBuilder::replay_fail_open).
///
/// Security store: never forgets an entry inside its window, as long as
/// Redis itself does not evict keys: run it with `maxmemory-policy
/// noeviction`, so that a full Redis refuses the write (the layer answers
/// 503) rather than dropping a proof's key (`allkeys-*` or `volatile-*`
/// policies would let that proof replay).
///
/// ```no_run
/// use tower_jwt_auth::dpop::{DpopMode, DpopPolicy, RedisReplayStore};
///
/// let store = RedisReplayStore::new("redis://127.0.0.1:6379/")?.prefix("api:dpop:");
/// let policy = DpopPolicy::builder(DpopMode::Required)
///     .base_url("https://api.example.com")
///     .replay_store(store)
///     .build()?;
/// # let _ = policy;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct RedisReplayStore {
    redis: Arc<RedisConn>,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.redis.timeout())
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// A store in the Redis at `url` (`redis://host:port/db`), keys
    /// prefixed `dpop:`, commands bounded by 250 ms. Nothing connects
    /// until the first proof.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] when the URL cannot be read.
    pub fn new(url: &str) -> Result<Self, BuildError> {
        RedisReplayStore::with_timeout(url, DEFAULT_TIMEOUT)
    }

    /// As [`new`](RedisReplayStore::new), with another command timeout.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] when the URL cannot be read.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, BuildError> {
        Ok(RedisReplayStore {
            redis: Arc::new(RedisConn::open(url, timeout)?),
            prefix: Arc::from("dpop:"),
        })
    }

    /// Prefixes every key (default `dpop:`), to share a Redis.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }
}

impl ReplayStore for RedisReplayStore {
    fn first_use_later<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let ttl_ms = u64::try_from(crate::store::clamp_ttl(ttl).as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let mut cmd = redis::cmd("SET");
            cmd.arg(format!("{}{key}", self.prefix))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms);
            // `OK` when set (first use), nil when the key was there.
            let answer: Option<String> = self.redis.run(&cmd).await?;
            Ok(answer.is_some())
        })
    }
}
