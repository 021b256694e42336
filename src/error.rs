//! Errors: [`AuthError`] for refusals at request time, [`BuildError`] for setup mistakes.
//!
//! In the source, every refusal is declared once, in one table (the
//! `auth_errors!` macro): one row gives a variant, its documentation, how it is answered (its
//! [`ErrorKind`], RFC 6750 `error` code, client text and metrics reason)
//! and its log message. The enum, [`AuthError::kind`] and its siblings,
//! `Display` and the list of samples the tests walk are generated from it,
//! so a new refusal is one new row (see
//! `docs/decisions/0004-errors-declared-once.md`).

mod build;
mod cause;

use std::fmt;

pub use build::{BuildError, ConfigError};
pub use cause::{Outage, ShapeError};

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
    /// What is needed to check the token (keys, the introspection endpoint,
    /// the revocation store) cannot be had right now; retry later.
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

// RFC 6750 `error` codes, as the table names them. `NONE`: no token was
// sent, or the server cannot decide right now.
const NONE: Option<&str> = None;
const INVALID_TOKEN: Option<&str> = Some("invalid_token");
const INVALID_REQUEST: Option<&str> = Some("invalid_request");
// RFC 6750 §3.1: "requires higher privileges than provided by the access
// token", which a missing role is too.
const INSUFFICIENT_SCOPE: Option<&str> = Some("insufficient_scope");
// RFC 9449 §7.1 and §8.
const INVALID_DPOP_PROOF: Option<&str> = Some("invalid_dpop_proof");
const USE_DPOP_NONCE: Option<&str> = Some("use_dpop_nonce");
// RFC 9470 §3.
const INSUFFICIENT_USER_AUTHENTICATION: Option<&str> = Some("insufficient_user_authentication");

