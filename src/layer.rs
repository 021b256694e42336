//! [`JwtAuthLayer`] (the builder), its service [`JwtAuth`] and [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;
use tracing::{Instrument, Span};

use crate::claims::{Claims, JsonClaims};
use crate::csrf::CsrfPolicy;
use crate::error::AuthError;
use crate::extract::{TokenSource, find_token};
use crate::observe;
use crate::reject::{DefaultRejection, GrpcMode, OnRejection, Refusal, Unrendered, grpc_request};
use crate::verify::{Now, Verifier};

/// The default limit on a token's length: 16 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// Marks a request that went through the layer in optional mode without a
/// token, so extractors can tell "anonymous" from "the layer is missing".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anonymous;

/// Marks a request the layer decided is a genuine gRPC call, so guards
/// answer it in the gRPC form too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrpcCall;

/// What the auth layer left in a request's extensions for a `T` it inserts
/// (`Claims<C>` or the type-independent `TokenClaims`).
pub(crate) enum Found<'a, T> {
    Claims(&'a T),
    /// The layer ran in optional mode and the request had no token.
    Anonymous,
    /// No `T`: no auth layer ran (or it inserts another claims type).
    NoLayer,
}

pub(crate) fn find<T: Send + Sync + 'static>(ext: &http::Extensions) -> Found<'_, T> {
    match ext.get::<T>() {
        Some(t) => Found::Claims(t),
        None if ext.get::<Anonymous>().is_some() => Found::Anonymous,
        None => Found::NoLayer,
    }
}

