//! A small built-in OAuth2 / OpenID Connect issuer for tests and demos: it
//! generates signing keys, mints tokens, and serves its key set and
//! discovery document over HTTP on `127.0.0.1`, with switchable failures.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::axum::Router;
use ::axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use crate::algorithm::Algorithm;
use crate::error::BuildError;

mod control;
mod server;

use crate::sign::{KeyEntry, random_id};
use server::{SharedListener, discovery_route, jwks_route};

/// Path of the key set, relative to [`Issuer::url`].
const JWKS_PATH: &str = "/jwks.json";
/// Path of the OpenID Connect discovery document.
const OIDC_DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the RFC 8414 authorization server metadata.
const OAUTH_DISCOVERY_PATH: &str = "/.well-known/oauth-authorization-server";
/// Lifetime of the tokens made by [`Issuer::token`], in seconds.
const TOKEN_LIFETIME: u64 = 3600;
/// The largest body [`IssuerFailure::HugeBody`] sends (1 GiB).
const MAX_HUGE_BODY: usize = 1 << 30;

/// A local OAuth2 / OpenID Connect issuer for tests, demos and your own
/// integration tests: it generates real signing keys, mints tokens, and
/// serves its key set and discovery document over HTTP on `127.0.0.1`.
///
/// Routes (everything else answers 404):
///
/// | route | answer |
/// |---|---|
/// | `GET /jwks.json` | the published key set ([`Issuer::jwks_json`]) |
/// | `GET /.well-known/openid-configuration` | the discovery document |
/// | `GET /.well-known/oauth-authorization-server` | the same document (RFC 8414) |
///
/// The discovery document names `issuer`, `jwks_uri`, `token_endpoint`,
/// `authorization_endpoint` and the signing algorithms; only the key set and
/// discovery routes are served, the token and authorization endpoints are
/// advertised for completeness and answer 404.
///
/// Keys are generated with aws-lc: RSA keys have 2048 bits, ECDSA signatures
/// have the fixed `r || s` form JWS requires. Each key gets a fresh random
/// `kid`. [`Issuer::set_failure`] makes the HTTP answers fail in the ways a
/// real identity provider does (error statuses, slowness, broken or huge
/// bodies), to test how a verifier copes.
///
/// Cloning is cheap; every clone controls the same server. The server stops
/// at [`Issuer::shutdown`], or when the last clone is dropped.
///
/// ```
/// use tower_jwt_auth::{Claims, Verifier};
/// use tower_jwt_auth::testing::Issuer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let issuer = Issuer::start().await?;
/// let token = issuer.token("alice", "my-api");
///
/// let verifier = Verifier::builder()
///     .jwks(issuer.jwks_json())
///     .issuer(issuer.url())
///     .audience("my-api")
///     .build()?;
/// let claims: Claims = verifier.verify(&token)?;
/// assert_eq!(claims.sub(), Some("alice"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Issuer {
    handle: Arc<Handle>,
}

/// What the issuer's HTTP endpoints do instead of answering normally, set
/// with [`Issuer::set_failure`]. Failures apply to the key set and to both
/// discovery routes.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::testing::{Issuer, IssuerFailure};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let issuer = Issuer::start().await?;
/// issuer.set_failure(IssuerFailure::Status(503));
/// issuer.set_failure(IssuerFailure::Slow(Duration::from_millis(200)));
/// issuer.set_failure(IssuerFailure::None); // back to normal
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IssuerFailure {
    /// Answer normally.
    #[default]
    None,
    /// Answer this HTTP status with a short plain-text body. A number that is
    /// not a valid final status (outside 200..=999) answers 500.
    Status(u16),
    /// Wait this long, then answer normally (with the state at that time).
    Slow(Duration),
    /// Answer 200 with a truncated JSON document (`{"keys": [` for the key set).
    InvalidJson,
    /// Answer 200 with a body of exactly this many bytes (at most 1 GiB) that
    /// starts like a valid document and never ends, to test body size limits.
    HugeBody(usize),
}

/// Owned by the `Issuer` clones: stops the server when the last one goes.
struct Handle {
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
        self.task.abort();
    }
}

/// State shared by the `Issuer` handles and the server.
struct Shared {
    addr: SocketAddr,
    url: String,
    state: Mutex<State>,
    /// The listening socket; taken (and so closed) at shutdown.
    listener: Mutex<Option<TcpListener>>,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
}

