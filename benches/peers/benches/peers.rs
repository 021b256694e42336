//! tower-jwt-auth against other JWT middlewares for tower, and against the
//! floors under all of them (bare `jsonwebtoken::decode`, raw aws-lc-rs).
//!
//! Every variant does the same work: one request with `Authorization:
//! Bearer <token>` through a tower `oneshot` over a no-op service (or, for
//! the floors, one call), checking the signature, `iss`, `aud` and `exp`.
//! Keys come from a JWKS served on 127.0.0.1 by tower-jwt-auth's own
//! `Issuer`; every variant is called once (warm) before it is measured.
//!
//! Figures are ratios to bare `jsonwebtoken::decode` (pre-built
//! `DecodingKey`) measured in the same process: batches of the variant and
//! of bare decode alternate (A/B, B/A, ...), and the median of the per-round
//! ratios is reported. The machine is noisy; absolute times are not.
//!
//! Run: `cargo bench --manifest-path benches/peers/Cargo.toml`
//! (`BENCH_QUICK=1` runs each variant a few times, for a smoke test;
//! `PEERS_CRITERION=1` adds criterion's absolute timings;
//! `PEERS_ROUNDS` / `PEERS_BATCH_MS` change the interleaving.)

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use jsonwebtoken::{DecodingKey, Validation};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};
use tower_jwt_auth::{Algorithm, JsonClaims, JwtAuthLayer, Key, Verifier};
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::jwks::JwksCache;
use tower_jwt_auth::testing::Issuer;

const AUDIENCE: &str = "api";
const HMAC_SECRET: &str = "bench-secret-0123456789abcdef!!!";
const HMAC_ISSUER: &str = "https://issuer.test";

// ---------------------------------------------------------------- driving

/// How a request future is driven. The layer (and most peers) finish on the
/// first poll once keys are warm; if any variant of a table does not, every
/// variant of that table is driven with `block_on` instead, so the figures
/// stay comparable.
#[derive(Clone, Copy)]
enum Drive<'a> {
    PollOnce,
    BlockOn(&'a Runtime),
}

impl Drive<'_> {
    fn name(self) -> &'static str {
        match self {
            Drive::PollOnce => "one poll with a no-op waker",
            Drive::BlockOn(_) => "tokio `Runtime::block_on` (multi-thread runtime, 1 worker)",
        }
    }
}

/// One request through `svc` with `bearer`; the status, or `None` when the
/// first poll was not ready (only with `Drive::PollOnce`).
fn request<S, B>(svc: &S, bearer: &HeaderValue, drive: Drive<'_>) -> Option<StatusCode>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
{
    let req = Request::builder()
        .uri("/")
        .header(AUTHORIZATION, black_box(bearer).clone())
        .body(())
        .expect("request");
    let fut = svc.clone().oneshot(req);
    let res = match drive {
        Drive::PollOnce => {
            let fut = pin!(fut);
            match fut.poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(res) => res,
                Poll::Pending => return None,
            }
        }
        Drive::BlockOn(rt) => rt.block_on(fut),
    };
    match res {
        Ok(res) => Some(black_box(res).status()),
        Err(never) => match never {},
    }
}

/// A boxed "do one verification" closure that panics if it is refused.
type Op<'a> = Box<dyn Fn() + 'a>;

fn svc_op<'a, S, B>(svc: S, bearer: &'a HeaderValue, drive: Drive<'a>) -> Op<'a>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone + 'a,
{
    Box::new(move || {
        let status = request(&svc, bearer, drive).expect("ready on the first poll");
        assert_eq!(status, StatusCode::OK, "refused");
    })
}

