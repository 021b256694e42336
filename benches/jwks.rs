//! Keys from a warm `JwksCache` (served by the built-in issuer on
//! 127.0.0.1) against the same keys given statically, through the layer.
//! The request path for a cached `kid` should cost the same: the gap is
//! expected within noise.
//!
//! Run: `cargo bench --features jwks,issuer --bench jwks`
//! (`BENCH_QUICK=1` or `-- --test` skips the interleaved ratio.)

mod support;

use criterion::Criterion;
use http::HeaderValue;
use support::{call, quick, ratio, service};
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Verifier};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (issuer, cache) = rt.block_on(async {
        let issuer = Issuer::start_with(Algorithm::RS256).await.expect("issuer");
        let cache = JwksCache::builder(&issuer.jwks_url())
            .build()
            .expect("cache");
        cache.prefetch().await.expect("prefetch");
        (issuer, cache)
    });
    let remote = Verifier::builder()
        .jwks_cache(cache)
        .issuer(issuer.url())
        .audience("api")
        .build()
        .expect("verifier");
    let fixed = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience("api")
        .build()
        .expect("verifier");
    let remote = service(JwtAuthLayer::new(remote));
    let fixed = service(JwtAuthLayer::new(fixed));
    let bearer =
        HeaderValue::from_str(&format!("Bearer {}", issuer.token("bench", "api"))).expect("header");
    call(&remote, &bearer);
    call(&fixed, &bearer);

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("rs256_keys");
    group.bench_function("static", |b| b.iter(|| call(&fixed, &bearer)));
    group.bench_function("jwks_cache", |b| b.iter(|| call(&remote, &bearer)));
    group.finish();
    c.final_summary();

    if !quick() {
        let n = 1000;
        let r = ratio(
            21,
            || (0..n).for_each(|_| call(&fixed, &bearer)),
            || (0..n).for_each(|_| call(&remote, &bearer)),
        );
        println!("\njwks_cache/static, median of 21 interleaved rounds of {n}: {r:.3}");
    }
    drop(rt);
}