/// A tower layer that authenticates requests with a JWT.
///
/// It finds the token (by default in `Authorization: Bearer`), verifies it
/// with its [`Verifier`], and puts the verified [`Claims<C>`] into the
/// request extensions. A refused request gets a response from the
/// rejection (by default [`DefaultRejection`]: RFC 6750 for HTTP, a gRPC
/// status for genuine calls to a gRPC service, see
/// [`grpc`](JwtAuthLayer::grpc)); the inner service never sees it. The same
/// rejection renders the refusals of guards, extractors and handlers
/// inside the layer that use the default answer.
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, Key, TokenSource, Verifier};
///
/// #[derive(Clone, serde::Deserialize)]
/// struct User { sub: String }
///
/// async fn me(claims: Claims<User>) -> String {
///     claims.sub.clone()
/// }
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// let verifier = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .audience("my-api")
///     .build()?;
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .route_layer(
///         JwtAuthLayer::new(verifier)
///             .claims::<User>()
///             .sources([TokenSource::Bearer, TokenSource::cookie("access_token")]),
///     );
/// # Ok(()) }
/// ```
pub struct JwtAuthLayer<C = JsonClaims, R = DefaultRejection> {
    verifier: Verifier,
    sources: Arc<[TokenSource]>,
    max_token_len: usize,
    optional: bool,
    rejection: R,
    grpc: GrpcMode,
    csrf: CsrfPolicy,
    #[cfg(feature = "cache")]
    cache: Option<CacheSlot<C>>,
    #[cfg(feature = "revocation")]
    revocation: Option<crate::revoke::Revoker>,
    _claims: PhantomData<fn() -> C>,
}

/// The verified-token cache's limits and the store, made on first use
/// (where the claims type's bounds are known).
#[cfg(feature = "cache")]
struct CacheSlot<C> {
    config: crate::cache::TokenCache,
    store: Arc<std::sync::OnceLock<crate::cache::Store<C>>>,
}

#[cfg(feature = "cache")]
impl<C> Clone for CacheSlot<C> {
    fn clone(&self) -> Self {
        CacheSlot {
            config: self.config,
            store: Arc::clone(&self.store),
        }
    }
}

#[cfg(feature = "cache")]
impl<C> CacheSlot<C> {
    fn new(config: crate::cache::TokenCache) -> Self {
        CacheSlot {
            config,
            store: Arc::new(std::sync::OnceLock::new()),
        }
    }
}

impl<C, R: Clone> Clone for JwtAuthLayer<C, R> {
    fn clone(&self) -> Self {
        JwtAuthLayer {
            verifier: self.verifier.clone(),
            sources: Arc::clone(&self.sources),
            max_token_len: self.max_token_len,
            optional: self.optional,
            rejection: self.rejection.clone(),
            grpc: self.grpc,
            csrf: self.csrf.clone(),
            #[cfg(feature = "cache")]
            cache: self.cache.clone(),
            #[cfg(feature = "revocation")]
            revocation: self.revocation.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for JwtAuthLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("verifier", &self.verifier)
            .field("sources", &self.sources)
            .field("max_token_len", &self.max_token_len)
            .field("optional", &self.optional)
            .field("rejection", &self.rejection)
            .field("grpc", &self.grpc)
            .field("csrf", &self.csrf)
            .field("claims", &std::any::type_name::<C>())
            .finish()
    }
}

impl JwtAuthLayer {
    /// A layer that verifies with `verifier`, reads `Authorization: Bearer`,
    /// limits tokens to [`DEFAULT_MAX_TOKEN_LEN`] and puts [`Claims`] (a JSON
    /// map) into the extensions. Choose your own claims type with
    /// [`claims`](JwtAuthLayer::claims).
    pub fn new(verifier: Verifier) -> Self {
        JwtAuthLayer {
            verifier,
            sources: Arc::from([TokenSource::Bearer]),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            optional: false,
            rejection: DefaultRejection::default(),
            grpc: GrpcMode::Auto,
            csrf: CsrfPolicy::new(),
            #[cfg(feature = "cache")]
            cache: None,
            #[cfg(feature = "revocation")]
            revocation: None,
            _claims: PhantomData,
        }
    }
}

impl<C> JwtAuthLayer<C, DefaultRejection> {
    /// Sets the realm named in `WWW-Authenticate` (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.rejection = self.rejection.realm(realm);
        self
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    /// Deserializes verified claims into `C2`, inserted as `Claims<C2>`.
    /// A token whose claims do not fit `C2` is refused with 401.
    pub fn claims<C2>(self) -> JwtAuthLayer<C2, R> {
        JwtAuthLayer {
            verifier: self.verifier,
            sources: self.sources,
            max_token_len: self.max_token_len,
            optional: self.optional,
            rejection: self.rejection,
            grpc: self.grpc,
            csrf: self.csrf,
            #[cfg(feature = "cache")]
            cache: self.cache.map(|slot| CacheSlot::new(slot.config)),
            #[cfg(feature = "revocation")]
            revocation: self.revocation,
            _claims: PhantomData,
        }
    }

    /// Sets where the token is looked for, in order; the first source that
    /// has a token wins. An empty list keeps the default (`Bearer`).
    pub fn sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        let sources: Vec<TokenSource> = sources.into_iter().collect();
        if !sources.is_empty() {
            self.sources = Arc::from(sources);
        }
        self
    }

    /// Refuses tokens longer than `bytes` before decoding anything
    /// (default [`DEFAULT_MAX_TOKEN_LEN`], 16 KiB).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Caches verified tokens (feature `cache`): a token seen before skips
    /// its signature check while it is unexpired and its key is still in
    /// the key set. See [`TokenCache`](crate::TokenCache).
    #[cfg(feature = "cache")]
    pub fn cache(mut self, cache: crate::cache::TokenCache) -> Self {
        self.cache = Some(CacheSlot::new(cache));
        self
    }

    /// Consults `store` after a token verified (feature `revocation`): a
    /// revoked token is answered 401 `invalid_token` ("token revoked"), a
    /// store that cannot answer 503 (unless it fails open). Tokens without
    /// `jti` are refused unless
    /// [`allow_tokens_without_jti`](JwtAuthLayer::allow_tokens_without_jti).
    #[cfg(feature = "revocation")]
    pub fn revocation(mut self, store: impl crate::revoke::Revocation) -> Self {
        self.revocation = Some(crate::revoke::Revoker::new(Arc::new(store)));
        self
    }

    /// With [`revocation`](JwtAuthLayer::revocation): accepts tokens that
    /// carry no `jti` (they can then be revoked only by subject).
    #[cfg(feature = "revocation")]
    pub fn allow_tokens_without_jti(mut self) -> Self {
        self.revocation = self
            .revocation
            .map(crate::revoke::Revoker::allow_without_jti);
        self
    }

    /// Declares that this layer wraps a gRPC service: refusals of requests
    /// with a gRPC content type (`application/grpc…`, gRPC-Web included)
    /// are answered as gRPC statuses (HTTP 200 with `grpc-status`), all
    /// others as plain HTTP.
    ///
    /// Without it, the gRPC form is used only when the layer wraps a tonic
    /// server (feature `tonic`: its responses have tonic's body type) and
    /// the request is an HTTP/2 gRPC call with `te: trailers`. The request
    /// alone never decides: on a plain HTTP route every refusal is a 4xx or
    /// 5xx, whatever content type the client claims, so a forward-auth
    /// proxy or a cache can never read a refusal as "allowed".
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let for_grpc = JwtAuthLayer::new(verifier).grpc();
    /// # let _ = for_grpc;
    /// ```
    pub fn grpc(mut self) -> Self {
        self.grpc = GrpcMode::Grpc;
        self
    }

    /// Sets the cross-site request checks for tokens read from cookies
    /// (default: [`CsrfPolicy::new`], on). Tokens from headers are never
    /// checked. See [`CsrfPolicy`].
    pub fn csrf(mut self, policy: CsrfPolicy) -> Self {
        self.csrf = policy;
        self
    }

    /// Lets requests without a token through, without claims. A token that
    /// is present but not valid is still refused.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Replaces how refusals are answered. See [`OnRejection`].
    pub fn on_rejection<R2>(self, rejection: R2) -> JwtAuthLayer<C, R2> {
        JwtAuthLayer {
            verifier: self.verifier,
            sources: self.sources,
            max_token_len: self.max_token_len,
            optional: self.optional,
            rejection,
            grpc: self.grpc,
            csrf: self.csrf,
            #[cfg(feature = "cache")]
            cache: self.cache,
            #[cfg(feature = "revocation")]
            revocation: self.revocation,
            _claims: PhantomData,
        }
    }
}

impl<S, C, R: Clone> Layer<S> for JwtAuthLayer<C, R> {
    type Service = JwtAuth<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`JwtAuthLayer`].
pub struct JwtAuth<S, C = JsonClaims, R = DefaultRejection> {
    inner: S,
    layer: JwtAuthLayer<C, R>,
}

impl<S: Clone, C, R: Clone> Clone for JwtAuth<S, C, R> {
    fn clone(&self) -> Self {
        JwtAuth {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C, R: fmt::Debug> fmt::Debug for JwtAuth<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

/// What the layer decided without waiting.
enum Decision<'r, C> {
    Done(Result<Option<Claims<C>>, AuthError>),
    /// The token's keys must be fetched first.
    Fetch(&'r str),
}

impl<S, C, R> JwtAuth<S, C, R> {
    fn authenticate<'r, B>(&self, req: &'r Request<B>) -> Decision<'r, C>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let token = match find_token(&self.layer.sources, req.headers()) {
            Ok(Some(found)) => {
                if found.from_cookie
                    && let Err(e) = self.layer.csrf.check(req.method(), req.headers())
                {
                    return Decision::Done(Err(e));
                }
                found.token
            }
            Ok(None) if self.layer.optional => return Decision::Done(Ok(None)),
            Ok(None) => return Decision::Done(Err(AuthError::MissingToken)),
            Err(e) => return Decision::Done(Err(e)),
        };
        if token.len() > self.layer.max_token_len {
            return Decision::Done(Err(AuthError::TokenTooLarge {
                len: token.len(),
                limit: self.layer.max_token_len,
            }));
        }
        #[cfg(feature = "cache")]
        let store = self.layer.store();
        #[cfg(feature = "cache")]
        if let Some(claims) = store.and_then(|s| s.get(token, &self.layer.verifier)) {
            observe::cache_hit(&Span::current());
            return Decision::Done(Ok(Some(claims)));
        }
        match self.layer.verifier.verify_now(token) {
            Now::Done(result) => Decision::Done(result.map(|v| {
                #[cfg(feature = "cache")]
                if let Some(store) = store {
                    store.insert(token, &v);
                }
                Some(v.claims)
            })),
            Now::Pending => Decision::Fetch(token),
        }
    }
}

#[cfg(feature = "cache")]
impl<C: Send + Sync + 'static, R> JwtAuthLayer<C, R> {
    fn store(&self) -> Option<&crate::cache::Store<C>> {
        let slot = self.cache.as_ref()?;
        Some(slot.store.get_or_init(|| slot.config.build()))
    }

    /// Hits, misses and entries of the verified-token cache (`None`
    /// without [`cache`](JwtAuthLayer::cache)). Clones of a layer, and the
    /// services it made, share one cache.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, TokenCache, Verifier};
    /// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).any_audience().build().unwrap();
    /// let layer = JwtAuthLayer::new(verifier).cache(TokenCache::new());
    /// assert_eq!(layer.cache_stats().unwrap().hits, 0);
    /// ```
    pub fn cache_stats(&self) -> Option<crate::cache::CacheStats> {
        self.store().map(crate::cache::Store::stats)
    }
}

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    C: DeserializeOwned + Send + Sync + 'static,
    R: OnRejection<ResBody> + Send + Sync + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, R, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let grpc = grpc_request::<ReqBody, ResBody>(self.layer.grpc, &req);
        if grpc {
            req.extensions_mut().insert(GrpcCall);
        }
        let span = observe::span();
        let started = observe::start();
        let decision = span.in_scope(|| self.authenticate(&req));
        #[allow(unused_mut)]
        let mut outcome = match decision {
            Decision::Done(outcome) => outcome,
            Decision::Fetch(token) => {
                // Slow path: only for a key not cached yet.
                let token = token.to_owned();
                let layer = self.layer.clone();
                let check = async move { layer.finish_async(&token).await };
                return self.later(req, span, started, grpc, check);
            }
        };
        #[cfg(feature = "revocation")]
        if let (Ok(Some(claims)), Some(revoker)) = (&outcome, &self.layer.revocation) {
            match revoker.check_now(claims.registered()) {
                Some(Ok(())) => {}
                Some(Err(error)) => outcome = Err(error),
                None => {
                    // The store must be asked (a network round trip).
                    let revoker = revoker.clone();
                    let Ok(Some(claims)) = outcome else {
                        unreachable!("matched above")
                    };
                    let check = async move {
                        let status = revoker.check(claims.registered()).await;
                        status.map(|()| Some(claims))
                    };
                    return self.later(req, span, started, grpc, check);
                }
            }
        }
        observe::outcome(&span, &outcome, started);
        match outcome {
            Ok(claims) => admit(&mut req, claims),
            Err(error) => return self.reject(&error, &req, grpc),
        }
        ResponseFuture {
            kind: Kind::Inner {
                future: self.inner.call(req),
                rejection: Some(self.layer.rejection.clone()),
                grpc,
            },
        }
    }
}

