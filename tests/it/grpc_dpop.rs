//! DPoP (RFC 9449) on gRPC: a real tonic server on 127.0.0.1 behind the
//! layer with a DPoP policy, called by a real tonic client. A gRPC call is
//! an HTTP/2 `POST` to `/package.Service/Method`, so a proof names `htm`
//! `POST` and `htu` the external base URL followed by the method path.
//! Refusals are `UNAUTHENTICATED` with the `DPoP` challenge in the
//! `www-authenticate` metadata, as in the HTTP answers.

use crate::support as common;

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use common::*;
use serde_json::{Value, json};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};
use tower_jwt_auth::grpc::GrpcClaims;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, RequireRole, Verifier};

mod pb {
    #![allow(clippy::all, missing_docs)]
    include!("../../examples/proto/demo.v1.rs");
}

use pb::greeter_client::GreeterClient;
use pb::greeter_server::{Greeter, GreeterServer};
use pb::{HelloReply, HelloRequest, ShutdownReply, ShutdownRequest};

/// The external base URL clients see (a proxy in front): never the
/// 127.0.0.1 address the server listens on.
const BASE: &str = "https://grpc.example.com/edge";
const HELLO: &str = "/demo.v1.Greeter/Hello";
const SHUTDOWN: &str = "/demo.v1.Greeter/Shutdown";

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
        _request: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownReply>, Status> {
        Ok(Response::new(ShutdownReply { accepted: true }))
    }
}

/// A client's DPoP key (P-256).
struct ClientKey(EcdsaKeyPair);

