//! Scopes per JSON-RPC method and per MCP tool, with the MCP step-up
//! challenge: [`RequireToolScopes`], a guard that reads the body of a
//! JSON-RPC POST (bounded), finds what each message asks for (the
//! `method`; for `tools/call` and `prompts/get` the `params.name`, for
//! `resources/read` and `resources/subscribe` the `params.uri`, for
//! `completion/complete` the prompt or resource its `params.ref` names)
//! and requires the scopes mapped to it. Its service is [`ToolScopeGuard`], its future [`ToolScopeFuture`].
//!
#![doc = include_str!("../docs/jsonrpc.md")]

mod map;
mod peek;
mod service;

pub use map::{RequireToolScopes, RequireToolScopesBuilder, Unmapped};
pub use service::{ToolScopeFuture, ToolScopeGuard};
