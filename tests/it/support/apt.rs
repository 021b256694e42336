//! Tools the tests run (nginx, chromium), found on the `PATH` or installed
//! with Debian's `apt-get` when running as root (a fresh CI machine or
//! container), as `redis.rs` does for redis-server; otherwise the test
//! fails naming what to install. Never a skip.

use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The path of `binary` on the `PATH`, if any.
pub fn on_path(binary: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

/// The path of `binary`, installing Debian's `package` first when it is
/// missing and the tests run as root; panics naming the package otherwise.
pub fn ensure(binary: &str, package: &str) -> String {
    // One install at a time (apt holds a lock; tests run in parallel).
    static APT: OnceLock<Mutex<()>> = OnceLock::new();
    let _one = APT.get_or_init(Default::default).lock();
    if let Some(path) = on_path(binary) {
        return path;
    }
    let hint = format!(
        "`{binary}` is needed by this test and is not on the PATH; install it (Debian/Ubuntu: \
         `apt-get install {package}`) or run the tests as root on Debian so they install it"
    );
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || on_path("apt-get").is_none() {
        panic!("{hint}");
    }
    eprintln!("{binary} not found: installing Debian's {package} package with apt-get");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null())
            .status();
        if !install() {
            panic!("apt-get could not install {package}; {hint}");
        }
    }
    on_path(binary).unwrap_or_else(|| panic!("{hint}"))
}
