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
use tower_jwt_auth::jwks::{DEFAULT_TIMEOUT, JwksCache, JwksCacheBuilder};
use tower_jwt_auth::testing::{Issuer, IssuerFailure};
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Verifier};
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

/// The status's wall time is the injected clock's, not the system's.
#[tokio::test]
async fn status_reads_the_injected_clock() {
    let issuer = Issuer::start().await.unwrap();
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let keys = cache(JwksCache::builder(&issuer.jwks_url()).clock(move || at));
    assert_eq!(keys.status().last_success(), None);
    keys.prefetch().await.unwrap();
    assert_eq!(keys.status().last_success(), Some(at));
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
async fn a_burst_of_random_kids_shares_one_fetch() {
    let issuer = Issuer::start().await.unwrap();
    let cache = cache(JwksCache::builder(&issuer.jwks_url()));
    let l = Arc::new(layer(&issuer, cache));
    assert_eq!(
        call(&l, &issuer.token("alice", AUD)).await.status,
        StatusCode::OK
    );
    assert_eq!(issuer.jwks_requests(), 1);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
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
    // The first fetch, then at most one per second (the refetch interval):
    // the 1000 unknown kids share the fetches they wait for.
    let bound = 2 + start.elapsed().as_secs() as usize;
    assert!(
        issuer.jwks_requests() <= bound,
        "{} fetches, at most {bound}",
        issuer.jwks_requests()
    );
}

#[tokio::test]
async fn rotation_is_picked_up_at_first_use_and_removal_after_refresh() {
    let issuer = Issuer::start().await.unwrap();
    let interval = Duration::from_millis(600);
    let c = cache(JwksCache::builder(&issuer.jwks_url()).min_refetch_interval(interval));
    let l = layer(&issuer, c.clone());
    let old_token = issuer.token("alice", AUD);
    let old_kid = issuer.signing_kid();
    assert_eq!(call(&l, &old_token).await.status, StatusCode::OK);

    let new_kid = issuer.rotate(Algorithm::ES256).unwrap();
    let new_token = issuer.token("alice", AUD);
    // The first token with the new kid waits for the next fetch the
    // interval allows, and passes.
    let a = call(&l, &new_token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.challenge);
    assert!(
        a.elapsed <= interval + Duration::from_millis(300),
        "{:?}",
        a.elapsed
    );
    assert_eq!(issuer.jwks_requests(), 2);
    assert_ne!(new_kid, old_kid);

    // An unknown kid right after a fetch is answered at once (the key set
    // was just read), and causes no fetch.
    let a = call(&l, &with_kid(&issuer, "nope")).await;
    let a2 = call(&l, &with_kid(&issuer, "nope")).await;
    assert_eq!(
        (a.status, a2.status),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert!(
        a2.elapsed < Duration::from_millis(100),
        "negative cache: {:?}",
        a2.elapsed
    );

    // Remove the old key; the next refresh drops it.
    assert!(issuer.remove_key(&old_kid));
    assert_eq!(
        call(&l, &old_token).await.status,
        StatusCode::OK,
        "still cached"
    );
    c.prefetch().await.unwrap();
    let a = call(&l, &old_token).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.challenge.contains("no key matches"), "{}", a.challenge);
    assert_eq!(c.status().fetches() as usize, issuer.jwks_requests());
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
                .min_refetch_interval(Duration::from_millis(200))
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
    let verifier = Verifier::any_of([tenant(&a, "api-a"), tenant(&b, "api-b")]).unwrap();
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
        Verifier::any_of([tenant(&a, "x"), tenant(&a, "y")]).is_err(),
        "duplicate issuer"
    );
}

// ---------------------------------------------------------------------------
// Key freshness guarantees (issue 15) and discovery / key-parsing rules.
// ---------------------------------------------------------------------------

