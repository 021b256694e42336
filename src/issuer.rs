//! A small built-in OAuth2 / OpenID Connect issuer for tests and demos: it
//! generates signing keys, mints tokens, and serves its key set and
//! discovery document over HTTP on `127.0.0.1`, with switchable failures.

use std::fmt;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::axum::Router;
use ::axum::body::Body;
use ::axum::extract::State as AxumState;
use ::axum::response::Response;
use ::axum::routing::get;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::algorithm::{Algorithm, Curve, Family};
use crate::error::BuildError;

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
/// use tower_jwt_auth::{Claims, Issuer, Verifier};
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
/// use tower_jwt_auth::{Issuer, IssuerFailure};
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

struct KeyEntry {
    kid: String,
    alg: Algorithm,
    signer: Arc<Signer>,
    /// The public JWK, with `kid`, `alg` and `use`.
    jwk: Value,
    published: bool,
}

enum Signer {
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
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
    /// use tower_jwt_auth::Issuer;
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
    /// use tower_jwt_auth::{Algorithm, Issuer};
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
                std::io::Error::new(std::io::ErrorKind::InvalidInput, why)
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
    /// use tower_jwt_auth::Issuer;
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
    /// use tower_jwt_auth::Issuer;
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

    /// Generates a key for `alg` and publishes it; the signing key does not
    /// change (see [`Issuer::rotate`]). Returns the new key's `kid`.
    ///
    /// Supported: `RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`
    /// (2048-bit RSA), `ES256`, `ES384`, `ES512` and `EdDSA` (Ed25519).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Issuer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let kid = issuer.add_key(Algorithm::ES256)?;
    /// assert!(issuer.jwks_json().contains(&kid));
    /// assert!(issuer.add_key(Algorithm::HS256).is_err());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an HMAC algorithm (a shared secret
    /// cannot be published); [`BuildError::InvalidKey`] if aws-lc fails to
    /// generate the key.
    pub fn add_key(&self, alg: Algorithm) -> Result<String, BuildError> {
        let entry = KeyEntry::generate(alg)?;
        let kid = entry.kid.clone();
        self.handle.shared.lock().keys.push(entry);
        Ok(kid)
    }

    /// Generates and publishes a key for `alg` and makes it the signing key.
    /// The older keys stay published (and usable with [`Issuer::sign_with`])
    /// until [removed](Issuer::remove_key). Returns the new key's `kid`.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Issuer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let old = issuer.signing_kid();
    /// let new = issuer.rotate(Algorithm::ES384)?;
    /// assert_eq!(issuer.signing_kid(), new);
    /// assert!(issuer.jwks_json().contains(&old));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Issuer::add_key`].
    pub fn rotate(&self, alg: Algorithm) -> Result<String, BuildError> {
        let entry = KeyEntry::generate(alg)?;
        let kid = entry.kid.clone();
        let mut state = self.handle.shared.lock();
        state.keys.push(entry);
        state.signing = kid.clone();
        Ok(kid)
    }

    /// Removes a key: it is no longer published nor used to sign. If it was
    /// the signing key, the newest remaining key signs. Returns whether a key
    /// was removed: `false` for an unknown `kid`, and for the last key, which
    /// cannot be removed (hide it with [`Issuer::publish`] to serve an empty
    /// key set).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Issuer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let issuer = Issuer::start().await?;
    /// let first = issuer.signing_kid();
    /// let second = issuer.add_key(Algorithm::EdDSA)?;
    /// assert!(issuer.remove_key(&first));
    /// assert_eq!(issuer.signing_kid(), second);
    /// assert!(!issuer.remove_key(&second), "the last key stays");
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_key(&self, kid: &str) -> bool {
        let mut state = self.handle.shared.lock();
        if state.keys.len() < 2 {
            return false;
        }
        let Some(index) = state.keys.iter().position(|k| k.kid == kid) else {
            return false;
        };
        state.keys.remove(index);
        if state.signing == kid
            && let Some(newest) = state.keys.last()
        {
            state.signing = newest.kid.clone();
        }
        true
    }

