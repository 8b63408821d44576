//! `GET /`: the upstream banner, telling at a glance whether the database is set up.

use chrono::{SecondsFormat, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::tags::ApiTags;
use crate::state::AppState;

/// The banner.
#[derive(Debug, Object)]
pub struct Banner {
    /// Always `DeployStack Backend is running.`
    pub message: String,
    /// `Database Connected`, or a pointer to the setup endpoints.
    pub status: String,
    /// Server time, ISO-8601.
    pub timestamp: String,
    /// Backend version.
    pub version: String,
}

/// Banner operation.
pub struct RootApi;

#[OpenApi]
impl RootApi {
    /// Service banner
    ///
    /// Reports that the backend runs and whether its database is connected.
    #[oai(
        path = "/",
        method = "get",
        tag = "ApiTags::General",
        operation_id = "getBanner"
    )]
    async fn banner(&self, state: Data<&AppState>) -> Json<Banner> {
        let status = if state.database.is_ready() {
            "Database Connected"
        } else {
            "Database Not Configured/Connected - Use /api/db/status and /api/db/setup"
        };
        Json(Banner {
            message: "DeployStack Backend is running.".into(),
            status: status.into(),
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }
}
