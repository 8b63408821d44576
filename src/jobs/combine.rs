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

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::db::Database;
use crate::jobs::error::{QueueError, QueueResult};
use crate::jobs::model::EnqueueOptions;
use crate::jobs::wake_hub::SUPPRESS_TRIGGER;

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
    /// already holding its key.
    pub(crate) async fn enqueue(
        self: &Arc<Self>,
        db: &Database,
        job: Ready,
    ) -> QueueResult<String> {
        let (reply, answer) = oneshot::channel();
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
            tokio::spawn(write_waiting(self.clone(), db.clone()));
        }
        answer.await.unwrap_or_else(|_| {
            Err(QueueError::Db(crate::db::DbError::Unavailable(
                "the runtime stopped before the job was written".into(),
            )))
        })
    }
}

/// Writes what waits until nothing does.
async fn write_waiting(combiner: Arc<Combiner>, db: Database) {
    loop {
        let mut jobs = {
            let mut state = combiner.state();
            if state.waiting.is_empty() {
                state.writers -= 1;
                return;
            }
            let n = state.waiting.len().min(MOST_PER_STATEMENT);
            state.waiting.drain(..n).collect::<Vec<_>>()
        };
        write(&db, &mut jobs).await;
    }
}

async fn write(db: &Database, jobs: &mut [Pending]) {
    if jobs.len() > 1 {
        let together = match db.conn().await {
            Ok(mut conn) => insert_together(&mut conn, jobs).await,
            Err(e) => Err(QueueError::from(e)),
        };
        match together {
            Ok(ids) => {
                for (job, id) in jobs.iter_mut().zip(ids) {
                    job.answer(Ok(id));
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, jobs = jobs.len(), "shared enqueue failed; writing each job alone");
            }
        }
    }
    for job in jobs.iter_mut() {
        let alone = match db.conn().await {
            Ok(mut conn) => insert_alone(&mut conn, &job.job).await,
            Err(e) => Err(QueueError::from(e)),
        };
        job.answer(alone);
    }
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct Keyed {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    id: String,
}

/// One statement for all `jobs`; the answer of each, in order. A job whose key is taken
/// (by an older job or by an earlier one of `jobs`) is answered with the holder's id.
async fn insert_together(
    conn: &mut AsyncPgConnection,
    jobs: &[Pending],
) -> QueueResult<Vec<String>> {
    let inserted = diesel::sql_query(format!(
        "WITH quiet AS ({SUPPRESS_TRIGGER}) \
         INSERT INTO queue_jobs (id, type, payload, scheduled_for, max_attempts, priority, key) \
         SELECT j.id, j.type, j.payload, COALESCE(j.scheduled_for, now()), j.max_attempts, \
           j.priority, j.key \
         FROM quiet, unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], \
           $5::int4[], $6::int4[], $7::text[]) \
           AS j(id, type, payload, scheduled_for, max_attempts, priority, key) \
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
    if inserted.len() == jobs.len() {
        return Ok(jobs.iter().map(|j| j.job.id.clone()).collect());
    }
    // Some keys were taken: their holders answer for them.
    let written: std::collections::HashSet<String> = inserted.into_iter().map(|i| i.id).collect();
    let taken: Vec<&str> = jobs
        .iter()
        .filter(|j| !written.contains(&j.job.id))
        .filter_map(|j| j.job.options.key.as_deref())
        .collect();
    let holders: std::collections::HashMap<String, String> =
        diesel::sql_query("SELECT key, id FROM queue_jobs WHERE key = ANY($1)")
            .bind::<Array<Text>, _>(&taken)
            .load::<Keyed>(conn)
            .await?
            .into_iter()
            .map(|k| (k.key, k.id))
            .collect();
    jobs.iter()
        .map(|j| {
            if written.contains(&j.job.id) {
                return Ok(j.job.id.clone());
            }
            j.job
                .options
                .key
                .as_ref()
                .and_then(|key| holders.get(key).cloned())
                .ok_or_else(|| QueueError::from(diesel::result::Error::NotFound))
        })
        .collect()
}

async fn insert_alone(conn: &mut AsyncPgConnection, job: &Ready) -> QueueResult<String> {
    super::queue::insert_job(
        conn,
        &job.id,
        &job.job_type,
        &job.payload,
        &job.options,
        super::queue::Notice::AfterCommit,
    )
    .await
}
