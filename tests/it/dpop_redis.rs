//! The Redis DPoP replay store against a real `redis-server` on 127.0.0.1:
//! a proof accepted by one instance is refused by another that shares the
//! store; with Redis down, fail closed (503) or open, as configured.

use crate::support as common;

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::Request;
use http::header::AUTHORIZATION;
use serde_json::json;
use tower::ServiceExt;
use tower_jwt_auth::dpop::{DpopMode, DpopPolicy, RedisReplayStore};
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Verifier};

use crate::support::redis;
use redis::Redis;

const BASE: &str = "https://api.example.com";

fn instance(store: RedisReplayStore, fail_open: bool) -> Router {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let mut policy = DpopPolicy::builder(DpopMode::Required)
        .base_url(BASE)
        .replay_store(store);
    if fail_open {
        policy = policy.replay_fail_open();
    }
    Router::new()
        .route("/me", get(|| async { "ok" }))
        .route_layer(JwtAuthLayer::new(verifier).dpop(policy.build().unwrap()))
}

struct Client {
    pair: EcdsaKeyPair,
    token: String,
}

impl Client {
    fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let p = pair.public_key().as_ref();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(&p[1..33]),
            b64(&p[33..65])
        );
        let jkt = b64(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref(),
        );
        let mut c = claims();
        c["cnf"] = json!({"jkt": jkt});
        Client {
            pair,
            token: token(Algorithm::ES256, &c),
        }
    }

    fn proof(&self, jti: &str) -> String {
        let p = self.pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])});
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let ath = b64(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.token.as_bytes()).as_ref(),
        );
        let payload = json!({"jti": jti, "htm": "GET", "htu": format!("{BASE}/me"),
                             "iat": now(), "ath": ath});
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    async fn call(&self, app: &Router, proof: &str) -> u16 {
        let req = Request::builder()
            .uri("/me")
            .header(AUTHORIZATION, format!("DPoP {}", self.token))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_replayed_against_another_instance_is_refused() {
    let redis = Redis::start().await;
    let store = || RedisReplayStore::new(&redis.url()).unwrap().prefix("t1:");
    let (a, b) = (instance(store(), false), instance(store(), false));
    let client = Client::new();
    let p = client.proof("once");
    assert_eq!(client.call(&a, &p).await, 200);
    assert_eq!(client.call(&b, &p).await, 401, "replayed on instance b");
    assert_eq!(client.call(&a, &p).await, 401, "replayed on instance a");
    assert_eq!(client.call(&b, &client.proof("fresh")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_unless_told_otherwise() {
    let mut redis = Redis::start().await;
    let t = Duration::from_millis(200);
    let closed = instance(
        RedisReplayStore::with_timeout(&redis.url(), t).unwrap(),
        false,
    );
    let open = instance(
        RedisReplayStore::with_timeout(&redis.url(), t).unwrap(),
        true,
    );
    let client = Client::new();
    assert_eq!(client.call(&closed, &client.proof("up")).await, 200);
    redis.stop().await;
    assert_eq!(client.call(&closed, &client.proof("down-1")).await, 503);
    assert_eq!(client.call(&open, &client.proof("down-2")).await, 200);
    redis.restart().await;
    let mut status = 0;
    for i in 0..30 {
        status = client
            .call(&closed, &client.proof(&format!("back-{i}")))
            .await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "recovers once Redis is back");
}
