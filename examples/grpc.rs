//! The layer and a guard on a tonic server: `Hello` for any authenticated
//! caller, `Shutdown` for role `admin` only.
//!
//! Run: `cargo run --all-features --example grpc`
//!
//! Environment: `BIND` (default `127.0.0.1:50051`; `127.0.0.1:0` for any
//! free port); `JWT_ISSUER` and `JWT_AUDIENCE` for your own identity
//! provider (keys by OIDC discovery). Without `JWT_ISSUER` a built-in issuer
//! runs on 127.0.0.1 and the example prints tokens to try. It prints
//! `listening on <address>` when ready.

use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tower_jwt_auth::grpc::GrpcClaims;
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{JwtAuthLayer, RequireRole, Verifier};

/// The code tonic-prost-build generated from `examples/proto/demo.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!("proto/demo.v1.rs");
}

use pb::greeter_server::{Greeter, GreeterServer};
use pb::{HelloReply, HelloRequest, ShutdownReply, ShutdownRequest};

/// The service: it reads the verified claims from the request.
#[derive(Default)]
pub struct Demo;

#[tonic::async_trait]
impl Greeter for Demo {
    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let claims = request.claims()?;
        let subject = claims.sub().unwrap_or_default().to_owned();
        let name = &request.get_ref().name;
        Ok(Response::new(HelloReply {
            message: format!("hello {name}"),
            subject,
        }))
    }

    async fn shutdown(
        &self,
        _request: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownReply>, Status> {
        // Only admins get here: the guard refused everyone else.
        Ok(Response::new(ShutdownReply { accepted: true }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let bind = var("BIND").unwrap_or_else(|| "127.0.0.1:50051".into());
    let (issuer_url, audience, builtin) = match var("JWT_ISSUER") {
        Some(url) => {
            let aud = var("JWT_AUDIENCE").ok_or("JWT_AUDIENCE is required with JWT_ISSUER")?;
            (url, aud, None)
        }
        None => {
            let issuer = Issuer::start().await?;
            let aud = var("JWT_AUDIENCE").unwrap_or_else(|| "demo-api".into());
            (issuer.url(), aud, Some(issuer))
        }
    };
    let keys = JwksCache::discover(&issuer_url).build()?;
    let verifier = Verifier::builder()
        .jwks_cache(keys)
        .issuer(issuer_url)
        .audience(audience.clone())
        .build()?;

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    if let Some(issuer) = &builtin {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let token = |sub: &str, roles: &[&str]| {
            issuer.mint(&json!({"iss": issuer.url(), "aud": audience, "sub": sub,
                                "roles": roles, "iat": now, "exp": now + 3600}))
        };
        println!("export USER_TOKEN={}", token("user", &["user"]));
        println!("export ADMIN_TOKEN={}", token("admin", &["admin"]));
        println!("try (with grpcurl and examples/proto/demo.proto):");
        println!(
            "  grpcurl -plaintext -import-path examples/proto -proto demo.proto \
             -H \"authorization: Bearer $USER_TOKEN\" -d '{{\"name\":\"ada\"}}' {addr} demo.v1.Greeter/Hello"
        );
    }
    println!("listening on {addr}");

    Server::builder()
        // Added first, runs first: authentication, then authorization.
        .layer(JwtAuthLayer::new(verifier))
        .layer(RequireRole::any(["admin"]).paths(["/demo.v1.Greeter/Shutdown"])?)
        .add_service(GreeterServer::new(Demo))
        .serve_with_incoming(TcpIncoming::from(listener))
        .await?;
    Ok(())
}
