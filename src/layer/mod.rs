//! The auth layer: [`JwtAuthLayer`](crate::JwtAuthLayer) (the builder), its service [`JwtAuth`]
//! and [`ResponseFuture`].
//!
//! A request goes through one pipeline, in `service.rs`, that reads top to
//! bottom: find the token (and check cookie tokens against cross-site
//! requests) → the verified-token cache → the [`TokenVerifier`] → the
//! revocation store → admit (claims into the extensions) or refuse (one
//! renderer, the layer's rejection). Each step answers without waiting
//! when it can; a step that needs I/O (a key fetch, an introspection call,
//! the revocation store) finishes the rest of the pipeline in one boxed
//! future.
//!
//! [`TokenVerifier`]: crate::TokenVerifier

pub(crate) mod builder;
mod future;
mod service;

pub use builder::DEFAULT_MAX_TOKEN_LEN;
pub use future::ResponseFuture;
pub use service::JwtAuth;
