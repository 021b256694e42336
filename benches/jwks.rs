//! Keys from a warm `JwksCache` (served by the built-in issuer on
//! 127.0.0.1) against the same keys given statically, through the layer.
//! The request path for a cached `kid` should cost the same: the gap is
//! expected within noise.
//!
//! Run: `cargo bench --features jwks,issuer --bench jwks`
//! (`BENCH_QUICK=1` or `-- --test` skips the interleaved ratio.)

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
use tower_jwt_auth::{Algorithm, Issuer, JwksCache, JwtAuth, JwtAuthLayer, Verifier};

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
        Poll::Pending => panic!("a cached kid must not wait"),
    }
}

fn time(n: u64, f: impl Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64()
}

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
    let svc = |v: Verifier| JwtAuthLayer::new(v).layer(tower::service_fn(handler as Handler));
    let (remote, fixed) = (svc(remote), svc(fixed));
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

    let quick = std::env::var_os("BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick {
        let n = 1000;
        let mut ratios: Vec<f64> = (0..21)
            .map(|round| {
                if round % 2 == 0 {
                    let s = time(n, || call(&fixed, &bearer));
                    time(n, || call(&remote, &bearer)) / s
                } else {
                    let r = time(n, || call(&remote, &bearer));
                    r / time(n, || call(&fixed, &bearer))
                }
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "\njwks_cache/static, median of {} interleaved rounds of {n}: {:.3}",
            ratios.len(),
            ratios[ratios.len() / 2]
        );
    }
    drop(rt);
}
