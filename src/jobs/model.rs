//! What the queue stores and returns: statuses, enqueue options, job and batch records.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::db::schema::{queue_job_batches, queue_jobs};

/// Upstream's statuses, for jobs and batches alike (`pending → processing →
/// completed | failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting to run (also between retries).
    Pending,
    /// Held by a worker under a lease.
    Processing,
    /// Ran successfully.
    Completed,
    /// Ran out of attempts, or can never run (unknown type, undecodable payload, cancelled).
    Failed,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?} (expected pending, processing, completed or failed)")
            })
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Upstream's default number of runs of a job.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;
/// Longest accepted job type name.
pub const MAX_TYPE_LENGTH: usize = 100;
/// Most runs a job may be given.
pub const MAX_ATTEMPTS_LIMIT: i32 = 1000;

/// How a job is enqueued (upstream `createJob` options, plus priority and key).
#[derive(Debug, Clone)]
pub struct EnqueueOptions {
    /// Not run before this time; now when `None`.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Runs allowed before the job fails for good (1 to 1000).
    pub max_attempts: i32,
    /// Higher runs first among due jobs; 0 by default.
    pub priority: i32,
    /// An existing batch the job joins (its `total_jobs` grows by one).
    pub batch_id: Option<String>,
    /// A unique key: while the job holding it is pending, processing or completed, enqueueing
    /// the key again adds nothing and answers that job's id (the periodic jobs use one per
    /// schedule and slot). A failed job gives its key back: enqueueing the key again runs
    /// that job again (same id; the new payload and options; attempts from zero).
    pub key: Option<String>,
}

impl Default for EnqueueOptions {
    fn default() -> Self {
        Self {
            scheduled_for: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            priority: 0,
            batch_id: None,
            key: None,
        }
    }
}

/// One job of a batch.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Handler type, e.g. `sync_mcp_server`.
    pub job_type: String,
    /// Payload, as the handler decodes it.
    pub payload: Value,
}

/// A stored job.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = queue_jobs, check_for_backend(diesel::pg::Pg))]
pub struct JobRecord {
    /// Id.
    pub id: String,
    /// Handler type.
    #[serde(rename = "type")]
    #[diesel(column_name = type_)]
    pub job_type: String,
    /// Payload.
    pub payload: Value,
    /// `pending`, `processing`, `completed` or `failed`.
    pub status: String,
    /// Not run before.
    pub scheduled_for: DateTime<Utc>,
    /// Runs started so far.
    pub attempts: i32,
    /// Runs allowed.
    pub max_attempts: i32,
    /// Last error.
    pub error: Option<String>,
    /// What the handler returned.
    pub result: Option<Value>,
    /// Batch, if any.
    pub batch_id: Option<String>,
    /// Enqueued at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Ended at (completed or failed).
    pub completed_at: Option<DateTime<Utc>>,
    /// Higher runs first.
    pub priority: i32,
    /// Worker holding it while processing; after its lease was taken back, the worker that
    /// last held it (until it is claimed again), whose late outcome may still be written.
    pub locked_by: Option<String>,
    /// Lease end (while processing).
    pub locked_until: Option<DateTime<Utc>>,
    /// Start of the latest run.
    pub started_at: Option<DateTime<Utc>>,
    /// Unique key, if any.
    pub key: Option<String>,
}

/// A stored batch with its counters.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = queue_job_batches, check_for_backend(diesel::pg::Pg))]
pub struct BatchRecord {
    /// Id.
    pub id: String,
    /// What the batch is for (e.g. `registry_sync`).
    #[serde(rename = "type")]
    #[diesel(column_name = type_)]
    pub batch_type: String,
    /// Jobs in the batch.
    pub total_jobs: i32,
    /// Jobs completed.
    pub completed_jobs: i32,
    /// Jobs failed for good.
    pub failed_jobs: i32,
    /// `pending` until a job ends, `processing`, then `completed` or `failed`.
    pub status: String,
    /// Caller's data.
    pub metadata: Option<Value>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// All jobs ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Checks a job before anything is written.
pub(crate) fn validate(job_type: &str, options: &EnqueueOptions) -> Result<(), String> {
    if job_type.trim().is_empty() {
        return Err("the job type is empty".into());
    }
    if job_type.len() > MAX_TYPE_LENGTH {
        return Err(format!(
            "the job type is longer than {MAX_TYPE_LENGTH} characters"
        ));
    }
    if options.key.is_some() && options.batch_id.is_some() {
        // A key that is taken would name a job without adding one to the batch's count.
        return Err("a job with a key cannot join a batch".into());
    }
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&options.max_attempts) {
        return Err(format!(
            "max attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {}",
            options.max_attempts
        ));
    }
    Ok(())
}

/// Whether a string of `value` (a key or a value) holds a NUL character, which PostgreSQL's
/// jsonb cannot store.
pub(crate) fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Checks a payload before anything is written.
pub(crate) fn validate_payload(payload: &Value) -> Result<(), String> {
    if holds_nul(payload) {
        return Err(
            "the payload holds a NUL character (\\u0000), which PostgreSQL cannot store".into(),
        );
    }
    Ok(())
}

/// `SELECT count(*) AS n` of a statement that changed rows (`WITH gone AS (... RETURNING 1)`).
#[derive(QueryableByName)]
pub(crate) struct Counted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) n: i64,
}