/// Declares [`AuthError`] from one row per variant, in the manner of
/// axum-core's `define_rejection!`:
///
/// ```text
/// /// docs of the variant
/// Variant [ (field: Type) | { /// doc  field: Type, ... } ]
///     => Kind, RFC_6750_CODE, "metrics_reason", "client text",
///        ("log message with {field}", extra format args...)
///        [, sample = AuthError::Variant(..)];
/// ```
///
/// and generates the enum, `kind`/`error_code`/`description`/`reason`,
/// `Display`, and (for tests) `AuthError::samples`, one value of every
/// variant (a unit variant is its own sample; others name one).
macro_rules! auth_errors {
    ($(
        $(#[$attr:meta])*
        $variant:ident
        $(( $tfield:ident : $tty:ty ))?
        $({ $( $(#[$fattr:meta])* $sfield:ident : $sty:ty ),* $(,)? })?
        => $kind:ident, $code:ident, $reason:literal, $description:literal,
           ($($display:tt)+)
           $(, sample = $sample:expr)?;
    )+) => {
        /// Why a request was refused.
        ///
        /// `Display` gives a message for logs and developers: it never
        /// contains the token, a claim value, or more than a short escaped
        /// excerpt of a header field. The text sent to the client
        /// (`error_description`) is [`AuthError::description`]; how the
        /// refusal is answered is [`AuthError::kind`]. The outages
        /// (`KeysUnavailable`, `IntrospectionUnavailable`,
        /// `RevocationUnavailable`, `ReplayUnavailable`) carry an
        /// [`Outage`], their [`source`](std::error::Error::source).
        ///
        /// ```
        /// use tower_jwt_auth::{AuthError, ErrorKind};
        ///
        /// let err = AuthError::Expired;
        /// assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        /// assert_eq!(err.to_string(), "the token has expired (exp is in the past)");
        /// ```
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum AuthError {$(
            $(#[$attr])*
            $variant
            $(( $tty ))?
            $({ $( $(#[$fattr])* $sfield : $sty ),* })?,
        )+}

        impl AuthError {
            /// What this error means for the caller.
            pub fn kind(&self) -> ErrorKind {
                match self {$(
                    AuthError::$variant { .. } => ErrorKind::$kind,
                )+}
            }

            /// The RFC 6750 error code: `None` when no token was sent or the
            /// server cannot decide right now (the answer then carries no
            /// error code), `invalid_request`, `invalid_token` or
            /// `insufficient_scope` (and for DPoP and step-up
            /// authentication, `invalid_dpop_proof`, `use_dpop_nonce`,
            /// `insufficient_user_authentication`).
            pub fn error_code(&self) -> Option<&'static str> {
                match self {$(
                    AuthError::$variant { .. } => $code,
                )+}
            }

            /// A short description safe to send to the client: it never
            /// contains the token, and it uses only the characters RFC 6750
            /// allows in `error_description` (printable ASCII without `"`
            /// and `\`).
            pub fn description(&self) -> &'static str {
                match self {$(
                    AuthError::$variant { .. } => $description,
                )+}
            }

            /// A stable short name for logs and metrics (`expired`,
            /// `bad_signature`, ...): the `reason` label of
            /// `jwt_auth_verifications_total`.
            pub fn reason(&self) -> &'static str {
                match self {$(
                    AuthError::$variant { .. } => $reason,
                )+}
            }

            /// One value of every variant, in the table's order.
            #[cfg(test)]
            pub(crate) fn samples() -> Vec<AuthError> {
                vec![$(
                    auth_errors!(@sample $variant $($sample)?),
                )+]
            }
        }

        impl fmt::Display for AuthError {
            #[allow(unused_variables)]
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {$(
                    AuthError::$variant $(( $tfield ))? $({ $($sfield),* })? => {
                        write!(f, $($display)+)
                    }
                )+}
            }
        }
    };
    (@sample $variant:ident $sample:expr) => { $sample };
    (@sample $variant:ident) => { AuthError::$variant };
}

auth_errors! {
    /// No token was found in any configured source.
    MissingToken => Unauthenticated, NONE, "missing_token", "no access token",
        ("no bearer token in the request");

    /// More than one `Authorization` header, more than one value of a
    /// configured token header, or two different cookies with the token's
    /// name (cookie tossing) were sent.
    MultipleTokens => BadRequest, INVALID_REQUEST, "multiple_tokens",
        "more than one access token in the request",
        ("the request carries more than one token (two token headers, or two different \
          cookies with the token's name); send exactly one");

    /// The token is longer than the configured limit.
    TokenTooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The configured limit in bytes.
        limit: usize,
    } => Unauthenticated, INVALID_TOKEN, "too_large", "the access token is too large",
        ("the token is {len} bytes, over the limit of {limit} bytes \
          (raise it with JwtAuthLayer::max_token_len if your tokens are legitimately large)"),
        sample = AuthError::TokenTooLarge { len: 1, limit: 0 };

    /// The token is not a well-formed compact JWS, or its payload is not
    /// JSON a standard parser accepts (for example a number out of range).
    Malformed(why: &'static str) => Unauthenticated, INVALID_TOKEN, "malformed",
        "the access token is malformed",
        ("malformed token: {why}"),
        sample = AuthError::Malformed("x");

    /// The token is a JWE (five segments); only signed tokens are accepted.
    Encrypted => Unauthenticated, INVALID_TOKEN, "encrypted",
        "encrypted tokens are not accepted",
        ("the token is a JWE (encrypted); only signed JWTs (JWS) are accepted");

    /// The token is a JWE this verifier has keys for, and it does not
    /// decrypt: no key fits, the key unwrap or the authentication tag
    /// fails. One answer for every such failure (RFC 7516 §11.5).
    DecryptionFailed => Unauthenticated, INVALID_TOKEN, "decryption_failed",
        "the access token cannot be decrypted",
        ("the token is a JWE that does not decrypt with this verifier's keys \
          (no fitting key, or the key unwrap or the authentication tag failed)");

    /// The verifier accepts only encrypted tokens (`EncryptionMode::Required`)
    /// and the token is a plain JWS.
    EncryptionRequired => Unauthenticated, INVALID_TOKEN, "encryption_required",
        "this resource accepts only encrypted access tokens",
        ("this verifier accepts only encrypted tokens (JWE, EncryptionMode::Required); \
          the token is a plain JWS");

    /// The `alg` header names an algorithm that is not allowed (this includes
    /// `none`); the name is a short escaped excerpt.
    AlgorithmNotAllowed(alg: String) => Unauthenticated, INVALID_TOKEN, "alg_not_allowed",
        "the token algorithm is not allowed",
        ("the token's algorithm \"{alg}\" is not in the allow-list of this verifier"),
        sample = AuthError::AlgorithmNotAllowed("none".into());

    /// The header carries a member that would let the token choose its own key
    /// (`jwk`, `jku`, `x5u`, `x5c`); such tokens are always refused.
    ForbiddenHeader(name: &'static str) => Unauthenticated, INVALID_TOKEN, "forbidden_header",
        "the token header carries a key reference",
        ("the token header carries `{name}`; keys named by the token itself are never trusted"),
        sample = AuthError::ForbiddenHeader("jwk");

    /// The header has a `crit` member; no extension is understood, so it is refused.
    UnsupportedCrit => Unauthenticated, INVALID_TOKEN, "unsupported_crit",
        "the token has unsupported critical header parameters",
        ("the token header has a `crit` member naming extensions this verifier does not understand");

    /// The `typ` header is missing or not the configured one.
    InvalidType => Unauthenticated, INVALID_TOKEN, "invalid_typ",
        "the token type is not accepted",
        ("the token's `typ` header is missing or not the expected type");

    /// No configured key has the token's `kid`.
    UnknownKid => Unauthenticated, INVALID_TOKEN, "unknown_kid",
        "no key matches the token",
        ("no configured key has the token's `kid`");

    /// No configured key fits the token's algorithm.
    NoMatchingKey => Unauthenticated, INVALID_TOKEN, "no_matching_key",
        "no key matches the token",
        ("no configured key fits the token's algorithm");

    /// The token has no `kid` and several keys of a remote key set fit its
    /// algorithm: the token must name its key.
    AmbiguousKey => Unauthenticated, INVALID_TOKEN, "ambiguous_key",
        "the token does not name its key (kid)",
        ("the token has no `kid` and several keys of the key set fit its algorithm; \
          the issuer must name the signing key in the token's `kid` header");

    /// The signature does not verify.
    InvalidSignature => Unauthenticated, INVALID_TOKEN, "bad_signature",
        "the token signature is invalid",
        ("the token's signature does not verify");

    /// The token's `exp` is in the past (beyond the leeway).
    Expired => Unauthenticated, INVALID_TOKEN, "expired", "the access token expired",
        ("the token has expired (exp is in the past)");

    /// The token's `nbf` is in the future (beyond the leeway).
    NotYetValid => Unauthenticated, INVALID_TOKEN, "not_yet_valid",
        "the access token is not yet valid",
        ("the token is not valid yet (nbf is in the future)");

    /// The token's `iat` is in the future (beyond the leeway): it claims to
    /// be issued later than now.
    IssuedInFuture => Unauthenticated, INVALID_TOKEN, "issued_in_future",
        "the access token is issued in the future",
        ("the token's iat is in the future beyond the leeway (check the issuer's clock)");

    /// A required claim is absent.
    MissingClaim(name: String) => Unauthenticated, INVALID_TOKEN, "missing_claim",
        "the token lacks a required claim",
        ("the token lacks the required claim `{name}`"),
        sample = AuthError::MissingClaim("x".into());

    /// A registered claim has the wrong JSON type or value (for example
    /// `exp` as a string); the text names the claim, never its value.
    InvalidClaim(why: String) => Unauthenticated, INVALID_TOKEN, "invalid_claim",
        "the token has a malformed claim",
        ("invalid claim: {why}"),
        sample = AuthError::InvalidClaim("x".into());

    /// The `iss` claim is not the configured issuer.
    InvalidIssuer => Unauthenticated, INVALID_TOKEN, "invalid_issuer",
        "the token issuer is not accepted",
        ("the token's `iss` is not the expected issuer");

    /// The token's tenant (`tid`) is not one of the tenants a multi-tenant
    /// issuer is restricted to (see `VerifierBuilder::tenants`).
    TenantNotAllowed => Unauthenticated, INVALID_TOKEN, "tenant_not_allowed",
        "the token tenant is not accepted",
        ("the token's tenant (`tid`) is not one of the allowed tenants (VerifierBuilder::tenants)");

    /// The `aud` claim does not contain a configured audience.
    InvalidAudience => Unauthenticated, INVALID_TOKEN, "invalid_audience",
        "the token audience is not accepted",
        ("the token's `aud` does not contain an expected audience");

    /// The claims could not be deserialized into the application's claims
    /// type; the [`ShapeError`] is the [`source`](std::error::Error::source).
    ClaimsShape(e: ShapeError) => Unauthenticated, INVALID_TOKEN, "claims_shape",
        "the token claims have an unexpected shape",
        ("the verified claims do not deserialize into the application's claims type: {e}"),
        sample = AuthError::ClaimsShape(ShapeError::new(
            serde_json::from_str::<u8>("\"x\"").unwrap_err(),
        ));

    /// The keys to verify the token cannot be had right now (the identity
    /// provider is unreachable and no usable cached keys remain); the
    /// [`Outage`] says why and is the [`source`](std::error::Error::source).
    KeysUnavailable(why: Outage) => Unavailable, NONE, "keys_unavailable",
        "the signing keys are temporarily unavailable",
        ("the keys to verify the token are unavailable: {why}"),
        sample = AuthError::KeysUnavailable(Outage::new("down"));

    /// The verifier's clock cannot be read (or reads before 1970): no token
    /// can be checked for expiry, so none is accepted.
    ClockUnavailable => Unavailable, NONE, "clock_unavailable",
        "the server cannot check token lifetimes right now",
        ("the verifier's clock cannot be read (or reads before 1970); refusing every token");

    /// The token introspection endpoint (RFC 7662) answers that the token
    /// is not active: unknown, expired or revoked.
    Inactive => Unauthenticated, INVALID_TOKEN, "inactive",
        "the access token is not active",
        ("the introspection endpoint says the token is not active (unknown, expired or revoked)");

    /// The token introspection endpoint cannot be asked right now (timeout,
    /// an error status, an answer that is not JSON, or refused client
    /// credentials): the request fails closed. The [`Outage`] says why and
    /// is the [`source`](std::error::Error::source).
    IntrospectionUnavailable(why: Outage) => Unavailable, NONE, "introspection_unavailable",
        "the token cannot be checked right now",
        ("the token introspection endpoint cannot be asked ({why}); failing closed"),
        sample = AuthError::IntrospectionUnavailable(Outage::new("down"));

    /// The token was revoked (its `jti`, or every token of its subject
    /// issued before a time), see `Revocation` (feature `revocation`).
    Revoked => Unauthenticated, INVALID_TOKEN, "revoked", "token revoked",
        ("the token has been revoked");

    /// The revocation store cannot be asked right now and the policy is to
    /// fail closed. The [`Outage`] says why and is the
    /// [`source`](std::error::Error::source).
    RevocationUnavailable(why: Outage) => Unavailable, NONE, "revocation_unavailable",
        "token revocation cannot be checked right now",
        ("the revocation store is unavailable ({why}); failing closed \
          (choose fail-open on the store to let tokens through instead)"),
        sample = AuthError::RevocationUnavailable(Outage::new("down"));

    /// A state-changing request carried its token in a cookie and came
    /// from another site (see [`CsrfPolicy`](crate::CsrfPolicy)).
    CrossSiteRequest => Forbidden, INVALID_REQUEST, "cross_site",
        "cross-site request with a cookie token refused",
        ("a state-changing request from another site carried its token in a cookie \
          (configure JwtAuthLayer::csrf to trust that origin)");

    /// The caller lacks a required role or permission.
    Forbidden(why: String) => Forbidden, INSUFFICIENT_SCOPE, "forbidden",
        "the caller is not allowed to access this resource",
        ("access denied: {why}"),
        sample = AuthError::Forbidden("x".into());

    /// The caller's token lacks a required scope.
    InsufficientScope {
        /// The scopes that would have been enough, space-separated.
        required: String,
    } => Forbidden, INSUFFICIENT_SCOPE, "insufficient_scope",
        "the access token lacks a required scope",
        ("the token lacks a required scope (one of: {required})"),
        sample = AuthError::InsufficientScope { required: "a".into() };

    /// The `DPoP` proof (RFC 9449) is missing or fails a check of §4.3;
    /// the text names the check.
    InvalidDpopProof(why: &'static str) => Unauthenticated, INVALID_DPOP_PROOF,
        "invalid_dpop_proof", "the DPoP proof is invalid",
        ("invalid DPoP proof: {why}"),
        sample = AuthError::InvalidDpopProof("x");

    /// The `DPoP` proof's `jti` was seen before within its window (a replay).
    DpopReplay => Unauthenticated, INVALID_DPOP_PROOF, "dpop_replay",
        "the DPoP proof was already used",
        ("the DPoP proof's jti was already used within the proof window (a replay); \
          clients make a fresh proof for every request");

    /// The `DPoP` proof lacks the server's current nonce; the answer carries
    /// this fresh nonce in a `DPoP-Nonce` header.
    UseDpopNonce(nonce: String) => Unauthenticated, USE_DPOP_NONCE, "use_dpop_nonce",
        "the DPoP proof must carry the server nonce",
        ("the DPoP proof lacks the current server nonce; the client retries with the \
          nonce from the DPoP-Nonce header"),
        sample = AuthError::UseDpopNonce("n".into());

    /// The token is bound (`cnf.jkt`) to another key than the proof's, or a
    /// token sent with the `DPoP` scheme is not bound at all.
    DpopKeyMismatch => Unauthenticated, INVALID_TOKEN, "dpop_key_mismatch",
        "the access token is not bound to the DPoP proof key",
        ("the token's cnf.jkt is not the thumbprint of the DPoP proof's key (or a token \
          sent with the DPoP scheme has no cnf.jkt)");

    /// A DPoP-bound token (`cnf.jkt`) was sent with the `Bearer` scheme: a
    /// downgrade, refused.
    DpopBoundBearer => Unauthenticated, INVALID_TOKEN, "dpop_downgrade",
        "a DPoP-bound access token must be sent with the DPoP scheme",
        ("a DPoP-bound token (cnf.jkt) was sent as a Bearer token; send it with \
          `Authorization: DPoP` and a proof");

    /// The token is bound to a key (`cnf`, RFC 7800) by a method this layer
    /// does not verify (named here: `x5t#S256`, `jkt` without a DPoP
    /// policy, ...): accepting it would make a sender-constrained token a
    /// bearer token (RFC 8705 §3, RFC 9449 §7.1). See
    /// [`JwtAuthLayer::accept_unverified_binding`](crate::JwtAuthLayer::accept_unverified_binding).
    UnverifiedBinding(method: &'static str) => Unauthenticated, INVALID_TOKEN,
        "unverified_binding",
        "the access token is bound to a key by a method this resource server does not verify",
        ("the token is bound to a key (cnf: {method}) by a method this layer does not \
          verify; refused rather than accepted as a bearer token"),
        sample = AuthError::UnverifiedBinding("x5t#S256");

    /// The token is bound to a client certificate (`cnf.x5t#S256`, RFC
    /// 8705 §3) and the request presented none, another one, or a
    /// malformed trusted `Client-Cert` header (RFC 9440); the text says
    /// which (feature `mtls`).
    ClientCertificateMismatch(why: &'static str) => Unauthenticated, INVALID_TOKEN,
        "certificate_mismatch",
        "the access token is not bound to the client certificate of this request",
        ("certificate-bound token refused: {why}"),
        sample = AuthError::ClientCertificateMismatch("x");

    /// The layer accepts only certificate-bound tokens (`MtlsMode::Required`)
    /// and the token has no `cnf.x5t#S256`.
    CertificateBindingRequired => Unauthenticated, INVALID_TOKEN, "mtls_required",
        "this resource requires a certificate-bound access token",
        ("this layer accepts only certificate-bound tokens (MtlsMode::Required); \
          the token has no cnf.x5t#S256");

    /// The layer requires sender-constrained tokens (DPoP or mTLS, as the
    /// FAPI 2.0 preset does) and the token is bound by neither.
    SenderConstraintRequired => Unauthenticated, INVALID_TOKEN, "sender_constraint_required",
        "this resource requires a sender-constrained access token (DPoP or mTLS)",
        ("this layer accepts only sender-constrained tokens (cnf.jkt with DPoP, or \
          cnf.x5t#S256 with a client certificate); the token is a plain bearer token");

    /// The layer accepts only DPoP-bound tokens and the request sent a
    /// `Bearer` one.
    DpopRequired => Unauthenticated, INVALID_TOKEN, "dpop_required",
        "this resource requires a DPoP-bound access token",
        ("this layer accepts only DPoP (DpopPolicy::required); the request used Bearer");

    /// The DPoP replay store cannot be asked right now and the policy is to
    /// fail closed. The [`Outage`] says why and is the
    /// [`source`](std::error::Error::source).
    ReplayUnavailable(why: Outage) => Unavailable, NONE, "replay_unavailable",
        "DPoP proofs cannot be checked right now",
        ("the DPoP replay store is unavailable ({why}); failing closed"),
        sample = AuthError::ReplayUnavailable(Outage::new("down"));

    /// The authentication behind the token is not strong or recent enough
    /// (RFC 9470): the client should authenticate the user again.
    InsufficientUserAuthentication {
        /// The acceptable `acr` values, space-separated, if any are required.
        acr_values: Option<String>,
        /// The largest acceptable age of the authentication, in seconds.
        max_age: Option<u64>,
    } => Unauthenticated, INSUFFICIENT_USER_AUTHENTICATION, "insufficient_user_authentication",
        "a stronger or more recent user authentication is required",
        ("the user authentication is not strong or recent enough (acr_values: {}, max_age: {})",
         acr_values.as_deref().unwrap_or("any"),
         max_age.map_or_else(|| "any".to_owned(), |a| a.to_string())),
        sample = AuthError::InsufficientUserAuthentication {
            acr_values: Some("urn:mace:incommon:iap:silver".into()),
            max_age: Some(300),
        };
}

impl std::error::Error for AuthError {
    /// The [`Outage`] of an outage, the [`ShapeError`] of `ClaimsShape`.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::ClaimsShape(e) => Some(e),
            AuthError::KeysUnavailable(why)
            | AuthError::IntrospectionUnavailable(why)
            | AuthError::RevocationUnavailable(why)
            | AuthError::ReplayUnavailable(why) => Some(why),
            _ => None,
        }
    }
}

impl AuthError {
    /// The [`Outage`] behind a refusal of kind
    /// [`Unavailable`](ErrorKind::Unavailable) that has one (every outage
    /// but `ClockUnavailable`).
    ///
    /// ```
    /// use tower_jwt_auth::{AuthError, Outage};
    ///
    /// let err = AuthError::KeysUnavailable(Outage::new("connection refused"));
    /// assert_eq!(err.outage().unwrap().to_string(), "connection refused");
    /// assert!(AuthError::Expired.outage().is_none());
    /// ```
    pub fn outage(&self) -> Option<&Outage> {
        match self {
            AuthError::KeysUnavailable(why)
            | AuthError::IntrospectionUnavailable(why)
            | AuthError::RevocationUnavailable(why)
            | AuthError::ReplayUnavailable(why) => Some(why),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn every_variant_answers_within_the_rules() {
        let all = AuthError::samples();
        let mut reasons = std::collections::HashSet::new();
        for e in &all {
            let d = e.description();
            assert!(
                d.bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{d}"
            );
            assert!(!e.to_string().is_empty());
            let reason = e.reason();
            assert!(
                !reason.is_empty() && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{reason}"
            );
            assert!(
                reasons.insert(reason),
                "two variants share the reason {reason}"
            );
            // No error code for an outage or a missing token, one otherwise.
            let no_code =
                e.kind() == ErrorKind::Unavailable || matches!(e, AuthError::MissingToken);
            assert_eq!(e.error_code().is_none(), no_code, "{e:?}");
        }
    }

    #[test]
    fn claims_shape_keeps_the_parser_error() {
        let e = AuthError::ClaimsShape(ShapeError::new(
            serde_json::from_str::<u8>("\"x\"").unwrap_err(),
        ));
        let shape = e.source().unwrap();
        assert!(shape.downcast_ref::<ShapeError>().is_some());
        assert!(
            shape
                .source()
                .unwrap()
                .downcast_ref::<serde_json::Error>()
                .is_some()
        );
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
