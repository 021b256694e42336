//! Forward-auth (`ForwardAuth`): the subrequests of a proxy in front of an
//! upstream. A real nginx (`auth_request`, with the configuration in
//! `docs/forward-auth/nginx.conf`) runs in front of an upstream that
//! echoes the headers it receives; and the proxy headers are checked
//! in-process for both proxies.

use crate::support as common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::apt::ensure;
use common::*;
use http::{HeaderMap, Request};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tower::ServiceExt;
use tower_jwt_auth::forward::{ForwardAuth, Proxy};
use tower_jwt_auth::{Algorithm, JwtAuthLayer, RequireRole, Verifier};

fn forward_auth(proxy: Option<Proxy>) -> ForwardAuth {
    let verifier = Verifier::builder()
        .key(verify_key(Algorithm::ES256))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let auth = ForwardAuth::new(JwtAuthLayer::new(verifier).realm("fwd"))
        .guard(RequireRole::any(["admin"]).paths(["/admin"]).unwrap());
    match proxy {
        Some(p) => auth.trust(p),
        None => auth,
    }
}

fn user_token(roles: &[&str], email: Option<&str>) -> String {
    let mut c = claims();
    c["roles"] = json!(roles);
    if let Some(email) = email {
        c["email"] = json!(email);
    }
    token(Algorithm::ES256, &c)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx with the site configuration of the docs, its addresses replaced;
/// killed on drop.
struct Nginx {
    port: u16,
    dir: PathBuf,
    _child: Child,
}

impl Nginx {
    async fn start(auth: u16, upstream: u16) -> Nginx {
        let nginx = ensure("nginx", "nginx");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("tjwt-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let site = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/forward-auth/nginx.conf"
        ))
        .unwrap();
        for addr in ["127.0.0.1:8000", "127.0.0.1:3000", "127.0.0.1:8080"] {
            assert!(site.contains(addr), "the docs configuration names {addr}");
        }
        let site = site
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:3000", &format!("127.0.0.1:{auth}"))
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{upstream}"));
        std::fs::write(dir.join("site.conf"), site).unwrap();
        let d = dir.display();
        let main = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {nginx}: {e}"));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Nginx {
                    port,
                    dir,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        panic!("nginx did not start on port {port}: {log}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Seen {
    status: u16,
    challenge: String,
    body: Value,
}

async fn get_via(nginx: &Nginx, path: &str, headers: &[(&str, &str)]) -> Seen {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{}{path}", nginx.port));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    Seen {
        status,
        challenge,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// The upstream: echoes the headers it received as a JSON object.
fn echo() -> Router {
    Router::new().fallback(|headers: HeaderMap| async move {
        let map: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?"))))
            .collect();
        axum::Json(Value::Object(map))
    })
}

#[tokio::test]
async fn behind_real_nginx_the_upstream_sees_only_the_claims_forward_auth_answered() {
    let auth =
        raw_http::serve(Router::new().route_service("/auth", forward_auth(Some(Proxy::Nginx))))
            .await;
    let upstream = raw_http::serve(echo()).await;
    let nginx = Nginx::start(auth.port(), upstream.port()).await;

    // A valid token: the upstream sees the claim headers, not the
    // client's forged ones (a forged email is dropped: the token has none).
    let user = user_token(&["user", "dev"], None);
    let bearer = format!("Bearer {user}");
    let seen = get_via(
        &nginx,
        "/hello?x=1",
        &[
            ("authorization", &bearer),
            ("x-auth-request-user", "admin"),
            ("x-auth-request-email", "forged@example.com"),
            ("x-auth-request-groups", "admin"),
        ],
    )
    .await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["x-auth-request-user"], "user-1");
    assert_eq!(seen.body["x-auth-request-groups"], "user,dev");
    assert_eq!(seen.body.get("x-auth-request-email"), None, "{}", seen.body);

    // The email claim, when the token has one.
    let with_email = format!("Bearer {}", user_token(&["user"], Some("ada@example.com")));
    let seen = get_via(&nginx, "/", &[("authorization", &with_email)]).await;
    assert_eq!(seen.body["x-auth-request-email"], "ada@example.com");

    // No token: 401 with the challenge, and the upstream is never asked.
    let seen = get_via(&nginx, "/hello", &[("x-auth-request-user", "admin")]).await;
    assert_eq!(seen.status, 401);
    assert!(
        seen.challenge.starts_with("Bearer realm=\"fwd\""),
        "{}",
        seen.challenge
    );
    assert!(
        seen.body.get("x-auth-request-user").is_none(),
        "{:?}",
        seen.body
    );

    // A bad token: 401 invalid_token.
    let seen = get_via(&nginx, "/hello", &[("authorization", "Bearer a.b.c")]).await;
    assert_eq!(seen.status, 401);
    assert!(
        seen.challenge.contains("invalid_token"),
        "{}",
        seen.challenge
    );

    // /admin without the role: 403, whatever the client claims about the
    // original URI (nginx sets X-Original-URI itself).
    for path in ["/admin", "/admin/users?page=2", "//admin", "/x/../admin"] {
        let seen = get_via(
            &nginx,
            path,
            &[("authorization", &bearer), ("x-original-uri", "/public")],
        )
        .await;
        assert_eq!(seen.status, 403, "{path}: {:?}", seen.body);
    }
    // With the role: through, with the groups.
    let admin = format!("Bearer {}", user_token(&["admin"], None));
    let seen = get_via(&nginx, "/admin/users", &[("authorization", &admin)]).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body["x-auth-request-groups"], "admin");
}

async fn ask(auth: ForwardAuth, headers: &[(&str, &str)]) -> (u16, HeaderMap) {
    let mut req = Request::builder().uri("/auth");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = Router::new()
        .route_service("/auth", auth)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    (res.status().as_u16(), res.headers().clone())
}

#[tokio::test]
async fn the_original_request_is_read_only_from_the_declared_proxy() {
    let user = format!("Bearer {}", user_token(&["user"], None));
    let traefik = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/admin")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = vec![("authorization", &user)];
        h.extend_from_slice(extra);
        h
    };
    // Undeclared: the forwarded headers are anyone's; the guard sees /auth.
    let (status, headers) = ask(forward_auth(None), &with(&traefik)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-auth-request-user"], "user-1");
    // Traefik declared: its headers name /admin, the guard refuses.
    assert_eq!(
        ask(forward_auth(Some(Proxy::Traefik)), &with(&traefik))
            .await
            .0,
        403
    );
    // nginx declared: Traefik's headers are not nginx's; a subrequest
    // without nginx's is refused, never judged as /auth.
    let (status, headers) = ask(forward_auth(Some(Proxy::Nginx)), &with(&traefik)).await;
    assert_eq!(status, 400);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_request")
    );
    // A public path under Traefik: 200 with the claims.
    let public = [
        ("x-forwarded-method", "POST"),
        ("x-forwarded-uri", "/items?x=1"),
    ];
    let (status, headers) = ask(forward_auth(Some(Proxy::Traefik)), &with(&public)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-auth-request-groups"], "user");
    // No token: 401 with the layer's challenge, before any header check.
    let (status, headers) = ask(forward_auth(Some(Proxy::Traefik)), &public).await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"fwd\"")
    );
}

#[tokio::test]
async fn claim_headers_are_configurable_and_a_control_character_gives_no_header() {
    let auth = forward_auth(None).claim_headers([
        (
            http::HeaderName::from_static("x-user"),
            tower_jwt_auth::ClaimSource::claim("name"),
        ),
        (
            http::HeaderName::from_static("x-note"),
            tower_jwt_auth::ClaimSource::claim("note"),
        ),
    ]);
    let mut c = claims();
    c["note"] = json!("line\r\nx-injected: 1");
    let bearer = format!("Bearer {}", token(Algorithm::ES256, &c));
    let (status, headers) = ask(auth, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-user"], "Ada");
    assert!(headers.get("x-note").is_none());
    assert!(headers.get("x-injected").is_none());
    assert!(headers.get("x-auth-request-user").is_none());
}
