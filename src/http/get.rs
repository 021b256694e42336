//! GETs of key sets and discovery documents (feature `jwks`), and their
//! caching headers (RFC 9111).

use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::{ACCEPT, AGE, CACHE_CONTROL};
use reqwest::{Client, StatusCode, Url};

use super::{Limits, check_answered, check_url, error_chain};
use crate::text::redact_url;

/// A fetched document and how long it stays fresh by its caching headers
/// (`None`: they say nothing).
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) fresh_for: Option<Duration>,
}

/// Why a GET failed: discovery falls back to the next URL on `NotFound` only.
#[derive(Debug)]
pub(crate) enum GetError {
    /// The server answered 404.
    NotFound(String),
    /// Anything else: another status, a timeout, a connection or body error.
    Other(String),
}

impl From<GetError> for String {
    fn from(e: GetError) -> String {
        match e {
            GetError::NotFound(why) | GetError::Other(why) => why,
        }
    }
}

/// GETs `url` within the limits.
pub(crate) async fn get(client: &Client, url: &Url, limits: &Limits) -> Result<Fetched, GetError> {
    check_url(url, limits.allow_http).map_err(GetError::Other)?;
    let shown = redact_url(url.as_str());
    let sent = Instant::now();
    let work = async {
        let mut res = client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| GetError::Other(format!("GET {shown}: {}", error_chain(&e))))?;
        check_answered(url, res.url(), limits.allow_http)
            .map_err(|why| GetError::Other(format!("GET {}", redact_url(&why))))?;
        let status = res.status();
        if status != StatusCode::OK {
            let why = format!("GET {shown}: status {status} (only 200 is accepted)");
            return Err(if status == StatusCode::NOT_FOUND {
                GetError::NotFound(why)
            } else {
                GetError::Other(why)
            });
        }
        if res
            .content_length()
            .is_some_and(|len| len > limits.max_body as u64)
        {
            return Err(GetError::Other(format!(
                "GET {shown}: body over {} bytes",
                limits.max_body
            )));
        }
        let fresh_for = freshness(res.headers(), sent.elapsed());
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| GetError::Other(format!("GET {shown}: {}", error_chain(&e))))?
        {
            if body.len() + chunk.len() > limits.max_body {
                return Err(GetError::Other(format!(
                    "GET {shown}: body over {} bytes",
                    limits.max_body
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, fresh_for })
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| {
            GetError::Other(format!(
                "GET {shown}: no complete answer within {:?}",
                limits.timeout
            ))
        })?
}

/// The largest delta-seconds value kept (RFC 9111 §1.2.2: 2^31 when larger).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// How long an answer stays fresh by its caching headers (RFC 9111), for a
/// private cache: the `max-age` of all `Cache-Control` lines taken as one
/// list, minus the answer's age (its `Age` header plus `response_delay`,
/// §4.2.3). `no-store` and unqualified `no-cache` make it stale at once, and
/// so do a `max-age` that is not a number or two `max-age`s that differ
/// (§4.2.1: "the most restrictive directive should be honored"). `None`
/// when the headers give no freshness: the configured TTL then applies.
/// `s-maxage` is for shared caches and is ignored; `Expires` is not read.
pub(crate) fn freshness(headers: &HeaderMap, response_delay: Duration) -> Option<Duration> {
    let mut max_age: Option<u64> = None;
    let mut stale = false;
    for line in headers.get_all(CACHE_CONTROL) {
        let Ok(line) = line.to_str() else {
            stale = true;
            continue;
        };
        for (name, value) in directives(line) {
            if name.eq_ignore_ascii_case("no-store")
                || (name.eq_ignore_ascii_case("no-cache") && value.is_none())
            {
                stale = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                match value.as_deref().and_then(delta_seconds) {
                    Some(secs) if max_age.is_none_or(|seen| seen == secs) => max_age = Some(secs),
                    _ => stale = true,
                }
            }
        }
    }
    if stale {
        return Some(Duration::ZERO);
    }
    let max_age = Duration::from_secs(max_age?);
    // §5.1: the first member of the first line; an invalid value is ignored.
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| delta_seconds(v.trim()))
        .map_or(Duration::ZERO, Duration::from_secs);
    Some(max_age.saturating_sub(age).saturating_sub(response_delay))
}

/// `1*DIGIT`, saturating at [`MAX_DELTA_SECONDS`].
fn delta_seconds(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        value
            .parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS)),
    )
}

