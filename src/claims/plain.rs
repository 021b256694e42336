//! The fast path of the strict payload read: a scanner for the plain JSON
//! that nearly every token carries.
//!
//! [`read`] answers only when the whole payload lies in a subset of JSON
//! where `serde_json` (the strict read in `claims.rs`, which stays the one
//! authority) would accept it and read the same registered claims:
//!
//! - strings without escapes or control characters (a plain string is its
//!   own value, borrowed);
//! - numbers in a form that cannot leave the double range (at most 20
//!   integer digits, 100 fraction digits, an exponent of at most 280), and
//!   `exp`/`nbf`/`iat` as integers of at most 15 digits (exact as doubles);
//! - `true`, `false`, `null`, arrays and objects nested at most 32 deep;
//! - each registered claim at most once, with its JSON type.
//!
//! Anything else (an escape, a long or odd number, a repeated or mistyped
//! registered claim, a syntax error) gets `None`, and the caller reads the
//! payload with `serde_json`, which accepts or refuses it with its own
//! message. So this path never refuses anything and never accepts anything
//! the strict read would refuse; `tests` below (every prefix and one-byte change of
//! plain payloads, and random JSON-ish text) check it against `serde_json`,
//! and so does the `payload` fuzz target.

use std::borrow::Cow;

use super::{Audience, NumericDate, RawClaims, Text};

/// Deepest nesting of arrays and objects read here (deeper: `serde_json`).
const MAX_DEPTH: u32 = 32;

/// The registered claims of `payload` when it is plain JSON (see the
/// module); `None`: read it with `serde_json`.
pub(super) fn read(payload: &str) -> Option<RawClaims<'_>> {
    let mut s = Scanner {
        text: payload,
        at: 0,
    };
    s.ws();
    s.eat(b'{')?;
    let mut raw = RawClaims::default();
    s.items(b'}', |s| match s.name()?.as_bytes() {
        b"iss" => once(&mut raw.iss, Text(Cow::Borrowed(s.string()?))),
        b"sub" => once(&mut raw.sub, Text(Cow::Borrowed(s.string()?))),
        b"jti" => once(&mut raw.jti, Text(Cow::Borrowed(s.string()?))),
        b"aud" => {
            let aud = s.audience()?;
            once(&mut raw.aud, aud)
        }
        b"exp" => once(&mut raw.exp, s.date()?),
        b"nbf" => once(&mut raw.nbf, s.date()?),
        b"iat" => once(&mut raw.iat, s.date()?),
        b"cnf" => {
            raw.cnf = true;
            s.value(1)
        }
        _ => s.value(1),
    })?;
    s.ws();
    (s.at == s.text.len()).then_some(raw)
}

