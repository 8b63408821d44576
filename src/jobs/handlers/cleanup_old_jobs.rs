//! `cleanup_old_jobs`: removes finished jobs older than `olderThanDays` (default 14) and the
//! old batches left without jobs. Unlike upstream, never a pending or processing job, and
//! batches are found with `NOT EXISTS` (upstream's `NOT IN` over a column holding NULLs
//! matched nothing).

use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::Database;
use crate::jobs::job::{Job, JobContext, JobError};
use crate::jobs::model::Counted;

/// Rows deleted per statement, so a large backlog never holds one long transaction.
const CHUNK: i64 = 10_000;

/// Upstream's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupOldJobsPayload {
    /// Age in days past which finished jobs go.
    #[serde(default = "default_days")]
    pub older_than_days: i32,
}

fn default_days() -> i32 {
    14
}

impl Default for CleanupOldJobsPayload {
    fn default() -> Self {
        Self {
            older_than_days: default_days(),
        }
    }
}

/// One chunk: how many jobs went, and the greatest id among them.
#[derive(diesel::QueryableByName)]
struct Chunk {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Text>)]
    last: Option<String>,
}

/// What was removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupOldJobsResult {
    deleted_jobs: i64,
    deleted_batches: i64,
    older_than_days: i32,
}

/// The handler.
pub struct CleanupOldJobs {
    db: Database,
}

impl CleanupOldJobs {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl Job for CleanupOldJobs {
    const TYPE: &'static str = "cleanup_old_jobs";
    type Payload = CleanupOldJobsPayload;
    type Output = CleanupOldJobsResult;

    async fn run(
        &self,
        payload: Self::Payload,
        _ctx: JobContext,
    ) -> Result<Self::Output, JobError> {
        let days = payload.older_than_days;
        if !(1..=36_500).contains(&days) {
            return Err(JobError::fatal(format!(
                "olderThanDays must be between 1 and 36500, got {days}"
            )));
        }
        let mut conn = self.db.conn().await?;
        let mut deleted_jobs = 0;
        // The chunks walk the primary key once (`id` past the last chunk's), so a large
        // backlog costs one pass, not one scan of the table per chunk.
        let mut after = String::new();
        loop {
            let chunk = diesel::sql_query(
                "WITH old AS ( \
                   SELECT id FROM queue_jobs \
                   WHERE id > $3 \
                     AND created_at < now() - make_interval(days => $1) \
                     AND status IN ('completed', 'failed') \
                     AND COALESCE(completed_at, updated_at) < now() - make_interval(days => $1) \
                   ORDER BY id LIMIT $2), \
                 gone AS (DELETE FROM queue_jobs j USING old \
                   WHERE j.id = old.id AND j.status IN ('completed', 'failed') RETURNING j.id) \
                 SELECT count(*) AS n, max(id) AS last FROM gone",
            )
            .bind::<Integer, _>(days)
            .bind::<BigInt, _>(CHUNK)
            .bind::<Text, _>(&after)
            .get_result::<Chunk>(&mut conn)
            .await?;
            deleted_jobs += chunk.n;
            match chunk.last {
                Some(last) if chunk.n == CHUNK => after = last,
                _ => break,
            }
        }
        let deleted_batches = diesel::sql_query(
            "WITH gone AS ( \
               DELETE FROM queue_job_batches b \
               WHERE b.created_at < now() - make_interval(days => $1) \
                 AND NOT EXISTS (SELECT 1 FROM queue_jobs j WHERE j.batch_id = b.id) \
               RETURNING 1) \
             SELECT count(*) AS n FROM gone",
        )
        .bind::<Integer, _>(days)
        .get_result::<Counted>(&mut conn)
        .await?
        .n;
        Ok(CleanupOldJobsResult {
            deleted_jobs,
            deleted_batches,
            older_than_days: days,
        })
    }
}
