//! Bodies of the account operations, in upstream's envelope: `{success, message?, user?,
//! data?}` on success, `{success: false, error, details?}` on failure.

use poem_openapi::Object;

use crate::auth::FieldProblem;
use crate::db::models::User;

/// A failed account operation (upstream's shape).
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
#[oai(example)]
pub struct Failure {
    /// Always `false`.
    pub success: bool,
    /// What went wrong (upstream's sentence where it has one).
    pub error: String,
    /// More about it, where there is more to say.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// With `Validation error`: each field's problem.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldProblem>>,
    /// With `Insufficient permissions`: the permission the caller lacks.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_permission: Option<String>,
    /// With `Insufficient permissions` for a role: the role required.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
    /// With `required_role`: the caller's role.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_role: Option<String>,
    /// With a team permission refused: the caller's role in the team.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_team_role: Option<String>,
    /// With an account that still owns teams: those teams.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_teams: Option<Vec<TeamRef>>,
    /// With `Invalid permissions`: the ones the server does not define.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_permissions: Option<Vec<String>>,
}

/// A team named in a refusal.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct TeamRef {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

impl Failure {
    /// `{success: false, error}`.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            success: false,
            error: error.into(),
            message: None,
            details: None,
            required_permission: None,
            required_role: None,
            user_role: None,
            user_team_role: None,
            owned_teams: None,
            invalid_permissions: None,
        }
    }

    /// With a message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Naming the role required and the caller's.
    pub fn requiring_role(mut self, role: &str, user_role: Option<&str>) -> Self {
        self.required_role = Some(role.to_owned());
        self.user_role = user_role.map(str::to_owned);
        self
    }

    /// `Validation error` naming each field's problem.
    pub fn invalid(details: Vec<FieldProblem>) -> Self {
        Self {
            details: Some(details),
            ..Self::new("Validation error")
        }
    }
}

impl poem_openapi::types::Example for Failure {
    fn example() -> Self {
        Self::new("Invalid email/username or password.")
    }
}

/// An account as the sign-up and sign-in answers show it.
#[derive(Debug, Clone, Object)]
pub struct AccountUser {
    /// Id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email address (lower case).
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// `global_admin` or `global_user`.
    pub role_id: Option<String>,
}

impl From<&User> for AccountUser {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role_id: u.role_id.as_ref().map(|r| r.as_str().to_owned()),
        }
    }
}

/// A successful sign-up or sign-in (upstream's shape); the session cookie comes with it.
#[derive(Debug, Clone, Object)]
pub struct AccountSuccess {
    /// Always `true`.
    pub success: bool,
    /// Upstream's sentence.
    pub message: String,
    /// The account.
    pub user: AccountUser,
}

/// `POST /api/auth/email/register`. Every field is checked and each problem named (the
/// required ones are `Option`s here so a missing one is named too; the document lists them
/// as required).
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3 to 30 characters of `a-z`, `A-Z`, `0-9`, `_`, `.` and `-`; unique ignoring case.
    pub username: Option<String>,
    /// An email address, at most 255 characters; unique (compared in lower case).
    pub email: Option<String>,
    /// 8 to 128 characters.
    #[oai(write_only)]
    pub password: Option<String>,
    /// Given name, at most 100 characters.
    pub first_name: Option<String>,
    /// Family name, at most 100 characters.
    pub last_name: Option<String>,
    /// While no administrator exists: the one-time setup token the server wrote to its log
    /// and to `persistent_data/setup.token` (not needed in the browser that ran the setup,
    /// which holds the setup grant cookie).
    #[oai(write_only)]
    pub setup_token: Option<String>,
}

/// `POST /api/auth/email/login` (both fields required; `Option`s so a missing one is named).
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    /// The email address or the username.
    pub login: Option<String>,
    /// The password.
    #[oai(write_only)]
    pub password: Option<String>,
}

/// Required fields of the account bodies, for the document.
pub const REQUIRED: &[(&str, &[&str])] = &[
    ("RegisterRequest", &["username", "email", "password"]),
    ("LoginRequest", &["login", "password"]),
];

/// Rules the account bodies' fields are checked against by hand (each problem is named in
/// one answer), for the document.
pub const CONSTRAINTS: &[(&str, &str, &str)] = &[
    (
        "RegisterRequest",
        "username",
        r#"{"minLength":3,"maxLength":30,"pattern":"^[a-zA-Z0-9_.-]+$"}"#,
    ),
    (
        "RegisterRequest",
        "email",
        r#"{"format":"email","maxLength":255}"#,
    ),
    (
        "RegisterRequest",
        "password",
        r#"{"minLength":8,"maxLength":128}"#,
    ),
    ("RegisterRequest", "first_name", r#"{"maxLength":100}"#),
    ("RegisterRequest", "last_name", r#"{"maxLength":100}"#),
    ("RegisterRequest", "setup_token", r#"{"minLength":1}"#),
    (
        "LoginRequest",
        "login",
        r#"{"minLength":1,"maxLength":255}"#,
    ),
    (
        "LoginRequest",
        "password",
        r#"{"minLength":1,"maxLength":128}"#,
    ),
    ("UpdateUser", "email", r#"{"format":"email"}"#),
    ("AddMember", "email", r#"{"format":"email"}"#),
];

/// An operation that only reports success.
#[derive(Debug, Clone, Object)]
pub struct Done {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    pub message: String,
}

/// What a frontend or the setup wizard needs before anyone signs in.
#[derive(Debug, Clone, Object)]
pub struct AccountsStatus {
    /// Whether a global administrator exists (until then, the first sign-up becomes it).
    pub administrator_exists: bool,
    /// `global.enable_login`.
    pub login_enabled: bool,
    /// `global.enable_email_registration`.
    pub registration_enabled: bool,
    /// The frontend's address (`global.page_url`), once an operator set it; `null` while it
    /// is the default.
    pub frontend_url: Option<String>,
}
