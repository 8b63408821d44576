//! The HTTP API: typed poem-openapi operations, Swagger UI at `/documentation`, the spec at
//! `/documentation/json`, the setup wizard at `/setup`, and the middleware every request goes
//! through ([`harden`]): request ids and logs, JSON 500 for panics, `Allow` on 405, JSON
//! errors for everything poem itself rejects, and the body size limit.

mod account_bodies;
pub mod admin;
mod allow;
pub mod auth;
mod bad_body;
mod body_limit;
mod boxed;
mod caller;
pub mod catalog;
mod client_layer;
mod cors;
mod cross_site;
pub mod db;
mod docs_gate;
pub mod error;
pub mod health;
mod json_errors;
pub mod members;
mod no_store;
mod operations;
mod panics;
pub mod preferences;
pub mod reply;
mod request_log;
pub mod roles;
pub mod root;
mod session_cookie;
mod setup_page;
mod spec;
mod spec_merge;
mod strict_json;
mod strict_query;
mod tags;
mod team_bodies;
pub mod teams;
pub mod unit_of_work;
mod user_bodies;
pub mod users;
mod with_cookies;

use poem::endpoint::{make_sync, BoxEndpoint};
use poem::http::Method;
use poem::{Endpoint, EndpointExt, Response, Route};
use poem_openapi::types::Type;
use poem_openapi::{OpenApi, OpenApiService};

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::config::HttpSettings;
use crate::db::Database;
use crate::plugins::PluginCatalog;
use crate::state::AppState;
pub use allow::AllowTable;
pub use body_limit::MAX_BODY_BYTES;
pub use client_layer::client_of;
pub use error::ErrorBody;
pub use request_log::REQUEST_ID_HEADER;
pub use strict_json::{BodyProblem, StrictJson};
pub use unit_of_work::LSN_HEADER;
pub use with_cookies::WithCookies;

/// Every operation of the backend, in documentation order.
pub type Operations = (
    db::DbApi,
    health::HealthApi,
    root::RootApi,
    auth::AuthApi,
    users::UsersApi,
    preferences::PreferencesApi,
    teams::TeamsApi,
    members::MembersApi,
    roles::RolesApi,
    catalog::CatalogApi,
    admin::people::PeopleApi,
    admin::settings::SettingsApi,
    admin::jobs::JobsApi,
);

/// A page served beside the operations (answering `GET` and `HEAD` only): its path and how
/// to build its endpoint. One list feeds both the router and the `Allow` table.
pub type Page = (&'static str, fn() -> BoxEndpoint<'static>);

fn operations() -> Operations {
    (
        db::DbApi,
        health::HealthApi,
        root::RootApi,
        auth::AuthApi,
        users::UsersApi,
        preferences::PreferencesApi,
        teams::TeamsApi,
        members::MembersApi,
        roles::RolesApi,
        catalog::CatalogApi,
        admin::people::PeopleApi,
        admin::settings::SettingsApi,
        admin::jobs::JobsApi,
    )
}

/// Where the documentation is served: Swagger UI and the JSON document.
const DOCUMENTATION_PAGES: [&str; 3] = ["/documentation", "/documentation/", "/documentation/json"];

/// The OpenAPI service, as poem-openapi generates it; [`spec_json`] is what is published.
pub fn openapi_service() -> OpenApiService<Operations, ()> {
    OpenApiService::new(
        operations(),
        "DeployStack Backend",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Database backend of DeployStack: PostgreSQL setup, accounts, teams, settings and the \
         job queue, with upstream's HTTP contract. Errors are JSON objects with `error` (and \
         `message`, or upstream's `success: false` envelope). Every answer carries an \
         `x-request-id` header (the caller's own when well formed). A method a path does not \
         list answers 405 with an `Allow` header naming those it does.",
    )
    .server(poem_openapi::ServerObject::new("/").description("This server"))
    .license(
        poem_openapi::LicenseObject::new("AGPL-3.0-only")
            .url("https://www.gnu.org/licenses/agpl-3.0.html"),
    )
}

/// The OpenAPI document as pretty JSON: poem-openapi's, completed where it cannot express
/// what the server does (see `spec.rs`). Byte for byte what `openapi/openapi.json` holds and
/// `/documentation/json` serves.
pub fn spec_json() -> String {
    complete(openapi_service().spec())
}

