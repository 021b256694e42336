//! [`ClaimSource`]: where a provider keeps roles, scopes or groups in its tokens.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// Where a list of strings (roles, scopes, groups, permissions) lives in
/// the claims, as a path of member names from the top of the payload.
///
/// Each member name is taken whole: a name may contain dots, colons or
/// slashes (Auth0's namespaced claims are URLs, Cognito's is
/// `cognito:groups`), so there is no dotted-path syntax to get wrong.
///
/// The value found there is read leniently: an array gives its string
/// elements, a JSON string is **one** value (`"Domain Admins"` is one
/// group, never `Domain` and `Admins`), and anything else (a number, an
/// object, a missing member) gives no values. Odd shapes mean "no roles",
/// never an error.
///
/// Only OAuth scopes are a space-delimited list (RFC 6749 §3.3): the
/// [`scope`](ClaimSource::scope) and [`scp`](ClaimSource::scp) presets, and
/// any source marked [`space_delimited`](ClaimSource::space_delimited),
/// split a string on ASCII spaces (U+0020) only, never on tabs, line
/// breaks or other Unicode spaces; values are compared case-sensitively.
///
/// | preset | path | provider |
/// |---|---|---|
/// | [`roles`](ClaimSource::roles) | `roles` | generic, Entra ID app roles |
/// | [`scope`](ClaimSource::scope) | `scope` | OAuth 2 (RFC 9068), Keycloak, Auth0, Okta |
/// | [`scp`](ClaimSource::scp) | `scp` | Entra ID, Okta |
/// | [`keycloak_realm_roles`](ClaimSource::keycloak_realm_roles) | `realm_access.roles` | Keycloak |
/// | [`keycloak_client_roles`](ClaimSource::keycloak_client_roles) | `resource_access.<client>.roles` | Keycloak |
/// | [`auth0_permissions`](ClaimSource::auth0_permissions) | `permissions` | Auth0 RBAC |
/// | [`cognito_groups`](ClaimSource::cognito_groups) | `cognito:groups` | Amazon Cognito |
/// | [`okta_groups`](ClaimSource::okta_groups) | `groups` | Okta |
/// | [`claim`](ClaimSource::claim) | one member, any name | e.g. Auth0 `https://example.com/roles` |
/// | [`path`](ClaimSource::path) | nested members | anything else |
///
/// ```
/// use serde_json::json;
/// use tower_jwt_auth::ClaimSource;
///
/// let payload = json!({
///     "scope": "read write",
///     "realm_access": { "roles": ["admin", 7] },
///     "https://example.com/roles": ["editor"],
///     "roles": 42,
/// });
/// assert_eq!(ClaimSource::scope().read(&payload), ["read", "write"]);
/// assert_eq!(ClaimSource::keycloak_realm_roles().read(&payload), ["admin"]);
/// assert_eq!(ClaimSource::claim("https://example.com/roles").read(&payload), ["editor"]);
/// assert!(ClaimSource::roles().read(&payload).is_empty()); // a number: no roles
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClaimSource {
    path: Arc<[Box<str>]>,
    /// A string value is a space-delimited list (OAuth scopes).
    delimited: bool,
}

impl fmt::Debug for ClaimSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimSource")
            .field("path", &self.path)
            .field("space_delimited", &self.delimited)
            .finish()
    }
}

impl ClaimSource {
    /// The top-level claim named exactly `name` (dots and all).
    ///
    /// ```
    /// use tower_jwt_auth::ClaimSource;
    /// let auth0 = ClaimSource::claim("https://my-app.example.com/roles");
    /// # assert_eq!(auth0.read(&serde_json::json!({"https://my-app.example.com/roles": ["a"]})), ["a"]);
    /// ```
    pub fn claim(name: impl Into<String>) -> Self {
        ClaimSource {
            path: Arc::from([name.into().into_boxed_str()]),
            delimited: false,
        }
    }

    /// A nested claim: each segment is one member name, from the top.
    /// An empty path reads nothing.
    ///
    /// ```
    /// use tower_jwt_auth::ClaimSource;
    /// let src = ClaimSource::path(["org", "teams"]);
    /// assert_eq!(src.read(&serde_json::json!({"org": {"teams": ["a", "b"]}})), ["a", "b"]);
    /// assert_eq!(src.read(&serde_json::json!({"org": {"teams": "a b"}})), ["a b"]);
    /// ```
    pub fn path<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Self {
        ClaimSource {
            path: segments
                .into_iter()
                .map(|s| s.into().into_boxed_str())
                .collect(),
            delimited: false,
        }
    }

    /// Reads a string value as a space-delimited list, the way OAuth
    /// scopes are written (RFC 6749 §3.3): split on ASCII spaces only.
    /// Only for claims that really are such lists; a role or group name
    /// may contain spaces.
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// let perms = ClaimSource::claim("perms").space_delimited();
    /// assert_eq!(perms.read(&serde_json::json!({"perms": "a b"})), ["a", "b"]);
    /// ```
    #[must_use]
    pub fn space_delimited(mut self) -> Self {
        self.delimited = true;
        self
    }

    /// `roles`: an array of strings, or one string (one role, spaces and all).
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// assert_eq!(ClaimSource::roles().read(&serde_json::json!({"roles": "admin"})), ["admin"]);
    /// assert_eq!(ClaimSource::roles().read(&serde_json::json!({"roles": "read-only admin"})), ["read-only admin"]);
    /// ```
    pub fn roles() -> Self {
        Self::claim("roles")
    }

