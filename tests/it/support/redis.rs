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
    static FOUND: OnceLock<Result<String, String>> = OnceLock::new();
    match FOUND.get_or_init(find_or_install) {
        Ok(path) => path,
        Err(why) => panic!("{why}"),
    }
}

fn on_path(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

fn find_or_install() -> Result<String, String> {
    if let Some(path) = on_path("redis-server") {
        return Ok(path);
    }
    let hint = "redis-server is needed by the revocation and session tests and is not on the \
                PATH; install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew \
                install redis`) or run the tests as root on Debian so they install it";
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || on_path("apt-get").is_none() {
        return Err(hint.to_owned());
    }
    eprintln!("redis-server not found: installing Debian's redis-server package with apt-get");
    let install = || {
        std::process::Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "redis-server",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        // A fresh machine may have no package lists yet.
        let _ = std::process::Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null())
            .status();
        if !install() {
            return Err(format!("apt-get could not install redis-server; {hint}"));
        }
    }
    on_path("redis-server").ok_or_else(|| hint.to_owned())
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
