//! Every `Duration` a builder accepts, up to `Duration::MAX`, is either
//! taken (saturating where it would overflow) or refused with a
//! `BuildError` naming the setting: never a panic, at build time or on the
//! request path.

use crate::support as common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use serde_json::json;
use tower_jwt_auth::{Algorithm, JsonClaims, Verifier};

fn durations() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::MAX),
        Just(Duration::ZERO),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::new(u64::MAX, 999_999_999)),
        (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..100_000).prop_map(Duration::from_secs),
    ]
}

fn check_leeway(d: Duration) {
    let built = Verifier::builder()
        .key(verify_key(Algorithm::HS256))
        .any_audience()
        .leeway(d)
        .build();
    match built {
        Ok(v) => {
            let t = token(Algorithm::HS256, &json!({"exp": now() + 60, "iat": now()}));
            assert!(v.verify::<JsonClaims>(&t).is_ok());
        }
        Err(e) => assert!(e.to_string().contains("leeway"), "{e}"),
    }
}

#[cfg(feature = "revocation")]
fn check_memory_revocation(d: Duration) {
    use tower_jwt_auth::revocation::MemoryRevocation;
    let list = MemoryRevocation::builder().mark_ttl(d).build();
    list.revoke_subject("i", "s", now());
    list.revoke("i", "j", i64::MAX);
    list.revoke("i", "k", i64::MIN);
}

#[cfg(feature = "redis")]
fn check_redis_revocation(d: Duration) {
    use tower_jwt_auth::Claims;
    use tower_jwt_auth::revocation::{RedisRevocation, Revocation, RevocationStatus};
    // Nothing listens on port 1: every call fails fast, whatever the timeout.
    let store = RedisRevocation::builder("redis://127.0.0.1:1/")
        .timeout(d)
        .mark_ttl(d)
        .local_cache(d)
        .build()
        .unwrap();
    let v = Verifier::builder()
        .key(verify_key(Algorithm::HS256))
        .any_audience()
        .build()
        .unwrap();
    let t = token(
        Algorithm::HS256,
        &json!({"exp": now() + 60, "sub": "s", "jti": "j"}),
    );
    let claims: Claims = v.verify(&t).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            store.check_later(claims.registered()),
        )
        .await
        .expect("a refused connection answers at once");
        assert!(
            matches!(status, RevocationStatus::Unavailable(_)),
            "{status:?}"
        );
        let _ = store.revoke("i", "j", i64::MAX).await;
        let _ = store.revoke_subject("i", "s", now()).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn duration_settings_never_panic(d in durations()) {
        check_leeway(d);
        #[cfg(feature = "revocation")]
        check_memory_revocation(d);
    }
}

/// The Redis store makes a (refused) connection per check, so it gets the
/// extreme values only rather than the generated ones.
#[cfg(feature = "redis")]
#[test]
fn redis_duration_settings_never_panic() {
    for d in [
        Duration::MAX,
        Duration::ZERO,
        Duration::new(u64::MAX, 0),
        Duration::from_secs(100 * 365 * 24 * 3600 + 1),
    ] {
        check_redis_revocation(d);
    }
}

/// `JwksCacheBuilder`: every duration setting at once (the refetch
/// interval, the fetch timeout, the TTL, the `max_age_bounds` and the stale
/// limit), then a prefetch, verifications of a known and an unknown `kid`
/// (which may wait for a fetch) and the background refresher, against a
/// real key set on 127.0.0.1. A panic in a task the cache spawned would be
/// swallowed by tokio, so panics are counted by a hook.
#[cfg(all(feature = "jwks", feature = "issuer"))]
mod jwks_cache {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Once, OnceLock};
    use std::time::Duration;

    use super::*;
    use tower_jwt_auth::jwks::JwksCache;
    use tower_jwt_auth::testing::Issuer;

    static PANICS: AtomicUsize = AtomicUsize::new(0);

    fn count_panics() {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                PANICS.fetch_add(1, Ordering::SeqCst);
                previous(info);
            }));
        });
    }

    fn runtime() -> &'static tokio::runtime::Runtime {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
        })
    }

    fn issuer() -> &'static Issuer {
        static I: OnceLock<Issuer> = OnceLock::new();
        I.get_or_init(|| runtime().block_on(Issuer::start()).unwrap())
    }

    /// The shared extremes, plus short times that make the cache really
    /// wait, expire and refetch within a case.
    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            durations(),
            Just(Duration::from_nanos(1)),
            (0u64..3_000).prop_map(Duration::from_millis),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn jwks_cache_duration_settings_never_panic(
            interval in duration(),
            timeout in duration(),
            ttl in duration(),
            min in duration(),
            max in duration(),
            stale in duration(),
        ) {
            count_panics();
            let before = PANICS.load(Ordering::SeqCst);
            let issuer = issuer();
            let built = JwksCache::builder(&issuer.jwks_url())
                .min_refetch_interval(interval)
                .timeout(timeout)
                .ttl(ttl)
                .max_age_bounds(min, max)
                .max_stale(stale)
                .build();
            match built {
                Ok(cache) => {
                    let good = issuer.token("ada", "api");
                    let (_, rest) = good.split_once('.').unwrap();
                    let unknown = format!("{}.{rest}", b64(r#"{"alg":"RS256","kid":"nope"}"#));
                    let verifier = Verifier::builder()
                        .jwks_cache(cache.clone())
                        .any_audience()
                        .build()
                        .unwrap();
                    runtime().block_on(async {
                        let bound = Duration::from_millis(300);
                        let _ = tokio::time::timeout(bound, cache.prefetch()).await;
                        let _ = verifier.verify::<JsonClaims>(&good);
                        let _ = tokio::time::timeout(bound, verifier.verify_async::<JsonClaims>(&good)).await;
                        let _ = tokio::time::timeout(bound, verifier.verify_async::<JsonClaims>(&unknown)).await;
                        let _ = cache.status();
                        // Give the background refresher a turn.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    });
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("timeout") || text.contains("max_age_bounds"), "{}", text);
                }
            }
            prop_assert_eq!(PANICS.load(Ordering::SeqCst), before);
        }
    }
}
