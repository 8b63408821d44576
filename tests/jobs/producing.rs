//! Enqueueing: defaults, typed payloads, batches in one transaction, a caller's rolled-back
//! transaction, unique keys, bad input, and one wake-up per statement.

use std::time::Duration;

use deploystack_backend::jobs::queue::{enqueue_in, JobFilter};
use deploystack_backend::jobs::{EnqueueOptions, NewJob, QueueError};
use diesel_async::AsyncConnection;
use futures_util::StreamExt;
use serde_json::json;

use crate::support::{ok, Behave, QueueDb};

#[tokio::test]
async fn a_typed_job_is_stored_with_upstreams_defaults() {
    let q = QueueDb::new().await;
    let id = q
        .queue
        .enqueue_job::<Behave>(&ok(), EnqueueOptions::default())
        .await
        .expect("enqueue");
    let job = q.queue.job(&id).await.expect("job");
    assert_eq!(job.id.len(), 21);
    assert_eq!(job.job_type, "test_behave");
    assert_eq!(job.status, "pending");
    assert_eq!((job.attempts, job.max_attempts, job.priority), (0, 3, 0));
    assert_eq!(job.payload["failUntil"], json!(0));
    assert!(job.locked_by.is_none() && job.batch_id.is_none());
    assert!(job.scheduled_for <= chrono::Utc::now());
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let q = QueueDb::new().await;
    let mut conn = q.database.conn().await.expect("conn");
    let rolled_back = conn
        .transaction::<String, QueueError, _>(async |conn| {
            enqueue_in(conn, "test_behave", json!({}), EnqueueOptions::default()).await?;
            Err(QueueError::Invalid("the caller's own failure".into()))
        })
        .await;
    assert!(rolled_back.is_err());
    assert_eq!(q.count("pending").await, 0);
    let committed = conn
        .transaction::<String, QueueError, _>(async |conn| {
            enqueue_in(conn, "test_behave", json!({}), EnqueueOptions::default()).await
        })
        .await
        .expect("commit");
    assert_eq!(
        q.queue.job(&committed).await.expect("job").status,
        "pending"
    );
    assert_eq!(q.count("pending").await, 1);
}

