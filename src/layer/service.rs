//! [`JwtAuth`]: the request path of the auth layer, one pipeline read top
//! to bottom: `decide` (the steps that answer without waiting), `finish`
//! (the same steps once one needs I/O), and `call` (admit or refuse).

use std::fmt;
use std::future::Future;
use std::task::{Context, Poll};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;
use tracing::{Instrument, Span};

use super::builder::JwtAuthLayer;
use super::future::{ResponseFuture, render};
use crate::claims::{Anonymous, Claims, SharedClaims};
use crate::error::AuthError;
use crate::extract::find_token;
use crate::observe;
use crate::reject::{GrpcCall, OnRejection, Refusal, grpc_request};
use crate::verify::Verified;

/// The service made by [`JwtAuthLayer`].
pub struct JwtAuth<S, C = crate::claims::JsonClaims, R = crate::reject::DefaultRejection> {
    inner: S,
    layer: JwtAuthLayer<C, R>,
}

impl<S, C, R> JwtAuth<S, C, R> {
    pub(super) fn new(inner: S, layer: JwtAuthLayer<C, R>) -> Self {
        JwtAuth { inner, layer }
    }

    define_inner_service_accessors!();
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

/// Where the pipeline stands after the steps that need no I/O.
enum Step<'r, C> {
    /// Decided: verified claims, anonymous (`None`), or a refusal.
    Done(Result<Option<Claims<C>>, AuthError>),
    /// The verifier needs I/O (a key fetch, an introspection call); the
    /// token, and whether it came with the `DPoP` scheme.
    Verify(&'r str, bool),
    /// Verified and bound; the replay store or the revocation store must
    /// be asked.
    #[cfg(any(feature = "revocation", feature = "dpop"))]
    Rest(Claims<C>, Replay),
}

/// A DPoP replay check still to make.
#[cfg(feature = "dpop")]
type Replay = Option<crate::dpop::PendingReplay>;
#[cfg(not(feature = "dpop"))]
type Replay = NoReplay;

/// Without the `dpop` feature there is never a replay check to make.
#[cfg(not(feature = "dpop"))]
struct NoReplay;

/// What the binding checks read from the request, owned for the slow path.
struct Presented {
    #[cfg(feature = "dpop")]
    parts: Option<(http::Method, http::Uri, http::HeaderMap)>,
}

impl Presented {
    fn of<B>(settings: &super::builder::Settings, req: &Request<B>) -> Self {
        #[cfg(feature = "dpop")]
        return Presented {
            parts: settings.dpop.as_ref().map(|_| {
                (
                    req.method().clone(),
                    req.uri().clone(),
                    req.headers().clone(),
                )
            }),
        };
        #[cfg(not(feature = "dpop"))]
        {
            let _ = (settings, req);
            Presented {}
        }
    }
}

/// The pipeline, in order.
impl<C, R> JwtAuthLayer<C, R>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// Find the token → token cache → verify → binding checks (DPoP) →
    /// revocation, as far as each step can answer without waiting.
    fn decide<'r, B>(&self, req: &'r Request<B>) -> Step<'r, C> {
        let s = &*self.settings;
        // 1. Find the token; an ambient one (a cookie) on an unsafe method
        //    must come from this site.
        let found = match find_token(&s.sources, req.uri(), req.headers(), self.accepts_dpop()) {
            Ok(Some(found)) => {
                if found.ambient
                    && let Err(e) = s.csrf.check(req.method(), req.headers())
                {
                    return Step::Done(Err(e));
                }
                found
            }
            Ok(None) if s.optional => return Step::Done(Ok(None)),
            Ok(None) => return Step::Done(Err(AuthError::MissingToken)),
            Err(e) => return Step::Done(Err(e)),
        };
        let (token, dpop) = (found.token, found.dpop);
        if token.len() > s.max_token_len {
            return Step::Done(Err(AuthError::TokenTooLarge {
                len: token.len(),
                limit: s.max_token_len,
            }));
        }
        // 2. The verified-token cache.
        #[cfg(feature = "cache")]
        if let Some(claims) = self
            .store()
            .and_then(|store| store.get(token, &*s.verifier))
        {
            observe::cache_hit(&Span::current());
            return self.bound_now(req, token, dpop, claims);
        }
        // 3. Verify.
        let claims = match s.verifier.verify_now(token) {
            None => return Step::Verify(token, dpop),
            Some(verified) => verified.and_then(|v| self.keep(token, v)),
        };
        match claims {
            Ok(claims) => self.bound_now(req, token, dpop, claims),
            Err(e) => Step::Done(Err(e)),
        }
    }

    /// Whether `Authorization: DPoP` is read.
    fn accepts_dpop(&self) -> bool {
        #[cfg(feature = "dpop")]
        return self
            .settings
            .dpop
            .as_ref()
            .is_some_and(|p| p.mode() != crate::dpop::DpopMode::BearerOnly);
        #[cfg(not(feature = "dpop"))]
        false
    }

    /// The binding checks (DPoP, step 4), then revocation (step 5), as far
    /// as they can answer without waiting.
    fn bound_now<'r, B>(
        &self,
        req: &Request<B>,
        token: &str,
        dpop: bool,
        claims: Claims<C>,
    ) -> Step<'r, C> {
        if let Err(e) = self.sender_binding(&claims) {
            return Step::Done(Err(e));
        }
        #[cfg(feature = "dpop")]
        let replay =
            match self.binding(req.method(), req.uri(), req.headers(), token, dpop, &claims) {
                Err(e) => return Step::Done(Err(e)),
                Ok(None) => None,
                Ok(Some(pending)) => match pending.now() {
                    Some(Ok(())) => None,
                    Some(Err(e)) => return Step::Done(Err(e)),
                    None => Some(pending),
                },
            };
        #[cfg(not(feature = "dpop"))]
        let replay = {
            let _ = (req, token, dpop);
            NoReplay
        };
        self.revocation_now(claims, replay)
    }

    /// Whether the token's binding (`cnf`) names only methods this layer
    /// verifies: the one rule (`crate::bind`), for every path.
    fn sender_binding(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        let s = &*self.settings;
        if s.unverified_binding {
            return Ok(());
        }
        #[cfg(feature = "dpop")]
        let dpop = s.dpop.is_some();
        #[cfg(not(feature = "dpop"))]
        let dpop = false;
        let token = claims.token();
        crate::bind::check(
            token.registered().bound(),
            token.json(),
            crate::bind::Verifies { dpop },
        )
    }

    /// The DPoP checks of a verified token, up to the replay store.
    #[cfg(feature = "dpop")]
    fn binding(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        token: &str,
        dpop: bool,
        claims: &Claims<C>,
    ) -> Result<Option<crate::dpop::PendingReplay>, AuthError> {
        let s = &*self.settings;
        let Some(policy) = &s.dpop else {
            return Ok(None);
        };
        let now = s.verifier.now()?;
        crate::dpop::check(
            policy,
            dpop,
            token,
            claims.token().json(),
            (method, uri, headers),
            now,
        )
    }

    /// The same steps from the verifier on, waiting for I/O as needed.
    async fn finish(
        &self,
        token: String,
        dpop: bool,
        presented: Presented,
    ) -> Result<Option<Claims<C>>, AuthError> {
        let s = &*self.settings;
        // 3. Verify, with I/O.
        let verified = s.verifier.verify_later(&token).await?;
        let claims = self.keep(&token, verified)?;
        // 4. Binding checks.
        self.sender_binding(&claims)?;
        #[cfg(feature = "dpop")]
        if let Some((method, uri, headers)) = &presented.parts
            && let Some(pending) = self.binding(method, uri, headers, &token, dpop, &claims)?
        {
            pending.check().await?;
        }
        #[cfg(not(feature = "dpop"))]
        let _ = (dpop, presented);
        // 5. Revocation.
        #[cfg(feature = "revocation")]
        if let Some(revoker) = &s.revocation {
            revoker.check(claims.token()).await?;
        }
        Ok(Some(claims))
    }

    /// The claims in the layer's type, cached for the next request.
    fn keep(&self, token: &str, verified: Verified) -> Result<Claims<C>, AuthError> {
        #[cfg(feature = "cache")]
        if let Some(store) = self.store() {
            let (claims, again) = verified.into_kept::<C>()?;
            store.insert(token, &claims, again);
            return Ok(claims);
        }
        let _ = token;
        verified.into_layer_claims::<C>()
    }

    /// The rest (a pending replay check, then revocation), if it can
    /// answer without I/O.
    fn revocation_now<'r>(&self, claims: Claims<C>, replay: Replay) -> Step<'r, C> {
        #[cfg(feature = "dpop")]
        if replay.is_some() {
            return Step::Rest(claims, replay);
        }
        #[cfg(feature = "revocation")]
        if let Some(revoker) = &self.settings.revocation {
            return match revoker.check_now(claims.token()) {
                Some(Ok(())) => Step::Done(Ok(Some(claims))),
                Some(Err(error)) => Step::Done(Err(error)),
                None => Step::Rest(claims, replay),
            };
        }
        let _ = replay;
        Step::Done(Ok(Some(claims)))
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
        let settings = &self.layer.settings;
        if crate::path::skips(&settings.skip, req.uri().path()) {
            return ResponseFuture::inner(
                self.inner.call(req),
                self.layer.rejection.clone(),
                false,
                None,
            );
        }
        // Whether a refusal may take the gRPC form: the layer's
        // configuration and the request together, never the request alone.
        let grpc = grpc_request::<ReqBody, ResBody>(self.layer.settings.grpc, &req);
        if grpc {
            req.extensions_mut().insert(GrpcCall);
        }
        let span = observe::span();
        let started = observe::start();
        let settings = &*self.layer.settings;
        let outcome = match span.in_scope(|| self.layer.decide(&req)) {
            Step::Done(outcome) => outcome,
            Step::Verify(token, dpop) => {
                // Slow path: the verifier needs I/O.
                let token = token.to_owned();
                let presented = Presented::of(settings, &req);
                let layer = self.layer.clone();
                let rest = async move { layer.finish(token, dpop, presented).await };
                return self.later(req, span, started, grpc, rest);
            }
            #[cfg(any(feature = "revocation", feature = "dpop"))]
            Step::Rest(claims, replay) => {
                #[cfg(feature = "revocation")]
                let revoker = self.layer.settings.revocation.clone();
                let rest = async move {
                    #[cfg(feature = "dpop")]
                    if let Some(pending) = replay {
                        pending.check().await?;
                    }
                    #[cfg(not(feature = "dpop"))]
                    let _ = replay;
                    #[cfg(feature = "revocation")]
                    if let Some(revoker) = revoker {
                        revoker.check(claims.token()).await?;
                    }
                    Ok(Some(claims))
                };
                return self.later(req, span, started, grpc, rest);
            }
        };
        // 5. Admit or refuse.
        observe::outcome(&span, &outcome, started);
        match outcome {
            Ok(claims) => {
                admit(&mut req, claims);
                ResponseFuture::inner(
                    self.inner.call(req),
                    self.layer.rejection.clone(),
                    grpc,
                    self.layer.settings.extras.clone(),
                )
            }
            Err(error) => {
                let refusal = Refusal::new(&error)
                    .grpc(grpc)
                    .headers(req.headers())
                    .extras(self.layer.settings.extras.as_deref());
                ResponseFuture::rejected(render(&self.layer.rejection, &refusal))
            }
        }
    }
}

