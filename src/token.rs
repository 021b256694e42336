//! Compact JWS parsing: three strict base64url segments and a JOSE header
//! that names no key of its own and no extension we do not understand.

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

/// A header member whose mere presence matters.
/// A header string (`kid`, `typ`): inline when it fits, as almost every
/// one does, so parsing a header allocates nothing.
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

/// Splits and checks a compact JWS. Does not verify anything.
pub(crate) fn parse(token: &str) -> Result<Jws<'_>, AuthError> {
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
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.c2ln", e.encode(header), e.encode("{}"))
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
