//! What the layer reports: `tracing` spans (outcome, reason, iss, kid;
//! never the token) and `metrics` counters and histograms, checked with a
//! debugging recorder.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use tower::{Layer, ServiceExt, service_fn};
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{JwtAuthLayer, Verifier};

/// Runs one request through `layer` synchronously (static keys never wait).
fn call(layer: &JwtAuthLayer, token: Option<&str>) -> StatusCode {
    let svc = layer.layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let mut req = Request::builder();
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let fut = pin!(svc.oneshot(req.body(()).unwrap()));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(res)) => res.status(),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("static keys never wait"),
    }
}

struct Fixture {
    _rt: tokio::runtime::Runtime,
    issuer: Issuer,
    layer: JwtAuthLayer,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer = rt.block_on(Issuer::start()).unwrap();
    let v = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience("api")
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(v).cache(TokenCache::new());
    Fixture {
        _rt: rt,
        issuer,
        layer,
    }
}

#[test]
fn counters_and_histograms() {
    let f = fixture();
    let good = f.issuer.token("ada", "api");
    let expired = f
        .issuer
        .mint(&json!({"iss": f.issuer.url(), "aud": "api", "exp": 1000}));
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        assert_eq!(call(&f.layer, Some(&good)), StatusCode::OK);
        assert_eq!(call(&f.layer, Some(&good)), StatusCode::OK); // a cache hit
        assert_eq!(call(&f.layer, Some(&expired)), StatusCode::UNAUTHORIZED);
        assert_eq!(call(&f.layer, None), StatusCode::UNAUTHORIZED);
    });
    let mut counters = std::collections::HashMap::new();
    let mut histograms = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => {
                counters.insert(name, n);
            }
            DebugValue::Histogram(v) => histograms += v.len(),
            DebugValue::Gauge(_) => {}
        }
    }
    assert_eq!(
        counters.get("jwt_auth_verifications_total{outcome=accepted,reason=ok}"),
        Some(&2),
        "{counters:?}"
    );
    assert_eq!(
        counters.get("jwt_auth_verifications_total{outcome=refused,reason=expired}"),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(
        counters.get("jwt_auth_verifications_total{outcome=refused,reason=missing_token}"),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(
        counters.get("jwt_auth_token_cache_hits_total{}"),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(histograms, 4, "one verification time per request");
}

use crate::support::logs;
use logs::Logs;

#[test]
fn spans_name_the_outcome_and_never_the_token() {
    let f = fixture();
    let good = f.issuer.token("ada", "api");
    let expired = f
        .issuer
        .mint(&json!({"iss": f.issuer.url(), "aud": "api", "exp": 1000}));
    let (logs, guard) = Logs::capture_with(
        tracing::Level::DEBUG,
        tracing_subscriber::fmt::format::FmtSpan::CLOSE,
    );
    assert_eq!(call(&f.layer, Some(&good)), StatusCode::OK);
    assert_eq!(call(&f.layer, Some(&expired)), StatusCode::UNAUTHORIZED);
    drop(guard);
    let out = logs.text();
    let kid = f.issuer.signing_kid();
    assert!(out.contains("jwt_auth.verify"), "{out}");
    assert!(
        out.contains("outcome=\"accepted\"") || out.contains("outcome=accepted"),
        "{out}"
    );
    assert!(
        out.contains("reason=\"expired\"") || out.contains("reason=expired"),
        "{out}"
    );
    assert!(out.contains(&kid), "kid recorded: {out}");
    assert!(out.contains(&f.issuer.url()), "iss recorded: {out}");
    for token in [&good, &expired] {
        let (_, sig) = token.rsplit_once('.').unwrap();
        assert!(!out.contains(sig), "a signature leaked into the logs");
        assert!(
            !out.contains(token.split('.').nth(1).unwrap()),
            "a payload leaked"
        );
    }
}

use crate::support as common;

/// What the crate logs about hostile tokens, at TRACE, with every event and
/// span field: never a claim value, never more than a bounded, escaped
/// excerpt of a header field, never a raw line break from the token.
#[test]
fn logs_carry_no_claim_values_and_only_bounded_header_excerpts() {
    use common::*;
    use tower_jwt_auth::{Algorithm, JwtAuthLayer};

    #[derive(Clone, serde::Deserialize)]
    #[allow(dead_code)]
    struct Typed {
        age: u8,
    }
    let alg = Algorithm::ES256;
    let verifier = Verifier::builder()
        .key(verify_key(alg))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let json_layer = JwtAuthLayer::new(verifier.clone()).cache(TokenCache::new());
    let typed_layer = JwtAuthLayer::new(verifier).claims::<Typed>();

    let secret_claims = |extra: serde_json::Value| {
        let mut c = claims();
        c["email"] = json!("SECRET-EMAIL@example.com");
        c["sub"] = json!("SECRET-SUB");
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string()
    };
    let long_kid = format!("{}\nFAKE LOG LINE level=ERROR", "A".repeat(16 * 1024 - 200));
    let header = |h: serde_json::Value| h.to_string();
    let tokens = [
        // A 16 KiB kid with a line break: refused (unknown kid).
        token_raw(
            alg,
            &header(json!({"alg": "ES256", "kid": long_kid})),
            &secret_claims(json!({})),
        ),
        // An alg that is a long attacker string.
        token_raw(
            alg,
            &header(json!({"alg": format!("none\nFAKE{}", "B".repeat(500)), "kid": "k1"})),
            &secret_claims(json!({})),
        ),
        // Registered claims of the wrong type, holding secrets.
        token_raw(
            alg,
            &header(json!({"alg": "ES256", "kid": "k1"})),
            &secret_claims(json!({"exp": "SECRET-EXP"})),
        ),
        token_raw(
            alg,
            &header(json!({"alg": "ES256", "kid": "k1"})),
            &secret_claims(json!({"iss": ["SECRET-ISS"]})),
        ),
        // Expired, and a good token (accepted, then a cache hit).
        token_raw(
            alg,
            &header(json!({"alg": "ES256", "kid": "k1"})),
            &secret_claims(json!({"exp": 1000})),
        ),
        token_raw(
            alg,
            &header(json!({"alg": "ES256", "kid": "k1"})),
            &secret_claims(json!({"age": "SECRET-AGE"})),
        ),
    ];
    let out_of_range = token_raw(
        alg,
        &header(json!({"alg": "ES256", "kid": "k1"})),
        &format!(r#"{{"x":1e400,{}"#, &secret_claims(json!({}))[1..]),
    );

    let (logs, guard) = Logs::capture_with(
        tracing::Level::TRACE,
        tracing_subscriber::fmt::format::FmtSpan::FULL,
    );
    let mut statuses = Vec::new();
    {
        for t in tokens.iter().chain([&out_of_range]) {
            statuses.push(call(&json_layer, Some(t)));
            statuses.push(call(&json_layer, Some(t)));
            let svc = typed_layer.layer(service_fn(|_req: Request<()>| async {
                Ok::<_, Infallible>(Response::new(()))
            }));
            let req = Request::builder()
                .header(AUTHORIZATION, format!("Bearer {t}"))
                .body(())
                .unwrap();
            let fut = pin!(svc.oneshot(req));
            match fut.poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(res)) => statuses.push(res.status()),
                _ => panic!("static keys never wait"),
            }
        }
    }
    drop(guard);
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
    let out = logs.text();
    assert!(out.contains("jwt_auth.verify"), "{out}");
    assert!(
        !out.contains("SECRET"),
        "a claim value reached the logs:\n{out}"
    );
    assert!(
        !out.contains(&"A".repeat(65)),
        "more than a bounded excerpt of the kid reached the logs"
    );
    assert!(!out.contains(&"B".repeat(65)), "the alg was not bounded");
    for line in out.lines() {
        assert!(
            !line.starts_with("FAKE"),
            "a line break from a token reached the logs: {line}"
        );
        assert!(line.len() < 1024, "an overlong log line: {line}");
    }
}
