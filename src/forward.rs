//! Forward-auth: [`ForwardAuth`] answers the authorization subrequests of a
//! proxy in front of services written in any language: nginx
//! (`auth_request`), Traefik (`ForwardAuth`), or any proxy that asks an
//! HTTP endpoint before it forwards a request.
//!
//! The subrequest goes through the same path as a request to a protected
//! route: the [`JwtAuthLayer`] finds the token (in the sources it was
//! configured with), verifies it, checks it against the layer's caches,
//! binding and revocation; then the guards judge the claims, each against
//! the original request's path through the crate's one path matcher (so
//! `RequireRole::any(["admin"]).paths(["/admin"])` means here what it
//! means on a router). The answer is:
//!
//! - **200** with the claims as headers for the proxy to pass on (the
//!   default mapping: `X-Auth-Request-User` from `sub`,
//!   `X-Auth-Request-Email` from `email`, `X-Auth-Request-Groups` from
//!   `roles`, values joined with `,`; see [`ForwardAuth::claim_headers`]);
//!   a claim that is absent, or that cannot be a header value (a control
//!   character), gives no header;
//! - **401** with the layer's `WWW-Authenticate` challenge, or **403** from
//!   a guard, which the proxy passes on to the client;
//! - **400** when a proxy declared trusted did not say what the original
//!   request was ([`AuthError::ForwardedRequest`]).
//!
//! # Which request is judged
//!
//! The original method and URI come from the proxy's headers **only when
//! the application declares the proxy trusted** ([`ForwardAuth::trust`]):
//! anyone can send those headers, and only a proxy that sets them itself,
//! replacing what the client sent, makes them true. nginx sets them in its
//! configuration (`X-Original-Method`, `X-Original-URI`, see
//! [`Proxy::Nginx`]); Traefik sets its own (`X-Forwarded-Method`,
//! `X-Forwarded-Uri`, [`Proxy::Traefik`]). Without `trust`, the original
//! request is unknown (the subrequest's own method and path are the auth
//! endpoint's), and it is judged failing closed: every guard limited to
//! paths applies to it, as to any unclear path, and a cookie token gets
//! the cross-site checks of an unsafe method. Declare the proxy to limit
//! guards to paths.
//!
//! A path is judged as the proxy passes it on, raw, by the one path
//! matcher: a path some reader decodes or resolves differently
//! (`//admin`, `/x/../admin`, `/%61dmin`) is guarded by every path-limited
//! guard (see [`RequireRole::paths`](crate::RequireRole::paths)). A
//! fragment in the original URI is refused (400): `http` would drop it
//! while the proxy passes it on.
//!
//! The proxy must also keep the client from forging the claim headers the
//! upstream reads: nginx's `proxy_set_header X-Auth-Request-User $user`
//! replaces a client's header of that name and drops it when `$user` is
//! empty (the configuration in `docs/forward-auth/nginx.conf` does so for
//! every claim header); Traefik's `authResponseHeaders` removes the
//! client's copies of the headers it lists (`docs/forward-auth/traefik.yml`).
//! Both configurations are run by the tests against the real proxies.
//!
//! A refusal carries its `WWW-Authenticate` challenge. nginx passes it on
//! only with a 401 unless told to (the nginx configuration adds it to
//! 403s, so a client still learns the `insufficient_scope` it needs);
//! Traefik passes any refusal on as it was answered. A proxy allows on any
//! 2xx, so no refusal is one: refusals are always HTTP statuses, even from
//! a layer set up with [`grpc`](crate::JwtAuthLayer::grpc) for a client
//! that sends a gRPC content type (a gRPC refusal is an HTTP 200), and a
//! custom rejection ([`JwtAuthLayer::on_rejection`](crate::JwtAuthLayer::on_rejection))
//! that answers a refusal with a 2xx gets a 500 in its place. A claim value
//! holding `,` (the separator of a header's values) gives no header.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_jwt_auth::forward::{ForwardAuth, Proxy};
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, RequireRole, Verifier};
//!
//! # fn main() -> Result<(), tower_jwt_auth::BuildError> {
//! let verifier = Verifier::builder()
//!     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
//!     .audience("my-api")
//!     .build()?;
//! let auth = ForwardAuth::new(JwtAuthLayer::new(verifier))
//!     .trust(Proxy::Nginx)
//!     .guard(RequireRole::any(["admin"]).paths(["/admin"])?);
//! let app: Router = Router::new().route_service("/auth", auth);
//! # let _ = app;
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use crate::claims::{ClaimSource, Found, JsonClaims, find_token_claims};
use crate::error::AuthError;
use crate::guard::Guard;
use crate::guard::rules::Verdict;
use crate::layer::builder::JwtAuthLayer;
use crate::layer::{JwtAuth, ResponseFuture};
use crate::reject::{DefaultRejection, OnRejection};

