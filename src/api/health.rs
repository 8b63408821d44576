//! Liveness (`/api/health`) and readiness (`/api/health/ready`) probes.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::error::ErrorBody;
use super::tags::ApiTags;
use crate::db::DbError;
use crate::state::AppState;

/// A healthy answer.
#[derive(Debug, Object)]
#[oai(example)]
pub struct HealthStatus {
    /// Always `ok`.
    pub status: String,
    /// With `POSTGRES_READ_HOSTS`: each read replica's last check. Replicas never make the
    /// backend unready: reads fall back to the primary.
    #[oai(skip_serializing_if_is_none)]
    pub replicas: Option<Vec<ReplicaHealth>>,
}

/// One read replica in the readiness answer.
#[derive(Debug, Object)]
pub struct ReplicaHealth {
    /// `host:port`.
    pub name: String,
    /// `usable`, `lagging`, `down`, `not_a_replica`, `transaction_pooler` (behind a pooler in
    /// transaction mode, which the backend cannot use) or `unknown` (not checked yet).
    pub state: String,
    /// Replication lag at the last check, in milliseconds, when known.
    #[oai(skip_serializing_if_is_none)]
    pub lag_ms: Option<u64>,
}

impl HealthStatus {
    fn ok() -> Json<Self> {
        Json(Self {
            status: "ok".into(),
            replicas: None,
        })
    }

    fn ready(state: &AppState) -> Json<Self> {
        let reports = state.database.replica_reports();
        Json(Self {
            status: "ok".into(),
            replicas: (!reports.is_empty()).then(|| {
                reports
                    .into_iter()
                    .map(|r| ReplicaHealth {
                        name: r.name,
                        state: r.state.name().into(),
                        lag_ms: r.lag.map(|l| l.as_millis() as u64),
                    })
                    .collect()
            }),
        })
    }
}

/// Readiness answer.
#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database answered a query.
    #[oai(status = 200)]
    Ready(Json<HealthStatus>),
    /// Setup is not complete, or PostgreSQL does not answer.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// Probe operations.
pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// Answers as long as the process serves HTTP; never touches the database.
    #[oai(path = "/api/health", method = "get", operation_id = "getHealth")]
    async fn health(&self) -> Json<HealthStatus> {
        HealthStatus::ok()
    }

    /// Readiness
    ///
    /// Runs `SELECT 1` on the database. The probe shares a connection with other single
    /// statements instead of waiting for a pooled one, so a busy pool does not make the backend
    /// unready; a database that does not answer does.
    #[oai(
        path = "/api/health/ready",
        method = "get",
        operation_id = "getReadiness"
    )]
    async fn ready(&self, state: Data<&AppState>) -> ReadyResponse {
        match state.database.ping().await {
            Ok(()) => ReadyResponse::Ready(HealthStatus::ready(&state)),
            Err(e) => {
                // Not served although set up: say why rather than "complete the setup".
                let body = match (&e, state.setup.unavailable_message()) {
                    (DbError::NotInitialized, Some(why)) => {
                        ErrorBody::new("Database unavailable", why)
                    }
                    _ => ErrorBody::from_db(&e),
                };
                ReadyResponse::Unavailable(Json(body))
            }
        }
    }
}

impl poem_openapi::types::Example for HealthStatus {
    fn example() -> Self {
        Self {
            status: "ok".into(),
            replicas: None,
        }
    }
}
