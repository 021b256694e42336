//! Shared stores behind the layer's steps: one Redis connection with its
//! limits, used by revocation (and by anything else that keeps state in
//! Redis), and the time-to-live bound every store applies.

#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::time::Duration;

/// The longest time-to-live a store keeps anything: longer settings
/// (`Duration::MAX` included) are treated as this, never a panic.
#[cfg_attr(not(any(feature = "revocation", feature = "dpop")), allow(dead_code))]
pub(crate) const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A time-to-live no longer than [`MAX_TTL`].
#[cfg_attr(not(any(feature = "revocation", feature = "dpop")), allow(dead_code))]
pub(crate) fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.min(MAX_TTL)
}
