//! [`CsrfPolicy`]: cross-site request checks for tokens that come from
//! cookies or other ambient sources.

use std::fmt;
use std::sync::Arc;

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::error::AuthError;
use crate::extract::cookie;

/// Refuses cross-site state-changing requests whose token came from a
/// cookie, or another ambient source (cross-site request forgery).
///
/// A browser attaches cookies to requests that other sites make it send,
/// so a token read from a cookie proves only that the browser holds it,
/// not that your page sent the request. The checks apply to tokens from
/// [`TokenSource::Cookie`](crate::TokenSource::Cookie) and from custom
/// sources, unless one declares its credential is not ambient
/// ([`FindToken::ambient`](crate::FindToken::ambient)). A token in the
/// `Authorization` header (or another header, or the query) cannot ride
/// along like that and is never checked here; neither are safe methods
/// (`GET`, `HEAD`, `OPTIONS`).
///
/// On by default for every [`JwtAuthLayer`](crate::JwtAuthLayer) with a
/// cookie source. For `POST`, `PUT`, `PATCH`, `DELETE` and any other unsafe
/// method with a cookie token, in this order:
///
/// 0. more than one `Origin` or `Sec-Fetch-Site` (two header lines, or a
///    list in one line: no browser sends that) is cross-site: refused;
/// 1. `Origin` is one of the [trusted origins](CsrfPolicy::trusted_origin):
///    allowed;
/// 2. `Sec-Fetch-Site` (sent by every current browser): `same-origin` or
///    `none` (the user typed the address) are allowed, `same-site` and
///    `cross-site` refused: a sibling subdomain is another site here;
/// 3. without `Sec-Fetch-Site` (older browsers, other clients): no `Origin`
///    is allowed (not a browser's cross-site request), an `Origin` whose host
///    is the request's `Host` (one `Host` line) is allowed, any other
///    refused.
///
/// With [`double_submit`](CsrfPolicy::double_submit), the request must also
/// carry a header equal to a cookie (compared in constant time).
///
/// A refusal is 403 ([`AuthError::CrossSiteRequest`]). The checks follow Go's
/// `net/http.CrossOriginProtection`.
///
/// Also set the cookie itself with `HttpOnly` (no script can read it),
/// `Secure`, `SameSite=Lax` or `Strict` (browsers then leave it off most
/// cross-site requests), and the `__Host-` name prefix (`Path=/`, no
/// `Domain`: no sibling subdomain can set or overwrite it).
///
/// ```
/// use http::HeaderName;
/// use tower_jwt_auth::{Algorithm, CsrfPolicy, JwtAuthLayer, Key, TokenSource, Verifier};
///
/// # let verifier = Verifier::builder().key(Key::hmac(Algorithm::HS256, [7u8; 32])?).any_audience().build()?;
/// let layer = JwtAuthLayer::new(verifier)
///     .sources([TokenSource::Bearer, TokenSource::cookie("__Host-access_token")])
///     .csrf(
///         CsrfPolicy::new()
///             .trusted_origin("https://app.example.com")
///             .double_submit("__Host-csrf", HeaderName::from_static("x-csrf-token")),
///     );
/// # let _ = layer;
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct CsrfPolicy {
    inner: Option<Arc<Rules>>,
}

#[derive(Clone)]
struct Rules {
    trusted: Vec<String>,
    double_submit: Option<(String, HeaderName)>,
}

impl Default for CsrfPolicy {
    fn default() -> Self {
        CsrfPolicy::new()
    }
}

impl fmt::Debug for CsrfPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("CsrfPolicy(disabled)"),
            Some(r) => f
                .debug_struct("CsrfPolicy")
                .field("trusted_origins", &r.trusted)
                .field(
                    "double_submit",
                    &r.double_submit.as_ref().map(|(c, h)| (c, h.as_str())),
                )
                .finish(),
        }
    }
}

impl CsrfPolicy {
    /// The default checks (`Sec-Fetch-Site`, else `Origin` against `Host`).
    pub fn new() -> Self {
        CsrfPolicy {
            inner: Some(Arc::new(Rules {
                trusted: Vec::new(),
                double_submit: None,
            })),
        }
    }

    /// No checks: only when the cookie is `SameSite=Strict` and you
    /// accept the remaining risk, or no browser ever sends it.
    pub fn disabled() -> Self {
        CsrfPolicy { inner: None }
    }

    fn rules(&mut self) -> &mut Rules {
        let rules = self.inner.get_or_insert_with(|| {
            Arc::new(Rules {
                trusted: Vec::new(),
                double_submit: None,
            })
        });
        Arc::make_mut(rules)
    }

