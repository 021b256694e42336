//! The steps of the request path that a feature adds, as stage types with
//! a no-op version when their feature is off, so that the path itself
//! (`service.rs`) reads the same in every build:
//!
//! - [`Cache`], step 2: the verified-token cache (feature `cache`);
//! - [`Binding`], step 4: sender binding, the `cnf` rule of
//!   [`crate::bind`] for every token, then the proof of each binding the
//!   layer verifies: [`Mtls`] (feature `mtls`), [`Dpop`] (feature `dpop`);
//! - [`Revocation`], step 5: the revocation store (feature `revocation`).
//!
//! A stage that may need I/O answers in two halves: `now` decides without
//! waiting when it can ([`Now::Ready`]) or says what it waits for
//! ([`Now::Wait`]); the path then awaits the stage's `later` with that.
//!
//! Adding a binding method takes four edits, all in this file and
//! `crate::bind`: a stage type like [`Mtls`] (and its no-op), a field of
//! [`Binding`], its flag in `bind::Verifies` (set in
//! [`Binding::verifies`]), and its check in [`Binding::now`], before the
//! DPoP check (whose replay-store call must stay last).

use std::borrow::Cow;

use http::{Extensions, HeaderMap, Method, Request, Uri};
use serde::de::DeserializeOwned;

use crate::bind;
use crate::claims::{Claims, TokenClaims};
use crate::error::AuthError;
use crate::verify::{TokenVerifier, Verified};

/// What a request presents to the steps: its method, URI and headers, and
/// from step 1 on the token and whether it came with the `DPoP` scheme.
#[derive(Clone)]
pub(super) struct Presented<'r> {
    pub(super) method: &'r Method,
    pub(super) uri: &'r Uri,
    pub(super) headers: &'r HeaderMap,
    /// The request extensions (the client certificate, for mTLS).
    #[cfg_attr(not(feature = "mtls"), allow(dead_code))]
    pub(super) extensions: &'r Extensions,
    /// The token (empty until step 1 found it): borrowed from the request,
    /// or owned when its source decoded it.
    pub(super) token: Cow<'r, str>,
    /// Whether the token came as `Authorization: DPoP`.
    pub(super) dpop: bool,
}

impl<'r> Presented<'r> {
    /// The parts of `req`, before a token is found.
    pub(super) fn of<B>(req: &'r Request<B>) -> Self {
        Presented {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
            token: Cow::Borrowed(""),
            dpop: false,
        }
    }
}

/// A stage's answer: decided now, or waiting for `W` (what its `later`
/// needs).
pub(super) enum Now<W> {
    /// Decided without waiting.
    Ready(Result<(), AuthError>),
    /// The stage needs I/O: await its `later` with this. (Only the DPoP
    /// and revocation stages ever wait; the variant is in every feature
    /// set, so `service.rs` matches it without `cfg`.)
    #[cfg_attr(not(any(feature = "dpop", feature = "revocation")), allow(dead_code))]
    Wait(W),
}

// ---------------------------------------------------------------------------
// Step 2: the verified-token cache.

/// Step 2, the verified-token cache: its limits and the store, made on
/// first use (where the claims type's bounds are known). Clones share the
/// store.
#[cfg(feature = "cache")]
pub(super) struct Cache<C> {
    slot: Option<CacheSlot<C>>,
}

#[cfg(feature = "cache")]
struct CacheSlot<C> {
    config: crate::cache::TokenCache,
    store: std::sync::Arc<std::sync::OnceLock<crate::cache::Store<C>>>,
}

#[cfg(feature = "cache")]
impl<C> Cache<C> {
    /// A cache with `config`, its store made on first use.
    pub(super) fn new(config: crate::cache::TokenCache) -> Self {
        Cache {
            slot: Some(CacheSlot {
                config,
                store: Default::default(),
            }),
        }
    }

