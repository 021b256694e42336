//! `ws::ExpiringUpgrade`: an open WebSocket is closed with 1008 when its
//! token is revoked (however the application uses the socket, however
//! chatty the client) and when the verifier's answer for a token without
//! `exp` may no longer be reused; a socket nothing bounds is refused.
//! Seen by a real client (Node's WebSocket).

use crate::support as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::Message;
use axum::routing::get;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_jwt_auth::revocation::{MemoryRevocation, Revocation, RevocationStatus};
use tower_jwt_auth::ws::ExpiringUpgrade;
use tower_jwt_auth::{
    Algorithm, AuthError, BoxFuture, JwtAuthLayer, RegisteredClaims, TokenSource, TokenVerifier,
    Verified, Verifier,
};

/// The layer for the tests' JWTs, with `revoked` as its deny-list.
fn jwt_layer(revoked: &MemoryRevocation) -> JwtAuthLayer {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    JwtAuthLayer::new(verifier)
        .revocation(revoked.clone())
        .sources([TokenSource::websocket_protocol(
            TokenSource::KUBERNETES_PROTOCOL,
        )])
}

/// A token with `jti`, and its `exp` (minutes away).
fn jwt(jti: &str) -> (String, i64) {
    let mut c = claims();
    c["jti"] = json!(jti);
    let exp = c["exp"].as_i64().unwrap();
    (token(Algorithm::ES256, &c), exp)
}

fn ws_url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// An echo server whose sockets `store` watches (every 100 ms), behind the
/// layer that checks `revoked`; its address.
async fn echo_watched_by(
    store: impl Revocation + Clone,
    revoked: &MemoryRevocation,
) -> std::net::SocketAddr {
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
        .route_layer(jwt_layer(revoked));
    raw_http::serve(app).await
}

#[tokio::test]
async fn an_open_socket_is_closed_with_1008_when_its_token_is_revoked() {
    let revoked = MemoryRevocation::new();
    let addr = echo_watched_by(revoked.clone(), &revoked).await;
    let (t, exp) = jwt("socket-1");
    let mut client = ws_client::session(&ws_url(addr), &t, "raw", Duration::ZERO);
    client.opened().await;
    revoked.revoke(ISSUER, "socket-1", exp);
    let seen = client.closed(Duration::from_secs(5)).await;
    assert_eq!(seen["protocol"], "echo", "{seen}");
    assert_eq!(seen["echoed"], "hello", "{seen}");
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token revoked", "{seen}");
}

#[tokio::test]
async fn a_token_without_jti_is_watched_by_its_token_id() {
    // The layer names a token without `jti` by its token id (what
    // `POST /logout` revokes); the socket's check must ask the same.
    let revoked = MemoryRevocation::new();
    let addr = echo_watched_by(revoked.clone(), &revoked).await;
    let c = claims();
    assert!(c.get("jti").is_none());
    let t = token(Algorithm::ES256, &c);
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let id = verifier
        .verify::<tower_jwt_auth::JsonClaims>(&t)
        .unwrap()
        .token_id()
        .into_owned();
    let mut client = ws_client::session(&ws_url(addr), &t, "raw", Duration::ZERO);
    client.opened().await;
    revoked.revoke(ISSUER, &id, c["exp"].as_i64().unwrap());
    let seen = client.closed(Duration::from_secs(3)).await;
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token revoked", "{seen}");
}

/// A deny-list one network round trip away: each check takes `latency`.
#[derive(Clone)]
struct Slow {
    inner: MemoryRevocation,
    latency: Duration,
    checks: Arc<AtomicUsize>,
}

impl Revocation for Slow {
    fn check_later<'a>(&'a self, claims: &'a RegisteredClaims) -> BoxFuture<'a, RevocationStatus> {
        Box::pin(async move {
            tokio::time::sleep(self.latency).await;
            self.checks.fetch_add(1, Ordering::SeqCst);
            self.inner.check_later(claims).await
        })
    }
}

