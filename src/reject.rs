//! Turning an [`AuthError`] into a response: RFC 6750 for HTTP, status
//! codes in headers for gRPC, or the application's own answer.
//!
//! One renderer answers every refusal of a request: the auth layer's. A
//! refusal made further in (a guard, an extractor, a handler returning
//! [`AuthError`]) with the default rendering is marked, and the auth layer
//! renders it again with its own configuration (realm, gRPC form, custom
//! rejection), so one setting shows in every answer.

use std::any::TypeId;
use std::sync::Arc;

use http::header::{CONTENT_TYPE, RETRY_AFTER, TE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};

use crate::error::{AuthError, ErrorKind};

/// A refused request, as a rejection sees it: the auth layer and the
/// guards make one for every refusal and hand it to their
/// [`OnRejection`]; a rejection reads it.
///
/// [`Refusal::new`] makes the refusal of a plain HTTP request with no layer
/// configuration, for testing a rejection of your own.
///
/// ```
/// use tower_jwt_auth::{AuthError, Refusal};
///
/// let error = AuthError::Expired;
/// let refusal = Refusal::new(&error);
/// assert!(!refusal.is_grpc());
/// assert_eq!(refusal.error().reason(), "expired");
/// assert_eq!(
///     refusal.www_authenticate("api"),
///     r#"Bearer realm="api", error="invalid_token", error_description="the access token expired""#
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    error: &'a AuthError,
    grpc: bool,
    headers: Option<&'a HeaderMap>,
    extras: Option<&'a Extras>,
}

/// What the layer's challenges carry beyond `Bearer realm`: the DPoP
/// challenge, whether `Bearer` is offered, `resource_metadata`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extras {
    /// `algs` of the `DPoP` challenge, when DPoP is accepted.
    pub(crate) dpop_algs: Option<Box<str>>,
    /// DPoP only: no `Bearer` challenge.
    pub(crate) no_bearer: bool,
    /// RFC 9728: the URL of the resource's metadata, on every 401.
    pub(crate) resource_metadata: Option<Box<str>>,
    /// The answer is a decision a proxy reads from the status alone
    /// (forward-auth): a refusal rendered as a 2xx becomes a 500.
    pub(crate) decision: bool,
}

impl<'a> Refusal<'a> {
    /// A refusal of a plain HTTP request, with no request headers at hand.
    pub fn new(error: &'a AuthError) -> Self {
        Refusal {
            error,
            grpc: false,
            headers: None,
            extras: None,
        }
    }

    /// The layer's challenge configuration (DPoP, resource metadata).
    #[must_use]
    pub(crate) fn extras(mut self, extras: Option<&'a Extras>) -> Self {
        self.extras = extras;
        self
    }

    /// Whether this refusal answers a proxy that reads the status alone
    /// (forward-auth), so that it must never be a 2xx.
    pub(crate) fn is_decision(&self) -> bool {
        self.extras.is_some_and(|e| e.decision)
    }

    /// The `WWW-Authenticate` value for this refusal with the layer's
    /// configuration: the `Bearer` challenge (with `error`,
    /// `error_description` and `scope`, `acr_values`, `max_age` where they
    /// apply), the `DPoP` one when the layer accepts DPoP,
    /// `resource_metadata` on 401s and `insufficient_scope` 403s when
    /// configured. The one place a
    /// challenge is made: [`DefaultRejection`] answers with it too, so a
    /// rejection of the application's own making sends the same challenge.
    pub fn www_authenticate(&self, realm: &str) -> HeaderValue {
        Challenge::header(&challenges(self, realm))
    }

    /// Marks the refused request as a genuine gRPC call (answer with a
    /// gRPC status), or not.
    #[must_use]
    pub(crate) fn grpc(mut self, grpc: bool) -> Self {
        self.grpc = grpc;
        self
    }

    /// Attaches the refused request's headers.
    #[must_use]
    pub(crate) fn headers(mut self, headers: &'a HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Why the request is refused.
    pub fn error(&self) -> &'a AuthError {
        self.error
    }

