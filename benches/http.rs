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

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use deploystack_backend::embedded_pg::{Cluster, ClusterOptions, RunningPostgres};
use secrecy::ExposeSecret;

type BoxError = Box<dyn std::error::Error>;

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;
/// Our pool's size (`POSTGRES_POOL_MAX` default): the `pgbench` baseline of the database path.
const POOL_SIZE: u32 = 16;

/// One wrk run.
struct Load {
    rps: f64,
    p99_ms: f64,
    rss_kib: u64,
    /// Server CPU (user + system) per request, microseconds.
    cpu_us: f64,
}

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

/// Installs the peer's packages once (`target/bench-fastify`) and starts it on the embedded
/// cluster's database, with the owner's credentials; returns it with its port.
async fn start_fastify(pg: &RunningPostgres) -> Result<(std::process::Child, u16), BoxError> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fastify");
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-fastify");
    std::fs::create_dir_all(&work)?;
    for file in ["package.json", "server.js"] {
        std::fs::copy(source.join(file), work.join(file))?;
    }
    if !work.join("node_modules/fastify").is_dir() || !work.join("node_modules/pg").is_dir() {
        println!("installing Fastify and node-postgres with npm (once)…");
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&work))
        .map_err(|e| format!("npm install failed (Node.js and npm are needed): {e}"))?;
    }
    let c = pg.connection("bench");
    let password = c
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default();
    let port = free_port()?;
    let child = Command::new("node")
        .arg("server.js")
        .current_dir(&work)
        .env("PORT", port.to_string())
        .env("PGHOST", &c.host)
        .env("PGPORT", c.port.to_string())
        .env("PGUSER", &c.user)
        .env("PGPASSWORD", password)
        .env("PGDATABASE", &c.database)
        .stdout(Stdio::null())
        .spawn()?;
    wait_for(&format!("http://127.0.0.1:{port}/db")).await?;
    Ok((child, port))
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
    let ticks_before = cpu_ticks(pid)?;
    while !child_done(&child) {
        rss_kib = rss_kib.max(self::rss_kib(pid)?);
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output()?;
    let ticks = cpu_ticks(pid)? - ticks_before;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no request count in wrk output:\n{text}"))?;
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
        cpu_us: ticks as f64 / TICKS_PER_SECOND * 1e6 / requests.max(1.0),
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

/// User + system CPU time of `pid`, in ticks (fields 14 and 15 of `/proc/<pid>/stat`, after
/// the command name, which may hold spaces).
fn cpu_ticks(pid: u32) -> Result<u64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields
        .get(11)
        .and_then(|v| v.parse().ok())
        .ok_or("no utime")?;
    let stime: u64 = fields
        .get(12)
        .and_then(|v| v.parse().ok())
        .ok_or("no stime")?;
    Ok(utime + stime)
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
