//! The rule guards: [`RequireRole`], [`RequireScope`], [`RequireClaims`].

use std::fmt;
use std::sync::Arc;

use http::Extensions;
use serde_json::Value;
use tower_layer::Layer;

use super::Guard;
use crate::claims::{
    ClaimSource, Claims, Found, JsonClaims, TokenClaims, find_claims, find_token_claims,
};
use crate::error::{AuthError, BuildError};
use crate::reject::DefaultRejection;

/// A set of wanted values (roles or scopes), where to look for them, and
/// whether any or all of them are needed.
#[derive(Clone, Debug)]
struct Rule {
    wanted: Arc<[Box<str>]>,
    all: bool,
    sources: Arc<[ClaimSource]>,
}

impl Rule {
    fn new<S: Into<String>>(
        wanted: impl IntoIterator<Item = S>,
        all: bool,
        sources: Vec<ClaimSource>,
    ) -> Self {
        Rule {
            wanted: wanted.into_iter().map(|s| s.into().into()).collect(),
            all,
            sources: sources.into(),
        }
    }

    fn allows(&self, payload: &Value) -> bool {
        // An empty list (say, roles from a config that came back empty)
        // lets nobody in, whether "any of" or "all of".
        if self.wanted.is_empty() {
            return false;
        }
        let has = |w: &str| self.sources.iter().any(|s| s.contains(payload, w));
        if self.all {
            self.wanted.iter().all(|w| has(w))
        } else {
            self.wanted.iter().any(|w| has(w))
        }
    }

    fn list(&self, sep: &str) -> String {
        self.wanted.join(sep)
    }
}

/// What a guard decided about a request.
pub(crate) enum Verdict {
    Allow,
    Deny(AuthError),
    /// No auth layer ran before the guard: a wiring bug.
    NotWired(&'static str),
}

const NO_LAYER: &str = "a guard found no verified claims and no sign of JwtAuthLayer: add \
    JwtAuthLayer outside the guard (in axum, call .route_layer(guard) before \
    .route_layer(auth), or put the guard on the routes and the auth layer on the router)";

const WRONG_TYPE: &str = "RequireClaims::<C> found no Claims<C> of its type from the innermost \
    auth layer: make its claims type the one given to that layer's JwtAuthLayer::claims::<C>()";

/// The claims a guard judges: the innermost auth layer's, found by the
/// one lookup every guard goes through ([`find_claims`]); what a guard
/// answers when there are none.
fn admitted<T>(found: Found<'_, T>) -> Result<&T, Verdict> {
    match found {
        Found::Claims(t) => Ok(t),
        Found::Anonymous => Err(Verdict::Deny(AuthError::MissingToken)),
        Found::OtherType => Err(Verdict::NotWired(WRONG_TYPE)),
        Found::NoLayer => Err(Verdict::NotWired(NO_LAYER)),
    }
}

/// The type-independent claims a guard judges (see [`admitted`]).
pub(super) fn token_claims(ext: &Extensions) -> Result<&TokenClaims, Verdict> {
    admitted(find_token_claims(ext))
}

/// Request paths a guard is limited to (`None`: every path).
pub(crate) type Paths = Option<Arc<[Box<str>]>>;

/// The paths of a guard's `.paths(..)`, each checked by
/// [`crate::path::entries`]; an empty list is refused too (a guard limited
/// to no path would check nothing).
pub(super) fn paths_from<S: Into<String>>(
    paths: impl IntoIterator<Item = S>,
) -> Result<Paths, BuildError> {
    let paths = crate::path::entries("paths", paths)?;
    if paths.is_empty() {
        return Err(BuildError::config(
            "paths",
            "no path given: a guard limited to no path checks nothing \
             (leave out .paths(..) to check every path)",
        ));
    }
    Ok(Some(paths))
}

pub(crate) type Check = Arc<dyn Fn(&Extensions) -> Verdict + Send + Sync>;
type Predicate<C> = Arc<dyn Fn(&Claims<C>) -> bool + Send + Sync>;

/// Requires a role: any of a list ([`RequireRole::any`]) or all of it
/// ([`RequireRole::all`]). Roles are read from the `roles` claim unless
/// [`sources`](RequireRole::sources) says otherwise. A refusal is 403.
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_auth::{Algorithm, ClaimSource, JwtAuthLayer, Key, RequireRole, Verifier};
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let admins = RequireRole::any(["admin"])
///     .sources([ClaimSource::roles(), ClaimSource::keycloak_realm_roles()]);
/// let app: Router = Router::new()
///     .route("/admin", get(|| async { "hello, admin" }))
///     .route_layer(admins)                        // runs second
///     .route_layer(JwtAuthLayer::new(verifier));  // runs first
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RequireRole<R = DefaultRejection> {
    rule: Rule,
    paths: Paths,
    rejection: R,
}

impl RequireRole {
    /// Allows callers that have at least one of `roles` (none given: nobody).
    pub fn any<S: Into<String>>(roles: impl IntoIterator<Item = S>) -> Self {
        RequireRole {
            rule: Rule::new(roles, false, vec![ClaimSource::roles()]),
            paths: None,
            rejection: DefaultRejection::default(),
        }
    }

