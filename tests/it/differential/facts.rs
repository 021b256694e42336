//! What a token *is*, read as leniently as the most lenient verifier we
//! compare with reads it: forgiving base64 (as `atob` in Node.js, which jose
//! uses there), a leading UTF-8 BOM dropped (as `TextDecoder` does), JSON
//! read like `JSON.parse` (duplicate members kept in order, numbers out of
//! range kept as infinite, lone surrogates kept). The rows of the table of
//! intended differences (`table.rs`) are predicates over these facts.
//!
//! Shared with the cargo-fuzz target `fuzz/fuzz_targets/differential.rs`
//! (included by path): std, `base64` and `serde_json` only.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A JSON value as `JSON.parse` sees it, with duplicate members kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The value (infinite when out of range) and the text as written.
    Num(f64, String),
    /// The text (a lone surrogate becomes U+FFFD) and whether it had one.
    Str(String, bool),
    Arr(Vec<Json>),
    /// Members in order, duplicates included, and whether a member name
    /// had a lone surrogate.
    Obj(Vec<(String, Json)>, bool),
}

impl Json {
    /// The member `name` as `JSON.parse` resolves it: the last one.
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Obj(members, _) => members
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// How many times the member `name` appears.
    pub fn count(&self, name: &str) -> usize {
        match self {
            Json::Obj(members, _) => members.iter().filter(|(k, _)| k == name).count(),
            _ => 0,
        }
    }

