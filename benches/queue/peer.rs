//! The peer queue, measured in the same run on the same server: graphile-worker (npm,
//! installed once into `target/bench-graphile`) on a database of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use deploystack_backend::config::ConnectionTarget;
use secrecy::ExposeSecret;

use crate::common::BoxError;

/// The peer's figures, as its script prints them.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PeerFigures {
    pub drain_jobs_per_s: f64,
    pub idle_p50_ms: f64,
    pub idle_p99_ms: f64,
}

/// Runs graphile-worker's drain and idle latency on `database` (which must exist) of the
/// server `target` names, with `drain` jobs and `idle` single jobs, as our runtime ran them.
pub(crate) fn graphile(
    target: &ConnectionTarget,
    database: &str,
    drain: usize,
    idle: usize,
) -> Result<PeerFigures, BoxError> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/graphile");
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-graphile");
    std::fs::create_dir_all(&work)?;
    for file in ["package.json", "drain.js"] {
        std::fs::copy(source.join(file), work.join(file))?;
    }
    if !work.join("node_modules/graphile-worker").is_dir() {
        println!("installing graphile-worker with npm (once)…");
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&work)
            .output()
            .map_err(|e| format!("npm install failed (Node.js and npm are needed): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm install failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    let password = target
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default();
    let out = Command::new("node")
        .arg("drain.js")
        .current_dir(&work)
        .env("PGHOST", &target.host)
        .env("PGPORT", target.port.to_string())
        .env("PGUSER", &target.user)
        .env("PGPASSWORD", password)
        .env("PGDATABASE", database)
        .env("DRAIN", drain.to_string())
        .env("IDLE", idle.to_string())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "graphile-worker's run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .ok_or("graphile-worker printed nothing")?;
    Ok(serde_json::from_str(last)?)
}
