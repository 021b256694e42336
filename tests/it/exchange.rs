//! RFC 8693 token exchange against a real authorization server:
//! oidc-provider (tests/oidc/provider.mjs with `OIDC_MCP=1`), whose
//! exchange grant is registered with its custom-grant API
//! (`registerGrantType`) and mints tokens with `act`. The client
//! authenticates with a secret and with `private_key_jwt`; the `act` chain
//! of what it gets is read and guarded; concurrent exchanges share one
//! call; the outgoing layer never lets the caller's token through.

use crate::support::oidc;

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Request;
use serde_json::Value;
use tower::{Service, ServiceExt, service_fn};
use tower_jwt_auth::delegation::RequireActor;
use tower_jwt_auth::exchange::{ExchangeLayer, Target, TokenExchange};
use tower_jwt_auth::introspection::ClientKey;
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::{Algorithm, AuthError, Claims, Verifier};
use tower_layer::Layer;

const DOWNSTREAM: &str = "urn:tower-jwt-auth:downstream";
const MCP: &str = "http://127.0.0.1:5555/mcp";

/// The caller's token: one the MCP server received (client_credentials of
/// `mcp-client`, for the MCP resource).
async fn subject_token(provider: &oidc::Provider) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .header(
            "authorization",
            format!(
                "Basic {}",
                STANDARD.encode("mcp-client:secret-of-mcp-client")
            ),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&scope=mcp%3Atools&resource={}",
            MCP.replace(':', "%3A").replace('/', "%2F")
        ))
        .send()
        .await
        .unwrap();
    let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    json["access_token"].as_str().unwrap().to_owned()
}

fn secret_client(provider: &oidc::Provider) -> TokenExchange {
    TokenExchange::builder(format!("{}/token", provider.issuer))
        .client_credentials("exchanger", "secret-of-exchanger")
        .build()
        .unwrap()
}

/// The downstream API's verifier.
fn downstream(provider: &oidc::Provider) -> Verifier {
    let keys = JwksCache::discover(&provider.issuer).build().unwrap();
    Verifier::builder()
        .jwks_cache(keys)
        .issuer(provider.issuer.clone())
        .audience(DOWNSTREAM)
        .build()
        .unwrap()
}

async fn exchanges(provider: &oidc::Provider) -> u64 {
    let res = reqwest::get(format!("{}/__exchanges", provider.issuer))
        .await
        .unwrap();
    let json: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    json["count"].as_u64().unwrap()
}

