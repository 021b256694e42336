//! Revocation (feature `revocation`): a deny-list consulted after a token
//! verifies. [`MemoryRevocation`] in process, [`RedisRevocation`] (feature
//! `redis`) shared between instances, or your own [`Revocation`].
//!
#![doc = include_str!("../docs/revocation.md")]

#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

#[cfg(feature = "redis")]
pub use self::redis::{RedisError, RedisRevocation, RedisRevocationBuilder};
use std::borrow::Cow;

use crate::BoxFuture;
use crate::claims::{RegisteredClaims, TokenClaims};
use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use crate::store::{Full, SecurityStore, clamp_ttl};

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

/// A deny-list the auth layer asks after a token verified (and before the
/// request goes on); set it with
/// [`JwtAuthLayer::revocation`](crate::JwtAuthLayer::revocation).
///
/// ```
/// use tower_jwt_auth::RegisteredClaims;
/// use tower_jwt_auth::BoxFuture;
/// use tower_jwt_auth::revocation::{Revocation, RevocationStatus};
///
/// /// Revokes every token whose subject is "mallory".
/// struct NoMallory;
///
/// impl Revocation for NoMallory {
///     fn check_later<'a>(&'a self, claims: &'a RegisteredClaims) -> BoxFuture<'a, RevocationStatus> {
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
    fn check_later<'a>(&'a self, claims: &'a RegisteredClaims) -> BoxFuture<'a, RevocationStatus>;

    /// The answer if it is known without I/O (an in-memory list, a local
    /// cache); `None` sends the request through [`check_later`](Revocation::check_later).
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
        RevocationStatus::Unavailable(why) => Err(AuthError::RevocationUnavailable(why.into())),
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
        if self.require_jti && claims.registered().jti().is_none() {
            return Err(AuthError::MissingClaim("jti".into()));
        }
        Ok(claims.revocation_name())
    }

    /// `Some` when decided without I/O.
    pub(crate) fn check_now(&self, claims: &TokenClaims) -> Option<Result<(), AuthError>> {
        match self.named(claims) {
            Ok(named) => self.store.check_now(&named).map(answer),
            Err(e) => Some(Err(e)),
        }
    }

    /// With I/O: asked once [`check_now`](Revoker::check_now) could not
    /// answer.
    pub(crate) async fn check(&self, claims: &TokenClaims) -> Result<(), AuthError> {
        let named = self.named(claims)?;
        answer(self.store.check_later(&named).await)
    }
}

/// Whole seconds since the epoch by `clock` (0 if it reads before 1970:
/// every entry then counts as live, so nothing revoked slips through).
pub(crate) fn now_secs(clock: &dyn Clock) -> i64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether a subject mark revokes a token issued at `iat`: every token
/// issued at or before the mark is revoked; a token without `iat` cannot
/// prove it is newer, so it is revoked too.
pub(crate) fn before_mark(iat: Option<i64>, mark: i64) -> bool {
    iat.is_none_or(|iat| iat <= mark)
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

/// A deny-list entry: a value (a `jti`'s end, a subject's mark) kept
/// until a Unix time by the list's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kept {
    value: i64,
    until: i64,
}

/// Deny-list entries by scoped key: a [`SecurityStore`] with no bound, so
/// it never refuses one; each entry leaves at its own `until` (by the
/// list's clock), never earlier. Keeping a key held already keeps the later
/// end and the larger value, atomically: concurrent revocations never move
/// one back.
#[derive(Clone)]
struct DenyList(moka::sync::Cache<Box<str>, Kept>);

impl DenyList {
    fn new(clock: &Arc<dyn Clock>) -> Self {
        DenyList(
            moka::sync::Cache::builder()
                .expire_after(Until(Arc::clone(clock)))
                .build(),
        )
    }

    /// The entry under `key`, live or not (see [`Kept::until`]).
    fn get(&self, key: &str) -> Option<Kept> {
        self.0.get(key)
    }
}

impl SecurityStore for DenyList {
    type Key = str;
    type Entry = Kept;

