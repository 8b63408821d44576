//! The flusher of the worker runtime: writes how runs ended, as many as ended meanwhile per
//! statement, retrying while PostgreSQL is away, and schedules the local wake-up for the
//! earliest retry it wrote.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::jobs::runtime::{locked, Shared};
use crate::jobs::settle::{settle, End, Outcome};
use crate::lifecycle::Backoff;

/// Most outcomes written by one statement.
const MAX_SETTLE: usize = 1000;
/// How long the flusher keeps trying to write outcomes once shutdown began.
const FINAL_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Statements writing outcomes at once: one is written while the next one gathers.
pub(super) const WRITERS: usize = 2;

pub(super) async fn flush_loop(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    stop: CancellationToken,
) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    let writing = TaskTracker::new();
    let mut batch = Vec::with_capacity(64);
    loop {
        tokio::select! {
            biased;
            outcome = rx.recv() => match outcome {
                Some(outcome) => batch.push(outcome),
                None => break,
            },
            () = stop.cancelled() => break,
        }
        // A free writer first; everything that ended meanwhile goes in its statement.
        let Ok(writer) = writers.clone().acquire_owned().await else {
            break;
        };
        while batch.len() < MAX_SETTLE {
            match rx.try_recv() {
                Ok(outcome) => batch.push(outcome),
                Err(_) => break,
            }
        }
        let chunk = std::mem::take(&mut batch);
        let shared = shared.clone();
        let stop = stop.clone();
        writing.spawn(async move {
            write_outcomes(&shared, chunk, &stop).await;
            drop(writer);
        });
    }
    // Shutdown: the handlers are done; write what they left.
    writing.close();
    writing.wait().await;
    while let Ok(outcome) = rx.try_recv() {
        batch.push(outcome);
    }
    while !batch.is_empty() {
        let n = batch.len().min(MAX_SETTLE);
        let chunk: Vec<Outcome> = batch.drain(..n).collect();
        if !write_outcomes(&shared, chunk, &stop).await {
            warn!(
                jobs = batch.len(),
                "job outcomes not written at shutdown; they run again when their lease expires"
            );
            return;
        }
    }
}

/// Writes `outcomes`, retrying while PostgreSQL is away: until it works, or, once `stop`
/// is cancelled (shutdown), for [`FINAL_FLUSH_LIMIT`] more at most; false when given up
/// (the jobs then run again when their lease expires).
async fn write_outcomes(shared: &Shared, outcomes: Vec<Outcome>, stop: &CancellationToken) -> bool {
    let mut deadline: Option<Instant> = None;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut warned = false;
    loop {
        let result = match shared.upkeep_conn().await {
            Ok(mut conn) => settle(&mut conn, &shared.worker, &outcomes)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(settled) => {
                shared.count_written(&outcomes, settled);
                // Written: the runs no longer need their lease.
                shared.unlist_all(outcomes.iter().map(|o| (o.id.as_str(), o.attempt)));
                return true;
            }
            Err(e) => {
                if !warned {
                    warn!(error = %e, jobs = outcomes.len(), "cannot write job outcomes; retrying");
                    warned = true;
                }
                let delay = backoff.next_delay();
                if stop.is_cancelled() && deadline.is_none() {
                    deadline = Some(Instant::now() + FINAL_FLUSH_LIMIT);
                }
                if deadline.is_some_and(|d| Instant::now() + delay > d) {
                    return false;
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    // Shutdown began: the next attempt starts the final deadline.
                    () = stop.cancelled(), if deadline.is_none() => {}
                }
            }
        }
    }
}

impl Shared {
    fn count_written(&self, outcomes: &[Outcome], settled: usize) {
        let c = &self.counters;
        let mut earliest: Option<Instant> = None;
        let now = Instant::now();
        for outcome in outcomes {
            match &outcome.end {
                End::Completed(_) => c.completed.fetch_add(1, Ordering::Relaxed),
                End::Failed(_) => c.failed.fetch_add(1, Ordering::Relaxed),
                End::Retry { delay_ms, .. } => {
                    // Local time after the write: never earlier than the stored due time.
                    let due =
                        now + Duration::from_secs_f64(delay_ms / 1000.0) + Duration::from_millis(5);
                    earliest = Some(earliest.map_or(due, |e| e.min(due)));
                    c.retried.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
        let superseded = outcomes.len().saturating_sub(settled);
        if superseded > 0 {
            c.superseded.fetch_add(superseded as u64, Ordering::Relaxed);
            warn!(
                jobs = superseded,
                "outcomes dropped: the jobs' leases had expired and were taken over"
            );
        }
        if let Some(due) = earliest {
            let mut next_due = locked(&self.next_due);
            *next_due = Some(next_due.map_or(due, |d| d.min(due)));
            drop(next_due);
            self.wake.notify_one();
        }
    }
}
