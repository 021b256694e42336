//! What an outage or a misfit carries: [`Outage`] (why something the
//! verification needs cannot be reached, redacted, with its cause) and
//! [`ShapeError`] (why verified claims do not fit the application's type,
//! with claim values removed).

use std::fmt;
use std::sync::Arc;

/// Why something the verification needs (keys, the introspection endpoint,
/// the revocation or replay store) cannot be had right now: the payload of
/// the outage variants of [`AuthError`](crate::AuthError), and their
/// [`source`](std::error::Error::source).
///
/// Its message is safe to log: every URL in it has its password and its
/// secret query values replaced by `***`. When it was made from an error,
/// that error's chain follows as its own `source()`, each message redacted
/// the same way (the original error, which may print a URL with its
/// password, is not kept).
///
/// ```
/// use std::error::Error;
/// use tower_jwt_auth::{AuthError, Outage};
///
/// let why = Outage::new("GET https://user:pw@idp.example/jwks: timed out");
/// assert_eq!(why.to_string(), "GET https://***@idp.example/jwks: timed out");
/// let err = AuthError::KeysUnavailable(why);
/// assert_eq!(
///     err.source().unwrap().to_string(),
///     "GET https://***@idp.example/jwks: timed out"
/// );
/// ```
#[derive(Clone)]
pub struct Outage {
    message: Arc<str>,
    cause: Option<Arc<Outage>>,
}

impl Outage {
    /// An outage described by `message` (URLs in it are redacted).
    pub fn new(message: impl AsRef<str>) -> Self {
        Outage {
            message: crate::text::redact_url(message.as_ref()).into(),
            cause: None,
        }
    }

    /// An outage described by `message`, caused by `error`: `error` and
    /// each error of its chain become the [`source`](std::error::Error::source)
    /// chain, as redacted messages.
    ///
    /// ```
    /// use std::error::Error;
    /// use tower_jwt_auth::Outage;
    ///
    /// let io = std::io::Error::other("connection refused");
    /// let why = Outage::caused_by("the store cannot be reached", &io);
    /// assert_eq!(why.to_string(), "the store cannot be reached");
    /// assert_eq!(why.source().unwrap().to_string(), "connection refused");
    /// ```
    pub fn caused_by(message: impl AsRef<str>, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut outage = Outage::new(message);
        outage.cause = Some(Arc::new(Outage::chain(error)));
        outage
    }

    /// `error` and its sources, as redacted messages.
    fn chain(error: &(dyn std::error::Error + 'static)) -> Outage {
        Outage {
            message: crate::text::redact_url(&error.to_string()).into(),
            cause: error.source().map(|e| Arc::new(Outage::chain(e))),
        }
    }
}

impl From<String> for Outage {
    fn from(message: String) -> Self {
        Outage::new(message)
    }
}

impl From<&str> for Outage {
    fn from(message: &str) -> Self {
        Outage::new(message)
    }
}

impl fmt::Debug for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("Outage");
        d.field(&&*self.message);
        if let Some(cause) = &self.cause {
            d.field(cause);
        }
        d.finish()
    }
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Outage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

/// Why verified claims do not fit the application's claims type: a
/// message with claim values removed. The parser's own error is its
/// [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
pub struct ShapeError {
    message: Box<str>,
    source: Arc<serde_json::Error>,
}

impl ShapeError {
    pub(crate) fn new(error: serde_json::Error) -> Self {
        ShapeError {
            message: redact(&error.to_string()).into_boxed_str(),
            source: Arc::new(error),
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
pub(super) fn redact(message: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AuthError, ErrorKind};
    use std::error::Error;

    #[test]
    fn outages_keep_their_cause() {
        let outages: Vec<AuthError> = AuthError::samples()
            .into_iter()
            .filter(|e| e.kind() == ErrorKind::Unavailable)
            .collect();
        assert_eq!(outages.len(), 5, "{outages:?}");
        for e in outages {
            if matches!(e, AuthError::ClockUnavailable) {
                assert!(e.source().is_none() && e.outage().is_none());
                continue;
            }
            let source = e.source().unwrap_or_else(|| panic!("{e:?} has no source"));
            assert_eq!(source.to_string(), "down");
            let outage = source.downcast_ref::<Outage>().expect("an Outage");
            assert_eq!(outage.to_string(), e.outage().unwrap().to_string());
            assert!(e.to_string().contains("down"), "{e}");
        }
        // Made from an error: the error's chain, each message redacted,
        // follows as the sources.
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("GET https://user:pw@idp.example/jwks?api_key=k failed")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let cause = Outer(std::io::Error::other("connection refused"));
        for e in [
            AuthError::KeysUnavailable(Outage::caused_by("fetch failed", &cause)),
            AuthError::IntrospectionUnavailable(Outage::caused_by("fetch failed", &cause)),
            AuthError::RevocationUnavailable(Outage::caused_by("fetch failed", &cause)),
            AuthError::ReplayUnavailable(Outage::caused_by("fetch failed", &cause)),
        ] {
            let mut chain = Vec::new();
            let mut next = e.source();
            while let Some(s) = next {
                chain.push(s.to_string());
                assert!(!format!("{s:?}").contains("pw"), "{s:?}");
                next = s.source();
            }
            assert_eq!(
                chain,
                [
                    "fetch failed",
                    "GET https://***@idp.example/jwks?api_key=*** failed",
                    "connection refused"
                ]
            );
        }
        // A message quoting a URL, redacted.
        let e = AuthError::RevocationUnavailable(Outage::new("redis://u:pw@h/0 refused"));
        assert_eq!(e.source().unwrap().to_string(), "redis://***@h/0 refused");
        assert!(!format!("{e:?} {e}").contains("pw"));
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
}