    /// Whether the answer should be a gRPC status. The auth layer decides
    /// it from its configuration and the request together (see
    /// [`JwtAuthLayer::grpc`](crate::JwtAuthLayer::grpc)), never from the
    /// request alone: on a plain HTTP route a client cannot turn a refusal
    /// into a gRPC answer (whose HTTP status is 200).
    pub fn is_grpc(&self) -> bool {
        self.grpc
    }

    /// The refused request's headers. `None` when the refusal was made
    /// further in (a guard, an extractor, a handler) and is rendered again
    /// by the auth layer once the request has been handed on.
    pub fn request_headers(&self) -> Option<&'a HeaderMap> {
        self.headers
    }
}

/// Makes the response for a refused request.
///
/// The default is [`DefaultRejection`]. Any `Fn(&Refusal<'_>) -> Response<B>`
/// closure is one too, for example to answer with a JSON body (the
/// challenge from [`Refusal::www_authenticate`] carries the layer's DPoP
/// and resource metadata parts, as the default answer's does):
///
/// ```
/// use axum::{body::Body, response::Response};
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Refusal, Verifier};
///
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let layer = JwtAuthLayer::new(verifier).on_rejection(|refusal: &Refusal<'_>| {
///     let err = refusal.error();
///     let body = serde_json::json!({ "error": err.reason(), "message": err.description() });
///     Response::builder()
///         .status(err.kind().http_status())
///         .header("content-type", "application/json")
///         .header("www-authenticate", refusal.www_authenticate("api"))
///         .body(Body::from(body.to_string()))
///         .unwrap()
/// });
/// # let _ = layer;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub trait OnRejection<B>: Clone {
    /// The response for `refusal`.
    fn on_rejection(&self, refusal: &Refusal<'_>) -> Response<B>;
}

impl<B, F> OnRejection<B> for F
where
    F: Fn(&Refusal<'_>) -> Response<B> + Clone,
{
    fn on_rejection(&self, refusal: &Refusal<'_>) -> Response<B> {
        self(refusal)
    }
}

/// The standard rejection: RFC 6750 answers, and trailers-only gRPC status
/// answers when the auth layer decided the request is a genuine gRPC call.
/// The gRPC answers carry the `www-authenticate` challenge of the HTTP
/// answer (and `dpop-nonce`) as metadata, except `UNAVAILABLE`.
///
/// | error | HTTP | gRPC |
/// |---|---|---|
/// | no token | 401, `WWW-Authenticate: Bearer realm="…"` | `UNAUTHENTICATED` |
/// | bad token | 401, `… error="invalid_token", error_description="…"` | `UNAUTHENTICATED` |
/// | two tokens | 400, `… error="invalid_request"` | `INVALID_ARGUMENT` |
/// | missing scope | 403, `… error="insufficient_scope", scope="…"` | `PERMISSION_DENIED` |
/// | keys unavailable | 503, `Retry-After` | `UNAVAILABLE` |
#[derive(Debug, Clone)]
pub struct DefaultRejection {
    inner: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    realm: Box<str>,
    retry_after: u32,
    /// Not configured: its answers inside an auth layer are marked for the
    /// layer to render again with its own configuration.
    unconfigured: bool,
}

impl Default for DefaultRejection {
    fn default() -> Self {
        DefaultRejection {
            inner: Arc::new(Config {
                realm: "api".into(),
                retry_after: 5,
                unconfigured: true,
            }),
        }
    }
}

/// Marks a response rendered by the default rejection somewhere inside the
/// auth layer (a guard, an extractor, a handler): the layer renders it
/// again with its own configuration.
#[derive(Clone)]
pub(crate) struct Unrendered(pub(crate) Arc<AuthError>);

impl DefaultRejection {
    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let config = Arc::make_mut(&mut self.inner);
        config.unconfigured = false;
        f(config);
        self
    }

    /// Sets the realm named in `WWW-Authenticate` (default `api`). Characters
    /// a quoted string cannot hold are dropped.
    #[must_use]
    pub fn realm(self, realm: &str) -> Self {
        let realm = realm.to_owned();
        self.edit(|c| c.realm = realm.into())
    }

    /// Sets the `Retry-After` seconds on 503 answers (default 5).
    #[must_use]
    pub fn retry_after(self, seconds: u32) -> Self {
        self.edit(|c| c.retry_after = seconds)
    }

    /// Renders `error` as an HTTP response.
    pub fn http<B: Default>(&self, error: &AuthError) -> Response<B> {
        self.http_for(&Refusal::new(error))
    }

    fn http_for<B: Default>(&self, refusal: &Refusal<'_>) -> Response<B> {
        let error = refusal.error();
        let mut res = Response::new(B::default());
        *res.status_mut() = error.kind().http_status();
        let headers = res.headers_mut();
        if error.kind() != ErrorKind::Unavailable {
            self.challenge_headers(refusal, headers);
        } else {
            headers.insert(RETRY_AFTER, HeaderValue::from(self.inner.retry_after));
        }
        res
    }

    /// `WWW-Authenticate` and, for a missing DPoP nonce, `DPoP-Nonce`: the
    /// same in an HTTP answer and in the metadata of a gRPC one.
    fn challenge_headers(&self, refusal: &Refusal<'_>, headers: &mut HeaderMap) {
        headers.insert(
            WWW_AUTHENTICATE,
            refusal.www_authenticate(&self.inner.realm),
        );
        if let AuthError::UseDpopNonce(nonce) = refusal.error()
            && let Ok(nonce) = HeaderValue::from_str(nonce)
        {
            headers.insert("dpop-nonce", nonce);
        }
    }

    /// Renders `error` as a trailers-only gRPC response (HTTP status 200):
    /// `grpc-status`, `grpc-message`, and the `www-authenticate` challenge
    /// of the HTTP answer as metadata (except for `UNAVAILABLE`).
    pub fn grpc<B: Default>(&self, error: &AuthError) -> Response<B> {
        self.grpc_for(&Refusal::new(error).grpc(true))
    }

    fn grpc_for<B: Default>(&self, refusal: &Refusal<'_>) -> Response<B> {
        let error = refusal.error();
        let mut res = Response::new(B::default());
        *res.status_mut() = StatusCode::OK;
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(error.kind().grpc_code()));
        // The description uses only characters gRPC sends unescaped except
        // `%`, which it never contains; spaces are fine in grpc-message.
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(error.description()),
        );
        // A gRPC client learns the schemes (Bearer, DPoP and its algorithms),
        // the error, `resource_metadata` and a DPoP nonce the same way an
        // HTTP client does: from the metadata of the refusal.
        if error.kind() != ErrorKind::Unavailable {
            self.challenge_headers(refusal, headers);
        }
        res
    }

    /// The default answer for a refusal made inside the auth layer (an
    /// extractor, a handler), marked so that the layer renders it again
    /// with its own configuration.
    pub(crate) fn inner_refusal<B: Default>(error: AuthError) -> Response<B> {
        let mut res = DefaultRejection::default().http(&error);
        res.extensions_mut().insert(Unrendered(Arc::new(error)));
        res
    }
}

