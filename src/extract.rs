//! Where a token comes from: the `Authorization: Bearer` header, a named
//! cookie, another header, a query parameter, or the application's own
//! [`FindToken`], tried in the order the application sets.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE, SEC_WEBSOCKET_PROTOCOL};
use http::{HeaderMap, HeaderName, Uri};

use crate::error::AuthError;

/// The application's own way to find a token in a request, for places the
/// built-in [`TokenSource`]s do not cover.
///
/// ```
/// use http::{HeaderMap, Uri};
/// use tower_jwt_auth::{AuthError, FindToken, TokenSource};
///
/// /// `X-Api-Token: v1:<token>`
/// struct Versioned;
///
/// impl FindToken for Versioned {
///     fn find<'r>(&self, _uri: &'r Uri, headers: &'r HeaderMap) -> Result<Option<&'r str>, AuthError> {
///         Ok(headers
///             .get("x-api-token")
///             .and_then(|v| v.to_str().ok())
///             .and_then(|v| v.strip_prefix("v1:")))
///     }
///
///     /// A header only the application's client sets: no cross-site
///     /// check needed (see [`FindToken::ambient`]).
///     fn ambient(&self) -> bool {
///         false
///     }
/// }
///
/// let sources = [TokenSource::Bearer, TokenSource::custom(Versioned)];
/// # let _ = sources;
/// ```
pub trait FindToken: Send + Sync + 'static {
    /// The token in this request, if any.
    ///
    /// # Errors
    /// An [`AuthError`] to refuse the request (for example
    /// [`AuthError::MultipleTokens`] for an ambiguous credential).
    fn find<'r>(&self, uri: &'r Uri, headers: &'r HeaderMap) -> Result<Option<&'r str>, AuthError>;

    /// Whether the credential is *ambient*: one a browser attaches on its
    /// own, also to requests that another site makes it send (a cookie).
    /// A token from an ambient source is checked against cross-site
    /// request forgery on unsafe methods, as a
    /// [`TokenSource::Cookie`] token is (see [`CsrfPolicy`](crate::CsrfPolicy)).
    ///
    /// The default is `true`, the safe answer when the source may read a
    /// cookie. Return `false` only when a page of another site cannot
    /// make a browser send the credential: a request header that only
    /// your own client sets (the built-in `Authorization`, header and
    /// query sources are not ambient; cookies are).
    ///
    /// ```
    /// use http::{HeaderMap, Uri};
    /// use tower_jwt_auth::{AuthError, FindToken};
    ///
    /// /// `X-Api-Token: <token>`, set by the application's own client.
    /// struct ApiToken;
    ///
    /// impl FindToken for ApiToken {
    ///     fn find<'r>(&self, _uri: &'r Uri, headers: &'r HeaderMap) -> Result<Option<&'r str>, AuthError> {
    ///         Ok(headers.get("x-api-token").and_then(|v| v.to_str().ok()))
    ///     }
    ///
    ///     /// No browser sends this header on its own.
    ///     fn ambient(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// # assert!(!ApiToken.ambient());
    /// ```
    fn ambient(&self) -> bool {
        true
    }
}

