//! Leases: renewed while handlers run, taken back from workers that stopped renewing (their
//! jobs run again, or fail when that was their last attempt), handed back at shutdown.
//!
//! A job taken back keeps naming its last holder until it is claimed again: if that run was
//! alive after all and reports, its outcome is written (see [`crate::jobs::settle`]), so a
//! job is never left failed for work that succeeded.

use diesel::prelude::*;
use diesel::sql_types::{Array, Double, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::jobs::batches::{self, Deltas};

/// Error of a job whose worker stopped answering during its last attempt.
pub const LEASE_EXPIRED: &str =
    "the worker running this job stopped (its lease expired): process killed or stalled";

/// Pushes the lease of the runs `ids` (at `attempts`) held by `worker` to `lease_ms` from
/// now; returns the ids of those it no longer holds (taken back, or settled meanwhile).
pub(crate) async fn renew(
    conn: &mut AsyncPgConnection,
    worker: &str,
    ids: &[String],
    attempts: &[i32],
    lease_ms: f64,
) -> QueryResult<Vec<String>> {
    // `queue_renew_leases` (migration `job_leases`) keeps the primary key in its plan and
    // skips jobs being settled right now.
    let lost: Vec<Lost> = diesel::sql_query(
        "SELECT queue_renew_leases AS id FROM queue_renew_leases($1, $2, $3, $4)",
    )
    .bind::<Text, _>(worker)
    .bind::<Array<Text>, _>(ids)
    .bind::<Array<Integer>, _>(attempts)
    .bind::<Double, _>(lease_ms)
    .load(conn)
    .await?;
    Ok(lost.into_iter().map(|l| l.id).collect())
}

#[derive(QueryableByName)]
struct Lost {
    #[diesel(sql_type = Text)]
    id: String,
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
/// now, or failed when their attempts are used up; either way still naming their holder,
/// whose late outcome is then written. Returns (requeued, failed).
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
               scheduled_for = now(), locked_until = NULL, updated_at = now() \
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
