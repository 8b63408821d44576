//! Refuses state-changing requests that a browser sent with our cookies from another site.
//! `SameSite=Lax` keeps the session cookie off other sites' form posts, but not with
//! `SESSION_COOKIE_SAMESITE=none` (a frontend on another site), and body-less POSTs (sign
//! out, batch cancel) need no JSON that would force a preflight. So every POST, PUT, PATCH
//! and DELETE that carries a `session` or setup-grant cookie must come from this server's
//! own origin or an allowed frontend origin, as its `Origin` (or else `Referer`) says.
//! Requests with neither header (curl, scripts, server-to-server) pass: a browser always
//! sends one of them on such a request.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::FutureExt;
use poem::http::{header, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::client_layer::client_of;
use super::error::{json_response, ErrorBody};
use super::session_cookie::has_cookie;
use crate::net::{normalize_origin, split_authority, AllowedOrigins};

/// The middleware, with the frontend origins allowed besides our own.
pub struct CrossSiteCheck(pub Arc<AllowedOrigins>);

impl<E: Endpoint> Middleware<E> for CrossSiteCheck {
    type Output = CrossSiteEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CrossSiteEndpoint {
            inner,
            allowed: self.0.clone(),
        }
    }
}

/// Endpoint wrapped by [`CrossSiteCheck`].
pub struct CrossSiteEndpoint<E> {
    inner: E,
    allowed: Arc<AllowedOrigins>,
}

impl<E: Endpoint> Endpoint for CrossSiteEndpoint<E> {
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        match refused_origin(&req, &self.allowed) {
            None => Either::Left(
                self.inner
                    .call(req)
                    .map(|r| r.map(IntoResponse::into_response)),
            ),
            Some(origin) => {
                tracing::warn!(origin = %origin, "cross-site request refused");
                let body = ErrorBody::new(
                    "Forbidden",
                    format!(
                        "Cross-site request refused: {origin} is neither this server nor an allowed frontend origin (DEPLOYSTACK_FRONTEND_URL)."
                    ),
                );
                Either::Right(std::future::ready(Ok(json_response(
                    StatusCode::FORBIDDEN,
                    &body,
                ))))
            }
        }
    }
}

/// The origin a cookie-carrying state-changing request came from, when it is not allowed.
fn refused_origin(req: &Request, allowed: &AllowedOrigins) -> Option<String> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    if !has_cookie(req, crate::auth::COOKIE_NAME) && !has_cookie(req, crate::auth::GRANT_COOKIE) {
        return None;
    }
    let header_text = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin = match (header_text(header::ORIGIN), header_text(header::REFERER)) {
        (Some(origin), _) => origin.to_owned(),
        (None, Some(referer)) => normalize_origin(referer).unwrap_or_else(|| referer.to_owned()),
        (None, None) => return None,
    };
    if allowed.allows(&origin) || is_own_origin(req, &origin) {
        return None;
    }
    Some(origin.chars().take(200).collect())
}

/// Whether `origin` names the host and port this request was sent to (`Host`, or a trusted
/// proxy's `X-Forwarded-Host`). A `Host` without a port matches the origin's default port.
fn is_own_origin(req: &Request, origin: &str) -> bool {
    let Some(origin) = normalize_origin(origin) else {
        return false;
    };
    let forwarded = client_of(req)
        .via_proxy
        .then(|| req.headers().get("x-forwarded-host"))
        .flatten();
    let Some(host) = forwarded
        .or_else(|| req.headers().get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return false;
    };
    let (scheme, authority) = origin.split_once("://").unwrap_or_default();
    let default_port = if scheme == "https" { "443" } else { "80" };
    let (Some((origin_host, origin_port)), Some((host, port))) =
        (split_authority(authority), split_authority(&host))
    else {
        return false;
    };
    origin_host == host
        && match port {
            Some(p) => p == origin_port.unwrap_or(default_port),
            None => origin_port.is_none(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.finish()
    }

    #[test]
    fn only_cookie_carrying_writes_from_foreign_origins_are_refused() {
        let allowed = AllowedOrigins::parse("https://app.example.com").expect("valid");
        let refused = |method: Method, headers: &[(&str, &str)]| {
            refused_origin(&request(method, headers), &allowed).is_some()
        };
        let cookie = ("cookie", "session=abc");
        let host = ("host", "api.example.com");
        assert!(refused(
            Method::POST,
            &[cookie, host, ("origin", "https://evil.io")]
        ));
        assert!(refused(
            Method::DELETE,
            &[cookie, host, ("referer", "https://evil.io/page")]
        ));
        assert!(refused(Method::POST, &[cookie, host, ("origin", "null")]));
        assert!(!refused(
            Method::POST,
            &[cookie, host, ("origin", "https://app.example.com")]
        ));
        assert!(!refused(
            Method::POST,
            &[cookie, host, ("origin", "https://api.example.com")]
        ));
        assert!(!refused(
            Method::POST,
            &[
                cookie,
                ("host", "api.example.com:443"),
                ("origin", "https://api.example.com")
            ]
        ));
        assert!(refused(
            Method::POST,
            &[
                cookie,
                ("host", "api.example.com:8443"),
                ("origin", "https://api.example.com")
            ]
        ));
        assert!(!refused(
            Method::POST,
            &[
                cookie,
                ("host", "localhost:3000"),
                ("origin", "http://localhost:3000")
            ]
        ));
        assert!(refused(
            Method::POST,
            &[
                cookie,
                ("host", "localhost:3001"),
                ("origin", "http://localhost:3002")
            ]
        ));
        // No cookie of ours, a safe method, or no origin at all: not a browser acting for a
        // signed-in user.
        assert!(!refused(
            Method::POST,
            &[("cookie", "theme=x"), host, ("origin", "https://evil.io")]
        ));
        assert!(!refused(
            Method::GET,
            &[cookie, host, ("origin", "https://evil.io")]
        ));
        assert!(!refused(Method::POST, &[cookie, host]));
        // A forwarded host is believed only from a trusted proxy.
        assert!(refused(
            Method::POST,
            &[
                cookie,
                host,
                ("x-forwarded-host", "evil.io"),
                ("origin", "https://evil.io")
            ]
        ));
    }
}
