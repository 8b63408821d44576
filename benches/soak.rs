//! Soak (figures, not a test; `cargo bench --bench soak`): `SOAK_MINUTES` (10) minutes of
//! mixed load on one process against its own PostgreSQL: HTTP clients (`SOAK_CLIENTS`, 16)
//! reading and writing through the API's middleware (every write also enqueues a job), a
//! producer enqueueing batches, and the job workers restarted every minute (shutdown and a
//! fresh runtime, as a rolling restart does).
//!
//! Every job runs 5 ms inside a transaction holding its own advisory lock: a run that finds
//! it held (the same job running twice at once) is counted. Each minute prints this
//! process's RSS, the connections open on the database, jobs completed per second and the
//! HTTP p99; the last line is JSON `{rss_growth_mib, conn_growth, lost_jobs,
//! dup_concurrent}`: RSS and connections at the last minute against the first minute's,
//! jobs not completed after the final drain, and concurrent duplicate runs. All four should
//! be 0 (RSS growth within 2 MiB).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deploystack_backend::config::{JobSettings, PoolSettings};
use deploystack_backend::db::{Database, LivePool, PgConnector};
use deploystack_backend::jobs::{
    EnqueueOptions, Job, JobContext, JobError, JobQueue, NewJob, Registry, Workers,
};
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};

use common::BoxError;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(QueryableByName)]
struct Got {
    #[diesel(sql_type = Bool)]
    got: bool,
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// 5 ms under the job's own advisory lock; counts runs that found it held.
struct Exclusive {
    db: Database,
    overlaps: Arc<AtomicU64>,
}

impl Job for Exclusive {
    const TYPE: &'static str = "soak_exclusive";
    type Payload = serde_json::Value;
    type Output = ();

