//! Revocation through the layer: the in-memory deny-list, and Redis (a real
//! `redis-server` started on 127.0.0.1 on a free port) including Redis
//! stopped mid-run under both failure policies, then restarted.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::revocation::{MemoryRevocation, RedisRevocation, Revocation, RevocationStatus};
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Claims, JwtAuthLayer, Verifier};
use tower_layer::Layer;

pub(crate) const AUD: &str = "api";

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn layer(issuer: &Issuer) -> JwtAuthLayer {
    let v = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience(AUD)
        .build()
        .unwrap();
    JwtAuthLayer::new(v)
}

pub(crate) fn mint(issuer: &Issuer, sub: &str, jti: Option<&str>, iat: i64) -> String {
    let mut c =
        json!({"iss": issuer.url(), "aud": AUD, "sub": sub, "iat": iat, "exp": now() + 600});
    if let Some(j) = jti {
        c["jti"] = Value::from(j);
    }
    issuer.mint(&c)
}

pub(crate) async fn call(layer: &JwtAuthLayer, token: &str) -> (StatusCode, String) {
    let svc = layer.layer(service_fn(|req: Request<()>| async move {
        let c = req.extensions().get::<Claims>().unwrap();
        Ok::<_, Infallible>(Response::new(c.sub().unwrap_or_default().to_owned()))
    }));
    let req = Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    let status = res.status();
    let text = if let Some(v) = res.headers().get(WWW_AUTHENTICATE) {
        v.to_str().unwrap().to_owned()
    } else if let Some(v) = res.headers().get(RETRY_AFTER) {
        format!("retry-after {}", v.to_str().unwrap())
    } else {
        res.into_body()
    };
    (status, text)
}

