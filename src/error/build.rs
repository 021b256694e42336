//! Setup mistakes: [`BuildError`], reported when keys, verifiers and
//! layers are built, never at request time.

use std::fmt;

/// A setup mistake, reported when keys or the verifier are built, never at
/// request time.
///
/// ```
/// use tower_jwt_auth::{Algorithm, Key};
///
/// let err = Key::hmac(Algorithm::HS256, b"too short").unwrap_err();
/// assert!(err.to_string().contains("at least 32 bytes"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A key could not be parsed or does not fit its algorithm.
    InvalidKey(String),
    /// The verifier has no keys.
    NoKeys,
    /// A configuration value is not acceptable; [`ConfigError::setting`]
    /// names the setting.
    InvalidConfig(ConfigError),
}

/// Which setting of a builder is not acceptable, and why.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, BuildError, Key, Verifier};
///
/// let err = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .any_audience()
///     .leeway(Duration::from_secs(3600))
///     .build()
///     .unwrap_err();
/// match err {
///     BuildError::InvalidConfig(e) => assert_eq!(e.setting(), "leeway"),
///     other => panic!("{other}"),
/// }
/// # Ok::<(), BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    /// The setting, named as its builder method is (`leeway`, `audience`,
    /// `algorithms`, `keys`, `issuers`, `url`, `timeout`, `max_age_bounds`,
    /// `client`, `algorithm`, `client_credentials`; for DPoP and resource
    /// metadata `base_url`, `window`, `nonce`, `resource`).
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

impl BuildError {
    pub(crate) fn config(setting: &'static str, message: impl Into<String>) -> BuildError {
        let message = message.into();
        BuildError::InvalidConfig(ConfigError {
            setting,
            // A URL it quotes, without its password.
            message: crate::text::redact_url(&message).into_owned(),
        })
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::InvalidKey(why) => write!(f, "invalid key: {why}"),
            BuildError::NoKeys => f.write_str(
                "the verifier has no keys; add at least one with VerifierBuilder::key or ::jwks",
            ),
            BuildError::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for BuildError {}
