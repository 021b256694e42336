//! [`ToolScopeGuard`], the service of [`RequireToolScopes`], and its
//! [`ToolScopeFuture`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::header::CONTENT_LENGTH;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::map::{RequireToolScopes, ScopeMap};
use super::peek::messages;
use crate::claims::{Found, find_token_claims};
use crate::error::AuthError;
use crate::reject::{OnRejection, Refusal};

/// The service made by [`RequireToolScopes`]: reads a POST body (bounded),
/// judges it, and hands the request on with the same bytes.
pub struct ToolScopeGuard<S, R> {
    inner: S,
    map: Arc<ScopeMap>,
    rejection: R,
}

impl<S, R: Clone> Layer<S> for RequireToolScopes<R> {
    type Service = ToolScopeGuard<S, R>;

    fn layer(&self, inner: S) -> ToolScopeGuard<S, R> {
        ToolScopeGuard {
            inner,
            map: Arc::clone(&self.map),
            rejection: self.rejection.clone(),
        }
    }
}

impl<S, R> ToolScopeGuard<S, R> {
    define_inner_service_accessors!();
}

impl<S: Clone, R: Clone> Clone for ToolScopeGuard<S, R> {
    fn clone(&self) -> Self {
        ToolScopeGuard {
            inner: self.inner.clone(),
            map: Arc::clone(&self.map),
            rejection: self.rejection.clone(),
        }
    }
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for ToolScopeGuard<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolScopeGuard")
            .field("inner", &self.inner)
            .field("rejection", &self.rejection)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project! {
    /// The response future of [`ToolScopeGuard`].
    pub struct ToolScopeFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Inner { #[pin] future: F },
        Peek { future: BoxFuture<Result<Response<B>, E>> },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B, E> fmt::Debug for ToolScopeFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolScopeFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ToolScopeFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Peek { future } => future.as_mut().poll(cx),
            KindProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("ToolScopeFuture polled after completion"))),
        }
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for ToolScopeGuard<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    R: OnRejection<ResBody> + Send + Sync + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ToolScopeFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // A request whose body is known to be empty carries no call: GET
        // (the streamable HTTP transport's server stream) and DELETE (end
        // a session) as MCP clients send them. Any other body is read and
        // judged, whatever the method (a handler routed with `any` takes
        // a call by PUT too).
        if req.method() != Method::POST && req.body().is_end_stream() {
            return ToolScopeFuture {
                kind: Kind::Inner {
                    future: self.inner.call(req),
                },
            };
        }
        // A body in an encoding the guard cannot read is a call it cannot
        // judge (a decompression layer behind would hand the server what
        // the guard never saw).
        if encoded(req.headers()) {
            return ToolScopeFuture {
                kind: Kind::Refused {
                    response: Some(status(StatusCode::UNSUPPORTED_MEDIA_TYPE)),
                },
            };
        }
        // The ready service goes into the future; this one keeps a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let map = Arc::clone(&self.map);
        let rejection = self.rejection.clone();
        let future = async move {
            let (parts, body) = req.into_parts();
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > map.max_body as u64) {
                return Ok(status(StatusCode::PAYLOAD_TOO_LARGE));
            }
            let bytes = match read(body, map.max_body).await {
                Ok(bytes) => bytes,
                Err(code) => return Ok(status(code)),
            };
            let verdict = match messages(&bytes) {
                // Not JSON to the guard: nothing it can judge, so nothing
                // that may pass (a server that reads it another way would
                // run a call no one judged).
                None => return Ok(status(StatusCode::BAD_REQUEST)),
                Some(messages) => match find_token_claims(&parts.extensions) {
                    Found::Claims(claims) => map.judge(Some(claims), &messages),
                    Found::Anonymous => map.judge(None, &messages),
                    Found::OtherType | Found::NoLayer => {
                        // Needs nothing: no claims are needed either.
                        match map.judge(None, &messages) {
                            Ok(()) => Ok(()),
                            Err(_) => {
                                tracing::error!(
                                    "RequireToolScopes found no verified claims and no sign of \
                                     JwtAuthLayer: add JwtAuthLayer outside the guard (in axum, \
                                     call .route_layer(guard) before .route_layer(auth))"
                                );
                                return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
                            }
                        }
                    }
                },
            };
            match verdict {
                Ok(()) => {
                    inner
                        .call(Request::from_parts(parts, ReqBody::from(bytes)))
                        .await
                }
                Err(error) => Ok(refuse(&rejection, &error, &parts.headers)),
            }
        };
        ToolScopeFuture {
            kind: Kind::Peek {
                future: Box::pin(future),
            },
        }
    }
}

fn refuse<R: OnRejection<B>, B>(
    rejection: &R,
    error: &AuthError,
    headers: &http::HeaderMap,
) -> Response<B> {
    rejection.on_rejection(&Refusal::new(error).headers(headers))
}

/// Whether the body is sent in a `Content-Encoding` other than `identity`.
fn encoded(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"))
}

fn status<B: Default>(code: StatusCode) -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = code;
    res
}

/// The whole body if it is at most `max` bytes: 413 past that, 400 if it
/// cannot be read. Trailers are dropped (JSON-RPC over HTTP has none).
async fn read<B: Body>(body: B, max: usize) -> Result<Bytes, StatusCode> {
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let Ok(frame) = frame else {
            return Err(StatusCode::BAD_REQUEST);
        };
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        let have = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if have + data.remaining() > max {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        // One chunk (the usual case) is kept as it came, without a copy.
        match &first {
            None if buf.is_empty() => first = Some(data.copy_to_bytes(data.remaining())),
            _ => {
                if let Some(f) = first.take() {
                    buf.extend_from_slice(&f);
                }
                while data.has_remaining() {
                    let chunk = data.chunk();
                    buf.extend_from_slice(chunk);
                    let n = chunk.len();
                    data.advance(n);
                }
            }
        }
    }
    Ok(match first {
        Some(f) => f,
        None => Bytes::from(buf),
    })
}