/// The index of the first byte that ends a plain string's text: `"`, `\`
/// or a control character (below 0x20). Eight bytes at a time: for each
/// kind, a word whose lowest flagged byte is the first such byte (the
/// borrows of the subtraction only ever flag bytes above a real one).
fn stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let flags = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if flags != 0 {
            return Some(at + (flags.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Fills `slot` if it is empty; a repeated claim is for `serde_json`.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.byte()? == want).then_some(())
    }

    fn eat_if(&mut self, want: u8) -> bool {
        let hit = self.peek() == Some(want);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn eat_word(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.text.as_bytes().get(self.at..end)? == word).then(|| self.at = end)
    }

    /// JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters: its text.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let rest = self.text.as_bytes().get(start..)?;
        let len = stop(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are ASCII quotes: char boundaries.
        self.text.get(start..start + len)
    }

    /// The items of an array or object whose opening bracket was read, up
    /// to and including `close`, each read by `item`.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.ws();
        if self.eat_if(close) {
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.byte()? {
                b',' => {}
                b if b == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// An object member's name and its colon.
    fn name(&mut self) -> Option<&'a str> {
        let name = self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(name)
    }

    /// `aud`: a string, or an array of strings.
    fn audience(&mut self) -> Option<Audience<'a>> {
        if self.peek()? == b'"' {
            return Some(Audience::One(Cow::Borrowed(self.string()?)));
        }
        self.eat(b'[')?;
        let mut list = Vec::new();
        self.items(b']', |s| {
            list.push(Cow::Borrowed(s.string()?));
            Some(())
        })?;
        Some(Audience::Many(list))
    }

    /// `exp`, `nbf`, `iat`: an integer of at most 15 digits, not `-0`.
    fn date(&mut self) -> Option<NumericDate> {
        let negative = self.eat_if(b'-');
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            value = value.wrapping_mul(10).wrapping_add(i64::from(d - b'0'));
            self.at += 1;
        }
        let digits = self.at - start;
        if !(1..=15).contains(&digits)
            || (digits > 1 && self.text.as_bytes()[start] == b'0')
            || (negative && value == 0)
            || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        // At most 15 digits: no overflow, and exact as a double.
        Some(NumericDate(if negative { -value } else { value } as f64))
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// Any plain value, read and dropped.
    fn value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.eat_word(b"true"),
            b'f' => self.eat_word(b"false"),
            b'n' => self.eat_word(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                self.items(b']', |s| s.value(depth + 1))
            }
            b'{' if depth < MAX_DEPTH => {
                self.at += 1;
                self.items(b'}', |s| {
                    s.name()?;
                    s.value(depth + 1)
                })
            }
            _ => None,
        }
    }

    /// A number whose form keeps it well inside the double range.
    fn number(&mut self) -> Option<()> {
        self.eat_if(b'-');
        let start = self.at;
        let int = self.digits();
        if int == 0 || int > 20 || (int > 1 && self.text.as_bytes()[start] == b'0') {
            return None;
        }
        if self.eat_if(b'.') && !(1..=100).contains(&self.digits()) {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if !self.eat_if(b'+') {
                self.eat_if(b'-');
            }
            let start = self.at;
            let n = self.digits();
            let exp: u32 = self.text.get(start..self.at)?.parse().ok()?;
            if !(1..=3).contains(&n) || exp > 280 {
                return None;
            }
        }
        Some(())
    }
}

/// What the strict `serde_json` read makes of `payload`, as comparable
/// values.
#[cfg(any(test, fuzzing))]
fn strict(payload: &str) -> Option<String> {
    serde_json::from_str::<RawClaims<'_>>(payload)
        .ok()
        .map(|r| describe(&r))
}

#[cfg(any(test, fuzzing))]
fn describe(r: &RawClaims<'_>) -> String {
    let aud = r.aud.as_ref().map(|a| match a {
        Audience::One(a) => vec![a.to_string()],
        Audience::Many(l) => l.iter().map(|a| format!("[{a}]")).collect(),
    });
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
        r.iss.as_deref(),
        r.sub.as_deref(),
        r.jti.as_deref(),
        aud,
        r.exp.map(|d| d.0.to_bits()),
        r.nbf.map(|d| d.0.to_bits()),
        r.iat.map(|d| d.0.to_bits()),
        r.cnf,
    )
}

