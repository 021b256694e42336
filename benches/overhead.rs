//! The layer's own cost: everything but the signature.
//!
//! One process, one interleaved measurement: bare `jsonwebtoken::decode`
//! (HS256 and RS256, the baselines), aws-lc-rs alone (the floors: the MAC
//! or the signature over pre-decoded input, key parsed once), and the
//! layer with the default claims (`JsonClaims`), with typed claims, and a
//! hit in the verified-token cache. The harness row (building a request
//! and driving it through the no-op service, no layer) is part of every
//! layer row: subtract it to get the layer's own cost. Batches of every row alternate, the
//! order reversed every round, and the table gives per-row medians of the
//! per-round ratio to the baseline of the same algorithm.
//!
//! Run: `cargo bench --features issuer,cache --bench overhead`
//! (`BENCH_QUICK=1` or `-- --test` only checks that every row accepts its
//! token). `OVERHEAD_PROFILE=<row>` runs one row in a loop for 5 s (or
//! `OVERHEAD_CALLS` times), to be recorded with `perf record` or counted
//! with `perf stat`; rows are named as in the table, spaces or dashes.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use http::HeaderValue;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use support::Handler;
use tower::Layer;
use tower::util::ServiceFn;
use tower_jwt_auth::cache::TokenCache;
use tower_jwt_auth::layer::JwtAuth;
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};

const AUDIENCE: &str = "api";
const HMAC_SECRET: [u8; 32] = *b"bench-secret-0123456789abcdef!!!";
const ROUNDS: usize = 21;
const BATCH: Duration = Duration::from_millis(20);

/// A typed claims struct, as most services have.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Sub {
    sub: String,
}

fn noop() -> ServiceFn<Handler> {
    tower::service_fn(support::handler as Handler)
}

/// A row of the table: a name, the baseline it is divided by, and the work.
struct Row<'a> {
    name: &'static str,
    baseline: &'static str,
    run: Box<dyn Fn() + 'a>,
}

fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .expect("signature");
    (input.as_bytes().to_vec(), sig)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // HS256: static secret.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let hs_token = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({
            "sub": "bench", "aud": AUDIENCE, "iss": "https://issuer.test",
            "exp": now + 3600, "iat": now,
        }),
        &EncodingKey::from_secret(&HMAC_SECRET),
    )
    .expect("encode");
    let hs_bearer = HeaderValue::from_str(&format!("Bearer {hs_token}")).expect("header");
    let hs_key = DecodingKey::from_secret(&HMAC_SECRET);
    let mut hs_val = Validation::new(jsonwebtoken::Algorithm::HS256);
    hs_val.set_audience(&[AUDIENCE]);
    hs_val.set_issuer(&["https://issuer.test"]);
    let hs_verifier = Verifier::builder()
        .key(Key::hmac(Algorithm::HS256, HMAC_SECRET).expect("hmac"))
        .issuer("https://issuer.test")
        .audience(AUDIENCE)
        .build()
        .expect("verifier");
    let hs_verifier_alone = hs_verifier.clone();
    let hs_layer = JwtAuthLayer::new(hs_verifier.clone());
    let hs_json: JwtAuth<_> = hs_layer.layer(noop());
    let hs_typed: JwtAuth<_, Sub> = JwtAuthLayer::new(hs_verifier).claims::<Sub>().layer(noop());
    let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &HMAC_SECRET);
    let (hs_msg, hs_sig) = split(&hs_token);

    // RS256: keys from the built-in issuer's key set, given statically.
    let issuer = rt.block_on(async { Issuer::start_with(Algorithm::RS256).await.expect("issuer") });
    let rs_token = issuer.token("bench", AUDIENCE);
    let rs_bearer = HeaderValue::from_str(&format!("Bearer {rs_token}")).expect("header");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&issuer.jwks_json()).expect("jwks");
    let rs_key = DecodingKey::from_jwk(&jwks.keys[0]).expect("decoding key");
    let mut rs_val = Validation::new(jsonwebtoken::Algorithm::RS256);
    rs_val.set_audience(&[AUDIENCE]);
    rs_val.set_issuer(&[issuer.url()]);
    let rs_verifier = Verifier::builder()
        .jwks(issuer.jwks_json())
        .issuer(issuer.url())
        .audience(AUDIENCE)
        .build()
        .expect("verifier");
    let rs_layer = JwtAuthLayer::new(rs_verifier.clone());
    let rs_json: JwtAuth<_> = rs_layer.clone().layer(noop());
    let rs_typed: JwtAuth<_, Sub> = JwtAuthLayer::new(rs_verifier).claims::<Sub>().layer(noop());
    let rs_hit: JwtAuth<_> = rs_layer.cache(TokenCache::new()).layer(noop());
    let (rs_msg, rs_sig) = split(&rs_token);
    let rs_der = rsa_public_der(&jwks.keys[0]);
    let rs_parsed = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &rs_der).expect("aws-lc key");

    let bare_noop = noop();
    let rows: Vec<Row<'_>> = vec![
        Row {
            name: "harness alone: request through the no-op service",
            baseline: "rs256 bare jsonwebtoken::decode",
            run: Box::new(|| support::call(&bare_noop, &rs_bearer)),
        },
        Row {
            name: "hs256 bare jsonwebtoken::decode",
            baseline: "hs256 bare jsonwebtoken::decode",
            run: Box::new(|| {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(
                        black_box(&hs_token),
                        &hs_key,
                        &hs_val,
                    )
                    .expect("bare"),
                );
            }),
        },
        Row {
            name: "hs256 floor aws-lc hmac::verify",
            baseline: "hs256 bare jsonwebtoken::decode",
            run: Box::new(|| {
                aws_lc_rs::hmac::verify(&hmac, black_box(&hs_msg), black_box(&hs_sig))
                    .expect("mac");
            }),
        },
        Row {
            name: "hs256 layer JsonClaims",
            baseline: "hs256 bare jsonwebtoken::decode",
            run: Box::new(|| support::call(&hs_json, &hs_bearer)),
        },
        Row {
            name: "hs256 layer typed",
            baseline: "hs256 bare jsonwebtoken::decode",
            run: Box::new(|| support::call(&hs_typed, &hs_bearer)),
        },
        Row {
            name: "rs256 bare jsonwebtoken::decode",
            baseline: "rs256 bare jsonwebtoken::decode",
            run: Box::new(|| {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(
                        black_box(&rs_token),
                        &rs_key,
                        &rs_val,
                    )
                    .expect("bare"),
                );
            }),
        },
        Row {
            name: "rs256 floor aws-lc verify_sig",
            baseline: "rs256 bare jsonwebtoken::decode",
            run: Box::new(|| {
                rs_parsed
                    .verify_sig(black_box(&rs_msg), black_box(&rs_sig))
                    .expect("sig");
            }),
        },
        Row {
            name: "rs256 layer JsonClaims",
            baseline: "rs256 bare jsonwebtoken::decode",
            run: Box::new(|| support::call(&rs_json, &rs_bearer)),
        },
        Row {
            name: "rs256 layer typed",
            baseline: "rs256 bare jsonwebtoken::decode",
            run: Box::new(|| support::call(&rs_typed, &rs_bearer)),
        },
        Row {
            name: "hs256 Verifier::verify typed (no layer)",
            baseline: "hs256 bare jsonwebtoken::decode",
            run: Box::new(|| {
                black_box(
                    hs_verifier_alone
                        .verify::<Sub>(black_box(&hs_token))
                        .expect("verify"),
                );
            }),
        },
        Row {
            name: "rs256 layer cache hit",
            baseline: "rs256 bare jsonwebtoken::decode",
            run: Box::new(|| support::call(&rs_hit, &rs_bearer)),
        },
    ];
    // Every row must accept its token, or the figures mean nothing.
    for row in &rows {
        (row.run)();
    }
    if let Some(name) = std::env::var_os("OVERHEAD_PROFILE") {
        let row = rows
            .iter()
            .find(|r| r.name.replace(' ', "-") == name.to_string_lossy().replace(' ', "-"))
            .unwrap_or_else(|| panic!("no row named {name:?}"));
        // `OVERHEAD_CALLS=n`: exactly n calls (for instruction counts),
        // else 5 s.
        if let Some(n) = std::env::var("OVERHEAD_CALLS")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            for _ in 0..n {
                (row.run)();
            }
            return;
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            for _ in 0..1000 {
                (row.run)();
            }
        }
        return;
    }
    if support::quick() {
        return;
    }
    print_table(&rows);
    drop(rt);
}

