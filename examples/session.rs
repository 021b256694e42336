//! The seed application: a login flow next to the middleware, on Redis.
//!
//! - `POST /auth/login` `{"username", "password"}`: checks a demo user,
//!   answers a 15-minute access token (also in the JSON) and a 7-day
//!   refresh token, both as `HttpOnly; Secure; SameSite=Strict` cookies.
//! - `POST /auth/refresh`: rotates the refresh token. Each one works once;
//!   presenting a used one again (a stolen copy) revokes every session of
//!   that user: their refresh tokens and every access token issued so far.
//! - `POST /auth/logout`: revokes the current access and refresh tokens.
//! - `GET /me` (any valid token) and `GET /admin` (role `admin`) read the
//!   access token from the cookie or the Bearer header through the layer,
//!   which checks revocation in Redis.
//!
//! Run: `redis-server &` then `cargo run --all-features --example session`.
//! Environment: `REDIS_URL` (default `redis://127.0.0.1:6379/`), `BIND`
//! (default `127.0.0.1:3001`). Prints `listening on <address>` when ready.
//! Demo users: `alice` / `alice-password` (role `user`) and `root` /
//! `root-password` (roles `user`, `admin`).

use std::error::Error;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_jwt_auth::revocation::RedisRevocation;
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Key, RequireRole, TokenSource, Verifier};

const ISSUER: &str = "urn:session-demo";
const AUDIENCE: &str = "session-demo";
const ACCESS_TTL: i64 = 15 * 60;
const REFRESH_TTL: i64 = 7 * 24 * 3600;
const USERS: [(&str, &str, &[&str]); 2] = [
    ("alice", "alice-password", &["user"]),
    ("root", "root-password", &["user", "admin"]),
];

struct App {
    signer: Ed25519KeyPair,
    redis: ConnectionManager,
    revoked: RedisRevocation,
}

type Shared = State<Arc<App>>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

