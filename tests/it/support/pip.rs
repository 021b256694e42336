//! Python tools the tests run, installed with pip from PyPI when missing
//! (as the npm tools of tests/oidc are installed with npm): the OpenAPI
//! validator `openapi-spec-validator`. Never a skip: without python3 and
//! pip the test fails saying what to install.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The version the tests validate with.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";

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
    let pip = |extra: &[&str]| {
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(extra)
            .arg(VALIDATOR)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // A Debian python3 refuses system-wide installs (PEP 668) unless told.
    if !pip(&[]) && !pip(&["--break-system-packages"]) {
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
