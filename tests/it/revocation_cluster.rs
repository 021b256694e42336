//! Revocation, DPoP replay and shared introspection answers on a real
//! three-master Redis Cluster
//! (`redis-server --cluster-enabled yes` x6, `redis-cli --cluster create`
//! with one replica per master, on 127.0.0.1): checks answered from the
//! tracked copy on every node, keys on several masters, and a master
//! killed so its replica takes over, losing no revocation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use std::time::{Duration, Instant};
use tower_jwt_auth::introspection::{Introspector, SharedAnswers};

use http::StatusCode;
use tower_jwt_auth::JwtAuthLayer;
use tower_jwt_auth::dpop::{RedisReplayStore, ReplayStore};
use tower_jwt_auth::revocation::RedisRevocation;
use tower_jwt_auth::testing::Issuer;

use crate::revocation::{call, layer, mint, now};
use crate::revocation_fleet::{commandstats, percentiles, refused_after, warm};
use crate::support::redis::Cluster;

/// The deny key of `jti` at `iss` under `prefix` (the documented layout).
fn jti_key(prefix: &str, iss: &str, jti: &str) -> String {
    format!("{prefix}{{{}:{iss}}}:jti:{jti}", iss.len())
}

/// Commands run on every node between two readings, but for `INFO`, the
/// trackers' heartbeat (`PING`, `CLUSTER NODES`) and replication.
async fn commands(cluster: &Cluster, before: &[HashMap<String, u64>]) -> HashMap<String, u64> {
    let mut run = HashMap::new();
    for (port, before) in cluster.ports.iter().zip(before) {
        let after = commandstats(&format!("redis://127.0.0.1:{port}/")).await;
        for (name, n) in after {
            let d = n - before.get(&name).copied().unwrap_or(0);
            let quiet = matches!(
                name.as_str(),
                "info" | "ping" | "cluster|nodes" | "replconf" | "psync"
            );
            if d > 0 && !quiet {
                *run.entry(name).or_insert(0) += d;
            }
        }
    }
    run
}

