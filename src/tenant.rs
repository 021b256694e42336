//! Multi-tenant issuers: an issuer template with a `{tenantid}`
//! placeholder, as Entra ID publishes in the discovery document of its
//! `common` and `organizations` endpoints
//! (`https://login.microsoftonline.com/{tenantid}/v2.0`). A token fits the
//! template when its `tid` claim is one safe path segment and its `iss` is
//! the template with `{tenantid}` replaced by exactly that `tid`.
//!
//! Only verifiers configured with a template pay for this; a plain issuer is
//! still one string comparison.

use std::borrow::Cow;

use crate::error::{AuthError, BuildError};

/// The placeholder Entra ID uses in its multi-tenant issuer.
pub(crate) const PLACEHOLDER: &str = "{tenantid}";

/// The longest tenant id accepted (an Entra tenant id, a GUID, has 36).
pub(crate) const MAX_TENANT_LEN: usize = 64;

/// The tenant whose discovery document publishes the template (Entra's
/// `common` endpoint).
#[cfg(feature = "jwks")]
const DISCOVERY_TENANT: &str = "common";

/// Whether `issuer` is a template (holds `{tenantid}`).
pub(crate) fn is_template(issuer: &str) -> bool {
    issuer.contains(PLACEHOLDER)
}

/// The issuer to discover a template's keys from: the template with
/// `{tenantid}` replaced by `common`, whose discovery document Entra ID
/// publishes with the template as its `issuer`. A plain issuer is returned
/// as it is.
#[cfg(feature = "jwks")]
pub(crate) fn discovery_issuer(issuer: &str) -> Cow<'_, str> {
    if is_template(issuer) {
        Cow::Owned(issuer.replacen(PLACEHOLDER, DISCOVERY_TENANT, 1))
    } else {
        Cow::Borrowed(issuer)
    }
}

/// Whether `tid` can stand in a URL path as one segment: ASCII letters,
/// digits and `-`, 1 to [`MAX_TENANT_LEN`] bytes (no `/`, `.`, `%`, `{`).
pub(crate) fn is_tenant_id(tid: &str) -> bool {
    (1..=MAX_TENANT_LEN).contains(&tid.len())
        && tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// One issuer template, split around its placeholder.
#[derive(Debug, Clone)]
struct Template {
    template: String,
    /// Where `{tenantid}` starts.
    at: usize,
}

impl Template {
    fn prefix(&self) -> &str {
        &self.template[..self.at]
    }

    fn suffix(&self) -> &str {
        &self.template[self.at + PLACEHOLDER.len()..]
    }

    /// The tenant segment of `iss` if `iss` has this template's shape.
    fn tenant_of<'a>(&self, iss: &'a str) -> Option<&'a str> {
        iss.strip_prefix(self.prefix())?.strip_suffix(self.suffix())
    }
}

/// The issuer templates of a verifier, and the tenants it accepts.
#[derive(Debug, Clone)]
pub(crate) struct TenantIssuers {
    templates: Vec<Template>,
    /// `None`: every tenant.
    tenants: Option<Vec<String>>,
}

impl TenantIssuers {
    /// Takes the templates out of `issuers` (the plain ones stay). `None`
    /// when there is no template.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for a template with the placeholder
    /// more than once, for `tenants` without a template, or for a tenant
    /// that is not a tenant id.
    pub(crate) fn split(
        issuers: &mut Vec<String>,
        tenants: Option<Vec<String>>,
    ) -> Result<Option<TenantIssuers>, BuildError> {
        let mut templates = Vec::new();
        for issuer in issuers.extract_if(.., |i| is_template(i)) {
            if issuer.matches(PLACEHOLDER).count() > 1 {
                return Err(BuildError::config(
                    "issuer",
                    format!("the issuer template {issuer:?} has {PLACEHOLDER} more than once"),
                ));
            }
            let at = issuer.find(PLACEHOLDER).unwrap_or_default();
            templates.push(Template {
                template: issuer,
                at,
            });
        }
        if let Some(list) = &tenants {
            if templates.is_empty() {
                return Err(BuildError::config(
                    "tenants",
                    format!(
                        "tenants are only checked with a multi-tenant issuer (one with \
                         {PLACEHOLDER}, e.g. https://login.microsoftonline.com/{PLACEHOLDER}/v2.0); \
                         for one tenant, give its own issuer instead"
                    ),
                ));
            }
            if list.is_empty() {
                return Err(BuildError::config(
                    "tenants",
                    "the tenant list is empty: no token could be accepted",
                ));
            }
            if let Some(bad) = list.iter().find(|t| !is_tenant_id(t)) {
                return Err(BuildError::config(
                    "tenants",
                    format!(
                        "{bad:?} is not a tenant id (ASCII letters, digits and '-', \
                         at most {MAX_TENANT_LEN}); give the tenant's GUID"
                    ),
                ));
            }
        }
        if templates.is_empty() {
            return Ok(None);
        }
        Ok(Some(TenantIssuers { templates, tenants }))
    }