/// True when a request through `svc` completes on the first poll.
fn polls_once<S, B>(svc: &S, bearer: &HeaderValue) -> bool
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
{
    match request(svc, bearer, Drive::PollOnce) {
        Some(status) => {
            assert_eq!(status, StatusCode::OK, "refused on warm-up");
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------- no-op services

fn ok_string(_req: Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>> {
    std::future::ready(Ok(Response::new(String::new())))
}

/// jwt-authorizer needs `S::Response: From<AuthError>`, which it implements
/// for axum 0.7's `Response` only.
fn ok_axum07(
    _req: Request<()>,
) -> std::future::Ready<Result<axum07::response::Response, Infallible>> {
    std::future::ready(Ok(Response::new(axum07::body::Body::empty())))
}

// ---------------------------------------------------------------- measuring

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list")
}

fn time(n: u64, f: &dyn Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Median over interleaved rounds of time(`f`) / time(`base`), `n` calls per
/// batch; and the median µs per call of `f`.
fn ratio(rounds: u64, n: u64, base: &dyn Fn(), f: &dyn Fn()) -> (f64, f64) {
    let mut ratios = Vec::new();
    let mut us = Vec::new();
    for round in 0..rounds {
        let (tb, tf) = if round % 2 == 0 {
            let tb = time(n, base);
            (tb, time(n, f))
        } else {
            let tf = time(n, f);
            (time(n, base), tf)
        };
        ratios.push(tf / tb);
        us.push(tf / n as f64 * 1e6);
    }
    (median(&mut ratios), median(&mut us))
}

struct Row {
    name: String,
    kind: &'static str,
    ratio: Option<f64>,
    us: Option<f64>,
    note: String,
}

struct Table {
    title: String,
    drive: &'static str,
    bare_us: f64,
    rows: Vec<Row>,
}

/// Measures every op of `ops` against `bare`, interleaved.
fn measure(title: String, drive: &'static str, bare: &dyn Fn(), ops: Vec<Variant<'_>>) -> Table {
    let rounds = if quick() { 1 } else { knob("PEERS_ROUNDS", 15) };
    let batch = Duration::from_millis(knob("PEERS_BATCH_MS", 40));
    // Size a batch so that bare decode takes about `batch`.
    let per = {
        let probe = if quick() { 3 } else { 200 };
        time(probe, bare) / probe as f64
    };
    let n = if quick() {
        2
    } else {
        ((batch.as_secs_f64() / per) as u64).max(20)
    };
    let (_, bare_us) = ratio(rounds, n, bare, bare);
    let rows = ops
        .into_iter()
        .map(|v| match v.op {
            Some(op) => {
                op(); // warm
                let (r, us) = ratio(rounds, n, bare, &op);
                eprintln!("  {title} / {}: {r:.3}", v.name);
                Row {
                    name: v.name,
                    kind: v.kind,
                    ratio: Some(r),
                    us: Some(us),
                    note: v.note,
                }
            }
            None => Row {
                name: v.name,
                kind: v.kind,
                ratio: None,
                us: None,
                note: v.note,
            },
        })
        .collect();
    Table {
        title,
        drive,
        bare_us,
        rows,
    }
}

struct Variant<'a> {
    name: String,
    kind: &'static str,
    op: Option<Op<'a>>,
    note: String,
}

fn variant<'a>(name: &str, kind: &'static str, op: Op<'a>, note: &str) -> Variant<'a> {
    Variant {
        name: name.into(),
        kind,
        op: Some(op),
        note: note.into(),
    }
}

fn missing<'a>(name: &str, why: &str) -> Variant<'a> {
    Variant {
        name: name.into(),
        kind: "peer",
        op: None,
        note: why.into(),
    }
}

fn print_table(t: &Table) {
    println!("### {}\n", t.title);
    println!(
        "Bare `jsonwebtoken::decode`: {:.2} µs/op (median; absolute times are noisy). \
         Requests driven by {}.\n",
        t.bare_us, t.drive
    );
    println!("| variant | kind | ratio to bare decode | µs/op | notes |");
    println!("|---|---|---:|---:|---|");
    println!(
        "| bare `jsonwebtoken::decode` | baseline | 1.000 | {:.2} | pre-built `DecodingKey`, `Validation` with iss, aud, exp |",
        t.bare_us
    );
    for r in &t.rows {
        let (ratio, us) = match (r.ratio, r.us) {
            (Some(r), Some(us)) => (format!("{r:.3}"), format!("{us:.2}")),
            _ => ("—".into(), "—".into()),
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            r.name, r.kind, ratio, us, r.note
        );
    }
    println!();
}

// ---------------------------------------------------------------- keys and tokens

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The first key of a JWKS document.
fn first_jwk(jwks: &str) -> serde_json::Value {
    let set: serde_json::Value = serde_json::from_str(jwks).expect("jwks json");
    set["keys"][0].clone()
}

fn b64(field: &serde_json::Value) -> Vec<u8> {
    B64.decode(field.as_str().expect("string member"))
        .expect("base64url")
}

/// DER of a length.
fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der_uint(out: &mut Vec<u8>, v: &[u8]) {
    let v: &[u8] = {
        let start = v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1);
        &v[start..]
    };
    let pad = v[0] & 0x80 != 0;
    out.push(0x02);
    der_len(out, v.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
}

/// The public key bytes aws-lc-rs verifies with, from a JWK: a PKCS#1
/// `RSAPublicKey` for RSA, the uncompressed point for EC, the 32 bytes for
/// Ed25519.
fn aws_lc_public_key(jwk: &serde_json::Value) -> Vec<u8> {
    match jwk["kty"].as_str() {
        Some("RSA") => {
            let mut body = Vec::new();
            der_uint(&mut body, &b64(&jwk["n"]));
            der_uint(&mut body, &b64(&jwk["e"]));
            let mut der = vec![0x30];
            der_len(&mut der, body.len());
            der.extend(body);
            der
        }
        Some("EC") => {
            let mut point = vec![0x04];
            point.extend(b64(&jwk["x"]));
            point.extend(b64(&jwk["y"]));
            point
        }
        Some("OKP") => b64(&jwk["x"]),
        other => panic!("no aws-lc key for kty {other:?}"),
    }
}

fn aws_lc_alg(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        other => panic!("no aws-lc verification algorithm for {other}"),
    }
}

fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        other => panic!("no jsonwebtoken algorithm for {other}"),
    }
}

