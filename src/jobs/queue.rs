//! Producing jobs and the operator's view of them, on the shared pool or inside a caller's
//! own transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::schema::{queue_job_batches, queue_jobs};
use crate::db::Database;
use crate::jobs::combine::{Combiner, Ready};
use crate::jobs::error::{QueueError, QueueResult};
use crate::jobs::id::new_job_id;
use crate::jobs::job::Job;
use crate::jobs::model::{
    validate, validate_payload, BatchRecord, EnqueueOptions, JobRecord, JobStatus, NewJob,
};
use crate::jobs::runtime::Workers;
use crate::jobs::wake_hub::{WakeHub, SUPPRESS_TRIGGER};
use crate::jobs::{batches, stats};

/// Most jobs one `list` returns.
pub const MAX_LIST_LIMIT: i64 = 1000;

/// The producer and admin side of the queue; cheap to clone (it holds the pool handle).
#[derive(Clone)]
pub struct JobQueue {
    db: Database,
    hub: Arc<WakeHub>,
    combiner: Arc<Combiner>,
}

/// Which jobs `list` returns, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Only this type.
    pub job_type: Option<String>,
    /// Only this batch.
    pub batch_id: Option<String>,
    /// At most this many (1 to [`MAX_LIST_LIMIT`]).
    pub limit: i64,
}

impl JobQueue {
    /// A queue on the shared pool.
    pub fn new(db: Database) -> Self {
        Self {
            hub: Arc::new(WakeHub::new(db.clone())),
            combiner: Arc::new(Combiner::default()),
            db,
        }
    }

    /// Wakes `workers` (of this process) directly when this queue enqueues a due job, ahead
    /// of the notification that wakes the other processes.
    pub fn attach(&self, workers: &Workers) {
        self.hub.attach(workers.wake());
    }

    /// Enqueues one job; returns its id, or the id of the job already holding `options.key`.
    pub async fn enqueue(
        &self,
        job_type: &str,
        payload: Value,
        options: EnqueueOptions,
    ) -> QueueResult<String> {
        if options.batch_id.is_none() {
            // Concurrent enqueues of this process share a statement and a commit; the
            // writer wakes the workers once its statement committed.
            validate(job_type, &options).map_err(QueueError::Invalid)?;
            validate_payload(&payload).map_err(QueueError::Invalid)?;
            let job = Ready {
                id: new_job_id(),
                job_type: job_type.to_owned(),
                payload,
                options,
            };
            let id = self.combiner.enqueue(&self.db, &self.hub, job).await?;
            // Written on the combiner's task: the caller's reads must still see it.
            crate::db::routing::note_primary();
            return Ok(id);
        }
        let due = is_due(&options);
        let id = {
            let mut conn = self.db.conn().await?;
            insert_new(&mut conn, job_type, payload, options, Notice::AfterCommit).await?
        };
        if due {
            self.hub.due();
        }
        Ok(id)
    }

    /// Enqueues a job of type `J` with its typed payload.
    pub async fn enqueue_job<J: Job>(
        &self,
        payload: &J::Payload,
        options: EnqueueOptions,
    ) -> QueueResult<String> {
        let payload = encode::<J>(payload)?;
        self.enqueue(J::TYPE, payload, options).await
    }

    /// Creates a batch of `batch_type` with all its jobs in one transaction (the jobs in one
    /// statement) and returns the batch id. `options` apply to every job (a key is refused:
    /// it names one job).
    pub async fn enqueue_batch(
        &self,
        batch_type: &str,
        metadata: Option<Value>,
        jobs: Vec<NewJob>,
        options: EnqueueOptions,
    ) -> QueueResult<String> {
        let mut conn = self.db.conn().await?;
        let due = is_due(&options);
        let id = insert_batch(
            &mut conn,
            batch_type,
            metadata,
            jobs,
            options,
            Notice::AfterCommit,
        )
        .await?;
        if due {
            self.hub.due();
        }
        Ok(id)
    }