/// Renders with the rejection's settings. An unconfigured
/// `DefaultRejection` (a guard's default) marks its answer, so that the auth
/// layer around renders it again with the layer's own settings.
impl<B: Default> OnRejection<B> for DefaultRejection {
    fn on_rejection(&self, refusal: &Refusal<'_>) -> Response<B> {
        let mut res = if refusal.is_grpc() {
            self.grpc_for(refusal)
        } else {
            self.http_for(refusal)
        };
        if self.inner.unconfigured {
            res.extensions_mut()
                .insert(Unrendered(Arc::new(refusal.error().clone())));
        }
        res
    }
}

/// Marks a request the auth layer decided is a genuine gRPC call, so
/// guards inside it answer in the gRPC form too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrpcCall;

/// Errors about the proof itself, answered in the `DPoP` challenge.
fn dpop_error(error: &AuthError) -> bool {
    matches!(
        error,
        AuthError::InvalidDpopProof(_)
            | AuthError::DpopReplay
            | AuthError::UseDpopNonce(_)
            | AuthError::DpopKeyMismatch
            | AuthError::DpopRequired
    )
}

/// The challenges of a refusal: `Bearer` unless the layer is DPoP-only,
/// `DPoP algs="…"` when it accepts DPoP; the error goes in the challenge
/// of the scheme the client used (or the one the error is about), and
/// every challenge of a 401 names the resource metadata when configured.
fn challenges(refusal: &Refusal<'_>, realm: &str) -> Vec<Challenge> {
    let error = refusal.error();
    let default = Extras::default();
    let extras = refusal.extras.unwrap_or(&default);
    let used_dpop = refusal
        .request_headers()
        .and_then(|h| h.get(http::header::AUTHORIZATION))
        .and_then(|v| v.as_bytes().get(..5))
        .is_some_and(|s| s.eq_ignore_ascii_case(b"dpop "));
    let mut out = Vec::with_capacity(2);
    let dpop_gets_error =
        extras.dpop_algs.is_some() && (extras.no_bearer || used_dpop || dpop_error(error));
    if !extras.no_bearer {
        let mut bearer = Challenge::new("Bearer", realm);
        if !dpop_gets_error {
            bearer = bearer.error(error);
        }
        out.push(bearer);
    }
    if let Some(algs) = &extras.dpop_algs {
        let mut dpop = Challenge::new("DPoP", realm).param("algs", algs);
        if dpop_gets_error {
            dpop = dpop.error(error);
        }
        out.push(dpop);
    }
    // RFC 9728 §5.1 on every 401; and on a missing scope, the MCP step-up
    // challenge (MCP authorization 2025-11-25, Runtime Insufficient Scope
    // Errors): the client finds there where to ask for the larger token.
    if let Some(url) = &extras.resource_metadata
        && (error.kind() == ErrorKind::Unauthenticated
            || matches!(error, AuthError::InsufficientScope { .. }))
    {
        for c in &mut out {
            c.params.push(("resource_metadata", sanitize(url)));
        }
    }
    out
}

