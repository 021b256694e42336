//! A minimal MCP server protected as the MCP authorization specification
//! (2025-11-25) asks: the `rmcp` crate's streamable HTTP transport on an
//! axum route, behind the auth layer, with scopes per tool and the step-up
//! challenge. Without `JWT_ISSUER` it starts a built-in issuer on 127.0.0.1
//! so it needs no outside service.
//!
//! Run: `cargo run --all-features --example mcp`
//!
//! What the specification asks of an MCP server, and where it is here:
//!
//! - **RFC 9728 metadata** at the well-known location derived from the
//!   resource URL (`http://127.0.0.1:3001/mcp` →
//!   `/.well-known/oauth-protected-resource/mcp`), naming the authorization
//!   server and every scope of the map below: [`ResourceMetadata`], served
//!   with `route_service`.
//! - **Every 401 points to it**: `WWW-Authenticate: Bearer …,
//!   resource_metadata="…"` ([`JwtAuthLayer::resource_metadata`]).
//! - **Audience = the resource identifier** (RFC 8707): a token issued for
//!   another server is refused, so it cannot be passed through.
//! - **Scopes per tool, with step-up** ([`RequireToolScopes`], which reads
//!   the tool name from the JSON-RPC body):
//!
//!   | request | scope |
//!   |---|---|
//!   | every request (`initialize`, `tools/list`, notifications) | `mcp:tools` ([`RequireScope`] on the route) |
//!   | `tools/call` `whoami` (answers the token's `sub`) | `mcp:tools` |
//!   | `tools/call` `admin_echo` (echoes its `text` argument) | `mcp:admin` |
//!   | any other tool | refused (no entry in the map) |
//!
//!   A call the token's scopes do not cover gets 403
//!   `error="insufficient_scope", scope="<needed and held scopes>",
//!   resource_metadata="…"`; the client gets a token with those scopes
//!   and retries.
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
//! | `BIND` | listen address (`127.0.0.1:0`: any free port) | `127.0.0.1:3001` |
//! | `JWT_RESOURCE` (or `MCP_RESOURCE`) | the resource identifier: the URL clients use for the MCP endpoint; the tokens' audience | `http://{BIND}/mcp` |
//! | `JWT_ISSUER` | the authorization server (keys by OIDC discovery; tokens signed RS256, PS256, ES256 or EdDSA) | a built-in issuer on 127.0.0.1 |
//! | `JWT_JWKS_URL` | the key set, instead of discovery | |
//!
//! With the built-in issuer it prints tokens (`export NAME=token` lines)
//! and curl lines; then, always, `listening on <address>`.

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
use tower_jwt_auth::jsonrpc::RequireToolScopes;
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::metadata::ResourceMetadata;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, RequireScope, Verifier};

/// The scope every MCP request needs.
const SCOPE: &str = "mcp:tools";
/// The scope of the admin tool.
const ADMIN: &str = "mcp:admin";

/// The MCP server: `whoami`, answering with the caller's `sub` and
/// scopes, and `admin_echo`, echoing its `text` argument.
#[derive(Clone)]
struct Tools;

fn object(schema: Value) -> Arc<serde_json::Map<String, Value>> {
    let Value::Object(schema) = schema else {
        unreachable!("an object literal")
    };
    Arc::new(schema)
}

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
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new(
                "whoami",
                "The subject and scopes of the access token this call carries.",
                object(json!({"type": "object", "properties": {}})),
            ),
            Tool::new(
                "admin_echo",
                "Echoes `text` (needs the scope mcp:admin).",
                object(json!({
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"]
                })),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name == "admin_echo" {
            let text = request
                .arguments
                .as_ref()
                .and_then(|a| a.get("text"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into());
        }
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
    let resource = env("JWT_RESOURCE")
        .or_else(|| env("MCP_RESOURCE"))
        .unwrap_or_else(|| format!("http://{addr}/mcp"));

    // The authorization server: the one named by JWT_ISSUER, or a built-in
    // issuer on 127.0.0.1 (OIDC discovery and JWKS), so the example needs
    // no outside service.
    let (issuer_url, builtin) = match env("JWT_ISSUER") {
        Some(url) => (url, None),
        None => {
            let issuer = Issuer::start().await?;
            (issuer.url(), Some(issuer))
        }
    };

    // Scopes per tool (the tool name is in the JSON-RPC body).
    let tools = RequireToolScopes::builder()
        .tool("whoami", [SCOPE])
        .tool("admin_echo", [ADMIN])
        .build()?;

    // RFC 9728: the metadata document, at the location derived from the
    // resource identifier; every scope of the map is listed.
    let metadata = ResourceMetadata::builder(&resource)
        .authorization_servers([issuer_url.clone()])
        .scopes_supported(tools.scopes())
        .build()?;
    // RFC 8707: the audience is the resource identifier.
    let keys = match env("JWT_JWKS_URL") {
        Some(url) => JwksCache::builder(&url),
        None => JwksCache::discover(&issuer_url),
    };
    let cache = keys
        .algorithms([
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ])
        .build()?;
    let verifier = Verifier::builder()
        .jwks_cache(cache.clone())
        .issuer(issuer_url.clone())
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
        // The guards run after the auth layer (added last, runs first):
        // the scope per tool, inside the scope every request needs.
        .route_layer(tools)
        .route_layer(RequireScope::any([SCOPE]))
        .route_layer(auth)
        .route_service(metadata.path(), metadata.clone());

    if let Some(issuer) = &builtin {
        print_demo(issuer, &resource, &metadata, addr);
    }
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
    println!(
        "export ADMIN_TOKEN={}",
        mint(resource, &format!("{SCOPE} {ADMIN}"))
    );
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
    println!(
        "  {post} -H \"Authorization: Bearer $MCP_TOKEN\" -H 'mcp-protocol-version: 2025-06-18' \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"admin_echo\",\"arguments\":{{\"text\":\"hi\"}}}}}}'   # 403, step-up: use $ADMIN_TOKEN"
    );
}