/// The document of the core and `plugins`' operations: what a server with plugins serves.
/// An error names a plugin whose operations clash with the core's or another plugin's.
pub fn spec_json_for(plugins: &PluginCatalog) -> Result<String, spec_merge::MergeError> {
    if plugins.is_empty() {
        return Ok(spec_json());
    }
    let extras: Vec<(String, &str)> = plugins
        .routes()
        .map(|(id, routes)| (id.to_string(), routes.spec.as_str()))
        .collect();
    let merged = spec_merge::merge(&openapi_service().spec(), &extras)?;
    Ok(complete(merged))
}

fn complete(raw: String) -> String {
    let closed_schemas = [
        <db::SetupRequest as Type>::name().into_owned(),
        <account_bodies::RegisterRequest as Type>::name().into_owned(),
        <account_bodies::LoginRequest as Type>::name().into_owned(),
    ];
    let completion = spec::Completion {
        closed_schemas: &closed_schemas,
        required_fields: account_bodies::REQUIRED,
        body_limit: MAX_BODY_BYTES,
        constraints: account_bodies::CONSTRAINTS,
    };
    spec::complete(&raw, &completion).unwrap_or_else(|e| {
        // Only a bug can get here: the input is poem-openapi's own JSON.
        tracing::error!(error = %e, "cannot complete the OpenAPI document");
        raw
    })
}

/// The whole HTTP application over `state`, plugin operations included.
pub fn endpoint(state: AppState) -> impl Endpoint {
    let plugins = state.plugins.clone();
    let metrics = state.metrics.clone();
    let mut allow = allow_table_for(&plugins);
    if metrics_on_api(&state) {
        allow.add(crate::metrics::serve::PATH, Method::GET);
    }
    let db = state.database.clone();
    let http = state.http.clone();
    harden_with(
        routes(&plugins, state),
        allow,
        metrics.map(|m| m.http()),
        Some(db),
        &http,
    )
}

/// `/metrics` joins the API only behind a token.
fn metrics_on_api(state: &AppState) -> bool {
    state
        .metrics
        .as_ref()
        .is_some_and(|m| m.settings().token.is_some())
}

/// Wraps `ep` in the production middleware, outermost first: request id and log line,
/// metrics, the unit of work, panics caught as JSON 500, `Allow` on 405, poem's errors as
/// JSON, the body size limit, and `ep`'s future in a box of its own.
/// Public so tests can serve their own handlers (one that panics) exactly as production does.
pub fn harden<E: Endpoint + 'static>(ep: E) -> impl Endpoint {
    harden_with(ep, allow_table(), None, None, &HttpSettings::default())
}

/// [`harden`] with the database whose replicas' positions responses carry (see
/// [`unit_of_work`]), as the application is served.
pub fn harden_serving<E: Endpoint + 'static>(ep: E, db: Database) -> impl Endpoint {
    harden_with(ep, allow_table(), None, Some(db), &HttpSettings::default())
}

fn harden_with<E: Endpoint + 'static>(
    ep: E,
    allow: AllowTable,
    metrics: Option<crate::metrics::HttpMetrics>,
    db: Option<Database>,
    http: &HttpSettings,
) -> impl Endpoint {
    boxed::Boxed(ep)
        .with(body_limit::BodyLimit(MAX_BODY_BYTES))
        .with(strict_query::StrictQuery)
        .with(cross_site::CrossSiteCheck(Arc::new(http.origins.clone())))
        .with(json_errors::JsonErrors)
        .with(allow::AllowHeader(allow))
        .with(panics::PanicsAsJson)
        .with(no_store::NoStore)
        // Each request is a unit of work: once it used the primary, its reads stay there.
        .with(unit_of_work::UnitOfWork(db))
        // Outside the panic catcher: a panic counts as the 500 it became.
        .with(crate::metrics::RequestMetrics(metrics))
        // Every answer, errors and panics included, carries the CORS headers.
        .with(cors::Cors(Arc::new(http.origins.clone())))
        .with(request_log::RequestLog)
        // First of all: every layer below sees the same client.
        .with(client_layer::ResolveClient(Arc::new(
            http.trusted_proxies.clone(),
        )))
}

