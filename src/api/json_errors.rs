//! Every error poem or a handler returns becomes a JSON answer (see [`super::error`]): poem's
//! own rejections (404, 405, a malformed body) are plain text otherwise.

use std::future::Future;

use futures_util::FutureExt;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// The middleware; see the module documentation.
pub struct JsonErrors;

impl<E: Endpoint> Middleware<E> for JsonErrors {
    type Output = JsonErrorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        JsonErrorsEndpoint { inner }
    }
}

/// Endpoint wrapped by [`JsonErrors`].
pub struct JsonErrorsEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for JsonErrorsEndpoint<E> {
    type Output = Response;

    // Not an `async fn` (as poem's `catch_all_error` is): no state of its own beside the
    // inner future, which every layer above moves (see `harden`).
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        self.inner.call(req).map(|result| {
            Ok(match result {
                Ok(resp) => resp.into_response(),
                Err(err) => super::error::to_json_response(err),
            })
        })
    }
}
