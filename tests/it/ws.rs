//! `ws::ExpiringUpgrade` with a revocation store: an open WebSocket is
//! closed with 1008 `token revoked` once its token is revoked, seen by a
//! real client (Node's WebSocket).

use crate::support as common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::*;
use serde_json::json;
use tower_jwt_auth::revocation::MemoryRevocation;
use tower_jwt_auth::ws::ExpiringUpgrade;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, TokenSource, Verifier};

#[tokio::test]
async fn an_open_socket_is_closed_with_1008_when_its_token_is_revoked() {
    let revoked = MemoryRevocation::new();
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let auth = JwtAuthLayer::new(verifier)
        .revocation(revoked.clone())
        .sources([TokenSource::websocket_protocol(
            TokenSource::KUBERNETES_PROTOCOL,
        )]);
    let store = revoked.clone();
    let app = Router::new()
        .route(
            "/ws",
            get(move |ws: ExpiringUpgrade| {
                let store = store.clone();
                async move {
                    ws.protocols(["echo"])
                        .revocation(store, Duration::from_millis(100))
                        .on_upgrade(|mut socket| async move {
                            while let Some(Ok(msg)) = socket.recv().await {
                                if msg.to_text().is_ok() && socket.send(msg).await.is_err() {
                                    break;
                                }
                            }
                        })
                }
            }),
        )
        .route_layer(auth);
    let addr = raw_http::serve(app).await;
    let mut c = claims();
    c["jti"] = json!("socket-1");
    let exp = c["exp"].as_i64().unwrap();
    let t = token(Algorithm::ES256, &c);
    let client = tokio::spawn({
        let url = format!("ws://{addr}/ws");
        async move { ws_client::node(&url, &t).await }
    });
    // Revoke while the socket is open (the client connects within this).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    revoked.revoke(ISSUER, "socket-1", exp);
    let seen = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("the socket was not closed within 10 s of the revocation")
        .unwrap();
    assert_eq!(seen["protocol"], "echo", "{seen}");
    assert_eq!(seen["echoed"], "hello", "{seen}");
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token revoked", "{seen}");
}
