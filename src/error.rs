//! Errors: [`AuthError`] for refusals at request time, [`BuildError`] for setup mistakes.

use std::fmt;

/// What an [`AuthError`] means for the caller, and so how it is answered.
///
/// HTTP and gRPC renderers share this one mapping:
///
/// | kind | HTTP | gRPC |
/// |---|---|---|
/// | `Unauthenticated` | 401 | `UNAUTHENTICATED` (16) |
/// | `Forbidden` | 403 | `PERMISSION_DENIED` (7) |
/// | `Unavailable` | 503 | `UNAVAILABLE` (14) |
/// | `BadRequest` | 400 | `INVALID_ARGUMENT` (3) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller could not be identified: no token, or a token that is not valid.
    Unauthenticated,
    /// The caller is known but not allowed.
    Forbidden,
    /// The keys needed to check the token cannot be had right now; retry later.
    Unavailable,
    /// The request is malformed (for example two `Authorization` headers).
    BadRequest,
}

impl ErrorKind {
    /// The HTTP status code for this kind.
    pub fn http_status(self) -> http::StatusCode {
        match self {
            ErrorKind::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => http::StatusCode::FORBIDDEN,
            ErrorKind::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::BadRequest => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The gRPC status code (as its number) for this kind.
    pub fn grpc_code(self) -> u16 {
        match self {
            ErrorKind::Unauthenticated => 16,
            ErrorKind::Forbidden => 7,
            ErrorKind::Unavailable => 14,
            ErrorKind::BadRequest => 3,
        }
    }
}

/// Why a request was refused.
///
/// `Display` gives a message for logs and developers; the text sent to the
/// client (`error_description`) is [`AuthError::description`], which never
/// contains the token or any part of it.
///
/// ```
/// use tower_jwt_auth::{AuthError, ErrorKind};
///
/// let err = AuthError::Expired;
/// assert_eq!(err.kind(), ErrorKind::Unauthenticated);
/// assert_eq!(err.to_string(), "the token has expired (exp is in the past)");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthError {
    /// No token was found in any configured source.
    MissingToken,
    /// More than one `Authorization` header (or more than one value of a
    /// configured token header) was sent.
    MultipleTokens,
    /// The token is longer than the configured limit.
    TokenTooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The token is not a well-formed compact JWS.
    Malformed(&'static str),
    /// The token is a JWE (five segments); only signed tokens are accepted.
    Encrypted,
    /// The `alg` header names an algorithm that is not allowed (this includes `none`).
    AlgorithmNotAllowed(String),
    /// The header carries a member that would let the token choose its own key
    /// (`jwk`, `jku`, `x5u`, `x5c`); such tokens are always refused.
    ForbiddenHeader(&'static str),
    /// The header has a `crit` member; no extension is understood, so it is refused.
    UnsupportedCrit,
    /// The `typ` header is missing or not the configured one.
    InvalidType,
    /// No configured key has the token's `kid`.
    UnknownKid,
    /// No configured key fits the token's algorithm.
    NoMatchingKey,
    /// The signature does not verify.
    InvalidSignature,
    /// The token's `exp` is in the past (beyond the leeway).
    Expired,
    /// The token's `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// A required claim is absent.
    MissingClaim(String),
    /// A registered claim has the wrong JSON type (for example `exp` as a string).
    InvalidClaim(String),
    /// The `iss` claim is not the configured issuer.
    InvalidIssuer,
    /// The `aud` claim does not contain a configured audience.
    InvalidAudience,
    /// The claims could not be deserialized into the application's claims type.
    ClaimsShape(serde_json::Error),
    /// The keys to verify the token cannot be had right now (the identity
    /// provider is unreachable and no usable cached keys remain).
    KeysUnavailable(String),
    /// The token was revoked (its `jti`, or every token of its subject
    /// issued before a time), see [`Revocation`](crate::Revocation).
    Revoked,
    /// The revocation store cannot be asked right now and the policy is to
    /// fail closed.
    RevocationUnavailable(String),
    /// The caller lacks a required role or permission.
    Forbidden(String),
    /// The caller's token lacks a required scope.
    InsufficientScope {
        /// The scopes that would have been enough, space-separated.
        required: String,
    },
}

impl AuthError {
    /// What this error means for the caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthError::MultipleTokens => ErrorKind::BadRequest,
            AuthError::KeysUnavailable(_) | AuthError::RevocationUnavailable(_) => {
                ErrorKind::Unavailable
            }
            AuthError::Forbidden(_) | AuthError::InsufficientScope { .. } => ErrorKind::Forbidden,
            _ => ErrorKind::Unauthenticated,
        }
    }

    /// The RFC 6750 error code: `None` when no token was sent (the answer then
    /// carries no error code), `invalid_request`, `invalid_token` or
    /// `insufficient_scope`.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken
            | AuthError::KeysUnavailable(_)
            | AuthError::RevocationUnavailable(_) => None,
            AuthError::MultipleTokens => Some("invalid_request"),
            // RFC 6750 §3.1: "requires higher privileges than provided by
            // the access token", which a missing role is too.
            AuthError::Forbidden(_) | AuthError::InsufficientScope { .. } => {
                Some("insufficient_scope")
            }
            _ => Some("invalid_token"),
        }
    }

    /// A short description safe to send to the client: it never contains
    /// the token, and it uses only the characters RFC 6750 allows in
    /// `error_description` (printable ASCII without `"` and `\`).
    pub fn description(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "no access token",
            AuthError::MultipleTokens => "more than one access token in the request",
            AuthError::TokenTooLarge { .. } => "the access token is too large",
            AuthError::Malformed(_) => "the access token is malformed",
            AuthError::Encrypted => "encrypted tokens are not accepted",
            AuthError::AlgorithmNotAllowed(_) => "the token algorithm is not allowed",
            AuthError::ForbiddenHeader(_) => "the token header carries a key reference",
            AuthError::UnsupportedCrit => "the token has unsupported critical header parameters",
            AuthError::InvalidType => "the token type is not accepted",
            AuthError::UnknownKid | AuthError::NoMatchingKey => "no key matches the token",
            AuthError::InvalidSignature => "the token signature is invalid",
            AuthError::Expired => "the access token expired",
            AuthError::NotYetValid => "the access token is not yet valid",
            AuthError::MissingClaim(_) => "the token lacks a required claim",
            AuthError::InvalidClaim(_) => "the token has a malformed claim",
            AuthError::InvalidIssuer => "the token issuer is not accepted",
            AuthError::InvalidAudience => "the token audience is not accepted",
            AuthError::ClaimsShape(_) => "the token claims have an unexpected shape",
            AuthError::KeysUnavailable(_) => "the signing keys are temporarily unavailable",
            AuthError::Revoked => "token revoked",
            AuthError::RevocationUnavailable(_) => "token revocation cannot be checked right now",
            AuthError::Forbidden(_) => "the caller is not allowed to access this resource",
            AuthError::InsufficientScope { .. } => "the access token lacks a required scope",
        }
    }

    /// A stable short name for logs and metrics (`expired`, `bad_signature`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::MultipleTokens => "multiple_tokens",
            AuthError::TokenTooLarge { .. } => "too_large",
            AuthError::Malformed(_) => "malformed",
            AuthError::Encrypted => "encrypted",
            AuthError::AlgorithmNotAllowed(_) => "alg_not_allowed",
            AuthError::ForbiddenHeader(_) => "forbidden_header",
            AuthError::UnsupportedCrit => "unsupported_crit",
            AuthError::InvalidType => "invalid_typ",
            AuthError::UnknownKid => "unknown_kid",
            AuthError::NoMatchingKey => "no_matching_key",
            AuthError::InvalidSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::InvalidClaim(_) => "invalid_claim",
            AuthError::InvalidIssuer => "invalid_issuer",
            AuthError::InvalidAudience => "invalid_audience",
            AuthError::ClaimsShape(_) => "claims_shape",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
            AuthError::Revoked => "revoked",
            AuthError::RevocationUnavailable(_) => "revocation_unavailable",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::InsufficientScope { .. } => "insufficient_scope",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingToken => f.write_str("no bearer token in the request"),
            AuthError::MultipleTokens => {
                f.write_str("the request carries more than one token header; send exactly one")
            }
            AuthError::TokenTooLarge { len, limit } => write!(
                f,
                "the token is {len} bytes, over the limit of {limit} bytes \
                 (raise it with JwtAuthLayer::max_token_len if your tokens are legitimately large)"
            ),
            AuthError::Malformed(why) => write!(f, "malformed token: {why}"),
            AuthError::Encrypted => {
                f.write_str("the token is a JWE (encrypted); only signed JWTs (JWS) are accepted")
            }
            AuthError::AlgorithmNotAllowed(alg) => write!(
                f,
                "the token's algorithm {alg:?} is not in the allow-list of this verifier"
            ),
            AuthError::ForbiddenHeader(name) => write!(
                f,
                "the token header carries `{name}`; keys named by the token itself are never trusted"
            ),
            AuthError::UnsupportedCrit => f.write_str(
                "the token header has a `crit` member naming extensions this verifier does not understand",
            ),
            AuthError::InvalidType => {
                f.write_str("the token's `typ` header is missing or not the expected type")
            }
            AuthError::UnknownKid => f.write_str("no configured key has the token's `kid`"),
            AuthError::NoMatchingKey => {
                f.write_str("no configured key fits the token's algorithm")
            }
            AuthError::InvalidSignature => f.write_str("the token's signature does not verify"),
            AuthError::Expired => f.write_str("the token has expired (exp is in the past)"),
            AuthError::NotYetValid => {
                f.write_str("the token is not valid yet (nbf is in the future)")
            }
            AuthError::MissingClaim(name) => write!(f, "the token lacks the required claim `{name}`"),
            AuthError::InvalidClaim(why) => write!(f, "invalid claim: {why}"),
            AuthError::InvalidIssuer => f.write_str("the token's `iss` is not the expected issuer"),
            AuthError::InvalidAudience => {
                f.write_str("the token's `aud` does not contain an expected audience")
            }
            AuthError::ClaimsShape(e) => write!(
                f,
                "the verified claims do not deserialize into the application's claims type: {e}"
            ),
            AuthError::KeysUnavailable(why) => {
                write!(f, "the keys to verify the token are unavailable: {why}")
            }
            AuthError::Revoked => f.write_str("the token has been revoked"),
            AuthError::RevocationUnavailable(why) => write!(
                f,
                "the revocation store is unavailable ({why}); failing closed \
                 (choose fail-open on the store to let tokens through instead)"
            ),
            AuthError::Forbidden(why) => write!(f, "access denied: {why}"),
            AuthError::InsufficientScope { required } => {
                write!(f, "the token lacks a required scope (one of: {required})")
            }
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::ClaimsShape(e) => Some(e),
            _ => None,
        }
    }
}