/// A place to look for the token.
///
/// ```
/// use tower_jwt_auth::TokenSource;
/// use http::HeaderName;
///
/// let sources = [
///     TokenSource::Bearer,
///     TokenSource::cookie("access_token"),
///     TokenSource::header(HeaderName::from_static("x-access-token")),
/// ];
/// # let _ = sources;
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`; the scheme is matched
    /// case-insensitively (RFC 7235). A request with two `Authorization`
    /// headers is refused with 400 `invalid_request`. Another scheme (for
    /// example `Basic`) counts as no token here. On a layer configured for
    /// DPoP (`JwtAuthLayer::dpop`, feature `dpop`), `Authorization: DPoP
    /// <token>` is read here too.
    Bearer,
    /// A cookie with this name (for browser apps that keep the token in an
    /// `HttpOnly` cookie). When the name repeats with different values (a
    /// cookie planted by a sibling subdomain: "cookie tossing"), the
    /// request is refused with 400 `invalid_request`; the same value twice
    /// is fine. Name the cookie with the `__Host-` prefix so that no other
    /// host or path can set it. Unsafe methods with a cookie token are
    /// checked against cross-site requests (see
    /// [`CsrfPolicy`](crate::CsrfPolicy)).
    Cookie(String),
    /// A header holding the token alone (or `Bearer <token>`). Two such
    /// headers are refused with 400 `invalid_request`.
    Header(HeaderName),
    /// A query parameter (`?access_token=…`), for clients that cannot set
    /// headers: browser WebSocket and `EventSource` (SSE) connections.
    /// Opt-in, and only on the routes that need it: a URL ends up in access
    /// logs, proxy logs, browser history and `Referer` headers, so a token
    /// there should be short-lived (RFC 6750 §2.3, §5.3). Two different
    /// values are refused with 400 `invalid_request`; the value is taken as
    /// it is, without percent-decoding.
    Query(String),
    /// An entry of the WebSocket handshake's `Sec-WebSocket-Protocol`
    /// list that starts with this prefix, the token after it: browsers
    /// cannot set `Authorization` on a WebSocket, but can offer
    /// subprotocols (`new WebSocket(url, [prefix + token, "echo"])`).
    /// [`TokenSource::KUBERNETES_PROTOCOL`] is the Kubernetes prefix.
    ///
    /// With any other prefix the token follows it as it is: a compact JWS
    /// (base64url segments joined by `.`) is already a valid subprotocol
    /// name. With [`TokenSource::KUBERNETES_PROTOCOL`] the value is read as
    /// Kubernetes reads it: the token base64url-encoded without padding,
    /// which is what `kubectl` and client-go send. Only a value with a `.`
    /// (a compact JWS or JWE put there as it is, by a browser client) is
    /// taken as it is, since `.` is never base64url; any other value is
    /// decoded, so an opaque token after this prefix must be encoded (a
    /// value that does not decode to a token is refused as malformed). The
    /// length limit applies to the decoded token, and is checked before
    /// decoding. Two entries
    /// with the prefix are refused with 400 `invalid_request`. The
    /// handshake answer never names the token entry: axum's
    /// `WebSocketUpgrade::protocols` selects only a protocol the server
    /// lists, so list the application's own protocol and have clients
    /// offer it too (a browser fails a handshake whose answer selects no
    /// protocol it offered). Not ambient: a page of another site can open
    /// a WebSocket but cannot know the token to put there.
    WebSocketProtocol(String),
    /// The application's own [`FindToken`]. Unless it declares otherwise
    /// ([`FindToken::ambient`]), its tokens are checked against cross-site
    /// requests as cookie tokens are.
    Custom(Arc<dyn FindToken>),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Bearer => f.write_str("Bearer"),
            TokenSource::Cookie(name) => f.debug_tuple("Cookie").field(name).finish(),
            TokenSource::Header(name) => f.debug_tuple("Header").field(name).finish(),
            TokenSource::Query(name) => f.debug_tuple("Query").field(name).finish(),
            TokenSource::WebSocketProtocol(prefix) => {
                f.debug_tuple("WebSocketProtocol").field(prefix).finish()
            }
            TokenSource::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl TokenSource {
    /// A cookie source.
    pub fn cookie(name: impl Into<String>) -> TokenSource {
        TokenSource::Cookie(name.into())
    }

    /// A header source.
    pub fn header(name: HeaderName) -> TokenSource {
        TokenSource::Header(name)
    }

    /// A query parameter source; see [`TokenSource::Query`] for the risks.
    ///
    /// ```
    /// use tower_jwt_auth::TokenSource;
    /// // Only on the WebSocket route: browsers cannot set headers there.
    /// let ws_sources = [TokenSource::Bearer, TokenSource::query("access_token")];
    /// # let _ = ws_sources;
    /// ```
    pub fn query(name: impl Into<String>) -> TokenSource {
        TokenSource::Query(name.into())
    }

    /// The Kubernetes prefix of a token in `Sec-WebSocket-Protocol`:
    /// `base64url.bearer.authorization.k8s.io.` (see
    /// [`TokenSource::WebSocketProtocol`]).
    ///
    /// ```
    /// use tower_jwt_auth::TokenSource;
    /// // A browser: new WebSocket(url, [prefix + token, "echo"])
    /// let entry = format!("{}{}", TokenSource::KUBERNETES_PROTOCOL, "eyJ.eyJ.sig");
    /// assert!(entry.starts_with("base64url.bearer.authorization.k8s.io."));
    /// ```
    pub const KUBERNETES_PROTOCOL: &'static str = "base64url.bearer.authorization.k8s.io.";

    /// A `Sec-WebSocket-Protocol` source with this prefix (for example
    /// [`TokenSource::KUBERNETES_PROTOCOL`]); see
    /// [`TokenSource::WebSocketProtocol`].
    ///
    /// ```
    /// use tower_jwt_auth::TokenSource;
    /// // On the WebSocket route: a browser offers
    /// // ["base64url.bearer.authorization.k8s.io.<token>", "echo"].
    /// let ws_sources = [
    ///     TokenSource::Bearer,
    ///     TokenSource::websocket_protocol(TokenSource::KUBERNETES_PROTOCOL),
    /// ];
    /// # let _ = ws_sources;
    /// ```
    pub fn websocket_protocol(prefix: impl Into<String>) -> TokenSource {
        TokenSource::WebSocketProtocol(prefix.into())
    }

    /// The application's own [`FindToken`].
    pub fn custom(find: impl FindToken) -> TokenSource {
        TokenSource::Custom(Arc::new(find))
    }

    /// Whether a browser sends this source's credential on its own, so
    /// that its tokens need the cross-site checks: cookies, and custom
    /// sources unless they say otherwise ([`FindToken::ambient`]).
    fn ambient(&self) -> bool {
        match self {
            TokenSource::Cookie(_) => true,
            TokenSource::Custom(find) => find.ambient(),
            TokenSource::Bearer
            | TokenSource::Header(_)
            | TokenSource::Query(_)
            | TokenSource::WebSocketProtocol(_) => false,
        }
    }

    fn find<'r>(
        &self,
        uri: &'r Uri,
        headers: &'r HeaderMap,
        dpop: bool,
        max_len: usize,
    ) -> Result<Option<(Cow<'r, str>, bool)>, AuthError> {
        match self {
            TokenSource::Bearer => match single(headers, &AUTHORIZATION)? {
                None => Ok(None),
                Some(value) => match bearer(value)? {
                    Some(token) => Ok(Some((Cow::Borrowed(token), false))),
                    None if dpop => Ok(dpop_token(value)?.map(|t| (Cow::Borrowed(t), true))),
                    None => Ok(None),
                },
            },
            other => Ok(other.find_plain(uri, headers, max_len)?.map(|t| (t, false))),
        }
    }

    fn find_plain<'r>(
        &self,
        uri: &'r Uri,
        headers: &'r HeaderMap,
        max_len: usize,
    ) -> Result<Option<Cow<'r, str>>, AuthError> {
        // (Cookies are looked up by `cookie`, which refuses conflicting values.)
        let found = match self {
            TokenSource::Bearer => match single(headers, &AUTHORIZATION)? {
                None => None,
                Some(value) => bearer(value)?,
            },
            TokenSource::Header(name) => match single(headers, name)? {
                None => None,
                Some(value) => match bearer(value)? {
                    Some(token) => Some(token),
                    None if value.is_empty() => None,
                    None => Some(value),
                },
            },
            TokenSource::Cookie(name) => cookie(headers, name)?,
            TokenSource::Query(name) => query(uri, name)?,
            // The one source that may decode, so the one owned token.
            TokenSource::WebSocketProtocol(prefix) => return subprotocol(headers, prefix, max_len),
            TokenSource::Custom(find) => find.find(uri, headers)?,
        };
        Ok(found.map(Cow::Borrowed))
    }
}