/// A proxy whose headers about the original request [`ForwardAuth`]
/// trusts, once declared with [`ForwardAuth::trust`].
///
/// ```
/// # use tower_jwt_auth::{forward::{ForwardAuth, Proxy}, Algorithm, JwtAuthLayer, Key, Verifier};
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
/// // Behind Traefik's ForwardAuth middleware.
/// let auth = ForwardAuth::new(JwtAuthLayer::new(verifier)).trust(Proxy::Traefik);
/// # let _ = auth;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proxy {
    /// nginx's `auth_request`: `X-Original-Method` and `X-Original-URI`,
    /// which the configuration sets (`proxy_set_header X-Original-URI
    /// $request_uri;`, and `$request_method` for the method).
    Nginx,
    /// Traefik's `ForwardAuth` middleware: `X-Forwarded-Method` and
    /// `X-Forwarded-Uri`, which Traefik sets itself.
    Traefik,
}

impl Proxy {
    /// The headers naming the original method and URI.
    fn headers(self) -> (HeaderName, HeaderName) {
        match self {
            Proxy::Nginx => (
                HeaderName::from_static("x-original-method"),
                HeaderName::from_static("x-original-uri"),
            ),
            Proxy::Traefik => (
                HeaderName::from_static("x-forwarded-method"),
                HeaderName::from_static("x-forwarded-uri"),
            ),
        }
    }

    /// The original method and URI of a subrequest from this proxy.
    fn original(self, headers: &HeaderMap) -> Result<(Method, Uri), AuthError> {
        let (method_header, uri_header) = self.headers();
        let method = one(headers, &method_header, "no original method header")?;
        let uri = one(headers, &uri_header, "no original URI header")?;
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| AuthError::ForwardedRequest("the original method is not a method"))?;
        // The request target as the client sent it (origin form): a path
        // and a query, nothing else.
        if !uri.starts_with('/') {
            return Err(AuthError::ForwardedRequest(
                "the original URI is not a path (origin form)",
            ));
        }
        // A request target has no fragment. `http` would drop it, while the
        // proxy passes the raw target upstream: `/public#/../admin` would
        // be judged as `/public`.
        if uri.contains('#') {
            return Err(AuthError::ForwardedRequest(
                "the original URI has a fragment",
            ));
        }
        let uri = Uri::try_from(uri)
            .map_err(|_| AuthError::ForwardedRequest("the original URI does not parse"))?;
        Ok((method, uri))
    }
}

/// The one value of a header the proxy sets.
fn one<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    missing: &'static str,
) -> Result<&'h str, AuthError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(AuthError::ForwardedRequest(missing))?;
    if values.next().is_some() {
        return Err(AuthError::ForwardedRequest(
            "an original method or URI header is repeated",
        ));
    }
    value.to_str().map_err(|_| {
        AuthError::ForwardedRequest("an original method or URI header is not visible ASCII")
    })
}

/// What the proxy learns on a 200: header names and the claim each is
/// read from.
type ClaimHeaders = Arc<[(HeaderName, ClaimSource)]>;

