//! The reference server: one axum app with remote keys, token sources,
//! guards and optional authentication, driven end to end by the tests.
//!
//! Run: `cargo run --release --all-features --example server`
//!
//! Configuration (environment):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `JWT_ISSUER` | issuer URL; keys by OIDC discovery | unset: a built-in issuer on 127.0.0.1 |
//! | `JWT_AUDIENCE` | the audience tokens must carry | required with `JWT_ISSUER`/`JWT_JWKS_URL`; else `demo-api` |
//! | `JWT_JWKS_URL` | JWKS URL, instead of discovery (alone: no `iss` check) | unset |
//! | `JWT_COOKIE` | cookie also accepted as a token source | `access_token` |
//! | `JWT_ALGORITHMS` | comma-separated allow-list | every asymmetric algorithm |
//! | `JWT_TOKEN_CACHE` | `1`: cache verified tokens (`TokenCache`) | off |
//! | `JWT_INTROSPECTION_URL` | opaque tokens: the token introspection endpoint (RFC 7662), used instead of keys; needs `JWT_CLIENT_ID`, a client secret or key, and `JWT_AUDIENCE`; checks `iss` when `JWT_ISSUER` is set | unset |
//! | `JWT_INTROSPECTION_DISCOVER` | `1`: opaque tokens, the endpoint read from `JWT_ISSUER`'s discovery document (`introspection_endpoint`) instead of `JWT_INTROSPECTION_URL` | off |
//! | `JWT_CLIENT_ID` | this server's client id at the introspection endpoint | unset |
//! | `JWT_CLIENT_SECRET` | its client secret (`client_secret_basic`) | unset |
//! | `JWT_CLIENT_KEY` | instead of a secret: a file with its PKCS#8 PEM private key (`private_key_jwt`, RFC 7523) | unset |
//! | `JWT_CLIENT_KEY_ALG`, `JWT_CLIENT_KEY_ID` | that key's algorithm and `kid` | `ES256`, none |
//! | `JWT_INTROSPECTION_SIGNED` | `1`: ask for signed answers (RFC 9701) and verify them with `JWT_ISSUER`'s keys | off |
//! | `JWT_RESOURCE` | the resource identifier (RFC 9728), also the DPoP `htu` base | `http://{BIND}` (the bound address) |
//! | `JWT_DPOP_NONCE` | `1`: DPoP proofs must carry a server nonce | off |
//! | `JWT_TRUST_FORWARDED` | `1` or `nginx`: `/auth` judges the original request named by `X-Original-Method`/`X-Original-URI`; `traefik`: by `X-Forwarded-Method`/`X-Forwarded-Uri` | off: `/auth` judges itself |
//! | `JWT_REDIS_URL` | revocation shared by a fleet: `redis://host:port/`, or a comma list of `redis://` node URLs of a Redis Cluster; servers given the same URL form one fleet | unset: no revocation |
//! | `JWT_REDIS_PREFIX` | the prefix of the revocation keys | `jwt:` |
//! | `JWT_REDIS_REPLICAS` | replicas a revocation must reach before it is answered (Redis `WAIT`) | `0` |
//! | `JWT_CLIENT_CERT_HEADER` | trust this header (`Client-Cert`, RFC 9440) as the client certificate: certificate-bound tokens (RFC 8705) need a matching one | unset |
//! | `JWT_TLS_CERT`, `JWT_TLS_KEY` | PEM files: serve HTTPS (prints `listening on https://...`) | unset: plain HTTP |
//! | `JWT_TLS_CLIENT_CA` | PEM file: with HTTPS, ask for (not require) a client certificate signed by this CA and bind tokens to it | unset |
//! | `JWT_DECRYPTION_KEY` | a file with a PEM private key or a private JWKS (with `kid`s): encrypted tokens (JWE) accepted on every route | unset |
//! | `JWT_REQUIRE_ENCRYPTION` | `1`: with `JWT_DECRYPTION_KEY`, plain JWS tokens are refused (401) | off |
//! | `BIND` | listen address (`127.0.0.1:0`: any free port) | `127.0.0.1:3000` |
//!
//! Routes:
//!
//! | route | answers |
//! |---|---|
//! | `GET /health` | 200, no authentication |
//! | `GET /ready` | 200 once signing keys are cached, else 503 (readiness probe); always 200 with introspection |
//! | `GET /me` | the verified claims as JSON, for any valid token (`"sub": null` when the token has none) |
//! | `GET /admin` | role `admin` in `roles` or Keycloak's `realm_access.roles`, else 403 |
//! | `GET /write` | scope `write` in `scope` or `scp`, else 403 `insufficient_scope` |
//! | `GET /maybe` | optional: `{"sub": null}` without a token, the `sub` with a valid one, 401 with a bad one |
//! | `GET /.well-known/oauth-protected-resource{path of JWT_RESOURCE}` | the RFC 9728 metadata, listing `JWT_ISSUER` (or the built-in issuer) |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of `/me`, `/admin`, `/write` and `/maybe`: security schemes from the issuer, each operation's requirement from the routes' own guards; no authentication |
//! | `GET /ws` | WebSocket echo (subprotocol `echo` selected when offered); token from `Authorization`, the cookie, or `Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.<token>` (the token base64url-encoded as `kubectl` sends it, or as it is); closed with 1008 `token expired` when the token expires (an introspected token: when its answer's reuse ends, at most the introspection TTL), and with `JWT_REDIS_URL` with 1008 `token revoked` within a second of its revocation (`POST /logout`, `POST /admin/revoke-subject`) |
//! | `GET /auth` (any method) | forward-auth for nginx `auth_request` / Traefik `ForwardAuth`: 200 with `X-Auth-Request-User`/`-Email`/`-Groups`, or the 401/403 of the layer and of `/admin`'s and `/write`'s rules applied to the original path (with `JWT_TRUST_FORWARDED`) |
//! | `POST /logout` | with `JWT_REDIS_URL`: revokes the calling token (its `jti`, or its token id when it has none) for every server of the fleet; 204 |
//! | `POST /admin/revoke-subject` | with `JWT_REDIS_URL`: `{"sub": "..."}`, role `admin`: revokes every token of that subject issued up to now; 204 (403 without the role) |
//! | any other path, any method (`POST /mcp`) | protected like `/me`: the claims as JSON for a valid token, 401 otherwise |
//!
//! Every protected route accepts `Authorization: Bearer` and
//! `Authorization: DPoP` with a proof (RFC 9449; a DPoP-bound token as
//! `Bearer` is refused), and every 401 carries
//! `resource_metadata="<url of the metadata>"`.
//!
//! When ready it prints a line `listening on <address>`. Without
//! `JWT_ISSUER` it first prints ready-to-use tokens and curl lines.

