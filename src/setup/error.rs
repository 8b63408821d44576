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
    /// PostgreSQL answered without a free connection slot; retrying once other sessions
    /// ended succeeds.
    #[error("{0}")]
    NoSlots(String),
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

/// What an unauthenticated caller learns when PostgreSQL has no free connection slot (then
/// what to do: [`RETRIES`], or retry the setup call).
pub const NO_SLOTS_MESSAGE: &str = "PostgreSQL has no free connection slot: max_connections (or a connection limit of the role or database) is reached. Close idle connections or raise the limit.";

/// Said of a start-up that is not through yet.
pub const RETRIES: &str = "The server retries by itself.";

/// What an unauthenticated caller learns while a recorded setup cannot be served.
pub const NOT_SERVED_MESSAGE: &str = "Setup is complete, but PostgreSQL cannot be used right now (down, refusing the login, or failing to migrate); the server retries by itself. The server logs have the details.";

/// What an unauthenticated caller learns while PostgreSQL cannot even say whether a setup
/// is recorded.
pub const UNKNOWN_MESSAGE: &str = "PostgreSQL cannot be used right now (down or refusing the login); the server retries by itself. The server logs have the details.";

impl SetupError {
    /// The setup error for a connection that failed in a way a retry can mend: no answer,
    /// or no free connection slot.
    pub(crate) fn unavailable(e: ConnectError) -> Self {
        match e {
            ConnectError::NoSlots { .. } => SetupError::NoSlots(e.to_string()),
            e => SetupError::Unreachable(e.to_string()),
        }
    }
}

impl From<ProvisionError> for SetupError {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::Connect(
                e @ (ConnectError::Unreachable { .. } | ConnectError::NoSlots { .. }),
            ) => SetupError::unavailable(e),
            other => SetupError::Initialization(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for SetupError {
    fn from(e: diesel::result::Error) -> Self {
        SetupError::Initialization(e.to_string())
    }
}
