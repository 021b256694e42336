//! RFC 9728 protected-resource metadata: [`ResourceMetadata`], the
//! document that tells a client which authorization servers issue tokens
//! for this resource, served at its well-known location as a tower service
//! (an axum route too).
//!
#![doc = include_str!("docs/metadata.md")]

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use serde_json::{Map, Value, json};
use tower_service::Service;

use crate::algorithm::Algorithm;
use crate::error::BuildError;

/// The well-known suffix of RFC 9728 §3.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A protected resource's metadata document (RFC 9728), and the tower
/// service that serves it.
///
/// The document lives at the location derived from the resource identifier:
/// `https://api.example.com/mcp` → `/.well-known/oauth-protected-resource/mcp`;
/// a root resource → `/.well-known/oauth-protected-resource`. Point the 401
/// answers of the auth layer to it with
/// [`JwtAuthLayer::resource_metadata`](crate::JwtAuthLayer::resource_metadata)
/// and [`url`](ResourceMetadata::url); use the resource identifier as the
/// verifier's audience (RFC 8707).
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
/// use tower_jwt_auth::metadata::ResourceMetadata;
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// let metadata = ResourceMetadata::builder("https://api.example.com/mcp")
///     .authorization_servers(["https://auth.example.com"])
///     .scopes_supported(["mcp:tools"])
///     .build()?;
/// assert_eq!(metadata.path(), "/.well-known/oauth-protected-resource/mcp");
/// # let key = Key::hmac(Algorithm::HS256, [7u8; 32])?;
/// let verifier = Verifier::builder().key(key).audience(metadata.resource()).build()?;
/// let app: Router = Router::new()
///     .route("/mcp", get(|| async { "ok" }))
///     .route_layer(JwtAuthLayer::new(verifier).resource_metadata(metadata.url()))
///     .route_service(metadata.path(), metadata.clone());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ResourceMetadata {
    inner: Arc<Inner>,
}

struct Inner {
    resource: String,
    path: String,
    url: String,
    document: String,
}

impl fmt::Debug for ResourceMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceMetadata")
            .field("resource", &self.inner.resource)
            .field("url", &crate::text::redact_url(&self.inner.url))
            .finish_non_exhaustive()
    }
}

/// The builder of a [`ResourceMetadata`].
#[derive(Debug, Clone)]
pub struct ResourceMetadataBuilder {
    resource: String,
    authorization_servers: Vec<String>,
    scopes: Option<Vec<String>>,
    bearer_methods: Vec<String>,
    dpop_algs: Option<Vec<Algorithm>>,
    mtls: bool,
    documentation: Option<String>,
}

