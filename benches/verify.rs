//! Verification cost per algorithm, three ways:
//!
//! * `bare`: `jsonwebtoken::decode` with a pre-built `DecodingKey` and a
//!   `Validation` checking `aud` and `exp`, the baseline;
//! * `verifier`: [`Verifier::verify`] into [`JsonClaims`];
//! * `layer`: a request through [`JwtAuthLayer`] around a no-op service.
//!
//! After the criterion run, an interleaved measurement prints the median
//! `verifier/bare` and `layer/bare` ratios, which hold up better than
//! absolute figures on a noisy machine. It is skipped in criterion's test
//! mode (`-- --test`), with `--list`, and when `BENCH_QUICK` is set.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use tower::util::ServiceFn;
use tower::{Layer, ServiceExt};
use tower_jwt_auth::layer::JwtAuth;
use tower_jwt_auth::{Algorithm, JsonClaims, JwtAuthLayer, Key, Verifier};

const AUDIENCE: &str = "api";
const ISSUER: &str = "https://issuer.test";
const KID: &str = "k1";
const HMAC_SECRET: [u8; 32] = *b"bench-secret-0123456789abcdef!!!";

/// Rounds of the interleaved measurement.
const ROUNDS: usize = 15;
/// Target duration of one batch of the interleaved measurement.
const BATCH: Duration = Duration::from_millis(50);

