//! Load benchmark (figures, not a test): starts PostgreSQL, the release server and, beside
//! it on the same PostgreSQL, the Node peer (Fastify 5 + node-postgres, `benches/fastify/`).
//! It loads four paths with wrk (2 threads), interleaved for several rounds:
//! - our `GET /api/db/status` (no database);
//! - our `GET /api/health/ready` (pool + `SELECT 1`);
//! - Fastify's `/hello`;
//! - Fastify's `/db` (`SELECT 1` through a `pg.Pool` of 10).
//!
//! For each path it prints the median requests/s and the median server CPU per request (the
//! server process's user and system time from `/proc/<pid>/stat`, divided by the requests).
//! It also prints `pgbench -S` at the load's client count and at our pool's size, the p99
//! latency, our RSS, and the ratios against Fastify.
//!
//! `cargo bench --bench http` needs `wrk` and `pgbench` (`apt-get install wrk
//! postgresql-contrib`), and Node.js with npm for the peer: its packages are installed once
//! into `target/bench-fastify` (`BENCH_FASTIFY=0` skips the peer). `BENCH_SECONDS` sets the
//! length of each run (default 8), `BENCH_CONNECTIONS` the concurrency (default 64),
//! `BENCH_ROUNDS` the rounds (default 3).

#[path = "http/measure.rs"]
mod measure;
#[path = "http/servers.rs"]
mod servers;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use deploystack_backend::embedded_pg::{Cluster, ClusterOptions};

use measure::{peak_rss_kib, pgbench, rss_kib, wrk, Load};
use servers::{free_port, set_up, start_fastify, start_server, stop};

type BoxError = Box<dyn std::error::Error>;

/// Our pool's size (`POSTGRES_POOL_MAX` default): the `pgbench` baseline of the database path.
const POOL_SIZE: u32 = 16;

/// A path under load and the process answering it.
struct Target {
    name: &'static str,
    url: String,
    pid: u32,
    runs: Vec<Load>,
}

