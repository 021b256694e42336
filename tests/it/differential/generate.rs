//! The structured generator: tokens built like valid ones, then mutated
//! where verifiers differ in practice: header members (`alg`, `kid`, `typ`,
//! `cty`, `crit`, `b64`, key references, members jsonwebtoken types),
//! duplicate members, escapes and unicode, base64url alphabet, padding and
//! whitespace, byte-order marks and invalid UTF-8, segment counts, the
//! signature, claim types and number forms, and times on both sides of the
//! `exp` / `nbf` / `iat` edges with leeway.
//!
//! A [`Spec`] is rendered against the clock at the moment of comparison,
//! so "one second past `exp` plus leeway" means exactly that.

use proptest::prelude::*;
use proptest::sample::Index;
use tower_jwt_auth::Algorithm;

use crate::differential::common::{b64, sign_bytes};
use crate::differential::oracles::{AUDIENCE, ISSUER, kid};

/// A JSON member value: literal text, or a time relative to a clock edge.
#[derive(Debug, Clone)]
pub enum Val {
    Raw(String),
    Time {
        edge: Edge,
        delta: i64,
        frac: Option<f64>,
        form: Form,
    },
    /// Derived from the signing algorithm when rendered.
    Signer(Own),
}

/// A header value made from the signer's algorithm name or kid.
#[derive(Debug, Clone, Copy)]
pub enum Own {
    Alg,
    AlgEscaped,
    AlgLowercase,
    AlgTrailingSpace,
    Kid,
    KidEscaped,
}

/// The instant a time claim is measured from.
#[derive(Debug, Clone, Copy)]
pub enum Edge {
    /// `now - leeway`: `exp` at or before it has expired.
    Exp,
    /// `now + leeway`: `nbf` / `iat` after it lies too far in the future.
    Future,
}

/// How a number is written.
#[derive(Debug, Clone, Copy)]
pub enum Form {
    Int,
    DotZero,
    Exponent,
}

/// How a base64url segment is spoiled after encoding.
#[derive(Debug, Clone)]
pub enum Tweak {
    None,
    Pad(&'static str),
    Space(Index, char),
    StdAlphabet,
    StrayBits,
    DropLast,
    NonAscii(Index),
}

/// What happens to the JSON bytes before encoding.
#[derive(Debug, Clone, Copy)]
pub enum Bytes {
    Plain,
    Bom,
    InvalidUtf8,
}

#[derive(Debug, Clone, Copy)]
pub enum Sig {
    Valid,
    FlipBit,
    Truncate,
    Empty,
    OtherKey,
}

#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Three,
    NoSignature,
    ExtraSegment,
    EmptyExtra,
    Five,
    LeadingSpace,
    TrailingNewline,
}

/// One token to compare.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The key that signs (whatever the header says).
    pub signer: Algorithm,
    /// Header members: name as JSON text (with quotes), value.
    pub header: Vec<(String, Val)>,
    pub payload: Vec<(String, Val)>,
    /// Spaces around JSON punctuation.
    pub spaced: bool,
    pub header_bytes: Bytes,
    pub payload_bytes: Bytes,
    pub tweaks: [Tweak; 3],
    pub sig: Sig,
    pub shape: Shape,
    pub leeway: i64,
}

impl Val {
    fn render(&self, now: i64, leeway: i64, signer: Algorithm) -> String {
        match self {
            Val::Raw(s) => s.clone(),
            Val::Signer(own) => {
                let name = signer.as_str();
                match own {
                    Own::Alg => q(name),
                    Own::AlgEscaped => escaped(name),
                    Own::AlgLowercase => q(&name.to_ascii_lowercase()),
                    Own::AlgTrailingSpace => q(&format!("{name} ")),
                    Own::Kid => q(&kid(signer)),
                    Own::KidEscaped => escaped(&kid(signer)),
                }
            }
            Val::Time {
                edge,
                delta,
                frac,
                form,
            } => {
                let base = match edge {
                    Edge::Exp => now - leeway,
                    Edge::Future => now + leeway,
                };
                let v = base + delta;
                match (frac, form) {
                    (Some(f), _) => format!("{}", v as f64 + f),
                    (None, Form::Int) => v.to_string(),
                    (None, Form::DotZero) => format!("{v}.0"),
                    (None, Form::Exponent) => format!("{:e}", v as f64),
                }
            }
        }
    }
}

