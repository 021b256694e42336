//! Runs the reference server (`examples/server.rs`) as a process and drives
//! it over HTTP on 127.0.0.1: with its built-in issuer (the README demo),
//! and pointed at an identity provider by `JWT_ISSUER`.

use crate::support::example;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tower_jwt_auth::testing::Issuer;

struct Server {
    base: String,
    /// `NAME=value` lines printed before `listening on`.
    exports: Vec<(String, String)>,
    _child: Child,
}

impl Server {
    async fn start(env: &[(&str, &str)]) -> Server {
        let started = example::start("server", |cmd| {
            for var in [
                "JWT_ISSUER",
                "JWT_AUDIENCE",
                "JWT_JWKS_URL",
                "JWT_COOKIE",
                "JWT_ALGORITHMS",
                "JWT_TOKEN_CACHE",
                "JWT_RESOURCE",
                "JWT_DPOP_NONCE",
                "JWT_TRUST_FORWARDED",
                "JWT_REDIS_URL",
                "JWT_REDIS_PREFIX",
                "JWT_REDIS_REPLICAS",
                "JWT_CLIENT_CERT_HEADER",
                "JWT_TLS_CERT",
                "JWT_TLS_KEY",
                "JWT_TLS_CLIENT_CA",
                "JWT_DECRYPTION_KEY",
                "JWT_REQUIRE_ENCRYPTION",
            ] {
                cmd.env_remove(var);
            }
            for (k, v) in env {
                cmd.env(k, v);
            }
        })
        .await;
        let addr = started.addr;
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server {
            base: format!("http://{addr}"),
            exports: started.exports,
            _child: started.child,
        }
    }

    fn export(&self, name: &str) -> &str {
        example::export(&self.exports, name)
    }
}

struct Answer {
    status: u16,
    challenge: String,
    body: Value,
}

