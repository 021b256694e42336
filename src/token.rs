//! Compact JWS parsing: three strict base64url segments and a JOSE header
//! that names no key of its own and no extension we do not understand.

use crate::store::PerformanceCache;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use crate::algorithm::Algorithm;
use crate::b64;
use crate::claims::{Text, present};
use crate::error::AuthError;

/// A compact JWS split into its parts, with its header read and checked.
pub(crate) struct Jws<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<Short>,
    pub(crate) typ: Option<Short>,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'t str,
    pub(crate) payload: &'t str,
    pub(crate) signature: &'t str,
}

/// A header string (`kid`, `typ`): inline when it fits, as almost every
/// one does, so parsing a header allocates nothing.
#[derive(Clone)]
pub(crate) enum Short {
    Inline { len: u8, bytes: [u8; SHORT] },
    Heap(Box<str>),
}

/// Bytes a [`Short`] holds inline.
const SHORT: usize = 62;

impl Short {
    fn new(text: &str) -> Short {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= SHORT => {
                let mut bytes = [0u8; SHORT];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Short::Inline { len, bytes }
            }
            _ => Short::Heap(text.into()),
        }
    }
}

impl std::ops::Deref for Short {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            // Copied from a `str` whole: always UTF-8.
            Short::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Short::Heap(text) => text,
        }
    }
}

/// A header member whose mere presence matters.
#[derive(Default)]
pub(crate) struct Present(pub(crate) bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// The members we read; `null` for any of them is a value of the wrong
/// type (see `claims::present`), not an absent member.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    alg: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    kid: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    typ: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    cty: Option<Text<'a>>,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    jwk: Present,
    #[serde(default)]
    jku: Present,
    #[serde(default)]
    x5u: Present,
    #[serde(default)]
    x5c: Present,
    #[serde(default)]
    b64: Present,
}

/// True when `bytes` is a JSON object (first non-whitespace byte `{`), so
/// that serde never reads a struct from a JSON array.
pub(crate) fn is_json_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|b| *b == b'{')
}

/// Parsed headers of recently verified tokens, by their exact base64url
/// text: the tokens of one issuer share a handful of headers (one per
/// key), so most requests skip the header's decoding and JSON parse for a
/// compare of its bytes. Parsing is a pure function of those bytes, so a
/// hit answers exactly what a parse would; only headers of tokens whose
/// signature verified are remembered, so a client cannot churn it. Slots
/// are `arc-swap` cells: a lookup takes no lock and writes no shared
/// cache line, so it scales with cores.
///
/// Performance cache: may forget; forgetting costs only a header parse.
/// It holds [`MEMO_SLOTS`] headers, direct-mapped: a new header always
/// replaces the one in its slot.
pub(crate) struct HeaderMemo {
    slots: PerformanceCache<[arc_swap::ArcSwapOption<Remembered>; MEMO_SLOTS]>,
}

impl Default for HeaderMemo {
    fn default() -> Self {
        HeaderMemo {
            slots: PerformanceCache::may_forget(Default::default(), "a header parse"),
        }
    }
}

const MEMO_SLOTS: usize = 4;

/// One remembered header: its text and what it parsed to.
struct Remembered {
    text: Box<str>,
    alg: Algorithm,
    kid: Option<Short>,
    typ: Option<Short>,
}

impl HeaderMemo {
    /// The slot a header text maps to (direct-mapped: headers of one
    /// issuer differ in their `kid`, near the end).
    fn slot(&self, text: &str) -> &arc_swap::ArcSwapOption<Remembered> {
        let b = text.as_bytes();
        let mix = b.len()
            ^ usize::from(b.last().copied().unwrap_or(0))
            ^ usize::from(b.get(b.len().wrapping_sub(4)).copied().unwrap_or(0));
        &self.slots[mix % MEMO_SLOTS]
    }

    /// Parses `token`, taking its header from the memo when it is there.
    pub(crate) fn parse<'t>(&self, token: &'t str) -> Result<Jws<'t>, AuthError> {
        let parts = split(token)?;
        if let Some(known) = &*self.slot(parts.header).load()
            && *known.text == *parts.header
        {
            return Ok(Jws {
                alg: known.alg,
                kid: known.kid.clone(),
                typ: known.typ.clone(),
                signing_input: parts.signing_input,
                payload: parts.payload,
                signature: parts.signature,
            });
        }
        header(parts)
    }

    /// Remembers the header of a token whose signature verified.
    pub(crate) fn remember(&self, jws: &Jws<'_>) {
        let text = header_text(jws);
        let slot = self.slot(text);
        if slot.load().as_ref().is_some_and(|k| *k.text == *text) {
            return;
        }
        slot.store(Some(std::sync::Arc::new(Remembered {
            text: text.into(),
            alg: jws.alg,
            kid: jws.kid.clone(),
            typ: jws.typ.clone(),
        })));
    }
}

