//! [`SharedAnswers`]: active introspection answers shared by a fleet in
//! Redis, so that N instances make one introspection call per token
//! rather than N (feature `redis`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::BuildError;
use crate::store::redis::{DEFAULT_TIMEOUT, RedisConn};

/// Active introspection answers kept in Redis (or a Redis Cluster: a comma
/// list of node URLs) for every instance of a fleet: an instance that has
/// no answer for a token asks Redis before it asks the authorization
/// server, and stores the active answers it gets there. Set it with
/// [`IntrospectorBuilder::shared_answers`](super::IntrospectorBuilder::shared_answers).
///
/// - One key per token: `{prefix}{sha256 of the token, base64url}` (never
///   the token), holding the answer's JSON, expiring when this instance
///   would stop reusing it (the smaller of its `exp` and `max_ttl`). An
///   answer read from Redis is judged as if it came from the endpoint
///   (`active`, `token_type`, `exp`, `iss`, `aud`), and reused no longer
///   than its key has left to live.
/// - Only active answers are shared; a refusal is kept per instance.
/// - Performance cache: may forget (Redis may evict these keys); Redis
///   unreachable costs a call to the endpoint, never a refusal.
/// - **Redis is trusted like the endpoint**: whoever can write these keys
///   can make any opaque token active. Protect it (ACL, TLS, a private
///   network) as you protect your authorization server.
///
/// ```no_run
/// use tower_jwt_auth::introspection::{Introspector, SharedAnswers};
///
/// let shared = SharedAnswers::new("redis://10.0.0.5:6379/")?.prefix("orders:introspection:");
/// let introspector = Introspector::builder("https://idp.example/oauth2/introspect")
///     .client_credentials("orders-api", "its-secret")
///     .audience("orders-api")
///     .shared_answers(shared)
///     .build()?;
/// # let _ = introspector;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct SharedAnswers {
    redis: Arc<RedisConn>,
    prefix: Arc<str>,
}

impl fmt::Debug for SharedAnswers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAnswers")
            .field("prefix", &self.prefix)
            .field("timeout", &self.redis.timeout())
            .finish_non_exhaustive()
    }
}

impl SharedAnswers {
    /// Answers in the Redis at `url` (or the cluster of the comma-separated
    /// node URLs), keys prefixed `introspection:`, commands bounded by
    /// 250 ms. Nothing connects until the first token.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] when the URL cannot be read.
    pub fn new(url: &str) -> Result<Self, BuildError> {
        Ok(SharedAnswers {
            redis: Arc::new(RedisConn::open(url, DEFAULT_TIMEOUT)?),
            prefix: Arc::from("introspection:"),
        })
    }

    /// Prefixes every key (default `introspection:`).
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    fn key(&self, hash: &[u8; 32]) -> String {
        format!("{}{}", self.prefix, crate::b64::encode(hash))
    }

    /// The shared answer for this token hash, and how long it has left.
    pub(super) async fn get(&self, hash: &[u8; 32]) -> Option<(Vec<u8>, Duration)> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}")
            .arg(1)
            .arg(self.key(hash));
        match self.redis.run::<(Option<Vec<u8>>, i64)>(&cmd).await {
            Ok((Some(body), left)) if left > 0 => Some((body, Duration::from_millis(left as u64))),
            Ok(_) => None,
            Err(why) => {
                tracing::debug!(error = %why, "shared introspection answers unavailable");
                None
            }
        }
    }

    /// Shares an active answer for `ttl`.
    pub(super) async fn put(&self, hash: &[u8; 32], body: &[u8], ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(hash)).arg(body).arg("PX").arg(ms);
        if let Err(why) = self.redis.run::<()>(&cmd).await {
            tracing::debug!(error = %why, "introspection answer not shared");
        }
    }
}