/// The methods of every path the application serves: the OpenAPI operations and the pages.
pub fn allow_table() -> AllowTable {
    allow_table_for(&PluginCatalog::empty())
}

fn allow_table_for(plugins: &PluginCatalog) -> AllowTable {
    let mut table = AllowTable::default();
    table.add_operations(<Operations as OpenApi>::meta());
    for (_, routes) in plugins.routes() {
        for (path, method) in &routes.operations {
            table.add(path, method.clone());
        }
    }
    let pages = setup_page::pages().into_iter().map(|(path, _)| path);
    for path in DOCUMENTATION_PAGES.into_iter().chain(pages) {
        table.add(path, Method::GET);
    }
    table
}

/// The core's operations see the app state; plugin routes are mounted beside them, outside
/// it, so a plugin handler cannot extract the core's pool or services.
fn routes(plugins: &PluginCatalog, state: AppState) -> Route {
    // Checked when the plugins were loaded; the core's document is the fallback.
    let spec = spec_json_for(plugins).unwrap_or_else(|_| spec_json());
    let ui = swagger_ui(spec.clone());
    let gated = |inner| docs_gate::DocsGate {
        inner,
        settings: state.settings.clone(),
        database: state.database.clone(),
    };
    let mut core = Route::new()
        .at("/documentation", poem::get(gated(ui.clone())))
        .at("/documentation/", poem::get(gated(ui)))
        .at(
            "/documentation/json",
            poem::get(gated(Arc::new(spec_endpoint(spec)))),
        );
    for (path, page) in setup_page::pages() {
        core = core.at(path, poem::get(page()));
    }
    if let (true, Some(metrics)) = (metrics_on_api(&state), state.metrics.clone()) {
        core = core.at(
            crate::metrics::serve::PATH,
            crate::metrics::MetricsEndpoint::new(metrics, state.metric_sources()),
        );
    }
    for (id, routes) in plugins.routes() {
        let prefix = id.route_prefix();
        core = core.nest_no_strip(prefix.trim_end_matches('/'), routes.endpoint.clone());
    }
    // One routing table for everything: each nesting level costs every request a rewritten
    // URI, an extension and a boxed future.
    operations::mount(core, operations(), &state)
}

/// Swagger UI showing `spec` (poem-openapi's own UI embeds its uncompleted spec). The page is
/// 1.6 MB (the UI's scripts are inline): built at its first request rather than at start, so
/// a server whose documentation nobody opens does not hold it, and shared by every answer
/// rather than copied into each.
fn swagger_ui(spec: String) -> Arc<BoxEndpoint<'static>> {
    let page = OnceLock::new();
    Arc::new(
        make_sync(move |_| {
            let html: &Bytes = page.get_or_init(|| {
                let api = openapi_service();
                let html = api.swagger_ui_html().replacen(&api.spec(), &spec, 1);
                // Boxed first, so the page holds no spare capacity.
                Bytes::from(html.into_boxed_str().into_boxed_bytes())
            });
            Response::builder()
                .content_type("text/html; charset=utf-8")
                .body(html.clone())
        })
        .map_to_response()
        .boxed(),
    )
}

fn spec_endpoint(spec: String) -> BoxEndpoint<'static> {
    make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(spec.clone())
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<E: Endpoint>(ep: &E) -> usize {
        let req = poem::Request::builder()
            .uri(poem::http::Uri::from_static("/api/db/status"))
            .finish();
        std::mem::size_of_val(&ep.call(req))
    }

    /// Each request's future is moved (copied) by every layer around it and boxed by the
    /// server: the middleware once made it 15 KB, and the copies took a sixth of a simple
    /// request's CPU. The routing table's own future (2 KB) is boxed below the middleware,
    /// so what the layers move stays small whatever the routes hold.
    #[test]
    fn the_middleware_keeps_the_request_future_small() {
        let route = Route::new().nest("/", openapi_service());
        let inner = future_size(&route);
        let whole = future_size(&harden(route));
        assert!(
            whole <= 512,
            "the middleware holds a {whole}-byte request future (the routes' is {inner})"
        );
    }
}