/// The default claim headers: `X-Auth-Request-User` from `sub`,
/// `X-Auth-Request-Email` from `email`, `X-Auth-Request-Groups` from
/// `roles` (the names oauth2-proxy uses, which nginx configurations
/// already read).
fn default_claim_headers() -> ClaimHeaders {
    Arc::from([
        (
            HeaderName::from_static("x-auth-request-user"),
            ClaimSource::claim("sub"),
        ),
        (
            HeaderName::from_static("x-auth-request-email"),
            ClaimSource::claim("email"),
        ),
        (
            HeaderName::from_static("x-auth-request-groups"),
            ClaimSource::roles(),
        ),
    ])
}

/// What decides a subrequest once the layer admitted it: the guards and
/// the claim headers.
#[derive(Clone)]
struct Rules {
    guards: Arc<[Guard<(), ()>]>,
    claim_headers: ClaimHeaders,
}

/// A tower service answering forward-auth subrequests (see the
/// [module docs](self)): 200 with claim headers, or the refusal of the
/// layer or of a guard.
///
/// It is a service, not a layer: mount it on the route the proxy asks
/// (`Router::route_service("/auth", forward_auth)`); every method is
/// answered.
///
/// ```
/// use http::HeaderName;
/// use tower_jwt_auth::forward::{ForwardAuth, Proxy};
/// use tower_jwt_auth::{Algorithm, ClaimSource, JwtAuthLayer, Key, RequireScope, Verifier};
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let auth = ForwardAuth::new(JwtAuthLayer::new(verifier))
///     .trust(Proxy::Traefik)
///     .guard(RequireScope::any(["write"]).paths(["/write"])?)
///     .claim_headers([
///         (HeaderName::from_static("x-user"), ClaimSource::claim("sub")),
///         (HeaderName::from_static("x-tenant"), ClaimSource::claim("tid")),
///     ]);
/// # let _ = auth;
/// # Ok(()) }
/// ```
pub struct ForwardAuth<C = JsonClaims, R = DefaultRejection> {
    layer: JwtAuthLayer<C, R>,
    proxy: Option<Proxy>,
    rules: Rules,
}

impl<C, R: Clone> Clone for ForwardAuth<C, R> {
    fn clone(&self) -> Self {
        ForwardAuth {
            layer: self.layer.clone(),
            proxy: self.proxy,
            rules: self.rules.clone(),
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for ForwardAuth<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&HeaderName> = self.rules.claim_headers.iter().map(|(h, _)| h).collect();
        f.debug_struct("ForwardAuth")
            .field("layer", &self.layer)
            .field("proxy", &self.proxy)
            .field("guards", &self.rules.guards.len())
            .field("claim_headers", &headers)
            .finish()
    }
}

impl<C, R> ForwardAuth<C, R> {
    /// Answers subrequests with `layer` (its verifier, token sources,
    /// caches, binding, revocation, realm and rejection), no guard, the
    /// default claim headers, and no trusted proxy.
    ///
    /// ```
    /// # use tower_jwt_auth::{forward::ForwardAuth, Algorithm, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let auth = ForwardAuth::new(JwtAuthLayer::new(verifier).realm("api"));
    /// # let _ = auth;
    /// ```
    pub fn new(layer: JwtAuthLayer<C, R>) -> Self {
        ForwardAuth {
            // A proxy allows on any 2xx: whatever the layer was set up for
            // (gRPC, a rejection that answers errors as 200s), no refusal
            // here is a 2xx.
            layer: layer.for_decisions(),
            proxy: None,
            rules: Rules {
                guards: Arc::from([]),
                claim_headers: default_claim_headers(),
            },
        }
    }