    fn keep(&self, key: &str, entry: Kept) -> Result<bool, Full> {
        let mut new = false;
        self.0
            .entry(Box::from(key))
            .and_upsert_with(|held| match held {
                Some(held) => {
                    let held = held.value();
                    Kept {
                        value: entry.value.max(held.value),
                        until: entry.until.max(held.until),
                    }
                }
                None => {
                    new = true;
                    entry
                }
            });
        Ok(new)
    }
}

/// Drops an entry at its `until`, by the list's clock. The clock decides
/// whether an entry counts ([`MemoryRevocation::is_revoked`] compares
/// `until` with it); this only frees the memory once it no longer does.
struct Until(Arc<dyn Clock>);

impl Until {
    fn left(&self, kept: &Kept) -> Duration {
        Duration::from_secs(kept.until.saturating_sub(now_secs(&*self.0)).max(0) as u64)
    }
}

impl<K> moka::Expiry<K, Kept> for Until {
    fn expire_after_create(&self, _key: &K, kept: &Kept, _at: Instant) -> Option<Duration> {
        Some(self.left(kept))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        kept: &Kept,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.left(kept))
    }
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
    /// `jti` -> its entry's end (`value` and `until` alike).
    jtis: DenyList,
    /// Subject -> its mark, kept `mark_ttl` after it was set.
    subjects: DenyList,
    mark_ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryRevocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRevocation")
            .field("jtis", &self.jtis.0.entry_count())
            .field("subjects", &self.subjects.0.entry_count())
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
#[derive(Clone)]
#[must_use]
pub struct MemoryRevocationBuilder {
    mark_ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryRevocationBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRevocationBuilder")
            .field("mark_ttl", &self.mark_ttl)
            .finish_non_exhaustive()
    }
}

impl MemoryRevocationBuilder {
    /// How long a subject mark is kept after it is set (default
    /// [`DEFAULT_MARK_TTL`], 24 h): at least the longest lifetime of the
    /// tokens you accept (at most 100 years; longer is taken as 100 years).
    pub fn mark_ttl(mut self, ttl: Duration) -> Self {
        self.mark_ttl = clamp_ttl(ttl);
        self
    }

    /// The clock entries expire by (default the system clock): give it
    /// the verifier's ([`VerifierBuilder::clock`](crate::VerifierBuilder::clock)),
    /// so that a test that moves time moves both.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_jwt_auth::revocation::MemoryRevocation;
    ///
    /// let list = MemoryRevocation::builder()
    ///     .clock(|| UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    ///     .build();
    /// # let _ = list;
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the (empty) list.
    pub fn build(self) -> MemoryRevocation {
        MemoryRevocation {
            jtis: DenyList::new(&self.clock),
            subjects: DenyList::new(&self.clock),
            mark_ttl: self.mark_ttl,
            clock: self.clock,
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
            clock: Arc::new(SystemClock),
        }
    }

    /// Revokes the token of issuer `iss` with this `jti`; `exp` is the
    /// token's own `exp` (seconds since the epoch). The entry is kept 5
    /// minutes past it, the largest leeway a verifier may grant, after
    /// which the token is refused as expired anyway.
    pub fn revoke(&self, iss: &str, jti: &str, exp: i64) {
        let until = keep_until(exp);
        // The later end is kept: a revocation never shortens one. The
        // list has no bound: never full.
        let _new = self.jtis.keep(
            &scoped(iss, jti),
            Kept {
                value: until,
                until,
            },
        );
    }

    /// Revokes every token of `sub` at issuer `iss` issued at or before
    /// `issued_before` (seconds since the epoch), for "log out everywhere".
    /// Tokens are compared by `iat`, which a verifier never accepts more
    /// than its leeway in the future, so a token cannot escape the mark by
    /// claiming to be issued later.
    pub fn revoke_subject(&self, iss: &str, sub: &str, issued_before: i64) {
        // The larger mark and the later end are kept: concurrent marks
        // never move one back. The list has no bound: never full.
        let until = now_secs(&*self.clock)
            .saturating_add(i64::try_from(self.mark_ttl.as_secs()).unwrap_or(i64::MAX));
        let _new = self.subjects.keep(
            &scoped(iss, sub),
            Kept {
                value: issued_before,
                until,
            },
        );
    }