impl ClientKey {
    fn new() -> Self {
        ClientKey(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    fn jwk(&self) -> Value {
        let point = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    /// The RFC 7638 thumbprint, computed here independently of the crate.
    fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        sha256(canonical.as_bytes())
    }

    /// A fresh proof for `htm` on `htu`, for `token`, with `nonce` if given.
    fn proof(&self, htm: &str, htu: &str, token: &str, nonce: Option<&str>) -> String {
        static JTI: AtomicU64 = AtomicU64::new(0);
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let mut payload = json!({
            "jti": format!("grpc-{}", JTI.fetch_add(1, Ordering::SeqCst)),
            "htm": htm,
            "htu": htu,
            "iat": now(),
            "ath": sha256(token.as_bytes()),
        });
        if let Some(n) = nonce {
            payload["nonce"] = json!(n);
        }
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

fn sha256(bytes: &[u8]) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

fn bound_token(key: &ClientKey) -> String {
    let mut c = claims();
    c["cnf"] = json!({"jkt": key.jkt()});
    token(Algorithm::ES256, &c)
}

/// Serves `Svc` behind the layer with `policy` (and a role guard on
/// Shutdown); returns a connected client.
async fn serve(policy: DpopPolicy) -> GreeterClient<Channel> {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(JwtAuthLayer::new(verifier).dpop(policy))
            .layer(RequireRole::any(["admin"]).paths([SHUTDOWN]).unwrap())
            .add_service(GreeterServer::new(Svc))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    GreeterClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

/// Calls Hello with `authorization: <auth>` and a `dpop` proof, if any.
async fn hello(
    client: &mut GreeterClient<Channel>,
    auth: &str,
    proof: Option<&str>,
) -> Result<HelloReply, Status> {
    let mut req = Request::new(HelloRequest {
        name: "grpc".into(),
    });
    req.metadata_mut()
        .insert("authorization", auth.parse().unwrap());
    if let Some(p) = proof {
        req.metadata_mut().insert("dpop", p.parse().unwrap());
    }
    client.hello(req).await.map(Response::into_inner)
}

/// The `www-authenticate` metadata of a refusal.
fn challenge(status: &Status) -> String {
    status
        .metadata()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no www-authenticate in {status:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `UNAUTHENTICATED`, with the DPoP challenge naming a bad proof.
fn refused_proof(result: Result<HelloReply, Status>, why: &str) {
    let status = result.expect_err(why);
    assert_eq!(status.code(), Code::Unauthenticated, "{why}: {status:?}");
    let c = challenge(&status);
    assert!(
        c.contains(r#"DPoP realm="api", algs="ES256"#)
            && c.contains(r#"error="invalid_dpop_proof""#),
        "{why}: {c}"
    );
}

fn policy(mode: DpopMode) -> DpopPolicy {
    DpopPolicy::builder(mode)
        .base_url(BASE)
        .algorithms([Algorithm::ES256])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_names_post_and_the_method_path() {
    let mut client = serve(policy(DpopMode::Allowed)).await;
    let key = ClientKey::new();
    let token = bound_token(&key);
    let auth = format!("DPoP {token}");
    let htu = format!("{BASE}{HELLO}");

    // A fresh proof for POST on the external URL of the method: accepted,
    // and the handler reads the claims.
    let first = key.proof("POST", &htu, &token, None);
    let reply = hello(&mut client, &auth, Some(&first)).await.unwrap();
    assert_eq!(
        (reply.message.as_str(), reply.subject.as_str()),
        ("hello grpc", "user-1")
    );
    // Each call its own proof.
    let second = key.proof("POST", &htu, &token, None);
    assert!(hello(&mut client, &auth, Some(&second)).await.is_ok());

    // The same proof again: a replay.
    refused_proof(hello(&mut client, &auth, Some(&first)).await, "replay");

    // A proof for another method of the same service.
    let other = key.proof("POST", &format!("{BASE}{SHUTDOWN}"), &token, None);
    refused_proof(
        hello(&mut client, &auth, Some(&other)).await,
        "htu of another method",
    );
    // The address the server sees is not the URL the client used.
    let local = key.proof("POST", &format!("http://127.0.0.1{HELLO}"), &token, None);
    refused_proof(
        hello(&mut client, &auth, Some(&local)).await,
        "htu on the local address",
    );
    // gRPC is always POST.
    let get = key.proof("GET", &htu, &token, None);
    refused_proof(hello(&mut client, &auth, Some(&get)).await, "htm GET");
    // No proof at all.
    refused_proof(hello(&mut client, &auth, None).await, "no proof");

    // The bound token as Bearer: no downgrade, even with a valid proof.
    let fresh = key.proof("POST", &htu, &token, None);
    let status = hello(&mut client, &format!("Bearer {token}"), Some(&fresh))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let c = challenge(&status);
    assert!(c.starts_with(r#"Bearer realm="api""#), "{c}");
    assert!(c.contains("DPoP realm"), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_required_refuses_bearer_and_nonces_come_in_metadata() {
    let nonce_policy = DpopPolicy::builder(DpopMode::Required)
        .base_url(BASE)
        .nonce([7u8; 32], std::time::Duration::from_secs(300))
        .build()
        .unwrap();
    let mut client = serve(nonce_policy).await;
    let key = ClientKey::new();
    let token = bound_token(&key);
    let auth = format!("DPoP {token}");
    let htu = format!("{BASE}{HELLO}");

    // An unbound token as Bearer: DPoP is required; no Bearer challenge.
    let plain = token_for_plain();
    let status = hello(&mut client, &format!("Bearer {plain}"), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let c = challenge(&status);
    assert!(c.starts_with("DPoP realm") && !c.contains("Bearer"), "{c}");

    // No nonce: refused with `use_dpop_nonce` and a nonce in `dpop-nonce`.
    let p = key.proof("POST", &htu, &token, None);
    let status = hello(&mut client, &auth, Some(&p)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        challenge(&status).contains(r#"error="use_dpop_nonce""#),
        "{status:?}"
    );
    let nonce = status
        .metadata()
        .get("dpop-nonce")
        .expect("a DPoP-Nonce in the metadata")
        .to_str()
        .unwrap()
        .to_owned();
    // The client retries with it: accepted.
    let p = key.proof("POST", &htu, &token, Some(&nonce));
    let reply = hello(&mut client, &auth, Some(&p)).await.unwrap();
    assert_eq!(reply.subject, "user-1");
}

fn token_for_plain() -> String {
    token(Algorithm::ES256, &claims())
}
