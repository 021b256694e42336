//! OpenAPI security from what the layer enforces (features `utoipa` and
//! `aide`): the security schemes from the issuer (or the resource
//! metadata), and each operation's security requirement from the very
//! guards that protect its route, so that a guarded route and its
//! documentation cannot disagree.
//!
//! - [`Requirement`]: what one route demands, built from its guards
//!   ([`RequireScope`], [`RequireRole`]): `any` gives alternatives, `all`
//!   one set, and two guards combine as both.
//! - [`Security`]: the schemes and the routes' requirements; it writes
//!   them into a document: [`Security::apply_utoipa`],
//!   [`Security::apply_aide`], or any OpenAPI JSON ([`Security::apply`]).
//!
//! The schemes are `bearer` (`http`, `bearerFormat: JWT`), always;
//! `oidc` (`openIdConnect`, the issuer's discovery URL) when the issuer is
//! known; `oauth2` when a flow's URLs are given, with every scope the
//! routes demand. An operation's `security` lists one requirement per
//! scheme and alternative: scopes for `oidc` and `oauth2`; for `bearer`,
//! the roles and then the scopes (OpenAPI 3.1 lets a requirement of
//! another scheme type name the roles it needs). An optional route also
//! lists `{}` (no token), unless it has a guard (a guard refuses a
//! request without a token). Operations get a `401` response, and a `403`
//! when their guards demand something, unless they have their own.
//!
//! ```
//! use http::Method;
//! use tower_jwt_auth::openapi::{Requirement, Security};
//! use tower_jwt_auth::{RequireRole, RequireScope};
//!
//! // The guards the router uses...
//! let writers = RequireScope::any(["write"]);
//! let admins = RequireRole::any(["admin"]);
//! // ...are the ones the document reads.
//! let security = Security::new()
//!     .issuer("https://login.example.com/realms/demo")
//!     .route("/me", Method::GET, Requirement::authenticated())
//!     .route("/write", Method::POST, Requirement::authenticated().guard(&writers))
//!     .route("/admin", Method::GET, Requirement::authenticated().guard(&admins))
//!     .route("/maybe", Method::GET, Requirement::optional());
//!
//! let mut doc = serde_json::json!({
//!     "openapi": "3.1.0",
//!     "info": {"title": "demo", "version": "1"},
//!     "paths": {}
//! });
//! security.apply(&mut doc)?;
//! assert_eq!(doc["paths"]["/write"]["post"]["security"][1], serde_json::json!({"oidc": ["write"]}));
//! assert_eq!(doc["components"]["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
//! # Ok::<(), tower_jwt_auth::BuildError>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;

use http::Method;
use serde_json::{Map, Value, json};

use crate::error::BuildError;
use crate::guard::rules::{RequireRole, RequireScope};
use crate::metadata::ResourceMetadata;

/// The name of the `http` bearer scheme in `components.securitySchemes`.
///
/// ```
/// use tower_jwt_auth::openapi::{Security, BEARER, OIDC};
/// let mut doc = serde_json::json!({});
/// Security::new().issuer("https://login.example.com").apply(&mut doc)?;
/// let schemes = &doc["components"]["securitySchemes"];
/// assert!(schemes[BEARER].is_object() && schemes[OIDC].is_object());
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub const BEARER: &str = "bearer";
/// The name of the `openIdConnect` scheme (with [`Security::issuer`]).
///
/// ```
/// # use tower_jwt_auth::openapi::{Security, OIDC};
/// let mut doc = serde_json::json!({});
/// Security::new().issuer("https://login.example.com").apply(&mut doc)?;
/// assert_eq!(
///     doc["components"]["securitySchemes"][OIDC]["openIdConnectUrl"],
///     "https://login.example.com/.well-known/openid-configuration"
/// );
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub const OIDC: &str = "oidc";
/// The name of the `oauth2` scheme (with a flow).
///
/// ```
/// # use tower_jwt_auth::openapi::{Security, OAUTH2};
/// let mut doc = serde_json::json!({});
/// Security::new().client_credentials("https://login.example.com/token").apply(&mut doc)?;
/// assert_eq!(doc["components"]["securitySchemes"][OAUTH2]["type"], "oauth2");
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub const OAUTH2: &str = "oauth2";

/// One way to satisfy a route: all these scopes and roles.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Alternative {
    scopes: BTreeSet<String>,
    roles: BTreeSet<String>,
}

