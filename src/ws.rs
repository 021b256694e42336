//! WebSockets behind the auth layer (feature `ws`): a socket that closes
//! when its token expires.
//!
//! A WebSocket is authenticated once, at the handshake, and may then live
//! for hours, long after its token expired. [`ExpiringUpgrade`] is axum's
//! `WebSocketUpgrade` with the deadline of the token the layer admitted;
//! the [`ExpiringSocket`] it hands to the application closes with
//! **1008** (policy violation, reason `token expired`) at that deadline:
//! its [`recv`](ExpiringSocket::recv) then answers `None`, its
//! [`send`](ExpiringSocket::send) an error.
//!
//! The deadline is the earliest of the token's `exp` and the time until
//! which the verifier's answer may be reused
//! ([`Verified::reuse_until`](crate::Verified::reuse_until): an
//! introspection answer is trusted for the introspector's TTL, after which
//! the authorization server must be asked again, by a new handshake; a
//! stale answer served during an outage stands in for the handshake only,
//! and its socket closes at once), and of
//! [`ExpiringUpgrade::max_lifetime`] if the route sets one. A token
//! that sets no deadline at all (no `exp`, no limit on its answer) would
//! keep its socket open forever, whatever becomes of the token: such a
//! handshake is refused (401 `invalid_token`, missing `exp`) unless the
//! route sets a `max_lifetime` ([`ExpiringUpgrade::on_upgrade`]).
//!
//! With feature `revocation`, [`ExpiringUpgrade::revocation`] also closes
//! the socket (reason `token revoked`) once the layer's revocation store
//! says the token is revoked. The store is asked on a timer of its own,
//! whatever the traffic on the socket; once it says revoked, a waiting
//! `recv` answers `None` at once, the next `send` an error.
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
//!     // At the token's deadline the socket was closed with 1008.
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
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use crate::AuthError;
use crate::claims::{Found, RegisteredClaims, ReuseUntil, find_token_claims};

/// The reason sent with the 1008 close when the revocation store says the
/// token is revoked (see [`ExpiringUpgrade::revocation`]).
///
/// ```
/// assert_eq!(tower_jwt_auth::ws::REVOKED_REASON, "token revoked");
/// ```
pub const REVOKED_REASON: &str = "token revoked";

/// The reason sent with the 1008 close at the socket's deadline: the
/// token's `exp`, the end of the verifier's answer's reuse, or the route's
/// [`max_lifetime`](ExpiringUpgrade::max_lifetime), whichever comes first.
///
/// ```
/// // What a browser's `close` event shows: code 1008, this reason.
/// assert_eq!(tower_jwt_auth::ws::EXPIRED_REASON, "token expired");
/// ```
pub const EXPIRED_REASON: &str = "token expired";

/// The reason sent (with 1011, internal error) when the revocation check
/// itself died (the store panicked): the socket is not left unwatched.
const CHECK_FAILED_REASON: &str = "revocation check failed";

/// axum's `WebSocketUpgrade` and the deadline of the token the auth layer
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
    /// The token's `exp` (seconds since the epoch).
    exp: Option<i64>,
    /// Until when the verifier's answer may be reused (seconds since the
    /// epoch), if it said.
    reuse_until: Option<f64>,
    /// The admitted token's claims as the revocation store is asked about
    /// them (`None`: no token, on an optional route).
    claims: Option<RegisteredClaims>,
    /// The route's bound on the socket's life.
    max_lifetime: Option<Duration>,
    /// The revocation store and how often to ask it.
    watch: Option<(Arc<dyn Revocation>, Duration)>,
}

