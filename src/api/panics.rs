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

#[cfg(test)]
mod tests {
    use poem::http::StatusCode;
    use poem::http::Uri;
    use poem::EndpointExt;

    use super::*;

    /// Panics at `/now` while building its future, at `/later` while it is polled.
    struct Panicky;

    impl Endpoint for Panicky {
        type Output = Response;

        fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
            let path = req.uri().path().to_owned();
            assert_ne!(path, "/now", "panics while building the future");
            futures_util::future::lazy(move |_| {
                assert_ne!(path, "/later", "panics while polled");
                Ok(Response::builder().body("fine"))
            })
        }
    }

    #[tokio::test]
    async fn panics_answer_json_500_whenever_they_happen() {
        let ep = Panicky.with(PanicsAsJson);
        for (path, status) in [
            ("/now", StatusCode::INTERNAL_SERVER_ERROR),
            ("/later", StatusCode::INTERNAL_SERVER_ERROR),
            ("/fine", StatusCode::OK),
        ] {
            let req = Request::builder().uri(Uri::from_static(path)).finish();
            let resp = ep.get_response(req).await;
            assert_eq!(resp.status(), status, "{path}");
            let body = resp.into_body().into_string().await.unwrap_or_default();
            if status == StatusCode::OK {
                assert_eq!(body, "fine");
            } else {
                assert!(
                    body.contains("\"error\":\"Internal server error\""),
                    "{body}"
                );
            }
        }
    }
}