/// The value of a header that must not repeat.
fn single<'r>(headers: &'r HeaderMap, name: &HeaderName) -> Result<Option<&'r str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::MultipleTokens);
    }
    value
        .to_str()
        // Visible ASCII, space and tab only: `trim_ascii` is `trim` here.
        .map(|v| Some(v.trim_ascii()))
        .map_err(|_| AuthError::Malformed("the token header is not visible ASCII"))
}

/// The token of a `Bearer` credential; `None` for another scheme.
fn bearer(value: &str) -> Result<Option<&str>, AuthError> {
    credential(value, "bearer", "empty bearer token")
}

/// The token of a `DPoP` credential (RFC 9449 §7.1); `None` for another scheme.
fn dpop_token(value: &str) -> Result<Option<&str>, AuthError> {
    credential(value, "dpop", "empty DPoP token")
}

/// The token after `scheme` (any case) and a space, spaces around it
/// dropped; `None` for another scheme.
fn credential<'v>(
    value: &'v str,
    scheme: &str,
    empty: &'static str,
) -> Result<Option<&'v str>, AuthError> {
    let (name, rest) = match value.as_bytes().get(scheme.len()) {
        // The usual `Bearer <token>`: no search for the space. (A space
        // byte starts a char: both slices are at char boundaries.)
        Some(b' ') => (&value[..scheme.len()], &value[scheme.len() + 1..]),
        _ => match value.split_once(' ') {
            Some(split) => split,
            None => (value, ""),
        },
    };
    if !name.eq_ignore_ascii_case(scheme) {
        return Ok(None);
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(AuthError::Malformed(empty));
    }
    Ok(Some(token))
}

