//! Upstream's administration of accounts and teams (`/api/admin/users`, `/api/admin/teams`),
//! for global administrators: lists and searches paged in SQL, figures, role changes and
//! deletions that keep the last global administrator, and team limits.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::OpenApi;

use super::people_bodies::{
    AdminTeamBody, AdminTeamEnvelope, AdminTeamsEnvelope, AdminTeamsPage, AdminUserBody,
    AdminUserEnvelope, AdminUsersEnvelope, AdminUsersPage, AssignRole, AuthTypeCounts, Page,
    RoleCount, TeamStatistics, UpdateAdminTeam, UserStatistics, UserStatsBody, UserStatsEnvelope,
};
use crate::api::account_bodies::Done;
use crate::api::caller::administrator;
use crate::api::reply::{Refusal, Reply};
use crate::api::session_cookie::SessionCookie;
use crate::api::tags::ApiTags;
use crate::db::models::{TeamId, UserId};
use crate::services::team_admin::TeamLimits;
use crate::services::user_admin::UserFilter;
use crate::services::{TeamService, UserService};
use crate::state::AppState;

/// Upstream's page bounds: `limit` 1 to 100 (20 by default), `offset` 0 or more.
fn paging(limit: Option<&str>, offset: Option<&str>) -> Result<(i64, i64), Refusal> {
    let limit = match limit.filter(|l| !l.is_empty()) {
        None => 20,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| Refusal::bad_request("Limit must be between 1 and 100"))?,
    };
    let offset = match offset.filter(|o| !o.is_empty()) {
        None => 0,
        Some(o) => o
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| Refusal::bad_request("Offset must be non-negative"))?,
    };
    Ok((limit, offset))
}

fn page(total: i64, limit: i64, offset: i64, returned: usize) -> Page {
    Page {
        total,
        limit,
        offset,
        has_more: offset + (returned as i64) < total,
    }
}

/// Administration of accounts and teams.
pub struct PeopleApi;

