//! `cleanup_mcp_client_activity_metrics`: removes metric buckets older than the retention
//! (upstream: 3 days, fixed; here the payload may say `retentionDays`), dropping the daily
//! partitions that lie wholly before it instead of deleting their rows.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::schema::mcp_client_activity_metrics as metrics;
use crate::db::Database;
use crate::jobs::job::{Job, JobContext, JobError};

/// Upstream's payload is `{}`; `retentionDays` is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsRetention {
    /// Buckets older than this many days go (3 when absent, as upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i64>,
}

/// Upstream's fixed retention.
const DEFAULT_RETENTION_DAYS: i64 = 3;

/// What was removed (upstream's field names).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsCleanupResult {
    deleted_count: usize,
    retention_days: i64,
}

/// The handler.
pub struct CleanupMcpClientActivityMetrics {
    db: Database,
}

impl CleanupMcpClientActivityMetrics {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl Job for CleanupMcpClientActivityMetrics {
    const TYPE: &'static str = "cleanup_mcp_client_activity_metrics";
    type Payload = MetricsRetention;
    type Output = MetricsCleanupResult;

    async fn run(
        &self,
        payload: Self::Payload,
        _ctx: JobContext,
    ) -> Result<Self::Output, JobError> {
        let days = payload.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
        if !(1..=36_500).contains(&days) {
            return Err(JobError::fatal(format!(
                "retentionDays must be between 1 and 36500, got {days}"
            )));
        }
        let cutoff = chrono::Utc::now() - chrono::Duration::days(days);
        let mut conn = self.db.conn().await?;
        // Whole days past the retention go with their partitions; what is left of the day
        // the cutoff falls in (and anything in the default partition) row by row.
        let dropped = super::log_partitions::drop_partitions_before(
            &mut conn,
            "mcp_client_activity_metrics",
            cutoff.date_naive(),
        )
        .await?;
        let deleted = diesel::delete(metrics::table.filter(metrics::bucket_timestamp.lt(cutoff)))
            .execute(&mut conn)
            .await?;
        let deleted_count = usize::try_from(dropped).unwrap_or(usize::MAX) + deleted;
        Ok(MetricsCleanupResult {
            deleted_count,
            retention_days: days,
        })
    }
}
