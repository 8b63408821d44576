//! Errors of the service layer: what a caller can act on, decided once from PostgreSQL's
//! error codes, never a stringly 500 for a duplicate or a missing parent.
//!
//! Classification reads only what does not depend on the server's `lc_messages`: the
//! SQLSTATE (diesel's [`DatabaseErrorKind`]) and the constraint name. Message and detail
//! texts are translated by the server, so they are carried along for humans and never
//! inspected.

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
    /// A rule of the area refused the operation (upstream's message, its kind).
    #[error("{0}")]
    Refused(Refused),
}

/// What kind of rule refused an operation: how a caller would act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// What the operation names does not exist (as far as the caller may know).
    NotFound,
    /// The caller may not do this.
    Forbidden,
    /// The request breaks a rule of the area (a limit, a default team, the last administrator).
    Invalid,
    /// Another row holds the value already.
    Conflict,
}

/// A refusal by a rule, with upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// How to act on it.
    pub kind: RefusalKind,
    /// Upstream's sentence.
    pub message: String,
    /// What upstream's answer adds beside the sentence.
    pub context: RefusalContext,
}

/// What an answer adds beside a refusal's sentence (upstream's extra fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RefusalContext {
    /// Nothing.
    #[default]
    None,
    /// A team permission the caller lacks, and the caller's role in the team.
    TeamPermission {
        /// The permission.
        required_permission: &'static str,
        /// The caller's role in the team.
        user_team_role: String,
    },
    /// The teams (id, name) a user still owns.
    OwnedTeams(Vec<(String, String)>),
    /// Permissions the code does not define.
    InvalidPermissions(Vec<String>),
}

impl ServiceError {
    /// A refusal of `kind` saying `message`.
    pub fn refused(kind: RefusalKind, message: impl Into<String>) -> Self {
        Self::Refused(Refused {
            kind,
            message: message.into(),
            context: RefusalContext::None,
        })
    }

    /// A refusal with upstream's extra fields.
    pub fn refused_with(
        kind: RefusalKind,
        message: impl Into<String>,
        context: RefusalContext,
    ) -> Self {
        Self::Refused(Refused {
            kind,
            message: message.into(),
            context,
        })
    }

    /// `NotFound` refusal.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::refused(RefusalKind::NotFound, message)
    }

    /// `Forbidden` refusal.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::refused(RefusalKind::Forbidden, message)
    }

    /// `Invalid` refusal.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::refused(RefusalKind::Invalid, message)
    }

    /// `Conflict` refusal.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::refused(RefusalKind::Conflict, message)
    }
}

/// What the failing statement did. A foreign-key violation (SQLSTATE 23503) means opposite
/// things depending on it, and nothing else in the error tells them apart without reading
/// the translated message: PostgreSQL reports the same constraint name and the same table
/// (the referencing one) whether a child was written with a missing parent or a parent was
/// deleted while still referenced. The service issuing the statement knows which it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// An insert or update of the rows holding the foreign key: a violation means the
    /// referenced parent is missing (`NotFound`). The services never update referenced keys.
    Write,
    /// A delete (with its cascades): a violation means another row still references the
    /// deleted one through a `RESTRICT` key (`Conflict`).
    Delete,
}

impl ServiceError {
    /// Classifies `e`, raised by a statement doing `operation`, by SQLSTATE and constraint
    /// name only, so the result is the same whatever language the server answers in.
    pub fn classify(e: DieselError, operation: Operation) -> Self {
        let DieselError::DatabaseError(kind, info) = &e else {
            return ServiceError::Database(e);
        };
        let constraint = info.constraint_name().unwrap_or("constraint");
        // The text is only for people reading the error; it may be in any language.
        let text = format!("{constraint}: {}", info.details().unwrap_or(info.message()));
        match (kind, operation) {
            (DatabaseErrorKind::UniqueViolation, _) => ServiceError::Conflict(text),
            (DatabaseErrorKind::ForeignKeyViolation, Operation::Delete) => {
                ServiceError::Conflict(text)
            }
            (DatabaseErrorKind::ForeignKeyViolation, Operation::Write) => {
                ServiceError::NotFound(text)
            }
            (DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation, _) => {
                ServiceError::Invalid(format!("{constraint}: {}", info.message()))
            }
            _ => ServiceError::Database(e),
        }
    }

    /// Classifies the error of a delete: a foreign-key violation there is a `Conflict`.
    /// Use as `.map_err(ServiceError::from_delete)` on every delete that may hit a
    /// `RESTRICT` key, since `?` alone assumes a write.
    pub fn from_delete(e: DieselError) -> Self {
        Self::classify(e, Operation::Delete)
    }
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Query(q) => q.into(),
            other => ServiceError::Unavailable(other),
        }
    }
}

/// Errors propagated with `?` come from inserts and updates (see [`Operation::Write`]);
/// deletes map theirs with [`ServiceError::from_delete`].
impl From<DieselError> for ServiceError {
    fn from(e: DieselError) -> Self {
        Self::classify(e, Operation::Write)
    }
}

/// Result of a service operation.
pub type ServiceResult<T> = Result<T, ServiceError>;
