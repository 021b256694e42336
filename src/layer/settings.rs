//! [`Settings`]: what the builder sets and the request path reads.

use std::sync::Arc;

use super::stages::{Binding, Revocation};
use crate::csrf::CsrfPolicy;
use crate::extract::TokenSource;
use crate::reject::{Extras, GrpcMode};
use crate::verify::TokenVerifier;

/// The default limit on a token's length: 16 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// Everything about the layer that does not depend on its claims type or
/// its rejection. Shared (`Arc`) by the layer's clones and services; the
/// builder edits a copy when it is shared.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) verifier: Arc<dyn TokenVerifier>,
    pub(super) sources: Arc<[TokenSource]>,
    pub(super) max_token_len: usize,
    pub(super) optional: bool,
    pub(super) grpc: GrpcMode,
    pub(super) csrf: CsrfPolicy,
    /// Paths the layer lets through untouched (health checks).
    pub(super) skip: Arc<[Box<str>]>,
    /// Step 4: the `cnf` rule, then the proof of each binding the layer
    /// verifies (DPoP).
    pub(super) binding: Binding,
    /// Step 5: the revocation store, if any.
    pub(super) revocation: Revocation,
    /// What challenges carry beyond `Bearer` (DPoP, `resource_metadata`).
    pub(super) extras: Option<Arc<Extras>>,
}

impl Settings {
    /// The defaults of [`JwtAuthLayer::new`](crate::JwtAuthLayer::new).
    pub(super) fn new(verifier: Arc<dyn TokenVerifier>) -> Self {
        Settings {
            verifier,
            sources: Arc::from([TokenSource::Bearer]),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            optional: false,
            grpc: GrpcMode::Auto,
            csrf: CsrfPolicy::new(),
            skip: Arc::from([]),
            binding: Default::default(),
            revocation: Default::default(),
            extras: None,
        }
    }
}

impl Settings {
    /// Step 1's lookup, the one [`JwtAuthLayer::token_in`](super::JwtAuthLayer::token_in)
    /// repeats: the sources in order, the `DPoP` scheme when a DPoP policy
    /// accepts it, the length limit.
    pub(super) fn find<'r>(
        &self,
        uri: &'r http::Uri,
        headers: &'r http::HeaderMap,
    ) -> Result<Option<crate::extract::Located<'r>>, crate::error::AuthError> {
        crate::extract::find_token(
            &self.sources,
            uri,
            headers,
            self.binding.accepts_dpop(),
            self.max_token_len,
        )
    }
}
