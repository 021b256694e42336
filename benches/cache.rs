//! The verified-token cache: a hit against a full RS256 verification, and
//! a mixed workload (1,000 distinct tokens, each used 50 times) with and
//! without the cache, all through the layer over a no-op service.
//!
//! Run: `cargo bench --features cache,issuer --bench cache`
//! (`BENCH_QUICK=1` or `-- --test` skips the interleaved ratios.)

mod support;

use std::time::Instant;

use criterion::Criterion;
use http::HeaderValue;
use support::{Svc, call, quick, ratio, service};
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Verifier};

fn time(f: impl Fn()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(async { Issuer::start_with(Algorithm::RS256).await.expect("issuer") });
    let verifier = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience("api")
        .build()
        .expect("verifier");
    let layer = JwtAuthLayer::new(verifier);
    let plain = service(layer.clone());
    let cached = service(layer.cache(TokenCache::new()));

    let bearer = |t: String| HeaderValue::from_str(&format!("Bearer {t}")).expect("header");
    let one = bearer(issuer.token("bench", "api"));
    call(&plain, &one);
    call(&cached, &one);

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("rs256_cache");
    group.bench_function("verify", |b| b.iter(|| call(&plain, &one)));
    group.bench_function("hit", |b| b.iter(|| call(&cached, &one)));
    group.finish();
    c.final_summary();

    if quick() {
        return;
    }
    let hit = ratio(
        21,
        || (0..2000).for_each(|_| call(&cached, &one)),
        || (0..2000).for_each(|_| call(&plain, &one)),
    );
    println!("\nfull RS256 verification / cache hit, median of 21 interleaved rounds: {hit:.1}x");

    // Mixed: 1,000 distinct tokens, each used 50 times, round-robin. The
    // cached run starts cold each round (a fresh cache per round).
    let tokens: Vec<HeaderValue> = (0..1000)
        .map(|i| bearer(issuer.token(&format!("user-{i}"), "api")))
        .collect();
    let mixed = |svc: &Svc| {
        for _ in 0..50 {
            for t in &tokens {
                call(svc, t);
            }
        }
    };
    let without = time(|| mixed(&plain));
    let fresh = cached_layer_fresh(&issuer);
    let with = time(|| mixed(&fresh));
    let n = 50_000.0;
    println!(
        "mixed 1,000 tokens x 50: {:.0} req/s without the cache, {:.0} req/s with it ({:.1}x)",
        n / without,
        n / with,
        without / with
    );
    drop(rt);
}

fn cached_layer_fresh(issuer: &Issuer) -> Svc {
    let verifier = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience("api")
        .build()
        .expect("verifier");
    service(JwtAuthLayer::new(verifier).cache(TokenCache::new()))
}
