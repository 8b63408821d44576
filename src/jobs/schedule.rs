//! Periodic jobs, declared in code with cron patterns. Every replica may run the scheduler:
//! each slot is enqueued with the key `schedule:<type>:<slot>`, so the first replica to get
//! there enqueues it and the others find the key taken. A slot passed while no replica ran
//! is not made up (as upstream's node-cron).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::jobs::model::EnqueueOptions;
use crate::jobs::queue::JobQueue;

/// One periodic job.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The job type enqueued.
    pub job_type: &'static str,
    /// Cron pattern in UTC: five fields, or six with seconds first.
    pub cron: &'static str,
    /// The payload of every run.
    pub payload: Value,
}

/// A schedule whose pattern parsed.
#[derive(Debug, Clone)]
pub struct ParsedSchedule {
    schedule: Schedule,
    cron: Cron,
}

impl ParsedSchedule {
    /// Parses `schedule`'s pattern.
    pub fn new(schedule: Schedule) -> Result<Self, String> {
        // Five fields (minutes), or six with seconds first.
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(schedule.cron)
            .map_err(|e| {
                format!(
                    "schedule of {}: {:?}: {e}",
                    schedule.job_type, schedule.cron
                )
            })?;
        Ok(Self { schedule, cron })
    }

    /// The first slot after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The unique key of the run of `slot`.
    pub fn key(&self, slot: DateTime<Utc>) -> String {
        format!("schedule:{}:{}", self.schedule.job_type, slot.to_rfc3339())
    }

    /// The job type.
    pub fn job_type(&self) -> &'static str {
        self.schedule.job_type
    }

    /// Enqueues the run of `slot` unless a replica did; returns the job id either way.
    pub async fn enqueue_slot(
        &self,
        queue: &JobQueue,
        slot: DateTime<Utc>,
    ) -> Result<String, crate::jobs::QueueError> {
        queue
            .enqueue(
                self.schedule.job_type,
                self.schedule.payload.clone(),
                EnqueueOptions {
                    scheduled_for: Some(slot),
                    key: Some(self.key(slot)),
                    ..EnqueueOptions::default()
                },
            )
            .await
    }
}

/// Enqueues each schedule's slots as they come, until `stop`.
pub async fn run(queue: JobQueue, schedules: Vec<ParsedSchedule>, stop: CancellationToken) {
    let mut next: Vec<Option<DateTime<Utc>>> =
        schedules.iter().map(|s| s.next_after(Utc::now())).collect();
    loop {
        let Some(soonest) = next.iter().flatten().min().copied() else {
            return;
        };
        let wait = (soonest - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
        let now = Utc::now();
        for (schedule, slot) in schedules.iter().zip(next.iter_mut()) {
            let Some(due) = *slot else { continue };
            if due > now {
                continue;
            }
            *slot = schedule.next_after(due);
            let mut attempts = 0;
            loop {
                match schedule.enqueue_slot(&queue, due).await {
                    Ok(id) => {
                        debug!(job_type = schedule.job_type(), job = %id, slot = %due, "periodic job enqueued");
                        break;
                    }
                    Err(e) if attempts < 5 => {
                        attempts += 1;
                        debug!(error = %e, "cannot enqueue a periodic job yet");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = stop.cancelled() => return,
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, job_type = schedule.job_type(), slot = %due, "periodic job not enqueued for this slot");
                        break;
                    }
                }
            }
        }
    }
}