    /// Declares the proxy in front trusted: the guards judge the original
    /// request it names in its headers (see [`Proxy`]), and a subrequest
    /// without them is refused with 400. Declare it only when every
    /// request reaches this service through that proxy, which sets those
    /// headers itself.
    ///
    /// ```
    /// # use tower_jwt_auth::{forward::{ForwardAuth, Proxy}, Algorithm, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let auth = ForwardAuth::new(JwtAuthLayer::new(verifier)).trust(Proxy::Nginx);
    /// # let _ = auth;
    /// ```
    pub fn trust(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Adds a guard ([`RequireRole`](crate::RequireRole),
    /// [`RequireScope`](crate::RequireScope),
    /// [`RequireClaims`](crate::RequireClaims),
    /// [`RequireStepUp`](crate::RequireStepUp)), limited to its paths as on
    /// a router. Its refusals are answered with this service's layer's
    /// rejection (the guard's own rejection is not used).
    ///
    /// ```
    /// # use tower_jwt_auth::{forward::ForwardAuth, Algorithm, JwtAuthLayer, Key, RequireRole, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let auth = ForwardAuth::new(JwtAuthLayer::new(verifier))
    ///     .guard(RequireRole::any(["staff"]));
    /// # let _ = auth;
    /// ```
    pub fn guard<G, R2>(mut self, guard: G) -> Self
    where
        G: Layer<(), Service = Guard<(), R2>>,
    {
        let mut guards = self.rules.guards.to_vec();
        guards.push(guard.layer(()).rule());
        self.rules.guards = guards.into();
        self
    }

    /// Replaces the claim headers of a 200: each header is read from its
    /// claim, several values joined with `,`; an absent claim gives no
    /// header. The proxy must copy exactly these headers to the upstream
    /// (and drop a client's own).
    ///
    /// ```
    /// # use tower_jwt_auth::{forward::ForwardAuth, Algorithm, ClaimSource, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// use http::HeaderName;
    /// let auth = ForwardAuth::new(JwtAuthLayer::new(verifier)).claim_headers([
    ///     (HeaderName::from_static("x-auth-request-user"), ClaimSource::claim("preferred_username")),
    ///     (HeaderName::from_static("x-auth-request-groups"), ClaimSource::keycloak_realm_roles()),
    /// ]);
    /// # let _ = auth;
    /// ```
    pub fn claim_headers(
        mut self,
        headers: impl IntoIterator<Item = (HeaderName, ClaimSource)>,
    ) -> Self {
        self.rules.claim_headers = headers.into_iter().collect();
        self
    }
}

/// Answers with the request's body type (a subrequest has no body; for
/// axum, `Body`), so that the response type follows from the request.
impl<C, R, ResBody> Service<Request<ResBody>> for ForwardAuth<C, R>
where
    C: DeserializeOwned + Send + Sync + 'static,
    R: OnRejection<ResBody> + Send + Sync + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future =
        ResponseFuture<Ready<Result<Response<ResBody>, Infallible>>, R, ResBody, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<ResBody>) -> Self::Future {
        match self.proxy {
            Some(proxy) => match proxy.original(req.headers()) {
                Ok((method, uri)) => {
                    *req.method_mut() = method;
                    *req.uri_mut() = uri;
                }
                Err(e) => return self.layer.refuse(&e, req.headers()),
            },
            // No proxy declared: the original method is unknown, and judged
            // as an unsafe one (the cross-site checks of cookie tokens
            // apply; the subrequest's own GET says nothing of the request).
            None => *req.method_mut() = unknown_method(),
        }
        // The request path of the layer, with the decision as its inner
        // service.
        let mut auth: JwtAuth<Decide<ResBody>, C, R> = self.layer.layer(Decide {
            rules: self.rules.clone(),
            path_known: self.proxy.is_some(),
            _body: PhantomData,
        });
        auth.call(req)
    }
}

/// The inner service of the layer's path: the guards, then the claim
/// headers.
struct Decide<B> {
    rules: Rules,
    /// Whether the request's path is the original one (a trusted proxy
    /// named it); if not, it is unknown.
    path_known: bool,
    _body: PhantomData<fn() -> B>,
}

impl<B> Clone for Decide<B> {
    fn clone(&self) -> Self {
        Decide {
            rules: self.rules.clone(),
            path_known: self.path_known,
            _body: PhantomData,
        }
    }
}

/// The method of a request whose original method no trusted proxy named:
/// not a safe method, so nothing is waived for it.
fn unknown_method() -> Method {
    Method::from_bytes(b"UNKNOWN").unwrap_or(Method::POST)
}

impl<ReqBody, B: Default> Service<Request<ReqBody>> for Decide<B> {
    type Response = Response<B>;
    type Error = Infallible;
    type Future = Ready<Result<Response<B>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // An unknown original path is unclear: every path-limited guard
        // applies to it (fail closed, the one rule of `crate::path`).
        let path = match self.path_known {
            true => req.uri().path(),
            false => crate::path::UNKNOWN,
        };
        ready(Ok(self.rules.decide(path, req.extensions())))
    }
}