/// The header's base64url text of a parsed token.
fn header_text<'t>(jws: &Jws<'t>) -> &'t str {
    let len = jws.signing_input.len() - jws.payload.len() - 1;
    &jws.signing_input[..len]
}

/// The three segments of a compact JWS, checked for shape only.
struct Parts<'t> {
    header: &'t str,
    signing_input: &'t str,
    payload: &'t str,
    signature: &'t str,
}

/// Splits and checks a compact JWS. Does not verify anything.
#[cfg(feature = "jwks")]
pub(crate) fn parse(token: &str) -> Result<Jws<'_>, AuthError> {
    header(split(token)?)
}

fn split(token: &str) -> Result<Parts<'_>, AuthError> {
    let (header_b64, rest) = token
        .split_once('.')
        .ok_or(AuthError::Malformed("a JWT has three dot-separated parts"))?;
    let (payload, signature) = rest
        .split_once('.')
        .ok_or(AuthError::Malformed("a JWT has three dot-separated parts"))?;
    if signature.contains('.') {
        return Err(if signature.bytes().filter(|b| *b == b'.').count() == 2 {
            AuthError::Encrypted
        } else {
            AuthError::Malformed("a JWT has three dot-separated parts")
        });
    }
    if header_b64.is_empty() || payload.is_empty() {
        return Err(AuthError::Malformed("empty header or payload"));
    }
    if signature.is_empty() {
        return Err(AuthError::Malformed("the token is unsigned"));
    }
    let signing_input = &token[..header_b64.len() + 1 + payload.len()];
    Ok(Parts {
        header: header_b64,
        signing_input,
        payload,
        signature,
    })
}

/// Decodes and checks the header of a split token.
fn header(parts: Parts<'_>) -> Result<Jws<'_>, AuthError> {
    let Parts {
        header: header_b64,
        signing_input,
        payload,
        signature,
    } = parts;
    // Typical headers decode on the stack; larger ones (up to the token
    // limit) on the heap.
    let mut stack = [0u8; 768];
    let heap: Vec<u8>;
    let not_b64 = AuthError::Malformed("the header is not strict base64url");
    let header_json: &[u8] = if header_b64.len().div_ceil(4) * 3 <= stack.len() {
        let n = b64::decode_into(header_b64.as_bytes(), &mut stack).ok_or(not_b64)?;
        &stack[..n]
    } else {
        heap = b64::decode(header_b64.as_bytes()).ok_or(not_b64)?;
        &heap
    };
    if std::str::from_utf8(header_json).is_err() {
        return Err(AuthError::Malformed("the header is not UTF-8"));
    }
    if !is_json_object(header_json) {
        return Err(AuthError::Malformed("the header is not a JSON object"));
    }
    let header: RawHeader<'_> = serde_json::from_slice(header_json).map_err(|_| {
        AuthError::Malformed(
            "the header is not a valid JOSE header (bad JSON, wrong types or a repeated member)",
        )
    })?;

    for (present, name) in [
        (header.jwk.0, "jwk"),
        (header.jku.0, "jku"),
        (header.x5u.0, "x5u"),
        (header.x5c.0, "x5c"),
    ] {
        if present {
            return Err(AuthError::ForbiddenHeader(name));
        }
    }
    if header.crit.0 || header.b64.0 {
        return Err(AuthError::UnsupportedCrit);
    }
    if header
        .cty
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("JWT") || c.eq_ignore_ascii_case("application/jwt"))
    {
        return Err(AuthError::Malformed(
            "nested tokens (cty: JWT) are not accepted",
        ));
    }
    let alg_name = header
        .alg
        .ok_or(AuthError::Malformed("the header has no `alg`"))?;
    let alg = Algorithm::from_header(&alg_name)
        .ok_or_else(|| AuthError::AlgorithmNotAllowed(crate::text::excerpt(&alg_name)))?;
    Ok(Jws {
        alg,
        kid: header.kid.map(|t| Short::new(&t.0)),
        typ: header.typ.map(|t| Short::new(&t.0)),
        signing_input,
        payload,
        signature,
    })
}

