//! Revocation at fleet scale against a real `redis-server`: two instances
//! of the layer with their own connections, the tracked local copy
//! (propagation measured and printed, no Redis command per request counted
//! with `INFO commandstats`), and Redis killed under load (fail closed,
//! then tracking resumes).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use tower_jwt_auth::revocation::{RedisRevocation, Revocation, RevocationStatus};
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Claims, JwtAuthLayer, Verifier};

use crate::revocation::{AUD, call, layer, mint, now};
use crate::support::redis::Redis;

/// Calls of each command on the Redis at `url` so far (`INFO commandstats`).
pub(crate) async fn commandstats(url: &str) -> HashMap<String, u64> {
    let mut conn = ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let text: String = ::redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// The commands run between two `commandstats`, but for the `INFO` that
/// reads them and the trackers' once-a-second heartbeat `PING`.
pub(crate) fn per_request(
    before: &HashMap<String, u64>,
    after: &HashMap<String, u64>,
) -> HashMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "ping"))
        .filter_map(|(name, n)| {
            let d = n - before.get(name).copied().unwrap_or(0);
            (d > 0).then(|| (name.clone(), d))
        })
        .collect()
}

pub(crate) fn claims_of(issuer: &Issuer, token: &str) -> Claims {
    Verifier::builder()
        .jwks(issuer.jwks_json())
        .audience(AUD)
        .build()
        .unwrap()
        .verify(token)
        .unwrap()
}

/// Calls until `store` answers `token` from its tracked copy (bounded).
pub(crate) async fn warm(
    l: &JwtAuthLayer,
    store: &RedisRevocation,
    issuer: &Issuer,
    token: &str,
    expect: StatusCode,
) {
    let claims = claims_of(issuer, token);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(call(l, token).await.0, expect);
        if store.is_tracking() && store.check_now(claims.registered()).is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "tracking never came on");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `l` with `token` until it answers 401 (bounded by a second);
