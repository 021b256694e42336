//! One lazily connected Redis connection (a single node, or a Redis
//! Cluster / Valkey cluster given as a comma list of node URLs), every
//! command bounded by a timeout.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::error::BuildError;
use crate::text::redact_url;

/// The default time one Redis command may take.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest timeout a Redis command may be given.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where the connection goes: one node, or a cluster found from its seeds.
enum Target {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// The connection once made: both kinds reconnect by themselves (the
/// cluster one also follows `MOVED`/`ASK` and failovers).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A Redis connection through redis' tokio connection manager (or its
/// cluster client), which reconnects by itself when Redis comes back;
/// nothing connects until the first command.
pub(crate) struct RedisConn {
    target: Target,
    /// The nodes as given (one, or the cluster's seeds).
    seeds: Vec<ConnectionInfo>,
    conn: OnceLock<Conn>,
    timeout: Duration,
}

/// Reads `url`: one `redis://` URL for a single node, or a comma list of
/// them for the nodes of a cluster (any of them, the rest is discovered).
fn seeds(url: &str) -> Result<Vec<ConnectionInfo>, BuildError> {
    let parts: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(BuildError::config("url", "no redis URL"));
    }
    parts
        .iter()
        .map(|u| {
            u.into_connection_info().map_err(|e| {
                BuildError::config("url", format!("redis URL {:?}: {e}", redact_url(u)))
            })
        })
        .collect()
}

impl RedisConn {
    /// A connection to the Redis at `url` (`redis://host:port/db`), or to
    /// the cluster whose nodes are the comma-separated URLs in `url`.
    pub(crate) fn open(url: &str, timeout: Duration) -> Result<Self, BuildError> {
        let seeds = seeds(url)?;
        let timeout = timeout.min(MAX_TIMEOUT);
        let redacted = |e: redis::RedisError| {
            BuildError::config("url", format!("redis URL {:?}: {e}", redact_url(url)))
        };
        let target = if seeds.len() == 1 {
            Target::Single(redis::Client::open(seeds[0].clone()).map_err(redacted)?)
        } else {
            Target::Cluster(Box::new(
                ClusterClient::builder(seeds.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()
                    .map_err(redacted)?,
            ))
        };
        Ok(RedisConn {
            target,
            seeds,
            conn: OnceLock::new(),
            timeout,
        })
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether this is a cluster (several nodes given).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// The nodes as given: one, or the cluster's seeds.
    pub(crate) fn seeds(&self) -> &[ConnectionInfo] {
        &self.seeds
    }

    fn conn(&self) -> Result<Conn, String> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        let conn = match &self.target {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                Conn::Single(
                    ConnectionManager::new_lazy_with_config(client.clone(), config)
                        .map_err(|e| redact_url(&e.to_string()).into_owned())?,
                )
            }
            Target::Cluster(client) => Conn::Cluster(
                client.get_pending_async_connection_with_config(
                    redis::cluster::ClusterConfig::new()
                        .set_connection_timeout(self.timeout)
                        .set_response_timeout(self.timeout),
                ),
            ),
        };
        Ok(self.conn.get_or_init(|| conn).clone())
    }

    /// Runs `cmd`, within the timeout.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, String> {
        let answer = match self.conn()? {
            Conn::Single(mut conn) => {
                tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await
            }
            Conn::Cluster(mut conn) => {
                tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await
            }
        };
        match answer {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(redact_url(&e.to_string()).into_owned()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}
