//! Untrusted text made safe for logs and error messages, and URLs made
//! safe to print ([`redact_url`]).

use std::borrow::Cow;

/// The most bytes of text from a token (or a key set) that the crate puts
/// into an event or an error message.
pub(crate) const EXCERPT_LEN: usize = 64;

/// A bounded, escaped excerpt of untrusted text for logs and error
/// messages: printable ASCII stays, everything else (control characters,
/// quotes, backslashes, non-ASCII) is escaped, and the result is cut at
/// [`EXCERPT_LEN`] bytes with a trailing `…`.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(EXCERPT_LEN + 3));
    for c in text.chars() {
        let before = out.len();
        if c == ' ' || c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'') {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
        if out.len() > EXCERPT_LEN {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

/// Query parameters whose values are never printed: a name containing one
/// of these (ASCII case-insensitive) has its value replaced by `***`.
const SECRET_PARAMS: [&str; 10] = [
    "pass", "pwd", "secret", "token", "key", "sig", "auth", "cred", "code", "user",
];

/// Where a URL ends in a message: at a space or a quote or a bracket that
/// cannot be part of it.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '{' | '}')
}

/// `text` with every URL in it made safe to print: its userinfo (`user` and
/// `password`, as in `redis://user:password@host`) becomes `***`, and the
/// values of query parameters that look secret (`pass`, `password`,
/// `token`, `api_key`, `sig`, `client_secret`, ...) become `***`. Works on
/// a URL alone and on a message quoting URLs (an error chain: reqwest
/// prints the URL it called). Every place the crate prints a URL it was
/// given (a `Debug` impl, an error message, a `tracing` field) goes through
/// it, so a password in a Redis, JWKS, discovery or introspection URL
/// never reaches a log.
///
/// Borrows `text` when there is nothing to hide.
pub(crate) fn redact_url(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        // The authority, where the userinfo is.
        let end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#') || ends_url(c))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[end..];
        // The path, up to the query (or another URL, or the end).
        let end = rest
            .find(|c: char| c == '?' || ends_url(c))
            .unwrap_or(rest.len());
        let path_end = rest[..end].find("://").map_or(end, |i| {
            // Another URL starts inside the path: leave it to the loop.
            rest[..i]
                .rfind(|c: char| !c.is_ascii_alphanumeric() && !"+-.".contains(c))
                .map_or(0, |j| j + 1)
        });
        out.push_str(&rest[..path_end]);
        rest = &rest[path_end..];
        if path_end < end || !rest.starts_with('?') {
            continue;
        }
        // The query: each parameter's value, secret or redacted in turn.
        let end = rest[1..]
            .find(|c: char| c == '#' || ends_url(c))
            .map_or(rest.len(), |i| i + 1);
        out.push('?');
        for (i, param) in rest[1..end].split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match param.split_once('=') {
                Some((name, _)) if is_secret_param(name) => {
                    out.push_str(name);
                    out.push_str("=***");
                }
                Some((name, value)) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(&redact_url(value));
                }
                None => out.push_str(&redact_url(param)),
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_userinfo_and_secret_query_values() {
        let cases = [
            (
                "redis://user:s3cr3t-pw@127.0.0.1:6379/0",
                "redis://***@127.0.0.1:6379/0",
            ),
            ("redis://:s3cr3t-pw@host", "redis://***@host"),
            ("rediss://user@host:1", "rediss://***@host:1"),
            ("redis://:p@ss@host/", "redis://***@host/"),
            (
                "redis+unix:///tmp/r.sock?db=1&pass=s3cr3t-pw",
                "redis+unix:///tmp/r.sock?db=1&pass=***",
            ),
            (
                "https://idp/jwks?p=B2C_1_x&api_key=s3cr3t-pw#f",
                "https://idp/jwks?p=B2C_1_x&api_key=***#f",
            ),
            (
                "GET https://u:s3cr3t-pw@idp/jwks: error sending request for url (https://u:s3cr3t-pw@idp/jwks)",
                "GET https://***@idp/jwks: error sending request for url (https://***@idp/jwks)",
            ),
            (
                "\"http://user:s3cr3t-pw@[::1]:8/x\" is not a URL",
                "\"http://***@[::1]:8/x\" is not a URL",
            ),
            (
                "https://a/cb?next=https://u:s3cr3t-pw@b/x",
                "https://a/cb?next=https://***@b/x",
            ),
            (
                "https://a/b/https://u:s3cr3t-pw@c/",
                "https://a/b/https://***@c/",
            ),
            ("plain text, no URL", "plain text, no URL"),
            ("https://idp.example/jwks", "https://idp.example/jwks"),
            ("a@b://", "a@b://"),
            ("://@", "://***@"),
            ("", ""),
        ];
        for (given, want) in cases {
            assert_eq!(redact_url(given), want, "{given}");
        }
        assert!(matches!(
            redact_url("https://idp.example/jwks"),
            Cow::Owned(_)
        ));
        assert!(matches!(redact_url("no url"), Cow::Borrowed(_)));
    }

    #[test]
    fn excerpts_are_bounded_and_escaped() {
        assert_eq!(excerpt("k1"), "k1");
        assert_eq!(excerpt("a\nb\"c\\d`"), "a\\nb\\\"c\\\\d`");
        assert_eq!(excerpt("é"), "\\u{e9}");
        let long = excerpt(&"A".repeat(16 * 1024));
        assert!(long.len() <= EXCERPT_LEN + '…'.len_utf8(), "{}", long.len());
        assert!(long.ends_with('…'));
        let escapes = excerpt(&"\u{1}".repeat(100));
        assert!(escapes.len() <= EXCERPT_LEN + '…'.len_utf8());
        assert!(!escapes.contains('\u{1}'));
    }
}

/// Every place that prints a URL the application gave (a `Debug` impl, an
/// error and its whole `source()` chain, a log line) with a URL holding
/// `user:s3cr3t-pw@` and a connection that fails (a closed port on
/// 127.0.0.1): the password never shows.
#[cfg(all(
    test,
    feature = "jwks",
    feature = "redis",
    feature = "dpop",
    feature = "introspection"
))]
mod secret_urls {
    use std::error::Error;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const SECRET: &str = "s3cr3t-pw";

    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn clean(what: &str, text: &str) {
        assert!(!text.contains(SECRET), "{what} prints the password: {text}");
        assert!(!text.contains("user:"), "{what} prints the user: {text}");
    }

