//! Job worker processes (the `job_worker` example, which `cargo test` builds) for the tests
//! that kill and restart workers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use deploystack_backend::config::JobSettings;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::pg::TestDb;

/// The tables the example's job types write their runs (and overlaps) into.
pub const RUNS_TABLES: &str =
    "CREATE TABLE job_runs (job_id text NOT NULL, attempt int NOT NULL, worker text NOT NULL); \
     CREATE TABLE job_overlaps (job_id text NOT NULL, attempt int NOT NULL, worker text NOT NULL)";

/// Worker settings for in-process runtimes in tests: short poll, lease and retry delays (the
/// worker processes of [`spawn_worker`] get the same poll and lease).
pub fn fast(concurrency: u32) -> JobSettings {
    JobSettings {
        concurrency,
        poll_interval: Duration::from_millis(200),
        lease: Duration::from_millis(1_500),
        shutdown_timeout: Duration::from_secs(5),
        retry_base: Duration::from_millis(20),
        timeout: None,
        stats_interval: None,
        schedules: false,
    }
}

fn worker_binary() -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/examples/job_worker
    let exe = std::env::current_exe().expect("test binary");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("job_worker"))
        .expect("target folder")
}

/// Starts a worker process named `name` on `db` (8 jobs at once, 1.5 s leases), logging to
/// `log`; returns once it said it is ready.
pub async fn spawn_worker(db: &TestDb, name: &str, log: &Path) -> Child {
    let mut cmd = Command::new(worker_binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("WORKER_NAME", name)
        .env("JOB_CONCURRENCY", "8")
        .env("JOB_LEASE_MS", "1500")
        .env("JOB_POLL_INTERVAL_MS", "200")
        .env("POSTGRES_CONNECT_TIMEOUT_MS", "2000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log"))
        .kill_on_drop(true);
    for (key, value) in super::process::external_env(db, log.parent().expect("dir")) {
        cmd.env(key, value);
    }
    let mut child = cmd
        .spawn()
        .expect("spawn job_worker (built by cargo test as an example)");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("worker ready in time")
        .expect("read");
    assert_eq!(
        ready.as_deref(),
        Some("ready"),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    child
}

/// SIGTERM, and the exit status once the worker stopped.
pub async fn terminate(mut child: Child) -> std::process::ExitStatus {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("worker exits after SIGTERM")
        .expect("wait")
}
