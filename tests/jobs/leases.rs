//! Leases under stress: a run whose lease was taken back is cancelled (and dropped when it
//! ignores that), its late success is still written when nobody ran the job since, a run
//! past its timeout fails and frees its slot, and leases hold while the request pool is
//! exhausted.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deploystack_backend::jobs::{
    EnqueueOptions, Job, JobContext, JobError, NewJob, Registry, Workers, LEASE_EXPIRED,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::pg::ready_database;
use crate::common::wait_until;
use crate::support::{fast, QueueDb, Runs};

/// What `test_watch` does: wait for its run's cancellation (or `sleep_ms`), then succeed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Watch {
    /// Return as soon as the run is cancelled.
    #[serde(default)]
    stop_when_cancelled: bool,
    /// Longest wait.
    #[serde(default)]
    sleep_ms: u64,
}

/// Records its runs and how many saw their cancellation.
#[derive(Clone, Default)]
struct Watcher {
    runs: Runs,
    cancelled: Arc<AtomicU32>,
}

impl Job for Watcher {
    const TYPE: &'static str = "test_watch";
    type Payload = Watch;
    type Output = serde_json::Value;

    async fn run(&self, w: Watch, ctx: JobContext) -> Result<Self::Output, JobError> {
        self.runs.record(&ctx);
        let until = tokio::time::Instant::now() + Duration::from_millis(w.sleep_ms);
        tokio::select! {
            () = ctx.cancel.cancelled() => {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                if w.stop_when_cancelled {
                    return Ok(json!({"done": "after cancel"}));
                }
                // Ignores it: only dropping the future ends this run.
                tokio::time::sleep_until(until).await;
                Ok(json!({"done": "late"}))
            }
            () = tokio::time::sleep_until(until) => Ok(json!({"done": "slept"})),
        }
    }
}

/// A job that never ends, with a timeout of its own.
struct Hang;

impl Job for Hang {
    const TYPE: &'static str = "test_hang";
    const TIMEOUT: Option<Duration> = Some(Duration::from_millis(300));
    type Payload = serde_json::Value;
    type Output = ();

    async fn run(&self, _: serde_json::Value, _: JobContext) -> Result<(), JobError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

fn registry(watcher: &Watcher) -> Registry {
    let mut registry = Registry::new();
    registry.register(watcher.clone()).register(Hang);
    registry
}

fn start(q: &QueueDb, watcher: &Watcher, concurrency: u32) -> Workers {
    Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry(watcher),
        fast(concurrency),
    )
}

