//! `/api/admin/jobs`: upstream's job queue pages for the global administrator (its
//! `jobs.view` permission): pages with filters, search, one job, one batch, the figures, and
//! cancelling or retrying a batch as `jobs cancel-batch|retry-batch` do.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::OpenApi;
use tracing::{error, info};

use super::jobs_bodies::{
    BatchBody, BatchChange, BatchChangeEnvelope, BatchEnvelope, JobBody, JobEnvelope, JobStats,
    JobsEnvelope, JobsPage, Pagination, StatsEnvelope, TypeCount, TypesEnvelope,
};
use super::{Read, Write};
use crate::api::account_bodies::Failure;
use crate::api::session_cookie::SessionCookie;
use crate::api::tags::ApiTags;
use crate::jobs::admin::JobQuery;
use crate::jobs::{JobStatus, QueueError};
use crate::state::AppState;

/// Default page size (upstream's).
const DEFAULT_LIMIT: i64 = 50;

/// How a queue failure is answered.
enum Refusal {
    BadRequest(Failure),
    NotFound(Failure),
    Failed(Failure),
    Unavailable(Failure),
}

impl From<QueueError> for Refusal {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Invalid(message) => Self::BadRequest(Failure::new(message)),
            QueueError::JobNotFound(_) => Self::NotFound(Failure::new("Job not found")),
            QueueError::BatchNotFound(_) => Self::NotFound(Failure::new("Batch not found")),
            QueueError::Db(crate::db::DbError::Query(q)) => {
                error!(error = %q, "job queue query failed");
                Self::Failed(Failure::new("Internal server error"))
            }
            QueueError::Db(db) => {
                let body = crate::api::ErrorBody::from_db(&db);
                Self::Unavailable(Failure::new(body.error).with_message(body.message))
            }
        }
    }
}

impl<T: ToJSON + Type> From<Refusal> for Read<T> {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadRequest(f) => Self::BadRequest(Json(f)),
            Refusal::NotFound(f) => Self::NotFound(Json(f)),
            Refusal::Failed(f) => Self::Failed(Json(f)),
            Refusal::Unavailable(f) => Self::Unavailable(Json(f)),
        }
    }
}

impl<T: ToJSON + Type> From<Refusal> for Write<T> {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadRequest(f) => Self::BadRequest(Json(f)),
            Refusal::NotFound(f) => Self::NotFound(Json(f)),
            Refusal::Failed(f) => Self::Failed(Json(f)),
            Refusal::Unavailable(f) => Self::Unavailable(Json(f)),
        }
    }
}

/// Upstream's `parseInt`-style numbers, with its messages.
fn number(text: Option<&str>, default: i64, message: &str) -> Result<i64, Refusal> {
    match text {
        None => Ok(default),
        Some(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| Refusal::BadRequest(Failure::new(message))),
    }
}

fn status(text: Option<&str>) -> Result<Option<JobStatus>, Refusal> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<JobStatus>().map_err(|_| {
                Refusal::BadRequest(Failure::new(
                    "Status must be pending, processing, completed or failed",
                ))
            })
        })
        .transpose()
}

fn time(name: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, Refusal> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    Refusal::BadRequest(Failure::new(format!(
                        "{name} must be an ISO 8601 date and time (2026-01-31T12:00:00Z)"
                    )))
                })
        })
        .transpose()
}

/// The page of `query`, in upstream's envelope.
async fn page(state: &AppState, query: JobQuery) -> Result<JobsEnvelope, Refusal> {
    let page = state.jobs.queue().page(&query).await?;
    let returned = page.jobs.len() as i64;
    let has_more = if query.before.is_some() {
        returned == query.limit
    } else {
        query.offset + returned < page.total || !page.total_exact
    };
    let next_before = page.jobs.last().map(|j| j.id.clone());
    Ok(JobsEnvelope {
        success: true,
        data: JobsPage {
            jobs: page.jobs.into_iter().map(JobBody::from).collect(),
            pagination: Pagination {
                total: page.total,
                limit: query.limit,
                offset: query.offset,
                has_more: has_more && returned > 0,
                total_exact: page.total_exact,
                next_before,
            },
        },
    })
}

