//! Job queue throughput and latency (figures, not a test):
//!
//! - `single_enqueue_per_s`: `BENCH_SINGLES` (5,000) single enqueues from 16 concurrent tasks;
//! - `batch_enqueue_per_s`: one `enqueue_batch` of `BENCH_BATCH` (20,000) jobs;
//! - `drain_jobs_per_s`: the worker runtime (`BENCH_CONCURRENCY`, 2,000 no-op jobs at once,
//!   so each of its two claimers takes up to 1,000 jobs per claim) draining
//!   `BENCH_DRAIN` (50,000) no-op jobs, completed rows kept as upstream keeps them;
//! - `idle_p50_ms`/`idle_p99_ms`: enqueue → handler start, one job at a time on an empty
//!   queue, `BENCH_IDLE` (1,000) times; `missed_wakeups` counts starts later than 100 ms
//!   (the poll fallback, every second, started them, not a notification).
//!
//! Uses the PostgreSQL named by the `POSTGRES_*` variables when set (compare with other
//! queues on the same server), its own cluster otherwise: fsync off, or on with
//! `BENCH_DURABLE=1`. The last line is one JSON object.
//!
//! The peer, on the same server in the same run: graphile-worker (npm, installed once into
//! `target/bench-graphile`; `BENCH_GRAPHILE=0` skips it) drains as many no-op jobs and
//! measures its idle latency the same way, on a database of its own; the ratios to the
//! issue's goals (drain >= 1.1x, idle p50 <= 0.8x) are printed and added to the JSON.
//!
//! Diagnostics (own cluster): `BENCH_STATEMENTS=1` prints the statements of the drain from
//! pg_stat_statements; `BENCH_PRELOAD`, `BENCH_PG_SETTINGS` (`name=value;...`) and
//! `BENCH_PG_LOG` (a path to copy the server log to) allow auto_explain; `BENCH_SQL` runs a
//! statement first (try an index change).

mod common;
#[path = "queue/peer.rs"]
mod peer;

use std::time::{Duration, Instant};

use deploystack_backend::config::{Config, JobSettings, PoolSettings, PostgresSource};
use deploystack_backend::db::{migrations, provision, Database, LivePool, PgConnector};
use deploystack_backend::jobs::{
    EnqueueOptions, Job, JobContext, JobError, JobQueue, NewJob, Registry, Workers,
};
use tokio::sync::mpsc;

use common::BoxError;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A job that does nothing but say when it started.
struct Noop(Option<mpsc::UnboundedSender<Instant>>);

impl Job for Noop {
    const TYPE: &'static str = "bench_noop";
    type Payload = serde_json::Value;
    type Output = ();

    async fn run(&self, _: serde_json::Value, _: JobContext) -> Result<(), JobError> {
        if let Some(started) = &self.0 {
            let _ = started.send(Instant::now());
        }
        Ok(())
    }
}

fn registry(started: Option<mpsc::UnboundedSender<Instant>>) -> Registry {
    let mut registry = Registry::new();
    registry.register(Noop(started));
    registry
}