impl<S, C, R> JwtAuth<S, C, R> {
    /// Finishes a request whose outcome needs I/O: `rest` runs the
    /// remaining steps, then the request goes on to the inner service that
    /// was made ready, or is refused.
    fn later<ReqBody, ResBody>(
        &mut self,
        mut req: Request<ReqBody>,
        span: Span,
        started: Option<std::time::Instant>,
        grpc: bool,
        rest: impl Future<Output = Result<Option<Claims<C>>, AuthError>> + Send + 'static,
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
        let extras = self.layer.settings.extras.clone();
        // The inner service that was made ready goes with the request; a
        // clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = async move {
            let outcome = rest.await;
            observe::outcome(&Span::current(), &outcome, started);
            match outcome {
                Ok(claims) => {
                    admit(&mut req, claims);
                    let res = inner.call(req).await?;
                    Ok(super::future::rerender(
                        &rejection,
                        grpc,
                        extras.as_deref(),
                        res,
                    ))
                }
                Err(error) => Ok(render(
                    &rejection,
                    &Refusal::new(&error)
                        .grpc(grpc)
                        .headers(req.headers())
                        .extras(extras.as_deref()),
                )),
            }
        };
        ResponseFuture::later(Box::pin(future.instrument(span)))
    }
}

/// Puts what the layer decided into the request: the verified claims (and
/// their type-independent view, for guards), or the anonymous marker.
///
/// The innermost layer's decision is the one that counts
/// (`claims::find_token_claims` reads it): whatever this layer decides
/// replaces an outer layer's type-independent view or anonymous mark.
fn admit<C: Send + Sync + 'static, B>(req: &mut Request<B>, claims: Option<Claims<C>>) {
    let ext = req.extensions_mut();
    match claims {
        Some(claims) => {
            ext.remove::<Anonymous>();
            // `Claims<JsonClaims>` (the default) is its own
            // type-independent view; an outer layer's must not outlive it.
            if Claims::<C>::is_json_claims() {
                ext.remove::<SharedClaims>();
            } else {
                ext.insert(claims.shared());
            }
            ext.insert(claims);
        }
        None => {
            ext.remove::<SharedClaims>();
            ext.insert(Anonymous);
        }
    }
}
