//! mTLS-bound access tokens, RFC 8705 §3 (feature `mtls`): tokens whose
//! `cnf.x5t#S256` names the client certificate they were issued to, usable
//! only over a connection authenticated with that certificate.
//!
//! Configure it with [`JwtAuthLayer::mtls`](crate::JwtAuthLayer::mtls) and
//! an [`MtlsPolicy`]. A token with `cnf.x5t#S256` is accepted only when the
//! request comes with a client certificate whose DER SHA-256 (base64url)
//! equals it; otherwise 401 `invalid_token`. Without a policy such a token
//! is refused outright (see `crate::bind`): it is never taken for a bearer
//! token.
//!
//! Where the certificate comes from (one of the two, never both):
//!
//! - **the TLS connection** (default): the layer reads a
//!   [`ClientCertificate`] from the request extensions. Whoever accepts
//!   the connection puts it there: [`ClientCertificate::from_tls`] reads
//!   the verified peer certificate of a tokio-rustls connection and
//!   [`ClientCertificateLayer`] adds it to each request of that connection
//!   (recipe below). With tonic's own TLS, map its `TlsConnectInfo`'s
//!   `peer_certs()` into a [`ClientCertificate`] the same way in a layer.
//! - **a trusted proxy header** (RFC 9440): with
//!   [`MtlsPolicy::client_cert_header`], the layer reads the certificate
//!   from that header (`Client-Cert: :<base64 DER>:`) and from nothing
//!   else. Name it only when a proxy that terminates TLS always sets or
//!   removes it: the header is then the proxy's word. A request that
//!   carries such a header when none is configured gets no binding from it.
//!
//! The modes ([`MtlsMode`]) are DPoP's: `Required` (every token must be
//! certificate-bound), `Allowed` (bound tokens are checked, others pass),
//! `Off` (bound tokens are refused, as without a policy).
//!
//! Serving HTTPS with client certificates, tokio-rustls and hyper (as
//! axum's `low-level-rustls` example does):
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use tower_jwt_auth::mtls::{ClientCertificate, ClientCertificateLayer, MtlsMode, MtlsPolicy};
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, Verifier};
//! use tower_layer::Layer;
//!
//! # async fn run(tls: Arc<tokio_rustls::rustls::ServerConfig>, verifier: Verifier) -> std::io::Result<()> {
//! // `tls` asks for client certificates (a `WebPkiClientVerifier`).
//! let app = Router::new()
//!     .route("/me", get(|| async { "ok" }))
//!     .route_layer(JwtAuthLayer::new(verifier).mtls(MtlsPolicy::new(MtlsMode::Allowed)));
//! let acceptor = tokio_rustls::TlsAcceptor::from(tls);
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let (acceptor, app) = (acceptor.clone(), app.clone());
//!     tokio::spawn(async move {
//!         let Ok(tls) = acceptor.accept(tcp).await else { return };
//!         let svc = ClientCertificateLayer::new(ClientCertificate::from_tls(&tls)).layer(app);
//!         let svc = hyper_util::service::TowerToHyperService::new(svc);
//!         let io = hyper_util::rt::TokioIo::new(tls);
//!         let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
//!     });
//! }
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use http::{HeaderMap, HeaderName, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{AuthError, BuildError};

/// Which tokens a layer accepts, as to certificate binding.
///
/// ```
/// use tower_jwt_auth::mtls::{MtlsMode, MtlsPolicy};
/// assert_eq!(MtlsPolicy::new(MtlsMode::Required).mode(), MtlsMode::Required);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MtlsMode {
    /// Only tokens bound to the request's client certificate
    /// (`cnf.x5t#S256`); an unbound token is refused.
    Required,
    /// Tokens bound to a certificate must match the request's; unbound
    /// tokens pass as bearer tokens.
    Allowed,
    /// No certificate binding is verified: a bound token is refused (as
    /// with no policy at all).
    Off,
}

/// How a layer verifies certificate-bound tokens (RFC 8705 §3): the mode
/// and where the client certificate comes from. See the [module
/// docs](self).
///
/// ```
/// use tower_jwt_auth::mtls::{MtlsMode, MtlsPolicy};
///
/// // Behind a proxy that terminates TLS and forwards the certificate (RFC 9440).
/// let policy = MtlsPolicy::new(MtlsMode::Required).client_cert_header("Client-Cert")?;
/// assert_eq!(policy.mode(), MtlsMode::Required);
/// # Ok::<(), tower_jwt_auth::BuildError>(())
/// ```
#[derive(Clone)]
pub struct MtlsPolicy {
    mode: MtlsMode,
    header: Option<HeaderName>,
}

