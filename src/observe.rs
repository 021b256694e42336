//! What the layer reports: a `tracing` span per verification, and with the
//! `metrics` feature, counters and histograms through the `metrics` facade.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `jwt_auth_verifications_total` | counter | `outcome` (`accepted`, `refused`, `anonymous`), `reason` |
//! | `jwt_auth_verification_seconds` | histogram | `outcome` |
//! | `jwt_auth_token_cache_hits_total` | counter | |
//! | `jwt_auth_jwks_fetches_total` | counter | `result` (`ok`, `error`) |
//! | `jwt_auth_jwks_fetch_seconds` | histogram | `result` |
//! | `jwt_auth_introspections_total` | counter | `result` (`active`, `inactive`, `refused`, `error`) |
//! | `jwt_auth_introspection_seconds` | histogram | `result` |
//!
//! `reason` is `ok` for an accepted token, `missing_token` for an anonymous
//! request, and [`AuthError::reason`] for a refusal: one stable label per
//! variant, declared in the same row of the error table as the variant.
//!
//! Nothing here ever records the token, its signature or claims other than
//! `iss` and the header's `kid`.

use std::time::Instant;

use tracing::Span;

use crate::claims::Claims;
use crate::error::AuthError;

/// The span of one verification; fields are filled as they become known.
pub(crate) fn span() -> Span {
    tracing::debug_span!(
        "jwt_auth.verify",
        outcome = tracing::field::Empty,
        reason = tracing::field::Empty,
        iss = tracing::field::Empty,
        kid = tracing::field::Empty,
        cached = tracing::field::Empty,
    )
}

/// Records the header's `kid` on the current verification span.
pub(crate) fn kid(kid: Option<&str>) {
    if let Some(kid) = kid {
        let span = Span::current();
        if !span.is_disabled() {
            span.record("kid", crate::text::excerpt(kid).as_str());
        }
    }
}

/// When a verification started (only measured with `metrics`).
pub(crate) fn start() -> Option<Instant> {
    #[cfg(feature = "metrics")]
    {
        Some(Instant::now())
    }
    #[cfg(not(feature = "metrics"))]
    {
        None
    }
}

/// Records how a request's verification ended.
pub(crate) fn outcome<C>(
    span: &Span,
    result: &Result<Option<Claims<C>>, AuthError>,
    started: Option<Instant>,
) {
    let (outcome, reason) = match result {
        Ok(Some(_)) => ("accepted", "ok"),
        Ok(None) => ("anonymous", "missing_token"),
        Err(e) => ("refused", e.reason()),
    };
    span.record("outcome", outcome);
    span.record("reason", reason);
    if let Ok(Some(claims)) = result
        && let Some(iss) = claims.iss()
        && !span.is_disabled()
    {
        span.record("iss", crate::text::excerpt(iss).as_str());
    }
    if let Err(e) = result {
        tracing::debug!(parent: span, reason, error = %e, "token refused");
    }
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("jwt_auth_verifications_total", "outcome" => outcome, "reason" => reason)
            .increment(1);
        if let Some(started) = started {
            metrics::histogram!("jwt_auth_verification_seconds", "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = started;
}

/// A verified-token cache hit.
pub(crate) fn cache_hit(span: &Span) {
    span.record("cached", true);
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_auth_token_cache_hits_total").increment(1);
}

/// A token introspection call, its result (`active`, `inactive`,
/// `refused`, `error`) and how long it took.
#[cfg(feature = "introspection")]
pub(crate) fn introspection(result: &'static str, started: Instant) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("jwt_auth_introspections_total", "result" => result).increment(1);
        metrics::histogram!("jwt_auth_introspection_seconds", "result" => result)
            .record(started.elapsed().as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (result, started);
}

/// A JWKS fetch and how long it took.
#[cfg(feature = "jwks")]
pub(crate) fn jwks_fetch(ok: bool, started: Instant) {
    let result = if ok { "ok" } else { "error" };
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("jwt_auth_jwks_fetches_total", "result" => result).increment(1);
        metrics::histogram!("jwt_auth_jwks_fetch_seconds", "result" => result)
            .record(started.elapsed().as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (result, started);
}
