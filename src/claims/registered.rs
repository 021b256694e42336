//! The registered claims (RFC 7519 §4.1): [`RegisteredClaims`], and how
//! they are read from a verified payload in one pass ([`RawClaims`], by
//! serde or by the plain scanner of `plain.rs`).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The registered claims of a verified token (RFC 7519 §4.1).
///
/// Times are seconds since the Unix epoch; fractional seconds are truncated.
#[derive(Clone, Default)]
pub struct RegisteredClaims {
    /// The verified payload, then the registered strings that it holds
    /// with escapes (unescaped): one allocation for the payload and every
    /// string; a string without escapes is found in the payload itself.
    pub(super) text: Box<str>,
    /// Where the payload ends in `text`.
    payload_len: usize,
    iss: Option<Span>,
    sub: Option<Span>,
    jti: Option<Span>,
    auds: Auds,
    /// The audiences as `String`s, made on the first [`aud`](Self::aud).
    aud: std::sync::OnceLock<Vec<String>>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    /// Whether the payload has a `cnf` member (a sender-constrained token).
    cnf: bool,
}

/// Where a string lies in [`RegisteredClaims::text`].
#[derive(Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// Where the audiences lie in [`RegisteredClaims::text`].
#[derive(Clone, Default)]
enum Auds {
    #[default]
    None,
    One(Span),
    Many(Box<[Span]>),
}

impl RegisteredClaims {
    /// The issuer.
    pub fn iss(&self) -> Option<&str> {
        self.iss.map(|s| self.at(s))
    }
    /// The subject.
    pub fn sub(&self) -> Option<&str> {
        self.sub.map(|s| self.at(s))
    }
    /// The audiences (empty when the token has none).
    pub fn aud(&self) -> &[String] {
        self.aud.get_or_init(|| {
            let spans: &[Span] = match &self.auds {
                Auds::None => &[],
                Auds::One(span) => std::slice::from_ref(span),
                Auds::Many(spans) => spans,
            };
            spans.iter().map(|s| self.at(*s).to_owned()).collect()
        })
    }
    /// Expiration time.
    pub fn exp(&self) -> Option<i64> {
        self.exp
    }
    /// Not-before time.
    pub fn nbf(&self) -> Option<i64> {
        self.nbf
    }
    /// Issued-at time.
    pub fn iat(&self) -> Option<i64> {
        self.iat
    }
    /// Whether the payload has a `cnf` member: the token says it is bound
    /// to a key (RFC 7800), which the layer's binding step must verify.
    pub(crate) fn bound(&self) -> bool {
        self.cnf
    }
    /// The token's unique identifier.
    pub fn jti(&self) -> Option<&str> {
        self.jti.map(|s| self.at(s))
    }

    /// The verified payload these claims were read from (empty when made
    /// otherwise).
    pub(crate) fn payload(&self) -> &str {
        self.text.get(..self.payload_len).unwrap_or_default()
    }

    fn at(&self, span: Span) -> &str {
        let start = span.start as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    #[cfg(feature = "revocation")]
    pub(crate) fn set_jti(&mut self, jti: String) {
        let mut text = String::with_capacity(self.text.len() + jti.len());
        text.push_str(&self.text);
        self.jti = Some(push(&mut text, &jti));
        self.text = text.into_boxed_str();
    }
}

/// Appends `value` to `text`, returning where it lies.
#[cfg(feature = "revocation")]
fn push(text: &mut String, value: &str) -> Span {
    let at = span(text.len(), value.len());
    text.push_str(value);
    at
}

impl PartialEq for RegisteredClaims {
    fn eq(&self, other: &Self) -> bool {
        self.iss() == other.iss()
            && self.sub() == other.sub()
            && self.jti() == other.jti()
            && self.aud() == other.aud()
            && (self.exp, self.nbf, self.iat) == (other.exp, other.nbf, other.iat)
    }
}

impl Eq for RegisteredClaims {}

impl fmt::Debug for RegisteredClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClaims")
            .field("iss", &self.iss())
            .field("sub", &self.sub())
            .field("aud", &self.aud())
            .field("exp", &self.exp)
            .field("nbf", &self.nbf)
            .field("iat", &self.iat)
            .field("jti", &self.jti())
            .finish()
    }
}