/// The value of the cookie `name`; two cookies of that name with different
/// values are an ambiguous credential.
pub(crate) fn cookie<'r>(headers: &'r HeaderMap, name: &str) -> Result<Option<&'r str>, AuthError> {
    let mut found: Option<&'r str> = None;
    let values = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        });
    for value in values {
        match found {
            None => found = Some(value),
            Some(first) if first == value => {}
            Some(_) => return Err(AuthError::MultipleTokens),
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// The value of the query parameter `name`; two different values are an
/// ambiguous credential.
fn query<'r>(uri: &'r Uri, name: &str) -> Result<Option<&'r str>, AuthError> {
    let mut found: Option<&'r str> = None;
    let pairs = uri.query().unwrap_or("").split('&');
    for value in pairs.filter_map(|p| {
        p.split_once('=')
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }) {
        match found {
            None => found = Some(value),
            Some(first) if first == value => {}
            Some(_) => return Err(AuthError::MultipleTokens),
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// The token of the one `Sec-WebSocket-Protocol` entry that starts with
/// `prefix` (entries are comma-separated, in one or more header lines);
/// two such entries are an ambiguous credential, even with one value.
/// After the Kubernetes prefix, a value without `.` is the token in
/// base64url ([`TokenSource::WebSocketProtocol`]), decoded only when the
/// token it holds can be at most `max_len` long.
fn subprotocol<'r>(
    headers: &'r HeaderMap,
    prefix: &str,
    max_len: usize,
) -> Result<Option<Cow<'r, str>>, AuthError> {
    let mut found: Option<&'r str> = None;
    let entries = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim_ascii);
    for entry in entries {
        let Some(token) = entry.strip_prefix(prefix) else {
            continue;
        };
        if found.is_some() {
            return Err(AuthError::MultipleTokens);
        }
        if token.is_empty() {
            return Err(AuthError::Malformed(
                "empty token after the subprotocol prefix",
            ));
        }
        found = Some(token);
    }
    match found {
        Some(value) if prefix == TokenSource::KUBERNETES_PROTOCOL && !value.contains('.') => {
            // The decoded length, known before decoding (unpadded base64url).
            let len = value.len() / 4 * 3 + (value.len() % 4).saturating_sub(1);
            if len > max_len {
                return Err(AuthError::TokenTooLarge {
                    len,
                    limit: max_len,
                });
            }
            kubernetes_token(value).map(|t| Some(Cow::Owned(t)))
        }
        other => Ok(other.map(Cow::Borrowed)),
    }
}