/// The directives of one `Cache-Control` line (`#cache-directive`, RFC 9111
/// §5.2): `token [ "=" ( token / quoted-string ) ]`, comma-separated, with
/// commas inside quoted strings kept. Values are unquoted and unescaped.
fn directives(line: &str) -> Vec<(&str, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return out;
        }
        let end = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = rest[..end].trim();
        rest = &rest[end..];
        let mut value = None;
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            if let Some(quoted) = after.strip_prefix('"') {
                let mut text = String::new();
                let mut chars = quoted.char_indices();
                let mut consumed = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                text.push(escaped);
                            }
                        }
                        '"' => {
                            consumed = i + 1;
                            break;
                        }
                        c => text.push(c),
                    }
                }
                rest = &quoted[consumed..];
                value = Some(text);
            } else {
                let end = after.find(',').unwrap_or(after.len());
                value = Some(after[..end].trim().to_owned());
                rest = &after[end..];
            }
        }
        // Anything up to the next comma is not part of a valid directive.
        let end = rest.find(',').unwrap_or(rest.len());
        rest = &rest[end..];
        if !name.is_empty() {
            out.push((name, value));
        }
    }
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    #[serde(flatten)]
    endpoints: std::collections::HashMap<String, serde_json::Value>,
}

/// Finds the `jwks_uri` of `issuer` by OpenID Connect discovery, falling
/// back to RFC 8414 authorization server metadata when (and only when) the
/// OpenID URL answers 404. The document's `issuer` must equal the
/// configured one exactly.
pub(crate) async fn discover(
    client: &Client,
    issuer: &str,
    limits: &Limits,
) -> Result<Url, String> {
    discover_endpoint(client, issuer, limits, "jwks_uri").await
}

