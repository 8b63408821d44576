//! The embedded default: a PostgreSQL cluster this process initializes, starts on loopback
//! and stops, built from the machine's own server binaries, so a first `cargo run` works
//! with no database to install or configure.
//!
//! Layout under its root folder (`PERSISTENT_DATA_DIR/postgres`): `data/` (the cluster),
//! `superuser.password` and `owner.password` (generated, mode 0600), `port` (chosen at the
//! first start and kept, so a `DATABASE_URL` stays valid) and `postgres.log`.
//! The application logs in as the owner role ([`OWNER`]), which owns the application
//! database but is no superuser; the superuser is only used to manage that role.
//! PostgreSQL refuses to run as root, so a root process runs the cluster as the `postgres`
//! system user, with none of our environment variables.

mod binaries;
mod cluster;
mod initdb;
mod owner;
mod port;
mod process;
mod running;

use std::path::PathBuf;

pub use binaries::{bin_dir_for_cluster, find_bin_dir, server_version};
pub use cluster::{Cluster, ClusterOptions};
pub(crate) use initdb::generate_password;
pub use owner::OWNER;
pub use running::{attach_running, stored_connection, stored_superuser, RunningPostgres};

/// The cluster's superuser: manages the owner role, never used by the application.
pub const SUPERUSER: &str = "postgres";

/// Why the embedded cluster could not be prepared or started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No server binaries on the machine.
    #[error("PostgreSQL server binaries not found ({0}). Either install PostgreSQL (Debian: apt-get install postgresql) or point the server at an existing one by setting POSTGRES_HOST, POSTGRES_USER and POSTGRES_PASSWORD")]
    BinariesMissing(String),
    /// The cluster was created by another major version than the binaries at hand.
    #[error("the cluster in {} was created by PostgreSQL {cluster}, but the server binaries found ({}) are PostgreSQL {binaries}. Install PostgreSQL {cluster} beside them (/usr/lib/postgresql/{cluster}/bin is then used), point POSTGRES_BIN_DIR at its bin folder, or upgrade the cluster with pg_upgrade. The data folder was left untouched", data.display(), bin_dir.display())]
    VersionMismatch {
        /// The cluster's data folder.
        data: PathBuf,
        /// Its `PG_VERSION`.
        cluster: String,
        /// Major version of the binaries found.
        binaries: String,
        /// Where they are.
        bin_dir: PathBuf,
    },
    /// A data folder with files but no `PG_VERSION`: not a cluster this backend created.
    #[error("{} is not empty but holds no PostgreSQL cluster (no PG_VERSION file); it was left untouched. Move it away (or set PERSISTENT_DATA_DIR to another folder) so a new cluster can be created", .0.display())]
    NotACluster(PathBuf),
    /// The stored port is taken by another program.
    #[error("port {port} of the embedded PostgreSQL is already in use by another program. Stop that program, or write another port number into {} (delete the file to pick a free port at the next start)", file.display())]
    PortInUse {
        /// The port.
        port: u16,
        /// The file that stores it.
        file: PathBuf,
    },
    /// A live PostgreSQL, normally started by another backend process, uses the data folder.
    #[error("another backend is already running on this data folder ({}; {holder}). Stop it first, or set PERSISTENT_DATA_DIR to another folder", data.display())]
    AlreadyRunning {
        /// The cluster's data folder.
        data: PathBuf,
        /// Which processes hold it (`pid N`).
        holder: String,
    },
    /// Running as root and no unprivileged user to run the cluster as.
    #[error("running as root, but the system user \"{0}\" to run PostgreSQL as does not exist; create it or run the server as an unprivileged user")]
    NoUnprivilegedUser(String),
    /// A file or folder of the cluster could not be prepared.
    #[error("embedded PostgreSQL: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Managing the owner role or handing it the application database failed.
    #[error("embedded PostgreSQL: {context}: {source}")]
    Sql {
        /// What was being done.
        context: String,
        /// PostgreSQL's error (never holds a password: statements are not part of it).
        source: tokio_postgres::Error,
    },
    /// `initdb` or `postgres` failed; the message carries the end of its output.
    #[error("embedded PostgreSQL: {0}")]
    Failed(String),
    /// As root, the cluster runs as the `postgres` user, who cannot reach its folder (a
    /// private home folder on the way).
    #[error("the \"postgres\" system user cannot reach {}: started as root, the server runs its embedded PostgreSQL as that user, and a folder on the way (a private home folder?) does not let it in. Set PERSISTENT_DATA_DIR to a folder it can traverse (e.g. /var/lib/deploystack), or run the server as an unprivileged user. Detail: {detail}", folder.display())]
    Unreachable {
        /// The cluster's root folder.
        folder: PathBuf,
        /// What the tool said.
        detail: String,
    },
}

impl EmbeddedError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| EmbeddedError::Io { context, source }
    }

    pub(crate) fn sql(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let context = context.into();
        move |source| EmbeddedError::Sql { context, source }
    }
}
