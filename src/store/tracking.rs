//! A local copy of Redis keys under a prefix that Redis keeps current:
//! server-assisted client-side caching with RESP3 `CLIENT TRACKING ON
//! BCAST PREFIX <prefix>` on one connection per node
//! (docs/decisions/0010-tracked-revocation.md).
//!
//! The one home of the disconnect rule: the copy answers only while every
//! tracking connection is up with tracking on. A lost connection (a
//! `Disconnection` from the client library, a heartbeat `PING` without an
//! answer, a cluster whose nodes or roles changed) clears the copy and
//! stops it answering, so callers fall back to round trips (or fail closed)
//! until tracking is back; no "not revoked" read before a disconnect is
//! answered after it. An answer read from Redis is kept only if nothing was
//! invalidated (and tracking did not restart) between the moment its read
//! was sent and the moment it is kept ([`TrackedCopy::snapshot`],
//! [`TrackedCopy::keep`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ProtocolVersion, PushInfo};
use redis::{PushKind, Value};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::PerformanceCache;
use super::redis::RedisConn;

/// How often each tracking connection is asked for a `PING` (and a
/// cluster for its nodes): a connection that goes silent without closing
/// is noticed within this plus the command timeout.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// A Redis key's value as last read: `None` when the key did not exist
/// (a string value otherwise, or `"odd"` for another type), and how long
/// it had left to live then (`None`: no expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) value: Option<Box<str>>,
    pub(crate) ttl: Option<Duration>,
}

/// Drops a copied key when Redis expires it (by its `PTTL` when read).
struct KeyTtl;

impl moka::Expiry<Box<str>, Held> for KeyTtl {
    fn expire_after_create(&self, _key: &Box<str>, held: &Held, _at: Instant) -> Option<Duration> {
        held.ttl
    }
}

struct State {
    copy: PerformanceCache<moka::sync::Cache<Box<str>, Held>>,
    /// Whether every tracking connection is up with tracking on.
    live: AtomicBool,
    /// Bumped by every invalidation, reset and (re)start of tracking.
    epoch: AtomicU64,
    /// Read while an answer is kept, written while keys are invalidated.
    gate: RwLock<()>,
    /// Whether a tracking task runs (one at a time).
    running: AtomicBool,
}

/// Held by the tracking task: when the task ends for any reason (its
/// runtime shut down included), the copy stops answering and a later
/// check may start a new task.
struct Running(Weak<State>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(state) = self.0.upgrade() {
            state.reset();
            state.running.store(false, Ordering::SeqCst);
        }
    }
}

impl State {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|e| e.into_inner())
    }

    fn invalidate(&self, keys: &[Value]) {
        let _gate = self.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for key in keys {
            if let Ok(key) = redis::from_redis_value_ref::<String>(key) {
                self.copy.invalidate(key.as_str());
            }
        }
    }

    fn clear(&self) {
        let _gate = self.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.copy.invalidate_all();
    }

    /// Tracking is on everywhere: the copy starts empty and answers.
    fn go_live(&self) {
        let _gate = self.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.copy.invalidate_all();
        self.live.store(true, Ordering::SeqCst);
    }

    /// The disconnect rule: stop answering and forget everything.
    fn reset(&self) {
        let _gate = self.write();
        self.live.store(false, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.copy.invalidate_all();
    }
}

/// The tracked local copy of the keys under one prefix.
pub(crate) struct TrackedCopy {
    state: Arc<State>,
    prefix: String,
}

