//! tonic integration (feature `tonic`): claims in gRPC handlers and
//! [`AuthError`] as a [`tonic::Status`].
//!
//! The layer and the guards work on a tonic server unchanged: add them with
//! `Server::builder().layer(..)` (the first layer added runs first). The
//! token comes from the `authorization` metadata (`Bearer …`, or `DPoP …`
//! with a `dpop` proof whose `htm` is `POST` and `htu` the external base
//! URL followed by the method path, `/package.Service/Method`), and refusals
//! are trailers-only gRPC answers (`grpc-status` 16, 7 or 14) when the
//! layer wraps a tonic server and the call is a genuine gRPC call, or when
//! the layer says so with [`JwtAuthLayer::grpc`](crate::JwtAuthLayer::grpc);
//! never because of the request's content type alone. They carry the
//! `www-authenticate` challenge of the HTTP answer as metadata.
//!
#![doc = include_str!("docs/grpc.md")]

use tonic::{Code, Status};

use crate::claims::{Claims, JsonClaims};
use crate::claims::{Found, find_for_handler};
use crate::error::AuthError;

/// Reads the verified claims from a [`tonic::Request`] in a gRPC handler.
///
/// ```
/// use tonic::{Request, Response, Status};
/// use tower_jwt_auth::grpc::GrpcClaims;
///
/// async fn hello(request: Request<()>) -> Result<Response<String>, Status> {
///     let claims = request.claims()?; // UNAUTHENTICATED or INTERNAL if absent
///     Ok(Response::new(format!("hello {}", claims.sub().unwrap_or("you"))))
/// }
/// # let _ = hello;
/// ```
pub trait GrpcClaims {
    /// The claims the auth layer verified, as the default JSON claims type.
    /// `UNAUTHENTICATED` when an optional layer let the request through
    /// without a token; `INTERNAL` when no auth layer ran (a wiring bug).
    fn claims(&self) -> Result<Claims, Status> {
        self.claims_as::<JsonClaims>()
    }

    /// The claims as the layer's own claims type `C`
    /// ([`JwtAuthLayer::claims`](crate::JwtAuthLayer::claims)).
    fn claims_as<C: Send + Sync + 'static>(&self) -> Result<Claims<C>, Status> {
        match self.optional_claims_as::<C>()? {
            Some(claims) => Ok(claims),
            None => Err(Status::unauthenticated("no access token")),
        }
    }

    /// `None` for an anonymous request under an optional auth layer.
    fn optional_claims_as<C: Send + Sync + 'static>(&self) -> Result<Option<Claims<C>>, Status>;
}

impl<T> GrpcClaims for tonic::Request<T> {
    fn optional_claims_as<C: Send + Sync + 'static>(&self) -> Result<Option<Claims<C>>, Status> {
        match find_for_handler::<C>(self.extensions()) {
            Found::Claims(claims) => Ok(Some(claims.clone())),
            Found::Anonymous => Ok(None),
            Found::NoLayer | Found::OtherType => {
                tracing::error!(
                    claims_type = std::any::type_name::<C>(),
                    "no claims in the request: add JwtAuthLayer with Server::builder().layer(..) \
                     and give it the claims type the handler reads"
                );
                Err(Status::internal("authentication is misconfigured"))
            }
        }
    }
}

/// The status a refusal maps to: `UNAUTHENTICATED`, `PERMISSION_DENIED`,
/// `UNAVAILABLE` or `INVALID_ARGUMENT`, with the client-safe description.
///
/// ```
/// use tonic::{Code, Status};
/// use tower_jwt_auth::AuthError;
///
/// let status = Status::from(AuthError::Forbidden("needs admin".into()));
/// assert_eq!(status.code(), Code::PermissionDenied);
/// ```
impl From<AuthError> for Status {
    fn from(error: AuthError) -> Status {
        // The one mapping, shared with the trailers-only answers of the layer.
        let code = Code::from_i32(i32::from(error.kind().grpc_code()));
        Status::new(code, error.description())
    }
}
