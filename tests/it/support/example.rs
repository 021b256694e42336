//! Runs an example as a process: builds it, starts it, and waits for its
//! `listening on <address>` line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Builds the example (a no-op when `cargo test` already did) and returns
/// its path next to this test's binary.
pub fn path(name: &str) -> PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--all-features", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "building example {name}");
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("examples").join(name)
}

/// A started example, killed on drop.
#[allow(dead_code)] // each test reads what it needs
pub struct Started {
    /// The address after `listening on`.
    pub addr: String,
    /// `NAME=value` of the `export NAME=value` lines printed before it.
    pub exports: Vec<(String, String)>,
    pub child: Child,
}

/// The value of the `export NAME=value` line named `name`.
#[allow(dead_code)] // not every test reads exports
pub fn export<'a>(exports: &'a [(String, String)], name: &str) -> &'a str {
    &exports
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} printed"))
        .1
}

/// Starts the example `name` with `BIND=127.0.0.1:0`; `setup` adds its
/// environment.
pub async fn start(name: &str, setup: impl FnOnce(&mut Command)) -> Started {
    let mut cmd = Command::new(path(name));
    cmd.env("BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    setup(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut exports = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.trim().to_owned();
            }
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                exports.push((k.to_owned(), v.to_owned()));
            }
        }
        panic!("example {name} exited before listening");
    })
    .await
    .unwrap_or_else(|_| panic!("no `listening on` line from example {name} within 30 s"));
    Started {
        addr,
        exports,
        child,
    }
}

/// Runs the example `name` (with `BIND=127.0.0.1:0`; `setup` adds its
/// environment) until it exits, for settings it must refuse at start; one
/// still running after 30 s is killed (and its output says so).
#[allow(dead_code)] // only some tests check refused settings
pub fn run_to_exit(
    name: &str,
    setup: impl FnOnce(&mut std::process::Command),
) -> std::process::Output {
    let mut cmd = std::process::Command::new(path(name));
    cmd.env("BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    setup(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    child.wait_with_output().unwrap()
}
