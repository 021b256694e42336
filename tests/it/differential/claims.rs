//! Property test of the time rules: for random claim sets and random clocks
//! (`VerifierBuilder::clock`), the verifier's decision on `exp`, `nbf` and
//! `iat` with leeway equals a reference model written from RFC 7519, and a
//! refusal names a rule the model says is broken.
//!
//! The model, clause by clause:
//! - §2, §4.1.4-4.1.6: `exp`, `nbf` and `iat` are NumericDates: any JSON
//!   number, fractions and negative values included. Anything else (a
//!   string, `true`, `null`, an array) is a claim of the wrong type; so is a
//!   number no standard parser reads (`1e400`, RFC 7493 §2.2).
//! - §4: a repeated claim name: refused (the RFC allows refusing or taking
//!   the last; this crate refuses).
//! - §4.1.4: "the current date/time MUST be before the expiration date/time
//!   listed in the exp claim", with "some small leeway": refused when
//!   `now >= exp + leeway`. `exp` is required unless the verifier allows
//!   tokens without it.
//! - §4.1.5: "the current date/time MUST be after or equal to the
//!   not-before date/time": refused when `now + leeway < nbf`.
//! - §4.1.6 defines `iat` without a rule; the crate's rule (issue 14, as
//!   PyJWT): refused when `now + leeway < iat`, a token issued in the future.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tower_jwt_auth::{Algorithm, Key, Verifier};

use crate::differential::common::{SECRET, token_raw};

/// One time claim as written in the payload.
#[derive(Debug, Clone)]
enum Claim {
    Absent,
    /// A number: its value and its text.
    Num(f64, String),
    /// Not a NumericDate (wrong type, or out of range).
    Wrong(&'static str),
}

#[derive(Debug, Clone)]
struct Case {
    /// The clock, in seconds since the epoch (quarter seconds: exact in f64
    /// and in `Duration`).
    now: f64,
    leeway: u64,
    allow_missing_exp: bool,
    exp: Claim,
    nbf: Claim,
    iat: Claim,
    /// A claim written twice.
    repeated: Option<&'static str>,
}

/// The model's answer: accepted, or the reasons (`AuthError::reason`) a
/// refusal may give.
fn model(c: &Case) -> Result<(), Vec<&'static str>> {
    let claims = [("exp", &c.exp), ("nbf", &c.nbf), ("iat", &c.iat)];
    // Types and repetition are found while the payload is read, before any
    // time is compared.
    if c.repeated.is_some() || claims.iter().any(|(_, v)| matches!(v, Claim::Wrong(_))) {
        return Err(vec!["invalid_claim", "malformed"]);
    }
    let value = |v: &Claim| match v {
        Claim::Num(x, _) => Some(*x),
        _ => None,
    };
    let l = c.leeway as f64;
    let mut broken = Vec::new();
    match value(&c.exp) {
        Some(exp) if c.now >= exp + l => broken.push("expired"),
        None if !c.allow_missing_exp => broken.push("missing_claim"),
        _ => {}
    }
    if value(&c.nbf).is_some_and(|nbf| c.now + l < nbf) {
        broken.push("not_yet_valid");
    }
    if value(&c.iat).is_some_and(|iat| c.now + l < iat) {
        broken.push("issued_in_future");
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken)
    }
}

