//! Turning an [`AuthError`] into a response: RFC 6750 for HTTP, status
//! codes in headers for gRPC, or the application's own answer.

use std::sync::Arc;

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::error::{AuthError, ErrorKind};

/// Makes the response for a refused request.
///
/// The default is [`DefaultRejection`]. Any `Fn(&AuthError) -> Response<B>`
/// closure is one too, for example to answer with a JSON body:
///
/// ```
/// use axum::{body::Body, response::Response};
/// use tower_jwt_auth::{Algorithm, AuthError, JwtAuthLayer, Key, Verifier};
///
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let layer = JwtAuthLayer::new(verifier).on_rejection(|err: &AuthError| {
///     let body = serde_json::json!({ "error": err.reason(), "message": err.description() });
///     Response::builder()
///         .status(err.kind().http_status())
///         .header("content-type", "application/json")
///         .header("www-authenticate", err.www_authenticate("api"))
///         .body(Body::from(body.to_string()))
///         .unwrap()
/// });
/// # let _ = layer;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
pub trait OnRejection<B>: Clone {
    /// The response for `error`; `request_headers` are the refused request's.
    fn on_rejection(&self, error: &AuthError, request_headers: &HeaderMap) -> Response<B>;
}

impl<B, F> OnRejection<B> for F
where
    F: Fn(&AuthError) -> Response<B> + Clone,
{
    fn on_rejection(&self, error: &AuthError, _request_headers: &HeaderMap) -> Response<B> {
        self(error)
    }
}

/// The standard rejection: RFC 6750 answers for HTTP and trailers-only
/// status answers for gRPC requests (`content-type: application/grpc...`).
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
    realm: Arc<str>,
    retry_after: u32,
    always_grpc: bool,
}

impl Default for DefaultRejection {
    fn default() -> Self {
        DefaultRejection {
            realm: Arc::from("api"),
            retry_after: 5,
            always_grpc: false,
        }
    }
}

impl DefaultRejection {
    /// Sets the realm named in `WWW-Authenticate` (default `api`). Characters
    /// a quoted string cannot hold are dropped.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Arc::from(sanitize(realm).as_str());
        self
    }

    /// Sets the `Retry-After` seconds on 503 answers (default 5).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = seconds;
        self
    }

    /// Answers every refusal as gRPC, whatever the request's content type
    /// (for a server that speaks only gRPC, so that a client sending a
    /// wrong content type still gets a status it understands).
    ///
    /// ```
    /// use http::{HeaderMap, Response};
    /// use tower_jwt_auth::{AuthError, DefaultRejection, OnRejection};
    ///
    /// let r = DefaultRejection::default().always_grpc();
    /// let res: Response<()> = r.on_rejection(&AuthError::MissingToken, &HeaderMap::new());
    /// assert_eq!(res.headers()["grpc-status"], "16");
    /// ```
    pub fn always_grpc(mut self) -> Self {
        self.always_grpc = true;
        self
    }

    /// Renders `error` as an HTTP response.
    pub fn http<B: Default>(&self, error: &AuthError) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = error.kind().http_status();
        let headers = res.headers_mut();
        if error.kind() != ErrorKind::Unavailable {
            headers.insert(WWW_AUTHENTICATE, error.www_authenticate(&self.realm));
        } else {
            headers.insert(RETRY_AFTER, HeaderValue::from(self.retry_after));
        }
        res
    }

    /// Renders `error` as a trailers-only gRPC response.
    pub fn grpc<B: Default>(&self, error: &AuthError) -> Response<B> {
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
        res
    }
}

impl<B: Default> OnRejection<B> for DefaultRejection {
    fn on_rejection(&self, error: &AuthError, request_headers: &HeaderMap) -> Response<B> {
        if self.always_grpc || is_grpc(request_headers) {
            self.grpc(error)
        } else {
            self.http(error)
        }
    }
}

/// Whether a request is gRPC, by its content type.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

impl AuthError {
    /// The RFC 6750 `WWW-Authenticate` challenge for this error, for
    /// applications that render their own rejections.
    ///
    /// ```
    /// use tower_jwt_auth::AuthError;
    ///
    /// assert_eq!(AuthError::MissingToken.www_authenticate("api"), r#"Bearer realm="api""#);
    /// assert_eq!(
    ///     AuthError::Expired.www_authenticate("api"),
    ///     r#"Bearer realm="api", error="invalid_token", error_description="the access token expired""#
    /// );
    /// ```
    pub fn www_authenticate(&self, realm: &str) -> HeaderValue {
        let mut value = format!("Bearer realm=\"{}\"", sanitize(realm));
        if let Some(code) = self.error_code() {
            value.push_str(", error=\"");
            value.push_str(code);
            value.push_str("\", error_description=\"");
            value.push_str(self.description());
            value.push('"');
        }
        if let AuthError::InsufficientScope { required } = self {
            value.push_str(", scope=\"");
            value.push_str(&sanitize(required));
            value.push('"');
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
    fn grpc_rendering() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        let res: Response<()> = DefaultRejection::default().on_rejection(&AuthError::Expired, &h);
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["grpc-status"], "16");
        assert_eq!(res.headers()["grpc-message"], "the access token expired");
    }
}
