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
use poem_openapi::registry::MetaParamIn;
use poem_openapi::OpenApi;

/// Adds `operations` to `route`, each seeing `state` (and nothing else does). Generic over
/// the state so the tests can mount operations of their own.
pub fn mount<T, S>(mut route: Route, operations: T, state: &S) -> Route
where
    T: OpenApi,
    S: Clone + Send + Sync + 'static,
{
    let reads_query = reads_query::<T>();
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
                        reads_query,
                    };
                    methods.method(method, ep)
                });
        route = route.at(path, methods);
    }
    route
}

/// An operation and what it needs in the request: the state, and the query string where
/// poem-openapi's own table would have put it. Not poem's `data` and `before`, whose `async
/// fn`s keep a copy of the request in their futures (see `super::boxed`).
struct WithState<S> {
    operation: BoxEndpoint<'static>,
    state: S,
    reads_query: bool,
}

impl<S: Clone + Send + Sync + 'static> Endpoint for WithState<S> {
    type Output = Response;

    fn call(&self, mut req: Request) -> impl Future<Output = Result<Response>> + Send {
        if self.reads_query {
            let pairs: Vec<(String, String)> = req.params().unwrap_or_default();
            req.extensions_mut()
                .insert(poem_openapi::__private::UrlQuery(pairs));
        }
        req.extensions_mut().insert(self.state.clone());
        DynEndpoint::call(&*self.operation, req)
    }
}

/// Whether some operation reads the query string: query parameters and API-key schemes look
/// for it where poem-openapi's own table puts it, and fail without it.
fn reads_query<T: OpenApi>() -> bool {
    T::meta()
        .iter()
        .flat_map(|api| &api.paths)
        .flat_map(|path| &path.operations)
        .any(|op| {
            !op.security.is_empty() || op.params.iter().any(|p| p.in_type == MetaParamIn::Query)
        })
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
        assert!(reads_query::<Greetings>());
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

    /// The core's operations read no query string, so none of them pays for parsing it.
    #[test]
    fn the_core_reads_no_query_string() {
        assert!(!reads_query::<crate::api::Operations>());
    }
}
