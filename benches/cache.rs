//! The verified-token cache: a hit against a full RS256 verification, and
//! a mixed workload (1,000 distinct tokens, each used 50 times) with and
//! without the cache, all through the layer over a no-op service.
//!
//! Run: `cargo bench --features cache,issuer --bench cache`
//! (`BENCH_QUICK=1` or `-- --test` skips the interleaved ratios.)

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use criterion::Criterion;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::util::ServiceFn;
use tower::{Layer, ServiceExt};
use tower_jwt_auth::{Algorithm, Issuer, JwtAuth, JwtAuthLayer, TokenCache, Verifier};

type Handler = fn(Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>>;
type Svc = JwtAuth<ServiceFn<Handler>>;

fn handler(_req: Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>> {
    std::future::ready(Ok(Response::new(String::new())))
}

fn call(svc: &Svc, bearer: &HeaderValue) {
    let req = Request::builder()
        .header(AUTHORIZATION, black_box(bearer).clone())
        .body(())
        .expect("request");
    let fut = pin!(svc.clone().oneshot(req));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(res)) => assert_eq!(res.status(), StatusCode::OK),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("static keys never wait"),
    }
}

fn time(f: impl Fn()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Median over interleaved rounds of `time(b) / time(a)`.
fn ratio(rounds: usize, a: impl Fn(), b: impl Fn()) -> f64 {
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let ta = time(&a);
                time(&b) / ta
            } else {
                let tb = time(&b);
                tb / time(&a)
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
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
    let plain = layer.clone().layer(tower::service_fn(handler as Handler));
    let cached_layer = layer.cache(TokenCache::new());
    let cached = cached_layer
        .clone()
        .layer(tower::service_fn(handler as Handler));

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

    let quick = std::env::var_os("BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list");
    if quick {
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
    JwtAuthLayer::new(verifier)
        .cache(TokenCache::new())
        .layer(tower::service_fn(handler as Handler))
}
