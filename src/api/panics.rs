//! A handler that panics answers a JSON 500 ([`super::error::panic_response`]) and the
//! server goes on; the connection is not dropped without an answer.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

/// The middleware; see the module documentation. Unlike poem's `CatchPanic`, its future is
/// the inner one and a flag, with no copy of the request beside it (see `harden`).
pub struct PanicsAsJson;

impl<E: Endpoint> Middleware<E> for PanicsAsJson {
    type Output = PanicsAsJsonEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        PanicsAsJsonEndpoint { inner }
    }
}

/// Endpoint wrapped by [`PanicsAsJson`].
pub struct PanicsAsJsonEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for PanicsAsJsonEndpoint<E> {
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        // A panic while the inner layers build their future is caught too.
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(answer) => {
                futures_util::future::Either::Left(AssertUnwindSafe(answer).catch_unwind().map(
                    |caught| match caught {
                        Ok(result) => result.map(IntoResponse::into_response),
                        Err(payload) => Ok(super::error::panic_response(payload)),
                    },
                ))
            }
            // Answered when polled, so the panic is logged inside the request's span.
            Err(payload) => {
                futures_util::future::Either::Right(futures_util::future::lazy(move |_| {
                    Ok(super::error::panic_response(payload))
                }))
            }
        }
    }
}