use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::handler::Handler;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{StatusCode, header};
use serde_json::{Value, json};
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::dpop::{DpopMode, DpopPolicy};
use tower_jwt_auth::forward::{ForwardAuth, Proxy};
use tower_jwt_auth::introspection::{ClientKey, Introspector};
use tower_jwt_auth::jwe::{DecryptionKey, EncryptionMode};
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::metadata::ResourceMetadata;
use tower_jwt_auth::mtls::{ClientCertificate, ClientCertificateLayer, MtlsMode, MtlsPolicy};
use tower_jwt_auth::openapi::{Requirement, Security};
use tower_jwt_auth::revocation::RedisRevocation;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::ws::{ExpiringSocket, ExpiringUpgrade};
use tower_jwt_auth::{
    Algorithm, AuthError, ClaimSource, Claims, JwtAuthLayer, RequireRole, RequireScope,
    TokenSource, TokenVerifier, Verifier,
};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn algorithms() -> Result<Vec<Algorithm>, Box<dyn Error>> {
    match env("JWT_ALGORITHMS") {
        Some(list) => Ok(list
            .split(',')
            .map(|a| a.trim().parse::<Algorithm>())
            .collect::<Result<_, _>>()?),
        None => Ok(Algorithm::all()
            .iter()
            .copied()
            .filter(|a| !a.is_symmetric())
            .collect()),
    }
}

