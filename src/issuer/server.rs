//! The issuer's HTTP side: the key set and discovery routes, with the
//! failures set on the issuer.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::task::Poll;
use std::time::Duration;

use ::axum::body::Body;
use ::axum::extract::State as AxumState;
use ::axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use tokio::net::TcpStream;

use super::{IssuerFailure, MAX_HUGE_BODY, Shared};

/// Which document a route serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Document {
    Jwks,
    Discovery,
}

pub(super) async fn jwks_route(AxumState(shared): AxumState<Arc<Shared>>) -> Response {
    shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    answer(&shared, Document::Jwks).await
}

pub(super) async fn discovery_route(AxumState(shared): AxumState<Arc<Shared>>) -> Response {
    shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
    answer(&shared, Document::Discovery).await
}

async fn answer(shared: &Shared, document: Document) -> Response {
    let failure = shared.lock().failure.clone();
    match failure {
        IssuerFailure::None => {}
        IssuerFailure::Slow(delay) => tokio::time::sleep(delay).await,
        IssuerFailure::Status(code) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| !s.is_informational())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return response(status, "text/plain; charset=utf-8", None, {
                format!("issuer failure: status {code}\n").into_bytes()
            });
        }
        IssuerFailure::InvalidJson => {
            let body = match document {
                Document::Jwks => r#"{"keys": ["#,
                Document::Discovery => r#"{"issuer": "#,
            };
            return response(StatusCode::OK, "application/json", None, body.into());
        }
        IssuerFailure::HugeBody(len) => {
            return response(
                StatusCode::OK,
                "application/json",
                None,
                huge_body(document, len),
            );
        }
    }
    // Read the state after any delay, so a slow answer shows the current keys.
    let (body, cache_control) = {
        let state = shared.lock();
        match document {
            Document::Jwks => (state.jwks_json(), state.cache_control.clone()),
            Document::Discovery => (shared.discovery_json(&state), None),
        }
    };
    let cache_control = cache_control.and_then(|v| HeaderValue::from_str(&v).ok());
    response(
        StatusCode::OK,
        "application/json",
        cache_control,
        body.into_bytes(),
    )
}

/// `len` bytes (at most [`MAX_HUGE_BODY`]) of a document that starts validly
/// and never closes.
fn huge_body(document: Document, len: usize) -> Vec<u8> {
    let len = len.min(MAX_HUGE_BODY);
    let prefix: &[u8] = match document {
        Document::Jwks => br#"{"keys":[{"kty":"RSA","kid":"huge","alg":"RS256","n":""#,
        Document::Discovery => br#"{"issuer":""#,
    };
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&prefix[..prefix.len().min(len)]);
    body.resize(len, b'A');
    body
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    cache_control: Option<HeaderValue>,
    body: Vec<u8>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(value) = cache_control {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The listening socket, shared so that [`Issuer::shutdown`] can close it
/// at once, from outside the server task.
pub(super) struct SharedListener {
    pub(super) shared: Arc<Shared>,
}

impl ::axum::serve::Listener for SharedListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            // The lock is only held inside `poll`, never across an await.
            let accepted = poll_fn(|cx| {
                let guard = self
                    .shared
                    .listener
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match guard.as_ref() {
                    Some(listener) => listener.poll_accept(cx),
                    // Closed: wait for the task to be aborted.
                    None => Poll::Pending,
                }
            })
            .await;
            match accepted {
                Ok(connection) => return connection,
                // Out of file descriptors and the like: back off and retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.shared.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_bodies_have_the_asked_length() {
        for len in [0, 1, 10, 100, 100_000] {
            assert_eq!(huge_body(Document::Jwks, len).len(), len);
            assert_eq!(huge_body(Document::Discovery, len).len(), len);
        }
        assert!(huge_body(Document::Jwks, 100).starts_with(br#"{"keys":["#));
    }
}