#[tokio::test]
async fn a_batch_and_its_jobs_are_created_together() {
    let q = QueueDb::new().await;
    let jobs = (0..250)
        .map(|i| NewJob {
            job_type: "test_behave".into(),
            payload: json!({ "echo": i }),
        })
        .collect();
    let batch_id = q
        .queue
        .enqueue_batch(
            "registry_sync",
            Some(json!({"source": "test"})),
            jobs,
            EnqueueOptions {
                max_attempts: 5,
                priority: 2,
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("batch");
    let batch = q.queue.batch(&batch_id).await.expect("batch");
    assert_eq!(
        (batch.total_jobs, batch.completed_jobs, batch.failed_jobs),
        (250, 0, 0)
    );
    assert_eq!(batch.status, "pending");
    let listed = q
        .queue
        .list(&JobFilter {
            batch_id: Some(batch_id.clone()),
            limit: 1000,
            ..JobFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 250);
    assert!(listed
        .iter()
        .all(|j| j.max_attempts == 5 && j.priority == 2 && j.status == "pending"));
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let q = QueueDb::new().await;
    let cases = [
        ("", EnqueueOptions::default()),
        (
            "test_behave",
            EnqueueOptions {
                max_attempts: 0,
                ..EnqueueOptions::default()
            },
        ),
        (
            "test_behave",
            EnqueueOptions {
                key: Some("k".into()),
                batch_id: Some("b".into()),
                ..EnqueueOptions::default()
            },
        ),
    ];
    for (job_type, options) in cases {
        let err = q
            .queue
            .enqueue(job_type, json!({}), options)
            .await
            .expect_err("refused");
        assert!(matches!(err, QueueError::Invalid(_)), "{err:?}");
    }
    let err = q
        .queue
        .enqueue(
            "test_behave",
            json!({}),
            EnqueueOptions {
                batch_id: Some("no-such-batch".into()),
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, QueueError::BatchNotFound(_)), "{err:?}");
    let err = q
        .queue
        .enqueue(
            "test_behave",
            json!({"text": "a\u{0}b"}),
            EnqueueOptions::default(),
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, QueueError::Invalid(m) if m.contains("NUL")),
        "{err:?}"
    );
    let err = q
        .queue
        .enqueue_batch("empty", None, Vec::new(), EnqueueOptions::default())
        .await
        .expect_err("refused");
    assert!(matches!(err, QueueError::Invalid(_)), "{err:?}");
    let rows =
        q.db.query(
            "SELECT (SELECT count(*) FROM queue_jobs) + (SELECT count(*) FROM queue_job_batches)",
        )
        .await;
    assert_eq!(rows[0].get::<_, i64>(0), 0);
}

#[tokio::test]
async fn a_key_enqueues_once_and_names_the_same_job() {
    let q = QueueDb::new().await;
    let options = || EnqueueOptions {
        key: Some("once".into()),
        ..EnqueueOptions::default()
    };
    let first = q
        .queue
        .enqueue("test_behave", json!({}), options())
        .await
        .expect("first");
    let second = q
        .queue
        .enqueue("test_behave", json!({}), options())
        .await
        .expect("second");
    assert_eq!(first, second);
    assert_eq!(q.count("pending").await, 1);
}

#[tokio::test]
async fn a_failed_job_gives_its_key_back_and_the_others_keep_it() {
    let q = QueueDb::new().await;
    let q = &q;
    let keyed = |payload: serde_json::Value, priority: i32| async move {
        q.queue
            .enqueue(
                "test_behave",
                payload,
                EnqueueOptions {
                    key: Some("work".into()),
                    priority,
                    ..EnqueueOptions::default()
                },
            )
            .await
            .expect("enqueue")
    };
    let id = keyed(json!({"run": 1}), 0).await;
    // Pending, processing and completed holders keep the key: nothing changes.
    for status in ["pending", "processing", "completed"] {
        let lease = if status == "processing" {
            "locked_by = 'w:1:1', locked_until = now() + interval '1 hour'"
        } else {
            "locked_by = NULL, locked_until = NULL"
        };
        q.db.execute(&format!(
            "UPDATE queue_jobs SET status = '{status}', {lease} WHERE id = '{id}'"
        ))
        .await;
        assert_eq!(keyed(json!({"run": 2}), 5).await, id);
        let job = q.queue.job(&id).await.expect("job");
        assert_eq!(
            (job.status.as_str(), job.payload.clone(), job.priority),
            (status, json!({"run": 1}), 0)
        );
    }
    // A failed holder is enqueued again: same id, the new payload and options, from zero.
    q.db.execute(&format!(
        "UPDATE queue_jobs SET status = 'failed', attempts = 3, error = 'gave up', \
           completed_at = now(), started_at = now() WHERE id = '{id}'"
    ))
    .await;
    assert_eq!(keyed(json!({"run": 3}), 5).await, id);
    let job = q.queue.job(&id).await.expect("job");
    assert_eq!(
        (
            job.status.as_str(),
            job.payload.clone(),
            job.priority,
            job.attempts
        ),
        ("pending", json!({"run": 3}), 5, 0)
    );
    assert!(job.error.is_none() && job.completed_at.is_none() && job.started_at.is_none());
    assert_eq!(q.count("pending").await, 1);
}

#[tokio::test]
async fn joining_an_existing_batch_counts_the_job() {
    let q = QueueDb::new().await;
    let batch_id = q.batch_of(1).await;
    q.queue
        .enqueue(
            "test_behave",
            json!({}),
            EnqueueOptions {
                batch_id: Some(batch_id.clone()),
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("join");
    assert_eq!(q.queue.batch(&batch_id).await.expect("batch").total_jobs, 2);
}

/// A listener that counts notifications on the jobs channel.
async fn listen(
    q: &QueueDb,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let (client, mut connection) = tokio_postgres::connect(&q.db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(_) = message {
                let _ = tx.send(());
            }
        }
    });
    client
        .batch_execute("LISTEN deploystack_jobs")
        .await
        .expect("listen");
    (client, rx)
}

async fn received(rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>) -> usize {
    // Notifications arrive right after the commit; give them a moment, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    n
}

#[tokio::test]
async fn one_wake_up_per_statement_never_per_row_and_none_for_later_jobs() {
    let q = QueueDb::new().await;
    let (_client, mut rx) = listen(&q).await;
    let jobs = (0..500)
        .map(|_| NewJob {
            job_type: "test_behave".into(),
            payload: json!({}),
        })
        .collect();
    q.queue
        .enqueue_batch("b", None, jobs, EnqueueOptions::default())
        .await
        .expect("batch");
    assert_eq!(
        received(&mut rx).await,
        1,
        "a batch of 500 sends one wake-up"
    );
    q.queue
        .enqueue("test_behave", json!({}), EnqueueOptions::default())
        .await
        .expect("enqueue");
    assert_eq!(received(&mut rx).await, 1);
    q.queue
        .enqueue(
            "test_behave",
            json!({}),
            EnqueueOptions {
                scheduled_for: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("enqueue later");
    assert_eq!(received(&mut rx).await, 0, "a job due later wakes nobody");

    // Inside a caller's transaction: announced by the trigger, at commit, once.
    let mut conn = q.database.conn().await.expect("conn");
    conn.transaction::<(), QueueError, _>(async |conn| {
        for _ in 0..3 {
            enqueue_in(conn, "test_behave", json!({}), EnqueueOptions::default()).await?;
        }
        assert_eq!(received(&mut rx).await, 0, "nothing before the commit");
        Ok(())
    })
    .await
    .expect("commit");
    assert_eq!(received(&mut rx).await, 1);
}

/// Concurrent enqueues of one process share statements (fewer transactions than jobs), and
/// each caller still gets its own answer: its own job with its own options, or the holder
/// of a key it shares with others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_share_statements_and_keep_their_own_answers() {
    let q = QueueDb::new().await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let results = enqueue_concurrently(&q, 300, |i| {
        let key = (i % 10 == 3).then(|| "shared".to_owned());
        (
            "test_behave",
            EnqueueOptions {
                priority: i % 3,
                max_attempts: 1 + i % 5,
                scheduled_for: (i % 4 == 0).then_some(later),
                key,
                ..EnqueueOptions::default()
            },
        )
    })
    .await;
    let mut shared_ids = std::collections::HashSet::new();
    let mut own = 0;
    for (i, result) in results {
        let id = result.expect("enqueue");
        if i % 10 == 3 {
            shared_ids.insert(id);
            continue;
        }
        own += 1;
        let job = q.queue.job(&id).await.expect("job");
        assert_eq!(job.payload, json!({ "n": i }));
        assert_eq!((job.priority, job.max_attempts), (i % 3, 1 + i % 5));
        let delayed = (job.scheduled_for - later).num_milliseconds().abs() < 1;
        assert_eq!(delayed, i % 4 == 0, "{i}");
    }
    assert_eq!(shared_ids.len(), 1, "one job holds the shared key");
    let holder = shared_ids
        .iter()
        .next()
        .map(String::as_str)
        .unwrap_or_default();
    assert_eq!(
        q.queue.job(holder).await.expect("holder").key.as_deref(),
        Some("shared")
    );
    let rows =
        q.db.query("SELECT count(*), count(DISTINCT xmin::text) FROM queue_jobs")
            .await;
    let (jobs, transactions) = (rows[0].get::<_, i64>(0), rows[0].get::<_, i64>(1));
    assert_eq!(jobs, own + 1);
    assert!(
        transactions < jobs,
        "{jobs} jobs in {transactions} transactions: no statement was shared"
    );
}

/// A job that fails a shared statement gets its own error; every other job of that
/// statement is written alone, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_does_not_take_the_others_of_its_statement_with_it() {
    let q = QueueDb::new().await;
    q.db.execute("ALTER TABLE queue_jobs ADD CONSTRAINT no_poison CHECK (type <> 'poison')")
        .await;
    let results = enqueue_concurrently(&q, 100, |i| {
        let job_type = if i % 25 == 7 { "poison" } else { "test_behave" };
        (job_type, EnqueueOptions::default())
    })
    .await;
    let mut written = std::collections::HashSet::new();
    for (i, result) in results {
        if i % 25 == 7 {
            assert!(matches!(result, Err(QueueError::Db(_))), "{i}: {result:?}");
        } else {
            let id = result.expect("enqueue");
            assert_eq!(
                q.queue.job(&id).await.expect("job").payload,
                json!({ "n": i })
            );
            assert!(written.insert(id));
        }
    }
    let rows = q.db.query("SELECT count(*) FROM queue_jobs").await;
    assert_eq!(rows[0].get::<_, i64>(0), 96);
}

/// Runs `n` enqueues at once (job `i` with payload `{"n": i}` and what `shape(i)` gives).
async fn enqueue_concurrently(
    q: &QueueDb,
    n: i32,
    shape: impl Fn(i32) -> (&'static str, EnqueueOptions),
) -> Vec<(i32, Result<String, QueueError>)> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let queue = q.queue.clone();
        let (job_type, options) = shape(i);
        tasks.push(tokio::spawn(async move {
            (i, queue.enqueue(job_type, json!({ "n": i }), options).await)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}
