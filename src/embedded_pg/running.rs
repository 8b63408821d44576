//! A started server (its credentials, readiness, orderly stop), and a server another process
//! of ours started on the same data folder.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::initdb::read_secret;
use super::owner::{self, OWNER, OWNER_PASSWORD_FILE};
use super::{port, process, EmbeddedError, SUPERUSER};
use crate::config::{ConnectionTarget, TlsMode};

/// How long a start may take before it counts as failed (crash recovery can be slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before the server is stopped immediately.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Maintenance database every cluster has.
const MAINTENANCE_DATABASE: &str = "postgres";
/// How much of the server's log an error about a failed start quotes.
const LOG_EXCERPT: usize = 3000;

/// A running server; stopped with [`RunningPostgres::stop`], or when this process dies.
pub struct RunningPostgres {
    pub(super) pid: u32,
    pub(super) port: u16,
    pub(super) superuser_password: SecretString,
    pub(super) owner_password: SecretString,
    pub(super) exited: watch::Receiver<Option<ExitStatus>>,
    pub(super) log_path: PathBuf,
    /// Length of the log before this start: errors quote only what this start wrote.
    pub(super) log_start: u64,
    pub(super) stopped: bool,
}

impl RunningPostgres {
    /// Port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The owner role's credentials for `database`: what the application (and the diesel
    /// CLI) use, in the form the rest of the backend takes.
    pub fn connection(&self, database: &str) -> ConnectionTarget {
        self.credentials(database, OWNER, &self.owner_password)
    }

    /// Superuser credentials, for what the owner may not do (tests reading server files,
    /// extensions that need a superuser); never for the application.
    pub fn superuser_connection(&self, database: &str) -> ConnectionTarget {
        self.credentials(database, SUPERUSER, &self.superuser_password)
    }