/// The token a Kubernetes client sent: strict unpadded base64url of a
/// non-empty run of visible ASCII (what any other source could carry).
fn kubernetes_token(value: &str) -> Result<String, AuthError> {
    const MALFORMED: AuthError =
        AuthError::Malformed("the Kubernetes subprotocol token is not base64url of a token");
    let bytes = crate::b64::decode(value.as_bytes()).ok_or(MALFORMED)?;
    if bytes.is_empty() || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(MALFORMED);
    }
    String::from_utf8(bytes).map_err(|_| MALFORMED)
}

/// A token, and whether it came from an ambient source (a cookie, which a
/// browser sends on cross-site requests too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located<'r> {
    /// Borrowed from the request, or decoded from it (the Kubernetes
    /// subprotocol form).
    pub(crate) token: Cow<'r, str>,
    /// From a source a browser sends on its own: the CSRF checks apply.
    pub(crate) ambient: bool,
    /// Sent with the `Authorization: DPoP` scheme.
    pub(crate) dpop: bool,
}

/// The token from the first source that has one; with `dpop`, the
/// `Bearer` source reads `Authorization: DPoP` too. A token longer than
/// `max_len` bytes is refused here, the one place every source goes
/// through (a token that must be decoded, before it is).
pub(crate) fn find_token<'r>(
    sources: &[TokenSource],
    uri: &'r Uri,
    headers: &'r HeaderMap,
    dpop: bool,
    max_len: usize,
) -> Result<Option<Located<'r>>, AuthError> {
    for source in sources {
        if let Some((token, is_dpop)) = source.find(uri, headers, dpop, max_len)? {
            if token.len() > max_len {
                return Err(AuthError::TokenTooLarge {
                    len: token.len(),
                    limit: max_len,
                });
            }
            return Ok(Some(Located {
                token,
                ambient: source.ambient(),
                dpop: is_dpop,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = crate::layer::DEFAULT_MAX_TOKEN_LEN;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn find_token<'r>(
        sources: &[TokenSource],
        headers: &'r HeaderMap,
    ) -> Result<Option<&'r str>, AuthError> {
        static URI: std::sync::OnceLock<Uri> = std::sync::OnceLock::new();
        let uri = URI.get_or_init(|| Uri::from_static("/"));
        // (These sources only borrow: only the Kubernetes form decodes.)
        super::find_token(sources, uri, headers, false, MAX).map(|l| {
            l.map(|l| match l.token {
                Cow::Borrowed(token) => token,
                Cow::Owned(token) => panic!("{token} was decoded"),
            })
        })
    }

    #[test]
    fn dpop_scheme_only_when_asked() {
        let h = headers(&[("authorization", "DPoP a.b.c")]);
        let uri = Uri::from_static("/");
        assert_eq!(find_token(&[TokenSource::Bearer], &h).unwrap(), None);
        let found = super::find_token(&[TokenSource::Bearer], &uri, &h, true, MAX)
            .unwrap()
            .unwrap();
        assert_eq!((&*found.token, found.dpop), ("a.b.c", true));
        let h = headers(&[("authorization", "Bearer a.b.c")]);
        let found = super::find_token(&[TokenSource::Bearer], &uri, &h, true, MAX)
            .unwrap()
            .unwrap();
        assert_eq!((&*found.token, found.dpop), ("a.b.c", false));
        let h = headers(&[("authorization", "dpop ")]);
        assert!(super::find_token(&[TokenSource::Bearer], &uri, &h, true, MAX).is_err());
    }

    #[test]
    fn query_parameters() {
        let h = HeaderMap::new();
        let q = |u: &'static str| query(Box::leak(Box::new(Uri::from_static(u))), "at");
        assert_eq!(q("/ws?at=a.b.c").unwrap(), Some("a.b.c"));
        assert_eq!(q("/ws?x=1&at=a.b.c&at=a.b.c").unwrap(), Some("a.b.c"));
        assert!(q("/ws?at=a&at=b").is_err());
        assert_eq!(q("/ws?at=").unwrap(), None);
        assert_eq!(q("/ws?bat=x").unwrap(), None);
        assert_eq!(q("/ws").unwrap(), None);
        let _ = h;
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in [
            "Bearer a.b.c",
            "bearer a.b.c",
            "BEARER  a.b.c",
            "bEaReR a.b.c ",
        ] {
            let h = headers(&[("authorization", v)]);
            assert_eq!(
                find_token(&[TokenSource::Bearer], &h).unwrap(),
                Some("a.b.c"),
                "{v}"
            );
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens() {
        let h = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(find_token(&[TokenSource::Bearer], &h).unwrap(), None);
        let h = headers(&[("authorization", "Bearer")]);
        assert!(find_token(&[TokenSource::Bearer], &h).is_err());
        let h = headers(&[("authorization", "Bearer   ")]);
        assert!(find_token(&[TokenSource::Bearer], &h).is_err());
    }

    #[test]
    fn two_authorization_headers_are_a_bad_request() {
        let h = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        let err = find_token(&[TokenSource::Bearer], &h).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::BadRequest);
    }

    #[test]
    fn cookies_and_order() {
        let h = headers(&[
            ("cookie", "theme=dark; access_token=\"c.o.k\""),
            ("cookie", "access_token=c.o.k"),
            ("x-token", "h.e.d"),
        ]);
        let cookie = TokenSource::cookie("access_token");
        let header = TokenSource::header(HeaderName::from_static("x-token"));
        assert_eq!(
            find_token(std::slice::from_ref(&cookie), &h).unwrap(),
            Some("c.o.k")
        );
        assert_eq!(
            find_token(&[header.clone(), cookie.clone()], &h).unwrap(),
            Some("h.e.d")
        );
        assert_eq!(
            find_token(&[TokenSource::Bearer, cookie, header], &h).unwrap(),
            Some("c.o.k")
        );
        assert_eq!(
            find_token(&[TokenSource::cookie("nope")], &h).unwrap(),
            None
        );
    }

    /// Reads `x-custom`; `ambient` as it is built.
    struct Custom {
        ambient: Option<bool>,
    }

    impl FindToken for Custom {
        fn find<'r>(&self, _: &'r Uri, h: &'r HeaderMap) -> Result<Option<&'r str>, AuthError> {
            Ok(h.get("x-custom").and_then(|v| v.to_str().ok()))
        }
        fn ambient(&self) -> bool {
            self.ambient.unwrap_or(true)
        }
    }

    /// The default of the trait itself, not overridden.
    struct Plain;

    impl FindToken for Plain {
        fn find<'r>(&self, _: &'r Uri, h: &'r HeaderMap) -> Result<Option<&'r str>, AuthError> {
            Ok(h.get("x-custom").and_then(|v| v.to_str().ok()))
        }
    }

    #[test]
    fn cookies_and_custom_sources_are_ambient_unless_they_say_otherwise() {
        let h = headers(&[
            ("authorization", "Bearer b.e.a"),
            ("cookie", "at=c.o.k"),
            ("x-token", "h.e.d"),
            ("x-custom", "c.u.s"),
        ]);
        let uri = Uri::from_static("/?at=q.u.e");
        for (source, ambient) in [
            (TokenSource::Bearer, false),
            (
                TokenSource::header(HeaderName::from_static("x-token")),
                false,
            ),
            (TokenSource::query("at"), false),
            (TokenSource::cookie("at"), true),
            (TokenSource::custom(Plain), true),
            (TokenSource::custom(Custom { ambient: None }), true),
            (
                TokenSource::custom(Custom {
                    ambient: Some(false),
                }),
                false,
            ),
        ] {
            let found = super::find_token(std::slice::from_ref(&source), &uri, &h, false, MAX)
                .unwrap()
                .unwrap();
            assert_eq!(found.ambient, ambient, "{source:?}");
        }
    }
}

#[cfg(test)]
mod subprotocol_tests {
    use super::*;

    const MAX: usize = crate::layer::DEFAULT_MAX_TOKEN_LEN;
    use http::HeaderValue;

    const K8S: &str = TokenSource::KUBERNETES_PROTOCOL;

    fn offered(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(line).unwrap());
        }
        h
    }

    #[test]
    fn the_token_entry_among_the_offered_protocols() {
        let line = format!("echo, {K8S}a.b.c , chat");
        let h = offered(&[&line]);
        assert_eq!(subprotocol(&h, K8S, MAX).unwrap().as_deref(), Some("a.b.c"));
        let split = format!("{K8S}a.b.c");
        let h = offered(&["echo", &split]);
        assert_eq!(subprotocol(&h, K8S, MAX).unwrap().as_deref(), Some("a.b.c"));
        assert_eq!(
            subprotocol(&offered(&["echo, chat"]), K8S, MAX).unwrap(),
            None
        );
        assert_eq!(subprotocol(&HeaderMap::new(), K8S, MAX).unwrap(), None);
        // Another prefix is another source.
        assert_eq!(
            subprotocol(&offered(&[&line]), "quarkus-http-upgrade#", MAX).unwrap(),
            None
        );
    }

    #[test]
    fn two_token_entries_or_an_empty_one_are_refused() {
        for lines in [
            vec![format!("{K8S}a.b.c, {K8S}d.e.f")],
            vec![format!("{K8S}a.b.c, {K8S}a.b.c")],
            vec![format!("{K8S}a.b.c"), format!("echo, {K8S}d.e.f")],
        ] {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let err = subprotocol(&offered(&lines), K8S, MAX).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::BadRequest, "{lines:?}");
        }
        let err = subprotocol(&offered(&[&format!("echo, {K8S}")]), K8S, MAX).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Unauthenticated);
    }
}

