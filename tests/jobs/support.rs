//! What the job tests share: a migrated database with its pool, fast worker settings, and
//! in-memory job types that record their runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deploystack_backend::config::PoolSettings;
use deploystack_backend::db::{Database, PgConnector};
use deploystack_backend::jobs::{
    EnqueueOptions, Job, JobContext, JobError, JobQueue, JobRecord, NewJob,
};
use serde::{Deserialize, Serialize};

use crate::common::pg::{ready_database, TestDb};

/// A migrated database, its pool handle, a connector (for LISTEN) and a queue on it.
pub struct QueueDb {
    pub db: TestDb,
    pub database: Database,
    pub connector: PgConnector,
    pub queue: JobQueue,
}

impl QueueDb {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let database = ready_database(&db).await;
        let connector =
            PgConnector::new(&db.connection, &PoolSettings::default()).expect("connector");
        Self {
            queue: JobQueue::new(database.clone()),
            database,
            connector,
            db,
        }
    }

    /// Waits until job `id` has `status`, and returns it.
    pub async fn wait_status(&self, id: &str, status: &str, limit: Duration) -> JobRecord {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let job = self.queue.job(id).await.expect("job");
            if job.status == status {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} still {} (error {:?}) after {limit:?}, expected {status}",
                job.status,
                job.error
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Count of jobs in `status`.
    pub async fn count(&self, status: &str) -> i64 {
        let rows = self
            .db
            .query(&format!(
                "SELECT count(*) FROM queue_jobs WHERE status = '{status}'"
            ))
            .await;
        rows[0].get(0)
    }

    /// A new batch of `n` jobs that succeed, due now; its id.
    pub async fn batch_of(&self, n: usize) -> String {
        let jobs = (0..n)
            .map(|_| NewJob {
                job_type: "test_behave".into(),
                payload: serde_json::json!({}),
            })
            .collect();
        self.queue
            .enqueue_batch("b", None, jobs, EnqueueOptions::default())
            .await
            .expect("batch")
    }
}

pub use crate::common::workers::fast;

/// Runs of each job id, with their attempt numbers.
#[derive(Clone, Default)]
pub struct Runs(Arc<Mutex<HashMap<String, Vec<i32>>>>);

impl Runs {
    pub fn record(&self, ctx: &JobContext) {
        self.0
            .lock()
            .expect("runs")
            .entry(ctx.id.clone())
            .or_default()
            .push(ctx.attempt);
    }

    pub fn of(&self, id: &str) -> Vec<i32> {
        self.0
            .lock()
            .expect("runs")
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn all(&self) -> HashMap<String, Vec<i32>> {
        self.0.lock().expect("runs").clone()
    }
}

/// What `test_behave` does on each attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Behaviour {
    /// Attempts up to this one fail (0: none).
    #[serde(default)]
    pub fail_until: i32,
    /// Panic instead of returning an error.
    #[serde(default)]
    pub panic: bool,
    /// Fail without retry.
    #[serde(default)]
    pub fatal: bool,
    /// Sleep this long first.
    #[serde(default)]
    pub sleep_ms: u64,
    /// Returned on success.
    #[serde(default)]
    pub echo: Option<serde_json::Value>,
    /// Put a NUL character in the error message.
    #[serde(default)]
    pub nul_error: bool,
    /// Return a result holding a NUL character.
    #[serde(default)]
    pub nul_result: bool,
}

/// A configurable job that records its runs.
pub struct Behave(pub Runs);

impl Job for Behave {
    const TYPE: &'static str = "test_behave";
    type Payload = Behaviour;
    type Output = Option<serde_json::Value>;

    async fn run(&self, b: Behaviour, ctx: JobContext) -> Result<Self::Output, JobError> {
        self.0.record(&ctx);
        if b.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(b.sleep_ms)).await;
        }
        if ctx.attempt <= b.fail_until {
            if b.panic {
                panic!("boom on attempt {}", ctx.attempt);
            }
            if b.fatal {
                let message = if b.nul_error {
                    "cannot\0 ever work"
                } else {
                    "cannot ever work"
                };
                return Err(JobError::fatal(message));
            }
            return Err(JobError::retry(format!("failed attempt {}", ctx.attempt)));
        }
        if b.nul_result {
            return Ok(Some(serde_json::json!({"text": "a\u{0}b"})));
        }
        Ok(b.echo)
    }
}

/// A `Behaviour` that just succeeds.
pub fn ok() -> Behaviour {
    Behaviour {
        fail_until: 0,
        panic: false,
        fatal: false,
        sleep_ms: 0,
        echo: None,
        nul_error: false,
        nul_result: false,
    }
}
