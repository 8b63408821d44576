//! CORS for the web frontend served from another origin (upstream's `@fastify/cors` with
//! `credentials: true`): a request whose `Origin` is allowed (`DEPLOYSTACK_FRONTEND_URL` and
//! upstream's local development origins) gets that exact origin back with
//! `Access-Control-Allow-Credentials: true` on every answer, errors included, and its
//! preflight is answered 204 here, before routing. Other origins get no CORS header (the
//! browser then keeps the answer from the page); a preflight from one is refused with 403.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::FutureExt;
use poem::http::header::{self, HeaderValue};
use poem::http::{Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::error::{json_response, ErrorBody};
use crate::net::AllowedOrigins;

/// Methods a preflight may ask for.
const METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a preflight may ask for (compared in lower case).
const HEADERS: [&str; 4] = [
    "content-type",
    "authorization",
    "x-request-id",
    "x-deploystack-lsn",
];
/// Response headers a page may read besides the simple ones.
const EXPOSED: &str = "x-request-id, retry-after, x-deploystack-lsn";
/// How long a browser may reuse a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The middleware, with the allowed origins.
pub struct Cors(pub Arc<AllowedOrigins>);

impl<E: Endpoint> Middleware<E> for Cors {
    type Output = CorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CorsEndpoint {
            inner,
            allowed: self.0.clone(),
        }
    }
}

/// Endpoint wrapped by [`Cors`].
pub struct CorsEndpoint<E> {
    inner: E,
    allowed: Arc<AllowedOrigins>,
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    // A request without `Origin` (same-origin GETs, curl) keeps the inner future unboxed;
    // one with it pays for a boxed future holding the origin (see `harden`).
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
            return Either::Left(self.inner.call(req).map(|result| {
                let mut resp = result?.into_response();
                resp.headers_mut()
                    .append(header::VARY, HeaderValue::from_static("Origin"));
                Ok(resp)
            }));
        };
        let allowed = origin.to_str().is_ok_and(|o| self.allowed.allows(o));
        let origin = allowed.then_some(origin);
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            let answer = answer_preflight(&req, origin);
            return Either::Right(Box::pin(std::future::ready(Ok(answer)))
                as std::pin::Pin<Box<dyn Future<Output = Result<Response>> + Send + '_>>);
        }
        Either::Right(Box::pin(self.inner.call(req).map(move |result| {
            let mut resp = result?.into_response();
            let headers = resp.headers_mut();
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = origin {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
                headers.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(EXPOSED),
                );
            }
            Ok(resp)
        })))
    }
}

/// 204 with the grants for an allowed origin asking for allowed headers; 403 otherwise.
fn answer_preflight(req: &Request, origin: Option<HeaderValue>) -> Response {
    let refused = |message: String| {
        let mut resp = json_response(StatusCode::FORBIDDEN, &ErrorBody::new("Forbidden", message));
        resp.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        resp
    };
    let Some(origin) = origin else {
        return refused(
            "This origin may not call the API from a browser: add it to DEPLOYSTACK_FRONTEND_URL."
                .into(),
        );
    };
    let asked = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let asked: Vec<&str> = asked
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if let Some(other) = asked.iter().find(|h| !HEADERS.contains(h)) {
        return refused(format!("The request header `{other}` is not allowed."));
    }
    let mut resp = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)
        .header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, METHODS)
        .header(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE)
        .header(header::VARY, "Origin, Access-Control-Request-Headers")
        .finish();
    if !asked.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&asked.join(", ")) {
            resp.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::endpoint::make_sync;
    use poem::EndpointExt;

    fn endpoint() -> impl Endpoint<Output = Response> {
        let allowed = AllowedOrigins::parse("https://app.example.com").expect("valid");
        make_sync(|_| "ok").with(Cors(Arc::new(allowed)))
    }

    async fn call(method: Method, headers: &[(&str, &str)]) -> Response {
        let mut builder = Request::builder().method(method).uri_str("/api/users/me");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        endpoint().call(builder.finish()).await.expect("answer")
    }

    #[tokio::test]
    async fn an_allowed_origin_gets_itself_back_with_credentials() {
        let resp = call(Method::GET, &[("origin", "https://app.example.com")]).await;
        assert_eq!(
            resp.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(resp.headers()["access-control-allow-credentials"], "true");
        assert_eq!(resp.headers()["vary"], "Origin");
        let resp = call(Method::GET, &[("origin", "https://evil.example")]).await;
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        assert_eq!(resp.headers()["vary"], "Origin");
    }

    #[tokio::test]
    async fn preflights_are_answered_before_routing() {
        let resp = call(
            Method::OPTIONS,
            &[
                ("origin", "http://localhost:5173"),
                ("access-control-request-method", "PATCH"),
                ("access-control-request-headers", "Content-Type"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            resp.headers()["access-control-allow-origin"],
            "http://localhost:5173"
        );
        assert_eq!(
            resp.headers()["access-control-allow-headers"],
            "content-type"
        );
        assert!(resp.headers()["access-control-allow-methods"]
            .to_str()
            .is_ok_and(|m| m.contains("PATCH")));
        let resp = call(
            Method::OPTIONS,
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = call(
            Method::OPTIONS,
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-secret"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
}
