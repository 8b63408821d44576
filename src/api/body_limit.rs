//! Rejects request bodies over a size limit with 413, whether or not the client announced
//! the size: a declared `Content-Length` is checked before reading, a chunked body is read
//! up to the limit and no further.

use poem::error::ReadBodyError;
use poem::http::StatusCode;
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::error::{json_response, ErrorBody};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The middleware; see the module documentation.
pub struct BodyLimit(pub usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            limit: self.0,
        }
    }
}

/// Endpoint wrapped by [`BodyLimit`].
pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: usize,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        let declared = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len > self.limit as u64 => return Ok(too_large(self.limit)),
            Some(_) => {}
            None => {
                let body = req.take_body();
                if !body.is_empty() {
                    match body.into_bytes_limit(self.limit).await {
                        Ok(bytes) => req.set_body(Body::from_bytes(bytes)),
                        Err(ReadBodyError::PayloadTooLarge) => return Ok(too_large(self.limit)),
                        Err(e) => {
                            return Ok(json_response(
                                StatusCode::BAD_REQUEST,
                                &ErrorBody::new(
                                    "Bad Request",
                                    format!("cannot read the request body: {e}"),
                                ),
                            ))
                        }
                    }
                }
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

fn too_large(limit: usize) -> Response {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &ErrorBody::new(
            "Payload Too Large",
            format!("The request body exceeds the limit of {limit} bytes."),
        ),
    )
}