/// Whenever the fast path answers, the strict read accepts the same.
#[cfg(any(test, fuzzing))]
pub(crate) fn agrees(payload: &str) -> bool {
    match read(payload) {
        None => true,
        Some(fast) => strict(payload) == Some(describe(&fast)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_finds_the_first_quote_backslash_or_control_character() {
        let slow = |b: &[u8]| b.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
                    let mut v: Vec<u8> = (0..len).map(|i| b"a~ !#[]\x7f"[i % 8]).collect();
                    v[at] = special;
                    // Bytes that sit next to the borders of each test.
                    if at + 1 < len {
                        v[at + 1] = [0x21, 0x5b, 0x20, 0x23, 0x5d][at % 5];
                    }
                    inputs.push(v);
                }
            }
            inputs.push(
                (0..len)
                    .map(|i| [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0xc3, 0xa9, 0xa2, 0xdc][i % 10])
                    .collect(),
            );
        }
        for v in inputs {
            assert_eq!(stop(&v), slow(&v), "{v:?}");
        }
    }

    #[test]
    fn plain_tokens_take_the_fast_path() {
        for payload in [
            r#"{"iss":"https://a.example/","sub":"ada","aud":"api","exp":4102444800,"iat":1700000000}"#,
            r#" { "aud" : [ "a" , "b" ] , "nbf" : -5 , "jti" : "j-1" } "#,
            r#"{"aud":[],"x":{"y":[1,2.5,-3e-7,true,false,null,{}],"z":"é"},"n":0.0}"#,
            "{}",
            "{\"scope\":\"read write\",\r\n\t\"roles\":[\"admin\"]}",
        ] {
            let fast = read(payload).unwrap_or_else(|| panic!("slow path for {payload}"));
            assert_eq!(strict(payload), Some(describe(&fast)), "{payload}");
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_strict_read() {
        for payload in [
            // Refused by the strict read.
            r#"{"exp":1,"exp":2}"#,
            r#"{"exp":"1"}"#,
            r#"{"iss":5}"#,
            r#"{"aud":[1]}"#,
            r#"{"iss":null}"#,
            r#"{"x":1e400}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":-}"#,
            r#"{"x":.5}"#,
            r#"{"x":1,}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":tru}"#,
            r#"{"x":"a"}x"#,
            r#"{"x":"a
"}"#,
            r#"["not an object"]"#,
            r#"{"x":1"#,
            "{\"x\":\"\u{7f}\"",
            // Accepted by it, but not plain.
            r#"{"iss":"https:\/\/a"}"#,
            r#"{"\u0065xp":1}"#,
            r#"{"exp":1.5}"#,
            r#"{"exp":1e3}"#,
            r#"{"exp":-0}"#,
            r#"{"exp":1234567890123456}"#,
            r#"{"x":123456789012345678901}"#,
            r#"{"x":1e281}"#,
            r#"{"x":1e0001}"#,
        ] {
            assert!(read(payload).is_none(), "fast path took {payload}");
        }
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(read(&deep).is_none());
        assert!(strict(&deep).is_some());
    }

    #[test]
    fn the_fast_path_never_disagrees_with_the_strict_read() {
        // Every prefix and every one-byte change of varied payloads.
        let seeds = [
            r#"{"iss":"https://a","sub":"s","aud":["x","y"],"exp":1700000000,"nbf":-3,"iat":0,"jti":"j"}"#,
            r#"{"a":[1,-2.50,3e10,4E-9,{"b":null,"c":[true,false]}],"d":"","e":{}}"#,
        ];
        let alphabet = b"{}[]\":,-+.0123456789eEtrufalsn \\/xa\x01";
        for seed in seeds {
            for end in 0..=seed.len() {
                let prefix = &seed[..end];
                assert!(agrees(prefix), "{prefix}");
            }
            for i in 0..seed.len() {
                for &b in alphabet {
                    let mut bytes = seed.as_bytes().to_vec();
                    bytes[i] = b;
                    let Ok(text) = String::from_utf8(bytes) else {
                        continue;
                    };
                    assert!(agrees(&text), "{text}");
                    let mut bytes = seed.as_bytes().to_vec();
                    bytes.insert(i, b);
                    let text = String::from_utf8(bytes).expect("ASCII");
                    assert!(agrees(&text), "{text}");
                }
            }
        }
    }
    /// A JSON-ish text: valid JSON most of the time, with registered names,
    /// odd numbers, escapes and whitespace mixed in, and sometimes broken.
    fn jsonish() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let atom = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{0,4})?([eE][+-]?[0-9]{0,4})?",
            "\"([a-z /:é]|\\\\[nu\"/]|\\\\u[0-9a-fA-F]{4}|\u{1})*\"",
        ];
        let value = atom.prop_recursive(4, 24, 4, |inner| {
            let name = prop_oneof![
                Just("iss"),
                Just("sub"),
                Just("aud"),
                Just("exp"),
                Just("nbf"),
                Just("iat"),
                Just("jti"),
                Just("x"),
                Just("\\u0065xp"),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((name, inner, " ?\n?"), 0..5).prop_map(|m| {
                    let members: Vec<String> = m
                        .into_iter()
                        .map(|(k, v, ws)| format!("{ws}\"{k}\"{ws}:{ws}{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        });
        (value, any::<u16>(), "[ ,:\\]}{\"0-9ex]?").prop_map(|(text, at, junk)| {
            // Now and then, a byte of junk somewhere.
            let mut text = text;
            if at % 4 == 0 && !text.is_empty() {
                let mut i = usize::from(at) % text.len();
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                text.insert_str(i, &junk);
            }
            text
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn random_payloads_agree(payload in jsonish()) {
            proptest::prop_assert!(agrees(&payload), "{}", payload);
        }
    }
}
