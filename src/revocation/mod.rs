//! Revocation (feature `revocation`): a deny-list consulted after a token
//! verifies. [`MemoryRevocation`] in process, [`RedisRevocation`] (feature
//! `redis`) shared between instances, or your own [`Revocation`].
//!
#![doc = include_str!("../docs/revocation.md")]

#[cfg(feature = "redis")]
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[cfg(feature = "redis")]
pub use self::redis::{RedisError, RedisRevocation, RedisRevocationBuilder};
use std::borrow::Cow;

use crate::claims::{RegisteredClaims, TokenClaims};
use crate::error::AuthError;
use crate::store::clamp_ttl;

/// What a revocation check says about a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationStatus {
    /// Not revoked.
    Valid,
    /// Revoked: answered 401 `invalid_token` "token revoked".
    Revoked,
    /// The store could not be asked (answered 503 unless the store fails
    /// open, in which case it answers `Valid` itself).
    Unavailable(String),
}

/// A future returned by [`Revocation::check`].
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = RevocationStatus> + Send + 'a>>;

/// A deny-list the auth layer asks after a token verified (and before the
/// request goes on); set it with
/// [`JwtAuthLayer::revocation`](crate::JwtAuthLayer::revocation).
///
/// ```
/// use tower_jwt_auth::RegisteredClaims;
/// use tower_jwt_auth::revocation::{CheckFuture, Revocation, RevocationStatus};
///
/// /// Revokes every token whose subject is "mallory".
/// struct NoMallory;
///
/// impl Revocation for NoMallory {
///     fn check<'a>(&'a self, claims: &'a RegisteredClaims) -> CheckFuture<'a> {
///         let status = if claims.sub() == Some("mallory") {
///             RevocationStatus::Revoked
///         } else {
///             RevocationStatus::Valid
///         };
///         Box::pin(std::future::ready(status))
///     }
/// }
/// ```
pub trait Revocation: Send + Sync + 'static {
    /// Whether the token with these claims is revoked.
    fn check<'a>(&'a self, claims: &'a RegisteredClaims) -> CheckFuture<'a>;

    /// The answer if it is known without I/O (an in-memory list, a local
    /// cache); `None` sends the request through [`check`](Revocation::check).
    fn check_now(&self, _claims: &RegisteredClaims) -> Option<RevocationStatus> {
        None
    }
}

/// The layer's revocation setting: the store and the policy for tokens
/// without `jti`.
#[derive(Clone)]
pub(crate) struct Revoker {
    store: Arc<dyn Revocation>,
    require_jti: bool,
}

impl std::fmt::Debug for Revoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoker")
            .field("require_jti", &self.require_jti)
            .finish_non_exhaustive()
    }
}

fn answer(status: RevocationStatus) -> Result<(), AuthError> {
    match status {
        RevocationStatus::Valid => Ok(()),
        RevocationStatus::Revoked => Err(AuthError::Revoked),
        RevocationStatus::Unavailable(why) => Err(AuthError::RevocationUnavailable(why)),
    }
}

impl Revoker {
    pub(crate) fn new(store: Arc<dyn Revocation>) -> Self {
        Revoker {
            store,
            require_jti: false,
        }
    }

    pub(crate) fn require_jti(mut self) -> Self {
        self.require_jti = true;
        self
    }

    /// The registered claims the store is asked about: a token without
    /// `jti` is named by its [`token_id`](crate::Claims::token_id) instead.
    fn named<'c>(&self, claims: &'c TokenClaims) -> Result<Cow<'c, RegisteredClaims>, AuthError> {
        let registered = claims.registered();
        if registered.jti().is_some() {
            return Ok(Cow::Borrowed(registered));
        }
        if self.require_jti {
            return Err(AuthError::MissingClaim("jti".into()));
        }
        let mut named = registered.clone();
        named.set_jti(claims.token_id().into_owned());
        Ok(Cow::Owned(named))
    }

    /// `Some` when decided without I/O.
    pub(crate) fn check_now(&self, claims: &TokenClaims) -> Option<Result<(), AuthError>> {
        match self.named(claims) {
            Ok(named) => self.store.check_now(&named).map(answer),
            Err(e) => Some(Err(e)),
        }
    }

    pub(crate) async fn check(&self, claims: &TokenClaims) -> Result<(), AuthError> {
        let named = self.named(claims)?;
        if let Some(done) = self.store.check_now(&named) {
            return answer(done);
        }
        answer(self.store.check(&named).await)
    }
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether a subject mark revokes a token issued at `iat`: every token
/// issued at or before the mark is revoked; a token without `iat` cannot
/// prove it is newer, so it is revoked too.
pub(crate) fn before_mark(iat: Option<i64>, mark: i64) -> bool {
    iat.is_none_or(|iat| iat <= mark)
}

