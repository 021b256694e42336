//! Opaque tokens: a cached introspection answer against a full RS256
//! verification, both through the layer over a no-op service; the RS256
//! verification followed by a cached "still active" answer
//! (`JwtThenIntrospect`, real-time revocation) against the verification
//! alone; and how many
//! requests one introspection call serves under a repeated-token load
//! (a loopback endpoint answering after 20 ms).
//!
//! Run: `cargo bench --features introspection,issuer --bench introspect`
//! (`BENCH_QUICK=1` or `-- --test` skips the interleaved ratio and the load.)

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use criterion::Criterion;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use support::{call, quick, ratio, service};
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::introspection::{Introspector, JwtThenIntrospect};
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Verifier};
use tower_layer::Layer;

async fn answer(State(calls): State<Arc<AtomicUsize>>) -> &'static str {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    r#"{"active":true,"token_type":"Bearer","sub":"bench","aud":"api","scope":"read","exp":4102444800}"#
}

fn main() {
    // The endpoint and the issuer run on a worker thread of their own.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let calls = Arc::new(AtomicUsize::new(0));
    let endpoint = rt.block_on(async {
        let app = Router::new()
            .route("/introspect", post(answer))
            .with_state(Arc::clone(&calls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/introspect", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        url
    });
    let issuer = rt.block_on(async { Issuer::start_with(Algorithm::RS256).await.expect("issuer") });
    let verifier = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience("api")
        .build()
        .expect("verifier");
    let jwt = service(JwtAuthLayer::new(verifier.clone()));
    let introspector = Introspector::builder(endpoint.clone())
        .client_credentials("api", "secret")
        .audience("api")
        .build()
        .expect("introspector");
    let opaque_layer = JwtAuthLayer::new(introspector.clone());
    let opaque = service(opaque_layer.clone());
    let revocable_layer = JwtAuthLayer::new(JwtThenIntrospect::new(verifier, introspector));
    let revocable = service(revocable_layer.clone());

    let bearer = |t: &str| HeaderValue::from_str(&format!("Bearer {t}")).expect("header");
    let signed = bearer(&issuer.token("bench", "api"));
    let token = bearer("2YotnFZFEjr1zCsicMWpAA");
    // Warm: the first request for the opaque token makes the call.
    rt.block_on(request(&opaque_layer, token.clone()));
    rt.block_on(request(&revocable_layer, signed.clone()));
    call(&jwt, &signed);
    call(&opaque, &token);
    call(&revocable, &signed);

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("opaque");
    group.bench_function("rs256_verify", |b| b.iter(|| call(&jwt, &signed)));
    group.bench_function("introspection_hit", |b| b.iter(|| call(&opaque, &token)));
    group.bench_function("rs256_then_introspection_hit", |b| {
        b.iter(|| call(&revocable, &signed))
    });
    group.finish();
    c.final_summary();

    if quick() {
        return;
    }
    let hit = ratio(
        21,
        || (0..2000).for_each(|_| call(&opaque, &token)),
        || (0..2000).for_each(|_| call(&jwt, &signed)),
    );
    println!(
        "\nfull RS256 verification / cached introspection hit, median of 21 interleaved rounds: {hit:.1}x"
    );
    let then = ratio(
        21,
        || (0..2000).for_each(|_| call(&jwt, &signed)),
        || (0..2000).for_each(|_| call(&revocable, &signed)),
    );
    println!(
        "RS256 verification then cached introspection hit / RS256 verification alone, \
         median of 21 interleaved rounds: {then:.2}x"
    );

    // Repeated-token load: 2,000 requests over 20 distinct tokens, 100 at
    // a time, against a fresh introspector (empty cache).
    let fresh = JwtAuthLayer::new(
        Introspector::builder(endpoint)
            .client_credentials("api", "secret")
            .audience("api")
            .build()
            .expect("introspector"),
    );
    let before = calls.load(Ordering::SeqCst);
    rt.block_on(async {
        for batch in 0..20 {
            let requests: Vec<_> = (0..100)
                .map(|i| {
                    let layer = fresh.clone();
                    let token = bearer(&format!("opaque-token-{}", (batch * 100 + i) % 20));
                    tokio::spawn(async move { request(&layer, token).await })
                })
                .collect();
            for r in requests {
                assert_eq!(r.await.expect("task"), StatusCode::OK);
            }
        }
    });
    let made = calls.load(Ordering::SeqCst) - before;
    println!(
        "repeated-token load: 2000 requests, 20 distinct tokens: {made} introspection calls \
         ({:.0} requests per call)",
        2000.0 / made as f64
    );
}

/// One request through `layer`, waiting as needed.
async fn request(layer: &JwtAuthLayer, bearer: HeaderValue) -> StatusCode {
    let svc = layer.layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let req = Request::builder()
        .header(AUTHORIZATION, bearer)
        .body(())
        .expect("request");
    svc.oneshot(req).await.expect("infallible").status()
}