    /// Allows callers that have every one of `roles` (none given: nobody).
    pub fn all<S: Into<String>>(roles: impl IntoIterator<Item = S>) -> Self {
        RequireRole {
            rule: Rule::new(roles, true, vec![ClaimSource::roles()]),
            paths: None,
            rejection: DefaultRejection::default(),
        }
    }
}

impl<R> RequireRole<R> {
    /// Where roles are read (replacing the default, `roles`); a role found
    /// in any of them counts.
    pub fn sources(mut self, sources: impl IntoIterator<Item = ClaimSource>) -> Self {
        self.rule.sources = sources.into_iter().collect();
        self
    }

    /// Applies the guard only to requests under `paths`, matched by whole
    /// path segments: `/admin` covers `/admin`, `/admin/` and `/admin/x`,
    /// never `/administrator`. Others pass unchecked. For gRPC, where one
    /// layer wraps the whole server, a path is a method,
    /// `/package.Service/Method`, or a service, `/package.Service`, for all
    /// its methods.
    ///
    /// Matching is on the normalised path: a request path that is not in
    /// normal form (a `.`, `..` or empty segment, `\`, `;`, or an escape
    /// some reader decodes into another path: `%2f`, `%61`, `%00`, ...) is
    /// checked by the guard whatever it starts with, since a proxy in front
    /// may read `//admin`, `/x/../admin` or `/%61dmin` as `/admin`.
    ///
    /// The path is the request's as the guard sees it: under axum's
    /// `Router::nest` the nesting prefix is already stripped, so give
    /// paths relative to where the guard is mounted (or prefer
    /// `route_layer` on the routes themselves, which needs no paths).
    ///
    /// ```
    /// use tower_jwt_auth::RequireRole;
    /// let admins = RequireRole::any(["admin"]).paths(["/demo.v1.Greeter/Shutdown"])?;
    /// # let _ = admins;
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] (setting `paths`) for no path at all,
    /// or an entry that is empty, does not start with `/`, holds a space,
    /// a control character, `?` or `#`, or is not in normal form itself.
    pub fn paths<S: Into<String>>(
        mut self,
        paths: impl IntoIterator<Item = S>,
    ) -> Result<Self, BuildError> {
        self.paths = paths_from(paths)?;
        Ok(self)
    }

    /// The same check from a handler: `Err` is the 403 the layer would give.
    ///
    /// ```
    /// use tower_jwt_auth::{Claims, ErrorKind, RequireRole};
    ///
    /// fn may_delete(claims: &Claims) -> bool {
    ///     RequireRole::any(["admin"]).check(claims).is_ok()
    /// }
    /// # let _ = may_delete;
    /// # let _ = ErrorKind::Forbidden;
    /// ```
    pub fn check<C>(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        role_verdict(&self.rule, claims.token())
    }
}

fn role_verdict(rule: &Rule, claims: &TokenClaims) -> Result<(), AuthError> {
    if rule.allows(claims.value()) {
        Ok(())
    } else {
        let how = if rule.all { "all of" } else { "one of" };
        Err(AuthError::Forbidden(format!(
            "requires {how} the roles: {}",
            rule.list(", ")
        )))
    }
}

fn scope_verdict(rule: &Rule, claims: &TokenClaims) -> Result<(), AuthError> {
    if rule.allows(claims.value()) {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope {
            required: rule.list(" "),
        })
    }
}

