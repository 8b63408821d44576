//! The queue as the admin API shows it: pages of jobs, newest first, filtered by status,
//! type, id substring, batch and creation time, and the figures of `stats`.
//!
//! Pages walk the primary key backwards (ids start with their creation time, see
//! [`super::id`]), so a first page costs the same with a million rows as with ten. The total
//! is counted up to [`TOTAL_CAP`] rows and reported as "at least" beyond it, and offsets stop
//! at [`MAX_OFFSET`]: deeper pages take `before` (the last id of the previous page), which
//! costs no more than the first.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use super::error::{QueueError, QueueResult};
use super::model::{JobRecord, JobStatus};
use super::queue::{refuse_nul, JobQueue};
use super::stats::{self, StatusCount};

/// Rows counted for a page's total; past it the total is a lower bound.
pub const TOTAL_CAP: i64 = 10_000;
/// Deepest offset; past it, page with `before`.
pub const MAX_OFFSET: i64 = 10_000;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Only this type.
    pub job_type: Option<String>,
    /// Only ids holding this text.
    pub id_contains: Option<String>,
    /// Only this batch.
    pub batch_id: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Only ids below this one (the last id of the previous page).
    pub before: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// One page.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// Jobs matching the filters (without `before`), up to [`TOTAL_CAP`].
    pub total: i64,
    /// Whether `total` is exact (else there are more).
    pub total_exact: bool,
}

/// The figures of the stats page.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// Counts by status and type.
    pub counts: Vec<StatusCount>,
    /// Jobs created since midnight UTC.
    pub total_today: i64,
    /// Mean run time of jobs completed in the last 24 hours, in milliseconds.
    pub average_duration_ms: Option<f64>,
}

/// A WHERE clause and its parameters, numbered in order.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

enum Param {
    Text(String),
    Time(DateTime<Utc>),
}

impl Conditions {
    fn of(query: &JobQuery, with_before: bool) -> Self {
        let mut c = Self::default();
        if let Some(status) = query.status {
            c.push("status = ", Param::Text(status.as_str().into()));
        }
        if let Some(t) = &query.job_type {
            c.push("type = ", Param::Text(t.clone()));
        }
        if let Some(batch) = &query.batch_id {
            c.push("batch_id = ", Param::Text(batch.clone()));
        }
        if let Some(text) = &query.id_contains {
            // A literal substring: no pattern characters to escape.
            c.clauses
                .push(format!("strpos(id, ${}) > 0", c.params.len() + 1));
            c.params.push(Param::Text(text.clone()));
        }
        if let Some(at) = query.created_after {
            c.push("created_at >= ", Param::Time(at));
        }
        if let Some(at) = query.created_before {
            c.push("created_at < ", Param::Time(at));
        }
        if let (true, Some(id)) = (with_before, &query.before) {
            c.push("id < ", Param::Text(id.clone()));
        }
        c
    }

    fn push(&mut self, clause: &str, param: Param) {
        self.params.push(param);
        self.clauses.push(format!("{clause}${}", self.params.len()));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn bind(
        self,
        mut query: BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery>,
    ) -> BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery> {
        for param in self.params {
            query = match param {
                Param::Text(text) => query.bind::<Text, _>(text),
                Param::Time(at) => query.bind::<Timestamptz, _>(at),
            };
        }
        query
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Summary {
    #[diesel(sql_type = BigInt)]
    today: i64,
    #[diesel(sql_type = Nullable<Double>)]
    average_ms: Option<f64>,
}

#[derive(QueryableByName)]
struct Average {
    #[diesel(sql_type = Nullable<Double>)]
    average_ms: Option<f64>,
}

impl JobQueue {
    /// A page of jobs, newest first; see the module documentation.
    pub async fn page(&self, query: &JobQuery) -> QueueResult<JobPage> {
        if !(1..=100).contains(&query.limit) {
            return Err(QueueError::Invalid(
                "Limit must be between 1 and 100".into(),
            ));
        }
        if query.offset < 0 {
            return Err(QueueError::Invalid("Offset must be non-negative".into()));
        }
        if query.offset > MAX_OFFSET {
            return Err(QueueError::Invalid(format!(
                "Offset must be at most {MAX_OFFSET}; page further with `before` (the last id of a page)"
            )));
        }
        refuse_nul("type", query.job_type.as_deref())?;
        refuse_nul("id", query.id_contains.as_deref())?;
        refuse_nul("batch_id", query.batch_id.as_deref())?;
        refuse_nul("before", query.before.as_deref())?;
        let mut conn = self.db().conn().await?;
        let page = Conditions::of(query, true);
        let sql = format!(
            // `type_`: the name diesel gives the `type` column.
            "SELECT *, type AS type_ FROM queue_jobs{} ORDER BY id DESC LIMIT {} OFFSET {}",
            page.sql(),
            query.limit,
            query.offset
        );
        let jobs: Vec<JobRecord> = page
            .bind(diesel::sql_query(sql).into_boxed())
            .load(&mut conn)
            .await?;
        let all = Conditions::of(query, false);
        let sql = format!(
            "SELECT count(*) AS n FROM (SELECT 1 FROM queue_jobs{} LIMIT {}) matching",
            all.sql(),
            TOTAL_CAP + 1
        );
        let counted = all
            .bind(diesel::sql_query(sql).into_boxed())
            .get_result::<Count>(&mut conn)
            .await?
            .n;
        Ok(JobPage {
            jobs,
            total: counted.min(TOTAL_CAP),
            total_exact: counted <= TOTAL_CAP,
        })
    }

    /// The mean run time of the completed jobs of `batch`, in milliseconds.
    pub async fn batch_average_ms(&self, batch: &str) -> QueueResult<Option<f64>> {
        let conn = self.db().shared().await?;
        let average: Average = diesel::sql_query(
            "SELECT avg(EXTRACT(EPOCH FROM completed_at - started_at)::float8 * 1000) AS average_ms \
             FROM queue_jobs WHERE batch_id = $1 AND status = 'completed' AND started_at IS NOT NULL",
        )
        .bind::<diesel::sql_types::Text, _>(batch)
        .get_result(&mut &*conn)
        .await?;
        Ok(average.average_ms)
    }

    /// Counts by status and type, today's jobs and the mean run time of the last day.
    pub async fn summary(&self) -> QueueResult<JobSummary> {
        let mut conn = self.db().conn().await?;
        let counts = stats::collect(&mut conn).await?.counts;
        let summary: Summary = diesel::sql_query(
            "SELECT (SELECT count(*) FROM queue_jobs \
                     WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS today, \
                    (SELECT avg(EXTRACT(EPOCH FROM completed_at - started_at)::float8 * 1000) \
                       FROM queue_jobs WHERE status = 'completed' AND started_at IS NOT NULL \
                        AND completed_at > now() - interval '24 hours') AS average_ms",
        )
        .get_result(&mut conn)
        .await?;
        Ok(JobSummary {
            counts,
            total_today: summary.today,
            average_duration_ms: summary.average_ms,
        })
    }
}