/// The registered claims as read for validation, borrowing from the payload.
///
/// Read in one strict pass over the whole payload: a repeated registered
/// claim is an error, and so is a registered claim of the wrong JSON type;
/// every other member is parsed as JSON too (not skipped), so a payload a
/// standard parser refuses (a number out of range such as `1e400`, a lone
/// surrogate escape) is an error here rather than a `null` later. Error
/// messages name the claim, never its value.
#[derive(Default)]
pub(crate) struct RawClaims<'a> {
    pub(crate) iss: Option<Text<'a>>,
    pub(crate) sub: Option<Text<'a>>,
    pub(crate) aud: Option<Audience<'a>>,
    pub(crate) exp: Option<NumericDate>,
    pub(crate) nbf: Option<NumericDate>,
    pub(crate) iat: Option<NumericDate>,
    pub(crate) jti: Option<Text<'a>>,
    /// Whether the payload has a `cnf` member (RFC 7800): the token claims
    /// to be bound to a key (see the layer's sender-binding step).
    pub(crate) cnf: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawClaims<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawClaims<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<M: de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<RawClaims<'a>, M::Error> {
                let mut raw = RawClaims::default();
                let mut seen = [false; 7];
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    let slot = match &*name {
                        "iss" => 0,
                        "sub" => 1,
                        "aud" => 2,
                        "exp" => 3,
                        "nbf" => 4,
                        "iat" => 5,
                        "jti" => 6,
                        other => {
                            raw.cnf |= other == "cnf";
                            map.next_value::<StrictAny>()?;
                            continue;
                        }
                    };
                    let claim = REGISTERED[slot];
                    if std::mem::replace(&mut seen[slot], true) {
                        return Err(de::Error::custom(format_args!("`{claim}` is repeated")));
                    }
                    let bad = |_| {
                        de::Error::custom(format_args!(
                            "`{claim}` has the wrong JSON type for a registered claim"
                        ))
                    };
                    // Each read as its type, not as an `Option`: `null` is
                    // a value of the wrong type, not an absent claim.
                    match slot {
                        0 => raw.iss = Some(map.next_value().map_err(bad)?),
                        1 => raw.sub = Some(map.next_value().map_err(bad)?),
                        2 => raw.aud = Some(map.next_value().map_err(bad)?),
                        3 => raw.exp = Some(map.next_value().map_err(bad)?),
                        4 => raw.nbf = Some(map.next_value().map_err(bad)?),
                        5 => raw.iat = Some(map.next_value().map_err(bad)?),
                        _ => raw.jti = Some(map.next_value().map_err(bad)?),
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Any JSON value, parsed (not merely skipped) and dropped: numbers are
/// converted, so one out of range is an error, as are bad string escapes.
struct StrictAny;

impl<'de> Deserialize<'de> for StrictAny {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictAny;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<StrictAny, E> {
                Ok(StrictAny)
            }
            fn visit_i64<E>(self, _: i64) -> Result<StrictAny, E> {
                Ok(StrictAny)
            }
            fn visit_u64<E>(self, _: u64) -> Result<StrictAny, E> {
                Ok(StrictAny)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictAny, E> {
                if v.is_finite() {
                    Ok(StrictAny)
                } else {
                    Err(E::custom("a number is out of range"))
                }
            }
            fn visit_str<E>(self, _: &str) -> Result<StrictAny, E> {
                Ok(StrictAny)
            }
            fn visit_unit<E>(self) -> Result<StrictAny, E> {
                Ok(StrictAny)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<StrictAny, A::Error> {
                while seq.next_element::<StrictAny>()?.is_some() {}
                Ok(StrictAny)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<StrictAny, A::Error> {
                while map.next_entry::<StrictAny, StrictAny>()?.is_some() {}
                Ok(StrictAny)
            }
        }
        d.deserialize_any(V)
    }
}

/// The registered claims of a payload in plain JSON, read by a scanner
/// (see `plain.rs`); `None`: read it with `serde_json`, the authority.
pub(crate) fn read_plain(payload: &str) -> Option<RawClaims<'_>> {
    super::plain::read(payload)
}

/// Whether the plain-JSON scanner agrees with the strict read on
/// `payload` (the `payload` fuzz target).
#[cfg(fuzzing)]
pub(crate) fn plain_read_agrees(payload: &str) -> bool {
    super::plain::agrees(payload)
}

/// A member that is present, read as `T`. Unlike `Option<T>`'s own
/// deserializer, `null` is not taken as absent: it must be a `T` (and none
/// of ours is null), so `"kid": null` is a member of the wrong type. An
/// absent member is `None` through `#[serde(default)]`. (The JOSE header
/// reader uses it; `RawClaims` reads each claim as its type the same way.)
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl RawClaims<'_> {
    /// Where each registered string lies: in `payload`, which these claims
    /// were read from, when it was read without escapes (borrowed), else in
    /// a buffer to append to it. Then [`Layout::holding`] the payload.
    pub(crate) fn layout(&self, payload: &str) -> Layout {
        let base = payload.as_ptr() as usize;
        let mut extra = String::new();
        let mut locate = |text: &str| {
            let start = (text.as_ptr() as usize).wrapping_sub(base);
            if start <= payload.len() && text.len() <= payload.len() - start {
                // Borrowed from the payload: no copy.
                return span(start, text.len());
            }
            let start = payload.len() + extra.len();
            extra.push_str(text);
            span(start, text.len())
        };
        let iss = self.iss.as_deref().map(&mut locate);
        let sub = self.sub.as_deref().map(&mut locate);
        let jti = self.jti.as_deref().map(&mut locate);
        let auds = match &self.aud {
            None => Auds::None,
            Some(Audience::One(a)) => Auds::One(locate(a)),
            Some(Audience::Many(list)) => Auds::Many(list.iter().map(|a| locate(a)).collect()),
        };
        Layout {
            extra,
            iss,
            sub,
            jti,
            auds,
            exp: self.exp.map(NumericDate::seconds),
            nbf: self.nbf.map(NumericDate::seconds),
            iat: self.iat.map(NumericDate::seconds),
            cnf: self.cnf,
        }
    }
}