#[OpenApi(tag = "ApiTags::Administration")]
impl PeopleApi {
    /// Accounts
    ///
    /// Oldest first, a page at a time (`limit` 1 to 100, 20 by default).
    #[oai(
        path = "/api/admin/users",
        method = "get",
        operation_id = "adminListUsers"
    )]
    async fn users(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        limit: Query<Option<String>>,
        offset: Query<Option<String>>,
    ) -> Reply<AdminUsersEnvelope> {
        list_users(&state, &session, UserFilter::default(), limit.0, offset.0)
            .await
            .into()
    }

    /// Search accounts
    ///
    /// By text the username or the email address holds (ignoring case), sign-in kind
    /// (`email_signup`, `github`; `email` means `email_signup`) and role.
    #[oai(
        path = "/api/admin/users/search",
        method = "get",
        operation_id = "adminSearchUsers"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn search_users(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        username: Query<Option<String>>,
        email: Query<Option<String>>,
        auth_type: Query<Option<String>>,
        role_id: Query<Option<String>>,
        limit: Query<Option<String>>,
        offset: Query<Option<String>>,
    ) -> Reply<AdminUsersEnvelope> {
        let filter = UserFilter {
            username: username.0,
            email: email.0,
            auth_type: auth_type.0,
            role_id: role_id.0,
        };
        list_users(&state, &session, filter, limit.0, offset.0)
            .await
            .into()
    }

    /// Account figures
    #[oai(
        path = "/api/admin/users/stats",
        method = "get",
        operation_id = "adminUserStats"
    )]
    async fn user_stats(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
    ) -> Reply<UserStatsEnvelope> {
        let result = async {
            administrator(&state, &session).await?;
            let (stats, by_role) = UserService::new(state.database.clone()).stats().await?;
            Ok::<_, Refusal>(UserStatsEnvelope {
                success: true,
                data: UserStatsBody {
                    user_statistics: UserStatistics {
                        total_users: stats.total_users,
                        users_by_auth_type: AuthTypeCounts {
                            email: stats.email_users,
                            github: stats.github_users,
                        },
                        global_admins: stats.global_admins,
                    },
                    team_statistics: TeamStatistics {
                        default_teams: stats.default_teams,
                        non_default_teams: stats.non_default_teams,
                    },
                    user_count_by_role: by_role
                        .into_iter()
                        .map(|(role_id, count)| RoleCount { role_id, count })
                        .collect(),
                },
            })
        }
        .await;
        result.into()
    }

    /// Delete an account
    ///
    /// Not one's own, not the last global administrator, not one that owns teams other than
    /// its default one. Its sessions, memberships and default team go with it.
    #[oai(
        path = "/api/admin/users/:id",
        method = "delete",
        operation_id = "adminDeleteUser"
    )]
    async fn delete_user(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<Done> {
        let result = async {
            let admin = administrator(&state, &session).await?;
            UserService::new(state.database.clone())
                .delete_account(&admin.id, &UserId::from(id.0.as_str()), true)
                .await?;
            tracing::info!(user = %id.0, by = %admin.id, "account deleted by an administrator");
            Ok::<_, Refusal>(Done {
                success: true,
                message: "User deleted successfully".into(),
            })
        }
        .await;
        result.into()
    }

    /// Change an account's role
    ///
    /// Not one's own; the last global administrator keeps the role.
    #[oai(
        path = "/api/admin/users/:id/role",
        method = "put",
        operation_id = "adminAssignRole"
    )]
    async fn assign_role(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        body: crate::api::StrictJson<AssignRole>,
    ) -> Reply<AdminUserEnvelope> {
        let result = async {
            let admin = administrator(&state, &session).await?;
            let users = UserService::new(state.database.clone());
            let target = UserId::from(id.0.as_str());
            users
                .assign_role(&admin.id, &target, &body.0.role_id)
                .await?;
            let user = users.listed(&target).await?.ok_or_else(|| {
                Refusal::NotFound(crate::api::account_bodies::Failure::new(
                    "User or role not found",
                ))
            })?;
            tracing::info!(user = %target, role = %body.0.role_id, by = %admin.id, "role assigned");
            Ok::<_, Refusal>(AdminUserEnvelope {
                success: true,
                data: AdminUserBody::from(&user),
                message: "Role assigned successfully".into(),
            })
        }
        .await;
        result.into()
    }

    /// Teams
    ///
    /// Oldest first, with their member and installation counts, a page at a time.
    #[oai(
        path = "/api/admin/teams",
        method = "get",
        operation_id = "adminListTeams"
    )]
    async fn teams(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        limit: Query<Option<String>>,
        offset: Query<Option<String>>,
    ) -> Reply<AdminTeamsEnvelope> {
        list_teams(&state, &session, None, limit.0, offset.0)
            .await
            .into()
    }

    /// Search teams
    ///
    /// By text the name holds, ignoring case (upstream compared case-sensitively).
    #[oai(
        path = "/api/admin/teams/search",
        method = "get",
        operation_id = "adminSearchTeams"
    )]
    async fn search_teams(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        name: Query<Option<String>>,
        limit: Query<Option<String>>,
        offset: Query<Option<String>>,
    ) -> Reply<AdminTeamsEnvelope> {
        list_teams(&state, &session, name.0, limit.0, offset.0)
            .await
            .into()
    }

    /// A team
    #[oai(
        path = "/api/admin/teams/:id",
        method = "get",
        operation_id = "adminGetTeam"
    )]
    async fn team(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<AdminTeamEnvelope> {
        let result = async {
            administrator(&state, &session).await?;
            let team = TeamService::new(state.database.clone())
                .admin_team(&TeamId::from(id.0.as_str()))
                .await?;
            Ok::<_, Refusal>(AdminTeamEnvelope {
                success: true,
                message: "Team retrieved successfully".into(),
                data: AdminTeamBody::from(&team),
            })
        }
        .await;
        result.into()
    }

    /// Change a team's limits
    ///
    /// Name, description, `non_http_mcp_limit` and `mcp_server_limit` (0 or more),
    /// `member_limit` (1 or more), `allow_remote_mcp`.
    #[oai(
        path = "/api/admin/teams/:id",
        method = "put",
        operation_id = "adminUpdateTeam"
    )]
    async fn update_team(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        body: crate::api::StrictJson<UpdateAdminTeam>,
    ) -> Reply<AdminTeamEnvelope> {
        let result = async {
            let admin = administrator(&state, &session).await?;
            let body = body.0;
            let description = match body.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d)),
            };
            let team = TeamService::new(state.database.clone())
                .admin_update(
                    &TeamId::from(id.0.as_str()),
                    TeamLimits {
                        name: body.name,
                        description,
                        non_http_mcp_limit: body.non_http_mcp_limit,
                        mcp_server_limit: body.mcp_server_limit,
                        member_limit: body.member_limit,
                        allow_remote_mcp: body.allow_remote_mcp,
                    },
                )
                .await?;
            tracing::info!(team = %id.0, by = %admin.id, "team changed by an administrator");
            Ok::<_, Refusal>(AdminTeamEnvelope {
                success: true,
                message: "Team updated successfully".into(),
                data: AdminTeamBody::from(&team),
            })
        }
        .await;
        result.into()
    }
}

async fn list_users(
    state: &AppState,
    session: &SessionCookie,
    filter: UserFilter,
    limit: Option<String>,
    offset: Option<String>,
) -> Result<AdminUsersEnvelope, Refusal> {
    administrator(state, session).await?;
    let (limit, offset) = paging(limit.as_deref(), offset.as_deref())?;
    let found = UserService::new(state.database.clone())
        .page_users(&filter, limit, offset)
        .await?;
    Ok(AdminUsersEnvelope {
        success: true,
        data: AdminUsersPage {
            pagination: page(found.total, limit, offset, found.users.len()),
            users: found.users.iter().map(AdminUserBody::from).collect(),
        },
    })
}

async fn list_teams(
    state: &AppState,
    session: &SessionCookie,
    name: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
) -> Result<AdminTeamsEnvelope, Refusal> {
    administrator(state, session).await?;
    let (limit, offset) = paging(limit.as_deref(), offset.as_deref())?;
    let (teams, total) = TeamService::new(state.database.clone())
        .page_teams(name.as_deref(), limit, offset)
        .await?;
    Ok(AdminTeamsEnvelope {
        success: true,
        data: AdminTeamsPage {
            pagination: page(total, limit, offset, teams.len()),
            teams: teams.iter().map(AdminTeamBody::from).collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_follows_upstreams_bounds() {
        assert_eq!(paging(None, None).ok(), Some((20, 0)));
        assert_eq!(paging(Some("100"), Some("5")).ok(), Some((100, 5)));
        for (limit, offset) in [
            (Some("0"), None),
            (Some("101"), None),
            (Some("x"), None),
            (None, Some("-1")),
        ] {
            assert!(paging(limit, offset).is_err(), "{limit:?} {offset:?}");
        }
        let p = page(45, 20, 20, 20);
        assert!(p.has_more);
        assert!(!page(40, 20, 20, 20).has_more);
    }
}
