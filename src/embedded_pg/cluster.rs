//! Initializing, starting and stopping one cluster.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::process::{self, RunAs};
use super::{find_bin_dir, EmbeddedError};
use crate::config::{ExternalPostgres, TlsMode};

/// The cluster's superuser, which the backend logs in as.
pub const SUPERUSER: &str = "postgres";
/// How long a start may take before it counts as failed (crash recovery can be slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before the server is stopped immediately.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to lay out and run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Folder holding `data/`, the password file and the log.
    pub root: PathBuf,
    /// Where `initdb` and `postgres` are; found on the machine when `None`.
    pub bin_dir: Option<PathBuf>,
    /// TCP port on 127.0.0.1; a free one is picked at each start when `None`.
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
    /// reuses it afterwards. A half-finished earlier initdb is cleared and redone.
    pub fn prepare(options: ClusterOptions) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir(options.bin_dir.as_deref())?;
        let run_as = RunAs::for_current_process()?;
        let root = &options.root;
        fs::create_dir_all(root).map_err(EmbeddedError::io(format!(
            "cannot create {}",
            root.display()
        )))?;
        // The cluster's user must be able to traverse the root, but not read it.
        fs::set_permissions(root, fs::Permissions::from_mode(0o711)).map_err(EmbeddedError::io(
            format!("cannot chmod {}", root.display()),
        ))?;
        let data = root.join("data");
        let password_file = root.join("superuser.password");
        let password = if data.join("PG_VERSION").is_file() {
            let text = fs::read_to_string(&password_file).map_err(EmbeddedError::io(format!(
                "the cluster exists but its password file {} cannot be read",
                password_file.display()
            )))?;
            SecretString::from(text.trim().to_owned())
        } else {
            initdb(
                &bin_dir,
                root,
                &data,
                &password_file,
                run_as,
                options.durable,
            )?
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
        write_private(&path, contents, mode)?;
        if let Some(user) = self.run_as {
            user.chown(&path)?;
        }
        Ok(())
    }

    /// Starts the server and waits until it accepts logins.
    pub async fn start(&self) -> Result<RunningPostgres, EmbeddedError> {
        self.start_until(&CancellationToken::new()).await
    }

    /// [`Cluster::start`], unless `stop` is cancelled first (a signal during start-up): then
    /// the server is given a fast shutdown and awaited, so no crash recovery follows.
    pub async fn start_until(
        &self,
        stop: &CancellationToken,
    ) -> Result<RunningPostgres, EmbeddedError> {
        let port = match self.options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let log_path = self.options.root.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(EmbeddedError::io(format!(
                "cannot open {}",
                log_path.display()
            )))?;
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
        let running = RunningPostgres {
            pid,
            port,
            password: self.password.clone(),
            exited,
            log_path,
            stopped: false,
        };
        tokio::select! {
            ready = running.wait_ready() => ready?,
            () = stop.cancelled() => {
                running.stop().await?;
                return Err(EmbeddedError::Failed(
                    "stopped by a signal during start-up".into(),
                ));
            }
        }
        info!(port, pid, "embedded PostgreSQL is running");
        Ok(running)
    }
}

/// Credentials of a cluster under `root` that another process (a running server) started,
/// so a command-line tool can use it instead of trying to start it a second time.
pub fn attach_running(root: &Path, database: &str) -> Option<ExternalPostgres> {
    let pid_file = fs::read_to_string(root.join("data").join("postmaster.pid")).ok()?;
    let mut lines = pid_file.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    let port: u16 = lines.nth(2)?.trim().parse().ok()?;
    kill(Pid::from_raw(pid), None).ok()?;
    let password = fs::read_to_string(root.join("superuser.password")).ok()?;
    Some(ExternalPostgres {
        host: "127.0.0.1".into(),
        port,
        database: database.into(),
        user: SUPERUSER.into(),
        password: Some(SecretString::from(password.trim().to_owned())),
        tls: TlsMode::Disabled,
    })
}

/// A running server; stopped with [`RunningPostgres::stop`], or when this process dies.
pub struct RunningPostgres {
    pid: u32,
    port: u16,
    password: SecretString,
    exited: watch::Receiver<Option<ExitStatus>>,
    log_path: PathBuf,
    stopped: bool,
}

impl RunningPostgres {
    /// Port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Credentials for `database` on this server, in the form the rest of the backend uses.
    pub fn connection(&self, database: &str) -> ExternalPostgres {
        ExternalPostgres {
            host: "127.0.0.1".into(),
            port: self.port,
            database: database.into(),
            user: SUPERUSER.into(),
            password: Some(self.password.clone()),
            tls: TlsMode::Disabled,
        }
    }

