//! Workers in separate processes (the `job_worker` example): every job once across two
//! processes, and a job whose process was killed with SIGKILL runs again and completes.

use std::time::Duration;

use deploystack_backend::jobs::{EnqueueOptions, NewJob};
use serde_json::json;

use crate::common;
use crate::common::workers::{spawn_worker, terminate, RUNS_TABLES};
use crate::support::QueueDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_complete_every_job_exactly_once() {
    let q = QueueDb::new().await;
    q.db.execute(RUNS_TABLES).await;
    let dir = tempfile::tempdir().expect("dir");
    let a = spawn_worker(&q.db, "a", &dir.path().join("a.log")).await;
    let b = spawn_worker(&q.db, "b", &dir.path().join("b.log")).await;
    let jobs = (0..2000)
        .map(|_| NewJob {
            job_type: "test_record".into(),
            payload: json!({}),
        })
        .collect();
    let batch_id = q
        .queue
        .enqueue_batch("b", None, jobs, EnqueueOptions::default())
        .await
        .expect("batch");
    common::wait_until("2000 jobs completed", Duration::from_secs(120), || async {
        q.count("completed").await == 2000
    })
    .await;
    let row = &q
        .db
        .query(
            "SELECT count(*), count(DISTINCT job_id), count(DISTINCT worker), max(attempt) FROM job_runs",
        )
        .await[0];
    assert_eq!(row.get::<_, i64>(0), 2000, "runs");
    assert_eq!(row.get::<_, i64>(1), 2000, "distinct jobs");
    assert_eq!(row.get::<_, i64>(2), 2, "both processes worked");
    assert_eq!(row.get::<_, i32>(3), 1, "no job needed a second attempt");
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!(
        (batch.completed_jobs, batch.status.as_str()),
        (2000, "completed")
    );
    assert!(terminate(a).await.success());
    assert!(terminate(b).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_process_runs_again_and_completes() {
    let q = QueueDb::new().await;
    q.db.execute(RUNS_TABLES).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut doomed = spawn_worker(&q.db, "doomed", &dir.path().join("doomed.log")).await;
    let id = q
        .queue
        .enqueue(
            "test_sleep",
            json!({"sleepMs": 60_000}),
            EnqueueOptions::default(),
        )
        .await
        .expect("enqueue");
    common::wait_until("the job to start", Duration::from_secs(30), || async {
        !q.db
            .query(&format!("SELECT 1 FROM job_runs WHERE job_id = '{id}'"))
            .await
            .is_empty()
    })
    .await;
    doomed.start_kill().expect("SIGKILL");
    let _ = doomed.wait().await;
    let job = q.queue.job(&id).await.expect("job");
    assert_eq!(job.status, "processing", "nobody released it");
    // The next run is quick.
    q.db.execute(&format!(
        "UPDATE queue_jobs SET payload = '{{\"sleepMs\": 0}}' WHERE id = '{id}'"
    ))
    .await;
    let survivor = spawn_worker(&q.db, "survivor", &dir.path().join("survivor.log")).await;
    let job = q
        .wait_status(&id, "completed", Duration::from_secs(30))
        .await;
    assert_eq!(job.attempts, 2);
    let runs: Vec<(i32, String)> =
        q.db.query(&format!(
            "SELECT attempt, worker FROM job_runs WHERE job_id = '{id}' ORDER BY attempt"
        ))
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(runs, [(1, "doomed".to_owned()), (2, "survivor".to_owned())]);
    assert!(terminate(survivor).await.success());
}
