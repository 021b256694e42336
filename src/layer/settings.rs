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
    /// The sources `JwtAuthLayer::sources` set; read only through
    /// [`Settings::token_sources`] (so private to this file).
    sources: Arc<[TokenSource]>,
    /// The FAPI 2.0 preset (`JwtAuthLayer::fapi2`): set once, never
    /// cleared, applied by the methods below whatever was set before or
    /// after it. Private to this file, like the settings it rules.
    fapi2: bool,
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
            fapi2: false,
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

    /// Where step 1 looks for the token, in order: the sources set, or
    /// with the FAPI 2.0 preset the `Authorization` header alone (§5.3.4),
    /// whatever `sources` set before or after it. The one place step 1
    /// (and the layer's `Debug`) reads the sources from.
    pub(super) fn token_sources(&self) -> &[TokenSource] {
        const HEADER_ONLY: &[TokenSource] = &[TokenSource::Bearer];
        match self.fapi2 {
            true => HEADER_ONLY,
            false => &self.sources,
        }
    }

    /// Sets the sources (kept, but not read, under the FAPI 2.0 preset).
    pub(super) fn set_sources(&mut self, sources: Vec<TokenSource>) {
        self.sources = Arc::from(sources);
    }

    /// The FAPI 2.0 preset: tokens from the `Authorization` header only
    /// ([`token_sources`](Settings::token_sources)), sender-constrained
    /// tokens only, DPoP proofs of the profile's algorithms only (the
    /// policy set before, narrowed now; one set after, by
    /// [`set_dpop`](Settings::set_dpop)).
    pub(super) fn set_fapi2(&mut self) {
        self.fapi2 = true;
        // Nothing sets it back to false.
        self.binding.constrained = true;
        #[cfg(feature = "dpop")]
        if let Some(policy) = self.binding.dpop.policy().cloned() {
            self.set_dpop(policy);
        }
    }

    /// Sets the DPoP policy, and what challenges say of it; under the
    /// FAPI 2.0 preset, narrowed to the profile's algorithms (§5.4), so
    /// that the proofs accepted and the `algs` advertised are only those.
    #[cfg(feature = "dpop")]
    pub(super) fn set_dpop(&mut self, policy: crate::dpop::DpopPolicy) {
        use crate::dpop::DpopMode;
        let policy = match self.fapi2 {
            true => policy.only(&crate::algorithm::FAPI2),
            false => policy,
        };
        let algs = policy.algs_param();
        let mode = policy.mode();
        self.binding.dpop = super::stages::Dpop::new(policy);
        self.edit_extras(|e| {
            e.dpop_algs = (mode != DpopMode::BearerOnly).then(|| algs.into());
            e.no_bearer = mode == DpopMode::Required;
        });
    }

    /// Edits what challenges carry (a copy, when it is shared).
    pub(super) fn edit_extras(&mut self, f: impl FnOnce(&mut Extras)) {
        let mut extras = self.extras.as_deref().cloned().unwrap_or_default();
        f(&mut extras);
        self.extras = Some(Arc::new(extras));
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
            self.token_sources(),
            uri,
            headers,
            self.binding.accepts_dpop(),
            self.max_token_len,
        )
    }
}