impl fmt::Debug for MtlsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsPolicy")
            .field("mode", &self.mode)
            .field("header", &self.header)
            .finish()
    }
}

impl MtlsPolicy {
    /// A policy in `mode` reading the certificate from the request
    /// extensions ([`ClientCertificate`], put there by the TLS server).
    pub fn new(mode: MtlsMode) -> Self {
        MtlsPolicy { mode, header: None }
    }

    /// Reads the client certificate from the header `name` (RFC 9440
    /// `Client-Cert`: a structured-field byte sequence, `:<base64 DER>:`)
    /// instead of the request extensions. Only for a service behind a proxy
    /// that terminates TLS and always sets or strips this header: whoever
    /// can reach the service without the proxy can name any certificate.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] (setting `client_cert_header`) when
    /// `name` is not a valid header name.
    pub fn client_cert_header(mut self, name: &str) -> Result<Self, BuildError> {
        let name = HeaderName::try_from(name).map_err(|_| {
            BuildError::config("client_cert_header", "not a valid HTTP header name")
        })?;
        self.header = Some(name);
        Ok(self)
    }

    /// The mode.
    pub fn mode(&self) -> MtlsMode {
        self.mode
    }

    /// Whether this policy verifies certificate binding (not `Off`).
    pub(crate) fn verifies(&self) -> bool {
        self.mode != MtlsMode::Off
    }

    /// The binding rule of RFC 8705 §3 for one request: `x5t` is the
    /// token's `cnf.x5t#S256`, if any.
    pub(crate) fn check(
        &self,
        x5t: Option<&str>,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<(), AuthError> {
        let x5t = match (self.mode, x5t) {
            (MtlsMode::Off, _) | (MtlsMode::Allowed, None) => return Ok(()),
            (MtlsMode::Required, None) => return Err(AuthError::CertificateBindingRequired),
            (_, Some(x5t)) => x5t,
        };
        let thumbprint = match &self.header {
            Some(name) => from_header(headers, name)?.thumbprint(),
            None => extensions
                .get::<ClientCertificate>()
                .ok_or(AuthError::ClientCertificateMismatch(
                    "the request presented no client certificate",
                ))?
                .thumbprint(),
        };
        if thumbprint != x5t {
            return Err(AuthError::ClientCertificateMismatch(
                "the client certificate is not the one the token is bound to",
            ));
        }
        Ok(())
    }
}

/// The certificate in the trusted header `name`: exactly one field value,
/// an RFC 8941 byte sequence (`:` base64 `:`, padding optional).
fn from_header(headers: &HeaderMap, name: &HeaderName) -> Result<ClientCertificate, AuthError> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AuthError::ClientCertificateMismatch(
            "the request presented no client certificate, or several",
        ));
    };
    let malformed = AuthError::ClientCertificateMismatch(
        "the client certificate header is not an RFC 9440 byte sequence",
    );
    let text = value
        .to_str()
        .map_err(|_| malformed.clone())?
        .trim_matches([' ', '\t']);
    let inner = text
        .strip_prefix(':')
        .and_then(|t| t.strip_suffix(':'))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed.clone())?;
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(inner)
        .map(ClientCertificate::new)
        .map_err(|_| malformed)
}

/// The client certificate of a request's connection (its end-entity
/// certificate, DER), verified by the TLS server; the layer reads it from
/// the request extensions. Cheap to clone.
///
/// ```
/// use tower_jwt_auth::mtls::ClientCertificate;
///
/// let cert = ClientCertificate::new(b"DER bytes".to_vec());
/// assert_eq!(cert.der(), b"DER bytes");
/// assert_eq!(cert.thumbprint().len(), 43); // base64url of a SHA-256
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    der: Arc<[u8]>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint())
            .finish()
    }
}

impl ClientCertificate {
    /// A certificate from its DER bytes. The layer trusts it: insert only
    /// what the TLS server verified.
    pub fn new(der: impl Into<Vec<u8>>) -> Self {
        ClientCertificate {
            der: Arc::from(der.into()),
        }
    }

