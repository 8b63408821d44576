//! Upstream's account routes: `POST /api/auth/email/register`, `POST /api/auth/email/login`,
//! `POST /api/auth/logout`, and `GET /api/auth/status` (ours: what the setup wizard needs).
//! Bodies are accepted only as `application/json`, which a cross-site form cannot send; with
//! the cookie's `SameSite=Lax`, another site cannot act with a signed-in browser's session.

use poem::web::Data;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use secrecy::SecretString;
use tracing::error;

use super::account_bodies::{
    AccountSuccess, AccountUser, AccountsStatus, Done, Failure, LoginRequest, RegisterRequest,
};
use super::session_cookie::cookie_value;
use super::tags::ApiTags;
use crate::auth::{over_tls, required, AuthError, Registration, COOKIE_NAME};
use crate::state::AppState;

/// Every answer of `POST /api/auth/email/register`.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "register_bad_request")]
pub enum RegisterResponse {
    /// The account exists and is signed in: the `session` cookie comes with it.
    #[oai(status = 201)]
    Created(Json<AccountSuccess>, #[oai(header = "set-cookie")] String),
    /// A field breaks the rules (`Validation error` with `details`), or the email address
    /// or username is taken (`Email address already in use.`, `Username already in use.`).
    #[oai(status = 400)]
    BadRequest(Json<Failure>),
    /// `global.enable_email_registration` is off.
    #[oai(status = 403)]
    Forbidden(Json<Failure>),
    /// The body is not sent as `Content-Type: application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Failure>),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable, or too many sign-ups and sign-ins are
    /// hashing passwords at once; retry shortly.
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

/// Every answer of `POST /api/auth/email/login`.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "login_bad_request")]
pub enum LoginResponse {
    /// Signed in: the `session` cookie comes with it.
    #[oai(status = 200)]
    Ok(Json<AccountSuccess>, #[oai(header = "set-cookie")] String),
    /// A field is missing or malformed, or `Invalid email/username or password.` (for an
    /// unknown account, one without a password, and a wrong password alike).
    #[oai(status = 400)]
    BadRequest(Json<Failure>),
    /// `global.enable_login` is off.
    #[oai(status = 403)]
    Forbidden(Json<Failure>),
    /// The body is not sent as `Content-Type: application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Failure>),
    /// Too many failed sign-ins of this account (10 a minute) or from this address (30 a
    /// minute): `Retry-After` says how many seconds to wait.
    #[oai(status = 429)]
    TooMany(Json<Failure>, #[oai(header = "retry-after")] u64),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable, or too many sign-ins are hashing
    /// passwords at once; retry shortly.
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

/// Every answer of `POST /api/auth/logout`.
#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session (if any) is ended and the cookie removed.
    #[oai(status = 200)]
    Ok(Json<Done>, #[oai(header = "set-cookie")] String),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable.
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

/// Every answer of `GET /api/auth/status`.
#[derive(ApiResponse)]
pub enum StatusResponse {
    /// Whether an administrator exists, and the sign-in settings.
    #[oai(status = 200)]
    Ok(Json<AccountsStatus>),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable.
    #[oai(status = 503)]
    Unavailable(Json<Failure>),
}

/// How an account failure is answered: status and body (and `Retry-After` for 429).
pub(crate) enum Answer {
    BadRequest(Failure),
    Forbidden(Failure),
    TooMany(Failure, u64),
    Failed(Failure),
    Unavailable(Failure),
}

impl From<AuthError> for Answer {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(details) => Self::BadRequest(Failure::invalid(details)),
            AuthError::EmailTaken | AuthError::UsernameTaken | AuthError::BadCredentials => {
                Self::BadRequest(Failure::new(e.to_string()))
            }
            AuthError::RegistrationDisabled | AuthError::LoginDisabled => {
                Self::Forbidden(Failure::new(e.to_string()))
            }
            AuthError::TooManyFailures(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Self::TooMany(
                    Failure::new(format!(
                        "Too many failed login attempts. Try again in {seconds} seconds."
                    )),
                    seconds,
                )
            }
            AuthError::Busy => Self::Unavailable(Failure::new(e.to_string())),
            AuthError::Unavailable(db) => {
                let body = super::ErrorBody::from_db(&db);
                Self::Unavailable(Failure::new(body.error).with_message(body.message))
            }
            AuthError::Service(crate::services::ServiceError::Unavailable(db)) => {
                Self::from(AuthError::Unavailable(db))
            }
            other => {
                error!(error = %other, "account operation failed");
                Self::Failed(Failure::new("Internal server error"))
            }
        }
    }
}

fn register_bad_request(err: poem::Error) -> RegisterResponse {
    match body_problem::<RegisterRequest>(&err) {
        (true, failure) => RegisterResponse::UnsupportedMediaType(Json(failure)),
        (false, failure) => RegisterResponse::BadRequest(Json(failure)),
    }
}

fn login_bad_request(err: poem::Error) -> LoginResponse {
    match body_problem::<LoginRequest>(&err) {
        (true, failure) => LoginResponse::UnsupportedMediaType(Json(failure)),
        (false, failure) => LoginResponse::BadRequest(Json(failure)),
    }
}

/// `(is about the content type, body)` for a body poem-openapi refused.
fn body_problem<T: poem_openapi::types::Type>(err: &poem::Error) -> (bool, Failure) {
    if let Some(problem) = super::bad_body::content_type_problem(err) {
        return (
            true,
            Failure::new("Unsupported Media Type").with_message(problem),
        );
    }
    let problem = crate::auth::FieldProblem {
        field: "body".into(),
        message: super::bad_body::describe::<T>(err),
    };
    (false, Failure::invalid(vec![problem]))
}

/// Account operations.
pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Authentication")]
impl AuthApi {
    /// Sign up with email and password
    ///
    /// Creates an account and signs it in. The first account of the installation becomes the
    /// global administrator (with a verified email address); two sign-ups at once never make
    /// two. Every new account gets a default team. Refused while
    /// `global.enable_email_registration` is off.
    #[oai(
        path = "/api/auth/email/register",
        method = "post",
        operation_id = "registerEmail"
    )]
    async fn register(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: Json<RegisterRequest>,
    ) -> RegisterResponse {
        let body = body.0;
        let missing = required(&[
            ("username", body.username.is_some()),
            ("email", body.email.is_some()),
            ("password", body.password.is_some()),
        ]);
        let (Some(username), Some(email), Some(password)) =
            (body.username, body.email, body.password)
        else {
            return RegisterResponse::BadRequest(Json(Failure::invalid(missing)));
        };
        let form = Registration {
            username,
            email,
            password: SecretString::from(password),
            first_name: body.first_name,
            last_name: body.last_name,
        };
        match state.accounts.register(form).await {
            Ok(registered) => {
                let message = if registered.administrator {
                    "User registered successfully. You are now logged in as the global administrator."
                } else {
                    "User registered successfully. You can now log in to your account."
                };
                let cookie = state
                    .accounts
                    .cookie()
                    .set(registered.session.expose(), over_tls(request));
                RegisterResponse::Created(
                    Json(AccountSuccess {
                        success: true,
                        message: message.into(),
                        user: AccountUser::from(&registered.user),
                    }),
                    cookie,
                )
            }
            Err(e) => match Answer::from(e) {
                Answer::BadRequest(f) => RegisterResponse::BadRequest(Json(f)),
                Answer::Forbidden(f) => RegisterResponse::Forbidden(Json(f)),
                Answer::TooMany(f, _) | Answer::Unavailable(f) => {
                    RegisterResponse::Unavailable(Json(f))
                }
                Answer::Failed(f) => RegisterResponse::Failed(Json(f)),
            },
        }
    }

    /// Sign in with email or username
    ///
    /// `login` is the email address (compared in lower case) or the username. Every kind of
    /// miss gets the same answer, after the same work. Refused while `global.enable_login` is
    /// off, and for a minute after 10 failed sign-ins of one account or 30 from one address.
    #[oai(
        path = "/api/auth/email/login",
        method = "post",
        operation_id = "loginEmail"
    )]
    async fn login(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: Json<LoginRequest>,
    ) -> LoginResponse {
        let address = request
            .remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_canonical());
        let body = body.0;
        let missing = required(&[
            ("login", body.login.is_some()),
            ("password", body.password.is_some()),
        ]);
        let (Some(login), Some(password)) = (body.login, body.password) else {
            return LoginResponse::BadRequest(Json(Failure::invalid(missing)));
        };
        match state
            .accounts
            .login(&login, SecretString::from(password), address)
            .await
        {
            Ok((user, session)) => LoginResponse::Ok(
                Json(AccountSuccess {
                    success: true,
                    message: "Logged in successfully.".into(),
                    user: AccountUser::from(&user),
                }),
                state
                    .accounts
                    .cookie()
                    .set(session.expose(), over_tls(request)),
            ),
            Err(e) => match Answer::from(e) {
                Answer::BadRequest(f) => LoginResponse::BadRequest(Json(f)),
                Answer::Forbidden(f) => LoginResponse::Forbidden(Json(f)),
                Answer::TooMany(f, seconds) => LoginResponse::TooMany(Json(f), seconds),
                Answer::Failed(f) => LoginResponse::Failed(Json(f)),
                Answer::Unavailable(f) => LoginResponse::Unavailable(Json(f)),
            },
        }
    }

    /// Sign out
    ///
    /// Ends the session of the `session` cookie (at once, in every process) and removes the
    /// cookie. Answers the same without a session.
    #[oai(path = "/api/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, state: Data<&AppState>, request: &Request) -> LogoutResponse {
        if let Some(token) = cookie_value(request, COOKIE_NAME) {
            if let Err(e) = state.accounts.logout(token).await {
                return match Answer::from(e) {
                    Answer::Unavailable(f) => LogoutResponse::Unavailable(Json(f)),
                    Answer::BadRequest(f)
                    | Answer::Forbidden(f)
                    | Answer::TooMany(f, _)
                    | Answer::Failed(f) => LogoutResponse::Failed(Json(f)),
                };
            }
        }
        LogoutResponse::Ok(
            Json(Done {
                success: true,
                message: "Logged out successfully.".into(),
            }),
            state.accounts.cookie().clear(over_tls(request)),
        )
    }

    /// Account status
    ///
    /// Whether a global administrator exists (until then the first sign-up becomes it) and
    /// whether sign-ins and sign-ups are enabled: what the setup wizard shows after setup.
    #[oai(
        path = "/api/auth/status",
        method = "get",
        operation_id = "accountStatus"
    )]
    async fn status(&self, state: Data<&AppState>) -> StatusResponse {
        match state.accounts.status().await {
            Ok(s) => StatusResponse::Ok(Json(AccountsStatus {
                administrator_exists: s.administrator_exists,
                login_enabled: s.login_enabled,
                registration_enabled: s.registration_enabled,
                frontend_url: s.frontend_url,
            })),
            Err(e) => match Answer::from(e) {
                Answer::Unavailable(f) => StatusResponse::Unavailable(Json(f)),
                Answer::BadRequest(f)
                | Answer::Forbidden(f)
                | Answer::TooMany(f, _)
                | Answer::Failed(f) => StatusResponse::Failed(Json(f)),
            },
        }
    }
}
