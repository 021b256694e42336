//! [`JwksStatus`]: what a cache knows about its fetches.

use std::time::SystemTime;

/// What a [`JwksCache`](crate::jwks::JwksCache) knows about its last fetches, for readiness probes.
#[derive(Debug, Clone)]
pub struct JwksStatus {
    pub(super) last_success: Option<SystemTime>,
    pub(super) key_count: usize,
    pub(super) last_error: Option<String>,
    pub(super) consecutive_failures: u32,
    pub(super) fetches: u64,
    pub(super) skipped: Vec<String>,
    pub(super) usable: bool,
}

impl JwksStatus {
    /// When keys were last fetched successfully.
    pub fn last_success(&self) -> Option<SystemTime> {
        self.last_success
    }
    /// Number of usable keys cached.
    pub fn key_count(&self) -> usize {
        self.key_count
    }
    /// The error of the last fetch, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
    /// Fetches failed in a row since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
    /// Requests sent to the key-set URL so far, whatever became of them
    /// (discovery documents are not counted).
    pub fn fetches(&self) -> u64 {
        self.fetches
    }
    /// Why members of the last key set were skipped.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
    /// Whether cached keys are usable now (fetched, and not older than the maximum stale age).
    pub fn is_ready(&self) -> bool {
        self.usable
    }
}