/// Requires an OAuth scope: any of a list ([`RequireScope::any`]) or all of
/// it ([`RequireScope::all`]). Scopes are read from `scope` and `scp`
/// unless [`sources`](RequireScope::sources) says otherwise. A refusal is
/// 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
/// scope="…"`.
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, RequireScope, Verifier};
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let app: Router = Router::new()
///     .route("/items", post(|| async { "created" }))
///     .route_layer(RequireScope::all(["items:write"]))
///     .route_layer(JwtAuthLayer::new(verifier));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RequireScope<R = DefaultRejection> {
    rule: Rule,
    paths: Paths,
    rejection: R,
}

impl RequireScope {
    /// Allows tokens that have at least one of `scopes` (none given: nobody).
    pub fn any<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        RequireScope {
            rule: Rule::new(scopes, false, default_scope_sources()),
            paths: None,
            rejection: DefaultRejection::default(),
        }
    }

    /// Allows tokens that have every one of `scopes` (none given: nobody).
    pub fn all<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        RequireScope {
            rule: Rule::new(scopes, true, default_scope_sources()),
            paths: None,
            rejection: DefaultRejection::default(),
        }
    }
}

fn default_scope_sources() -> Vec<ClaimSource> {
    vec![ClaimSource::scope(), ClaimSource::scp()]
}

impl<R> RequireScope<R> {
    /// Where scopes are read (replacing the default, `scope` and `scp`), for
    /// example [`ClaimSource::auth0_permissions`].
    pub fn sources(mut self, sources: impl IntoIterator<Item = ClaimSource>) -> Self {
        self.rule.sources = sources.into_iter().collect();
        self
    }

    /// Applies the guard only to these request paths (gRPC methods),
    /// matched on the normalised path; see [`RequireRole::paths`].
    ///
    /// # Errors
    /// As [`RequireRole::paths`].
    pub fn paths<S: Into<String>>(
        mut self,
        paths: impl IntoIterator<Item = S>,
    ) -> Result<Self, BuildError> {
        self.paths = paths_from(paths)?;
        Ok(self)
    }

    /// The same check from a handler: `Err` is the 403 the layer would give.
    ///
    /// ```
    /// use tower_jwt_auth::{AuthError, Claims, RequireScope};
    ///
    /// fn publish(claims: &Claims, draft: bool) -> Result<(), AuthError> {
    ///     if !draft {
    ///         RequireScope::any(["publish"]).check(claims)?;
    ///     }
    ///     Ok(())
    /// }
    /// # let _ = publish;
    /// ```
    pub fn check<C>(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        scope_verdict(&self.rule, claims.token())
    }
}

/// What `RequireRole` and `RequireScope` share: they differ only in where
/// they look by default and in how a refusal reads (`verdict`).
macro_rules! rule_guard {
    ($name:ident, $verdict:ident) => {
        impl<R> $name<R> {
            /// Answers refusals with `rejection` instead of [`DefaultRejection`].
            pub fn on_rejection<R2>(self, rejection: R2) -> $name<R2> {
                $name {
                    rule: self.rule,
                    paths: self.paths,
                    rejection,
                }
            }
        }

        impl<R: fmt::Debug> fmt::Debug for $name<R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("rule", &self.rule)
                    .field("paths", &self.paths)
                    .field("rejection", &self.rejection)
                    .finish()
            }
        }

        impl<S, R: Clone> Layer<S> for $name<R> {
            type Service = Guard<S, R>;

            fn layer(&self, inner: S) -> Guard<S, R> {
                let rule = self.rule.clone();
                Guard::new(
                    inner,
                    self.rejection.clone(),
                    self.paths.clone(),
                    Arc::new(move |ext| match token_claims(ext) {
                        Ok(t) => $verdict(&rule, t).map_or_else(Verdict::Deny, |()| Verdict::Allow),
                        Err(v) => v,
                    }),
                )
            }
        }
    };
}

rule_guard!(RequireRole, role_verdict);
rule_guard!(RequireScope, scope_verdict);

