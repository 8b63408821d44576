//! The embedded default: a PostgreSQL cluster this process initializes, starts on loopback
//! and stops, built from the machine's own server binaries, so a first `cargo run` works
//! with no database to install or configure.
//!
//! Layout under its root folder (`PERSISTENT_DATA_DIR/postgres`): `data/` (the cluster),
//! `superuser.password` (generated, mode 0600) and `postgres.log`.
//! PostgreSQL refuses to run as root, so a root process runs the cluster as the `postgres`
//! system user.

mod binaries;
mod cluster;
mod process;

pub use binaries::find_bin_dir;
pub use cluster::{attach_running, Cluster, ClusterOptions, RunningPostgres, SUPERUSER};

/// Why the embedded cluster could not be prepared or started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No server binaries on the machine.
    #[error("PostgreSQL server binaries not found ({0}). Either install PostgreSQL (Debian: apt-get install postgresql) or point the server at an existing one by setting POSTGRES_HOST, POSTGRES_USER and POSTGRES_PASSWORD")]
    BinariesMissing(String),
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
    /// `initdb` or `postgres` failed; the message carries the end of its output.
    #[error("embedded PostgreSQL: {0}")]
    Failed(String),
}

impl EmbeddedError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| EmbeddedError::Io { context, source }
    }
}