fn object(
    members: &[(String, Val)],
    spaced: bool,
    now: i64,
    leeway: i64,
    signer: Algorithm,
) -> String {
    let (colon, comma) = if spaced { (" : ", " ,\n ") } else { (":", ",") };
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{k}{colon}{}", v.render(now, leeway, signer)))
        .collect();
    if spaced {
        format!("{{ {} }}", body.join(comma))
    } else {
        format!("{{{}}}", body.join(comma))
    }
}

fn spoil_bytes(json: String, how: Bytes) -> Vec<u8> {
    match how {
        Bytes::Plain => json.into_bytes(),
        Bytes::Bom => [b"\xEF\xBB\xBF".as_slice(), json.as_bytes()].concat(),
        Bytes::InvalidUtf8 => {
            // A byte that is never UTF-8, inside the first string.
            let mut b = json.into_bytes();
            match b.iter().position(|c| *c == b'"') {
                Some(i) => b.insert(i + 1, 0xFF),
                None => b.push(0xFF),
            }
            b
        }
    }
}

fn spoil_segment(seg: String, how: &Tweak) -> String {
    match how {
        Tweak::None => seg,
        Tweak::Pad(p) => seg + p,
        Tweak::Space(at, c) => {
            let mut s = seg;
            let i = at.index(s.len() + 1);
            s.insert(i, *c);
            s
        }
        Tweak::StdAlphabet => seg.replace('-', "+").replace('_', "/"),
        Tweak::StrayBits => {
            const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut s = seg;
            if s.len() % 4 >= 2
                && let Some(last) = s.pop()
            {
                let v = A.find(last).unwrap_or(0);
                let stray = if s.len() % 4 == 1 { 0b001111 } else { 0b000011 };
                // Set the low bits that must be zero (keep it a new character).
                s.push(A.as_bytes()[v | stray] as char);
            }
            s
        }
        Tweak::DropLast => {
            let mut s = seg;
            s.pop();
            s
        }
        Tweak::NonAscii(at) => {
            let mut s = seg;
            let i = at.index(s.len() + 1);
            s.insert(i, 'é');
            s
        }
    }
}

impl Spec {
    /// The token for the clock `now` (seconds).
    pub fn render(&self, now: i64) -> String {
        let (signer, leeway) = (self.signer, self.leeway);
        let header = spoil_bytes(
            object(&self.header, self.spaced, now, leeway, signer),
            self.header_bytes,
        );
        let payload = spoil_bytes(
            object(&self.payload, self.spaced, now, leeway, signer),
            self.payload_bytes,
        );
        let h = spoil_segment(b64(header), &self.tweaks[0]);
        let p = spoil_segment(b64(payload), &self.tweaks[1]);
        let input = format!("{h}.{p}");
        let mut sig = sign_bytes(
            self.signer,
            input.as_bytes(),
            matches!(self.sig, Sig::OtherKey),
        );
        match self.sig {
            Sig::FlipBit => sig[0] ^= 1,
            Sig::Truncate => {
                sig.pop();
            }
            Sig::Empty => sig.clear(),
            Sig::Valid | Sig::OtherKey => {}
        }
        let s = spoil_segment(b64(sig), &self.tweaks[2]);
        match self.shape {
            Shape::Three => format!("{input}.{s}"),
            Shape::NoSignature => input,
            Shape::ExtraSegment => format!("{input}.{s}.{p}"),
            Shape::EmptyExtra => format!("{input}.{s}."),
            Shape::Five => format!("{input}.{s}.{p}.{s}"),
            Shape::LeadingSpace => format!(" {input}.{s}"),
            Shape::TrailingNewline => format!("{input}.{s}\n"),
        }
    }
}

fn raw(s: impl Into<String>) -> Val {
    Val::Raw(s.into())
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A JSON string literal written with its first character as a `\u` escape.
fn escaped(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => format!("\"\\u{:04x}{}", c as u32, &q(chars.as_str())[1..]),
        None => q(s),
    }
}

