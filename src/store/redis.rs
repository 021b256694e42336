//! One lazily connected Redis connection, every command bounded by a
//! timeout.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::BuildError;
use crate::text::redact_url;

/// The default time one Redis command may take.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest timeout a Redis command may be given.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A Redis connection through redis' tokio connection manager, which
/// reconnects by itself when Redis comes back; nothing connects until the
/// first command.
pub(crate) struct RedisConn {
    client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    timeout: Duration,
}

impl RedisConn {
    /// A connection to the Redis at `url` (`redis://host:port/db`).
    pub(crate) fn open(url: &str, timeout: Duration) -> Result<Self, BuildError> {
        let client = redis::Client::open(url).map_err(|e| {
            BuildError::config("url", format!("redis URL {:?}: {e}", redact_url(url)))
        })?;
        Ok(RedisConn {
            client,
            conn: OnceLock::new(),
            timeout: timeout.min(MAX_TIMEOUT),
        })
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    fn conn(&self) -> Result<ConnectionManager, String> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| redact_url(&e.to_string()).into_owned())?;
        Ok(self.conn.get_or_init(|| conn).clone())
    }

    /// Runs `cmd`, within the timeout.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, String> {
        let mut conn = self.conn()?;
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(redact_url(&e.to_string()).into_owned()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}