/// A guard whose demand a document can state: [`RequireScope`] and
/// [`RequireRole`]. (Sealed: a predicate of [`RequireClaims`](crate::RequireClaims)
/// has no OpenAPI form.)
///
/// ```
/// use tower_jwt_auth::openapi::{Documented, Requirement};
/// use tower_jwt_auth::RequireRole;
///
/// fn documented(guard: &impl Documented) -> Requirement {
///     Requirement::authenticated().guard(guard)
/// }
/// # let _ = documented(&RequireRole::any(["admin"]));
/// ```
pub trait Documented: sealed::Sealed {
    #[doc(hidden)]
    fn demand(&self) -> Demand;
}

mod sealed {
    pub trait Sealed {}
    impl<R> Sealed for crate::guard::rules::RequireScope<R> {}
    impl<R> Sealed for crate::guard::rules::RequireRole<R> {}
}

/// What a guard demands (see [`Documented`]).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Demand {
    wanted: Vec<String>,
    all: bool,
    scopes: bool,
}

impl<R> Documented for RequireScope<R> {
    fn demand(&self) -> Demand {
        let (wanted, all) = self.wanted();
        Demand {
            wanted,
            all,
            scopes: true,
        }
    }
}

impl<R> Documented for RequireRole<R> {
    fn demand(&self) -> Demand {
        let (wanted, all) = self.wanted();
        Demand {
            wanted,
            all,
            scopes: false,
        }
    }
}

/// What one route demands, read from its guards.
///
/// ```
/// use tower_jwt_auth::openapi::Requirement;
/// use tower_jwt_auth::RequireScope;
///
/// let r = Requirement::authenticated().guard(&RequireScope::any(["read", "admin"]));
/// assert_eq!(r.scopes(), [vec!["admin".to_owned()], vec!["read".to_owned()]]);
/// let r = Requirement::authenticated().guard(&RequireScope::all(["read", "write"]));
/// assert_eq!(r.scopes(), [vec!["read".to_owned(), "write".to_owned()]]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    optional: bool,
    alternatives: BTreeSet<Alternative>,
}

impl Requirement {
    /// A valid token, nothing more (the auth layer alone).
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Requirement;
    /// let me = Requirement::authenticated();
    /// # let _ = me;
    /// ```
    pub fn authenticated() -> Self {
        Requirement {
            optional: false,
            alternatives: BTreeSet::from([Alternative::default()]),
        }
    }

    /// A valid token or none (an `optional()` auth layer).
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Requirement;
    /// let maybe = Requirement::optional();
    /// # let _ = maybe;
    /// ```
    pub fn optional() -> Self {
        Requirement {
            optional: true,
            ..Requirement::authenticated()
        }
    }

    /// Adds a guard of the route: its `any` list gives alternatives, its
    /// `all` list one set, on top of what the route already demands.
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Requirement;
    /// use tower_jwt_auth::{RequireRole, RequireScope};
    /// let r = Requirement::authenticated()
    ///     .guard(&RequireRole::any(["admin"]))
    ///     .guard(&RequireScope::all(["write"]));
    /// # let _ = r;
    /// ```
    pub fn guard(mut self, guard: &impl Documented) -> Self {
        // A guard refuses a request without a token (401): the route is
        // no longer optional.
        self.optional = false;
        let demand = guard.demand();
        let options: Vec<Vec<String>> = if demand.all {
            vec![demand.wanted]
        } else {
            demand.wanted.into_iter().map(|w| vec![w]).collect()
        };
        self.alternatives = self
            .alternatives
            .iter()
            .flat_map(|alt| {
                options.iter().map(move |option| {
                    let mut alt = alt.clone();
                    let set = if demand.scopes {
                        &mut alt.scopes
                    } else {
                        &mut alt.roles
                    };
                    set.extend(option.iter().cloned());
                    alt
                })
            })
            .collect();
        self
    }

    /// The scopes of each alternative, as the `oidc` and `oauth2`
    /// requirements list them (sorted).
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Requirement;
    /// assert_eq!(Requirement::authenticated().scopes(), [Vec::<String>::new()]);
    /// ```
    pub fn scopes(&self) -> Vec<Vec<String>> {
        self.alternatives
            .iter()
            .map(|a| a.scopes.iter().cloned().collect())
            .collect()
    }

    /// Whether some token can pass: false after a guard whose `any` list
    /// is empty (no alternative is left).
    fn admits_someone(&self) -> bool {
        self.optional || !self.alternatives.is_empty()
    }

    /// Whether the route demands more than a valid token.
    fn demands(&self) -> bool {
        self.alternatives
            .iter()
            .any(|a| !a.scopes.is_empty() || !a.roles.is_empty())
    }
}

