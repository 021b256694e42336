//! The seed application (`examples/session.rs`) as a process, on a real
//! `redis-server`, driven over HTTP: login, cookies, the layer with
//! revocation, refresh rotation, reuse detection, logout.

use crate::support::redis;

use crate::support::example;

use std::time::Duration;

use redis::Redis;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use tokio::process::Child;

async fn start(redis: &Redis) -> (String, Child) {
    let started = example::start("session", |cmd| {
        cmd.env("REDIS_URL", redis.url());
    })
    .await;
    (format!("http://{}", started.addr), started.child)
}

/// Tokens from one answer's `Set-Cookie` headers.
#[derive(Debug, Clone)]
struct Session {
    access: String,
    refresh: String,
}

struct Answer {
    status: u16,
    body: Value,
    cookies: Vec<String>,
}

impl Answer {
    fn session(&self) -> Session {
        let get = |name: &str| {
            let c = self
                .cookies
                .iter()
                .find(|c| c.starts_with(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} cookie in {:?}", self.cookies));
            for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
                assert!(c.contains(attr), "{name} cookie lacks {attr}: {c}");
            }
            c[name.len() + 1..].split(';').next().unwrap().to_owned()
        };
        Session {
            access: get("access_token"),
            refresh: get("refresh_token"),
        }
    }
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let cookies = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let text = res.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        cookies,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refresh_reuse_logout() {
    let redis = Redis::start().await;
    let (base, _child) = start(&redis).await;
    let http = reqwest::Client::new();
    let login = |user: &str, pw: &str| {
        http.post(format!("{base}/auth/login"))
            .header("content-type", "application/json")
            .body(json!({"username": user, "password": pw}).to_string())
    };
    let me = |cookie: &str| {
        http.get(format!("{base}/me"))
            .header(COOKIE, cookie.to_owned())
    };

    // Wrong password.
    assert_eq!(send(login("alice", "nope")).await.status, 401);

    // Login: cookies and the access token in JSON.
    let a = send(login("alice", "alice-password")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let s1 = a.session();
    assert_eq!(a.body["access_token"], s1.access);
    // The access token works from the cookie and as a Bearer token.
    let r = send(me(&format!("access_token={}", s1.access))).await;
    assert_eq!((r.status, &r.body["sub"]), (200, &json!("alice")));
    let r = send(http.get(format!("{base}/me")).bearer_auth(&s1.access)).await;
    assert_eq!(r.status, 200);
    assert_eq!(send(http.get(format!("{base}/me"))).await.status, 401);

    // Roles.
    let admin_cookie = |s: &Session| format!("access_token={}", s.access);
    let r = send(
        http.get(format!("{base}/admin"))
            .header(COOKIE, admin_cookie(&s1)),
    )
    .await;
    assert_eq!(r.status, 403);
    let root = send(login("root", "root-password")).await.session();
    let r = send(
        http.get(format!("{base}/admin"))
            .header(COOKIE, admin_cookie(&root)),
    )
    .await;
    assert_eq!(r.status, 200);

    // Refresh rotates the refresh token.
    let refresh = |token: &str| {
        http.post(format!("{base}/auth/refresh"))
            .header(COOKIE, format!("refresh_token={token}"))
    };
    let r = send(refresh(&s1.refresh)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s2 = r.session();
    assert_ne!(s2.refresh, s1.refresh);
    assert_ne!(s2.access, s1.access);
    assert_eq!(
        send(me(&format!("access_token={}", s2.access)))
            .await
            .status,
        200
    );

    // The old refresh token again: reuse. Every session of alice ends.
    let r = send(refresh(&s1.refresh)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "refresh_token_reused");
    let r = send(me(&format!("access_token={}", s2.access))).await;
    assert_eq!(
        r.status, 401,
        "access tokens issued before the reuse are revoked"
    );
    let r = send(refresh(&s2.refresh)).await;
    assert_eq!(r.status, 401, "so are the refresh tokens");
    // Other users are untouched.
    let r = send(
        http.get(format!("{base}/admin"))
            .header(COOKIE, admin_cookie(&root)),
    )
    .await;
    assert_eq!(r.status, 200);

    // A fresh login works again (issued after the mark: wait a second so
    // its iat is past the mark), then logout revokes it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s3 = send(login("alice", "alice-password")).await.session();
    assert_eq!(
        send(me(&format!("access_token={}", s3.access)))
            .await
            .status,
        200
    );
    let r = send(http.post(format!("{base}/auth/logout")).header(
        COOKIE,
        format!("access_token={}; refresh_token={}", s3.access, s3.refresh),
    ))
    .await;
    assert_eq!(r.status, 204);
    assert!(
        r.cookies.iter().all(|c| c.contains("Max-Age=0")),
        "{:?}",
        r.cookies
    );
    assert_eq!(
        send(me(&format!("access_token={}", s3.access)))
            .await
            .status,
        401
    );
    assert_eq!(send(refresh(&s3.refresh)).await.status, 401);
}