    /// Fast shutdown (rolls back open transactions, then checkpoints), waiting for the exit.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        self.stopped = true;
        self.signal(Signal::SIGINT);
        if self.wait_exit(STOP_TIMEOUT).await.is_none() {
            warn!("embedded PostgreSQL did not stop in time; stopping it immediately");
            self.signal(Signal::SIGQUIT);
            self.wait_exit(STOP_TIMEOUT).await;
        }
        info!("embedded PostgreSQL stopped");
        Ok(())
    }

    /// Stops the server immediately without a checkpoint, as a crash would (for tests of
    /// what clients see when the database disappears).
    pub async fn kill(mut self) {
        self.stopped = true;
        self.signal(Signal::SIGQUIT);
        self.wait_exit(STOP_TIMEOUT).await;
    }

    fn signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let exited = self.exited.wait_for(Option::is_some);
        match tokio::time::timeout(limit, exited).await {
            Ok(Ok(status)) => *status,
            _ => None,
        }
    }

    async fn wait_ready(&self) -> Result<(), EmbeddedError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .password(self.password.expose_secret())
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(2))
            .ssl_mode(tokio_postgres::config::SslMode::Disable);
        let started = Instant::now();
        loop {
            if let Some(status) = *self.exited.borrow() {
                return Err(self.failure(&format!("postgres exited at start ({status})")));
            }
            if config.connect(tokio_postgres::NoTls).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                self.signal(Signal::SIGQUIT);
                return Err(self.failure("postgres did not accept connections in time"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn failure(&self, what: &str) -> EmbeddedError {
        let log = fs::read_to_string(&self.log_path).unwrap_or_default();
        EmbeddedError::Failed(format!(
            "{what}; end of {}:\n{}",
            self.log_path.display(),
            process::tail(&log, 1500)
        ))
    }
}

impl Drop for RunningPostgres {
    fn drop(&mut self) {
        if !self.stopped {
            self.signal(Signal::SIGINT);
        }
    }
}

/// Runs initdb with a new random superuser password, stored readable only by us.
fn initdb(
    bin_dir: &Path,
    root: &Path,
    data: &Path,
    password_file: &Path,
    run_as: Option<RunAs>,
    durable: bool,
) -> Result<SecretString, EmbeddedError> {
    // initdb works in a staging folder that becomes `data` only once the cluster and its
    // password file are complete: an interrupted first start leaves nothing half-made behind.
    let staging = root.join("data.initdb");
    for leftover in [data, staging.as_path()] {
        if leftover.exists() {
            warn!(dir = %leftover.display(), "removing an incomplete cluster left by an earlier attempt");
            fs::remove_dir_all(leftover).map_err(EmbeddedError::io(format!(
                "cannot remove {}",
                leftover.display()
            )))?;
        }
    }
    fs::create_dir(&staging).map_err(EmbeddedError::io(format!(
        "cannot create {}",
        staging.display()
    )))?;
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700)).map_err(EmbeddedError::io(
        format!("cannot chmod {}", staging.display()),
    ))?;
    let password = Alphanumeric.sample_string(&mut rand::rng(), 32);
    // initdb reads the password from a file its user can read; it is removed right after.
    let pwfile = root.join(".initdb.pw");
    write_private(&pwfile, password.as_bytes(), 0o600)?;
    if let Some(user) = run_as {
        user.chown(&staging)?;
        user.chown(&pwfile)?;
    }
    let mut cmd = process::command(&bin_dir.join("initdb"), run_as);
    cmd.arg("-D")
        .arg(&staging)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8"])
        .args(["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()));
    if !durable {
        cmd.arg("--no-sync");
    }
    let result = process::run_to_completion(cmd, "initdb");
    let _ = fs::remove_file(&pwfile);
    result.map_err(|e| match run_as {
        Some(_) => EmbeddedError::Failed(format!(
            "{e}\n(hint: the \"postgres\" system user must be able to reach {}; set PERSISTENT_DATA_DIR to a folder it can traverse)",
            staging.display()
        )),
        None => e,
    })?;
    write_private(password_file, password.as_bytes(), 0o600)?;
    fs::rename(&staging, data).map_err(EmbeddedError::io(format!(
        "cannot move {} into place",
        staging.display()
    )))?;
    info!(dir = %data.display(), "initialized the embedded PostgreSQL cluster");
    Ok(SecretString::from(password))
}

/// Writes a file that only its owner can read, replacing any earlier one.
fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<(), EmbeddedError> {
    let context = || format!("cannot write {}", path.display());
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .map_err(EmbeddedError::io(context()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(EmbeddedError::io(context()))
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, EmbeddedError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(EmbeddedError::io("cannot find a free port"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(EmbeddedError::io("cannot find a free port"))
}
