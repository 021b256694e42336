//! [`JwtAuth`]: the request path of the auth layer, written once.
//!
//! The steps are the variants of [`Step`], in order. One function,
//! `advance`, takes a request through every step that answers at once and
//! stops at the first one that must wait for I/O ([`Wait`]); `wait`
//! awaits that and gives the next step, which `advance` takes on. A
//! request that never waits is decided inside `call`, with no box; one
//! that waits finishes in one boxed future running the same functions.
//! What differs between builds (the cache, DPoP, revocation) are the stage
//! types of `stages.rs`, no-ops when their feature is off.

use std::fmt;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;
use tracing::{Instrument, Span};

use super::builder::JwtAuthLayer;
use super::future::{ResponseFuture, render, rerender};
use super::stages::{Now, Presented, Recheck, Replay};
use crate::claims::{Anonymous, Claims, ReuseUntil, SharedClaims};
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
    define_inner_service_accessors!();
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

/// How the path ends: the claims to admit (`None`: no token, and the layer
/// is `optional`), or why the request is refused.
type Outcome<C> = Result<Option<Claims<C>>, AuthError>;

/// The request path: one variant per step, in order.
enum Step<C> {
    /// 1. Find the token; one from an ambient source (a cookie) on an
    ///    unsafe method must come from this site (CSRF); refuse one too
    ///    long to read.
    Find,
    /// 2. The verified-token cache: a hit goes on to step 4.
    Cache,
    /// 3. Verify (`verify_now`, or `verify_later` after a wait); the
    ///    claims, in the layer's type, are kept in the cache.
    Verify,
    /// 4. Sender binding: the `cnf` rule, then DPoP.
    Bind(Claims<C>),
    /// 5. Revocation.
    Revoke(Claims<C>),
    /// 6. Admit or refuse.
    Done(Outcome<C>),
}

impl<C> Step<C> {
    /// `next` if a stage said yes, else the refusal.
    fn then(answer: Result<(), AuthError>, next: Step<C>) -> Step<C> {
        match answer {
            Ok(()) => next,
            Err(e) => Step::Done(Err(e)),
        }
    }
}

/// What a step waits for.
enum Wait<C> {
    /// 3: the verifier (a key fetch, an introspection call).
    Verify,
    /// 4: the DPoP replay store.
    Bind(Claims<C>, Replay),
    /// 5: the revocation store.
    Revoke(Claims<C>, Recheck),
}

impl<C> Wait<C> {
    /// Whether the steps after this wait read the token: only those after
    /// verification do (the cache keeps it, DPoP hashes it).
    fn reads_token(&self) -> bool {
        matches!(self, Wait::Verify)
    }
}

