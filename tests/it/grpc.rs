//! The layer and guards on a real tonic server on 127.0.0.1, called by a
//! real tonic client: exact gRPC codes for every refusal, keys from a
//! `JwksCache`, and the `examples/grpc.rs` process.

use crate::support::example;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tower_jwt_auth::grpc::GrpcClaims;
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::testing::{Issuer, IssuerFailure};
use tower_jwt_auth::{JwtAuthLayer, RequireRole, RequireScope, Verifier};

mod pb {
    #![allow(clippy::all, missing_docs)]
    include!("../../examples/proto/demo.v1.rs");
}

use pb::greeter_client::GreeterClient;
use pb::greeter_server::{Greeter, GreeterServer};
use pb::{HelloReply, HelloRequest, ShutdownReply, ShutdownRequest};

const AUD: &str = "grpc-api";

struct Svc;

#[tonic::async_trait]
impl Greeter for Svc {
    async fn hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let claims = request.claims()?;
        Ok(Response::new(HelloReply {
            message: format!("hello {}", request.get_ref().name),
            subject: claims.sub().unwrap_or_default().to_owned(),
        }))
    }

    async fn shutdown(
        &self,
        request: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownReply>, Status> {
        // A handler-side check on top of the guard: needs scope `ops` too.
        let claims = request.claims()?;
        RequireScope::any(["ops"]).check(&claims)?;
        Ok(Response::new(ShutdownReply { accepted: true }))
    }
}

/// Serves `Svc` behind the layer (keys from `cache`) and the admin guard;
/// returns a connected client.
async fn serve(issuer: &Issuer, cache: JwksCache) -> GreeterClient<Channel> {
    let verifier = Verifier::builder()
        .jwks_cache(cache)
        .issuer(issuer.url())
        .audience(AUD)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(JwtAuthLayer::new(verifier))
            .layer(
                RequireRole::any(["admin"])
                    .paths(["/demo.v1.Greeter/Shutdown"])
                    .unwrap(),
            )
            .add_service(GreeterServer::new(Svc))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    GreeterClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn mint(issuer: &Issuer, extra: Value) -> String {
    let mut c =
        json!({"iss": issuer.url(), "aud": AUD, "sub": "ada", "iat": now(), "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    issuer.mint(&c)
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut req = Request::new(message);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

async fn hello(
    client: &mut GreeterClient<Channel>,
    token: Option<&str>,
) -> Result<HelloReply, Status> {
    let req = with_token(
        HelloRequest {
            name: "grpc".into(),
        },
        token,
    );
    client.hello(req).await.map(Response::into_inner)
}

async fn shutdown(client: &mut GreeterClient<Channel>, token: &str) -> Result<bool, Status> {
    let req = with_token(ShutdownRequest {}, Some(token));
    client.shutdown(req).await.map(|r| r.into_inner().accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_for_every_answer() {
    let issuer = Issuer::start().await.unwrap();
    let cache = JwksCache::builder(&issuer.jwks_url()).build().unwrap();
    let mut client = serve(&issuer, cache.clone()).await;

    // Valid: the handler reads the claims. Keys came from the JwksCache.
    let reply = hello(&mut client, Some(&mint(&issuer, json!({}))))
        .await
        .unwrap();
    assert_eq!(
        (reply.message.as_str(), reply.subject.as_str()),
        ("hello grpc", "ada")
    );
    assert_eq!(cache.status().key_count(), 1);

    // Missing, bad, expired: UNAUTHENTICATED (16).
    let e = hello(&mut client, None).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert_eq!(e.message(), "no access token");
    let e = hello(&mut client, Some("not-a-jwt")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let mut forged = mint(&issuer, json!({}));
    forged.truncate(forged.len() - 3);
    forged.push_str("AAA");
    let e = hello(&mut client, Some(&forged)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(e.message(), "the token signature is invalid");
    let expired = mint(&issuer, json!({"exp": now() - 3600}));
    let e = hello(&mut client, Some(&expired)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(e.message(), "the access token expired");
    let e = hello(&mut client, Some(&mint(&issuer, json!({"aud": "other"}))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // The guard covers only Shutdown: a plain user may say hello but
    // not shut down (PERMISSION_DENIED, 7).
    let user = mint(&issuer, json!({"roles": ["user"], "scope": "ops"}));
    assert!(hello(&mut client, Some(&user)).await.is_ok());
    let e = shutdown(&mut client, &user).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // An admin passes the guard; the handler's own scope check then decides.
    let admin = mint(&issuer, json!({"roles": ["admin"]}));
    let e = shutdown(&mut client, &admin).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.message(), "the access token lacks a required scope");
    let ops_admin = mint(&issuer, json!({"roles": ["admin"], "scope": "ops"}));
    assert!(shutdown(&mut client, &ops_admin).await.unwrap());

    // Two authorization values: INVALID_ARGUMENT (3).
    let mut req = with_token(HelloRequest { name: "x".into() }, Some(&user));
    req.metadata_mut()
        .append("authorization", format!("Bearer {user}").parse().unwrap());
    let e = client.hello(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_with_a_cold_cache_is_unavailable() {
    let issuer = Issuer::start().await.unwrap();
    issuer.set_failure(IssuerFailure::Status(500));
    let cache = JwksCache::builder(&issuer.jwks_url()).build().unwrap();
    let mut client = serve(&issuer, cache).await;
    let e = hello(&mut client, Some(&mint(&issuer, json!({}))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_example_end_to_end() {
    let started = example::start("grpc", |cmd| {
        cmd.env_remove("JWT_ISSUER");
    })
    .await;
    let addr = started.addr;
    let tokens: Vec<String> = started.exports.into_iter().map(|(_, t)| t).collect();
    let [user, admin] = <[String; 2]>::try_from(tokens).unwrap();
    let mut client = GreeterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let reply = hello(&mut client, Some(&user)).await.unwrap();
    assert_eq!(reply.subject, "user");
    assert_eq!(
        hello(&mut client, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        shutdown(&mut client, &user).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert!(shutdown(&mut client, &admin).await.unwrap());
}
