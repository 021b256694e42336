//! HTTP for key sets: bounded in time and size, 200 only, no redirects,
//! HTTPS unless the host is a loopback address; and OIDC discovery.

use std::net::IpAddr;
use std::time::Duration;

use http::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{Client, StatusCode, Url};

/// Limits applied to every fetch.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) allow_http: bool,
}

/// A fetched document and its `Cache-Control: max-age`, if any.
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) max_age: Option<Duration>,
}

/// Whether `url` may be fetched: HTTPS, or HTTP to a loopback host (or any
/// host when the application allowed plain HTTP).
pub(crate) fn check_url(url: &Url, allow_http: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "{url} is plain HTTP to a non-loopback host; use HTTPS (or allow_http() for a trusted network)"
        )),
        other => Err(format!("{url}: unsupported scheme {other:?}")),
    }
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

/// GETs `url` within the limits.
pub(crate) async fn get(client: &Client, url: &Url, limits: &Limits) -> Result<Fetched, String> {
    check_url(url, limits.allow_http)?;
    let work = async {
        let mut res = client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
        if res.status() != StatusCode::OK {
            return Err(format!(
                "GET {url}: status {} (only 200 is accepted)",
                res.status()
            ));
        }
        if res
            .content_length()
            .is_some_and(|len| len > limits.max_body as u64)
        {
            return Err(format!("GET {url}: body over {} bytes", limits.max_body));
        }
        let max_age = res
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?
        {
            if body.len() + chunk.len() > limits.max_body {
                return Err(format!("GET {url}: body over {} bytes", limits.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| format!("GET {url}: no complete answer within {:?}", limits.timeout))?
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `max-age` from a `Cache-Control` value; `no-cache`/`no-store` count as 0.
pub(crate) fn max_age(value: &str) -> Option<Duration> {
    let mut result = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            result = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    result
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Finds the `jwks_uri` of `issuer` by OpenID Connect discovery, falling
/// back to RFC 8414 authorization server metadata. The document's `issuer`
/// must equal the configured one exactly.
pub(crate) async fn discover(
    client: &Client,
    issuer: &str,
    limits: &Limits,
) -> Result<Url, String> {
    let base = issuer.trim_end_matches('/');
    let oidc = format!("{base}/.well-known/openid-configuration");
    let mut candidates = vec![oidc];
    if let Ok(url) = Url::parse(base) {
        // RFC 8414: the well-known segment goes between host and path.
        let path = url.path().trim_end_matches('/');
        let mut rfc8414 = url.clone();
        rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        candidates.push(rfc8414.to_string());
    }
    let mut errors = Vec::new();
    for candidate in candidates {
        let url = Url::parse(&candidate).map_err(|e| format!("{candidate}: {e}"))?;
        let fetched = match get(client, &url, limits).await {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let doc: Discovery = serde_json::from_slice(&fetched.body)
            .map_err(|e| format!("{url}: not a discovery document: {e}"))?;
        if doc.issuer != issuer {
            return Err(format!(
                "{url}: the document's issuer {:?} is not the configured issuer {issuer:?}",
                doc.issuer
            ));
        }
        let jwks = Url::parse(&doc.jwks_uri).map_err(|e| format!("{url}: bad jwks_uri: {e}"))?;
        check_url(&jwks, limits.allow_http)?;
        return Ok(jwks);
    }
    Err(errors.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age("Max-Age=60, must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }

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
    }
}