/// An OAuth 2.0 flow of the `oauth2` scheme.
#[derive(Clone, Debug)]
enum Flow {
    ClientCredentials {
        token_url: String,
    },
    AuthorizationCode {
        authorization_url: String,
        token_url: String,
    },
}

/// The security schemes of a document and the requirement of each route
/// (see the [module docs](self)).
///
/// ```
/// use http::Method;
/// use tower_jwt_auth::metadata::ResourceMetadata;
/// use tower_jwt_auth::openapi::{Requirement, Security};
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// let metadata = ResourceMetadata::builder("https://api.example.com")
///     .authorization_servers(["https://login.example.com"])
///     .build()?;
/// let security = Security::from_metadata(&metadata)
///     .client_credentials("https://login.example.com/oauth/token")
///     .route("/me", Method::GET, Requirement::authenticated());
/// # let _ = security;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Security {
    discovery: Option<String>,
    flow: Option<Flow>,
    /// Scopes the resource supports beyond those the routes demand.
    scopes: BTreeSet<String>,
    routes: Vec<(String, Method, Requirement)>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("discovery", &self.discovery)
            .field("flow", &self.flow)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// The `bearer` scheme alone, no route yet.
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Security;
    /// let security = Security::new();
    /// # let _ = security;
    /// ```
    pub fn new() -> Self {
        Security::default()
    }

    /// The schemes of a resource's metadata (RFC 9728): `oidc` from its
    /// first authorization server, and its `scopes_supported`.
    ///
    /// ```
    /// # use tower_jwt_auth::{metadata::ResourceMetadata, openapi::Security};
    /// # let metadata = ResourceMetadata::builder("https://api.example.com").build().unwrap();
    /// let security = Security::from_metadata(&metadata);
    /// # let _ = security;
    /// ```
    pub fn from_metadata(metadata: &ResourceMetadata) -> Self {
        let doc: Value = serde_json::from_str(metadata.document()).unwrap_or_default();
        let mut security = Security::new();
        if let Some(issuer) = doc["authorization_servers"][0].as_str() {
            security = security.issuer(issuer);
        }
        if let Some(scopes) = doc["scopes_supported"].as_array() {
            security
                .scopes
                .extend(scopes.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        security
    }

    /// The `oidc` scheme: the issuer's discovery document
    /// (`{issuer}/.well-known/openid-configuration`).
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Security;
    /// let security = Security::new().issuer("https://accounts.google.com");
    /// # let _ = security;
    /// ```
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.discovery = Some(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ));
        self
    }

    /// The `oauth2` scheme with the client-credentials flow.
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Security;
    /// let security = Security::new().client_credentials("https://login.example.com/token");
    /// # let _ = security;
    /// ```
    pub fn client_credentials(mut self, token_url: impl Into<String>) -> Self {
        self.flow = Some(Flow::ClientCredentials {
            token_url: token_url.into(),
        });
        self
    }

    /// The `oauth2` scheme with the authorization-code flow.
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::Security;
    /// let security = Security::new().authorization_code(
    ///     "https://login.example.com/authorize",
    ///     "https://login.example.com/token",
    /// );
    /// # let _ = security;
    /// ```
    pub fn authorization_code(
        mut self,
        authorization_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Self {
        self.flow = Some(Flow::AuthorizationCode {
            authorization_url: authorization_url.into(),
            token_url: token_url.into(),
        });
        self
    }

    /// The requirement of the operation `method` on `path` (the path as
    /// the document writes it, `/items/{id}`).
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::{Requirement, Security};
    /// let security = Security::new().route("/me", http::Method::GET, Requirement::authenticated());
    /// # let _ = security;
    /// ```
    pub fn route(
        mut self,
        path: impl Into<String>,
        method: Method,
        requirement: Requirement,
    ) -> Self {
        self.routes.push((path.into(), method, requirement));
        self
    }

    /// Every scope a route demands or the resource supports.
    fn all_scopes(&self) -> BTreeSet<String> {
        let mut scopes = self.scopes.clone();
        for (_, _, r) in &self.routes {
            for alt in &r.alternatives {
                scopes.extend(alt.scopes.iter().cloned());
            }
        }
        scopes
    }

    /// `components.securitySchemes`.
    fn schemes(&self) -> Map<String, Value> {
        let mut schemes = Map::new();
        schemes.insert(
            BEARER.into(),
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
        );
        if let Some(url) = &self.discovery {
            schemes.insert(
                OIDC.into(),
                json!({"type": "openIdConnect", "openIdConnectUrl": url}),
            );
        }
        if let Some(flow) = &self.flow {
            let scopes: Map<String, Value> = self
                .all_scopes()
                .into_iter()
                .map(|s| {
                    let text = format!("the `{s}` scope");
                    (s, Value::String(text))
                })
                .collect();
            let flows = match flow {
                // `refreshUrl` is the token endpoint (RFC 6749 §6), named
                // so that aide (which writes an absent one as `null`, an
                // invalid document) and utoipa write the same valid flow.
                Flow::ClientCredentials { token_url } => json!({
                    "clientCredentials": {
                        "tokenUrl": token_url,
                        "refreshUrl": token_url,
                        "scopes": scopes
                    }
                }),
                Flow::AuthorizationCode {
                    authorization_url,
                    token_url,
                } => json!({
                    "authorizationCode": {
                        "authorizationUrl": authorization_url,
                        "tokenUrl": token_url,
                        "refreshUrl": token_url,
                        "scopes": scopes
                    }
                }),
            };
            schemes.insert(OAUTH2.into(), json!({"type": "oauth2", "flows": flows}));
        }
        schemes
    }

    /// An operation's `security`: one requirement per scheme and
    /// alternative, `{}` first for an optional route.
    fn requirements(&self, requirement: &Requirement) -> Vec<Value> {
        let mut list = Vec::new();
        if requirement.optional {
            list.push(json!({}));
        }
        for alt in &requirement.alternatives {
            let bearer: Vec<&String> = alt.roles.iter().chain(&alt.scopes).collect();
            list.push(json!({ BEARER: bearer }));
            if self.discovery.is_some() {
                list.push(json!({ OIDC: alt.scopes }));
            }
            if self.flow.is_some() {
                list.push(json!({ OAUTH2: alt.scopes }));
            }
        }
        list
    }

    /// Writes the schemes and each route's requirement into an OpenAPI
    /// document (JSON): the operation is made when the document has none
    /// (with a `200` response), its `security` replaced, and `401` (and
    /// `403` when the guards demand something) added to its responses
    /// unless it has them.
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::{Requirement, Security};
    /// let mut doc = serde_json::json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}});
    /// Security::new()
    ///     .route("/me", http::Method::GET, Requirement::authenticated())
    ///     .apply(&mut doc)?;
    /// assert_eq!(doc["paths"]["/me"]["get"]["security"], serde_json::json!([{"bearer": []}]));
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] (setting `openapi`), with nothing
    /// written, when a route's guards admit no one (a guard with an empty
    /// `any` list): OpenAPI cannot say so, and an empty `security` would
    /// document the route as public.
    pub fn apply(&self, doc: &mut Value) -> Result<(), BuildError> {
        if let Some((path, method, _)) = self.routes.iter().find(|(_, _, r)| !r.admits_someone()) {
            return Err(BuildError::config(
                "openapi",
                format!(
                    "the guards of {method} {path} admit no one (an empty `any` list): \
                     OpenAPI has no way to say so, and no requirement would read as public"
                ),
            ));
        }
        let Some(root) = doc.as_object_mut() else {
            return Ok(());
        };
        let components = root
            .entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(components) = components {
            let schemes = components
                .entry("securitySchemes")
                .or_insert_with(|| json!({}));
            if let Some(schemes) = schemes.as_object_mut() {
                schemes.extend(self.schemes());
            }
        }
        let paths = root.entry("paths").or_insert_with(|| json!({}));
        let Some(paths) = paths.as_object_mut() else {
            return Ok(());
        };
        for (path, method, requirement) in &self.routes {
            let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            let method = method.as_str().to_ascii_lowercase();
            let op = item
                .entry(method)
                .or_insert_with(|| json!({"responses": {"200": {"description": "OK"}}}));
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            op.insert(
                "security".into(),
                Value::Array(self.requirements(requirement)),
            );
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            if let Some(responses) = responses.as_object_mut() {
                responses.entry("401").or_insert_with(
                    || json!({"description": "no valid access token (WWW-Authenticate: Bearer)"}),
                );
                if requirement.demands() {
                    responses.entry("403").or_insert_with(
                        || json!({"description": "the token lacks a required scope or role"}),
                    );
                }
            }
        }
        Ok(())
    }

    /// [`apply`](Security::apply) to a utoipa document (feature `utoipa`).
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::{Requirement, Security};
    /// use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
    /// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
    /// let mut doc = OpenApiBuilder::new()
    ///     .info(InfoBuilder::new().title("demo").version("1").build())
    ///     .build();
    /// Security::new()
    ///     .route("/me", http::Method::GET, Requirement::authenticated())
    ///     .apply_utoipa(&mut doc)?;
    /// assert!(doc.components.unwrap().security_schemes.contains_key("bearer"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] (setting `openapi`) if the document
    /// does not read back as utoipa's type (not expected).
    #[cfg(feature = "utoipa")]
    pub fn apply_utoipa(&self, doc: &mut utoipa::openapi::OpenApi) -> Result<(), BuildError> {
        *doc = self.round_trip(&*doc)?;
        Ok(())
    }

    /// [`apply`](Security::apply) to an aide document (feature `aide`).
    ///
    /// ```
    /// # use tower_jwt_auth::openapi::{Requirement, Security};
    /// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
    /// let mut doc = aide::openapi::OpenApi::default();
    /// Security::new()
    ///     .route("/me", http::Method::GET, Requirement::authenticated())
    ///     .apply_aide(&mut doc)?;
    /// assert!(doc.components.unwrap().security_schemes.contains_key("bearer"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`apply_utoipa`](Security::apply_utoipa).
    #[cfg(feature = "aide")]
    pub fn apply_aide(&self, doc: &mut aide::openapi::OpenApi) -> Result<(), BuildError> {
        // aide's document holds a `&'static str` (its version), which
        // does not read back from JSON: only the parts this writes do.
        let mut json = serde_json::to_value(&*doc).map_err(unreadable)?;
        self.apply(&mut json)?;
        doc.components =
            Some(serde_json::from_value(json["components"].take()).map_err(unreadable)?);
        doc.paths = Some(serde_json::from_value(json["paths"].take()).map_err(unreadable)?);
        Ok(())
    }

    /// The document through its JSON, with [`apply`](Security::apply).
    #[cfg(feature = "utoipa")]
    fn round_trip<D>(&self, doc: &D) -> Result<D, BuildError>
    where
        D: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut json = serde_json::to_value(doc).map_err(unreadable)?;
        self.apply(&mut json)?;
        serde_json::from_value(json).map_err(unreadable)
    }
}