    async fn run(&self, _: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let mut conn = self.db.conn().await?;
        let overlaps = self.overlaps.clone();
        conn.transaction::<_, JobError, _>(async |conn| {
            let got = diesel::sql_query("SELECT pg_try_advisory_xact_lock(hashtext($1)) AS got")
                .bind::<Text, _>(&ctx.id)
                .get_result::<Got>(conn)
                .await?
                .got;
            if !got {
                overlaps.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await
    }
}

async fn count(db: &Database, sql: &str) -> Result<i64, BoxError> {
    let mut conn = db.conn().await?;
    Ok(diesel::sql_query(sql).get_result::<N>(&mut conn).await?.n)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// HTTP latencies of the current minute, in fixed 50 µs buckets up to 5 s (one more for
/// slower ones): the same few hundred KiB all run, so the bench's own bookkeeping does not
/// show as RSS growth of the server it measures (a list of every latency grew with the
/// request rate).
struct Latencies(Vec<u64>);

impl Latencies {
    const BUCKET_US: u128 = 50;
    const BUCKETS: usize = 100_000;

    fn new() -> Self {
        Self(vec![0; Self::BUCKETS + 1])
    }

    fn record(&mut self, latency: Duration) {
        let bucket = (latency.as_micros() / Self::BUCKET_US).min(Self::BUCKETS as u128) as usize;
        self.0[bucket] += 1;
    }

    /// The 99th percentile (the upper edge of its bucket) in ms; the counts start over.
    fn take_p99_ms(&mut self) -> f64 {
        let total: u64 = self.0.iter().sum();
        let rank = total.saturating_sub(1) * 99 / 100;
        let mut seen = 0;
        let mut p99 = 0.0;
        for (bucket, count) in self.0.iter().enumerate() {
            seen += count;
            if *count > 0 && seen > rank {
                p99 = ((bucket as u128 + 1) * Self::BUCKET_US) as f64 / 1000.0;
                break;
            }
        }
        self.0.iter_mut().for_each(|c| *c = 0);
        p99
    }
}

/// The HTTP side: `GET /read` (a page of the newest rows, on a replica if any) and
/// `POST /write` (a row and a job), behind the API's middleware.
async fn serve(db: Database) -> Result<String, BoxError> {
    use poem::{get, handler, post, EndpointExt, Route, Server};

    #[handler]
    async fn read(db: poem::web::Data<&Database>) -> poem::Result<String> {
        // The newest rows, as a listing reads a page: a count of the whole table would cost
        // more every minute and slow every other figure with it.
        let n = count(
            &db,
            "SELECT count(*) AS n FROM (SELECT id FROM soak_rows ORDER BY id DESC LIMIT 50) page",
        )
        .await
        .map_err(|e| {
            poem::Error::from_string(e.to_string(), poem::http::StatusCode::SERVICE_UNAVAILABLE)
        })?;
        Ok(n.to_string())
    }

    #[handler]
    async fn write(db: poem::web::Data<&Database>) -> poem::Result<String> {
        let unavailable =
            |e: String| poem::Error::from_string(e, poem::http::StatusCode::SERVICE_UNAVAILABLE);
        let mut conn = db.write().await.map_err(|e| unavailable(e.to_string()))?;
        diesel::sql_query("INSERT INTO soak_rows DEFAULT VALUES")
            .execute(&mut conn)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        drop(conn);
        JobQueue::new(db.clone())
            .enqueue(
                "soak_exclusive",
                serde_json::json!({}),
                EnqueueOptions::default(),
            )
            .await
            .map_err(|e| unavailable(e.to_string()))
    }

    let app = deploystack_backend::api::harden_serving(
        Route::new()
            .at("/read", get(read))
            .at("/write", post(write))
            .data(db.clone()),
        db,
    );
    use poem::listener::{Acceptor, Listener, TcpListener};
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let port = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().map(|s| s.port()))
        .ok_or("no local port")?;
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    Ok(format!("http://127.0.0.1:{port}"))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let minutes = env_or("SOAK_MINUTES", 10).max(2);
    let clients = env_or("SOAK_CLIENTS", 16);
    let bench = common::migrated_database("soak", Vec::new()).await?;
    let target = bench.pg.superuser_connection("soak");
    let pool = PoolSettings::default();
    let connector = PgConnector::new(&target, &pool)?;
    let db = Database::new();
    db.install(LivePool::new(&connector, &pool));
    {
        let mut conn = db.conn().await?;
        diesel::sql_query("CREATE TABLE soak_rows (id bigserial PRIMARY KEY)")
            .execute(&mut conn)
            .await?;
    }
    let overlaps = Arc::new(AtomicU64::new(0));
    let registry = || {
        let mut registry = Registry::new();
        registry.register(Exclusive {
            db: db.clone(),
            overlaps: overlaps.clone(),
        });
        registry
    };
    let settings = JobSettings {
        concurrency: 16,
        lease: Duration::from_millis(3_000),
        stats_interval: None,
        schedules: false,
        ..JobSettings::default()
    };
    let base = serve(db.clone()).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let latencies = Arc::new(Mutex::new(Latencies::new()));
    let http_errors = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for i in 0..clients {
        let (stop, latencies, errors, base) = (
            stop.clone(),
            latencies.clone(),
            http_errors.clone(),
            base.clone(),
        );
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut position: Option<String> = None;
            let mut n = 0u64;
            while !stop.is_cancelled() {
                n += 1;
                let started = Instant::now();
                // One write in four; reads present the client's last position.
                let request = if (n + i) % 4 == 0 {
                    http.post(format!("{base}/write"))
                } else {
                    let mut get = http.get(format!("{base}/read"));
                    if let Some(p) = &position {
                        get = get.header(deploystack_backend::api::LSN_HEADER, p);
                    }
                    get
                };
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        if let Some(p) =
                            response.headers().get(deploystack_backend::api::LSN_HEADER)
                        {
                            position = p.to_str().ok().map(str::to_owned);
                        }
                        let _ = response.bytes().await;
                        if let Ok(mut l) = latencies.lock() {
                            l.record(started.elapsed());
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // The producer: a batch of 200 jobs every second.
    let producer = {
        let (stop, queue) = (stop.clone(), JobQueue::new(db.clone()));
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let jobs = (0..200)
                    .map(|_| NewJob {
                        job_type: "soak_exclusive".into(),
                        payload: serde_json::json!({}),
                    })
                    .collect();
                let _ = queue
                    .enqueue_batch("soak", None, jobs, EnqueueOptions::default())
                    .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    println!(
        "{:>6} {:>9} {:>11} {:>9} {:>11} {:>9}",
        "minute", "rss_mib", "connections", "jobs/s", "http_p99_ms", "http_err"
    );
    let mut workers = Workers::start(
        db.clone(),
        Some(connector.clone()),
        registry(),
        settings.clone(),
    );
    let mut first: Option<(f64, i64)> = None;
    let mut last = (0.0, 0);
    let mut completed_before = count(
        &db,
        "SELECT count(*) AS n FROM queue_jobs WHERE status = 'completed'",
    )
    .await?;
    for minute in 1..=minutes {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let completed = count(
            &db,
            "SELECT count(*) AS n FROM queue_jobs WHERE status = 'completed'",
        )
        .await?;
        let connections = count(
            &db,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'soak'",
        )
        .await?;
        let p99 = latencies.lock().map_or(0.0, |mut l| l.take_p99_ms());
        let rss = rss_mib();
        println!(
            "{minute:>6} {rss:>9.1} {connections:>11} {:>9.0} {p99:>11.2} {:>9}",
            (completed - completed_before) as f64 / 60.0,
            http_errors.swap(0, Ordering::Relaxed)
        );
        completed_before = completed;
        if minute == 1 {
            first = Some((rss, connections));
        }
        last = (rss, connections);
        // A rolling restart of the workers.
        workers.shutdown().await;
        workers = Workers::start(
            db.clone(),
            Some(connector.clone()),
            registry(),
            settings.clone(),
        );
    }
    stop.cancel();
    for task in load {
        let _ = task.await;
    }
    let _ = producer.await;
    // Drain what is left, then count what never completed.
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline
        && count(
            &db,
            "SELECT count(*) AS n FROM queue_jobs WHERE status <> 'completed'",
        )
        .await?
            > 0
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let lost = count(
        &db,
        "SELECT count(*) AS n FROM queue_jobs WHERE status <> 'completed'",
    )
    .await?;
    workers.shutdown().await;
    let (first_rss, first_conns) = first.unwrap_or(last);
    println!(
        "{}",
        serde_json::json!({
            "rss_growth_mib": ((last.0 - first_rss) * 10.0).round() / 10.0,
            "conn_growth": last.1 - first_conns,
            "lost_jobs": lost,
            "dup_concurrent": overlaps.load(Ordering::Relaxed),
        })
    );
    db.close();
    bench.pg.stop().await?;
    Ok(())
}