async fn verify(verifier: &Verifier, token: &str) -> Claims {
    verifier.verify_async(token).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_exchanges_tokens_with_act_for_both_client_authentications() {
    let provider = oidc::start_mcp().await;
    let subject = subject_token(&provider).await;
    let api = downstream(&provider);
    let target = Target::resource(DOWNSTREAM).scopes(["downstream:read"]);

    // client_secret_basic.
    let token = secret_client(&provider)
        .exchange(&subject, &target)
        .await
        .unwrap();
    assert_eq!(token.scope(), Some("downstream:read"));
    assert!(token.expires_at().is_some());
    let claims = verify(&api, token.access_token()).await;
    // The subject stays the principal; the exchanging server is the actor.
    assert_eq!(claims.sub(), Some("mcp-client"));
    let chain = claims.act().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain.current().unwrap().sub(), Some("exchanger"));
    assert!(RequireActor::any(["exchanger"]).check(&claims).is_ok());
    assert!(RequireActor::any(["someone-else"]).check(&claims).is_err());

    // private_key_jwt, with the key the provider registered.
    let (pem, kid) = &provider.client_key;
    let key = ClientKey::from_pem(Algorithm::ES256, pem)
        .unwrap()
        .with_kid(kid.clone());
    let jwt_client = TokenExchange::builder(format!("{}/token", provider.issuer))
        .private_key_jwt("exchanger-jwt", key)
        .build()
        .unwrap();
    let token = jwt_client.exchange(&subject, &target).await.unwrap();
    let claims = verify(&api, token.access_token()).await;
    assert_eq!(
        claims.act().unwrap().current().unwrap().sub(),
        Some("exchanger-jwt")
    );

    // A token exchanged again (by the second server) nests the chain: the
    // depth bound of the guard sees both.
    let again = secret_client(&provider)
        .exchange(token.access_token(), &target)
        .await
        .unwrap();
    let claims = verify(&api, again.access_token()).await;
    let chain = claims.act().unwrap();
    let subs: Vec<_> = chain.iter().map(|a| a.sub()).collect();
    assert_eq!(subs, [Some("exchanger"), Some("exchanger-jwt")]);
    let both = RequireActor::any(["exchanger", "exchanger-jwt"]);
    assert!(both.check(&claims).is_err(), "depth 2 over the default 1");
    assert!(both.max_depth(2).check(&claims).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_of_one_token_share_one_call_and_are_cached() {
    let provider = oidc::start_mcp().await;
    let subject = subject_token(&provider).await;
    let client = secret_client(&provider);
    let target = Target::resource(DOWNSTREAM).scopes(["downstream:read"]);
    let before = exchanges(&provider).await;
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (client, subject, target) = (client.clone(), subject.clone(), target.clone());
            tokio::spawn(async move { client.exchange(&subject, &target).await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap().access_token().to_owned());
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token for all");
    assert_eq!(exchanges(&provider).await, before + 1, "one call for 16");
    // Cached until it expires: no call.
    client.exchange(&subject, &target).await.unwrap();
    assert_eq!(exchanges(&provider).await, before + 1);
    // Another subject token is another key.
    let other = subject_token(&provider).await;
    client.exchange(&other, &target).await.unwrap();
    assert_eq!(exchanges(&provider).await, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_exchange_is_forbidden_and_an_unreachable_endpoint_unavailable() {
    let provider = oidc::start_mcp().await;
    let subject = subject_token(&provider).await;
    let client = secret_client(&provider);
    // A token the server did not sign, a scope it does not grant, a
    // resource it does not know: refusals (403), not outages.
    let target = Target::resource(DOWNSTREAM);
    let err = client.exchange("not.a.token", &target).await.unwrap_err();
    assert!(matches!(err, AuthError::Forbidden(_)), "{err:?}");
    for target in [
        Target::resource(DOWNSTREAM).scopes(["mcp:admin"]),
        Target::resource("urn:unknown"),
    ] {
        let err = client.exchange(&subject, &target).await.unwrap_err();
        assert!(matches!(err, AuthError::Forbidden(_)), "{err:?}");
    }
    // Wrong client credentials: the server refuses the client, an outage
    // of this server's configuration (503), never a pass.
    let wrong = TokenExchange::builder(format!("{}/token", provider.issuer))
        .client_credentials("exchanger", "wrong")
        .build()
        .unwrap();
    let err = wrong.exchange(&subject, &target).await.unwrap_err();
    assert!(matches!(err, AuthError::ExchangeUnavailable(_)), "{err:?}");
    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = TokenExchange::builder(format!("http://{closed}/token"))
        .client_credentials("a", "b")
        .build()
        .unwrap();
    let err = down.exchange(&subject, &target).await.unwrap_err();
    assert!(matches!(err, AuthError::ExchangeUnavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outgoing_layer_sends_the_exchanged_token_never_the_callers() {
    let provider = oidc::start_mcp().await;
    let subject = subject_token(&provider).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let api = service_fn(move |req: Request<()>| {
        let seen = Arc::clone(&seen2);
        async move {
            let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
            seen.lock().unwrap().push(auth);
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }
    });
    let layer = ExchangeLayer::new(
        secret_client(&provider),
        Target::resource(DOWNSTREAM).scopes(["downstream:read"]),
    );
    let mut client = layer.layer(api);
    let req = Request::get("http://downstream.test/x")
        .header("authorization", format!("Bearer {subject}"))
        .body(())
        .unwrap();
    client.ready().await.unwrap().call(req).await.unwrap();
    let sent = seen.lock().unwrap()[0].clone();
    let token = sent.strip_prefix("Bearer ").unwrap();
    assert_ne!(token, subject);
    let claims = verify(&downstream(&provider), token).await;
    assert_eq!(claims.aud(), [DOWNSTREAM]);
    // No token to exchange: not sent at all.
    let req = Request::get("http://downstream.test/x").body(()).unwrap();
    assert!(client.ready().await.unwrap().call(req).await.is_err());
    assert_eq!(seen.lock().unwrap().len(), 1);
}
