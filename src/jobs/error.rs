//! Errors of the job queue layer.

use crate::db::DbError;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database is not set up, not reachable, or a statement failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The request breaks a rule (an empty type, a max attempts of 0, a payload that does not
    /// encode as JSON): nothing was written.
    #[error("invalid job: {0}")]
    Invalid(String),
    /// No job has this id.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// No batch has this id.
    #[error("batch {0} not found")]
    BatchNotFound(String),
}

impl From<diesel::result::Error> for QueueError {
    fn from(e: diesel::result::Error) -> Self {
        QueueError::Db(DbError::Query(e))
    }
}

/// Result of queue operations.
pub type QueueResult<T> = Result<T, QueueError>;
