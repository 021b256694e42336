//! DPoP, RFC 9449: access tokens bound to a key the client holds, proven
//! on every request (feature `dpop`).
//!
//! A client sends `Authorization: DPoP <token>` and a `DPoP` header with a
//! proof: a small JWS signed by its key, naming the request (`htm`, `htu`),
//! the time (`iat`), a unique `jti` and the token's hash (`ath`). The token
//! says which key it is bound to (`cnf.jkt`, the key's RFC 7638
//! thumbprint). Configure it with [`JwtAuthLayer::dpop`](crate::JwtAuthLayer::dpop)
//! and a [`DpopPolicy`]; the layer checks the proof after the token
//! verified and before the revocation store. The check costs one signature
//! verification (the proof's) and one thumbprint.
//!
#![doc = include_str!("../docs/dpop.md")]

mod nonce;
mod proof;
#[cfg(feature = "redis")]
mod redis;
mod replay;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Uri};

use crate::algorithm::{Algorithm, Family};
use crate::error::{AuthError, BuildError};

#[cfg(feature = "redis")]
pub use self::redis::RedisReplayStore;
pub use replay::{DEFAULT_REPLAY_CAPACITY, MemoryReplayStore, ReplayStore};

/// The default `iat` window: a proof 5 minutes old or 5 minutes ahead is refused.
pub const DEFAULT_PROOF_WINDOW: Duration = Duration::from_secs(300);
/// The longest `iat` window a policy accepts: one hour.
pub const MAX_PROOF_WINDOW: Duration = Duration::from_secs(3600);
/// The default nonce rotation period (with [`DpopPolicyBuilder::nonce`]).
pub const DEFAULT_NONCE_PERIOD: Duration = Duration::from_secs(300);

/// Which schemes a layer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopMode {
    /// Only `Authorization: DPoP` with a valid proof; a `Bearer` token is refused.
    Required,
    /// `DPoP` with a valid proof, or `Bearer` for tokens that are not bound
    /// (a bound token sent as `Bearer` is refused).
    Allowed,
    /// Only `Bearer`; `Authorization: DPoP` counts as no token, and a bound
    /// token (`cnf.jkt`) is refused.
    BearerOnly,
}

/// How a layer treats DPoP (RFC 9449): which schemes it accepts, which
/// proof algorithms, the proof window, the external URL that `htu` names,
/// nonces and the replay store. Built with [`DpopPolicy::builder`].
///
/// ```
/// use tower_jwt_auth::Algorithm;
/// use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};
///
/// let policy = DpopPolicy::builder(DpopMode::Allowed)
///     .base_url("https://api.example.com")
///     .algorithms([Algorithm::ES256, Algorithm::EdDSA])
///     .build()?;
/// assert_eq!(policy.mode(), DpopMode::Allowed);
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct DpopPolicy {
    inner: Arc<Inner>,
}

struct Inner {
    mode: DpopMode,
    algs: Vec<Algorithm>,
    window: f64,
    base: String,
    nonces: Option<nonce::Nonces>,
    replay: Arc<dyn ReplayStore>,
    replay_ttl: Duration,
    fail_open: bool,
}

impl fmt::Debug for DpopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopPolicy")
            .field("mode", &self.inner.mode)
            .field("algorithms", &self.inner.algs)
            .field("window", &self.inner.window)
            .field("base_url", &crate::text::redact_url(&self.inner.base))
            .field("nonce", &self.inner.nonces.is_some())
            .finish_non_exhaustive()
    }
}

/// The builder of a [`DpopPolicy`].
pub struct DpopPolicyBuilder {
    mode: DpopMode,
    algs: Vec<Algorithm>,
    window: Duration,
    base: Option<String>,
    nonce: Option<(Vec<u8>, Duration)>,
    replay: Option<Arc<dyn ReplayStore>>,
    fail_open: bool,
}

impl fmt::Debug for DpopPolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopPolicyBuilder")
            .field("mode", &self.mode)
            .field("algorithms", &self.algs)
            .finish_non_exhaustive()
    }
}

impl DpopPolicy {
    /// A builder for `mode`. Defaults: algorithms `ES256`, `ES384`,
    /// `EdDSA`, `PS256`, `RS256` (on a layer with
    /// [`JwtAuthLayer::fapi2`](crate::JwtAuthLayer::fapi2), only those of
    /// them FAPI 2.0 allows: `ES256`, `EdDSA`, `PS256`); an `iat` window of
    /// [`DEFAULT_PROOF_WINDOW`]; no nonce; an in-memory replay store of
    /// [`DEFAULT_REPLAY_CAPACITY`]; fail closed. The external base URL is
    /// required (see [`DpopPolicyBuilder::base_url`]).
    pub fn builder(mode: DpopMode) -> DpopPolicyBuilder {
        DpopPolicyBuilder {
            mode,
            algs: vec![
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
                Algorithm::PS256,
                Algorithm::RS256,
            ],
            window: DEFAULT_PROOF_WINDOW,
            base: None,
            nonce: None,
            replay: None,
            fail_open: false,
        }
    }

