//! `Cache-Control: no-store` on every `/api` answer that does not say otherwise: answers
//! carry accounts, sessions and settings (revealed secrets among them), which a shared or
//! browser cache must not keep for the next person at the machine.

use std::future::Future;

use futures_util::FutureExt;
use poem::http::header::{HeaderValue, CACHE_CONTROL};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// The middleware; see the module documentation.
pub struct NoStore;

impl<E: Endpoint> Middleware<E> for NoStore {
    type Output = NoStoreEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        NoStoreEndpoint { inner }
    }
}

/// Endpoint wrapped by [`NoStore`].
pub struct NoStoreEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for NoStoreEndpoint<E> {
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        let api = req.uri().path().starts_with("/api/");
        self.inner.call(req).map(move |result| {
            let mut resp = result?.into_response();
            if api && !resp.headers().contains_key(CACHE_CONTROL) {
                resp.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            Ok(resp)
        })
    }
}
