//! The core's OpenAPI operations mounted straight into the server's routing table.
//!
//! `OpenApiService::into_endpoint` builds a routing table of its own, wrapped in three layers,
//! that the server's table would nest: every request then crossed two tables and five layers,
//! each moving the request and boxing a future, before reaching its handler. Mounting each
//! operation where the pages and plugins are is what poem-openapi does inside, minus the
//! second table.

use std::collections::HashMap;
use std::future::Future;

use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::{Endpoint, Request, Response, Result, Route, RouteMethod};
use poem_openapi::OpenApi;

/// Adds `operations` to `route`, each seeing `state` (and nothing else does). Generic over
/// the state so the tests can mount operations of their own.
pub fn mount<T, S>(mut route: Route, operations: T, state: &S) -> Route
where
    T: OpenApi,
    S: Clone + Send + Sync + 'static,
{
    let mut table = HashMap::new();
    operations.add_routes(&mut table);
    for (path, endpoints) in table {
        let methods =
            endpoints
                .into_iter()
                .fold(RouteMethod::new(), |methods, (method, operation)| {
                    let ep = WithState {
                        operation,
                        state: state.clone(),
                    };
                    methods.method(method, ep)
                });
        route = route.at(path, methods);
    }
    route
}

/// An operation and what it needs in the request: the state, and the query string where
/// poem-openapi's own table would have put it (query parameters and API-key schemes, hidden
/// operations' included, look for it there and panic without it). Not poem's `data` and
/// `before`, whose `async fn`s keep a copy of the request in their futures (see
/// `super::boxed`).
struct WithState<S> {
    operation: BoxEndpoint<'static>,
    state: S,
}

impl<S: Clone + Send + Sync + 'static> Endpoint for WithState<S> {
    type Output = Response;

    fn call(&self, mut req: Request) -> impl Future<Output = Result<Response>> + Send {
        // No query string: an empty list, which allocates nothing to build.
        let pairs: Vec<(String, String)> = match req.uri().query() {
            Some(_) => req.params().unwrap_or_default(),
            None => Vec::new(),
        };
        req.extensions_mut()
            .insert(poem_openapi::__private::UrlQuery(pairs));
        req.extensions_mut().insert(self.state.clone());
        DynEndpoint::call(&*self.operation, req)
    }
}

#[cfg(test)]
mod tests {
    use poem::http::{Method, StatusCode};
    use poem::web::Data;
    use poem_openapi::param::{Path, Query};
    use poem_openapi::payload::PlainText;

    use super::*;

    struct Greetings;

    #[poem_openapi::OpenApi]
    impl Greetings {
        #[oai(path = "/hello/:name", method = "get")]
        async fn hello(
            &self,
            name: Path<String>,
            punctuation: Query<Option<String>>,
            greeting: Data<&String>,
        ) -> PlainText<String> {
            let mark = punctuation.0.unwrap_or_default();
            PlainText(format!("{} {}{mark}", greeting.0, name.0))
        }

        #[oai(path = "/hello/:name", method = "delete")]
        async fn bye(&self, name: Path<String>) -> PlainText<String> {
            PlainText(format!("bye {}", name.0))
        }
    }

    async fn send(route: &Route, method: Method, uri: &'static str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(poem::http::Uri::from_static(uri))
            .finish();
        let resp = route.get_response(req).await;
        let status = resp.status();
        let text = resp.into_body().into_string().await.unwrap_or_default();
        (status, text)
    }

    /// Mounted operations get their state, path and query parameters, and the methods they
    /// do not answer are refused as poem-openapi's own table refuses them.
    #[tokio::test]
    async fn mounted_operations_answer_as_in_their_own_table() {
        let route = mount(Route::new(), Greetings, &"hello".to_string());
        let ok = StatusCode::OK;
        let cases = [
            (
                Method::GET,
                "/hello/world?punctuation=!",
                ok,
                "hello world!",
            ),
            (Method::GET, "/hello/world", ok, "hello world"),
            (Method::DELETE, "/hello/you", ok, "bye you"),
        ];
        for (method, uri, status, text) in cases {
            assert_eq!(send(&route, method, uri).await, (status, text.to_string()));
        }
        let (status, _) = send(&route, Method::PUT, "/hello/you").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = send(&route, Method::GET, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// poem-openapi's own table refused duplicate operation ids at start; mounting the
    /// operations ourselves, this is where they are checked.
    #[test]
    fn the_core_operation_ids_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for api in <crate::api::Operations as OpenApi>::meta() {
            for path in api.paths {
                for op in path.operations {
                    let id = op.operation_id.unwrap_or_default();
                    assert!(seen.insert(id), "operation id {id} is used twice");
                }
            }
        }
    }
}
