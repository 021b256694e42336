//! WebSockets behind the auth layer (feature `ws`): a socket that closes
//! when its token expires.
//!
//! A WebSocket is authenticated once, at the handshake, and may then live
//! for hours, long after its token expired. [`ExpiringUpgrade`] is axum's
//! `WebSocketUpgrade` with the deadline of the token the layer admitted;
//! the [`ExpiringSocket`] it hands to the application closes with
//! **1008** (policy violation, reason `token expired`) at the token's
//! `exp`: its [`recv`](ExpiringSocket::recv) then answers `None`, its
//! [`send`](ExpiringSocket::send) an error. With feature `revocation`,
//! [`ExpiringUpgrade::revocation`] also closes it (reason `token revoked`)
//! once the layer's revocation store says the token is revoked.
//!
//! Browsers cannot set `Authorization` on a WebSocket handshake: they
//! offer the token as a subprotocol instead
//! ([`TokenSource::websocket_protocol`](crate::TokenSource::websocket_protocol),
//! the Kubernetes form out of the box), or send a cookie. The handshake
//! answer selects the application's own protocol, never the token entry:
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_jwt_auth::ws::{ExpiringSocket, ExpiringUpgrade};
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, TokenSource, Verifier};
//!
//! async fn echo(mut socket: ExpiringSocket) {
//!     while let Some(Ok(msg)) = socket.recv().await {
//!         if socket.send(msg).await.is_err() {
//!             break;
//!         }
//!     }
//!     // At the token's exp the socket was closed with 1008.
//! }
//!
//! # fn main() -> Result<(), tower_jwt_auth::BuildError> {
//! # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
//! let auth = JwtAuthLayer::new(verifier).sources([
//!     TokenSource::Bearer,
//!     TokenSource::websocket_protocol(TokenSource::KUBERNETES_PROTOCOL),
//! ]);
//! let app: Router = Router::new()
//!     .route("/ws", get(|ws: ExpiringUpgrade| async move {
//!         ws.protocols(["echo"]).on_upgrade(echo)
//!     }))
//!     .route_layer(auth);
//! # let _ = app;
//! # Ok(()) }
//! ```
//!
//! A browser opens it with `new WebSocket(url,
//! ["base64url.bearer.authorization.k8s.io." + token, "echo"])`: it must
//! offer a protocol the server selects, or it fails the handshake. A JWT
//! may follow the prefix as it is; any token may follow it base64url-encoded,
//! as Kubernetes' own clients send it, and an opaque one must
//! ([`TokenSource::WebSocketProtocol`](crate::TokenSource::WebSocketProtocol)).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use tokio::time::{Instant, Sleep};

use crate::claims::{Found, RegisteredClaims, find_token_claims};

/// The reason sent with the 1008 close when the revocation store says the
/// token is revoked (see [`ExpiringUpgrade::revocation`]).
///
/// ```
/// assert_eq!(tower_jwt_auth::ws::REVOKED_REASON, "token revoked");
/// ```
pub const REVOKED_REASON: &str = "token revoked";

/// The reason sent with the 1008 close at the token's `exp`.
///
/// ```
/// // What a browser's `close` event shows: code 1008, this reason.
/// assert_eq!(tower_jwt_auth::ws::EXPIRED_REASON, "token expired");
/// ```
pub const EXPIRED_REASON: &str = "token expired";

/// axum's `WebSocketUpgrade` and the `exp` of the token the auth layer
/// admitted (see the [module docs](self)). Extracting it on a route
/// without the layer is a wiring bug: 500, the hint in the logs.
///
/// ```
/// use axum::response::Response;
/// use tower_jwt_auth::ws::ExpiringUpgrade;
///
/// async fn handler(ws: ExpiringUpgrade) -> Response {
///     ws.protocols(["echo"]).on_upgrade(|mut socket| async move {
///         while let Some(Ok(msg)) = socket.recv().await {
///             let _ = socket.send(msg).await;
///         }
///     })
/// }
/// # let _ = handler;
/// ```
pub struct ExpiringUpgrade {
    upgrade: WebSocketUpgrade,
    /// The token's `exp` (seconds since the epoch); `None`: no deadline
    /// (a token without `exp`, or no token on an optional route).
    exp: Option<i64>,
    /// The admitted token's claims, for the revocation store.
    claims: Option<RegisteredClaims>,
    /// The revocation store and how often to ask it.
    watch: Option<(std::sync::Arc<dyn Revocation>, Duration)>,
}