    /// The one template, for a verifier of a multi-issuer list.
    pub(crate) fn single(&self) -> Option<&str> {
        match self.templates.as_slice() {
            [one] => Some(&one.template),
            _ => None,
        }
    }

    /// Whether `iss` has the shape of `template` (the routing of a
    /// multi-issuer verifier; the chosen verifier then checks `tid`).
    pub(crate) fn fits(template: &str, iss: &str) -> bool {
        match template.find(PLACEHOLDER) {
            Some(at) => Template {
                template: template.to_owned(),
                at,
            }
            .tenant_of(iss)
            .is_some_and(is_tenant_id),
            None => false,
        }
    }

    /// Checks `iss` against the plain issuers, then the templates with the
    /// payload's `tid`, then the tenant list.
    ///
    /// # Errors
    /// `MissingClaim("iss")`; `InvalidIssuer` when `iss` is neither a plain
    /// issuer nor a template filled with the token's own `tid`;
    /// `MissingClaim("tid")` or `InvalidClaim` when `iss` has a template's
    /// shape but `tid` is absent or not a tenant id; `TenantNotAllowed`
    /// for a tenant outside the list.
    pub(crate) fn check(
        &self,
        iss: Option<&str>,
        plain: &[String],
        payload: &str,
    ) -> Result<(), AuthError> {
        let iss = iss.ok_or_else(|| AuthError::MissingClaim("iss".into()))?;
        if plain.iter().any(|i| i == iss) {
            return Ok(());
        }
        let mut shaped = self.templates.iter().filter_map(|t| t.tenant_of(iss));
        if shaped.next().is_none() {
            return Err(AuthError::InvalidIssuer);
        }
        let tid = tenant_claim(payload)?;
        if !self
            .templates
            .iter()
            .any(|t| t.tenant_of(iss) == Some(tid.as_ref()))
        {
            // Signed by one tenant's key set, claiming another's issuer.
            return Err(AuthError::InvalidIssuer);
        }
        if let Some(list) = &self.tenants
            && !list.iter().any(|t| t.eq_ignore_ascii_case(&tid))
        {
            return Err(AuthError::TenantNotAllowed);
        }
        Ok(())
    }
}

