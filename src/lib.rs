// The crate docs are the README, whatever the features (docs render
// without compiling the examples); the README's examples run as doc tests
// when the features they use are on (see `ReadmeDoctests` below).
#![cfg_attr(not(doctest), doc = include_str!("../README.md"))]
#![deny(missing_docs, unsafe_code)]
#![warn(rust_2018_idioms, unreachable_pub)]
// On docs.rs (`--cfg docsrs`, nightly): badges for feature-gated items.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

mod algorithm;
mod b64;
mod bind;
#[cfg(feature = "cache")]
mod cache;
mod claims;
mod clock;
mod csrf;
#[cfg(feature = "dpop")]
mod dpop;
mod error;
mod extract;
#[cfg(feature = "jwks")]
mod flight;
#[cfg(feature = "tonic")]
mod grpc;
mod guard;
mod key;
mod layer;
mod metadata;
mod observe;
mod path;
mod reject;
#[cfg(feature = "revocation")]
mod revoke;
#[cfg(any(feature = "issuer", feature = "test-util", feature = "introspection"))]
mod sign;
mod store;
mod tenant;
mod text;
mod token;
mod verify;

#[cfg(feature = "axum")]
mod axum;
#[cfg(any(feature = "jwks", feature = "introspection"))]
mod http;
#[cfg(feature = "introspection")]
mod introspect;
#[cfg(feature = "issuer")]
mod issuer;
#[cfg(feature = "jwks")]
mod jwks;

pub use algorithm::{Algorithm, UnknownAlgorithm};
#[cfg(feature = "axum")]
pub use axum::ClaimsRejection;
#[cfg(feature = "cache")]
pub use cache::{CacheStats, TokenCache};
pub use claims::{ClaimSource, Claims, JsonClaims, RegisteredClaims};
pub use clock::{Clock, SystemClock};
pub use csrf::CsrfPolicy;
#[cfg(all(feature = "dpop", feature = "redis"))]
pub use dpop::RedisReplayStore;
#[cfg(feature = "dpop")]
pub use dpop::{
    DEFAULT_NONCE_PERIOD, DEFAULT_PROOF_WINDOW, DEFAULT_REPLAY_CAPACITY, DpopMode, DpopPolicy,
    DpopPolicyBuilder, MAX_PROOF_WINDOW, MemoryReplayStore, ReplayFuture, ReplayStore,
};
pub use error::{AuthError, BuildError, ConfigError, ErrorKind, Outage, ShapeError};
pub use extract::{FindToken, TokenSource};
#[cfg(feature = "tonic")]
pub use grpc::GrpcClaims;
pub use guard::{Guard, GuardFuture, RequireClaims, RequireRole, RequireScope, RequireStepUp};
#[cfg(feature = "introspection")]
pub use introspect::{
    ClientAuth, ClientKey, DEFAULT_INTROSPECTION_TTL, DEFAULT_NEGATIVE_TTL, Introspector,
    IntrospectorBuilder, JwtOrIntrospect, JwtThenIntrospect,
};
#[cfg(feature = "issuer")]
pub use issuer::{Issuer, IssuerFailure};
#[cfg(feature = "jwks")]
pub use jwks::{
    DEFAULT_MAX_BODY, DEFAULT_MAX_STALE, DEFAULT_MIN_REFETCH_INTERVAL, DEFAULT_TIMEOUT,
    DEFAULT_TTL, JwksCache, JwksCacheBuilder, JwksStatus,
};
pub use key::Key;
pub use layer::{DEFAULT_MAX_TOKEN_LEN, JwtAuth, JwtAuthLayer, ResponseFuture};
pub use metadata::{ResourceMetadata, ResourceMetadataBuilder};
pub use reject::{DefaultRejection, OnRejection, Refusal};
#[cfg(feature = "revocation")]
pub use revoke::{
    CheckFuture, DEFAULT_MARK_TTL, MemoryRevocation, MemoryRevocationBuilder, Revocation,
    RevocationStatus,
};
#[cfg(feature = "redis")]
pub use revoke::{RedisError, RedisRevocation, RedisRevocationBuilder};
#[cfg(feature = "test-util")]
pub use sign::TestSigner;
pub use verify::{
    DEFAULT_LEEWAY, TokenVerifier, Verified, Verifier, VerifierBuilder, VerifyFuture,
};

/// The README's examples, run as doc tests when every feature they use is
/// on (`cargo test --all-features`).
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "jwks",
    feature = "cache",
    feature = "redis",
    feature = "introspection",
    feature = "dpop"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Hooks for the cargo-fuzz targets in `fuzz/`, built only under
/// `cargo fuzz` (`--cfg fuzzing`); not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Whether the scanner for plain JSON payloads agrees with the strict
    /// `serde_json` read: when it answers, the strict read accepts the
    /// payload with the same registered claims.
    pub fn payload_read_agrees(payload: &str) -> bool {
        crate::claims::plain_read_agrees(payload)
    }
}