    /// The database handle (for the admin views in [`super::admin`]).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// One job.
    pub async fn job(&self, id: &str) -> QueueResult<JobRecord> {
        if id.contains('\0') {
            // No id holds one (PostgreSQL's text cannot).
            return Err(QueueError::JobNotFound(id.to_owned()));
        }
        let mut conn = self.db.conn().await?;
        queue_jobs::table
            .find(id)
            .select(JobRecord::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or_else(|| QueueError::JobNotFound(id.to_owned()))
    }

    /// One batch with its counters.
    pub async fn batch(&self, id: &str) -> QueueResult<BatchRecord> {
        if id.contains('\0') {
            // No id holds one (PostgreSQL's text cannot).
            return Err(QueueError::BatchNotFound(id.to_owned()));
        }
        let mut conn = self.db.conn().await?;
        batches::find(&mut conn, id).await
    }

    /// Jobs matching `filter`, newest first (an operator's view: no index serves it, so that
    /// no job write pays for one).
    pub async fn list(&self, filter: &JobFilter) -> QueueResult<Vec<JobRecord>> {
        if !(1..=MAX_LIST_LIMIT).contains(&filter.limit) {
            return Err(QueueError::Invalid(format!(
                "limit must be between 1 and {MAX_LIST_LIMIT}"
            )));
        }
        refuse_nul("type", filter.job_type.as_deref())?;
        refuse_nul("batch_id", filter.batch_id.as_deref())?;
        let mut conn = self.db.conn().await?;
        let mut query = queue_jobs::table
            .select(JobRecord::as_select())
            .order((queue_jobs::created_at.desc(), queue_jobs::id.desc()))
            .limit(filter.limit)
            .into_boxed();
        if let Some(status) = filter.status {
            query = query.filter(queue_jobs::status.eq(status.as_str()));
        }
        if let Some(job_type) = &filter.job_type {
            query = query.filter(queue_jobs::type_.eq(job_type));
        }
        if let Some(batch_id) = &filter.batch_id {
            query = query.filter(queue_jobs::batch_id.eq(batch_id));
        }
        Ok(query.load(&mut conn).await?)
    }

    /// Fails the batch's pending jobs with upstream's `Cancelled by administrator`; returns
    /// how many. Jobs already running finish and count as they end.
    pub async fn cancel_batch(&self, id: &str) -> QueueResult<usize> {
        if id.contains('\0') {
            // No id holds one (PostgreSQL's text cannot).
            return Err(QueueError::BatchNotFound(id.to_owned()));
        }
        let mut conn = self.db.conn().await?;
        batches::cancel(&mut conn, id).await
    }

    /// Puts the batch's failed jobs back to pending with their attempts reset; returns how many.
    pub async fn retry_batch(&self, id: &str) -> QueueResult<usize> {
        if id.contains('\0') {
            // No id holds one (PostgreSQL's text cannot).
            return Err(QueueError::BatchNotFound(id.to_owned()));
        }
        let mut conn = self.db.conn().await?;
        batches::retry(&mut conn, id).await
    }

    /// Counts by status and type, the oldest due job's wait, per-type durations.
    pub async fn stats(&self) -> QueueResult<stats::QueueStats> {
        let mut conn = self.db.conn().await?;
        Ok(stats::collect(&mut conn).await?)
    }

    /// Pending and processing jobs by type and the oldest due job's wait: cheap enough for
    /// every metrics scrape.
    pub async fn depth(&self) -> QueueResult<stats::QueueDepth> {
        // Figures that tolerate replica lag.
        let mut conn = self.db.read().await?;
        Ok(stats::depth(&mut conn).await?)
    }
}

/// PostgreSQL's text cannot hold a NUL character: a filter holding one is bad input, named.
pub(crate) fn refuse_nul(field: &str, text: Option<&str>) -> QueueResult<()> {
    if text.is_some_and(|t| t.contains('\0')) {
        return Err(QueueError::Invalid(format!(
            "{field} cannot hold a NUL character"
        )));
    }
    Ok(())
}

/// The payload of a `J` job as stored.
pub(crate) fn encode<J: Job>(payload: &J::Payload) -> QueueResult<Value> {
    serde_json::to_value(payload)
        .map_err(|e| QueueError::Invalid(format!("the {} payload does not encode: {e}", J::TYPE)))
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Who announces a due job: the table's trigger, at the commit of the caller's transaction,
/// or the queue's [`WakeHub`] once its own statement committed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    Trigger,
    AfterCommit,
}

/// Whether a job enqueued with `options` may run now (its wake-up is due at commit).
pub(crate) fn is_due(options: &EnqueueOptions) -> bool {
    options.scheduled_for.is_none_or(|at| at <= Utc::now())
}

/// [`JobQueue::enqueue`] on `conn`: inside a transaction of the caller, the job exists only
/// if that transaction commits, and its wake-up is sent only then.
pub async fn enqueue_in(
    conn: &mut AsyncPgConnection,
    job_type: &str,
    payload: Value,
    options: EnqueueOptions,
) -> QueueResult<String> {
    insert_new(conn, job_type, payload, options, Notice::Trigger).await
}

async fn insert_new(
    conn: &mut AsyncPgConnection,
    job_type: &str,
    payload: Value,
    options: EnqueueOptions,
    notice: Notice,
) -> QueueResult<String> {
    validate(job_type, &options).map_err(QueueError::Invalid)?;
    validate_payload(&payload).map_err(QueueError::Invalid)?;
    let id = new_job_id();
    if options.batch_id.is_none() {
        // One statement, one round trip: the common case needs no transaction of its own.
        return insert_job(conn, &id, job_type, &payload, &options, notice).await;
    }
    conn.transaction::<_, QueueError, _>(async |conn| {
        let id = insert_job(conn, &id, job_type, &payload, &options, notice).await?;
        if let Some(batch_id) = &options.batch_id {
            batches::grow(conn, batch_id, 1).await?;
        }
        Ok(id)
    })
    .await
}

/// Inserts one job, or answers the job already holding its key: one statement, so the
/// holder cannot vanish (cleanup) between finding the key taken and reading its id. A failed
/// holder is enqueued again instead (see [`EnqueueOptions::key`]).
pub(crate) async fn insert_job(
    conn: &mut AsyncPgConnection,
    id: &str,
    job_type: &str,
    payload: &Value,
    options: &EnqueueOptions,
    notice: Notice,
) -> QueueResult<String> {
    let sql = &INSERT_JOB[usize::from(matches!(notice, Notice::AfterCommit)) * 2
        + usize::from(options.key.is_some())];
    let inserted = diesel::sql_query(sql.as_str())
        .bind::<Text, _>(id)
        .bind::<Text, _>(job_type)
        .bind::<Jsonb, _>(payload)
        .bind::<Nullable<Timestamptz>, _>(options.scheduled_for)
        .bind::<Integer, _>(options.max_attempts)
        .bind::<Integer, _>(options.priority)
        .bind::<Nullable<Text>, _>(options.batch_id.as_deref())
        .bind::<Nullable<Text>, _>(options.key.as_deref())
        .get_result::<Inserted>(conn)
        .await
        .map_err(|e| missing_batch(e, options.batch_id.as_deref()))?;
    Ok(inserted.id)
}

/// [`insert_job`]'s four statements, built once: by [`Notice`] (trigger, then after
/// commit), each without a key and with one. Only a keyed insert carries the conflict clause
/// ([`ON_KEY_TAKEN`]): with no key there is nothing to conflict on, and PostgreSQL parses
/// and plans the clause's thirteen expressions at every insert (0.08 ms of a 0.3 ms
/// enqueue, measured with pgbench).
static INSERT_JOB: std::sync::LazyLock<[String; 4]> = std::sync::LazyLock::new(|| {
    const INSERT: &str = "INSERT INTO queue_jobs \
           (id, type, payload, scheduled_for, max_attempts, priority, batch_id, key) \
         SELECT $1, $2, $3, COALESCE($4, now()), $5, $6, $7, $8";
    // The trigger is off for this statement's transaction (a single statement here).
    let quiet = format!("WITH quiet AS ({SUPPRESS_TRIGGER}) {INSERT} FROM quiet");
    [
        format!("{INSERT} RETURNING id"),
        format!("{INSERT} {}", &*ON_KEY_TAKEN),
        format!("{quiet} RETURNING id"),
        format!("{quiet} {}", &*ON_KEY_TAKEN),
    ]
});

/// The conflict clause of a keyed insert. `DO UPDATE` (not `DO NOTHING`) so the statement
/// returns the holder's id whatever committed meanwhile; the holder is changed only when it
/// failed (and belongs to no batch, whose counters would then be wrong): it becomes the new
/// job. Otherwise every column keeps its value. The holder's row stays locked until the
/// enqueueing transaction ends: [`enqueue_in`] with a key inside a long transaction holds
/// off the renewal of a running holder, so keep such transactions short.
static ON_KEY_TAKEN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    const REVIVE: &str = "queue_jobs.status = 'failed' AND queue_jobs.batch_id IS NULL";
    let columns = [
        ("type", "EXCLUDED.type"),
        ("payload", "EXCLUDED.payload"),
        ("scheduled_for", "EXCLUDED.scheduled_for"),
        ("max_attempts", "EXCLUDED.max_attempts"),
        ("priority", "EXCLUDED.priority"),
        ("attempts", "0"),
        ("result", "NULL"),
        ("error", "NULL"),
        ("completed_at", "NULL"),
        ("started_at", "NULL"),
        ("locked_by", "NULL"),
        ("updated_at", "now()"),
        ("status", "'pending'"),
    ];
    let set: Vec<String> = columns
        .iter()
        .map(|(column, new)| {
            format!("{column} = CASE WHEN {REVIVE} THEN {new} ELSE queue_jobs.{column} END")
        })
        .collect();
    format!(
        "ON CONFLICT (key) WHERE key IS NOT NULL DO UPDATE SET {} RETURNING id",
        set.join(", ")
    )
});