impl App {
    fn access_token(&self, sub: &str, roles: &[String]) -> String {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "session-1"});
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": roles,
            "iat": now(), "exp": now() + ACCESS_TTL, "jti": random(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.signer.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// A new refresh token for `sub`, remembered in Redis (and in the
    /// user's set, so all of them can be revoked at once).
    async fn refresh_token(&self, sub: &str) -> redis::RedisResult<String> {
        let token = random();
        let mut conn = self.redis.clone();
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(format!("session:refresh:{token}"))
            .arg(sub)
            .arg("EX")
            .arg(REFRESH_TTL)
            .ignore()
            .cmd("SADD")
            .arg(format!("session:user:{sub}"))
            .arg(&token)
            .ignore()
            .cmd("EXPIRE")
            .arg(format!("session:user:{sub}"))
            .arg(REFRESH_TTL)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(token)
    }

    /// Access and refresh tokens as cookies, and the access token in JSON.
    async fn issue(&self, sub: &str, roles: &[String]) -> Response {
        let access = self.access_token(sub, roles);
        let refresh = match self.refresh_token(sub).await {
            Ok(t) => t,
            Err(e) => return unavailable(&e),
        };
        let mut headers = HeaderMap::new();
        for cookie in [
            format!(
                "access_token={access}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={ACCESS_TTL}"
            ),
            format!(
                "refresh_token={refresh}; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age={REFRESH_TTL}"
            ),
        ] {
            headers.append(header::SET_COOKIE, cookie.parse().expect("cookie"));
        }
        let body =
            json!({"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL});
        (headers, Json(body)).into_response()
    }

    /// Revokes every session of `sub`: its refresh tokens, and every access
    /// token issued up to now.
    async fn revoke_all(&self, sub: &str) -> Result<(), String> {
        let mut conn = self.redis.clone();
        let tokens: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("session:user:{sub}"))
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let mut pipe = redis::pipe();
        for t in &tokens {
            pipe.cmd("DEL").arg(format!("session:refresh:{t}")).ignore();
        }
        pipe.cmd("DEL").arg(format!("session:user:{sub}")).ignore();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        self.revoked
            .revoke_subject(ISSUER, sub, now())
            .await
            .map_err(|e| e.to_string())
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    eprintln!("redis: {e}");
    (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable").into_response()
}

fn refused(why: &'static str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": why}))).into_response()
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(State(app): Shared, Json(form): Json<Login>) -> Response {
    // Compare both in constant time, whoever the user is.
    let user = USERS.iter().find(|(name, password, _)| {
        let same_name = aws_lc_rs::constant_time::verify_slices_are_equal(
            name.as_bytes(),
            form.username.as_bytes(),
        );
        let same_pw = aws_lc_rs::constant_time::verify_slices_are_equal(
            password.as_bytes(),
            form.password.as_bytes(),
        );
        same_name.is_ok() & same_pw.is_ok()
    });
    match user {
        Some((name, _, roles)) => {
            let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            app.issue(name, &roles).await
        }
        None => refused("invalid_credentials"),
    }
}

async fn refresh(State(app): Shared, headers: HeaderMap) -> Response {
    let Some(token) = cookie(&headers, "refresh_token") else {
        return refused("no_refresh_token");
    };
    let mut conn = app.redis.clone();
    // Take the token: it works once.
    let taken: Result<Option<String>, _> = redis::cmd("GETDEL")
        .arg(format!("session:refresh:{token}"))
        .query_async(&mut conn)
        .await;
    let sub = match taken {
        Ok(Some(sub)) => sub,
        Ok(None) => {
            // Used before (or never issued): if we remember it as used, a
            // copy was stolen; end every session of its user.
            let used: Result<Option<String>, _> = redis::cmd("GET")
                .arg(format!("session:used:{token}"))
                .query_async(&mut conn)
                .await;
            return match used {
                Ok(Some(sub)) => match app.revoke_all(&sub).await {
                    Ok(()) => refused("refresh_token_reused"),
                    Err(e) => unavailable(&e),
                },
                Ok(None) => refused("invalid_refresh_token"),
                Err(e) => unavailable(&e),
            };
        }
        Err(e) => return unavailable(&e),
    };
    let remember: redis::RedisResult<()> = redis::pipe()
        .cmd("SET")
        .arg(format!("session:used:{token}"))
        .arg(&sub)
        .arg("EX")
        .arg(REFRESH_TTL)
        .ignore()
        .cmd("SREM")
        .arg(format!("session:user:{sub}"))
        .arg(token)
        .ignore()
        .query_async(&mut conn)
        .await;
    if let Err(e) = remember {
        return unavailable(&e);
    }
    let roles = USERS
        .iter()
        .find(|(name, _, _)| *name == sub)
        .map(|(_, _, roles)| roles.iter().map(|r| r.to_string()).collect::<Vec<_>>())
        .unwrap_or_default();
    app.issue(&sub, &roles).await
}

async fn logout(State(app): Shared, claims: Claims, headers: HeaderMap) -> Response {
    if let (Some(jti), Some(exp)) = (claims.jti(), claims.exp())
        && let Err(e) = app.revoked.revoke(ISSUER, jti, exp).await
    {
        return unavailable(&e);
    }
    if let Some(token) = cookie(&headers, "refresh_token") {
        let mut conn = app.redis.clone();
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(format!("session:refresh:{token}"))
            .query_async(&mut conn)
            .await;
    }
    let mut out = HeaderMap::new();
    for c in [
        "access_token=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
        "refresh_token=; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age=0",
    ] {
        out.append(header::SET_COOKIE, c.parse().expect("cookie"));
    }
    (StatusCode::NO_CONTENT, out).into_response()
}

async fn me(claims: Claims) -> Json<Value> {
    Json(claims.payload().clone())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3001".into());

    let signer = Ed25519KeyPair::generate()?;
    let public = URL_SAFE_NO_PAD.encode(signer.public_key().as_ref());
    let key = Key::from_jwk_for(
        Algorithm::EdDSA,
        &json!({"kty": "OKP", "crv": "Ed25519", "x": public}).to_string(),
    )?
    .with_kid("session-1");
    let verifier = Verifier::builder()
        .key(key)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .typ("at+jwt")
        .build()?;
    let revoked = RedisRevocation::builder(&redis_url)
        .prefix("session:revoked:")
        .build()?;
    let redis = ConnectionManager::new(redis::Client::open(redis_url.as_str())?).await?;
    let app = Arc::new(App {
        signer,
        redis,
        revoked: revoked.clone(),
    });

    let auth = JwtAuthLayer::new(verifier)
        .sources([TokenSource::cookie("access_token"), TokenSource::Bearer])
        .revocation(revoked);
    let protected = Router::new()
        .route("/me", get(me))
        .route("/auth/logout", post(logout))
        .merge(
            Router::new()
                .route("/admin", get(|| async { Json(json!({"admin": true})) }))
                .route_layer(RequireRole::any(["admin"])),
        )
        .route_layer(auth);
    let router = Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .merge(protected)
        .with_state(app);

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
