//! Bodies of the administration of accounts and teams, in upstream's shapes.

use chrono::{DateTime, Utc};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::Object;

use crate::services::team_admin::AdminTeam;
use crate::services::user_admin::ListedUser;

/// Where a page stands.
#[derive(Debug, Clone, Object)]
pub struct Page {
    /// Rows matching in all.
    pub total: i64,
    /// Page size.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// Whether more rows follow.
    pub has_more: bool,
}

/// A role as the account list shows it.
#[derive(Debug, Clone, Object)]
pub struct RoleSummary {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// What it grants.
    pub permissions: Vec<String>,
}

/// An account of the administration list.
#[derive(Debug, Clone, Object)]
pub struct AdminUserBody {
    /// Id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// `email_signup` or `github`.
    pub auth_type: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// GitHub account id.
    pub github_id: Option<String>,
    /// Global role.
    pub role_id: Option<String>,
    /// The role, when it exists.
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<RoleSummary>,
    /// Whether the email address is confirmed.
    pub email_verified: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<&ListedUser> for AdminUserBody {
    fn from(l: &ListedUser) -> Self {
        let u = &l.user;
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            auth_type: u.auth_type.as_str().to_owned(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            github_id: u.github_id.clone(),
            role_id: u.role_id.as_ref().map(|r| r.as_str().to_owned()),
            role: match (&u.role_id, &l.role_name) {
                (Some(id), Some(name)) => Some(RoleSummary {
                    id: id.as_str().to_owned(),
                    name: name.clone(),
                    permissions: l
                        .role_permissions
                        .iter()
                        .flatten()
                        .flatten()
                        .cloned()
                        .collect(),
                }),
                _ => None,
            },
            email_verified: u.email_verified,
            created_at: u.created_at,
        }
    }
}

/// `{users, pagination}`.
#[derive(Debug, Clone, Object)]
pub struct AdminUsersPage {
    /// The accounts.
    pub users: Vec<AdminUserBody>,
    /// Where the page stands.
    pub pagination: Page,
}

/// `{success, data: {users, pagination}}`.
#[derive(Debug, Clone, Object)]
pub struct AdminUsersEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The page.
    pub data: AdminUsersPage,
}

/// `{success, data: account, message}`.
#[derive(Debug, Clone, Object)]
pub struct AdminUserEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The account.
    pub data: AdminUserBody,
    /// What happened.
    pub message: String,
}

/// `PUT /api/admin/users/:id/role`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AssignRole {
    /// `global_admin` or `global_user`.
    #[oai(validator(min_length = 1))]
    pub role_id: String,
}

/// Accounts by sign-in kind.
#[derive(Debug, Clone, Object)]
pub struct AuthTypeCounts {
    /// With a password.
    pub email: i64,
    /// With GitHub.
    pub github: i64,
}

/// Account figures.
#[derive(Debug, Clone, Object)]
pub struct UserStatistics {
    /// Accounts.
    pub total_users: i64,
    /// By sign-in kind.
    pub users_by_auth_type: AuthTypeCounts,
    /// Global administrators.
    pub global_admins: i64,
}

/// Team figures.
#[derive(Debug, Clone, Object)]
pub struct TeamStatistics {
    /// Default teams.
    pub default_teams: i64,
    /// Other teams.
    pub non_default_teams: i64,
}

/// Accounts of one role.
#[derive(Debug, Clone, Object)]
pub struct RoleCount {
    /// The role (`null` for none).
    pub role_id: Option<String>,
    /// How many.
    pub count: i64,
}

/// The figures.
#[derive(Debug, Clone, Object)]
pub struct UserStatsBody {
    /// Accounts.
    pub user_statistics: UserStatistics,
    /// Teams.
    pub team_statistics: TeamStatistics,
    /// Accounts by role.
    pub user_count_by_role: Vec<RoleCount>,
}

/// `{success, data: figures}`.
#[derive(Debug, Clone, Object)]
pub struct UserStatsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The figures.
    pub data: UserStatsBody,
}

/// A team of the administration list.
#[derive(Debug, Clone, Object)]
pub struct AdminTeamBody {
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
    /// Most non-HTTP MCP servers.
    pub non_http_mcp_limit: i32,
    /// Most MCP servers.
    pub mcp_server_limit: i32,
    /// Most members.
    pub member_limit: i32,
    /// Whether remote MCP servers are allowed.
    pub allow_remote_mcp: bool,
    /// Its MCP installations.
    pub mcp_servers_count: i64,
    /// Its members.
    pub members_count: i64,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Changed at.
    pub updated_at: DateTime<Utc>,
}

impl From<&AdminTeam> for AdminTeamBody {
    fn from(a: &AdminTeam) -> Self {
        let t = &a.team;
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            slug: t.slug.clone(),
            description: t.description.clone(),
            owner_id: t.owner_id.to_string(),
            is_default: t.is_default,
            non_http_mcp_limit: t.non_http_mcp_limit,
            mcp_server_limit: t.mcp_server_limit,
            member_limit: t.member_limit,
            allow_remote_mcp: t.allow_remote_mcp,
            mcp_servers_count: a.mcp_servers_count,
            members_count: a.members_count,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// `{teams, pagination}`.
#[derive(Debug, Clone, Object)]
pub struct AdminTeamsPage {
    /// The teams.
    pub teams: Vec<AdminTeamBody>,
    /// Where the page stands.
    pub pagination: Page,
}

/// `{success, data: {teams, pagination}}`.
#[derive(Debug, Clone, Object)]
pub struct AdminTeamsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The page.
    pub data: AdminTeamsPage,
}

/// `{success, message, data: team}`.
#[derive(Debug, Clone, Object)]
pub struct AdminTeamEnvelope {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    pub message: String,
    /// The team.
    pub data: AdminTeamBody,
}

/// `PUT /api/admin/teams/:id`: any of the fields.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateAdminTeam {
    /// 1 to 100 characters.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// At most 500 characters; `null` clears it.
    #[oai(validator(max_length = 500))]
    pub description: MaybeUndefined<String>,
    /// 0 or more.
    #[oai(validator(minimum(value = "0")))]
    pub non_http_mcp_limit: Option<i32>,
    /// 0 or more.
    #[oai(validator(minimum(value = "0")))]
    pub mcp_server_limit: Option<i32>,
    /// 1 or more.
    #[oai(validator(minimum(value = "1")))]
    pub member_limit: Option<i32>,
    /// Whether remote MCP servers are allowed.
    pub allow_remote_mcp: Option<bool>,
}
