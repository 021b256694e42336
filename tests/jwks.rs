//! Remote keys against the built-in issuer over real HTTP on 127.0.0.1:
//! single-flight fetches, kid floods, rotation, outages, discovery and
//! Cache-Control.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use serde_json::json;
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::{
    Algorithm, Claims, Issuer, IssuerFailure, JwksCache, JwksCacheBuilder, JwtAuthLayer, Verifier,
};
use tower_layer::Layer;

const AUD: &str = "api";

fn layer(issuer: &Issuer, cache: JwksCache) -> JwtAuthLayer {
    let verifier = Verifier::builder()
        .jwks_cache(cache)
        .issuer(issuer.url())
        .audience(AUD)
        .build()
        .unwrap();
    JwtAuthLayer::new(verifier)
}

fn cache(b: JwksCacheBuilder) -> JwksCache {
    b.algorithms([
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ])
    .build()
    .unwrap()
}

struct Answer {
    status: StatusCode,
    challenge: String,
    retry_after: Option<String>,
    elapsed: Duration,
}

async fn call(layer: &JwtAuthLayer, token: &str) -> Answer {
    let svc = layer.layer(service_fn(|req: Request<String>| async move {
        let sub = req
            .extensions()
            .get::<Claims>()
            .and_then(|c| c.sub().map(str::to_owned))
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(sub))
    }));
    let req = Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let start = Instant::now();
    let res = svc.oneshot(req).await.unwrap();
    Answer {
        status: res.status(),
        challenge: res
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        retry_after: res
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned()),
        elapsed: start.elapsed(),
    }
}

/// A token whose header names `kid` (signed by the current key, so only
/// the kid is "random").
fn with_kid(issuer: &Issuer, kid: &str) -> String {
    let good = issuer.token("user", AUD);
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string();
    format!("{}.{}.{}", e.encode(header), parts[1], parts[2])
}

