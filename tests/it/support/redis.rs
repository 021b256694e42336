//! A real `redis-server` for tests, on 127.0.0.1 and a free port.
//!
//! When `redis-server` is not on the `PATH`, the first test that needs it
//! installs it where it can (Debian's `redis-server` package with
//! `apt-get`, when running as root, as on a fresh CI machine or container);
//! otherwise it fails saying what to install. It never skips.

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The `redis-server` to run, installed first if need be.
fn redis_server() -> &'static str {
    // Installed (as root on Debian) by the one apt helper, which takes one
    // install at a time: nginx, chromium and redis-server may be wanted by
    // tests running in parallel.
    static FOUND: OnceLock<String> = OnceLock::new();
    FOUND.get_or_init(|| super::apt::ensure("redis-server", "redis-server"))
}

/// A `redis-server` on a free loopback port, killed on drop.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

#[allow(dead_code)] // each test uses part of it
impl Redis {
    async fn start_on(port: u16) -> Child {
        let child = Command::new(redis_server())
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", redis_server()));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    pub async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis {
            port,
            child: Some(Redis::start_on(port).await),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.unwrap();
            c.wait().await.unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.child = Some(Redis::start_on(self.port).await);
    }
}

/// A free loopback port whose cluster bus port (`port + 10000`) is free too.
fn cluster_port() -> u16 {
    for _ in 0..200 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55000 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

/// `redis-cli`, installed with `redis-server` (Debian's `redis-tools`).
fn redis_cli() -> String {
    let server = redis_server();
    let cli = std::path::Path::new(server).with_file_name("redis-cli");
    if cli.is_file() {
        return cli.to_string_lossy().into_owned();
    }
    super::apt::on_path("redis-cli")
        .expect("redis-cli is needed by the cluster tests (it comes with redis-server)")
}

/// A Redis Cluster on 127.0.0.1: `masters` masters, each with `replicas`
/// replicas, made by `redis-cli --cluster create`; every node is killed on
/// drop and its files removed.
pub struct Cluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: std::path::PathBuf,
}

#[allow(dead_code)] // each test uses part of it
impl Cluster {
    pub async fn start(masters: usize, replicas: usize) -> Cluster {
        let count = masters * (1 + replicas);
        let dir = std::env::temp_dir().join(format!(
            "tower-jwt-auth-cluster-{}-{}",
            std::process::id(),
            cluster_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..count).map(|_| cluster_port()).collect();
        let mut children = Vec::new();
        for port in &ports {
            let child = Command::new(redis_server())
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(&dir)
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", redis_server()));
            children.push(Some(child));
        }
        for port in &ports {
            let mut up = false;
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_ok()
                {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(up, "cluster node {port} did not start");
        }
        let create = Command::new(redis_cli())
            .args(["--cluster", "create"])
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), create)
            .await
            .expect("redis-cli --cluster create within 30 s")
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster {
            ports,
            children,
            dir,
        };
        cluster.wait_ready(masters, replicas).await;
        cluster
    }

    /// Every node says `cluster_state:ok`, there are `masters` masters
    /// and each has its `replicas` online (bounded).
    async fn wait_ready(&self, masters: usize, replicas: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        'wait: loop {
            assert!(
                std::time::Instant::now() < deadline,
                "cluster not ready in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut seen_masters = 0;
            for port in &self.ports {
                let Ok(info) = self.query(*port, &["CLUSTER", "INFO"]).await else {
                    continue 'wait;
                };
                let Ok(repl) = self.query(*port, &["INFO", "replication"]).await else {
                    continue 'wait;
                };
                let online = repl.lines().filter(|l| l.contains("state=online")).count();
                if !info.contains("cluster_state:ok")
                    || repl.contains("role:master") && online < replicas
                    || repl.contains("role:slave") && !repl.contains("master_link_status:up")
                {
                    continue 'wait;
                }
                seen_masters += usize::from(repl.contains("role:master"));
            }
            if seen_masters == masters {
                return;
            }
        }
    }

    async fn query(&self, port: u16, args: &[&str]) -> Result<String, ::redis::RedisError> {
        let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let mut conn = tokio::time::timeout(
            Duration::from_secs(1),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| ::redis::RedisError::from(std::io::Error::other("timeout")))??;
        let mut cmd = ::redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await
    }

    /// The seed URLs, comma separated (what `RedisRevocation` takes).
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the master that holds `key` now.
    pub async fn master_of(&self, key: &str) -> usize {
        let live = self.children.iter().position(Option::is_some).unwrap();
        let port = self.ports[live];
        let slot: i64 = self
            .query(port, &["CLUSTER", "KEYSLOT", key])
            .await
            .map(|s| s.parse().unwrap())
            .unwrap_or_else(|_| panic!("keyslot"));
        let nodes = self.query(port, &["CLUSTER", "NODES"]).await.unwrap();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let p: u16 = f[1]
                .split(['@', ','])
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            for range in &f[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<i64>(), hi.parse::<i64>())
                    && (lo..=hi).contains(&slot)
                {
                    return self.ports.iter().position(|q| *q == p).unwrap();
                }
            }
        }
        panic!("no master holds slot {slot}");
    }

    /// Kills node `i` (its replica takes over after the node timeout).
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().await.unwrap();
            c.wait().await.unwrap();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
