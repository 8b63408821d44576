//! The HTTP API: typed poem-openapi operations, Swagger UI at `/documentation`, the spec at
//! `/documentation/json`, and JSON errors for everything poem itself rejects.

mod body_limit;
pub mod db;
pub mod error;
pub mod health;
pub mod root;
mod setup_page;
mod tags;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

use crate::state::AppState;
pub use body_limit::MAX_BODY_BYTES;
pub use error::ErrorBody;

/// Every operation of the backend, in documentation order.
pub type Operations = (db::DbApi, health::HealthApi, root::RootApi);

/// The OpenAPI service; also what `deploystack-backend openapi` prints.
pub fn openapi_service() -> OpenApiService<Operations, ()> {
    OpenApiService::new(
        (db::DbApi, health::HealthApi, root::RootApi),
        "DeployStack Backend",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Database backend of DeployStack: PostgreSQL setup, status and health. \
         Errors are JSON objects with `error` and `message`.",
    )
}

/// The OpenAPI document as pretty JSON, byte for byte what `openapi/openapi.json` holds.
pub fn spec_json() -> String {
    let mut spec = openapi_service().spec();
    spec.push('\n');
    spec
}

/// The whole HTTP application over `state`.
pub fn endpoint(state: AppState) -> impl Endpoint {
    let api = openapi_service();
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .at("/documentation/json", spec)
        .nest("/documentation", docs)
        .nest("/setup", setup_page::routes())
        .nest("/", api)
        .with(body_limit::BodyLimit(MAX_BODY_BYTES))
        .catch_all_error(|e| async move { error::to_json_response(e) })
        .data(state)
}
