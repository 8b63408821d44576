//! `deploystack-backend jobs ...`: the operator's view of the queue (figures, jobs, batches)
//! and its levers (cancel or retry a batch, enqueue a job), before any admin UI exists.

use std::fmt::Write as _;

use anyhow::Context;

use crate::cli::report::UsageError;
use crate::cli::session::{require_setup, ToolSession};
use crate::cli::JobsCommand;
use crate::config::Config;
use crate::db::Database;
use crate::jobs::queue::{enqueue_in, JobFilter};
use crate::jobs::stats::QueueStats;
use crate::jobs::{EnqueueOptions, JobQueue, JobRecord, JobStatus};

/// Runs one jobs command; bad input is an error (non-zero exit) and changes nothing.
pub async fn run(config: &Config, command: JobsCommand) -> anyhow::Result<()> {
    require_setup(config)?;
    // Checked before connecting, so a typo costs nothing.
    let request = Request::parse(command)?;
    let session = ToolSession::open(config).await?;
    let queue = JobQueue::new(session.database.clone());
    let outcome = execute(&queue, &session.database, request).await;
    session.close().await?;
    print!("{}", outcome?);
    Ok(())
}

enum Request {
    Stats,
    List(JobFilter),
    Show(String),
    Batch(String),
    CancelBatch(String),
    RetryBatch(String),
    Enqueue {
        job_type: String,
        payload: serde_json::Value,
        options: EnqueueOptions,
    },
}

impl Request {
    fn parse(command: JobsCommand) -> anyhow::Result<Self> {
        Ok(match command {
            JobsCommand::Stats => Request::Stats,
            JobsCommand::List {
                status,
                job_type,
                batch,
                limit,
            } => Request::List(JobFilter {
                status: status
                    .map(|s| s.parse::<JobStatus>())
                    .transpose()
                    .map_err(UsageError)?,
                job_type,
                batch_id: batch,
                limit,
            }),
            JobsCommand::Show { id } => Request::Show(id),
            JobsCommand::Batch { id } => Request::Batch(id),
            JobsCommand::CancelBatch { id } => Request::CancelBatch(id),
            JobsCommand::RetryBatch { id } => Request::RetryBatch(id),
            JobsCommand::Enqueue {
                job_type,
                payload,
                max_attempts,
                priority,
                delay_ms,
            } => Request::Enqueue {
                job_type,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| UsageError(format!("the payload is not valid JSON: {e}")))?,
                options: EnqueueOptions {
                    max_attempts,
                    priority,
                    scheduled_for: delay_ms
                        .map(|ms| {
                            i64::try_from(ms)
                                .ok()
                                .and_then(chrono::TimeDelta::try_milliseconds)
                                .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                                .context("--delay-ms is too large")
                        })
                        .transpose()?,
                    ..EnqueueOptions::default()
                },
            },
        })
    }
}

async fn execute(
    queue: &JobQueue,
    database: &Database,
    request: Request,
) -> anyhow::Result<String> {
    Ok(match request {
        Request::Stats => stats_text(&queue.stats().await?),
        Request::List(filter) => list_text(&queue.list(&filter).await?),
        Request::Show(id) => json(&queue.job(&id).await?)?,
        Request::Batch(id) => json(&queue.batch(&id).await?)?,
        Request::CancelBatch(id) => {
            format!(
                "cancelled {} pending jobs\n",
                queue.cancel_batch(&id).await?
            )
        }
        Request::RetryBatch(id) => {
            format!("retrying {} failed jobs\n", queue.retry_batch(&id).await?)
        }
        Request::Enqueue {
            job_type,
            payload,
            options,
        } => {
            // Through the table's trigger: this process exits at once, before a wake-up
            // sent after the commit would go out.
            let mut conn = database.conn().await?;
            format!(
                "{}\n",
                enqueue_in(&mut conn, &job_type, payload, options).await?
            )
        }
    })
}

fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(value)?))
}

fn stats_text(stats: &QueueStats) -> String {
    let mut out = String::new();
    for status in JobStatus::ALL {
        let _ = writeln!(
            out,
            "{:<11} {}",
            status.as_str(),
            stats.total(status.as_str())
        );
    }
    match stats.oldest_pending_age_s {
        Some(age) => {
            let _ = writeln!(out, "oldest due pending job waiting {age:.1} s");
        }
        None => out.push_str("no due pending job\n"),
    }
    if !stats.counts.is_empty() {
        out.push_str("\nSTATUS      COUNT  TYPE\n");
        for c in &stats.counts {
            let _ = writeln!(out, "{:<11} {:>6} {}", c.status, c.count, c.job_type);
        }
    }
    if !stats.durations.is_empty() {
        out.push_str("\nRUNS (24 h)  AVG ms   P95 ms   MAX ms  TYPE\n");
        for d in &stats.durations {
            let _ = writeln!(
                out,
                "{:>11} {:>7.1} {:>8.1} {:>8.1}  {}",
                d.runs, d.avg_ms, d.p95_ms, d.max_ms, d.job_type
            );
        }
    }
    out
}

fn list_text(jobs: &[JobRecord]) -> String {
    let mut out = String::from(
        "ID                     STATUS      ATTEMPTS  CREATED                   TYPE\n",
    );
    for job in jobs {
        let _ = writeln!(
            out,
            "{:<22} {:<11} {:>3}/{:<4}  {:<25} {}",
            job.id,
            job.status,
            job.attempts,
            job.max_attempts,
            job.created_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            job.job_type
        );
    }
    out
}
