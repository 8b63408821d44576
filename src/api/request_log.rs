//! One request id and one log line per request: the id comes from the caller's `x-request-id`
//! when it is well formed (so a proxy's id follows the request through), else it is made
//! here; it is echoed in the answer and carried by a `request` span whose fields (method,
//! route template, status, latency) every log line of the request inherits.

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;

use poem::http::header::HeaderValue;
use poem::http::HeaderMap;
use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing::field::Empty;
use tracing::{info, info_span, Instrument};

/// Header carrying the request id both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest caller id taken over; longer ones are replaced.
const MAX_ID_LEN: usize = 128;

/// The middleware; see the module documentation.
pub struct RequestLog;

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestLogEndpoint { inner }
    }
}

/// Endpoint wrapped by [`RequestLog`].
pub struct RequestLogEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    // Not an `async fn`: the future stores the inner request future once, next to a few
    // fields, instead of also keeping the request beside it (see `harden`).
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        let id = request_id(req.headers());
        let client = super::client_layer::client_of(&req).ip;
        let span = info_span!(
            "request",
            request_id = %id,
            method = %req.method(),
            path = %req.uri().path(),
            client = client.map(tracing::field::display),
            route = Empty,
            status = Empty,
            latency_ms = Empty,
        );
        let started = Instant::now();
        // Built inside the span too: a panic while the inner layers build their future is
        // logged with the request id.
        let answer = span
            .in_scope(|| self.inner.call(req))
            .instrument(span.clone());
        answer.map(move |result| {
            let mut resp = match result {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            };
            if let Some(PathPattern(route)) = resp.data::<PathPattern>() {
                span.record("route", route.as_ref());
            }
            span.record("status", resp.status().as_u16());
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            span.record("latency_ms", micros as f64 / 1000.0);
            span.in_scope(|| info!("request completed"));
            // The id's own buffer becomes the header's: no copy.
            if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(id)) {
                resp.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(resp)
        })
    }
}

/// The caller's id when well formed, else a new random one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(new_id, str::to_owned)
}

/// 1 to 128 characters of `A-Z a-z 0-9 . _ : -`: safe in headers and log lines alike.
fn is_well_formed(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// 128 random bits as 32 hex digits (by hand: `format!` took 2 % of a small request).
fn new_id() -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut bits = rand::random::<u128>();
    let mut id = [0_u8; 32];
    for digit in id.iter_mut().rev() {
        *digit = DIGITS[(bits & 0xf) as usize];
        bits >>= 4;
    }
    // ASCII digits only: the check cannot fail, and it is cheaper than pushing chars one by
    // one (measured: that cost as much as `format!`).
    std::str::from_utf8(&id).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_kept_only_when_well_formed() {
        for good in ["a", "req-1.2_3:x", &"x".repeat(128)] {
            assert!(is_well_formed(good), "{good}");
        }
        for bad in ["", &"x".repeat(129), "a b", "a\tb", "é", "a/b", "a\"b"] {
            assert!(!is_well_formed(bad), "{bad}");
        }
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(is_well_formed(&id));
        assert_ne!(id, new_id());
        // Every position carries random digits, all sixteen of them.
        let ids: Vec<String> = (0..64).map(|_| new_id()).collect();
        for position in [0, 15, 31] {
            let seen: std::collections::BTreeSet<u8> =
                ids.iter().map(|id| id.as_bytes()[position]).collect();
            assert!(seen.len() > 4, "position {position} took only {seen:?}");
        }
        let digits: std::collections::BTreeSet<char> = ids.concat().chars().collect();
        assert_eq!(digits.into_iter().collect::<String>(), "0123456789abcdef");
    }
}