    /// Whether a token with these claims is revoked.
    pub fn is_revoked(&self, claims: &RegisteredClaims) -> bool {
        let iss = claims.iss().unwrap_or("");
        // Live by the list's clock (entries also leave the map at their
        // end, by the same clock, but not at an exact instant).
        let now = now_secs(&*self.clock);
        let live = |kept: &Kept| now < kept.until;
        if let Some(jti) = claims.jti()
            && self.jtis.get(&scoped(iss, jti)).is_some_and(|k| live(&k))
        {
            return true;
        }
        claims
            .sub()
            .and_then(|s| self.subjects.get(&scoped(iss, s)))
            .is_some_and(|mark| live(&mark) && before_mark(claims.iat(), mark.value))
    }
}

impl Revocation for MemoryRevocation {
    fn check_later<'a>(&'a self, claims: &'a RegisteredClaims) -> BoxFuture<'a, RevocationStatus> {
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
        let exp = now_secs(&SystemClock) + 3600;
        for i in 0..50_000 {
            list.revoke("https://iss", &format!("jti-{i}"), exp);
        }
        for i in 0..2_000 {
            list.revoke_subject("https://iss", &format!("sub-{i}"), 1000 + i);
        }
        list.jtis.0.run_pending_tasks();
        list.subjects.0.run_pending_tasks();
        for i in 0..50_000 {
            assert!(
                list.jtis
                    .0
                    .contains_key(scoped("https://iss", &format!("jti-{i}")).as_str()),
                "jti-{i} forgotten"
            );
        }
        for i in 0..2_000 {
            assert_eq!(
                list.subjects
                    .get(&scoped("https://iss", &format!("sub-{i}")))
                    .map(|k| k.value),
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
            let base = now_secs(&SystemClock) + 1000;
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
            assert_eq!(
                list.subjects
                    .get(scoped("i", "ada").as_str())
                    .map(|k| k.value),
                Some(1999)
            );
            assert_eq!(
                list.jtis.get(&scoped("i", "j")).map(|k| k.until),
                Some(keep_until(base + 1999))
            );
        }
    }

    /// The list's clock, not the system's, says when an entry ends: a
    /// `jti` entry lasts until `exp` plus the largest leeway, a subject
    /// mark `mark_ttl`, both by the injected clock.
    #[test]
    fn entries_expire_by_the_injected_clock() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let secs = Arc::new(AtomicU64::new(1_000_000));
        let now = Arc::clone(&secs);
        let list = MemoryRevocation::builder()
            .mark_ttl(Duration::from_secs(3600))
            .clock(move || UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst)))
            .build();
        list.revoke("i", "j", 1_000_060);
        list.revoke_subject("i", "ada", 999_999);
        let claims = |payload: &str| {
            crate::claims::read_plain(payload)
                .unwrap()
                .layout(payload)
                .holding(payload.into())
        };
        let by_jti = claims(r#"{"iss":"i","jti":"j"}"#);
        let by_sub = claims(r#"{"iss":"i","sub":"ada","iat":999000}"#);
        assert!(list.is_revoked(&by_jti) && list.is_revoked(&by_sub));
        // Past exp but within the largest leeway: still revoked.
        secs.store(1_000_060 + 299, Ordering::SeqCst);
        assert!(list.is_revoked(&by_jti));
        secs.store(1_000_060 + 300, Ordering::SeqCst);
        assert!(!list.is_revoked(&by_jti), "the jti entry outlived its end");
        assert!(list.is_revoked(&by_sub));
        secs.store(1_000_000 + 3600, Ordering::SeqCst);
        assert!(!list.is_revoked(&by_sub), "the mark outlived mark_ttl");
    }
}