fn jwt_alg9(alg: Algorithm) -> jwt9::Algorithm {
    match alg {
        Algorithm::RS256 => jwt9::Algorithm::RS256,
        Algorithm::PS256 => jwt9::Algorithm::PS256,
        Algorithm::ES256 => jwt9::Algorithm::ES256,
        Algorithm::EdDSA => jwt9::Algorithm::EdDSA,
        Algorithm::HS256 => jwt9::Algorithm::HS256,
        other => panic!("no jsonwebtoken 9 algorithm for {other}"),
    }
}

/// `signing input` and decoded signature of a compact JWS.
fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let dot = token.rfind('.').expect("compact JWS");
    (
        token[..dot].as_bytes().to_vec(),
        B64.decode(&token[dot + 1..]).expect("signature"),
    )
}

/// `Validation` checking what every variant checks: the algorithm, `iss`,
/// `aud`, and a required, unexpired `exp` with a 30 s leeway.
fn validation(alg: Algorithm, iss: &str) -> Validation {
    let mut v = Validation::new(jwt_alg(alg));
    v.set_issuer(&[iss]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.leeway = 30;
    v
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("header")
}

// ---------------------------------------------------------------- the peers

/// jwt-authorizer 0.15: keys from the JWKS URL, fetched on first use (the
/// warm-up call), iss/aud/exp checked, leeway 30 s as ours.
fn jwt_authorizer_jwks(
    rt: &Runtime,
    jwks_url: &str,
    iss: &str,
    alg: Algorithm,
) -> Result<jwt_authorizer::layer::AuthorizationLayer<serde_json::Value>, String> {
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, Validation};
    let validation = Validation::new()
        .iss(&[iss])
        .aud(&[AUDIENCE])
        .leeway(30)
        .algs(vec![jwt_alg9(alg)]);
    let auth = rt
        .block_on(
            JwtAuthorizer::<serde_json::Value>::from_jwks_url(jwks_url)
                .validation(validation)
                .build(),
        )
        .map_err(|e| format!("jwt-authorizer build: {e}"))?;
    Ok(auth.into_layer())
}

fn jwt_authorizer_secret(
    rt: &Runtime,
) -> Result<jwt_authorizer::layer::AuthorizationLayer<serde_json::Value>, String> {
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, Validation};
    let validation = Validation::new()
        .iss(&[HMAC_ISSUER])
        .aud(&[AUDIENCE])
        .leeway(30);
    let auth = rt
        .block_on(
            JwtAuthorizer::<serde_json::Value>::from_secret(HMAC_SECRET)
                .validation(validation)
                .build(),
        )
        .map_err(|e| format!("jwt-authorizer build: {e}"))?;
    Ok(auth.into_layer())
}

type Oauth2Layer = tower_oauth2_resource_server::layer::OAuth2ResourceServerLayer<
    String,
    tower_oauth2_resource_server::claims::DefaultClaims,
>;

/// tower-oauth2-resource-server 0.12: one tenant, JWKS URL given (no OIDC
/// discovery), iss/aud/exp checked (`nbf` off: the issuer's tokens carry
/// none, and its spec would then require one), the algorithm allowed.
/// Its JWKS is loaded by a background task: the caller waits until a
/// request passes.
fn tower_oauth2(
    rt: &Runtime,
    jwks_url: &str,
    iss: &str,
    alg: Algorithm,
) -> Result<Oauth2Layer, String> {
    use tower_oauth2_resource_server::server::OAuth2ResourceServer;
    use tower_oauth2_resource_server::tenant::TenantConfiguration;
    use tower_oauth2_resource_server::validation::ClaimsValidationSpec;
    let spec = ClaimsValidationSpec::new()
        .iss(iss)
        .exp(true)
        .nbf(false)
        .aud(&vec![AUDIENCE.to_owned()]);
    let server = rt.block_on(async {
        let tenant = TenantConfiguration::builder(iss)
            .jwks_url(jwks_url)
            .audiences(&[AUDIENCE])
            .claims_validation(spec)
            .allowed_algorithms(&[jwt_alg(alg)])
            .build()
            .await
            .map_err(|e| format!("tenant: {e}"))?;
        OAuth2ResourceServer::<tower_oauth2_resource_server::claims::DefaultClaims>::builder()
            .add_tenant(tenant)
            .build()
            .await
            .map_err(|e| format!("server: {e}"))
    })?;
    Ok(server.into_layer())
}

