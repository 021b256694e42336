//! A real `redis-server` for tests, on 127.0.0.1 and a free port.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A `redis-server` on a free loopback port, killed on drop.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

#[allow(dead_code)] // each test uses part of it
impl Redis {
    async fn start_on(port: u16) -> Child {
        let child = Command::new("redis-server")
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
            .expect("redis-server is needed (Debian package redis-server; .ci/run installs it)");
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
