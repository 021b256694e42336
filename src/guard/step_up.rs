//! [`RequireStepUp`]: RFC 9470 step-up authentication, a guard on how the
//! user authenticated (`acr`) and how recently (`auth_time`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::{Guard, Paths, Verdict, paths_from, token_claims};
use crate::claims::{Claims, TokenClaims};
use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::AuthError;
use crate::reject::DefaultRejection;

/// Requires a strong enough (`acr` in a set) and/or recent enough
/// (`auth_time` within a max age) user authentication (RFC 9470). A
/// refusal is 401 with `WWW-Authenticate: Bearer
/// error="insufficient_user_authentication"` and `acr_values="…"` /
/// `max_age="…"`, which tells the client to send the user back to the
/// authorization server with those parameters.
///
/// A token without `acr` (when a set is required) or without `auth_time`
/// (when a max age is) is refused the same way.
///
/// ```
/// use std::time::Duration;
/// use axum::{routing::post, Router};
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, RequireStepUp, Verifier};
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let mfa = RequireStepUp::acr(["urn:example:mfa"]).max_age(Duration::from_secs(300));
/// let app: Router = Router::new()
///     .route("/transfer", post(|| async { "sent" }))
///     .route_layer(mfa)
///     .route_layer(JwtAuthLayer::new(verifier));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RequireStepUp<R = DefaultRejection> {
    rule: Arc<Rule>,
    paths: Paths,
    rejection: R,
}

struct Rule {
    acr: Option<Box<[Box<str>]>>,
    max_age: Option<u64>,
    clock: Arc<dyn Clock>,
}

impl RequireStepUp {
    /// Requires `acr` to be one of `values` (none given: nobody).
    pub fn acr<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Self {
        RequireStepUp::new(
            Some(values.into_iter().map(|s| s.into().into()).collect()),
            None,
        )
    }

    /// Requires `auth_time` to be at most `age` ago (whole seconds).
    pub fn recent(age: Duration) -> Self {
        RequireStepUp::new(None, Some(age.as_secs()))
    }

    fn new(acr: Option<Box<[Box<str>]>>, max_age: Option<u64>) -> Self {
        RequireStepUp {
            rule: Arc::new(Rule {
                acr,
                max_age,
                clock: Arc::new(SystemClock),
            }),
            paths: None,
            rejection: DefaultRejection::default(),
        }
    }
}

impl<R> RequireStepUp<R> {
    fn edit(mut self, f: impl FnOnce(&mut Rule)) -> Self {
        let rule = &*self.rule;
        let mut new = Rule {
            acr: rule.acr.clone(),
            max_age: rule.max_age,
            clock: Arc::clone(&rule.clock),
        };
        f(&mut new);
        self.rule = Arc::new(new);
        self
    }

    /// Also requires `auth_time` to be at most `age` ago (whole seconds).
    #[must_use]
    pub fn max_age(self, age: Duration) -> Self {
        self.edit(|r| r.max_age = Some(age.as_secs()))
    }

    /// Reads the time from `clock` (default: the system clock).
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        self.edit(|r| r.clock = Arc::new(clock))
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
    pub fn on_rejection<R2>(self, rejection: R2) -> RequireStepUp<R2> {
        RequireStepUp {
            rule: self.rule,
            paths: self.paths,
            rejection,
        }
    }

    /// The same check from a handler: `Err` is the 401 the guard would give.
    ///
    /// ```
    /// use tower_jwt_auth::{Claims, RequireStepUp};
    ///
    /// fn may_wire(claims: &Claims) -> bool {
    ///     RequireStepUp::acr(["urn:example:mfa"]).check(claims).is_ok()
    /// }
    /// # let _ = may_wire;
    /// ```
    ///
    /// # Errors
    /// [`AuthError::InsufficientUserAuthentication`], or
    /// [`AuthError::ClockUnavailable`] when a max age is set and the clock
    /// cannot be read.
    pub fn check<C>(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        verdict(&self.rule, claims.token())
    }
}

fn verdict(rule: &Rule, claims: &TokenClaims) -> Result<(), AuthError> {
    let payload = claims.value();
    let refuse = || AuthError::InsufficientUserAuthentication {
        acr_values: rule.acr.as_ref().map(|a| a.join(" ")),
        max_age: rule.max_age,
    };
    if let Some(acr) = &rule.acr {
        let got = payload.get("acr").and_then(|v| v.as_str());
        if !got.is_some_and(|got| acr.iter().any(|a| **a == *got)) {
            return Err(refuse());
        }
    }
    if let Some(max_age) = rule.max_age {
        let now = unix_secs(&*rule.clock)?;
        // A NumericDate (a JSON number); anything else counts as absent.
        let Some(auth_time) = payload.get("auth_time").and_then(|v| v.as_f64()) else {
            return Err(refuse());
        };
        if now - auth_time > max_age as f64 {
            return Err(refuse());
        }
    }
    Ok(())
}

impl<R: fmt::Debug> fmt::Debug for RequireStepUp<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireStepUp")
            .field("acr", &self.rule.acr)
            .field("max_age", &self.rule.max_age)
            .field("paths", &self.paths)
            .field("rejection", &self.rejection)
            .finish()
    }
}

impl<S, R: Clone> Layer<S> for RequireStepUp<R> {
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