async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = reqwest::Client::new().get(format!("{}{path}", server.base));
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
    Answer {
        status,
        challenge,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn bearer(token: &str) -> [(&'static str, String); 1] {
    [("authorization", format!("Bearer {token}"))]
}

async fn with(server: &Server, path: &str, token: &str) -> Answer {
    let h = bearer(token);
    get(server, path, &[(h[0].0, &h[0].1)]).await
}

#[tokio::test]
async fn builtin_issuer_demo_end_to_end() {
    let server = Server::start(&[]).await;
    let user = server.export("USER_TOKEN").to_owned();
    let admin = server.export("ADMIN_TOKEN").to_owned();
    let writer = server.export("WRITE_TOKEN").to_owned();

    let a = get(&server, "/health", &[]).await;
    assert_eq!(a.status, 200);
    let a = get(&server, "/ready", &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["ready"], true);

    // /me: any valid token; missing and bad tokens are 401.
    let a = with(&server, "/me", &user).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["sub"], "user");
    assert_eq!(a.body["aud"], "demo-api");
    let a = get(&server, "/me", &[]).await;
    assert_eq!(a.status, 401);
    // Bearer first, with no error code; DPoP is offered too, and both
    // point to the resource metadata (issue 18's contract extension).
    assert!(
        a.challenge
            .starts_with(r#"Bearer realm="tower-jwt-auth", resource_metadata=""#)
            && !a.challenge.contains("error="),
        "{}",
        a.challenge
    );
    let mut forged = user.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let a = with(&server, "/me", &forged).await;
    assert_eq!(a.status, 401);
    assert!(
        a.challenge.contains(r#"error="invalid_token""#),
        "{}",
        a.challenge
    );
    // The scheme is case-insensitive.
    let a = get(
        &server,
        "/me",
        &[("authorization", &format!("bEaReR {user}"))],
    )
    .await;
    assert_eq!(a.status, 200);

    // Roles and scopes.
    assert_eq!(with(&server, "/admin", &user).await.status, 403);
    let a = with(&server, "/admin", &admin).await;
    assert_eq!((a.status, &a.body["sub"]), (200, &json!("admin")));
    let a = with(&server, "/write", &user).await;
    assert_eq!(a.status, 403);
    assert!(
        a.challenge.contains(r#"error="insufficient_scope""#)
            && a.challenge.contains(r#"scope="write""#),
        "{}",
        a.challenge
    );
    assert_eq!(with(&server, "/write", &writer).await.status, 200);
    assert_eq!(with(&server, "/write", &admin).await.status, 403);

    // The default cookie source.
    let cookie = format!("theme=dark; access_token={writer}");
    let a = get(&server, "/write", &[("cookie", &cookie)]).await;
    assert_eq!(a.status, 200, "{}", a.challenge);

    // /maybe: optional authentication.
    let a = get(&server, "/maybe", &[]).await;
    assert_eq!((a.status, &a.body), (200, &json!({"sub": null})));
    let a = with(&server, "/maybe", &admin).await;
    assert_eq!((a.status, &a.body), (200, &json!({"sub": "admin"})));
    assert_eq!(with(&server, "/maybe", &forged).await.status, 401);
    assert_eq!(with(&server, "/maybe", "garbage").await.status, 401);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointed_at_an_identity_provider() {
    let idp = Issuer::start().await.unwrap();
    let url = idp.url();
    let server = Server::start(&[
        ("JWT_ISSUER", &url),
        ("JWT_AUDIENCE", "orders"),
        ("JWT_COOKIE", "session"),
    ])
    .await;
    assert!(server.exports.is_empty(), "no demo tokens with JWT_ISSUER");
    let mint = |extra: Value| {
        let mut c = json!({"iss": url, "sub": "kc-user", "aud": ["account", "orders"],
                           "exp": now() + 600, "iat": now()});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.mint(&c)
    };
    // Keycloak layout: realm_access.roles; Entra layout: scp.
    let kc_admin = mint(json!({"realm_access": {"roles": ["offline_access", "admin"]}}));
    let entra_writer = mint(json!({"scp": "orders.read write"}));
    let plain = mint(json!({}));

    let a = with(&server, "/me", &plain).await;
    assert_eq!((a.status, &a.body["sub"]), (200, &json!("kc-user")));
    assert_eq!(with(&server, "/admin", &kc_admin).await.status, 200);
    assert_eq!(with(&server, "/admin", &entra_writer).await.status, 403);
    assert_eq!(with(&server, "/write", &entra_writer).await.status, 200);
    assert_eq!(with(&server, "/write", &kc_admin).await.status, 403);

    // The configured cookie name, not the default one.
    let a = get(&server, "/me", &[("cookie", &format!("session={plain}"))]).await;
    assert_eq!(a.status, 200);
    let a = get(
        &server,
        "/me",
        &[("cookie", &format!("access_token={plain}"))],
    )
    .await;
    assert_eq!(a.status, 401);

    // Another audience, another issuer, an expired token.
    let wrong_aud = mint(json!({"aud": "billing"}));
    let a = with(&server, "/me", &wrong_aud).await;
    assert_eq!(a.status, 401);
    assert!(a.challenge.contains("audience"), "{}", a.challenge);
    let other = Issuer::start().await.unwrap();
    let foreign = other.token("x", "orders");
    assert_eq!(with(&server, "/me", &foreign).await.status, 401);
    let expired = mint(json!({"exp": now() - 3600}));
    let a = with(&server, "/me", &expired).await;
    assert_eq!(a.status, 401);
    assert!(a.challenge.contains("expired"), "{}", a.challenge);

    assert_eq!(with(&server, "/me", &plain).await.status, 200);

    // A valid token without `sub`: the contract's `"sub"` is there, null.
    let mut anonymous = json!({"iss": url, "aud": "orders", "exp": now() + 600, "iat": now()});
    anonymous["client_id"] = json!("svc");
    let a = with(&server, "/me", &idp.mint(&anonymous)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["sub"], Value::Null);
    assert!(
        a.body.as_object().unwrap().contains_key("sub"),
        "{}",
        a.body
    );
    assert_eq!(a.body["client_id"], "svc");
}

#[tokio::test]
async fn an_issuer_without_an_audience_is_refused_at_start() {
    let out = Command::new(example::path("server"))
        .env("BIND", "127.0.0.1:0")
        .env("JWT_ISSUER", "https://login.example.com")
        .env_remove("JWT_AUDIENCE")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_AUDIENCE"), "{stderr}");
}

#[tokio::test]
async fn with_the_token_cache_on() {
    let server = Server::start(&[("JWT_TOKEN_CACHE", "1")]).await;
    let user = server.export("USER_TOKEN").to_owned();
    for _ in 0..3 {
        let a = with(&server, "/me", &user).await;
        assert_eq!((a.status, &a.body["sub"]), (200, &json!("user")));
        assert_eq!(with(&server, "/admin", &user).await.status, 403);
    }
    let (head, _) = user.rsplit_once('.').unwrap();
    let forged = format!("{head}.AAAA");
    assert_eq!(with(&server, "/me", &forged).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_jwks_url() {
    let idp = Issuer::start().await.unwrap();
    let jwks = idp.jwks_url();
    // With an issuer too: the JWKS URL is used instead of discovery.
    let server = Server::start(&[
        ("JWT_ISSUER", &idp.url()),
        ("JWT_JWKS_URL", &jwks),
        ("JWT_AUDIENCE", "orders"),
    ])
    .await;
    assert_eq!(
        with(&server, "/me", &idp.token("ada", "orders"))
            .await
            .status,
        200
    );
    assert_eq!(
        with(&server, "/me", &idp.token("ada", "billing"))
            .await
            .status,
        401
    );
    assert_eq!(idp.discovery_requests(), 0);
    let other = Issuer::start().await.unwrap();
    assert_eq!(
        with(&server, "/me", &other.token("ada", "orders"))
            .await
            .status,
        401
    );

    // Alone: signature, audience and lifetime are checked.
    let server = Server::start(&[("JWT_JWKS_URL", &jwks), ("JWT_AUDIENCE", "orders")]).await;
    assert!(server.exports.is_empty(), "no built-in issuer");
    let a = with(&server, "/me", &idp.token("ada", "orders")).await;
    assert_eq!((a.status, &a.body["sub"]), (200, &json!("ada")));
    assert_eq!(
        with(&server, "/me", &idp.token("ada", "billing"))
            .await
            .status,
        401
    );
    assert_eq!(
        with(&server, "/me", &other.token("ada", "orders"))
            .await
            .status,
        401
    );
}

/// A client's DPoP key and proofs (RFC 9449), signed here with aws-lc.
struct DpopClient {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
}

impl DpopClient {
    fn new() -> Self {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        DpopClient {
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair;
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": Self::b64(&p[1..33]), "y": Self::b64(&p[33..65])})
    }

    fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            j["x"], j["y"]
        );
        Self::b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    fn proof(&self, method: &str, url: &str, token: &str, jti: &str) -> String {
        self.proof_with_nonce(method, url, token, jti, None)
    }

    fn proof_with_nonce(
        &self,
        method: &str,
        url: &str,
        token: &str,
        jti: &str,
        nonce: Option<&str>,
    ) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let ath = Self::b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        let mut payload = json!({"jti": jti, "htm": method, "htu": url, "iat": now(), "ath": ath});
        if let Some(n) = nonce {
            payload["nonce"] = json!(n);
        }
        let input = format!(
            "{}.{}",
            Self::b64(header.to_string()),
            Self::b64(payload.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, input.as_bytes()).unwrap();
        format!("{input}.{}", Self::b64(sig))
    }
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", server.base));
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
    Answer {
        status,
        challenge,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_metadata_dpop_and_every_other_path_protected() {
    let idp = Issuer::start().await.unwrap();
    let url = idp.url();
    let server = Server::start(&[("JWT_ISSUER", &url), ("JWT_AUDIENCE", "orders")]).await;
    let base = server.base.clone();
    let mint = |extra: Value| {
        let mut c = json!({"iss": url, "sub": "agent", "aud": "orders",
                           "exp": now() + 600, "iat": now()});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.mint(&c)
    };

    // RFC 9728: the document at the root resource's well-known location.
    let a = get(&server, "/.well-known/oauth-protected-resource", &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["resource"], json!(base));
    assert_eq!(a.body["authorization_servers"], json!([url]));
    assert!(a.body["dpop_signing_alg_values_supported"].is_array());
    // Every 401 points to it, and offers DPoP next to Bearer.
    let pointer = format!(r#"resource_metadata="{base}/.well-known/oauth-protected-resource""#);
    for path in ["/me", "/admin", "/mcp", "/anything/else"] {
        let a = get(&server, path, &[]).await;
        assert_eq!(a.status, 401, "{path}");
        assert!(a.challenge.contains(&pointer), "{path}: {}", a.challenge);
        assert!(
            a.challenge.contains("DPoP realm"),
            "{path}: {}",
            a.challenge
        );
    }

    // Any other path, any method: protected like /me.
    let plain = mint(json!({}));
    let h = bearer(&plain);
    let a = send(&server, reqwest::Method::POST, "/mcp", &[(h[0].0, &h[0].1)]).await;
    assert_eq!((a.status, &a.body["sub"]), (200, &json!("agent")));
    let a = send(&server, reqwest::Method::POST, "/mcp", &[]).await;
    assert_eq!(a.status, 401);
    assert_eq!(get(&server, "/health", &[]).await.status, 200);

    // DPoP: a bound token with fresh proofs is accepted, as Bearer refused,
    // a replayed proof refused.
    let client = DpopClient::new();
    let bound = mint(json!({"cnf": {"jkt": client.jkt()}}));
    let auth = format!("DPoP {bound}");
    let p1 = client.proof("GET", &format!("{base}/me"), &bound, "p1");
    let a = get(&server, "/me", &[("authorization", &auth), ("dpop", &p1)]).await;
    assert_eq!(
        (a.status, &a.body["sub"]),
        (200, &json!("agent")),
        "{}",
        a.challenge
    );
    let p2 = client.proof("POST", &format!("{base}/mcp"), &bound, "p2");
    let a = send(
        &server,
        reqwest::Method::POST,
        "/mcp",
        &[("authorization", &auth), ("dpop", &p2)],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.challenge);
    let a = get(&server, "/me", &[("authorization", &auth), ("dpop", &p1)]).await;
    assert_eq!(a.status, 401);
    assert!(
        a.challenge.contains("invalid_dpop_proof"),
        "{}",
        a.challenge
    );
    let a = with(&server, "/me", &bound).await;
    assert_eq!(a.status, 401);
    assert!(a.challenge.contains("invalid_token"), "{}", a.challenge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_nonces_when_asked_for() {
    let idp = Issuer::start().await.unwrap();
    let url = idp.url();
    let server = Server::start(&[
        ("JWT_ISSUER", &url),
        ("JWT_AUDIENCE", "orders"),
        ("JWT_DPOP_NONCE", "1"),
        ("JWT_RESOURCE", "https://api.example.com/mcp"),
    ])
    .await;
    let client = DpopClient::new();
    let bound = idp.mint(&json!({"iss": url, "sub": "agent", "aud": "orders",
        "exp": now() + 600, "iat": now(), "cnf": {"jkt": client.jkt()}}));
    // The metadata follows JWT_RESOURCE, and htu names its origin.
    let a = get(&server, "/.well-known/oauth-protected-resource/mcp", &[]).await;
    assert_eq!(a.body["resource"], "https://api.example.com/mcp");
    let auth = format!("DPoP {bound}");
    let p = client.proof("GET", "https://api.example.com/me", &bound, "n1");
    let res = reqwest::Client::new()
        .get(format!("{}/me", server.base))
        .header("authorization", &auth)
        .header("dpop", &p)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("use_dpop_nonce"), "{challenge}");
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let p = client.proof_with_nonce(
        "GET",
        "https://api.example.com/me",
        &bound,
        "n2",
        Some(&nonce),
    );
    let a = get(&server, "/me", &[("authorization", &auth), ("dpop", &p)]).await;
    assert_eq!(a.status, 200, "{}", a.challenge);
}

/// `GET /auth` (issue 31): status, challenge and the claim headers of a
/// forward-auth subrequest for `original` (`None`: no proxy headers).
async fn forward(
    server: &Server,
    token: Option<&str>,
    original: Option<&str>,
) -> (u16, String, http::HeaderMap) {
    let mut req = reqwest::Client::new().get(format!("{}/auth", server.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(uri) = original {
        req = req
            .header("x-original-method", "GET")
            .header("x-original-uri", uri);
    }
    let res = req.send().await.unwrap();
    let headers = res.headers().clone();
    let challenge = headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), challenge, headers)
}

#[tokio::test]
async fn forward_auth_applies_admin_and_write_rules_to_the_original_path_when_trusted() {
    let server = Server::start(&[("JWT_TRUST_FORWARDED", "1")]).await;
    let user = server.export("USER_TOKEN").to_owned();
    let admin = server.export("ADMIN_TOKEN").to_owned();
    let writer = server.export("WRITE_TOKEN").to_owned();

    let (status, _, h) = forward(&server, Some(&user), Some("/me")).await;
    assert_eq!(status, 200);
    assert_eq!(h["x-auth-request-user"], "user");
    assert_eq!(h["x-auth-request-groups"], "user");
    assert_eq!(forward(&server, Some(&user), Some("/admin")).await.0, 403);
    let (status, _, h) = forward(&server, Some(&admin), Some("/admin/x?y=1")).await;
    assert_eq!(status, 200);
    assert_eq!(h["x-auth-request-user"], "admin");
    let (status, challenge, _) = forward(&server, Some(&user), Some("/write")).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert_eq!(forward(&server, Some(&writer), Some("/write")).await.0, 200);
    // No token: the layer's challenge, resource metadata and all.
    let (status, challenge, _) = forward(&server, None, Some("/me")).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with(r#"Bearer realm="tower-jwt-auth", resource_metadata=""#),
        "{challenge}"
    );
    // A trusted proxy that did not name the original request: 400, never
    // judged as /auth.
    assert_eq!(forward(&server, Some(&user), None).await.0, 400);

    // Not trusted: the headers are anyone's, /auth judges itself.
    let untrusted = Server::start(&[]).await;
    let user = untrusted.export("USER_TOKEN").to_owned();
    assert_eq!(
        forward(&untrusted, Some(&user), Some("/admin")).await.0,
        200
    );
}

/// The reference server pointed at an in-test issuer (so that a test can
/// mint short-lived tokens), and a token for it living `ttl` seconds.
async fn with_issuer() -> (Issuer, Server) {
    let idp = Issuer::start().await.unwrap();
    let url = idp.url();
    let server = Server::start(&[("JWT_ISSUER", &url), ("JWT_AUDIENCE", "ws-api")]).await;
    (idp, server)
}

fn short_lived(idp: &Issuer, ttl: i64) -> (String, i64) {
    let exp = now() as i64 + ttl;
    let token = idp.mint(
        &json!({"iss": idp.url(), "sub": "ws-user", "aud": "ws-api", "exp": exp, "iat": now()}),
    );
    (token, exp)
}

/// What a WebSocket client saw, as the client scripts print it.
fn assert_closed_at_exp(seen: &Value, closed_at: i64, exp: i64) {
    assert_eq!(seen["protocol"], "echo", "{seen}");
    assert_eq!(seen["echoed"], "hello", "{seen}");
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token expired", "{seen}");
    assert!(
        (exp..=exp + 2).contains(&closed_at),
        "closed at {closed_at}, token exp {exp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshake_selects_echo_never_the_token_and_refuses_two_tokens() {
    let (idp, server) = with_issuer().await;
    let (token, _) = short_lived(&idp, 600);
    let entry = |t: &str| format!("base64url.bearer.authorization.k8s.io.{t}");
    let handshake = |protocols: String| {
        reqwest::Client::new()
            .get(format!("{}/ws", server.base))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-protocol", protocols)
            .send()
    };
    let res = handshake(format!("{}, echo", entry(&token))).await.unwrap();
    assert_eq!(res.status().as_u16(), 101);
    let selected: Vec<_> = res
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .collect();
    assert_eq!(selected, ["echo"]);
    // The Kubernetes form: the token base64url-encoded after the prefix.
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token)
    };
    let res = handshake(format!("{}, echo", entry(&encoded)))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 101);
    // Two token entries: 400, whatever they hold.
    let two = format!("{}, {}, echo", entry(&token), entry(&token));
    let res = handshake(two).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    // No token, or a bad one: 401, with the challenge.
    let res = handshake("echo".into()).await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let res = handshake(format!("{}, echo", entry("a.b.c")))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_websocket_client_is_closed_with_1008_when_its_token_expires() {
    let (idp, server) = with_issuer().await;
    let (token, exp) = short_lived(&idp, 3);
    let ws_url = server.base.replace("http://", "ws://") + "/ws";
    let seen = crate::support::ws_client::node(&ws_url, &token).await;
    let closed_at = now() as i64;
    assert_closed_at_exp(&seen, closed_at, exp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_client_sending_the_kubernetes_encoded_form_is_served_and_closed_at_exp() {
    let (idp, server) = with_issuer().await;
    let (token, exp) = short_lived(&idp, 2);
    let ws_url = server.base.replace("http://", "ws://") + "/ws";
    let seen = crate::support::ws_client::node_encoded(&ws_url, &token).await;
    let closed_at = now() as i64;
    assert_closed_at_exp(&seen, closed_at, exp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_offers_the_token_as_a_subprotocol_and_sees_the_close_at_exp() {
    use axum::routing::{get as route_get, post};
    let chromium = crate::support::apt::ensure("chromium", "chromium");
    let (idp, server) = with_issuer().await;
    let (token, exp) = short_lived(&idp, 5);
    // The page, on its own 127.0.0.1 origin; it posts what it saw.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
    let page = include_str!("../data/ws/page.html");
    let site = axum::Router::new()
        .route(
            "/page",
            route_get(move || async move { axum::response::Html(page) }),
        )
        .route(
            "/report",
            post(move |body: String| async move {
                let _ = tx.send(body).await;
            }),
        );
    let site = crate::support::raw_http::serve(site).await;
    let ws_url = server.base.replace("http://", "ws://") + "/ws";
    let page_url = format!("http://{site}/page?ws={ws_url}&token={token}");
    let profile = std::env::temp_dir().join(format!("tjwt-chromium-{}", std::process::id()));
    let _browser = Command::new(&chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&page_url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {chromium}: {e}"));
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("no report from the page within 30 s")
        .unwrap();
    let closed_at = now() as i64;
    drop(_browser);
    let _ = std::fs::remove_dir_all(&profile);
    let seen: Value = serde_json::from_str(&report).unwrap();
    assert_closed_at_exp(&seen, closed_at, exp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_validates_and_its_scopes_are_the_guards() {
    let (_idp, server) = with_issuer().await;
    let a = get(&server, "/openapi.json", &[]).await;
    assert_eq!(a.status, 200);
    let doc = a.body;
    let file = std::env::temp_dir().join(format!("tjwt-openapi-{}.json", std::process::id()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let report = crate::support::pip::validate_openapi(&file);
    let _ = std::fs::remove_file(&file);
    let report = report.unwrap_or_else(|r| panic!("openapi-spec-validator: {r}\n{doc:#}"));
    assert!(report.contains("OK"), "{report}");

    // The schemes: bearer JWT, and the issuer's discovery document.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    let discovery = format!("{}/.well-known/openid-configuration", _idp.url());
    assert_eq!(schemes["oidc"]["openIdConnectUrl"], discovery.as_str());
    // Each operation's requirements are its guards': /write the `write`
    // scope, /admin the `admin` role, /me a token, /maybe a token or none.
    let security = |path: &str| doc["paths"][path]["get"]["security"].clone();
    assert_eq!(
        security("/write"),
        json!([{"bearer": ["write"]}, {"oidc": ["write"]}])
    );
    assert_eq!(
        security("/admin"),
        json!([{"bearer": ["admin"]}, {"oidc": []}])
    );
    assert_eq!(security("/me"), json!([{"bearer": []}, {"oidc": []}]));
    assert_eq!(
        security("/maybe"),
        json!([{}, {"bearer": []}, {"oidc": []}])
    );
    assert!(doc["paths"]["/write"]["get"]["responses"]["403"].is_object());
}

/// `POST {path}` with `token` and a JSON body; the status.
async fn post(server: &Server, path: &str, token: &str, body: Option<Value>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .header("authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    req.send().await.unwrap().status().as_u16()
}

/// Polls `path` on `server` with `token` until 401 (bounded); how long
/// it took since `since`.
async fn refused_within(
    server: &Server,
    token: &str,
    since: std::time::Instant,
) -> std::time::Duration {
    loop {
        let status = with(server, "/me", token).await.status;
        if status == 401 {
            return since.elapsed();
        }
        assert_eq!(status, 200);
        assert!(
            since.elapsed() < std::time::Duration::from_secs(2),
            "never refused"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_share_logout_and_subject_revocation() {
    let redis = crate::support::redis::Redis::start().await;
    let idp = Issuer::start().await.unwrap();
    let url = idp.url();
    let redis_url = redis.url();
    let env = [
        ("JWT_ISSUER", url.as_str()),
        ("JWT_AUDIENCE", "orders"),
        ("JWT_REDIS_URL", redis_url.as_str()),
        ("JWT_REDIS_PREFIX", "fleet:"),
    ];
    let (one, two) = tokio::join!(Server::start(&env), Server::start(&env));
    let mint = |sub: &str, extra: Value| {
        let mut c = json!({"iss": url, "sub": sub, "aud": "orders",
                           "exp": now() + 600, "iat": now()});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.mint(&c)
    };

    // Logout by jti on one server: the other refuses the token.
    let token = mint("ada", json!({"jti": "session-1"}));
    let other = mint("ada", json!({"jti": "session-2"}));
    for server in [&one, &two] {
        assert_eq!(with(server, "/me", &token).await.status, 200);
    }
    let started = std::time::Instant::now();
    assert_eq!(post(&one, "/logout", &token, None).await, 204);
    let took = refused_within(&two, &token, started).await;
    println!("logout on one server refused by the other after {took:?}");
    assert_eq!(with(&one, "/me", &token).await.status, 401);
    assert_eq!(with(&two, "/me", &other).await.status, 200);

    // A token without jti is revoked by its token id.
    let no_jti = mint("ada", json!({"scope": "read"}));
    assert_eq!(with(&one, "/me", &no_jti).await.status, 200);
    assert_eq!(post(&two, "/logout", &no_jti, None).await, 204);
    refused_within(&one, &no_jti, std::time::Instant::now()).await;
    assert_eq!(with(&one, "/me", &other).await.status, 200);

    // Revoke a subject: role admin only.
    let admin = mint("root", json!({"jti": "adm", "roles": ["admin"]}));
    let bob = mint("bob", json!({"jti": "bob-1"}));
    assert_eq!(with(&two, "/me", &bob).await.status, 200);
    let body = json!({"sub": "bob"});
    assert_eq!(
        post(&one, "/admin/revoke-subject", &other, Some(body.clone())).await,
        403
    );
    assert_eq!(with(&two, "/me", &bob).await.status, 200);
    assert_eq!(
        post(&one, "/admin/revoke-subject", &admin, Some(json!({}))).await,
        400
    );
    assert_eq!(
        post(&one, "/admin/revoke-subject", &admin, Some(body)).await,
        204
    );
    refused_within(&two, &bob, std::time::Instant::now()).await;
    assert_eq!(with(&one, "/me", &bob).await.status, 401);
    // A token issued after the mark passes; everything else is unchanged.
    let later = mint("bob", json!({"jti": "bob-2", "iat": now() + 2}));
    assert_eq!(with(&two, "/me", &later).await.status, 200);
    assert_eq!(with(&one, "/admin", &admin).await.status, 200);
    assert_eq!(post(&one, "/logout", "not-a-token", None).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_an_open_websocket_with_1008_token_revoked() {
    let redis = crate::support::redis::Redis::start().await;
    let idp = Issuer::start().await.unwrap();
    let url = idp.url();
    let redis_url = redis.url();
    let server = Server::start(&[
        ("JWT_ISSUER", url.as_str()),
        ("JWT_AUDIENCE", "ws-api"),
        ("JWT_REDIS_URL", redis_url.as_str()),
    ])
    .await;
    let token = idp.mint(&json!({"iss": url, "sub": "ws-user", "aud": "ws-api",
                                 "jti": "ws-session-1", "exp": now() + 600, "iat": now()}));
    let ws_url = server.base.replace("http://", "ws://") + "/ws";
    let mut client =
        crate::support::ws_client::session(&ws_url, &token, "raw", std::time::Duration::ZERO);
    client.opened().await;
    let started = std::time::Instant::now();
    assert_eq!(post(&server, "/logout", &token, None).await, 204);
    // The server asks every second.
    let seen = client.closed(std::time::Duration::from_secs(5)).await;
    println!("socket closed {:?} after logout", started.elapsed());
    assert_eq!(seen["protocol"], "echo", "{seen}");
    assert_eq!(seen["code"], 1008, "{seen}");
    assert_eq!(seen["reason"], "token revoked", "{seen}");
}

// ---------------------------------------------------------------------------
// Issue 28: certificate-bound tokens (RFC 8705) over HTTPS or a trusted
// `Client-Cert` header, and encrypted tokens (JWE).

/// A fresh directory for this test's PEM files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tjwt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bound_token(idp: &Issuer, x5t: &str) -> String {
    idp.mint(&json!({
        "iss": idp.url(), "sub": "ada", "aud": "orders",
        "exp": now() + 600, "iat": now(),
        "cnf": {"x5t#S256": x5t},
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_bound_tokens_over_https_with_a_client_ca() {
    use crate::support::pki::{Ca, https_get};
    let idp = Issuer::start().await.unwrap();
    let ca = Ca::new("clients");
    let server_cert = ca.server();
    let (a, b) = (ca.client("a"), ca.client("b"));
    let dir = scratch("mtls");
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    std::fs::write(path("cert.pem"), &server_cert.pem).unwrap();
    std::fs::write(path("key.pem"), &server_cert.key_pem).unwrap();
    std::fs::write(path("ca.pem"), &ca.cert.pem).unwrap();
    let started = example::start("server", |cmd| {
        cmd.env_remove("JWT_ISSUER")
            .env_remove("JWT_CLIENT_CERT_HEADER")
            .env("JWT_JWKS_URL", idp.jwks_url())
            .env("JWT_AUDIENCE", "orders")
            .env("JWT_TLS_CERT", path("cert.pem"))
            .env("JWT_TLS_KEY", path("key.pem"))
            .env("JWT_TLS_CLIENT_CA", path("ca.pem"));
    })
    .await;
    let addr: std::net::SocketAddr = started
        .addr
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("not https: {}", started.addr))
        .parse()
        .unwrap();
    let auth = format!("Bearer {}", bound_token(&idp, &a.x5t()));
    let h = [("Authorization", auth.as_str())];
    let (status, body) = https_get(ca.client_config(Some(&a)), addr, "/me", &h).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = https_get(ca.client_config(Some(&b)), addr, "/me", &h).await;
    assert_eq!(status, 401, "another certificate");
    let (status, _) = https_get(ca.client_config(None), addr, "/me", &h).await;
    assert_eq!(status, 401, "no certificate");
    // An unbound token needs no certificate; the metadata says mTLS is on.
    let plain = format!("Bearer {}", idp.token("ada", "orders"));
    let (status, _) = https_get(
        ca.client_config(None),
        addr,
        "/me",
        &[("Authorization", &plain)],
    )
    .await;
    assert_eq!(status, 200);
    let (_, meta) = https_get(
        ca.client_config(None),
        addr,
        "/.well-known/oauth-protected-resource",
        &[],
    )
    .await;
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
    assert!(meta["resource"].as_str().unwrap().starts_with("https://"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_bound_tokens_with_the_trusted_client_cert_header() {
    use base64::Engine;
    let idp = Issuer::start().await.unwrap();
    let ca = crate::support::pki::Ca::new("clients");
    let (a, b) = (ca.client("a"), ca.client("b"));
    let sf = |der: &[u8]| {
        format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    };
    let bound = bound_token(&idp, &a.x5t());
    let server = Server::start(&[
        ("JWT_JWKS_URL", &idp.jwks_url()),
        ("JWT_AUDIENCE", "orders"),
        ("JWT_CLIENT_CERT_HEADER", "Client-Cert"),
    ])
    .await;
    let auth = format!("Bearer {bound}");
    for (cert, want) in [
        (Some(sf(&a.der)), 200),
        (Some(sf(&b.der)), 401),
        (None, 401),
    ] {
        let mut h = vec![("authorization", auth.as_str())];
        if let Some(c) = &cert {
            h.push(("client-cert", c.as_str()));
        }
        assert_eq!(get(&server, "/me", &h).await.status, want, "{cert:?}");
    }
    // Without the variable, the header binds nothing: the bound token is
    // refused (its binding cannot be verified).
    let plain = Server::start(&[
        ("JWT_JWKS_URL", &idp.jwks_url()),
        ("JWT_AUDIENCE", "orders"),
    ])
    .await;
    let spoof = sf(&a.der);
    let h = [
        ("authorization", auth.as_str()),
        ("client-cert", spoof.as_str()),
    ];
    assert_eq!(get(&plain, "/me", &h).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_tokens_with_a_decryption_key() {
    let keys = format!("{}/tests/data/keys", env!("CARGO_MANIFEST_DIR"));
    let server = Server::start(&[
        ("JWT_DECRYPTION_KEY", &format!("{keys}/rsa.key")),
        ("JWT_REQUIRE_ENCRYPTION", "1"),
    ])
    .await;
    let user = server.export("USER_TOKEN").to_owned();
    let jwe = {
        let mut jose = crate::differential::jose::Jose::start();
        let answer = jose.ask(&json!({
            "op": "encrypt", "plaintext": user, "alg": "RSA-OAEP-256", "enc": "A256GCM",
            "spki": std::fs::read_to_string(format!("{keys}/rsa.pub")).unwrap(), "cty": "JWT",
        }));
        answer["jwe"].as_str().unwrap().to_owned()
    };
    let a = with(&server, "/me", &jwe).await;
    assert_eq!((a.status, &a.body["sub"]), (200, &json!("user")));
    assert_eq!(
        with(&server, "/admin", &jwe).await.status,
        403,
        "guards see the claims"
    );
    let plain = with(&server, "/me", &user).await;
    assert_eq!(
        plain.status, 401,
        "plain JWS refused with JWT_REQUIRE_ENCRYPTION=1"
    );
    assert!(
        plain.challenge.contains("invalid_token"),
        "{}",
        plain.challenge
    );
    // Without JWT_REQUIRE_ENCRYPTION both pass.
    let both = Server::start(&[("JWT_DECRYPTION_KEY", &format!("{keys}/rsa.key"))]).await;
    let user = both.export("USER_TOKEN").to_owned();
    assert_eq!(with(&both, "/me", &user).await.status, 200);
}