#[cfg(test)]
mod kubernetes_tests {
    use super::*;

    const MAX: usize = crate::layer::DEFAULT_MAX_TOKEN_LEN;
    use http::HeaderValue;

    const K8S: &str = TokenSource::KUBERNETES_PROTOCOL;

    fn entry(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let line = format!("{K8S}{value}, echo");
        h.append(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(&line).unwrap(),
        );
        h
    }

    #[test]
    fn kubernetes_clients_base64url_encode_the_token_and_it_is_decoded() {
        // What client-go and kubectl send: base64url, no padding.
        let jws = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        let sent = crate::b64::encode(jws);
        assert!(!sent.contains('.'));
        let h = entry(&sent);
        assert_eq!(subprotocol(&h, K8S, MAX).unwrap().unwrap(), jws);
        // An opaque token too (no dots, decoded all the same).
        let h = entry(&crate::b64::encode("opaque-1"));
        assert_eq!(
            subprotocol(&h, K8S, MAX).unwrap().as_deref(),
            Some("opaque-1")
        );
        // A compact JWS as it is (browsers written to the raw form): a
        // `.` is never base64url, so the two forms cannot be confused.
        let h = entry(jws);
        assert_eq!(subprotocol(&h, K8S, MAX).unwrap().unwrap(), jws);
    }