impl fmt::Debug for ExpiringUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiringUpgrade")
            .field("upgrade", &self.upgrade)
            .field("exp", &self.exp)
            .field("revocation", &self.watch.as_ref().map(|(_, every)| every))
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "revocation")]
use crate::revocation::{Revocation, RevocationStatus};

/// Without feature `revocation`, no store is ever set.
#[cfg(not(feature = "revocation"))]
trait Revocation: Send + Sync {}

impl<S: Send + Sync> FromRequestParts<S> for ExpiringUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (exp, claims) = match find_token_claims(&parts.extensions) {
            Found::Claims(claims) => (claims.registered().exp(), Some(claims.registered().clone())),
            Found::Anonymous => (None, None),
            Found::OtherType | Found::NoLayer => {
                tracing::error!(
                    "ExpiringUpgrade found no decision of JwtAuthLayer: add the layer to the \
                     WebSocket route (Router::route_layer)"
                );
                return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
        };
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(ExpiringUpgrade {
            upgrade,
            exp,
            claims,
            watch: None,
        })
    }
}

impl ExpiringUpgrade {
    /// The application's subprotocols, in order of preference: the first
    /// one the client offered is selected (axum's
    /// `WebSocketUpgrade::protocols`). The client's token entry is never
    /// selected, since it is not one of these.
    ///
    /// ```
    /// # use tower_jwt_auth::ws::ExpiringUpgrade;
    /// # async fn handler(ws: ExpiringUpgrade) -> axum::response::Response {
    /// ws.protocols(["graphql-transport-ws", "echo"]).on_upgrade(|_socket| async {})
    /// # }
    /// ```
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        self.upgrade = self.upgrade.protocols(protocols);
        self
    }

    /// Also closes the socket (1008, [`REVOKED_REASON`]) when `store`
    /// says the token is revoked, asked every `every` (feature
    /// `revocation`; give it the layer's store). A store that cannot be
    /// asked leaves the socket open until the next ask.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jwt_auth::revocation::MemoryRevocation;
    /// # use tower_jwt_auth::ws::ExpiringUpgrade;
    /// # async fn handler(ws: ExpiringUpgrade, revoked: MemoryRevocation) -> axum::response::Response {
    /// ws.revocation(revoked, Duration::from_secs(5)).on_upgrade(|_socket| async {})
    /// # }
    /// ```
    #[cfg(feature = "revocation")]
    pub fn revocation(mut self, store: impl Revocation, every: Duration) -> Self {
        self.watch = Some((
            std::sync::Arc::new(store),
            every.max(Duration::from_millis(10)),
        ));
        self
    }

    /// The token's `exp`, in seconds since the epoch (`None`: the socket
    /// has no deadline).
    ///
    /// ```
    /// # use tower_jwt_auth::ws::ExpiringUpgrade;
    /// # async fn handler(ws: ExpiringUpgrade) -> axum::response::Response {
    /// tracing::info!(exp = ?ws.expires_at(), "WebSocket opened");
    /// ws.on_upgrade(|_socket| async {})
    /// # }
    /// ```
    pub fn expires_at(&self) -> Option<i64> {
        self.exp
    }

    /// Completes the handshake and runs `callback` with the socket, which
    /// closes with 1008 at the token's `exp`.
    ///
    /// ```
    /// # use tower_jwt_auth::ws::ExpiringUpgrade;
    /// # async fn handler(ws: ExpiringUpgrade) -> axum::response::Response {
    /// ws.on_upgrade(|mut socket| async move {
    ///     while let Some(Ok(_)) = socket.recv().await {}
    /// })
    /// # }
    /// ```
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(ExpiringSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let exp = self.exp;
        let watch = match (self.watch, self.claims) {
            (Some((store, every)), Some(claims)) => Some(Watch {
                store,
                claims,
                interval: tokio::time::interval_at(Instant::now() + every, every),
            }),
            _ => None,
        };
        self.upgrade.on_upgrade(move |socket| {
            let mut socket = ExpiringSocket::new(socket, exp);
            socket.watch = watch;
            callback(socket)
        })
    }
}

