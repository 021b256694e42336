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

// The core: private modules whose items are re-exported below, at the root.
mod algorithm;
mod b64;
mod bind;
mod claims;
mod csrf;
mod error;
mod extract;
#[cfg(feature = "jwks")]
mod flight;
#[cfg(any(feature = "jwks", feature = "introspection"))]
mod http;
#[cfg(feature = "issuer")]
mod issuer;
mod key;
mod observe;
mod path;
mod reject;
#[cfg(any(feature = "issuer", feature = "test-util", feature = "introspection"))]
mod sign;
mod store;
mod tenant;
mod text;
mod token;
mod verify;

// Public modules: each holds one capability, with its docs.
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "cache")]
pub mod cache;
pub mod clock;
pub mod delegation;
#[cfg(feature = "dpop")]
pub mod dpop;
#[cfg(feature = "exchange")]
pub mod exchange;
pub mod forward;
#[cfg(feature = "tonic")]
pub mod grpc;
pub mod guard;
#[cfg(feature = "introspection")]
pub mod introspection;
#[cfg(feature = "jsonrpc")]
pub mod jsonrpc;
pub mod jwe;
#[cfg(feature = "jwks")]
pub mod jwks;
pub mod layer;
pub mod manual;
pub mod metadata;
#[cfg(feature = "mtls")]
pub mod mtls;
#[cfg(any(feature = "utoipa", feature = "aide"))]
pub mod openapi;
#[cfg(feature = "revocation")]
pub mod revocation;
#[cfg(any(feature = "issuer", feature = "test-util"))]
pub mod testing;
#[cfg(feature = "ws")]
pub mod ws;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use claims::{ClaimSource, Claims, JsonClaims, RegisteredClaims};
pub use csrf::CsrfPolicy;
pub use error::{AuthError, BuildError, ConfigError, ErrorKind, Outage, ShapeError};
pub use extract::{FindToken, TokenSource};
pub use guard::rules::{RequireClaims, RequireRole, RequireScope};
pub use guard::step_up::RequireStepUp;
pub use key::Key;
pub use layer::builder::JwtAuthLayer;
pub use reject::{DefaultRejection, OnRejection, Refusal};
pub use verify::{BoxFuture, TokenVerifier, Verified, Verifier, VerifierBuilder};

/// The README's examples, run as doc tests when every feature they use is
/// on (`cargo test --all-features`).
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "jwks",
    feature = "cache",
    feature = "redis",
    feature = "introspection",
    feature = "dpop",
    feature = "mtls",
    feature = "jsonrpc",
    feature = "exchange",
    feature = "ws",
    feature = "utoipa"
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
