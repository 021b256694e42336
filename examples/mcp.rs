//! A minimal MCP server protected as the MCP authorization specification
//! (2025-06-18) asks: the `rmcp` crate's streamable HTTP transport on an
//! axum route, behind the auth layer, with a built-in issuer on 127.0.0.1
//! so it needs no outside service.
//!
//! Run: `cargo run --all-features --example mcp`
//!
//! What the specification asks of an MCP server, and where it is here:
//!
//! - **RFC 9728 metadata** at the well-known location derived from the
//!   resource URL (`http://127.0.0.1:3001/mcp` →
//!   `/.well-known/oauth-protected-resource/mcp`), naming the authorization
//!   server: [`ResourceMetadata`], served with `route_service`.
//! - **Every 401 points to it**: `WWW-Authenticate: Bearer …,
//!   resource_metadata="…"` ([`JwtAuthLayer::resource_metadata`]).
//! - **Audience = the resource identifier** (RFC 8707): a token issued for
//!   another server is refused, so it cannot be passed through.
//! - **Scopes**: `POST /mcp` needs scope `mcp:tools`, checked by a
//!   [`RequireScope`] guard on the route; a token without it gets 403
//!   `error="insufficient_scope", scope="mcp:tools"`. Tools share one
//!   endpoint (the tool name is in the JSON-RPC body), so a finer check
//!   belongs in the tool: it reads the verified claims from the request
//!   (`whoami` below).
//!
//! `rmcp` is a dev-dependency of tower-jwt-auth, for this example only: the
//! crate itself does not depend on it, and any MCP server framework on
//! axum or tower works the same way behind the layer.
//!
//! The MCP side is stateless (`legacy_session_mode` off, JSON answers): each
//! `POST /mcp` is verified and answered on its own, so any instance behind
//! a load balancer can take it.
//!
//! Configuration (environment):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MCP_RESOURCE` | the resource identifier (the URL clients use for the MCP endpoint) | `http://{BIND}/mcp` |
//! | `BIND` | listen address (`127.0.0.1:0`: any free port) | `127.0.0.1:3001` |
//!
//! It prints tokens from the built-in issuer (`export NAME=token` lines)
//! and curl lines, then `listening on <address>`.

use std::error::Error;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::metadata::ResourceMetadata;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Claims, JwtAuthLayer, RequireScope, Verifier};

/// The scope every MCP request needs.
const SCOPE: &str = "mcp:tools";

/// The MCP server: one tool, `whoami`, answering with the caller's `sub`
/// and scopes.
#[derive(Clone)]
struct Tools;

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tower-jwt-auth-mcp", "0.1.0"))
            .with_instructions("Call `whoami` to see who the access token names.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {}});
        let Value::Object(schema) = schema else {
            unreachable!("an object literal")
        };
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "whoami",
            "The subject and scopes of the access token this call carries.",
            Arc::new(schema),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "whoami" {
            return Err(ErrorData::invalid_params(
                format!("no tool named {:?}", request.name),
                None,
            ));
        }
        // rmcp hands the tool the HTTP request's parts; the auth layer put
        // the verified claims in their extensions.
        let claims = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Claims>())
            .ok_or_else(|| ErrorData::internal_error("no verified claims: no auth layer", None))?;
        let text = json!({
            "sub": claims.sub(),
            "scope": claims.payload().get("scope"),
        })
        .to_string();
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The host (without port) of a URL, for rmcp's `Host` check.
fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    Some(host.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let bind = env("BIND").unwrap_or_else(|| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    let resource = env("MCP_RESOURCE").unwrap_or_else(|| format!("http://{addr}/mcp"));

    // The authorization server: a built-in issuer on 127.0.0.1 (OIDC
    // discovery and JWKS), so the example needs no outside service.
    let issuer = Issuer::start().await?;

    // RFC 9728: the metadata document, at the location derived from the
    // resource identifier.
    let metadata = ResourceMetadata::builder(&resource)
        .authorization_servers([issuer.url()])
        .scopes_supported([SCOPE])
        .build()?;
    // RFC 8707: the audience is the resource identifier.
    let cache = JwksCache::discover(&issuer.url()).build()?;
    let verifier = Verifier::builder()
        .jwks_cache(cache.clone())
        .issuer(issuer.url())
        .audience(metadata.resource())
        .build()?;
    if let Err(e) = cache.prefetch().await {
        eprintln!("warning: no signing keys yet: {e}");
    }

    // The MCP endpoint: rmcp's streamable HTTP transport, stateless, with
    // JSON answers. rmcp checks the `Host` header against a list (DNS
    // rebinding); the resource's host is on it.
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    hosts.extend(host(&resource));
    let mcp = StreamableHttpService::new(
        || Ok(Tools),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_allowed_hosts(hosts),
    );

    let auth = JwtAuthLayer::new(verifier).resource_metadata(metadata.url());
    let app = axum::Router::new()
        .route_service(&path_of(&resource), mcp)
        // The guard runs after the auth layer (added last, runs first).
        .route_layer(RequireScope::any([SCOPE]))
        .route_layer(auth)
        .route_service(metadata.path(), metadata.clone());

    print_demo(&issuer, &resource, &metadata, addr);
    println!("listening on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}

/// The path of a URL (`/` for none).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_owned(),
        None => "/".to_owned(),
    }
}

fn print_demo(
    issuer: &Issuer,
    resource: &str,
    metadata: &ResourceMetadata,
    addr: std::net::SocketAddr,
) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mint = |audience: &str, scope: &str| {
        issuer.mint(&json!({
            "iss": issuer.url(), "sub": "agent-1", "aud": audience,
            "scope": scope, "iat": now, "exp": now + 3600,
        }))
    };
    println!("built-in issuer: {}", issuer.url());
    println!("resource: {resource}");
    println!("metadata: {}", metadata.url());
    println!("tokens (valid for one hour):");
    println!("export MCP_TOKEN={}", mint(resource, SCOPE));
    println!("export NO_SCOPE_TOKEN={}", mint(resource, "profile"));
    println!(
        "export OTHER_AUDIENCE_TOKEN={}",
        mint("https://other.example.com/mcp", SCOPE)
    );
    let path = path_of(resource);
    let post = format!(
        "curl -i http://{addr}{path} -H 'content-type: application/json' \
         -H 'accept: application/json, text/event-stream'"
    );
    println!("try:");
    println!(
        "  {post} -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}'   # 401, resource_metadata"
    );
    println!("  curl -s {}   # the metadata", metadata.url());
    println!(
        "  {post} -H \"Authorization: Bearer $MCP_TOKEN\" -H 'mcp-protocol-version: 2025-06-18' \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"whoami\"}}}}'"
    );
}