    /// Shows (`true`) or hides (`false`) a key in the key set. A hidden key
    /// still signs, to test tokens whose `kid` the key set does not have.
    /// Returns whether the key exists.
    ///
    /// ```
    /// use tower_jwt_auth::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// let kid = issuer.signing_kid();
    /// assert!(issuer.publish(&kid, false));
    /// assert_eq!(issuer.jwks_json(), r#"{"keys":[]}"#);
    /// assert!(!issuer.publish("no-such-kid", true));
    /// # Ok(())
    /// # }
    /// ```
    pub fn publish(&self, kid: &str, published: bool) -> bool {
        let mut state = self.handle.shared.lock();
        match state.keys.iter_mut().find(|k| k.kid == kid) {
            Some(key) => {
                key.published = published;
                true
            }
            None => false,
        }
    }

    /// The `kid` of the key [`Issuer::mint`] and [`Issuer::token`] sign with.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, Issuer};
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
    /// use tower_jwt_auth::{Algorithm, Issuer};
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
    /// use tower_jwt_auth::{Claims, Issuer, Verifier};
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
    /// use tower_jwt_auth::{Claims, Issuer, Verifier};
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
    /// use tower_jwt_auth::{Issuer, Key};
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

    /// How many requests the key set route has had (failed ones included).
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tower_jwt_auth::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// let mut stream = tokio::net::TcpStream::connect(issuer.addr()).await?;
    /// stream
    ///     .write_all(b"GET /jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ///     .await?;
    /// let mut answer = String::new();
    /// stream.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 200"));
    /// assert_eq!(issuer.jwks_requests(), 1);
    /// assert_eq!(issuer.discovery_requests(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwks_requests(&self) -> usize {
        self.handle.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many requests the two discovery routes have had together (see
    /// [`Issuer::jwks_requests`] for an example).
    pub fn discovery_requests(&self) -> usize {
        self.handle.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// Sets how the key set and discovery routes answer, from the next
    /// request on ([`IssuerFailure::None`] to answer normally again).
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tower_jwt_auth::{Issuer, IssuerFailure};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// issuer.set_failure(IssuerFailure::Status(503));
    /// let mut stream = tokio::net::TcpStream::connect(issuer.addr()).await?;
    /// stream
    ///     .write_all(b"GET /jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ///     .await?;
    /// let mut answer = String::new();
    /// stream.read_to_string(&mut answer).await?;
    /// assert!(answer.starts_with("HTTP/1.1 503"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_failure(&self, failure: IssuerFailure) {
        self.handle.shared.lock().failure = failure;
    }

    /// Sets (or with `None` removes) the `Cache-Control` header of normal
    /// key set answers, for example `"max-age=60"`. A value that is not a
    /// valid header value is not sent.
    ///
    /// ```
    /// use tower_jwt_auth::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// issuer.set_cache_control(Some("public, max-age=300"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.handle.shared.lock().cache_control = value.map(str::to_owned);
    }

    /// Makes the discovery document name another `issuer` (with `None`, its
    /// own [`url`](Issuer::url) again), to test that a client refuses a
    /// document whose issuer differs from the one it asked for. Tokens keep
    /// the real issuer.
    ///
    /// ```
    /// use tower_jwt_auth::Issuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let issuer = Issuer::start().await?;
    /// issuer.set_discovery_issuer(Some("https://someone-else.example"));
    /// issuer.set_discovery_issuer(None); // its own URL again
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        self.handle.shared.lock().discovery_issuer = issuer.map(str::to_owned);
    }

    /// Stops the server: the listening socket is closed at once, so later
    /// connections are refused, and open connections are closed once their
    /// current request is answered. Calling it again does nothing. Minting
    /// and the other local methods keep working.
    ///
    /// ```
    /// use tower_jwt_auth::Issuer;
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