    /// The same limits, a new store for claims of type `C2`.
    pub(super) fn retype<C2>(&self) -> Cache<C2> {
        match &self.slot {
            Some(slot) => Cache::new(slot.config),
            None => Cache::default(),
        }
    }
}

#[cfg(feature = "cache")]
impl<C: Send + Sync + 'static> Cache<C> {
    /// The store, if the layer caches.
    pub(super) fn store(&self) -> Option<&crate::cache::Store<C>> {
        let slot = self.slot.as_ref()?;
        Some(slot.store.get_or_init(|| slot.config.build()))
    }
}

#[cfg(feature = "cache")]
impl<C: DeserializeOwned + Send + Sync + 'static> Cache<C> {
    /// The claims of `token` if it verified before and may answer again.
    pub(super) fn get(&self, token: &str, verifier: &dyn TokenVerifier) -> Option<Claims<C>> {
        self.store()?.get(token, verifier)
    }

    /// The claims in the layer's type, kept for the next request.
    pub(super) fn keep(&self, token: &str, verified: Verified) -> Result<Claims<C>, AuthError> {
        let Some(store) = self.store() else {
            return verified.into_layer_claims::<C>();
        };
        let (claims, again) = verified.into_kept::<C>()?;
        store.insert(token, &claims, again);
        Ok(claims)
    }
}

#[cfg(feature = "cache")]
impl<C> Clone for Cache<C> {
    fn clone(&self) -> Self {
        Cache {
            slot: self.slot.as_ref().map(|slot| CacheSlot {
                config: slot.config,
                store: std::sync::Arc::clone(&slot.store),
            }),
        }
    }
}

#[cfg(feature = "cache")]
impl<C> Default for Cache<C> {
    fn default() -> Self {
        Cache { slot: None }
    }
}

/// Step 2 without the `cache` feature: nothing is cached.
#[cfg(not(feature = "cache"))]
pub(super) struct Cache<C>(std::marker::PhantomData<fn() -> C>);

#[cfg(not(feature = "cache"))]
impl<C> Cache<C> {
    pub(super) fn retype<C2>(&self) -> Cache<C2> {
        Cache::default()
    }
}

#[cfg(not(feature = "cache"))]
impl<C: DeserializeOwned + Send + Sync + 'static> Cache<C> {
    pub(super) fn get(&self, _token: &str, _verifier: &dyn TokenVerifier) -> Option<Claims<C>> {
        None
    }

    pub(super) fn keep(&self, _token: &str, verified: Verified) -> Result<Claims<C>, AuthError> {
        verified.into_layer_claims::<C>()
    }
}

#[cfg(not(feature = "cache"))]
impl<C> Clone for Cache<C> {
    fn clone(&self) -> Self {
        Cache::default()
    }
}

#[cfg(not(feature = "cache"))]
impl<C> Default for Cache<C> {
    fn default() -> Self {
        Cache(std::marker::PhantomData)
    }
}

// ---------------------------------------------------------------------------
// Step 4: sender binding.

/// Step 4, sender binding: the `cnf` rule ([`crate::bind::check`], for
/// every token, whichever way it verified), then the proof of each binding
/// method the layer verifies.
#[derive(Clone, Default)]
pub(super) struct Binding {
    /// Tokens bound by a method the layer does not verify pass anyway
    /// (`JwtAuthLayer::accept_unverified_binding`).
    pub(super) unverified: bool,
    /// Only sender-constrained tokens pass: bound by a method the layer
    /// verifies (`JwtAuthLayer::require_sender_constrained`).
    pub(super) constrained: bool,
    /// Client certificates (`cnf.x5t#S256`).
    pub(super) mtls: Mtls,
    /// DPoP proofs (`cnf.jkt`).
    pub(super) dpop: Dpop,
}

impl Binding {
    /// Whether `Authorization: DPoP` is read (step 1).
    pub(super) fn accepts_dpop(&self) -> bool {
        self.dpop.accepts_scheme()
    }

    /// The binding methods this layer verifies.
    fn verifies(&self) -> bind::Verifies {
        bind::Verifies {
            dpop: self.dpop.verifies(),
            mtls: self.mtls.verifies(),
        }
    }