    /// Which schemes are accepted.
    pub fn mode(&self) -> DpopMode {
        self.inner.mode
    }

    /// The proof algorithms accepted, as `algs="…"` in challenges and
    /// `dpop_signing_alg_values_supported` in metadata.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.inner.algs
    }

    /// This policy accepting proofs of `allowed` algorithms only (its own
    /// order kept; none if it has none of them), with the same replay
    /// store, nonces and window. For the FAPI 2.0 preset of the layer.
    pub(crate) fn only(self, allowed: &[Algorithm]) -> DpopPolicy {
        let i = &*self.inner;
        if i.algs.iter().all(|a| allowed.contains(a)) {
            return self;
        }
        DpopPolicy {
            inner: Arc::new(Inner {
                mode: i.mode,
                algs: i
                    .algs
                    .iter()
                    .copied()
                    .filter(|a| allowed.contains(a))
                    .collect(),
                window: i.window,
                base: i.base.clone(),
                nonces: i.nonces.clone(),
                replay: Arc::clone(&i.replay),
                replay_ttl: i.replay_ttl,
                fail_open: i.fail_open,
            }),
        }
    }

    pub(crate) fn algs_param(&self) -> String {
        let names: Vec<&str> = self.inner.algs.iter().map(|a| a.as_str()).collect();
        names.join(" ")
    }
}

impl DpopPolicyBuilder {
    /// The external base URL of this service, as clients see it
    /// (`https://api.example.com`, or with a path prefix): a proof's `htu`
    /// must equal it followed by the request path. Behind a proxy, the host
    /// the service sees is not the one the client used, so it is never
    /// taken from the request.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base = Some(url.into());
        self
    }

    /// The proof algorithms accepted (asymmetric only). A layer with
    /// [`JwtAuthLayer::fapi2`](crate::JwtAuthLayer::fapi2) accepts and
    /// advertises only those of them FAPI 2.0 allows (`PS256`, `ES256`,
    /// `EdDSA`), whichever of `dpop` and `fapi2` is called first.
    #[must_use]
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algs = algs.into_iter().collect();
        self
    }

    /// How far a proof's `iat` may be from now, either way (default
    /// [`DEFAULT_PROOF_WINDOW`], 5 minutes; at most [`MAX_PROOF_WINDOW`]).
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Requires server nonces (RFC 9449 §8): a proof must carry a nonce
    /// issued within the last two `period`s; one without is answered 401
    /// `error="use_dpop_nonce"` with a fresh nonce in `DPoP-Nonce`. Nonces
    /// are an HMAC of the time with `secret` (at least 32 bytes): servers
    /// sharing the secret accept each other's nonces.
    #[must_use]
    pub fn nonce(mut self, secret: impl AsRef<[u8]>, period: Duration) -> Self {
        self.nonce = Some((secret.as_ref().to_vec(), period));
        self
    }

    /// Where the `jti`s of accepted proofs are kept (default: a
    /// [`MemoryReplayStore`], per process). Share one store across a fleet.
    #[must_use]
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Some(Arc::new(store));
        self
    }

    /// Accepts proofs when the replay store cannot answer (default: refuse
    /// with 503). A replay is then possible while the store is down, or,
    /// for a [`MemoryReplayStore`], full.
    #[must_use]
    pub fn replay_fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// The policy.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] without a base URL or with one that is
    /// not an absolute `http(s)` URL, with no algorithms or an HMAC one, or
    /// with a nonce secret shorter than 32 bytes, with a window longer than
    /// [`MAX_PROOF_WINDOW`].
    pub fn build(self) -> Result<DpopPolicy, BuildError> {
        let invalid = |setting: &'static str, m: &str| {
            BuildError::config(setting, format!("DPoP policy: {m}"))
        };
        let base = self
            .base
            .ok_or_else(|| invalid("base_url", "set the external base URL with base_url"))?;
        let base = base.trim_end_matches('/');
        let base = proof::normalize_htu(base)
            .ok_or_else(|| invalid("base_url", "the base URL must be an absolute http(s) URL"))?;
        let base = base.trim_end_matches('/').to_owned();
        if self.algs.is_empty() {
            return Err(invalid("algorithms", "no proof algorithms"));
        }
        if self.window > MAX_PROOF_WINDOW {
            return Err(invalid(
                "window",
                "the iat window is longer than an hour (MAX_PROOF_WINDOW)",
            ));
        }
        if self.algs.iter().any(|a| a.family() == Family::Hmac) {
            return Err(invalid(
                "algorithms",
                "proof algorithms must be asymmetric (no HS256/384/512)",
            ));
        }
        let nonces = match self.nonce {
            Some((secret, _)) if secret.len() < 32 => {
                return Err(invalid(
                    "nonce",
                    "the nonce secret must be at least 32 bytes",
                ));
            }
            Some((secret, period)) => Some(nonce::Nonces::new(&secret, period.as_secs())),
            None => None,
        };
        // A proof is acceptable from `iat - window` to `iat + window`.
        let replay_ttl = self.window * 2 + Duration::from_secs(1);
        let replay = self.replay.unwrap_or_else(|| {
            Arc::new(MemoryReplayStore::new(DEFAULT_REPLAY_CAPACITY, replay_ttl))
        });
        Ok(DpopPolicy {
            inner: Arc::new(Inner {
                mode: self.mode,
                algs: self.algs,
                window: self.window.as_secs_f64(),
                base,
                nonces,
                replay,
                replay_ttl,
                fail_open: self.fail_open,
            }),
        })
    }
}