/// A WebSocket that closes with 1008 when its token expires (see the
/// [module docs](self)).
///
/// ```
/// use tower_jwt_auth::ws::ExpiringSocket;
///
/// async fn count(mut socket: ExpiringSocket) -> usize {
///     let mut n = 0;
///     // `None` once the client closed, or the token expired.
///     while let Some(Ok(_)) = socket.recv().await {
///         n += 1;
///     }
///     n
/// }
/// # let _ = count;
/// ```
#[derive(Debug)]
pub struct ExpiringSocket {
    socket: WebSocket,
    /// When the token expires; `None`: never.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The revocation store to ask now and then.
    watch: Option<Watch>,
    /// Closed (at the deadline, or revoked).
    expired: bool,
}

/// A revocation store asked every tick about the socket's token (never
/// made without feature `revocation`).
#[cfg_attr(not(feature = "revocation"), allow(dead_code))]
struct Watch {
    store: std::sync::Arc<dyn Revocation>,
    claims: RegisteredClaims,
    interval: tokio::time::Interval,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// Resolves when the store says the token is revoked.
    async fn revoked(&mut self) {
        loop {
            self.interval.tick().await;
            #[cfg(feature = "revocation")]
            if self.store.check_later(&self.claims).await == RevocationStatus::Revoked {
                return;
            }
        }
    }
}

impl ExpiringSocket {
    fn new(socket: WebSocket, exp: Option<i64>) -> Self {
        let deadline = exp.map(|exp| {
            // Expired from `exp` on (RFC 7519 §4.1.4), with no leeway.
            let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(exp).unwrap_or(0));
            let left = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            Box::pin(tokio::time::sleep(left))
        });
        ExpiringSocket {
            socket,
            deadline,
            watch: None,
            expired: false,
        }
    }

    /// The next message; `None` when the client closed the socket, or when
    /// the token expired (the socket was then closed with 1008).
    ///
    /// ```
    /// # use tower_jwt_auth::ws::ExpiringSocket;
    /// # async fn f(mut socket: ExpiringSocket) {
    /// while let Some(Ok(msg)) = socket.recv().await {
    ///     let _ = msg;
    /// }
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        if self.expired {
            return None;
        }
        let ExpiringSocket {
            socket,
            deadline,
            watch,
            ..
        } = self;
        let deadline = async {
            match deadline {
                Some(d) => d.as_mut().await,
                None => std::future::pending().await,
            }
        };
        let revoked = async {
            match watch {
                Some(w) => w.revoked().await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            msg = socket.recv() => return msg,
            () = deadline => EXPIRED_REASON,
            () = revoked => REVOKED_REASON,
        };
        self.close(reason).await;
        None
    }

    /// Sends a message, unless the token has expired: then the socket is
    /// closed with 1008 and this is an error.
    ///
    /// # Errors
    /// The token expired, or the socket failed (axum's error).
    ///
    /// ```
    /// # use tower_jwt_auth::ws::ExpiringSocket;
    /// use axum::extract::ws::Message;
    /// # async fn f(mut socket: ExpiringSocket) {
    /// if socket.send(Message::text("hello")).await.is_err() {
    ///     return;
    /// }
    /// # }
    /// ```
    pub async fn send(&mut self, msg: Message) -> Result<(), axum::Error> {
        let due = self
            .deadline
            .as_ref()
            .is_some_and(|d| d.deadline() <= Instant::now());
        if due && !self.expired {
            self.close(EXPIRED_REASON).await;
        }
        if self.expired {
            return Err(axum::Error::new("the token expired: the socket is closed"));
        }
        self.socket.send(msg).await
    }

    /// The subprotocol the handshake selected.
    ///
    /// ```
    /// # use tower_jwt_auth::ws::ExpiringSocket;
    /// # fn f(socket: &ExpiringSocket) {
    /// let echo = socket.protocol().is_some_and(|p| p == "echo");
    /// # let _ = echo;
    /// # }
    /// ```
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.socket.protocol()
    }

    /// Sends the 1008 close (best effort: the peer may be gone).
    async fn close(&mut self, reason: &'static str) {
        self.expired = true;
        let frame = CloseFrame {
            code: close_code::POLICY,
            reason: reason.into(),
        };
        let _ = self.socket.send(Message::Close(Some(frame))).await;
    }
}
