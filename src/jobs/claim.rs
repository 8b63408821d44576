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
    diesel::sql_query(
        "WITH next AS ( \
           SELECT id FROM queue_jobs \
           WHERE status = 'pending' AND scheduled_for <= now() \
           ORDER BY priority DESC, scheduled_for, id \
           LIMIT $2 \
           FOR UPDATE SKIP LOCKED) \
         UPDATE queue_jobs j SET status = 'processing', attempts = j.attempts + 1, \
           locked_by = $1, locked_until = now() + $3 * interval '1 millisecond', \
           started_at = now(), updated_at = now() \
         FROM next WHERE j.id = next.id \
         RETURNING j.id, j.type AS job_type, j.payload, j.attempts, j.max_attempts, j.batch_id",
    )
    .bind::<Text, _>(worker)
    .bind::<Integer, _>(limit)
    .bind::<Double, _>(lease_ms)
    .load(conn)
    .await
}