impl KeyEntry {
    fn generate(alg: Algorithm) -> Result<KeyEntry, BuildError> {
        let failed =
            |e| BuildError::InvalidKey(format!("aws-lc could not generate a {alg} key: {e}"));
        let (signer, mut jwk) = match alg.family() {
            Family::Hmac => {
                return Err(BuildError::InvalidConfig(format!(
                    "the issuer publishes public keys; {alg} needs a shared secret"
                )));
            }
            Family::Rsa => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
                let (n, e) = rsa_components(pair.public_key().as_ref()).ok_or_else(|| {
                    BuildError::InvalidKey("aws-lc gave an unreadable RSA public key".into())
                })?;
                let jwk = json!({"kty": "RSA", "n": b64(n), "e": b64(e)});
                (Signer::Rsa(pair, rsa_encoding(alg)), jwk)
            }
            Family::Ec(curve) => {
                let pair = EcdsaKeyPair::generate(ecdsa_signing(curve)).map_err(failed)?;
                let point = pair.public_key().as_ref();
                let len = curve.coordinate_len();
                let (x, y) = match point.split_first() {
                    Some((0x04, xy)) if xy.len() == 2 * len => xy.split_at(len),
                    _ => {
                        return Err(BuildError::InvalidKey(
                            "aws-lc gave an EC public key that is not an uncompressed point".into(),
                        ));
                    }
                };
                let jwk = json!({"kty": "EC", "crv": curve.jwk_name(), "x": b64(x), "y": b64(y)});
                (Signer::Ecdsa(pair), jwk)
            }
            Family::Ed25519 => {
                let pair = Ed25519KeyPair::generate().map_err(failed)?;
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key())});
                (Signer::Ed25519(pair), jwk)
            }
        };
        let kid = random_id(12);
        if let Value::Object(members) = &mut jwk {
            members.insert("kid".into(), Value::String(kid.clone()));
            members.insert("alg".into(), Value::String(alg.as_str().into()));
            members.insert("use".into(), Value::String("sig".into()));
        }
        Ok(KeyEntry {
            kid,
            alg,
            signer: Arc::new(signer),
            jwk,
            published: true,
        })
    }
}

impl Signer {
    /// A compact JWS of `claims` with the header `{"alg","typ":"JWT","kid"}`.
    fn sign_jwt(&self, alg: Algorithm, kid: &str, claims: &Value) -> Option<String> {
        let header = json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid});
        let mut jws = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.sign(jws.as_bytes())?;
        jws.push('.');
        jws.push_str(&b64(signature));
        Some(jws)
    }

    fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        match self {
            Signer::Rsa(pair, encoding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), message, &mut signature)
                    .ok()?;
                Some(signature)
            }
            Signer::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            Signer::Ed25519(pair) => Some(pair.sign(message).as_ref().to_vec()),
        }
    }
}

fn rsa_encoding(alg: Algorithm) -> &'static dyn RsaEncoding {
    match alg {
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

fn ecdsa_signing(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `len` random bytes as base64url; a counter and the clock if the system
/// random source fails.
fn random_id(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let fallback = format!("{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        return fallback;
    }
    b64(bytes)
}

/// `n` and `e` of a DER `RSAPublicKey` (PKCS#1), without leading zeros.
fn rsa_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, body, []) = der_next(der)? else {
        return None;
    };
    let (0x02, n, rest) = der_next(body)? else {
        return None;
    };
    let (0x02, e, []) = der_next(rest)? else {
        return None;
    };
    Some((strip_zeros(n), strip_zeros(e)))
}

fn strip_zeros(int: &[u8]) -> &[u8] {
    let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
    &int[start..]
}

/// One DER element: its tag, its contents, and what follows it.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// Which document a route serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Document {
    Jwks,
    Discovery,
}

async fn jwks_route(AxumState(shared): AxumState<Arc<Shared>>) -> Response {
    shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    answer(&shared, Document::Jwks).await
}

async fn discovery_route(AxumState(shared): AxumState<Arc<Shared>>) -> Response {
    shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
    answer(&shared, Document::Discovery).await
}