/// Finds the URL named `field` (`jwks_uri`, `introspection_endpoint`...)
/// in the discovery document of `issuer`, as [`discover`] does.
pub(crate) async fn discover_endpoint(
    client: &Client,
    issuer: &str,
    limits: &Limits,
    field: &str,
) -> Result<Url, String> {
    // A multi-tenant template is discovered from Entra's `common` tenant,
    // whose document publishes the template as its issuer.
    let discovered = crate::tenant::discovery_issuer(issuer);
    let base = discovered.trim_end_matches('/');
    let oidc = format!("{base}/.well-known/openid-configuration");
    let mut candidates = vec![oidc];
    if let Ok(url) = Url::parse(base) {
        // RFC 8414: the well-known segment goes between host and path.
        let path = url.path().trim_end_matches('/');
        let mut rfc8414 = url.clone();
        rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        candidates.push(rfc8414.to_string());
    }
    let mut not_found = Vec::new();
    for candidate in candidates {
        let url = Url::parse(&candidate).map_err(|e| format!("{}: {e}", redact_url(&candidate)))?;
        // Only a 404 means "no document here, try the next URL"; any other
        // failure (5xx, a timeout, bad JSON) is the provider's answer.
        let shown = redact_url(url.as_str());
        let fetched = match get(client, &url, limits).await {
            Ok(f) => f,
            Err(GetError::NotFound(why)) => {
                not_found.push(why);
                continue;
            }
            Err(GetError::Other(why)) => return Err(why),
        };
        let doc: Discovery = serde_json::from_slice(&fetched.body)
            .map_err(|e| format!("{shown}: not a discovery document: {e}"))?;
        if doc.issuer != issuer {
            let hint = if crate::tenant::is_template(&doc.issuer) {
                " (a multi-tenant template: give it as the issuer to accept tokens of every \
                 tenant, checked against their `tid`, and restrict them with .tenants([..]))"
            } else {
                ""
            };
            return Err(format!(
                "{shown}: the document's issuer {:?} is not the configured issuer {:?}{hint}",
                redact_url(&doc.issuer),
                redact_url(issuer)
            ));
        }
        let Some(serde_json::Value::String(value)) = doc.endpoints.get(field) else {
            return Err(format!("{shown}: the document has no {field} (a string)"));
        };
        let endpoint = Url::parse(value).map_err(|e| format!("{shown}: bad {field}: {e}"))?;
        check_url(&endpoint, limits.allow_http)?;
        return Ok(endpoint);
    }
    Err(not_found.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 127.0.0.1 server answering `GET /doc` with `status` and `Location:
    /// to`, or with a JSON document when `to` is empty.
    async fn serve(status: u16, to: String) -> String {
        let app = axum::Router::new().route(
            "/doc",
            axum::routing::get(move || {
                let to = to.clone();
                async move {
                    let res = http::Response::builder();
                    if to.is_empty() {
                        res.body("{}".to_owned()).unwrap()
                    } else {
                        res.status(status)
                            .header(http::header::LOCATION, to)
                            .body(String::new())
                            .unwrap()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    /// Key sets and discovery documents: an application's client that
    /// follows a redirect to another origin does not get its document used.
    #[tokio::test]
    async fn a_document_from_another_origin_is_refused() {
        let elsewhere = serve(200, String::new()).await;
        let following = Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .unwrap();
        let limits = Limits {
            timeout: Duration::from_secs(2),
            max_body: 1024,
            allow_http: false,
        };
        let doc = Url::parse(&format!("{elsewhere}/doc")).unwrap();
        assert!(get(&following, &doc, &limits).await.is_ok(), "served");
        for status in [301, 302, 303, 307, 308] {
            let from = serve(status, doc.to_string()).await;
            let url = Url::parse(&format!("{from}/doc")).unwrap();
            match get(&following, &url, &limits).await {
                Err(GetError::Other(why)) => assert!(why.contains("another origin"), "{why}"),
                Err(e) => panic!("{status}: {e:?}"),
                Ok(_) => panic!("{status}: the document from {elsewhere} was used"),
            }
        }
    }

    fn fresh(lines: &[&str], age: Option<&str>) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(CACHE_CONTROL, line.parse().unwrap());
        }
        if let Some(age) = age {
            headers.append(AGE, age.parse().unwrap());
        }
        freshness(&headers, Duration::ZERO)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(fresh(&["public, max-age=300"], None), Some(S(300)));
        assert_eq!(fresh(&["Max-Age=60, must-revalidate"], None), Some(S(60)));
        assert_eq!(fresh(&[r#"max-age="60""#], None), Some(S(60)));
        assert_eq!(fresh(&["public"], None), None);
        assert_eq!(fresh(&[], None), None);
        assert_eq!(fresh(&["s-maxage=5"], None), None, "shared caches only");
        assert_eq!(
            fresh(&["max-age=99999999999999999999999"], None),
            Some(S(1 << 31))
        );
    }

    #[test]
    fn cache_control_lines_are_one_list() {
        assert_eq!(fresh(&["public", "max-age=30"], None), Some(S(30)));
        assert_eq!(fresh(&["max-age=30", "no-store"], None), Some(S(0)));
        assert_eq!(fresh(&["max-age=30", "max-age=30"], None), Some(S(30)));
    }

    #[test]
    fn cache_control_stale_cases() {
        assert_eq!(fresh(&["no-store"], None), Some(S(0)));
        assert_eq!(fresh(&["no-cache, max-age=600"], None), Some(S(0)));
        assert_eq!(fresh(&["max-age=abc"], None), Some(S(0)), "invalid: stale");
        assert_eq!(fresh(&["max-age=-5"], None), Some(S(0)));
        assert_eq!(fresh(&["max-age="], None), Some(S(0)));
        assert_eq!(fresh(&["max-age"], None), Some(S(0)));
        assert_eq!(
            fresh(&["max-age=60, max-age=3600"], None),
            Some(S(0)),
            "conflict"
        );
        assert_eq!(fresh(&["max-age=60", "max-age=3600"], None), Some(S(0)));
    }

    #[test]
    fn cache_control_quoted_arguments() {
        // A qualified no-cache names header fields; the body may be reused.
        assert_eq!(
            fresh(&[r#"no-cache="set-cookie", max-age=60"#], None),
            Some(S(60))
        );
        assert_eq!(
            fresh(&[r#"private="a, max-age=1, b", max-age=60"#], None),
            Some(S(60)),
            "commas inside quotes"
        );
        assert_eq!(
            fresh(&[r#"ext="x\"y, max-age=1", max-age=60"#], None),
            Some(S(60))
        );
    }

    #[test]
    fn age_is_subtracted() {
        assert_eq!(fresh(&["max-age=600"], Some("100")), Some(S(500)));
        assert_eq!(fresh(&["max-age=600"], Some("900")), Some(S(0)));
        assert_eq!(
            fresh(&["max-age=600"], Some("100, 300")),
            Some(S(500)),
            "first member"
        );
        assert_eq!(
            fresh(&["max-age=600"], Some("abc")),
            Some(S(600)),
            "invalid: ignored"
        );
        assert_eq!(fresh(&["public"], Some("100")), None);
        let mut headers = HeaderMap::new();
        headers.append(CACHE_CONTROL, "max-age=10".parse().unwrap());
        assert_eq!(
            freshness(&headers, Duration::from_millis(2500)),
            Some(Duration::from_millis(7500))
        );
    }
}
