//! [`ExchangeLayer`]: token exchange for every outgoing request of a client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::{Target, TokenExchange};
use crate::error::AuthError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower layer for an HTTP *client* (a `Service<http::Request<B>>`, such
/// as a hyper client or a reqwest-based service): it takes the subject
/// token from the outgoing request's `Authorization: Bearer …` (put the
/// token the auth layer verified there:
/// [`JwtAuthLayer::token_in`](crate::JwtAuthLayer::token_in)), exchanges it for a token to the
/// [`Target`] API ([`TokenExchange::exchange`], cached), and sends the
/// request with that token instead. The incoming token itself never
/// leaves: no passthrough. A request without a Bearer token, or whose
/// exchange fails, is not sent; the error is the [`AuthError`] (through
/// the service's boxed error). The exchanged token goes to whatever URI
/// the request names: give each client this layer wraps the one API of
/// its [`Target`].
///
/// ```no_run
/// use http::Request;
/// use tower::{Service, ServiceExt, service_fn};
/// use tower_jwt_auth::exchange::{ExchangeLayer, Target, TokenExchange};
/// use tower_layer::Layer;
///
/// # async fn run(incoming: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let exchange = TokenExchange::builder("https://idp.example/oauth2/token")
///     .client_credentials("my-mcp-server", "its-secret")
///     .build()?;
/// let layer = ExchangeLayer::new(exchange, Target::resource("https://orders.example.com/"));
/// // Any HTTP client as a tower service; here one that answers locally.
/// let client = service_fn(|req: Request<String>| async move {
///     Ok::<_, std::convert::Infallible>(http::Response::new(format!("{:?}", req.headers())))
/// });
/// let mut client = layer.layer(client);
/// let req = Request::get("https://orders.example.com/orders")
///     .header("authorization", format!("Bearer {incoming}"))
///     .body(String::new())?;
/// let res = client.ready().await?.call(req).await?;
/// # let _ = res;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ExchangeLayer {
    exchange: TokenExchange,
    target: Target,
}

impl ExchangeLayer {
    /// Exchanges every request's token with `exchange` for one to `target`.
    pub fn new(exchange: TokenExchange, target: Target) -> Self {
        ExchangeLayer { exchange, target }
    }
}

impl<S> Layer<S> for ExchangeLayer {
    type Service = Exchange<S>;

    fn layer(&self, inner: S) -> Exchange<S> {
        Exchange {
            inner,
            exchange: self.exchange.clone(),
            target: self.target.clone(),
        }
    }
}

/// The service made by [`ExchangeLayer`].
#[derive(Debug, Clone)]
pub struct Exchange<S> {
    inner: S,
    exchange: TokenExchange,
    target: Target,
}

impl<S> Exchange<S> {
    define_inner_service_accessors!();
}

/// The response future of [`Exchange`].
pub struct ExchangeFuture<T> {
    future: Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>,
}

impl<T> fmt::Debug for ExchangeFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeFuture").finish_non_exhaustive()
    }
}

impl<T> Future for ExchangeFuture<T> {
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

/// The Bearer token of `Authorization`, if that is what it holds.
fn bearer(value: Option<&HeaderValue>) -> Option<String> {
    let value = value?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

impl<S, B> Service<Request<B>> for Exchange<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ExchangeFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let exchange = self.exchange.clone();
        let target = self.target.clone();
        ExchangeFuture {
            future: Box::pin(async move {
                let subject =
                    bearer(req.headers().get(AUTHORIZATION)).ok_or(AuthError::MissingToken)?;
                let token = exchange.exchange(&subject, &target).await?;
                let value = HeaderValue::from_str(&format!("Bearer {}", token.access_token()))
                    .map_err(|_| {
                        AuthError::ExchangeUnavailable(
                            "the exchanged token cannot be sent in a header".into(),
                        )
                    })?;
                req.headers_mut().insert(AUTHORIZATION, value);
                inner.call(req).await.map_err(Into::into)
            }),
        }
    }
}
