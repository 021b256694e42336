//! Runs the demo example as a process and drives it over HTTP on 127.0.0.1.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Builds the example (a no-op when `cargo test` already did) and returns
/// its path next to this test's binary.
fn example(name: &str) -> PathBuf {
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

/// One HTTP/1.1 request; returns the status code and the body.
async fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn demo_prints_a_token_that_works() {
    let mut child = Command::new(example("demo"))
        .env("BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut token = None;
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(a) = line.strip_prefix("listening on http://") {
                addr = Some(a.to_owned());
            }
            if let Some(t) = line.strip_prefix("token: ") {
                token = Some(t.to_owned());
                break;
            }
        }
    })
    .await
    .expect("the demo printed its token in time");
    let addr = addr.expect("listening line");
    let token = token.expect("token line");

    let (status, body) = get(&addr, "/me", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sub\":\"demo-user\""), "{body}");
    let (status, _) = get(&addr, "/me", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&addr, "/me", Some("a.b.c")).await;
    assert_eq!(status, 401);
    let (status, _) = get(&addr, "/", None).await;
    assert_eq!(status, 200);
    child.kill().await.unwrap();
}