/// Quarter seconds, written as an integer when whole.
fn number(v: f64, exponent: bool) -> String {
    if exponent {
        format!("{v:e}")
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A time claim around one of the edges of the rules for this clock.
fn claim(now: f64, leeway: u64) -> impl Strategy<Value = Claim> {
    let l = leeway as f64;
    // The edges: exp at now - leeway, nbf and iat at now + leeway.
    let edges = vec![now - l, now + l, now];
    prop_oneof![
        3 => Just(Claim::Absent),
        // Within three seconds of an edge, in quarter seconds.
        8 => (prop::sample::select(edges), -12i32..=12, any::<bool>())
            .prop_map(|(edge, q, e)| {
                let v = edge + q as f64 / 4.0;
                Claim::Num(v, number(v, e))
            }),
        // Anywhere: before 1970, far future, past 2^53.
        2 => prop_oneof![
            (-1e10f64..1e11).prop_map(|v| (v * 4.0).round() / 4.0),
            prop::sample::select(vec![0.0, -0.0, 1e15, 9007199254740993.0, 1e20, 1.7976931348623157e308, -1e300]),
        ]
        .prop_map(|v| Claim::Num(v, number(v, false))),
        1 => prop::sample::select(vec![
            "\"1700000000\"", "true", "null", "[]", "{}", "[1700000000]", "1e400", "-1e400",
        ])
        .prop_map(Claim::Wrong),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    // Clocks from 1970 to the year 2500, in quarter seconds.
    (0u64..(16_725_225_600 * 4), prop::sample::select(vec![0u64, 1, 2, 30, 60, 299, 300]))
        .prop_flat_map(|(quarters, leeway)| {
            let now = quarters as f64 / 4.0;
            (
                Just(now),
                Just(leeway),
                prop::bool::weighted(0.2),
                claim(now, leeway),
                claim(now, leeway),
                claim(now, leeway),
                prop_oneof![8 => Just(None), 1 => prop::sample::select(vec!["exp", "nbf", "iat"]).prop_map(Some)],
            )
        })
        .prop_map(|(now, leeway, allow_missing_exp, exp, nbf, iat, repeated)| Case {
            now,
            leeway,
            allow_missing_exp,
            exp,
            nbf,
            iat,
            repeated,
        })
}

fn payload(c: &Case) -> String {
    let mut members = vec![r#""sub":"model""#.to_owned()];
    for (name, claim) in [("exp", &c.exp), ("nbf", &c.nbf), ("iat", &c.iat)] {
        let text = match claim {
            Claim::Absent => continue,
            Claim::Num(_, t) => t.clone(),
            Claim::Wrong(t) => (*t).to_owned(),
        };
        members.push(format!(r#""{name}":{text}"#));
        if c.repeated == Some(name) {
            members.push(format!(r#""{name}":{text}"#));
        }
    }
    if let Some(name) = c.repeated
        && !members
            .iter()
            .any(|m| m.starts_with(&format!("\"{name}\"")))
    {
        // Repeat it even when the case had it absent.
        members.push(format!(r#""{name}":1"#));
        members.push(format!(r#""{name}":1"#));
    }
    format!("{{{}}}", members.join(","))
}

/// One verifier per setting, all reading the one clock the test sets.
struct Verifiers {
    clock: Arc<AtomicU64>,
    built: BTreeMap<(u64, bool), Verifier>,
}

impl Verifiers {
    fn get(&mut self, leeway: u64, allow_missing_exp: bool) -> &Verifier {
        let clock = Arc::clone(&self.clock);
        self.built
            .entry((leeway, allow_missing_exp))
            .or_insert_with(|| {
                let b = Verifier::builder()
                    .key(Key::hmac(Algorithm::HS256, SECRET).unwrap())
                    .any_audience()
                    .leeway(Duration::from_secs(leeway))
                    .clock(move || {
                        UNIX_EPOCH
                            + Duration::from_secs_f64(f64::from_bits(clock.load(Ordering::SeqCst)))
                    });
                if allow_missing_exp {
                    b.allow_missing_exp()
                } else {
                    b
                }
                .build()
                .unwrap()
            })
    }
}

pub fn run(n: usize) {
    // `TestRunner::run` takes an `Fn`: state goes in cells.
    let verifiers = RefCell::new(Verifiers {
        clock: Arc::new(AtomicU64::new(0)),
        built: BTreeMap::new(),
    });
    let mut runner = TestRunner::new(Config {
        cases: n as u32,
        failure_persistence: None,
        ..Config::default()
    });
    let tally: RefCell<BTreeMap<String, usize>> = RefCell::new(BTreeMap::new());
    let result = runner.run(&case(), |c| {
        let mut verifiers = verifiers.borrow_mut();
        verifiers.clock.store(c.now.to_bits(), Ordering::SeqCst);
        let token = token_raw(Algorithm::HS256, r#"{"alg":"HS256"}"#, &payload(&c));
        let got = verifiers
            .get(c.leeway, c.allow_missing_exp)
            .verify::<tower_jwt_auth::JsonClaims>(&token)
            .map(|_| ())
            .map_err(|e| e.reason());
        let want = model(&c);
        let key = match (&got, &want) {
            (Ok(()), Ok(())) => "accepted".to_owned(),
            (Err(reason), Err(allowed)) if allowed.contains(reason) => format!("refused {reason}"),
            _ => {
                return Err(TestCaseError::fail(format!(
                    "payload {} at {} (leeway {}): verifier {got:?}, model {want:?}",
                    payload(&c),
                    c.now,
                    c.leeway
                )));
            }
        };
        *tally.borrow_mut().entry(key).or_default() += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("the claims rules differ from the RFC 7519 model: {e}");
    }
    let tally = tally.into_inner();
    let parts: Vec<String> = tally.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "claims model: {n} claim sets and clocks, verifier = model: {}",
        parts.join(", ")
    );
    // Both sides of every rule are reached.
    for k in [
        "accepted",
        "refused expired",
        "refused not_yet_valid",
        "refused issued_in_future",
        "refused invalid_claim",
    ] {
        assert!(tally.contains_key(k), "no case {k}: {parts:?}");
    }
}
