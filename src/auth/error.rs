//! Why an account operation failed; [`crate::api::auth`] maps each to upstream's answer.

use std::time::Duration;

use super::validate::FieldProblem;
use crate::db::DbError;
use crate::services::ServiceError;
use crate::settings::error::SettingsError;

/// An account or session failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The body breaks the schema; every broken field is named.
    #[error("Validation error")]
    Invalid(Vec<FieldProblem>),
    /// Another account has this email address.
    #[error("Email address already in use.")]
    EmailTaken,
    /// Another account has this username.
    #[error("Username already in use.")]
    UsernameTaken,
    /// `global.enable_email_registration` is off.
    #[error("Email registration is currently disabled by administrator.")]
    RegistrationDisabled,
    /// `global.enable_login` is off.
    #[error("Login is currently disabled by administrator.")]
    LoginDisabled,
    /// Unknown account, no password, or a wrong one: never told apart.
    #[error("Invalid email/username or password.")]
    BadCredentials,
    /// Too many failed sign-ins of this account or from this address; retry after this.
    #[error("Too many failed login attempts. Try again later.")]
    TooManyFailures(Duration),
    /// Too many sign-ups that cost a password hash came from this address; retry after
    /// this.
    #[error("Too many registrations from this address. Try again later.")]
    TooManyRegistrations(Duration),
    /// Every password-hashing turn is taken by more requests than the wait allows; retry
    /// after this.
    #[error("Too many sign-ins at once. Try again shortly.")]
    Busy(Duration),
    /// No administrator exists yet and the sign-up carried no proof that it may become the
    /// first (the setup grant cookie or the start token).
    #[error(
        "The first administrator can only be created with the setup grant or the setup token."
    )]
    FirstAdminProofRequired,
    /// The password hasher failed (not the password's fault).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The database is not set up or not reachable.
    #[error(transparent)]
    Unavailable(#[from] DbError),
    /// A service failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A setting could not be read.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A statement failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}
