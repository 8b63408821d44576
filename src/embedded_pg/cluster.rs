//! Preparing (initdb on first use) and starting one cluster.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::initdb::{self, read_secret, DataFolder};
use super::process::{self, RunAs};
use super::running::{ensure_not_running, RunningPostgres};
use super::{bin_dir_for_cluster, owner, port, EmbeddedError};

/// How to lay out and run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Folder holding `data/`, the password files, the port file and the log.
    pub root: PathBuf,
    /// Where `initdb` and `postgres` are; found on the machine when `None`.
    pub bin_dir: Option<PathBuf>,
    /// TCP port on 127.0.0.1; when `None`, the one stored under `root` (chosen at the first
    /// start), so URLs stay valid across restarts.
    pub port: Option<u16>,
    /// `false` trades crash safety for speed (tests): no fsync at all.
    pub durable: bool,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
}

impl ClusterOptions {
    /// Durable defaults for a cluster under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            bin_dir: None,
            port: None,
            durable: true,
            settings: Vec::new(),
        }
    }
}

/// An initialized cluster that is not running yet.
#[derive(Debug)]
pub struct Cluster {
    options: ClusterOptions,
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
    password: SecretString,
}

impl Cluster {
    /// Creates the cluster on first use (initdb with a generated superuser password) and
    /// reuses it afterwards, with the binaries of its own major version. Only our own staging
    /// folder is ever removed: an unknown data folder or a version mismatch stops the start.
    pub fn prepare(options: ClusterOptions) -> Result<Self, EmbeddedError> {
        let root = &options.root;
        let data = root.join("data");
        let state = initdb::inspect(&data)?;
        let bin_dir = bin_dir_for_cluster(options.bin_dir.as_deref(), &data)?;
        let run_as = RunAs::for_current_process()?;
        fs::create_dir_all(root).map_err(EmbeddedError::io(format!(
            "cannot create {}",
            root.display()
        )))?;
        // The cluster's user must be able to traverse the root, but not read it.
        fs::set_permissions(root, fs::Permissions::from_mode(0o711)).map_err(EmbeddedError::io(
            format!("cannot chmod {}", root.display()),
        ))?;
        let password_file = root.join("superuser.password");
        let password = match state {
            DataFolder::Cluster => read_secret(&password_file)?.ok_or_else(|| {
                EmbeddedError::Failed(format!(
                    "the cluster exists but its password file {} is missing",
                    password_file.display()
                ))
            })?,
            DataFolder::Absent => initdb::initdb(
                &bin_dir,
                root,
                &data,
                &password_file,
                run_as,
                options.durable,
            )?,
        };
        Ok(Self {
            options,
            bin_dir,
            run_as,
            password,
        })
    }

    /// The cluster's data folder (`postgresql.conf`, certificates).
    pub fn data_dir(&self) -> PathBuf {
        self.options.root.join("data")
    }

    /// Writes a file into the data folder, owned by the cluster's user (e.g. a TLS key).
    pub fn install_file(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), EmbeddedError> {
        let path = self.data_dir().join(name);
        initdb::write_private(&path, contents, mode)?;
        if let Some(user) = self.run_as {
            user.chown(&path)?;
        }
        Ok(())
    }

    /// Starts the server, waits until it accepts logins and makes sure the owner role exists
    /// with the stored password. Refuses clearly when another backend already runs on the
    /// data folder or when the port is taken.
    pub async fn start(&self) -> Result<RunningPostgres, EmbeddedError> {
        self.start_until(&CancellationToken::new()).await
    }

    /// [`Cluster::start`], unless `stop` is cancelled first (a signal during start-up): then
    /// the server is given a fast shutdown and awaited, so no crash recovery follows.
    pub async fn start_until(
        &self,
        stop: &CancellationToken,
    ) -> Result<RunningPostgres, EmbeddedError> {
        let root = &self.options.root;
        ensure_not_running(&self.data_dir())?;
        let port = match self.options.port {
            Some(port) => port,
            None => port::stable_port(root)?,
        };
        port::ensure_free(port, root.join(port::PORT_FILE))?;
        let log_path = root.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(EmbeddedError::io(format!(
                "cannot open {}",
                log_path.display()
            )))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log
            .try_clone()
            .map_err(EmbeddedError::io("cannot duplicate the log handle"))?;
        let mut cmd = process::command(&self.bin_dir.join("postgres"), self.run_as);
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="]);
        if !self.options.durable {
            cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off"]);
        }
        for (name, value) in &self.options.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.stdout(Stdio::from(log)).stderr(Stdio::from(log_err));
        let (pid, exited) = process::spawn_supervised(cmd)?;
        let mut running = RunningPostgres {
            pid,
            port,
            superuser_password: self.password.clone(),
            owner_password: SecretString::from(String::new()),
            exited,
            log_path,
            log_start,
            stopped: false,
        };
        let admin = tokio::select! {
            ready = running.wait_ready() => ready?,
            () = stop.cancelled() => {
                running.stop().await?;
                return Err(EmbeddedError::Failed(
                    "stopped by a signal during start-up".into(),
                ));
            }
        };
        running.owner_password = owner::ensure_owner_role(&admin, root).await?;
        owner::confine_connect(&admin).await?;
        info!(port, pid, "embedded PostgreSQL is running");
        Ok(running)
    }
}