    /// The `cnf` rule, then each method's proof, as far as they answer
    /// without waiting (only the DPoP replay store may wait).
    pub(super) fn now(
        &self,
        req: &Presented<'_>,
        token: &TokenClaims,
        verifier: &dyn TokenVerifier,
    ) -> Now<Replay> {
        let bound = token.registered().bound();
        let verifies = self.verifies();
        let methods = match self.unverified {
            false => bind::check(bound, token.json(), verifies),
            // The opt-out skips the `cnf` rule, not the checks of the
            // methods the layer verifies (which take what `bind::read`,
            // the one reader of `cnf`, read).
            true if verifies.mtls || verifies.dpop || self.constrained => {
                bind::read(bound, token.json())
            }
            true => Ok(bind::Methods::default()),
        };
        let methods = match methods {
            Ok(methods) => methods,
            Err(e) => return Now::Ready(Err(e)),
        };
        if self.constrained && !methods.constrained(verifies) {
            return Now::Ready(Err(AuthError::SenderConstraintRequired));
        }
        if let Err(e) = self.mtls.check(req, methods.x5t()) {
            return Now::Ready(Err(e));
        }
        self.dpop.now(req, methods.jkt(), verifier)
    }

    /// What [`now`](Binding::now) waited for.
    pub(super) async fn later(&self, replay: Replay) -> Result<(), AuthError> {
        Dpop::later(replay).await
    }
}

/// Client certificates (RFC 8705 §3, feature `mtls`): the layer's
/// policy, if any.
#[cfg(feature = "mtls")]
#[derive(Clone, Default)]
pub(super) struct Mtls(Option<crate::mtls::MtlsPolicy>);

#[cfg(feature = "mtls")]
impl Mtls {
    pub(super) fn new(policy: crate::mtls::MtlsPolicy) -> Self {
        Mtls(Some(policy))
    }

    fn verifies(&self) -> bool {
        self.0.as_ref().is_some_and(|p| p.verifies())
    }

    /// The token's thumbprint against the request's certificate.
    fn check(&self, req: &Presented<'_>, x5t: Option<&str>) -> Result<(), AuthError> {
        match &self.0 {
            Some(policy) => policy.check(x5t, req.headers, req.extensions),
            None => Ok(()),
        }
    }
}

/// mTLS without the `mtls` feature: no certificate binding is verified
/// (so a `cnf.x5t#S256` token is refused by the `cnf` rule).
#[cfg(not(feature = "mtls"))]
#[derive(Clone, Default)]
pub(super) struct Mtls;

#[cfg(not(feature = "mtls"))]
impl Mtls {
    fn verifies(&self) -> bool {
        false
    }

    fn check(&self, _: &Presented<'_>, _: Option<&str>) -> Result<(), AuthError> {
        Ok(())
    }
}

/// A DPoP replay check still to make (the last of the binding checks).
#[cfg(feature = "dpop")]
pub(super) type Replay = crate::dpop::PendingReplay;

/// DPoP proofs (RFC 9449, feature `dpop`): the layer's policy, if any.
#[cfg(feature = "dpop")]
#[derive(Clone, Default)]
pub(super) struct Dpop(Option<crate::dpop::DpopPolicy>);

#[cfg(feature = "dpop")]
impl Dpop {
    pub(super) fn new(policy: crate::dpop::DpopPolicy) -> Self {
        Dpop(Some(policy))
    }

    /// The policy, if the layer has one.
    pub(super) fn policy(&self) -> Option<&crate::dpop::DpopPolicy> {
        self.0.as_ref()
    }

    fn accepts_scheme(&self) -> bool {
        (self.0.as_ref()).is_some_and(|p| p.mode() != crate::dpop::DpopMode::BearerOnly)
    }

    fn verifies(&self) -> bool {
        self.0.is_some()
    }