/// Subject marks: kept `ttl` after they are set.
fn marks(ttl: Duration) -> moka::sync::Cache<Box<str>, i64> {
    moka::sync::Cache::builder()
        .time_to_live(clamp_ttl(ttl))
        .build()
}

/// A deny-list key: the issuer and a value (a `jti` or a `sub`), so that
/// the same value at two issuers names two different things. The issuer's
/// length comes first, so no pair of strings can collide with another.
pub(crate) fn scoped(iss: &str, value: &str) -> String {
    let mut key = String::with_capacity(iss.len() + value.len() + 8);
    key.push_str(&iss.len().to_string());
    key.push(':');
    key.push_str(iss);
    key.push(':');
    key.push_str(value);
    key
}

/// Keeps an entry until a Unix time.
struct Until;

impl<K> moka::Expiry<K, i64> for Until {
    fn expire_after_create(&self, _key: &K, until: &i64, _at: Instant) -> Option<Duration> {
        Some(left(*until))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        until: &i64,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(left(*until))
    }
}

fn left(until: i64) -> Duration {
    Duration::from_secs(until.saturating_sub(now_secs()).max(0) as u64)
}

/// How long after a token's `exp` its deny entry must stay: a verifier
/// still accepts it for its leeway (at most 5 minutes).
pub(crate) fn keep_until(exp: i64) -> i64 {
    exp.saturating_add(crate::verify::MAX_LEEWAY.as_secs() as i64)
}

/// An in-process deny-list: revoked `jti`s (each kept until the token's
/// `exp`) and per-subject marks (every token of the subject issued at or
/// before a time). Cheap to clone; clones share the list. Answers without
/// I/O.
///
/// Security store: never forgets an entry inside its window; it has no
/// size bound, so it never has to refuse or evict one (a deny-list that
/// forgot would let a revoked token back in). Entries are added by your
/// application, not by clients, and each goes at its own expiry, so its
/// size is the number of live revocations. Concurrent revocations of the
/// same `jti` or subject keep the later end and the larger mark.
///
/// Entries are scoped by issuer: with several issuers, `alice` at one and
/// `alice` at another are different people, and so are two equal `jti`s.
/// A token without `iss` is scoped under the empty issuer `""`.
///
/// ```
/// use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
/// use tower_jwt_auth::revocation::MemoryRevocation;
///
/// # fn main() -> Result<(), tower_jwt_auth::BuildError> {
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let revoked = MemoryRevocation::new();
/// let layer = JwtAuthLayer::new(verifier).revocation(revoked.clone());
/// // later, on logout:
/// revoked.revoke("https://login.example.com", "a-jti", 4102444800);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryRevocation {
    jtis: moka::sync::Cache<Box<str>, i64>,
    subjects: moka::sync::Cache<Box<str>, i64>,
}

impl std::fmt::Debug for MemoryRevocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRevocation")
            .field("jtis", &self.jtis.entry_count())
            .field("subjects", &self.subjects.entry_count())
            .finish()
    }
}

impl Default for MemoryRevocation {
    fn default() -> Self {
        MemoryRevocation::new()
    }
}

/// How long a subject mark is kept by default: longer than any access
/// token should live.
pub const DEFAULT_MARK_TTL: Duration = Duration::from_secs(24 * 3600);

/// Builds a [`MemoryRevocation`]; see [`MemoryRevocation::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryRevocationBuilder {
    mark_ttl: Duration,
}

impl MemoryRevocationBuilder {
    /// How long a subject mark is kept after it is set (default
    /// [`DEFAULT_MARK_TTL`], 24 h): at least the longest lifetime of the
    /// tokens you accept (at most 100 years; longer is taken as 100 years).
    pub fn mark_ttl(mut self, ttl: Duration) -> Self {
        self.mark_ttl = clamp_ttl(ttl);
        self
    }

    /// Builds the (empty) list.
    pub fn build(self) -> MemoryRevocation {
        MemoryRevocation {
            jtis: moka::sync::Cache::builder().expire_after(Until).build(),
            subjects: marks(self.mark_ttl),
        }
    }
}

impl MemoryRevocation {
    /// An empty list; subject marks are kept [`DEFAULT_MARK_TTL`] (24 h).
    pub fn new() -> Self {
        MemoryRevocation::builder().build()
    }