impl Rules {
    /// Every guard's verdict, then the 200 with the claim headers.
    fn decide<B: Default>(&self, path: &str, ext: &http::Extensions) -> Response<B> {
        for guard in self.guards.iter() {
            match guard.judge(path, ext) {
                Verdict::Allow => {}
                // Marked for the layer to render with its own settings.
                Verdict::Deny(error) => return DefaultRejection::inner_refusal(error),
                Verdict::NotWired(hint) => {
                    // The layer let the path through untouched (a skipped
                    // path) and a guard covers it: as on a router, 500.
                    tracing::error!("{hint}");
                    let mut res = Response::new(B::default());
                    *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                    return res;
                }
            }
        }
        let mut res = Response::new(B::default());
        if let Found::Claims(claims) = find_token_claims(ext) {
            let headers = res.headers_mut();
            for (name, source) in self.claim_headers.iter() {
                let values = source.read(claims.value());
                if values.is_empty() {
                    continue;
                }
                // Values are joined with `,`: a value holding one would read
                // as two (`x,admin` as `x` and `admin`).
                if values.iter().any(|v| v.contains(',')) {
                    tracing::warn!(
                        header = %name,
                        "forward-auth: a claim value holds `,`, the separator of the \
                         header's values; the header is left out"
                    );
                    continue;
                }
                match HeaderValue::from_str(&values.join(",")) {
                    Ok(value) => {
                        headers.insert(name.clone(), value);
                    }
                    Err(_) => tracing::warn!(
                        header = %name,
                        "forward-auth: a claim value cannot be a header value (a control \
                         character); the header is left out"
                    ),
                }
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_request_from_each_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-original-method", HeaderValue::from_static("POST"));
        h.insert("x-original-uri", HeaderValue::from_static("/admin/x?y=1"));
        let (m, u) = Proxy::Nginx.original(&h).unwrap();
        assert_eq!(
            (m, u.path(), u.query()),
            (Method::POST, "/admin/x", Some("y=1"))
        );
        // Traefik's headers are not nginx's.
        assert!(Proxy::Traefik.original(&h).is_err());
    }

    #[test]
    fn a_missing_repeated_or_odd_original_is_a_bad_request() {
        let cases: [&[(&str, &str)]; 7] = [
            // A fragment: `http` drops it, a proxy passes it on raw, so
            // `/public#/../admin` would be judged as `/public`.
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public#/../admin"),
            ],
            &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a#")],
            &[("x-forwarded-method", "GET")],
            &[("x-forwarded-uri", "/a")],
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/a"),
                ("x-forwarded-uri", "/b"),
            ],
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "http://x/a"),
            ],
            &[("x-forwarded-method", "G T"), ("x-forwarded-uri", "/a")],
        ];
        for case in cases {
            let mut h = HeaderMap::new();
            for (k, v) in case {
                h.append(*k, HeaderValue::from_str(v).unwrap());
            }
            let err = Proxy::Traefik.original(&h).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::BadRequest, "{case:?}");
        }
    }
}