/// Whether refusals may take the gRPC form, as configured on the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrpcMode {
    /// Only when the layer wraps a tonic service (its responses have
    /// tonic's body type) and the request is an HTTP/2 gRPC call with
    /// `te: trailers`.
    Auto,
    /// The layer wraps a gRPC service: requests with a gRPC content type
    /// (including gRPC-Web) get the gRPC form.
    Grpc,
    /// Never the gRPC form, whatever the request: forward-auth, whose
    /// proxies read only the HTTP status (a gRPC refusal is an HTTP 200,
    /// which a proxy takes for "allow").
    Never,
}

/// Whether the request is a gRPC call that should be answered as one.
pub(crate) fn grpc_request<ReqBody, ResBody: 'static>(
    mode: GrpcMode,
    req: &Request<ReqBody>,
) -> bool {
    let headers = req.headers();
    match mode {
        GrpcMode::Grpc => grpc_content_type(headers, true),
        GrpcMode::Never => false,
        GrpcMode::Auto => {
            serves_tonic::<ResBody>()
                && req.version() == Version::HTTP_2
                && grpc_content_type(headers, false)
                && headers
                    .get(TE)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"))
        }
    }
}

/// `application/grpc`, `application/grpc+proto`, ... (case-insensitive);
/// with `web`, `application/grpc-web…` too.
fn grpc_content_type(headers: &HeaderMap, web: bool) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes) else {
        return false;
    };
    let prefix = b"application/grpc";
    if ct.len() < prefix.len() || !ct[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return false;
    }
    let rest = &ct[prefix.len()..];
    match rest.first() {
        None | Some(b'+' | b';') => true,
        Some(b'-') => web && rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"-web"),
        _ => false,
    }
}

