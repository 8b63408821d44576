//! The answers of the admin routes, generic over the success body: `Read` for lookups and
//! listings, `Write` for changes (with 201, 207, 409 and 415).

use poem_openapi::payload::Json;
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::ApiResponse;

use super::{Denied, Gate};
use crate::api::account_bodies::Failure;
use crate::api::auth::Answer;
use crate::api::users::AUTHENTICATION_REQUIRED;
use poem_openapi::error::AuthorizationError;

/// Answers of a read.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "read_bad_request")]
pub enum Read<T: ToJSON + Type> {
    /// `{success: true, data}`.
    #[oai(status = 200)]
    Ok(Json<T>),
    /// A query parameter is malformed.
    #[oai(status = 400)]
    BadRequest(Json<Failure>),
    /// `{"success":false,"error":"Authentication required"}`.
    #[oai(status = 401)]
    Unauthorized(Json<Failure>),
    /// Signed in without `global_admin`.
    #[oai(status = 403)]
    Forbidden(Json<Denied>),
    /// No such setting, group, job or batch.
    #[oai(status = 404)]
    NotFound(Json<Failure>),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable, or another process rotated the
    /// encryption secret (restart with the new one).
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

/// Answers of a change.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "write_bad_request")]
pub enum Write<T: ToJSON + Type> {
    /// Done: `{success: true, data, message}`.
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
    /// Some items of a bulk change succeeded, others not (`errors` names them).
    #[oai(status = 207)]
    Partial(Json<T>),
    /// The body breaks a rule (a value that does not fit its type, a missing field); for a
    /// bulk change, every item failed.
    #[oai(status = 400)]
    BadRequest(Json<Failure>),
    /// `{"success":false,"error":"Authentication required"}`.
    #[oai(status = 401)]
    Unauthorized(Json<Failure>),
    /// Signed in without `global_admin`.
    #[oai(status = 403)]
    Forbidden(Json<Denied>),
    /// No such setting or batch.
    #[oai(status = 404)]
    NotFound(Json<Failure>),
    /// A setting of this key exists already.
    #[oai(status = 409)]
    Conflict(Json<Failure>),
    /// The body is not sent as `Content-Type: application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Failure>),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable, or another process rotated the
    /// encryption secret (restart with the new one).
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

fn read_bad_request<T: ToJSON + Type>(err: poem::Error) -> Read<T> {
    if err.is::<AuthorizationError>() {
        return Read::Unauthorized(Json(Failure::new(AUTHENTICATION_REQUIRED)));
    }
    Read::BadRequest(Json(bad_input(&err)))
}

fn write_bad_request<T: ToJSON + Type>(err: poem::Error) -> Write<T> {
    // poem-openapi hands the missing session cookie to this handler too.
    if err.is::<AuthorizationError>() {
        return Write::Unauthorized(Json(Failure::new(AUTHENTICATION_REQUIRED)));
    }
    if let Some(problem) = crate::api::bad_body::content_type_problem(&err) {
        return Write::UnsupportedMediaType(Json(
            Failure::new("Unsupported Media Type").with_message(problem),
        ));
    }
    Write::BadRequest(Json(bad_input(&err)))
}

/// A malformed body or parameter as a validation failure.
fn bad_input(err: &poem::Error) -> Failure {
    if let Some(problem) = err.downcast_ref::<crate::api::BodyProblem>() {
        return Failure::new("Validation error").with_message(problem.sentence());
    }
    let message = match err.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
        Some(e) if e.reason.contains("unknown field") || e.reason.starts_with("Expected") => {
            crate::api::bad_body::describe::<serde_json::Value>(err)
        }
        Some(e) => format!(
            "The request body is not valid JSON: {}.",
            e.reason.trim_end_matches('.')
        ),
        None => err.to_string(),
    };
    Failure::new("Validation error").with_message(message)
}

impl<T: ToJSON + Type> From<Gate> for Read<T> {
    fn from(gate: Gate) -> Self {
        match gate {
            Gate::Unauthenticated(f) => Self::Unauthorized(Json(f)),
            Gate::Forbidden(d) => Self::Forbidden(Json(d)),
            Gate::Failed(answer) => answer.into(),
        }
    }
}

impl<T: ToJSON + Type> From<Gate> for Write<T> {
    fn from(gate: Gate) -> Self {
        match gate {
            Gate::Unauthenticated(f) => Self::Unauthorized(Json(f)),
            Gate::Forbidden(d) => Self::Forbidden(Json(d)),
            Gate::Failed(answer) => answer.into(),
        }
    }
}

impl<T: ToJSON + Type> From<Answer> for Read<T> {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::BadRequest(f) | Answer::Forbidden(f) => Self::BadRequest(Json(f)),
            Answer::TooMany(f, _) | Answer::Unavailable(f, _) => Self::Unavailable(Json(f)),
            Answer::Failed(f) => Self::Failed(Json(f)),
        }
    }
}

impl<T: ToJSON + Type> From<Answer> for Write<T> {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::BadRequest(f) | Answer::Forbidden(f) => Self::BadRequest(Json(f)),
            Answer::TooMany(f, _) | Answer::Unavailable(f, _) => Self::Unavailable(Json(f)),
            Answer::Failed(f) => Self::Failed(Json(f)),
        }
    }
}