impl<S, C, R> JwtAuth<S, C, R> {
    /// Finishes a request whose outcome needs I/O (a key fetch, a
    /// revocation store): `check` decides, then the request goes on with
    /// the inner service that was made ready, or is refused.
    fn later<ReqBody, ResBody>(
        &mut self,
        mut req: Request<ReqBody>,
        span: Span,
        started: Option<std::time::Instant>,
        grpc: bool,
        check: impl Future<Output = Result<Option<Claims<C>>, AuthError>> + Send + 'static,
    ) -> ResponseFuture<S::Future, R, ResBody, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        C: Send + Sync + 'static,
        R: OnRejection<ResBody> + Clone + Send + Sync + 'static,
        ReqBody: Send + 'static,
        ResBody: Default + Send + 'static,
    {
        let rejection = self.layer.rejection.clone();
        let mut inner = self.take_inner();
        let future = async move {
            let outcome = check.await;
            observe::outcome(&Span::current(), &outcome, started);
            match outcome {
                Ok(claims) => {
                    admit(&mut req, claims);
                    let res = inner.call(req).await?;
                    Ok(rerender(&rejection, grpc, res))
                }
                Err(error) => Ok(render(
                    &rejection,
                    &Refusal::new(&error).grpc(grpc).headers(req.headers()),
                )),
            }
        };
        ResponseFuture {
            kind: Kind::Later {
                future: Box::pin(future.instrument(span)),
            },
        }
    }
}