struct State {
    /// Every key, oldest first. Never empty.
    keys: Vec<KeyEntry>,
    /// The `kid` of the key [`Issuer::mint`] signs with; always in `keys`.
    signing: String,
    failure: IssuerFailure,
    cache_control: Option<String>,
    discovery_issuer: Option<String>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        let state = shared.lock();
        f.debug_struct("Issuer")
            .field("url", &shared.url)
            .field("signing_kid", &state.signing)
            .field("keys", &state.keys.len())
            .field("failure", &state.failure)
            .finish_non_exhaustive()
    }
}
impl Issuer {
    /// Starts an issuer on `127.0.0.1` (a free port) with one RS256 signing key.
    ///
    /// Must be called inside a tokio runtime; the server runs as a spawned task.
    ///
    /// ```
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// assert!(issuer.url().starts_with("http://127.0.0.1:"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// An I/O error when there is no tokio runtime, the port cannot be bound,
    /// or the key cannot be generated.
    pub async fn start() -> std::io::Result<Issuer> {
        Issuer::start_with(Algorithm::RS256).await
    }

    /// Starts an issuer whose first signing key is for `alg`.
    ///
    /// ```
    /// use tower_jwt_auth::Algorithm;
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start_with(Algorithm::EdDSA).await?;
    /// assert!(issuer.jwks_json().contains(r#""crv":"Ed25519""#));
    /// assert!(Issuer::start_with(Algorithm::HS256).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Issuer::start`], and [`std::io::ErrorKind::InvalidInput`] for an
    /// HMAC algorithm (an issuer publishes public keys only).
    pub async fn start_with(alg: Algorithm) -> std::io::Result<Issuer> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(std::io::Error::other(
                "Issuer::start must be called inside a tokio runtime",
            ));
        }
        let first = KeyEntry::generate(alg).map_err(|e| match e {
            BuildError::InvalidConfig(why) => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string())
            }
            other => std::io::Error::other(other.to_string()),
        })?;
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            url: format!("http://{addr}"),
            state: Mutex::new(State {
                signing: first.kid.clone(),
                keys: vec![first],
                failure: IssuerFailure::None,
                cache_control: None,
                discovery_issuer: None,
            }),
            listener: Mutex::new(Some(listener)),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route(JWKS_PATH, get(jwks_route))
            .route(OIDC_DISCOVERY_PATH, get(discovery_route))
            .route(OAUTH_DISCOVERY_PATH, get(discovery_route))
            .with_state(shared.clone());
        let accept = SharedListener {
            shared: shared.clone(),
        };
        let task = tokio::spawn(async move {
            // `serve` only returns on an I/O error it cannot retry; the
            // issuer then simply stops answering.
            let _ = ::axum::serve(accept, router).await;
        })
        .abort_handle();
        Ok(Issuer {
            handle: Arc::new(Handle { shared, task }),
        })
    }

    /// The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash):
    /// the `iss` of its tokens and the base of its routes.
    ///
    /// ```
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// assert_eq!(issuer.url(), format!("http://{}", issuer.addr()));
    /// assert!(issuer.addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn url(&self) -> String {
        self.handle.shared.url.clone()
    }

    /// The URL of the key set, [`url`](Issuer::url) + `/jwks.json`.
    ///
    /// ```
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// assert_eq!(issuer.jwks_url(), format!("{}/jwks.json", issuer.url()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.handle.shared.url)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.shared.addr
    }

    /// The `kid` of the key [`Issuer::mint`] and [`Issuer::token`] sign with.
    ///
    /// ```
    /// use tower_jwt_auth::Algorithm;
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let kid = issuer.rotate(Algorithm::PS256)?;
    /// assert_eq!(issuer.signing_kid(), kid);
    /// # Ok(())
    /// # }
    /// ```
    pub fn signing_kid(&self) -> String {
        self.handle.shared.lock().signing.clone()
    }

    /// Signs `claims` with the key `kid` (published or not) into a compact
    /// JWS with the header `{"alg", "typ": "JWT", "kid"}`. The claims are
    /// signed as given, whatever they hold. `None` for an unknown `kid`.
    ///
    /// ```
    /// use tower_jwt_auth::Algorithm;
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let kid = issuer.add_key(Algorithm::ES256)?;
    /// let token = issuer.sign_with(&kid, &serde_json::json!({"sub": "bob"}));
    /// assert_eq!(token.map(|t| t.split('.').count()), Some(3));
    /// assert!(issuer.sign_with("no-such-kid", &serde_json::json!({})).is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn sign_with(&self, kid: &str, claims: &Value) -> Option<String> {
        let (alg, signer) = {
            let state = self.handle.shared.lock();
            let key = state.keys.iter().find(|k| k.kid == kid)?;
            (key.alg, key.signer.clone())
        };
        signer.sign_jwt(alg, kid, claims)
    }

    /// Signs `claims` with the signing key (see [`Issuer::sign_with`]). The
    /// claims are signed as given: add `iss`, `aud` and `exp` yourself, or use
    /// [`Issuer::token`].
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jwt_auth::{Claims, Verifier};
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let token = issuer.mint(&json!({"aud": "api", "exp": 4102444800u64, "role": "admin"}));
    /// let verifier = Verifier::builder().jwks(issuer.jwks_json()).audience("api").build()?;
    /// let claims: Claims = verifier.verify(&token)?;
    /// assert_eq!(claims.custom()["role"], "admin");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    /// Only if aws-lc fails to sign, which does not happen with keys it generated.
    pub fn mint(&self, claims: &Value) -> String {
        let (kid, alg, signer) = {
            let state = self.handle.shared.lock();
            let key = state
                .keys
                .iter()
                .find(|k| k.kid == state.signing)
                .or_else(|| state.keys.last());
            match key {
                Some(key) => (key.kid.clone(), key.alg, key.signer.clone()),
                // The key list is never empty (the last key cannot be removed).
                None => unreachable!("the issuer always keeps a signing key"),
            }
        };
        signer
            .sign_jwt(alg, &kid, claims)
            .expect("aws-lc failed to sign with a key it generated")
    }

    /// A token for `sub` and `audience`, signed with the signing key:
    /// `iss` = [`url`](Issuer::url), `sub`, `aud`, `iat` = now, `exp` = now +
    /// one hour, and a random `jti`.
    ///
    /// ```
    /// use tower_jwt_auth::{Claims, Verifier};
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let verifier = Verifier::builder().jwks(issuer.jwks_json()).audience("api").build()?;
    /// let claims: Claims = verifier.verify(&issuer.token("alice", "api"))?;
    /// assert_eq!(claims.iss(), Some(issuer.url().as_str()));
    /// assert!(claims.jti().is_some());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    /// As [`Issuer::mint`].
    pub fn token(&self, sub: &str, audience: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.mint(&json!({
            "iss": self.handle.shared.url,
            "sub": sub,
            "aud": audience,
            "iat": now,
            "exp": now.saturating_add(TOKEN_LIFETIME),
            "jti": random_id(16),
        }))
    }

    /// The published key set, as served at [`jwks_url`](Issuer::jwks_url):
    /// `{"keys": [...]}` whose members have `kty`, `crv`, `n`/`e` or `x`/`y`,
    /// `kid`, `alg` and `use: "sig"`, oldest key first.
    ///
    /// ```
    /// use tower_jwt_auth::Key;
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let set: serde_json::Value = serde_json::from_str(&issuer.jwks_json())?;
    /// let key = Key::from_jwk(&set["keys"][0].to_string())?;
    /// assert_eq!(key.kid(), Some(issuer.signing_kid().as_str()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwks_json(&self) -> String {
        self.handle.shared.lock().jwks_json()
    }

    /// Stops the server: the listening socket is closed at once, so later
    /// connections are refused, and open connections are closed once their
    /// current request is answered. Calling it again does nothing. Minting
    /// and the other local methods keep working.
    ///
    /// ```
    /// use tower_jwt_auth::testing::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// issuer.shutdown();
    /// assert!(tokio::net::TcpStream::connect(issuer.addr()).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(&self) {
        self.handle.shared.close();
        self.handle.task.abort();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the listening socket, so new connections are refused.
    fn close(&self) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(listener);
    }

    fn discovery_json(&self, state: &State) -> String {
        let mut algs: Vec<&str> = Vec::new();
        for key in state.keys.iter().filter(|k| k.published) {
            if !algs.contains(&key.alg.as_str()) {
                algs.push(key.alg.as_str());
            }
        }
        let url = &self.url;
        json!({
            "issuer": state.discovery_issuer.as_deref().unwrap_or(url),
            "jwks_uri": format!("{url}{JWKS_PATH}"),
            "token_endpoint": format!("{url}/token"),
            "authorization_endpoint": format!("{url}/authorize"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid"],
            "id_token_signing_alg_values_supported": algs,
        })
        .to_string()
    }
}

impl State {
    fn jwks_json(&self) -> String {
        let keys: Vec<&Value> = self
            .keys
            .iter()
            .filter(|k| k.published)
            .map(|k| &k.jwk)
            .collect();
        json!({ "keys": keys }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_id(12), random_id(12));
        assert_eq!(random_id(12).len(), 16);
    }
}
