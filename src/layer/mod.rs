//! The auth layer: [`JwtAuthLayer`](crate::JwtAuthLayer) (the builder), its service [`JwtAuth`]
//! and [`ResponseFuture`].
//!
//! A request takes one path, written once in `service.rs` as a step
//! machine whose steps read in order:
//!
//! 1. find the token (and check a cookie token against cross-site
//!    requests, and its length);
//! 2. the verified-token cache (a hit skips step 3);
//! 3. the [`TokenVerifier`];
//! 4. sender binding: the `cnf` rule for every token (`crate::bind`),
//!    then the DPoP proof;
//! 5. the revocation store;
//! 6. admit (claims into the extensions) or refuse (one renderer, the
//!    layer's rejection).
//!
//! One function advances a request through every step that answers at
//! once; a step that needs I/O (a key fetch, an introspection call, the
//! DPoP replay store, the revocation store) is awaited, and the same
//! function takes the request on from the next step. A request that never
//! waits is decided inside `call` with no box; one that waits finishes in
//! one boxed future.
//!
//! The files, each depending only on those listed before it:
//! `stages.rs` (the steps a feature adds, with no-op
//! versions when it is off: the cache, sender binding and DPoP,
//! revocation), `settings.rs`, `builder.rs` (the layer), `future.rs`,
//! `service.rs` (the path).
//!
//! [`TokenVerifier`]: crate::TokenVerifier

pub(crate) mod builder;
mod future;
mod service;
mod settings;
mod stages;

pub use future::ResponseFuture;
pub use service::JwtAuth;
pub use settings::DEFAULT_MAX_TOKEN_LEN;
