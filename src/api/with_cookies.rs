//! An answer with more `Set-Cookie` headers than its declared one: poem-openapi writes each
//! declared header once (`insert`), and a sign-in sets the session and the device cookie.

use poem::http::header::{HeaderValue, SET_COOKIE};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::ApiResponse;

/// `R`, plus the `Set-Cookie` values in `.1` appended after its own.
pub struct WithCookies<R>(pub R, pub Vec<String>);

impl<R: ApiResponse> ApiResponse for WithCookies<R> {
    const BAD_REQUEST_HANDLER: bool = R::BAD_REQUEST_HANDLER;

    fn meta() -> MetaResponses {
        R::meta()
    }

    fn register(registry: &mut Registry) {
        R::register(registry);
    }

    fn from_parse_request_error(err: poem::Error) -> Self {
        Self(R::from_parse_request_error(err), Vec::new())
    }
}

impl<R: IntoResponse> IntoResponse for WithCookies<R> {
    fn into_response(self) -> Response {
        let mut resp = self.0.into_response();
        for cookie in self.1 {
            // Our own cookie strings: always valid header values.
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(SET_COOKIE, value);
            }
        }
        resp
    }
}
