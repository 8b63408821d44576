//! `GET /api/db/status` and `POST /api/db/setup`, the upstream contract with its defects fixed.

use poem::web::Data;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use tracing::error;

use super::error::ErrorBody;
use super::tags::ApiTags;
use crate::auth::over_tls;
use crate::lifecycle::Phase;
use crate::services::first_admin::GRANT_LIFETIME;
use crate::settings::error::ROTATED_NOTICE;
use crate::setup::error::NO_SLOTS_MESSAGE;
use crate::setup::{SetupCompleted, SetupError};
use crate::state::AppState;

/// The database dialect; PostgreSQL is the only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DatabaseType {
    /// PostgreSQL.
    Postgresql,
}

/// Where the database lifecycle stands, so the wizard never offers setup to a deployment
/// that is set up but momentarily without its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SetupState {
    /// Credentials are incomplete: set the `POSTGRES_*` variables.
    NotConfigured,
    /// Setup has not been performed: `POST /api/db/setup`.
    SetupRequired,
    /// Setup was performed; the database is being checked, migrated or initialized.
    Starting,
    /// PostgreSQL cannot be used right now; the server retries by itself.
    DatabaseUnavailable,
    /// The database is set up and served.
    Ready,
    /// This server refuses to serve the database as configured (e.g. its encryption secret
    /// is not the database's); `reason` says what to change.
    Refused,
}

/// State of the database as the setup wizard needs it.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DbStatus {
    /// Credentials are complete (always true with the embedded database).
    pub configured: bool,
    /// Setup completed and the schema is migrated and usable.
    pub initialized: bool,
    /// Always `postgresql`.
    pub dialect: DatabaseType,
    /// The lifecycle state (an addition to upstream's three fields). Once the database is
    /// set up and served, anonymous callers get upstream's three fields only (this and the
    /// rest go to administrators).
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<SetupState>,
    /// With `refused`, or once another process rotated the encryption secret: what is wrong
    /// and how to fix it.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// The loaded plugins and how PostgreSQL keeps them apart; absent without plugins.
    #[oai(skip_serializing_if_is_none)]
    pub plugins: Option<PluginsStatus>,
    /// Which database this server uses (never its credentials); absent while the
    /// credentials are incomplete.
    #[oai(skip_serializing_if_is_none)]
    pub database: Option<DatabaseInUse>,
}

/// The database a server uses, for the setup wizard.
#[derive(Debug, Object)]
pub struct DatabaseInUse {
    /// `embedded` (a PostgreSQL this server started itself, for trying DeployStack out) or
    /// `external` (the `POSTGRES_*` server).
    pub kind: String,
    /// `host:port/database`.
    pub target: String,
}

/// The plugins a server loaded.
#[derive(Debug, Object)]
pub struct PluginsStatus {
    /// `roles` (each plugin acts as a PostgreSQL role of its own), `convention` (isolated by
    /// naming only, accepted by `PLUGIN_ALLOW_CONVENTION_ISOLATION`), or `pending` until the
    /// database is served.
    pub isolation: String,
    /// Plugin ids, in load order.
    pub loaded: Vec<String>,
}

impl SetupState {
    fn of(phase: Phase, configured: bool) -> Self {
        match phase {
            Phase::Ready => Self::Ready,
            Phase::Refused => Self::Refused,
            _ if !configured => Self::NotConfigured,
            Phase::Checking | Phase::Starting => Self::Starting,
            Phase::SetupRequired => Self::SetupRequired,
            Phase::Unavailable | Phase::Stopped => Self::DatabaseUnavailable,
        }
    }
}

/// Body of `POST /api/db/setup`; credentials always come from the environment.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
#[oai(example)]
pub struct SetupRequest {
    /// Must be `postgresql`.
    #[oai(rename = "type")]
    pub database_type: DatabaseType,
}

/// A completed setup.
#[derive(Debug, Object)]
#[oai(example)]
pub struct SetupSuccess {
    /// Human-readable outcome.
    pub message: String,
    /// Some service failed to start after the migrations; restart the server.
    pub restart_required: bool,
    /// Always `postgresql`.
    pub database_type: DatabaseType,
}

/// Setup had already been performed (upstream shape).
#[derive(Debug, Object)]
#[oai(example)]
pub struct SetupConflict {
    /// `Database setup has already been performed.`
    pub message: String,
    /// The type recorded at setup.
    pub database_type: String,
}

