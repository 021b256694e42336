//! The delegation claims of RFC 8693 §4: `act`, the chain of actors a
//! token was issued to act for its subject, and `may_act`, who may.

use serde_json::{Map, Value};

use crate::error::AuthError;

/// The longest `act` chain read; a deeper one is refused as malformed
/// (no delegation is that deep, and a guard bounds it far lower).
const MAX_CHAIN: usize = 32;

/// One party of a delegation (RFC 8693 §4.1, §4.4): who acts (or may act)
/// for the token's subject. Information about the token, never a
/// principal: authorization judges the token's own claims
/// ([`Claims::sub`](crate::Claims::sub), its scopes), whatever an actor
/// claims to hold.
///
/// ```
/// # use tower_jwt_auth::{Algorithm, Claims, Key, Verifier};
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
/// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
/// #     &serde_json::json!({"exp": 4102444800u64, "sub": "alice", "act": {"sub": "agent-1", "iss": "https://as.example"}}),
/// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
/// let claims: Claims = verifier.verify(&token).unwrap();
/// let chain = claims.act()?;
/// let actor = chain.current().unwrap();
/// assert_eq!(actor.sub(), Some("agent-1"));
/// assert_eq!(actor.iss(), Some("https://as.example"));
/// assert_eq!(claims.sub(), Some("alice")); // the principal
/// # Ok::<(), tower_jwt_auth::AuthError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// The actor's members, without its nested `act`.
    members: Map<String, Value>,
}

impl Actor {
    /// The actor's `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.members.get("sub").and_then(Value::as_str)
    }

    /// The actor's `iss`, when it names the issuer of its `sub`.
    pub fn iss(&self) -> Option<&str> {
        self.members.get("iss").and_then(Value::as_str)
    }

    /// Any other member of the actor (`client_id`, ...); never a nested `act`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    fn read(value: &Value, what: &str) -> Result<(Actor, Option<Value>), AuthError> {
        let Value::Object(members) = value else {
            return Err(AuthError::InvalidClaim(format!(
                "`{what}` is not a JSON object"
            )));
        };
        for member in ["sub", "iss"] {
            if members.get(member).is_some_and(|v| !v.is_string()) {
                return Err(AuthError::InvalidClaim(format!(
                    "the `{member}` of `{what}` is not a string"
                )));
            }
        }
        let mut members = members.clone();
        let nested = members.remove("act");
        Ok((Actor { members }, nested))
    }
}

/// The `act` chain of a token (RFC 8693 §4.1): the current actor first,
/// then the one it acts for, and so on; empty when the token has no `act`.
/// From [`Claims::act`](crate::Claims::act); a guard on it is
/// [`RequireActor`](crate::delegation::RequireActor).
///
/// ```
/// # use tower_jwt_auth::{Algorithm, Claims, Key, Verifier};
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
/// # let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(),
/// #     &serde_json::json!({"exp": 4102444800u64, "sub": "alice",
/// #         "act": {"sub": "agent-2", "act": {"sub": "agent-1"}}}),
/// #     &jsonwebtoken::EncodingKey::from_secret(&[7u8; 32])).unwrap();
/// let claims: Claims = verifier.verify(&token).unwrap();
/// let chain = claims.act()?;
/// assert_eq!(chain.len(), 2);
/// let subs: Vec<_> = chain.iter().map(|a| a.sub()).collect();
/// assert_eq!(subs, [Some("agent-2"), Some("agent-1")]);
/// # Ok::<(), tower_jwt_auth::AuthError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActorChain(Vec<Actor>);

impl ActorChain {
    /// The chain of `payload`'s `act`.
    pub(crate) fn read(payload: &Value) -> Result<ActorChain, AuthError> {
        let mut chain = Vec::new();
        let mut next = payload.get("act").cloned();
        while let Some(value) = next {
            if chain.len() == MAX_CHAIN {
                return Err(AuthError::InvalidClaim(format!(
                    "the `act` chain is deeper than {MAX_CHAIN}"
                )));
            }
            let (actor, nested) = Actor::read(&value, "act")?;
            chain.push(actor);
            next = nested;
        }
        Ok(ActorChain(chain))
    }

    /// The current actor: the outermost `act`.
    pub fn current(&self) -> Option<&Actor> {
        self.0.first()
    }

    /// The actors, the current one first.
    pub fn iter(&self) -> std::slice::Iter<'_, Actor> {
        self.0.iter()
    }

    /// How many actors (the delegation depth).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the token has no `act`: the subject acts itself.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a ActorChain {
    type Item = &'a Actor;
    type IntoIter = std::slice::Iter<'a, Actor>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The `may_act` of `payload` (RFC 8693 §4.4): who may act for the subject.
pub(crate) fn may_act(payload: &Value) -> Result<Option<Actor>, AuthError> {
    match payload.get("may_act") {
        None => Ok(None),
        Some(value) => Actor::read(value, "may_act").map(|(mut actor, nested)| {
            if let Some(nested) = nested {
                actor.members.insert("act".into(), nested);
            }
            Some(actor)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chains_read_outermost_first_and_malformed_ones_are_refused() {
        let chain =
            ActorChain::read(&json!({"act": {"sub": "b", "act": {"sub": "a", "x": 1}}})).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain.current().unwrap().sub(), Some("b"));
        assert!(chain.current().unwrap().get("act").is_none());
        assert_eq!(chain.iter().nth(1).unwrap().get("x"), Some(&json!(1)));
        assert!(ActorChain::read(&json!({})).unwrap().is_empty());
        for bad in [
            json!({"act": "agent"}),
            json!({"act": {"sub": 7}}),
            json!({"act": {"sub": "b", "act": []}}),
            json!({"act": {"iss": {"x": 1}}}),
        ] {
            assert!(ActorChain::read(&bad).is_err(), "{bad}");
        }
        let mut deep = json!({"sub": "x"});
        for _ in 0..40 {
            deep = json!({"sub": "x", "act": deep});
        }
        assert!(ActorChain::read(&json!({"act": deep})).is_err());
    }

    #[test]
    fn may_act_is_one_party() {
        let m = may_act(&json!({"may_act": {"sub": "agent-1"}}))
            .unwrap()
            .unwrap();
        assert_eq!(m.sub(), Some("agent-1"));
        assert!(may_act(&json!({})).unwrap().is_none());
        assert!(may_act(&json!({"may_act": ["agent-1"]})).is_err());
    }
}