    fn clean_error(what: &str, e: &(dyn Error + 'static)) {
        let mut next = Some(e);
        while let Some(e) = next {
            clean(what, &e.to_string());
            clean(what, &format!("{e:?}"));
            next = e.source();
        }
    }

    /// What the crate logs while `f` runs, on this thread.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    impl Logs {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[tokio::test]
    async fn redis_urls_never_print_the_password() {
        let (logs, _guard) = capture();
        let url = format!("redis://user:{SECRET}@127.0.0.1:{}/0", closed_port());
        let builder = crate::revocation::RedisRevocation::builder(&url)
            .timeout(Duration::from_millis(300))
            .local_cache(Duration::from_secs(1));
        clean("RedisRevocationBuilder Debug", &format!("{builder:?}"));
        let store = builder.build().unwrap();
        clean("RedisRevocation Debug", &format!("{store:?}"));
        let e = store.revoke("i", "j", 4_102_444_800).await.unwrap_err();
        clean_error("RedisRevocation::revoke error", &e);
        let e = store.revoke_subject("i", "s", 1).await.unwrap_err();
        clean_error("RedisRevocation::revoke_subject error", &e);
        let replay =
            crate::dpop::RedisReplayStore::with_timeout(&url, Duration::from_millis(300)).unwrap();
        clean("RedisReplayStore Debug", &format!("{replay:?}"));
        let why = crate::dpop::ReplayStore::first_use_later(&replay, "k", Duration::from_secs(1))
            .await
            .unwrap_err();
        clean("RedisReplayStore error", &why);
        for bad in [
            format!("redis://user:{SECRET}@[::1/0"),
            format!("redis://user:{SECRET}@host:notaport/0"),
            format!("rediz://user:{SECRET}@host/0"),
        ] {
            let e = crate::revocation::RedisRevocation::new(&bad).unwrap_err();
            clean_error("RedisRevocation::new error", &e);
            assert!(e.to_string().contains("***@"), "the URL, redacted: {e}");
            let e = crate::dpop::RedisReplayStore::new(&bad).unwrap_err();
            clean_error("RedisReplayStore::new error", &e);
        }
        clean("logs", &logs.text());
    }

    #[tokio::test]
    async fn jwks_and_discovery_urls_never_print_the_password() {
        let (logs, _guard) = capture();
        let port = closed_port();
        let jwks = format!("http://user:{SECRET}@127.0.0.1:{port}/jwks?api_key={SECRET}");
        let issuer = format!("http://user:{SECRET}@127.0.0.1:{port}/realm");
        for builder in [
            crate::jwks::JwksCache::builder(&jwks),
            crate::jwks::JwksCache::discover(&issuer),
        ] {
            clean("JwksCacheBuilder Debug", &format!("{builder:?}"));
            let cache = builder.timeout(Duration::from_millis(500)).build().unwrap();
            clean("JwksCache Debug", &format!("{cache:?}"));
            let e = cache.prefetch().await.unwrap_err();
            clean_error("JwksCache::prefetch error", &e);
            let status = cache.status();
            clean("JwksStatus Debug", &format!("{status:?}"));
            let last = status.last_error().unwrap_or("");
            clean("JwksStatus::last_error", last);
            assert!(last.contains("***@127.0.0.1"), "the URL, redacted: {last}");
            clean("JwksCache Debug after a fetch", &format!("{cache:?}"));
        }
        for bad in [
            format!("http://user:{SECRET}@[::1/jwks"),
            format!("http://user:{SECRET}@idp.example/jwks"),
            format!("ftp://user:{SECRET}@idp.example/jwks"),
        ] {
            let e = crate::jwks::JwksCache::builder(&bad).build().unwrap_err();
            clean_error("JwksCache build error", &e);
            let e = crate::jwks::JwksCache::discover(&bad).build().unwrap_err();
            clean_error("JwksCache::discover build error", &e);
        }
        let logs = logs.text();
        clean("logs", &logs);
        assert!(
            logs.contains("***@127.0.0.1"),
            "the URL, redacted, in the logs: {logs}"
        );
    }

    #[tokio::test]
    async fn introspection_urls_never_print_the_password() {
        let (logs, _guard) = capture();
        let port = closed_port();
        let endpoint = format!("http://user:{SECRET}@127.0.0.1:{port}/introspect");
        let issuer = format!("http://user:{SECRET}@127.0.0.1:{port}/realm");
        for builder in [
            crate::introspection::Introspector::builder(&endpoint),
            crate::introspection::Introspector::discover(&issuer),
        ] {
            let builder = builder
                .client_credentials("api", "client-pw")
                .any_audience()
                .timeout(Duration::from_millis(500));
            clean("IntrospectorBuilder Debug", &format!("{builder:?}"));
            let introspector = builder.build().unwrap();
            clean("Introspector Debug", &format!("{introspector:?}"));
            let e = introspector.introspect("a-token").await.unwrap_err();
            clean_error("Introspector::introspect error", &e);
            assert!(
                e.to_string().contains("***@127.0.0.1"),
                "the URL, redacted: {e}"
            );
            clean(
                "Introspector Debug after a call",
                &format!("{introspector:?}"),
            );
        }
        for bad in [
            format!("http://user:{SECRET}@[::1/introspect"),
            format!("http://user:{SECRET}@idp.example/introspect"),
        ] {
            let e = crate::introspection::Introspector::builder(&bad)
                .client_credentials("api", "client-pw")
                .any_audience()
                .build()
                .unwrap_err();
            clean_error("Introspector build error", &e);
        }
        clean("logs", &logs.text());
    }
}