    /// Allows cross-site requests from this origin (`scheme://host[:port]`,
    /// as browsers send it in `Origin`), for example your front end on
    /// another host. Call again for more.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_ascii_lowercase();
        self.rules().trusted.push(origin);
        self
    }

    /// Also requires the header `header` to equal the cookie `cookie`
    /// (the double-submit pattern: your page copies a random cookie value
    /// into a header, which another site cannot read to copy).
    pub fn double_submit(mut self, cookie: impl Into<String>, header: HeaderName) -> Self {
        self.rules().double_submit = Some((cookie.into(), header));
        self
    }

    /// Checks a request whose token came from an ambient source.
    pub(crate) fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), AuthError> {
        let Some(rules) = &self.inner else {
            return Ok(());
        };
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        rules.same_origin(headers)?;
        if let Some((name, header)) = &rules.double_submit {
            let expected = cookie(headers, name)?.ok_or(AuthError::CrossSiteRequest)?;
            let mut sent = headers.get_all(header).iter();
            let (Some(sent), None) = (sent.next(), sent.next()) else {
                return Err(AuthError::CrossSiteRequest);
            };
            if !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
                return Err(AuthError::CrossSiteRequest);
            }
        }
        Ok(())
    }
}

impl Rules {
    fn same_origin(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let origin = one(headers, &ORIGIN)?;
        let site = one(headers, &SEC_FETCH_SITE)?;
        if let Some(origin) = origin.and_then(|v| v.to_str().ok())
            && self
                .trusted
                .iter()
                .any(|t| t.eq_ignore_ascii_case(origin.trim_end_matches('/')))
        {
            return Ok(());
        }
        if let Some(site) = site {
            return match site.as_bytes() {
                b"same-origin" | b"none" => Ok(()),
                _ => Err(AuthError::CrossSiteRequest),
            };
        }
        let Some(origin) = origin else {
            return Ok(());
        };
        let origin = origin.to_str().map_err(|_| AuthError::CrossSiteRequest)?;
        // `null` (an opaque origin) or anything that is not `scheme://host`.
        let host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .ok_or(AuthError::CrossSiteRequest)?;
        match one(headers, &HOST)?.and_then(|h| h.to_str().ok()) {
            Some(h) if h.eq_ignore_ascii_case(host) => Ok(()),
            _ => Err(AuthError::CrossSiteRequest),
        }
    }
}

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The one value of a header that says where a request comes from: two
/// lines, or a list in one line (which no browser sends) make the request
/// cross-site, never "the first one decides".
fn one<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h HeaderValue>, AuthError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) if !value.as_bytes().contains(&b',') => Ok(Some(value)),
        _ => Err(AuthError::CrossSiteRequest),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_rules() {
        let p = CsrfPolicy::new().trusted_origin("https://app.example/");
        let post = Method::POST;
        assert!(p.check(&post, &headers(&[])).is_ok(), "no browser signal");
        assert!(p.check(&post, &headers(&[("origin", "null")])).is_err());
        assert!(
            p.check(
                &post,
                &headers(&[("origin", "https://a.example"), ("host", "a.example")])
            )
            .is_ok()
        );
        assert!(
            p.check(
                &post,
                &headers(&[("origin", "https://b.example"), ("host", "a.example")])
            )
            .is_err()
        );
        assert!(
            p.check(
                &post,
                &headers(&[
                    ("origin", "https://APP.example"),
                    ("sec-fetch-site", "cross-site")
                ])
            )
            .is_ok()
        );
        assert!(
            p.check(
                &Method::DELETE,
                &headers(&[("sec-fetch-site", "same-site")])
            )
            .is_err()
        );
        assert!(
            CsrfPolicy::disabled()
                .check(&post, &headers(&[("sec-fetch-site", "cross-site")]))
                .is_ok()
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn more_than_one_origin_or_sec_fetch_site_value_is_cross_site() {
        let p = CsrfPolicy::new().trusted_origin("https://app.example");
        let post = Method::POST;
        for refused in [
            &[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "cross-site"),
            ][..],
            &[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[("sec-fetch-site", "same-origin, cross-site")],
            &[("sec-fetch-site", "none,none")],
            &[
                ("origin", "https://app.example"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            &[("origin", "https://app.example, https://evil.example")],
            &[
                ("origin", "https://a.example"),
                ("origin", "https://a.example"),
                ("host", "a.example"),
            ],
            &[
                ("origin", "https://a.example"),
                ("host", "a.example"),
                ("host", "b.example"),
            ],
        ] {
            assert!(
                matches!(
                    p.check(&post, &headers(refused)),
                    Err(AuthError::CrossSiteRequest)
                ),
                "{refused:?}"
            );
        }
        for allowed in [
            &[("sec-fetch-site", "same-origin")][..],
            &[
                ("origin", "https://app.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            &[("origin", "https://a.example"), ("host", "a.example")],
        ] {
            assert!(p.check(&post, &headers(allowed)).is_ok(), "{allowed:?}");
        }
        // Safe methods are not checked at all.
        let twice = headers(&[("sec-fetch-site", "none"), ("sec-fetch-site", "cross-site")]);
        assert!(p.check(&Method::GET, &twice).is_ok());
    }
}
