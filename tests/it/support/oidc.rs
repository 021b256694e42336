//! The `tests/oidc` provider (the npm package `oidc-provider`, OpenID
//! Certified, not written by this project), started from
//! `tests/oidc/provider.mjs` on 127.0.0.1 and port 0. Needs `node` and
//! `npm` (the packages are installed from `tests/oidc/package-lock.json`
//! with `npm ci` when missing).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// `npm ci` once if the packages are not there yet.
fn install() {
    let dir = dir();
    if dir.join("node_modules/oidc-provider/package.json").exists()
        && dir
            .join("node_modules/@modelcontextprotocol/sdk/package.json")
            .exists()
    {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("npm is needed for the oidc-provider tests (install Node.js >= 20)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

#[allow(dead_code)] // each test reads what it needs
pub struct Provider {
    pub issuer: String,
    /// The signing kid of each algorithm.
    pub kids: Value,
    /// The ES256 private key (PKCS#8 PEM) and kid of the private_key_jwt
    /// client `api-introspector-jwt`.
    pub client_key: (String, String),
    // Dropping the child closes its stdin: the provider exits.
    _child: Child,
}

pub async fn start() -> Provider {
    start_with(false).await
}

/// The provider with `OIDC_MCP=1`: MCP resources, the client `mcp-client`,
/// and the token exchange grant (see `tests/oidc/provider.mjs`).
#[allow(dead_code)] // only the MCP and exchange tests
pub async fn start_mcp() -> Provider {
    start_with(true).await
}

async fn start_with(mcp: bool) -> Provider {
    install();
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .env("OIDC_MCP", if mcp { "1" } else { "0" })
        .current_dir(dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed for the oidc-provider tests");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(json) = line.strip_prefix("READY ") {
                return serde_json::from_str::<Value>(json).unwrap();
            }
        }
        panic!("oidc-provider exited before it was ready");
    })
    .await
    .expect("oidc-provider did not start within 60 s");
    // Keep reading: the provider logs notices later, and a closed stdout
    // would end it (EPIPE).
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("oidc-provider: {line}");
        }
    });
    Provider {
        issuer: ready["issuer"].as_str().unwrap().to_owned(),
        kids: ready["kids"].clone(),
        client_key: (
            ready["client_key"]["pem"].as_str().unwrap().to_owned(),
            ready["client_key"]["kid"].as_str().unwrap().to_owned(),
        ),
        _child: child,
    }
}

fn basic(client: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{client}:secret-of-{client}"))
    )
}

#[allow(dead_code)] // each test uses what it needs
impl Provider {
    /// Rotates the signing keys (`retire`: the previous ones are removed).
    pub async fn rotate(&mut self, http: &reqwest::Client, retire: bool) {
        let url = format!(
            "{}/__rotate{}",
            self.issuer,
            if retire { "?retire=1" } else { "" }
        );
        let res = http.post(url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        self.kids = json["kids"].clone();
    }

    /// An access token for `resource` from the token endpoint
    /// (client_credentials) for `client` (`client-rs256`, ...).
    pub async fn token(&self, http: &reqwest::Client, client: &str, resource: &str) -> String {
        self.token_with(http, client, resource, None).await
    }

    /// As [`token`](Self::token), with a `DPoP` proof for `POST {issuer}/token`:
    /// the token is bound to the proof's key (`cnf.jkt`).
    pub async fn token_with(
        &self,
        http: &reqwest::Client,
        client: &str,
        resource: &str,
        dpop: Option<&str>,
    ) -> String {
        let body = format!(
            "grant_type=client_credentials&scope=api%3Aread&resource={}",
            resource.replace(':', "%3A")
        );
        let mut req = http
            .post(format!("{}/token", self.issuer))
            .header("authorization", basic(client))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(proof) = dpop {
            req = req.header("dpop", proof);
        }
        let res = req.body(body).send().await.unwrap();
        let status = res.status();
        let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        assert_eq!(status, 200, "token endpoint for {client}: {json}");
        json["access_token"].as_str().unwrap().to_owned()
    }

    /// A refresh token of `client-web` (offline_access) used once at the
    /// token endpoint (the refresh_token grant, with the resource
    /// `resource`): the access token and the new refresh token it answers.
    pub async fn refreshed(&self, http: &reqwest::Client, resource: &str) -> (String, String) {
        let res = http
            .post(format!("{}/__grant", self.issuer))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        let granted = json["refresh_token"].as_str().unwrap();
        let res = http
            .post(format!("{}/token", self.issuer))
            .header("authorization", basic("client-web"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={granted}&resource={}",
                resource.replace(':', "%3A")
            ))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        assert_eq!(status, 200, "refresh_token grant: {json}");
        let refresh = json["refresh_token"].as_str().unwrap();
        assert_ne!(refresh, granted, "rotated");
        (
            json["access_token"].as_str().unwrap().to_owned(),
            refresh.to_owned(),
        )
    }

    /// Revokes `token` (RFC 7009) as `client`, the client it was issued to.
    pub async fn revoke(&self, http: &reqwest::Client, client: &str, token: &str) {
        let res = http
            .post(format!("{}/token/revocation", self.issuer))
            .header("authorization", basic(client))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&token_type_hint=access_token"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "revocation: {}",
            res.text().await.unwrap()
        );
    }
}
