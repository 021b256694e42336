//! JSON Web Keys (RFC 7517) into verification keys, with jose-style strict
//! selection: key type and curve fit the algorithm, `alg` when present must
//! match, `use` must be `sig`, `key_ops` must include `verify`, no private
//! keys, and (in a key set) no symmetric keys and no ambiguous `kid`s.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{Key, der};
use crate::algorithm::{Algorithm, Curve, Family};
use crate::b64;
use crate::error::BuildError;

/// The most members of a key set that are looked at; the rest are skipped.
pub(crate) const MAX_KEYS: usize = 100;

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
    d: Option<IgnoredAny>,
    p: Option<IgnoredAny>,
    q: Option<IgnoredAny>,
    dp: Option<IgnoredAny>,
    dq: Option<IgnoredAny>,
    qi: Option<IgnoredAny>,
    oth: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<Member>,
}

/// One member of a key set as read, before it is looked at as a JWK.
enum Member {
    Object(Map<String, Value>),
    /// A JSON object naming this member more than once
    /// (`{"kid":"a","kid":"b"}`): which one counts is parser-dependent, so
    /// the member is not used.
    Duplicate(String),
    /// Not a JSON object.
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member, A::Error> {
        let mut members = Map::new();
        let mut duplicate = None;
        while let Some(name) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if members.contains_key(&name) {
                duplicate.get_or_insert(name);
            } else {
                members.insert(name, value);
            }
        }
        Ok(match duplicate {
            Some(name) => Member::Duplicate(name),
            None => Member::Object(members),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Member::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Member, E> {
        Ok(Member::Other)
    }
}

/// How strict to be with a JWK.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwkPolicy<'a> {
    /// Whether `oct` (HMAC) keys are usable: only for a key the application
    /// configured itself, never from a key set.
    pub(crate) allow_symmetric: bool,
    /// The algorithms a JWK naming its `alg` may use; `None` for any.
    pub(crate) allowed: Option<&'a [Algorithm]>,
    /// The algorithms a JWK without `alg` is bound to (those fitting its type).
    pub(crate) algless: &'a [Algorithm],
}

/// Why one member of a key set was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JwkError {
    pub(crate) index: usize,
    pub(crate) kid: Option<String>,
    pub(crate) reason: String,
}

impl fmt::Display for JwkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            // The key set is the provider's, but a hostile or broken one
            // must not flood the logs: the kid is a bounded excerpt.
            Some(kid) => write!(
                f,
                "key #{} (kid \"{}\"): {}",
                self.index,
                crate::text::excerpt(kid),
                self.reason
            ),
            None => write!(f, "key #{}: {}", self.index, self.reason),
        }
    }
}

pub(crate) fn parse_single(json: &str, alg: Option<Algorithm>) -> Result<Key, BuildError> {
    if !crate::token::is_json_object(json.as_bytes()) {
        return Err(BuildError::InvalidKey(
            "not a JSON Web Key: expected a JSON object".into(),
        ));
    }
    let raw: RawJwk = serde_json::from_str(json)
        .map_err(|e| BuildError::InvalidKey(format!("not a JSON Web Key: {e}")))?;
    let allowed: Vec<Algorithm> = alg.into_iter().collect();
    let policy = JwkPolicy {
        allow_symmetric: true,
        allowed: alg.map(|_| &allowed[..]),
        algless: &allowed,
    };
    if alg.is_none() && raw.alg.is_none() {
        return Err(BuildError::InvalidKey(
            "the JWK has no `alg`; use Key::from_jwk_for to bind it to an algorithm".into(),
        ));
    }
    let mut keys = to_keys(&raw, policy).map_err(BuildError::InvalidKey)?;
    match keys.len() {
        1 => Ok(keys.remove(0)),
        _ => Err(BuildError::InvalidKey(
            "the JWK does not fit the requested algorithm".into(),
        )),
    }
}