/// One answer of a [`KeyServer`] route.
#[derive(Clone)]
struct Reply {
    status: u16,
    /// Header lines in order; a name may repeat.
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::json("failure")
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A key-set server on 127.0.0.1 whose answers the test sets exactly
/// (status, repeated header lines, body, delay per path) and which counts
/// the GETs of each path. Unknown paths answer 404.
#[derive(Clone)]
struct KeyServer {
    url: String,
    routes: Arc<std::sync::Mutex<std::collections::HashMap<String, Reply>>>,
    hits: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl KeyServer {
    async fn start() -> KeyServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = KeyServer {
            url,
            routes: Arc::default(),
            hits: Arc::default(),
        };
        let state = server.clone();
        let app = axum::Router::new().fallback(move |uri: http::Uri| {
            let state = state.clone();
            async move {
                let path = uri.path().to_owned();
                *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                let reply = state.routes.lock().unwrap().get(&path).cloned();
                let Some(reply) = reply else {
                    return Response::builder()
                        .status(404)
                        .body(axum::body::Body::from("not found"))
                        .unwrap();
                };
                tokio::time::sleep(reply.delay).await;
                let mut res = Response::builder()
                    .status(reply.status)
                    .header("content-type", "application/json");
                for (name, value) in &reply.headers {
                    res = res.header(*name, value.as_str());
                }
                res.body(axum::body::Body::from(reply.body)).unwrap()
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// A layer over `cache` for tokens of `issuer` (an issuer URL).
fn layer_for(issuer: &str, cache: JwksCache) -> JwtAuthLayer {
    JwtAuthLayer::new(
        Verifier::builder()
            .jwks_cache(cache)
            .issuer(issuer)
            .audience(AUD)
            .build()
            .unwrap(),
    )
}

/// Polls `token` every 20 ms until the answer is `want`. Returns when the
/// first request answered `want` was sent, and when it was answered,
/// counted from the call.
async fn until_status(
    l: &JwtAuthLayer,
    token: &str,
    want: StatusCode,
    limit: Duration,
) -> (Duration, Duration) {
    let start = Instant::now();
    loop {
        let sent = start.elapsed();
        let a = call(l, token).await;
        if a.status == want {
            return (sent, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "still {} after {:?}: {}",
            a.status,
            start.elapsed(),
            a.challenge
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 15, point 1: while tokens with random `kid`s arrive (here about
/// a thousand a second), key-set fetches stay at one per `min_refetch_interval`
/// (1 s) and a `kid` the provider newly published is accepted within 2 s
/// of its first arrival. `JWKS_FLOOD_SECS` sets the flood length (default 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_kid_flood_does_not_delay_a_genuine_rotation() {
    let secs: u64 = std::env::var("JWKS_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .clamp(2, 30);
    let issuer = Issuer::start().await.unwrap();
    let c = cache(JwksCache::builder(&issuer.jwks_url()));
    let l = Arc::new(layer(&issuer, c.clone()));
    assert_eq!(
        call(&l, &issuer.token("alice", AUD)).await.status,
        StatusCode::OK
    );
    assert_eq!(issuer.jwks_requests(), 1);

    let flood_start = Instant::now();
    let end = flood_start + Duration::from_secs(secs);
    let flood = {
        let (l, issuer) = (l.clone(), issuer.clone());
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut tasks = tokio::task::JoinSet::new();
            while Instant::now() < end {
                for _ in 0..4 {
                    let bogus = with_kid(
                        &issuer,
                        &format!("attacker-{sent}-{}", sent.wrapping_mul(2654435761)),
                    );
                    let l = l.clone();
                    tasks.spawn(async move { call(&l, &bogus).await.status });
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            while let Some(status) = tasks.join_next().await {
                assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
            }
            sent
        })
    };
    // Near the middle (at a random point of the fetch cycle), the provider
    // rotates and tokens with the new kid arrive.
    let phase = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    let middle = Duration::from_secs(secs - 1) / 2 + Duration::from_millis(phase.into());
    tokio::time::sleep(middle).await;
    issuer.rotate(Algorithm::ES256).unwrap();
    let fresh = issuer.token("bob", AUD);
    let (_, rotation_latency) =
        until_status(&l, &fresh, StatusCode::OK, Duration::from_secs(10)).await;
    let sent = flood.await.unwrap();
    let flood_secs = flood_start.elapsed().as_secs_f64();
    let fetches = issuer.jwks_requests() - 1;
    println!(
        "flood: {sent} random-kid tokens in {flood_secs:.1} s ({:.0}/s); {fetches} key-set fetches \
         ({:.2}/s); rotation accepted {rotation_latency:?} after the first arrival",
        sent as f64 / flood_secs,
        fetches as f64 / flood_secs
    );
    assert!(
        rotation_latency <= Duration::from_secs(2),
        "{rotation_latency:?}"
    );
    assert!(
        fetches as f64 <= flood_secs + 1.0,
        "{fetches} fetches in {flood_secs:.1} s"
    );
    assert_eq!(c.status().fetches() as usize, issuer.jwks_requests());
}

/// Issue 15, point 2: with `Cache-Control: max-age=2`, a key the provider
/// removed stops verifying within the default 5 s floor (refreshed at 80%
/// of it), and within 2 s when the floor is lowered to 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_key_stops_verifying_within_seconds_of_max_age_2() {
    for (floor, bound) in [
        (None, Duration::from_millis(5500)),
        (Some(Duration::from_secs(1)), Duration::from_millis(2500)),
    ] {
        let issuer = Issuer::start().await.unwrap();
        issuer.set_cache_control(Some("public, max-age=2"));
        let mut b = JwksCache::builder(&issuer.jwks_url());
        if let Some(floor) = floor {
            b = b.max_age_bounds(floor, Duration::from_secs(3600));
        }
        let l = layer(&issuer, cache(b));
        let old_kid = issuer.signing_kid();
        let old = issuer.token("alice", AUD);
        assert_eq!(call(&l, &old).await.status, StatusCode::OK);
        issuer.rotate(Algorithm::ES256).unwrap();
        assert!(issuer.remove_key(&old_kid));
        let (latency, answered) =
            until_status(&l, &old, StatusCode::UNAUTHORIZED, Duration::from_secs(10)).await;
        println!(
            "max-age=2, floor {floor:?}: removed key refused for requests from {latency:?} on \
             (answered {answered:?}: an unknown kid waits for the next fetch)"
        );
        assert!(latency <= bound, "floor {floor:?}: {latency:?}");
        assert!(
            answered <= bound + Duration::from_millis(1200),
            "floor {floor:?}: {answered:?}"
        );
        let new = issuer.token("bob", AUD);
        assert_eq!(call(&l, &new).await.status, StatusCode::OK);
    }
}

/// Issue 15, point 2: several `Cache-Control` lines are one list, `Age` is
/// subtracted, and conflicting `max-age`s make the answer stale (RFC 9111
/// §4.2.1, §5.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_control_lines_and_age_per_rfc_9111() {
    let issuer = Issuer::start().await.unwrap();
    let server = KeyServer::start().await;
    let cases = [
        (
            "lines",
            Reply::json(issuer.jwks_json())
                .header("cache-control", "public")
                .header("cache-control", "max-age=1"),
        ),
        (
            "age",
            Reply::json(issuer.jwks_json())
                .header("cache-control", "max-age=3600")
                .header("age", "3599"),
        ),
        (
            "conflict",
            Reply::json(issuer.jwks_json()).header("cache-control", "max-age=1, max-age=3600"),
        ),
        (
            "no-store",
            Reply::json(issuer.jwks_json()).header("cache-control", "max-age=3600, no-store"),
        ),
        (
            "long",
            Reply::json(issuer.jwks_json())
                .header("cache-control", "max-age=3600")
                .header("age", "10"),
        ),
    ];
    let mut caches = Vec::new();
    for (name, reply) in &cases {
        let path = format!("/{name}");
        server.set(&path, reply.clone());
        let c = cache(
            JwksCache::builder(&server.url(&path))
                .max_age_bounds(Duration::from_secs(1), Duration::from_secs(3600)),
        );
        c.prefetch().await.unwrap();
        caches.push(c);
    }
    tokio::time::sleep(Duration::from_millis(1800)).await;
    for (name, _) in &cases[..4] {
        assert!(
            server.hits(&format!("/{name}")) >= 2,
            "{name}: fresh for about 1 s, refetched"
        );
    }
    assert_eq!(server.hits("/long"), 1, "fresh for 3590 s");
    drop(caches);
}

/// Issue 15, point 3: the TTL and the stale limit hold on the request path
/// when the background task is gone: `prefetch()` runs in a runtime that is
/// then dropped, and another runtime verifies after the provider removed
/// the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_does_not_depend_on_the_background_task() {
    let issuer = Issuer::start().await.unwrap();
    let c = cache(
        JwksCache::builder(&issuer.jwks_url())
            .ttl(Duration::from_secs(1))
            .max_stale(Duration::from_secs(3))
            .timeout(Duration::from_millis(500)),
    );
    let throwaway = c.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(throwaway.prefetch()).unwrap(), 1);
        // The runtime, and any task the cache spawned in it, ends here.
    })
    .await
    .unwrap();
    let old_kid = issuer.signing_kid();
    let old = issuer.token("alice", AUD);
    issuer.rotate(Algorithm::ES256).unwrap();
    assert!(issuer.remove_key(&old_kid));
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let l = layer(&issuer, c.clone());
    let a = call(&l, &old).await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "expired keys are refetched before use"
    );
    assert!(a.challenge.contains("no key matches"), "{}", a.challenge);
    let new = issuer.token("bob", AUD);
    assert_eq!(call(&l, &new).await.status, StatusCode::OK);
    assert_eq!(issuer.jwks_requests(), 2);

    // The provider fails: the last keys serve until they are 3 s old, then
    // tokens are refused with 503.
    issuer.set_failure(IssuerFailure::Status(503));
    let fetched = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        call(&l, &new).await.status,
        StatusCode::OK,
        "stale keys within max_stale"
    );
    let wait = Duration::from_millis(3200).saturating_sub(fetched.elapsed());
    tokio::time::sleep(wait).await;
    let a = call(&l, &new).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.challenge);
    assert!(!c.status().is_ready());
}

/// Issue 15, point 4: requests dropped while they wait on a fetch (client
/// gone, `grpc-timeout`, `tower::timeout`) neither abort it nor start
/// another; the status counts the GETs the server saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_requests_never_abort_nor_duplicate_a_fetch() {
    let issuer = Issuer::start().await.unwrap();
    let server = KeyServer::start().await;
    server.set(
        "/jwks",
        Reply::json(issuer.jwks_json()).delay(Duration::from_millis(900)),
    );
    let c = cache(JwksCache::builder(&server.url("/jwks")));
    let l = layer(&issuer, c.clone());
    let token = issuer.token("alice", AUD);
    for _ in 0..20 {
        let gave_up = tokio::time::timeout(Duration::from_millis(20), call(&l, &token)).await;
        assert!(gave_up.is_err(), "dropped mid-fetch");
    }
    assert_eq!(server.hits("/jwks"), 1, "one GET for 20 dropped requests");
    // The fetch finishes although nobody waits for it any more.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(server.hits("/jwks"), 1);
    let status = c.status();
    assert_eq!(status.fetches(), 1, "{status:?}");
    assert!(status.is_ready(), "{status:?}");
    let a = call(&l, &token).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.elapsed < Duration::from_millis(200), "{:?}", a.elapsed);
    assert_eq!(server.hits("/jwks"), 1);
}

