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
pub(crate) fn read(bound: bool, payload: &str) -> Result<Methods, AuthError> {
    if !bound {
        return Ok(Methods::default());
    }
    serde_json::from_str(payload).map_err(|_| {
        AuthError::InvalidClaim("`cnf` must be a JSON object (and `x5t#S256` a string)".into())
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

/// The confirmation methods a payload's `cnf` names (every `cnf` member,
/// if the payload repeats it).
#[derive(Default)]
pub(crate) struct Methods {
    jkt: bool,
    /// `x5t#S256`, the thumbprint of the certificate (the last one, if the
    /// payload repeats `cnf`).
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
        (self.jkt && !verifies.dpop).then_some("jkt")
    }

    /// The certificate thumbprint the token is bound to, if any.
    pub(crate) fn x5t(&self) -> Option<&str> {
        self.x5t.as_deref()
    }

    /// Whether the token is sender-constrained by a method the layer
    /// verifies (DPoP or mTLS).
    pub(crate) fn constrained(&self, verifies: Verifies) -> bool {
        (self.jkt && verifies.dpop) || (self.x5t.is_some() && verifies.mtls)
    }

    fn note(&mut self, name: &str) {
        let method = match name {
            "jkt" => {
                self.jkt = true;
                return;
            }
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
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    if &*name == "cnf" {
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
        while let Some(name) = map.next_key::<Text<'de>>()? {
            if &*name == "x5t#S256" {
                let x5t: Text<'de> = map.next_value()?;
                self.0.x5t = Some(x5t.0.as_ref().into());
                continue;
            }
            self.0.note(&name);
            map.next_value::<de::IgnoredAny>()?;
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
            // A repeated `cnf` (the strict read keeps every one here).
            (r#"{"cnf":{"jkt":"t"},"cnf":{"x5t#S256":"t"}}"#, "x5t#S256"),
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