#[tokio::test]
async fn a_chatty_client_cannot_starve_the_revocation_check() {
    let revoked = MemoryRevocation::new();
    let slow = Slow {
        inner: revoked.clone(),
        latency: Duration::from_millis(50),
        checks: Arc::default(),
    };
    let addr = echo_watched_by(slow.clone(), &revoked).await;
    let (t, exp) = jwt("chatty-1");
    // A message every 5 ms: ten of them during one check of the store.
    let mut client = ws_client::session(&ws_url(addr), &t, "raw", Duration::from_millis(5));
    client.opened().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    revoked.revoke(ISSUER, "chatty-1", exp);
    let revoked_at = Instant::now();
    let seen = client.closed(Duration::from_secs(3)).await;
    let took = revoked_at.elapsed();
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token revoked", "{seen}");
    assert!(
        took < Duration::from_secs(1),
        "closed {took:?} after revocation"
    );
    // The client was chatty, and the echo kept up.
    assert!(seen["sent"].as_u64().unwrap() > 20, "{seen}");
    assert!(seen["received"].as_u64().unwrap() > 20, "{seen}");
    assert!(slow.checks.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn revocation_closes_a_send_only_socket() {
    let revoked = MemoryRevocation::new();
    let store = revoked.clone();
    // What the application's `send` answered once it failed.
    let (failed_tx, mut failed) = tokio::sync::mpsc::channel::<String>(1);
    let app = Router::new()
        .route(
            "/ws",
            get(move |ws: ExpiringUpgrade| {
                let store = store.clone();
                let failed_tx = failed_tx.clone();
                async move {
                    ws.protocols(["echo"])
                        .revocation(store, Duration::from_millis(100))
                        .on_upgrade(move |mut socket| async move {
                            // Server push only: never `recv`.
                            for n in 0..400 {
                                if let Err(e) =
                                    socket.send(Message::text(format!("tick {n}"))).await
                                {
                                    let _ = failed_tx.send(e.to_string()).await;
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(25)).await;
                            }
                        })
                }
            }),
        )
        .route_layer(jwt_layer(&revoked));
    let addr = raw_http::serve(app).await;
    let (t, exp) = jwt("push-1");
    let mut client = ws_client::session(&ws_url(addr), &t, "raw", Duration::ZERO);
    client.opened().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    revoked.revoke(ISSUER, "push-1", exp);
    let seen = client.closed(Duration::from_secs(3)).await;
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token revoked", "{seen}");
    assert!(seen["received"].as_u64().unwrap() >= 2, "{seen}");
    let error = tokio::time::timeout(Duration::from_secs(2), failed.recv())
        .await
        .expect("send did not fail after the revocation")
        .unwrap();
    assert!(error.contains("revoked"), "{error}");
}

/// Admits the one token `opaque-token` with claims that have no `exp`, as
/// an introspection endpoint may answer; the answer may be reused until
/// `until` (seconds since the epoch), if set.
#[derive(Debug)]
struct NoExp {
    until: Option<i64>,
}

impl TokenVerifier for NoExp {
    fn verify_now(&self, token: &str) -> Option<Result<Verified, AuthError>> {
        if token != "opaque-token" {
            return Some(Err(AuthError::InvalidSignature));
        }
        let verified = Verified::from_payload(json!({"iss": ISSUER, "sub": "opaque"}).to_string());
        Some(match self.until {
            Some(until) => verified.map(|v| v.reuse_until(until)),
            None => verified,
        })
    }

    fn verify_later<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, AuthError>> {
        Box::pin(std::future::ready(self.verify_now(token).unwrap()))
    }
}

/// An echo on `/ws` behind a layer with `verifier`.
async fn echo_server(verifier: NoExp) -> std::net::SocketAddr {
    echo_server_with(verifier, None).await
}

/// As [`echo_server`], the sockets living `max_lifetime` at most.
async fn echo_server_with(verifier: NoExp, max_lifetime: Option<Duration>) -> std::net::SocketAddr {
    let layer = JwtAuthLayer::new(verifier).sources([TokenSource::websocket_protocol(
        TokenSource::KUBERNETES_PROTOCOL,
    )]);
    let app = Router::new()
        .route(
            "/ws",
            get(move |ws: ExpiringUpgrade| async move {
                let ws = match max_lifetime {
                    Some(limit) => ws.max_lifetime(limit),
                    None => ws,
                };
                ws.protocols(["echo"]).on_upgrade(|mut socket| async move {
                    while let Some(Ok(msg)) = socket.recv().await {
                        if msg.to_text().is_ok() && socket.send(msg).await.is_err() {
                            break;
                        }
                    }
                })
            }),
        )
        .route_layer(layer);
    raw_http::serve(app).await
}

#[tokio::test]
async fn a_token_without_exp_is_closed_when_its_answer_may_no_longer_be_reused() {
    let until = now() + 2;
    let addr = echo_server(NoExp { until: Some(until) }).await;
    let mut client = ws_client::session(&ws_url(addr), "opaque-token", "encoded", Duration::ZERO);
    client.opened().await;
    let seen = client.closed(Duration::from_secs(5)).await;
    let closed_at = now();
    assert_eq!(seen["echoed"], "hello", "{seen}");
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token expired", "{seen}");
    assert!(
        (until..=until + 2).contains(&closed_at),
        "closed at {closed_at}, reusable until {until}"
    );
}

/// The status line's code of a WebSocket handshake to `/ws` offering
/// `token` (base64url-encoded after the Kubernetes prefix) and `echo`.
async fn handshake_status(addr: std::net::SocketAddr, token: &str) -> u16 {
    let entry = format!(
        "base64url.bearer.authorization.k8s.io.{}",
        b64(token.as_bytes())
    );
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {entry}, echo\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer's head");
            head.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("no answer within 5 s");
    let head = String::from_utf8_lossy(&head);
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_socket_nothing_bounds_is_refused() {
    // No `exp`, no limit on the answer's reuse: the socket would outlive
    // any revocation or expiry of the token.
    let addr = echo_server(NoExp { until: None }).await;
    assert_eq!(handshake_status(addr, "opaque-token").await, 401);
    // The same handshake with a token that has a deadline is served.
    let bounded = echo_server(NoExp {
        until: Some(now() + 60),
    })
    .await;
    assert_eq!(handshake_status(bounded, "opaque-token").await, 101);
}

#[tokio::test]
async fn max_lifetime_bounds_a_socket_even_when_its_token_sets_no_deadline() {
    let addr = echo_server_with(NoExp { until: None }, Some(Duration::from_secs(1))).await;
    let mut client = ws_client::session(&ws_url(addr), "opaque-token", "encoded", Duration::ZERO);
    client.opened().await;
    let opened = Instant::now();
    let seen = client.closed(Duration::from_secs(5)).await;
    let lived = opened.elapsed();
    assert_eq!(seen["echoed"], "hello", "{seen}");
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token expired", "{seen}");
    assert!(
        (Duration::from_millis(700)..Duration::from_secs(3)).contains(&lived),
        "lived {lived:?}"
    );
    // A token valid for longer is closed at the limit too.
    let until = now() + 60;
    let addr = echo_server_with(NoExp { until: Some(until) }, Some(Duration::from_secs(1))).await;
    let mut client = ws_client::session(&ws_url(addr), "opaque-token", "encoded", Duration::ZERO);
    client.opened().await;
    let seen = client.closed(Duration::from_secs(5)).await;
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token expired", "{seen}");
}
