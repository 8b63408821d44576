//! Errors of the service layer: what a caller can act on, decided once from PostgreSQL's
//! error codes, never a stringly 500 for a duplicate or a missing parent.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::db::DbError;

/// Why a service operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A referenced row (a parent) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique value is taken, or the row is still referenced and cannot go.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input breaks a rule (a CHECK or NOT NULL constraint, or a service rule).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database is not set up or not reachable.
    #[error(transparent)]
    Unavailable(DbError),
    /// Anything else PostgreSQL reported.
    #[error("database error: {0}")]
    Database(DieselError),
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Query(q) => q.into(),
            other => ServiceError::Unavailable(other),
        }
    }
}

impl From<DieselError> for ServiceError {
    fn from(e: DieselError) -> Self {
        let DieselError::DatabaseError(kind, info) = &e else {
            return ServiceError::Database(e);
        };
        let constraint = info.constraint_name().unwrap_or("constraint").to_owned();
        let detail = info.details().unwrap_or(info.message()).to_owned();
        match kind {
            DatabaseErrorKind::UniqueViolation => {
                ServiceError::Conflict(format!("{constraint}: {detail}"))
            }
            // On insert/update the parent is missing; on delete the row is still referenced.
            DatabaseErrorKind::ForeignKeyViolation if detail.contains("is still referenced") => {
                ServiceError::Conflict(format!("{constraint}: {detail}"))
            }
            DatabaseErrorKind::ForeignKeyViolation => {
                ServiceError::NotFound(format!("{constraint}: {detail}"))
            }
            DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation => {
                ServiceError::Invalid(format!("{constraint}: {}", info.message()))
            }
            _ => ServiceError::Database(e),
        }
    }
}

/// Result of a service operation.
pub type ServiceResult<T> = Result<T, ServiceError>;