impl fmt::Debug for ExpiringUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiringUpgrade")
            .field("upgrade", &self.upgrade)
            .field("exp", &self.exp)
            .field("reuse_until", &self.reuse_until)
            .field("max_lifetime", &self.max_lifetime)
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
        let (exp, reuse_until, claims) = match find_token_claims(&parts.extensions) {
            Found::Claims(claims) => (
                claims.registered().exp(),
                parts.extensions.get::<ReuseUntil>().map(|until| until.0),
                // What the layer asked the store about (a token without
                // `jti` by its token id), so that a revocation of either
                // reaches the socket.
                #[cfg(feature = "revocation")]
                Some(claims.revocation_name().into_owned()),
                #[cfg(not(feature = "revocation"))]
                Some(claims.registered().clone()),
            ),
            Found::Anonymous => (None, None, None),
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
            reuse_until,
            claims,
            max_lifetime: None,
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
    /// says the token is revoked, asked every `every` (at least 10 ms;
    /// feature `revocation`; give it the layer's store).
    ///
    /// The store is asked by a task of the socket's own, started after the
    /// handshake and stopped when the socket is closed or dropped: a check
    /// runs to its end however busy the socket is. Once the store said
    /// revoked, [`recv`](ExpiringSocket::recv) closes the socket and
    /// answers `None` (at once, if it is waiting), and
    /// [`send`](ExpiringSocket::send) closes it and answers an error (at
    /// the application's next send). A store that cannot be asked
    /// (`RevocationStatus::Unavailable`) leaves the socket open until the
    /// next ask; a check that panics closes it (1011).
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
        self.watch = Some((Arc::new(store), every.max(Duration::from_millis(10))));
        self
    }

    /// Closes the socket (1008, [`EXPIRED_REASON`]) `limit` after the
    /// handshake at the latest, even when its token is valid longer; and
    /// lets a token that sets no deadline (no `exp`, no limit on its
    /// verifier's answer) open a socket, which is refused otherwise (see
    /// [`on_upgrade`](ExpiringUpgrade::on_upgrade)).
    ///
    /// ```
    /// use std::time::Duration;
    /// # use tower_jwt_auth::ws::ExpiringUpgrade;
    /// # async fn handler(ws: ExpiringUpgrade) -> axum::response::Response {
    /// // An hour at most; clients reconnect, and their token is verified again.
    /// ws.max_lifetime(Duration::from_secs(3600)).on_upgrade(|_socket| async {})
    /// # }
    /// ```
    pub fn max_lifetime(mut self, limit: Duration) -> Self {
        self.max_lifetime = Some(limit);
        self
    }

    /// The token's `exp`, in seconds since the epoch (`None`: the token
    /// has none). The socket closes then at the latest; earlier when the
    /// verifier limited the reuse of its answer, or with
    /// [`max_lifetime`](ExpiringUpgrade::max_lifetime).
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

    /// How long the socket may live from now: until the token's `exp`, the
    /// end of its answer's reuse, or `max_lifetime`, the earliest; `None`:
    /// nothing bounds it.
    fn lifetime(&self) -> Option<Duration> {
        let token = match (self.exp, self.reuse_until) {
            (Some(exp), Some(until)) => Some((exp as f64).min(until)),
            (Some(exp), None) => Some(exp as f64),
            (None, until) => until,
        };
        let left = token.map(|at| {
            // Expired from `exp` on (RFC 7519 §4.1.4), with no leeway.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let left = at - now;
            if left > 0.0 {
                Duration::try_from_secs_f64(left).unwrap_or(Duration::MAX)
            } else {
                Duration::ZERO
            }
        });
        match (left, self.max_lifetime) {
            (Some(left), Some(max)) => Some(left.min(max)),
            (left, max) => left.or(max),
        }
    }

    /// Completes the handshake and runs `callback` with the socket, which
    /// closes with 1008 at its deadline: the token's `exp`, or earlier the
    /// end of its verifier's answer's reuse or the route's
    /// [`max_lifetime`](ExpiringUpgrade::max_lifetime).
    ///
    /// A token that sets no deadline (no `exp`, and a verifier that did not
    /// limit the reuse of its answer) is refused here, 401 `invalid_token`
    /// (missing `exp`), unless the route sets a `max_lifetime`: nothing
    /// would ever close its socket, not even the token's revocation (a
    /// deny-list keeps an entry until the token's `exp`). A request
    /// without a token on an optional route has nothing to expire: its
    /// socket is bounded by `max_lifetime` only.
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
        let lifetime = self.lifetime();
        if lifetime.is_none() && self.claims.is_some() {
            tracing::warn!(
                "WebSocket refused: its token has no exp and its verifier did not limit the \
                 reuse of its answer; set ExpiringUpgrade::max_lifetime to admit such tokens"
            );
            return AuthError::MissingClaim("exp".into()).into_response();
        }
        #[cfg(feature = "revocation")]
        let watch = match (self.watch, self.claims) {
            (Some((store, every)), Some(claims)) => Some((store, claims, every)),
            _ => None,
        };
        #[cfg(not(feature = "revocation"))]
        let watch: Option<Asked> = None;
        // From now, not from the end of the upgrade: `exp` is a time.
        let now = Instant::now();
        // Past what tokio can count (30 years on): never.
        let deadline = lifetime.map(|left| {
            now.checked_add(left)
                .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
        });
        self.upgrade.on_upgrade(move |socket| {
            let mut socket = ExpiringSocket::new(socket, deadline);
            socket.watch = watch.map(Watch::start);
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
    /// The socket's deadline; `None`: never.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The revocation check running for this socket.
    watch: Option<Watch>,
    /// Why the socket was closed (at the deadline, or revoked), once it was.
    closed: Option<Closing>,
}

/// Why the socket closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// The deadline passed.
    Expired,
    /// The store said revoked.
    Revoked,
    /// The revocation check died without an answer.
    CheckFailed,
}

