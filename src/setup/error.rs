//! Why setup (or the start-up resume) did not complete.

use crate::db::provision::ProvisionError;
use crate::db::ConnectError;

/// A setup outcome that is not a success; each maps to one HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The selection file (or the database's own record) says setup was done.
    #[error("Database setup has already been performed.")]
    AlreadyPerformed {
        /// The type recorded in the selection file.
        database_type: String,
    },
    /// Credentials are not complete.
    #[error("Missing environment variables: {}", .missing.join(", "))]
    Incomplete {
        /// Names of the variables to set.
        missing: Vec<&'static str>,
    },
    /// PostgreSQL did not answer; retrying later can succeed.
    #[error("{0}")]
    Unreachable(String),
    /// Connecting worked but creating the database or migrating it failed.
    #[error("{0}")]
    Initialization(String),
    /// Another setup (in this process or elsewhere) held the setup lock for longer than
    /// `POSTGRES_SETUP_LOCK_TIMEOUT_MS`; nothing was changed, retrying later works.
    #[error("Database setup is in progress elsewhere; retry in a few seconds.")]
    Busy,
    /// An initializer refuses to serve this database as configured (a wrong encryption
    /// secret); only a change of configuration helps. The message names what to change.
    #[error("{0}")]
    Refused(String),
    /// The process is shutting down.
    #[error("The server is shutting down.")]
    ShuttingDown,
    /// The selection file could not be written.
    #[error("cannot write the selection file: {0}")]
    Persist(#[from] std::io::Error),
}

impl From<ProvisionError> for SetupError {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::Connect(ConnectError::Unreachable { .. }) => {
                SetupError::Unreachable(e.to_string())
            }
            other => SetupError::Initialization(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for SetupError {
    fn from(e: diesel::result::Error) -> Self {
        SetupError::Initialization(e.to_string())
    }
}