impl std::fmt::Debug for TrackedCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackedCopy")
            .field("prefix", &self.prefix)
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl TrackedCopy {
    /// An empty copy of the keys under `prefix`, holding at most
    /// `capacity` keys; tracking starts with [`start`](TrackedCopy::start).
    pub(crate) fn new(prefix: &str, capacity: u64) -> Self {
        TrackedCopy {
            state: Arc::new(State {
                copy: PerformanceCache::may_forget(
                    moka::sync::Cache::builder()
                        .max_capacity(capacity.max(1))
                        .eviction_policy(moka::policy::EvictionPolicy::lru())
                        .expire_after(KeyTtl)
                        .build(),
                    "a round trip to Redis",
                ),
                live: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                gate: RwLock::new(()),
                running: AtomicBool::new(false),
            }),
            prefix: prefix.to_owned(),
        }
    }

    /// Starts tracking on the nodes of `redis` unless a task runs (needs
    /// a tokio runtime, and does nothing outside one: the copy then does
    /// not answer). The task ends when the copy is dropped; if its runtime
    /// goes first, the copy is cleared and the next check starts another.
    pub(crate) fn start(&self, redis: &RedisConn) {
        if self.state.running.load(Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .state
            .running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let tracker = Tracker {
            state: Arc::downgrade(&self.state),
            seeds: redis.seeds().to_vec(),
            cluster: redis.is_cluster(),
            prefix: self.prefix.clone(),
            timeout: redis.timeout().max(Duration::from_millis(100)),
        };
        // Owned by the task's future: dropped with it, polled or not.
        let running = Running(Arc::downgrade(&self.state));
        runtime.spawn(async move {
            let _running = running;
            tracker.run().await;
        });
    }

    /// Whether the copy answers now (tracking is on everywhere).
    pub(crate) fn is_live(&self) -> bool {
        self.state.live.load(Ordering::SeqCst)
    }

    /// The copied value of `key`, when the copy answers and holds it.
    pub(crate) fn get(&self, key: &str) -> Option<Held> {
        if !self.is_live() {
            return None;
        }
        self.state.copy.get(key)
    }

    /// Taken before a read is sent: [`keep`](TrackedCopy::keep) keeps its
    /// answer only if nothing changed in between.
    pub(crate) fn snapshot(&self) -> u64 {
        self.state.epoch.load(Ordering::SeqCst)
    }

    /// Keeps values read after `snapshot`, unless an invalidation, a reset
    /// or a restart of tracking came in between (the value may then
    /// predate a change whose invalidation was already handled).
    pub(crate) fn keep(&self, snapshot: u64, entries: impl IntoIterator<Item = (String, Held)>) {
        let _gate = self.state.gate.read().unwrap_or_else(|e| e.into_inner());
        if !self.is_live() || self.state.epoch.load(Ordering::SeqCst) != snapshot {
            return;
        }
        for (key, held) in entries {
            self.state.copy.insert(key.into_boxed_str(), held);
        }
    }

    /// Forgets `key` now (after a write through this process, whose own
    /// invalidation push may come a moment later).
    pub(crate) fn forget(&self, key: &str) {
        self.state
            .invalidate(&[Value::BulkString(key.as_bytes().to_vec())]);
    }
}

/// The background task: connects, turns tracking on, applies
/// invalidations, and resets the copy when anything goes wrong.
struct Tracker {
    state: Weak<State>,
    seeds: Vec<ConnectionInfo>,
    cluster: bool,
    prefix: String,
    timeout: Duration,
}

impl Tracker {
    async fn run(self) {
        let mut backoff = Duration::from_millis(20);
        loop {
            if self.state.strong_count() == 0 {
                return;
            }
            let (tx, mut rx) = unbounded_channel();
            match self.connect(tx).await {
                Ok((mut conns, nodes)) => {
                    let Some(state) = self.state.upgrade() else {
                        return;
                    };
                    state.go_live();
                    drop(state);
                    tracing::debug!(nodes = conns.len(), "revocation tracking on");
                    backoff = Duration::from_millis(20);
                    let why = self.watch(&mut conns, &nodes, &mut rx).await;
                    let Some(state) = self.state.upgrade() else {
                        return;
                    };
                    state.reset();
                    tracing::warn!(why = %why, "redis tracking lost: local copy cleared, asking redis until it is back");
                }
                Err(why) => {
                    if let Some(state) = self.state.upgrade() {
                        state.reset();
                    }
                    tracing::debug!(why = %why, "redis tracking not on yet");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// One RESP3 connection to the node at `info` that sends its pushes
    /// to `tx`, with tracking on for the prefix.
    async fn track(
        &self,
        info: ConnectionInfo,
        tx: UnboundedSender<PushInfo>,
    ) -> Result<MultiplexedConnection, String> {
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| e.to_string())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_push_sender(tx);
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("TRACKING").arg("ON").arg("BCAST");
        if !self.prefix.is_empty() {
            cmd.arg("PREFIX").arg(&self.prefix);
        }
        let () = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("CLIENT TRACKING: {e}"))?;
        Ok(conn)
    }

    /// Connections with tracking on to every node (the one node, or every
    /// reachable node of the cluster, replicas included: a replica that
    /// takes over already tracks), and the cluster's nodes as seen.
    async fn connect(
        &self,
        tx: UnboundedSender<PushInfo>,
    ) -> Result<(Vec<MultiplexedConnection>, Vec<String>), String> {
        let fut = async {
            if !self.cluster {
                let conn = self.track(self.seeds[0].clone(), tx).await?;
                return Ok((vec![conn], Vec::new()));
            }
            let (seed, nodes) = self.cluster_nodes().await?;
            let mut conns = Vec::with_capacity(nodes.len());
            for node in &nodes {
                let (host, port) = split_addr(node).ok_or("a node without an address")?;
                let info = seed
                    .clone()
                    .set_addr(ConnectionAddr::Tcp(host.to_owned(), port));
                conns.push(self.track(info, tx.clone()).await?);
            }
            Ok((conns, nodes))
        };
        tokio::time::timeout(self.timeout * 4, fut)
            .await
            .unwrap_or_else(|_| Err("connecting took too long".into()))
    }

    /// The cluster's nodes (`host:port role`, sorted), asked of the first
    /// seed that answers; the seed's settings for the connections.
    async fn cluster_nodes(&self) -> Result<(ConnectionInfo, Vec<String>), String> {
        let mut last = String::from("no seed");
        for seed in &self.seeds {
            match self.nodes_of(seed.clone()).await {
                Ok(nodes) if !nodes.is_empty() => return Ok((seed.clone(), nodes)),
                Ok(_) => last = "no node".into(),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn nodes_of(&self, seed: ConnectionInfo) -> Result<Vec<String>, String> {
        let client = redis::Client::open(seed).map_err(|e| e.to_string())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(parse_nodes(&text))
    }

    /// Applies pushes until a connection is lost; returns why.
    async fn watch(
        &self,
        conns: &mut [MultiplexedConnection],
        nodes: &[String],
        rx: &mut UnboundedReceiver<PushInfo>,
    ) -> String {
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        loop {
            tokio::select! {
                push = rx.recv() => {
                    let Some(push) = push else { return "push channel closed".into() };
                    let Some(state) = self.state.upgrade() else { return "dropped".into() };
                    match push.kind {
                        PushKind::Invalidate => match push.data.first() {
                            Some(Value::Array(keys)) => state.invalidate(keys),
                            // A null after FLUSHALL / FLUSHDB: everything.
                            _ => state.clear(),
                        },
                        PushKind::Disconnection => return "connection closed".into(),
                        _ => {}
                    }
                }
                _ = beat.tick() => {
                    if self.state.strong_count() == 0 {
                        return "dropped".into();
                    }
                    for conn in conns.iter_mut() {
                        let cmd = redis::cmd("PING");
                        let ping = cmd.query_async::<String>(conn);
                        match tokio::time::timeout(self.timeout, ping).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => return format!("heartbeat: {e}"),
                            Err(_) => return "heartbeat: no answer".into(),
                        }
                    }
                    if self.cluster {
                        match self.cluster_nodes().await {
                            Ok((_, now)) if now == nodes => {}
                            Ok(_) => return "cluster nodes or roles changed".into(),
                            Err(e) => return format!("cluster nodes: {e}"),
                        }
                    }
                }
            }
        }
    }
}

/// `host:port role` of each healthy node in `CLUSTER NODES` output, sorted.
fn parse_nodes(text: &str) -> Vec<String> {
    let mut nodes: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _id = fields.next()?;
            let addr = fields.next()?.split(['@', ',']).next()?;
            let flags = fields.next()?;
            let bad = flags
                .split(',')
                .any(|f| matches!(f, "fail" | "fail?" | "handshake" | "noaddr"));
            let role = if flags.split(',').any(|f| f == "master") {
                "master"
            } else {
                "replica"
            };
            (!bad && split_addr(addr).is_some()).then(|| format!("{addr} {role}"))
        })
        .collect();
    nodes.sort();
    nodes
}

/// `host` and `port` of `host:port` (the first word of a node line).
fn split_addr(node: &str) -> Option<(&str, u16)> {
    let addr = node.split(' ').next()?;
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_skip_failed_nodes_and_name_roles() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1 3 disconnected 10923-16383
e7d1 127.0.0.1:30001@40001,host myself,master - 0 0 1 connected 0-5460
9999 :0@0 master,noaddr - 0 0 0 disconnected
";
        assert_eq!(
            parse_nodes(text),
            [
                "127.0.0.1:30001 master",
                "127.0.0.1:30002 master",
                "127.0.0.1:30004 replica"
            ]
        );
    }

    /// An answer read before an invalidation (or a reset, or before
    /// tracking came on) is never kept.
    #[test]
    fn a_read_that_overlaps_a_change_is_not_kept() {
        let copy = TrackedCopy::new("p:", 100);
        let held = Held {
            value: None,
            ttl: None,
        };
        let before_live = copy.snapshot();
        copy.state.go_live();
        copy.keep(before_live, [("p:a".to_owned(), held.clone())]);
        assert_eq!(copy.get("p:a"), None, "read before tracking came on");
        let snap = copy.snapshot();
        copy.forget("p:other");
        copy.keep(snap, [("p:a".to_owned(), held.clone())]);
        assert_eq!(copy.get("p:a"), None, "read before an invalidation");
        let snap = copy.snapshot();
        copy.keep(snap, [("p:a".to_owned(), held.clone())]);
        assert_eq!(copy.get("p:a"), Some(held.clone()));
        copy.state.reset();
        assert_eq!(copy.get("p:a"), None, "a reset clears the copy");
        copy.state.go_live();
        assert_eq!(copy.get("p:a"), None, "and it comes back empty");
    }

    /// A tracking task dropped with its runtime (no disconnect seen)
    /// leaves a copy that does not answer, and the next check restarts it.
    #[test]
    fn a_tracker_gone_with_its_runtime_leaves_no_copy_answering() {
        let copy = TrackedCopy::new("p:", 100);
        let redis = RedisConn::open("redis://127.0.0.1:1/", Duration::from_millis(50)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { copy.start(&redis) });
        assert!(copy.state.running.load(Ordering::SeqCst));
        // As if tracking had come on, with a value kept.
        copy.state.go_live();
        let snap = copy.snapshot();
        let held = Held {
            value: None,
            ttl: None,
        };
        copy.keep(snap, [("p:a".to_owned(), held)]);
        assert!(copy.get("p:a").is_some());
        drop(runtime);
        assert!(!copy.is_live(), "the copy outlived its tracker");
        assert_eq!(copy.get("p:a"), None);
        assert!(
            !copy.state.running.load(Ordering::SeqCst),
            "may start again"
        );
    }
}
