//! A request with Redis revocation on (the tracked local copy warm)
//! against the same request without revocation, through the layer; and
//! the propagation latency of a revocation between two instances (two
//! stores with their own connections on one `redis-server`).
//!
//! Needs `redis-server` on the `PATH` (started here on a free port).
//!
//! Run: `cargo bench --features redis,issuer --bench revocation`
//! (`BENCH_QUICK=1` or `-- --test` only checks that both rows answer
//! without waiting.)

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::HeaderValue;
use support::{call, quick, ratio, service};
use tower_jwt_auth::revocation::{RedisRevocation, Revocation, RevocationStatus};
use tower_jwt_auth::testing::Issuer;
use tower_jwt_auth::{Claims, JwtAuthLayer, Verifier};

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let redis = Redis(
            Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server on the PATH (Debian: apt-get install redis-server)"),
            port,
        );
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.1)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let redis = Redis::start();
    let issuer = rt.block_on(Issuer::start()).expect("issuer");
    let verifier = || {
        Verifier::builder()
            .jwks(issuer.jwks_json())
            .issuer(issuer.url())
            .audience("api")
            .build()
            .expect("verifier")
    };
    let store = || {
        RedisRevocation::builder(&redis.url())
            .prefix("bench:")
            .build()
            .expect("store")
    };
    let (a, b) = (store(), store());
    let token = issuer.token("bench", "api");
    let claims: Claims = verifier().verify(&token).expect("verifies");
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let plain = service(JwtAuthLayer::new(verifier()));
    let revocation = service(JwtAuthLayer::new(verifier()).revocation(a.clone()));

    // Warm: tracking on and the token's keys in the copy.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.check_now(claims.registered()).is_none() {
        assert_eq!(
            rt.block_on(a.status(claims.registered())),
            RevocationStatus::Valid
        );
        assert!(Instant::now() < deadline, "tracking never came on");
        std::thread::sleep(Duration::from_millis(5));
    }
    // `call` panics if a request waits: a warm tracked check never does.
    call(&plain, &bearer);
    call(&revocation, &bearer);
    if quick() {
        return;
    }

    let rounds = 21;
    let n = 500;
    let r = ratio(
        rounds,
        || (0..n).for_each(|_| call(&plain, &bearer)),
        || (0..n).for_each(|_| call(&revocation, &bearer)),
    );
    println!(
        "request with tracked redis revocation / without revocation, median of {rounds} interleaved rounds of {n}: {r:.3}"
    );

    // Propagation: revoke through `a`, poll `b`'s local answer.
    let tokens: Vec<(String, Claims)> = (0..200)
        .map(|i| {
            let jti = format!("p{i}");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let t = issuer.mint(&serde_json::json!({"iss": issuer.url(), "aud": "api",
                "sub": "bench", "jti": jti, "iat": now, "exp": now + 600}));
            (jti, verifier().verify(&t).expect("verifies"))
        })
        .collect();
    for (_, c) in &tokens {
        while b.check_now(c.registered()).is_none() {
            let _ = rt.block_on(b.status(c.registered()));
        }
    }
    let exp = tokens[0].1.exp().unwrap_or(0);
    let mut samples: Vec<Duration> = tokens
        .iter()
        .map(|(jti, c)| {
            let started = Instant::now();
            rt.block_on(a.revoke(&issuer.url(), jti, exp))
                .expect("revoke");
            while b.check_now(c.registered()) == Some(RevocationStatus::Valid) {
                std::hint::spin_loop();
                assert!(started.elapsed() < Duration::from_secs(1), "not propagated");
            }
            started.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "propagation between two instances (revoke returns, then the other's copy drops the answer), {} revocations: p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
