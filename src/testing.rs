//! Testing with real tokens: [`Issuer`], a local OAuth 2.0 / OpenID
//! issuer that mints tokens and serves its JWKS and discovery document
//! (feature `issuer`), and [`TestSigner`], signed tokens for unit tests
//! without a server (feature `test-util`).
//!
//! Both are for tests and demos, never for production: the issuer's keys
//! are made at start and live in memory, and it signs whatever it is asked.

#[cfg(feature = "issuer")]
pub use crate::issuer::{Issuer, IssuerFailure};
#[cfg(feature = "test-util")]
pub use crate::sign::TestSigner;
