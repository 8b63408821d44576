//! Batch counters under concurrent workers, cancelling and retrying a batch.

use std::time::Duration;

use deploystack_backend::jobs::batches::CANCELLED_MESSAGE;
use deploystack_backend::jobs::queue::JobFilter;
use deploystack_backend::jobs::{EnqueueOptions, JobStatus, NewJob, QueueError, Registry, Workers};
use serde_json::json;

use crate::support::{fast, Behave, QueueDb, Runs};

fn workers(q: &QueueDb, runs: &Runs) -> Workers {
    let mut registry = Registry::new();
    registry.register(Behave(runs.clone()));
    Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        registry,
        fast(8),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_stay_exact_under_concurrent_workers() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let jobs = (0..300)
        .map(|i| NewJob {
            job_type: "test_behave".into(),
            // Every third job fails for good.
            payload: if i % 3 == 0 {
                json!({"failUntil": 9, "fatal": true})
            } else {
                json!({})
            },
        })
        .collect();
    let batch_id = q
        .queue
        .enqueue_batch("b", None, jobs, EnqueueOptions::default())
        .await
        .expect("batch");
    let (a, b) = (workers(&q, &runs), workers(&q, &runs));
    crate::common::wait_until("the batch to end", Duration::from_secs(60), || async {
        q.queue
            .batch(&batch_id)
            .await
            .expect("batch")
            .completed_at
            .is_some()
    })
    .await;
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!((batch.completed_jobs, batch.failed_jobs), (200, 100));
    assert_eq!(batch.status, "failed");
    let recount = q
        .db
        .query(&format!(
            "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') \
             FROM queue_jobs WHERE batch_id = '{batch_id}'"
        ))
        .await;
    assert_eq!(
        (recount[0].get::<_, i64>(0), recount[0].get::<_, i64>(1)),
        (200, 100)
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_batch_fails_its_pending_jobs_and_a_retry_runs_them() {
    let q = QueueDb::new().await;
    let runs = Runs::default();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let batch_id = q
        .queue
        .enqueue_batch(
            "b",
            None,
            (0..10)
                .map(|_| NewJob {
                    job_type: "test_behave".into(),
                    payload: json!({}),
                })
                .collect(),
            EnqueueOptions {
                scheduled_for: Some(later),
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("batch");
    assert_eq!(q.queue.cancel_batch(&batch_id).await.expect("cancel"), 10);
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!((batch.failed_jobs, batch.status.as_str()), (10, "failed"));
    let failed = q
        .queue
        .list(&JobFilter {
            batch_id: Some(batch_id.clone()),
            status: Some(JobStatus::Failed),
            limit: 100,
            ..JobFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(failed.len(), 10);
    assert!(failed
        .iter()
        .all(|j| j.error.as_deref() == Some(CANCELLED_MESSAGE)));
    // Nothing left to cancel.
    assert_eq!(q.queue.cancel_batch(&batch_id).await.expect("cancel"), 0);

    assert_eq!(q.queue.retry_batch(&batch_id).await.expect("retry"), 10);
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!(
        (batch.failed_jobs, batch.status.as_str()),
        (0, "processing")
    );
    assert!(batch.completed_at.is_none());
    let w = workers(&q, &runs);
    crate::common::wait_until(
        "the retried batch to complete",
        Duration::from_secs(30),
        || async { q.queue.batch(&batch_id).await.expect("batch").status == "completed" },
    )
    .await;
    assert_eq!(
        q.queue
            .batch(&batch_id)
            .await
            .expect("batch")
            .completed_jobs,
        10
    );
    assert_eq!(runs.all().len(), 10);
    w.shutdown().await;
}

#[tokio::test]
async fn unknown_batches_are_named() {
    let q = QueueDb::new().await;
    for result in [
        q.queue.cancel_batch("nope").await,
        q.queue.retry_batch("nope").await,
    ] {
        assert!(
            matches!(result, Err(QueueError::BatchNotFound(ref id)) if id == "nope"),
            "{result:?}"
        );
    }
    assert!(matches!(
        q.queue.batch("nope").await,
        Err(QueueError::BatchNotFound(_))
    ));
    assert!(matches!(
        q.queue.job("nope").await,
        Err(QueueError::JobNotFound(_))
    ));
}

/// The link from jobs to their batch is kept by statement-level checks instead of a
/// row-by-row foreign key (migration `job_queue_throughput`): every way to break it is
/// refused with the foreign key's SQLSTATE and name, and deleting a batch still takes its
/// jobs with it.
#[tokio::test]
async fn the_batch_link_holds_like_a_foreign_key() {
    let q = QueueDb::new().await;
    let batch_id = q.batch_of(3).await;
    let other = q.batch_of(1).await;
    let refused = |sql: String| {
        let db = &q.db;
        async move {
            let e = db.try_execute(&sql).await.expect_err(&sql);
            let e = e.as_db_error().expect("a database error");
            assert_eq!(e.code().code(), "23503", "{sql}: {e}");
            assert_eq!(e.constraint(), Some("queue_jobs_batch_id_fkey"), "{sql}");
        }
    };
    // A job naming a batch that does not exist, alone or among good ones.
    refused(
        "INSERT INTO queue_jobs (id, type, payload, batch_id) VALUES ('x1', 't', '{}', 'nope')"
            .into(),
    )
    .await;
    refused(format!(
        "INSERT INTO queue_jobs (id, type, payload, batch_id) \
         VALUES ('x2', 't', '{{}}', '{batch_id}'), ('x3', 't', '{{}}', 'nope')"
    ))
    .await;
    // Moving a job to a missing batch; renaming a batch its jobs still name.
    refused(format!(
        "UPDATE queue_jobs SET batch_id = 'nope' WHERE batch_id = '{other}'"
    ))
    .await;
    refused(format!(
        "UPDATE queue_job_batches SET id = 'renamed' WHERE id = '{batch_id}'"
    ))
    .await;
    let truncate =
        q.db.try_execute("TRUNCATE queue_job_batches")
            .await
            .expect_err("truncate");
    assert_eq!(
        truncate.as_db_error().map(|e| e.code().code()),
        Some("0A000"),
        "{truncate:?}"
    );
    // Through the queue, a missing batch is named.
    let joined = q
        .queue
        .enqueue(
            "test_behave",
            json!({}),
            EnqueueOptions {
                batch_id: Some("nope".into()),
                ..EnqueueOptions::default()
            },
        )
        .await;
    assert!(
        matches!(joined, Err(QueueError::BatchNotFound(ref id)) if id == "nope"),
        "{joined:?}"
    );
    // Moving a job to another existing batch is allowed.
    q.db.execute(&format!(
        "UPDATE queue_jobs SET batch_id = '{batch_id}' WHERE batch_id = '{other}'"
    ))
    .await;
    // Nothing above left a row behind; deleting the batch cascades to its four jobs.
    let jobs = "SELECT count(*) FROM queue_jobs";
    assert_eq!(q.db.query(jobs).await[0].get::<_, i64>(0), 4);
    q.db.execute(&format!(
        "DELETE FROM queue_job_batches WHERE id IN ('{batch_id}', '{other}')"
    ))
    .await;
    assert_eq!(q.db.query(jobs).await[0].get::<_, i64>(0), 0);
    // Truncating both tables in one command works (the guard runs after it).
    q.batch_of(1).await;
    q.db.execute("TRUNCATE queue_jobs, queue_job_batches").await;
    assert_eq!(q.db.query(jobs).await[0].get::<_, i64>(0), 0);
}

/// A batch deleted while another transaction adds a job to it: the delete waits for that
/// transaction (its lock on the batch), then takes the new job with it, as the foreign
/// key's cascade did. No job is left naming a missing batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_deleted_while_a_job_joins_it_leaves_no_orphan() {
    let q = QueueDb::new().await;
    let batch_id = q.batch_of(1).await;
    let connect = || async {
        let (client, conn) = tokio_postgres::connect(&q.db.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
    };
    let (adder, deleter) = (connect().await, connect().await);
    adder
        .batch_execute(&format!(
            "BEGIN; INSERT INTO queue_jobs (id, type, payload, batch_id) \
             VALUES ('joiner', 'test_behave', '{{}}', '{batch_id}')"
        ))
        .await
        .expect("insert");
    let delete = tokio::spawn(async move {
        deleter
            .batch_execute(&format!(
                "DELETE FROM queue_job_batches WHERE id = '{batch_id}'"
            ))
            .await
    });
    // The delete waits on the adder's lock on the batch.
    crate::common::wait_until("the delete to wait for a lock", Duration::from_secs(10), || async {
        q.db
            .query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM queue_job_batches%'")
            .await[0]
            .get::<_, i64>(0)
            == 1
    })
    .await;
    adder.batch_execute("COMMIT").await.expect("commit");
    delete.await.expect("task").expect("delete");
    let left =
        q.db.query(
            "SELECT count(*) FROM queue_jobs j \
             WHERE NOT EXISTS (SELECT 1 FROM queue_job_batches b WHERE b.id = j.batch_id)",
        )
        .await;
    assert_eq!(left[0].get::<_, i64>(0), 0);
    assert_eq!(
        q.db.query("SELECT count(*) FROM queue_jobs").await[0].get::<_, i64>(0),
        0
    );
}

#[tokio::test]
async fn listings_are_newest_first() {
    let q = QueueDb::new().await;
    // A job enqueued by upstream: a random id that sorts after ours, made a day ago.
    q.db.execute(
        "INSERT INTO queue_jobs (id, type, payload, created_at) \
         VALUES ('zzzzzzzzzzzzzzzzzzzzz', 'test_behave', '{}', now() - interval '1 day')",
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            q.queue
                .enqueue("test_behave", json!({}), EnqueueOptions::default())
                .await
                .expect("enqueue"),
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let listed: Vec<String> = q
        .queue
        .list(&JobFilter {
            limit: 6,
            ..JobFilter::default()
        })
        .await
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    ids.reverse();
    ids.push("zzzzzzzzzzzzzzzzzzzzz".into());
    assert_eq!(listed, ids);
}