/// the time since `since`.
pub(crate) async fn refused_after(l: &JwtAuthLayer, token: &str, since: Instant) -> Duration {
    loop {
        let (status, _) = call(l, token).await;
        if status == StatusCode::UNAUTHORIZED {
            return since.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(since.elapsed() < Duration::from_secs(1), "never refused");
        tokio::task::yield_now().await;
    }
}

pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), *samples.last().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_instance_is_refused_by_another_within_100_ms() {
    let redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let store = |_: u8| {
        RedisRevocation::builder(&redis.url())
            .prefix("fleet:")
            .build()
            .unwrap()
    };
    let (a, b) = (store(0), store(1));
    let (la, lb) = (
        layer(&issuer).revocation(a.clone()),
        layer(&issuer).revocation(b.clone()),
    );
    let tokens: Vec<(String, String)> = (0..40)
        .map(|i| {
            let jti = format!("p{i}");
            let t = mint(&issuer, "ada", Some(&jti), now());
            (jti, t)
        })
        .collect();
    for (_, t) in &tokens {
        warm(&la, &a, &issuer, t, StatusCode::OK).await;
        warm(&lb, &b, &issuer, t, StatusCode::OK).await;
    }
    let mut samples = Vec::new();
    for (jti, t) in &tokens {
        let claims = claims_of(&issuer, t);
        assert_eq!(
            b.check_now(claims.registered()),
            Some(RevocationStatus::Valid),
            "answered locally before the revocation"
        );
        let started = Instant::now();
        a.revoke(&issuer.url(), jti, now() + 600).await.unwrap();
        samples.push(refused_after(&lb, t, started).await);
        // The revoking instance refuses at once.
        assert_eq!(call(&la, t).await.0, StatusCode::UNAUTHORIZED);
    }
    // Log out everywhere, through the other instance this time.
    let old = mint(&issuer, "bob", Some("old"), now() - 10);
    warm(&la, &a, &issuer, &old, StatusCode::OK).await;
    let started = Instant::now();
    b.revoke_subject(&issuer.url(), "bob", now()).await.unwrap();
    samples.push(refused_after(&la, &old, started).await);

    let (p50, p99, max) = percentiles(samples);
    println!("revocation propagation between two instances: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    assert!(max < Duration::from_millis(100), "max {max:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_token_makes_no_redis_command_per_request() {
    let redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let store = RedisRevocation::builder(&redis.url())
        .prefix("hot:")
        .build()
        .unwrap();
    let l = layer(&issuer).revocation(store.clone());
    let ok = mint(&issuer, "ada", Some("ok"), now());
    let revoked = mint(&issuer, "ada", Some("gone"), now());
    store
        .revoke(&issuer.url(), "gone", now() + 600)
        .await
        .unwrap();
    warm(&l, &store, &issuer, &ok, StatusCode::OK).await;
    warm(&l, &store, &issuer, &revoked, StatusCode::UNAUTHORIZED).await;

    let before = commandstats(&redis.url()).await;
    for i in 0..1000 {
        let (t, expect) = if i % 10 == 0 {
            (&revoked, StatusCode::UNAUTHORIZED)
        } else {
            (&ok, StatusCode::OK)
        };
        assert_eq!(call(&l, t).await.0, expect);
    }
    let after = commandstats(&redis.url()).await;
    let commands = per_request(&before, &after);
    println!("redis commands during 1,000 requests (heartbeat PING aside): {commands:?}");
    assert!(commands.is_empty(), "{commands:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_fails_closed_and_tracking_resumes() {
    let mut redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let timeout = Duration::from_millis(200);
    let store = RedisRevocation::builder(&redis.url())
        .prefix("kill:")
        .timeout(timeout)
        .build()
        .unwrap();
    let l = layer(&issuer).revocation(store.clone());
    let ok = mint(&issuer, "ada", Some("ok"), now());
    let revoked = mint(&issuer, "ada", Some("gone"), now());
    store
        .revoke(&issuer.url(), "gone", now() + 600)
        .await
        .unwrap();
    warm(&l, &store, &issuer, &ok, StatusCode::OK).await;
    warm(&l, &store, &issuer, &revoked, StatusCode::UNAUTHORIZED).await;

    let stop = Arc::new(AtomicBool::new(false));
    let admitted = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (l, ok, revoked) = (l.clone(), ok.clone(), revoked.clone());
        let (stop, admitted) = (stop.clone(), admitted.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if call(&l, &revoked).await.0 == StatusCode::OK {
                    admitted.fetch_add(1, Ordering::SeqCst);
                }
                let started = Instant::now();
                let (status, _) = call(&l, &ok).await;
                seen.push((started, status, started.elapsed()));
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Instant::now();
    redis.stop().await;
    let deadline = killed + Duration::from_secs(2);
    while store.is_tracking() {
        assert!(Instant::now() < deadline, "tracking outlived redis");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let noticed = Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, Ordering::SeqCst);
    let mut after = 0;
    let mut slowest = Duration::ZERO;
    for task in load {
        for (started, status, took) in task.await.unwrap() {
            slowest = slowest.max(took);
            if started > noticed {
                after += 1;
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "fail closed");
            }
        }
    }
    println!(
        "redis killed: tracking dropped after {:?}; {after} requests refused (503) after that, slowest {slowest:?}",
        noticed - killed
    );
    assert!(after > 0);
    assert_eq!(admitted.load(Ordering::SeqCst), 0, "a revoked token got in");
    assert!(
        slowest < timeout + Duration::from_millis(300),
        "{slowest:?}"
    );

    // Redis returns (empty: the test runs it without persistence, so the
    // revocation is written again, as an operator would restore it).
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while store
        .revoke(&issuer.url(), "gone", now() + 600)
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "redis never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    warm(&l, &store, &issuer, &ok, StatusCode::OK).await;
    warm(&l, &store, &issuer, &revoked, StatusCode::UNAUTHORIZED).await;
    let before = commandstats(&redis.url()).await;
    for _ in 0..100 {
        assert_eq!(call(&l, &ok).await.0, StatusCode::OK);
        assert_eq!(call(&l, &revoked).await.0, StatusCode::UNAUTHORIZED);
    }
    let commands = per_request(&before, &commandstats(&redis.url()).await);
    assert!(commands.is_empty(), "local again: {commands:?}");
}