#[tokio::test]
async fn discovery_then_verify_every_algorithm() {
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let issuer = Issuer::start_with(alg).await.unwrap();
        let l = layer(&issuer, cache(JwksCache::discover(&issuer.url())));
        let a = call(&l, &issuer.token("alice", AUD)).await;
        assert_eq!(a.status, StatusCode::OK, "{alg}: {}", a.challenge);
        assert_eq!(issuer.discovery_requests(), 1);
        assert_eq!(issuer.jwks_requests(), 1);
        // Known kid: no further traffic.
        for _ in 0..20 {
            assert_eq!(
                call(&l, &issuer.token("alice", AUD)).await.status,
                StatusCode::OK
            );
        }
        assert_eq!(issuer.jwks_requests(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_cache_concurrent_requests_make_one_fetch() {
    let issuer = Issuer::start().await.unwrap();
    let l = Arc::new(layer(
        &issuer,
        cache(JwksCache::builder(&issuer.jwks_url())),
    ));
    let token = Arc::new(issuer.token("alice", AUD));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (l, token) = (l.clone(), token.clone());
        tasks.push(tokio::spawn(async move { call(&l, &token).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(issuer.jwks_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kid_flood_makes_at_most_one_fetch() {
    let issuer = Issuer::start().await.unwrap();
    let cache = cache(JwksCache::builder(&issuer.jwks_url()));
    let l = Arc::new(layer(&issuer, cache));
    assert_eq!(
        call(&l, &issuer.token("alice", AUD)).await.status,
        StatusCode::OK
    );
    assert_eq!(issuer.jwks_requests(), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let l = l.clone();
        let bogus = with_kid(
            &issuer,
            &format!("attacker-{i}-{}", i.wrapping_mul(2654435761)),
        );
        let good = issuer.token("alice", AUD);
        tasks.push(tokio::spawn(async move {
            let bad = call(&l, &bogus).await;
            let ok = call(&l, &good).await;
            (bad.status, ok.status)
        }));
        assert!(Instant::now() < deadline, "bounded in time");
    }
    for t in tasks {
        let (bad, ok) = t.await.unwrap();
        assert_eq!(bad, StatusCode::UNAUTHORIZED);
        assert_eq!(ok, StatusCode::OK);
    }
    // The first fetch plus at most one for the unknown kids (the cooldown
    // is 30 s, counted from the first fetch, so here: none at all).
    assert!(
        issuer.jwks_requests() <= 2,
        "{} fetches",
        issuer.jwks_requests()
    );
}

#[tokio::test]
async fn rotation_is_picked_up_after_the_cooldown_and_removal_after_refresh() {
    let issuer = Issuer::start().await.unwrap();
    let cooldown = Duration::from_millis(600);
    let c = cache(JwksCache::builder(&issuer.jwks_url()).cooldown(cooldown));
    let l = layer(&issuer, c.clone());
    let old_token = issuer.token("alice", AUD);
    let old_kid = issuer.signing_kid();
    assert_eq!(call(&l, &old_token).await.status, StatusCode::OK);

    let new_kid = issuer.rotate(Algorithm::ES256).unwrap();
    let new_token = issuer.token("alice", AUD);
    // Within the cooldown the new kid is unknown (no fetch).
    let a = call(&l, &new_token).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(issuer.jwks_requests(), 1);
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
    // Once the cooldown has passed, the first request with the new key passes.
    let a = call(&l, &new_token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.challenge);
    assert_eq!(issuer.jwks_requests(), 2);
    assert_ne!(new_kid, old_kid);

    // Remove the old key; the next refresh drops it.
    assert!(issuer.remove_key(&old_kid));
    assert_eq!(
        call(&l, &old_token).await.status,
        StatusCode::OK,
        "still cached"
    );
    tokio::time::sleep(cooldown + Duration::from_millis(100)).await;
    c.prefetch().await.unwrap();
    let a = call(&l, &old_token).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.challenge.contains("no key matches"), "{}", a.challenge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_keep_known_keys_serving_within_the_timeout() {
    let timeout = Duration::from_millis(800);
    let failures = [
        IssuerFailure::Status(500),
        IssuerFailure::InvalidJson,
        IssuerFailure::HugeBody(10 * 1024 * 1024),
        IssuerFailure::Slow(Duration::from_secs(30)),
    ];
    for failure in failures {
        let issuer = Issuer::start().await.unwrap();
        let c = cache(
            JwksCache::builder(&issuer.jwks_url())
                .timeout(timeout)
                .cooldown(Duration::from_millis(200))
                .max_age_bounds(Duration::from_millis(300), Duration::from_secs(60)),
        );
        issuer.set_cache_control(Some("max-age=0"));
        let l = layer(&issuer, c.clone());
        let token = issuer.token("alice", AUD);
        assert_eq!(call(&l, &token).await.status, StatusCode::OK);
        issuer.set_failure(failure.clone());
        // Background refreshes now fail; requests with the known kid pass
        // without waiting, and an unknown kid waits at most the timeout.
        let end = Instant::now() + Duration::from_millis(1500);
        let mut n = 0;
        while Instant::now() < end {
            let a = call(&l, &token).await;
            assert_eq!(a.status, StatusCode::OK, "{failure:?}");
            assert!(
                a.elapsed < Duration::from_millis(100),
                "{failure:?}: {:?}",
                a.elapsed
            );
            let a = call(&l, &with_kid(&issuer, &format!("new-{n}"))).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{failure:?}");
            assert!(
                a.elapsed < timeout + Duration::from_millis(400),
                "{failure:?}: {:?}",
                a.elapsed
            );
            n += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = c.status();
        assert!(
            status.consecutive_failures() >= 1,
            "{failure:?}: {status:?}"
        );
        assert!(status.last_error().is_some());
        assert!(status.is_ready(), "stale keys still serve");
    }
}

#[tokio::test]
async fn provider_stopped_keeps_serving_then_cold_cache_is_503() {
    let issuer = Issuer::start().await.unwrap();
    let c = cache(JwksCache::builder(&issuer.jwks_url()).timeout(Duration::from_secs(1)));
    let l = layer(&issuer, c.clone());
    let token = issuer.token("alice", AUD);
    assert_eq!(call(&l, &token).await.status, StatusCode::OK);
    issuer.shutdown();
    assert!(c.prefetch().await.is_err(), "connection refused");
    assert_eq!(call(&l, &token).await.status, StatusCode::OK);

    // A cache that never got keys answers 503 with Retry-After, fast.
    let cold = cache(JwksCache::builder(&issuer.jwks_url()).timeout(Duration::from_secs(1)));
    let l = layer(&issuer, cold);
    let a = call(&l, &token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.retry_after.as_deref(), Some("5"));
    assert!(a.elapsed < Duration::from_secs(2));
    // The next one within the backoff does not even try.
    let a = call(&l, &token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn stale_keys_expire_after_max_stale() {
    let issuer = Issuer::start().await.unwrap();
    let c = cache(
        JwksCache::builder(&issuer.jwks_url())
            .timeout(Duration::from_millis(300))
            .max_stale(Duration::from_millis(700)),
    );
    let l = layer(&issuer, c);
    let token = issuer.token("alice", AUD);
    assert_eq!(call(&l, &token).await.status, StatusCode::OK);
    issuer.set_failure(IssuerFailure::Status(503));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        call(&l, &token).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn discovery_with_a_mismatched_issuer_is_refused() {
    let issuer = Issuer::start().await.unwrap();
    issuer.set_discovery_issuer(Some("https://evil.example"));
    let c = cache(JwksCache::discover(&issuer.url()));
    let err = c.prefetch().await.unwrap_err();
    assert!(
        err.to_string().contains("not the configured issuer"),
        "{err}"
    );
    assert_eq!(
        issuer.jwks_requests(),
        0,
        "the JWKS of a mismatched issuer is never fetched"
    );
    let l = layer(&issuer, c);
    assert_eq!(
        call(&l, &issuer.token("alice", AUD)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn cache_control_max_age_sets_the_next_fetch() {
    let short = Issuer::start().await.unwrap();
    short.set_cache_control(Some("public, max-age=1"));
    let long = Issuer::start().await.unwrap();
    long.set_cache_control(Some("public, max-age=3600"));
    let mut caches = Vec::new();
    for issuer in [&short, &long] {
        let c = cache(
            JwksCache::builder(&issuer.jwks_url())
                .max_age_bounds(Duration::from_secs(1), Duration::from_secs(3600)),
        );
        c.prefetch().await.unwrap();
        caches.push(c);
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(
        short.jwks_requests() >= 2,
        "refreshed ahead of a 1 s max-age"
    );
    assert_eq!(
        long.jwks_requests(),
        1,
        "a 1 hour max-age means no refetch yet"
    );
    drop(caches);
}

#[tokio::test]
async fn plain_http_to_other_hosts_and_hmac_are_refused_at_build() {
    assert!(
        JwksCache::builder("http://idp.example/jwks")
            .build()
            .is_err()
    );
    assert!(
        JwksCache::builder("https://idp.example/jwks")
            .algorithms([Algorithm::HS256])
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn several_issuers_each_with_their_own_keys_and_audience() {
    let a = Issuer::start().await.unwrap();
    let b = Issuer::start_with(Algorithm::ES256).await.unwrap();
    let stranger = Issuer::start().await.unwrap();
    let tenant = |issuer: &Issuer, audience: &str| {
        Verifier::builder()
            .jwks_cache(cache(JwksCache::discover(&issuer.url())))
            .issuer(issuer.url())
            .audience(audience)
            .build()
            .unwrap()
    };
    let verifier = Verifier::issuers([tenant(&a, "api-a"), tenant(&b, "api-b")]).unwrap();
    let l = JwtAuthLayer::new(verifier);

    assert_eq!(
        call(&l, &a.token("alice", "api-a")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&l, &b.token("bob", "api-b")).await.status,
        StatusCode::OK
    );
    // Each issuer's audience applies to its own tokens only.
    assert_eq!(
        call(&l, &a.token("alice", "api-b")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // An issuer not configured: refused without any fetch anywhere.
    let before = (a.jwks_requests(), b.jwks_requests());
    let x = call(&l, &stranger.token("mallory", "api-a")).await;
    assert_eq!(x.status, StatusCode::UNAUTHORIZED);
    assert!(x.challenge.contains("issuer"), "{}", x.challenge);
    assert_eq!(stranger.jwks_requests() + stranger.discovery_requests(), 0);
    assert_eq!((a.jwks_requests(), b.jwks_requests()), before);
    // A token claiming issuer A but signed with B's key is checked against
    // A's keys only, and fails.
    let forged = b.mint(&json!({"iss": a.url(), "aud": "api-a", "sub": "x",
        "exp": 4102444800u64}));
    assert_eq!(call(&l, &forged).await.status, StatusCode::UNAUTHORIZED);

    assert!(
        Verifier::issuers([tenant(&a, "x"), tenant(&a, "y")]).is_err(),
        "duplicate issuer"
    );
}