/// A setup mistake, reported when keys or the verifier are built, never at
/// request time.
///
/// ```
/// use tower_jwt_auth::{Algorithm, Key};
///
/// let err = Key::hmac(Algorithm::HS256, b"too short").unwrap_err();
/// assert!(err.to_string().contains("at least 32 bytes"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A key could not be parsed or does not fit its algorithm.
    InvalidKey(String),
    /// The verifier has no keys.
    NoKeys,
    /// A configuration value is not acceptable.
    InvalidConfig(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::InvalidKey(why) => write!(f, "invalid key: {why}"),
            BuildError::NoKeys => f.write_str(
                "the verifier has no keys; add at least one with VerifierBuilder::key or ::jwks",
            ),
            BuildError::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for BuildError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_use_rfc6750_characters() {
        let all = [
            AuthError::MissingToken,
            AuthError::MultipleTokens,
            AuthError::TokenTooLarge { len: 1, limit: 0 },
            AuthError::Malformed("x"),
            AuthError::Encrypted,
            AuthError::AlgorithmNotAllowed("none".into()),
            AuthError::ForbiddenHeader("jwk"),
            AuthError::UnsupportedCrit,
            AuthError::InvalidType,
            AuthError::UnknownKid,
            AuthError::NoMatchingKey,
            AuthError::InvalidSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::MissingClaim("x".into()),
            AuthError::InvalidClaim("x".into()),
            AuthError::InvalidIssuer,
            AuthError::InvalidAudience,
            AuthError::KeysUnavailable("down".into()),
            AuthError::Forbidden("x".into()),
            AuthError::InsufficientScope {
                required: "a".into(),
            },
        ];
        for e in all {
            let d = e.description();
            assert!(
                d.bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{d}"
            );
            assert!(!e.to_string().is_empty());
            assert!(!e.reason().is_empty());
        }
    }

    #[test]
    fn kinds_map_to_statuses() {
        assert_eq!(AuthError::MissingToken.kind().http_status(), 401);
        assert_eq!(AuthError::MultipleTokens.kind().http_status(), 400);
        assert_eq!(AuthError::Forbidden("r".into()).kind().grpc_code(), 7);
        assert_eq!(
            AuthError::KeysUnavailable("x".into()).kind().grpc_code(),
            14
        );
        assert_eq!(AuthError::Expired.error_code(), Some("invalid_token"));
        assert_eq!(AuthError::MissingToken.error_code(), None);
    }
}