async fn stats(cluster: &Cluster) -> Vec<HashMap<String, u64>> {
    let mut all = Vec::new();
    for port in &cluster.ports {
        all.push(commandstats(&format!("redis://127.0.0.1:{port}/")).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_revocation_replay_and_introspection_work_across_slots_and_survive_failover() {
    let started = Instant::now();
    let mut cluster = Cluster::start(3, 1).await;
    println!("cluster of 6 nodes up in {:?}", started.elapsed());
    let store = |timeout_ms: u64| {
        RedisRevocation::builder(&cluster.urls())
            .prefix("c:")
            .replicas(1)
            .timeout(Duration::from_millis(timeout_ms))
            .build()
            .unwrap()
    };
    let (a, b) = (store(1000), store(300));

    // Issuers whose deny keys live on different masters (the issuer is
    // the hash tag): one per master, found among a few.
    let mut issuers: Vec<(usize, Issuer)> = Vec::new();
    for _ in 0..30 {
        let issuer = Issuer::start().await.unwrap();
        let master = cluster.master_of(&jti_key("c:", &issuer.url(), "x")).await;
        if issuers.iter().all(|(m, _)| *m != master) {
            issuers.push((master, issuer));
        }
        if issuers.len() == 3 {
            break;
        }
    }
    assert!(
        issuers.len() >= 2,
        "the issuers' keys all hash to one master"
    );

    // Revocation through one instance, refused by the other, per slot.
    let mut samples = Vec::new();
    let mut layers: Vec<(JwtAuthLayer, JwtAuthLayer, String, String)> = Vec::new();
    for (_, issuer) in &issuers {
        let (la, lb) = (
            layer(issuer).revocation(a.clone()),
            layer(issuer).revocation(b.clone()),
        );
        let ok = mint(issuer, "ada", Some("ok"), now());
        for i in 0..10 {
            let jti = format!("r{i}");
            let t = mint(issuer, "ada", Some(&jti), now());
            warm(&lb, &b, issuer, &t, StatusCode::OK).await;
            // Measured from the acknowledgement: with `replicas(1)` the
            // revoke itself waits for a replica (`WAIT`), which is the
            // write's durability, not its propagation to other instances.
            a.revoke(&issuer.url(), &jti, now() + 600).await.unwrap();
            let since = Instant::now();
            samples.push(refused_after(&lb, &t, since).await);
            assert_eq!(call(&la, &t).await.0, StatusCode::UNAUTHORIZED);
        }
        warm(&lb, &b, issuer, &ok, StatusCode::OK).await;
        let revoked = mint(issuer, "ada", Some("r0"), now());
        warm(&lb, &b, issuer, &revoked, StatusCode::UNAUTHORIZED).await;
        layers.push((la, lb, ok, revoked));
    }
    let (p50, p99, max) = percentiles(samples);
    println!("cluster propagation between two instances: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    assert!(max < Duration::from_millis(100), "max {max:?}");

    // The hot path asks no node anything.
    let before = stats(&cluster).await;
    for (_, lb, ok, revoked) in &layers {
        for _ in 0..100 {
            assert_eq!(call(lb, ok).await.0, StatusCode::OK);
            assert_eq!(call(lb, revoked).await.0, StatusCode::UNAUTHORIZED);
        }
    }
    let run = commands(&cluster, &before).await;
    println!(
        "cluster commands during {} requests: {run:?}",
        layers.len() * 200
    );
    assert!(run.is_empty(), "{run:?}");

    // DPoP replay across slots: a proof's first use is decided by the
    // master of its key, once.
    let replay = RedisReplayStore::new(&cluster.urls()).unwrap();
    let mut masters = std::collections::HashSet::new();
    for i in 0..30 {
        let key = format!("jkt-{i}:proof-{i}");
        masters.insert(cluster.master_of(&format!("dpop:{key}")).await);
        let ttl = Duration::from_secs(60);
        assert_eq!(replay.first_use_later(&key, ttl).await, Ok(true));
        assert_eq!(
            replay.first_use_later(&key, ttl).await,
            Ok(false),
            "replayed"
        );
    }
    assert!(masters.len() >= 2, "{masters:?}");

    // Shared introspection answers across slots: two instances, one call
    // per token to the authorization server.
    let (endpoint, calls) = counting_endpoint().await;
    let introspecting = || {
        JwtAuthLayer::new(
            Introspector::builder(&endpoint)
                .client_credentials("api", "secret")
                .audience("api")
                .shared_answers(SharedAnswers::new(&cluster.urls()).unwrap())
                .build()
                .unwrap(),
        )
    };
    let (i1, i2) = (introspecting(), introspecting());
    let mut masters = std::collections::HashSet::new();
    for i in 0..30 {
        let token = format!("opaque-{i}");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let key = format!(
            "introspection:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
        );
        masters.insert(cluster.master_of(&key).await);
        assert_eq!(call(&i1, &token).await, (StatusCode::OK, "alice".into()));
        assert_eq!(call(&i2, &token).await, (StatusCode::OK, "alice".into()));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        30,
        "one call per token for two instances"
    );
    assert!(masters.len() >= 2, "{masters:?}");

    // Failover: kill the master of the first issuer's keys; its replica
    // takes over. No revoked token is admitted meanwhile, and every
    // revocation (acknowledged by a replica before `revoke` returned) is
    // still there after.
    let (victim, issuer) = &issuers[0];
    let (_, lb, ok, _) = &layers[0];
    let killed = Instant::now();
    cluster.kill(*victim).await;
    let revoked: Vec<String> = (0..10)
        .map(|i| mint(issuer, "ada", Some(&format!("r{i}")), now()))
        .collect();
    let deadline = killed + Duration::from_secs(20);
    loop {
        for t in &revoked {
            let (status, _) = call(lb, t).await;
            assert_ne!(
                status,
                StatusCode::OK,
                "a revoked token got in during the failover"
            );
        }
        if call(lb, ok).await.0 == StatusCode::OK && b.is_tracking() {
            break;
        }
        assert!(Instant::now() < deadline, "no failover within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("failover: served again after {:?}", killed.elapsed());
    for t in &revoked {
        assert_eq!(
            call(lb, t).await.0,
            StatusCode::UNAUTHORIZED,
            "revocation lost"
        );
    }
    // And a new revocation on the new master reaches the other instance.
    let t = mint(issuer, "ada", Some("after"), now());
    warm(lb, &b, issuer, &t, StatusCode::OK).await;
    let since = Instant::now();
    let deadline = since + Duration::from_secs(10);
    // The new master has no replica left to acknowledge: no WAIT here.
    let fresh = RedisRevocation::builder(&cluster.urls())
        .prefix("c:")
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    while fresh
        .revoke(&issuer.url(), "after", now() + 600)
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no write after the failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = refused_after(lb, &t, Instant::now()).await;
    println!("cluster test total {:?}", started.elapsed());
}

/// A loopback introspection endpoint that answers every token as active
/// for `alice`, counting calls.
async fn counting_endpoint() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let app = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                r#"{"active":true,"sub":"alice","aud":"api","exp":4102444800,"token_type":"Bearer"}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}
