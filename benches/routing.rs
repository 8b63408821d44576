//! What replica routing and metrics cost (figures, not a test). Two cores cannot show a
//! replica's added capacity, so this measures the price of the machinery, in one run with
//! interleaved rounds:
//! - in process, 32 tasks doing `SELECT 1` through: the primary pool (`Database::conn`); the
//!   same inside a unit of work, as every HTTP request and job runs (the routing's cost to a
//!   request that does not read); and the replica router (`Database::read`, served by a
//!   streaming replica on loopback). Printed: operations/s and this process's CPU per
//!   operation;
//! - through HTTP with wrk: `GET /api/db/status` of a server without metrics and of one with
//!   `METRICS_ADDR` (the middleware's cost), and `GET /metrics` itself under load.
//!
//! `cargo bench --bench routing` needs `wrk` (`apt-get install wrk`). `BENCH_SECONDS` sets the
//! length of each run (default 5), `BENCH_ROUNDS` the rounds (default 3).

#[path = "http/measure.rs"]
#[allow(dead_code)] // shared with other benchmarks and the tests
mod measure;
#[path = "../tests/common/replica.rs"]
#[allow(dead_code)] // shared with other benchmarks and the tests
mod replica;
#[path = "http/servers.rs"]
#[allow(dead_code)] // shared with other benchmarks and the tests
mod servers;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deploystack_backend::config::{PoolSettings, ReplicaHost, ReplicaSettings};
use deploystack_backend::db::replicas::{ReplicaSet, ReplicaState};
use deploystack_backend::db::{routing, Database, DbConn, DbError, LivePool, PgConnector};
use deploystack_backend::embedded_pg::{Cluster, ClusterOptions};
use diesel::sql_types::Integer;
use diesel::IntoSql;

use measure::{cpu_ticks, wrk, TICKS_PER_SECOND};
use servers::{free_port, set_up, start_server_with, stop, wait_for};

type BoxError = Box<dyn std::error::Error>;

/// Tasks issuing queries at once in process.
const TASKS: usize = 32;

#[derive(Clone, Copy)]
enum Path {
    Primary,
    PrimaryInUnitOfWork,
    ReplicaRouter,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Primary => "primary pool, Database::conn()",
            Path::PrimaryInUnitOfWork => "primary pool inside a unit of work",
            Path::ReplicaRouter => "replica router, Database::read()",
        }
    }

    async fn connection(self, db: &Database) -> Result<DbConn, DbError> {
        match self {
            Path::Primary | Path::PrimaryInUnitOfWork => db.conn().await,
            Path::ReplicaRouter => db.read().await,
        }
    }
}