    /// The scheme against the policy, then the proof; its `jti` in the
    /// replay store last.
    fn now(
        &self,
        req: &Presented<'_>,
        jkt: Option<&str>,
        verifier: &dyn TokenVerifier,
    ) -> Now<Replay> {
        let Some(policy) = &self.0 else {
            return Now::Ready(Ok(()));
        };
        let checked = verifier.now().and_then(|now| {
            let parts = (req.method, req.uri, req.headers);
            crate::dpop::check(policy, req.dpop, &req.token, jkt, parts, now)
        });
        match checked {
            Err(e) => Now::Ready(Err(e)),
            Ok(None) => Now::Ready(Ok(())),
            Ok(Some(replay)) => match replay.now() {
                Some(answer) => Now::Ready(answer),
                None => Now::Wait(replay),
            },
        }
    }

    async fn later(replay: Replay) -> Result<(), AuthError> {
        replay.check().await
    }
}

/// Without the `dpop` feature there is never a replay check to make.
#[cfg(not(feature = "dpop"))]
pub(super) type Replay = std::convert::Infallible;

/// DPoP without the `dpop` feature: `Authorization: DPoP` is not read and
/// no proof is verified (so a `cnf.jkt` token is refused by the `cnf`
/// rule).
#[cfg(not(feature = "dpop"))]
#[derive(Clone, Default)]
pub(super) struct Dpop;

#[cfg(not(feature = "dpop"))]
impl Dpop {
    fn accepts_scheme(&self) -> bool {
        false
    }

    fn verifies(&self) -> bool {
        false
    }

    fn now(&self, _: &Presented<'_>, _: Option<&str>, _: &dyn TokenVerifier) -> Now<Replay> {
        Now::Ready(Ok(()))
    }

    async fn later(replay: Replay) -> Result<(), AuthError> {
        match replay {}
    }
}

// ---------------------------------------------------------------------------
// Step 5: revocation.

/// What [`Revocation::later`] needs beyond the claims: nothing.
#[cfg(feature = "revocation")]
pub(super) type Recheck = ();

/// Step 5, the revocation store (feature `revocation`), if the layer has
/// one.
#[cfg(feature = "revocation")]
#[derive(Clone, Default)]
pub(super) struct Revocation(Option<crate::revocation::Revoker>);

#[cfg(feature = "revocation")]
impl Revocation {
    pub(super) fn new(revoker: crate::revocation::Revoker) -> Self {
        Revocation(Some(revoker))
    }

    /// Refuses tokens without `jti` (with a store set).
    pub(super) fn require_jti(self) -> Self {
        Revocation(self.0.map(crate::revocation::Revoker::require_jti))
    }

    /// The store's answer, if it has one without I/O.
    pub(super) fn now(&self, token: &TokenClaims) -> Now<Recheck> {
        match self.0.as_ref().map(|r| r.check_now(token)) {
            None => Now::Ready(Ok(())),
            Some(Some(answer)) => Now::Ready(answer),
            Some(None) => Now::Wait(()),
        }
    }

    /// The store's answer, with I/O.
    pub(super) async fn later(&self, (): Recheck, token: &TokenClaims) -> Result<(), AuthError> {
        match &self.0 {
            Some(revoker) => revoker.check(token).await,
            None => Ok(()),
        }
    }
}

/// Without the `revocation` feature there is never a store to ask.
#[cfg(not(feature = "revocation"))]
pub(super) type Recheck = std::convert::Infallible;

/// Step 5 without the `revocation` feature: nothing is revoked.
#[cfg(not(feature = "revocation"))]
#[derive(Clone, Default)]
pub(super) struct Revocation;

#[cfg(not(feature = "revocation"))]
impl Revocation {
    pub(super) fn now(&self, _: &TokenClaims) -> Now<Recheck> {
        Now::Ready(Ok(()))
    }

    pub(super) async fn later(&self, recheck: Recheck, _: &TokenClaims) -> Result<(), AuthError> {
        match recheck {}
    }
}
