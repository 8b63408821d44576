//! Workers in separate processes (the `job_worker` example): every job once across two
//! processes, and a job whose process was killed with SIGKILL runs again and completes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use deploystack_backend::jobs::{EnqueueOptions, NewJob};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common;
use crate::support::QueueDb;

fn worker_binary() -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/examples/job_worker
    let exe = std::env::current_exe().expect("test binary");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("job_worker"))
        .expect("target folder")
}

async fn spawn_worker(q: &QueueDb, name: &str, log: &std::path::Path) -> Child {
    let mut cmd = Command::new(worker_binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("WORKER_NAME", name)
        .env("JOB_CONCURRENCY", "8")
        .env("JOB_LEASE_MS", "1500")
        .env("JOB_POLL_INTERVAL_MS", "200")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log"))
        .kill_on_drop(true);
    for (key, value) in common::process::external_env(&q.db, log.parent().expect("dir")) {
        cmd.env(key, value);
    }
    let mut child = cmd
        .spawn()
        .expect("spawn job_worker (built by cargo test as an example)");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("worker ready in time")
        .expect("read");
    assert_eq!(
        ready.as_deref(),
        Some("ready"),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    child
}

async fn terminate(mut child: Child) -> std::process::ExitStatus {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("worker exits after SIGTERM")
        .expect("wait")
}

const RUNS_TABLE: &str =
    "CREATE TABLE job_runs (job_id text NOT NULL, attempt int NOT NULL, worker text NOT NULL)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_complete_every_job_exactly_once() {
    let q = QueueDb::new().await;
    q.db.execute(RUNS_TABLE).await;
    let dir = tempfile::tempdir().expect("dir");
    let a = spawn_worker(&q, "a", &dir.path().join("a.log")).await;
    let b = spawn_worker(&q, "b", &dir.path().join("b.log")).await;
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
    q.db.execute(RUNS_TABLE).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut doomed = spawn_worker(&q, "doomed", &dir.path().join("doomed.log")).await;
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
    let survivor = spawn_worker(&q, "survivor", &dir.path().join("survivor.log")).await;
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
