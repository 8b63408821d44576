//! Batch counters and status. Every change of a batch's counters happens in the transaction
//! that changes its jobs, and batch rows are always locked after job rows and in id order,
//! so concurrent workers, reapers and operators keep them exact without deadlocking.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::schema::queue_job_batches;
use crate::jobs::error::{QueueError, QueueResult};
use crate::jobs::model::BatchRecord;
use crate::jobs::model::Counted;

/// Upstream's error for jobs cancelled with their batch.
pub const CANCELLED_MESSAGE: &str = "Cancelled by administrator";

/// Changes of the (completed, failed) counters per batch id, ordered by id.
pub type Deltas = BTreeMap<String, (i32, i32)>;

/// Records that a job of `batch_id` reached `status` (only terminal ones count).
pub fn count(deltas: &mut Deltas, batch_id: Option<String>, status: &str) {
    let Some(batch_id) = batch_id else { return };
    let entry = deltas.entry(batch_id).or_default();
    match status {
        "completed" => entry.0 += 1,
        "failed" => entry.1 += 1,
        _ => {}
    }
}

/// Applies `deltas` and recomputes each batch's status: `completed` or `failed` (when a job
/// failed) once every job ended, `processing` otherwise. Call inside the transaction that
/// changed the jobs.
pub async fn apply(conn: &mut AsyncPgConnection, deltas: &Deltas) -> QueryResult<()> {
    let deltas: Vec<(&String, &(i32, i32))> =
        deltas.iter().filter(|(_, d)| **d != (0, 0)).collect();
    if deltas.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = deltas.iter().map(|(id, _)| id.as_str()).collect();
    let completed: Vec<i32> = deltas.iter().map(|(_, d)| d.0).collect();
    let failed: Vec<i32> = deltas.iter().map(|(_, d)| d.1).collect();
    // Locks in id order first: one UPDATE alone would lock in plan order.
    diesel::sql_query("SELECT id FROM queue_job_batches WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind::<Array<Text>, _>(&ids)
        .execute(conn)
        .await?;
    diesel::sql_query(
        "UPDATE queue_job_batches b SET \
           completed_jobs = b.completed_jobs + d.completed, \
           failed_jobs = b.failed_jobs + d.failed, \
           status = CASE \
             WHEN b.completed_jobs + d.completed + b.failed_jobs + d.failed >= b.total_jobs \
             THEN CASE WHEN b.failed_jobs + d.failed > 0 THEN 'failed' ELSE 'completed' END \
             ELSE 'processing' END, \
           completed_at = CASE \
             WHEN b.completed_jobs + d.completed + b.failed_jobs + d.failed >= b.total_jobs \
             THEN COALESCE(b.completed_at, now()) END \
         FROM unnest($1::text[], $2::int4[], $3::int4[]) AS d(id, completed, failed) \
         WHERE b.id = d.id",
    )
    .bind::<Array<Text>, _>(&ids)
    .bind::<Array<Integer>, _>(&completed)
    .bind::<Array<Integer>, _>(&failed)
    .execute(conn)
    .await?;
    Ok(())
}

/// One batch.
pub async fn find(conn: &mut AsyncPgConnection, id: &str) -> QueueResult<BatchRecord> {
    queue_job_batches::table
        .find(id)
        .select(BatchRecord::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| QueueError::BatchNotFound(id.to_owned()))
}

/// A job joined `id` after its creation: one more to wait for (a finished batch reopens).
pub(crate) async fn grow(conn: &mut AsyncPgConnection, id: &str, jobs: i32) -> QueueResult<()> {
    let n = diesel::update(queue_job_batches::table.find(id))
        .set((
            queue_job_batches::total_jobs.eq(queue_job_batches::total_jobs + jobs),
            queue_job_batches::status.eq(diesel::dsl::sql::<Text>(
                "CASE WHEN status IN ('completed', 'failed') THEN 'processing' ELSE status END",
            )),
            queue_job_batches::completed_at.eq(None::<chrono::DateTime<chrono::Utc>>),
        ))
        .execute(conn)
        .await?;
    if n == 0 {
        return Err(QueueError::BatchNotFound(id.to_owned()));
    }
    Ok(())
}

/// See [`crate::jobs::JobQueue::cancel_batch`].
pub async fn cancel(conn: &mut AsyncPgConnection, id: &str) -> QueueResult<usize> {
    conn.transaction::<_, QueueError, _>(async |conn| {
        find(conn, id).await?;
        let changed = diesel::sql_query(
            "WITH cancelled AS ( \
               UPDATE queue_jobs SET status = 'failed', error = $2, completed_at = now(), \
                 updated_at = now() \
               WHERE batch_id = $1 AND status = 'pending' RETURNING 1) \
             SELECT count(*) AS n FROM cancelled",
        )
        .bind::<Text, _>(id)
        .bind::<Text, _>(CANCELLED_MESSAGE)
        .get_result::<Counted>(conn)
        .await?
        .n;
        let n = i32::try_from(changed).unwrap_or(i32::MAX);
        apply(conn, &Deltas::from([(id.to_owned(), (0, n))])).await?;
        Ok(changed as usize)
    })
    .await
}

/// See [`crate::jobs::JobQueue::retry_batch`].
pub async fn retry(conn: &mut AsyncPgConnection, id: &str) -> QueueResult<usize> {
    conn.transaction::<_, QueueError, _>(async |conn| {
        find(conn, id).await?;
        let changed = diesel::sql_query(
            "WITH retried AS ( \
               UPDATE queue_jobs SET status = 'pending', attempts = 0, error = NULL, \
                 result = NULL, completed_at = NULL, started_at = NULL, \
                 scheduled_for = now(), updated_at = now() \
               WHERE batch_id = $1 AND status = 'failed' RETURNING 1) \
             SELECT count(*) AS n FROM retried",
        )
        .bind::<Text, _>(id)
        .get_result::<Counted>(conn)
        .await?
        .n;
        let n = i32::try_from(changed).unwrap_or(i32::MAX);
        apply(conn, &Deltas::from([(id.to_owned(), (0, -n))])).await?;
        if changed > 0 {
            diesel::sql_query(format!("NOTIFY {}", crate::jobs::CHANNEL))
                .execute(conn)
                .await?;
        }
        Ok(changed as usize)
    })
    .await
}
