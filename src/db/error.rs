//! Errors of the database layer, before they are mapped to HTTP.

use crate::db::connector::ConnectError;

/// Upstream's message for a request made before setup, kept word for word.
pub const NOT_INITIALIZED_MESSAGE: &str =
    "Database not available. Please complete the setup process at /setup first.";

/// Why a handler could not use the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Setup has not been completed (or the schema is still being migrated).
    #[error("{NOT_INITIALIZED_MESSAGE}")]
    NotInitialized,
    /// The pool could not hand out a connection in time or PostgreSQL is down.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl From<bb8::RunError<diesel_async::pooled_connection::PoolError>> for DbError {
    fn from(e: bb8::RunError<diesel_async::pooled_connection::PoolError>) -> Self {
        match e {
            bb8::RunError::TimedOut => {
                DbError::Unavailable("timed out waiting for a connection".into())
            }
            bb8::RunError::User(inner) => DbError::Unavailable(inner.to_string()),
        }
    }
}

impl From<ConnectError> for DbError {
    fn from(e: ConnectError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}
