//! axum extractors: `Claims<C>` and `Option<Claims<C>>` (feature `axum`).

use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::claims::Claims;
use crate::claims::{Found, find_for_handler};

/// Why `Claims<C>` could not be extracted.
///
/// - [`MissingToken`](ClaimsRejection::MissingToken): the layer runs in
///   optional mode and the request had no token → 401.
/// - [`MissingLayer`](ClaimsRejection::MissingLayer): no `JwtAuthLayer`
///   ran for this route, or it was set up with another claims type: a
///   wiring bug, answered with a plain 500 (the hint goes to the logs as an
///   error event), rather than 401.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClaimsRejection {
    /// Optional authentication let the request through without a token.
    MissingToken,
    /// The request extensions hold no `Claims<C>` of the requested type.
    MissingLayer {
        /// The claims type the handler asked for.
        claims_type: &'static str,
    },
}

impl fmt::Display for ClaimsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimsRejection::MissingToken => f.write_str("this route needs an access token"),
            ClaimsRejection::MissingLayer { claims_type } => write!(
                f,
                "no Claims<{claims_type}> in the request extensions: add JwtAuthLayer to this \
                 route (Router::route_layer) and make sure its .claims::<T>() type is the one \
                 the handler extracts"
            ),
        }
    }
}

impl std::error::Error for ClaimsRejection {}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        match self {
            ClaimsRejection::MissingToken => {
                crate::reject::DefaultRejection::inner_refusal(crate::AuthError::MissingToken)
            }
            ClaimsRejection::MissingLayer { .. } => {
                // The hint is for the developer, in the logs; the client
                // learns nothing about the server's types.
                tracing::error!("{self}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "authentication is misconfigured",
                )
                    .into_response()
            }
        }
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <Claims<C> as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await? {
            Some(claims) => Ok(claims),
            None => Err(ClaimsRejection::MissingToken),
        }
    }
}

impl<S, C> OptionalFromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match find_for_handler::<C>(&parts.extensions) {
            Found::Claims(claims) => Ok(Some(claims.clone())),
            Found::Anonymous => Ok(None),
            Found::NoLayer | Found::OtherType => Err(ClaimsRejection::MissingLayer {
                claims_type: std::any::type_name::<C>(),
            }),
        }
    }
}

/// The [`DefaultRejection`](crate::DefaultRejection) HTTP answer, so
/// handlers can return `Result<_, AuthError>`, for example from
/// [`RequireScope::check`](crate::RequireScope::check). Behind an auth
/// layer, the layer renders it again with its own configuration (realm,
/// gRPC form, custom rejection).
///
/// ```
/// use axum::response::IntoResponse;
/// use tower_jwt_auth::AuthError;
///
/// let res = AuthError::InsufficientScope { required: "write".into() }.into_response();
/// assert_eq!(res.status(), 403);
/// assert!(res.headers()["www-authenticate"].to_str().unwrap().contains(r#"scope="write""#));
/// ```
impl IntoResponse for crate::AuthError {
    fn into_response(self) -> Response {
        crate::reject::DefaultRejection::inner_refusal(self)
    }
}