/// A JWK (with `kid` and `alg`) for the test key `stem` in tests/data/keys.
fn test_jwk(stem: &str, alg: jsonwebtoken::Algorithm, kid: &str) -> serde_json::Value {
    let pem = std::fs::read(format!(
        "{}/tests/data/keys/{stem}.key",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = match alg {
        jsonwebtoken::Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap();
    let mut jwk =
        serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap())
            .unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

/// A token signed with the test key `stem`, with this header.
fn test_token(stem: &str, header: jsonwebtoken::Header, iss: &str) -> String {
    let pem = std::fs::read(format!(
        "{}/tests/data/keys/{stem}.key",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = match header.alg {
        jsonwebtoken::Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap();
    let claims = json!({"iss": iss, "aud": AUD, "sub": "kidless", "exp": 4102444800u64});
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Issue 15, point 5: a token without `kid` is verified when exactly one
/// key of the set fits its algorithm, and refused when several do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_without_kid_need_exactly_one_fitting_key() {
    use jsonwebtoken::{Algorithm as J, Header};
    let server = KeyServer::start().await;
    let one = test_jwk("rsa", J::RS256, "one");
    let two = test_jwk("rsa2", J::RS256, "two");
    let ec = test_jwk("p256", J::ES256, "ec");
    server.set(
        "/single",
        Reply::json(json!({"keys": [one, ec]}).to_string()),
    );
    server.set(
        "/several",
        Reply::json(json!({"keys": [one, two, ec]}).to_string()),
    );
    let kidless = test_token("rsa", Header::new(J::RS256), &server.url);
    let mut named = Header::new(J::RS256);
    named.kid = Some("one".into());
    let named = test_token("rsa", named, &server.url);

    let single = layer_for(
        &server.url,
        cache(JwksCache::builder(&server.url("/single"))),
    );
    let a = call(&single, &kidless).await;
    assert_eq!(a.status, StatusCode::OK, "one RS256 key: {}", a.challenge);

    let several = layer_for(
        &server.url,
        cache(JwksCache::builder(&server.url("/several"))),
    );
    let a = call(&several, &kidless).await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "two RS256 keys: ambiguous"
    );
    assert!(a.challenge.contains("invalid_token"), "{}", a.challenge);
    assert_eq!(
        server.hits("/several"),
        1,
        "an ambiguous token causes no refetch"
    );
    assert_eq!(
        call(&several, &named).await.status,
        StatusCode::OK,
        "with a kid it passes"
    );
}

/// Issue 15, point 6: when the provider comes up after the service, the
/// first token after its recovery passes within about a second: the start-up
/// backoff does not outlive the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_after_a_startup_outage_passes_within_a_second() {
    let issuer = Issuer::start().await.unwrap();
    issuer.set_failure(IssuerFailure::Status(503));
    let c = cache(JwksCache::builder(&issuer.jwks_url()));
    let l = layer(&issuer, c.clone());
    let token = issuer.token("alice", AUD);
    let down = Instant::now();
    while down.elapsed() < Duration::from_millis(3500) {
        let a = call(&l, &token).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(a.elapsed < Duration::from_millis(1500), "{:?}", a.elapsed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = issuer.jwks_requests();
    issuer.set_failure(IssuerFailure::None);
    let (_, latency) = until_status(&l, &token, StatusCode::OK, Duration::from_secs(10)).await;
    println!(
        "start-up outage: {during} fetches in 3.5 s; first token passed {latency:?} after recovery"
    );
    assert!(latency <= Duration::from_millis(1500), "{latency:?}");
    assert!(during <= 5, "{during} fetches in 3.5 s");
}

/// Issue 26, finding 5: after a start-up outage long enough for the
/// background retries to back off, the first request with a valid token
/// once the provider is back waits for the fetch it triggers (bounded by
/// the fetch timeout) and passes: 200, not a 503 while its own fetch
/// succeeds in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_no_key_set_waits_for_the_fetch_it_starts() {
    let issuer = Issuer::start().await.unwrap();
    issuer.set_failure(IssuerFailure::Status(503));
    let c = cache(
        JwksCache::builder(&issuer.jwks_url()).min_refetch_interval(Duration::from_millis(100)),
    );
    let l = layer(&issuer, c.clone());
    let token = issuer.token("alice", AUD);
    // Three failed fetches: the background retry now waits 4 s.
    while issuer.jwks_requests() < 3 {
        assert_eq!(
            call(&l, &token).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    issuer.set_failure(IssuerFailure::None);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let a = call(&l, &token).await;
    println!(
        "first request after recovery: {} in {:?}",
        a.status, a.elapsed
    );
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.elapsed < DEFAULT_TIMEOUT, "{:?}", a.elapsed);
}

/// Issue 14: discovery falls back to the RFC 8414 URL only when the OpenID
/// URL answers 404; any other failure is the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_falls_back_only_on_404() {
    const OIDC: &str = "/.well-known/openid-configuration";
    const OAUTH: &str = "/.well-known/oauth-authorization-server";
    let issuer = Issuer::start().await.unwrap();
    for (first, falls_back) in [
        (Reply::status(404), true),
        (Reply::status(500), false),
        (Reply::status(503), false),
        (Reply::json(r#"{"issuer": "#), false),
        (Reply::json("{}").delay(Duration::from_secs(5)), false),
    ] {
        let server = KeyServer::start().await;
        server.set(OIDC, first.clone());
        let doc = json!({"issuer": server.url, "jwks_uri": server.url("/jwks")});
        server.set(OAUTH, Reply::json(doc.to_string()));
        server.set("/jwks", Reply::json(issuer.jwks_json()));
        let c = cache(JwksCache::discover(&server.url).timeout(Duration::from_millis(500)));
        let result = c.prefetch().await;
        assert_eq!(
            result.is_ok(),
            falls_back,
            "status {}: {result:?}",
            first.status
        );
        assert_eq!(
            server.hits(OAUTH),
            usize::from(falls_back),
            "status {}",
            first.status
        );
    }
}

/// Issue 14: a JWK without `alg` is bound only to the allowed algorithms of
/// its key type: never to another algorithm of its family, and never wider
/// than the verifier's own allow-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwk_without_alg_is_bound_to_the_allowed_algorithms_only() {
    use jsonwebtoken::{Algorithm as J, Header};
    let server = KeyServer::start().await;
    let mut jwk = test_jwk("rsa", J::RS256, "k");
    jwk.as_object_mut().unwrap().remove("alg");
    server.set("/jwks", Reply::json(json!({"keys": [jwk]}).to_string()));
    let token = |alg| {
        let mut h = Header::new(alg);
        h.kid = Some("k".into());
        test_token("rsa", h, &server.url)
    };
    // The cache allows RS256 and ES256: the RSA key is RS256 only.
    let l = layer_for(
        &server.url,
        JwksCache::builder(&server.url("/jwks"))
            .algorithms([Algorithm::RS256, Algorithm::ES256])
            .build()
            .unwrap(),
    );
    assert_eq!(call(&l, &token(J::RS256)).await.status, StatusCode::OK);
    for alg in [J::PS256, J::RS384, J::RS512, J::PS512] {
        assert_eq!(
            call(&l, &token(alg)).await.status,
            StatusCode::UNAUTHORIZED,
            "{alg:?}"
        );
    }
    // The cache allows RS256 and PS256, the verifier narrows to RS256.
    let narrowed = JwtAuthLayer::new(
        Verifier::builder()
            .jwks_cache(
                JwksCache::builder(&server.url("/jwks"))
                    .algorithms([Algorithm::RS256, Algorithm::PS256])
                    .build()
                    .unwrap(),
            )
            .algorithms([Algorithm::RS256])
            .issuer(server.url.clone())
            .audience(AUD)
            .build()
            .unwrap(),
    );
    assert_eq!(
        call(&narrowed, &token(J::RS256)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&narrowed, &token(J::PS256)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

use crate::support::logs;

/// Keycloak publishes its encryption key (`use: enc`) next to its signing
/// keys: skipped on every fetch, but warned about once, not on every refresh.
#[tokio::test(flavor = "current_thread")]
async fn a_member_skipped_on_every_fetch_warns_once() {
    let idp = Issuer::start_with(Algorithm::RS256).await.unwrap();
    let mut jwks: serde_json::Value = serde_json::from_str(&idp.jwks_json()).unwrap();
    let mut enc = jwks["keys"][0].clone();
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc-key");
    enc["alg"] = json!("RSA-OAEP");
    jwks["keys"].as_array_mut().unwrap().push(enc);
    let server = KeyServer::start().await;
    server.set("/certs", Reply::json(jwks.to_string()));
    let cache = JwksCache::builder(&server.url("/certs"))
        .algorithms([Algorithm::RS256])
        .min_refetch_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    let (logs, _guard) = logs::Logs::capture(tracing::Level::WARN);
    for _ in 0..3 {
        cache.prefetch().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.hits("/certs"), 3);
    let out = logs.text();
    assert_eq!(
        out.matches("skipped a JWKS member").count(),
        1,
        "one warning, not one per fetch:\n{out}"
    );
    assert!(out.contains("enc-key"), "{out}");
}