/// The path.
impl<C, R> JwtAuthLayer<C, R>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// Takes a request from `step` through every step that answers at
    /// once: to its outcome, or to what it waits for.
    fn advance<'r>(
        &self,
        mut step: Step<C>,
        req: &mut Presented<'r>,
    ) -> Result<Outcome<C>, Wait<C>> {
        let s = &*self.settings;
        loop {
            step = match step {
                Step::Find => self.find(req),
                Step::Cache => match self.cache.get(&req.token, &*s.verifier) {
                    Some(claims) => {
                        observe::cache_hit(&Span::current());
                        Step::Bind(claims)
                    }
                    None => Step::Verify,
                },
                Step::Verify => match s.verifier.verify_now(&req.token) {
                    Some(verified) => self.verified(&req.token, verified),
                    None => return Err(Wait::Verify),
                },
                Step::Bind(claims) => match s.binding.now(req, claims.token(), &*s.verifier) {
                    Now::Ready(answer) => Step::then(answer, Step::Revoke(claims)),
                    Now::Wait(replay) => return Err(Wait::Bind(claims, replay)),
                },
                Step::Revoke(claims) => match s.revocation.now(claims.token()) {
                    Now::Ready(answer) => Step::then(answer, Step::Done(Ok(Some(claims)))),
                    Now::Wait(recheck) => return Err(Wait::Revoke(claims, recheck)),
                },
                Step::Done(outcome) => return Ok(outcome),
            }
        }
    }

    /// Step 1: the token, into `req`.
    fn find<'r>(&self, req: &mut Presented<'r>) -> Step<C> {
        let s = &*self.settings;
        let accepts_dpop = s.binding.accepts_dpop();
        let found = match find_token(
            s.token_sources(),
            req.uri,
            req.headers,
            accepts_dpop,
            s.max_token_len,
        ) {
            Ok(Some(found)) => found,
            Ok(None) if s.optional => return Step::Done(Ok(None)),
            Ok(None) => return Step::Done(Err(AuthError::MissingToken)),
            Err(e) => return Step::Done(Err(e)),
        };
        if found.ambient
            && let Err(e) = s.csrf.check(req.method, req.headers)
        {
            return Step::Done(Err(e));
        }
        req.token = found.token;
        req.dpop = found.dpop;
        Step::Cache
    }

    /// Step 3's answer: the claims in the layer's type, kept in the cache
    /// for the next request.
    fn verified(&self, token: &str, verified: Result<Verified, AuthError>) -> Step<C> {
        match verified.and_then(|verified| self.cache.keep(token, verified)) {
            Ok(claims) => Step::Bind(claims),
            Err(e) => Step::Done(Err(e)),
        }
    }

    /// Awaits what a step waits for: the step that comes next.
    async fn wait(&self, wait: Wait<C>, req: &Presented<'_>) -> Step<C> {
        let s = &*self.settings;
        match wait {
            Wait::Verify => {
                let verified = s.verifier.verify_later(&req.token).await;
                self.verified(&req.token, verified)
            }
            Wait::Bind(claims, replay) => {
                Step::then(s.binding.later(replay).await, Step::Revoke(claims))
            }
            Wait::Revoke(claims, recheck) => {
                let answer = s.revocation.later(recheck, claims.token()).await;
                Step::then(answer, Step::Done(Ok(Some(claims))))
            }
        }
    }

    /// The rest of the path of a request that waits.
    async fn finish(&self, mut wait: Wait<C>, req: &mut Presented<'_>) -> Outcome<C> {
        loop {
            let step = self.wait(wait, req).await;
            match self.advance(step, req) {
                Ok(outcome) => return outcome,
                Err(next) => wait = next,
            }
        }
    }

    /// Step 6: admit (the claims into the request) or refuse (the
    /// refusal, in the layer's rendering).
    fn settle<B, ResBody>(
        &self,
        outcome: Outcome<C>,
        req: &mut Request<B>,
        grpc: bool,
        span: &Span,
        started: Option<Instant>,
    ) -> Option<Response<ResBody>>
    where
        R: OnRejection<ResBody>,
    {
        observe::outcome(span, &outcome, started);
        match outcome {
            Ok(claims) => {
                admit(req, claims);
                None
            }
            Err(error) => {
                let refusal = Refusal::new(&error)
                    .grpc(grpc)
                    .headers(req.headers())
                    .extras(self.settings.extras.as_deref());
                Some(render(&self.rejection, &refusal))
            }
        }
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
        let layer = &self.layer;
        if crate::path::skips(&layer.settings.skip, req.uri().path()) {
            let rejection = layer.rejection.clone();
            return ResponseFuture::inner(self.inner.call(req), rejection, false, None);
        }
        // Whether a refusal may take the gRPC form: the layer's
        // configuration and the request together, never the request alone.
        let grpc = grpc_request::<ReqBody, ResBody>(layer.settings.grpc, &req);
        if grpc {
            req.extensions_mut().insert(GrpcCall);
        }
        let span = observe::span();
        let started = observe::start();
        let mut presented = Presented::of(&req);
        let outcome = match span.in_scope(|| layer.advance(Step::Find, &mut presented)) {
            Ok(outcome) => outcome,
            Err(wait) => {
                let token = match wait.reads_token() {
                    true => presented.token.into_owned(),
                    false => String::new(),
                };
                let dpop = presented.dpop;
                return self.later(req, span, started, grpc, wait, (token, dpop));
            }
        };
        match layer.settle(outcome, &mut req, grpc, &span, started) {
            None => ResponseFuture::inner(
                self.inner.call(req),
                self.layer.rejection.clone(),
                grpc,
                self.layer.settings.extras.clone(),
            ),
            Some(refusal) => ResponseFuture::rejected(refusal),
        }
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    /// A refusal made in front of the request path (forward-auth cannot
    /// read the forwarded request), rendered as the layer renders its own.
    pub(crate) fn refuse<F, B, E>(
        &self,
        error: &AuthError,
        headers: &http::HeaderMap,
    ) -> ResponseFuture<F, R, B, E>
    where
        R: OnRejection<B>,
    {
        let refusal = Refusal::new(error)
            .headers(headers)
            .extras(self.settings.extras.as_deref());
        ResponseFuture::rejected(render(&self.rejection, &refusal))
    }
}

impl<S, C, R> JwtAuth<S, C, R> {
    /// The path of a request that waits, from `wait` on, in one boxed
    /// future; then on to the inner service that was made ready, or
    /// refused.
    fn later<ReqBody, ResBody>(
        &mut self,
        mut req: Request<ReqBody>,
        span: Span,
        started: Option<Instant>,
        grpc: bool,
        wait: Wait<C>,
        (token, dpop): (String, bool),
    ) -> ResponseFuture<S::Future, R, ResBody, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        C: DeserializeOwned + Send + Sync + 'static,
        R: OnRejection<ResBody> + Clone + Send + Sync + 'static,
        ReqBody: Send + 'static,
        ResBody: Default + Send + 'static,
    {
        let layer = self.layer.clone();
        // The inner service that was made ready goes with the request; a
        // clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = async move {
            let outcome = {
                let mut presented = Presented {
                    token: std::borrow::Cow::Borrowed(&token),
                    dpop,
                    ..Presented::of(&req)
                };
                layer.finish(wait, &mut presented).await
            };
            match layer.settle(outcome, &mut req, grpc, &Span::current(), started) {
                None => {
                    let res = inner.call(req).await?;
                    let extras = layer.settings.extras.as_deref();
                    Ok(rerender(&layer.rejection, grpc, extras, res))
                }
                Some(refusal) => Ok(refusal),
            }
        };
        ResponseFuture::later(Box::pin(future.instrument(span)))
    }
}

/// Puts what the layer decided into the request: the verified claims (and
/// their type-independent view, for guards; and the verifier's limit on
/// reusing its answer, if it set one), or the anonymous marker.
///
/// The innermost layer's decision is the one that counts
/// (`claims::find_token_claims` reads it): whatever this layer decides
/// replaces an outer layer's type-independent view or anonymous mark.
fn admit<C: Send + Sync + 'static, B>(req: &mut Request<B>, claims: Option<Claims<C>>) {
    let ext = req.extensions_mut();
    // An outer layer's limit is not this layer's.
    ext.remove::<ReuseUntil>();
    match claims {
        Some(claims) => {
            ext.remove::<Anonymous>();
            if let Some(until) = claims.reuse_until() {
                ext.insert(ReuseUntil(until));
            }
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
