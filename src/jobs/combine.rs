//! Concurrent single enqueues of one process share one statement and one commit. With the
//! WAL flushed at every commit, sixteen producers each committing its own insert are bound
//! by the disk (about 5,000 enqueues/s here); written together, each flush carries every
//! enqueue that arrived while the previous statement was in flight.
//!
//! Nothing changes for a lone enqueue: with nothing else waiting it is written alone, by
//! the same statement as before. The statements run in tasks of their own, so a caller that
//! gives up waiting never cuts short the write of another caller's job. If a shared
//! statement fails, every job in it is written again on its own, so each caller gets its
//! own answer (a key taken, a database error) and no job is lost or written twice (the id
//! is chosen before the first attempt).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use diesel::sql_types::{Array, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::db::{Database, DbError};
use crate::jobs::error::{QueueError, QueueResult};
use crate::jobs::model::EnqueueOptions;
use crate::jobs::queue::is_due;
use crate::jobs::wake_hub::{WakeHub, SUPPRESS_TRIGGER};

/// Statements in flight at once: one being written while the next gathers.
const WRITERS: usize = 2;
/// Most jobs one statement carries.
const MOST_PER_STATEMENT: usize = 1_000;

/// One job waiting to be written, and where its answer goes.
struct Pending {
    job: Ready,
    reply: Option<oneshot::Sender<QueueResult<String>>>,
}

impl Pending {
    fn answer(&mut self, result: QueueResult<String>) {
        if let Some(reply) = self.reply.take() {
            // A caller that stopped waiting no longer needs the answer.
            let _ = reply.send(result);
        }
    }
}

#[derive(Default)]
struct State {
    waiting: Vec<Pending>,
    writers: usize,
}

/// The enqueues of one [`crate::jobs::JobQueue`] (and its clones) waiting to be written.
#[derive(Default)]
pub(crate) struct Combiner {
    state: Mutex<State>,
}

/// A job for [`Combiner::enqueue`]: checked already, id chosen, no batch to join.
#[derive(Clone)]
pub(crate) struct Ready {
    pub id: String,
    pub job_type: String,
    pub payload: Value,
    pub options: EnqueueOptions,
}

impl Combiner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `job` with whatever else is waiting; returns its id, or the id of the job
    /// already holding its key. `hub` is told once a statement with a due job committed.
    pub(crate) async fn enqueue(
        self: &Arc<Self>,
        db: &Database,
        hub: &Arc<WakeHub>,
        job: Ready,
    ) -> QueueResult<String> {
        let (reply, answer) = oneshot::channel();
        let own = job.clone();
        let start_writer = {
            let mut state = self.state();
            state.waiting.push(Pending {
                job,
                reply: Some(reply),
            });
            if state.writers < WRITERS {
                state.writers += 1;
                true
            } else {
                false
            }
        };
        if start_writer {
            tokio::spawn(write_waiting(
                Writer {
                    combiner: self.clone(),
                    released: false,
                },
                db.clone(),
                hub.clone(),
            ));
        }
        match answer.await {
            Ok(result) => result,
            // The writer that held the job stopped before answering (its runtime shut
            // down, or it panicked): the job may or may not be written, so it is written
            // here, alone, under the same id (written already means done).
            Err(_) => {
                let mut conn = db.conn().await?;
                let id = insert_alone(&mut conn, &own).await?;
                if is_due(&own.options) {
                    hub.due();
                }
                Ok(id)
            }
        }
    }
}

/// A running writer's place in [`State::writers`], given back however the writer ends.
struct Writer {
    combiner: Arc<Combiner>,
    released: bool,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.released {
            self.combiner.state().writers -= 1;
        }
    }
}

/// Writes what waits until nothing does.
async fn write_waiting(mut writer: Writer, db: Database, hub: Arc<WakeHub>) {
    loop {
        let mut jobs = {
            let mut state = writer.combiner.state();
            if state.waiting.is_empty() {
                // Given back under the lock that found nothing waiting, so an enqueue
                // arriving now starts a writer of its own.
                state.writers -= 1;
                writer.released = true;
                return;
            }
            let n = state.waiting.len().min(MOST_PER_STATEMENT);
            state.waiting.drain(..n).collect::<Vec<_>>()
        };
        let due = jobs.iter().any(|j| is_due(&j.job.options));
        if write(&db, &mut jobs).await && due {
            hub.due();
        }
    }
}