/// A document that did not read back from its JSON (not expected).
#[cfg(any(feature = "utoipa", feature = "aide"))]
fn unreadable(e: serde_json::Error) -> BuildError {
    BuildError::config("openapi", format!("the document does not read back: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_gives_alternatives_all_one_set_and_guards_combine_as_both() {
        let r = Requirement::authenticated()
            .guard(&RequireRole::any(["admin", "ops"]))
            .guard(&RequireScope::all(["read", "write"]));
        let alts: Vec<(Vec<&str>, Vec<&str>)> = r
            .alternatives
            .iter()
            .map(|a| {
                (
                    a.roles.iter().map(String::as_str).collect(),
                    a.scopes.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            alts,
            [
                (vec!["admin"], vec!["read", "write"]),
                (vec!["ops"], vec!["read", "write"]),
            ]
        );
        let security = Security::new().issuer("https://i.example/");
        let list = security.requirements(&Requirement::optional());
        assert_eq!(
            list,
            [json!({}), json!({"bearer": []}), json!({"oidc": []})]
        );
        // A guard refuses a request without a token (401), so an optional
        // route with a guard is optional no more: no `{}`.
        let list = security.requirements(&Requirement::optional().guard(&RequireScope::any(["a"])));
        assert_eq!(list, [json!({"bearer": ["a"]}), json!({"oidc": ["a"]})]);
        assert_eq!(
            security.discovery.as_deref(),
            Some("https://i.example/.well-known/openid-configuration")
        );
    }

    /// A guard that admits no one (an empty `any` list) has no OpenAPI
    /// form: writing it would say `security: []`, public, for a route that
    /// refuses everyone. Writing the document fails instead.
    #[test]
    fn an_empty_any_is_never_documented_as_public() {
        for requirement in [
            Requirement::authenticated().guard(&RequireScope::any(Vec::<String>::new())),
            Requirement::optional().guard(&RequireRole::any(Vec::<String>::new())),
        ] {
            let mut doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}});
            let err = Security::new()
                .route("/x", http::Method::GET, requirement)
                .apply(&mut doc)
                .unwrap_err();
            assert!(err.to_string().contains("GET /x"), "{err}");
            assert_eq!(doc["paths"].get("/x"), None, "nothing written: {doc}");
        }
    }
}
