//! Measuring a process under load: wrk's figures with the server's CPU per request (from
//! `/proc/<pid>/stat`) and RSS, and `pgbench -S` as the database's own baseline.

use std::process::{Command, Stdio};
use std::time::Duration;

use deploystack_backend::embedded_pg::RunningPostgres;

use crate::servers::password;
use crate::BoxError;

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second on Linux.
pub(crate) const TICKS_PER_SECOND: f64 = 100.0;

/// One wrk run.
pub(crate) struct Load {
    pub(crate) rps: f64,
    pub(crate) p99_ms: f64,
    pub(crate) rss_kib: u64,
    /// Server CPU (user + system) per request, microseconds.
    pub(crate) cpu_us: f64,
}

/// Runs wrk (2 threads) and reads requests/s and the 99th percentile from its report.
pub(crate) fn wrk(url: &str, connections: u32, seconds: u32, pid: u32) -> Result<Load, BoxError> {
    wrk_with(url, &[], connections, seconds, pid)
}

/// [`wrk`] sending `headers` (`Name: value`) with every request.
pub(crate) fn wrk_with(
    url: &str,
    headers: &[String],
    connections: u32,
    seconds: u32,
    pid: u32,
) -> Result<Load, BoxError> {
    let child = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .args(headers.iter().flat_map(|h| ["-H", h.as_str()]))
        .arg(url)
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
pub(crate) fn pgbench(pg: &RunningPostgres, clients: u32, seconds: u32) -> Result<f64, BoxError> {
    let c = pg.connection("pgbench");
    let password = password(&c);
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

pub(crate) fn run(cmd: &mut Command) -> Result<String, BoxError> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn field(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
}

/// wrk prints `1.23ms`, `456.00us` or `1.02s`.
pub(crate) fn duration_ms(v: &str) -> f64 {
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
pub(crate) fn child_done(child: &std::process::Child) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
        .map(|stat| stat.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

/// User + system CPU time of `pid`, in ticks (fields 14 and 15 of `/proc/<pid>/stat`, after
/// the command name, which may hold spaces).
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64, BoxError> {
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

pub(crate) fn rss_kib(pid: u32) -> Result<u64, BoxError> {
    status_field(pid, "VmRSS:")
}

pub(crate) fn peak_rss_kib(pid: u32) -> Result<u64, BoxError> {
    status_field(pid, "VmHWM:")
}

pub(crate) fn status_field(pid: u32, name: &str) -> Result<u64, BoxError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {name} for pid {pid}").into())
}