async fn pending(db: &Database) -> Result<i64, BoxError> {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = db.conn().await?;
    Ok(diesel::sql_query(
        "SELECT count(*) AS n FROM queue_jobs WHERE status IN ('pending', 'processing')",
    )
    .get_result::<N>(&mut conn)
    .await?
    .n)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let singles = env_or("BENCH_SINGLES", 5_000);
    let batch_size = env_or("BENCH_BATCH", 20_000);
    let drain = env_or("BENCH_DRAIN", 50_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 2_000) as u32;
    let idle_runs = env_or("BENCH_IDLE", 1_000);
    let pool = PoolSettings::default();

    // The database: the configured one, or a cluster of our own.
    let config = Config::from_env()?;
    let (_own, target) = match &config.postgres {
        PostgresSource::External(target) => {
            println!(
                "PostgreSQL: {}:{} (from POSTGRES_*)",
                target.host, target.port
            );
            let connector = PgConnector::new(target, &pool)?;
            let conn = provision::connect_creating_database(&connector).await?;
            migrations::run_pending(conn).await?;
            (None, target.clone())
        }
        PostgresSource::Embedded => {
            let durable = std::env::var("BENCH_DURABLE").is_ok_and(|v| v == "1");
            let own = common::migrated_database_on(
                "queue_bench",
                std::env::var("BENCH_PG_SETTINGS")
                    .unwrap_or_default()
                    .split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .chain([(
                        "shared_preload_libraries".into(),
                        std::env::var("BENCH_PRELOAD")
                            .unwrap_or_else(|_| "pg_stat_statements".into()),
                    )])
                    .collect(),
                durable,
            )
            .await?;
            println!(
                "PostgreSQL: own cluster, fsync {}",
                if durable { "on" } else { "off" }
            );
            let target = own.pg.superuser_connection("queue_bench");
            (Some(own), target)
        }
    };
    let connector = PgConnector::new(&target, &pool)?;
    let db = Database::new();
    db.install(LivePool::new(&connector, &pool));
    let queue = JobQueue::new(db.clone());
    {
        use diesel_async::RunQueryDsl;
        let mut conn = db.conn().await?;
        diesel::sql_query("DELETE FROM queue_jobs WHERE type = 'bench_noop'")
            .execute(&mut conn)
            .await?;
        if let Ok(sql) = std::env::var("BENCH_SQL") {
            diesel::sql_query(sql).execute(&mut conn).await?;
        }
    }

    // Single enqueues, 16 producers.
    let started = Instant::now();
    let producers = 16;
    let mut tasks = Vec::new();
    for p in 0..producers {
        let queue = queue.clone();
        let n = singles / producers + usize::from(p < singles % producers);
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                queue
                    .enqueue(
                        "bench_noop",
                        serde_json::json!({}),
                        EnqueueOptions::default(),
                    )
                    .await?;
            }
            Ok::<_, deploystack_backend::jobs::QueueError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let single_enqueue_per_s = singles as f64 / started.elapsed().as_secs_f64();
    println!("single enqueue: {singles} jobs, {single_enqueue_per_s:.0}/s (16 producers)");

    // One batch.
    let jobs: Vec<NewJob> = (0..batch_size)
        .map(|i| NewJob {
            job_type: "bench_noop".into(),
            payload: serde_json::json!({ "n": i }),
        })
        .collect();
    let started = Instant::now();
    queue
        .enqueue_batch("bench", None, jobs, EnqueueOptions::default())
        .await?;
    let batch_enqueue_per_s = batch_size as f64 / started.elapsed().as_secs_f64();
    println!("batch enqueue: {batch_size} jobs, {batch_enqueue_per_s:.0}/s");

    // Top up to `drain` jobs waiting, then drain them.
    let mut waiting = pending(&db).await? as usize;
    while waiting < drain {
        let n = (drain - waiting).min(20_000);
        let jobs = (0..n)
            .map(|_| NewJob {
                job_type: "bench_noop".into(),
                payload: serde_json::json!({}),
            })
            .collect();
        queue
            .enqueue_batch("bench", None, jobs, EnqueueOptions::default())
            .await?;
        waiting += n;
    }
    let settings = JobSettings {
        concurrency,
        stats_interval: None,
        schedules: false,
        ..JobSettings::default()
    };
    if std::env::var("BENCH_STATEMENTS").is_ok_and(|v| v == "1") {
        use diesel_async::RunQueryDsl;
        let mut conn = db.conn().await?;
        diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut conn)
            .await?;
        diesel::sql_query("SELECT pg_stat_statements_reset()")
            .execute(&mut conn)
            .await?;
    }
    let cpu_before = cpu_split();
    let started = Instant::now();
    let workers = Workers::start(
        db.clone(),
        Some(connector.clone()),
        registry(None),
        settings.clone(),
    );
    while (workers.counters().completed as usize) < waiting {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drained = started.elapsed();
    let drain_jobs_per_s = waiting as f64 / drained.as_secs_f64();
    println!(
        "drain: {waiting} jobs in {:.2} s, {drain_jobs_per_s:.0} jobs/s (concurrency {concurrency})",
        drained.as_secs_f64()
    );
    let cpu_after = cpu_split();
    let per_job = |before: u64, after: u64| {
        after.saturating_sub(before) as f64 * 1e6 / ticks_per_second() / waiting as f64
    };
    println!(
        "drain CPU per job: this process {:.1} µs, PostgreSQL {:.1} µs",
        per_job(cpu_before.0, cpu_after.0),
        per_job(cpu_before.1, cpu_after.1)
    );
    workers.shutdown().await;
    if std::env::var("BENCH_STATEMENTS").is_ok_and(|v| v == "1") {
        print_statements(&db).await?;
    }

    // Idle latency: one job at a time, queue empty, workers waiting on LISTEN. The drain's
    // dead row versions are vacuumed first, as autovacuum does within seconds on an idle
    // queue, so the figure is not taken while a vacuum of the drained table runs beside it.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = db.conn().await?;
        diesel::sql_query("VACUUM (ANALYZE) queue_jobs")
            .execute(&mut conn)
            .await?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let workers = Workers::start(
        db.clone(),
        Some(connector.clone()),
        registry(Some(tx)),
        settings,
    );
    // As the server does: this process's enqueues wake its workers directly (other
    // processes by the notification).
    if std::env::var("BENCH_LOCAL_WAKE").map_or(true, |v| v != "0") {
        queue.attach(&workers);
    }
    // Let the listener connect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::with_capacity(idle_runs);
    let mut enqueue_times = Vec::with_capacity(idle_runs);
    let missed_limit = Duration::from_millis(100);
    for _ in 0..idle_runs {
        let sent = Instant::now();
        queue
            .enqueue(
                "bench_noop",
                serde_json::json!({}),
                EnqueueOptions::default(),
            )
            .await?;
        let committed = Instant::now();
        let Some(started) = rx.recv().await else {
            return Err("the workers stopped".into());
        };
        latencies.push(started.duration_since(sent));
        enqueue_times.push(committed.duration_since(sent));
        // Let the completion be written, so the next job finds the worker idle.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    workers.shutdown().await;
    latencies.sort_unstable();
    enqueue_times.sort_unstable();
    let enqueue_p50_ms = enqueue_times
        .get(enqueue_times.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let ms = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    let missed_wakeups = latencies.iter().filter(|l| **l > missed_limit).count();
    let (idle_p50_ms, idle_p99_ms) = (ms(0.5), ms(0.99));
    println!(
        "idle latency: p50 {idle_p50_ms:.2} ms, p99 {idle_p99_ms:.2} ms, max {:.2} ms, missed wake-ups {missed_wakeups}/{idle_runs}",
        ms(1.0)
    );
    println!("idle latency: of which the enqueue's own round trip p50 {enqueue_p50_ms:.2} ms");
    let peer = if std::env::var("BENCH_GRAPHILE").as_deref() == Ok("0") {
        None
    } else {
        match run_peer(&db, &target, waiting, idle_runs).await {
            Ok(figures) => Some(figures),
            Err(e) => {
                println!("graphile-worker not measured: {e}");
                None
            }
        }
    };
    db.close();
    let mut result = serde_json::json!({
        "drain_jobs_per_s": drain_jobs_per_s.round(),
        "idle_p50_ms": (idle_p50_ms * 1000.0).round() / 1000.0,
        "idle_p99_ms": (idle_p99_ms * 1000.0).round() / 1000.0,
        "missed_wakeups": missed_wakeups,
        "single_enqueue_per_s": single_enqueue_per_s.round(),
        "batch_enqueue_per_s": batch_enqueue_per_s.round(),
    });
    if let Some(peer) = &peer {
        let drain_ratio = drain_jobs_per_s / peer.drain_jobs_per_s;
        let idle_ratio = idle_p50_ms / peer.idle_p50_ms;
        println!(
            "graphile-worker (concurrency 24, local queue 500, batched completion), same server: \
             drain {:.0} jobs/s, idle p50 {:.2} ms, p99 {:.2} ms",
            peer.drain_jobs_per_s, peer.idle_p50_ms, peer.idle_p99_ms
        );
        println!(
            "ours / graphile-worker: drain {drain_ratio:.2}x (goal >= 1.1), idle p50 {idle_ratio:.2}x (goal <= 0.8)"
        );
        result["graphile_drain_jobs_per_s"] = peer.drain_jobs_per_s.round().into();
        result["graphile_idle_p50_ms"] = ((peer.idle_p50_ms * 1000.0).round() / 1000.0).into();
        result["drain_ratio"] = ((drain_ratio * 100.0).round() / 100.0).into();
        result["idle_p50_ratio"] = ((idle_ratio * 100.0).round() / 100.0).into();
    }
    if let Some(own) = _own {
        if let Ok(copy) = std::env::var("BENCH_PG_LOG") {
            std::fs::copy(own._dir.path().join("pg/postgres.log"), copy)?;
        }
        own.pg.stop().await?;
    }
    println!("{result}");
    Ok(())
}

/// Runs the peer on a database of its own on the same server (created here, dropped after).
async fn run_peer(
    db: &Database,
    target: &deploystack_backend::config::ConnectionTarget,
    drain: usize,
    idle: usize,
) -> Result<peer::PeerFigures, BoxError> {
    use diesel_async::RunQueryDsl;
    const PEER_DB: &str = "queue_bench_graphile";
    let mut conn = db.conn().await?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {PEER_DB} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    diesel::sql_query(format!("CREATE DATABASE {PEER_DB}"))
        .execute(&mut conn)
        .await?;
    let target = target.clone();
    let figures = tokio::task::spawn_blocking(move || {
        peer::graphile(&target, PEER_DB, drain, idle).map_err(|e| e.to_string())
    })
    .await?
    .map_err(BoxError::from);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {PEER_DB} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    figures
}

/// The statements that took the server's time during the drain (`BENCH_STATEMENTS=1`, own
/// cluster only: it needs pg_stat_statements).
async fn print_statements(db: &Database) -> Result<(), BoxError> {
    use diesel::sql_types::{BigInt, Double, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        calls: i64,
        #[diesel(sql_type = BigInt)]
        rows: i64,
        #[diesel(sql_type = Double)]
        total_ms: f64,
        #[diesel(sql_type = Text)]
        query: String,
    }
    let mut conn = db.conn().await?;
    diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&mut conn)
        .await?;
    let rows = diesel::sql_query(
        "SELECT calls, rows, total_exec_time AS total_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query \
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8",
    )
    .load::<Row>(&mut conn)
    .await?;
    for r in rows {
        println!(
            "  {:>8} calls {:>8} rows {:>9.1} ms  {}",
            r.calls, r.rows, r.total_ms, r.query
        );
    }
    Ok(())
}

/// CPU ticks (user + system) of this process and of every `postgres` process on the machine,
/// so the drain's cost can be split between the runtime and the server.
fn cpu_split() -> (u64, u64) {
    let ticks = |stat: &str| -> Option<(String, u64)> {
        let (head, rest) = stat.rsplit_once(')')?;
        let name = head.split_once('(')?.1.to_owned();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((name, utime + stime))
    };
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .map_or(0, |(_, t)| t);
    let mut server = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
                if let Some((name, t)) = ticks(&stat) {
                    if name == "postgres" {
                        server += t;
                    }
                }
            }
        }
    }
    (own, server)
}

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
fn ticks_per_second() -> f64 {
    100.0
}