/// The layer's own answer to a refusal (never marked for rendering again).
fn render<R: OnRejection<B>, B>(rejection: &R, refusal: &Refusal<'_>) -> Response<B> {
    let mut res = rejection.on_rejection(refusal);
    res.extensions_mut().remove::<Unrendered>();
    res
}

/// A response from inside the layer: a refusal made there with the
/// default rendering is rendered again with the layer's own rejection.
fn rerender<R: OnRejection<B>, B>(rejection: &R, grpc: bool, res: Response<B>) -> Response<B> {
    match res.extensions().get::<Unrendered>() {
        None => res,
        Some(Unrendered(error)) => render(rejection, &Refusal::new(error).grpc(grpc)),
    }
}

/// Puts what the layer decided into the request: the verified claims (and
/// their type-independent view, for guards), or the anonymous marker.
fn admit<C: Send + Sync + 'static, B>(req: &mut Request<B>, claims: Option<Claims<C>>) {
    match claims {
        Some(claims) => {
            req.extensions_mut().insert(claims.token().clone());
            req.extensions_mut().insert(claims);
        }
        None => {
            req.extensions_mut().insert(Anonymous);
        }
    }
}

impl<C, R> JwtAuthLayer<C, R>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// The slow path: fetch keys as needed, verify, cache, check revocation.
    async fn finish_async(&self, token: &str) -> Result<Option<Claims<C>>, AuthError> {
        let verified = self.verifier.verify_async_keyed::<C>(token).await?;
        #[cfg(feature = "cache")]
        if let Some(store) = self.store() {
            store.insert(token, &verified);
        }
        #[cfg(feature = "revocation")]
        if let Some(revoker) = &self.revocation {
            revoker.check(verified.claims.registered()).await?;
        }
        Ok(Some(verified.claims))
    }
}