/// Printable ASCII, up to `max` characters (cheaper than a regex strategy).
fn ascii(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(proptest::char::range(' ', '~'), 0..=max)
        .prop_map(|v| v.into_iter().collect())
}

/// Any Unicode text, up to `max` characters, mostly printable ASCII.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![3 => proptest::char::range(' ', '~'), 1 => any::<char>()],
        0..=max,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// Odd JSON values: what parsers disagree on.
fn odd_json() -> impl Strategy<Value = String> {
    let deep = format!("{}{}", "[".repeat(130), "]".repeat(130));
    prop_oneof![
        prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1E2",
            "0.1",
            "1e400",
            "-1e400",
            "123456789012345678901234567890",
            "18446744073709551616",
            "[]",
            "{}",
            "\"\"",
            "\"\\ud800\"",
            "\"x\\udc00\"",
            "\"\\ud83d\\ude00\"",
            "\"é ü 中\"",
            "\"\\u0000\"",
            "{\"a\":1,\"a\":2}",
            "[1,\"a\",null]",
            "\"\\/\"",
        ])
        .prop_map(str::to_owned),
        Just(deep),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        ascii(12).prop_map(|s| q(&s)),
        text(6).prop_map(|s| q(&s)),
    ]
}

const NAMES: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA",
];

fn alg_value() -> impl Strategy<Value = Option<Val>> {
    prop_oneof![
        40 => Just(Some(Val::Signer(Own::Alg))),
        2 => prop::sample::select(&NAMES[..]).prop_map(|n| Some(raw(q(n)))),
        1 => Just(Some(Val::Signer(Own::AlgEscaped))),
        1 => Just(Some(Val::Signer(Own::AlgLowercase))),
        1 => prop::sample::select(vec!["\"none\"", "\"None\"", "\"\"", "\"HS1\"", "5", "null", "[\"RS256\"]"])
            .prop_map(|s| Some(raw(s))),
        1 => Just(Some(Val::Signer(Own::AlgTrailingSpace))),
        1 => Just(None),
    ]
}

fn kid_value() -> impl Strategy<Value = Option<Val>> {
    prop_oneof![
        24 => Just(Some(Val::Signer(Own::Kid))),
        12 => Just(None),
        1 => prop::sample::select(&NAMES[..]).prop_map(|n| Some(raw(q(&n.to_ascii_lowercase())))),
        1 => Just(Some(Val::Signer(Own::KidEscaped))),
        1 => prop::sample::select(vec!["\"unknown\"", "\"\"", "5", "null", "[]", "{}"])
            .prop_map(|s| Some(raw(s))),
    ]
}

fn optional(weight_none: u32, values: Vec<&'static str>) -> impl Strategy<Value = Option<Val>> {
    prop_oneof![
        weight_none => Just(None),
        1 => prop::sample::select(values).prop_map(|s| Some(raw(s))),
    ]
}

/// Extension members: `crit` and `b64` in the combinations that matter.
fn extension() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    prop_oneof![
        24 => Just(vec![]),
        1 => prop::sample::select(vec![
            vec![("crit", "[\"b64\"]"), ("b64", "true")],
            vec![("crit", "[\"b64\"]"), ("b64", "false")],
            vec![("crit", "[]")],
            vec![("crit", "[\"exp\"]"), ("exp", "1")],
            vec![("crit", "[\"x\"]")],
            vec![("crit", "\"b64\"")],
            vec![("crit", "[5]")],
            vec![("crit", "null")],
            vec![("b64", "true")],
            vec![("b64", "false")],
            vec![("b64", "\"x\"")],
            vec![("b64", "null")],
        ]),
    ]
}