impl Target {
    fn median(&self, field: impl Fn(&Load) -> f64) -> f64 {
        let mut values: Vec<f64> = self.runs.iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds: u32 = env_or("BENCH_SECONDS", 8);
    let connections: u32 = env_or("BENCH_CONNECTIONS", 64);
    let rounds: u32 = env_or("BENCH_ROUNDS", 3);
    for tool in ["wrk", "pgbench"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(
                format!("`{tool}` is required (apt-get install wrk postgresql-contrib)").into(),
            );
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("deploystack-bench-")
        .tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
    let mut options = ClusterOptions::new(dir.path().join("pg"));
    options.durable = false;
    options.settings = vec![("max_connections".into(), "300".into())];
    let cluster = Cluster::prepare(options)?;
    let pg = cluster.start().await?;

    let port = free_port()?;
    let server = start_server(&pg, dir.path(), port)?;
    let base = format!("http://127.0.0.1:{port}");
    set_up(&base).await?;
    let idle_rss = rss_kib(server.id())?;
    let peer = if std::env::var("BENCH_FASTIFY").as_deref() == Ok("0") {
        None
    } else {
        match start_fastify(&pg).await {
            Ok(peer) => Some(peer),
            Err(e) => {
                println!("Fastify peer skipped: {e}");
                None
            }
        }
    };

    let mut targets = vec![
        Target {
            name: "ours GET /api/db/status",
            url: format!("{base}/api/db/status"),
            pid: server.id(),
            runs: Vec::new(),
        },
        Target {
            name: "ours GET /api/health/ready",
            url: format!("{base}/api/health/ready"),
            pid: server.id(),
            runs: Vec::new(),
        },
    ];
    if let Some((child, fastify_port)) = &peer {
        for (name, path) in [("Fastify /hello", "hello"), ("Fastify /db (pg)", "db")] {
            targets.push(Target {
                name,
                url: format!("http://127.0.0.1:{fastify_port}/{path}"),
                pid: child.id(),
                runs: Vec::new(),
            });
        }
    }
    println!("warming up…");
    for target in &targets {
        wrk(&target.url, connections, 2, target.pid)?;
    }
    for round in 1..=rounds {
        println!("round {round}/{rounds}…");
        for target in &mut targets {
            let load = wrk(&target.url, connections, seconds, target.pid)?;
            target.runs.push(load);
        }
    }
    let tps_load = pgbench(&pg, connections, seconds)?;
    let tps_pool = pgbench(&pg, POOL_SIZE, seconds)?;
    let peak_rss = peak_rss_kib(server.id())?;
    let load_rss = targets
        .iter()
        .filter(|t| t.pid == server.id())
        .flat_map(|t| t.runs.iter().map(|l| l.rss_kib))
        .max()
        .unwrap_or(0);

    println!();
    println!(
        "our server: WORKER_THREADS={}",
        std::env::var("WORKER_THREADS").unwrap_or_else(|_| "unset (half the cores)".into())
    );
    println!(
        "{:<30} {:>10} {:>12} {:>9} (medians of {rounds} rounds, wrk -t2 -c{connections}, {seconds} s)",
        "path", "req/s", "CPU µs/req", "p99 ms"
    );
    for t in &targets {
        println!(
            "{:<30} {:>10.0} {:>12.1} {:>9.2}",
            t.name,
            t.median(|l| l.rps),
            t.median(|l| l.cpu_us),
            t.median(|l| l.p99_ms)
        );
    }
    println!(
        "{:<30} {:>10.0}",
        format!("pgbench -S -c {connections} (tps)"),
        tps_load
    );
    println!(
        "{:<30} {:>10.0}",
        format!("pgbench -S -c {POOL_SIZE} (tps)"),
        tps_pool
    );
    println!();
    println!(
        "server RSS: idle {:.1} MiB, max under load {:.1} MiB, process peak {:.1} MiB \
         (the peak includes scrypt's 16 MiB key derivation at start)",
        idle_rss as f64 / 1024.0,
        load_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    let status = &targets[0];
    let ready = &targets[1];
    let ready_cpu = ready.median(|l| l.cpu_us);
    let round_trip_cpu = ready_cpu - status.median(|l| l.cpu_us);
    println!(
        "our database round trip: {round_trip_cpu:.1} µs of CPU (ready − status); ready-rps / pgbench-tps (c={POOL_SIZE}): {:.2}",
        ready.median(|l| l.rps) / tps_pool
    );
    println!();
    println!(
        "goals: ready CPU ≤ 16 µs/req: {}",
        verdict(ready_cpu <= 16.0)
    );
    println!(
        "       database round trip ≤ 7 µs: {}",
        verdict(round_trip_cpu <= 7.0)
    );
    if let [_, _, hello, db] = targets.as_slice() {
        let ready_ratio = ready.median(|l| l.rps) / db.median(|l| l.rps);
        let status_ratio = status.median(|l| l.rps) / hello.median(|l| l.rps);
        println!(
            "       ready ≥ 1.5× Fastify+pg req/s: {:.2}× {} (CPU per request {:.2}× theirs)",
            ready_ratio,
            verdict(ready_ratio >= 1.5),
            ready_cpu / db.median(|l| l.cpu_us)
        );
        println!(
            "       status ≥ 1.5× Fastify hello req/s: {:.2}× {} (CPU per request {:.2}× theirs)",
            status_ratio,
            verdict(status_ratio >= 1.5),
            status.median(|l| l.cpu_us) / hello.median(|l| l.cpu_us)
        );
    }
    println!(
        "       RSS under load ≤ 20 MiB: {}",
        verdict(load_rss <= 20 * 1024)
    );

    if let Some((mut child, _)) = peer {
        let _ = child.kill();
        let _ = child.wait();
    }
    stop(server);
    pg.stop().await?;
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
