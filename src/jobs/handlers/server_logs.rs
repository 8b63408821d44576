//! `cleanup_mcp_server_logs`: keeps the newest `maxLogsPerInstallation` (100) lines per
//! installation in `mcp_server_logs` and in `mcp_request_logs`, as upstream.

use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::Database;
use crate::jobs::job::{Job, JobContext, JobError};
use crate::jobs::model::Counted;

/// Upstream's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerLogLimit {
    /// Lines kept per installation and table.
    pub max_logs_per_installation: i32,
}

impl Default for ServerLogLimit {
    fn default() -> Self {
        Self {
            max_logs_per_installation: 100,
        }
    }
}

/// What was removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerLogCleanupResult {
    deleted_server_logs: i64,
    deleted_request_logs: i64,
}

/// The handler.
pub struct CleanupMcpServerLogs {
    db: Database,
}

impl CleanupMcpServerLogs {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Keeps the newest `keep` rows per installation of `table` (a constant name, not input).
async fn trim(conn: &mut AsyncPgConnection, table: &str, keep: i32) -> QueryResult<i64> {
    Ok(diesel::sql_query(format!(
        "WITH ranked AS ( \
           SELECT id, row_number() OVER (PARTITION BY installation_id \
                                         ORDER BY created_at DESC, id DESC) AS n \
           FROM {table}), \
         gone AS (DELETE FROM {table} t USING ranked r WHERE t.id = r.id AND r.n > $1 RETURNING 1) \
         SELECT count(*) AS n FROM gone"
    ))
    .bind::<Integer, _>(keep)
    .get_result::<Counted>(conn)
    .await?
    .n)
}

impl Job for CleanupMcpServerLogs {
    const TYPE: &'static str = "cleanup_mcp_server_logs";
    type Payload = ServerLogLimit;
    type Output = ServerLogCleanupResult;

    async fn run(&self, limit: Self::Payload, _ctx: JobContext) -> Result<Self::Output, JobError> {
        let keep = limit.max_logs_per_installation;
        if keep < 1 {
            return Err(JobError::fatal(format!(
                "maxLogsPerInstallation must be at least 1, got {keep}"
            )));
        }
        let mut conn = self.db.conn().await?;
        Ok(ServerLogCleanupResult {
            deleted_server_logs: trim(&mut conn, "mcp_server_logs", keep).await?,
            deleted_request_logs: trim(&mut conn, "mcp_request_logs", keep).await?,
        })
    }
}
