//! The one JSON error shape, `{"error": ..., "message": ...}`, and the mapping of poem's own
//! errors (unknown route, wrong method, bad JSON, body too large) and of panics onto it.

use std::any::Any;

use poem::http::StatusCode;
use poem::PathPattern;
use poem::{IntoResponse, Response};
use poem_openapi::Object;

use crate::db::DbError;

/// Body of every error answer that has no more specific upstream shape.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize, serde::Deserialize)]
#[oai(example)]
pub struct ErrorBody {
    /// Short, stable description of the kind of error.
    #[oai(validator(min_length = 1))]
    pub error: String,
    /// What went wrong and, where possible, how to fix it.
    pub message: String,
}

impl ErrorBody {
    /// An error body from its two parts.
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            message: message.into(),
        }
    }

    /// The 503 body for a database that is not set up or not reachable. PostgreSQL's own
    /// words (host, port, database, role names) go to the log, never to the caller, who
    /// may not be authenticated.
    pub fn from_db(e: &DbError) -> Self {
        match e {
            DbError::NotInitialized => Self::new("Database not initialized", e.to_string()),
            DbError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::new(
                    "Database unavailable",
                    "The database cannot be reached right now; retry shortly. The server logs have the details.",
                )
            }
            DbError::Query(_) => {
                tracing::error!(error = %e, "database query failed");
                Self::new(
                    "Database error",
                    "A database query failed. The server logs have the details.",
                )
            }
        }
    }
}

/// Turns any error poem raises outside the typed operations into the JSON shape; errors that
/// already carry a typed response (an operation's own answer) pass through unchanged. The
/// matched route template travels along, for the request log.
pub fn to_json_response(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    // An operation behind the session cookie called without one: upstream's 401.
    if err.is::<poem_openapi::error::AuthorizationError>() {
        let body = super::account_bodies::Failure::new(super::users::AUTHENTICATION_REQUIRED);
        return poem::web::Json(body)
            .with_status(StatusCode::UNAUTHORIZED)
            .into_response();
    }
    let status = err.status();
    let label = status.canonical_reason().unwrap_or("Error");
    let message = match status {
        StatusCode::NOT_FOUND => "No route matches this path.".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => {
            "This path does not accept this method; the `Allow` header lists those it does."
                .to_owned()
        }
        _ => err.to_string(),
    };
    let mut resp = json_response(status, &ErrorBody::new(label, message));
    if let Some(pattern) = err.data::<PathPattern>() {
        resp.set_data(pattern.clone());
    }
    resp
}

/// The answer to a request whose handler panicked: a plain 500 that says nothing of the panic
/// (it may hold internal detail); the panic is logged inside the request's span, so with its
/// request id.
pub fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "request handler panicked");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &ErrorBody::new(
            "Internal server error",
            "The server failed to handle this request. It was logged; quote the \
             `x-request-id` header of this answer when reporting it.",
        ),
    )
}

/// A JSON response with `status`.
pub fn json_response(status: StatusCode, body: &ErrorBody) -> Response {
    poem::web::Json(body).with_status(status).into_response()
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        Self::new(
            "Database unavailable",
            "The database cannot be reached right now; retry shortly. The server logs have the details.",
        )
    }
}