/// Members a verifier may use to find a key, or types in its header struct.
fn other_header_member() -> impl Strategy<Value = (&'static str, String)> {
    (
        prop::sample::select(vec![
            "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "enc", "zip", "url", "nonce",
        ]),
        prop_oneof![
            Just("\"AQAB\"".to_owned()),
            Just("[\"MIIB\"]".to_owned()),
            Just(r#"{"kty":"oct","k":"AQAB"}"#.to_owned()),
            odd_json(),
        ],
    )
}

fn header() -> impl Strategy<Value = Vec<(String, Val)>> {
    (
        alg_value(),
        kid_value(),
        optional(
            6,
            vec![
                "\"JWT\"",
                "\"JWT\"",
                "\"at+jwt\"",
                "\"jwt\"",
                "\"JWT\"",
                "5",
                "null",
            ],
        ),
        optional(
            20,
            vec!["\"JWT\"", "\"application/jwt\"", "\"json\"", "5", "null"],
        ),
        extension(),
        prop_oneof![12 => Just(vec![]), 1 => other_header_member().prop_map(|m| vec![m])],
        prop::collection::vec(
            (
                "[a-z]{1,3}",
                prop_oneof![4 => ascii(12).prop_map(|s| q(&s)), 1 => odd_json()],
            ),
            0..3,
        ),
    )
        .prop_map(|(alg, kid, typ, cty, ext, others, extra)| {
            let mut m: Vec<(String, Val)> = Vec::new();
            for (k, v) in [("alg", alg), ("kid", kid), ("typ", typ), ("cty", cty)] {
                if let Some(v) = v {
                    m.push((q(k), v));
                }
            }
            for (k, v) in ext {
                m.push((q(k), raw(v)));
            }
            for (k, v) in others
                .into_iter()
                .chain(extra.iter().map(|(k, v)| (k.as_str(), v.clone())))
            {
                m.push((q(k), raw(v)));
            }
            m
        })
}

fn time(edge: Edge) -> impl Strategy<Value = Val> {
    let form = prop::sample::select(vec![Form::Int, Form::Int, Form::DotZero, Form::Exponent]);
    // `exp` mostly in the future, `nbf` / `iat` mostly in the past.
    let far_ok = match edge {
        Edge::Exp => 4i64..200_000,
        Edge::Future => -200_000i64..-4,
    };
    prop_oneof![
        // At the edge, one second either side, and a little further.
        2 => (-3i64..=3, form.clone()).prop_map(move |(delta, form)| Val::Time { edge, delta, frac: None, form }),
        // Far on the valid side, or far on the other.
        8 => (far_ok, form.clone()).prop_map(move |(delta, form)| Val::Time { edge, delta, frac: None, form }),
        1 => (prop_oneof![-200_000i64..-4, 4i64..200_000], form)
            .prop_map(move |(delta, form)| Val::Time { edge, delta, frac: None, form }),
        // Fractional, never within two seconds of the edge (a verifier
        // reading the clock to the nanosecond and one reading seconds
        // both decide there, and differently, by design).
        1 => (prop_oneof![-100_000i64..-2, 2i64..100_000], prop::sample::select(vec![0.25, 0.5, 0.75]))
            .prop_map(move |(delta, f)| Val::Time { edge, delta, frac: Some(f), form: Form::Int }),
    ]
}

fn wrong_time() -> impl Strategy<Value = Val> {
    prop::sample::select(vec![
        "\"1700000000\"",
        "true",
        "null",
        "[]",
        "{}",
        "1e400",
        "-1e400",
        "-1",
        "-1.5",
        "1e20",
        "18446744073709551615",
        "18446744073709551616",
        "0",
        "-0",
    ])
    .prop_map(raw)
}

/// Where the registered claims come from: right, wrong or missing.
fn payload() -> impl Strategy<Value = Vec<(String, Val)>> {
    let iss = prop_oneof![
        30 => Just(Some(raw(q(ISSUER)))),
        1 => Just(Some(raw("\"https:\\/\\/issuer.test\""))),
        1 => prop::sample::select(vec!["\"https://other.test\"", "[\"https://issuer.test\"]", "5", "null", "\"\""])
            .prop_map(|s| Some(raw(s))),
        1 => Just(None),
    ];
    let aud = prop_oneof![
        20 => Just(Some(raw(q(AUDIENCE)))),
        6 => prop::sample::select(vec!["[\"api\"]", "[\"x\",\"api\"]", "[\"x\",\"api\",\"x\"]"]).prop_map(|s| Some(raw(s))),
        2 => prop::sample::select(vec!["[]", "[\"x\"]", "\"x\"", "[1,\"api\"]", "[\"api\",null]", "5", "null", "\"API\"", "{\"a\":\"api\"}"])
            .prop_map(|s| Some(raw(s))),
        1 => Just(None),
    ];
    let exp = prop_oneof![
        30 => time(Edge::Exp).prop_map(Some),
        1 => wrong_time().prop_map(Some),
        1 => Just(None),
    ];
    let nbf = prop_oneof![
        24 => Just(None),
        16 => time(Edge::Future).prop_map(Some),
        1 => wrong_time().prop_map(Some),
    ];
    let iat = prop_oneof![
        16 => Just(None),
        16 => time(Edge::Future).prop_map(Some),
        2 => time(Edge::Exp).prop_map(Some),
        1 => wrong_time().prop_map(Some),
    ];
    let string = |none: u32| {
        prop_oneof![
            none => Just(None),
            16 => text(8).prop_map(|s| Some(raw(q(&s)))),
            1 => prop::sample::select(vec!["5", "null", "[\"a\"]", "{}", "true"]).prop_map(|s| Some(raw(s))),
        ]
    };
    let extra = prop::collection::vec(
        (
            "[a-z]{1,4}",
            prop_oneof![4 => ascii(12).prop_map(|s| q(&s)), 1 => odd_json()],
        ),
        0..3,
    );
    (iss, aud, exp, nbf, iat, string(8), string(16), extra).prop_map(
        |(iss, aud, exp, nbf, iat, sub, jti, extra)| {
            let mut m: Vec<(String, Val)> = Vec::new();
            for (k, v) in [
                ("iss", iss),
                ("aud", aud),
                ("exp", exp),
                ("nbf", nbf),
                ("iat", iat),
                ("sub", sub),
                ("jti", jti),
            ] {
                if let Some(v) = v {
                    m.push((q(k), v));
                }
            }
            for (k, v) in extra {
                m.push((q(&k), raw(v)));
            }
            m
        },
    )
}

/// How [`reshape`] changes a member list: a member to repeat (with another
/// value, or the same), a name to write with an escape, swaps.
type Reshape = (Option<(Index, Option<String>)>, Option<Index>, Vec<Index>);

/// Duplicates one member (same or another value), or writes a name with an
/// escape: what a JSON parser that keeps the last member hides.
fn reshape(
    members: Vec<(String, Val)>,
    dup: Option<(Index, Option<String>)>,
    escape: Option<Index>,
    order: Vec<Index>,
) -> Vec<(String, Val)> {
    let mut m = members;
    if m.is_empty() {
        return m;
    }
    if let Some(i) = escape {
        let i = i.index(m.len());
        let name: String = serde_json::from_str(&m[i].0).unwrap();
        m[i].0 = escaped(&name);
    }
    if let Some((i, value)) = dup {
        let (k, v) = m[i.index(m.len())].clone();
        m.push((k, value.map(raw).unwrap_or(v)));
    }
    // A few swaps: member order varies.
    for (n, j) in order.iter().enumerate() {
        let a = n % m.len();
        let b = j.index(m.len());
        m.swap(a, b);
    }
    m
}

fn reshaping() -> impl Strategy<Value = Reshape> {
    (
        prop_oneof![16 => Just(None), 1 => (any::<Index>(), prop::option::of(odd_json())).prop_map(Some)],
        prop_oneof![12 => Just(None), 1 => any::<Index>().prop_map(Some)],
        prop::collection::vec(any::<Index>(), 0..3),
    )
}

fn tweak() -> impl Strategy<Value = Tweak> {
    prop_oneof![
        80 => Just(Tweak::None),
        1 => prop::sample::select(vec!["=", "=="]).prop_map(Tweak::Pad),
        1 => (any::<Index>(), prop::sample::select(vec![' ', '\n', '\t', '\r'])).prop_map(|(i, c)| Tweak::Space(i, c)),
        1 => Just(Tweak::StdAlphabet),
        1 => Just(Tweak::StrayBits),
        1 => Just(Tweak::DropLast),
        1 => any::<Index>().prop_map(Tweak::NonAscii),
    ]
}

fn bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![60 => Just(Bytes::Plain), 1 => Just(Bytes::Bom), 1 => Just(Bytes::InvalidUtf8)]
}

