//! [`RequireActor`]: a guard on the `act` chain of delegated tokens
//! (RFC 8693 §4.1): which actors may act for the subject, and how deep
//! the chain may be.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::{Guard, Paths, Verdict, paths_from, token_claims};
use crate::claims::{ActorChain, Claims, TokenClaims};
use crate::error::AuthError;
use crate::reject::DefaultRejection;

/// Allows delegated tokens only from listed actors, through a chain no
/// deeper than a bound (RFC 8693 §4.1 `act`). A refusal is 403; a
/// malformed `act` is 401 `invalid_token`.
///
/// - Every actor of the chain (the current one and each it acts for) must
///   have a `sub` in the list, and an `iss` that is absent, the token's
///   own `iss`, or one of [`actor_issuers`](RequireActor::actor_issuers).
/// - The chain may hold at most [`max_depth`](RequireActor::max_depth)
///   actors (default 1: an actor acting for the subject, no further hop).
/// - A token without `act` is refused unless
///   [`or_direct`](RequireActor::or_direct).
///
/// The guard judges the actors; it never makes one the principal: the
/// handler's `Claims::sub()` and every other guard read the token's own
/// claims (an actor's `sub`, scopes or roles are never the caller's).
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_jwt_auth::delegation::RequireActor;
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let agents = RequireActor::any(["mcp-gateway", "agent-1"]).max_depth(2).or_direct();
/// let app: Router = Router::new()
///     .route("/orders", post(|| async { "ok" }))
///     .route_layer(agents)
///     .route_layer(JwtAuthLayer::new(verifier));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RequireActor<R = DefaultRejection> {
    rule: Arc<Rule>,
    paths: Paths,
    rejection: R,
}

#[derive(Debug, Clone)]
struct Rule {
    subs: Box<[Box<str>]>,
    issuers: Box<[Box<str>]>,
    max_depth: usize,
    direct: bool,
}

impl RequireActor {
    /// Allows actors whose `sub` is one of `subs` (none given: no actor).
    pub fn any<S: Into<String>>(subs: impl IntoIterator<Item = S>) -> Self {
        RequireActor {
            rule: Arc::new(Rule {
                subs: subs.into_iter().map(|s| s.into().into()).collect(),
                issuers: Box::new([]),
                max_depth: 1,
                direct: false,
            }),
            paths: None,
            rejection: DefaultRejection::default(),
        }
    }
}

impl<R> RequireActor<R> {
    fn edit(mut self, f: impl FnOnce(&mut Rule)) -> Self {
        let mut rule = (*self.rule).clone();
        f(&mut rule);
        self.rule = Arc::new(rule);
        self
    }

    /// At most `depth` actors in the chain (default 1).
    #[must_use]
    pub fn max_depth(self, depth: usize) -> Self {
        self.edit(|r| r.max_depth = depth)
    }

    /// Lets tokens without `act` through too (the subject acting itself).
    #[must_use]
    pub fn or_direct(self) -> Self {
        self.edit(|r| r.direct = true)
    }

    /// Issuers an actor's `iss` may name besides the token's own.
    #[must_use]
    pub fn actor_issuers<S: Into<String>>(self, issuers: impl IntoIterator<Item = S>) -> Self {
        let issuers = issuers.into_iter().map(|s| s.into().into()).collect();
        self.edit(|r| r.issuers = issuers)
    }

    /// Applies the guard only to these request paths (gRPC methods),
    /// matched on the normalised path; see
    /// [`RequireRole::paths`](crate::RequireRole::paths).
    ///
    /// # Errors
    /// As [`RequireRole::paths`](crate::RequireRole::paths).
    pub fn paths<S: Into<String>>(
        mut self,
        paths: impl IntoIterator<Item = S>,
    ) -> Result<Self, crate::BuildError> {
        self.paths = paths_from(paths)?;
        Ok(self)
    }

    /// Answers refusals with `rejection` instead of [`DefaultRejection`].
    pub fn on_rejection<R2>(self, rejection: R2) -> RequireActor<R2> {
        RequireActor {
            rule: self.rule,
            paths: self.paths,
            rejection,
        }
    }

    /// The same check from a handler: `Err` is the answer the guard would give.
    ///
    /// ```
    /// use tower_jwt_auth::Claims;
    /// use tower_jwt_auth::delegation::RequireActor;
    ///
    /// fn by_gateway(claims: &Claims) -> bool {
    ///     RequireActor::any(["mcp-gateway"]).check(claims).is_ok()
    /// }
    /// # let _ = by_gateway;
    /// ```
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] for an actor not allowed, a chain too deep,
    /// or no `act`; [`AuthError::InvalidClaim`] for a malformed `act`.
    pub fn check<C>(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        verdict(&self.rule, claims.token())
    }
}

fn verdict(rule: &Rule, claims: &TokenClaims) -> Result<(), AuthError> {
    let chain = ActorChain::read(claims.value())?;
    if chain.is_empty() {
        return if rule.direct {
            Ok(())
        } else {
            Err(AuthError::Forbidden(
                "requires a delegated token (an `act` claim)".into(),
            ))
        };
    }
    if chain.len() > rule.max_depth {
        return Err(AuthError::Forbidden(format!(
            "the `act` chain holds {} actors, more than {}",
            chain.len(),
            rule.max_depth
        )));
    }
    let token_iss = claims.registered().iss();
    for actor in &chain {
        let known = actor
            .sub()
            .is_some_and(|sub| rule.subs.iter().any(|s| **s == *sub));
        let issuer = match actor.iss() {
            None => true,
            Some(iss) => token_iss == Some(iss) || rule.issuers.iter().any(|i| **i == *iss),
        };
        if !known || !issuer {
            return Err(AuthError::Forbidden(
                "an actor of the `act` chain is not allowed".into(),
            ));
        }
    }
    Ok(())
}

impl<R: fmt::Debug> fmt::Debug for RequireActor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireActor")
            .field("actors", &self.rule.subs)
            .field("actor_issuers", &self.rule.issuers)
            .field("max_depth", &self.rule.max_depth)
            .field("direct", &self.rule.direct)
            .field("paths", &self.paths)
            .field("rejection", &self.rejection)
            .finish()
    }
}

impl<S, R: Clone> Layer<S> for RequireActor<R> {
    type Service = Guard<S, R>;

    fn layer(&self, inner: S) -> Guard<S, R> {
        let rule = Arc::clone(&self.rule);
        Guard::new(
            inner,
            self.rejection.clone(),
            self.paths.clone(),
            Arc::new(move |ext| match token_claims(ext) {
                Ok(t) => verdict(&rule, t).map_or_else(Verdict::Deny, |()| Verdict::Allow),
                Err(v) => v,
            }),
        )
    }
}
