//! A real WebSocket client: Node's own `WebSocket` (the browser API) running
//! `tests/data/ws/client.mjs`, which offers the token as a Kubernetes
//! subprotocol entry next to `echo`, sends `hello`, and prints what it saw
//! when the socket closes. [`session`] keeps it running: the test waits
//! for the open socket, acts, then reads the close.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Runs the client against `url` with `token` until the socket closes.
pub async fn node(url: &str, token: &str) -> Value {
    node_with(url, token, "raw").await
}

/// As [`node`], with the token base64url-encoded after the prefix, as
/// Kubernetes' own clients send it.
pub async fn node_encoded(url: &str, token: &str) -> Value {
    node_with(url, token, "encoded").await
}

/// `node` with the browser `WebSocket`, and the client script.
fn command() -> Command {
    let node = super::apt::ensure("node", "nodejs");
    // Node 20 has the browser WebSocket behind a flag; 22 on, by default.
    let has_websocket = std::process::Command::new(&node)
        .args([
            "-e",
            "process.exit(typeof WebSocket === 'undefined' ? 1 : 0)",
        ])
        .status()
        .unwrap()
        .success();
    let mut cmd = Command::new(&node);
    if !has_websocket {
        cmd.arg("--experimental-websocket");
    }
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ws/client.mjs"
    ));
    cmd
}

async fn node_with(url: &str, token: &str, form: &str) -> Value {
    let out = command()
        .arg(url)
        .arg(token)
        .arg(form)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// A client left running (killed on drop).
pub struct Session {
    lines: Lines<BufReader<ChildStdout>>,
    _child: Child,
}

/// Starts the client against `url` with `token` (`form`: `raw` or
/// `encoded`, as [`node`] and [`node_encoded`]); after `hello` it sends a
/// message every `every` while the socket is open (`Duration::ZERO`:
/// none).
pub fn session(url: &str, token: &str, form: &str, every: Duration) -> Session {
    let mut child = command()
        .arg(url)
        .arg(token)
        .arg(form)
        .arg(every.as_millis().to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    Session {
        lines: BufReader::new(stdout).lines(),
        _child: child,
    }
}

impl Session {
    /// The next line the client prints, within `within`.
    async fn line(&mut self, within: Duration, what: &str) -> Value {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the client printed no {what} line within {within:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the client exited before its {what} line"));
        serde_json::from_str(&line).unwrap()
    }

    /// Waits (10 s at most) until the socket is open: `{"open": true,
    /// "protocol": ...}`.
    pub async fn opened(&mut self) -> Value {
        let seen = self.line(Duration::from_secs(10), "open").await;
        assert_eq!(seen["open"], true, "{seen}");
        seen
    }

    /// What the client saw when the socket closed, within `within` (a
    /// socket still open then fails the test).
    pub async fn closed(mut self, within: Duration) -> Value {
        self.line(within, "close").await
    }
}