/// `SELECT 1`s through `path` by [`TASKS`] tasks for `seconds`: (ops/s, CPU µs per op).
async fn run(db: &Database, path: Path, seconds: u64) -> Result<(f64, f64), BoxError> {
    use diesel_async::RunQueryDsl;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let pid = std::process::id();
    let ticks = cpu_ticks(pid)?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (db, stop, done) = (db.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                while !AtomicBool::load(&stop, Ordering::Relaxed) {
                    let once = async {
                        let mut conn = path.connection(&db).await?;
                        diesel::select(1_i32.into_sql::<Integer>())
                            .get_result::<i32>(&mut conn)
                            .await
                            .map_err(|e| DbError::Unavailable(e.to_string()))
                    };
                    let result = match path {
                        Path::PrimaryInUnitOfWork => routing::unit_of_work(once).await,
                        _ => once.await,
                    };
                    if result.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ops = AtomicU64::load(&done, Ordering::Relaxed) as f64;
    let cpu_s = (cpu_ticks(pid)? - ticks) as f64 / TICKS_PER_SECOND;
    Ok((ops / elapsed, cpu_s * 1e6 / ops.max(1.0)))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("`wrk` is required (apt-get install wrk)".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("deploystack-bench-")
        .tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
    let mut options = ClusterOptions::new(dir.path().join("pg"));
    options.durable = false;
    options.settings = vec![("max_connections".into(), "300".into())];
    let pg = Cluster::prepare(options)?.start().await?;

    // Two servers on the same database: one without metrics, one with a metrics listener.
    let plain_port = free_port()?;
    // Both share the database, so both need its encryption secret.
    let secret = (
        "DEPLOYSTACK_ENCRYPTION_SECRET",
        "routing-bench-secret-0123456789".to_owned(),
    );
    let plain = Running(Some(start_server_with(
        &pg,
        dir.path(),
        plain_port,
        std::slice::from_ref(&secret),
    )?));
    let base = format!("http://127.0.0.1:{plain_port}");
    set_up(&base).await?;
    let metered_dir = dir.path().join("metered");
    std::fs::create_dir_all(&metered_dir)?;
    std::fs::set_permissions(&metered_dir, std::fs::Permissions::from_mode(0o711))?;
    let (metered_port, metrics_port) = (free_port()?, free_port()?);
    let metered = Running(Some(start_server_with(
        &pg,
        &metered_dir,
        metered_port,
        &[
            secret.clone(),
            ("METRICS_ADDR", format!("127.0.0.1:{metrics_port}")),
        ],
    )?));
    let metered_base = format!("http://127.0.0.1:{metered_port}");
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    wait_for(&format!("{metered_base}/api/health")).await?;
    for _ in 0..100 {
        if reqwest::get(format!("{metered_base}/api/health/ready"))
            .await?
            .status()
            .is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The replica, after setup so it carries the migrated database.
    let replica =
        replica::StreamingReplica::start(&pg.superuser_connection("postgres"), dir.path()).await;
    let primary = pg.connection("bench");
    let pool = PoolSettings::default();
    let db = Database::new();
    db.install(LivePool::new(&PgConnector::new(&primary, &pool)?, &pool));
    let replicas = Arc::new(ReplicaSet::new(
        &primary,
        &pool,
        &ReplicaSettings {
            hosts: vec![ReplicaHost {
                host: "127.0.0.1".into(),
                port: replica.port,
            }],
            ..ReplicaSettings::default()
        },
    )?);
    db.install_replicas(replicas.clone());
    replicas.check_all().await;
    let state = db.replica_reports().first().map(|r| r.state);
    if state != Some(ReplicaState::Usable) {
        return Err(format!("the replica is not usable: {state:?}").into());
    }
    let checker = tokio::spawn(deploystack_backend::db::replicas::watch(replicas));

    let paths = [
        Path::Primary,
        Path::PrimaryInUnitOfWork,
        Path::ReplicaRouter,
    ];
    let mut in_process: Vec<Vec<(f64, f64)>> = vec![Vec::new(); paths.len()];
    let mut http: [Vec<(f64, f64)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 1..=rounds {
        println!("round {round}/{rounds}");
        for (i, path) in paths.iter().enumerate() {
            in_process[i].push(run(&db, *path, seconds).await?);
        }
        let loads = [
            (format!("{base}/api/db/status"), plain.id()),
            (format!("{metered_base}/api/db/status"), metered.id()),
            (metrics_url.clone(), metered.id()),
        ];
        for (i, (url, pid)) in loads.iter().enumerate() {
            let connections = if i == 2 { 8 } else { 64 };
            let load = wrk(url, connections, seconds as u32, *pid)?;
            http[i].push((load.rps, load.cpu_us));
        }
    }
    checker.abort();

    println!(
        "\n== in process, {TASKS} tasks, SELECT 1, medians of {rounds} rounds of {seconds} s =="
    );
    let mut figures = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let ops = median(in_process[i].iter().map(|r| r.0).collect());
        let cpu = median(in_process[i].iter().map(|r| r.1).collect());
        println!(
            "{:<40} {ops:>10.0} ops/s  {cpu:>6.1} µs CPU/op",
            path.name()
        );
        figures.push((ops, cpu));
    }
    println!(
        "unit of work vs plain primary: {:.3}× ops/s, {:.3}× CPU/op (the routing's cost to a request that does not read)",
        figures[1].0 / figures[0].0,
        figures[1].1 / figures[0].1
    );
    println!(
        "replica router vs primary pool: {:.3}× ops/s, {:.3}× CPU/op",
        figures[2].0 / figures[0].0,
        figures[2].1 / figures[0].1
    );
    println!("\n== HTTP, wrk -t2 (64 connections; /metrics 8), medians ==");
    let names = [
        "GET /api/db/status, metrics off",
        "GET /api/db/status, metrics on",
        "GET /metrics (METRICS_ADDR)",
    ];
    let mut rates = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let rps = median(http[i].iter().map(|r| r.0).collect());
        let cpu = median(http[i].iter().map(|r| r.1).collect());
        println!("{name:<40} {rps:>10.0} req/s  {cpu:>6.1} µs CPU/req");
        rates.push(rps);
    }
    println!(
        "status with metrics on vs off: {:.3}× req/s",
        rates[1] / rates[0]
    );

    drop(plain);
    drop(metered);
    drop(replica);
    pg.stop().await?;
    Ok(())
}

/// A server process stopped (SIGTERM, then waited for) however the benchmark ends.
struct Running(Option<std::process::Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            stop(child);
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
