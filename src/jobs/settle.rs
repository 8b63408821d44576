//! Writing how runs ended, many at once: one statement for the jobs (guarded by holder and
//! attempt, so a worker whose lease was taken over changes nothing), plus the batch counters
//! in the same transaction when batch jobs are among them.
//!
//! The guards name the holder, not `status = 'processing'` (the lease check constraint makes
//! them equivalent): a status condition lets the planner walk the lease index, whose dead
//! entries grow with every completed job until vacuum, instead of the primary key.

use diesel::prelude::*;
use diesel::sql_types::{Array, Double, Integer, Jsonb, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::jobs::batches::{self, Deltas};

/// How one run ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub id: String,
    pub attempt: i32,
    pub batch: bool,
    pub end: End,
}

/// The job's next state.
#[derive(Debug)]
pub(crate) enum End {
    Completed(Option<Value>),
    /// Back to pending, due after the delay.
    Retry {
        error: String,
        delay_ms: f64,
    },
    Failed(String),
}

/// `error` as PostgreSQL can store it: text may not hold NUL characters, and an error
/// message that cannot be written would fail the whole statement at every retry.
fn storable(error: &str) -> std::borrow::Cow<'_, str> {
    if error.contains('\0') {
        std::borrow::Cow::Owned(error.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(error)
    }
}

#[derive(QueryableByName)]
struct Settled {
    #[diesel(sql_type = Nullable<Text>)]
    batch_id: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Writes `outcomes` of `worker`'s runs; returns how many jobs were still held (the others
/// were taken over after their lease expired, and their outcome is dropped).
pub(crate) async fn settle(
    conn: &mut AsyncPgConnection,
    worker: &str,
    outcomes: &[Outcome],
) -> QueryResult<usize> {
    let n = outcomes.len();
    let mut ids = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut results: Vec<Option<&Value>> = Vec::with_capacity(n);
    let mut errors: Vec<Option<std::borrow::Cow<'_, str>>> = Vec::with_capacity(n);
    let mut delays = Vec::with_capacity(n);
    for outcome in outcomes {
        ids.push(outcome.id.as_str());
        attempts.push(outcome.attempt);
        let (status, result, error, delay) = match &outcome.end {
            End::Completed(result) => ("completed", result.as_ref(), None, 0.0),
            End::Retry { error, delay_ms } => ("pending", None, Some(storable(error)), *delay_ms),
            End::Failed(error) => ("failed", None, Some(storable(error)), 0.0),
        };
        statuses.push(status);
        results.push(result);
        errors.push(error);
        delays.push(delay);
    }
    // `queue_settle` (migration `job_queue_throughput`) keeps the primary key in its plan.
    let statement = diesel::sql_query(
        "SELECT settled_batch_id AS batch_id, settled_status AS status \
         FROM queue_settle($7, $1, $2, $3, $4, $5, $6)",
    )
    .bind::<Array<Text>, _>(ids)
    .bind::<Array<Integer>, _>(attempts)
    .bind::<Array<Text>, _>(statuses)
    .bind::<Array<Nullable<Jsonb>>, _>(results)
    .bind::<Array<Nullable<Text>>, _>(&errors)
    .bind::<Array<Double>, _>(delays)
    .bind::<Text, _>(worker);
    if !outcomes.iter().any(|o| o.batch) {
        // One statement is atomic on its own.
        return Ok(statement.load::<Settled>(conn).await?.len());
    }
    conn.transaction(async |conn| {
        let settled = statement.load::<Settled>(conn).await?;
        let mut deltas = Deltas::new();
        for row in &settled {
            batches::count(&mut deltas, row.batch_id.clone(), &row.status);
        }
        batches::apply(conn, &deltas).await?;
        Ok(settled.len())
    })
    .await
}
