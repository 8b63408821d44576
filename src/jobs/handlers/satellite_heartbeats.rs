//! `cleanup_satellite_heartbeats`: keeps the newest heartbeats of each satellite (1000 for
//! global satellites, 500 for team ones, upstream's payload) in one statement, where
//! upstream counted and deleted satellite by satellite.

use diesel::sql_types::Integer;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::Database;
use crate::jobs::job::{Job, JobContext, JobError};
use crate::jobs::model::Counted;

/// Upstream's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatLimits {
    /// Heartbeats kept per global satellite.
    pub global_satellite_limit: i32,
    /// Heartbeats kept per team satellite.
    pub team_satellite_limit: i32,
}

impl Default for HeartbeatLimits {
    fn default() -> Self {
        Self {
            global_satellite_limit: 1000,
            team_satellite_limit: 500,
        }
    }
}

/// What was removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatCleanupResult {
    total_deleted: i64,
}

/// The handler.
pub struct CleanupSatelliteHeartbeats {
    db: Database,
}

impl CleanupSatelliteHeartbeats {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl Job for CleanupSatelliteHeartbeats {
    const TYPE: &'static str = "cleanup_satellite_heartbeats";
    type Payload = HeartbeatLimits;
    type Output = HeartbeatCleanupResult;

    async fn run(&self, limits: Self::Payload, _ctx: JobContext) -> Result<Self::Output, JobError> {
        if limits.global_satellite_limit < 1 || limits.team_satellite_limit < 1 {
            return Err(JobError::fatal(
                "Invalid payload format: limits must be at least 1",
            ));
        }
        let mut conn = self.db.conn().await?;
        let total_deleted = diesel::sql_query(
            "WITH ranked AS ( \
               SELECT h.id, s.satellite_type, \
                 row_number() OVER (PARTITION BY h.satellite_id \
                                    ORDER BY h.timestamp DESC, h.id DESC) AS n \
               FROM satellite_heartbeats h JOIN satellites s ON s.id = h.satellite_id), \
             gone AS ( \
               DELETE FROM satellite_heartbeats h USING ranked r \
               WHERE h.id = r.id \
                 AND r.n > CASE WHEN r.satellite_type = 'global' THEN $1 ELSE $2 END \
               RETURNING 1) \
             SELECT count(*) AS n FROM gone",
        )
        .bind::<Integer, _>(limits.global_satellite_limit)
        .bind::<Integer, _>(limits.team_satellite_limit)
        .get_result::<Counted>(&mut conn)
        .await?
        .n;
        Ok(HeartbeatCleanupResult { total_deleted })
    }
}
