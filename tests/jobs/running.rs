//! Running: every attempt once across runtimes, retries with backoff, max attempts, fatal
//! errors, unknown types, undecodable payloads, panics, results, priorities, due times,
//! leases (extended while running, taken back from dead workers) and graceful shutdown.

use std::collections::HashMap;
use std::time::Duration;

use deploystack_backend::jobs::{EnqueueOptions, NewJob, Registry, Workers};
use serde_json::json;

use crate::support::{fast, ok, Behave, Behaviour, QueueDb, Runs};

fn registry(runs: &Runs) -> Registry {
    let mut registry = Registry::new();
    registry.register(Behave(runs.clone()));
    registry
}

fn start(q: &QueueDb, runs: &Runs, concurrency: u32) -> Workers {
    Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry(runs),
        fast(concurrency),
    )
}

async fn enqueue(q: &QueueDb, b: Behaviour, options: EnqueueOptions) -> String {
    q.queue
        .enqueue(
            "test_behave",
            serde_json::to_value(b).expect("payload"),
            options,
        )
        .await
        .expect("enqueue")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_run_every_job_exactly_once() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let a = start(&q, &runs, 8);
    let b = start(&q, &runs, 8);
    let jobs = (0..1500)
        .map(|i| NewJob {
            job_type: "test_behave".into(),
            payload: json!({ "echo": i }),
        })
        .collect();
    let batch_id = q
        .queue
        .enqueue_batch("b", None, jobs, EnqueueOptions::default())
        .await
        .expect("batch");
    let mut singles = Vec::new();
    for _ in 0..100 {
        singles.push(enqueue(&q, ok(), EnqueueOptions::default()).await);
    }
    crate::common::wait_until("all jobs completed", Duration::from_secs(60), || async {
        q.count("completed").await == 1600
    })
    .await;
    let all = runs.all();
    assert_eq!(all.len(), 1600);
    assert!(
        all.values().all(|attempts| attempts == &vec![1]),
        "a job ran twice: {:?}",
        all.iter().find(|(_, a)| a.len() != 1)
    );
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!((batch.completed_jobs, batch.failed_jobs), (1500, 0));
    assert_eq!(batch.status, "completed");
    assert!(batch.completed_at.is_some());
    let (ca, cb) = (a.counters(), b.counters());
    assert_eq!(ca.completed + cb.completed, 1600);
    assert!(
        ca.completed > 0 && cb.completed > 0,
        "both runtimes worked: {ca:?} {cb:?}"
    );
    let echoed = q.queue.job(&singles[0]).await.expect("job");
    assert!(echoed.result.is_none() && echoed.completed_at.is_some() && echoed.locked_by.is_none());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_growing_delays_then_complete() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let workers = start(&q, &runs, 2);
    let id = enqueue(
        &q,
        Behaviour {
            fail_until: 2,
            echo: Some(json!({"done": true})),
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    let job = q
        .wait_status(&id, "completed", Duration::from_secs(20))
        .await;
    assert_eq!(runs.of(&id), vec![1, 2, 3]);
    assert_eq!(job.attempts, 3);
    assert_eq!(job.result, Some(json!({"done": true})));
    assert!(job.error.is_none(), "a success clears the last error");
    assert_eq!(workers.counters().retried, 2);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_waits_at_least_its_backoff() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let mut settings = fast(2);
    settings.retry_base = Duration::from_millis(400);
    let workers = Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry(&runs),
        settings,
    );
    let id = enqueue(
        &q,
        Behaviour {
            fail_until: 1,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    // After the first failure the job waits, pending, for 400 ms · 2 (± 20 %).
    let mut pending = q.queue.job(&id).await.expect("job");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pending.attempts == 0 || pending.status != "pending" {
        assert!(tokio::time::Instant::now() < deadline, "{pending:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
        pending = q.queue.job(&id).await.expect("job");
    }
    let failed_at = pending.updated_at;
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.error.as_deref(), Some("failed attempt 1"));
    let wait = pending.scheduled_for - failed_at;
    assert!(
        wait >= chrono::Duration::milliseconds(640) && wait <= chrono::Duration::milliseconds(960),
        "{wait:?}"
    );
    let done = q
        .wait_status(&id, "completed", Duration::from_secs(10))
        .await;
    assert!(done.started_at.expect("started") >= pending.scheduled_for);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_run_out_fatal_errors_and_panics_fail_the_job() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let workers = start(&q, &runs, 4);
    let exhausted = enqueue(
        &q,
        Behaviour {
            fail_until: 99,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    let fatal = enqueue(
        &q,
        Behaviour {
            fail_until: 99,
            fatal: true,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    let panics = enqueue(
        &q,
        Behaviour {
            fail_until: 99,
            panic: true,
            ..ok()
        },
        EnqueueOptions {
            max_attempts: 2,
            ..EnqueueOptions::default()
        },
    )
    .await;
    let job = q
        .wait_status(&exhausted, "failed", Duration::from_secs(20))
        .await;
    assert_eq!((job.attempts, runs.of(&exhausted)), (3, vec![1, 2, 3]));
    assert_eq!(job.error.as_deref(), Some("failed attempt 3"));
    assert!(job.completed_at.is_some() && job.locked_by.is_none());
    let job = q
        .wait_status(&fatal, "failed", Duration::from_secs(20))
        .await;
    assert_eq!((job.attempts, runs.of(&fatal)), (1, vec![1]));
    assert_eq!(job.error.as_deref(), Some("cannot ever work"));
    let job = q
        .wait_status(&panics, "failed", Duration::from_secs(20))
        .await;
    assert_eq!((job.attempts, runs.of(&panics)), (2, vec![1, 2]));
    assert_eq!(
        job.error.as_deref(),
        Some("the handler panicked: boom on attempt 2")
    );
    // The runtime survived the panics.
    let after = enqueue(&q, ok(), EnqueueOptions::default()).await;
    q.wait_status(&after, "completed", Duration::from_secs(20))
        .await;
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_types_and_undecodable_payloads_fail_at_once() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let workers = start(&q, &runs, 2);
    let unknown = q
        .queue
        .enqueue(
            "send_email",
            json!({"to": "a@example.com"}),
            EnqueueOptions::default(),
        )
        .await
        .expect("enqueue");
    let undecodable = q
        .queue
        .enqueue(
            "test_behave",
            json!({"failUntil": "soon"}),
            EnqueueOptions::default(),
        )
        .await
        .expect("enqueue");
    let job = q
        .wait_status(&unknown, "failed", Duration::from_secs(20))
        .await;
    assert_eq!(
        job.error.as_deref(),
        Some("No worker registered for job type: send_email")
    );
    assert_eq!(job.attempts, 1);
    let job = q
        .wait_status(&undecodable, "failed", Duration::from_secs(20))
        .await;
    assert_eq!(job.attempts, 1);
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .starts_with("Invalid JSON payload: "),
        "{:?}",
        job.error
    );
    assert!(runs.of(&undecodable).is_empty(), "the handler never ran");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_runs_first_and_nothing_runs_before_its_time() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let low = enqueue(&q, ok(), EnqueueOptions::default()).await;
    let high = enqueue(
        &q,
        ok(),
        EnqueueOptions {
            priority: 10,
            ..EnqueueOptions::default()
        },
    )
    .await;
    let later = enqueue(
        &q,
        ok(),
        EnqueueOptions {
            scheduled_for: Some(chrono::Utc::now() + chrono::Duration::milliseconds(700)),
            ..EnqueueOptions::default()
        },
    )
    .await;
    let workers = start(&q, &runs, 1);
    let low_job = q
        .wait_status(&low, "completed", Duration::from_secs(20))
        .await;
    let high_job = q
        .wait_status(&high, "completed", Duration::from_secs(20))
        .await;
    assert!(high_job.started_at < low_job.started_at);
    let later_job = q
        .wait_status(&later, "completed", Duration::from_secs(20))
        .await;
    assert!(later_job.started_at.expect("started") >= later_job.scheduled_for);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_keeps_its_lease_and_runs_once() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    // Lease 1.5 s; the job runs 4 s while a second runtime looks for expired leases.
    let a = start(&q, &runs, 2);
    let id = enqueue(
        &q,
        Behaviour {
            sleep_ms: 4_000,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    q.wait_status(&id, "processing", Duration::from_secs(10))
        .await;
    let b = start(&q, &runs, 2);
    q.wait_status(&id, "completed", Duration::from_secs(20))
        .await;
    assert_eq!(runs.of(&id), vec![1]);
    assert_eq!(a.counters().superseded + b.counters().superseded, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_dead_worker_run_again_or_fail_on_their_last_attempt() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let batch_id = q
        .queue
        .enqueue_batch(
            "b",
            None,
            (0..2)
                .map(|_| NewJob {
                    job_type: "test_behave".into(),
                    payload: json!({}),
                })
                .collect(),
            EnqueueOptions::default(),
        )
        .await
        .expect("batch");
    // A worker that died holding both: one on its first attempt, one on its last.
    q.db.execute(&format!(
        "UPDATE queue_jobs SET status = 'processing', locked_by = 'ghost:1:dead', \
           locked_until = now() - interval '1 second', started_at = now() - interval '1 minute', \
           attempts = CASE WHEN id = (SELECT min(id) FROM queue_jobs) THEN 1 ELSE 3 END \
         WHERE batch_id = '{batch_id}'"
    ))
    .await;
    let rows =
        q.db.query("SELECT id, attempts FROM queue_jobs ORDER BY id")
            .await;
    let ids: HashMap<i32, String> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    let workers = start(&q, &runs, 2);
    let rerun = q
        .wait_status(&ids[&1], "completed", Duration::from_secs(20))
        .await;
    assert_eq!(rerun.attempts, 2);
    assert_eq!(runs.of(&ids[&1]), vec![2]);
    let lost = q
        .wait_status(&ids[&3], "failed", Duration::from_secs(20))
        .await;
    assert!(lost
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("lease expired"));
    assert!(runs.of(&ids[&3]).is_empty());
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!(
        (
            batch.completed_jobs,
            batch.failed_jobs,
            batch.status.as_str()
        ),
        (1, 1, "failed")
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_jobs_finish_and_hands_back_those_that_do_not() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let workers = start(&q, &runs, 4);
    let quick = enqueue(
        &q,
        Behaviour {
            sleep_ms: 500,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    q.wait_status(&quick, "processing", Duration::from_secs(10))
        .await;
    workers.shutdown().await;
    // Finished within the shutdown timeout, and written before shutdown returned.
    assert_eq!(q.queue.job(&quick).await.expect("job").status, "completed");

    let mut settings = fast(4);
    settings.shutdown_timeout = Duration::from_millis(300);
    let workers = Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry(&runs),
        settings,
    );
    let slow = enqueue(
        &q,
        Behaviour {
            sleep_ms: 60_000,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    q.wait_status(&slow, "processing", Duration::from_secs(10))
        .await;
    let queued = enqueue(
        &q,
        ok(),
        EnqueueOptions {
            scheduled_for: Some(chrono::Utc::now() + chrono::Duration::seconds(30)),
            ..EnqueueOptions::default()
        },
    )
    .await;
    workers.shutdown().await;
    let job = q.queue.job(&slow).await.expect("job");
    assert_eq!(job.status, "pending", "handed back");
    assert_eq!(job.attempts, 0, "the interrupted attempt does not count");
    assert!(job.locked_by.is_none() && job.locked_until.is_none());
    assert_eq!(q.queue.job(&queued).await.expect("job").status, "pending");
    // Another worker picks it up at once.
    let runs2 = Runs::default();
    let next = start(&q, &runs2, 1);
    q.wait_status(&slow, "processing", Duration::from_secs(10))
        .await;
    // The claim commits before the handler starts: wait for the run itself.
    crate::common::wait_until(
        "the handed-back job to run",
        Duration::from_secs(10),
        || {
            let seen = runs2.of(&slow);
            async move { !seen.is_empty() }
        },
    )
    .await;
    assert_eq!(runs2.of(&slow), vec![1]);
    next.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_postgresql_cannot_store_fails_the_job_instead_of_blocking_the_writes() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let workers = start(&q, &runs, 2);
    let nul_error = enqueue(
        &q,
        Behaviour {
            fail_until: 9,
            fatal: true,
            nul_error: true,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    let nul_result = enqueue(
        &q,
        Behaviour {
            nul_result: true,
            ..ok()
        },
        EnqueueOptions::default(),
    )
    .await;
    let job = q
        .wait_status(&nul_error, "failed", Duration::from_secs(20))
        .await;
    assert_eq!(job.error.as_deref(), Some("cannot ever work"));
    let job = q
        .wait_status(&nul_result, "failed", Duration::from_secs(20))
        .await;
    assert!(job.error.unwrap_or_default().contains("NUL"));
    // The writer is not stuck: later jobs complete.
    let after = enqueue(&q, ok(), EnqueueOptions::default()).await;
    q.wait_status(&after, "completed", Duration::from_secs(20))
        .await;
    workers.shutdown().await;
}
