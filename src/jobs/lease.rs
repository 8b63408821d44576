//! Leases: extended while handlers run, taken back from workers that died (their jobs run
//! again, or fail when that was their last attempt), handed back at shutdown.

use diesel::prelude::*;
use diesel::sql_types::{Array, Double, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::jobs::batches::{self, Deltas};

/// Error of a job whose worker stopped answering during its last attempt.
pub(crate) const LEASE_EXPIRED: &str =
    "the worker running this job stopped (its lease expired): process killed or stalled";

/// Pushes the lease of `ids` held by `worker` to `lease_ms` from now.
pub(crate) async fn extend(
    conn: &mut AsyncPgConnection,
    worker: &str,
    ids: &[String],
    lease_ms: f64,
) -> QueryResult<usize> {
    // `queue_extend_leases` (migration `job_queue_throughput`) keeps the primary key in its
    // plan and skips jobs being settled right now.
    let n = diesel::sql_query("SELECT queue_extend_leases($1, $2, $3) AS n")
        .bind::<Text, _>(worker)
        .bind::<Array<Text>, _>(ids)
        .bind::<Double, _>(lease_ms)
        .get_result::<Count>(conn)
        .await?
        .n;
    Ok(usize::try_from(n).unwrap_or(0))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    n: i32,
}

#[derive(QueryableByName)]
struct Reaped {
    #[diesel(sql_type = Nullable<Text>)]
    batch_id: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Takes back up to 1000 jobs whose lease expired, from any worker: pending again and due
/// now, or failed when their attempts are used up. Returns (requeued, failed).
pub(crate) async fn reap(conn: &mut AsyncPgConnection) -> QueryResult<(usize, usize)> {
    conn.transaction(async |conn| {
        // SKIP LOCKED: a worker settling one of these right now wins; the reaper never
        // waits on a worker, so the two cannot deadlock.
        let reaped: Vec<Reaped> = diesel::sql_query(
            "WITH expired AS ( \
               SELECT id FROM queue_jobs \
               WHERE status = 'processing' AND locked_until < now() \
               ORDER BY locked_until LIMIT 1000 \
               FOR UPDATE SKIP LOCKED) \
             UPDATE queue_jobs j SET \
               status = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END, \
               error = $1, \
               completed_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END, \
               scheduled_for = now(), locked_by = NULL, locked_until = NULL, updated_at = now() \
             FROM expired WHERE j.id = expired.id \
             RETURNING j.batch_id, j.status",
        )
        .bind::<Text, _>(LEASE_EXPIRED)
        .load(conn)
        .await?;
        let mut deltas = Deltas::new();
        let mut failed = 0;
        for row in &reaped {
            if row.status == "failed" {
                failed += 1;
            }
            batches::count(&mut deltas, row.batch_id.clone(), &row.status);
        }
        batches::apply(conn, &deltas).await?;
        if reaped.len() > failed {
            diesel::sql_query(format!("NOTIFY {}", crate::jobs::CHANNEL))
                .execute(conn)
                .await?;
        }
        Ok((reaped.len() - failed, failed))
    })
    .await
}

/// Hands `ids` back (pending, due now, the interrupted attempt not counted) and wakes the
/// other workers: the shutdown of a process whose handlers did not finish in time.
pub(crate) async fn release(
    conn: &mut AsyncPgConnection,
    worker: &str,
    ids: &[String],
) -> QueryResult<usize> {
    conn.transaction(async |conn| {
        let n = diesel::sql_query("SELECT queue_release($1, $2) AS n")
            .bind::<Text, _>(worker)
            .bind::<Array<Text>, _>(ids)
            .get_result::<Count>(conn)
            .await?
            .n;
        if n > 0 {
            diesel::sql_query(format!("NOTIFY {}", crate::jobs::CHANNEL))
                .execute(conn)
                .await?;
        }
        Ok(usize::try_from(n).unwrap_or(0))
    })
    .await
}
