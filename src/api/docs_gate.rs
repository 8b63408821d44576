//! `global.enable_swagger_docs` off hides the documentation (`/documentation`, its JSON):
//! upstream's 404 `{"error":"Not Found","message":"API documentation is disabled."}`. Before
//! setup (no settings to read) it is shown, as upstream does.

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response, Result};

use super::error::{json_response, ErrorBody};
use crate::settings::GlobalSettings;

/// The setting.
const ENABLE_DOCS: &str = "global.enable_swagger_docs";

/// A documentation page, answered only while the setting allows it.
pub struct DocsGate<E> {
    /// The page.
    pub inner: E,
    /// Where the setting is read (cached in every process).
    pub settings: GlobalSettings,
    /// Whether there is a database to read it from.
    pub database: crate::db::Database,
}

impl<E: Endpoint> Endpoint for DocsGate<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        // No database yet, or the setting unreadable: shown.
        if !self.database.is_ready() {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        if let Ok(Some(false)) = self.settings.get_bool(ENABLE_DOCS).await {
            return Ok(json_response(
                StatusCode::NOT_FOUND,
                &ErrorBody::new("Not Found", "API documentation is disabled."),
            ));
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}
