//! The processes under load: our release server and the Node peer, on the bench's cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use deploystack_backend::config::ConnectionTarget;
use deploystack_backend::embedded_pg::RunningPostgres;
use secrecy::ExposeSecret;

use crate::measure::run;
use crate::BoxError;

/// The password of `c`, empty when it has none.
pub(crate) fn password(c: &ConnectionTarget) -> String {
    c.password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default()
}

/// Installs the peer's packages once (`target/bench-fastify`) and starts it on the embedded
/// cluster's database, with the owner's credentials; returns it with its port.
pub(crate) async fn start_fastify(
    pg: &RunningPostgres,
) -> Result<(std::process::Child, u16), BoxError> {
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
    let password = password(&c);
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

pub(crate) fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

pub(crate) fn start_server(
    pg: &RunningPostgres,
    dir: &std::path::Path,
    port: u16,
) -> Result<std::process::Child, BoxError> {
    start_server_with(pg, dir, port, &[])
}

/// [`start_server`] with `extra` environment variables.
pub(crate) fn start_server_with(
    pg: &RunningPostgres,
    dir: &std::path::Path,
    port: u16,
    extra: &[(&str, String)],
) -> Result<std::process::Child, BoxError> {
    let c = pg.connection("bench");
    let password = password(&c);
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
                .filter(|(k, _)| k.starts_with("POSTGRES_POOL_") || k == "WORKER_THREADS"),
        )
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()?)
}

pub(crate) fn stop(mut server: std::process::Child) {
    if let Ok(pid) = i32::try_from(server.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = server.wait();
}

/// Waits for the server at `base` to answer, then performs its setup.
/// Sets the database up; the setup grant cookie (`setup_grant=…`), which the first
/// administrator's sign-up needs.
pub(crate) async fn set_up(base: &str) -> Result<Option<String>, BoxError> {
    wait_for(&format!("{base}/api/health")).await?;
    let setup = reqwest::Client::new()
        .post(format!("{base}/api/db/setup"))
        .json(&serde_json::json!({"type": "postgresql"}))
        .send()
        .await?;
    if !setup.status().is_success() {
        return Err(format!("setup failed: {}", setup.text().await?).into());
    }
    Ok(setup
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned))
}

pub(crate) async fn wait_for(url: &str) -> Result<(), BoxError> {
    for _ in 0..200 {
        if reqwest::get(url).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{url} never answered").into())
}
