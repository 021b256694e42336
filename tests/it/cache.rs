//! The verified-token cache through the layer: hits re-check `exp`, are
//! keyed by the whole token (a changed signature is never a hit), and stop
//! when the verifying key leaves the key set.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tower::{ServiceExt, service_fn};
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Verifier};
use tower_layer::Layer;

const AUD: &str = "api";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn call<C>(layer: &JwtAuthLayer<C>, token: &str) -> (StatusCode, String)
where
    C: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let svc = layer.layer(service_fn(|req: Request<()>| async move {
        let sub = req
            .extensions()
            .get::<Claims<C>>()
            .and_then(|c| c.sub().map(str::to_owned))
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(sub))
    }));
    let req = Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    let status = res.status();
    let text = match res.headers().get(WWW_AUTHENTICATE) {
        Some(v) => v.to_str().unwrap().to_owned(),
        None => res.into_body(),
    };
    (status, text)
}

fn static_layer(issuer: &Issuer, leeway: Duration) -> JwtAuthLayer {
    let v = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience(AUD)
        .leeway(leeway)
        .build()
        .unwrap();
    JwtAuthLayer::new(v).cache(TokenCache::new())
}

#[tokio::test]
async fn a_hit_rechecks_exp() {
    let issuer = Issuer::start().await.unwrap();
    let layer = static_layer(&issuer, Duration::ZERO);
    let token =
        issuer.mint(&json!({"iss": issuer.url(), "aud": AUD, "sub": "ada", "exp": now() + 2}));
    for _ in 0..3 {
        assert_eq!(call(&layer, &token).await, (StatusCode::OK, "ada".into()));
    }
    let stats = layer.cache_stats().unwrap();
    assert_eq!(
        (stats.hits, stats.misses),
        (2, 1),
        "one verification, two hits"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, text) = call(&layer, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("expired"), "{text}");
    assert_eq!(
        layer.cache_stats().unwrap().hits,
        2,
        "an expired entry is no hit"
    );
}

#[tokio::test]
async fn keyed_by_the_whole_token() {
    let issuer = Issuer::start_with(Algorithm::ES256).await.unwrap();
    let layer = static_layer(&issuer, Duration::from_secs(30));
    let token = issuer.token("ada", AUD);
    assert_eq!(call(&layer, &token).await.0, StatusCode::OK);
    assert_eq!(call(&layer, &token).await.0, StatusCode::OK);
    // Same header and payload, another signature: verified, and refused.
    let (head, _) = token.rsplit_once('.').unwrap();
    let other = issuer.token("ada", AUD);
    let (_, other_sig) = other.rsplit_once('.').unwrap();
    let mut sig = other_sig.to_owned();
    sig.replace_range(..4, "AAAA");
    let forged = format!("{head}.{sig}");
    let (status, text) = call(&layer, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("signature"), "{text}");
    // A token that differs in a trailing byte only is another key too.
    let (status, _) = call(&layer, &format!("{token}A")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Refusals are not cached: the same bad token is refused again.
    assert_eq!(call(&layer, &forged).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&layer, &token).await.0, StatusCode::OK);
    let stats = layer.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (2, 4));
}

#[tokio::test]
async fn a_removed_key_stops_hits_at_the_next_refresh() {
    let issuer = Issuer::start().await.unwrap();
    let interval = Duration::from_millis(300);
    let keys = JwksCache::builder(&issuer.jwks_url())
        .algorithms([Algorithm::RS256, Algorithm::ES256])
        .min_refetch_interval(interval)
        .build()
        .unwrap();
    let v = Verifier::builder()
        .jwks_cache(keys.clone())
        .issuer(issuer.url())
        .audience(AUD)
        .build()
        .unwrap();
    let layer = JwtAuthLayer::new(v).cache(TokenCache::new());
    let old_kid = issuer.signing_kid();
    let old = issuer.token("ada", AUD);
    assert_eq!(call(&layer, &old).await.0, StatusCode::OK);
    assert_eq!(call(&layer, &old).await.0, StatusCode::OK);
    assert_eq!(layer.cache_stats().unwrap().hits, 1);

    issuer.rotate(Algorithm::ES256).unwrap();
    assert!(issuer.remove_key(&old_kid));
    // Until the key set is refreshed, the cached token still passes (as it
    // would without the cache).
    assert_eq!(call(&layer, &old).await.0, StatusCode::OK);
    assert_eq!(layer.cache_stats().unwrap().hits, 2);
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    keys.prefetch().await.unwrap();
    let (status, text) = call(&layer, &old).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "removed key: {text}");
    assert!(text.contains("no key matches"), "{text}");
    assert_eq!(
        layer.cache_stats().unwrap().hits,
        2,
        "no hit once the key is gone"
    );
    let new = issuer.token("bob", AUD);
    assert_eq!(call(&layer, &new).await, (StatusCode::OK, "bob".into()));
}

#[derive(Deserialize)]
struct Typed {
    sub: String,
}

#[tokio::test]
async fn typed_claims_with_a_cache() {
    let issuer = Issuer::start().await.unwrap();
    let layer = static_layer(&issuer, Duration::from_secs(30)).claims::<Typed>();
    let token = issuer.token("ada", AUD);
    for _ in 0..2 {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            let c = req.extensions().get::<Claims<Typed>>().unwrap();
            Ok::<_, Infallible>(Response::new(c.sub.clone()))
        }));
        let req = Request::builder()
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.into_body(), "ada");
    }
    // Claims that do not fit the type are refused, hit or not.
    let bad = issuer.mint(&json!({"iss": issuer.url(), "aud": AUD, "sub": 5, "exp": now() + 60}));
    assert_eq!(call(&layer, &bad).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&layer, &bad).await.0, StatusCode::UNAUTHORIZED);
}