/// The generator: mostly tokens that should pass, each with a few mutations.
pub fn spec() -> impl Strategy<Value = Spec> {
    // RSA signing is slow in debug builds: the six RSA algorithms together
    // get about a quarter of the cases.
    let signer = prop_oneof![
        1 => prop::sample::select(Algorithm::ALL[3..9].to_vec()),
        3 => prop::sample::select([&Algorithm::ALL[..3], &Algorithm::ALL[9..]].concat()),
    ];
    let sig = prop_oneof![
        40 => Just(Sig::Valid),
        1 => prop::sample::select(vec![Sig::FlipBit, Sig::Truncate, Sig::Empty, Sig::OtherKey]),
    ];
    let shape = prop_oneof![
        60 => Just(Shape::Three),
        1 => prop::sample::select(vec![
            Shape::NoSignature, Shape::ExtraSegment, Shape::EmptyExtra, Shape::Five,
            Shape::LeadingSpace, Shape::TrailingNewline,
        ]),
    ];
    (
        signer,
        (header(), reshaping()),
        (payload(), reshaping()),
        any::<bool>(),
        (bytes(), bytes()),
        (tweak(), tweak(), tweak()),
        sig,
        shape,
        prop::sample::select(vec![0i64, 1, 30, 60, 300]),
    )
        .prop_map(
            |(
                signer,
                (h, (hd, he, ho)),
                (p, (pd, pe, po)),
                spaced,
                (hb, pb),
                (t0, t1, t2),
                sig,
                shape,
                leeway,
            )| Spec {
                signer,
                header: reshape(h, hd, he, ho),
                payload: reshape(p, pd, pe, po),
                spaced,
                header_bytes: hb,
                payload_bytes: pb,
                tweaks: [t0, t1, t2],
                sig,
                shape,
                leeway,
            },
        )
}

