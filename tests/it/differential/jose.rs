//! panva's `jose` 6 in one long-lived Node.js process
//! (`tests/oidc/differential.mjs`), fed one JSON line per question.
//!
//! The package is installed from tests/oidc/package-lock.json on first use;
//! the suite fails, never skips, when that cannot be done or `node` is missing.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};
use tower_jwt_auth::Algorithm;

use crate::differential::oracles::{self, AUDIENCE, ISSUER, SECRET, Verdict};

const INSTALL: &str = "run `(cd tests/oidc && npm ci --no-audit --no-fund)` (Node.js >= 20 and npm \
                       must be on the PATH; `.ci/run` installs them)";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

pub fn keys_dir() -> String {
    format!("{}/tests/data/keys", env!("CARGO_MANIFEST_DIR"))
}

/// `npm ci` once (per test process) when jose is not installed yet, as
/// tests/oidc_provider.rs does for the same package directory; fails, with
/// what to run, when npm is missing or the install fails.
fn install() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let done = DONE.get_or_init(|| {
        let dir = dir();
        let package = dir.join("node_modules/jose/package.json");
        if package.exists() {
            return Ok(());
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("jose is not installed and npm cannot run ({e}): {INSTALL}"))?;
        if !status.success() || !package.exists() {
            return Err(format!(
                "npm ci in {} failed ({status}): {INSTALL}",
                dir.display()
            ));
        }
        Ok(())
    });
    if let Err(e) = done {
        panic!("the differential suite needs the npm package jose: {e}");
    }
}

pub struct Jose {
    child: Child,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
    pub version: String,
}

impl Jose {
    /// Starts the process and gives it the key set and settings of
    /// `oracles` (used by `jwt`). Panics with what to run when node or
    /// jose is missing.
    pub fn start() -> Jose {
        install();
        let mut child = Command::new("node")
            .arg("differential.mjs")
            .current_dir(dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `node` ({e}): the differential suite needs it; {INSTALL}")
            });
        let input = BufWriter::new(child.stdin.take().unwrap());
        let output = BufReader::new(child.stdout.take().unwrap());
        let mut jose = Jose {
            child,
            input,
            output,
            version: String::new(),
        };
        let keys: Vec<Value> = Algorithm::ALL
            .iter()
            .map(|&alg| match oracles::pem(&keys_dir(), alg) {
                Some(pem) => json!({"kid": oracles::kid(alg), "alg": alg.as_str(), "spki": pem}),
                None => json!({
                    "kid": oracles::kid(alg),
                    "alg": alg.as_str(),
                    "secret": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, SECRET),
                }),
            })
            .collect();
        let ready =
            jose.ask(&json!({"op": "init", "keys": keys, "issuer": ISSUER, "audience": AUDIENCE}));
        assert_eq!(ready["ok"], true, "jose init: {ready}");
        jose.version = ready["version"].as_str().unwrap_or_default().to_owned();
        assert!(
            jose.version.starts_with("6."),
            "the differential suite compares with jose 6, found {}: {INSTALL}",
            jose.version
        );
        jose
    }

    /// One question, one answer.
    pub fn ask(&mut self, request: &Value) -> Value {
        self.ask_many(std::slice::from_ref(request)).pop().unwrap()
    }

    /// Several questions in one write, their answers in order. Batches stay
    /// small: node writes to a pipe synchronously, so answers must be read
    /// before the pipe (64 KiB) fills.
    pub fn ask_many(&mut self, requests: &[Value]) -> Vec<Value> {
        let mut answers = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(256) {
            for r in chunk {
                serde_json::to_writer(&mut self.input, r).unwrap();
                self.input.write_all(b"\n").unwrap();
            }
            self.input.flush().expect("the jose process died");
            for _ in chunk {
                let mut line = String::new();
                let n = self.output.read_line(&mut line).unwrap();
                assert!(n > 0, "the jose process exited (see its stderr above)");
                answers.push(serde_json::from_str(&line).unwrap());
            }
        }
        answers
    }

    /// The JWT verdicts for `(token, now, leeway)` triples.
    pub fn jwt_many(&mut self, cases: &[(&str, i64, i64)]) -> Vec<Verdict> {
        let requests: Vec<Value> = cases
            .iter()
            .map(|(t, now, leeway)| json!({"op": "jwt", "token": t, "now": now, "leeway": leeway}))
            .collect();
        self.ask_many(&requests).into_iter().map(verdict).collect()
    }
}

pub fn verdict(answer: Value) -> Verdict {
    if answer["ok"] == true {
        Verdict::Accept
    } else {
        Verdict::Refuse(format!("jose: {}", answer["err"].as_str().unwrap_or("?")))
    }
}

impl Drop for Jose {
    fn drop(&mut self) {
        // Closing stdin ends the read loop; then wait, so no zombie is left.
        let _ = self.input.flush();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
