//! [`ResponseFuture`], and how the layer renders refusals.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use std::sync::Arc;

use crate::reject::{Extras, OnRejection, Refusal, Unrendered};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project! {
    /// The response future of [`JwtAuth`](crate::layer::JwtAuth).
    pub struct ResponseFuture<F, R, B, E> {
        #[pin]
        kind: Kind<F, R, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, R, B, E> {
        /// Admitted: the inner service answers; a refusal made in there
        /// with the default rendering is rendered again by the layer.
        Inner { #[pin] future: F, rejection: Option<R>, grpc: bool, extras: Option<Arc<Extras>> },
        /// Refused by the layer.
        Rejected { response: Option<Response<B>> },
        /// Decided after I/O.
        Later { future: BoxFuture<Result<Response<B>, E>> },
    }
}

impl<F, R, B, E> ResponseFuture<F, R, B, E> {
    pub(super) fn inner(future: F, rejection: R, grpc: bool, extras: Option<Arc<Extras>>) -> Self {
        ResponseFuture {
            kind: Kind::Inner {
                future,
                rejection: Some(rejection),
                grpc,
                extras,
            },
        }
    }

    pub(super) fn rejected(response: Response<B>) -> Self {
        ResponseFuture {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }

    pub(super) fn later(future: BoxFuture<Result<Response<B>, E>>) -> Self {
        ResponseFuture {
            kind: Kind::Later { future },
        }
    }
}

impl<F, R, B, E> fmt::Debug for ResponseFuture<F, R, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, B, E> Future for ResponseFuture<F, R, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    R: OnRejection<B>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner {
                future,
                rejection,
                grpc,
                extras,
            } => {
                let res = std::task::ready!(future.poll(cx))?;
                let rejection = rejection
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(rerender(&rejection, *grpc, extras.as_deref(), res)))
            }
            KindProj::Later { future } => future.as_mut().poll(cx),
            KindProj::Rejected { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

/// The layer's own answer to a refusal (never marked for rendering again).
/// Every refusal the layer answers goes through here, so this is where a
/// forward-auth refusal is kept from reading as an allow: a rejection that
/// renders it as a 2xx gets a 500 in its place.
pub(super) fn render<R: OnRejection<B>, B>(rejection: &R, refusal: &Refusal<'_>) -> Response<B> {
    let mut res = rejection.on_rejection(refusal);
    res.extensions_mut().remove::<Unrendered>();
    if refusal.is_decision() && res.status().is_success() {
        tracing::error!(
            status = %res.status(),
            "forward-auth: the rejection answered a refusal with a success status, which a \
             proxy takes for an allow; answering 500 instead"
        );
        *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    }
    res
}

/// A response from inside the layer: a refusal made there with the
/// default rendering is rendered again with the layer's own rejection.
pub(super) fn rerender<R: OnRejection<B>, B>(
    rejection: &R,
    grpc: bool,
    extras: Option<&Extras>,
    res: Response<B>,
) -> Response<B> {
    match res.extensions().get::<Unrendered>() {
        None => res,
        Some(Unrendered(error)) => {
            render(rejection, &Refusal::new(error).grpc(grpc).extras(extras))
        }
    }
}
