//! Taking due jobs: one statement locks up to `limit` due pending jobs with `FOR UPDATE
//! SKIP LOCKED` (so concurrent claimers, in any process, never get the same job) and marks
//! them processing under this worker's lease, counting the attempt.

use diesel::prelude::*;
use diesel::sql_types::{Double, Integer, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

/// A job this worker now holds.
#[derive(Debug, QueryableByName)]
pub(crate) struct ClaimedJob {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub job_type: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: Value,
    /// This run's number (already counted).
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Integer)]
    pub max_attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub batch_id: Option<String>,
}

/// Claims up to `limit` due jobs for `worker`, holding them for `lease_ms`.
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    worker: &str,
    limit: i32,
    lease_ms: f64,
) -> QueryResult<Vec<ClaimedJob>> {
    // `queue_claim` (migration `job_queue_runtime`) pins the plan that reads the claim
    // index in order, whatever the statistics say.
    diesel::sql_query(
        "SELECT id, type AS job_type, payload, attempts, max_attempts, batch_id \
         FROM queue_claim($1, $2, $3)",
    )
    .bind::<Text, _>(worker)
    .bind::<Integer, _>(limit)
    .bind::<Double, _>(lease_ms)
    .load(conn)
    .await
}

/// The primary's WAL position after a claim: at or past the commit of every job it claimed,
/// so the runs' reads wait for a replica that replayed their enqueue (see
/// [`crate::db::routing`]); the insert position, as [`crate::db::Database::primary_lsn`].
/// `u64::MAX` (every read on the primary) when it cannot be read.
pub(crate) async fn position_after(conn: &mut AsyncPgConnection) -> u64 {
    #[derive(QueryableByName)]
    struct Lsn {
        #[diesel(sql_type = Text)]
        lsn: String,
    }
    diesel::sql_query("SELECT pg_current_wal_insert_lsn()::text AS lsn")
        .get_result::<Lsn>(conn)
        .await
        .ok()
        .and_then(|row| crate::db::routing::parse_lsn(&row.lsn))
        .unwrap_or(u64::MAX)
}
