//! Bodies of the job queue routes, in upstream's envelope.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde_json::Value;

use crate::jobs::{BatchRecord, JobRecord};

/// A job.
#[derive(Debug, Clone, Object)]
pub struct JobBody {
    /// Id (starts with its creation time, so ids sort by age).
    pub id: String,
    /// Handler type.
    #[oai(rename = "type")]
    pub job_type: String,
    /// Payload.
    pub payload: Value,
    /// `pending`, `processing`, `completed` or `failed`.
    pub status: String,
    /// Not run before.
    pub scheduled_for: DateTime<Utc>,
    /// Runs started.
    pub attempts: i32,
    /// Runs allowed.
    pub max_attempts: i32,
    /// Last error.
    pub error: Option<String>,
    /// What the handler returned.
    pub result: Option<Value>,
    /// Batch.
    pub batch_id: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// Enqueued at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Start of the latest run.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<JobRecord> for JobBody {
    fn from(j: JobRecord) -> Self {
        Self {
            id: j.id,
            job_type: j.job_type,
            payload: j.payload,
            status: j.status,
            scheduled_for: j.scheduled_for,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            error: j.error,
            result: j.result,
            batch_id: j.batch_id,
            priority: j.priority,
            created_at: j.created_at,
            updated_at: j.updated_at,
            started_at: j.started_at,
            completed_at: j.completed_at,
        }
    }
}

/// Where a page stands.
#[derive(Debug, Clone, Object)]
pub struct Pagination {
    /// Jobs matching the filters (counted up to 10,000; see `total_exact`).
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// Whether more jobs follow this page.
    pub has_more: bool,
    /// `false` when more than 10,000 jobs match: `total` is then a lower bound.
    pub total_exact: bool,
    /// The last id of this page: pass it as `before` for the next page (no offset limit).
    pub next_before: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Clone, Object)]
pub struct JobsPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobBody>,
    /// Where the page stands.
    pub pagination: Pagination,
}

/// `{success, data: {jobs, pagination}}`.
#[derive(Debug, Clone, Object)]
pub struct JobsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The page.
    pub data: JobsPage,
}

/// `{success, job}` (upstream's key).
#[derive(Debug, Clone, Object)]
pub struct JobEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The job.
    pub job: JobBody,
}

/// A batch with its counters, in upstream's camelCase.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct BatchBody {
    /// Id.
    pub id: String,
    /// What it is for.
    #[oai(rename = "type")]
    pub batch_type: String,
    /// Jobs in it.
    pub total_jobs: i32,
    /// Completed.
    pub completed_jobs: i32,
    /// Failed for good.
    pub failed_jobs: i32,
    /// `pending`, `processing`, `completed` or `failed`.
    pub status: String,
    /// Share of jobs ended, 0 to 1.
    pub progress: f64,
    /// While processing: the time left at the batch's pace so far (`"3 minutes"`, `"2
    /// hours"`); `null` otherwise.
    pub estimated_completion: Option<String>,
    /// Caller's data.
    pub metadata: Option<Value>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// All jobs ended at.
    pub completed_at: Option<DateTime<Utc>>,
}

impl BatchBody {
    /// `b`, with the mean run time of its completed jobs (for the estimate).
    pub fn of(b: BatchRecord, average_ms: Option<f64>) -> Self {
        let ended = f64::from(b.completed_jobs + b.failed_jobs);
        let progress = if b.total_jobs > 0 {
            (ended / f64::from(b.total_jobs)).min(1.0)
        } else {
            0.0
        };
        let remaining = (b.total_jobs - b.completed_jobs - b.failed_jobs).max(0);
        let estimated_completion = match average_ms {
            Some(avg)
                if b.status == "processing" && progress > 0.0 && progress < 1.0 && avg > 0.0 =>
            {
                Some(remaining_text(f64::from(remaining) * avg))
            }
            _ => None,
        };
        Self {
            id: b.id,
            batch_type: b.batch_type,
            total_jobs: b.total_jobs,
            completed_jobs: b.completed_jobs,
            failed_jobs: b.failed_jobs,
            status: b.status,
            progress,
            estimated_completion,
            metadata: b.metadata,
            created_at: b.created_at,
            completed_at: b.completed_at,
        }
    }
}

/// Upstream's wording of a time left: whole minutes (rounded up), or whole hours (rounded
/// up) from an hour on.
pub fn remaining_text(ms: f64) -> String {
    let minutes = (ms / 60_000.0).ceil().max(1.0) as u64;
    if minutes >= 60 {
        let hours = minutes.div_ceil(60);
        format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
    } else {
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    }
}

/// `{success, batch, recentJobs}`.
#[derive(Debug, Clone, Object)]
pub struct BatchEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The batch.
    pub batch: BatchBody,
    /// Its newest jobs, at most 10.
    #[oai(rename = "recentJobs")]
    pub recent_jobs: Vec<JobBody>,
}

/// `{success, types, count}`.
#[derive(Debug, Clone, Object)]
pub struct TypesEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The job types in the queue, sorted.
    pub types: Vec<String>,
    /// How many.
    pub count: i64,
}

/// Jobs of one type in one status.
#[derive(Debug, Clone, Object)]
pub struct TypeCount {
    /// Type.
    #[oai(rename = "type")]
    pub job_type: String,
    /// Status.
    pub status: String,
    /// How many.
    pub count: i64,
}

/// The queue's figures (upstream's keys, plus ours).
#[derive(Debug, Clone, Object)]
pub struct JobStats {
    /// Waiting.
    pub pending: i64,
    /// Running.
    pub processing: i64,
    /// Done.
    pub completed: i64,
    /// Failed for good.
    pub failed: i64,
    /// Jobs created since midnight UTC.
    #[oai(rename = "totalToday")]
    pub total_today: i64,
    /// Mean run time of the jobs completed in the last 24 hours, in milliseconds (0 when
    /// none).
    #[oai(rename = "averageDuration")]
    pub average_duration: f64,
    /// All jobs.
    pub total: i64,
    /// By type and status.
    #[oai(rename = "byType")]
    pub by_type: Vec<TypeCount>,
}

/// `{success, stats}` (upstream's key).
#[derive(Debug, Clone, Object)]
pub struct StatsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The figures.
    pub stats: JobStats,
}

/// What a batch action changed.
#[derive(Debug, Clone, Object)]
pub struct BatchChange {
    /// The batch.
    pub batch_id: String,
    /// Jobs changed.
    pub affected: i64,
}

/// `{success, message, data}`.
#[derive(Debug, Clone, Object)]
pub struct BatchChangeEnvelope {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    pub message: String,
    /// The numbers.
    pub data: BatchChange,
}