/// A proof that passed every check but the replay store, which must be asked.
pub(crate) struct PendingReplay {
    policy: DpopPolicy,
    key: String,
}

impl PendingReplay {
    /// Asks the store, without waiting if it can answer now.
    pub(crate) fn now(&self) -> Option<Result<(), AuthError>> {
        let i = &self.policy.inner;
        i.replay
            .first_use_now(&self.key, i.replay_ttl)
            .map(|r| self.judge(r))
    }

    /// Asks the store.
    pub(crate) async fn check(self) -> Result<(), AuthError> {
        let i = &self.policy.inner;
        let answer = i.replay.first_use_later(&self.key, i.replay_ttl).await;
        self.judge(answer)
    }

    fn judge(&self, answer: Result<bool, String>) -> Result<(), AuthError> {
        match answer {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthError::DpopReplay),
            Err(why) if self.policy.inner.fail_open => {
                tracing::warn!(error = %why, "DPoP replay store cannot answer; failing open");
                Ok(())
            }
            Err(why) => {
                tracing::warn!(error = %why, "DPoP replay store cannot answer; failing closed (503)");
                Err(AuthError::ReplayUnavailable(why.into()))
            }
        }
    }
}

/// The binding checks (RFC 9449 §4.3, §7.1) of a verified token bound to
/// the key `jkt` (its `cnf.jkt`, as `crate::bind::read` read it: the one
/// reader of `cnf`): the scheme against the policy, then the proof.
/// Returns the replay check to make last.
pub(crate) fn check(
    policy: &DpopPolicy,
    dpop_scheme: bool,
    token: &str,
    jkt: Option<&str>,
    (method, uri, headers): (&Method, &Uri, &HeaderMap),
    now: f64,
) -> Result<Option<PendingReplay>, AuthError> {
    let p = &*policy.inner;
    if !dpop_scheme {
        if p.mode == DpopMode::Required {
            return Err(AuthError::DpopRequired);
        }
        if jkt.is_some() {
            return Err(AuthError::DpopBoundBearer);
        }
        return Ok(None);
    }
    // §4.3 (1): exactly one DPoP header.
    let mut values = headers.get_all("dpop").iter();
    let header = values
        .next()
        .ok_or(AuthError::InvalidDpopProof("no DPoP header"))?;
    if values.next().is_some() {
        return Err(AuthError::InvalidDpopProof("more than one DPoP header"));
    }
    let header = header
        .to_str()
        .map_err(|_| AuthError::InvalidDpopProof("the DPoP header is not visible ASCII"))?;
    // (2)-(6): a JWS with typ, alg and a public jwk, signed by that jwk.
    let proof = proof::verify(header.trim(), &p.algs)?;
    // (8): htm.
    if proof.htm != method.as_str() {
        return Err(AuthError::InvalidDpopProof(
            "`htm` is not the request method",
        ));
    }
    // (9): htu, against the external base URL.
    let expected = format!("{}{}", p.base, uri.path());
    match (
        proof::normalize_htu(&proof.htu),
        proof::normalize_htu(&expected),
    ) {
        (Some(sent), Some(expected)) if sent == expected => {}
        // Unreadable on either side is a mismatch, never a match of two `None`s.
        _ => return Err(AuthError::InvalidDpopProof("`htu` is not the request URI")),
    }
    // (11): iat within the window.
    if (proof.iat - now).abs() > p.window {
        return Err(AuthError::InvalidDpopProof(
            "`iat` is outside the accepted window",
        ));
    }
    // (12): ath is the hash of this token.
    let ath = proof
        .ath
        .ok_or(AuthError::InvalidDpopProof("the proof has no `ath`"))?;
    if ath != crate::b64::sha256(token.as_bytes()) {
        return Err(AuthError::InvalidDpopProof(
            "`ath` is not the hash of the access token",
        ));
    }
    // (12): the token is bound to the proof's key.
    if jkt != Some(proof.jkt.as_str()) {
        return Err(AuthError::DpopKeyMismatch);
    }
    // (10): the server nonce.
    if let Some(nonces) = &p.nonces
        && !proof
            .nonce
            .as_deref()
            .is_some_and(|n| nonces.accepts(n, now))
    {
        return Err(AuthError::UseDpopNonce(nonces.current(now)));
    }
    // (11): jti not seen before, last (only complete proofs are recorded).
    Ok(Some(PendingReplay {
        policy: policy.clone(),
        key: format!("{}:{}", proof.jkt, proof.jti),
    }))
}
