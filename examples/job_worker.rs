//! A worker process for the multi-process job queue tests (and a small example of running
//! the workers on their own): connects with the `POSTGRES_*` variables, runs two test job
//! types with the `JOB_*` settings, prints `ready` and stops cleanly on SIGTERM.
//!
//! - `test_record` writes `(job id, attempt, worker)` into the table `job_runs` (which the
//!   test creates), so a test can count runs across processes.
//! - `test_sleep` records its run the same way, then sleeps `sleepMs`.
//! - `test_exclusive` records its run, then sleeps `sleepMs` inside a transaction holding
//!   the job's advisory lock; a run that finds the lock held (another run of the same job is
//!   live) writes `(job id, attempt, worker)` into `job_overlaps`. It stops early when its
//!   run is cancelled (its lease was taken back).

use std::time::Duration;

use deploystack_backend::config::{Config, PostgresSource};
use deploystack_backend::db::{Database, LivePool, PgConnector};
use deploystack_backend::jobs::{Job, JobContext, JobError, Registry, Workers};
use diesel::sql_types::{Integer, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sleep {
    #[serde(default)]
    sleep_ms: u64,
}

struct Recorder {
    db: Database,
    worker: String,
}

impl Recorder {
    async fn record(&self, ctx: &JobContext) -> Result<(), JobError> {
        let mut conn = self.db.conn().await?;
        diesel::sql_query("INSERT INTO job_runs (job_id, attempt, worker) VALUES ($1, $2, $3)")
            .bind::<Text, _>(&ctx.id)
            .bind::<Integer, _>(ctx.attempt)
            .bind::<Text, _>(&self.worker)
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

struct TestRecord(Recorder);

impl Job for TestRecord {
    const TYPE: &'static str = "test_record";
    type Payload = serde_json::Value;
    type Output = ();

    async fn run(&self, _: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        self.0.record(&ctx).await
    }
}

struct TestSleep(Recorder);

impl Job for TestSleep {
    const TYPE: &'static str = "test_sleep";
    type Payload = Sleep;
    type Output = ();

    async fn run(&self, payload: Sleep, ctx: JobContext) -> Result<(), JobError> {
        self.0.record(&ctx).await?;
        tokio::time::sleep(Duration::from_millis(payload.sleep_ms)).await;
        Ok(())
    }
}

struct TestExclusive(Recorder);

#[derive(QueryableByName)]
struct Got {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    got: bool,
}

impl Job for TestExclusive {
    const TYPE: &'static str = "test_exclusive";
    type Payload = Sleep;
    type Output = ();

    async fn run(&self, payload: Sleep, ctx: JobContext) -> Result<(), JobError> {
        use diesel_async::AsyncConnection;

        self.0.record(&ctx).await?;
        let mut conn = self.0.db.conn().await?;
        let (id, attempt, worker) = (ctx.id.clone(), ctx.attempt, self.0.worker.clone());
        let db = self.0.db.clone();
        conn.transaction::<_, JobError, _>(async |conn| {
            let got = diesel::sql_query("SELECT pg_try_advisory_xact_lock(hashtext($1)) AS got")
                .bind::<Text, _>(&id)
                .get_result::<Got>(conn)
                .await?
                .got;
            if !got {
                let mut other = db.conn().await?;
                diesel::sql_query(
                    "INSERT INTO job_overlaps (job_id, attempt, worker) VALUES ($1, $2, $3)",
                )
                .bind::<Text, _>(&id)
                .bind::<Integer, _>(attempt)
                .bind::<Text, _>(&worker)
                .execute(&mut other)
                .await?;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(payload.sleep_ms)) => Ok(()),
                () = ctx.cancel.cancelled() => Err(JobError::retry("cancelled")),
            }
        })
        .await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    deploystack_backend::telemetry::init().map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = Config::from_env()?;
    let PostgresSource::External(target) = &config.postgres else {
        anyhow::bail!("set the POSTGRES_* variables");
    };
    let connector = PgConnector::new(target, &config.pool)?;
    let db = Database::new();
    db.install(LivePool::new(&connector, &config.pool));
    let worker = std::env::var("WORKER_NAME").unwrap_or_else(|_| "worker".into());
    let recorder = || Recorder {
        db: db.clone(),
        worker: worker.clone(),
    };
    let mut registry = Registry::new();
    registry
        .register(TestRecord(recorder()))
        .register(TestSleep(recorder()))
        .register(TestExclusive(recorder()));
    let workers = Workers::start(db.clone(), Some(connector), registry, config.jobs.clone());
    println!("ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    workers.shutdown().await;
    db.close();
    Ok(())
}
