//! The `session` cookie as a poem-openapi security scheme: declared in the document (so the
//! Swagger UI shows the protected operations, and a browser that signed in there sends the
//! cookie with its tries), read straight from the `Cookie` header. poem-openapi's own
//! cookie `ApiKey` needs poem's `CookieJarManager` on every request, which parses every
//! cookie into a shared jar even for requests that never look at one.

use poem::http::header;
use poem::{Request, RequestBody, Result};
use poem_openapi::error::AuthorizationError;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::auth::COOKIE_NAME;

/// Name of the scheme in the document.
const SCHEME: &str = "SessionCookie";

/// The session token a request carries; `Debug` hides it.
pub struct SessionCookie(pub String);

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookie(..)")
    }
}

/// The value of cookie `name` in `req`'s `Cookie` headers; `None` when it is absent or
/// given more than once. Two cookies of one name come from two scopes (a sibling subdomain
/// can set one for the parent domain): taking either would let that other site choose the
/// session, or sign the user out.
pub fn cookie_value<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    let mut found = cookies(req).filter(|(key, _)| *key == name);
    let (_, value) = found.next()?;
    found.next().is_none().then(|| value.trim_matches('"'))
}

/// Whether `req` carries a cookie `name` (once or more).
pub fn has_cookie(req: &Request, name: &str) -> bool {
    cookies(req).any(|(key, _)| key == name)
}

fn cookies(req: &Request) -> impl Iterator<Item = (&str, &str)> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

impl<'a> ApiExtractor<'a> for SessionCookie {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "The `session` cookie set by `POST /api/auth/email/login` or `/register` \
                     (HttpOnly). In this page, sign in with that operation first: the browser \
                     then sends the cookie with every try.",
                ),
                name: Some(COOKIE_NAME),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        cookie_value(request, COOKIE_NAME)
            .filter(|v| !v.is_empty())
            .map(|v| Self(v.to_owned()))
            .ok_or_else(|| AuthorizationError.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_among_other_cookies() {
        let req = Request::builder()
            .header(header::COOKIE, "theme=dark; session=abc; other=x")
            .finish();
        assert_eq!(cookie_value(&req, "session"), Some("abc"));
        let req = Request::builder()
            .header(header::COOKIE, "a=1")
            .header(header::COOKIE, "session=\"q\"")
            .finish();
        assert_eq!(cookie_value(&req, "session"), Some("q"));
        let req = Request::builder()
            .header(header::COOKIE, "sessions=x")
            .finish();
        assert_eq!(cookie_value(&req, "session"), None);
        assert!(!has_cookie(&req, "session"));
    }

    #[test]
    fn a_cookie_given_twice_is_no_cookie() {
        let req = Request::builder()
            .header(header::COOKIE, "session=junk; session=abc")
            .finish();
        assert_eq!(cookie_value(&req, "session"), None);
        assert!(has_cookie(&req, "session"));
        let req = Request::builder()
            .header(header::COOKIE, "session=abc")
            .header(header::COOKIE, "session=abc")
            .finish();
        assert_eq!(cookie_value(&req, "session"), None);
    }
}
