//! The integration tests: one test binary (one link of axum, tonic, reqwest
//! and aws-lc instead of one per file), a module per topic, each compiled
//! when the features it needs are on (`cargo test --all-features` runs all).
//! Helpers live in `support` (keys, signers, example processes, logs,
//! oidc-provider, redis-server, raw HTTP).
//!
//! Separate binary: `tests/advisories.rs` (a counting `#[global_allocator]`
//! and a process-wide panic hook, which must not see the other tests).
//!
//! Run one topic: `cargo test --all-features --test it jwks::`.

mod support;

mod attacks;
#[cfg(feature = "axum")]
mod axum;
#[cfg(all(feature = "cache", feature = "jwks", feature = "issuer"))]
mod cache;
#[cfg(all(feature = "jwks", feature = "test-util"))]
mod custom_client;
#[cfg(feature = "axum")]
mod delegation;
mod differential;
#[cfg(all(feature = "axum", feature = "dpop"))]
mod dpop;
#[cfg(all(feature = "axum", feature = "dpop", feature = "redis"))]
mod dpop_redis;
mod durations;
#[cfg(feature = "exchange")]
mod exchange;
#[cfg(feature = "axum")]
mod forward;
#[cfg(all(feature = "tonic", feature = "jwks", feature = "issuer"))]
mod grpc;
#[cfg(all(feature = "tonic", feature = "dpop"))]
mod grpc_dpop;
#[cfg(feature = "axum")]
mod guard;
#[cfg(all(
    feature = "axum",
    feature = "jwks",
    feature = "issuer",
    feature = "cache",
    feature = "introspection"
))]
mod introspect;
#[cfg(all(feature = "axum", feature = "jwks", feature = "introspection"))]
mod introspect_signed;
#[cfg(feature = "issuer")]
mod issuer;
#[cfg(all(feature = "axum", feature = "jsonrpc"))]
mod jsonrpc;
#[cfg(feature = "axum")]
mod jwe;
#[cfg(all(feature = "jwks", feature = "issuer"))]
mod jwks;
mod layer;
#[cfg(all(feature = "issuer", feature = "jwks", feature = "jsonrpc"))]
mod mcp;
#[cfg(all(feature = "axum", feature = "mtls"))]
mod mtls;
#[cfg(all(feature = "metrics", feature = "issuer", feature = "cache"))]
mod observe;
#[cfg(feature = "jwks")]
mod oidc_provider;
#[cfg(all(feature = "axum", feature = "utoipa", feature = "aide"))]
mod openapi;
mod proptest;
#[cfg(all(feature = "axum", feature = "jwks", feature = "issuer"))]
mod providers;
#[cfg(all(feature = "axum", feature = "revocation", feature = "cache"))]
mod refusals;
#[cfg(feature = "axum")]
mod resource;
#[cfg(all(feature = "redis", feature = "issuer"))]
mod revocation;
#[cfg(all(
    feature = "redis",
    feature = "issuer",
    feature = "dpop",
    feature = "introspection",
    feature = "axum"
))]
mod revocation_cluster;
#[cfg(all(feature = "redis", feature = "issuer"))]
mod revocation_fleet;
#[cfg(all(
    feature = "axum",
    feature = "jwks",
    feature = "issuer",
    feature = "cache",
    feature = "introspection",
    feature = "dpop",
    feature = "redis"
))]
mod server;
#[cfg(all(feature = "axum", feature = "redis"))]
mod session;
#[cfg(feature = "axum")]
mod sources;
mod vectors;
mod verify;
#[cfg(all(feature = "axum", feature = "ws", feature = "revocation"))]
mod ws;