    /// Whether `name` appears more than once.
    pub fn repeated(&self, name: &str) -> bool {
        self.count(name) > 1
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s, false) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(v, _) => Some(*v),
            _ => None,
        }
    }

    /// Whether `name` is present with a value that is not a string.
    pub fn non_string(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !matches!(v, Json::Str(..)))
    }

    /// Whether `name` is present with a value that is not a number.
    pub fn non_number(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !matches!(v, Json::Num(..)))
    }

    /// Whether `name` is present with the value `null`.
    pub fn null(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Json::Null))
    }

    /// Whether this value holds anything serde_json refuses although
    /// `JSON.parse` takes it: a number out of f64 range or a lone surrogate.
    pub fn beyond_serde(&self) -> bool {
        match self {
            Json::Num(v, _) => !v.is_finite(),
            Json::Str(_, lone) => *lone,
            Json::Arr(items) => items.iter().any(Json::beyond_serde),
            Json::Obj(members, lone) => *lone || members.iter().any(|(_, v)| v.beyond_serde()),
            _ => false,
        }
    }

    /// Nesting depth: a scalar is 0, `[]` is 1.
    pub fn depth(&self) -> usize {
        match self {
            Json::Arr(items) => 1 + items.iter().map(Json::depth).max().unwrap_or(0),
            Json::Obj(members, _) => 1 + members.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Parses JSON text as `JSON.parse` does (RFC 8259 grammar; whitespace is
/// space, tab, LF, CR). `None` when it is not JSON at all.
pub fn parse_json(text: &str) -> Option<Json> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        // JSON.parse nests far deeper than any token here; bound our stack.
        if depth > 5000 {
            return None;
        }
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                let mut lone_name = false;
                self.ws();
                if self.eat(b'}') {
                    return Some(Json::Obj(members, false));
                }
                loop {
                    self.ws();
                    let Json::Str(name, lone) = self.string()? else {
                        return None;
                    };
                    lone_name |= lone;
                    self.ws();
                    if !self.eat(b':') {
                        return None;
                    }
                    self.ws();
                    let v = self.value(depth + 1)?;
                    members.push((name, v));
                    self.ws();
                    if self.eat(b'}') {
                        return Some(Json::Obj(members, lone_name));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Some(Json::Arr(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b']') {
                        return Some(Json::Arr(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string(),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            _ => self.number(),
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Option<Json> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Some(v)
        } else {
            None
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i - s
        };
        if self.eat(b'0') {
        } else if digits(self) == 0 {
            return None;
        }
        if self.eat(b'.') && digits(self) == 0 {
            return None;
        }
        if self.s.get(self.i).is_some_and(|b| *b == b'e' || *b == b'E') {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if digits(self) == 0 {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        // Rust's parser, like JavaScript's, rounds to nearest and overflows to infinity.
        let v: f64 = text.parse().ok()?;
        Some(Json::Num(v, text.to_owned()))
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.i += 4;
        Some(v)
    }

    fn string(&mut self) -> Option<Json> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        let mut lone = false;
        loop {
            let b = *self.s.get(self.i)?;
            match b {
                b'"' => {
                    self.i += 1;
                    return Some(Json::Str(out, lone));
                }
                b'\\' => {
                    self.i += 1;
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            if (0xD800..0xDC00).contains(&u) && self.s[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    let c = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                                    out.push(char::from_u32(c)?);
                                    continue;
                                }
                                self.i = save;
                            }
                            match char::from_u32(u) {
                                Some(c) => out.push(c),
                                None => {
                                    lone = true;
                                    out.push('\u{FFFD}');
                                }
                            }
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => {
                    // Copy one UTF-8 character (the input is valid UTF-8).
                    let len = match b {
                        0..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    out.push_str(std::str::from_utf8(self.s.get(self.i..self.i + len)?).ok()?);
                    self.i += len;
                }
            }
        }
    }
}

/// Forgiving base64url (the WHATWG "forgiving-base64 decode" behind `atob`,
/// with the URL-safe alphabet as jose maps it): ASCII whitespace removed,
/// `=` padding allowed when the length is a multiple of four, stray
/// trailing bits ignored. `None` when even that fails.
pub fn lenient_b64(segment: &str) -> Option<Vec<u8>> {
    if segment.contains(['+', '/']) {
        return None;
    }
    let mut s: String = segment
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' '))
        .collect();
    if s.len().is_multiple_of(4) {
        for _ in 0..2 {
            if s.ends_with('=') {
                s.pop();
            }
        }
    }
    if s.len() % 4 == 1
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    // Clear the stray bits of the last character, then decode strictly.
    if !s.is_empty() && !s.len().is_multiple_of(4) {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = s.pop().unwrap();
        let v = ALPHABET.iter().position(|b| *b as char == last).unwrap();
        let keep = if s.len() % 4 == 1 { 0b110000 } else { 0b111100 };
        s.push(ALPHABET[v & keep] as char);
    }
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// One base64url segment of a token.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// The segment as written.
    pub text: String,
    /// Decodes only leniently: padding, whitespace or stray bits.
    pub noncanonical: bool,
    /// The bytes, decoded leniently (`None`: not even that).
    pub bytes: Option<Vec<u8>>,
    /// The bytes start with a UTF-8 BOM.
    pub bom: bool,
    /// The bytes are UTF-8.
    pub utf8: bool,
    /// The JSON the bytes hold, read like `JSON.parse` after a BOM is dropped.
    pub json: Option<Json>,
}

impl Segment {
    pub fn new(text: &str) -> Segment {
        let strict = URL_SAFE_NO_PAD.decode(text).ok();
        let bytes = strict.clone().or_else(|| lenient_b64(text));
        let mut seg = Segment {
            text: text.to_owned(),
            noncanonical: strict.is_none() && bytes.is_some(),
            ..Segment::default()
        };
        if let Some(b) = &bytes {
            seg.bom = b.starts_with(b"\xEF\xBB\xBF");
            if let Ok(s) = std::str::from_utf8(b) {
                seg.utf8 = true;
                seg.json = parse_json(s.strip_prefix('\u{FEFF}').unwrap_or(s));
            }
        }
        seg.bytes = bytes;
        seg
    }

    /// The JSON object the segment holds, if it holds one.
    pub fn object(&self) -> Option<&Json> {
        self.json.as_ref().filter(|j| matches!(j, Json::Obj(..)))
    }
}

/// What a token is, and the clock and leeway it was judged with.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub token: String,
    /// Dot-separated parts.
    pub segments: usize,
    pub header: Segment,
    pub payload: Segment,
    pub signature: Segment,
    /// The clock (seconds since the epoch) all verifiers were given or read.
    pub now: i64,
    /// Clock-skew leeway in seconds, the same for all verifiers.
    pub leeway: i64,
    /// For a public vector, compared at the signature level: its key.
    pub vector: Option<VectorKey>,
}

/// The key a public vector is verified with: one JWK, or a key set.
#[derive(Debug, Clone, Default)]
pub struct VectorKey {
    pub jwk: Option<serde_json::Value>,
    pub set: Option<serde_json::Value>,
}

impl Facts {
    pub fn new(token: &str, now: i64, leeway: i64) -> Facts {
        let parts: Vec<&str> = token.split('.').collect();
        let seg = |i: usize| parts.get(i).map(|p| Segment::new(p)).unwrap_or_default();
        Facts {
            token: token.to_owned(),
            segments: parts.len(),
            header: if parts.len() == 3 {
                seg(0)
            } else {
                Segment::default()
            },
            payload: if parts.len() == 3 {
                seg(1)
            } else {
                Segment::default()
            },
            signature: if parts.len() == 3 {
                seg(2)
            } else {
                Segment::default()
            },
            now,
            leeway,
            vector: None,
        }
    }

    /// A public vector's token with the key it is verified with.
    pub fn for_vector(
        token: &str,
        jwk: Option<&serde_json::Value>,
        set: Option<&serde_json::Value>,
    ) -> Facts {
        Facts {
            vector: Some(VectorKey {
                jwk: jwk.cloned(),
                set: set.cloned(),
            }),
            ..Facts::new(token, 0, 0)
        }
    }

    /// The header as a JSON object (lenient reading).
    pub fn h(&self) -> Option<&Json> {
        self.header.object()
    }

    /// The payload as a JSON object (lenient reading).
    pub fn p(&self) -> Option<&Json> {
        self.payload.object()
    }

    /// The header `alg`, if it is a string.
    pub fn alg(&self) -> Option<&str> {
        self.h()?.get("alg")?.as_str()
    }

    /// A header member is present.
    pub fn header_has(&self, name: &str) -> bool {
        self.h().is_some_and(|h| h.get(name).is_some())
    }

    /// Any of the three segments is not canonical base64url.
    pub fn noncanonical_b64(&self) -> bool {
        self.header.noncanonical || self.payload.noncanonical || self.signature.noncanonical
    }

    /// A NumericDate claim as a finite number.
    pub fn time(&self, name: &str) -> Option<f64> {
        self.p()?.get(name)?.as_f64().filter(|v| v.is_finite())
    }

    /// Whether a time claim with a fraction of a second lies within a
    /// second of its decision edge for this clock: there, a verifier that
    /// reads the clock to the nanosecond and one that rounds to seconds may
    /// both be right. (Whole seconds decide alike; the generator keeps
    /// fractions two seconds away.)
    pub fn sub_second_edge(&self) -> bool {
        let (now, l) = (self.now as f64, self.leeway as f64);
        let near = |v: f64, edge: f64| v.fract() != 0.0 && (v - edge).abs() < 1.0;
        self.time("exp").is_some_and(|e| near(e, now - l))
            || self.time("nbf").is_some_and(|n| near(n, now + l))
            || self.time("iat").is_some_and(|i| near(i, now + l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_json() {
        let j = parse_json(r#"{"a":1,"a":2,"s":"\ud800x","n":1e400}"#).unwrap();
        assert!(j.repeated("a"));
        assert_eq!(j.get("a").unwrap().as_f64(), Some(2.0));
        assert!(j.beyond_serde());
        assert!(parse_json("{").is_none());
        assert!(parse_json("01").is_none());
        assert_eq!(
            parse_json(r#""\ud83d\ude00""#),
            Some(Json::Str("😀".into(), false))
        );
    }

    #[test]
    fn forgiving_base64() {
        assert_eq!(lenient_b64("YWI=").unwrap(), b"ab");
        assert_eq!(lenient_b64("YW I").unwrap(), b"ab");
        assert_eq!(lenient_b64("YWJ").unwrap(), b"ab");
        assert!(lenient_b64("YW+/").is_none());
        assert!(lenient_b64("YWI==").is_none());
        assert!(lenient_b64("Y").is_none());
    }
}
