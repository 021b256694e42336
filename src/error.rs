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

/// Why a request was refused.
///
/// `Display` gives a message for logs and developers: it never contains the
/// token, a claim value, or more than a short escaped excerpt of a header
/// field. The text sent to the client (`error_description`) is
/// [`AuthError::description`].
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
pub enum AuthError {
    /// No token was found in any configured source.
    MissingToken,
    /// More than one `Authorization` header, more than one value of a
    /// configured token header, or two different cookies with the token's
    /// name (cookie tossing) were sent.
    MultipleTokens,
    /// The token is longer than the configured limit.
    TokenTooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The token is not a well-formed compact JWS, or its payload is not
    /// JSON a standard parser accepts (for example a number out of range).
    Malformed(&'static str),
    /// The token is a JWE (five segments); only signed tokens are accepted.
    Encrypted,
    /// The `alg` header names an algorithm that is not allowed (this includes
    /// `none`); the name is a short escaped excerpt.
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
    /// The token has no `kid` and several keys of a remote key set fit its
    /// algorithm: the token must name its key.
    AmbiguousKey,
    /// The signature does not verify.
    InvalidSignature,
    /// The token's `exp` is in the past (beyond the leeway).
    Expired,
    /// The token's `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// The token's `iat` is in the future (beyond the leeway): it claims to
    /// be issued later than now.
    IssuedInFuture,
    /// A required claim is absent.
    MissingClaim(String),
    /// A registered claim has the wrong JSON type or value (for example
    /// `exp` as a string); the text names the claim, never its value.
    InvalidClaim(String),
    /// The `iss` claim is not the configured issuer.
    InvalidIssuer,
    /// The token's tenant (`tid`) is not one of the tenants a multi-tenant
    /// issuer is restricted to (see `VerifierBuilder::tenants`).
    TenantNotAllowed,
    /// The `aud` claim does not contain a configured audience.
    InvalidAudience,
    /// The claims could not be deserialized into the application's claims type.
    ClaimsShape(ShapeError),
    /// The keys to verify the token cannot be had right now (the identity
    /// provider is unreachable and no usable cached keys remain).
    KeysUnavailable(String),
    /// The verifier's clock cannot be read (or reads before 1970): no token
    /// can be checked for expiry, so none is accepted.
    ClockUnavailable,
    /// The token introspection endpoint (RFC 7662) answers that the token
    /// is not active: unknown, expired or revoked.
    Inactive,
    /// The token introspection endpoint cannot be asked right now (timeout,
    /// an error status, an answer that is not JSON, or refused client
    /// credentials): the request fails closed.
    IntrospectionUnavailable(String),
    /// The token was revoked (its `jti`, or every token of its subject
    /// issued before a time), see `Revocation` (feature `revocation`).
    Revoked,
    /// The revocation store cannot be asked right now and the policy is to
    /// fail closed.
    RevocationUnavailable(String),
    /// A state-changing request carried its token in a cookie and came
    /// from another site (see [`CsrfPolicy`](crate::CsrfPolicy)).
    CrossSiteRequest,
    /// The caller lacks a required role or permission.
    Forbidden(String),
    /// The caller's token lacks a required scope.
    InsufficientScope {
        /// The scopes that would have been enough, space-separated.
        required: String,
    },
    /// The `DPoP` proof (RFC 9449) is missing or fails a check of §4.3;
    /// the text names the check.
    InvalidDpopProof(&'static str),
    /// The `DPoP` proof's `jti` was seen before within its window (a replay).
    DpopReplay,
    /// The `DPoP` proof lacks the server's current nonce; the answer carries
    /// this fresh nonce in a `DPoP-Nonce` header.
    UseDpopNonce(String),
    /// The token is bound (`cnf.jkt`) to another key than the proof's, or a
    /// token sent with the `DPoP` scheme is not bound at all.
    DpopKeyMismatch,
    /// A DPoP-bound token (`cnf.jkt`) was sent with the `Bearer` scheme: a
    /// downgrade, refused.
    DpopBoundBearer,
    /// The token is bound to a key (`cnf`, RFC 7800) by a method this layer
    /// does not verify (named here: `x5t#S256`, `jkt` without a DPoP
    /// policy, ...): accepting it would make a sender-constrained token a
    /// bearer token (RFC 8705 §3, RFC 9449 §7.1). See
    /// [`JwtAuthLayer::accept_unverified_binding`](crate::JwtAuthLayer::accept_unverified_binding).
    UnverifiedBinding(&'static str),
    /// The layer accepts only DPoP-bound tokens and the request sent a
    /// `Bearer` one.
    DpopRequired,
    /// The DPoP replay store cannot be asked right now and the policy is to
    /// fail closed.
    ReplayUnavailable(String),
    /// The authentication behind the token is not strong or recent enough
    /// (RFC 9470): the client should authenticate the user again.
    InsufficientUserAuthentication {
        /// The acceptable `acr` values, space-separated, if any are required.
        acr_values: Option<String>,
        /// The largest acceptable age of the authentication, in seconds.
        max_age: Option<u64>,
    },
}

/// Why verified claims do not fit the application's claims type: a
/// message with claim values removed. The parser's own error is its
/// [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
pub struct ShapeError {
    message: Box<str>,
    source: std::sync::Arc<serde_json::Error>,
}

impl ShapeError {
    pub(crate) fn new(error: serde_json::Error) -> Self {
        ShapeError {
            message: redact(&error.to_string()).into_boxed_str(),
            source: std::sync::Arc::new(error),
        }
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ShapeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A serde message without the values it quotes: `invalid type: string
/// "x", expected u64` becomes `invalid type: string "…", expected u64`.
/// The names in `missing field` and `duplicate field` (the application's
/// own field names) are kept; every other quoted or backticked text goes.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(256));
    let mut rest = message;
    while let Some(at) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[at] as char;
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        let Some(close) = after[1..].find(quote) else {
            out.push(quote);
            out.push('…');
            rest = "";
            break;
        };
        let inner = &after[1..1 + close];
        let keep = quote == '`'
            && (before.ends_with("missing field ") || before.ends_with("duplicate field "));
        out.push(quote);
        if keep {
            out.push_str(&crate::text::excerpt(inner));
        } else {
            out.push('…');
        }
        out.push(quote);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    if out.len() > 256 {
        let mut cut = 256;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// How one kind of refusal is answered: one row per variant.
struct Meta {
    kind: ErrorKind,
    /// RFC 6750 `error`, none when no token was sent.
    code: Option<&'static str>,
    /// Client-safe `error_description`.
    description: &'static str,
    /// Stable short name for logs and metrics.
    reason: &'static str,
}

const fn meta(
    kind: ErrorKind,
    code: Option<&'static str>,
    description: &'static str,
    reason: &'static str,
) -> Meta {
    Meta {
        kind,
        code,
        description,
        reason,
    }
}

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

impl AuthError {
    fn meta(&self) -> Meta {
        use ErrorKind::{BadRequest, Forbidden, Unauthenticated as Unauth, Unavailable};
        match self {
            AuthError::MissingToken => meta(Unauth, None, "no access token", "missing_token"),
            AuthError::MultipleTokens => meta(
                BadRequest,
                INVALID_REQUEST,
                "more than one access token in the request",
                "multiple_tokens",
            ),
            AuthError::TokenTooLarge { .. } => meta(
                Unauth,
                INVALID_TOKEN,
                "the access token is too large",
                "too_large",
            ),
            AuthError::Malformed(_) => meta(
                Unauth,
                INVALID_TOKEN,
                "the access token is malformed",
                "malformed",
            ),
            AuthError::Encrypted => meta(
                Unauth,
                INVALID_TOKEN,
                "encrypted tokens are not accepted",
                "encrypted",
            ),
            AuthError::AlgorithmNotAllowed(_) => meta(
                Unauth,
                INVALID_TOKEN,
                "the token algorithm is not allowed",
                "alg_not_allowed",
            ),
            AuthError::ForbiddenHeader(_) => meta(
                Unauth,
                INVALID_TOKEN,
                "the token header carries a key reference",
                "forbidden_header",
            ),
            AuthError::UnsupportedCrit => meta(
                Unauth,
                INVALID_TOKEN,
                "the token has unsupported critical header parameters",
                "unsupported_crit",
            ),
            AuthError::InvalidType => meta(
                Unauth,
                INVALID_TOKEN,
                "the token type is not accepted",
                "invalid_typ",
            ),
            AuthError::UnknownKid => meta(
                Unauth,
                INVALID_TOKEN,
                "no key matches the token",
                "unknown_kid",
            ),
            AuthError::NoMatchingKey => meta(
                Unauth,
                INVALID_TOKEN,
                "no key matches the token",
                "no_matching_key",
            ),
            AuthError::AmbiguousKey => meta(
                Unauth,
                INVALID_TOKEN,
                "the token does not name its key (kid)",
                "ambiguous_key",
            ),
            AuthError::InvalidSignature => meta(
                Unauth,
                INVALID_TOKEN,
                "the token signature is invalid",
                "bad_signature",
            ),
            AuthError::Expired => {
                meta(Unauth, INVALID_TOKEN, "the access token expired", "expired")
            }
            AuthError::NotYetValid => meta(
                Unauth,
                INVALID_TOKEN,
                "the access token is not yet valid",
                "not_yet_valid",
            ),
            AuthError::IssuedInFuture => meta(
                Unauth,
                INVALID_TOKEN,
                "the access token is issued in the future",
                "issued_in_future",
            ),
            AuthError::MissingClaim(_) => meta(
                Unauth,
                INVALID_TOKEN,
                "the token lacks a required claim",
                "missing_claim",
            ),
            AuthError::InvalidClaim(_) => meta(
                Unauth,
                INVALID_TOKEN,
                "the token has a malformed claim",
                "invalid_claim",
            ),
            AuthError::InvalidIssuer => meta(
                Unauth,
                INVALID_TOKEN,
                "the token issuer is not accepted",
                "invalid_issuer",
            ),
            AuthError::TenantNotAllowed => meta(
                Unauth,
                INVALID_TOKEN,
                "the token tenant is not accepted",
                "tenant_not_allowed",
            ),
            AuthError::InvalidAudience => meta(
                Unauth,
                INVALID_TOKEN,
                "the token audience is not accepted",
                "invalid_audience",
            ),
            AuthError::ClaimsShape(_) => meta(
                Unauth,
                INVALID_TOKEN,
                "the token claims have an unexpected shape",
                "claims_shape",
            ),
            AuthError::KeysUnavailable(_) => meta(
                Unavailable,
                None,
                "the signing keys are temporarily unavailable",
                "keys_unavailable",
            ),
            AuthError::ClockUnavailable => meta(
                Unavailable,
                None,
                "the server cannot check token lifetimes right now",
                "clock_unavailable",
            ),
            AuthError::Inactive => meta(
                Unauth,
                INVALID_TOKEN,
                "the access token is not active",
                "inactive",
            ),
            AuthError::IntrospectionUnavailable(_) => meta(
                Unavailable,
                None,
                "the token cannot be checked right now",
                "introspection_unavailable",
            ),
            AuthError::Revoked => meta(Unauth, INVALID_TOKEN, "token revoked", "revoked"),
            AuthError::RevocationUnavailable(_) => meta(
                Unavailable,
                None,
                "token revocation cannot be checked right now",
                "revocation_unavailable",
            ),
            AuthError::CrossSiteRequest => meta(
                Forbidden,
                INVALID_REQUEST,
                "cross-site request with a cookie token refused",
                "cross_site",
            ),
            AuthError::Forbidden(_) => meta(
                Forbidden,
                INSUFFICIENT_SCOPE,
                "the caller is not allowed to access this resource",
                "forbidden",
            ),
            AuthError::InsufficientScope { .. } => meta(
                Forbidden,
                INSUFFICIENT_SCOPE,
                "the access token lacks a required scope",
                "insufficient_scope",
            ),
            AuthError::InvalidDpopProof(_) => meta(
                Unauth,
                INVALID_DPOP_PROOF,
                "the DPoP proof is invalid",
                "invalid_dpop_proof",
            ),
            AuthError::DpopReplay => meta(
                Unauth,
                INVALID_DPOP_PROOF,
                "the DPoP proof was already used",
                "dpop_replay",
            ),
            AuthError::UseDpopNonce(_) => meta(
                Unauth,
                USE_DPOP_NONCE,
                "the DPoP proof must carry the server nonce",
                "use_dpop_nonce",
            ),
            AuthError::DpopKeyMismatch => meta(
                Unauth,
                INVALID_TOKEN,
                "the access token is not bound to the DPoP proof key",
                "dpop_key_mismatch",
            ),
            AuthError::DpopBoundBearer => meta(
                Unauth,
                INVALID_TOKEN,
                "a DPoP-bound access token must be sent with the DPoP scheme",
                "dpop_downgrade",
            ),
            AuthError::UnverifiedBinding(_) => meta(
                Unauth,
                INVALID_TOKEN,
                "the access token is bound to a key by a method this resource server does not verify",
                "unverified_binding",
            ),
            AuthError::DpopRequired => meta(
                Unauth,
                INVALID_TOKEN,
                "this resource requires a DPoP-bound access token",
                "dpop_required",
            ),
            AuthError::ReplayUnavailable(_) => meta(
                Unavailable,
                None,
                "DPoP proofs cannot be checked right now",
                "replay_unavailable",
            ),
            AuthError::InsufficientUserAuthentication { .. } => meta(
                Unauth,
                INSUFFICIENT_USER_AUTHENTICATION,
                "a stronger or more recent user authentication is required",
                "insufficient_user_authentication",
            ),
        }
    }

    /// What this error means for the caller.
    pub fn kind(&self) -> ErrorKind {
        self.meta().kind
    }

    /// The RFC 6750 error code: `None` when no token was sent or the server
    /// cannot decide right now (the answer then carries no error code),
    /// `invalid_request`, `invalid_token` or `insufficient_scope`.
    pub fn error_code(&self) -> Option<&'static str> {
        self.meta().code
    }

    /// A short description safe to send to the client: it never contains
    /// the token, and it uses only the characters RFC 6750 allows in
    /// `error_description` (printable ASCII without `"` and `\`).
    pub fn description(&self) -> &'static str {
        self.meta().description
    }

    /// A stable short name for logs and metrics (`expired`, `bad_signature`, ...).
    pub fn reason(&self) -> &'static str {
        self.meta().reason
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingToken => f.write_str("no bearer token in the request"),
            AuthError::MultipleTokens => f.write_str(
                "the request carries more than one token (two token headers, or two different \
                 cookies with the token's name); send exactly one",
            ),
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
                "the token's algorithm \"{alg}\" is not in the allow-list of this verifier"
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
            AuthError::AmbiguousKey => f.write_str(
                "the token has no `kid` and several keys of the key set fit its algorithm; \
                 the issuer must name the signing key in the token's `kid` header",
            ),
            AuthError::InvalidSignature => f.write_str("the token's signature does not verify"),
            AuthError::Expired => f.write_str("the token has expired (exp is in the past)"),
            AuthError::NotYetValid => {
                f.write_str("the token is not valid yet (nbf is in the future)")
            }
            AuthError::IssuedInFuture => f.write_str(
                "the token's iat is in the future beyond the leeway (check the issuer's clock)",
            ),
            AuthError::MissingClaim(name) => write!(f, "the token lacks the required claim `{name}`"),
            AuthError::InvalidClaim(why) => write!(f, "invalid claim: {why}"),
            AuthError::InvalidIssuer => f.write_str("the token's `iss` is not the expected issuer"),
            AuthError::TenantNotAllowed => f.write_str(
                "the token's tenant (`tid`) is not one of the allowed tenants (VerifierBuilder::tenants)",
            ),
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
            AuthError::ClockUnavailable => f.write_str(
                "the verifier's clock cannot be read (or reads before 1970); refusing every token",
            ),
            AuthError::Inactive => f.write_str(
                "the introspection endpoint says the token is not active (unknown, expired or revoked)",
            ),
            AuthError::IntrospectionUnavailable(why) => write!(
                f,
                "the token introspection endpoint cannot be asked ({why}); failing closed"
            ),
            AuthError::Revoked => f.write_str("the token has been revoked"),
            AuthError::RevocationUnavailable(why) => write!(
                f,
                "the revocation store is unavailable ({why}); failing closed \
                 (choose fail-open on the store to let tokens through instead)"
            ),
            AuthError::CrossSiteRequest => f.write_str(
                "a state-changing request from another site carried its token in a cookie \
                 (configure JwtAuthLayer::csrf to trust that origin)",
            ),
            AuthError::Forbidden(why) => write!(f, "access denied: {why}"),
            AuthError::InsufficientScope { required } => {
                write!(f, "the token lacks a required scope (one of: {required})")
            }
            AuthError::InvalidDpopProof(why) => write!(f, "invalid DPoP proof: {why}"),
            AuthError::DpopReplay => f.write_str(
                "the DPoP proof's jti was already used within the proof window (a replay); \
                 clients make a fresh proof for every request",
            ),
            AuthError::UseDpopNonce(_) => f.write_str(
                "the DPoP proof lacks the current server nonce; the client retries with the \
                 nonce from the DPoP-Nonce header",
            ),
            AuthError::DpopKeyMismatch => f.write_str(
                "the token's cnf.jkt is not the thumbprint of the DPoP proof's key (or a token \
                 sent with the DPoP scheme has no cnf.jkt)",
            ),
            AuthError::DpopBoundBearer => f.write_str(
                "a DPoP-bound token (cnf.jkt) was sent as a Bearer token; send it with \
                 `Authorization: DPoP` and a proof",
            ),
            AuthError::UnverifiedBinding(method) => write!(
                f,
                "the token is bound to a key (cnf: {method}) by a method this layer does not \
                 verify; refused rather than accepted as a bearer token"
            ),
            AuthError::DpopRequired => f.write_str(
                "this layer accepts only DPoP (DpopPolicy::required); the request used Bearer",
            ),
            AuthError::ReplayUnavailable(why) => write!(
                f,
                "the DPoP replay store is unavailable ({why}); failing closed"
            ),
            AuthError::InsufficientUserAuthentication { acr_values, max_age } => write!(
                f,
                "the user authentication is not strong or recent enough (acr_values: {}, max_age: {})",
                acr_values.as_deref().unwrap_or("any"),
                max_age.map_or_else(|| "any".to_owned(), |a| a.to_string()),
            ),
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
    /// A configuration value is not acceptable; [`ConfigError::setting`]
    /// names the setting.
    InvalidConfig(ConfigError),
}

/// Which setting of a builder is not acceptable, and why.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, BuildError, Key, Verifier};
///
/// let err = Verifier::builder()
///     .key(Key::hmac(Algorithm::HS256, [7u8; 32])?)
///     .any_audience()
///     .leeway(Duration::from_secs(3600))
///     .build()
///     .unwrap_err();
/// match err {
///     BuildError::InvalidConfig(e) => assert_eq!(e.setting(), "leeway"),
///     other => panic!("{other}"),
/// }
/// # Ok::<(), BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    /// The setting, named as its builder method is (`leeway`, `audience`,
    /// `algorithms`, `keys`, `issuers`, `url`, `timeout`, `max_age_bounds`,
    /// `client`, `algorithm`, `client_credentials`; for DPoP and resource
    /// metadata `base_url`, `window`, `nonce`, `resource`).
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

impl BuildError {
    pub(crate) fn config(setting: &'static str, message: impl Into<String>) -> BuildError {
        let message = message.into();
        BuildError::InvalidConfig(ConfigError {
            setting,
            // A URL it quotes, without its password.
            message: crate::text::redact_url(&message).into_owned(),
        })
    }
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
            AuthError::AmbiguousKey,
            AuthError::InvalidSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::IssuedInFuture,
            AuthError::MissingClaim("x".into()),
            AuthError::InvalidClaim("x".into()),
            AuthError::InvalidIssuer,
            AuthError::TenantNotAllowed,
            AuthError::InvalidAudience,
            AuthError::KeysUnavailable("down".into()),
            AuthError::ClockUnavailable,
            AuthError::Inactive,
            AuthError::IntrospectionUnavailable("down".into()),
            AuthError::Revoked,
            AuthError::RevocationUnavailable("down".into()),
            AuthError::CrossSiteRequest,
            AuthError::ClaimsShape(ShapeError::new(
                serde_json::from_str::<u8>("\"x\"").unwrap_err(),
            )),
            AuthError::Forbidden("x".into()),
            AuthError::InsufficientScope {
                required: "a".into(),
            },
            AuthError::InvalidDpopProof("x"),
            AuthError::DpopReplay,
            AuthError::UseDpopNonce("n".into()),
            AuthError::DpopKeyMismatch,
            AuthError::DpopBoundBearer,
            AuthError::UnverifiedBinding("x5t#S256"),
            AuthError::DpopRequired,
            AuthError::ReplayUnavailable("down".into()),
            AuthError::InsufficientUserAuthentication {
                acr_values: Some("urn:mace:incommon:iap:silver".into()),
                max_age: Some(300),
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
    fn serde_messages_lose_their_values() {
        assert_eq!(
            redact(r#"invalid type: string "s3cret", expected u64 at line 1 column 9"#),
            r#"invalid type: string "…", expected u64 at line 1 column 9"#
        );
        assert_eq!(
            redact("invalid value: integer `42`, expected u8"),
            "invalid value: integer `…`, expected u8"
        );
        assert_eq!(redact("missing field `name`"), "missing field `name`");
        assert_eq!(
            redact("unknown field `evil`, expected `a`"),
            "unknown field `…`, expected `…`"
        );
        assert_eq!(redact("unterminated \"abc"), "unterminated \"…");
        assert!(redact(&"x".repeat(1000)).len() < 300);
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
