//! The introspection request: one form POST, bounded in time and size,
//! 200 only, no redirects, HTTPS unless the host is a loopback address.
//! Error texts name the endpoint, never the token.

use std::net::IpAddr;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, StatusCode, Url};

/// Whether `url` may be called: HTTPS, or HTTP to a loopback host (or any
/// host when the application allowed plain HTTP).
pub(super) fn check_url(url: &Url, allow_http: bool) -> Result<(), String> {
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

/// The default client: rustls, no redirects, the call timeout.
pub(super) fn default_client(timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("tower-jwt-auth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(super) fn form_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// One POST of a form within `timeout` and `max_body`.
pub(super) struct Post<'a> {
    pub(super) client: &'a Client,
    pub(super) url: &'a Url,
    pub(super) authorization: Option<&'a str>,
    pub(super) form: String,
    pub(super) timeout: Duration,
    pub(super) max_body: usize,
}

impl Post<'_> {
    /// The body of a 200 answer.
    pub(super) async fn send(self) -> Result<Vec<u8>, String> {
        let url = self.url;
        let work = async {
            let mut req = self
                .client
                .post(url.clone())
                .header(ACCEPT, "application/json")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(self.form);
            if let Some(value) = self.authorization {
                req = req.header(AUTHORIZATION, value);
            }
            let mut res = req
                .send()
                .await
                .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
            match res.status() {
                StatusCode::OK => {}
                status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    return Err(format!(
                        "POST {url}: status {status}: the endpoint refused this client's \
                         credentials; check the client_id, the client_secret and the client \
                         authentication method"
                    ));
                }
                status => {
                    return Err(format!(
                        "POST {url}: status {status} (only 200 is accepted)"
                    ));
                }
            }
            if res
                .content_length()
                .is_some_and(|len| len > self.max_body as u64)
            {
                return Err(format!("POST {url}: body over {} bytes", self.max_body));
            }
            let mut body = Vec::new();
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?
            {
                if body.len() + chunk.len() > self.max_body {
                    return Err(format!("POST {url}: body over {} bytes", self.max_body));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| format!("POST {url}: no complete answer within {:?}", self.timeout))?
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_policy() {
        let ok = |u: &str, allow| check_url(&Url::parse(u).unwrap(), allow).is_ok();
        assert!(ok("https://idp.example/introspect", false));
        assert!(ok("http://127.0.0.1:8080/i", false));
        assert!(ok("http://[::1]/i", false));
        assert!(ok("http://localhost/i", false));
        assert!(!ok("http://idp.example/i", false));
        assert!(ok("http://idp.example/i", true));
        assert!(!ok("ftp://idp.example/i", true));
    }

    #[test]
    fn form_encoding() {
        let mut out = String::new();
        form_encode("a b+c/d=é~", &mut out);
        assert_eq!(out, "a+b%2Bc%2Fd%3D%C3%A9%7E");
    }
}