fn tower_oauth2_static_hmac() -> Result<Oauth2Layer, String> {
    use tower_oauth2_resource_server::server::OAuth2ResourceServer;
    use tower_oauth2_resource_server::tenant::TenantConfiguration;
    use tower_oauth2_resource_server::validation::ClaimsValidationSpec;
    let jwks = serde_json::json!({"keys": [{
        "kty": "oct", "kid": "hs", "alg": "HS256",
        "k": B64.encode(HMAC_SECRET),
    }]})
    .to_string();
    let spec = ClaimsValidationSpec::new()
        .iss(HMAC_ISSUER)
        .exp(true)
        .nbf(false)
        .aud(&vec![AUDIENCE.to_owned()]);
    let tenant = TenantConfiguration::static_builder(jwks)
        .audiences(&[AUDIENCE])
        .claims_validation(spec)
        .allowed_algorithms(&[jsonwebtoken::Algorithm::HS256])
        .build()
        .map_err(|e| format!("tenant: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let server = rt
        .block_on(
            OAuth2ResourceServer::<tower_oauth2_resource_server::claims::DefaultClaims>::builder()
                .add_tenant(tenant)
                .build(),
        )
        .map_err(|e| format!("server: {e}"))?;
    Ok(server.into_layer())
}

/// oauth-resource-server 0.4 (feature `tower`): `OAuthValidator` from an
/// `OAuthConfig` naming the issuer, the JWKS URL (loopback http is allowed)
/// and the audience; no required scope (`allow_unscoped_tokens`, as the
/// other variants check none); keys loaded with `refresh_now` before use.
fn oauth_rs(
    rt: &Runtime,
    jwks_url: &str,
    iss: &str,
    alg: Algorithm,
) -> Result<oauth_resource_server::http_layer::HttpAuthLayer, String> {
    use oauth_resource_server::http_layer::HttpAuthLayer;
    use oauth_resource_server::{KeyNaming, OAuthConfig, OAuthValidator};
    let config = OAuthConfig {
        enabled: true,
        issuer: iss.to_owned(),
        jwks_uri: Some(jwks_url.to_owned()),
        audience: AUDIENCE.to_owned(),
        resource: "http://127.0.0.1/api".to_owned(),
        allow_unscoped_tokens: true,
        algorithms: vec![alg.to_string()],
        leeway_secs: 30,
        ..OAuthConfig::default()
    };
    let resolved = config
        .resolve(KeyNaming::Dotted("oauth"))
        .map_err(|e| format!("config: {e:?}"))?
        .ok_or("config: resolve gave None")?;
    let validator =
        Arc::new(OAuthValidator::new(&resolved).map_err(|e| format!("validator: {e}"))?);
    rt.block_on(validator.refresh_now())
        .map_err(|e| format!("refresh: {e}"))?;
    HttpAuthLayer::builder()
        .oauth(validator)
        .build()
        .map_err(|e| format!("layer: {e:?}"))
}

// ---------------------------------------------------------------- per algorithm

fn ours_static(jwks: &str, iss: &str) -> Verifier {
    Verifier::builder()
        .jwks(jwks)
        .issuer(iss)
        .audience(AUDIENCE)
        .build()
        .expect("verifier")
}

type Handler = fn(Request<()>) -> std::future::Ready<Result<Response<String>, Infallible>>;
type Handler07 =
    fn(Request<()>) -> std::future::Ready<Result<axum07::response::Response, Infallible>>;

fn noop() -> tower::util::ServiceFn<Handler> {
    tower::service_fn(ok_string as Handler)
}

fn noop07() -> tower::util::ServiceFn<Handler07> {
    tower::service_fn(ok_axum07 as Handler07)
}

/// Picks the driver for a table: one poll if every service finishes on it.
fn pick_drive<'a>(rt: &'a Runtime, all_poll_once: bool) -> Drive<'a> {
    if all_poll_once {
        Drive::PollOnce
    } else {
        Drive::BlockOn(rt)
    }
}

