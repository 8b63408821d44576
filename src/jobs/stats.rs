//! The queue's figures: counts by status and type, how long the oldest due job has waited,
//! and run durations per type over the last day. Logged at an interval by the service, shown
//! by `jobs stats`, available to code through [`crate::jobs::JobQueue::stats`].

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// Jobs of one type in one status.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct StatusCount {
    /// Status.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Type.
    #[diesel(sql_type = Text)]
    #[serde(rename = "type")]
    pub job_type: String,
    /// How many.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Run durations of one type (completed runs of the last 24 hours).
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct TypeDuration {
    /// Type.
    #[diesel(sql_type = Text)]
    #[serde(rename = "type")]
    pub job_type: String,
    /// Completed runs counted.
    #[diesel(sql_type = BigInt)]
    pub runs: i64,
    /// Mean, in milliseconds.
    #[diesel(sql_type = Double)]
    pub avg_ms: f64,
    /// 95th percentile, in milliseconds.
    #[diesel(sql_type = Double)]
    pub p95_ms: f64,
    /// Longest, in milliseconds.
    #[diesel(sql_type = Double)]
    pub max_ms: f64,
}

/// A snapshot of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStats {
    /// Counts by status and type.
    pub counts: Vec<StatusCount>,
    /// Seconds the oldest due pending job has waited; `None` when none is due.
    pub oldest_pending_age_s: Option<f64>,
    /// Durations per type.
    pub durations: Vec<TypeDuration>,
}

impl QueueStats {
    /// Jobs in `status`, all types.
    pub fn total(&self, status: &str) -> i64 {
        self.counts
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.count)
            .sum()
    }
}

#[derive(QueryableByName)]
struct Age {
    #[diesel(sql_type = Nullable<Double>)]
    seconds: Option<f64>,
}

/// Reads the snapshot (three statements, one transaction-free pass).
pub async fn collect(conn: &mut AsyncPgConnection) -> QueryResult<QueueStats> {
    let counts = diesel::sql_query(
        "SELECT status, type AS job_type, count(*) AS count FROM queue_jobs \
         GROUP BY status, type ORDER BY status, type",
    )
    .load::<StatusCount>(conn)
    .await?;
    let oldest_pending_age_s = oldest_pending_age(conn).await?;
    let durations = diesel::sql_query(
        "SELECT job_type, count(*) AS runs, avg(ms) AS avg_ms, \
           percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95_ms, max(ms) AS max_ms \
         FROM (SELECT type AS job_type, \
                 EXTRACT(EPOCH FROM completed_at - started_at)::float8 * 1000 AS ms \
               FROM queue_jobs \
               WHERE status = 'completed' AND started_at IS NOT NULL \
                 AND completed_at > now() - interval '24 hours') runs \
         GROUP BY job_type ORDER BY job_type",
    )
    .load::<TypeDuration>(conn)
    .await?;
    Ok(QueueStats {
        counts,
        oldest_pending_age_s,
        durations,
    })
}

/// What waits and what runs, by type: the cheap part of the snapshot, for frequent scrapes
/// (the index on status serves it; completed and failed rows are never counted).
#[derive(Debug, Clone, Serialize)]
pub struct QueueDepth {
    /// Pending and processing jobs by type.
    pub counts: Vec<StatusCount>,
    /// Seconds the oldest due pending job has waited; `None` when none is due.
    pub oldest_pending_age_s: Option<f64>,
}

/// Reads the depth (two statements).
pub async fn depth(conn: &mut AsyncPgConnection) -> QueryResult<QueueDepth> {
    let counts = diesel::sql_query(
        "SELECT status, type AS job_type, count(*) AS count FROM queue_jobs \
         WHERE status IN ('pending', 'processing') \
         GROUP BY status, type ORDER BY status, type",
    )
    .load::<StatusCount>(conn)
    .await?;
    Ok(QueueDepth {
        counts,
        oldest_pending_age_s: oldest_pending_age(conn).await?,
    })
}

async fn oldest_pending_age(conn: &mut AsyncPgConnection) -> QueryResult<Option<f64>> {
    Ok(diesel::sql_query(
        "SELECT EXTRACT(EPOCH FROM now() - min(scheduled_for))::float8 AS seconds \
         FROM queue_jobs WHERE status = 'pending' AND scheduled_for <= now()",
    )
    .get_result::<Age>(conn)
    .await?
    .seconds)
}
