//! Upstream's account routes: `POST /api/auth/email/register`, `POST /api/auth/email/login`,
//! `POST /api/auth/logout`, and `GET /api/auth/status` (ours: what the setup wizard needs).
//! Bodies are accepted only as `application/json`, which a cross-site form cannot send, and
//! cookie-carrying writes from other origins are refused (`cross_site.rs`).

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
use super::WithCookies;
use crate::auth::{
    over_tls, required, AuthError, Caller, Registration, COOKIE_NAME, DEVICE_COOKIE, GRANT_COOKIE,
};
use crate::state::AppState;

/// Every answer of `POST /api/auth/email/register`.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "register_bad_request")]
pub enum RegisterResponse {
    /// The account exists. While sign-ins are enabled it is signed in: the `session` cookie
    /// (and a `device` cookie, see the sign-in) comes with it; otherwise no cookie.
    #[oai(status = 201)]
    Created(
        Json<AccountSuccess>,
        #[oai(header = "set-cookie")] Option<String>,
    ),
    /// A field breaks the rules (`Validation error` with `details`), or the email address
    /// or username is taken (`Email address already in use.`, `Username already in use.`;
    /// usernames are compared ignoring case).
    #[oai(status = 400)]
    BadRequest(Json<Failure>),
    /// `global.enable_email_registration` is off; or no administrator exists yet and the
    /// request carries neither the setup grant cookie (set by `POST /api/db/setup`) nor the
    /// setup token (`setup_token`, from the server's log or `persistent_data/setup.token`).
    #[oai(status = 403)]
    Forbidden(Json<Failure>),
    /// The body is not sent as `Content-Type: application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Failure>),
    /// Too many sign-ups from this address (10 in 10 minutes): `Retry-After` says how many
    /// seconds to wait.
    #[oai(status = 429)]
    TooMany(Json<Failure>, #[oai(header = "retry-after")] u64),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable, or more sign-ups and sign-ins wait to
    /// hash a password than can be served soon (`Retry-After` then says when to retry).
    #[oai(status = 503)]
    Unavailable(Json<Failure>, #[oai(header = "retry-after")] Option<u64>),
}

/// Every answer of `POST /api/auth/email/login`.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "login_bad_request")]
pub enum LoginResponse {
    /// Signed in: the `session` cookie comes with it, and a `device` cookie (HttpOnly, sent
    /// to `/api/auth` only, a year): with it, this browser's sign-ins to this account are
    /// counted apart from strangers' failures, which then cannot lock it out.
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
    /// Too many failed sign-ins of this account from browsers without its device cookie
    /// (10 a minute), of this device (10 a minute) or from this address (30 a minute, an
    /// IPv6 /64 counting as one): `Retry-After` says how many seconds to wait.
    #[oai(status = 429)]
    TooMany(Json<Failure>, #[oai(header = "retry-after")] u64),
    /// Something failed on our side; the log has the cause.
    #[oai(status = 500)]
    Failed(Json<Failure>),
    /// The database is not set up or not reachable, or more sign-ins wait to hash a
    /// password than can be served soon (`Retry-After` then says when to retry).
    #[oai(status = 503)]
    Unavailable(Json<Failure>, #[oai(header = "retry-after")] Option<u64>),
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

/// `GET /api/auth/github/status` (upstream's shape: no `success`).
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct GithubStatus {
    /// Whether the sign-in button should be shown: enabled and configured.
    pub enabled: bool,
    /// Whether `github.oauth.enabled` is on and the client id and secret are set.
    pub configured: bool,
}

/// How an account failure is answered: status and body (and `Retry-After` for 429).
pub(crate) enum Answer {
    BadRequest(Failure),
    Forbidden(Failure),
    TooMany(Failure, u64),
    Failed(Failure),
    Unavailable(Failure, Option<u64>),
}

/// Whole seconds to wait, at least one.
fn seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
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
            AuthError::FirstAdminProofRequired => Self::Forbidden(
                Failure::new(e.to_string()).with_message(
                    "Finish the setup in the browser that ran it (it holds the setup grant), or send the one-time setup token as `setup_token`: the server writes it to its log and to persistent_data/setup.token at each start while no administrator exists. `deploystack-backend users create-admin` works too.",
                ),
            ),
            AuthError::TooManyFailures(wait) => {
                let seconds = seconds(wait);
                Self::TooMany(
                    Failure::new(format!(
                        "Too many failed login attempts. Try again in {seconds} seconds."
                    )),
                    seconds,
                )
            }
            AuthError::TooManyRegistrations(wait) => {
                let seconds = seconds(wait);
                Self::TooMany(
                    Failure::new(format!(
                        "Too many registrations from this address. Try again in {seconds} seconds."
                    )),
                    seconds,
                )
            }
            AuthError::Busy(wait) => {
                Self::Unavailable(Failure::new(e.to_string()), Some(seconds(wait)))
            }
            AuthError::Unavailable(db) => {
                let body = super::ErrorBody::from_db(&db);
                Self::Unavailable(Failure::new(body.error).with_message(body.message), None)
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

/// What the limits and the first-administrator rule need of a request.
fn caller(request: &Request) -> Caller {
    Caller {
        address: super::client_of(request).limit_key(),
        device: cookie_value(request, DEVICE_COOKIE).map(str::to_owned),
        proofs: cookie_value(request, GRANT_COOKIE)
            .map(str::to_owned)
            .into_iter()
            .collect(),
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
    let problem = match err.downcast_ref::<super::BodyProblem>() {
        Some(p) => crate::auth::FieldProblem {
            field: p.field.clone().unwrap_or_else(|| "body".into()),
            message: p.message.clone(),
        },
        None => crate::auth::FieldProblem {
            field: "body".into(),
            message: super::bad_body::describe::<T>(err),
        },
    };
    (false, Failure::invalid(vec![problem]))
}

/// Account operations.
pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Authentication")]
impl AuthApi {
    /// Sign up with email and password
    ///
    /// Creates an account and, while sign-ins are enabled, signs it in. While no global
    /// administrator exists, only a sign-up carrying the setup grant cookie or the setup
    /// token becomes one (with a verified email address); others are refused. Two sign-ups at
    /// once never make two. Every new account gets a default team. Checks that cost nothing
    /// (the settings, the fields, taken names) come before the password is hashed; sign-ups
    /// that reach the hash are limited per client address. Refused while
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
        body: crate::api::StrictJson<RegisterRequest>,
    ) -> WithCookies<RegisterResponse> {
        let body = body.0;
        let missing = required(&[
            ("username", body.username.is_some()),
            ("email", body.email.is_some()),
            ("password", body.password.is_some()),
        ]);
        let (Some(username), Some(email), Some(password)) =
            (body.username, body.email, body.password)
        else {
            return WithCookies(
                RegisterResponse::BadRequest(Json(Failure::invalid(missing))),
                Vec::new(),
            );
        };
        let form = Registration {
            username,
            email,
            password: SecretString::from(password),
            first_name: body.first_name,
            last_name: body.last_name,
        };
        let mut caller = caller(request);
        caller.proofs.extend(body.setup_token);
        let registered = match state.accounts.register(form, &caller).await {
            Ok(registered) => registered,
            Err(e) => {
                let answer = match Answer::from(e) {
                    Answer::BadRequest(f) => RegisterResponse::BadRequest(Json(f)),
                    Answer::Forbidden(f) => RegisterResponse::Forbidden(Json(f)),
                    Answer::TooMany(f, s) => RegisterResponse::TooMany(Json(f), s),
                    Answer::Unavailable(f, s) => RegisterResponse::Unavailable(Json(f), s),
                    Answer::Failed(f) => RegisterResponse::Failed(Json(f)),
                };
                return WithCookies(answer, Vec::new());
            }
        };
        let message = match (registered.administrator, &registered.session) {
            (true, Some(_)) => {
                "User registered successfully. You are now logged in as the global administrator."
            }
            (true, None) => "User registered successfully as the global administrator.",
            (false, _) => "User registered successfully. You can now log in to your account.",
        };
        let tls = over_tls(request);
        let cookies = state.accounts.cookie();
        let session = registered
            .session
            .as_ref()
            .map(|s| cookies.set(s.expose(), tls));
        let device = registered.device.as_deref().map(|d| cookies.device(d, tls));
        WithCookies(
            RegisterResponse::Created(
                Json(AccountSuccess {
                    success: true,
                    message: message.into(),
                    user: AccountUser::from(&registered.user),
                }),
                session,
            ),
            device.into_iter().collect(),
        )
    }

    /// Sign in with email or username
    ///
    /// `login` is the email address or the username (both compared ignoring case). Every
    /// kind of miss gets the same answer, after the same work. Refused while
    /// `global.enable_login` is off, and for the rest of the minute after 10 failed sign-ins
    /// of one account from browsers without its device cookie, 10 from one device, or 30 from
    /// one address. Counts are shared by every server on the database.
    #[oai(
        path = "/api/auth/email/login",
        method = "post",
        operation_id = "loginEmail"
    )]
    async fn login(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: crate::api::StrictJson<LoginRequest>,
    ) -> WithCookies<LoginResponse> {
        let body = body.0;
        let missing = required(&[
            ("login", body.login.is_some()),
            ("password", body.password.is_some()),
        ]);
        let (Some(login), Some(password)) = (body.login, body.password) else {
            return WithCookies(
                LoginResponse::BadRequest(Json(Failure::invalid(missing))),
                Vec::new(),
            );
        };
        let caller = caller(request);
        match state
            .accounts
            .login(&login, SecretString::from(password), &caller)
            .await
        {
            Ok(signed_in) => {
                let tls = over_tls(request);
                let cookies = state.accounts.cookie();
                WithCookies(
                    LoginResponse::Ok(
                        Json(AccountSuccess {
                            success: true,
                            message: "Logged in successfully.".into(),
                            user: AccountUser::from(&signed_in.user),
                        }),
                        cookies.set(signed_in.session.expose(), tls),
                    ),
                    vec![cookies.device(&signed_in.device, tls)],
                )
            }
            Err(e) => {
                let answer = match Answer::from(e) {
                    Answer::BadRequest(f) => LoginResponse::BadRequest(Json(f)),
                    Answer::Forbidden(f) => LoginResponse::Forbidden(Json(f)),
                    Answer::TooMany(f, seconds) => LoginResponse::TooMany(Json(f), seconds),
                    Answer::Failed(f) => LoginResponse::Failed(Json(f)),
                    Answer::Unavailable(f, s) => LoginResponse::Unavailable(Json(f), s),
                };
                WithCookies(answer, Vec::new())
            }
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
                    Answer::Unavailable(f, _) => LogoutResponse::Unavailable(Json(f)),
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

    /// GitHub sign-in status
    ///
    /// Whether signing in with GitHub is offered: `github.oauth.enabled` on and the OAuth
    /// app's client id and secret set (both fields say the same, as upstream's do). Any
    /// failure to read the settings answers `false`.
    #[oai(
        path = "/api/auth/github/status",
        method = "get",
        operation_id = "githubStatus"
    )]
    async fn github_status(&self, state: Data<&AppState>) -> Json<GithubStatus> {
        let settings = &state.settings;
        let configured = state.database.is_ready()
            && matches!(settings.get_string("github.oauth.enabled").await, Ok(Some(v)) if v == "true")
            && matches!(settings.get_string("github.oauth.client_id").await, Ok(Some(v)) if !v.is_empty())
            && {
                use secrecy::ExposeSecret;
                matches!(settings.get_secret("github.oauth.client_secret").await, Ok(Some(v)) if !v.expose_secret().is_empty())
            };
        Json(GithubStatus {
            enabled: configured,
            configured,
        })
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
                Answer::Unavailable(f, _) => StatusResponse::Unavailable(Json(f)),
                Answer::BadRequest(f)
                | Answer::Forbidden(f)
                | Answer::TooMany(f, _)
                | Answer::Failed(f) => StatusResponse::Failed(Json(f)),
            },
        }
    }
}