/// Every answer of `POST /api/db/setup`.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "invalid_setup_request")]
pub enum SetupResponse {
    /// The database is created, migrated and initialized; the server uses it now. While no
    /// administrator exists, the `setup_grant` cookie comes with it (HttpOnly,
    /// `SameSite=Strict`, an hour): the sign-up this browser sends next becomes the first
    /// administrator.
    #[oai(status = 200)]
    Completed(
        Json<SetupSuccess>,
        #[oai(header = "set-cookie")] Option<String>,
    ),
    /// The body is not `{"type":"postgresql"}`, or credentials are incomplete.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Setup was performed before (by this or another process).
    #[oai(status = 409)]
    AlreadyPerformed(Json<SetupConflict>),
    /// The body is not sent as `Content-Type: application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Creating or migrating the database failed; nothing was recorded, retry after fixing.
    #[oai(status = 500)]
    Failed(Json<ErrorBody>),
    /// PostgreSQL is unreachable, or a setup is in progress elsewhere, or the server is
    /// shutting down; nothing was recorded, retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn invalid_setup_request(err: poem::Error) -> SetupResponse {
    const EXPECTED: &str = "Expected a JSON body {\"type\":\"postgresql\"}.";
    if let Some(problem) = super::bad_body::content_type_problem(&err) {
        return SetupResponse::UnsupportedMediaType(Json(ErrorBody::new(
            "Unsupported Media Type",
            format!("{problem} {EXPECTED}"),
        )));
    }
    let problem = super::bad_body::describe::<SetupRequest>(&err);
    SetupResponse::BadRequest(Json(ErrorBody::new(
        "Invalid request body",
        format!("{problem} {EXPECTED}"),
    )))
}

impl SetupResponse {
    fn from_outcome(outcome: Result<SetupCompleted, SetupError>) -> Self {
        let e = match outcome {
            Ok(done) => {
                let message = if done.restart_required {
                    "Database setup successful, but some services may require a server restart to function properly."
                } else {
                    "Database setup successful. All services have been initialized and are ready to use."
                };
                return Self::Completed(
                    Json(SetupSuccess {
                        message: message.into(),
                        restart_required: done.restart_required,
                        database_type: DatabaseType::Postgresql,
                    }),
                    None,
                );
            }
            Err(e) => e,
        };
        let message = e.to_string();
        match e {
            SetupError::AlreadyPerformed { database_type } => {
                Self::AlreadyPerformed(Json(SetupConflict {
                    message,
                    database_type,
                }))
            }
            SetupError::Incomplete { .. } => Self::BadRequest(Json(ErrorBody::new(
                "Database configuration incomplete. Please check environment variables.",
                message,
            ))),
            SetupError::Busy => {
                Self::Unavailable(Json(ErrorBody::new("Setup in progress", message)))
            }
            // The message names settings to change, never a secret or an address.
            SetupError::Refused(reason) => {
                Self::Failed(Json(ErrorBody::new("Setup refused", reason)))
            }
            SetupError::ShuttingDown => {
                Self::Unavailable(Json(ErrorBody::new("Shutting down", message)))
            }
            // PostgreSQL's own words (host, port, role names, login failures) go to the log
            // only: callers of this endpoint are not authenticated.
            SetupError::Unreachable(_) => {
                error!(error = %message, "database setup failed: PostgreSQL unreachable");
                Self::Unavailable(Json(ErrorBody::new(
                    "Database unavailable",
                    "PostgreSQL cannot be reached. Check that it is running and the POSTGRES_* settings; the server logs have the details. Retry when it is up.",
                )))
            }
            // Says which limit, not where: the server runs, it has no room for us.
            SetupError::NoSlots(_) => {
                error!(error = %message, "database setup failed: no free connection slot");
                Self::Unavailable(Json(ErrorBody::new(
                    "Database unavailable",
                    format!("{NO_SLOTS_MESSAGE} Then retry the setup."),
                )))
            }
            SetupError::Initialization(_) | SetupError::Persist(_) => {
                error!(error = %message, "database setup failed");
                Self::Failed(Json(ErrorBody::new(
                    "Database initialization failed. Check server logs and configuration.",
                    "Creating, migrating or recording the database failed; nothing was recorded. The server logs have the details; retry after fixing the cause.",
                )))
            }
        }
    }
}

/// Database operations.
pub struct DbApi;

