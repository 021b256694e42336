//! `jsonrpc::RequireToolScopes` through an axum router: scopes per tool
//! and per method, the MCP step-up challenge (403 `insufficient_scope`
//! with `scope` and `resource_metadata`), the body the service behind
//! sees, batches, the body limit, names that only look like a tool's.

use crate::support as common;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use common::*;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jwt_auth::jsonrpc::{RequireToolScopes, Unmapped};
use tower_jwt_auth::metadata::ResourceMetadata;
use tower_jwt_auth::{Algorithm, JwtAuthLayer};

const RESOURCE: &str = "https://mcp.example.com/mcp";

fn guard() -> RequireToolScopes {
    RequireToolScopes::builder()
        .method("tools/list", ["mcp:tools"])
        .tool("whoami", ["mcp:tools"])
        .tool("admin_echo", ["mcp:admin"])
        .max_body(4096)
        .build()
        .unwrap()
}

/// The service behind echoes the body it got, byte for byte; it answers
/// 400 itself to a body that is not JSON (as an MCP server would).
fn app(guard: RequireToolScopes) -> Router {
    let metadata = ResourceMetadata::builder(RESOURCE)
        .authorization_servers([ISSUER])
        .scopes_supported(guard.scopes())
        .build()
        .unwrap();
    let verifier = es256_verifier();
    let echo = |body: Bytes| async move {
        if serde_json::from_slice::<Value>(&body).is_err() {
            return (StatusCode::BAD_REQUEST, Bytes::from_static(b"parse error"));
        }
        (StatusCode::OK, body)
    };
    Router::new()
        .route("/mcp", post(echo).get(|| async { "stream" }))
        .route_layer(guard)
        .route_layer(JwtAuthLayer::new(verifier).resource_metadata(metadata.url()))
}

fn token_with(scope: &str) -> String {
    let mut c = claims();
    c["scope"] = json!(scope);
    token(Algorithm::ES256, &c)
}

struct Answer {
    status: StatusCode,
    challenge: String,
    body: Bytes,
}

async fn send(app: &Router, scope: Option<&str>, body: impl Into<Body>) -> Answer {
    let mut req = Request::post("/mcp").header("content-type", "application/json");
    if let Some(scope) = scope {
        req = req.header(AUTHORIZATION, format!("Bearer {}", token_with(scope)));
    }
    let res = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    Answer {
        status: res.status(),
        challenge: res
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: res.into_body().collect().await.unwrap().to_bytes(),
    }
}

fn call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": tool, "arguments": {"text": "hi"}}})
    .to_string()
}

#[tokio::test]
async fn a_call_beyond_the_tokens_scopes_gets_the_mcp_step_up_challenge() {
    let app = app(guard());
    let a = send(&app, Some("mcp:tools"), call("admin_echo")).await;
    assert_eq!(a.status, 403);
    // The scopes this call needs, then those held that the map knows
    // (MCP 2025-11-25 recommended approach); the metadata to ask at.
    assert!(
        a.challenge.contains(r#"error="insufficient_scope""#)
            && a.challenge.contains(r#"scope="mcp:admin mcp:tools""#)
            && a.challenge.contains(
                r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
            ),
        "{}",
        a.challenge
    );
    // The stepped-up token passes; the plain one still calls its tool.
    let a = send(&app, Some("mcp:tools mcp:admin"), call("admin_echo")).await;
    assert_eq!(a.status, 200);
    let a = send(&app, Some("mcp:tools"), call("whoami")).await;
    assert_eq!(a.status, 200);
    // A method with an entry needs its scope; one without needs nothing.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    assert_eq!(send(&app, Some("openid"), list).await.status, 403);
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}).to_string();
    assert_eq!(send(&app, Some("openid"), ping).await.status, 200);
    // No token: 401, not 403.
    assert_eq!(send(&app, None, call("whoami")).await.status, 401);
}

#[tokio::test]
async fn the_service_behind_gets_exactly_the_bytes_sent() {
    let app = app(guard());
    // Odd spacing, escapes, a duplicate member, non-ASCII, sent in three
    // chunks: what comes back (the echo) is what went in.
    let sent: &[u8] = b"{ \"jsonrpc\" :\"2.0\",\"id\":7 ,\"method\":\"tools\\/call\",\n\
        \"params\":{\"name\":\"whoami\",\"arguments\":{\"t\":\"\\u00e9\xc3\xa9\"}},\"x\":1,\"x\":2}\t";
    let a = send(&app, Some("mcp:tools"), sent.to_vec()).await;
    assert_eq!(a.status, 200);
    assert_eq!(&a.body[..], sent);
    let body = chunked([&sent[..5], &sent[5..40], &sent[40..]]);
    let a = send(&app, Some("mcp:tools"), body).await;
    assert_eq!(a.status, 200);
    assert_eq!(&a.body[..], sent);
}

/// A body in these chunks, with no length known up front.
fn chunked<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Body {
    struct Chunks(std::collections::VecDeque<Bytes>);
    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
        }
    }
    Body::new(Chunks(
        chunks.into_iter().map(Bytes::copy_from_slice).collect(),
    ))
}

#[tokio::test]
async fn a_batch_with_one_forbidden_member_is_refused_whole() {
    let app = app(guard());
    let batch = format!("[{},{}]", call("whoami"), call("admin_echo"));
    let a = send(&app, Some("mcp:tools"), batch.clone()).await;
    assert_eq!(a.status, 403);
    assert!(
        a.challenge.contains(r#"scope="mcp:tools mcp:admin""#),
        "{}",
        a.challenge
    );
    let a = send(&app, Some("mcp:tools mcp:admin"), batch.clone()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, batch.as_bytes());
    // A duplicate `name` is judged whichever one the server reads.
    let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"admin_echo"}}"#;
    assert_eq!(send(&app, Some("mcp:tools"), dup).await.status, 403);
}

