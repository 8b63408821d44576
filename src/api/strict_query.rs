//! Refuses a query string that names a parameter twice: poem takes the first, a proxy or a
//! log reader may take the last, and `?reveal=true&reveal=false` must not mean one thing to
//! a reviewer and another to us.

use std::collections::HashSet;
use std::future::Future;

use futures_util::future::Either;
use futures_util::FutureExt;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::error::{json_response, ErrorBody};

/// The middleware; see the module documentation.
pub struct StrictQuery;

impl<E: Endpoint> Middleware<E> for StrictQuery {
    type Output = StrictQueryEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        StrictQueryEndpoint { inner }
    }
}

/// Endpoint wrapped by [`StrictQuery`].
pub struct StrictQueryEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for StrictQueryEndpoint<E> {
    type Output = Response;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        match req.uri().query().and_then(repeated) {
            None => Either::Left(
                self.inner
                    .call(req)
                    .map(|r| r.map(IntoResponse::into_response)),
            ),
            Some(name) => {
                let body = ErrorBody::new(
                    "Bad Request",
                    format!("The query parameter `{name}` is given more than once."),
                );
                Either::Right(std::future::ready(Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &body,
                ))))
            }
        }
    }
}

/// The first parameter name `query` holds twice (decoded, at most 60 characters shown).
fn repeated(query: &str) -> Option<String> {
    let mut seen = HashSet::new();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .map(|name| {
            let plus_as_space = name.replace('+', " ");
            percent_decode(&plus_as_space)
        })
        .find(|name| !seen.insert(name.clone()))
        .map(|name| name.chars().take(60).collect())
}

/// `%XX` decoded; invalid escapes kept as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_named_twice_is_found_however_it_is_spelled() {
        assert_eq!(
            repeated("reveal=true&reveal=false").as_deref(),
            Some("reveal")
        );
        assert_eq!(repeated("re%76eal=true&reveal").as_deref(), Some("reveal"));
        assert_eq!(repeated("a+b=1&a%20b=2").as_deref(), Some("a b"));
        assert_eq!(repeated("a=1&b=2&c"), None);
        assert_eq!(repeated("a=1&&b=1"), None);
        assert_eq!(repeated("%zz=1&%zz=2").as_deref(), Some("%zz"));
    }
}