/// Writes `jobs` and answers each; true when at least one was written.
async fn write(db: &Database, jobs: &mut [Pending]) -> bool {
    let mut conn = match db.conn().await {
        Ok(conn) => conn,
        Err(e) => {
            unavailable(jobs, &e.to_string());
            return false;
        }
    };
    let mut written = false;
    if jobs.len() > 1 {
        match insert_together(&mut conn, jobs).await {
            Ok(inserted) => {
                written = !inserted.is_empty();
                for job in jobs.iter_mut() {
                    if inserted.contains(&job.job.id) {
                        let id = job.job.id.clone();
                        job.answer(Ok(id));
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, jobs = jobs.len(), "shared enqueue failed; writing each job alone");
                // On a connection of its own: the failure may have broken this one (after
                // a commit whose answer was lost, the ids are found written).
                drop(conn);
                conn = match db.conn().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        unavailable(jobs, &e.to_string());
                        return false;
                    }
                };
            }
        }
    }
    // Alone: the only job, every job of a statement that failed, and those whose key was
    // taken (the single statement names the key's holder).
    for job in jobs.iter_mut().filter(|j| j.reply.is_some()) {
        let alone = insert_alone(&mut conn, &job.job).await;
        written |= alone.is_ok();
        job.answer(alone);
    }
    written
}

/// Answers every job of `jobs` still waiting: no connection could be had.
fn unavailable(jobs: &mut [Pending], reason: &str) {
    for job in jobs.iter_mut() {
        job.answer(Err(QueueError::Db(DbError::Unavailable(reason.to_owned()))));
    }
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Text)]
    id: String,
}

/// One statement for all `jobs`; the ids written. A job left out had its key taken (by an
/// older job or by an earlier one of `jobs`). Rows go in key order, so two statements
/// holding the same keys never wait for each other in a cycle.
async fn insert_together(
    conn: &mut AsyncPgConnection,
    jobs: &[Pending],
) -> QueueResult<HashSet<String>> {
    let inserted = diesel::sql_query(format!(
        "WITH quiet AS ({SUPPRESS_TRIGGER}) \
         INSERT INTO queue_jobs (id, type, payload, scheduled_for, max_attempts, priority, key) \
         SELECT j.id, j.type, j.payload, COALESCE(j.scheduled_for, now()), j.max_attempts, \
           j.priority, j.key \
         FROM quiet, unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], \
           $5::int4[], $6::int4[], $7::text[]) \
           AS j(id, type, payload, scheduled_for, max_attempts, priority, key) \
         ORDER BY j.key \
         ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING RETURNING id"
    ))
    .bind::<Array<Text>, _>(jobs.iter().map(|j| j.job.id.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        jobs.iter()
            .map(|j| j.job.job_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Jsonb>, _>(jobs.iter().map(|j| &j.job.payload).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(
        jobs.iter()
            .map(|j| j.job.options.scheduled_for)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Integer>, _>(
        jobs.iter()
            .map(|j| j.job.options.max_attempts)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Integer>, _>(
        jobs.iter()
            .map(|j| j.job.options.priority)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Text>>, _>(
        jobs.iter()
            .map(|j| j.job.options.key.as_deref())
            .collect::<Vec<_>>(),
    )
    .load::<Inserted>(conn)
    .await?;
    Ok(inserted.into_iter().map(|i| i.id).collect())
}

/// The single-job statement. The id was chosen before any attempt, so finding it taken
/// means an earlier attempt (whose answer was lost) wrote this very job.
async fn insert_alone(conn: &mut AsyncPgConnection, job: &Ready) -> QueueResult<String> {
    let written = super::queue::insert_job(
        conn,
        &job.id,
        &job.job_type,
        &job.payload,
        &job.options,
        super::queue::Notice::AfterCommit,
    )
    .await;
    match written {
        Err(QueueError::Db(DbError::Query(diesel::result::Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            info,
        )))) if info.constraint_name() == Some("queue_jobs_pkey") => Ok(job.id.clone()),
        other => other,
    }
}
