//! A DPoP-bound request against a Bearer request, through the layer, with
//! the same ES256 access token checks: the DPoP one adds the proof (one
//! ES256 verification with a key parsed from its `jwk`, one thumbprint,
//! the proof's claims, the in-memory replay store). Also measured, in the
//! same units: one bare ES256 verification (aws-lc-rs, key parsed per
//! call), so that the extra cost reads as "about one verify".
//!
//! Run: `cargo bench --features dpop,issuer --bench dpop`
//! (`BENCH_QUICK=1` or `-- --test` skips the interleaved ratios.)

mod support;

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, StatusCode};
use serde_json::json;
use support::{Svc, call, quick, ratio, service};
use tower::ServiceExt;
use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Verifier};

const BASE: &str = "https://api.example.com";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Client {
    pair: EcdsaKeyPair,
    jwk: serde_json::Value,
}

impl Client {
    fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let p = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])});
        Client { pair, jwk }
    }

    fn jkt(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            self.jwk["x"], self.jwk["y"]
        );
        b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    fn proof(&self, token: &str, jti: usize) -> HeaderValue {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let ath = b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let payload = json!({"jti": format!("bench-{jti}"), "htm": "GET",
                             "htu": format!("{BASE}/"), "iat": iat, "ath": ath});
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        HeaderValue::from_str(&format!("{input}.{}", b64(sig))).unwrap()
    }
}

/// One DPoP request, which must pass without waiting.
fn call_dpop(svc: &Svc, auth: &HeaderValue, proof: &HeaderValue) {
    let req = Request::builder()
        .uri("/")
        .header(AUTHORIZATION, black_box(auth).clone())
        .header("dpop", black_box(proof).clone())
        .body(())
        .expect("request");
    let fut = pin!(svc.clone().oneshot(req));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(res)) => assert_eq!(res.status(), StatusCode::OK),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("an in-memory replay store must not wait"),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt
        .block_on(Issuer::start_with(Algorithm::ES256))
        .expect("issuer");
    let verifier = || {
        Verifier::builder()
            .jwks(issuer.jwks_json())
            .issuer(issuer.url())
            .audience("api")
            .build()
            .expect("verifier")
    };
    let client = Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let bound = issuer.mint(&json!({"iss": issuer.url(), "sub": "bench", "aud": "api",
        "iat": now, "exp": now + 3600, "cnf": {"jkt": client.jkt()}}));
    let plain = issuer.token("bench", "api");
    let policy = DpopPolicy::builder(DpopMode::Allowed)
        .base_url(BASE)
        .build()
        .expect("policy");
    let bearer_svc = service(JwtAuthLayer::new(verifier()));
    let dpop_svc = service(JwtAuthLayer::new(verifier()).dpop(policy));
    let bearer = HeaderValue::from_str(&format!("Bearer {plain}")).unwrap();
    let dpop = HeaderValue::from_str(&format!("DPoP {bound}")).unwrap();

    // Proofs, each used once (the replay store refuses a second use).
    let rounds = 21;
    let n = 500;
    let criterion_proofs = 200_000;
    let quick = quick();
    let total = if quick {
        10
    } else {
        rounds * n + criterion_proofs
    };
    let proofs: Vec<HeaderValue> = (0..total).map(|i| client.proof(&bound, i)).collect();
    let next = Cell::new(0usize);
    let take = || {
        let i = next.get();
        next.set(i + 1);
        &proofs[i]
    };
    call(&bearer_svc, &bearer);
    call_dpop(&dpop_svc, &dpop, take());

    // A bare ES256 verification, key parsed per call (as a proof's is).
    let sample = proofs[0].to_str().unwrap().to_owned();
    let (input, sig) = sample.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let point = client.pair.public_key().as_ref().to_vec();
    let es256 = || {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, black_box(&point))
            .verify(black_box(input.as_bytes()), black_box(&sig))
            .expect("verifies")
    };

    if !quick {
        let r_dpop = ratio(
            rounds,
            || (0..n).for_each(|_| call(&bearer_svc, &bearer)),
            || (0..n).for_each(|_| call_dpop(&dpop_svc, &dpop, take())),
        );
        let r_verify = ratio(
            rounds,
            || (0..n).for_each(|_| call(&bearer_svc, &bearer)),
            || (0..n).for_each(|_| es256()),
        );
        println!(
            "\ndpop/bearer request, median of {rounds} interleaved rounds of {n}: {r_dpop:.3}"
        );
        println!(
            "es256 verify/bearer request, median of {rounds} interleaved rounds of {n}: {r_verify:.3}"
        );
        println!(
            "extra cost of DPoP in ES256 verifies: {:.2}",
            (r_dpop - 1.0) / r_verify
        );
    }

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("es256_request");
    group.bench_function("bearer", |b| b.iter(|| call(&bearer_svc, &bearer)));
    group.bench_function("es256_verify", |b| b.iter(es256));
    if !quick {
        group.bench_function("dpop", |b| {
            b.iter(|| {
                if next.get() < proofs.len() {
                    call_dpop(&dpop_svc, &dpop, take());
                }
            })
        });
    }
    group.finish();
    c.final_summary();
    drop(rt);
}
