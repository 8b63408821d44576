//! The backend as a separate process (the real binary), for multi-process and embedded tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::process::{Child, Command};

use super::pg::TestDb;

/// A running `deploystack-backend` process.
pub struct BackendProcess {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Where its stderr (the log) goes.
    pub log: PathBuf,
    child: Child,
}

/// The binary with a clean environment: only `vars` (plus PATH), so no `POSTGRES_*`
/// variable of the developer's shell leaks in.
pub fn command(vars: &[(&str, String)], log: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deploystack-backend"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .kill_on_drop(true);
    for (name, value) in vars {
        cmd.env(name, value);
    }
    cmd
}

impl BackendProcess {
    /// Starts `serve` on a free port and waits until `/api/health` answers.
    pub async fn start(vars: &[(&str, String)], log: &Path) -> Self {
        let port = super::free_port();
        let mut all = vars.to_vec();
        all.push(("PORT", port.to_string()));
        let child = command(&all, log).spawn().expect("spawn backend");
        let process = Self {
            url: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
            child,
        };
        let client = reqwest::Client::new();
        let url = format!("{}/api/health", process.url);
        super::wait_until("the backend to listen", Duration::from_secs(60), || async {
            client.get(&url).send().await.is_ok()
        })
        .await;
        process
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("backend exits after SIGTERM")
            .expect("wait")
    }

    /// The log written so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Environment that points the binary at `db`, keeping its files in `data_dir`.
pub fn external_env(db: &TestDb, data_dir: &Path) -> Vec<(&'static str, String)> {
    let c = &db.connection;
    let password = c.password.as_ref().map(|p| p.expose_secret().to_owned());
    vec![
        ("POSTGRES_HOST", c.host.clone()),
        ("POSTGRES_PORT", c.port.to_string()),
        ("POSTGRES_DATABASE", c.database.clone()),
        ("POSTGRES_USER", c.user.clone()),
        ("POSTGRES_PASSWORD", password.unwrap_or_default()),
        ("PERSISTENT_DATA_DIR", data_dir.display().to_string()),
    ]
}