    /// Starts building a list with other settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jwt_auth::revocation::MemoryRevocation;
    ///
    /// let list = MemoryRevocation::builder()
    ///     .mark_ttl(Duration::from_secs(12 * 3600))
    ///     .build();
    /// # let _ = list;
    /// ```
    pub fn builder() -> MemoryRevocationBuilder {
        MemoryRevocationBuilder {
            mark_ttl: DEFAULT_MARK_TTL,
        }
    }

    /// Revokes the token of issuer `iss` with this `jti`; `exp` is the
    /// token's own `exp` (seconds since the epoch). The entry is kept 5
    /// minutes past it, the largest leeway a verifier may grant, after
    /// which the token is refused as expired anyway.
    pub fn revoke(&self, iss: &str, jti: &str, exp: i64) {
        let until = keep_until(exp);
        // Atomically keep the later end: a revocation never shortens one.
        self.jtis
            .entry(Box::from(scoped(iss, jti)))
            .and_upsert_with(|e| e.map_or(until, |e| until.max(*e.value())));
    }

    /// Revokes every token of `sub` at issuer `iss` issued at or before
    /// `issued_before` (seconds since the epoch), for "log out everywhere".
    /// Tokens are compared by `iat`, which a verifier never accepts more
    /// than its leeway in the future, so a token cannot escape the mark by
    /// claiming to be issued later.
    pub fn revoke_subject(&self, iss: &str, sub: &str, issued_before: i64) {
        // Atomically keep the larger mark: concurrent marks never move
        // one back.
        self.subjects
            .entry(Box::from(scoped(iss, sub)))
            .and_upsert_with(|e| e.map_or(issued_before, |e| issued_before.max(*e.value())));
    }

    /// Whether a token with these claims is revoked.
    pub fn is_revoked(&self, claims: &RegisteredClaims) -> bool {
        let iss = claims.iss().unwrap_or("");
        if let Some(jti) = claims.jti()
            && self.jtis.contains_key(scoped(iss, jti).as_str())
        {
            return true;
        }
        claims
            .sub()
            .and_then(|s| self.subjects.get(scoped(iss, s).as_str()))
            .is_some_and(|mark| before_mark(claims.iat(), mark))
    }
}

impl Revocation for MemoryRevocation {
    fn check<'a>(&'a self, claims: &'a RegisteredClaims) -> CheckFuture<'a> {
        let status = self.check_now(claims).unwrap_or(RevocationStatus::Valid);
        Box::pin(std::future::ready(status))
    }

    fn check_now(&self, claims: &RegisteredClaims) -> Option<RevocationStatus> {
        Some(if self.is_revoked(claims) {
            RevocationStatus::Revoked
        } else {
            RevocationStatus::Valid
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list has no bound to be at twice of: 50,000 revocations and
    /// 2,000 subject marks, and every one is still there (a moka cache
    /// without a capacity never evicts).
    #[test]
    fn memory_revocation_never_forgets_an_entry_inside_its_window() {
        let list = MemoryRevocation::new();
        let exp = now_secs() + 3600;
        for i in 0..50_000 {
            list.revoke("https://iss", &format!("jti-{i}"), exp);
        }
        for i in 0..2_000 {
            list.revoke_subject("https://iss", &format!("sub-{i}"), 1000 + i);
        }
        list.jtis.run_pending_tasks();
        list.subjects.run_pending_tasks();
        for i in 0..50_000 {
            assert!(
                list.jtis
                    .contains_key(scoped("https://iss", &format!("jti-{i}")).as_str()),
                "jti-{i} forgotten"
            );
        }
        for i in 0..2_000 {
            assert_eq!(
                list.subjects
                    .get(scoped("https://iss", &format!("sub-{i}")).as_str()),
                Some(1000 + i),
                "sub-{i} forgotten"
            );
        }
    }

    /// Marks set at once from several threads: the largest stays (a
    /// smaller one written last must not move it back), and so does the
    /// latest `exp` of a `jti`.
    #[test]
    fn concurrent_revocations_never_move_a_mark_back() {
        for _round in 0..20 {
            let list = MemoryRevocation::new();
            let base = now_secs() + 1000;
            std::thread::scope(|s| {
                for t in 0..4i64 {
                    let list = &list;
                    s.spawn(move || {
                        for j in 0..500i64 {
                            list.revoke_subject("i", "ada", j * 4 + t);
                            list.revoke("i", "j", base + j * 4 + t);
                        }
                    });
                }
            });
            assert_eq!(list.subjects.get(scoped("i", "ada").as_str()), Some(1999));
            assert_eq!(
                list.jtis.get(scoped("i", "j").as_str()),
                Some(keep_until(base + 1999))
            );
        }
    }
}