    /// `scope`: the space-separated OAuth scope string (an array is read too).
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// assert_eq!(ClaimSource::scope().read(&serde_json::json!({"scope": "a b"})), ["a", "b"]);
    /// ```
    pub fn scope() -> Self {
        Self::claim("scope").space_delimited()
    }

    /// `scp`: Entra ID's space-separated string, or Okta's array.
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// assert_eq!(ClaimSource::scp().read(&serde_json::json!({"scp": ["a", "b"]})), ["a", "b"]);
    /// ```
    pub fn scp() -> Self {
        Self::claim("scp").space_delimited()
    }

    /// Keycloak realm roles: `realm_access.roles`.
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// let p = serde_json::json!({"realm_access": {"roles": ["admin"]}});
    /// assert_eq!(ClaimSource::keycloak_realm_roles().read(&p), ["admin"]);
    /// ```
    pub fn keycloak_realm_roles() -> Self {
        Self::path(["realm_access", "roles"])
    }

    /// Keycloak client roles: `resource_access.<client>.roles` (the client
    /// id is one member name, even if it contains dots).
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// let p = serde_json::json!({"resource_access": {"my.api": {"roles": ["reader"]}}});
    /// assert_eq!(ClaimSource::keycloak_client_roles("my.api").read(&p), ["reader"]);
    /// ```
    pub fn keycloak_client_roles(client: impl Into<String>) -> Self {
        Self::path([
            "resource_access".to_owned(),
            client.into(),
            "roles".to_owned(),
        ])
    }

    /// Auth0 RBAC permissions: `permissions` (an array).
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// let p = serde_json::json!({"permissions": ["read:items"]});
    /// assert_eq!(ClaimSource::auth0_permissions().read(&p), ["read:items"]);
    /// ```
    pub fn auth0_permissions() -> Self {
        Self::claim("permissions")
    }

    /// Amazon Cognito user-pool groups: `cognito:groups`.
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// let p = serde_json::json!({"cognito:groups": ["ops"]});
    /// assert_eq!(ClaimSource::cognito_groups().read(&p), ["ops"]);
    /// ```
    pub fn cognito_groups() -> Self {
        Self::claim("cognito:groups")
    }

    /// Okta groups: `groups`.
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// let p = serde_json::json!({"groups": ["Everyone", "Admins"]});
    /// assert_eq!(ClaimSource::okta_groups().read(&p), ["Everyone", "Admins"]);
    /// ```
    pub fn okta_groups() -> Self {
        Self::claim("groups")
    }

    /// The values at this source in a verified payload (see the type's docs
    /// for how each JSON shape is read).
    ///
    /// ```
    /// # use tower_jwt_auth::ClaimSource;
    /// let p = serde_json::json!({"realm_access": {"roles": {"not": "a list"}}});
    /// assert!(ClaimSource::keycloak_realm_roles().read(&p).is_empty());
    /// ```
    pub fn read<'v>(&self, payload: &'v Value) -> Vec<&'v str> {
        let mut out = Vec::new();
        self.each(payload, |v| out.push(v));
        out
    }

    /// Calls `f` with every value at this source, without allocating.
    pub(crate) fn each<'v>(&self, payload: &'v Value, mut f: impl FnMut(&'v str)) {
        if self.path.is_empty() {
            return;
        }
        let mut at = payload;
        for segment in self.path.iter() {
            match at.as_object().and_then(|o| o.get(&**segment)) {
                Some(next) => at = next,
                None => return,
            }
        }
        match at {
            Value::String(s) if self.delimited => {
                s.split(' ').filter(|v| !v.is_empty()).for_each(f);
            }
            Value::String(s) if !s.is_empty() => f(s),
            Value::Array(items) => items.iter().filter_map(Value::as_str).for_each(f),
            _ => {}
        }
    }

    /// Whether `wanted` is among the values at this source.
    pub(crate) fn contains(&self, payload: &Value, wanted: &str) -> bool {
        let mut found = false;
        self.each(payload, |v| found |= v == wanted);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn odd_shapes_read_as_nothing() {
        for payload in [
            json!({"roles": 1}),
            json!({"roles": null}),
            json!({"roles": {"admin": true}}),
            json!({"roles": [1, null, [], {}]}),
            json!({"roles": ""}),
            json!([]),
            json!("roles"),
        ] {
            assert!(ClaimSource::roles().read(&payload).is_empty(), "{payload}");
        }
        let deep = ClaimSource::keycloak_realm_roles();
        assert!(deep.read(&json!({"realm_access": "admin"})).is_empty());
        assert!(deep.read(&json!({"realm_access": ["admin"]})).is_empty());
        assert!(
            ClaimSource::path(Vec::<String>::new())
                .read(&json!({"a": "b"}))
                .is_empty()
        );
    }

    #[test]
    fn names_with_dots_are_single_members() {
        let p = json!({"a.b": ["x"], "a": {"b": ["y"]}});
        assert_eq!(ClaimSource::claim("a.b").read(&p), ["x"]);
        assert_eq!(ClaimSource::path(["a", "b"]).read(&p), ["y"]);
        assert!(!ClaimSource::claim("a").contains(&json!({"a": "p q"}), "q"));
        assert!(ClaimSource::claim("a").contains(&json!({"a": "p q"}), "p q"));
        let scopes = ClaimSource::claim("a").space_delimited();
        assert!(scopes.contains(&json!({"a": "p q"}), "q"));
        assert!(!scopes.contains(&json!({"a": "p\tq"}), "q"));
        assert!(!scopes.contains(&json!({"a": "p\u{a0}q"}), "q"));
    }
}