/// Job queue operations.
pub struct JobsApi;

#[OpenApi(tag = "ApiTags::Jobs")]
impl JobsApi {
    /// Jobs
    ///
    /// Newest first. `limit` 1 to 100 (default 50), `offset` up to 10,000; page further with
    /// `before` (the previous page's `next_before`), which costs no more than a first page.
    #[oai(path = "/api/admin/jobs", method = "get", operation_id = "listJobs")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        status: Query<Option<String>>,
        #[oai(name = "type")] job_type: Query<Option<String>>,
        limit: Query<Option<String>>,
        offset: Query<Option<String>>,
        before: Query<Option<String>>,
    ) -> Read<JobsEnvelope> {
        as_admin!(state, session);
        let answer = async {
            let query = JobQuery {
                status: self::status(status.0.as_deref())?,
                job_type: job_type.0.filter(|t| !t.is_empty()),
                before: before.0.filter(|b| !b.is_empty()),
                limit: number(
                    limit.0.as_deref(),
                    DEFAULT_LIMIT,
                    "Limit must be between 1 and 100",
                )?,
                offset: number(offset.0.as_deref(), 0, "Offset must be non-negative")?,
                ..JobQuery::default()
            };
            page(&state, query).await
        }
        .await;
        match answer {
            Ok(envelope) => Read::Ok(Json(envelope)),
            Err(r) => r.into(),
        }
    }

    /// Search jobs
    ///
    /// By id substring (`id`), `type`, `status`, and creation time (`created_after` inclusive,
    /// `created_before` exclusive, ISO 8601); paged as the list.
    #[oai(
        path = "/api/admin/jobs/search",
        method = "get",
        operation_id = "searchJobs"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Query<Option<String>>,
        #[oai(name = "type")] job_type: Query<Option<String>>,
        status: Query<Option<String>>,
        created_after: Query<Option<String>>,
        created_before: Query<Option<String>>,
        limit: Query<Option<String>>,
        offset: Query<Option<String>>,
    ) -> Read<JobsEnvelope> {
        as_admin!(state, session);
        let answer = async {
            let query = JobQuery {
                status: self::status(status.0.as_deref())?,
                job_type: job_type.0.filter(|t| !t.is_empty()),
                id_contains: id.0.filter(|t| !t.is_empty()),
                created_after: time("created_after", created_after.0.as_deref())?,
                created_before: time("created_before", created_before.0.as_deref())?,
                limit: number(
                    limit.0.as_deref(),
                    DEFAULT_LIMIT,
                    "Limit must be between 1 and 100",
                )?,
                offset: number(offset.0.as_deref(), 0, "Offset must be non-negative")?,
                ..JobQuery::default()
            };
            page(&state, query).await
        }
        .await;
        match answer {
            Ok(envelope) => Read::Ok(Json(envelope)),
            Err(r) => r.into(),
        }
    }

    /// Queue figures
    ///
    /// Counts by status and by type and status, jobs created today (UTC), and the mean run
    /// time of the jobs completed in the last 24 hours in milliseconds.
    #[oai(
        path = "/api/admin/jobs/stats",
        method = "get",
        operation_id = "jobStats"
    )]
    async fn stats(&self, state: Data<&AppState>, session: SessionCookie) -> Read<StatsEnvelope> {
        as_admin!(state, session);
        match state.jobs.queue().summary().await {
            Ok(summary) => {
                let of = |status: &str| {
                    summary
                        .counts
                        .iter()
                        .filter(|c| c.status == status)
                        .map(|c| c.count)
                        .sum::<i64>()
                };
                Read::Ok(Json(StatsEnvelope {
                    success: true,
                    stats: JobStats {
                        pending: of("pending"),
                        processing: of("processing"),
                        completed: of("completed"),
                        failed: of("failed"),
                        total_today: summary.total_today,
                        average_duration: summary.average_duration_ms.unwrap_or(0.0),
                        total: summary.counts.iter().map(|c| c.count).sum(),
                        by_type: summary
                            .counts
                            .into_iter()
                            .map(|c| TypeCount {
                                job_type: c.job_type,
                                status: c.status,
                                count: c.count,
                            })
                            .collect(),
                    },
                }))
            }
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// Job types
    ///
    /// The types of the jobs in the queue, sorted (`{success, types, count}`).
    #[oai(
        path = "/api/admin/jobs/types",
        method = "get",
        operation_id = "jobTypes"
    )]
    async fn types(&self, state: Data<&AppState>, session: SessionCookie) -> Read<TypesEnvelope> {
        as_admin!(state, session);
        match state.jobs.queue().summary().await {
            Ok(summary) => {
                let mut types: Vec<String> =
                    summary.counts.into_iter().map(|c| c.job_type).collect();
                types.sort();
                types.dedup();
                Read::Ok(Json(TypesEnvelope {
                    success: true,
                    count: types.len() as i64,
                    types,
                }))
            }
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// One batch
    ///
    /// Its counters, progress (0 to 1), the time left at its pace so far, and its ten newest
    /// jobs (`recentJobs`); 404 `Batch not found`.
    #[oai(
        path = "/api/admin/jobs/batches/:id",
        method = "get",
        operation_id = "getJobBatch"
    )]
    async fn batch(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Read<BatchEnvelope> {
        as_admin!(state, session);
        let queue = state.jobs.queue();
        let answer = async {
            let batch = queue.batch(&id.0).await?;
            let average = queue.batch_average_ms(&id.0).await?;
            let recent = queue
                .page(&JobQuery {
                    batch_id: Some(id.0.clone()),
                    limit: 10,
                    ..JobQuery::default()
                })
                .await?;
            Ok::<_, QueueError>(BatchEnvelope {
                success: true,
                batch: BatchBody::of(batch, average),
                recent_jobs: recent.jobs.into_iter().map(JobBody::from).collect(),
            })
        }
        .await;
        match answer {
            Ok(envelope) => Read::Ok(Json(envelope)),
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// Cancel a batch
    ///
    /// Its pending jobs fail with `Cancelled by administrator`; running ones finish.
    #[oai(
        path = "/api/admin/jobs/batches/:id/cancel",
        method = "post",
        operation_id = "cancelJobBatch"
    )]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Write<BatchChangeEnvelope> {
        let user = as_admin!(state, session);
        match state.jobs.queue().cancel_batch(&id.0).await {
            Ok(n) => {
                info!(batch = %id.0, user = %user.id, cancelled = n, "batch cancelled");
                Write::Ok(Json(BatchChangeEnvelope {
                    success: true,
                    message: format!("Cancelled {n} pending jobs"),
                    data: BatchChange {
                        batch_id: id.0,
                        affected: n as i64,
                    },
                }))
            }
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// Retry a batch
    ///
    /// Its failed jobs go back to pending with their attempts reset.
    #[oai(
        path = "/api/admin/jobs/batches/:id/retry",
        method = "post",
        operation_id = "retryJobBatch"
    )]
    async fn retry(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Write<BatchChangeEnvelope> {
        let user = as_admin!(state, session);
        match state.jobs.queue().retry_batch(&id.0).await {
            Ok(n) => {
                info!(batch = %id.0, user = %user.id, retried = n, "batch retried");
                Write::Ok(Json(BatchChangeEnvelope {
                    success: true,
                    message: format!("Retried {n} failed jobs"),
                    data: BatchChange {
                        batch_id: id.0,
                        affected: n as i64,
                    },
                }))
            }
            Err(e) => Refusal::from(e).into(),
        }
    }

    /// One job
    ///
    /// 404 `Job not found`.
    #[oai(path = "/api/admin/jobs/:id", method = "get", operation_id = "getJob")]
    async fn job(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Read<JobEnvelope> {
        as_admin!(state, session);
        match state.jobs.queue().job(&id.0).await {
            Ok(job) => Read::Ok(Json(JobEnvelope {
                success: true,
                job: JobBody::from(job),
            })),
            Err(e) => Refusal::from(e).into(),
        }
    }
}
