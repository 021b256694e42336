//! A real WebSocket client: Node's own `WebSocket` (the browser API) running
//! `tests/data/ws/client.mjs`, which offers the token as a Kubernetes
//! subprotocol entry next to `echo`, sends `hello`, and prints what it saw
//! when the socket closes.

use serde_json::Value;
use tokio::process::Command;

/// Runs the client against `url` with `token` until the socket closes.
pub async fn node(url: &str, token: &str) -> Value {
    node_with(url, token, "raw").await
}

/// As [`node`], with the token base64url-encoded after the prefix, as
/// Kubernetes' own clients send it.
pub async fn node_encoded(url: &str, token: &str) -> Value {
    node_with(url, token, "encoded").await
}

async fn node_with(url: &str, token: &str, form: &str) -> Value {
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ws/client.mjs");
    let out = cmd
        .arg(script)
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