    #[test]
    fn an_encoded_value_that_is_not_strict_base64url_or_decodes_to_no_token_is_refused() {
        for bad in [
            "a",                               // not a whole base64url length
            "YWJj!",                           // outside the alphabet
            "YR",                              // non-zero trailing bits
            &crate::b64::encode("a b"),        // decodes to a space
            &crate::b64::encode("a\u{7f}b"),   // decodes to a control byte
            &crate::b64::encode([0xff, 0xfe]), // decodes to no UTF-8
            &crate::b64::encode(""),           // decodes to nothing (empty)
        ] {
            let h = entry(bad);
            match subprotocol(&h, K8S, MAX).map(|t| t.map(|t| t.into_owned())) {
                Err(e) => assert_eq!(e.kind(), crate::ErrorKind::Unauthenticated, "{bad:?}"),
                Ok(t) => panic!("{bad:?} gave {t:?}"),
            }
        }
    }

    #[test]
    fn the_length_limit_applies_to_every_source_and_before_decoding() {
        let token = "x".repeat(40);
        let h = entry(&crate::b64::encode(&token));
        let uri = Uri::from_static("/ws");
        let sources = [TokenSource::websocket_protocol(K8S)];
        // The decoded length is what counts: 40 fits 40, not 39.
        assert_eq!(
            find_token(&sources, &uri, &h, false, 40)
                .unwrap()
                .unwrap()
                .token,
            token
        );
        let err = find_token(&sources, &uri, &h, false, 39).unwrap_err();
        assert!(
            matches!(err, AuthError::TokenTooLarge { len: 40, limit: 39 }),
            "{err:?}"
        );
        // Refused from its encoded length: not decoded (an invalid value
        // would be Malformed if it were).
        let h = entry(&"!".repeat(60));
        let err = subprotocol(&h, K8S, 39).unwrap_err();
        assert!(
            matches!(err, AuthError::TokenTooLarge { len: 45, .. }),
            "{err:?}"
        );
        // Every other source too.
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abcdef"));
        let err = find_token(&[TokenSource::Bearer], &uri, &h, false, 5).unwrap_err();
        assert!(matches!(err, AuthError::TokenTooLarge { len: 6, limit: 5 }));
    }

