//! Sender binding: when a token bound to a key (`cnf`, RFC 7800) may pass.
//!
//! The one rule, which every path of the layer (fresh verification, the
//! token cache, introspection answers) goes through: a token whose `cnf`
//! names a confirmation method is accepted only if the layer verifies that
//! method for this request. The methods verified today:
//!
//! - `jkt` (DPoP, RFC 9449): verified when the layer has a
//!   [`DpopPolicy`](crate::dpop::DpopPolicy); the DPoP check then requires a proof
//!   by that key and refuses the token as `Bearer` (RFC 9449 §7.1).
//! - `x5t#S256` (mTLS, RFC 8705 §3): verified when the layer has an
//!   `MtlsPolicy` that is not `Off` (feature `mtls`); the mTLS check then
//!   requires the request's client certificate to have that thumbprint.
//!
//! Every other member (`x5t#S256` without an mTLS policy;
//! `jwk`, `jku`, `kid`, `jwe`, or one not yet defined) names a binding the
//! layer cannot verify, so the token is refused: accepting it would turn a
//! sender-constrained token into a bearer token that anyone who stole it
//! can use. An empty `cnf` names no method. The opt-out, for a deployment
//! that verifies the binding elsewhere (a gateway that checks the client
//! certificate), is [`JwtAuthLayer::accept_unverified_binding`](crate::JwtAuthLayer::accept_unverified_binding).
//!
//! The layer applies the rule in its sender-binding stage (step 4 of the
//! request path, `layer::stages::Binding`), before the proof of any method
//! it verifies. Each method the layer verifies is a flag in [`Verifies`],
//! set by that stage, and a stage of its own there.
//!
//! [`read`] is the one reader of `cnf`: the rule, the mTLS check (the
//! thumbprint) and the DPoP check (the key's `jkt`) all take what it read.
//! It refuses a `cnf` that is repeated, or that repeats a member (two
//! `x5t#S256`, two `jkt`), rather than pick one of them: two readers of
//! the payload (this crate and a gateway, say) could pick different ones.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::claims::Text;
use crate::error::AuthError;

/// What a layer can verify of a token's binding: one flag per method,
/// set by the layer's binding stage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verifies {
    /// DPoP proofs (`cnf.jkt`): the layer has a DPoP policy.
    pub(crate) dpop: bool,
    /// Client certificates (`cnf.x5t#S256`): the layer has an mTLS policy.
    pub(crate) mtls: bool,
}

/// Reads the confirmation methods a verified payload's `cnf` names.
/// Cheap for unbound tokens: the payload read already noted whether a
/// `cnf` member is there (`bound`).
///
/// # Errors
/// [`AuthError::InvalidClaim`] when `cnf` is not an object, is repeated,
/// repeats a member, or its `x5t#S256` or `jkt` is not a string.
pub(crate) fn read(bound: bool, payload: &str) -> Result<Methods, AuthError> {
    if !bound {
        return Ok(Methods::default());
    }
    serde_json::from_str(payload).map_err(|_| {
        AuthError::InvalidClaim(
            "`cnf` must be one JSON object naming each method once \
             (`x5t#S256` and `jkt` strings)"
                .into(),
        )
    })
}

/// Checks a verified payload's `cnf` against what the layer verifies (see
/// the module docs), and gives the methods it names.
pub(crate) fn check(bound: bool, payload: &str, verifies: Verifies) -> Result<Methods, AuthError> {
    let methods = read(bound, payload)?;
    if let Some(method) = methods.unverified(verifies) {
        return Err(AuthError::UnverifiedBinding(method));
    }
    Ok(methods)
}

/// The confirmation methods a payload's one `cnf` names.
#[derive(Default)]
pub(crate) struct Methods {
    /// `jkt`, the thumbprint of the DPoP key.
    jkt: Option<Box<str>>,
    /// `x5t#S256`, the thumbprint of the certificate.
    x5t: Option<Box<str>>,
    /// The first method that is neither `jkt` nor `x5t#S256`, by its RFC
    /// name where it has one.
    other: Option<&'static str>,
}

impl Methods {
    fn unverified(&self, verifies: Verifies) -> Option<&'static str> {
        if let Some(other) = self.other {
            return Some(other);
        }
        if self.x5t.is_some() && !verifies.mtls {
            return Some("x5t#S256");
        }
        (self.jkt.is_some() && !verifies.dpop).then_some("jkt")
    }

    /// The certificate thumbprint the token is bound to, if any.
    pub(crate) fn x5t(&self) -> Option<&str> {
        self.x5t.as_deref()
    }

    /// The DPoP key thumbprint the token is bound to, if any.
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    pub(crate) fn jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// Whether the token is sender-constrained by a method the layer
    /// verifies (DPoP or mTLS).
    pub(crate) fn constrained(&self, verifies: Verifies) -> bool {
        (self.jkt.is_some() && verifies.dpop) || (self.x5t.is_some() && verifies.mtls)
    }

    fn note(&mut self, name: &str) {
        let method = match name {
            "jwk" => "jwk",
            "jku" => "jku",
            "kid" => "kid",
            "jwe" => "jwe",
            _ => "an unknown method",
        };
        self.other.get_or_insert(method);
    }
}

impl<'de> Deserialize<'de> for Methods {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Payload;
        impl<'de> Visitor<'de> for Payload {
            type Value = Methods;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Methods, M::Error> {
                let mut methods = Methods::default();
                let mut seen = false;
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    if &*name == "cnf" {
                        if std::mem::replace(&mut seen, true) {
                            return Err(de::Error::custom("`cnf` is repeated"));
                        }
                        map.next_value_seed(Cnf(&mut methods))?;
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(methods)
            }
        }
        d.deserialize_map(Payload)
    }
}

