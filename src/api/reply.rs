//! The answers of the account-area routes (users, teams, members, roles, preferences, the
//! administration of users and teams, the catalog reads): upstream's envelope on success,
//! `{success: false, error, …}` on failure, and one mapping from each layer's error to its
//! status: a service's refusal by kind, an unreachable database 503, anything else 500.

use poem_openapi::error::AuthorizationError;
use poem_openapi::payload::Json;
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::ApiResponse;
use tracing::error;

use super::account_bodies::{Failure, TeamRef};
use super::users::AUTHENTICATION_REQUIRED;
use crate::auth::AuthError;
use crate::db::DbError;
use crate::services::{RefusalContext, RefusalKind, ServiceError};

/// Every answer of these routes.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_request")]
pub enum Reply<T: ToJSON + Type> {
    /// Done.
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
    /// The request breaks a rule (`Validation error` with `details` for a malformed body or
    /// parameter; upstream's sentence otherwise).
    #[oai(status = 400)]
    BadRequest(Json<Failure>),
    /// `{"success":false,"error":"Authentication required"}`.
    #[oai(status = 401)]
    Unauthorized(Json<Failure>),
    /// The caller may not do this (`required_permission` names a missing permission).
    #[oai(status = 403)]
    Forbidden(Json<Failure>),
    /// What the request names does not exist.
    #[oai(status = 404)]
    NotFound(Json<Failure>),
    /// Another row holds the value already.
    #[oai(status = 409)]
    Conflict(Json<Failure>),
    /// The body is not sent as `Content-Type: application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Failure>),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable.
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

/// Why a request was not done, before it becomes a [`Reply`].
#[derive(Debug)]
pub enum Refusal {
    /// 400.
    BadRequest(Failure),
    /// 401.
    Unauthorized(Failure),
    /// 403.
    Forbidden(Failure),
    /// 404.
    NotFound(Failure),
    /// 409.
    Conflict(Failure),
    /// 500.
    Failed(Failure),
    /// 503.
    Unavailable(Failure),
}

impl Refusal {
    /// 401 `Authentication required`.
    pub fn unauthenticated() -> Self {
        Self::Unauthorized(Failure::new(AUTHENTICATION_REQUIRED))
    }

    /// 403 `Insufficient permissions` naming `permission`.
    pub fn lacks(permission: &str) -> Self {
        let mut failure = Failure::new("Insufficient permissions");
        failure.required_permission = Some(permission.to_owned());
        Self::Forbidden(failure)
    }

    /// 400 with upstream's sentence.
    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::BadRequest(Failure::new(error))
    }

    /// With `message` beside the error.
    pub fn with_message(self, message: impl Into<String>) -> Self {
        let add = |f: Failure| f.with_message(message);
        match self {
            Self::BadRequest(f) => Self::BadRequest(add(f)),
            Self::Unauthorized(f) => Self::Unauthorized(add(f)),
            Self::Forbidden(f) => Self::Forbidden(add(f)),
            Self::NotFound(f) => Self::NotFound(add(f)),
            Self::Conflict(f) => Self::Conflict(add(f)),
            Self::Failed(f) => Self::Failed(add(f)),
            Self::Unavailable(f) => Self::Unavailable(add(f)),
        }
    }

    /// A failure whose cause goes to the log; the caller gets `error`.
    pub fn failed(what: &str, cause: &dyn std::fmt::Display) -> Self {
        error!(error = %cause, "{what}");
        Self::Failed(Failure::new(what))
    }
}

impl From<DbError> for Refusal {
    fn from(e: DbError) -> Self {
        let body = super::ErrorBody::from_db(&e);
        match e {
            DbError::Query(_) => Self::Failed(Failure::new("Internal server error")),
            _ => Self::Unavailable(Failure::new(body.error).with_message(body.message)),
        }
    }
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Refused(refused) => {
                let mut failure = Failure::new(refused.message);
                match refused.context {
                    RefusalContext::None => {}
                    RefusalContext::TeamPermission {
                        required_permission,
                        user_team_role,
                    } => {
                        failure.required_permission = Some(required_permission.to_owned());
                        failure.user_team_role = Some(user_team_role);
                    }
                    RefusalContext::OwnedTeams(teams) => {
                        failure.owned_teams = Some(
                            teams
                                .into_iter()
                                .map(|(id, name)| TeamRef { id, name })
                                .collect(),
                        );
                    }
                    RefusalContext::InvalidPermissions(unknown) => {
                        failure.invalid_permissions = Some(unknown);
                    }
                }
                match refused.kind {
                    RefusalKind::NotFound => Self::NotFound(failure),
                    RefusalKind::Forbidden => Self::Forbidden(failure),
                    RefusalKind::Invalid => Self::BadRequest(failure),
                    RefusalKind::Conflict => Self::Conflict(failure),
                }
            }
            ServiceError::Unavailable(db) => Self::from(db),
            ServiceError::Conflict(detail) => {
                tracing::info!(detail = %detail, "refused: the value is taken");
                Self::Conflict(
                    Failure::new("Conflict")
                        .with_message("Another record holds this value already."),
                )
            }
            ServiceError::NotFound(what) => {
                tracing::info!(detail = %what, "refused: a referenced record is missing");
                Self::NotFound(Failure::new("Not found"))
            }
            ServiceError::Invalid(detail) => {
                Self::BadRequest(Failure::new("Validation error").with_message(detail))
            }
            ServiceError::Database(e) => Self::failed("Internal server error", &e),
        }
    }
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(db) => Self::from(db),
            AuthError::Service(s) => Self::from(s),
            other => Self::failed("Internal server error", &other),
        }
    }
}

impl<T: ToJSON + Type> From<Refusal> for Reply<T> {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadRequest(f) => Self::BadRequest(Json(f)),
            Refusal::Unauthorized(f) => Self::Unauthorized(Json(f)),
            Refusal::Forbidden(f) => Self::Forbidden(Json(f)),
            Refusal::NotFound(f) => Self::NotFound(Json(f)),
            Refusal::Conflict(f) => Self::Conflict(Json(f)),
            Refusal::Failed(f) => Self::Failed(Json(f)),
            Refusal::Unavailable(f) => Self::Unavailable(Json(f)),
        }
    }
}

impl<T: ToJSON + Type, E: Into<Refusal>> From<Result<T, E>> for Reply<T> {
    fn from(result: Result<T, E>) -> Self {
        match result {
            Ok(body) => Self::Ok(Json(body)),
            Err(e) => Self::from(e.into()),
        }
    }
}

fn bad_request<T: ToJSON + Type>(err: poem::Error) -> Reply<T> {
    // poem-openapi hands a missing session cookie to this handler too: 401 before 400, as
    // upstream's guards run before validation.
    if err.is::<AuthorizationError>() {
        return Reply::Unauthorized(Json(Failure::new(AUTHENTICATION_REQUIRED)));
    }
    if let Some(problem) = super::bad_body::content_type_problem(&err) {
        return Reply::UnsupportedMediaType(Json(
            Failure::new("Unsupported Media Type").with_message(problem),
        ));
    }
    let problem = match err.downcast_ref::<super::BodyProblem>() {
        Some(p) => crate::auth::FieldProblem {
            field: p.field.clone().unwrap_or_else(|| "body".into()),
            message: p.message.clone(),
        },
        None => crate::auth::FieldProblem {
            field: "request".into(),
            message: super::bad_body::describe::<serde_json::Value>(&err),
        },
    };
    Reply::BadRequest(Json(Failure::invalid(vec![problem])))
}
