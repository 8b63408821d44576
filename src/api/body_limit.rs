//! Rejects request bodies over a size limit with 413, whether or not the client announced
//! the size: a declared `Content-Length` is checked before reading, a chunked body is read
//! up to the limit and no further.

use std::time::Duration;

use std::future::Future;

use futures_util::future::Either;
use futures_util::{FutureExt, Stream, StreamExt};
use poem::http::StatusCode;
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::error::{json_response, ErrorBody};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of an oversized body is read and discarded, as a multiple of the limit.
const DRAIN_FACTOR: usize = 4;
/// How long an oversized body is drained at most.
const DRAIN_TIME: Duration = Duration::from_secs(2);

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

    // Not an `async fn`: a request whose body needs no reading here (declared within the
    // limit, or empty) goes straight to the inner endpoint, and only the others pay for a
    // boxed future that can read it (see `harden`).
    fn call(&self, mut req: Request) -> impl Future<Output = Result<Response>> + Send {
        let declared = declared_length(&req);
        let body = req.take_body();
        let empty = body.is_empty();
        req.set_body(body);
        if declared.is_some_and(|len| len <= self.limit as u64) || (declared.is_none() && empty) {
            return Either::Left(
                self.inner
                    .call(req)
                    .map(|r| r.map(IntoResponse::into_response)),
            );
        }
        Either::Right(Box::pin(self.checked(req)))
    }
}

impl<E: Endpoint> BodyLimitEndpoint<E> {
    async fn checked(&self, mut req: Request) -> Result<Response> {
        let declared = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len > self.limit as u64 => {
                drain(req.take_body().into_bytes_stream(), self.limit).await;
                return Ok(too_large(self.limit));
            }
            Some(_) => {}
            None => {
                let body = req.take_body();
                if !body.is_empty() {
                    let mut stream = std::pin::pin!(body.into_bytes_stream());
                    let mut buffer = Vec::new();
                    while let Some(chunk) = stream.next().await {
                        let chunk = match chunk {
                            Ok(chunk) => chunk,
                            Err(e) => return Ok(unreadable(&e)),
                        };
                        if buffer.len() + chunk.len() > self.limit {
                            drain(stream, self.limit).await;
                            return Ok(too_large(self.limit));
                        }
                        buffer.extend_from_slice(&chunk);
                    }
                    req.set_body(Body::from_vec(buffer));
                }
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// The `Content-Length` the client announced, when readable.
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads and discards what the client is still sending (up to a few times the limit, for a
/// moment), so it reads our 413 instead of a connection reset; larger bodies are cut off.
async fn drain<B: AsRef<[u8]>>(stream: impl Stream<Item = std::io::Result<B>>, limit: usize) {
    let mut stream = std::pin::pin!(stream);
    let budget = limit.saturating_mul(DRAIN_FACTOR);
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.as_ref().len();
            if seen > budget {
                break;
            }
        }
    })
    .await;
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

fn unreadable(e: &std::io::Error) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &ErrorBody::new("Bad Request", format!("cannot read the request body: {e}")),
    )
}