#[tokio::test]
async fn tool_names_match_exactly_not_by_case_or_lookalike() {
    let app = app(guard());
    // Different case, Cyrillic а (U+0430), fullwidth ａ, a trailing space, a
    // zero-width joiner: not admin_echo, and not mapped: refused (403 with
    // no scope to ask for), even with every scope.
    for name in [
        "Admin_echo",
        "ADMIN_ECHO",
        "\u{430}dmin_echo",
        "\u{ff41}dmin_echo",
        "admin_echo ",
        "admin\u{200d}_echo",
    ] {
        let a = send(&app, Some("mcp:tools mcp:admin"), call(name)).await;
        assert_eq!(a.status, 403, "{name:?}");
        assert!(
            !a.challenge.contains("scope=\""),
            "{name:?}: {}",
            a.challenge
        );
    }
    // With unmapped names allowed, a lookalike reaches the server behind
    // as itself (which knows no such tool), never as admin_echo's entry.
    let open = RequireToolScopes::builder()
        .tool("admin_echo", ["mcp:admin"])
        .unmapped(Unmapped::Require(vec!["mcp:tools".into()]))
        .build()
        .unwrap();
    let app = app_with(open);
    let a = send(&app, Some("mcp:tools"), call("Admin_echo")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, call("Admin_echo").as_bytes());
}

fn app_with(guard: RequireToolScopes) -> Router {
    app(guard)
}

#[tokio::test]
async fn an_oversized_body_is_413_and_never_reaches_the_service() {
    let app = app(guard());
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"whoami","arguments":{{"t":"{}"}}}}}}"#,
        "a".repeat(5000)
    );
    assert_eq!(send(&app, Some("mcp:tools"), big.clone()).await.status, 413);
    // Without a Content-Length (streamed): 413 too, once past the limit.
    let stream = chunked(big.as_bytes().chunks(1000));
    let req = Request::post("/mcp")
        .header(AUTHORIZATION, format!("Bearer {}", token_with("mcp:tools")))
        .body(stream)
        .unwrap();
    assert!(req.headers().get(CONTENT_LENGTH).is_none());
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 413);
}

/// A body the guard cannot read is one it cannot judge: refused (400),
/// never passed to a server that might read it another way (a BOM, a
/// trailing value, a lenient parser).
#[tokio::test]
async fn a_body_that_is_not_json_is_refused_by_the_guard_and_get_passes() {
    let app = app(guard());
    for bad in [
        r#"{"method":"tools/call","params":{"name":"admin_echo""#,
        "\u{feff}{\"method\":\"tools/call\",\"params\":{\"name\":\"admin_echo\"}}",
        r#"{"method":"tools/call"} trailing"#,
    ] {
        let a = send(&app, Some("openid"), bad).await;
        assert_eq!(a.status, 400, "{bad}");
        assert_ne!(&a.body[..], b"parse error", "the service was called: {bad}");
    }
    // GET (the server's event stream) carries no call: unchecked.
    let req = Request::get("/mcp")
        .header(AUTHORIZATION, format!("Bearer {}", token_with("openid")))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
}

/// A compressed body is one the guard cannot read as it is: a
/// decompression layer behind it would hand the server a call the guard
/// never saw. Refused with 415; `identity` is no encoding.
#[tokio::test]
async fn an_encoded_body_is_refused_with_415() {
    let app = app(guard());
    for encoding in ["gzip", "br", "deflate, gzip", "GZIP"] {
        let req = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .header(AUTHORIZATION, format!("Bearer {}", token_with("mcp:tools")))
            .body(Body::from(call("whoami")))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 415, "{encoding}");
    }
    let req = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("content-encoding", "identity")
        .header(AUTHORIZATION, format!("Bearer {}", token_with("mcp:tools")))
        .body(Body::from(call("whoami")))
        .unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
}

/// A call sent with another method (a handler routed with `any`) is judged
/// all the same: only a request whose body is known to be empty passes
/// unread.
#[tokio::test]
async fn a_call_sent_with_another_method_is_judged() {
    let echo = |body: Bytes| async move { (StatusCode::OK, body) };
    let verifier = es256_verifier();
    let app = Router::new()
        .route("/mcp", axum::routing::any(echo))
        .route_layer(guard())
        .route_layer(JwtAuthLayer::new(verifier));
    for method in ["PUT", "PATCH", "DELETE", "GET"] {
        let req = Request::builder()
            .method(method)
            .uri("/mcp")
            .header(AUTHORIZATION, format!("Bearer {}", token_with("mcp:tools")))
            .body(Body::from(call("admin_echo")))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 403, "{method}");
    }
    let req = Request::delete("/mcp")
        .header(AUTHORIZATION, format!("Bearer {}", token_with("mcp:tools")))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_body_that_fails_mid_stream_is_400_and_never_reaches_the_service() {
    struct Broken(bool);
    impl http_body::Body for Broken {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            let first = std::mem::replace(&mut self.0, false);
            std::task::Poll::Ready(Some(if first {
                Ok(http_body::Frame::data(Bytes::from_static(b"{\"method\":")))
            } else {
                Err(std::io::Error::other("reset"))
            }))
        }
    }
    let app = app(guard());
    let req = Request::post("/mcp")
        .header(AUTHORIZATION, format!("Bearer {}", token_with("mcp:tools")))
        .body(Body::new(Broken(true)))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 400);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty(), "not the service's parse error");
}