/// The payload's `tid`, a tenant id.
fn tenant_claim(payload: &str) -> Result<Cow<'_, str>, AuthError> {
    #[derive(serde::Deserialize)]
    struct Tid<'a> {
        #[serde(borrow)]
        tid: Option<Cow<'a, str>>,
    }
    let tid: Tid<'_> = serde_json::from_str(payload).map_err(|_| {
        AuthError::InvalidClaim("`tid` must be a string, present at most once".into())
    })?;
    let tid = tid
        .tid
        .ok_or_else(|| AuthError::MissingClaim("tid".into()))?;
    if !is_tenant_id(&tid) {
        return Err(AuthError::InvalidClaim(format!(
            "`tid` is not a tenant id (ASCII letters, digits and '-', at most {MAX_TENANT_LEN})"
        )));
    }
    Ok(tid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
    const A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn rules(tenants: Option<&[&str]>) -> TenantIssuers {
        let mut issuers = vec![T.to_owned(), "https://plain.example".to_owned()];
        let tenants = tenants.map(|t| t.iter().map(|s| s.to_string()).collect());
        let rules = TenantIssuers::split(&mut issuers, tenants)
            .unwrap()
            .unwrap();
        assert_eq!(issuers, ["https://plain.example"]);
        rules
    }

    fn check(rules: &TenantIssuers, iss: &str, payload: &str) -> Result<(), AuthError> {
        rules.check(Some(iss), &["https://plain.example".into()], payload)
    }

    fn iss(tid: &str) -> String {
        T.replace(PLACEHOLDER, tid)
    }

    #[test]
    fn the_tenant_of_iss_is_the_tid() {
        let r = rules(None);
        let ok = format!(r#"{{"tid":"{A}"}}"#);
        assert!(check(&r, &iss(A), &ok).is_ok());
        assert!(check(&r, "https://plain.example", "{}").is_ok());
        assert!(matches!(
            check(&r, &iss("other"), &ok),
            Err(AuthError::InvalidIssuer)
        ));
        assert!(matches!(
            check(&r, &iss(A), "{}"),
            Err(AuthError::MissingClaim(c)) if c == "tid"
        ));
        for bad in [
            r#"{"tid":"a/b"}"#,
            r#"{"tid":""}"#,
            r#"{"tid":"{tenantid}"}"#,
            r#"{"tid":"a.b"}"#,
            r#"{"tid":"a%2Fb"}"#,
            r#"{"tid":7}"#,
            r#"{"tid":null}"#,
            r#"{"tid":"a","tid":"a"}"#,
        ] {
            let t = bad.split('"').nth(3).unwrap_or("x");
            assert!(
                matches!(check(&r, &iss(t), bad), Err(AuthError::InvalidClaim(_)))
                    || matches!(check(&r, &iss(t), bad), Err(AuthError::MissingClaim(_))),
                "{bad}"
            );
        }
        let long = "a".repeat(MAX_TENANT_LEN + 1);
        assert!(check(&r, &iss(&long), &format!(r#"{{"tid":"{long}"}}"#)).is_err());
        // The template itself is not an issuer.
        assert!(check(&r, T, r#"{"tid":"{tenantid}"}"#).is_err());
        assert!(matches!(
            check(&r, "https://elsewhere.example", &ok),
            Err(AuthError::InvalidIssuer)
        ));
        assert!(matches!(
            r.check(None, &[], &ok),
            Err(AuthError::MissingClaim(c)) if c == "iss"
        ));
    }

    #[test]
    fn the_tenant_list_restricts() {
        let r = rules(Some(&[A]));
        let ok = format!(r#"{{"tid":"{A}"}}"#);
        assert!(check(&r, &iss(A), &ok).is_ok());
        let upper = A.to_ascii_uppercase();
        assert!(check(&r, &iss(&upper), &format!(r#"{{"tid":"{upper}"}}"#)).is_ok());
        assert!(matches!(
            check(&r, &iss("other"), r#"{"tid":"other"}"#),
            Err(AuthError::TenantNotAllowed)
        ));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let split = |issuers: &[&str], tenants: Option<&[&str]>| {
            let mut issuers: Vec<String> = issuers.iter().map(|s| s.to_string()).collect();
            TenantIssuers::split(
                &mut issuers,
                tenants.map(|t| t.iter().map(|s| s.to_string()).collect()),
            )
        };
        assert!(split(&["https://x/{tenantid}/{tenantid}"], None).is_err());
        assert!(split(&["https://plain"], Some(&[A])).is_err());
        assert!(split(&[T], Some(&[])).is_err());
        assert!(split(&[T], Some(&["a/b"])).is_err());
        assert!(split(&["https://plain"], None).unwrap().is_none());
    }

    #[test]
    fn discovery_and_routing() {
        assert_eq!(
            discovery_issuer(T),
            "https://login.microsoftonline.com/common/v2.0"
        );
        assert_eq!(discovery_issuer("https://a"), "https://a");
        assert!(TenantIssuers::fits(T, &iss(A)));
        assert!(!TenantIssuers::fits(T, &iss("a/b")));
        assert!(!TenantIssuers::fits("https://plain", "https://plain"));
    }
}
