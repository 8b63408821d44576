//! `deploystack-backend jobs ...` against a real database.

use std::path::Path;

use deploystack_backend::jobs::{EnqueueOptions, NewJob};
use serde_json::json;

use crate::common;
use crate::support::QueueDb;

fn env(q: &QueueDb, dir: &Path) -> Vec<(&'static str, String)> {
    std::fs::write(
        dir.join("db.selection.json"),
        r#"{"type":"postgresql","selectedAt":"2026-01-01T00:00:00.000Z","version":"1.0"}"#,
    )
    .expect("selection file");
    common::process::external_env(&q.db, dir)
}

async fn jobs(env: &[(&str, String)], dir: &Path, args: &[&str]) -> (bool, String, String) {
    let log = dir.join("cli.log");
    let out = common::process::command(env, &log)
        .arg("jobs")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .output()
        .await
        .expect("run jobs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        format!(
            "{}{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_enqueue_inspect_cancel_and_retry() {
    let q = QueueDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let env = env(&q, dir.path());

    let (ok, out, log) = jobs(
        &env,
        dir.path(),
        &[
            "enqueue",
            "cleanup_old_jobs",
            r#"{"olderThanDays": 30}"#,
            "--priority",
            "5",
        ],
    )
    .await;
    assert!(ok, "{log}");
    let id = out.trim().to_owned();
    assert_eq!(id.len(), 21, "{out}");
    let job = q.queue.job(&id).await.expect("job");
    assert_eq!(
        (job.payload.clone(), job.priority),
        (json!({"olderThanDays": 30}), 5)
    );

    let (ok, out, _) = jobs(&env, dir.path(), &["show", &id]).await;
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["type"], "cleanup_old_jobs");
    assert_eq!(shown["status"], "pending");

    let (ok, out, _) = jobs(
        &env,
        dir.path(),
        &["list", "--status", "pending", "--type", "cleanup_old_jobs"],
    )
    .await;
    assert!(ok);
    assert!(out.contains(&id), "{out}");

    let (ok, out, _) = jobs(&env, dir.path(), &["stats"]).await;
    assert!(ok);
    assert!(out.contains("pending     1"), "{out}");
    assert!(out.contains("cleanup_old_jobs"), "{out}");

    let batch_id = q
        .queue
        .enqueue_batch(
            "b",
            None,
            (0..3)
                .map(|_| NewJob {
                    job_type: "x".into(),
                    payload: json!({}),
                })
                .collect(),
            EnqueueOptions::default(),
        )
        .await
        .expect("batch");
    let (ok, out, _) = jobs(&env, dir.path(), &["cancel-batch", &batch_id]).await;
    assert!(ok);
    assert_eq!(out.trim(), "cancelled 3 pending jobs");
    let (ok, out, _) = jobs(&env, dir.path(), &["batch", &batch_id]).await;
    assert!(ok);
    let batch: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (batch["failed_jobs"].clone(), batch["status"].clone()),
        (json!(3), json!("failed"))
    );
    let (ok, out, _) = jobs(&env, dir.path(), &["retry-batch", &batch_id]).await;
    assert!(ok);
    assert_eq!(out.trim(), "retrying 3 failed jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error_that_changes_nothing() {
    let q = QueueDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let env = env(&q, dir.path());
    for (args, expected) in [
        (
            vec!["enqueue", "cleanup_old_jobs", "{not json"],
            "the payload is not valid JSON",
        ),
        (vec!["enqueue", "", "{}"], "the job type is empty"),
        (
            vec!["enqueue", "x", "{}", "--max-attempts", "0"],
            "max attempts must be between 1 and 1000",
        ),
        (vec!["list", "--status", "done"], "unknown status \"done\""),
        (
            vec!["list", "--limit", "0"],
            "limit must be between 1 and 1000",
        ),
        (vec!["show", "nope"], "job nope not found"),
        (vec!["cancel-batch", "nope"], "batch nope not found"),
    ] {
        let (ok, _, log) = jobs(&env, dir.path(), &args).await;
        assert!(!ok, "{args:?} succeeded");
        assert!(log.contains(expected), "{args:?}: {log}");
    }
    assert_eq!(
        q.db.query("SELECT count(*) FROM queue_jobs").await[0].get::<_, i64>(0),
        0
    );
}