/// One `cnf` object: its member names are the methods.
struct Cnf<'m>(&'m mut Methods);

impl<'de> de::DeserializeSeed<'de> for Cnf<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Cnf<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a `cnf` object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        // A `cnf` names a handful of methods: a list is the right set.
        let mut seen: Vec<Text<'de>> = Vec::new();
        while let Some(name) = map.next_key::<Text<'de>>()? {
            if seen.iter().any(|s| **s == *name) {
                return Err(de::Error::custom("a `cnf` member is repeated"));
            }
            let slot = match &*name {
                "x5t#S256" => Some(&mut self.0.x5t),
                "jkt" => Some(&mut self.0.jkt),
                _ => None,
            };
            match slot {
                Some(slot) => {
                    let value: Text<'de> = map.next_value()?;
                    *slot = Some(value.0.as_ref().into());
                }
                None => {
                    self.0.note(&name);
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
            seen.push(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Verifies = Verifies {
        dpop: false,
        mtls: false,
    };
    const DPOP: Verifies = Verifies {
        dpop: true,
        mtls: false,
    };
    const MTLS: Verifies = Verifies {
        dpop: false,
        mtls: true,
    };

    fn judge(payload: &str, v: Verifies) -> Result<(), AuthError> {
        check(true, payload, v).map(drop)
    }

    #[test]
    fn x5t_is_verified_with_mtls_and_read_as_a_string() {
        let m = check(true, r#"{"cnf":{"x5t#S256":"abc"}}"#, MTLS).unwrap();
        assert_eq!(m.x5t(), Some("abc"));
        assert!(m.constrained(MTLS) && !m.constrained(DPOP));
        assert!(matches!(
            judge(r#"{"cnf":{"x5t#S256":"t","jkt":"t"}}"#, MTLS),
            Err(AuthError::UnverifiedBinding("jkt"))
        ));
        assert!(matches!(
            judge(r#"{"cnf":{"x5t#S256":1}}"#, MTLS),
            Err(AuthError::InvalidClaim(_))
        ));
        assert!(matches!(
            judge(r#"{"cnf":{"x5t#S256":"t","jwk":{}}}"#, MTLS),
            Err(AuthError::UnverifiedBinding("jwk"))
        ));
    }

    #[test]
    fn each_method_is_verified_or_refused() {
        assert!(judge(r#"{"cnf":{"jkt":"t"}}"#, DPOP).is_ok());
        assert!(matches!(
            judge(r#"{"cnf":{"jkt":"t"}}"#, NONE),
            Err(AuthError::UnverifiedBinding("jkt"))
        ));
        for (payload, method) in [
            (r#"{"cnf":{"x5t#S256":"t"}}"#, "x5t#S256"),
            (r#"{"cnf":{"jkt":"t","x5t#S256":"t"}}"#, "x5t#S256"),
            (r#"{"cnf":{"jwk":{}}}"#, "jwk"),
            (r#"{"cnf":{"kid":"k"}}"#, "kid"),
            (r#"{"cnf":{"new":1}}"#, "an unknown method"),
            (r#"{"c\u006ef":{"x5t\u0023S256":"t"}}"#, "x5t#S256"),
        ] {
            for v in [NONE, DPOP] {
                assert!(
                    matches!(judge(payload, v), Err(AuthError::UnverifiedBinding(m)) if m == method),
                    "{payload}"
                );
            }
        }
    }

    #[test]
    fn a_repeated_cnf_or_member_is_malformed_whatever_the_layer_verifies() {
        for payload in [
            r#"{"cnf":{"jkt":"t"},"cnf":{"x5t#S256":"t"}}"#,
            r#"{"cnf":{"x5t#S256":"a"},"cnf":{"x5t#S256":"b"}}"#,
            r#"{"cnf":{},"cnf":{}}"#,
            r#"{"cnf":{"x5t#S256":"a"},"c\u006ef":{"x5t#S256":"b"}}"#,
            r#"{"cnf":{"x5t#S256":"a","x5t#S256":"b"}}"#,
            r#"{"cnf":{"x5t#S256":"a","x5t\u0023S256":"a"}}"#,
            r#"{"cnf":{"jkt":"a","jkt":"b"}}"#,
            r#"{"cnf":{"new":1,"new":2}}"#,
        ] {
            for v in [NONE, DPOP, MTLS] {
                assert!(
                    matches!(read(true, payload), Err(AuthError::InvalidClaim(_)))
                        && matches!(judge(payload, v), Err(AuthError::InvalidClaim(_))),
                    "{payload}"
                );
            }
        }
        let m = read(true, r#"{"cnf":{"jkt":"k","x5t#S256":"c"}}"#).unwrap();
        assert_eq!((m.jkt(), m.x5t()), (Some("k"), Some("c")));
        assert!(matches!(
            read(true, r#"{"cnf":{"jkt":1}}"#),
            Err(AuthError::InvalidClaim(_))
        ));
    }

    #[test]
    fn an_empty_cnf_or_none_passes_and_a_non_object_is_malformed() {
        assert!(judge(r#"{"cnf":{}}"#, NONE).is_ok());
        assert!(check(false, r#"{"sub":"a"}"#, NONE).is_ok());
        for odd in [r#"{"cnf":"x"}"#, r#"{"cnf":null}"#, r#"{"cnf":[1]}"#] {
            assert!(
                matches!(judge(odd, DPOP), Err(AuthError::InvalidClaim(_))),
                "{odd}"
            );
        }
    }
}
