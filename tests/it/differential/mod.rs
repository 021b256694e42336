//! Differential testing: our verifier against jsonwebtoken 11 (in process)
//! and panva's jose 6 (one Node.js process fed over stdin/stdout), with the
//! same key set and settings. Every disagreement is either a row of the
//! table of intended differences (`table.rs`) or a failure.
//!
//! - `table_rows_hold`: each row of the table, shown by its own examples.
//! - `generated_tokens_agree`: the mutation generator (`generate.rs`),
//!   `DIFF_CASES` cases (default 3000; the long run uses 100000).
//! - `public_vectors_agree` (`vectors.rs`): every Wycheproof and RFC 7520 vector.
//! - `claims_rules_match_rfc7519_model` (`claims.rs`): `exp` / `nbf` /
//!   `iat` with leeway against a reference model, random claims and clocks.
//! - `decision_record_shows_the_table`: docs/decisions/0001 renders the table.
//!
//! `DIFF_EXPLORE=1` lists every kind of unexplained disagreement of the
//! generator instead of stopping at the first (for work on the table).
//!
//! Needs `node` and npm (jose is installed from tests/oidc/package-lock.json
//! on first use); fails, never skips, without them.

use crate::support as common;

mod claims;
mod facts;
mod generate;
pub mod jose;
mod oracles;
mod table;
mod vectors;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tower_jwt_auth::Algorithm;

use facts::Facts;
use generate::{Bytes, Edge, Shape, Spec, Tweak, valid};
use oracles::{Jwt, Ours, Verdict, now_secs};
use table::{DIFFERENCES, Level, Peer, explain};

/// Cases for the generator: `DIFF_CASES`, default 3000.
fn cases() -> usize {
    std::env::var("DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

/// A seed from `DIFF_SEED` (to replay a run), else a fresh one.
fn seed() -> u64 {
    std::env::var("DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
                ^ std::process::id() as u64
        })
}

/// The three verdicts on one token.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub facts: Facts,
    pub ours: Verdict,
    pub jwt: Verdict,
    pub jose: Verdict,
}

impl Outcome {
    fn peer(&self, peer: Peer) -> &Verdict {
        match peer {
            Peer::Jsonwebtoken => &self.jwt,
            Peer::Jose => &self.jose,
        }
    }

    /// The rows explaining each disagreement, or what is unexplained.
    fn judge(&self) -> Result<Vec<(Peer, &'static str)>, String> {
        let mut rows = Vec::new();
        for peer in [Peer::Jsonwebtoken, Peer::Jose] {
            let theirs = self.peer(peer);
            if theirs.accepted() == self.ours.accepted() {
                continue;
            }
            match explain(&self.facts, peer, &self.ours) {
                Some(d) => rows.push((peer, d.id)),
                None => return Err(format!("{} disagrees, no row explains it", peer.name())),
            }
        }
        Ok(rows)
    }

    fn describe(&self) -> String {
        let f = &self.facts;
        let show = |s: &facts::Segment| match &s.bytes {
            Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
            None => format!("(not base64url: {:?})", s.text),
        };
        format!(
            "token: {:?}\n  header: {}\n  payload: {}\n  now {} leeway {}\n  ours: {:?}\n  jsonwebtoken: {:?}\n  jose: {:?}",
            f.token,
            show(&f.header),
            show(&f.payload),
            f.now,
            f.leeway,
            self.ours,
            self.jwt,
            self.jose
        )
    }
}

/// The verifiers, with one jose process.
struct Harness {
    ours: Ours,
    jwt: Jwt,
    jose: jose::Jose,
}

impl Harness {
    fn new() -> Harness {
        let dir = jose::keys_dir();
        Harness {
            ours: Ours::new(&dir),
            jwt: Jwt::new(&dir),
            jose: jose::Jose::start(),
        }
    }

    /// Renders each spec against the clock and asks all three. Ours and
    /// jsonwebtoken read the clock themselves: a case is redone if the
    /// second changed while they ran, and jose is given that second.
    fn run(&mut self, specs: &[Spec]) -> Vec<Outcome> {
        let mut judged = Vec::with_capacity(specs.len());
        for spec in specs {
            loop {
                let now = now_secs();
                let token = spec.render(now);
                let ours = self.ours.verify(&token, spec.leeway);
                let jwt = self.jwt.verify(&token, spec.leeway);
                if now_secs() == now {
                    judged.push((token, now, spec.leeway, ours, jwt));
                    break;
                }
            }
        }
        let questions: Vec<(&str, i64, i64)> = judged
            .iter()
            .map(|(t, now, l, ..)| (t.as_str(), *now, *l))
            .collect();
        let answers = self.jose.jwt_many(&questions);
        judged
            .into_iter()
            .zip(answers)
            .map(|((token, now, leeway, ours, jwt), jose)| Outcome {
                facts: Facts::new(&token, now, leeway),
                ours,
                jwt,
                jose,
            })
            .collect()
    }

