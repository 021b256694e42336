//! [`Guard`], the service of the guard layers, and its [`GuardFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Check, Paths, Verdict};
use crate::reject::{DefaultRejection, GrpcCall, OnRejection, Refusal};

/// The service made by the guard layers ([`RequireRole`](crate::RequireRole),
/// [`RequireScope`](crate::RequireScope), [`RequireClaims`](crate::RequireClaims),
/// [`RequireStepUp`](crate::RequireStepUp), [`RequireActor`](crate::delegation::RequireActor)).
///
/// **Whose claims a guard judges.** Every guard judges the decision of the
/// *innermost* auth layer around it (the last one a request went through,
/// the one whose claims the handler extracts), and nothing else:
/// - claims that layer admitted are judged;
/// - if that layer is optional and the request had no token for it, there
///   is no principal: 401, even when an outer layer admitted a token;
/// - claims the application inserted itself (`Verifier::verify` in its own
///   middleware) are not a layer's decision: 500, as with no layer;
/// - [`RequireClaims::<C>`](crate::RequireClaims) needs that layer's claims
///   type to be `C`; another type (say an outer layer's) is a wiring bug:
///   500, never a pass on another principal's claims.
///
/// Handlers' extractors (`Claims<C>`, `Option<Claims<C>>`, `GrpcClaims`)
/// follow the same rule.
///
/// A guard reads the claims that [`JwtAuthLayer`](crate::JwtAuthLayer) put
/// into the request extensions, so it must run inside that layer (added
/// before it with axum's `route_layer`/`layer`, which wrap outside-in;
/// on tonic, added after it with `Server::builder().layer(..)`). It
/// answers:
///
/// - **403** when the caller is known but not allowed (a scope refusal
///   carries `WWW-Authenticate: Bearer error="insufficient_scope",
///   scope="…"`, RFC 6750 §3.1), `PERMISSION_DENIED` on gRPC;
/// - **401** when there are no verified claims (an anonymous request let
///   through by an optional auth layer), `UNAUTHENTICATED` on gRPC;
/// - **500** when no auth layer ran at all: a wiring bug, logged with a
///   hint (always a plain 500, never a gRPC answer with HTTP status 200).
///
/// With the default rejection, a guard's refusal is rendered by the auth
/// layer around it, with the layer's realm, gRPC decision and rejection.
pub struct Guard<S, R = DefaultRejection> {
    inner: S,
    rejection: R,
    paths: Paths,
    check: Check,
}

impl<S, R> Guard<S, R> {
    pub(super) fn new(inner: S, rejection: R, paths: Paths, check: Check) -> Self {
        Guard {
            inner,
            rejection,
            paths,
            check,
        }
    }

    define_inner_service_accessors!();

    /// The guard's decision on a request for `path` with these
    /// extensions: `Allow` for a path outside its paths (matched by the
    /// one path matcher, `crate::path`). The guard service and
    /// forward-auth both decide here.
    pub(crate) fn judge(&self, path: &str, ext: &http::Extensions) -> Verdict {
        if crate::path::guards(self.paths.as_deref(), path) {
            (self.check)(ext)
        } else {
            Verdict::Allow
        }
    }

    /// The rule alone, without the inner service or the rejection (for
    /// forward-auth, which answers with its layer's rejection).
    pub(crate) fn rule(self) -> Guard<(), ()> {
        Guard::new((), (), self.paths, self.check)
    }
}

impl<S: Clone, R: Clone> Clone for Guard<S, R> {
    fn clone(&self) -> Self {
        Guard {
            inner: self.inner.clone(),
            rejection: self.rejection.clone(),
            paths: self.paths.clone(),
            check: self.check.clone(),
        }
    }
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for Guard<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .field("rejection", &self.rejection)
            .finish_non_exhaustive()
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: OnRejection<ResBody>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = GuardFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.judge(req.uri().path(), req.extensions()) {
            Verdict::Allow => GuardFuture::inner(self.inner.call(req)),
            Verdict::Deny(error) => {
                let refusal = Refusal::new(&error)
                    .grpc(req.extensions().get::<GrpcCall>().is_some())
                    .headers(req.headers());
                GuardFuture::rejected(self.rejection.on_rejection(&refusal))
            }
            Verdict::NotWired(hint) => {
                tracing::error!("{hint}");
                // Always a plain 500: never a 200 with a gRPC status, which
                // a client could ask for on an HTTP route.
                let mut res = Response::new(ResBody::default());
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                GuardFuture::rejected(res)
            }
        }
    }
}

pin_project! {
    /// The response future of [`Guard`].
    pub struct GuardFuture<F, B, E> {
        #[pin]
        kind: GuardKind<F, B, E>,
    }
}

pin_project! {
    #[project = GuardKindProj]
    enum GuardKind<F, B, E> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<B>>, _error: std::marker::PhantomData<fn() -> E> },
    }
}

impl<F, B, E> GuardFuture<F, B, E> {
    fn inner(future: F) -> Self {
        GuardFuture {
            kind: GuardKind::Inner { future },
        }
    }

    fn rejected(response: Response<B>) -> Self {
        GuardFuture {
            kind: GuardKind::Rejected {
                response: Some(response),
                _error: std::marker::PhantomData,
            },
        }
    }
}

impl<F, B, E> fmt::Debug for GuardFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for GuardFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            GuardKindProj::Inner { future } => future.poll(cx),
            GuardKindProj::Rejected { response, .. } => Poll::Ready(Ok(response
                .take()
                .expect("GuardFuture polled after completion"))),
        }
    }
}
