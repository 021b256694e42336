//! What the layer benches share: a no-op service behind the layer, one
//! request driven by a single poll, and interleaved ratios.

// Each bench uses part of this module.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::ServiceExt;
use tower::util::ServiceFn;
use tower_jwt_auth::layer::JwtAuth;

pub type Handler = fn(Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>>;
pub type Svc = JwtAuth<ServiceFn<Handler>>;

/// The no-op service.
pub fn handler(_req: Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>> {
    std::future::ready(Ok(Response::new(String::new())))
}

/// A service: `layer` around the no-op handler.
pub fn service(layer: tower_jwt_auth::JwtAuthLayer) -> Svc {
    tower::Layer::layer(&layer, tower::service_fn(handler as Handler))
}

/// One request with `bearer` through `svc`, which must answer 200 on the
/// first poll (keys cached, nothing to wait for).
pub fn call<S>(svc: &S, bearer: &HeaderValue)
where
    S: tower::Service<Request<()>, Response = Response<String>, Error = Infallible> + Clone,
{
    let req = Request::builder()
        .header(AUTHORIZATION, black_box(bearer).clone())
        .body(())
        .expect("request");
    let fut = pin!(svc.clone().oneshot(req));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(res)) => {
            assert_eq!(res.status(), StatusCode::OK);
            black_box(res);
        }
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("a cached key must not wait"),
    }
}

/// Median over `rounds` interleaved rounds (A then B, B then A, ...) of
/// `time(b) / time(a)`.
pub fn ratio(rounds: usize, a: impl Fn(), b: impl Fn()) -> f64 {
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
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

/// Criterion's test mode, `--list`, or `BENCH_QUICK`: skip the ratios.
pub fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list")
}