async fn me(claims: Claims) -> impl IntoResponse {
    // The verified payload as it came: a JSON object, no re-serializing.
    // A token without `sub` (say, a client-credentials token) still answers
    // with a `"sub": null` member, as the contract says.
    let body = if claims.sub().is_some() {
        claims.json().to_owned()
    } else {
        let mut payload = claims.custom().clone();
        payload.insert("sub".into(), Value::Null);
        Value::Object(payload).to_string()
    };
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn admin(claims: Claims) -> Json<Value> {
    Json(json!({ "sub": claims.sub(), "admin": true }))
}

async fn write(claims: Claims) -> Json<Value> {
    Json(json!({ "sub": claims.sub(), "written": true }))
}

async fn maybe(claims: Option<Claims>) -> Json<Value> {
    Json(json!({ "sub": claims.as_ref().and_then(|c| c.sub()) }))
}

/// How often an open WebSocket asks the revocation store about its token
/// (with `JWT_REDIS_URL`: answered from the local copy Redis keeps current).
const WS_REVOCATION_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /ws`: an echo of text and binary messages, subprotocol `echo`,
/// closed with 1008 when the token expires, and when `revoked` (the
/// layer's store) says it is revoked.
async fn ws(
    revoked: Option<RedisRevocation>,
    upgrade: ExpiringUpgrade,
) -> axum::response::Response {
    let upgrade = match revoked {
        Some(store) => upgrade.revocation(store, WS_REVOCATION_CHECK),
        None => upgrade,
    };
    upgrade.protocols(["echo"]).on_upgrade(echo)
}

async fn echo(mut socket: ExpiringSocket) {
    use axum::extract::ws::Message;
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) && socket.send(msg).await.is_err() {
            break;
        }
    }
}

/// The app, given a verifier and the cookie name; `cache` feeds `/ready`
/// (none with introspection: always ready); `metadata` is served and named
/// in 401s; `dpop` is the DPoP policy.
fn app(
    verifier: impl TokenVerifier,
    cookie: &str,
    cache: Option<JwksCache>,
    metadata: ResourceMetadata,
    dpop: DpopPolicy,
) -> Router {
    let mut auth = JwtAuthLayer::new(verifier)
        .sources([TokenSource::Bearer, TokenSource::cookie(cookie)])
        .realm("tower-jwt-auth")
        .dpop(dpop)
        .resource_metadata(metadata.url());
    if env("JWT_TOKEN_CACHE").is_some_and(|v| v != "0") {
        auth = auth.cache(TokenCache::new());
    }
    // JWT_REDIS_URL: revocation shared by the fleet, and its two routes.
    let revoked = fleet_revocation().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    if let Some(store) = &revoked {
        auth = auth.revocation(store.clone());
    }
    if let Ok(Some(policy)) = mtls() {
        auth = auth.mtls(policy);
    }
    let admins = RequireRole::any(["admin"])
        .sources([ClaimSource::roles(), ClaimSource::keycloak_realm_roles()]);
    let writers = RequireScope::any(["write"]);

    let protected = Router::new()
        .route("/me", get(me))
        .merge(
            Router::new()
                .route("/admin", get(admin))
                .route_layer(admins.clone()),
        )
        .merge(
            Router::new()
                .route("/write", get(write))
                .route_layer(writers.clone()),
        )
        .route_layer(auth.clone());
    let optional = Router::new()
        .route("/maybe", get(maybe))
        .route_layer(auth.clone().optional());
    let openapi = openapi(&metadata, &admins, &writers);
    let forward = forward_auth(auth.clone(), &admins, &writers);
    // WebSocket clients in a browser offer the token as a subprotocol.
    let store = revoked.clone();
    let websocket = Router::new()
        .route(
            "/ws",
            get(move |upgrade: ExpiringUpgrade| ws(store.clone(), upgrade)),
        )
        .route_layer(auth.clone().sources([
            TokenSource::Bearer,
            TokenSource::cookie(cookie),
            TokenSource::websocket_protocol(TokenSource::KUBERNETES_PROTOCOL),
        ]));
    let ready = move || {
        let status = cache.as_ref().map(JwksCache::status);
        async move {
            let Some(status) = status else {
                let body = json!({ "ready": true, "keys": null, "last_error": null });
                return (StatusCode::OK, Json(body));
            };
            let code = if status.is_ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = json!({
                "ready": status.is_ready(),
                "keys": status.key_count(),
                "last_error": status.last_error(),
            });
            (code, Json(body))
        }
    };
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route_service(metadata.path(), metadata.clone())
        .route_service("/auth", forward)
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], openapi) }),
        )
        .merge(protected)
        .merge(optional)
        .merge(websocket)
        .merge(revocation_routes(revoked, &auth))
        // Every other path, any method: protected like /me.
        .fallback(me.layer(auth))
}

/// `GET /openapi.json`: the routes' document (utoipa), the security
/// schemes from the resource metadata's issuer, each operation's
/// requirement read from the guards that protect it.
fn openapi(metadata: &ResourceMetadata, admins: &RequireRole, writers: &RequireScope) -> String {
    use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
    let get = http::Method::GET;
    let security = Security::from_metadata(metadata)
        .route("/me", get.clone(), Requirement::authenticated())
        .route(
            "/admin",
            get.clone(),
            Requirement::authenticated().guard(admins),
        )
        .route(
            "/write",
            get.clone(),
            Requirement::authenticated().guard(writers),
        )
        .route("/maybe", get, Requirement::optional());
    let info = InfoBuilder::new()
        .title("tower-jwt-auth reference server")
        .version(env!("CARGO_PKG_VERSION"))
        .build();
    let mut doc = OpenApiBuilder::new().info(info).build();
    if let Err(e) = security.apply_utoipa(&mut doc) {
        eprintln!("warning: /openapi.json: {e}");
    }
    doc.to_json().unwrap_or_default()
}

/// `GET /auth`: forward-auth with the routes' own layer, and `/admin`'s
/// and `/write`'s rules limited to those paths of the original request
/// (read from the proxy's headers when `JWT_TRUST_FORWARDED` names it).
/// Without it the original path is unknown, so the path-limited rules are
/// left out and `/auth` judges the token alone (with them, an unknown path
/// would be judged by both, as any unclear path is).
fn forward_auth<C, R: Clone>(
    auth: JwtAuthLayer<C, R>,
    admins: &RequireRole,
    writers: &RequireScope,
) -> ForwardAuth<C, R> {
    let forward = ForwardAuth::new(auth);
    // (Checked at start by `main`.)
    let Ok(Some(proxy)) = trusted_proxy() else {
        return forward;
    };
    // Constant paths, in normal form: accepted.
    let on = |paths: &str| [paths.to_owned()];
    forward
        .trust(proxy)
        .guard(admins.clone().paths(on("/admin")).expect("a valid path"))
        .guard(writers.clone().paths(on("/write")).expect("a valid path"))
}

/// The proxy `JWT_TRUST_FORWARDED` declares trusted, if any.
fn trusted_proxy() -> Result<Option<Proxy>, Box<dyn Error>> {
    match env("JWT_TRUST_FORWARDED").as_deref() {
        None | Some("0") => Ok(None),
        Some("1" | "nginx") => Ok(Some(Proxy::Nginx)),
        Some("traefik") => Ok(Some(Proxy::Traefik)),
        Some(other) => Err(format!("JWT_TRUST_FORWARDED={other}: use 1, nginx or traefik").into()),
    }
}

/// The Redis deny-list `JWT_REDIS_URL` asks for, if any.
fn fleet_revocation() -> Result<Option<RedisRevocation>, Box<dyn Error>> {
    let Some(url) = env("JWT_REDIS_URL") else {
        return Ok(None);
    };
    let mut store = RedisRevocation::builder(&url);
    if let Some(prefix) = env("JWT_REDIS_PREFIX") {
        store = store.prefix(prefix);
    }
    if let Some(n) = env("JWT_REDIS_REPLICAS") {
        store = store.replicas(n.parse().map_err(|e| format!("JWT_REDIS_REPLICAS: {e}"))?);
    }
    Ok(Some(
        store.build().map_err(|e| format!("JWT_REDIS_URL: {e}"))?,
    ))
}

/// `POST /logout` and `POST /admin/revoke-subject`, with a deny-list.
fn revocation_routes(revoked: Option<RedisRevocation>, auth: &JwtAuthLayer) -> Router {
    let Some(store) = revoked else {
        return Router::new();
    };
    let answer = |result: Result<(), tower_jwt_auth::revocation::RedisError>| match result {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(e) => {
            eprintln!("revocation not stored: {e}");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let on_logout = store.clone();
    let logout = move |claims: Claims| async move {
        let iss = claims.iss().unwrap_or("");
        // A token without exp is kept a day (the longest this server
        // expects a token to live).
        let exp = claims.exp().unwrap_or_else(|| unix_now() + 86_400);
        answer(on_logout.revoke(iss, &claims.token_id(), exp).await)
    };
    let revoke_subject = move |claims: Claims, Json(body): Json<Value>| async move {
        let Some(sub) = body.get("sub").and_then(Value::as_str) else {
            return StatusCode::BAD_REQUEST;
        };
        let iss = claims.iss().unwrap_or("");
        answer(store.revoke_subject(iss, sub, unix_now()).await)
    };
    let admins = RequireRole::any(["admin"])
        .sources([ClaimSource::roles(), ClaimSource::keycloak_realm_roles()]);
    Router::new()
        .route("/logout", post(logout))
        .merge(
            Router::new()
                .route("/admin/revoke-subject", post(revoke_subject))
                .route_layer(admins),
        )
        .route_layer(auth.clone())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The introspection client the environment asks for, if any.
fn introspector() -> Result<Option<Introspector>, Box<dyn Error>> {
    let discover = env("JWT_INTROSPECTION_DISCOVER").is_some_and(|v| v != "0");
    let issuer = env("JWT_ISSUER");
    let mut builder = match (env("JWT_INTROSPECTION_URL"), discover, &issuer) {
        (Some(url), false, _) => Introspector::builder(url),
        (None, true, Some(issuer)) => Introspector::discover(issuer.clone()),
        (None, false, _) => return Ok(None),
        (Some(_), true, _) => {
            return Err(
                "set JWT_INTROSPECTION_URL or JWT_INTROSPECTION_DISCOVER=1, not both".into(),
            );
        }
        (None, true, None) => {
            return Err("JWT_INTROSPECTION_DISCOVER=1 needs JWT_ISSUER (whose discovery document names the endpoint)".into());
        }
    };
    let (Some(id), Some(audience)) = (env("JWT_CLIENT_ID"), env("JWT_AUDIENCE")) else {
        return Err(
            "introspection needs JWT_CLIENT_ID, JWT_CLIENT_SECRET (or JWT_CLIENT_KEY) \
                    and JWT_AUDIENCE (the audience your tokens carry)"
                .into(),
        );
    };
    builder = match (env("JWT_CLIENT_SECRET"), env("JWT_CLIENT_KEY")) {
        (Some(secret), None) => builder.client_credentials(id, secret),
        (None, Some(path)) => {
            let alg = match env("JWT_CLIENT_KEY_ALG") {
                Some(name) => name
                    .parse::<Algorithm>()
                    .map_err(|e| format!("JWT_CLIENT_KEY_ALG: {e}"))?,
                None => Algorithm::ES256,
            };
            let pem = std::fs::read(&path).map_err(|e| format!("JWT_CLIENT_KEY {path}: {e}"))?;
            let mut key =
                ClientKey::from_pem(alg, pem).map_err(|e| format!("JWT_CLIENT_KEY {path}: {e}"))?;
            if let Some(kid) = env("JWT_CLIENT_KEY_ID") {
                key = key.with_kid(kid);
            }
            builder.private_key_jwt(id, key)
        }
        _ => return Err("set one of JWT_CLIENT_SECRET and JWT_CLIENT_KEY".into()),
    };
    if env("JWT_INTROSPECTION_SIGNED").is_some_and(|v| v != "0") {
        let Some(issuer) = &issuer else {
            return Err(
                "JWT_INTROSPECTION_SIGNED=1 needs JWT_ISSUER (whose keys sign the answers)".into(),
            );
        };
        builder = builder.signed_answers(JwksCache::discover(issuer).build()?, issuer.clone());
    }
    if let Some(iss) = issuer {
        builder = builder.issuer(iss);
    }
    Ok(Some(builder.audience(audience).build()?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let bind = env("BIND").unwrap_or_else(|| "127.0.0.1:3000".into());
    let cookie = env("JWT_COOKIE").unwrap_or_else(|| "access_token".into());
    let algs = algorithms()?;
    trusted_proxy()?;
    mtls()?;
    let tls = tls()?;

    // With JWT_INTROSPECTION_URL (or _DISCOVER): opaque tokens, asked
    // about at the authorization server.
    if let Some(introspector) = introspector()? {
        // A dummy token: "inactive" means the endpoint and the credentials work.
        if let Err(AuthError::IntrospectionUnavailable(why)) =
            introspector.introspect("startup-check").await
        {
            eprintln!("warning: the introspection endpoint cannot be used yet: {why}");
        }
        let listener = tokio::net::TcpListener::bind(&bind).await?;
        let addr = listener.local_addr()?;
        println!("listening on {}", shown(addr, &tls));
        let (metadata, dpop) = resource(addr, env("JWT_ISSUER"))?;
        serve(
            listener,
            tls,
            app(introspector, &cookie, None, metadata, dpop),
        )
        .await?;
        return Ok(());
    }

    // With JWT_ISSUER: the user's identity provider. Without: a built-in
    // issuer on loopback, so the demo needs no outside service.
    // With JWT_ISSUER (or JWT_JWKS_URL): the user's identity provider.
    // Without either: a built-in issuer on loopback, so the demo needs no
    // outside service.
    let external = env("JWT_ISSUER").is_some() || env("JWT_JWKS_URL").is_some();
    let (issuer_url, audience, builtin) = if external {
        let audience = env("JWT_AUDIENCE").ok_or(
            "JWT_AUDIENCE is required with JWT_ISSUER or JWT_JWKS_URL: the audience your tokens carry",
        )?;
        (env("JWT_ISSUER"), audience, None)
    } else {
        let issuer = Issuer::start().await?;
        let audience = env("JWT_AUDIENCE").unwrap_or_else(|| "demo-api".into());
        (Some(issuer.url()), audience, Some(issuer))
    };
    // Key freshness settings are the crate's defaults, so the README's
    // "Key freshness guarantees" hold here as stated.
    let cache = match (env("JWT_JWKS_URL"), &issuer_url) {
        (Some(jwks), _) => JwksCache::builder(&jwks),
        (None, Some(issuer)) => JwksCache::discover(issuer),
        (None, None) => unreachable!("external mode has one of them"),
    }
    .algorithms(algs.clone())
    .build()?;
    let mut verifier = Verifier::builder()
        .jwks_cache(cache.clone())
        .algorithms(algs)
        .audience(audience.clone());
    match &issuer_url {
        Some(iss) => verifier = verifier.issuer(iss.clone()),
        None => eprintln!(
            "warning: JWT_JWKS_URL without JWT_ISSUER: tokens are checked for signature, \
             audience and lifetime, but not for their issuer"
        ),
    }
    let verifier = decryption(verifier)?.build()?;
    // Fail soft: an identity provider that is down at start-up is retried
    // by the requests (at most once per second, no backoff), so the first
    // token after it comes up passes; /ready tells a load balancer meanwhile.
    if let Err(e) = cache.prefetch().await {
        eprintln!("warning: no signing keys yet: {e}");
    }

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    if let Some(issuer) = &builtin {
        print_demo(issuer, &audience, &cookie, addr);
    }
    println!("listening on {}", shown(addr, &tls));

    let (metadata, dpop) = resource(addr, issuer_url)?;
    let app = app(verifier, &cookie, Some(cache), metadata, dpop);
    serve(listener, tls, app).await?;
    Ok(())
}

/// Certificate-bound tokens (RFC 8705): the client certificate from the
/// trusted header `JWT_CLIENT_CERT_HEADER` (RFC 9440), or from the TLS
/// connection when `JWT_TLS_CLIENT_CA` asks for one.
fn mtls() -> Result<Option<MtlsPolicy>, Box<dyn Error>> {
    let policy = MtlsPolicy::new(MtlsMode::Allowed);
    match (env("JWT_CLIENT_CERT_HEADER"), env("JWT_TLS_CLIENT_CA")) {
        (Some(header), _) => Ok(Some(policy.client_cert_header(&header)?)),
        (None, Some(_)) => Ok(Some(policy)),
        (None, None) => Ok(None),
    }
}

/// Encrypted tokens (JWE): the keys in `JWT_DECRYPTION_KEY` (a PEM private
/// key, or a private JWKS), `JWT_REQUIRE_ENCRYPTION=1` to refuse plain ones.
fn decryption(
    builder: tower_jwt_auth::VerifierBuilder,
) -> Result<tower_jwt_auth::VerifierBuilder, Box<dyn Error>> {
    let Some(path) = env("JWT_DECRYPTION_KEY") else {
        if env("JWT_REQUIRE_ENCRYPTION").is_some_and(|v| v != "0") {
            return Err("JWT_REQUIRE_ENCRYPTION=1 needs JWT_DECRYPTION_KEY".into());
        }
        return Ok(builder);
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("JWT_DECRYPTION_KEY {path}: {e}"))?;
    let keys = if text.trim_start().starts_with('{') {
        DecryptionKey::from_jwks(&text)
    } else {
        DecryptionKey::from_pem(&text).map(|k| vec![k])
    }
    .map_err(|e| format!("JWT_DECRYPTION_KEY {path}: {e}"))?;
    let mode = match env("JWT_REQUIRE_ENCRYPTION").is_some_and(|v| v != "0") {
        true => EncryptionMode::Required,
        false => EncryptionMode::Allowed,
    };
    Ok(builder.decryption_keys(keys).encryption(mode))
}

/// The TLS settings of `JWT_TLS_CERT`, `JWT_TLS_KEY` and `JWT_TLS_CLIENT_CA`, if
/// HTTPS is asked for.
fn tls() -> Result<Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>, Box<dyn Error>> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = match (env("JWT_TLS_CERT"), env("JWT_TLS_KEY")) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) if env("JWT_TLS_CLIENT_CA").is_some() => {
            return Err("JWT_TLS_CLIENT_CA needs JWT_TLS_CERT and JWT_TLS_KEY".into());
        }
        (None, None) => return Ok(None),
        _ => return Err("set both JWT_TLS_CERT and JWT_TLS_KEY".into()),
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("JWT_TLS_CERT {cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("JWT_TLS_KEY {key}: {e}"))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match env("JWT_TLS_CLIENT_CA") {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(&ca)
                .map_err(|e| format!("JWT_TLS_CLIENT_CA {ca}: {e}"))?
            {
                roots.add(c.map_err(|e| format!("JWT_TLS_CLIENT_CA {ca}: {e}"))?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Some(std::sync::Arc::new(
        builder.with_single_cert(chain, key)?,
    )))
}

/// The address as printed: `https://` in front when serving HTTPS.
fn shown(
    addr: std::net::SocketAddr,
    tls: &Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
) -> String {
    match tls {
        Some(_) => format!("https://{addr}"),
        None => addr.to_string(),
    }
}

/// Serves `app`: plain HTTP with `axum::serve`, or HTTPS with tokio-rustls
/// and hyper, each connection's client certificate (if any) put into its
/// requests for the mTLS check.
async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    app: Router,
) -> Result<(), Box<dyn Error>> {
    use tower::Layer;
    let Some(tls) = tls else {
        axum::serve(listener, app).await?;
        return Ok(());
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = ClientCertificateLayer::new(ClientCertificate::from_tls(&stream)).layer(app);
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// RFC 9728: the resource identifier (`JWT_RESOURCE`, default the bound
/// address), its metadata listing `issuer`, and the DPoP policy whose
/// `htu`s name the resource's origin (`JWT_DPOP_NONCE=1`: with nonces).
fn resource(
    addr: std::net::SocketAddr,
    issuer: Option<String>,
) -> Result<(ResourceMetadata, DpopPolicy), Box<dyn Error>> {
    let scheme = match env("JWT_TLS_CERT") {
        Some(_) => "https",
        None => "http",
    };
    let resource = env("JWT_RESOURCE").unwrap_or_else(|| format!("{scheme}://{addr}"));
    let metadata = ResourceMetadata::builder(&resource)
        .authorization_servers(issuer)
        .dpop_algorithms(dpop_algorithms())
        .mtls(matches!(mtls(), Ok(Some(_))))
        .build()?;
    let mut dpop = DpopPolicy::builder(DpopMode::Allowed)
        .base_url(origin(&resource))
        .algorithms(dpop_algorithms());
    if env("JWT_DPOP_NONCE").is_some_and(|v| v != "0") {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| "no randomness for the nonce secret")?;
        dpop = dpop.nonce(secret, tower_jwt_auth::dpop::DEFAULT_NONCE_PERIOD);
    }
    Ok((metadata, dpop.build()?))
}

/// The proof algorithms this server accepts.
fn dpop_algorithms() -> [Algorithm; 4] {
    [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::PS256,
    ]
}

/// `scheme://authority` of a URL: the base of DPoP `htu`s (paths are the
/// request paths this server sees).
fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        }
        None => url.to_owned(),
    }
}