    #[test]
    fn another_prefix_takes_the_value_as_it_is() {
        let mut h = HeaderMap::new();
        let sent = crate::b64::encode("opaque-1");
        let line = format!("app.token.{sent}");
        h.append(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(&line).unwrap(),
        );
        let found = subprotocol(&h, "app.token.", MAX).unwrap();
        assert_eq!(found.as_deref(), Some(sent.as_str()));
    }

    #[test]
    fn the_layer_finds_the_decoded_token() {
        let sent = crate::b64::encode("a.b.c");
        let h = entry(&sent);
        let uri = Uri::from_static("/ws");
        let sources = [TokenSource::websocket_protocol(K8S)];
        let found = find_token(&sources, &uri, &h, false, MAX).unwrap().unwrap();
        assert_eq!(found.token, "a.b.c");
        assert!(!found.ambient);
    }
}

#[cfg(test)]
mod cookie_tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn conflicting_cookies_are_ambiguous() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("at=a; at=b"));
        assert!(matches!(cookie(&h, "at"), Err(AuthError::MultipleTokens)));
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("at=; x=1"));
        h.append(COOKIE, HeaderValue::from_static("at=b"));
        assert!(cookie(&h, "at").is_err());
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("at=\"b\"; at=b"));
        assert_eq!(cookie(&h, "at").unwrap(), Some("b"));
        assert_eq!(cookie(&h, "nope").unwrap(), None);
    }
}