/// Interleaved: each round runs a batch of every row (order reversed on
/// odd rounds); each row's ratio is taken to its baseline's batch of the
/// same round, then the median over the rounds.
fn print_table(rows: &[Row<'_>]) {
    // Size each row's batch to about BATCH.
    let sizes: Vec<u64> = rows
        .iter()
        .map(|row| {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < BATCH {
                (row.run)();
                n += 1;
            }
            n.max(10)
        })
        .collect();
    let mut per_op: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for round in 0..ROUNDS {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..rows.len()).collect()
        } else {
            (0..rows.len()).rev().collect()
        };
        for i in order {
            let start = Instant::now();
            for _ in 0..sizes[i] {
                (rows[i].run)();
            }
            per_op[i].push(start.elapsed().as_secs_f64() / sizes[i] as f64);
        }
    }
    let index = |name: &str| {
        rows.iter()
            .position(|r| r.name == name)
            .expect("baseline row")
    };
    println!();
    println!("Interleaved, {ROUNDS} rounds; ratio: median per-round ratio to the baseline");
    println!();
    println!("| row | µs/op (median) | ratio to baseline | baseline |");
    println!("|---|---:|---:|---|");
    for (i, row) in rows.iter().enumerate() {
        let b = index(row.baseline);
        let mut ratios: Vec<f64> = (0..ROUNDS).map(|r| per_op[i][r] / per_op[b][r]).collect();
        let mut times = per_op[i].clone();
        println!(
            "| {} | {:.3} | {:.4} | {} |",
            row.name,
            median(&mut times) * 1e6,
            median(&mut ratios),
            row.baseline
        );
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The RSA public key of a JWK as a PKCS#1 `RSAPublicKey` DER, which
/// aws-lc-rs parses.
fn rsa_public_der(jwk: &jsonwebtoken::jwk::Jwk) -> Vec<u8> {
    use base64::Engine;
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        panic!("not an RSA key");
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let n = b64.decode(&rsa.n).expect("n");
    let e = b64.decode(&rsa.e).expect("e");
    fn int(v: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        if v[0] & 0x80 != 0 {
            body.push(0);
        }
        body.extend_from_slice(v);
        tlv(0x02, &body)
    }
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len();
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
        out.extend_from_slice(body);
        out
    }
    let mut seq = int(&n);
    seq.extend(int(&e));
    tlv(0x30, &seq)
}