/// A valid token's spec for `signer`: the base the table's examples mutate.
pub fn valid(signer: Algorithm) -> Spec {
    Spec {
        signer,
        header: vec![
            (q("alg"), raw(q(signer.as_str()))),
            (q("kid"), raw(q(&kid(signer)))),
        ],
        payload: vec![
            (q("iss"), raw(q(ISSUER))),
            (q("aud"), raw(q(AUDIENCE))),
            (
                q("exp"),
                Val::Time {
                    edge: Edge::Exp,
                    delta: 3600,
                    frac: None,
                    form: Form::Int,
                },
            ),
            (q("sub"), raw(q("user-1"))),
        ],
        spaced: false,
        header_bytes: Bytes::Plain,
        payload_bytes: Bytes::Plain,
        tweaks: [Tweak::None, Tweak::None, Tweak::None],
        sig: Sig::Valid,
        shape: Shape::Three,
        leeway: 30,
    }
}

impl Spec {
    /// Sets header member `name` (JSON value text), replacing it if present.
    pub fn h(mut self, name: &str, value: &str) -> Spec {
        set(&mut self.header, name, raw(value));
        self
    }

    /// Appends a header member even if present (a duplicate).
    pub fn h_dup(mut self, name: &str, value: &str) -> Spec {
        self.header.push((q(name), raw(value)));
        self
    }

    /// Sets payload member `name`.
    pub fn p(mut self, name: &str, value: &str) -> Spec {
        set(&mut self.payload, name, raw(value));
        self
    }

    /// Sets a time claim relative to an edge.
    pub fn t(mut self, name: &str, edge: Edge, delta: i64) -> Spec {
        set(
            &mut self.payload,
            name,
            Val::Time {
                edge,
                delta,
                frac: None,
                form: Form::Int,
            },
        );
        self
    }

    pub fn p_dup(mut self, name: &str, value: &str) -> Spec {
        self.payload.push((q(name), raw(value)));
        self
    }

    pub fn tweak(mut self, segment: usize, t: Tweak) -> Spec {
        self.tweaks[segment] = t;
        self
    }

    pub fn header_bytes(mut self, b: Bytes) -> Spec {
        self.header_bytes = b;
        self
    }

    pub fn shape(mut self, s: Shape) -> Spec {
        self.shape = s;
        self
    }
}

fn set(members: &mut Vec<(String, Val)>, name: &str, v: Val) {
    let n = q(name);
    match members.iter_mut().find(|(k, _)| *k == n) {
        Some(m) => m.1 = v,
        None => members.push((n, v)),
    }
}