/// [`JobQueue::enqueue_batch`] on `conn` (a caller's transaction works as for `enqueue_in`).
pub async fn enqueue_batch_in(
    conn: &mut AsyncPgConnection,
    batch_type: &str,
    metadata: Option<Value>,
    jobs: Vec<NewJob>,
    options: EnqueueOptions,
) -> QueueResult<String> {
    insert_batch(conn, batch_type, metadata, jobs, options, Notice::Trigger).await
}

async fn insert_batch(
    conn: &mut AsyncPgConnection,
    batch_type: &str,
    metadata: Option<Value>,
    jobs: Vec<NewJob>,
    options: EnqueueOptions,
    notice: Notice,
) -> QueueResult<String> {
    if jobs.is_empty() {
        return Err(QueueError::Invalid("a batch needs at least one job".into()));
    }
    if options.key.is_some() || options.batch_id.is_some() {
        return Err(QueueError::Invalid(
            "a key or a batch id names one job, not every job of a new batch".into(),
        ));
    }
    if batch_type.trim().is_empty() {
        return Err(QueueError::Invalid("the batch type is empty".into()));
    }
    let total = i32::try_from(jobs.len())
        .map_err(|_| QueueError::Invalid("too many jobs for one batch".into()))?;
    let mut ids = Vec::with_capacity(jobs.len());
    let mut types = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    for job in jobs {
        validate(&job.job_type, &options).map_err(QueueError::Invalid)?;
        validate_payload(&job.payload).map_err(QueueError::Invalid)?;
        ids.push(new_job_id());
        types.push(job.job_type);
        payloads.push(job.payload);
    }
    let batch_id = new_job_id();
    let scheduled_for: Option<DateTime<Utc>> = options.scheduled_for;
    conn.transaction::<_, QueueError, _>(async |conn| {
        if notice == Notice::AfterCommit {
            diesel::sql_query(SUPPRESS_TRIGGER).execute(conn).await?;
        }
        diesel::insert_into(queue_job_batches::table)
            .values((
                queue_job_batches::id.eq(&batch_id),
                queue_job_batches::type_.eq(batch_type),
                queue_job_batches::total_jobs.eq(total),
                queue_job_batches::metadata.eq(&metadata),
            ))
            .execute(conn)
            .await?;
        diesel::sql_query(
            "INSERT INTO queue_jobs \
               (id, type, payload, scheduled_for, max_attempts, priority, batch_id) \
             SELECT j.id, j.type, j.payload, COALESCE($4, now()), $5, $6, $7 \
             FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS j(id, type, payload)",
        )
        .bind::<Array<Text>, _>(&ids)
        .bind::<Array<Text>, _>(&types)
        .bind::<Array<Jsonb>, _>(&payloads)
        .bind::<Nullable<Timestamptz>, _>(scheduled_for)
        .bind::<Integer, _>(options.max_attempts)
        .bind::<Integer, _>(options.priority)
        .bind::<Text, _>(&batch_id)
        .execute(conn)
        .await?;
        Ok(())
    })
    .await?;
    Ok(batch_id)
}

/// A foreign-key violation on insert means the named batch does not exist.
fn missing_batch(e: DieselError, batch_id: Option<&str>) -> QueueError {
    match (&e, batch_id) {
        (DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _), Some(id)) => {
            QueueError::BatchNotFound(id.to_owned())
        }
        _ => e.into(),
    }
}
