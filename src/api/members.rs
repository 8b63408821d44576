//! Upstream's member routes (`/api/teams/:id/members`, `/ownership`). Every change is decided
//! in one transaction with the team locked (`services/memberships.rs`); the member list is
//! for the team's members and global administrators only.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;

use super::account_bodies::Done;
use super::caller::signed_in;
use super::reply::{Refusal, Reply};
use super::session_cookie::SessionCookie;
use super::tags::ApiTags;
use super::team_bodies::{
    AddMember, ChangeRole, MemberBody, MemberEnvelope, MembersEnvelope, TransferOwnership,
};
use crate::auth::is_admin;
use crate::db::models::{TeamId, UserId};
use crate::services::TeamService;
use crate::state::AppState;

/// Member operations.
pub struct MembersApi;

#[OpenApi(tag = "ApiTags::Teams")]
impl MembersApi {
    /// A team's members
    ///
    /// For the team's members and global administrators (upstream showed any team's members
    /// and their email addresses to every signed-in user).
    #[oai(
        path = "/api/teams/:id/members",
        method = "get",
        operation_id = "getTeamMembers"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
    ) -> Reply<MembersEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let members = TeamService::new(state.database.clone())
                .members_for(&user.id, is_admin(&user), &TeamId::from(id.0.as_str()))
                .await?;
            Ok::<_, Refusal>(MembersEnvelope {
                success: true,
                data: members.iter().map(MemberBody::from).collect(),
            })
        }
        .await;
        result.into()
    }

    /// Add a member
    ///
    /// For the team's administrators and global administrators: the account of `email`, with
    /// `role`. Not to a default team, not twice (409), not past the team's member limit.
    #[oai(
        path = "/api/teams/:id/members",
        method = "post",
        operation_id = "addTeamMember"
    )]
    async fn add(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        body: super::StrictJson<AddMember>,
    ) -> Reply<MemberEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let body = body.0;
            let member = TeamService::new(state.database.clone())
                .add_member_as(
                    &user.id,
                    is_admin(&user),
                    &TeamId::from(id.0.as_str()),
                    &body.email,
                    body.role.into(),
                )
                .await?;
            Ok::<_, Refusal>(MemberEnvelope {
                success: true,
                data: MemberBody::from(&member),
                message: format!("Team member '{}' added successfully", body.email),
            })
        }
        .await;
        match result {
            Ok(body) => Reply::Created(Json(body)),
            Err(r) => r.into(),
        }
    }

    /// Change a member's role
    ///
    /// For the team's administrators and global administrators; never the last team
    /// administrator's or the owner's.
    #[oai(
        path = "/api/teams/:id/members/:user_id/role",
        method = "put",
        operation_id = "changeTeamMemberRole"
    )]
    async fn change_role(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        #[oai(name = "userId")] user_id: Path<String>,
        body: super::StrictJson<ChangeRole>,
    ) -> Reply<MemberEnvelope> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            let member = TeamService::new(state.database.clone())
                .set_role_as(
                    &user.id,
                    is_admin(&user),
                    &TeamId::from(id.0.as_str()),
                    &UserId::from(user_id.0.as_str()),
                    body.0.role.into(),
                )
                .await?;
            Ok::<_, Refusal>(MemberEnvelope {
                success: true,
                data: MemberBody::from(&member),
                message: "Team member role updated successfully".into(),
            })
        }
        .await;
        result.into()
    }

    /// Remove a member
    ///
    /// The owner removes anyone but itself, a team administrator plain members, a global
    /// administrator anyone but the owner; never from a default team.
    #[oai(
        path = "/api/teams/:id/members/:user_id",
        method = "delete",
        operation_id = "removeTeamMember"
    )]
    async fn remove(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        #[oai(name = "userId")] user_id: Path<String>,
    ) -> Reply<Done> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            TeamService::new(state.database.clone())
                .remove_member_as(
                    &user.id,
                    is_admin(&user),
                    &TeamId::from(id.0.as_str()),
                    &UserId::from(user_id.0.as_str()),
                )
                .await?;
            Ok::<_, Refusal>(Done {
                success: true,
                message: "Team member removed successfully".into(),
            })
        }
        .await;
        result.into()
    }

    /// Transfer a team's ownership
    ///
    /// For the owner or a global administrator, to a member (who becomes a team
    /// administrator); not of a default team.
    #[oai(
        path = "/api/teams/:id/ownership",
        method = "put",
        operation_id = "transferTeamOwnership"
    )]
    async fn transfer(
        &self,
        state: Data<&AppState>,
        session: SessionCookie,
        id: Path<String>,
        body: super::StrictJson<TransferOwnership>,
    ) -> Reply<Done> {
        let result = async {
            let user = signed_in(&state, &session).await?;
            TeamService::new(state.database.clone())
                .transfer_as(
                    &user.id,
                    is_admin(&user),
                    &TeamId::from(id.0.as_str()),
                    &UserId::from(body.0.new_owner_id.as_str()),
                )
                .await?;
            Ok::<_, Refusal>(Done {
                success: true,
                message: "Team ownership transferred successfully".into(),
            })
        }
        .await;
        result.into()
    }
}
