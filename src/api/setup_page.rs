//! The setup wizard at `/setup`: a small page (HTML, CSS, JS embedded in the binary, no CDN,
//! no build step) that reads `/api/db/status` and runs `POST /api/db/setup`.

use poem::endpoint::BoxEndpoint;
use poem::http::header;
use poem::web::Html;
use poem::{handler, EndpointExt, IntoResponse, Response};

use super::Page;

const INDEX_HTML: &str = include_str!("../../web/setup/index.html");
const SETUP_JS: &str = include_str!("../../web/setup/setup.js");
const SETUP_CSS: &str = include_str!("../../web/setup/setup.css");

/// Only our own assets may load, and the page may not be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page (also at `/setup/`, as before) and its assets.
pub fn pages() -> Vec<Page> {
    fn page(ep: impl poem::Endpoint<Output = Response> + 'static) -> BoxEndpoint<'static> {
        ep.boxed()
    }
    vec![
        ("/setup", || page(index)),
        ("/setup/", || page(index)),
        ("/setup/setup.js", || page(script)),
        ("/setup/setup.css", || page(style)),
    ]
}

fn with_headers(resp: impl IntoResponse, content_type: Option<&'static str>) -> Response {
    let mut resp = resp.into_response();
    let headers = resp.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
    }
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    resp
}

#[handler]
fn index() -> Response {
    with_headers(Html(INDEX_HTML), None)
}

#[handler]
fn script() -> Response {
    with_headers(SETUP_JS, Some("text/javascript; charset=utf-8"))
}

#[handler]
fn style() -> Response {
    with_headers(SETUP_CSS, Some("text/css; charset=utf-8"))
}