async fn answer(shared: &Shared, document: Document) -> Response {
    let failure = shared.lock().failure.clone();
    match failure {
        IssuerFailure::None => {}
        IssuerFailure::Slow(delay) => tokio::time::sleep(delay).await,
        IssuerFailure::Status(code) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| !s.is_informational())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return response(status, "text/plain; charset=utf-8", None, {
                format!("issuer failure: status {code}\n").into_bytes()
            });
        }
        IssuerFailure::InvalidJson => {
            let body = match document {
                Document::Jwks => r#"{"keys": ["#,
                Document::Discovery => r#"{"issuer": "#,
            };
            return response(StatusCode::OK, "application/json", None, body.into());
        }
        IssuerFailure::HugeBody(len) => {
            return response(
                StatusCode::OK,
                "application/json",
                None,
                huge_body(document, len),
            );
        }
    }
    // Read the state after any delay, so a slow answer shows the current keys.
    let (body, cache_control) = {
        let state = shared.lock();
        match document {
            Document::Jwks => (state.jwks_json(), state.cache_control.clone()),
            Document::Discovery => (shared.discovery_json(&state), None),
        }
    };
    let cache_control = cache_control.and_then(|v| HeaderValue::from_str(&v).ok());
    response(
        StatusCode::OK,
        "application/json",
        cache_control,
        body.into_bytes(),
    )
}

/// `len` bytes (at most [`MAX_HUGE_BODY`]) of a document that starts validly
/// and never closes.
fn huge_body(document: Document, len: usize) -> Vec<u8> {
    let len = len.min(MAX_HUGE_BODY);
    let prefix: &[u8] = match document {
        Document::Jwks => br#"{"keys":[{"kty":"RSA","kid":"huge","alg":"RS256","n":""#,
        Document::Discovery => br#"{"issuer":""#,
    };
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&prefix[..prefix.len().min(len)]);
    body.resize(len, b'A');
    body
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    cache_control: Option<HeaderValue>,
    body: Vec<u8>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(value) = cache_control {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The listening socket, shared so that [`Issuer::shutdown`] can close it
/// at once, from outside the server task.
struct SharedListener {
    shared: Arc<Shared>,
}

impl ::axum::serve::Listener for SharedListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            // The lock is only held inside `poll`, never across an await.
            let accepted = poll_fn(|cx| {
                let guard = self
                    .shared
                    .listener
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match guard.as_ref() {
                    Some(listener) => listener.poll_accept(cx),
                    // Closed: wait for the task to be aborted.
                    None => Poll::Pending,
                }
            })
            .await;
            match accepted {
                Ok(connection) => return connection,
                // Out of file descriptors and the like: back off and retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.shared.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_reader_refuses_garbage() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x30, 0x80],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x02, 0x01, 0x01],
            &[0x30, 0x03, 0x02, 0x01, 0x01],
        ] {
            assert!(rsa_components(input).is_none(), "{input:?}");
        }
        let (n, e) =
            rsa_components(&[0x30, 0x08, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x01, 0x03]).unwrap();
        assert_eq!((n, e), (&[0x80, 0x01][..], &[0x03][..]));
    }

    #[test]
    fn every_asymmetric_algorithm_signs_verifiably() {
        for alg in Algorithm::ALL {
            let Ok(entry) = KeyEntry::generate(alg) else {
                assert_eq!(alg.family(), Family::Hmac, "{alg}");
                continue;
            };
            let token = entry
                .signer
                .sign_jwt(
                    alg,
                    &entry.kid,
                    &json!({"aud": "api", "exp": 4102444800u64}),
                )
                .unwrap();
            let key = crate::Key::from_jwk(&entry.jwk.to_string()).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.kid(), Some(entry.kid.as_str()));
            let verifier = crate::Verifier::builder()
                .key(key)
                .audience("api")
                .build()
                .unwrap();
            assert!(
                verifier.verify::<crate::JsonClaims>(&token).is_ok(),
                "{alg}"
            );
        }
    }

    #[test]
    fn huge_bodies_have_the_asked_length() {
        for len in [0, 1, 10, 100, 100_000] {
            assert_eq!(huge_body(Document::Jwks, len).len(), len);
            assert_eq!(huge_body(Document::Discovery, len).len(), len);
        }
        assert!(huge_body(Document::Jwks, 100).starts_with(br#"{"keys":["#));
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_id(12), random_id(12));
        assert_eq!(random_id(12).len(), 16);
    }
}
