//! Upstream's team routes (`/api/teams`): one's teams, one's default team, one team, creating,
//! changing and deleting a team, and its usage. Limits and slugs are decided in one
//! transaction (`services/team_rules.rs`).

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::OpenApi;

use super::account_bodies::Done;
use super::caller::{permitted, signed_in, with_permission};
use super::reply::{Refusal, Reply};
use super::session_cookie::SessionCookie;
use super::tags::ApiTags;
use super::team_bodies::{
    CreateTeam, TeamBody, TeamEnvelope, TeamRoleEnvelope, TeamWithRole, TeamsEnvelope, UpdateTeam,
    UsageEnvelope,
};
use crate::db::models::TeamId;
use crate::services::TeamService;
use crate::state::AppState;

/// The setting that limits how many teams an account belongs to.
const CREATION_LIMIT: &str = "global.team_creation_limit";
/// Its default (upstream's).
const DEFAULT_CREATION_LIMIT: i64 = 3;

/// Team operations.
pub struct TeamsApi;

#[OpenApi(tag = "ApiTags::Teams")]
impl TeamsApi {
    /// The signed-in user's teams
    ///
    /// Each with the caller's role, whether it administers or owns it, and the member count.
    #[oai(path = "/api/teams/me", method = "get", operation_id = "getMyTeams")]
    async fn mine(&self, state: Data<&AppState>, session: SessionCookie) -> Reply<TeamsEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let teams = TeamService::new(state.database.clone())
                .teams_of_member(&user.id)
                .await?;
            Ok::<_, Refusal>(TeamsEnvelope {
                success: true,
                data: teams
                    .iter()
                    .map(|t| TeamWithRole::of(t, &user.id))
                    .collect(),
            })
        }
        .await;
        result.into()
    }

    /// The signed-in user's default team
    #[oai(
        path = "/api/teams/me/default",
        method = "get",
        operation_id = "getMyDefaultTeam"
    )]
    async fn default(&self, state: Data<&AppState>, session: SessionCookie) -> Reply<TeamEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let team = TeamService::new(state.database.clone())
                .default_team_of(&user.id)
                .await?;
            Ok::<_, Refusal>(TeamEnvelope {
                success: true,
                data: TeamBody::from(&team),
                message: Some("Default team retrieved successfully".into()),
            })
        }
        .await;
        result.into()
    }

    /// A team
    ///
    /// For its members only (upstream: global administrators included).
    #[oai(path = "/api/teams/:id", method = "get", operation_id = "getTeam")]
    async fn get(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<TeamRoleEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let team = TeamService::new(state.database.clone())
                .team_of_member(&user.id, &TeamId::from(id.0.as_str()))
                .await?;
            Ok::<_, Refusal>(TeamRoleEnvelope {
                success: true,
                data: TeamWithRole::of(&team, &user.id),
            })
        }
        .await;
        result.into()
    }

    /// Create a team
    ///
    /// The caller owns it and is its administrator. Refused once the caller belongs to
    /// `global.team_creation_limit` teams (3 by default; the default team counts). The slug
    /// is the name's, with `-2`, `-3`… when taken.
    #[oai(path = "/api/teams", method = "post", operation_id = "createTeam")]
    async fn create(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        body: super::StrictJson<CreateTeam>,
    ) -> Reply<TeamEnvelope> {
        let result = async {
            let user = with_permission(&state, &session, "teams.create").await?;
            let limit = match state.settings.get_number(CREATION_LIMIT).await {
                Ok(Some(n)) if n >= 0.0 => n as i64,
                _ => DEFAULT_CREATION_LIMIT,
            };
            let body = body.0;
            let team = TeamService::new(state.database.clone())
                .create_limited(
                    &user.id,
                    body.name.trim(),
                    body.description.as_deref(),
                    limit,
                )
                .await?;
            tracing::info!(team = %team.id, owner = %user.id, "team created");
            Ok::<_, Refusal>(TeamEnvelope {
                success: true,
                data: TeamBody::from(&team),
                message: Some("Team created successfully".into()),
            })
        }
        .await;
        match result {
            Ok(body) => Reply::Created(Json(body)),
            Err(r) => r.into(),
        }
    }

    /// Change a team
    ///
    /// For its administrators: name (not of a default team) and description.
    #[oai(path = "/api/teams/:id", method = "put", operation_id = "updateTeam")]
    async fn update(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        body: super::StrictJson<UpdateTeam>,
    ) -> Reply<TeamEnvelope> {
        let result = async {
            let user = with_permission(&state, &session, "teams.edit").await?;
            let body = body.0;
            let description = match &body.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d.as_str())),
            };
            let team = TeamService::new(state.database.clone())
                .update_by(
                    &user.id,
                    &TeamId::from(id.0.as_str()),
                    body.name.as_deref().map(str::trim),
                    description,
                )
                .await?;
            Ok::<_, Refusal>(TeamEnvelope {
                success: true,
                data: TeamBody::from(&team),
                message: Some("Team updated successfully".into()),
            })
        }
        .await;
        result.into()
    }

    /// Delete a team
    ///
    /// For its owner; not a default team, nor one with MCP installations.
    #[oai(
        path = "/api/teams/:id",
        method = "delete",
        operation_id = "deleteTeam"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<Done> {
        let result = async {
            let user = with_permission(&state, &session, "teams.delete").await?;
            let team = TeamService::new(state.database.clone())
                .delete_by(&user.id, &TeamId::from(id.0.as_str()))
                .await?;
            tracing::info!(team = %team.id, by = %user.id, "team deleted");
            Ok::<_, Refusal>(Done {
                success: true,
                message: "Team deleted successfully".into(),
            })
        }
        .await;
        result.into()
    }

    /// A team's usage
    ///
    /// Its MCP installations against its limits, for its members (or holders of
    /// `team.usage.view`).
    #[oai(
        path = "/api/teams/:id/usage",
        method = "get",
        operation_id = "getTeamUsage"
    )]
    async fn usage(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<UsageEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let may_view_any = permitted(&state, &user, "team.usage.view").await.is_ok();
            let usage = TeamService::new(state.database.clone())
                .usage_for(&user, &TeamId::from(id.0.as_str()), may_view_any)
                .await?;
            Ok::<_, Refusal>(UsageEnvelope {
                success: true,
                data: usage.into(),
            })
        }
        .await;
        result.into()
    }
}
