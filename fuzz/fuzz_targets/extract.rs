//! Token extraction through the public layer: arbitrary `Authorization`,
//! `Cookie` and custom header values. Only 400 or 401 may come back.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::{Algorithm, JwtAuthLayer, Key, TokenSource, Verifier};
use tower_layer::Layer;
use tower_service::Service;

fn layer() -> &'static JwtAuthLayer {
    static L: OnceLock<JwtAuthLayer> = OnceLock::new();
    L.get_or_init(|| {
        let v = Verifier::builder()
            .key(Key::hmac(Algorithm::HS256, [7u8; 32]).unwrap())
            .any_audience()
            .build()
            .unwrap();
        JwtAuthLayer::new(v).sources([
            TokenSource::Bearer,
            TokenSource::cookie("access_token"),
            TokenSource::header(HeaderName::from_static("x-token")),
        ])
    })
}

#[derive(Clone)]
struct Ok200;

impl Service<Request<()>> for Ok200 {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(String::new())))
    }
}

fuzz_target!(|data: &[u8]| {
    let names = [
        http::header::AUTHORIZATION,
        http::header::COOKIE,
        HeaderName::from_static("x-token"),
    ];
    let mut req = Request::builder().uri("/");
    // Each chunk separated by \n is one header; its first byte picks the name.
    for chunk in data.split(|b| *b == b'\n').take(6) {
        let Some((&sel, value)) = chunk.split_first() else { continue };
        if let Ok(v) = HeaderValue::from_bytes(value) {
            req = req.header(&names[sel as usize % names.len()], v);
        }
    }
    let Ok(req) = req.body(()) else { return };
    let mut svc = layer().layer(Ok200);
    let mut fut = pin!(svc.call(req));
    // Static keys: the answer is ready at once, no runtime needed.
    let Poll::Ready(res) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("a static-key layer must answer at once");
    };
    let status = res.unwrap().status();
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
        "{status}"
    );
});