#[OpenApi(tag = "ApiTags::Database")]
impl DbApi {
    /// Database status
    ///
    /// Tells the setup wizard whether credentials are complete and setup has been performed.
    /// Before setup, and to a global administrator's session, it also says which database
    /// and plugins are used and why a server refuses to serve; once set up, anonymous callers
    /// get upstream's `configured`, `initialized` and `dialect` only.
    #[oai(
        path = "/api/db/status",
        method = "get",
        operation_id = "getDatabaseStatus"
    )]
    async fn status(&self, state: Data<&AppState>, request: &Request) -> Json<DbStatus> {
        let configured = state.setup.is_configured();
        let initialized = state.database.is_ready();
        if initialized && !is_admin(&state, request).await {
            return Json(DbStatus {
                configured,
                initialized,
                dialect: DatabaseType::Postgresql,
                state: None,
                reason: None,
                plugins: None,
                database: None,
            });
        }
        Json(DbStatus {
            configured,
            initialized,
            dialect: DatabaseType::Postgresql,
            state: Some(SetupState::of(state.setup.phase(), configured)),
            reason: state.setup.refusal().or_else(|| {
                state
                    .settings
                    .key_rotated()
                    .then(|| ROTATED_NOTICE.to_owned())
            }),
            database: state.setup.connector().map(|c| DatabaseInUse {
                kind: if state.embedded_database {
                    "embedded"
                } else {
                    "external"
                }
                .into(),
                target: c.target(),
            }),
            plugins: (!state.plugins.is_empty()).then(|| PluginsStatus {
                isolation: state
                    .plugins
                    .mode()
                    .map_or("pending", |m| m.as_str())
                    .to_owned(),
                loaded: state
                    .plugins
                    .ids()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            }),
        })
    }

    /// Set up the database
    ///
    /// Creates the database when missing, applies the migrations, runs the initializers and
    /// records the choice. Safe to retry after any error; concurrent calls initialize once.
    #[oai(
        path = "/api/db/setup",
        method = "post",
        operation_id = "setupDatabase"
    )]
    async fn setup(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: crate::api::StrictJson<SetupRequest>,
    ) -> SetupResponse {
        let crate::api::StrictJson(SetupRequest { database_type: _ }) = body;
        // The service runs setup as a tracked task: a client that goes away cannot cancel
        // it halfway (file written, commit not), the half-done state this design avoids.
        let mut answer = SetupResponse::from_outcome(state.setup.setup().await);
        if let SetupResponse::Completed(_, cookie) = &mut answer {
            match state.accounts.setup_grant().await {
                Ok(grant) => {
                    *cookie = grant.map(|g| {
                        let max_age = GRANT_LIFETIME.num_seconds().unsigned_abs();
                        state
                            .accounts
                            .cookie()
                            .grant(&g, max_age, over_tls(request))
                    });
                }
                // The setup stands; the setup token (log, setup.token) still admits the first
                // administrator.
                Err(e) => error!(error = %e, "cannot issue the setup grant"),
            }
        }
        answer
    }
}

/// Whether `request` carries the session of a global administrator.
async fn is_admin(state: &AppState, request: &Request) -> bool {
    let Some(token) = super::session_cookie::cookie_value(request, crate::auth::COOKIE_NAME) else {
        return false;
    };
    matches!(state.accounts.user_of(token).await, Ok(Some(user)) if crate::auth::is_admin(&user))
}

impl poem_openapi::types::Example for DbStatus {
    fn example() -> Self {
        Self {
            configured: true,
            initialized: false,
            dialect: DatabaseType::Postgresql,
            state: Some(SetupState::SetupRequired),
            reason: None,
            plugins: None,
            database: Some(DatabaseInUse {
                kind: "external".into(),
                target: "db.internal:5432/deploystack".into(),
            }),
        }
    }
}

impl poem_openapi::types::Example for SetupRequest {
    fn example() -> Self {
        Self {
            database_type: DatabaseType::Postgresql,
        }
    }
}

impl poem_openapi::types::Example for SetupSuccess {
    fn example() -> Self {
        Self {
            message: "Database setup successful. All services have been initialized and are ready to use.".into(),
            restart_required: false,
            database_type: DatabaseType::Postgresql,
        }
    }
}

impl poem_openapi::types::Example for SetupConflict {
    fn example() -> Self {
        Self {
            message: "Database setup has already been performed.".into(),
            database_type: "postgresql".into(),
        }
    }
}
