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
use crate::jobs::lease::LEASE_EXPIRED;

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

/// Writes `outcomes` of `worker`'s runs; returns how many were written. A run whose lease
/// was taken back is written too when nobody ran its job since (the job still names it,
/// pending or failed as the reaper left it); the others were taken over, and their outcome
/// is dropped.
pub(crate) async fn settle(
    conn: &mut AsyncPgConnection,
    worker: &str,
    outcomes: &[Outcome],
) -> QueryResult<usize> {
    let columns = Columns::new(outcomes);
    // `queue_settle` (migration `job_leases`) keeps the primary key in its plan.
    let statement = diesel::sql_query(
        "SELECT settled_batch_id AS batch_id, settled_status AS status \
         FROM queue_settle($7, $1, $2, $3, $4, $5, $6)",
    )
    .bind::<Array<Text>, _>(&columns.ids)
    .bind::<Array<Integer>, _>(&columns.attempts)
    .bind::<Array<Text>, _>(&columns.statuses)
    .bind::<Array<Nullable<Jsonb>>, _>(&columns.results)
    .bind::<Array<Nullable<Text>>, _>(&columns.errors)
    .bind::<Array<Double>, _>(&columns.delays)
    .bind::<Text, _>(worker);
    let settled = if !outcomes.iter().any(|o| o.batch) {
        // One statement is atomic on its own.
        statement.load::<Settled>(conn).await?.len()
    } else {
        conn.transaction(async |conn| {
            let settled = statement.load::<Settled>(conn).await?;
            let mut deltas = Deltas::new();
            for row in &settled {
                batches::count(&mut deltas, row.batch_id.clone(), &row.status);
            }
            batches::apply(conn, &deltas).await?;
            Ok::<_, diesel::result::Error>(settled.len())
        })
        .await?
    };
    if settled == outcomes.len() {
        return Ok(settled);
    }
    Ok(settled + settle_late(conn, worker, &columns).await?)
}

/// The outcomes of one settle, as the columns PostgreSQL takes them.
struct Columns<'a> {
    ids: Vec<&'a str>,
    attempts: Vec<i32>,
    statuses: Vec<&'static str>,
    results: Vec<Option<&'a Value>>,
    errors: Vec<Option<std::borrow::Cow<'a, str>>>,
    delays: Vec<f64>,
}

impl<'a> Columns<'a> {
    fn new(outcomes: &'a [Outcome]) -> Self {
        let n = outcomes.len();
        let mut columns = Self {
            ids: Vec::with_capacity(n),
            attempts: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            results: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            delays: Vec::with_capacity(n),
        };
        for outcome in outcomes {
            columns.ids.push(outcome.id.as_str());
            columns.attempts.push(outcome.attempt);
            let (status, result, error, delay) = match &outcome.end {
                End::Completed(result) => ("completed", result.as_ref(), None, 0.0),
                End::Retry { error, delay_ms } => {
                    ("pending", None, Some(storable(error)), *delay_ms)
                }
                End::Failed(error) => ("failed", None, Some(storable(error)), 0.0),
            };
            columns.statuses.push(status);
            columns.results.push(result);
            columns.errors.push(error);
            columns.delays.push(delay);
        }
        columns
    }
}

#[derive(QueryableByName)]
struct SettledLate {
    #[diesel(sql_type = Nullable<Text>)]
    batch_id: Option<String>,
    #[diesel(sql_type = Text)]
    previous: String,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Writes the outcomes of runs whose lease was taken back while nobody ran their job since,
/// moving the batch counters from what the reaper recorded; returns how many.
async fn settle_late(
    conn: &mut AsyncPgConnection,
    worker: &str,
    columns: &Columns<'_>,
) -> QueryResult<usize> {
    conn.transaction(async |conn| {
        let late: Vec<SettledLate> = diesel::sql_query(
            "SELECT settled_batch_id AS batch_id, previous_status AS previous, \
               settled_status AS status \
             FROM queue_settle_late($7, $1, $2, $3, $4, $5, $6, $8)",
        )
        .bind::<Array<Text>, _>(&columns.ids)
        .bind::<Array<Integer>, _>(&columns.attempts)
        .bind::<Array<Text>, _>(&columns.statuses)
        .bind::<Array<Nullable<Jsonb>>, _>(&columns.results)
        .bind::<Array<Nullable<Text>>, _>(&columns.errors)
        .bind::<Array<Double>, _>(&columns.delays)
        .bind::<Text, _>(worker)
        .bind::<Text, _>(LEASE_EXPIRED)
        .load(conn)
        .await?;
        let mut deltas = Deltas::new();
        for row in &late {
            if row.previous == "failed" {
                if let Some(batch_id) = &row.batch_id {
                    deltas.entry(batch_id.clone()).or_default().1 -= 1;
                }
            }
            batches::count(&mut deltas, row.batch_id.clone(), &row.status);
        }
        batches::apply(conn, &deltas).await?;
        Ok(late.len())
    })
    .await
}
