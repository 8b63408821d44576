//! The HTTP API: typed poem-openapi operations, Swagger UI at `/documentation`, the spec at
//! `/documentation/json`, the setup wizard at `/setup`, and the middleware every request goes
//! through ([`harden`]): request ids and logs, JSON 500 for panics, `Allow` on 405, JSON
//! errors for everything poem itself rejects, and the body size limit.

mod allow;
mod bad_body;
mod body_limit;
pub mod db;
pub mod error;
pub mod health;
mod request_log;
pub mod root;
mod setup_page;
mod spec;
mod tags;

use poem::endpoint::{make_sync, BoxEndpoint};
use poem::http::Method;
use poem::middleware::CatchPanic;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, Response, Route};
use poem_openapi::types::Type;
use poem_openapi::{OpenApi, OpenApiService};

use crate::state::AppState;
pub use allow::AllowTable;
pub use body_limit::MAX_BODY_BYTES;
pub use error::ErrorBody;
pub use request_log::REQUEST_ID_HEADER;

/// Every operation of the backend, in documentation order.
pub type Operations = (db::DbApi, health::HealthApi, root::RootApi);

/// A page served beside the operations (answering `GET` and `HEAD` only): its path and how
/// to build its endpoint. One list feeds both the router and the `Allow` table.
pub type Page = (&'static str, fn() -> BoxEndpoint<'static>);

/// The OpenAPI service, as poem-openapi generates it; [`spec_json`] is what is published.
pub fn openapi_service() -> OpenApiService<Operations, ()> {
    OpenApiService::new(
        (db::DbApi, health::HealthApi, root::RootApi),
        "DeployStack Backend",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Database backend of DeployStack: PostgreSQL setup, status and health. \
         Errors are JSON objects with `error` and `message`. Every answer carries an \
         `x-request-id` header (the caller's own when well formed). A method a path does not \
         list answers 405 with an `Allow` header naming those it does.",
    )
}

/// The OpenAPI document as pretty JSON: poem-openapi's, completed where it cannot express
/// what the server does (see `spec.rs`). Byte for byte what `openapi/openapi.json` holds and
/// `/documentation/json` serves.
pub fn spec_json() -> String {
    let raw = openapi_service().spec();
    let closed_schemas = [<db::SetupRequest as Type>::name().into_owned()];
    let completion = spec::Completion {
        closed_schemas: &closed_schemas,
        body_limit: MAX_BODY_BYTES,
    };
    spec::complete(&raw, &completion).unwrap_or_else(|e| {
        // Only a bug can get here: the input is poem-openapi's own JSON.
        tracing::error!(error = %e, "cannot complete the OpenAPI document");
        raw
    })
}

/// The whole HTTP application over `state`.
pub fn endpoint(state: AppState) -> impl Endpoint {
    harden(routes().data(state))
}

/// Wraps `ep` in the production middleware, outermost first: request id and log line,
/// panics caught as JSON 500, `Allow` on 405, poem's errors as JSON, the body size limit.
/// Public so tests can serve their own handlers (one that panics) exactly as production does.
pub fn harden<E: Endpoint + 'static>(ep: E) -> impl Endpoint {
    ep.with(body_limit::BodyLimit(MAX_BODY_BYTES))
        .catch_all_error(|e| async move { error::to_json_response(e) })
        .with(allow::AllowHeader(allow_table()))
        .with(CatchPanic::new().with_handler(error::panic_response))
        .with(request_log::RequestLog)
}

/// The methods of every path the application serves: the OpenAPI operations and the pages.
pub fn allow_table() -> AllowTable {
    let mut table = AllowTable::default();
    table.add_operations(<Operations as OpenApi>::meta());
    for (path, _) in pages() {
        table.add(path, Method::GET);
    }
    table
}

fn routes() -> Route {
    pages()
        .into_iter()
        .fold(Route::new(), |route, (path, page)| {
            route.at(path, poem::get(page()))
        })
        .nest("/", openapi_service())
}

fn pages() -> Vec<Page> {
    let mut pages: Vec<Page> = vec![
        ("/documentation", swagger_ui),
        ("/documentation/", swagger_ui),
        ("/documentation/json", spec_endpoint),
    ];
    pages.extend(setup_page::pages());
    pages
}

/// Swagger UI showing [`spec_json`] (poem-openapi's own UI embeds its uncompleted spec).
fn swagger_ui() -> BoxEndpoint<'static> {
    let api = openapi_service();
    let html = api.swagger_ui_html().replacen(&api.spec(), &spec_json(), 1);
    make_sync(move |_| Html(html.clone()))
        .map_to_response()
        .boxed()
}

fn spec_endpoint() -> BoxEndpoint<'static> {
    let spec = spec_json();
    make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(spec.clone())
    })
    .boxed()
}