impl<S: Clone, C, R> JwtAuth<S, C, R> {
    /// The inner service that was made ready, for a request that goes on
    /// asynchronously; a clone takes its place.
    fn take_inner(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }

    fn reject<F, B, E, ReqBody>(
        &self,
        error: &AuthError,
        req: &Request<ReqBody>,
        grpc: bool,
    ) -> ResponseFuture<F, R, B, E>
    where
        R: OnRejection<B>,
    {
        let refusal = Refusal::new(error).grpc(grpc).headers(req.headers());
        ResponseFuture {
            kind: Kind::Rejected {
                response: Some(render(&self.layer.rejection, &refusal)),
            },
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project! {
    /// The response future of [`JwtAuth`].
    pub struct ResponseFuture<F, R, B, E> {
        #[pin]
        kind: Kind<F, R, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, R, B, E> {
        Inner { #[pin] future: F, rejection: Option<R>, grpc: bool },
        Rejected { response: Option<Response<B>> },
        Later { future: BoxFuture<Result<Response<B>, E>> },
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
            } => {
                let res = std::task::ready!(future.poll(cx))?;
                let rejection = rejection
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(rerender(&rejection, *grpc, res)))
            }
            KindProj::Later { future } => future.as_mut().poll(cx),
            KindProj::Rejected { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}