/// Requires the claims to satisfy a predicate; a refusal is 403.
///
/// The predicate gets the same `Claims<C>` the handler would, so `C` must
/// be the auth layer's claims type (the default JSON map unless
/// [`JwtAuthLayer::claims`](crate::JwtAuthLayer::claims) chose another).
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Key, RequireClaims, Verifier};
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let verified_email = RequireClaims::new(|c: &Claims| c.payload()["email_verified"] == true);
/// let app: Router = Router::new()
///     .route("/billing", get(|| async { "ok" }))
///     .route_layer(verified_email)
///     .route_layer(JwtAuthLayer::new(verifier));
/// # Ok(())
/// # }
/// ```
pub struct RequireClaims<C = JsonClaims, R = DefaultRejection> {
    predicate: Predicate<C>,
    why: Arc<str>,
    paths: Paths,
    rejection: R,
}

impl<C, R: Clone> Clone for RequireClaims<C, R> {
    fn clone(&self) -> Self {
        RequireClaims {
            predicate: self.predicate.clone(),
            why: self.why.clone(),
            paths: self.paths.clone(),
            rejection: self.rejection.clone(),
        }
    }
}

impl<C> RequireClaims<C> {
    /// Allows requests whose claims make `predicate` return `true`.
    pub fn new(predicate: impl Fn(&Claims<C>) -> bool + Send + Sync + 'static) -> Self {
        RequireClaims {
            predicate: Arc::new(predicate),
            why: Arc::from("the token's claims do not meet this route's requirement"),
            paths: None,
            rejection: DefaultRejection::default(),
        }
    }
}

impl<C, R> RequireClaims<C, R> {
    /// The reason given in the [`AuthError::Forbidden`] of a refusal (for
    /// logs and custom rejections; the default answer does not send it).
    pub fn reason(mut self, why: impl Into<String>) -> Self {
        self.why = Arc::from(why.into());
        self
    }

    /// Answers refusals with `rejection` instead of [`DefaultRejection`].
    pub fn on_rejection<R2>(self, rejection: R2) -> RequireClaims<C, R2> {
        RequireClaims {
            predicate: self.predicate,
            why: self.why,
            paths: self.paths,
            rejection,
        }
    }

    /// Applies the guard only to these request paths (gRPC methods),
    /// matched on the normalised path; see [`RequireRole::paths`].
    ///
    /// # Errors
    /// As [`RequireRole::paths`].
    pub fn paths<S: Into<String>>(
        mut self,
        paths: impl IntoIterator<Item = S>,
    ) -> Result<Self, BuildError> {
        self.paths = paths_from(paths)?;
        Ok(self)
    }

    /// The same check from a handler.
    ///
    /// ```
    /// use tower_jwt_auth::{Claims, RequireClaims};
    /// let adults = RequireClaims::new(|c: &Claims| c.payload()["age"].as_u64() >= Some(18));
    /// # let _ = adults;
    /// ```
    pub fn check(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        if (self.predicate)(claims) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(self.why.to_string()))
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for RequireClaims<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireClaims")
            .field("reason", &self.why)
            .field("rejection", &self.rejection)
            .finish_non_exhaustive()
    }
}

impl<S, C, R> Layer<S> for RequireClaims<C, R>
where
    C: Send + Sync + 'static,
    R: Clone,
{
    type Service = Guard<S, R>;

    fn layer(&self, inner: S) -> Guard<S, R> {
        let this = RequireClaims {
            predicate: self.predicate.clone(),
            why: self.why.clone(),
            paths: None,
            rejection: (),
        };
        Guard::new(
            inner,
            self.rejection.clone(),
            self.paths.clone(),
            Arc::new(move |ext| match admitted(find_claims::<C>(ext)) {
                Ok(claims) => this
                    .check(claims)
                    .map_or_else(Verdict::Deny, |()| Verdict::Allow),
                Err(v) => v,
            }),
        )
    }
}

/// What a rule guard demands, for the OpenAPI document: its values and
/// whether all of them are needed.
#[cfg(any(feature = "utoipa", feature = "aide"))]
macro_rules! wanted {
    ($name:ident) => {
        impl<R> $name<R> {
            pub(crate) fn wanted(&self) -> (Vec<String>, bool) {
                (
                    self.rule.wanted.iter().map(|w| w.to_string()).collect(),
                    self.rule.all,
                )
            }
        }
    };
}

#[cfg(any(feature = "utoipa", feature = "aide"))]
wanted!(RequireRole);
#[cfg(any(feature = "utoipa", feature = "aide"))]
wanted!(RequireScope);
