//! Time, read in one place: the [`Clock`] a verifier is given.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::AuthError;

/// Where a [`Verifier`](crate::Verifier) reads the current time.
///
/// The default is the system clock. Give another to test expiry without
/// sleeping, or to read time from a trusted source. A clock that reads a
/// time before the Unix epoch counts as failed: every token is then refused
/// with [`AuthError::ClockUnavailable`], never accepted as if it were 1970.
/// Any `Fn() -> SystemTime` is a clock.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_jwt_auth::{Algorithm, Key, Verifier};
///
/// let secs = Arc::new(AtomicU64::new(1_700_000_000));
/// let now = secs.clone();
/// let verifier = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .any_audience()
///     .clock(move || UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst)))
///     .build()?;
/// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
/// #     &serde_json::json!({"exp": 1_700_000_060u64}),
/// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
/// assert!(verifier.verify::<tower_jwt_auth::JsonClaims>(&token).is_ok());
/// secs.fetch_add(3600, Ordering::SeqCst); // an hour later
/// assert!(verifier.verify::<tower_jwt_auth::JsonClaims>(&token).is_err());
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl<F> Clock for F
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn now(&self) -> SystemTime {
        self()
    }
}

/// The operating system's clock ([`SystemTime::now`]), the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Seconds since the Unix epoch, or [`AuthError::ClockUnavailable`].
pub(crate) fn unix_secs(clock: &dyn Clock) -> Result<f64, AuthError> {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .map_err(|_| AuthError::ClockUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn before_the_epoch_is_a_failure() {
        let broken = || UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(
            unix_secs(&broken),
            Err(AuthError::ClockUnavailable)
        ));
        assert!(unix_secs(&SystemClock).unwrap() > 1.7e9);
    }
}