    fn credentials(&self, database: &str, user: &str, password: &SecretString) -> ConnectionTarget {
        ConnectionTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            database: database.into(),
            user: user.into(),
            password: Some(password.clone()),
            tls: TlsMode::Disabled,
        }
    }

    /// Gives `database`, when it exists, to the owner role, with the objects the superuser
    /// owns in it: clusters of older builds ran the application as the superuser.
    pub async fn hand_over_database(&self, database: &str) -> Result<(), EmbeddedError> {
        let admin = self.superuser_client(MAINTENANCE_DATABASE).await?;
        let row = admin
            .query_opt(
                "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
                &[&database],
            )
            .await
            .map_err(EmbeddedError::sql(
                "cannot look up the application database",
            ))?;
        drop(admin);
        let Some(row) = row else {
            return Ok(());
        };
        let current_owner: String = row.get(0);
        let mut client = self.superuser_client(database).await?;
        owner::hand_over_database(&mut client, database, &current_owner).await
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

    pub(super) fn signal(&self, signal: Signal) {
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

    /// A superuser session on `database`.
    pub(super) async fn superuser_client(&self, database: &str) -> Result<Client, EmbeddedError> {
        self.connect(SUPERUSER, &self.superuser_password, database)
            .await
            .map_err(EmbeddedError::sql(format!(
                "cannot connect to \"{database}\" as the superuser"
            )))
    }

    async fn connect(
        &self,
        user: &str,
        password: &SecretString,
        database: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password.expose_secret())
            .dbname(database)
            .connect_timeout(Duration::from_secs(2))
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .connect(tokio_postgres::NoTls)
            .await?;
        // Ends when the client is dropped.
        tokio::spawn(connection);
        Ok(client)
    }

    /// Waits until the superuser can log in, then returns a session on the maintenance database.
    pub(super) async fn wait_ready(&self) -> Result<Client, EmbeddedError> {
        let started = Instant::now();
        loop {
            if let Some(status) = *self.exited.borrow() {
                return Err(self.failure(&format!("postgres exited at start ({status})")));
            }
            let attempt = self
                .connect(SUPERUSER, &self.superuser_password, MAINTENANCE_DATABASE)
                .await;
            if let Ok(client) = attempt {
                return Ok(client);
            }
            if started.elapsed() > START_TIMEOUT {
                self.signal(Signal::SIGQUIT);
                return Err(self.failure("postgres did not accept connections in time"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An error quoting what the server logged during this start, from a line's beginning.
    pub(super) fn failure(&self, what: &str) -> EmbeddedError {
        let mut log = String::new();
        if let Ok(mut file) = fs::File::open(&self.log_path) {
            let _ = file.seek(SeekFrom::Start(self.log_start));
            let _ = file.read_to_string(&mut log);
        }
        EmbeddedError::Failed(format!(
            "{what}; the server logged ({}):\n{}",
            self.log_path.display(),
            process::tail(&log, LOG_EXCERPT)
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

/// The owner's credentials for `database` on the cluster under `root`, from the files its
/// first start wrote (the server need not run): for `database-url`.
pub fn stored_connection(root: &Path, database: &str) -> Result<ConnectionTarget, EmbeddedError> {
    let not_started = |file: &str| {
        EmbeddedError::Failed(format!(
            "{} does not exist: the embedded cluster under {} has not been started by this version yet; start the server once",
            root.join(file).display(),
            root.display()
        ))
    };
    let port = port::stored_port(root)?.ok_or_else(|| not_started(port::PORT_FILE))?;
    let password = read_secret(&root.join(OWNER_PASSWORD_FILE))?
        .ok_or_else(|| not_started(OWNER_PASSWORD_FILE))?;
    Ok(ConnectionTarget {
        host: "127.0.0.1".into(),
        port,
        database: database.into(),
        user: OWNER.into(),
        password: Some(password),
        tls: TlsMode::Disabled,
    })
}

/// The superuser's credentials of the cluster under `root`, read from its files: what a
/// command-line tool uses to create plugin roles (the owner role may not), never to run the
/// application.
pub fn stored_superuser(root: &Path, database: &str) -> Option<ConnectionTarget> {
    let port = port::stored_port(root).ok()??;
    let password = read_secret(&root.join("superuser.password")).ok()??;
    Some(ConnectionTarget {
        host: "127.0.0.1".into(),
        port,
        database: database.into(),
        user: SUPERUSER.into(),
        password: Some(password),
        tls: TlsMode::Disabled,
    })
}

/// The owner's credentials of a cluster under `root` that another process (a running server)
/// started, so a command-line tool can use it instead of trying to start it a second time.
pub fn attach_running(root: &Path, database: &str) -> Option<ConnectionTarget> {
    let lock = PidFile::read(&root.join("data"))?;
    if !lock.is_alive() {
        return None;
    }
    let password = read_secret(&root.join(OWNER_PASSWORD_FILE)).ok()??;
    Some(ConnectionTarget {
        host: "127.0.0.1".into(),
        port: lock.port?,
        database: database.into(),
        user: OWNER.into(),
        password: Some(password),
        tls: TlsMode::Disabled,
    })
}

/// Refuses to start a second server on `data`, naming the process that holds it, instead of
/// letting PostgreSQL fail with a lock-file message in its log.
pub(super) fn ensure_not_running(data: &Path) -> Result<(), EmbeddedError> {
    let Some(lock) = PidFile::read(data) else {
        return Ok(());
    };
    if !lock.is_alive() {
        return Ok(());
    }
    let pid = lock.pid;
    let program = fs::read_to_string(format!("/proc/{pid}/comm")).ok();
    if let Some(program) = program.as_deref().map(str::trim) {
        if program != "postgres" {
            return Err(EmbeddedError::Failed(format!(
                "{} names pid {pid}, which is running but is {program:?}, not PostgreSQL; PostgreSQL does not start while it runs. If no server uses this data folder, delete that file",
                data.join("postmaster.pid").display()
            )));
        }
    }
    let holder = match parent_pid(pid) {
        Some(parent) if parent > 1 => format!("pid {parent}, whose PostgreSQL has pid {pid}"),
        _ => format!("PostgreSQL pid {pid}"),
    };
    Err(EmbeddedError::AlreadyRunning {
        data: data.to_path_buf(),
        holder,
    })
}

/// What `postmaster.pid` says: the server's pid and port.
struct PidFile {
    pid: i32,
    port: Option<u16>,
}

impl PidFile {
    fn read(data: &Path) -> Option<Self> {
        let text = fs::read_to_string(data.join("postmaster.pid")).ok()?;
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let port = lines.nth(2).and_then(|line| line.trim().parse().ok());
        Some(Self { pid, port })
    }

    /// Whether the pid is a live process other than ourselves (after a container restart a
    /// stale file may name our own pid; PostgreSQL ignores that case too).
    fn is_alive(&self) -> bool {
        if u32::try_from(self.pid).ok() == Some(std::process::id()) || self.pid <= 0 {
            return false;
        }
        matches!(
            kill(Pid::from_raw(self.pid), None),
            Ok(()) | Err(Errno::EPERM)
        )
    }
}

/// The parent of `pid` (the backend that started a postmaster), from `/proc/<pid>/stat`.
fn parent_pid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}