impl ResourceMetadata {
    /// A builder for the resource `resource` (an absolute `http(s)` URL
    /// without query or fragment). Defaults: `bearer_methods_supported`
    /// `["header"]`, no authorization servers, no scopes.
    pub fn builder(resource: impl Into<String>) -> ResourceMetadataBuilder {
        ResourceMetadataBuilder {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes: None,
            bearer_methods: vec!["header".into()],
            dpop_algs: None,
            mtls: false,
            documentation: None,
        }
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// The path the document is served at.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The document's URL, for `resource_metadata` in challenges.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The JSON document.
    pub fn document(&self) -> &str {
        &self.inner.document
    }
}

impl ResourceMetadataBuilder {
    /// The issuers of tokens for this resource (`authorization_servers`).
    #[must_use]
    pub fn authorization_servers<S: Into<String>>(
        mut self,
        issuers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.authorization_servers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// The scopes a client may ask for (`scopes_supported`).
    #[must_use]
    pub fn scopes_supported<S: Into<String>>(
        mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// How tokens may be sent (`bearer_methods_supported`: `header`,
    /// `body`, `query`; default `["header"]`).
    #[must_use]
    pub fn bearer_methods<S: Into<String>>(mut self, methods: impl IntoIterator<Item = S>) -> Self {
        self.bearer_methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// The DPoP proof algorithms accepted
    /// (`dpop_signing_alg_values_supported`), for a layer with DPoP on.
    #[must_use]
    pub fn dpop_algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop_algs = Some(algs.into_iter().collect());
        self
    }

    /// Says that this resource verifies certificate-bound tokens (RFC 8705):
    /// `tls_client_certificate_bound_access_tokens: true`, for a layer with
    /// an mTLS policy (`JwtAuthLayer::mtls`, feature `mtls`).
    ///
    /// ```
    /// use tower_jwt_auth::metadata::ResourceMetadata;
    /// let m = ResourceMetadata::builder("https://api.example.com").mtls(true).build()?;
    /// assert!(m.document().contains(r#""tls_client_certificate_bound_access_tokens":true"#));
    /// # Ok::<(), tower_jwt_auth::BuildError>(())
    /// ```
    #[must_use]
    pub fn mtls(mut self, on: bool) -> Self {
        self.mtls = on;
        self
    }

    /// A page for developers (`resource_documentation`).
    #[must_use]
    pub fn documentation(mut self, url: impl Into<String>) -> Self {
        self.documentation = Some(url.into());
        self
    }

    /// The metadata.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] when the resource is not an absolute
    /// `http(s)` URL, or has a query or a fragment.
    pub fn build(self) -> Result<ResourceMetadata, BuildError> {
        let invalid = |m: &str| BuildError::config("resource", format!("resource metadata: {m}"));
        if self.resource.contains(['?', '#']) {
            return Err(invalid("the resource identifier has a query or a fragment"));
        }
        let uri: Uri = self
            .resource
            .parse()
            .map_err(|_| invalid("the resource identifier is not a URL"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(invalid("the resource identifier is not an absolute URL"));
        };
        if scheme != "https" && scheme != "http" {
            return Err(invalid("the resource identifier is not an http(s) URL"));
        }
        let rest = uri.path().trim_end_matches('/');
        let path = format!("{WELL_KNOWN}{rest}");
        let url = format!("{scheme}://{authority}{path}");
        let mut doc = Map::new();
        doc.insert("resource".into(), json!(self.resource));
        if !self.authorization_servers.is_empty() {
            doc.insert(
                "authorization_servers".into(),
                json!(self.authorization_servers),
            );
        }
        doc.insert(
            "bearer_methods_supported".into(),
            json!(self.bearer_methods),
        );
        if let Some(scopes) = self.scopes {
            doc.insert("scopes_supported".into(), json!(scopes));
        }
        if let Some(algs) = self.dpop_algs {
            let names: Vec<&str> = algs.iter().map(|a| a.as_str()).collect();
            doc.insert("dpop_signing_alg_values_supported".into(), json!(names));
        }
        if self.mtls {
            doc.insert(
                "tls_client_certificate_bound_access_tokens".into(),
                json!(true),
            );
        }
        if let Some(docs) = self.documentation {
            doc.insert("resource_documentation".into(), json!(docs));
        }
        Ok(ResourceMetadata {
            inner: Arc::new(Inner {
                resource: self.resource,
                path,
                url,
                document: Value::Object(doc).to_string(),
            }),
        })
    }
}

/// Serves the document: `GET`/`HEAD` get it as `application/json`, other
/// methods 405. Mount it at [`path`](ResourceMetadata::path).
impl<B> Service<Request<B>> for ResourceMetadata {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mut res = Response::new(String::new());
        match *req.method() {
            Method::GET | Method::HEAD => {
                if req.method() == Method::GET {
                    *res.body_mut() = self.inner.document.clone();
                }
                let h = res.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
            }
            _ => {
                *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
        }
        ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_locations() {
        let m = ResourceMetadata::builder("https://api.example.com/mcp")
            .build()
            .unwrap();
        assert_eq!(m.path(), "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(
            m.url(),
            "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        );
        for root in ["https://api.example.com", "https://api.example.com/"] {
            let m = ResourceMetadata::builder(root).build().unwrap();
            assert_eq!(m.path(), "/.well-known/oauth-protected-resource");
        }
        let m = ResourceMetadata::builder("http://127.0.0.1:8080/a/b")
            .build()
            .unwrap();
        assert_eq!(
            m.url(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b"
        );
        for bad in ["/mcp", "https://h/x?q=1", "https://h/x#f", "ftp://h/x"] {
            assert!(ResourceMetadata::builder(bad).build().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_document() {
        let m = ResourceMetadata::builder("https://api.example.com")
            .authorization_servers(["https://auth.example.com"])
            .scopes_supported(["read"])
            .dpop_algorithms([Algorithm::ES256])
            .documentation("https://docs.example.com")
            .build()
            .unwrap();
        let doc: Value = serde_json::from_str(m.document()).unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": "https://api.example.com",
                "authorization_servers": ["https://auth.example.com"],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["read"],
                "dpop_signing_alg_values_supported": ["ES256"],
                "resource_documentation": "https://docs.example.com",
            })
        );
    }
}
