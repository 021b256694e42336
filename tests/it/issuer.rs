//! End-to-end tests of the built-in `Issuer`: real HTTP on 127.0.0.1 with a
//! raw HTTP/1.1 client over `TcpStream`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tower_jwt_auth::testing::{Issuer, IssuerFailure};
use tower_jwt_auth::{Algorithm, AuthError, BuildError, Claims, JsonClaims, Key, Verifier};

const SUPPORTED: [Algorithm; 10] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
];

const LIMIT: Duration = Duration::from_secs(10);

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` on a fresh connection (`Connection: close`), read to the end.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    timeout(LIMIT, stream.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("read timed out"))??;
    Ok(parse(&raw))
}

fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("non-UTF-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("bad header line");
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        answer.body = dechunk(&answer.body);
    } else if let Some(len) = answer.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), answer.body.len());
    }
    answer
}

fn dechunk(mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = input.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&input[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        input = &input[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
}

async fn fetch_jwks(issuer: &Issuer) -> Answer {
    get(issuer.addr(), "/jwks.json").await.unwrap()
}

fn verifier(issuer: &Issuer, jwks: &[u8]) -> Verifier {
    Verifier::builder()
        .jwks(jwks)
        .issuer(issuer.url())
        .audience("api")
        .build()
        .unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_algorithm_verifies_against_the_served_jwks() {
    for alg in SUPPORTED {
        let issuer = Issuer::start_with(alg).await.unwrap();
        let kid = issuer.signing_kid();
        let token = issuer.token("alice", "api");

        let header = header_of(&token);
        assert_eq!(
            header,
            json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid})
        );

        let answer = fetch_jwks(&issuer).await;
        assert_eq!(answer.status, 200, "{alg}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.text(), issuer.jwks_json());

        let claims: Claims = verifier(&issuer, &answer.body)
            .verify(&token)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.sub(), Some("alice"));
        assert_eq!(claims.iss(), Some(issuer.url().as_str()));
        assert_eq!(claims.aud(), ["api".to_owned()]);
        let (iat, exp) = (claims.iat().unwrap(), claims.exp().unwrap());
        assert_eq!(exp - iat, 3600);
        assert!(claims.jti().is_some_and(|j| !j.is_empty()));

        // The member is a well-formed public JWK on its own too.
        let set = answer.json();
        let member = &set["keys"][0];
        assert_eq!(member["use"], "sig");
        assert_eq!(member["alg"], alg.as_str());
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(member.get(private).is_none(), "{alg} publishes {private}");
        }
        let key = Key::from_jwk(&member.to_string()).unwrap();
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.kid(), Some(kid.as_str()));
        let claims: Claims = Verifier::builder()
            .key(key)
            .audience("api")
            .build()
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(claims.sub(), Some("alice"));
        issuer.shutdown();
    }
}

#[tokio::test]
async fn added_keys_of_every_algorithm_sign_verifiably() {
    let issuer = Issuer::start().await.unwrap();
    let mut tokens = Vec::new();
    for alg in SUPPORTED {
        let kid = issuer.add_key(alg).unwrap();
        let token = issuer
            .sign_with(
                &kid,
                &json!({"iss": issuer.url(), "aud": "api", "exp": 4102444800u64, "n": alg.as_str()}),
            )
            .unwrap();
        assert_eq!(header_of(&token)["kid"], kid.as_str());
        tokens.push((alg, token));
    }
    let answer = fetch_jwks(&issuer).await;
    assert_eq!(answer.json()["keys"].as_array().unwrap().len(), 11);
    let verifier = verifier(&issuer, &answer.body);
    for (alg, token) in tokens {
        let claims: Claims = verifier.verify(&token).unwrap();
        assert_eq!(claims.custom()["n"], alg.as_str());
    }
}

#[tokio::test]
async fn hmac_algorithms_are_refused() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let err = Issuer::start_with(alg).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
    let issuer = Issuer::start().await.unwrap();
    let before = issuer.jwks_json();
    assert!(matches!(
        issuer.add_key(Algorithm::HS256),
        Err(BuildError::InvalidConfig(_))
    ));
    let signing = issuer.signing_kid();
    assert!(matches!(
        issuer.rotate(Algorithm::HS512),
        Err(BuildError::InvalidConfig(_))
    ));
    assert_eq!(issuer.signing_kid(), signing);
    assert_eq!(issuer.jwks_json(), before);
}

#[tokio::test]
async fn rotation_publishes_the_new_key_and_signs_with_it() {
    let issuer = Issuer::start().await.unwrap();
    let old_kid = issuer.signing_kid();
    let old_token = issuer.token("alice", "api");

    let new_kid = issuer.rotate(Algorithm::ES256).unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(issuer.signing_kid(), new_kid);
    let new_token = issuer.token("bob", "api");
    assert_eq!(header_of(&new_token)["kid"], new_kid.as_str());
    assert_eq!(header_of(&new_token)["alg"], "ES256");

    let answer = fetch_jwks(&issuer).await;
    assert_eq!(kids(&answer.json()), [old_kid.clone(), new_kid.clone()]);
    let verifier = verifier(&issuer, &answer.body);
    let old: Claims = verifier.verify(&old_token).unwrap();
    let new: Claims = verifier.verify(&new_token).unwrap();
    assert_eq!((old.sub(), new.sub()), (Some("alice"), Some("bob")));

    // A verifier that only knows the old key set does not know the new kid.
    let stale = Verifier::builder()
        .jwks(format!(r#"{{"keys":[{}]}}"#, answer.json()["keys"][0]))
        .algorithms([Algorithm::RS256, Algorithm::ES256])
        .audience("api")
        .build()
        .unwrap();
    assert!(matches!(
        stale.verify::<JsonClaims>(&new_token),
        Err(AuthError::UnknownKid)
    ));

    // Keys added without rotation do not sign.
    let added = issuer.add_key(Algorithm::EdDSA).unwrap();
    assert_eq!(issuer.signing_kid(), new_kid);
    assert_ne!(header_of(&issuer.token("c", "api"))["kid"], added.as_str());
}

#[tokio::test]
async fn remove_key_unpublishes_and_stops_signing() {
    let issuer = Issuer::start().await.unwrap();
    let first = issuer.signing_kid();
    let second = issuer.add_key(Algorithm::ES384).unwrap();
    let third = issuer.add_key(Algorithm::RS256).unwrap();
    let first_token = issuer.token("alice", "api");

    // Removing a non-signing key keeps the signing key.
    assert!(issuer.remove_key(&second));
    assert_eq!(issuer.signing_kid(), first);
    assert!(issuer.sign_with(&second, &json!({})).is_none());
    assert_eq!(
        kids(&fetch_jwks(&issuer).await.json()),
        [first.clone(), third.clone()]
    );

    // Removing the signing key makes the newest remaining key sign.
    assert!(issuer.remove_key(&first));
    assert_eq!(issuer.signing_kid(), third);
    assert_eq!(
        header_of(&issuer.token("bob", "api"))["kid"],
        third.as_str()
    );
    let answer = fetch_jwks(&issuer).await;
    assert_eq!(kids(&answer.json()), [third.as_str()]);
    assert!(matches!(
        verifier(&issuer, &answer.body).verify::<JsonClaims>(&first_token),
        Err(AuthError::UnknownKid)
    ));

    // Unknown kids and the last key are not removed.
    assert!(!issuer.remove_key(&first));
    assert!(!issuer.remove_key("no-such-kid"));
    assert!(!issuer.remove_key(&third));
    assert_eq!(issuer.signing_kid(), third);
}

#[tokio::test]
async fn hidden_keys_sign_but_are_not_published() {
    let issuer = Issuer::start().await.unwrap();
    let visible = issuer.signing_kid();
    let hidden = issuer.add_key(Algorithm::RS256).unwrap();
    assert!(issuer.publish(&hidden, false));
    assert!(!issuer.publish("no-such-kid", false));

    let token = issuer
        .sign_with(
            &hidden,
            &json!({"iss": issuer.url(), "aud": "api", "exp": 4102444800u64}),
        )
        .unwrap();
    let answer = fetch_jwks(&issuer).await;
    assert_eq!(kids(&answer.json()), [visible.as_str()]);
    let verifier = verifier(&issuer, &answer.body);
    assert!(matches!(
        verifier.verify::<JsonClaims>(&token),
        Err(AuthError::UnknownKid)
    ));
    assert!(
        verifier
            .verify::<JsonClaims>(&issuer.token("a", "api"))
            .is_ok()
    );

    // Hiding every key serves an empty set; showing it again brings it back.
    assert!(issuer.publish(&visible, false));
    assert_eq!(fetch_jwks(&issuer).await.json(), json!({"keys": []}));
    assert!(issuer.publish(&hidden, true));
    let answer = fetch_jwks(&issuer).await;
    assert_eq!(kids(&answer.json()), [hidden]);
    assert!(
        crate::issuer::verifier(&issuer, &answer.body)
            .verify::<JsonClaims>(&token)
            .is_ok()
    );
}

#[tokio::test]
async fn minted_claims_are_signed_as_given() {
    let issuer = Issuer::start_with(Algorithm::ES256).await.unwrap();
    let claims =
        json!({"aud": ["api", "other"], "exp": 4102444800u64, "roles": ["admin"], "x": {"y": 1}});
    let token = issuer.mint(&claims);
    let payload = token.split('.').nth(1).unwrap();
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(decoded, claims);
    let verifier = Verifier::builder()
        .jwks(issuer.jwks_json())
        .audience("api")
        .build()
        .unwrap();
    let verified: Claims = verifier.verify(&token).unwrap();
    assert_eq!(verified.custom()["roles"], json!(["admin"]));

    // Claims that are not a JWT claims set are still signed; the verifier refuses them.
    for odd in [json!(42), json!("text"), json!(null), json!([1, 2])] {
        let token = issuer.mint(&odd);
        assert_eq!(token.split('.').count(), 3);
        assert!(verifier.verify::<JsonClaims>(&token).is_err());
    }
    // Tokens for another audience are refused.
    assert!(matches!(
        verifier.verify::<JsonClaims>(&issuer.token("a", "other-api")),
        Err(AuthError::InvalidAudience)
    ));
}

#[tokio::test]
async fn counters_count_requests() {
    let issuer = Issuer::start().await.unwrap();
    assert_eq!(
        (issuer.jwks_requests(), issuer.discovery_requests()),
        (0, 0)
    );
    for _ in 0..3 {
        fetch_jwks(&issuer).await;
    }
    get(issuer.addr(), "/.well-known/openid-configuration")
        .await
        .unwrap();
    get(issuer.addr(), "/.well-known/oauth-authorization-server")
        .await
        .unwrap();
    let other = get(issuer.addr(), "/nothing-here").await.unwrap();
    assert_eq!(other.status, 404);
    assert_eq!(
        (issuer.jwks_requests(), issuer.discovery_requests()),
        (3, 2)
    );

    // Failed answers count too, and clones share the counters.
    let clone = issuer.clone();
    clone.set_failure(IssuerFailure::Status(500));
    fetch_jwks(&issuer).await;
    assert_eq!(issuer.jwks_requests(), 4);
    assert_eq!(clone.jwks_requests(), 4);
}

#[tokio::test]
async fn status_failure_answers_that_status() {
    let issuer = Issuer::start().await.unwrap();
    for code in [400, 404, 429, 500, 503] {
        issuer.set_failure(IssuerFailure::Status(code));
        let jwks = fetch_jwks(&issuer).await;
        assert_eq!(jwks.status, code);
        assert!(jwks.body.len() < 100);
        let discovery = get(issuer.addr(), "/.well-known/openid-configuration")
            .await
            .unwrap();
        assert_eq!(discovery.status, code);
    }
    // Not a valid final status: 500.
    for code in [0, 99, 101, 1000, u16::MAX] {
        issuer.set_failure(IssuerFailure::Status(code));
        assert_eq!(fetch_jwks(&issuer).await.status, 500, "{code}");
    }
    issuer.set_failure(IssuerFailure::None);
    let answer = fetch_jwks(&issuer).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), issuer.jwks_json());
}

#[tokio::test]
async fn slow_failure_delays_a_normal_answer() {
    let issuer = Issuer::start().await.unwrap();
    let delay = Duration::from_millis(300);
    issuer.set_failure(IssuerFailure::Slow(delay));

    let started = Instant::now();
    let answer = fetch_jwks(&issuer).await;
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), issuer.jwks_json());

    let started = Instant::now();
    let discovery = get(issuer.addr(), "/.well-known/openid-configuration")
        .await
        .unwrap();
    assert!(started.elapsed() >= delay);
    assert_eq!(discovery.json()["issuer"], issuer.url().as_str());

    // A client that gives up sooner sees a timeout, not an answer.
    issuer.set_failure(IssuerFailure::Slow(Duration::from_secs(60)));
    assert!(
        timeout(Duration::from_millis(200), fetch_jwks(&issuer))
            .await
            .is_err()
    );
    // The answer shows the keys as they are when it is sent.
    issuer.set_failure(IssuerFailure::Slow(delay));
    let pending = tokio::spawn({
        let issuer = issuer.clone();
        async move { fetch_jwks(&issuer).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let kid = issuer.add_key(Algorithm::EdDSA).unwrap();
    let answer = pending.await.unwrap();
    assert!(kids(&answer.json()).contains(&kid));
}

#[tokio::test]
async fn invalid_json_failure_answers_truncated_json() {
    let issuer = Issuer::start().await.unwrap();
    issuer.set_failure(IssuerFailure::InvalidJson);
    let answer = fetch_jwks(&issuer).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.text(), r#"{"keys": ["#);
    assert!(serde_json::from_slice::<Value>(&answer.body).is_err());
    let discovery = get(issuer.addr(), "/.well-known/oauth-authorization-server")
        .await
        .unwrap();
    assert_eq!(discovery.status, 200);
    assert!(serde_json::from_slice::<Value>(&discovery.body).is_err());
}

#[tokio::test]
async fn huge_body_failure_answers_that_many_bytes() {
    let issuer = Issuer::start().await.unwrap();
    for len in [0, 5, 1_000_000, 3 * 1024 * 1024] {
        issuer.set_failure(IssuerFailure::HugeBody(len));
        let answer = fetch_jwks(&issuer).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body.len(), len);
        assert!(br#"{"keys":["#.starts_with(&answer.body[..len.min(9)]));
        assert!(serde_json::from_slice::<Value>(&answer.body).is_err());
    }
    issuer.set_failure(IssuerFailure::HugeBody(100_000));
    let discovery = get(issuer.addr(), "/.well-known/openid-configuration")
        .await
        .unwrap();
    assert_eq!(discovery.body.len(), 100_000);
    assert!(discovery.body.starts_with(br#"{"issuer":"#));
}

#[tokio::test]
async fn cache_control_is_sent_on_key_set_answers() {
    let issuer = Issuer::start().await.unwrap();
    assert_eq!(fetch_jwks(&issuer).await.header("cache-control"), None);
    issuer.set_cache_control(Some("public, max-age=60"));
    assert_eq!(
        fetch_jwks(&issuer).await.header("cache-control"),
        Some("public, max-age=60")
    );
    let discovery = get(issuer.addr(), "/.well-known/openid-configuration")
        .await
        .unwrap();
    assert_eq!(discovery.header("cache-control"), None);
    // A value that cannot be a header is not sent, and does not break the answer.
    issuer.set_cache_control(Some("max-age=60\r\nX-Evil: 1"));
    let answer = fetch_jwks(&issuer).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), None);
    assert_eq!(answer.header("x-evil"), None);
    issuer.set_cache_control(None);
    assert_eq!(fetch_jwks(&issuer).await.header("cache-control"), None);
}

#[tokio::test]
async fn discovery_documents_name_the_issuer_and_its_key_set() {
    let issuer = Issuer::start().await.unwrap();
    issuer.rotate(Algorithm::ES256).unwrap();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let answer = get(issuer.addr(), path).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let doc = answer.json();
        assert_eq!(doc["issuer"], issuer.url().as_str());
        assert_eq!(doc["jwks_uri"], issuer.jwks_url().as_str());
        assert_eq!(doc["token_endpoint"], format!("{}/token", issuer.url()));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256", "ES256"])
        );
        assert!(doc["response_types_supported"].is_array());
        assert!(doc["subject_types_supported"].is_array());
    }
    assert_eq!(issuer.url(), format!("http://{}", issuer.addr()));
    assert!(!issuer.url().ends_with('/'));

    // The jwks_uri it names serves the key set.
    let doc = get(issuer.addr(), "/.well-known/openid-configuration")
        .await
        .unwrap()
        .json();
    let path = doc["jwks_uri"]
        .as_str()
        .unwrap()
        .strip_prefix(&issuer.url())
        .unwrap()
        .to_owned();
    assert_eq!(
        get(issuer.addr(), &path).await.unwrap().text(),
        issuer.jwks_json()
    );

    issuer.set_discovery_issuer(Some("https://evil.example"));
    let doc = get(issuer.addr(), "/.well-known/openid-configuration")
        .await
        .unwrap()
        .json();
    assert_eq!(doc["issuer"], "https://evil.example");
    assert_eq!(doc["jwks_uri"], issuer.jwks_url().as_str());
    // Tokens keep the real issuer.
    let claims: Claims = verifier(&issuer, issuer.jwks_json().as_bytes())
        .verify(&issuer.token("a", "api"))
        .unwrap();
    assert_eq!(claims.iss(), Some(issuer.url().as_str()));

    issuer.set_discovery_issuer(None);
    let doc = get(issuer.addr(), "/.well-known/oauth-authorization-server")
        .await
        .unwrap()
        .json();
    assert_eq!(doc["issuer"], issuer.url().as_str());
}

#[tokio::test]
async fn after_shutdown_connections_are_refused() {
    let issuer = Issuer::start().await.unwrap();
    let addr = issuer.addr();
    assert_eq!(fetch_jwks(&issuer).await.status, 200);
    issuer.clone().shutdown();
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(get(addr, "/jwks.json").await.is_err());
    issuer.shutdown(); // again: nothing happens
    // Local methods keep working.
    assert_eq!(
        header_of(&issuer.token("a", "api"))["kid"],
        issuer.signing_kid().as_str()
    );
    assert!(issuer.jwks_json().contains("keys"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_at_once_on_a_multi_thread_runtime() {
    for _ in 0..5 {
        let issuer = Issuer::start_with(Algorithm::EdDSA).await.unwrap();
        assert_eq!(fetch_jwks(&issuer).await.status, 200);
        issuer.shutdown();
        let err = TcpStream::connect(issuer.addr()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let issuer = Issuer::start().await.unwrap();
    let mut stream = TcpStream::connect(issuer.addr()).await.unwrap();
    stream
        .write_all(b"GET /jwks.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read one full answer; the connection stays open (keep-alive).
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let expected = issuer.jwks_json();
    while !raw.ends_with(expected.as_bytes()) {
        let n = timeout(LIMIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(n, 0, "closed too early");
        raw.extend_from_slice(&buf[..n]);
    }
    assert_eq!(parse(&raw).status, 200);

    issuer.shutdown();
    let n = timeout(LIMIT, stream.read(&mut buf))
        .await
        .expect("the idle connection stays open after shutdown")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let issuer = Issuer::start().await.unwrap();
    let addr = issuer.addr();
    let clone = issuer.clone();
    drop(issuer);
    assert_eq!(get(addr, "/jwks.json").await.unwrap().status, 200);
    drop(clone);
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn each_issuer_has_its_own_port_and_keys() {
    let a = Issuer::start().await.unwrap();
    let b = Issuer::start().await.unwrap();
    assert_ne!(a.addr(), b.addr());
    assert_ne!(a.signing_kid(), b.signing_kid());
    let token = a.token("alice", "api");
    let jwks_b = fetch_jwks(&b).await;
    assert!(matches!(
        Verifier::builder()
            .jwks(&jwks_b.body)
            .audience("api")
            .build()
            .unwrap()
            .verify::<JsonClaims>(&token),
        Err(AuthError::UnknownKid)
    ));
    assert!(format!("{a:?}").contains(&a.url()));
}