/// Whether `B` is tonic's response body: the layer then wraps a tonic server.
fn serves_tonic<B: 'static>() -> bool {
    #[cfg(feature = "tonic")]
    {
        TypeId::of::<B>() == TypeId::of::<tonic::body::Body>()
    }
    #[cfg(not(feature = "tonic"))]
    {
        let _ = TypeId::of::<B>;
        false
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

/// One `WWW-Authenticate` challenge: a scheme and its auth-params, the
/// one builder every refusal goes through (RFC 6750 `Bearer` today; other
/// schemes and parameters such as `resource_metadata`, `acr_values` or
/// `max_age` are added the same way).
#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    scheme: &'static str,
    params: Vec<(&'static str, String)>,
}

impl Challenge {
    /// A challenge for `scheme` with a `realm`.
    pub(crate) fn new(scheme: &'static str, realm: &str) -> Self {
        Challenge {
            scheme,
            params: vec![("realm", sanitize(realm))],
        }
    }

    /// Adds `name="value"` (characters a quoted string cannot hold are
    /// dropped).
    #[must_use]
    pub(crate) fn param(mut self, name: &'static str, value: &str) -> Self {
        self.params.push((name, sanitize(value)));
        self
    }

    /// Adds what `error` tells the client: `error`, `error_description`,
    /// and `scope` for a missing scope.
    #[must_use]
    pub(crate) fn error(mut self, error: &AuthError) -> Self {
        if let Some(code) = error.error_code() {
            self = self
                .param("error", code)
                .param("error_description", error.description());
        }
        match error {
            AuthError::InsufficientScope { required } => self = self.param("scope", required),
            AuthError::InsufficientUserAuthentication {
                acr_values,
                max_age,
            } => {
                if let Some(acr) = acr_values {
                    self = self.param("acr_values", acr);
                }
                if let Some(age) = max_age {
                    self = self.param("max_age", &age.to_string());
                }
            }
            _ => {}
        }
        self
    }

    fn write(&self, out: &mut String) {
        out.push_str(self.scheme);
        for (i, (name, value)) in self.params.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            out.push_str(name);
            out.push_str("=\"");
            out.push_str(value);
            out.push('"');
        }
    }

    /// The header value for one or more challenges (comma-separated, RFC 9110 §11.6.1).
    pub(crate) fn header(challenges: &[Challenge]) -> HeaderValue {
        let mut value = String::new();
        for (i, c) in challenges.iter().enumerate() {
            if i > 0 {
                value.push_str(", ");
            }
            c.write(&mut value);
        }
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_rendering() {
        let r = DefaultRejection::default().realm("my \"api\"");
        let res: Response<()> = r.http(&AuthError::InvalidSignature);
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="my api", error="invalid_token", error_description="the token signature is invalid""#
        );
        let res: Response<()> = r.http(&AuthError::KeysUnavailable("down".into()));
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()[RETRY_AFTER], "5");
        let res: Response<()> = r.http(&AuthError::InsufficientScope {
            required: "write admin".into(),
        });
        assert_eq!(res.status(), 403);
        assert!(res.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .ends_with(r#"error="insufficient_scope", error_description="the access token lacks a required scope", scope="write admin""#));
    }

    #[test]
    fn challenges_list_params_in_order() {
        let two = Challenge::header(&[
            Challenge::new("Bearer", "api").error(&AuthError::Expired),
            Challenge::new("DPoP", "api").param("algs", "ES256 EdDSA"),
        ]);
        assert_eq!(
            two,
            r#"Bearer realm="api", error="invalid_token", error_description="the access token expired", DPoP realm="api", algs="ES256 EdDSA""#
        );
        let hostile = Challenge::header(&[Challenge::new("Bearer", "a\"b\\c\r\nd")]);
        assert_eq!(hostile, r#"Bearer realm="abcd""#);
    }

    #[test]
    fn grpc_rendering_only_when_the_layer_says_so() {
        let r = DefaultRejection::default();
        let res: Response<()> = r.on_rejection(&Refusal::new(&AuthError::Expired).grpc(true));
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["grpc-status"], "16");
        assert_eq!(res.headers()["grpc-message"], "the access token expired");
        // The challenge of the HTTP answer, as metadata.
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="invalid_token", error_description="the access token expired""#
        );
        let nonce = AuthError::UseDpopNonce("n-1".into());
        let res: Response<()> = r.on_rejection(&Refusal::new(&nonce).grpc(true));
        assert_eq!(res.headers()["dpop-nonce"], "n-1");
        // Not for an outage, as in HTTP.
        let down = AuthError::KeysUnavailable("down".into());
        let res: Response<()> = r.on_rejection(&Refusal::new(&down).grpc(true));
        assert_eq!(res.headers()["grpc-status"], "14");
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
        let res: Response<()> = r.on_rejection(&Refusal::new(&AuthError::Expired));
        assert_eq!(res.status(), 401);
    }

    #[test]
    fn a_closure_rejection_gets_the_layers_challenge() {
        let extras = Extras {
            dpop_algs: Some("ES256".into()),
            no_bearer: false,
            resource_metadata: Some(
                "https://api.example/.well-known/oauth-protected-resource".into(),
            ),
            decision: false,
        };
        let custom = |r: &Refusal<'_>| -> Response<()> {
            let mut res = Response::new(());
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, r.www_authenticate("api"));
            res
        };
        for error in AuthError::samples() {
            if error.kind() == ErrorKind::Unavailable {
                continue;
            }
            let refusal = Refusal::new(&error).extras(Some(&extras));
            let ours = custom.on_rejection(&refusal);
            let default: Response<()> = DefaultRejection::default().on_rejection(&refusal);
            assert_eq!(
                ours.headers()[WWW_AUTHENTICATE],
                default.headers()[WWW_AUTHENTICATE],
                "{error:?}"
            );
            assert!(
                ours.headers()[WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .contains(r#"DPoP realm="api", algs="ES256""#)
            );
        }
    }

    fn request(ct: &str, version: Version, te: bool) -> Request<()> {
        let mut r = Request::builder().version(version).header(CONTENT_TYPE, ct);
        if te {
            r = r.header(TE, "trailers");
        }
        r.body(()).unwrap()
    }

    #[test]
    fn the_grpc_form_needs_the_layers_consent() {
        let h2 = |ct| request(ct, Version::HTTP_2, true);
        // Auto: never for a body that is not tonic's, whatever the request.
        for ct in ["application/grpc", "application/grpc+proto"] {
            assert!(!grpc_request::<(), String>(GrpcMode::Auto, &h2(ct)));
        }
        // Configured for gRPC: gRPC content types only, gRPC-Web included.
        for ct in [
            "application/grpc",
            "Application/GRPC+proto",
            "application/grpc-web-text",
            "application/grpc;charset=utf-8",
        ] {
            assert!(grpc_request::<(), String>(GrpcMode::Grpc, &h2(ct)), "{ct}");
        }
        for ct in ["application/grpcx", "application/json", "text/grpc"] {
            assert!(!grpc_request::<(), String>(GrpcMode::Grpc, &h2(ct)), "{ct}");
        }
    }

    #[cfg(feature = "tonic")]
    #[test]
    fn auto_detects_a_genuine_call_to_a_tonic_server() {
        type T = tonic::body::Body;
        assert!(grpc_request::<(), T>(
            GrpcMode::Auto,
            &request("application/grpc", Version::HTTP_2, true)
        ));
        assert!(!grpc_request::<(), T>(
            GrpcMode::Auto,
            &request("application/grpc", Version::HTTP_11, true)
        ));
        assert!(!grpc_request::<(), T>(
            GrpcMode::Auto,
            &request("application/grpc", Version::HTTP_2, false)
        ));
        assert!(!grpc_request::<(), T>(
            GrpcMode::Auto,
            &request("application/grpc-web", Version::HTTP_2, true)
        ));
    }
}