    /// The peer's end-entity certificate of a tokio-rustls server
    /// connection, if the client presented one (and the server config's
    /// client verifier accepted it: rustls completes no handshake
    /// otherwise).
    ///
    /// ```no_run
    /// # async fn run(acceptor: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream) -> std::io::Result<()> {
    /// use tower_jwt_auth::mtls::ClientCertificate;
    /// let tls = acceptor.accept(tcp).await?;
    /// let cert: Option<ClientCertificate> = ClientCertificate::from_tls(&tls);
    /// # let _ = cert; Ok(()) }
    /// ```
    pub fn from_tls<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> Option<Self> {
        let (_, conn) = stream.get_ref();
        let first = conn.peer_certificates()?.first()?;
        Some(ClientCertificate::new(first.as_ref()))
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its `x5t#S256`: the base64url (unpadded) SHA-256 of the DER bytes,
    /// as a bound token's `cnf` names it.
    pub fn thumbprint(&self) -> String {
        crate::b64::sha256(&self.der)
    }
}

/// A tower layer that adds one connection's [`ClientCertificate`] (or
/// nothing) to the extensions of each of its requests: wrap the
/// per-connection service with it. See the [module docs](self).
///
/// ```
/// use tower_jwt_auth::mtls::{ClientCertificate, ClientCertificateLayer};
/// use tower_layer::Layer;
///
/// let svc = tower::service_fn(|req: http::Request<()>| async move {
///     let cert = req.extensions().get::<ClientCertificate>().cloned();
///     Ok::<_, std::convert::Infallible>(http::Response::new(format!("{cert:?}")))
/// });
/// let svc = ClientCertificateLayer::new(Some(ClientCertificate::new(vec![1, 2, 3]))).layer(svc);
/// # let _ = svc;
/// ```
#[derive(Debug, Clone)]
pub struct ClientCertificateLayer {
    cert: Option<ClientCertificate>,
}

impl ClientCertificateLayer {
    /// A layer adding `cert` (the connection's, if any) to every request.
    pub fn new(cert: Option<ClientCertificate>) -> Self {
        ClientCertificateLayer { cert }
    }
}

impl<S> Layer<S> for ClientCertificateLayer {
    type Service = AddClientCertificate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AddClientCertificate {
            inner,
            cert: self.cert.clone(),
        }
    }
}

/// The service made by [`ClientCertificateLayer`]: it inserts the
/// certificate (or removes one a caller inserted) and calls `inner`.
#[derive(Debug, Clone)]
pub struct AddClientCertificate<S> {
    inner: S,
    cert: Option<ClientCertificate>,
}

impl<S> AddClientCertificate<S> {
    define_inner_service_accessors!();
}

impl<S, B> Service<Request<B>> for AddClientCertificate<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match &self.cert {
            Some(cert) => req.extensions_mut().insert(cert.clone()),
            None => req.extensions_mut().remove::<ClientCertificate>(),
        };
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("client-cert", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_rfc_9440_header_is_a_byte_sequence_once() {
        let name = HeaderName::from_static("client-cert");
        let der = [0xfbu8, 0xff, 0x00, 0x01];
        for ok in [":+/8AAQ==:", ":+/8AAQ:", "  :+/8AAQ==:\t"] {
            assert_eq!(
                from_header(&headers(&[ok]), &name).unwrap().der(),
                der,
                "{ok}"
            );
        }
        for bad in [
            &["+/8AAQ=="][..],
            &[":-_8AAQ:"],
            &["::"],
            &[":+/8AAQ==:", ":+/8AAQ==:"],
            &[],
        ] {
            assert!(from_header(&headers(bad), &name).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_mode_decides_as_documented() {
        let cert = ClientCertificate::new(vec![1, 2, 3]);
        let x5t = cert.thumbprint();
        let mut ext = http::Extensions::new();
        ext.insert(cert);
        let none = http::Extensions::new();
        let h = HeaderMap::new();
        let allowed = MtlsPolicy::new(MtlsMode::Allowed);
        let required = MtlsPolicy::new(MtlsMode::Required);
        assert!(allowed.check(Some(&x5t), &h, &ext).is_ok());
        assert!(allowed.check(None, &h, &none).is_ok());
        assert!(allowed.check(Some("other"), &h, &ext).is_err());
        assert!(allowed.check(Some(&x5t), &h, &none).is_err());
        assert!(matches!(
            required.check(None, &h, &ext),
            Err(AuthError::CertificateBindingRequired)
        ));
        // With a header configured, the extension is not read.
        let header = required.client_cert_header("Client-Cert").unwrap();
        assert!(header.check(Some(&x5t), &h, &ext).is_err());
    }
}