async fn enqueue_watch(q: &QueueDb, w: Watch, max_attempts: i32) -> String {
    q.queue
        .enqueue(
            "test_watch",
            serde_json::to_value(w).expect("payload"),
            EnqueueOptions {
                max_attempts,
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("enqueue")
}

/// Waits until the run of `id` started (the claim commits before the handler starts).
async fn wait_run(watcher: &Watcher, id: &str) {
    wait_until("the run to start", Duration::from_secs(10), || {
        let seen = watcher.runs.of(id);
        async move { !seen.is_empty() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_success_after_the_lease_was_taken_back_on_the_last_attempt_is_written() {
    let q = QueueDb::new().await;
    let watcher = Watcher::default();
    let batch_id = q
        .queue
        .enqueue_batch(
            "b",
            None,
            vec![NewJob {
                job_type: "test_watch".into(),
                payload: json!({"stopWhenCancelled": true, "sleepMs": 60_000}),
            }],
            EnqueueOptions {
                max_attempts: 1,
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("batch");
    let workers = start(&q, &watcher, 2);
    let id: String =
        q.db.query(&format!(
            "SELECT id FROM queue_jobs WHERE batch_id = '{batch_id}'"
        ))
        .await[0]
            .get(0);
    wait_run(&watcher, &id).await;
    // What the reaper does when this process stalls past the lease on the last attempt:
    // failed, the batch counting it, the holder still named.
    q.db.execute(&format!(
        "WITH r AS (UPDATE queue_jobs SET status = 'failed', error = '{LEASE_EXPIRED}', \
           completed_at = now(), locked_until = NULL WHERE id = '{id}' RETURNING batch_id) \
         UPDATE queue_job_batches SET failed_jobs = failed_jobs + 1, status = 'failed', \
           completed_at = now() WHERE id IN (SELECT batch_id FROM r)"
    ))
    .await;
    // The renewal finds the lease gone and cancels the run; it succeeds at once, and since
    // nobody ran the job meanwhile, that success is what the job and its batch record.
    let job = q
        .wait_status(&id, "completed", Duration::from_secs(10))
        .await;
    assert_eq!(job.result, Some(json!({"done": "after cancel"})));
    assert_eq!((job.attempts, job.error.as_deref()), (1, None));
    assert!(job.locked_by.is_none() && job.locked_until.is_none());
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!(
        (
            batch.completed_jobs,
            batch.failed_jobs,
            batch.status.as_str()
        ),
        (1, 0, "completed")
    );
    assert_eq!(watcher.cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(watcher.runs.of(&id), vec![1]);
    let counters = workers.counters();
    assert_eq!((counters.lost, counters.superseded), (1, 0));
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_taken_over_by_another_worker_is_cancelled_and_its_outcome_dropped() {
    let q = QueueDb::new().await;
    let watcher = Watcher::default();
    let workers = start(&q, &watcher, 2);
    let id = enqueue_watch(
        &q,
        Watch {
            stop_when_cancelled: true,
            sleep_ms: 60_000,
        },
        3,
    )
    .await;
    wait_run(&watcher, &id).await;
    // Taken back and claimed again by another worker, which runs it now.
    q.db.execute(&format!(
        "UPDATE queue_jobs SET locked_by = 'other:1:live', attempts = attempts + 1, \
           locked_until = now() + interval '1 hour' WHERE id = '{id}'"
    ))
    .await;
    wait_until("the outcome to be dropped", Duration::from_secs(10), || {
        let superseded = workers.counters().superseded;
        async move { superseded == 1 }
    })
    .await;
    let job = q.queue.job(&id).await.expect("job");
    assert_eq!(
        (job.status.as_str(), job.locked_by.as_deref(), job.attempts),
        ("processing", Some("other:1:live"), 2)
    );
    assert!(job.result.is_none());
    assert_eq!(workers.counters().lost, 1);
    assert_eq!(watcher.cancelled.load(Ordering::SeqCst), 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ignores_its_cancellation_is_dropped_and_frees_its_slot() {
    let q = QueueDb::new().await;
    let watcher = Watcher::default();
    let workers = start(&q, &watcher, 1);
    let id = enqueue_watch(
        &q,
        Watch {
            stop_when_cancelled: false,
            sleep_ms: 600_000,
        },
        3,
    )
    .await;
    wait_run(&watcher, &id).await;
    q.db.execute(&format!(
        "UPDATE queue_jobs SET locked_by = 'other:1:live', attempts = attempts + 1, \
           locked_until = now() + interval '1 hour' WHERE id = '{id}'"
    ))
    .await;
    // The only slot comes back once the run is dropped: the next job runs.
    let next = enqueue_watch(&q, Watch::default(), 1).await;
    let done = q
        .wait_status(&next, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(done.result, Some(json!({"done": "slept"})));
    assert_eq!(workers.running(), 0);
    let counters = workers.counters();
    assert_eq!((counters.lost, counters.superseded), (1, 0));
    assert_eq!(watcher.cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(q.queue.job(&id).await.expect("job").status, "processing");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_fails_and_frees_its_slot() {
    let q = QueueDb::new().await;
    let watcher = Watcher::default();
    // The type's own timeout (300 ms) applies; the setting is for the others.
    let mut settings = fast(1);
    settings.timeout = Some(Duration::from_millis(400));
    let workers = Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry(&watcher),
        settings,
    );
    let hang = q
        .queue
        .enqueue(
            "test_hang",
            json!({}),
            EnqueueOptions {
                max_attempts: 2,
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("enqueue");
    let failed = q
        .wait_status(&hang, "failed", Duration::from_secs(20))
        .await;
    assert_eq!(
        failed.attempts, 2,
        "each timed-out run counts as an attempt"
    );
    assert_eq!(
        failed.error.as_deref(),
        Some("the job ran longer than its timeout (300 ms) and was stopped")
    );
    // The setting bounds a type without its own: this one would wait ten minutes.
    let slow = enqueue_watch(
        &q,
        Watch {
            stop_when_cancelled: false,
            sleep_ms: 600_000,
        },
        1,
    )
    .await;
    let failed = q
        .wait_status(&slow, "failed", Duration::from_secs(20))
        .await;
    assert_eq!(
        failed.error.as_deref(),
        Some("the job ran longer than its timeout (400 ms) and was stopped")
    );
    assert_eq!(
        watcher.cancelled.load(Ordering::SeqCst),
        0,
        "dropped at once"
    );
    // The single slot is free again.
    let next = enqueue_watch(&q, Watch::default(), 1).await;
    q.wait_status(&next, "completed", Duration::from_secs(15))
        .await;
    assert_eq!(workers.counters().timed_out, 3);
    assert_eq!(workers.running(), 0);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_hold_while_every_pooled_connection_is_taken() {
    let q = QueueDb::new().await;
    let watcher = Watcher::default();
    let workers = start(&q, &watcher, 2);
    let id = enqueue_watch(
        &q,
        Watch {
            stop_when_cancelled: false,
            sleep_ms: 6_000,
        },
        3,
    )
    .await;
    wait_run(&watcher, &id).await;
    // Another process, with a pool of its own, that takes back expired leases.
    let other_watcher = Watcher::default();
    let other = Workers::start(
        ready_database(&q.db).await,
        Some(q.connector.clone()),
        registry(&other_watcher),
        fast(2),
    );
    // Every pooled connection of the running process held for three leases (4.5 s): the
    // renewals go through the connections reserved for the queue.
    let mut held = Vec::new();
    while let Ok(conn) = tokio::time::timeout(Duration::from_millis(500), q.database.conn()).await {
        held.push(conn.expect("connection"));
    }
    assert!(!held.is_empty());
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    drop(held);
    let job = q
        .wait_status(&id, "completed", Duration::from_secs(20))
        .await;
    assert_eq!(job.attempts, 1, "never taken back");
    assert_eq!(watcher.runs.of(&id), vec![1]);
    assert!(other_watcher.runs.of(&id).is_empty(), "never ran twice");
    assert_eq!(workers.counters().lost, 0);
    other.shutdown().await;
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_job_this_worker_claimed_again_is_cancelled() {
    let q = QueueDb::new().await;
    let watcher = Watcher::default();
    let workers = start(&q, &watcher, 2);
    let id = enqueue_watch(
        &q,
        Watch {
            stop_when_cancelled: true,
            sleep_ms: 3_000,
        },
        3,
    )
    .await;
    wait_run(&watcher, &id).await;
    // Taken back by a reaper while the run goes on (this process stalled), due again: this
    // very worker claims it before its keeper notices the lost lease.
    q.db.execute(&format!(
        "UPDATE queue_jobs SET status = 'pending', error = '{LEASE_EXPIRED}', \
           locked_until = NULL, scheduled_for = now() WHERE id = '{id}'; \
         SELECT pg_notify('deploystack_jobs', '')"
    ))
    .await;
    let job = q
        .wait_status(&id, "completed", Duration::from_secs(20))
        .await;
    // The first run was cancelled when the second started, and only the second reported.
    assert_eq!(watcher.runs.of(&id), vec![1, 2]);
    assert_eq!(job.attempts, 2);
    assert_eq!(job.result, Some(json!({"done": "slept"})));
    assert_eq!(watcher.cancelled.load(Ordering::SeqCst), 1);
    let counters = workers.counters();
    assert_eq!((counters.lost, counters.completed), (1, 1));
    workers.shutdown().await;
}

/// Workers that look at the queue only when notified (their poll is a minute away, their own
/// lease keeper as good as asleep): a job reaches them within seconds only by a NOTIFY.
fn notified_only(q: &QueueDb, watcher: &Watcher) -> Workers {
    let mut settings = fast(2);
    settings.poll_interval = Duration::from_secs(60);
    settings.lease = Duration::from_secs(600);
    Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry(watcher),
        settings,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_handed_back_at_shutdown_wake_the_other_workers() {
    let q = QueueDb::new().await;
    let leaving = Watcher::default();
    let mut settings = fast(1);
    settings.shutdown_timeout = Duration::from_millis(200);
    let workers = Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry(&leaving),
        settings,
    );
    let id = enqueue_watch(
        &q,
        Watch {
            stop_when_cancelled: false,
            sleep_ms: 60_000,
        },
        3,
    )
    .await;
    wait_run(&leaving, &id).await;
    let waiting = Watcher::default();
    let other = notified_only(&q, &waiting);
    // Shut down with the run unfinished: handed back, and the notification wakes the other.
    workers.shutdown().await;
    wait_until(
        "the other runtime to take the handed-back job",
        Duration::from_secs(15),
        || {
            let seen = waiting.runs.of(&id);
            async move { !seen.is_empty() }
        },
    )
    .await;
    assert_eq!(
        waiting.runs.of(&id),
        vec![1],
        "the interrupted attempt did not count"
    );
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_taken_back_from_a_dead_worker_wake_the_other_workers() {
    let q = QueueDb::new().await;
    // The reaper: its only slot busy with a long run, so it cannot claim what it takes back.
    let busy = Watcher::default();
    let reaper = start(&q, &busy, 1);
    let long = enqueue_watch(
        &q,
        Watch {
            stop_when_cancelled: false,
            sleep_ms: 60_000,
        },
        3,
    )
    .await;
    wait_run(&busy, &long).await;
    let waiting = Watcher::default();
    let other = notified_only(&q, &waiting);
    // Let the idle runtime's first claim and first keeper tick pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A job held by a worker that died, its lease over.
    q.db.execute(
        "INSERT INTO queue_jobs (id, type, payload, status, attempts, locked_by, locked_until, \
           started_at) VALUES ('ghost-job', 'test_watch', '{}', 'processing', 1, 'ghost:1:dead', \
           now() - interval '1 second', now() - interval '1 minute')",
    )
    .await;
    let job = q
        .wait_status("ghost-job", "completed", Duration::from_secs(15))
        .await;
    assert_eq!(job.attempts, 2);
    assert_eq!(waiting.runs.of("ghost-job"), vec![2]);
    assert!(busy.runs.of("ghost-job").is_empty());
    other.shutdown().await;
    reaper.shutdown().await;
}

/// One thread: the capturing subscriber is this thread's default, and every task runs on it.
#[tokio::test(flavor = "current_thread")]
async fn the_reaper_counts_what_it_requeued_and_what_it_failed() {
    let capture = crate::common::log_capture::LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let q = QueueDb::new().await;
    // A dead worker's two jobs: one on its first attempt of three, one on its last.
    q.db.execute(
        "INSERT INTO queue_jobs (id, type, payload, status, attempts, max_attempts, locked_by, \
           locked_until, started_at) VALUES \
         ('first-try', 'test_watch', '{}', 'processing', 1, 3, 'ghost:1:dead', \
           now() - interval '1 second', now() - interval '1 minute'), \
         ('last-try', 'test_watch', '{}', 'processing', 3, 3, 'ghost:1:dead', \
           now() - interval '1 second', now() - interval '1 minute')",
    )
    .await;
    let watcher = Watcher::default();
    let workers = start(&q, &watcher, 2);
    q.wait_status("first-try", "completed", Duration::from_secs(15))
        .await;
    assert_eq!(q.queue.job("last-try").await.expect("job").status, "failed");
    workers.shutdown().await;
    let logs = capture.text();
    let line = logs
        .lines()
        .find(|l| l.contains("took back jobs whose worker stopped"))
        .unwrap_or_else(|| panic!("no reaper line in {logs}"));
    assert!(
        line.contains("requeued=1") && line.contains("failed=1"),
        "{line}"
    );
}