/// Parses a JWKS document. Returns the usable keys and why the others were
/// skipped; fails only when the document itself is not a key set.
pub(crate) fn parse_jwk_set(
    json: &[u8],
    allowed: Option<&[Algorithm]>,
    algless: &[Algorithm],
) -> Result<(Vec<Key>, Vec<JwkError>), String> {
    if !crate::token::is_json_object(json) {
        return Err("not a JSON Web Key Set: expected a JSON object".into());
    }
    let set: RawSet =
        serde_json::from_slice(json).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    let policy = JwkPolicy {
        allow_symmetric: false,
        allowed,
        algless,
    };
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    let mut kid_count: HashMap<String, usize> = HashMap::new();
    for (index, value) in set.keys.into_iter().enumerate() {
        if index >= MAX_KEYS {
            errors.push(JwkError {
                index,
                kid: None,
                reason: format!("more than {MAX_KEYS} keys in the set; the rest are ignored"),
            });
            break;
        }
        let object = match value {
            Member::Object(object) => object,
            Member::Duplicate(name) => {
                errors.push(JwkError {
                    index,
                    kid: None,
                    reason: format!(
                        "the member name `{name}` appears more than once; the key is not used"
                    ),
                });
                continue;
            }
            Member::Other => {
                errors.push(JwkError {
                    index,
                    kid: None,
                    reason: "not a JSON object".into(),
                });
                continue;
            }
        };
        let raw = match RawJwk::deserialize(Value::Object(object)) {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(JwkError {
                    index,
                    kid: None,
                    reason: format!(
                        "not a JSON Web Key: {}",
                        crate::text::excerpt(&e.to_string())
                    ),
                });
                continue;
            }
        };
        if let Some(kid) = &raw.kid {
            *kid_count.entry(kid.clone()).or_default() += 1;
        }
        match to_keys(&raw, policy) {
            Ok(k) => keys.extend(k),
            Err(reason) => errors.push(JwkError {
                index,
                kid: raw.kid.clone(),
                reason,
            }),
        }
    }
    // Two members with one kid: refuse the kid rather than guess.
    for (kid, count) in kid_count {
        if count > 1 {
            keys.retain(|k| k.kid() != Some(kid.as_str()));
            errors.push(JwkError {
                index: 0,
                kid: Some(kid),
                reason: format!("{count} keys share this kid; none of them is used"),
            });
        }
    }
    Ok((keys, errors))
}

fn decode(field: &'static str, value: &Option<String>) -> Result<Vec<u8>, String> {
    let value = value
        .as_deref()
        .ok_or_else(|| format!("missing `{field}`"))?;
    b64::decode(value.as_bytes()).ok_or_else(|| format!("`{field}` is not base64url"))
}