impl Closing {
    fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            Closing::Expired => (close_code::POLICY, EXPIRED_REASON),
            Closing::Revoked => (close_code::POLICY, REVOKED_REASON),
            Closing::CheckFailed => (close_code::ERROR, CHECK_FAILED_REASON),
        };
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    fn error(self) -> axum::Error {
        axum::Error::new(match self {
            Closing::Expired => "the token expired: the socket is closed",
            Closing::Revoked => "the token was revoked: the socket is closed",
            Closing::CheckFailed => "the revocation check failed: the socket is closed",
        })
    }
}

/// What a revocation check asks about: the store, the token's claims, how
/// often.
#[cfg(feature = "revocation")]
type Asked = (Arc<dyn Revocation>, RegisteredClaims, Duration);

/// Without feature `revocation`, nothing is ever asked.
#[cfg(not(feature = "revocation"))]
type Asked = std::convert::Infallible;

/// The revocation check of one socket: a task asking the store every
/// tick, which answers once, when the store says revoked. Dropping it
/// stops the task. (Never made without feature `revocation`.)
#[cfg_attr(not(feature = "revocation"), allow(dead_code))]
#[derive(Debug)]
struct Watch {
    /// `Ok(())`: revoked; an error: the task ended without an answer (the
    /// store panicked).
    revoked: oneshot::Receiver<()>,
    task: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watch {
    /// Starts asking the store about the claims every `every`, from
    /// `every` on (the layer asked at the handshake).
    #[cfg(feature = "revocation")]
    fn start((store, claims, every): Asked) -> Watch {
        let (tx, revoked) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            // A slow store delays the next ask; asks never pile up.
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if tx.is_closed() {
                    return;
                }
                match store.check_later(&claims).await {
                    RevocationStatus::Revoked => {
                        let _ = tx.send(());
                        return;
                    }
                    RevocationStatus::Valid => {}
                    RevocationStatus::Unavailable(why) => {
                        tracing::debug!(
                            error = %why,
                            "revocation store unavailable: the WebSocket stays open until the next check"
                        );
                    }
                }
            }
        });
        Watch { revoked, task }
    }

    /// Without feature `revocation` no store is ever set.
    #[cfg(not(feature = "revocation"))]
    fn start(never: Asked) -> Watch {
        match never {}
    }

    /// The check's verdict if it has one now.
    fn verdict(&mut self) -> Option<Closing> {
        match self.revoked.try_recv() {
            Ok(()) => Some(Closing::Revoked),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Closing::CheckFailed),
        }
    }

    /// Resolves with the check's verdict.
    async fn verdict_later(&mut self) -> Closing {
        match (&mut self.revoked).await {
            Ok(()) => Closing::Revoked,
            Err(_) => Closing::CheckFailed,
        }
    }
}

impl ExpiringSocket {
    fn new(socket: WebSocket, deadline: Option<Instant>) -> Self {
        ExpiringSocket {
            socket,
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            watch: None,
            closed: None,
        }
    }

    /// The next message; `None` when the client closed the socket, or when
    /// the token expired or was revoked (the socket was then closed with
    /// 1008). The deadline and the revocation check come first: once they
    /// call for the close, no more messages are handed out.
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
        if self.closed.is_some() {
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
                Some(w) => w.verdict_later().await,
                None => std::future::pending().await,
            }
        };
        let why = tokio::select! {
            biased;
            () = deadline => Closing::Expired,
            why = revoked => why,
            msg = socket.recv() => return msg,
        };
        self.close(why).await;
        None
    }

    /// Sends a message, unless the token has expired or was revoked: then
    /// the socket is closed with 1008 and this is an error. (A socket the
    /// application only sends on is closed at its first send after the
    /// deadline or the revocation.)
    ///
    /// # Errors
    /// The token expired or was revoked, or the socket failed (axum's
    /// error).
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
        if self.closed.is_none() {
            let due = self
                .deadline
                .as_ref()
                .is_some_and(|d| d.deadline() <= Instant::now());
            let why = match due {
                true => Some(Closing::Expired),
                false => self.watch.as_mut().and_then(Watch::verdict),
            };
            if let Some(why) = why {
                self.close(why).await;
            }
        }
        if let Some(why) = self.closed {
            return Err(why.error());
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

    /// Sends the close (best effort: the peer may be gone), and stops the
    /// revocation check.
    async fn close(&mut self, why: Closing) {
        self.closed = Some(why);
        self.watch = None;
        let _ = self.socket.send(Message::Close(Some(why.frame()))).await;
    }
}
