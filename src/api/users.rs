//! `GET /api/users/me`: the signed-in user, behind the session cookie.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::account_bodies::{CurrentUser, CurrentUserBody, Failure};
use super::auth::Answer;
use super::session_cookie::SessionCookie;
use super::tags::ApiTags;
use crate::state::AppState;

/// Upstream's answer without a live session.
pub const AUTHENTICATION_REQUIRED: &str = "Authentication required";

/// Every answer of `GET /api/users/me`.
#[derive(ApiResponse)]
pub enum MeResponse {
    /// The signed-in user.
    #[oai(status = 200)]
    Ok(Json<CurrentUserBody>),
    /// No session cookie, or its session ended (signed out, expired, user deleted):
    /// `{"success":false,"error":"Authentication required"}`.
    #[oai(status = 401)]
    Unauthorized(Json<Failure>),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable.
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

/// User operations.
pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// The signed-in user
    ///
    /// The account of the `session` cookie. A session that was signed out, has expired or
    /// whose user was deleted answers 401 at once, in every process.
    #[oai(
        path = "/api/users/me",
        method = "get",
        operation_id = "getCurrentUser"
    )]
    async fn me(&self, state: Data<&AppState>, session: SessionCookie) -> MeResponse {
        match state.accounts.user_of(&session.0).await {
            Ok(Some(user)) => MeResponse::Ok(Json(CurrentUserBody {
                success: true,
                data: CurrentUser::from(&user),
            })),
            Ok(None) => MeResponse::Unauthorized(Json(Failure::new(AUTHENTICATION_REQUIRED))),
            Err(e) => match Answer::from(e) {
                Answer::Unavailable(f, _) => MeResponse::Unavailable(Json(f)),
                Answer::BadRequest(f)
                | Answer::Forbidden(f)
                | Answer::TooMany(f, _)
                | Answer::Failed(f) => MeResponse::Failed(Json(f)),
            },
        }
    }
}