/// Turns one JWK into keys: one per algorithm it may be used with.
fn to_keys(raw: &RawJwk, policy: JwkPolicy<'_>) -> Result<Vec<Key>, String> {
    if raw.d.is_some()
        || raw.p.is_some()
        || raw.q.is_some()
        || raw.dp.is_some()
        || raw.dq.is_some()
        || raw.qi.is_some()
        || raw.oth.is_some()
    {
        return Err("the JWK holds private key material; publish public keys only".into());
    }
    if let Some(u) = &raw.use_
        && u != "sig"
    {
        return Err(format!("`use` is {u:?}, not \"sig\""));
    }
    if let Some(ops) = &raw.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("`key_ops` does not include \"verify\"".into());
    }
    let family = match raw.kty.as_str() {
        "RSA" => Family::Rsa,
        "EC" => match raw.crv.as_deref() {
            Some("P-256") => Family::Ec(Curve::P256),
            Some("P-384") => Family::Ec(Curve::P384),
            Some("P-521") => Family::Ec(Curve::P521),
            other => return Err(format!("unsupported EC curve {other:?}")),
        },
        "OKP" => match raw.crv.as_deref() {
            Some("Ed25519") => Family::Ed25519,
            other => return Err(format!("unsupported OKP curve {other:?}")),
        },
        "oct" if policy.allow_symmetric => Family::Hmac,
        "oct" => return Err("symmetric (oct) keys in a key set are never used".into()),
        other => return Err(format!("unsupported key type {other:?}")),
    };
    let algs: Vec<Algorithm> = match &raw.alg {
        Some(name) => {
            let alg = Algorithm::from_header(name)
                .ok_or_else(|| format!("unsupported `alg` {name:?}"))?;
            if alg.family() != family {
                return Err(format!("`alg` {alg} does not fit key type {}", raw.kty));
            }
            if policy.allowed.is_some_and(|a| !a.contains(&alg)) {
                // Valid key, but for an algorithm this verifier does not accept.
                return Ok(Vec::new());
            }
            vec![alg]
        }
        None => policy
            .algless
            .iter()
            .copied()
            .filter(|a| a.family() == family)
            .collect(),
    };
    if algs.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::with_capacity(algs.len());
    match family {
        Family::Hmac => {
            let secret = decode("k", &raw.k)?;
            for alg in algs {
                keys.push(Key::hmac(alg, &secret).map_err(|e| e.to_string())?);
            }
        }
        Family::Rsa => {
            let n = decode("n", &raw.n)?;
            let e = decode("e", &raw.e)?;
            der::check_rsa_exponent(&e)?;
            let bits = der::integer_bits(&n);
            let pkcs1 = rsa_public_key_der(&n, &e);
            for alg in algs {
                keys.push(Key::public(alg, &pkcs1, Some(bits)).map_err(|e| e.to_string())?);
            }
        }
        Family::Ec(curve) => {
            let x = decode("x", &raw.x)?;
            let y = decode("y", &raw.y)?;
            let len = curve.coordinate_len();
            if x.len() != len || y.len() != len {
                return Err(format!(
                    "`x` and `y` must be {len} bytes each for {}",
                    curve.jwk_name()
                ));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            for alg in algs {
                keys.push(Key::public(alg, &point, None).map_err(|e| e.to_string())?);
            }
        }
        Family::Ed25519 => {
            let x = decode("x", &raw.x)?;
            if x.len() != 32 {
                return Err("`x` must be 32 bytes for Ed25519".into());
            }
            for alg in algs {
                keys.push(Key::public(alg, &x, None).map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(match &raw.kid {
        Some(kid) => keys.into_iter().map(|k| k.with_kid(kid.clone())).collect(),
        None => keys,
    })
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, bytes: &[u8]) {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let bytes = &bytes[start..];
        let pad = bytes.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        length(out, bytes.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(bytes);
    }
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes
                .iter()
                .position(|b| *b != 0)
                .unwrap_or(bytes.len() - 1);
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    #[test]
    fn rsa_der_round_trips_through_reader() {
        let mut n = vec![0xc0; 256];
        n[255] = 1;
        let der = rsa_public_key_der(&n, &[1, 0, 1]);
        assert_eq!(der::rsa_public_key_bits(&der).unwrap(), 2048);
    }

    #[test]
    fn single_jwk_needs_alg() {
        assert!(parse_single(ED, None).is_err());
        let key = parse_single(ED, Some(Algorithm::EdDSA)).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EdDSA);
        assert!(parse_single(ED, Some(Algorithm::ES256)).is_err());
    }

    #[test]
    fn private_and_wrong_use_refused() {
        let private = r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","d":"x","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert!(parse_single(private, None).is_err());
        let enc = r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert!(parse_single(enc, None).is_err());
        let ops = r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","key_ops":["sign"],"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert!(parse_single(ops, None).is_err());
    }

    #[test]
    fn set_skips_bad_members_and_ambiguous_kids() {
        let set = format!(
            r#"{{"keys":[{ed_a},{ed_b},{ed_c},{{"kty":"oct","k":"AAAA"}},{{"kty":"RSA","alg":"RS256"}},42]}}"#,
            ed_a = ED.replace("{", r#"{"kid":"dup","#),
            ed_b = ED.replace("{", r#"{"kid":"dup","#),
            ed_c = ED.replace("{", r#"{"kid":"ok","#),
        );
        let (keys, errors) = parse_jwk_set(set.as_bytes(), None, &[Algorithm::EdDSA]).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid(), Some("ok"));
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(parse_jwk_set(b"[]", None, &[Algorithm::EdDSA]).is_err());
    }

    #[test]
    fn members_with_duplicate_names_are_skipped() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let set = format!(
            r#"{{"keys":[
                {{"kty":"OKP","crv":"Ed25519","kid":"a","kid":"b","x":"{x}"}},
                {{"kty":"OKP","crv":"Ed25519","kid":"c","x":"{x}","x":"{x}"}},
                {{"kty":"RSA","kty":"OKP","crv":"Ed25519","kid":"d","x":"{x}"}},
                {{"kty":"OKP","crv":"Ed25519","kid":"ok","x":"{x}"}}
            ]}}"#
        );
        let (keys, errors) = parse_jwk_set(set.as_bytes(), None, &[Algorithm::EdDSA]).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid()).collect();
        assert_eq!(kids, [Some("ok")], "{errors:?}");
        assert_eq!(errors.len(), 3, "{errors:?}");
        for (e, name) in errors.iter().zip(["kid", "x", "kty"]) {
            assert!(e.reason.contains(&format!("`{name}`")), "{e}");
            assert!(e.reason.contains("more than once"), "{e}");
        }
        // A single JWK with a repeated member is refused too.
        let single = format!(
            r#"{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"a","kid":"b","x":"{x}"}}"#
        );
        let err = parse_single(&single, None).unwrap_err().to_string();
        assert!(err.contains("duplicate field `kid`"), "{err}");
    }

    #[test]
    fn jwk_without_alg_binds_to_each_allowed_algorithm_of_its_type() {
        let set = format!(r#"{{"keys":[{ED}]}}"#);
        let (keys, _) =
            parse_jwk_set(set.as_bytes(), None, &[Algorithm::RS256, Algorithm::EdDSA]).unwrap();
        assert_eq!(keys.len(), 1);
        let (keys, _) = parse_jwk_set(set.as_bytes(), None, &[Algorithm::RS256]).unwrap();
        assert!(keys.is_empty());
    }
}