/// The registered claims read from a payload, waiting for it (see
/// [`RawClaims::layout`]).
pub(crate) struct Layout {
    extra: String,
    iss: Option<Span>,
    sub: Option<Span>,
    jti: Option<Span>,
    auds: Auds,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    cnf: bool,
}

impl Layout {
    /// The registered claims, holding `payload` (the one laid out).
    pub(crate) fn holding(self, payload: String) -> RegisteredClaims {
        let payload_len = payload.len();
        let mut text = payload;
        // Only strings with escapes: nearly always none, and no copy.
        text.push_str(&self.extra);
        RegisteredClaims {
            text: text.into_boxed_str(),
            payload_len,
            iss: self.iss,
            sub: self.sub,
            jti: self.jti,
            auds: self.auds,
            aud: std::sync::OnceLock::new(),
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            cnf: self.cnf,
        }
    }
}

fn span(start: usize, len: usize) -> Span {
    Span {
        start: u32::try_from(start).unwrap_or(u32::MAX),
        len: u32::try_from(len).unwrap_or(0),
    }
}

/// A JSON string borrowed from the input when it has no escapes. (serde
/// borrows a `Cow<str>` only as a field of its own with `#[serde(borrow)]`,
/// never inside an `Option`, hence this newtype.)
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Text<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// `aud`: one string or an array of strings.
#[derive(Deserialize)]
#[serde(untagged, expecting = "`aud` must be a string or an array of strings")]
pub(crate) enum Audience<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

impl Audience<'_> {
    pub(crate) fn contains_any(&self, wanted: &[String]) -> bool {
        match self {
            Audience::One(a) => wanted.iter().any(|w| w == a),
            Audience::Many(list) => list.iter().any(|a| wanted.iter().any(|w| w == a)),
        }
    }
}

/// A JSON number of seconds since the epoch; anything else is an error.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub(crate) struct NumericDate(pub(crate) f64);

impl NumericDate {
    fn seconds(self) -> i64 {
        // `as` saturates; NumericDate never holds NaN (JSON has none).
        self.0 as i64
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumericDate (a JSON number of seconds since the epoch)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                if v.is_finite() {
                    Ok(NumericDate(v))
                } else {
                    Err(E::custom("NumericDate must be finite"))
                }
            }
        }
        d.deserialize_any(V)
    }
}
