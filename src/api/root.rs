//! `GET /`: the upstream banner, telling at a glance whether the database is set up.

use chrono::{SecondsFormat, Utc};
use poem::web::Data;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::tags::ApiTags;
use crate::state::AppState;

/// The setting that hides the version.
const SHOW_VERSION: &str = "global.show_version";

/// The banner.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Banner {
    /// Always `DeployStack Backend is running.`
    pub message: String,
    /// `Database Connected`, or a pointer to the setup endpoints.
    pub status: String,
    /// Server time, ISO-8601.
    pub timestamp: String,
    /// Backend version; absent while `global.show_version` is off.
    #[oai(skip_serializing_if_is_none)]
    pub version: Option<String>,
}

/// The banner, or for a browser, the way to the wizard.
#[derive(ApiResponse)]
pub enum BannerResponse {
    /// The banner.
    #[oai(status = 200)]
    Banner(Json<Banner>),
    /// A browser (`Accept: text/html`): go to the setup wizard, which says what to do next
    /// (set up the database, create the administrator, open the frontend).
    #[oai(status = 303)]
    ToSetup(#[oai(header = "Location")] String),
}

/// Banner operation.
pub struct RootApi;

#[OpenApi]
impl RootApi {
    /// Service banner
    ///
    /// Reports that the backend runs and whether its database is connected. A browser that
    /// asks for HTML is sent to the setup wizard at `/setup`, which always shows the next
    /// step (before setup, the setup; after it, the administrator account or the frontend).
    #[oai(
        path = "/",
        method = "get",
        tag = "ApiTags::General",
        operation_id = "getBanner"
    )]
    async fn banner(&self, state: Data<&AppState>, request: &Request) -> BannerResponse {
        let wants_html = request
            .headers()
            .get(poem::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
        if wants_html {
            return BannerResponse::ToSetup("/setup".into());
        }
        let status = if state.database.is_ready() {
            "Database Connected"
        } else {
            "Database Not Configured/Connected - Use /api/db/status and /api/db/setup"
        };
        // Unreadable (no database yet, or it is down): the default, shown.
        let show_version = !state.database.is_ready()
            || !matches!(state.settings.get_bool(SHOW_VERSION).await, Ok(Some(false)));
        BannerResponse::Banner(Json(Banner {
            message: "DeployStack Backend is running.".into(),
            status: status.into(),
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            version: show_version.then(|| env!("CARGO_PKG_VERSION").into()),
        }))
    }
}

impl poem_openapi::types::Example for Banner {
    fn example() -> Self {
        Self {
            message: "DeployStack Backend is running.".into(),
            status: "Database Connected".into(),
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }
    }
}
