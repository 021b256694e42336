//! Heap allocations per verified request through the layer, counted by a
//! `#[global_allocator]` that wraps the system allocator.
//!
//! Two paths, both RS256 over a no-op service and one poll: a full
//! verification with static keys, and a hit in the verified-token cache.
//! The request itself (`Request::builder`, the header value) is built
//! outside the counted section; what is counted is `oneshot` through the
//! layer and the inner service up to the response.
//!
//! Run: `cargo bench --features issuer,cache --bench alloc`
//! (`BENCH_QUICK=1`, `-- --test` or `cargo test --benches` run fewer
//! requests; the counts are the same. `ALLOC_TRACE=1` prints a backtrace of
//! every allocation of one call of each row, on stderr.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::util::ServiceFn;
use tower::{Layer, ServiceExt};
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::layer::JwtAuth;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, JsonClaims, JwtAuthLayer, Key, Verifier};

/// Counts allocations (and reallocations, and bytes) while `ON` is set.
struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// `ALLOC_TRACE=1`: print a backtrace for each counted allocation of one
/// request of each kind, to find where they come from.
static TRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    static IN_TRACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn note(layout: Layout) {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
    if TRACE.load(Ordering::Relaxed) && !IN_TRACE.with(|t| t.replace(true)) {
        let bt = std::backtrace::Backtrace::force_capture();
        eprintln!("--- allocation of {} bytes\n{bt}", layout.size());
        IN_TRACE.with(|t| t.set(false));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            note(layout);
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            note(layout);
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            REALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(
                new_size.saturating_sub(layout.size()) as u64,
                Ordering::Relaxed,
            );
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type Handler = fn(Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>>;
type Svc = JwtAuth<ServiceFn<Handler>>;

fn handler(_req: Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>> {
    std::future::ready(Ok(Response::new(String::new())))
}

fn request(bearer: &HeaderValue) -> Request<()> {
    Request::builder()
        .header(AUTHORIZATION, bearer.clone())
        .body(())
        .expect("request")
}

/// One request through `svc`; only this is counted.
fn call(svc: &Svc, req: Request<()>) {
    let fut = pin!(svc.clone().oneshot(req));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(res)) => {
            assert_eq!(res.status(), StatusCode::OK);
            black_box(res);
        }
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("static keys never wait"),
    }
}

fn call_typed(svc: &JwtAuth<ServiceFn<Handler>, Sub>, req: Request<()>) {
    let fut = pin!(svc.clone().oneshot(req));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(res)) => {
            assert_eq!(res.status(), StatusCode::OK);
            black_box(res);
        }
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("static keys never wait"),
    }
}

struct Count {
    allocs: f64,
    reallocs: f64,
    bytes: f64,
}

/// Allocations per call of `f` over `n` calls (after a warm-up). `f` gets
/// a fresh request (built before counting starts) and counts what it runs
/// between `on()` and `off()`.
fn per_call(n: u64, bearer: &HeaderValue, f: &dyn Fn(Request<()>)) -> Count {
    for _ in 0..10 {
        f(request(bearer));
    }
    if std::env::var_os("ALLOC_TRACE").is_some() {
        TRACE.store(true, Ordering::SeqCst);
        f(request(bearer));
        TRACE.store(false, Ordering::SeqCst);
    }
    ALLOCS.store(0, Ordering::SeqCst);
    REALLOCS.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    for _ in 0..n {
        f(request(bearer));
    }
    let per = |c: &AtomicU64| c.load(Ordering::SeqCst) as f64 / n as f64;
    Count {
        allocs: per(&ALLOCS),
        reallocs: per(&REALLOCS),
        bytes: per(&BYTES),
    }
}

fn on() {
    ON.store(true, Ordering::SeqCst);
}

fn off() {
    ON.store(false, Ordering::SeqCst);
}