fn print_demo(issuer: &Issuer, audience: &str, cookie: &str, addr: std::net::SocketAddr) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mint = |sub: &str, extra: Value| {
        let mut claims = json!({
            "iss": issuer.url(), "sub": sub, "aud": audience,
            "iat": now, "exp": now + 3600,
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        issuer.mint(&claims)
    };
    let user = mint("user", json!({ "roles": ["user"], "scope": "read" }));
    let admin = mint("admin", json!({ "roles": ["admin"], "scope": "read" }));
    let writer = mint(
        "writer",
        json!({ "roles": ["user"], "scope": "read write" }),
    );
    println!(
        "built-in issuer: {} (set JWT_ISSUER to use your own)",
        issuer.url()
    );
    println!("audience: {audience}");
    println!("tokens (valid for one hour):");
    println!("export USER_TOKEN={user}");
    println!("export ADMIN_TOKEN={admin}");
    println!("export WRITE_TOKEN={writer}");
    println!("try:");
    println!("  curl -i http://{addr}/me -H \"Authorization: Bearer $USER_TOKEN\"    # 200");
    println!("  curl -i http://{addr}/me                                              # 401");
    println!("  curl -i http://{addr}/admin -H \"Authorization: Bearer $USER_TOKEN\" # 403");
    println!("  curl -i http://{addr}/admin -H \"Authorization: Bearer $ADMIN_TOKEN\" # 200");
    println!(
        "  curl -i http://{addr}/write -H \"Authorization: Bearer $USER_TOKEN\" # 403 insufficient_scope"
    );
    println!(
        "  curl -i http://{addr}/write --cookie \"{cookie}=$WRITE_TOKEN\"       # 200, token in a cookie"
    );
    println!(
        "  curl -i http://{addr}/maybe                                           # 200 {{\"sub\":null}}"
    );
}