#[tokio::test]
async fn memory_revoke_then_refuse() {
    let issuer = Issuer::start().await.unwrap();
    let list = MemoryRevocation::new();
    let l = layer(&issuer).revocation(list.clone());
    let a = mint(&issuer, "ada", Some("jti-a"), now());
    let b = mint(&issuer, "ada", Some("jti-b"), now());
    assert_eq!(call(&l, &a).await, (StatusCode::OK, "ada".into()));
    list.revoke(&issuer.url(), "jti-a", now() + 600);
    let (status, text) = call(&l, &a).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        text.contains(r#"error="invalid_token", error_description="token revoked""#),
        "{text}"
    );
    assert_eq!(call(&l, &b).await.0, StatusCode::OK);

    // Tokens without jti (Auth0, Entra ID): accepted, and revocable by
    // their token id, a hash of the payload; refused only by choice.
    let no_jti = mint(&issuer, "ada", None, now());
    let other_no_jti = mint(&issuer, "ada", None, now() - 1);
    assert_eq!(call(&l, &no_jti).await.0, StatusCode::OK);
    let v = Verifier::builder()
        .jwks(issuer.jwks_json())
        .audience(AUD)
        .build()
        .unwrap();
    let id = v
        .verify::<tower_jwt_auth::JsonClaims>(&no_jti)
        .unwrap()
        .token_id()
        .into_owned();
    assert!(id.starts_with("sha256:"), "{id}");
    list.revoke(&issuer.url(), &id, now() + 600);
    assert_eq!(call(&l, &no_jti).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&l, &other_no_jti).await.0, StatusCode::OK);
    let strict = layer(&issuer).revocation(list.clone()).require_jti();
    let (status, text) = call(&strict, &other_no_jti).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("required claim"), "{text}");

    // Log out everywhere: tokens of the subject issued up to the mark.
    let old = mint(&issuer, "bob", Some("o"), now() - 100);
    let bob_mark = now() - 50;
    let newer = mint(&issuer, "bob", Some("n"), now());
    list.revoke_subject(&issuer.url(), "bob", bob_mark);
    assert_eq!(call(&l, &old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&l, &newer).await.0, StatusCode::OK);
    // A token of that subject without iat cannot prove it is newer.
    let undated = issuer.mint(
        &json!({"iss": issuer.url(), "aud": AUD, "sub": "bob", "jti": "u", "exp": now() + 600}),
    );
    assert_eq!(call(&l, &undated).await.0, StatusCode::UNAUTHORIZED);
    // An earlier mark does not move a later one back.
    list.revoke_subject(&issuer.url(), "bob", bob_mark - 1000);
    assert_eq!(call(&l, &old).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn memory_entries_expire_with_the_token() {
    let issuer = Issuer::start().await.unwrap();
    let list = MemoryRevocation::new();
    let l = layer(&issuer).revocation(list.clone());
    let t = mint(&issuer, "ada", Some("short"), now());
    // The entry is kept 5 minutes (the largest leeway) past the given exp:
    // an exp 10 s ago is still denied, since a verifier may still accept
    // the token within its leeway.
    list.revoke(&issuer.url(), "short", now() - 10);
    assert_eq!(call(&l, &t).await.0, StatusCode::UNAUTHORIZED);
    // An exp 299 s ago: kept for one more second, then gone.
    let u = mint(&issuer, "ada", Some("older"), now());
    list.revoke(&issuer.url(), "older", now() - 299);
    assert_eq!(call(&l, &u).await.0, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(call(&l, &u).await.0, StatusCode::OK);
    assert_eq!(call(&l, &t).await.0, StatusCode::UNAUTHORIZED);
}

use crate::support::redis;
use redis::Redis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_revoke_then_refuse_and_expiry() {
    let redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let store = RedisRevocation::builder(&redis.url())
        .prefix("t1:")
        .build()
        .unwrap();
    let l = layer(&issuer).revocation(store.clone());
    let a = mint(&issuer, "ada", Some("a"), now());
    let b = mint(&issuer, "ada", Some("b"), now());
    assert_eq!(call(&l, &a).await.0, StatusCode::OK);
    store.revoke(&issuer.url(), "a", now() + 600).await.unwrap();
    let (status, text) = call(&l, &a).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("token revoked"), "{text}");
    assert_eq!(call(&l, &b).await.0, StatusCode::OK);

    // Another instance sharing the same Redis sees the revocation.
    let other = layer(&issuer).revocation(
        RedisRevocation::builder(&redis.url())
            .prefix("t1:")
            .build()
            .unwrap(),
    );
    assert_eq!(call(&other, &a).await.0, StatusCode::UNAUTHORIZED);

    // Subject marks.
    let old = mint(&issuer, "bob", Some("o"), now() - 100);
    let newer = mint(&issuer, "bob", Some("n"), now());
    store
        .revoke_subject(&issuer.url(), "bob", now() - 50)
        .await
        .unwrap();
    assert_eq!(call(&l, &old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&l, &newer).await.0, StatusCode::OK);

    // Deny entries expire 5 minutes (the largest leeway) after the given
    // exp: an exp 10 s ago is still stored and denied; one 300 s ago
    // lives one more second.
    let d = mint(&issuer, "ada", Some("d"), now());
    store.revoke(&issuer.url(), "d", now() - 10).await.unwrap();
    assert_eq!(call(&l, &d).await.0, StatusCode::UNAUTHORIZED);
    let c = mint(&issuer, "ada", Some("c"), now());
    store.revoke(&issuer.url(), "c", now() - 300).await.unwrap();
    assert_eq!(call(&l, &c).await.0, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(call(&l, &c).await.0, StatusCode::OK);
    assert_eq!(call(&l, &d).await.0, StatusCode::UNAUTHORIZED);

    // Odd data under a subject key fails closed.
    let mut conn = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let scoped = |kind: &str, value: &str| {
        let iss = issuer.url();
        format!("t1:{{{}:{iss}}}:{kind}:{value}", iss.len())
    };
    let _: () = ::redis::cmd("SET")
        .arg(scoped("sub", "eve"))
        .arg("not-a-time")
        .query_async(&mut conn)
        .await
        .unwrap();
    let eve = mint(&issuer, "eve", Some("e"), now());
    assert_eq!(call(&l, &eve).await.0, StatusCode::UNAUTHORIZED);

    // Entries are scoped by issuer: the same jti and sub at another
    // issuer are other tokens and other people.
    store
        .revoke("https://elsewhere.example", "b", now() + 600)
        .await
        .unwrap();
    store
        .revoke_subject("https://elsewhere.example", "ada", now())
        .await
        .unwrap();
    assert_eq!(call(&l, &b).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_deny_data_of_the_wrong_type_fails_closed() {
    let redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let store = RedisRevocation::builder(&redis.url())
        .prefix("t1:")
        .build()
        .unwrap();
    let l = layer(&issuer).revocation(store.clone());
    let mut conn = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let scoped = |kind: &str, value: &str| {
        let iss = issuer.url();
        format!("t1:{{{}:{iss}}}:{kind}:{value}", iss.len())
    };
    // Deny data of the wrong Redis type (a hash where a string is
    // expected) fails closed too, under the jti key and the subject key:
    // MGET would read both as nil.
    let _: () = ::redis::cmd("HSET")
        .arg(scoped("jti", "h1"))
        .arg("f")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = ::redis::cmd("HSET")
        .arg(scoped("sub", "hank"))
        .arg("f")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    let by_jti = mint(&issuer, "ada", Some("h1"), now());
    assert_eq!(call(&l, &by_jti).await.0, StatusCode::UNAUTHORIZED);
    let by_sub = mint(&issuer, "hank", Some("h2"), now());
    assert_eq!(call(&l, &by_sub).await.0, StatusCode::UNAUTHORIZED);
    let fail_open = layer(&issuer).revocation(
        RedisRevocation::builder(&redis.url())
            .prefix("t1:")
            .fail_open()
            .build()
            .unwrap(),
    );
    assert_eq!(call(&fail_open, &by_jti).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&fail_open, &by_sub).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_or_open_then_recovers() {
    let mut redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let timeout = Duration::from_millis(200);
    let closed = RedisRevocation::builder(&redis.url())
        .timeout(timeout)
        .build()
        .unwrap();
    let open = RedisRevocation::builder(&redis.url())
        .timeout(timeout)
        .fail_open()
        .build()
        .unwrap();
    let lc = layer(&issuer).revocation(closed.clone());
    let lo = layer(&issuer).revocation(open.clone());
    let t = mint(&issuer, "ada", Some("t"), now());
    assert_eq!(call(&lc, &t).await.0, StatusCode::OK);
    assert_eq!(call(&lo, &t).await.0, StatusCode::OK);

    redis.stop().await;
    // The tracked copy is cleared as soon as the connection's loss is
    // seen (a killed server closes it at once).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while closed.is_tracking() || open.is_tracking() {
        assert!(
            std::time::Instant::now() < deadline,
            "tracking outlived redis"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, text) = call(&lc, &t).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        assert!(text.starts_with("retry-after"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(call(&lo, &t).await.0, StatusCode::OK, "fail open");
    }
    assert!(
        closed
            .revoke(&issuer.url(), "t", now() + 600)
            .await
            .is_err()
    );

    // Redis comes back (empty: it kept nothing): both recover by themselves.
    redis.restart().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if call(&lc, &t).await.0 == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    closed
        .revoke(&issuer.url(), "t", now() + 600)
        .await
        .unwrap();
    assert_eq!(call(&lc, &t).await.0, StatusCode::UNAUTHORIZED);
    // The fail-open store reconnects too, and then sees the revocation.
    loop {
        if call(&lo, &t).await.0 == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fail-open never recovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    redis.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_local_cache_answers_without_a_round_trip() {
    let mut redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let store = RedisRevocation::builder(&redis.url())
        .timeout(Duration::from_millis(200))
        .untracked()
        .local_cache(Duration::from_secs(30))
        .build()
        .unwrap();
    let l = layer(&issuer).revocation(store.clone());
    let t = mint(&issuer, "ada", Some("cached"), now());
    assert_eq!(call(&l, &t).await.0, StatusCode::OK);
    let claims: Claims = Verifier::builder()
        .jwks(issuer.jwks_json())
        .audience(AUD)
        .build()
        .unwrap()
        .verify(&t)
        .unwrap();
    assert!(
        store.check_now(claims.registered()).is_some(),
        "answer cached"
    );
    // With Redis gone, the cached answer still serves (fail closed or not).
    redis.stop().await;
    assert_eq!(call(&l, &t).await.0, StatusCode::OK);
}

/// The local cache at twice its capacity: the newest answers are kept (a
/// check answered without Redis), and an answer it forgot costs only a
/// round trip: Redis is asked again and gives the same answer, a revoked
/// token stays revoked; with Redis down, a forgotten answer is 503, never
/// a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_local_cache_at_twice_its_capacity_forgets_only_round_trips() {
    const CAP: usize = 50;
    let mut redis = Redis::start().await;
    let issuer = Issuer::start().await.unwrap();
    let store = RedisRevocation::builder(&redis.url())
        .prefix("twice:")
        .untracked()
        .timeout(Duration::from_millis(200))
        .local_cache(Duration::from_secs(60))
        .local_cache_capacity(CAP as u64)
        .build()
        .unwrap();
    let verifier = Verifier::builder()
        .jwks(issuer.jwks_json())
        .audience(AUD)
        .build()
        .unwrap();
    let all: Vec<Claims> = (0..2 * CAP)
        .map(|i| {
            verifier
                .verify(&mint(&issuer, "ada", Some(&format!("t{i}")), now()))
                .unwrap()
        })
        .collect();
    for i in (0..2 * CAP).step_by(2) {
        store
            .revoke(&issuer.url(), &format!("t{i}"), now() + 600)
            .await
            .unwrap();
    }
    let expected = |i: usize| {
        if i.is_multiple_of(2) {
            RevocationStatus::Revoked
        } else {
            RevocationStatus::Valid
        }
    };
    for (i, c) in all.iter().enumerate() {
        assert_eq!(store.status(c.registered()).await, expected(i));
    }
    for (i, c) in all.iter().enumerate().skip(2 * CAP - 10) {
        assert_eq!(
            store.check_now(c.registered()),
            Some(expected(i)),
            "a new answer was not kept"
        );
    }
    // Forgotten answers are asked again, and are the same.
    for (i, c) in all.iter().enumerate() {
        assert_eq!(store.status(c.registered()).await, expected(i));
    }
    redis.stop().await;
    let mut forgotten = 0;
    for (i, c) in all.iter().enumerate() {
        match store.status(c.registered()).await {
            RevocationStatus::Unavailable(_) => forgotten += 1,
            status => assert_eq!(status, expected(i)),
        }
    }
    assert!(forgotten >= CAP, "{forgotten} forgotten of {}", 2 * CAP);
}