fn asymmetric(rt: &Runtime, alg: Algorithm) -> Table {
    let issuer = rt.block_on(async { Issuer::start_with(alg).await.expect("issuer") });
    let iss = issuer.url();
    let jwks_url = issuer.jwks_url();
    let jwks = issuer.jwks_json();
    let token = issuer.token("bench", AUDIENCE);
    let bearer_v = bearer(&token);
    let bearer = &bearer_v;
    let jwk = first_jwk(&jwks);

    // Floors.
    let (message, sig) = split(&token);
    let pk_bytes = aws_lc_public_key(&jwk);
    let parsed = ParsedPublicKey::new(aws_lc_alg(alg), &pk_bytes).expect("aws-lc key");
    let unparsed = UnparsedPublicKey::new(aws_lc_alg(alg), pk_bytes.clone());
    let decoding_key = DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).expect("jwk"))
        .expect("decoding key");
    let val = validation(alg, &iss);
    let bare = || {
        let data =
            jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding_key, &val)
                .expect("bare decode accepts the token");
        black_box(data);
    };
    bare();

    // Ours.
    let layer_static = JwtAuthLayer::new(ours_static(&jwks, &iss)).layer(noop());
    let cache = rt.block_on(async {
        let cache = JwksCache::builder(&jwks_url)
            .algorithms([alg])
            .build()
            .expect("jwks cache");
        cache.prefetch().await.expect("prefetch");
        cache
    });
    let remote = Verifier::builder()
        .jwks_cache(cache)
        .issuer(&iss)
        .audience(AUDIENCE)
        .build()
        .expect("verifier");
    let layer_jwks = JwtAuthLayer::new(remote).layer(noop());
    let layer_hit = JwtAuthLayer::new(ours_static(&jwks, &iss))
        .cache(TokenCache::new())
        .layer(noop());
    let verifier = ours_static(&jwks, &iss);

    // Peers (warm: one call each, driven to completion).
    let jwt_authorizer = jwt_authorizer_jwks(rt, &jwks_url, &iss, alg).map(|l| l.layer(noop07()));
    let oauth2 = tower_oauth2(rt, &jwks_url, &iss, alg).map(|l| l.layer(noop()));
    let oauth_rs = oauth_rs(rt, &jwks_url, &iss, alg).map(|l| l.layer(noop()));

    // Warm-up through block_on (fetches lazily loaded keys), then probe
    // whether each finishes on the first poll.
    let warm = |ok: Option<StatusCode>, name: &str| {
        assert_eq!(
            ok,
            Some(StatusCode::OK),
            "{name} refused the token on warm-up"
        );
    };
    let br = Drive::BlockOn(rt);
    warm(request(&layer_static, bearer, br), "layer");
    warm(request(&layer_jwks, bearer, br), "layer+jwks");
    warm(request(&layer_hit, bearer, br), "layer+cache");
    let mut notes = Vec::new();
    let jwt_authorizer = jwt_authorizer.and_then(|s| match request(&s, bearer, br) {
        Some(StatusCode::OK) => Ok(s),
        other => Err(format!("refused the token: {other:?}")),
    });
    let oauth2 = oauth2.and_then(|s| {
        // Background JWKS load: wait up to 5 s for the keys.
        let start = Instant::now();
        loop {
            match request(&s, bearer, br) {
                Some(StatusCode::OK) => return Ok(s),
                other if start.elapsed() > Duration::from_secs(5) => {
                    return Err(format!("refused the token after 5 s: {other:?}"));
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let oauth_rs = oauth_rs.and_then(|s| match request(&s, bearer, br) {
        Some(StatusCode::OK) => Ok(s),
        other => Err(format!("refused the token: {other:?}")),
    });
    let mut all = polls_once(&layer_static, bearer)
        && polls_once(&layer_jwks, bearer)
        && polls_once(&layer_hit, bearer);
    for (name, once) in [
        (
            "jwt-authorizer",
            jwt_authorizer.as_ref().map(|s| polls_once(s, bearer)),
        ),
        (
            "tower-oauth2-resource-server",
            oauth2.as_ref().map(|s| polls_once(s, bearer)),
        ),
        (
            "oauth-resource-server",
            oauth_rs.as_ref().map(|s| polls_once(s, bearer)),
        ),
    ] {
        if let Ok(false) = once {
            notes.push(format!("{name} did not finish on the first poll"));
            all = false;
        }
    }
    for n in &notes {
        eprintln!("  {alg}: {n}");
    }
    let drive = pick_drive(rt, all);

    let mut ops = vec![
        variant(
            "aws-lc-rs `ParsedPublicKey::verify_sig`",
            "floor",
            Box::new(|| {
                parsed
                    .verify_sig(black_box(&message), black_box(&sig))
                    .expect("aws-lc verify")
            }),
            "signature only, key parsed once, signature pre-decoded",
        ),
        variant(
            "aws-lc-rs `UnparsedPublicKey::verify`",
            "floor",
            Box::new(|| {
                unparsed
                    .verify(black_box(&message), black_box(&sig))
                    .expect("aws-lc verify")
            }),
            "signature only, key parsed on every call",
        ),
        variant(
            "tower-jwt-auth `Verifier::verify`",
            "ours",
            Box::new(|| {
                black_box(
                    verifier
                        .verify::<JsonClaims>(black_box(&token))
                        .expect("verify"),
                );
            }),
            "no layer, static keys",
        ),
        variant(
            "tower-jwt-auth layer, static keys",
            "ours",
            svc_op(layer_static.clone(), bearer, drive),
            "`Verifier::builder().jwks(..)`",
        ),
        variant(
            "tower-jwt-auth layer, warm `JwksCache`",
            "ours",
            svc_op(layer_jwks.clone(), bearer, drive),
            "keys from the JWKS URL",
        ),
        variant(
            "tower-jwt-auth layer, verified-token cache hit",
            "ours",
            svc_op(layer_hit.clone(), bearer, drive),
            "`TokenCache`, same token again",
        ),
    ];
    ops.push(match &jwt_authorizer {
        Ok(s) => variant(
            "jwt-authorizer 0.15",
            "peer",
            svc_op(s.clone(), bearer, drive),
            "`from_jwks_url`, jsonwebtoken 9 (ring) underneath",
        ),
        Err(e) => missing("jwt-authorizer 0.15", e),
    });
    ops.push(match &oauth2 {
        Ok(s) => variant(
            "tower-oauth2-resource-server 0.12",
            "peer",
            svc_op(s.clone(), bearer, drive),
            "`TenantConfiguration::builder(..).jwks_url(..)`, jsonwebtoken 11 (aws-lc)",
        ),
        Err(e) => missing("tower-oauth2-resource-server 0.12", e),
    });
    ops.push(match &oauth_rs {
        Ok(s) => variant(
            "oauth-resource-server 0.4",
            "peer",
            svc_op(s.clone(), bearer, drive),
            "`OAuthValidator` + `HttpAuthLayer`, jsonwebtoken 9 (ring) underneath",
        ),
        Err(e) => missing("oauth-resource-server 0.4", e),
    });
    let title = format!("{alg} (keys from a JWKS on 127.0.0.1)");
    let table = measure(title, drive.name(), &bare, ops);
    issuer.shutdown();
    table
}

fn hs256(rt: &Runtime) -> Table {
    let claims = serde_json::json!({
        "iss": HMAC_ISSUER, "sub": "bench", "aud": AUDIENCE,
        "iat": now(), "exp": now() + 3600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("hs".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(HMAC_SECRET.as_bytes()),
    )
    .expect("encode");
    let bearer_v = bearer(&token);
    let bearer = &bearer_v;
    let (message, sig) = split(&token);
    let hkey = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, HMAC_SECRET.as_bytes());
    let decoding_key = DecodingKey::from_secret(HMAC_SECRET.as_bytes());
    let val = validation(Algorithm::HS256, HMAC_ISSUER);
    let bare = || {
        let data =
            jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding_key, &val)
                .expect("bare decode accepts the token");
        black_box(data);
    };
    bare();
    let verifier = || {
        Verifier::builder()
            .key(
                Key::hmac(Algorithm::HS256, HMAC_SECRET)
                    .expect("key")
                    .with_kid("hs"),
            )
            .issuer(HMAC_ISSUER)
            .audience(AUDIENCE)
            .build()
            .expect("verifier")
    };
    let layer_static = JwtAuthLayer::new(verifier()).layer(noop());
    let layer_hit = JwtAuthLayer::new(verifier())
        .cache(TokenCache::new())
        .layer(noop());
    let bare_verifier = verifier();
    let jwt_authorizer = jwt_authorizer_secret(rt).map(|l| l.layer(noop07()));
    let oauth2 = tower_oauth2_static_hmac().map(|l| l.layer(noop()));
    let br = Drive::BlockOn(rt);
    let check = |s: Option<StatusCode>| match s {
        Some(StatusCode::OK) => Ok(()),
        other => Err(format!("refused the token: {other:?}")),
    };
    let jwt_authorizer = jwt_authorizer.and_then(|s| check(request(&s, bearer, br)).map(|()| s));
    let oauth2 = oauth2.and_then(|s| check(request(&s, bearer, br)).map(|()| s));
    assert_eq!(request(&layer_static, bearer, br), Some(StatusCode::OK));
    assert_eq!(request(&layer_hit, bearer, br), Some(StatusCode::OK));
    let mut all = polls_once(&layer_static, bearer) && polls_once(&layer_hit, bearer);
    if let Ok(s) = &jwt_authorizer {
        all &= polls_once(s, bearer);
    }
    if let Ok(s) = &oauth2 {
        all &= polls_once(s, bearer);
    }
    let drive = pick_drive(rt, all);
    let mut ops = vec![
        variant(
            "aws-lc-rs `hmac::verify`",
            "floor",
            Box::new(|| {
                aws_lc_rs::hmac::verify(&hkey, black_box(&message), black_box(&sig)).expect("hmac")
            }),
            "MAC only, signature pre-decoded",
        ),
        variant(
            "tower-jwt-auth `Verifier::verify`",
            "ours",
            Box::new(|| {
                black_box(
                    bare_verifier
                        .verify::<JsonClaims>(black_box(&token))
                        .expect("verify"),
                );
            }),
            "no layer",
        ),
        variant(
            "tower-jwt-auth layer, static key",
            "ours",
            svc_op(layer_static.clone(), bearer, drive),
            "`Key::hmac`",
        ),
        variant(
            "tower-jwt-auth layer, verified-token cache hit",
            "ours",
            svc_op(layer_hit.clone(), bearer, drive),
            "`TokenCache`",
        ),
    ];
    ops.push(match &jwt_authorizer {
        Ok(s) => variant(
            "jwt-authorizer 0.15",
            "peer",
            svc_op(s.clone(), bearer, drive),
            "`from_secret`, jsonwebtoken 9 (ring)",
        ),
        Err(e) => missing("jwt-authorizer 0.15", e),
    });
    ops.push(match &oauth2 {
        Ok(s) => variant(
            "tower-oauth2-resource-server 0.12",
            "peer",
            svc_op(s.clone(), bearer, drive),
            "static JWKS with an `oct` key, `allowed_algorithms([HS256])`",
        ),
        Err(e) => missing("tower-oauth2-resource-server 0.12", e),
    });
    ops.push(missing(
        "oauth-resource-server 0.4",
        "not applicable: it refuses HS256/HS384/HS512 at configuration time by design \
         (a resource server never verifies with a shared secret)",
    ));
    measure(
        "HS256 (shared secret, static)".into(),
        drive.name(),
        &bare,
        ops,
    )
}

// ---------------------------------------------------------------- mixed workload

/// 1,000 distinct RS256 tokens, each used 50 times (round-robin): req/s of
/// each variant, and its time ratio to bare decode over the same work,
/// interleaved. Our cached layer starts cold each round.
fn mixed(rt: &Runtime) {
    let issuer = rt.block_on(async { Issuer::start_with(Algorithm::RS256).await.expect("issuer") });
    let iss = issuer.url();
    let jwks_url = issuer.jwks_url();
    let jwks = issuer.jwks_json();
    let (distinct, uses) = if quick() { (10, 2) } else { (1000, 50) };
    let tokens: Vec<String> = (0..distinct)
        .map(|i| issuer.token(&format!("user-{i}"), AUDIENCE))
        .collect();
    let bearers: Vec<HeaderValue> = tokens.iter().map(|t| bearer(t)).collect();
    let jwk = first_jwk(&jwks);
    let decoding_key =
        DecodingKey::from_jwk(&serde_json::from_value(jwk).expect("jwk")).expect("decoding key");
    let val = validation(Algorithm::RS256, &iss);
    let bare = || {
        for _ in 0..uses {
            for t in &tokens {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(black_box(t), &decoding_key, &val)
                        .expect("bare"),
                );
            }
        }
    };
    let br = Drive::BlockOn(rt);
    let plain = JwtAuthLayer::new(ours_static(&jwks, &iss)).layer(noop());
    let fresh_cached = || {
        JwtAuthLayer::new(ours_static(&jwks, &iss))
            .cache(TokenCache::new())
            .layer(noop())
    };
    let run = |f: &dyn Fn(&HeaderValue)| {
        for _ in 0..uses {
            for b in &bearers {
                f(b);
            }
        }
    };
    let ok = |s: Option<StatusCode>| assert_eq!(s, Some(StatusCode::OK));
    let jwt_authorizer =
        jwt_authorizer_jwks(rt, &jwks_url, &iss, Algorithm::RS256).map(|l| l.layer(noop07()));
    let oauth2 = tower_oauth2(rt, &jwks_url, &iss, Algorithm::RS256).map(|l| l.layer(noop()));
    let oauth_rs = oauth_rs(rt, &jwks_url, &iss, Algorithm::RS256).map(|l| l.layer(noop()));
    // Warm each peer (oauth2 loads its keys in the background).
    if let Ok(s) = &jwt_authorizer {
        ok(request(s, &bearers[0], br));
    }
    if let Ok(s) = &oauth2 {
        let start = Instant::now();
        while request(s, &bearers[0], br) != Some(StatusCode::OK) {
            assert!(start.elapsed() < Duration::from_secs(5), "oauth2 keys");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if let Ok(s) = &oauth_rs {
        ok(request(s, &bearers[0], br));
    }
    // Every variant is driven the same way: one poll if all finish on it,
    // else `block_on` for all.
    let mut all = polls_once(&plain, &bearers[0]) && polls_once(&fresh_cached(), &bearers[0]);
    if let Ok(s) = &jwt_authorizer {
        all &= polls_once(s, &bearers[0]);
    }
    if let Ok(s) = &oauth2 {
        all &= polls_once(s, &bearers[0]);
    }
    if let Ok(s) = &oauth_rs {
        all &= polls_once(s, &bearers[0]);
    }
    let br = pick_drive(rt, all);
    let mut variants: Vec<(&str, Box<dyn Fn() + '_>)> = vec![
        (
            "tower-jwt-auth layer, no cache",
            Box::new(|| run(&|b| ok(request(&plain, b, br)))),
        ),
        (
            "tower-jwt-auth layer, `TokenCache` (cold at start)",
            Box::new(|| {
                let svc = fresh_cached();
                run(&|b| ok(request(&svc, b, br)))
            }),
        ),
    ];
    if let Ok(s) = &jwt_authorizer {
        variants.push((
            "jwt-authorizer 0.15",
            Box::new(move || run(&|b| ok(request(s, b, br)))),
        ));
    }
    if let Ok(s) = &oauth2 {
        variants.push((
            "tower-oauth2-resource-server 0.12",
            Box::new(move || run(&|b| ok(request(s, b, br)))),
        ));
    }
    if let Ok(s) = &oauth_rs {
        variants.push((
            "oauth-resource-server 0.4",
            Box::new(move || run(&|b| ok(request(s, b, br)))),
        ));
    }
    let rounds = if quick() {
        1
    } else {
        knob("PEERS_MIXED_ROUNDS", 3)
    };
    let n_req = (distinct * uses) as f64;
    println!("### Mixed workload: {distinct} distinct RS256 tokens × {uses} uses\n");
    println!(
        "{} requests per run, round-robin over the tokens, every variant driven by {}; \
         median of {rounds} interleaved rounds. \
         Ratio: time to bare `jsonwebtoken::decode` doing the same {} decodes \
         (< 1 is faster).\n",
        distinct * uses,
        br.name(),
        distinct * uses
    );
    println!("| variant | req/s | ratio to bare decode | cached layer is × faster |");
    println!("|---|---:|---:|---:|");
    let mut results = Vec::new();
    let mut bare_times = Vec::new();
    for (name, f) in &variants {
        let mut ratios = Vec::new();
        let mut secs = Vec::new();
        for round in 0..rounds {
            let (tb, tf) = if round % 2 == 0 {
                let tb = time(1, &bare);
                (tb, time(1, f.as_ref()))
            } else {
                let tf = time(1, f.as_ref());
                (time(1, &bare), tf)
            };
            ratios.push(tf / tb);
            secs.push(tf);
            bare_times.push(tb);
        }
        let (r, s) = (median(&mut ratios), median(&mut secs));
        eprintln!("  mixed / {name}: {r:.3} ({:.0} req/s)", n_req / s);
        results.push((*name, n_req / s, r));
    }
    let bare_rps = n_req / median(&mut bare_times);
    let cached_rps = results
        .iter()
        .find(|r| r.0.contains("TokenCache"))
        .map(|r| r.1)
        .unwrap_or(f64::NAN);
    println!(
        "| bare `jsonwebtoken::decode` | {bare_rps:.0} | 1.000 | {:.1} |",
        cached_rps / bare_rps
    );
    for (name, rps, r) in &results {
        println!("| {name} | {rps:.0} | {r:.3} | {:.1} |", cached_rps / rps);
    }
    for (name, why) in [
        ("jwt-authorizer 0.15", jwt_authorizer.as_ref().err()),
        ("tower-oauth2-resource-server 0.12", oauth2.as_ref().err()),
        ("oauth-resource-server 0.4", oauth_rs.as_ref().err()),
    ] {
        if let Some(why) = why {
            println!("| {name} | — | — | — ({why}) |");
        }
    }
    println!();
    issuer.shutdown();
}

// ---------------------------------------------------------------- criterion

fn criterion_rs256(rt: &Runtime) {
    let issuer = rt.block_on(async { Issuer::start_with(Algorithm::RS256).await.expect("issuer") });
    let iss = issuer.url();
    let jwks = issuer.jwks_json();
    let token = issuer.token("bench", AUDIENCE);
    let b = bearer(&token);
    let decoding_key =
        DecodingKey::from_jwk(&serde_json::from_value(first_jwk(&jwks)).expect("jwk"))
            .expect("decoding key");
    let val = validation(Algorithm::RS256, &iss);
    let layer = JwtAuthLayer::new(ours_static(&jwks, &iss)).layer(noop());
    let mut c = criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut g = c.benchmark_group("rs256");
    g.bench_function("bare_decode", |bn| {
        bn.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding_key, &val)
        })
    });
    g.bench_function("layer_static", |bn| {
        bn.iter(|| request(&layer, &b, Drive::PollOnce))
    });
    g.finish();
    c.final_summary();
    issuer.shutdown();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "<!-- generated by benches/peers (cargo bench --manifest-path benches/peers/Cargo.toml) -->\n"
    );
    let mut tables = Vec::new();
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        eprintln!("{alg} ...");
        tables.push(asymmetric(&rt, alg));
    }
    eprintln!("HS256 ...");
    tables.push(hs256(&rt));
    for t in &tables {
        print_table(t);
    }
    eprintln!("mixed ...");
    mixed(&rt);
    if std::env::var_os("PEERS_CRITERION").is_some() {
        criterion_rs256(&rt);
    }
}
