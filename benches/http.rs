//! Load benchmark (figures, not a test): starts PostgreSQL and the release server, loads
//! `GET /api/db/status` and `GET /api/health/ready` with wrk at 64 connections, runs
//! `pgbench -S` at the same client count against the same server as the baseline, and
//! prints requests/s, p99 latency, server RSS and the ratio ready-rps / pgbench-tps.
//!
//! `cargo bench --bench http` (needs `wrk`: `apt-get install wrk`). `BENCH_SECONDS` sets the
//! length of each run (default 10), `BENCH_CONNECTIONS` the concurrency (default 64).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use deploystack_backend::embedded_pg::{Cluster, ClusterOptions, RunningPostgres};
use secrecy::ExposeSecret;

type BoxError = Box<dyn std::error::Error>;

/// One wrk run.
struct Load {
    rps: f64,
    p99_ms: f64,
    rss_kib: u64,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds: u32 = env_or("BENCH_SECONDS", 10);
    let connections: u32 = env_or("BENCH_CONNECTIONS", 64);
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
    wait_for(&format!("{base}/api/health")).await?;
    let setup = reqwest::Client::new()
        .post(format!("{base}/api/db/setup"))
        .json(&serde_json::json!({"type": "postgresql"}))
        .send()
        .await?;
    if !setup.status().is_success() {
        return Err(format!("setup failed: {}", setup.text().await?).into());
    }
    let idle_rss = rss_kib(server.id())?;

    println!("warming up…");
    wrk(
        &format!("{base}/api/health/ready"),
        connections,
        2,
        server.id(),
    )?;
    let status = wrk(
        &format!("{base}/api/db/status"),
        connections,
        seconds,
        server.id(),
    )?;
    let ready = wrk(
        &format!("{base}/api/health/ready"),
        connections,
        seconds,
        server.id(),
    )?;
    let tps = pgbench(&pg, connections, seconds)?;
    let peak_rss = peak_rss_kib(server.id())?;
    let load_rss = status.rss_kib.max(ready.rss_kib);

    println!();
    println!(
        "{:<28} {:>12} {:>10} {:>10}",
        "load (wrk, c=".to_owned() + &connections.to_string() + ")",
        "req/s",
        "p99 ms",
        "RSS MiB"
    );
    for (name, load) in [
        ("GET /api/db/status", &status),
        ("GET /api/health/ready", &ready),
    ] {
        println!(
            "{name:<28} {:>12.0} {:>10.2} {:>10.1}",
            load.rps,
            load.p99_ms,
            load.rss_kib as f64 / 1024.0
        );
    }
    println!(
        "{:<28} {:>12.0}",
        format!("pgbench -S -c {connections} (tps)"),
        tps
    );
    println!();
    println!(
        "server RSS: idle {:.1} MiB, max under load {:.1} MiB, process peak {:.1} MiB \
         (the peak includes scrypt's 16 MiB key derivation at start)",
        idle_rss as f64 / 1024.0,
        load_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!("ratio ready-rps / pgbench-tps: {:.2}", ready.rps / tps);
    println!();
    println!(
        "targets: status ≥ 80000 req/s: {}",
        verdict(status.rps >= 80_000.0)
    );
    println!(
        "         ready ≥ 40000 req/s: {}",
        verdict(ready.rps >= 40_000.0)
    );
    println!(
        "         ready/pgbench ≥ 0.8: {}",
        verdict(ready.rps / tps >= 0.8)
    );
    println!(
        "         RSS under load ≤ 20 MiB: {}",
        verdict(load_rss <= 20 * 1024)
    );

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

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn start_server(
    pg: &RunningPostgres,
    dir: &std::path::Path,
    port: u16,
) -> Result<std::process::Child, BoxError> {
    let c = pg.connection("bench");
    let password = c
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default();
    Ok(Command::new(env!("CARGO_BIN_EXE_deploystack-backend"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("PORT", port.to_string())
        .env("PERSISTENT_DATA_DIR", dir.join("data"))
        .env("POSTGRES_HOST", &c.host)
        .env("POSTGRES_PORT", c.port.to_string())
        .env("POSTGRES_DATABASE", &c.database)
        .env("POSTGRES_USER", &c.user)
        .env("POSTGRES_PASSWORD", password)
        .envs(
            std::env::vars()
                .filter(|(k, _)| k.starts_with("POSTGRES_POOL_") || k == "TOKIO_WORKER_THREADS"),
        )
        .stdout(Stdio::null())
        .spawn()?)
}

fn stop(mut server: std::process::Child) {
    if let Ok(pid) = i32::try_from(server.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = server.wait();
}

async fn wait_for(url: &str) -> Result<(), BoxError> {
    for _ in 0..200 {
        if reqwest::get(url).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{url} never answered").into())
}

/// Runs wrk (2 threads) and reads requests/s and the 99th percentile from its report.
fn wrk(url: &str, connections: u32, seconds: u32, pid: u32) -> Result<Load, BoxError> {
    let child = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            url,
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    // The server's RSS, sampled every 100 ms while the load runs; the largest sample counts.
    let mut rss_kib = 0;
    while !child_done(&child) {
        rss_kib = rss_kib.max(self::rss_kib(pid)?);
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let non_2xx = field(&text, "Non-2xx or 3xx responses:").unwrap_or(0.0);
    if non_2xx > 0.0 {
        return Err(format!("{url}: {non_2xx} error responses\n{text}").into());
    }
    let rps = field(&text, "Requests/sec:")
        .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| duration_ms(v.trim()))
        .ok_or("no 99% line in wrk output")?;
    Ok(Load {
        rps,
        p99_ms: p99,
        rss_kib,
    })
}

/// `pgbench -S` TPS against a freshly initialized scale-1 database on the same server.
fn pgbench(pg: &RunningPostgres, clients: u32, seconds: u32) -> Result<f64, BoxError> {
    let c = pg.connection("pgbench");
    let password = c
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default();
    let base = |cmd: &mut Command| {
        cmd.env("PGPASSWORD", &password)
            .env("PGSSLMODE", "disable")
            .args(["-h", &c.host, "-p", &c.port.to_string(), "-U", &c.user]);
    };
    let mut create = Command::new("psql");
    base(&mut create);
    create.args([
        "-d",
        "postgres",
        "-qc",
        "DROP DATABASE IF EXISTS pgbench",
        "-c",
        "CREATE DATABASE pgbench",
    ]);
    run(&mut create)?;
    let mut init = Command::new("pgbench");
    base(&mut init);
    init.args(["-i", "-q", "-s", "1", "pgbench"]);
    run(&mut init)?;
    let mut load = Command::new("pgbench");
    base(&mut load);
    load.args([
        "-S",
        "-c",
        &clients.to_string(),
        "-j",
        "2",
        "-T",
        &seconds.to_string(),
        "pgbench",
    ]);
    let text = run(&mut load)?;
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no tps in pgbench output:\n{text}").into())
}

fn run(cmd: &mut Command) -> Result<String, BoxError> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn field(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
}

/// wrk prints `1.23ms`, `456.00us` or `1.02s`.
fn duration_ms(v: &str) -> f64 {
    let (number, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

/// Whether `child` has exited (without reaping it).
fn child_done(child: &std::process::Child) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
        .map(|stat| stat.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

fn rss_kib(pid: u32) -> Result<u64, BoxError> {
    status_field(pid, "VmRSS:")
}

fn peak_rss_kib(pid: u32) -> Result<u64, BoxError> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, name: &str) -> Result<u64, BoxError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {name} for pid {pid}").into())
}
