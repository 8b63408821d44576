//! Bodies of the team and member routes, in upstream's shapes.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use crate::db::models::{Team, TeamRole, UserId};
use crate::services::memberships::Member;
use crate::services::team_rules::{MemberTeam, TeamUsage};

/// A team.
#[derive(Debug, Clone, Object)]
pub struct TeamBody {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// URL name (unique).
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
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Changed at.
    pub updated_at: DateTime<Utc>,
}

impl From<&Team> for TeamBody {
    fn from(t: &Team) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            slug: t.slug.clone(),
            description: t.description.clone(),
            owner_id: t.owner_id.to_string(),
            is_default: t.is_default,
            non_http_mcp_limit: t.non_http_mcp_limit,
            mcp_server_limit: t.mcp_server_limit,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A team with the caller's place in it.
#[derive(Debug, Clone, Object)]
pub struct TeamWithRole {
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
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Changed at.
    pub updated_at: DateTime<Utc>,
    /// The caller's role.
    pub role: String,
    /// Whether the caller administers it.
    pub is_admin: bool,
    /// Whether the caller owns it.
    pub is_owner: bool,
    /// Members in all.
    pub member_count: i64,
}

impl TeamWithRole {
    /// `t` as `user` sees it.
    pub fn of(t: &MemberTeam, user: &UserId) -> Self {
        let team = TeamBody::from(&t.team);
        Self {
            id: team.id,
            name: team.name,
            slug: team.slug,
            description: team.description,
            owner_id: team.owner_id,
            is_default: team.is_default,
            non_http_mcp_limit: team.non_http_mcp_limit,
            mcp_server_limit: team.mcp_server_limit,
            created_at: team.created_at,
            updated_at: team.updated_at,
            role: t.role.as_str().to_owned(),
            is_admin: t.role == TeamRole::Admin,
            is_owner: t.is_owner(user),
            member_count: t.member_count,
        }
    }
}

/// `{success, data: [team]}`.
#[derive(Debug, Clone, Object)]
pub struct TeamsEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The teams.
    pub data: Vec<TeamWithRole>,
}

/// `{success, data: team}` (with a message for changes).
#[derive(Debug, Clone, Object)]
pub struct TeamEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The team.
    pub data: TeamBody,
    /// What happened.
    #[oai(skip_serializing_if_is_none)]
    pub message: Option<String>,
}

/// `{success, data: team with the caller's role}`.
#[derive(Debug, Clone, Object)]
pub struct TeamRoleEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The team.
    pub data: TeamWithRole,
}

/// `POST /api/teams`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateTeam {
    /// 1 to 100 characters.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// At most 500 characters.
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
}

/// `PUT /api/teams/:id`: any of the fields.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateTeam {
    /// 1 to 100 characters (not for a default team).
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// At most 500 characters; `null` clears it.
    #[oai(validator(max_length = 500))]
    pub description: poem_openapi::types::MaybeUndefined<String>,
}

/// `GET /api/teams/:id/usage`'s figures.
#[derive(Debug, Clone, Object)]
pub struct UsageBody {
    /// Whether this is the caller's own default team.
    pub is_default_team: bool,
    /// Installations of the team.
    pub total_installed_mcp_servers: i64,
    /// Of which stdio.
    pub non_http_mcp_servers: i64,
    /// Of which HTTP or SSE.
    pub http_mcp_servers: i64,
    /// The team's limits.
    pub limits: UsageLimits,
}

/// A team's installation limits.
#[derive(Debug, Clone, Object)]
pub struct UsageLimits {
    /// Most MCP servers.
    pub mcp_server_limit: i32,
    /// Most non-HTTP MCP servers.
    pub non_http_mcp_limit: i32,
}

impl From<TeamUsage> for UsageBody {
    fn from(u: TeamUsage) -> Self {
        Self {
            is_default_team: u.is_default_team,
            total_installed_mcp_servers: u.total_installed_mcp_servers,
            non_http_mcp_servers: u.non_http_mcp_servers,
            http_mcp_servers: u.http_mcp_servers,
            limits: UsageLimits {
                mcp_server_limit: u.mcp_server_limit,
                non_http_mcp_limit: u.non_http_mcp_limit,
            },
        }
    }
}

/// `{success, data: usage}`.
#[derive(Debug, Clone, Object)]
pub struct UsageEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The figures.
    pub data: UsageBody,
}

/// A team role as the member routes take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RoleName {
    /// Manages the team and its members.
    TeamAdmin,
    /// Uses what the team installed.
    TeamUser,
}

impl From<RoleName> for TeamRole {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::TeamAdmin => TeamRole::Admin,
            RoleName::TeamUser => TeamRole::User,
        }
    }
}

/// A member of a team.
#[derive(Debug, Clone, Object)]
pub struct MemberBody {
    /// The membership's id.
    pub id: String,
    /// The member's account.
    pub user_id: String,
    /// Username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// `team_admin` or `team_user`.
    pub role: String,
    /// Whether the member administers the team.
    pub is_admin: bool,
    /// Whether the member owns it.
    pub is_owner: bool,
    /// When the member joined.
    pub joined_at: DateTime<Utc>,
}

impl From<&Member> for MemberBody {
    fn from(m: &Member) -> Self {
        Self {
            id: m.id.to_string(),
            user_id: m.user_id.to_string(),
            username: m.username.clone(),
            email: m.email.clone(),
            first_name: m.first_name.clone(),
            last_name: m.last_name.clone(),
            role: m.role.as_str().to_owned(),
            is_admin: m.role == TeamRole::Admin,
            is_owner: m.is_owner,
            joined_at: m.joined_at,
        }
    }
}

/// `{success, data: [member]}`.
#[derive(Debug, Clone, Object)]
pub struct MembersEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The members, by joining time.
    pub data: Vec<MemberBody>,
}

/// `{success, data: member, message}`.
#[derive(Debug, Clone, Object)]
pub struct MemberEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The member.
    pub data: MemberBody,
    /// What happened.
    pub message: String,
}

/// `POST /api/teams/:id/members`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct AddMember {
    /// The account's email address.
    #[oai(validator(max_length = 255))]
    pub email: String,
    /// Its role in the team.
    pub role: RoleName,
}

/// `PUT /api/teams/:id/members/:userId/role`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct ChangeRole {
    /// The new role.
    pub role: RoleName,
}

/// `PUT /api/teams/:id/ownership`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct TransferOwnership {
    /// The member who becomes owner.
    #[oai(rename = "newOwnerId", validator(min_length = 1))]
    pub new_owner_id: String,
}
