//! For the end-to-end load test (scripts/loadtest.sh): starts tower-jwt-auth's
//! built-in `Issuer` on 127.0.0.1, writes `count` RS256 tokens for audience
//! `api` (one per line) to `tokens_file`, prints `issuer <url>` and
//! `jwks <url>`, then keeps serving the JWKS until its standard input closes
//! or `max_secs` pass, whichever comes first.
//!
//! Usage: `token-issuer <tokens_file> [count=1000] [max_secs=900]`

use std::io::{Read, Write};
use std::time::Duration;

use tower_jwt_auth::Algorithm;
use tower_jwt_auth::testing::Issuer;

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .expect("usage: token-issuer <tokens_file> [count] [max_secs]");
    let count: usize = args.next().map_or(1000, |v| v.parse().expect("count"));
    let max_secs: u64 = args.next().map_or(900, |v| v.parse().expect("max_secs"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(async { Issuer::start_with(Algorithm::RS256).await.expect("issuer") });
    let mut out = String::new();
    for i in 0..count {
        out.push_str(&issuer.token(&format!("user-{i}"), "api"));
        out.push('\n');
    }
    std::fs::write(&file, out).expect("write tokens");
    println!("issuer {}", issuer.url());
    println!("jwks {}", issuer.jwks_url());
    std::io::stdout().flush().expect("stdout");
    // Serve until stdin closes (the script ends) or the time limit.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(max_secs));
    issuer.shutdown();
}