    fn one(&mut self, spec: &Spec) -> Outcome {
        self.run(std::slice::from_ref(spec)).pop().unwrap()
    }
}

/// Counts for the closing report.
#[derive(Default)]
struct Tally {
    cases: usize,
    accepted: [usize; 3],
    agreed: usize,
    /// Our refusals by reason.
    reasons: BTreeMap<String, usize>,
    rows: BTreeMap<(&'static str, &'static str), usize>,
}

impl Tally {
    fn add(&mut self, o: &Outcome, rows: &[(Peer, &'static str)]) {
        self.cases += 1;
        for (i, v) in [&o.ours, &o.jwt, &o.jose].into_iter().enumerate() {
            self.accepted[i] += v.accepted() as usize;
        }
        if rows.is_empty() {
            self.agreed += 1;
        }
        if let Verdict::Refuse(why) = &o.ours {
            let reason = why.split(':').next().unwrap_or_default().to_owned();
            *self.reasons.entry(reason).or_default() += 1;
        }
        for (peer, id) in rows {
            *self.rows.entry((id, peer.name())).or_default() += 1;
        }
    }

    fn report(&self, title: &str) -> String {
        let mut s = format!(
            "{title}: {} cases compared; accepted by ours {}, jsonwebtoken {}, jose {}; \
             all three agree on {}",
            self.cases, self.accepted[0], self.accepted[1], self.accepted[2], self.agreed
        );
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let _ = write!(s, "\n  our refusals: {}", reasons.join(", "));
        for ((id, peer), n) in &self.rows {
            let _ = write!(s, "\n  intended difference {id} vs {peer}: {n}");
        }
        s
    }
}

// ---------------------------------------------------------------- the table

/// Tokens that show each row: the row must explain exactly these
/// disagreements (and they must happen, or the row is stale).
fn row_examples() -> Vec<(&'static str, Peer, Spec)> {
    use Algorithm::*;
    use Peer::*;
    let v = valid;
    vec![
        ("crit", Jsonwebtoken, v(RS256).h("crit", r#"["exp"]"#)),
        (
            "crit-b64",
            Jose,
            v(ES256).h("crit", r#"["b64"]"#).h("b64", "true"),
        ),
        ("b64", Jsonwebtoken, v(HS256).h("b64", "false")),
        ("b64", Jose, v(EdDSA).h("b64", "true")),
        (
            "b64",
            Jsonwebtoken,
            v(RS256).h("b64", "true").h_dup("b64", "true"),
        ),
        (
            "key-reference",
            Jsonwebtoken,
            v(RS256).h("jku", r#""https://attacker.example/jwks""#),
        ),
        ("key-reference", Jose, v(PS256).h("x5c", r#"["MIIB"]"#)),
        ("nested-jwt", Jsonwebtoken, v(HS384).h("cty", r#""JWT""#)),
        (
            "nested-jwt",
            Jose,
            v(ES384).h("cty", r#""application/jwt""#),
        ),
        (
            "duplicate-header-member",
            Jose,
            v(HS256).h_dup("alg", r#""HS256""#),
        ),
        ("duplicate-claim", Jose, v(HS256).p_dup("exp", "4102444800")),
        (
            "duplicate-unvalidated-claim",
            Jsonwebtoken,
            v(HS256).p("iat", "1").p_dup("iat", "1"),
        ),
        (
            "duplicate-unvalidated-claim",
            Jsonwebtoken,
            v(HS256).p("jti", r#""a""#).p_dup("jti", r#""b""#),
        ),
        ("strict-base64url", Jose, v(HS256).tweak(0, Tweak::Pad("="))),
        (
            "strict-base64url",
            Jose,
            v(RS256).shape(Shape::TrailingNewline),
        ),
        (
            "strict-base64url",
            Jose,
            v(HS512).tweak(1, Tweak::StrayBits),
        ),
        ("byte-order-mark", Jose, v(HS256).header_bytes(Bytes::Bom)),
        ("header-member-types", Jose, v(HS256).h("typ", "5")),
        ("header-member-types", Jose, v(ES256).h("typ", "null")),
        (
            "null-header-member",
            Jsonwebtoken,
            v(ES256).h("typ", "null"),
        ),
        (
            "null-header-member",
            Jsonwebtoken,
            v(RS256).h("kid", "null"),
        ),
        ("claim-types", Jsonwebtoken, v(HS256).p("jti", "5")),
        ("claim-types", Jose, v(HS256).p("sub", "null")),
        (
            "iat-type",
            Jsonwebtoken,
            v(HS256).p("iat", r#""1700000000""#),
        ),
        ("beyond-serde-claims", Jose, v(HS256).p("n", "1e400")),
        ("beyond-serde-claims", Jose, v(ES256).p("exp", "1e400")),
        ("beyond-serde-claims", Jose, v(HS256).p("s", r#""\ud800""#)),
        (
            "iss-array",
            Jsonwebtoken,
            v(HS256).p("iss", r#"["https://issuer.test"]"#),
        ),
        ("exp-edge", Jsonwebtoken, v(HS256).t("exp", Edge::Exp, 0)),
        (
            "iat-in-future",
            Jsonwebtoken,
            v(HS256).t("iat", Edge::Future, 1),
        ),
        ("iat-in-future", Jose, v(EdDSA).t("iat", Edge::Future, 3)),
        ("es512", Jsonwebtoken, v(ES512)),
        ("numeric-date-range", Jsonwebtoken, v(HS256).p("nbf", "-1")),
        (
            "numeric-date-range",
            Jsonwebtoken,
            v(HS256).p("exp", "1e20"),
        ),
        (
            "jsonwebtoken-header-struct",
            Jsonwebtoken,
            v(HS256).h("x5t", "5"),
        ),
        (
            "jsonwebtoken-header-struct",
            Jsonwebtoken,
            v(HS256).h("enc", r#""A""#).h_dup("enc", r#""A""#),
        ),
        (
            "ignored-header-members",
            Jsonwebtoken,
            v(HS256).h("x", "1e400"),
        ),
        (
            "ignored-header-members",
            Jsonwebtoken,
            v(HS256).h("x", &format!("{}{}", "[".repeat(130), "]".repeat(130))),
        ),
        ("aud-member-types", Jose, v(HS256).p("aud", r#"[1,"api"]"#)),
    ]
}

/// Runs `f` on a thread with a large stack: proptest's value trees for a
/// strategy this size are deep, and debug builds keep big frames.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap();
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn table_rows_hold() {
    big_stack(table_rows);
}

fn table_rows() {
    let mut h = Harness::new();
    let examples = row_examples();
    for d in DIFFERENCES {
        assert!(
            d.level != Level::Jwt || examples.iter().any(|(id, ..)| *id == d.id),
            "row {} has no example in row_examples()",
            d.id
        );
        assert!(
            !d.why.is_empty() && !d.rfc.is_empty(),
            "row {} needs a reason and an RFC clause",
            d.id
        );
    }
    // The base of every example is accepted by all three.
    for alg in Algorithm::ALL {
        let o = h.one(&valid(alg));
        assert!(
            o.ours.accepted() && o.jose.accepted(),
            "{alg}: {}",
            o.describe()
        );
        // jsonwebtoken 11 does not implement ES512.
        assert_eq!(
            o.jwt.accepted(),
            alg != Algorithm::ES512,
            "{alg}: {}",
            o.describe()
        );
    }
    for (id, peer, spec) in examples {
        let o = h.one(&spec);
        let theirs = o.peer(peer);
        assert_ne!(
            o.ours.accepted(),
            theirs.accepted(),
            "row {id}: no difference with {}:\n{}",
            peer.name(),
            o.describe()
        );
        let row = explain(&o.facts, peer, &o.ours).map(|d| d.id);
        assert_eq!(
            row,
            Some(id),
            "row {id} vs {}:\n{}",
            peer.name(),
            o.describe()
        );
    }
}

// ---------------------------------------------------------------- the generator

#[test]
fn generated_tokens_agree() {
    big_stack(generated);
}

fn generated() {
    let seed = seed();
    let n = cases();
    let mut runner = TestRunner::new_with_rng(
        Config {
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
    );
    let strategy = generate::spec().boxed();
    let mut h = Harness::new();
    let mut tally = Tally::default();
    // The first unexplained case (shrunk before it is reported), and how many.
    let mut failure: Option<(Outcome, String, Box<dyn ValueTree<Value = Spec>>)> = None;
    let mut unexplained = 0;
    // DIFF_EXPLORE=1: list every kind of unexplained disagreement, no shrinking.
    let explore = std::env::var_os("DIFF_EXPLORE").is_some();
    let mut kinds: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(256);
        let trees: Vec<_> = (0..batch)
            .map(|_| strategy.new_tree(&mut runner).unwrap())
            .collect();
        let specs: Vec<Spec> = trees.iter().map(|t| t.current()).collect();
        for (o, tree) in h.run(&specs).into_iter().zip(trees) {
            match o.judge() {
                Ok(rows) => tally.add(&o, &rows),
                Err(e) if explore => {
                    let cut = |v: &Verdict| match v {
                        Verdict::Accept => "accept".to_owned(),
                        Verdict::Refuse(w) => w.chars().take(60).collect(),
                    };
                    let key = format!(
                        "{e} | ours {} | jwt {} | jose {}",
                        cut(&o.ours),
                        cut(&o.jwt),
                        cut(&o.jose)
                    );
                    let entry = kinds.entry(key).or_insert((0, o.describe()));
                    entry.0 += 1;
                }
                Err(e) => {
                    unexplained += 1;
                    failure.get_or_insert((o, e, tree));
                }
            }
        }
        done += batch;
    }
    println!(
        "{} in {:.1?} (seed {seed}, DIFF_SEED to replay)",
        tally.report("generated tokens"),
        started.elapsed()
    );
    for (k, (n, example)) in &kinds {
        println!("UNEXPLAINED x{n}: {k}\n{example}\n");
    }
    assert!(
        kinds.is_empty(),
        "{} kinds of unexplained disagreement",
        kinds.len()
    );
    if let Some((first, why, tree)) = failure {
        let minimal = shrink(&mut h, tree);
        panic!(
            "{unexplained} unexplained disagreements (seed {seed}); the first: {why}\n{}\nshrunk to:\n{}",
            first.describe(),
            minimal.describe()
        );
    }
    // The generator must reach the claims step often, or it compares little.
    assert!(
        tally.accepted[0] * 5 > tally.cases,
        "ours accepted too few: {}",
        tally.report("generated tokens")
    );
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, chunk) in b.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.rotate_left(i as u32 * 16)).to_le_bytes());
    }
    b
}

/// proptest's shrinking loop, by hand: simplify while the case still
/// fails, step back when it passes.
fn shrink(h: &mut Harness, mut tree: Box<dyn ValueTree<Value = Spec>>) -> Outcome {
    let mut last = h.one(&tree.current());
    if !tree.simplify() {
        return last;
    }
    for _ in 0..5000 {
        let o = h.one(&tree.current());
        let more = if o.judge().is_err() {
            last = o;
            tree.simplify()
        } else {
            tree.complicate()
        };
        if !more {
            break;
        }
    }
    last
}

// ---------------------------------------------------------------- vectors and claims

#[test]
fn public_vectors_agree() {
    vectors::run();
}

#[test]
fn claims_rules_match_rfc7519_model() {
    claims::run(cases());
}

// ---------------------------------------------------------------- the decision record

const RECORD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docs/decisions/0001-own-compact-jws-parser.md"
);

/// The table as the decision record shows it, one Markdown table per level.
fn render_table() -> String {
    let mut out = String::new();
    for (level, title) in [
        (
            Level::Jwt,
            "Tokens (the whole verifier, same keys and settings)",
        ),
        (
            Level::Signature,
            "Public vectors (signature level, each verifier importing the vector's key)",
        ),
    ] {
        let _ = writeln!(out, "**{title}**\n");
        out.push_str("| row | token | ours | jsonwebtoken | jose | why | RFC |\n|---|---|---|---|---|---|---|\n");
        for d in DIFFERENCES.iter().filter(|d| d.level == level) {
            let (ours, other) = if d.ours_accepts {
                ("accepts", "refuses")
            } else {
                ("refuses", "accepts")
            };
            let peer = |p: Peer| if d.peers.contains(&p) { other } else { "—" };
            let cell = |s: &str| {
                s.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .replace('|', "\\|")
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {ours} | {} | {} | {} | {} |",
                d.id,
                cell(d.what),
                peer(Peer::Jsonwebtoken),
                peer(Peer::Jose),
                cell(d.why),
                cell(d.rfc)
            );
        }
        out.push('\n');
    }
    out
}

/// The decision record shows exactly this table (between its markers).
/// `DIFF_WRITE_TABLE=1` rewrites it from the code.
#[test]
fn decision_record_shows_the_table() {
    let (begin, end) = (
        "<!-- table:begin (tests/it/differential/table.rs) -->\n",
        "<!-- table:end -->",
    );
    let doc = std::fs::read_to_string(RECORD).unwrap();
    let a = doc.find(begin).expect("begin marker") + begin.len();
    let b = doc.find(end).expect("end marker");
    let table = render_table();
    if std::env::var_os("DIFF_WRITE_TABLE").is_some() {
        std::fs::write(RECORD, format!("{}{table}{}", &doc[..a], &doc[b..])).unwrap();
        return;
    }
    assert!(
        doc[a..b] == table,
        "docs/decisions/0001-own-compact-jws-parser.md does not show the table of \
         tests/differential/table.rs; rewrite it with \
         `DIFF_WRITE_TABLE=1 cargo test --all-features --test differential decision_record`"
    );
}