/// `typ` comparison per RFC 7515 §4.1.9: case-insensitive, and the
/// `application/` prefix may be omitted.
pub(crate) fn typ_matches(actual: &str, expected: &str) -> bool {
    fn strip(s: &str) -> &str {
        match s.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => &s[12..],
            _ => s,
        }
    }
    strip(actual).eq_ignore_ascii_case(strip(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(header: &str) -> String {
        use crate::b64::encode;
        format!("{}.{}.c2ln", encode(header), encode("{}"))
    }

    fn same(a: &Jws<'_>, b: &Jws<'_>) -> bool {
        a.alg == b.alg
            && a.kid.as_deref() == b.kid.as_deref()
            && a.typ.as_deref() == b.typ.as_deref()
            && (a.signing_input, a.payload, a.signature)
                == (b.signing_input, b.payload, b.signature)
    }

    #[test]
    fn header_memo_answers_what_a_parse_answers() {
        let memo = HeaderMemo::default();
        let headers = [
            r#"{"alg":"RS256","kid":"k1"}"#,
            r#"{"alg":"RS256","kid":"k2","typ":"at+jwt"}"#,
            r#"{"alg":"ES256","kid":"a-kid-longer-than-sixty-two-bytes-so-it-is-kept-on-the-heap-0123456789"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"RS256","jku":"https://x"}"#,
            r#"{"alg":"RS256","kid":1}"#,
        ];
        for _round in 0..2 {
            for h in headers {
                let t = tok(h);
                match (parse(&t), memo.parse(&t)) {
                    (Ok(a), Ok(b)) => {
                        assert!(same(&a, &b), "{h}");
                        memo.remember(&a);
                        let c = memo.parse(&t).unwrap();
                        assert!(same(&a, &c), "{h}");
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{h}"),
                    _ => panic!("memo and parse disagree on {h}"),
                }
            }
        }
        // A remembered header does not make a malformed token pass: the
        // shape is checked on every parse.
        let t = tok(headers[0]);
        memo.remember(&parse(&t).unwrap());
        let header = t.split('.').next().unwrap();
        for bad in [
            format!("{header}.e30"),
            format!("{header}.e30.c2ln.x.y"),
            format!("{header}..c2ln"),
        ] {
            assert!(memo.parse(&bad).is_err(), "{bad}");
        }
    }

    /// Twice as many headers as slots: each newly remembered header is a
    /// hit at once, and every parse still answers what a parse answers.
    #[test]
    fn header_memo_at_twice_its_slots_keeps_the_newest() {
        let memo = HeaderMemo::default();
        let tokens: Vec<String> = (0..2 * MEMO_SLOTS)
            .map(|i| tok(&format!(r#"{{"alg":"RS256","kid":"k{i}"}}"#)))
            .collect();
        for t in &tokens {
            let parsed = parse(t).unwrap();
            memo.remember(&parsed);
            let header = t.split('.').next().unwrap();
            assert!(
                memo.slot(header)
                    .load()
                    .as_ref()
                    .is_some_and(|k| *k.text == *header),
                "{header} not kept"
            );
        }
        for t in &tokens {
            assert!(same(&parse(t).unwrap(), &memo.parse(t).unwrap()));
        }
    }

    #[test]
    fn shapes() {
        assert!(matches!(parse("a.b"), Err(AuthError::Malformed(_))));
        assert!(matches!(parse("a.b.c.d"), Err(AuthError::Malformed(_))));
        assert!(matches!(parse("a.b.c.d.e"), Err(AuthError::Encrypted)));
        assert!(matches!(parse("a.b."), Err(AuthError::Malformed(_))));
        assert!(matches!(parse(""), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn header_rules() {
        let ok = tok(r#"{"alg":"RS256","kid":"k","typ":"JWT"}"#);
        let jws = parse(&ok).unwrap();
        assert_eq!(jws.alg, Algorithm::RS256);
        assert_eq!(jws.kid.as_deref(), Some("k"));
        for (h, want) in [
            (r#"{"alg":"none"}"#, "alg_not_allowed"),
            (r#"{"alg":"RS256","alg":"HS256"}"#, "malformed"),
            (r#"["RS256"]"#, "malformed"),
            (r#"{"alg":"RS256","jwk":{}}"#, "forbidden_header"),
            (r#"{"alg":"RS256","jku":"http://x"}"#, "forbidden_header"),
            (r#"{"alg":"RS256","x5c":[]}"#, "forbidden_header"),
            (r#"{"alg":"RS256","x5u":"http://x"}"#, "forbidden_header"),
            (r#"{"alg":"RS256","crit":[]}"#, "unsupported_crit"),
            (r#"{"alg":"RS256","crit":["exp"]}"#, "unsupported_crit"),
            (
                r#"{"alg":"RS256","b64":false,"crit":["b64"]}"#,
                "unsupported_crit",
            ),
            (r#"{"alg":"RS256","kid":5}"#, "malformed"),
            // null is a value of the wrong type, not an absent member.
            (r#"{"alg":"RS256","kid":null}"#, "malformed"),
            (r#"{"alg":"RS256","typ":null}"#, "malformed"),
            (r#"{"alg":"RS256","cty":null}"#, "malformed"),
            (r#"{"alg":null}"#, "malformed"),
            (r#"{"alg":"RS256","b64":null}"#, "unsupported_crit"),
            (r#"{"alg":"RS256","cty":"JWT"}"#, "malformed"),
            (r#"{"kid":"x"}"#, "malformed"),
        ] {
            let err = parse(&tok(h))
                .err()
                .unwrap_or_else(|| panic!("{h} accepted"));
            assert_eq!(err.reason(), want, "{h}");
        }
    }

    #[test]
    fn typ_comparison() {
        assert!(typ_matches("at+jwt", "at+JWT"));
        assert!(typ_matches("application/at+jwt", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
    }
}
