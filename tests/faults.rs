//! Faults while the queue works, each with an exact expected outcome: worker processes
//! killed with SIGKILL and PostgreSQL crashing (immediate stop) in the middle of a drain.
//! On a cluster of the test's own, since it is stopped.

mod common;

use std::time::{Duration, Instant};

use deploystack_backend::jobs::{EnqueueOptions, JobQueue, NewJob};
use serde_json::json;
use tokio::process::Child;

use common::pg::{ready_database, OwnCluster, TestDb};
use common::workers::{spawn_worker, terminate, RUNS_TABLES};

const JOBS: i64 = 5_000;

/// `sql`'s single count, or `None` while PostgreSQL is away.
async fn try_count(db: &TestDb, sql: &str) -> Option<i64> {
    let (client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.ok().map(|row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_survives_killed_workers_and_a_postgresql_crash() {
    let port = common::free_port();
    let own = OwnCluster::prepare(port).await;
    let mut running = own.cluster.start().await.expect("start");
    let db = TestDb::on(&running);
    let database = ready_database(&db).await;
    db.execute(RUNS_TABLES).await;
    let dir = tempfile::tempdir().expect("dir");
    let log = |name: &str| dir.path().join(format!("{name}.log"));

    // Every run holds its job's advisory lock while it sleeps 20 ms: a second run of the same
    // job at the same time would find it held and say so in job_overlaps.
    let jobs = (0..JOBS)
        .map(|_| NewJob {
            job_type: "test_exclusive".into(),
            payload: json!({"sleepMs": 20}),
        })
        .collect();
    let queue = JobQueue::new(database.clone());
    let batch_id = queue
        .enqueue_batch(
            "faults",
            None,
            jobs,
            EnqueueOptions {
                // Each kill or crash costs the runs it interrupts an attempt.
                max_attempts: 25,
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("batch");
    database.close();

    let mut workers: Vec<Child> = Vec::new();
    for i in 0..3 {
        workers.push(spawn_worker(&db, &format!("w{i}"), &log(&format!("w{i}"))).await);
    }
    let started = Instant::now();
    let (mut kills, mut crashed) = (0, false);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let completed = try_count(
            &db,
            "SELECT count(*) FROM queue_jobs WHERE status = 'completed'",
        )
        .await;
        if completed == Some(JOBS) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{completed:?} of {JOBS} jobs completed after 4 minutes"
        );
        // A worker dies (SIGKILL) every two seconds; another takes its place.
        let slot = kills % workers.len();
        workers[slot].start_kill().expect("SIGKILL");
        let _ = workers[slot].wait().await;
        kills += 1;
        workers[slot] =
            spawn_worker(&db, &format!("w{slot}-{kills}"), &log(&format!("k{kills}"))).await;
        // Once, with a third done: PostgreSQL stops at once (no checkpoint, open transactions
        // lost) and comes back two seconds later.
        if !crashed && completed.is_some_and(|n| n >= JOBS / 3) {
            running.kill().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            running = own.cluster.start().await.expect("restart");
            crashed = true;
        }
    }
    assert!(
        crashed,
        "the drain ended before PostgreSQL could be crashed"
    );
    assert!(kills >= 3, "only {kills} workers were killed");

    let count = |sql: &'static str| {
        let db = &db;
        async move { try_count(db, sql).await.expect(sql) }
    };
    assert_eq!(
        count("SELECT count(*) FROM queue_jobs WHERE status = 'failed'").await,
        0
    );
    assert_eq!(count("SELECT count(*) FROM queue_jobs").await, JOBS);
    assert_eq!(
        count("SELECT count(*) FROM job_overlaps").await,
        0,
        "a job ran twice at the same time"
    );
    assert_eq!(
        count("SELECT count(DISTINCT job_id) FROM job_runs").await,
        JOBS
    );
    let batch = db
        .query(&format!(
            "SELECT completed_jobs, failed_jobs, total_jobs, status FROM queue_job_batches \
             WHERE id = '{batch_id}'"
        ))
        .await;
    assert_eq!(
        (
            batch[0].get::<_, i32>(0),
            batch[0].get::<_, i32>(1),
            batch[0].get::<_, i32>(2),
            batch[0].get::<_, String>(3)
        ),
        (JOBS as i32, 0, JOBS as i32, "completed".to_owned())
    );
    let reruns = count("SELECT count(*) FROM job_runs").await - JOBS;
    eprintln!(
        "drained {JOBS} jobs in {:.1} s with {kills} workers killed and one crash of PostgreSQL; \
         {reruns} runs repeated",
        started.elapsed().as_secs_f64()
    );
    for worker in workers {
        assert!(terminate(worker).await.success());
    }
    drop(db);
    running.stop().await.expect("stop");
}
