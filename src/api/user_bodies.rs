//! Bodies of the user routes, in upstream's shapes: the profile is a bare object (upstream's
//! frontend reads `id` and `role_id` at the top level), team lists are under `teams`.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use crate::db::models::User;
use crate::services::team_rules::MemberTeam;

/// The header options of upstream's frontend (settings group `user-display`).
#[derive(Debug, Clone, Object)]
pub struct DisplaySettings {
    /// Show the Discord link in the header.
    pub header_show_discord: bool,
    /// Show the feedback link in the header.
    pub header_show_feedback: bool,
}

/// An account's profile.
#[derive(Debug, Clone, Object)]
pub struct Profile {
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
    /// `email_signup` or `github`.
    pub auth_type: String,
    /// GitHub account id.
    pub github_id: Option<String>,
    /// Whether the email address is confirmed.
    pub email_verified: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// The header options (`GET /api/users/me` only).
    #[oai(skip_serializing_if_is_none)]
    pub user_display_settings: Option<DisplaySettings>,
}

impl From<&User> for Profile {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role_id: u.role_id.as_ref().map(|r| r.as_str().to_owned()),
            auth_type: u.auth_type.as_str().to_owned(),
            github_id: u.github_id.clone(),
            email_verified: u.email_verified,
            created_at: u.created_at,
            user_display_settings: None,
        }
    }
}

/// The profile in a `PUT /api/users/:id` answer.
#[derive(Debug, Clone, Object)]
pub struct ProfileSummary {
    /// Id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Global role.
    pub role_id: Option<String>,
    /// `email_signup` or `github`.
    pub auth_type: String,
    /// GitHub account id.
    pub github_id: Option<String>,
}

impl From<&User> for ProfileSummary {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role_id: u.role_id.as_ref().map(|r| r.as_str().to_owned()),
            auth_type: u.auth_type.as_str().to_owned(),
            github_id: u.github_id.clone(),
        }
    }
}

/// `{success, user, message}`.
#[derive(Debug, Clone, Object)]
pub struct ProfileUpdated {
    /// Always `true`.
    pub success: bool,
    /// The account as it is now.
    pub user: ProfileSummary,
    /// `Profile updated successfully.`
    pub message: String,
}

/// A team of an account, with the account's place in it.
#[derive(Debug, Clone, Object)]
pub struct UserTeam {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// URL name.
    pub slug: String,
    /// What the team is for.
    pub description: Option<String>,
    /// Owner.
    pub owner_id: String,
    /// The owner's personal team.
    pub is_default: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Changed at.
    pub updated_at: DateTime<Utc>,
    /// `team_admin` or `team_user`.
    pub role: String,
    /// Whether the account owns it.
    pub is_owner: bool,
    /// Whether remote MCP servers are allowed.
    pub allow_remote_mcp: bool,
    /// Whether GitHub MCP servers are allowed.
    pub allow_github_mcp: bool,
    /// Whether private GitHub repositories are allowed.
    pub allow_private_github_repos: bool,
    /// Members in all.
    pub member_count: i64,
}

impl UserTeam {
    /// `t` as `user` sees it.
    pub fn of(t: &MemberTeam, user: &crate::db::models::UserId) -> Self {
        Self {
            id: t.team.id.to_string(),
            name: t.team.name.clone(),
            slug: t.team.slug.clone(),
            description: t.team.description.clone(),
            owner_id: t.team.owner_id.to_string(),
            is_default: t.team.is_default,
            created_at: t.team.created_at,
            updated_at: t.team.updated_at,
            role: t.role.as_str().to_owned(),
            is_owner: t.is_owner(user),
            allow_remote_mcp: t.team.allow_remote_mcp,
            allow_github_mcp: t.team.allow_github_mcp,
            allow_private_github_repos: t.team.allow_private_github_repos,
            member_count: t.member_count,
        }
    }
}

/// `{success, teams}`.
#[derive(Debug, Clone, Object)]
pub struct UserTeams {
    /// Always `true`.
    pub success: bool,
    /// The teams, the default one first.
    pub teams: Vec<UserTeam>,
}

/// `PUT /api/users/:id`: at least one field.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateUser {
    /// 3 to 30 of `a-zA-Z0-9_.-`, unique ignoring case.
    #[oai(validator(min_length = 3, max_length = 30, pattern = r"^[a-zA-Z0-9_.\-]+$"))]
    pub username: Option<String>,
    /// An email address (stored in lower case, unique).
    #[oai(validator(max_length = 255))]
    pub email: Option<String>,
    /// Given name.
    #[oai(validator(max_length = 100))]
    pub first_name: Option<String>,
    /// Family name.
    #[oai(validator(max_length = 100))]
    pub last_name: Option<String>,
    /// Global role (`global_admin`, `global_user`); not one's own, unless an administrator.
    #[oai(validator(min_length = 1))]
    pub role_id: Option<String>,
}
