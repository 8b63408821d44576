//! The `Allow` header on 405 answers (RFC 9110 §15.5.6): poem's router knows a path's methods
//! but does not say them, so this middleware looks them up in a table built from the same
//! sources as the routes (the OpenAPI operations and the pages).

use std::future::Future;

use futures_util::FutureExt;
use poem::http::header::{HeaderValue, ALLOW};
use poem::http::{Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::registry::MetaApi;
use tracing::warn;

/// Methods per path template (`/api/teams/{id}`; `{…}` or `:…` match one segment).
#[derive(Debug, Clone, Default)]
pub struct AllowTable {
    entries: Vec<(Vec<String>, Vec<Method>)>,
}

impl AllowTable {
    /// Adds `method` for `template`; `GET` brings `HEAD`, which poem answers for every `GET`.
    pub fn add(&mut self, template: &str, method: Method) {
        let segments = segments(template).map(str::to_owned).collect::<Vec<_>>();
        let index = match self.entries.iter().position(|(s, _)| *s == segments) {
            Some(index) => index,
            None => {
                self.entries.push((segments, Vec::new()));
                self.entries.len() - 1
            }
        };
        let methods = &mut self.entries[index].1;
        let with_head = if method == Method::GET {
            vec![Method::GET, Method::HEAD]
        } else {
            vec![method]
        };
        for m in with_head {
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
    }

    /// Adds every operation of `apis` (poem-openapi's metadata, what the spec lists).
    pub fn add_operations(&mut self, apis: Vec<MetaApi>) {
        for path in apis.into_iter().flat_map(|api| api.paths) {
            for operation in path.operations {
                self.add(&path.path, operation.method);
            }
        }
    }

    /// The methods of the template matching `path` that the router picks, as the `Allow`
    /// value: poem prefers a literal segment to a parameter, segment by segment
    /// (`/api/settings/search` over `/api/settings/:key`).
    pub fn allow(&self, path: &str) -> Option<String> {
        let wanted: Vec<&str> = segments(path).collect();
        self.entries
            .iter()
            .filter(|(template, _)| matches(template, &wanted))
            .max_by_key(|(template, _)| {
                template
                    .iter()
                    .map(|s| !is_parameter(s))
                    .collect::<Vec<bool>>()
            })
            .map(|(_, methods)| {
                methods
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
    }

    /// Every template, for tests that walk the routes.
    pub fn templates(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(segments, _)| format!("/{}", segments.join("/")))
            .collect()
    }
}

/// Path segments, ignoring a trailing slash (`/setup/` is `/setup`).
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn is_parameter(segment: &str) -> bool {
    (segment.starts_with('{') && segment.ends_with('}')) || segment.starts_with(':')
}

fn matches(template: &[String], path: &[&str]) -> bool {
    template.len() == path.len()
        && template
            .iter()
            .zip(path)
            .all(|(t, p)| t == p || is_parameter(t))
}

/// The middleware; see the module documentation.
pub struct AllowHeader(pub AllowTable);

impl<E: Endpoint> Middleware<E> for AllowHeader {
    type Output = AllowHeaderEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AllowHeaderEndpoint {
            inner,
            table: self.0.clone(),
        }
    }
}

/// Endpoint wrapped by [`AllowHeader`].
pub struct AllowHeaderEndpoint<E> {
    inner: E,
    table: AllowTable,
}

impl<E: Endpoint> Endpoint for AllowHeaderEndpoint<E> {
    type Output = Response;

    // Not an `async fn`, so the request is not stored beside the inner future (see `harden`).
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        // A clone shares the request's bytes: no copy of the path for the 405s.
        let uri = req.uri().clone();
        self.inner.call(req).map(move |result| {
            let path = uri.path();
            let mut resp = result?.into_response();
            if resp.status() == StatusCode::METHOD_NOT_ALLOWED
                && !resp.headers().contains_key(ALLOW)
            {
                match self
                    .table
                    .allow(path)
                    .and_then(|allow| HeaderValue::from_str(&allow).ok())
                {
                    Some(value) => {
                        resp.headers_mut().insert(ALLOW, value);
                    }
                    None => warn!(path, "405 for a path missing from the Allow table"),
                }
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_by_segment_and_get_brings_head() {
        let mut table = AllowTable::default();
        table.add("/api/teams/{id}", Method::GET);
        table.add("/api/teams/{id}", Method::DELETE);
        table.add("/setup", Method::GET);
        table.add("/", Method::GET);
        assert_eq!(
            table.allow("/api/teams/42").as_deref(),
            Some("GET, HEAD, DELETE")
        );
        assert_eq!(table.allow("/setup/").as_deref(), Some("GET, HEAD"));
        assert_eq!(table.allow("/").as_deref(), Some("GET, HEAD"));
        assert_eq!(table.allow("/api/teams"), None);
        assert_eq!(table.allow("/api/teams/42/x"), None);
    }
}
