//! Outgoing HTTP, one module for every remote document the crate reads:
//! key sets and discovery documents (`get`, feature `jwks`) and
//! introspection answers (`post`, feature `introspection`). Every call is
//! bounded in time and size, accepts only 200, follows no redirect, and
//! goes over HTTPS unless the host is a loopback address (or the
//! application allowed plain HTTP).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Client, Url};

use crate::text::redact_url;

#[cfg(feature = "jwks")]
mod get;
#[cfg(feature = "introspection")]
mod post;

#[cfg(feature = "jwks")]
pub(crate) use get::*;
#[cfg(feature = "introspection")]
pub(crate) use post::*;

/// The bounds of every outgoing call (a key set, a discovery document, an
/// introspection answer): one type, validated in one place.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Connect, headers and body together.
    pub(crate) timeout: Duration,
    /// The largest body read.
    pub(crate) max_body: usize,
    /// Plain HTTP to hosts other than loopback ones.
    pub(crate) allow_http: bool,
}

impl Limits {
    /// Refuses limits no call could ever meet: a zero timeout. `builder`
    /// names the builder whose `timeout` it is in the message.
    pub(crate) fn check(&self, builder: &str) -> Result<(), crate::error::BuildError> {
        if self.timeout.is_zero() {
            return Err(crate::error::BuildError::config(
                "timeout",
                format!("{builder}::timeout is zero: no fetch could ever finish"),
            ));
        }
        Ok(())
    }

    /// The same limits with another body limit.
    #[cfg(feature = "introspection")]
    pub(crate) fn max_body(&self, max_body: usize) -> Limits {
        Limits {
            max_body,
            ..self.clone()
        }
    }
}

/// Whether `url` may be called: HTTPS, or HTTP to a loopback host (or any
/// host when the application allowed plain HTTP).
pub(crate) fn check_url(url: &Url, allow_http: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "{} is plain HTTP to a non-loopback host; use HTTPS (or allow_http() for a trusted network)",
            redact_url(url.as_str())
        )),
        other => Err(format!(
            "{}: unsupported scheme {other:?}",
            redact_url(url.as_str())
        )),
    }
}

/// Whether an answer that came from `answered` may be used for a request
/// to `asked`. They differ when the application's own client followed a
/// redirect (the default client follows none): the URL it ended at must
/// pass [`check_url`] too, and be of the same origin (scheme, host, port)
/// as the one asked. Anything else (a key set, a discovery document or an
/// introspection answer from another server) is refused, its body unused.
pub(crate) fn check_answered(asked: &Url, answered: &Url, allow_http: bool) -> Result<(), String> {
    if answered == asked {
        return Ok(());
    }
    check_url(answered, allow_http)
        .map_err(|why| format!("{asked} redirected to {answered}, refused: {why}"))?;
    if answered.origin() != asked.origin() {
        return Err(format!(
            "{asked} redirected to {answered}, another origin: its answer is not used \
             (the HTTP client should not follow redirects)"
        ));
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The default client: rustls, no redirects, the fetch timeout.
pub(crate) fn default_client(timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("tower-jwt-auth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    // reqwest's errors print the URL they called.
    redact_url(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_policy() {
        let ok = |u: &str, allow| check_url(&Url::parse(u).unwrap(), allow).is_ok();
        assert!(ok("https://idp.example/jwks", false));
        assert!(ok("http://127.0.0.1:8080/jwks", false));
        assert!(ok("http://[::1]:8080/jwks", false));
        assert!(ok("http://localhost/jwks", false));
        assert!(!ok("http://idp.example/jwks", false));
        assert!(ok("http://idp.example/jwks", true));
        assert!(!ok("file:///etc/passwd", true));
        assert!(!ok("ftp://idp.example/i", true));
    }

    #[test]
    fn answers_come_from_the_origin_asked() {
        let ok = |asked: &str, answered: &str, allow| {
            check_answered(
                &Url::parse(asked).unwrap(),
                &Url::parse(answered).unwrap(),
                allow,
            )
        };
        let asked = "https://idp.example/jwks";
        assert!(ok(asked, asked, false).is_ok());
        assert!(ok(asked, "https://idp.example/keys/v2", false).is_ok());
        assert!(ok(asked, "https://idp.example:443/jwks", false).is_ok());
        for elsewhere in [
            "https://evil.example/jwks",
            "https://idp.example:8443/jwks",
            "https://sub.idp.example/jwks",
            "http://idp.example/jwks",
            "http://127.0.0.1/jwks",
        ] {
            let err = ok(asked, elsewhere, false).unwrap_err();
            assert!(err.contains("redirected to"), "{elsewhere}: {err}");
        }
        // Plain HTTP is refused by the URL rule before the origin is compared.
        let err = ok("http://127.0.0.1:1/i", "http://idp.example/i", false).unwrap_err();
        assert!(err.contains("plain HTTP"), "{err}");
        assert!(ok("http://127.0.0.1:1/i", "http://127.0.0.1:2/i", false).is_err());
        assert!(ok("http://127.0.0.1:1/i", "http://127.0.0.1:1/j", false).is_ok());
    }
}