type Handler = fn(Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>>;
type Svc = JwtAuth<ServiceFn<Handler>>;

fn handler(_req: Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>> {
    std::future::ready(Ok(Response::new(String::new())))
}

/// Everything one algorithm needs, built once.
struct Case {
    /// Lower-case name, used as the criterion group.
    name: &'static str,
    token: String,
    bearer: HeaderValue,
    decoding_key: DecodingKey,
    validation: Validation,
    verifier: Verifier,
    service: Svc,
}

impl Case {
    fn new(alg: Algorithm) -> Case {
        let (name, jwt_alg, encoding_key, decoding_key, key) = match alg {
            Algorithm::RS256 => (
                "rs256",
                jsonwebtoken::Algorithm::RS256,
                EncodingKey::from_rsa_pem(&read("rsa.key")).expect("rsa.key"),
                DecodingKey::from_rsa_pem(&read("rsa.pub")).expect("rsa.pub"),
                Key::from_pem(alg, read("rsa.pub")).expect("rsa.pub"),
            ),
            Algorithm::ES256 => (
                "es256",
                jsonwebtoken::Algorithm::ES256,
                EncodingKey::from_ec_pem(&read("p256.key")).expect("p256.key"),
                DecodingKey::from_ec_pem(&read("p256.pub")).expect("p256.pub"),
                Key::from_pem(alg, read("p256.pub")).expect("p256.pub"),
            ),
            Algorithm::EdDSA => (
                "eddsa",
                jsonwebtoken::Algorithm::EdDSA,
                EncodingKey::from_ed_pem(&read("ed25519.key")).expect("ed25519.key"),
                DecodingKey::from_ed_pem(&read("ed25519.pub")).expect("ed25519.pub"),
                Key::from_pem(alg, read("ed25519.pub")).expect("ed25519.pub"),
            ),
            Algorithm::HS256 => (
                "hs256",
                jsonwebtoken::Algorithm::HS256,
                EncodingKey::from_secret(&HMAC_SECRET),
                DecodingKey::from_secret(&HMAC_SECRET),
                Key::hmac(alg, HMAC_SECRET).expect("hmac key"),
            ),
            other => panic!("no bench case for {other}"),
        };

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let claims = serde_json::json!({
            "sub": "bench",
            "aud": AUDIENCE,
            "iss": ISSUER,
            "exp": now + 3600,
            "iat": now,
        });
        let mut header = Header::new(jwt_alg);
        header.kid = Some(KID.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &encoding_key).expect("encode");
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).expect("header value");

        // Same checks as the verifier: `aud` and a required, unexpired `exp`
        // with the verifier's default leeway of 30 s.
        let mut validation = Validation::new(jwt_alg);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.leeway = tower_jwt_auth::Verifier::DEFAULT_LEEWAY.as_secs();

        let verifier = Verifier::builder()
            .key(key.with_kid(KID))
            .audience(AUDIENCE)
            .build()
            .expect("verifier");
        let service =
            JwtAuthLayer::new(verifier.clone()).layer(tower::service_fn(handler as Handler));

        let case = Case {
            name,
            token,
            bearer,
            decoding_key,
            validation,
            verifier,
            service,
        };
        // Each path must accept the token, or the figures mean nothing.
        case.bare();
        case.verify();
        case.layer();
        case
    }

    fn bare(&self) {
        let data = jsonwebtoken::decode::<serde_json::Value>(
            black_box(&self.token),
            &self.decoding_key,
            &self.validation,
        )
        .expect("jsonwebtoken accepts the token");
        black_box(data);
    }

    fn verify(&self) {
        let claims = self
            .verifier
            .verify::<JsonClaims>(black_box(&self.token))
            .expect("verifier accepts the token");
        black_box(claims);
    }

    fn layer(&self) {
        let req = Request::builder()
            .uri("/")
            .header(AUTHORIZATION, black_box(&self.bearer).clone())
            .body(())
            .expect("request");
        let fut = pin!(self.service.clone().oneshot(req));
        let mut cx = Context::from_waker(Waker::noop());
        match fut.poll(&mut cx) {
            Poll::Ready(Ok(res)) => {
                assert_eq!(res.status(), StatusCode::OK, "layer refused the token");
                black_box(res);
            }
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => panic!("the layer future was not ready on the first poll"),
        }
    }
}

fn read(file: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "keys", file]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cases() -> Vec<Case> {
    [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ]
    .into_iter()
    .map(Case::new)
    .collect()
}

fn bench_verify(c: &mut Criterion, cases: &[Case]) {
    for case in cases {
        let mut group = c.benchmark_group(case.name);
        group.bench_function("bare", |b| b.iter(|| case.bare()));
        group.bench_function("verifier", |b| b.iter(|| case.verify()));
        group.bench_function("layer", |b| b.iter(|| case.layer()));
        group.finish();
    }
}

/// Seconds for `n` runs of `f`.
fn time(n: u64, f: impl Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

struct Ratios {
    name: &'static str,
    n: u64,
    bare_us: f64,
    verifier: f64,
    layer: f64,
}

/// Alternates batches of the three paths so that slow phases of a noisy
/// machine hit all of them alike, and returns the median per-round ratios.
fn interleaved(case: &Case) -> Ratios {
    // Warm up, then size a batch so that a bare batch takes about BATCH.
    let warm = Instant::now();
    let mut runs = 0u64;
    while warm.elapsed() < BATCH {
        case.bare();
        case.verify();
        case.layer();
        runs += 1;
    }
    let per_op = time(runs.max(100), || case.bare()) / runs.max(100) as f64;
    let n = ((BATCH.as_secs_f64() / per_op) as u64).max(10);

    let mut bare_us = Vec::with_capacity(ROUNDS);
    let mut verifier = Vec::with_capacity(ROUNDS);
    let mut layer = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        // Flip the order every round so drift does not favour one path.
        let (b, v, l) = if round % 2 == 0 {
            let b = time(n, || case.bare());
            let v = time(n, || case.verify());
            let l = time(n, || case.layer());
            (b, v, l)
        } else {
            let l = time(n, || case.layer());
            let v = time(n, || case.verify());
            let b = time(n, || case.bare());
            (b, v, l)
        };
        bare_us.push(b / n as f64 * 1e6);
        verifier.push(v / b);
        layer.push(l / b);
    }
    Ratios {
        name: case.name,
        n,
        bare_us: median(&mut bare_us),
        verifier: median(&mut verifier),
        layer: median(&mut layer),
    }
}

fn print_ratios(cases: &[Case]) {
    let rows: Vec<Ratios> = cases.iter().map(interleaved).collect();
    println!();
    println!("Interleaved medians over {ROUNDS} rounds (ratio < 1: faster than bare jsonwebtoken)");
    println!();
    println!("| alg | N/batch | bare µs/op | verifier/bare | layer/bare |");
    println!("|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} | {:.3} | {:.3} |",
            r.name, r.n, r.bare_us, r.verifier, r.layer
        );
    }
}

fn quick_mode() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list")
}

fn main() {
    let cases = cases();
    let mut criterion = Criterion::default().configure_from_args();
    bench_verify(&mut criterion, &cases);
    criterion.final_summary();
    if !quick_mode() {
        print_ratios(&cases);
    }
}
