//! An endpoint whose request future lives in a box of its own.
//!
//! Each layer around an endpoint holds the inner future by value, and building the request's
//! future moves it once per layer: a 2 KB routing future under eight layers was copied eight
//! times per request. Boxed at the bottom, the layers above move a pointer. poem's own
//! `EndpointExt::boxed` does not help here: its `call` is an `async fn` whose future keeps a
//! copy of the request (1 KB).

use std::future::Future;

use futures_util::FutureExt;
use poem::{Endpoint, IntoResponse, Request, Response, Result};

/// See the module documentation.
pub struct Boxed<E>(pub E);

impl<E: Endpoint> Endpoint for Boxed<E> {
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        Box::pin(
            self.0
                .call(req)
                .map(|result| result.map(IntoResponse::into_response)),
        )
    }
}