/// A typed claims struct, instead of the default `JsonClaims` map.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Sub {
    sub: String,
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list");
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = if quick { 20 } else { 2_000 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(async { Issuer::start_with(Algorithm::RS256).await.expect("issuer") });
    let verifier = || {
        Verifier::builder()
            .jwks(issuer.jwks_json())
            .issuer(issuer.url())
            .audience("api")
            .build()
            .expect("verifier")
    };
    let plain = JwtAuthLayer::new(verifier()).layer(tower::service_fn(handler as Handler));
    let cached = JwtAuthLayer::new(verifier())
        .cache(TokenCache::new())
        .layer(tower::service_fn(handler as Handler));
    let bearer =
        HeaderValue::from_str(&format!("Bearer {}", issuer.token("bench", "api"))).expect("header");

    let typed = JwtAuthLayer::new(verifier())
        .claims::<Sub>()
        .layer(tower::service_fn(handler as Handler));
    let bare = verifier();
    let token = issuer.token("bench", "api");

    // HS256: a static secret (the same request, an HMAC instead of RSA).
    let secret = [7u8; 32];
    let hmac = JwtAuthLayer::new(
        Verifier::builder()
            .key(Key::hmac(Algorithm::HS256, secret).expect("hmac key"))
            .issuer(issuer.url())
            .audience("api")
            .build()
            .expect("verifier"),
    )
    .layer(tower::service_fn(handler as Handler));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let hs_token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": "bench", "aud": "api", "iss": issuer.url(), "exp": now + 3600, "iat": now}),
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .expect("encode");
    let hs_bearer = HeaderValue::from_str(&format!("Bearer {hs_token}")).expect("header");

    let rows: Vec<(&str, Count)> = vec![
        (
            "layer: full verification, RS256 static keys (`JsonClaims`)",
            per_call(n, &bearer, &|req| {
                on();
                call(&plain, req);
                off();
            }),
        ),
        (
            "layer: full verification, HS256 static key (`JsonClaims`)",
            per_call(n, &hs_bearer, &|req| {
                on();
                call(&hmac, req);
                off();
            }),
        ),
        (
            "layer: verified-token cache hit",
            per_call(n, &bearer, &|req| {
                on();
                call(&cached, req);
                off();
            }),
        ),
        (
            "layer: full verification, typed claims (`struct { sub: String }`)",
            per_call(n, &bearer, &|req| {
                on();
                call_typed(&typed, req);
                off();
            }),
        ),
        (
            "part: `Verifier::verify::<JsonClaims>` alone (no layer)",
            per_call(n, &bearer, &|_| {
                on();
                black_box(
                    bare.verify::<JsonClaims>(black_box(&token))
                        .expect("verify"),
                );
                off();
            }),
        ),
        (
            "part: `Verifier::verify::<struct { sub }>` alone",
            per_call(n, &bearer, &|_| {
                on();
                black_box(bare.verify::<Sub>(black_box(&token)).expect("verify"));
                off();
            }),
        ),
        (
            "part: `svc.clone()` (done per request by `oneshot` here, and by axum)",
            per_call(n, &bearer, &|_| {
                on();
                black_box(plain.clone());
                off();
            }),
        ),
        (
            "part: one `Extensions::insert` on a fresh request (what the layer adds with `JsonClaims`)",
            per_call(n, &bearer, &|mut req| {
                on();
                req.extensions_mut().insert(1u64);
                off();
                black_box(req);
            }),
        ),
        (
            "part: two `Extensions::insert` on a fresh request (with typed claims)",
            per_call(n, &bearer, &|mut req| {
                on();
                req.extensions_mut().insert(1u64);
                req.extensions_mut().insert(2u32);
                off();
                black_box(req);
            }),
        ),
        (
            "not counted above: building the request (`Request::builder`, header clone)",
            per_call(n, &bearer, &|_| {
                on();
                black_box(request(&bearer));
                off();
            }),
        ),
    ];
    println!(
        "Heap allocations per request (RS256 token from the built-in issuer, {n} calls each):"
    );
    println!();
    println!("| what is counted | allocations | reallocations | bytes allocated |");
    println!("|---|---:|---:|---:|");
    for (name, c) in &rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.0} |",
            c.allocs, c.reallocs, c.bytes
        );
    }
    drop(rt);
}
